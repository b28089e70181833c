//! A service's process in a node container: `chaosbank node` with
//! [`PROCESS_CONFIG_ENV`] set runs the service's own command as its child, between the
//! harness and the engines. It starts a [`Forwarder`] per engine link (so the latency
//! fault reaches the service's links as it does a scheme's), starts the command with
//! the container's environment, and serves the control port: `health` is ready while
//! the command runs and — for the serving process — answers `GET /health` with 200.
//!
//! SIGTERM is passed to the command, which gets a grace period before SIGKILL. When the
//! command exits by itself the node exits with its status (a crash is a finding; the
//! nemesis's heal starts the container again).

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{wire, Forward, Forwarder, Request, Response};
use crate::service::HttpClient;
use crate::system::Role;

/// The environment variable that carries a [`ProcessConfig`] as JSON.
pub const PROCESS_CONFIG_ENV: &str = "CHAOSBANK_PROCESS_CONFIG";
/// How long the command has to exit after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(8);

/// What a service process's node is told.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcessConfig {
    /// The process's name in the manifest.
    pub name: String,
    /// The command and its arguments.
    pub command: Vec<String>,
    /// The working directory (default: the image's).
    #[serde(default)]
    pub workdir: Option<String>,
    /// The port the serving process serves the transfer API on.
    #[serde(default)]
    pub serve: Option<u16>,
    /// The engine links to forward.
    pub forwards: Vec<Forward>,
    /// Where to serve the control protocol.
    pub control_port: u16,
}

/// Runs the command until it exits or the node is told to stop; returns its exit code.
pub async fn serve(cfg: ProcessConfig) -> Result<i32> {
    let Some((program, args)) = cfg.command.split_first() else {
        bail!("process {}: an empty command", cfg.name);
    };
    let tap = Arc::new(super::aim::Tap::exiting());
    let forwarders = super::start_forwarders(&cfg.forwards, &tap).await?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .env_remove(PROCESS_CONFIG_ENV)
        .kill_on_drop(true);
    if let Some(dir) = &cfg.workdir {
        command.current_dir(dir);
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("process {}: starting {:?}", cfg.name, cfg.command))?;
    let pid = child.id();
    tracing::info!(
        "process {} started: {:?} (pid {pid:?})",
        cfg.name,
        cfg.command
    );

    let (running_tx, running) = watch::channel(true);
    let state = Arc::new(State {
        serve: cfg.serve.map(|p| HttpClient::new(format!("127.0.0.1:{p}"))),
        running,
        forwarders,
        tap,
    });
    let listener = TcpListener::bind(("0.0.0.0", cfg.control_port))
        .await
        .with_context(|| format!("binding the control port {}", cfg.control_port))?;
    let handler = {
        let state = state.clone();
        move |req: Request| {
            let state = state.clone();
            async move { state.handle(req).await }
        }
    };
    let control = tokio::spawn(wire::serve(listener, handler));
    let code = tokio::select! {
        status = child.wait() => {
            let status = status.context("waiting for the command")?;
            tracing::warn!("process {} exited by itself: {status}", cfg.name);
            status.code().unwrap_or(1)
        }
        _ = super::shutdown_signal() => {
            tracing::info!("stopping process {}", cfg.name);
            if let Some(pid) = pid {
                // SAFETY: kill(2) on our own child's pid.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            match tokio::time::timeout(STOP_GRACE, child.wait()).await {
                Ok(Ok(status)) => status.code().unwrap_or(0),
                _ => {
                    tracing::warn!("process {} ignored SIGTERM for {STOP_GRACE:?}: killing it", cfg.name);
                    let _ = child.kill().await;
                    0
                }
            }
        }
    };
    let _ = running_tx.send(false);
    control.abort();
    for (_, f) in &state.forwarders {
        f.shutdown();
    }
    Ok(code)
}

struct State {
    serve: Option<HttpClient>,
    running: watch::Receiver<bool>,
    forwarders: Vec<(Forward, Forwarder)>,
    tap: Arc<super::aim::Tap>,
}

impl State {
    async fn handle(&self, req: Request) -> Response {
        match req {
            Request::Health => {
                let mut ready = *self.running.borrow();
                if let (true, Some(api)) = (ready, &self.serve) {
                    ready = api.healthy(Duration::from_secs(2)).await;
                }
                // A service process has no scheme role: `producer` names the one that
                // takes transfers, `consumer` any other.
                let role = if self.serve.is_some() {
                    Role::Producer
                } else {
                    Role::Consumer
                };
                Response::Health { ready, role }
            }
            Request::Delay { engine, ms } => Response::Done {
                links: super::set_forwarder_delays(&self.forwarders, engine.as_deref(), ms),
            },
            Request::Producing => Response::Producing { n: 0 },
            Request::Clock { .. } | Request::Time => super::clock_request(&req),
            Request::Arm { .. } | Request::Fired | Request::Disarm | Request::Replies => {
                super::aim_request(&self.tap, &self.forwarders, req)
            }
        }
    }
}
