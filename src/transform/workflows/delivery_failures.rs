//! Repeated delivery failures → one "check this number" task and a tag on each contact with the
//! number, once per failure streak. A streak is the run of failed sends to a number since its last
//! delivered one; it counts once `failures` of them fall within `window_days`. The streak is named
//! by its first failed message, so it is acted on once, ever; a delivery ends it and a later
//! streak is a new one.

use super::{
    TriggerEvents, check_assignee, check_template, contact_values, contacts_of, due_after,
    parse_time,
};
use crate::snapshot::desired::{DesiredContact, DesiredTask};
use crate::transform::triggers::render;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[transform.workflows.delivery_failures]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryFailuresConfig {
    /// Failed deliveries that make a streak (at least 2).
    #[serde(default = "default_failures")]
    pub failures: u32,
    /// Days those failures must fall within.
    #[serde(default = "default_window_days")]
    pub window_days: u32,
    /// Tag put on the contact.
    #[serde(default = "default_tag")]
    pub tag: String,
    /// Task title; placeholders `{first_name}`, `{last_name}`, `{full_name}`, `{company}`,
    /// `{number}`, `{failures}`, `{since}`.
    #[serde(default = "default_title")]
    pub title: String,
    /// Task body, the same placeholders.
    #[serde(default = "default_body")]
    pub body: String,
    /// Hours after the failure that completed the streak the task is due.
    #[serde(default = "default_due_hours")]
    pub due_hours: u32,
    /// GHL user id the task is assigned to.
    pub assigned_to: Option<String>,
}

fn default_failures() -> u32 {
    3
}
fn default_window_days() -> u32 {
    14
}
fn default_tag() -> String {
    "sms:undeliverable".into()
}
fn default_title() -> String {
    "Check the number {number}".into()
}
fn default_body() -> String {
    "{failures} SMS to {number} failed since {since}: check the number with the contact.".into()
}
fn default_due_hours() -> u32 {
    24
}

const PLACEHOLDERS: [&str; 7] = [
    "first_name",
    "last_name",
    "full_name",
    "company",
    "number",
    "failures",
    "since",
];

impl DeliveryFailuresConfig {
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        if !(2..=100).contains(&self.failures) {
            return Err((
                "failures".into(),
                format!("must be 2 to 100, got {}", self.failures),
            ));
        }
        if !(1..=365).contains(&self.window_days) {
            return Err((
                "window_days".into(),
                format!("must be 1 to 365 days, got {}", self.window_days),
            ));
        }
        if self.tag.trim().is_empty() || self.tag.contains(',') {
            return Err((
                "tag".into(),
                format!("must be a tag name without commas, got {:?}", self.tag),
            ));
        }
        check_template("title", &self.title, &PLACEHOLDERS)?;
        check_template("body", &self.body, &PLACEHOLDERS)?;
        if self.due_hours == 0 || self.due_hours > 24 * 365 {
            return Err((
                "due_hours".into(),
                format!("must be 1 to 8760 hours, got {}", self.due_hours),
            ));
        }
        check_assignee(self.assigned_to.as_deref())
    }
}

/// A streak that counts: its first failed message and the failure that made it count.
#[derive(Debug, Clone, PartialEq)]
pub struct Streak {
    pub first_message: u64,
    pub since: DateTime<Utc>,
    pub reached_at: DateTime<Utc>,
    pub failures: usize,
}

/// A send's outcome: when, its message id, whether it failed.
pub type SendOutcome = (DateTime<Utc>, u64, bool);

/// The open streak of a number's sends (any order), if it counts.
pub fn open_streak(sends: &mut [SendOutcome], failures: u32, window_days: u32) -> Option<Streak> {
    sends.sort();
    let start = sends
        .iter()
        .rposition(|(_, _, failed)| !failed)
        .map_or(0, |i| i + 1);
    let streak = &sends[start..];
    let needed = failures as usize;
    let window = chrono::Duration::days(i64::from(window_days));
    (needed..=streak.len())
        .find(|&end| streak[end - 1].0 - streak[end - needed].0 <= window)
        .map(|end| Streak {
            first_message: streak[0].1,
            since: streak[0].0,
            reached_at: streak[end - 1].0,
            failures: streak.len(),
        })
}

/// The event that names a streak.
fn streak_event(number: &str, first_message: u64) -> String {
    format!("sms failures to {number} from message {first_message}")
}

/// The task and tag of every number whose open streak counts. Asked for on every run while the
/// streak lasts; the ledger keeps it to once per streak.
pub fn streak_writes(
    config: &DeliveryFailuresConfig,
    events: &TriggerEvents,
) -> (Vec<DesiredTask>, Vec<DesiredContact>) {
    let mut sends: BTreeMap<&str, Vec<SendOutcome>> = BTreeMap::new();
    for m in events.messages.iter().filter(|m| !m.inbound) {
        let status = m.status_type.as_deref();
        // Only outcomes count: a send still on its way neither fails nor ends a streak.
        if !matches!(status, Some("FAILED" | "DELIVERED")) {
            continue;
        }
        if let Some(at) = m.submission_date.as_deref().and_then(parse_time) {
            sends
                .entry(m.number.as_str())
                .or_default()
                .push((at, m.id, status == Some("FAILED")));
        }
    }
    let mut tasks = Vec::new();
    let mut contacts = Vec::new();
    for (number, mut sends) in sends {
        let Some(streak) = open_streak(&mut sends, config.failures, config.window_days) else {
            continue;
        };
        let event = streak_event(number, streak.first_message);
        let reason = format!(
            "{} SMS to {number} failed in a row since {}",
            streak.failures,
            streak.since.format("%Y-%m-%d")
        );
        for c in contacts_of(events, number) {
            let mut values = contact_values(c, number);
            values.insert("failures", streak.failures.to_string());
            values.insert("since", streak.since.format("%Y-%m-%d").to_string());
            tasks.push(DesiredTask {
                contact_id: c.id.clone(),
                event: event.clone(),
                complete: false,
                title: render(&config.title, &values),
                body: render(&config.body, &values),
                due_date: due_after(streak.reached_at, config.due_hours),
                assigned_to: config.assigned_to.clone(),
                reason: reason.clone(),
                ..DesiredTask::default()
            });
            contacts.push(DesiredContact {
                contact_id: Some(c.id.clone()),
                add_tags: vec![config.tag.clone()],
                event: Some(event.clone()),
                reason: reason.clone(),
                ..DesiredContact::default()
            });
        }
    }
    (tasks, contacts)
}
