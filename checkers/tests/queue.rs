//! The total-queue checker, on the cases of Jepsen's `total-queue-test` (and those of
//! its `queue-test` whose answer is the same under total-queue semantics), re-expressed
//! as chaosbank histories.
mod common;

use checkers::compose::Model;
use checkers::history::{Op, OpType, Process};
use checkers::queue::QueueChecker;
use checkers::verdict::{CheckerResult, Validity};
use checkers::Checker;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn inv(p: u64, f: &str, v: Value) -> Value {
    op(json!(p), "invoke", f, v)
}
fn ok(p: u64, f: &str, v: Value) -> Value {
    op(json!(p), "ok", f, v)
}

/// Runs the queue checker alone over the lines.
fn queue(lines: &[Value]) -> CheckerResult {
    let mut c = QueueChecker::new();
    for (i, l) in lines.iter().enumerate() {
        let mut op: Op = serde_json::from_value(l.clone()).expect("an op");
        op.index = i as u64;
        c.observe(&op);
    }
    c.finish()
}

fn elements(r: &CheckerResult, name: &str) -> Vec<(Value, u64)> {
    r.anomalies
        .get(name)
        .map(|l| {
            l.iter()
                .map(|f| {
                    (
                        f.element.clone().unwrap_or(Value::Null),
                        f.details["count"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn counts(r: &CheckerResult) -> BTreeMap<String, u64> {
    r.stats
        .iter()
        .filter(|(k, _)| k.ends_with("-count"))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

fn expect_counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn empty_is_valid() {
    assert_eq!(queue(&[]).valid, Validity::Valid);
}

#[test]
fn sane() {
    let r = queue(&[
        inv(1, "enqueue", json!(1)),
        inv(2, "enqueue", json!(2)),
        ok(2, "enqueue", json!(2)),
        inv(3, "dequeue", json!(1)),
        ok(3, "dequeue", json!(1)),
        inv(3, "dequeue", json!(2)),
        ok(3, "dequeue", json!(2)),
    ]);
    assert_eq!(r.valid, Validity::Valid);
    assert_eq!(elements(&r, "recovered"), vec![(json!(1), 1)]);
    assert!(elements(&r, "lost").is_empty());
    assert!(elements(&r, "unexpected").is_empty());
    assert!(elements(&r, "duplicated").is_empty());
    assert_eq!(
        counts(&r),
        expect_counts(&[
            ("attempt-count", 2),
            ("acknowledged-count", 1),
            ("ok-count", 2),
            ("unexpected-count", 0),
            ("lost-count", 0),
            ("duplicated-count", 0),
            ("recovered-count", 1),
        ])
    );
}

#[test]
fn pathological() {
    let r = queue(&[
        inv(1, "enqueue", json!("hung")),
        inv(2, "enqueue", json!("enqueued")),
        ok(2, "enqueue", json!("enqueued")),
        inv(3, "enqueue", json!("dup")),
        ok(3, "enqueue", json!("dup")),
        inv(4, "dequeue", Value::Null), // never returns
        inv(5, "dequeue", Value::Null),
        ok(5, "dequeue", json!("wtf")),
        inv(6, "dequeue", Value::Null),
        ok(6, "dequeue", json!("dup")),
        inv(7, "dequeue", Value::Null),
        ok(7, "dequeue", json!("dup")),
    ]);
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(elements(&r, "lost"), vec![(json!("enqueued"), 1)]);
    assert_eq!(elements(&r, "unexpected"), vec![(json!("wtf"), 1)]);
    assert_eq!(elements(&r, "duplicated"), vec![(json!("dup"), 1)]);
    assert!(elements(&r, "recovered").is_empty());
    assert_eq!(
        counts(&r),
        expect_counts(&[
            ("attempt-count", 3),
            ("acknowledged-count", 2),
            ("ok-count", 1),
            ("unexpected-count", 1),
            ("lost-count", 1),
            ("duplicated-count", 1),
            ("recovered-count", 0),
        ])
    );
    let lost = &r.anomalies["lost"][0];
    assert_eq!(lost.ops, vec![2]);
    assert!(lost.sentence.contains("never"), "{}", lost.sentence);
}

#[test]
fn possible_enqueue_but_no_dequeue_is_valid() {
    assert_eq!(queue(&[inv(1, "enqueue", json!(1))]).valid, Validity::Valid);
}

#[test]
fn concurrent_enqueue_dequeue_is_valid() {
    let r = queue(&[
        inv(2, "dequeue", Value::Null),
        inv(1, "enqueue", json!(1)),
        ok(2, "dequeue", json!(1)),
    ]);
    assert_eq!(r.valid, Validity::Valid);
}

/// Jepsen writes this as a lone `ok`; a client's completion needs its invoke here.
#[test]
fn dequeue_but_no_enqueue_is_invalid() {
    let r = queue(&[inv(1, "dequeue", Value::Null), ok(1, "dequeue", json!(1))]);
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(elements(&r, "unexpected"), vec![(json!(1), 1)]);
}

#[test]
fn drain_and_failed_and_info_ops() {
    let h = vec![
        inv(1, "enqueue", json!({"k": 1, "a": 2})),
        ok(1, "enqueue", json!({"a": 2, "k": 1})),
        inv(1, "enqueue", json!(7)),
        op(json!(1), "fail", "enqueue", json!(7)),
        inv(1, "enqueue", json!(8)),
        op(json!(1), "info", "enqueue", json!(8)),
        inv(2, "dequeue", Value::Null),
        op(json!(2), "fail", "dequeue", Value::Null),
        inv(2, "drain", Value::Null),
        ok(2, "drain", json!([{"a": 2, "k": 1}, 8])),
    ];
    let v = check_model(&h, Model::Queue);
    assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);
    assert_eq!(v.count(checkers::AnomalyKind::Recovered), 1);
    // Detected without --model too.
    assert_eq!(check(&h).models.keys().collect::<Vec<_>>(), vec!["queue"]);
    // Lose the drained object: lost.
    let mut lossy = h.clone();
    lossy.pop();
    lossy.push(ok(2, "drain", json!([8])));
    let v = check(&lossy);
    assert_eq!(v.valid, Validity::Invalid);
    assert_eq!(
        v.anomalies["lost"][0].element,
        Some(json!({"a": 2, "k": 1}))
    );
}

#[test]
fn op_values_round_trip_into_the_checker() {
    // Ops built with the library's constructors behave like parsed ones.
    let mut c = QueueChecker::new();
    let inv = Op::invoke(Process::Client(0), "enqueue", &5).expect("op");
    c.observe(&inv);
    c.observe(&inv.complete(OpType::Ok, &5).expect("op"));
    let r = c.finish();
    assert_eq!(elements(&r, "lost"), vec![(json!(5), 1)]);
}

#[test]
fn recovered_is_jepsens_when_an_element_repeats() {
    // Element 1 attempted 3 times, acknowledged once, dequeued twice: Jepsen's
    // recovered = min(dequeued, attempted) - acknowledged = 2 - 1 = 1.
    let r = queue(&[
        inv(1, "enqueue", json!(1)),
        ok(1, "enqueue", json!(1)),
        inv(2, "enqueue", json!(1)),
        op(json!(2), "info", "enqueue", json!(1)),
        inv(3, "enqueue", json!(1)),
        op(json!(3), "info", "enqueue", json!(1)),
        inv(4, "dequeue", Value::Null),
        ok(4, "dequeue", json!(1)),
        inv(4, "dequeue", Value::Null),
        ok(4, "dequeue", json!(1)),
    ]);
    assert_eq!(r.valid, Validity::Valid);
    assert_eq!(elements(&r, "recovered"), vec![(json!(1), 1)]);
    assert_eq!(r.stats["recovered-count"], 1);
    // Attempted twice, never acknowledged, dequeued three times: 2 recovered, 1
    // duplicated.
    let r = queue(&[
        inv(1, "enqueue", json!(7)),
        op(json!(1), "info", "enqueue", json!(7)),
        inv(2, "enqueue", json!(7)),
        inv(4, "dequeue", Value::Null),
        ok(4, "dequeue", json!(7)),
        inv(4, "drain", Value::Null),
        ok(4, "drain", json!([7, 7])),
    ]);
    assert_eq!(elements(&r, "recovered"), vec![(json!(7), 2)]);
    assert_eq!(elements(&r, "duplicated"), vec![(json!(7), 1)]);
    // Acknowledged as often as dequeued: nothing recovered.
    let r = queue(&[
        inv(1, "enqueue", json!(2)),
        ok(1, "enqueue", json!(2)),
        inv(2, "enqueue", json!(2)),
        ok(2, "enqueue", json!(2)),
        inv(3, "enqueue", json!(2)),
        op(json!(3), "info", "enqueue", json!(2)),
        inv(4, "drain", Value::Null),
        ok(4, "drain", json!([2, 2])),
    ]);
    assert!(elements(&r, "recovered").is_empty());
}

#[test]
fn queue_findings_are_capped_with_full_counts() {
    let mut lines = Vec::new();
    for e in 0..300u64 {
        lines.push(inv(1, "enqueue", json!(e)));
        lines.push(ok(1, "enqueue", json!(e)));
    }
    let r = queue(&lines);
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.count(checkers::AnomalyKind::Lost), 300);
    assert!(r.anomalies["lost"].len() <= checkers::verdict::KEEP_MAX);
    assert_eq!(r.stats["lost-count"], 300);
}
