//! Types that cross a stage boundary: what one stage writes and another reads. A stage imports
//! another stage's output from here, never from that stage's module.

pub mod ledger;
pub mod plan;
