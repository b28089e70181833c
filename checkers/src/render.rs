//! The plain-text summary a person reads: the verdict, the counts per anomaly, and the
//! first findings with their sentences.

use crate::verdict::{Validity, Verdict};
use std::fmt::Write;

/// Renders `verdict` as a short summary showing at most `max_findings` findings per
/// anomaly name; the counts are the full counts, including findings not kept.
pub fn summary(verdict: &Verdict, max_findings: usize) -> String {
    let mut s = String::new();
    let word = match verdict.valid {
        Validity::Valid => "VALID",
        Validity::Invalid => "INVALID",
        Validity::Unknown => "UNKNOWN",
    };
    let _ = writeln!(s, "{word}: {} ops checked", verdict.ops);
    for (name, m) in &verdict.models {
        let _ = write!(s, "  {name}: {}", m.valid.as_str());
        let interesting: Vec<String> = [
            ("transfers", "transfers"),
            ("reads", "reads"),
            ("ledger-entries", "ledger entries"),
            ("attempt-count", "enqueues attempted"),
        ]
        .iter()
        .filter_map(|(k, label)| m.stats.get(*k).map(|v| format!("{v} {label}")))
        .collect();
        if !interesting.is_empty() {
            let _ = write!(s, " ({})", interesting.join(", "));
        }
        s.push('\n');
        for n in &m.notes {
            let _ = writeln!(s, "    note: {n}");
        }
    }
    let (violations, others) = verdict.split_counts();
    if violations.is_empty() {
        let _ = writeln!(s, "No anomalies.");
    } else {
        let _ = writeln!(s, "Anomalies:");
        for (name, n) in &violations {
            let _ = writeln!(s, "  {name}: {n}");
        }
    }
    // Not violations (AnomalyKind::is_violation): on a line of their own, not as findings.
    if !others.is_empty() {
        let list: Vec<String> = others
            .iter()
            .map(|(k, n)| match *k {
                "parked" => format!("{n} parked (dead-lettered for a person)"),
                "in-flight" => format!("{n} in-flight (not drained: at best unknown)"),
                "recovered" => format!("{n} recovered"),
                other => format!("{n} {other}"),
            })
            .collect();
        let _ = writeln!(s, "Not violations: {}", list.join(", "));
    }
    for (name, count) in violations.iter().chain(&others) {
        let Some(list) = verdict.anomalies.get(*name) else {
            continue;
        };
        let _ = writeln!(s, "\n{name}:");
        for f in list.iter().take(max_findings) {
            let _ = writeln!(s, "  - {}", f.sentence);
        }
        let count = *count;
        let shown = list.len().min(max_findings);
        if count > shown {
            let more = if count > list.len() {
                format!(
                    "--json lists {} of them: the first, last, worst and a sample",
                    list.len()
                )
            } else {
                "--json lists them all".to_owned()
            };
            let _ = writeln!(s, "  … and {} more ({more})", count - shown);
        }
    }
    s
}
