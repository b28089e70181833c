//! What a run is made of, before anything starts: [`RunConfig`] (stored whole in
//! `run.json`), its defaults, the nemesis names the CLI takes, and the seed a run gets
//! when none is given. The first stage of the data flow: config → cluster → workload
//! and nemesis → history → checkers → report; it depends on none of the later ones.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use workloads::system::SystemKind;

use workloads::system::Options;

use crate::schedule::FaultKind;
use crate::service::Engines;

/// The default share of poison transfers: about one transfer in a hundred.
pub const DEFAULT_POISON_RATE: f64 = 0.01;

/// The nodes faults target: the engines and the scheme's own node containers (those a
/// run does not have are dropped).
pub const TARGETS: [&str; 8] = [
    "postgres", "mariadb", "kafka", "broker", "producer", "relay", "consumer", "connect",
];

/// Every account's opening balance for a service under the contract: all its transfers
/// go from bank A to bank B, so bank A's accounts must last the whole run.
pub const SERVICE_BALANCE: i64 = 1_000_000;

/// Maps the CLI's nemesis names to fault kinds: `kill`, `pause`, `partition` (a node
/// isolated from everyone, the host included), `loss`, `latency` (= `delay`), plus the
/// schedule's own names (`isolate`, `halves`, `cut`), and `clock` (the wall clock of the
/// scheme's or the service's own containers moved); `none` for no faults.
pub fn parse_nemesis(list: &str) -> Result<Vec<FaultKind>> {
    let mut kinds = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match name {
            "none" => {}
            "partition" => kinds.push(FaultKind::Isolate),
            "latency" => kinds.push(FaultKind::Delay),
            other => match FaultKind::parse(other) {
                Some(k) => kinds.push(k),
                None => bail!("unknown nemesis {other:?} (kill, pause, partition, loss, latency, clock, isolate, halves, cut, delay, none)"),
            },
        }
    }
    Ok(kinds)
}

/// Everything a run is made of. Stored in `run.json` (see [`crate::store`]); fields
/// missing from an older file take [`RunConfig::new`]'s values.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    /// The scheme under test.
    #[serde(with = "system_serde")]
    pub system: SystemKind,
    /// Fault kinds to draw from (empty: no faults).
    pub faults: Vec<FaultKind>,
    /// How long the workload and the faults run.
    pub time_limit: Duration,
    /// Concurrent client workers.
    pub concurrency: usize,
    /// Accounts in each bank (`A/0..n`, `B/0..n`): fewer means hotter rows and more
    /// contention. Absent from older `run.json` files: 5, as they were run.
    pub accounts: usize,
    /// The seed of the workload and the fault schedule.
    pub seed: u64,
    /// Runs are stored under `<out>/<system>/…`.
    pub out: PathBuf,
    /// Consumers deduplicate (off shows the checker catches duplicates).
    pub dedup: bool,
    /// Consumers of transactional topics read `read_uncommitted` (off by default; on
    /// shows the checker catches aborted reads).
    pub read_uncommitted: bool,
    /// The longest wait for the scheme to drain after healing.
    pub drain_timeout: Duration,
    /// Mean quiet time between faults.
    pub fault_interval: Duration,
    /// Mean time a fault holds.
    pub fault_hold: Duration,
    /// Also measure raw `pgbench` TPS on the same PostgreSQL container (~10 s).
    pub pgbench: bool,
    /// Also measure the broker's raw message rate on the same broker (~5 s; see
    /// [`crate::measure::broker_rate`]).
    #[serde(default)]
    pub broker_rate: bool,
    /// The nodes faults may target (default [`TARGETS`]; nodes the cluster lacks are
    /// dropped).
    pub targets: Vec<String>,
    /// A consumer parks a message (dead letter) after failing it this many times.
    pub max_attempts: u32,
    /// Run the scheme's processes as tasks of the harness instead of in node containers.
    pub in_process: bool,
    /// The node binary mounted into node containers (default: see
    /// [`crate::deploy::node_binary`]).
    pub node_binary: Option<PathBuf>,
    /// The brokers' implementations (default: Apache Kafka, Apache RocketMQ).
    pub engines: Engines,
    /// The fault schedule starts with a shuffled round over the targets, holds of at
    /// least 3 s (see [`crate::schedule`]); absent from older `run.json` files: off, so
    /// they replay the schedule they were drawn with.
    #[serde(default)]
    pub cover_targets: bool,
    /// The chance (0–1) that a fault gets a second one while it holds, on other nodes
    /// (see [`crate::schedule`]); absent from older `run.json` files: 0.
    #[serde(default)]
    pub overlap: f64,
    /// Judge the run even when a drawn fault could not be applied (by default such a
    /// run is at best `unknown`).
    pub allow_fault_errors: bool,
    /// Share of transfers that are poison (to a closed bank B account): a correct scheme
    /// parks each for a person. Absent from older `run.json` files: 0, so they replay the
    /// workload they were drawn with.
    #[serde(default)]
    pub poison_rate: f64,
    /// A user's own service under test: its manifest (`chaosbank.toml`) or the folder
    /// holding it. When set, it is run instead of [`RunConfig::system`].
    #[serde(default)]
    pub service: Option<PathBuf>,
    /// The offered load, ops/s over all clients, each waiting a seeded random share of
    /// its period before an op ([`crate::generator::Stagger`]); `None`: as fast as the
    /// system answers. Absent from older `run.json` files: `None`, as they were run.
    #[serde(default)]
    pub rate: Option<f64>,
    /// outbox-cdc: the Debezium connector's `offset.mismatch.strategy` (default
    /// `no_validation`, Debezium's own default).
    #[serde(default)]
    pub slot_mismatch: workloads::connect::SlotMismatch,
}

/// The offered load of `chaosbank run` by default: 100 ops/s per core, above what the
/// systems sustain here under faults, so it only paces a system that fails at once.
pub fn default_rate() -> f64 {
    100.0 * std::thread::available_parallelism().map_or(2, |n| n.get()) as f64
}

impl RunConfig {
    /// What is under test, as runs are stored and reported: the service's manifest
    /// name, else the scheme's.
    pub fn name(&self) -> String {
        match &self.service {
            Some(path) => crate::sut::Manifest::load(path)
                .map(|m| m.name)
                .unwrap_or_else(|_| "service".to_string()),
            None => self.system.name().to_string(),
        }
    }

    /// The defaults of `chaosbank run`: outbox, mixed faults, 60 s, 8 workers.
    pub fn new(seed: u64) -> RunConfig {
        RunConfig {
            system: SystemKind::Outbox,
            faults: vec![
                FaultKind::Kill,
                FaultKind::Pause,
                FaultKind::Isolate,
                FaultKind::Loss,
            ],
            time_limit: Duration::from_secs(60),
            concurrency: 8,
            accounts: 5,
            seed,
            out: PathBuf::from("runs"),
            dedup: true,
            read_uncommitted: false,
            drain_timeout: Duration::from_secs(120),
            // Tuned for time to conviction (README, "Time to conviction"): a fault every
            // ~5 s, so the covering round reaches all seven targets in ~35 s of a 60 s run.
            fault_interval: Duration::from_secs(2),
            fault_hold: Duration::from_secs(3),
            pgbench: false,
            broker_rate: false,
            targets: TARGETS.iter().map(|t| t.to_string()).collect(),
            max_attempts: Options::default().max_attempts,
            in_process: false,
            node_binary: None,
            engines: Engines::default(),
            cover_targets: true,
            overlap: 0.0,
            allow_fault_errors: false,
            poison_rate: DEFAULT_POISON_RATE,
            service: None,
            rate: Some(default_rate()),
            slot_mismatch: Default::default(),
        }
    }
}

/// A seed from the clock, for runs not given one.
pub fn seed_from_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 % 1_000_000_000)
        .unwrap_or(1)
}

/// `SystemKind` in `run.json`: by its CLI name (`outbox`).
pub mod system_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use workloads::system::SystemKind;

    /// Writes the name.
    pub fn serialize<S: Serializer>(k: &SystemKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(k.name())
    }

    /// Reads a name, naming the ones known when it is not.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemKind, D::Error> {
        let name = String::deserialize(d)?;
        SystemKind::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown system {name:?} ({})", SystemKind::names()))
        })
    }
}

impl Default for RunConfig {
    /// [`RunConfig::new`] with seed 0: what fields missing from an old `run.json` take.
    fn default() -> RunConfig {
        RunConfig::new(0)
    }
}
