//! The systems under test. (Work in progress: see issue 4.)

pub mod clients;
