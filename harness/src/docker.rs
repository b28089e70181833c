//! TODO(issue 3): docker
