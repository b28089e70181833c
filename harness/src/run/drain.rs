//! The drain stage: after healing, wait (bounded) until the system has finished what it
//! took, then write how the wait ended into the history.
//!
//! When to stop is [`Settle`], a rule over the backlogs seen and their times, without a
//! clock of its own (so it is unit-tested): an empty backlog has drained; a system seen
//! only through its ledgers (a service, [`System::settle_after`]) has settled once its
//! backlog stops changing for its quiet time — never while a connector's task is not
//! running ([`Backlog::stalled`]): what it holds is not settled; otherwise the wait
//! gives up at the drain timeout.

use anyhow::Result;
use checkers::history::OpType;
use std::time::{Duration, Instant};
use workloads::system::{Backlog, System};

use crate::recorder::Recorder;
use crate::run::judge::DrainEnd;

/// How often the backlog is read.
const POLL: Duration = Duration::from_millis(500);

/// How a drain wait ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Nothing left to do.
    Drained,
    /// The backlog did not change for this long (the settle rule).
    Settled(Duration),
    /// The drain timeout passed first.
    GaveUp,
}

/// The drain's stopping rule, fed each backlog read with its time since the drain began.
#[derive(Clone, Debug)]
pub struct Settle {
    quiet: Option<Duration>,
    timeout: Duration,
    last: Option<Backlog>,
    unchanged_since: Duration,
}

impl Settle {
    /// A rule that gives up after `timeout`, and settles after `quiet` without change
    /// when given one.
    pub fn new(quiet: Option<Duration>, timeout: Duration) -> Settle {
        Settle {
            quiet,
            timeout,
            last: None,
            unchanged_since: Duration::ZERO,
        }
    }

    /// Takes what was read at `at` (`None`: the read failed) and says whether the wait
    /// ends.
    pub fn observe(&mut self, at: Duration, read: Option<Backlog>) -> Option<Ending> {
        if let Some(b) = read {
            if b.is_empty() {
                self.last = Some(b);
                return Some(Ending::Drained);
            }
            // A stalled connector holds what it has not published: no quiet time runs.
            if self.last.as_ref() != Some(&b) || b.stalled > 0 {
                self.unchanged_since = at;
            }
            self.last = Some(b);
            if let Some(quiet) = self.quiet {
                if at.saturating_sub(self.unchanged_since) >= quiet {
                    return Some(Ending::Settled(quiet));
                }
            }
        }
        (at >= self.timeout).then_some(Ending::GaveUp)
    }

    /// The last backlog read.
    pub fn last(&self) -> Option<&Backlog> {
        self.last.as_ref()
    }
}

/// Waits for `sys` to drain, at most `timeout`, and records the outcome as the `drain`
/// op: transfers still in flight after a drain that gave up are not lost (the checker
/// calls them in-flight, the verdict unknown).
pub async fn drain(sys: &dyn System, timeout: Duration, recorder: &Recorder) -> Result<DrainEnd> {
    let start = Instant::now();
    let mut rule = Settle::new(sys.settle_after(), timeout);
    let ending = loop {
        let read = match sys.backlog().await {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::debug!("backlog: {e:#}");
                None
            }
        };
        if let Some(ending) = rule.observe(start.elapsed(), read) {
            break ending;
        }
        tokio::time::sleep(POLL).await;
    };
    let end = DrainEnd {
        drained: ending != Ending::GaveUp,
        waited: start.elapsed(),
        settled: match ending {
            Ending::Settled(quiet) => Some(quiet),
            _ => None,
        },
        backlog: rule.last().cloned(),
        connectors_failed: Vec::new(),
    };
    tracing::info!(
        "drain: {} after {:.1?}{}",
        match ending {
            Ending::Settled(_) => "settled (the ledgers stopped changing)",
            Ending::Drained => "done",
            Ending::GaveUp => "gave up",
        },
        end.waited,
        end.backlog
            .as_ref()
            .map(|b| format!(" ({b})"))
            .unwrap_or_default()
    );
    recorder.named("final", OpType::Ok, "drain", &drain_value(&end), None)?;
    Ok(end)
}

/// The `drain` op's value (checkers/README.md): whether it drained, how long it waited,
/// what was left, and the settle rule's quiet time when it ended by it (what is
/// uncredited then counts as lost).
pub fn drain_value(end: &DrainEnd) -> serde_json::Value {
    let mut v = serde_json::json!({
        "drained": end.drained,
        "waited_s": end.waited.as_secs_f64(),
        "backlog": end.backlog,
    });
    if let Some(quiet) = end.settled {
        v["settled_after_s"] = quiet.as_secs_f64().into();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lag(n: i64) -> Option<Backlog> {
        Some(Backlog {
            lag: n,
            ..Backlog::default()
        })
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn an_empty_backlog_has_drained() {
        let mut rule = Settle::new(None, s(10));
        assert_eq!(rule.observe(s(0), lag(3)), None);
        assert_eq!(rule.observe(s(1), None), None);
        assert_eq!(rule.observe(s(2), lag(0)), Some(Ending::Drained));
        assert_eq!(rule.last(), lag(0).as_ref());
    }

    #[test]
    fn without_a_quiet_time_the_wait_gives_up_at_the_timeout() {
        let mut rule = Settle::new(None, s(10));
        for t in 0..10 {
            assert_eq!(rule.observe(s(t), lag(3)), None, "at {t} s");
        }
        assert_eq!(rule.observe(s(10), lag(3)), Some(Ending::GaveUp));
        // Failed reads give up too, keeping the last backlog read.
        let mut rule = Settle::new(None, s(10));
        assert_eq!(rule.observe(s(1), lag(2)), None);
        assert_eq!(rule.observe(s(11), None), Some(Ending::GaveUp));
        assert_eq!(rule.last(), lag(2).as_ref());
    }

    #[test]
    fn a_backlog_unchanged_for_the_quiet_time_has_settled() {
        let mut rule = Settle::new(Some(s(5)), s(60));
        assert_eq!(rule.observe(s(0), lag(3)), None);
        assert_eq!(rule.observe(s(4), lag(3)), None);
        // A change restarts the quiet time.
        assert_eq!(rule.observe(s(6), lag(2)), None);
        assert_eq!(rule.observe(s(10), lag(2)), None);
        // A failed read neither restarts nor ends it.
        assert_eq!(rule.observe(s(10), None), None);
        assert_eq!(rule.observe(s(11), lag(2)), Some(Ending::Settled(s(5))));
    }

    #[test]
    fn a_stalled_connector_never_settles() {
        let stalled = |n: i64| {
            Some(Backlog {
                uncredited: 3,
                stalled: n,
                ..Backlog::default()
            })
        };
        let mut rule = Settle::new(Some(s(5)), s(60));
        for t in 0..60 {
            assert_eq!(rule.observe(s(t), stalled(1)), None, "at {t} s");
        }
        assert_eq!(rule.observe(s(60), stalled(1)), Some(Ending::GaveUp));
        // Running again, the quiet time starts.
        let mut rule = Settle::new(Some(s(5)), s(60));
        assert_eq!(rule.observe(s(0), stalled(1)), None);
        assert_eq!(rule.observe(s(1), stalled(0)), None);
        assert_eq!(rule.observe(s(5), stalled(0)), None);
        assert_eq!(rule.observe(s(6), stalled(0)), Some(Ending::Settled(s(5))));
    }

    #[test]
    fn the_drain_op_says_how_it_ended() {
        let end = DrainEnd {
            drained: true,
            waited: Duration::from_millis(1500),
            settled: Some(s(5)),
            backlog: Some(Backlog {
                uncredited: 2,
                ..Backlog::default()
            }),
            ..DrainEnd::default()
        };
        let v = drain_value(&end);
        assert_eq!(v["drained"], true);
        assert_eq!(v["waited_s"], 1.5);
        assert_eq!(v["settled_after_s"], 5.0);
        assert_eq!(v["backlog"]["uncredited"], 2);
        let gave_up = drain_value(&DrainEnd::default());
        assert_eq!(gave_up["drained"], false);
        assert!(gave_up.get("settled_after_s").is_none());
        assert!(gave_up["backlog"].is_null());
    }
}
