//! A fault schedule drawn from the run's seed: when each fault starts, what it is, and
//! how long it holds. The same seed and configuration give the same schedule (ChaCha8),
//! so a failing run can be replayed; [`Schedule`] prints as a readable table.
//!
//! By default faults never overlap: each is reverted before the next starts. With
//! [`ScheduleConfig::overlap`] a share of faults get a second one that starts while the
//! first holds, on other nodes and of a one-node kind (kill, pause, isolate, loss,
//! delay), so reverting either never undoes the other.
//!
//! With [`ScheduleConfig::cover`] (the default of `chaosbank run`) the first faults are a
//! shuffled round over the targets — every target is hit once before any is hit twice —
//! and every hold lasts at least [`COVER_MIN_HOLD`], so a run cannot miss the one node
//! where a scheme is wrong by chance, and no fault heals before the schemes' own timeouts
//! (the dual-write's 2 s publish timeout) have fired. After the round, targets are drawn
//! uniformly.

use crate::nemesis::{AimedAt, Event, Fault, Nemesis, AIM_WAIT};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// [`Fault::Clock`] (node containers only: drawn on [`ScheduleConfig::clock_targets`]).
    Clock,
    /// [`Fault::CrashAfter`] (processes only: drawn on [`ScheduleConfig::aim_targets`]).
    CrashAfter,
    /// [`Fault::CutBefore`] (processes only: drawn on [`ScheduleConfig::aim_targets`]).
    CutBefore,
    /// [`Fault::SlotLoss`] (on `postgres` only, for systems read by Debezium: drawn only
    /// when asked for, never by default).
    SlotLoss,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 11] = [
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Isolate,
        FaultKind::Halves,
        FaultKind::Cut,
        FaultKind::Loss,
        FaultKind::Delay,
        FaultKind::Clock,
        FaultKind::CrashAfter,
        FaultKind::CutBefore,
        FaultKind::SlotLoss,
    ];

    /// Parses `kill`, `pause`, `isolate`, `halves`, `cut`, `loss`, `delay`, `clock`,
    /// `crash-after`, `cut-before` or `slot-loss`.
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
            FaultKind::Clock => "clock",
            FaultKind::CrashAfter => "crash-after",
            FaultKind::CutBefore => "cut-before",
            FaultKind::SlotLoss => "slot-loss",
        }
    }

    /// Aimed at a process's replies ([`FaultKind::CrashAfter`], [`FaultKind::CutBefore`]).
    pub fn is_aimed(self) -> bool {
        matches!(self, FaultKind::CrashAfter | FaultKind::CutBefore)
    }

    /// Takes a node out for as long as it holds (kill, pause, isolate): the kinds of
    /// an aimed schedule's long outages.
    pub fn is_outage(self) -> bool {
        matches!(
            self,
            FaultKind::Kill | FaultKind::Pause | FaultKind::Isolate
        )
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
    /// Start with a shuffled round over the targets, holds at least [`COVER_MIN_HOLD`]
    /// (absent in older files: off, so their schedules replay as they were drawn).
    #[serde(default)]
    pub cover: bool,
    /// The chance (0–1) that a fault gets a second one, started while it holds (absent
    /// in older files: 0, so their schedules replay as they were drawn).
    #[serde(default)]
    pub overlap: f64,
    /// The targets whose wall clock can be moved (node containers); clock faults are
    /// drawn only on these, and not at all when it is empty.
    #[serde(default)]
    pub clock_targets: Vec<String>,
    /// The processes aimed faults can hit (node containers: a scheme's producer, relay
    /// and consumer, a service's processes); aimed kinds are drawn only on these.
    #[serde(default)]
    pub aim_targets: Vec<String>,
    /// Draw the aimed schedule ([`Schedule::generate`]) when the kinds include an aimed
    /// one and there are aim targets (absent in older files: off).
    #[serde(default)]
    pub aimed: bool,
}

/// The node a [`FaultKind::SlotLoss`] hits: bank A's PostgreSQL.
pub const SLOT_NODE: &str = "postgres";

/// The covering round's turn for a slot loss (not a node name).
const SLOT_TURN: &str = "\u{0}slot-loss";

/// The slot loss of `outbox-cdc`: its slot on [`SLOT_NODE`].
fn slot_loss() -> Fault {
    Fault::SlotLoss {
        node: SLOT_NODE.to_string(),
        slot: crate::faults::slot::OUTBOX_SLOT.to_string(),
    }
}

/// The shortest hold of a covering schedule: longer than the dual-write's 2 s publish
/// timeout, so a send that timed out may still arrive after the client gave up.
pub const COVER_MIN_HOLD: Duration = Duration::from_secs(3);

impl ScheduleConfig {
    /// Every kind of fault but `slot-loss` (drawn only when asked for) on `targets`, a
    /// fault every ~10 s holding ~5 s, for `duration`.
    pub fn new(seed: u64, duration: Duration, targets: &[&str]) -> ScheduleConfig {
        ScheduleConfig {
            seed,
            duration,
            interval: Duration::from_secs(10),
            hold: Duration::from_secs(5),
            faults: FaultKind::ALL
                .into_iter()
                .filter(|k| *k != FaultKind::SlotLoss)
                .collect(),
            targets: targets.iter().map(|t| t.to_string()).collect(),
            cover: true,
            overlap: 0.0,
            clock_targets: Vec::new(),
            aim_targets: Vec::new(),
            aimed: false,
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
    /// The faults, in start order; they overlap only as [`ScheduleConfig::overlap`] says.
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
            .filter(|k| *k != FaultKind::Clock || !cfg.clock_targets.is_empty())
            .filter(|k| !k.is_aimed() || cfg.targets.iter().any(|t| cfg.aim_targets.contains(t)))
            .filter(|k| *k != FaultKind::SlotLoss || cfg.targets.iter().any(|t| t == SLOT_NODE))
            .collect();
        let mut steps = Vec::new();
        if kinds.is_empty() || cfg.targets.is_empty() {
            return Schedule {
                seed: cfg.seed,
                steps,
            };
        }
        if cfg.aimed && kinds.iter().any(|k| k.is_aimed()) {
            return Schedule {
                seed: cfg.seed,
                steps: generate_aimed(&mut rng, cfg, &kinds),
            };
        }
        // The covering round: each target once, in a seeded order.
        let mut round: Vec<String> = if cfg.cover {
            let mut r = cfg.targets.clone();
            r.shuffle(&mut rng);
            r.reverse();
            // A slot loss asked for gets a turn of its own in the round, at a seeded
            // place (no randomness drawn unless asked: other schedules replay).
            if kinds.contains(&FaultKind::SlotLoss) {
                let at = rng.gen_range(0..=r.len());
                r.insert(at, SLOT_TURN.to_string());
            }
            r
        } else {
            Vec::new()
        };
        let mut t = jitter(&mut rng, cfg.interval);
        loop {
            let mut hold = jitter(&mut rng, cfg.hold);
            if cfg.cover {
                hold = hold.max(COVER_MIN_HOLD);
            }
            if t + hold > cfg.duration {
                break;
            }
            if round.last().is_some_and(|s| s == SLOT_TURN) {
                round.pop();
                steps.push(Step {
                    at: t,
                    fault: slot_loss(),
                    hold,
                });
                t += hold + jitter(&mut rng, cfg.interval).max(Duration::from_millis(1));
                continue;
            }
            // A covering step draws only kinds that can hit its subject (a clock fault
            // cannot hit an engine); with no clock faults this is every kind.
            let usable: Vec<FaultKind> = match round.last() {
                Some(subject) => kinds
                    .iter()
                    .copied()
                    .filter(|k| *k != FaultKind::Clock || cfg.clock_targets.contains(subject))
                    .filter(|k| !k.is_aimed() || cfg.aim_targets.contains(subject))
                    .filter(|k| *k != FaultKind::SlotLoss || subject == SLOT_NODE)
                    .collect(),
                None => kinds.clone(),
            };
            if usable.is_empty() {
                round.pop();
                continue;
            }
            let kind = usable[rng.gen_range(0..usable.len())];
            let fault = match round.pop() {
                Some(subject) => draw_on(&mut rng, kind, cfg, &subject),
                None => match draw(&mut rng, kind, cfg, &cfg.targets) {
                    Some(fault) => fault,
                    // Clock targets outside the targets: nothing more can be drawn.
                    None => break,
                },
            };
            let mut end = t + hold;
            // No randomness is drawn for overlaps unless asked: older schedules replay.
            let second = (cfg.overlap > 0.0 && rng.gen_bool(cfg.overlap.min(1.0)))
                .then(|| overlapping(&mut rng, cfg, &kinds, &fault, t, hold))
                .flatten();
            steps.push(Step { at: t, fault, hold });
            if let Some(second) = second {
                end = end.max(second.at + second.hold);
                steps.push(second);
            }
            // A step of zero length would loop for ever.
            t = end + jitter(&mut rng, cfg.interval).max(Duration::from_millis(1));
        }
        Schedule {
            seed: cfg.seed,
            steps,
        }
    }

    /// Plays the schedule against a nemesis from now on: each fault at its time, held,
    /// reverted (overlapping faults concurrently); then [`Nemesis::heal_all`]. Every
    /// event goes to `emit` as it happens. A fault that cannot be applied, or whose
    /// effect the nemesis does not observe, is emitted with its `error` and skipped.
    ///
    /// The faults on a process that aimed faults target ([`lane_of`]) are played one
    /// after another: each waits until the one before it on that process has ended
    /// (its reply came or it gave up, its hold, its revert), so no fault lands on a
    /// process another one holds, and a lane runs as densely as its process lets it. A
    /// fault so delayed that it would end after the schedule's last fault, or reach into
    /// another fault on its process (a cut of its link), is skipped as missed; a delayed
    /// aimed fault avoids the engines held down at its new time.
    ///
    /// Dropping the future mid-way leaves the current faults in place: call `heal_all`
    /// afterwards. Returns what took effect.
    pub async fn play(&self, nemesis: &Nemesis, emit: impl FnMut(Event)) -> crate::Result<Played> {
        let start = Instant::now();
        let emit = std::sync::Mutex::new(emit);
        let played_cell = std::sync::Mutex::new(Played::default());
        let send = |ev: Event| (emit.lock().unwrap_or_else(|e| e.into_inner()))(ev);
        let send = &send;
        // Faults in effect right now, to count those that start while another holds.
        let holding = std::sync::atomic::AtomicUsize::new(0);
        let (played, holding) = (&played_cell, &holding);
        let lanes = lanes(&self.steps);
        let end = self
            .steps
            .iter()
            .map(|s| s.at + s.hold)
            .max()
            .unwrap_or_default();
        // `why` names the fault.
        let note_missed = |fault: &Fault, why: String| {
            tracing::info!("nemesis: {why}");
            played
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .missed
                .push(format!(
                    "{fault} at {:.1} s: {why}",
                    start.elapsed().as_secs_f64()
                ));
        };
        let note_missed = &note_missed;
        let one = |step: Step| async move {
            match nemesis.apply(&step.fault).await {
                Ok(ev) => {
                    let others = holding.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let mut p = played.lock().unwrap_or_else(|e| e.into_inner());
                    p.applied += 1;
                    *p.kinds.entry(step.fault.kind().to_string()).or_default() += 1;
                    p.overlapping += usize::from(others > 0);
                    drop(p);
                    send(ev)
                }
                Err(e @ crate::Error::NotFired(_)) => {
                    note_missed(&step.fault, e.to_string());
                    send(failed(step.fault.names().0, &step.fault, &e));
                    return;
                }
                Err(e) => {
                    played
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .failed
                        .push(format!(
                            "{} at {:.1} s: {e}",
                            step.fault,
                            start.elapsed().as_secs_f64()
                        ));
                    send(failed(step.fault.names().0, &step.fault, &e));
                    return;
                }
            }
            tokio::time::sleep(step.hold).await;
            let reverted = nemesis.revert(&step.fault).await;
            holding.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            match reverted {
                Ok(ev) => send(ev),
                Err(e) => send(failed(step.fault.names().1, &step.fault, &e)),
            }
        };
        let one = &one;
        let steps = &self.steps;
        let lanes_ref = &lanes;
        let runs = lanes.iter().map(|(lane, members)| async move {
            for &i in members {
                let step = &steps[i];
                tokio::time::sleep(step.at.saturating_sub(start.elapsed())).await;
                let mut step = step.clone();
                let now = start.elapsed();
                if lane.is_some() && now > step.at + LATE {
                    match delayed(steps, lanes_ref, i, now, end) {
                        Ok(arming) => {
                            if let Fault::CrashAfter(at) | Fault::CutBefore(at) = &mut step.fault {
                                arming.apply(at);
                            }
                        }
                        Err(why) => {
                            note_missed(&step.fault, format!("{}: {why}", step.fault));
                            continue;
                        }
                    }
                }
                one(step).await;
            }
        });
        futures_util::future::join_all(runs).await;
        send(nemesis.heal_all().await?);
        Ok(played_cell.into_inner().unwrap_or_else(|e| e.into_inner()))
    }
}

/// How late a fault may start before it counts as delayed by the one before it.
const LATE: Duration = Duration::from_millis(100);

/// The process a fault is played in line on: the node of a one-node fault, when that
/// node is the target of an aimed fault somewhere in `steps` (a scheme's or service's
/// process); `None` for the engines' faults, cuts and halves, played at their times.
pub fn lane_of(fault: &Fault, steps: &[Step]) -> Option<String> {
    let [node] = fault.nodes()[..] else {
        return None;
    };
    if matches!(
        fault,
        Fault::Cut { .. } | Fault::Halves { .. } | Fault::SlotLoss { .. }
    ) {
        return None;
    }
    steps
        .iter()
        .any(|s| matches!(&s.fault, Fault::CrashAfter(a) | Fault::CutBefore(a) if a.node == node))
        .then(|| node.to_string())
}

/// The schedule's steps (by index) in lanes: one lane a process played in line, in
/// start order; every other step a lane of its own.
fn lanes(steps: &[Step]) -> Vec<(Option<String>, Vec<usize>)> {
    let mut out: Vec<(Option<String>, Vec<usize>)> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        match lane_of(&step.fault, steps) {
            Some(node) => match out.iter_mut().find(|(l, _)| l.as_ref() == Some(&node)) {
                Some((_, members)) => members.push(i),
                None => out.push((Some(node), vec![i])),
            },
            None => out.push((None, vec![i])),
        }
    }
    for (_, members) in &mut out {
        members.sort_by_key(|i| steps[*i].at);
    }
    out
}

/// Whether step `i`, delayed in its lane to `now`, may still be played: not when it
/// would end after `end` (the schedule's last fault) or meet a fault of another lane on
/// its process (a cut of its link: restarting the process would undo it). When it may,
/// its aim for its new time ([`Arming`], from other lanes' faults).
fn delayed(
    steps: &[Step],
    lanes: &[(Option<String>, Vec<usize>)],
    i: usize,
    now: Duration,
    end: Duration,
) -> Result<Arming, String> {
    let step = &steps[i];
    let late = format!(
        "delayed to {:.1} s by the fault before it on its process",
        now.as_secs_f64()
    );
    if now + step.hold > end {
        return Err(format!(
            "{late}, it would end after the schedule's last fault"
        ));
    }
    let node = step.fault.nodes()[0];
    let others: Vec<Step> = lanes
        .iter()
        .filter(|(l, _)| l.as_deref() != Some(node))
        .flat_map(|(_, members)| members.iter().map(|j| steps[*j].clone()))
        .collect();
    let aiming = matches!(step.fault, Fault::CrashAfter(_) | Fault::CutBefore(_));
    let Some(room) = room(&others, node, now, step.hold, aiming) else {
        let met = others
            .iter()
            .find(|o| o.fault.nodes().contains(&node) && o.at + o.hold > now)
            .map(|o| o.fault.to_string())
            .unwrap_or_default();
        return Err(format!("{late}, it would meet {met}"));
    };
    let processes: Vec<String> = lanes.iter().filter_map(|(l, _)| l.clone()).collect();
    Ok(Arming::at(&others, &processes, now, room))
}

/// A second fault for `first` (at `at`, holding `hold`): it starts within the first
/// half of the hold, on a target `first` does not touch, of a one-node kind, and ends
/// by the schedule's end; `None` when no such fault can be drawn.
fn overlapping(
    rng: &mut ChaCha8Rng,
    cfg: &ScheduleConfig,
    kinds: &[FaultKind],
    first: &Fault,
    at: Duration,
    hold: Duration,
) -> Option<Step> {
    let touched = first.nodes();
    let others: Vec<String> = cfg
        .targets
        .iter()
        .filter(|t| !touched.contains(&t.as_str()))
        .cloned()
        .collect();
    let one_node: Vec<FaultKind> = kinds
        .iter()
        .copied()
        .filter(|k| !matches!(k, FaultKind::Halves | FaultKind::Cut))
        .collect();
    if others.is_empty() || one_node.is_empty() {
        return None;
    }
    let kind = one_node[rng.gen_range(0..one_node.len())];
    let fault = draw(rng, kind, cfg, &others)?;
    let offset = Duration::from_millis(rng.gen_range(0..=hold.as_millis() as u64 / 2));
    let mut second_hold = jitter(rng, cfg.hold);
    if cfg.cover {
        second_hold = second_hold.max(COVER_MIN_HOLD);
    }
    let step = Step {
        at: at + offset,
        fault,
        hold: second_hold,
    };
    (step.at + step.hold <= cfg.duration).then_some(step)
}

/// What [`Schedule::play`] did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Played {
    /// Faults that took effect (applied and observed).
    pub applied: usize,
    /// Of those, how many of each kind (`kill`, `isolate`, `clock`, …).
    #[serde(default)]
    pub kinds: std::collections::BTreeMap<String, usize>,
    /// Of those, how many took effect while another fault held.
    #[serde(default)]
    pub overlapping: usize,
    /// Faults that could not be applied or did not take effect, each with when and why.
    pub failed: Vec<String>,
    /// Aimed faults that were armed but never fired (their reply never came in time):
    /// nothing was done, so they are neither applied nor failed.
    #[serde(default)]
    pub missed: Vec<String>,
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

/// A fault of `kind` that hits `subject`: a one-node fault on it, a cut between it and
/// another target, halves with it on one side.
fn draw_on(rng: &mut ChaCha8Rng, kind: FaultKind, cfg: &ScheduleConfig, subject: &str) -> Fault {
    let Some(fault) = draw(rng, kind, cfg, &cfg.targets) else {
        // Only a clock fault with no clock target draws nothing; callers never ask.
        return Fault::Kill {
            node: subject.to_string(),
        };
    };
    match fault {
        Fault::Kill { .. } => Fault::Kill {
            node: subject.to_string(),
        },
        Fault::Pause { .. } => Fault::Pause {
            node: subject.to_string(),
        },
        Fault::Isolate { .. } => Fault::Isolate {
            node: subject.to_string(),
        },
        Fault::Loss { p, .. } => Fault::Loss {
            node: subject.to_string(),
            p,
        },
        Fault::Delay { ms, .. } => Fault::Delay {
            node: subject.to_string(),
            ms,
        },
        Fault::Clock { offset_s, .. } => Fault::Clock {
            node: subject.to_string(),
            offset_s,
        },
        Fault::CrashAfter(at) => Fault::CrashAfter(AimedAt {
            node: subject.to_string(),
            ..at
        }),
        Fault::CutBefore(at) => Fault::CutBefore(AimedAt {
            node: subject.to_string(),
            ..at
        }),
        Fault::Cut { a, b } => {
            if a == subject || b == subject {
                Fault::Cut { a, b }
            } else {
                let other = if rng.gen_bool(0.5) { a } else { b };
                let mut two = [subject.to_string(), other];
                two.sort();
                let [a, b] = two;
                Fault::Cut { a, b }
            }
        }
        halves @ Fault::Halves { .. } => halves,
        // Callers draw it on postgres only.
        slot @ Fault::SlotLoss { .. } => slot,
    }
}

/// A fault of `kind` on `targets` (a clock fault on those of them whose clock can be
/// moved, a slot loss on `postgres`: `None` when there are none).
fn draw(
    rng: &mut ChaCha8Rng,
    kind: FaultKind,
    cfg: &ScheduleConfig,
    targets: &[String],
) -> Option<Fault> {
    let one = |rng: &mut ChaCha8Rng| targets[rng.gen_range(0..targets.len())].clone();
    Some(match kind {
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
        FaultKind::CrashAfter | FaultKind::CutBefore => {
            let aimable: Vec<&String> = targets
                .iter()
                .filter(|t| cfg.aim_targets.contains(t))
                .collect();
            if aimable.is_empty() {
                return None;
            }
            let node = aimable[rng.gen_range(0..aimable.len())].clone();
            aimed_fault(rng, kind, node, Arming::default())
        }
        FaultKind::SlotLoss => {
            if !targets.iter().any(|t| t == SLOT_NODE) {
                return None;
            }
            slot_loss()
        }
        FaultKind::Clock => {
            let movable: Vec<&String> = targets
                .iter()
                .filter(|t| cfg.clock_targets.contains(t))
                .collect();
            if movable.is_empty() {
                return None;
            }
            Fault::Clock {
                node: movable[rng.gen_range(0..movable.len())].clone(),
                // A minute or ten, either way: past RocketMQ's check-back timings and
                // any age a scheme computes from a timestamp.
                offset_s: [-600, -60, 60, 600][rng.gen_range(0..4)],
            }
        }
    })
}

// The aimed schedule, the default of `chaosbank run`: lanes played side by side.
//
// - **Outages** (the engines' lane): every engine — and the link between the broker and
//   the consumer — is taken out once, in a seeded order, for a hold that outlasts the
//   clients' timeouts: at least [`LONG_MIN`], at most [`LONG_MAX`]. A bug that only
//   shows when an outage outlasts a timeout (a consumer that gives up on a message, a
//   retry budget that runs out) is then exercised in every run, not by chance. The
//   outages come in windows, two or more at once on nodes no other outage of the
//   window touches (a link cut never beside an outage of one of its ends), as many
//   windows as fit half the time limit: the other half is free of outages, so the
//   processes work — and drain each outage's backlog — while the aimed faults fire
//   (outages back to back left a consumer with nothing to do for most of a run).
//   Windows that do not fit the time limit at [`LONG_MIN`] are left out, the last of
//   the seeded order first.
// - **Aimed faults** (a lane per process): each process, on its own, gets one fault
//   after another, each aimed at the moment between two effects — mostly `cut-before`
//   or `crash-after` a reply, alike (three in four, and the first always), else a
//   one-node fault of the run's other kinds (a kill only when `crash-after` is not
//   asked for). Each is planned to follow the one before
//   it as soon as that one can have ended, and is played only once it has (see
//   [`Schedule::play`]): a busy process is aimed every few seconds, one that waits
//   for its reply holds only its own lane. An aimed fault draws its reply among those
//   the process really gets (a commit that wrote, a produce, an offset), avoiding
//   engines the outages hold down when it is armed (their replies would not come),
//   waits for a reply of an engine an outage takes down meanwhile only until then,
//   and for any no later than a cut of its process's link begins (restarting the
//   process would undo the cut).
//
// The same seed gives the same lanes for every scheme with the same targets, so the
// correct designs are cleared under exactly what convicts the wrong ones.

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
fn generate_aimed(rng: &mut ChaCha8Rng, cfg: &ScheduleConfig, kinds: &[FaultKind]) -> Vec<Step> {
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
    // A slot loss, when asked for, takes its turn among the engines' outages (no
    // randomness drawn unless asked: other schedules replay as they were).
    if kinds.contains(&FaultKind::SlotLoss) && engines.iter().any(|e| e == SLOT_NODE) {
        faults.push(slot_loss());
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
    // Outages come in windows of two or more at once, on nodes no other outage of the
    // window touches, so that half the run is free of them: the processes then work
    // between outages (a consumer whose broker, link or bank is out has nothing to do,
    // and the aimed faults need it busy), and drain each outage's backlog as the next
    // aims fire. As many windows as fit half the time limit at the shortest hold (one
    // at least), each holding up to the time limit's half shared out.
    let half = cfg.duration / 2;
    let most = (half.as_millis() / window_len(LONG_MIN).as_millis()).max(1) as usize;
    let windows = group_outages(faults, most);
    let first = jitter(rng, cfg.interval / 2);
    // As many windows as fit at the shortest hold, the last of the seeded order left
    // out first.
    let mut n = windows.len();
    while n > 0 && first + window_len(LONG_MIN) * n as u32 > cfg.duration {
        n -= 1;
    }
    if n == 0 {
        return Vec::new();
    }
    // A window of `hold` lasts up to 5/4 of it.
    let hold = (half / n as u32 * 4 / 5).clamp(LONG_MIN, LONG_MAX);
    let hold = if first + window_len(hold) * n as u32 > cfg.duration {
        LONG_MIN
    } else {
        hold
    };
    // The free time is shared out before each window, from half to all of its share:
    // a run starts with its processes at work, so the first aims find them busy (an
    // outage from the first second left an api or a consumer with nothing to do for
    // its first 13–15 s, until 2026-12-05) and the first outage finds work in flight.
    let free = cfg
        .duration
        .saturating_sub(first + window_len(hold) * n as u32);
    let share = free / n as u32;
    let mut t = first;
    let mut steps = Vec::new();
    for window in windows.into_iter().take(n) {
        let gap =
            share / 2 + Duration::from_millis(rng.gen_range(0..=share.as_millis() as u64 / 2));
        t += gap;
        let mut end = t;
        for (i, fault) in window.into_iter().enumerate() {
            // The first starts the window; the others within a quarter of the hold.
            let late = if i == 0 {
                0
            } else {
                rng.gen_range(0..=hold.as_millis() as u64 / 4)
            };
            // Whole milliseconds, up to a tenth shorter than the share, never under
            // the floor.
            let cut = rng.gen_range(0..=hold.as_millis() as u64 / 10);
            let h = Duration::from_millis(hold.as_millis() as u64 - cut).max(LONG_MIN);
            let at = t + Duration::from_millis(late);
            if at + h > cfg.duration {
                continue;
            }
            end = end.max(at + h);
            steps.push(Step { at, fault, hold: h });
        }
        t = end + Duration::from_millis(1);
    }
    steps.sort_by_key(|s| s.at);
    steps
}

/// The longest a window of outages lasts whose hold is `hold`: its last outage may
/// start a quarter of the hold after the first.
fn window_len(hold: Duration) -> Duration {
    hold + hold / 4
}

/// `faults` (in their seeded order) shared among `most` windows, each fault in the
/// emptiest window none of whose faults touches its nodes (a link cut never beside an
/// outage of one of its ends), those touching most others placed first; a fault that
/// fits none opens a window of its own. Empty windows are dropped.
fn group_outages(faults: Vec<Fault>, most: usize) -> Vec<Vec<Fault>> {
    let touch = |a: &Fault, b: &Fault| a.nodes().iter().any(|n| b.nodes().contains(n));
    // Those that cannot share a window with others are placed first (in their seeded
    // order otherwise), so the rest fill the windows evenly.
    let clashes: Vec<usize> = faults
        .iter()
        .map(|f| faults.iter().filter(|g| touch(f, g)).count())
        .collect();
    let mut order: Vec<(usize, Fault)> = clashes.into_iter().zip(faults).collect();
    order.sort_by_key(|(c, _)| std::cmp::Reverse(*c));
    let mut windows: Vec<Vec<Fault>> = vec![Vec::new(); most.max(1)];
    for (_, fault) in order {
        let fits = |w: &Vec<Fault>| w.iter().all(|o| !touch(o, &fault));
        match windows
            .iter_mut()
            .filter(|w| fits(w))
            .min_by_key(|w| w.len())
        {
            Some(w) => w.push(fault),
            None => windows.push(vec![fault]),
        }
    }
    windows.retain(|w| !w.is_empty());
    windows
}

/// The processes' lanes: one per process, in a seeded order, each its own run of
/// faults ([`process_lane`]).
fn aimed_lane(
    rng: &mut ChaCha8Rng,
    cfg: &ScheduleConfig,
    kinds: &[FaultKind],
    processes: &[String],
    outages: &[Step],
) -> Vec<Step> {
    let aimed: Vec<FaultKind> = kinds.iter().copied().filter(|k| k.is_aimed()).collect();
    // The processes' plain faults: a one-node kind of the run's, not a kill where
    // `crash-after` is asked for (the same SIGKILL, at a boundary instead of a random
    // instant: a consumer's plain kills cost a group rejoin each and convicted nothing
    // a crash would not, dedup-apart's seed 9 on 2026-12-05).
    let others: Vec<FaultKind> = kinds
        .iter()
        .copied()
        .filter(|k| {
            !k.is_aimed() && !matches!(k, FaultKind::Halves | FaultKind::Cut | FaultKind::SlotLoss)
        })
        .filter(|k| *k != FaultKind::Kill || !aimed.contains(&FaultKind::CrashAfter))
        .filter(|k| *k != FaultKind::Clock || !cfg.clock_targets.is_empty())
        .collect();
    let mut steps = Vec::new();
    if processes.is_empty() || aimed.is_empty() {
        return steps;
    }
    let mut order = processes.to_vec();
    order.shuffle(rng);
    for node in order {
        steps.extend(process_lane(
            rng, cfg, &aimed, &others, &node, processes, outages,
        ));
    }
    steps
}

/// One process's faults, one after another: first an aimed one, then three in four
/// aimed (`cut-before` and `crash-after` alike), else a one-node fault of `others`.
/// Each is planned to follow the one before it as soon as that one can have ended when
/// its reply comes at once (its hold, [`PROCESS_RESTART`], then a quiet time);
/// [`Schedule::play`] delays it while the one before still waits for its reply. Never
/// while the process's link is cut (restarting it would undo the cut); an aimed fault
/// is armed as [`Arming::at`] says.
fn process_lane(
    rng: &mut ChaCha8Rng,
    cfg: &ScheduleConfig,
    aimed: &[FaultKind],
    others: &[FaultKind],
    node: &str,
    processes: &[String],
    outages: &[Step],
) -> Vec<Step> {
    let mut steps = Vec::new();
    let base: u32 = rng.gen();
    let mut aims = 0u32;
    let mut t = jitter(rng, cfg.interval) / 2;
    loop {
        let plain = !others.is_empty() && !steps.is_empty() && rng.gen_range(0..4) == 0;
        let kind = if plain {
            others[rng.gen_range(0..others.len())]
        } else {
            // Crashes and cuts alike: a cut costs the process only a reconnect, so a
            // lane reaches more boundaries with cuts, but not every mistake a crash
            // convicts a cut does (a RocketMQ producer sends a half again when its
            // send reply is cut, so only a crash leaves the half orphaned). Cuts
            // twice as often as crashes left the broken Java service's median at
            // 14.8 s (README, "Time to conviction under the aimed schedule").
            aimed[rng.gen_range(0..aimed.len())]
        };
        let hold = if plain {
            jitter(rng, cfg.hold)
        } else {
            jitter(rng, AIMED_HOLD)
        };
        let gap = if plain {
            jitter(rng, cfg.interval)
        } else {
            jitter(rng, cfg.interval / 2)
        }
        .max(Duration::from_millis(1));
        let aiming = !plain;
        // Room before the next fault on the process (a cut of its link): an aimed fault
        // waits for its reply at most until then; one with no room goes after it.
        let Some(room) = room(outages, node, t, hold, aiming) else {
            let cut_end = outages
                .iter()
                .filter(|o| o.fault.nodes().contains(&node) && o.at + o.hold > t)
                .map(|o| o.at + o.hold)
                .min()
                .unwrap_or(cfg.duration);
            t = cut_end + Duration::from_millis(1);
            continue;
        };
        if t + hold > cfg.duration {
            break;
        }
        let fault = if plain {
            draw(rng, kind, cfg, &[node.to_string()]).unwrap_or(Fault::Kill {
                node: node.to_string(),
            })
        } else {
            let arming = Arming::at(outages, processes, t, room);
            let k = aims;
            aims += 1;
            lane_aimed_fault(rng, kind, node.to_string(), arming, (base, k))
        };
        steps.push(Step { at: t, fault, hold });
        t += hold + PROCESS_RESTART + gap;
    }
    steps
}

/// The shortest wait an aimed fault is given for its reply: with less room before the
/// next fault on its process, it goes after that fault instead.
const MIN_AIM_WAIT: Duration = Duration::from_secs(1);

/// How long a fault on `node` starting at `t` and holding `hold` may wait for its reply
/// (an aimed one; others do not wait) before a fault of `others` on the same node
/// begins, up to [`AIM_WAIT`]; `None` when it would meet one: it starts inside one, or
/// leaves less than [`MIN_AIM_WAIT`] (an aimed fault) before one, after its hold and
/// [`PROCESS_RESTART`].
fn room(
    others: &[Step],
    node: &str,
    t: Duration,
    hold: Duration,
    aiming: bool,
) -> Option<Duration> {
    let least = if aiming { MIN_AIM_WAIT } else { Duration::ZERO };
    let mut room = if aiming { AIM_WAIT } else { Duration::ZERO };
    for o in others.iter().filter(|o| o.fault.nodes().contains(&node)) {
        if o.at + o.hold <= t {
            continue;
        }
        let free = o.at.checked_sub(t + hold + PROCESS_RESTART)?;
        if free < least {
            return None;
        }
        room = room.min(free);
    }
    Some(room)
}

/// What an aimed fault armed at a time may aim at, given the other faults of the
/// schedule: the engines held down then (or within [`MIN_AIM_WAIT`]) are avoided (their
/// replies would not come); an engine taken down later while it may wait is waited for
/// only until then. Until 2026-12-05 an aim avoided every engine held down at any time
/// of its wait and hold, so in the ~11 s before an outage window an api's aims avoided
/// both its bank and its broker and did not fire.
#[derive(Clone, Debug, Default, PartialEq)]
struct Arming {
    /// Engines held down when it is armed.
    avoid: Vec<String>,
    /// Engines taken down while it waits, each with how long after it is armed.
    down_after: BTreeMap<String, Duration>,
    /// How long it may wait (`None`: [`AIM_WAIT`]).
    wait: Option<Duration>,
}

impl Arming {
    /// The arming of an aim at `t` that may wait `room` (up to [`AIM_WAIT`]), among the
    /// faults of `others` on engines (nodes not in `processes`). A cut between two
    /// nodes holds neither down for a third (the link between the broker and the
    /// consumer leaves the broker to the api).
    fn at(others: &[Step], processes: &[String], t: Duration, room: Duration) -> Arming {
        let mut arming = Arming {
            wait: (room < AIM_WAIT).then_some(room),
            ..Arming::default()
        };
        let downs = others
            .iter()
            .filter(|o| o.at < t + room && t < o.at + o.hold)
            .filter(|o| !matches!(o.fault, Fault::Cut { .. } | Fault::Halves { .. }));
        for o in downs {
            for n in o.fault.nodes() {
                if processes.iter().any(|p| p == n) {
                    continue;
                }
                match o.at.checked_sub(t) {
                    Some(after) if after >= MIN_AIM_WAIT => {
                        let d = arming.down_after.entry(n.to_string()).or_insert(after);
                        *d = (*d).min(after);
                    }
                    _ => arming.avoid.push(n.to_string()),
                }
            }
        }
        arming.avoid.sort();
        arming.avoid.dedup();
        for n in &arming.avoid {
            arming.down_after.remove(n);
        }
        arming
    }

    /// Sets an aim's avoided engines, engines going down and wait to this.
    fn apply(self, at: &mut AimedAt) {
        at.avoid = self.avoid;
        at.down_after_ms = self
            .down_after
            .into_iter()
            .map(|(n, d)| (n, d.as_millis() as u64))
            .collect();
        at.wait_ms = self.wait.map(|w| w.as_millis() as u64);
    }
}

/// Time allowed for a process to be started again after a fault on it is reverted,
/// before the aimed lane may pick it again.
const PROCESS_RESTART: Duration = Duration::from_secs(1);

/// An aimed fault of `kind` on `node`: the 1st to 5th matching reply, the reply drawn
/// when the fault is applied (by `draw`) among those the process gets, as `arming`
/// lets it.
fn aimed_fault(rng: &mut ChaCha8Rng, kind: FaultKind, node: String, arming: Arming) -> Fault {
    let nth = rng.gen_range(1..=5);
    let draw = rng.gen::<u32>();
    aimed_fault_at(kind, node, arming, nth, draw)
}

/// A lane's `k`-th aim: its engine and reply kind go round those its process gets (the
/// draw is the lane's `base` plus `k`), and its n-th reply is odd for two aims, then
/// even for two, so that with two engines each engine's aims alternate odd and even: of
/// two commits in a row (a credit and its dedup row), each is aimed at within four aims.
fn lane_aimed_fault(
    rng: &mut ChaCha8Rng,
    kind: FaultKind,
    node: String,
    arming: Arming,
    (base, k): (u32, u32),
) -> Fault {
    let nth = if (k / 2) % 2 == 0 {
        [1, 3, 5][rng.gen_range(0..3)]
    } else {
        [2, 4][rng.gen_range(0..2)]
    };
    aimed_fault_at(kind, node, arming, nth, base.wrapping_add(k))
}

/// An aim, paired, at the `nth` reply, engine and kind left to `draw`.
fn aimed_fault_at(kind: FaultKind, node: String, arming: Arming, nth: u32, draw: u32) -> Fault {
    let mut at = AimedAt {
        node,
        engine: None,
        reply: None,
        nth,
        paired: true,
        draw,
        avoid: Vec::new(),
        down_after_ms: BTreeMap::new(),
        wait_ms: None,
    };
    arming.apply(&mut at);
    match kind {
        FaultKind::CutBefore => Fault::CutBefore(at),
        _ => Fault::CrashAfter(at),
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
            clock_targets: vec!["kafka".to_string()],
            aim_targets: vec!["mariadb".to_string()],
            ..cfg(1)
        });
        for st in &s.steps {
            if let Fault::Clock { node, .. } = &st.fault {
                assert_eq!(node, "kafka", "a clock fault off the clock targets\n{s}");
            }
        }
        for kind in FaultKind::ALL {
            let drawn = s.steps.iter().any(|st| {
                let v = serde_json::to_value(&st.fault).unwrap();
                v["kind"] == kind.name()
            });
            // slot-loss is drawn only when asked for.
            assert_eq!(
                drawn,
                kind != FaultKind::SlotLoss,
                "{kind:?} drawn: {drawn}"
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
    fn a_covering_schedule_hits_every_target_before_any_twice() {
        let targets = ["postgres", "mariadb", "kafka", "producer", "consumer"];
        for seed in 0..200 {
            let s = Schedule::generate(&ScheduleConfig {
                interval: Duration::from_millis(1500),
                hold: Duration::from_secs(4),
                faults: vec![FaultKind::Kill, FaultKind::Isolate, FaultKind::Cut],
                ..ScheduleConfig::new(seed, Duration::from_secs(60), &targets)
            });
            assert!(s.steps.len() >= targets.len(), "{s}");
            let hit: std::collections::BTreeSet<&str> = s.steps[..targets.len()]
                .iter()
                .flat_map(|st| match &st.fault {
                    Fault::Cut { a, b } => vec![a.as_str(), b.as_str()],
                    f => vec![f.nodes()[0]],
                })
                .collect();
            for t in targets {
                assert!(
                    hit.contains(t),
                    "seed {seed}: {t} not hit in the first round\n{s}"
                );
            }
            assert!(s.steps.iter().all(|st| st.hold >= COVER_MIN_HOLD), "{s}");
        }
    }

    #[test]
    fn without_cover_the_old_draw_is_kept() {
        // Older run.json files have no `cover`: their schedules must replay unchanged.
        let old: ScheduleConfig = serde_json::from_value(serde_json::json!({
            "seed": 5, "duration": {"secs": 60, "nanos": 0},
            "interval": {"secs": 2, "nanos": 0}, "hold": {"secs": 1, "nanos": 0},
            "faults": ["kill"], "targets": ["postgres", "mariadb"]
        }))
        .unwrap();
        assert!(!old.cover);
        let s = Schedule::generate(&old);
        assert!(s.steps.iter().any(|st| st.hold < COVER_MIN_HOLD), "{s}");
    }

    #[test]
    fn overlapping_faults_touch_other_nodes_and_end_in_time() {
        let targets = ["postgres", "mariadb", "kafka", "producer", "consumer"];
        let mut overlaps = 0;
        for seed in 0..100 {
            let s = Schedule::generate(&ScheduleConfig {
                faults: vec![FaultKind::Kill, FaultKind::Isolate, FaultKind::Cut],
                overlap: 0.5,
                ..ScheduleConfig::new(seed, Duration::from_secs(120), &targets)
            });
            for (i, a) in s.steps.iter().enumerate() {
                assert!(a.at + a.hold <= Duration::from_secs(120), "{s}");
                for b in &s.steps[i + 1..] {
                    assert!(b.at >= a.at, "steps out of order\n{s}");
                    if b.at < a.at + a.hold {
                        overlaps += 1;
                        // Reverting one never undoes the other: no node in common, and
                        // the second is a one-node fault.
                        assert!(
                            a.fault.nodes().iter().all(|n| !b.fault.nodes().contains(n)),
                            "{} and {} share a node\n{s}",
                            a.fault,
                            b.fault
                        );
                        assert_eq!(b.fault.nodes().len(), 1, "{s}");
                    }
                }
            }
        }
        assert!(
            overlaps > 100,
            "only {overlaps} overlapping pairs in 100 schedules"
        );
        // Without overlap, the same seed draws what it drew before overlaps existed.
        let plain = ScheduleConfig::new(9, Duration::from_secs(120), &targets);
        let s = Schedule::generate(&plain);
        for w in s.steps.windows(2) {
            assert!(w[1].at >= w[0].at + w[0].hold, "{s}");
        }
    }

    #[test]
    fn clock_faults_cover_only_nodes_whose_clock_moves() {
        let targets = ["postgres", "kafka", "producer", "consumer"];
        for seed in 0..100 {
            let s = Schedule::generate(&ScheduleConfig {
                interval: Duration::from_millis(1500),
                hold: Duration::from_secs(4),
                faults: vec![FaultKind::Clock],
                clock_targets: vec!["producer".to_string(), "consumer".to_string()],
                ..ScheduleConfig::new(seed, Duration::from_secs(60), &targets)
            });
            assert!(s.steps.len() >= 2, "{s}");
            // The covering round skips the engines (no clock to move) and hits both nodes.
            let first: Vec<&str> = s.steps[..2].iter().map(|st| st.fault.nodes()[0]).collect();
            assert!(
                first.contains(&"producer") && first.contains(&"consumer"),
                "{s}"
            );
            for st in &s.steps {
                assert!(
                    matches!(&st.fault, Fault::Clock { node, offset_s }
                        if (node == "producer" || node == "consumer") && *offset_s != 0),
                    "{s}"
                );
            }
        }
        // No clock targets: no clock faults at all.
        let none = Schedule::generate(&ScheduleConfig {
            faults: vec![FaultKind::Clock],
            ..ScheduleConfig::new(1, Duration::from_secs(60), &targets)
        });
        assert!(none.steps.is_empty(), "{none}");
    }

    #[test]
    fn a_slot_loss_is_drawn_on_postgres_only_and_only_when_asked() {
        let asked = ScheduleConfig {
            faults: vec![FaultKind::SlotLoss, FaultKind::Kill],
            targets: ["connect", "kafka", "postgres"].map(String::from).to_vec(),
            ..cfg(3)
        };
        for seed in 0..20 {
            // The covering round gives it a turn of its own: never missed by chance.
            let s = Schedule::generate(&ScheduleConfig {
                seed,
                duration: Duration::from_secs(100),
                interval: Duration::from_secs(2),
                targets: [
                    "connect", "kafka", "postgres", "mariadb", "relay", "consumer",
                ]
                .map(String::from)
                .to_vec(),
                ..asked.clone()
            });
            let losses: Vec<&Fault> = s
                .steps
                .iter()
                .map(|st| &st.fault)
                .filter(|f| f.kind() == "slot-loss")
                .collect();
            assert!(!losses.is_empty(), "{s}");
            for f in losses {
                assert_eq!(
                    f,
                    &Fault::SlotLoss {
                        node: "postgres".into(),
                        slot: "chaosbank_outbox_a".into()
                    }
                );
            }
        }
        // Without postgres among the targets there is nothing to drop.
        let s = Schedule::generate(&ScheduleConfig {
            targets: vec!["connect".into(), "kafka".into()],
            ..asked.clone()
        });
        assert!(s.steps.iter().all(|st| st.fault.kind() == "kill"), "{s}");
        // Not among the default kinds.
        assert!(!ScheduleConfig::new(1, Duration::from_secs(1), &[])
            .faults
            .contains(&FaultKind::SlotLoss));
        // The aimed schedule gives it a turn among the engines' outages.
        let aimed = ScheduleConfig {
            faults: vec![FaultKind::SlotLoss, FaultKind::Kill, FaultKind::CrashAfter],
            targets: ["postgres", "kafka", "consumer"].map(String::from).to_vec(),
            aim_targets: vec!["consumer".into()],
            aimed: true,
            ..cfg(5)
        };
        let s = Schedule::generate(&aimed);
        assert!(
            s.steps.iter().any(|st| st.fault.kind() == "slot-loss"),
            "{s}"
        );
        // A slot loss reads as what it does and names its slot in its event.
        let f = Fault::SlotLoss {
            node: "postgres".into(),
            slot: "chaosbank_outbox_a".into(),
        };
        assert_eq!(
            f.to_string(),
            "drop postgres's replication slot chaosbank_outbox_a"
        );
        assert_eq!(f.names(), ("slot-loss", "heal"));
        let v: Fault =
            serde_json::from_value(serde_json::json!({"kind": "slot-loss", "node": "postgres"}))
                .unwrap();
        assert_eq!(v, f);
        assert_eq!(FaultKind::parse("slot-loss"), Some(FaultKind::SlotLoss));
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

#[cfg(test)]
mod aimed_tests {
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
            // Outages held at once touch different nodes, and half the run is free.
            for (i, a) in out.iter().enumerate() {
                for b in &out[i + 1..] {
                    if b.at < a.at + a.hold && a.at < b.at + b.hold {
                        let an = a.fault.nodes();
                        assert!(
                            b.fault.nodes().iter().all(|n| !an.contains(n)),
                            "seed {seed}: {} beside {}\n{s}",
                            a.fault,
                            b.fault
                        );
                    }
                }
            }
            let mut down = Duration::ZERO;
            let mut until = Duration::ZERO;
            for st in &out {
                let (from, to) = (st.at.max(until), st.at + st.hold);
                down += to.saturating_sub(from);
                until = until.max(to);
            }
            assert!(
                down <= Duration::from_secs(30),
                "seed {seed}: {down:?} down\n{s}"
            );
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
                let (Fault::CrashAfter(at) | Fault::CutBefore(at)) = &st.fault else {
                    continue;
                };
                let (node, avoid, nth) = (&at.node, &at.avoid, &at.nth);
                assert!((1..=5).contains(nth));
                assert!(at.wait() >= MIN_AIM_WAIT && at.wait() <= AIM_WAIT, "{s}");
                aimed_on.insert(node.clone());
                // Exactly the engines down when it is armed (or within a second) are
                // avoided: not the ends of a cut link (the broker stays the api's).
                let engines = outages
                    .iter()
                    .filter(|o| !matches!(o.fault, Fault::Cut { .. }))
                    .filter(|o| o.at < st.at + at.wait() && st.at < o.at + o.hold);
                let (mut down, mut later) = (Vec::new(), BTreeMap::new());
                for o in engines {
                    let n = o.fault.nodes()[0].to_string();
                    if o.at < st.at + MIN_AIM_WAIT {
                        down.push(n);
                    } else {
                        later.insert(n, (o.at - st.at).as_millis() as u64);
                    }
                }
                down.sort();
                assert_eq!(avoid, &down, "seed {seed}: {}\n{s}", st.fault);
                // An engine taken down while it waits is waited for only until then.
                assert_eq!(at.down_after_ms, later, "seed {seed}: {}\n{s}", st.fault);
                for (engine, ms) in &later {
                    assert_eq!(at.wait_for(Some(engine)), Duration::from_millis(*ms));
                    assert!(at.wait_for(Some(engine)) < at.wait());
                }
                for o in &outages {
                    // Its wait, its hold and its process's restart end before a cut of
                    // its link begins.
                    let reach = at.wait() + st.hold + PROCESS_RESTART;
                    let overlaps = o.at < st.at + reach && st.at < o.at + o.hold;
                    if overlaps && matches!(o.fault, Fault::Cut { .. }) {
                        assert!(
                            !o.fault.nodes().contains(&node.as_str()),
                            "seed {seed}: aimed at {node} while its link is cut\n{s}"
                        );
                    }
                }
            }
            assert_eq!(aimed_on.len(), 3, "seed {seed}: {aimed_on:?}\n{s}");
        }
    }

    #[test]
    fn each_process_has_a_lane_of_its_own_played_in_line() {
        let (mut crashes, mut cuts) = (0u32, 0u32);
        for seed in 0..200 {
            let s = Schedule::generate(&cfg(seed, 60));
            let lanes = lanes(&s.steps);
            // One lane a process, every other step (the outages) on its own.
            let named: Vec<&str> = lanes.iter().filter_map(|(l, _)| l.as_deref()).collect();
            assert_eq!(named.len(), 3, "seed {seed}: {named:?}\n{s}");
            for (lane, members) in &lanes {
                let Some(node) = lane else {
                    assert_eq!(members.len(), 1);
                    assert!(s.steps[members[0]].hold >= LONG_MIN, "{s}");
                    continue;
                };
                // Planned one after another: each after the one before has held and
                // its process has been started again; the first aimed. Every process
                // gets more than one aim a run.
                let mut until = Duration::ZERO;
                for &i in members {
                    let st = &s.steps[i];
                    assert_eq!(st.fault.nodes(), [node.as_str()], "{s}");
                    assert!(st.at >= until, "seed {seed}: {} too early\n{s}", st.fault);
                    until = st.at + st.hold + PROCESS_RESTART;
                }
                assert!(
                    matches!(
                        s.steps[members[0]].fault,
                        Fault::CrashAfter(_) | Fault::CutBefore(_)
                    ),
                    "{s}"
                );
                let aims = members
                    .iter()
                    .filter(|i| {
                        matches!(
                            s.steps[**i].fault,
                            Fault::CrashAfter(_) | Fault::CutBefore(_)
                        )
                    })
                    .count();
                assert!(aims >= 3, "seed {seed}: {aims} aims on {node}\n{s}");
                // A process is never killed at a random instant: crash-after kills it
                // at a boundary.
                assert!(
                    members
                        .iter()
                        .all(|i| !matches!(s.steps[*i].fault, Fault::Kill { .. })),
                    "seed {seed}: a plain kill of {node}\n{s}"
                );
                for i in members {
                    match s.steps[*i].fault {
                        Fault::CrashAfter(_) => crashes += 1,
                        Fault::CutBefore(_) => cuts += 1,
                        _ => {}
                    }
                }
            }
        }
        // Crashes and cuts alike (within a tenth, over 200 seeds).
        let (lo, hi) = (crashes.min(cuts) as f64, crashes.max(cuts) as f64);
        assert!(hi / lo < 1.1, "{crashes} crashes, {cuts} cuts");
    }

    #[test]
    fn a_lanes_aims_go_round_its_engines_odd_and_even_replies_alike() {
        for seed in 0..200 {
            let s = Schedule::generate(&cfg(seed, 60));
            for (lane, members) in lanes(&s.steps) {
                if lane.is_none() {
                    continue;
                }
                let aims: Vec<&AimedAt> = members
                    .iter()
                    .filter_map(|i| match &s.steps[*i].fault {
                        Fault::CrashAfter(at) | Fault::CutBefore(at) => Some(at),
                        _ => None,
                    })
                    .collect();
                // The draw (which engine, then which kind of reply) steps by one from
                // aim to aim; the n-th reply is odd for two aims, then even for two.
                for (k, at) in aims.iter().enumerate() {
                    assert!(at.paired, "{s}");
                    assert_eq!(at.draw, aims[0].draw.wrapping_add(k as u32), "{s}");
                    assert_eq!(at.nth % 2 == 1, (k / 2) % 2 == 0, "seed {seed}: {s}");
                }
                // So a process with two engines (a consumer: its own bank and the
                // broker, or two commits in a row on one) has each engine aimed at an
                // odd and an even reply within its first four aims.
                if aims.len() >= 4 {
                    let seen: std::collections::BTreeSet<(u32, u32)> =
                        aims[..4].iter().map(|a| (a.draw % 2, a.nth % 2)).collect();
                    assert_eq!(seen.len(), 4, "seed {seed}: {seen:?}\n{s}");
                }
            }
        }
    }

    #[test]
    fn a_fault_delayed_in_its_lane_is_skipped_when_it_would_meet_a_cut_or_the_end() {
        let s = Schedule::generate(&cfg(4, 60));
        let lanes = lanes(&s.steps);
        let end = s.steps.iter().map(|st| st.at + st.hold).max().unwrap();
        let cut = s
            .steps
            .iter()
            .find(|st| matches!(st.fault, Fault::Cut { .. }))
            .expect("the link's cut");
        let (_, consumer) = lanes
            .iter()
            .find(|(l, _)| l.as_deref() == Some("consumer"))
            .unwrap();
        let i = consumer[0];
        // Delayed into the cut of its link: skipped, naming the cut.
        let why = delayed(&s.steps, &lanes, i, cut.at, end).unwrap_err();
        assert!(why.contains("cut consumer <-> kafka"), "{why}");
        // Delayed past the schedule's end: skipped.
        let why = delayed(&s.steps, &lanes, i, end, end).unwrap_err();
        assert!(why.contains("after the schedule's last fault"), "{why}");
        // Delayed into another engine's outage: played, avoiding that engine only.
        let outage = s
            .steps
            .iter()
            .find(|st| st.hold >= LONG_MIN && !matches!(st.fault, Fault::Cut { .. }))
            .unwrap();
        let (_, relay) = lanes
            .iter()
            .find(|(l, _)| l.as_deref() == Some("relay"))
            .unwrap();
        let avoid = delayed(&s.steps, &lanes, relay[0], outage.at, end)
            .unwrap()
            .avoid;
        assert!(
            avoid.contains(&outage.fault.nodes()[0].to_string()),
            "{avoid:?}\n{s}"
        );
        assert!(avoid
            .iter()
            .all(|n| !["producer", "relay", "consumer"].contains(&n.as_str())));
    }

    #[test]
    fn only_processes_with_aimed_faults_are_played_in_line() {
        let step = |at: u64, fault: Fault| Step {
            at: Duration::from_secs(at),
            fault,
            hold: Duration::from_secs(2),
        };
        let kill = |n: &str| Fault::Kill { node: n.into() };
        let steps = vec![
            step(1, kill("relay")),
            step(
                2,
                aimed_fault(
                    &mut ChaCha8Rng::seed_from_u64(1),
                    FaultKind::CrashAfter,
                    "relay".into(),
                    Arming::default(),
                ),
            ),
            step(3, kill("postgres")),
            step(4, kill("postgres")),
        ];
        assert_eq!(lane_of(&steps[0].fault, &steps).as_deref(), Some("relay"));
        assert_eq!(lane_of(&steps[2].fault, &steps), None);
        assert_eq!(
            lanes(&steps),
            vec![
                (Some("relay".to_string()), vec![0, 1]),
                (None, vec![2]),
                (None, vec![3]),
            ]
        );
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
        // 20 s: one window of outages fits (what can be held at once); 8 s: none, but
        // aimed faults still do.
        let s = Schedule::generate(&cfg(1, 20));
        let out = long(&s);
        assert!(!out.is_empty(), "{s}");
        assert!(
            out.iter().all(|st| st.at <= out[0].at + LONG_MIN / 4),
            "{s}"
        );
        let s = Schedule::generate(&cfg(1, 8));
        assert!(long(&s).is_empty(), "{s}");
        assert!(
            s.steps
                .iter()
                .any(|st| matches!(st.fault, Fault::CrashAfter(_) | Fault::CutBefore(_))),
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
            .all(|st| !matches!(st.fault, Fault::CrashAfter(_) | Fault::CutBefore(_))));
        assert!(s.steps.iter().all(|st| st.hold < LONG_MIN), "{s}");
    }
}
