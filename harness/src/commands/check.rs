//! `chaosbank check`: TODO(issue 2).
use std::process::ExitCode;

/// Flags of `chaosbank check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// The history file (JSON Lines).
    pub history: std::path::PathBuf,
}

/// Runs `chaosbank check`.
pub fn run(_args: CheckArgs) -> ExitCode {
    ExitCode::from(2)
}
