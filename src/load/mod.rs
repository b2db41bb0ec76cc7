//! Load: diff the desired state against the snapshots, write a reviewable plan, apply it exactly once.

pub mod apply;
pub mod diff;
pub mod ledger;
pub mod plan;
pub mod plan_io;

use serde::Deserialize;

/// `[load]`: safety limits and apply options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadConfig {
    /// Most contacts a run may create.
    pub max_creates: u64,
    /// Most contacts a run may delete.
    pub max_deletes: u64,
    /// Most SMS a run may send.
    pub max_sends: u64,
    /// What to do with a duplicate: "tag" (tag and note pointing at the survivor) or "delete".
    pub merge: MergeMode,
    /// Operations in flight at once.
    pub concurrency: usize,
}

/// How duplicates are resolved in GHL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeMode {
    /// Tag the duplicate and note the survivor's id; nothing is deleted.
    Tag,
    /// Delete the duplicate after tagging the survivor.
    Delete,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            max_creates: 500,
            max_deletes: 0,
            max_sends: 1_000,
            merge: MergeMode::Tag,
            concurrency: 8,
        }
    }
}
