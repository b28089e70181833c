//! Faults: the [`nemesis`] that applies, observes and heals them on a cluster's nodes,
//! the seeded [`schedule`] that says which, where and when, the [`script`]ed one a file
//! gives instead, the replication [`slot`] a `slot-loss` drops, and the [`targets`] a
//! run's faults may hit, checked before anything starts.

pub mod nemesis;
pub mod schedule;
pub mod script;
pub mod slot;
pub mod targets;
