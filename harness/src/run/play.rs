//! Playing and healing: the seeded workload runs for the time limit while the nemesis
//! plays the seeded fault schedule beside it; then every fault is healed and every node
//! waited for.

use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workloads::system::System;

use crate::clients::{Clients, Counts};
use crate::cluster::Cluster;
use crate::config::RunConfig;
use crate::generator::{Generator, WorkloadConfig};
use crate::nemesis::Nemesis;
use crate::recorder::Recorder;
use crate::schedule::{Played, Schedule, ScheduleConfig};

/// What the workload and the nemesis did.
#[derive(Debug)]
pub struct Play {
    /// How the workload's ops ended.
    pub counts: Counts,
    /// How long the workload ran.
    pub workload_time: Duration,
    /// How many faults the schedule drew.
    pub drawn: usize,
    /// What the schedule did.
    pub played: Played,
}

/// The fault schedule's settings: the run's, on those of `targets` the cluster has (clock
/// faults only on its node containers). The one place a [`ScheduleConfig`] is made from
/// the run's settings.
pub fn schedule_config(
    cfg: &RunConfig,
    targets: &[String],
    cluster: &Cluster,
) -> Result<ScheduleConfig> {
    let targets: Vec<String> = targets
        .iter()
        .filter(|n| cluster.endpoint(n).is_ok())
        .cloned()
        .collect();
    // The scheme's or service's own processes: the nodes whose clocks move and whose
    // replies aimed faults wait for.
    let clock_targets: Vec<String> = targets
        .iter()
        .filter(|t| cluster.node(t).is_ok_and(|n| n.kind.is_app()))
        .cloned()
        .collect();
    Ok(ScheduleConfig {
        seed: cfg.seed,
        duration: cfg.time_limit,
        interval: cfg.quiet_time()?,
        hold: cfg.fault_hold,
        faults: cfg.faults.clone(),
        targets,
        cover: cfg.cover_targets,
        overlap: cfg.overlap,
        aim_targets: clock_targets.clone(),
        clock_targets,
        aimed: cfg.aimed && cfg.cover_targets,
    })
}

/// Runs the workload on `sys` from `start` for the time limit, with `schedule` played
/// on `nemesis` beside it; every op and every fault goes to `recorder`.
pub async fn play(
    cfg: &RunConfig,
    sys: Arc<dyn System>,
    workload: WorkloadConfig,
    schedule: &Schedule,
    nemesis: &Nemesis,
    recorder: &Arc<Recorder>,
    start: Instant,
) -> Result<Play> {
    tracing::info!("{schedule}");
    let faults = {
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
    let clients = Clients {
        concurrency: cfg.concurrency,
        seed: cfg.seed,
        rate: cfg.rate,
        deadline: start + cfg.time_limit,
        budget: None,
    };
    let counts = match clients
        .run(sys, Arc::new(Generator::new(workload)), recorder.clone())
        .await
    {
        Ok(counts) => counts,
        Err(e) => {
            // No fault is started after the workload failed.
            faults.abort();
            return Err(e.context("the workload"));
        }
    };
    let workload_time = start.elapsed();
    let played = match faults.await {
        Ok(Ok(played)) => played,
        Ok(Err(e)) => stopped(format!("the fault schedule stopped: {e}")),
        Err(e) => stopped(format!("the fault schedule task failed: {e}")),
    };
    Ok(Play {
        counts,
        workload_time,
        drawn: schedule.steps.len(),
        played,
    })
}

/// What a schedule that stopped for `why` counts as: every fault failed.
fn stopped(why: String) -> Played {
    tracing::warn!("{why}");
    Played {
        failed: vec![why],
        ..Played::default()
    }
}

/// Heals everything, whatever the schedule managed to do, records it, and waits until
/// every node is ready again.
pub async fn heal(cluster: &Cluster, nemesis: &Nemesis, recorder: &Recorder) -> Result<()> {
    let ev = nemesis.heal_all().await.context("healing the cluster")?;
    recorder.nemesis(&ev)?;
    for node in cluster.nodes() {
        cluster
            .wait_ready(&node)
            .await
            .with_context(|| format!("{node} after healing"))?;
    }
    Ok(())
}
