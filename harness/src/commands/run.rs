//! `chaosbank run`: one scheme under a seeded workload and fault schedule, checked.
//!
//! Exit status as `chaosbank check`: 0 valid, 1 invalid, 2 unknown (or the run failed).
//! The last line on stdout is a one-line summary for CI logs; `--junit FILE` writes the
//! verdict (or the run's error) as JUnit XML.

use crate::commands::block_on;
use chaosbank::run::{self, RunConfig};
use checkers::render;
use std::path::PathBuf;
use std::process::ExitCode;
use workloads::system::SystemKind;

use chaosbank::config::parse_system;

/// Flags of `chaosbank run`; every one has a default that works out of the box.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  chaosbank run                                   # outbox, every fault, 60 s, seed from the clock
  chaosbank run --system dual-write --nemesis kill,partition --time-limit 30s --seed 7
  chaosbank run --system txmsg --nemesis none --concurrency 16 --pgbench
  chaosbank run --seed 7 --junit junit.xml        # for CI: JUnit XML, exit 0/1/2
  chaosbank run --service examples/services/python-outbox --nemesis kill,pause,partition
  chaosbank run --system dual-write --schedule faults.toml --time-limit 20s
  chaosbank run --system dual-write --schedule runs/latest/run.json   # a stored run's faults

The run is stored in <out>/<system>/<timestamp>-<seed>/: run.json (seed, config, image ids,
versions, outcome), history.jsonl, verdict.json, report.html, logs/<node>.log; <out>/latest
points at it. Replay it with `chaosbank replay runs/latest`.
Exit status: 0 valid, 1 invalid, 2 unknown (a run that tested nothing: no acknowledged
transfer, or a nemesis that applied no fault) or the run failed.")]
pub struct RunArgs {
    /// The scheme under test: dual-write and kafka-tx (the controls, wrong on purpose),
    /// outbox, txmsg.
    #[arg(long, default_value = "outbox", value_parser = parse_system)]
    pub system: SystemKind,
    /// Seed of the workload and the fault schedule (default: from the clock, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Play this fault schedule (TOML or JSON: steps of at, hold, fault; or a stored
    /// run's run.json) instead of drawing one from the seed; --nemesis, --fault-* and
    /// --overlap then do not apply. The seed still drives the workload.
    #[arg(long, value_name = "FILE")]
    pub schedule: Option<PathBuf>,
    /// The run's settings (shared with soak and bench).
    #[command(flatten)]
    pub settings: RunConfig,
    /// Also write JUnit XML to FILE: the verdict, or the run's error.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// Runs `chaosbank run`.
pub fn run(args: RunArgs) -> ExitCode {
    let junit = args.junit.clone();
    let seed = args.seed.unwrap_or_else(run::seed_from_time);
    let mut cfg = RunConfig {
        system: args.system,
        seed,
        ..args.settings
    };
    if let Err(e) = cfg.check() {
        eprintln!("chaosbank run: {e:#}");
        return ExitCode::from(2);
    }
    let mut processes = Vec::new();
    if let Some(path) = &cfg.service {
        // A manifest that cannot be used is reported before anything starts.
        match chaosbank::sut::Manifest::load(path).and_then(|m| m.check_files().map(|()| m)) {
            Ok(m) => processes = m.processes.iter().map(|p| p.name.clone()).collect(),
            Err(e) => {
                eprintln!("chaosbank run: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(file) = &args.schedule {
        // A schedule that cannot be played is refused before anything starts.
        match given_schedule(file, &cfg, &processes) {
            Ok(s) => {
                println!(
                    "fault schedule from {} ({} faults)",
                    file.display(),
                    s.steps.len()
                );
                cfg.schedule = Some(s);
            }
            Err(e) => {
                eprintln!("chaosbank run: {e}");
                return ExitCode::from(2);
            }
        }
    }
    // A manifest that cannot be used is reported before anything starts.
    let name = match chaosbank::sut::subject_name(&cfg) {
        Ok(name) => name,
        Err(e) => {
            eprintln!("chaosbank run: {e}");
            return ExitCode::from(2);
        }
    };
    println!("seed {seed}");
    block_on(async move {
        println!(
            "running {name} for {:?} with {} clients, {}",
            cfg.time_limit,
            cfg.concurrency,
            match &args.schedule {
                Some(file) => format!("faults from {}", file.display()),
                None => format!("nemesis {}", cfg.nemesis()),
            }
        );
        let suite = format!("chaosbank-run-{name}-seed{}", cfg.seed);
        // Ctrl-C stops the run and finalises its store; a second one aborts at once
        // (the watchdog still removes the containers).
        let interrupted = async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!(
                "interrupted: saving logs, run.json and a partial verdict (Ctrl-C again to abort)"
            );
            tokio::spawn(async {
                let _ = tokio::signal::ctrl_c().await;
                eprintln!("aborted");
                std::process::exit(130);
            });
        };
        let report = match run::run_until(&cfg, interrupted).await {
            Ok(r) => r,
            Err(e) => {
                if let Some(path) = &junit {
                    if let Err(je) =
                        chaosbank::report::junit::write_junit_error(&suite, &format!("{e:#}"), path)
                    {
                        eprintln!("chaosbank run: {je}");
                    }
                }
                eprintln!("error: {e:#}");
                println!(
                    "chaosbank {name} seed {}: ERROR — {}",
                    cfg.seed,
                    format!("{e:#}").lines().next().unwrap_or_default()
                );
                return Ok(ExitCode::from(2));
            }
        };
        print!("{}", render::summary(&report.verdict, 5));
        // Why the run is judged as it is beyond the history (the judge's reasons).
        for why in &report.verdict.warnings {
            println!("note: {why}");
        }
        println!("{}", report.summary());
        let mut code = report.verdict.valid.exit_code();
        if let Some(path) = &junit {
            if let Err(e) = chaosbank::report::junit::write_junit(&report.verdict, &suite, path) {
                eprintln!("chaosbank run: {e}");
                code = code.max(2);
            }
        }
        println!("{}", report.one_line());
        Ok(ExitCode::from(code))
    })
}

/// Reads a schedule file and checks it against the nodes a run of `cfg` can have (the
/// engines, the schemes' nodes, a service's `processes`) and its time limit; the run
/// checks it again against the nodes it did start.
pub fn given_schedule(
    file: &std::path::Path,
    cfg: &RunConfig,
    processes: &[String],
) -> anyhow::Result<chaosbank::Schedule> {
    let schedule = chaosbank::script::load(file)?;
    let mut known: Vec<String> = run::TARGETS.iter().map(|t| t.to_string()).collect();
    known.push("namesrv".to_string());
    known.extend(processes.iter().cloned());
    chaosbank::script::check_run(&schedule, &known, cfg.time_limit)
        .map_err(|e| anyhow::anyhow!("schedule file {}: {e}", file.display()))?;
    Ok(schedule)
}
