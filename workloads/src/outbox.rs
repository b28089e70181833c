//! Scheme 1: the **transactional outbox** over the Kafka API. A cross-bank transfer
//! debits the sender and inserts an outbox row in one transaction; a relay per bank
//! ([`crate::components::run_relay`]) publishes unsent rows with an idempotent producer
//! and marks them sent; a consumer per bank ([`crate::components::run_consumer`])
//! credits and records the message id in one transaction, then commits its offset.
//! At-least-once delivery plus deduplication gives exactly-once effects.

use anyhow::Result;
use async_trait::async_trait;

use crate::bank::{BankId, Transfer};
use crate::clients::kafka::Isolation;
use crate::scheme::{
    Backlog, Common, Endpoints, Ledgers, Options, Outcome, Processes, Role, Scheme, TopicSpec,
    Transfers,
};

/// The outbox scheme.
pub struct Outbox {
    common: Common,
}

impl Outbox {
    /// Pools for both banks.
    pub fn new(endpoints: &Endpoints, options: &Options) -> Result<Outbox> {
        Ok(Outbox {
            common: Common::new(endpoints, options)?,
        })
    }
}

impl Scheme for Outbox {
    fn name(&self) -> &'static str {
        "outbox"
    }

    fn common(&self) -> &Common {
        &self.common
    }
}

#[async_trait]
impl Transfers for Outbox {
    async fn transfer(&self, t: &Transfer) -> Outcome {
        self.common
            .outbox_transfer(t, t.to_bank().credit_topic())
            .await
    }
}

#[async_trait]
impl Processes for Outbox {
    async fn start(&self, role: Role) -> Result<()> {
        match role {
            Role::Producer => {}
            Role::Relay => {
                self.common.spawn_relays();
            }
            Role::Consumer => {
                let dedup = self.common.options.dedup;
                self.common
                    .spawn_consumers(dedup, Isolation::ReadUncommitted)
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Ledgers for Outbox {
    async fn backlog(&self) -> Result<Backlog> {
        let mut outbox = 0;
        for id in BankId::ALL {
            outbox += self.common.bank(id).unsent().await?;
        }
        Ok(Backlog {
            outbox,
            lag: self.common.lag().await?,
            producing: 0,
            ..Backlog::default()
        })
    }

    fn topics(&self) -> Vec<TopicSpec> {
        TopicSpec::credit_topics(false)
    }
}
