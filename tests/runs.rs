//! What the scheme tests share: one cluster at a time, a scratch run store, the chaos
//! schedule every scheme is judged under, one checked run, and what a verdict convicts.

use chaosbank::run::{self, RunConfig, RunReport, SystemKind};
use chaosbank::schedule::FaultKind;
use std::path::PathBuf;
use std::time::Duration;

/// One cluster at a time on a small machine.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A folder for the runs' histories, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A folder named after the test process and `name` in the temporary directory.
    pub fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("chaosbank-runs-{}-{name}", std::process::id()));
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kill and partition (isolate) faults on the engines and on the scheme's own node
/// containers (producer, relay, consumer), a fault every ~1.5 s holding ~5 s (at least
/// 3 s), for 30 s: four or five faults per run, the first a covering round over the
/// targets (`RunConfig::cover_targets`), so no run misses the broker, bank A or the
/// producer — the only places dual-write is wrong. Holds matter: a broker back within
/// the dual-write's 2 s publish timeout, or a partition healed before TCP gives up, is
/// survived even by the control. The same schedules for every scheme.
pub fn config(system: SystemKind, seed: u64, out: &Scratch) -> RunConfig {
    RunConfig {
        system,
        faults: vec![FaultKind::Kill, FaultKind::Isolate],
        time_limit: Duration::from_secs(30),
        fault_interval: Duration::from_millis(1500),
        fault_hold: Duration::from_secs(5),
        drain_timeout: Duration::from_secs(150),
        out: out.0.clone(),
        node_binary: Some(crate::node_binary()),
        ..RunConfig::new(seed)
    }
}

/// Runs `cfg` to its verdict, asserting what every run must leave: faults that took
/// effect, the run store, and poison parked in a valid drained run; prints the figures.
pub async fn run_one(cfg: &RunConfig) -> RunReport {
    let report = run::run(cfg).await.expect("the run completes");
    // Every fault of the schedule took effect, as the nemesis observed it.
    assert!(
        report.faults_failed.is_empty(),
        "faults that did not take effect: {:?}",
        report.faults_failed
    );
    // The run store: the streamed history, its verdict and report, and `latest`.
    let dir = report.history.parent().expect("the run's folder");
    for file in ["history.jsonl", "verdict.json", "report.html"] {
        assert!(
            dir.join(file).is_file(),
            "the run left no {file} in {dir:?}"
        );
    }
    assert_eq!(
        std::fs::canonicalize(cfg.out.join("latest")).ok(),
        std::fs::canonicalize(dir).ok(),
        "runs/latest does not point at the newest run"
    );
    eprintln!(
        "{}\n{}",
        report.summary(),
        checkers::render::summary(&report.verdict, 2)
    );
    if report.drained && report.verdict.valid == checkers::Validity::Valid {
        // Poison transfers (about one in a hundred) are parked with their reason.
        let p = poison(&report.history);
        for id in &p.acknowledged {
            assert!(
                p.parked.contains(id),
                "poison transfer {id} acknowledged, not parked"
            );
        }
    }
    report
}

/// The poison transfers of a history (to the closed account) and its dead letters.
pub struct Poison {
    /// Poison transfers the client was told `ok`.
    pub acknowledged: Vec<u64>,
    /// Poison transfers with a dead letter.
    pub parked: Vec<u64>,
    /// Dead letters of transfers that were not poison.
    pub parked_other: Vec<u64>,
}

/// Reads the poison transfers and dead letters of a stored history.
pub fn poison(history: &std::path::Path) -> Poison {
    let text = std::fs::read_to_string(history).expect("the history");
    let ops: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let is_poison = |v: &serde_json::Value| v["to"] == chaosbank::generator::POISON_ACCOUNT;
    let poison_ids: std::collections::BTreeSet<u64> = ops
        .iter()
        .filter(|op| op["f"] == "transfer" && is_poison(&op["value"]))
        .filter_map(|op| op["value"]["id"].as_u64())
        .collect();
    let acknowledged = ops
        .iter()
        .filter(|op| op["f"] == "transfer" && op["type"] == "ok" && is_poison(&op["value"]))
        .filter_map(|op| op["value"]["id"].as_u64())
        .collect();
    let letters: Vec<u64> = ops
        .iter()
        .filter(|op| op["f"] == "dead-letter")
        .filter_map(|op| op["value"]["transfer"].as_u64())
        .collect();
    let (parked, parked_other) = letters.into_iter().partition(|id| poison_ids.contains(id));
    Poison {
        acknowledged,
        parked,
        parked_other,
    }
}

/// Convicted of losing or creating money (or applying it twice, or applying a
/// transfer the client was told failed).
pub fn convicted(r: &RunReport) -> bool {
    use checkers::AnomalyKind as K;
    [K::Lost, K::Phantom, K::Duplicated, K::FailedApplied]
        .into_iter()
        .any(|a| r.verdict.count(a) > 0)
}

/// A right design cleared: faults took effect, it drained, the verdict is valid, and
/// cross-bank transfers completed. `what` names the run in the messages (`outbox seed 11`).
pub fn assert_cleared(r: &RunReport, what: &str) {
    assert!(r.faults > 0, "{what}: no fault took effect");
    if !r.drained || r.verdict.valid != checkers::Validity::Valid {
        // The scratch store is removed with the test: say here what the nodes said.
        if let Some(dir) = r.history.parent() {
            eprintln!(
                "{what}: warnings and errors the nodes logged last:\n{}",
                log_tails(dir, 8)
            );
        }
    }
    assert!(r.drained, "{what}: did not drain");
    assert_eq!(
        r.verdict.valid,
        checkers::Validity::Valid,
        "{what} convicted:\n{}",
        checkers::render::summary(&r.verdict, 5)
    );
    assert!(
        r.figures.cross_bank_completed > 0,
        "{what}: no cross-bank transfer completed"
    );
}

/// The last `n` warning and error lines of each container log a run saved (`logs/`),
/// without colour codes, each cut to 240 characters: what a failed CI run leaves to read.
pub fn log_tails(run_dir: &std::path::Path, n: usize) -> String {
    let Ok(entries) = std::fs::read_dir(run_dir.join(chaosbank::store::LOGS)) else {
        return "  (no logs saved)".to_string();
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let mut out = String::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .map(strip_ansi)
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        let name = file.file_stem().unwrap_or_default().to_string_lossy();
        out.push_str(&format!("  {name}: {} warnings/errors\n", lines.len()));
        for l in &lines[lines.len().saturating_sub(n)..] {
            let cut: String = l.chars().take(240).collect();
            out.push_str(&format!("    {cut}\n"));
        }
    }
    out
}

/// `line` without terminal colour codes (`ESC [ … m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
