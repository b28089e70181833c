//! Scheme 2: **RocketMQ transactional messages**. A cross-bank transfer sends a half
//! message; the broker stores it and the producer runs the local transaction (debit +
//! ledger row + a `txstate` row, one DB transaction), then commits or rolls the message
//! back. A half message left undecided (the producer's answer lost, the local commit's
//! outcome unknown) is settled by the broker's check-back, which the listener answers
//! from the `txstate` table. A consumer per bank credits with deduplication.
//!
//! The listener's methods are synchronous (rocketmq-client-rust 1.0): their database
//! calls run on a runtime of their own ([`DbRuntime`]) and the calling thread waits on
//! a channel, so no async runtime thread is blocked inside a `block_on`. The transfer
//! itself wraps the transactional send in `block_in_place`, since the local transaction
//! may run inline on the caller's thread.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use async_trait::async_trait;

use crate::bank::{
    Applied, Bank, BankId, Credited, DeadLetter, DebitExtra, Permanent, Table, Transfer,
};
use crate::clients::rocketmq::{
    Delivered, HalfMessage, Producer, PushConsumer, Runtime, TxDecision, TxHandler, TxProducer,
};
use crate::system::{Backlog, Common, Endpoints, FinalState, Options, Outcome, System};

/// How long a local transaction whose commit outcome is unknown stays "maybe" for
/// check-backs before an absent `txstate` row means it rolled back.
const UNCERTAIN_GRACE: Duration = Duration::from_secs(30);
/// The key of the message `setup` sends to create each topic and see each consumer
/// receive (a consumer subscribed before its topic exists waits for a rebalance round).
const WARMUP: &str = "warmup";
/// The longest `setup` waits for the consumers to receive the warm-up messages.
const WARMUP_TIMEOUT: Duration = Duration::from_secs(90);
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
                let mut shared = self.lock();
                match shared.uncertain.get(&id) {
                    Some(since) if since.elapsed() < UNCERTAIN_GRACE => TxDecision::Unknown,
                    _ => {
                        shared.uncertain.remove(&id);
                        TxDecision::Rollback
                    }
                }
            }
            // The database cannot say now: ask again later.
            _ => TxDecision::Unknown,
        }
    }
}

/// A consumer's credit loop: each delivered message is credited (with dedup) with
/// retries and backoff, and parked after `max_attempts` failures.
///
/// The push consumer's handler must not block (a blocking handler exhausted the client
/// runtime's blocking lane and sent messages to the retry topic, ~30 s late), so the
/// wrapper's channel mode acknowledges a message once it is queued here. That is
/// at-most-once past the queue if this process dies: fine while the consumer runs in
/// the harness process (its death ends the run), to be replaced by an acknowledgement
/// after the credit when the consumer moves to its own container.
async fn credit_loop(
    bank: Bank,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Delivered>,
    dedup: bool,
    max_attempts: u32,
    ready: Arc<AtomicBool>,
) {
    while let Some(d) = rx.recv().await {
        if d.key.as_deref() == Some(WARMUP) {
            ready.store(true, Ordering::Relaxed);
            continue;
        }
        let Some(t) = transfer_of(&d.body) else {
            tracing::error!("txmsg consumer: dropping malformed message {}", d.msg_id);
            continue;
        };
        let mut backoff = Duration::from_millis(50);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let err = match tokio::time::timeout(DB_TIMEOUT, bank.credit(&t, dedup)).await {
                Ok(Ok(Credited::Applied | Credited::Duplicate)) => break,
                Ok(Err(e)) => e,
                Err(_) => anyhow::anyhow!("credit timed out"),
            };
            if err.downcast_ref::<Permanent>().is_some() || attempts >= max_attempts {
                let letter = DeadLetter {
                    transfer: t.id,
                    reason: format!("failed {attempts} times; last: {err:#}"),
                };
                tracing::warn!(
                    "txmsg consumer: parking transfer {}: {}",
                    t.id,
                    letter.reason
                );
                while let Err(e) = bank.park(&letter).await {
                    tracing::debug!("txmsg consumer: parking {}: {e:#}", t.id);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                break;
            }
            tracing::debug!(
                "txmsg consumer: credit {} attempt {attempts}: {err:#}",
                t.id
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

/// The transactional-message scheme.
pub struct TxMsg {
    common: Common,
    namesrv: String,
    db: Arc<DbRuntime>,
    client: Mutex<Option<Runtime>>,
    producer: Mutex<Option<Arc<TxProducer>>>,
    consumers: Mutex<Vec<PushConsumer>>,
    shared: Arc<Mutex<Shared>>,
}

impl TxMsg {
    /// Pools for both banks and the name server address; clients start in `setup`.
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
}

#[async_trait]
impl System for TxMsg {
    fn name(&self) -> &'static str {
        "txmsg"
    }

    async fn setup(&self, balances: &BTreeMap<String, i64>) -> Result<()> {
        self.common.setup_banks(balances).await?;
        let client = Runtime::new("txmsg")?;
        let listener = Listener {
            banks: self.db_banks().await?,
            handle: self.db.handle.clone(),
            shared: self.shared.clone(),
        };
        let topics = [BankId::A.credit_topic(), BankId::B.credit_topic()];
        let producer =
            TxProducer::start(&client, &self.namesrv, "chaosbank-tx", &topics, listener).await?;
        // Create the topics before anyone subscribes.
        let warm = Producer::start(&client, &self.namesrv, "chaosbank-warmup").await?;
        for id in BankId::ALL {
            warm.send(id.credit_topic(), WARMUP, b"warmup", 10_000)
                .await?;
        }
        warm.shutdown().await;
        let (dedup, max_attempts) = (self.common.options.dedup, self.common.options.max_attempts);
        let mut ready = Vec::new();
        for id in BankId::ALL {
            let (consumer, rx) = PushConsumer::start_channel(
                &client,
                &self.namesrv,
                &format!("bank-{}", id.name().to_lowercase()),
                id.credit_topic(),
            )
            .await?;
            let seen = Arc::new(AtomicBool::new(false));
            ready.push(seen.clone());
            let bank = self.common.bank(id).clone();
            self.common.spawn(
                format!("txmsg consumer of bank {}", id.name()),
                async move {
                    credit_loop(bank, rx, dedup, max_attempts, seen).await;
                    Ok(())
                },
            );
            self.consumers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(consumer);
        }
        let waited = Instant::now();
        while !ready.iter().all(|r| r.load(Ordering::Relaxed)) {
            if waited.elapsed() > WARMUP_TIMEOUT {
                bail!("the consumers did not receive their warm-up messages within {WARMUP_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::info!("txmsg consumers ready in {:.1?}", waited.elapsed());
        *self.producer.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(producer));
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = Some(client);
        Ok(())
    }

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

    async fn read(&self, bank: BankId) -> Outcome {
        self.common.read(bank).await
    }

    async fn backlog(&self) -> Result<Backlog> {
        // Every committed cross-bank debit has a txstate row; every credit a dedup row.
        let mut pending = 0;
        for id in BankId::ALL {
            let bank = self.common.bank(id);
            pending += bank.count(Table::TxState).await?;
            pending -= bank.count(Table::Dedup).await?;
            pending -= bank.count(Table::DeadLetters).await?;
        }
        Ok(Backlog {
            outbox: 0,
            lag: pending.max(0),
            producing: 0,
        })
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
                if let Some(rt) = client {
                    rt.shutdown().await;
                }
            })
        });
        // The credit loops end once their queues are empty.
        self.common.stop().await;
    }

    async fn final_state(&self) -> Result<FinalState> {
        self.common.final_state().await
    }

    async fn teardown(&self) {
        self.stop().await;
        self.common.teardown().await;
        self.db.shutdown();
    }
}
