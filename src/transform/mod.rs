//! Transform: normalise, deduplicate and fuzzy-merge contacts, link SMS activity, decide the state
//! both systems should have.
//!
//! The stage (`stage::run_transform`) runs, in order: `inputs` (the extract's tables) and
//! `history` (what earlier runs saw) → `crate::normalize::contact_rows` → `merge` (the shared
//! matcher, `crate::matching`, over the contacts) → `survivorship` and `golden` → `link` →
//! `desired_state` → `trigger_input` and `triggers`. What the stage writes is described in
//! `snapshot::contract::transform_outputs`.

pub mod agency_routing;
pub mod confirm;
pub mod desired_state;
pub mod golden;
pub mod history;
pub mod inputs;
pub mod link;
pub mod merge;
pub mod reply_keywords;
pub mod stage;
pub mod survivorship;
pub mod trigger_input;
pub mod triggers;
pub mod workflows;

use serde::Deserialize;
use std::path::PathBuf;

/// `[transform]`: the match model and the desired-state rules.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformConfig {
    /// Match model file; `pipelines/models/contacts.toml` when unset.
    pub model: Option<PathBuf>,
    /// How each field of a merged contact is chosen among its duplicates.
    pub survivorship: golden::SurvivorshipConfig,
    /// Messaging triggers (welcome, reminder, digest) and activity notes.
    pub triggers: triggers::TriggersConfig,
    /// Message workflows: reply tasks, delivery-failure tasks, SMS status.
    pub workflows: workflows::WorkflowsConfig,
}
