//! The Kafka Connect worker with Debezium (image `connect`, see `docker/CONTRACT.md`),
//! started for `outbox-cdc` as node `connect`: a fault target like the scheme's own
//! processes. Like a service's process, it runs under chaosbank's node binary, which
//! starts the forwarders on its loopback (bank A at `127.0.0.1:15432`, the broker at
//! the port it advertises) so the worker reaches the engines as the scheme's nodes do,
//! and the latency fault reaches its links too. Its REST API (port 8083) is published
//! on 127.0.0.1; the node is ready when the worker answers `GET /health` with 200
//! (Kafka Connect 3.9 and later). Whether the connector's task runs is the scheme's
//! readiness ([`workloads::connect::Connect::wait_running`]).

use std::path::Path;

use anyhow::{Context, Result};
use workloads::connect::ConnectLink;
use workloads::node::process::ProcessConfig;

use crate::cluster::{Cluster, ServiceProcess};
use crate::images;

/// The node's name, and the fault target's.
pub const NODE: &str = "connect";
/// The worker's REST port inside the container.
pub const REST_PORT: u16 = 8083;
/// The worker's offset flush interval (`offset.flush.interval.ms`): how much a worker
/// killed between two flushes publishes again when it comes back. Connect's default is
/// 60 s; 5 s keeps a restart's replay small but present, so deduplication is exercised.
pub const OFFSET_FLUSH_MS: u64 = 5000;

pub use crate::service::Debezium;

/// Starts the worker as node [`NODE`] (building the image of the cluster's Debezium
/// line, [`crate::service::Engines::debezium`], if it is missing)
/// and waits until it answers; returns how the harness reaches its REST API and how
/// the worker reaches bank A.
pub async fn start(cluster: &Cluster, binary: &Path) -> Result<ConnectLink> {
    start_with_plugins(cluster, binary, &[]).await
}

/// Where the `i`th plugin folder a service brings is mounted in the worker.
pub fn plugin_mount(i: usize) -> String {
    format!("/opt/connect/plugins/{i}")
}

/// [`start`], with `plugins` (folders a service brings) mounted read-only at
/// [`plugin_mount`] and named in the worker's `plugin.path` (`CONNECT_PLUGIN_PATH`),
/// next to the image's own Debezium.
pub async fn start_with_plugins(
    cluster: &Cluster,
    binary: &Path,
    plugins: &[std::path::PathBuf],
) -> Result<ConnectLink> {
    let debezium = cluster.engines().debezium;
    let image = match std::env::var(debezium.image_env())
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(r) => r,
        None => {
            images::ensure(cluster.engine(), debezium.image(), &Default::default())
                .await
                .with_context(|| format!("building the {} image", debezium.image()))?
                .reference
        }
    };
    let (forwards, inside) = crate::deploy::engine_links(cluster)?;
    let bootstrap = inside
        .kafka
        .clone()
        .context("outbox-cdc needs the Kafka broker")?;
    let config = ProcessConfig {
        name: NODE.to_string(),
        command: vec![
            "/usr/local/bin/entrypoint.sh".to_string(),
            "worker".to_string(),
        ],
        workdir: None,
        serve: Some(REST_PORT),
        forwards,
        control_port: workloads::node::CONTROL_PORT,
    };
    let env = vec![
        format!("CONNECT_BOOTSTRAP={bootstrap}"),
        format!("CONNECT_REST_PORT={REST_PORT}"),
        format!("CONNECT_OFFSET_FLUSH_MS={OFFSET_FLUSH_MS}"),
    ];
    let binds: Vec<String> = plugins
        .iter()
        .enumerate()
        .map(|(i, dir)| format!("{}:{}:ro", dir.display(), plugin_mount(i)))
        .collect();
    let mut env = env;
    if !plugins.is_empty() {
        let path: Vec<String> = (0..plugins.len()).map(plugin_mount).collect();
        env.push(format!("CONNECT_PLUGIN_PATH={}", path.join(",")));
    }
    let spec = ServiceProcess {
        name: NODE.to_string(),
        image,
        config: serde_json::to_string(&config)?,
        env,
        binds,
        serve: Some(REST_PORT),
    };
    let node = cluster
        .add_process(spec, binary)
        .await
        .context("starting the Kafka Connect worker")?;
    if let Err(e) = cluster.wait_ready(NODE).await {
        let logs = cluster.engine().logs_tail(&node.container, 40).await;
        return Err(anyhow::anyhow!(
            "the Kafka Connect worker never answered: {e}; its last output:\n{logs}"
        ));
    }
    let rest = node
        .api_port
        .map(|p| format!("127.0.0.1:{p}"))
        .context("the connect node published no REST port")?;
    Ok(ConnectLink {
        rest,
        bank_a: inside.bank_a,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debezium_lines_parse_and_name_their_images() {
        assert_eq!(Debezium::parse("3.7"), Ok(Debezium::V3_7));
        assert_eq!(Debezium::parse("3.2.3.Final"), Ok(Debezium::V3_2));
        assert!(Debezium::parse("3.27").is_err());
        assert!(Debezium::parse("2.7").is_err());
        assert_eq!(Debezium::default().image(), "connect");
        assert_eq!(Debezium::V3_2.image_env(), "CHAOSBANK_IMAGE_CONNECT_3_2");
        assert_eq!(serde_json::to_string(&Debezium::V3_2).unwrap(), "\"3.2\"");
        for d in Debezium::ALL {
            assert!(crate::images::NAMES.contains(&d.image()), "{d:?}");
        }
    }
}
