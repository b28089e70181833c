//! The run store: what a run leaves in `<out>/<system>/<timestamp>-<seed>/` besides the
//! history, the verdict and the report.
//!
//! - `run.json` ([`RunMeta`]): the seed, the whole [`RunConfig`], chaosbank's version
//!   and git commit, the Docker engine's version, every container's image id, the
//!   engines' own versions, and at the end the outcome. It is written when the run
//!   starts (config and seed), completed once the cluster is up (images, versions) and
//!   again at the end (outcome), so a run killed half-way still says what it was.
//! - `logs/<node>.log`: each container's output, saved before the cluster is removed.
//!
//! [`load`] reads a stored run back (for `chaosbank replay`), naming the file in every
//! error.

use anyhow::{bail, Context, Result};
use checkers::verdict::{AnomalyKind, Validity, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cluster::Cluster;
use crate::config::RunConfig;
use crate::outcome::{Figures, RunReport};

/// The file name of a run's metadata.
pub const RUN_JSON: &str = "run.json";

/// The folder of a run's container logs.
pub const LOGS: &str = "logs";

/// chaosbank's git commit, captured when the harness was built (`unknown` outside a
/// git checkout).
pub const GIT_COMMIT: &str = env!("CHAOSBANK_GIT_COMMIT");

/// What `run.json` holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunMeta {
    /// chaosbank's version and commit.
    pub chaosbank: Build,
    /// The scheme's name (also in `config.system`; here for `jq` and people).
    pub system: String,
    /// The run's seed (also in `config.seed`).
    pub seed: u64,
    /// Everything the run was made of; `chaosbank replay` runs this again.
    pub config: RunConfig,
    /// When the run started, seconds since the Unix epoch.
    pub started_at: u64,
    /// When it ended (absent while it runs, or when it was killed).
    pub finished_at: Option<u64>,
    /// The Docker engine (absent until the cluster is up).
    pub docker: Option<DockerVersion>,
    /// One entry per container, by node name.
    pub containers: BTreeMap<String, Container>,
    /// The engines' own versions, by node: `SELECT version()` for the databases, the
    /// broker binary and its crate version for the brokers (`tansu 0.6.0`).
    pub engines: BTreeMap<String, String>,
    /// The stored run this one replays, if any.
    pub replay_of: Option<PathBuf>,
    /// The fault schedule the run played, drawn or given (absent until the run ends,
    /// and from older files): a file `chaosbank run --schedule` takes as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<crate::schedule::Schedule>,
    /// How often replays reproduced this run's verdict (`chaosbank replay --times N`),
    /// absent until one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reproduction: Option<Reproduction>,
    /// How it ended (absent while it runs, or when it was killed).
    pub outcome: Option<Outcome>,
}

/// chaosbank itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Build {
    /// The crate version.
    pub version: String,
    /// The git commit it was built from ([`GIT_COMMIT`]).
    pub commit: String,
}

impl Default for Build {
    fn default() -> Build {
        Build {
            version: env!("CARGO_PKG_VERSION").to_string(),
            commit: GIT_COMMIT.to_string(),
        }
    }
}

/// The Docker engine's versions.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DockerVersion {
    /// Engine version, e.g. `26.1.5`.
    pub version: String,
    /// Its API version, e.g. `1.45`.
    pub api_version: String,
    /// The host's kernel.
    pub kernel: String,
    /// Where it was reached.
    pub endpoint: String,
}

/// One container of the run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Container {
    /// The container's name.
    pub name: String,
    /// The image reference it was started from.
    pub image: String,
    /// The image's id (`sha256:…`), which pins the exact build.
    pub image_id: String,
}

/// How often a run's verdict reproduced over replays ([`crate::replay::replay_times`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reproduction {
    /// Replays that reproduced the verdict (same validity, same violation kinds).
    pub reproduced: usize,
    /// Replays run (one that failed counts as not reproduced).
    pub times: usize,
    /// Each replay's folder.
    pub runs: Vec<PathBuf>,
}

/// How a run ended.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Outcome {
    /// `valid`, `invalid`, `unknown`, or `error` when the run itself failed.
    pub valid: String,
    /// Findings per anomaly name (only names with findings).
    pub anomalies: BTreeMap<String, usize>,
    /// Faults that took effect.
    pub faults: usize,
    /// Of those, how many of each kind (absent from older files).
    #[serde(default)]
    pub fault_kinds: BTreeMap<String, usize>,
    /// Of those, how many took effect while another held (absent from older files: 0).
    #[serde(default)]
    pub faults_overlapping: usize,
    /// The first violation's anomaly (absent when none, and from older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_violation: Option<String>,
    /// Seconds into the run of the first op a violation names: the time to conviction
    /// (absent when none, and from older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_violation_s: Option<f64>,
    /// Whether the scheme drained before the drain timeout.
    pub drained: bool,
    /// The run's figures.
    pub figures: Figures,
    /// The error, when the run failed.
    pub error: Option<String>,
}

impl Outcome {
    /// The outcome of a finished run.
    pub fn of_report(report: &RunReport) -> Outcome {
        Outcome {
            valid: report.verdict.valid.as_str().to_string(),
            anomalies: anomaly_counts(&report.verdict),
            faults: report.faults,
            fault_kinds: report.fault_kinds.clone(),
            faults_overlapping: report.faults_overlapping,
            first_violation: report.first_violation.as_ref().map(|f| f.anomaly.clone()),
            first_violation_s: report
                .first_violation
                .as_ref()
                .and_then(|f| f.at)
                .map(|d| d.as_secs_f64()),
            drained: report.drained,
            figures: report.figures.clone(),
            error: None,
        }
    }

    /// The anomaly kinds that are violations ([`AnomalyKind::is_violation`]; a name
    /// this chaosbank does not know counts as one).
    pub fn violations(&self) -> Vec<String> {
        self.anomalies
            .keys()
            .filter(|k| AnomalyKind::name_is_violation(k))
            .cloned()
            .collect()
    }

    /// `INVALID lost ×3, duplicated ×1` or `VALID`: the validity and each violation's
    /// count (what replay and shrink print for a run).
    pub fn describe(&self) -> String {
        let kinds: Vec<String> = self
            .anomalies
            .iter()
            .filter(|(k, _)| AnomalyKind::name_is_violation(k))
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect();
        format!("{} {}", self.valid.to_uppercase(), kinds.join(", "))
            .trim_end()
            .to_string()
    }
}

/// Findings per anomaly name, leaving out names without findings.
pub fn anomaly_counts(verdict: &Verdict) -> BTreeMap<String, usize> {
    verdict
        .anomalies
        .keys()
        .map(|k| (k.clone(), verdict.count_named(k).unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Findings of the anomalies that are violations ([`Verdict::violations`]).
pub fn violation_count(verdict: &Verdict) -> usize {
    verdict.violations()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A run's folder being filled. Failing to write metadata or logs is logged, never
/// fatal: the history and the verdict matter more.
#[derive(Debug)]
pub struct RunStore {
    dir: PathBuf,
    meta: RunMeta,
    progress: crate::progress::RunProgress,
}

impl RunStore {
    /// Creates the run's folder and writes `run.json` with the config and the seed.
    pub fn create(dir: &Path, cfg: &RunConfig) -> Result<RunStore> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let system = crate::sut::subject_name(cfg)?;
        let store = RunStore {
            dir: dir.to_path_buf(),
            meta: RunMeta {
                chaosbank: Build::default(),
                system,
                seed: cfg.seed,
                config: cfg.clone(),
                started_at: now(),
                ..RunMeta::default()
            },
            progress: crate::progress::RunProgress::start(cfg),
        };
        store.save()?;
        Ok(store)
    }

    /// The run's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What has been recorded so far.
    pub fn meta(&self) -> &RunMeta {
        &self.meta
    }

    /// The run's progress display (hidden unless enabled and stderr is a terminal).
    pub fn progress(&self) -> &crate::progress::RunProgress {
        &self.progress
    }

    fn save(&self) -> Result<()> {
        save(&self.dir, &self.meta)
    }

    fn save_logged(&self) {
        if let Err(e) = self.save() {
            tracing::warn!("{e:#}");
        }
    }

    /// Takes the cluster start's result: an error is recorded as the outcome and
    /// returned; a cluster is recorded (the Docker engine's version, each container's
    /// image id, the databases' versions, rewriting `run.json`) and returned.
    pub async fn cluster_up(&mut self, started: Result<Cluster>) -> Result<Cluster> {
        match started {
            Ok(cluster) => {
                self.record_cluster(&cluster).await;
                Ok(cluster)
            }
            Err(e) => {
                self.record_error(&e);
                self.progress.finish();
                Err(e)
            }
        }
    }

    /// Records a running cluster (see [`RunStore::cluster_up`]).
    pub async fn record_cluster(&mut self, cluster: &Cluster) {
        self.progress.phase("setting up the scheme");
        let engine = cluster.engine();
        match engine.api().version().await {
            Ok(v) => {
                self.meta.docker = Some(DockerVersion {
                    version: v.version.unwrap_or_default(),
                    api_version: v.api_version.unwrap_or_default(),
                    kernel: v.kernel_version.unwrap_or_default(),
                    endpoint: engine.endpoint().to_string(),
                })
            }
            Err(e) => tracing::warn!("docker version: {e}"),
        }
        self.record_containers(cluster).await;
        self.save_logged();
    }

    /// Records the image id (and the engine's version) of every node not recorded yet:
    /// those of the cluster's start, and nodes added later (a scheme's own containers).
    async fn record_containers(&mut self, cluster: &Cluster) {
        let engine = cluster.engine();
        for name in cluster.nodes() {
            if self.meta.containers.contains_key(&name) {
                continue;
            }
            let Ok(node) = cluster.node(&name) else {
                continue;
            };
            let image_id = match engine
                .api()
                .inspect_container(
                    &node.container,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
            {
                Ok(info) => info.image.unwrap_or_default(),
                Err(e) => {
                    tracing::warn!("inspect {}: {e}", node.container);
                    String::new()
                }
            };
            if let Some(v) = cluster.engine_version(&name).await {
                self.meta.engines.insert(name.clone(), v);
            }
            self.meta.containers.insert(
                name,
                Container {
                    name: node.container,
                    image: node.image,
                    image_id,
                },
            );
        }
    }

    /// Records nodes added since the start, saves every container's log under `logs/`
    /// (call before the cluster is removed) and completes `run.json` with the outcome.
    pub async fn finish(&mut self, cluster: &Cluster, result: &Result<RunReport>) {
        self.progress.phase("saving container logs");
        self.record_containers(cluster).await;
        save_logs(cluster, &self.dir.join(LOGS)).await;
        self.record(result);
        self.progress.finish();
    }

    /// Completes `run.json` with the outcome (without touching logs).
    pub fn record(&mut self, result: &Result<RunReport>) {
        match result {
            Ok(report) => {
                self.meta.schedule = report.schedule.clone();
                self.record_outcome(Outcome::of_report(report))
            }
            Err(e) => self.record_error(e),
        }
    }

    /// Completes `run.json` with a failed run's error.
    pub fn record_error(&mut self, e: &anyhow::Error) {
        self.record_outcome(Outcome {
            valid: "error".to_string(),
            error: Some(format!("{e:#}")),
            ..Outcome::default()
        });
    }

    fn record_outcome(&mut self, outcome: Outcome) {
        self.meta.finished_at = Some(now());
        self.meta.outcome = Some(outcome);
        self.save_logged();
    }
}

/// Writes `meta` as `dir/run.json` (through a temporary file, so a reader never sees
/// half of it).
pub fn save(dir: &Path, meta: &RunMeta) -> Result<()> {
    let path = dir.join(RUN_JSON);
    let tmp = dir.join(".run.json.tmp");
    let body = serde_json::to_vec_pretty(meta).context("serializing run.json")?;
    std::fs::write(&tmp, body)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads a stored run's `run.json`. `dir` is the run's folder (or a symlink to it such
/// as `runs/latest`), or the `run.json` file itself.
pub fn load(dir: &Path) -> Result<RunMeta> {
    let path = if dir.is_file() {
        dir.to_path_buf()
    } else {
        dir.join(RUN_JSON)
    };
    if !dir.exists() {
        bail!("{}: no such run folder", dir.display());
    }
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (is {} a run folder, such as runs/latest?)",
            path.display(),
            dir.display()
        )
    })?;
    let meta: RunMeta = serde_json::from_str(&text)
        .with_context(|| format!("{}: malformed run.json", path.display()))?;
    if meta.system.is_empty() {
        bail!("{}: malformed run.json: no system", path.display());
    }
    Ok(meta)
}

/// Saves each node's container log as `dir/<node>.log`; failures are logged.
pub async fn save_logs(cluster: &Cluster, dir: &Path) {
    if let Err(e) = std::fs::create_dir_all(dir) {
        tracing::warn!("creating {}: {e}", dir.display());
        return;
    }
    for name in cluster.nodes() {
        let Ok(node) = cluster.node(&name) else {
            continue;
        };
        let path = dir.join(format!("{name}.log"));
        if let Err(e) = cluster.engine().save_logs(&node.container, &path).await {
            tracing::warn!("saving the log of {name}: {e}");
        }
    }
}

impl RunReport {
    /// The run's folder in the store (where `run.json`, `verdict.json`, `logs/` are).
    pub fn dir(&self) -> &Path {
        self.history.parent().unwrap_or(Path::new("."))
    }

    /// One line for CI logs: `chaosbank outbox seed 7: VALID — 1234 ok transfers, 3
    /// faults, 0 anomalies, 45.1 transfers/s — runs/outbox/…`; kinds that are not
    /// violations follow the count apart (`0 anomalies, 32 parked`).
    pub fn one_line(&self) -> String {
        let (counts, apart) = self.verdict.split_counts();
        let violations: usize = counts.iter().map(|(_, n)| n).sum();
        let kinds: Vec<String> = counts.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        let apart: String = apart.iter().map(|(k, n)| format!(", {n} {k}")).collect();
        format!(
            "chaosbank {} seed {}: {} — {} ok transfers, {} faults, {} anomalies{}{apart}, {:.1} transfers/s — {}",
            self.name,
            self.seed,
            self.verdict.valid.as_str().to_uppercase(),
            self.figures.transfers_ok,
            self.faults,
            violations,
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            },
            self.figures.throughput,
            self.dir().display()
        )
    }

    /// Whether the verdict is valid.
    pub fn is_valid(&self) -> bool {
        self.verdict.valid == Validity::Valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::FaultKind;
    use std::time::Duration;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("chaosbank-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn the_one_liner_counts_violations_and_shows_the_rest_apart() {
        let counts = [("lost", 2), ("parked", 32), ("in-flight", 1)];
        let verdict = Verdict {
            valid: Validity::Invalid,
            anomalies: counts
                .iter()
                .map(|(k, _)| {
                    (
                        k.to_string(),
                        vec![checkers::Finding::new(k.to_string(), vec![1])],
                    )
                })
                .collect(),
            counts: counts.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
            omitted: BTreeMap::new(),
            models: BTreeMap::new(),
            ops: 10,
            warnings: vec![],
        };
        let report = RunReport {
            system: crate::config::SystemKind::Outbox,
            name: "outbox".into(),
            seed: 7,
            history: PathBuf::from("runs/outbox/x/history.jsonl"),
            verdict,
            faults: 3,
            fault_kinds: BTreeMap::new(),
            faults_overlapping: 0,
            first_violation: None,
            faults_failed: vec![],
            drained: true,
            drain_wait: Duration::ZERO,
            settled: None,
            backlog: None,
            dead_letters: 32,
            figures: Figures::default(),
            schedule: None,
        };
        let line = report.one_line();
        assert!(
            line.contains("2 anomalies (lost ×2), 1 in-flight, 32 parked,"),
            "{line}"
        );
        assert_eq!(violation_count(&report.verdict), 2);
        let outcome = Outcome::of_report(&report);
        assert_eq!(outcome.violations(), ["lost"]);
    }

    #[test]
    fn run_json_round_trips_and_is_written_at_the_start() {
        let dir = scratch("roundtrip");
        let cfg = RunConfig {
            system: crate::config::SystemKind::TxMsg,
            faults: vec![FaultKind::Kill, FaultKind::Halves],
            time_limit: Duration::from_millis(1500),
            ..RunConfig::new(42)
        };
        let mut store = RunStore::create(&dir, &cfg).unwrap();
        let meta = load(&dir).unwrap();
        assert_eq!(meta.seed, 42);
        assert_eq!(meta.system, "txmsg");
        assert_eq!(meta.config.system, crate::config::SystemKind::TxMsg);
        assert_eq!(meta.config.faults, cfg.faults);
        assert_eq!(meta.config.time_limit, cfg.time_limit);
        assert!(meta.outcome.is_none(), "no outcome before the end");
        store.record(&Err(anyhow::anyhow!("the cluster would not start")));
        let meta = load(&dir.join(RUN_JSON)).unwrap();
        let outcome = meta.outcome.unwrap();
        assert_eq!(outcome.valid, "error");
        assert!(outcome.error.unwrap().contains("would not start"));
        let text = std::fs::read_to_string(dir.join(RUN_JSON)).unwrap();
        assert!(text.contains("\"system\": \"txmsg\""), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn engine_versions_name_the_implementation() {
        let v = |node, image| crate::images::engine_version(node, image).unwrap_or_default();
        // `<binary> <version>` for the Rust brokers, from the cache path.
        assert!(v("kafka", "chaosbank/tansu:0123").starts_with("tansu 0."));
        assert!(v("broker", "chaosbank/rocketmq-rust:0123").starts_with("rocketmq-broker-rust 1."));
        assert!(
            v("namesrv", "chaosbank/rocketmq-rust:0123").starts_with("rocketmq-namesrv-rust 1.")
        );
        // The product and the version of its pom for the Apache ones.
        assert!(v("kafka", "chaosbank/kafka:0123").starts_with("Apache Kafka 4."));
        assert!(v("broker", "chaosbank/rocketmq:0123").starts_with("Apache RocketMQ 5."));
        // An official image names itself by its tag; an image from elsewhere is unknown.
        assert_eq!(
            v("kafka", "apache/kafka:3.7"),
            "Apache Kafka 3.7 (official image apache/kafka:3.7)"
        );
        assert_eq!(
            crate::images::engine_version("kafka", "example.org/bitnami/kafka:3.7"),
            None
        );
        assert_eq!(
            crate::images::engine_version("postgres", "chaosbank/postgres:0123"),
            None
        );
    }

    #[test]
    fn old_run_json_missing_fields_takes_defaults() {
        let dir = scratch("old");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(RUN_JSON),
            r#"{"system": "outbox", "seed": 7, "config": {"system": "outbox", "seed": 7}}"#,
        )
        .unwrap();
        let meta = load(&dir).unwrap();
        assert_eq!(meta.config.seed, 7);
        assert_eq!(meta.config.concurrency, RunConfig::new(0).concurrency);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_run_folders_are_named() {
        let dir = scratch("bad");
        let err = format!("{:#}", load(&dir).unwrap_err());
        assert!(err.contains("no such run folder"), "{err}");
        std::fs::create_dir_all(&dir).unwrap();
        let err = format!("{:#}", load(&dir).unwrap_err());
        assert!(err.contains("run.json"), "{err}");
        std::fs::write(dir.join(RUN_JSON), "{ not json").unwrap();
        let err = format!("{:#}", load(&dir).unwrap_err());
        assert!(err.contains("malformed run.json"), "{err}");
        assert!(err.contains(&dir.display().to_string()), "{err}");
        std::fs::write(
            dir.join(RUN_JSON),
            r#"{"system": "outbox", "config": {"system": "sagas"}}"#,
        )
        .unwrap();
        let err = format!("{:#}", load(&dir).unwrap_err());
        assert!(err.contains("unknown system"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
