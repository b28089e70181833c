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

#![warn(missing_docs)]

pub mod api;
pub mod bench;
pub mod clients;
pub mod cluster;
pub mod conviction;
pub mod deploy;
pub mod docker;
pub mod error;
pub mod generator;
pub mod images;
pub mod labels;
pub mod measure;
pub mod nemesis;
pub mod probe;
pub mod progress;
pub mod reaper;
pub mod recorder;
pub mod replay;
pub mod report;
pub mod run;
pub mod schedule;
pub mod service;
pub mod soak;
pub mod store;
pub mod sut;
pub mod watchdog;

pub use api::Test;
pub use cluster::{Cluster, ClusterBuilder, Node};
pub use error::{Error, Result};
pub use nemesis::{Event, Fault, Nemesis};
pub use run::{RunConfig, RunReport, SystemKind};
pub use schedule::{FaultKind, Schedule, ScheduleConfig};
pub use service::{Endpoint, NodeKind, Service};
