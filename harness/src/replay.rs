//! Replay: run a stored run again — same system, seed, workload and fault schedule,
//! from its `run.json` — and say whether the verdict reproduced: the same validity and
//! the same kinds of anomalies that are violations (`parked`, `in-flight` and
//! `recovered` are shown but not compared: they are not violations, see
//! [`checkers::AnomalyKind::is_violation`]).
//!
//! The engines are real, so timing differs between runs: a verdict that does not
//! reproduce says the anomaly depends on timing the seed does not pin down.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

use crate::run::{self, RunConfig, RunReport};
use crate::store::{self, Outcome, RunMeta};

/// A replayed run.
#[derive(Debug)]
pub struct Replay {
    /// The stored run's folder (symlinks such as `runs/latest` resolved).
    pub original_dir: PathBuf,
    /// What its `run.json` said.
    pub original: RunMeta,
    /// The new run.
    pub again: RunReport,
    /// Whether the verdict reproduced (see [`reproduced`]).
    pub reproduced: bool,
}

impl Replay {
    /// The stored run's outcome (always present: [`replay`] refuses runs without one).
    pub fn original_outcome(&self) -> Outcome {
        self.original.outcome.clone().unwrap_or_default()
    }

    /// A few lines for a person: both verdicts and whether they match.
    pub fn summary(&self) -> String {
        let again = Outcome::of_report(&self.again);
        format!(
            "original: {}\nreplay:   {}\n{}",
            describe(&self.original_outcome(), &self.original_dir),
            describe(&again, self.again.dir()),
            if self.reproduced {
                "REPRODUCED: same validity, same anomaly kinds".to_string()
            } else {
                format!(
                    "NOT REPRODUCED: {}",
                    difference(&self.original_outcome(), &again)
                )
            }
        )
    }
}

/// What differs between two outcomes, for a person: the validity, or the violation
/// kinds found only on one side.
pub fn difference(original: &Outcome, again: &Outcome) -> String {
    let mut parts = Vec::new();
    if original.valid != again.valid {
        parts.push(format!(
            "{} then {}",
            original.valid.to_uppercase(),
            again.valid.to_uppercase()
        ));
    }
    let (a, b) = (original.violations(), again.violations());
    let only = |x: &[String], y: &[String]| -> Vec<String> {
        x.iter().filter(|k| !y.contains(k)).cloned().collect()
    };
    let (lost, new) = (only(&a, &b), only(&b, &a));
    if !lost.is_empty() {
        parts.push(format!("not found again: {}", lost.join(", ")));
    }
    if !new.is_empty() {
        parts.push(format!("new in the replay: {}", new.join(", ")));
    }
    if parts.is_empty() {
        "nothing".to_string()
    } else {
        parts.join("; ")
    }
}

/// `valid, anomalies: none — runs/…` for one side of a comparison.
fn describe(o: &Outcome, dir: &Path) -> String {
    let anomalies = if o.anomalies.is_empty() {
        "none".to_string()
    } else {
        o.anomalies
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{:<8} anomalies: {anomalies} ({} faults, {} ok transfers) — {}",
        o.valid.to_uppercase(),
        o.faults,
        o.figures.transfers_ok,
        dir.display()
    )
}

/// Whether two outcomes agree: same validity and the same set of violation kinds.
pub fn reproduced(original: &Outcome, again: &Outcome) -> bool {
    original.valid == again.valid && original.violations() == again.violations()
}

/// Reads a stored run and the config to run it again. Runs go to `out` if given, else
/// next to the original (the store root two folders above it).
pub fn prepare(dir: &Path, out: Option<&Path>) -> Result<(PathBuf, RunMeta, RunConfig)> {
    let meta = store::load(dir)?;
    let original_dir = std::fs::canonicalize(dir)
        .with_context(|| format!("resolving the run folder {}", dir.display()))?;
    match &meta.outcome {
        None => bail!(
            "{}: the run did not finish (no outcome in run.json), so there is no verdict to \
             reproduce; run it again with `chaosbank run --system {} --seed {}`",
            original_dir.join(store::RUN_JSON).display(),
            meta.system,
            meta.seed
        ),
        Some(o) if o.valid == "error" => bail!(
            "{}: the run failed ({}), so there is no verdict to reproduce",
            original_dir.join(store::RUN_JSON).display(),
            o.error.as_deref().unwrap_or("no error recorded")
        ),
        Some(_) => {}
    }
    let mut cfg = meta.config.clone();
    cfg.out = match out {
        Some(o) => o.to_path_buf(),
        None => original_dir
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("runs")),
    };
    Ok((original_dir, meta, cfg))
}

/// Runs a stored run again and compares the verdicts; the new run's `run.json` names
/// the original in `replay_of`.
pub async fn replay(dir: &Path, out: Option<&Path>) -> Result<Replay> {
    let (original_dir, original, cfg) = prepare(dir, out)?;
    let again = run::run(&cfg).await?;
    let new_dir = again.dir().to_path_buf();
    match store::load(&new_dir) {
        Ok(mut meta) => {
            meta.replay_of = Some(original_dir.clone());
            if let Err(e) = store::save(&new_dir, &meta) {
                tracing::warn!("{e:#}");
            }
        }
        Err(e) => tracing::warn!("{e:#}"),
    }
    let reproduced = reproduced(
        original.outcome.as_ref().unwrap_or(&Outcome::default()),
        &Outcome::of_report(&again),
    );
    Ok(Replay {
        original_dir,
        original,
        again,
        reproduced,
    })
}

/// One of [`replay_times`]'s runs: its verdict, or why it failed.
#[derive(Debug)]
pub struct Attempt {
    /// The run's outcome (validity `error` when it failed).
    pub outcome: Outcome,
    /// Its folder, when it got one.
    pub dir: Option<PathBuf>,
    /// Whether it reproduced the original's verdict.
    pub reproduced: bool,
}

impl Attempt {
    /// `INVALID lost ×3 — first violation lost at 12.3 s — reproduced — runs/…`.
    pub fn line(&self) -> String {
        let o = &self.outcome;
        let verdict = match &o.error {
            Some(e) => format!("ERROR {}", e.lines().next().unwrap_or_default()),
            None => o.describe(),
        };
        let first = match (&o.first_violation, o.first_violation_s) {
            (Some(a), Some(t)) => format!(" — first violation {a} at {t:.1} s"),
            (Some(a), None) => format!(" — first violation {a}"),
            _ => String::new(),
        };
        format!(
            "{verdict}{first} — {}{}",
            if self.reproduced {
                "reproduced"
            } else {
                "not reproduced"
            },
            self.dir
                .as_ref()
                .map(|d| format!(" — {}", d.display()))
                .unwrap_or_default()
        )
    }
}

/// Replays a stored run `times` times, one after another, calling `each` with every
/// attempt's number (from 1) as it ends; records the rate in the original's `run.json`
/// (`reproduction`) and returns it. A replay that fails counts as not reproduced. The
/// engines are real: the rate measures how much of the verdict the seed pins down.
pub async fn replay_times(
    dir: &Path,
    out: Option<&Path>,
    times: usize,
    mut each: impl FnMut(usize, &Attempt),
) -> Result<store::Reproduction> {
    let (original_dir, original, _) = prepare(dir, out)?;
    let mut rate = store::Reproduction::default();
    for i in 1..=times {
        let attempt = match replay(&original_dir, out).await {
            Ok(r) => Attempt {
                outcome: Outcome::of_report(&r.again),
                dir: Some(r.again.dir().to_path_buf()),
                reproduced: r.reproduced,
            },
            Err(e) => Attempt {
                outcome: Outcome {
                    valid: "error".to_string(),
                    error: Some(format!("{e:#}")),
                    ..Outcome::default()
                },
                dir: None,
                reproduced: false,
            },
        };
        rate.times += 1;
        rate.reproduced += usize::from(attempt.reproduced);
        rate.runs.extend(attempt.dir.clone());
        each(i, &attempt);
    }
    let mut meta = store::load(&original_dir).unwrap_or(original);
    meta.reproduction = Some(rate.clone());
    if let Err(e) = store::save(&original_dir, &meta) {
        tracing::warn!("recording the reproduction rate: {e:#}");
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn outcome(valid: &str, anomalies: &[(&str, usize)]) -> Outcome {
        Outcome {
            valid: valid.to_string(),
            anomalies: anomalies
                .iter()
                .map(|(k, n)| (k.to_string(), *n))
                .collect::<BTreeMap<_, _>>(),
            ..Outcome::default()
        }
    }

    #[test]
    fn verdicts_compare_by_validity_and_violation_kinds() {
        let valid = outcome("valid", &[]);
        assert!(reproduced(&valid, &outcome("valid", &[("parked", 2)])));
        assert!(!reproduced(&valid, &outcome("unknown", &[])));
        let dup = outcome("invalid", &[("duplicated", 3)]);
        assert!(reproduced(&dup, &outcome("invalid", &[("duplicated", 9)])));
        assert!(!reproduced(
            &dup,
            &outcome("invalid", &[("duplicated", 1), ("phantom", 1)])
        ));
        assert!(!reproduced(&dup, &outcome("invalid", &[("phantom", 1)])));
        assert_eq!(
            difference(&dup, &outcome("invalid", &[("phantom", 1)])),
            "not found again: duplicated; new in the replay: phantom"
        );
        assert_eq!(
            difference(&valid, &dup),
            "VALID then INVALID; new in the replay: duplicated"
        );
    }

    #[test]
    fn unfinished_and_failed_runs_are_refused_with_the_file_named() {
        let dir = std::env::temp_dir().join(format!("chaosbank-replay-{}", std::process::id()));
        let run_dir = dir.join("outbox").join("20260101T000000Z-7");
        let _ = std::fs::remove_dir_all(&dir);
        let mut store = store::RunStore::create(&run_dir, &RunConfig::new(7)).unwrap();
        let err = format!("{:#}", prepare(&run_dir, None).unwrap_err());
        assert!(
            err.contains("did not finish") && err.contains("run.json"),
            "{err}"
        );
        assert!(err.contains("--seed 7"), "{err}");
        store.record_error(&anyhow::anyhow!("no engine"));
        let err = format!("{:#}", prepare(&run_dir, None).unwrap_err());
        assert!(err.contains("the run failed (no engine)"), "{err}");
        // A finished one replays next to the original, with the same config.
        let mut meta = store::load(&run_dir).unwrap();
        meta.outcome = Some(outcome("valid", &[]));
        store::save(&run_dir, &meta).unwrap();
        let (orig, _, cfg) = prepare(&run_dir, None).unwrap();
        assert_eq!(orig, std::fs::canonicalize(&run_dir).unwrap());
        assert_eq!(cfg.out, std::fs::canonicalize(&dir).unwrap());
        assert_eq!(cfg.seed, 7);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
