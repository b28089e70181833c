//! Checking and writing: the history checked, the verdict judged ([`crate::run::judge`]),
//! the figures measured, and `verdict.json`, `report.html` and `<out>/latest` written
//! beside the history. Also the verdict of a run stopped before its end
//! ([`partial_verdict`]): the history so far, checked and judged.

use anyhow::{Context, Result};
use checkers::verdict::Verdict;
use std::collections::{HashMap, HashSet};
use std::io::BufReader;
use std::path::Path;
use std::time::Duration;
use workloads::system::FinalState;

use crate::clients::Counts;
use crate::cluster::Cluster;
use crate::config::RunConfig;
use crate::outcome::Figures;
use crate::run::judge::{self, DrainEnd, Facts};

/// The checkers' verdict of the history at `path`.
pub fn check(path: &Path) -> Result<Verdict> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    checkers::check_reader(BufReader::new(file), None).context("checking the history")
}

/// Checks and judges the history of a run stopped early for `why` (Ctrl-C, an engine
/// failure) into `verdict.json`, at best unknown: a run cut short cannot vouch for
/// anything. Failing is logged, never fatal: the run already failed.
pub fn partial_verdict(dir: &Path, why: &str) -> Option<Verdict> {
    let history = dir.join("history.jsonl");
    if !history.is_file() {
        return None;
    }
    let verdict = match check(&history) {
        Ok(v) => judge::judge(v, &Facts::stopped(why)),
        Err(e) => {
            tracing::warn!("checking the partial history: {e:#}");
            return None;
        }
    };
    let out = serde_json::json!({ "verdict": verdict, "interrupted": why });
    if let Err(e) = write_json(&dir.join("verdict.json"), &out) {
        tracing::warn!("{e:#}");
    }
    Some(verdict)
}

/// Writes `verdict.json`: what is under test, the seed, the verdict, the drain and the
/// figures.
pub fn write_verdict(
    dir: &Path,
    name: &str,
    seed: u64,
    verdict: &Verdict,
    drain: &DrainEnd,
    figures: &Figures,
) -> Result<()> {
    let out = serde_json::json!({
        "system": name,
        "seed": seed,
        "verdict": verdict,
        "drained": drain.drained,
        "drain_wait_s": drain.waited.as_secs_f64(),
        "figures": figures,
    });
    write_json(&dir.join("verdict.json"), &out)
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes `report.html` beside the history and points `<out>/latest` at the run. Either
/// failing is logged, never fatal: the history and verdict are already on disk.
pub fn write_report(dir: &Path, history: &Path, verdict: &Verdict, cfg: &RunConfig, name: &str) {
    let options = crate::report::ReportOptions {
        title: format!("{name} seed {}", cfg.seed),
        ..Default::default()
    };
    let html = dir.join("report.html");
    if let Err(e) = crate::report::write_html_with(history, verdict, &html, &options) {
        tracing::warn!("could not write {}: {e}", html.display());
    }
    let latest = cfg.out.join("latest");
    let target = dir.strip_prefix(&cfg.out).unwrap_or(dir);
    let _ = std::fs::remove_file(&latest);
    #[cfg(unix)]
    if let Err(e) = std::os::unix::fs::symlink(target, &latest) {
        tracing::warn!("could not point {} at the run: {e}", latest.display());
    }
}

/// The raw measurements asked for (pgbench TPS, the broker's message rate); one that
/// fails is logged and left out.
pub async fn measure(cfg: &RunConfig, cluster: &Cluster) -> (Option<f64>, Option<f64>) {
    let pgbench = if cfg.pgbench {
        crate::measure::pgbench(cluster)
            .await
            .map_err(|e| tracing::warn!("pgbench: {e:#}"))
            .ok()
    } else {
        None
    };
    let broker = if cfg.broker_rate {
        crate::measure::broker_rate(cluster)
            .await
            .map_err(|e| tracing::warn!("broker rate: {e:#}"))
            .ok()
    } else {
        None
    };
    (pgbench, broker)
}

/// The run's figures from the workload's counts, how long it ran, the final ledgers and
/// the raw measurements.
pub fn figures(
    counts: &Counts,
    workload_time: Duration,
    state: &FinalState,
    (pgbench_tps, broker_msgs_per_s): (Option<f64>, Option<f64>),
    cluster_ready: Duration,
) -> Figures {
    let (p50, p99, max, completed) = latencies(state);
    Figures {
        transfers_ok: counts.ok,
        transfers_fail: counts.fail,
        transfers_info: counts.info,
        reads_ok: counts.reads_ok,
        throughput: counts.ok as f64 / workload_time.as_secs_f64().max(1e-9),
        cross_bank_completed: completed,
        latency_p50_ms: p50,
        latency_p99_ms: p99,
        latency_max_ms: max,
        pgbench_tps,
        broker_msgs_per_s,
        cluster_ready_s: Some(cluster_ready.as_secs_f64()),
    }
}

/// Debit→credit latency of cross-bank transfers applied once on each side: (p50, p99,
/// max) in milliseconds, and how many there were.
fn latencies(state: &FinalState) -> (Option<f64>, Option<f64>, Option<f64>, usize) {
    let mut sides: HashMap<u64, (Option<i64>, Option<i64>, bool)> = HashMap::new();
    for ledger in &state.ledgers {
        for e in &ledger.entries {
            let s = sides.entry(e.transfer).or_insert((None, None, false));
            if e.amount < 0 {
                s.2 |= s.0.is_some();
                s.0 = Some(e.at_us);
            } else {
                s.2 |= s.1.is_some();
                s.1 = Some(e.at_us);
            }
        }
    }
    // Local transfers write both rows in one bank: tell them apart by bank.
    let local: HashSet<u64> = state
        .ledgers
        .iter()
        .flat_map(|l| {
            let mut per: HashMap<u64, u8> = HashMap::new();
            for e in &l.entries {
                *per.entry(e.transfer).or_default() += 1;
            }
            per.into_iter().filter(|(_, n)| *n >= 2).map(|(t, _)| t)
        })
        .collect();
    let pairs: Vec<(i64, i64)> = sides
        .iter()
        .filter(|(t, _)| !local.contains(t))
        .filter_map(|(_, s)| match s {
            (Some(d), Some(c), false) => Some((*d, *c)),
            _ => None,
        })
        .collect();
    // A service's ledger rows carry no commit time (the contract's table has none).
    let mut ms: Vec<f64> = pairs
        .iter()
        .filter(|(d, c)| *d > 0 && *c > 0)
        .map(|(d, c)| (c - d) as f64 / 1000.0)
        .collect();
    if ms.is_empty() {
        return (None, None, None, pairs.len());
    }
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (
        Some(pick(0.5)),
        Some(pick(0.99)),
        ms.last().copied(),
        pairs.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use workloads::bank::{Entry, FinalLedger};

    fn entry(transfer: u64, account: &str, amount: i64, at_ms: i64) -> Entry {
        Entry {
            transfer,
            account: account.to_string(),
            amount,
            at_us: at_ms * 1000,
            read_from: None,
        }
    }

    fn ledger(bank: &str, entries: Vec<Entry>) -> FinalLedger {
        FinalLedger {
            bank: bank.to_string(),
            entries,
            balances: Default::default(),
        }
    }

    #[test]
    fn latencies_count_cross_bank_transfers_applied_once_on_each_side() {
        let state = FinalState {
            ledgers: vec![
                ledger(
                    "A",
                    vec![
                        entry(1, "A/0", -5, 1000),
                        entry(2, "A/0", -5, 1000),
                        // Local: both rows in bank A.
                        entry(3, "A/0", -1, 1000),
                        entry(3, "A/1", 1, 1001),
                        // Debited twice: left out.
                        entry(4, "A/0", -1, 1000),
                        entry(4, "A/0", -1, 1000),
                    ],
                ),
                ledger(
                    "B",
                    vec![
                        entry(1, "B/0", 5, 1010),
                        entry(2, "B/0", 5, 1030),
                        entry(4, "B/0", 1, 1050),
                    ],
                ),
            ],
            ..FinalState::default()
        };
        let (p50, p99, max, completed) = latencies(&state);
        assert_eq!(completed, 2);
        assert_eq!(p50, Some(30.0));
        assert_eq!(p99, Some(30.0));
        assert_eq!(max, Some(30.0));
        // No ledger rows: no latency, nothing completed.
        assert_eq!(latencies(&FinalState::default()), (None, None, None, 0));
    }

    #[test]
    fn a_stopped_runs_history_is_checked_into_an_unknown_verdict() {
        let dir = std::env::temp_dir().join(format!("chaosbank-partial-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // No history: nothing to check.
        assert!(partial_verdict(&dir, "interrupted").is_none());
        let init = serde_json::json!({"index": 0, "time": 0, "type": "ok", "process": "setup",
            "f": "init", "value": {"balances": {"A/0": 100, "B/0": 100}}});
        std::fs::write(dir.join("history.jsonl"), format!("{init}\n")).unwrap();
        let v = partial_verdict(&dir, "healing the cluster failed").expect("a verdict");
        assert_eq!(v.valid, checkers::Validity::Unknown);
        assert!(v
            .warnings
            .iter()
            .any(|w| w == "healing the cluster failed: no final ledgers were read"));
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("verdict.json")).unwrap()).unwrap();
        assert_eq!(written["verdict"]["valid"], "unknown");
        assert_eq!(written["interrupted"], "healing the cluster failed");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
