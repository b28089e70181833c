//! The workload's clients (Jepsen's client processes): `concurrency` workers, each
//! drawing ops from the shared [`Generator`], pacing them with its [`Stagger`], invoking
//! them on a [`Client`] and recording the invoke and the completion in the history. A
//! worker whose op ended `info` takes a new process number, as Jepsen's do: that process
//! may still be doing it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use async_trait::async_trait;
use checkers::history::OpType;
use std::time::Instant;
use workloads::bank::{BankId, Transfer};
use workloads::system::{Outcome, Transfers};

use crate::generator::{Generator, Invocation, Stagger};
use crate::recorder::Recorder;

/// What the clients invoke ops on: a scheme, a service, or a benchmark fixture.
#[async_trait]
pub trait Client: Send + Sync {
    /// Invokes a transfer.
    async fn transfer(&self, t: &Transfer) -> Outcome;
    /// Reads one bank's balances.
    async fn read(&self, bank: BankId) -> Outcome;
}

#[async_trait]
impl<S: Transfers + ?Sized> Client for S {
    async fn transfer(&self, t: &Transfer) -> Outcome {
        Transfers::transfer(self, t).await
    }
    async fn read(&self, bank: BankId) -> Outcome {
        Transfers::read(self, bank).await
    }
}

/// How many ops ended which way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Transfers acknowledged.
    pub ok: u64,
    /// Transfers that certainly did not happen.
    pub fail: u64,
    /// Transfers whose outcome is unknown.
    pub info: u64,
    /// Reads that answered.
    pub reads_ok: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.ok += o.ok;
        self.fail += o.fail;
        self.info += o.info;
        self.reads_ok += o.reads_ok;
    }
}

/// The clients of one run.
#[derive(Clone, Debug)]
pub struct Clients {
    /// Concurrent workers.
    pub concurrency: usize,
    /// The run's seed (each worker's stagger is drawn from it).
    pub seed: u64,
    /// The offered load over all workers, ops/s; `None` for as fast as answered.
    pub rate: Option<f64>,
    /// No op is invoked after this.
    pub deadline: Instant,
    /// At most this many ops in all (a benchmark's fixed amount of work); `None`: until
    /// the deadline.
    pub budget: Option<u64>,
}

impl Clients {
    /// Runs the workers to the deadline (or the budget) and adds up their counts. An
    /// error writing the history stops the run with it.
    pub async fn run<C: Client + ?Sized + 'static>(
        &self,
        client: Arc<C>,
        generator: Arc<Generator>,
        recorder: Arc<Recorder>,
    ) -> Result<Counts> {
        let budget = Arc::new(AtomicU64::new(self.budget.unwrap_or(u64::MAX)));
        let mut workers = Vec::new();
        for i in 0..self.concurrency {
            let (client, generator, recorder) =
                (client.clone(), generator.clone(), recorder.clone());
            let stagger = Stagger::new(self.seed, i as u64, self.concurrency, self.rate);
            let (deadline, budget) = (self.deadline, budget.clone());
            workers.push(tokio::spawn(async move {
                worker(&*client, &generator, &recorder, stagger, deadline, &budget).await
            }));
        }
        let mut counts = Counts::default();
        for w in workers {
            counts.add(&w.await.context("a client worker panicked")??);
        }
        Ok(counts)
    }
}

/// One client worker: ops until the deadline or the budget, each recorded.
async fn worker<C: Client + ?Sized>(
    client: &C,
    generator: &Generator,
    recorder: &Recorder,
    mut stagger: Stagger,
    deadline: Instant,
    budget: &AtomicU64,
) -> Result<Counts> {
    let mut counts = Counts::default();
    let mut process = generator.new_process();
    loop {
        stagger.wait().await;
        if Instant::now() >= deadline {
            break;
        }
        // Take one op from the budget, or stop when it is spent.
        if budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_err()
        {
            break;
        }
        let (invoke, outcome, is_transfer) = match generator.next() {
            Invocation::Transfer(t) => {
                let invoke = recorder.invoke(process, "transfer", &t)?;
                (invoke, client.transfer(&t).await, true)
            }
            Invocation::Read(bank) => {
                let invoke = recorder.invoke(process, "read", &serde_json::Value::Null)?;
                (invoke, client.read(bank).await, false)
            }
        };
        match outcome {
            Outcome::Ok(v) => {
                recorder.complete(&invoke, OpType::Ok, &v, None)?;
                if is_transfer {
                    counts.ok += 1;
                } else {
                    counts.reads_ok += 1;
                }
            }
            Outcome::Fail(e) => {
                recorder.complete(&invoke, OpType::Fail, &invoke.value, Some(&e))?;
                counts.fail += u64::from(is_transfer);
            }
            Outcome::Info(e) => {
                recorder.complete(&invoke, OpType::Info, &invoke.value, Some(&e))?;
                counts.info += u64::from(is_transfer);
                process = generator.new_process();
            }
        }
    }
    Ok(counts)
}
