//! Kafka Connect's REST API, as the `outbox-cdc` scheme uses it: register Debezium's
//! PostgreSQL connector with the Outbox Event Router, wait until its task is `RUNNING`,
//! and supervise it. Connect never restarts a task that ended `FAILED`; the
//! [`supervise`] loop does, through `POST /connectors/<name>/tasks/<id>/restart`, and
//! keeps a [`Restart`] for each one so a run can report them (the harness writes each as
//! `info` ops of process `connect-supervisor` in the history). It restarts a task at most
//! [`MAX_RESTARTS`] times, waiting longer each time (1 s, 2 s, 4 s, then 8 s); a task
//! that fails again after that is left `FAILED`, and a run that ends so is judged
//! unknown, naming the connector's error.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::http::HttpClient;

/// How long one REST call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the supervisor reads the connector's status.
const SUPERVISE_EVERY: Duration = Duration::from_secs(1);
/// How many times the supervisor restarts one task; it leaves the task FAILED after.
pub const MAX_RESTARTS: u32 = 8;
/// The longest wait between two restarts of one task (1 s, doubled each time, up to this).
const MAX_BACKOFF: Duration = Duration::from_secs(8);

pub use crate::scheme::{ConnectLink, Restart, SlotMismatch};

/// The name of the connector (and its replication slot and publication).
pub const CONNECTOR: &str = "chaosbank_outbox_a";

/// The connector's configuration: bank A's `outbox` table through `pgoutput` into the
/// Outbox Event Router, each row published to the topic its `topic` column names, keyed
/// by its transfer id, its value the row's `payload` (the transfer as JSON) as it is.
/// Before the router, Kafka's `HeaderFrom` copies the `source` block of Debezium's
/// envelope (its `lsn`, `txId`, …) into the header [`crate::clients::kafka::LSN_HEADER`]
/// as JSON (the connector's header converter; the router keeps a record's headers), so
/// the topic logs say which WAL position each record came from. The block is copied
/// whole: `HeaderFrom`'s nested paths (`source.lsn`, `field.syntax.version=V2`) find the
/// value but not its schema, and fail every record (Kafka Connect 4.3.1, measured).
pub fn connector_config(bank_a: &str, mismatch: SlotMismatch) -> Result<Value> {
    let url = url_parts(bank_a)?;
    let mut cfg = json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "database.hostname": url.host,
        "database.port": url.port.to_string(),
        "database.user": url.user,
        "database.password": url.password,
        "database.dbname": url.database,
        "topic.prefix": "bank-a",
        "plugin.name": "pgoutput",
        "slot.name": CONNECTOR,
        "publication.name": CONNECTOR,
        "publication.autocreate.mode": "filtered",
        "table.include.list": "public.outbox",
        // The outbox is empty when the connector is registered: nothing to snapshot.
        "snapshot.mode": "no_data",
        "tombstones.on.delete": "false",
        "transforms": "lsn,outbox",
        "transforms.lsn.type": "org.apache.kafka.connect.transforms.HeaderFrom$Value",
        "transforms.lsn.fields": "source",
        "transforms.lsn.headers": crate::clients::kafka::LSN_HEADER,
        "transforms.lsn.operation": "copy",
        "header.converter": "org.apache.kafka.connect.json.JsonConverter",
        "header.converter.schemas.enable": "false",
        "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
        "transforms.outbox.table.field.event.id": "id",
        "transforms.outbox.table.field.event.key": "transfer",
        "transforms.outbox.table.field.event.payload": "payload",
        "transforms.outbox.route.by.field": "topic",
        "transforms.outbox.route.topic.replacement": "${routedByValue}",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
    });
    cfg["offset.mismatch.strategy"] = mismatch.value().into();
    Ok(cfg)
}

struct UrlParts {
    host: String,
    port: u16,
    user: String,
    password: String,
    database: String,
}

/// `postgres://user:password@host:port/database` → its parts.
fn url_parts(url: &str) -> Result<UrlParts> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .with_context(|| format!("bank A's URL {url:?} is not postgres://…"))?;
    let (auth, location) = rest
        .rsplit_once('@')
        .with_context(|| format!("bank A's URL {url:?} has no user@"))?;
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let (hostport, database) = location
        .split_once('/')
        .with_context(|| format!("bank A's URL {url:?} names no database"))?;
    let (host, port) = hostport
        .rsplit_once(':')
        .with_context(|| format!("bank A's URL {url:?} names no port"))?;
    let port = port
        .parse()
        .with_context(|| format!("bank A's URL {url:?}: bad port {port:?}"))?;
    Ok(UrlParts {
        host: host.to_string(),
        port,
        user: user.to_string(),
        password: password.to_string(),
        database: database.split('?').next().unwrap_or(database).to_string(),
    })
}

/// One task's state as `GET /connectors/<name>/status` gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskState {
    /// The task's number.
    pub id: i64,
    /// `RUNNING`, `FAILED`, `PAUSED`, `UNASSIGNED`, …
    pub state: String,
    /// The stack trace of a failed task (its first line).
    pub trace: Option<String>,
}

/// A connector's state and its tasks'.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The connector's own state.
    pub connector: String,
    /// Its tasks.
    pub tasks: Vec<TaskState>,
}

impl Status {
    /// Reads a status answer.
    pub fn parse(v: &Value) -> Result<Status> {
        let connector = v["connector"]["state"]
            .as_str()
            .context("the status names no connector state")?
            .to_string();
        let tasks = v["tasks"]
            .as_array()
            .context("the status lists no tasks")?
            .iter()
            .map(|t| TaskState {
                id: t["id"].as_i64().unwrap_or(0),
                state: t["state"].as_str().unwrap_or("?").to_string(),
                trace: t["trace"]
                    .as_str()
                    .map(|s| s.lines().next().unwrap_or(s).to_string()),
            })
            .collect();
        Ok(Status { connector, tasks })
    }

    /// True when the connector and at least one task run, and every task runs.
    pub fn running(&self) -> bool {
        self.connector == "RUNNING"
            && !self.tasks.is_empty()
            && self.tasks.iter().all(|t| t.state == "RUNNING")
    }
}

/// The supervisor's records added to `all` since the last call (`taken` counts those
/// already handed out): what a scheme's [`crate::scheme::Ledgers::connector_events`]
/// returns.
pub fn take_new(all: &Mutex<Vec<Restart>>, taken: &Mutex<usize>) -> Vec<Restart> {
    let all = all.lock().unwrap_or_else(|e| e.into_inner());
    let mut taken = taken.lock().unwrap_or_else(|e| e.into_inner());
    let new = all.get(*taken..).unwrap_or_default().to_vec();
    *taken = all.len();
    new
}

/// The supervisor's memory of one task.
#[derive(Clone, Debug, Default)]
struct Budget {
    attempts: u32,
    next: Option<Instant>,
    gave_up: bool,
}

impl Budget {
    /// What to do about the task seen FAILED `now`: `Some(attempt)` to restart it
    /// (attempt 0: give up, once), `None` to wait.
    fn on_failed(&mut self, now: Instant) -> Option<u32> {
        if self.gave_up || self.next.is_some_and(|n| now < n) {
            return None;
        }
        if self.attempts >= MAX_RESTARTS {
            self.gave_up = true;
            return Some(0);
        }
        self.attempts += 1;
        let wait = (Duration::from_secs(1) * (1 << (self.attempts - 1).min(4))).min(MAX_BACKOFF);
        self.next = Some(now + wait);
        Some(self.attempts)
    }
}

/// A client of one Connect worker's REST API.
pub struct Connect {
    http: HttpClient,
}

impl Connect {
    /// A client of the worker at `addr` (`host:port`).
    pub fn new(addr: &str) -> Connect {
        Connect {
            http: HttpClient::new(addr),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let answer = self
            .http
            .call(method, path, bytes.as_deref(), CALL_TIMEOUT)
            .await
            .map_err(|e| anyhow::anyhow!("{method} {path} on {}: {e:?}", self.http.addr()))?;
        let value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        Ok((answer.status, value))
    }

    /// Registers connector `name` with `config` (an existing one is kept as it is).
    pub async fn register(&self, name: &str, config: &Value) -> Result<()> {
        let body = json!({ "name": name, "config": config });
        let (status, answer) = self.call("POST", "/connectors", Some(&body)).await?;
        match status {
            200 | 201 | 409 => Ok(()),
            other => bail!("registering connector {name}: HTTP {other}: {answer}"),
        }
    }

    /// The connector's status.
    pub async fn status(&self, name: &str) -> Result<Status> {
        let path = format!("/connectors/{name}/status");
        let (status, answer) = self.call("GET", &path, None).await?;
        if status != 200 {
            bail!("GET {path}: HTTP {status}: {answer}");
        }
        Status::parse(&answer)
    }

    /// Asks the worker to restart one task.
    pub async fn restart_task(&self, name: &str, task: i64) -> Result<()> {
        let path = format!("/connectors/{name}/tasks/{task}/restart");
        let (status, answer) = self.call("POST", &path, None).await?;
        if !(200..300).contains(&status) {
            bail!("POST {path}: HTTP {status}: {answer}");
        }
        Ok(())
    }

    /// Waits until the connector and its tasks are `RUNNING`, restarting a FAILED task
    /// on the way; the error names the last state seen.
    pub async fn wait_running(&self, name: &str, timeout: Duration) -> Result<Status> {
        let started = Instant::now();
        loop {
            let last = match self.status(name).await {
                Ok(s) if s.running() => return Ok(s),
                Ok(s) => {
                    for t in s.tasks.iter().filter(|t| t.state == "FAILED") {
                        let _ = self.restart_task(name, t.id).await;
                    }
                    format!("{s:?}")
                }
                Err(e) => format!("{e:#}"),
            };
            if started.elapsed() >= timeout {
                bail!("connector {name} was not RUNNING within {timeout:?}: {last}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Restarts every FAILED task of connector `name` until `stop`, recording each restart
/// in `restarts` and logging it (Connect itself never restarts a failed task); at most
/// [`MAX_RESTARTS`] times per task, backing off, after which the task is left FAILED
/// (recorded once, with `attempt` 0).
pub async fn supervise(
    connect: Connect,
    name: String,
    restarts: Arc<Mutex<Vec<Restart>>>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let mut budgets: std::collections::BTreeMap<i64, Budget> = Default::default();
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        if let Ok(status) = connect.status(&name).await {
            for t in status.tasks.iter().filter(|t| t.state == "FAILED") {
                let Some(attempt) = budgets.entry(t.id).or_default().on_failed(Instant::now())
                else {
                    continue;
                };
                let reason = t.trace.clone().unwrap_or_else(|| "no trace".to_string());
                let refused = if attempt == 0 {
                    Some(format!(
                        "not restarted: its {MAX_RESTARTS} restarts are spent, left FAILED"
                    ))
                } else {
                    connect
                        .restart_task(&name, t.id)
                        .await
                        .err()
                        .map(|e| format!("{e:#}"))
                };
                tracing::warn!(
                    "connector {name}: task {} FAILED ({reason}); {}",
                    t.id,
                    match &refused {
                        None => format!("restart {attempt} requested"),
                        Some(why) => why.clone(),
                    }
                );
                restarts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Restart {
                        connector: name.clone(),
                        task: t.id,
                        reason,
                        accepted: refused.is_none(),
                        attempt,
                        refused,
                    });
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(SUPERVISE_EVERY) => {}
            r = stop.changed() => if r.is_err() { return Ok(()); },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connector_reads_bank_a_through_the_workers_forwarder() {
        let cfg = connector_config(
            "postgres://chaosbank:pw@127.0.0.1:15432/chaosbank",
            SlotMismatch::NoValidation,
        )
        .unwrap();
        assert_eq!(cfg["database.hostname"], "127.0.0.1");
        assert_eq!(cfg["database.port"], "15432");
        assert_eq!(cfg["database.password"], "pw");
        assert_eq!(cfg["transforms.outbox.route.by.field"], "topic");
        // The WAL position is copied to a header before the router, which keeps it.
        assert_eq!(cfg["transforms"], "lsn,outbox");
        assert_eq!(
            cfg["transforms.lsn.headers"],
            crate::clients::kafka::LSN_HEADER
        );
        assert_eq!(cfg["offset.mismatch.strategy"], "no_validation");
        let safe = connector_config("postgres://u:p@h:1/d", SlotMismatch::TrustOffset).unwrap();
        assert_eq!(safe["offset.mismatch.strategy"], "trust_offset");
        assert!(connector_config("mysql://u:p@h:1/d", SlotMismatch::TrustOffset).is_err());
        assert!(connector_config("postgres://u:p@h/d", SlotMismatch::TrustOffset).is_err());
        assert_eq!(
            SlotMismatch::parse("trust-offset"),
            Some(SlotMismatch::TrustOffset)
        );
        assert_eq!(SlotMismatch::parse("fail"), None);
    }

    #[test]
    fn a_task_is_restarted_with_growing_waits_then_left_failed() {
        let mut b = Budget::default();
        let t0 = Instant::now();
        assert_eq!(b.on_failed(t0), Some(1));
        // Within the 1 s wait: nothing.
        assert_eq!(b.on_failed(t0 + Duration::from_millis(500)), None);
        assert_eq!(b.on_failed(t0 + Duration::from_secs(1)), Some(2));
        // Then 2 s.
        assert_eq!(b.on_failed(t0 + Duration::from_secs(2)), None);
        assert_eq!(b.on_failed(t0 + Duration::from_secs(3)), Some(3));
        let mut t = t0 + Duration::from_secs(3);
        let mut attempts = vec![];
        for _ in 0..200 {
            t += Duration::from_secs(1);
            if let Some(a) = b.on_failed(t) {
                attempts.push(a);
            }
        }
        // The rest of the budget, then one give-up, then silence.
        assert_eq!(attempts, vec![4, 5, 6, 7, 8, 0]);
        let given_up = Restart {
            connector: "c".into(),
            task: 0,
            reason: "x".into(),
            accepted: false,
            attempt: 0,
            refused: Some("spent".into()),
        };
        assert!(given_up.gave_up());
    }

    #[test]
    fn a_status_runs_when_every_task_runs() {
        let v = json!({"connector":{"state":"RUNNING"},"tasks":[{"id":0,"state":"RUNNING"}]});
        assert!(Status::parse(&v).unwrap().running());
        let v = json!({"connector":{"state":"RUNNING"},"tasks":[
            {"id":0,"state":"FAILED","trace":"org.apache.kafka.connect.errors.ConnectException: slot gone\n\tat x"}]});
        let s = Status::parse(&v).unwrap();
        assert!(!s.running());
        assert_eq!(
            s.tasks[0].trace.as_deref(),
            Some("org.apache.kafka.connect.errors.ConnectException: slot gone")
        );
        let none = json!({"connector":{"state":"RUNNING"},"tasks":[]});
        assert!(!Status::parse(&none).unwrap().running());
        assert!(Status::parse(&json!({})).is_err());
    }
}
