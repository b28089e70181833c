//! The history reader, writer and process rules.
mod common;

use checkers::compose::check_reader;
use checkers::history::{HistoryError, HistoryReader, HistoryWriter, Op, OpType, Process};
use checkers::verdict::Validity;
use serde_json::json;

fn read_all(text: &[u8]) -> (Vec<Op>, Option<HistoryError>, Vec<String>) {
    let mut r = HistoryReader::new(text);
    let mut ops = Vec::new();
    let mut err = None;
    for op in &mut r {
        match op {
            Ok(op) => ops.push(op),
            Err(e) => err = Some(e),
        }
    }
    (ops, err, r.take_warnings())
}

fn line_of(e: &HistoryError) -> u64 {
    match e {
        HistoryError::Malformed { line, .. } => *line,
        other => panic!("not a malformed-line error: {other}"),
    }
}

const A: &str = r#"{"index":0,"time":5,"process":0,"type":"invoke","f":"read","value":null}"#;
const B: &str = r#"{"index":1,"time":9,"process":0,"type":"ok","f":"read","value":{"A/0":1},"node":"n1","extra":[1,2]}"#;

#[test]
fn reads_ops_and_keeps_every_field() {
    let text = format!("{A}\n{B}\n");
    let (ops, err, warnings) = read_all(text.as_bytes());
    assert!(err.is_none() && warnings.is_empty());
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[1].op_type, OpType::Ok);
    assert_eq!(ops[1].process, Process::Client(0));
    assert_eq!(ops[1].time, Some(9));
    assert_eq!(ops[1].node.as_deref(), Some("n1"));
    assert_eq!(ops[1].extra.len(), 1);
    assert_eq!(ops[1].extra[0].0, "extra");
    // Written back, a line parses to the same JSON.
    let again = serde_json::to_value(&ops[1]).expect("serializes");
    let orig: serde_json::Value = serde_json::from_str(B).expect("json");
    assert_eq!(again, orig);
}

#[test]
fn cut_short_last_line_is_dropped_with_a_warning() {
    let text = format!("{A}\n{}", &B[..40]);
    let (ops, err, warnings) = read_all(text.as_bytes());
    assert_eq!(ops.len(), 1);
    assert!(err.is_none());
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("line 2"), "{}", warnings[0]);
    // The whole check still works, with the warning passed on.
    let v = check_reader(text.as_bytes(), None).expect("usable");
    assert_eq!(v.warnings.len(), 1);
}

#[test]
fn a_complete_last_line_without_newline_is_kept() {
    let text = format!("{A}\n{B}");
    let (ops, err, warnings) = read_all(text.as_bytes());
    assert_eq!((ops.len(), err.is_none(), warnings.len()), (2, true, 0));
}

#[test]
fn a_bad_line_elsewhere_is_an_error_naming_its_line() {
    for (text, line) in [
        (format!("{A}\n{{\"index\":1,\n{B}\n"), 2),
        (format!("{A}\n{}\n", &B[..40]), 2), // cut short but followed by a newline
        (format!("{A}\nnot json\n"), 2),
        (format!("[1]\n{A}\n"), 1),
        (format!("{A}\n{}\n", B.replace("\"ok\"", "\"done\"")), 2),
        (
            format!("{A}\n{}\n", B.replace("\"process\":0", "\"process\":-1")),
            2,
        ),
        (format!("{A}\n{}\n", B.replace("\"f\":\"read\",", "")), 2),
        (
            format!("{A}\n{}\n", B.replace("\"index\":1", "\"index\":2")),
            2,
        ),
        (
            format!("{A}\n{}\n", B.replace("\"time\":9", "\"time\":4")),
            2,
        ),
        (
            format!(
                "{A}\n{}\n",
                B.replace("\"time\":9", "\"time\":9,\"time\":9")
            ),
            2,
        ),
        (
            format!("{A}\n\n\n{}\n", B.replace("\"index\":1", "\"index\":7")),
            4,
        ),
    ] {
        let (_, err, _) = read_all(text.as_bytes());
        let err = err.unwrap_or_else(|| panic!("no error for {text:?}"));
        assert_eq!(line_of(&err), line, "{text:?}: {err}");
        assert!(err.to_string().starts_with(&format!("line {line}:")));
    }
    let bad_utf8 = [A.as_bytes(), b"\n{\"f\":\"\xff\"}\n"].concat();
    let (_, err, _) = read_all(&bad_utf8);
    assert_eq!(line_of(&err.expect("an error")), 2);
}

#[test]
fn index_and_time_may_be_omitted() {
    let text = "{\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"kill\"}\n\n{\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"start\"}\n";
    let (ops, err, _) = read_all(text.as_bytes());
    assert!(err.is_none());
    assert_eq!(ops.iter().map(|o| o.index).collect::<Vec<_>>(), vec![0, 1]);
    assert!(ops[0].value_is_null());
}

#[test]
fn process_rules_are_enforced() {
    let lines = |ls: &[serde_json::Value]| common::text(ls);
    let inv = |p: u64, f: &str| json!({"process": p, "type": "invoke", "f": f, "value": null});
    let done = |p: u64, t: &str, f: &str| json!({"process": p, "type": t, "f": f, "value": null});
    for (h, line) in [
        (lines(&[done(0, "ok", "read")]), 1),
        (lines(&[inv(0, "read"), inv(0, "read")]), 2),
        (lines(&[inv(0, "read"), done(0, "ok", "transfer")]), 2),
        (
            lines(&[inv(0, "read"), done(0, "ok", "read"), done(0, "ok", "read")]),
            3,
        ),
    ] {
        let err = check_reader(h.as_bytes(), None).expect_err("breaks a rule");
        assert_eq!(line_of(&err), line, "{h}");
    }
    // Reuse after info is accepted: the invoke starts a new operation.
    let h = lines(&[inv(0, "read"), done(0, "info", "read"), inv(0, "read")]);
    let v = check_reader(h.as_bytes(), None).expect("usable");
    assert!(v.warnings.is_empty());
    assert_eq!(v.valid, Validity::Unknown);
}

#[test]
fn writer_stamps_flushes_and_round_trips() {
    struct Counting {
        data: Vec<u8>,
        flushes: usize,
    }
    impl std::io::Write for Counting {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.data.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.flushes += 1;
            Ok(())
        }
    }
    let mut w = HistoryWriter::new(Counting {
        data: Vec::new(),
        flushes: 0,
    });
    let inv = Op::invoke(
        Process::Client(3),
        "transfer",
        &json!({"id": "t1", "from": "A/0", "to": "B/0", "amount": 5}),
    )
    .expect("op")
    .with_node("n1");
    let inv = w.write(inv).expect("written");
    let fail = inv
        .complete(
            OpType::Fail,
            &json!({"id": "t1", "from": "A/0", "to": "B/0", "amount": 5}),
        )
        .expect("op")
        .with_error("timeout")
        .expect("op");
    w.write_at(fail, 0).expect("written");
    w.write(
        Op::new(
            Process::nemesis(),
            OpType::Info,
            "partition",
            &json!(["n1", "n2"]),
        )
        .expect("op"),
    )
    .expect("written");
    assert_eq!(w.ops_written(), 3);
    let out = w.into_inner();
    assert_eq!(out.flushes, 3);
    let text = String::from_utf8(out.data).expect("utf8");
    assert_eq!(text.lines().count(), 3);
    assert!(text.ends_with('\n'));
    let (ops, err, _) = read_all(text.as_bytes());
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        ops.iter().map(|o| o.index).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    let times: Vec<u64> = ops.iter().map(|o| o.time.expect("time")).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(ops[1].op_type, OpType::Fail);
    assert_eq!(ops[1].error.as_ref().map(|e| e.get()), Some("\"timeout\""));
    assert_eq!(ops[1].node.as_deref(), Some("n1"));
    assert_eq!(ops[2].process, Process::Named("nemesis".into()));
}

#[test]
fn no_input_panics() {
    // A few nasty inputs, each with what it must give: an error naming its line, or a
    // verdict (`valid` only for an `init` alone, huge balances and all: nothing happened,
    // nothing is wrong). The fuzz target covers the rest.
    enum Want {
        LineError(u64),
        Verdict(Validity),
    }
    use Want::*;
    let cases: [(&[u8], Want); 10] = [
        (b"", Verdict(Validity::Unknown)),
        (b"\n\n", Verdict(Validity::Unknown)),
        (b"{", Verdict(Validity::Unknown)), // a cut-short last line, dropped
        (b"{}\n", LineError(1)),
        (b"null\n", LineError(1)),
        (b"{\"process\":1e400,\"type\":\"ok\",\"f\":\"x\"}\n", LineError(1)),
        (b"{\"process\":18446744073709551616,\"type\":\"ok\",\"f\":\"x\"}\n", LineError(1)),
        // A negative balance and an entry of a transfer never invoked.
        (b"{\"process\":\"final\",\"type\":\"ok\",\"f\":\"final-ledger\",\"value\":{\"entries\":[{\"transfer\":1,\"account\":2,\"amount\":-9223372036854775808}],\"balances\":{\"2\":-9223372036854775808}}}\n", Verdict(Validity::Invalid)),
        (b"{\"process\":\"setup\",\"type\":\"ok\",\"f\":\"init\",\"value\":{\"balances\":{\"a\":9223372036854775807,\"b\":9223372036854775807}}}\n", Verdict(Validity::Valid)),
        (b"\xef\xbb\xbf{}", LineError(1)),
    ];
    for (text, want) in cases {
        let shown = String::from_utf8_lossy(text);
        match (check_reader(text, None), want) {
            (Err(e), LineError(line)) => {
                assert!(
                    e.to_string().starts_with(&format!("line {line}: ")),
                    "{shown:?}: {e}"
                );
            }
            (Ok(v), Verdict(validity)) => {
                assert_eq!(v.valid, validity, "{shown:?}: {:?}", v.models);
                for (name, kept) in &v.anomalies {
                    assert!(
                        v.count_named(name).is_ok_and(|n| n >= kept.len()),
                        "{shown:?}: {name}"
                    );
                }
                let summary = checkers::render::summary(&v, 5);
                assert!(!summary.trim().is_empty(), "{shown:?}");
            }
            (Err(e), Verdict(_)) => panic!("{shown:?}: wanted a verdict, got {e}"),
            (Ok(v), LineError(_)) => panic!("{shown:?}: wanted a line error, got {:?}", v.valid),
        }
    }
}
