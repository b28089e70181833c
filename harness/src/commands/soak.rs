//! `chaosbank soak`: many seeds of one or more systems back to back, one summary table.
//!
//! Exit status: 0 when every run was valid, 1 when any was invalid, unknown or failed
//! (or the soak was interrupted with Ctrl-C), 2 for bad flags.

use crate::commands::block_on;
use crate::commands::run::parse_duration;
use harness::run::{self, RunConfig};
use harness::soak;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Flags of `chaosbank soak`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  chaosbank soak --systems outbox,txmsg --seeds 1..20 --time-limit 10m
  chaosbank soak --systems dual-write --seeds 1,5,9 --nemesis kill --time-limit 30s
  chaosbank soak --seeds 1..10 --time-limit 2m --junit soak.xml   # for CI

Each run is stored as `chaosbank run` stores it; failing runs keep everything, passing
runs keep only run.json and verdict.json. Ctrl-C stops after the current run and prints
the table so far (a second Ctrl-C aborts the current run). Exit status: 0 all valid, 1 any
failed or the soak was stopped early, 2 bad flags.")]
pub struct SoakArgs {
    /// Systems to run, comma-separated: dual-write, outbox, txmsg.
    #[arg(long, default_value = "outbox,txmsg")]
    pub systems: String,
    /// Seeds: `7`, `1,5,9`, `1..20` (inclusive), or a mix such as `1..5,9`.
    #[arg(long, default_value = "1..5")]
    pub seeds: String,
    /// Faults to draw from, comma-separated: kill, pause, partition, loss (also
    /// isolate, halves, cut), or none.
    #[arg(long, default_value = "kill,pause,partition,loss")]
    pub nemesis: String,
    /// How long each run's workload and faults last (e.g. 60s, 10m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub time_limit: Duration,
    /// Concurrent clients per run.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Turn the consumers' deduplication off.
    #[arg(long)]
    pub no_dedup: bool,
    /// The longest wait for a scheme to drain after healing.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// Mean quiet time between faults.
    #[arg(long, default_value = "8s", value_parser = parse_duration)]
    pub fault_interval: Duration,
    /// Mean time a fault holds.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub fault_hold: Duration,
    /// Nodes the faults may target, comma-separated (default: those of `chaosbank run`).
    #[arg(long)]
    pub targets: Option<String>,
    /// Where runs are stored.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// Also write JUnit XML to FILE: one testcase per run.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// Runs `chaosbank soak`.
pub fn run(args: SoakArgs) -> ExitCode {
    let parsed = (|| {
        anyhow::Ok((
            soak::parse_systems(&args.systems)?,
            soak::parse_seeds(&args.seeds)?,
            run::parse_nemesis(&args.nemesis)?,
        ))
    })();
    let (systems, seeds, faults) = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("chaosbank soak: {e:#}");
            return ExitCode::from(2);
        }
    };
    let base = RunConfig {
        faults,
        time_limit: args.time_limit,
        concurrency: args.concurrency,
        dedup: !args.no_dedup,
        drain_timeout: args.drain_timeout,
        fault_interval: args.fault_interval,
        fault_hold: args.fault_hold,
        targets: match &args.targets {
            Some(list) => list
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
            None => RunConfig::new(0).targets,
        },
        out: args.out,
        ..RunConfig::new(0)
    };
    let total = systems.len() * seeds.len();
    println!(
        "soak: {total} runs ({} × {} seeds), {:?} each, nemesis {}",
        systems
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(","),
        seeds.len(),
        base.time_limit,
        args.nemesis
    );
    let junit = args.junit.clone();
    block_on(async move {
        let stop = Arc::new(AtomicBool::new(false));
        let mut done = 0;
        let soaking = soak::soak(
            &base,
            &systems,
            &seeds,
            |row| {
                done += 1;
                println!(
                    "[{done}/{total}] {} seed {}: {}",
                    row.system,
                    row.seed,
                    row.outcome.valid.to_uppercase()
                );
            },
            {
                let stop = stop.clone();
                move || stop.load(Ordering::Relaxed)
            },
        );
        tokio::pin!(soaking);
        // The first Ctrl-C lets the current run finish; a second one cancels it (its
        // cluster is removed as the run is dropped).
        let rows = loop {
            tokio::select! {
                rows = &mut soaking => break Some(rows),
                _ = tokio::signal::ctrl_c(), if !stop.load(Ordering::Relaxed) => {
                    eprintln!("Ctrl-C: stopping after the current run (again to abort it)");
                    stop.store(true, Ordering::Relaxed);
                }
                _ = tokio::signal::ctrl_c(), if stop.load(Ordering::Relaxed) => break None,
            }
        };
        let Some(rows) = rows else {
            eprintln!("soak aborted");
            return Ok(ExitCode::from(1));
        };
        print!("{}", soak::table(&rows));
        let mut failed = rows.iter().any(|r| !r.passed()) || rows.len() < total;
        if let Some(path) = &junit {
            if let Err(e) = std::fs::write(path, soak::junit(&rows)) {
                eprintln!("chaosbank soak: writing {}: {e}", path.display());
                failed = true;
            }
        }
        Ok(ExitCode::from(u8::from(failed)))
    })
}
