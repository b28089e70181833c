//! Scheme 0, the control: **dual write**. A cross-bank transfer debits the sender and
//! publishes the credit message inside the same database transaction, then commits; the
//! consumer credits without deduplication.
//!
//! It is wrong on purpose, and faults show it: a database that dies after the publish
//! (commit lost) leaves a credit without a debit (phantom); a publish that times out
//! rolls the debit back while the broker may still deliver it (phantom, and the client
//! was told `fail`); a redelivered message is credited twice (duplicate).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;

use crate::bank::{DebitExtra, Transfer};
use crate::clients::kafka::Isolation;
use crate::clients::kafka::Producer;
use crate::scheme::{
    Backlog, Common, Endpoints, Ledgers, Options, Outcome, Processes, Role, Scheme, SharedProducer,
    TopicSpec, Transfers,
};

/// How long the in-transaction publish may take before the transaction rolls back: a
/// short request timeout, as a naive service would set to keep its transactions short.
/// The producer keeps the message queued after the timeout and may still deliver it,
/// which is exactly the trap.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// The dual-write control scheme.
pub struct DualWrite {
    common: Common,
    producer: SharedProducer,
}

impl DualWrite {
    /// Pools and a plain (non-idempotent) producer.
    pub fn new(endpoints: &Endpoints, options: &Options) -> Result<DualWrite> {
        let common = Common::new(endpoints, options)?;
        let producer = Arc::new(Producer::connect(&common.bootstrap, false)?);
        Ok(DualWrite { common, producer })
    }
}

impl Scheme for DualWrite {
    fn name(&self) -> &'static str {
        "dual-write"
    }

    fn common(&self) -> &Common {
        &self.common
    }
}

#[async_trait]
impl Transfers for DualWrite {
    async fn transfer(&self, t: &Transfer) -> Outcome {
        if t.is_local() {
            return self.common.local_transfer(t).await;
        }
        let payload = match serde_json::to_string(t) {
            Ok(p) => p,
            Err(e) => return Outcome::Fail(e.to_string()),
        };
        let producer = self.producer.clone();
        let topic = t.to_bank().credit_topic();
        let key = t.id.to_string();
        let publish = Box::pin(async move {
            tokio::time::timeout(
                PUBLISH_TIMEOUT,
                producer.send(topic, key.as_bytes(), payload.as_bytes()),
            )
            .await
            .context("publish timed out")??;
            Ok(())
        });
        self.common
            .timed(async {
                let applied = self
                    .common
                    .bank(t.from_bank())
                    .debit(t, DebitExtra::Before(publish))
                    .await;
                Outcome::of_applied(applied, t)
            })
            .await
    }
}

#[async_trait]
impl Processes for DualWrite {
    async fn start(&self, role: Role) -> Result<()> {
        // The control never deduplicates, whatever the options say.
        if role == Role::Consumer {
            self.common
                .spawn_consumers(false, Isolation::ReadUncommitted);
        }
        Ok(())
    }

    async fn producing(&self) -> i64 {
        let producer = self.producer.clone();
        // Sends that timed out for the client may still be retried by the producer.
        tokio::task::spawn_blocking(move || producer.flush(Duration::from_millis(500)))
            .await
            .map(|r| i64::from(r.is_err()))
            .unwrap_or(1)
    }
}

#[async_trait]
impl Ledgers for DualWrite {
    async fn backlog(&self) -> Result<Backlog> {
        Ok(Backlog {
            outbox: 0,
            lag: self.common.lag().await?,
            producing: self.producing().await,
            ..Backlog::default()
        })
    }

    fn topics(&self) -> Vec<TopicSpec> {
        TopicSpec::credit_topics(false)
    }
}
