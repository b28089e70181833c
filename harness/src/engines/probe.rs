//! Readiness by a real protocol handshake, never by sleeping: a SQL `SELECT 1`, a Kafka
//! ApiVersions + Metadata exchange, a RocketMQ name-server route lookup. [`poll`] retries
//! a probe with backoff under an overall timeout and reports the last error it saw.

pub mod kafka;
pub mod rocketmq;

use crate::error::{Error, Result};
use sqlx::Connection;
use std::future::Future;
use std::time::{Duration, Instant};

/// How one probe attempt ended when it did not succeed.
#[derive(Debug)]
pub enum NotReady {
    /// Try again (connection refused, server still starting, …).
    Retry(String),
    /// Give up at once (the container exited, say).
    Fatal(Error),
}

impl<E: std::fmt::Display> From<E> for NotReady {
    fn from(e: E) -> Self {
        NotReady::Retry(e.to_string())
    }
}

/// Retries `attempt` with backoff (50 ms doubling to 1 s) until it succeeds, fails
/// fatally, or `timeout` has passed; returns the value and how long it took.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut attempt: F) -> Result<(T, Duration)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, NotReady>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(50);
    let mut last = String::from("no attempt finished");
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, attempt()).await {
            Ok(Ok(v)) => return Ok((v, start.elapsed())),
            Ok(Err(NotReady::Fatal(e))) => return Err(e),
            Ok(Err(NotReady::Retry(e))) => last = e,
            Err(_) => {}
        }
        if start.elapsed() + delay >= timeout {
            return Err(Error::Timeout {
                what: what.to_string(),
                after: start.elapsed(),
                last,
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Where and as whom to reach a SQL server on the host.
#[derive(Clone, Debug)]
pub struct SqlTarget {
    /// Host port on 127.0.0.1.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
    /// Database name.
    pub database: String,
}

/// One attempt: connect to PostgreSQL and run `SELECT 1`.
pub async fn postgres(t: &SqlTarget) -> Result<(), NotReady> {
    let opts = sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .port(t.port)
        .username(&t.user)
        .password(&t.password)
        .database(&t.database)
        .ssl_mode(sqlx::postgres::PgSslMode::Disable);
    let mut conn = within(sqlx::PgConnection::connect_with(&opts)).await??;
    let one: i32 = within(sqlx::query_scalar("SELECT 1").fetch_one(&mut conn)).await??;
    let _ = conn.close().await;
    check_one(one)
}

/// One attempt: connect to MariaDB/MySQL and run `SELECT 1`.
pub async fn mysql(t: &SqlTarget) -> Result<(), NotReady> {
    let opts = sqlx::mysql::MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(t.port)
        .username(&t.user)
        .password(&t.password)
        .database(&t.database)
        .ssl_mode(sqlx::mysql::MySqlSslMode::Disabled);
    let mut conn = within(sqlx::MySqlConnection::connect_with(&opts)).await??;
    let one: i32 = within(sqlx::query_scalar("SELECT 1").fetch_one(&mut conn)).await??;
    let _ = conn.close().await;
    check_one(one)
}

fn check_one(one: i32) -> Result<(), NotReady> {
    if one == 1 {
        Ok(())
    } else {
        Err(NotReady::Retry(format!("SELECT 1 returned {one}")))
    }
}

/// Bounds one network step of a probe, so a paused or partitioned server cannot hold
/// an attempt for ever.
pub async fn within<T>(f: impl Future<Output = T>) -> Result<T, NotReady> {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .map_err(|_| NotReady::Retry("no answer within 5 s".to_string()))
}

/// A node container's control port answers `health` with "ready" (its role started).
pub async fn node(port: u16) -> Result<(), NotReady> {
    let addr = format!("127.0.0.1:{port}");
    match workloads::node::health(&addr, Duration::from_secs(2)).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(NotReady::Retry(format!("{addr}: started, not ready yet"))),
        Err(e) => Err(NotReady::Retry(format!("{addr}: {e:#}"))),
    }
}
