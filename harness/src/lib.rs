//! chaosbank's harness: everything between a configuration and a history.
//!
//! Data flows one way: config → [`cluster`] (containers from [`images`] through
//! [`docker`]) → workload + [`nemesis`] → history → checkers → report.

pub mod docker;
pub mod images;
pub mod cluster;
pub mod nemesis;
pub mod schedule;
