//! Any bytes through the reader and the whole check: errors are fine, panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The reader alone, to the end.
    let mut reader = checkers::HistoryReader::new(data);
    for op in &mut reader {
        if op.is_err() {
            break;
        }
    }
    let _ = reader.warnings();
    // The whole check, with the models detected and with each named, and the summary.
    for model in [None, Some(checkers::Model::Bank), Some(checkers::Model::Queue)] {
        if let Ok(verdict) = checkers::check_reader(data, model) {
            let _ = checkers::render::summary(&verdict, 3);
            let _ = serde_json::to_string(&verdict);
        }
    }
});
