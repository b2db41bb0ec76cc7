//! The record matcher: a table and a match model in, duplicate clusters (and scored pairs) out.
//! Shared by the transform stage (contacts of a run), `contactsync dedupe` (any CSV or Parquet
//! table), the migration (export rows against the location's contacts) and the micro-batch.
//!
//! `dedupe::run` runs the steps in order: `prepare` (dictionary-encoded, normalised columns over
//! the dictionaries of `encode`) → `block` (candidate pairs) → `estimate` (EM, priors, crowding) →
//! `score` (comparison levels from `compare`, Fellegi-Sunter weights) → `cluster` under
//! `cluster_guard`. `model` is the match model file, `io` reads input tables and writes results,
//! `tables::match_tables` matches contacts against incoming records. Values are compared in the
//! form `crate::normalize` gives them.

pub mod block;
pub mod cluster;
pub mod cluster_guard;
pub mod compare;
pub mod dedupe;
pub mod earlier_decisions;
pub mod encode;
pub mod estimate;
pub mod input_table;
pub mod io;
pub mod model;
pub mod prepare;
pub mod score;
pub mod tables;

pub use model::MatchModel;
pub use tables::match_tables;
