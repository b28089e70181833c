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

/// The Debezium release line the worker runs (`--debezium`): each has its own image,
/// Debezium on the Kafka Connect it is built against (see `docker/CONTRACT.md`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Debezium {
    /// 3.7 (3.7.1.Final on Kafka Connect 4.3.1), image `connect`: the newest served.
    #[default]
    #[serde(rename = "3.7")]
    V3_7,
    /// 3.2 (3.2.3.Final on Kafka Connect 3.9.1), image `connect-3.2`: an older line,
    /// without `offset.mismatch.strategy`.
    #[serde(rename = "3.2")]
    V3_2,
}

impl Debezium {
    /// Every line, newest first.
    pub const ALL: [Debezium; 2] = [Debezium::V3_7, Debezium::V3_2];

    /// Parses `3.7` or `3.2` (a full version of the line, `3.2.3.Final`, too).
    pub fn parse(s: &str) -> Result<Debezium, String> {
        Debezium::ALL
            .into_iter()
            .find(|d| s == d.name() || s.strip_prefix(d.name()).is_some_and(|r| r.starts_with('.')))
            .ok_or_else(|| format!("unknown Debezium line {s:?}; use 3.7 or 3.2"))
    }

    /// `3.7` or `3.2`.
    pub fn name(self) -> &'static str {
        match self {
            Debezium::V3_7 => "3.7",
            Debezium::V3_2 => "3.2",
        }
    }

    /// The image (and recipe under `docker/`) that runs this line.
    pub fn image(self) -> &'static str {
        match self {
            Debezium::V3_7 => "connect",
            Debezium::V3_2 => "connect-3.2",
        }
    }

    /// The environment variable naming a ready-made image for this line:
    /// `CHAOSBANK_IMAGE_CONNECT`, `CHAOSBANK_IMAGE_CONNECT_3_2`.
    pub fn image_env(self) -> String {
        format!(
            "CHAOSBANK_IMAGE_{}",
            self.image().to_uppercase().replace(['-', '.'], "_")
        )
    }

    /// True when the connector has `offset.mismatch.strategy` (absent from 3.2.3 and
    /// 3.3.1, present in 3.7.1), so `--slot-mismatch trust_offset` means something.
    pub fn has_mismatch_strategy(self) -> bool {
        self == Debezium::V3_7
    }
}

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
