//! `chaosbank`: the command-line front of the harness and the checkers.

mod commands;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// chaosbank: does money moved between two databases through a broker survive crashes
/// and partitions? Runs real engines in containers, breaks them, and checks the history.
#[derive(Parser)]
#[command(
    name = "chaosbank",
    version,
    propagate_version = true,
    after_help = "Examples:
  chaosbank run --system outbox --seed 7 --time-limit 30s   # one run, checked, stored in runs/
  chaosbank replay runs/latest                              # run it again, same seed and faults
  chaosbank replay runs/latest --times 10                   # how often it reproduces
  chaosbank shrink runs/latest                              # the smallest schedule that still convicts
  chaosbank run --system dual-write --schedule faults.toml  # a scripted fault schedule
  chaosbank soak --systems outbox,txmsg --seeds 1..20       # many seeds, one table
  chaosbank soak --seeds 1..100 --shard 2/4 --out store     # a quarter of them, on one runner
  chaosbank merge shards/                                   # the shards back into one soak
  chaosbank check runs/latest/history.jsonl --json          # judge a history
  chaosbank bench --systems outbox,txmsg                    # throughput beside pgbench and the broker

Each command has its own --help. Logs go to stderr, filtered by RUST_LOG (default info);
progress bars are drawn when stderr is a terminal."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a history file (JSON Lines) and print the verdict.
    ///
    /// Example: chaosbank check runs/latest/history.jsonl --json
    Check(commands::check::CheckArgs),
    /// Build the container images that are missing and list them.
    ///
    /// Example: chaosbank images --rebuild
    Images(commands::images::ImagesArgs),
    /// Start or remove a cluster of engines to poke at by hand.
    ///
    /// Example: chaosbank cluster up
    #[command(subcommand)]
    Cluster(commands::cluster::ClusterCommand),
    /// Run a scheme under a seeded workload and fault schedule, then check it.
    ///
    /// Example: chaosbank run --system dual-write --nemesis kill,partition --time-limit 30s
    Run(commands::run::RunArgs),
    /// Run a stored run again (same seed, workload and faults) and compare verdicts.
    ///
    /// Example: chaosbank replay runs/latest
    Replay(commands::replay::ReplayArgs),
    /// From a convicted run, find the smallest fault schedule that still convicts.
    ///
    /// Example: chaosbank shrink runs/latest --tries 3 --budget 30m --confirm 10
    Shrink(commands::shrink::ShrinkArgs),
    /// Run many seeds of one or more systems back to back and print one table.
    ///
    /// Example: chaosbank soak --systems outbox,txmsg --seeds 1..20 --time-limit 10m
    Soak(commands::soak::SoakArgs),
    /// Merge the shards of a soak (their soak.json) into one table, JUnit file and HTML
    /// page, exiting as the whole soak would.
    ///
    /// Example: chaosbank merge shards/ --out merged --baseline last-night/merged
    Merge(commands::merge::MergeArgs),
    /// Measure each system with no faults beside its engines' raw figures (pgbench, the
    /// broker's message rate) from the same run.
    ///
    /// Example: chaosbank bench --systems outbox,txmsg --time-limit 30s --json
    Bench(commands::bench::BenchArgs),
    /// Run one of a scheme's processes (inside a node container; started by `run`).
    #[command(hide = true)]
    Node,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Node) {
        commands::init_logging();
    }
    match cli.command {
        Command::Check(args) => commands::check::run(args),
        Command::Images(args) => commands::images::run(args),
        Command::Cluster(cmd) => commands::cluster::run(cmd),
        Command::Run(args) => commands::run::run(args),
        Command::Replay(args) => commands::replay::run(args),
        Command::Shrink(args) => commands::shrink::run(args),
        Command::Soak(args) => commands::soak::run(args),
        Command::Merge(args) => commands::merge::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Node => workloads::node::main(),
    }
}
