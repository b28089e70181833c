//! The clock fault, inside a node container: the wall clock of every process in it is
//! moved by libfaketime (Debian's `faketime`, preloaded with `LD_PRELOAD`), which reads
//! its offset from [`CLOCK_FILE`] and rereads it every second. Monotonic clocks are left
//! alone (`FAKETIME_DONT_FAKE_MONOTONIC=1`): timers and timeouts keep their length, and
//! only what reads the time of day — timestamps, ages, expiries compared across
//! processes, RocketMQ's check-back timing — sees the jump.
//!
//! The node images (`docker/node`, `docker/runtime-*`) install the library at
//! [`FAKETIME_LIB`] and the file with `+0`; the harness sets [`env`] on a node container
//! only when the run's nemesis has clock faults, so other runs load nothing.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

/// Where the node images put libfaketime (a link to Debian's copy).
pub const FAKETIME_LIB: &str = "/usr/local/lib/chaosbank/libfaketime.so.1";

/// The file libfaketime reads the offset from: `+0`, `+120`, `-600` (seconds).
pub const CLOCK_FILE: &str = "/var/lib/chaosbank/clock";

/// The environment that puts a node container's processes under libfaketime.
pub fn env() -> Vec<(&'static str, String)> {
    vec![
        ("LD_PRELOAD", FAKETIME_LIB.to_string()),
        ("FAKETIME_TIMESTAMP_FILE", CLOCK_FILE.to_string()),
        ("FAKETIME_CACHE_DURATION", "1".to_string()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_string()),
    ]
}

/// Moves this container's wall clock `offset_s` seconds from the real time (0 puts it
/// back). Fails when this process was not started under libfaketime.
pub fn set(offset_s: i64) -> Result<()> {
    let preloaded = std::env::var("LD_PRELOAD").unwrap_or_default();
    if !preloaded.contains("faketime") {
        bail!(
            "this node's clock cannot be moved: it was started without libfaketime (LD_PRELOAD={preloaded:?})"
        );
    }
    // Written whole, then renamed: libfaketime never reads half an offset.
    let tmp = format!("{CLOCK_FILE}.tmp");
    std::fs::write(&tmp, format!("{offset_s:+}\n")).with_context(|| format!("writing {tmp}"))?;
    std::fs::rename(&tmp, CLOCK_FILE).with_context(|| format!("replacing {CLOCK_FILE}"))?;
    tracing::info!("wall clock moved {offset_s:+} s");
    Ok(())
}

/// This process's wall clock, in milliseconds since the Unix epoch (as it reads it,
/// moved or not).
pub fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_names_the_library_and_the_file() {
        let env = env();
        assert!(env.contains(&("LD_PRELOAD", FAKETIME_LIB.to_string())));
        assert!(env.contains(&("FAKETIME_TIMESTAMP_FILE", CLOCK_FILE.to_string())));
        assert!(env.contains(&("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_string())));
    }

    #[test]
    fn a_process_without_libfaketime_refuses_to_move_its_clock() {
        if std::env::var("LD_PRELOAD").is_ok_and(|p| p.contains("faketime")) {
            return; // run under faketime on purpose: nothing to refuse
        }
        let e = set(60).unwrap_err().to_string();
        assert!(e.contains("without libfaketime"), "{e}");
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_ms() > 1_577_836_800_000);
    }
}
