//! Times reading a history file against checking it, for the figures in the README.
//!
//! `check_speed parse FILE` only parses every op (the reader, nothing else);
//! `check_speed check FILE` runs the whole check (`chaosbank check` without printing).
//! Prints ops, seconds and ops/s; run under `/usr/bin/time -v` for peak memory.
use checkers::compose::check_reader;
use checkers::history::HistoryReader;
use std::fs::File;
use std::io::BufReader;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mode), Some(path)) = (args.first(), args.get(1)) else {
        eprintln!("usage: check_speed parse|check FILE");
        std::process::exit(2);
    };
    let file = match File::open(path) {
        Ok(f) => BufReader::with_capacity(1 << 20, f),
        Err(e) => {
            eprintln!("check_speed: {path}: {e}");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let (ops, verdict) = match mode.as_str() {
        "parse" => {
            let mut n = 0u64;
            for op in HistoryReader::new(file) {
                match op {
                    Ok(_) => n += 1,
                    Err(e) => {
                        eprintln!("check_speed: {e}");
                        std::process::exit(2);
                    }
                }
            }
            (n, String::from("-"))
        }
        "check" => match check_reader(file, None) {
            Ok(v) => (v.ops, v.valid.as_str().to_owned()),
            Err(e) => {
                eprintln!("check_speed: {e}");
                std::process::exit(2);
            }
        },
        other => {
            eprintln!("check_speed: unknown mode {other}");
            std::process::exit(2);
        }
    };
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{mode}: {ops} ops in {secs:.3} s = {:.0} ops/s ({verdict})",
        ops as f64 / secs
    );
}
