//! Scheme 2: **RocketMQ transactional messages**. A cross-bank transfer sends a half
//! message; the broker stores it and the producer runs the local transaction (debit +
//! ledger row + a `txstate` row, one DB transaction), then commits or rolls the message
//! back. A half message left undecided (the producer's answer lost, the local commit's
//! outcome unknown) is settled by the broker's check-back, which the listener answers
//! from the `txstate` table. A consumer per bank credits with deduplication and
//! acknowledges a message only once its credit (or its parking as a dead letter)
//! committed, so a consumer killed mid-way gets it again.
//!
//! The listener's methods are synchronous (rocketmq-client-rust 1.0): their database
//! calls run on a runtime of their own ([`DbRuntime`]) and the calling thread waits on
//! a channel, so no async runtime thread is blocked inside a `block_on`. The transfer
//! itself wraps the transactional send in `block_in_place`, since the local transaction
//! may run inline on the caller's thread. The consumers' handlers are synchronous too:
//! each credit runs on the same runtime while the handler's thread waits.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use async_trait::async_trait;

use crate::bank::{Applied, Bank, BankId, DebitExtra, Table, Transfer};
use crate::clients::rocketmq::{
    Delivered, HalfMessage, Producer, PushConsumer, Runtime, TxDecision, TxHandler, TxProducer,
};
use crate::components::{credit_or_park, Credit};
use crate::scheme::{
    Backlog, Common, Endpoints, Ledgers, Options, Outcome, Processes, Role, Scheme, Transfers,
};

/// How long a local transaction whose commit outcome is unknown stays "maybe" for
/// check-backs before an absent `txstate` row means it rolled back.
const UNCERTAIN_GRACE: Duration = Duration::from_secs(30);
/// The key of the message `setup` sends to create each topic and see each consumer
/// receive (a consumer subscribed before its topic exists waits for a rebalance round).
const WARMUP: &str = "warmup";
/// A consumer that has not seen a warm-up message (it restarted after its group consumed
/// it) counts as ready after this long.
const WARMUP_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest a listener waits for one database call.
const DB_TIMEOUT: Duration = Duration::from_secs(10);

/// A small runtime of its own for the listeners' database calls.
struct DbRuntime {
    rt: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
}

impl DbRuntime {
    fn new() -> Result<DbRuntime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("txmsg-db")
            .enable_all()
            .build()
            .context("building the listeners' runtime")?;
        Ok(DbRuntime {
            handle: rt.handle().clone(),
            rt: Mutex::new(Some(rt)),
        })
    }

    fn shutdown(&self) {
        if let Some(rt) = self.rt.lock().unwrap_or_else(|e| e.into_inner()).take() {
            rt.shutdown_background();
        }
    }
}

/// Runs `fut` on `handle` and blocks this (non-async) thread until it ends or
/// [`DB_TIMEOUT`] passes; `None` when it did not finish.
fn wait_on<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    fut: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        if let Ok(v) = tokio::time::timeout(DB_TIMEOUT, fut).await {
            let _ = tx.send(v);
        }
    });
    rx.recv().ok()
}

/// How a local transaction ended, as the sender needs to report it.
#[derive(Clone, Debug)]
enum LocalResult {
    Committed,
    Insufficient,
    Failed(String),
    Unknown(String),
}

/// State the listener shares with the sending side.
#[derive(Default)]
struct Shared {
    /// Local transactions running now (a check-back must answer "unknown").
    running: HashSet<u64>,
    /// Local transactions whose commit outcome is unknown, since when.
    uncertain: HashMap<u64, Instant>,
    /// Results of local transactions, taken by the sender.
    results: HashMap<u64, LocalResult>,
}

/// The transaction listener: the local transaction and the check-back.
struct Listener {
    banks: [Bank; 2],
    handle: tokio::runtime::Handle,
    shared: Arc<Mutex<Shared>>,
}

fn transfer_of(body: &[u8]) -> Option<Transfer> {
    serde_json::from_slice(body).ok()
}

impl Listener {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TxHandler for Listener {
    fn execute(&self, msg: &HalfMessage) -> TxDecision {
        let Some(t) = transfer_of(&msg.body) else {
            return TxDecision::Rollback;
        };
        self.lock().running.insert(t.id);
        let bank = self.banks[t.from_bank() as usize].clone();
        let t2 = t.clone();
        let applied = wait_on(&self.handle, async move {
            match bank.debit(&t2, DebitExtra::TxState).await {
                Applied::Committed => LocalResult::Committed,
                Applied::Insufficient => LocalResult::Insufficient,
                Applied::Failed(e) => LocalResult::Failed(format!("{e:#}")),
                Applied::Unknown(e) => LocalResult::Unknown(format!("{e:#}")),
            }
        })
        .unwrap_or_else(|| LocalResult::Unknown("local transaction timed out".to_string()));
        let decision = match applied {
            LocalResult::Committed => TxDecision::Commit,
            LocalResult::Insufficient | LocalResult::Failed(_) => TxDecision::Rollback,
            LocalResult::Unknown(_) => TxDecision::Unknown,
        };
        let mut shared = self.lock();
        shared.running.remove(&t.id);
        if decision == TxDecision::Unknown {
            shared.uncertain.insert(t.id, Instant::now());
        }
        shared.results.insert(t.id, applied);
        decision
    }

    fn check(&self, msg: &HalfMessage) -> TxDecision {
        let Some(t) = transfer_of(&msg.body) else {
            return TxDecision::Rollback;
        };
        if self.lock().running.contains(&t.id) {
            return TxDecision::Unknown;
        }
        let bank = self.banks[t.from_bank() as usize].clone();
        let id = t.id;
        match wait_on(&self.handle, async move { bank.tx_state(id).await }) {
            Some(Ok(Some(_))) => {
                self.lock().uncertain.remove(&id);
                TxDecision::Commit
            }
            Some(Ok(None)) => {
                // No state row. Roll back only once the half message is older than the
                // grace: a commit may still be landing, and a restarted producer has no
                // memory of it, so the age comes from the message's own born timestamp
                // (and, in this process, from when its commit became uncertain).
                let mut shared = self.lock();
                let young_in_memory = shared
                    .uncertain
                    .get(&id)
                    .is_some_and(|since| since.elapsed() < UNCERTAIN_GRACE);
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                let decision = without_state_row(young_in_memory, msg.born_ms, now_ms);
                if decision == TxDecision::Rollback {
                    shared.uncertain.remove(&id);
                }
                decision
            }
            // The database cannot say now: ask again later.
            _ => TxDecision::Unknown,
        }
    }
}

/// The check-back's answer for a half message whose local transaction left no state row:
/// unknown while it may still be landing — its commit became uncertain less than
/// [`UNCERTAIN_GRACE`] ago in this process, or the message was born less than that long
/// ago (which a restarted producer can still tell) — else rollback.
fn without_state_row(young_in_memory: bool, born_ms: Option<i64>, now_ms: i64) -> TxDecision {
    let young_by_birth = born_ms
        .is_some_and(|born| now_ms.saturating_sub(born) < UNCERTAIN_GRACE.as_millis() as i64);
    if young_in_memory || young_by_birth {
        TxDecision::Unknown
    } else {
        TxDecision::Rollback
    }
}

/// Runs `f` (which blocks) without stalling the async runtime this thread may belong to.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The transactional-message scheme.
pub struct TxMsg {
    common: Common,
    namesrv: String,
    db: Arc<DbRuntime>,
    client: Mutex<Option<Arc<Runtime>>>,
    producer: Mutex<Option<Arc<TxProducer>>>,
    consumers: Mutex<Vec<PushConsumer>>,
    /// Per consumer: it has seen its warm-up message (or started long enough ago).
    warm: Mutex<Vec<(Arc<AtomicBool>, Instant)>>,
    shared: Arc<Mutex<Shared>>,
}

impl TxMsg {
    /// Pools for both banks and the name server address; clients start in `start`.
    pub fn new(endpoints: &Endpoints, options: &Options) -> Result<TxMsg> {
        let Some(namesrv) = endpoints.rocketmq.clone() else {
            bail!("the txmsg scheme needs a RocketMQ name server");
        };
        Ok(TxMsg {
            common: Common::with_broker(endpoints, options, String::new())?,
            namesrv,
            db: Arc::new(DbRuntime::new()?),
            client: Mutex::new(None),
            producer: Mutex::new(None),
            consumers: Mutex::new(Vec::new()),
            warm: Mutex::new(Vec::new()),
            shared: Arc::new(Mutex::new(Shared::default())),
        })
    }

    /// Pools for both banks made on the listeners' runtime (pools belong to the runtime
    /// that made them).
    async fn db_banks(&self) -> Result<[Bank; 2]> {
        let (a, b) = (
            self.common.url(BankId::A).to_string(),
            self.common.url(BankId::B).to_string(),
        );
        self.db
            .handle
            .spawn(async move {
                Ok::<_, anyhow::Error>([
                    Bank::connect(BankId::A, &a, 6)?,
                    Bank::connect(BankId::B, &b, 6)?,
                ])
            })
            .await
            .context("making the listeners' pools")?
    }

    fn producer(&self) -> Option<Arc<TxProducer>> {
        self.producer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The process's RocketMQ client runtime, made on first use.
    fn client(&self) -> Result<Arc<Runtime>> {
        let mut client = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rt) = client.as_ref() {
            return Ok(rt.clone());
        }
        let rt = Arc::new(Runtime::new("txmsg")?);
        *client = Some(rt.clone());
        Ok(rt)
    }

    /// The transactional producer and its check listener; sends the warm-up messages
    /// that create the topics.
    async fn start_producer(&self) -> Result<()> {
        let client = self.client()?;
        let listener = Listener {
            banks: self.db_banks().await?,
            handle: self.db.handle.clone(),
            shared: self.shared.clone(),
        };
        let topics = [BankId::A.credit_topic(), BankId::B.credit_topic()];
        let producer =
            TxProducer::start(&client, &self.namesrv, "chaosbank-tx", &topics, listener).await?;
        // Create the topics (a consumer subscribed before its topic exists waits for a
        // rebalance round) and give each consumer group a first message to see.
        let warm = Producer::start(&client, &self.namesrv, "chaosbank-warmup").await?;
        for id in BankId::ALL {
            warm.send(id.credit_topic(), WARMUP, b"warmup", 10_000)
                .await?;
        }
        warm.shutdown().await;
        *self.producer.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(producer));
        Ok(())
    }

    /// One push consumer per bank. Each message is credited on the consumer's own
    /// thread and acknowledged only after the credit (or parking) committed, so a
    /// consumer killed mid-way gets the message redelivered (deduplicated).
    async fn start_consumers(&self) -> Result<()> {
        let client = self.client()?;
        let (dedup, max_attempts) = (self.common.options.dedup, self.common.options.max_attempts);
        let banks = self.db_banks().await?;
        let stop = self.common.stop_signal();
        for id in BankId::ALL {
            let seen = Arc::new(AtomicBool::new(false));
            let (bank, handle, flag, stop) = (
                banks[id as usize].clone(),
                self.db.handle.clone(),
                seen.clone(),
                stop.clone(),
            );
            let consumer = PushConsumer::start(
                &client,
                &self.namesrv,
                &format!("bank-{}", id.name().to_lowercase()),
                id.credit_topic(),
                move |d: &Delivered| {
                    if d.key.as_deref() == Some(WARMUP) {
                        flag.store(true, Ordering::Relaxed);
                        return true;
                    }
                    let Some(t) = transfer_of(&d.body) else {
                        tracing::error!("txmsg consumer: dropping malformed message {}", d.msg_id);
                        return true;
                    };
                    let (bank, mut stop) = (bank.clone(), stop.clone());
                    // Earlier deliveries count towards parking.
                    let left = max_attempts
                        .saturating_sub(u32::try_from(d.reconsume_times).unwrap_or(0))
                        .max(1);
                    blocking(|| {
                        let (tx, rx) = std::sync::mpsc::sync_channel(1);
                        handle.spawn(async move {
                            let who = "txmsg consumer";
                            let budget = None;
                            let done = credit_or_park(
                                &bank,
                                Credit::new(&t, dedup, left),
                                budget,
                                who,
                                &mut stop,
                            )
                            .await;
                            let _ = tx.send(done);
                        });
                        rx.recv().unwrap_or(false)
                    })
                },
            )
            .await?;
            self.warm
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((seen, Instant::now()));
            self.consumers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(consumer);
        }
        Ok(())
    }
}

impl Scheme for TxMsg {
    fn name(&self) -> &'static str {
        "txmsg"
    }

    fn common(&self) -> &Common {
        &self.common
    }
}

#[async_trait]
impl Transfers for TxMsg {
    async fn transfer(&self, t: &Transfer) -> Outcome {
        if t.is_local() {
            return self.common.local_transfer(t).await;
        }
        let Some(producer) = self.producer() else {
            return Outcome::Fail("the producer is not started".to_string());
        };
        let body = match serde_json::to_vec(t) {
            Ok(b) => b,
            Err(e) => return Outcome::Fail(e.to_string()),
        };
        let topic = t.to_bank().credit_topic();
        let key = t.id.to_string();
        let timeout = self.common.options.op_timeout;
        // The local transaction may run inline and blocks: keep it off the scheduler.
        let sent = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                tokio::time::timeout(timeout, producer.send(topic, &key, &body)).await
            })
        });
        let local = self
            .shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .results
            .remove(&t.id);
        match (sent, local) {
            // The local transaction ran: its result is the transfer's (a lost commit or
            // rollback message is settled by the check-back from `txstate`).
            (_, Some(LocalResult::Committed)) => {
                Outcome::Ok(serde_json::to_value(t).unwrap_or_default())
            }
            (_, Some(LocalResult::Insufficient)) => Outcome::Fail("insufficient funds".to_string()),
            (_, Some(LocalResult::Failed(e))) => Outcome::Fail(e),
            (_, Some(LocalResult::Unknown(e))) => Outcome::Info(e),
            // The half message was not stored (or not acknowledged) and no debit ran:
            // the broker's check-back finds no txstate row and rolls it back.
            (Ok(Err(e)), None) => Outcome::Fail(format!("{e:#}")),
            (Ok(Ok(s)), None) => Outcome::Info(format!(
                "the local transaction left no result (decision {:?})",
                s.decision
            )),
            (Err(_), None) => Outcome::Info(format!("timed out after {timeout:?}")),
        }
    }
}

#[async_trait]
impl Processes for TxMsg {
    async fn start(&self, role: Role) -> Result<()> {
        match role {
            Role::Producer => self.start_producer().await,
            Role::Consumer => self.start_consumers().await,
            Role::Relay => bail!("the txmsg scheme has no relay"),
        }
    }

    /// Every consumer has seen its warm-up message, or (a consumer restarted after its
    /// group consumed the warm-up) has run for [`WARMUP_TIMEOUT`].
    fn ready(&self) -> bool {
        self.warm
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .all(|(seen, since)| seen.load(Ordering::Relaxed) || since.elapsed() > WARMUP_TIMEOUT)
    }

    async fn stop(&self) {
        let consumers =
            std::mem::take(&mut *self.consumers.lock().unwrap_or_else(|e| e.into_inner()));
        let producer = self
            .producer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let client = self.client.lock().unwrap_or_else(|e| e.into_inner()).take();
        // The client's shutdown futures are not provably `Send` (the compiler gives up
        // on their types): run them to completion here instead of across an await.
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                for c in consumers {
                    c.shutdown().await;
                }
                if let Some(p) = producer.and_then(|p| Arc::try_unwrap(p).ok()) {
                    p.shutdown().await;
                }
                if let Some(rt) = client.and_then(|c| Arc::try_unwrap(c).ok()) {
                    rt.shutdown().await;
                }
            })
        });
        self.common.stop().await;
    }

    async fn teardown(&self) {
        self.stop().await;
        self.common.teardown().await;
        self.db.shutdown();
    }
}

#[async_trait]
impl Ledgers for TxMsg {
    async fn setup(&self, balances: &BTreeMap<String, i64>) -> Result<()> {
        self.common.setup_banks(balances).await
    }

    async fn backlog(&self) -> Result<Backlog> {
        // Every committed cross-bank debit has a txstate row in its bank; it is done when
        // the other bank has credited it (a positive ledger row: with or without dedup)
        // or parked it.
        let mut pending = 0;
        for id in BankId::ALL {
            let debited = self.common.bank(id).transfer_ids(Table::TxState).await?;
            let other = self.common.bank(id.other());
            let credited = other.transfer_ids(Table::Ledger).await?;
            let parked = other.transfer_ids(Table::DeadLetters).await?;
            pending += debited
                .iter()
                .filter(|t| !credited.contains(t) && !parked.contains(t))
                .count() as i64;
        }
        Ok(Backlog {
            outbox: 0,
            lag: pending,
            producing: 0,
            ..Backlog::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restarted_producer_waits_out_a_young_half_message() {
        let grace = UNCERTAIN_GRACE.as_millis() as i64;
        let now = 1_000_000_000;
        // A restarted producer remembers nothing: the message's age decides.
        assert_eq!(
            without_state_row(false, Some(now - 1_000), now),
            TxDecision::Unknown
        );
        assert_eq!(
            without_state_row(false, Some(now - grace - 1), now),
            TxDecision::Rollback
        );
        // This process saw the commit become uncertain recently.
        assert_eq!(
            without_state_row(true, Some(now - grace - 1), now),
            TxDecision::Unknown
        );
        // Nothing to go by: roll back.
        assert_eq!(without_state_row(false, None, now), TxDecision::Rollback);
    }
}
