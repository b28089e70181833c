//! A user's own transfer service, verified through the contract of
//! `docs/sut.md`: chaosbank creates the banks' [`tables`], sends transfers over
//! the [`http`] API, and observes the service only through those tables — the backlog
//! while it drains (debits neither credited nor parked) and the final ledgers.
//!
//! The harness deploys the service's processes; this is the [`System`] the run drives.

pub mod api;
pub use crate::http;
pub mod tables;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use serde_json::Value;

pub use crate::bank::ForeignEntry;
use crate::bank::{BankId, Transfer};
use crate::system::{
    Backlog, Common, Endpoints, FinalState, Ledgers, Options, Outcome, Processes, Role, Scheme,
    Transfers,
};
pub use http::HttpClient;
pub use tables::ContractBank;

/// How long a service's ledgers must be still before its drain is done.
pub const QUIET: Duration = Duration::from_secs(15);

/// A service under the contract, seen from the harness.
pub struct ServiceSystem {
    name: &'static str,
    settle: Duration,
    /// The ledgers' last row counts and since when they have been so.
    last_change: std::sync::Mutex<Option<((usize, usize), std::time::Instant)>>,
    banks: [ContractBank; 2],
    client: HttpClient,
    /// Unused by a service (its processes are its own) but for the supervisors of its
    /// Kafka Connect connectors; kept for the [`System`] protocol's shared options.
    common: Common,
    /// The FAILED connector tasks the supervisors restarted.
    restarts: std::sync::Arc<std::sync::Mutex<Vec<crate::connect::Restart>>>,
    /// How many of `restarts` the history has already been given.
    taken: std::sync::Mutex<usize>,
}

impl ServiceSystem {
    /// The service called `name`, whose serving process answers at `api` (`host:port`
    /// on the host), over the banks at `endpoints`; it has settled once its ledgers
    /// stop changing for `settle` ([`Ledgers::settle_after`]).
    pub fn new(
        name: &str,
        endpoints: &Endpoints,
        options: &Options,
        api: String,
        settle: Duration,
    ) -> Result<ServiceSystem> {
        Ok(ServiceSystem {
            settle,
            last_change: std::sync::Mutex::new(None),
            // One name per manifest per run; a run's report and store take it as
            // `&'static str` like the reference schemes'.
            name: Box::leak(name.to_string().into_boxed_str()),
            banks: [
                ContractBank::connect(BankId::A, &endpoints.bank_a, options.connections)?,
                ContractBank::connect(BankId::B, &endpoints.bank_b, options.connections)?,
            ],
            client: HttpClient::new(api),
            common: Common::with_broker(endpoints, options, String::new())?,
            restarts: Default::default(),
            taken: Default::default(),
        })
    }

    /// Supervises the service's connectors `names` on the Kafka Connect worker whose
    /// REST API is at `rest` (`host:port`) until the run tears down: a FAILED task is
    /// restarted and kept ([`crate::connect::supervise`]; Connect never restarts one).
    pub fn supervise_connectors(&self, rest: &str, names: &[String]) {
        for name in names {
            let (rest, name) = (rest.to_string(), name.clone());
            let restarts = self.restarts.clone();
            let stop = self.common.stop_signal();
            self.common
                .spawn(format!("supervisor of connector {name}"), move || {
                    crate::connect::supervise(
                        crate::connect::Connect::new(&rest),
                        name.clone(),
                        restarts.clone(),
                        stop.clone(),
                    )
                });
        }
    }

    fn bank(&self, id: BankId) -> &ContractBank {
        &self.banks[id as usize]
    }

    /// The ledgers' rows with ids chaosbank never sent, per bank.
    pub async fn foreign_entries(&self) -> Result<Vec<(BankId, Vec<ForeignEntry>)>> {
        let mut out = Vec::new();
        for id in BankId::ALL {
            out.push((id, self.bank(id).final_ledger().await?.1));
        }
        Ok(out)
    }

    /// Transfer ids debited in bank A that bank B has neither credited nor parked, and
    /// the row counts of bank A's ledger and of bank B's ledger and dead letters.
    pub async fn uncredited(&self) -> Result<(usize, (usize, usize))> {
        let a = self.bank(BankId::A).ledger().await?;
        let rows_a = a.len();
        let debited: HashSet<String> = a
            .into_iter()
            .filter(|(_, _, amount)| *amount < 0)
            .map(|(id, _, _)| id)
            .collect();
        let b = self.bank(BankId::B);
        let ledger_b = b.ledger().await?;
        let letters = b.dead_letters().await?;
        let rows_b = ledger_b.len() + letters.len();
        let mut done: HashSet<String> = ledger_b
            .into_iter()
            .filter(|(_, _, amount)| *amount > 0)
            .map(|(id, _, _)| id)
            .collect();
        done.extend(letters.into_iter().map(|(id, _)| id));
        Ok((debited.difference(&done).count(), (rows_a, rows_b)))
    }
}

impl Scheme for ServiceSystem {
    fn name(&self) -> &'static str {
        self.name
    }

    fn common(&self) -> &Common {
        &self.common
    }
}

#[async_trait]
impl Transfers for ServiceSystem {
    async fn transfer(&self, t: &Transfer) -> Outcome {
        let timeout = self.common.options.op_timeout;
        let outcome = self.client.transfer(t, timeout).await;
        if matches!(&outcome, Outcome::Fail(e) if e.starts_with(http::REFUSED)) {
            // Back off from a service that is down rather than fill the history with
            // instant failures.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        outcome
    }

    /// A read of one bank's balances straight from its `accounts` table.
    async fn read(&self, bank: BankId) -> Outcome {
        match tokio::time::timeout(self.common.options.op_timeout, self.bank(bank).balances()).await
        {
            Ok(Ok(b)) => Outcome::Ok(serde_json::to_value(b).unwrap_or(Value::Null)),
            Ok(Err(e)) => Outcome::Fail(format!("{e:#}")),
            Err(_) => Outcome::Fail("timed out".to_string()),
        }
    }
}

#[async_trait]
impl Processes for ServiceSystem {
    /// The service's processes are containers the harness starts.
    async fn start(&self, _role: Role) -> Result<()> {
        Ok(())
    }

    async fn stop(&self) {}

    async fn teardown(&self) {
        // The connectors' supervisors, if any.
        self.common.stop().await;
        for bank in &self.banks {
            bank.close().await;
        }
    }
}

#[async_trait]
impl Ledgers for ServiceSystem {
    /// The supervisor's records of the service's connectors since the last call, for
    /// the history (as outbox-cdc's).
    fn connector_events(&self) -> Vec<crate::connect::Restart> {
        crate::connect::take_new(&self.restarts, &self.taken)
    }

    /// The contract's tables, created anew and seeded (topics are the harness's).
    async fn setup(&self, balances: &BTreeMap<String, i64>) -> Result<()> {
        for id in BankId::ALL {
            self.bank(id).create(balances).await?;
        }
        Ok(())
    }

    /// Debits neither credited nor parked; and, until the ledgers have been still for
    /// [`QUIET`], that they are moving (a late credit — say a phantom a broker's
    /// check-back commits after the last debit was credited — lands before the final
    /// read).
    async fn backlog(&self) -> Result<Backlog> {
        let (uncredited, rows) = self.uncredited().await?;
        let now = std::time::Instant::now();
        let moving = {
            let mut last = self.last_change.lock().unwrap_or_else(|e| e.into_inner());
            match *last {
                Some((r, since)) if r == rows => now.duration_since(since) < QUIET,
                _ => {
                    *last = Some((rows, now));
                    true
                }
            }
        };
        Ok(Backlog {
            uncredited: uncredited as i64,
            ledgers_moving: i64::from(moving),
            ..Backlog::default()
        })
    }

    fn settle_after(&self) -> Option<Duration> {
        Some(self.settle)
    }

    async fn final_state(&self) -> Result<FinalState> {
        let mut state = FinalState::default();
        for id in BankId::ALL {
            let bank = self.bank(id);
            let (ledger, foreign) = bank.final_ledger().await?;
            state.ledgers.push(ledger);
            state
                .foreign
                .extend(foreign.into_iter().map(|f| (id.name().to_string(), f)));
            state.dead_letters.extend(bank.parked().await?);
        }
        Ok(state)
    }
}
