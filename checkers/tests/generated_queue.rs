//! Property tests of the total-queue checker on generated histories: many clients,
//! interleaved, enqueues that end `info` or never return, a final drain. Valid ones
//! are valid (with exactly the expected `recovered` elements); one injected anomaly is
//! found with exactly the affected element.
use checkers::compose::{check_reader, Model};
use checkers::synth::SplitMix;
use checkers::verdict::{Validity, Verdict};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::{BTreeSet, VecDeque};

struct Gen {
    lines: Vec<Value>,
    /// Elements whose enqueue was not acknowledged but which were dequeued.
    recovered: BTreeSet<u64>,
    /// Acknowledged elements, with the line that dequeued them.
    acked_dequeued: Vec<(u64, usize)>,
    /// Line of the final drain.
    drain: usize,
}

fn generate(seed: u64, steps: usize, clients: u64) -> Gen {
    let mut rng = SplitMix::new(seed);
    let mut lines = Vec::new();
    let mut queue: VecDeque<u64> = VecDeque::new();
    let mut next = 0u64;
    let mut procs: Vec<u64> = (0..clients).collect();
    let mut fresh = clients;
    let mut acked = BTreeSet::new();
    let mut dequeued_at: Vec<(u64, usize)> = Vec::new();
    let op =
        |p: u64, t: &str, f: &str, v: Value| json!({"process": p, "type": t, "f": f, "value": v});
    for _ in 0..steps {
        let slot = rng.below(clients) as usize;
        let p = procs[slot];
        if rng.chance(0.55) {
            let e = next;
            next += 1;
            lines.push(op(p, "invoke", "enqueue", json!(e)));
            let r = rng.below(100);
            let applied = r >= 10 || rng.chance(0.5);
            if applied {
                queue.push_back(e);
            }
            match r {
                0..=4 => {
                    // crashes: never returns
                    procs[slot] = fresh;
                    fresh += 1;
                }
                5..=9 => {
                    lines.push(op(p, "info", "enqueue", json!(e)));
                    procs[slot] = fresh;
                    fresh += 1;
                }
                _ => {
                    acked.insert(e);
                    lines.push(op(p, "ok", "enqueue", json!(e)));
                }
            }
        } else {
            lines.push(op(p, "invoke", "dequeue", Value::Null));
            if rng.chance(0.05) {
                lines.push(op(p, "fail", "dequeue", Value::Null));
            } else {
                let v = queue.pop_front();
                if let Some(e) = v {
                    dequeued_at.push((e, lines.len()));
                }
                lines.push(op(p, "ok", "dequeue", json!(v)));
            }
        }
    }
    let p = fresh;
    lines.push(op(p, "invoke", "drain", Value::Null));
    let rest: Vec<u64> = queue.drain(..).collect();
    let drain = lines.len();
    for e in &rest {
        dequeued_at.push((*e, drain));
    }
    lines.push(op(p, "ok", "drain", json!(rest)));
    let recovered = dequeued_at
        .iter()
        .map(|(e, _)| *e)
        .filter(|e| !acked.contains(e))
        .collect();
    let acked_dequeued = dequeued_at
        .into_iter()
        .filter(|(e, _)| acked.contains(e))
        .collect();
    Gen {
        lines,
        recovered,
        acked_dequeued,
        drain,
    }
}

fn check(lines: &[Value]) -> Verdict {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    check_reader(text.as_bytes(), Some(Model::Queue)).expect("usable")
}

fn elements(v: &Verdict, name: &str) -> Vec<Value> {
    v.anomalies
        .get(name)
        .map(|l| l.iter().filter_map(|f| f.element.clone()).collect())
        .unwrap_or_default()
}

/// Removes `e` from the dequeue or drain at `line`.
fn undequeue(lines: &mut [Value], line: usize, e: u64) {
    let v = &mut lines[line]["value"];
    if let Some(list) = v.as_array_mut() {
        list.retain(|x| *x != json!(e));
    } else {
        *v = Value::Null;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn generated_queue_histories_are_valid(seed in any::<u64>(), steps in 0usize..300, clients in 1u64..10) {
        let g = generate(seed, steps, clients);
        let v = check(&g.lines);
        prop_assert_eq!(v.valid, Validity::Valid);
        let names: Vec<&String> = v.anomalies.keys().collect();
        prop_assert!(names.iter().all(|n| *n == "recovered"), "{:?}", names);
        let recovered: BTreeSet<u64> = elements(&v, "recovered").iter().filter_map(Value::as_u64).collect();
        prop_assert_eq!(recovered, g.recovered);
    }

    #[test]
    fn one_injected_queue_anomaly_is_found_exactly(seed in any::<u64>(), steps in 1usize..300, clients in 1u64..10, kind in 0usize..3) {
        let mut g = generate(seed, steps, clients);
        let mut rng = SplitMix::new(seed ^ 0x5eed);
        // A lost or duplicated element needs an acknowledged, dequeued one to be made
        // from: without one the case is drawn again, not counted as passed.
        prop_assume!(kind == 1 || !g.acked_dequeued.is_empty(), "nothing acknowledged and dequeued");
        let (name, element) = match kind {
            0 => {
                let (e, line) = g.acked_dequeued[rng.below(g.acked_dequeued.len() as u64) as usize];
                undequeue(&mut g.lines, line, e);
                ("lost", e)
            }
            1 => {
                g.lines[g.drain]["value"].as_array_mut().expect("a list").push(json!(1_000_000));
                ("unexpected", 1_000_000)
            }
            _ => {
                let (e, _) = g.acked_dequeued[rng.below(g.acked_dequeued.len() as u64) as usize];
                g.lines[g.drain]["value"].as_array_mut().expect("a list").push(json!(e));
                ("duplicated", e)
            }
        };
        let v = check(&g.lines);
        let mut found: Vec<(String, Value)> = Vec::new();
        for (n, list) in &v.anomalies {
            if n != "recovered" {
                for f in list {
                    found.push((n.clone(), f.element.clone().unwrap_or(Value::Null)));
                }
            }
        }
        prop_assert_eq!(found, vec![(name.to_owned(), json!(element))]);
        let want = if name == "duplicated" { Validity::Valid } else { Validity::Invalid };
        prop_assert_eq!(v.valid, want);
        let recovered: BTreeSet<u64> = elements(&v, "recovered").iter().filter_map(Value::as_u64).collect();
        prop_assert_eq!(recovered, g.recovered);
    }
}
