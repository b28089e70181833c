//! chaosbank's checkers: from a history (JSON Lines, `docs/history.md`) to a
//! verdict whose every finding explains itself.
//!
//! - [`history`]: ops, the streaming [`history::HistoryReader`], the
//!   [`history::HistoryWriter`] a recorder uses, and the process rules.
//! - [`bank`], [`queue`] and [`topics`]: the models' checkers, each a [`Checker`].
//! - [`compose`]: detects the models, runs the checkers in one pass, merges results.
//! - [`verdict`]: the serde structs checkers return; [`render`]: the human summary.
//! - [`synth`]: generated valid histories (and anomalies injected into them) for tests
//!   and benchmarks.
//!
//! ```
//! use checkers::compose::check_reader;
//! let history = "{\"process\":\"setup\",\"type\":\"ok\",\"f\":\"init\",\"value\":{\"balances\":{\"A/0\":10,\"B/0\":0}}}\n\
//!                {\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
//!                {\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":{\"A/0\":10,\"B/0\":1}}\n";
//! let verdict = check_reader(history.as_bytes(), None).unwrap();
//! assert_eq!(verdict.count(checkers::AnomalyKind::WrongTotal), 1);
//! ```

#![warn(missing_docs)]

pub mod bank;
mod capped;
pub mod compose;
mod fxhash;
pub mod history;
pub mod queue;
pub mod render;
pub mod synth;
pub mod topics;
pub mod values;
pub mod verdict;

pub use compose::{check_ops, check_reader, Model};
pub use history::{HistoryError, HistoryReader, HistoryWriter, Op, OpType, Process};
pub use verdict::{AnomalyKind, CheckerResult, Finding, Validity, Verdict};

/// A streaming checker: sees every op once, in history order, then returns data.
///
/// Pure and synchronous: no I/O, no clock. It may keep what later ops need (per
/// transfer, per element) but should not keep ops.
pub trait Checker {
    /// Takes one op into account.
    fn observe(&mut self, op: &Op);
    /// The result once every op was observed.
    fn finish(self) -> CheckerResult;
}
