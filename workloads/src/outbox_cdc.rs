//! Scheme 1 as most teams run it: the **transactional outbox read by Debezium**. A
//! transfer from bank A debits the sender and inserts an outbox row in one PostgreSQL
//! transaction (insert-only: nothing marks it sent); Debezium's PostgreSQL connector on
//! a Kafka Connect worker (node `connect`, image `connect`) reads the inserts from the
//! write-ahead log (`pgoutput`, replication slot `chaosbank_outbox_a`) and its Outbox
//! Event Router publishes each row's payload to the topic the row names; the consumer
//! credits bank B with deduplication, as in [`crate::outbox`].
//!
//! Bank B is MariaDB, for which no Debezium connector is served here: its direction
//! (B → A) keeps the polling relay of [`crate::outbox`] ([`crate::components::run_relay`]
//! for bank B only).
//!
//! The harness starts the worker and passes its REST address in
//! [`Endpoints::connect`]; [`Ledgers::setup`] registers the connector, waits until its
//! task is `RUNNING`, and starts the supervisor ([`crate::connect::supervise`]) that
//! restarts a FAILED task (Connect never does) and keeps each restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;

use crate::bank::{BankId, Table, Transfer};
use crate::clients::kafka::Isolation;
use crate::connect::{self, Connect, ConnectLink, Restart, CONNECTOR};
use crate::system::{
    Backlog, Common, Endpoints, Ledgers, Options, Outcome, Processes, Role, Scheme, TopicSpec,
    Transfers,
};

/// How long the connector has to be `RUNNING` after it is registered.
const RUNNING_TIMEOUT: Duration = Duration::from_secs(120);
/// The drain's settle rule: once healed, a backlog unchanged this long while the
/// connector's task runs has settled, and what is uncredited then is judged lost (rows a
/// lost slot skipped are never read). Past Debezium's 10 s wait before it reconnects
/// and a Connect worker's restart and rebalance. While a task is not RUNNING the rule
/// waits ([`Backlog::stalled`]).
const SETTLE_AFTER: Duration = Duration::from_secs(45);
/// How many times the end-of-run check reads a FAILED connector, 5 s apart, before it
/// says the connector stays FAILED.
const FAILED_READS: u32 = 3;

/// The outbox-cdc scheme.
pub struct OutboxCdc {
    common: Common,
    link: Option<ConnectLink>,
    restarts: Arc<Mutex<Vec<Restart>>>,
    /// How many of `restarts` [`Ledgers::connector_events`] has handed out.
    taken: Mutex<usize>,
}

impl OutboxCdc {
    /// Pools for both banks; `endpoints.connect` is needed by [`Ledgers::setup`] (the
    /// harness side) only, not by the scheme's node processes.
    pub fn new(endpoints: &Endpoints, options: &Options) -> Result<OutboxCdc> {
        Ok(OutboxCdc {
            common: Common::new(endpoints, options)?,
            link: endpoints.connect.clone(),
            restarts: Arc::new(Mutex::new(Vec::new())),
            taken: Mutex::new(0),
        })
    }

    /// The FAILED tasks the supervisor restarted so far.
    pub fn restarts(&self) -> Vec<Restart> {
        self.restarts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Scheme for OutboxCdc {
    fn name(&self) -> &'static str {
        "outbox-cdc"
    }

    fn common(&self) -> &Common {
        &self.common
    }
}

#[async_trait]
impl Transfers for OutboxCdc {
    async fn transfer(&self, t: &Transfer) -> Outcome {
        self.common
            .outbox_transfer(t, t.to_bank().credit_topic())
            .await
    }
}

#[async_trait]
impl Processes for OutboxCdc {
    async fn start(&self, role: Role) -> Result<()> {
        match role {
            Role::Producer => {}
            // Bank A's outbox is Debezium's; the relay drains bank B's only.
            Role::Relay => self.common.spawn_relay(BankId::B),
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
impl Ledgers for OutboxCdc {
    async fn setup(&self, balances: &std::collections::BTreeMap<String, i64>) -> Result<()> {
        self.common.setup(balances).await?;
        let link = self
            .link
            .clone()
            .context("outbox-cdc needs a Kafka Connect worker (Endpoints::connect)")?;
        let config = connect::connector_config(&link.bank_a, self.common.options.slot_mismatch)?;
        let client = Connect::new(&link.rest);
        client
            .register(CONNECTOR, &config)
            .await
            .context("registering the Debezium connector")?;
        let status = client
            .wait_running(CONNECTOR, RUNNING_TIMEOUT)
            .await
            .context("waiting for the Debezium connector")?;
        tracing::info!("connector {CONNECTOR} running: {status:?}");
        let restarts = self.restarts.clone();
        let stop = self.common.stop_signal();
        let rest = link.rest.clone();
        self.common
            .spawn(format!("supervisor of connector {CONNECTOR}"), move || {
                connect::supervise(
                    Connect::new(&rest),
                    CONNECTOR.to_string(),
                    restarts.clone(),
                    stop.clone(),
                )
            });
        Ok(())
    }

    async fn backlog(&self) -> Result<Backlog> {
        // Bank A's outbox rows Debezium has not brought to bank B (credited or parked),
        // counted from the banks: nothing marks a row sent.
        let a = self.common.bank(BankId::A);
        let b = self.common.bank(BankId::B);
        let written = a.transfer_ids(Table::Outbox).await?;
        let credited = b.transfer_ids(Table::Ledger).await?;
        let parked = b.transfer_ids(Table::DeadLetters).await?;
        let uncredited = written
            .iter()
            .filter(|t| !credited.contains(t) && !parked.contains(t))
            .count() as i64;
        let running = match &self.link {
            Some(link) => Connect::new(&link.rest)
                .status(CONNECTOR)
                .await
                .is_ok_and(|s| s.running()),
            None => false,
        };
        Ok(Backlog {
            outbox: b.unsent().await?,
            lag: self.common.lag().await?,
            uncredited,
            stalled: i64::from(!running),
            ..Backlog::default()
        })
    }

    fn settle_after(&self) -> Option<Duration> {
        Some(SETTLE_AFTER)
    }

    fn connector_events(&self) -> Vec<Restart> {
        connect::take_new(&self.restarts, &self.taken)
    }

    async fn failed_connectors(&self) -> Vec<String> {
        let Some(link) = &self.link else {
            return Vec::new();
        };
        let client = Connect::new(&link.rest);
        let mut failed = Vec::new();
        for read in 0..FAILED_READS {
            if read > 0 {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            let Ok(status) = client.status(CONNECTOR).await else {
                // The worker does not answer: nothing to say of its tasks.
                return Vec::new();
            };
            failed = status
                .tasks
                .iter()
                .filter(|t| t.state == "FAILED")
                .map(|t| {
                    format!(
                        "connector {CONNECTOR} task {} FAILED: {}",
                        t.id,
                        t.trace.as_deref().unwrap_or("no trace")
                    )
                })
                .collect();
            let gave_up = self.restarts().iter().any(Restart::gave_up);
            if failed.is_empty() || gave_up {
                break;
            }
        }
        failed
    }

    fn topics(&self) -> Vec<TopicSpec> {
        TopicSpec::credit_topics(false)
    }
}
