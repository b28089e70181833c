//! chaosbank's harness: everything between a configuration and a history.
//!
//! Data flows one way: config → [`cluster`] (containers from [`images`] through
//! [`docker`], each [`service`] ready by its [`probe`]) → workload + [`nemesis`] driven
//! by a [`schedule`] → history → checkers → report. What a run leaves behind is removed
//! by its [`cluster::Cluster`], its [`watchdog`] or the next run's [`reaper`], all keyed
//! by the [`labels`].

#![warn(missing_docs)]

pub mod cluster;
pub mod deploy;
pub mod docker;
pub mod error;
pub mod generator;
pub mod images;
pub mod labels;
pub mod nemesis;
pub mod probe;
pub mod reaper;
pub mod recorder;
pub mod report;
pub mod run;
pub mod schedule;
pub mod service;
pub mod watchdog;

pub use cluster::{Cluster, ClusterBuilder, Node};
pub use error::{Error, Result};
pub use nemesis::{Event, Fault, Nemesis};
pub use schedule::{Schedule, ScheduleConfig};
pub use service::{Endpoint, NodeKind, Service};
