//! Matching a micro-batch's new contacts against the last acting run's clusters: their
//! neighbourhood in its snapshot, not the whole location.

use crate::normalize;
use crate::snapshot::contact::SnapshotContact;
use crate::snapshot::phone::digits;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Snapshot contacts besides the new contacts' neighbours that the matcher sees, so its
/// unsupervised estimates (u from random pairs, m by EM) rest on a population, not on a handful.
const MATCH_SAMPLE: usize = 2_000;
/// The contact fields the matcher compares (as [`crate::matching::match_tables`] names them).
const MATCH_FIELDS: [&str; 9] = [
    "first_name",
    "last_name",
    "email",
    "phone",
    "company_name",
    "city",
    "postal_code",
    "country",
    "source",
];

/// New contacts' fate after matching.
#[derive(Debug, Default)]
pub(super) struct Matched {
    /// New contact → the survivor of the existing cluster it joined.
    pub(super) duplicate_of: BTreeMap<String, String>,
    /// New contacts that matched only other new contacts.
    pub(super) held: HashSet<String>,
}

/// Matches the new contacts against their neighbourhood in the snapshot (contacts sharing a phone,
/// an email or a last name with one of them) plus an even sample of the rest, so the location is
/// not re-clustered: a new contact in a cluster with an existing one is a duplicate of that
/// cluster's survivor as the base run chose it.
pub(super) fn match_new_contacts(
    base: &[SnapshotContact],
    new: &[&SnapshotContact],
    survivor_of: &HashMap<String, String>,
    model: &crate::matching::MatchModel,
    region: normalize::Region,
) -> anyhow::Result<Matched> {
    let mut matched = Matched::default();
    if new.is_empty() {
        return Ok(matched);
    }
    let keys = |c: &SnapshotContact| -> Vec<String> {
        let mut keys = Vec::new();
        if let Some(p) = c.field("phone") {
            let d = digits(p);
            if d.len() >= 7 {
                keys.push(format!("p:{}", &d[d.len() - 7..]));
            }
        }
        if let Some(e) = c.field("email") {
            keys.push(format!("e:{}", e.trim().to_lowercase()));
        }
        if let Some(l) = c.field("last_name") {
            keys.push(format!("l:{}", l.trim().to_lowercase()));
        }
        keys
    };
    let wanted: HashSet<String> = new.iter().flat_map(|c| keys(c)).collect();
    let stride = (base.len() / MATCH_SAMPLE).max(1);
    let existing: Vec<SnapshotContact> = base
        .iter()
        .enumerate()
        .filter(|(i, c)| i % stride == 0 || keys(c).iter().any(|k| wanted.contains(k)))
        .map(|(_, c)| c.clone())
        .collect();
    let fields: Vec<BTreeMap<&'static str, String>> = new
        .iter()
        .map(|c| {
            MATCH_FIELDS
                .iter()
                .filter_map(|f| c.field(f).map(|v| (*f, v.to_string())))
                .collect()
        })
        .collect();
    let incoming: Vec<(String, &BTreeMap<&'static str, String>)> = new
        .iter()
        .zip(&fields)
        .map(|(c, f)| (format!("new:{}", c.id), f))
        .collect();
    let clusters = crate::matching::match_tables(&existing, &incoming, model, region)?;
    for rows in clusters {
        let (old, fresh): (Vec<usize>, Vec<usize>) =
            rows.into_iter().partition(|&r| r < existing.len());
        if fresh.is_empty() {
            continue;
        }
        let survivor = old.first().map(|&r| {
            let id = &existing[r].id;
            survivor_of.get(id).cloned().unwrap_or_else(|| id.clone())
        });
        let only_new_together = fresh.len() > 1;
        for r in fresh {
            let id = new[r - existing.len()].id.clone();
            match &survivor {
                Some(s) => {
                    matched.duplicate_of.insert(id, s.clone());
                }
                None if only_new_together => {
                    matched.held.insert(id);
                }
                // Alone in its cluster: no duplicate of anything.
                None => {}
            }
        }
    }
    Ok(matched)
}
