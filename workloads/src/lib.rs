//! The systems under test. (Work in progress: see issue 4.)

pub mod clients;
pub mod bank;
pub mod components;
pub mod dual_write;
pub mod outbox;
pub mod system;
