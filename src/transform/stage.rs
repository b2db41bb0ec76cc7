//! The transform stage of a run: snapshot contacts → normalised table → duplicate clusters →
//! SMS activity linked to contacts → the desired state load will diff. Reads `extract/`, writes
//! `transform/` (Parquet), nothing else.

use super::TransformConfig;
use super::dedupe::{self, InputTable};
use super::encode::TextColumn;
use super::golden::{self, GoldenRecord};
use super::model::MatchModel;
use super::normalize;
use super::reply_keywords;
use super::triggers::{self, PreviousState, TriggerContact, TriggerMessage};
use crate::snapshot::contact::SnapshotContact;
pub use crate::snapshot::contract::transform_outputs::TransformSummary;
use crate::snapshot::contract::transform_outputs::{
    CLUSTERS_FILE, ClusterRow, GOLDEN_FILE, LINKS_FILE, LinkRow, NORMALIZED_FILE, NormalizedRow,
    SUMMARY_FILE, clusters_schema, golden_schema, links_schema, normalized_schema,
};
use crate::snapshot::desired::{
    DUPLICATE_TAG, DesiredBlocked, DesiredContact, desired_blocked_schema, desired_contacts_schema,
    desired_messages_schema, desired_notes_schema, read_rows, write_rows,
};
use crate::snapshot::phone::digits;
use crate::snapshot::run::{RunDir, list_runs};
use anyhow::Context;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// Tag put on contacts whose number opted out by SMS.
pub const OPTED_OUT_TAG: &str = "sms:opted-out";
/// Tag put on leads created from inbound SMS.
pub const SMS_LEAD_TAG: &str = "sms:lead";

#[derive(Debug, Clone, Default, Deserialize)]
struct MessageRowIn {
    id: u64,
    message_type: String,
    from: Option<String>,
    to: Option<String>,
    body: Option<String>,
    status_type: Option<String>,
    status_subtype: Option<String>,
    submission_date: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct BlockedRowIn {
    phone_number: String,
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

/// The contact table in the dedupe's column names.
fn dedupe_contacts(
    contacts: &[SnapshotContact],
    model: &MatchModel,
    region: normalize::Region,
) -> anyhow::Result<dedupe::DedupeResult> {
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
fn partition(result: &dedupe::DedupeResult) -> Vec<usize> {
    let mut first: HashMap<&str, usize> = HashMap::new();
    result
        .assignments
        .iter()
        .enumerate()
        .map(|(row, a)| *first.entry(a.cluster_id.as_str()).or_insert(row))
        .collect()
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
fn pick_survivors(
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
        // A record we marked as a duplicate is stale by definition: its values only fill fields
        // nobody else has, whatever its (bumped) update time says.
        date_updated: if is_marked(c) {
            None
        } else {
            c.date_updated.clone()
        },
        values: [
            ("first_name", c.first_name.clone()),
            ("last_name", c.last_name.clone()),
            ("email", c.email.clone()),
            ("phone", c.phone.clone()),
            ("company_name", c.company_name.clone()),
            ("city", c.city.clone()),
            ("postal_code", c.postal_code.clone()),
            ("country", c.country.clone()),
        ]
        .into_iter()
        .collect(),
    }
}

/// The contacts as the next run will read them once this run's merge is written: survivors hold
/// their golden values (all but email and phone, which are never moved, and the company, which an
/// update cannot write) and are the most recently updated, duplicates carry the duplicate tag.
fn after_merge(
    contacts: &[SnapshotContact],
    result: &dedupe::DedupeResult,
    survivorship: &golden::SurvivorshipConfig,
    region: normalize::Region,
    previous: &HashSet<String>,
) -> Vec<SnapshotContact> {
    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (row, a) in result.assignments.iter().enumerate() {
        members.entry(a.cluster_id.as_str()).or_default().push(row);
    }
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
                // Not the company: `PUT /contacts/{id}` cannot change it, so the next run will
                // not see the golden one either.
                for (field, slot) in [
                    ("first_name", &mut c.first_name),
                    ("last_name", &mut c.last_name),
                    ("city", &mut c.city),
                    ("postal_code", &mut c.postal_code),
                    ("country", &mut c.country),
                ] {
                    if let Some(v) = record.get(field) {
                        *slot = Some(v.to_string());
                    }
                }
                c.date_updated = Some("9999-12-31T00:00:00Z".into());
            } else if !is_marked(c) {
                c.tags.push(DUPLICATE_TAG.to_string());
            }
        }
    }
    next
}

/// Runs the stage on a run whose extract finished.
pub fn run_transform(
    run: &RunDir,
    model: &MatchModel,
    default_region: &str,
    config: &TransformConfig,
) -> anyhow::Result<TransformSummary> {
    let extract = run.extract_dir();
    let out = run.transform_dir();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let region = normalize::region(default_region);
    let contacts: Vec<SnapshotContact> = read_rows(&extract.join("ghl/contacts.parquet"))?;
    let messages: Vec<MessageRowIn> = read_rows(&extract.join("bulksms/messages.parquet"))?;
    let blocked: Vec<BlockedRowIn> = read_rows(&extract.join("bulksms/blocked_numbers.parquet"))?;
    let mut summary = TransformSummary {
        contacts: contacts.len() as u64,
        ..TransformSummary::default()
    };

    let previous_survivors = previous_survivors(run)?;
    // Survivorship reads when each record's data last changed, not when anything on it did.
    let previous_contacts = previous_snapshot(run)?;
    let by_data_time = with_data_times(&contacts, &previous_contacts);
    let mut result = dedupe_contacts(&contacts, model, region)?;
    // Merging changes records: the survivor takes its golden values and duplicates get tagged, and
    // a changed record can match another one on the next run. Predict that run here (at most twice)
    // so this run already reaches the clusters the next one will agree with.
    for _ in 0..2 {
        let next_table = after_merge(
            &by_data_time,
            &result,
            &config.survivorship,
            region,
            &previous_survivors,
        );
        let next = dedupe_contacts(&next_table, model, region)?;
        if partition(&next) == partition(&result) {
            break;
        }
        result = next;
    }
    summary.candidate_pairs = result.metrics.candidate_pairs;
    super::io::write_pairs(&result, model.threshold, &out.join("pairs.parquet"))?;

    // Survivor of each cluster: a record not already marked as a duplicate, then the most
    // complete, then the most recently updated. Marked records rank last so that our own tagging
    // (which bumps their dateUpdated) never flips the survivor on the next run.
    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (row, a) in result.assignments.iter().enumerate() {
        members.entry(a.cluster_id.as_str()).or_default().push(row);
    }
    let survivors = pick_survivors(&by_data_time, &members, &previous_survivors);
    let survivor_of: HashMap<&str, &str> = survivors
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    summary.duplicate_clusters = members.values().filter(|r| r.len() > 1).count() as u64;
    let cluster_rows: Vec<ClusterRow> = result
        .assignments
        .iter()
        .map(|a| ClusterRow {
            id: a.id.clone(),
            cluster_id: a.cluster_id.clone(),
            match_probability: a.match_probability,
            survivor_id: survivor_of[a.cluster_id.as_str()].to_string(),
        })
        .collect();
    write_rows(
        &out.join(CLUSTERS_FILE),
        &clusters_schema(),
        &cluster_rows,
    )?;

    // The normalised table, as the matcher compared it (raw values stay in the snapshot).
    let normalized: Vec<NormalizedRow> = contacts
        .iter()
        .map(|c| {
            let phone = normalize::contact_phone(c.phone.as_deref(), c.country.as_deref(), region);
            let email = c.email.as_deref().and_then(normalize::email);
            let fold =
                |v: &Option<String>| v.as_deref().map(normalize::name).filter(|n| !n.is_empty());
            NormalizedRow {
                id: c.id.clone(),
                first_name: fold(&c.first_name),
                last_name: fold(&c.last_name),
                email: email.as_ref().map(|e| e.address.clone()),
                email_match_key: email.map(|e| e.match_key),
                phone_raw: c.phone.clone(),
                phone_e164: match &phone {
                    Some(normalize::PhoneKey::E164(e)) => Some(e.clone()),
                    _ => None,
                },
                phone_unparsed: matches!(phone, Some(normalize::PhoneKey::Digits(_))),
                company: fold(&c.company_name),
                city: fold(&c.city),
                postal_code: c.postal_code.as_deref().map(|p| p.trim().to_uppercase()),
                country: c.country.as_deref().map(|p| p.trim().to_uppercase()),
            }
        })
        .collect();
    write_rows(
        &out.join(NORMALIZED_FILE),
        &normalized_schema(),
        &normalized,
    )?;

    // Golden records of clusters with duplicates; the survivor takes the golden values.
    let mut goldens: Vec<GoldenRecord> = Vec::new();
    let mut golden_desired: Vec<DesiredContact> = Vec::new();
    for (cluster, rows) in members.iter().filter(|(_, rows)| rows.len() > 1) {
        let survivor_id = survivor_of[cluster];
        let group: Vec<golden::Member> = rows
            .iter()
            .map(|&r| golden_member(&by_data_time[r]))
            .collect();
        let record = golden::merge(cluster, survivor_id, &group, &config.survivorship, region);
        summary.field_conflicts += record.conflicts.len() as u64;
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
        for field in golden::GOLDEN_FIELDS
            .iter()
            .filter(|f| !matches!(**f, "email" | "phone"))
        {
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
            let slot = match *field {
                "first_name" => &mut update.first_name,
                "last_name" => &mut update.last_name,
                "company_name" => &mut update.company_name,
                "city" => &mut update.city,
                "postal_code" => &mut update.postal_code,
                _ => &mut update.country,
            };
            *slot = Some(want.to_string());
            changed = true;
        }
        if changed {
            summary.golden_updates += 1;
            golden_desired.push(update);
        }
        goldens.push(record);
    }
    write_rows(&out.join(GOLDEN_FILE), &golden_schema(), &goldens)?;

    // Link SMS activity by number: E.164 digits on both sides.
    let mut contacts_by_phone: HashMap<String, Vec<usize>> = HashMap::new();
    for (row, c) in contacts.iter().enumerate() {
        if let Some(p) = normalize::contact_phone(c.phone.as_deref(), c.country.as_deref(), region)
        {
            contacts_by_phone
                .entry(digits(p.as_str()))
                .or_default()
                .push(row);
        }
    }
    let blocked_set: HashSet<String> = blocked.iter().map(|b| digits(&b.phone_number)).collect();
    let mut links: BTreeMap<String, LinkRow> = BTreeMap::new();
    for m in &messages {
        let (number, sent) = match m.message_type.as_str() {
            "SENT" => (m.to.as_deref(), true),
            _ => (m.from.as_deref(), false),
        };
        let Some(number) = number.map(digits).filter(|n| n.len() >= 7) else {
            continue;
        };
        let link = links.entry(number.clone()).or_insert_with(|| LinkRow {
            phone: number.clone(),
            ..LinkRow::default()
        });
        if sent {
            link.sent += 1;
            link.last_sent_at = m.submission_date.clone().max(link.last_sent_at.take());
            if m.status_type.as_deref() == Some("FAILED") {
                link.failed += 1;
            }
        } else {
            link.received += 1;
            link.last_received_at = m.submission_date.clone().max(link.last_received_at.take());
            if m.body.as_deref().is_some_and(reply_keywords::is_opt_out) {
                link.opted_out = true;
            }
        }
    }
    // A number is opted out for every contact that has it: it replied STOP, it is blocked in
    // BulkSMS, or one of its contacts has SMS DND in GHL (the same phone asked not to be texted;
    // load blocks it in BulkSMS too). Taking all three at once makes one run converge.
    let ghl_dnd_numbers: HashSet<String> = contacts
        .iter()
        .filter(|c| c.sms_dnd_active())
        .filter_map(|c| {
            match normalize::contact_phone(c.phone.as_deref(), c.country.as_deref(), region) {
                Some(normalize::PhoneKey::E164(e)) => Some(digits(&e)),
                _ => None,
            }
        })
        .collect();
    for number in blocked_set.iter().chain(&ghl_dnd_numbers) {
        links
            .entry(number.clone())
            .or_insert_with(|| LinkRow {
                phone: number.clone(),
                ..LinkRow::default()
            })
            .opted_out = true;
    }
    for link in links.values_mut() {
        link.contact_ids = contacts_by_phone
            .get(&link.phone)
            .map(|rows| rows.iter().map(|&r| contacts[r].id.clone()).collect())
            .unwrap_or_default();
    }
    summary.linked_numbers = links.values().filter(|l| !l.contact_ids.is_empty()).count() as u64;
    summary.opted_out_numbers = links.values().filter(|l| l.opted_out).count() as u64;
    let link_rows: Vec<LinkRow> = links.values().cloned().collect();
    write_rows(&out.join(LINKS_FILE), &links_schema(), &link_rows)?;

    // An opt-out writes DND once, when it happens: a STOP reply, a blocked-list entry or a DND on
    // a contact that the previous run's snapshot did not hold. Derived from the standing state,
    // it would set DND again every night on a contact whose operator cleared it. Sends still read
    // the standing state (a blocked number is never texted).
    let previous = previous_state(run)?;
    let previous_blocked = previous_blocked(run)?;
    let mut opted_out_now: HashSet<String> = HashSet::new();
    for m in &messages {
        let is_new = previous
            .as_ref()
            .is_none_or(|p| !p.message_status.contains_key(&m.id));
        if is_new
            && m.message_type != "SENT"
            && m.body.as_deref().is_some_and(reply_keywords::is_opt_out)
            && let Some(from) = m.from.as_deref()
        {
            opted_out_now.insert(digits(from));
        }
    }
    opted_out_now.extend(
        blocked_set
            .iter()
            .filter(|n| previous_blocked.as_ref().is_none_or(|p| !p.contains(*n)))
            .cloned(),
    );
    let acted_contacts: HashMap<String, SnapshotContact> = match previous_acted_run(run)? {
        Some(acted) => {
            read_rows::<SnapshotContact>(&acted.extract_dir().join("ghl/contacts.parquet"))?
                .into_iter()
                .map(|c| (c.id.clone(), c))
                .collect()
        }
        None => HashMap::new(),
    };
    for c in contacts.iter().filter(|c| c.sms_dnd_active()) {
        if acted_contacts
            .get(&c.id)
            .is_none_or(|p| !p.sms_dnd_active())
            && let Some(normalize::PhoneKey::E164(e)) =
                normalize::contact_phone(c.phone.as_deref(), c.country.as_deref(), region)
        {
            opted_out_now.insert(digits(&e));
        }
    }

    // The desired state.
    let mut desired: Vec<DesiredContact> = Vec::new();
    let mut desired_blocked: Vec<DesiredBlocked> = Vec::new();
    let row_of: HashMap<&str, usize> = contacts
        .iter()
        .enumerate()
        .map(|(row, c)| (c.id.as_str(), row))
        .collect();
    for link in links
        .values()
        .filter(|l| l.opted_out && opted_out_now.contains(&l.phone))
    {
        for id in &link.contact_ids {
            let c = &contacts[row_of[id.as_str()]];
            if !c.sms_dnd_active() || !c.tags.iter().any(|t| t == OPTED_OUT_TAG) {
                summary.dnd_updates += 1;
                desired.push(DesiredContact {
                    contact_id: Some(id.clone()),
                    sms_dnd: Some(true),
                    add_tags: vec![OPTED_OUT_TAG.to_string()],
                    reason: format!(
                        "+{} opted out of SMS (replied STOP, blocked in BulkSMS or DND on a contact with this number)",
                        link.phone
                    ),
                    ..DesiredContact::default()
                });
            }
        }
    }
    // Opted out in GHL but not blocked in BulkSMS: block the number too.
    for c in &contacts {
        if c.sms_dnd_active()
            && let Some(p) =
                normalize::contact_phone(c.phone.as_deref(), c.country.as_deref(), region)
            && let normalize::PhoneKey::E164(e164) = p
        {
            let number = digits(&e164);
            if !blocked_set.contains(&number)
                && let Some(phone_number) = crate::snapshot::phone::e164(&e164)
            {
                desired_blocked.push(DesiredBlocked {
                    phone_number,
                    reason: format!("contact {} has SMS DND in GHL", c.id),
                });
            }
        }
    }
    summary.numbers_to_block = desired_blocked.len() as u64;
    // Duplicates point at their survivor.
    for a in &result.assignments {
        let survivor = survivor_of[a.cluster_id.as_str()];
        if survivor != a.id {
            summary.duplicates_marked += 1;
            desired.push(DesiredContact {
                contact_id: Some(a.id.clone()),
                duplicate_of: Some(survivor.to_string()),
                reason: format!(
                    "duplicate of {survivor} (match probability {:.3})",
                    a.match_probability.unwrap_or(0.0)
                ),
                ..DesiredContact::default()
            });
        }
    }
    // Inbound numbers no contact has: lead candidates.
    for link in links
        .values()
        .filter(|l| l.contact_ids.is_empty() && l.received > 0 && !l.opted_out)
    {
        summary.lead_candidates += 1;
        desired.push(DesiredContact {
            phone: Some(format!("+{}", link.phone)),
            source: Some("sms inbound".into()),
            add_tags: vec![SMS_LEAD_TAG.to_string()],
            reason: format!("+{} texted in and matches no contact", link.phone),
            ..DesiredContact::default()
        });
    }
    desired.extend(golden_desired);

    // Triggers fire on what changed since the previous run's snapshot (`previous`, read above).
    let opted_out_numbers: HashSet<&str> = links
        .values()
        .filter(|l| l.opted_out)
        .map(|l| l.phone.as_str())
        .collect();
    let duplicate_ids: HashSet<&str> = result
        .assignments
        .iter()
        .filter(|a| survivor_of[a.cluster_id.as_str()] != a.id)
        .map(|a| a.id.as_str())
        .collect();
    let trigger_contacts: Vec<TriggerContact> = contacts
        .iter()
        .map(|c| {
            let phone =
                match normalize::contact_phone(c.phone.as_deref(), c.country.as_deref(), region) {
                    Some(normalize::PhoneKey::E164(e)) => Some(e),
                    _ => None,
                };
            // DND unknown to the snapshot does not hold a text back here: load reads DND from
            // GHL for every contact with the number right before sending, and waits when unsure.
            let opted_out = c.sms_dnd_active()
                || phone
                    .as_deref()
                    .is_some_and(|p| opted_out_numbers.contains(digits(p).as_str()));
            TriggerContact {
                id: c.id.clone(),
                first_name: c.first_name.clone(),
                last_name: c.last_name.clone(),
                company: c.company_name.clone(),
                phone,
                tags: c.tags.clone(),
                date_updated: c.date_updated.clone(),
                opted_out,
                duplicate: duplicate_ids.contains(c.id.as_str()),
                lead_from_sms: c.tags.iter().any(|t| t == SMS_LEAD_TAG),
            }
        })
        .collect();
    let mut trigger_by_number: HashMap<String, Vec<usize>> = HashMap::new();
    for (row, c) in trigger_contacts.iter().enumerate() {
        if let Some(p) = &c.phone {
            trigger_by_number.entry(p.clone()).or_default().push(row);
        }
    }
    let trigger_messages: Vec<TriggerMessage> = messages
        .iter()
        .filter_map(|m| {
            let inbound = m.message_type != "SENT";
            let number = if inbound {
                m.from.as_deref()
            } else {
                m.to.as_deref()
            }?;
            let number = digits(number);
            (number.len() >= 7).then(|| TriggerMessage {
                id: m.id,
                inbound,
                number: format!("+{number}"),
                body: m.body.clone(),
                status_type: m.status_type.clone(),
                status_subtype: m.status_subtype.clone(),
                submission_date: m.submission_date.clone(),
            })
        })
        .collect();
    summary.new_contacts = match &previous {
        Some(p) => contacts
            .iter()
            .filter(|c| !p.contact_tags.contains_key(&c.id))
            .count() as u64,
        None => 0,
    };
    let failed_deliveries = trigger_messages
        .iter()
        .filter(|m| {
            !m.inbound
                && m.status_type.as_deref() == Some("FAILED")
                && previous.as_ref().is_none_or(|p| {
                    p.message_status.get(&m.id).cloned().flatten().as_deref() != Some("FAILED")
                })
        })
        .count() as u64;
    let inbound = trigger_messages
        .iter()
        .filter(|m| {
            m.inbound
                && previous
                    .as_ref()
                    .is_none_or(|p| !p.message_status.contains_key(&m.id))
        })
        .count() as u64;
    let fired = triggers::fire(
        &config.triggers,
        &triggers::TriggerInput {
            run_date: run_date(run),
            previous: previous.as_ref(),
            contacts: &trigger_contacts,
            messages: &trigger_messages,
            contacts_by_number: &trigger_by_number,
            digest_counts: BTreeMap::from([
                ("contacts", summary.contacts),
                ("new_contacts", summary.new_contacts),
                ("duplicate_clusters", summary.duplicate_clusters),
                ("opted_out", summary.opted_out_numbers),
                ("failed_deliveries", failed_deliveries),
                ("inbound", inbound),
                ("leads", summary.lead_candidates),
            ]),
        },
    );
    summary.baseline = u64::from(fired.baseline);
    summary.messages_fired = fired.messages.len() as u64;
    summary.notes_fired = fired.notes.len() as u64;

    write_rows(
        &out.join("desired_contacts.parquet"),
        &desired_contacts_schema(),
        &desired,
    )?;
    write_rows(
        &out.join("desired_blocked.parquet"),
        &desired_blocked_schema(),
        &desired_blocked,
    )?;
    write_rows(
        &out.join("desired_messages.parquet"),
        &desired_messages_schema(),
        &fired.messages,
    )?;
    write_rows(
        &out.join("desired_notes.parquet"),
        &desired_notes_schema(),
        &fired.notes,
    )?;
    let json = serde_json::to_vec_pretty(&summary)?;
    crate::snapshot::atomic::write(&out.join(SUMMARY_FILE), &json)?;
    Ok(summary)
}

/// The newest earlier run that acted on the events it saw: its plan was accepted, so what it fired
/// is owed in the ledger whatever happened to its load. A run killed before its plan, or refused by
/// a safety limit, acted on nothing, and the events it saw must fire again. Triggers and opt-outs
/// both measure "new" against this run. `None` when no run has acted on this location yet.
fn previous_acted_run(run: &RunDir) -> anyhow::Result<Option<RunDir>> {
    let Some(state_dir) = run.path.parent().and_then(Path::parent) else {
        return Ok(None);
    };
    Ok(list_runs(state_dir)?
        .into_iter()
        .rev()
        .filter(|r| r.id < run.id)
        .find(|r| r.extract_manifest().is_some() && r.plan_committed()))
}

/// What [`previous_acted_run`] saw, for the triggers.
fn previous_state(run: &RunDir) -> anyhow::Result<Option<PreviousState>> {
    let Some(previous) = previous_acted_run(run)? else {
        return Ok(None);
    };
    #[derive(Deserialize)]
    struct ContactTags {
        id: String,
        #[serde(default)]
        tags: Vec<String>,
    }
    #[derive(Deserialize)]
    struct MessageStatus {
        id: u64,
        status_type: Option<String>,
    }
    let extract = previous.extract_dir();
    let contacts: Vec<ContactTags> = read_rows(&extract.join("ghl/contacts.parquet"))?;
    let messages: Vec<MessageStatus> = read_rows(&extract.join("bulksms/messages.parquet"))?;
    Ok(Some(PreviousState {
        contact_tags: contacts
            .into_iter()
            .map(|c| (c.id, c.tags.into_iter().collect()))
            .collect(),
        message_status: messages
            .into_iter()
            .map(|m| (m.id, m.status_type))
            .collect(),
    }))
}

/// The blocked numbers (digits) [`previous_acted_run`] saw; `None` when no run has acted yet.
fn previous_blocked(run: &RunDir) -> anyhow::Result<Option<HashSet<String>>> {
    let Some(previous) = previous_acted_run(run)? else {
        return Ok(None);
    };
    let rows: Vec<BlockedRowIn> = read_rows(
        &previous
            .extract_dir()
            .join("bulksms/blocked_numbers.parquet"),
    )?;
    Ok(Some(rows.iter().map(|b| digits(&b.phone_number)).collect()))
}

/// Fields whose change is a change of the contact's data (tags, DND and notes are not).
const DATA_FIELDS: [&str; 9] = [
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

/// The contacts with `date_updated` set to when their data last changed: a contact whose data
/// fields equal the previous snapshot's keeps the previous `dateUpdated`. GHL moves `dateUpdated`
/// on any write, our own tags and DND included, so without this a load that stopped halfway would
/// make the records it happened to tag look freshest and flip the next run's golden values.
fn with_data_times(
    contacts: &[SnapshotContact],
    previous: &HashMap<String, SnapshotContact>,
) -> Vec<SnapshotContact> {
    contacts
        .iter()
        .map(|c| {
            let mut c = c.clone();
            if let Some(p) = previous.get(&c.id)
                && DATA_FIELDS.iter().all(|f| c.field(f) == p.field(f))
            {
                c.date_updated = p.date_updated.clone();
            }
            c
        })
        .collect()
}

/// The contacts of the latest earlier run with a finished extract, by id (empty on a first run).
fn previous_snapshot(run: &RunDir) -> anyhow::Result<HashMap<String, SnapshotContact>> {
    let Some(state_dir) = run.path.parent().and_then(Path::parent) else {
        return Ok(HashMap::new());
    };
    let Some(previous) = list_runs(state_dir)?
        .into_iter()
        .rev()
        .filter(|r| r.id < run.id)
        .find(|r| r.extract_manifest().is_some())
    else {
        return Ok(HashMap::new());
    };
    let contacts: Vec<SnapshotContact> =
        read_rows(&previous.extract_dir().join("ghl/contacts.parquet"))?;
    Ok(contacts.into_iter().map(|c| (c.id.clone(), c)).collect())
}

/// The contacts that survived a duplicate cluster in the latest earlier run whose transform
/// finished (empty on a first run).
fn previous_survivors(run: &RunDir) -> anyhow::Result<HashSet<String>> {
    let Some(state_dir) = run.path.parent().and_then(Path::parent) else {
        return Ok(HashSet::new());
    };
    let Some(previous) = list_runs(state_dir)?
        .into_iter()
        .rev()
        .filter(|r| r.id < run.id)
        .find(|r| r.transform_dir().join(CLUSTERS_FILE).exists())
    else {
        return Ok(HashSet::new());
    };
    #[derive(Deserialize)]
    struct Survivor {
        id: String,
        survivor_id: String,
    }
    let rows: Vec<Survivor> = read_rows(&previous.transform_dir().join(CLUSTERS_FILE))?;
    Ok(rows
        .into_iter()
        .filter(|r| r.id != r.survivor_id)
        .map(|r| r.survivor_id)
        .collect())
}

/// The run's date (UTC), from its manifest's finish time; the digest fires once per date.
fn run_date(run: &RunDir) -> String {
    run.extract_manifest()
        .map(|m| m.finished_at.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%d").to_string())
}

/// True when a run's transform finished.
pub fn transform_done(run: &RunDir) -> bool {
    Path::new(&run.transform_dir().join(SUMMARY_FILE)).exists()
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

    #[test]
    fn only_a_change_of_data_makes_a_record_more_recent() {
        let before = contact("chicago", "2026-11-24T09:00:00Z");
        let previous = HashMap::from([("chicago".to_string(), before.clone())]);
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
