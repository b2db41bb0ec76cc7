//! The snapshot's contacts deduplicated: the match model run over the contact table, repeated
//! on the contacts as the merge will leave them until the clusters agree with the next run's.

use super::golden::SurvivorshipConfig;
use super::survivorship::after_merge;
use crate::matching::dedupe::{self, DedupeResult, InputTable};
use crate::matching::encode::TextColumn;
use crate::matching::model::MatchModel;
use crate::normalize::Region;
use crate::snapshot::contact::SnapshotContact;
use std::collections::{HashMap, HashSet};

/// The clusters of `contacts` as this run writes them. Merging changes records: the survivor
/// takes its golden values and duplicates get tagged, and a changed record can match another one
/// on the next run. That run is predicted here (at most twice) so this run already reaches the
/// clusters the next one will agree with. `by_data_time` are the contacts dated by their last
/// change of data (survivorship reads it), `previous_survivors` the survivors of the last run.
pub fn cluster_contacts(
    contacts: &[SnapshotContact],
    by_data_time: &[SnapshotContact],
    previous_survivors: &HashSet<String>,
    model: &MatchModel,
    survivorship: &SurvivorshipConfig,
    region: Region,
) -> anyhow::Result<DedupeResult> {
    let mut result = dedupe_contacts(contacts, model, region)?;
    for _ in 0..2 {
        let next_table = after_merge(
            by_data_time,
            &result,
            survivorship,
            region,
            previous_survivors,
        );
        let next = dedupe_contacts(&next_table, model, region)?;
        if partition(&next) == partition(&result) {
            break;
        }
        result = next;
    }
    Ok(result)
}

/// The contact table in the dedupe's column names.
fn dedupe_contacts(
    contacts: &[SnapshotContact],
    model: &MatchModel,
    region: Region,
) -> anyhow::Result<DedupeResult> {
    let col = |f: fn(&SnapshotContact) -> &Option<String>| -> TextColumn {
        contacts.iter().map(|c| f(c).as_deref()).collect()
    };
    let table = InputTable {
        ids: contacts.iter().map(|c| c.id.clone()).collect(),
        columns: HashMap::from([
            ("first_name".to_string(), col(|c| &c.first_name)),
            ("last_name".to_string(), col(|c| &c.last_name)),
            ("email".to_string(), col(|c| &c.email)),
            ("phone".to_string(), col(|c| &c.phone)),
            ("company".to_string(), col(|c| &c.company_name)),
            ("city".to_string(), col(|c| &c.city)),
            ("postal_code".to_string(), col(|c| &c.postal_code)),
            ("country".to_string(), col(|c| &c.country)),
            ("source".to_string(), col(|c| &c.source)),
        ]),
    };
    // pairs.parquet holds the pairs worth reading (accepted, and rejected ones with some evidence
    // for them), not every candidate pair.
    dedupe::run(
        model,
        table,
        region,
        42,
        dedupe::KeepPairs::AtLeast(PAIRS_MIN_PROBABILITY),
    )
}

/// Scored pairs below this probability are left out of `pairs.parquet`.
const PAIRS_MIN_PROBABILITY: f64 = 0.01;

/// Each row's cluster as the smallest row index in it: equal partitions compare equal whatever
/// member names the cluster.
fn partition(result: &DedupeResult) -> Vec<usize> {
    let mut first: HashMap<&str, usize> = HashMap::new();
    result
        .assignments
        .iter()
        .enumerate()
        .map(|(row, a)| *first.entry(a.cluster_id.as_str()).or_insert(row))
        .collect()
}
