//! Helpers to write small histories as JSON and check them.
#![allow(dead_code)]

use checkers::compose::{check_reader, Model};
use checkers::verdict::Verdict;
use serde_json::{json, Value};

/// The history text: one JSON line per value.
pub fn text(lines: &[Value]) -> String {
    lines.iter().map(|v| format!("{v}\n")).collect()
}

/// Checks the lines with the models detected.
pub fn check(lines: &[Value]) -> Verdict {
    check_reader(text(lines).as_bytes(), None).expect("a usable history")
}

/// Checks the lines against one model.
pub fn check_model(lines: &[Value], model: Model) -> Verdict {
    check_reader(text(lines).as_bytes(), Some(model)).expect("a usable history")
}

pub fn op(process: Value, ty: &str, f: &str, value: Value) -> Value {
    json!({"process": process, "type": ty, "f": f, "value": value})
}

pub fn init(balances: Value) -> Value {
    op(
        json!("setup"),
        "ok",
        "init",
        json!({ "balances": balances }),
    )
}

pub fn transfer(p: u64, ty: &str, id: &str, from: &str, to: &str, amount: i64) -> Value {
    op(
        json!(p),
        ty,
        "transfer",
        json!({"id": id, "from": from, "to": to, "amount": amount}),
    )
}

pub fn read(p: u64, ty: &str, value: Value) -> Value {
    op(json!(p), ty, "read", value)
}

pub fn ledger(bank: &str, entries: &[(&str, &str, i64)], balances: Option<Value>) -> Value {
    let entries: Vec<Value> = entries
        .iter()
        .map(|(t, a, x)| json!({"transfer": t, "account": a, "amount": x}))
        .collect();
    let mut v = json!({"bank": bank, "entries": entries});
    if let Some(b) = balances {
        v["balances"] = b;
    }
    op(json!("final"), "ok", "final-ledger", v)
}

pub fn dead_letter(id: &str) -> Value {
    op(
        json!("final"),
        "ok",
        "dead-letter",
        json!({"transfer": id, "reason": "poison"}),
    )
}

/// Transfer ids of the findings under `name`.
pub fn ids(v: &Verdict, name: &str) -> Vec<Value> {
    v.anomalies
        .get(name)
        .map(|l| l.iter().filter_map(|f| f.transfer.clone()).collect())
        .unwrap_or_default()
}

/// Anomaly names that have findings.
pub fn kinds(v: &Verdict) -> Vec<String> {
    v.anomalies.keys().cloned().collect()
}

/// The harness's drain report: `drained` and, when not drained, a backlog left.
pub fn drain(drained: bool) -> Value {
    let backlog = if drained {
        json!({"outbox": 0, "lag": 0, "producing": 0})
    } else {
        json!({"outbox": 0, "lag": 2, "producing": 1})
    };
    op(
        json!("final"),
        "ok",
        "drain",
        json!({"drained": drained, "waited_s": 30.0, "backlog": backlog}),
    )
}

/// A ledger for both banks holding exactly `entries`, without balances.
pub fn ledgers(entries: &[(&str, &str, i64)]) -> Vec<Value> {
    let a: Vec<_> = entries
        .iter()
        .copied()
        .filter(|e| e.1.starts_with("A/"))
        .collect();
    let b: Vec<_> = entries
        .iter()
        .copied()
        .filter(|e| e.1.starts_with("B/"))
        .collect();
    vec![ledger("A", &a, None), ledger("B", &b, None)]
}
