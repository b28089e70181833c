//! Scripted schedules and shrinking, end to end on the dual-write control: a schedule
//! file of two faults — an innocent 50 ms delay on bank B's links and the broker cut
//! off for 5 s, past dual-write's 2 s publish timeout — is played instead of a seeded
//! draw and convicts; `run.json` records the given schedule; then the shrink search,
//! with one try a candidate and a budget of three runs, drops the innocent fault and
//! keeps the guilty one. Four short runs (one cluster at a time); run with
//! `--nocapture` to see the search's progress and the time it took.

use chaosbank::nemesis::Fault;
use chaosbank::run::{RunConfig, SystemKind};
use chaosbank::shrink::{self, Budget, RealRunner, Settings};
use chaosbank_tests::runs::{config, convicted, run_one, Scratch, SERIAL};
use std::time::{Duration, Instant};

const FAULTS: &str = r#"
# innocent: 50 ms more on every link to bank B, for 3 s
[[steps]]
at = "1s"
hold = "3s"
fault = { kind = "delay", node = "mariadb", ms = 50 }

# guilty: the broker cut off for longer than the publish timeout
[[steps]]
at = "4s"
hold = "5s"
fault = { kind = "isolate", node = "kafka" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scripted_schedule_convicts_and_shrinks_to_the_fault_that_matters() {
    let _serial = SERIAL.lock().await;
    let began = Instant::now();
    let scratch = Scratch::new("shrink");
    std::fs::create_dir_all(&scratch.0).expect("a scratch folder");
    let file = scratch.0.join("faults.toml");
    std::fs::write(&file, FAULTS).expect("writing the schedule file");
    let schedule = chaosbank::script::load(&file).expect("the schedule file parses");
    assert_eq!(schedule.steps.len(), 2);
    let cfg = RunConfig {
        schedule: Some(schedule.clone()),
        time_limit: Duration::from_secs(12),
        drain_timeout: Duration::from_secs(60),
        ..config(SystemKind::DualWrite, 5, &scratch)
    };
    let r = run_one(&cfg).await;
    assert_eq!(r.faults, 2, "both scripted faults took effect");
    let meta = chaosbank::store::load(r.dir()).expect("run.json");
    assert_eq!(
        meta.config.schedule.as_ref(),
        Some(&schedule),
        "run.json records the given schedule"
    );
    assert_eq!(
        meta.schedule.as_ref(),
        Some(&schedule),
        "and what was played"
    );
    assert!(
        convicted(&r),
        "the broker cut off for 5 s did not convict dual-write:\n{}",
        checkers::render::summary(&r.verdict, 5)
    );
    eprintln!("scripted run: {:.0} s", began.elapsed().as_secs_f64());

    let start = shrink::start(r.dir()).expect("a conviction to shrink");
    let mut runner = RealRunner {
        base: start.config.clone(),
        want: start.kinds.clone(),
    };
    let settings = Settings {
        tries: 1,
        budget: Budget {
            runs: Some(3),
            time: None,
        },
        min_hold: Duration::from_secs(1),
        // The workload is already short: no run is spent on cutting it.
        tail: Duration::from_secs(60),
    };
    // The original again, then without the delay (convicts), then with no fault at all
    // (does not): three runs.
    let found = shrink::shrink(&mut runner, &start.original, settings, |l| eprintln!("{l}"))
        .await
        .unwrap_or_else(|e| panic!("not shrunk: {e}"));
    eprintln!(
        "shrunk to {} of {} faults in {} runs; the test took {:.0} s",
        found.best.schedule.steps.len(),
        found.original_faults,
        found.runs,
        began.elapsed().as_secs_f64()
    );
    assert!(found.runs <= 3, "{} runs past a budget of 3", found.runs);
    let faults: Vec<&Fault> = found.best.schedule.steps.iter().map(|s| &s.fault).collect();
    assert_eq!(
        faults,
        vec![&Fault::Isolate {
            node: "kafka".into()
        }],
        "the innocent delay should be dropped and the broker's isolation kept"
    );
    assert!(!found.evidence.is_empty() && found.evidence.iter().all(|t| t.convicted));
    // What shrink writes is a file --schedule plays as it is.
    let text = chaosbank::script::to_toml(&found.best.schedule, "shrunk");
    let back = chaosbank::script::parse(&text, std::path::Path::new("minimal.toml"))
        .expect("the minimal schedule file parses");
    assert_eq!(back, found.best.schedule);
    // Its conviction is tied to the fault that remains.
    let history = found.evidence[0]
        .dir
        .as_ref()
        .expect("a convicting run's folder")
        .join("history.jsonl");
    let culprits = shrink::faults_that_matter(&found.best.schedule, &history).expect("findings");
    eprintln!("{}", shrink::render_culprits(&culprits, 3));
    assert!(
        culprits
            .iter()
            .any(|c| c.step.is_some() && !c.findings.is_empty()),
        "no finding tied to the isolation"
    );
}
