//! The bank checker: Jepsen's read checks plus per-transfer accounting over the final
//! ledgers (see "What the bank checker reports" in the history spec).
//!
//! Reads are checked as they stream by and never stored. What is kept grows with the
//! number of accounts, transfers and ledger entries: one record per transfer (its
//! accounts, amount and outcome) and one per ledger entry, so that a finding can name
//! the entries that show it.
//!
//! Decisions the spec leaves open:
//! - An entry on the transfer's `from` account with the opposite sign of its amount is
//!   on the debit side, one on `to` with the same sign on the credit side; `d` and `c`
//!   count them. An entry whose account or amount is not exactly the transfer's is also
//!   an `amount-mismatch` (so a credit of the wrong amount is a mismatch, not a loss).
//! - A transfer is judged by the ledgers only when both its banks (the account's prefix
//!   before `/`) have a `final-ledger` line; otherwise it is counted as unjudged and
//!   the verdict cannot be `valid`.
//! - `failed-applied` is reported besides `lost`/`phantom`/`duplicated` when a failed
//!   transfer was applied partly or more than once.
//! - The final balances should sum to the initial total less the money held by parked
//!   (and, in a run that did not drain, in-flight) transfers.
//! - A run whose `drain` op says `drained: false` reports what would be `lost` as
//!   `in-flight` instead: not invalid, but the verdict cannot be `valid`.
//! - Reads sum every integer balance they hold; a read with a `null` balance is not
//!   checked for its total.
//! - Transfers with ids and no `final-ledger` line at all are not judged (unknown).
//! - A bank whose `final-ledger` lines carry the completeness mark (`complete`,
//!   `entry_count`) and do not add up is incomplete: its transfers are not judged and
//!   its accounts' balances not compared with its entries (unknown, never `lost`).
//! - A transfer whose invoke cannot be read (but whose id can), or whose id is invoked
//!   twice, cannot be judged: unknown, with a note naming it; its entries accuse nothing.
//! - Findings are capped per kind ([`crate::verdict::KEEP_MAX`]); counts are full.

use crate::capped::{into_result_maps, Capped, FindingMap};
use crate::fxhash::FxHashMap;
use crate::history::{Op, OpType, Process};
use crate::values::{
    Balances, DeadLetterValue, InitValue, LedgerValue, TransferId, TransferIdOnly, TransferValue,
};
use crate::verdict::{AnomalyKind, CheckerResult, Finding, LedgerEntry, Validity};
use crate::Checker;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The anomaly kinds the bank model reports.
pub const KINDS: [AnomalyKind; 13] = [
    AnomalyKind::Lost,
    AnomalyKind::Duplicated,
    AnomalyKind::Phantom,
    AnomalyKind::FailedApplied,
    AnomalyKind::Unexpected,
    AnomalyKind::AmountMismatch,
    AnomalyKind::LedgerMismatch,
    AnomalyKind::WrongTotal,
    AnomalyKind::Negative,
    AnomalyKind::UnexpectedKey,
    AnomalyKind::NullBalance,
    AnomalyKind::Parked,
    AnomalyKind::InFlight,
];

/// Whether a bank anomaly makes the history invalid: exactly the violations
/// ([`AnomalyKind::is_violation`]; every kind but `parked` and `in-flight`, and
/// `recovered`, which the bank model never reports), less the topics model's kinds.
pub fn invalidates(kind: AnomalyKind) -> bool {
    kind.is_violation() && !crate::topics::invalidates(kind)
}

use AnomalyKind as K;

/// Most notes kept; past it they are counted in one last note.
const MAX_NOTES: usize = 24;
/// Most transfer ids a note names.
const NAMED_IDS: usize = 10;

/// An op index not set (no invoke, no completion yet). Op indexes are kept in 32 bits:
/// a transfer's record is what memory grows with (one per transfer, 34 bytes), so a
/// 100 M-op history fits in well under 1 GB. Indexes past `NONE - 1` are named as that
/// in explanations (a note says so); verdicts do not depend on them.
const NONE: u32 = u32::MAX;
const NO_ID: u32 = u32::MAX;
/// A [`Transfer`]'s amount when the real one does not fit 32 bits.
const BIG: i32 = i32::MIN;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Open,
    Ok,
    Fail,
    Info,
}

/// What the checker keeps of one transfer, for every transfer of the history: 34 bytes,
/// packed. What is rare is kept apart: amounts past 32 bits ([`BankChecker::big`]),
/// tallies of entries with wrong amounts ([`BankChecker::odd`]), and transfers that
/// cannot be judged ([`BankChecker::unjudgeable_slots`]).
#[derive(Debug, Clone, Copy)]
#[repr(Rust, packed(2))]
struct Transfer {
    from: u32,
    to: u32,
    /// The amount, or [`BIG`] when it does not fit (then in [`BankChecker::big`]).
    amount: i32,
    /// Op index of the invoke, `NONE` when only ledgers or dead letters name it.
    invoke: u32,
    /// Op index of the completion, `NONE` while open.
    done: u32,
    outcome: Outcome,
    /// Its debits and credits (exact or not), counted as they stream by.
    counts: Counts,
    /// Ledger line of its first exact debit and credit (`NO_LINE` if none); every other
    /// entry is kept in `BankChecker::extra`.
    first_debit: u32,
    first_credit: u32,
}

/// Why a transfer cannot be judged, for the note that names it.
#[derive(Debug, Clone)]
enum Unjudgeable {
    /// The invoke at `op` has an id but the rest of its value cannot be read.
    Undecodable { op: u64, error: String },
    /// The id is invoked again at `op`, first at `first`.
    Reused { op: u64, first: u64 },
}

/// A bank and what its `final-ledger` lines say about it.
#[derive(Debug, Clone, Default)]
struct BankInfo {
    name: Box<str>,
    /// Some `final-ledger` line names it, or holds an entry or balance of its accounts.
    has_line: bool,
    /// Entries on its lines (the line's `bank`, else the entry's account's bank).
    entries: u64,
    /// Some line of it carries `"complete"`.
    uses_complete: bool,
    /// Op of its first line with `"complete": true`.
    complete_at: Option<u64>,
    /// Its last line carrying `"complete"` or `"entry_count"`.
    marked_at: Option<u64>,
    /// The first `"entry_count"` given, and the op that gave it.
    entry_count: Option<(u64, u64)>,
    /// A later line with another `"entry_count"`: (its value, its op).
    count_conflict: Option<(u64, u64)>,
}

impl BankInfo {
    /// Why the bank's final ledger is known to be incomplete, if it is: only a bank
    /// whose lines carry the completeness mark can be.
    fn incomplete(&self) -> Option<String> {
        let name = &self.name;
        if let Some(((n, at), (m, at2))) = self.entry_count.zip(self.count_conflict) {
            return Some(format!(
                "bank {name}'s final-ledger lines disagree on its entry_count ({n} at op {at}, \
                 {m} at op {at2})"
            ));
        }
        if let Some((n, at)) = self.entry_count {
            if n != self.entries {
                return Some(format!(
                    "bank {name}'s final ledger should hold {n} entries (entry_count, op {at}) \
                     but its lines hold {}",
                    self.entries
                ));
            }
        }
        if self.uses_complete && self.complete_at.is_none() {
            return Some(format!(
                "bank {name}'s final ledger never got its closing line (\"complete\": true; \
                 last marked line op {})",
                self.marked_at.unwrap_or(0)
            ));
        }
        None
    }
}

const NO_LINE: u32 = u32::MAX;

/// A ledger entry kept whole: one that is not a transfer's first exact debit or credit
/// (so rare in a sound history), or one whose transfer was not invoked yet (`pending`).
#[derive(Debug, Clone, Copy)]
struct EntryRec {
    amount: i64,
    line: u32,
    transfer: u32,
    account: u32,
    bad: bool,
    pending: bool,
}

/// How an entry relates to its transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Debit,
    Credit,
    BadDebit,
    BadCredit,
    Bad,
}

#[derive(Debug, Clone)]
struct AccountInfo {
    name: Box<str>,
    bank: u32,
    init: Option<i64>,
    /// Final balance (`None` inside = `null`) and the op that gave it.
    final_balance: Option<(Option<i64>, u64)>,
    /// Last read that counted this account (to count each account once per read).
    stamp: u64,
    /// Sum of its ledger entries.
    entry_sum: i128,
}

#[derive(Debug, Clone, Copy)]
struct Init {
    op: u64,
    accounts: u64,
    total: i128,
}

/// Figures kept while streaming.
#[derive(Debug, Default, Clone)]
struct Stats {
    ops: u64,
    transfers: u64,
    without_id: u64,
    reads: u64,
    reads_of_all: u64,
    ledger_lines: u64,
    dead_letters: u64,
    /// Transfers with an id that were not judged by the ledgers (set by the judging).
    not_judged: u64,
}

/// Streaming checker for the bank model. Feed it every op with [`Checker::observe`],
/// then call [`Checker::finish`].
#[derive(Debug, Default)]
pub struct BankChecker {
    accounts: Vec<AccountInfo>,
    account_ids: FxHashMap<Box<str>, u32>,
    banks: Vec<BankInfo>,
    bank_ids: FxHashMap<Box<str>, u32>,
    init: Option<Init>,
    read_no: u64,
    transfers: Vec<Transfer>,
    /// The rare tallies, by transfer slot (see [`Odd`]).
    odd: FxHashMap<u32, Odd>,
    /// Amounts that do not fit a [`Transfer`]'s 32 bits, by transfer slot.
    big: FxHashMap<u32, i64>,
    /// Transfers that cannot be judged: an invoke's value could not be read, or an id
    /// was used by another invoke too. Their ledger entries are neither `unexpected`
    /// nor held against them.
    unjudgeable_slots: FxHashMap<u32, ()>,
    /// An op index past what a [`Transfer`] holds was seen (explanations name it as
    /// `NONE - 1`; a note says so).
    index_clipped: bool,
    ids: FxHashMap<TransferId, u32>,
    dense: DenseIds,
    open: FxHashMap<Process, u32>,
    /// `(op index, bank named by the line)` of each `final-ledger` line.
    lines: Vec<(u64, Option<u32>)>,
    extra: Vec<EntryRec>,
    entry_count: u64,
    any_ledger: bool,
    dead: FxHashMap<u32, (u64, Option<String>)>,
    anomalies: FindingMap,
    stats: Stats,
    notes: Vec<String>,
    /// Notes not kept (past `MAX_NOTES`).
    notes_dropped: u64,
    /// Transfers that cannot be judged: how many, and the first few with the reason.
    unjudgeable: u64,
    unjudgeable_named: Vec<(u32, Unjudgeable)>,
    /// Banks whose final ledger is known to be incomplete (set by the judging).
    incomplete: Vec<bool>,
    unreadable: u64,
    /// Money held by parked transfers (debited, not credited), found by the judging.
    parked_held: i128,
    /// The last `drain` op, if any.
    drain: Option<DrainReport>,
    /// Money held by in-flight transfers (debited, not credited), found by the judging.
    in_flight_held: i128,
}

/// The harness's report on its wait for the system to drain, appended before the final
/// ledgers:
///
/// ```json
/// {"process": "final", "type": "ok", "f": "drain",
///  "value": {"drained": false, "waited_s": 30.0, "backlog": {"outbox": 0, "lag": 3, "producing": 0}}}
/// ```
///
/// Only `drained` is required; `waited_s` (a number ≥ 0) and `backlog` (an object)
/// may be absent or `null`; other fields are allowed and ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct DrainReport {
    /// Index of the op.
    pub op: u64,
    /// Whether every published message was consumed before the final ledgers were read.
    pub drained: bool,
    /// How long the harness waited, in seconds.
    pub waited_s: Option<f64>,
    /// What was left when the wait ended (`outbox`, `lag`, `producing`, …).
    pub backlog: Option<Map<String, Value>>,
}

/// True for the op that reports the drain wait: `f` `drain` by the `final` actor, `ok`
/// with any value but a list (a list is a queue model's drain), or of another type with
/// an object value. Such an op belongs to the bank model, never to the queue model;
/// whether it is well formed is [`DrainReport::from_op`]'s business.
pub fn is_drain_report(op: &Op) -> bool {
    if op.f != "drain" || !matches!(&op.process, Process::Named(n) if n == "final") {
        return false;
    }
    let raw = op.value.get().trim_start();
    match op.op_type {
        OpType::Ok => !raw.starts_with('['),
        _ => raw.starts_with('{'),
    }
}

impl DrainReport {
    /// Reads the report from a `drain` op (see [`is_drain_report`]); `Err` says in words
    /// what is wrong with it.
    pub fn from_op(op: &Op) -> Result<DrainReport, String> {
        const SHAPE: &str = "{\"drained\": true|false, \"waited_s\": SECONDS, \"backlog\": {…}}";
        if op.op_type != OpType::Ok {
            return Err(format!(
                "the final drain op must be a single ok line, not {}",
                op.op_type
            ));
        }
        let v: Value = serde_json::from_str(op.value.get())
            .map_err(|e| format!("the final drain op's value cannot be read: {e}"))?;
        let Value::Object(m) = v else {
            return Err(format!(
                "the final drain op's value must be an object {SHAPE}, not {}",
                short(&v)
            ));
        };
        let drained = match m.get("drained") {
            Some(Value::Bool(b)) => *b,
            None => {
                return Err(format!(
                    "the final drain op's value has no \"drained\" (expected {SHAPE})"
                ))
            }
            Some(other) => {
                return Err(format!(
                    "the final drain op's \"drained\" must be true or false, not {}",
                    short(other)
                ))
            }
        };
        let waited_s = match m.get("waited_s") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_f64().is_some_and(|x| x >= 0.0) => n.as_f64(),
            Some(other) => {
                return Err(format!(
                    "the final drain op's \"waited_s\" must be a number of seconds >= 0, not {}",
                    short(other)
                ))
            }
        };
        let backlog = match m.get("backlog") {
            None | Some(Value::Null) => None,
            Some(Value::Object(b)) => Some(b.clone()),
            Some(other) => {
                return Err(format!(
                    "the final drain op's \"backlog\" must be an object, not {}",
                    short(other)
                ))
            }
        };
        Ok(DrainReport {
            op: op.index,
            drained,
            waited_s,
            backlog,
        })
    }

    /// The backlog in words, keys sorted: `lag 3, outbox 0, producing 0`.
    pub fn backlog_words(&self) -> String {
        match &self.backlog {
            None => "not reported".to_owned(),
            Some(b) if b.is_empty() => "none reported".to_owned(),
            Some(b) => {
                let mut parts: Vec<(&String, &Value)> = b.iter().collect();
                parts.sort_by(|x, y| x.0.cmp(y.0));
                parts
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => format!("{k} {s}"),
                        v => format!("{k} {v}"),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }
    }
}

/// A JSON value for an error message, cut short.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

/// True for the `f`s the bank model reads.
pub fn is_bank_f(f: &str) -> bool {
    matches!(
        f,
        "init" | "transfer" | "read" | "final-ledger" | "dead-letter"
    )
}

fn bank_of(account: &str) -> &str {
    account.split_once('/').map_or(account, |(b, _)| b)
}

impl BankChecker {
    /// A checker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many ops of the bank model it has seen.
    pub fn relevant_ops(&self) -> u64 {
        self.stats.ops
    }

    fn bank(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.bank_ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.banks.len()).unwrap_or(u32::MAX - 1);
        self.banks.push(BankInfo {
            name: name.into(),
            ..BankInfo::default()
        });
        self.bank_ids.insert(name.into(), id);
        id
    }

    fn account(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.account_ids.get(name) {
            return id;
        }
        let bank = self.bank(bank_of(name));
        let id = u32::try_from(self.accounts.len()).unwrap_or(u32::MAX - 1);
        self.accounts.push(AccountInfo {
            name: name.into(),
            bank,
            init: None,
            final_balance: None,
            stamp: 0,
            entry_sum: 0,
        });
        self.account_ids.insert(name.into(), id);
        id
    }

    fn transfer_slot(&mut self, id: TransferId) -> u32 {
        let next = u32::try_from(self.transfers.len()).unwrap_or(NO_ID - 1);
        let slot = match self.dense.position(&id, self.transfers.len()) {
            Some(n) => {
                if n >= self.dense.slots.len() {
                    self.dense.slots.resize(n + 1, NO_ID);
                }
                if self.dense.slots[n] == NO_ID {
                    // It may have gone to the map while the vector was too short.
                    self.dense.slots[n] = self.ids.get(&id).copied().unwrap_or(next);
                }
                self.dense.slots[n]
            }
            None => *self.ids.entry(id).or_insert(next),
        };
        if slot == next {
            self.transfers.push(Transfer {
                from: 0,
                to: 0,
                amount: 0,
                invoke: NONE,
                done: NONE,
                outcome: Outcome::Open,
                counts: Counts::default(),
                first_debit: NO_LINE,
                first_credit: NO_LINE,
            });
        }
        slot
    }

    fn push(&mut self, kind: AnomalyKind, finding: Finding, badness: Option<u128>) {
        self.anomalies
            .entry(kind)
            .or_default()
            .push(finding, badness);
    }

    /// Keeps a note, or counts it past `MAX_NOTES`.
    fn note(&mut self, note: String) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(note);
        } else {
            self.notes_dropped += 1;
        }
    }

    fn unreadable(&mut self, op: &Op, what: &str, e: impl std::fmt::Display) {
        self.unreadable += 1;
        if self.unreadable <= 10 {
            self.note(format!(
                "op {}: {} value is not {what}: {e}; not checked",
                op.index, op.f
            ));
        }
    }

    /// `index` as a [`Transfer`] keeps it: clipped to `NONE - 1` past 32 bits.
    fn op_index(&mut self, index: u64) -> u32 {
        u32::try_from(index)
            .ok()
            .filter(|&i| i != NONE)
            .unwrap_or_else(|| {
                self.index_clipped = true;
                NONE - 1
            })
    }

    /// Marks a transfer as one that cannot be judged, remembering why for the note.
    fn cannot_judge(&mut self, slot: u32, why: Unjudgeable) {
        if self.unjudgeable_slots.insert(slot, ()).is_none() {
            self.unjudgeable += 1;
            if self.unjudgeable_named.len() < NAMED_IDS {
                self.unjudgeable_named.push((slot, why));
            }
        }
    }

    fn observe_init(&mut self, op: &Op) {
        if op.op_type != OpType::Ok {
            return;
        }
        if let Some(init) = self.init {
            self.note(format!(
                "op {}: a second init (the first is op {}); ignored",
                op.index, init.op
            ));
            return;
        }
        let v: InitValue = match op.value_as() {
            Ok(v) => v,
            Err(e) => return self.unreadable(op, "{\"balances\": {ACCOUNT: N}}", e),
        };
        let mut total: i128 = 0;
        let mut accounts = 0;
        for b in v.balances.0 {
            let Some(balance) = b.balance else {
                self.unreadable(op, "a map of integer balances", "a null balance");
                continue;
            };
            let id = self.account(&b.account) as usize;
            if self.accounts[id].init.is_some() {
                self.note(format!(
                    "op {}: init names {} twice; the first balance is kept",
                    op.index, b.account
                ));
                continue;
            }
            self.accounts[id].init = Some(balance);
            total += i128::from(balance);
            accounts += 1;
        }
        self.init = Some(Init {
            op: op.index,
            accounts,
            total,
        });
    }

    fn observe_read(&mut self, op: &Op) {
        if op.op_type != OpType::Ok || op.client().is_none() {
            return;
        }
        self.stats.reads += 1;
        let v: Balances = match op.value_as() {
            Ok(v) => v,
            Err(e) => return self.unreadable(op, "a map of integer balances", e),
        };
        self.read_no += 1;
        let stamp = self.read_no;
        let mut covered: u64 = 0;
        let mut sum: i128 = 0;
        let mut has_null = false;
        for b in &v.0 {
            let known = self
                .account_ids
                .get(&*b.account)
                .copied()
                .filter(|&id| self.accounts[id as usize].init.is_some());
            if let Some(id) = known {
                let a = &mut self.accounts[id as usize];
                if a.stamp != stamp {
                    a.stamp = stamp;
                    covered += 1;
                }
            } else if let Some(init) = self.init {
                let f = Finding::new(
                    format!(
                        "The read at op {} names {}, an account that init (op {}) did not create.",
                        op.index, b.account, init.op
                    ),
                    vec![init.op, op.index],
                )
                .account(&b.account);
                self.push(K::UnexpectedKey, f, None);
            }
            match b.balance {
                None => {
                    has_null = true;
                    let f = Finding::new(
                        format!(
                            "The read at op {} shows {} with no balance (null).",
                            op.index, b.account
                        ),
                        vec![op.index],
                    )
                    .account(&b.account);
                    self.push(K::NullBalance, f, None);
                }
                Some(x) => {
                    sum += i128::from(x);
                    if x < 0 {
                        let f = Finding::new(
                            format!(
                                "The read at op {} shows {} at {x}: a negative balance.",
                                op.index, b.account
                            ),
                            vec![op.index],
                        )
                        .account(&b.account)
                        .detail("balance", x);
                        self.push(K::Negative, f, Some(u128::from(x.unsigned_abs())));
                    }
                }
            }
        }
        if let Some(init) = self.init {
            if covered == init.accounts && !has_null {
                self.stats.reads_of_all += 1;
                if sum != init.total {
                    let f = Finding::new(
                        format!(
                            "Let the {} accounts start with a total of {} (init, op {}). Then a read \
                             of every account sums to {}, but the read at op {} sums to {sum}: {} \
                             off.",
                            init.accounts,
                            init.total,
                            init.op,
                            init.total,
                            op.index,
                            signed(sum - init.total)
                        ),
                        vec![init.op, op.index],
                    )
                    .detail("expected", i128_value(init.total))
                    .detail("actual", i128_value(sum));
                    self.push(K::WrongTotal, f, Some((sum - init.total).unsigned_abs()));
                }
            }
        }
    }

    fn observe_transfer(&mut self, op: &Op) {
        if op.op_type == OpType::Invoke {
            self.stats.transfers += 1;
            let slot = self.register_transfer(op);
            self.open.insert(op.process.clone(), slot);
            return;
        }
        let slot = match self.open.remove(&op.process) {
            Some(slot) => slot,
            None => {
                // A named actor's single completion line: invoke and completion at once.
                self.stats.transfers += 1;
                self.register_transfer(op)
            }
        };
        if slot == NO_ID {
            return;
        }
        let done = self.op_index(op.index);
        let t = &mut self.transfers[slot as usize];
        t.done = done;
        t.outcome = match op.op_type {
            OpType::Ok => Outcome::Ok,
            OpType::Fail => Outcome::Fail,
            OpType::Info | OpType::Invoke => Outcome::Info,
        };
    }

    /// Records the transfer of an invoke (or of a lone completion); returns its slot or
    /// `NO_ID` when it has no id, its id cannot be read, or the id was used before.
    ///
    /// The id is registered even when the rest of the value cannot be read, so that
    /// the transfer's ledger entries are not taken for `unexpected` ones: such a
    /// transfer, and one whose id is used twice, cannot be judged (a note names it).
    fn register_transfer(&mut self, op: &Op) -> u32 {
        let (id, rest) = match op.value_as::<TransferValue>() {
            Ok(mut v) => {
                let Some(id) = v.id.take() else {
                    self.stats.without_id += 1;
                    return NO_ID;
                };
                (id, Ok(v))
            }
            Err(e) => {
                self.unreadable(op, "{\"id\", \"from\", \"to\", \"amount\"}", &e);
                match op.value_as::<TransferIdOnly>() {
                    Ok(TransferIdOnly { id: Some(id) }) => (id, Err(e.to_string())),
                    // No id to register: nothing can name this transfer.
                    _ => return NO_ID,
                }
            }
        };
        let slot = self.transfer_slot(id);
        let first = self.transfers[slot as usize].invoke;
        if first != NONE {
            self.cannot_judge(
                slot,
                Unjudgeable::Reused {
                    op: op.index,
                    first: u64::from(first),
                },
            );
            return NO_ID;
        }
        match rest {
            Ok(v) => {
                let from = self.account(&v.from.0);
                let to = self.account(&v.to.0);
                let invoke = self.op_index(op.index);
                let amount = i32::try_from(v.amount).ok().filter(|&a| a != BIG);
                if amount.is_none() {
                    self.big.insert(slot, v.amount);
                }
                let t = &mut self.transfers[slot as usize];
                t.from = from;
                t.to = to;
                t.amount = amount.unwrap_or(BIG);
                t.invoke = invoke;
            }
            Err(error) => {
                self.transfers[slot as usize].invoke = self.op_index(op.index);
                self.cannot_judge(
                    slot,
                    Unjudgeable::Undecodable {
                        op: op.index,
                        error,
                    },
                );
            }
        }
        slot
    }

    fn observe_ledger(&mut self, op: &Op) {
        if op.op_type != OpType::Ok {
            return;
        }
        self.stats.ledger_lines += 1;
        let v: LedgerValue = match op.value_as() {
            Ok(v) => v,
            Err(e) => return self.unreadable(
                op,
                "{\"bank\", \"entries\": [{\"transfer\", \"account\", \"amount\"}], \"balances\"}",
                e,
            ),
        };
        self.any_ledger = true;
        let line_bank = v.bank.as_ref().map(|b| self.bank(&b.0));
        if let Some(b) = line_bank {
            let info = &mut self.banks[b as usize];
            info.has_line = true;
            info.entries += v.entries.len() as u64;
            if v.complete.is_some() || v.entry_count.is_some() {
                info.marked_at = Some(op.index);
            }
            if let Some(c) = v.complete {
                info.uses_complete = true;
                if c && info.complete_at.is_none() {
                    info.complete_at = Some(op.index);
                }
            }
            if let Some(n) = v.entry_count {
                match info.entry_count {
                    None => info.entry_count = Some((n, op.index)),
                    Some((m, _)) if m != n && info.count_conflict.is_none() => {
                        info.count_conflict = Some((n, op.index));
                    }
                    Some(_) => {}
                }
            }
        } else if v.complete.is_some() || v.entry_count.is_some() {
            self.note(format!(
                "op {}: a final-ledger line carries a completeness mark (complete, \
                 entry_count) but names no bank; the mark is ignored",
                op.index
            ));
        }
        let line = u32::try_from(self.lines.len()).unwrap_or(NO_LINE - 1);
        self.lines.push((op.index, line_bank));
        for e in v.entries {
            let account = self.account(&e.account.0);
            let a = &mut self.accounts[account as usize];
            a.entry_sum += i128::from(e.amount);
            if line_bank.is_none() {
                let bank = a.bank as usize;
                self.banks[bank].has_line = true;
                self.banks[bank].entries += 1;
            }
            self.entry_count += 1;
            let transfer = self.transfer_slot(e.transfer);
            let rec = EntryRec {
                amount: e.amount,
                line,
                transfer,
                account,
                bad: false,
                pending: true,
            };
            self.take_entry(rec);
        }
        for b in v.balances.map(|b| b.0).unwrap_or_default() {
            let account = self.account(&b.account);
            let a = &mut self.accounts[account as usize];
            if line_bank.is_none() {
                let bank = a.bank;
                self.banks[bank as usize].has_line = true;
            }
            let a = &mut self.accounts[account as usize];
            match a.final_balance {
                Some((prev, at)) if prev != b.balance => {
                    self.unreadable += 1;
                    self.note(format!(
                        "op {}: a second final balance for {} disagrees with op {at}; the first \
                         is kept",
                        op.index, b.account
                    ));
                }
                Some(_) => {}
                None => a.final_balance = Some((b.balance, op.index)),
            }
        }
    }

    fn observe_dead_letter(&mut self, op: &Op) {
        if op.op_type != OpType::Ok {
            return;
        }
        self.stats.dead_letters += 1;
        let v: DeadLetterValue = match op.value_as() {
            Ok(v) => v,
            Err(e) => return self.unreadable(op, "{\"transfer\", \"reason\"}", e),
        };
        let slot = self.transfer_slot(v.transfer);
        self.dead.entry(slot).or_insert((op.index, v.reason));
    }

    fn observe_drain(&mut self, op: &Op) {
        match DrainReport::from_op(op) {
            // The last one counts.
            Ok(r) => self.drain = Some(r),
            Err(e) => self.unreadable(op, "a drain report", e),
        }
    }
}

impl Checker for BankChecker {
    fn observe(&mut self, op: &Op) {
        match op.f.as_str() {
            "transfer" => self.observe_transfer(op),
            "read" => self.observe_read(op),
            "final-ledger" => self.observe_ledger(op),
            "init" => self.observe_init(op),
            "dead-letter" => self.observe_dead_letter(op),
            "drain" if is_drain_report(op) => self.observe_drain(op),
            _ => return,
        }
        self.stats.ops += 1;
    }

    fn finish(mut self) -> CheckerResult {
        self.judge_transfers();
        self.judge_accounts();
        let mut stats = BTreeMap::new();
        let s = &self.stats;
        let count = |o: Outcome| {
            self.transfers
                .iter()
                .filter(|t| t.invoke != NONE && t.outcome == o)
                .count() as u64
        };
        stats.insert("ops".into(), s.ops);
        stats.insert("transfers".into(), s.transfers);
        stats.insert("transfers-ok".into(), count(Outcome::Ok));
        stats.insert("transfers-fail".into(), count(Outcome::Fail));
        stats.insert("transfers-info".into(), count(Outcome::Info));
        stats.insert("transfers-open".into(), count(Outcome::Open));
        stats.insert("transfers-without-id".into(), s.without_id);
        stats.insert("reads".into(), s.reads);
        stats.insert("reads-of-every-account".into(), s.reads_of_all);
        stats.insert("ledger-lines".into(), s.ledger_lines);
        stats.insert("ledger-entries".into(), self.entry_count);
        stats.insert("dead-letters".into(), s.dead_letters);
        stats.insert("accounts".into(), self.init.map_or(0, |i| i.accounts));
        stats.insert("unreadable-ops".into(), self.unreadable);
        if let Some(d) = &self.drain {
            stats.insert("drained".into(), u64::from(d.drained));
        }
        stats.insert("transfers-not-judged".into(), self.stats.not_judged);
        let invalid = self
            .anomalies
            .iter()
            .any(|(k, v)| invalidates(*k) && v.count() > 0);
        let in_flight = self
            .anomalies
            .get(&K::InFlight)
            .is_some_and(|v| v.count() > 0);
        if self.init.is_none() && self.any_ledger {
            self.notes
                .push("no init: final balances could not be compared with the ledgers".to_owned());
        }
        if self.init.is_none() && !self.any_ledger {
            self.notes.push(
                "no init and no final-ledger: nothing to compare reads or transfers with"
                    .to_owned(),
            );
        }
        if self.unreadable > 10 {
            self.notes
                .push(format!("{} unreadable ops in all", self.unreadable));
        }
        if self.notes_dropped > 0 {
            self.notes
                .push(format!("… and {} more notes not kept", self.notes_dropped));
        }
        let valid = if invalid {
            Validity::Invalid
        } else if !self.notes.is_empty() || in_flight {
            Validity::Unknown
        } else {
            Validity::Valid
        };
        let (anomalies, counts) = into_result_maps(self.anomalies);
        CheckerResult {
            model: "bank".into(),
            valid,
            anomalies,
            counts,
            stats,
            notes: self.notes,
        }
    }
}

/// A transfer's debits and credits, exact or with a wrong amount (saturating).
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    debits: u16,
    credits: u16,
}

/// The rare tallies of a transfer, kept only for transfers that have them: entries
/// with a wrong amount, and entries that match neither side.
#[derive(Debug, Default, Clone, Copy)]
struct Odd {
    mismatched: u16,
    neither: u16,
}

/// All the tallies of a transfer's ledger entries, as judged.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    debits: u16,
    credits: u16,
    mismatched: u16,
    total: u32,
}

impl Tally {
    fn total(self) -> u32 {
        self.total
    }
}

fn bump(x: &mut u16) {
    *x = x.saturating_add(1);
}

/// The tallies of transfer `t`, whose rare ones are `odd`.
fn tally(t: &Transfer, odd: Option<&Odd>) -> Tally {
    let c = t.counts;
    let odd = odd.copied().unwrap_or_default();
    Tally {
        debits: c.debits,
        credits: c.credits,
        mismatched: odd.mismatched,
        total: u32::from(c.debits) + u32::from(c.credits) + u32::from(odd.neither),
    }
}

/// The amount of transfer `t` in `slot`, whose amounts past 32 bits are in `big`.
fn amount_of(t: &Transfer, slot: u32, big: &FxHashMap<u32, i64>) -> i64 {
    match t.amount {
        BIG => big.get(&slot).copied().unwrap_or(i64::from(BIG)),
        a => i64::from(a),
    }
}

/// Which side of transfer `t` (of `amount`) an entry of `x` on `account` is.
fn side(t: &Transfer, amount: i64, account: u32, x: i64) -> Side {
    let amount = i128::from(amount);
    let x = i128::from(x);
    if account == t.from && x == -amount {
        Side::Debit
    } else if account == t.to && x == amount {
        Side::Credit
    } else if account == t.from && x != 0 && x.signum() == -amount.signum() {
        Side::BadDebit
    } else if account == t.to && x != 0 && x.signum() == amount.signum() {
        Side::BadCredit
    } else {
        Side::Bad
    }
}

impl BankChecker {
    /// Counts an entry against its transfer, keeping it whole unless it is the
    /// transfer's first exact debit or credit. Entries of transfers not invoked yet stay
    /// pending until [`BankChecker::finish`].
    fn take_entry(&mut self, mut rec: EntryRec) {
        let t = &mut self.transfers[rec.transfer as usize];
        if t.invoke == NONE {
            rec.pending = true;
            self.extra.push(rec);
            return;
        }
        rec.pending = false;
        let amount = amount_of(t, rec.transfer, &self.big);
        match side(t, amount, rec.account, rec.amount) {
            Side::Debit => {
                bump(&mut t.counts.debits);
                if t.first_debit == NO_LINE {
                    t.first_debit = rec.line;
                    return;
                }
            }
            Side::Credit => {
                bump(&mut t.counts.credits);
                if t.first_credit == NO_LINE {
                    t.first_credit = rec.line;
                    return;
                }
            }
            Side::BadDebit => {
                bump(&mut t.counts.debits);
                bump(&mut self.odd.entry(rec.transfer).or_default().mismatched);
                rec.bad = true;
            }
            Side::BadCredit => {
                bump(&mut t.counts.credits);
                bump(&mut self.odd.entry(rec.transfer).or_default().mismatched);
                rec.bad = true;
            }
            Side::Bad => {
                let odd = self.odd.entry(rec.transfer).or_default();
                bump(&mut odd.mismatched);
                bump(&mut odd.neither);
                rec.bad = true;
            }
        }
        self.extra.push(rec);
    }

    fn judge_transfers(&mut self) {
        let n = self.transfers.len();
        // Entries that came before their transfer's invoke, or never had one.
        let pending: Vec<EntryRec> = self.extra.iter().copied().filter(|e| e.pending).collect();
        self.extra.retain(|e| !e.pending);
        for rec in pending {
            if self.transfers[rec.transfer as usize].invoke == NONE {
                let odd = self.odd.entry(rec.transfer).or_default();
                bump(&mut odd.mismatched);
                bump(&mut odd.neither);
                self.extra.push(EntryRec { bad: true, ..rec });
            } else {
                self.take_entry(rec);
            }
        }
        // Banks whose final ledger is marked and known to be incomplete.
        let mut incomplete = vec![false; self.banks.len()];
        let mut whys = Vec::new();
        for (i, b) in self.banks.iter().enumerate() {
            if !b.has_line {
                continue;
            }
            if let Some(why) = b.incomplete() {
                incomplete[i] = true;
                whys.push(format!(
                    "{why}: the ledger is incomplete, so transfers that involve bank {} were \
                     not judged and its accounts' final balances were not compared with its \
                     entries",
                    b.name
                ));
            }
        }
        for why in whys {
            self.note(why);
        }
        // What each transfer is flagged with, in the order the transfers were first seen.
        let mut flags: BTreeMap<AnomalyKind, Capped<u32>> = BTreeMap::new();
        let mut flag = |kind: AnomalyKind, slot: u32, badness: u128| {
            flags.entry(kind).or_default().push(slot, Some(badness));
        };
        let mut parked_held: i128 = 0;
        let mut in_flight_held: i128 = 0;
        let mut in_flight = 0u64;
        let undrained = self.drain.as_ref().is_some_and(|d| !d.drained);
        let (mut no_ledger, mut no_ledger_ok) = (0u64, 0u64);
        let mut unjudged = 0u64;
        let mut unjudged_incomplete = 0u64;
        for (i, t) in self.transfers.iter().enumerate() {
            let slot = i as u32;
            let k = tally(t, self.odd.get(&slot));
            if t.invoke == NONE {
                if k.total() > 0 {
                    flag(K::Unexpected, slot, u128::from(k.total()));
                }
                continue;
            }
            if self.unjudgeable_slots.contains_key(&slot) {
                continue;
            }
            if !self.any_ledger {
                no_ledger += 1;
                no_ledger_ok += u64::from(t.outcome == Outcome::Ok);
                continue;
            }
            let from_bank = self.accounts[t.from as usize].bank as usize;
            let to_bank = self.accounts[t.to as usize].bank as usize;
            if !(self.banks[from_bank].has_line && self.banks[to_bank].has_line) {
                unjudged += 1;
                continue;
            }
            if incomplete[from_bank] || incomplete[to_bank] {
                unjudged_incomplete += 1;
                continue;
            }
            let (d, c) = (k.debits, k.credits);
            let t_amount = amount_of(t, slot, &self.big);
            let amount = u128::from(t_amount.unsigned_abs());
            let lost = (d >= 1 && c == 0) || (t.outcome == Outcome::Ok && d == 0 && c == 0);
            if lost {
                if self.dead.contains_key(&slot) {
                    flag(K::Parked, slot, amount);
                    parked_held += i128::from(t_amount) * i128::from(d);
                } else if undrained {
                    flag(K::InFlight, slot, amount);
                    in_flight_held += i128::from(t_amount) * i128::from(d);
                    in_flight += 1;
                } else {
                    flag(K::Lost, slot, amount);
                }
            }
            if d > 1 || c > 1 {
                flag(
                    K::Duplicated,
                    slot,
                    amount * (u128::from(d) + u128::from(c)),
                );
            }
            if c >= 1 && d == 0 {
                flag(K::Phantom, slot, amount * u128::from(c));
            }
            if t.outcome == Outcome::Fail && k.total() > 0 {
                flag(K::FailedApplied, slot, amount * u128::from(k.total()));
            }
            if k.mismatched > 0 {
                flag(K::AmountMismatch, slot, u128::from(k.mismatched));
            }
        }
        if no_ledger > 0 {
            self.notes.push(format!(
                "{no_ledger} transfer{} with an id ({no_ledger_ok} acknowledged) but no \
                 final-ledger line in the history: the ledgers were never read, so no transfer \
                 was judged",
                if no_ledger == 1 { "" } else { "s" }
            ));
        }
        if unjudged > 0 {
            self.notes.push(format!(
                "{unjudged} transfers involve a bank with no final-ledger line; they were not judged"
            ));
        }
        if unjudged_incomplete > 0 {
            self.notes.push(format!(
                "{unjudged_incomplete} transfer{} involve{} a bank whose final ledger is \
                 incomplete; not judged",
                if unjudged_incomplete == 1 { "" } else { "s" },
                if unjudged_incomplete == 1 { "s" } else { "" }
            ));
        }
        self.stats.not_judged = no_ledger + unjudged + unjudged_incomplete + self.unjudgeable;
        if self.index_clipped {
            self.notes.push(format!(
                "the history has op indexes past {}: explanations name those ops as {}",
                NONE - 1,
                NONE - 1
            ));
        }
        if in_flight > 0 {
            let op = self.drain.as_ref().map_or(0, |d| d.op);
            self.notes.push(format!(
                "the system did not drain (op {op}): {in_flight} transfer{} not credited may \
                 still be in flight (in-flight) and could not be judged",
                if in_flight == 1 { "" } else { "s" }
            ));
        }
        self.parked_held = parked_held;
        self.in_flight_held = in_flight_held;
        self.incomplete = incomplete;
        if flags.is_empty() && self.unjudgeable == 0 {
            return;
        }
        // Gather ids and entries of the transfers shown only.
        let mut shown = vec![false; n];
        for c in flags.values() {
            for &s in c.kept() {
                shown[s as usize] = true;
            }
        }
        let mut named = shown.clone();
        for (s, _) in &self.unjudgeable_named {
            named[*s as usize] = true;
        }
        let mut names: FxHashMap<u32, TransferId> = FxHashMap::default();
        for (id, &slot) in &self.ids {
            if named[slot as usize] {
                names.insert(slot, id.clone());
            }
        }
        for (n, &slot) in self.dense.slots.iter().enumerate() {
            if slot != NO_ID && named[slot as usize] {
                names.insert(slot, self.dense.id(n));
            }
        }
        if self.unjudgeable > 0 {
            let listed: Vec<String> = self
                .unjudgeable_named
                .iter()
                .map(|(slot, why)| {
                    let id = names
                        .get(slot)
                        .map_or_else(|| "?".to_owned(), ToString::to_string);
                    match why {
                        Unjudgeable::Undecodable { op, error } => {
                            format!("{id} (op {op}: the invoke's value cannot be read: {error})")
                        }
                        Unjudgeable::Reused { op, first } => {
                            format!(
                                "{id} (its id is invoked again at op {op}, first at op {first})"
                            )
                        }
                    }
                })
                .collect();
            let more = self.unjudgeable - self.unjudgeable_named.len() as u64;
            self.notes.push(format!(
                "cannot judge {} transfer{}, so {} ledger entries were not checked: {}{}",
                self.unjudgeable,
                if self.unjudgeable == 1 { "" } else { "s" },
                if self.unjudgeable == 1 {
                    "its"
                } else {
                    "their"
                },
                listed.join("; "),
                if more > 0 {
                    format!("; and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        let mut entries: FxHashMap<u32, Vec<(LedgerEntry, bool)>> = FxHashMap::default();
        let whole = |c: &BankChecker, slot: u32, line: u32, account: u32, amount: i64| {
            let (op, line_bank) = c.lines.get(line as usize).copied().unwrap_or((0, None));
            let bank = line_bank.unwrap_or(c.accounts[account as usize].bank);
            LedgerEntry {
                op,
                bank: c.banks[bank as usize].name.to_string(),
                transfer: names
                    .get(&slot)
                    .map_or(serde_json::Value::Null, TransferId::to_value),
                account: c.accounts[account as usize].name.to_string(),
                amount,
            }
        };
        for (slot, f) in shown.iter().enumerate() {
            if !*f {
                continue;
            }
            let t = &self.transfers[slot];
            let list = entries.entry(slot as u32).or_default();
            if t.first_debit != NO_LINE {
                list.push((
                    whole(
                        self,
                        slot as u32,
                        t.first_debit,
                        t.from,
                        -amount_of(t, slot as u32, &self.big),
                    ),
                    false,
                ));
            }
            if t.first_credit != NO_LINE {
                list.push((
                    whole(
                        self,
                        slot as u32,
                        t.first_credit,
                        t.to,
                        amount_of(t, slot as u32, &self.big),
                    ),
                    false,
                ));
            }
        }
        for e in &self.extra {
            if shown[e.transfer as usize] {
                let entry = whole(self, e.transfer, e.line, e.account, e.amount);
                entries.entry(e.transfer).or_default().push((entry, e.bad));
            }
        }
        for list in entries.values_mut() {
            list.sort_by_key(|(e, _)| e.op);
        }
        let mut found: Vec<(AnomalyKind, Capped<Finding>)> = Vec::new();
        for (kind, slots) in flags {
            let findings = slots.map(|slot| {
                let id = names
                    .get(&slot)
                    .cloned()
                    .unwrap_or_else(|| TransferId::from_text("?"));
                let t = &self.transfers[slot as usize];
                let es = entries.get(&slot).map(Vec::as_slice).unwrap_or(&[]);
                self.explain(kind, slot, &id, t, es)
            });
            found.push((kind, findings));
        }
        self.anomalies.extend(found);
    }

    fn explain(
        &self,
        kind: AnomalyKind,
        slot: u32,
        id: &TransferId,
        t: &Transfer,
        es: &[(LedgerEntry, bool)],
    ) -> Finding {
        let k = tally(t, self.odd.get(&slot));
        let from = &*self.accounts[t.from as usize].name;
        let to = &*self.accounts[t.to as usize].name;
        let amt = amount_of(t, slot, &self.big);
        let outcome = match t.outcome {
            Outcome::Ok => format!("was acknowledged at op {}", { t.done }),
            Outcome::Fail => format!("was told it failed at op {}", { t.done }),
            Outcome::Info => format!("had an unknown outcome (info at op {})", { t.done }),
            Outcome::Open => format!("was invoked at op {} and never completed", { t.invoke }),
        };
        let ops_of = |pred: &dyn Fn(&LedgerEntry, bool) -> bool| -> Vec<u64> {
            let mut v: Vec<u64> = es
                .iter()
                .filter(|(e, b)| pred(e, *b))
                .map(|(e, _)| e.op)
                .collect();
            v.dedup();
            v
        };
        let list =
            |v: &[u64]| -> String { v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ") };
        let mut ops: Vec<u64> = Vec::new();
        for o in [t.invoke, t.done] {
            if o != NONE {
                ops.push(u64::from(o));
            }
        }
        let mut shown: Vec<LedgerEntry> = es.iter().map(|(e, _)| e.clone()).collect();
        let sentence = match kind {
            K::Unexpected => {
                let banks: Vec<String> = es.iter().map(|(e, _)| format!("{} {:+} ({})", e.account, e.amount, e.bank)).collect();
                format!(
                    "No {id} was ever invoked, yet the final ledgers hold {} entr{} for it (op {}): {}.",
                    es.len(),
                    if es.len() == 1 { "y" } else { "ies" },
                    list(&ops_of(&|_, _| true)),
                    banks.join(", ")
                )
            }
            K::Lost | K::Parked => {
                let mut s = if k.debits >= 1 {
                    format!(
                        "{id} {outcome} and debited {from} by {amt} (ledger op {}), but {to} was never credited after the system drained",
                        list(&ops_of(&|e, _| e.account == from && e.amount < 0))
                    )
                } else {
                    format!(
                        "{id} {outcome}, but neither {from} nor {to} shows it in the final ledgers: the acknowledged transfer of {amt} was lost"
                    )
                };
                if kind == K::Parked {
                    if let Some((op, reason)) = self.dead.get(&slot) {
                        ops.push(*op);
                        s.push_str(&format!(
                            "; it was dead-lettered at op {op}{}, so the money is parked awaiting manual intervention",
                            reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
                        ));
                    }
                }
                s.push('.');
                s
            }
            K::InFlight => {
                let drain = match &self.drain {
                    Some(d) => {
                        ops.push(d.op);
                        let waited = d
                            .waited_s
                            .map(|w| format!(", after waiting {w} s"))
                            .unwrap_or_default();
                        format!(
                            "the system did not drain (op {}{waited}; backlog: {})",
                            d.op,
                            d.backlog_words()
                        )
                    }
                    None => "the system did not drain".to_owned(),
                };
                if k.debits >= 1 {
                    format!(
                        "{id} {outcome} and debited {from} by {amt} (ledger op {}), but {to} was not credited; {drain}, so the credit may still arrive.",
                        list(&ops_of(&|e, _| e.account == from && e.amount < 0))
                    )
                } else {
                    format!(
                        "{id} {outcome}, but neither {from} nor {to} shows it in the final ledgers; {drain}, so the transfer of {amt} may still be applied."
                    )
                }
            }
            K::Duplicated => format!(
                "Let {id} move {amt} from {from} to {to} ({}). Then the ledgers should debit {from} once and credit {to} once, but they show {} debit{} and {} credit{} (ledger op {}): applied more than once.",
                outcome,
                k.debits,
                if k.debits == 1 { "" } else { "s" },
                k.credits,
                if k.credits == 1 { "" } else { "s" },
                list(&ops_of(&|_, _| true))
            ),
            K::Phantom => format!(
                "{id} {outcome}; {to} was credited {amt} (ledger op {}) but {from} was never debited: money created from nothing.",
                list(&ops_of(&|e, _| e.account == to && e.amount > 0))
            ),
            K::FailedApplied => format!(
                "{id} {outcome}, yet the final ledgers show it ({} entr{}, ledger op {}): a failed transfer was applied.",
                es.len(),
                if es.len() == 1 { "y" } else { "ies" },
                list(&ops_of(&|_, _| true))
            ),
            K::AmountMismatch => {
                shown = es.iter().filter(|(_, b)| *b).map(|(e, _)| e.clone()).collect();
                let bad: Vec<String> = shown
                    .iter()
                    .map(|e| format!("{:+} on {} (ledger of {}, op {})", e.amount, e.account, e.bank, e.op))
                    .collect();
                format!(
                    "Let {id} move {amt} from {from} to {to} ({outcome}). Then its entries are {} on {from} and {:+} on {to}, but the ledgers hold {}.",
                    -i128::from(amt),
                    amt,
                    bad.join(" and ")
                )
            }
            // Not about a transfer: never asked for here.
            K::LedgerMismatch
            | K::WrongTotal
            | K::Negative
            | K::UnexpectedKey
            | K::NullBalance
            | K::Recovered
            | K::AbortedRead
            | K::Duplicate
            | K::InconsistentOffsets
            | K::LostWrite => format!("{id}: {kind}."),
        };
        ops.extend(shown.iter().map(|e| e.op));
        ops.sort_unstable();
        ops.dedup();
        let mut f = Finding::new(sentence, ops)
            .transfer(id.to_value())
            .entries(shown)
            .detail("debits", k.debits)
            .detail("credits", k.credits);
        if t.invoke != NONE {
            f = f
                .detail("from", from)
                .detail("to", to)
                .detail("amount", amt)
                .detail(
                    "outcome",
                    match t.outcome {
                        Outcome::Ok => "ok",
                        Outcome::Fail => "fail",
                        Outcome::Info => "info",
                        Outcome::Open => "open",
                    },
                );
        }
        f
    }

    fn judge_accounts(&mut self) {
        if !self.any_ledger {
            return;
        }
        let sums: Vec<i128> = self.accounts.iter().map(|a| a.entry_sum).collect();
        let mut findings: Vec<(AnomalyKind, Finding, Option<u128>)> = Vec::new();
        let mut final_sum: i128 = 0;
        let mut covered = 0u64;
        let mut all_numbers = true;
        let mut last_op = 0;
        for (i, a) in self.accounts.iter().enumerate() {
            let Some((balance, op)) = a.final_balance else {
                continue;
            };
            last_op = last_op.max(op);
            let name = &*a.name;
            let Some(balance) = balance else {
                all_numbers = false;
                findings.push((
                    K::NullBalance,
                    Finding::new(
                        format!("The final balances (op {op}) show {name} with no balance (null)."),
                        vec![op],
                    )
                    .account(name),
                    None,
                ));
                continue;
            };
            final_sum += i128::from(balance);
            if a.init.is_some() {
                covered += 1;
            } else if let Some(init) = self.init {
                findings.push((
                    K::UnexpectedKey,
                    Finding::new(
                        format!(
                            "The final balances (op {op}) name {name}, an account that init (op {}) did not create.",
                            init.op
                        ),
                        vec![init.op, op],
                    )
                    .account(name),
                    None,
                ));
            }
            if balance < 0 {
                findings.push((
                    K::Negative,
                    Finding::new(
                        format!("The final balances (op {op}) show {name} at {balance}: a negative balance."),
                        vec![op],
                    )
                    .account(name)
                    .detail("balance", balance),
                    Some(u128::from(balance.unsigned_abs())),
                ));
            }
            let start = i128::from(a.init.unwrap_or(0));
            let expected = start + sums[i];
            // Without init no account has a known start: nothing to compare. Nor with
            // an incomplete ledger: its entries do not add up to the account's.
            let incomplete = self
                .incomplete
                .get(a.bank as usize)
                .copied()
                .unwrap_or(false);
            if self.init.is_some() && !incomplete && expected != i128::from(balance) {
                let init_op = self.init.map(|i| i.op);
                let start_words = match (a.init, init_op) {
                    (Some(x), Some(op)) => format!("start at {x} (init, op {op})"),
                    _ => "start at 0 (init did not name it)".to_owned(),
                };
                let mut ops: Vec<u64> = init_op.into_iter().collect();
                ops.push(op);
                findings.push((
                    K::LedgerMismatch,
                    Finding::new(
                        format!(
                            "Let {name} {start_words} and its ledger entries add up to {}. Then its final balance should be {expected}, but the final ledger (op {op}) says {balance}: {} off.",
                            signed(sums[i]),
                            signed(i128::from(balance) - expected)
                        ),
                        ops,
                    )
                    .account(name)
                    .detail("expected", i128_value(expected))
                    .detail("actual", balance),
                    Some((i128::from(balance) - expected).unsigned_abs()),
                ));
            }
        }
        // With an incomplete ledger the money held by its parked or in-flight transfers
        // is not known, so the final total cannot be held against the initial one.
        let held_unknown = self.incomplete.iter().any(|&x| x)
            && (self.stats.dead_letters > 0 || self.drain.as_ref().is_some_and(|d| !d.drained));
        if held_unknown {
            self.notes.push(
                "the final balances' total was not compared with the initial total: a bank's \
                 ledger is incomplete and some money may be held by parked or in-flight transfers"
                    .to_owned(),
            );
        }
        if let Some(init) = self.init.filter(|_| !held_unknown) {
            if covered == init.accounts && all_numbers && init.accounts > 0 {
                let expected = init.total - self.parked_held - self.in_flight_held;
                if final_sum != expected {
                    let mut held: Vec<String> = Vec::new();
                    if self.parked_held != 0 {
                        held.push(format!("{} held by parked transfers", self.parked_held));
                    }
                    if self.in_flight_held != 0 {
                        held.push(format!(
                            "{} held by in-flight transfers",
                            self.in_flight_held
                        ));
                    }
                    let parked = if held.is_empty() {
                        String::new()
                    } else {
                        format!(" less {}", held.join(" and "))
                    };
                    findings.push((
                        K::WrongTotal,
                        Finding::new(
                            format!(
                                "Let the {} accounts start with a total of {} (init, op {}). Then the final balances should sum to {expected}{parked}, but they sum to {final_sum} (op {last_op}): {} off.",
                                init.accounts,
                                init.total,
                                init.op,
                                signed(final_sum - expected)
                            ),
                            vec![init.op, last_op],
                        )
                        .detail("expected", i128_value(expected))
                        .detail("actual", i128_value(final_sum)),
                        Some((final_sum - expected).unsigned_abs()),
                    ));
                }
            }
        }
        for (k, f, badness) in findings {
            self.push(k, f, badness);
        }
    }
}

/// Transfer ids of one shape — a fixed prefix and a decimal number (`t0`, `t1`, …), or
/// non-negative integers — mapped through a vector instead of the hash map: ids come
/// roughly in order, so lookups stay in cache. The shape is fixed by the first id;
/// others go to the map, and so do numbers past twice the transfers seen so far, so the
/// vector holds at most two slots (8 bytes) per transfer and a short history cannot make
/// it allocate much. An id that went to the map keeps its slot when the vector later
/// reaches it. (Ids that outgrew a fixed limit used to go to the map: at 100 M ops, 8 M
/// ids there took 600 MB.)
#[derive(Debug, Default)]
struct DenseIds {
    shape: Option<Shape>,
    slots: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    Int,
    Prefixed(Box<str>),
}

impl DenseIds {
    /// Ids up to this number use the vector (4 GiB at most, reached only past 500 M
    /// transfers).
    const LIMIT: u64 = 1 << 30;

    /// The vector position of `id`, when it has the shape and is below twice `known`
    /// (the transfers seen so far; at least 65 536).
    fn position(&mut self, id: &TransferId, known: usize) -> Option<usize> {
        let (shape, n) = match id {
            TransferId::Int(n) => (None, u64::try_from(*n).ok()?),
            TransferId::Short(..) => {
                let s = id.as_str()?;
                let digits = s.bytes().rev().take_while(u8::is_ascii_digit).count();
                let (prefix, num) = s.split_at(s.len() - digits);
                if num.is_empty() || num.len() > 9 || (num.len() > 1 && num.starts_with('0')) {
                    return None;
                }
                (Some(prefix), num.parse().ok()?)
            }
            _ => return None,
        };
        let reach = (known as u64).saturating_mul(2).clamp(1 << 16, Self::LIMIT);
        if n >= reach {
            return None;
        }
        match (&self.shape, shape) {
            (None, None) => self.shape = Some(Shape::Int),
            (None, Some(p)) => self.shape = Some(Shape::Prefixed(p.into())),
            (Some(Shape::Int), None) => {}
            (Some(Shape::Prefixed(q)), Some(p)) if **q == *p => {}
            _ => return None,
        }
        usize::try_from(n).ok()
    }

    fn id(&self, n: usize) -> TransferId {
        match &self.shape {
            Some(Shape::Prefixed(p)) => TransferId::from_text(&format!("{p}{n}")),
            _ => TransferId::Int(n as i64),
        }
    }
}

fn signed(x: i128) -> String {
    format!("{x:+}")
}

fn i128_value(x: i128) -> serde_json::Value {
    i64::try_from(x).map_or_else(
        |_| serde_json::Value::from(x.to_string()),
        serde_json::Value::from,
    )
}

#[cfg(test)]
mod record {
    /// Memory grows with one record per transfer: 34 bytes keeps a 100 M-op history
    /// (about 25 M transfers) under 1 GB.
    #[test]
    fn a_transfer_record_is_34_bytes() {
        assert_eq!(std::mem::size_of::<super::Transfer>(), 34);
    }
}

#[cfg(test)]
mod rule {
    use crate::verdict::AnomalyKind;

    /// The models agree with the one rule: the bank and topics models invalidate on
    /// exactly the violations, and the queue model on none that is not one.
    #[test]
    fn the_models_invalidate_on_the_violations() {
        for k in AnomalyKind::ALL {
            assert_eq!(
                super::invalidates(k) || crate::topics::invalidates(k),
                k.is_violation(),
                "{k}"
            );
            assert!(!crate::queue::invalidates(k) || k.is_violation(), "{k}");
        }
    }
}
