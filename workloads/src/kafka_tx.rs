//! The second control: **Kafka transactions taken for atomicity** (`kafka-tx`). The
//! belief it encodes is common: "Kafka has exactly-once, so wrapping the publish in a
//! Kafka transaction makes the database write and the publish atomic". A cross-bank
//! transfer begins a Kafka transaction, debits the sender in its database transaction,
//! sends the credit message inside the Kafka transaction, commits the database
//! transaction, then commits the Kafka transaction. The consumer reads `read_committed`
//! and deduplicates, so only the producer's side is wrong.
//!
//! It is wrong because the two commits are still two: a Kafka commit that fails after
//! the database commit (the broker killed or cut off, the transaction coordinator
//! moving, the producer fenced) aborts the message of a debit that stands — lost money,
//! and the client is told the transfer failed; a producer killed between the two
//! commits leaves its transaction open until the broker aborts it; a database commit
//! still unanswered after the service's 2 s timeout (bank A slow or cut off) is aborted
//! in Kafka though it lands once bank A is back. Kafka's
//! exactly-once covers reads and writes *of Kafka*, not of a database beside it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use tokio::sync::Mutex;

use crate::bank::{Applied, DebitExtra, Transfer};
use crate::clients::kafka::{self, Isolation, Producer};
use crate::scheme::{
    Backlog, Common, Endpoints, Ledgers, Options, Outcome, Processes, Role, Scheme, TopicSpec,
    Transfers,
};

/// Transactional producers, each with a `transactional.id` of its own: a Kafka
/// producer runs one transaction at a time, so concurrent transfers take turns on
/// these.
const PRODUCERS: usize = 8;
/// How long the send inside the transaction may take (as dual-write's publish).
const SEND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the database transaction (debit, send, commit) may take before the service
/// gives up on it and aborts the Kafka transaction: the same naive request timeout.
const DB_TIMEOUT: Duration = Duration::from_secs(2);
/// How long committing or aborting a Kafka transaction may take: a naive service's
/// short request timeout, as dual-write's publish timeout (librdkafka's own default is
/// the whole `transaction.timeout.ms`).
const TX_TIMEOUT: Duration = Duration::from_secs(2);
/// How long initialising a transactional producer may take (after a broker restart
/// the transaction coordinator takes seconds to load).
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// One transactional producer, made when first needed and made anew after an error.
type Slot = Mutex<Option<Arc<Producer>>>;

/// The kafka-tx control scheme.
pub struct KafkaTx {
    common: Common,
    slots: Vec<Slot>,
    next: AtomicUsize,
}

impl KafkaTx {
    /// Pools; the transactional producers are made on the first transfers.
    pub fn new(endpoints: &Endpoints, options: &Options) -> Result<KafkaTx> {
        Ok(KafkaTx {
            common: Common::new(endpoints, options)?,
            slots: (0..PRODUCERS).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        })
    }

    /// The transactional id of slot `i`: the same in every producer process, so a
    /// restarted producer fences its predecessor (and Kafka aborts what it left open).
    fn transactional_id(i: usize) -> String {
        format!("chaosbank-kafka-tx-{i}")
    }

    /// The cross-bank transfer, holding slot `slot`'s producer.
    async fn transfer_on(
        &self,
        slot: &mut Option<Arc<Producer>>,
        i: usize,
        t: &Transfer,
    ) -> Outcome {
        let payload = match serde_json::to_string(t) {
            Ok(p) => p,
            Err(e) => return Outcome::Fail(e.to_string()),
        };
        let producer = match slot.clone() {
            Some(p) => p,
            None => {
                let (bootstrap, id) = (self.common.bootstrap.clone(), Self::transactional_id(i));
                match kafka::blocking(move || {
                    Producer::transactional(&bootstrap, &id, INIT_TIMEOUT)
                })
                .await
                {
                    Ok(p) => slot.insert(Arc::new(p)).clone(),
                    Err(e) => return Outcome::Fail(format!("{e:#}")),
                }
            }
        };
        let p = producer.clone();
        if let Err(e) = kafka::blocking(move || p.begin_transaction()).await {
            *slot = None;
            return Outcome::Fail(format!("{e:#}"));
        }
        let (p, topic, key) = (
            producer.clone(),
            t.to_bank().credit_topic(),
            t.id.to_string(),
        );
        let send = Box::pin(async move {
            tokio::time::timeout(
                SEND_TIMEOUT,
                p.send(topic, key.as_bytes(), payload.as_bytes()),
            )
            .await
            .context("send timed out")??;
            Ok(())
        });
        let debit = self
            .common
            .bank(t.from_bank())
            .debit(t, DebitExtra::Before(send));
        let applied = match tokio::time::timeout(DB_TIMEOUT, debit).await {
            // The believer's next step; the debit itself is already decided.
            Ok(Applied::Committed) => Outcome::Ok(serde_json::Value::Null),
            Ok(other) => Outcome::of_applied(other, t),
            // Its commit may still land: the Kafka transaction is aborted all the same.
            Err(_) => Outcome::Info(format!(
                "the database transaction did not answer within {DB_TIMEOUT:?}"
            )),
        };
        match applied {
            Outcome::Ok(_) => {
                let p = producer.clone();
                match kafka::blocking(move || p.commit_transaction(TX_TIMEOUT)).await {
                    Ok(()) => Outcome::of_applied(Applied::Committed, t),
                    // The service believes the two commits are one: it reports the
                    // transfer failed, though the debit has committed.
                    Err(e) => {
                        let why = format!("{e:#} (after the database commit)");
                        self.abort(slot, &producer, Outcome::Fail(why)).await
                    }
                }
            }
            other => self.abort(slot, &producer, other).await,
        }
    }

    /// Aborts the open Kafka transaction, dropping the producer if that fails too, and
    /// returns `outcome`.
    async fn abort(
        &self,
        slot: &mut Option<Arc<Producer>>,
        producer: &Arc<Producer>,
        outcome: Outcome,
    ) -> Outcome {
        let p = producer.clone();
        if let Err(e) = kafka::blocking(move || p.abort_transaction(TX_TIMEOUT)).await {
            tracing::debug!("kafka-tx: {e:#}; making the producer anew");
            *slot = None;
        }
        outcome
    }
}

impl Scheme for KafkaTx {
    fn name(&self) -> &'static str {
        "kafka-tx"
    }

    fn common(&self) -> &Common {
        &self.common
    }
}

#[async_trait]
impl Transfers for KafkaTx {
    async fn transfer(&self, t: &Transfer) -> Outcome {
        if t.is_local() {
            return self.common.local_transfer(t).await;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % PRODUCERS;
        let wait = self.common.options.op_timeout;
        let Ok(mut slot) = tokio::time::timeout(wait, self.slots[i].lock()).await else {
            return Outcome::Fail(format!("no transactional producer free within {wait:?}"));
        };
        self.transfer_on(&mut slot, i, t).await
    }
}

#[async_trait]
impl Processes for KafkaTx {
    async fn start(&self, role: Role) -> Result<()> {
        if role == Role::Consumer {
            let dedup = self.common.options.dedup;
            self.common.spawn_consumers(dedup, Isolation::ReadCommitted);
        }
        Ok(())
    }
}

#[async_trait]
impl Ledgers for KafkaTx {
    async fn backlog(&self) -> Result<Backlog> {
        Ok(Backlog {
            lag: self.common.lag().await?,
            ..Backlog::default()
        })
    }

    fn topics(&self) -> Vec<TopicSpec> {
        TopicSpec::credit_topics(true)
    }
}
