//! `chaosbank check`: reads a history, runs the checkers, prints the verdict.
//!
//! Exit status follows Jepsen: 0 valid, 1 invalid, 2 unknown or unusable input.
//! Warnings (a dropped cut-short last line, a reused process) go to stderr.
use checkers::compose::{check_reader, Model};
use checkers::render;
use std::io::{BufReader, Write};
use std::process::ExitCode;

/// Flags of `chaosbank check`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  chaosbank check runs/latest/history.jsonl
  chaosbank check history.jsonl --json --junit junit.xml --report report.html
  cat history.jsonl | chaosbank check - --model bank

Exit status: 0 valid, 1 invalid, 2 unknown or unusable input.")]
pub struct CheckArgs {
    /// The history file (JSON Lines); `-` reads standard input.
    pub history: std::path::PathBuf,
    /// The model to check against; detected from the ops when absent.
    #[arg(long, value_parser = parse_model)]
    pub model: Option<Model>,
    /// Print the verdict as one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// How many findings of each anomaly the summary shows.
    #[arg(long, default_value_t = 5)]
    pub show: usize,
    /// Also write a self-contained HTML report of the history and verdict to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<std::path::PathBuf>,
    /// Also write the verdict as JUnit XML (one testcase per model) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<std::path::PathBuf>,
}

fn parse_model(s: &str) -> Result<Model, String> {
    s.parse()
}

/// Runs `chaosbank check`.
pub fn run(args: CheckArgs) -> ExitCode {
    let result = if args.history.as_os_str() == "-" {
        check_reader(std::io::stdin().lock(), args.model)
    } else {
        match std::fs::File::open(&args.history) {
            Ok(f) => check_reader(BufReader::with_capacity(1 << 20, f), args.model),
            Err(e) => {
                eprintln!(
                    "chaosbank check: cannot open {}: {e}",
                    args.history.display()
                );
                return ExitCode::from(2);
            }
        }
    };
    let verdict = match result {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "chaosbank check: {}: unusable history: {e}",
                args.history.display()
            );
            return ExitCode::from(2);
        }
    };
    for w in &verdict.warnings {
        eprintln!("warning: {w}");
    }
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer(&mut out, &verdict)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        write!(out, "{}", render::summary(&verdict, args.show)).and_then(|()| {
            // Time to conviction, for a history on disk (read a second time).
            if args.history.as_os_str() == "-" {
                return Ok(());
            }
            match chaosbank::conviction::first_violation(&verdict, &args.history) {
                Ok(Some(first)) => writeln!(out, "first violation: {first}"),
                _ => Ok(()),
            }
        })
    };
    if let Err(e) = written.and_then(|()| out.flush()) {
        eprintln!("chaosbank check: cannot write the verdict: {e}");
        return ExitCode::from(2);
    }
    if let Some(path) = &args.junit {
        if let Err(e) = chaosbank::report::junit::write_junit(&verdict, "chaosbank-check", path) {
            eprintln!("chaosbank check: {e}");
            return ExitCode::from(2);
        }
    }
    if let Some(path) = &args.report {
        let made = if args.history.as_os_str() == "-" {
            Err("--report needs a history file, not standard input".to_owned())
        } else {
            chaosbank::report::write_html(&args.history, &verdict, path).map_err(|e| e.to_string())
        };
        if let Err(e) = made {
            eprintln!("chaosbank check: {e}");
            return ExitCode::from(2);
        }
    }
    ExitCode::from(verdict.valid.exit_code())
}
