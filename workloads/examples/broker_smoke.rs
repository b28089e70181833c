//! Hand check of the broker client wrappers against running containers.
//!
//!   cargo run -p chaosbank-workloads --example broker_smoke -- kafka 127.0.0.1:PORT [N] [TAG]
//!   cargo run -p chaosbank-workloads --example broker_smoke -- kafka-read 127.0.0.1:PORT N TAG
//!   cargo run -p chaosbank-workloads --example broker_smoke -- rocketmq 127.0.0.1:NSPORT [N] [TAG]
//!   cargo run -p chaosbank-workloads --example broker_smoke -- rocketmq-read 127.0.0.1:NSPORT N TAG
//!   cargo run -p chaosbank-workloads --example broker_smoke -- rocketmq-tx 127.0.0.1:NSPORT [TAG]
//!   cargo run -p chaosbank-workloads --example broker_smoke -- rocketmq-tx-hold 127.0.0.1:NSPORT [TAG]
//!
//! `rocketmq-tx-hold` leaves one half message undecided and waits (up to 150 s) for the
//! check-back to commit it: restart the broker meanwhile to see the check survive it.
//!
//! `SMOKE_GROUP=G` makes the Kafka modes consume as group G instead of a fresh one.
//!
//! The write modes produce N records to topic `smoke-TAG` and read them back with a fresh
//! group; the read modes only read (to check data survived a broker restart). Exit status
//! 0 means every record came back.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use workloads::clients::{kafka, rocketmq};

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("");
    let addr = args.get(1).cloned().unwrap_or_default();
    match mode {
        "kafka" | "kafka-read" => {
            let n: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(10);
            let tag = args.get(3).cloned().unwrap_or_else(|| "a".into());
            kafka_smoke(&addr, n, &tag, mode == "kafka").await
        }
        "rocketmq" | "rocketmq-read" => {
            let n: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(10);
            let tag = args.get(3).cloned().unwrap_or_else(|| "a".into());
            rocketmq_smoke(&addr, n, &tag, mode == "rocketmq").await
        }
        "rocketmq-tx" => {
            let tag = args.get(2).cloned().unwrap_or_else(|| "a".into());
            rocketmq_tx(&addr, &tag, &["commit", "rollback", "check"], 90).await
        }
        "rocketmq-tx-hold" => {
            let tag = args.get(2).cloned().unwrap_or_else(|| "a".into());
            rocketmq_tx(&addr, &tag, &["check"], 150).await
        }
        _ => bail!("usage: broker_smoke kafka|kafka-read|rocketmq|rocketmq-read|rocketmq-tx ADDR [N] [TAG]"),
    }
}

async fn kafka_smoke(bootstrap: &str, n: usize, tag: &str, write: bool) -> Result<()> {
    let topic = format!("smoke-{tag}");
    let t0 = Instant::now();
    if write {
        kafka::create_topic(bootstrap, &topic, 1).await?;
        let producer = kafka::Producer::connect(bootstrap, true)?;
        for i in 0..n {
            let w = producer
                .send(
                    &topic,
                    format!("k{i}").as_bytes(),
                    format!("v{i}").as_bytes(),
                )
                .await?;
            if i == 0 || i + 1 == n {
                println!("produced #{i} at {}/{}", w.partition, w.offset);
            }
        }
        println!("produced {n} in {:?}", t0.elapsed());
    }
    // SMOKE_GROUP=G reuses a group (to see committed offsets survive a restart).
    let group = std::env::var("SMOKE_GROUP")
        .unwrap_or_else(|_| format!("smoke-{tag}-{}", std::process::id()));
    let consumer = kafka::Consumer::connect(bootstrap, &group, &[topic.as_str()])?;
    let mut first = None;
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < n && Instant::now() < deadline {
        if let Some(r) = consumer.poll(Duration::from_secs(1)).await? {
            first.get_or_insert(r.offset);
            seen.insert(
                String::from_utf8_lossy(r.payload.as_deref().unwrap_or_default()).into_owned(),
            );
            consumer.commit(&r)?;
        }
    }
    let committed = consumer.committed(Duration::from_secs(5))?;
    println!(
        "group {group} consumed {} distinct of {n} (first offset {first:?}) in {:?}; committed {committed:?}",
        seen.len(),
        t0.elapsed()
    );
    drop(consumer);
    if seen.len() != n {
        bail!("missing records");
    }
    Ok(())
}

async fn rocketmq_smoke(namesrv: &str, n: usize, tag: &str, write: bool) -> Result<()> {
    let topic = format!("smoke-{tag}");
    let rt = rocketmq::Runtime::new("smoke")?;
    let t0 = Instant::now();
    if write {
        let producer = rocketmq::Producer::start(&rt, namesrv, &format!("smoke-p-{tag}")).await?;
        for i in 0..n {
            let s = producer
                .send(&topic, &format!("k{i}"), format!("v{i}").as_bytes(), 10_000)
                .await?;
            if i == 0 || i + 1 == n {
                println!("sent #{i}: {s:?}");
            }
        }
        println!("sent {n} in {:?}", t0.elapsed());
        producer.shutdown().await;
    }
    let group = format!("smoke-c-{tag}-{}", std::process::id());
    let (consumer, mut rx) =
        rocketmq::PushConsumer::start_channel(&rt, namesrv, &group, &topic).await?;
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while seen.len() < n && Instant::now() < deadline {
        if let Ok(Some(d)) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
            seen.insert(String::from_utf8_lossy(&d.body).into_owned());
        }
    }
    println!(
        "consumed {} distinct of {n} in {:?}",
        seen.len(),
        t0.elapsed()
    );
    consumer.shutdown().await;
    rt.shutdown().await;
    if seen.len() != n {
        bail!("missing messages");
    }
    Ok(())
}

/// `execute` answers Commit for key "commit", Rollback for "rollback" and Unknown for
/// "check"; the check-back then commits "check".
struct Tx {
    checks: Arc<AtomicUsize>,
}

impl rocketmq::TxHandler for Tx {
    fn execute(&self, msg: &rocketmq::HalfMessage) -> rocketmq::TxDecision {
        match msg.key.as_deref() {
            Some("commit") => rocketmq::TxDecision::Commit,
            Some("rollback") => rocketmq::TxDecision::Rollback,
            _ => rocketmq::TxDecision::Unknown,
        }
    }
    fn check(&self, msg: &rocketmq::HalfMessage) -> rocketmq::TxDecision {
        self.checks.fetch_add(1, Ordering::SeqCst);
        println!("check-back for key {:?}", msg.key);
        match msg.key.as_deref() {
            Some("rollback") => rocketmq::TxDecision::Rollback,
            _ => rocketmq::TxDecision::Commit,
        }
    }
}

async fn rocketmq_tx(namesrv: &str, tag: &str, keys: &[&str], wait_secs: u64) -> Result<()> {
    let topic = format!("smoke-tx-{tag}");
    let rt = rocketmq::Runtime::new("smoke-tx")?;
    let t0 = Instant::now();
    let checks = Arc::new(AtomicUsize::new(0));
    let producer = rocketmq::TxProducer::start(
        &rt,
        namesrv,
        &format!("smoke-tx-p-{tag}"),
        &[topic.as_str()],
        Tx {
            checks: checks.clone(),
        },
    )
    .await?;
    for &key in keys {
        let sent = producer.send(&topic, key, key.as_bytes()).await?;
        println!("tx send {key}: {sent:?}");
    }
    let group = format!("smoke-tx-c-{tag}-{}", std::process::id());
    let (consumer, mut rx) =
        rocketmq::PushConsumer::start_channel(&rt, namesrv, &group, &topic).await?;
    let mut seen = BTreeSet::new();
    let want: BTreeSet<String> = keys
        .iter()
        .filter(|k| **k != "rollback")
        .map(|k| k.to_string())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(wait_secs);
    while seen.len() < want.len() && Instant::now() < deadline {
        if let Ok(Some(d)) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
            println!("consumed {:?} after {:?}", d.key, t0.elapsed());
            seen.insert(d.key.unwrap_or_default());
        }
    }
    // Give a stray rollback or duplicate a moment to show up (it must not).
    let mut extra = 0;
    while let Ok(Some(d)) = tokio::time::timeout(Duration::from_secs(3), rx.recv()).await {
        println!(
            "extra delivery {:?} (reconsume {})",
            d.key, d.reconsume_times
        );
        extra += 1;
        seen.insert(d.key.unwrap_or_default());
    }
    println!(
        "consumed keys {seen:?}; check-backs {}",
        checks.load(Ordering::SeqCst)
    );
    consumer.shutdown().await;
    producer.shutdown().await;
    rt.shutdown().await;
    if seen != want || extra > 0 {
        bail!("expected exactly {want:?}");
    }
    Ok(())
}
