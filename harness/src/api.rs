//! The library API: run chaosbank from your own Rust tests, the same run `chaosbank run`
//! does (cluster, seeded workload and fault schedule, drain, check, run store).
//!
//! ```no_run
//! use chaosbank::{FaultKind, SystemKind, Test};
//! use std::time::Duration;
//!
//! # async fn example() -> anyhow::Result<()> {
//! let report = Test::new(SystemKind::Outbox)
//!     .nemesis([FaultKind::Kill, FaultKind::Isolate])
//!     .seed(7)
//!     .time_limit(Duration::from_secs(20))
//!     .concurrency(4)
//!     // The scheme's processes run in node containers from a build of chaosbank.
//!     .node_binary("target/debug/chaosbank")
//!     .out("target/chaosbank-runs")
//!     .run()
//!     .await?;
//! assert!(report.is_valid(), "{}", report.one_line());
//! // The run's folder holds run.json, history.jsonl, verdict.json, report.html, logs/.
//! let again = chaosbank::replay::replay(report.dir(), None).await?;
//! assert!(again.reproduced, "{}", again.summary());
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;
use std::time::Duration;

use crate::run::{self, RunConfig, RunReport, SystemKind};
use crate::schedule::FaultKind;

/// A chaosbank run to configure and start (turmoil-style builder) around the one
/// settings type, [`RunConfig`]. Defaults are those of `chaosbank run`
/// ([`RunConfig::new`]) with a seed from the clock; call [`Test::seed`] for a
/// reproducible run.
#[derive(Clone, Debug)]
#[must_use = "a Test does nothing until .run().await"]
pub struct Test {
    cfg: RunConfig,
}

impl Test {
    /// A run of `system` with `chaosbank run`'s defaults.
    pub fn new(system: SystemKind) -> Test {
        Test {
            cfg: RunConfig {
                system,
                ..RunConfig::new(run::seed_from_time())
            },
        }
    }

    /// Starts from a whole [`RunConfig`] (e.g. one read from a `run.json`).
    pub fn from_config(cfg: RunConfig) -> Test {
        Test { cfg }
    }

    /// The fault kinds to draw from; empty for no faults.
    pub fn nemesis(mut self, faults: impl IntoIterator<Item = FaultKind>) -> Test {
        self.cfg.faults = faults.into_iter().collect();
        self
    }

    /// The seed of the workload and the fault schedule.
    pub fn seed(mut self, seed: u64) -> Test {
        self.cfg.seed = seed;
        self
    }

    /// How long the workload and the faults run.
    pub fn time_limit(mut self, t: Duration) -> Test {
        self.cfg.time_limit = t;
        self
    }

    /// Concurrent client workers.
    pub fn concurrency(mut self, n: usize) -> Test {
        self.cfg.concurrency = n;
        self
    }

    /// The run store's root (`<out>/<system>/<timestamp>-<seed>/`); default `runs`.
    pub fn out(mut self, dir: impl Into<PathBuf>) -> Test {
        self.cfg.out = dir.into();
        self
    }

    /// Whether consumers deduplicate (default on; off must be convicted of duplicates).
    pub fn dedup(mut self, on: bool) -> Test {
        self.cfg.dedup = on;
        self
    }

    /// The longest wait for the scheme to drain after healing.
    pub fn drain_timeout(mut self, t: Duration) -> Test {
        self.cfg.drain_timeout = t;
        self
    }

    /// Mean quiet time between faults and mean time a fault holds.
    pub fn fault_timing(mut self, interval: Duration, hold: Duration) -> Test {
        self.cfg.fault_interval = interval;
        self.cfg.fault_hold = hold;
        self
    }

    /// The nodes faults may target (`postgres`, `mariadb`, `kafka`, `broker`, …).
    pub fn targets<S: Into<String>>(mut self, nodes: impl IntoIterator<Item = S>) -> Test {
        self.cfg.targets = nodes.into_iter().map(Into::into).collect();
        self
    }

    /// The binary the scheme's node containers run (a build of `chaosbank`; default:
    /// see [`crate::deploy::node_binary`], e.g. `$CHAOSBANK_NODE_BIN`).
    pub fn node_binary(mut self, path: impl Into<PathBuf>) -> Test {
        self.cfg.node_binary = Some(path.into());
        self
    }

    /// Share of poison transfers (to a closed bank B account), which a correct scheme
    /// parks for a person; default: see [`RunConfig::poison_share`].
    pub fn poison_rate(mut self, share: f64) -> Test {
        self.cfg.poison_rate = Some(share);
        self
    }

    /// Verifies a user's own service instead of a reference scheme: its manifest
    /// (`chaosbank.toml`) or the folder holding it. Poison transfers are off unless
    /// [`Test::poison_rate`] says otherwise.
    pub fn service(mut self, manifest: impl Into<std::path::PathBuf>) -> Test {
        self.cfg.service = Some(manifest.into());
        self
    }

    /// Runs the scheme's producer, relay and consumer as tasks of this process instead
    /// of in node containers.
    pub fn in_process(mut self, on: bool) -> Test {
        self.cfg.in_process = on;
        self
    }

    /// The brokers' implementations (default: Apache Kafka, Apache RocketMQ).
    pub fn engines(mut self, engines: crate::service::Engines) -> Test {
        self.cfg.engines = engines;
        self
    }

    /// A consumer parks a message (dead letter) after failing it this many times.
    pub fn max_attempts(mut self, n: u32) -> Test {
        self.cfg.max_attempts = n;
        self
    }

    /// Also measures raw pgbench TPS on the same PostgreSQL container.
    pub fn pgbench(mut self, on: bool) -> Test {
        self.cfg.pgbench = on;
        self
    }

    /// Changes any other setting of the run (every one is a field of [`RunConfig`], the
    /// settings `chaosbank run` takes as flags), e.g.
    /// `.configure(|c| c.overlap = 0.3)`.
    pub fn configure(mut self, change: impl FnOnce(&mut RunConfig)) -> Test {
        change(&mut self.cfg);
        self
    }

    /// The configuration so far.
    pub fn config(&self) -> &RunConfig {
        &self.cfg
    }

    /// Runs it: starts a cluster, drives the workload and the faults, heals, drains,
    /// checks, stores the run, removes the cluster. The verdict is in
    /// [`RunReport::verdict`] (see also [`RunReport::is_valid`]).
    pub async fn run(self) -> anyhow::Result<RunReport> {
        run::run(&self.cfg).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_sets_every_field() {
        let t = Test::new(SystemKind::TxMsg)
            .nemesis([FaultKind::Kill])
            .seed(9)
            .time_limit(Duration::from_secs(3))
            .concurrency(2)
            .out("/tmp/x")
            .dedup(false)
            .drain_timeout(Duration::from_secs(4))
            .fault_timing(Duration::from_secs(1), Duration::from_secs(2))
            .targets(["postgres"])
            .service("examples/services/python-outbox")
            .configure(|c| c.overlap = 0.25)
            .pgbench(true);
        let c = t.config();
        assert_eq!(c.system, SystemKind::TxMsg);
        assert_eq!(c.faults, vec![FaultKind::Kill]);
        assert_eq!((c.seed, c.concurrency), (9, 2));
        assert_eq!(c.time_limit, Duration::from_secs(3));
        assert_eq!(c.out, PathBuf::from("/tmp/x"));
        assert!(!c.dedup && c.pgbench);
        assert_eq!(c.drain_timeout, Duration::from_secs(4));
        assert_eq!(c.fault_interval, Duration::from_secs(1));
        assert_eq!(c.fault_hold, Duration::from_secs(2));
        assert_eq!(c.targets, vec!["postgres".to_string()]);
        assert_eq!(c.overlap, 0.25);
        // A service gets no poison unless asked, whatever the order.
        assert_eq!(c.poison_share(), 0.0);
        let asked = t.clone().poison_rate(0.1).service("elsewhere");
        assert_eq!(asked.config().poison_share(), 0.1);
        assert!(Test::new(SystemKind::Outbox)
            .nemesis([])
            .config()
            .faults
            .is_empty());
    }
}
