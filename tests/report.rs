//! The report in a real browser: headless Chromium renders the report of a synthetic
//! invalid history, shows the verdict, and logs no console error.
//!
//! Needs Debian's `chromium` package (`apt-get install -y chromium`), or `CHROMIUM`
//! naming another Chrome-like binary; fails naming the missing program otherwise. Set
//! `CHAOSBANK_REPORT_SCREENSHOT=FILE` to keep the screenshot.

use checkers::compose::check_reader;
use checkers::history::{Op, OpType, Process};
use checkers::synth::{inject, BankHistory, BankParams, Injection};
use checkers::verdict::Verdict;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Nanoseconds between two synthetic ops.
const STEP: u64 = 5_000_000;

/// A synthetic bank history with a lost and a duplicated transfer and a kill/restart
/// of postgres, as JSON Lines.
fn invalid_history() -> String {
    let mut h = BankHistory::generate(&BankParams {
        seed: 3,
        ops: 1_000,
        ..BankParams::default()
    });
    inject(&mut h, Injection::Lost, 1).expect("a transfer to lose");
    inject(&mut h, Injection::Duplicated, 2).expect("a transfer to duplicate");
    let kill = json!({"kind": "kill", "node": "postgres"});
    let n = h.final_start();
    let mut ops: Vec<Op> = Vec::new();
    for op in h.ops() {
        let f = match op.index {
            i if i == n / 4 => Some("kill"),
            i if i == n / 2 => Some("restart"),
            _ => None,
        };
        if let Some(f) = f {
            ops.push(Op::new(Process::nemesis(), OpType::Info, f, &kill).expect("an op"));
        }
        ops.push(op);
    }
    let mut text = String::new();
    for (i, mut op) in ops.into_iter().enumerate() {
        op.index = i as u64;
        op.time = Some(i as u64 * STEP);
        text.push_str(&serde_json::to_string(&op).expect("an op as JSON"));
        text.push('\n');
    }
    text
}

/// The browser: `CHROMIUM` if set, else `chromium` or
/// `chromium-browser` on the PATH.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "the report test needs the program `chromium`, which is not on the PATH: install \
         Debian's package (apt-get install -y chromium) or set CHROMIUM=/path/to/chromium"
    );
}

/// Runs headless Chromium on `page` with `mode` (`--dump-dom`, `--screenshot=…`) and
/// returns its stdout and the `CONSOLE` lines of its log.
fn browse(dir: &Path, page: &Path, mode: &[&str]) -> (String, Vec<String>) {
    let profile = dir.join(format!("profile-{}", mode.len()));
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(mode)
        .arg(format!("file://{}", page.display()))
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run chromium: {e}"));
    assert!(
        out.status.success(),
        "chromium failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(str::to_owned)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chaosbank-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

#[test]
fn chromium_renders_the_report_without_console_errors() {
    let dir = scratch();
    // The check itself: a page that logs must be caught, or the test proves nothing.
    let control = dir.join("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><p>x</p><script>console.error('control');</script>",
    )
    .expect("the control page");
    let (_, logged) = browse(&dir, &control, &["--dump-dom"]);
    assert!(
        logged.iter().any(|l| l.contains("control")),
        "chromium no longer logs console messages to stderr; this test cannot see errors"
    );

    let history = dir.join("history.jsonl");
    std::fs::write(&history, invalid_history()).expect("the history");
    let file = std::fs::File::open(&history).expect("the history");
    let verdict: Verdict =
        check_reader(std::io::BufReader::new(file), None).expect("a readable history");
    assert_eq!(verdict.valid.as_str(), "invalid");
    let page = dir.join("report.html");
    chaosbank::report::write_html(&history, &verdict, &page).expect("the report");

    let (dom, console) = browse(&dir, &page, &["--dump-dom"]);
    assert!(
        console.is_empty(),
        "the report logged to the console:\n{}",
        console.join("\n")
    );
    assert!(
        dom.contains("id=\"verdict\">INVALID</div>"),
        "the rendered page shows no verdict:\n{}",
        &dom[..dom.len().min(2_000)]
    );
    for name in ["lost", "duplicated"] {
        let sentence = &verdict.anomalies[name][0].sentence;
        assert!(
            dom.contains(&chaosbank::report::escape(sentence)),
            "the rendered page lacks the {name} sentence: {sentence}"
        );
    }
    assert!(dom.contains("kill postgres"), "no fault window label");

    let shot = dir.join("report.png");
    let (_, console) = browse(
        &dir,
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,1800",
        ],
    );
    assert!(console.is_empty(), "console: {}", console.join("\n"));
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a blank screenshot?"
    );
    if let Some(keep) = std::env::var_os("CHAOSBANK_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, keep).expect("the screenshot copied");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
