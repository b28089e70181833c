//! chaosbank from your own Rust code: one short outbox run under kill and partition
//! faults through the [`chaosbank::Test`] builder, its verdict asserted on, then replayed.
//!
//!     cargo run -p chaosbank-harness --example library_api [SEED]
//!
//! Needs the Docker engine and images (`bash docker/setup.sh --brokers`); takes about a
//! minute. The runs are stored under `runs/` as `chaosbank run` stores them.

use chaosbank::{FaultKind, SystemKind, Test};
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let seed = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(7);

    let report = Test::new(SystemKind::Outbox)
        .nemesis([FaultKind::Kill, FaultKind::Isolate])
        .seed(seed)
        .time_limit(Duration::from_secs(20))
        .concurrency(4)
        .run()
        .await?;
    println!("{}", report.one_line());
    assert!(report.is_valid(), "the outbox lost or duplicated money");

    // The run's folder: run.json (config, seed, image ids, versions), the history, the
    // verdict, the report and every container's log.
    for file in [
        "run.json",
        "history.jsonl",
        "verdict.json",
        "report.html",
        "logs",
    ] {
        println!("  {}", report.dir().join(file).display());
    }

    let replay = chaosbank::replay::replay(report.dir(), None).await?;
    println!("{}", replay.summary());
    Ok(())
}
