//! TODO(issue 3): nemesis
