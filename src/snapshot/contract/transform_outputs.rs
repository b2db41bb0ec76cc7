//! The files the transform stage writes under `transform/` and the load and audit stages read:
//! one row type and one Arrow schema per Parquet file, and the stage's summary.

use super::ContactField;
use arrow::datatypes::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `transform/clusters.parquet`: each contact's duplicate cluster and its survivor.
pub const CLUSTERS_FILE: &str = "clusters.parquet";
/// `transform/pairs.parquet`: scored pairs worth reading, with each one's decision (`accepted`)
/// and the weight every field gave it; the next run holds borderline decisions from it.
pub const PAIRS_FILE: &str = "pairs.parquet";
/// `transform/normalized.parquet`: the contact table as the matcher compared it.
pub const NORMALIZED_FILE: &str = "normalized.parquet";
/// `transform/golden.parquet`: the merged record of each cluster with duplicates.
pub const GOLDEN_FILE: &str = "golden.parquet";
/// `transform/links.parquet`: SMS activity per number and the contacts that have it.
pub const LINKS_FILE: &str = "links.parquet";
/// `transform/summary.json`: counts of what the stage produced; written last.
pub const SUMMARY_FILE: &str = "summary.json";

/// One row of `transform/links.parquet`: a number's SMS activity and the contacts it belongs to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LinkRow {
    /// E.164 digits without `+`.
    pub phone: String,
    #[serde(default)]
    pub contact_ids: Vec<String>,
    pub sent: u64,
    pub received: u64,
    pub failed: u64,
    pub last_sent_at: Option<String>,
    pub last_received_at: Option<String>,
    pub opted_out: bool,
}

pub fn links_schema() -> Arc<Schema> {
    let list = |n: &str| {
        Field::new(
            n,
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        )
    };
    Arc::new(Schema::new(vec![
        Field::new("phone", DataType::Utf8, false),
        list("contact_ids"),
        Field::new("sent", DataType::UInt64, false),
        Field::new("received", DataType::UInt64, false),
        Field::new("failed", DataType::UInt64, false),
        Field::new("last_sent_at", DataType::Utf8, true),
        Field::new("last_received_at", DataType::Utf8, true),
        Field::new("opted_out", DataType::Boolean, false),
    ]))
}

/// One row of `transform/clusters.parquet`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClusterRow {
    pub id: String,
    pub cluster_id: String,
    /// The best accepted probability linking the row into its cluster; `None` for a singleton.
    pub match_probability: Option<f64>,
    /// The cluster's surviving contact (the row's own id when it survives).
    pub survivor_id: String,
}

pub fn clusters_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("cluster_id", DataType::Utf8, false),
        Field::new("match_probability", DataType::Float64, true),
        Field::new("survivor_id", DataType::Utf8, false),
    ]))
}

/// One row of `transform/normalized.parquet`: what the matcher compared.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NormalizedRow {
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub email_match_key: Option<String>,
    pub phone_raw: Option<String>,
    pub phone_e164: Option<String>,
    /// The phone did not parse: kept, flagged, compared by its digits.
    pub phone_unparsed: bool,
    pub company: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    /// When the contact's data last changed: its `dateUpdated`, with the bumps of our own writes
    /// (tags, DND, duplicate marks) undone. The next run's survivorship starts from it, so a bump
    /// undone once stays undone. `None` in files written before it was kept.
    pub data_updated: Option<String>,
}

pub fn normalized_schema() -> Arc<Schema> {
    let s = |n: &str| Field::new(n, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        s("first_name"),
        s("last_name"),
        s("email"),
        s("email_match_key"),
        s("phone_raw"),
        s("phone_e164"),
        Field::new("phone_unparsed", DataType::Boolean, false),
        s("company"),
        s("city"),
        s("postal_code"),
        s("country"),
        s("data_updated"),
    ]))
}

pub fn golden_schema() -> Arc<Schema> {
    let s = |n: &str| Field::new(n, DataType::Utf8, true);
    let list = |n: &str| {
        Field::new(
            n,
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        )
    };
    Arc::new(Schema::new(vec![
        Field::new("cluster_id", DataType::Utf8, false),
        Field::new("survivor_id", DataType::Utf8, false),
        list("member_ids"),
        s("first_name"),
        s("last_name"),
        s("email"),
        s("phone"),
        s("company_name"),
        s("city"),
        s("postal_code"),
        s("country"),
        list("provenance"),
        list("conflicts"),
    ]))
}

/// A merged record (`transform/golden.parquet`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GoldenRecord {
    pub cluster_id: String,
    pub survivor_id: String,
    #[serde(default)]
    pub member_ids: Vec<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company_name: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    /// `field=member id` for each chosen value: where the golden value came from.
    #[serde(default)]
    pub provenance: Vec<String>,
    /// `field: value | value` for each field whose members disagree.
    #[serde(default)]
    pub conflicts: Vec<String>,
}

impl GoldenRecord {
    /// The golden value of a field, by its snapshot name (`None` for a name that is not one of
    /// [`ContactField::GOLDEN`]).
    pub fn get(&self, field: &str) -> Option<&str> {
        ContactField::from_name(field)
            .and_then(|f| self.slot(f))
            .and_then(|slot| slot.as_deref())
    }

    /// Sets the golden value of a field (a name not of a golden field is ignored).
    pub fn set(&mut self, field: &str, value: Option<String>) {
        if let Some(slot) = ContactField::from_name(field).and_then(|f| self.slot_mut(f)) {
            *slot = value;
        }
    }

    fn slot(&self, field: ContactField) -> Option<&Option<String>> {
        Some(match field {
            ContactField::FirstName => &self.first_name,
            ContactField::LastName => &self.last_name,
            ContactField::Email => &self.email,
            ContactField::Phone => &self.phone,
            ContactField::CompanyName => &self.company_name,
            ContactField::City => &self.city,
            ContactField::PostalCode => &self.postal_code,
            ContactField::Country => &self.country,
            ContactField::Source => return None,
        })
    }

    fn slot_mut(&mut self, field: ContactField) -> Option<&mut Option<String>> {
        Some(match field {
            ContactField::FirstName => &mut self.first_name,
            ContactField::LastName => &mut self.last_name,
            ContactField::Email => &mut self.email,
            ContactField::Phone => &mut self.phone,
            ContactField::CompanyName => &mut self.company_name,
            ContactField::City => &mut self.city,
            ContactField::PostalCode => &mut self.postal_code,
            ContactField::Country => &mut self.country,
            ContactField::Source => return None,
        })
    }
}

/// What the stage produced (`transform/summary.json`). Fields a reader does not find default to 0.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct TransformSummary {
    pub contacts: u64,
    pub duplicate_clusters: u64,
    pub duplicates_marked: u64,
    pub linked_numbers: u64,
    pub opted_out_numbers: u64,
    pub dnd_updates: u64,
    pub numbers_to_block: u64,
    pub lead_candidates: u64,
    pub candidate_pairs: u64,
    /// Borderline pairs of unchanged records that kept the last run's decision against their
    /// score this run.
    pub held_decisions: u64,
    pub golden_updates: u64,
    pub field_conflicts: u64,
    pub new_contacts: u64,
    pub messages_fired: u64,
    pub notes_fired: u64,
    /// 1 when this run was the location's first and the triggers only recorded a baseline.
    pub baseline: u64,
}
