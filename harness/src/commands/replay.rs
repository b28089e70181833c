//! `chaosbank replay`: runs a stored run again (same system, seed, workload and fault
//! schedule, from its `run.json`) and says whether the verdict reproduced.
//!
//! Exit status: 0 reproduced, 1 not reproduced, 2 the run could not be replayed (a bad
//! folder, a malformed or unfinished `run.json`, or a run that failed).

use crate::commands::block_on;
use chaosbank::replay;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `chaosbank replay`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  chaosbank replay runs/latest
  chaosbank replay runs/outbox/20261124T235901Z-7 --out /tmp/replays
  chaosbank replay runs/latest --times 10        # how often it reproduces: `reproduced k of 10`

Prints the original verdict and the replay's (validity and anomaly kinds) and whether they
match. `parked` and `recovered` findings are shown but not compared (they are not
violations). With --times N, exit 0 only when every replay reproduced. Exit status: 0
reproduced, 1 not reproduced, 2 could not replay.")]
pub struct ReplayArgs {
    /// The stored run: `runs/<system>/<timestamp>-<seed>`, `runs/latest`, or its run.json.
    pub run: PathBuf,
    /// Where to store the new run (default: the same store as the original).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replay this many times, one after another, and print `reproduced k of N` with
    /// each run's verdict and first violation (recorded in the original's run.json).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub times: u64,
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
    if meta.chaosbank.commit != chaosbank::store::GIT_COMMIT {
        eprintln!(
            "note: the run was made by chaosbank {} and this is {}",
            meta.chaosbank.commit,
            chaosbank::store::GIT_COMMIT
        );
    }
    if args.times > 1 {
        let times = args.times as usize;
        return block_on(async move {
            let rate =
                match replay::replay_times(&args.run, args.out.as_deref(), times, |i, attempt| {
                    println!("replay {i} of {times}: {}", attempt.line())
                })
                .await
                {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("chaosbank replay: {e:#}");
                        return Ok(ExitCode::from(2));
                    }
                };
            println!(
                "reproduced {} of {} (the original: {})",
                rate.reproduced,
                rate.times,
                original_dir.display()
            );
            Ok(ExitCode::from(if rate.reproduced == rate.times {
                0
            } else {
                1
            }))
        });
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
