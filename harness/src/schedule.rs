//! TODO(issue 3): schedule
