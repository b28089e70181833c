//! `chaosbank shrink`: from a convicted run, the smallest fault schedule that still
//! convicts (an invalid verdict; the kinds are reported), written as a file
//! `chaosbank run --schedule` takes, its reproduction rate, and the faults that matter.
//!
//! Exit status: 0 a minimal schedule was found and written, 1 the original schedule did
//! not convict in a majority of its tries (nothing to shrink from), 2 the run could not
//! be shrunk (a bad folder, a run that was not convicted, no schedule stored).

use crate::commands::block_on;
use chaosbank::config::parse_duration;
use chaosbank::shrink::{self, Budget, Plan, RealRunner, Settings};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Flags of `chaosbank shrink`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  chaosbank shrink runs/latest                               # 3 tries a candidate, 30 min, confirm 10
  chaosbank shrink runs/dual-write/20261204T101500Z-7 --tries 1 --budget 12 --confirm 3

Each candidate schedule is real runs (the stored run's config and seed, the candidate's
faults), stored under RUN/shrink/. A candidate counts when a majority of its --tries runs
convict with the original's anomaly kinds. The search drops faults (halves, then smaller
parts, then one at a time), halves holds, and ends the workload --tail after the first
violation. The result is written as RUN/shrink/minimal-schedule.toml (or --write FILE),
a file `chaosbank run --schedule` plays.
Exit status: 0 a minimal schedule was written, 1 the original did not convict in a
majority of its tries, 2 could not shrink.")]
pub struct ShrinkArgs {
    /// The convicted run: `runs/<system>/<timestamp>-<seed>`, `runs/latest`, or its run.json.
    pub run: PathBuf,
    /// Runs per candidate; it counts when a majority convict.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=99))]
    pub tries: u64,
    /// The bound on the search: a time (`30m`, `90s`) or a number of runs (`40`).
    #[arg(long, default_value = "30m", value_parser = parse_budget)]
    pub budget: Budget,
    /// Runs of the minimal schedule afterwards, for its reproduction rate (0: none).
    #[arg(long, default_value_t = 10)]
    pub confirm: u64,
    /// End the workload this long after the first violation.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub tail: Duration,
    /// Holds are not shortened below this.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub min_hold: Duration,
    /// Where to write the minimal schedule (default: RUN/shrink/minimal-schedule.toml).
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
}

/// Parses `--budget` ([`Budget`]'s parser): a bare number is runs (1 to 10 000), a
/// duration (`30m`, `90s`, `1500ms`, at most a day) time.
pub fn parse_budget(s: &str) -> Result<Budget, String> {
    s.parse()
}

/// Runs `chaosbank shrink`.
pub fn run(args: ShrinkArgs) -> ExitCode {
    let start = match shrink::start(&args.run) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("chaosbank shrink: {e:#}");
            return ExitCode::from(2);
        }
    };
    let file = args
        .write
        .clone()
        .unwrap_or_else(|| start.dir.join("shrink").join("minimal-schedule.toml"));
    let settings = Settings {
        tries: args.tries as usize,
        budget: args.budget,
        min_hold: args.min_hold,
        tail: args.tail,
    };
    println!(
        "shrinking {} seed {}: {} faults over {:.0} s, convicted of {}; {} tries a candidate, \
         budget {}; runs go to {}",
        chaosbank::sut::subject_name(&start.config).unwrap_or_else(|_| "service".to_string()),
        start.config.seed,
        start.original.schedule.steps.len(),
        start.original.time_limit.as_secs_f64(),
        start.kinds.join(", "),
        settings.tries,
        args.budget,
        start.config.out.display()
    );
    block_on(async move {
        let mut runner = RealRunner {
            base: start.config.clone(),
            want: start.kinds.clone(),
        };
        let plan = Plan {
            settings,
            confirm: args.confirm as usize,
        };
        let summary =
            shrink::shrink_stored(&mut runner, &start, plan, &file, |l| println!("{l}")).await;
        if summary.schedule.is_none() {
            println!(
                "not shrunk: {}",
                summary.error.as_deref().unwrap_or("no reason given")
            );
            return Ok(ExitCode::from(1));
        }
        if let Some(e) = &summary.error {
            anyhow::bail!("{e}");
        }
        if let (Some(dir), Ok(schedule)) = (&summary.evidence, chaosbank::script::load(&file)) {
            match shrink::faults_that_matter(&schedule, &dir.join("history.jsonl")) {
                Ok(c) => print!("\n{}", shrink::render_culprits(&c, 5)),
                Err(e) => eprintln!("the faults that matter: {e:#}"),
            }
            println!("(findings from {})", dir.display());
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_runs_or_time() {
        assert_eq!(
            parse_budget("40"),
            Ok(Budget {
                runs: Some(40),
                time: None
            })
        );
        assert_eq!(
            parse_budget("30m"),
            Ok(Budget {
                runs: None,
                time: Some(Duration::from_secs(1800))
            })
        );
        assert!(parse_budget("lots").unwrap_err().contains("neither"));
    }
}
