//! One streaming pass over a history that keeps only what the report draws: time
//! buckets of throughput and latency, a lane grid, up to [`MAX_BARS`] individual ops,
//! the fault windows, debit→credit commit latencies, and the few ops and ledger
//! entries the verdict's findings name. Memory does not grow with the number of ops
//! beyond the open invokes and the unmatched half of the ledger pairs.

use super::faults::Faults;
use super::series::{Buckets, Hist, Merge};
use checkers::history::{Op, OpType, Process};
use serde::Deserialize;
use serde_json::Value;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// Ops drawn one by one; past this the timeline shows a grid of counts instead.
pub(crate) const MAX_BARS: usize = 2_500;
/// Lanes drawn; later processes share a last lane, `other`.
pub(crate) const MAX_LANES: usize = 40;
/// Never-completed invokes drawn.
const MAX_OPEN_DRAWN: usize = 200;
/// Distinct `f` names counted.
const MAX_FS: usize = 30;
/// Ops kept for the findings' slices.
const MAX_SLICE_OPS: usize = 2_000;
/// Characters of an op's value shown in a slice.
const VALUE_CHARS: usize = 240;

/// Index of an op's completion type in count arrays: ok, fail, info.
pub(crate) fn kind_index(t: OpType) -> usize {
    match t {
        OpType::Ok => 0,
        OpType::Fail => 1,
        OpType::Info | OpType::Invoke => 2,
    }
}

/// One time bucket: completions by type, latencies of ops invoked in it, and
/// completions per lane.
#[derive(Debug, Default)]
pub(crate) struct Cell {
    /// Completions ok, fail, info.
    pub(crate) done: [u64; 3],
    /// Invoke→completion latencies of ops invoked in this bucket.
    pub(crate) latency: Hist,
    /// Completions per lane (ok, fail, info), by lane number.
    pub(crate) lanes: Vec<[u32; 3]>,
}

impl Merge for Cell {
    fn merge(&mut self, other: Self) {
        for k in 0..3 {
            self.done[k] += other.done[k];
        }
        self.latency.merge(other.latency);
        if self.lanes.len() < other.lanes.len() {
            self.lanes.resize(other.lanes.len(), [0; 3]);
        }
        for (a, b) in self.lanes.iter_mut().zip(other.lanes) {
            for k in 0..3 {
                a[k] = a[k].saturating_add(b[k]);
            }
        }
    }
}

/// One op drawn as a bar from its invoke to its completion.
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    /// Its lane.
    pub(crate) lane: usize,
    /// Invoke time.
    pub(crate) start: u64,
    /// Completion time (the history's end for a never-completed invoke).
    pub(crate) end: u64,
    /// `ok`, `fail`, `info`, or `invoke` for one never completed.
    pub(crate) kind: OpType,
    /// Index of the invoke.
    pub(crate) invoke: u64,
    /// Index of the completion.
    pub(crate) index: Option<u64>,
    /// Its process.
    pub(crate) process: u64,
    /// Its `f`.
    pub(crate) f: String,
}

/// Client processes to lanes: a process keeps its lane while the lane is free when it
/// invokes again; a new process takes the free lane idle the longest (so a crashed
/// process's lane is reused, a busy one's is not).
#[derive(Debug, Default)]
pub(crate) struct Lanes {
    of: HashMap<u64, usize>,
    owner: Vec<Option<u64>>,
    end: Vec<u64>,
    /// The first processes of each lane (for labels), and how many there were.
    pub(crate) procs: Vec<(Vec<u64>, u64)>,
    /// Ops that fell into the shared last lane.
    pub(crate) overflow: u64,
}

impl Lanes {
    fn place(&mut self, p: u64, start: u64, end: u64, last: bool) -> usize {
        let mine = self
            .of
            .get(&p)
            .copied()
            .filter(|&l| self.owner[l] == Some(p) && self.end[l] <= start);
        let lane = match mine {
            Some(l) => l,
            None => {
                let idle = (0..self.end.len())
                    .filter(|&i| self.end[i] <= start)
                    .min_by_key(|&i| (self.end[i], i));
                let l = match idle {
                    Some(l) => l,
                    None if self.end.len() < MAX_LANES => {
                        self.end.push(0);
                        self.owner.push(None);
                        self.procs.push((Vec::new(), 0));
                        self.end.len() - 1
                    }
                    None => MAX_LANES,
                };
                if l < MAX_LANES {
                    if let Some(old) = self.owner[l].replace(p) {
                        self.of.remove(&old);
                    }
                    self.of.insert(p, l);
                    let (list, n) = &mut self.procs[l];
                    if list.len() < 6 {
                        list.push(p);
                    }
                    *n += 1;
                }
                l
            }
        };
        if lane < MAX_LANES {
            self.end[lane] = self.end[lane].max(end);
            if last {
                self.of.remove(&p);
                self.owner[lane] = None;
            }
        } else {
            self.overflow += 1;
        }
        lane
    }

    /// Lanes in use, counting the shared last lane if any op fell into it.
    pub(crate) fn count(&self) -> usize {
        self.end.len() + usize::from(self.overflow > 0)
    }
}

/// An op of a finding's slice, ready to print.
#[derive(Debug, Clone)]
pub(crate) struct OpLine {
    /// Its index.
    pub(crate) index: u64,
    /// Its time.
    pub(crate) time: u64,
    /// Its process.
    pub(crate) process: String,
    /// Its type.
    pub(crate) op_type: OpType,
    /// Its `f`.
    pub(crate) f: String,
    /// Its value, cut to a few hundred characters.
    pub(crate) value: String,
    /// Its error, if any.
    pub(crate) error: Option<String>,
}

/// A ledger entry of a transfer a finding names, with its commit time if recorded.
#[derive(Debug, Clone)]
pub(crate) struct EntryLine {
    /// Index of the `final-ledger` op.
    pub(crate) op: u64,
    /// The bank.
    pub(crate) bank: String,
    /// The account.
    pub(crate) account: String,
    /// Signed amount.
    pub(crate) amount: i64,
    /// Commit time, ns since the run started.
    pub(crate) time: Option<u64>,
}

/// A record of a topic log (a `topic-log` op) carrying a transfer a finding names.
#[derive(Debug, Clone)]
pub(crate) struct TopicLine {
    /// The topic.
    pub(crate) topic: String,
    /// Its offset (partition 0).
    pub(crate) offset: i64,
    /// The WAL position of the change it was made from (a CDC record), `X/Y`.
    pub(crate) lsn: Option<String>,
}

/// When a transfer a finding names was in flight.
#[derive(Debug, Clone, Default)]
pub(crate) struct Span {
    /// Its first op's time.
    pub(crate) first: Option<u64>,
    /// Its last client op's or ledger commit's time.
    pub(crate) last: Option<u64>,
    /// True when it never completed or ended `info` (its effect may come any time).
    pub(crate) open: bool,
}

/// What the findings shown in detail need from the history.
#[derive(Debug, Default)]
pub(crate) struct Wanted {
    /// Op indexes.
    pub(crate) indexes: HashSet<u64>,
    /// Transfer ids as JSON text.
    pub(crate) ids: HashSet<String>,
    /// Ops whose time and process the faults that matter need (every op a kept
    /// violation finding names).
    pub(crate) facts: HashSet<u64>,
}

/// Debit→credit commit latencies from ledger entries that carry a commit time.
#[derive(Debug, Default)]
pub(crate) struct Commits {
    half: HashMap<u64, (bool, u64)>,
    /// credit time − debit time per transfer with both.
    pub(crate) hist: Hist,
    /// Transfers whose credit committed before their debit.
    pub(crate) credit_first: u64,
    /// Entries with a commit time, and without.
    pub(crate) timed: u64,
    /// Entries without a commit time.
    pub(crate) untimed: u64,
    /// The field names the times came from.
    pub(crate) fields: Vec<&'static str>,
}

#[derive(Deserialize)]
struct RawEntry {
    transfer: Option<Value>,
    account: Option<Value>,
    amount: Option<i64>,
    time: Option<Value>,
    committed_at: Option<Value>,
    commit_time: Option<Value>,
}

impl RawEntry {
    fn commit_time(&self) -> Option<(u64, &'static str)> {
        [
            (&self.committed_at, "committed_at"),
            (&self.commit_time, "commit_time"),
            (&self.time, "time"),
        ]
        .into_iter()
        .find_map(|(v, name)| v.as_ref().and_then(Value::as_u64).map(|t| (t, name)))
    }
}

#[derive(Deserialize)]
struct RawLedger {
    bank: Option<Value>,
    #[serde(default)]
    entries: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawTopicLog {
    topic: Option<String>,
    isolation: Option<String>,
    #[serde(default)]
    records: Vec<Value>,
    #[serde(default)]
    lsns: Vec<(i64, String)>,
}

#[derive(Deserialize)]
struct RawTransfer {
    id: Option<Value>,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn hash_of(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n).collect::<String>() + "…"
    }
}

/// The report's data, built from one pass over the history.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Ops read.
    pub(crate) ops: u64,
    /// True when some op carried a time (else times are op indexes).
    pub(crate) timed: bool,
    /// The last time seen.
    pub(crate) last_time: u64,
    /// Time of the first `final` op (the end of the client phase), if any.
    pub(crate) final_time: Option<u64>,
    /// Time buckets.
    pub(crate) series: Buckets<Cell>,
    /// Client lanes.
    pub(crate) lanes: Lanes,
    /// Ops drawn one by one, or `None` once there were more than [`MAX_BARS`].
    pub(crate) bars: Option<Vec<Bar>>,
    /// Client completions seen.
    pub(crate) completions: u64,
    /// Invokes never completed, up to a few hundred (lane `usize::MAX`).
    pub(crate) open: Vec<Bar>,
    /// Invokes never completed, all of them.
    pub(crate) open_count: u64,
    /// Fault windows.
    pub(crate) faults: Faults,
    /// Per `f`: ok, fail, info, never completed.
    pub(crate) by_f: BTreeMap<String, [u64; 4]>,
    /// Commit latencies.
    pub(crate) commits: Commits,
    /// Ops of the findings' slices, by index.
    pub(crate) slice_ops: BTreeMap<u64, OpLine>,
    /// Ops of each wanted transfer, by id text.
    pub(crate) transfer_ops: HashMap<String, Vec<u64>>,
    /// Ledger entries of each wanted transfer.
    pub(crate) transfer_entries: HashMap<String, Vec<EntryLine>>,
    /// Records of each wanted transfer in the topic logs (committed reads).
    pub(crate) transfer_records: HashMap<String, Vec<TopicLine>>,
    /// The topics whose logs the history holds, and whether any record carried a WAL
    /// position.
    pub(crate) topic_logs: BTreeMap<String, bool>,
    /// When each wanted transfer was in flight.
    pub(crate) spans: HashMap<String, Span>,
    /// The [`Wanted::facts`] ops: their time (as drawn: the op's index in a history
    /// without times) and whether a client performed it.
    pub(crate) op_facts: HashMap<u64, crate::conviction::OpFacts>,
    wanted: Wanted,
    pending: HashMap<u64, (u64, u64, String, Option<String>)>,
}

impl Scan {
    /// A scan that keeps the slices `wanted` names.
    pub(crate) fn new(wanted: Wanted) -> Scan {
        Scan {
            ops: 0,
            timed: false,
            last_time: 0,
            final_time: None,
            series: Buckets::new(),
            lanes: Lanes::default(),
            bars: Some(Vec::new()),
            completions: 0,
            open: Vec::new(),
            open_count: 0,
            faults: Faults::default(),
            by_f: BTreeMap::new(),
            commits: Commits::default(),
            slice_ops: BTreeMap::new(),
            transfer_ops: HashMap::new(),
            transfer_entries: HashMap::new(),
            transfer_records: HashMap::new(),
            topic_logs: BTreeMap::new(),
            spans: HashMap::new(),
            op_facts: HashMap::new(),
            wanted,
            pending: HashMap::new(),
        }
    }

    fn count_f(&mut self, f: &str, k: usize) {
        if let Some(c) = self.by_f.get_mut(f) {
            c[k] += 1;
        } else if self.by_f.len() < MAX_FS {
            let mut c = [0; 4];
            c[k] = 1;
            self.by_f.insert(f.to_owned(), c);
        }
    }

    fn keep_line(&mut self, op: &Op, t: u64) {
        if self.slice_ops.len() >= MAX_SLICE_OPS || self.slice_ops.contains_key(&op.index) {
            return;
        }
        self.slice_ops.insert(
            op.index,
            OpLine {
                index: op.index,
                time: t,
                process: op.process.to_string(),
                op_type: op.op_type,
                f: op.f.clone(),
                value: if op.f == "final-ledger" {
                    "(a bank's final ledger: its entries for this finding are listed below)"
                        .to_owned()
                } else {
                    cut(op.value.get(), VALUE_CHARS)
                },
                error: op.error.as_ref().map(|e| cut(e.get(), VALUE_CHARS)),
            },
        );
    }

    /// Takes one op into account.
    pub(crate) fn observe(&mut self, op: &Op) {
        self.ops += 1;
        let t = match op.time {
            Some(t) => {
                self.timed = true;
                t
            }
            None if self.timed => self.last_time,
            None => op.index,
        };
        self.last_time = self.last_time.max(t);
        if self.wanted.indexes.contains(&op.index) {
            self.keep_line(op, t);
        }
        if self.wanted.facts.contains(&op.index) {
            let client = matches!(op.process, Process::Client(_));
            self.op_facts.insert(op.index, (Some(t), client));
        }
        match &op.process {
            // The connector supervisor's ops are events of the same timeline.
            Process::Named(name) if name == "nemesis" || name == "connect-supervisor" => {
                if op.op_type.is_completion() {
                    let v: Value = op.value_as().unwrap_or(Value::Null);
                    self.faults
                        .observe(&op.f, &v, op.error.is_some(), t, op.index);
                }
            }
            Process::Named(name) if name == "final" => {
                self.final_time.get_or_insert(t);
                if op.f == "final-ledger" {
                    self.ledger(op);
                } else if op.f == "topic-log" {
                    self.topic_log(op);
                }
            }
            Process::Named(_) => {}
            Process::Client(p) => self.client(*p, op, t),
        }
    }

    fn client(&mut self, p: u64, op: &Op, t: u64) {
        let id = if op.f == "transfer" && !self.wanted.ids.is_empty() {
            op.value_as::<RawTransfer>()
                .ok()
                .and_then(|r| r.id)
                .map(|v| v.to_string())
                .filter(|id| self.wanted.ids.contains(id))
        } else {
            None
        };
        if let Some(id) = &id {
            self.transfer_ops
                .entry(id.clone())
                .or_default()
                .push(op.index);
            let span = self.spans.entry(id.clone()).or_default();
            span.first.get_or_insert(t);
            span.last = Some(span.last.map_or(t, |l| l.max(t)));
            span.open = matches!(op.op_type, OpType::Invoke | OpType::Info);
            self.keep_line(op, t);
        }
        if op.op_type == OpType::Invoke {
            self.pending.insert(p, (op.index, t, op.f.clone(), id));
            return;
        }
        let k = kind_index(op.op_type);
        self.count_f(&op.f, k);
        self.completions += 1;
        self.series.at(t).done[k] += 1;
        let Some((invoke, start, _, _)) = self.pending.remove(&p) else {
            return;
        };
        let start = start.min(t);
        self.series.at(start).latency.add(t - start);
        let lane = self.lanes.place(p, start, t, op.op_type == OpType::Info);
        let mid = start + (t - start) / 2;
        let cell = self.series.at(mid);
        if cell.lanes.len() <= lane {
            cell.lanes.resize(lane + 1, [0; 3]);
        }
        cell.lanes[lane][k] = cell.lanes[lane][k].saturating_add(1);
        let over = self.completions as usize > MAX_BARS;
        if over {
            self.bars = None;
        } else if let Some(bars) = &mut self.bars {
            bars.push(Bar {
                lane,
                start,
                end: t,
                kind: op.op_type,
                invoke,
                index: Some(op.index),
                process: p,
                f: cut(&op.f, 24),
            });
        }
    }

    /// Keeps the records of wanted transfers from a committed read of a topic, with
    /// their WAL positions when the line lists them (`lsns`).
    fn topic_log(&mut self, op: &Op) {
        let Ok(l) = op.value_as::<RawTopicLog>() else {
            return;
        };
        if l.isolation.as_deref() == Some("read_uncommitted") {
            return;
        }
        let topic = l.topic.unwrap_or_default();
        let has_lsns = self.topic_logs.entry(topic.clone()).or_default();
        *has_lsns |= !l.lsns.is_empty();
        if self.wanted.ids.is_empty() {
            return;
        }
        let lsns: HashMap<i64, String> = l.lsns.into_iter().collect();
        for r in &l.records {
            let (Some(offset), Some(key)) = (
                r.get(0).and_then(Value::as_i64),
                r.get(1).and_then(Value::as_str),
            ) else {
                continue;
            };
            // Ids are kept as JSON text: `17` for a number, `"t-17"` for a string.
            let quoted = Value::String(key.to_owned()).to_string();
            let Some(id) = [key.to_owned(), quoted]
                .into_iter()
                .find(|id| self.wanted.ids.contains(id))
            else {
                continue;
            };
            let list = self.transfer_records.entry(id).or_default();
            if list.len() < 20 {
                list.push(TopicLine {
                    topic: topic.clone(),
                    offset,
                    lsn: lsns.get(&offset).cloned(),
                });
            }
        }
    }

    fn ledger(&mut self, op: &Op) {
        let Ok(l) = op.value_as::<RawLedger>() else {
            return;
        };
        let bank = l.bank.as_ref().map(text).unwrap_or_default();
        for e in &l.entries {
            let Some(id) = e.transfer.as_ref().map(Value::to_string) else {
                continue;
            };
            let time = e.commit_time();
            match time {
                Some((time, field)) => {
                    self.commits.timed += 1;
                    if !self.commits.fields.contains(&field) {
                        self.commits.fields.push(field);
                    }
                    if let Some(amount) = e.amount {
                        self.pair(&id, amount < 0, time);
                    }
                }
                None => self.commits.untimed += 1,
            }
            if self.wanted.ids.contains(&id) {
                let list = self.transfer_entries.entry(id.clone()).or_default();
                if list.len() < 20 {
                    list.push(EntryLine {
                        op: op.index,
                        bank: bank.clone(),
                        account: e.account.as_ref().map(text).unwrap_or_default(),
                        amount: e.amount.unwrap_or(0),
                        time: time.map(|(t, _)| t),
                    });
                }
                if let (Some((ct, _)), Some(span)) = (time, self.spans.get_mut(&id)) {
                    span.last = Some(span.last.map_or(ct, |l| l.max(ct)));
                }
            }
        }
    }

    fn pair(&mut self, id: &str, debit: bool, time: u64) {
        let key = hash_of(id);
        match self.commits.half.get(&key) {
            Some(&(was_debit, other)) if was_debit != debit => {
                self.commits.half.remove(&key);
                let (d, c) = if debit { (time, other) } else { (other, time) };
                if c < d {
                    self.commits.credit_first += 1;
                }
                self.commits.hist.add(c.saturating_sub(d));
            }
            Some(_) => {}
            None => {
                self.commits.half.insert(key, (debit, time));
            }
        }
    }

    /// Ends the pass: invokes still open are counted and the first few drawn.
    pub(crate) fn finish(&mut self) {
        let end = self.final_time.unwrap_or(self.last_time);
        let mut open: Vec<_> = self.pending.drain().collect();
        open.sort_by_key(|(_, (i, ..))| *i);
        self.open_count = open.len() as u64;
        // Drawn: an even sample across the run.
        let step = open.len().div_ceil(MAX_OPEN_DRAWN).max(1);
        for (i, (p, (invoke, start, f, _))) in open.into_iter().enumerate() {
            if let Some(c) = self.by_f.get_mut(&f) {
                c[3] += 1;
            } else if self.by_f.len() < MAX_FS {
                self.by_f.insert(f.clone(), [0, 0, 0, 1]);
            }
            if i % step == 0 {
                self.open.push(Bar {
                    lane: usize::MAX,
                    start,
                    end: end.max(start),
                    kind: OpType::Invoke,
                    invoke,
                    index: None,
                    process: p,
                    f: cut(&f, 24),
                });
            }
        }
        for span in self.spans.values_mut() {
            if span.open {
                span.last = Some(end);
            }
        }
    }
}
