//! `chaosbank bench`: each system once with no faults, its throughput and latency beside
//! its engines' raw figures from the same run, as ratios; JSON with `--json`.

use crate::commands::block_on;
use crate::commands::run::parse_duration;
use harness::bench;
use harness::run::{self, RunConfig, SystemKind};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Flags of `chaosbank bench`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  cargo run --release -p chaosbank-harness -- bench
  chaosbank bench --systems outbox --time-limit 60s --json
  chaosbank bench --systems none --service examples/services/python-outbox

Writes <out>/bench-<timestamp>/bench.json and bench.html; each run is stored as `run` stores it.
Exit 0 when every run was valid, 1 otherwise, 2 for bad flags or a run that failed.")]
pub struct BenchArgs {
    /// The reference schemes to measure, comma-separated (dual-write, kafka-tx, outbox,
    /// outbox-eos, txmsg), or none.
    #[arg(long, default_value = "outbox,txmsg,dual-write")]
    pub systems: String,
    /// Also measure a service of your own (its manifest or folder).
    #[arg(long, value_name = "DIR_OR_TOML")]
    pub service: Option<PathBuf>,
    /// How long each system takes transfers.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub time_limit: Duration,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Accounts in each bank (the runs' default is 5: hot rows, as the fault runs use).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub accounts: u64,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the rows as one JSON list instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where the runs and the bench's files go.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
}

/// Runs `chaosbank bench`.
pub fn run(args: BenchArgs) -> ExitCode {
    let mut runs = Vec::new();
    let base = RunConfig {
        time_limit: args.time_limit,
        concurrency: args.concurrency,
        accounts: args.accounts as usize,
        out: args.out.clone(),
        ..RunConfig::new(args.seed)
    };
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
    if let Some(path) = &args.service {
        if let Err(e) = harness::sut::Manifest::load(path) {
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
        let dir = args.out.join(format!("bench-{}", run::timestamp()));
        let title = format!(
            "chaosbank bench: {} s per system, {} clients, {} accounts a bank, no faults",
            args.time_limit.as_secs(),
            args.concurrency,
            args.accounts
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
