//! `chaosbank soak`: many seeds of one or more systems back to back, one summary table.
//!
//! Exit status: 0 when every run was valid, 1 when any was invalid, unknown or failed
//! (or the soak was interrupted with Ctrl-C), 2 for bad flags.

use crate::commands::block_on;
use harness::run::{self, RunConfig};
use harness::soak;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
    /// Systems to run, comma-separated: dual-write, kafka-tx, outbox, outbox-eos, txmsg.
    #[arg(long, default_value = "outbox,txmsg")]
    pub systems: String,
    /// Seeds: `7`, `1,5,9`, `1..20` (inclusive), or a mix such as `1..5,9`.
    #[arg(long, default_value = "1..5")]
    pub seeds: String,
    /// The runs' settings (shared with run and bench).
    #[command(flatten)]
    pub settings: RunConfig,
    /// Also write JUnit XML to FILE: one testcase per run.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<std::path::PathBuf>,
}

/// Runs `chaosbank soak`.
pub fn run(args: SoakArgs) -> ExitCode {
    let parsed = (|| {
        anyhow::Ok((
            soak::parse_systems(&args.systems)?,
            soak::parse_seeds(&args.seeds)?,
            {
                args.settings.check()?;
                args.settings.clone()
            },
        ))
    })();
    let (systems, seeds, base) = match parsed {
        // A service is one system: --systems does not apply.
        Ok((_, seeds, base)) if base.service.is_some() => {
            (vec![run::SystemKind::Outbox], seeds, base)
        }
        Ok(p) => p,
        Err(e) => {
            eprintln!("chaosbank soak: {e:#}");
            return ExitCode::from(2);
        }
    };
    // A manifest that cannot be used is reported before anything starts.
    let subject = match harness::sut::subject_name(&base) {
        Ok(name) if base.service.is_some() => name,
        Ok(_) => systems
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(","),
        Err(e) => {
            eprintln!("chaosbank soak: {e}");
            return ExitCode::from(2);
        }
    };
    let total = systems.len() * seeds.len();
    println!(
        "soak: {total} runs ({subject} × {} seeds), {:?} each, nemesis {}",
        seeds.len(),
        base.time_limit,
        base.nemesis()
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
                let first = match (&row.outcome.first_violation, row.outcome.first_violation_s) {
                    (Some(anomaly), Some(t)) => {
                        format!(" (first violation: {anomaly} at {t:.1} s)")
                    }
                    _ => String::new(),
                };
                println!(
                    "[{done}/{total}] {} seed {}: {}{first}",
                    row.name,
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
