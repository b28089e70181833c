//! Time to conviction: how far into a run the history first goes wrong. Each finding
//! that breaks a model (`lost`, `phantom`, `duplicated`, `wrong-total`, …; not `parked`,
//! `in-flight` or `recovered`) names ops; its anomalous op is the last of them that a
//! client performed — for a transfer its completion (the acknowledgement of a lost
//! transfer, the `fail` of a failed-applied one), for a read off the total the read —
//! not the `init` it is measured against nor the final ledger lines that show it. The run's first violation is the earliest such op, so the figure says how
//! much load the run needed before the system went wrong, not how long the checker took. A soak sums it up per system: the
//! share of seeds convicted and the median time ([`Convictions`]).

use anyhow::{Context, Result};
use checkers::{AnomalyKind, HistoryReader, Verdict};
use std::collections::{HashMap, HashSet};
use std::io::BufReader;
use std::path::Path;
use std::time::Duration;

/// The first op of a run that a violation names.
#[derive(Clone, Debug, PartialEq)]
pub struct FirstViolation {
    /// The op's index in the history.
    pub op: u64,
    /// The anomaly that names it (the first by name when several do).
    pub anomaly: String,
    /// The op's time since the run started (`None` when its line has no `time`).
    pub at: Option<Duration>,
}

impl std::fmt::Display for FirstViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.at {
            Some(at) => write!(
                f,
                "{} at {:.1} s into the run (op {})",
                self.anomaly,
                at.as_secs_f64(),
                self.op
            ),
            None => write!(f, "{} at op {} (no time on it)", self.anomaly, self.op),
        }
    }
}

/// Whether an anomaly name is a violation: [`AnomalyKind::name_is_violation`], the one
/// rule (names the checkers do not know count as violations).
pub fn is_violation(name: &str) -> bool {
    AnomalyKind::name_is_violation(name)
}

/// A finding's anomalous op: the last of its ops that a client performed (the
/// completion of a transfer, the read off the total), else the last it names (a final
/// ledger line, for a transfer nobody invoked). `client` says whether an op index is
/// a client's op.
pub fn anomalous_op(ops: &[u64], client: impl Fn(u64) -> bool) -> Option<u64> {
    ops.iter()
        .copied()
        .filter(|&op| client(op))
        .max()
        .or_else(|| ops.iter().copied().max())
}

/// The earliest anomalous op ([`anomalous_op`]) among the kept findings of
/// violations, with the anomaly's name. The first findings of each kind are always kept
/// ([`checkers::verdict::KEEP_FIRST`]), so this is the history's first violation.
pub fn first_violation_op(verdict: &Verdict, client: impl Fn(u64) -> bool) -> Option<(u64, &str)> {
    verdict
        .anomalies
        .iter()
        .filter(|(name, _)| is_violation(name))
        .flat_map(|(name, findings)| findings.iter().map(move |f| (f, name.as_str())))
        .filter_map(|(f, name)| anomalous_op(&f.ops, &client).map(|op| (op, name)))
        .min()
}

/// The run's first violation, with its time, read from the history file (one pass
/// that keeps only the ops the findings name); `None` when the verdict names no
/// violation.
pub fn first_violation(verdict: &Verdict, history: &Path) -> Result<Option<FirstViolation>> {
    let named: HashSet<u64> = verdict
        .anomalies
        .iter()
        .filter(|(name, _)| is_violation(name))
        .flat_map(|(_, findings)| findings.iter().flat_map(|f| f.ops.iter().copied()))
        .collect();
    if named.is_empty() {
        return Ok(None);
    }
    let file =
        std::fs::File::open(history).with_context(|| format!("opening {}", history.display()))?;
    // Each named op: its time, and whether a client performed it.
    let mut seen: HashMap<u64, (Option<u64>, bool)> = HashMap::new();
    for op in HistoryReader::new(BufReader::new(file)).filter_map(Result::ok) {
        if named.contains(&op.index) {
            seen.insert(op.index, (op.time, op.client().is_some()));
        }
    }
    let client = |i: u64| seen.get(&i).is_some_and(|&(_, c)| c);
    let Some((op, anomaly)) = first_violation_op(verdict, client) else {
        return Ok(None);
    };
    Ok(Some(FirstViolation {
        op,
        anomaly: anomaly.to_string(),
        at: seen
            .get(&op)
            .and_then(|&(t, _)| t)
            .map(Duration::from_nanos),
    }))
}

/// A system's convictions over the seeds of a soak.
#[derive(Clone, Debug, PartialEq)]
pub struct Convictions {
    /// What ran.
    pub name: String,
    /// Runs that ended with a verdict (valid, invalid or unknown).
    pub judged: usize,
    /// Of those, the invalid ones.
    pub convicted: usize,
    /// The convicted runs' times to their first violation, in seconds, sorted.
    pub times_s: Vec<f64>,
}

impl Convictions {
    /// Sums up runs of one system: each its verdict (`valid`, `invalid`, `unknown`,
    /// `error`) and its time to the first violation.
    pub fn of<'a>(name: &str, runs: impl IntoIterator<Item = (&'a str, Option<f64>)>) -> Self {
        let mut c = Convictions {
            name: name.to_string(),
            judged: 0,
            convicted: 0,
            times_s: Vec::new(),
        };
        for (valid, first) in runs {
            if valid == "error" {
                continue;
            }
            c.judged += 1;
            if valid == "invalid" {
                c.convicted += 1;
                c.times_s.extend(first);
            }
        }
        c.times_s.sort_by(f64::total_cmp);
        c
    }

    /// The median time to the first violation, in seconds (the lower middle of an even
    /// count).
    pub fn median_s(&self) -> Option<f64> {
        let n = self.times_s.len();
        (n > 0).then(|| self.times_s[(n - 1) / 2])
    }
}

impl std::fmt::Display for Convictions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let share = if self.judged == 0 {
            0.0
        } else {
            100.0 * self.convicted as f64 / self.judged as f64
        };
        write!(
            f,
            "{}: convicted in {} of {} seeds ({share:.0} %)",
            self.name, self.convicted, self.judged
        )?;
        if let (Some(median), Some(min), Some(max)) =
            (self.median_s(), self.times_s.first(), self.times_s.last())
        {
            write!(
                f,
                "; first violation after {median:.1} s (median; {min:.1}–{max:.1} s)"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkers::Finding;

    fn verdict(findings: &[(&str, &[u64])]) -> Verdict {
        let mut v = checkers::check_ops(std::iter::empty(), None).unwrap();
        for (name, ops) in findings {
            v.anomalies
                .entry(name.to_string())
                .or_default()
                .push(Finding::new(format!("{name} here"), ops.to_vec()));
        }
        v
    }

    #[test]
    fn the_earliest_anomalous_op_of_a_violation_counts_and_parked_ones_do_not() {
        // Ops 0 (init) and 9, 10 (final ledger lines) are not clients' ops.
        let client = |i: u64| !matches!(i, 0 | 9 | 10);
        assert_eq!(anomalous_op(&[4, 6, 10], client), Some(6));
        assert_eq!(anomalous_op(&[9, 10], client), Some(10));
        assert_eq!(anomalous_op(&[], client), None);
        let v = verdict(&[
            ("parked", &[1, 10]),
            ("wrong-total", &[0, 5]),
            ("lost", &[4, 6, 9]),
        ]);
        assert_eq!(first_violation_op(&v, client), Some((5, "wrong-total")));
        let v = verdict(&[
            ("parked", &[1]),
            ("wrong-total", &[0, 9]),
            ("phantom", &[10]),
        ]);
        assert_eq!(first_violation_op(&v, client), Some((9, "wrong-total")));
        let v = verdict(&[("parked", &[1]), ("in-flight", &[2]), ("recovered", &[3])]);
        assert_eq!(first_violation_op(&v, client), None);
        assert!(is_violation("a-new-anomaly"));
    }

    #[test]
    fn the_time_is_read_from_the_history() {
        let dir = std::env::temp_dir().join(format!("chaosbank-conviction-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.jsonl");
        let lines = [
            r#"{"index":0,"time":1000000000,"process":0,"type":"invoke","f":"transfer","value":{"id":"t0"}}"#,
            r#"{"index":1,"time":2500000000,"process":0,"type":"ok","f":"transfer","value":{"id":"t0"}}"#,
            r#"{"index":2,"time":9000000000,"process":"final","type":"ok","f":"final-ledger","value":{}}"#,
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let first = first_violation(&verdict(&[("lost", &[0, 1, 2])]), &path)
            .unwrap()
            .unwrap();
        assert_eq!(first.at, Some(Duration::from_millis(2500)));
        assert_eq!(first.to_string(), "lost at 2.5 s into the run (op 1)");
        assert_eq!(first_violation(&verdict(&[]), &path).unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_soak_counts_judged_runs_and_takes_the_median() {
        let c = Convictions::of(
            "dual-write",
            [
                ("invalid", Some(30.0)),
                ("valid", None),
                ("invalid", Some(10.0)),
                ("error", None),
                ("invalid", Some(20.0)),
                ("unknown", None),
            ],
        );
        assert_eq!((c.judged, c.convicted), (5, 3));
        assert_eq!(c.median_s(), Some(20.0));
        assert_eq!(
            c.to_string(),
            "dual-write: convicted in 3 of 5 seeds (60 %); first violation after 20.0 s (median; 10.0–30.0 s)"
        );
        let none = Convictions::of("outbox", [("valid", None)]);
        assert_eq!(none.to_string(), "outbox: convicted in 0 of 1 seeds (0 %)");
    }
}
