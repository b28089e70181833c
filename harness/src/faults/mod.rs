//! Faults: the [`nemesis`] that applies, observes and heals them on a cluster's nodes,
//! the seeded [`schedule`] that says which, where and when, and the [`script`]ed one a
//! file gives instead.

pub mod nemesis;
pub mod schedule;
pub mod script;
