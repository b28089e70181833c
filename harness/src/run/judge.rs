//! The judge: the run's final verdict from the checker's verdict and what the run did.
//!
//! The checker judges the history; the judge weighs what the history cannot say by
//! itself — whether the run tested what it was asked to. A pure function over plain
//! data ([`judge`]), so every rule that can lower a verdict is here, in one place, under
//! unit tests. A rule only ever lowers `valid` to `unknown` (never touches `invalid`: a
//! violation found is found) and always says why, in the verdict's warnings:
//!
//! - a run stopped before its end (Ctrl-C, an engine failure after the workload
//!   started) read no final ledgers: at best unknown;
//! - faults of the schedule that could not be applied: at best unknown, unless
//!   [`crate::RunConfig::allow_fault_errors`];
//! - a nemesis asked for (not `none`) that applied no fault tested nothing: unknown;
//! - no acknowledged transfer: the run tested nothing: unknown;
//! - a drain that gave up leaves transfers in flight (the checker's `in-flight`), which
//!   are neither lost nor cleared: unknown (the checker says so; the judge names the
//!   drain);
//! - a drain ended by the settle rule judges what stayed uncredited as lost: said, not
//!   lowered;
//! - a connector (Debezium's) whose task stayed FAILED to the end holds what it has not
//!   published: unknown, naming the connector's error.

use std::time::Duration;

use checkers::verdict::{AnomalyKind, Validity, Verdict};
use workloads::system::Backlog;

use crate::schedule::{FaultKind, Played};

/// How the drain after healing ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DrainEnd {
    /// The system drained (or settled) before the drain timeout.
    pub drained: bool,
    /// How long the wait took.
    pub waited: Duration,
    /// It ended by the settle rule: the ledgers had not changed for this long.
    pub settled: Option<Duration>,
    /// What was left when the wait ended (`None`: never read).
    pub backlog: Option<Backlog>,
    /// Connectors whose task was FAILED when the wait ended and stayed so, each named
    /// with its error (read by the run after the wait).
    pub connectors_failed: Vec<String>,
}

/// What the run did, beside its history: everything the judge weighs.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The fault kinds asked for (empty: nemesis `none`).
    pub nemesis: Vec<FaultKind>,
    /// How many faults the schedule drew.
    pub drawn: usize,
    /// What the schedule did.
    pub played: Played,
    /// Judge the run even when faults could not be applied.
    pub allow_fault_errors: bool,
    /// Transfers acknowledged `ok` (`None`: not counted, the run stopped early).
    pub acknowledged: Option<u64>,
    /// How the drain ended (`None`: there was none).
    pub drain: Option<DrainEnd>,
    /// Why the run stopped before its end, when it did: no final ledgers were read.
    pub stopped: Option<String>,
    /// Connectors whose task stayed FAILED to the end, each named with its error.
    pub connectors_failed: Vec<String>,
}

impl Facts {
    /// The facts of a run stopped early for `why`, before its end was recorded.
    pub fn stopped(why: impl Into<String>) -> Facts {
        Facts {
            stopped: Some(why.into()),
            ..Facts::default()
        }
    }
}

/// One thing the judge has to say: why, and whether it caps the verdict at unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    /// The verdict can be at best `unknown`.
    pub caps: bool,
    /// What a person reads.
    pub text: String,
}

impl Reason {
    fn caps(text: String) -> Reason {
        Reason { caps: true, text }
    }

    fn notes(text: String) -> Reason {
        Reason { caps: false, text }
    }
}

/// The final verdict: `checked` (the checker's verdict of the history) with every rule
/// of this module applied, each reason appended to its warnings.
pub fn judge(checked: Verdict, facts: &Facts) -> Verdict {
    let mut verdict = checked;
    for reason in reasons(&verdict, facts) {
        if reason.caps && verdict.valid == Validity::Valid {
            verdict.valid = Validity::Unknown;
        }
        verdict.warnings.push(reason.text);
    }
    verdict
}

/// What each rule has to say about a run, in the order they are applied.
pub fn reasons(checked: &Verdict, facts: &Facts) -> Vec<Reason> {
    [
        stopped(facts),
        fault_errors(facts),
        no_fault(facts),
        no_transfer(facts),
        drain_gave_up(checked, facts),
        settled(facts),
        connector_failed(facts),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A run stopped early read no final ledgers: lost transfers cannot be told apart from
/// ones still on their way.
fn stopped(facts: &Facts) -> Option<Reason> {
    let why = facts.stopped.as_ref()?;
    Some(Reason::caps(format!("{why}: no final ledgers were read")))
}

/// Faults that did not all happen: the run did not test what it was asked to.
fn fault_errors(facts: &Facts) -> Option<Reason> {
    let failed = &facts.played.failed;
    if failed.is_empty() {
        return None;
    }
    let what = format!(
        "{} of {} faults could not be applied",
        failed.len(),
        facts.drawn.max(failed.len())
    );
    Some(if facts.allow_fault_errors {
        Reason::notes(format!(
            "{what}, judged anyway (allow_fault_errors / --allow-fault-errors): {}",
            failed.join("; ")
        ))
    } else {
        Reason::caps(format!(
            "{what}, so the run did not test what it was asked to \
             (allow_fault_errors / --allow-fault-errors judges it anyway): {}",
            failed.join("; ")
        ))
    })
}

/// A nemesis asked for that applied no fault: the run tested nothing under faults.
fn no_fault(facts: &Facts) -> Option<Reason> {
    if facts.nemesis.is_empty() || facts.played.applied > 0 || facts.stopped.is_some() {
        return None;
    }
    let asked: Vec<&str> = facts.nemesis.iter().map(|k| k.name()).collect();
    let why = if facts.drawn == 0 {
        "the schedule drew none: no target the cluster has, or a time limit shorter than \
         the first fault's start"
            .to_string()
    } else {
        format!(
            "{} drawn, none took effect ({} failed)",
            facts.drawn,
            facts.played.failed.len()
        )
    };
    Some(Reason::caps(format!(
        "nemesis {} was asked for but applied no fault ({why}): the run tested nothing \
         under faults (nemesis none asks for a run without faults)",
        asked.join(",")
    )))
}

/// No transfer acknowledged: nothing the checker could vouch for.
fn no_transfer(facts: &Facts) -> Option<Reason> {
    if facts.acknowledged != Some(0) || facts.stopped.is_some() {
        return None;
    }
    Some(Reason::caps(
        "no transfer was acknowledged ok: the run tested nothing (every transfer failed or \
         ended unknown; the history's fail and info ops say why)"
            .to_string(),
    ))
}

/// A drain that gave up: what is still uncredited may yet be credited.
fn drain_gave_up(checked: &Verdict, facts: &Facts) -> Option<Reason> {
    let drain = facts.drain.as_ref().filter(|d| !d.drained)?;
    let left = drain
        .backlog
        .as_ref()
        .map_or_else(|| "a backlog never read".to_string(), ToString::to_string);
    let in_flight = checked.count(AnomalyKind::InFlight);
    Some(if in_flight > 0 {
        Reason::caps(format!(
            "the drain gave up after {:.1?} ({left}): {in_flight} transfers still in flight \
             are neither lost nor cleared (a longer --drain-timeout may tell)",
            drain.waited
        ))
    } else {
        Reason::notes(format!(
            "the drain gave up after {:.1?} ({left}), with no acknowledged transfer left \
             uncredited",
            drain.waited
        ))
    })
}

/// A drain ended by the settle rule: what stayed uncredited is judged lost.
fn settled(facts: &Facts) -> Option<Reason> {
    let drain = facts.drain.as_ref()?;
    let quiet = drain.settled?;
    let uncredited = drain.backlog.as_ref().map_or(0, |b| b.uncredited);
    Some(Reason::notes(format!(
        "the drain ended by the settle rule: after healing, {uncredited} debits stayed \
         neither credited nor parked while the ledgers did not change for {quiet:?}, so \
         they are judged lost (a service whose retries wait longer sets `settle` in its \
         manifest)"
    )))
}

/// A connector left FAILED: what it did not publish is neither delivered nor lost.
fn connector_failed(facts: &Facts) -> Option<Reason> {
    if facts.connectors_failed.is_empty() {
        return None;
    }
    Some(Reason::caps(format!(
        "a connector stayed FAILED to the end of the run ({}): what it did not publish is \
         held, neither delivered nor lost (the history's connect-supervisor ops show its \
         failures and restarts)",
        facts.connectors_failed.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn verdict(valid: Validity) -> Verdict {
        Verdict {
            valid,
            anomalies: BTreeMap::new(),
            counts: BTreeMap::new(),
            omitted: BTreeMap::new(),
            models: BTreeMap::new(),
            ops: 100,
            warnings: Vec::new(),
        }
    }

    /// A run that did what it was asked: faults asked for and applied, transfers
    /// acknowledged, drained.
    fn clean() -> Facts {
        Facts {
            nemesis: vec![FaultKind::Kill],
            drawn: 3,
            played: Played {
                applied: 3,
                ..Played::default()
            },
            acknowledged: Some(40),
            drain: Some(DrainEnd {
                drained: true,
                waited: Duration::from_secs(2),
                ..DrainEnd::default()
            }),
            ..Facts::default()
        }
    }

    fn failed_faults() -> Played {
        Played {
            applied: 2,
            failed: vec!["kill of relay at 3.0 s: no such container".to_string()],
            ..Played::default()
        }
    }

    #[test]
    fn a_run_that_did_what_it_was_asked_keeps_the_checkers_verdict() {
        for valid in [Validity::Valid, Validity::Invalid, Validity::Unknown] {
            let v = judge(verdict(valid), &clean());
            assert_eq!(v.valid, valid);
            assert!(v.warnings.is_empty(), "{:?}", v.warnings);
        }
    }

    #[test]
    fn a_run_without_faults_asked_for_needs_none() {
        let facts = Facts {
            nemesis: Vec::new(),
            drawn: 0,
            played: Played::default(),
            ..clean()
        };
        let v = judge(verdict(Validity::Valid), &facts);
        assert_eq!(v.valid, Validity::Valid, "{:?}", v.warnings);
    }

    #[test]
    fn a_stopped_run_is_at_best_unknown_and_says_why() {
        let v = judge(
            verdict(Validity::Valid),
            &Facts::stopped("interrupted 3.0 s into the run"),
        );
        assert_eq!(v.valid, Validity::Unknown);
        assert_eq!(
            v.warnings,
            ["interrupted 3.0 s into the run: no final ledgers were read"]
        );
        // What the partial history proves stays proven.
        let v = judge(
            verdict(Validity::Invalid),
            &Facts::stopped("healing failed"),
        );
        assert_eq!(v.valid, Validity::Invalid);
    }

    #[test]
    fn faults_that_failed_make_it_unknown_unless_allowed() {
        let facts = Facts {
            played: failed_faults(),
            ..clean()
        };
        let v = judge(verdict(Validity::Valid), &facts);
        assert_eq!(v.valid, Validity::Unknown);
        assert_eq!(v.warnings.len(), 1);
        assert!(v.warnings[0].starts_with("1 of 3 faults could not be applied, so the run"));
        assert!(v.warnings[0].contains("no such container"));
        let allowed = Facts {
            allow_fault_errors: true,
            ..facts
        };
        let v = judge(verdict(Validity::Valid), &allowed);
        assert_eq!(v.valid, Validity::Valid);
        assert!(v.warnings[0].contains("judged anyway"), "{:?}", v.warnings);
        // Never raised: an invalid run stays invalid.
        let facts = Facts {
            played: failed_faults(),
            ..clean()
        };
        assert_eq!(
            judge(verdict(Validity::Invalid), &facts).valid,
            Validity::Invalid
        );
    }

    #[test]
    fn a_nemesis_asked_for_that_applied_nothing_tested_nothing() {
        // No target left (a misspelled --targets), or a time limit too short.
        let facts = Facts {
            nemesis: vec![FaultKind::Kill, FaultKind::Isolate],
            drawn: 0,
            played: Played::default(),
            ..clean()
        };
        let v = judge(verdict(Validity::Valid), &facts);
        assert_eq!(v.valid, Validity::Unknown);
        assert!(
            v.warnings[0].starts_with("nemesis kill,isolate was asked for but applied no fault"),
            "{:?}",
            v.warnings
        );
        assert!(v.warnings[0].contains("drew none"));
        // Drawn, and every one failed: even when fault errors are allowed.
        let facts = Facts {
            drawn: 2,
            played: Played {
                failed: vec!["a".into(), "b".into()],
                ..Played::default()
            },
            allow_fault_errors: true,
            ..clean()
        };
        let v = judge(verdict(Validity::Valid), &facts);
        assert_eq!(v.valid, Validity::Unknown);
        assert!(
            v.warnings
                .iter()
                .any(|w| w.contains("2 drawn, none took effect")),
            "{:?}",
            v.warnings
        );
    }

    #[test]
    fn a_run_with_no_acknowledged_transfer_tested_nothing() {
        let facts = Facts {
            acknowledged: Some(0),
            ..clean()
        };
        let v = judge(verdict(Validity::Valid), &facts);
        assert_eq!(v.valid, Validity::Unknown);
        assert!(v.warnings[0].starts_with("no transfer was acknowledged ok"));
        // One is enough to have tested something.
        let facts = Facts {
            acknowledged: Some(1),
            ..clean()
        };
        assert_eq!(
            judge(verdict(Validity::Valid), &facts).valid,
            Validity::Valid
        );
    }

    #[test]
    fn a_drain_that_gave_up_names_the_transfers_in_flight() {
        let gave_up = DrainEnd {
            drained: false,
            waited: Duration::from_secs(120),
            settled: None,
            backlog: Some(Backlog {
                lag: 3,
                ..Backlog::default()
            }),
            ..DrainEnd::default()
        };
        let facts = Facts {
            drain: Some(gave_up),
            ..clean()
        };
        let mut checked = verdict(Validity::Valid);
        checked.counts.insert("in-flight".to_string(), 2);
        let v = judge(checked, &facts);
        assert_eq!(v.valid, Validity::Unknown);
        assert!(
            v.warnings[0].contains("3 unconsumed messages")
                && v.warnings[0].contains("2 transfers still in flight"),
            "{:?}",
            v.warnings
        );
        // Nothing in flight: said, not lowered.
        let v = judge(verdict(Validity::Valid), &facts);
        assert_eq!(v.valid, Validity::Valid);
        assert!(v.warnings[0].contains("no acknowledged transfer left uncredited"));
    }

    #[test]
    fn a_settled_drain_is_said_not_lowered() {
        let facts = Facts {
            drain: Some(DrainEnd {
                drained: true,
                waited: Duration::from_secs(20),
                settled: Some(Duration::from_secs(15)),
                backlog: Some(Backlog {
                    uncredited: 4,
                    ..Backlog::default()
                }),
                ..DrainEnd::default()
            }),
            ..clean()
        };
        let v = judge(verdict(Validity::Valid), &facts);
        assert_eq!(v.valid, Validity::Valid);
        assert!(v.warnings[0].contains("4 debits stayed neither credited nor parked"));
        assert!(v.warnings[0].contains("15s"));
    }

    #[test]
    fn a_connector_left_failed_is_unknown_naming_its_error() {
        let facts = Facts {
            connectors_failed: vec![
                "connector chaosbank_outbox_a task 0 FAILED: io.debezium.DebeziumException: \
                 slot ahead of offset"
                    .into(),
            ],
            ..clean()
        };
        let v = judge(verdict(Validity::Valid), &facts);
        assert_eq!(v.valid, Validity::Unknown);
        assert_eq!(v.warnings.len(), 1, "{:?}", v.warnings);
        assert!(v.warnings[0].contains("stayed FAILED"), "{:?}", v.warnings);
        assert!(
            v.warnings[0].contains("slot ahead of offset"),
            "{:?}",
            v.warnings
        );
        // A violation found stays found; unknown stays unknown, the error said.
        for valid in [Validity::Invalid, Validity::Unknown] {
            let v = judge(verdict(valid), &facts);
            assert_eq!(v.valid, valid);
            assert!(v.warnings[0].contains("slot ahead of offset"));
        }
        // No failed connector, nothing said.
        assert!(judge(verdict(Validity::Valid), &clean())
            .warnings
            .is_empty());
    }

    #[test]
    fn every_reason_is_kept_in_order() {
        let facts = Facts {
            nemesis: vec![FaultKind::Pause],
            drawn: 1,
            played: Played {
                failed: vec!["pause of kafka: refused".into()],
                ..Played::default()
            },
            acknowledged: Some(0),
            ..clean()
        };
        let r = reasons(&verdict(Validity::Valid), &facts);
        assert_eq!(r.len(), 3, "{r:?}");
        assert!(r.iter().all(|r| r.caps));
        assert!(r[0].text.contains("could not be applied"));
        assert!(r[1].text.contains("applied no fault"));
        assert!(r[2].text.contains("no transfer was acknowledged"));
    }
}
