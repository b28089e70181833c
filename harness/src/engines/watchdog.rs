//! A watchdog: a tiny detached shell process per run that removes the run's containers
//! and network the moment the harness dies, even by `kill -9`, when no destructor runs.
//!
//! It reads its stdin, a pipe whose only write end the harness holds. When the harness
//! exits for any reason the kernel closes that end, `read` sees end-of-file, and the
//! watchdog removes everything labelled with the run id through the `docker` CLI. A
//! harness that tears down normally writes `disarm` first and the watchdog just exits.
//! It runs in its own process group so a terminal's Ctrl-C does not stop it.
//!
//! Set `CHAOSBANK_WATCHDOG=0` to go without (the reaper then cleans up at the next run).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

const SCRIPT: &str = r#"
IFS= read -r word || word=
[ "$word" = disarm ] && exit 0
f="label=chaosbank.run=$CHAOSBANK_RUN"
for c in $(docker ps -aq --filter "$f"); do
  docker unpause "$c" >/dev/null 2>&1
  docker rm -f -v "$c" >/dev/null 2>&1
done
for n in $(docker network ls -q --filter "$f"); do docker network rm "$n" >/dev/null 2>&1; done
exit 0
"#;

/// The handle on a run's watchdog; dropping it without [`Watchdog::disarm`] lets the
/// watchdog clean up, exactly as the harness dying would.
#[derive(Debug)]
pub struct Watchdog {
    child: Option<Child>,
}

impl Watchdog {
    /// Starts the watchdog for `run`, or a no-op one when `CHAOSBANK_WATCHDOG=0` or `sh`
    /// cannot start (then the reaper is the only safety net; a warning says so).
    pub fn start(run: &str) -> Watchdog {
        if std::env::var("CHAOSBANK_WATCHDOG").is_ok_and(|v| v == "0") {
            return Watchdog { child: None };
        }
        let child = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .env("CHAOSBANK_RUN", run)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        match child {
            Ok(child) => Watchdog { child: Some(child) },
            Err(e) => {
                tracing::warn!("no watchdog for run {run} ({e}); a killed harness is cleaned by the next run's reaper");
                Watchdog { child: None }
            }
        }
    }

    /// Tells the watchdog to exit without removing anything (the run was torn down, or
    /// is kept on purpose), and waits for it.
    pub fn disarm(mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(b"disarm\n");
            }
            let _ = child.wait();
        }
    }

    /// Lets the watchdog clean up now and waits until it has (used when a teardown from
    /// inside the process is not possible).
    pub fn fire(mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            // Reap it so no zombie lingers; it finishes within a second or two.
            let _ = child.wait();
        }
    }
}
