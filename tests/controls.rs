//! The second control, `kafka-tx`: a Kafka transaction wrapped around the debit's
//! database transaction, taken for atomicity. Its window is narrow — the milliseconds
//! between the database commit and the Kafka commit — so it is judged under the fault
//! that opens it: the broker cut off again and again while transfers commit. chaosbank
//! must convict it of losing money (a debit whose message Kafka aborted) or of failing a
//! transfer it applied, and must clear the outbox under the very same schedule. Run with
//! `--nocapture` to see each run's figures and the count.

use chaosbank::run::{RunConfig, SystemKind};
use chaosbank::schedule::FaultKind;
use chaosbank_tests::runs::{assert_cleared, config, convicted, run_one, Scratch, SERIAL};
use std::time::Duration;

/// The seeds of the control's runs.
///
/// Sized from measured rates (README, "Verdicts under faults"): in three hand runs of
/// this schedule, 11 of 20 partitions of the broker overlapped a transfer the checker
/// then convicted. Taking partitions as independent trials, the one-sided 95 % lower
/// bound on that rate is 0.315; three runs hold about 19 partitions, and all of them
/// miss with probability 0.685^19 = 7.5e-4 < 1/1000 even at that bound (at the measured
/// rate, 0.45^19 ≈ 2.5e-7). The test fails only when no run convicts.
const SEEDS: [u64; 3] = [1, 2, 3];

/// The broker cut off from everyone (the host too) about every 4.5 s for ~3 s, 30 s in
/// all: six or seven partitions of Kafka per run, nothing else.
fn broker_cut_off(system: SystemKind, seed: u64, scratch: &Scratch) -> RunConfig {
    RunConfig {
        faults: vec![FaultKind::Isolate],
        targets: vec!["kafka".to_string()],
        cover_targets: false,
        time_limit: Duration::from_secs(30),
        fault_interval: Duration::from_millis(1500),
        fault_hold: Duration::from_secs(3),
        ..config(system, seed, scratch)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_transactions_around_a_database_commit_are_convicted() {
    let _serial = SERIAL.lock().await;
    let scratch = Scratch::new("kafka-tx");
    let mut guilty = Vec::new();
    for seed in SEEDS {
        let r = run_one(&broker_cut_off(SystemKind::KafkaTx, seed, &scratch)).await;
        assert!(r.faults > 0, "seed {seed}: no partition took effect");
        assert!(
            r.figures.cross_bank_completed > 0,
            "seed {seed}: no cross-bank transfer completed (are Kafka transactions working?)"
        );
        if convicted(&r) {
            assert_eq!(r.verdict.valid, checkers::Validity::Invalid);
            // What the two commits allow: money lost (the message aborted after the
            // debit committed) or a failure reported for a transfer that was applied
            // (the Kafka commit answered too late) — never money created.
            assert!(
                r.verdict.count(checkers::AnomalyKind::Lost)
                    + r.verdict.count(checkers::AnomalyKind::FailedApplied)
                    > 0,
                "seed {seed}: convicted, but not of a lost or failed-applied transfer:\n{}",
                checkers::render::summary(&r.verdict, 5)
            );
            assert_eq!(
                r.verdict.count(checkers::AnomalyKind::Phantom),
                0,
                "seed {seed}: money created"
            );
            guilty.push(seed);
        }
    }
    eprintln!(
        "kafka-tx convicted in {} of {} runs: {guilty:?}",
        guilty.len(),
        SEEDS.len()
    );
    assert!(
        !guilty.is_empty(),
        "kafka-tx, wrong on purpose, was never convicted in {} runs of repeated broker partitions",
        SEEDS.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_outbox_is_cleared_under_the_same_broker_partitions() {
    let _serial = SERIAL.lock().await;
    let scratch = Scratch::new("outbox-broker-cut-off");
    let r = run_one(&broker_cut_off(SystemKind::Outbox, SEEDS[0], &scratch)).await;
    assert_cleared(&r, "outbox under the control's schedule");
}
