//! The two banks: bank A on PostgreSQL, bank B on MariaDB, with the same tables.
//!
//! * `accounts(id, balance)` — a balance never goes below zero: every debit is a
//!   conditional `UPDATE … WHERE balance >= amount`, and a `CHECK` backs it up;
//! * `ledger(transfer, account, amount, at_us)` — one row per applied side of a transfer,
//!   signed, with its time in microseconds since the epoch (for debit→credit latency);
//!   deliberately without a unique key, so a scheme that applies a side twice shows it;
//! * `outbox` (scheme 1), `dedup` (consumed message ids), `txstate` (scheme 2) and
//!   `dead_letters` (messages parked for manual intervention).
//!
//! The same SQL runs on both engines: statements are written with `?` placeholders and
//! a `NOW_US` token, and rewritten for PostgreSQL (`$1`, `$2`, …).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// A transfer as the history and the broker messages spell it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// Unique within the run.
    pub id: u64,
    /// The debited account, e.g. `A/3`.
    pub from: String,
    /// The credited account, e.g. `B/0`.
    pub to: String,
    /// How much moves; positive.
    pub amount: i64,
}

impl Transfer {
    /// The bank of the debited account (`A` or `B`).
    pub fn from_bank(&self) -> BankId {
        BankId::of(&self.from)
    }

    /// The bank of the credited account.
    pub fn to_bank(&self) -> BankId {
        BankId::of(&self.to)
    }

    /// True when both accounts are in the same bank (no message needed).
    pub fn is_local(&self) -> bool {
        self.from_bank() == self.to_bank()
    }

    /// The id of the message that carries this transfer's credit.
    pub fn message_id(&self) -> String {
        format!("t{}", self.id)
    }
}

/// One of the two banks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BankId {
    /// Bank A, on PostgreSQL.
    A,
    /// Bank B, on MariaDB.
    B,
}

impl BankId {
    /// Both banks.
    pub const ALL: [BankId; 2] = [BankId::A, BankId::B];

    /// The bank an account belongs to: `B/…` is bank B, anything else bank A.
    pub fn of(account: &str) -> BankId {
        if account.starts_with("B/") {
            BankId::B
        } else {
            BankId::A
        }
    }

    /// `A` or `B`.
    pub fn name(self) -> &'static str {
        match self {
            BankId::A => "A",
            BankId::B => "B",
        }
    }

    /// The other bank.
    pub fn other(self) -> BankId {
        match self {
            BankId::A => BankId::B,
            BankId::B => BankId::A,
        }
    }

    /// The topic that carries credits into this bank.
    pub fn credit_topic(self) -> &'static str {
        match self {
            BankId::A => "credits-a",
            BankId::B => "credits-b",
        }
    }

    /// Account `n` of this bank, e.g. `A/3`.
    pub fn account(self, n: usize) -> String {
        format!("{}/{n}", self.name())
    }
}

/// One ledger row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The transfer id.
    pub transfer: u64,
    /// The account.
    pub account: String,
    /// Signed: negative for a debit.
    pub amount: i64,
    /// When it was written, microseconds since the epoch (not part of the history).
    #[serde(skip)]
    pub at_us: i64,
    /// For a credit from a Kafka topic: the record it was credited from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_from: Option<ReadFrom>,
}

/// The Kafka record a credit was made from (the history's ledger entry carries it, so
/// the checker can tell a credit read from an aborted transaction).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadFrom {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

/// A bank's ledger and balances, read after the run: the value of a `final-ledger` op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalLedger {
    /// `A` or `B`.
    pub bank: String,
    /// Every ledger row.
    pub entries: Vec<Entry>,
    /// Every account's balance.
    pub balances: BTreeMap<String, i64>,
}

/// A message parked for manual intervention: the value of a `dead-letter` op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The transfer the message carried.
    pub transfer: u64,
    /// Why it was parked.
    pub reason: String,
}

/// What a debit does besides moving money, inside the same transaction.
pub enum DebitExtra<'a> {
    /// Nothing (used by tests and by schemes that only debit).
    Nothing,
    /// Insert an outbox row carrying `payload` for `topic` (scheme 1).
    Outbox {
        /// The topic the relay will publish to.
        topic: &'a str,
        /// The message.
        payload: &'a str,
    },
    /// Insert a transaction-state row `committed` (scheme 2's check-back answer).
    TxState,
    /// Run this (the dual-write publish) after the debit and before the commit; an
    /// error rolls the transaction back.
    Before(Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>),
}

/// How a debit (or a local transfer) ended.
#[derive(Debug)]
pub enum Applied {
    /// Committed.
    Committed,
    /// Refused: the balance is too low. Certainly not applied.
    Insufficient,
    /// Failed before the commit was sent: certainly not applied.
    Failed(anyhow::Error),
    /// The commit was sent but its answer is unknown: maybe applied.
    Unknown(anyhow::Error),
}

/// How a credit ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Credited {
    /// Applied now.
    Applied,
    /// The dedup table already held the message id: applied before, skipped.
    Duplicate,
}

/// A credit that can never succeed (e.g. an unknown account): park the message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Permanent(pub String);

#[derive(Clone, Debug)]
enum Pool {
    Pg(sqlx::PgPool),
    My(sqlx::MySqlPool),
}

/// Rewrites `?` placeholders to PostgreSQL's `$n` and `NOW_US` to each engine's clock.
fn pg(sql: &str) -> String {
    let sql = sql.replace(
        "NOW_US",
        "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)",
    );
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

fn my(sql: &str) -> String {
    sql.replace("NOW_US", "CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)")
}

/// Runs `$body` with `$p` bound to the engine's pool and `$q` to its SQL rewriter; the
/// body is the same text for both engines.
macro_rules! on_pool {
    ($pool:expr, |$p:ident, $q:ident| $body:expr) => {
        match $pool {
            Pool::Pg($p) => {
                let $q = pg;
                $body
            }
            Pool::My($p) => {
                let $q = my;
                $body
            }
        }
    };
}

/// A connection pool to one bank's database.
#[derive(Clone, Debug)]
pub struct Bank {
    id: BankId,
    pool: Pool,
}

/// How long a pooled connection may take to be handed out (a paused database must not
/// hang a client for ever).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long the database lets a session sit idle inside a transaction before it ends
/// the session, rolling the transaction back, in seconds. A client cut off by a
/// partition leaves its transaction open on the server, holding its account rows'
/// locks, until the server learns the connection is gone: after a consumer node was cut
/// off for 5 s, its next credits waited for those locks for 10 s and more after the heal
/// (and, once in CI, the consumer credited nothing for 150 s). Above the longest a
/// scheme keeps a transaction idle on purpose (a relay's or dual-write's publish, at most
/// 10 s).
pub const IDLE_IN_TRANSACTION_S: u64 = 20;

/// Every PostgreSQL session of a bank's pool: [`IDLE_IN_TRANSACTION_S`].
const PG_SESSION: &str = "SET idle_in_transaction_session_timeout = '20s'";

/// Every MariaDB session of a bank's pool: [`IDLE_IN_TRANSACTION_S`], and a lock wait
/// given up after 10 s (a transient failure the caller retries) instead of 50.
const MY_SESSION: &str =
    "SET SESSION idle_transaction_timeout = 20, SESSION innodb_lock_wait_timeout = 10";

impl Bank {
    /// A pool for bank `id` at `url` (`postgres://…` or `mysql://…`); connects lazily,
    /// so it can be made while the database is down. Each session ends a transaction
    /// left idle for [`IDLE_IN_TRANSACTION_S`].
    pub fn connect(id: BankId, url: &str, max_connections: u32) -> Result<Bank> {
        let pool = if url.starts_with("postgres") {
            Pool::Pg(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            use sqlx::Executor as _;
                            conn.execute(PG_SESSION).await.map(drop)
                        })
                    })
                    .connect_lazy(url)
                    .with_context(|| format!("bank {}: bad database URL", id.name()))?,
            )
        } else if url.starts_with("mysql") || url.starts_with("mariadb") {
            Pool::My(
                sqlx::mysql::MySqlPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            use sqlx::Executor as _;
                            conn.execute(MY_SESSION).await.map(drop)
                        })
                    })
                    .connect_lazy(url)
                    .with_context(|| format!("bank {}: bad database URL", id.name()))?,
            )
        } else {
            bail!("bank {}: unsupported database URL scheme", id.name());
        };
        Ok(Bank { id, pool })
    }

    /// Which bank this is.
    pub fn id(&self) -> BankId {
        self.id
    }

    /// Creates the tables (idempotent).
    pub async fn create_schema(&self) -> Result<()> {
        let (auto, text) = match self.pool {
            Pool::Pg(_) => ("BIGSERIAL PRIMARY KEY", "TEXT"),
            Pool::My(_) => ("BIGINT AUTO_INCREMENT PRIMARY KEY", "TEXT"),
        };
        let statements = [
            "CREATE TABLE IF NOT EXISTS accounts (id VARCHAR(32) PRIMARY KEY, \
             balance BIGINT NOT NULL, CHECK (balance >= 0))"
                .to_string(),
            format!(
                "CREATE TABLE IF NOT EXISTS ledger (seq {auto}, transfer BIGINT NOT NULL, \
                 account VARCHAR(32) NOT NULL, amount BIGINT NOT NULL, at_us BIGINT NOT NULL, \
                 src_topic VARCHAR(64) NULL, src_partition INT NULL, src_offset BIGINT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS outbox (id {auto}, transfer BIGINT NOT NULL, \
                 topic VARCHAR(64) NOT NULL, payload {text} NOT NULL, \
                 sent BOOLEAN NOT NULL DEFAULT FALSE, created_us BIGINT NOT NULL)"
            ),
            "CREATE INDEX outbox_unsent ON outbox (sent, id)".to_string(),
            "CREATE TABLE IF NOT EXISTS dedup (msg_id VARCHAR(64) PRIMARY KEY, \
             at_us BIGINT NOT NULL)"
                .to_string(),
            "CREATE TABLE IF NOT EXISTS txstate (transfer BIGINT PRIMARY KEY, \
             state VARCHAR(16) NOT NULL)"
                .to_string(),
            format!(
                "CREATE TABLE IF NOT EXISTS dead_letters (transfer BIGINT PRIMARY KEY, \
                 reason {text} NOT NULL, at_us BIGINT NOT NULL)"
            ),
        ];
        on_pool!(&self.pool, |p, _q| {
            for s in &statements {
                if let Err(e) = sqlx::query(s).execute(p).await {
                    // Only the index has no IF NOT EXISTS on both engines.
                    if !s.starts_with("CREATE INDEX") {
                        return Err(e).with_context(|| format!("bank {}: {s}", self.id.name()));
                    }
                }
            }
        });
        Ok(())
    }

    /// Inserts the accounts of this bank with their opening balances (accounts of the
    /// other bank in `balances` are ignored).
    pub async fn seed(&self, balances: &BTreeMap<String, i64>) -> Result<()> {
        on_pool!(&self.pool, |p, q| {
            let mut tx = p.begin().await?;
            for (account, balance) in balances {
                if BankId::of(account) != self.id {
                    continue;
                }
                sqlx::query(&q("INSERT INTO accounts (id, balance) VALUES (?, ?)"))
                    .bind(account)
                    .bind(*balance)
                    .execute(&mut *tx)
                    .await
                    .with_context(|| format!("seeding {account}"))?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Every balance, read in one statement (one snapshot).
    pub async fn read(&self) -> Result<BTreeMap<String, i64>> {
        let mut out = BTreeMap::new();
        on_pool!(&self.pool, |p, _q| {
            for row in sqlx::query("SELECT id, balance FROM accounts")
                .fetch_all(p)
                .await?
            {
                out.insert(row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?);
            }
        });
        Ok(out)
    }

    /// A transfer between two accounts of this bank, in one transaction.
    pub async fn local_transfer(&self, t: &Transfer) -> Applied {
        on_pool!(&self.pool, |p, q| {
            let mut tx = match p.begin().await {
                Ok(tx) => tx,
                Err(e) => return Applied::Failed(e.into()),
            };
            // The ledger rows first, the accounts' rows last: their locks are held only
            // for the updates and the commit.
            for (account, amount) in [(&t.from, -t.amount), (&t.to, t.amount)] {
                if let Err(e) = sqlx::query(&q(
                    "INSERT INTO ledger (transfer, account, amount, at_us) VALUES (?, ?, ?, NOW_US)",
                ))
                .bind(t.id as i64)
                .bind(account)
                .bind(amount)
                .execute(&mut *tx)
                .await
                {
                    return Applied::Failed(e.into());
                }
            }
            // Lock the two rows in a fixed order so that opposite transfers do not
            // deadlock.
            let debit_first = t.from <= t.to;
            for step in 0..2 {
                let debit = (step == 0) == debit_first;
                let r = if debit {
                    sqlx::query(&q(
                        "UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance >= ?",
                    ))
                    .bind(t.amount)
                    .bind(&t.from)
                    .bind(t.amount)
                    .execute(&mut *tx)
                    .await
                } else {
                    sqlx::query(&q("UPDATE accounts SET balance = balance + ? WHERE id = ?"))
                        .bind(t.amount)
                        .bind(&t.to)
                        .execute(&mut *tx)
                        .await
                };
                match r {
                    Ok(r) if r.rows_affected() == 1 => {}
                    Ok(_) if debit => return Applied::Insufficient,
                    Ok(_) => {
                        return Applied::Failed(anyhow::anyhow!("no account {}", t.to));
                    }
                    Err(e) => return Applied::Failed(e.into()),
                }
            }
            match tx.commit().await {
                Ok(()) => Applied::Committed,
                Err(e) => Applied::Unknown(e.into()),
            }
        })
    }

    /// The sending side of a cross-bank transfer: debit `t.from` and write its ledger
    /// row, plus `extra`, in one transaction. The rows are inserted first and the
    /// account's row is updated last, so its lock is held only for the update and the
    /// commit (a refused debit rolls the inserts back); a [`DebitExtra::Before`] still
    /// runs after the debit, so only debits that succeeded reach it.
    pub async fn debit(&self, t: &Transfer, extra: DebitExtra<'_>) -> Applied {
        on_pool!(&self.pool, |p, q| {
            let mut tx = match p.begin().await {
                Ok(tx) => tx,
                Err(e) => return Applied::Failed(e.into()),
            };
            if let Err(e) = sqlx::query(&q(
                "INSERT INTO ledger (transfer, account, amount, at_us) VALUES (?, ?, ?, NOW_US)",
            ))
            .bind(t.id as i64)
            .bind(&t.from)
            .bind(-t.amount)
            .execute(&mut *tx)
            .await
            {
                return Applied::Failed(e.into());
            }
            let (row, after) = match extra {
                DebitExtra::Nothing => (Ok(()), None),
                DebitExtra::Outbox { topic, payload } => (
                    sqlx::query(&q(
                        "INSERT INTO outbox (transfer, topic, payload, created_us) VALUES (?, ?, ?, NOW_US)",
                    ))
                    .bind(t.id as i64)
                    .bind(topic)
                    .bind(payload)
                    .execute(&mut *tx)
                    .await
                    .map(drop)
                    .map_err(anyhow::Error::from),
                    None,
                ),
                DebitExtra::TxState => (
                    sqlx::query(&q(
                        "INSERT INTO txstate (transfer, state) VALUES (?, 'committed')",
                    ))
                    .bind(t.id as i64)
                    .execute(&mut *tx)
                    .await
                    .map(drop)
                    .map_err(anyhow::Error::from),
                    None,
                ),
                DebitExtra::Before(fut) => (Ok(()), Some(fut)),
            };
            if let Err(e) = row {
                return Applied::Failed(e);
            }
            match sqlx::query(&q(
                "UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance >= ?",
            ))
            .bind(t.amount)
            .bind(&t.from)
            .bind(t.amount)
            .execute(&mut *tx)
            .await
            {
                Ok(r) if r.rows_affected() == 1 => {}
                Ok(_) => return Applied::Insufficient,
                Err(e) => return Applied::Failed(e.into()),
            }
            if let Some(fut) = after {
                if let Err(e) = fut.await {
                    return Applied::Failed(e);
                }
            }
            match tx.commit().await {
                Ok(()) => Applied::Committed,
                Err(e) => Applied::Unknown(e.into()),
            }
        })
    }

    /// The receiving side: credit `t.to` and write its ledger row in one transaction;
    /// with `dedup`, also record the message id, and skip the credit if it was already
    /// recorded. An unknown account is [`Permanent`].
    pub async fn credit(&self, t: &Transfer, dedup: bool) -> Result<Credited> {
        self.credit_from(t, None, dedup).await
    }

    /// [`Bank::credit`], recording in the ledger row the Kafka record it was read from.
    pub async fn credit_from(
        &self,
        t: &Transfer,
        from: Option<&ReadFrom>,
        dedup: bool,
    ) -> Result<Credited> {
        let mut done = self.credit_all_from(&[(t, from)], dedup).await?;
        done.pop().context("a credit without a result")
    }

    /// Credits several transfers in one transaction (one commit, so one log flush, for
    /// the lot), each as [`Bank::credit`] does; any error rolls them all back.
    pub async fn credit_all(&self, ts: &[Transfer], dedup: bool) -> Result<Vec<Credited>> {
        let with: Vec<(&Transfer, Option<&ReadFrom>)> = ts.iter().map(|t| (t, None)).collect();
        self.credit_all_from(&with, dedup).await
    }

    /// [`Bank::credit_all`], each ledger row recording the record it was read from.
    ///
    /// A batch is a handful of statements whatever its size: with `dedup`, one `SELECT`
    /// of the message ids already recorded and one multi-row `INSERT` of the new ones (a
    /// concurrent consumer that records one of them first makes the insert fail and the
    /// whole batch roll back, so nothing is credited twice); then one multi-row `INSERT`
    /// of the ledger rows; then each account credited is updated once, by the sum of its
    /// credits, in the accounts' order: the account rows, which the workload's own
    /// transfers contend for, stay locked only for the last statements of the
    /// transaction, always taken in the same order (no deadlock between two batches, or
    /// with a transfer that locks in that order too). A message id twice in one batch
    /// is credited once.
    pub async fn credit_all_from(
        &self,
        ts: &[(&Transfer, Option<&ReadFrom>)],
        dedup: bool,
    ) -> Result<Vec<Credited>> {
        if ts.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = ts.iter().map(|(t, _)| t.message_id()).collect();
        let list = |n: usize, one: &str| vec![one; n].join(", ");
        on_pool!(&self.pool, |p, q| {
            let mut tx = p.begin().await?;
            // Which messages are new: not recorded before, and not earlier in this batch.
            let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
            if dedup {
                let sql = format!(
                    "SELECT msg_id FROM dedup WHERE msg_id IN ({})",
                    list(ids.len(), "?")
                );
                let sql = q(&sql);
                let mut query = sqlx::query_scalar::<_, String>(&sql);
                for id in &ids {
                    query = query.bind(id);
                }
                seen.extend(query.fetch_all(&mut *tx).await?);
            }
            let mut done = Vec::with_capacity(ts.len());
            let mut fresh = Vec::with_capacity(ts.len());
            for (i, &(t, from)) in ts.iter().enumerate() {
                if dedup && !seen.insert(ids[i].clone()) {
                    done.push(Credited::Duplicate);
                } else {
                    done.push(Credited::Applied);
                    fresh.push((i, t, from));
                }
            }
            if fresh.is_empty() {
                tx.commit().await?;
                return Ok(done);
            }
            if dedup {
                let sql = format!(
                    "INSERT INTO dedup (msg_id, at_us) VALUES {}",
                    list(fresh.len(), "(?, NOW_US)")
                );
                let sql = q(&sql);
                let mut query = sqlx::query(&sql);
                for (i, _, _) in &fresh {
                    query = query.bind(&ids[*i]);
                }
                query.execute(&mut *tx).await?;
            }
            let sql = format!(
                "INSERT INTO ledger (transfer, account, amount, at_us, src_topic, \
                 src_partition, src_offset) VALUES {}",
                list(fresh.len(), "(?, ?, ?, NOW_US, ?, ?, ?)")
            );
            let sql = q(&sql);
            let mut query = sqlx::query(&sql);
            let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
            for &(_, t, from) in &fresh {
                query = query
                    .bind(t.id as i64)
                    .bind(&t.to)
                    .bind(t.amount)
                    .bind(from.map(|f| f.topic.clone()))
                    .bind(from.map(|f| f.partition))
                    .bind(from.map(|f| f.offset));
                *sums.entry(t.to.as_str()).or_default() += t.amount;
            }
            query.execute(&mut *tx).await?;
            for (account, sum) in &sums {
                let r = sqlx::query(&q("UPDATE accounts SET balance = balance + ? WHERE id = ?"))
                    .bind(*sum)
                    .bind(*account)
                    .execute(&mut *tx)
                    .await?;
                if r.rows_affected() != 1 {
                    return Err(Permanent(format!(
                        "no account {account} in bank {}",
                        self.id.name()
                    ))
                    .into());
                }
            }
            tx.commit().await?;
            Ok(done)
        })
    }

    /// Up to `limit` unsent outbox rows, locked (`FOR UPDATE SKIP LOCKED`) in a
    /// transaction that `publish` runs inside: when it returns `Ok`, the rows it was
    /// given are marked sent and the transaction commits; otherwise it rolls back and the
    /// rows stay for the next poll. Returns how many rows were sent.
    pub async fn relay_batch<F, Fut>(&self, limit: i64, publish: F) -> Result<usize>
    where
        F: FnOnce(Vec<OutboxRow>) -> Fut + Send,
        Fut: Future<Output = Result<()>> + Send,
    {
        on_pool!(&self.pool, |p, q| {
            let mut tx = p.begin().await?;
            let rows = sqlx::query(&q(
                "SELECT id, topic, payload FROM outbox WHERE sent = FALSE ORDER BY id LIMIT ? \
                 FOR UPDATE SKIP LOCKED",
            ))
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            let mut batch = Vec::with_capacity(rows.len());
            for row in rows {
                batch.push(OutboxRow {
                    id: row.try_get(0)?,
                    topic: row.try_get(1)?,
                    payload: row.try_get(2)?,
                });
            }
            if batch.is_empty() {
                tx.commit().await?;
                return Ok(0);
            }
            let ids: Vec<i64> = batch.iter().map(|r| r.id).collect();
            publish(batch).await?;
            let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            sqlx::query(&format!(
                "UPDATE outbox SET sent = TRUE WHERE id IN ({list})"
            ))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(ids.len())
        })
    }

    /// Outbox rows not yet marked sent.
    pub async fn unsent(&self) -> Result<i64> {
        on_pool!(&self.pool, |p, _q| {
            Ok(
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox WHERE sent = FALSE")
                    .fetch_one(p)
                    .await?,
            )
        })
    }

    /// Rows in one of the scheme tables (for drain checks).
    pub async fn count(&self, table: Table) -> Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM {}", table.name());
        on_pool!(&self.pool, |p, _q| {
            Ok(sqlx::query_scalar::<_, i64>(&sql).fetch_one(p).await?)
        })
    }

    /// The transfer ids in one column of a scheme table, e.g. `transfer` of `txstate`
    /// (for drain checks that must not rely on the dedup table, which is empty with
    /// dedup off).
    pub async fn transfer_ids(&self, table: Table) -> Result<std::collections::HashSet<u64>> {
        let sql = match table {
            // Credits: the positive ledger rows.
            Table::Ledger => "SELECT DISTINCT transfer FROM ledger WHERE amount > 0".to_string(),
            Table::Dedup => anyhow::bail!("the dedup table holds message ids, not transfers"),
            other => format!("SELECT transfer FROM {}", other.name()),
        };
        on_pool!(&self.pool, |p, _q| {
            let ids: Vec<i64> = sqlx::query_scalar(&sql).fetch_all(p).await?;
            Ok(ids.into_iter().map(|i| i as u64).collect())
        })
    }

    /// The transaction state recorded for a transfer (`committed`), if any.
    pub async fn tx_state(&self, transfer: u64) -> Result<Option<String>> {
        on_pool!(&self.pool, |p, q| {
            Ok(
                sqlx::query_scalar::<_, String>(&q("SELECT state FROM txstate WHERE transfer = ?"))
                    .bind(transfer as i64)
                    .fetch_optional(p)
                    .await?,
            )
        })
    }

    /// Parks a message for manual intervention (idempotent per transfer).
    pub async fn park(&self, letter: &DeadLetter) -> Result<()> {
        on_pool!(&self.pool, |p, q| {
            let sql = match self.pool {
                Pool::Pg(_) => {
                    "INSERT INTO dead_letters (transfer, reason, at_us) VALUES (?, ?, NOW_US) \
                     ON CONFLICT DO NOTHING"
                }
                Pool::My(_) => {
                    "INSERT IGNORE INTO dead_letters (transfer, reason, at_us) VALUES (?, ?, NOW_US)"
                }
            };
            sqlx::query(&q(sql))
                .bind(letter.transfer as i64)
                .bind(&letter.reason)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// The parked messages.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        let mut out = Vec::new();
        on_pool!(&self.pool, |p, _q| {
            for row in sqlx::query("SELECT transfer, reason FROM dead_letters ORDER BY transfer")
                .fetch_all(p)
                .await?
            {
                out.push(DeadLetter {
                    transfer: row.try_get::<i64, _>(0)? as u64,
                    reason: row.try_get(1)?,
                });
            }
        });
        Ok(out)
    }

    /// The whole ledger and every balance, for the `final-ledger` op.
    pub async fn final_ledger(&self) -> Result<FinalLedger> {
        let mut entries = Vec::new();
        on_pool!(&self.pool, |p, _q| {
            for row in sqlx::query(
                "SELECT transfer, account, amount, at_us, src_topic, src_partition, \
                     src_offset FROM ledger ORDER BY seq",
            )
            .fetch_all(p)
            .await?
            {
                let topic: Option<String> = row.try_get(4)?;
                let partition: Option<i32> = row.try_get(5)?;
                let offset: Option<i64> = row.try_get(6)?;
                entries.push(Entry {
                    transfer: row.try_get::<i64, _>(0)? as u64,
                    account: row.try_get(1)?,
                    amount: row.try_get(2)?,
                    at_us: row.try_get(3)?,
                    read_from: match (topic, partition, offset) {
                        (Some(topic), Some(partition), Some(offset)) => Some(ReadFrom {
                            topic,
                            partition,
                            offset,
                        }),
                        _ => None,
                    },
                });
            }
        });
        Ok(FinalLedger {
            bank: self.id.name().to_string(),
            entries,
            balances: self.read().await?,
        })
    }

    /// Closes the pool.
    pub async fn close(&self) {
        on_pool!(&self.pool, |p, _q| p.close().await)
    }
}

/// The scheme tables whose rows [`Bank::count`] counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// Consumed message ids.
    Dedup,
    /// Committed local transactions of scheme 2.
    TxState,
    /// Parked messages.
    DeadLetters,
    /// The ledger (for [`Bank::transfer_ids`]: the credited transfers).
    Ledger,
    /// The outbox (for [`Bank::transfer_ids`]: the transfers with a row, sent or not).
    Outbox,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Dedup => "dedup",
            Table::TxState => "txstate",
            Table::DeadLetters => "dead_letters",
            Table::Ledger => "ledger",
            Table::Outbox => "outbox",
        }
    }
}

/// One outbox row handed to the relay.
#[derive(Clone, Debug)]
pub struct OutboxRow {
    /// Its id in the outbox.
    pub id: i64,
    /// Where to publish it.
    pub topic: String,
    /// The message.
    pub payload: String,
}

/// A ledger row whose `transfer_id` is not one chaosbank sent (`t<N>`): kept as written,
/// so the checker reports it rather than the harness dropping it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ForeignEntry {
    /// The id as the service wrote it.
    pub transfer: String,
    /// The account.
    pub account: String,
    /// Signed amount.
    pub amount: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            pg("UPDATE a SET b = b - ? WHERE id = ? AND b >= ?"),
            "UPDATE a SET b = b - $1 WHERE id = $2 AND b >= $3"
        );
        assert!(my("VALUES (?, NOW_US)").contains("UNIX_TIMESTAMP"));
    }

    #[test]
    fn accounts_belong_to_their_bank() {
        let t = Transfer {
            id: 1,
            from: "A/1".into(),
            to: "B/0".into(),
            amount: 3,
        };
        assert_eq!(t.from_bank(), BankId::A);
        assert_eq!(t.to_bank(), BankId::B);
        assert!(!t.is_local());
        assert_eq!(BankId::B.account(4), "B/4");
    }
}
