//! The bank checker: one test per anomaly kind and per completion type.
mod common;

use checkers::verdict::Validity;
use common::*;
use serde_json::{json, Value};

fn start() -> Vec<Value> {
    vec![init(json!({"A/0": 100, "B/0": 100}))]
}

fn with(mut h: Vec<Value>, more: Vec<Value>) -> Vec<Value> {
    h.extend(more);
    h
}

const BOTH: &[(&str, &str, i64)] = &[("t1", "A/0", -5), ("t1", "B/0", 5)];
const DEBIT: &[(&str, &str, i64)] = &[("t1", "A/0", -5)];
const CREDIT: &[(&str, &str, i64)] = &[("t1", "B/0", 5)];

/// A history with one transfer t1 (A/0 → B/0, 5) completed with `ty` (`None`: left
/// open) and ledgers holding `entries`.
fn one(ty: Option<&str>, entries: &[(&str, &str, i64)]) -> checkers::Verdict {
    let mut h = start();
    h.push(transfer(0, "invoke", "t1", "A/0", "B/0", 5));
    if let Some(ty) = ty {
        h.push(transfer(0, ty, "t1", "A/0", "B/0", 5));
    }
    check(&with(h, ledgers(entries)))
}

#[test]
fn ok_applied_once_is_valid() {
    let v = one(Some("ok"), BOTH);
    assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);
    assert!(v.anomalies.is_empty());
}

#[test]
fn ok_debited_never_credited_is_lost() {
    let v = one(Some("ok"), DEBIT);
    assert_eq!(v.valid, Validity::Invalid);
    assert_eq!(ids(&v, "lost"), vec![json!("t1")]);
    assert_eq!(kinds(&v), vec!["lost"]);
    let f = &v.anomalies["lost"][0];
    assert_eq!(
        f.sentence,
        "t1 was acknowledged at op 2 and debited A/0 by 5 (ledger op 3), but B/0 was never \
         credited after the system drained."
    );
    assert_eq!(f.ops, vec![1, 2, 3]);
    assert_eq!(f.entries.len(), 1);
    assert_eq!(f.entries[0].account, "A/0");
    assert_eq!(f.entries[0].amount, -5);
}

#[test]
fn ok_applied_nowhere_is_lost() {
    let v = one(Some("ok"), &[]);
    assert_eq!(ids(&v, "lost"), vec![json!("t1")]);
    assert!(v.anomalies["lost"][0]
        .sentence
        .contains("neither A/0 nor B/0"));
}

#[test]
fn credited_never_debited_is_phantom() {
    for ty in [Some("ok"), Some("info"), None] {
        let v = one(ty, CREDIT);
        assert_eq!(kinds(&v), vec!["phantom"], "{ty:?}");
        assert_eq!(ids(&v, "phantom"), vec![json!("t1")]);
    }
}

#[test]
fn credited_twice_is_duplicated() {
    let v = one(
        Some("ok"),
        &[("t1", "A/0", -5), ("t1", "B/0", 5), ("t1", "B/0", 5)],
    );
    assert_eq!(kinds(&v), vec!["duplicated"]);
    assert_eq!(ids(&v, "duplicated"), vec![json!("t1")]);
    assert!(v.anomalies["duplicated"][0]
        .sentence
        .contains("1 debit and 2 credits"));
    let v = one(
        Some("ok"),
        &[("t1", "A/0", -5), ("t1", "A/0", -5), ("t1", "B/0", 5)],
    );
    assert_eq!(kinds(&v), vec!["duplicated"]);
}

#[test]
fn fail_not_applied_is_valid_and_applied_is_failed_applied() {
    assert_eq!(one(Some("fail"), &[]).valid, Validity::Valid);
    let v = one(Some("fail"), BOTH);
    assert_eq!(kinds(&v), vec!["failed-applied"]);
    assert_eq!(ids(&v, "failed-applied"), vec![json!("t1")]);
    assert!(v.anomalies["failed-applied"][0]
        .sentence
        .contains("was told it failed at op 2"));
    // Applied on one side only: failed-applied and lost.
    let v = one(Some("fail"), DEBIT);
    assert_eq!(kinds(&v), vec!["failed-applied", "lost"]);
}

#[test]
fn info_and_open_are_judged_by_the_ledgers() {
    for ty in [Some("info"), None] {
        assert_eq!(one(ty, BOTH).valid, Validity::Valid, "{ty:?} applied once");
        assert_eq!(one(ty, &[]).valid, Validity::Valid, "{ty:?} not applied");
        let v = one(ty, DEBIT);
        assert_eq!(ids(&v, "lost"), vec![json!("t1")], "{ty:?} half applied");
        assert_eq!(kinds(&v), vec!["lost"]);
    }
    let v = one(None, DEBIT);
    assert!(v.anomalies["lost"][0]
        .sentence
        .contains("was invoked at op 1 and never completed"));
    let v = one(Some("info"), DEBIT);
    assert!(v.anomalies["lost"][0]
        .sentence
        .contains("had an unknown outcome (info at op 2)"));
}

#[test]
fn entry_for_a_transfer_never_invoked_is_unexpected() {
    let v = check(&with(
        start(),
        ledgers(&[("t9", "A/0", -3), ("t9", "B/0", 3)]),
    ));
    assert_eq!(kinds(&v), vec!["unexpected"]);
    assert_eq!(ids(&v, "unexpected"), vec![json!("t9")]);
    assert_eq!(v.anomalies["unexpected"][0].entries.len(), 2);
}

#[test]
fn wrong_amount_or_account_is_amount_mismatch() {
    let v = one(Some("ok"), &[("t1", "A/0", -5), ("t1", "B/0", 6)]);
    assert_eq!(kinds(&v), vec!["amount-mismatch"]);
    let f = &v.anomalies["amount-mismatch"][0];
    assert_eq!(f.transfer, Some(json!("t1")));
    assert_eq!(f.entries.len(), 1);
    assert_eq!(f.entries[0].amount, 6);
    // Credited to the wrong account: a mismatch, and B/0 never got it.
    let v = one(Some("ok"), &[("t1", "A/0", -5), ("t1", "B/1", 5)]);
    assert_eq!(kinds(&v), vec!["amount-mismatch", "lost"]);
}

#[test]
fn final_balance_off_the_ledger_is_ledger_mismatch() {
    let mut h = start();
    h.push(transfer(0, "invoke", "t1", "A/0", "B/0", 5));
    h.push(transfer(0, "ok", "t1", "A/0", "B/0", 5));
    h.push(ledger("A", &[("t1", "A/0", -5)], Some(json!({"A/0": 95}))));
    h.push(ledger("B", &[("t1", "B/0", 5)], Some(json!({"B/0": 104}))));
    let v = check(&h);
    assert_eq!(kinds(&v), vec!["ledger-mismatch", "wrong-total"]);
    let f = &v.anomalies["ledger-mismatch"][0];
    assert_eq!(f.account.as_deref(), Some("B/0"));
    assert_eq!(f.details["expected"], json!(105));
    assert_eq!(f.details["actual"], json!(104));
    assert!(f.sentence.contains("should be 105"), "{}", f.sentence);
    // Right balances: valid.
    h.pop();
    h.push(ledger("B", &[("t1", "B/0", 5)], Some(json!({"B/0": 105}))));
    assert_eq!(check(&h).valid, Validity::Valid);
}

#[test]
fn ledger_split_over_lines_adds_up() {
    let mut h = start();
    h.push(transfer(0, "invoke", "t1", "A/0", "B/0", 5));
    h.push(transfer(0, "ok", "t1", "A/0", "B/0", 5));
    h.push(transfer(1, "invoke", "t2", "B/0", "A/0", 7));
    h.push(transfer(1, "ok", "t2", "B/0", "A/0", 7));
    h.push(ledger("A", &[("t1", "A/0", -5)], None));
    h.push(ledger("B", &[("t1", "B/0", 5)], None));
    h.push(ledger("A", &[("t2", "A/0", 7)], None));
    h.push(op(
        json!("final"),
        "ok",
        "final-ledger",
        json!({"bank": "A", "balances": {"A/0": 102}}),
    ));
    h.push(ledger("B", &[("t2", "B/0", -7)], Some(json!({"B/0": 98}))));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);
}

#[test]
fn reads_wrong_total_negative_unexpected_key_null() {
    let mut h = start();
    for (i, value) in [
        json!({"A/0": 100, "B/0": 100}),           // fine
        json!({"A/0": 100, "B/0": 99}),            // wrong-total
        json!({"A/0": 50}),                        // partial: not summed
        json!({"A/0": -1, "B/0": 201}),            // negative
        json!({"A/0": 100, "B/0": 100, "C/0": 0}), // unexpected-key
        json!({"A/0": null, "B/0": 100}),          // null-balance
    ]
    .into_iter()
    .enumerate()
    {
        h.push(read(i as u64, "invoke", Value::Null));
        h.push(read(i as u64, "ok", value));
    }
    let v = check(&h);
    assert_eq!(v.valid, Validity::Invalid);
    assert_eq!(
        kinds(&v),
        vec!["negative", "null-balance", "unexpected-key", "wrong-total"]
    );
    assert_eq!(v.anomalies["wrong-total"][0].ops, vec![0, 4]);
    assert!(v.anomalies["wrong-total"][0]
        .sentence
        .contains("sums to 199: -1 off"));
    assert_eq!(v.anomalies["negative"][0].ops, vec![8]);
    assert_eq!(
        v.anomalies["unexpected-key"][0].account.as_deref(),
        Some("C/0")
    );
    assert_eq!(v.anomalies["null-balance"][0].ops, vec![12]);
    assert_eq!(v.models["bank"].stats["reads-of-every-account"], 4);
}

#[test]
fn final_balances_are_read_checked_too() {
    let mut h = start();
    h.push(ledger("A", &[], Some(json!({"A/0": 100}))));
    h.push(ledger("B", &[], Some(json!({"B/0": 100, "C/0": 0}))));
    let v = check(&h);
    assert_eq!(kinds(&v), vec!["unexpected-key"]);
}

#[test]
fn dead_lettered_loss_is_parked_and_valid() {
    let mut h = start();
    h.push(transfer(0, "invoke", "t1", "A/0", "B/0", 5));
    h.push(transfer(0, "ok", "t1", "A/0", "B/0", 5));
    h.push(ledger("A", DEBIT, Some(json!({"A/0": 95}))));
    h.push(ledger("B", &[], Some(json!({"B/0": 100}))));
    h.push(dead_letter("t1"));
    let v = check(&h);
    assert_eq!(kinds(&v), vec!["parked"]);
    assert_eq!(v.valid, Validity::Valid);
    assert!(v.anomalies["parked"][0]
        .sentence
        .contains("dead-lettered at op 5 (poison)"));
    // Without the dead letter: lost, and the final total is off.
    h.pop();
    let v = check(&h);
    assert_eq!(kinds(&v), vec!["lost", "wrong-total"]);
}

#[test]
fn jepsen_style_history_gets_read_checks_only() {
    let mut h = vec![init(json!({"0": 10, "1": 10}))];
    h.push(op(
        json!(0),
        "invoke",
        "transfer",
        json!({"from": 0, "to": 1, "amount": 5}),
    ));
    h.push(op(
        json!(0),
        "ok",
        "transfer",
        json!({"from": 0, "to": 1, "amount": 5}),
    ));
    h.push(read(1, "invoke", Value::Null));
    h.push(read(1, "ok", json!({"0": 5, "1": 15})));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Valid, "{:?}", v.models);
    assert_eq!(v.models["bank"].stats["transfers-without-id"], 1);
    h.push(read(1, "invoke", Value::Null));
    h.push(read(1, "ok", json!({"0": 5, "1": 16})));
    assert_eq!(kinds(&check(&h)), vec!["wrong-total"]);
}

#[test]
fn named_actor_single_lines_count() {
    let mut h = start();
    h.push(op(json!("nemesis"), "info", "partition", json!(["n1"])));
    h.push(op(
        json!("final"),
        "ok",
        "transfer",
        json!({"id": "t1", "from": "A/0", "to": "B/0", "amount": 5}),
    ));
    h.extend(ledgers(DEBIT));
    assert_eq!(ids(&check(&h), "lost"), vec![json!("t1")]);
}

#[test]
fn transfers_without_their_banks_ledger_are_unknown() {
    let mut h = start();
    h.push(transfer(0, "invoke", "t1", "A/0", "B/0", 5));
    h.push(transfer(0, "ok", "t1", "A/0", "B/0", 5));
    h.push(ledger("A", DEBIT, None));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Unknown);
    assert!(v.anomalies.is_empty());
}

#[test]
fn nothing_checkable_is_unknown() {
    assert_eq!(check(&[]).valid, Validity::Unknown);
    let v = check(&[
        read(0, "invoke", Value::Null),
        read(0, "ok", json!({"A/0": 1})),
    ]);
    assert_eq!(v.valid, Validity::Unknown);
    let v = check(&[op(json!("nemesis"), "info", "kill", Value::Null)]);
    assert_eq!(v.valid, Validity::Unknown);
    assert!(v.models.is_empty());
}

#[test]
fn huge_balances_do_not_overflow() {
    let big = i64::MAX;
    let h = vec![
        init(json!({"A/0": big, "B/0": big})),
        read(0, "invoke", Value::Null),
        read(0, "ok", json!({"A/0": big, "B/0": big})),
        read(0, "invoke", Value::Null),
        read(0, "ok", json!({"A/0": big, "B/0": i64::MIN})),
    ];
    let v = check(&h);
    assert_eq!(kinds(&v), vec!["negative", "wrong-total"]);
}

#[test]
fn unreadable_values_make_it_unknown_not_valid() {
    let mut h = start();
    h.push(read(0, "invoke", Value::Null));
    h.push(read(0, "ok", json!({"A/0": "lots"})));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Unknown);
    assert_eq!(v.models["bank"].stats["unreadable-ops"], 1);
}

#[test]
fn reused_transfer_id_is_noted() {
    let mut h = start();
    h.push(transfer(0, "invoke", "t1", "A/0", "B/0", 5));
    h.push(transfer(0, "fail", "t1", "A/0", "B/0", 5));
    h.push(transfer(0, "invoke", "t1", "A/0", "B/0", 5));
    h.push(transfer(0, "fail", "t1", "A/0", "B/0", 5));
    h.extend(ledgers(&[]));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Unknown);
}

#[test]
fn ids_of_every_shape_are_told_apart() {
    // Integer ids, prefixed ids and odd ids share the history; `5` and `"5"` differ.
    let mut h = start();
    let all = [
        json!(5),
        json!("5"),
        json!("t5"),
        json!("u5"),
        json!("t05"),
        json!(-5),
        json!("a-long-transfer-id-of-40-characters-here"),
    ];
    for (p, id) in all.iter().enumerate() {
        let v = json!({"id": id, "from": "A/0", "to": "B/0", "amount": 1});
        h.push(op(json!(p), "invoke", "transfer", v.clone()));
        h.push(op(json!(p), "ok", "transfer", v));
    }
    let entry = |id: &Value, account: &str, amount: i64| json!({"transfer": id, "account": account, "amount": amount});
    // Every transfer debited; all but `"5"` credited.
    let a: Vec<Value> = all.iter().map(|id| entry(id, "A/0", -1)).collect();
    let b: Vec<Value> = all
        .iter()
        .filter(|id| **id != json!("5"))
        .map(|id| entry(id, "B/0", 1))
        .collect();
    h.push(op(
        json!("final"),
        "ok",
        "final-ledger",
        json!({"bank": "A", "entries": a}),
    ));
    h.push(op(
        json!("final"),
        "ok",
        "final-ledger",
        json!({"bank": "B", "entries": b}),
    ));
    let v = check(&h);
    assert_eq!(kinds(&v), vec!["lost"]);
    assert_eq!(ids(&v, "lost"), vec![json!("5")]);
}

#[test]
fn far_ids_keep_one_slot_as_the_id_table_grows() {
    // `t100000` comes first, before the table reaches it, then many small ids, then
    // its ledger entries: they must still find the same transfer.
    let mut h = start();
    h.push(transfer(0, "invoke", "t100000", "A/0", "B/0", 1));
    h.push(transfer(0, "ok", "t100000", "A/0", "B/0", 1));
    let mut a = vec![("t100000".to_owned(), "A/0", -1)];
    let mut b = vec![("t100000".to_owned(), "B/0", 1)];
    for i in 0..51_000u64 {
        let id = format!("t{i}");
        h.push(transfer(1, "invoke", &id, "A/0", "B/0", 0));
        h.push(transfer(1, "fail", &id, "A/0", "B/0", 0));
    }
    a.push(("t7".to_owned(), "A/0", 0));
    b.push(("t7".to_owned(), "B/0", 0));
    let a: Vec<(&str, &str, i64)> = a.iter().map(|(t, x, y)| (t.as_str(), *x, *y)).collect();
    let b: Vec<(&str, &str, i64)> = b.iter().map(|(t, x, y)| (t.as_str(), *x, *y)).collect();
    h.push(ledger("A", &a, None));
    h.push(ledger("B", &b, None));
    let v = check(&h);
    // t7 failed yet shows in the ledgers; t100000 is sound.
    assert_eq!(kinds(&v), vec!["failed-applied"]);
    assert_eq!(ids(&v, "failed-applied"), vec![json!("t7")]);
}

#[test]
fn without_init_ledgers_judge_transfers_but_not_balances() {
    let h = vec![
        transfer(0, "invoke", "t1", "A/0", "B/0", 5),
        transfer(0, "ok", "t1", "A/0", "B/0", 5),
        ledger("A", DEBIT, Some(json!({"A/0": 95}))),
        ledger("B", CREDIT, Some(json!({"B/0": 105}))),
    ];
    let v = check(&h);
    assert!(v.anomalies.is_empty(), "{:?}", v.anomalies);
    assert_eq!(v.valid, Validity::Unknown);
    let mut h = h;
    h[3] = ledger("B", &[], Some(json!({"B/0": 105})));
    assert_eq!(kinds(&check(&h)), vec!["lost"]);
}

#[test]
fn failed_transfer_credited_only_is_failed_applied_and_phantom() {
    let v = one(Some("fail"), CREDIT);
    assert_eq!(v.valid, Validity::Invalid);
    assert_eq!(kinds(&v), vec!["failed-applied", "phantom"]);
    assert_eq!(ids(&v, "failed-applied"), vec![json!("t1")]);
    assert_eq!(ids(&v, "phantom"), vec![json!("t1")]);
}

#[test]
fn double_credit_of_a_different_amount_is_duplicated_and_mismatch() {
    let v = one(
        Some("ok"),
        &[("t1", "A/0", -5), ("t1", "B/0", 5), ("t1", "B/0", 6)],
    );
    assert_eq!(kinds(&v), vec!["amount-mismatch", "duplicated"]);
    assert!(v.anomalies["duplicated"][0]
        .sentence
        .contains("1 debit and 2 credits"));
    // Only the odd credit is shown as the mismatch.
    let f = &v.anomalies["amount-mismatch"][0];
    assert_eq!(f.entries.len(), 1);
    assert_eq!(
        (f.entries[0].account.as_str(), f.entries[0].amount),
        ("B/0", 6)
    );
}

#[test]
fn wrong_amount_debit_is_a_mismatch_not_a_loss() {
    let v = one(Some("ok"), &[("t1", "A/0", -6), ("t1", "B/0", 5)]);
    assert_eq!(kinds(&v), vec!["amount-mismatch"]);
    let f = &v.anomalies["amount-mismatch"][0];
    assert_eq!(f.details["debits"], json!(1));
    assert_eq!(f.details["credits"], json!(1));
    assert_eq!(
        (f.entries[0].account.as_str(), f.entries[0].amount),
        ("A/0", -6)
    );
    assert!(f.sentence.contains("-6 on A/0"), "{}", f.sentence);
}

#[test]
fn ledger_entries_before_the_invoke_are_judged_with_it() {
    // The final-ledger lines come first (a hand-written history may order them so):
    // the entries wait for their transfer instead of being unexpected.
    let mut h = start();
    h.extend(ledgers(BOTH));
    h.push(transfer(0, "invoke", "t1", "A/0", "B/0", 5));
    h.push(transfer(0, "ok", "t1", "A/0", "B/0", 5));
    let v = check(&h);
    assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);
    // Early entries are judged like late ones: a second credit is a duplicate, a
    // missing one a loss.
    let mut h = start();
    h.extend(ledgers(&[
        ("t1", "A/0", -5),
        ("t1", "B/0", 5),
        ("t1", "B/0", 5),
    ]));
    h.push(transfer(0, "invoke", "t1", "A/0", "B/0", 5));
    h.push(transfer(0, "ok", "t1", "A/0", "B/0", 5));
    let v = check(&h);
    assert_eq!(kinds(&v), vec!["duplicated"]);
    assert_eq!(v.anomalies["duplicated"][0].entries.len(), 3);
    let mut h = start();
    h.extend(ledgers(DEBIT));
    h.push(transfer(0, "invoke", "t1", "A/0", "B/0", 5));
    h.push(transfer(0, "ok", "t1", "A/0", "B/0", 5));
    assert_eq!(ids(&check(&h), "lost"), vec![json!("t1")]);
}

#[test]
fn connector_supervisor_ops_are_events_not_transfers() {
    // outbox-cdc's supervisor writes a FAILED task and its restart as info ops of its
    // own process, with or without an error: they change no verdict.
    let supervisor = || {
        vec![
            op(
                json!("connect-supervisor"),
                "info",
                "task-failed",
                json!({"connector": "chaosbank_outbox_a", "task": 0, "trace": "x"}),
            ),
            op(
                json!("connect-supervisor"),
                "info",
                "task-restart",
                json!({"connector": "chaosbank_outbox_a", "task": 0, "attempt": 1}),
            ),
            op(
                json!("connect-supervisor"),
                "info",
                "task-left-failed",
                json!({"connector": "chaosbank_outbox_a", "task": 0}),
            ),
        ]
    };
    for (entries, valid) in [(BOTH, Validity::Valid), (DEBIT, Validity::Invalid)] {
        let mut h = start();
        h.push(transfer(0, "invoke", "t1", "A/0", "B/0", 5));
        h.extend(supervisor());
        h.push(transfer(0, "ok", "t1", "A/0", "B/0", 5));
        h.extend(supervisor());
        let v = check(&with(h, ledgers(entries)));
        assert_eq!(v.valid, valid, "{:?}", v.anomalies);
    }
    // Alone, they are nothing checkable.
    assert_eq!(check(&supervisor()).valid, Validity::Unknown);
}
