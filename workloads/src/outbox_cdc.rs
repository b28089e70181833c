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

/// The outbox-cdc scheme.
pub struct OutboxCdc {
    common: Common,
    link: Option<ConnectLink>,
    restarts: Arc<Mutex<Vec<Restart>>>,
}

impl OutboxCdc {
    /// Pools for both banks; `endpoints.connect` is needed by [`Ledgers::setup`] (the
    /// harness side) only, not by the scheme's node processes.
    pub fn new(endpoints: &Endpoints, options: &Options) -> Result<OutboxCdc> {
        Ok(OutboxCdc {
            common: Common::new(endpoints, options)?,
            link: endpoints.connect.clone(),
            restarts: Arc::new(Mutex::new(Vec::new())),
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
        Ok(Backlog {
            outbox: b.unsent().await?,
            lag: self.common.lag().await?,
            uncredited,
            ..Backlog::default()
        })
    }

    fn topics(&self) -> Vec<TopicSpec> {
        TopicSpec::credit_topics(false)
    }
}
