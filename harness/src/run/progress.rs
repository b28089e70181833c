//! Progress bars on stderr (`indicatif`): a spinner per image build and, for a run, a
//! spinner while the cluster starts, then a bar of elapsed time against the time limit
//! with the ops recorded so far, then a spinner while the run heals, drains and checks.
//!
//! Off unless [`enable`] is called (the `chaosbank` CLI does) *and* stderr is a
//! terminal, so library users, tests and CI logs never see them. Log lines go through
//! [`LogWriter`], which hides the bars while a line is printed.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::config::RunConfig;
use crate::recorder::Recorder;

static ENABLED: AtomicBool = AtomicBool::new(false);
static MULTI: OnceLock<MultiProgress> = OnceLock::new();
/// The bar of the run in progress (one per process: the CLI runs one at a time).
static CURRENT: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Turns progress bars on when stderr is a terminal; returns whether they are on.
pub fn enable() -> bool {
    let on = std::io::stderr().is_terminal();
    ENABLED.store(on, Ordering::Relaxed);
    on
}

/// Whether bars are drawn.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

fn multi() -> &'static MultiProgress {
    MULTI.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// A spinner with a message and the elapsed time, or a hidden bar when disabled.
pub fn spinner(message: impl Into<String>) -> ProgressBar {
    if !enabled() {
        return ProgressBar::hidden();
    }
    let bar = multi().add(ProgressBar::new_spinner());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.into());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// An `io::Write` for log lines that clears the bars, writes the line to stderr and
/// draws them again (pass `|| LogWriter` to `tracing_subscriber`'s `with_writer`).
#[derive(Clone, Copy, Debug, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match MULTI.get() {
            Some(m) if enabled() => m.suspend(|| std::io::stderr().write_all(buf))?,
            _ => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The progress of one run; cleared when finished or dropped.
#[derive(Debug)]
pub struct RunProgress {
    bar: ProgressBar,
}

impl RunProgress {
    /// A spinner while the cluster starts (and images are built when missing).
    pub fn start(cfg: &RunConfig) -> RunProgress {
        let bar = spinner(format!(
            "{} seed {}: starting the cluster (building missing images)",
            cfg.system, cfg.seed
        ));
        *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
        RunProgress { bar }
    }

    /// Changes what the spinner says.
    pub fn phase(&self, what: &str) {
        set_phase(&self.bar, what);
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
        let mut current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|b| b.is_finished()) {
            *current = None;
        }
    }
}

impl Drop for RunProgress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn set_phase(bar: &ProgressBar, what: &str) {
    let msg = bar.message();
    let prefix = msg.split(": ").next().unwrap_or_default().to_string();
    bar.set_message(format!("{prefix}: {what}"));
}

/// Shows the workload phase of the current run: elapsed time against `time_limit` and
/// the ops `recorder` has written; once the time is up, says the run is healing and
/// draining. Stops when dropped.
pub fn workload(time_limit: Duration, recorder: Arc<Recorder>) -> Ticker {
    let current = CURRENT.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let Some(bar) = current.filter(|_| enabled()) else {
        return Ticker(None);
    };
    let prefix = bar
        .message()
        .split(": ")
        .next()
        .unwrap_or_default()
        .to_string();
    let secs = time_limit.as_secs().max(1);
    bar.set_length(secs);
    bar.set_position(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} s  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix.clone());
    bar.set_message("0 ops");
    let start = Instant::now();
    let task = tokio::spawn(async move {
        loop {
            let elapsed = start.elapsed();
            bar.set_position(elapsed.as_secs().min(secs));
            bar.set_message(format!("{} ops", recorder.ops_written()));
            if elapsed >= time_limit {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        drop(recorder);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(format!("{prefix}: healing, draining, checking"));
    });
    Ticker(Some(task))
}

/// Keeps the workload bar moving; stops it when dropped.
#[derive(Debug)]
pub struct Ticker(Option<tokio::task::JoinHandle<()>>);

impl Drop for Ticker {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_unless_enabled() {
        // Test processes never enable bars: everything is a no-op then.
        assert!(!enabled());
        let bar = spinner("building");
        assert!(bar.is_hidden());
        let mut w = LogWriter;
        assert_eq!(w.write(b"").unwrap(), 0);
    }
}
