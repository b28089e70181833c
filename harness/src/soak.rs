//! Soak: many seeds of one or more systems back to back, one summary table. Failing
//! runs (invalid, unknown, or a run that errored) keep their whole store; passing ones
//! keep only `run.json` and `verdict.json` (their history, logs and report are
//! removed), so a long soak does not fill the disk.

use anyhow::{bail, Context, Result};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use workloads::system::SystemKind;

use crate::conviction::Convictions;
use crate::run::{self, RunConfig};
use crate::store::{self, Outcome};

/// Parses a seed list: `7`, `1,5,9`, `1..20` (inclusive), or a mix (`1..3,10`).
pub fn parse_seeds(s: &str) -> Result<Vec<u64>> {
    crate::parse::seeds(s).map_err(anyhow::Error::msg)
}

/// Parses a system list: `outbox,txmsg`.
pub fn parse_systems(s: &str) -> Result<Vec<SystemKind>> {
    let systems = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            SystemKind::parse(p)
                .with_context(|| format!("unknown system {p:?} ({})", SystemKind::names()))
        })
        .collect::<Result<Vec<_>>>()?;
    if systems.is_empty() {
        bail!("no systems given ({})", SystemKind::names());
    }
    Ok(systems)
}

/// One run of a soak.
#[derive(Clone, Debug)]
pub struct Row {
    /// The system.
    pub system: SystemKind,
    /// What ran: the service's manifest name, else the system's.
    pub name: String,
    /// The seed.
    pub seed: u64,
    /// How it ended (`valid` is `error` when the run failed).
    pub outcome: Outcome,
    /// Its folder in the store (absent when the run failed before it had one).
    pub dir: Option<PathBuf>,
}

impl Row {
    /// Whether the run passed (valid).
    pub fn passed(&self) -> bool {
        self.outcome.valid == "valid"
    }
}

/// Runs `base` once per system and seed, in that order; calls `each` after every run
/// (to print as it goes). Stops early when `stop` says so (checked between runs).
pub async fn soak(
    base: &RunConfig,
    systems: &[SystemKind],
    seeds: &[u64],
    mut each: impl FnMut(&Row),
    stop: impl Fn() -> bool,
) -> Vec<Row> {
    let mut rows = Vec::new();
    'all: for &system in systems {
        for &seed in seeds {
            if stop() {
                break 'all;
            }
            let cfg = RunConfig {
                system,
                seed,
                ..base.clone()
            };
            let row = match run::run(&cfg).await {
                Ok(report) => {
                    let dir = report.dir().to_path_buf();
                    let row = Row {
                        system,
                        name: report.name.clone(),
                        seed,
                        outcome: Outcome::of_report(&report),
                        dir: Some(dir.clone()),
                    };
                    if row.passed() {
                        lighten(&dir);
                    }
                    row
                }
                Err(e) => {
                    let name =
                        crate::sut::subject_name(&cfg).unwrap_or_else(|_| "service".to_string());
                    tracing::error!("{name} seed {seed}: {e:#}");
                    Row {
                        system,
                        name,
                        seed,
                        outcome: Outcome {
                            valid: "error".to_string(),
                            error: Some(format!("{e:#}")),
                            ..Outcome::default()
                        },
                        dir: None,
                    }
                }
            };
            each(&row);
            rows.push(row);
        }
    }
    rows
}

/// Removes a passing run's bulky files: history, report and container logs (keeps
/// `run.json` and `verdict.json`).
pub fn lighten(dir: &Path) {
    for file in ["history.jsonl", "report.html"] {
        let _ = std::fs::remove_file(dir.join(file));
    }
    let _ = std::fs::remove_dir_all(dir.join(store::LOGS));
}

/// What took effect, by kind, and how many overlapped: `isolate×3 kill×2 (1 overlapping)`;
/// `-` when nothing did.
fn fault_kinds(o: &store::Outcome) -> String {
    let mut s = o
        .fault_kinds
        .iter()
        .map(|(k, n)| format!("{k}×{n}"))
        .collect::<Vec<_>>()
        .join(" ");
    if o.faults_overlapping > 0 {
        s.push_str(&format!(" ({} overlapping)", o.faults_overlapping));
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

/// Each system's convictions over its seeds, in the order the systems ran.
pub fn convictions(rows: &[Row]) -> Vec<Convictions> {
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        if !names.contains(&r.name.as_str()) {
            names.push(&r.name);
        }
    }
    names
        .into_iter()
        .map(|name| {
            Convictions::of(
                name,
                rows.iter()
                    .filter(|r| r.name == name)
                    .map(|r| (r.outcome.valid.as_str(), r.outcome.first_violation_s)),
            )
        })
        .collect()
}

/// The summary table: one line per run (`1ST VIOL` is the time into the run of the
/// first op a violation names), then each system's convictions.
pub fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "{:<11} {:>6}  {:<8} {:>6} {:>5} {:>5} {:>7} {:>10} {:>9}  {:<28} {}\n",
        "SYSTEM",
        "SEED",
        "VERDICT",
        "OK",
        "FAIL",
        "INFO",
        "FAULTS",
        "XFER/S",
        "1ST VIOL",
        "FAULT KINDS",
        "ANOMALIES / RUN"
    );
    for r in rows {
        let f = &r.outcome.figures;
        let anomalies = match &r.outcome.error {
            Some(e) => e.lines().next().unwrap_or_default().to_string(),
            None if r.outcome.anomalies.is_empty() => "-".to_string(),
            None => r
                .outcome
                .anomalies
                .iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let _ = writeln!(
            s,
            "{:<11} {:>6}  {:<8} {:>6} {:>5} {:>5} {:>7} {:>10.1} {:>9}  {:<28} {}{}",
            r.name,
            r.seed,
            r.outcome.valid.to_uppercase(),
            f.transfers_ok,
            f.transfers_fail,
            f.transfers_info,
            r.outcome.faults,
            f.throughput,
            r.outcome
                .first_violation_s
                .map_or("-".to_string(), |t| format!("{t:.1} s")),
            fault_kinds(&r.outcome),
            anomalies,
            r.dir
                .as_ref()
                .filter(|_| !r.passed())
                .map(|d| format!(" — {}", d.display()))
                .unwrap_or_default()
        );
    }
    let failed = rows.iter().filter(|r| !r.passed()).count();
    let _ = writeln!(
        s,
        "{} runs, {} passed, {failed} failed",
        rows.len(),
        rows.len() - failed
    );
    for c in convictions(rows) {
        let _ = writeln!(s, "{c}");
    }
    s
}

/// The soak as JUnit XML: one testcase per run (`<system> seed <seed>`), a `failure`
/// for an invalid verdict, an `error` for an unknown one or a run that failed.
pub fn junit(rows: &[Row]) -> String {
    use crate::report::escape;
    let (mut failures, mut errors) = (0, 0);
    let mut cases = String::new();
    for r in rows {
        let name = format!("{} seed {}", r.name, r.seed);
        let _ = writeln!(
            cases,
            "    <testcase name=\"{}\" classname=\"chaosbank.soak.{}\" time=\"0\">",
            escape(&name),
            escape(&r.name)
        );
        let anomalies = r
            .outcome
            .anomalies
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        let place = r
            .dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        match r.outcome.valid.as_str() {
            "valid" => {}
            "invalid" => {
                failures += 1;
                let _ = writeln!(
                    cases,
                    "      <failure type=\"invalid\" message=\"{}\">{}</failure>",
                    escape(&anomalies),
                    escape(&place)
                );
            }
            other => {
                errors += 1;
                let message =
                    r.outcome.error.clone().unwrap_or_else(|| {
                        format!("the verdict is {other} (nothing could be judged)")
                    });
                let _ = writeln!(
                    cases,
                    "      <error type=\"{}\" message=\"{}\">{}</error>",
                    escape(other),
                    escape(message.lines().next().unwrap_or_default()),
                    escape(format!("{message}\n{place}").trim_end())
                );
            }
        }
        cases.push_str("    </testcase>\n");
    }
    let n = rows.len();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites tests=\"{n}\" failures=\"{failures}\" errors=\"{errors}\">\n  \
         <testsuite name=\"chaosbank-soak\" tests=\"{n}\" failures=\"{failures}\" \
         errors=\"{errors}\" skipped=\"0\" time=\"0\">\n{cases}  </testsuite>\n</testsuites>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_lists() {
        assert_eq!(parse_seeds("7").unwrap(), vec![7]);
        assert_eq!(parse_seeds("1,5,9").unwrap(), vec![1, 5, 9]);
        assert_eq!(parse_seeds("1..4").unwrap(), vec![1, 2, 3, 4]);
        assert_eq!(parse_seeds("1..=2, 10").unwrap(), vec![1, 2, 10]);
        for bad in ["", "x", "3..1", "1..y", "-1", "0..1000000"] {
            assert!(parse_seeds(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn system_lists() {
        assert_eq!(
            parse_systems("outbox,txmsg").unwrap(),
            vec![SystemKind::Outbox, SystemKind::TxMsg]
        );
        assert!(parse_systems("outbox,sagas").is_err());
        assert!(parse_systems("").is_err());
    }

    #[test]
    fn passing_runs_are_lightened_and_the_table_names_failures() {
        let dir = std::env::temp_dir().join(format!("chaosbank-soak-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(store::LOGS)).unwrap();
        for f in ["history.jsonl", "report.html", "run.json", "verdict.json"] {
            std::fs::write(dir.join(f), "{}").unwrap();
        }
        std::fs::write(dir.join(store::LOGS).join("postgres.log"), "x").unwrap();
        lighten(&dir);
        assert!(dir.join("run.json").is_file() && dir.join("verdict.json").is_file());
        assert!(!dir.join("history.jsonl").exists() && !dir.join("report.html").exists());
        assert!(!dir.join(store::LOGS).exists());
        let _ = std::fs::remove_dir_all(&dir);

        let pass = Row {
            system: SystemKind::Outbox,
            name: "outbox".into(),
            seed: 1,
            outcome: Outcome {
                valid: "valid".into(),
                ..Outcome::default()
            },
            dir: Some("runs/outbox/a-1".into()),
        };
        let fail = Row {
            system: SystemKind::DualWrite,
            name: "dual-write".into(),
            seed: 2,
            outcome: Outcome {
                valid: "invalid".into(),
                anomalies: [("phantom".to_string(), 2)].into_iter().collect(),
                faults: 3,
                fault_kinds: [("clock".to_string(), 1), ("kill".to_string(), 2)]
                    .into_iter()
                    .collect(),
                faults_overlapping: 1,
                first_violation: Some("phantom".into()),
                first_violation_s: Some(12.34),
                ..Outcome::default()
            },
            dir: Some("runs/dual-write/b-2".into()),
        };
        let xml = junit(&[pass.clone(), fail.clone()]);
        assert!(
            xml.contains("tests=\"2\" failures=\"1\" errors=\"0\""),
            "{xml}"
        );
        assert!(xml.contains("message=\"2 phantom\""), "{xml}");
        let t = table(&[pass, fail]);
        assert!(t.contains("phantom ×2 — runs/dual-write/b-2"), "{t}");
        assert!(!t.contains("runs/outbox/a-1"), "{t}");
        assert!(t.contains("2 runs, 1 passed, 1 failed"), "{t}");
        // What took effect, by kind, and the overlaps: the clock fault and overlapping
        // faults are visible in the table.
        assert!(t.contains("clock×1 kill×2 (1 overlapping)"), "{t}");
        // Time to conviction, per run and per system.
        assert!(t.contains(" 12.3 s "), "{t}");
        assert!(
            t.contains(
                "dual-write: convicted in 1 of 1 seeds (100 %); first violation after 12.3 s"
            ),
            "{t}"
        );
        assert!(t.contains("outbox: convicted in 0 of 1 seeds (0 %)"), "{t}");
    }
}
