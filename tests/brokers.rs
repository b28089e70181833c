//! The brokers through the real clients (`workloads::clients`): records and messages go
//! round trip, and what a broker acknowledged is still there after it is killed with
//! `docker kill` and started again. Each test starts its own cluster with only the
//! brokers it needs and removes it at the end, whether or not the checks passed.
//!
//! Every test runs on both implementations of its broker: Apache Kafka and tansu, Apache
//! RocketMQ and rocketmq-rust. The Rust brokers' binaries take half an hour to build
//! (`bash docker/setup.sh --rust-brokers`), so their tests are `#[ignore]`d: `cargo test`
//! lists them as ignored, never as passed, and `cargo test -p chaosbank-tests --test
//! brokers -- --ignored` runs them (failing, with the reason, where the binaries are
//! not built). The Apache ones always run.
//!
//! Tests run one at a time (one cluster at a time on a small machine). Timings are
//! printed (run with `--nocapture` to see them).

use anyhow::{anyhow, bail, ensure, Context, Result};
use chaosbank::service::{Engines, KafkaImpl, RocketMqImpl};
use chaosbank::Cluster;
use chaosbank_tests::{assert_gone, engine, have_binaries};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use workloads::clients::{kafka, rocketmq};

/// One cluster at a time (a tokio mutex: it is held across awaits, and a failed test
/// does not poison it).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a Kafka consumer has to read everything back.
const KAFKA_READ: Duration = Duration::from_secs(60);
/// How long a RocketMQ consumer has to read everything back: a freshly auto-created topic
/// takes ~12 s to reach a new consumer, and routes can take up to 30 s after a broker
/// restart (docker/CONTRACT.md).
const ROCKETMQ_READ: Duration = Duration::from_secs(90);
/// After the last expected Kafka record, how long the consumer keeps reading to catch
/// records that should not be there.
const KAFKA_QUIET: Duration = Duration::from_secs(3);
/// Timeout of one RocketMQ send.
const SEND_TIMEOUT_MS: u64 = 10_000;

/// Which brokers a test needs, and which implementation of them.
#[derive(Clone, Copy)]
enum Brokers {
    Kafka(KafkaImpl),
    RocketMq(RocketMqImpl),
}

/// Starts a cluster with only `brokers`, runs `body` on it, removes the cluster (also
/// when `body` failed) and checks nothing of it is left, then reports `body`'s outcome.
/// A panic inside `body` still removes the cluster: dropping a [`Cluster`] does.
/// A Rust broker whose binaries are not built fails the test, saying how to build them.
async fn with_cluster(brokers: Brokers, body: impl AsyncFnOnce(&Cluster) -> Result<()>) {
    let engines = match brokers {
        Brokers::Kafka(kafka) => Engines {
            kafka,
            ..Engines::default()
        },
        Brokers::RocketMq(rocketmq) => Engines {
            rocketmq,
            ..Engines::default()
        },
    };
    let service = match brokers {
        Brokers::Kafka(_) => chaosbank::Service::Kafka,
        Brokers::RocketMq(_) => chaosbank::Service::RocketMq,
    };
    let image = engines.image(service);
    let name = engines.describe(service);
    assert!(
        have_binaries(image),
        "{name}: its broker binaries are not built (bash docker/setup.sh --rust-brokers)"
    );
    let _serial = SERIAL.lock().await;
    let engine = engine().await;
    let b = Cluster::builder()
        .engines(engines)
        .ready_timeout(Duration::from_secs(90));
    let b = match brokers {
        Brokers::Kafka(_) => b.kafka(),
        Brokers::RocketMq(_) => b.rocketmq(),
    };
    let start = Instant::now();
    let cluster = b.start().await.expect("brokers start");
    eprintln!("{name} up in {:.1?}", start.elapsed());
    let run = cluster.run_id().to_string();

    let outcome = body(&cluster).await;

    cluster.down().await.expect("teardown");
    assert_gone(&engine, &run, Duration::ZERO).await;
    if let Err(e) = outcome {
        panic!("{e:#}");
    }
}

/// Kills a node, checks its container stopped, starts it again and waits until it
/// answers its protocol.
async fn kill_and_restart(cluster: &Cluster, node: &str) -> Result<()> {
    let nemesis = cluster.nemesis();
    let container = cluster.node(node)?.container;
    nemesis.kill(node).await?;
    let state = cluster.engine().state(&container).await?;
    ensure!(
        matches!(state, Some((false, _))),
        "{node} still runs after the kill: {state:?}"
    );
    nemesis.restart(node).await?;
    let ready = cluster.wait_ready(node).await?;
    eprintln!("{node}: killed, restarted, ready in {ready:.1?}");
    Ok(())
}

/// At most 20 items of a list, and how many there are in all.
fn some_of<T: std::fmt::Debug>(items: &[T]) -> String {
    if items.len() <= 20 {
        format!("{items:?}")
    } else {
        format!("{:?} … ({} in all)", &items[..20], items.len())
    }
}

// ---------------------------------------------------------------------------------------
// Kafka (Apache Kafka and tansu)

/// The `n` records or messages a test sends: payload → key (`<tag>-<i>` → `k<i>`).
fn payloads(tag: &str, n: usize) -> BTreeMap<String, String> {
    (0..n)
        .map(|i| (format!("{tag}-{i}"), format!("k{i}")))
        .collect()
}

/// Sends every record (payload → key) with the idempotent producer; returns where each
/// acknowledged payload was written.
async fn kafka_send_all(
    bootstrap: &str,
    topic: &str,
    records: &BTreeMap<String, String>,
) -> Result<BTreeMap<(i32, i64), String>> {
    let producer = kafka::Producer::connect(bootstrap, true)?;
    let t = Instant::now();
    let mut written = BTreeMap::new();
    for (payload, key) in records {
        let w = producer
            .send(topic, key.as_bytes(), payload.as_bytes())
            .await
            .with_context(|| format!("sending {payload}"))?;
        if let Some(other) = written.insert((w.partition, w.offset), payload.clone()) {
            bail!(
                "{payload} and {other} were both acknowledged at {}/{}",
                w.partition,
                w.offset
            );
        }
    }
    eprintln!(
        "kafka: {} acknowledged sends in {:.1?}",
        records.len(),
        t.elapsed()
    );
    Ok(written)
}

/// Reads `topic` as a new consumer group (committing each record) until `want` records
/// came, then keeps reading until nothing arrives for [`KAFKA_QUIET`] to catch extras.
/// Gives up (returning what it has) after [`KAFKA_READ`].
async fn kafka_read_all(
    bootstrap: &str,
    group: &str,
    topic: &str,
    want: usize,
) -> Result<Vec<kafka::Record>> {
    let consumer = kafka::Consumer::connect(bootstrap, group, &[topic])?;
    let t = Instant::now();
    let mut got = Vec::new();
    let mut transient = 0;
    while t.elapsed() < KAFKA_READ {
        let wait = if got.len() < want {
            Duration::from_secs(1)
        } else {
            KAFKA_QUIET
        };
        match consumer.poll(wait).await {
            Ok(Some(r)) => {
                consumer.commit(&r)?;
                got.push(r);
            }
            Ok(None) if got.len() >= want => break,
            Ok(None) => {}
            Err(e) if kafka::is_transient(&e) => {
                transient += 1;
                eprintln!("kafka: transient consumer error (retrying): {e:#}");
            }
            Err(e) => return Err(e.context(format!("group {group} reading {topic}"))),
        }
    }
    eprintln!(
        "kafka: group {group} read {} records (want {want}) in {:.1?}; {transient} transient errors",
        got.len(),
        t.elapsed()
    );
    drop(consumer);
    Ok(got)
}

/// Checks the records read are exactly the ones sent (payload → key): each payload once,
/// with its key; names what is missing, duplicated or unknown.
fn kafka_check_exact(
    sent: &BTreeMap<String, String>,
    got: &[kafka::Record],
) -> Result<BTreeMap<String, usize>> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut wrong_key = Vec::new();
    for r in got {
        let payload =
            String::from_utf8_lossy(r.payload.as_deref().unwrap_or_default()).into_owned();
        let key = r.key.as_deref().map(String::from_utf8_lossy);
        if let Some(want) = sent.get(&payload) {
            if key.as_deref() != Some(want.as_str()) {
                wrong_key.push(format!("{payload} with key {key:?}, sent with {want}"));
            }
        }
        *counts.entry(payload).or_default() += 1;
    }
    let missing: Vec<&String> = sent.keys().filter(|p| !counts.contains_key(*p)).collect();
    let duplicated: Vec<(&String, &usize)> = counts
        .iter()
        .filter(|(p, n)| sent.contains_key(*p) && **n > 1)
        .collect();
    let unknown: Vec<&String> = counts.keys().filter(|p| !sent.contains_key(*p)).collect();
    ensure!(
        missing.is_empty() && duplicated.is_empty() && unknown.is_empty() && wrong_key.is_empty(),
        "read {} records for {} sent: missing {} {}; duplicated {} {}; unknown {} {}; wrong keys {}",
        got.len(),
        sent.len(),
        missing.len(),
        some_of(&missing),
        duplicated.len(),
        some_of(&duplicated),
        unknown.len(),
        some_of(&unknown),
        some_of(&wrong_key),
    );
    Ok(counts)
}

/// Each record read is the one acknowledged at its place (partition, offset).
fn kafka_check_positions(
    written: &BTreeMap<(i32, i64), String>,
    got: &[kafka::Record],
) -> Result<()> {
    for r in got {
        let at = written.get(&(r.partition, r.offset));
        let payload = String::from_utf8_lossy(r.payload.as_deref().unwrap_or_default());
        ensure!(
            at.map(String::as_str) == Some(&*payload),
            "{payload} read at {}/{}, where {at:?} was acknowledged",
            r.partition,
            r.offset
        );
    }
    Ok(())
}

async fn kafka_produce_consume_round_trip(brokers: Brokers) {
    with_cluster(brokers, async |cluster| {
        let bootstrap = cluster.endpoint("kafka")?.addr();
        let topic = "round-trip";
        kafka::create_topic(&bootstrap, topic, 3).await?;
        let sent = payloads("rt", 200);
        let written = kafka_send_all(&bootstrap, topic, &sent).await?;
        let partitions: BTreeMap<i32, usize> =
            written.keys().fold(BTreeMap::new(), |mut m, (p, _)| {
                *m.entry(*p).or_default() += 1;
                m
            });
        eprintln!("kafka: records per partition {partitions:?}");

        let got = kafka_read_all(&bootstrap, "round-trip-readers", topic, sent.len()).await?;
        kafka_check_exact(&sent, &got)?;
        kafka_check_positions(&written, &got)
    })
    .await;
}

async fn kafka_acknowledged_records_survive_a_broker_kill(brokers: Brokers) {
    with_cluster(brokers, async |cluster| {
        let bootstrap = cluster.endpoint("kafka")?.addr();
        let topic = "kept";
        kafka::create_topic(&bootstrap, topic, 3).await?;
        let sent = payloads("kept", 300);
        let written = kafka_send_all(&bootstrap, topic, &sent).await?;

        kill_and_restart(cluster, "kafka").await?;

        let got = kafka_read_all(&bootstrap, "after-kill-readers", topic, sent.len())
            .await
            .context("reading back after the kill")?;
        kafka_check_exact(&sent, &got).context("after the broker kill")?;
        kafka_check_positions(&written, &got).context("after the broker kill")
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// RocketMQ

/// Runs `f` with a RocketMQ client runtime, and shuts the runtime down afterwards
/// (bounded), whatever `f` returned.
async fn with_runtime(
    name: &str,
    f: impl AsyncFnOnce(&rocketmq::Runtime) -> Result<()>,
) -> Result<()> {
    let rt = rocketmq::Runtime::new(name)?;
    let outcome = f(&rt).await;
    if tokio::time::timeout(Duration::from_secs(30), rt.shutdown())
        .await
        .is_err()
    {
        eprintln!("rocketmq: the client runtime did not shut down within 30 s");
    }
    outcome
}

/// Sends every message (body → key) and checks each was stored.
async fn rocketmq_send_all(
    rt: &rocketmq::Runtime,
    namesrv: &str,
    group: &str,
    topic: &str,
    messages: &BTreeMap<String, String>,
) -> Result<()> {
    let producer = rocketmq::Producer::start(rt, namesrv, group).await?;
    let t = Instant::now();
    let mut outcome = Ok(());
    for (body, key) in messages {
        if let Err(e) = producer
            .send(topic, key, body.as_bytes(), SEND_TIMEOUT_MS)
            .await
        {
            outcome = Err(e.context(format!("sending {body}")));
            break;
        }
    }
    producer.shutdown().await;
    outcome?;
    eprintln!(
        "rocketmq: {} acknowledged sends in {:.1?}",
        messages.len(),
        t.elapsed()
    );
    Ok(())
}

/// Consumes `topic` as a new push-consumer group until every body of `messages` came
/// (at least once), within [`ROCKETMQ_READ`]; names what is missing if not. Duplicates
/// are allowed (at-least-once) and counted; bodies never sent fail the check.
async fn rocketmq_read_all(
    rt: &rocketmq::Runtime,
    namesrv: &str,
    group: &str,
    topic: &str,
    messages: &BTreeMap<String, String>,
) -> Result<()> {
    let t = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let consumer = rocketmq::PushConsumer::start(rt, namesrv, group, topic, move |d| {
        tx.send(d.clone()).is_ok()
    })
    .await?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut wrong_key = Vec::new();
    let mut first = None;
    let all_seen =
        |counts: &BTreeMap<String, usize>| messages.keys().all(|b| counts.contains_key(b));
    while !all_seen(&counts) && t.elapsed() < ROCKETMQ_READ {
        if let Ok(Some(d)) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
            first.get_or_insert_with(|| t.elapsed());
            let body = String::from_utf8_lossy(&d.body).into_owned();
            if let Some(key) = messages.get(&body) {
                if d.key.as_deref() != Some(key.as_str()) {
                    wrong_key.push(format!("{body} with key {:?}, sent with {key}", d.key));
                }
            }
            *counts.entry(body).or_default() += 1;
        }
    }
    consumer.shutdown().await;
    let delivered: usize = counts.values().sum();
    eprintln!(
        "rocketmq: group {group} got {} distinct of {} ({delivered} deliveries) in {:.1?}, the first after {}",
        counts.len(),
        messages.len(),
        t.elapsed(),
        first.map_or("none came".to_string(), |d| format!("{d:.1?}"))
    );
    let missing: Vec<&String> = messages
        .keys()
        .filter(|b| !counts.contains_key(*b))
        .collect();
    let unknown: Vec<&String> = counts
        .keys()
        .filter(|b| !messages.contains_key(*b))
        .collect();
    let duplicated: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    if !duplicated.is_empty() {
        eprintln!(
            "rocketmq: {} bodies delivered more than once (allowed): {}",
            duplicated.len(),
            some_of(&duplicated)
        );
    }
    ensure!(
        missing.is_empty(),
        "group {group}: {} of {} messages not delivered within {ROCKETMQ_READ:?}: {}",
        missing.len(),
        messages.len(),
        some_of(&missing)
    );
    ensure!(
        unknown.is_empty(),
        "group {group}: bodies that were never sent: {}",
        some_of(&unknown)
    );
    ensure!(
        wrong_key.is_empty(),
        "group {group}: wrong keys: {}",
        some_of(&wrong_key)
    );
    Ok(())
}

async fn rocketmq_send_consume_round_trip(brokers: Brokers) {
    with_cluster(brokers, async |cluster| {
        let namesrv = cluster.endpoint("namesrv")?.addr();
        let topic = "RoundTrip";
        let messages = payloads("rt", 50);
        with_runtime("round-trip", async |rt| {
            rocketmq_send_all(rt, &namesrv, "round-trip-p", topic, &messages).await?;
            rocketmq_read_all(rt, &namesrv, "round-trip-c", topic, &messages).await
        })
        .await
    })
    .await;
}

async fn rocketmq_broker_kill_keeps_messages(brokers: Brokers) {
    with_cluster(brokers, async |cluster| {
        let namesrv = cluster.endpoint("namesrv")?.addr();
        let topic = "Kept";
        let messages = payloads("kept", 100);
        with_runtime("kept-send", async |rt| {
            rocketmq_send_all(rt, &namesrv, "kept-p", topic, &messages).await
        })
        .await?;

        kill_and_restart(cluster, "broker").await?;

        with_runtime("kept-read", async |rt| {
            rocketmq_read_all(rt, &namesrv, "kept-after-kill-c", topic, &messages)
                .await
                .map_err(|e| anyhow!("after the broker kill: {e:#}"))
        })
        .await
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Each test on each implementation

#[tokio::test(flavor = "multi_thread")]
async fn kafka_produce_consume_round_trip_on_apache() {
    kafka_produce_consume_round_trip(Brokers::Kafka(KafkaImpl::Apache)).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the Rust brokers (bash docker/setup.sh --rust-brokers, ~35 min): run with --ignored"]
async fn kafka_produce_consume_round_trip_on_tansu() {
    kafka_produce_consume_round_trip(Brokers::Kafka(KafkaImpl::Tansu)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_acknowledged_records_survive_a_broker_kill_on_apache() {
    kafka_acknowledged_records_survive_a_broker_kill(Brokers::Kafka(KafkaImpl::Apache)).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the Rust brokers (bash docker/setup.sh --rust-brokers, ~35 min): run with --ignored"]
async fn kafka_acknowledged_records_survive_a_broker_kill_on_tansu() {
    kafka_acknowledged_records_survive_a_broker_kill(Brokers::Kafka(KafkaImpl::Tansu)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rocketmq_send_consume_round_trip_on_apache() {
    rocketmq_send_consume_round_trip(Brokers::RocketMq(RocketMqImpl::Apache)).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the Rust brokers (bash docker/setup.sh --rust-brokers, ~35 min): run with --ignored"]
async fn rocketmq_send_consume_round_trip_on_rust() {
    rocketmq_send_consume_round_trip(Brokers::RocketMq(RocketMqImpl::Rust)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rocketmq_broker_kill_keeps_messages_on_apache() {
    rocketmq_broker_kill_keeps_messages(Brokers::RocketMq(RocketMqImpl::Apache)).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the Rust brokers (bash docker/setup.sh --rust-brokers, ~35 min): run with --ignored"]
async fn rocketmq_broker_kill_keeps_messages_on_rust() {
    rocketmq_broker_kill_keeps_messages(Brokers::RocketMq(RocketMqImpl::Rust)).await;
}
