//! Ownership labels: every container and network chaosbank creates says which run made
//! it, which harness process owns it, and whether it is meant to outlive that process.
//! The reaper reads them back to decide what is an orphan.

use std::collections::HashMap;

/// Present (value `1`) on everything chaosbank creates.
pub const CHAOSBANK: &str = "chaosbank";
/// The run id.
pub const RUN: &str = "chaosbank.run";
/// The owning harness's pid.
pub const PID: &str = "chaosbank.pid";
/// The owning harness's start time (clock ticks after boot), so a recycled pid is not
/// mistaken for the owner.
pub const PID_START: &str = "chaosbank.pid-start";
/// The owning harness's pid namespace (`/proc/self/ns/pid`): a pid from another
/// namespace (a harness in a container sharing the engine) cannot be judged from here.
pub const PID_NS: &str = "chaosbank.pid-ns";
/// `1` when the object must outlive its harness (`chaosbank cluster up`).
pub const KEEP: &str = "chaosbank.keep";
/// The node name, on containers.
pub const NODE: &str = "chaosbank.node";

/// Who owns a run's containers and networks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The run id (also part of every container and network name).
    pub run: String,
    /// The owning process.
    pub pid: u32,
    /// The owning process's start time, when known.
    pub pid_start: Option<u64>,
    /// The owning process's pid namespace, when known.
    pub pid_ns: Option<String>,
    /// Whether the run outlives its process on purpose.
    pub keep: bool,
}

impl Owner {
    /// This process, owning run `run`.
    pub fn current(run: &str, keep: bool) -> Owner {
        let pid = std::process::id();
        Owner {
            run: run.to_string(),
            pid,
            pid_start: process_start(pid),
            pid_ns: pid_namespace(),
            keep,
        }
    }

    /// The labels to put on an object; `node` only for containers.
    pub fn labels(&self, node: Option<&str>) -> HashMap<String, String> {
        let mut l = HashMap::new();
        l.insert(CHAOSBANK.to_string(), "1".to_string());
        l.insert(RUN.to_string(), self.run.clone());
        l.insert(PID.to_string(), self.pid.to_string());
        if let Some(start) = self.pid_start {
            l.insert(PID_START.to_string(), start.to_string());
        }
        if let Some(ns) = &self.pid_ns {
            l.insert(PID_NS.to_string(), ns.clone());
        }
        l.insert(
            KEEP.to_string(),
            if self.keep { "1" } else { "0" }.to_string(),
        );
        if let Some(node) = node {
            l.insert(NODE.to_string(), node.to_string());
        }
        l
    }

    /// Reads an owner back from labels; `None` when they are not chaosbank's.
    pub fn from_labels(labels: &HashMap<String, String>) -> Option<Owner> {
        if labels.get(CHAOSBANK).map(String::as_str) != Some("1") {
            return None;
        }
        Some(Owner {
            run: labels.get(RUN).cloned().unwrap_or_default(),
            pid: labels.get(PID).and_then(|p| p.parse().ok()).unwrap_or(0),
            pid_start: labels.get(PID_START).and_then(|p| p.parse().ok()),
            pid_ns: labels.get(PID_NS).cloned(),
            keep: labels.get(KEEP).map(String::as_str) == Some("1"),
        })
    }

    /// Whether the owning process still runs (same pid and, when recorded, same start
    /// time). An owner in another pid namespace counts as alive: we cannot see it.
    pub fn is_alive(&self) -> bool {
        if self.pid == 0 {
            return false;
        }
        if let (Some(theirs), Some(ours)) = (&self.pid_ns, pid_namespace()) {
            if *theirs != ours {
                return true;
            }
        }
        match (process_start(self.pid), self.pid_start) {
            (None, _) => false,
            (Some(now), Some(then)) => now == then,
            (Some(_), None) => true,
        }
    }
}

/// This process's pid namespace, e.g. `pid:[4026531836]`.
pub fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// A process's start time in clock ticks after boot (field 22 of `/proc/PID/stat`), or
/// `None` when it does not exist. The command name may hold spaces and parentheses, so
/// fields are counted after the last `)`.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, so starttime (22) is the 20th here.
    let start = after.split_whitespace().nth(19)?;
    // A zombie still has a stat file but is no longer a harness.
    if after.split_whitespace().next() == Some("Z") {
        return None;
    }
    start.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        let o = Owner::current("ab12", true);
        assert_eq!(
            Owner::from_labels(&o.labels(Some("postgres"))),
            Some(o.clone())
        );
        assert!(o.is_alive());
    }

    #[test]
    fn a_dead_or_recycled_pid_is_not_alive() {
        let mut o = Owner::current("x", false);
        o.pid_start = o.pid_start.map(|s| s + 1);
        assert!(!o.is_alive());
        o.pid = 0;
        assert!(!o.is_alive());
    }

    #[test]
    fn an_owner_in_another_pid_namespace_is_left_alone() {
        let mut o = Owner::current("x", false);
        o.pid_start = o.pid_start.map(|s| s + 1);
        o.pid_ns = Some("pid:[1]".to_string());
        assert!(o.is_alive());
    }
}
