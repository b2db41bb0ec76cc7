//! Linking: SMS activity joined to the contacts that have the number, by E.164 digits on both
//! sides, and which numbers are opted out.

use super::inputs::MessageRowIn;
use super::reply_keywords;
use crate::normalize::link_digits;
use crate::snapshot::contact::SnapshotContact;
use crate::snapshot::contract::transform_outputs::{LinkRow, NormalizedRow};
use crate::snapshot::phone::digits;
use crate::snapshot::schema::BlockedNumberRow;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The blocked numbers, as digits.
pub fn blocked_numbers(blocked: &[BlockedNumberRow]) -> HashSet<String> {
    blocked.iter().map(|b| digits(&b.phone_number)).collect()
}

/// Each number's SMS activity and the contacts it belongs to, by number (`contacts` and
/// `normalized` row for row).
pub fn link_activity(
    contacts: &[SnapshotContact],
    normalized: &[NormalizedRow],
    messages: &[MessageRowIn],
    blocked: &HashSet<String>,
) -> BTreeMap<String, LinkRow> {
    let mut contacts_by_phone: HashMap<String, Vec<usize>> = HashMap::new();
    for (row, n) in normalized.iter().enumerate() {
        if let Some(number) = link_digits(n) {
            contacts_by_phone.entry(number).or_default().push(row);
        }
    }
    let mut links: BTreeMap<String, LinkRow> = BTreeMap::new();
    for m in messages {
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
        .zip(normalized)
        .filter(|(c, _)| c.sms_dnd_active())
        .filter_map(|(_, n)| n.phone_e164.as_deref().map(digits))
        .collect();
    for number in blocked.iter().chain(&ghl_dnd_numbers) {
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
    links
}
