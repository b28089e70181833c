//! Kafka-API client (rdkafka with the bundled librdkafka 2.12) for the `kafka-api` image
//! (tansu 0.6 on sqlite).
//!
//! What works against tansu 0.6 (measured): plain and idempotent produce, consumer groups
//! with committed offsets, acknowledged data surviving `docker kill`. Kafka transactions
//! ([`Producer::transactional`]) need Apache Kafka: tansu 0.6 has none.
//!
//! Two traps this wrapper hides:
//! * every fetch waits about half of `fetch.wait.max.ms`, so it is kept small
//!   ([`FETCH_WAIT_MAX_MS`]);
//! * dropping a group consumer while a `TopicPartitionList` returned by `committed()` is
//!   alive hangs; [`Consumer::committed`] copies the list into plain values and drops it
//!   before returning.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers as _, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

/// Runs one of the blocking Kafka transaction calls ([`Producer::transactional`],
/// `begin_transaction`, `commit_transaction`, …) off the async runtime.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("a Kafka transaction call panicked")?
}

/// `fetch.wait.max.ms` for consumers: tansu holds each fetch about half of it.
pub const FETCH_WAIT_MAX_MS: u32 = 50;

/// One consumed record, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
}

/// Where an acknowledged record was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    pub partition: i32,
    pub offset: i64,
}

fn base_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        // tansu advertises 127.0.0.1; IPv4 only avoids a detour through ::1.
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000")
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "1000");
    // librdkafka's own debug contexts (e.g. `cgrp,fetch`), for a person chasing a stall.
    if let Some(debug) = std::env::var("CHAOSBANK_KAFKA_DEBUG")
        .ok()
        .filter(|d| !d.is_empty())
    {
        config.set("debug", debug);
    }
    config
}

/// Creates `topic` with `partitions` partitions (replication 1); an existing topic is fine.
pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = base_config(bootstrap)
        .create()
        .context("creating the Kafka admin client")?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&new], &opts)
        .await
        .with_context(|| format!("creating topic {topic}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("creating topic {name}: {code}"),
        }
    }
    Ok(())
}

/// A producer; `acks=all`. With `idempotent` the broker de-duplicates the producer's
/// own retries (supported by tansu 0.6).
pub struct Producer {
    inner: FutureProducer,
}

impl Producer {
    pub fn connect(bootstrap: &str, idempotent: bool) -> Result<Self> {
        let mut config = base_config(bootstrap);
        config
            .set("acks", "all")
            .set(
                "enable.idempotence",
                if idempotent { "true" } else { "false" },
            )
            .set("message.timeout.ms", "30000")
            .set("linger.ms", "0");
        let inner = config.create().context("creating the Kafka producer")?;
        Ok(Self { inner })
    }

    /// A transactional producer (`transactional.id` = `id`, idempotent, `acks=all`),
    /// its transactions initialised within `timeout` (which fences an earlier producer
    /// with the same id and aborts its open transaction). Blocking: call it off the
    /// runtime. A transaction left open by a crash is aborted by the broker after
    /// `transaction.timeout.ms`, here 10 s.
    pub fn transactional(bootstrap: &str, id: &str, timeout: Duration) -> Result<Self> {
        let mut config = base_config(bootstrap);
        config
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("transactional.id", id)
            .set("transaction.timeout.ms", "10000")
            .set("message.timeout.ms", "10000")
            .set("linger.ms", "0");
        let inner: FutureProducer = config
            .create()
            .context("creating the transactional Kafka producer")?;
        inner
            .init_transactions(timeout)
            .with_context(|| format!("initialising transactions of {id}"))?;
        Ok(Self { inner })
    }

    /// Begins a Kafka transaction (transactional producers only).
    pub fn begin_transaction(&self) -> Result<()> {
        self.inner
            .begin_transaction()
            .context("beginning a Kafka transaction")
    }

    /// Commits the open Kafka transaction within `timeout` (blocking: flushes its sends).
    pub fn commit_transaction(&self, timeout: Duration) -> Result<()> {
        self.inner
            .commit_transaction(timeout)
            .context("committing the Kafka transaction")
    }

    /// Aborts the open Kafka transaction within `timeout` (blocking).
    pub fn abort_transaction(&self, timeout: Duration) -> Result<()> {
        self.inner
            .abort_transaction(timeout)
            .context("aborting the Kafka transaction")
    }

    /// Sends one record and waits for the broker's acknowledgement.
    pub async fn send(&self, topic: &str, key: &[u8], payload: &[u8]) -> Result<Written> {
        let record = FutureRecord::to(topic).key(key).payload(payload);
        match self.inner.send(record, Duration::from_secs(30)).await {
            Ok(delivery) => Ok(Written {
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            Err((err, _)) => Err(anyhow!(err).context(format!("producing to {topic}"))),
        }
    }

    /// Sends one record carrying the position of the record it was derived from, in the
    /// [`SOURCE_HEADER`] header (`partition:offset`), and waits for the acknowledgement.
    pub async fn send_derived(
        &self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        source: (i32, i64),
    ) -> Result<Written> {
        let position = format!("{}:{}", source.0, source.1);
        let headers = OwnedHeaders::new().insert(Header {
            key: SOURCE_HEADER,
            value: Some(position.as_bytes()),
        });
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(payload)
            .headers(headers);
        match self.inner.send(record, Duration::from_secs(30)).await {
            Ok(delivery) => Ok(Written {
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            Err((err, _)) => Err(anyhow!(err).context(format!("producing to {topic}"))),
        }
    }

    /// Adds `consumer`'s position `next_offset` in `topic`/`partition` to the open
    /// transaction (`send_offsets_to_transaction`): the group's offset then commits or
    /// aborts with the records sent in it. Blocking: call it off the runtime.
    pub fn send_offsets_to_transaction(
        &self,
        consumer: &Consumer,
        topic: &str,
        partition: i32,
        next_offset: i64,
        timeout: Duration,
    ) -> Result<()> {
        let metadata = consumer
            .inner
            .group_metadata()
            .context("the consumer has no group metadata")?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(next_offset))
            .context("building the offsets list")?;
        let result = self
            .inner
            .send_offsets_to_transaction(&tpl, &metadata, timeout);
        drop(tpl);
        result.with_context(|| {
            format!("adding {topic}/{partition}@{next_offset} to the Kafka transaction")
        })
    }

    /// Sends one record to an explicit partition.
    pub async fn send_to(
        &self,
        topic: &str,
        partition: i32,
        key: &[u8],
        payload: &[u8],
    ) -> Result<Written> {
        let record = FutureRecord::to(topic)
            .partition(partition)
            .key(key)
            .payload(payload);
        match self.inner.send(record, Duration::from_secs(30)).await {
            Ok(delivery) => Ok(Written {
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            Err((err, _)) => Err(anyhow!(err).context(format!("producing to {topic}/{partition}"))),
        }
    }

    /// Waits until every outstanding record is acknowledged or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.inner
            .flush(timeout)
            .context("flushing the Kafka producer")
    }
}

/// The header in which a record derived from another (by an exactly-once stage) names
/// its source record's position, `partition:offset`.
pub const SOURCE_HEADER: &str = "chaosbank-source";

/// The header in which a CDC record names the WAL position of the change it was made
/// from: Debezium's `source` block as JSON, whose `lsn` is PostgreSQL's LSN as a number
/// (copied by the outbox-cdc connector's `HeaderFrom` transform, see
/// [`crate::connect::connector_config`]), or that number alone.
pub const LSN_HEADER: &str = "chaosbank-lsn";

/// One record of a partition as read back whole by [`read_log`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Its offset.
    pub offset: i64,
    /// Its payload.
    pub payload: Option<Vec<u8>>,
    /// The source record's position, from the [`SOURCE_HEADER`] header.
    pub source: Option<(i32, i64)>,
    /// The WAL position of the change it was made from, from the [`LSN_HEADER`] header.
    pub lsn: Option<u64>,
}

/// A partition's content from its start: the records `isolation` shows, and the end
/// it was read to (the high watermark, or for `read_committed` the last stable offset).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Log {
    /// The records, in offset order.
    pub records: Vec<LogRecord>,
    /// The offset the read stopped at: every record before it was read.
    pub end_offset: i64,
}

/// Reads `topic`/`partition` whole from its earliest offset, as `isolation` shows it,
/// within `timeout`; an error (and no partial log) when the end is not reached in time.
/// Blocking: call it off the runtime. It joins no group and commits nothing.
pub fn read_log(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    isolation: Isolation,
    timeout: Duration,
) -> Result<Log> {
    let started = std::time::Instant::now();
    let mut config = base_config(bootstrap);
    let consumer: BaseConsumer = config
        .set("group.id", "chaosbank-log-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS.to_string())
        .set("isolation.level", isolation.name())
        .create()
        .context("creating the log reader")?;
    let (low, high) = consumer
        .fetch_watermarks(topic, partition, timeout)
        .with_context(|| format!("watermarks of {topic}/{partition}"))?;
    let mut log = Log::default();
    if high <= low {
        log.end_offset = high;
        return Ok(log);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)
        .with_context(|| format!("assigning {topic}/{partition}"))?;
    let assigned = consumer.assign(&tpl);
    drop(tpl);
    assigned.with_context(|| format!("assigning {topic}/{partition}"))?;
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            bail!(
                "{topic}/{partition} not read to its end within {timeout:?} ({} records read)",
                log.records.len()
            );
        }
        match consumer.poll(left.min(Duration::from_millis(500))) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => {
                let position = consumer.position().ok().and_then(|tpl| {
                    let at = tpl
                        .find_partition(topic, partition)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        });
                    drop(tpl);
                    at
                });
                log.end_offset = position
                    .or(log.records.last().map(|r| r.offset + 1))
                    .unwrap_or(low);
                return Ok(log);
            }
            Some(Err(e)) => return Err(anyhow!(e).context(format!("reading {topic}/{partition}"))),
            Some(Ok(msg)) => {
                let header = |name: &str| {
                    msg.headers().and_then(|h| {
                        h.iter()
                            .find(|h| h.key == name)
                            .and_then(|h| h.value)
                            .and_then(|v| std::str::from_utf8(v).ok())
                            .map(str::to_owned)
                    })
                };
                log.records.push(LogRecord {
                    offset: msg.offset(),
                    payload: msg.payload().map(<[u8]>::to_vec),
                    source: header(SOURCE_HEADER).as_deref().and_then(parse_position),
                    lsn: header(LSN_HEADER).as_deref().and_then(parse_lsn),
                });
            }
        }
    }
}

/// The LSN of an [`LSN_HEADER`] value: a number, or a JSON object's `lsn` number.
fn parse_lsn(s: &str) -> Option<u64> {
    let s = s.trim();
    s.parse().ok().or_else(|| {
        serde_json::from_str::<serde_json::Value>(s)
            .ok()?
            .get("lsn")?
            .as_u64()
    })
}

/// Parses `partition:offset`.
fn parse_position(s: &str) -> Option<(i32, i64)> {
    let (p, o) = s.split_once(':')?;
    Some((p.parse().ok()?, o.parse().ok()?))
}

/// Which records a consumer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// Every record, whether or not its transaction committed.
    ReadUncommitted,
    /// Only records of committed transactions (and plain records), up to the last
    /// stable offset.
    ReadCommitted,
}

impl Isolation {
    /// librdkafka's `isolation.level` value.
    pub fn name(self) -> &'static str {
        match self {
            Isolation::ReadUncommitted => "read_uncommitted",
            Isolation::ReadCommitted => "read_committed",
        }
    }
}

/// A consumer-group member. Auto-commit is off: the caller commits what it has processed
/// with [`Consumer::commit`]; a group with no committed offset starts at the earliest.
pub struct Consumer {
    inner: StreamConsumer,
}

impl Consumer {
    /// Joins `group` and subscribes to `topics` (partitions assigned by the group).
    pub fn connect(bootstrap: &str, group: &str, topics: &[&str]) -> Result<Self> {
        let inner = Self::config(bootstrap, group, Isolation::ReadUncommitted)?;
        inner
            .subscribe(topics)
            .with_context(|| format!("subscribing to {topics:?}"))?;
        Ok(Self { inner })
    }

    /// Reads partition 0 of each of `topics` from `group`'s committed offsets (earliest
    /// when none), without joining the group: no rebalance, so a consumer killed and
    /// restarted takes over at once. (tansu 0.6 keeps a killed member in its group and
    /// assigns it the partition, leaving the restarted one with nothing to read.)
    ///
    /// With [`Isolation::ReadCommitted`] it reads only records of committed Kafka
    /// transactions (and plain records).
    pub fn assigned(
        bootstrap: &str,
        group: &str,
        topics: &[&str],
        isolation: Isolation,
    ) -> Result<Self> {
        let inner = Self::config(bootstrap, group, isolation)?;
        let mut tpl = TopicPartitionList::new();
        for topic in topics {
            tpl.add_partition_offset(topic, 0, Offset::Stored)
                .with_context(|| format!("assigning {topic}/0"))?;
        }
        let assigned = inner.assign(&tpl);
        drop(tpl);
        assigned.with_context(|| format!("assigning {topics:?}"))?;
        Ok(Self { inner })
    }

    fn config(bootstrap: &str, group: &str, isolation: Isolation) -> Result<StreamConsumer> {
        let mut config = base_config(bootstrap);
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS.to_string())
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("isolation.level", isolation.name());
        config.create().context("creating the Kafka consumer")
    }

    /// The next record, or `None` if none arrives within `timeout`.
    pub async fn poll(&self, timeout: Duration) -> Result<Option<Record>> {
        match tokio::time::timeout(timeout, self.inner.recv()).await {
            Err(_) => Ok(None),
            Ok(Err(err)) => Err(anyhow!(err).context("consuming")),
            Ok(Ok(msg)) => Ok(Some(Record {
                topic: msg.topic().to_owned(),
                partition: msg.partition(),
                offset: msg.offset(),
                key: msg.key().map(<[u8]>::to_vec),
                payload: msg.payload().map(<[u8]>::to_vec),
            })),
        }
    }

    /// The next offset the broker will write in `topic`/`partition` (its high
    /// watermark), asked synchronously within `timeout`.
    pub fn high_watermark(&self, topic: &str, partition: i32, timeout: Duration) -> Result<i64> {
        let (_, high) = self
            .inner
            .fetch_watermarks(topic, partition, timeout)
            .with_context(|| format!("watermarks of {topic}/{partition}"))?;
        Ok(high)
    }

    /// This member's position in `topic`/`partition`: the offset of the next record it
    /// will read, past any transaction markers it has fetched; `None` before it has one.
    pub fn position(&self, topic: &str, partition: i32) -> Result<Option<i64>> {
        let tpl = self.inner.position().context("reading the position")?;
        let out = tpl
            .find_partition(topic, partition)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            });
        drop(tpl);
        Ok(out)
    }

    /// Commits that everything up to and including `record` is processed. The commit is
    /// asynchronous: a synchronous one can wait for a group coordinator for good (seen
    /// after a partition of the broker: librdkafka re-queries the coordinator without
    /// end), which would stop the consumer. A commit that fails only means a
    /// redelivery; the consumer's stall check notices a group that falls behind.
    pub fn commit(&self, record: &Record) -> Result<()> {
        self.commit_offset(&record.topic, record.partition, record.offset + 1)
    }

    /// Commits `next_offset` (the offset of the next record to read) for one partition,
    /// asynchronously (see [`Consumer::commit`]).
    pub fn commit_offset(&self, topic: &str, partition: i32, next_offset: i64) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(next_offset))
            .context("building the commit list")?;
        let result = self.inner.commit(&tpl, CommitMode::Async);
        drop(tpl);
        result.with_context(|| format!("committing {topic}/{partition}@{next_offset}"))
    }

    /// The group's committed offsets for the partitions currently assigned to this member:
    /// `(topic, partition, next offset or None)`.
    pub fn committed(&self, timeout: Duration) -> Result<Vec<(String, i32, Option<i64>)>> {
        let tpl = self
            .inner
            .committed(timeout)
            .context("reading committed offsets")?;
        let out = tpl
            .elements()
            .iter()
            .map(|e| {
                let offset = match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                };
                (e.topic().to_owned(), e.partition(), offset)
            })
            .collect();
        drop(tpl); // must go before the consumer can be dropped safely
        Ok(out)
    }

    /// Partitions currently assigned to this member.
    pub fn assignment(&self) -> Result<Vec<(String, i32)>> {
        let tpl = self.inner.assignment().context("reading the assignment")?;
        let out = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        drop(tpl);
        Ok(out)
    }
}

/// True if `err` is a transient broker-unavailable condition worth retrying.
pub fn is_transient(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| match cause.downcast_ref::<KafkaError>() {
            Some(k) => matches!(
                k.rdkafka_error_code(),
                Some(
                    RDKafkaErrorCode::BrokerTransportFailure
                        | RDKafkaErrorCode::AllBrokersDown
                        | RDKafkaErrorCode::MessageTimedOut
                        | RDKafkaErrorCode::RequestTimedOut
                        | RDKafkaErrorCode::NotCoordinator
                        | RDKafkaErrorCode::CoordinatorLoadInProgress
                        | RDKafkaErrorCode::CoordinatorNotAvailable
                        | RDKafkaErrorCode::LeaderNotAvailable
                        | RDKafkaErrorCode::NotLeaderForPartition
                        | RDKafkaErrorCode::OperationTimedOut
                )
            ),
            None => false,
        })
}

#[cfg(test)]
mod lsn_tests {
    use super::parse_lsn;

    #[test]
    fn an_lsn_header_is_a_number_or_debeziums_source_block() {
        assert_eq!(parse_lsn("26644608"), Some(26_644_608));
        assert_eq!(
            parse_lsn(
                r#"{"version":"3.7.1.Final","txId":745,"lsn":26644608,"sequence":"[null,\"26644608\"]"}"#
            ),
            Some(26_644_608)
        );
        assert_eq!(parse_lsn(r#"{"txId":745}"#), None);
        assert_eq!(parse_lsn("0/16B3D48"), None);
    }
}
