//! Scheme 1 with an **exactly-once stage** (`outbox-eos`): the outbox as in
//! [`crate::outbox`], but the relay publishes to a `transfers-<bank>` topic, and a stage
//! per bank ([`crate::components::run_stage`]) consumes it `read_committed` and produces
//! each record to `credits-<bank>` in one Kafka transaction together with its consumer
//! offset (`send_offsets_to_transaction`). The consumer credits the bank from
//! `credits-<bank>`, `read_committed`, deduplicating as in the outbox.
//!
//! Kafka's exactly-once covers the stage (a read of Kafka and a write to Kafka); the
//! relay before it stays at-least-once (a row published, then the database gone before
//! the row is marked sent, is published again) and the consumer after it still
//! deduplicates, because the credit is a database write beside Kafka. The stage runs in
//! the relay's process: killing, pausing or cutting off the relay node breaks both.

use anyhow::Result;
use async_trait::async_trait;

use crate::bank::{BankId, Transfer};
use crate::clients::kafka::Isolation;
use crate::components::{self, StageConfig};
use crate::scheme::{
    Backlog, Common, Delivery, Endpoints, Ledgers, Options, Outcome, Processes, Role, Scheme,
    TopicSpec, Transfers,
};

/// The topic the relay publishes bank `id`'s incoming transfers to, which its stage
/// consumes.
pub fn transfers_topic(id: BankId) -> &'static str {
    match id {
        BankId::A => "transfers-a",
        BankId::B => "transfers-b",
    }
}

/// The stage's consumer group (its offsets commit in its transactions).
fn stage_group(id: BankId) -> String {
    format!("stage-{}", id.name().to_lowercase())
}

/// The outbox scheme with an exactly-once stage.
pub struct OutboxEos {
    common: Common,
}

impl OutboxEos {
    /// Pools for both banks.
    pub fn new(endpoints: &Endpoints, options: &Options) -> Result<OutboxEos> {
        Ok(OutboxEos {
            common: Common::new(endpoints, options)?,
        })
    }
}

impl Scheme for OutboxEos {
    fn name(&self) -> &'static str {
        "outbox-eos"
    }

    fn common(&self) -> &Common {
        &self.common
    }
}

#[async_trait]
impl Transfers for OutboxEos {
    async fn transfer(&self, t: &Transfer) -> Outcome {
        self.common
            .outbox_transfer(t, transfers_topic(t.to_bank()))
            .await
    }
}

#[async_trait]
impl Processes for OutboxEos {
    async fn start(&self, role: Role) -> Result<()> {
        match role {
            Role::Producer => {}
            Role::Relay => {
                self.common.spawn_relays();
                for id in BankId::ALL {
                    let cfg = StageConfig {
                        bootstrap: self.common.bootstrap.clone(),
                        source: transfers_topic(id).to_string(),
                        sink: id.credit_topic().to_string(),
                        group: stage_group(id),
                        transactional_id: format!("chaosbank-stage-{}", id.name().to_lowercase()),
                        batch: 64,
                    };
                    let stop = self.common.stop_signal();
                    self.common.spawn(
                        format!("exactly-once stage of bank {}", id.name()),
                        move || components::run_stage(cfg.clone(), stop.clone()),
                    );
                }
            }
            Role::Consumer => {
                let dedup = self.common.options.dedup;
                self.common.spawn_consumers(dedup, Isolation::ReadCommitted)
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Ledgers for OutboxEos {
    async fn setup(&self, balances: &std::collections::BTreeMap<String, i64>) -> Result<()> {
        self.common.setup(balances).await?;
        for id in BankId::ALL {
            crate::clients::kafka::create_topic(&self.common.bootstrap, transfers_topic(id), 1)
                .await?;
        }
        Ok(())
    }

    async fn backlog(&self) -> Result<Backlog> {
        let mut outbox = 0;
        let mut staged = 0;
        for id in BankId::ALL {
            outbox += self.common.bank(id).unsent().await?;
            staged += components::lag(
                &self.common.bootstrap,
                &stage_group(id),
                transfers_topic(id),
            )
            .await?;
        }
        Ok(Backlog {
            outbox,
            // What the stages have not moved on is in flight as much as what the
            // consumers have not read.
            lag: self.common.lag().await? + staged,
            producing: 0,
            ..Backlog::default()
        })
    }

    fn topics(&self) -> Vec<TopicSpec> {
        let mut specs = Vec::new();
        for id in BankId::ALL {
            specs.push(TopicSpec {
                topic: transfers_topic(id).to_string(),
                delivery: Delivery::AtLeastOnce,
                source: None,
                feeds: None,
                both_isolations: false,
            });
            specs.push(TopicSpec {
                topic: id.credit_topic().to_string(),
                delivery: Delivery::ExactlyOnce,
                source: Some(transfers_topic(id).to_string()),
                feeds: Some(id),
                both_isolations: true,
            });
        }
        specs
    }
}
