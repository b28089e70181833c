//! `chaosbank replay`: runs a stored run again (same system, seed, workload and fault
//! schedule, from its `run.json`) and says whether the verdict reproduced.
//!
//! Exit status: 0 reproduced, 1 not reproduced, 2 the run could not be replayed (a bad
//! folder, a malformed or unfinished `run.json`, or a run that failed).

use crate::commands::block_on;
use harness::replay;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `chaosbank replay`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  chaosbank replay runs/latest
  chaosbank replay runs/outbox/20261124T235901Z-7 --out /tmp/replays

Prints the original verdict and the replay's (validity and anomaly kinds) and whether they
match. `parked` and `recovered` findings are shown but not compared (they are not
violations). Exit status: 0 reproduced, 1 not reproduced, 2 could not replay.")]
pub struct ReplayArgs {
    /// The stored run: `runs/<system>/<timestamp>-<seed>`, `runs/latest`, or its run.json.
    pub run: PathBuf,
    /// Where to store the new run (default: the same store as the original).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `chaosbank replay`.
pub fn run(args: ReplayArgs) -> ExitCode {
    let (original_dir, meta, cfg) = match replay::prepare(&args.run, args.out.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("chaosbank replay: {e:#}");
            return ExitCode::from(2);
        }
    };
    println!(
        "replaying {} seed {} ({:?}, {} clients, nemesis {}) from {}",
        meta.system,
        meta.seed,
        cfg.time_limit,
        cfg.concurrency,
        if cfg.faults.is_empty() {
            "none".to_string()
        } else {
            cfg.faults
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(",")
        },
        original_dir.display()
    );
    if meta.chaosbank.commit != harness::store::GIT_COMMIT {
        eprintln!(
            "note: the run was made by chaosbank {} and this is {}",
            meta.chaosbank.commit,
            harness::store::GIT_COMMIT
        );
    }
    block_on(async move {
        let r = match replay::replay(&args.run, args.out.as_deref()).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("chaosbank replay: {e:#}");
                return Ok(ExitCode::from(2));
            }
        };
        println!("{}", r.summary());
        Ok(ExitCode::from(if r.reproduced { 0 } else { 1 }))
    })
}
