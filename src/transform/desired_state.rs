//! The desired state load will diff against the systems: opt-outs to write (DND, tag, block),
//! duplicates to mark, leads to create from inbound SMS and golden values to give survivors.

use super::inputs::MessageRowIn;
use super::reply_keywords;
use super::triggers::PreviousState;
use crate::matching::dedupe::Assignment;
use crate::normalize::{self, Region};
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

/// Who holds which number (digits): each contact once this run's golden fills are written, and
/// each as the run that acted last read it. An opt-out is written when it happens, to the contacts
/// that hold the number then; a contact that comes to hold an opted-out number later (a new
/// contact, a changed phone, a national phone a merge's country fill makes readable) is opted out
/// when it does, in the run whose fill makes it so. Otherwise a survivor whose duplicate opted out
/// stayed textable, or not, depending on which night its country was filled.
pub struct NumberHolders<'a> {
    /// Per contact (the snapshot's rows): its number once this run's fills are written.
    pub after: Vec<Option<String>>,
    /// The contacts the run that acted last read; `None` when no run has acted yet.
    pub before: Option<&'a HashMap<String, SnapshotContact>>,
    pub region: Region,
}

/// The number (digits) a phone reads as in `country`, else in `region`; `None` unless valid.
fn number_of(phone: Option<&str>, country: Option<&str>, region: Region) -> Option<String> {
    match normalize::contact_phone(phone, country, region) {
        Some(normalize::PhoneKey::E164(e164)) => Some(digits(&e164)),
        _ => None,
    }
}

impl<'a> NumberHolders<'a> {
    /// `updates` are this run's golden updates: a filled country changes how a national phone
    /// reads (phones themselves are never filled).
    pub fn new(
        contacts: &[SnapshotContact],
        normalized: &[NormalizedRow],
        updates: &[DesiredContact],
        before: Option<&'a HashMap<String, SnapshotContact>>,
        region: Region,
    ) -> Self {
        let country_fill: HashMap<&str, &str> = updates
            .iter()
            .filter_map(|u| Some((u.contact_id.as_deref()?, u.country.as_deref()?)))
            .collect();
        let after = contacts
            .iter()
            .zip(normalized)
            .map(|(c, n)| match country_fill.get(c.id.as_str()) {
                Some(country) => number_of(c.phone.as_deref(), Some(country), region),
                None => n.phone_e164.as_deref().map(digits),
            })
            .collect();
        NumberHolders {
            after,
            before,
            region,
        }
    }

    /// True when `contact` did not hold `number` as the run that acted last read it.
    fn reached(&self, contact: &SnapshotContact, number: &str) -> bool {
        self.before.is_none_or(|before| {
            before.get(&contact.id).is_none_or(|was| {
                number_of(was.phone.as_deref(), was.country.as_deref(), self.region).as_deref()
                    != Some(number)
            })
        })
    }
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
    holders: &NumberHolders<'_>,
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
    // Every number that stands opted out: a STOP, the blocked list, or DND on a contact with it.
    let opted_out: HashSet<&str> = links
        .values()
        .filter(|l| l.opted_out)
        .map(|l| l.phone.as_str())
        .chain(blocked.iter().map(String::as_str))
        .chain(opted_out_now.iter().map(String::as_str))
        .collect();
    for (c, number) in contacts.iter().zip(&holders.after) {
        let Some(number) = number.as_deref().filter(|n| opted_out.contains(n)) else {
            continue;
        };
        let reason = if opted_out_now.contains(number) {
            format!(
                "+{number} opted out of SMS (replied STOP, blocked in BulkSMS or DND on a contact with this number)"
            )
        } else if holders.reached(c, number) {
            format!(
                "+{number} opted out of SMS before this contact held it (a new contact, a changed phone, or a country a merge filled)"
            )
        } else {
            continue;
        };
        if !c.sms_dnd_active() || !c.tags.iter().any(|t| t == OPTED_OUT_TAG) {
            state.dnd_updates += 1;
            state.contacts.push(DesiredContact {
                contact_id: Some(c.id.clone()),
                sms_dnd: Some(true),
                sms_dnd_event: Some(opt_out_event.to_string()),
                add_tags: vec![OPTED_OUT_TAG.to_string()],
                reason,
                ..DesiredContact::default()
            });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(id: &str, phone: &str, country: Option<&str>) -> SnapshotContact {
        SnapshotContact {
            id: id.into(),
            first_name: Some("Nicholas".into()),
            phone: Some(phone.into()),
            country: country.map(String::from),
            ..SnapshotContact::default()
        }
    }

    /// Opt-outs written this run for the two Nicholas Lee records of seed 2: "gb" was typed with a
    /// national phone and no country, "intl" with +44 and GB; the number opted out on an earlier
    /// night, while only "intl" could be read as holding it, and an operator has since cleared its
    /// DND. `fill` is the survivor's golden country, if this run writes one.
    fn opt_outs(fill: Option<&str>) -> Vec<String> {
        let region = normalize::region("US");
        let contacts = vec![
            contact("gb", "07810617877", None),
            contact("intl", "+447810617877", Some("GB")),
        ];
        let normalized = normalize::contact_rows(&contacts, region);
        let before: HashMap<String, SnapshotContact> =
            contacts.iter().map(|c| (c.id.clone(), c.clone())).collect();
        let updates: Vec<DesiredContact> = fill
            .map(|country| DesiredContact {
                contact_id: Some("gb".into()),
                country: Some(country.into()),
                ..DesiredContact::default()
            })
            .into_iter()
            .collect();
        let holders = NumberHolders::new(&contacts, &normalized, &updates, Some(&before), region);
        let number = "447810617877".to_string();
        let links = BTreeMap::from([(
            number.clone(),
            LinkRow {
                phone: number.clone(),
                contact_ids: vec!["intl".into()],
                opted_out: true,
                ..LinkRow::default()
            },
        )]);
        let state = desired_state(
            &contacts,
            &normalized,
            &holders,
            &links,
            &HashSet::new(),
            &HashSet::from([number]),
            &[],
            &HashMap::new(),
            updates,
            "opt-out seen by run r2",
        );
        state
            .contacts
            .iter()
            .filter(|d| d.sms_dnd == Some(true))
            .filter_map(|d| d.contact_id.clone())
            .collect()
    }

    #[test]
    fn a_contact_a_merge_makes_hold_an_opted_out_number_is_opted_out_in_that_run() {
        assert_eq!(opt_outs(Some("GB")), vec!["gb".to_string()]);
    }

    #[test]
    fn contacts_that_held_the_number_are_not_opted_out_again() {
        // "intl" held the number when the opt-out was written (its DND since cleared by an
        // operator), and "gb" does not read as holding it without a country.
        assert!(opt_outs(None).is_empty());
    }
}
