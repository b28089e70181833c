//! Runs the checkers over a history in one streaming pass and merges their results by
//! anomaly name, as Jepsen's `checker/compose` does.
//!
//! Models are detected from the ops present (any `init`, `transfer`, `read`,
//! `final-ledger` or `dead-letter` means bank; any `enqueue`, `dequeue` or `drain`
//! means queue; any `topic-log` means topics, which also reads the `final-ledger` lines
//! for the credits' `read_from`) unless one is named. The exception is the `final` actor's drain report
//! (`f` `drain` whose value is not a list, see [`crate::bank::DrainReport`]): it belongs
//! to the bank model, and one that is not well formed is a `Malformed` error naming its
//! line. The verdict is `invalid` if any model is, otherwise `unknown` if any model is
//! unknown or no model had an op to check, and `valid` only when every model that ran
//! is valid and had something to check.

use crate::bank::{is_bank_f, is_drain_report, BankChecker, DrainReport};
use crate::history::{HistoryError, HistoryReader, Op, Sequencer};
use crate::queue::{is_queue_f, QueueChecker};
use crate::topics::{is_topic_log, TopicLogLine, TopicsChecker};
use crate::verdict::{CheckerResult, ModelSummary, Validity, Verdict};
use crate::Checker;
use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;
use std::str::FromStr;

/// A model a history can be checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    /// Money moved between accounts (`init`, `transfer`, `read`, `final-ledger`, …).
    Bank,
    /// Jepsen's total queue (`enqueue`, `dequeue`, `drain`).
    Queue,
    /// Kafka topic logs read back at the end (`topic-log`): Jepsen's Kafka anomalies.
    Topics,
}

impl Model {
    /// `bank`, `queue` or `topics`.
    pub fn name(self) -> &'static str {
        match self {
            Model::Bank => "bank",
            Model::Queue => "queue",
            Model::Topics => "topics",
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Model, String> {
        match s {
            "bank" => Ok(Model::Bank),
            "queue" => Ok(Model::Queue),
            "topics" => Ok(Model::Topics),
            other => Err(format!("unknown model {other:?} (bank, queue or topics)")),
        }
    }
}

/// One check in progress: the process-rule sequencer and the checkers, fed op by op.
pub struct Session {
    model: Option<Model>,
    sequencer: Sequencer,
    bank: Option<BankChecker>,
    queue: Option<QueueChecker>,
    topics: Option<TopicsChecker>,
    ops: u64,
}

impl Session {
    /// A session for `model`, or for the models detected from the ops when `None`.
    pub fn new(model: Option<Model>) -> Session {
        Session {
            model,
            sequencer: Sequencer::new(),
            bank: matches!(model, None | Some(Model::Bank)).then(BankChecker::new),
            queue: matches!(model, None | Some(Model::Queue)).then(QueueChecker::new),
            topics: matches!(model, None | Some(Model::Topics)).then(TopicsChecker::new),
            ops: 0,
        }
    }

    /// Feeds one op; `Err` when it breaks the process rules (`line` names where).
    pub fn observe(&mut self, op: &Op, line: u64) -> Result<(), HistoryError> {
        self.sequencer
            .observe(op)
            .map_err(|message| HistoryError::Malformed { line, message })?;
        self.ops += 1;
        if is_drain_report(op) {
            let report = DrainReport::from_op(op)
                .map_err(|message| HistoryError::Malformed { line, message })?;
            if let Some(t) = &mut self.topics {
                t.observe_drain(op.index, report.drained, report.backlog_words());
            }
            if let Some(b) = &mut self.bank {
                b.observe(op);
            }
            return Ok(());
        }
        if is_topic_log(op) {
            let line = TopicLogLine::from_op(op)
                .map_err(|message| HistoryError::Malformed { line, message })?;
            if let Some(t) = &mut self.topics {
                t.observe_line(op.index, line);
            }
            return Ok(());
        }
        if let Some(b) = &mut self.bank {
            if is_bank_f(&op.f) {
                b.observe(op);
            }
        }
        if let Some(t) = &mut self.topics {
            if op.f == "final-ledger" {
                t.observe(op);
            }
        }
        if let Some(q) = &mut self.queue {
            if is_queue_f(&op.f) {
                q.observe(op);
            }
        }
        Ok(())
    }

    /// Finishes every checker and composes the verdict; `warnings` are passed through.
    pub fn finish(self, warnings: Vec<String>) -> Verdict {
        let named = self.model.is_some();
        let mut results: Vec<(CheckerResult, u64)> = Vec::new();
        if let Some(b) = self.bank {
            let n = b.relevant_ops();
            if named || n > 0 {
                results.push((b.finish(), n));
            }
        }
        if let Some(q) = self.queue {
            let n = q.relevant_ops();
            if named || n > 0 {
                results.push((q.finish(), n));
            }
        }
        if let Some(t) = self.topics {
            let n = t.relevant_ops();
            if named || n > 0 {
                results.push((t.finish(), n));
            }
        }
        compose(results, self.ops, warnings)
    }
}

/// Merges checker results (each with the number of its ops) into one verdict.
pub fn compose(results: Vec<(CheckerResult, u64)>, ops: u64, mut warnings: Vec<String>) -> Verdict {
    let mut valid = if results.is_empty() {
        warnings.push(
            "nothing to check: no op of the bank model (init, transfer, read, final-ledger, \
             dead-letter) or of the queue model (enqueue, dequeue, drain)"
                .to_owned(),
        );
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let mut anomalies = BTreeMap::new();
    let mut models = BTreeMap::new();
    let mut total: BTreeMap<String, usize> = BTreeMap::new();
    for (mut r, n) in results {
        if n == 0 && r.valid == Validity::Valid {
            r.valid = Validity::Unknown;
            r.notes
                .push(format!("no op of the {} model to check", r.model));
        }
        valid = valid.merge(r.valid);
        let mut counts = r.counts;
        for (k, v) in &r.anomalies {
            let n = counts.entry(k.clone()).or_insert(0);
            *n = (*n).max(v.len());
        }
        for (k, n) in &counts {
            *total.entry(k.clone()).or_insert(0) += n;
        }
        for (k, v) in r.anomalies {
            anomalies.entry(k).or_insert_with(Vec::new).extend(v);
        }
        models.insert(
            r.model,
            ModelSummary {
                valid: r.valid,
                counts,
                stats: r.stats,
                notes: r.notes,
            },
        );
    }
    let omitted = total
        .iter()
        .filter_map(|(k, n)| {
            let kept = anomalies.get(k).map_or(0, Vec::len);
            (*n > kept).then(|| (k.clone(), n - kept))
        })
        .collect();
    Verdict {
        valid,
        anomalies,
        counts: total,
        omitted,
        models,
        ops,
        warnings,
    }
}

/// Checks a JSON Lines history read from `input` in one streaming pass.
pub fn check_reader<R: BufRead>(input: R, model: Option<Model>) -> Result<Verdict, HistoryError> {
    let mut reader = HistoryReader::new(input);
    let mut session = Session::new(model);
    while let Some(op) = reader.next() {
        let op = op?;
        session.observe(&op, reader.line())?;
    }
    Ok(session.finish(reader.take_warnings()))
}

/// Checks ops already in memory (tests, or a recorder checking as it goes); errors name
/// the op's position as its line.
pub fn check_ops<I: IntoIterator<Item = Op>>(
    ops: I,
    model: Option<Model>,
) -> Result<Verdict, HistoryError> {
    let mut session = Session::new(model);
    for (i, op) in ops.into_iter().enumerate() {
        session.observe(&op, i as u64 + 1)?;
    }
    Ok(session.finish(Vec::new()))
}
