//! TODO(issue 3): cluster
