//! Messaging triggers: which SMS and notes the pipeline asks for, fired on what changed since the
//! previous run. The first run against a location is a baseline and fires nothing unless the
//! pipeline says `fire_on_first_run = true`: pointing the tool at an existing CRM never texts its
//! whole contact list.

pub mod digest;
pub mod reminders;

use super::reply_keywords::{self, ReplyKeyword};
use crate::snapshot::desired::{DesiredMessage, DesiredNote};
use chrono::{DateTime, Utc};
pub use digest::{DIGEST_PLACEHOLDERS, DigestFacts, DigestTrigger};
pub use reminders::{ReminderTrigger, TriggerAppointment};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// `[transform.triggers]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TriggersConfig {
    /// Fire on the first run too (default false: the first run records a baseline).
    pub fire_on_first_run: bool,
    /// New contact → welcome SMS.
    pub welcome: Option<WelcomeTrigger>,
    /// A status change (tag added, custom field value, contact type) or an appointment coming due
    /// → reminder SMS (one table per rule).
    pub reminder: Vec<ReminderTrigger>,
    /// Daily digest SMS to a team number.
    pub digest: Option<DigestTrigger>,
    /// Add a GHL note to the contact for each messaging event (STOP, delivery failure, reply).
    pub activity_notes: bool,
}

/// `[transform.triggers.welcome]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WelcomeTrigger {
    /// Body; placeholders `{first_name}`, `{last_name}`, `{full_name}`, `{company}`, with an
    /// optional fallback after `|` (`{first_name|there}`).
    pub template: String,
}

const CONTACT_PLACEHOLDERS: [&str; 4] = ["first_name", "last_name", "full_name", "company"];
/// Placeholder names in a template (`{name}` or `{name|fallback}`).
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let inner = &rest[start + 1..start + len];
        out.push(inner.split('|').next().unwrap_or("").trim());
        rest = &rest[start + len + 1..];
    }
    out
}

/// Fills a template; an empty value takes the placeholder's fallback.
pub fn render(template: &str, values: &HashMap<&str, String>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = &rest[start + 1..start + len];
        let (name, fallback) = match inner.split_once('|') {
            Some((n, f)) => (n.trim(), f),
            None => (inner.trim(), ""),
        };
        match values.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            Some(v) => out.push_str(v),
            None => out.push_str(fallback),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// Checks a template's placeholders against `allowed`; the error names the key. Shared by the
/// triggers and the message workflows.
pub(crate) fn check_template(
    key: &str,
    template: &str,
    allowed: &[&str],
) -> Result<(), (String, String)> {
    if template.trim().is_empty() {
        return Err((key.to_string(), "template must not be empty".into()));
    }
    // `{a|{b}}` reads as `{a|{b}` and a stray `}`: fallbacks are plain text.
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let inner = &rest[start + 1..];
        let end = inner.find('}').unwrap_or(inner.len());
        if inner[..end].contains('{') {
            return Err((
                key.to_string(),
                "a placeholder's fallback is plain text: `{` inside `{...}`".into(),
            ));
        }
        rest = &inner[end.min(inner.len())..];
    }
    for name in placeholders(template) {
        if !allowed.contains(&name) {
            return Err((
                key.to_string(),
                format!(
                    "unknown placeholder `{{{name}}}` (known: {})",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

impl TriggersConfig {
    /// Checks templates and numbers; the error names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let check = check_template;
        if let Some(w) = &self.welcome {
            check("welcome.template", &w.template, &CONTACT_PLACEHOLDERS)?;
        }
        for (i, r) in self.reminder.iter().enumerate() {
            let kind = r.kind().map_err(|e| (format!("reminder[{i}]"), e))?;
            r.check_confirm()
                .map_err(|e| (format!("reminder[{i}]"), e))?;
            let mut allowed = CONTACT_PLACEHOLDERS.to_vec();
            allowed.extend(kind.placeholders());
            check(&format!("reminder[{i}].template"), &r.template, &allowed)?;
        }
        if let Some(d) = &self.digest {
            if let Some(template) = &d.template {
                check("digest.template", template, &DIGEST_PLACEHOLDERS)?;
            }
            let digits = d.to.chars().filter(char::is_ascii_digit).count();
            if !d.to.starts_with('+') || !(8..=15).contains(&digits) {
                return Err((
                    "digest.to".into(),
                    format!("must be an E.164 number like +14155550100, got {:?}", d.to),
                ));
            }
        }
        Ok(())
    }
}

/// A contact as the triggers see it.
#[derive(Debug, Clone, Default)]
pub struct TriggerContact {
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<String>,
    /// E.164, when the phone parsed.
    pub phone: Option<String>,
    pub tags: Vec<String>,
    /// GHL's contact type (`lead`, `customer`).
    pub contact_type: Option<String>,
    /// Custom field values as text, by field id.
    pub custom_fields: HashMap<String, String>,
    /// IANA zone of the contact, when GHL has one.
    pub timezone: Option<String>,
    pub date_updated: Option<String>,
    /// SMS DND in GHL, blocked in BulkSMS, or replied STOP.
    pub opted_out: bool,
    /// Marked as a duplicate of another contact (its survivor gets the messages).
    pub duplicate: bool,
    /// Made by contactsync from an inbound SMS: the conversation is already open, so no welcome.
    pub lead_from_sms: bool,
}

/// A message as the activity notes see it.
#[derive(Debug, Clone, Default)]
pub struct TriggerMessage {
    pub id: u64,
    pub inbound: bool,
    /// The other party, E.164.
    pub number: String,
    pub body: Option<String>,
    pub status_type: Option<String>,
    pub status_subtype: Option<String>,
    pub submission_date: Option<String>,
}

/// What the previous run saw, for telling what changed.
#[derive(Debug, Clone, Default)]
pub struct PreviousState {
    /// The acting run these were seen by: a status change is "since" it, which the nightly run and
    /// a micro-batch in between name alike (see `reminders::status_reminders`).
    pub run_id: String,
    /// Tags of each contact.
    pub contact_tags: HashMap<String, HashSet<String>>,
    /// Type of each contact.
    pub contact_types: HashMap<String, Option<String>>,
    /// Custom field values (as text, by field id) of each contact.
    pub contact_fields: HashMap<String, HashMap<String, String>>,
    /// Status type of each message.
    pub message_status: HashMap<u64, Option<String>>,
}

/// Everything a run's triggers read.
pub struct TriggerInput<'a> {
    /// `YYYY-MM-DD` of the run (the digest's event).
    pub run_date: String,
    /// `None` on the first run against the location.
    pub previous: Option<&'a PreviousState>,
    pub contacts: &'a [TriggerContact],
    pub messages: &'a [TriggerMessage],
    /// Contacts of each E.164 number.
    pub contacts_by_number: &'a HashMap<String, Vec<usize>>,
    /// Counts for the digest (names from [`DIGEST_PLACEHOLDERS`]).
    pub digest_counts: BTreeMap<&'static str, u64>,
    /// What the digest lists beyond its counts.
    pub digest_facts: DigestFacts,
    /// Appointments of the contacts (for the appointment reminders).
    pub appointments: &'a [TriggerAppointment],
    /// When the run read the systems: appointment windows start here.
    pub now: DateTime<Utc>,
}

/// The messages and notes the triggers ask for.
#[derive(Debug, Default)]
pub struct Fired {
    pub messages: Vec<DesiredMessage>,
    pub notes: Vec<DesiredNote>,
    /// True when this run was a baseline and fired nothing.
    pub baseline: bool,
    /// `digest.md` of the run, when a digest is configured and the run is not a baseline.
    pub digest_markdown: Option<String>,
    /// The rule (index in `reminder`) of each reminder sent, by (to, event).
    pub reminder_rules: HashMap<(String, String), usize>,
}

fn contact_values(c: &TriggerContact) -> HashMap<&'static str, String> {
    let first = c.first_name.clone().unwrap_or_default();
    let last = c.last_name.clone().unwrap_or_default();
    HashMap::from([
        ("full_name", format!("{first} {last}").trim().to_string()),
        ("first_name", first),
        ("last_name", last),
        ("company", c.company.clone().unwrap_or_default()),
    ])
}

/// Fires the configured triggers.
pub fn fire(config: &TriggersConfig, input: &TriggerInput<'_>) -> Fired {
    let empty = PreviousState::default();
    let previous = match input.previous {
        Some(p) => p,
        None if config.fire_on_first_run => &empty,
        None => {
            return Fired {
                baseline: true,
                ..Fired::default()
            };
        }
    };
    let mut fired = Fired::default();
    let mut seen: HashSet<(String, String, String)> = HashSet::new();
    // One message per number and trigger in a run: two new contacts sharing a household phone
    // get one welcome, not two.
    let mut send = |fired: &mut Fired,
                    to: &str,
                    body: String,
                    trigger: &str,
                    event: String,
                    contact: Option<&str>| {
        let once = match trigger {
            "welcome" => String::new(),
            _ => event.clone(),
        };
        if seen.insert((to.to_string(), trigger.to_string(), once)) {
            fired.messages.push(DesiredMessage {
                to: to.to_string(),
                body,
                trigger: trigger.to_string(),
                event,
                contact_id: contact.map(str::to_string),
            });
        }
    };
    for c in input.contacts {
        let Some(phone) = c.phone.as_deref() else {
            continue;
        };
        if c.opted_out || c.duplicate {
            continue;
        }
        let before = previous.contact_tags.get(&c.id);
        if let Some(welcome) = &config.welcome
            && before.is_none()
            && !c.lead_from_sms
        {
            let body = render(&welcome.template, &contact_values(c));
            let event = format!("contact {} created", c.id);
            send(&mut fired, phone, body, "welcome", event, Some(&c.id));
        }
        for (rule, reminder) in config.reminder.iter().enumerate() {
            if let Some(r) = reminders::status_reminders(reminder, c, previous) {
                fired
                    .reminder_rules
                    .insert((phone.to_string(), r.event.clone()), rule);
                send(&mut fired, phone, r.body, "reminder", r.event, Some(&c.id));
            }
        }
    }
    for (rule, reminder) in config.reminder.iter().enumerate() {
        for r in reminders::appointment_reminders(
            reminder,
            input.appointments,
            input.contacts,
            input.now,
        ) {
            let c = r.contact;
            if c.opted_out || c.duplicate {
                continue;
            }
            if let Some(phone) = c.phone.as_deref() {
                fired
                    .reminder_rules
                    .insert((phone.to_string(), r.event.clone()), rule);
                send(&mut fired, phone, r.body, "reminder", r.event, Some(&c.id));
            }
        }
    }
    if let Some(digest) = &config.digest {
        let body = digest::digest_sms(
            digest,
            &input.run_date,
            &input.digest_counts,
            &input.digest_facts,
        );
        fired.digest_markdown = Some(digest::digest_markdown(
            &input.run_date,
            &input.digest_counts,
            &input.digest_facts,
            Some(&body),
        ));
        let event = format!("digest {}", input.run_date);
        send(&mut fired, &digest.to, body, "digest", event, None);
    }
    if config.activity_notes {
        for m in input.messages {
            let was = previous.message_status.get(&m.id);
            let when = m.submission_date.as_deref().unwrap_or("an unknown time");
            let note = if m.inbound {
                if was.is_some() {
                    continue;
                }
                let body = m.body.as_deref().unwrap_or("").trim();
                match reply_keywords::classify(body) {
                    Some(ReplyKeyword::OptOut(word)) => Some((
                        format!("sms stop {}", m.id),
                        format!(
                            "Replied {word} to SMS from {} at {when} (\"{body}\"): opted out of SMS.",
                            m.number
                        ),
                    )),
                    // Recorded, not acted on: the number stays opted out (see reply_keywords).
                    Some(ReplyKeyword::OptIn(word)) => Some((
                        format!("sms start {}", m.id),
                        format!(
                            "Replied {word} to SMS from {} at {when}: asked to receive SMS again. \
                             Not re-subscribed automatically; the number stays opted out until \
                             an operator clears it in GHL and BulkSMS.",
                            m.number
                        ),
                    )),
                    None => Some((
                        format!("sms received {}", m.id),
                        format!("SMS received from {} at {when}: \"{body}\"", m.number),
                    )),
                }
            } else if m.status_type.as_deref() == Some("FAILED")
                && was.is_none_or(|s| s.as_deref() != Some("FAILED"))
            {
                Some((
                    format!("sms failed {}", m.id),
                    format!(
                        "SMS to {} sent at {when} failed ({}).",
                        m.number,
                        m.status_subtype.as_deref().unwrap_or("FAILED")
                    ),
                ))
            } else {
                None
            };
            let Some((event, body)) = note else { continue };
            for &row in input
                .contacts_by_number
                .get(&m.number)
                .into_iter()
                .flatten()
            {
                let c = &input.contacts[row];
                if !c.duplicate {
                    fired.notes.push(DesiredNote {
                        contact_id: c.id.clone(),
                        body: body.clone(),
                        event: event.clone(),
                    });
                }
            }
        }
    }
    fired
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TriggersConfig {
        TriggersConfig {
            welcome: Some(WelcomeTrigger {
                template: "Hi {first_name|there}, welcome to {company|us}!".into(),
            }),
            reminder: vec![ReminderTrigger {
                tag: Some("appointment".into()),
                template: "{first_name}: your {tag} is tomorrow".into(),
                ..ReminderTrigger::default()
            }],
            digest: Some(DigestTrigger {
                to: "+14155550100".into(),
                template: Some("{date}: {new_contacts} new, {opted_out} opted out".into()),
            }),
            activity_notes: true,
            ..TriggersConfig::default()
        }
    }

    fn contact(id: &str, phone: &str, tags: &[&str]) -> TriggerContact {
        TriggerContact {
            id: id.into(),
            first_name: Some("Ana".into()),
            phone: Some(phone.into()),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            date_updated: Some("2026-11-24T10:00:00".into()),
            ..TriggerContact::default()
        }
    }

    fn input<'a>(
        previous: Option<&'a PreviousState>,
        contacts: &'a [TriggerContact],
        by_number: &'a HashMap<String, Vec<usize>>,
        messages: &'a [TriggerMessage],
    ) -> TriggerInput<'a> {
        TriggerInput {
            run_date: "2026-11-25".into(),
            previous,
            contacts,
            messages,
            contacts_by_number: by_number,
            digest_counts: BTreeMap::from([("new_contacts", 1), ("opted_out", 0)]),
            digest_facts: DigestFacts::default(),
            appointments: &[],
            now: "2026-11-25T03:00:00Z".parse().expect("time"),
        }
    }

    #[test]
    fn first_run_is_a_baseline_that_fires_nothing() {
        let contacts = vec![contact("c1", "+14155550001", &["appointment"])];
        let fired = fire(&config(), &input(None, &contacts, &HashMap::new(), &[]));
        assert!(fired.baseline);
        assert!(fired.messages.is_empty() && fired.notes.is_empty());
        let asked = TriggersConfig {
            fire_on_first_run: true,
            ..config()
        };
        let fired = fire(&asked, &input(None, &contacts, &HashMap::new(), &[]));
        assert_eq!(fired.messages.len(), 3, "{:?}", fired.messages);
    }

    #[test]
    fn new_contacts_and_added_tags_fire_once_per_number() {
        let previous = PreviousState {
            contact_tags: HashMap::from([
                ("old".to_string(), HashSet::new()),
                (
                    "tagged-before".to_string(),
                    HashSet::from(["Appointment".to_string()]),
                ),
            ]),
            ..PreviousState::default()
        };
        let contacts = vec![
            contact("old", "+14155550001", &["appointment"]),
            contact("tagged-before", "+14155550002", &["appointment"]),
            contact("new-a", "+14155550003", &[]),
            // Same phone as new-a (a household): one welcome for the number.
            contact("new-b", "+14155550003", &[]),
            TriggerContact {
                opted_out: true,
                ..contact("new-opted-out", "+14155550004", &[])
            },
            TriggerContact {
                duplicate: true,
                ..contact("new-dup", "+14155550005", &[])
            },
        ];
        let fired = fire(
            &config(),
            &input(Some(&previous), &contacts, &HashMap::new(), &[]),
        );
        let got: Vec<(&str, &str)> = fired
            .messages
            .iter()
            .map(|m| (m.trigger.as_str(), m.to.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("reminder", "+14155550001"),
                ("welcome", "+14155550003"),
                ("digest", "+14155550100"),
            ]
        );
        assert_eq!(fired.messages[0].body, "Ana: your appointment is tomorrow");
        assert_eq!(fired.messages[1].body, "Hi Ana, welcome to us!");
        assert_eq!(fired.messages[2].body, "2026-11-25: 1 new, 0 opted out");
        assert_eq!(fired.messages[2].event, "digest 2026-11-25");
    }

    #[test]
    fn activity_notes_record_new_events_only() {
        let previous = PreviousState {
            contact_tags: HashMap::from([("c1".to_string(), HashSet::new())]),
            message_status: HashMap::from([(1, Some("ACCEPTED".to_string())), (2, None)]),
            ..PreviousState::default()
        };
        let contacts = vec![contact("c1", "+14155550001", &[])];
        let by_number = HashMap::from([("+14155550001".to_string(), vec![0])]);
        let message = |id, inbound, body: &str, status: &str| TriggerMessage {
            id,
            inbound,
            number: "+14155550001".into(),
            body: Some(body.into()),
            status_type: Some(status.into()),
            status_subtype: None,
            submission_date: Some("2026-11-24T09:00:00".into()),
        };
        let messages = vec![
            message(1, false, "hi", "FAILED"), // status moved to FAILED since: note
            message(2, true, "old reply", ""), // seen before: nothing
            message(3, true, " Stop ", ""),    // new STOP: note
            message(4, false, "hi", "DELIVERED"),
            // Issue 18 §7: the everyday spellings of an opt-out, and START recorded.
            message(5, true, "Unsubscribe me", ""),
            message(6, true, "Stop.", ""),
            message(7, true, "START", ""),
            message(8, true, "Cancel my appointment", ""),
        ];
        let config = TriggersConfig {
            activity_notes: true,
            ..TriggersConfig::default()
        };
        let fired = fire(
            &config,
            &input(Some(&previous), &contacts, &by_number, &messages),
        );
        let events: Vec<&str> = fired.notes.iter().map(|n| n.event.as_str()).collect();
        assert_eq!(
            events,
            vec![
                "sms failed 1",
                "sms stop 3",
                "sms stop 5",
                "sms stop 6",
                "sms start 7",
                "sms received 8"
            ]
        );
    }

    #[test]
    fn templates_are_checked_when_the_pipeline_loads() {
        let mut c = config();
        assert!(c.validate().is_ok());
        c.welcome = Some(WelcomeTrigger {
            template: "Hi {frist_name}".into(),
        });
        let (key, message) = c.validate().unwrap_err();
        assert_eq!(key, "welcome.template");
        assert!(message.contains("frist_name"), "{message}");
        // A fallback is plain text: `{first_name|{company}}` would send a stray `}`.
        c.welcome = Some(WelcomeTrigger {
            template: "Hi {first_name|{company}}".into(),
        });
        let (key, message) = c.validate().unwrap_err();
        assert_eq!(key, "welcome.template");
        assert!(message.contains("plain text"), "{message}");
        let mut c = config();
        c.digest.as_mut().unwrap().to = "4155550100".into();
        assert_eq!(c.validate().unwrap_err().0, "digest.to");
    }
}
