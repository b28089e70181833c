//! The reaper: removes what runs left behind. A run's containers and networks are
//! orphans when the harness that owns them is gone (killed with -9, say) and they were
//! not kept on purpose. Every run and every `cluster up` reaps first.

use crate::docker::Engine;
use crate::error::Result;
use crate::labels::{self, Owner};

/// What a reaper call removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Container names.
    pub containers: Vec<String>,
    /// Network names.
    pub networks: Vec<String>,
}

impl Reaped {
    /// Whether nothing was removed.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty()
    }
}

/// Which labelled objects a sweep removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sweep {
    /// Objects whose harness is dead and that were not kept.
    Orphans,
    /// Orphans plus kept clusters (`chaosbank cluster down`).
    OrphansAndKept,
    /// Everything chaosbank-labelled, even runs whose harness still runs.
    Everything,
}

impl Sweep {
    fn takes(self, owner: &Owner) -> bool {
        match self {
            Sweep::Orphans => !owner.keep && !owner.is_alive(),
            Sweep::OrphansAndKept => owner.keep || !owner.is_alive(),
            Sweep::Everything => true,
        }
    }
}

/// Removes every chaosbank-labelled container and network that `sweep` selects;
/// containers first, so their networks can go.
pub async fn sweep(engine: &Engine, sweep: Sweep) -> Result<Reaped> {
    select_and_remove(engine, &[(labels::CHAOSBANK, "1")], |o| sweep.takes(o)).await
}

/// Removes one run's containers and network, whoever owns them.
pub async fn remove_run(engine: &Engine, run: &str) -> Result<Reaped> {
    select_and_remove(
        engine,
        &[(labels::CHAOSBANK, "1"), (labels::RUN, run)],
        |_| true,
    )
    .await
}

async fn select_and_remove(
    engine: &Engine,
    filter: &[(&str, &str)],
    take: impl Fn(&Owner) -> bool,
) -> Result<Reaped> {
    let mut reaped = Reaped::default();
    for c in engine.containers_labelled(filter).await? {
        let owner = c.labels.as_ref().and_then(Owner::from_labels);
        if !owner.as_ref().is_some_and(&take) {
            continue;
        }
        let name = c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_string())
            .or(c.id.clone())
            .unwrap_or_default();
        engine.remove_container(&name).await?;
        reaped.containers.push(name);
    }
    for (name, labels) in engine.networks_labelled(filter).await? {
        if Owner::from_labels(&labels).as_ref().is_some_and(&take) {
            engine.remove_network(&name).await?;
            reaped.networks.push(name);
        }
    }
    Ok(reaped)
}
