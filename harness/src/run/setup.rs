//! Setting up: everything checked before anything starts ([`preflight`]), the cluster a
//! run needs ([`cluster`]), and the system under test deployed on it with the
//! workload's opening balances ([`deploy`]). The run's settings become the workload's
//! and the scheme's here ([`workload`], [`options`]), and nowhere else.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use workloads::system::{self, Endpoints, Options, System};

use crate::cluster::{Cluster, ClusterBuilder};
use crate::config::{RunConfig, SERVICE_BALANCE, TARGETS};
use crate::generator::WorkloadConfig;
use crate::sut::Manifest;

/// What a run is, once its settings are checked: nothing has started yet.
#[derive(Debug)]
pub struct Plan {
    /// A service's manifest (`None`: a reference scheme).
    pub manifest: Option<Manifest>,
    /// What is under test, as runs are stored and reported.
    pub name: String,
    /// The run's folder, `<out>/<name>/<timestamp>-<seed>`.
    pub dir: PathBuf,
    /// The node binary the node containers run (`None`: in-process).
    pub binary: Option<PathBuf>,
}

/// Checks the settings, loads a service's manifest and finds the node binary: every
/// mistake a run can know of is named before anything starts.
pub fn preflight(cfg: &RunConfig) -> Result<Plan> {
    cfg.check()?;
    let manifest = match &cfg.service {
        Some(path) => {
            let m = Manifest::load(path)?;
            m.check_files()?;
            Some(m)
        }
        None => None,
    };
    let name = manifest
        .as_ref()
        .map_or_else(|| cfg.system.name().to_string(), |m| m.name.clone());
    let dir = cfg
        .out
        .join(&name)
        .join(format!("{}-{}", timestamp(), cfg.seed));
    if manifest.is_none() && cfg.system.uses_connect() && cfg.in_process {
        anyhow::bail!(
            "outbox-cdc runs its Kafka Connect worker in a node container: drop --in-process"
        );
    }
    // The targets are names chaosbank knows, and a run asked for faults has some left.
    // A service's processes, and the Kafka Connect worker of one with connectors.
    let processes: Option<Vec<String>> = manifest.as_ref().map(|m| {
        let mut names: Vec<String> = m.processes.iter().map(|p| p.name.clone()).collect();
        if !m.connectors.is_empty() {
            names.push(crate::sut::CONNECT_NODE.to_string());
        }
        names
    });
    crate::faults::targets::resolve(
        &cfg.targets,
        &cfg.faults,
        &crate::faults::targets::RunNodes {
            system: cfg.system,
            processes: processes.as_deref(),
            kafka: match &manifest {
                Some(m) => m.broker == crate::sut::Broker::Kafka,
                None => cfg.system.uses_kafka(),
            },
            in_process: cfg.in_process,
        },
    )?;
    let binary = if cfg.in_process {
        None
    } else {
        Some(crate::deploy::node_binary(cfg.node_binary.as_deref())?)
    };
    Ok(Plan {
        manifest,
        name,
        dir,
        binary,
    })
}

/// The cluster the run needs: both banks, and the broker its scheme or service uses.
pub fn cluster(cfg: &RunConfig, manifest: Option<&Manifest>) -> ClusterBuilder {
    let builder = Cluster::builder()
        .engines(cfg.engines)
        .clock_faults(cfg.moves_clocks())
        .logical_wal(match manifest {
            Some(m) => !m.connectors.is_empty(),
            None => cfg.system.uses_connect(),
        })
        .postgres()
        .mariadb();
    let uses_kafka = match manifest {
        Some(m) => m.broker == crate::sut::Broker::Kafka,
        None => cfg.system.uses_kafka(),
    };
    if uses_kafka {
        builder.kafka()
    } else {
        builder.rocketmq()
    }
}

/// The scheme's options for the run's settings.
pub fn options(cfg: &RunConfig) -> Options {
    Options {
        dedup: cfg.dedup,
        read_uncommitted: cfg.read_uncommitted,
        max_attempts: cfg.max_attempts.max(1),
        slot_mismatch: cfg.slot_mismatch,
        connections: u32::try_from(cfg.concurrency)
            .unwrap_or(u32::MAX)
            .saturating_add(4),
        ..Options::default()
    }
}

/// The workload for the run's settings. A service's transfers all go from bank A to
/// bank B (the contract), from balances large enough not to run bank A dry.
pub fn workload(cfg: &RunConfig) -> WorkloadConfig {
    let service = cfg.service.is_some();
    let base = WorkloadConfig::new(cfg.seed);
    WorkloadConfig {
        accounts_per_bank: cfg.accounts.max(1),
        poison_rate: cfg.poison_share(),
        a_to_b_only: service,
        initial_balance: if service {
            SERVICE_BALANCE
        } else {
            base.initial_balance
        },
        ..base
    }
}

/// The nodes faults may target: as given, or the default targets and a service's own
/// processes.
pub fn targets(cfg: &RunConfig, manifest: Option<&Manifest>) -> Vec<String> {
    let mut targets = cfg.targets.clone();
    if targets.iter().map(String::as_str).eq(TARGETS) {
        for p in manifest.iter().flat_map(|m| &m.processes) {
            if !targets.contains(&p.name) {
                targets.push(p.name.clone());
            }
        }
    }
    targets
}

/// Deploys the system under test on `cluster`, its banks opened with `workload`'s
/// balances.
pub async fn deploy(
    cfg: &RunConfig,
    plan: &Plan,
    cluster: &Cluster,
    workload: &WorkloadConfig,
) -> Result<Arc<dyn System>> {
    let endpoints = Endpoints {
        bank_a: cluster.endpoint("postgres")?.url(),
        bank_b: cluster.endpoint("mariadb")?.url(),
        kafka: cluster.endpoint("kafka").ok().map(|e| e.url()),
        rocketmq: cluster.endpoint("namesrv").ok().map(|e| e.url()),
        connect: None,
    };
    // outbox-cdc's Kafka Connect worker, before the scheme that registers its connector.
    let endpoints = match &plan.binary {
        Some(binary) if plan.manifest.is_none() && cfg.system.uses_connect() => Endpoints {
            connect: Some(crate::engines::connect::start(cluster, binary).await?),
            ..endpoints
        },
        _ => endpoints,
    };
    let options = options(cfg);
    let balances = workload.initial_balances();
    match &plan.manifest {
        Some(m) => {
            let binary = plan
                .binary
                .as_deref()
                .context("a service runs in node containers")?;
            crate::sut::deploy(cluster, m, binary, &endpoints, &options, &balances)
                .await
                .context("deploying the service")
        }
        None => {
            let local = system::build(cfg.system, &endpoints, &options)?;
            crate::deploy::deploy(
                cluster,
                local,
                cfg.system,
                &options,
                &balances,
                plan.binary.as_deref(),
            )
            .await
        }
    }
}

/// `YYYYmmddTHHMMSSZ` for now (UTC).
pub fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_runs_one_way_from_large_balances_without_poison() {
        let scheme = workload(&RunConfig::new(3));
        assert!(!scheme.a_to_b_only);
        assert_eq!(scheme.poison_rate, crate::config::DEFAULT_POISON_RATE);
        assert_eq!(
            scheme.initial_balance,
            WorkloadConfig::new(3).initial_balance
        );
        assert_eq!((scheme.seed, scheme.accounts_per_bank), (3, 5));
        let service = workload(&RunConfig {
            service: Some(PathBuf::from("svc")),
            ..RunConfig::new(3)
        });
        assert!(service.a_to_b_only);
        assert_eq!(service.poison_rate, 0.0);
        assert_eq!(service.initial_balance, SERVICE_BALANCE);
    }

    #[test]
    fn the_schemes_options_follow_the_settings() {
        let o = options(&RunConfig {
            dedup: false,
            read_uncommitted: true,
            max_attempts: 2,
            concurrency: 12,
            ..RunConfig::new(1)
        });
        assert!(!o.dedup && o.read_uncommitted);
        assert_eq!((o.max_attempts, o.connections), (2, 16));
    }

    #[test]
    fn targets_given_are_kept_as_given() {
        let cfg = RunConfig {
            targets: vec!["relay".to_string()],
            ..RunConfig::new(1)
        };
        assert_eq!(targets(&cfg, None), ["relay"]);
        assert_eq!(targets(&RunConfig::new(1), None), TARGETS);
    }
}
