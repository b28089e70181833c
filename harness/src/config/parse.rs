//! The parsers of the run settings' values, as [`crate::RunConfig`]'s command-line
//! flags use them (`value_parser`): free functions from the text a person typed to a
//! value or an error naming what is wrong, never a panic.

use anyhow::bail;
use std::time::Duration;
use workloads::system::SystemKind;

use crate::schedule::FaultKind;

/// Parses `90`, `90s`, `1500ms`, `2m`: the one duration parser ([`crate::parse::duration`],
/// bounded, checked arithmetic).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::parse::duration(s)
}

/// Parses a share between 0 and 1 (`0.01`).
pub fn parse_share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a share between 0 and 1 (e.g. 0.01)")),
    }
}

/// Parses a system name (`outbox`).
pub fn parse_system(s: &str) -> Result<SystemKind, String> {
    SystemKind::parse(s).ok_or_else(|| format!("unknown system {s:?} ({})", SystemKind::names()))
}

/// Parses the number of accounts in each bank: 1 to 100 000.
pub fn parse_accounts(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=100_000).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?} is not a number of accounts from 1 to 100000"
        )),
    }
}

/// The lowest offered load a run takes, ops/s over all clients: one op in 1000 s.
pub const RATE_MIN: f64 = 0.001;

/// Parses the offered load in ops/s: at least [`RATE_MIN`], or `0` for as fast as the
/// system answers (`None`).
pub fn parse_rate(s: &str) -> Result<Option<f64>, String> {
    match s.trim().parse::<f64>() {
        Ok(0.0) => Ok(None),
        Ok(r) if r.is_finite() && r >= RATE_MIN => Ok(Some(r)),
        _ => Err(format!(
            "{s:?} is not an offered load in ops/s (at least {RATE_MIN}, or 0 for as fast as answered)"
        )),
    }
}

/// Parses a comma-separated list of node names (`postgres,relay`), blanks dropped.
pub fn parse_targets(s: &str) -> Result<Vec<String>, String> {
    Ok(s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect())
}

/// Maps the CLI's nemesis names to fault kinds: `kill`, `pause`, `partition` (a node
/// isolated from everyone, the host included), `loss`, `latency` (= `delay`), plus the
/// schedule's own names (`isolate`, `halves`, `cut`), `clock` (the wall clock of the
/// scheme's or the service's own containers moved), and `slot-loss` (bank A's
/// replication slot dropped, for systems read by Debezium); `none` for no faults.
pub fn parse_nemesis(list: &str) -> anyhow::Result<Vec<FaultKind>> {
    let mut kinds = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match name {
            "none" => {}
            "partition" => kinds.push(FaultKind::Isolate),
            "latency" => kinds.push(FaultKind::Delay),
            other => match FaultKind::parse(other) {
                Some(k) => kinds.push(k),
                None => bail!("unknown nemesis {other:?} (kill, pause, partition, loss, latency, clock, crash-after, cut-before, slot-loss, isolate, halves, cut, delay, none)"),
            },
        }
    }
    Ok(kinds)
}

/// The mean quiet time between faults that gives `rate` faults per minute with holds of
/// `hold`, or why no such time exists.
pub fn interval_for_rate(rate: f64, hold: Duration) -> anyhow::Result<Duration> {
    if !(rate.is_finite() && rate > 0.0) {
        bail!("--fault-rate {rate:?} is not a positive number of faults per minute");
    }
    let cycle = 60.0 / rate;
    let most = 60.0 / hold.as_secs_f64().max(1e-3);
    if cycle <= hold.as_secs_f64() {
        bail!(
            "--fault-rate {rate}/min does not fit holds of {hold:?}: at most {most:.1} faults a minute (lower --fault-hold; --overlap adds faults beside these)"
        );
    }
    match Duration::try_from_secs_f64(cycle - hold.as_secs_f64()) {
        Ok(d) => Ok(d),
        Err(_) => bail!("--fault-rate {rate:?}/min is too low: less than one fault in any run"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("1h").is_err());
        assert!(parse_duration("99999999999999999999m").is_err());
        assert!(parse_duration(&format!("{}m", u64::MAX)).is_err());
    }

    #[test]
    fn a_fault_rate_is_an_interval_and_is_bounded_by_the_hold() {
        let hold = Duration::from_secs(5);
        // 6 a minute: a 10 s cycle, 5 s of it held.
        assert_eq!(
            interval_for_rate(6.0, hold).unwrap(),
            Duration::from_secs(5)
        );
        let e = interval_for_rate(12.0, hold).unwrap_err().to_string();
        assert!(e.contains("at most 12.0 faults a minute"), "{e}");
        assert!(interval_for_rate(0.0, hold).is_err());
        assert!(interval_for_rate(f64::NAN, hold).is_err());
        assert!(interval_for_rate(1e-300, hold).is_err());
    }

    #[test]
    fn nemesis_names() {
        assert_eq!(
            parse_nemesis("kill,partition").unwrap(),
            vec![FaultKind::Kill, FaultKind::Isolate]
        );
        assert!(parse_nemesis("none").unwrap().is_empty());
        assert!(parse_nemesis("flood").is_err());
    }

    #[test]
    fn rates_accounts_shares_and_targets() {
        assert_eq!(parse_rate("0"), Ok(None));
        assert_eq!(parse_rate("250"), Ok(Some(250.0)));
        assert!(parse_rate("-1").is_err() && parse_rate("inf").is_err());
        assert!(parse_rate("1e-300").is_err());
        assert_eq!(parse_accounts("5"), Ok(5));
        assert!(parse_accounts("0").is_err() && parse_accounts("100001").is_err());
        assert_eq!(parse_share("0.01"), Ok(0.01));
        assert!(parse_share("1.5").is_err() && parse_share("NaN").is_err());
        assert_eq!(
            parse_targets(" postgres, ,relay,").unwrap(),
            vec!["postgres".to_string(), "relay".to_string()]
        );
    }
}
