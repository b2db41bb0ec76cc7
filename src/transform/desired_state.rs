//! The desired state load will diff against the systems: opt-outs to write (DND, tag, block),
//! duplicates to mark, leads to create from inbound SMS and golden values to give survivors.

use super::inputs::MessageRowIn;
use super::reply_keywords;
use super::triggers::PreviousState;
use crate::matching::dedupe::Assignment;
use crate::snapshot::contact::SnapshotContact;
use crate::snapshot::contract::transform_outputs::{LinkRow, NormalizedRow};
use crate::snapshot::desired::{DesiredBlocked, DesiredContact};
use crate::snapshot::phone::digits;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Tag put on contacts whose number opted out by SMS.
pub use crate::snapshot::desired::OPTED_OUT_TAG;
/// Tag and source of leads created from inbound SMS.
pub use crate::snapshot::desired::{SMS_LEAD_SOURCE, SMS_LEAD_TAG};

/// What an earlier run that acted saw, to tell the opt-outs that are new.
pub struct ActedBefore<'a> {
    /// Its messages and contacts' tags; `None` when no run has acted yet.
    pub state: Option<&'a PreviousState>,
    /// Its blocked numbers (digits); `None` when no run has acted yet.
    pub blocked: Option<&'a HashSet<String>>,
    /// Its contacts, by id (empty when no run has acted yet).
    pub contacts: &'a HashMap<String, SnapshotContact>,
}

/// The numbers (digits) that opted out since the run that acted last. An opt-out writes DND once,
/// when it happens: a STOP reply, a blocked-list entry or a DND on a contact that the previous
/// run's snapshot did not hold. Derived from the standing state, it would set DND again every
/// night on a contact whose operator cleared it. Sends still read the standing state (a blocked
/// number is never texted).
pub fn new_opt_outs(
    contacts: &[SnapshotContact],
    normalized: &[NormalizedRow],
    messages: &[MessageRowIn],
    blocked: &HashSet<String>,
    before: &ActedBefore<'_>,
) -> HashSet<String> {
    let mut opted_out_now: HashSet<String> = HashSet::new();
    for m in messages {
        let is_new = before
            .state
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
        blocked
            .iter()
            .filter(|n| before.blocked.is_none_or(|p| !p.contains(*n)))
            .cloned(),
    );
    for (c, n) in contacts.iter().zip(normalized) {
        if c.sms_dnd_active()
            && before
                .contacts
                .get(&c.id)
                .is_none_or(|p| !p.sms_dnd_active())
            && let Some(e164) = &n.phone_e164
        {
            opted_out_now.insert(digits(e164));
        }
    }
    opted_out_now
}

/// The desired state and its counts.
pub struct DesiredState {
    pub contacts: Vec<DesiredContact>,
    pub blocked: Vec<DesiredBlocked>,
    pub dnd_updates: u64,
    pub duplicates_marked: u64,
    pub lead_candidates: u64,
}

/// The desired state: DND and the opt-out tag for the contacts of numbers that opted out now,
/// numbers to block for contacts with DND in GHL, duplicates pointing at their survivor, leads
/// for inbound numbers no contact has, then the survivors' golden updates.
#[allow(clippy::too_many_arguments)]
pub fn desired_state(
    contacts: &[SnapshotContact],
    normalized: &[NormalizedRow],
    links: &BTreeMap<String, LinkRow>,
    opted_out_now: &HashSet<String>,
    blocked: &HashSet<String>,
    assignments: &[Assignment],
    survivor_of: &HashMap<&str, &str>,
    golden_updates: Vec<DesiredContact>,
    opt_out_event: &str,
) -> DesiredState {
    let mut state = DesiredState {
        contacts: Vec::new(),
        blocked: Vec::new(),
        dnd_updates: 0,
        duplicates_marked: 0,
        lead_candidates: 0,
    };
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
                state.dnd_updates += 1;
                state.contacts.push(DesiredContact {
                    contact_id: Some(id.clone()),
                    sms_dnd: Some(true),
                    sms_dnd_event: Some(opt_out_event.to_string()),
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
    for (c, n) in contacts.iter().zip(normalized) {
        if c.sms_dnd_active()
            && let Some(e164) = &n.phone_e164
            && !blocked.contains(&digits(e164))
            && let Some(phone_number) = crate::snapshot::phone::e164(e164)
        {
            state.blocked.push(DesiredBlocked {
                phone_number,
                reason: format!("contact {} has SMS DND in GHL", c.id),
            });
        }
    }
    // Duplicates point at their survivor.
    for a in assignments {
        let survivor = survivor_of[a.cluster_id.as_str()];
        if survivor != a.id {
            state.duplicates_marked += 1;
            state.contacts.push(DesiredContact {
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
        state.lead_candidates += 1;
        state.contacts.push(DesiredContact {
            phone: Some(format!("+{}", link.phone)),
            source: Some(SMS_LEAD_SOURCE.into()),
            add_tags: vec![SMS_LEAD_TAG.to_string()],
            reason: format!("+{} texted in and matches no contact", link.phone),
            ..DesiredContact::default()
        });
    }
    state.contacts.extend(golden_updates);
    state
}
