//! One run, end to end, in stages a reader can name:
//!
//! 1. **set up** ([`setup`]): the settings checked, a service's manifest loaded, the
//!    cluster started, the system under test deployed with the workload's balances;
//! 2. **play** ([`play`]): the seeded workload for the time limit, the nemesis playing
//!    the seeded fault schedule beside it;
//! 3. **heal** ([`play::heal`]): every fault healed, every node ready again;
//! 4. **drain** ([`drain`]): a bounded wait until the system has finished, ended by an
//!    empty backlog, the settle rule, or the drain timeout;
//! 5. **record the end** ([`end`]): final ledgers, dead letters and topic logs into the
//!    history;
//! 6. **judge** ([`judge`]): the checkers' verdict of the history, lowered to unknown
//!    where the run did not test what it was asked to — a pure function;
//! 7. **write** ([`write`]): `verdict.json`, the figures, `report.html`, `<out>/latest`.
//!
//! The history goes to `<out>/<system>/<UTC timestamp>-<seed>/history.jsonl` as the run
//! goes. A run stopped after it started (Ctrl-C, an engine failure) still checks the
//! history so far into `verdict.json`, at best unknown, naming why. The cluster is
//! removed whatever happens (its drop, the watchdog, or the next run's reaper).

pub mod clients;
pub mod drain;
pub mod end;
pub mod generator;
pub mod judge;
pub mod outcome;
pub mod play;
pub mod progress;
pub mod recorder;
pub mod setup;
pub mod store;
pub mod supervision;
pub mod write;

use anyhow::{Context, Result};
use checkers::history::OpType;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use workloads::system::System;

pub use crate::config::{
    default_rate, parse_nemesis, seed_from_time, RunConfig, SystemKind, DEFAULT_POISON_RATE,
    SERVICE_BALANCE, TARGETS,
};
pub use crate::outcome::{Figures, RunReport};

use crate::cluster::Cluster;
use crate::generator::WorkloadConfig;
use crate::recorder::Recorder;
use crate::run::judge::{DrainEnd, Facts};
use crate::run::play::Play;
use crate::run::setup::Plan;
use crate::schedule::Schedule;

pub use setup::timestamp;

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
    let plan = setup::preflight(cfg)?;
    let builder = setup::cluster(cfg, plan.manifest.as_ref());
    let mut store = crate::store::RunStore::create(&plan.dir, cfg)?;
    let started = tokio::select! {
        c = builder.start() => c.context("starting the cluster"),
        () = &mut stop => Err(anyhow::anyhow!("interrupted while starting the cluster")),
    };
    let cluster = store.cluster_up(started).await?;
    let began = Instant::now();
    let result = tokio::select! {
        r = run_on(cfg, &plan, &cluster) => r,
        () = &mut stop => {
            let why = format!(
                "interrupted {:.1} s into the run, before it finished",
                began.elapsed().as_secs_f64()
            );
            tracing::warn!("{why}: saving what was recorded");
            write::partial_verdict(&plan.dir, &why);
            Err(anyhow::anyhow!("{why}; the history so far is in {}", plan.dir.display()))
        }
    };
    store.finish(&cluster, &result).await;
    if let Err(e) = cluster.down().await {
        tracing::warn!("removing the cluster: {e}");
    }
    result
}

/// Deploys the system under test on the running cluster, drives the run, and tears the
/// system down.
async fn run_on(cfg: &RunConfig, plan: &Plan, cluster: &Cluster) -> Result<RunReport> {
    let workload = setup::workload(cfg);
    let sys = setup::deploy(cfg, plan, cluster, &workload).await?;
    let targets = setup::targets(cfg, plan.manifest.as_ref());
    let result = drive(cfg, plan, &targets, cluster, sys.clone(), workload).await;
    sys.teardown().await;
    result
}

/// Plays, heals, drains and records the end; a run that fails on the way still has the
/// history so far checked into `verdict.json` (at best unknown, naming why) before the
/// error is returned.
async fn drive(
    cfg: &RunConfig,
    plan: &Plan,
    targets: &[String],
    cluster: &Cluster,
    sys: Arc<dyn System>,
    workload: WorkloadConfig,
) -> Result<RunReport> {
    let start = Instant::now();
    let recorder = Arc::new(start_history(&plan.dir, &workload, start)?);
    let _progress = crate::progress::workload(cfg.time_limit, recorder.clone());
    let schedule = match &cfg.schedule {
        // A schedule given (`--schedule`) is played instead of the seeded draw.
        Some(given) => {
            crate::script::check_run(given, &cluster.nodes(), cfg.time_limit)
                .map_err(|e| anyhow::anyhow!("the given fault schedule: {e}"))?;
            given.clone()
        }
        None => Schedule::generate(&play::schedule_config(cfg, targets, cluster)?),
    };
    let nemesis = cluster.nemesis();
    let supervisor = supervision::watch(sys.clone(), recorder.clone());
    let ran = async {
        let played = play::play(
            cfg,
            sys.clone(),
            workload,
            &schedule,
            &nemesis,
            &recorder,
            start,
        )
        .await?;
        play::heal(cluster, &nemesis, &recorder).await?;
        let mut drain = drain::drain(sys.as_ref(), cfg.drain_timeout, &recorder).await?;
        // Read while the supervisor still runs: a task it would restart is not stuck.
        drain.connectors_failed = sys.failed_connectors().await;
        supervision::record(sys.as_ref(), &recorder)?;
        sys.stop().await;
        crate::deploy::stop_nodes(cluster).await;
        let state = end::record_end(sys.as_ref(), &recorder).await?;
        anyhow::Ok((played, drain, state))
    }
    .await;
    supervisor.stop().await;
    let history = recorder.path().to_path_buf();
    drop(recorder);
    match ran {
        Ok((played, drain, state)) => {
            let mut report = conclude(cfg, plan, cluster, &history, played, drain, &state).await?;
            report.schedule = Some(schedule);
            Ok(report)
        }
        Err(e) => {
            let why = format!(
                "the run failed {:.1} s in: {e:#}",
                start.elapsed().as_secs_f64()
            );
            tracing::warn!("{why}: checking what was recorded");
            let verdict = write::partial_verdict(&plan.dir, &why);
            let checked = verdict.map_or_else(
                || "no history to check".to_string(),
                |v| {
                    format!(
                        "the history so far is judged {} in verdict.json",
                        v.valid.as_str()
                    )
                },
            );
            Err(e.context(checked))
        }
    }
}

/// Creates the history and writes its first op, the accounts' opening balances.
fn start_history(dir: &Path, workload: &WorkloadConfig, start: Instant) -> Result<Recorder> {
    let recorder = Recorder::create(&dir.join("history.jsonl"), start)?;
    recorder.named(
        "setup",
        OpType::Ok,
        "init",
        &serde_json::json!({ "balances": workload.initial_balances() }),
        None,
    )?;
    Ok(recorder)
}

/// Checks the history, judges it, measures, and writes the verdict and the report.
async fn conclude(
    cfg: &RunConfig,
    plan: &Plan,
    cluster: &Cluster,
    history: &Path,
    played: Play,
    drain: DrainEnd,
    state: &workloads::system::FinalState,
) -> Result<RunReport> {
    let measured = write::measure(cfg, cluster).await;
    let facts = Facts {
        nemesis: cfg.faults.clone(),
        drawn: played.drawn,
        played: played.played.clone(),
        allow_fault_errors: cfg.allow_fault_errors,
        acknowledged: Some(played.counts.ok),
        drain: Some(drain.clone()),
        stopped: None,
        connectors_failed: drain.connectors_failed.clone(),
    };
    let verdict = judge::judge(write::check(history)?, &facts);
    let first_violation = crate::conviction::first_violation(&verdict, history)
        .map_err(|e| tracing::warn!("time to the first violation: {e:#}"))
        .ok()
        .flatten();
    let figures = write::figures(
        &played.counts,
        played.workload_time,
        state,
        measured,
        cluster.ready_in(),
    );
    write::write_verdict(&plan.dir, &plan.name, cfg.seed, &verdict, &drain, &figures)?;
    write::write_report(&plan.dir, history, &verdict, cfg, &plan.name);
    Ok(RunReport {
        system: cfg.system,
        name: plan.name.clone(),
        seed: cfg.seed,
        history: history.to_path_buf(),
        verdict,
        faults: played.played.applied,
        fault_kinds: played.played.kinds,
        faults_overlapping: played.played.overlapping,
        first_violation,
        faults_failed: played.played.failed,
        drained: drain.drained,
        drain_wait: drain.waited,
        settled: drain.settled,
        backlog: drain.backlog,
        dead_letters: state.dead_letters.len(),
        figures,
        schedule: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_compact_utc() {
        let t = timestamp();
        assert_eq!(t.len(), 16);
        assert!(t.ends_with('Z') && t.as_bytes()[8] == b'T', "{t}");
    }
}
