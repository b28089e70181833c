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
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        }
    }

    /// The nodes whose network namespaces carry this fault's rules.
    fn net_nodes(&self) -> Vec<String> {
        match self {
            Fault::Isolate { node } | Fault::Loss { node, .. } => vec![node.clone()],
            Fault::Cut { a, b } => vec![a.clone(), b.clone()],
            Fault::Halves { a, b } => a.iter().chain(b).cloned().collect(),
            Fault::Kill { .. } | Fault::Pause { .. } | Fault::Delay { .. } => Vec::new(),
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
}

impl Nemesis {
    pub(crate) fn new(inner: Arc<Inner>) -> Nemesis {
        Nemesis { inner }
    }

    /// Starts a fault.
    pub async fn apply(&self, fault: &Fault) -> Result<Event> {
        let started = Instant::now();
        match fault {
            Fault::Kill { node } => {
                let c = self.container(node)?;
                self.inner.engine.kill(&c).await?;
            }
            Fault::Pause { node } => {
                let c = self.container(node)?;
                self.inner
                    .engine
                    .api()
                    .pause_container(&c)
                    .await
                    .map_err(Error::docker(format!("pause {c}")))?;
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
        }
        tracing::info!("nemesis: {fault} ({:.0?})", started.elapsed());
        Ok(Event::new(fault.names().0, fault))
    }

    /// Ends a fault: restart, resume, or flush the rules on the nodes it touched.
    pub async fn revert(&self, fault: &Fault) -> Result<Event> {
        match fault {
            Fault::Kill { node } => {
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
    /// Call it before reading final state and before teardown.
    pub async fn heal_all(&self) -> Result<Event> {
        let (mut resumed, mut restarted, mut healed) = (Vec::new(), Vec::new(), Vec::new());
        for (node, c) in self.containers() {
            let api = self.inner.engine.api();
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
                healed.push(node);
            }
        }
        // Proxies of the node containers: no added latency (a restarted node has none).
        for n in self.app_nodes() {
            let addr = n.endpoint.addr();
            if let Err(e) = workloads::node::set_delay(&addr, None, Duration::ZERO).await {
                tracing::debug!("heal-all: resetting {}'s proxies: {e:#}", n.endpoint.node);
            }
        }
        Ok(Event::new(
            "heal-all",
            serde_json::json!({ "resumed": resumed, "restarted": restarted, "flushed": healed }),
        ))
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

/// Runs iptables in the network namespace of `pid`.
async fn iptables(pid: u32, args: &[&str]) -> Result<String> {
    let t = pid.to_string();
    let mut full = vec!["-t", &t, "-n", "iptables", "-w"];
    full.extend_from_slice(args);
    run_command("nsenter", &full).await
}
