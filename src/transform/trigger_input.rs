//! What the messaging triggers see: the contacts and messages of this run as trigger events, and
//! the day's counts for the digest. The triggers fire on what changed since the run that acted
//! last ([`super::history::previous_state`]).

use super::history::field_texts;
use super::inputs::MessageRowIn;
use super::reply_keywords;
use super::triggers::digest::{DigestFacts, FailedDelivery, WaitingReply};
use super::triggers::{
    self, Fired, PreviousState, TriggerAppointment, TriggerContact, TriggerMessage, TriggersConfig,
};
use crate::matching::dedupe::Assignment;
use crate::snapshot::contact::SnapshotContact;
use crate::snapshot::contract::transform_outputs::{LinkRow, NormalizedRow, TransformSummary};
use crate::snapshot::desired::{DUPLICATE_TAG, read_rows};
use crate::snapshot::phone::digits;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// The run's contacts and messages as the triggers read them.
pub struct TriggerEvents {
    pub contacts: Vec<TriggerContact>,
    pub messages: Vec<TriggerMessage>,
    /// Rows of `contacts` by E.164 number.
    pub contacts_by_number: HashMap<String, Vec<usize>>,
    /// Contacts the previous acting run did not hold (0 on a first run).
    pub new_contacts: u64,
    /// Sends that failed since the previous acting run.
    pub failed_deliveries: u64,
    /// Inbound messages since the previous acting run.
    pub inbound: u64,
    /// What the digest lists.
    pub digest_facts: DigestFacts,
}

/// The trigger events of a run (`contacts` and `normalized` row for row).
#[allow(clippy::too_many_arguments)]
pub fn trigger_events(
    contacts: &[SnapshotContact],
    normalized: &[NormalizedRow],
    messages: &[MessageRowIn],
    links: &BTreeMap<String, LinkRow>,
    assignments: &[Assignment],
    survivor_of: &HashMap<&str, &str>,
    previous: Option<&PreviousState>,
    opted_out_now: &HashSet<String>,
) -> TriggerEvents {
    let opted_out_numbers: HashSet<&str> = links
        .values()
        .filter(|l| l.opted_out)
        .map(|l| l.phone.as_str())
        .collect();
    let duplicate_ids: HashSet<&str> = assignments
        .iter()
        .filter(|a| survivor_of[a.cluster_id.as_str()] != a.id)
        .map(|a| a.id.as_str())
        .collect();
    let trigger_contacts: Vec<TriggerContact> = contacts
        .iter()
        .zip(normalized)
        .map(|(c, n)| {
            let phone = n.phone_e164.clone();
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
                contact_type: c.contact_type.clone(),
                custom_fields: field_texts(&c.custom_fields),
                timezone: c.timezone.clone(),
                date_updated: c.date_updated.clone(),
                opted_out,
                duplicate: duplicate_ids.contains(c.id.as_str()),
                lead_from_sms: c.is_sms_lead(),
            }
        })
        .collect();
    let mut contacts_by_number: HashMap<String, Vec<usize>> = HashMap::new();
    for (row, c) in trigger_contacts.iter().enumerate() {
        if let Some(p) = &c.phone {
            contacts_by_number.entry(p.clone()).or_default().push(row);
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
    let new_contacts = match previous {
        Some(p) => contacts
            .iter()
            .filter(|c| !p.contact_tags.contains_key(&c.id))
            .count() as u64,
        None => 0,
    };
    let failed: Vec<&TriggerMessage> = trigger_messages
        .iter()
        .filter(|m| {
            !m.inbound
                && m.status_type.as_deref() == Some("FAILED")
                && previous.is_none_or(|p| {
                    p.message_status.get(&m.id).cloned().flatten().as_deref() != Some("FAILED")
                })
        })
        .collect();
    let failed_deliveries = failed.len() as u64;
    let mut new_by_source: BTreeMap<String, u64> = BTreeMap::new();
    if let Some(p) = previous {
        for c in contacts
            .iter()
            .filter(|c| !p.contact_tags.contains_key(&c.id))
        {
            let source = c
                .source
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown");
            *new_by_source.entry(source.to_string()).or_default() += 1;
        }
    }
    let digest_facts = DigestFacts {
        new_by_source,
        waiting: waiting_replies(&trigger_messages, &trigger_contacts, &contacts_by_number),
        failed: failed
            .iter()
            .map(|m| FailedDelivery {
                number: m.number.clone(),
                reason: m
                    .status_subtype
                    .clone()
                    .unwrap_or_else(|| "FAILED".to_string()),
                sent: m.submission_date.clone().unwrap_or_default(),
            })
            .collect(),
        new_opt_outs: {
            let mut numbers: Vec<String> = opted_out_now.iter().map(|d| format!("+{d}")).collect();
            numbers.sort();
            numbers
        },
        new_duplicates: assignments
            .iter()
            .filter(|a| duplicate_ids.contains(a.id.as_str()))
            .filter(|a| {
                contacts
                    .iter()
                    .find(|c| c.id == a.id)
                    .is_some_and(|c| !c.tags.iter().any(|t| t == DUPLICATE_TAG))
            })
            .map(|a| (a.id.clone(), survivor_of[a.cluster_id.as_str()].to_string()))
            .collect(),
    };
    let inbound = trigger_messages
        .iter()
        .filter(|m| m.inbound && previous.is_none_or(|p| !p.message_status.contains_key(&m.id)))
        .count() as u64;
    TriggerEvents {
        contacts: trigger_contacts,
        messages: trigger_messages,
        contacts_by_number,
        new_contacts,
        failed_deliveries,
        inbound,
        digest_facts,
    }
}

/// Numbers whose latest message is a reply nobody answered: no outbound message after it, not a
/// STOP or START, and the number not opted out.
fn waiting_replies(
    messages: &[TriggerMessage],
    contacts: &[TriggerContact],
    contacts_by_number: &HashMap<String, Vec<usize>>,
) -> Vec<WaitingReply> {
    type Instant = Option<chrono::DateTime<chrono::Utc>>;
    let mut last_in: BTreeMap<&str, &TriggerMessage> = BTreeMap::new();
    let mut last_out: HashMap<&str, Instant> = HashMap::new();
    fn when(m: &TriggerMessage) -> Instant {
        m.submission_date
            .as_deref()
            .and_then(super::inputs::instant)
    }
    for m in messages {
        if m.inbound {
            let later = last_in
                .get(m.number.as_str())
                .is_none_or(|seen| (when(seen), seen.id) < (when(m), m.id));
            if later {
                last_in.insert(&m.number, m);
            }
        } else {
            let out = last_out.entry(&m.number).or_insert(None);
            if when(m) > *out {
                *out = when(m);
            }
        }
    }
    last_in
        .into_iter()
        .filter(|(number, m)| last_out.get(number).is_none_or(|out| *out < when(m)))
        .filter(|(_, m)| reply_keywords::classify(m.body.as_deref().unwrap_or("")).is_none())
        .filter_map(|(number, m)| {
            let rows = contacts_by_number.get(number);
            let of_number: Vec<&TriggerContact> =
                rows.into_iter().flatten().map(|&r| &contacts[r]).collect();
            if of_number.iter().any(|c| c.opted_out) {
                return None;
            }
            Some(WaitingReply {
                number: number.to_string(),
                contacts: of_number
                    .iter()
                    .filter(|c| !c.duplicate)
                    .filter_map(|c| {
                        let name = format!(
                            "{} {}",
                            c.first_name.as_deref().unwrap_or(""),
                            c.last_name.as_deref().unwrap_or("")
                        );
                        let name = name.trim();
                        // Leads made from an SMS are often named by their number.
                        let is_number = digits(name) == digits(number) && !digits(name).is_empty();
                        (!name.is_empty() && !is_number).then(|| name.to_string())
                    })
                    .collect(),
                contact_ids: of_number
                    .iter()
                    .filter(|c| !c.duplicate)
                    .map(|c| c.id.clone())
                    .collect(),
                body: m.body.clone().unwrap_or_default(),
                received: m.submission_date.clone().unwrap_or_default(),
            })
        })
        .collect()
}

/// The appointments of `extract/ghl/appointments.parquet` (none when the extract has no such file:
/// runs from before appointments were extracted).
pub fn read_appointments(extract: &Path) -> anyhow::Result<Vec<TriggerAppointment>> {
    #[derive(Deserialize)]
    struct AppointmentIn {
        id: String,
        contact_id: String,
        title: Option<String>,
        appointment_status: Option<String>,
        /// RFC 3339 text (Parquet timestamps come back through Arrow's JSON writer).
        start_time: Option<String>,
    }
    let path = extract.join("ghl/appointments.parquet");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let rows: Vec<AppointmentIn> = read_rows(&path)?;
    Ok(rows
        .into_iter()
        .map(|a| TriggerAppointment {
            start_time: a.start_time.as_deref().and_then(|t| {
                chrono::DateTime::parse_from_rfc3339(t)
                    .or_else(|_| chrono::DateTime::parse_from_rfc3339(&format!("{t}Z")))
                    .ok()
                    .map(|t| t.with_timezone(&chrono::Utc))
            }),
            id: a.id,
            contact_id: a.contact_id,
            title: a.title,
            status: a.appointment_status,
        })
        .collect())
}

/// When a run fires: its date (the digest's event) and time (appointment windows start there).
pub struct RunWhen {
    pub date: String,
    pub now: chrono::DateTime<chrono::Utc>,
}

/// Fires the triggers on a run's events; the digest counts come from the stage's summary so far.
pub fn fire(
    config: &TriggersConfig,
    events: &TriggerEvents,
    appointments: &[TriggerAppointment],
    when: RunWhen,
    previous: Option<&PreviousState>,
    summary: &TransformSummary,
) -> Fired {
    triggers::fire(
        config,
        &triggers::TriggerInput {
            run_date: when.date,
            now: when.now,
            appointments,
            digest_facts: events.digest_facts.clone(),
            previous,
            contacts: &events.contacts,
            messages: &events.messages,
            contacts_by_number: &events.contacts_by_number,
            digest_counts: BTreeMap::from([
                ("contacts", summary.contacts),
                ("new_contacts", summary.new_contacts),
                ("duplicate_clusters", summary.duplicate_clusters),
                ("opted_out", summary.opted_out_numbers),
                ("failed_deliveries", events.failed_deliveries),
                ("inbound", events.inbound),
                ("leads", summary.lead_candidates),
            ]),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_reply_names_only_contacts_with_a_real_name() {
        let reply = |id: u64, number: &str| TriggerMessage {
            id,
            inbound: true,
            number: number.into(),
            body: Some("Who is this?".into()),
            submission_date: Some("2026-12-05T18:00:00Z".into()),
            ..TriggerMessage::default()
        };
        let contact = |id: &str, first: Option<&str>, number: &str| TriggerContact {
            id: id.into(),
            first_name: first.map(str::to_string),
            phone: Some(number.into()),
            ..TriggerContact::default()
        };
        let contacts = vec![
            contact("named", Some("Sara"), "+15122302734"),
            contact("nameless", None, "+12063746543"),
            contact("lead", Some("+1 210-735-8243"), "+12107358243"),
        ];
        let by_number: HashMap<String, Vec<usize>> = contacts
            .iter()
            .enumerate()
            .map(|(i, c)| (c.phone.clone().unwrap_or_default(), vec![i]))
            .collect();
        let messages = [
            reply(1, "+15122302734"),
            reply(2, "+12063746543"),
            reply(3, "+12107358243"),
        ];
        let waiting = waiting_replies(&messages, &contacts, &by_number);
        let shown: Vec<(&str, Vec<String>, Vec<String>)> = waiting
            .iter()
            .map(|w| (w.number.as_str(), w.contacts.clone(), w.contact_ids.clone()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("+12063746543", vec![], vec!["nameless".to_string()]),
                ("+12107358243", vec![], vec!["lead".to_string()]),
                (
                    "+15122302734",
                    vec!["Sara".to_string()],
                    vec!["named".to_string()]
                ),
            ]
        );
    }
}
