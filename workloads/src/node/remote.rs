//! The harness's side of a scheme deployed in node containers: a [`System`] whose
//! transfers go to the producer node's transfer API — the same HTTP contract a user's
//! service serves ([`crate::service::HttpClient`]) — while set-up, reads, backlog and
//! the final state go straight to the engines (they observe the system; they are not
//! part of it). The producer's control port answers the backlog's `producing`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Result};
use async_trait::async_trait;

use super::wire::{CallError, Client};
use super::{Request, Response};
use crate::bank::{BankId, Transfer};
use crate::service::{http, HttpClient};
use crate::system::{
    Backlog, Common, FinalState, Ledgers, Outcome, Processes, Role, Scheme, System, TopicLog,
    TopicSpec, Transfers,
};

/// How much longer than the scheme's op timeout the harness waits for a producer's
/// answer before calling the transfer `info`.
const SLACK: Duration = Duration::from_secs(5);

/// How long a client waits after finding the producer's API unreachable.
const UNREACHABLE_BACKOFF: Duration = Duration::from_millis(100);

/// A deployed scheme, seen from the harness.
pub struct Remote {
    /// The same scheme built on the host's endpoints, for everything but transfers.
    local: Box<dyn System>,
    producer: String,
    /// Idle connections to the producer (one per concurrent caller at most).
    clients: Mutex<Vec<Client>>,
    /// The producer's transfer API.
    api: HttpClient,
}

impl Remote {
    /// `local` is the scheme built on the host's endpoints (never started);
    /// `producer` the producer node's control address and `api` its transfer API's,
    /// both on 127.0.0.1.
    pub fn new(local: Box<dyn System>, producer: String, api: String) -> Remote {
        Remote {
            local,
            producer,
            clients: Mutex::new(Vec::new()),
            api: HttpClient::new(api),
        }
    }

    fn client(&self) -> Client {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_else(|| Client::new(self.producer.clone()))
    }

    fn put_back(&self, c: Client) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(c);
    }

    async fn call(&self, req: &Request, timeout: Duration) -> Result<Response, CallError> {
        let mut client = self.client();
        let r = client.call(req, timeout).await;
        self.put_back(client);
        r
    }
}

impl Scheme for Remote {
    fn name(&self) -> &'static str {
        self.local.name()
    }

    fn common(&self) -> &Common {
        self.local.common()
    }
}

#[async_trait]
impl Transfers for Remote {
    async fn transfer(&self, t: &Transfer) -> Outcome {
        let timeout = self.common().options.op_timeout + SLACK;
        let outcome = self.api.transfer(t, timeout).await;
        if matches!(&outcome, Outcome::Fail(e) if e.starts_with(http::REFUSED)) {
            // A client backs off before trying a producer that is down again, rather
            // than filling the history with thousands of instant failures.
            tokio::time::sleep(UNREACHABLE_BACKOFF).await;
        }
        outcome
    }

    async fn read(&self, bank: BankId) -> Outcome {
        self.local.read(bank).await
    }
}

#[async_trait]
impl Processes for Remote {
    /// The harness starts the node containers; nothing runs here.
    async fn start(&self, _role: Role) -> Result<()> {
        Ok(())
    }

    async fn producing(&self) -> i64 {
        match self.call(&Request::Producing, SLACK).await {
            Ok(Response::Producing { n }) => n,
            // Unknown: count it as pending so the drain keeps waiting (bounded).
            _ => 1,
        }
    }

    async fn stop(&self) {
        self.local.stop().await
    }

    async fn teardown(&self) {
        self.local.teardown().await
    }
}

#[async_trait]
impl Ledgers for Remote {
    async fn setup(&self, balances: &BTreeMap<String, i64>) -> Result<()> {
        self.local.setup(balances).await
    }

    async fn backlog(&self) -> Result<Backlog> {
        let mut b = self.local.backlog().await?;
        b.producing += self.producing().await;
        Ok(b)
    }

    async fn final_state(&self) -> Result<FinalState> {
        self.local.final_state().await
    }

    fn topics(&self) -> Vec<TopicSpec> {
        self.local.topics()
    }

    async fn topic_logs(&self) -> Result<Vec<TopicLog>> {
        self.local.topic_logs().await
    }

    fn settle_after(&self) -> Option<Duration> {
        self.local.settle_after()
    }

    fn connector_events(&self) -> Vec<crate::connect::Restart> {
        self.local.connector_events()
    }

    async fn failed_connectors(&self) -> Vec<String> {
        self.local.failed_connectors().await
    }
}

/// Fails unless `addr` answers as a node of `role`.
pub async fn expect_role(addr: &str, role: Role) -> Result<()> {
    let mut c = Client::new(addr.to_string());
    match c.call(&Request::Health, Duration::from_secs(5)).await? {
        Response::Health { role: r, .. } if r == role => Ok(()),
        other => bail!("{addr} is not a {role} node: {other:?}"),
    }
}
