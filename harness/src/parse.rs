//! The values a user types, parsed once for every command and for the service
//! manifest: durations, rates, shares, seeds and node lists. Each parser returns the
//! value or an error naming what is wrong and the bound it broke; none panics, whatever
//! the input (a property test feeds them arbitrary strings). clap prefixes the error
//! with the flag (`invalid value '1e-300' for '--rate <OPS_PER_S>': …`).

use std::time::Duration;

/// The longest duration taken anywhere (a run's time limit, a drain timeout, a
/// manifest's `settle`): one day.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// The shortest mean fault interval or hold taken: shorter ones would draw a schedule of
/// millions of steps, and no engine reacts within it anyway.
pub const MIN_FAULT_TIME: Duration = Duration::from_millis(100);

/// The highest offered load taken, ops/s over all clients.
pub const MAX_RATE: f64 = 1_000_000.0;

/// The lowest offered load taken, ops/s (below it a client would wait hours between
/// ops; 0 means unpaced and is taken).
pub const MIN_RATE: f64 = 0.01;

/// The fewest faults a minute `--fault-rate` takes (one every 100 minutes).
pub const MIN_FAULT_RATE: f64 = 0.01;

/// The most seeds a list (`--seeds`) may name, ranges included.
pub const MAX_SEEDS: usize = 100_000;

/// The most concurrent clients a run takes.
pub const MAX_CONCURRENCY: usize = 10_000;

/// The most names a node list (`--targets`) may hold.
pub const MAX_NAMES: usize = 64;

/// Parses `90`, `90s`, `1500ms`, `2m` (a bare number is seconds), at most
/// [`MAX_DURATION`].
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        _ => return Err(format!("not a duration: {s:?} (use ms, s or m, e.g. 90s)")),
    };
    let too_long = || {
        format!(
            "{s:?} is longer than the longest duration taken, {}m (a day)",
            MAX_DURATION.as_secs() / 60
        )
    };
    if num.is_empty() {
        return Err(format!("not a duration: {s:?} (a number first, e.g. 90s)"));
    }
    // Digits only: a parse error is an overflow.
    let n: u64 = num.parse().map_err(|_| too_long())?;
    let ms = n.checked_mul(unit_ms).ok_or_else(too_long)?;
    let d = Duration::from_millis(ms);
    if d > MAX_DURATION {
        return Err(too_long());
    }
    Ok(d)
}

/// [`duration`], at least [`MIN_FAULT_TIME`]: for the mean fault interval and hold.
pub fn fault_time(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d < MIN_FAULT_TIME {
        return Err(format!(
            "{s:?} is shorter than the shortest fault interval or hold taken, {}ms",
            MIN_FAULT_TIME.as_millis()
        ));
    }
    Ok(d)
}

fn number(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not a number")),
    }
}

/// Parses a share between 0 and 1 (`0.01`).
pub fn share(s: &str) -> Result<f64, String> {
    match number(s) {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a share between 0 and 1 (e.g. 0.01)")),
    }
}

/// Parses an offered load in ops/s: 0 (as fast as the system answers), or between
/// [`MIN_RATE`] and [`MAX_RATE`].
pub fn rate(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    check_rate(v).map(|_| v)
}

/// Whether `rate` ops/s is an offered load chaosbank takes (see [`rate`]); `Ok(None)`
/// for 0, unpaced.
pub fn check_rate(rate: f64) -> Result<Option<f64>, String> {
    if rate == 0.0 {
        return Ok(None);
    }
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return Err(format!(
            "{rate} ops/s is outside {MIN_RATE}–{MAX_RATE} ops/s (0: as fast as the system answers)"
        ));
    }
    Ok(Some(rate))
}

/// Parses a number of faults a minute (`--fault-rate`): between [`MIN_FAULT_RATE`] and
/// one every [`MIN_FAULT_TIME`].
pub fn fault_rate(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    let most = 60.0 / MIN_FAULT_TIME.as_secs_f64();
    if !(MIN_FAULT_RATE..=most).contains(&v) {
        return Err(format!(
            "{s:?} is outside {MIN_FAULT_RATE}–{most} faults a minute"
        ));
    }
    Ok(v)
}

/// The mean quiet time between faults that gives `rate` faults per minute with holds of
/// `hold`, or why no such time exists (the rate is not positive, or the holds leave no
/// quiet time).
pub fn interval_for_rate(rate: f64, hold: Duration) -> Result<Duration, String> {
    if !(rate.is_finite() && rate >= MIN_FAULT_RATE) {
        return Err(format!(
            "--fault-rate {rate} is not a number of faults per minute of at least {MIN_FAULT_RATE}"
        ));
    }
    let cycle = 60.0 / rate;
    let hold_s = hold.as_secs_f64();
    let most = 60.0 / hold_s.max(1e-3);
    if cycle <= hold_s {
        return Err(format!(
            "--fault-rate {rate}/min does not fit holds of {hold:?}: at most {most:.1} faults a minute (lower --fault-hold; --overlap adds faults beside these)"
        ));
    }
    Duration::try_from_secs_f64(cycle - hold_s)
        .map_err(|_| format!("--fault-rate {rate}/min gives no usable interval"))
}

/// Parses a number of concurrent clients, 1 to [`MAX_CONCURRENCY`].
pub fn concurrency(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_CONCURRENCY).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?} is not a number of clients from 1 to {MAX_CONCURRENCY}"
        )),
    }
}

/// Parses seeds: `7`, `1,5,9`, `1..20` (inclusive; `1..=20` too), or a mix such as
/// `1..5,9`; at most [`MAX_SEEDS`] in all.
pub fn seeds(s: &str) -> Result<Vec<u64>, String> {
    let one = |x: &str, part: &str| {
        x.trim()
            .parse::<u64>()
            .map_err(|_| format!("not a seed: {x:?} in {part:?} (seeds are 0–{})", u64::MAX))
    };
    let mut seeds = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once("..") {
            Some((a, b)) => {
                let b = b.strip_prefix('=').unwrap_or(b);
                (one(a, part)?, one(b, part)?)
            }
            None => {
                let n = part
                    .parse::<u64>()
                    .map_err(|_| format!("not a seed: {part:?} (use 7, 1,5,9 or 1..20)"))?;
                (n, n)
            }
        };
        if a > b {
            return Err(format!(
                "empty seed range {part:?} (write the smaller seed first)"
            ));
        }
        let len = usize::try_from(b - a)
            .ok()
            .and_then(|n| n.checked_add(1))
            .filter(|n| seeds.len().saturating_add(*n) <= MAX_SEEDS)
            .ok_or_else(|| format!("too many seeds in {s:?} (at most {MAX_SEEDS})"))?;
        seeds.reserve(len);
        seeds.extend(a..=b);
    }
    if seeds.is_empty() {
        return Err("no seeds given (use 7, 1,5,9 or 1..20)".to_string());
    }
    Ok(seeds)
}

/// Parses a comma-separated list of node names (`--targets`): each 1–40 lower-case
/// letters, digits and `-`, at most [`MAX_NAMES`]; duplicates are dropped. Whether a
/// name is a node chaosbank knows is checked when the run's nodes are known
/// ([`crate::faults::targets`]).
pub fn names(s: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name.len() > 40
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            let shown: String = name.chars().take(40).collect();
            return Err(format!(
                "{shown:?} is not a node name (1–40 lower-case letters, digits and '-')"
            ));
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
        if out.len() > MAX_NAMES {
            return Err(format!("more than {MAX_NAMES} node names"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_refuse_overflow_and_the_unbounded() {
        assert_eq!(duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("1440m"), Ok(MAX_DURATION));
        for bad in ["1h", "", "s", "-1s", "1.5s", "1 m m"] {
            assert!(duration(bad).is_err(), "{bad:?} parsed");
        }
        for huge in [
            "99999999999999999m",
            "1441m",
            "18446744073709551615s",
            "99999999999999999999999",
        ] {
            let e = duration(huge).unwrap_err();
            assert!(e.contains("longest duration taken, 1440m"), "{huge}: {e}");
        }
        assert!(fault_time("50ms").unwrap_err().contains("100ms"));
        assert_eq!(fault_time("100ms"), Ok(MIN_FAULT_TIME));
    }

    #[test]
    fn rates_are_bounded_and_zero_means_unpaced() {
        assert_eq!(rate("0"), Ok(0.0));
        assert_eq!(check_rate(0.0), Ok(None));
        assert_eq!(rate("250"), Ok(250.0));
        for bad in ["1e-300", "-1", "NaN", "inf", "1e300", "x", ""] {
            assert!(rate(bad).is_err(), "{bad:?} parsed");
        }
        assert!(rate("1e-300").unwrap_err().contains("0.01"));
        assert_eq!(fault_rate("6"), Ok(6.0));
        for bad in ["1e-300", "0", "-3", "NaN", "601"] {
            assert!(fault_rate(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn a_fault_rate_is_an_interval_and_is_bounded_by_the_hold() {
        let hold = Duration::from_secs(5);
        // 6 a minute: a 10 s cycle, 5 s of it held.
        assert_eq!(interval_for_rate(6.0, hold), Ok(Duration::from_secs(5)));
        let e = interval_for_rate(12.0, hold).unwrap_err();
        assert!(e.contains("at most 12.0 faults a minute"), "{e}");
        for bad in [0.0, 1e-300, f64::NAN, -1.0, f64::INFINITY] {
            assert!(interval_for_rate(bad, hold).is_err(), "{bad}");
        }
    }

    #[test]
    fn seed_lists_are_bounded_in_all() {
        assert_eq!(seeds("7").unwrap(), vec![7]);
        assert_eq!(seeds("1,5,9").unwrap(), vec![1, 5, 9]);
        assert_eq!(seeds("1..4").unwrap(), vec![1, 2, 3, 4]);
        assert_eq!(seeds("1..=2, 10").unwrap(), vec![1, 2, 10]);
        assert_eq!(seeds(&format!("{}", u64::MAX)).unwrap(), vec![u64::MAX]);
        for bad in [
            "",
            "x",
            "3..1",
            "1..y",
            "-1",
            "0..1000000",
            "0..18446744073709551615",
        ] {
            assert!(seeds(bad).is_err(), "{bad:?} parsed");
        }
        // Each range short, together too many.
        let e = seeds("1..60000,100000..160000").unwrap_err();
        assert!(e.contains("at most 100000"), "{e}");
    }

    #[test]
    fn node_names_are_checked_and_deduplicated() {
        assert_eq!(
            names(" postgres,kafka,,postgres ").unwrap(),
            vec!["postgres", "kafka"]
        );
        assert_eq!(names("").unwrap(), Vec::<String>::new());
        for bad in ["Postgres", "a b", "x;rm", &"a".repeat(41)] {
            assert!(names(bad).is_err(), "{bad:?} parsed");
        }
        let many: Vec<String> = (0..65).map(|i| format!("n{i}")).collect();
        assert!(names(&many.join(",")).is_err());
    }
}
