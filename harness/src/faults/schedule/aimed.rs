//! The aimed schedule, the default of `chaosbank run`: two lanes played side by side.
//!
//! - **Outages** (the engines' lane): every engine — and the link between the broker and
//!   the consumer — is taken out once, in a seeded order, for a hold that outlasts the
//!   clients' timeouts: at least [`LONG_MIN`], at most [`LONG_MAX`], the time limit
//!   shared out evenly. A bug that only shows when an outage outlasts a timeout (a
//!   consumer that gives up on a message, a retry budget that runs out) is then
//!   exercised in every run, not by chance. Outages that do not fit the time limit at
//!   [`LONG_MIN`] are left out, the last of the seeded order first.
//! - **Aimed faults** (the processes' lane): one after another, round the processes in a
//!   seeded order, a fault aimed at the moment between two effects — mostly
//!   `crash-after` and `cut-before` a reply (three in four, and every process gets one
//!   before any other kind is drawn), else a one-node fault of the run's other kinds. An aimed fault draws its reply among those the
//!   process really gets (a commit, a produce, an offset), avoiding engines the other
//!   lane holds down at that time (their replies would never come), and never hits the
//!   process whose link the other lane has cut (restarting it would undo the cut).
//!
//! The same seed gives the same two lanes for every scheme with the same targets, so the
//! correct designs are cleared under exactly what convicts the wrong ones.

use super::{jitter, FaultKind, ScheduleConfig, Step};
use crate::nemesis::{Fault, AIM_WAIT};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// The shortest long outage: past the clients' 10 s timeouts (MariaDB's lock wait and
/// the consumers' stall watch, Kafka's 10 s session, the example services' 5 s socket
/// timeouts) with room for a retry to fail too.
pub const LONG_MIN: Duration = Duration::from_secs(12);
/// The longest long outage: past PostgreSQL's and MariaDB's 20 s idle-in-transaction
/// limit, so a transaction left open by a cut-off client is ended on the server.
pub const LONG_MAX: Duration = Duration::from_secs(24);
/// The mean time a crashed process stays down before it is started again.
pub const AIMED_HOLD: Duration = Duration::from_millis(1500);

/// The steps of an aimed schedule (see the module's doc), in start order.
pub(super) fn generate(
    rng: &mut ChaCha8Rng,
    cfg: &ScheduleConfig,
    kinds: &[FaultKind],
) -> Vec<Step> {
    let processes: Vec<String> = cfg
        .targets
        .iter()
        .filter(|t| cfg.aim_targets.contains(t))
        .cloned()
        .collect();
    let engines: Vec<String> = cfg
        .targets
        .iter()
        .filter(|t| !cfg.aim_targets.contains(t))
        .cloned()
        .collect();
    let outages = outages(rng, cfg, kinds, &engines, &processes);
    let mut steps = outages.clone();
    steps.extend(aimed_lane(rng, cfg, kinds, &processes, &outages));
    steps.sort_by_key(|s| s.at);
    steps
}

/// The engines' lane: one long outage of each engine and of the broker–consumer link.
fn outages(
    rng: &mut ChaCha8Rng,
    cfg: &ScheduleConfig,
    kinds: &[FaultKind],
    engines: &[String],
    processes: &[String],
) -> Vec<Step> {
    let outage_kinds: Vec<FaultKind> = kinds.iter().copied().filter(|k| k.is_outage()).collect();
    let mut faults: Vec<Fault> = Vec::new();
    if !outage_kinds.is_empty() {
        for engine in engines {
            let node = engine.clone();
            faults.push(match outage_kinds[rng.gen_range(0..outage_kinds.len())] {
                FaultKind::Kill => Fault::Kill { node },
                FaultKind::Pause => Fault::Pause { node },
                _ => Fault::Isolate { node },
            });
        }
    }
    let partitions = kinds
        .iter()
        .any(|k| matches!(k, FaultKind::Isolate | FaultKind::Cut | FaultKind::Halves));
    let broker = engines.iter().find(|e| *e == "kafka" || *e == "broker");
    if let (true, Some(broker), false) = (partitions, broker, processes.is_empty()) {
        let consumer = processes
            .iter()
            .find(|p| *p == "consumer")
            .cloned()
            .unwrap_or_else(|| processes[rng.gen_range(0..processes.len())].clone());
        let mut two = [consumer, broker.clone()];
        two.sort();
        let [a, b] = two;
        faults.push(Fault::Cut { a, b });
    }
    faults.shuffle(rng);
    // Short gaps (half the quiet time): the outages are the lane's point.
    let first = jitter(rng, cfg.interval / 2);
    let gaps: Vec<Duration> = faults
        .iter()
        .map(|_| jitter(rng, cfg.interval / 2))
        .collect();
    // As many as fit at the shortest hold, the holds then sharing the time evenly.
    let mut n = faults.len();
    let fits = |n: usize| first + gaps[..n].iter().sum::<Duration>() + LONG_MIN * n as u32;
    while n > 0 && fits(n) > cfg.duration {
        n -= 1;
    }
    if n == 0 {
        return Vec::new();
    }
    let spare = cfg
        .duration
        .saturating_sub(first + gaps[..n].iter().sum::<Duration>());
    let hold = (spare / n as u32).clamp(LONG_MIN, LONG_MAX);
    let mut t = first;
    let mut steps = Vec::new();
    for (fault, gap) in faults.into_iter().take(n).zip(gaps) {
        // Whole milliseconds, up to a tenth shorter than the share, never under the floor.
        let cut = rng.gen_range(0..=hold.as_millis() as u64 / 10);
        let h = Duration::from_millis(hold.as_millis() as u64 - cut).max(LONG_MIN);
        if t + h > cfg.duration {
            break;
        }
        steps.push(Step {
            at: t,
            fault,
            hold: h,
        });
        t += h + gap;
    }
    steps
}

/// The processes' lane: aimed faults round the processes, avoiding what the outages
/// hold down at the time.
fn aimed_lane(
    rng: &mut ChaCha8Rng,
    cfg: &ScheduleConfig,
    kinds: &[FaultKind],
    processes: &[String],
    outages: &[Step],
) -> Vec<Step> {
    let aimed: Vec<FaultKind> = kinds.iter().copied().filter(|k| k.is_aimed()).collect();
    let others: Vec<FaultKind> = kinds
        .iter()
        .copied()
        .filter(|k| !k.is_aimed() && !matches!(k, FaultKind::Halves | FaultKind::Cut))
        .filter(|k| *k != FaultKind::Clock || !cfg.clock_targets.is_empty())
        .collect();
    let mut steps = Vec::new();
    if processes.is_empty() || aimed.is_empty() {
        return steps;
    }
    let mut round: Vec<String> = Vec::new();
    let mut aimed_at = std::collections::BTreeSet::new();
    let mut t = jitter(rng, cfg.interval) / 2;
    loop {
        // Every process gets an aimed fault before any plain one is drawn.
        let plain =
            !others.is_empty() && aimed_at.len() == processes.len() && rng.gen_range(0..4) == 0;
        let kind = if plain {
            others[rng.gen_range(0..others.len())]
        } else {
            // Crashes twice as often as cuts, where both are asked for.
            let weighted: Vec<FaultKind> = aimed
                .iter()
                .flat_map(|k| match k {
                    FaultKind::CrashAfter => vec![*k, *k],
                    _ => vec![*k],
                })
                .collect();
            weighted[rng.gen_range(0..weighted.len())]
        };
        let hold = if plain {
            jitter(rng, cfg.hold)
        } else {
            jitter(rng, AIMED_HOLD)
        };
        let gap = jitter(rng, cfg.interval).max(Duration::from_millis(1));
        if t + hold > cfg.duration {
            break;
        }
        // While it may wait for its reply, holds and is reverted.
        let span = (t, t + AIM_WAIT + hold);
        let during: Vec<&Fault> = outages
            .iter()
            .filter(|o| o.at < span.1 && span.0 < o.at + o.hold)
            .map(|o| &o.fault)
            .collect();
        let cut_off = |p: &String| {
            during
                .iter()
                .any(|f| matches!(f, Fault::Cut { .. }) && f.nodes().contains(&p.as_str()))
        };
        if !round.iter().any(|p| !cut_off(p)) {
            round = processes.iter().filter(|p| !cut_off(p)).cloned().collect();
            round.shuffle(rng);
        }
        let Some(i) = round.iter().position(|p| !cut_off(p)) else {
            t += hold + gap;
            continue;
        };
        let node = round.remove(i);
        let avoid: Vec<String> = during
            .iter()
            .flat_map(|f| f.nodes())
            .filter(|n| !processes.iter().any(|p| p == n))
            .map(str::to_string)
            .collect();
        let fault = match kind {
            FaultKind::CrashAfter | FaultKind::CutBefore => {
                aimed_at.insert(node.clone());
                fault(rng, kind, node, avoid)
            }
            other => match super::draw(rng, other, cfg, std::slice::from_ref(&node)) {
                Some(f) => f,
                None => Fault::Kill { node },
            },
        };
        steps.push(Step { at: t, fault, hold });
        t += hold + gap;
    }
    steps
}

/// An aimed fault of `kind` on `node`: the 1st to 5th matching reply, the reply drawn
/// when the fault is applied (by `draw`) among those the process gets, `avoid` left out.
pub(super) fn fault(
    rng: &mut ChaCha8Rng,
    kind: FaultKind,
    node: String,
    avoid: Vec<String>,
) -> Fault {
    let nth = rng.gen_range(1..=5);
    let draw = rng.gen::<u32>();
    match kind {
        FaultKind::CutBefore => Fault::CutBefore {
            node,
            engine: None,
            reply: None,
            nth,
            draw,
            avoid,
        },
        _ => Fault::CrashAfter {
            node,
            engine: None,
            reply: None,
            nth,
            draw,
            avoid,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::Schedule;
    use super::*;

    fn cfg(seed: u64, duration: u64) -> ScheduleConfig {
        let targets = [
            "postgres", "mariadb", "kafka", "producer", "relay", "consumer",
        ];
        ScheduleConfig {
            interval: Duration::from_secs(2),
            hold: Duration::from_secs(3),
            faults: vec![
                FaultKind::Kill,
                FaultKind::Pause,
                FaultKind::Isolate,
                FaultKind::Loss,
                FaultKind::CrashAfter,
                FaultKind::CutBefore,
            ],
            aim_targets: vec!["producer".into(), "relay".into(), "consumer".into()],
            aimed: true,
            ..ScheduleConfig::new(seed, Duration::from_secs(duration), &targets)
        }
    }

    fn long(s: &Schedule) -> Vec<&Step> {
        s.steps.iter().filter(|st| st.hold >= LONG_MIN).collect()
    }

    #[test]
    fn every_engine_and_the_consumer_link_get_an_outage_past_the_timeouts() {
        for seed in 0..200 {
            let s = Schedule::generate(&cfg(seed, 60));
            let out = long(&s);
            let mut hit: Vec<String> = out
                .iter()
                .map(|st| match &st.fault {
                    Fault::Cut { a, b } => format!("{a}-{b}"),
                    f => f.nodes()[0].to_string(),
                })
                .collect();
            hit.sort();
            assert_eq!(
                hit,
                ["consumer-kafka", "kafka", "mariadb", "postgres"],
                "seed {seed}\n{s}"
            );
            for w in out.windows(2) {
                assert!(w[1].at >= w[0].at + w[0].hold, "outages overlap\n{s}");
            }
            for st in &s.steps {
                assert!(st.at + st.hold <= Duration::from_secs(60), "{s}");
                assert!(st.hold <= LONG_MAX, "{s}");
            }
        }
    }

    #[test]
    fn aimed_faults_hit_every_process_and_avoid_what_is_down() {
        for seed in 0..200 {
            let s = Schedule::generate(&cfg(seed, 60));
            let outages = long(&s);
            let mut aimed_on = std::collections::BTreeSet::new();
            for st in &s.steps {
                let (Fault::CrashAfter {
                    node, avoid, nth, ..
                }
                | Fault::CutBefore {
                    node, avoid, nth, ..
                }) = &st.fault
                else {
                    continue;
                };
                assert!((1..=5).contains(nth));
                aimed_on.insert(node.clone());
                for o in &outages {
                    let overlaps = o.at < st.at + AIM_WAIT + st.hold && st.at < o.at + o.hold;
                    if !overlaps {
                        continue;
                    }
                    match &o.fault {
                        Fault::Cut { .. } => assert!(
                            !o.fault.nodes().contains(&node.as_str()),
                            "seed {seed}: aimed at {node} while its link is cut\n{s}"
                        ),
                        f => assert!(
                            avoid.iter().any(|a| a == f.nodes()[0]),
                            "seed {seed}: {node} does not avoid {}\n{s}",
                            f.nodes()[0]
                        ),
                    }
                }
            }
            assert_eq!(aimed_on.len(), 3, "seed {seed}: {aimed_on:?}\n{s}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_short_runs_fit() {
        assert_eq!(
            Schedule::generate(&cfg(5, 60)),
            Schedule::generate(&cfg(5, 60))
        );
        assert_ne!(
            Schedule::generate(&cfg(5, 60)),
            Schedule::generate(&cfg(6, 60))
        );
        // 20 s: one outage fits; 8 s: none, but aimed faults still do.
        let s = Schedule::generate(&cfg(1, 20));
        assert_eq!(long(&s).len(), 1, "{s}");
        let s = Schedule::generate(&cfg(1, 8));
        assert!(long(&s).is_empty(), "{s}");
        assert!(
            s.steps
                .iter()
                .any(|st| matches!(st.fault, Fault::CrashAfter { .. } | Fault::CutBefore { .. })),
            "{s}"
        );
    }

    #[test]
    fn without_aim_targets_the_covering_schedule_is_drawn() {
        let c = ScheduleConfig {
            aim_targets: Vec::new(),
            ..cfg(3, 60)
        };
        let s = Schedule::generate(&c);
        assert!(!s.steps.is_empty());
        assert!(s
            .steps
            .iter()
            .all(|st| !matches!(st.fault, Fault::CrashAfter { .. } | Fault::CutBefore { .. })));
        assert!(s.steps.iter().all(|st| st.hold < LONG_MIN), "{s}");
    }
}
