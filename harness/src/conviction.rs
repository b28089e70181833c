//! Time to conviction: how far into a run the history first goes wrong. Each finding
//! that breaks a model (`lost`, `phantom`, `duplicated`, `wrong-total`, …; not `parked`,
//! `in-flight` or `recovered`) names ops; its anomalous op is the last of them that a
//! client performed — for a transfer its completion (the acknowledgement of a lost
//! transfer, the `fail` of a failed-applied one), for a read off the total the read —
//! not the `init` it is measured against nor the final ledger lines that show it. The run's first violation is the earliest such op, so the figure says how
//! much load the run needed before the system went wrong, not how long the checker took. A soak sums it up per system: the
//! share of seeds convicted and the median time ([`Convictions`]).
//!
//! The same anomalous op ties each violation to the fault that started last before it
//! ([`tie_to_faults`]): "the faults that matter", in every report and in `chaosbank
//! shrink`'s output, by one rule.

use anyhow::{Context, Result};
use checkers::{AnomalyKind, Finding, HistoryReader, Verdict};
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

/// Every op the verdict's violation findings name.
pub fn named_ops(verdict: &Verdict) -> HashSet<u64> {
    verdict
        .anomalies
        .iter()
        .filter(|(name, _)| is_violation(name))
        .flat_map(|(_, findings)| findings.iter().flat_map(|f| f.ops.iter().copied()))
        .collect()
}

/// What the tie to faults needs of an op: its time since the run started (`None` when
/// its line has none) and whether a client performed it.
pub type OpFacts = (Option<u64>, bool);

/// Reads the facts of the ops in `named` from the history file (one pass that keeps
/// only those).
pub fn read_ops(history: &Path, named: &HashSet<u64>) -> Result<HashMap<u64, OpFacts>> {
    let file =
        std::fs::File::open(history).with_context(|| format!("opening {}", history.display()))?;
    let mut seen: HashMap<u64, OpFacts> = HashMap::new();
    for op in HistoryReader::new(BufReader::new(file)).filter_map(Result::ok) {
        if named.contains(&op.index) {
            seen.insert(op.index, (op.time, op.client().is_some()));
        }
    }
    Ok(seen)
}

/// The run's first violation, with its time, read from the history file (one pass
/// that keeps only the ops the findings name); `None` when the verdict names no
/// violation.
pub fn first_violation(verdict: &Verdict, history: &Path) -> Result<Option<FirstViolation>> {
    let named = named_ops(verdict);
    if named.is_empty() {
        return Ok(None);
    }
    // Each named op: its time, and whether a client performed it.
    let seen = read_ops(history, &named)?;
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

/// A violation finding tied to a fault: the one that started last before (or when)
/// its anomalous op ([`anomalous_op`]) happened. The one rule behind "the faults that
/// matter", in `chaosbank shrink`'s output and in every report.
#[derive(Clone, Debug, PartialEq)]
pub struct Tie<'a> {
    /// The anomaly's name (`lost`, `duplicated`, …).
    pub anomaly: &'a str,
    /// The finding's place in the verdict's list of that anomaly (the report shows the
    /// first ones in detail and links to them).
    pub position: usize,
    /// The finding.
    pub finding: &'a Finding,
    /// Its anomalous op.
    pub op: u64,
    /// That op's time since the run started (`None` when its line has no time).
    pub at: Option<Duration>,
    /// The fault: an index into the starts given to [`tie_to_faults`]; `None` when the op
    /// came before any fault started (or has no time to place it by).
    pub fault: Option<usize>,
}

impl Tie<'_> {
    /// What the finding names: ` transfer 17`, ` account A/0`, or nothing.
    pub fn subject(&self) -> String {
        match (&self.finding.transfer, &self.finding.account) {
            (Some(id), _) => format!(
                " transfer {}",
                id.as_str().map_or(id.to_string(), str::to_string)
            ),
            (None, Some(acct)) => format!(" account {acct}"),
            _ => String::new(),
        }
    }

    /// `lost transfer 17 at 12.3 s`: the anomaly, what it names, when.
    pub fn line(&self) -> String {
        format!(
            "{}{}{}",
            self.anomaly,
            self.subject(),
            self.at
                .map(|t| format!(" at {:.1} s", t.as_secs_f64()))
                .unwrap_or_default()
        )
    }
}

/// Ties every violation finding the verdict keeps to the fault that started last at or
/// before its anomalous op. `starts` are the faults' start times since the run started,
/// in any order (of equal starts the later in the list wins); `facts` gives a named op's
/// time and whether a client performed it ([`read_ops`]; ops it does not know count as
/// untimed and not a client's). Pure: the caller reads the history. The ties come in
/// the order of `starts` (those before any fault first), then by time.
pub fn tie_to_faults<'a>(
    verdict: &'a Verdict,
    starts: &[Duration],
    facts: impl Fn(u64) -> Option<OpFacts>,
) -> Vec<Tie<'a>> {
    let mut ties = Vec::new();
    for (name, findings) in &verdict.anomalies {
        if !is_violation(name) {
            continue;
        }
        for (position, f) in findings.iter().enumerate() {
            let client = |i: u64| facts(i).is_some_and(|(_, c)| c);
            let Some(op) = anomalous_op(&f.ops, client) else {
                continue;
            };
            let at = facts(op).and_then(|(t, _)| t).map(Duration::from_nanos);
            let fault = at.and_then(|t| {
                starts
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| **s <= t)
                    .max_by_key(|(i, s)| (**s, *i))
                    .map(|(i, _)| i)
            });
            ties.push(Tie {
                anomaly: name.as_str(),
                position,
                finding: f,
                op,
                at,
                fault,
            });
        }
    }
    ties.sort_by_key(|t| (t.fault.map_or(0, |i| i + 1), t.at, t.op));
    ties
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
    /// Runs that failed before a verdict (`error`: a cluster or service that did not
    /// start); they are not judged, and the summary says how many there were.
    pub failed: usize,
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
            failed: 0,
            times_s: Vec::new(),
        };
        for (valid, first) in runs {
            if valid == "error" {
                c.failed += 1;
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

    /// The median time to the first violation, in seconds (of an even count, the mean
    /// of the two middle times).
    pub fn median_s(&self) -> Option<f64> {
        let n = self.times_s.len();
        (n > 0).then(|| (self.times_s[(n - 1) / 2] + self.times_s[n / 2]) / 2.0)
    }
}

impl std::fmt::Display for Convictions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.judged == 0 {
            // No share to give: "0 of 0 (0 %)" would read as a clean bill.
            return write!(
                f,
                "{}: no seed judged ({} failed before a verdict: see their rows)",
                self.name, self.failed
            );
        }
        let share = 100.0 * self.convicted as f64 / self.judged as f64;
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
        if self.failed > 0 {
            write!(f, "; {} failed before a verdict", self.failed)?;
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
    fn each_violation_is_tied_to_the_fault_that_started_last_before_it() {
        // Ops 1..=8 are clients' at 1 s … 8 s; op 0 (init) and 9 (a final ledger
        // line, at 9 s) are not.
        let facts = |i: u64| match i {
            0 => Some((Some(0), false)),
            1..=8 => Some((Some(i * 1_000_000_000), true)),
            9 => Some((Some(9_000_000_000), false)),
            _ => None,
        };
        let mut v = verdict(&[
            ("lost", &[1, 2]),        // at 2 s: before any fault
            ("duplicated", &[3, 5]),  // at 5 s: the fault at 5 s (equal counts)
            ("wrong-total", &[0, 9]), // no client op: the final line at 9 s
            ("parked", &[6]),         // not a violation: not tied
            ("phantom", &[42]),       // an op nobody knows: no time, no fault
        ]);
        v.anomalies.get_mut("lost").unwrap()[0].transfer = Some(serde_json::json!(17));
        v.anomalies.get_mut("duplicated").unwrap()[0].account = Some("A/0".into());
        let s = |x: u64| Duration::from_secs(x);
        // Given out of order: index 0 starts at 7 s, 1 at 3 s, 2 at 5 s.
        let ties = tie_to_faults(&v, &[s(7), s(3), s(5)], facts);
        let got: Vec<(String, Option<usize>)> = ties.iter().map(|t| (t.line(), t.fault)).collect();
        assert_eq!(
            got,
            vec![
                ("phantom".to_string(), None),
                ("lost transfer 17 at 2.0 s".to_string(), None),
                ("wrong-total at 9.0 s".to_string(), Some(0)),
                ("duplicated account A/0 at 5.0 s".to_string(), Some(2)),
            ]
        );
        assert_eq!((ties[1].op, ties[1].position), (2, 0));
        // No faults at all: everything is before any fault.
        assert!(tie_to_faults(&v, &[], facts)
            .iter()
            .all(|t| t.fault.is_none()));
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
            "dual-write: convicted in 3 of 5 seeds (60 %); first violation after 20.0 s (median; 10.0–30.0 s); 1 failed before a verdict"
        );
        assert_eq!(c.failed, 1);
        // Every run failed (a service that never started): no share, and why.
        let none = Convictions::of("java-txmsg", [("error", None), ("error", None)]);
        assert_eq!(
            none.to_string(),
            "java-txmsg: no seed judged (2 failed before a verdict: see their rows)"
        );
        // An even count: the mean of the two middle times, not the lower one.
        let even = Convictions::of(
            "kafka-tx",
            [
                ("invalid", Some(1.0)),
                ("invalid", Some(5.9)),
                ("invalid", Some(15.6)),
                ("invalid", Some(50.0)),
            ],
        );
        assert_eq!(even.median_s(), Some(10.75));
        let none = Convictions::of("outbox", [("valid", None)]);
        assert_eq!(none.to_string(), "outbox: convicted in 0 of 1 seeds (0 %)");
    }
}
