//! Raw figures of the engines themselves, taken on a run's own containers so a scheme's
//! throughput can be read as a share of what its engines do alone: `pgbench` TPS on
//! bank A's PostgreSQL, and the broker's raw message rate.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cluster::Cluster;

/// Messages the Kafka measurement produces and consumes.
const KAFKA_MESSAGES: usize = 20_000;
/// How long the RocketMQ measurement sends.
const ROCKETMQ_FOR: Duration = Duration::from_secs(5);
/// Concurrent senders of the RocketMQ measurement (its client sends synchronously).
const ROCKETMQ_SENDERS: usize = 16;

/// Raw pgbench TPS on the run's PostgreSQL container: 8 clients for 10 s on a scale-1
/// database of its own.
pub async fn pgbench(cluster: &Cluster) -> Result<f64> {
    let c = cluster.node("postgres")?.container;
    let user = crate::service::SQL_USER;
    let exec = |args: &[&str]| {
        let mut all = vec!["exec", c.as_str()];
        all.extend_from_slice(args);
        all.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::docker::run_command("docker", &refs).await
    };
    run(exec(&[
        "psql",
        "-U",
        user,
        "-d",
        user,
        "-qc",
        "CREATE DATABASE pgbench",
    ]))
    .await?;
    run(exec(&[
        "pgbench", "-U", user, "-i", "-q", "-s", "1", "pgbench",
    ]))
    .await?;
    let out = run(exec(&[
        "pgbench", "-U", user, "-c", "8", "-j", "2", "-T", "10", "pgbench",
    ]))
    .await?;
    out.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("tps = ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .with_context(|| format!("no tps line in pgbench output:\n{out}"))
}

/// The broker's raw rate in messages/s: on Kafka, 20,000 messages of 100 bytes produced
/// pipelined (`acks=all`, idempotent) to a topic of its own and consumed back, counted
/// from the first send to the last message read; on RocketMQ, synchronous sends from 16
/// concurrent producers' calls for 5 s.
pub async fn broker_rate(cluster: &Cluster) -> Result<f64> {
    if let Ok(kafka) = cluster.endpoint("kafka") {
        return kafka_rate(&kafka.url()).await;
    }
    let namesrv = cluster
        .endpoint("namesrv")
        .context("the cluster has no broker")?;
    workloads::clients::rocketmq::send_rate(namesrv.url(), ROCKETMQ_SENDERS, ROCKETMQ_FOR).await
}

async fn kafka_rate(bootstrap: &str) -> Result<f64> {
    use workloads::clients::kafka::{create_topic, Consumer, Producer};
    let topic = "chaosbank-bench";
    create_topic(bootstrap, topic, 4).await?;
    let producer = Producer::connect(bootstrap, true)?;
    let payload = vec![b'x'; 100];
    let start = Instant::now();
    for chunk in (0..KAFKA_MESSAGES).collect::<Vec<_>>().chunks(2000) {
        let sends = chunk.iter().map(|i| {
            let key = i.to_string();
            let payload = &payload;
            let producer = &producer;
            async move { producer.send(topic, key.as_bytes(), payload).await }
        });
        for r in futures_util::future::join_all(sends).await {
            r?;
        }
    }
    let consumer = Consumer::connect(bootstrap, "chaosbank-bench", &[topic])?;
    let mut read = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while read < KAFKA_MESSAGES {
        anyhow::ensure!(
            Instant::now() < deadline,
            "read {read} of {KAFKA_MESSAGES} messages back within 60 s"
        );
        if consumer.poll(Duration::from_secs(1)).await?.is_some() {
            read += 1;
        }
    }
    Ok(KAFKA_MESSAGES as f64 / start.elapsed().as_secs_f64())
}
