//! Jepsen's total-queue checker: over the whole history, as multisets, every
//! acknowledged enqueue should be dequeued, and nothing should be dequeued that was not
//! attempted.
//!
//! Per element (compared by its JSON text, object keys sorted):
//! attempts = enqueue invokes, acknowledged = `ok` enqueues, dequeued = `ok` dequeue
//! values and `ok` drain elements. Then `lost` = acknowledged − dequeued, `unexpected` =
//! dequeued of never-attempted elements, `duplicated` = dequeued − attempted (of
//! attempted elements), `recovered` = min(dequeued, attempted) − acknowledged (at
//! least 0), Jepsen's `(multiset/minus ok enqueues)` where `ok` is the intersection of
//! dequeues and attempts. Only `lost` and `unexpected` make a history invalid, as in
//! Jepsen. Findings are kept per kind up to [`crate::verdict::KEEP_MAX`]; the counts
//! are complete.

use crate::capped::{into_result_maps, FindingMap};
use crate::fxhash::FxHashMap;
use crate::history::{Op, OpType, Process};
use crate::verdict::{AnomalyKind, CheckerResult, Finding, Validity};
use crate::Checker;
use serde_json::Value;
use std::collections::BTreeMap;

/// The anomaly kinds the queue model reports.
pub const KINDS: [AnomalyKind; 4] = [
    AnomalyKind::Lost,
    AnomalyKind::Unexpected,
    AnomalyKind::Duplicated,
    AnomalyKind::Recovered,
];

/// Whether a queue anomaly makes the history invalid: `lost` and `unexpected` do,
/// `duplicated` and `recovered` do not (as in Jepsen); kinds of the bank model only
/// are `false`. The one model that tolerates a violation kind
/// ([`AnomalyKind::is_violation`]): `duplicated`, as an at-least-once queue may.
pub fn invalidates(kind: AnomalyKind) -> bool {
    match kind {
        AnomalyKind::Lost | AnomalyKind::Unexpected => true,
        AnomalyKind::Duplicated | AnomalyKind::Recovered => false,
        AnomalyKind::AmountMismatch
        | AnomalyKind::FailedApplied
        | AnomalyKind::InFlight
        | AnomalyKind::LedgerMismatch
        | AnomalyKind::Negative
        | AnomalyKind::NullBalance
        | AnomalyKind::Parked
        | AnomalyKind::Phantom
        | AnomalyKind::UnexpectedKey
        | AnomalyKind::WrongTotal
        | AnomalyKind::AbortedRead
        | AnomalyKind::Duplicate
        | AnomalyKind::InconsistentOffsets
        | AnomalyKind::LostWrite => false,
    }
}

/// How many op indexes an element keeps for its explanation.
const KEEP_OPS: usize = 4;

#[derive(Debug, Default, Clone)]
struct Element {
    attempts: u64,
    acknowledged: u64,
    dequeued: u64,
    attempt_ops: Vec<u64>,
    ack_ops: Vec<u64>,
    dequeue_ops: Vec<u64>,
}

fn keep(v: &mut Vec<u64>, op: u64) {
    if v.len() < KEEP_OPS {
        v.push(op);
    }
}

/// Streaming total-queue checker. Memory grows with distinct elements.
#[derive(Debug, Default)]
pub struct QueueChecker {
    elements: FxHashMap<Box<str>, Element>,
    open: FxHashMap<Process, Box<str>>,
    ops: u64,
    unreadable: u64,
    notes: Vec<String>,
}

/// True for the `f`s the queue model reads.
pub fn is_queue_f(f: &str) -> bool {
    matches!(f, "enqueue" | "dequeue" | "drain")
}

/// The canonical text of a JSON value: parsed and printed again (object keys sorted).
fn canonical(raw: &str) -> Result<Box<str>, serde_json::Error> {
    let v: Value = serde_json::from_str(raw)?;
    Ok(v.to_string().into_boxed_str())
}

impl QueueChecker {
    /// A checker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many ops of the queue model it has seen.
    pub fn relevant_ops(&self) -> u64 {
        self.ops
    }

    fn element(&mut self, key: Box<str>) -> &mut Element {
        self.elements.entry(key).or_default()
    }

    fn unreadable(&mut self, op: &Op, e: impl std::fmt::Display) {
        self.unreadable += 1;
        if self.unreadable <= 10 {
            self.notes.push(format!(
                "op {}: {} value cannot be read: {e}; not checked",
                op.index, op.f
            ));
        }
    }

    fn observe_enqueue(&mut self, op: &Op) {
        let key = match canonical(op.value.get()) {
            Ok(k) => k,
            Err(e) => return self.unreadable(op, e),
        };
        match op.op_type {
            OpType::Invoke => {
                let el = self.element(key.clone());
                el.attempts += 1;
                keep(&mut el.attempt_ops, op.index);
                self.open.insert(op.process.clone(), key);
            }
            t => {
                let key = match self.open.remove(&op.process) {
                    // The completion's value wins when it has one.
                    Some(k) if op.value_is_null() => k,
                    Some(_) => key,
                    None => {
                        // A named actor's lone completion: attempt and completion at once.
                        let el = self.element(key.clone());
                        el.attempts += 1;
                        keep(&mut el.attempt_ops, op.index);
                        key
                    }
                };
                if t == OpType::Ok {
                    let el = self.element(key);
                    el.acknowledged += 1;
                    keep(&mut el.ack_ops, op.index);
                }
            }
        }
    }

    fn dequeued(&mut self, op: &Op, raw: &str) {
        match canonical(raw) {
            Ok(key) => {
                let el = self.element(key);
                el.dequeued += 1;
                keep(&mut el.dequeue_ops, op.index);
            }
            Err(e) => self.unreadable(op, e),
        }
    }

    fn observe_dequeue(&mut self, op: &Op) {
        if op.op_type != OpType::Ok || op.value_is_null() {
            return;
        }
        let raw = op.value.get().to_owned();
        self.dequeued(op, &raw);
    }

    fn observe_drain(&mut self, op: &Op) {
        if op.op_type != OpType::Ok || op.value_is_null() {
            return;
        }
        match op.value_as::<Vec<&serde_json::value::RawValue>>() {
            Ok(list) => {
                for raw in list {
                    self.dequeued(op, raw.get());
                }
            }
            Err(e) => self.unreadable(op, e),
        }
    }
}

impl Checker for QueueChecker {
    fn observe(&mut self, op: &Op) {
        match op.f.as_str() {
            "enqueue" => self.observe_enqueue(op),
            "dequeue" => self.observe_dequeue(op),
            "drain" => self.observe_drain(op),
            _ => return,
        }
        self.ops += 1;
    }

    fn finish(mut self) -> CheckerResult {
        let mut anomalies = FindingMap::new();
        let (mut attempts, mut acked, mut ok, mut lost_n, mut unexpected_n) = (0, 0, 0, 0, 0);
        let (mut dup_n, mut recovered_n) = (0, 0);
        let mut elements: Vec<(Box<str>, Element)> = self.elements.drain().collect();
        elements.sort_by_key(|(_, e)| {
            e.attempt_ops
                .first()
                .or(e.dequeue_ops.first())
                .copied()
                .unwrap_or(0)
        });
        let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
        let times = |n: u64| {
            if n == 1 {
                "once".to_owned()
            } else {
                format!("{n} times")
            }
        };
        for (key, e) in elements {
            attempts += e.attempts;
            acked += e.acknowledged;
            let value: Value = serde_json::from_str(&key).unwrap_or(Value::Null);
            let lost = e.acknowledged.saturating_sub(e.dequeued);
            let unexpected = if e.attempts == 0 { e.dequeued } else { 0 };
            let duplicated = if e.attempts > 0 {
                e.dequeued.saturating_sub(e.attempts)
            } else {
                0
            };
            // Jepsen: ok = dequeues ∩ attempts; recovered = ok − enqueues (acknowledged).
            let okd = e.dequeued.min(e.attempts);
            let recovered = okd.saturating_sub(e.acknowledged);
            ok += okd;
            let mut push = |kind: AnomalyKind, count: u64, sentence: String, ops: Vec<u64>| {
                let mut ops = ops;
                ops.sort_unstable();
                ops.dedup();
                anomalies.entry(kind).or_default().push(
                    Finding::new(sentence, ops)
                        .element(value.clone())
                        .detail("count", count),
                    Some(u128::from(count)),
                );
            };
            if lost > 0 {
                lost_n += lost;
                push(
                    AnomalyKind::Lost,
                    lost,
                    if e.dequeued == 0 {
                        format!(
                            "Element {key} was enqueued and acknowledged {} (op {}), but never dequeued: lost.",
                            times(e.acknowledged),
                            list(&e.ack_ops),
                        )
                    } else {
                        format!(
                            "Element {key} was enqueued and acknowledged {} (op {}), but dequeued only {} (op {}): {lost} lost.",
                            times(e.acknowledged),
                            list(&e.ack_ops),
                            times(e.dequeued),
                            list(&e.dequeue_ops),
                        )
                    },
                    e.ack_ops.clone(),
                );
            }
            if unexpected > 0 {
                unexpected_n += unexpected;
                push(
                    AnomalyKind::Unexpected,
                    unexpected,
                    format!(
                        "Element {key} was dequeued {} (op {}) but never enqueued: unexpected.",
                        times(e.dequeued),
                        list(&e.dequeue_ops)
                    ),
                    e.dequeue_ops.clone(),
                );
            }
            if duplicated > 0 {
                dup_n += duplicated;
                let mut ops = e.attempt_ops.clone();
                ops.extend(&e.dequeue_ops);
                push(
                    AnomalyKind::Duplicated,
                    duplicated,
                    format!(
                        "Element {key} was enqueued {} (op {}) but dequeued {} (op {}): {duplicated} duplicate{}.",
                        times(e.attempts),
                        list(&e.attempt_ops),
                        times(e.dequeued),
                        list(&e.dequeue_ops),
                        if duplicated == 1 { "" } else { "s" }
                    ),
                    ops,
                );
            }
            if recovered > 0 {
                recovered_n += recovered;
                let mut ops = e.attempt_ops.clone();
                ops.extend(&e.dequeue_ops);
                push(
                    AnomalyKind::Recovered,
                    recovered,
                    format!(
                        "Element {key}'s enqueue (op {}) had no acknowledgement, yet it was dequeued (op {}): recovered.",
                        list(&e.attempt_ops),
                        list(&e.dequeue_ops)
                    ),
                    ops,
                );
            }
        }
        let mut stats = BTreeMap::new();
        stats.insert("ops".into(), self.ops);
        stats.insert("attempt-count".into(), attempts);
        stats.insert("acknowledged-count".into(), acked);
        stats.insert("ok-count".into(), ok);
        stats.insert("lost-count".into(), lost_n);
        stats.insert("unexpected-count".into(), unexpected_n);
        stats.insert("duplicated-count".into(), dup_n);
        stats.insert("recovered-count".into(), recovered_n);
        stats.insert("unreadable-ops".into(), self.unreadable);
        let invalid = anomalies
            .iter()
            .any(|(k, v)| invalidates(*k) && v.count() > 0);
        let valid = if invalid {
            Validity::Invalid
        } else if self.unreadable > 0 {
            Validity::Unknown
        } else {
            Validity::Valid
        };
        if self.unreadable > 10 {
            self.notes
                .push(format!("{} unreadable ops in all", self.unreadable));
        }
        let (anomalies, counts) = into_result_maps(anomalies);
        CheckerResult {
            model: "queue".into(),
            valid,
            anomalies,
            counts,
            stats,
            notes: self.notes,
        }
    }
}
