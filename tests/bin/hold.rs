//! `chaosbank-hold [--keep] SERVICE...`: starts a cluster, prints `ready <run id>`, and
//! waits for Ctrl-C (then tears down and exits 0) — or, with `--keep`, detaches and
//! exits like `chaosbank cluster up`. The subject of the reaper tests' `kill -9`.

use chaosbank::{Cluster, Service};
use std::io::Write;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let keep = args.iter().any(|a| a == "--keep");
    let mut b = Cluster::builder().keep(keep);
    for a in args.iter().filter(|a| !a.starts_with("--")) {
        match Service::parse(a) {
            Some(s) => b = b.service(s),
            None => {
                eprintln!("unknown service {a}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    // One SIGINT stream for the whole life of the process: a signal that arrives between
    // two `ctrl_c()` futures would be lost, and this one keeps it pending.
    let mut sigint = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot watch SIGINT: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let cluster = tokio::select! {
        c = b.start() => match c {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::from(1);
            }
        },
        _ = sigint.recv() => return std::process::ExitCode::from(130),
    };
    println!("ready {}", cluster.run_id());
    let _ = std::io::stdout().flush();
    if keep {
        cluster.detach();
        return std::process::ExitCode::SUCCESS;
    }
    sigint.recv().await;
    match cluster.down().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
