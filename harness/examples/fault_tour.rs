//! A tour of the nemesis: start PostgreSQL and MariaDB, print a seeded fault schedule,
//! then break and heal each node by hand.
//!
//!     cargo run -p chaosbank-harness --example fault_tour -- 42

use chaosbank::schedule::{Schedule, ScheduleConfig};
use chaosbank::{nemesis::HOST, Cluster};
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seed = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(42);
    let cluster = Cluster::builder().postgres().mariadb().start().await?;
    for e in cluster.endpoints() {
        println!("{:<8} {}", e.node, e.url());
    }
    let schedule = Schedule::generate(&ScheduleConfig::new(
        seed,
        Duration::from_secs(60),
        &["postgres", "mariadb"],
    ));
    println!("{schedule}");

    let nemesis = cluster.nemesis();
    for event in [
        nemesis.kill("postgres").await?,
        nemesis.restart("postgres").await?,
        nemesis.pause("mariadb").await?,
        nemesis.resume("mariadb").await?,
        nemesis.cut("postgres", HOST).await?,
        nemesis.heal().await?,
        nemesis.halves(&["postgres"], &["mariadb"]).await?,
        nemesis.loss("mariadb", 0.2).await?,
        nemesis.heal_all().await?,
    ] {
        println!("nemesis {} {}", event.f, event.value);
    }
    cluster.wait_ready("postgres").await?;
    cluster.down().await?;
    Ok(())
}
