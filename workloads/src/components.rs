//! The long-running parts of the Kafka-API schemes, each a plain async function of its
//! configuration and a stop signal: [`run_relay`] (outbox → broker) and
//! [`run_consumer`] (broker → the other bank). For now the harness runs them as tokio
//! tasks in its own process; they take nothing from the harness but their config, so a
//! `chaosbank node relay|consumer` subcommand in the node image can call them as they
//! are, and the nemesis can then kill, pause and partition them like the engines.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::bank::{Bank, BankId, Credited, DeadLetter, OutboxRow, Permanent, ReadFrom, Transfer};
use crate::clients::kafka::{blocking, Consumer, Isolation, Producer};

/// What a relay needs.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The bank whose outbox it drains.
    pub bank: BankId,
    /// That bank's database URL.
    pub bank_url: String,
    /// The Kafka bootstrap server.
    pub bootstrap: String,
    /// Rows per poll.
    pub batch: i64,
    /// Pause between polls that found nothing.
    pub idle: Duration,
}

/// What a consumer needs.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// The bank it credits.
    pub bank: BankId,
    /// That bank's database URL.
    pub bank_url: String,
    /// The Kafka bootstrap server.
    pub bootstrap: String,
    /// The topic of credits into the bank.
    pub topic: String,
    /// Its consumer group.
    pub group: String,
    /// Record message ids in the credit transaction and skip ones already seen.
    pub dedup: bool,
    /// Park a message after this many failed attempts.
    pub max_attempts: u32,
    /// Which records it reads: [`Isolation::ReadCommitted`] for topics written in Kafka
    /// transactions.
    pub isolation: Isolation,
}

/// What an exactly-once stage needs ([`run_stage`]).
#[derive(Clone, Debug)]
pub struct StageConfig {
    /// The Kafka bootstrap server.
    pub bootstrap: String,
    /// The topic it consumes (partition 0), `read_committed`.
    pub source: String,
    /// The topic it produces to.
    pub sink: String,
    /// The consumer group whose offset commits with each transaction.
    pub group: String,
    /// Its `transactional.id`: the same in every incarnation, so that a new one fences
    /// the old and the broker aborts what the old left open.
    pub transactional_id: String,
    /// The most records in one transaction.
    pub batch: usize,
}

/// How long one step of a stage's transaction (init, begin, offsets, commit) may take.
const STAGE_TX_TIMEOUT: Duration = Duration::from_secs(10);

/// The exactly-once stage (Kafka's consume-transform-produce loop): reads a batch of
/// `source` `read_committed` from the group's committed offset, and in one Kafka
/// transaction sends each record to `sink` (same key and payload, its source position
/// in a header) and the group's new offset (`send_offsets_to_transaction`), then
/// commits. On any error the transaction is aborted and the producer and consumer are
/// made anew: the new producer's `init_transactions` fences the old one and settles
/// what it left open, and the new consumer starts from the offset that committed, so
/// every source record reaches `sink` in exactly one committed transaction.
pub async fn run_stage(cfg: StageConfig, mut stop: watch::Receiver<bool>) -> Result<()> {
    let who = format!("stage {} → {}", cfg.source, cfg.sink);
    let mut backoff = BACKOFF_START;
    while !*stop.borrow() {
        match stage_session(&cfg, &who, &mut stop).await {
            Ok(()) => break,
            Err(e) => {
                // A stage that keeps failing re-sends what it read: say why, loudly.
                tracing::warn!("{who}: {e:#}; starting over in {backoff:?}");
                if sleep_or_stop(backoff, &mut stop).await {
                    break;
                }
                backoff = next_backoff(backoff);
            }
        }
    }
    Ok(())
}

/// One incarnation of the stage: its producer and consumer, until an error or the stop.
async fn stage_session(
    cfg: &StageConfig,
    who: &str,
    stop: &mut watch::Receiver<bool>,
) -> Result<()> {
    let (bootstrap, id) = (cfg.bootstrap.clone(), cfg.transactional_id.clone());
    let producer = std::sync::Arc::new(
        blocking(move || Producer::transactional(&bootstrap, &id, STAGE_TX_TIMEOUT)).await?,
    );
    let consumer = std::sync::Arc::new(Consumer::assigned(
        &cfg.bootstrap,
        &cfg.group,
        &[&cfg.source],
        Isolation::ReadCommitted,
    )?);
    let mut stall = StallWatch::new();
    while !*stop.borrow() {
        let first = match consumer.poll(Duration::from_millis(100)).await? {
            Some(r) => r,
            None => {
                if let Some(why) = stall.check(&consumer, &cfg.source, None) {
                    anyhow::bail!("nothing read for {STALL_AFTER:?} though {why}");
                }
                continue;
            }
        };
        stall.record();
        let mut records = vec![first];
        while records.len() < cfg.batch {
            match consumer.poll(Duration::ZERO).await {
                Ok(Some(r)) => records.push(r),
                _ => break,
            }
        }
        let p = producer.clone();
        blocking(move || p.begin_transaction()).await?;
        let sent = async {
            let sends = records.iter().map(|r| {
                let producer = &producer;
                async move {
                    let key = r.key.as_deref().unwrap_or_default();
                    let payload = r.payload.as_deref().unwrap_or_default();
                    tokio::time::timeout(
                        PUBLISH_TIMEOUT,
                        producer.send_derived(&cfg.sink, key, payload, (r.partition, r.offset)),
                    )
                    .await
                    .context("publish timed out")?
                    .map(drop)
                }
            });
            for r in futures_util::future::join_all(sends).await {
                r?;
            }
            let next = records.last().map_or(0, |r| r.offset + 1);
            let (p, c, source) = (producer.clone(), consumer.clone(), cfg.source.clone());
            blocking(move || p.send_offsets_to_transaction(&c, &source, 0, next, STAGE_TX_TIMEOUT))
                .await?;
            let p = producer.clone();
            blocking(move || p.commit_transaction(STAGE_TX_TIMEOUT)).await
        };
        if let Err(e) = sent.await {
            let p = producer.clone();
            if let Err(abort) = blocking(move || p.abort_transaction(STAGE_TX_TIMEOUT)).await {
                tracing::debug!("{who}: {abort:#}");
            }
            return Err(e);
        }
        tracing::trace!("{who}: {} records in one transaction", records.len());
    }
    Ok(())
}

/// How often a busy consumer commits its offset.
const COMMIT_EVERY: Duration = Duration::from_millis(200);
const BACKOFF_START: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long one publish may take before the relay gives up on the batch.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

fn next_backoff(d: Duration) -> Duration {
    (d * 2).min(BACKOFF_MAX)
}

/// Sleeps `d` unless told to stop first; returns true when told to stop.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        r = stop.changed() => r.is_err() || *stop.borrow(),
    }
}

/// The outbox relay: polls unsent rows (`FOR UPDATE SKIP LOCKED`, in batches), publishes
/// them with an idempotent producer, marks them sent in the same transaction; on any
/// error the batch stays unsent and is retried with exponential backoff. A row can be
/// published twice (published, then the database went away before the mark committed):
/// the consumers deduplicate.
pub async fn run_relay(cfg: RelayConfig, mut stop: watch::Receiver<bool>) -> Result<()> {
    let bank = Bank::connect(cfg.bank, &cfg.bank_url, 2)?;
    let producer = Producer::connect(&cfg.bootstrap, true)?;
    let mut backoff = BACKOFF_START;
    loop {
        let publish = |rows: Vec<OutboxRow>| {
            let producer = &producer;
            async move {
                let sends = rows.iter().map(|r| async move {
                    let key = r.id.to_string();
                    tokio::time::timeout(
                        PUBLISH_TIMEOUT,
                        producer.send(&r.topic, key.as_bytes(), r.payload.as_bytes()),
                    )
                    .await
                    .context("publish timed out")?
                    .map(drop)
                });
                for r in futures_util::future::join_all(sends).await {
                    r?;
                }
                Ok(())
            }
        };
        let wait = match bank.relay_batch(cfg.batch, publish).await {
            Ok(0) => {
                backoff = BACKOFF_START;
                cfg.idle
            }
            Ok(n) => {
                tracing::trace!("relay {}: sent {n}", cfg.bank.name());
                backoff = BACKOFF_START;
                Duration::ZERO
            }
            Err(e) => {
                tracing::debug!("relay {}: {e:#}; retrying in {backoff:?}", cfg.bank.name());
                let b = backoff;
                backoff = next_backoff(backoff);
                b
            }
        };
        if sleep_or_stop(wait, &mut stop).await {
            break;
        }
    }
    bank.close().await;
    Ok(())
}

/// How long a consumer may read nothing while its partition holds unread records before
/// it is made anew. Measured on Apache Kafka 4.1: a fresh consumer's first OffsetFetch
/// (librdkafka's fetch of the committed offset for an assigned partition) sometimes went
/// unanswered for 15 s, and the consumer read nothing meanwhile; made anew, it read at
/// once.
const STALL_AFTER: Duration = Duration::from_secs(5);

/// The most messages a consumer credits in one transaction.
const CREDIT_BATCH: usize = 64;

/// The consumer: credits each message into the bank (with `dedup`, recording the
/// message id in the same transaction). Messages already waiting are credited together
/// in one transaction; if that fails, one by one, each retried with backoff and, after
/// `max_attempts` failures, parked in `dead_letters`. Only then are their offsets
/// committed (batched: every 200 ms while busy, and when idle), so a crash between the
/// credit and the commit redelivers the messages (harmless with dedup, duplicates
/// without).
pub async fn run_consumer(cfg: ConsumerConfig, mut stop: watch::Receiver<bool>) -> Result<()> {
    let bank = Bank::connect(cfg.bank, &cfg.bank_url, 2)?;
    let mut consumer =
        Consumer::assigned(&cfg.bootstrap, &cfg.group, &[&cfg.topic], cfg.isolation)?;
    let who = format!("consumer {}", cfg.bank.name());
    // A consumer that reads nothing for STALL_AFTER while the partition holds records
    // past what it processed is stuck (seen on Apache Kafka: its first fetch of the
    // committed offset unanswered for 15 s), and so is one the broker no longer answers:
    // it is made anew from the committed offsets ([`StallWatch`]).
    let mut stall = StallWatch::new();
    let mut next_offset: Option<i64> = None;
    // The last processed record whose offset is not committed yet, and when we last
    // committed: offsets are committed at most every COMMIT_EVERY (and when idle), not
    // per message, which would cap throughput at one broker round trip per credit.
    let mut pending: Option<crate::clients::kafka::Record> = None;
    let mut last_commit = Instant::now();
    while !*stop.borrow() {
        if pending.is_some() && last_commit.elapsed() >= COMMIT_EVERY {
            commit(&consumer, pending.take(), &who);
            last_commit = Instant::now();
        }
        let first = match consumer.poll(Duration::from_millis(100)).await {
            Ok(Some(r)) => r,
            polled => {
                match polled {
                    Err(e) => {
                        tracing::debug!("{who}: {e:#}");
                        if sleep_or_stop(Duration::from_millis(200), &mut stop).await {
                            break;
                        }
                    }
                    _ => {
                        commit(&consumer, pending.take(), &who);
                        last_commit = Instant::now();
                        // A transaction's commit or abort marker takes an offset no
                        // record has (at either isolation level): commit the position
                        // past it, or the group would lag by one for good.
                        commit_position(&consumer, &cfg.topic, &mut next_offset, &who);
                    }
                }
                // Idle or failing alike: a consumer that reads nothing while its
                // partition holds records past the group's offset is made anew.
                if let Some(why) = stall.check(&consumer, &cfg.topic, next_offset) {
                    tracing::warn!(
                        "{who}: nothing read for {STALL_AFTER:?} though {why}: reconnecting"
                    );
                    let fresh = Consumer::assigned(
                        &cfg.bootstrap,
                        &cfg.group,
                        &[&cfg.topic],
                        cfg.isolation,
                    )?;
                    let old = std::mem::replace(&mut consumer, fresh);
                    // Its close waits for a broker that may not answer: on a thread of
                    // its own, not a runtime worker (two consumers remade at once after
                    // a Kafka pause blocked both of a 2-core node's workers, its control
                    // port's included, for good). Detached: a close that never returns
                    // holds up nothing, not even the process's exit.
                    std::thread::spawn(move || drop(old));
                }
                continue;
            }
        };
        stall.record();
        // Whatever else is already here joins the batch.
        let mut records = vec![first];
        while records.len() < CREDIT_BATCH {
            match consumer.poll(Duration::ZERO).await {
                Ok(Some(r)) => records.push(r),
                _ => break,
            }
        }
        let mut transfers = Vec::with_capacity(records.len());
        for record in &records {
            let parsed: Result<Transfer> = record
                .payload
                .as_deref()
                .context("a message without payload")
                .and_then(|p| serde_json::from_slice(p).context("a malformed transfer message"));
            let from = ReadFrom {
                topic: record.topic.clone(),
                partition: record.partition,
                offset: record.offset,
            };
            match parsed {
                Ok(t) => transfers.push((t, from)),
                // Nothing to credit and no transfer id to park it under.
                Err(e) => tracing::error!("{who}: skipping offset {}: {e:#}", record.offset),
            }
        }
        // Bounded like a single credit: a query on a connection the network cut
        // silently would otherwise hold the consumer until TCP gives up.
        let with: Vec<(&Transfer, Option<&ReadFrom>)> =
            transfers.iter().map(|(t, f)| (t, Some(f))).collect();
        let together = transfers.len() > 1
            && matches!(
                tokio::time::timeout(CREDIT_TIMEOUT, bank.credit_all_from(&with, cfg.dedup)).await,
                Ok(Ok(_))
            );
        if !together {
            for (t, from) in &transfers {
                let (dedup, max) = (cfg.dedup, cfg.max_attempts);
                let credit = Credit::new(t, dedup, max).read_from(from);
                if !credit_or_park(&bank, credit, None, &who, &mut stop).await {
                    // Stopped: the offsets of what was not credited stay uncommitted.
                    commit(&consumer, pending.take(), &who);
                    bank.close().await;
                    return Ok(());
                }
            }
        }
        pending = records.pop();
        next_offset = pending.as_ref().map(|r| r.offset + 1).or(next_offset);
    }
    commit(&consumer, pending.take(), &who);
    bank.close().await;
    Ok(())
}

/// How many stall probes in a row the broker may leave unanswered before a consumer
/// that reads nothing is made anew anyway: its own connections may be the ones broken
/// (seen after a consumer node was cut off: it read nothing for 150 s after the heal
/// while the partition held 123 records for it).
const UNANSWERED_PROBES: u32 = 3;

/// Decides when a consumer that reads nothing is stuck and must be made anew: every
/// [`STALL_AFTER`] without a record it probes the partition ([`stalled`]); a partition
/// holding records past the group's offset, or [`UNANSWERED_PROBES`] probes in a row the
/// broker did not answer, say so.
struct StallWatch {
    last_record: Instant,
    unanswered: u32,
}

impl StallWatch {
    fn new() -> StallWatch {
        StallWatch {
            last_record: Instant::now(),
            unanswered: 0,
        }
    }

    /// A record was read.
    fn record(&mut self) {
        self.last_record = Instant::now();
        self.unanswered = 0;
    }

    /// A poll gave nothing: why the consumer should be made anew, if it should.
    fn check(
        &mut self,
        consumer: &Consumer,
        topic: &str,
        processed: Option<i64>,
    ) -> Option<String> {
        if self.last_record.elapsed() < STALL_AFTER {
            return None;
        }
        self.last_record = Instant::now();
        match stalled(consumer, topic, processed) {
            Ok(why) => {
                self.unanswered = 0;
                why
            }
            Err(e) => {
                self.unanswered += 1;
                if self.unanswered < UNANSWERED_PROBES {
                    return None;
                }
                self.unanswered = 0;
                Some(format!(
                    "the broker left {UNANSWERED_PROBES} probes in a row unanswered (last: {e:#})"
                ))
            }
        }
    }
}

/// Why an idle consumer is stuck, if it is: partition 0 of `topic` ends past the group's
/// committed offset (or, when the group's coordinator does not answer, past what this
/// consumer processed). `Ok(None)` when it is idle for good reason; an error when the
/// broker did not answer the probe.
fn stalled(consumer: &Consumer, topic: &str, processed: Option<i64>) -> Result<Option<String>> {
    let timeout = Duration::from_secs(2);
    // Both calls block (within `timeout`): keep them off the runtime's other tasks.
    let high = tokio::task::block_in_place(|| consumer.high_watermark(topic, 0, timeout))?;
    let committed = tokio::task::block_in_place(|| consumer.committed(timeout))
        .ok()
        .and_then(|offsets| {
            offsets
                .into_iter()
                .find(|(t, p, _)| t == topic && *p == 0)
                .and_then(|(_, _, o)| o)
        });
    let done = committed.or(processed).unwrap_or(0);
    Ok((high > done).then(|| format!("{topic}/0 ends at {high} and the group is at {done}")))
}

/// How long one credit may take before it counts as a failed attempt.
const CREDIT_TIMEOUT: Duration = Duration::from_secs(10);

/// One credit to make ([`credit_or_park`]): the transfer, whether to deduplicate, after
/// how many failures to park it, and the Kafka record it was read from, if any.
#[derive(Clone, Copy, Debug)]
pub struct Credit<'a> {
    /// The transfer to credit.
    pub transfer: &'a Transfer,
    /// Record its message id and skip it if seen.
    pub dedup: bool,
    /// Park it after this many failures a retry may not fix.
    pub max_attempts: u32,
    /// The record it was read from, written into its ledger row.
    pub read_from: Option<&'a ReadFrom>,
}

impl<'a> Credit<'a> {
    /// A credit of `transfer` read from no Kafka record.
    pub fn new(transfer: &'a Transfer, dedup: bool, max_attempts: u32) -> Credit<'a> {
        Credit {
            transfer,
            dedup,
            max_attempts,
            read_from: None,
        }
    }

    /// The same, read from `record`.
    pub fn read_from(self, record: &'a ReadFrom) -> Credit<'a> {
        Credit {
            read_from: Some(record),
            ..self
        }
    }
}

/// Credits one transfer (with `dedup`, recording its message id in the same
/// transaction), retrying with exponential backoff; after `max_attempts` failures, or a
/// permanent one (no such account), parks it in `dead_letters` for a person — and
/// parking is retried until it is recorded. Returns false when told to stop before the
/// transfer was credited or parked (the caller must then leave it to be redelivered).
///
/// With a `budget`, it also gives up (false) once that much time has passed without a
/// credit: a RocketMQ consumer's handler must return soon, and the message then comes
/// back through the broker's retry topic.
pub async fn credit_or_park(
    bank: &Bank,
    credit: Credit<'_>,
    budget: Option<Duration>,
    who: &str,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let Credit {
        transfer,
        dedup,
        max_attempts,
        read_from,
    } = credit;
    let started = Instant::now();
    let mut backoff = BACKOFF_START;
    // Failures that a retry may not fix; outages (transient failures) never count, so
    // a long outage of the bank parks nothing: manual intervention is for what retries
    // cannot fix.
    let mut attempts = 0;
    let mut tries = 0u64;
    loop {
        tries += 1;
        let limit = budget.map_or(CREDIT_TIMEOUT, |b| {
            CREDIT_TIMEOUT.min(b.saturating_sub(started.elapsed()).max(BACKOFF_START))
        });
        let err =
            match tokio::time::timeout(limit, bank.credit_from(transfer, read_from, dedup)).await {
                Ok(Ok(Credited::Applied | Credited::Duplicate)) => return true,
                Ok(Err(e)) => e,
                Err(_) => anyhow::anyhow!("credit timed out after {limit:?}"),
            };
        let permanent = err.downcast_ref::<Permanent>().is_some();
        if !is_transient(&err) {
            attempts += 1;
        }
        if !permanent && attempts < max_attempts && budget.is_some_and(|b| started.elapsed() >= b) {
            tracing::debug!(
                "{who}: credit {} not done within {budget:?}: {err:#}",
                transfer.id
            );
            return false;
        }
        if permanent || attempts >= max_attempts {
            let letter = DeadLetter {
                transfer: transfer.id,
                reason: if permanent {
                    format!("{err:#}")
                } else {
                    format!("failed {attempts} times in {tries} tries; last: {err:#}")
                },
            };
            tracing::warn!(
                "{who}: parking transfer {}: {}",
                letter.transfer,
                letter.reason
            );
            // Parking must not be lost: retry until it is recorded, we stop, or the
            // budget is spent (the message then comes again and is parked then).
            while let Err(e) = bank.park(&letter).await {
                tracing::debug!("{who}: parking {}: {e:#}", letter.transfer);
                if budget.is_some_and(|b| started.elapsed() >= b)
                    || sleep_or_stop(BACKOFF_MAX, stop).await
                {
                    return false;
                }
            }
            return true;
        }
        tracing::debug!("{who}: credit {} try {tries}: {err:#}", transfer.id);
        if sleep_or_stop(backoff, stop).await {
            return false;
        }
        backoff = next_backoff(backoff);
    }
}

/// True for a failure a retry may fix once the outage ends: the database unreachable
/// (refused, reset, closed, a pool that timed out), a credit that timed out, a deadlock
/// or serialization failure. A constraint violation or anything else unforeseen counts
/// towards parking; an unknown account ([`Permanent`]) parks at once.
pub fn is_transient(err: &anyhow::Error) -> bool {
    if err.downcast_ref::<Permanent>().is_some() {
        return false;
    }
    if let Some(e) = err.downcast_ref::<sqlx::Error>() {
        return match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            // Deadlock / serialization failure (PostgreSQL 40001, 40P01; MariaDB 1213
            // deadlock, 1205 lock wait timeout).
            sqlx::Error::Database(d) => d
                .code()
                .is_some_and(|c| matches!(c.as_ref(), "40001" | "40P01" | "1213" | "1205")),
            _ => false,
        };
    }
    let text = format!("{err:#}");
    text.contains("timed out") || text.contains("connection")
}

/// Commits a processed record's offset (everything up to it); a failed commit only
/// means a redelivery later.
fn commit(consumer: &Consumer, record: Option<crate::clients::kafka::Record>, who: &str) {
    let Some(record) = record else { return };
    if let Err(e) = consumer.commit(&record) {
        tracing::debug!("{who}: {e:#}");
    }
}

/// Commits this consumer's position in partition 0 of `topic` when it is past
/// `processed` (transaction markers read after the last record), and records it there.
/// Call it only when every record read has been processed.
fn commit_position(consumer: &Consumer, topic: &str, processed: &mut Option<i64>, who: &str) {
    let position = match consumer.position(topic, 0) {
        Ok(Some(p)) => p,
        Ok(None) => return,
        Err(e) => return tracing::debug!("{who}: {e:#}"),
    };
    if processed.is_some_and(|done| position <= done) {
        return;
    }
    match consumer.commit_offset(topic, 0, position) {
        Ok(()) => *processed = Some(position),
        Err(e) => tracing::debug!("{who}: {e:#}"),
    }
}

/// Messages in `topic` (partition 0) that `group` has not committed yet.
pub async fn lag(bootstrap: &str, group: &str, topic: &str) -> Result<i64> {
    let (bootstrap, group, topic) = (bootstrap.to_string(), group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || -> Result<i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("broker.address.family", "v4")
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .context("creating the lag probe")?;
        let timeout = Duration::from_secs(5);
        let (_, high) = consumer
            .fetch_watermarks(&topic, 0, timeout)
            .with_context(|| format!("watermarks of {topic}"))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&topic, 0);
        let committed = consumer
            .committed_offsets(tpl, timeout)
            .with_context(|| format!("committed offsets of {group}"))?;
        let done = committed
            .elements()
            .first()
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            })
            .unwrap_or(0);
        drop(committed);
        Ok((high - done).max(0))
    })
    .await
    .context("the lag probe panicked")?
}
