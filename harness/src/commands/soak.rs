//! `chaosbank soak`: many seeds of one or more systems back to back, one summary table.
//!
//! Exit status: 0 when every run was valid, 1 when any was invalid, unknown or failed
//! (or the soak was interrupted with Ctrl-C), 2 for bad flags. A shard (`--shard K/N`)
//! exits 0 when it ran every run it was given to a verdict, whatever the verdicts (they
//! are in its `soak.json` for `chaosbank merge`), so retrying a shard repeats
//! infrastructure failures, not findings.

use crate::commands::block_on;
use crate::commands::shrink::parse_budget;
use chaosbank::run::{self, RunConfig};
use chaosbank::shrink::{Budget, Plan, Settings};
use chaosbank::soak::{self, Shard, SoakFile};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Flags of `chaosbank soak`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  chaosbank soak --systems outbox,txmsg --seeds 1..20 --time-limit 10m
  chaosbank soak --systems dual-write --seeds 1,5,9 --nemesis kill --time-limit 30s
  chaosbank soak --seeds 1..10 --time-limit 2m --junit soak.xml   # for CI
  chaosbank soak --systems dual-write --seeds 1..100 --shard 3/8 --out store  # one CI runner's part
  chaosbank soak --systems dual-write --seeds 1..5 --shrink --shrink-budget 15m  # and shrink each conviction

Each run is stored as `chaosbank run` stores it; failing runs keep everything, passing
runs keep only run.json and verdict.json (everything with --keep-passing). With
--shrink, every convicted run is then shrunk in turn (as `chaosbank shrink RUN --budget B --tries T --confirm C` does) and its
minimal schedule named in the table and soak.json. Ctrl-C stops after the current run and
prints the table so far (a second Ctrl-C aborts the current run); during the shrinks it
ends the current one after its current run, keeping its best schedule so far, and starts
no other. Every soak records itself
and every run (errored ones too) in <out>/soak-<timestamp>/soak.json, which
`chaosbank merge` reads. Exit status: 0 all valid, 1 any failed or the soak was stopped
early, 2 bad flags; with --shard: 0 when every run given ran to a verdict (valid, invalid
or unknown), 1 when one errored, was not run, or soak.json could not be written.")]
pub struct SoakArgs {
    /// Systems to run, comma-separated: dual-write, kafka-tx, outbox, outbox-eos, txmsg.
    #[arg(long, default_value = "outbox,txmsg")]
    pub systems: String,
    /// Seeds: `7`, `1,5,9`, `1..20` (inclusive), or a mix such as `1..5,9`.
    #[arg(long, default_value = "1..5")]
    pub seeds: String,
    /// Run only shard K of N (`3/8`, K from 1) of the (system, seed) list: run i (from 0)
    /// belongs to shard i mod N + 1. From a 0-based index I (JOB_COMPLETION_INDEX) pass
    /// $((I+1))/N.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// The runs' settings (shared with run and bench).
    #[command(flatten)]
    pub settings: RunConfig,
    /// Also write JUnit XML to FILE: one testcase per run.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<std::path::PathBuf>,
    /// Keep every passing run's whole store (history, report, container logs), not only
    /// its run.json and verdict.json: to read what a cleared run went through.
    #[arg(long)]
    pub keep_passing: bool,
    /// After the runs, shrink every convicted run as `chaosbank shrink` does (its minimal
    /// schedule to RUN/shrink/minimal-schedule.toml, named in the table and soak.json).
    #[arg(long)]
    pub shrink: bool,
    /// Each convicted run's shrink budget: a time (`20m`, `90s`) or a number of runs (`20`).
    #[arg(long, default_value = "20m", value_parser = parse_budget, requires = "shrink")]
    pub shrink_budget: Budget,
    /// Runs per shrink candidate; it counts when a majority convict.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=99),
          requires = "shrink")]
    pub shrink_tries: u64,
    /// Runs of each minimal schedule afterwards, for its reproduction rate (0: none; on
    /// top of the budget).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=1000),
          requires = "shrink")]
    pub shrink_confirm: u64,
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
            args.shard.as_deref().map(Shard::parse).transpose()?,
        ))
    })();
    let (systems, seeds, base, shard) = match parsed {
        // A service is one system: --systems does not apply.
        Ok((_, seeds, base, shard)) if base.service.is_some() => {
            (vec![run::SystemKind::Outbox], seeds, base, shard)
        }
        Ok(p) => p,
        Err(e) => {
            eprintln!("chaosbank soak: {e:#}");
            return ExitCode::from(2);
        }
    };
    // A manifest that cannot be used is reported before anything starts.
    let subject = match chaosbank::sut::subject_name(&base) {
        Ok(name) => name,
        Err(e) => {
            eprintln!("chaosbank soak: {e}");
            return ExitCode::from(2);
        }
    };
    let names: Vec<String> = if base.service.is_some() {
        vec![subject]
    } else {
        systems.iter().map(|s| s.name().to_string()).collect()
    };
    let mut record = SoakFile::new(
        &base,
        names.clone(),
        seeds.clone(),
        shard.unwrap_or(Shard::WHOLE),
    );
    let runs = shard
        .unwrap_or(Shard::WHOLE)
        .pick(&soak::plan(&systems, &seeds));
    let total = runs.len();
    let dir = base.out.join(match shard {
        Some(s) => format!("soak-{}-shard-{}-of-{}", run::timestamp(), s.k, s.n),
        None => format!("soak-{}", run::timestamp()),
    });
    let path = dir.join(soak::SOAK_JSON);
    if let Err(e) = std::fs::create_dir_all(&dir)
        .map_err(anyhow::Error::from)
        .and_then(|()| record.write(&path))
    {
        eprintln!("chaosbank soak: cannot write {}: {e:#}", path.display());
        return ExitCode::from(2);
    }
    if let Some(s) = shard {
        println!(
            "shard {s}: {total} of the {} runs",
            systems.len() * seeds.len()
        );
    }
    println!(
        "soak: {total} runs ({} × {} seeds), {:?} each, nemesis {}",
        names.join(","),
        seeds.len(),
        base.time_limit,
        base.nemesis()
    );
    let junit = args.junit.clone();
    let shrink_plan = args.shrink.then(|| Plan {
        settings: Settings {
            tries: args.shrink_tries as usize,
            budget: args.shrink_budget,
            ..Settings::default()
        },
        confirm: args.shrink_confirm as usize,
    });
    block_on(async move {
        let stop = Arc::new(AtomicBool::new(false));
        let mut done = 0;
        let mut unwritten = false;
        let rows = {
            let soaking = soak::soak_runs(
                &base,
                &runs,
                if args.keep_passing {
                    soak::Passing::Keep
                } else {
                    soak::Passing::Lighten
                },
                |row| {
                    done += 1;
                    record.rows.push(row.clone());
                    if let Err(e) = record.write(&path) {
                        eprintln!("chaosbank soak: {e:#}");
                        unwritten = true;
                    }
                    let first = match (&row.outcome.first_violation, row.outcome.first_violation_s)
                    {
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
            loop {
                tokio::select! {
                    rows = &mut soaking => break Some(rows),
                    _ = tokio::signal::ctrl_c(), if !stop.load(Ordering::Relaxed) => {
                        eprintln!("Ctrl-C: stopping after the current run (again to abort it)");
                        stop.store(true, Ordering::Relaxed);
                    }
                    _ = tokio::signal::ctrl_c(), if stop.load(Ordering::Relaxed) => break None,
                }
            }
        };
        let Some(mut rows) = rows else {
            record.finish(true);
            let _ = record.write(&path);
            eprintln!("soak aborted");
            return Ok(ExitCode::from(1));
        };
        if let Some(plan) = shrink_plan {
            let convicted = rows.iter().filter(|r| soak::to_shrink(r)).count();
            if stop.load(Ordering::Relaxed) {
                if convicted > 0 {
                    println!("not shrinking the {convicted} convicted runs: the soak was stopped");
                }
            } else if convicted > 0 {
                println!(
                    "shrinking {convicted} convicted run{}: {} tries a candidate, budget {} each, \
                     {} confirmation runs",
                    if convicted == 1 { "" } else { "s" },
                    plan.settings.tries,
                    plan.settings.budget,
                    plan.confirm
                );
                let mut shrunk = 0;
                let shrinking = soak::shrink_convicted(
                    &mut rows,
                    plan,
                    stop.clone(),
                    |i, row| {
                        shrunk += 1;
                        if let Some(r) = record
                            .rows
                            .iter_mut()
                            .find(|r| r.name == row.name && r.seed == row.seed)
                        {
                            r.shrink = row.shrink.clone();
                        }
                        if let Err(e) = record.write(&path) {
                            eprintln!("chaosbank soak: {e:#}");
                            unwritten = true;
                        }
                        println!(
                            "[shrink {shrunk}/{convicted}] {} seed {} (row {}): {}",
                            row.name,
                            row.seed,
                            i + 1,
                            row.shrink
                                .as_ref()
                                .map(ToString::to_string)
                                .unwrap_or_default()
                        );
                    },
                    |line| {
                        for l in line.lines() {
                            if l.is_empty() {
                                println!();
                            } else {
                                println!("  {l}");
                            }
                        }
                    },
                );
                tokio::pin!(shrinking);
                // As for the runs: the first Ctrl-C ends the shrink under way after its
                // current run (its best schedule so far is kept), a second aborts it.
                let finished = loop {
                    tokio::select! {
                        _ = &mut shrinking => break true,
                        _ = tokio::signal::ctrl_c(), if !stop.load(Ordering::Relaxed) => {
                            eprintln!("Ctrl-C: ending the shrink after its current run (again to abort it)");
                            stop.store(true, Ordering::Relaxed);
                        }
                        _ = tokio::signal::ctrl_c(), if stop.load(Ordering::Relaxed) => break false,
                    }
                };
                if !finished {
                    eprintln!("shrinking aborted");
                }
            }
        }
        record.finish(rows.len() < total);
        if let Err(e) = record.write(&path) {
            eprintln!("chaosbank soak: {e:#}");
            unwritten = true;
        }
        print!("{}", soak::table(&rows));
        println!("soak.json: {}", path.display());
        let mut failed = rows.iter().any(|r| !r.passed()) || rows.len() < total;
        let mut junit_failed = false;
        if let Some(path) = &junit {
            if let Err(e) = std::fs::write(path, soak::junit(&rows)) {
                eprintln!("chaosbank soak: writing {}: {e}", path.display());
                failed = true;
                junit_failed = true;
            }
        }
        if shard.is_some() {
            // A shard's verdicts are in its soak.json; it fails only when it did not run
            // everything it was given to a verdict.
            failed = unwritten
                || junit_failed
                || rows.len() < total
                || rows.iter().any(|r| r.outcome.valid == "error");
        }
        Ok(ExitCode::from(u8::from(failed)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        soak: SoakArgs,
    }

    fn parse(args: &[&str]) -> Result<SoakArgs, String> {
        try_parse(args)
    }

    /// The error, when it is one.
    fn error(args: &[&str]) -> String {
        try_parse(args)
            .err()
            .unwrap_or_else(|| panic!("{args:?} parsed"))
    }

    fn try_parse(args: &[&str]) -> Result<SoakArgs, String> {
        Cli::try_parse_from(std::iter::once("soak").chain(args.iter().copied()))
            .map(|c| c.soak)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn shrink_flags_default_bound_and_need_shrink() {
        let a = parse(&[]).unwrap();
        assert!(!a.shrink);
        let a = parse(&["--shrink"]).unwrap();
        assert!(a.shrink);
        assert_eq!(a.shrink_budget.time, Some(Duration::from_secs(20 * 60)));
        assert_eq!((a.shrink_tries, a.shrink_confirm), (3, 3));
        let a = parse(&["--shrink", "--shrink-budget", "12", "--shrink-confirm", "0"]).unwrap();
        assert_eq!(a.shrink_budget.runs, Some(12));
        assert_eq!(a.shrink_confirm, 0);
        let e = error(&["--shrink-budget", "5m"]);
        assert!(e.contains("--shrink"), "{e}");
        let e = error(&["--shrink", "--shrink-budget", "0"]);
        assert!(e.contains("out of range"), "{e}");
        let e = error(&["--shrink", "--shrink-budget", "soon"]);
        assert!(e.contains("neither a number of runs"), "{e}");
        assert!(parse(&["--shrink", "--shrink-tries", "0"]).is_err());
        assert!(parse(&["--shrink", "--shrink-confirm", "1001"]).is_err());
    }
}
