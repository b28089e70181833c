//! One module per `chaosbank` subcommand; each turns parsed flags into a call on the
//! library and an exit code.

pub mod bench;
pub mod check;
pub mod cluster;
pub mod images;
pub mod merge;
pub mod replay;
pub mod run;
pub mod shrink;
pub mod soak;

/// Logs go to stderr, filtered by `RUST_LOG` (default: `info`, with the SQL and broker
/// clients' own chatter — librdkafka logs every refused connection during a fault as an
/// error — turned down or off), around the progress bars (which are drawn only when
/// stderr is a terminal).
pub fn init_logging() {
    chaosbank::progress::enable();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,sqlx=error,rocketmq=warn,librdkafka=off,rdkafka=off",
        )
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| chaosbank::progress::LogWriter)
        .try_init();
}

/// Runs a command's async body on a fresh runtime and turns its error into exit code 1
/// with the whole context chain on stderr.
pub fn block_on(
    fut: impl std::future::Future<Output = anyhow::Result<std::process::ExitCode>>,
) -> std::process::ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match rt.block_on(fut) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
