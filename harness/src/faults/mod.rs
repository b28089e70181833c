//! Faults: the [`nemesis`] that applies, observes and heals them on a cluster's nodes,
//! the seeded [`schedule`] that says which, where and when, and the
//! [`targets`] a run's faults may hit, checked before anything starts.

pub mod nemesis;
pub mod schedule;
pub mod targets;
