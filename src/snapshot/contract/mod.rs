//! Types that cross a stage boundary: what one stage writes and another reads. A stage that reads
//! another's output imports the row type from here, never from the writing stage.

pub mod contact_field;
pub mod ledger;
pub mod plan;
pub mod quiet_streak;
pub mod transform_outputs;

pub use contact_field::ContactField;
