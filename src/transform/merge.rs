//! The snapshot's contacts deduplicated: the match model run over the contact table, repeated
//! on the contacts as the merge will leave them until the clusters agree with the next run's.

use super::golden::SurvivorshipConfig;
use super::history::EarlierPairs;
use super::survivorship::{after_merge, cluster_members, pick_survivors, same_data};
use crate::matching::dedupe::{self, DedupeResult, InputTable};
use crate::matching::earlier_decisions::EarlierDecisions;
use crate::matching::encode::TextColumn;
use crate::matching::model::MatchModel;
use crate::normalize::Region;
use crate::snapshot::contact::SnapshotContact;
use std::collections::{HashMap, HashSet};

/// The clusters of `contacts` as this run writes them, the table they were found on, and the
/// contacts its survivors are picked from first.
pub struct Clustered {
    pub result: DedupeResult,
    /// The contacts as the merges of the predicted runs before the last leave them (rows in the
    /// input's order): survivors hold their golden values, duplicates carry the duplicate tag.
    /// Equal to the input when the first clusters already agree with the next run's.
    pub predicted: Vec<SnapshotContact>,
    /// The previous run's survivors and those of every predicted round: a survivor once chosen
    /// stays, in this run as in the next.
    pub preferred_survivors: HashSet<String>,
}

/// Rounds of prediction at most: each is one more dedupe of the whole table.
const MAX_PREDICTION_ROUNDS: usize = 4;

/// Merging changes records: the survivor takes its golden values and duplicates get tagged, and
/// a changed record can match another one on the next run ("A. Koch" filled to "Ahmed Koch"
/// matches "Koch Ahmed"). So the following runs are played here, each on the table the one
/// before leaves, until the clusters stop changing; this run then plans what those runs would
/// write, and a nightly run on unchanged data finds nothing left to do. Two rules keep the play
/// true to what GHL will hold: values written stay (a survivor filled by one round keeps them
/// when a later round makes it a duplicate), and survivors are picked as the next run picks
/// them, those already chosen first; otherwise a cluster grown by a round could elect a new
/// survivor whose values undo the match that grew it, and rounds would swing between two
/// partitions. `by_data_time` are the contacts dated by their last change of data
/// (survivorship reads it), `previous_survivors` the survivors of the last run, `earlier` its
/// pair decisions: a borderline pair of records unchanged since keeps its decision
/// ([`DECISION_MARGIN_BITS`]).
pub fn cluster_contacts(
    contacts: &[SnapshotContact],
    by_data_time: &[SnapshotContact],
    previous_survivors: &HashSet<String>,
    earlier: Option<&EarlierPairs<'_>>,
    model: &MatchModel,
    survivorship: &SurvivorshipConfig,
    region: Region,
) -> anyhow::Result<Clustered> {
    let mut result = dedupe_contacts(contacts, earlier, model, region)?;
    let mut table = by_data_time.to_vec();
    let mut preferred = previous_survivors.clone();
    for round in 1..=MAX_PREDICTION_ROUNDS {
        let members = cluster_members(&result);
        preferred.extend(
            pick_survivors(&table, &members, &preferred)
                .into_iter()
                .filter(|(cluster, _)| members[cluster.as_str()].len() > 1)
                .map(|(_, survivor)| survivor),
        );
        let next_table = after_merge(&table, &result, survivorship, region, &preferred);
        let next = dedupe_contacts(&next_table, earlier, model, region)?;
        let (now, predicted) = (partition(&result), partition(&next));
        let moved = now.iter().zip(&predicted).filter(|(a, b)| a != b).count();
        tracing::debug!(round, moved, "dedupe prediction round");
        if moved == 0 {
            break;
        }
        if round == MAX_PREDICTION_ROUNDS {
            tracing::warn!(
                moved,
                "duplicate clusters still change after {MAX_PREDICTION_ROUNDS} predicted runs; \
                 the next run goes on from these"
            );
        }
        result = next;
        table = next_table;
    }
    Ok(Clustered {
        result,
        predicted: table,
        preferred_survivors: preferred,
    })
}

/// How far (in bits of match weight) a pair of unchanged records may score from the threshold and
/// keep the last run's decision. A night's re-estimated weights move a field by a tenth of a bit
/// or so (a postcode agreement went from 3.91 to 3.98 bits when the first run's creates changed
/// the table); half a bit is the band p 0.86–0.93 around a 0.9 threshold. A pair whose records
/// change, or whose score moves past the band, is decided afresh.
pub const DECISION_MARGIN_BITS: f64 = 0.5;

/// The contact table in the dedupe's column names, deduplicated; borderline pairs of records
/// unchanged since `earlier` keep its decisions.
fn dedupe_contacts(
    contacts: &[SnapshotContact],
    earlier: Option<&EarlierPairs<'_>>,
    model: &MatchModel,
    region: Region,
) -> anyhow::Result<DedupeResult> {
    let decisions = earlier.map(|e| {
        let unchanged = contacts
            .iter()
            .filter(|c| e.contacts.get(&c.id).is_some_and(|p| same_data(c, p)))
            .map(|c| c.id.clone())
            .collect();
        EarlierDecisions::new(DECISION_MARGIN_BITS, &e.accepted, unchanged)
    });
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
    dedupe::run_remembering(
        model,
        table,
        region,
        42,
        dedupe::KeepPairs::AtLeast(PAIRS_MIN_PROBABILITY),
        decisions.as_ref(),
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
