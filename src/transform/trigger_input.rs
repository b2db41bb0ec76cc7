//! What the messaging triggers see: the contacts and messages of this run as trigger events, and
//! the day's counts for the digest. The triggers fire on what changed since the run that acted
//! last ([`super::history::previous_state`]).

use super::dedupe::Assignment;
use super::desired_state::SMS_LEAD_TAG;
use super::inputs::MessageRowIn;
use super::triggers::{self, Fired, PreviousState, TriggerContact, TriggerMessage, TriggersConfig};
use crate::snapshot::contact::SnapshotContact;
use crate::snapshot::contract::transform_outputs::{LinkRow, NormalizedRow, TransformSummary};
use crate::snapshot::phone::digits;
use std::collections::{BTreeMap, HashMap, HashSet};

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
}

/// The trigger events of a run (`contacts` and `normalized` row for row).
pub fn trigger_events(
    contacts: &[SnapshotContact],
    normalized: &[NormalizedRow],
    messages: &[MessageRowIn],
    links: &BTreeMap<String, LinkRow>,
    assignments: &[Assignment],
    survivor_of: &HashMap<&str, &str>,
    previous: Option<&PreviousState>,
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
                date_updated: c.date_updated.clone(),
                opted_out,
                duplicate: duplicate_ids.contains(c.id.as_str()),
                lead_from_sms: c.tags.iter().any(|t| t == SMS_LEAD_TAG),
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
    let failed_deliveries = trigger_messages
        .iter()
        .filter(|m| {
            !m.inbound
                && m.status_type.as_deref() == Some("FAILED")
                && previous.is_none_or(|p| {
                    p.message_status.get(&m.id).cloned().flatten().as_deref() != Some("FAILED")
                })
        })
        .count() as u64;
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
    }
}

/// Fires the triggers on a run's events; the digest counts come from the stage's summary so far.
pub fn fire(
    config: &TriggersConfig,
    events: &TriggerEvents,
    run_date: String,
    previous: Option<&PreviousState>,
    summary: &TransformSummary,
) -> Fired {
    triggers::fire(
        config,
        &triggers::TriggerInput {
            run_date,
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
