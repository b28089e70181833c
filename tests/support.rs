//! Helpers shared by the end-to-end tests: connecting to the engine (with a clear
//! message when it is down), SQL on a node, and "nothing left behind" assertions.

pub mod runs;

use chaosbank::docker::Engine;
use chaosbank::labels;
use chaosbank::Endpoint;
use sqlx::Connection;
use std::time::Duration;

/// The engine, or a panic that says how to start one (CI starts it).
pub async fn engine() -> Engine {
    match Engine::connect().await {
        Ok(e) => e,
        Err(e) => panic!("these tests need a Docker engine: {e}"),
    }
}

/// True when the host-built broker binaries image `image` needs exist (the Rust brokers'
/// images; images with none, such as the Apache ones, always have them).
pub fn have_binaries(image: &str) -> bool {
    let tools = chaosbank::images::cache_dir().join("tools");
    chaosbank::images::binaries(image)
        .iter()
        .all(|(_, rel)| tools.join(rel).is_file())
}

/// A connection to a SQL node, with a bound on connecting.
pub enum Sql {
    /// PostgreSQL.
    Pg(sqlx::PgConnection),
    /// MariaDB.
    My(sqlx::MySqlConnection),
}

impl Sql {
    /// Connects to a database endpoint within `timeout`.
    pub async fn connect(e: &Endpoint, timeout: Duration) -> anyhow::Result<Sql> {
        let url = e.url();
        let fut = async {
            anyhow::Ok(if url.starts_with("postgres") {
                Sql::Pg(sqlx::PgConnection::connect(&url).await?)
            } else {
                Sql::My(sqlx::MySqlConnection::connect(&url).await?)
            })
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| anyhow::anyhow!("connect to {} timed out after {timeout:?}", e.node))?
    }

    /// Runs a statement.
    pub async fn exec(&mut self, sql: &str) -> anyhow::Result<()> {
        match self {
            Sql::Pg(c) => {
                sqlx::query(sql).execute(c).await?;
            }
            Sql::My(c) => {
                sqlx::query(sql).execute(c).await?;
            }
        }
        Ok(())
    }

    /// Runs a query returning one integer (INT or BIGINT).
    pub async fn scalar(&mut self, sql: &str) -> anyhow::Result<i64> {
        use sqlx::Row;
        Ok(match self {
            Sql::Pg(c) => {
                let row = sqlx::query(sql).fetch_one(c).await?;
                row.try_get::<i64, _>(0)
                    .or_else(|_| row.try_get::<i32, _>(0).map(i64::from))?
            }
            Sql::My(c) => {
                let row = sqlx::query(sql).fetch_one(c).await?;
                row.try_get::<i64, _>(0)
                    .or_else(|_| row.try_get::<i32, _>(0).map(i64::from))?
            }
        })
    }
}

/// Connects and runs one BIGINT query, all within `timeout`.
pub async fn query_within(e: &Endpoint, sql: &str, timeout: Duration) -> anyhow::Result<i64> {
    let fut = async {
        let mut c = Sql::connect(e, timeout).await?;
        c.scalar(sql).await
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow::anyhow!("query on {} timed out after {timeout:?}", e.node))?
}

/// Containers and networks of a run that still exist.
pub async fn leftovers(engine: &Engine, run: &str) -> (usize, usize) {
    let f = [(labels::CHAOSBANK, "1"), (labels::RUN, run)];
    let c = engine
        .containers_labelled(&f)
        .await
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    let n = engine
        .networks_labelled(&f)
        .await
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    (c, n)
}

/// Asserts that nothing of a run is left, waiting up to `within` for it to go.
pub async fn assert_gone(engine: &Engine, run: &str, within: Duration) {
    let start = std::time::Instant::now();
    loop {
        let left = leftovers(engine, run).await;
        if left == (0, 0) {
            return;
        }
        if start.elapsed() > within {
            panic!(
                "run {run} left {} containers and {} networks behind",
                left.0, left.1
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs a shell command inside a container (through the engine, not the network) and
/// returns whether it exited 0.
pub fn exec_ok(container: &str, script: &str) -> bool {
    std::process::Command::new("docker")
        .args(["exec", container, "bash", "-c", script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The node binary the tests mount into node containers: this package's
/// `chaosbank-node`, which Cargo builds beside the test binaries (`target/<profile>/`;
/// a test binary runs from `target/<profile>/deps/`).
pub fn node_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary runs from target/<profile>/deps");
    let node = profile.join("chaosbank-node");
    assert!(
        node.is_file(),
        "no node binary at {node:?}: build it with `cargo test -p chaosbank-tests`"
    );
    node
}
