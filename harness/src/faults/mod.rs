//! Faults: the [`nemesis`] that applies, observes and heals them on a cluster's nodes,
//! and the seeded [`schedule`] that says which, where and when.

pub mod nemesis;
pub mod schedule;
