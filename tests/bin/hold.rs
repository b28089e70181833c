//! `chaosbank-hold [--keep] SERVICE...`: starts a cluster, prints `ready <run id>`, and
//! waits for Ctrl-C (then tears down and exits 0) — or, with `--keep`, detaches and
//! exits like `chaosbank cluster up`. The subject of the reaper tests' `kill -9`.

use harness::{Cluster, Service};
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
    let cluster = tokio::select! {
        c = b.start() => match c {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::from(1);
            }
        },
        _ = tokio::signal::ctrl_c() => return std::process::ExitCode::from(130),
    };
    println!("ready {}", cluster.run_id());
    let _ = std::io::stdout().flush();
    if keep {
        cluster.detach();
        return std::process::ExitCode::SUCCESS;
    }
    let _ = tokio::signal::ctrl_c().await;
    match cluster.down().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
