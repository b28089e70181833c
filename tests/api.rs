//! The library API end to end: a short outbox run through the `chaosbank::Test` builder
//! (about 10 s of transfers, a kill and a pause or two), judged valid; its store holds
//! run.json (seed, config, image ids, versions, outcome) and every container's log; and
//! replaying it from run.json reproduces the verdict with the same fault schedule.
//! About a minute in all.

use chaosbank::store;
use chaosbank::{FaultKind, SystemKind, Test};
use std::path::PathBuf;
use std::time::Duration;

/// A folder for the runs, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The nemesis events of a history: `(f, value)` of each `nemesis` line, in order
/// (without the final heal, whose value lists what happened to be broken, and without
/// what the nemesis observed, which names the run's own containers). Every fault start
/// must carry an observation.
fn faults(history: &std::path::Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(history).expect("the history");
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|op| op["process"] == "nemesis" && op["f"] != "heal-all")
        .map(|mut op| {
            let start = ["kill", "pause", "partition", "loss", "delay"]
                .contains(&op["f"].as_str().unwrap_or_default());
            let observed = op["value"]
                .as_object_mut()
                .and_then(|v| v.remove("observed"));
            assert!(
                !start || observed.is_some_and(|o| o.as_str().is_some_and(|o| !o.is_empty())),
                "a fault start without the nemesis's observation: {op}"
            );
            (op["f"].to_string(), op["value"].to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn builder_run_is_stored_and_replays() {
    let out = Scratch(std::env::temp_dir().join(format!("chaosbank-api-{}", std::process::id())));
    let report = Test::new(SystemKind::Outbox)
        .nemesis([FaultKind::Kill, FaultKind::Pause])
        .seed(5)
        .time_limit(Duration::from_secs(10))
        .fault_timing(Duration::from_secs(2), Duration::from_secs(2))
        .concurrency(4)
        .drain_timeout(Duration::from_secs(60))
        .node_binary(chaosbank_tests::node_binary())
        .out(&out.0)
        .run()
        .await
        .expect("the run completes");
    eprintln!("{}", report.one_line());
    assert!(
        report.is_valid(),
        "outbox convicted: {}",
        checkers::render::summary(&report.verdict, 3)
    );
    assert!(report.faults >= 1, "the schedule held no fault");
    let dir = report.dir().to_path_buf();
    assert!(dir.starts_with(&out.0), "{dir:?} is not under {:?}", out.0);

    // run.json: seed, config, images, versions, outcome.
    let meta = store::load(&dir).expect("run.json");
    assert_eq!((meta.seed, meta.system.as_str()), (5, "outbox"));
    assert_eq!(meta.config.time_limit, Duration::from_secs(10));
    assert_eq!(meta.config.faults, vec![FaultKind::Kill, FaultKind::Pause]);
    assert!(!meta.chaosbank.commit.is_empty());
    let docker = meta.docker.as_ref().expect("the Docker engine's version");
    assert!(!docker.version.is_empty() && !docker.api_version.is_empty());
    for node in ["postgres", "mariadb", "kafka"] {
        let c = meta
            .containers
            .get(node)
            .unwrap_or_else(|| panic!("no {node} in run.json: {:?}", meta.containers));
        assert!(c.image_id.starts_with("sha256:"), "{node}: {c:?}");
    }
    assert!(
        meta.engines["postgres"].contains("PostgreSQL"),
        "{:?}",
        meta.engines
    );
    assert!(
        meta.engines["mariadb"].contains("MariaDB"),
        "{:?}",
        meta.engines
    );
    // The brokers' implementation and version: Apache Kafka by default.
    assert_eq!(meta.config.engines, chaosbank::service::Engines::default());
    assert!(
        meta.engines["kafka"].starts_with("Apache Kafka 4."),
        "{:?}",
        meta.engines
    );
    let outcome = meta.outcome.as_ref().expect("the outcome");
    assert_eq!(outcome.valid, "valid");
    assert_eq!(outcome.faults, report.faults);
    assert!(meta.finished_at >= Some(meta.started_at));

    // Every container's log, saved before the cluster was removed.
    for node in ["postgres", "mariadb", "kafka"] {
        let log = dir.join("logs").join(format!("{node}.log"));
        let len = std::fs::metadata(&log)
            .unwrap_or_else(|e| panic!("{}: {e}", log.display()))
            .len();
        assert!(len > 0, "{} is empty", log.display());
    }

    // Replay from the store's `latest` link: same seed, same faults, same verdict.
    let replay = chaosbank::replay::replay(&out.0.join("latest"), None)
        .await
        .expect("the replay completes");
    eprintln!("{}", replay.summary());
    assert!(replay.reproduced, "{}", replay.summary());
    assert_eq!(replay.original_dir, std::fs::canonicalize(&dir).unwrap());
    assert_ne!(replay.again.dir(), dir.as_path(), "the replay is a new run");
    assert_eq!(replay.again.seed, 5);
    assert_eq!(
        faults(&replay.again.history),
        faults(&report.history),
        "the replay played another fault schedule"
    );
    let again = store::load(replay.again.dir()).expect("the replay's run.json");
    assert_eq!(
        again.replay_of.as_deref(),
        Some(replay.original_dir.as_path())
    );
}
