//! The banks' tables as the service contract (`docs/sut.md` §1) shapes them:
//! `accounts`, `ledger (transfer_id, account, amount)` and, in bank B, `dead_letters`.
//! chaosbank creates and seeds them before a service starts, and reads them to observe
//! it: the backlog while it drains, and the final ledgers.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sqlx::Row;

use crate::bank::{BankId, DeadLetter, Entry, FinalLedger, ForeignEntry};

/// How long a pooled connection may take to be handed out.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Debug)]
enum Pool {
    Pg(sqlx::PgPool),
    My(sqlx::MySqlPool),
}

/// One bank's contract tables.
#[derive(Clone, Debug)]
pub struct ContractBank {
    id: BankId,
    pool: Pool,
}

/// The transfer number in an id chaosbank sent (`t17` → 17).
pub fn parse_id(id: &str) -> Option<u64> {
    id.strip_prefix('t')?.parse().ok()
}

impl ContractBank {
    /// A lazy pool for bank `id` at `url` (`postgres://…` or `mysql://…`).
    pub fn connect(id: BankId, url: &str, max_connections: u32) -> Result<ContractBank> {
        let bad = || format!("bank {}: bad database URL", id.name());
        let pool = if url.starts_with("postgres") {
            Pool::Pg(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_lazy(url)
                    .with_context(bad)?,
            )
        } else if url.starts_with("mysql") || url.starts_with("mariadb") {
            Pool::My(
                sqlx::mysql::MySqlPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_lazy(url)
                    .with_context(bad)?,
            )
        } else {
            bail!("bank {}: unsupported database URL scheme", id.name());
        };
        Ok(ContractBank { id, pool })
    }

    /// The statements that (re)create the contract's tables, dropping any left by an
    /// earlier run on the same database.
    pub fn schema(id: BankId) -> Vec<&'static str> {
        let mut s = vec![
            "DROP TABLE IF EXISTS accounts",
            "DROP TABLE IF EXISTS ledger",
            "DROP TABLE IF EXISTS dead_letters",
            "CREATE TABLE accounts (id VARCHAR(32) PRIMARY KEY, balance BIGINT NOT NULL)",
            "CREATE TABLE ledger (transfer_id VARCHAR(64) NOT NULL, \
             account VARCHAR(32) NOT NULL, amount BIGINT NOT NULL)",
        ];
        if id == BankId::B {
            s.push("CREATE TABLE dead_letters (transfer_id VARCHAR(64) NOT NULL, reason TEXT)");
        }
        s
    }

    /// Creates the tables and seeds this bank's accounts from `balances`.
    pub async fn create(&self, balances: &BTreeMap<String, i64>) -> Result<()> {
        let rows: Vec<(&String, i64)> = balances
            .iter()
            .filter(|(a, _)| BankId::of(a) == self.id)
            .map(|(a, b)| (a, *b))
            .collect();
        let name = self.id.name();
        macro_rules! create {
            ($p:expr, $insert:expr) => {{
                for s in Self::schema(self.id) {
                    sqlx::query(s)
                        .execute($p)
                        .await
                        .with_context(|| format!("bank {name}: {s}"))?;
                }
                let mut tx = $p.begin().await?;
                for (account, balance) in &rows {
                    sqlx::query($insert)
                        .bind(*account)
                        .bind(*balance)
                        .execute(&mut *tx)
                        .await
                        .with_context(|| format!("bank {name}: seeding {account}"))?;
                }
                tx.commit().await?;
            }};
        }
        match &self.pool {
            Pool::Pg(p) => create!(p, "INSERT INTO accounts (id, balance) VALUES ($1, $2)"),
            Pool::My(p) => create!(p, "INSERT INTO accounts (id, balance) VALUES (?, ?)"),
        }
        Ok(())
    }

    /// Every balance, in one statement.
    pub async fn balances(&self) -> Result<BTreeMap<String, i64>> {
        let sql = "SELECT id, balance FROM accounts";
        let rows = match &self.pool {
            Pool::Pg(p) => sqlx::query(sql)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<Vec<(String, i64)>, sqlx::Error>>()?,
            Pool::My(p) => sqlx::query(sql)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<Vec<(String, i64)>, sqlx::Error>>()?,
        };
        Ok(rows.into_iter().collect())
    }

    /// Every ledger row: `(transfer_id, account, amount)`.
    pub async fn ledger(&self) -> Result<Vec<(String, String, i64)>> {
        let sql = "SELECT transfer_id, account, amount FROM ledger";
        Ok(match &self.pool {
            Pool::Pg(p) => sqlx::query(sql)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<_, sqlx::Error>>()?,
            Pool::My(p) => sqlx::query(sql)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<_, sqlx::Error>>()?,
        })
    }

    /// The parked transfers (bank B): `(transfer_id, reason)`.
    pub async fn dead_letters(&self) -> Result<Vec<(String, String)>> {
        if self.id != BankId::B {
            return Ok(Vec::new());
        }
        let sql = "SELECT transfer_id, COALESCE(reason, '') FROM dead_letters";
        Ok(match &self.pool {
            Pool::Pg(p) => sqlx::query(sql)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_, sqlx::Error>>()?,
            Pool::My(p) => sqlx::query(sql)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_, sqlx::Error>>()?,
        })
    }

    /// The ids this bank's ledger debits (negative entries).
    pub async fn debited(&self) -> Result<HashSet<String>> {
        Ok(self
            .ledger()
            .await?
            .into_iter()
            .filter(|(_, _, amount)| *amount < 0)
            .map(|(id, _, _)| id)
            .collect())
    }

    /// The ledger and balances as a `final-ledger` value, and the rows whose ids
    /// chaosbank did not send.
    pub async fn final_ledger(&self) -> Result<(FinalLedger, Vec<ForeignEntry>)> {
        let mut entries = Vec::new();
        let mut foreign = Vec::new();
        for (id, account, amount) in self.ledger().await? {
            match parse_id(&id) {
                Some(transfer) => entries.push(Entry {
                    transfer,
                    account,
                    amount,
                    at_us: 0,
                    read_from: None,
                }),
                None => foreign.push(ForeignEntry {
                    transfer: id,
                    account,
                    amount,
                }),
            }
        }
        let ledger = FinalLedger {
            bank: self.id.name().to_string(),
            entries,
            balances: self.balances().await?,
        };
        Ok((ledger, foreign))
    }

    /// The parked transfers as `dead-letter` values (ids chaosbank did not send are
    /// logged and left out: they park nothing the history knows).
    pub async fn parked(&self) -> Result<Vec<DeadLetter>> {
        let mut out = Vec::new();
        for (id, reason) in self.dead_letters().await? {
            match parse_id(&id) {
                Some(transfer) => out.push(DeadLetter { transfer, reason }),
                None => tracing::warn!("a dead letter for {id:?}, an id chaosbank never sent"),
            }
        }
        Ok(out)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Pg(p) => p.close().await,
            Pool::My(p) => p.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_chaosbank_sent_parse_back_and_others_do_not() {
        assert_eq!(parse_id("t17"), Some(17));
        assert_eq!(parse_id("17"), None);
        assert_eq!(parse_id("t"), None);
        assert_eq!(parse_id("tx"), None);
    }

    #[test]
    fn only_bank_b_gets_a_dead_letter_table() {
        let has = |id| {
            ContractBank::schema(id)
                .iter()
                .any(|s| s.starts_with("CREATE TABLE dead_letters"))
        };
        assert!(has(BankId::B));
        assert!(!has(BankId::A));
    }
}
