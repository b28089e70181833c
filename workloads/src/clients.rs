//! Thin wrappers over the real broker clients (connect, produce, consume).
pub mod kafka;
pub mod rocketmq;
