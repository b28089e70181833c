//! Which nodes a run's faults may hit, checked before anything starts: a name that no
//! engine, scheme or manifest knows is refused (a misspelt `--targets postgress` would
//! otherwise give a run with no faults, judged valid); a name this run lacks (`relay`
//! for txmsg, `kafka` for a RocketMQ scheme) is skipped; and a run asked for faults
//! that has no target left is refused rather than run without any.

use anyhow::{bail, Result};
use workloads::system::{Role, SystemKind};

use crate::schedule::FaultKind;

/// The engines' node names (a run has the databases and one broker's).
pub const ENGINES: [&str; 5] = ["postgres", "mariadb", "kafka", "namesrv", "broker"];

/// What the check needs to know of a run: its scheme, or its service's processes.
#[derive(Clone, Debug)]
pub struct RunNodes<'a> {
    /// The reference scheme (ignored when `processes` is `Some`).
    pub system: SystemKind,
    /// A service's process names (its manifest's), when a service is under test.
    pub processes: Option<&'a [String]>,
    /// Whether the broker is Kafka (else RocketMQ: `namesrv` and `broker`).
    pub kafka: bool,
    /// The scheme runs as tasks of the harness: no node containers of its own.
    pub in_process: bool,
}

impl RunNodes<'_> {
    /// Every node name chaosbank knows for this run: the engines, the schemes' roles,
    /// and the service's processes.
    pub fn known(&self) -> Vec<String> {
        let mut known: Vec<String> = ENGINES.iter().map(|s| s.to_string()).collect();
        known.extend(
            [Role::Producer, Role::Relay, Role::Consumer]
                .iter()
                .map(|r| r.name().to_string()),
        );
        // outbox-cdc's Kafka Connect worker.
        known.push("connect".to_string());
        known.extend(self.processes.unwrap_or_default().iter().cloned());
        known
    }

    /// The nodes this run will have, and whether each runs the system's own code (a
    /// clock fault moves only those).
    pub fn present(&self) -> Vec<(String, bool)> {
        let mut nodes: Vec<(String, bool)> = ["postgres", "mariadb"]
            .iter()
            .chain(if self.kafka {
                &["kafka"][..]
            } else {
                &["namesrv", "broker"][..]
            })
            .map(|n| (n.to_string(), false))
            .collect();
        match self.processes {
            Some(ps) => nodes.extend(ps.iter().map(|p| (p.clone(), true))),
            None if self.in_process => {}
            None => nodes.extend(
                self.system
                    .roles()
                    .iter()
                    .map(|r| (r.name().to_string(), true)),
            ),
        }
        if self.processes.is_none() && self.system.uses_connect() {
            nodes.push(("connect".to_string(), true));
        }
        nodes
    }
}

/// The targets of a run asked for `targets` with `faults`: the names it has, in the
/// order given. Refuses names nobody knows (listing the known ones), and a run asked for
/// faults that would have no target (or, for clock faults alone, no node of its own
/// code) left.
pub fn resolve(
    targets: &[String],
    faults: &[FaultKind],
    run: &RunNodes<'_>,
) -> Result<Vec<String>> {
    slot_loss(targets, faults, run)?;
    let known = run.known();
    let unknown: Vec<&String> = targets.iter().filter(|t| !known.contains(t)).collect();
    if !unknown.is_empty() {
        bail!(
            "unknown target{} {} in --targets: chaosbank knows {}",
            if unknown.len() == 1 { "" } else { "s" },
            unknown
                .iter()
                .map(|t| format!("{t:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            known.join(", ")
        );
    }
    let present = run.present();
    let kept: Vec<String> = targets
        .iter()
        .filter(|t| present.iter().any(|(n, _)| n == *t))
        .cloned()
        .collect();
    if faults.is_empty() {
        return Ok(kept);
    }
    let names = |v: &[(String, bool)], app_only: bool| {
        v.iter()
            .filter(|(_, app)| *app || !app_only)
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if kept.is_empty() {
        bail!(
            "no node of this run is among --targets {} (it has {}): the faults would hit \
             nothing; name some of them, or use --nemesis none",
            targets.join(","),
            names(&present, false)
        );
    }
    let only_clock = faults.iter().all(|k| *k == FaultKind::Clock);
    let app_kept = kept
        .iter()
        .any(|t| present.iter().any(|(n, app)| n == t && *app));
    if only_clock && !app_kept {
        bail!(
            "clock faults move only the system's own containers ({}), and --targets names \
             none of them",
            if names(&present, true).is_empty() {
                "none in this run: drop --in-process".to_string()
            } else {
                names(&present, true)
            }
        );
    }
    Ok(kept)
}

/// A `slot-loss` needs a replication slot to drop: only a system read by Debezium
/// through Kafka Connect (`outbox-cdc`) has one, on `postgres`, which the targets must
/// name.
fn slot_loss(targets: &[String], faults: &[FaultKind], run: &RunNodes<'_>) -> Result<()> {
    if !faults.contains(&FaultKind::SlotLoss) {
        return Ok(());
    }
    if run.processes.is_some() || !run.system.uses_connect() {
        bail!(
            "the slot-loss fault drops the replication slot Debezium reads bank A through, and \
             {} has none: only a system that uses Kafka Connect has one (--system outbox-cdc); \
             drop slot-loss from --nemesis",
            if run.processes.is_some() {
                "a service under test".to_string()
            } else {
                format!("--system {}", run.system.name())
            }
        );
    }
    if !targets.iter().any(|t| t == crate::schedule::SLOT_NODE) {
        bail!(
            "the slot-loss fault hits postgres (bank A's replication slot), and --targets {} \
             leaves it out: add postgres, or drop slot-loss from --nemesis",
            targets.join(",")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn scheme(system: SystemKind) -> RunNodes<'static> {
        RunNodes {
            system,
            processes: None,
            kafka: system.uses_kafka(),
            in_process: false,
        }
    }

    const FAULTS: &[FaultKind] = &[FaultKind::Kill];

    #[test]
    fn a_misspelt_target_is_refused_naming_the_known_ones() {
        let e = resolve(
            &v(&["postgress", "kafka"]),
            FAULTS,
            &scheme(SystemKind::Outbox),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown target \"postgress\""), "{e}");
        assert!(e.contains("postgres, mariadb"), "{e}");
        // Even with no faults: a typo is a typo.
        assert!(resolve(&v(&["x"]), &[], &scheme(SystemKind::Outbox)).is_err());
    }

    #[test]
    fn names_the_run_lacks_are_skipped_and_none_left_is_refused() {
        let txmsg = scheme(SystemKind::TxMsg);
        assert!(!txmsg.system.uses_kafka());
        assert_eq!(
            resolve(&v(&["relay", "broker", "kafka"]), FAULTS, &txmsg).unwrap(),
            v(&["broker"])
        );
        let e = resolve(&v(&["relay", "kafka"]), FAULTS, &txmsg)
            .unwrap_err()
            .to_string();
        assert!(e.contains("the faults would hit nothing"), "{e}");
        // With no faults asked for, nothing to hit is fine.
        assert_eq!(
            resolve(&v(&["relay"]), &[], &txmsg).unwrap(),
            Vec::<String>::new()
        );
        assert!(resolve(&[], FAULTS, &txmsg).is_err());
    }

    #[test]
    fn a_slot_loss_is_refused_where_no_connector_reads_a_slot() {
        let faults = [FaultKind::SlotLoss, FaultKind::Kill];
        let all = v(&["postgres", "connect", "kafka"]);
        assert_eq!(
            resolve(&all, &faults, &scheme(SystemKind::OutboxCdc)).unwrap(),
            all
        );
        let e = resolve(&all, &faults, &scheme(SystemKind::Outbox))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--system outbox has none"), "{e}");
        assert!(e.contains("--system outbox-cdc"), "{e}");
        let ps = v(&["api"]);
        let svc = RunNodes {
            processes: Some(&ps),
            ..scheme(SystemKind::OutboxCdc)
        };
        let e = resolve(&v(&["postgres"]), &faults, &svc)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a service under test has none"), "{e}");
        let e = resolve(&v(&["connect"]), &faults, &scheme(SystemKind::OutboxCdc))
            .unwrap_err()
            .to_string();
        assert!(e.contains("leaves it out"), "{e}");
        // Not asked for: nothing to check.
        assert!(resolve(&all, FAULTS, &scheme(SystemKind::Outbox)).is_ok());
    }

    #[test]
    fn a_service_adds_its_processes_and_clock_faults_need_one() {
        let ps = v(&["api", "worker"]);
        let svc = RunNodes {
            system: SystemKind::Outbox,
            processes: Some(&ps),
            kafka: true,
            in_process: false,
        };
        assert_eq!(
            resolve(&v(&["worker", "postgres", "producer"]), FAULTS, &svc).unwrap(),
            v(&["worker", "postgres"])
        );
        let e = resolve(&v(&["postgres"]), &[FaultKind::Clock], &svc)
            .unwrap_err()
            .to_string();
        assert!(e.contains("api, worker"), "{e}");
        let in_process = RunNodes {
            in_process: true,
            ..scheme(SystemKind::Outbox)
        };
        assert!(resolve(&v(&["producer", "kafka"]), &[FaultKind::Clock], &in_process).is_err());
        assert_eq!(
            resolve(&v(&["producer", "kafka"]), FAULTS, &in_process).unwrap(),
            v(&["kafka"])
        );
    }
}
