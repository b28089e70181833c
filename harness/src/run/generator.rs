//! The bank workload's generator: a seeded stream of transfers (within a bank and across
//! banks) and reads, and the process numbers of the client workers.
//!
//! Everything random comes from the run's seed (ChaCha8); which worker draws which op
//! depends on timing, but the sequence of ops drawn does not. Process numbers follow the
//! history contract: a worker whose op ended `info` takes a fresh number, never reused.
//!
//! [`Stagger`] paces a worker to an offered load (Jepsen's stagger): before each op it
//! waits a seeded random share of its period, so a system that fails at once is not
//! hammered in a busy loop, while a slow one is never slowed further.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use workloads::bank::{BankId, Transfer};

/// Paces one client worker to its share of an offered load: op `k` is not started
/// before the worker's clock, which advances by a seeded random 0–2 periods per op
/// (mean: one period). A worker behind its clock (its ops take longer than the period)
/// does not wait, and never banks more than one period of credit.
#[derive(Debug)]
pub struct Stagger {
    period: Option<std::time::Duration>,
    next: Option<tokio::time::Instant>,
    rng: ChaCha8Rng,
}

impl Stagger {
    /// Worker `worker` of `workers`, together offering `rate` ops/s (`None`: as fast as
    /// the system answers), drawn from `seed`.
    pub fn new(seed: u64, worker: u64, workers: usize, rate: Option<f64>) -> Stagger {
        let period = rate
            .filter(|r| *r > 0.0 && r.is_finite())
            .map(|r| std::time::Duration::from_secs_f64(workers.max(1) as f64 / r));
        Stagger {
            period,
            next: None,
            rng: ChaCha8Rng::seed_from_u64(
                seed ^ 0x5747_4747 ^ worker.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ),
        }
    }

    /// How long to wait before the next op, from `now`; advances the clock.
    pub fn delay(&mut self, now: tokio::time::Instant) -> std::time::Duration {
        let Some(period) = self.period else {
            return std::time::Duration::ZERO;
        };
        let step = period.mul_f64(self.rng.gen_range(0.0..2.0));
        let next = match self.next {
            None => now + step,
            // Behind by more than a period: go now, and count from now (no burst to
            // catch up).
            Some(n) if n + step + period < now => now,
            Some(n) => n + step,
        };
        self.next = Some(next);
        next.saturating_duration_since(now)
    }

    /// Waits [`Stagger::delay`].
    pub async fn wait(&mut self) {
        let d = self.delay(tokio::time::Instant::now());
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
}

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
    /// Share of transfers that are **poison** (0..=1): from a bank A account to
    /// [`POISON_ACCOUNT`], which bank B does not have, so no retry can ever credit it:
    /// every correct scheme must park them for a person (dead letter).
    pub poison_rate: f64,
    /// Every transfer goes from bank A to bank B, as a service under the contract
    /// expects (else any two accounts, about half of them across banks).
    pub a_to_b_only: bool,
}

/// The account poison transfers go to: closed, so bank B refuses every credit to it.
pub const POISON_ACCOUNT: &str = "B/closed";

impl WorkloadConfig {
    /// Five accounts per bank holding 100 each, transfers of 1..=10, one op in five a read.
    pub fn new(seed: u64) -> WorkloadConfig {
        WorkloadConfig {
            seed,
            accounts_per_bank: 5,
            initial_balance: 100,
            max_amount: 10,
            read_share: 0.2,
            poison_rate: 0.0,
            a_to_b_only: false,
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
        if self.cfg.poison_rate > 0.0 && rng.gen_bool(self.cfg.poison_rate.clamp(0.0, 1.0)) {
            return Invocation::Transfer(Transfer {
                id: self.next_id.fetch_add(1, Ordering::Relaxed),
                from: BankId::A.account(rng.gen_range(0..n)),
                to: POISON_ACCOUNT.to_string(),
                amount: rng.gen_range(1..=self.cfg.max_amount.max(1)),
            });
        }
        if self.cfg.a_to_b_only {
            return Invocation::Transfer(Transfer {
                id: self.next_id.fetch_add(1, Ordering::Relaxed),
                from: BankId::A.account(rng.gen_range(0..n)),
                to: BankId::B.account(rng.gen_range(0..n)),
                amount: rng.gen_range(1..=self.cfg.max_amount.max(1)),
            });
        }
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

    #[test]
    fn a_staggered_worker_offers_its_share_of_the_rate_and_never_bursts() {
        use std::time::Duration;
        let start = tokio::time::Instant::now();
        // 8 workers at 80 ops/s: each one op per 100 ms on average.
        let mut s = Stagger::new(7, 0, 8, Some(80.0));
        let mut now = start;
        let mut total = Duration::ZERO;
        for _ in 0..1000 {
            let d = s.delay(now);
            assert!(d <= Duration::from_millis(200), "{d:?}");
            total += d;
            now += d; // ops that take no time
        }
        let mean = total / 1000;
        assert!(
            (Duration::from_millis(90)..Duration::from_millis(110)).contains(&mean),
            "{mean:?}"
        );
        // The same seed and worker wait the same; another worker differently.
        let draw = |w| {
            let mut s = Stagger::new(7, w, 8, Some(80.0));
            (0..5).map(|_| s.delay(start)).collect::<Vec<_>>()
        };
        assert_eq!(draw(0), draw(0));
        assert_ne!(draw(0), draw(1));
        // A worker whose ops take a second (behind its clock) does not wait.
        let mut s = Stagger::new(7, 0, 8, Some(80.0));
        let mut now = start;
        let mut waited = Duration::ZERO;
        for _ in 0..100 {
            waited += s.delay(now);
            now += Duration::from_secs(1);
        }
        assert!(waited < Duration::from_millis(250), "{waited:?}");
        // No rate: no wait.
        assert_eq!(Stagger::new(7, 0, 8, None).delay(start), Duration::ZERO);
    }

    #[test]
    fn poison_transfers_go_from_bank_a_to_the_closed_account() {
        let g = Generator::new(WorkloadConfig {
            poison_rate: 0.05,
            ..WorkloadConfig::new(3)
        });
        let transfers: Vec<Transfer> = (0..4000)
            .filter_map(|_| match g.next() {
                Invocation::Transfer(t) => Some(t),
                Invocation::Read(_) => None,
            })
            .collect();
        let poison: Vec<&Transfer> = transfers
            .iter()
            .filter(|t| t.to == POISON_ACCOUNT)
            .collect();
        assert!(
            (80..250).contains(&poison.len()),
            "{} poison of {}",
            poison.len(),
            transfers.len()
        );
        assert!(poison.iter().all(|t| t.from.starts_with("A/")));
        // None without a poison rate.
        let clean = Generator::new(WorkloadConfig::new(3));
        assert!((0..4000)
            .all(|_| !matches!(clean.next(), Invocation::Transfer(t) if t.to == POISON_ACCOUNT)));
    }
}
