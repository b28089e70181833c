//! The history format of `docs/history.md`: operations, a streaming reader and a
//! writer.
//!
//! A history is JSON Lines, one [`Op`] a line. [`HistoryReader`] turns any [`BufRead`]
//! into an iterator of ops without holding more than one line in memory;
//! [`HistoryWriter`] is what a recorder uses to append ops, one flushed line each.
//! [`Sequencer`] checks the process rules (one open invoke per client process,
//! completions match an invoke) that no single line can show.

use crate::fxhash::FxHashMap;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;
use std::io::{self, BufRead, Write};
use std::time::Instant;

/// Why a history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A line that is not a valid operation, or an op that breaks the process rules.
    #[error("line {line}: {message}")]
    Malformed {
        /// 1-based line number in the file.
        line: u64,
        /// What is wrong, in words.
        message: String,
    },
    /// The underlying reader failed.
    #[error("line {line}: cannot read: {source}")]
    Read {
        /// The line being read when it failed.
        line: u64,
        /// The I/O error.
        source: io::Error,
    },
    /// The underlying writer failed.
    #[error("cannot write op {index}: {source}")]
    Write {
        /// Index of the op that was being written.
        index: u64,
        /// The I/O error.
        source: io::Error,
    },
    /// An op value could not be turned into JSON.
    #[error("cannot encode value: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Who performed an op: a client process number or a named actor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Process {
    /// A client process (`0`, `1`, …). After an `info` completion it is never reused.
    Client(u64),
    /// A named actor such as `"nemesis"`, `"setup"` or `"final"`; may emit single
    /// `ok`/`info` lines without an invoke.
    Named(String),
}

impl Process {
    /// The `setup` actor, which writes `init`.
    pub fn setup() -> Self {
        Process::Named("setup".into())
    }
    /// The `final` actor, which writes `final-ledger` and `dead-letter`.
    pub fn final_actor() -> Self {
        Process::Named("final".into())
    }
    /// The `nemesis` actor, which writes fault ops.
    pub fn nemesis() -> Self {
        Process::Named("nemesis".into())
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(n) => write!(f, "{n}"),
            Process::Named(s) => f.write_str(s),
        }
    }
}

impl Serialize for Process {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(n) => s.serialize_u64(*n),
            Process::Named(name) => s.serialize_str(name),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Process;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a process: an integer >= 0 or a name")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Process, E> {
                Ok(Process::Client(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Process, E> {
                u64::try_from(v)
                    .map(Process::Client)
                    .map_err(|_| E::custom(format!("process {v} is negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Process, E> {
                Ok(Process::Named(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The kind of an op line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpType {
    /// The start of an operation.
    Invoke,
    /// It happened.
    Ok,
    /// It certainly did not happen.
    Fail,
    /// Unknown whether it happened (timeout, crash, lost connection).
    Info,
}

impl OpType {
    /// The spelling in the history: `"invoke"`, `"ok"`, `"fail"`, `"info"`.
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }
    /// True for `ok`, `fail` and `info`.
    pub fn is_completion(self) -> bool {
        self != OpType::Invoke
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "invoke" => OpType::Invoke,
            "ok" => OpType::Ok,
            "fail" => OpType::Fail,
            "info" => OpType::Info,
            _ => return None,
        })
    }
}

impl fmt::Display for OpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One operation: one line of a history.
///
/// `value`, `error` and unknown fields are kept as raw JSON text so that reading a
/// history never builds a tree it does not need; checkers decode `value` into the
/// shape their `f` calls for.
#[derive(Debug, Clone)]
pub struct Op {
    /// Position in the file: 0, 1, 2, … Assigned by [`HistoryWriter`]; when a line
    /// omits it the reader assigns the file position ([`Op::NO_INDEX`] when an op is
    /// deserialized on its own).
    pub index: u64,
    /// Nanoseconds since the run started; `None` when a hand-written line omits it.
    pub time: Option<u64>,
    /// Who performed it.
    pub process: Process,
    /// `invoke`, `ok`, `fail` or `info`.
    pub op_type: OpType,
    /// The operation's name, e.g. `"transfer"`.
    pub f: String,
    /// Argument or result, raw JSON (`null` when absent).
    pub value: Box<RawValue>,
    /// Where it ran, if known.
    pub node: Option<String>,
    /// Why it failed (string or object), raw JSON.
    pub error: Option<Box<RawValue>>,
    /// Any other field, kept in order of appearance.
    pub extra: Vec<(String, Box<RawValue>)>,
}

fn raw_null() -> Box<RawValue> {
    // "null" is valid JSON, so this cannot fail.
    RawValue::from_string("null".to_owned()).unwrap_or_else(|_| unreachable!())
}

impl Op {
    /// The index of an op deserialized outside a [`HistoryReader`] without `index`.
    pub const NO_INDEX: u64 = u64::MAX;

    /// A new op with index 0 and no time; [`HistoryWriter::write`] stamps both.
    pub fn new<T: Serialize + ?Sized>(
        process: Process,
        op_type: OpType,
        f: impl Into<String>,
        value: &T,
    ) -> Result<Op, HistoryError> {
        Ok(Op {
            index: 0,
            time: None,
            process,
            op_type,
            f: f.into(),
            value: serde_json::value::to_raw_value(value)?,
            node: None,
            error: None,
            extra: Vec::new(),
        })
    }
    /// An `invoke` op.
    pub fn invoke<T: Serialize + ?Sized>(
        process: Process,
        f: impl Into<String>,
        value: &T,
    ) -> Result<Op, HistoryError> {
        Op::new(process, OpType::Invoke, f, value)
    }
    /// The completion of this op (same process and `f`) with another type and value.
    pub fn complete<T: Serialize + ?Sized>(
        &self,
        op_type: OpType,
        value: &T,
    ) -> Result<Op, HistoryError> {
        let mut op = Op::new(self.process.clone(), op_type, self.f.clone(), value)?;
        op.node = self.node.clone();
        Ok(op)
    }
    /// Sets `node`.
    pub fn with_node(mut self, node: impl Into<String>) -> Op {
        self.node = Some(node.into());
        self
    }
    /// Sets `error` to any JSON-serializable value.
    pub fn with_error<T: Serialize + ?Sized>(mut self, error: &T) -> Result<Op, HistoryError> {
        self.error = Some(serde_json::value::to_raw_value(error)?);
        Ok(self)
    }
    /// Decodes `value` into `T`.
    pub fn value_as<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.value.get())
    }
    /// True when `value` is JSON `null`.
    pub fn value_is_null(&self) -> bool {
        self.value.get().trim() == "null"
    }
    /// The client process number, if the op is by a client.
    pub fn client(&self) -> Option<u64> {
        match self.process {
            Process::Client(n) => Some(n),
            Process::Named(_) => None,
        }
    }
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("index", &self.index)?;
        if let Some(t) = self.time {
            m.serialize_entry("time", &t)?;
        }
        m.serialize_entry("process", &self.process)?;
        m.serialize_entry("type", self.op_type.as_str())?;
        m.serialize_entry("f", &self.f)?;
        m.serialize_entry("value", &self.value)?;
        if let Some(n) = &self.node {
            m.serialize_entry("node", n)?;
        }
        if let Some(e) = &self.error {
            m.serialize_entry("error", e)?;
        }
        for (k, v) in &self.extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// A string key that borrows from the input when it can.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(v.into()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(v.to_owned().into()))
            }
        }
        d.deserialize_str(V)
    }
}

/// `type` decoded without allocating.
struct TypeField(OpType);

impl<'de> Deserialize<'de> for TypeField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let k = Key::deserialize(d)?;
        OpType::parse(&k.0).map(TypeField).ok_or_else(|| {
            de::Error::custom(format!(
                "type {:?} is not one of invoke, ok, fail, info",
                k.0
            ))
        })
    }
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Op;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an operation (a JSON object)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Op, A::Error> {
                let mut index = None;
                let mut time = None;
                let mut process = None;
                let mut op_type = None;
                let mut f: Option<String> = None;
                let mut value = None;
                let mut node = None;
                let mut error = None;
                let mut extra = Vec::new();
                fn once<T, E: de::Error>(slot: &mut Option<T>, v: T, name: &str) -> Result<(), E> {
                    if slot.is_some() {
                        return Err(E::custom(format!("duplicate field `{name}`")));
                    }
                    *slot = Some(v);
                    Ok(())
                }
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    match &*key.0 {
                        "index" => once(&mut index, map.next_value::<u64>()?, "index")?,
                        "time" => once(&mut time, map.next_value::<u64>()?, "time")?,
                        "process" => once(&mut process, map.next_value::<Process>()?, "process")?,
                        "type" => once(&mut op_type, map.next_value::<TypeField>()?.0, "type")?,
                        "f" => once(&mut f, map.next_value::<String>()?, "f")?,
                        "value" => once(&mut value, map.next_value::<Box<RawValue>>()?, "value")?,
                        "node" => once(&mut node, map.next_value::<Option<String>>()?, "node")?,
                        "error" => once(&mut error, map.next_value::<Box<RawValue>>()?, "error")?,
                        other => {
                            let other = other.to_owned();
                            if extra.iter().any(|(k, _)| *k == other) {
                                return Err(de::Error::custom(format!(
                                    "duplicate field `{other}`"
                                )));
                            }
                            extra.push((other, map.next_value::<Box<RawValue>>()?));
                        }
                    }
                }
                Ok(Op {
                    index: index.unwrap_or(Op::NO_INDEX),
                    time,
                    process: process.ok_or_else(|| de::Error::missing_field("process"))?,
                    op_type: op_type.ok_or_else(|| de::Error::missing_field("type"))?,
                    f: f.ok_or_else(|| de::Error::missing_field("f"))?,
                    value: value.unwrap_or_else(raw_null),
                    node: node.flatten(),
                    error: error.filter(|e| e.get().trim() != "null"),
                    extra,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// Reads a history line by line: an iterator of `Result<Op, HistoryError>`.
///
/// Holds one line at a time. Checks what one line can show: valid JSON, the fields and
/// their types, `index` in file order without gaps (assigned when absent), `time` never
/// decreasing. A last line cut short (no newline and JSON that ends early) is dropped
/// and noted in [`HistoryReader::warnings`]; any other bad line yields an error naming
/// its line number, after which the iterator ends. Blank lines are skipped.
pub struct HistoryReader<R> {
    input: R,
    buf: Vec<u8>,
    line: u64,
    next_index: u64,
    last_time: u64,
    warnings: Vec<String>,
    done: bool,
}

impl<R: BufRead> HistoryReader<R> {
    /// A reader over `input`; wrap files in a [`std::io::BufReader`].
    pub fn new(input: R) -> Self {
        HistoryReader {
            input,
            buf: Vec::with_capacity(512),
            line: 0,
            next_index: 0,
            last_time: 0,
            warnings: Vec::new(),
            done: false,
        }
    }
    /// The 1-based line number of the last line read.
    pub fn line(&self) -> u64 {
        self.line
    }
    /// Warnings so far (a dropped cut-short last line).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    /// Takes the warnings out of the reader.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn malformed(&mut self, message: String) -> Option<Result<Op, HistoryError>> {
        self.done = true;
        Some(Err(HistoryError::Malformed {
            line: self.line,
            message,
        }))
    }
}

impl<R: BufRead> Iterator for HistoryReader<R> {
    type Item = Result<Op, HistoryError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            self.buf.clear();
            match self.input.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {}
                Err(source) => {
                    self.done = true;
                    return Some(Err(HistoryError::Read {
                        line: self.line + 1,
                        source,
                    }));
                }
            }
            self.line += 1;
            let complete = self.buf.last() == Some(&b'\n');
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let mut op = match serde_json::from_slice::<Op>(&self.buf) {
                Ok(op) => op,
                Err(e) if !complete && e.is_eof() => {
                    self.warnings.push(format!(
                        "line {}: the last line is cut short ({} bytes, no newline); dropped",
                        self.line,
                        self.buf.len()
                    ));
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    let message = format!("not a valid operation: {e}");
                    return self.malformed(message);
                }
            };
            if op.index == Op::NO_INDEX {
                op.index = self.next_index;
            } else if op.index != self.next_index {
                let message = format!(
                    "index {} where {} was expected (indexes are 0, 1, 2, … in file order)",
                    op.index, self.next_index
                );
                return self.malformed(message);
            }
            if let Some(t) = op.time {
                if t < self.last_time {
                    let message = format!(
                        "time {t} is earlier than the previous op's time {}",
                        self.last_time
                    );
                    return self.malformed(message);
                }
                self.last_time = t;
            }
            self.next_index += 1;
            return Some(Ok(op));
        }
    }
}

/// Writes a history for a recorder: stamps `index` (0, 1, 2, …) and `time`
/// (nanoseconds since the writer was made, never decreasing), and writes each op as
/// one line with a single `write_all`, flushed at once, so a crash leaves at most the
/// last line cut short.
pub struct HistoryWriter<W: Write> {
    out: W,
    start: Instant,
    next_index: u64,
    last_time: u64,
    buf: Vec<u8>,
}

impl<W: Write> HistoryWriter<W> {
    /// A writer whose clock starts now.
    pub fn new(out: W) -> Self {
        Self::starting_at(out, Instant::now())
    }
    /// A writer whose `time` counts from `start` (the run's start).
    pub fn starting_at(out: W, start: Instant) -> Self {
        HistoryWriter {
            out,
            start,
            next_index: 0,
            last_time: 0,
            buf: Vec::with_capacity(256),
        }
    }
    /// Stamps `op` with the next index and the current time, writes and flushes it,
    /// and returns it as written.
    pub fn write(&mut self, op: Op) -> Result<Op, HistoryError> {
        let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.write_at(op, now)
    }
    /// Like [`HistoryWriter::write`] with a given time (raised to the previous op's
    /// time if earlier, so time never decreases). For replay and tests.
    pub fn write_at(&mut self, mut op: Op, time: u64) -> Result<Op, HistoryError> {
        op.index = self.next_index;
        self.last_time = self.last_time.max(time);
        op.time = Some(self.last_time);
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, &op)?;
        self.buf.push(b'\n');
        let index = op.index;
        self.out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush())
            .map_err(|source| HistoryError::Write { index, source })?;
        self.next_index += 1;
        Ok(op)
    }
    /// How many ops were written.
    pub fn ops_written(&self) -> u64 {
        self.next_index
    }
    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The state of one client process, for [`Sequencer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProcState {
    Idle,
    Open,
}

/// Checks the process rules of the contract as ops stream by: a client process has at
/// most one open invoke; a client's completion completes its open invoke with the same
/// `f`. Named actors may complete without an invoke.
///
/// A process is forgotten once its op ends `info` (it is never used again), so memory
/// holds only live processes, however many crash. A client process reused after an
/// `info` completion breaks Jepsen's rule but leaves the history usable: its next
/// invoke simply starts a new operation.
#[derive(Debug, Default)]
pub struct Sequencer {
    procs: FxHashMap<u64, (ProcState, Box<str>)>,
}

impl Sequencer {
    /// An empty sequencer.
    pub fn new() -> Self {
        Self::default()
    }
    /// Checks `op` against the ops before it; `Err` explains the broken rule.
    pub fn observe(&mut self, op: &Op) -> Result<(), String> {
        let Some(p) = op.client() else {
            return Ok(());
        };
        match op.op_type {
            OpType::Invoke => {
                let entry = self
                    .procs
                    .entry(p)
                    .or_insert_with(|| (ProcState::Idle, Box::from("")));
                if entry.0 == ProcState::Open {
                    return Err(format!(
                        "process {p} invokes {:?} while its {:?} is still open",
                        op.f, entry.1
                    ));
                }
                entry.0 = ProcState::Open;
                if *entry.1 != *op.f {
                    entry.1 = op.f.as_str().into();
                }
                Ok(())
            }
            t => match self.procs.get_mut(&p) {
                Some(entry) if entry.0 == ProcState::Open => {
                    if *entry.1 != *op.f {
                        return Err(format!(
                            "process {p} completes {:?} but its open invoke is {:?}",
                            op.f, entry.1
                        ));
                    }
                    entry.0 = ProcState::Idle;
                    if t == OpType::Info {
                        self.procs.remove(&p);
                    }
                    Ok(())
                }
                _ => Err(format!(
                    "process {p} completes {:?} with {t} but has no open invoke",
                    op.f
                )),
            },
        }
    }
}
