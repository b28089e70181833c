//! The replies worth aiming a fault at, recognised in the bytes a [`super::Forwarder`]
//! carries between a process and an engine: PostgreSQL's and MariaDB's commits of a
//! transaction that wrote (autocommit writes too; a commit that changed no row, such as
//! a poll that found nothing, is no boundary worth a fault), Kafka's Produce, OffsetCommit and EndTxn responses, RocketMQ's
//! send, end-transaction and consumer-offset replies.
//!
//! Each connection gets a [`Watch`] pair: its [`RequestSide`] reads what the process sends
//! (to learn which request a reply answers: a Kafka correlation id, a RocketMQ opaque, a
//! MySQL `COMMIT`), its [`ReplySide`] reads what the engine sends back and returns each
//! recognised reply with where it starts and ends in the chunk just read, so a fault can
//! fire exactly after it (the process learnt it) or exactly before it (it never will).
//! Only frame headers and the first bytes of a frame are looked at; a frame's body is
//! skipped without copying, so the cost is a few comparisons a frame. Anything the
//! parser does not understand (TLS, a protocol it does not know, a malformed frame)
//! turns it into [`Protocol::Opaque`]: every chunk is then one [`Reply::Other`] — the
//! "any reply" fallback — and no stream is ever altered by a parse.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};

/// A wire protocol a forwarder can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// PostgreSQL's frontend/backend protocol v3.
    Postgres,
    /// The MySQL/MariaDB client/server protocol (uncompressed).
    Mysql,
    /// Apache Kafka's protocol.
    Kafka,
    /// Apache RocketMQ's remoting protocol (JSON or binary headers).
    RocketMq,
    /// Not understood: every chunk the engine sends is one reply.
    Opaque,
}

impl Protocol {
    /// The protocol of an engine, by its node name (`postgres`, `mariadb`, `kafka`,
    /// `broker`, `namesrv`); anything else is [`Protocol::Opaque`].
    pub fn for_engine(engine: &str) -> Protocol {
        match engine {
            "postgres" => Protocol::Postgres,
            "mariadb" | "mysql" => Protocol::Mysql,
            "kafka" => Protocol::Kafka,
            "broker" | "namesrv" => Protocol::RocketMq,
            _ => Protocol::Opaque,
        }
    }
}

/// What a reply tells the process: the moments a fault is aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reply {
    /// A transaction is durable: SQL `COMMIT` of a transaction that changed rows (or an
    /// autocommit write that did), Kafka `EndTxn`, RocketMQ end-transaction.
    Commit,
    /// A message is stored: Kafka `Produce`, RocketMQ send (half messages included).
    Produce,
    /// A consumer's position is stored: Kafka `OffsetCommit`/`TxnOffsetCommit`,
    /// RocketMQ consumer-offset update.
    Offset,
    /// Any other reply (or any chunk of a protocol not understood).
    Other,
}

impl Reply {
    /// The kinds worth aiming at, in the order a seeded draw indexes them.
    pub const AIMED: [Reply; 3] = [Reply::Commit, Reply::Produce, Reply::Offset];

    /// The kind's name: `commit`, `produce`, `offset`, `other`.
    pub fn name(self) -> &'static str {
        match self {
            Reply::Commit => "commit",
            Reply::Produce => "produce",
            Reply::Offset => "offset",
            Reply::Other => "other",
        }
    }

    /// Parses a name of [`Reply::name`] (`any` is no kind: `None` inside `Some`).
    pub fn parse(s: &str) -> Option<Reply> {
        [Reply::Commit, Reply::Produce, Reply::Offset, Reply::Other]
            .into_iter()
            .find(|r| r.name() == s)
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One recognised reply in a chunk: bytes `start..end` of the chunk (`start` is 0 when
/// the reply began in an earlier chunk).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Where the reply starts in this chunk.
    pub start: usize,
    /// Where it ends (exclusive).
    pub end: usize,
    /// What it is.
    pub reply: Reply,
}

/// What the two sides of one connection share: the requests awaiting replies.
#[derive(Debug, Default)]
struct Shared {
    /// The stream is not understood (TLS, a bad frame): stop parsing both ways.
    opaque: bool,
    /// PostgreSQL: the client asked for SSL/GSS, so the server's first byte is a bare answer.
    pg_bare_answer: bool,
    /// Kafka correlation ids and RocketMQ opaques → the request's kind.
    pending: HashMap<i32, Reply>,
    /// MySQL: one entry per command, `true` for a `COMMIT`.
    commands: VecDeque<bool>,
    /// MySQL: a statement of the open transaction changed rows.
    my_wrote: bool,
}

/// The most requests remembered awaiting replies (a process that never reads its replies
/// cannot grow this without bound).
const MAX_PENDING: usize = 4096;

/// The two readers of one connection.
pub struct Watch;

impl Watch {
    /// A request and a reply reader for one connection speaking `protocol`.
    pub fn pair(protocol: Protocol) -> (RequestSide, ReplySide) {
        let shared = Arc::new(Mutex::new(Shared::default()));
        (
            RequestSide {
                protocol,
                frames: Frames::new(),
                shared: shared.clone(),
                first: true,
                start: Vec::new(),
            },
            ReplySide {
                protocol,
                frames: Frames::new(),
                shared,
                pg_in_tx: false,
                pg_wrote: false,
                pg_commit: false,
                pg_cycle_open: false,
                first: true,
            },
        )
    }
}

/// Reads what the process sends (never alters it).
pub struct RequestSide {
    protocol: Protocol,
    frames: Frames,
    shared: Arc<Mutex<Shared>>,
    first: bool,
    /// PostgreSQL: the first 8 bytes the client sent.
    start: Vec<u8>,
}

impl RequestSide {
    /// Feeds the next chunk the process sent.
    pub fn feed(&mut self, chunk: &[u8]) {
        let protocol = self.protocol;
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if shared.opaque {
            return;
        }
        match protocol {
            Protocol::Postgres => {
                // Only the very first message matters: an SSLRequest or GSSENCRequest
                // (length 8, code 80877103 / 80877104) makes the server answer one bare
                // byte before any framed message.
                if self.first {
                    let take = (8 - self.start.len()).min(chunk.len());
                    self.start.extend_from_slice(&chunk[..take]);
                    if self.start.len() == 8 {
                        let head = &self.start;
                        let code = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
                        if head[..4] == [0, 0, 0, 8] && (code == 80_877_103 || code == 80_877_104) {
                            shared.pg_bare_answer = true;
                        }
                        self.first = false;
                    }
                }
            }
            Protocol::Mysql => {
                for frame in self.frames.feed(chunk, Framing::Mysql, 24) {
                    let Some(frame) = frame else {
                        shared.opaque = true;
                        return;
                    };
                    let (seq, payload) = (frame.head[3], &frame.head[4..]);
                    // The handshake response asking for TLS: 32 bytes at sequence 1.
                    if seq == 1 && frame.len == 4 + 32 {
                        shared.opaque = true;
                        return;
                    }
                    if seq == 0 {
                        let commit = payload.first() == Some(&0x03) && is_commit(&payload[1..]);
                        if shared.commands.len() >= MAX_PENDING {
                            shared.commands.clear();
                        }
                        shared.commands.push_back(commit);
                    }
                }
            }
            Protocol::Kafka => {
                for frame in self.frames.feed(chunk, Framing::Kafka, 12) {
                    let Some(frame) = frame else {
                        shared.opaque = true;
                        return;
                    };
                    let Some(h) = frame.head.get(4..12) else {
                        continue;
                    };
                    let api_key = i16::from_be_bytes([h[0], h[1]]);
                    let corr = i32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                    let kind = match api_key {
                        0 => Reply::Produce,
                        8 | 28 => Reply::Offset,
                        26 => Reply::Commit,
                        _ => Reply::Other,
                    };
                    remember(&mut shared.pending, corr, kind);
                }
            }
            Protocol::RocketMq => {
                for frame in self.frames.feed(chunk, Framing::RocketMq, ROCKETMQ_HEAD) {
                    let Some(frame) = frame else {
                        shared.opaque = true;
                        return;
                    };
                    let Some(h) = rocketmq_header(&frame.head) else {
                        continue;
                    };
                    // A request awaiting a reply (not a response, not one-way).
                    if h.flag & 0b11 == 0 {
                        let kind = match h.code {
                            10 | 310 | 320 => Reply::Produce,
                            37 => Reply::Commit,
                            15 => Reply::Offset,
                            _ => Reply::Other,
                        };
                        remember(&mut shared.pending, h.opaque, kind);
                    }
                }
            }
            Protocol::Opaque => {}
        }
    }
}

fn remember(pending: &mut HashMap<i32, Reply>, id: i32, kind: Reply) {
    if pending.len() >= MAX_PENDING {
        pending.clear();
    }
    pending.insert(id, kind);
}

/// Whether a MySQL query's text is `COMMIT` (any case, leading blanks, `COMMIT WORK`).
fn is_commit(text: &[u8]) -> bool {
    let t = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |i| &text[i..]);
    t.len() >= 6
        && t[..6].eq_ignore_ascii_case(b"commit")
        && t.get(6)
            .is_none_or(|b| !b.is_ascii_alphanumeric() && *b != b'_')
}

/// Reads what the engine sends back (never alters it).
pub struct ReplySide {
    protocol: Protocol,
    frames: Frames,
    shared: Arc<Mutex<Shared>>,
    /// PostgreSQL: inside a transaction block (from ReadyForQuery, and `BEGIN`).
    pg_in_tx: bool,
    /// PostgreSQL: a statement of the open transaction block changed rows.
    pg_wrote: bool,
    /// PostgreSQL: a commit (or autocommit write) completed since the last ReadyForQuery.
    pg_commit: bool,
    /// PostgreSQL: a query cycle has begun and not yet ended with ReadyForQuery.
    pg_cycle_open: bool,
    first: bool,
}

impl ReplySide {
    /// Feeds the next chunk the engine sent; returns the replies that end in it.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Seen> {
        let shared = self.shared.clone();
        let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
        let mut chunk_at = 0;
        if self.first && !chunk.is_empty() {
            self.first = false;
            if self.protocol == Protocol::Postgres && shared.pg_bare_answer {
                match chunk[0] {
                    b'N' | b'G' => chunk_at = 1,
                    _ => shared.opaque = true, // TLS or GSS encryption follows
                }
            }
        }
        if shared.opaque || self.protocol == Protocol::Opaque {
            shared.opaque = true;
            return if chunk.is_empty() {
                Vec::new()
            } else {
                vec![Seen {
                    start: 0,
                    end: chunk.len(),
                    reply: Reply::Other,
                }]
            };
        }
        let rest = &chunk[chunk_at..];
        let (framing, capture) = match self.protocol {
            Protocol::Postgres => (Framing::Postgres, 64),
            Protocol::Mysql => (Framing::Mysql, 24),
            Protocol::Kafka => (Framing::Kafka, 8),
            Protocol::RocketMq | Protocol::Opaque => (Framing::RocketMq, ROCKETMQ_HEAD),
        };
        let mut out = Vec::new();
        // A PostgreSQL reply is a query cycle: it starts at the cycle's first message.
        let mut cycle_start = 0;
        for frame in self.frames.feed(rest, framing, capture) {
            let Some(frame) = frame else {
                shared.opaque = true;
                break;
            };
            if !self.pg_cycle_open {
                self.pg_cycle_open = true;
                cycle_start = frame.start;
            }
            let reply = match self.protocol {
                Protocol::Postgres => self.postgres(&frame.head),
                Protocol::Mysql => mysql_reply(&frame.head, &mut shared),
                Protocol::Kafka => frame
                    .head
                    .get(4..8)
                    .map(|h| i32::from_be_bytes([h[0], h[1], h[2], h[3]]))
                    .and_then(|corr| shared.pending.remove(&corr)),
                Protocol::RocketMq => rocketmq_header(&frame.head)
                    .filter(|h| h.flag & 1 == 1)
                    .and_then(|h| shared.pending.remove(&h.opaque)),
                Protocol::Opaque => None,
            };
            if let Some(reply) = reply {
                let start = if self.protocol == Protocol::Postgres {
                    cycle_start
                } else {
                    frame.start
                };
                self.pg_cycle_open = false;
                out.push(Seen {
                    start: (start + chunk_at).min(chunk.len()),
                    end: frame.end + chunk_at,
                    reply,
                });
            }
        }
        out
    }

    /// A PostgreSQL message's meaning: a reply is one query cycle, ending at
    /// ReadyForQuery; it is a commit when it completed the `COMMIT` of a transaction
    /// block that changed rows, or a write that changed rows outside a block.
    fn postgres(&mut self, head: &[u8]) -> Option<Reply> {
        match head.first()? {
            b'C' => {
                let tag = head.get(5..).unwrap_or_default();
                let tag = &tag[..tag.iter().position(|b| *b == 0).unwrap_or(tag.len())];
                let word = tag.split(|b| *b == b' ').next().unwrap_or_default();
                match word {
                    b"COMMIT" => self.pg_commit = std::mem::take(&mut self.pg_wrote),
                    b"ROLLBACK" => self.pg_wrote = false,
                    b"BEGIN" | b"START" => self.pg_in_tx = true,
                    b"INSERT" | b"UPDATE" | b"DELETE" | b"MERGE" | b"COPY" if rows(tag) > 0 => {
                        if self.pg_in_tx {
                            self.pg_wrote = true;
                        } else {
                            self.pg_commit = true;
                        }
                    }
                    _ => {}
                }
                None
            }
            b'Z' => {
                let status = *head.get(5)?;
                self.pg_in_tx = status != b'I';
                if !self.pg_in_tx {
                    self.pg_wrote = false;
                }
                let commit = std::mem::take(&mut self.pg_commit) && status == b'I';
                Some(if commit { Reply::Commit } else { Reply::Other })
            }
            _ => None,
        }
    }
}

/// The row count a PostgreSQL command tag ends with (`INSERT 0 3` → 3, `UPDATE 0` → 0);
/// 0 when it ends with no number.
fn rows(tag: &[u8]) -> u64 {
    let last = tag.rsplit(|b| *b == b' ').next().unwrap_or_default();
    std::str::from_utf8(last)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A MySQL packet's meaning: the first packet of a command's response (sequence 1) is its
/// reply; an OK outside a transaction after the `COMMIT` of a transaction that changed
/// rows, or after a write that changed rows, is a commit.
fn mysql_reply(head: &[u8], shared: &mut Shared) -> Option<Reply> {
    if head.get(3) != Some(&1) {
        return None;
    }
    let commit_asked = shared.commands.pop_front()?;
    let payload = &head[4..];
    if payload.first() != Some(&0x00) {
        return Some(Reply::Other);
    }
    let mut at = 1;
    let affected = lenenc(payload, &mut at)?;
    let _last_id = lenenc(payload, &mut at)?;
    let status = u16::from_le_bytes([*payload.get(at)?, *payload.get(at + 1)?]);
    let in_tx = status & 0x0001 != 0;
    if in_tx {
        shared.my_wrote |= affected > 0;
        return Some(Reply::Other);
    }
    let wrote = std::mem::take(&mut shared.my_wrote);
    Some(if (commit_asked && wrote) || affected > 0 {
        Reply::Commit
    } else {
        Reply::Other
    })
}

/// A MySQL length-encoded integer at `*at`, moving past it.
fn lenenc(b: &[u8], at: &mut usize) -> Option<u64> {
    let first = *b.get(*at)?;
    let n = match first {
        0..=0xfa => 0,
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        _ => return None,
    };
    let mut v: u64 = if n == 0 { u64::from(first) } else { 0 };
    for i in 0..n {
        v |= u64::from(*b.get(*at + 1 + i)?) << (8 * i);
    }
    *at += 1 + n;
    Some(v)
}

/// How many bytes of a RocketMQ frame are read: the length words and the header.
const ROCKETMQ_HEAD: usize = 8 + 4096;

struct RocketHeader {
    code: i32,
    opaque: i32,
    flag: i32,
}

/// The code, opaque and flag of a RocketMQ frame (`head` starts at its length word).
fn rocketmq_header(head: &[u8]) -> Option<RocketHeader> {
    let word = u32::from_be_bytes(head.get(4..8)?.try_into().ok()?);
    let (kind, len) = (word >> 24, (word & 0x00ff_ffff) as usize);
    let header = head.get(8..8 + len)?;
    match kind {
        0 => {
            #[derive(Deserialize)]
            struct Json {
                code: i32,
                #[serde(default)]
                opaque: i32,
                #[serde(default)]
                flag: i32,
            }
            let j: Json = serde_json::from_slice(header).ok()?;
            Some(RocketHeader {
                code: j.code,
                opaque: j.opaque,
                flag: j.flag,
            })
        }
        1 => Some(RocketHeader {
            code: i32::from(i16::from_be_bytes(header.get(0..2)?.try_into().ok()?)),
            opaque: i32::from_be_bytes(header.get(5..9)?.try_into().ok()?),
            flag: i32::from_be_bytes(header.get(9..13)?.try_into().ok()?),
        }),
        _ => None,
    }
}

/// How a protocol delimits its frames.
#[derive(Clone, Copy)]
enum Framing {
    /// Type byte, then a big-endian i32 length that counts itself.
    Postgres,
    /// Three-byte little-endian payload length, a sequence byte, the payload.
    Mysql,
    /// A big-endian i32 length of what follows.
    Kafka,
    /// As Kafka.
    RocketMq,
}

impl Framing {
    fn prefix(self) -> usize {
        match self {
            Framing::Postgres => 5,
            Framing::Mysql | Framing::Kafka | Framing::RocketMq => 4,
        }
    }

    /// The whole frame's length from its prefix; `None` for a length no sane peer sends.
    fn frame_len(self, p: &[u8]) -> Option<usize> {
        let len = match self {
            Framing::Postgres => {
                let n = i32::from_be_bytes([p[1], p[2], p[3], p[4]]);
                (n >= 4).then(|| 1 + n as usize)?
            }
            Framing::Mysql => {
                4 + (usize::from(p[0]) | usize::from(p[1]) << 8 | usize::from(p[2]) << 16)
            }
            Framing::Kafka | Framing::RocketMq => {
                let n = i32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                (n >= 0).then(|| 4 + n as usize)?
            }
        };
        (len <= MAX_FRAME).then_some(len)
    }
}

/// The largest frame believed (larger: the stream is not what we think it is).
const MAX_FRAME: usize = 1 << 30;

/// One frame that ended in a chunk: its first bytes and where it lies in the chunk.
struct Frame {
    head: Vec<u8>,
    len: usize,
    start: usize,
    end: usize,
}

/// Cuts a byte stream into frames across chunk boundaries, keeping each frame's first
/// bytes and skipping the rest.
struct Frames {
    head: Vec<u8>,
    /// The current frame's whole length, once its prefix is read.
    len: Option<usize>,
    /// Bytes of the current frame consumed so far.
    pos: usize,
}

impl Frames {
    fn new() -> Frames {
        Frames {
            head: Vec::new(),
            len: None,
            pos: 0,
        }
    }

    /// The frames that end in `chunk` (`None` for a frame that makes no sense: the
    /// caller stops parsing).
    fn feed(&mut self, chunk: &[u8], framing: Framing, capture: usize) -> Vec<Option<Frame>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < chunk.len() {
            let frame_start_in_chunk = i.saturating_sub(self.pos);
            if self.len.is_none() {
                let want = framing.prefix() - self.head.len();
                let take = want.min(chunk.len() - i);
                self.head.extend_from_slice(&chunk[i..i + take]);
                i += take;
                self.pos += take;
                if self.head.len() < framing.prefix() {
                    break;
                }
                match framing.frame_len(&self.head) {
                    Some(len) => self.len = Some(len),
                    None => {
                        out.push(None);
                        return out;
                    }
                }
            }
            let len = self.len.unwrap_or(0);
            let left = len - self.pos;
            let take = left.min(chunk.len() - i);
            let keep = capture.saturating_sub(self.head.len()).min(take);
            self.head.extend_from_slice(&chunk[i..i + keep]);
            i += take;
            self.pos += take;
            if self.pos == len {
                out.push(Some(Frame {
                    head: std::mem::take(&mut self.head),
                    len,
                    start: frame_start_in_chunk,
                    end: i,
                }));
                self.len = None;
                self.pos = 0;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `requests` then `replies`, each cut into pieces of every size from 1 to the
    /// whole, and checks the replies found (kinds, and that each ends where a frame ends).
    fn replies(protocol: Protocol, requests: &[u8], replies: &[u8]) -> Vec<Reply> {
        let mut found: Option<Vec<Reply>> = None;
        for cut in 1..=replies.len().max(1) {
            let (mut req, mut rep) = Watch::pair(protocol);
            for piece in requests.chunks(cut.min(requests.len().max(1))) {
                req.feed(piece);
            }
            let mut got = Vec::new();
            for piece in replies.chunks(cut) {
                for s in rep.feed(piece) {
                    assert!(s.start <= s.end && s.end <= piece.len(), "cut {cut}: {s:?}");
                    got.push(s.reply);
                }
            }
            if let Some(prev) = &found {
                assert_eq!(prev, &got, "cut into pieces of {cut} bytes");
            }
            found = Some(got);
        }
        found.unwrap_or_default()
    }

    fn pg(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![kind];
        v.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn postgres_commit_and_autocommit_writes() {
        let mut r = Vec::new();
        // BEGIN; INSERT; COMMIT — three query cycles.
        r.extend(pg(b'C', b"BEGIN\0"));
        r.extend(pg(b'Z', b"T"));
        r.extend(pg(b'2', b""));
        r.extend(pg(b'C', b"INSERT 0 1\0"));
        r.extend(pg(b'Z', b"T"));
        r.extend(pg(b'C', b"COMMIT\0"));
        r.extend(pg(b'Z', b"I"));
        // An autocommit UPDATE, then a SELECT.
        r.extend(pg(b'C', b"UPDATE 1\0"));
        r.extend(pg(b'Z', b"I"));
        r.extend(pg(b'T', b"\0\0"));
        r.extend(pg(b'D', b"\0\x01\0\0\0\x011"));
        r.extend(pg(b'C', b"SELECT 1\0"));
        r.extend(pg(b'Z', b"I"));
        // A failed transaction's COMMIT is reported as ROLLBACK: no commit.
        r.extend(pg(b'C', b"ROLLBACK\0"));
        r.extend(pg(b'Z', b"I"));
        // A transaction that changed no row (a poll that found nothing, an UPDATE that
        // matched none) commits nothing worth a fault; nor does an autocommit UPDATE 0.
        r.extend(pg(b'C', b"BEGIN\0"));
        r.extend(pg(b'C', b"SELECT 0\0"));
        r.extend(pg(b'C', b"UPDATE 0\0"));
        r.extend(pg(b'C', b"COMMIT\0"));
        r.extend(pg(b'Z', b"I"));
        r.extend(pg(b'C', b"DELETE 0\0"));
        r.extend(pg(b'Z', b"I"));
        // The same in one simple-query cycle with a write: a commit.
        r.extend(pg(b'C', b"BEGIN\0"));
        r.extend(pg(b'C', b"INSERT 0 2\0"));
        r.extend(pg(b'C', b"COMMIT\0"));
        r.extend(pg(b'Z', b"I"));
        use Reply::*;
        assert_eq!(
            replies(Protocol::Postgres, b"", &r),
            vec![Other, Other, Commit, Commit, Other, Other, Other, Other, Commit]
        );
    }

    #[test]
    fn postgres_ssl_refusal_byte_is_skipped_and_tls_is_opaque() {
        let ssl = [0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f];
        let mut r = vec![b'N'];
        r.extend(pg(b'R', &[0, 0, 0, 0]));
        r.extend(pg(b'C', b"UPDATE 1\0"));
        r.extend(pg(b'Z', b"I"));
        assert_eq!(replies(Protocol::Postgres, &ssl, &r), vec![Reply::Commit]);
        let (mut req, mut rep) = Watch::pair(Protocol::Postgres);
        req.feed(&ssl);
        assert_eq!(rep.feed(b"S\x16\x03\x01")[0].reply, Reply::Other);
        assert_eq!(rep.feed(&pg(b'Z', b"I"))[0].reply, Reply::Other);
    }

    fn my(seq: u8, payload: &[u8]) -> Vec<u8> {
        let n = payload.len();
        let mut v = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
        v.extend_from_slice(payload);
        v
    }

    fn ok(affected: u8, status: u16) -> Vec<u8> {
        let mut p = vec![0x00, affected, 0x00];
        p.extend_from_slice(&status.to_le_bytes());
        p.extend_from_slice(&[0, 0]);
        p
    }

    #[test]
    fn mysql_commit_after_the_commit_query_and_autocommit_writes() {
        let mut q = Vec::new();
        q.extend(my(0, b"\x03START TRANSACTION"));
        q.extend(my(0, b"\x17\x01\0\0\0")); // a prepared UPDATE inside it
        q.extend(my(0, b"\x03commit"));
        q.extend(my(0, b"\x17\x02\0\0\0")); // an autocommit write
        q.extend(my(0, b"\x03SELECT 1"));
        q.extend(my(0, b"\x03COMMITTED_FOO")); // not a commit
                                               // A transaction that changed no row: its COMMIT is no boundary.
        q.extend(my(0, b"\x03BEGIN"));
        q.extend(my(0, b"\x03INSERT IGNORE INTO dedup VALUES (1)"));
        q.extend(my(0, b"\x03COMMIT"));
        let mut r = Vec::new();
        r.extend(my(1, &ok(0, 0x0003)));
        r.extend(my(1, &ok(1, 0x0003)));
        r.extend(my(1, &ok(0, 0x0002)));
        r.extend(my(1, &ok(1, 0x0002)));
        r.extend(my(1, b"\x01")); // a result set: column count…
        r.extend(my(2, b"\x03def")); // …its column…
        r.extend(my(3, b"\x00\x011")); // …a row starting with 0x00 (not an OK)…
        r.extend(my(4, &[0xfe, 0, 0, 2, 0]));
        r.extend(my(1, &ok(0, 0x0002)));
        r.extend(my(1, &ok(0, 0x0003)));
        r.extend(my(1, &ok(0, 0x0003)));
        r.extend(my(1, &ok(0, 0x0002)));
        use Reply::*;
        assert_eq!(
            replies(Protocol::Mysql, &q, &r),
            vec![Other, Other, Commit, Commit, Other, Other, Other, Other, Other]
        );
        // The handshake (greeting at sequence 0, auth OK at 2) pairs with no command.
        let mut hs = my(0, b"\x0a10.11");
        hs.extend(my(2, &ok(0, 0x0002)));
        assert!(replies(Protocol::Mysql, &my(1, &[1; 40]), &hs).is_empty());
    }

    fn kafka(fields: &[u8]) -> Vec<u8> {
        let mut v = (fields.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(fields);
        v
    }

    fn kafka_req(api: i16, corr: i32) -> Vec<u8> {
        let mut f = api.to_be_bytes().to_vec();
        f.extend_from_slice(&9i16.to_be_bytes());
        f.extend_from_slice(&corr.to_be_bytes());
        f.extend_from_slice(&[0; 30]);
        kafka(&f)
    }

    fn kafka_resp(corr: i32) -> Vec<u8> {
        let mut f = corr.to_be_bytes().to_vec();
        f.extend_from_slice(&[7; 50]);
        kafka(&f)
    }

    #[test]
    fn kafka_replies_by_correlation_id() {
        let mut q = Vec::new();
        for (api, corr) in [(0, 1), (8, 2), (26, 3), (1, 4), (28, 5)] {
            q.extend(kafka_req(api, corr));
        }
        let mut r = Vec::new();
        // Out of order, and one reply to a request never seen.
        for corr in [3, 1, 4, 2, 99, 5] {
            r.extend(kafka_resp(corr));
        }
        use Reply::*;
        assert_eq!(
            replies(Protocol::Kafka, &q, &r),
            vec![Commit, Produce, Other, Offset, Offset]
        );
    }

    fn rocket_json(code: i32, opaque: i32, flag: i32) -> Vec<u8> {
        let header = format!(
            r#"{{"code":{code},"language":"JAVA","opaque":{opaque},"flag":{flag},"version":453}}"#
        );
        let body = b"body";
        let mut v = ((4 + header.len() + body.len()) as i32)
            .to_be_bytes()
            .to_vec();
        v.extend_from_slice(&(header.len() as u32).to_be_bytes());
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(body);
        v
    }

    fn rocket_binary(code: i16, opaque: i32, flag: i32) -> Vec<u8> {
        let mut h = code.to_be_bytes().to_vec();
        h.push(0);
        h.extend_from_slice(&453i16.to_be_bytes());
        h.extend_from_slice(&opaque.to_be_bytes());
        h.extend_from_slice(&flag.to_be_bytes());
        h.extend_from_slice(&[0; 8]);
        let mut v = ((4 + h.len()) as i32).to_be_bytes().to_vec();
        v.extend_from_slice(&((1u32 << 24) | h.len() as u32).to_be_bytes());
        v.extend_from_slice(&h);
        v
    }

    #[test]
    fn rocketmq_replies_by_opaque_json_and_binary_headers() {
        let mut q = Vec::new();
        q.extend(rocket_json(10, 1, 0)); // send (a half message too)
        q.extend(rocket_binary(37, 2, 0)); // end transaction, awaiting a reply
        q.extend(rocket_json(37, 3, 2)); // one-way end transaction: no reply
        q.extend(rocket_json(15, 4, 0)); // consumer offset
        q.extend(rocket_json(105, 5, 0)); // route query
        let mut r = Vec::new();
        r.extend(rocket_json(0, 2, 1));
        r.extend(rocket_json(39, 77, 0)); // the broker's check-back request: not a reply
        r.extend(rocket_binary(0, 1, 1));
        r.extend(rocket_json(0, 5, 1));
        r.extend(rocket_json(0, 4, 1));
        use Reply::*;
        assert_eq!(
            replies(Protocol::RocketMq, &q, &r),
            vec![Commit, Produce, Other, Offset]
        );
    }

    #[test]
    fn garbage_turns_the_stream_opaque_and_every_chunk_is_a_reply() {
        let (_, mut rep) = Watch::pair(Protocol::Kafka);
        // A negative length.
        assert!(rep.feed(&[0xff, 0xff, 0xff, 0xff, 1, 2]).is_empty());
        assert_eq!(
            rep.feed(b"abc"),
            vec![Seen {
                start: 0,
                end: 3,
                reply: Reply::Other
            }]
        );
        let (_, mut unknown) = Watch::pair(Protocol::for_engine("redis"));
        assert_eq!(unknown.feed(b"+OK\r\n").len(), 1);
    }

    #[test]
    fn a_reply_split_over_chunks_starts_at_zero_in_the_last() {
        let (_, mut rep) = Watch::pair(Protocol::Postgres);
        let z = pg(b'Z', b"I");
        let mut first = pg(b'C', b"UPDATE 1\0");
        first.extend_from_slice(&z[..2]);
        assert!(rep.feed(&first).is_empty());
        let mut second = z[2..].to_vec();
        second.extend(pg(b'C', b"SELECT 0\0"));
        second.extend(pg(b'Z', b"I"));
        let seen = rep.feed(&second);
        assert_eq!(seen.len(), 2);
        assert_eq!(
            (seen[0].start, seen[0].end, seen[0].reply),
            (0, 4, Reply::Commit)
        );
        assert_eq!(seen[1].reply, Reply::Other);
        assert_eq!(seen[1].start, 4);
        assert_eq!(seen[1].end, second.len());
    }
}
