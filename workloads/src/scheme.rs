//! The `System` protocol (Jepsen's client + db in one): what a scheme under test offers
//! the harness — set up, invoke a transfer or a read, report its backlog (to know when
//! it has drained), stop its background components, read the final state, tear down.
//!
//! The parts every Kafka-API scheme shares (the two banks, local transfers, reads, the
//! consumers, the backlog, the final state) live in [`Common`].
//!
//! A leaf below the schemes: every scheme implements these types, and
//! [`crate::system::build`], above them all, picks one by its [`SystemKind`].

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Result};
use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bank::{Applied, Bank, BankId, DeadLetter, DebitExtra, FinalLedger, Transfer};
use crate::clients::kafka::Isolation;
use crate::components::{self, ConsumerConfig};

/// The outcome of one client operation, as the history records it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It happened; the op's completion value.
    Ok(Value),
    /// It certainly did not happen; why.
    Fail(String),
    /// Unknown whether it happened; why.
    Info(String),
}

impl Outcome {
    /// The outcome of a transaction that applied `t`.
    pub fn of_applied(a: Applied, t: &Transfer) -> Outcome {
        match a {
            Applied::Committed => Outcome::Ok(serde_json::to_value(t).unwrap_or(Value::Null)),
            Applied::Insufficient => Outcome::Fail("insufficient funds".to_string()),
            Applied::Failed(e) => Outcome::Fail(format!("{e:#}")),
            Applied::Unknown(e) => Outcome::Info(format!("{e:#}")),
        }
    }
}

/// Work a scheme has not finished: it has drained when everything is zero.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Backlog {
    /// Outbox rows not yet published (scheme 1).
    pub outbox: i64,
    /// Messages not yet consumed, over every consumer group.
    pub lag: i64,
    /// Messages the producer has not had acknowledged yet.
    pub producing: i64,
    /// Transfers debited in bank A that bank B has neither credited nor parked (a
    /// service under the contract, observed through its ledgers).
    #[serde(skip_serializing_if = "is_zero")]
    pub uncredited: i64,
    /// 1 while a service's ledgers changed within its quiet period (a credit a broker's
    /// late check-back commits is not missed by a drain that ended too soon), else 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub ledgers_moving: i64,
    /// Connector tasks not `RUNNING` (a Debezium scheme): what they have not published
    /// is held, not settled, so the settle rule waits while this is not 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stalled: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl Backlog {
    /// True when nothing is left to do.
    pub fn is_empty(&self) -> bool {
        self.outbox == 0
            && self.lag == 0
            && self.producing == 0
            && self.uncredited == 0
            && self.ledgers_moving == 0
    }
}

impl fmt::Display for Backlog {
    /// The parts still in flight, e.g. `3 unconsumed messages`; `nothing in flight`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [
            (self.outbox, "unsent outbox rows"),
            (self.lag, "unconsumed messages"),
            (self.producing, "unacknowledged sends"),
            (self.uncredited, "debits neither credited nor parked"),
            (self.ledgers_moving, "ledgers still changing"),
            (self.stalled, "connector tasks not running"),
        ]
        .iter()
        .filter(|(n, _)| *n != 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            f.write_str("nothing in flight")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// What is read after the run: both ledgers and every parked message.
#[derive(Clone, Debug, Default)]
pub struct FinalState {
    /// One per bank.
    pub ledgers: Vec<FinalLedger>,
    /// Messages parked for manual intervention.
    pub dead_letters: Vec<DeadLetter>,
    /// Ledger rows (bank name, row) whose transfer id chaosbank never sent: a service's
    /// own ids, recorded as written for the checker to report.
    pub foreign: Vec<(String, crate::bank::ForeignEntry)>,
}

/// What a system under test promises for a topic's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Delivery {
    /// A record may be published more than once (retries, a relay's re-publish).
    #[serde(rename = "at-least-once")]
    AtLeastOnce,
    /// Each record once (Kafka transactions: a stage's consume-transform-produce).
    #[serde(rename = "exactly-once")]
    ExactlyOnce,
}

impl Delivery {
    /// `at-least-once` or `exactly-once`, as the history's `topic-log` op spells it.
    pub fn name(self) -> &'static str {
        match self {
            Delivery::AtLeastOnce => "at-least-once",
            Delivery::ExactlyOnce => "exactly-once",
        }
    }
}

/// A Kafka topic whose whole log the harness reads back at the end of a run (partition
/// 0), and what the checker is told of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    /// The topic.
    pub topic: String,
    /// What the system promises for it.
    pub delivery: Delivery,
    /// The topic its records are derived from (a stage consumed it and produced here).
    pub source: Option<String>,
    /// The bank credited from it.
    pub feeds: Option<BankId>,
    /// Read it `read_committed` and `read_uncommitted` (written in Kafka transactions,
    /// so the two can differ); else once, `read_committed`.
    pub both_isolations: bool,
}

impl TopicSpec {
    /// The credit topics of both banks, read by the consumers: at-least-once, feeding
    /// their bank; `transactional` when written in Kafka transactions.
    pub fn credit_topics(transactional: bool) -> Vec<TopicSpec> {
        BankId::ALL
            .into_iter()
            .map(|id| TopicSpec {
                topic: id.credit_topic().to_string(),
                delivery: Delivery::AtLeastOnce,
                source: None,
                feeds: Some(id),
                both_isolations: transactional,
            })
            .collect()
    }
}

/// One record of a topic log read back: its offset, the transfer it carries (its id as
/// text; the payload's text when it carries none), and for a derived record the position
/// of its source record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicRecord {
    /// Its offset.
    pub offset: i64,
    /// The transfer id it carries.
    pub key: String,
    /// The source record's `(partition, offset)`.
    pub source: Option<(i32, i64)>,
    /// For a CDC record, the WAL position (PostgreSQL LSN) of the change it was made from.
    pub lsn: Option<u64>,
}

/// A topic partition's whole log as one isolation level showed it at the end of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicLog {
    /// Which topic, and what it promises.
    pub spec: TopicSpec,
    /// The partition (0).
    pub partition: i32,
    /// How it was read.
    pub isolation: Isolation,
    /// Every record, in offset order.
    pub records: Vec<TopicRecord>,
    /// Where the read ended: every record before it was read.
    pub end_offset: i64,
}

/// One of the processes a scheme is made of. Each runs in its own node container (or,
/// with `--in-process`, as tasks of the harness).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Takes transfer requests: the debit, and the publish or half message the scheme
    /// ties to it (for txmsg also the check listener).
    Producer,
    /// Publishes outbox rows (outbox only).
    Relay,
    /// Credits the receiving bank from the broker.
    Consumer,
}

impl Role {
    /// The role's name, also its node's name (`producer`, `relay`, `consumer`).
    pub fn name(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Relay => "relay",
            Role::Consumer => "consumer",
        }
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Producer, Role::Relay, Role::Consumer]
            .into_iter()
            .find(|r| r.name() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What every scheme is: its name and the banks, options and components it shares.
/// The three sides of a system under test build on it: [`Transfers`] (what the
/// workload's clients invoke), [`Processes`] (what it deploys and runs) and
/// [`Ledgers`] (how a run sets up and reads the banks); [`System`] is all three.
pub trait Scheme: Send + Sync {
    /// `dual-write`, `outbox` or `txmsg`.
    fn name(&self) -> &'static str;
    /// The banks, options and components every scheme shares.
    fn common(&self) -> &Common;
}

/// The client side: the ops the workload invokes (for a service under the contract,
/// `POST /transfers`).
#[async_trait]
pub trait Transfers: Scheme {
    /// Moves money; `Ok` means the sending side committed (the credit may be pending).
    async fn transfer(&self, t: &Transfer) -> Outcome;
    /// Reads every balance of one bank in one transaction.
    async fn read(&self, bank: BankId) -> Outcome {
        self.common().read(bank).await
    }
}

/// The processes a scheme runs (its producer, relay and consumer roles, or a
/// service's processes), their start, readiness and stop.
#[async_trait]
pub trait Processes: Scheme {
    /// Starts one of the scheme's processes ([`SystemKind::roles`]) in this process.
    async fn start(&self, role: Role) -> Result<()>;
    /// True once what [`Processes::start`] started serves (a txmsg consumer has seen
    /// its warm-up message).
    fn ready(&self) -> bool {
        true
    }
    /// Sends the producer has not had acknowledged yet (dual-write's producer retries).
    async fn producing(&self) -> i64 {
        0
    }
    /// Stops the background components (before the final read).
    async fn stop(&self) {
        self.common().stop().await
    }
    /// Stops the components and closes connections.
    async fn teardown(&self) {
        self.common().teardown().await
    }
}

/// How a run sets up the banks and reads them: what is in flight, and at the end both
/// ledgers and the parked messages.
#[async_trait]
pub trait Ledgers: Scheme {
    /// Creates schemas, seeds the accounts with `balances`, creates topics (Kafka).
    async fn setup(&self, balances: &BTreeMap<String, i64>) -> Result<()> {
        self.common().setup(balances).await
    }
    /// What is still in flight.
    async fn backlog(&self) -> Result<Backlog>;
    /// For a system seen only through its ledgers (a service under the contract): once
    /// everything is healed, a backlog unchanged for this long has settled — what is
    /// still uncredited then will not be credited. `None`: wait for an empty backlog.
    fn settle_after(&self) -> Option<Duration> {
        None
    }
    /// Both ledgers and the parked messages.
    async fn final_state(&self) -> Result<FinalState> {
        self.common().final_state().await
    }
    /// The Kafka topics whose logs are read back at the end (none by default).
    fn topics(&self) -> Vec<TopicSpec> {
        Vec::new()
    }
    /// The logs of [`Ledgers::topics`], read whole after the drain.
    async fn topic_logs(&self) -> Result<Vec<TopicLog>> {
        self.common().topic_logs(&self.topics()).await
    }
    /// What the connector supervisor saw and did since the last call (a Debezium
    /// scheme's FAILED tasks and their restarts), for the history; none by default.
    fn connector_events(&self) -> Vec<Restart> {
        Vec::new()
    }
    /// The connectors whose tasks are FAILED at the end of the run and stay so, each
    /// named with its error; none by default.
    async fn failed_connectors(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A scheme under test: its clients' side, its processes and its ledgers.
pub trait System: Transfers + Processes + Ledgers {}

impl<T: Transfers + Processes + Ledgers + ?Sized> System for T {}

/// The schemes chaosbank knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SystemKind {
    /// Scheme 0, the control: debit and publish in one DB transaction, no dedup.
    #[serde(rename = "dual-write")]
    DualWrite,
    /// Scheme 1: transactional outbox + relay + deduplicating consumer (Kafka API).
    #[serde(rename = "outbox")]
    Outbox,
    /// Scheme 2: RocketMQ transactional messages with a deduplicating consumer.
    #[serde(rename = "txmsg")]
    TxMsg,
    /// The second control: a Kafka transaction around the debit's database transaction,
    /// taken for atomicity (two commits all the same); consumer `read_committed`.
    #[serde(rename = "kafka-tx")]
    KafkaTx,
    /// Scheme 1 with an exactly-once stage: relay → `transfers` topic → a stage moving
    /// each record to `credits` in one Kafka transaction with its offset → consumer.
    #[serde(rename = "outbox-eos")]
    OutboxEos,
    /// Scheme 1 read from the write-ahead log: bank A's outbox published by Debezium on
    /// Kafka Connect (Outbox Event Router), bank B's by the relay; deduplicating consumer.
    #[serde(rename = "outbox-cdc")]
    OutboxCdc,
}

impl SystemKind {
    /// Every scheme, controls first.
    pub const ALL: [SystemKind; 6] = [
        SystemKind::DualWrite,
        SystemKind::KafkaTx,
        SystemKind::Outbox,
        SystemKind::OutboxEos,
        SystemKind::TxMsg,
        SystemKind::OutboxCdc,
    ];

    /// Every scheme's name, comma-separated, for messages and help.
    pub fn names() -> String {
        SystemKind::ALL.map(SystemKind::name).join(", ")
    }

    /// Parses `dual-write`, `kafka-tx`, `outbox`, `outbox-eos`, `outbox-cdc` or `txmsg`.
    pub fn parse(s: &str) -> Option<SystemKind> {
        match s {
            "dual-write" | "dualwrite" => Some(SystemKind::DualWrite),
            "outbox" => Some(SystemKind::Outbox),
            "outbox-eos" => Some(SystemKind::OutboxEos),
            "outbox-cdc" => Some(SystemKind::OutboxCdc),
            "txmsg" => Some(SystemKind::TxMsg),
            "kafka-tx" | "kafkatx" => Some(SystemKind::KafkaTx),
            _ => None,
        }
    }

    /// The name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            SystemKind::DualWrite => "dual-write",
            SystemKind::Outbox => "outbox",
            SystemKind::OutboxEos => "outbox-eos",
            SystemKind::OutboxCdc => "outbox-cdc",
            SystemKind::TxMsg => "txmsg",
            SystemKind::KafkaTx => "kafka-tx",
        }
    }

    /// The processes the scheme is made of, in start order.
    pub fn roles(self) -> &'static [Role] {
        match self {
            SystemKind::Outbox | SystemKind::OutboxEos | SystemKind::OutboxCdc => {
                &[Role::Producer, Role::Relay, Role::Consumer]
            }
            SystemKind::DualWrite | SystemKind::KafkaTx | SystemKind::TxMsg => {
                &[Role::Producer, Role::Consumer]
            }
        }
    }

    /// True when the scheme runs over the Kafka API (else RocketMQ).
    pub fn uses_kafka(self) -> bool {
        !matches!(self, SystemKind::TxMsg)
    }

    /// True when the scheme runs a Kafka Connect worker with Debezium (node `connect`),
    /// which reads bank A's write-ahead log (PostgreSQL with `wal_level=logical`).
    pub fn uses_connect(self) -> bool {
        self == SystemKind::OutboxCdc
    }
}

impl fmt::Display for SystemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the engines are.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Endpoints {
    /// Bank A's PostgreSQL URL.
    pub bank_a: String,
    /// Bank B's MariaDB URL.
    pub bank_b: String,
    /// Kafka bootstrap server `host:port`.
    pub kafka: Option<String>,
    /// RocketMQ name server `host:port`.
    pub rocketmq: Option<String>,
    /// The Kafka Connect worker of `outbox-cdc`, as the harness reaches it.
    #[serde(default)]
    pub connect: Option<ConnectLink>,
}

/// How a scheme behaves.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Options {
    /// Consumers record message ids and skip ones seen (the switch that shows the
    /// checker catches duplicates when off). The dual-write control never dedups.
    pub dedup: bool,
    /// A consumer parks a message after failing it this many times.
    pub max_attempts: u32,
    /// A client op that takes longer is abandoned as `info`.
    pub op_timeout: Duration,
    /// Connections per bank.
    pub connections: u32,
    /// The consumers of topics written in Kafka transactions (kafka-tx, outbox-eos) read
    /// `read_uncommitted`: the misconfiguration the checker's topics model convicts of
    /// aborted reads.
    pub read_uncommitted: bool,
    /// outbox-cdc: the Debezium connector's `offset.mismatch.strategy`.
    pub slot_mismatch: SlotMismatch,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dedup: true,
            max_attempts: 30,
            op_timeout: Duration::from_secs(10),
            connections: 16,
            read_uncommitted: false,
            slot_mismatch: SlotMismatch::default(),
        }
    }
}

/// What every scheme shares (the broker address is the Kafka bootstrap server for the
/// Kafka-API schemes, the RocketMQ name server for txmsg).
pub struct Common {
    banks: [Bank; 2],
    urls: [String; 2],
    /// The Kafka bootstrap server (empty for RocketMQ schemes).
    pub bootstrap: String,
    /// The scheme's options.
    pub options: Options,
    stop_tx: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Common {
    /// Pools for both banks (lazy) and the Kafka broker address.
    pub fn new(endpoints: &Endpoints, options: &Options) -> Result<Common> {
        let Some(bootstrap) = endpoints.kafka.clone() else {
            bail!("this scheme needs a Kafka-API broker");
        };
        Common::with_broker(endpoints, options, bootstrap)
    }

    /// Pools for both banks (lazy) and any broker address.
    pub fn with_broker(
        endpoints: &Endpoints,
        options: &Options,
        bootstrap: String,
    ) -> Result<Common> {
        Ok(Common {
            banks: [
                Bank::connect(BankId::A, &endpoints.bank_a, options.connections)?,
                Bank::connect(BankId::B, &endpoints.bank_b, options.connections)?,
            ],
            urls: [endpoints.bank_a.clone(), endpoints.bank_b.clone()],
            bootstrap,
            options: options.clone(),
            stop_tx: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// A bank's pool.
    pub fn bank(&self, id: BankId) -> &Bank {
        &self.banks[id as usize]
    }

    /// A bank's database URL.
    pub fn url(&self, id: BankId) -> &str {
        &self.urls[id as usize]
    }

    /// A receiver that turns `true` when the components must stop.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop_tx.subscribe()
    }

    /// Schemas and accounts.
    pub async fn setup_banks(&self, balances: &BTreeMap<String, i64>) -> Result<()> {
        for bank in &self.banks {
            bank.create_schema().await?;
            bank.seed(balances).await?;
        }
        Ok(())
    }

    /// Schemas, accounts and Kafka topics.
    pub async fn setup(&self, balances: &BTreeMap<String, i64>) -> Result<()> {
        self.setup_banks(balances).await?;
        for id in BankId::ALL {
            crate::clients::kafka::create_topic(&self.bootstrap, id.credit_topic(), 1).await?;
        }
        Ok(())
    }

    /// Runs a background component until [`Common::stop`], made by `make`. A component
    /// that returns an error is logged and made anew (after a backoff of 1 s, doubling
    /// to 10 s): a relay or consumer that gives up for good would leave the run's
    /// backlog undrained by a fault the scheme must survive.
    pub fn spawn<F, Fut>(&self, what: String, make: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let mut stop = self.stop_signal();
        let handle = tokio::spawn(async move {
            let mut wait = Duration::from_secs(1);
            loop {
                match make().await {
                    Ok(()) => return,
                    Err(e) if *stop.borrow() => {
                        return tracing::debug!("{what} stopped: {e:#}");
                    }
                    Err(e) => {
                        tracing::error!("{what} stopped: {e:#}; starting it again in {wait:?}")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    // The run is over once its stop signal is gone.
                    r = stop.changed() => if r.is_err() { return; },
                }
                if *stop.borrow() {
                    return;
                }
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(handle);
    }

    /// The consumer group that credits bank `id`.
    pub fn group(id: BankId) -> String {
        format!("bank-{}", id.name().to_lowercase())
    }

    /// Starts one consumer per bank, crediting it from its topic, reading records of
    /// committed Kafka transactions only when `isolation` says so (and
    /// [`Options::read_uncommitted`] does not say otherwise).
    pub fn spawn_consumers(&self, dedup: bool, isolation: Isolation) {
        let isolation = if self.options.read_uncommitted {
            Isolation::ReadUncommitted
        } else {
            isolation
        };
        for id in BankId::ALL {
            let cfg = ConsumerConfig {
                bank: id,
                bank_url: self.url(id).to_string(),
                bootstrap: self.bootstrap.clone(),
                topic: id.credit_topic().to_string(),
                group: Common::group(id),
                dedup,
                max_attempts: self.options.max_attempts,
                isolation,
            };
            let stop = self.stop_signal();
            self.spawn(format!("consumer of bank {}", id.name()), move || {
                components::run_consumer(cfg.clone(), stop.clone())
            });
        }
    }

    /// Runs `fut` within the op timeout; running out is `info`.
    pub async fn timed(&self, fut: impl Future<Output = Outcome>) -> Outcome {
        match tokio::time::timeout(self.options.op_timeout, fut).await {
            Ok(o) => o,
            Err(_) => Outcome::Info(format!("timed out after {:?}", self.options.op_timeout)),
        }
    }

    /// A transfer within one bank.
    pub async fn local_transfer(&self, t: &Transfer) -> Outcome {
        self.timed(async {
            Outcome::of_applied(self.bank(t.from_bank()).local_transfer(t).await, t)
        })
        .await
    }

    /// Scheme 1's transfer: a local one in one transaction, else the debit and an outbox
    /// row for `topic` (the transfer as JSON) in one transaction of the sender's bank.
    pub async fn outbox_transfer(&self, t: &Transfer, topic: &str) -> Outcome {
        if t.is_local() {
            return self.local_transfer(t).await;
        }
        let payload = match serde_json::to_string(t) {
            Ok(p) => p,
            Err(e) => return Outcome::Fail(e.to_string()),
        };
        self.timed(async {
            let extra = DebitExtra::Outbox {
                topic,
                payload: &payload,
            };
            Outcome::of_applied(self.bank(t.from_bank()).debit(t, extra).await, t)
        })
        .await
    }

    /// Starts one outbox relay per bank ([`components::run_relay`]): 100 rows a poll,
    /// 20 ms between polls that found nothing.
    pub fn spawn_relays(&self) {
        for id in BankId::ALL {
            self.spawn_relay(id);
        }
    }

    /// Starts the outbox relay of bank `id` alone (see [`Common::spawn_relays`]).
    pub fn spawn_relay(&self, id: BankId) {
        let cfg = components::RelayConfig {
            bank: id,
            bank_url: self.url(id).to_string(),
            bootstrap: self.bootstrap.clone(),
            batch: 100,
            idle: std::time::Duration::from_millis(20),
        };
        let stop = self.stop_signal();
        self.spawn(format!("relay of bank {}", id.name()), move || {
            components::run_relay(cfg.clone(), stop.clone())
        });
    }

    /// A read of one bank's balances (a read cannot change anything: a failed one is
    /// `fail`).
    pub async fn read(&self, id: BankId) -> Outcome {
        match tokio::time::timeout(self.options.op_timeout, self.bank(id).read()).await {
            Ok(Ok(balances)) => Outcome::Ok(serde_json::to_value(balances).unwrap_or(Value::Null)),
            Ok(Err(e)) => Outcome::Fail(format!("{e:#}")),
            Err(_) => Outcome::Fail("timed out".to_string()),
        }
    }

    /// Unconsumed messages over both consumer groups.
    pub async fn lag(&self) -> Result<i64> {
        let mut total = 0;
        for id in BankId::ALL {
            total +=
                components::lag(&self.bootstrap, &Common::group(id), id.credit_topic()).await?;
        }
        Ok(total)
    }

    /// Stops every component and waits (bounded) for them to finish.
    pub async fn stop(&self) {
        let _ = self.stop_tx.send(true);
        let handles: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for mut h in handles {
            if tokio::time::timeout(Duration::from_secs(15), &mut h)
                .await
                .is_err()
            {
                tracing::warn!("a component did not stop within 15 s; aborting it");
                h.abort();
            }
        }
    }

    /// Both ledgers and every parked message.
    pub async fn final_state(&self) -> Result<FinalState> {
        let mut state = FinalState::default();
        for bank in &self.banks {
            state.ledgers.push(bank.final_ledger().await?);
            state.dead_letters.extend(bank.dead_letters().await?);
        }
        Ok(state)
    }

    /// Reads each of `specs` whole (partition 0), once or with both isolation levels;
    /// an error names the topic that could not be read to its end.
    pub async fn topic_logs(&self, specs: &[TopicSpec]) -> Result<Vec<TopicLog>> {
        let mut logs = Vec::new();
        for spec in specs {
            if spec.both_isolations {
                // A transaction still open (its producer killed, not yet aborted by the
                // coordinator) holds the committed read's end below the log's end:
                // wait for it to be decided, so every record is read decided.
                let mut pair = Vec::new();
                for attempt in 0..15 {
                    pair = Vec::new();
                    for isolation in [Isolation::ReadCommitted, Isolation::ReadUncommitted] {
                        pair.push(self.topic_log(spec, isolation).await?);
                    }
                    if pair[0].end_offset >= pair[1].end_offset || attempt == 14 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                logs.extend(pair);
            } else {
                logs.push(self.topic_log(spec, Isolation::ReadCommitted).await?);
            }
        }
        Ok(logs)
    }

    /// Reads `spec`'s partition 0 whole as `isolation` shows it.
    async fn topic_log(&self, spec: &TopicSpec, isolation: Isolation) -> Result<TopicLog> {
        {
            {
                let (bootstrap, topic) = (self.bootstrap.clone(), spec.topic.clone());
                let log = tokio::task::spawn_blocking(move || {
                    crate::clients::kafka::read_log(
                        &bootstrap,
                        &topic,
                        0,
                        isolation,
                        Duration::from_secs(60),
                    )
                })
                .await
                .map_err(|e| anyhow::anyhow!("the log reader panicked: {e}"))??;
                let records = log
                    .records
                    .into_iter()
                    .map(|r| TopicRecord {
                        offset: r.offset,
                        key: transfer_key(r.payload.as_deref()),
                        source: r.source,
                        lsn: r.lsn,
                    })
                    .collect();
                Ok(TopicLog {
                    spec: spec.clone(),
                    partition: 0,
                    isolation,
                    records,
                    end_offset: log.end_offset,
                })
            }
        }
    }

    /// Closes the pools.
    pub async fn teardown(&self) {
        self.stop().await;
        for bank in &self.banks {
            bank.close().await;
        }
    }
}

/// The transfer id a message carries, as text: the `id` of its JSON payload; else the
/// payload itself (lossy, at most 64 bytes), so that an odd record still shows.
fn transfer_key(payload: Option<&[u8]>) -> String {
    #[derive(serde::Deserialize)]
    struct Id {
        id: Value,
    }
    let Some(payload) = payload else {
        return "(no payload)".to_string();
    };
    match serde_json::from_slice::<Id>(payload) {
        Ok(Id {
            id: Value::String(s),
        }) => s,
        Ok(Id {
            id: Value::Number(n),
        }) => n.to_string(),
        _ => String::from_utf8_lossy(&payload[..payload.len().min(64)]).into_owned(),
    }
}

/// Shared handle type for schemes that keep a producer.
pub type SharedProducer = Arc<crate::clients::kafka::Producer>;

/// Where the Debezium connector reads bank A, as the Connect worker sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConnectLink {
    /// The worker's REST API from the harness, `host:port`.
    pub rest: String,
    /// Bank A's PostgreSQL URL as the worker reaches it (its forwarder).
    pub bank_a: String,
}

/// What the connector does when its stored offset and the replication slot disagree
/// (`offset.mismatch.strategy`, Debezium 3.7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlotMismatch {
    /// `no_validation`, Debezium's default: the slot's position is not checked, so a
    /// slot made anew (after a failover) streams from "now".
    #[default]
    NoValidation,
    /// `trust_offset`: the slot is advanced to the stored offset when behind, and the
    /// task fails when the slot is ahead of it (a slot made anew), loudly.
    TrustOffset,
}

impl SlotMismatch {
    /// The setting's value as Debezium spells it.
    pub fn value(self) -> &'static str {
        match self {
            SlotMismatch::NoValidation => "no_validation",
            SlotMismatch::TrustOffset => "trust_offset",
        }
    }

    /// Parses `no_validation` or `trust_offset` (or the kebab-case spellings).
    pub fn parse(s: &str) -> Option<SlotMismatch> {
        match s {
            "no_validation" | "no-validation" => Some(SlotMismatch::NoValidation),
            "trust_offset" | "trust-offset" => Some(SlotMismatch::TrustOffset),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_records_key_is_its_transfers_id_else_its_text() {
        let t = br#"{"id":17,"from":"A/1","to":"B/2","amount":5}"#;
        assert_eq!(transfer_key(Some(t)), "17");
        assert_eq!(transfer_key(Some(br#"{"id":"t9"}"#)), "t9");
        assert_eq!(transfer_key(Some(b"warmup")), "warmup");
        assert_eq!(transfer_key(None), "(no payload)");
        assert_eq!(transfer_key(Some(&[b'x'; 100])).len(), 64);
    }

    #[test]
    fn outbox_eos_is_a_kafka_scheme_with_a_relay() {
        assert_eq!(SystemKind::parse("outbox-eos"), Some(SystemKind::OutboxEos));
        assert_eq!(SystemKind::OutboxEos.name(), "outbox-eos");
        assert!(SystemKind::OutboxEos.uses_kafka());
        assert!(SystemKind::OutboxEos.roles().contains(&Role::Relay));
        assert!(SystemKind::names().contains("outbox-eos"));
    }

    #[test]
    fn outbox_cdc_is_the_one_scheme_with_a_connect_worker() {
        assert_eq!(SystemKind::parse("outbox-cdc"), Some(SystemKind::OutboxCdc));
        assert_eq!(SystemKind::OutboxCdc.name(), "outbox-cdc");
        assert!(SystemKind::OutboxCdc.uses_kafka());
        assert!(SystemKind::OutboxCdc.roles().contains(&Role::Relay));
        let with_connect: Vec<_> = SystemKind::ALL
            .into_iter()
            .filter(|k| k.uses_connect())
            .collect();
        assert_eq!(with_connect, vec![SystemKind::OutboxCdc]);
    }
}

/// A FAILED task the supervisor saw, and what it did: restarted it, or (its restarts
/// spent) left it FAILED.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Restart {
    /// The connector.
    pub connector: String,
    /// The task.
    pub task: i64,
    /// Why it had failed (the first line of its trace).
    pub reason: String,
    /// Whether the restart request was accepted (false when refused or not made).
    pub accepted: bool,
    /// This task's restart number (1, 2, …); 0 when none was made: the
    /// [`crate::connect::MAX_RESTARTS`] were spent and the task is left FAILED.
    pub attempt: u32,
    /// Why no restart happened, when none did (the worker refused it, or the budget
    /// was spent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl Restart {
    /// True when the supervisor gave up on the task (its restarts spent).
    pub fn gave_up(&self) -> bool {
        self.attempt == 0
    }
}
