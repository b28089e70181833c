//! The drain report (`f` `drain` by the `final` actor): in a run that did not drain,
//! what would be `lost` is `in-flight` and the verdict is unknown, not invalid.
mod common;

use checkers::compose::{check_ops, check_reader, Model};
use checkers::history::{HistoryError, Op};
use checkers::render::summary;
use checkers::verdict::Validity;
use common::*;
use serde_json::{json, Value};

/// t1 (5) and t2 (3) acknowledged and debited, never credited; t3 (2) applied; t4
/// (4) acknowledged and applied nowhere; then `drain` (if any) and both ledgers with
/// their balances.
fn run(drain_op: Option<Value>) -> Vec<Value> {
    let mut h = vec![init(json!({"A/0": 100, "B/0": 100}))];
    for (p, id, amount) in [(0, "t1", 5), (1, "t2", 3), (2, "t3", 2), (3, "t4", 4)] {
        h.push(transfer(p, "invoke", id, "A/0", "B/0", amount));
        h.push(transfer(p, "ok", id, "A/0", "B/0", amount));
    }
    h.extend(drain_op);
    h.push(ledger(
        "A",
        &[("t1", "A/0", -5), ("t2", "A/0", -3), ("t3", "A/0", -2)],
        Some(json!({"A/0": 90})),
    ));
    h.push(ledger("B", &[("t3", "B/0", 2)], Some(json!({"B/0": 102}))));
    h
}

#[test]
fn undrained_losses_are_in_flight_and_unknown() {
    let v = check(&run(Some(drain(false))));
    assert_eq!(v.valid, Validity::Unknown, "{:#?}", v.anomalies);
    assert_eq!(kinds(&v), vec!["in-flight"]);
    assert_eq!(
        ids(&v, "in-flight"),
        vec![json!("t1"), json!("t2"), json!("t4")]
    );
    let bank = &v.models["bank"];
    assert_eq!(bank.valid, Validity::Unknown);
    assert_eq!(bank.stats["drained"], 0);
    assert!(
        bank.notes
            .iter()
            .any(|n| n.contains("did not drain (op 9)") && n.contains("3 transfers")),
        "{:?}",
        bank.notes
    );
    let f = &v.anomalies["in-flight"][0];
    assert_eq!(
        f.sentence,
        "t1 was acknowledged at op 2 and debited A/0 by 5 (ledger op 10), but B/0 was not \
         credited; the system did not drain (op 9, after waiting 30 s; backlog: lag 2, \
         outbox 0, producing 1), so the credit may still arrive."
    );
    assert_eq!(f.ops, vec![1, 2, 9, 10]);
    assert_eq!(f.entries.len(), 1);
    let nowhere = &v.anomalies["in-flight"][2];
    assert!(
        nowhere.sentence.contains("neither A/0 nor B/0")
            && nowhere.sentence.contains("may still be applied"),
        "{}",
        nowhere.sentence
    );
}

#[test]
fn drained_losses_are_lost() {
    let v = check(&run(Some(drain(true))));
    assert_eq!(v.valid, Validity::Invalid);
    assert_eq!(kinds(&v), vec!["lost", "wrong-total"]);
    assert_eq!(ids(&v, "lost"), vec![json!("t1"), json!("t2"), json!("t4")]);
    assert_eq!(v.models["bank"].stats["drained"], 1);
    // Only the bank model: the drain report is not a queue drain.
    assert_eq!(v.models.keys().collect::<Vec<_>>(), vec!["bank"]);
}

#[test]
fn without_a_drain_op_nothing_changes() {
    // The same run without the report: lost, as before the extension.
    let v = check(&run(None));
    assert_eq!(v.valid, Validity::Invalid);
    assert_eq!(kinds(&v), vec!["lost", "wrong-total"]);
    assert_eq!(ids(&v, "lost"), vec![json!("t1"), json!("t2"), json!("t4")]);
    assert!(!v.models["bank"].stats.contains_key("drained"));
    // The bank tests' one-transfer fixture checks exactly as it did; a drained run
    // only adds its op.
    let base = vec![
        init(json!({"A/0": 100, "B/0": 100})),
        transfer(0, "invoke", "t1", "A/0", "B/0", 5),
        transfer(0, "ok", "t1", "A/0", "B/0", 5),
    ];
    let ledgers = vec![
        ledger("A", &[("t1", "A/0", -5)], None),
        ledger("B", &[], None),
    ];
    let old = check(&[base.clone(), ledgers.clone()].concat());
    let drained = check(&[base, ledgers, vec![drain(true)]].concat());
    assert_eq!(kinds(&old), vec!["lost"]);
    assert_eq!(old.anomalies, drained.anomalies);
    assert_eq!(old.valid, drained.valid);
}

#[test]
fn money_held_in_flight_is_not_a_wrong_total() {
    // Balances that miss even the money held in flight still convict.
    let mut h = run(Some(drain(false)));
    let last = h.len() - 1;
    h[last] = ledger("B", &[("t3", "B/0", 2)], Some(json!({"B/0": 103})));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Invalid);
    assert_eq!(
        kinds(&v),
        vec!["in-flight", "ledger-mismatch", "wrong-total"]
    );
    let w = &v.anomalies["wrong-total"][0];
    assert!(
        w.sentence
            .contains("should sum to 192 less 8 held by in-flight transfers"),
        "{}",
        w.sentence
    );
}

#[test]
fn a_phantom_in_an_undrained_run_still_invalidates() {
    let mut h = run(Some(drain(false)));
    h.insert(9, transfer(4, "invoke", "t5", "A/0", "B/0", 7));
    h.insert(10, transfer(4, "ok", "t5", "A/0", "B/0", 7));
    let last = h.len() - 1;
    h[last] = ledger(
        "B",
        &[("t3", "B/0", 2), ("t5", "B/0", 7)],
        Some(json!({"B/0": 109})),
    );
    let v = check(&h);
    assert_eq!(v.valid, Validity::Invalid);
    assert_eq!(kinds(&v), vec!["in-flight", "phantom", "wrong-total"]);
    assert_eq!(ids(&v, "phantom"), vec![json!("t5")]);
    assert_eq!(
        ids(&v, "in-flight"),
        vec![json!("t1"), json!("t2"), json!("t4")]
    );
}

#[test]
fn a_dead_letter_still_parks_in_an_undrained_run() {
    let mut h = run(Some(drain(false)));
    h.push(dead_letter("t2"));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Unknown);
    assert_eq!(kinds(&v), vec!["in-flight", "parked"]);
    assert_eq!(ids(&v, "parked"), vec![json!("t2")]);
    assert_eq!(ids(&v, "in-flight"), vec![json!("t1"), json!("t4")]);
}

#[test]
fn the_last_drain_op_counts() {
    let mut h = run(Some(drain(true)));
    h.insert(9, drain(false));
    assert_eq!(check(&h).valid, Validity::Invalid);
    let mut h = run(Some(drain(false)));
    h.insert(9, drain(true));
    assert_eq!(check(&h).valid, Validity::Unknown);
}

#[test]
fn in_flight_is_rendered_like_other_kinds() {
    let v = check(&run(Some(drain(false))));
    let text = summary(&v, 10);
    assert!(text.starts_with("UNKNOWN:"), "{text}");
    // Not a violation: on its own line, not under "Anomalies:", its findings still shown.
    assert!(
        text.contains("No anomalies.\nNot violations: 3 in-flight"),
        "{text}"
    );
    assert!(
        text.contains("\nin-flight:\n  - t1 was acknowledged"),
        "{text}"
    );
    let json = serde_json::to_value(&v).expect("serializes");
    assert_eq!(json["valid"], json!("unknown"));
    assert_eq!(json["counts"]["in-flight"], json!(3));
    assert_eq!(json["anomalies"]["in-flight"][0]["transfer"], json!("t1"));
    assert_eq!(json["anomalies"]["in-flight"][0]["debits"], json!(1));
}

fn malformed(value: Value, ty: &str) -> (u64, String) {
    let mut h = run(None);
    h.insert(9, op(json!("final"), ty, "drain", value));
    let text = text(&h);
    let e = check_reader(text.as_bytes(), None).expect_err("a malformed drain op");
    // The same error when checking ops in memory, and with the model named.
    let ops: Vec<Op> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("an op"))
        .collect();
    let e2 = check_ops(ops, Some(Model::Bank)).expect_err("a malformed drain op");
    assert_eq!(e.to_string(), e2.to_string());
    match e {
        HistoryError::Malformed { line, message } => (line, message),
        other => panic!("not a malformed-line error: {other}"),
    }
}

#[test]
fn malformed_drain_ops_are_errors_naming_the_line() {
    for (value, ty, says) in [
        (json!("drained"), "ok", "must be an object"),
        (json!(null), "ok", "must be an object"),
        (json!(true), "ok", "must be an object"),
        (
            json!({"drained": "no"}),
            "ok",
            "\"drained\" must be true or false, not \"no\"",
        ),
        (
            json!({"drained": 0}),
            "ok",
            "\"drained\" must be true or false",
        ),
        (json!({"waited_s": 1.0}), "ok", "has no \"drained\""),
        (
            json!({"drained": false, "waited_s": -1}),
            "ok",
            "\"waited_s\"",
        ),
        (
            json!({"drained": false, "backlog": 3}),
            "ok",
            "\"backlog\" must be an object",
        ),
        (
            json!({"drained": false}),
            "info",
            "must be a single ok line",
        ),
    ] {
        let (line, message) = malformed(value.clone(), ty);
        assert_eq!(line, 10, "{value}");
        assert!(message.contains(says), "{value}: {message}");
    }
}

#[test]
fn a_minimal_report_is_enough_and_queue_drains_are_untouched() {
    let mut h = run(None);
    h.insert(
        9,
        op(
            json!("final"),
            "ok",
            "drain",
            json!({"drained": false, "x": 1}),
        ),
    );
    let v = check(&h);
    assert_eq!(v.valid, Validity::Unknown);
    assert!(v.anomalies["in-flight"][0]
        .sentence
        .contains("(op 9; backlog: not reported)"));
    // A list is a queue drain, by the final actor or anyone.
    let q = vec![
        op(json!(0), "invoke", "enqueue", json!(1)),
        op(json!(0), "ok", "enqueue", json!(1)),
        op(json!("final"), "invoke", "drain", Value::Null),
        op(json!("final"), "ok", "drain", json!([1])),
    ];
    let v = check(&q);
    assert_eq!(v.valid, Validity::Valid, "{:?}", v.models);
    assert_eq!(v.models.keys().collect::<Vec<_>>(), vec!["queue"]);
}
