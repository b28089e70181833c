//! One module per `chaosbank` subcommand; each turns parsed flags into a call on the
//! library and an exit code.

pub mod check;
pub mod cluster;
pub mod images;

/// Logs go to stderr, filtered by `RUST_LOG` (default: `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
