//! `chaosbank images`: TODO(issue 3).
use std::process::ExitCode;

/// Flags of `chaosbank images`.
#[derive(clap::Args)]
pub struct ImagesArgs {
    /// Rebuild every image even when a cached one matches its recipe.
    #[arg(long)]
    pub rebuild: bool,
}

/// Runs `chaosbank images`.
pub fn run(_args: ImagesArgs) -> ExitCode {
    ExitCode::from(2)
}
