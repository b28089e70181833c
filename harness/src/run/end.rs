//! Recording the end: once the system has drained and stopped, its final ledgers, its
//! dead letters and its Kafka topics as they ended go into the history, for the
//! checkers' bank and topic models.

use anyhow::{Context, Result};
use checkers::history::OpType;
use serde_json::Value;
use std::time::Duration;
use workloads::system::{FinalState, System, TopicLog};

use crate::recorder::Recorder;

/// The most entries or records one history line carries (the contract allows a ledger
/// or a log over several lines).
pub const LINE_MAX: usize = 5000;

/// Reads the final state and writes it, then the topic logs, into the history; returns
/// the final state (for the figures).
pub async fn record_end(sys: &dyn System, recorder: &Recorder) -> Result<FinalState> {
    let state = final_state(sys).await?;
    for v in ledger_lines(&state)? {
        recorder.named("final", OpType::Ok, "final-ledger", &v, None)?;
    }
    for letter in &state.dead_letters {
        recorder.named("final", OpType::Ok, "dead-letter", letter, None)?;
    }
    // A log that cannot be read whole is left out, with a warning: a partial log would
    // be judged as if it were the whole.
    match sys.topic_logs().await {
        Ok(logs) => {
            for v in logs.iter().flat_map(topic_log_lines) {
                recorder.named("final", OpType::Ok, "topic-log", &v, None)?;
            }
        }
        Err(e) => tracing::warn!("the topic logs are not in the history: {e:#}"),
    }
    Ok(state)
}

/// Reads the final state, retrying while the databases come back.
async fn final_state(sys: &dyn System) -> Result<FinalState> {
    let mut last = None;
    for _ in 0..20 {
        match sys.final_state().await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(last
        .unwrap_or_else(|| anyhow::anyhow!("no attempt"))
        .context("reading the final ledgers"))
}

/// The `final-ledger` op values of every bank: each ledger split over lines of at most
/// [`LINE_MAX`] entries, each line carrying the bank's entry count and the last marked
/// `complete`, so a ledger cut short reads as "cannot judge", not as lost transfers. The
/// balances ride on the first line. A service's rows with ids chaosbank never sent are
/// kept as written.
pub fn ledger_lines(state: &FinalState) -> Result<Vec<Value>> {
    let mut lines = Vec::new();
    for ledger in &state.ledgers {
        let mut entries: Vec<Value> = ledger
            .entries
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()?;
        for (bank, f) in &state.foreign {
            if *bank == ledger.bank {
                entries.push(serde_json::to_value(f)?);
            }
        }
        if entries.is_empty() {
            let mut v = serde_json::to_value(ledger)?;
            v["complete"] = true.into();
            v["entry_count"] = 0.into();
            lines.push(v);
            continue;
        }
        let chunks: Vec<_> = entries.chunks(LINE_MAX).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut v = serde_json::json!({
                "bank": ledger.bank,
                "entries": chunk,
                "entry_count": entries.len(),
                "complete": i + 1 == chunks.len(),
            });
            if i == 0 {
                v["balances"] = serde_json::to_value(&ledger.balances)
                    .with_context(|| format!("bank {}'s balances", ledger.bank))?;
            }
            lines.push(v);
        }
    }
    Ok(lines)
}

/// The `topic-log` op values of one log (checkers/README.md, "Extensions"): records
/// `[offset, key]`, or `[offset, key, source partition, source offset]`, split over lines
/// of at most [`LINE_MAX`], the last marked `complete`. Records that carry a WAL position
/// (CDC records) are also listed in `lsns`, `[offset, "X/Y"]` with PostgreSQL's LSN
/// notation, beside `records` (docs/history.md: a field older readers ignore).
pub fn topic_log_lines(log: &TopicLog) -> Vec<Value> {
    let records: Vec<Value> = log
        .records
        .iter()
        .map(|r| match r.source {
            Some((p, o)) => serde_json::json!([r.offset, r.key, p, o]),
            None => serde_json::json!([r.offset, r.key]),
        })
        .collect();
    let mut chunks: Vec<&[Value]> = records.chunks(LINE_MAX).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut v = serde_json::json!({
                "topic": log.spec.topic,
                "partition": log.partition,
                "isolation": log.isolation.name(),
                "delivery": log.spec.delivery.name(),
                "records": chunk,
                "complete": i == last,
                "end_offset": log.end_offset,
            });
            if let Some(source) = &log.spec.source {
                v["source"] = source.clone().into();
            }
            if let Some(bank) = log.spec.feeds {
                v["feeds"] = bank.name().into();
            }
            let lsns: Vec<Value> = log.records[i * LINE_MAX..]
                .iter()
                .take(chunk.len())
                .filter_map(|r| r.lsn.map(|l| serde_json::json!([r.offset, lsn_text(l)])))
                .collect();
            if !lsns.is_empty() {
                v["lsns"] = lsns.into();
            }
            v
        })
        .collect()
}

/// A WAL position as PostgreSQL writes it: `X/Y`, the high and low 32 bits in hex.
pub fn lsn_text(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use workloads::bank::{Entry, FinalLedger};

    fn entry(transfer: u64, account: &str, amount: i64) -> Entry {
        Entry {
            transfer,
            account: account.to_string(),
            amount,
            at_us: 0,
            read_from: None,
        }
    }

    #[test]
    fn a_ledger_is_split_into_lines_with_its_count_and_foreign_rows() {
        let a = FinalLedger {
            bank: "A".to_string(),
            entries: (0..LINE_MAX as u64 + 1)
                .map(|t| entry(t, "A/0", -1))
                .collect(),
            balances: [("A/0".to_string(), 99)].into_iter().collect(),
        };
        let b = FinalLedger {
            bank: "B".to_string(),
            entries: Vec::new(),
            balances: [("B/0".to_string(), 100)].into_iter().collect(),
        };
        let state = FinalState {
            ledgers: vec![a, b],
            dead_letters: Vec::new(),
            foreign: vec![(
                "A".to_string(),
                workloads::service::ForeignEntry {
                    transfer: "x9".to_string(),
                    account: "A/0".to_string(),
                    amount: 5,
                },
            )],
        };
        let lines = ledger_lines(&state).unwrap();
        assert_eq!(lines.len(), 3);
        // Bank A: 5001 rows and the foreign one, over two lines, balances on the first.
        assert_eq!(lines[0]["bank"], "A");
        assert_eq!(lines[0]["entries"].as_array().unwrap().len(), LINE_MAX);
        assert_eq!(lines[0]["entry_count"], LINE_MAX + 2);
        assert_eq!(lines[0]["complete"], false);
        assert_eq!(lines[0]["balances"]["A/0"], 99);
        assert_eq!(lines[1]["entries"].as_array().unwrap().len(), 2);
        assert_eq!(lines[1]["entries"][1]["transfer"], "x9");
        assert_eq!(lines[1]["complete"], true);
        assert!(lines[1].get("balances").is_none());
        // Bank B: no rows, one complete line with its balances.
        assert_eq!(lines[2]["bank"], "B");
        assert_eq!(lines[2]["entry_count"], 0);
        assert_eq!(lines[2]["complete"], true);
        assert_eq!(lines[2]["balances"]["B/0"], 100);
    }

    #[test]
    fn a_topic_log_is_split_into_lines_the_last_complete() {
        use workloads::system::{Delivery, TopicRecord, TopicSpec};
        let log = TopicLog {
            spec: TopicSpec {
                topic: "credits-b".into(),
                delivery: Delivery::ExactlyOnce,
                source: Some("transfers-b".into()),
                feeds: Some(workloads::bank::BankId::B),
                both_isolations: true,
            },
            partition: 0,
            isolation: workloads::clients::kafka::Isolation::ReadUncommitted,
            records: (0..12_001)
                .map(|i| TopicRecord {
                    offset: i,
                    key: format!("{}", i * 2),
                    source: (i % 2 == 0).then_some((0, i / 2)),
                    lsn: (i == 5001).then_some(0x1_0000_00AB),
                })
                .collect(),
            end_offset: 12_005,
        };
        let lines = topic_log_lines(&log);
        assert_eq!(lines.len(), 3);
        let sizes: Vec<usize> = lines
            .iter()
            .map(|l| l["records"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, vec![5000, 5000, 2001]);
        let complete: Vec<bool> = lines.iter().map(|l| l["complete"] == true).collect();
        assert_eq!(complete, vec![false, false, true]);
        let first = &lines[0];
        assert_eq!(first["topic"], "credits-b");
        assert_eq!(first["isolation"], "read_uncommitted");
        assert_eq!(first["delivery"], "exactly-once");
        assert_eq!(first["source"], "transfers-b");
        assert_eq!(first["feeds"], "B");
        assert_eq!(first["end_offset"], 12_005);
        assert_eq!(first["records"][0], serde_json::json!([0, "0", 0, 0]));
        assert_eq!(first["records"][1], serde_json::json!([1, "2"]));
        // The one record with a WAL position is listed in its own line's `lsns`.
        assert!(first.get("lsns").is_none());
        assert_eq!(lines[1]["lsns"], serde_json::json!([[5001, "1/AB"]]));
        // An empty log is one complete line with no records.
        let empty = TopicLog {
            records: Vec::new(),
            ..log
        };
        let lines = topic_log_lines(&empty);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["complete"], true);
        assert_eq!(lines[0]["records"], serde_json::json!([]));
    }
}
