//! The Docker engine: one connection, negotiated down to the engine's API version, and the
//! handful of calls the rest of the harness needs, each wrapped with what it was doing.
//!
//! Everything goes through bollard except image builds and `docker import`, which shell
//! out to the `docker` CLI (see [`crate::images`]).

use crate::error::{Error, Result};
use bollard::models::ContainerSummary;
use bollard::query_parameters::{
    InspectContainerOptions, KillContainerOptions, ListContainersOptions, ListNetworksOptions,
    RemoveContainerOptions,
};
use bollard::Docker;
use std::collections::HashMap;
use std::time::Duration;

/// How long the first contact with the engine may take before we call it down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to a Docker engine whose API version has been negotiated.
#[derive(Clone, Debug)]
pub struct Engine {
    api: Docker,
    endpoint: String,
}

/// Where [`Engine::connect`] looks: `DOCKER_HOST`, else the default socket.
pub fn endpoint() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
}

impl Engine {
    /// Connects to `DOCKER_HOST` or the local socket and negotiates the API version, so
    /// old (20.10, API 1.41) and new (29.x, ≥ 1.44) engines both work.
    ///
    /// An engine that does not answer yields [`Error::EngineDown`], whose message tells
    /// the user to run `bash docker/setup.sh`.
    pub async fn connect() -> Result<Engine> {
        let endpoint = endpoint();
        let down = |reason: String| Error::EngineDown {
            endpoint: endpoint.clone(),
            reason,
        };
        let api = Docker::connect_with_local_defaults().map_err(|e| down(e.to_string()))?;
        let api = tokio::time::timeout(CONNECT_TIMEOUT, api.negotiate_version())
            .await
            .map_err(|_| down(format!("no answer within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| down(e.to_string()))?;
        Ok(Engine { api, endpoint })
    }

    /// The bollard client, for calls this module does not wrap.
    pub fn api(&self) -> &Docker {
        &self.api
    }

    /// Where this engine was reached (`DOCKER_HOST` or the socket).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Containers (running or not) carrying every `key=value` label given.
    pub async fn containers_labelled(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<ContainerSummary>> {
        let filters = label_filter(labels);
        let opts = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        self.api
            .list_containers(Some(opts))
            .await
            .map_err(Error::docker("list containers"))
    }

    /// Networks carrying every `key=value` label given, as `(name, labels)`.
    pub async fn networks_labelled(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<(String, HashMap<String, String>)>> {
        let opts = ListNetworksOptions {
            filters: Some(label_filter(labels)),
        };
        let nets = self
            .api
            .list_networks(Some(opts))
            .await
            .map_err(Error::docker("list networks"))?;
        Ok(nets
            .into_iter()
            .filter_map(|n| Some((n.name?, n.labels.unwrap_or_default())))
            .collect())
    }

    /// Removes a container whatever its state (paused ones are unpaused first, which
    /// old engines need); a container already gone is not an error.
    pub async fn remove_container(&self, name: &str) -> Result<()> {
        if let Ok(info) = self
            .api
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            if info.state.and_then(|s| s.paused).unwrap_or(false) {
                let _ = self.api.unpause_container(name).await;
            }
        }
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.api.remove_container(name, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // Removal already under way (another reaper, or auto-remove) counts as done.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(Error::docker(format!("remove container {name}"))(e)),
        }
    }

    /// Removes a network; one already gone is not an error.
    pub async fn remove_network(&self, name: &str) -> Result<()> {
        match self.api.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::docker(format!("remove network {name}"))(e)),
        }
    }

    /// Sends SIGKILL to a container (Docker keeps it, stopped, for a later start).
    pub async fn kill(&self, name: &str) -> Result<()> {
        let opts = KillContainerOptions {
            signal: "SIGKILL".to_string(),
        };
        self.api
            .kill_container(name, Some(opts))
            .await
            .map_err(Error::docker(format!("kill container {name}")))
    }

    /// The host pid of a running container's init process: the handle on its network
    /// namespace for `nsenter`.
    pub async fn pid(&self, name: &str) -> Result<u32> {
        let info = self
            .api
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
            .map_err(Error::docker(format!("inspect container {name}")))?;
        match info.state.and_then(|s| s.pid) {
            Some(pid) if pid > 0 => Ok(pid as u32),
            _ => Err(Error::Config(format!("container {name} is not running"))),
        }
    }

    /// Whether a container is running, paused (which counts as running for Docker), or
    /// neither; `None` when it does not exist.
    pub async fn state(&self, name: &str) -> Result<Option<(bool, bool)>> {
        match self
            .api
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => {
                let s = info.state.unwrap_or_default();
                Ok(Some((
                    s.running.unwrap_or(false),
                    s.paused.unwrap_or(false),
                )))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(Error::docker(format!("inspect container {name}"))(e)),
        }
    }
}

impl Engine {
    /// The last `lines` lines a container printed (stdout and stderr), for error messages.
    pub async fn logs_tail(&self, name: &str, lines: usize) -> String {
        use futures_util::StreamExt;
        let opts = bollard::query_parameters::LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let mut out = String::new();
        let mut stream = self.api.logs(name, Some(opts));
        while let Some(Ok(chunk)) = stream.next().await {
            out.push_str(&chunk.to_string());
        }
        out
    }

    /// Streams a container's whole log (stdout and stderr, as it printed them) into the
    /// file `path`, replacing it.
    pub async fn save_logs(&self, name: &str, path: &std::path::Path) -> Result<()> {
        use futures_util::StreamExt;
        use std::io::Write;
        let io = |e: std::io::Error| Error::Config(format!("writing {}: {e}", path.display()));
        let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
        let opts = bollard::query_parameters::LogsOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut stream = self.api.logs(name, Some(opts));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(Error::docker(format!("logs of container {name}")))?;
            file.write_all(&chunk.into_bytes()).map_err(io)?;
        }
        file.flush().map_err(io)
    }
}

fn label_filter(labels: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    let mut filters = HashMap::new();
    filters.insert(
        "label".to_string(),
        labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
    );
    filters
}

/// Whether an engine error means "no such object".
pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Runs a host command to completion, returning stdout, or an [`Error::Command`] with
/// the tail of stderr.
pub async fn run_command(program: &str, args: &[&str]) -> Result<String> {
    let command = format!("{program} {}", args.join(" "));
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| Error::Command {
            command: command.clone(),
            status: format!("could not start: {e}"),
            stderr: String::new(),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Command {
            command,
            status: out.status.to_string(),
            stderr: tail(&String::from_utf8_lossy(&out.stderr), 20),
        })
    }
}

/// The last `n` lines of a text.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
