//! The nemesis: faults on a cluster's nodes as plain calls that read like the scenario
//! (`kill`, `restart`, `pause`, `resume`, `isolate`, `halves`, `cut`, `loss`, `heal`,
//! `heal_all`), in the manner of turmoil and Jepsen.
//!
//! Every call returns an [`Event`] `{f, value}` for the recorder to write as an op of
//! process `"nemesis"`. Start and end events come in pairs: `kill`/`restart`,
//! `pause`/`resume`, `partition`/`heal`, `loss`/`heal`.
//!
//! Network faults are iptables rules inside a container's network namespace, entered
//! from the host with `nsenter -t <pid> -n`, in two chains of our own (`CHAOSBANK-IN`,
//! jumped to first from INPUT, and `CHAOSBANK-OUT`, from OUTPUT). Healing flushes those
//! chains; it needs no network, so a partition can never lock out its own heal. The
//! name `host` stands for the host side (the run network's gateway, through which the
//! harness's clients reach published ports): `cut("postgres", "host")` cuts the
//! harness's own connections to PostgreSQL while leaving other containers' alone.
//! Loopback is never touched. Killing a node drops its rules with its namespace.

use crate::cluster::Inner;
use crate::docker::run_command;
use crate::error::{Error, Result};
use bollard::query_parameters::{InspectContainerOptions, StartContainerOptions};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use workloads::node::aim::{self, Action, Aim, Reply};

/// The node name that stands for the host (the harness and its clients).
pub const HOST: &str = "host";
const CHAIN_IN: &str = "CHAOSBANK-IN";
const CHAIN_OUT: &str = "CHAOSBANK-OUT";

/// A fault and its parameters; the value part of its events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// SIGKILL the node's container; reverted by starting it again.
    Kill {
        /// The node.
        node: String,
    },
    /// Freeze the node's processes; reverted by resuming them.
    Pause {
        /// The node.
        node: String,
    },
    /// Cut the node off from every other node and from the host.
    Isolate {
        /// The node.
        node: String,
    },
    /// Cut every link between two groups of nodes (`host` may be in either).
    Halves {
        /// One side.
        a: Vec<String>,
        /// The other side.
        b: Vec<String>,
    },
    /// Cut the link between two nodes, both directions.
    Cut {
        /// One end.
        a: String,
        /// The other end.
        b: String,
    },
    /// Drop a random fraction `p` of the node's packets, both directions.
    Loss {
        /// The node.
        node: String,
        /// Probability that a packet is dropped, 0..=1.
        p: f64,
    },
    /// Add `ms` milliseconds of latency, each way, to the links between chaosbank's
    /// node containers and `node`: for an engine, its links from every node container;
    /// for a node container, all its links to the engines. The kernel here has no
    /// netem, so this is done by the userspace proxies every node container reaches the
    /// engines through; the harness's own links (reads, final state) are not slowed.
    Delay {
        /// The node.
        node: String,
        /// Added latency per direction, milliseconds.
        ms: u64,
    },
    /// Kill a process (a scheme's node or a service's process: SIGKILL-like, no
    /// cleanup) right after the aimed reply has reached it through its forwarder, so it
    /// dies having learnt an outcome and before acting on it; reverted by starting it
    /// again, as after [`Fault::Kill`].
    CrashAfter(AimedAt),
    /// Withhold the aimed reply and reset the process's connection instead: the engine
    /// did the work, the process can never know it did. Nothing to revert.
    CutBefore(AimedAt),
    /// Move the wall clock of every process in a node container (a scheme's producer,
    /// relay or consumer, or a service's process) `offset_s` seconds from the real time
    /// (libfaketime; monotonic clocks are left alone); reverted by putting it back.
    /// Needs the cluster made with clock faults on ([`crate::ClusterBuilder::clock_faults`]).
    Clock {
        /// The node.
        node: String,
        /// Seconds, either way.
        offset_s: i64,
    },
    /// Drop a logical replication slot on a PostgreSQL node (its walsender terminated
    /// first), as a failover to a replica without the slot does: the `slot-loss` fault
    /// of systems read by Debezium (see [`crate::faults::slot`]). Nothing to revert: the
    /// connector makes the slot again when its task restarts.
    SlotLoss {
        /// The PostgreSQL node (`postgres`: bank A).
        node: String,
        /// The slot dropped.
        #[serde(default = "outbox_slot")]
        slot: String,
    },
}

fn outbox_slot() -> String {
    crate::faults::slot::OUTBOX_SLOT.to_string()
}

/// Where an aimed fault ([`Fault::CrashAfter`], [`Fault::CutBefore`]) strikes: the
/// `nth` reply of kind `reply` from `engine` reaching `node`. A reply or engine left out
/// is drawn (by `draw`) when the fault is applied, among those the process has received
/// so far, avoiding the engines in `avoid`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AimedAt {
    /// The process's node.
    pub node: String,
    /// The engine whose reply is aimed at (drawn when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// The kind of reply (drawn when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
    /// Which matching reply, from 1.
    pub nth: u32,
    /// Counted in pairs ([`Aim::paired`]): the reply's number since the process started
    /// has `nth`'s parity, so an odd `nth` hits the first of two commits a unit of work
    /// and an even one the second. Every aim a schedule draws is; a script's is not
    /// unless it says so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paired: bool,
    /// The seeded draw that picks an engine and reply left out.
    #[serde(default)]
    pub draw: u32,
    /// Engines not to aim at (those another fault holds down when it is armed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub avoid: Vec<String>,
    /// Engines another fault takes down while it waits, each with how long after it
    /// is armed, in milliseconds: a reply of one of them is waited for only until then
    /// (it would never come after).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub down_after_ms: BTreeMap<String, u64>,
    /// How long it may wait for its reply, in milliseconds ([`AIM_WAIT`] when absent):
    /// less where another fault on its process follows (a cut of its link, which a
    /// crash would undo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

impl AimedAt {
    /// How long it may wait for its reply.
    pub fn wait(&self) -> Duration {
        self.wait_ms.map_or(AIM_WAIT, Duration::from_millis)
    }

    /// How long it may wait for a reply of `engine`: [`AimedAt::wait`], cut to when
    /// another fault takes that engine down.
    pub fn wait_for(&self, engine: Option<&str>) -> Duration {
        let down = engine
            .and_then(|e| self.down_after_ms.get(e))
            .map(|ms| Duration::from_millis(*ms));
        down.map_or(self.wait(), |d| d.min(self.wait()))
    }
}

impl Fault {
    /// The event names of this fault's start and end.
    pub fn names(&self) -> (&'static str, &'static str) {
        match self {
            Fault::Kill { .. } => ("kill", "restart"),
            Fault::Pause { .. } => ("pause", "resume"),
            Fault::Isolate { .. } | Fault::Halves { .. } | Fault::Cut { .. } => {
                ("partition", "heal")
            }
            Fault::Loss { .. } => ("loss", "heal"),
            Fault::Delay { .. } => ("delay", "heal"),
            Fault::Clock { .. } => ("clock", "heal"),
            Fault::CrashAfter(_) => ("crash", "restart"),
            Fault::CutBefore(_) => ("cut-reply", "heal"),
            Fault::SlotLoss { .. } => ("slot-loss", "heal"),
        }
    }

    /// The fault's kind as its events name it (`kill`, `pause`, `isolate`, `halves`,
    /// `cut`, `loss`, `delay`, `clock`).
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Kill { .. } => "kill",
            Fault::Pause { .. } => "pause",
            Fault::Isolate { .. } => "isolate",
            Fault::Halves { .. } => "halves",
            Fault::Cut { .. } => "cut",
            Fault::Loss { .. } => "loss",
            Fault::Delay { .. } => "delay",
            Fault::Clock { .. } => "clock",
            Fault::CrashAfter(_) => "crash-after",
            Fault::CutBefore(_) => "cut-before",
            Fault::SlotLoss { .. } => "slot-loss",
        }
    }

    /// An aimed fault's aim as given (engine and reply as drawn, or `None`), else `None`.
    fn aim(&self) -> Option<(Action, &AimedAt, Aim)> {
        let (action, at) = match self {
            Fault::CrashAfter(at) => (Action::Crash, at),
            Fault::CutBefore(at) => (Action::Cut, at),
            _ => return None,
        };
        let aim = Aim {
            action,
            engine: at.engine.clone(),
            reply: at.reply,
            nth: at.nth,
            paired: at.paired,
        };
        Some((action, at, aim))
    }

    /// Every node this fault hits, in the order it names them.
    pub fn nodes(&self) -> Vec<&str> {
        match self {
            Fault::Kill { node }
            | Fault::Pause { node }
            | Fault::Isolate { node }
            | Fault::Loss { node, .. }
            | Fault::Delay { node, .. }
            | Fault::Clock { node, .. }
            | Fault::CrashAfter(AimedAt { node, .. })
            | Fault::CutBefore(AimedAt { node, .. })
            | Fault::SlotLoss { node, .. } => vec![node.as_str()],
            Fault::Cut { a, b } => vec![a.as_str(), b.as_str()],
            Fault::Halves { a, b } => a.iter().chain(b).map(String::as_str).collect(),
        }
    }

    /// The nodes whose network namespaces carry this fault's rules.
    fn net_nodes(&self) -> Vec<String> {
        match self {
            Fault::Isolate { node } | Fault::Loss { node, .. } => vec![node.clone()],
            Fault::Cut { a, b } => vec![a.clone(), b.clone()],
            Fault::Halves { a, b } => a.iter().chain(b).cloned().collect(),
            Fault::Kill { .. }
            | Fault::Pause { .. }
            | Fault::Delay { .. }
            | Fault::Clock { .. }
            | Fault::CrashAfter(_)
            | Fault::CutBefore(_)
            | Fault::SlotLoss { .. } => Vec::new(),
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Kill { node } => write!(f, "kill {node}"),
            Fault::Pause { node } => write!(f, "pause {node}"),
            Fault::Isolate { node } => write!(f, "isolate {node}"),
            Fault::Halves { a, b } => write!(f, "partition {} | {}", a.join(","), b.join(",")),
            Fault::Cut { a, b } => write!(f, "cut {a} <-> {b}"),
            Fault::Loss { node, p } => write!(f, "drop {:.0}% of {node}'s packets", p * 100.0),
            Fault::Delay { node, ms } => write!(f, "delay {node}'s links by {ms} ms"),
            Fault::Clock { node, offset_s } => write!(f, "move {node}'s clock {offset_s:+} s"),
            Fault::SlotLoss { node, slot } => write!(f, "drop {node}'s replication slot {slot}"),
            Fault::CrashAfter(_) | Fault::CutBefore(_) => {
                let Some((_, at, aim)) = self.aim() else {
                    return Ok(());
                };
                write!(f, "{}: {aim}", at.node)
            }
        }
    }
}

/// A nemesis op for the history: process `"nemesis"`, this `f` and `value`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `kill`, `restart`, `pause`, `resume`, `partition`, `loss`, `heal` or `heal-all`.
    pub f: String,
    /// The fault (e.g. `{"kind":"kill","node":"postgres"}`) or, for `heal-all`, what it did.
    pub value: serde_json::Value,
    /// Why the fault could not be applied, when it could not (the op is then `info`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

impl Event {
    fn new(f: &str, value: impl Serialize) -> Event {
        Event {
            f: f.to_string(),
            value: serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
            error: None,
        }
    }
}

/// Injects faults into one cluster. Cheap to clone; get it from
/// [`crate::cluster::Cluster::nemesis`].
#[derive(Clone, Debug)]
pub struct Nemesis {
    inner: Arc<Inner>,
    /// The replies each process has received in this run, kept across its restarts (a
    /// restarted node counts from zero): what an aimed fault is drawn among.
    replies: Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<aim::ReplyCount>>>>,
}

impl crate::cluster::Cluster {
    /// The fault injector for this cluster.
    pub fn nemesis(&self) -> Nemesis {
        Nemesis::new(self.inner.clone())
    }
}

impl Nemesis {
    pub(crate) fn new(inner: Arc<Inner>) -> Nemesis {
        Nemesis {
            inner,
            replies: Arc::default(),
        }
    }

    /// `fresh` (what `node` answers now) joined with what it answered before a restart;
    /// remembered for the next aim.
    fn remember(&self, node: &str, fresh: Vec<aim::ReplyCount>) -> Vec<aim::ReplyCount> {
        let mut seen = self.replies.lock().unwrap_or_else(|e| e.into_inner());
        let known = seen.entry(node.to_string()).or_default();
        *known = join_counts(known, &fresh);
        known.clone()
    }

    /// Starts a fault.
    pub async fn apply(&self, fault: &Fault) -> Result<Event> {
        let started = Instant::now();
        if let Some((action, at, aim)) = fault.aim() {
            return self.aimed(fault, action, at, aim).await;
        }
        match fault {
            Fault::Kill { node } => {
                let c = self.container(node)?;
                self.inner.engine.kill(&c).await?;
            }
            Fault::Pause { node } => {
                let c = self.container(node)?;
                // runc gives up freezing a cgroup whose tasks do not stop in time
                // ("unable to freeze") and thaws it again: nothing was applied, so try
                // again, backing off (seen on busy JVMs and a busy consumer under load:
                // twice in one service run, once in 10 kafka-tx runs).
                let mut tries = 0;
                loop {
                    tries += 1;
                    match self.inner.engine.api().pause_container(&c).await {
                        Ok(()) => break,
                        Err(e) if tries < 6 && e.to_string().contains("unable to freeze") => {
                            tracing::warn!("nemesis: pause {c}: {e}; trying again");
                            tokio::time::sleep(Duration::from_millis((250 << tries).min(2000)))
                                .await;
                        }
                        Err(e) => return Err(Error::docker(format!("pause {c}"))(e)),
                    }
                }
            }
            Fault::Isolate { node } => {
                let ns = self.netns(node).await?;
                self.rules(
                    ns,
                    &[&["!", "-i", "lo", "-j", "DROP"]],
                    &[&["!", "-o", "lo", "-j", "DROP"]],
                )
                .await?;
            }
            Fault::Cut { a, b } => self.cut_link(a, b).await?,
            Fault::Halves { a, b } => {
                for x in a {
                    for y in b {
                        self.cut_link(x, y).await?;
                    }
                }
            }
            Fault::Loss { node, p } => {
                if !(0.0..=1.0).contains(p) {
                    return Err(Error::Config(format!(
                        "loss probability {p} is not in 0..=1"
                    )));
                }
                let ns = self.netns(node).await?;
                let p = format!("{p}");
                let stat = [
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &p,
                    "-j",
                    "DROP",
                ];
                let mut i = vec!["!", "-i", "lo"];
                i.extend(stat);
                let mut o = vec!["!", "-o", "lo"];
                o.extend(stat);
                self.rules(ns, &[&i], &[&o]).await?;
            }
            Fault::Delay { node, ms } => {
                self.delay(node, *ms).await?;
            }
            Fault::Clock { node, offset_s } => {
                self.set_clock(node, *offset_s).await?;
            }
            Fault::SlotLoss { node, slot } => {
                // The drop is its own observation: it either dropped the slot or failed.
                let c = self.container(node)?;
                let dropped =
                    crate::faults::slot::drop_slot(&c, crate::service::SQL_USER, slot).await?;
                tracing::info!("nemesis: {fault} ({:.0?}): {dropped}", started.elapsed());
                let mut ev = Event::new(fault.names().0, fault);
                if let serde_json::Value::Object(m) = &mut ev.value {
                    m.insert("observed".to_string(), dropped.into());
                }
                return Ok(ev);
            }
            Fault::CrashAfter(_) | Fault::CutBefore(_) => {}
        }
        let observed = self.observe(fault).await?;
        tracing::info!("nemesis: {fault} ({:.0?}): {observed}", started.elapsed());
        let mut ev = Event::new(fault.names().0, fault);
        if let serde_json::Value::Object(m) = &mut ev.value {
            m.insert("observed".to_string(), observed.into());
        }
        Ok(ev)
    }

    /// Checks that a fault just applied took effect, and says what was seen: the
    /// container stopped or paused (the engine's own state), the DROP rules present in
    /// each node's network namespace (read back with `iptables -S`), the proxies'
    /// acknowledgement of the delay. An error when the effect is not there.
    async fn observe(&self, fault: &Fault) -> Result<String> {
        let not_applied =
            |what: String| Error::Config(format!("{fault} did not take effect: {what}"));
        match fault {
            Fault::Kill { node } | Fault::Pause { node } => {
                let c = self.container(node)?;
                let want_paused = matches!(fault, Fault::Pause { .. });
                let deadline = Instant::now() + Duration::from_secs(5);
                loop {
                    let state = self.inner.engine.state(&c).await?;
                    match state {
                        Some((false, _)) if !want_paused => {
                            return Ok(format!("container {c} is not running"))
                        }
                        Some((true, true)) if want_paused => {
                            return Ok(format!("container {c} is paused"))
                        }
                        None => return Err(not_applied(format!("container {c} is gone"))),
                        _ if Instant::now() >= deadline => {
                            return Err(not_applied(format!(
                                "container {c} is still {} after 5 s",
                                if want_paused { "unpaused" } else { "running" }
                            )))
                        }
                        _ => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
            Fault::Delay { node, ms } => Ok(format!(
                "the node containers' proxies hold {node}'s traffic {ms} ms each way"
            )),
            Fault::Clock { node, offset_s } => {
                self.clock_reads(node, *offset_s).await.map_err(not_applied)
            }
            _ => {
                let mut seen = Vec::new();
                for node in fault.net_nodes() {
                    if node == HOST {
                        continue;
                    }
                    let pid = self.netns(&node).await?;
                    let mut drops = 0;
                    for chain in [CHAIN_IN, CHAIN_OUT] {
                        let rules = iptables(pid, &["-S", chain]).await?;
                        drops += rules.lines().filter(|l| l.contains("-j DROP")).count();
                    }
                    if drops == 0 {
                        return Err(not_applied(format!(
                            "no DROP rule in {node}'s network namespace"
                        )));
                    }
                    seen.push(format!("{node}: {drops} DROP rules"));
                }
                Ok(format!("rules in place ({})", seen.join(", ")))
            }
        }
    }

    /// Ends a fault: restart, resume, or flush the rules on the nodes it touched.
    pub async fn revert(&self, fault: &Fault) -> Result<Event> {
        match fault {
            Fault::CutBefore(_) | Fault::SlotLoss { .. } => {}
            Fault::Kill { node } | Fault::CrashAfter(AimedAt { node, .. }) => {
                let c = self.container(node)?;
                self.inner
                    .engine
                    .api()
                    .start_container(&c, None::<StartContainerOptions>)
                    .await
                    .map_err(Error::docker(format!("start {c}")))?;
            }
            Fault::Pause { node } => {
                let c = self.container(node)?;
                self.inner
                    .engine
                    .api()
                    .unpause_container(&c)
                    .await
                    .map_err(Error::docker(format!("unpause {c}")))?;
            }
            Fault::Delay { node, .. } => {
                self.delay(node, 0).await?;
            }
            Fault::Clock { node, .. } => {
                self.set_clock(node, 0).await?;
                // Not healed until the node reads the real time again (libfaketime
                // rereads its file a second or two later): a fault that follows must
                // not start on a clock still moved.
                self.clock_reads(node, 0).await.map_err(|what| {
                    Error::Config(format!(
                        "putting back {node}'s clock did not take effect: {what}"
                    ))
                })?;
            }
            _ => {
                for node in fault.net_nodes() {
                    if node != HOST {
                        self.flush(&node).await?;
                    }
                }
            }
        }
        tracing::info!("nemesis: end of {fault}");
        Ok(Event::new(fault.names().1, fault))
    }

    /// Applies an aimed fault: picks the reply (among those the process has received,
    /// when not given), arms the process's forwarders, and waits for the fault to fire.
    /// The event names the process, the engine, the reply and what was seen.
    async fn aimed(&self, fault: &Fault, action: Action, at: &AimedAt, aim: Aim) -> Result<Event> {
        let (node, draw, avoid) = (at.node.as_str(), at.draw, &at.avoid[..]);
        let started = Instant::now();
        let target = self.inner.node(node)?;
        if !target.kind.is_app() {
            return Err(Error::Config(format!(
                "cannot aim at {node}: aimed faults reach chaosbank's node containers and a service's processes, not the engines"
            )));
        }
        let c = target.container.clone();
        if !matches!(self.inner.engine.state(&c).await?, Some((true, false))) {
            return Err(Error::NotFired(format!(
                "{fault}: did not fire: {node} is not running"
            )));
        }
        let addr = target.endpoint.addr();
        // A node just started again (by the fault before this one) answers within
        // moments: asked again until it does, for up to ANSWER_WAIT.
        let answer_by = Instant::now() + ANSWER_WAIT;
        // A process that has received nothing to aim at yet (its first work has not
        // come, or only from engines held down) is asked again while the fault may
        // wait: the aim is drawn once there is something (until 2026-12-05 it gave up
        // at once: a consumer's first aim, before its first message, never fired).
        let aim = loop {
            let counts = match workloads::node::replies(&addr).await {
                Ok(counts) => self.remember(node, counts),
                Err(_) if Instant::now() < answer_by => {
                    tokio::time::sleep(REPLIES_POLL).await;
                    continue;
                }
                Err(e) => {
                    return Err(Error::NotFired(format!(
                        "{fault}: did not fire: {node} does not answer: {e:#}"
                    )))
                }
            };
            if let Some(aim) = resolve(aim.clone(), &counts, draw, avoid) {
                break aim;
            }
            if started.elapsed() + MIN_ARMED >= at.wait() {
                let besides = if avoid.is_empty() {
                    String::new()
                } else {
                    format!(" from an engine other than {}", avoid.join(", "))
                };
                return Err(Error::NotFired(format!(
                    "{fault}: did not fire: {node} received no commit, produce or offset reply{besides} within {:?} (nor {FALLBACK_MIN} replies of a stream not understood)",
                    at.wait()
                )));
            }
            tokio::time::sleep(REPLIES_POLL).await;
        };
        // What is left of its wait (for this engine's reply) once the aim is drawn.
        let wait = at
            .wait_for(aim.engine.as_deref())
            .saturating_sub(started.elapsed());
        if wait < MIN_ARMED {
            return Err(Error::NotFired(format!(
                "{node}: {aim}: did not fire: {} goes down before it could come",
                aim.engine.as_deref().unwrap_or("its engine")
            )));
        }
        workloads::node::arm(&addr, &aim)
            .await
            .map_err(|e| Error::Config(format!("arming {node}: {e:#}")))?;
        let deadline = Instant::now() + wait;
        // Disarmed at the deadline; `unsure` when the node did not answer the disarm (a
        // crash that fired just then: its exit code decides).
        let (mut disarmed, mut unsure) = (false, false);
        let observed = loop {
            let seen = match action {
                Action::Crash => match self.exit_code(&c).await? {
                    Some(code) => Some(if code == i64::from(aim::CRASH_EXIT_CODE) {
                        format!(
                            "{node} exited (code {code}) right after the {} {}{} reached it",
                            aim::ordinal(aim.nth),
                            what(&aim),
                            aim.pairing()
                        )
                    } else {
                        format!("{node} exited with code {code} (not chaosbank's crash code {}) after it was armed for {aim}", aim::CRASH_EXIT_CODE)
                    }),
                    None => None,
                },
                Action::Cut => workloads::node::fired(&addr, false)
                    .await
                    .ok()
                    .flatten()
                    .map(|f| format!("{node}: {f}")),
            };
            if let Some(seen) = seen {
                break seen;
            }
            if Instant::now() >= deadline + Duration::from_secs(5) {
                if unsure {
                    return Err(Error::NotFired(format!(
                        "{node}: {aim}: did not fire within {wait:?} ({node} did not answer the disarm, and still runs)"
                    )));
                }
                return Err(Error::Config(format!(
                    "{node}: {aim}: fired, but {node} still runs {:?} later",
                    wait + Duration::from_secs(5)
                )));
            }
            if Instant::now() >= deadline && !disarmed {
                // Disarm; a crash may have fired in the meantime.
                disarmed = true;
                match (workloads::node::fired(&addr, true).await, action) {
                    (Ok(Some(f)), Action::Cut) => break format!("{node}: {f}"),
                    // Fired: the exit comes.
                    (Ok(Some(_)), Action::Crash) => {}
                    // The node just exited (a crash right at the deadline), or hangs:
                    // its exit code, polled above, decides.
                    (Err(_), Action::Crash) => unsure = true,
                    (Ok(None), _) | (Err(_), Action::Cut) => {
                        return Err(Error::NotFired(format!(
                            "{node}: {aim}: did not fire within {wait:?} (no such reply reached {node})"
                        )));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        tracing::info!(
            "nemesis: {node}: {aim} ({:.0?}): {observed}",
            started.elapsed()
        );
        let mut ev = Event::new(fault.names().0, fault);
        if let serde_json::Value::Object(m) = &mut ev.value {
            m.insert("engine".to_string(), aim.engine.clone().into());
            m.insert(
                "reply".to_string(),
                aim.reply.map(|r| r.name()).unwrap_or("any").into(),
            );
            m.insert("observed".to_string(), observed.into());
        }
        Ok(ev)
    }

    /// A stopped container's exit code; `None` while it runs.
    async fn exit_code(&self, c: &str) -> Result<Option<i64>> {
        let info = self
            .inner
            .engine
            .api()
            .inspect_container(c, None::<InspectContainerOptions>)
            .await
            .map_err(Error::docker(format!("inspect {c}")))?;
        let state = info.state.unwrap_or_default();
        Ok((!state.running.unwrap_or(false)).then(|| state.exit_code.unwrap_or(-1)))
    }

    /// SIGKILLs a node's container (Docker keeps it stopped; its data survives).
    pub async fn kill(&self, node: &str) -> Result<Event> {
        self.apply(&Fault::Kill { node: node.into() }).await
    }

    /// Starts a killed node's container again (same name, ports, data).
    pub async fn restart(&self, node: &str) -> Result<Event> {
        self.revert(&Fault::Kill { node: node.into() }).await
    }

    /// Freezes a node (its connections stay open but nothing answers).
    pub async fn pause(&self, node: &str) -> Result<Event> {
        self.apply(&Fault::Pause { node: node.into() }).await
    }

    /// Unfreezes a paused node.
    pub async fn resume(&self, node: &str) -> Result<Event> {
        self.revert(&Fault::Pause { node: node.into() }).await
    }

    /// Cuts a node off from every other node and from the host.
    pub async fn isolate(&self, node: &str) -> Result<Event> {
        self.apply(&Fault::Isolate { node: node.into() }).await
    }

    /// Cuts every link between group `a` and group `b`.
    pub async fn halves(&self, a: &[&str], b: &[&str]) -> Result<Event> {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        self.apply(&Fault::Halves {
            a: own(a),
            b: own(b),
        })
        .await
    }

    /// Cuts the link between two nodes (either may be [`HOST`]).
    pub async fn cut(&self, a: &str, b: &str) -> Result<Event> {
        self.apply(&Fault::Cut {
            a: a.into(),
            b: b.into(),
        })
        .await
    }

    /// Drops a fraction `p` of a node's packets.
    pub async fn loss(&self, node: &str, p: f64) -> Result<Event> {
        self.apply(&Fault::Loss {
            node: node.into(),
            p,
        })
        .await
    }

    /// Removes every partition and loss rule from every running node.
    pub async fn heal(&self) -> Result<Event> {
        let mut healed = Vec::new();
        for (node, c) in self.containers() {
            if let Ok(Some((true, _))) = self.inner.engine.state(&c).await {
                self.flush(&node).await?;
                healed.push(node);
            }
        }
        Ok(Event::new("heal", serde_json::json!({ "nodes": healed })))
    }

    /// Undoes everything: resumes paused nodes, starts stopped ones, flushes all rules.
    /// Every node is tried even when one fails; failures are named in the event's
    /// `error` and its value's `failed` list.
    /// Call it before reading final state and before teardown.
    pub async fn heal_all(&self) -> Result<Event> {
        let (mut resumed, mut restarted, mut healed) = (Vec::new(), Vec::new(), Vec::new());
        let mut failed = Vec::new();
        // Every node is tried, whatever failed before it.
        for (node, c) in self.containers() {
            let api = self.inner.engine.api();
            let step = async {
                match self.inner.engine.state(&c).await? {
                    Some((_, true)) => {
                        api.unpause_container(&c)
                            .await
                            .map_err(Error::docker(format!("unpause {c}")))?;
                        resumed.push(node.clone());
                    }
                    Some((false, _)) => {
                        api.start_container(&c, None::<StartContainerOptions>)
                            .await
                            .map_err(Error::docker(format!("start {c}")))?;
                        restarted.push(node.clone());
                    }
                    _ => {}
                }
                if self.flush(&node).await? {
                    healed.push(node.clone());
                }
                Ok::<(), Error>(())
            };
            if let Err(e) = step.await {
                tracing::warn!("heal-all: {node}: {e}");
                failed.push(serde_json::json!({ "node": node, "error": e.to_string() }));
            }
        }
        // Proxies of the node containers: no added latency (a restarted node has none);
        // clocks back to the real time (where clock faults are on).
        for n in self.app_nodes() {
            let addr = n.endpoint.addr();
            if let Err(e) = workloads::node::set_delay(&addr, None, Duration::ZERO).await {
                tracing::debug!("heal-all: resetting {}'s proxies: {e:#}", n.endpoint.node);
            }
            if self.inner.clock_faults {
                if let Err(e) = workloads::node::set_clock(&addr, 0).await {
                    tracing::warn!("heal-all: resetting {}'s clock: {e:#}", n.endpoint.node);
                    failed.push(serde_json::json!({
                        "node": n.endpoint.node,
                        "error": format!("resetting its clock: {e:#}"),
                    }));
                }
            }
        }
        let mut ev = Event::new(
            "heal-all",
            serde_json::json!({ "resumed": resumed, "restarted": restarted, "flushed": healed }),
        );
        if !failed.is_empty() {
            ev.error = Some(format!(
                "could not heal {}",
                failed
                    .iter()
                    .map(|f| format!("{}: {}", f["node"].as_str().unwrap_or("?"), f["error"]))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            ev.value["failed"] = failed.into();
        }
        Ok(ev)
    }

    /// Sets the latency the node containers' proxies add on their links to `node` (an
    /// engine), or on all links of `node` (a node container); 0 removes it.
    pub async fn delay(&self, node: &str, ms: u64) -> Result<Event> {
        let target = self.inner.node(node)?;
        let (nodes, engine): (Vec<_>, Option<&str>) = if target.kind.is_app() {
            (vec![target.clone()], None)
        } else {
            (self.app_nodes(), Some(node))
        };
        if nodes.is_empty() {
            return Err(Error::Config(format!(
                "cannot delay {node}: latency is added by the node containers' proxies and this cluster has none"
            )));
        }
        let d = std::time::Duration::from_millis(ms);
        for n in &nodes {
            workloads::node::set_delay(&n.endpoint.addr(), engine, d)
                .await
                .map_err(|e| Error::Config(format!("delay on {}: {e:#}", n.endpoint.node)))?;
        }
        let fault = Fault::Delay {
            node: node.to_string(),
            ms,
        };
        Ok(Event::new(if ms == 0 { "heal" } else { "delay" }, fault))
    }

    /// Moves a node container's wall clock `offset_s` seconds from the real time.
    pub async fn set_clock(&self, node: &str, offset_s: i64) -> Result<Event> {
        let addr = self.clock_node(node)?;
        workloads::node::set_clock(&addr, offset_s)
            .await
            .map_err(|e| Error::Config(format!("moving {node}'s clock: {e:#}")))?;
        let fault = Fault::Clock {
            node: node.to_string(),
            offset_s,
        };
        Ok(Event::new(
            if offset_s == 0 { "heal" } else { "clock" },
            fault,
        ))
    }

    /// Waits up to 5 s for a node's own clock, read back against ours (one kernel
    /// clock), to stand `offset_s` seconds from the real time, within 1.5 s; says what it
    /// read, or, as the error, how far off the clock still is.
    async fn clock_reads(&self, node: &str, offset_s: i64) -> std::result::Result<String, String> {
        let addr = self.clock_node(node).map_err(|e| e.to_string())?;
        let want = offset_s * 1000;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let ours = workloads::node::clock::now_ms();
            let theirs = workloads::node::node_time(&addr)
                .await
                .map_err(|e| format!("reading {node}'s clock: {e:#}"))?;
            let skew = theirs - (ours + workloads::node::clock::now_ms()) / 2;
            let reads = format!(
                "{node}'s clock reads {:+.1} s from the host's",
                skew as f64 / 1000.0
            );
            if (skew - want).abs() < 1500 {
                return Ok(reads);
            }
            if Instant::now() >= deadline {
                return Err(format!("{reads} after 5 s"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The control address of a node whose clock can be moved, or why it cannot.
    fn clock_node(&self, node: &str) -> Result<String> {
        let target = self.inner.node(node)?;
        if !target.kind.is_app() {
            return Err(Error::Config(format!(
                "cannot move {node}'s clock: clock faults reach chaosbank's node containers and a service's processes, not the engines"
            )));
        }
        if !self.inner.clock_faults {
            return Err(Error::Config(format!(
                "cannot move {node}'s clock: the cluster was made without clock faults (the run's nemesis must include clock)"
            )));
        }
        Ok(target.endpoint.addr())
    }

    /// The scheme's own node containers (producer, relay, consumer).
    fn app_nodes(&self) -> Vec<crate::cluster::Node> {
        self.inner
            .lock_nodes()
            .values()
            .filter(|n| n.kind.is_app())
            .cloned()
            .collect()
    }

    fn container(&self, node: &str) -> Result<String> {
        Ok(self.inner.node(node)?.container)
    }

    fn containers(&self) -> Vec<(String, String)> {
        self.inner
            .lock_nodes()
            .iter()
            .map(|(n, node)| (n.clone(), node.container.clone()))
            .collect()
    }

    /// The pid whose network namespace is the node's.
    async fn netns(&self, node: &str) -> Result<u32> {
        let c = self.container(node)?;
        self.inner.engine.pid(&c).await
    }

    /// A node's address on the run network, or the gateway for [`HOST`].
    async fn address(&self, node: &str) -> Result<String> {
        let (c, want_gateway) = if node == HOST {
            // Any running container knows the network's gateway.
            let any = self
                .containers()
                .into_iter()
                .map(|(_, c)| c)
                .next()
                .ok_or_else(|| Error::UnknownNode(HOST.to_string()))?;
            (any, true)
        } else {
            (self.container(node)?, false)
        };
        let info = self
            .inner
            .engine
            .api()
            .inspect_container(&c, None::<InspectContainerOptions>)
            .await
            .map_err(Error::docker(format!("inspect {c}")))?;
        let ep = info
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(&self.inner.network));
        let addr = ep.and_then(|e| {
            if want_gateway {
                e.gateway
            } else {
                e.ip_address
            }
        });
        addr.filter(|a| !a.is_empty()).ok_or_else(|| {
            Error::Config(format!(
                "{node} has no address on {} (not running?)",
                self.inner.network
            ))
        })
    }

    async fn cut_link(&self, a: &str, b: &str) -> Result<()> {
        if a == b {
            return Err(Error::Config(format!("cannot cut {a} from itself")));
        }
        for (here, there) in [(a, b), (b, a)] {
            if here == HOST {
                continue; // the host's side is cut inside the container on the other end
            }
            let peer = self.address(there).await?;
            let ns = self.netns(here).await?;
            self.rules(
                ns,
                &[&["-s", &peer, "-j", "DROP"]],
                &[&["-d", &peer, "-j", "DROP"]],
            )
            .await?;
        }
        Ok(())
    }

    /// Makes sure our chains exist and are jumped to first, then appends rules.
    async fn rules(&self, pid: u32, input: &[&[&str]], output: &[&[&str]]) -> Result<()> {
        for (chain, parent) in [(CHAIN_IN, "INPUT"), (CHAIN_OUT, "OUTPUT")] {
            if iptables(pid, &["-n", "-L", chain]).await.is_err() {
                iptables(pid, &["-N", chain]).await?;
            }
            if iptables(pid, &["-C", parent, "-j", chain]).await.is_err() {
                iptables(pid, &["-I", parent, "1", "-j", chain]).await?;
            }
        }
        for (chain, rules) in [(CHAIN_IN, input), (CHAIN_OUT, output)] {
            for rule in rules {
                let mut args = vec!["-A", chain];
                args.extend_from_slice(rule);
                iptables(pid, &args).await?;
            }
        }
        Ok(())
    }

    /// Flushes our chains on a node; `false` when the node is not running.
    async fn flush(&self, node: &str) -> Result<bool> {
        let Ok(pid) = self.netns(node).await else {
            return Ok(false);
        };
        for chain in [CHAIN_IN, CHAIN_OUT] {
            if iptables(pid, &["-n", "-L", chain]).await.is_ok() {
                iptables(pid, &["-F", chain]).await?;
            }
        }
        Ok(true)
    }
}

/// How long an armed fault may wait for its reply before it counts as not fired: past
/// a Kafka consumer's 10 s session, so an aim armed on a consumer restarted by the aim
/// before it (its group rejoined once its old member's session ran out) or idle through
/// an outage fires at its first reply after, instead of giving up (at 4 s, until
/// 2026-12-05, most such aims did). Only its process's lane waits meanwhile.
pub const AIM_WAIT: Duration = Duration::from_secs(10);

/// "commit reply from postgres", "reply from any engine".
fn what(aim: &Aim) -> String {
    let r = aim
        .reply
        .map_or("reply".to_string(), |r| format!("{r} reply"));
    format!("{r} from {}", aim.engine.as_deref().unwrap_or("any engine"))
}

/// Fills in an aim's engine and reply left out: the `draw`-th (mod their number) of the
/// (engine, reply) pairs of an aimed kind the process has received, engines in `avoid`
/// left out: an engine drawn first, each as likely, then a kind of its replies. Failing
/// those, any reply from an engine not avoided that has sent at least [`FALLBACK_MIN`]
/// replies (a stream not understood); failing that, as given when the process has
/// received nothing yet and nothing is to be avoided, else `None`.
pub fn resolve(aim: Aim, counts: &[aim::ReplyCount], draw: u32, avoid: &[String]) -> Option<Aim> {
    if aim.engine.is_some() && aim.reply.is_some() {
        return Some(aim);
    }
    let fits = |c: &&aim::ReplyCount| {
        c.count > 0
            && !avoid.contains(&c.engine)
            && aim.engine.as_deref().is_none_or(|e| e == c.engine)
            && aim.reply.is_none_or(|r| r == c.reply)
    };
    let mut pairs: Vec<(String, Reply)> = counts
        .iter()
        .filter(fits)
        .filter(|c| c.reply != Reply::Other)
        .map(|c| (c.engine.clone(), c.reply))
        .collect();
    pairs.sort();
    pairs.dedup();
    // Each engine the process has heard from is as likely as another, and each kind of
    // reply of that engine as likely as another: a process's boundaries with every
    // engine are reached, however many kinds one engine answers with (an api's RocketMQ
    // send replies are as likely as its bank commits).
    let mut engines: Vec<&String> = pairs.iter().map(|(e, _)| e).collect();
    engines.dedup();
    if let Some(engine) = engines.get(draw as usize % engines.len().max(1)) {
        let kinds: Vec<Reply> = pairs
            .iter()
            .filter(|(e, _)| e == *engine)
            .map(|(_, r)| *r)
            .collect();
        let reply = kinds[(draw as usize / engines.len()) % kinds.len()];
        return Some(Aim {
            engine: Some((*engine).clone()),
            reply: Some(reply),
            ..aim
        });
    }
    // No boundary recognised: any reply from an engine whose stream is not understood
    // (TLS, a protocol not known: many replies, none recognised), not from one the
    // process has only looked something up from (a name server: a few).
    let mut engines: Vec<&String> = counts
        .iter()
        .filter(fits)
        .filter(|c| c.count >= FALLBACK_MIN)
        .map(|c| &c.engine)
        .collect();
    engines.sort();
    engines.dedup();
    match engines.get(draw as usize % engines.len().max(1)) {
        Some(engine) => Some(Aim {
            engine: Some((*engine).clone()),
            ..aim
        }),
        None if aim.engine.is_some() => Some(aim),
        // Nothing received yet at all, and nothing to avoid: the first reply of any kind.
        None if avoid.is_empty() && counts.iter().all(|c| c.count == 0) => Some(aim),
        None => None,
    }
}

/// How often an aimed fault asks its process what it has received while there is
/// nothing to aim at yet.
const REPLIES_POLL: Duration = Duration::from_millis(200);

/// The least time an aim is armed for: with less of its wait left once there is
/// something to aim at, it does not fire.
const MIN_ARMED: Duration = Duration::from_millis(500);

/// The fewest replies of an engine, none of them recognised, before an aim falls back to
/// "any reply" from it.
pub const FALLBACK_MIN: u64 = 50;

/// How long an aimed fault asks a node that does not answer (just started again) before
/// it counts as not fired.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// What a process has received over the run: `known` (before its restarts) joined with
/// `fresh` (since its last start), the larger count of each (engine, reply).
pub fn join_counts(known: &[aim::ReplyCount], fresh: &[aim::ReplyCount]) -> Vec<aim::ReplyCount> {
    let mut all: Vec<aim::ReplyCount> = known.to_vec();
    for f in fresh {
        match all
            .iter_mut()
            .find(|k| k.engine == f.engine && k.reply == f.reply)
        {
            Some(k) => k.count = k.count.max(f.count),
            None => all.push(f.clone()),
        }
    }
    all
}

/// Runs iptables in the network namespace of `pid`.
async fn iptables(pid: u32, args: &[&str]) -> Result<String> {
    let t = pid.to_string();
    let mut full = vec!["-t", &t, "-n", "iptables", "-w"];
    full.extend_from_slice(args);
    run_command("nsenter", &full).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(engine: &str, reply: Reply, count: u64) -> aim::ReplyCount {
        aim::ReplyCount {
            engine: engine.into(),
            reply,
            count,
        }
    }

    fn any(action: Action) -> Aim {
        Aim {
            action,
            engine: None,
            reply: None,
            nth: 2,
            paired: true,
        }
    }

    #[test]
    fn an_aim_is_drawn_among_the_replies_the_process_got_engines_alike() {
        let counts = [
            seen("postgres", Reply::Commit, 5),
            seen("postgres", Reply::Other, 50),
            seen("broker", Reply::Produce, 5),
            seen("broker", Reply::Commit, 5),
            seen("broker", Reply::Offset, 0),
            seen("mariadb", Reply::Commit, 3),
        ];
        let mut drawn = std::collections::BTreeMap::new();
        for draw in 0..60 {
            let a = resolve(any(Action::Crash), &counts, draw, &[]).unwrap();
            assert_eq!((a.nth, a.action), (2, Action::Crash));
            *drawn
                .entry((a.engine.unwrap(), a.reply.unwrap()))
                .or_insert(0) += 1;
        }
        // Each engine a third of the draws, the broker's two kinds a sixth each; never
        // a reply not yet seen, never an unrecognised one.
        assert_eq!(drawn[&("postgres".to_string(), Reply::Commit)], 20);
        assert_eq!(drawn[&("mariadb".to_string(), Reply::Commit)], 20);
        assert_eq!(drawn[&("broker".to_string(), Reply::Produce)], 10);
        assert_eq!(drawn[&("broker".to_string(), Reply::Commit)], 10);
        assert_eq!(drawn.len(), 4);
        // An engine held down is avoided; what is given is kept.
        for draw in 0..10 {
            let a = resolve(any(Action::Cut), &counts, draw, &["postgres".into()]).unwrap();
            assert_ne!(a.engine.as_deref(), Some("postgres"));
        }
        let given = Aim {
            engine: Some("broker".into()),
            reply: Some(Reply::Produce),
            ..any(Action::Cut)
        };
        assert_eq!(
            resolve(given, &counts, 3, &[]).unwrap().reply,
            Some(Reply::Produce)
        );
        let given = Aim {
            engine: Some("postgres".into()),
            ..any(Action::Cut)
        };
        assert_eq!(
            resolve(given, &counts, 3, &[]).unwrap().reply,
            Some(Reply::Commit)
        );
        // Nothing recognised yet: any reply from an engine whose stream is not understood
        // (many replies), none from one only looked up from (a few); nothing at all: as
        // given.
        let only_other = [seen("postgres", Reply::Other, FALLBACK_MIN)];
        let a = resolve(any(Action::Crash), &only_other, 7, &[]).unwrap();
        assert_eq!((a.engine.as_deref(), a.reply), (Some("postgres"), None));
        let looked_up = [seen("namesrv", Reply::Other, 4)];
        assert_eq!(resolve(any(Action::Crash), &looked_up, 7, &[]), None);
        assert_eq!(
            resolve(any(Action::Crash), &[], 7, &[]),
            Some(any(Action::Crash))
        );
        // Nothing but an engine to avoid: no aim at all, never "any reply" from it.
        let held = [seen("kafka", Reply::Produce, 3)];
        assert_eq!(
            resolve(any(Action::Crash), &held, 1, &["kafka".into()]),
            None
        );
        assert_eq!(resolve(any(Action::Crash), &[], 1, &["kafka".into()]), None);
    }

    #[test]
    fn aimed_faults_read_and_write_the_stored_shape() {
        // As run.json and schedule files have held them since aimed faults came.
        let stored = r#"{"kind":"crash-after","node":"consumer","engine":"mariadb","reply":"commit","nth":2,"draw":7,"avoid":["kafka"]}"#;
        let f: Fault = serde_json::from_str(stored).unwrap();
        assert_eq!(f.nodes(), ["consumer"]);
        assert_eq!(
            f.to_string(),
            "consumer: crash after the 2nd commit reply from mariadb"
        );
        assert_eq!(serde_json::to_string(&f).unwrap(), stored);
        let drawn: Fault =
            serde_json::from_str(r#"{"kind":"cut-before","node":"api","nth":1}"#).unwrap();
        assert_eq!(
            drawn,
            Fault::CutBefore(AimedAt {
                node: "api".into(),
                engine: None,
                reply: None,
                nth: 1,
                paired: false,
                draw: 0,
                avoid: Vec::new(),
                down_after_ms: Default::default(),
                wait_ms: None,
            })
        );
        assert_eq!(
            serde_json::to_string(&drawn).unwrap(),
            r#"{"kind":"cut-before","node":"api","nth":1,"draw":0}"#
        );
    }

    #[test]
    fn replies_are_remembered_across_a_restart() {
        // Before a restart the consumer had credited (mariadb commits) and committed
        // offsets; after it, it has only fetched so far.
        let before = [
            seen("mariadb", Reply::Commit, 40),
            seen("kafka", Reply::Offset, 12),
        ];
        let after = [
            seen("kafka", Reply::Other, 3),
            seen("kafka", Reply::Offset, 1),
        ];
        let joined = join_counts(&before, &after);
        assert_eq!(
            joined,
            vec![
                seen("mariadb", Reply::Commit, 40),
                seen("kafka", Reply::Offset, 12),
                seen("kafka", Reply::Other, 3),
            ]
        );
        // So an aim after the restart is still drawn among commits and offsets, not
        // "any reply" from kafka.
        for draw in 0..6 {
            let a = resolve(any(Action::Crash), &joined, draw, &[]).unwrap();
            assert!(a.reply.is_some(), "{a:?}");
        }
        let fresh_only = resolve(any(Action::Crash), &after, 0, &[]).unwrap();
        assert_eq!(fresh_only.reply, Some(Reply::Offset));
    }
}
