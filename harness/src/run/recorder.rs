//! The recorder: streams a run's ops to its history file as they happen, through the
//! checkers' [`HistoryWriter`] (index and time stamped, one flushed line per op), so a
//! run that dies mid-way still leaves a history up to that moment.

use anyhow::{Context, Result};
use checkers::history::{HistoryWriter, Op, OpType, Process};
use serde::Serialize;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use crate::nemesis::Event;

/// A history being written; shared by the workers, the nemesis and the final reads.
pub struct Recorder {
    writer: Mutex<HistoryWriter<File>>,
    path: PathBuf,
}

impl Recorder {
    /// Creates `path` (and its folder); times count from `start`.
    pub fn create(path: &Path, start: Instant) -> Result<Recorder> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Recorder {
            writer: Mutex::new(HistoryWriter::starting_at(file, start)),
            path: path.to_path_buf(),
        })
    }

    /// The history file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self, op: Op) -> Result<Op> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        w.write(op).context("writing the history")
    }

    /// Writes a client's invoke and returns it (to complete later).
    pub fn invoke(&self, process: u64, f: &str, value: &impl Serialize) -> Result<Op> {
        self.write(Op::invoke(Process::Client(process), f, value)?)
    }

    /// Completes an invoke with `ok`, `fail` or `info`, a value and maybe an error.
    pub fn complete(
        &self,
        invoke: &Op,
        op_type: OpType,
        value: &impl Serialize,
        error: Option<&str>,
    ) -> Result<Op> {
        let mut op = invoke.complete(op_type, value)?;
        if let Some(e) = error {
            op = op.with_error(e)?;
        }
        self.write(op)
    }

    /// A single line by a named actor (`setup`, `final`, `nemesis`).
    pub fn named(
        &self,
        actor: &str,
        op_type: OpType,
        f: &str,
        value: &impl Serialize,
        error: Option<&str>,
    ) -> Result<Op> {
        let mut op = Op::new(Process::Named(actor.to_string()), op_type, f, value)?;
        if let Some(e) = error {
            op = op.with_error(e)?;
        }
        self.write(op)
    }

    /// A nemesis event as an `info` op of process `nemesis` (Jepsen's convention: a
    /// fault's effect is never certain).
    pub fn nemesis(&self, ev: &Event) -> Result<Op> {
        self.named(
            "nemesis",
            OpType::Info,
            &ev.f,
            &ev.value,
            ev.error.as_deref(),
        )
    }

    /// How many ops were written.
    pub fn ops_written(&self) -> u64 {
        self.writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ops_written()
    }
}
