//! The connector supervisor in the history: each FAILED task it saw and what it did —
//! restarted it, or (its restarts spent) left it FAILED — become `info` ops of process
//! [`PROCESS`], in the manner of the nemesis's, written while the run goes (read from
//! the scheme every [`POLL`]) and once more after the drain. The checkers ignore them;
//! the report shows them on its fault timeline.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use checkers::history::OpType;
use serde_json::{json, Value};
use workloads::connect::Restart;
use workloads::system::System;

use crate::recorder::Recorder;

/// The history's name for the supervisor.
pub const PROCESS: &str = "connect-supervisor";
/// How often the scheme is asked for what its supervisor saw.
pub const POLL: Duration = Duration::from_millis(250);

/// One op: its `f`, `value` and `error`.
pub type SupervisorOp = (&'static str, Value, Option<String>);

/// The ops of one [`Restart`]: `task-failed` (the connector, the task, the first line
/// of its trace), then `task-restart` (its number for this task; `error` when the
/// worker refused it) or `task-left-failed` (its restarts spent).
pub fn ops(r: &Restart) -> [SupervisorOp; 2] {
    let failed = (
        "task-failed",
        json!({"connector": r.connector, "task": r.task, "trace": r.reason}),
        None,
    );
    let then = if r.gave_up() {
        (
            "task-left-failed",
            json!({"connector": r.connector, "task": r.task}),
            r.refused.clone(),
        )
    } else {
        (
            "task-restart",
            json!({"connector": r.connector, "task": r.task, "attempt": r.attempt}),
            r.refused.clone(),
        )
    };
    [failed, then]
}

/// Writes what the scheme's supervisor saw since the last call; returns how many ops.
pub fn record(sys: &dyn System, recorder: &Recorder) -> Result<usize> {
    let mut n = 0;
    for r in sys.connector_events() {
        for (f, value, error) in ops(&r) {
            recorder.named(PROCESS, OpType::Info, f, &value, error.as_deref())?;
            n += 1;
        }
    }
    Ok(n)
}

/// Writes the supervisor's ops as they come, until [`Watch::stop`].
pub struct Watch {
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Starts writing `sys`'s supervisor ops into `recorder` every [`POLL`].
pub fn watch(sys: Arc<dyn System>, recorder: Arc<Recorder>) -> Watch {
    let task = tokio::spawn(async move {
        loop {
            if let Err(e) = record(sys.as_ref(), &recorder) {
                tracing::warn!("recording the connector supervisor's ops: {e:#}");
            }
            tokio::time::sleep(POLL).await;
        }
    });
    Watch { task: Some(task) }
}

impl Watch {
    /// Stops writing (and lets go of the recorder).
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restart(attempt: u32, refused: Option<&str>) -> Restart {
        Restart {
            connector: "chaosbank_outbox_a".into(),
            task: 0,
            reason: "org.apache.kafka.connect.errors.ConnectException: slot gone".into(),
            accepted: refused.is_none(),
            attempt,
            refused: refused.map(String::from),
        }
    }

    #[test]
    fn a_failure_and_what_the_supervisor_did_are_two_ops() {
        let [(f, v, e), (g, w, e2)] = ops(&restart(2, None));
        assert_eq!((f, g), ("task-failed", "task-restart"));
        assert_eq!(
            v["trace"],
            "org.apache.kafka.connect.errors.ConnectException: slot gone"
        );
        assert_eq!(v["connector"], "chaosbank_outbox_a");
        assert_eq!(w["attempt"], 2);
        assert_eq!((e, e2), (None, None));
        let [_, (g, _, e)] = ops(&restart(1, Some("HTTP 409")));
        assert_eq!(g, "task-restart");
        assert_eq!(e.as_deref(), Some("HTTP 409"));
        let [_, (g, w, e)] = ops(&restart(0, Some("restarts spent")));
        assert_eq!(g, "task-left-failed");
        assert_eq!(w["task"], 0);
        assert_eq!(e.as_deref(), Some("restarts spent"));
    }
}
