//! A user's own service under test (`--service`), deployed as `docs/sut.md` says:
//! the banks' tables created and seeded, the topic created, each process of its
//! [`manifest`] started in a node container of its own on the run's network (named as
//! the manifest names it, so faults target it by that name), each waited for
//! (`GET /health` for the serving one). The run then drives the returned
//! [`ServiceSystem`] like any scheme.

pub mod connector;
pub mod manifest;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use workloads::bank::BankId;
use workloads::node::process::ProcessConfig;
use workloads::service::{ContractBank, ServiceSystem};
use workloads::system::{Endpoints, Options, System};

use crate::cluster::Cluster;
use crate::config::RunConfig;
use crate::images;
pub use connector::Connector;
pub use manifest::{Broker, Manifest, ManifestError, Process, Runtime, Source, CONNECT_NODE};

/// The topic chaosbank creates for a service (`CHAOSBANK_TOPIC`).
pub const TOPIC: &str = "transfers";
/// Partitions (Kafka) or queues (RocketMQ) of that topic.
const PARTITIONS: i32 = 4;
/// Where a runtime process's folder is mounted, its working directory.
pub const SERVICE_DIR: &str = "/service";

/// What a run tests, as runs are stored and reported: its service's manifest name
/// (read from the manifest, whose errors name the file and line), else its scheme's.
pub fn subject_name(cfg: &RunConfig) -> Result<String, ManifestError> {
    match &cfg.service {
        Some(path) => Ok(Manifest::load(path)?.name),
        None => Ok(cfg.system.name().to_string()),
    }
}

/// The consumer / producer group a service is told to use (`CHAOSBANK_GROUP`).
pub fn group(manifest: &Manifest) -> String {
    format!(
        "chaosbank-{}",
        manifest
            .name
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    )
}

/// The environment every process of the service gets (sut.md §2), before its own.
pub fn environment(
    manifest: &Manifest,
    process: &Process,
    inside: &Endpoints,
    run: &str,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("CHAOSBANK_BANK_A_URL".to_string(), inside.bank_a.clone()),
        ("CHAOSBANK_BANK_B_URL".to_string(), inside.bank_b.clone()),
    ];
    match manifest.broker {
        Broker::Kafka => env.extend(
            inside
                .kafka
                .clone()
                .map(|k| ("CHAOSBANK_KAFKA_BOOTSTRAP".to_string(), k)),
        ),
        Broker::RocketMq => env.extend(
            inside
                .rocketmq
                .clone()
                .map(|n| ("CHAOSBANK_ROCKETMQ_NAMESRV".to_string(), n)),
        ),
    }
    env.push(("CHAOSBANK_TOPIC".to_string(), TOPIC.to_string()));
    env.push(("CHAOSBANK_GROUP".to_string(), group(manifest)));
    if let Some(port) = process.serve {
        env.push(("CHAOSBANK_PORT".to_string(), port.to_string()));
    }
    env.push(("CHAOSBANK_PROCESS".to_string(), process.name.clone()));
    env.push(("CHAOSBANK_RUN".to_string(), run.to_string()));
    if matches!(
        process.source,
        Source::Runtime {
            runtime: Runtime::Python,
            ..
        }
    ) {
        // The folder is mounted read-only: no __pycache__ left in the user's tree.
        env.push(("PYTHONDONTWRITEBYTECODE".to_string(), "1".to_string()));
    }
    env.extend(process.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// Creates the banks' tables and the topic, starts every process of `manifest` with
/// `binary` (chaosbank's node binary) in front of its command, waits until each is
/// ready, and returns the service as the run drives it. `host` are the engines as the
/// host reaches them.
pub async fn deploy(
    cluster: &Cluster,
    manifest: &Manifest,
    binary: &Path,
    host: &Endpoints,
    options: &Options,
    balances: &BTreeMap<String, i64>,
) -> Result<Arc<dyn System>> {
    for id in BankId::ALL {
        let url = if id == BankId::A {
            &host.bank_a
        } else {
            &host.bank_b
        };
        let bank = ContractBank::connect(id, url, 2)?;
        let r = bank.create(balances).await;
        bank.close().await;
        r.with_context(|| format!("creating bank {}'s tables", id.name()))?;
    }
    match manifest.broker {
        Broker::Kafka => {
            let bootstrap = host
                .kafka
                .as_deref()
                .context("the cluster has no Kafka broker")?;
            workloads::clients::kafka::create_topic(bootstrap, TOPIC, PARTITIONS)
                .await
                .with_context(|| format!("creating the topic {TOPIC}"))?;
        }
        Broker::RocketMq => {
            let namesrv = host
                .rocketmq
                .clone()
                .context("the cluster has no RocketMQ")?;
            workloads::clients::rocketmq::create_topic(namesrv, TOPIC.to_string(), PARTITIONS)
                .await
                .with_context(|| format!("creating the topic {TOPIC}"))?;
        }
    }
    let (forwards, inside) = crate::deploy::engine_links(cluster)?;
    let mut api = None;
    for p in &manifest.processes {
        let (image, workdir, binds) = match &p.source {
            Source::Image(image) => {
                cluster.engine().api().inspect_image(image).await.with_context(|| {
                    format!(
                        "{}:{}: process {}: the engine has no image {image:?} (pull or build it first)",
                        manifest.path.display(),
                        p.line,
                        p.name
                    )
                })?;
                (image.clone(), None, Vec::new())
            }
            Source::Build(dir) => {
                let tag = format!("{}-{}", manifest.name, p.name)
                    .to_ascii_lowercase()
                    .replace(|c: char| !(c.is_ascii_alphanumeric() || c == '-'), "-");
                let image = images::build_folder(cluster.engine(), &tag, dir, false)
                    .await
                    .with_context(|| format!("process {}: building {}", p.name, dir.display()))?;
                (image, None, Vec::new())
            }
            Source::Runtime { runtime, dir } => {
                let image = images::ensure(cluster.engine(), runtime.image(), &Default::default())
                    .await
                    .with_context(|| format!("building the {} image", runtime.image()))?
                    .reference;
                let bind = format!("{}:{SERVICE_DIR}:ro", dir.display());
                (image, Some(SERVICE_DIR.to_string()), vec![bind])
            }
        };
        let command = if p.command.is_empty() {
            image_command(cluster, &image).await?
        } else {
            p.command.clone()
        };
        let config = ProcessConfig {
            name: p.name.clone(),
            command,
            workdir,
            serve: p.serve,
            forwards: forwards.clone(),
            control_port: workloads::node::CONTROL_PORT,
        };
        let env = environment(manifest, p, &inside, cluster.run_id())
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let spec = crate::cluster::ServiceProcess {
            name: p.name.clone(),
            image,
            config: serde_json::to_string(&config)?,
            env,
            binds,
            serve: p.serve,
        };
        let node = cluster
            .add_process(spec, binary)
            .await
            .with_context(|| format!("starting process {}", p.name))?;
        if let Some(port) = node.api_port {
            api = Some(format!("127.0.0.1:{port}"));
        }
    }
    // The Kafka Connect worker of a service with connectors boots while its processes do.
    let connect = if manifest.connectors.is_empty() {
        None
    } else {
        let mut plugins: Vec<std::path::PathBuf> = Vec::new();
        for dir in manifest.connectors.iter().filter_map(|c| c.plugins.clone()) {
            if !plugins.contains(&dir) {
                plugins.push(dir);
            }
        }
        Some(crate::engines::connect::start_with_plugins(cluster, binary, &plugins).await?)
    };
    let waits = manifest.processes.iter().map(|p| async move {
        let Err(e) = cluster.wait_ready(&p.name).await else {
            return Ok(());
        };
        let mut message = format!(
            "process {} (manifest line {}) never became ready: {e}",
            p.name, p.line
        );
        // A process that still runs but never answered: show what it said.
        if !message.contains("its last output") {
            if let Ok(node) = cluster.node(&p.name) {
                let logs = cluster.engine().logs_tail(&node.container, 30).await;
                message.push_str(&format!("; its last output:\n{logs}"));
            }
        }
        Err(anyhow::anyhow!(message))
    });
    for r in futures_util::future::join_all(waits).await {
        r?;
    }
    let api = api.context("the serving process published no port")?;
    let system = ServiceSystem::new(&manifest.name, host, options, api, manifest.settle)?;
    if let Some(link) = connect {
        register_connectors(manifest, &link.rest, &inside, cluster.run_id()).await?;
        let names: Vec<String> = manifest.connectors.iter().map(|c| c.name.clone()).collect();
        system.supervise_connectors(&link.rest, &names);
    }
    Ok(Arc::new(system))
}

/// How long a service's connector has to be `RUNNING` after it is registered.
const CONNECTOR_RUNNING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Registers each of the manifest's connectors with the worker at `rest`, its
/// placeholders filled with the engines as the worker reaches them (`inside`), and waits
/// until its tasks are `RUNNING`.
async fn register_connectors(
    manifest: &Manifest,
    rest: &str,
    inside: &Endpoints,
    run: &str,
) -> Result<()> {
    let bootstrap = inside
        .kafka
        .as_deref()
        .context("a service with connectors needs the Kafka broker")?;
    let values = connector::values(&inside.bank_a, &inside.bank_b, bootstrap, TOPIC, run)?;
    let client = workloads::connect::Connect::new(rest);
    for c in &manifest.connectors {
        let at = format!(
            "{}:{}: connector {} ({})",
            manifest.path.display(),
            c.line,
            c.name,
            c.file.display()
        );
        client
            .register(&c.name, &c.render(&values))
            .await
            .with_context(|| format!("{at}: registering it"))?;
        let status = client
            .wait_running(&c.name, CONNECTOR_RUNNING_TIMEOUT)
            .await
            .with_context(|| format!("{at}: waiting for its tasks to run"))?;
        tracing::info!("connector {} running: {status:?}", c.name);
    }
    Ok(())
}

/// An image's own entrypoint and command, for a process that names none.
async fn image_command(cluster: &Cluster, image: &str) -> Result<Vec<String>> {
    let info = cluster.engine().api().inspect_image(image).await?;
    let cfg = info.config.unwrap_or_default();
    let mut cmd = cfg.entrypoint.unwrap_or_default();
    cmd.extend(cfg.cmd.unwrap_or_default());
    anyhow::ensure!(
        !cmd.is_empty(),
        "image {image} has no entrypoint or command, and the manifest gives no `command`"
    );
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_process_gets_the_contract_environment_and_its_own_on_top() {
        let text = r#"
name = "my outbox"
broker = "kafka"
[[process]]
name = "api"
serve = 8080
image = "x"
command = ["x"]
env = { LOG_LEVEL = "info", CHAOSBANK_TOPIC = "mine" }
"#;
        let m = Manifest::parse(text, Path::new("/tmp/chaosbank.toml")).unwrap();
        let inside = Endpoints {
            bank_a: "postgres://u:p@127.0.0.1:15432/chaosbank".into(),
            bank_b: "mysql://u:p@127.0.0.1:13306/chaosbank".into(),
            kafka: Some("127.0.0.1:39092".into()),
            rocketmq: None,
            connect: None,
        };
        let env = environment(&m, m.server(), &inside, "abcd1234");
        let get = |k: &str| {
            env.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("CHAOSBANK_BANK_A_URL"), Some(inside.bank_a.as_str()));
        assert_eq!(get("CHAOSBANK_BANK_B_URL"), Some(inside.bank_b.as_str()));
        assert_eq!(get("CHAOSBANK_KAFKA_BOOTSTRAP"), Some("127.0.0.1:39092"));
        assert_eq!(get("CHAOSBANK_ROCKETMQ_NAMESRV"), None);
        assert_eq!(get("CHAOSBANK_GROUP"), Some("chaosbank-my-outbox"));
        assert_eq!(get("CHAOSBANK_PORT"), Some("8080"));
        assert_eq!(get("CHAOSBANK_PROCESS"), Some("api"));
        assert_eq!(get("CHAOSBANK_RUN"), Some("abcd1234"));
        assert_eq!(get("LOG_LEVEL"), Some("info"));
        // The manifest's own environment is added after chaosbank's: it wins.
        assert_eq!(get("CHAOSBANK_TOPIC"), Some("mine"));
    }
}
