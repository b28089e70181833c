//! The systems under test. (Work in progress: see issue 4.)

// The RocketMQ client's types are deep: proving them `Send` needs a higher limit.
#![recursion_limit = "256"]

pub mod bank;
pub mod clients;
pub mod components;
pub mod dual_write;
pub mod outbox;
pub mod system;
pub mod txmsg;
