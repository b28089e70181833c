//! A cluster: one run's engines in containers on their own Docker network.
//!
//! ```no_run
//! # async fn demo() -> chaosbank::Result<()> {
//! use chaosbank::cluster::Cluster;
//! let cluster = Cluster::builder().postgres().mariadb().start().await?;
//! println!("{}", cluster.endpoint("postgres")?.url());
//! cluster.nemesis().kill("postgres").await?;
//! cluster.down().await?;
//! # Ok(()) }
//! ```
//!
//! Names: network `chaosbank-<run>`, containers `chaosbank-<run>-<node>`, each reachable
//! from the others by its node name. Every object carries the [`crate::labels`]. Ports
//! are published on 127.0.0.1 only. Passwords are random per run. A cluster is removed by
//! [`Cluster::down`], or when dropped (panic, Ctrl-C cancelling the future), or by the
//! [`crate::watchdog`] when the process is killed, or by the next run's
//! [`crate::reaper`] — unless it was [`Cluster::detach`]ed (`chaosbank cluster up`).

use crate::docker::Engine;
use crate::error::{Error, Result};
use crate::images::{self, BuildOptions};
use crate::labels::Owner;
use crate::probe::{self, NotReady};
use crate::reaper::{self, Sweep};
use crate::service::{self, Endpoint, Engines, NodeKind, Service};
use crate::watchdog::Watchdog;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
    PortBinding,
};
use bollard::query_parameters::{CreateContainerOptions, StartContainerOptions};
use rand::distributions::Alphanumeric;
use rand::Rng;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Default time a node has to answer its readiness probe.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(180);

/// Configures and starts a [`Cluster`].
#[derive(Clone, Debug)]
pub struct ClusterBuilder {
    services: Vec<Service>,
    keep: bool,
    ready_timeout: Duration,
    images: HashMap<Service, String>,
    build: BuildOptions,
    engines: Engines,
    clock_faults: bool,
    registry: Option<String>,
    logical_wal: bool,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        ClusterBuilder {
            services: Vec::new(),
            keep: false,
            ready_timeout: DEFAULT_READY_TIMEOUT,
            images: HashMap::new(),
            build: BuildOptions::default(),
            engines: Engines::default(),
            clock_faults: false,
            registry: None,
            logical_wal: false,
        }
    }
}

impl ClusterBuilder {
    /// Adds a service (once; adding it again changes nothing).
    pub fn service(mut self, s: Service) -> Self {
        if !self.services.contains(&s) {
            self.services.push(s);
        }
        self
    }

    /// Adds PostgreSQL (node `postgres`).
    pub fn postgres(self) -> Self {
        self.service(Service::Postgres)
    }

    /// Adds MariaDB (node `mariadb`).
    pub fn mariadb(self) -> Self {
        self.service(Service::Mariadb)
    }

    /// Adds the Kafka-API broker (node `kafka`).
    pub fn kafka(self) -> Self {
        self.service(Service::Kafka)
    }

    /// Adds RocketMQ (nodes `namesrv` and `broker`).
    pub fn rocketmq(self) -> Self {
        self.service(Service::RocketMq)
    }

    /// Keeps the cluster after this process exits: labelled `chaosbank.keep=1`, never
    /// reaped as an orphan, removed by `chaosbank cluster down`. Call
    /// [`Cluster::detach`] once it is up.
    pub fn keep(mut self, keep: bool) -> Self {
        self.keep = keep;
        self
    }

    /// How long each node has to answer its readiness probe (default 180 s).
    pub fn ready_timeout(mut self, t: Duration) -> Self {
        self.ready_timeout = t;
        self
    }

    /// Chooses the brokers' implementations (default: Apache Kafka, Apache RocketMQ).
    pub fn engines(mut self, engines: Engines) -> Self {
        self.engines = engines;
        self
    }

    /// The registry (`host:port`) official images are pulled from; without it,
    /// `CHAOSBANK_REGISTRY`, then Docker Hub.
    pub fn registry(mut self, registry: impl Into<String>) -> Self {
        self.registry = Some(registry.into());
        self
    }

    /// Starts node containers (a scheme's processes, a service's) under libfaketime, so
    /// the nemesis can move their wall clocks ([`crate::nemesis::Fault::Clock`]); off by
    /// default, and then nothing is preloaded into them.
    pub fn clock_faults(mut self, on: bool) -> Self {
        self.clock_faults = on;
        self
    }

    /// Runs PostgreSQL with `wal_level=logical` (`postgres -c wal_level=logical`), so
    /// Debezium can read its write-ahead log through a replication slot (`outbox-cdc`);
    /// off by default.
    pub fn logical_wal(mut self, on: bool) -> Self {
        self.logical_wal = on;
        self
    }

    /// Uses a ready-made image for a service instead of building one (e.g.
    /// `postgres:15`). Without this, `CHAOSBANK_IMAGE_<NAME>` is consulted, then the
    /// image is built from `docker/<name>` if missing. Adds the service if it was not.
    pub fn image(mut self, s: Service, reference: impl Into<String>) -> Self {
        self.images.insert(s, reference.into());
        self.service(s)
    }

    /// How missing images are built.
    pub fn build_options(mut self, b: BuildOptions) -> Self {
        self.build = b;
        self
    }

    /// Reaps orphans of killed harnesses, resolves (builds) images, creates the network
    /// and containers, and waits until every node answers its protocol. Anything it
    /// created is removed if it fails or is cancelled.
    pub async fn start(self) -> Result<Cluster> {
        let started = Instant::now();
        let engine = Engine::connect().await?;
        let reaped = reaper::sweep(&engine, Sweep::Orphans).await?;
        if !reaped.is_empty() {
            tracing::info!(
                "reaped leftovers of killed runs: containers {:?}, networks {:?}",
                reaped.containers,
                reaped.networks
            );
        }
        let services = if self.services.is_empty() {
            Service::ALL.to_vec()
        } else {
            self.services.clone()
        };
        let mut images = BTreeMap::new();
        let mut official = BTreeMap::new();
        let registry = self
            .registry
            .clone()
            .or_else(|| std::env::var(crate::service::REGISTRY_ENV).ok());
        for s in &services {
            let named = self.images.get(s).cloned().or_else(|| {
                std::env::var(self.engines.image_env(*s))
                    .ok()
                    .filter(|v| !v.is_empty())
            });
            let reference = match named {
                // A named image is used as it is, pulled first if it is not here.
                Some(r) => {
                    images::pull_if_missing(&engine, &r).await?;
                    r
                }
                None if self.engines.images == crate::service::ImageSource::Official => {
                    let r = self
                        .engines
                        .official_image(*s, registry.as_deref())
                        .map_err(Error::Config)?;
                    images::pull_if_missing(&engine, &r).await?;
                    official.insert(*s, ());
                    r
                }
                None => {
                    images::ensure(&engine, self.engines.image(*s), &self.build)
                        .await?
                        .reference
                }
            };
            images.insert(*s, reference);
        }

        let run = random_string(8, true);
        let owner = Owner::current(&run, self.keep);
        let network = format!("chaosbank-{run}");
        let inner = Arc::new(Inner {
            engine: engine.clone(),
            run: run.clone(),
            network: network.clone(),
            nodes: Mutex::new(BTreeMap::new()),
            ready_timeout: self.ready_timeout,
            build: self.build.clone(),
            owner: Mutex::new(None),
            engines: self.engines,
            clock_faults: self.clock_faults,
        });
        // From here on, dropping `cluster` (error, cancellation) removes the run.
        let mut cluster = Cluster {
            inner,
            watchdog: Some(Watchdog::start(&run)),
            done: false,
            ready_in: Duration::ZERO,
        };

        engine
            .api()
            .create_network(NetworkCreateRequest {
                name: network.clone(),
                driver: Some("bridge".to_string()),
                labels: Some(owner.labels(None)),
                ..Default::default()
            })
            .await
            .map_err(Error::docker(format!("create network {network}")))?;

        let password = random_string(24, false);
        let root_password = random_string(24, false);
        *cluster
            .inner
            .owner
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(owner.clone());
        for s in &services {
            for kind in s.nodes() {
                let env = match kind.official_env(0) {
                    Some(env) if official.contains_key(s) => env,
                    _ => kind.env(0, &password, &root_password),
                };
                let node = cluster
                    .create_node(
                        NodeSpec {
                            kind: *kind,
                            name: kind.name(),
                            image: &images[s],
                            env,
                            binds: Vec::new(),
                            also_publish: None,
                            cmd: (*kind == NodeKind::Postgres && self.logical_wal).then(|| {
                                ["postgres", "-c", "wal_level=logical"]
                                    .map(String::from)
                                    .to_vec()
                            }),
                        },
                        &owner,
                    )
                    .await?;
                cluster
                    .inner
                    .lock_nodes()
                    .insert(kind.name().to_string(), node);
                // The broker registers with the name server: start it once that answers.
                if *kind == NodeKind::Namesrv {
                    cluster.inner.wait_ready(kind.name()).await?;
                }
            }
        }
        let names = cluster.nodes();
        let waits = names.iter().map(|n| cluster.inner.wait_ready(n));
        for r in futures_util::future::join_all(waits).await {
            r?;
        }
        cluster.ready_in = started.elapsed();
        tracing::info!(
            "cluster {run} up in {:.1?}: {}",
            cluster.ready_in,
            names.join(", ")
        );
        Ok(cluster)
    }
}

/// A node of a running cluster.
#[derive(Clone, Debug)]
pub struct Node {
    /// Its role.
    pub kind: NodeKind,
    /// Its container's name.
    pub container: String,
    /// The image it runs.
    pub image: String,
    /// How to reach it from the host.
    pub endpoint: Endpoint,
    /// The host port of a service's transfer API (its serving process only).
    pub api_port: Option<u16>,
}

/// A process of a user's service, as [`Cluster::add_process`] starts it.
#[derive(Clone, Debug)]
pub struct ServiceProcess {
    /// Its node's name (the manifest's process name).
    pub name: String,
    /// The image it runs.
    pub image: String,
    /// Its [`workloads::node::process::ProcessConfig`] as JSON.
    pub config: String,
    /// `KEY=value` environment.
    pub env: Vec<String>,
    /// Further `host:container[:ro]` mounts.
    pub binds: Vec<String>,
    /// The port it serves the transfer API on (the serving process only).
    pub serve: Option<u16>,
}

/// What [`Cluster::create_node`] makes.
struct NodeSpec<'a> {
    kind: NodeKind,
    name: &'a str,
    image: &'a str,
    env: Vec<String>,
    binds: Vec<String>,
    /// A second container port to publish (a service's API).
    also_publish: Option<u16>,
    /// The container's command, instead of the kind's.
    cmd: Option<Vec<String>>,
}

/// The state a [`Cluster`] shares with its [`crate::nemesis::Nemesis`].
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) run: String,
    pub(crate) network: String,
    pub(crate) nodes: Mutex<BTreeMap<String, Node>>,
    pub(crate) ready_timeout: Duration,
    build: BuildOptions,
    owner: Mutex<Option<Owner>>,
    engines: Engines,
    /// Node containers start under libfaketime.
    pub(crate) clock_faults: bool,
}

/// The bind mount of the node binary at `/usr/local/bin/chaosbank-node`, read-only.
fn node_binary_bind(binary: &Path) -> Result<String> {
    let binary = binary.canonicalize().map_err(Error::io(format!(
        "find the node binary {}",
        binary.display()
    )))?;
    Ok(format!(
        "{}:/usr/local/bin/chaosbank-node:ro",
        binary.display()
    ))
}

impl Inner {
    /// Who owns the cluster's containers: set when the cluster starts.
    fn owner(&self) -> Result<Owner> {
        self.owner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| Error::Config("the cluster is not started".to_string()))
    }

    pub(crate) fn lock_nodes(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Node>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn node(&self, name: &str) -> Result<Node> {
        self.lock_nodes()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownNode(name.to_string()))
    }

    /// Polls a node's protocol until it answers; fails at once if its container stops.
    pub(crate) async fn wait_ready(&self, name: &str) -> Result<Duration> {
        let node = self.node(name)?;
        let namesrv_port = self
            .lock_nodes()
            .get(NodeKind::Namesrv.name())
            .map(|n| n.endpoint.port);
        let what = format!("{name} ({}) to answer its protocol", node.container);
        let (_, took) = probe::poll(&what, self.ready_timeout, || async {
            match service::probe(&node.endpoint, namesrv_port).await {
                Ok(()) => Ok(()),
                Err(NotReady::Retry(e)) => {
                    if let Ok(Some((false, _))) | Ok(None) = self.engine.state(&node.container).await {
                        let logs = self.engine.logs_tail(&node.container, 30).await;
                        let hint = if node.kind == NodeKind::Broker {
                            disk_hint().unwrap_or_default()
                        } else {
                            String::new()
                        };
                        return Err(NotReady::Fatal(Error::Config(format!(
                            "container {} stopped before it was ready (last error: {e}){hint}; its last output:\n{logs}",
                            node.container
                        ))));
                    }
                    Err(NotReady::Retry(e))
                }
                Err(fatal) => Err(fatal),
            }
        })
        .await?;
        tracing::debug!("{name} ready in {took:.1?}");
        Ok(took)
    }
}

/// A running cluster. Dropping it removes its containers and network (blocking for the
/// second or two that takes); call [`Cluster::down`] to do so asynchronously and see
/// errors, or [`Cluster::detach`] to leave a kept cluster running.
#[derive(Debug)]
pub struct Cluster {
    /// What the cluster shares with its nemesis (`Cluster::nemesis`, made in
    /// [`crate::nemesis`], which depends on the cluster and not the other way round).
    pub(crate) inner: Arc<Inner>,
    watchdog: Option<Watchdog>,
    done: bool,
    ready_in: Duration,
}

impl Cluster {
    /// How long the start took, from the first image check to every engine ready.
    pub fn ready_in(&self) -> Duration {
        self.ready_in
    }

    /// A builder; with no service added, all four are started.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// The run id (8 hex digits), part of every name and label.
    pub fn run_id(&self) -> &str {
        &self.inner.run
    }

    /// What node `name` runs, with its version: the databases' own `SELECT version()`,
    /// the brokers' product and version (see [`images::engine_version`]); `None` for the
    /// scheme's node containers and when a database does not answer within 5 s.
    pub async fn engine_version(&self, name: &str) -> Option<String> {
        let node = self.node(name).ok()?;
        match node.kind {
            NodeKind::Postgres | NodeKind::Mariadb => match sql_version(&node.endpoint.url()).await
            {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!("version of {name}: {e:#}");
                    None
                }
            },
            _ => images::engine_version(name, &node.image),
        }
    }

    /// The brokers' implementations this cluster runs.
    pub fn engines(&self) -> Engines {
        self.inner.engines
    }

    /// The run's Docker network.
    pub fn network(&self) -> &str {
        &self.inner.network
    }

    /// The node names, sorted.
    pub fn nodes(&self) -> Vec<String> {
        self.inner.lock_nodes().keys().cloned().collect()
    }

    /// A node.
    pub fn node(&self, name: &str) -> Result<Node> {
        self.inner.node(name)
    }

    /// How to reach a node from the host.
    pub fn endpoint(&self, name: &str) -> Result<Endpoint> {
        Ok(self.inner.node(name)?.endpoint)
    }

    /// Every node's endpoint, sorted by node name.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.inner
            .lock_nodes()
            .values()
            .map(|n| n.endpoint.clone())
            .collect()
    }

    /// The engine the cluster runs on.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Waits until a node answers its protocol again (after a restart, say); returns how
    /// long that took.
    pub async fn wait_ready(&self, name: &str) -> Result<Duration> {
        self.inner.wait_ready(name).await
    }

    /// Removes the containers (resuming paused ones first) and the network.
    pub async fn down(mut self) -> Result<()> {
        self.done = true;
        let r = reaper::remove_run(&self.inner.engine, &self.inner.run).await;
        if let Some(w) = self.watchdog.take() {
            match &r {
                Ok(_) => w.disarm(),
                Err(_) => w.fire(),
            }
        }
        r.map(drop)
    }

    /// Leaves the cluster running after this value and this process are gone (for a
    /// kept cluster, see [`ClusterBuilder::keep`]).
    pub fn detach(mut self) {
        self.done = true;
        if let Some(w) = self.watchdog.take() {
            w.disarm();
        }
    }

    /// Starts one of chaosbank's own processes in a node container: `binary` (built for
    /// this host's Debian release; see `docker/node`) is mounted read-only and run with
    /// `CHAOSBANK_NODE_CONFIG=<config>`; returns once it answers `health` as ready.
    pub async fn add_app(&self, kind: NodeKind, binary: &Path, config: &str) -> Result<Node> {
        if !kind.is_app() {
            return Err(Error::Config(format!(
                "{} is an engine, not a chaosbank node",
                kind.name()
            )));
        }
        let image = match std::env::var("CHAOSBANK_IMAGE_NODE")
            .ok()
            .filter(|v| !v.is_empty())
        {
            Some(r) => r,
            None => {
                images::ensure(&self.inner.engine, "node", &self.inner.build)
                    .await?
                    .reference
            }
        };
        let owner = self.inner.owner()?;
        let mut env = vec![
            format!("{}={config}", workloads::node::CONFIG_ENV),
            format!(
                "RUST_LOG={}",
                std::env::var("CHAOSBANK_NODE_LOG").unwrap_or_else(|_| {
                    "info,sqlx=error,rocketmq=warn,librdkafka=off,rdkafka=off".to_string()
                })
            ),
        ];
        if let Ok(debug) = std::env::var("CHAOSBANK_KAFKA_DEBUG") {
            env.push(format!("CHAOSBANK_KAFKA_DEBUG={debug}"));
        }
        let binds = vec![node_binary_bind(binary)?];
        let node = self
            .create_node(
                NodeSpec {
                    kind,
                    name: kind.name(),
                    image: &image,
                    env,
                    binds,
                    // A producer serves the transfer API of the service contract too.
                    also_publish: (kind == NodeKind::Producer).then_some(workloads::node::API_PORT),
                    cmd: None,
                },
                &owner,
            )
            .await?;
        self.inner
            .lock_nodes()
            .insert(kind.name().to_string(), node.clone());
        self.inner.wait_ready(kind.name()).await?;
        Ok(node)
    }

    /// Starts a process of a user's service (`--service`): its image runs with `binary`
    /// (chaosbank's node binary) mounted read-only at `/usr/local/bin/chaosbank-node` as
    /// its entrypoint, which runs the process's command from its
    /// [`workloads::node::process::ProcessConfig`]; the port it serves the transfer API
    /// on is published too ([`Node::api_port`]). Does not wait for it.
    pub async fn add_process(&self, p: ServiceProcess, binary: &Path) -> Result<Node> {
        let ServiceProcess {
            name,
            image,
            config,
            env,
            binds,
            serve,
        } = p;
        let name = name.as_str();
        let taken = self.inner.lock_nodes().contains_key(name);
        if taken {
            return Err(Error::Config(format!(
                "a node named {name} is already in the cluster"
            )));
        }
        let owner = self.inner.owner()?;
        let mut env = env;
        env.push(format!(
            "{}={config}",
            workloads::node::process::PROCESS_CONFIG_ENV
        ));
        env.push(format!(
            "RUST_LOG={}",
            std::env::var("CHAOSBANK_NODE_LOG").unwrap_or_else(|_| "info".to_string())
        ));
        let mut all = vec![node_binary_bind(binary)?];
        all.extend(binds);
        let spec = NodeSpec {
            kind: NodeKind::Service,
            name,
            image: &image,
            env,
            binds: all,
            also_publish: serve,
            cmd: None,
        };
        let node = self.create_node(spec, &owner).await?;
        self.inner
            .lock_nodes()
            .insert(name.to_string(), node.clone());
        Ok(node)
    }

    async fn create_node(&self, spec: NodeSpec<'_>, owner: &Owner) -> Result<Node> {
        let NodeSpec {
            kind,
            name,
            image,
            mut env,
            binds,
            also_publish,
            cmd,
        } = spec;
        if self.inner.clock_faults && kind.is_app() {
            env.extend(
                workloads::node::clock::env()
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}")),
            );
        }
        let engine = &self.inner.engine;
        let container = format!("chaosbank-{}-{name}", self.inner.run);
        let mut last = None;
        // A port picked free can be taken before Docker binds it: try a few.
        for _ in 0..5 {
            let host_port = free_port()?;
            let cport = kind.container_port(host_port);
            let key = format!("{cport}/tcp");
            let binding = PortBinding {
                host_ip: Some("127.0.0.1".to_string()),
                host_port: Some(host_port.to_string()),
            };
            let mut exposed = HashMap::from([(key.clone(), HashMap::new())]);
            let mut bindings = HashMap::from([(key.clone(), Some(vec![binding]))]);
            let api_port = match also_publish {
                Some(port) => {
                    let host = free_port()?;
                    let key = format!("{port}/tcp");
                    exposed.insert(key.clone(), HashMap::new());
                    bindings.insert(
                        key,
                        Some(vec![PortBinding {
                            host_ip: Some("127.0.0.1".to_string()),
                            host_port: Some(host.to_string()),
                        }]),
                    );
                    Some(host)
                }
                None => None,
            };
            let mut endpoints = HashMap::new();
            endpoints.insert(
                self.inner.network.clone(),
                EndpointSettings {
                    aliases: Some(vec![name.to_string()]),
                    ..Default::default()
                },
            );
            let body = ContainerCreateBody {
                image: Some(image.to_string()),
                hostname: Some(name.to_string()),
                env: Some(with_port(&env, kind, host_port)),
                cmd: if cmd.is_some() {
                    cmd.clone()
                } else if env
                    .iter()
                    .any(|e| e.starts_with("CHAOSBANK_OFFICIAL_IMAGE="))
                {
                    kind.official_cmd()
                } else {
                    kind.cmd()
                },
                // A service's own image runs chaosbank's node binary in front of its
                // command.
                entrypoint: (kind == NodeKind::Service)
                    .then(|| vec!["/usr/local/bin/chaosbank-node".to_string()]),
                labels: Some(owner.labels(Some(name))),
                exposed_ports: Some(exposed),
                host_config: Some(HostConfig {
                    binds: (!binds.is_empty()).then(|| binds.clone()),
                    port_bindings: Some(bindings),
                    network_mode: Some(self.inner.network.clone()),
                    sysctls: (cport == host_port)
                        .then(|| {
                            let host = std::fs::read_to_string(EPHEMERAL_PORTS).ok()?;
                            Some(HashMap::from([(
                                "net.ipv4.ip_local_port_range".to_string(),
                                ephemeral_ports_below(&host)?,
                            )]))
                        })
                        .flatten(),
                    ..Default::default()
                }),
                networking_config: Some(NetworkingConfig {
                    endpoints_config: Some(endpoints),
                }),
                ..Default::default()
            };
            let opts = CreateContainerOptions {
                name: Some(container.clone()),
                ..Default::default()
            };
            engine
                .api()
                .create_container(Some(opts), body)
                .await
                .map_err(Error::docker(format!(
                    "create container {container} from {image}"
                )))?;
            match engine
                .api()
                .start_container(&container, None::<StartContainerOptions>)
                .await
            {
                Ok(()) => {
                    let sql = matches!(kind, NodeKind::Postgres | NodeKind::Mariadb);
                    let password = env_value(&env, "POSTGRES_PASSWORD")
                        .or_else(|| env_value(&env, "MARIADB_PASSWORD"))
                        .unwrap_or_default();
                    return Ok(Node {
                        kind,
                        api_port,
                        container,
                        image: image.to_string(),
                        endpoint: Endpoint {
                            node: name.to_string(),
                            kind,
                            host: "127.0.0.1".to_string(),
                            port: host_port,
                            user: sql.then(|| service::SQL_USER.to_string()),
                            password: sql.then_some(password),
                            database: sql.then(|| service::SQL_USER.to_string()),
                        },
                    });
                }
                Err(e) => {
                    engine.remove_container(&container).await?;
                    let text = e.to_string();
                    if !(text.contains("already allocated")
                        || text.contains("address already in use"))
                    {
                        return Err(Error::docker(format!("start container {container}"))(e));
                    }
                    last = Some(e);
                }
            }
        }
        Err(Error::docker(format!(
            "start container {container} (port conflicts)"
        ))(last.expect("the loop ran")))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let run = self.inner.run.clone();
        let watchdog = self.watchdog.take();
        // A destructor cannot await: tear down on a thread with its own runtime and wait.
        let r = std::thread::spawn(move || -> Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(Error::io("start a runtime for teardown"))?;
            rt.block_on(async {
                let engine = Engine::connect().await?;
                reaper::remove_run(&engine, &run).await.map(drop)
            })
        })
        .join();
        match (r, watchdog) {
            (Ok(Ok(())), Some(w)) => w.disarm(),
            (r, w) => {
                if let Ok(Err(e)) = r {
                    tracing::warn!(
                        "teardown of run {}: {e}; the watchdog takes over",
                        self.inner.run
                    );
                }
                drop(w);
            }
        }
    }
}

/// Why a RocketMQ broker may have refused to start: its store will not run with less
/// than 10 % of the disk available (counting only what a non-root user may take).
fn disk_hint() -> Option<String> {
    let path = std::ffi::CString::new("/var/lib/docker").ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a zeroed statvfs the call fills in.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 || st.f_blocks == 0 {
        return None;
    }
    let used = 1.0 - st.f_bavail as f64 / st.f_blocks as f64;
    (used >= 0.88).then(|| {
        format!(
            ". The disk under /var/lib/docker is {:.0} % used (counting only what a non-root user may take); the RocketMQ broker refuses to start past 90 %: free some space",
            used * 100.0
        )
    })
}

/// The environment with the host port filled in for the brokers that advertise it.
fn with_port(env: &[String], kind: NodeKind, host_port: u16) -> Vec<String> {
    // The official images' configuration names the port in several variables.
    if env
        .iter()
        .any(|e| e.starts_with("KAFKA_PROCESS_ROLES=") || e.starts_with("BROKER_CONF="))
    {
        if let Some(official) = kind.official_env(host_port) {
            return official;
        }
    }
    let key = match kind {
        NodeKind::Kafka => "KAFKA_PORT=",
        NodeKind::Broker => "BROKER_PORT=",
        _ => return env.to_vec(),
    };
    env.iter()
        .map(|e| {
            if e.starts_with(key) {
                format!("{key}{host_port}")
            } else {
                e.clone()
            }
        })
        .collect()
}

/// The value of `KEY=value` in an environment list.
fn env_value(env: &[String], key: &str) -> Option<String> {
    env.iter()
        .find_map(|e| e.strip_prefix(key)?.strip_prefix('=').map(str::to_string))
}

/// The host's range of ephemeral ports, the one [`free_port`] draws from.
const EPHEMERAL_PORTS: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// A container's range of ephemeral ports below the host's (`host` as the host's
/// `ip_local_port_range` reads, e.g. `32768\t60999`): a broker listening inside its
/// container on the port [`free_port`] picked from the host's range would otherwise
/// find it taken, now and then, by one of its own outgoing connections (Kafka's broker
/// connects to its controller before it binds its listener: "Address already in use").
/// None when the host's range leaves no room below it.
fn ephemeral_ports_below(host: &str) -> Option<String> {
    let low: u16 = host.split_whitespace().next()?.parse().ok()?;
    let (from, to) = (10_000, low.checked_sub(1)?);
    (to >= from + 1_000).then(|| format!("{from} {to}"))
}

/// A port on 127.0.0.1 that is free right now.
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(Error::io("pick a free port"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(Error::io("pick a free port"))
}

/// A random string: lowercase hex digits, or letters and digits.
fn random_string(len: usize, hex: bool) -> String {
    let mut rng = rand::thread_rng();
    if hex {
        (0..len)
            .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
            .collect()
    } else {
        (&mut rng)
            .sample_iter(&Alphanumeric)
            .take(len)
            .map(char::from)
            .collect()
    }
}

/// `SELECT version()` on a database, within five seconds.
async fn sql_version(url: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let fut = async {
        if url.starts_with("postgres") {
            let mut c = sqlx::PgConnection::connect(url).await?;
            let v: String = sqlx::query_scalar("SELECT version()")
                .fetch_one(&mut c)
                .await?;
            anyhow::Ok(v)
        } else {
            let mut c = sqlx::MySqlConnection::connect(url).await?;
            let v: String = sqlx::query_scalar("SELECT version()")
                .fetch_one(&mut c)
                .await?;
            anyhow::Ok(v)
        }
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within 5 s"))?
}

#[cfg(test)]
mod tests {
    use super::ephemeral_ports_below;

    #[test]
    fn a_broker_container_gets_ephemeral_ports_below_the_hosts() {
        // Linux's default range: the container's ends just below it, so no port picked
        // on the host can be one of the container's own outgoing connections.
        assert_eq!(
            ephemeral_ports_below("32768\t60999\n").as_deref(),
            Some("10000 32767")
        );
        // A host range starting low leaves no room: the container keeps its default.
        assert_eq!(ephemeral_ports_below("1024 65000"), None);
        assert_eq!(ephemeral_ports_below("10500 65000"), None);
        assert_eq!(ephemeral_ports_below("garbage"), None);
        assert_eq!(ephemeral_ports_below(""), None);
    }
}
