//! Faults aimed at one reply: a node's [`Tap`] counts the replies its forwarders carry
//! from each engine (recognised by [`super::boundary`]) and, once armed with an [`Aim`],
//! acts on the N-th matching one: [`Action::Crash`] lets the reply through and then ends
//! the process at once (it dies having learnt the outcome, before acting on it);
//! [`Action::Cut`] withholds the reply and resets the connection (the engine did the
//! work; the process can never know whether it did).
//!
//! The harness arms a node through its control port ([`super::Request::Arm`]), asks what
//! fired ([`super::Request::Fired`]) and what replies it has seen
//! ([`super::Request::Replies`]), so a schedule can aim at the replies a process really
//! gets without knowing the process's code.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

pub use super::boundary::Reply;

/// The exit code of a node that an aimed crash ended (`chaosbank node`, seen by Docker).
pub const CRASH_EXIT_CODE: i32 = 86;

/// What an aimed fault does at its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Deliver the reply, then kill the process (no cleanup, no flush).
    Crash,
    /// Withhold the reply and reset the process's connection to the engine.
    Cut,
}

/// Which reply to act on: the `nth` (from 1) reply of kind `reply` from `engine` carried
/// after arming (`None` matches any). A `paired` aim counts the process's replies in
/// pairs: it acts on the first matching reply from the `nth` on whose number since the
/// process started is odd for an odd `nth`, even for an even one — so of a process that
/// commits twice a unit of work (a credit, then its dedup row), an odd `nth` hits the
/// first commit and an even one the second, however busy it is when armed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aim {
    /// Crash after it, or cut before it.
    pub action: Action,
    /// The engine's node name (`postgres`, `kafka`, …), or any.
    #[serde(default)]
    pub engine: Option<String>,
    /// The reply's kind, or any.
    #[serde(default)]
    pub reply: Option<Reply>,
    /// Which matching reply, from 1.
    pub nth: u32,
    /// Counted in pairs: the reply's number since the process started has `nth`'s parity.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paired: bool,
}

impl fmt::Display for Aim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = self
            .reply
            .map_or("reply".to_string(), |r| format!("{r} reply"));
        let from = self
            .engine
            .as_deref()
            .map_or("any engine".to_string(), str::to_string);
        match self.action {
            Action::Crash => write!(
                f,
                "crash after the {} {what} from {from}",
                ordinal(self.nth)
            )?,
            Action::Cut => write!(
                f,
                "reset the connection before the {} {what} from {from}",
                ordinal(self.nth)
            )?,
        }
        f.write_str(self.pairing())
    }
}

impl Aim {
    /// What a paired aim adds to its name (`" (or the next: an odd-numbered one)"`);
    /// empty for one that is not.
    pub fn pairing(&self) -> &'static str {
        match (self.paired, self.nth % 2) {
            (false, _) => "",
            (true, 1) => " (or the next: an odd-numbered one)",
            (true, _) => " (or the next: an even-numbered one)",
        }
    }
}

/// `1st`, `2nd`, `3rd`, `4th`, … `11th`, `21st`.
pub fn ordinal(n: impl Into<u64>) -> String {
    let n: u64 = n.into();
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// How many replies of one kind a node has seen from one engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyCount {
    /// The engine's node name.
    pub engine: String,
    /// The reply's kind.
    pub reply: Reply,
    /// How many.
    pub count: u64,
}

/// An aimed fault that fired: what it was aimed at and the reply it hit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fired {
    /// The aim as armed.
    pub aim: Aim,
    /// The engine whose reply it was.
    pub engine: String,
    /// The reply's kind.
    pub reply: Reply,
    /// Its number among the replies of its engine and kind since the process started
    /// (0 from a node that did not say).
    #[serde(default)]
    pub number: u64,
}

impl fmt::Display for Fired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = ordinal(self.aim.nth);
        let since = if self.aim.paired && self.number > 0 {
            format!(" ({} since the process started)", ordinal(self.number))
        } else {
            String::new()
        };
        match self.aim.action {
            Action::Crash => write!(
                f,
                "the process was killed right after the {n} {} reply{since} from {} reached it",
                self.reply, self.engine
            ),
            Action::Cut => write!(
                f,
                "the connection to {} was reset before the {n} {} reply{since} reached the process",
                self.engine, self.reply
            ),
        }
    }
}

/// A node's reply counters and its one armed fault. Shared by all its forwarders.
pub struct Tap {
    counts: Mutex<BTreeMap<(String, Reply), u64>>,
    armed: Mutex<Option<(Aim, u32)>>,
    fired: Mutex<Option<Fired>>,
    on_crash: Box<dyn Fn(&Fired) + Send + Sync>,
}

impl fmt::Debug for Tap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tap").finish_non_exhaustive()
    }
}

impl Tap {
    /// A tap that calls `on_crash` when a crash fires (a node exits there; a test
    /// records it), after the reply has been written to the process.
    pub fn new(on_crash: impl Fn(&Fired) + Send + Sync + 'static) -> Tap {
        Tap {
            counts: Mutex::new(BTreeMap::new()),
            armed: Mutex::new(None),
            fired: Mutex::new(None),
            on_crash: Box::new(on_crash),
        }
    }

    /// The tap of a node process: a crash prints what fired and exits with
    /// [`CRASH_EXIT_CODE`] at once (no destructors: like SIGKILL, the container's other
    /// processes die with it).
    pub fn exiting() -> Tap {
        Tap::new(|fired| {
            eprintln!("chaosbank node: aimed crash: {fired}");
            std::process::exit(CRASH_EXIT_CODE);
        })
    }

    /// Arms `aim`, replacing any armed one, and forgets what fired before. An `nth` of 0
    /// is taken as 1.
    pub fn arm(&self, aim: Aim) {
        tracing::info!("armed: {aim}");
        *lock(&self.fired) = None;
        let n = aim.nth.max(1);
        *lock(&self.armed) = Some((aim, n));
    }

    /// Disarms; returns what fired since the last arming, if anything did.
    pub fn disarm(&self) -> Option<Fired> {
        *lock(&self.armed) = None;
        lock(&self.fired).clone()
    }

    /// What fired since the last arming.
    pub fn fired(&self) -> Option<Fired> {
        lock(&self.fired).clone()
    }

    /// The replies seen so far, by engine and kind.
    pub fn counts(&self) -> Vec<ReplyCount> {
        lock(&self.counts)
            .iter()
            .map(|((engine, reply), count)| ReplyCount {
                engine: engine.clone(),
                reply: *reply,
                count: *count,
            })
            .collect()
    }

    /// Counts a reply from `engine`; returns the action to take when it is the one the
    /// armed fault waits for (the fault is then spent).
    pub fn hit(&self, engine: &str, reply: Reply) -> Option<Action> {
        let number = {
            let mut counts = lock(&self.counts);
            let count = counts.entry((engine.to_string(), reply)).or_default();
            *count += 1;
            *count
        };
        let mut armed = lock(&self.armed);
        let (aim, left) = armed.as_mut()?;
        let matches = aim.engine.as_deref().is_none_or(|e| e == engine)
            && aim.reply.is_none_or(|r| r == reply);
        if !matches {
            return None;
        }
        *left = left.saturating_sub(1);
        if *left > 0 || (aim.paired && number % 2 != u64::from(aim.nth % 2)) {
            return None;
        }
        let aim = aim.clone();
        *armed = None;
        drop(armed);
        let action = aim.action;
        *lock(&self.fired) = Some(Fired {
            aim,
            engine: engine.to_string(),
            reply,
            number,
        });
        Some(action)
    }

    /// Runs the crash hook with what fired (called once the reply is written).
    pub fn crash(&self) {
        if let Some(fired) = self.fired() {
            (self.on_crash)(&fired);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nth_matching_reply_fires_once() {
        let tap = Tap::new(|_| {});
        tap.arm(Aim {
            action: Action::Crash,
            engine: Some("postgres".into()),
            reply: Some(Reply::Commit),
            nth: 2,
            paired: false,
        });
        assert_eq!(tap.hit("postgres", Reply::Other), None);
        assert_eq!(tap.hit("kafka", Reply::Commit), None);
        assert_eq!(tap.hit("postgres", Reply::Commit), None);
        assert_eq!(tap.hit("postgres", Reply::Commit), Some(Action::Crash));
        assert_eq!(tap.hit("postgres", Reply::Commit), None, "spent");
        let fired = tap.fired().expect("fired");
        assert_eq!(
            (fired.engine.as_str(), fired.reply),
            ("postgres", Reply::Commit)
        );
        assert!(
            fired.to_string().contains("2nd commit reply from postgres"),
            "{fired}"
        );
        assert_eq!(
            tap.counts()
                .iter()
                .find(|c| c.engine == "postgres" && c.reply == Reply::Commit)
                .map(|c| c.count),
            Some(3)
        );
        assert_eq!(tap.disarm(), Some(fired));
    }

    #[test]
    fn any_matches_every_reply_and_disarm_stops_it() {
        let tap = Tap::new(|_| {});
        tap.arm(Aim {
            action: Action::Cut,
            engine: None,
            reply: None,
            nth: 1,
            paired: false,
        });
        assert_eq!(tap.disarm(), None);
        assert_eq!(tap.hit("mariadb", Reply::Other), None);
        tap.arm(Aim {
            action: Action::Cut,
            engine: None,
            reply: None,
            nth: 0,
            paired: false,
        });
        assert_eq!(tap.hit("mariadb", Reply::Other), Some(Action::Cut));
    }

    #[test]
    fn a_paired_aim_lands_on_the_first_or_second_of_each_pair_however_it_is_armed() {
        let commit = |tap: &Tap| tap.hit("mariadb", Reply::Commit);
        let aim = |nth| Aim {
            action: Action::Crash,
            engine: Some("mariadb".into()),
            reply: Some(Reply::Commit),
            nth,
            paired: true,
        };
        for before in 0..6u64 {
            for nth in 1..=4u32 {
                let tap = Tap::new(|_| {});
                (0..before).for_each(|_| assert_eq!(commit(&tap), None));
                tap.arm(aim(nth));
                // Not before the nth after arming, and at most one after it.
                let mut seen = 0;
                while commit(&tap).is_none() {
                    seen += 1;
                    assert!(seen <= nth, "{before} before, nth {nth}");
                }
                assert!(seen + 1 >= nth);
                let fired = tap.fired().expect("fired");
                assert_eq!(fired.number, before + u64::from(seen) + 1);
                assert_eq!(fired.number % 2, u64::from(nth % 2), "{fired}");
                assert!(fired.to_string().contains("since the process started"));
            }
        }
        assert!(aim(2)
            .to_string()
            .ends_with("(or the next: an even-numbered one)"));
    }

    #[test]
    fn ordinals() {
        let got: Vec<String> = [1u32, 2, 3, 4, 11, 12, 13, 21, 22, 101]
            .map(ordinal)
            .to_vec();
        assert_eq!(
            got,
            ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st"]
        );
    }
}
