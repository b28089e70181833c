//! `chaosbank node`'s entry point: the node runs a scheme's role ([`super::serve`]) or,
//! with [`process::PROCESS_CONFIG_ENV`] set, a service's process ([`process::serve`]).
//! Apart from the module's body, which both use, so neither depends on the other.

use std::process::ExitCode;

use super::{process, serve, NodeConfig, CONFIG_ENV};

/// The entry point of `chaosbank node` (and of the tests' `chaosbank-node` binary): reads
/// [`CONFIG_ENV`] (or [`process::PROCESS_CONFIG_ENV`]), logs to stderr (filtered by `RUST_LOG`), serves until told to stop.
/// Exit code 2 for a missing or malformed configuration, 1 when serving fails.
pub fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,sqlx=error,rocketmq=warn,librdkafka=off,rdkafka=off",
        )
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    if let Ok(json) = std::env::var(process::PROCESS_CONFIG_ENV) {
        let cfg: process::ProcessConfig = match serde_json::from_str(&json) {
            Ok(cfg) => cfg,
            Err(e) => {
                eprintln!(
                    "error: {} is not a process configuration: {e}",
                    process::PROCESS_CONFIG_ENV
                );
                return ExitCode::from(2);
            }
        };
        let rt = match runtime(2) {
            Ok(rt) => rt,
            Err(code) => return code,
        };
        return match rt.block_on(process::serve(cfg)) {
            Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    let cfg: NodeConfig = match std::env::var(CONFIG_ENV) {
        Ok(json) => match serde_json::from_str(&json) {
            Ok(cfg) => cfg,
            Err(e) => {
                eprintln!("error: {CONFIG_ENV} is not a node configuration: {e}");
                return ExitCode::from(2);
            }
        },
        Err(_) => {
            eprintln!("error: {CONFIG_ENV} is not set (a node is started by the harness)");
            return ExitCode::from(2);
        }
    };
    let rt = match runtime(4) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(serve(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// A runtime of `threads` workers, or exit code 1 with the reason on stderr.
fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(1)
        })
}
