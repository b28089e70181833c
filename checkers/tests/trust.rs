//! Verdicts a user can trust: what the checker cannot see makes it `unknown`, never
//! `valid` nor a false accusation; and findings stay bounded on any input.
mod common;

use checkers::verdict::{AnomalyKind, Validity, Verdict, KEEP_FIRST, KEEP_LAST, KEEP_MAX};
use common::*;
use serde_json::{json, Value};
use std::str::FromStr;

fn start() -> Vec<Value> {
    vec![init(json!({"A/0": 100, "B/0": 100}))]
}

fn notes(v: &Verdict) -> String {
    v.models["bank"].notes.join("\n")
}

/// A `final-ledger` line with the completeness mark fields given in `mark`.
fn marked(
    bank: &str,
    entries: &[(&str, &str, i64)],
    balances: Option<Value>,
    mark: Value,
) -> Value {
    let mut l = ledger(bank, entries, balances);
    for (k, x) in mark.as_object().expect("an object") {
        l["value"][k] = x.clone();
    }
    l
}

// 1. No final ledger at all.

#[test]
fn acknowledged_transfers_without_any_final_ledger_are_unknown() {
    let mut h = start();
    h.push(transfer(0, "invoke", "t1", "A/0", "B/0", 5));
    h.push(transfer(0, "ok", "t1", "A/0", "B/0", 5));
    h.push(read(1, "invoke", Value::Null));
    h.push(read(1, "ok", json!({"A/0": 95, "B/0": 105})));
    h.push(transfer(0, "invoke", "t2", "B/0", "A/0", 3));
    h.push(transfer(0, "ok", "t2", "B/0", "A/0", 3));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Unknown, "{}", notes(&v));
    assert!(v.anomalies.is_empty());
    assert!(
        notes(&v).contains("2 transfers with an id (2 acknowledged) but no final-ledger line"),
        "{}",
        notes(&v)
    );
    assert_eq!(v.models["bank"].stats["transfers-not-judged"], 2);
    assert_eq!(v.valid.exit_code(), 2);
    // The reads are still checked: a bad one makes it invalid.
    h.push(read(1, "invoke", Value::Null));
    h.push(read(1, "ok", json!({"A/0": 95, "B/0": 106})));
    assert_eq!(check(&h).valid, Validity::Invalid);
}

#[test]
fn reads_alone_or_transfers_without_ids_still_need_no_ledger() {
    let mut h = start();
    h.push(read(1, "invoke", Value::Null));
    h.push(read(1, "ok", json!({"A/0": 100, "B/0": 100})));
    assert_eq!(check(&h).valid, Validity::Valid);
    let t = json!({"from": "A/0", "to": "B/0", "amount": 5});
    h.push(op(json!(0), "invoke", "transfer", t.clone()));
    h.push(op(json!(0), "ok", "transfer", t));
    assert_eq!(check(&h).valid, Validity::Valid);
}

// 2. The completeness mark.

fn one_transfer() -> Vec<Value> {
    let mut h = start();
    h.push(transfer(0, "invoke", "t1", "A/0", "B/0", 5));
    h.push(transfer(0, "ok", "t1", "A/0", "B/0", 5));
    h
}

#[test]
fn a_ledger_never_closed_is_unknown_not_lost() {
    let mut h = one_transfer();
    h.push(marked(
        "A",
        &[("t1", "A/0", -5)],
        Some(json!({"A/0": 95})),
        json!({"complete": true, "entry_count": 1}),
    ));
    // B's first chunk says more follow; the closing one never comes.
    h.push(marked("B", &[], None, json!({"complete": false})));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Unknown, "{:?}", v.anomalies);
    assert!(v.anomalies.is_empty(), "{:?}", v.anomalies);
    assert!(
        notes(&v).contains("bank B's final ledger never got its closing line"),
        "{}",
        notes(&v)
    );
    assert!(notes(&v).contains("1 transfer involves a bank whose final ledger is incomplete"));
    // The closing chunk arrives without the credit: now it is lost.
    h.push(marked(
        "B",
        &[],
        Some(json!({"B/0": 100})),
        json!({"complete": true}),
    ));
    let v = check(&h);
    assert_eq!(kinds(&v), vec!["lost", "wrong-total"]);
}

#[test]
fn a_ledger_whose_entries_do_not_add_up_to_its_count_is_unknown() {
    let mut h = one_transfer();
    h.push(marked(
        "A",
        &[("t1", "A/0", -5)],
        Some(json!({"A/0": 95})),
        json!({"complete": true, "entry_count": 1}),
    ));
    // B says it has 1 entry, but the chunk holding it was lost; its balance shows the
    // credit, so the balance is not held against the missing entry either.
    h.push(marked(
        "B",
        &[],
        Some(json!({"B/0": 105})),
        json!({"complete": true, "entry_count": 1}),
    ));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Unknown, "{:?}", v.anomalies);
    assert!(v.anomalies.is_empty(), "{:?}", v.anomalies);
    assert!(
        notes(&v).contains(
            "bank B's final ledger should hold 1 entries (entry_count, op 4) but its lines hold 0"
        ),
        "{}",
        notes(&v)
    );
    // The count may be on the first chunk and the close on the last; entries add up.
    let mut h = one_transfer();
    h.push(marked(
        "A",
        &[("t1", "A/0", -5)],
        Some(json!({"A/0": 95})),
        json!({"complete": true, "entry_count": 1}),
    ));
    h.push(marked(
        "B",
        &[],
        None,
        json!({"complete": false, "entry_count": 1}),
    ));
    h.push(marked(
        "B",
        &[("t1", "B/0", 5)],
        Some(json!({"B/0": 105})),
        json!({"complete": true}),
    ));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Valid, "{}", notes(&v));
}

#[test]
fn disagreeing_entry_counts_or_a_mark_without_bank_are_unknown() {
    let mut h = one_transfer();
    h.push(marked(
        "A",
        &[("t1", "A/0", -5)],
        None,
        json!({"entry_count": 1}),
    ));
    h.push(marked(
        "B",
        &[("t1", "B/0", 5)],
        None,
        json!({"entry_count": 1}),
    ));
    assert_eq!(check(&h).valid, Validity::Valid);
    h.push(marked("B", &[], None, json!({"entry_count": 2})));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Unknown);
    assert!(
        notes(&v).contains("disagree on its entry_count (1 at op 4, 2 at op 5)"),
        "{}",
        notes(&v)
    );
    // A mark on a line that names no bank cannot be applied.
    let mut h = one_transfer();
    h.extend([
        ledger("A", &[("t1", "A/0", -5)], None),
        ledger("B", &[("t1", "B/0", 5)], None),
    ]);
    h.push(op(
        json!("final"),
        "ok",
        "final-ledger",
        json!({"entries": [], "complete": true}),
    ));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Unknown);
    assert!(notes(&v).contains("names no bank"), "{}", notes(&v));
    // A mark of the wrong type makes the line unreadable.
    let mut h = one_transfer();
    h.push(marked(
        "A",
        &[("t1", "A/0", -5)],
        None,
        json!({"complete": "yes"}),
    ));
    h.push(ledger("B", &[("t1", "B/0", 5)], None));
    assert_eq!(check(&h).valid, Validity::Unknown);
}

#[test]
fn an_incomplete_ledger_still_checks_what_it_holds_and_other_banks() {
    // C is complete and judged (a loss there is found); B is incomplete.
    let mut h = vec![init(json!({"A/0": 100, "B/0": 100, "C/0": 100}))];
    h.push(transfer(0, "invoke", "t1", "A/0", "B/0", 5));
    h.push(transfer(0, "ok", "t1", "A/0", "B/0", 5));
    h.push(transfer(0, "invoke", "t2", "A/0", "C/0", 7));
    h.push(transfer(0, "ok", "t2", "A/0", "C/0", 7));
    h.push(marked(
        "A",
        &[("t1", "A/0", -5), ("t2", "A/0", -7)],
        None,
        json!({"complete": true, "entry_count": 2}),
    ));
    h.push(marked(
        "B",
        &[("x9", "B/0", 1)],
        Some(json!({"B/0": 90})),
        json!({"complete": false}),
    ));
    h.push(marked(
        "C",
        &[],
        None,
        json!({"complete": true, "entry_count": 0}),
    ));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Invalid);
    // t2's credit is missing from a complete ledger; x9 was never invoked; B/0's
    // balance is not compared with B's incomplete entries.
    assert_eq!(kinds(&v), vec!["lost", "unexpected"]);
    assert_eq!(ids(&v, "lost"), vec![json!("t2")]);
    assert_eq!(ids(&v, "unexpected"), vec![json!("x9")]);
}

#[test]
fn histories_without_the_mark_check_as_before() {
    let mut h = one_transfer();
    h.extend([
        ledger("A", &[("t1", "A/0", -5)], None),
        ledger("B", &[], None),
    ]);
    assert_eq!(kinds(&check(&h)), vec!["lost"]);
}

// 3. Ids registered before the rest of the invoke is read; reused ids.

#[test]
fn an_undecodable_invoke_makes_its_id_unknown_and_others_are_judged() {
    let mut h = start();
    let bad = json!({"id": "t1", "from": "A/0", "to": "B/0", "amount": "five"});
    h.push(op(json!(0), "invoke", "transfer", bad.clone()));
    h.push(op(json!(0), "ok", "transfer", bad));
    let no_to = json!({"id": "t3", "from": "A/0", "amount": 1});
    h.push(op(json!(2), "invoke", "transfer", no_to.clone()));
    h.push(op(json!(2), "ok", "transfer", no_to));
    h.push(transfer(1, "invoke", "t2", "A/0", "B/0", 2));
    h.push(transfer(1, "ok", "t2", "A/0", "B/0", 2));
    let entries = [
        ("t1", "A/0", -5),
        ("t1", "B/0", 5),
        ("t3", "A/0", -1),
        ("t3", "B/0", 1),
        ("t2", "A/0", -2),
        ("t2", "B/0", 2),
    ];
    let v = check(&with(h.clone(), &entries));
    assert_eq!(v.valid, Validity::Unknown, "{:?}", v.anomalies);
    assert!(v.anomalies.is_empty(), "{:?}", v.anomalies);
    let n = notes(&v);
    assert!(n.contains("cannot judge 2 transfers"), "{n}");
    assert!(
        n.contains("t1 (op 1: the invoke's value cannot be read"),
        "{n}"
    );
    assert!(n.contains("t3 (op 3:"), "{n}");
    // t2 is still judged: its credit missing is a loss.
    let v = check(&with(h, &entries[..5]));
    assert_eq!(kinds(&v), vec!["lost"]);
    assert_eq!(ids(&v, "lost"), vec![json!("t2")]);
}

fn with(mut h: Vec<Value>, entries: &[(&str, &str, i64)]) -> Vec<Value> {
    h.extend(ledgers(entries));
    h
}

#[test]
fn a_reused_id_is_not_judged_nor_accused() {
    let mut h = start();
    h.push(transfer(0, "invoke", "t1", "A/0", "B/0", 5));
    h.push(transfer(0, "ok", "t1", "A/0", "B/0", 5));
    h.push(transfer(0, "invoke", "t1", "B/0", "A/0", 7));
    h.push(transfer(0, "ok", "t1", "B/0", "A/0", 7));
    h.push(transfer(1, "invoke", "t2", "A/0", "B/0", 1));
    h.push(transfer(1, "ok", "t2", "A/0", "B/0", 1));
    // Both t1s applied; t2 credited only (a phantom).
    let entries = [
        ("t1", "A/0", -5),
        ("t1", "B/0", 5),
        ("t1", "B/0", -7),
        ("t1", "A/0", 7),
        ("t2", "B/0", 1),
    ];
    let v = check(&with(h, &entries));
    assert_eq!(kinds(&v), vec!["phantom"], "{:?}", v.anomalies);
    assert_eq!(ids(&v, "phantom"), vec![json!("t2")]);
    assert!(
        notes(&v).contains("cannot judge 1 transfer, so its ledger entries were not checked: t1 (its id is invoked again at op 3, first at op 1)"),
        "{}",
        notes(&v)
    );
}

// 4. Findings capped per kind, counts complete.

#[test]
fn findings_are_capped_per_kind_and_counts_stay_full() {
    let n = 50_000u64;
    let mut text = String::new();
    text.push_str(&format!("{}\n", init(json!({"A/0": 0, "B/0": 0}))));
    for i in 0..n {
        // One read far below zero, in the middle: the worst.
        let b: i64 = if i == 31_337 { -1_000 } else { -1 };
        text.push_str(&format!("{}\n", read(1, "invoke", Value::Null)));
        text.push_str(&format!("{}\n", read(1, "ok", json!({"A/0": b}))));
    }
    let v = checkers::check_reader(text.as_bytes(), None).expect("usable");
    let kept = &v.anomalies["negative"];
    assert!(kept.len() <= KEEP_MAX, "{} kept", kept.len());
    assert!(kept.len() >= KEEP_FIRST + KEEP_LAST);
    assert_eq!(v.counts["negative"], n as usize);
    assert_eq!(v.count(checkers::AnomalyKind::Negative), n as usize);
    assert_eq!(v.models["bank"].counts["negative"], n as usize);
    assert_eq!(v.omitted["negative"], n as usize - kept.len());
    // First, last and worst are there, in history order.
    assert_eq!(kept[0].ops, vec![2]);
    assert_eq!(kept.last().map(|f| f.ops.clone()), Some(vec![2 * n]));
    assert!(kept.iter().any(|f| f.details["balance"] == json!(-1_000)));
    assert!(kept.windows(2).all(|w| w[0].ops < w[1].ops));
    assert_eq!(v.valid, Validity::Invalid);
    let out = serde_json::to_value(&v).expect("json");
    assert_eq!(out["omitted"]["negative"], json!(n as usize - kept.len()));
    assert_eq!(out["counts"]["negative"], json!(n));
    let text = checkers::render::summary(&v, 3);
    assert!(text.contains(&format!("negative: {n}")), "{text}");
}

#[test]
fn transfer_findings_are_capped_with_the_worst_kept() {
    let n = 200u64;
    let mut h = vec![init(json!({"A/0": 100_000, "B/0": 0}))];
    let mut debits = Vec::new();
    let ids: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let amount = if i == 123 { 999 } else { 1 };
        h.push(transfer(0, "invoke", id, "A/0", "B/0", amount));
        h.push(transfer(0, "ok", id, "A/0", "B/0", amount));
        debits.push((id.as_str(), "A/0", -amount));
    }
    h.push(ledger("A", &debits, None));
    h.push(ledger("B", &[], None));
    let v = check(&h);
    let kept = &v.anomalies["lost"];
    assert_eq!(v.count(checkers::AnomalyKind::Lost), n as usize);
    assert!(kept.len() <= KEEP_MAX);
    assert_eq!(kept[0].transfer, Some(json!("t0")));
    assert_eq!(
        kept.last().and_then(|f| f.transfer.clone()),
        Some(json!("t199"))
    );
    assert!(
        kept.iter().any(|f| f.transfer == Some(json!("t123"))),
        "the worst"
    );
    assert_eq!(v.omitted["lost"], n as usize - kept.len());
    // A small list is kept whole and nothing is said to be omitted.
    let mut small: Vec<Value> = h[..1 + 2 * 3].to_vec();
    small.push(ledger("A", &debits[..3], None));
    small.push(ledger("B", &[], None));
    let v = check(&small);
    assert_eq!(v.anomalies["lost"].len(), 3);
    assert!(v.omitted.is_empty());
    assert!(serde_json::to_value(&v)
        .expect("json")
        .get("omitted")
        .is_none());
}

// 6. Typed kinds.

#[test]
fn anomaly_kinds_keep_their_names_and_order() {
    let names: Vec<&str> = AnomalyKind::ALL.iter().map(|k| k.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "declared in the order of their names");
    for k in AnomalyKind::ALL {
        assert_eq!(AnomalyKind::from_str(k.as_str()), Ok(k));
        assert_eq!(serde_json::to_value(k).expect("json"), json!(k.as_str()));
    }
    let mut by_ord = AnomalyKind::ALL;
    by_ord.sort();
    assert_eq!(by_ord, AnomalyKind::ALL);
    assert_eq!(
        names,
        [
            "aborted-read",
            "amount-mismatch",
            "duplicate",
            "duplicated",
            "failed-applied",
            "in-flight",
            "inconsistent-offsets",
            "ledger-mismatch",
            "lost",
            "lost-write",
            "negative",
            "null-balance",
            "parked",
            "phantom",
            "recovered",
            "unexpected",
            "unexpected-key",
            "wrong-total"
        ]
    );
    assert!(checkers::bank::KINDS
        .iter()
        .all(|k| *k != AnomalyKind::Recovered));
    assert_eq!(checkers::queue::KINDS.len(), 4);
    assert_eq!(checkers::topics::KINDS.len(), 4);
    assert!(checkers::topics::KINDS
        .iter()
        .all(|k| checkers::topics::invalidates(*k) && !checkers::bank::invalidates(*k)));
    assert!(AnomalyKind::from_str("nope").is_err());
}

// Op indexes past 32 bits: the checker keeps a transfer's op indexes in 32 bits. Only a
// history of over 4 294 967 295 ops has them, so the ops are fed to the checker directly.

#[test]
fn op_indexes_past_32_bits_still_judge_and_say_so() {
    use checkers::bank::BankChecker;
    use checkers::history::Op;
    use checkers::Checker;
    let mut h = start();
    h.push(transfer(0, "invoke", "t1", "A/0", "B/0", 5));
    h.push(transfer(0, "ok", "t1", "A/0", "B/0", 5));
    h.extend(ledgers(&[("t1", "A/0", -5)]));
    let judge = |first: u64| {
        let mut c = BankChecker::new();
        for (i, line) in h.iter().enumerate() {
            let mut op: Op = serde_json::from_value(line.clone()).expect("an op");
            op.index = first + i as u64;
            c.observe(&op);
        }
        c.finish()
    };
    let r = judge(5_000_000_000);
    // The verdict does not depend on the indexes: the credit is missing, so it is lost.
    assert_eq!(r.valid, Validity::Invalid);
    assert!(r.anomalies.contains_key("lost"), "{:?}", r.anomalies.keys());
    let said = r.notes.join("\n");
    assert!(said.contains("op indexes past 4294967294"), "{said}");
    // Below 32 bits nothing is said.
    assert!(!judge(0).notes.join("\n").contains("op indexes past"));
}

// Amounts past 32 bits are kept apart from the transfer record, and judged alike.

#[test]
fn amounts_past_32_bits_are_judged_exactly() {
    let big = 5_000_000_000i64;
    let mut h = vec![init(json!({"A/0": 3 * big, "B/0": 0}))];
    for (id, amount) in [("t1", big), ("t2", i64::from(i32::MIN)), ("t3", 7)] {
        h.push(transfer(0, "invoke", id, "A/0", "B/0", amount));
        h.push(transfer(0, "ok", id, "A/0", "B/0", amount));
    }
    let debits = [
        ("t1", "A/0", -big),
        ("t2", "A/0", 2_147_483_648),
        ("t3", "A/0", -7),
    ];
    let mut valid = h.clone();
    valid.extend(ledgers(&[
        debits[0],
        // t2 moves i32::MIN: a debit of −(−2³¹) = +2³¹ and a credit of −2³¹.
        debits[1],
        debits[2],
        ("t1", "B/0", big),
        ("t2", "B/0", i64::from(i32::MIN)),
        ("t3", "B/0", 7),
    ]));
    let v = check(&valid);
    assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);
    // t1's credit is one off: a mismatch on t1 alone, not a loss.
    let mut off = h.clone();
    off.extend(ledgers(&[
        debits[0],
        debits[1],
        debits[2],
        ("t1", "B/0", big - 1),
        ("t2", "B/0", i64::from(i32::MIN)),
        ("t3", "B/0", 7),
    ]));
    let v = check(&off);
    assert!(
        kinds(&v).contains(&"amount-mismatch".to_string()),
        "{:?}",
        kinds(&v)
    );
    assert_eq!(ids(&v, "amount-mismatch"), vec![json!("t1")]);
    assert!(!kinds(&v).contains(&"lost".to_string()), "{:?}", kinds(&v));
}
