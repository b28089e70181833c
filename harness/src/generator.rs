//! The bank workload's generator: a seeded stream of transfers (within a bank and across
//! banks) and reads, and the process numbers of the client workers.
//!
//! Everything random comes from the run's seed (ChaCha8); which worker draws which op
//! depends on timing, but the sequence of ops drawn does not. Process numbers follow the
//! history contract: a worker whose op ended `info` takes a fresh number, never reused.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use workloads::bank::{BankId, Transfer};

/// What the workload is drawn from.
#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    /// The run's seed.
    pub seed: u64,
    /// Accounts in each bank (`A/0..n`, `B/0..n`).
    pub accounts_per_bank: usize,
    /// Every account's opening balance.
    pub initial_balance: i64,
    /// Transfers move 1..=this.
    pub max_amount: i64,
    /// Share of ops that are reads (0..=1).
    pub read_share: f64,
}

impl WorkloadConfig {
    /// Five accounts per bank holding 100 each, transfers of 1..=10, one op in five a read.
    pub fn new(seed: u64) -> WorkloadConfig {
        WorkloadConfig {
            seed,
            accounts_per_bank: 5,
            initial_balance: 100,
            max_amount: 10,
            read_share: 0.2,
        }
    }

    /// Every account and its opening balance: the `init` op's value.
    pub fn initial_balances(&self) -> BTreeMap<String, i64> {
        BankId::ALL
            .iter()
            .flat_map(|b| (0..self.accounts_per_bank).map(move |n| b.account(n)))
            .map(|a| (a, self.initial_balance))
            .collect()
    }
}

/// One op to invoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    /// A transfer.
    Transfer(Transfer),
    /// A read of one bank's balances.
    Read(BankId),
}

/// Draws ops and hands out process numbers; shared by every worker.
#[derive(Debug)]
pub struct Generator {
    cfg: WorkloadConfig,
    rng: Mutex<ChaCha8Rng>,
    next_id: AtomicU64,
    next_process: AtomicU64,
}

impl Generator {
    /// A generator for `cfg`.
    pub fn new(cfg: WorkloadConfig) -> Generator {
        Generator {
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(cfg.seed)),
            cfg,
            next_id: AtomicU64::new(1),
            next_process: AtomicU64::new(0),
        }
    }

    /// A process number never handed out before.
    pub fn new_process(&self) -> u64 {
        self.next_process.fetch_add(1, Ordering::Relaxed)
    }

    /// The next op.
    pub fn next(&self) -> Invocation {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        if rng.gen_bool(self.cfg.read_share.clamp(0.0, 1.0)) {
            let bank = if rng.gen_bool(0.5) {
                BankId::A
            } else {
                BankId::B
            };
            return Invocation::Read(bank);
        }
        let n = self.cfg.accounts_per_bank.max(1);
        let all = 2 * n;
        let from = rng.gen_range(0..all);
        // Any other account, in either bank (about half the transfers cross banks).
        let to = (from + rng.gen_range(1..all.max(2))) % all;
        let account = |i: usize| {
            if i < n {
                BankId::A.account(i)
            } else {
                BankId::B.account(i - n)
            }
        };
        Invocation::Transfer(Transfer {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            from: account(from),
            to: account(to),
            amount: rng.gen_range(1..=self.cfg.max_amount.max(1)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_ops_and_no_self_transfers() {
        let (a, b) = (
            Generator::new(WorkloadConfig::new(9)),
            Generator::new(WorkloadConfig::new(9)),
        );
        let mut cross = 0;
        for _ in 0..1000 {
            let op = a.next();
            assert_eq!(op, b.next());
            if let Invocation::Transfer(t) = op {
                assert_ne!(t.from, t.to);
                assert!((1..=10).contains(&t.amount));
                cross += usize::from(!t.is_local());
            }
        }
        assert!(cross > 300, "{cross} cross-bank transfers of ~800");
        assert_eq!(WorkloadConfig::new(1).initial_balances().len(), 10);
        assert_ne!(a.new_process(), a.new_process());
    }
}
