//! The transfer API's answer reader fed whatever bytes a service might send: it must
//! return an answer or an error, never panic, and never hold more than its bounds
//! (the same function `harness/tests/hostile_input.rs` drives with proptest).

#![no_main]

use libfuzzer_sys::fuzz_target;
use workloads::service::http::{parse_answer, MAX_BODY};

fuzz_target!(|data: &[u8]| {
    if let Ok(answer) = parse_answer(data) {
        assert!(answer.body.len() <= MAX_BODY);
    }
});
