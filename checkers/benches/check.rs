//! Parse-only against the whole check, on a generated bank history held in memory
//! (200 000 ops), so the ratio the README reports can be reproduced with `cargo bench`.
use checkers::compose::check_reader;
use checkers::history::HistoryReader;
use checkers::synth::{final_ops, BankParams, BankSim};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn history(ops: u64) -> (Vec<u8>, u64) {
    let p = BankParams {
        ops,
        clients: 16,
        ..BankParams::default()
    };
    let mut text = Vec::new();
    let mut n = 0;
    let mut sim = BankSim::new(p.clone(), false);
    let mut push = |op: &checkers::Op| {
        serde_json::to_writer(&mut text, op).expect("serializes");
        text.push(b'\n');
        n += 1;
    };
    sim.run(&mut |op| push(&op));
    for op in final_ops(&sim.ledgers, &[], p.ledger_chunk, sim.next_index()) {
        push(&op);
    }
    (text, n)
}

fn bench(c: &mut Criterion) {
    let (text, n) = history(200_000);
    let mut g = c.benchmark_group("history-200k");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.bench_function("parse-only", |b| {
        b.iter(|| HistoryReader::new(&text[..]).filter(Result::is_ok).count())
    });
    g.bench_function("check", |b| {
        b.iter(|| check_reader(&text[..], None).map(|v| v.valid))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
