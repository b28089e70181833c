//! Writes a generated, valid bank history (JSON Lines) to stdout, for benchmarks and
//! for trying `chaosbank check` by hand.
//!
//! `cargo run --release -p chaosbank-checkers --example gen_history -- --ops 10000000 --seed 1 > /tmp/h.jsonl`
//!
//! Flags: `--ops N` (client ops, default 1000), `--seed S`, `--clients C` (default 16),
//! `--read-share F` (default 0.5), `--ledger-chunk K` (entries per final-ledger line,
//! default 1000).
use checkers::synth::{final_ops, BankParams, BankSim};
use std::io::{BufWriter, Write};

fn main() {
    let mut p = BankParams {
        clients: 16,
        ..BankParams::default()
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1).cloned().unwrap_or_default();
        let bad = || -> ! {
            eprintln!("gen_history: bad value {val:?} for {}", args[i]);
            std::process::exit(2)
        };
        match args[i].as_str() {
            "--ops" => p.ops = val.parse().unwrap_or_else(|_| bad()),
            "--seed" => p.seed = val.parse().unwrap_or_else(|_| bad()),
            "--clients" => p.clients = val.parse().unwrap_or_else(|_| bad()),
            "--read-share" => p.read_share = val.parse().unwrap_or_else(|_| bad()),
            "--ledger-chunk" => p.ledger_chunk = val.parse().unwrap_or_else(|_| bad()),
            other => {
                eprintln!("gen_history: unknown flag {other}");
                std::process::exit(2)
            }
        }
        i += 2;
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut failed = false;
    let mut write = |op: &checkers::Op, out: &mut BufWriter<_>| {
        if serde_json::to_writer(&mut *out, op).is_err() || out.write_all(b"\n").is_err() {
            failed = true;
        }
    };
    let mut sim = BankSim::new(p.clone(), false);
    sim.run(&mut |op| write(&op, &mut out));
    for op in final_ops(&sim.ledgers, &[], p.ledger_chunk, sim.next_index()) {
        write(&op, &mut out);
    }
    if failed || out.flush().is_err() {
        eprintln!("gen_history: cannot write to stdout");
        std::process::exit(1);
    }
}
