//! `chaosbank bench`: each system once with no faults, its throughput and latency beside
//! its engines' raw figures from the same run, as ratios; JSON with `--json`.

use crate::commands::block_on;
use chaosbank::bench;
use chaosbank::run::{self, RunConfig, SystemKind};
use std::process::ExitCode;

/// Flags of `chaosbank bench`: the run settings, with a bench's defaults (30 s, 16
/// clients, no faults, no poison, no offered-load limit).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:
  cargo run --release -p chaosbank-harness -- bench
  chaosbank bench --systems outbox --time-limit 60s --json
  chaosbank bench --systems none --service examples/services/python-outbox

Writes <out>/bench-<timestamp>/bench.json and bench.html; each run is stored as `run` stores it.
Exit 0 when every run was valid, 1 otherwise, 2 for bad flags or a run that failed.",
    mut_arg("time_limit", |a| a.default_value("30s")),
    mut_arg("concurrency", |a| a.default_value("16")),
    mut_arg("nemesis", |a| a.default_value("none")),
    mut_arg("poison_rate", |a| a.default_value("0")),
    mut_arg("rate", |a| a.default_value("0").hide_default_value(false))
)]
pub struct BenchArgs {
    /// The reference schemes to measure, comma-separated (dual-write, kafka-tx, outbox,
    /// outbox-eos, txmsg), or none. With --service, the service is measured too.
    #[arg(long, default_value = "outbox,txmsg,dual-write")]
    pub systems: String,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the rows as one JSON list instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The runs' settings (shared with run and soak).
    #[command(flatten)]
    pub settings: RunConfig,
}

/// Runs `chaosbank bench`.
pub fn run(args: BenchArgs) -> ExitCode {
    let mut runs = Vec::new();
    let base = RunConfig {
        seed: args.seed,
        service: None,
        ..args.settings.clone()
    };
    if let Err(e) = base.check() {
        eprintln!("chaosbank bench: {e:#}");
        return ExitCode::from(2);
    }
    for name in args
        .systems
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "none")
    {
        match SystemKind::parse(name) {
            Some(system) => runs.push(RunConfig {
                system,
                ..base.clone()
            }),
            None => {
                eprintln!(
                    "chaosbank bench: unknown system {name:?} ({}, none)",
                    SystemKind::names()
                );
                return ExitCode::from(2);
            }
        }
    }
    if let Some(path) = &args.settings.service {
        if let Err(e) = chaosbank::sut::Manifest::load(path) {
            eprintln!("chaosbank bench: {e}");
            return ExitCode::from(2);
        }
        runs.push(RunConfig {
            service: Some(path.clone()),
            ..base.clone()
        });
    }
    if runs.is_empty() {
        eprintln!("chaosbank bench: nothing to measure (--systems none and no --service)");
        return ExitCode::from(2);
    }
    block_on(async move {
        let rows = match bench::bench(&runs).await {
            Ok(rows) => rows,
            Err(e) => {
                eprintln!("error: {e:#}");
                return Ok(ExitCode::from(2));
            }
        };
        let s = &args.settings;
        let dir = s.out.join(format!("bench-{}", run::timestamp()));
        let title = format!(
            "chaosbank bench: {} s per system, {} clients, {} accounts a bank, nemesis {}",
            s.time_limit.as_secs(),
            s.concurrency,
            s.accounts,
            s.nemesis()
        );
        bench::write(&dir, &rows, &title)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
        } else {
            print!("{}", bench::table(&rows));
            println!("bench: {}", dir.join("bench.html").display());
        }
        let all_valid = rows.iter().all(|r| r.verdict == "valid");
        Ok(ExitCode::from(if all_valid { 0 } else { 1 }))
    })
}
