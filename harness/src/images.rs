//! TODO(issue 3): images
