//! Survivorship: which record of a duplicate cluster survives, the golden record of the cluster
//! (each field chosen among the members by the survivorship rules), the update that gives the
//! survivor its golden values, and the contacts as the next run will see them once the merge is
//! written.

use super::golden::{self, GoldenRecord, SurvivorshipConfig};
use super::history::PreviousContacts;
use crate::matching::dedupe::DedupeResult;
use crate::normalize::Region;
use crate::snapshot::contact::SnapshotContact;
use crate::snapshot::contract::ContactField;
use crate::snapshot::desired::{DUPLICATE_TAG, DesiredContact};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Rows of each cluster, by cluster id (in id order, so the golden records come out sorted).
pub fn cluster_members(result: &DedupeResult) -> BTreeMap<&str, Vec<usize>> {
    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (row, a) in result.assignments.iter().enumerate() {
        members.entry(a.cluster_id.as_str()).or_default().push(row);
    }
    members
}

fn completeness(r: &SnapshotContact) -> usize {
    [
        &r.first_name,
        &r.last_name,
        &r.email,
        &r.phone,
        &r.company_name,
        &r.city,
        &r.postal_code,
    ]
    .iter()
    .filter(|v| v.as_deref().is_some_and(|s| !s.trim().is_empty()))
    .count()
}

fn is_marked(c: &SnapshotContact) -> bool {
    c.tags.iter().any(|t| t == DUPLICATE_TAG)
}

/// Survivor of each cluster (cluster id → contact id): a record not already marked as a duplicate,
/// then the previous run's survivor, then the most complete, then the most recently updated.
/// Marked records rank last so that our own tagging (which bumps their dateUpdated) never flips
/// the survivor on the next run; a survivor once chosen stays, so a load that stopped halfway (its
/// tag or DND writes bumping one record's dateUpdated but not its duplicate's) does not make the
/// next run pick the other one.
pub fn pick_survivors(
    contacts: &[SnapshotContact],
    members: &BTreeMap<&str, Vec<usize>>,
    previous: &HashSet<String>,
) -> HashMap<String, String> {
    members
        .iter()
        .map(|(cluster, rows)| {
            let best = rows
                .iter()
                .max_by(|&&a, &&b| {
                    (!is_marked(&contacts[a]))
                        .cmp(&!is_marked(&contacts[b]))
                        .then(
                            previous
                                .contains(&contacts[a].id)
                                .cmp(&previous.contains(&contacts[b].id)),
                        )
                        .then(completeness(&contacts[a]).cmp(&completeness(&contacts[b])))
                        .then(contacts[a].date_updated.cmp(&contacts[b].date_updated))
                        .then(contacts[b].id.cmp(&contacts[a].id))
                })
                .expect("clusters are not empty");
            (cluster.to_string(), contacts[*best].id.clone())
        })
        .collect()
}

/// A contact as the golden record sees it.
fn golden_member(c: &SnapshotContact) -> golden::Member {
    golden::Member {
        id: c.id.clone(),
        source: c.source.clone(),
        // A duplicate's own time counts, as any member's: `with_data_times` has already undone
        // the bump our tag gave it. Ignoring marked records' times made golden values depend on
        // how far a load got: a load that tagged the duplicate but stopped before filling the
        // survivor left the survivor's older value to win the next night.
        date_updated: c.date_updated.clone(),
        values: ContactField::GOLDEN
            .into_iter()
            .map(|f| (f.name(), f.of_contact(c).clone()))
            .collect(),
    }
}

/// The contacts as the next run will read them once this run's merge is written: survivors hold
/// their golden values (all but email and phone, which are never moved, and the company, which an
/// update cannot write) and keep their data times (the next run reads our fill as no change of
/// data), duplicates carry the duplicate tag.
pub fn after_merge(
    contacts: &[SnapshotContact],
    result: &DedupeResult,
    survivorship: &SurvivorshipConfig,
    region: Region,
    previous: &HashSet<String>,
) -> Vec<SnapshotContact> {
    let members = cluster_members(result);
    let survivors = pick_survivors(contacts, &members, previous);
    let mut next = contacts.to_vec();
    for (cluster, rows) in members.iter().filter(|(_, rows)| rows.len() > 1) {
        let survivor_id = &survivors[*cluster];
        let group: Vec<golden::Member> =
            rows.iter().map(|&r| golden_member(&contacts[r])).collect();
        let record = golden::merge(cluster, survivor_id, &group, survivorship, region);
        for &r in rows {
            let c = &mut next[r];
            if &c.id == survivor_id {
                // Only what an update writes (not the company, which `PUT /contacts/{id}`
                // cannot change), and never email or phone, so the next run sees what load
                // leaves.
                // Its time stays: the next run reads our fill as no change of data.
                for field in golden_update_fields() {
                    if let Some(v) = record.get(field.name()) {
                        *field.of_contact_mut(c) = Some(v.to_string());
                    }
                }
            } else if !is_marked(c) {
                c.tags.push(DUPLICATE_TAG.to_string());
            }
        }
    }
    next
}

/// The contacts with `date_updated` set to when their data last changed: a contact whose data
/// fields equal the previous snapshot's, or what the previous run's golden fill made of them,
/// keeps the previous data time. GHL moves `dateUpdated` on any write, our own tags, DND and fills
/// included, so without this the records a load happened to write last would look freshest and
/// flip the next run's golden values, and which ones those are depends on how far a load got.
pub fn with_data_times(
    contacts: &[SnapshotContact],
    previous: &PreviousContacts,
) -> Vec<SnapshotContact> {
    contacts
        .iter()
        .map(|c| {
            let mut c = c.clone();
            if let Some(p) = previous.read.get(&c.id)
                && (same_data(&c, p)
                    || previous.filled.get(&c.id).is_some_and(|f| same_data(&c, f)))
            {
                c.date_updated = p.date_updated.clone();
            }
            c
        })
        .collect()
}

/// True when two versions of a contact hold the same data (tags, DND and dates aside).
pub fn same_data(a: &SnapshotContact, b: &SnapshotContact) -> bool {
    ContactField::ALL
        .iter()
        .all(|f| a.field(f.name()) == b.field(f.name()))
}

/// The golden fields an update gives a survivor: those an update can write, but never email or
/// phone (identity keys) — the table `after_merge` predicts the next run with.
fn golden_update_fields() -> impl Iterator<Item = ContactField> {
    ContactField::GOLDEN
        .into_iter()
        .filter(|f| f.update_can_write() && !f.is_identity())
}

/// The golden records of the clusters with duplicates, and the updates that give each survivor
/// the golden values it lacks.
pub struct Goldens {
    pub records: Vec<GoldenRecord>,
    /// One per survivor with a field to change, in cluster order.
    pub updates: Vec<DesiredContact>,
    /// Fields whose members disagree, over all clusters.
    pub field_conflicts: u64,
}

/// Golden records of clusters with duplicates; the survivor takes the golden values.
pub fn golden_records(
    contacts: &[SnapshotContact],
    members: &BTreeMap<&str, Vec<usize>>,
    survivor_of: &HashMap<&str, &str>,
    survivorship: &SurvivorshipConfig,
    region: Region,
) -> Goldens {
    let mut goldens = Goldens {
        records: Vec::new(),
        updates: Vec::new(),
        field_conflicts: 0,
    };
    for (cluster, rows) in members.iter().filter(|(_, rows)| rows.len() > 1) {
        let survivor_id = survivor_of[cluster];
        let group: Vec<golden::Member> =
            rows.iter().map(|&r| golden_member(&contacts[r])).collect();
        let record = golden::merge(cluster, survivor_id, &group, survivorship, region);
        goldens.field_conflicts += record.conflicts.len() as u64;
        let survivor = group
            .iter()
            .find(|m| m.id == survivor_id)
            .expect("the survivor is a member");
        let mut update = DesiredContact {
            contact_id: Some(survivor_id.to_string()),
            reason: format!("golden record of {} merged contacts", group.len()),
            ..DesiredContact::default()
        };
        let mut changed = false;
        // Email and phone are identity keys: moving one onto the survivor while the duplicate
        // still holds it collides with GHL's duplicate rule, so they stay in golden.parquet only.
        for contact_field in ContactField::GOLDEN
            .into_iter()
            .filter(|f| !f.is_identity())
        {
            let field = &contact_field.name();
            let Some(want) = record.get(field) else {
                continue;
            };
            let have = survivor
                .values
                .get(field)
                .cloned()
                .flatten()
                .unwrap_or_default();
            // Phones are not among these fields, so no country is needed to read them.
            if golden::comparison_key(field, want, None, region)
                == golden::comparison_key(field, &have, None, region)
            {
                continue;
            }
            *contact_field.of_desired_mut(&mut update) = Some(want.to_string());
            changed = true;
        }
        if changed {
            goldens.updates.push(update);
        }
        goldens.records.push(record);
    }
    goldens
}

/// Adds to `goldens.updates` what the predicted runs before the last wrote (see
/// `merge::cluster_contacts`): a survivor filled by an earlier round keeps those values even
/// when a later round made it a duplicate, so this run writes them too, and the next run reads
/// the table the clusters were predicted on. The last round's golden values win where both set a
/// field. `original` and `predicted` hold the same contacts in the same order.
pub fn add_predicted_fills(
    goldens: &mut Goldens,
    original: &[SnapshotContact],
    predicted: &[SnapshotContact],
    region: Region,
) {
    // Survivors' updates by contact id: a table of a million contacts has thousands of them.
    let mut update_of: HashMap<String, usize> = goldens
        .updates
        .iter()
        .enumerate()
        .filter_map(|(at, u)| Some((u.contact_id.clone()?, at)))
        .collect();
    for (was, will) in original.iter().zip(predicted) {
        let filled: Vec<(ContactField, &str)> = golden_update_fields()
            .filter_map(|field| {
                let want = field.of_contact(will).as_deref()?;
                let have = field.of_contact(was).as_deref().unwrap_or_default();
                let key = |v: &str| golden::comparison_key(field.name(), v, None, region);
                (key(want) != key(have)).then_some((field, want))
            })
            .collect();
        if filled.is_empty() {
            continue;
        }
        let at = match update_of.get(&will.id) {
            Some(&at) => at,
            None => {
                goldens.updates.push(DesiredContact {
                    contact_id: Some(will.id.clone()),
                    reason: "golden record of the cluster it survived before joining a larger one"
                        .into(),
                    ..DesiredContact::default()
                });
                update_of.insert(will.id.clone(), goldens.updates.len() - 1);
                goldens.updates.len() - 1
            }
        };
        for (field, value) in filled {
            let slot = field.of_desired_mut(&mut goldens.updates[at]);
            if slot.is_none() {
                *slot = Some(value.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(id: &str, updated: &str) -> SnapshotContact {
        SnapshotContact {
            id: id.into(),
            first_name: Some("Jun".into()),
            last_name: Some("Xu".into()),
            email: Some("junxu70@gmail.com".into()),
            date_updated: Some(updated.into()),
            ..SnapshotContact::default()
        }
    }

    #[test]
    fn a_survivor_once_chosen_stays_when_a_half_applied_load_bumps_its_duplicate() {
        // The duplicate-to-be was written to last (an opt-out tag, before the load stopped), so
        // it is now the most recently updated.
        let contacts = vec![
            contact("la", "2026-11-25T09:00:00Z"),
            contact("chicago", "2026-11-25T09:05:00Z"),
        ];
        let members = BTreeMap::from([("c", vec![0, 1])]);
        let fresh = pick_survivors(&contacts, &members, &HashSet::new());
        assert_eq!(fresh["c"], "chicago", "without history: the most recent");
        let previous = HashSet::from(["la".to_string()]);
        assert_eq!(pick_survivors(&contacts, &members, &previous)["c"], "la");
    }

    /// Issue 18, item 15: a load that tagged the duplicate "James" and stopped before filling the
    /// survivor "Jsmes" plans the same fill the next night as a load that finished would have.
    #[test]
    fn a_half_applied_merge_gets_the_same_golden_values_the_next_night() {
        let mut survivor = contact("jsmes", "2026-01-10T09:00:00Z");
        survivor.first_name = Some("Jsmes".into());
        let mut duplicate = contact("james", "2026-06-01T09:00:00Z");
        duplicate.first_name = Some("James".into());
        let members = BTreeMap::from([("c", vec![0, 1])]);
        let survivor_of = HashMap::from([("c", "jsmes")]);
        let fills = |contacts: &[SnapshotContact]| -> Vec<Option<String>> {
            golden_records(
                contacts,
                &members,
                &survivor_of,
                &SurvivorshipConfig::default(),
                crate::normalize::region("US"),
            )
            .updates
            .into_iter()
            .map(|u| u.first_name)
            .collect()
        };
        let first_night = vec![survivor.clone(), duplicate.clone()];
        assert_eq!(fills(&first_night), vec![Some("James".to_string())]);
        // The load tagged the duplicate (GHL moved its dateUpdated) and stopped.
        let previous = PreviousContacts {
            read: HashMap::from([
                ("jsmes".to_string(), survivor.clone()),
                ("james".to_string(), duplicate.clone()),
            ]),
            filled: HashMap::new(),
        };
        let mut tagged = duplicate;
        tagged.tags.push(DUPLICATE_TAG.to_string());
        tagged.date_updated = Some("2026-12-06T23:10:00Z".into());
        let next_night = with_data_times(&[survivor, tagged], &previous);
        assert_eq!(fills(&next_night), vec![Some("James".to_string())]);
    }

    #[test]
    fn only_a_change_of_data_makes_a_record_more_recent() {
        let before = contact("chicago", "2026-11-24T09:00:00Z");
        let previous = PreviousContacts {
            read: HashMap::from([("chicago".to_string(), before.clone())]),
            filled: HashMap::new(),
        };
        // Tagged since (by us): same data, newer dateUpdated → the data's time stands.
        let mut tagged = contact("chicago", "2026-11-25T09:05:00Z");
        tagged.tags.push("sms:opted-out".into());
        assert_eq!(
            with_data_times(&[tagged], &previous)[0]
                .date_updated
                .as_deref(),
            Some("2026-11-24T09:00:00Z")
        );
        // Moved city since: a change of data, the new time counts.
        let mut moved = contact("chicago", "2026-11-25T09:05:00Z");
        moved.city = Some("Denver".into());
        assert_eq!(
            with_data_times(&[moved], &previous)[0]
                .date_updated
                .as_deref(),
            Some("2026-11-25T09:05:00Z")
        );
    }
}
