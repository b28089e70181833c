//! Synthetic bank histories: a small simulation of clients moving money between two
//! banks, with failures, timeouts (`info`) and crashed clients that never return, plus
//! the final ledgers. Every history it makes is valid; [`inject`] then plants exactly
//! one anomaly and says which findings it must produce.
//!
//! Used by the property tests, the benchmarks and the `gen_history` example. Random
//! choices come from one seed.

use crate::history::{Op, OpType, Process};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// A small deterministic random source (SplitMix64), so the library needs no `rand`.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct BankParams {
    /// The seed of every random choice.
    pub seed: u64,
    /// About how many client ops (invokes and completions) to write.
    pub ops: u64,
    /// Concurrent client slots.
    pub clients: u32,
    /// Accounts per bank (the banks are `A` and `B`).
    pub accounts_per_bank: u32,
    /// Starting balance of every account.
    pub initial: i64,
    /// Share of operations that are reads.
    pub read_share: f64,
    /// Share of completions that are `fail`.
    pub fail_share: f64,
    /// Share of completions that are `info`.
    pub info_share: f64,
    /// Share of operations whose client crashes and never returns.
    pub crash_share: f64,
    /// Share of reads that cover only some accounts.
    pub partial_read_share: f64,
    /// Ledger entries per `final-ledger` line.
    pub ledger_chunk: usize,
    /// Write a nemesis op every this many ops (0: never).
    pub nemesis_every: u64,
}

impl Default for BankParams {
    fn default() -> Self {
        BankParams {
            seed: 1,
            ops: 1000,
            clients: 8,
            accounts_per_bank: 5,
            initial: 100,
            read_share: 0.5,
            fail_share: 0.05,
            info_share: 0.05,
            crash_share: 0.01,
            partial_read_share: 0.1,
            ledger_chunk: 1000,
            nemesis_every: 0,
        }
    }
}

/// The truth about one simulated transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferTruth {
    /// Its id (`t0`, `t1`, …).
    pub id: String,
    /// Debited account.
    pub from: String,
    /// Credited account.
    pub to: String,
    /// Amount.
    pub amount: i64,
    /// How the client heard of it; `None` if its client crashed.
    pub outcome: Option<OpType>,
    /// Whether the banks applied it.
    pub applied: bool,
    /// Index of its invoke.
    pub invoke: u64,
    /// Index of its completion, if any.
    pub completion: Option<u64>,
}

/// A bank's final ledger as data, before it is written as `final-ledger` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BankLedger {
    /// `(transfer id, account, signed amount)` in order.
    pub entries: Vec<(String, String, i64)>,
    /// Final balance of each of its accounts.
    pub balances: BTreeMap<String, Option<i64>>,
}

/// A generated history kept in memory (small runs: tests).
#[derive(Debug, Clone)]
pub struct BankHistory {
    /// `init` and the client and nemesis ops, indexed from 0 (and the `drain` op an
    /// [`Injection::InFlight`] appends).
    pub body: Vec<Op>,
    /// Every transfer invoked.
    pub transfers: Vec<TransferTruth>,
    /// Final ledger per bank.
    pub ledgers: BTreeMap<String, BankLedger>,
    /// `(transfer id, reason)` of dead-lettered transfers.
    pub dead_letters: Vec<(String, String)>,
    /// Entries per `final-ledger` line.
    pub ledger_chunk: usize,
}

impl BankHistory {
    /// Generates a history in memory.
    pub fn generate(params: &BankParams) -> BankHistory {
        let mut body = Vec::new();
        let mut sim = BankSim::new(params.clone(), true);
        sim.run(&mut |op| body.push(op));
        BankHistory {
            body,
            transfers: sim.truth,
            ledgers: sim.ledgers,
            dead_letters: Vec::new(),
            ledger_chunk: params.ledger_chunk,
        }
    }
    /// The whole history: body, then the `final` lines.
    pub fn ops(&self) -> Vec<Op> {
        let mut ops = self.body.clone();
        ops.extend(final_ops(
            &self.ledgers,
            &self.dead_letters,
            self.ledger_chunk,
            self.body.len() as u64,
        ));
        ops
    }
    /// Index of the first `final` line.
    pub fn final_start(&self) -> u64 {
        self.body.len() as u64
    }
}

/// The `final-ledger` and `dead-letter` lines for `ledgers`, indexed from `start`.
pub fn final_ops(
    ledgers: &BTreeMap<String, BankLedger>,
    dead_letters: &[(String, String)],
    chunk: usize,
    start: u64,
) -> Vec<Op> {
    let mut out = Vec::new();
    let mut index = start;
    let mut push = |f: &str, value: Value| {
        if let Ok(mut op) = Op::new(Process::final_actor(), OpType::Ok, f, &value) {
            op.index = index;
            op.time = Some(index * 1000);
            index += 1;
            out.push(op);
        }
    };
    for (bank, l) in ledgers {
        let chunks: Vec<&[(String, String, i64)]> = l.entries.chunks(chunk.max(1)).collect();
        let n = chunks.len();
        for (i, c) in chunks.into_iter().enumerate() {
            let entries: Vec<Value> = c
                .iter()
                .map(|(t, a, x)| json!({"transfer": t, "account": a, "amount": x}))
                .collect();
            let mut v = json!({"bank": bank, "entries": entries});
            if i + 1 == n {
                v["balances"] = json!(l.balances);
            }
            push("final-ledger", v);
        }
        if n == 0 {
            push(
                "final-ledger",
                json!({"bank": bank, "entries": [], "balances": l.balances}),
            );
        }
    }
    for (t, reason) in dead_letters {
        push("dead-letter", json!({"transfer": t, "reason": reason}));
    }
    out
}

#[derive(Debug, Clone)]
enum Pending {
    Transfer {
        slot: usize,
        from: usize,
        to: usize,
        amount: i64,
    },
    Read,
}

/// The simulation: writes ops to a sink as it goes and keeps the ledgers.
pub struct BankSim {
    p: BankParams,
    rng: SplitMix,
    names: Vec<String>,
    balances: Vec<i64>,
    keep_truth: bool,
    /// Transfer truths (only when kept).
    pub truth: Vec<TransferTruth>,
    /// Final ledger per bank.
    pub ledgers: BTreeMap<String, BankLedger>,
    index: u64,
    next_process: u64,
    next_id: u64,
}

impl BankSim {
    /// A simulation; `keep_truth` keeps a [`TransferTruth`] per transfer.
    pub fn new(p: BankParams, keep_truth: bool) -> BankSim {
        let mut names = Vec::new();
        for bank in ["A", "B"] {
            for i in 0..p.accounts_per_bank.max(1) {
                names.push(format!("{bank}/{i}"));
            }
        }
        let balances = vec![p.initial; names.len()];
        BankSim {
            rng: SplitMix::new(p.seed),
            p,
            names,
            balances,
            keep_truth,
            truth: Vec::new(),
            ledgers: BTreeMap::new(),
            index: 0,
            next_process: 0,
            next_id: 0,
        }
    }

    fn emit(&mut self, sink: &mut dyn FnMut(Op), mut op: Op) -> u64 {
        op.index = self.index;
        op.time = Some(self.index * 1000);
        self.index += 1;
        sink(op);
        self.index - 1
    }

    /// Index the next op will get.
    pub fn next_index(&self) -> u64 {
        self.index
    }

    fn bank(name: &str) -> String {
        name.split('/').next().unwrap_or("A").to_owned()
    }

    fn apply(&mut self, id: &str, from: usize, to: usize, amount: i64) -> bool {
        if self.balances[from] < amount {
            return false;
        }
        self.balances[from] -= amount;
        self.balances[to] += amount;
        let (f, t) = (self.names[from].clone(), self.names[to].clone());
        self.ledgers
            .entry(Self::bank(&f))
            .or_default()
            .entries
            .push((id.to_owned(), f, -amount));
        self.ledgers
            .entry(Self::bank(&t))
            .or_default()
            .entries
            .push((id.to_owned(), t, amount));
        true
    }

    fn read_value(&mut self) -> Value {
        let partial = self.rng.chance(self.p.partial_read_share);
        let mut m = Map::new();
        for (i, n) in self.names.iter().enumerate() {
            if partial && i % 2 == 1 {
                continue;
            }
            m.insert(n.clone(), Value::from(self.balances[i]));
        }
        Value::Object(m)
    }

    /// Writes `init` and about `ops` client ops to `sink`, then fills in the ledgers'
    /// final balances. Crashed clients' invokes stay open.
    pub fn run(&mut self, sink: &mut dyn FnMut(Op)) {
        let init: BTreeMap<&str, i64> = self
            .names
            .iter()
            .map(|n| (n.as_str(), self.p.initial))
            .collect();
        if let Ok(op) = Op::new(
            Process::setup(),
            OpType::Ok,
            "init",
            &json!({ "balances": init }),
        ) {
            self.emit(sink, op);
        }
        for bank in ["A", "B"] {
            self.ledgers.entry(bank.to_owned()).or_default();
        }
        let clients = self.p.clients.max(1) as usize;
        let mut slots: Vec<(u64, Option<(Pending, String)>)> = (0..clients)
            .map(|_| {
                self.next_process += 1;
                (self.next_process - 1, None)
            })
            .collect();
        let n_accounts = self.names.len() as u64;
        while self.index < self.p.ops {
            if self.p.nemesis_every > 0 && self.index % self.p.nemesis_every == 0 {
                let what = if self.rng.chance(0.5) {
                    "partition"
                } else {
                    "heal"
                };
                if let Ok(op) = Op::new(Process::nemesis(), OpType::Info, what, &Value::Null) {
                    self.emit(sink, op);
                }
            }
            let s = self.rng.below(clients as u64) as usize;
            let process = slots[s].0;
            match slots[s].1.take() {
                None => {
                    if self.rng.chance(self.p.read_share) {
                        if let Ok(op) = Op::invoke(Process::Client(process), "read", &Value::Null) {
                            self.emit(sink, op);
                        }
                        slots[s].1 = Some((Pending::Read, String::new()));
                    } else {
                        let from = self.rng.below(n_accounts) as usize;
                        let to = (from + 1 + self.rng.below(n_accounts - 1) as usize)
                            % n_accounts as usize;
                        let amount = 1 + self.rng.below(20) as i64;
                        let id = format!("t{}", self.next_id);
                        self.next_id += 1;
                        let v = json!({"id": id, "from": self.names[from], "to": self.names[to], "amount": amount});
                        let mut slot = usize::MAX;
                        if let Ok(op) = Op::invoke(Process::Client(process), "transfer", &v) {
                            let i = self.emit(sink, op);
                            if self.keep_truth {
                                slot = self.truth.len();
                                self.truth.push(TransferTruth {
                                    id: id.clone(),
                                    from: self.names[from].clone(),
                                    to: self.names[to].clone(),
                                    amount,
                                    outcome: None,
                                    applied: false,
                                    invoke: i,
                                    completion: None,
                                });
                            }
                        }
                        slots[s].1 = Some((
                            Pending::Transfer {
                                slot,
                                from,
                                to,
                                amount,
                            },
                            id,
                        ));
                    }
                }
                Some((pending, id)) => {
                    let r = self.rng.below(1_000_000) as f64 / 1_000_000.0;
                    let crash = r < self.p.crash_share;
                    let info = !crash && r < self.p.crash_share + self.p.info_share;
                    let fail = !crash
                        && !info
                        && r < self.p.crash_share + self.p.info_share + self.p.fail_share;
                    match pending {
                        Pending::Read => {
                            if crash {
                                // never returns
                            } else {
                                let (t, v) = if info {
                                    (OpType::Info, Value::Null)
                                } else if fail {
                                    (OpType::Fail, Value::Null)
                                } else {
                                    (OpType::Ok, self.read_value())
                                };
                                if let Ok(op) = Op::new(Process::Client(process), t, "read", &v) {
                                    self.emit(sink, op);
                                }
                            }
                        }
                        Pending::Transfer {
                            slot,
                            from,
                            to,
                            amount,
                        } => {
                            let (applied, t) = if crash || info {
                                let applied =
                                    self.rng.chance(0.5) && self.apply(&id, from, to, amount);
                                (applied, if crash { None } else { Some(OpType::Info) })
                            } else if fail {
                                (false, Some(OpType::Fail))
                            } else if self.apply(&id, from, to, amount) {
                                (true, Some(OpType::Ok))
                            } else {
                                (false, Some(OpType::Fail))
                            };
                            let mut completion = None;
                            if let Some(t) = t {
                                let v = json!({"id": id, "from": self.names[from], "to": self.names[to], "amount": amount});
                                if let Ok(op) = Op::new(Process::Client(process), t, "transfer", &v)
                                {
                                    completion = Some(self.emit(sink, op));
                                }
                            }
                            if let Some(tr) = self.truth.get_mut(slot) {
                                tr.outcome = t;
                                tr.applied = applied;
                                tr.completion = completion;
                            }
                        }
                    }
                    if crash || info {
                        slots[s].0 = self.next_process;
                        self.next_process += 1;
                    }
                }
            }
        }
        for (i, n) in self.names.iter().enumerate() {
            self.ledgers
                .entry(Self::bank(n))
                .or_default()
                .balances
                .insert(n.clone(), Some(self.balances[i]));
        }
    }
}

/// An anomaly [`inject`] can plant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    /// Drop a credit entry.
    Lost,
    /// Repeat a credit entry.
    Duplicated,
    /// Drop a debit entry.
    Phantom,
    /// Turn an applied transfer's `ok` into `fail`.
    FailedApplied,
    /// Add entries for a transfer never invoked.
    Unexpected,
    /// Change a credit's amount.
    AmountMismatch,
    /// Change a final balance.
    LedgerMismatch,
    /// Change one balance of a read of every account.
    WrongTotal,
    /// Make a read show a negative balance (total kept).
    Negative,
    /// Add an account a read should not know.
    UnexpectedKey,
    /// Make a read's balance `null`.
    NullBalance,
    /// Drop a credit entry and dead-letter the transfer.
    Parked,
    /// Drop a credit entry and report that the system did not drain (a `drain` op at
    /// the end of the body, before the final lines): `in-flight`, not `lost`. It turns
    /// any other dropped credit into `in-flight` too.
    InFlight,
}

impl Injection {
    /// Every kind.
    pub const ALL: [Injection; 13] = [
        Injection::Lost,
        Injection::Duplicated,
        Injection::Phantom,
        Injection::FailedApplied,
        Injection::Unexpected,
        Injection::AmountMismatch,
        Injection::LedgerMismatch,
        Injection::WrongTotal,
        Injection::Negative,
        Injection::UnexpectedKey,
        Injection::NullBalance,
        Injection::Parked,
        Injection::InFlight,
    ];
}

/// What a finding is about, to compare expected and found findings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    /// A transfer id.
    Transfer(String),
    /// An account.
    Account(String),
    /// A read, by op index.
    Read(u64),
    /// The final balances as a whole.
    FinalTotal,
}

fn final_balance(h: &BankHistory, account: &str) -> i64 {
    let bank = BankSim::bank(account);
    h.ledgers
        .get(&bank)
        .and_then(|l| l.balances.get(account).copied().flatten())
        .unwrap_or(0)
}

fn adjust(h: &mut BankHistory, account: &str, delta: i64) {
    let bank = BankSim::bank(account);
    if let Some(Some(b)) = h
        .ledgers
        .get_mut(&bank)
        .and_then(|l| l.balances.get_mut(account))
    {
        *b += delta;
    }
}

fn remove_entry(h: &mut BankHistory, id: &str, account: &str) -> Option<(String, String, i64)> {
    let l = h.ledgers.get_mut(&BankSim::bank(account))?;
    let pos = l
        .entries
        .iter()
        .position(|(t, a, _)| t == id && a == account)?;
    Some(l.entries.remove(pos))
}

/// Plants one anomaly of `kind` (choices from `seed`) and returns the findings a
/// correct checker must report, as `(anomaly name, subject)`; `None` when the history
/// has nothing to plant it in (e.g. no applied transfer).
pub fn inject(h: &mut BankHistory, kind: Injection, seed: u64) -> Option<Vec<(String, Subject)>> {
    let mut rng = SplitMix::new(seed);
    let pick = |rng: &mut SplitMix, v: Vec<usize>| -> Option<usize> {
        if v.is_empty() {
            None
        } else {
            Some(v[rng.below(v.len() as u64) as usize])
        }
    };
    let applied: Vec<usize> = (0..h.transfers.len())
        .filter(|&i| h.transfers[i].applied)
        .collect();
    let e = |k: &str, s: Subject| (k.to_owned(), s);
    let n_accounts: usize = h.ledgers.values().map(|l| l.balances.len()).sum();
    let covering_reads: Vec<usize> = (0..h.body.len())
        .filter(|&i| {
            let op = &h.body[i];
            op.f == "read"
                && op.op_type == OpType::Ok
                && op
                    .value_as::<Map<String, Value>>()
                    .map(|m| m.len() >= 2 && m.len() == n_accounts)
                    .unwrap_or(false)
        })
        .collect();
    let edit_read = |h: &mut BankHistory, i: usize, f: &mut dyn FnMut(&mut Map<String, Value>)| {
        let mut m: Map<String, Value> = h.body[i].value_as().ok()?;
        f(&mut m);
        h.body[i].value = serde_json::value::to_raw_value(&m).ok()?;
        Some(h.body[i].index)
    };
    match kind {
        Injection::Lost | Injection::Parked | Injection::InFlight => {
            let cands: Vec<usize> = applied
                .iter()
                .copied()
                .filter(|&i| final_balance(h, &h.transfers[i].to) >= h.transfers[i].amount)
                .collect();
            let t = h.transfers[pick(&mut rng, cands)?].clone();
            remove_entry(h, &t.id, &t.to)?;
            adjust(h, &t.to, -t.amount);
            if kind == Injection::Parked {
                h.dead_letters
                    .push((t.id.clone(), "poison message".to_owned()));
                Some(vec![e("parked", Subject::Transfer(t.id))])
            } else if kind == Injection::InFlight {
                let backlog = json!({"outbox": 0, "lag": 1, "producing": 0});
                let value = json!({"drained": false, "waited_s": 30.0, "backlog": backlog});
                let mut op = Op::new(Process::final_actor(), OpType::Ok, "drain", &value).ok()?;
                let index = h.body.len() as u64;
                op.index = index;
                op.time = Some(index * 1000);
                h.body.push(op);
                Some(vec![e("in-flight", Subject::Transfer(t.id))])
            } else {
                Some(vec![
                    e("lost", Subject::Transfer(t.id)),
                    e("wrong-total", Subject::FinalTotal),
                ])
            }
        }
        Injection::Duplicated => {
            let t = h.transfers[pick(&mut rng, applied)?].clone();
            let l = h.ledgers.get_mut(&BankSim::bank(&t.to))?;
            l.entries.push((t.id.clone(), t.to.clone(), t.amount));
            adjust(h, &t.to, t.amount);
            Some(vec![
                e("duplicated", Subject::Transfer(t.id)),
                e("wrong-total", Subject::FinalTotal),
            ])
        }
        Injection::Phantom => {
            let t = h.transfers[pick(&mut rng, applied)?].clone();
            remove_entry(h, &t.id, &t.from)?;
            adjust(h, &t.from, t.amount);
            Some(vec![
                e("phantom", Subject::Transfer(t.id)),
                e("wrong-total", Subject::FinalTotal),
            ])
        }
        Injection::FailedApplied => {
            let cands: Vec<usize> = applied
                .iter()
                .copied()
                .filter(|&i| h.transfers[i].outcome == Some(OpType::Ok))
                .collect();
            let t = h.transfers[pick(&mut rng, cands)?].clone();
            let c = t.completion? as usize;
            h.body[c].op_type = OpType::Fail;
            Some(vec![e("failed-applied", Subject::Transfer(t.id))])
        }
        Injection::Unexpected => {
            let names: Vec<String> = h
                .ledgers
                .values()
                .flat_map(|l| l.balances.keys().cloned())
                .collect();
            let rich: Vec<usize> = (0..names.len())
                .filter(|&i| final_balance(h, &names[i]) >= 1)
                .collect();
            let from = names[pick(&mut rng, rich)?].clone();
            let to = names.iter().find(|n| **n != from)?.clone();
            let id = "x-injected".to_owned();
            h.ledgers
                .get_mut(&BankSim::bank(&from))?
                .entries
                .push((id.clone(), from.clone(), -1));
            h.ledgers
                .get_mut(&BankSim::bank(&to))?
                .entries
                .push((id.clone(), to.clone(), 1));
            adjust(h, &from, -1);
            adjust(h, &to, 1);
            Some(vec![e("unexpected", Subject::Transfer(id))])
        }
        Injection::AmountMismatch => {
            let t = h.transfers[pick(&mut rng, applied)?].clone();
            let l = h.ledgers.get_mut(&BankSim::bank(&t.to))?;
            let entry = l
                .entries
                .iter_mut()
                .find(|(id, a, _)| *id == t.id && *a == t.to)?;
            entry.2 += 1;
            adjust(h, &t.to, 1);
            Some(vec![
                e("amount-mismatch", Subject::Transfer(t.id)),
                e("wrong-total", Subject::FinalTotal),
            ])
        }
        Injection::LedgerMismatch => {
            let names: Vec<String> = h
                .ledgers
                .values()
                .flat_map(|l| l.balances.keys().cloned())
                .collect();
            let a = names[rng.below(names.len() as u64) as usize].clone();
            adjust(h, &a, 1);
            Some(vec![
                e("ledger-mismatch", Subject::Account(a)),
                e("wrong-total", Subject::FinalTotal),
            ])
        }
        Injection::WrongTotal => {
            let i = pick(&mut rng, covering_reads)?;
            let idx = edit_read(h, i, &mut |m| {
                if let Some(v) = m.values_mut().next() {
                    *v = Value::from(v.as_i64().unwrap_or(0) + 1);
                }
            })?;
            Some(vec![e("wrong-total", Subject::Read(idx))])
        }
        Injection::Negative => {
            let i = pick(&mut rng, covering_reads)?;
            let idx = edit_read(h, i, &mut |m| {
                let keys: Vec<String> = m.keys().cloned().collect();
                let x = m[&keys[0]].as_i64().unwrap_or(0);
                m.insert(keys[0].clone(), Value::from(-1));
                let y = m[&keys[1]].as_i64().unwrap_or(0);
                m.insert(keys[1].clone(), Value::from(y + x + 1));
            })?;
            Some(vec![e("negative", Subject::Read(idx))])
        }
        Injection::UnexpectedKey => {
            let i = pick(&mut rng, covering_reads)?;
            let idx = edit_read(h, i, &mut |m| {
                m.insert("Z/99".to_owned(), Value::from(0));
            })?;
            Some(vec![e("unexpected-key", Subject::Read(idx))])
        }
        Injection::NullBalance => {
            let i = pick(&mut rng, covering_reads)?;
            let idx = edit_read(h, i, &mut |m| {
                if let Some(v) = m.values_mut().next() {
                    *v = Value::Null;
                }
            })?;
            Some(vec![e("null-balance", Subject::Read(idx))])
        }
    }
}
