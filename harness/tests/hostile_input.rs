//! Whatever a user types or a service sends, chaosbank answers with a value or a clear
//! error, never a panic: the CLI's parsers (durations, rates, shares, seeds, targets) and
//! the transfer API's answer reader fed arbitrary input. The fuzz target in `fuzz/`
//! drives the same reader ([`workloads::service::http::parse_answer`]).

use chaosbank::parse;
use proptest::prelude::*;
use workloads::service::http::{parse_answer, MAX_BODY};

/// Strings that look like what the parsers take, and their neighbours.
fn numberish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,25}(ms|s|m|h|)",
        "-?[0-9]{0,6}(\\.[0-9]{0,6})?(e-?[0-9]{1,3})?",
        "[0-9]{0,20}(\\.\\.=?)?[0-9]{0,20}(,[0-9]{0,20}(\\.\\.[0-9]{0,20})?){0,3}",
        "[a-z,\\- ]{0,60}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_cli_parsers_answer_every_string(s in numberish()) {
        // A value within its bounds, or an error that says something.
        match parse::duration(&s) {
            Ok(d) => prop_assert!(d <= parse::MAX_DURATION),
            Err(e) => prop_assert!(!e.is_empty()),
        }
        match parse::fault_time(&s) {
            Ok(d) => prop_assert!(d >= parse::MIN_FAULT_TIME && d <= parse::MAX_DURATION),
            Err(e) => prop_assert!(!e.is_empty()),
        }
        match parse::rate(&s) {
            Ok(r) => prop_assert!(r == 0.0 || (parse::MIN_RATE..=parse::MAX_RATE).contains(&r)),
            Err(e) => prop_assert!(!e.is_empty()),
        }
        match parse::fault_rate(&s) {
            Ok(r) => {
                prop_assert!(r >= parse::MIN_FAULT_RATE);
                // Every rate taken gives an interval or says why not, for any hold.
                for hold in [parse::MIN_FAULT_TIME, parse::MAX_DURATION] {
                    let _ = parse::interval_for_rate(r, hold);
                }
            }
            Err(e) => prop_assert!(!e.is_empty()),
        }
        match parse::share(&s) {
            Ok(v) => prop_assert!((0.0..=1.0).contains(&v)),
            Err(e) => prop_assert!(!e.is_empty()),
        }
        match parse::seeds(&s) {
            Ok(seeds) => prop_assert!(!seeds.is_empty() && seeds.len() <= parse::MAX_SEEDS),
            Err(e) => prop_assert!(!e.is_empty()),
        }
        match parse::names(&s) {
            Ok(names) => prop_assert!(names.len() <= parse::MAX_NAMES),
            Err(e) => prop_assert!(!e.is_empty()),
        }
        match parse::concurrency(&s) {
            Ok(n) => prop_assert!((1..=parse::MAX_CONCURRENCY).contains(&n)),
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn a_fault_rate_and_any_hold_give_an_interval_or_an_error(rate in any::<f64>(), ms in any::<u64>()) {
        let _ = parse::interval_for_rate(rate, std::time::Duration::from_millis(ms));
    }

    #[test]
    fn the_answer_reader_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        if let Ok(a) = parse_answer(&bytes) {
            prop_assert!(a.body.len() <= MAX_BODY);
        }
    }

    #[test]
    fn the_answer_reader_takes_any_headers_and_chunks(
        status in "[0-9]{0,5}",
        headers in prop::collection::vec(("[A-Za-z-]{0,20}", "[ -~]{0,40}"), 0..8),
        chunks in prop::collection::vec(("[0-9a-fA-FxX;]{0,20}", "[ -~]{0,40}"), 0..6),
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        // Shaped like an answer, so the reader gets past the status line and headers.
        let mut text = format!("HTTP/1.1 {status} X\r\n");
        for (k, v) in &headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        text.push_str("Transfer-Encoding: chunked\r\n\r\n");
        for (size, data) in &chunks {
            text.push_str(&format!("{size}\r\n{data}\r\n"));
        }
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&tail);
        if let Ok(a) = parse_answer(&bytes) {
            prop_assert!(a.body.len() <= MAX_BODY);
        }
    }
}
