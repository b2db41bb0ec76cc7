//! One table of contacts matched against another with a match model: the entry point for callers
//! that hold contacts and incoming records rather than a table (the migration, the micro-batch),
//! which need the clusters and nothing of the deduper's insides.

use super::dedupe::{self, InputTable};
use super::encode::TextColumn;
use super::model::MatchModel;
use crate::normalize::Region;
use crate::snapshot::contact::SnapshotContact;
use std::collections::{BTreeMap, HashMap};

/// The model's column of each contact field.
const COLUMNS: [(&str, &str); 9] = [
    ("first_name", "first_name"),
    ("last_name", "last_name"),
    ("email", "email"),
    ("phone", "phone"),
    ("company", "company_name"),
    ("city", "city"),
    ("postal_code", "postal_code"),
    ("country", "country"),
    ("source", "source"),
];

/// Deduplicates `incoming` records (an id unique among them, and values by contact field name)
/// against the `existing` contacts and each other with `model`. Returns the clusters in the order
/// of their ids (an existing contact's id is `ghl:<contact id>`), each as its rows: `existing`
/// numbered from 0, then `incoming` from `existing.len()`.
pub fn match_tables(
    existing: &[SnapshotContact],
    incoming: &[(String, &BTreeMap<&'static str, String>)],
    model: &MatchModel,
    region: Region,
) -> anyhow::Result<Vec<Vec<usize>>> {
    let mut table = InputTable {
        ids: existing
            .iter()
            .map(|c| format!("ghl:{}", c.id))
            .chain(incoming.iter().map(|(id, _)| id.clone()))
            .collect(),
        columns: HashMap::new(),
    };
    for (column, field) in COLUMNS {
        let values: TextColumn = existing
            .iter()
            .map(|c| c.field(field))
            .chain(
                incoming
                    .iter()
                    .map(|(_, fields)| fields.get(field).map(String::as_str)),
            )
            .collect();
        table.columns.insert(column.to_string(), values);
    }
    let result = dedupe::run(model, table, region, 42, dedupe::KeepPairs::Nothing)?;
    let mut clusters: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, a) in result.assignments.iter().enumerate() {
        clusters.entry(a.cluster_id.as_str()).or_default().push(i);
    }
    Ok(clusters.into_values().collect())
}
