//! Where a scheme's processes run. By default each of its [`Role`]s (producer, relay,
//! consumer) gets a node container of its own, running chaosbank's node binary, so
//! the nemesis can kill, pause, partition and slow them like the engines; the harness
//! then reaches the scheme through [`Remote`]. With `in_process` they run as tasks of
//! the harness instead (faults then reach them only through the engines).
//!
//! A node reaches every engine through a forwarder on its own loopback, at the port the
//! engine is known by on 127.0.0.1: the brokers advertise `127.0.0.1:<published port>`,
//! which inside a node container is that forwarder; the databases get fixed ports.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use workloads::node::remote::Remote;
use workloads::node::{Forward, NodeConfig};
use workloads::system::{Endpoints, Options, Role, System, SystemKind};

use crate::cluster::Cluster;
use crate::service::{Endpoint, NodeKind, NAMESRV_PORT};

/// The environment variable naming the node binary (a build of `chaosbank`, or of the
/// tests' `chaosbank-node`).
pub const NODE_BIN_ENV: &str = "CHAOSBANK_NODE_BIN";
/// Bank A's port on a node's loopback.
const PG_PORT: u16 = 15432;
/// Bank B's port on a node's loopback.
const MYSQL_PORT: u16 = 13306;
/// The longest an in-process scheme may take to be ready (txmsg consumers' warm-up).
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The node binary to mount into node containers: `explicit`, else
/// `$CHAOSBANK_NODE_BIN`, else this program when it is `chaosbank` or
/// `chaosbank-node`, else a `chaosbank` next to it (or one folder up, for test
/// binaries in `target/*/deps`).
pub fn node_binary(explicit: Option<&Path>) -> Result<PathBuf> {
    let named = explicit
        .map(|p| (p.to_path_buf(), "the node binary"))
        .or_else(|| {
            std::env::var_os(NODE_BIN_ENV)
                .filter(|v| !v.is_empty())
                .map(|p| (PathBuf::from(p), NODE_BIN_ENV))
        });
    if let Some((p, what)) = named {
        if !p.is_file() {
            bail!("{what} {} is not a file", p.display());
        }
        return Ok(p);
    }
    let exe = std::env::current_exe().context("finding this program")?;
    let name = exe.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if name == "chaosbank" || name == "chaosbank-node" {
        return Ok(exe);
    }
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join("chaosbank");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "no node binary to run the scheme's processes in containers: build chaosbank \
         (cargo build -p chaosbank-harness) and set {NODE_BIN_ENV} to it, or run in-process"
    )
}

/// What a node of `role` is told: the engines through its forwarders.
pub fn node_config(
    cluster: &Cluster,
    system: SystemKind,
    role: Role,
    options: &Options,
) -> Result<NodeConfig> {
    let (forwards, endpoints) = engine_links(cluster)?;
    Ok(NodeConfig {
        system,
        role,
        endpoints,
        options: options.clone(),
        forwards,
        control_port: workloads::node::CONTROL_PORT,
        api_port: (role == Role::Producer).then_some(workloads::node::API_PORT),
    })
}

/// How a node container reaches the cluster's engines: the forwarders it starts on its
/// loopback, and the engines' addresses through them.
pub fn engine_links(cluster: &Cluster) -> Result<(Vec<Forward>, Endpoints)> {
    let inside = |e: Endpoint, port: u16| {
        Endpoint {
            host: "127.0.0.1".to_string(),
            port,
            ..e
        }
        .url()
    };
    let mut forwards = vec![
        Forward {
            listen: PG_PORT,
            target: "postgres:5432".to_string(),
        },
        Forward {
            listen: MYSQL_PORT,
            target: "mariadb:3306".to_string(),
        },
    ];
    let mut endpoints = Endpoints {
        bank_a: inside(cluster.endpoint("postgres")?, PG_PORT),
        bank_b: inside(cluster.endpoint("mariadb")?, MYSQL_PORT),
        kafka: None,
        rocketmq: None,
        connect: None,
    };
    if let Ok(k) = cluster.endpoint("kafka") {
        forwards.push(Forward {
            listen: k.port,
            target: format!("kafka:{}", k.port),
        });
        endpoints.kafka = Some(format!("127.0.0.1:{}", k.port));
    }
    if let Ok(b) = cluster.endpoint("broker") {
        forwards.push(Forward {
            listen: NAMESRV_PORT,
            target: format!("namesrv:{NAMESRV_PORT}"),
        });
        forwards.push(Forward {
            listen: b.port,
            target: format!("broker:{}", b.port),
        });
        endpoints.rocketmq = Some(format!("127.0.0.1:{NAMESRV_PORT}"));
    }
    Ok((forwards, endpoints))
}

/// Sets the scheme up (schemas, accounts, topics) through `local` — the scheme built on
/// the host's endpoints — and starts its processes: in node containers from `binary`,
/// or, when `binary` is `None`, in this process. Returns the system the workload drives.
pub async fn deploy(
    cluster: &Cluster,
    local: Box<dyn System>,
    system: SystemKind,
    options: &Options,
    balances: &std::collections::BTreeMap<String, i64>,
    binary: Option<&Path>,
) -> Result<Arc<dyn System>> {
    local
        .setup(balances)
        .await
        .context("setting up the scheme")?;
    let Some(binary) = binary else {
        for role in system.roles() {
            local
                .start(*role)
                .await
                .with_context(|| format!("starting the {role}"))?;
        }
        let waited = Instant::now();
        while !local.ready() {
            if waited.elapsed() > READY_TIMEOUT {
                bail!("the scheme was not ready within {READY_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        return Ok(Arc::from(local));
    };
    for role in system.roles() {
        let cfg = node_config(cluster, system, *role, options)?;
        let json = serde_json::to_string(&cfg)?;
        let started = Instant::now();
        cluster
            .add_app(NodeKind::of_role(*role), binary, &json)
            .await
            .with_context(|| format!("starting the {role} node"))?;
        tracing::info!("{role} node ready in {:.1?}", started.elapsed());
    }
    let producer = cluster.node(NodeKind::Producer.name())?;
    let api = producer
        .api_port
        .map(|p| format!("127.0.0.1:{p}"))
        .context("the producer node published no transfer API")?;
    Ok(Arc::new(Remote::new(local, producer.endpoint.addr(), api)))
}

/// Stops the node containers cleanly (SIGTERM: consumers commit their offsets), so
/// nothing changes the banks while the final state is read.
pub async fn stop_nodes(cluster: &Cluster) {
    for name in cluster.nodes() {
        let Ok(node) = cluster.node(&name) else {
            continue;
        };
        if !node.kind.is_app() {
            continue;
        }
        let opts = bollard::query_parameters::StopContainerOptions {
            t: Some(10),
            ..Default::default()
        };
        if let Err(e) = cluster
            .engine()
            .api()
            .stop_container(&node.container, Some(opts))
            .await
        {
            tracing::warn!("stopping {name}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_node_binary_must_exist() {
        let err = node_binary(Some(Path::new("/nonexistent/chaosbank"))).unwrap_err();
        assert!(
            err.to_string()
                .contains("/nonexistent/chaosbank is not a file"),
            "{err}"
        );
        let exe = std::env::current_exe().unwrap();
        assert_eq!(node_binary(Some(&exe)).unwrap(), exe);
    }
}
