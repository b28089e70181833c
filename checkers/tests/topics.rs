//! The topics model: Jepsen's Kafka anomalies judged from the final topic logs
//! (`topic-log` ops) and the Kafka records the credits were read from (`read_from`).
mod common;

use checkers::compose::{check_reader, Model};
use checkers::history::HistoryError;
use checkers::verdict::Validity;
use common::*;
use serde_json::{json, Value};

/// A `topic-log` line.
fn log(topic: &str, isolation: &str, extra: Value, records: Value) -> Value {
    let mut v = json!({"topic": topic, "partition": 0, "isolation": isolation,
                       "records": records, "complete": true});
    if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
        m.extend(e);
    }
    op(json!("final"), "ok", "topic-log", v)
}

/// The derived, exactly-once topic of an outbox-eos run, as both reads show it.
fn credits(isolation: &str, records: Value, end: i64) -> Value {
    log(
        "credits-b",
        isolation,
        json!({"delivery": "exactly-once", "source": "transfers-b", "feeds": "B",
               "end_offset": end}),
        records,
    )
}

/// A bank history where t1 and t2 (A/0 → B/0, 5 and 3) are applied once on each side,
/// B's credits read from `credits-b` at offsets `at` (t1, t2).
fn bank(at: (i64, i64)) -> Vec<Value> {
    let mut h = vec![init(json!({"A/0": 100, "B/0": 100}))];
    for (p, id, amount) in [(0, "t1", 5), (1, "t2", 3)] {
        h.push(transfer(p, "invoke", id, "A/0", "B/0", amount));
        h.push(transfer(p, "ok", id, "A/0", "B/0", amount));
    }
    h.push(ledger(
        "A",
        &[("t1", "A/0", -5), ("t2", "A/0", -3)],
        Some(json!({"A/0": 92})),
    ));
    let from = |o: i64| json!({"topic": "credits-b", "partition": 0, "offset": o});
    h.push(op(
        json!("final"),
        "ok",
        "final-ledger",
        json!({"bank": "B", "balances": {"B/0": 108}, "entries": [
            {"transfer": "t1", "account": "B/0", "amount": 5, "read_from": from(at.0)},
            {"transfer": "t2", "account": "B/0", "amount": 3, "read_from": from(at.1)},
        ]}),
    ));
    h
}

/// The relay's topic: t1 and t2 at offsets 0 and 1.
fn source() -> Value {
    log(
        "transfers-b",
        "read_committed",
        json!({"end_offset": 2}),
        json!([[0, "t1"], [1, "t2"]]),
    )
}

/// An exactly-once run: each source record derived once (offsets 0 and 2; 1 and 3 are
/// transaction markers), both reads alike.
fn clean() -> Vec<Value> {
    let mut h = bank((0, 2));
    h.push(source());
    let recs = json!([[0, "t1", 0, 0], [2, "t2", 0, 1]]);
    h.push(credits("read_committed", recs.clone(), 4));
    h.push(credits("read_uncommitted", recs, 4));
    h
}

#[test]
fn an_exactly_once_pipeline_is_valid_in_both_models() {
    let v = check(&clean());
    assert_eq!(
        v.valid,
        Validity::Valid,
        "{:#?} {:#?}",
        v.anomalies,
        v.models
    );
    assert_eq!(v.models["topics"].valid, Validity::Valid);
    assert_eq!(v.models["bank"].valid, Validity::Valid);
    assert_eq!(
        v.models["topics"].stats["credits-checked-for-aborted-reads"],
        2
    );
    assert_eq!(v.models["topics"].stats["topic-partitions"], 2);
}

#[test]
fn a_credit_read_from_an_aborted_transaction_is_an_aborted_read() {
    // t2 was first written at offset 1 in a transaction that aborted, credited from
    // there, then written again at 3 and committed.
    let mut h = bank((0, 1));
    h.push(source());
    h.push(credits(
        "read_committed",
        json!([[0, "t1", 0, 0], [3, "t2", 0, 1]]),
        5,
    ));
    h.push(credits(
        "read_uncommitted",
        json!([[0, "t1", 0, 0], [1, "t2", 0, 1], [3, "t2", 0, 1]]),
        5,
    ));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Invalid);
    assert_eq!(kinds(&v), vec!["aborted-read"]);
    assert_eq!(ids(&v, "aborted-read"), vec![json!("t2")]);
    let s = &v.anomalies["aborted-read"][0].sentence;
    assert!(s.contains("credits-b/0@1") && s.contains("aborted"), "{s}");
    // The money is right: the bank model alone clears it.
    assert_eq!(v.models["bank"].valid, Validity::Valid);
}

#[test]
fn a_credit_past_the_committed_end_is_undecided_not_aborted() {
    let mut h = bank((0, 2));
    h.push(source());
    // The committed read stops at 2 (a transaction still open): offset 2 is undecided.
    h.push(credits("read_committed", json!([[0, "t1", 0, 0]]), 2));
    h.push(credits(
        "read_uncommitted",
        json!([[0, "t1", 0, 0], [2, "t2", 0, 1]]),
        4,
    ));
    let v = check(&h);
    assert_eq!(v.count(checkers::AnomalyKind::AbortedRead), 0);
    assert_eq!(v.models["topics"].valid, Validity::Unknown);
    assert!(v.models["topics"]
        .notes
        .iter()
        .any(|n| n.contains("not yet decided")));
}

#[test]
fn a_topic_read_one_way_is_not_checked_for_aborted_reads() {
    let mut h = bank((0, 1));
    h.push(source());
    h.push(credits(
        "read_committed",
        json!([[0, "t1", 0, 0], [3, "t2", 0, 1]]),
        5,
    ));
    let v = check(&h);
    assert_eq!(v.count(checkers::AnomalyKind::AbortedRead), 0);
    assert_eq!(v.models["topics"].stats["credits-not-checked"], 2);
    assert_eq!(
        v.models["topics"].valid,
        Validity::Valid,
        "{:?}",
        v.models["topics"]
    );
}

#[test]
fn one_source_record_published_twice_is_a_duplicate() {
    let mut h = clean();
    h.truncate(h.len() - 2);
    let recs = json!([[0, "t1", 0, 0], [2, "t2", 0, 1], [4, "t1", 0, 0]]);
    h.push(credits("read_committed", recs.clone(), 6));
    h.push(credits("read_uncommitted", recs, 6));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Invalid);
    assert_eq!(kinds(&v), vec!["duplicate"]);
    let f = &v.anomalies["duplicate"][0];
    assert_eq!(f.transfer, Some(json!("t1")));
    assert_eq!(f.details["offsets"], json!([0, 4]));
    assert_eq!(f.details["count"], json!(2));
    assert!(f.sentence.contains("transfers-b/0@0"), "{}", f.sentence);
}

#[test]
fn a_stage_copying_a_source_duplicate_is_not_duplicating() {
    // The relay published t1 twice (at-least-once); the stage derived each copy once.
    let mut h = bank((0, 2));
    h.push(log(
        "transfers-b",
        "read_committed",
        json!({"end_offset": 3}),
        json!([[0, "t1"], [1, "t2"], [2, "t1"]]),
    ));
    let recs = json!([[0, "t1", 0, 0], [2, "t2", 0, 1], [4, "t1", 0, 2]]);
    h.push(credits("read_committed", recs.clone(), 6));
    h.push(credits("read_uncommitted", recs, 6));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Valid, "{:#?}", v.anomalies);
    // The relay's copy is counted, not convicted.
    assert_eq!(v.models["topics"].stats["redelivered"], 1);
}

#[test]
fn a_source_record_never_derived_is_a_lost_write() {
    let mut h = clean();
    h.truncate(h.len() - 2);
    let recs = json!([[0, "t1", 0, 0]]);
    h.push(credits("read_committed", recs.clone(), 2));
    h.push(credits("read_uncommitted", recs, 2));
    let v = check(&h);
    assert_eq!(
        v.count(checkers::AnomalyKind::LostWrite),
        1,
        "{:#?}",
        v.anomalies
    );
    assert_eq!(ids(&v, "lost-write"), vec![json!("t2")]);
    assert!(v.anomalies["lost-write"][0]
        .sentence
        .contains("transfers-b/0@1"));
}

#[test]
fn an_undrained_run_has_no_lost_writes_only_unknown() {
    let mut h = clean();
    h.truncate(h.len() - 2);
    let recs = json!([[0, "t1", 0, 0]]);
    h.insert(5, drain(false));
    h.push(credits("read_committed", recs.clone(), 2));
    h.push(credits("read_uncommitted", recs, 2));
    let v = check(&h);
    assert_eq!(v.count(checkers::AnomalyKind::LostWrite), 0);
    assert_eq!(v.models["topics"].valid, Validity::Unknown);
}

#[test]
fn an_incomplete_log_is_unknown_not_a_lost_write() {
    let mut h = clean();
    h.truncate(h.len() - 2);
    let mut c = credits("read_committed", json!([[0, "t1", 0, 0]]), 4);
    c["value"]["complete"] = json!(false);
    h.push(c);
    let v = check(&h);
    assert_eq!(v.count(checkers::AnomalyKind::LostWrite), 0);
    assert_eq!(v.models["topics"].valid, Validity::Unknown);
    assert!(v.models["topics"]
        .notes
        .iter()
        .any(|n| n.contains("incomplete")));
}

#[test]
fn two_records_at_one_offset_are_inconsistent_offsets() {
    let mut h = clean();
    h.truncate(h.len() - 1);
    h.push(credits(
        "read_uncommitted",
        json!([[0, "t9", 0, 0], [2, "t2", 0, 1]]),
        4,
    ));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Invalid);
    assert!(
        v.count(checkers::AnomalyKind::InconsistentOffsets) >= 1,
        "{:#?}",
        v.anomalies
    );
    let sentences: Vec<&str> = v.anomalies["inconsistent-offsets"]
        .iter()
        .map(|f| f.sentence.as_str())
        .collect();
    assert!(
        sentences
            .iter()
            .any(|s| s.contains("at offset 0") && s.contains("t9")),
        "{sentences:#?}"
    );
}

#[test]
fn at_least_once_duplicates_are_counted_not_convicted() {
    let h = vec![log(
        "credits-a",
        "read_committed",
        json!({"end_offset": 3}),
        json!([[0, "t1"], [1, "t1"], [2, "t2"]]),
    )];
    let v = check_model(&h, Model::Topics);
    assert_eq!(v.valid, Validity::Valid, "{:#?}", v.anomalies);
    assert_eq!(v.models["topics"].stats["redelivered"], 1);
}

#[test]
fn the_bank_model_named_ignores_topic_logs() {
    let mut h = clean();
    h.push(credits("read_committed", json!([[0, "t9", 0, 0]]), 4));
    let v = check_model(&h, Model::Bank);
    assert!(!v.models.contains_key("topics"));
    assert_eq!(v.valid, Validity::Valid);
    // Without topic logs the topics model does not run at all.
    let v = check(&bank((0, 2)));
    assert!(!v.models.contains_key("topics"));
    assert_eq!(v.valid, Validity::Valid);
}

#[test]
fn malformed_topic_logs_are_errors_naming_the_line() {
    for (bad, says) in [
        (
            json!({"partition": 0, "isolation": "read_committed", "records": []}),
            "\"topic\"",
        ),
        (
            json!({"topic": "x", "partition": 0, "isolation": "dirty", "records": []}),
            "isolation",
        ),
        (
            json!({"topic": "x", "partition": -1, "isolation": "read_committed", "records": []}),
            "partition",
        ),
        (
            json!({"topic": "x", "partition": 0, "isolation": "read_committed", "records": [[0]]}),
            "record 0",
        ),
        (
            json!({"topic": "x", "partition": 0, "isolation": "read_committed"}),
            "records",
        ),
    ] {
        let h = text(&[
            init(json!({"A/0": 1})),
            op(json!("final"), "ok", "topic-log", bad),
        ]);
        match check_reader(h.as_bytes(), None) {
            Err(HistoryError::Malformed { line, message }) => {
                assert_eq!(line, 2);
                assert!(message.contains(says), "{message}");
            }
            other => panic!("expected a malformed line, got {other:?}"),
        }
    }
}
