//! Reminders: a templated SMS to a contact when one of its statuses changes (a tag added, a custom
//! field's value, the contact's type) or an appointment of it comes due within a window. Each
//! change or appointment is its own event, so it texts once whatever the runs around it do.

use super::{PreviousState, TriggerContact, contact_values, render};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::HashMap;

/// `[[transform.triggers.reminder]]`: exactly one of `tag`, `field`, `contact_type` and
/// `appointment_within_hours` says what fires it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderTrigger {
    /// The tag whose addition fires the reminder.
    #[serde(default)]
    pub tag: Option<String>,
    /// The GHL custom field id whose change of value fires the reminder.
    #[serde(default)]
    pub field: Option<String>,
    /// With `field`: the new values that fire (case-insensitive); empty fires on any new value.
    #[serde(default)]
    pub values: Vec<String>,
    /// The contact's type changing (`lead` → `customer`) fires the reminder: to one of these types,
    /// or to any type when the list is empty.
    #[serde(default)]
    pub contact_type: Option<Vec<String>>,
    /// An appointment of the contact starting within this many hours after the run (and not
    /// cancelled) fires the reminder, once per appointment and start time.
    #[serde(default)]
    pub appointment_within_hours: Option<u32>,
    /// Body; the welcome placeholders and the kind's own (see [`ReminderKind::placeholders`]).
    pub template: String,
    /// Replies that confirm the reminder (`["C", "CONFIRM"]`, whole words, any case): an inbound
    /// message from the contact's number after the reminder went out, holding one, sets
    /// `confirm_tag` and/or `confirm_field` on the contact.
    #[serde(default)]
    pub confirm_reply: Vec<String>,
    /// Tag a confirming reply adds.
    #[serde(default)]
    pub confirm_tag: Option<String>,
    /// Custom field id a confirming reply sets, to `confirm_value` (default `confirmed`).
    #[serde(default)]
    pub confirm_field: Option<String>,
    #[serde(default)]
    pub confirm_value: Option<String>,
}

/// What fires a reminder.
#[derive(Debug, Clone, PartialEq)]
pub enum ReminderKind<'a> {
    Tag(&'a str),
    Field { id: &'a str, values: &'a [String] },
    ContactType(&'a [String]),
    Appointment { within_hours: u32 },
}

impl ReminderKind<'_> {
    /// Placeholders the kind fills, besides the contact's.
    pub fn placeholders(&self) -> &'static [&'static str] {
        match self {
            ReminderKind::Tag(_) => &["tag"],
            ReminderKind::Field { .. } => &["field", "value", "old_value"],
            ReminderKind::ContactType(_) => &["contact_type", "old_contact_type"],
            ReminderKind::Appointment { .. } => &["appointment_time", "appointment_title"],
        }
    }
}

impl ReminderTrigger {
    /// Checks the confirmation keys: keywords need something to set, and the other way round.
    pub fn check_confirm(&self) -> Result<(), String> {
        let sets = self
            .confirm_tag
            .as_deref()
            .is_some_and(|t| !t.trim().is_empty())
            || self
                .confirm_field
                .as_deref()
                .is_some_and(|f| !f.trim().is_empty());
        let words = self.confirm_reply.iter().any(|w| !w.trim().is_empty());
        match (words, sets) {
            (true, false) => Err(
                "confirm_reply needs confirm_tag or confirm_field (what a confirming reply sets)"
                    .into(),
            ),
            (false, true) => Err(
                "confirm_tag and confirm_field need confirm_reply (the words that confirm)".into(),
            ),
            _ if self.confirm_value.is_some() && self.confirm_field.is_none() => {
                Err("confirm_value needs confirm_field".into())
            }
            _ => Ok(()),
        }
    }

    /// What fires it; the error says why the table is not one kind.
    pub fn kind(&self) -> Result<ReminderKind<'_>, String> {
        let mut kinds = Vec::new();
        if let Some(tag) = &self.tag {
            if tag.trim().is_empty() {
                return Err("tag must not be empty".into());
            }
            kinds.push(ReminderKind::Tag(tag));
        }
        if let Some(id) = &self.field {
            if id.trim().is_empty() {
                return Err("field must not be empty".into());
            }
            kinds.push(ReminderKind::Field {
                id,
                values: &self.values,
            });
        } else if !self.values.is_empty() {
            return Err("values needs field (the custom field whose values they are)".into());
        }
        if let Some(types) = &self.contact_type {
            kinds.push(ReminderKind::ContactType(types));
        }
        if let Some(hours) = self.appointment_within_hours {
            if hours == 0 {
                return Err("appointment_within_hours must be at least 1".into());
            }
            kinds.push(ReminderKind::Appointment {
                within_hours: hours,
            });
        }
        match kinds.len() {
            1 => Ok(kinds.remove(0)),
            0 => Err(
                "set one of tag, field, contact_type or appointment_within_hours (what fires it)"
                    .into(),
            ),
            _ => Err(
                "set only one of tag, field, contact_type and appointment_within_hours (one table per kind)"
                    .into(),
            ),
        }
    }
}

/// An appointment as the reminders see it.
#[derive(Debug, Clone, Default)]
pub struct TriggerAppointment {
    pub id: String,
    pub contact_id: String,
    pub title: Option<String>,
    pub status: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
}

impl TriggerAppointment {
    fn cancelled(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| matches!(s.to_ascii_lowercase().as_str(), "cancelled" | "canceled"))
    }
}

/// A reminder to send: body, event (its identity) and the contact it goes to.
pub struct Reminder<'c> {
    pub contact: &'c TriggerContact,
    pub body: String,
    pub event: String,
}

fn same(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// The reminders the contact-status kinds fire for `c` (tag, field, type), against what the
/// previous acting run saw. A contact the previous run did not hold is new: the welcome greets it,
/// and its statuses are not changes.
pub fn status_reminders<'c>(
    reminder: &ReminderTrigger,
    c: &'c TriggerContact,
    previous: &PreviousState,
) -> Option<Reminder<'c>> {
    let before_tags = previous.contact_tags.get(&c.id);
    // The acting run the change is measured against names the event: a rerun, a later run after
    // a failed one and a micro-batch in between all see the change since the same run, and fire
    // it under one key; the same change undone and made again after a later acting run is a new
    // event. (The contact's update time would move with any other edit, texting it again.)
    let since = if previous.run_id.is_empty() {
        "-"
    } else {
        previous.run_id.as_str()
    };
    let mut values = contact_values(c);
    let event = match reminder.kind().ok()? {
        ReminderKind::Tag(tag) => {
            let has_now = c.tags.iter().any(|t| same(t, tag));
            let had = before_tags.is_some_and(|tags| tags.iter().any(|t| same(t, tag)));
            if !has_now || had {
                return None;
            }
            values.insert("tag", tag.to_string());
            format!("contact {} tagged {tag} since run {since}", c.id)
        }
        ReminderKind::Field { id, values: wanted } => {
            let before = previous.contact_fields.get(&c.id)?;
            let now = c.custom_fields.get(id).map(String::as_str).unwrap_or("");
            let old = before.get(id).map(String::as_str).unwrap_or("");
            if now.trim().is_empty()
                || same(now, old)
                || !(wanted.is_empty() || wanted.iter().any(|w| same(w, now)))
            {
                return None;
            }
            values.insert("field", id.to_string());
            values.insert("value", now.to_string());
            values.insert("old_value", old.to_string());
            format!("contact {} field {id} set to {now} since run {since}", c.id)
        }
        ReminderKind::ContactType(wanted) => {
            let before = previous.contact_types.get(&c.id)?;
            let now = c.contact_type.as_deref().unwrap_or("");
            let old = before.as_deref().unwrap_or("");
            if now.trim().is_empty()
                || same(now, old)
                || !(wanted.is_empty() || wanted.iter().any(|w| same(w, now)))
            {
                return None;
            }
            values.insert("contact_type", now.to_string());
            values.insert("old_contact_type", old.to_string());
            format!("contact {} type changed to {now} since run {since}", c.id)
        }
        ReminderKind::Appointment { .. } => return None,
    };
    Some(Reminder {
        contact: c,
        body: render(&reminder.template, &values),
        event,
    })
}

/// The reminders of appointments starting within the window after `now`, not cancelled, of
/// contacts that can be texted. One per appointment and start time: a rescheduled appointment is
/// reminded of again.
pub fn appointment_reminders<'c>(
    reminder: &ReminderTrigger,
    appointments: &[TriggerAppointment],
    contacts: &'c [TriggerContact],
    now: DateTime<Utc>,
) -> Vec<Reminder<'c>> {
    let Ok(ReminderKind::Appointment { within_hours }) = reminder.kind() else {
        return Vec::new();
    };
    let until = now + chrono::Duration::hours(i64::from(within_hours));
    let by_id: HashMap<&str, &TriggerContact> =
        contacts.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut out = Vec::new();
    for a in appointments {
        let Some(start) = a.start_time else { continue };
        if start <= now || start > until || a.cancelled() {
            continue;
        }
        let Some(c) = by_id.get(a.contact_id.as_str()).copied() else {
            continue;
        };
        let mut values = contact_values(c);
        values.insert("appointment_time", local_time(start, c.timezone.as_deref()));
        values.insert("appointment_title", a.title.clone().unwrap_or_default());
        out.push(Reminder {
            contact: c,
            body: render(&reminder.template, &values),
            event: format!("appointment {} starting {}", a.id, start.to_rfc3339()),
        });
    }
    out
}

/// `Mon 7 Dec 15:00` in the contact's time zone (UTC, said so, when it has none).
fn local_time(at: DateTime<Utc>, timezone: Option<&str>) -> String {
    match timezone.and_then(|t| t.parse::<chrono_tz::Tz>().ok()) {
        Some(zone) => at
            .with_timezone(&zone)
            .format("%a %-d %b %H:%M")
            .to_string(),
        None => at.format("%a %-d %b %H:%M UTC").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn contact(id: &str) -> TriggerContact {
        TriggerContact {
            id: id.into(),
            first_name: Some("Ana".into()),
            phone: Some("+14155550001".into()),
            date_updated: Some("2026-11-24T10:00:00".into()),
            ..TriggerContact::default()
        }
    }

    fn trigger(toml_text: &str) -> ReminderTrigger {
        toml::from_str(toml_text).expect("reminder table")
    }

    #[test]
    fn a_field_change_to_a_listed_value_fires_once_per_change() {
        let r = trigger(
            "field = \"status_cf\"\nvalues = [\"Booked\"]\ntemplate = \"{first_name}: {old_value|new} -> {value}\"",
        );
        let previous = PreviousState {
            run_id: "r1".into(),
            contact_tags: HashMap::from([("c1".into(), HashSet::new())]),
            contact_fields: HashMap::from([(
                "c1".into(),
                HashMap::from([("status_cf".into(), "lead".into())]),
            )]),
            ..PreviousState::default()
        };
        let mut c = contact("c1");
        c.custom_fields = HashMap::from([("status_cf".into(), "booked".into())]);
        let fired = status_reminders(&r, &c, &previous).expect("fires");
        assert_eq!(fired.body, "Ana: lead -> booked");
        assert_eq!(
            fired.event,
            "contact c1 field status_cf set to booked since run r1"
        );
        // A value not listed, the same value, and a contact new to this run do not fire.
        c.custom_fields = HashMap::from([("status_cf".into(), "lost".into())]);
        assert!(status_reminders(&r, &c, &previous).is_none());
        c.custom_fields = HashMap::from([("status_cf".into(), "Lead".into())]);
        assert!(status_reminders(&r, &c, &previous).is_none());
        c.custom_fields = HashMap::from([("status_cf".into(), "booked".into())]);
        assert!(status_reminders(&r, &c, &PreviousState::default()).is_none());
    }

    #[test]
    fn a_type_change_fires_and_names_both_types() {
        let r = trigger(
            "contact_type = [\"customer\"]\ntemplate = \"{first_name}, welcome as a {contact_type} (was {old_contact_type})\"",
        );
        let previous = PreviousState {
            run_id: "r1".into(),
            contact_types: HashMap::from([("c1".into(), Some("lead".into()))]),
            ..PreviousState::default()
        };
        let mut c = contact("c1");
        c.contact_type = Some("customer".into());
        let fired = status_reminders(&r, &c, &previous).expect("fires");
        assert_eq!(fired.body, "Ana, welcome as a customer (was lead)");
        assert_eq!(
            fired.event,
            "contact c1 type changed to customer since run r1"
        );
        c.contact_type = Some("lead".into());
        assert!(status_reminders(&r, &c, &previous).is_none());
    }

    #[test]
    fn appointments_inside_the_window_and_not_cancelled_fire() {
        let r = trigger(
            "appointment_within_hours = 24\ntemplate = \"{first_name}: {appointment_title} {appointment_time}\"",
        );
        let now: DateTime<Utc> = "2026-12-06T12:00:00Z".parse().expect("time");
        let at = |h: i64| Some(now + chrono::Duration::hours(h));
        let mut ny = contact("c1");
        ny.timezone = Some("America/New_York".into());
        let contacts = vec![ny, contact("c2")];
        let appointment = |id: &str, contact: &str, start, status: &str| TriggerAppointment {
            id: id.into(),
            contact_id: contact.into(),
            title: Some("Boiler service".into()),
            status: Some(status.into()),
            start_time: start,
        };
        let appointments = vec![
            appointment("a1", "c1", at(3), "confirmed"),
            appointment("a2", "c2", at(23), "new"),
            appointment("past", "c1", at(-1), "confirmed"),
            appointment("late", "c1", at(25), "confirmed"),
            appointment("off", "c1", at(2), "Cancelled"),
            appointment("stranger", "nobody", at(2), "new"),
        ];
        let fired = appointment_reminders(&r, &appointments, &contacts, now);
        let got: Vec<(&str, &str)> = fired
            .iter()
            .map(|f| (f.contact.id.as_str(), f.body.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("c1", "Ana: Boiler service Sun 6 Dec 10:00"),
                ("c2", "Ana: Boiler service Mon 7 Dec 11:00 UTC"),
            ]
        );
        assert_eq!(
            fired[0].event,
            "appointment a1 starting 2026-12-06T15:00:00+00:00"
        );
    }

    #[test]
    fn a_table_is_exactly_one_kind() {
        assert!(trigger("tag = \"x\"\ntemplate = \"t\"").kind().is_ok());
        let none = trigger("template = \"t\"").kind().unwrap_err();
        assert!(none.contains("set one of"), "{none}");
        let two = trigger("tag = \"x\"\nappointment_within_hours = 2\ntemplate = \"t\"")
            .kind()
            .unwrap_err();
        assert!(two.contains("only one"), "{two}");
        let stray = trigger("values = [\"a\"]\ntemplate = \"t\"")
            .kind()
            .unwrap_err();
        assert!(stray.contains("values needs field"), "{stray}");
    }
}
