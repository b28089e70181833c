//! The topics model: Jepsen's Kafka anomalies, judged from each topic's whole log as the
//! harness read it back at the end of a run (`topic-log` ops, see checkers/README.md,
//! "Extensions") and from the Kafka records the credits say they were read from
//! (`read_from` on `final-ledger` entries).
//!
//! - `duplicate`: one value at two offsets of a committed log of an exactly-once topic
//!   (the value is the source record's position for a derived topic, else the key).
//!   Duplicates in at-least-once topics are expected and only counted
//!   (`stats.redelivered`).
//! - `lost-write`: a record of a derived topic's source that no committed record of it
//!   derives from.
//! - `aborted-read`: a credit read from an offset that the `read_uncommitted` read holds
//!   and the `read_committed` read, below its end, does not: a record of an aborted
//!   transaction.
//! - `inconsistent-offsets`: one offset holding two different records (in two reads or
//!   two lines), or a credit naming an offset that holds another transfer.
//!
//! Every finding invalidates. A log that is incomplete (its `complete` mark never `true`,
//! records at or past its `end_offset`), or a source topic never read, makes the model
//! `unknown` for the checks that need it, with a note; nothing here yields `valid` from
//! part of a log.

use crate::capped::{into_result_maps, FindingMap};
use crate::fxhash::FxHashMap;
use crate::history::{Op, OpType};
use crate::verdict::{AnomalyKind, CheckerResult, Finding, Validity};
use crate::Checker;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The anomaly kinds the topics model reports.
pub const KINDS: [AnomalyKind; 4] = [
    AnomalyKind::AbortedRead,
    AnomalyKind::Duplicate,
    AnomalyKind::InconsistentOffsets,
    AnomalyKind::LostWrite,
];

/// Whether an anomaly breaks the topics model: each of [`KINDS`] does; the other
/// models' kinds are `false`.
pub fn invalidates(kind: AnomalyKind) -> bool {
    KINDS.contains(&kind)
}

/// True for the `f` of the topics model's own op.
pub fn is_topic_log(op: &Op) -> bool {
    op.f == "topic-log"
}

/// Most notes kept; past it they are counted in one last note.
const MAX_NOTES: usize = 24;

/// How a log was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isolation {
    /// Only records of committed transactions, and plain records.
    ReadCommitted,
    /// Every record.
    ReadUncommitted,
}

impl Isolation {
    fn name(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read_committed",
            Isolation::ReadUncommitted => "read_uncommitted",
        }
    }
}

/// One record of a log: the transfer it carries and, for a derived record, its source
/// record's `(partition, offset)`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    key: Box<str>,
    source: Option<(i64, i64)>,
}

impl Rec {
    fn describe(&self) -> String {
        match self.source {
            Some((p, o)) => format!("transfer {} (from {p}@{o})", self.key),
            None => format!("transfer {}", self.key),
        }
    }
}

/// A `topic-log` line, read.
#[derive(Debug, Clone)]
pub struct TopicLogLine {
    topic: String,
    partition: i64,
    isolation: Isolation,
    delivery: Option<String>,
    source: Option<String>,
    feeds: Option<String>,
    records: Vec<(i64, Rec)>,
    complete: Option<bool>,
    end_offset: Option<i64>,
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(40).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

fn key_text(v: &Value) -> Option<Box<str>> {
    match v {
        Value::String(s) => Some(s.as_str().into()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string().into()),
        _ => None,
    }
}

impl TopicLogLine {
    /// Reads a `topic-log` op; `Err` says in words what is wrong with it.
    pub fn from_op(op: &Op) -> Result<TopicLogLine, String> {
        const SHAPE: &str = "{\"topic\": NAME, \"partition\": N, \"isolation\": \
                             \"read_committed\"|\"read_uncommitted\", \"records\": [[OFFSET, KEY], …]}";
        if op.op_type != OpType::Ok {
            return Err(format!(
                "a topic-log op must be an ok line, not {}",
                op.op_type
            ));
        }
        let v: Value = serde_json::from_str(op.value.get())
            .map_err(|e| format!("the topic-log op's value cannot be read: {e}"))?;
        let Value::Object(m) = v else {
            return Err(format!(
                "the topic-log op's value must be an object {SHAPE}, not {}",
                short(&v)
            ));
        };
        let text = |name: &str, required: bool| -> Result<Option<String>, String> {
            match m.get(name) {
                Some(Value::String(s)) => Ok(Some(s.clone())),
                None | Some(Value::Null) if !required => Ok(None),
                None | Some(Value::Null) => Err(format!(
                    "the topic-log op has no \"{name}\" (expected {SHAPE})"
                )),
                Some(other) => Err(format!(
                    "the topic-log op's \"{name}\" must be a string, not {}",
                    short(other)
                )),
            }
        };
        let count = |name: &str, required: bool| -> Result<Option<i64>, String> {
            match m.get(name) {
                Some(Value::Number(n)) if n.as_i64().is_some_and(|n| n >= 0) => Ok(n.as_i64()),
                None | Some(Value::Null) if !required => Ok(None),
                None | Some(Value::Null) => Err(format!(
                    "the topic-log op has no \"{name}\" (expected {SHAPE})"
                )),
                Some(other) => Err(format!(
                    "the topic-log op's \"{name}\" must be an integer ≥ 0, not {}",
                    short(other)
                )),
            }
        };
        let topic = text("topic", true)?.unwrap_or_default();
        let partition = count("partition", true)?.unwrap_or(0);
        let isolation = match text("isolation", true)?.as_deref() {
            Some("read_committed") => Isolation::ReadCommitted,
            Some("read_uncommitted") => Isolation::ReadUncommitted,
            other => {
                return Err(format!(
                    "the topic-log op's \"isolation\" must be \"read_committed\" or \
                     \"read_uncommitted\", not {other:?}"
                ))
            }
        };
        let delivery = text("delivery", false)?;
        if let Some(d) = &delivery {
            if d != "at-least-once" && d != "exactly-once" {
                return Err(format!(
                    "the topic-log op's \"delivery\" must be \"at-least-once\" or \
                     \"exactly-once\", not {d:?}"
                ));
            }
        }
        let complete = match m.get("complete") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                return Err(format!(
                    "the topic-log op's \"complete\" must be true or false, not {}",
                    short(other)
                ))
            }
        };
        let Some(Value::Array(raw)) = m.get("records") else {
            return Err(format!(
                "the topic-log op's \"records\" must be a list of [OFFSET, KEY] or \
                 [OFFSET, KEY, SOURCE_PARTITION, SOURCE_OFFSET], not {}",
                m.get("records").map_or("nothing".to_owned(), short)
            ));
        };
        let mut records = Vec::with_capacity(raw.len());
        for (i, r) in raw.iter().enumerate() {
            let bad = || {
                format!(
                    "the topic-log op's record {i} must be [OFFSET, KEY] or \
                     [OFFSET, KEY, SOURCE_PARTITION, SOURCE_OFFSET] (offsets integers ≥ 0, \
                     KEY a string), not {}",
                    short(r)
                )
            };
            let Value::Array(parts) = r else {
                return Err(bad());
            };
            let num = |v: &Value| v.as_i64().filter(|n| *n >= 0);
            let rec = match parts.as_slice() {
                [o, k] => (num(o), key_text(k), Some(None)),
                [o, k, p, so] => (num(o), key_text(k), num(p).zip(num(so)).map(Some)),
                _ => return Err(bad()),
            };
            match rec {
                (Some(offset), Some(key), Some(source)) => {
                    records.push((offset, Rec { key, source }))
                }
                _ => return Err(bad()),
            }
        }
        Ok(TopicLogLine {
            topic,
            partition,
            isolation,
            delivery,
            source: text("source", false)?,
            feeds: text("feeds", false)?,
            records,
            complete,
            end_offset: count("end_offset", false)?,
        })
    }
}

/// One read of one topic partition at one isolation level, over all its lines.
#[derive(Debug, Default)]
struct Read {
    records: FxHashMap<i64, Rec>,
    ops: Vec<u64>,
    marked: bool,
    closed: bool,
    end_offset: Option<i64>,
    past_end: Option<i64>,
}

impl Read {
    fn first_op(&self) -> u64 {
        self.ops.first().copied().unwrap_or(0)
    }
    fn incomplete(&self) -> Option<String> {
        if self.marked && !self.closed {
            return Some("never got its closing line (\"complete\": true)".to_owned());
        }
        if let (Some(o), Some(end)) = (self.past_end, self.end_offset) {
            return Some(format!("holds offset {o}, at or past its end_offset {end}"));
        }
        None
    }
}

/// What a topic promises, as its lines said.
#[derive(Debug, Default)]
struct TopicInfo {
    delivery: Option<String>,
    source: Option<String>,
    feeds: Option<String>,
}

/// A credit read from a Kafka record.
#[derive(Debug)]
struct CreditRead {
    topic: String,
    partition: i64,
    offset: i64,
    transfer: Box<str>,
    account: String,
    op: u64,
}

#[derive(Deserialize)]
struct LedgerLite {
    #[serde(default)]
    entries: Vec<EntryLite>,
}

#[derive(Deserialize)]
struct EntryLite {
    #[serde(default)]
    transfer: Value,
    #[serde(default)]
    account: Value,
    #[serde(default)]
    amount: Value,
    #[serde(default)]
    read_from: Option<ReadFromLite>,
}

#[derive(Deserialize)]
struct ReadFromLite {
    topic: String,
    partition: i64,
    offset: i64,
}

/// Streaming topics checker. Memory grows with the records of the topic logs and the
/// credits that name a record.
#[derive(Debug, Default)]
pub struct TopicsChecker {
    reads: BTreeMap<(String, i64, Isolation), Read>,
    topics: BTreeMap<String, TopicInfo>,
    credits: Vec<CreditRead>,
    anomalies: FindingMap,
    notes: Vec<String>,
    dropped_notes: usize,
    unknown: bool,
    topic_ops: u64,
    unreadable: u64,
    /// The last drain report's op and backlog, when it said the system did not drain.
    undrained: Option<(u64, String)>,
}

impl TopicsChecker {
    /// An empty checker.
    pub fn new() -> TopicsChecker {
        TopicsChecker::default()
    }

    /// Ops of this model seen (`topic-log` lines).
    pub fn relevant_ops(&self) -> u64 {
        self.topic_ops
    }

    fn note(&mut self, note: String) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(note);
        } else {
            self.dropped_notes += 1;
        }
    }

    fn unknown_because(&mut self, note: String) {
        self.unknown = true;
        self.note(note);
    }

    fn push(&mut self, kind: AnomalyKind, finding: Finding, badness: u128) {
        self.anomalies
            .entry(kind)
            .or_default()
            .push(finding, Some(badness));
    }

    /// Takes the harness's drain report into account (the last one counts): when the
    /// system did not drain, a source record not derived yet may still be on its way, so
    /// it is not a lost write.
    pub fn observe_drain(&mut self, op: u64, drained: bool, backlog: String) {
        self.undrained = (!drained).then_some((op, backlog));
    }

    /// Takes one read `topic-log` line into account.
    pub fn observe_line(&mut self, op: u64, line: TopicLogLine) {
        self.topic_ops += 1;
        let info = self.topics.entry(line.topic.clone()).or_default();
        let mut disagree = Vec::new();
        for (name, mine, theirs) in [
            ("delivery", &mut info.delivery, line.delivery),
            ("source", &mut info.source, line.source),
            ("feeds", &mut info.feeds, line.feeds),
        ] {
            match (mine.as_ref(), theirs) {
                (_, None) => {}
                (None, Some(t)) => *mine = Some(t),
                (Some(m), Some(t)) if *m == t => {}
                (Some(m), Some(t)) => disagree.push(format!("{name} {m:?} and {t:?}")),
            }
        }
        for d in disagree {
            self.unknown_because(format!(
                "topic {}'s lines disagree on its {d} (op {op}): its promises are not judged",
                line.topic
            ));
        }
        let key = (line.topic.clone(), line.partition, line.isolation);
        let read = self.reads.entry(key).or_default();
        read.ops.push(op);
        if let Some(c) = line.complete {
            read.marked = true;
            read.closed |= c;
        }
        if let Some(e) = line.end_offset {
            read.end_offset = Some(read.end_offset.map_or(e, |m: i64| m.max(e)));
        }
        let mut clashes = Vec::new();
        for (offset, rec) in line.records {
            match read.records.get(&offset) {
                Some(old) if *old != rec => clashes.push((offset, old.clone(), rec)),
                Some(_) => {}
                None => {
                    read.records.insert(offset, rec);
                }
            }
        }
        let first = read.first_op();
        for (offset, old, new) in clashes {
            let sentence = format!(
                "Let {t}/{p} be read {iso} (ops {first} and {op}). One line has {a} at offset \
                 {offset}, another {b}: one offset, two records — contradiction.",
                t = line.topic,
                p = line.partition,
                iso = line.isolation.name(),
                a = old.describe(),
                b = new.describe(),
            );
            let f = Finding::new(sentence, vec![first, op])
                .transfer(Value::String(new.key.to_string()))
                .detail("topic", line.topic.clone())
                .detail("partition", line.partition)
                .detail("offset", offset);
            self.push(AnomalyKind::InconsistentOffsets, f, 1);
        }
    }

    fn observe_ledger(&mut self, op: &Op) {
        // Only ledgers whose credits name a record matter here; the substring test keeps
        // the cost off histories without them.
        if !op.value.get().contains("\"read_from\"") {
            return;
        }
        let Ok(ledger) = serde_json::from_str::<LedgerLite>(op.value.get()) else {
            // The bank model reports an unreadable ledger line.
            return;
        };
        for e in ledger.entries {
            let (Some(rf), Some(transfer)) = (e.read_from, key_text(&e.transfer)) else {
                continue;
            };
            if e.amount.as_i64().is_none_or(|a| a <= 0) {
                continue;
            }
            self.credits.push(CreditRead {
                topic: rf.topic,
                partition: rf.partition,
                offset: rf.offset,
                transfer,
                account: e.account.as_str().unwrap_or("?").to_owned(),
                op: op.index,
            });
        }
    }

    /// The committed view of a topic partition: its `read_committed` read, else its
    /// `read_uncommitted` one.
    fn committed(&self, topic: &str, partition: i64) -> Option<&Read> {
        self.reads
            .get(&(topic.to_owned(), partition, Isolation::ReadCommitted))
            .or_else(|| {
                self.reads
                    .get(&(topic.to_owned(), partition, Isolation::ReadUncommitted))
            })
    }

    fn check_incomplete(&mut self) -> BTreeSet<(String, i64)> {
        let mut incomplete = BTreeSet::new();
        let mut notes = Vec::new();
        for ((topic, partition, iso), read) in &mut self.reads {
            if let Some(end) = read.end_offset {
                read.past_end = read.records.keys().copied().filter(|o| *o >= end).max();
            }
            if let Some(why) = read.incomplete() {
                incomplete.insert((topic.clone(), *partition));
                notes.push(format!(
                    "the {} read of {topic}/{partition} (op {}) {why}: the log is incomplete, \
                     so what it lacks is not judged",
                    iso.name(),
                    read.first_op()
                ));
            }
        }
        for n in notes {
            self.unknown_because(n);
        }
        incomplete
    }

    fn check_inconsistent_reads(&mut self) {
        let mut found = Vec::new();
        for ((topic, partition, iso), read) in &self.reads {
            if *iso != Isolation::ReadCommitted {
                continue;
            }
            let key = (topic.clone(), *partition, Isolation::ReadUncommitted);
            let Some(other) = self.reads.get(&key) else {
                continue;
            };
            let mut offsets: Vec<&i64> = read.records.keys().collect();
            offsets.sort_unstable();
            for o in offsets {
                let (a, b) = (&read.records[o], other.records.get(o));
                if let Some(b) = b.filter(|b| *b != a) {
                    let sentence = format!(
                        "Let {topic}/{partition} be read read_committed (op {}) and \
                         read_uncommitted (op {}). The first has {} at offset {o}, the second \
                         {}: a committed record is the same at every isolation level — \
                         contradiction.",
                        read.first_op(),
                        other.first_op(),
                        a.describe(),
                        b.describe()
                    );
                    found.push(
                        Finding::new(sentence, vec![read.first_op(), other.first_op()])
                            .transfer(Value::String(a.key.to_string()))
                            .detail("topic", topic.clone())
                            .detail("partition", *partition)
                            .detail("offset", *o),
                    );
                }
            }
        }
        for f in found {
            self.push(AnomalyKind::InconsistentOffsets, f, 1);
        }
    }

    fn check_duplicates(&mut self, stats: &mut BTreeMap<String, u64>) {
        let mut found = Vec::new();
        let mut redelivered = 0u64;
        let partitions: BTreeSet<(String, i64)> =
            self.reads.keys().map(|(t, p, _)| (t.clone(), *p)).collect();
        for (topic, partition) in partitions {
            let Some(read) = self.committed(&topic, partition) else {
                continue;
            };
            let info = self.topics.get(&topic);
            let exactly_once = info.and_then(|i| i.delivery.as_deref()) == Some("exactly-once");
            let derived = info.and_then(|i| i.source.clone());
            // value → offsets holding it
            let mut by_value: FxHashMap<String, Vec<i64>> = FxHashMap::default();
            for (o, rec) in &read.records {
                let value = match (&derived, rec.source) {
                    (Some(_), Some((p, so))) => format!("{p}@{so}"),
                    _ => format!("key {}", rec.key),
                };
                by_value.entry(value).or_default().push(*o);
            }
            let mut dups: Vec<(String, Vec<i64>)> =
                by_value.into_iter().filter(|(_, o)| o.len() > 1).collect();
            for (_, offsets) in &mut dups {
                offsets.sort_unstable();
            }
            dups.sort_by_key(|(_, o)| o[0]);
            for (value, offsets) in dups {
                let n = offsets.len() as u64;
                if !exactly_once {
                    redelivered += n - 1;
                    continue;
                }
                let rec = &read.records[&offsets[0]];
                let shown: Vec<String> = offsets.iter().take(8).map(i64::to_string).collect();
                let more = if offsets.len() > 8 {
                    format!(" and {} more", offsets.len() - 8)
                } else {
                    String::new()
                };
                let what = match (&derived, rec.source) {
                    (Some(s), Some((p, so))) => format!(
                        "all derived from {s}/{p}@{so} (transfer {}). {topic} is exactly-once \
                         from {s}, so each source record is published once",
                        rec.key
                    ),
                    _ => format!(
                        "all carrying transfer {}. {topic} is exactly-once, so each value is \
                         written once",
                        rec.key
                    ),
                };
                let sentence = format!(
                    "Let {topic}/{partition} (op {op}) hold offsets {list}{more}, {what}: {n} \
                     copies — contradiction.",
                    op = read.first_op(),
                    list = shown.join(", "),
                );
                found.push((
                    Finding::new(sentence, vec![read.first_op()])
                        .transfer(Value::String(rec.key.to_string()))
                        .detail("topic", topic.clone())
                        .detail("partition", partition)
                        .detail("offsets", offsets.clone())
                        .detail("value", value)
                        .detail("count", n),
                    u128::from(n),
                ));
            }
        }
        for (f, n) in found {
            self.push(AnomalyKind::Duplicate, f, n);
        }
        stats.insert("redelivered".to_owned(), redelivered);
    }

    fn check_lost_writes(&mut self, incomplete: &BTreeSet<(String, i64)>) {
        let mut found = Vec::new();
        let mut notes = Vec::new();
        let derived: Vec<(String, String)> = self
            .topics
            .iter()
            .filter_map(|(t, i)| i.source.clone().map(|s| (t.clone(), s)))
            .collect();
        for (topic, source) in derived {
            let mine: Vec<i64> = self
                .reads
                .keys()
                .filter(|(t, _, _)| *t == topic)
                .map(|(_, p, _)| *p)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let theirs: Vec<i64> = self
                .reads
                .keys()
                .filter(|(t, _, _)| *t == source)
                .map(|(_, p, _)| *p)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if theirs.is_empty() {
                notes.push(format!(
                    "{topic} is derived from {source}, whose log is not in the history: its \
                     lost writes are not judged"
                ));
                continue;
            }
            let gaps: Vec<String> = mine
                .iter()
                .map(|p| (topic.clone(), *p))
                .chain(theirs.iter().map(|p| (source.clone(), *p)))
                .filter(|tp| incomplete.contains(tp))
                .map(|(t, p)| format!("{t}/{p}"))
                .collect();
            if !gaps.is_empty() {
                notes.push(format!(
                    "{topic}'s lost writes from {source} are not judged: {} incomplete",
                    gaps.join(", ")
                ));
                continue;
            }
            // A committed read that ended before the uncommitted one (a transaction still
            // open) leaves the records past its end undecided.
            let open: Vec<String> = mine
                .iter()
                .filter_map(|p| {
                    let c = self
                        .reads
                        .get(&(topic.clone(), *p, Isolation::ReadCommitted))?;
                    let u = self
                        .reads
                        .get(&(topic.clone(), *p, Isolation::ReadUncommitted))?;
                    (c.end_offset? < u.end_offset?).then(|| {
                        format!(
                            "{topic}/{p} (committed to {:?}, written to {:?})",
                            c.end_offset, u.end_offset
                        )
                    })
                })
                .collect();
            if !open.is_empty() {
                notes.push(format!(
                    "{topic}'s lost writes from {source} are not judged: a transaction was still \
                     open when {} was read",
                    open.join(", ")
                ));
                continue;
            }
            // What the derived topic's committed records derive from, and their keys.
            let mut positions: BTreeSet<(i64, i64)> = BTreeSet::new();
            let mut keys: BTreeSet<&str> = BTreeSet::new();
            let mut first_op = 0;
            for p in &mine {
                if let Some(read) = self.committed(&topic, *p) {
                    first_op = read.first_op();
                    for rec in read.records.values() {
                        if let Some(pos) = rec.source {
                            positions.insert(pos);
                        }
                        keys.insert(&rec.key);
                    }
                }
            }
            let by_position = !positions.is_empty();
            for p in &theirs {
                let Some(read) = self.committed(&source, *p) else {
                    continue;
                };
                let mut offsets: Vec<(&i64, &Rec)> = read.records.iter().collect();
                offsets.sort_unstable_by_key(|(o, _)| **o);
                for (o, rec) in offsets {
                    let there = if by_position {
                        positions.contains(&(*p, *o))
                    } else {
                        keys.contains(&*rec.key)
                    };
                    if there {
                        continue;
                    }
                    let sentence = format!(
                        "Let {source}/{p}@{o} hold transfer {key} (op {sop}), committed. \
                         {topic} derives its records from {source}, yet none of its committed \
                         records (op {first_op}) {how}: the write was lost between the two \
                         topics.",
                        key = rec.key,
                        sop = read.first_op(),
                        how = if by_position {
                            format!("derives from {p}@{o}")
                        } else {
                            format!("carries transfer {}", rec.key)
                        },
                    );
                    found.push(
                        Finding::new(sentence, vec![read.first_op(), first_op])
                            .transfer(Value::String(rec.key.to_string()))
                            .detail("topic", topic.clone())
                            .detail("source", source.clone())
                            .detail("partition", *p)
                            .detail("offset", *o),
                    );
                }
            }
        }
        for n in notes {
            self.unknown_because(n);
        }
        if let Some((op, backlog)) = self.undrained.clone() {
            if !found.is_empty() {
                self.unknown_because(format!(
                    "{} source records have nothing derived from them yet, but the system did not drain (op {op}; backlog: {backlog}), so they may still be on their way: not judged as lost writes",
                    found.len()
                ));
            }
            return;
        }
        for f in found {
            self.push(AnomalyKind::LostWrite, f, 1);
        }
    }

    fn check_credits(&mut self, stats: &mut BTreeMap<String, u64>) {
        let (mut checked, mut unchecked, mut undecided) = (0u64, 0u64, 0u64);
        let mut found = Vec::new();
        let mut notes = Vec::new();
        let credits = std::mem::take(&mut self.credits);
        for c in &credits {
            let rc = (c.topic.clone(), c.partition, Isolation::ReadCommitted);
            let ru = (c.topic.clone(), c.partition, Isolation::ReadUncommitted);
            let (committed, uncommitted) = (self.reads.get(&rc), self.reads.get(&ru));
            // The record the credit names must carry its transfer, in any read that holds it.
            for read in [committed, uncommitted].into_iter().flatten() {
                if let Some(rec) = read.records.get(&c.offset) {
                    if rec.key != c.transfer {
                        let sentence = format!(
                            "Transfer {t} was credited to {a} from {tp}/{p}@{o} (ledger op \
                             {op}), but that offset holds {other} in the log (op {lop}): a \
                             credit read from a record that is not there — contradiction.",
                            t = c.transfer,
                            a = c.account,
                            tp = c.topic,
                            p = c.partition,
                            o = c.offset,
                            op = c.op,
                            other = rec.describe(),
                            lop = read.first_op(),
                        );
                        found.push((
                            AnomalyKind::InconsistentOffsets,
                            Finding::new(sentence, vec![c.op, read.first_op()])
                                .transfer(Value::String(c.transfer.to_string()))
                                .account(&c.account)
                                .detail("topic", c.topic.clone())
                                .detail("partition", c.partition)
                                .detail("offset", c.offset),
                        ));
                        break;
                    }
                }
            }
            let (Some(committed), Some(uncommitted)) = (committed, uncommitted) else {
                unchecked += 1;
                continue;
            };
            if committed.incomplete().is_some() || uncommitted.incomplete().is_some() {
                unchecked += 1;
                continue;
            }
            checked += 1;
            if committed.records.contains_key(&c.offset) {
                continue;
            }
            if committed.end_offset.is_some_and(|end| c.offset >= end) {
                undecided += 1;
                continue;
            }
            match uncommitted.records.get(&c.offset) {
                Some(rec) if rec.key == c.transfer => {
                    let end = committed
                        .end_offset
                        .map_or(String::new(), |e| format!(", to offset {e}"));
                    let sentence = format!(
                        "Transfer {t} was credited to {a} from {tp}/{p}@{o} (ledger op {op}). \
                         The read_committed read of {tp}/{p} (op {cop}{end}) has no record at \
                         {o}; the read_uncommitted one (op {uop}) has transfer {t} there: the \
                         credit was read from a transaction that aborted.",
                        t = c.transfer,
                        a = c.account,
                        tp = c.topic,
                        p = c.partition,
                        o = c.offset,
                        op = c.op,
                        cop = committed.first_op(),
                        uop = uncommitted.first_op(),
                    );
                    found.push((
                        AnomalyKind::AbortedRead,
                        Finding::new(
                            sentence,
                            vec![c.op, committed.first_op(), uncommitted.first_op()],
                        )
                        .transfer(Value::String(c.transfer.to_string()))
                        .account(&c.account)
                        .detail("topic", c.topic.clone())
                        .detail("partition", c.partition)
                        .detail("offset", c.offset),
                    ));
                }
                Some(_) => {} // reported above as inconsistent
                None => notes.push(format!(
                    "transfer {} was credited from {}/{}@{} (ledger op {}), an offset neither \
                     read of the log holds: it cannot be told whether that record committed",
                    c.transfer, c.topic, c.partition, c.offset, c.op
                )),
            }
        }
        if undecided > 0 {
            notes.push(format!(
                "{undecided} credits were read from offsets past the read_committed read's \
                 end (a transaction not yet decided when the log was read): not judged"
            ));
        }
        for n in notes {
            self.unknown_because(n);
        }
        for (kind, f) in found {
            self.push(kind, f, 1);
        }
        stats.insert("credits-checked-for-aborted-reads".to_owned(), checked);
        stats.insert("credits-not-checked".to_owned(), unchecked);
    }
}

impl Checker for TopicsChecker {
    fn observe(&mut self, op: &Op) {
        if is_topic_log(op) {
            match TopicLogLine::from_op(op) {
                Ok(line) => self.observe_line(op.index, line),
                Err(e) => {
                    self.topic_ops += 1;
                    self.unreadable += 1;
                    self.unknown_because(format!("op {}: {e}", op.index));
                }
            }
        } else if op.f == "final-ledger" && op.op_type == OpType::Ok {
            self.observe_ledger(op);
        }
    }

    fn finish(mut self) -> CheckerResult {
        let mut stats = BTreeMap::new();
        stats.insert("topic-log-ops".to_owned(), self.topic_ops);
        stats.insert(
            "topic-partitions".to_owned(),
            self.reads
                .keys()
                .map(|(t, p, _)| (t, p))
                .collect::<BTreeSet<_>>()
                .len() as u64,
        );
        stats.insert(
            "records".to_owned(),
            self.reads.values().map(|r| r.records.len() as u64).sum(),
        );
        if self.unreadable > 0 {
            stats.insert("unreadable-ops".to_owned(), self.unreadable);
        }
        let incomplete = self.check_incomplete();
        self.check_inconsistent_reads();
        self.check_duplicates(&mut stats);
        self.check_lost_writes(&incomplete);
        self.check_credits(&mut stats);
        if self.dropped_notes > 0 {
            let n = self.dropped_notes;
            self.notes.push(format!("… and {n} more notes not kept"));
        }
        let (anomalies, counts) = into_result_maps(self.anomalies);
        let valid = if !anomalies.is_empty() {
            Validity::Invalid
        } else if self.unknown {
            Validity::Unknown
        } else {
            Validity::Valid
        };
        CheckerResult {
            model: "topics".to_owned(),
            valid,
            anomalies,
            counts,
            stats,
            notes: self.notes,
        }
    }
}
