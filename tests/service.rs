//! A user's own service, verified through the contract (`docs/sut.md`): the
//! examples `examples/services/python-outbox` — an outbox, a relay and a deduplicating
//! consumer in plain Python, run from its manifest in chaosbank's Python runtime — and
//! `examples/services/java-txmsg` — RocketMQ's transactional producer with its check
//! listener and a push consumer, a Maven-built jar in chaosbank's Java runtime — are
//! cleared under kill, pause and partition of their own processes and of the engines;
//! their broken variants (the relay marks rows sent before the broker acknowledged them;
//! the check-back commits half messages it has no record of) are convicted, the
//! transfers named in the verdict; every variant manifest is its service with one
//! switch (no engine); the broken `examples/services/python-cdc` (Debezium publishing
//! through the manifest's `[[connector]]`, a consumer without dedup) is convicted of
//! duplicates when its Kafka Connect worker is killed, and the correct one cleared under
//! the same kills; and a manifest mistake or a
//! process that dies at start is named before anything is left running.
//!
//! Runs are serialized (one cluster at a time).

use chaosbank::run::{self, RunConfig, RunReport};
use chaosbank::schedule::FaultKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One cluster at a time on a small machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The broken python-outbox's seeds: the first the same schedule as the correct one's.
const BROKEN_SEEDS: [u64; 2] = [21, 22];

/// The broken java-txmsg's seeds.
const JAVA_BROKEN_SEEDS: [u64; 2] = [22, 23];

fn example(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/services/python-outbox")
        .join(file)
}

/// The java-txmsg example's manifest `file`, its jar built with Maven first (once).
fn java_example(file: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/services/java-txmsg");
    BUILT.get_or_init(|| {
        let out = std::process::Command::new("mvn")
            .args(["-q", "-B", "-DskipTests", "package", "-f"])
            .arg(dir.join("pom.xml"))
            .output()
            .expect("Maven (mvn) runs: bash docker/setup.sh installs it");
        assert!(
            out.status.success(),
            "mvn package of the java-txmsg example failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
    dir.join(file)
}

/// The java-txmsg example's targets: the RocketMQ engines and its two processes.
fn java_config(manifest: &Path, seed: u64, out: &Path) -> RunConfig {
    RunConfig {
        targets: [
            "postgres", "mariadb", "namesrv", "broker", "api", "consumer",
        ]
        .map(String::from)
        .to_vec(),
        ..config(manifest, seed, out)
    }
}

/// Kill, pause and partition, on the service's three processes and the engines, a
/// fault every ~1 s holding ~3 s (at least 3 s) for 40 s: eight or so faults, the first
/// six a covering round over every target.
fn config(manifest: &Path, seed: u64, out: &Path) -> RunConfig {
    RunConfig {
        service: Some(manifest.to_path_buf()),
        faults: vec![FaultKind::Kill, FaultKind::Pause, FaultKind::Isolate],
        targets: ["postgres", "mariadb", "kafka", "api", "relay", "consumer"]
            .map(String::from)
            .to_vec(),
        time_limit: Duration::from_secs(40),
        fault_interval: Duration::from_secs(1),
        fault_hold: Duration::from_secs(3),
        drain_timeout: Duration::from_secs(120),
        out: out.to_path_buf(),
        node_binary: Some(chaosbank_tests::node_binary()),
        ..RunConfig::new(seed)
    }
}

/// The processes the run's faults hit, from its history.
fn hit(report: &RunReport) -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(&report.history).expect("the history");
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|op| op["process"] == "nemesis" && op["f"] != "heal" && op["f"] != "heal-all")
        .filter_map(|op| op["value"]["node"].as_str().map(String::from))
        .collect()
}

/// The run took load, its faults `hit` each of `processes`, it drained, and was judged
/// valid.
fn assert_cleared(
    report: &RunReport,
    hit: &std::collections::BTreeSet<String>,
    name: &str,
    processes: &[&str],
) {
    assert_eq!(report.name, name);
    assert!(report.figures.transfers_ok > 50, "{}", report.summary());
    for process in processes {
        assert!(
            hit.contains(*process),
            "no fault hit the service's {process}: {hit:?}"
        );
    }
    assert!(report.drained, "{}", report.summary());
    assert_eq!(
        report.verdict.valid,
        checkers::Validity::Valid,
        "{}",
        checkers::render::summary(&report.verdict, 10)
    );
}

async fn run_one(cfg: &RunConfig) -> RunReport {
    let report = run::run(cfg).await.expect("the run completes");
    assert!(
        report.faults_failed.is_empty(),
        "faults that did not take effect: {:?}",
        report.faults_failed
    );
    eprintln!(
        "{}\nfaults hit: {:?}\n{}",
        report.summary(),
        hit(&report),
        checkers::render::summary(&report.verdict, 3)
    );
    report
}

#[tokio::test(flavor = "multi_thread")]
async fn python_outbox_is_cleared_under_faults_on_its_processes_and_the_engines() {
    let _one = SERIAL.lock().await;
    let out = tempdir("cleared");
    let report = run_one(&config(&example("chaosbank.toml"), 21, &out)).await;
    let hit = hit(&report);
    let _ = std::fs::remove_dir_all(&out);
    assert_cleared(
        &report,
        &hit,
        "python-outbox",
        &["api", "relay", "consumer"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_broken_python_outbox_is_convicted_and_the_lost_transfers_named() {
    let _one = SERIAL.lock().await;
    let out = tempdir("broken");
    let mut convicted = Vec::new();
    for seed in BROKEN_SEEDS {
        let report = run_one(&config(&example("broken.toml"), seed, &out)).await;
        assert_eq!(report.name, "python-outbox-broken");
        if report.verdict.valid == checkers::Validity::Invalid {
            let lost = report.verdict.count(checkers::AnomalyKind::Lost);
            assert!(
                lost > 0,
                "convicted, but not of lost transfers: {:?}",
                report.verdict.anomalies.keys()
            );
            // Each finding names its transfer.
            let first = &report.verdict.anomalies["lost"][0];
            assert!(first.transfer.is_some(), "{first:?}");
            convicted.push(seed);
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    eprintln!(
        "broken python-outbox convicted in {} of {} seeds: {convicted:?}",
        convicted.len(),
        BROKEN_SEEDS.len()
    );
    assert!(
        !convicted.is_empty(),
        "the broken outbox was cleared in every seed"
    );
}

/// `soak` and `replay` take a service as `run` does. A soaked service run is stored
/// under the manifest's name with the manifest in its `run.json`, and lightened (its
/// history removed) because it passed. Replaying that folder runs the same service
/// again, with the same seed and fault schedule, and its `run.json` names the original.
#[tokio::test(flavor = "multi_thread")]
async fn a_service_is_soaked_and_its_stored_run_replayed() {
    let _one = SERIAL.lock().await;
    let out = tempdir("soak-replay");
    let manifest = example("chaosbank.toml");
    let base = RunConfig {
        faults: vec![FaultKind::Kill],
        targets: vec!["relay".to_string()],
        time_limit: Duration::from_secs(12),
        fault_interval: Duration::from_secs(2),
        fault_hold: Duration::from_secs(2),
        ..config(&manifest, 0, &out)
    };
    let rows =
        chaosbank::soak::soak(&base, &[run::SystemKind::Outbox], &[31], |_| {}, || false).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.name, "python-outbox");
    assert_eq!(row.outcome.valid, "valid", "{:?}", row.outcome);
    assert!(row.outcome.faults > 0, "no relay kill took effect");
    let dir = row.dir.clone().expect("the soaked run is stored");
    assert!(
        !dir.join("history.jsonl").exists(),
        "a passing soak run keeps its history"
    );
    let meta = chaosbank::store::load(&dir).expect("its run.json");
    assert_eq!(meta.config.service.as_deref(), Some(manifest.as_path()));

    let replay = chaosbank::replay::replay(&dir, None)
        .await
        .expect("the replay runs");
    let again = &replay.again;
    assert_eq!(again.name, "python-outbox");
    assert_eq!(again.seed, 31);
    assert!(again.faults > 0, "{}", again.summary());
    assert!(again.figures.transfers_ok > 0, "{}", again.summary());
    assert_eq!(
        again.verdict.valid,
        checkers::Validity::Valid,
        "{}",
        checkers::render::summary(&again.verdict, 5)
    );
    let replayed = chaosbank::store::load(again.dir()).expect("the replay's run.json");
    assert_eq!(
        replayed.replay_of.as_deref(),
        Some(replay.original_dir.as_path())
    );
    assert_eq!(replayed.config.service, meta.config.service);
    assert_eq!(replayed.config.seed, 31);
    assert_eq!(replayed.config.faults, meta.config.faults);
    assert_eq!(replayed.config.targets, meta.config.targets);
    let _ = std::fs::remove_dir_all(&out);
}

#[tokio::test(flavor = "multi_thread")]
async fn java_txmsg_is_cleared_under_faults_on_its_processes_and_the_engines() {
    let _one = SERIAL.lock().await;
    let out = tempdir("java-cleared");
    let report = run_one(&java_config(&java_example("chaosbank.toml"), 21, &out)).await;
    let hit = hit(&report);
    let _ = std::fs::remove_dir_all(&out);
    assert_cleared(&report, &hit, "java-txmsg", &["api", "consumer"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_broken_java_txmsg_is_convicted_of_phantom_credits() {
    let _one = SERIAL.lock().await;
    let out = tempdir("java-broken");
    let mut convicted = Vec::new();
    for seed in JAVA_BROKEN_SEEDS {
        let report = run_one(&java_config(&java_example("broken.toml"), seed, &out)).await;
        assert_eq!(report.name, "java-txmsg-broken");
        if report.verdict.valid == checkers::Validity::Invalid {
            assert!(
                report.verdict.count(checkers::AnomalyKind::Phantom) > 0,
                "convicted, but not of phantom credits: {:?}",
                report.verdict.anomalies.keys()
            );
            let first = &report.verdict.anomalies["phantom"][0];
            assert!(first.transfer.is_some(), "{first:?}");
            convicted.push(seed);
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    eprintln!(
        "broken java-txmsg convicted in {} of {} seeds: {convicted:?}",
        convicted.len(),
        JAVA_BROKEN_SEEDS.len()
    );
    assert!(
        !convicted.is_empty(),
        "the broken txmsg was cleared in every seed"
    );
}

/// The python-cdc example's manifest `file`.
fn cdc_example(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/services/python-cdc")
        .join(file)
}

/// python-cdc's run under its Kafka Connect worker (node `connect`) killed twice,
/// 7 s and 16 s in, held 4 s each: a scripted schedule (seed 31) and 25 s of load, the
/// same for both variants. `file` is the manifest, `out` the run store.
async fn cdc_run_under_two_worker_kills(file: &str, out: &Path) -> RunReport {
    use chaosbank::schedule::{Schedule, Step};
    let kill = |at: u64| Step {
        at: Duration::from_secs(at),
        fault: chaosbank::Fault::Kill {
            node: "connect".to_string(),
        },
        hold: Duration::from_secs(4),
    };
    let cfg = RunConfig {
        schedule: Some(Schedule {
            seed: 31,
            steps: vec![kill(7), kill(16)],
        }),
        faults: vec![FaultKind::Kill],
        targets: vec!["connect".to_string()],
        time_limit: Duration::from_secs(25),
        ..config(&cdc_example(file), 31, out)
    };
    run_one(&cfg).await
}

/// A service's own Debezium pipeline (`[[connector]]`): the broken python-cdc, whose
/// consumer credits without its dedup table, is convicted of duplicated transfers when
/// its Kafka Connect worker (node `connect`) is killed twice between offset flushes
/// and replays what it had published since the last one. One short run with a scripted
/// schedule: its cost is the cluster, the worker's start and 25 s of load (about 2 min
/// on 2 cores).
#[tokio::test(flavor = "multi_thread")]
async fn the_broken_python_cdc_is_convicted_of_duplicates_when_debezium_replays() {
    let _one = SERIAL.lock().await;
    let out = tempdir("cdc-broken");
    let report = cdc_run_under_two_worker_kills("broken.toml", &out).await;
    let hit = hit(&report);
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!(report.name, "python-cdc-broken");
    assert_eq!(report.faults, 2, "both kills of connect took effect");
    assert!(hit.contains("connect"), "{hit:?}");
    assert!(report.drained, "{}", report.summary());
    let duplicated = report.verdict.count(checkers::AnomalyKind::Duplicated);
    assert!(
        duplicated > 0,
        "Debezium's replays were not credited twice: {}",
        checkers::render::summary(&report.verdict, 10)
    );
    assert!(report.verdict.anomalies["duplicated"][0].transfer.is_some());
}

/// The correct python-cdc, its consumer deduplicating by message id, is cleared under
/// the very schedule that convicts the broken one (the replays come, and are absorbed).
/// The same cost as the broken case: one more short run.
#[tokio::test(flavor = "multi_thread")]
async fn python_cdc_is_cleared_when_debezium_replays() {
    let _one = SERIAL.lock().await;
    let out = tempdir("cdc-correct");
    let report = cdc_run_under_two_worker_kills("chaosbank.toml", &out).await;
    let hit = hit(&report);
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!(report.faults, 2, "both kills of connect took effect");
    assert_cleared(&report, &hit, "python-cdc", &["connect"]);
}

/// The service's source files under `dir` (`.py` and `.java`), concatenated.
fn sources(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir)
        .expect("the example's folder")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() && path.file_name().is_some_and(|n| n != "target") {
            text += &sources(&path);
        } else if path.extension().is_some_and(|e| e == "py" || e == "java") {
            text += &std::fs::read_to_string(&path).expect("a source file");
        }
    }
    text
}

/// Every variant manifest of an example (each `.toml` beside its `chaosbank.toml`) is the
/// correct service with one mistake switched on: it parses, is named after the service,
/// has the same broker and processes (images, commands, serving port) and adds exactly
/// one environment variable, `*_BROKEN`, the same in every process, whose value the
/// service's code tests for (a misspelt switch would run the correct service and clear
/// it). No engine is started: a few milliseconds.
#[test]
fn every_broken_variant_is_its_service_with_one_switch() {
    use chaosbank::sut::manifest::Manifest;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/services");
    let mut variants = Vec::new();
    for folder in ["python-outbox", "python-cdc", "java-txmsg"] {
        let dir = examples.join(folder);
        let correct = Manifest::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        let code = sources(&dir);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("the example's folder")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .filter(|p| p.file_name().is_some_and(|n| n != "chaosbank.toml"))
            .collect();
        files.sort();
        for file in files {
            let m = Manifest::load(&file).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                m.name.starts_with(&format!("{}-", correct.name)),
                "{}: name {:?} is not {:?} and a suffix",
                file.display(),
                m.name,
                correct.name
            );
            assert_eq!(m.broker, correct.broker, "{}", file.display());
            let connectors = |m: &Manifest| -> Vec<_> {
                m.connectors
                    .iter()
                    .map(|c| {
                        (
                            c.name.clone(),
                            c.file.clone(),
                            c.config.clone(),
                            c.plugins.clone(),
                        )
                    })
                    .collect()
            };
            assert_eq!(connectors(&m), connectors(&correct), "{}", file.display());
            assert_eq!(
                m.processes.len(),
                correct.processes.len(),
                "{}",
                file.display()
            );
            let mut switch = None;
            for (p, c) in m.processes.iter().zip(&correct.processes) {
                let at = format!("{} process {}", file.display(), p.name);
                assert_eq!(
                    (&p.name, p.serve, &p.source, &p.command),
                    (&c.name, c.serve, &c.source, &c.command),
                    "{at}"
                );
                let added: Vec<_> = p
                    .env
                    .iter()
                    .filter(|(k, _)| !c.env.contains_key(*k))
                    .collect();
                assert_eq!(added.len(), 1, "{at}: adds {added:?}, not one switch");
                let (key, value) = added[0];
                assert!(
                    key.ends_with("_BROKEN") && !value.is_empty(),
                    "{at}: {key}={value}"
                );
                assert_eq!(
                    *switch.get_or_insert((key, value)),
                    (key, value),
                    "{at}: not the switch of the other processes"
                );
            }
            let (key, value) = switch.expect("a process");
            assert!(
                code.contains(&format!("\"{value}\"")),
                "{}: {key}={value} is not a switch the service's code knows",
                file.display()
            );
            variants.push(m.name);
        }
    }
    variants.sort();
    assert_eq!(
        variants,
        [
            "java-txmsg-broken",
            "java-txmsg-state-apart",
            "python-cdc-broken",
            "python-outbox-broken",
            "python-outbox-dedup-apart"
        ]
    );
}

#[tokio::test]
async fn a_manifest_mistake_is_named_with_its_line_before_anything_starts() {
    let dir = tempdir("bad-manifest");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("chaosbank.toml");
    std::fs::write(
        &manifest,
        "name = \"bad\"\nbroker = \"pulsar\"\n\n[[process]]\nname = \"api\"\nserve = 8080\nimage = \"x\"\n",
    )
    .unwrap();
    let cfg = RunConfig {
        out: dir.join("runs"),
        ..config(&manifest, 1, &dir)
    };
    let err = run::run(&cfg).await.expect_err("a bad manifest is refused");
    let text = format!("{err:#}");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        text.contains("chaosbank.toml:2: unknown broker \"pulsar\""),
        "{text}"
    );
    // Refused before a cluster or a run folder was made.
    assert!(
        !cfg.out.exists(),
        "a run folder was made for a bad manifest"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_that_exits_at_start_is_named_with_its_last_lines_and_nothing_is_left() {
    let _one = SERIAL.lock().await;
    let dir = tempdir("crash");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("chaosbank.toml");
    std::fs::write(
        &manifest,
        r#"name = "crash"
broker = "kafka"

[[process]]
name = "api"
serve = 8080
runtime = "python"
command = ["python3", "-c", "import sys; print('cannot find my config'); sys.exit(3)"]
"#,
    )
    .unwrap();
    let cfg = RunConfig {
        time_limit: Duration::from_secs(5),
        ..config(&manifest, 1, &dir.join("runs"))
    };
    let err = run::run(&cfg)
        .await
        .expect_err("a process that exits at start fails the run");
    let text = format!("{err:#}");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(text.contains("process api"), "{text}");
    assert!(
        text.contains("cannot find my config"),
        "the process's own last lines: {text}"
    );
    // The run's containers and network are gone.
    let run_id = text
        .split("container chaosbank-")
        .nth(1)
        .and_then(|rest| rest.get(..8))
        .expect("the error names the container");
    chaosbank_tests::assert_gone(
        &chaosbank_tests::engine().await,
        run_id,
        Duration::from_secs(10),
    )
    .await;
}

fn tempdir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("chaosbank-service-{}-{name}", std::process::id()))
}
