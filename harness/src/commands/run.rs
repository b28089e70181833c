//! `chaosbank run`: one scheme under a seeded workload and fault schedule, checked.
//!
//! Exit status as `chaosbank check`: 0 valid, 1 invalid, 2 unknown (or the run failed).
//! The last line on stdout is a one-line summary for CI logs; `--junit FILE` writes the
//! verdict (or the run's error) as JUnit XML.

use crate::commands::block_on;
use checkers::render;
use harness::run::{self, RunConfig};
use harness::service::{Engines, ImageSource, KafkaImpl, RocketMqImpl};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use workloads::system::SystemKind;

/// Flags of `chaosbank run`; every one has a default that works out of the box.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  chaosbank run                                   # outbox, every fault, 60 s, seed from the clock
  chaosbank run --system dual-write --nemesis kill,partition --time-limit 30s --seed 7
  chaosbank run --system txmsg --nemesis none --concurrency 16 --pgbench
  chaosbank run --seed 7 --junit junit.xml        # for CI: JUnit XML, exit 0/1/2
  chaosbank run --service examples/services/python-outbox --nemesis kill,pause,partition

The run is stored in <out>/<system>/<timestamp>-<seed>/: run.json (seed, config, image ids,
versions, outcome), history.jsonl, verdict.json, report.html, logs/<node>.log; <out>/latest
points at it. Replay it with `chaosbank replay runs/latest`.
Exit status: 0 valid, 1 invalid, 2 unknown or the run failed.")]
pub struct RunArgs {
    /// The scheme under test: dual-write and kafka-tx (the controls, wrong on purpose),
    /// outbox, txmsg.
    #[arg(long, default_value = "outbox", value_parser = parse_system)]
    pub system: SystemKind,
    /// Seed of the workload and the fault schedule (default: from the clock, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also measure raw pgbench TPS on the same PostgreSQL container (adds ~15 s).
    #[arg(long)]
    pub pgbench: bool,
    #[command(flatten)]
    pub flags: RunFlags,
}

/// The flags `chaosbank run` and `chaosbank soak` share: faults, timing, the scheme's
/// options, where the runs go.
#[derive(clap::Args)]
pub struct RunFlags {
    /// Faults to draw from, comma-separated: kill, pause, partition, loss, latency,
    /// clock (the wall clock of the scheme's or service's own containers moved ±1–10
    /// min) (also isolate, halves, cut, delay), or none.
    #[arg(long, default_value = "kill,pause,partition,loss")]
    pub nemesis: String,
    /// How long the workload and the faults run (e.g. 60s, 2m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub time_limit: Duration,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Turn the consumers' deduplication off (to see duplicates caught).
    #[arg(long)]
    pub no_dedup: bool,
    /// Accounts in each bank: fewer means hotter rows (more lock contention and more
    /// refused transfers); more spreads the load.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub accounts: u64,
    /// The consumers of topics written in Kafka transactions (kafka-tx, outbox-eos) read
    /// read_uncommitted: a misconfiguration, to see aborted reads caught.
    #[arg(long)]
    pub read_uncommitted: bool,
    /// outbox-cdc: the Debezium connector's offset.mismatch.strategy, what it does when
    /// its stored offset and the replication slot disagree: no_validation (Debezium's
    /// default: a slot made anew streams from "now") or trust_offset (the task fails
    /// when the slot is ahead of the offset).
    #[arg(long, default_value = "no_validation", value_parser = parse_slot_mismatch)]
    pub slot_mismatch: workloads::connect::SlotMismatch,
    /// A consumer parks a message for manual intervention (dead letter) after failing
    /// to credit it this many times.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,
    /// The longest wait for the scheme to drain after healing.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// Mean quiet time between faults.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub fault_interval: Duration,
    /// Mean time a fault holds.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub fault_hold: Duration,
    /// Faults per minute, instead of --fault-interval: the quiet time between faults is
    /// then 60 s / rate less the hold. Bounded: one fault follows another, so at most
    /// 60 s / --fault-hold a minute (--overlap adds second faults beside those).
    #[arg(long, value_name = "PER_MIN", conflicts_with = "fault_interval")]
    pub fault_rate: Option<f64>,
    /// Nodes the faults may target, comma-separated (nodes the scheme lacks are skipped):
    /// the engines and the scheme's own producer, relay and consumer nodes (and
    /// outbox-cdc's Kafka Connect worker, `connect`).
    #[arg(
        long,
        default_value = "postgres,mariadb,kafka,broker,producer,relay,consumer,connect"
    )]
    pub targets: String,
    /// Run the scheme's producer, relay and consumer as tasks of this process instead
    /// of in node containers (faults then reach them only through the engines).
    #[arg(long)]
    pub in_process: bool,
    /// The binary the node containers run (default: this chaosbank; or
    /// $CHAOSBANK_NODE_BIN).
    #[arg(long)]
    pub node_binary: Option<PathBuf>,
    /// Draw every fault's target at random, instead of first hitting each target once
    /// in a seeded order with holds of at least 3 s.
    #[arg(long)]
    pub random_targets: bool,
    /// The chance (0–1) that a fault gets a second, overlapping one: started while the
    /// first holds, on other nodes (kill, pause, isolate, loss, delay or clock). Default 0.
    /// The summary's "N overlapping" counts faults that did overlap, drawn or not: with 0,
    /// a slow revert (a killed engine restarting until ready) still running when the
    /// next fault starts.
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    pub overlap: f64,
    /// Share of transfers that are poison: to a closed account bank B refuses, so every
    /// correct scheme must park them for a person (reported `parked` with the reason).
    /// Default 0.01; 0 with --service (the contract does not promise parking).
    #[arg(long, value_parser = parse_share)]
    pub poison_rate: Option<f64>,
    /// The offered load in ops/s over all clients (Jepsen's stagger: each waits a seeded
    /// random share of its period); 0 for as fast as the system answers. Default: 100
    /// per core.
    #[arg(long, value_name = "OPS_PER_S")]
    pub rate: Option<f64>,
    /// Verify your own service instead of a reference scheme: its manifest
    /// (`chaosbank.toml`) or the folder holding it (see README, "Test your own service").
    #[arg(long, value_name = "DIR_OR_TOML")]
    pub service: Option<PathBuf>,
    /// Judge the run even when a drawn fault could not be applied (by default such a
    /// run ends unknown, exit 2, naming the fault and why).
    #[arg(long)]
    pub allow_fault_errors: bool,
    /// The Kafka implementation: apache (Apache Kafka 4, the default) or tansu (needs
    /// `docker/setup.sh --rust-brokers`).
    #[arg(long, default_value = "apache", value_parser = KafkaImpl::parse)]
    pub kafka: KafkaImpl,
    /// The RocketMQ implementation: apache (Apache RocketMQ 5, the default) or rust
    /// (rocketmq-rust; needs `docker/setup.sh --rust-brokers`).
    #[arg(long, default_value = "apache", value_parser = RocketMqImpl::parse)]
    pub rocketmq: RocketMqImpl,
    /// Where the engines' images come from: built (here, from docker/) or official
    /// (postgres:15, mariadb:10.11, apache/kafka:4.1.1, pulled from Docker Hub or from
    /// CHAOSBANK_REGISTRY=host:port; apache/rocketmq:5.3.3 too).
    #[arg(long, default_value = "built", value_parser = ImageSource::parse)]
    pub images: ImageSource,
    /// Where runs are stored (`<dir>/<system>/<timestamp>-<seed>/history.jsonl`).
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// Also write JUnit XML to FILE (run: the verdict or the run's error; soak: one
    /// testcase per run).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

impl RunFlags {
    /// The run configuration these flags describe, for `system` and `seed`.
    pub fn config(&self, system: SystemKind, seed: u64) -> anyhow::Result<RunConfig> {
        Ok(RunConfig {
            system,
            faults: run::parse_nemesis(&self.nemesis)?,
            time_limit: self.time_limit,
            concurrency: self.concurrency,
            accounts: self.accounts as usize,
            dedup: !self.no_dedup,
            read_uncommitted: self.read_uncommitted,
            max_attempts: self.max_attempts,
            drain_timeout: self.drain_timeout,
            fault_interval: match self.fault_rate {
                Some(rate) => interval_for_rate(rate, self.fault_hold)?,
                None => self.fault_interval,
            },
            fault_hold: self.fault_hold,
            targets: self
                .targets
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
            in_process: self.in_process,
            node_binary: self.node_binary.clone(),
            cover_targets: !self.random_targets,
            overlap: self.overlap,
            allow_fault_errors: self.allow_fault_errors,
            poison_rate: self.poison_rate.unwrap_or(if self.service.is_some() {
                0.0
            } else {
                harness::run::DEFAULT_POISON_RATE
            }),
            service: self.service.clone(),
            rate: match self.rate {
                Some(r) if r <= 0.0 => None,
                Some(r) => Some(r),
                None => Some(run::default_rate()),
            },
            engines: Engines {
                kafka: self.kafka,
                rocketmq: self.rocketmq,
                images: self.images,
            },
            out: self.out.clone(),
            slot_mismatch: self.slot_mismatch,
            ..RunConfig::new(seed)
        })
    }
}

/// Parses a share between 0 and 1 for clap.
/// The mean quiet time between faults that gives `rate` faults per minute with holds of
/// `hold`, or why no such time exists.
fn interval_for_rate(rate: f64, hold: Duration) -> anyhow::Result<Duration> {
    if !(rate.is_finite() && rate > 0.0) {
        anyhow::bail!("--fault-rate {rate} is not a positive number of faults per minute");
    }
    let cycle = 60.0 / rate;
    let most = 60.0 / hold.as_secs_f64().max(1e-3);
    if cycle <= hold.as_secs_f64() {
        anyhow::bail!(
            "--fault-rate {rate}/min does not fit holds of {hold:?}: at most {most:.1} faults a minute (lower --fault-hold; --overlap adds faults beside these)"
        );
    }
    Ok(Duration::from_secs_f64(cycle - hold.as_secs_f64()))
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a share between 0 and 1 (e.g. 0.01)")),
    }
}

/// Parses a system name for clap.
pub fn parse_system(s: &str) -> Result<SystemKind, String> {
    SystemKind::parse(s).ok_or_else(|| format!("unknown system {s:?} ({})", SystemKind::names()))
}

/// Parses `90`, `90s`, `1500ms`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("not a duration: {s:?} (use ms, s or m)")),
    }
}

/// Runs `chaosbank run`.
pub fn run(args: RunArgs) -> ExitCode {
    let junit = args.flags.junit.clone();
    let seed = args.seed.unwrap_or_else(run::seed_from_time);
    let cfg = match args.flags.config(args.system, seed) {
        Ok(cfg) => RunConfig {
            pgbench: args.pgbench,
            ..cfg
        },
        Err(e) => {
            eprintln!("chaosbank run: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = &cfg.service {
        // A manifest that cannot be used is reported before anything starts.
        if let Err(e) = harness::sut::Manifest::load(path) {
            eprintln!("chaosbank run: {e}");
            return ExitCode::from(2);
        }
    }
    println!("seed {seed}");
    let name = cfg.name();
    block_on(async move {
        println!(
            "running {name} for {:?} with {} clients, nemesis {}",
            cfg.time_limit, cfg.concurrency, args.flags.nemesis
        );
        let suite = format!("chaosbank-run-{name}-seed{}", cfg.seed);
        // Ctrl-C stops the run and finalises its store; a second one aborts at once
        // (the watchdog still removes the containers).
        let interrupted = async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!(
                "interrupted: saving logs, run.json and a partial verdict (Ctrl-C again to abort)"
            );
            tokio::spawn(async {
                let _ = tokio::signal::ctrl_c().await;
                eprintln!("aborted");
                std::process::exit(130);
            });
        };
        let report = match run::run_until(&cfg, interrupted).await {
            Ok(r) => r,
            Err(e) => {
                if let Some(path) = &junit {
                    if let Err(je) =
                        harness::report::junit::write_junit_error(&suite, &format!("{e:#}"), path)
                    {
                        eprintln!("chaosbank run: {je}");
                    }
                }
                eprintln!("error: {e:#}");
                println!(
                    "chaosbank {name} seed {}: ERROR — {}",
                    cfg.seed,
                    format!("{e:#}").lines().next().unwrap_or_default()
                );
                return Ok(ExitCode::from(2));
            }
        };
        print!("{}", render::summary(&report.verdict, 5));
        println!("{}", report.summary());
        let mut code = report.verdict.valid.exit_code();
        if let Some(path) = &junit {
            if let Err(e) = harness::report::junit::write_junit(&report.verdict, &suite, path) {
                eprintln!("chaosbank run: {e}");
                code = code.max(2);
            }
        }
        println!("{}", report.one_line());
        Ok(ExitCode::from(code))
    })
}

/// Parses `--slot-mismatch`.
fn parse_slot_mismatch(s: &str) -> Result<workloads::connect::SlotMismatch, String> {
    workloads::connect::SlotMismatch::parse(s).ok_or_else(|| {
        format!("unknown offset.mismatch.strategy {s:?}; use no_validation or trust_offset")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("1h").is_err());
    }

    #[test]
    fn a_fault_rate_is_an_interval_and_is_bounded_by_the_hold() {
        let hold = Duration::from_secs(5);
        // 6 a minute: a 10 s cycle, 5 s of it held.
        assert_eq!(
            interval_for_rate(6.0, hold).unwrap(),
            Duration::from_secs(5)
        );
        let e = interval_for_rate(12.0, hold).unwrap_err().to_string();
        assert!(e.contains("at most 12.0 faults a minute"), "{e}");
        assert!(interval_for_rate(0.0, hold).is_err());
        assert!(interval_for_rate(f64::NAN, hold).is_err());
    }
}
