//! A scheme's process in its own container: `chaosbank node`, one [`Role`] per node
//! container (producer, relay or consumer), so the nemesis can kill, pause and
//! partition the systems under test like the engines.
//!
//! A node reads its [`NodeConfig`] as JSON from `CHAOSBANK_NODE_CONFIG`, starts a
//! [`Forwarder`] per engine link (it reaches every engine through `127.0.0.1:<port>`
//! inside its container: the brokers advertise `127.0.0.1:<port>`, and the forwarders
//! are where the latency fault is injected), starts its role — retrying while the
//! engines are down, as after a restart in the middle of a fault — and serves its
//! control port ([`CONTROL_PORT`]) with the JSON-lines [`wire`] protocol:
//! [`Request::Health`], [`Request::Delay`], [`Request::Clock`], [`Request::Time`],
//! [`Request::Producing`]; a producer also
//! serves the transfer API of the service contract on [`API_PORT`]
//! ([`crate::service::api`]), the one way transfers come in. The harness's side of it is [`remote::Remote`]. With
//! [`process::PROCESS_CONFIG_ENV`] set instead, the node runs a user's service process
//! ([`process`]).

pub mod aim;
pub mod boundary;
pub mod clock;
mod entry;
pub mod forward;
pub mod process;
pub mod remote;
pub mod wire;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::bank::Transfer;
use crate::system::{self, Endpoints, Options, Outcome, Role, System, SystemKind};
pub use entry::main;
pub use forward::Forwarder;

/// The environment variable that carries a node's [`NodeConfig`] as JSON.
pub const CONFIG_ENV: &str = "CHAOSBANK_NODE_CONFIG";
/// The port a node serves its control protocol on, inside its container.
pub const CONTROL_PORT: u16 = 7000;

/// One link a node reaches an engine through: `127.0.0.1:listen` → `target`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    /// The port on the node's loopback.
    pub listen: u16,
    /// `host:port` on the run network (e.g. `postgres:5432`).
    pub target: String,
}

impl Forward {
    /// The target's host (the engine's node name).
    pub fn target_host(&self) -> &str {
        self.target
            .rsplit_once(':')
            .map_or(&self.target, |(h, _)| h)
    }
}

/// Everything a node process needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeConfig {
    /// The scheme.
    pub system: SystemKind,
    /// Which of its processes this node is.
    pub role: Role,
    /// The engines as the node reaches them (through its forwarders).
    pub endpoints: Endpoints,
    /// The scheme's options.
    pub options: Options,
    /// The engine links to forward.
    pub forwards: Vec<Forward>,
    /// Where to serve the control protocol (default [`CONTROL_PORT`]).
    #[serde(default = "default_control_port")]
    pub control_port: u16,
    /// Where a producer serves the transfer API of the service contract
    /// ([`crate::service::api`]; [`API_PORT`] when the harness deploys it), besides the
    /// control protocol's `transfer`.
    #[serde(default)]
    pub api_port: Option<u16>,
}

/// The port a producer node serves the transfer API on, inside its container.
pub const API_PORT: u16 = 8080;

/// A producer node's transfer API, answering from its [`State`].
#[derive(Clone)]
struct Api(Arc<State>);

impl crate::service::api::Handler for Api {
    async fn transfer(&self, t: Transfer) -> Outcome {
        if self.0.started.load(Ordering::Acquire) {
            self.0.sys.transfer(&t).await
        } else {
            Outcome::Fail("the producer is still starting".to_string())
        }
    }

    fn healthy(&self) -> bool {
        self.0.started.load(Ordering::Acquire) && self.0.sys.ready()
    }
}

fn default_control_port() -> u16 {
    CONTROL_PORT
}

/// A request on a node's control port.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Is the role started and serving?
    Health,
    /// Set the latency this node's forwarders add, each way: on the links to `engine`
    /// (a node name such as `postgres`), or on all links when `None`.
    Delay {
        /// The engine whose links to slow, or all.
        engine: Option<String>,
        /// Milliseconds each way; 0 removes the delay.
        ms: u64,
    },
    /// How many sends the producer has not had acknowledged.
    Producing,
    /// Move this container's wall clock `offset_s` seconds from the real time (0 puts
    /// it back); see [`clock`]. Answered with [`Response::Time`].
    Clock {
        /// Seconds, either way.
        offset_s: i64,
    },
    /// What time does this node's wall clock say?
    Time,
    /// Arm an aimed fault on this node's forwarders ([`aim`]); answered with
    /// [`Response::Done`] (`links`: the forwarders that can carry the reply).
    Arm {
        /// The fault.
        aim: aim::Aim,
    },
    /// What the armed fault hit, if it fired; answered with [`Response::Fired`].
    Fired,
    /// Disarm, answering what had fired ([`Response::Fired`]).
    Disarm,
    /// The replies this node's forwarders have carried, by engine and kind; answered
    /// with [`Response::Replies`].
    Replies,
}

/// A node's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "kebab-case")]
pub enum Response {
    /// The answer to [`Request::Health`].
    Health {
        /// The role is started and ready.
        ready: bool,
        /// The node's role.
        role: Role,
    },
    /// The answer to [`Request::Producing`].
    Producing {
        /// Unacknowledged sends.
        n: i64,
    },
    /// The answer to [`Request::Time`] and [`Request::Clock`]: the node's wall clock.
    Time {
        /// Milliseconds since the Unix epoch, as the node reads them.
        now_ms: i64,
    },
    /// The answer to [`Request::Fired`] and [`Request::Disarm`].
    Fired {
        /// What fired since the last arming.
        fired: Option<aim::Fired>,
    },
    /// The answer to [`Request::Replies`].
    Replies {
        /// Replies carried so far, by engine and kind.
        counts: Vec<aim::ReplyCount>,
    },
    /// Done (e.g. a delay set); `links` says how many forwarders it touched.
    Done {
        /// Forwarders changed.
        links: usize,
    },
    /// The request could not be served.
    Error {
        /// Why.
        message: String,
    },
}

/// What a node's control handler works on.
struct State {
    role: Role,
    sys: Arc<dyn System>,
    started: AtomicBool,
    forwarders: Vec<(Forward, Forwarder)>,
    tap: Arc<aim::Tap>,
}

impl State {
    async fn handle(&self, req: Request) -> Response {
        let started = self.started.load(Ordering::Acquire);
        match req {
            Request::Health => Response::Health {
                ready: started && self.sys.ready(),
                role: self.role,
            },
            Request::Delay { engine, ms } => Response::Done {
                links: set_forwarder_delays(&self.forwarders, engine.as_deref(), ms),
            },
            Request::Producing => Response::Producing {
                n: if started {
                    self.sys.producing().await
                } else {
                    0
                },
            },
            Request::Clock { .. } | Request::Time => clock_request(&req),
            Request::Arm { .. } | Request::Fired | Request::Disarm | Request::Replies => {
                aim_request(&self.tap, &self.forwarders, req)
            }
        }
    }
}

/// Serves [`Request::Arm`], [`Request::Fired`], [`Request::Disarm`] and
/// [`Request::Replies`] (the same for a scheme's node and a service's process).
fn aim_request(tap: &aim::Tap, forwarders: &[(Forward, Forwarder)], req: Request) -> Response {
    match req {
        Request::Arm { aim } => {
            let links = forwarders
                .iter()
                .filter(|(f, _)| aim.engine.as_deref().is_none_or(|e| e == f.target_host()))
                .count();
            if links == 0 {
                return Response::Error {
                    message: format!("cannot arm \"{aim}\": no link to that engine"),
                };
            }
            tap.arm(aim);
            Response::Done { links }
        }
        Request::Fired => Response::Fired { fired: tap.fired() },
        Request::Disarm => Response::Fired {
            fired: tap.disarm(),
        },
        Request::Replies => Response::Replies {
            counts: tap.counts(),
        },
        other => Response::Error {
            message: format!("not an aiming request: {other:?}"),
        },
    }
}

/// Serves [`Request::Clock`] and [`Request::Time`] (the same for a scheme's node and a
/// service's process).
fn clock_request(req: &Request) -> Response {
    if let Request::Clock { offset_s } = req {
        if let Err(e) = clock::set(*offset_s) {
            return Response::Error {
                message: format!("{e:#}"),
            };
        }
    }
    Response::Time {
        now_ms: clock::now_ms(),
    }
}

/// Runs a node until SIGTERM or SIGINT (then stops its role cleanly).
pub async fn serve(cfg: NodeConfig) -> Result<()> {
    if !cfg.system.roles().contains(&cfg.role) {
        bail!("the {} scheme has no {}", cfg.system, cfg.role);
    }
    let tap = Arc::new(aim::Tap::exiting());
    let forwarders = start_forwarders(&cfg.forwards, &tap).await?;
    let sys: Arc<dyn System> = Arc::from(system::build(cfg.system, &cfg.endpoints, &cfg.options)?);
    let state = Arc::new(State {
        role: cfg.role,
        sys: sys.clone(),
        started: AtomicBool::new(false),
        forwarders,
        tap,
    });
    let listener = TcpListener::bind(("0.0.0.0", cfg.control_port))
        .await
        .with_context(|| format!("binding the control port {}", cfg.control_port))?;
    let api = match (cfg.role, cfg.api_port) {
        (Role::Producer, Some(port)) => {
            let l = TcpListener::bind(("0.0.0.0", port))
                .await
                .with_context(|| format!("binding the transfer API's port {port}"))?;
            Some(tokio::spawn(crate::service::api::serve(
                l,
                Api(state.clone()),
            )))
        }
        _ => None,
    };
    tracing::info!(
        "chaosbank node: {} of {}, control port {}",
        cfg.role,
        cfg.system,
        cfg.control_port
    );
    // Start the role, retrying while the engines are away (a node restarted during a
    // fault comes up before the fault ends).
    let starter = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(500);
            loop {
                match state.sys.start(state.role).await {
                    Ok(()) => {
                        state.started.store(true, Ordering::Release);
                        tracing::info!("{} started", state.role);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!("starting the {}: {e:#}; retrying in {wait:?}", state.role);
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(5));
                    }
                }
            }
        })
    };
    let handler = {
        let state = state.clone();
        move |req: Request| {
            let state = state.clone();
            async move { state.handle(req).await }
        }
    };
    let result = tokio::select! {
        r = wire::serve(listener, handler) => r,
        _ = shutdown_signal() => {
            tracing::info!("stopping the {}", cfg.role);
            Ok(())
        }
    };
    starter.abort();
    if let Some(api) = api {
        api.abort();
    }
    sys.teardown().await;
    for (_, f) in &state.forwarders {
        f.shutdown();
    }
    result
}

/// Starts a forwarder on the node's loopback for each of `forwards`, all reading their
/// replies into `tap`.
async fn start_forwarders(
    forwards: &[Forward],
    tap: &Arc<aim::Tap>,
) -> Result<Vec<(Forward, Forwarder)>> {
    let mut out = Vec::new();
    for f in forwards {
        let listen = SocketAddr::from(([127, 0, 0, 1], f.listen));
        let fwd = Forwarder::start_tapped(listen, f.target.clone(), tap.clone())
            .await
            .with_context(|| format!("forwarding {listen} to {}", f.target))?;
        out.push((f.clone(), fwd));
    }
    Ok(out)
}

/// Sets the delay of the forwarders whose target is `engine` (all when `None`); returns
/// how many it changed.
fn set_forwarder_delays(
    forwarders: &[(Forward, Forwarder)],
    engine: Option<&str>,
    ms: u64,
) -> usize {
    let mut links = 0;
    for (f, fwd) in forwarders {
        if engine.is_none_or(|e| e == f.target_host()) {
            fwd.set_delay(Duration::from_millis(ms));
            links += 1;
        }
    }
    tracing::info!(
        "delay {ms} ms on links to {}",
        engine.unwrap_or("every engine")
    );
    links
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

/// Asks a node whether its role is started and ready.
pub async fn health(addr: &str, timeout: Duration) -> Result<bool> {
    let mut client = wire::Client::new(addr.to_string());
    match client.call(&Request::Health, timeout).await? {
        Response::Health { ready, .. } => Ok(ready),
        other => bail!("unexpected answer to health: {other:?}"),
    }
}

/// Sets the latency a node's forwarders add on its links to `engine` (all links when
/// `None`); returns how many links it changed.
pub async fn set_delay(addr: &str, engine: Option<&str>, delay: Duration) -> Result<usize> {
    let mut client = wire::Client::new(addr.to_string());
    let req = Request::Delay {
        engine: engine.map(str::to_string),
        ms: delay.as_millis() as u64,
    };
    match client.call(&req, Duration::from_secs(5)).await? {
        Response::Done { links } => Ok(links),
        other => bail!("unexpected answer to delay: {other:?}"),
    }
}

/// Moves a node container's wall clock `offset_s` seconds from the real time (0 puts it
/// back); returns the node's clock as it answered.
pub async fn set_clock(addr: &str, offset_s: i64) -> Result<i64> {
    clock_call(addr, &Request::Clock { offset_s }).await
}

/// A node container's wall clock, in milliseconds since the Unix epoch.
pub async fn node_time(addr: &str) -> Result<i64> {
    clock_call(addr, &Request::Time).await
}

/// Arms an aimed fault on a node; returns how many of its links can carry the reply.
pub async fn arm(addr: &str, aim: &aim::Aim) -> Result<usize> {
    let mut client = wire::Client::new(addr.to_string());
    let req = Request::Arm { aim: aim.clone() };
    match client.call(&req, Duration::from_secs(5)).await? {
        Response::Done { links } => Ok(links),
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer to arm: {other:?}"),
    }
}

/// What a node's armed fault hit, if it fired; with `disarm`, also disarms it.
pub async fn fired(addr: &str, disarm: bool) -> Result<Option<aim::Fired>> {
    let mut client = wire::Client::new(addr.to_string());
    let req = if disarm {
        Request::Disarm
    } else {
        Request::Fired
    };
    match client.call(&req, Duration::from_secs(5)).await? {
        Response::Fired { fired } => Ok(fired),
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer to {req:?}: {other:?}"),
    }
}

/// The replies a node's links have carried, by engine and kind.
pub async fn replies(addr: &str) -> Result<Vec<aim::ReplyCount>> {
    let mut client = wire::Client::new(addr.to_string());
    match client
        .call(&Request::Replies, Duration::from_secs(5))
        .await?
    {
        Response::Replies { counts } => Ok(counts),
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer to replies: {other:?}"),
    }
}

async fn clock_call(addr: &str, req: &Request) -> Result<i64> {
    let mut client = wire::Client::new(addr.to_string());
    match client.call(req, Duration::from_secs(5)).await? {
        Response::Time { now_ms } => Ok(now_ms),
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer to {req:?}: {other:?}"),
    }
}
