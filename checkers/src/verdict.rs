//! What checkers return: data, not prints (as Jepsen's checkers do). Serde structs that
//! the CLI renders as JSON or as a summary.

use serde::{Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Every kind of anomaly a checker reports. [`AnomalyKind::as_str`] is its name in the
/// JSON output and in the spec (`lost`, `wrong-total`, …). The variants are declared in
/// the alphabetical order of their names, so the derived order is the order of the
/// names (that of the `anomalies` map in the output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnomalyKind {
    /// Topics: a credit read from a record of an aborted Kafka transaction.
    AbortedRead,
    /// Bank: a ledger entry whose account or amount is not the transfer's.
    AmountMismatch,
    /// Topics: one value at two offsets of an exactly-once topic's committed log.
    Duplicate,
    /// Bank: credited or debited more than once. Queue: dequeued more often than
    /// attempted (does not invalidate a queue).
    Duplicated,
    /// Bank: told `fail`, yet in a ledger.
    FailedApplied,
    /// Bank: would be lost, but the system did not drain (the `drain` op says
    /// `drained: false`): the credit may still arrive. Does not invalidate, but makes
    /// the bank model unknown.
    InFlight,
    /// Topics: one offset holding two different records.
    InconsistentOffsets,
    /// Bank: final balance ≠ initial balance + ledger entries.
    LedgerMismatch,
    /// Bank: debited but never credited, or acknowledged and applied nowhere. Queue:
    /// acknowledged enqueues never dequeued.
    Lost,
    /// Topics: a source record no committed record of the topic derived from it carries.
    LostWrite,
    /// Bank: a negative balance.
    Negative,
    /// Bank: a `null` balance in a read or in the final balances.
    NullBalance,
    /// Bank: would be lost, but dead-lettered (waiting for manual intervention). Does
    /// not invalidate.
    Parked,
    /// Bank: credited but never debited.
    Phantom,
    /// Queue: dequeued after an enqueue of unknown outcome (does not invalidate).
    Recovered,
    /// Bank: a ledger entry for a transfer never invoked. Queue: dequeued but never
    /// attempted.
    Unexpected,
    /// Bank: an account `init` did not create.
    UnexpectedKey,
    /// Bank: a read of every account, or the final balances, off the initial total.
    WrongTotal,
}

impl AnomalyKind {
    /// Every kind, in the order of their names.
    pub const ALL: [AnomalyKind; 18] = [
        AnomalyKind::AbortedRead,
        AnomalyKind::AmountMismatch,
        AnomalyKind::Duplicate,
        AnomalyKind::Duplicated,
        AnomalyKind::FailedApplied,
        AnomalyKind::InFlight,
        AnomalyKind::InconsistentOffsets,
        AnomalyKind::LedgerMismatch,
        AnomalyKind::Lost,
        AnomalyKind::LostWrite,
        AnomalyKind::Negative,
        AnomalyKind::NullBalance,
        AnomalyKind::Parked,
        AnomalyKind::Phantom,
        AnomalyKind::Recovered,
        AnomalyKind::Unexpected,
        AnomalyKind::UnexpectedKey,
        AnomalyKind::WrongTotal,
    ];

    /// The anomaly's name in the output: `lost`, `wrong-total`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::AbortedRead => "aborted-read",
            AnomalyKind::AmountMismatch => "amount-mismatch",
            AnomalyKind::Duplicate => "duplicate",
            AnomalyKind::Duplicated => "duplicated",
            AnomalyKind::FailedApplied => "failed-applied",
            AnomalyKind::InFlight => "in-flight",
            AnomalyKind::InconsistentOffsets => "inconsistent-offsets",
            AnomalyKind::LedgerMismatch => "ledger-mismatch",
            AnomalyKind::Lost => "lost",
            AnomalyKind::LostWrite => "lost-write",
            AnomalyKind::Negative => "negative",
            AnomalyKind::NullBalance => "null-balance",
            AnomalyKind::Parked => "parked",
            AnomalyKind::Phantom => "phantom",
            AnomalyKind::Recovered => "recovered",
            AnomalyKind::Unexpected => "unexpected",
            AnomalyKind::UnexpectedKey => "unexpected-key",
            AnomalyKind::WrongTotal => "wrong-total",
        }
    }
}

impl AnomalyKind {
    /// The one rule for what a violation is, used everywhere a verdict is shown: the
    /// console summary and one-liner, `replay`, JUnit, the report, time to conviction.
    ///
    /// Every kind is one but three:
    /// - `parked`: dead-lettered for a person, as a correct scheme must park what it
    ///   cannot credit;
    /// - `recovered`: a queue element dequeued after an enqueue of unknown outcome;
    /// - `in-flight`: a debit whose credit may still come, because the run did not drain.
    ///   Not a violation, yet not a pass: it makes the bank model `unknown`, so a run
    ///   that has one is never valid.
    ///
    /// A model may tolerate a violation kind its semantics allow: the queue model
    /// (Jepsen's total queue, at least once) reports `duplicated` without invalidating
    /// ([`crate::queue::invalidates`]). The bank and topics models invalidate on exactly
    /// the kinds this says are violations.
    pub fn is_violation(self) -> bool {
        match self {
            AnomalyKind::Parked | AnomalyKind::Recovered | AnomalyKind::InFlight => false,
            AnomalyKind::AbortedRead
            | AnomalyKind::AmountMismatch
            | AnomalyKind::Duplicate
            | AnomalyKind::Duplicated
            | AnomalyKind::FailedApplied
            | AnomalyKind::InconsistentOffsets
            | AnomalyKind::LedgerMismatch
            | AnomalyKind::Lost
            | AnomalyKind::LostWrite
            | AnomalyKind::Negative
            | AnomalyKind::NullBalance
            | AnomalyKind::Phantom
            | AnomalyKind::Unexpected
            | AnomalyKind::UnexpectedKey
            | AnomalyKind::WrongTotal => true,
        }
    }

    /// [`AnomalyKind::is_violation`] of an anomaly's name as a stored verdict or
    /// `run.json` spells it. A name no checker here reports (written by a newer
    /// chaosbank) counts as a violation: an anomaly not understood is not to be ignored.
    pub fn name_is_violation(name: &str) -> bool {
        AnomalyKind::from_str(name).map_or(true, AnomalyKind::is_violation)
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AnomalyKind {
    type Err = String;
    /// The kind of a name given by [`AnomalyKind::as_str`].
    fn from_str(s: &str) -> Result<AnomalyKind, String> {
        AnomalyKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("no anomaly is called {s:?}"))
    }
}

impl Serialize for AnomalyKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Findings kept per anomaly kind: the first [`KEEP_FIRST`] (in history order), the
/// last [`KEEP_LAST`], up to [`KEEP_SAMPLES`] spread evenly over the ones between, and
/// the worst one where "worst" means something (the largest amount, total off,
/// balance below zero, count, …). The rest are counted (`counts`, `omitted`) but
/// dropped, so memory stays bounded whatever the history holds.
pub const KEEP_FIRST: usize = 10;
/// Findings kept at the end of each kind's list; see [`KEEP_FIRST`].
pub const KEEP_LAST: usize = 10;
/// Most findings sampled from the middle of each kind's list; see [`KEEP_FIRST`].
pub const KEEP_SAMPLES: usize = 8;
/// Most findings kept per kind and per model:
/// [`KEEP_FIRST`] + [`KEEP_SAMPLES`] + [`KEEP_LAST`] + 1 (the worst).
pub const KEEP_MAX: usize = KEEP_FIRST + KEEP_SAMPLES + KEEP_LAST + 1;

/// Whether a history satisfies a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// No anomaly that breaks the model.
    Valid,
    /// At least one anomaly.
    Invalid,
    /// Nothing could be judged, or something could not be judged and no anomaly was
    /// found.
    Unknown,
}

impl Validity {
    /// Jepsen's merge: `Invalid` wins over `Unknown`, which wins over `Valid`.
    pub fn merge(self, other: Validity) -> Validity {
        use Validity::*;
        match (self, other) {
            (Invalid, _) | (_, Invalid) => Invalid,
            (Unknown, _) | (_, Unknown) => Unknown,
            _ => Valid,
        }
    }
    /// The exit status of `chaosbank check`: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            Validity::Valid => 0,
            Validity::Invalid => 1,
            Validity::Unknown => 2,
        }
    }
    /// `valid`, `invalid` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Invalid => "invalid",
            Validity::Unknown => "unknown",
        }
    }
}

impl Serialize for Validity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Validity::Valid => s.serialize_bool(true),
            Validity::Invalid => s.serialize_bool(false),
            Validity::Unknown => s.serialize_str("unknown"),
        }
    }
}

/// One row of a bank's final ledger, with the op (the `final-ledger` line) it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    /// Index of the `final-ledger` op that holds it.
    pub op: u64,
    /// The bank whose ledger holds it.
    pub bank: String,
    /// The transfer id it names.
    pub transfer: Value,
    /// The account it moves money in or out of.
    pub account: String,
    /// Signed amount: negative for a debit, positive for a credit.
    pub amount: i64,
}

/// One anomaly, explained: what it is about, the ops and ledger entries that show it,
/// and a plain sentence a person can follow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The transfer id, for findings about a transfer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<Value>,
    /// The queue element, for findings about a queue element.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub element: Option<Value>,
    /// The account, for findings about an account's balance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Indexes of the ops that show it, in history order.
    pub ops: Vec<u64>,
    /// The ledger entries that show it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<LedgerEntry>,
    /// The explanation in one or two plain sentences.
    pub sentence: String,
    /// Figures specific to the anomaly (`expected`, `actual`, `count`, …).
    #[serde(flatten)]
    pub details: BTreeMap<String, Value>,
}

impl Finding {
    /// A finding with only a sentence and ops; set the subject with the builders.
    pub fn new(sentence: String, ops: Vec<u64>) -> Finding {
        Finding {
            transfer: None,
            element: None,
            account: None,
            ops,
            entries: Vec::new(),
            sentence,
            details: BTreeMap::new(),
        }
    }
    /// About this transfer.
    pub fn transfer(mut self, id: Value) -> Finding {
        self.transfer = Some(id);
        self
    }
    /// About this queue element.
    pub fn element(mut self, element: Value) -> Finding {
        self.element = Some(element);
        self
    }
    /// About this account.
    pub fn account(mut self, account: &str) -> Finding {
        self.account = Some(account.to_owned());
        self
    }
    /// With these ledger entries.
    pub fn entries(mut self, entries: Vec<LedgerEntry>) -> Finding {
        self.entries = entries;
        self
    }
    /// With one more figure.
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Finding {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// What one checker found: Jepsen's `{:valid? … :anomalies … counts}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckerResult {
    /// The model's name, e.g. `bank`.
    pub model: String,
    /// The verdict for this model.
    pub valid: Validity,
    /// Findings by anomaly name; only names with findings appear. At most
    /// [`KEEP_MAX`] per name are kept; `counts` has how many there were.
    pub anomalies: BTreeMap<String, Vec<Finding>>,
    /// How many findings each anomaly name had, kept or not (≥ the list's length).
    pub counts: BTreeMap<String, usize>,
    /// Figures about what was checked (ops seen, transfers, reads, …).
    pub stats: BTreeMap<String, u64>,
    /// Why the verdict is `unknown`, or what could not be judged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl CheckerResult {
    /// Number of findings of `kind`, counting those not kept.
    pub fn count(&self, kind: AnomalyKind) -> usize {
        count_in(&self.counts, &self.anomalies, kind.as_str())
    }
}

/// Findings under `name` (one the map holds or a known kind), counting those not kept.
fn count_in(
    counts: &BTreeMap<String, usize>,
    anomalies: &BTreeMap<String, Vec<Finding>>,
    name: &str,
) -> usize {
    counts
        .get(name)
        .copied()
        .unwrap_or_else(|| anomalies.get(name).map_or(0, Vec::len))
}

/// Anomaly names with their counts, in the order of the names.
pub type NameCounts<'a> = Vec<(&'a str, usize)>;

/// A model's part of the [`Verdict`], without the findings (those are merged at the top).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    /// The verdict for this model.
    pub valid: Validity,
    /// Findings per anomaly name, counting those not kept.
    pub counts: BTreeMap<String, usize>,
    /// Figures about what was checked.
    pub stats: BTreeMap<String, u64>,
    /// Why the verdict is `unknown`, or what could not be judged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The composed verdict of every checker that ran: the `--json` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// `true`, `false` or `"unknown"`.
    pub valid: Validity,
    /// Findings of every model merged by anomaly name (at most [`KEEP_MAX`] per name
    /// and model are kept).
    pub anomalies: BTreeMap<String, Vec<Finding>>,
    /// Findings per anomaly name, counting those not kept.
    pub counts: BTreeMap<String, usize>,
    /// Findings counted but not kept, per anomaly name (only names that lost some):
    /// `counts[name] = anomalies[name].len() + omitted[name]`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub omitted: BTreeMap<String, usize>,
    /// Per-model verdicts, counts and figures.
    pub models: BTreeMap<String, ModelSummary>,
    /// Number of ops read.
    pub ops: u64,
    /// Things a person should know that do not change the verdict (a dropped last line).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Verdict {
    /// Number of findings of `kind`, counting those not kept.
    pub fn count(&self, kind: AnomalyKind) -> usize {
        count_in(&self.counts, &self.anomalies, kind.as_str())
    }

    /// Number of findings under an anomaly's name, counting those not kept; an error,
    /// naming the known ones, for a name that is no anomaly (`"lsot"`), rather than 0.
    pub fn count_named(&self, name: &str) -> Result<usize, String> {
        if AnomalyKind::from_str(name).is_err() && !self.anomalies.contains_key(name) {
            let known: Vec<&str> = AnomalyKind::ALL.iter().map(|k| k.as_str()).collect();
            return Err(format!(
                "no anomaly is called {name:?} (known: {})",
                known.join(", ")
            ));
        }
        Ok(count_in(&self.counts, &self.anomalies, name))
    }

    /// The anomaly names with findings and how many each has (counting those not
    /// kept), violations ([`AnomalyKind::name_is_violation`]) and the rest apart:
    /// `(violations, not violations)`, each in the order of the names.
    pub fn split_counts(&self) -> (NameCounts<'_>, NameCounts<'_>) {
        self.anomalies
            .keys()
            .map(|k| (k.as_str(), count_in(&self.counts, &self.anomalies, k)))
            .filter(|(_, n)| *n > 0)
            .partition(|(k, _)| AnomalyKind::name_is_violation(k))
    }

    /// Findings of the kinds that are violations, counting those not kept.
    pub fn violations(&self) -> usize {
        self.split_counts().0.iter().map(|(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(names: &[(&str, usize)]) -> Verdict {
        Verdict {
            valid: Validity::Unknown,
            anomalies: names
                .iter()
                .map(|(n, c)| {
                    let f = Finding::new(n.to_string(), vec![]);
                    (n.to_string(), vec![f; (*c).min(2)])
                })
                .collect(),
            counts: names.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
            omitted: BTreeMap::new(),
            models: BTreeMap::new(),
            ops: 0,
            warnings: vec![],
        }
    }

    #[test]
    fn parked_recovered_and_in_flight_are_the_only_kinds_that_are_not_violations() {
        let not: Vec<&str> = AnomalyKind::ALL
            .iter()
            .filter(|k| !k.is_violation())
            .map(|k| k.as_str())
            .collect();
        assert_eq!(not, ["in-flight", "parked", "recovered"]);
        assert!(AnomalyKind::name_is_violation("lost"));
        assert!(!AnomalyKind::name_is_violation("parked"));
        // A name from a newer chaosbank is not ignored.
        assert!(AnomalyKind::name_is_violation("a-new-anomaly"));
    }

    #[test]
    fn counts_are_typed_and_an_unknown_name_is_an_error_not_zero() {
        let v = verdict(&[("lost", 3), ("parked", 32), ("in-flight", 1)]);
        assert_eq!(v.count(AnomalyKind::Lost), 3);
        assert_eq!(v.count(AnomalyKind::Phantom), 0);
        assert_eq!(v.count_named("lost"), Ok(3));
        assert_eq!(v.count_named("phantom"), Ok(0));
        let e = v.count_named("lsot").unwrap_err();
        assert!(e.contains("\"lsot\"") && e.contains("wrong-total"), "{e}");
        assert_eq!(v.violations(), 3);
        assert_eq!(
            v.split_counts(),
            (vec![("lost", 3)], vec![("in-flight", 1), ("parked", 32)])
        );
    }
}
