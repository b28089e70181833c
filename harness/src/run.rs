//! One run, end to end: cluster up → scheme set up → seeded workload and fault schedule
//! for the time limit → heal everything → wait (bounded) until the scheme has drained →
//! final ledgers and dead letters into the history → check → verdict and figures.
//!
//! The history goes to `<out>/<system>/<UTC timestamp>-<seed>/history.jsonl` as the run
//! goes, with `verdict.json` and `report.html` next to it and `<out>/latest` pointing
//! at it. The cluster is removed whatever happens (its
//! drop, the watchdog, or the next run's reaper).

use anyhow::{bail, Context, Result};
use checkers::history::OpType;
use checkers::verdict::Verdict;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use workloads::system::{self, Backlog, Endpoints, FinalState, Options, Outcome, System};

pub use workloads::system::SystemKind;

use crate::cluster::Cluster;
use crate::generator::{Generator, Invocation, WorkloadConfig};
use crate::recorder::Recorder;
use crate::schedule::{FaultKind, Schedule, ScheduleConfig};

/// The nodes faults target: the engines and the scheme's own node containers (those a
/// run does not have are dropped).
pub const TARGETS: [&str; 7] = [
    "postgres", "mariadb", "kafka", "broker", "producer", "relay", "consumer",
];

/// Maps the CLI's nemesis names to fault kinds: `kill`, `pause`, `partition` (a node
/// isolated from everyone, the host included), `loss`, `latency` (= `delay`), plus the
/// schedule's own names (`isolate`, `halves`, `cut`); `none` for no faults.
pub fn parse_nemesis(list: &str) -> Result<Vec<FaultKind>> {
    let mut kinds = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match name {
            "none" => {}
            "partition" => kinds.push(FaultKind::Isolate),
            "latency" => kinds.push(FaultKind::Delay),
            other => match FaultKind::parse(other) {
                Some(k) => kinds.push(k),
                None => bail!("unknown nemesis {other:?} (kill, pause, partition, loss, latency, isolate, halves, cut, delay, none)"),
            },
        }
    }
    Ok(kinds)
}

/// Everything a run is made of. Stored in `run.json` (see [`crate::store`]); fields
/// missing from an older file take [`RunConfig::new`]'s values.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    /// The scheme under test.
    #[serde(with = "crate::store::system_serde")]
    pub system: SystemKind,
    /// Fault kinds to draw from (empty: no faults).
    pub faults: Vec<FaultKind>,
    /// How long the workload and the faults run.
    pub time_limit: Duration,
    /// Concurrent client workers.
    pub concurrency: usize,
    /// The seed of the workload and the fault schedule.
    pub seed: u64,
    /// Runs are stored under `<out>/<system>/…`.
    pub out: PathBuf,
    /// Consumers deduplicate (off shows the checker catches duplicates).
    pub dedup: bool,
    /// The longest wait for the scheme to drain after healing.
    pub drain_timeout: Duration,
    /// Mean quiet time between faults.
    pub fault_interval: Duration,
    /// Mean time a fault holds.
    pub fault_hold: Duration,
    /// Also measure raw `pgbench` TPS on the same PostgreSQL container (~10 s).
    pub pgbench: bool,
    /// The nodes faults may target (default [`TARGETS`]; nodes the cluster lacks are
    /// dropped).
    pub targets: Vec<String>,
    /// A consumer parks a message (dead letter) after failing it this many times.
    pub max_attempts: u32,
    /// Run the scheme's processes as tasks of the harness instead of in node containers.
    pub in_process: bool,
    /// The node binary mounted into node containers (default: see
    /// [`crate::deploy::node_binary`]).
    pub node_binary: Option<PathBuf>,
}

impl RunConfig {
    /// The defaults of `chaosbank run`: outbox, mixed faults, 60 s, 8 workers.
    pub fn new(seed: u64) -> RunConfig {
        RunConfig {
            system: SystemKind::Outbox,
            faults: vec![
                FaultKind::Kill,
                FaultKind::Pause,
                FaultKind::Isolate,
                FaultKind::Loss,
            ],
            time_limit: Duration::from_secs(60),
            concurrency: 8,
            seed,
            out: PathBuf::from("runs"),
            dedup: true,
            drain_timeout: Duration::from_secs(120),
            fault_interval: Duration::from_secs(8),
            fault_hold: Duration::from_secs(5),
            pgbench: false,
            targets: TARGETS.iter().map(|t| t.to_string()).collect(),
            max_attempts: Options::default().max_attempts,
            in_process: false,
            node_binary: None,
        }
    }
}

/// Measured figures of a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Figures {
    /// Transfers acknowledged `ok`.
    pub transfers_ok: u64,
    /// Transfers that failed (including refusals for insufficient funds).
    pub transfers_fail: u64,
    /// Transfers whose outcome is unknown.
    pub transfers_info: u64,
    /// Reads that succeeded.
    pub reads_ok: u64,
    /// `ok` transfers per second of workload.
    pub throughput: f64,
    /// Cross-bank transfers with both sides in the ledgers.
    pub cross_bank_completed: usize,
    /// Median time from the debit's ledger row to the credit's, milliseconds.
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile of the same.
    pub latency_p99_ms: Option<f64>,
    /// Raw pgbench TPS on the same PostgreSQL container, when measured.
    pub pgbench_tps: Option<f64>,
}

/// What a run produced.
#[derive(Debug)]
pub struct RunReport {
    /// The scheme.
    pub system: SystemKind,
    /// The seed.
    pub seed: u64,
    /// The history file.
    pub history: PathBuf,
    /// The checker's verdict.
    pub verdict: Verdict,
    /// Faults the schedule held.
    pub faults: usize,
    /// Whether the scheme drained before the drain timeout.
    pub drained: bool,
    /// How long the drain wait took.
    pub drain_wait: Duration,
    /// What was left when the wait ended.
    pub backlog: Option<Backlog>,
    /// Dead letters recorded.
    pub dead_letters: usize,
    /// Figures.
    pub figures: Figures,
}

impl RunReport {
    /// A few lines for a person.
    pub fn summary(&self) -> String {
        let f = &self.figures;
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0} ms"));
        let mut s = format!(
            "{} seed {}: {} faults; transfers ok {} / fail {} / info {}; {:.1} transfers/s; \
             debit→credit p50 {} p99 {} ({} cross-bank)",
            self.system,
            self.seed,
            self.faults,
            f.transfers_ok,
            f.transfers_fail,
            f.transfers_info,
            f.throughput,
            ms(f.latency_p50_ms),
            ms(f.latency_p99_ms),
            f.cross_bank_completed,
        );
        if let Some(tps) = f.pgbench_tps {
            s.push_str(&format!("; pgbench {tps:.0} TPS"));
        }
        s.push_str(&format!(
            "\ndrain: {} in {:.1?}{}; {} dead letters\nhistory: {}",
            if self.drained {
                "drained"
            } else {
                "NOT drained"
            },
            self.drain_wait,
            self.backlog
                .as_ref()
                .map(|b| format!(" ({b})"))
                .unwrap_or_default(),
            self.dead_letters,
            self.history.display()
        ));
        s
    }
}

/// A seed from the clock, for runs not given one.
pub fn seed_from_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 % 1_000_000_000)
        .unwrap_or(1)
}

/// `YYYYmmddTHHMMSSZ` for now (UTC).
fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Runs one test end to end.
pub async fn run(cfg: &RunConfig) -> Result<RunReport> {
    if cfg.concurrency == 0 {
        bail!("concurrency must be at least 1");
    }
    let dir = cfg
        .out
        .join(cfg.system.name())
        .join(format!("{}-{}", timestamp(), cfg.seed));
    // Before anything starts: a run in node containers needs a node binary.
    let binary = if cfg.in_process {
        None
    } else {
        Some(crate::deploy::node_binary(cfg.node_binary.as_deref())?)
    };
    let mut builder = Cluster::builder().postgres().mariadb();
    builder = if cfg.system.uses_kafka() {
        builder.kafka()
    } else {
        builder.rocketmq()
    };
    let mut store = crate::store::RunStore::create(&dir, cfg)?;
    let cluster = store
        .cluster_up(builder.start().await.context("starting the cluster"))
        .await?;
    let result = run_on(cfg, &cluster, dir, binary.as_deref()).await;
    store.finish(&cluster, &result).await;
    if let Err(e) = cluster.down().await {
        tracing::warn!("removing the cluster: {e}");
    }
    result
}

async fn run_on(
    cfg: &RunConfig,
    cluster: &Cluster,
    dir: PathBuf,
    binary: Option<&std::path::Path>,
) -> Result<RunReport> {
    let endpoints = Endpoints {
        bank_a: cluster.endpoint("postgres")?.url(),
        bank_b: cluster.endpoint("mariadb")?.url(),
        kafka: cluster.endpoint("kafka").ok().map(|e| e.url()),
        rocketmq: cluster.endpoint("namesrv").ok().map(|e| e.url()),
    };
    let options = Options {
        dedup: cfg.dedup,
        max_attempts: cfg.max_attempts.max(1),
        connections: (cfg.concurrency as u32) + 4,
        ..Options::default()
    };
    let workload = WorkloadConfig::new(cfg.seed);
    let balances = workload.initial_balances();
    let local = system::build(cfg.system, &endpoints, &options)?;
    let sys =
        crate::deploy::deploy(cluster, local, cfg.system, &options, &balances, binary).await?;
    let result = drive(cfg, cluster, sys.clone(), workload, dir).await;
    sys.teardown().await;
    result
}

async fn drive(
    cfg: &RunConfig,
    cluster: &Cluster,
    sys: Arc<dyn System>,
    workload: WorkloadConfig,
    dir: PathBuf,
) -> Result<RunReport> {
    let balances = workload.initial_balances();
    let start = Instant::now();
    let recorder = Arc::new(Recorder::create(&dir.join("history.jsonl"), start)?);
    recorder.named(
        "setup",
        OpType::Ok,
        "init",
        &serde_json::json!({ "balances": balances }),
        None,
    )?;
    let _progress = crate::progress::workload(cfg.time_limit, recorder.clone());

    let targets: Vec<&String> = cfg
        .targets
        .iter()
        .filter(|n| cluster.endpoint(n).is_ok())
        .collect();
    let schedule = Schedule::generate(&ScheduleConfig {
        seed: cfg.seed,
        duration: cfg.time_limit,
        interval: cfg.fault_interval,
        hold: cfg.fault_hold,
        faults: cfg.faults.clone(),
        targets: targets.iter().map(|t| t.to_string()).collect(),
    });
    tracing::info!("{schedule}");
    let nemesis = cluster.nemesis();
    let nemesis_task = {
        let (recorder, nemesis, schedule) = (recorder.clone(), nemesis.clone(), schedule.clone());
        tokio::spawn(async move {
            schedule
                .play(&nemesis, |ev| {
                    if let Err(e) = recorder.nemesis(&ev) {
                        tracing::error!("{e:#}");
                    }
                })
                .await
        })
    };

    let generator = Arc::new(Generator::new(workload));
    let deadline = start + cfg.time_limit;
    let mut workers = Vec::new();
    for _ in 0..cfg.concurrency {
        let (sys, generator, recorder) = (sys.clone(), generator.clone(), recorder.clone());
        workers.push(tokio::spawn(async move {
            worker(sys, generator, recorder, deadline).await
        }));
    }
    let mut counts = Counts::default();
    for w in workers {
        counts.add(&w.await.context("a client worker panicked")??);
    }
    let workload_time = start.elapsed();

    // Heal everything, whatever the schedule managed to do.
    match nemesis_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("fault schedule: {e}"),
        Err(e) => tracing::warn!("fault schedule task: {e}"),
    }
    let ev = nemesis.heal_all().await.context("healing the cluster")?;
    recorder.nemesis(&ev)?;
    for node in cluster.nodes() {
        cluster
            .wait_ready(&node)
            .await
            .with_context(|| format!("{node} after healing"))?;
    }

    // Drain: bounded, reported.
    let drain_start = Instant::now();
    let mut backlog = None;
    let drained = loop {
        match sys.backlog().await {
            Ok(b) if b.is_empty() => {
                backlog = Some(b);
                break true;
            }
            Ok(b) => backlog = Some(b),
            Err(e) => tracing::debug!("backlog: {e:#}"),
        }
        if drain_start.elapsed() >= cfg.drain_timeout {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let drain_wait = drain_start.elapsed();
    tracing::info!(
        "drain: {} after {drain_wait:.1?}{}",
        if drained { "done" } else { "gave up" },
        backlog
            .as_ref()
            .map(|b| format!(" ({b})"))
            .unwrap_or_default()
    );
    // The drain's outcome goes into the history: transfers still in flight after a drain
    // that gave up are not lost (the checker calls them in-flight, the verdict unknown).
    recorder.named(
        "final",
        OpType::Ok,
        "drain",
        &serde_json::json!({
            "drained": drained,
            "waited_s": drain_wait.as_secs_f64(),
            "backlog": backlog,
        }),
        None,
    )?;
    sys.stop().await;
    crate::deploy::stop_nodes(cluster).await;

    let state = final_state(sys.as_ref()).await?;
    for ledger in &state.ledgers {
        // Split big ledgers over several lines (the contract allows it).
        let chunks: Vec<_> = ledger.entries.chunks(5000).collect();
        if chunks.is_empty() {
            recorder.named("final", OpType::Ok, "final-ledger", ledger, None)?;
        }
        for (i, chunk) in chunks.iter().enumerate() {
            let mut v = serde_json::json!({ "bank": ledger.bank, "entries": chunk });
            if i == 0 {
                v["balances"] = serde_json::to_value(&ledger.balances)?;
            }
            recorder.named("final", OpType::Ok, "final-ledger", &v, None)?;
        }
    }
    for letter in &state.dead_letters {
        recorder.named("final", OpType::Ok, "dead-letter", letter, None)?;
    }
    let history = recorder.path().to_path_buf();
    drop(recorder);

    let pgbench_tps = if cfg.pgbench {
        match pgbench(cluster).await {
            Ok(tps) => Some(tps),
            Err(e) => {
                tracing::warn!("pgbench: {e:#}");
                None
            }
        }
    } else {
        None
    };

    let file =
        std::fs::File::open(&history).with_context(|| format!("opening {}", history.display()))?;
    let verdict =
        checkers::check_reader(BufReader::new(file), None).context("checking the history")?;
    let (p50, p99, completed) = latencies(&state);
    let figures = Figures {
        transfers_ok: counts.ok,
        transfers_fail: counts.fail,
        transfers_info: counts.info,
        reads_ok: counts.reads_ok,
        throughput: counts.ok as f64 / workload_time.as_secs_f64().max(1e-9),
        cross_bank_completed: completed,
        latency_p50_ms: p50,
        latency_p99_ms: p99,
        pgbench_tps,
    };
    let report = RunReport {
        system: cfg.system,
        seed: cfg.seed,
        history: history.clone(),
        verdict,
        faults: schedule.steps.len(),
        drained,
        drain_wait,
        backlog,
        dead_letters: state.dead_letters.len(),
        figures,
    };
    let out = serde_json::json!({
        "system": cfg.system.name(),
        "seed": cfg.seed,
        "verdict": report.verdict,
        "drained": drained,
        "drain_wait_s": drain_wait.as_secs_f64(),
        "figures": report.figures,
    });
    std::fs::write(dir.join("verdict.json"), serde_json::to_vec_pretty(&out)?)
        .with_context(|| format!("writing {}", dir.join("verdict.json").display()))?;
    write_report(&dir, &history, &report.verdict, cfg);
    Ok(report)
}

/// Writes `report.html` beside the history and points `<out>/latest` at the run. Either
/// failing is logged, never fatal: the history and verdict are already on disk.
fn write_report(
    dir: &std::path::Path,
    history: &std::path::Path,
    verdict: &Verdict,
    cfg: &RunConfig,
) {
    let options = crate::report::ReportOptions {
        title: format!("{} seed {}", cfg.system.name(), cfg.seed),
        ..Default::default()
    };
    let html = dir.join("report.html");
    if let Err(e) = crate::report::write_html_with(history, verdict, &html, &options) {
        tracing::warn!("could not write {}: {e}", html.display());
    }
    let latest = cfg.out.join("latest");
    let target = dir.strip_prefix(&cfg.out).unwrap_or(dir);
    let _ = std::fs::remove_file(&latest);
    #[cfg(unix)]
    if let Err(e) = std::os::unix::fs::symlink(target, &latest) {
        tracing::warn!("could not point {} at the run: {e}", latest.display());
    }
}

/// Reads the final state, retrying while the databases come back.
async fn final_state(sys: &dyn System) -> Result<FinalState> {
    let mut last = None;
    for _ in 0..20 {
        match sys.final_state().await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(last
        .unwrap_or_else(|| anyhow::anyhow!("no attempt"))
        .context("reading the final ledgers"))
}

#[derive(Default)]
struct Counts {
    ok: u64,
    fail: u64,
    info: u64,
    reads_ok: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.ok += o.ok;
        self.fail += o.fail;
        self.info += o.info;
        self.reads_ok += o.reads_ok;
    }
}

/// One client worker: invoke, complete, repeat until the deadline; a fresh process
/// number after every `info`.
async fn worker(
    sys: Arc<dyn System>,
    generator: Arc<Generator>,
    recorder: Arc<Recorder>,
    deadline: Instant,
) -> Result<Counts> {
    let mut counts = Counts::default();
    let mut process = generator.new_process();
    while Instant::now() < deadline {
        let (invoke, outcome, is_transfer) = match generator.next() {
            Invocation::Transfer(t) => {
                let invoke = recorder.invoke(process, "transfer", &t)?;
                (invoke, sys.transfer(&t).await, true)
            }
            Invocation::Read(bank) => {
                let invoke = recorder.invoke(process, "read", &serde_json::Value::Null)?;
                (invoke, sys.read(bank).await, false)
            }
        };
        match outcome {
            Outcome::Ok(v) => {
                recorder.complete(&invoke, OpType::Ok, &v, None)?;
                if is_transfer {
                    counts.ok += 1;
                } else {
                    counts.reads_ok += 1;
                }
            }
            Outcome::Fail(e) => {
                recorder.complete(&invoke, OpType::Fail, &invoke.value, Some(&e))?;
                counts.fail += u64::from(is_transfer);
            }
            Outcome::Info(e) => {
                recorder.complete(&invoke, OpType::Info, &invoke.value, Some(&e))?;
                counts.info += u64::from(is_transfer);
                process = generator.new_process();
            }
        }
    }
    Ok(counts)
}

/// Debit→credit latency of cross-bank transfers applied once on each side: (p50, p99)
/// in milliseconds, and how many there were.
fn latencies(state: &FinalState) -> (Option<f64>, Option<f64>, usize) {
    let mut sides: HashMap<u64, (Option<i64>, Option<i64>, bool)> = HashMap::new();
    for ledger in &state.ledgers {
        for e in &ledger.entries {
            let s = sides.entry(e.transfer).or_insert((None, None, false));
            if e.amount < 0 {
                s.2 |= s.0.is_some();
                s.0 = Some(e.at_us);
            } else {
                s.2 |= s.1.is_some();
                s.1 = Some(e.at_us);
            }
            // Local transfers write both rows in one bank: tell them apart by bank below.
        }
    }
    let local: std::collections::HashSet<u64> = state
        .ledgers
        .iter()
        .flat_map(|l| {
            let mut per: HashMap<u64, u8> = HashMap::new();
            for e in &l.entries {
                *per.entry(e.transfer).or_default() += 1;
            }
            per.into_iter().filter(|(_, n)| *n >= 2).map(|(t, _)| t)
        })
        .collect();
    let mut ms: Vec<f64> = sides
        .iter()
        .filter(|(t, _)| !local.contains(t))
        .filter_map(|(_, s)| match s {
            (Some(d), Some(c), false) => Some((c - d) as f64 / 1000.0),
            _ => None,
        })
        .collect();
    if ms.is_empty() {
        return (None, None, 0);
    }
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (Some(pick(0.5)), Some(pick(0.99)), ms.len())
}

/// Raw pgbench TPS on the run's PostgreSQL container: 8 clients for 10 s on a scale-1
/// database of its own.
async fn pgbench(cluster: &Cluster) -> Result<f64> {
    let c = cluster.node("postgres")?.container;
    let user = crate::service::SQL_USER;
    crate::docker::run_command(
        "docker",
        &[
            "exec",
            &c,
            "psql",
            "-U",
            user,
            "-d",
            user,
            "-qc",
            "CREATE DATABASE pgbench",
        ],
    )
    .await?;
    crate::docker::run_command(
        "docker",
        &[
            "exec", &c, "pgbench", "-U", user, "-i", "-q", "-s", "1", "pgbench",
        ],
    )
    .await?;
    let out = crate::docker::run_command(
        "docker",
        &[
            "exec", &c, "pgbench", "-U", user, "-c", "8", "-j", "2", "-T", "10", "pgbench",
        ],
    )
    .await?;
    out.lines()
        .find_map(|l| {
            let l = l.trim();
            l.strip_prefix("tps = ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .with_context(|| format!("no tps line in pgbench output:\n{out}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nemesis_names() {
        assert_eq!(
            parse_nemesis("kill,partition").unwrap(),
            vec![FaultKind::Kill, FaultKind::Isolate]
        );
        assert!(parse_nemesis("none").unwrap().is_empty());
        assert!(parse_nemesis("flood").is_err());
        assert_eq!(timestamp().len(), 16);
    }
}
