//! A fault schedule drawn from the run's seed: when each fault starts, what it is, and
//! how long it holds. The same seed and configuration give the same schedule (ChaCha8),
//! so a failing run can be replayed; [`Schedule`] prints as a readable table.
//!
//! Faults never overlap: each is reverted before the next starts, so every start event
//! is followed by its end event and a heal never undoes another fault.

use crate::nemesis::{Event, Fault, Nemesis};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, Instant};

/// A kind of fault the schedule may draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// [`Fault::Kill`].
    Kill,
    /// [`Fault::Pause`].
    Pause,
    /// [`Fault::Isolate`].
    Isolate,
    /// [`Fault::Halves`].
    Halves,
    /// [`Fault::Cut`].
    Cut,
    /// [`Fault::Loss`].
    Loss,
    /// [`Fault::Delay`] (needs node containers: the latency is added by their proxies).
    Delay,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Isolate,
        FaultKind::Halves,
        FaultKind::Cut,
        FaultKind::Loss,
        FaultKind::Delay,
    ];

    /// Parses `kill`, `pause`, `isolate`, `halves`, `cut`, `loss` or `delay`.
    pub fn parse(s: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The kind's name.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Isolate => "isolate",
            FaultKind::Halves => "halves",
            FaultKind::Cut => "cut",
            FaultKind::Loss => "loss",
            FaultKind::Delay => "delay",
        }
    }
}

/// What a schedule is drawn from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleConfig {
    /// The run's seed.
    pub seed: u64,
    /// Faults start within this long after the run starts, and end by it.
    pub duration: Duration,
    /// Mean quiet time between one fault's end and the next one's start (drawn
    /// uniformly from half to one and a half times this).
    pub interval: Duration,
    /// Mean time a fault holds (drawn the same way).
    pub hold: Duration,
    /// The kinds to draw from, uniformly (a kind listed twice is drawn twice as often).
    pub faults: Vec<FaultKind>,
    /// The nodes faults may target (e.g. `["postgres", "mariadb", "kafka"]`).
    pub targets: Vec<String>,
}

impl ScheduleConfig {
    /// Every kind of fault on `targets`, a fault every ~10 s holding ~5 s, for `duration`.
    pub fn new(seed: u64, duration: Duration, targets: &[&str]) -> ScheduleConfig {
        ScheduleConfig {
            seed,
            duration,
            interval: Duration::from_secs(10),
            hold: Duration::from_secs(5),
            faults: FaultKind::ALL.to_vec(),
            targets: targets.iter().map(|t| t.to_string()).collect(),
        }
    }
}

/// One fault of a schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// When it starts, after the run starts.
    pub at: Duration,
    /// The fault.
    pub fault: Fault,
    /// How long it holds before it is reverted.
    pub hold: Duration,
}

/// A reproducible list of faults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// The seed it was drawn from.
    pub seed: u64,
    /// The faults, in start order, never overlapping.
    pub steps: Vec<Step>,
}

impl Schedule {
    /// Draws a schedule. Kinds that need more targets than given (halves and cut need
    /// two) are skipped; no targets or no kinds give an empty schedule.
    pub fn generate(cfg: &ScheduleConfig) -> Schedule {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let kinds: Vec<FaultKind> = cfg
            .faults
            .iter()
            .copied()
            .filter(|k| cfg.targets.len() >= 2 || !matches!(k, FaultKind::Halves | FaultKind::Cut))
            .collect();
        let mut steps = Vec::new();
        if kinds.is_empty() || cfg.targets.is_empty() {
            return Schedule {
                seed: cfg.seed,
                steps,
            };
        }
        let mut t = jitter(&mut rng, cfg.interval);
        loop {
            let hold = jitter(&mut rng, cfg.hold);
            if t + hold > cfg.duration {
                break;
            }
            let kind = kinds[rng.gen_range(0..kinds.len())];
            let fault = draw(&mut rng, kind, &cfg.targets);
            steps.push(Step { at: t, fault, hold });
            // A step of zero length would loop for ever.
            t += hold + jitter(&mut rng, cfg.interval).max(Duration::from_millis(1));
        }
        Schedule {
            seed: cfg.seed,
            steps,
        }
    }

    /// Plays the schedule against a nemesis from now on: each fault at its time, held,
    /// reverted; then [`Nemesis::heal_all`]. Every event goes to `emit` as it happens; a
    /// fault that cannot be applied is emitted with its `error` and skipped. Dropping the
    /// future mid-way leaves the current fault in place: call `heal_all` afterwards.
    pub async fn play(&self, nemesis: &Nemesis, mut emit: impl FnMut(Event)) -> crate::Result<()> {
        let start = Instant::now();
        for step in &self.steps {
            tokio::time::sleep(step.at.saturating_sub(start.elapsed())).await;
            match nemesis.apply(&step.fault).await {
                Ok(ev) => emit(ev),
                Err(e) => {
                    emit(failed(step.fault.names().0, &step.fault, &e));
                    continue;
                }
            }
            tokio::time::sleep(step.hold).await;
            match nemesis.revert(&step.fault).await {
                Ok(ev) => emit(ev),
                Err(e) => emit(failed(step.fault.names().1, &step.fault, &e)),
            }
        }
        emit(nemesis.heal_all().await?);
        Ok(())
    }
}

fn failed(f: &str, fault: &Fault, e: &crate::Error) -> Event {
    Event {
        f: f.to_string(),
        value: serde_json::to_value(fault).unwrap_or_default(),
        error: Some(e.to_string()),
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "fault schedule (seed {}, {} faults):",
            self.seed,
            self.steps.len()
        )?;
        for s in &self.steps {
            writeln!(
                f,
                "  at {:>7.1}s  for {:>5.1}s  {}",
                s.at.as_secs_f64(),
                s.hold.as_secs_f64(),
                s.fault
            )?;
        }
        Ok(())
    }
}

/// Uniform in [mean/2, 3·mean/2], in whole milliseconds so schedules print exactly.
fn jitter(rng: &mut ChaCha8Rng, mean: Duration) -> Duration {
    let ms = mean.as_millis() as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rng.gen_range(ms / 2..=ms + ms / 2))
}

fn draw(rng: &mut ChaCha8Rng, kind: FaultKind, targets: &[String]) -> Fault {
    let one = |rng: &mut ChaCha8Rng| targets[rng.gen_range(0..targets.len())].clone();
    match kind {
        FaultKind::Kill => Fault::Kill { node: one(rng) },
        FaultKind::Pause => Fault::Pause { node: one(rng) },
        FaultKind::Isolate => Fault::Isolate { node: one(rng) },
        FaultKind::Loss => Fault::Loss {
            node: one(rng),
            // 10 %, 20 %, … 50 %.
            p: f64::from(rng.gen_range(1..=5u8)) / 10.0,
        },
        FaultKind::Delay => Fault::Delay {
            node: one(rng),
            // 50, 100, 200, 500 or 1000 ms each way.
            ms: [50, 100, 200, 500, 1000][rng.gen_range(0..5)],
        },
        FaultKind::Cut => {
            let mut two: Vec<&String> = targets.choose_multiple(rng, 2).collect();
            two.sort();
            Fault::Cut {
                a: two[0].clone(),
                b: two[1].clone(),
            }
        }
        FaultKind::Halves => {
            let mut all = targets.to_vec();
            all.shuffle(rng);
            let cut = rng.gen_range(1..all.len());
            let (mut a, mut b) = (all[..cut].to_vec(), all[cut..].to_vec());
            a.sort();
            b.sort();
            Fault::Halves { a, b }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(seed: u64) -> ScheduleConfig {
        ScheduleConfig::new(
            seed,
            Duration::from_secs(300),
            &["postgres", "mariadb", "kafka"],
        )
    }

    #[test]
    fn same_seed_same_schedule() {
        assert_eq!(Schedule::generate(&cfg(7)), Schedule::generate(&cfg(7)));
        assert_ne!(Schedule::generate(&cfg(7)), Schedule::generate(&cfg(8)));
    }

    #[test]
    fn steps_fit_the_duration_and_never_overlap() {
        let s = Schedule::generate(&cfg(42));
        assert!(s.steps.len() >= 10, "{s}");
        let mut end = Duration::ZERO;
        for step in &s.steps {
            assert!(step.at >= end, "{s}");
            end = step.at + step.hold;
        }
        assert!(end <= Duration::from_secs(300));
        assert!(s.to_string().contains("seed 42"));
    }

    #[test]
    fn every_kind_is_drawn_and_targets_are_respected() {
        let s = Schedule::generate(&ScheduleConfig {
            duration: Duration::from_secs(3000),
            ..cfg(1)
        });
        for kind in FaultKind::ALL {
            assert!(
                s.steps.iter().any(|st| {
                    let v = serde_json::to_value(&st.fault).unwrap();
                    v["kind"] == kind.name()
                }),
                "{kind:?} never drawn"
            );
        }
        for st in &s.steps {
            if let Fault::Halves { a, b } = &st.fault {
                assert!(!a.is_empty() && !b.is_empty());
                assert_eq!(a.len() + b.len(), 3);
            }
        }
    }

    #[test]
    fn one_target_skips_two_node_faults() {
        let s = Schedule::generate(&ScheduleConfig::new(
            3,
            Duration::from_secs(600),
            &["postgres"],
        ));
        assert!(s
            .steps
            .iter()
            .all(|st| !matches!(st.fault, Fault::Cut { .. } | Fault::Halves { .. })));
    }
}
