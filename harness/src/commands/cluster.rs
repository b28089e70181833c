//! `chaosbank cluster`: TODO(issue 3).
use std::process::ExitCode;

/// `chaosbank cluster up|down`.
#[derive(clap::Subcommand)]
pub enum ClusterCommand {
    /// Start the engines and print how to reach each.
    Up,
    /// Remove the cluster and every leftover of earlier runs.
    Down,
}

/// Runs `chaosbank cluster …`.
pub fn run(_cmd: ClusterCommand) -> ExitCode {
    ExitCode::from(2)
}
