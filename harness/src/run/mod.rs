//! One run, end to end: cluster up → scheme set up → seeded workload and fault schedule
//! for the time limit → heal everything → wait (bounded) until the scheme has drained →
//! final ledgers and dead letters into the history → check → verdict and figures.
//!
//! The history goes to `<out>/<system>/<UTC timestamp>-<seed>/history.jsonl` as the run
//! goes, with `verdict.json` and `report.html` next to it and `<out>/latest` pointing
//! at it. The cluster is removed whatever happens (its
//! drop, the watchdog, or the next run's reaper).

pub mod clients;
pub mod conviction;
pub mod generator;
pub mod outcome;
pub mod progress;
pub mod recorder;
pub mod store;

use anyhow::{bail, Context, Result};
use checkers::history::OpType;
use checkers::verdict::Verdict;

use std::collections::HashMap;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use workloads::system::{self, Backlog, Endpoints, FinalState, Options, System};

pub use crate::config::{
    default_rate, parse_nemesis, seed_from_time, RunConfig, SystemKind, DEFAULT_POISON_RATE,
    SERVICE_BALANCE, TARGETS,
};
pub use crate::outcome::{Figures, RunReport};

use crate::cluster::Cluster;
use crate::generator::{Generator, WorkloadConfig};
use crate::recorder::Recorder;
use crate::schedule::{FaultKind, Played, Schedule, ScheduleConfig};

/// `YYYYmmddTHHMMSSZ` for now (UTC).
pub fn timestamp() -> String {
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
    run_until(cfg, std::future::pending()).await
}

/// [`run`], stopped early when `stop` completes (e.g. `tokio::signal::ctrl_c()`): the
/// workload and faults are dropped, the cluster healed by its removal, and the run store
/// finalised all the same — container logs saved, the history so far checked into
/// `verdict.json` as **unknown** ("interrupted"), `run.json` completed with the error —
/// before the error is returned.
pub async fn run_until(
    cfg: &RunConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<RunReport> {
    let mut stop = std::pin::pin!(stop);
    if cfg.concurrency == 0 {
        bail!("concurrency must be at least 1");
    }
    if cfg.service.is_none()
        && cfg.system == SystemKind::KafkaTx
        && cfg.engines.kafka == crate::service::KafkaImpl::Tansu
    {
        bail!(
            "kafka-tx needs Kafka transactions, which tansu 0.6 does not have: use --kafka apache"
        );
    }
    // A service's manifest is checked before anything starts.
    let manifest = match &cfg.service {
        Some(path) => Some(crate::sut::Manifest::load(path)?),
        None => None,
    };
    let name = manifest
        .as_ref()
        .map_or_else(|| cfg.system.name().to_string(), |m| m.name.clone());
    let dir = cfg
        .out
        .join(&name)
        .join(format!("{}-{}", timestamp(), cfg.seed));
    // Before anything starts: a run in node containers needs a node binary.
    if manifest.is_some() && cfg.in_process {
        bail!("a service's processes run in containers: --in-process is for the reference schemes");
    }
    let cdc = manifest.is_none() && cfg.system.uses_connect();
    if cdc && cfg.in_process {
        bail!("outbox-cdc runs its Kafka Connect worker in a node container: drop --in-process");
    }
    let binary = if cfg.in_process {
        None
    } else {
        Some(crate::deploy::node_binary(cfg.node_binary.as_deref())?)
    };
    let mut builder = Cluster::builder()
        .engines(cfg.engines)
        .clock_faults(cfg.faults.contains(&FaultKind::Clock))
        .logical_wal(cdc)
        .postgres()
        .mariadb();
    let uses_kafka = match &manifest {
        Some(m) => m.broker == crate::sut::Broker::Kafka,
        None => cfg.system.uses_kafka(),
    };
    builder = if uses_kafka {
        builder.kafka()
    } else {
        builder.rocketmq()
    };
    let mut store = crate::store::RunStore::create(&dir, cfg)?;
    let started = tokio::select! {
        c = builder.start() => c.context("starting the cluster"),
        () = &mut stop => Err(anyhow::anyhow!("interrupted while starting the cluster")),
    };
    let cluster = store.cluster_up(started).await?;
    let began = Instant::now();
    let result = tokio::select! {
        r = run_on(cfg, manifest.as_ref(), &cluster, dir.clone(), binary.as_deref()) => r,
        () = &mut stop => {
            let why = format!(
                "interrupted {:.1} s into the run, before it finished",
                began.elapsed().as_secs_f64()
            );
            tracing::warn!("{why}: saving what was recorded");
            partial_verdict(&dir, &why);
            Err(anyhow::anyhow!("{why}; the history so far is in {}", dir.display()))
        }
    };
    store.finish(&cluster, &result).await;
    if let Err(e) = cluster.down().await {
        tracing::warn!("removing the cluster: {e}");
    }
    result
}

/// Checks the history recorded so far by an interrupted run into `verdict.json`, at best
/// unknown: a run cut short cannot vouch for anything.
fn partial_verdict(dir: &std::path::Path, why: &str) {
    let history = dir.join("history.jsonl");
    let Ok(file) = std::fs::File::open(&history) else {
        return;
    };
    let mut verdict = match checkers::check_reader(BufReader::new(file), None) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("checking the partial history: {e}");
            return;
        }
    };
    if verdict.valid == checkers::Validity::Valid {
        verdict.valid = checkers::Validity::Unknown;
    }
    verdict
        .warnings
        .push(format!("{why}: no final ledgers were read"));
    let out = serde_json::json!({ "verdict": verdict, "interrupted": why });
    if let Ok(body) = serde_json::to_vec_pretty(&out) {
        let _ = std::fs::write(dir.join("verdict.json"), body);
    }
}

async fn run_on(
    cfg: &RunConfig,
    manifest: Option<&crate::sut::Manifest>,
    cluster: &Cluster,
    dir: PathBuf,
    binary: Option<&std::path::Path>,
) -> Result<RunReport> {
    let endpoints = Endpoints {
        bank_a: cluster.endpoint("postgres")?.url(),
        bank_b: cluster.endpoint("mariadb")?.url(),
        kafka: cluster.endpoint("kafka").ok().map(|e| e.url()),
        rocketmq: cluster.endpoint("namesrv").ok().map(|e| e.url()),
        connect: None,
    };
    // outbox-cdc's Kafka Connect worker, before the scheme that registers its connector.
    let endpoints = match binary {
        Some(binary) if manifest.is_none() && cfg.system.uses_connect() => Endpoints {
            connect: Some(crate::engines::connect::start(cluster, binary).await?),
            ..endpoints
        },
        _ => endpoints,
    };
    let options = Options {
        slot_mismatch: cfg.slot_mismatch,
        dedup: cfg.dedup,
        read_uncommitted: cfg.read_uncommitted,
        max_attempts: cfg.max_attempts.max(1),
        connections: (cfg.concurrency as u32) + 4,
        ..Options::default()
    };
    let workload = WorkloadConfig {
        accounts_per_bank: cfg.accounts.max(1),
        poison_rate: cfg.poison_rate,
        // The contract's transfers all go from bank A to bank B.
        a_to_b_only: manifest.is_some(),
        ..WorkloadConfig::new(cfg.seed)
    };
    // One-way transfers would run bank A dry within seconds at the schemes' balances.
    let workload = if workload.a_to_b_only {
        WorkloadConfig {
            initial_balance: SERVICE_BALANCE,
            ..workload
        }
    } else {
        workload
    };
    let balances = workload.initial_balances();
    let (sys, name) = match manifest {
        Some(m) => {
            let binary = binary.context("a service runs in node containers")?;
            let sys = crate::sut::deploy(cluster, m, binary, &endpoints, &options, &balances)
                .await
                .context("deploying the service")?;
            (sys, m.name.clone())
        }
        None => {
            let local = system::build(cfg.system, &endpoints, &options)?;
            let sys =
                crate::deploy::deploy(cluster, local, cfg.system, &options, &balances, binary)
                    .await?;
            (sys, cfg.system.name().to_string())
        }
    };
    // A service's processes join the default targets; targets given are kept as given.
    let mut targets = cfg.targets.clone();
    if targets.iter().map(String::as_str).eq(TARGETS) {
        for p in manifest.iter().flat_map(|m| &m.processes) {
            if !targets.contains(&p.name) {
                targets.push(p.name.clone());
            }
        }
    }
    let result = drive(cfg, &name, &targets, cluster, sys.clone(), workload, dir).await;
    sys.teardown().await;
    result
}

async fn drive(
    cfg: &RunConfig,
    name: &str,
    targets: &[String],
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

    let targets: Vec<&String> = targets
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
        cover: cfg.cover_targets,
        overlap: cfg.overlap,
        clock_targets: targets
            .iter()
            .filter(|t| cluster.node(t).is_ok_and(|n| n.kind.is_app()))
            .map(|t| t.to_string())
            .collect(),
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

    let clients = crate::clients::Clients {
        concurrency: cfg.concurrency,
        seed: cfg.seed,
        rate: cfg.rate,
        deadline: start + cfg.time_limit,
        budget: None,
    };
    let counts = clients
        .run(
            sys.clone(),
            Arc::new(Generator::new(workload)),
            recorder.clone(),
        )
        .await?;
    let workload_time = start.elapsed();

    // Heal everything, whatever the schedule managed to do.
    let played = match nemesis_task.await {
        Ok(Ok(played)) => played,
        Ok(Err(e)) => {
            tracing::warn!("fault schedule: {e}");
            Played {
                failed: vec![format!("the fault schedule stopped: {e}")],
                ..Played::default()
            }
        }
        Err(e) => {
            tracing::warn!("fault schedule task: {e}");
            Played {
                failed: vec![format!("the fault schedule task failed: {e}")],
                ..Played::default()
            }
        }
    };
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
    let mut backlog: Option<Backlog> = None;
    // A system seen only through its ledgers has settled once they stop changing.
    let mut unchanged_since = Instant::now();
    let mut settled = None;
    let drained = loop {
        match sys.backlog().await {
            Ok(b) if b.is_empty() => {
                backlog = Some(b);
                break true;
            }
            Ok(b) => {
                if backlog.as_ref() != Some(&b) {
                    unchanged_since = Instant::now();
                }
                backlog = Some(b);
                if let Some(quiet) = sys.settle_after() {
                    if unchanged_since.elapsed() >= quiet {
                        settled = Some(quiet);
                        break true;
                    }
                }
            }
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
        match (drained, settled) {
            (true, Some(_)) => "settled (the ledgers stopped changing)",
            (true, None) => "done",
            (false, _) => "gave up",
        },
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
        &{
            let mut v = serde_json::json!({
                "drained": drained,
                "waited_s": drain_wait.as_secs_f64(),
                "backlog": backlog,
            });
            if let Some(quiet) = settled {
                // Drained by the settle rule: what is uncredited now counts as lost.
                v["settled_after_s"] = quiet.as_secs_f64().into();
            }
            v
        },
        None,
    )?;
    sys.stop().await;
    crate::deploy::stop_nodes(cluster).await;

    let state = final_state(sys.as_ref()).await?;
    for ledger in &state.ledgers {
        // Split big ledgers over several lines (the contract allows it).
        // Each line carries the bank's entry count and the last says `complete`, so a
        // ledger cut short reads as "cannot judge", not as lost transfers.
        // A service's rows with ids chaosbank never sent are kept as written.
        let mut entries: Vec<serde_json::Value> = ledger
            .entries
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()?;
        for (bank, f) in &state.foreign {
            if *bank == ledger.bank {
                entries.push(serde_json::to_value(f)?);
            }
        }
        let chunks: Vec<_> = entries.chunks(5000).collect();
        if chunks.is_empty() {
            let mut v = serde_json::to_value(ledger)?;
            v["complete"] = true.into();
            v["entry_count"] = 0.into();
            recorder.named("final", OpType::Ok, "final-ledger", &v, None)?;
        }
        for (i, chunk) in chunks.iter().enumerate() {
            let mut v = serde_json::json!({
                "bank": ledger.bank,
                "entries": chunk,
                "entry_count": entries.len(),
                "complete": i + 1 == chunks.len(),
            });
            if i == 0 {
                v["balances"] = serde_json::to_value(&ledger.balances)?;
            }
            recorder.named("final", OpType::Ok, "final-ledger", &v, None)?;
        }
    }
    for letter in &state.dead_letters {
        recorder.named("final", OpType::Ok, "dead-letter", letter, None)?;
    }
    // The Kafka topics as they ended, for the checker's topic model (lost writes,
    // duplicates, aborted reads). A log that cannot be read whole is left out, with a
    // warning: a partial log would be judged as if it were the whole.
    match sys.topic_logs().await {
        Ok(logs) => {
            for log in &logs {
                for v in topic_log_lines(log) {
                    recorder.named("final", OpType::Ok, "topic-log", &v, None)?;
                }
            }
        }
        Err(e) => tracing::warn!("the topic logs are not in the history: {e:#}"),
    }
    let history = recorder.path().to_path_buf();
    drop(recorder);

    let pgbench_tps = if cfg.pgbench {
        match crate::measure::pgbench(cluster).await {
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
    let mut verdict =
        checkers::check_reader(BufReader::new(file), None).context("checking the history")?;
    if !played.failed.is_empty() && !cfg.allow_fault_errors {
        // A run whose faults did not all happen did not test what it was asked to.
        if verdict.valid == checkers::Validity::Valid {
            verdict.valid = checkers::Validity::Unknown;
        }
        verdict.warnings.push(format!(
            "{} of {} faults could not be applied, so the run did not test what it was asked to \
             (allow_fault_errors / --allow-fault-errors judges it anyway): {}",
            played.failed.len(),
            schedule.steps.len(),
            played.failed.join("; ")
        ));
    }
    if let (Some(quiet), Some(b)) = (settled, &backlog) {
        verdict.warnings.push(format!(
            "the drain ended by the settle rule: after healing, {} debits stayed neither \
             credited nor parked while the ledgers did not change for {quiet:?}, so they are \
             judged lost (a service whose retries wait longer sets `settle` in its manifest)",
            b.uncredited
        ));
    }
    let broker_msgs_per_s = if cfg.broker_rate {
        match crate::measure::broker_rate(cluster).await {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!("broker rate: {e:#}");
                None
            }
        }
    } else {
        None
    };
    let first_violation = match crate::conviction::first_violation(&verdict, &history) {
        Ok(first) => first,
        Err(e) => {
            tracing::warn!("time to the first violation: {e:#}");
            None
        }
    };
    let (p50, p99, max, completed) = latencies(&state);
    let figures = Figures {
        transfers_ok: counts.ok,
        transfers_fail: counts.fail,
        transfers_info: counts.info,
        reads_ok: counts.reads_ok,
        throughput: counts.ok as f64 / workload_time.as_secs_f64().max(1e-9),
        cross_bank_completed: completed,
        latency_p50_ms: p50,
        latency_p99_ms: p99,
        latency_max_ms: max,
        pgbench_tps,
        broker_msgs_per_s,
        cluster_ready_s: Some(cluster.ready_in().as_secs_f64()),
    };
    let report = RunReport {
        system: cfg.system,
        name: name.to_string(),
        seed: cfg.seed,
        history: history.clone(),
        verdict,
        faults: played.applied,
        fault_kinds: played.kinds.clone(),
        faults_overlapping: played.overlapping,
        first_violation,
        faults_failed: played.failed.clone(),
        drained,
        drain_wait,
        settled,
        backlog,
        dead_letters: state.dead_letters.len(),
        figures,
    };
    let out = serde_json::json!({
        "system": name,
        "seed": cfg.seed,
        "verdict": report.verdict,
        "drained": drained,
        "drain_wait_s": drain_wait.as_secs_f64(),
        "figures": report.figures,
    });
    std::fs::write(dir.join("verdict.json"), serde_json::to_vec_pretty(&out)?)
        .with_context(|| format!("writing {}", dir.join("verdict.json").display()))?;
    write_report(&dir, &history, &report.verdict, cfg, name);
    Ok(report)
}

/// Writes `report.html` beside the history and points `<out>/latest` at the run. Either
/// failing is logged, never fatal: the history and verdict are already on disk.
fn write_report(
    dir: &std::path::Path,
    history: &std::path::Path,
    verdict: &Verdict,
    cfg: &RunConfig,
    name: &str,
) {
    let options = crate::report::ReportOptions {
        title: format!("{name} seed {}", cfg.seed),
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

/// The `topic-log` op values of one log (checkers/README.md, "Extensions"): records
/// `[offset, key]`, or `[offset, key, source partition, source offset]`, split over lines
/// of at most 5000, the last marked `complete`.
fn topic_log_lines(log: &workloads::system::TopicLog) -> Vec<serde_json::Value> {
    let records: Vec<serde_json::Value> = log
        .records
        .iter()
        .map(|r| match r.source {
            Some((p, o)) => serde_json::json!([r.offset, r.key, p, o]),
            None => serde_json::json!([r.offset, r.key]),
        })
        .collect();
    let mut chunks: Vec<&[serde_json::Value]> = records.chunks(5000).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut v = serde_json::json!({
                "topic": log.spec.topic,
                "partition": log.partition,
                "isolation": log.isolation.name(),
                "delivery": log.spec.delivery.name(),
                "records": chunk,
                "complete": i == last,
                "end_offset": log.end_offset,
            });
            if let Some(source) = &log.spec.source {
                v["source"] = source.clone().into();
            }
            if let Some(bank) = log.spec.feeds {
                v["feeds"] = bank.name().into();
            }
            v
        })
        .collect()
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

/// Debit→credit latency of cross-bank transfers applied once on each side: (p50, p99,
/// max) in milliseconds, and how many there were.
fn latencies(state: &FinalState) -> (Option<f64>, Option<f64>, Option<f64>, usize) {
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
    let pairs: Vec<(i64, i64)> = sides
        .iter()
        .filter(|(t, _)| !local.contains(t))
        .filter_map(|(_, s)| match s {
            (Some(d), Some(c), false) => Some((*d, *c)),
            _ => None,
        })
        .collect();
    // A service's ledger rows carry no commit time (the contract's table has none).
    let mut ms: Vec<f64> = pairs
        .iter()
        .filter(|(d, c)| *d > 0 && *c > 0)
        .map(|(d, c)| (c - d) as f64 / 1000.0)
        .collect();
    if ms.is_empty() {
        return (None, None, None, pairs.len());
    }
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (
        Some(pick(0.5)),
        Some(pick(0.99)),
        ms.last().copied(),
        pairs.len(),
    )
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

    #[test]
    fn a_topic_log_is_split_into_lines_the_last_complete() {
        use workloads::system::{Delivery, TopicLog, TopicRecord, TopicSpec};
        let log = TopicLog {
            spec: TopicSpec {
                topic: "credits-b".into(),
                delivery: Delivery::ExactlyOnce,
                source: Some("transfers-b".into()),
                feeds: Some(workloads::bank::BankId::B),
                both_isolations: true,
            },
            partition: 0,
            isolation: workloads::clients::kafka::Isolation::ReadUncommitted,
            records: (0..12_001)
                .map(|i| TopicRecord {
                    offset: i,
                    key: format!("{}", i * 2),
                    source: (i % 2 == 0).then_some((0, i / 2)),
                })
                .collect(),
            end_offset: 12_005,
        };
        let lines = topic_log_lines(&log);
        assert_eq!(lines.len(), 3);
        let sizes: Vec<usize> = lines
            .iter()
            .map(|l| l["records"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, vec![5000, 5000, 2001]);
        let complete: Vec<bool> = lines.iter().map(|l| l["complete"] == true).collect();
        assert_eq!(complete, vec![false, false, true]);
        let first = &lines[0];
        assert_eq!(first["topic"], "credits-b");
        assert_eq!(first["isolation"], "read_uncommitted");
        assert_eq!(first["delivery"], "exactly-once");
        assert_eq!(first["source"], "transfers-b");
        assert_eq!(first["feeds"], "B");
        assert_eq!(first["end_offset"], 12_005);
        assert_eq!(first["records"][0], serde_json::json!([0, "0", 0, 0]));
        assert_eq!(first["records"][1], serde_json::json!([1, "2"]));
        // An empty log is one complete line with no records.
        let empty = TopicLog {
            records: Vec::new(),
            ..log
        };
        let lines = topic_log_lines(&empty);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["complete"], true);
        assert_eq!(lines[0]["records"], serde_json::json!([]));
    }
}
