//! Transform: normalise, deduplicate and fuzzy-merge contacts, link SMS activity, decide the state
//! both systems should have.
//!
//! The stage (`stage::run_transform`) runs, in order: `inputs` (the extract's tables) and
//! `history` (what earlier runs saw) → `normalize` → `merge` (the deduper over the contacts) →
//! `survivorship` and `golden` → `link` → `desired_state` → `trigger_input` and `triggers`. The
//! deduper (`dedupe::run`, also behind `contactsync dedupe` and `match_tables`) runs `prepare` →
//! `block` → `estimate` → `score` → `cluster` under `cluster_guard`, comparing values with
//! `compare` over the dictionaries of `encode`. What the stage writes is described in
//! `snapshot::contract::transform_outputs`.

pub mod agency_routing;
pub mod block;
pub mod cluster;
pub mod cluster_guard;
pub mod compare;
pub mod confirm;
pub mod dedupe;
pub mod desired_state;
pub mod encode;
pub mod estimate;
pub mod golden;
pub mod history;
pub mod input_table;
pub mod inputs;
pub mod io;
pub mod link;
pub mod matching;
pub mod merge;
pub mod model;
pub mod normalize;
pub mod prepare;
pub mod reply_keywords;
pub mod score;
pub mod stage;
pub mod survivorship;
pub mod trigger_input;
pub mod triggers;
pub mod workflows;

pub use matching::match_tables;
pub use model::MatchModel;

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
