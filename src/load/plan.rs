//! The plan's types are the contract between plan, load and audit
//! ([`crate::snapshot::contract::plan`]); re-exported here, where load builds them.

pub use crate::snapshot::contract::plan::{Plan, PlanOp, PlannedOperation};
