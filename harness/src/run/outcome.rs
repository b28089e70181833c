//! What a run reports when it ends ([`RunReport`]) and the figures it measured
//! ([`Figures`]): made by [`crate::run`], stored by [`crate::store`], shown by the CLI.

use checkers::verdict::Verdict;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

use workloads::system::Backlog;

use crate::config::SystemKind;

/// Measured figures of a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Figures {
    /// Transfers acknowledged `ok`.
    pub transfers_ok: u64,
    /// Transfers that failed (including refusals for insufficient funds).
    pub transfers_fail: u64,
    /// Transfers whose outcome is unknown.
    pub transfers_info: u64,
    /// Reads that succeeded.
    pub reads_ok: u64,
    /// `ok` transfers per second of workload.
    pub throughput: f64,
    /// Cross-bank transfers with both sides in the ledgers.
    pub cross_bank_completed: usize,
    /// Median time from the debit's ledger row to the credit's, milliseconds.
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile of the same.
    pub latency_p99_ms: Option<f64>,
    /// Raw pgbench TPS on the same PostgreSQL container, when measured.
    pub pgbench_tps: Option<f64>,
    /// Longest time from the debit's ledger row to the credit's, milliseconds.
    pub latency_max_ms: Option<f64>,
    /// The broker's raw message rate on the same broker, when measured.
    pub broker_msgs_per_s: Option<f64>,
    /// Seconds from the cluster's start to every engine ready (images already built).
    pub cluster_ready_s: Option<f64>,
}

/// What a run produced.
#[derive(Debug)]
pub struct RunReport {
    /// The scheme.
    pub system: SystemKind,
    /// What was under test: the service's manifest name, else the scheme's.
    pub name: String,
    /// The seed.
    pub seed: u64,
    /// The history file.
    pub history: PathBuf,
    /// The checker's verdict.
    pub verdict: Verdict,
    /// Faults that took effect (applied, and their effect observed by the nemesis).
    pub faults: usize,
    /// Faults that took effect, by kind (`kill`, `isolate`, `clock`, …).
    pub fault_kinds: std::collections::BTreeMap<String, usize>,
    /// Faults that took effect while another fault held ([`RunConfig::overlap`]).
    pub faults_overlapping: usize,
    /// The first op a violation names, with its time into the run (`None` when the
    /// verdict names none): the run's time to conviction.
    pub first_violation: Option<crate::conviction::FirstViolation>,
    /// Faults of the schedule that could not be applied or did not take effect, each
    /// with when and why. Unless [`RunConfig::allow_fault_errors`], any makes the verdict
    /// at best `unknown`: the run did not test what it was asked to.
    pub faults_failed: Vec<String>,
    /// Whether the scheme drained before the drain timeout.
    pub drained: bool,
    /// How long the drain wait took.
    pub drain_wait: Duration,
    /// The drain ended by the settle rule ([`workloads::system::Ledgers::settle_after`]): the ledgers had not
    /// changed for this long, so what was still uncredited counts as lost.
    pub settled: Option<Duration>,
    /// What was left when the wait ended.
    pub backlog: Option<Backlog>,
    /// Dead letters recorded.
    pub dead_letters: usize,
    /// Figures.
    pub figures: Figures,
    /// The fault schedule the run played (drawn from the seed, or given), stored in
    /// `run.json` so `chaosbank run --schedule` and `chaosbank shrink` can take it.
    pub schedule: Option<crate::schedule::Schedule>,
}

impl RunReport {
    /// A few lines for a person.
    pub fn summary(&self) -> String {
        let f = &self.figures;
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0} ms"));
        let mut kinds: Vec<String> = self
            .fault_kinds
            .iter()
            .map(|(k, n)| format!("{k}×{n}"))
            .collect();
        if self.faults_overlapping > 0 {
            kinds.push(format!("{} overlapping", self.faults_overlapping));
        }
        let kinds = if kinds.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds.join(", "))
        };
        let mut s = format!(
            "{} seed {}: {} faults{kinds}; transfers ok {} / fail {} / info {}; {:.1} transfers/s; \
             debit→credit p50 {} p99 {} ({} cross-bank)",
            self.name,
            self.seed,
            self.faults,
            f.transfers_ok,
            f.transfers_fail,
            f.transfers_info,
            f.throughput,
            ms(f.latency_p50_ms),
            ms(f.latency_p99_ms),
            f.cross_bank_completed,
        );
        if let Some(tps) = f.pgbench_tps {
            s.push_str(&format!("; pgbench {tps:.0} TPS"));
        }
        if let Some(first) = &self.first_violation {
            s.push_str(&format!("\nfirst violation: {first}"));
        }
        s.push_str(&format!(
            "\ndrain: {} in {:.1?}{}; {} dead letters\nhistory: {}",
            match (self.drained, self.settled) {
                (true, Some(q)) => format!("settled (no ledger change for {q:?})"),
                (true, None) => "drained".to_string(),
                (false, _) => "NOT drained".to_string(),
            },
            self.drain_wait,
            self.backlog
                .as_ref()
                .map(|b| format!(" ({b})"))
                .unwrap_or_default(),
            self.dead_letters,
            self.history.display()
        ));
        s
    }
}
