//! Property tests on generated histories: valid ones are judged valid; one injected
//! anomaly is found with exactly the affected subjects and nothing else.
//!
//! "Nothing else" includes the consequences the spec demands: an injection that moves
//! money (lost, duplicated, phantom, amount-mismatch, ledger-mismatch) also makes the
//! final balances miss the initial total, so it expects that `wrong-total` too.
use checkers::compose::check_reader;
use checkers::synth::{inject, BankHistory, BankParams, Injection, Subject};
use checkers::verdict::{Validity, Verdict};
use proptest::prelude::*;

fn params() -> impl Strategy<Value = BankParams> {
    (
        any::<u64>(),
        20u64..400,
        1u32..12,
        1u32..5,
        0.0f64..0.9,
        0.0f64..0.2,
        0.0f64..0.2,
        0.0f64..0.1,
        1usize..8,
    )
        .prop_map(
            |(seed, ops, clients, accounts, reads, fail, info, crash, chunk)| BankParams {
                seed,
                ops,
                clients,
                accounts_per_bank: accounts,
                initial: 20,
                read_share: reads,
                fail_share: fail,
                info_share: info,
                crash_share: crash,
                partial_read_share: 0.2,
                ledger_chunk: chunk,
                nemesis_every: 17,
            },
        )
}

fn check_text(h: &BankHistory) -> Verdict {
    let mut text = String::new();
    for op in h.ops() {
        text.push_str(&serde_json::to_string(&op).expect("serializes"));
        text.push('\n');
    }
    check_reader(text.as_bytes(), None).expect("a usable history")
}

/// What each finding is about.
fn subjects(v: &Verdict, final_start: u64) -> Vec<(String, Subject)> {
    let mut out = Vec::new();
    for (name, list) in &v.anomalies {
        for f in list {
            let last = f.ops.iter().copied().max().unwrap_or(0);
            let s = if let Some(t) = &f.transfer {
                Subject::Transfer(t.as_str().map_or_else(|| t.to_string(), str::to_owned))
            } else if last >= final_start {
                match &f.account {
                    Some(a) => Subject::Account(a.clone()),
                    None => Subject::FinalTotal,
                }
            } else {
                Subject::Read(last)
            };
            out.push((name.clone(), s));
        }
    }
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn generated_histories_are_valid(p in params()) {
        let h = BankHistory::generate(&p);
        let v = check_text(&h);
        prop_assert!(v.anomalies.is_empty(), "{:?}", v.anomalies);
        prop_assert_eq!(v.valid, Validity::Valid, "{:?}", v.models);
    }

    #[test]
    fn one_injected_anomaly_is_found_exactly(p in params(), k in 0usize..Injection::ALL.len(), seed in any::<u64>()) {
        let kind = Injection::ALL[k];
        let mut h = BankHistory::generate(&p);
        let planted = inject(&mut h, kind, seed);
        // Nothing to plant it in (e.g. no read of every account): not a case of this
        // property, so proptest draws another instead of counting it as passed.
        prop_assume!(planted.is_some(), "no place to plant {:?}", kind);
        let mut expected = planted.expect("assumed above");
        expected.sort();
        let v = check_text(&h);
        prop_assert_eq!(subjects(&v, h.final_start()), expected, "{:?}: {:#?}", kind, v.anomalies);
        let want = match kind {
            Injection::Parked => Validity::Valid,
            Injection::InFlight => Validity::Unknown,
            _ => Validity::Invalid,
        };
        prop_assert_eq!(v.valid, want);
        // Each transfer finding names the transfer's invoke among its ops.
        for list in v.anomalies.values() {
            for f in list {
                prop_assert!(!f.sentence.is_empty());
                if let Some(t) = f.transfer.as_ref().and_then(|t| t.as_str()) {
                    if let Some(truth) = h.transfers.iter().find(|x| x.id == t) {
                        prop_assert!(f.ops.contains(&truth.invoke), "{:?}", f);
                    }
                }
            }
        }
    }
}
