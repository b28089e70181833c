//! Nothing is left behind: a harness killed with -9 is cleaned by its watchdog at once,
//! or by the next run's reaper; Ctrl-C tears down; kept clusters survive the reaper.

use chaosbank::reaper::{self, Sweep};
use chaosbank_tests::{assert_gone, engine, leftovers};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every cluster start sweeps orphans, so these tests take turns: one test's orphan
/// must not be reaped by another's start before it is looked at.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts `chaosbank-hold` and waits for its `ready <run>` line.
fn hold(args: &[&str], watchdog: bool) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chaosbank-hold"))
        .args(args)
        .env("CHAOSBANK_WATCHDOG", if watchdog { "1" } else { "0" })
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn chaosbank-hold");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let run = line
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("chaosbank-hold said {line:?}"))
        .trim()
        .to_string();
    (child, run)
}

/// Waits for a child to exit; kills it and fails the test if it takes over a minute.
fn wait_within_a_minute(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chaosbank-hold did not exit within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: sending a signal to a child we spawned and have not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reaper_removes_what_a_killed_harness_left() {
    let _turn = TURN.lock().await;
    let engine = engine().await;
    let (mut child, run) = hold(&["postgres"], false);
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    // No watchdog: everything is still there, owned by a dead pid.
    assert_eq!(leftovers(&engine, &run).await, (1, 1));
    reaper::sweep(&engine, Sweep::Orphans).await.unwrap();
    assert_gone(&engine, &run, Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watchdog_cleans_up_at_once_after_kill_9() {
    let _turn = TURN.lock().await;
    let engine = engine().await;
    let (mut child, run) = hold(&["postgres"], true);
    let t = Instant::now();
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    assert_gone(&engine, &run, Duration::from_secs(30)).await;
    eprintln!(
        "kill -9 → watchdog removed run {run} in {:.1?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_tears_down() {
    let _turn = TURN.lock().await;
    let engine = engine().await;
    let (mut child, run) = hold(&["postgres"], false);
    signal(&child, libc::SIGINT);
    let status = wait_within_a_minute(&mut child);
    assert!(status.success(), "{status}");
    assert_gone(&engine, &run, Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_cluster_survives_the_reaper_until_removed() {
    let _turn = TURN.lock().await;
    let engine = engine().await;
    let (mut child, run) = hold(&["--keep", "postgres"], true);
    assert!(wait_within_a_minute(&mut child).success());
    // Its harness is gone, but it was kept on purpose.
    tokio::time::sleep(Duration::from_millis(500)).await;
    reaper::sweep(&engine, Sweep::Orphans).await.unwrap();
    assert_eq!(leftovers(&engine, &run).await, (1, 1));
    // What `chaosbank cluster down` does, limited to this run so other kept clusters on
    // the machine stay.
    reaper::remove_run(&engine, &run).await.unwrap();
    assert_gone(&engine, &run, Duration::ZERO).await;
}
