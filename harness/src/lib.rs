//! chaosbank's harness: everything between a configuration and a history.
//!
//! Data flows one way: config → [`cluster`] (containers from [`images`] through
//! [`docker`], each [`service`] ready by its [`probe`]) → workload + [`nemesis`] driven
//! by a [`schedule`] → history → checkers → report. What a run leaves behind is removed
//! by its [`cluster::Cluster`], its [`watchdog`] or the next run's [`reaper`], all keyed
//! by the [`labels`].
//!
//! From your own tests, [`Test`] runs the whole thing (as `chaosbank run` does) and
//! returns a [`RunReport`] to assert on; [`store`] is what a run leaves on disk,
//! [`replay`] runs a stored run again, [`soak`] runs many seeds. A user's own service
//! is deployed from its manifest by [`sut`].
//!
//! The folders, each depending only on those before it (no module cycles:
//! `scripts/cycles.py` checks): [`error`]; [`engines`] (images, containers, readiness,
//! cleanup); [`faults`] (the nemesis and its seeded schedule); [`config`] (plain data);
//! [`conviction`]; [`report`]; [`sut`]; [`run`] (generator, clients, recorder, store,
//! progress, outcome); then [`api`], [`replay`], [`soak`] and [`bench`]; the CLI's
//! commands in `src/commands/`.

#![warn(missing_docs)]

pub mod api;
pub mod bench;
pub mod config;
pub mod conviction;
pub mod engines;
pub mod error;
pub mod faults;
pub mod merge;
pub mod parse;
pub mod replay;
pub mod report;
pub mod run;
pub mod shrink;
pub mod soak;
pub mod sut;

// The folders' modules under the names they have always had.
pub use engines::{
    cluster, deploy, docker, images, labels, measure, probe, reaper, service, watchdog,
};
pub use faults::{nemesis, schedule, script};
pub use run::{clients, generator, outcome, progress, recorder, store};

pub use api::Test;
pub use cluster::{Cluster, ClusterBuilder, Node};
pub use error::{Error, Result};
pub use nemesis::{Event, Fault, Nemesis};
pub use run::{RunConfig, RunReport, SystemKind};
pub use schedule::{FaultKind, Schedule, ScheduleConfig};
pub use service::{Endpoint, NodeKind, Service};
