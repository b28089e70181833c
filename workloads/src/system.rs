//! Builds a scheme by its [`SystemKind`]: the one module above every scheme.
//!
//! The protocol the schemes implement, and the types they share, live in the leaf
//! module [`crate::scheme`]; they are re-exported here under the names they have
//! always had (`workloads::system::System`, …).

use anyhow::Result;

pub use crate::scheme::{
    Backlog, Common, Delivery, Endpoints, FinalState, Ledgers, Options, Outcome, Processes, Role,
    Scheme, SharedProducer, System, SystemKind, TopicLog, TopicRecord, TopicSpec, Transfers,
};

/// Builds a scheme.
pub fn build(
    kind: SystemKind,
    endpoints: &Endpoints,
    options: &Options,
) -> Result<Box<dyn System>> {
    match kind {
        SystemKind::DualWrite => Ok(Box::new(crate::dual_write::DualWrite::new(
            endpoints, options,
        )?)),
        SystemKind::Outbox => Ok(Box::new(crate::outbox::Outbox::new(endpoints, options)?)),
        SystemKind::TxMsg => Ok(Box::new(crate::txmsg::TxMsg::new(endpoints, options)?)),
        SystemKind::KafkaTx => Ok(Box::new(crate::kafka_tx::KafkaTx::new(endpoints, options)?)),
        SystemKind::OutboxEos => Ok(Box::new(crate::outbox_eos::OutboxEos::new(
            endpoints, options,
        )?)),
        SystemKind::OutboxCdc => Ok(Box::new(crate::outbox_cdc::OutboxCdc::new(
            endpoints, options,
        )?)),
    }
}
