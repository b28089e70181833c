//! What a run is made of, before anything starts: [`RunConfig`], the one settings type.
//! The command line's flags are its fields (`chaosbank run`, `soak` and `bench` flatten
//! it), [`crate::Test`] wraps it, `run.json` stores it whole, and its defaults are the
//! flags' own. Also the seed a run gets when none is given. The first stage of the data
//! flow: config → cluster → workload and nemesis → history → checkers → report; it
//! depends on none of the later ones.

pub mod parse;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use workloads::system::SystemKind;

pub use parse::{
    interval_for_rate, parse_accounts, parse_duration, parse_nemesis, parse_rate, parse_share,
    parse_system, parse_targets,
};

use crate::schedule::FaultKind;
use crate::service::{Engines, KafkaImpl};

/// The default share of poison transfers of a reference scheme: about one transfer in a
/// hundred (a service's default is 0: see [`RunConfig::poison_share`]).
pub const DEFAULT_POISON_RATE: f64 = 0.01;

/// The nodes faults target: the engines and the scheme's own node containers (those a
/// run does not have are dropped).
pub const TARGETS: [&str; 8] = [
    "postgres", "mariadb", "kafka", "broker", "producer", "relay", "consumer", "connect",
];

/// The longest time a run's setting may give: a week (a run's clock must not overflow).
pub const LONGEST: Duration = Duration::from_secs(7 * 24 * 3600);

/// Every account's opening balance for a service under the contract: all its transfers
/// go from bank A to bank B, so bank A's accounts must last the whole run.
pub const SERVICE_BALANCE: i64 = 1_000_000;

/// Everything a run is made of: the settings of `chaosbank run`, `soak` and `bench` (each
/// field's flag, help and default are here, and only here), of [`crate::Test`], and of
/// `run.json` (see [`crate::store`]). Fields missing from an older `run.json` take
/// [`RunConfig::new`]'s values, unless their doc says otherwise (what they were run with
/// before the field existed).
#[derive(Clone, Debug, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct RunConfig {
    /// The scheme under test (the commands' own `--system`/`--systems`).
    #[serde(with = "system_serde")]
    #[arg(skip = SystemKind::Outbox)]
    pub system: SystemKind,
    /// The seed of the workload and the fault schedule (the commands' own `--seed`/`--seeds`).
    #[arg(skip)]
    pub seed: u64,
    /// Faults to draw from, comma-separated: kill, pause, partition, loss, latency,
    /// clock (the wall clock of the scheme's or service's own containers moved ±1–10
    /// min), crash-after (a process killed right after a commit, produce or offset
    /// reply reaches it), cut-before (its connection reset before such a reply),
    /// slot-loss (bank A's replication slot dropped: outbox-cdc only, never by default)
    /// (also isolate, halves, cut, delay), or none.
    #[arg(
        long = "nemesis",
        id = "nemesis",
        value_name = "NEMESIS",
        default_value = "kill,pause,partition,loss,crash-after,cut-before",
        value_parser = parse_nemesis
    )]
    pub faults: ::std::vec::Vec<FaultKind>,
    /// How long the workload and the faults run (e.g. 60s, 2m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub time_limit: Duration,
    /// Concurrent clients (1–10000).
    #[arg(long, default_value_t = 8, value_parser = crate::parse::concurrency)]
    pub concurrency: usize,
    /// Consumers deduplicate (off shows the checker catches duplicates).
    #[arg(
        long = "no-dedup",
        action = clap::ArgAction::SetFalse,
        help = "Turn the consumers' deduplication off (to see duplicates caught)"
    )]
    pub dedup: bool,
    /// Accounts in each bank: fewer means hotter rows (more lock contention and more
    /// refused transfers); more spreads the load.
    #[arg(long, default_value = "5", value_parser = parse_accounts)]
    pub accounts: usize,
    /// The consumers of topics written in Kafka transactions (kafka-tx, outbox-eos) read
    /// read_uncommitted: a misconfiguration, to see aborted reads caught.
    #[arg(long)]
    pub read_uncommitted: bool,
    /// A consumer parks a message for manual intervention (dead letter) after failing
    /// to credit it this many times.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,
    /// The longest wait for the scheme to drain after healing.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// Mean quiet time between faults.
    #[arg(long, default_value = "2s", value_parser = crate::parse::fault_time)]
    pub fault_interval: Duration,
    /// Mean time a fault holds.
    #[arg(long, default_value = "3s", value_parser = crate::parse::fault_time)]
    pub fault_hold: Duration,
    /// Faults per minute, instead of --fault-interval: the quiet time between faults is
    /// then 60 s / rate less the hold. Bounded: one fault follows another, so at most
    /// 60 s / --fault-hold a minute (--overlap adds second faults beside those).
    #[arg(long, value_name = "PER_MIN", conflicts_with = "fault_interval")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_rate: Option<f64>,
    /// Nodes the faults may target, comma-separated (nodes the scheme lacks are skipped):
    /// the engines and the scheme's own producer, relay and consumer nodes.
    #[arg(
        long,
        value_name = "TARGETS",
        default_value = "postgres,mariadb,kafka,broker,producer,relay,consumer,connect",
        value_parser = parse_targets
    )]
    pub targets: ::std::vec::Vec<String>,
    /// Run the scheme's producer, relay and consumer as tasks of this process instead
    /// of in node containers (faults then reach them only through the engines).
    #[arg(long)]
    pub in_process: bool,
    /// The binary the node containers run (default: this chaosbank; or
    /// $CHAOSBANK_NODE_BIN).
    #[arg(long)]
    pub node_binary: Option<PathBuf>,
    /// The fault schedule starts with a shuffled round over the targets, holds of at
    /// least 3 s. Absent from older `run.json` files: off, so they replay the schedule
    /// they were drawn with.
    #[arg(
        long = "random-targets",
        action = clap::ArgAction::SetFalse,
        help = "Draw every fault's target at random, instead of first hitting each target \
                once in a seeded order with holds of at least 3 s"
    )]
    #[serde(default)]
    pub cover_targets: bool,
    /// When the kinds include an aimed one (`crash-after`, `cut-before`), draw the aimed
    /// schedule: long outages of every engine beside faults aimed at the processes'
    /// replies (see [`crate::schedule`]); off (or `--random-targets`): the covering
    /// schedule. Old `run.json` files name no aimed kind, so they replay as drawn.
    #[arg(
        long = "unaimed",
        action = clap::ArgAction::SetFalse,
        help = "Even with crash-after or cut-before among the faults, draw the covering \
                schedule (one fault at a time, each target hit once first) instead of the \
                aimed one (long outages of every engine beside faults aimed at the \
                processes' replies)"
    )]
    pub aimed: bool,
    /// The chance (0–1) that a fault gets a second, overlapping one: started while the
    /// first holds, on other nodes (kill, pause, isolate, loss, delay or clock). Default 0.
    /// The summary's "N overlapping" counts faults that did overlap, drawn or not: with 0,
    /// a slow revert (a killed engine restarting until ready) still running when the
    /// next fault starts.
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    #[serde(default)]
    pub overlap: f64,
    /// Share of transfers that are poison: to a closed account bank B refuses, so every
    /// correct scheme must park them for a person (reported `parked` with the reason).
    /// Unless given: 0.01, or 0 with --service (the contract does not promise parking).
    #[arg(long, value_parser = parse_share)]
    #[serde(default = "older_poison_rate")]
    pub poison_rate: Option<f64>,
    /// The offered load in ops/s over all clients (Jepsen's stagger: each waits a seeded
    /// random share of its period); 0 for as fast as the system answers. Default (run,
    /// soak): 100 per core.
    // In `run.json`: null for as fast as answered, and so in older files without it.
    #[arg(
        long,
        value_name = "OPS_PER_S",
        default_value = default_rate_text(),
        hide_default_value = true,
        value_parser = parse_rate
    )]
    #[serde(default)]
    pub rate: ::std::option::Option<f64>,
    /// Verify your own service instead of a reference scheme: its manifest
    /// (`chaosbank.toml`) or the folder holding it (see README, "Test your own service").
    #[arg(long, value_name = "DIR_OR_TOML")]
    #[serde(default)]
    pub service: Option<PathBuf>,
    /// Judge the run even when a drawn fault could not be applied (by default such a
    /// run ends unknown, exit 2, naming the fault and why).
    #[arg(long)]
    pub allow_fault_errors: bool,
    /// The brokers' implementations and where the images come from.
    #[command(flatten)]
    pub engines: Engines,
    /// Also measure raw pgbench TPS on the same PostgreSQL container (adds ~15 s).
    #[arg(long)]
    pub pgbench: bool,
    /// Also measure the broker's raw message rate on the same broker (~5 s; `bench`
    /// turns it on).
    #[arg(skip)]
    #[serde(default)]
    pub broker_rate: bool,
    /// A fault schedule to play instead of drawing one from the seed
    /// (`chaosbank run --schedule FILE`, see [`crate::script`]); its presence in
    /// `run.json` records that the schedule was given. The seed still drives the
    /// workload. `None`: drawn from the seed and the fault settings.
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<crate::schedule::Schedule>,
    /// outbox-cdc: the Debezium connector's `offset.mismatch.strategy`, what it does when
    /// its stored offset and the replication slot disagree: no_validation (Debezium's
    /// default: a slot made anew streams from "now") or trust_offset (the task fails when
    /// the slot is ahead of the offset).
    #[arg(long, default_value = "no_validation", value_parser = parse_slot_mismatch)]
    #[serde(default)]
    pub slot_mismatch: workloads::connect::SlotMismatch,
    /// Where runs are stored (`<dir>/<system>/<timestamp>-<seed>/history.jsonl`).
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
}

/// Parses `--slot-mismatch`.
fn parse_slot_mismatch(s: &str) -> Result<workloads::connect::SlotMismatch, String> {
    workloads::connect::SlotMismatch::parse(s).ok_or_else(|| {
        format!("unknown offset.mismatch.strategy {s:?}; use no_validation or trust_offset")
    })
}

/// What `poison_rate` was before it could be left to the default: 0, so older runs
/// replay the workload they were drawn with.
fn older_poison_rate() -> Option<f64> {
    Some(0.0)
}

/// The offered load of `chaosbank run` by default: 100 ops/s per core, above what the
/// systems sustain here under faults, so it only paces a system that fails at once.
pub fn default_rate() -> f64 {
    100.0 * std::thread::available_parallelism().map_or(2, |n| n.get()) as f64
}

/// [`default_rate`] as the `--rate` flag's default text.
fn default_rate_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| default_rate().to_string())
}

/// The settings alone as a command line, for their defaults.
#[derive(clap::Parser)]
#[command(name = "chaosbank")]
struct Defaults {
    #[command(flatten)]
    cfg: RunConfig,
}

impl RunConfig {
    /// Whether the run may move a node's clock (a clock fault drawn or given), so its
    /// node containers need libfaketime.
    pub fn moves_clocks(&self) -> bool {
        self.faults.contains(&FaultKind::Clock)
            || self
                .schedule
                .as_ref()
                .is_some_and(|s| s.steps.iter().any(|st| st.fault.kind() == "clock"))
    }

    /// The defaults of `chaosbank run` (outbox, kill/pause/partition/loss, 60 s, 8
    /// clients, …): the flags' own defaults, with `seed`.
    pub fn new(seed: u64) -> RunConfig {
        use clap::Parser;
        let mut cfg = match Defaults::try_parse_from(["chaosbank"]) {
            Ok(d) => d.cfg,
            // The flags' own defaults always parse (a unit test says so).
            Err(e) => panic!("chaosbank's default settings do not parse: {e}"),
        };
        cfg.seed = seed;
        cfg
    }

    /// The share of transfers that are poison: as set, else [`DEFAULT_POISON_RATE`] for
    /// a reference scheme and 0 for a service (the contract does not promise parking).
    pub fn poison_share(&self) -> f64 {
        match (self.poison_rate, &self.service) {
            (Some(share), _) => share,
            (None, Some(_)) => 0.0,
            (None, None) => DEFAULT_POISON_RATE,
        }
    }

    /// The mean quiet time between faults: [`RunConfig::fault_interval`], or the one
    /// [`RunConfig::fault_rate`] gives with [`RunConfig::fault_hold`].
    pub fn quiet_time(&self) -> Result<Duration> {
        match self.fault_rate {
            Some(rate) => interval_for_rate(rate, self.fault_hold),
            None => Ok(self.fault_interval),
        }
    }

    /// The fault kinds asked for, as the CLI names them (`none` for no faults).
    pub fn nemesis(&self) -> String {
        if self.faults.is_empty() {
            return "none".to_string();
        }
        let names: Vec<&str> = self.faults.iter().map(|k| k.name()).collect();
        names.join(",")
    }

    /// Refuses settings no run can be made of, naming the setting, before anything
    /// starts.
    pub fn check(&self) -> Result<()> {
        if self.concurrency == 0 {
            bail!("concurrency must be at least 1");
        }
        for (name, d) in [
            ("time_limit", self.time_limit),
            ("drain_timeout", self.drain_timeout),
            ("fault_interval", self.fault_interval),
            ("fault_hold", self.fault_hold),
        ] {
            if d > LONGEST {
                bail!("{name} {d:?} is longer than a run can be ({LONGEST:?}, a week)");
            }
        }
        if self.accounts == 0 {
            bail!("accounts must be at least 1");
        }
        for (name, share) in [
            ("poison_rate", self.poison_share()),
            ("overlap", self.overlap),
        ] {
            if !(0.0..=1.0).contains(&share) {
                bail!("{name} {share} is not a share between 0 and 1");
            }
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate >= parse::RATE_MIN) {
                bail!("rate {rate} is not an offered load of at least {} ops/s (none for as fast as answered)", parse::RATE_MIN);
            }
        }
        if self.quiet_time()? > LONGEST {
            bail!(
                "fault_rate {:?}/min is too low: less than one fault a week",
                self.fault_rate.unwrap_or_default()
            );
        }
        if self.service.is_some() && self.in_process {
            bail!("a service's processes run in containers: --in-process is for the reference schemes");
        }
        if self.slot_mismatch != workloads::connect::SlotMismatch::NoValidation
            && !self.engines.debezium.has_mismatch_strategy()
        {
            bail!(
                "--slot-mismatch {} needs offset.mismatch.strategy, which Debezium {} does not have (it always streams from where the slot is): use --debezium {} or leave --slot-mismatch at no_validation",
                self.slot_mismatch.value(),
                self.engines.debezium.name(),
                crate::engines::connect::Debezium::default().name()
            );
        }
        if self.service.is_none()
            && self.system == SystemKind::KafkaTx
            && self.engines.kafka == KafkaImpl::Tansu
        {
            bail!("kafka-tx needs Kafka transactions, which tansu 0.6 does not have: use --kafka apache");
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{ImageSource, RocketMqImpl};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<RunConfig, clap::Error> {
        Defaults::try_parse_from(std::iter::once("chaosbank").chain(args.iter().copied()))
            .map(|d| d.cfg)
    }

    #[test]
    fn the_defaults_are_those_readme_documents() {
        let c = RunConfig::new(7);
        assert_eq!((c.system, c.seed), (SystemKind::Outbox, 7));
        assert_eq!(
            c.faults,
            [
                FaultKind::Kill,
                FaultKind::Pause,
                FaultKind::Isolate,
                FaultKind::Loss,
                FaultKind::CrashAfter,
                FaultKind::CutBefore
            ]
        );
        assert!(c.aimed);
        assert_eq!(c.time_limit, Duration::from_secs(60));
        assert_eq!((c.concurrency, c.accounts, c.max_attempts), (8, 5, 30));
        assert_eq!(
            c.max_attempts,
            workloads::system::Options::default().max_attempts
        );
        assert!(c.dedup && !c.read_uncommitted && !c.in_process && c.cover_targets);
        assert_eq!(c.drain_timeout, Duration::from_secs(120));
        assert_eq!(c.fault_interval, Duration::from_secs(2));
        assert_eq!(c.fault_hold, Duration::from_secs(3));
        assert_eq!((c.fault_rate, c.overlap, c.poison_rate), (None, 0.0, None));
        assert_eq!(c.targets, TARGETS);
        assert_eq!(c.rate, Some(default_rate()));
        assert_eq!(c.engines, Engines::default());
        assert_eq!(c.out, PathBuf::from("runs"));
        assert!(c.service.is_none() && c.node_binary.is_none());
        assert!(!c.pgbench && !c.broker_rate && !c.allow_fault_errors);
        c.check().unwrap();
    }

    #[test]
    fn every_flag_sets_its_field() {
        let c = parse(&[
            "--nemesis",
            "kill,latency",
            "--time-limit",
            "2m",
            "--concurrency",
            "3",
            "--no-dedup",
            "--accounts",
            "50",
            "--read-uncommitted",
            "--max-attempts",
            "2",
            "--drain-timeout",
            "9s",
            "--fault-hold",
            "1s",
            "--fault-rate",
            "6",
            "--targets",
            "postgres,relay",
            "--in-process",
            "--node-binary",
            "/bin/x",
            "--random-targets",
            "--overlap",
            "0.5",
            "--poison-rate",
            "0.1",
            "--rate",
            "0",
            "--allow-fault-errors",
            "--kafka",
            "tansu",
            "--rocketmq",
            "rust",
            "--images",
            "official",
            "--debezium",
            "3.2",
            "--pgbench",
            "--out",
            "/tmp/r",
        ])
        .unwrap();
        assert_eq!(c.faults, [FaultKind::Kill, FaultKind::Delay]);
        assert_eq!(c.time_limit, Duration::from_secs(120));
        assert_eq!((c.concurrency, c.accounts, c.max_attempts), (3, 50, 2));
        assert!(!c.dedup && c.read_uncommitted && c.in_process && !c.cover_targets);
        assert_eq!(c.drain_timeout, Duration::from_secs(9));
        assert_eq!(c.fault_rate, Some(6.0));
        assert_eq!(c.quiet_time().unwrap(), Duration::from_secs(9));
        assert_eq!(c.targets, ["postgres", "relay"]);
        assert_eq!(c.node_binary, Some(PathBuf::from("/bin/x")));
        assert_eq!((c.overlap, c.poison_rate, c.rate), (0.5, Some(0.1), None));
        assert!(c.allow_fault_errors && c.pgbench);
        assert_eq!(
            c.engines,
            Engines {
                kafka: KafkaImpl::Tansu,
                rocketmq: RocketMqImpl::Rust,
                images: ImageSource::Official,
                debezium: crate::engines::connect::Debezium::V3_2,
            }
        );
        assert_eq!(c.out, PathBuf::from("/tmp/r"));
        assert_eq!(c.nemesis(), "kill,delay");
    }

    #[test]
    fn bad_flags_are_refused_naming_the_flag() {
        for args in [
            &["--nemesis", "flood"][..],
            &["--time-limit", "1h"],
            &["--accounts", "0"],
            &["--overlap", "2"],
            &["--rate=-3"],
            &["--fault-rate", "6", "--fault-interval", "2s"],
            &["--kafka", "redpanda"],
            &["--debezium", "2.7"],
        ] {
            let e = parse(args)
                .err()
                .unwrap_or_else(|| panic!("{args:?} taken"));
            let flag = args[0].split('=').next().unwrap_or_default();
            assert!(e.to_string().contains(flag), "{args:?}: {e}");
        }
        // Taken by the parser, refused before anything starts.
        let c = parse(&["--fault-rate", "30", "--fault-hold", "3s"]).unwrap();
        assert!(c.check().unwrap_err().to_string().contains("at most 20.0"));
        let c = RunConfig {
            concurrency: 0,
            ..RunConfig::new(1)
        };
        assert!(c.check().is_err());
        // A duration past a day is refused by the parser itself, naming the flag.
        let e = parse(&["--time-limit", "99999999999999999m"]).unwrap_err();
        assert!(e.to_string().contains("--time-limit"), "{e}");
        let c = RunConfig {
            time_limit: Duration::from_secs(u64::MAX / 4),
            ..RunConfig::new(1)
        };
        assert!(c.check().unwrap_err().to_string().contains("time_limit"));
        // Debezium 3.2 has no offset.mismatch.strategy: asking for one is refused.
        let c = parse(&["--debezium", "3.2", "--slot-mismatch", "trust_offset"]).unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("--slot-mismatch") && e.contains("3.2"), "{e}");
        let c = parse(&["--debezium", "3.2", "--slot-mismatch", "no_validation"]).unwrap();
        assert!(c.check().is_ok());
    }

    #[test]
    fn a_service_gets_no_poison_unless_asked() {
        let scheme = RunConfig::new(1);
        assert_eq!(scheme.poison_share(), DEFAULT_POISON_RATE);
        let service = RunConfig {
            service: Some(PathBuf::from("svc")),
            ..RunConfig::new(1)
        };
        assert_eq!(service.poison_share(), 0.0);
        let asked = RunConfig {
            poison_rate: Some(0.2),
            ..service
        };
        assert_eq!(asked.poison_share(), 0.2);
    }

    #[test]
    fn run_json_holds_every_setting_and_older_files_still_read() {
        let c = parse(&["--fault-rate", "6", "--poison-rate", "0.05"]).unwrap();
        let json = serde_json::to_value(&c).unwrap();
        let back: RunConfig = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
        assert_eq!(
            json["faults"],
            serde_json::json!([
                "kill",
                "pause",
                "isolate",
                "loss",
                "crash-after",
                "cut-before"
            ])
        );
        assert_eq!(json["fault_rate"], 6.0);
        // A file from before the newer fields: their older meanings.
        let old: RunConfig =
            serde_json::from_str(r#"{"system": "txmsg", "seed": 3, "concurrency": 2}"#).unwrap();
        assert_eq!(
            (old.system, old.seed, old.concurrency),
            (SystemKind::TxMsg, 3, 2)
        );
        assert_eq!(old.poison_rate, Some(0.0));
        assert_eq!(old.rate, None);
        assert!(!old.cover_targets && old.fault_rate.is_none());
        assert_eq!(old.time_limit, Duration::from_secs(60));
        assert!(serde_json::from_str::<RunConfig>(r#"{"system": "nope"}"#).is_err());
    }
}
