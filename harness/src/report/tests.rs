//! Tests of the report and the JUnit writer on synthetic histories.

use super::{junit, render_html, ReportOptions};
use checkers::compose::check_reader;
use checkers::history::{Op, OpType, Process};
use checkers::synth::{inject, BankHistory, BankParams, Injection};
use checkers::verdict::Verdict;
use serde_json::{json, Value};

/// Milliseconds between two synthetic ops.
const STEP: u64 = 5_000_000;

/// A synthetic bank history with `kinds` injected, a kill/restart and a
/// partition/heal, times 5 ms apart and, when `commit_times`, ledger entries that
/// carry `committed_at`. Returns the JSON Lines text.
fn fixture(ops: u64, kinds: &[Injection], commit_times: bool) -> String {
    let mut h = BankHistory::generate(&BankParams {
        seed: 7,
        ops,
        ..BankParams::default()
    });
    for (i, k) in kinds.iter().enumerate() {
        assert!(inject(&mut h, *k, 11 + i as u64).is_some(), "{k:?}");
    }
    let mut all: Vec<Op> = Vec::new();
    let n = h.final_start();
    let nemesis = |f: &str, v: Value| {
        Op::new(Process::nemesis(), OpType::Info, f, &v).unwrap_or_else(|e| panic!("{e}"))
    };
    let kill = json!({"kind": "kill", "node": "postgres"});
    let cut = json!({"kind": "isolate", "node": "kafka"});
    for op in h.ops() {
        let at = op.index;
        if at == n / 5 {
            all.push(nemesis("kill", kill.clone()));
        } else if at == n / 3 {
            all.push(nemesis("restart", kill.clone()));
        } else if at == n / 2 {
            all.push(nemesis("partition", cut.clone()));
        } else if at == 3 * n / 4 {
            all.push(nemesis("heal", cut.clone()));
        }
        all.push(op);
    }
    let mut text = String::new();
    let mut invoked: std::collections::HashMap<String, u64> = Default::default();
    for (i, mut op) in all.into_iter().enumerate() {
        op.index = i as u64;
        op.time = Some(i as u64 * STEP);
        if op.f == "transfer" && op.op_type == OpType::Invoke {
            if let Ok(v) = op.value_as::<Value>() {
                invoked.insert(v["id"].to_string(), i as u64 * STEP);
            }
        }
        if commit_times && op.f == "final-ledger" {
            let mut v: Value = op.value_as().unwrap_or(Value::Null);
            if let Some(es) = v.get_mut("entries").and_then(Value::as_array_mut) {
                for (j, e) in es.iter_mut().enumerate() {
                    let debit = invoked
                        .get(&e["transfer"].to_string())
                        .copied()
                        .unwrap_or(0)
                        + 2_000_000;
                    let j = j as u64;
                    let lag = 1_000_000 + (j * j % 101) * (j % 5 + 1) * 150_000;
                    let credit = e["amount"].as_i64().unwrap_or(0) > 0;
                    e["committed_at"] = json!(if credit { debit + lag } else { debit });
                }
            }
            op.value = serde_json::value::to_raw_value(&v).unwrap_or_else(|e| panic!("{e}"));
        }
        text.push_str(&serde_json::to_string(&op).unwrap_or_else(|e| panic!("{e}")));
        text.push('\n');
    }
    text
}

fn report(text: &str) -> (Verdict, String) {
    let verdict = check_reader(text.as_bytes(), None).unwrap_or_else(|e| panic!("{e}"));
    let page = render_html(text.as_bytes(), &verdict, &ReportOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    (verdict, page)
}

#[test]
fn shows_verdict_sentences_and_faults() {
    let text = fixture(
        800,
        &[Injection::Lost, Injection::Duplicated, Injection::Parked],
        true,
    );
    let (verdict, page) = report(&text);
    assert_eq!(verdict.valid.as_str(), "invalid");
    assert!(page.contains("id=\"verdict\">INVALID<"), "no verdict badge");
    for (name, list) in &verdict.anomalies {
        assert!(
            page.contains(&format!("id=\"a-{name}\"")),
            "no section for {name}"
        );
        for f in list {
            assert!(
                page.contains(&super::escape(&f.sentence)),
                "missing: {}",
                f.sentence
            );
        }
    }
    assert!(page.contains("kill postgres"), "no kill window label");
    assert!(
        page.contains("partition kafka"),
        "no partition window label"
    );
    assert!(page.contains("card parked"), "parked is not apart");
    // The first violation, with its time: the fixture's lost and duplicated transfers
    // were completed by clients, so it is one of those, at a client's op.
    let at = page
        .split("id=\"first-violation\">First violation: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no first violation in the header"));
    assert!(
        (at.starts_with("lost at ") || at.starts_with("duplicated at "))
            && at.contains(" into the run (op "),
        "{}",
        &at[..at.len().min(120)]
    );
    assert!(page.contains("transfers with both commit times"));
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("<script"));
}

#[test]
fn valid_history_and_missing_commit_times() {
    let (verdict, page) = report(&fixture(300, &[], false));
    assert_eq!(verdict.valid.as_str(), "valid");
    assert!(page.contains("id=\"verdict\">VALID<"));
    assert!(page.contains("Not recorded: the ledger entries carry no commit time"));
    assert!(page.contains("<h2>Anomalies</h2><p>None.</p>"));
    assert!(!page.contains("first-violation"));
}

#[test]
fn the_latency_the_console_prints_is_in_the_panel_too() {
    let text = fixture(300, &[], false);
    let verdict = check_reader(text.as_bytes(), None).unwrap_or_else(|e| panic!("{e}"));
    let options = ReportOptions {
        commit_latency: Some(super::CommitLatency {
            p50_ms: 12.5,
            p99_ms: 480.0,
            max_ms: Some(2_000.0),
            transfers: 1234,
        }),
        ..ReportOptions::default()
    };
    let page = render_html(text.as_bytes(), &verdict, &options).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !page.contains("Not recorded"),
        "the panel says not recorded"
    );
    for want in [
        "<b>1,234</b>",
        "<b>12.5 ms</b><span>p50",
        "<b>480.0 ms</b><span>p99",
        "<b>2.00 s</b><span>max",
    ] {
        assert!(page.contains(want), "no {want:?} in the panel");
    }
}

#[test]
fn parked_transfers_are_not_findings_above_zero_anomalies() {
    let text = fixture(400, &[Injection::Parked], false);
    let verdict = check_reader(text.as_bytes(), None).unwrap_or_else(|e| panic!("{e}"));
    assert!(verdict.count(checkers::AnomalyKind::Parked) > 0);
    assert_eq!(verdict.violations(), 0);
    let console = checkers::render::summary(&verdict, 5);
    assert!(
        console.contains("No anomalies.\nNot violations: 1 parked"),
        "{console}"
    );
    assert!(!console.contains("Anomalies:"), "{console}");
    let (_, page) = report(&text);
    assert!(page.contains("<a class=\"card parked\""), "no parked card");
}

#[test]
fn escapes_html_in_ids_and_values() {
    let evil = "<img src=x onerror=alert(1)>&\"'";
    let text = [
        json!({"process": "setup", "type": "ok", "f": "init", "value": {"balances": {"A/0": 10, "B/0": 0}}}),
        json!({"process": 0, "type": "invoke", "f": "transfer", "time": 1, "value": {"id": evil, "from": "A/0", "to": "B/0", "amount": 5}}),
        json!({"process": 0, "type": "ok", "f": "transfer", "time": 2, "value": {"id": evil, "from": "A/0", "to": "B/0", "amount": 5}}),
        json!({"process": "nemesis", "type": "info", "f": "<kill>", "time": 3, "value": {"node": "<b>pg</b>"}}),
        json!({"process": "final", "type": "ok", "f": "final-ledger", "time": 4, "value": {"bank": "A", "entries": [{"transfer": evil, "account": "A/0", "amount": -5}], "balances": {"A/0": 5}}}),
        json!({"process": "final", "type": "ok", "f": "final-ledger", "time": 5, "value": {"bank": "B", "entries": [], "balances": {"B/0": 0}}}),
    ]
    .iter()
    .map(|v| v.to_string() + "\n")
    .collect::<String>();
    let (verdict, page) = report(&text);
    assert!(verdict.count(checkers::AnomalyKind::Lost) >= 1);
    assert!(!page.contains("<img"), "an id reached the page unescaped");
    assert!(
        !page.contains("<b>pg"),
        "a fault value reached the page unescaped"
    );
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;&amp;"));
    assert!(page.contains("&lt;kill&gt;"));
    let xml = junit::to_xml(&verdict, "x<y");
    assert!(!xml.contains("<img"));
    well_formed(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
}

#[test]
fn junit_fails_invalid_and_passes_valid() {
    let (bad, _) = report(&fixture(400, &[Injection::Lost], false));
    let xml = junit::to_xml(&bad, "bank");
    well_formed(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert!(xml.contains("<testcase name=\"bank\""));
    assert!(xml.contains("<failure type=\"invalid\" message=\"bank model invalid: 1 lost"));
    let first = &bad.anomalies["lost"][0].sentence;
    assert!(xml.contains(&super::escape(first)));
    let (good, _) = report(&fixture(400, &[], false));
    let xml = junit::to_xml(&good, "bank");
    well_formed(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert!(xml.contains("failures=\"0\"") && !xml.contains("<failure"));
}

#[test]
fn big_history_makes_a_small_page() {
    // 200 k ops in a debug test; `report` was measured at 1 M ops as well.
    let text = fixture(200_000, &[Injection::Lost], true);
    let (_, page) = report(&text);
    assert!(page.len() < 1_500_000, "page of {} bytes", page.len());
    assert!(
        page.contains("share of ok, fail and info completions"),
        "not downsampled"
    );
}

/// A small well-formedness check: one root, tags nested and closed, attributes quoted,
/// only the five predefined entities or character references.
fn well_formed(xml: &str) -> Result<(), String> {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .ok_or("no XML declaration")?;
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut rest = body;
    while let Some(lt) = rest.find('<') {
        check_text(&rest[..lt])?;
        let gt = rest[lt..].find('>').ok_or("unclosed tag")? + lt;
        let tag = &rest[lt + 1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            match stack.pop() {
                Some(open) if open == name => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
            continue;
        }
        let empty = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name: String = tag.chars().take_while(|c| !c.is_whitespace()).collect();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!("bad tag name {name:?}"));
        }
        let mut attrs = tag[name.len()..].trim();
        while !attrs.is_empty() {
            let eq = attrs
                .find('=')
                .ok_or(format!("attribute without value in <{name}>"))?;
            let after = attrs[eq + 1..]
                .strip_prefix('"')
                .ok_or("unquoted attribute")?;
            let close = after.find('"').ok_or("unterminated attribute")?;
            check_text(&after[..close])?;
            if after[..close].contains('<') {
                return Err("< in attribute".into());
            }
            attrs = after[close + 1..].trim();
        }
        if stack.is_empty() {
            roots += 1;
        }
        if !empty {
            stack.push(name);
        }
    }
    check_text(rest)?;
    if !stack.is_empty() || roots != 1 {
        return Err(format!("unclosed {stack:?} or {roots} roots"));
    }
    Ok(())
}

fn check_text(t: &str) -> Result<(), String> {
    if t.contains('>') && t.contains("]]>") {
        return Err("]]> in text".into());
    }
    let mut rest = t;
    while let Some(amp) = rest.find('&') {
        let semi = rest[amp..].find(';').ok_or("bare &")? + amp;
        let ent = &rest[amp + 1..semi];
        let ok = matches!(ent, "amp" | "lt" | "gt" | "quot" | "apos")
            || ent
                .strip_prefix('#')
                .is_some_and(|n| n.parse::<u32>().is_ok());
        if !ok {
            return Err(format!("unknown entity &{ent};"));
        }
        rest = &rest[semi + 1..];
    }
    Ok(())
}

#[test]
fn queue_findings_and_unknown_verdicts() {
    let queue = [
        json!({"process": 0, "type": "invoke", "f": "enqueue", "time": 1, "value": "<e1>"}),
        json!({"process": 0, "type": "ok", "f": "enqueue", "time": 2, "value": "<e1>"}),
        json!({"process": 1, "type": "invoke", "f": "drain", "time": 3, "value": null}),
        json!({"process": 1, "type": "ok", "f": "drain", "time": 4, "value": []}),
    ]
    .iter()
    .map(|v| v.to_string() + "\n")
    .collect::<String>();
    let (verdict, page) = report(&queue);
    assert!(
        verdict.count(checkers::AnomalyKind::Lost) == 1,
        "{verdict:?}"
    );
    assert!(page.contains(&super::escape(&verdict.anomalies["lost"][0].sentence)));
    assert!(page.contains("element &quot;&lt;e1&gt;&quot;"));
    let reads = [
        json!({"process": 0, "type": "invoke", "f": "read", "time": 1, "value": null}),
        json!({"process": 0, "type": "ok", "f": "read", "time": 2, "value": {"A/0": 1}}),
    ]
    .iter()
    .map(|v| v.to_string() + "\n")
    .collect::<String>();
    let (verdict, page) = report(&reads);
    assert_eq!(verdict.valid.as_str(), "unknown");
    assert!(page.contains("id=\"verdict\">UNKNOWN<"));
    let xml = junit::to_xml(&verdict, "bank");
    well_formed(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert!(xml.contains("<error type=\"unknown\"") && xml.contains("errors=\"1\""));
}

/// The page's "The faults that matter" section, up to the next `<h2`.
fn section(page: &str) -> &str {
    let from = page
        .find("id=\"faults-that-matter\"")
        .unwrap_or_else(|| panic!("no section"));
    let rest = &page[from..];
    &rest[..rest[1..].find("<h2").map_or(rest.len(), |i| i + 1)]
}

#[test]
fn each_violation_is_tied_to_the_fault_that_started_last_before_it() {
    // Transfer 2 acknowledged at 0.5 s, before any fault; transfer 1 at 6 s, after kafka
    // was killed at 5 s (postgres was killed at 1 s and restarted at 2 s). Neither is
    // ever credited: both lost, and the total read off the final ledgers (9.2 s) is
    // wrong, after the kill of kafka too.
    let lines = [
        r#"{"index":0,"type":"ok","process":"setup","f":"init","value":{"balances":{"A/0":100,"B/0":100}},"time":0}"#,
        r#"{"index":1,"type":"invoke","process":0,"f":"transfer","value":{"id":2,"from":"A/0","to":"B/0","amount":5},"time":100000000}"#,
        r#"{"index":2,"type":"ok","process":0,"f":"transfer","value":{"id":2,"from":"A/0","to":"B/0","amount":5},"time":500000000}"#,
        r#"{"index":3,"type":"info","process":"nemesis","f":"kill","value":{"kind":"kill","node":"postgres"},"time":1000000000}"#,
        r#"{"index":4,"type":"info","process":"nemesis","f":"restart","value":{"kind":"kill","node":"postgres"},"time":2000000000}"#,
        r#"{"index":5,"type":"info","process":"nemesis","f":"kill","value":{"kind":"kill","node":"kafka"},"time":5000000000}"#,
        r#"{"index":6,"type":"invoke","process":1,"f":"transfer","value":{"id":1,"from":"A/0","to":"B/0","amount":10},"time":5500000000}"#,
        r#"{"index":7,"type":"ok","process":1,"f":"transfer","value":{"id":1,"from":"A/0","to":"B/0","amount":10},"time":6000000000}"#,
        r#"{"index":8,"type":"info","process":"nemesis","f":"restart","value":{"kind":"kill","node":"kafka"},"time":7000000000}"#,
        r#"{"index":9,"type":"ok","process":"final","f":"drain","value":{"drained":true},"time":9000000000}"#,
        r#"{"index":10,"type":"ok","process":"final","f":"final-ledger","value":{"bank":"A","balances":{"A/0":85},"entries":[{"transfer":1,"account":"A/0","amount":-10},{"transfer":2,"account":"A/0","amount":-5}],"entry_count":2,"complete":true},"time":9100000000}"#,
        r#"{"index":11,"type":"ok","process":"final","f":"final-ledger","value":{"bank":"B","balances":{"B/0":100},"entries":[],"entry_count":0,"complete":true},"time":9200000000}"#,
    ];
    let text = lines.join("\n");
    let (verdict, page) = report(&text);
    assert_eq!(
        verdict.anomalies["lost"].len(),
        2,
        "{:?}",
        verdict.anomalies
    );
    let s = section(&page);
    // Before any fault: transfer 2 only.
    let before = s
        .split("Before any fault")
        .nth(1)
        .unwrap_or_else(|| panic!("nothing before any fault: {s}"));
    let before = &before[..before.find("<h3").unwrap_or(before.len())];
    assert!(before.contains("— 1 finding<"), "{before}");
    assert!(before.contains("<td>transfer 2</td>"), "{before}");
    // The kill of kafka: transfer 1 and the wrong total.
    let kafka = s
        .split("kill kafka")
        .nth(1)
        .unwrap_or_else(|| panic!("kafka's kill is not there: {s}"));
    assert!(kafka.contains("— 2 findings<"), "{kafka}");
    assert!(kafka.contains("<td>transfer 1</td>"), "{kafka}");
    assert!(kafka.contains("<td>wrong-total</td>"), "{kafka}");
    assert!(!kafka.contains("transfer 2"), "{kafka}");
    // Postgres's kill broke nothing: not listed.
    assert!(!s.contains("kill postgres"), "{s}");
    assert!(s.contains("3 findings to 1 of 2 applied faults"), "{s}");
    // Every link goes to a slice or a list the page has.
    let links: Vec<&str> = s
        .split("href=\"#")
        .skip(1)
        .map(|l| &l[..l.find('"').unwrap_or(0)])
        .collect();
    assert_eq!(links.len(), 3, "{s}");
    for l in links {
        assert!(
            page.contains(&format!("id=\"{l}\"")),
            "a link to nothing: #{l}"
        );
    }
    // With one finding in detail per anomaly, the second lost one links to the list.
    let few = ReportOptions {
        findings_per_anomaly: 1,
        ..ReportOptions::default()
    };
    let page = render_html(text.as_bytes(), &verdict, &few).unwrap_or_else(|e| panic!("{e}"));
    let s = section(&page);
    assert!(s.contains("href=\"#a-lost\""), "{s}");
    assert!(s.contains("href=\"#f-lost-0\""), "{s}");
}

#[test]
fn a_valid_run_says_no_fault_is_tied() {
    let (verdict, page) = report(&fixture(200, &[], false));
    assert_eq!(verdict.valid.as_str(), "valid");
    assert!(
        section(&page).contains("No violation: no fault is tied to a finding."),
        "{}",
        section(&page)
    );
}

/// A CDC run's duplicates and gap: transfer 1 credited twice from two records of one WAL
/// position (a replay), transfer 3 twice from one record (a consumer's re-read), transfer
/// 2 debited and never published (no record in a log that carries positions).
#[test]
fn cdc_records_explain_a_duplicate_and_a_gap_by_their_wal_position() {
    let lines = [
        json!({"process":"setup","type":"ok","f":"init","value":{"balances":{"A/0":100,"B/0":100}}}),
        json!({"process":0,"type":"invoke","f":"transfer","value":{"id":1,"from":"A/0","to":"B/0","amount":5}}),
        json!({"process":0,"type":"ok","f":"transfer","value":{"id":1,"from":"A/0","to":"B/0","amount":5}}),
        json!({"process":0,"type":"invoke","f":"transfer","value":{"id":2,"from":"A/0","to":"B/0","amount":3}}),
        json!({"process":0,"type":"ok","f":"transfer","value":{"id":2,"from":"A/0","to":"B/0","amount":3}}),
        json!({"process":0,"type":"invoke","f":"transfer","value":{"id":3,"from":"A/0","to":"B/0","amount":1}}),
        json!({"process":0,"type":"ok","f":"transfer","value":{"id":3,"from":"A/0","to":"B/0","amount":1}}),
        json!({"process":"final","type":"ok","f":"final-ledger","value":{"bank":"A","entries":[
            {"transfer":1,"account":"A/0","amount":-5},{"transfer":2,"account":"A/0","amount":-3},
            {"transfer":3,"account":"A/0","amount":-1}],
            "balances":{"A/0":91}}}),
        json!({"process":"final","type":"ok","f":"final-ledger","value":{"bank":"B","entries":[
            {"transfer":1,"account":"B/0","amount":5},{"transfer":1,"account":"B/0","amount":5},
            {"transfer":3,"account":"B/0","amount":1},{"transfer":3,"account":"B/0","amount":1}],
            "balances":{"B/0":112}}}),
        json!({"process":"final","type":"ok","f":"topic-log","value":{"topic":"credits-b",
            "partition":0,"isolation":"read_committed","delivery":"at-least-once","feeds":"B",
            "records":[[0,"1"],[1,"1"],[2,"3"]],"lsns":[[0,"0/16B3D48"],[1,"0/16B3D48"],[2,"0/16B3F00"]],
            "complete":true,"end_offset":2}}),
    ];
    let mut text = String::new();
    for (i, mut l) in lines.into_iter().enumerate() {
        l["index"] = json!(i);
        l["time"] = json!(i as u64 * STEP);
        text.push_str(&l.to_string());
        text.push('\n');
    }
    let (verdict, page) = report(&text);
    assert_eq!(
        verdict.valid,
        checkers::verdict::Validity::Invalid,
        "{:?}",
        verdict.anomalies.keys()
    );
    assert!(page.contains("0/16B3D48"), "the LSN is shown");
    assert!(
        page.contains("2 records carry one WAL position (0/16B3D48): one change published 2 times"),
        "the duplicate is explained"
    );
    assert!(
        page.contains("No record of this transfer in the topic logs (credits-b)"),
        "the gap is explained"
    );
    assert!(
        page.contains("One record (credits-b offset 2, LSN 0/16B3F00) was credited more than once: the consumer read it again"),
        "a consumer's re-read is told from a replay"
    );
}
