//! The systems under test: the banks ([`bank`]), the schemes (the controls
//! [`dual_write`] and [`kafka_tx`], the right designs [`outbox`], [`outbox_eos`] and [`txmsg`]) and a
//! user's own [`service`] behind the [`scheme::System`] protocol (a leaf every scheme
//! implements; [`system::build`], above the schemes, picks one), their long-running
//! [`components`], the broker [`clients`], and [`node`], which runs one of a scheme's
//! processes in its own container.

// The RocketMQ client's types are deep: proving them `Send` needs a higher limit.
#![recursion_limit = "256"]

pub mod bank;
pub mod clients;
pub mod components;
pub mod connect;
pub mod dual_write;
pub mod http;
pub mod kafka_tx;
pub mod node;
pub mod outbox;
pub mod outbox_cdc;
pub mod outbox_eos;
pub mod scheme;
pub mod service;
pub mod system;
pub mod txmsg;
