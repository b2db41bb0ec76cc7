//! Message workflows: BulkSMS events turned into GHL changes. An inbound reply opens a follow-up
//! task that is completed once the contact is answered ([`reply_task`]); repeated delivery
//! failures open a "check this number" task and tag the contact ([`delivery_failures`]); the
//! contact's latest SMS status is kept in tags or a custom field ([`sms_status`]). Each is off
//! until its table is in the pipeline file (`[transform.workflows.*]`).
//!
//! Every write is named by the message event that asks for it (a message id, a failure streak), so
//! load's ledger applies it once, ever, across reruns and crashes.

pub mod delivery_failures;
pub mod reply_task;
pub mod sms_status;

use super::trigger_input::TriggerEvents;
use super::triggers::{PreviousState, TriggerContact, check_template, placeholders};
use crate::snapshot::desired::{DesiredContact, DesiredTask};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use std::collections::HashMap;

/// `[transform.workflows]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkflowsConfig {
    /// Inbound reply → follow-up task.
    pub reply_task: Option<reply_task::ReplyTaskConfig>,
    /// Repeated failed deliveries → "check this number" task and a tag.
    pub delivery_failures: Option<delivery_failures::DeliveryFailuresConfig>,
    /// Latest SMS status of each contact, in tags or a custom field.
    pub sms_status: Option<sms_status::SmsStatusConfig>,
}

impl WorkflowsConfig {
    /// Checks each workflow's table; the error names the key under `transform.workflows`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if let Some(r) = &self.reply_task {
            r.validate()
                .map_err(|(k, m)| (format!("reply_task.{k}"), m))?;
        }
        if let Some(d) = &self.delivery_failures {
            d.validate()
                .map_err(|(k, m)| (format!("delivery_failures.{k}"), m))?;
        }
        if let Some(s) = &self.sms_status {
            s.validate()
                .map_err(|(k, m)| (format!("sms_status.{k}"), m))?;
        }
        Ok(())
    }
}

/// What the workflows ask for.
#[derive(Debug, Default)]
pub struct WorkflowOutput {
    pub tasks: Vec<DesiredTask>,
    pub contacts: Vec<DesiredContact>,
}

/// Runs the configured workflows over a run's events. `previous` is `None` on the first run
/// against the location: unless `fire_on_first_run`, that run opens no task (it would open one for
/// every old reply), though statuses are written (they are state, not events).
pub fn run(
    config: &WorkflowsConfig,
    events: &TriggerEvents,
    previous: Option<&PreviousState>,
    fire_on_first_run: bool,
) -> WorkflowOutput {
    let mut out = WorkflowOutput::default();
    let empty = PreviousState::default();
    let acting = match previous {
        Some(p) => Some(p),
        None if fire_on_first_run => Some(&empty),
        None => None,
    };
    if let Some(c) = &config.reply_task {
        out.tasks.extend(reply_task::tasks(c, events, acting));
    }
    if let Some(c) = &config.delivery_failures
        && acting.is_some()
    {
        let (tasks, contacts) = delivery_failures::streak_writes(c, events);
        out.tasks.extend(tasks);
        out.contacts.extend(contacts);
    }
    if let Some(c) = &config.sms_status {
        out.contacts.extend(sms_status::status_writes(c, events));
    }
    out
}

/// Checks an optional GHL user id.
fn check_assignee(assigned_to: Option<&str>) -> Result<(), (String, String)> {
    match assigned_to {
        Some(id) if id.trim().is_empty() || id.chars().any(char::is_whitespace) => Err((
            "assigned_to".into(),
            format!("must be a GHL user id (no spaces), got {id:?}"),
        )),
        _ => Ok(()),
    }
}

/// The values of a contact's placeholders.
fn contact_values(c: &TriggerContact, number: &str) -> HashMap<&'static str, String> {
    let first = c.first_name.clone().unwrap_or_default();
    let last = c.last_name.clone().unwrap_or_default();
    HashMap::from([
        ("full_name", format!("{first} {last}").trim().to_string()),
        ("first_name", first),
        ("last_name", last),
        ("company", c.company.clone().unwrap_or_default()),
        ("number", number.to_string()),
    ])
}

/// The contacts that take a message event on `number`: every contact with the number except
/// duplicates (their survivor takes it).
fn contacts_of<'a>(events: &'a TriggerEvents, number: &str) -> Vec<&'a TriggerContact> {
    events
        .contacts_by_number
        .get(number)
        .into_iter()
        .flatten()
        .map(|&row| &events.contacts[row])
        .filter(|c| !c.duplicate)
        .collect()
}

/// A message's submission time (BulkSMS dates, with or without a zone, read as UTC).
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.and_utc())
}

/// The due date `hours` after `from`, RFC 3339 in UTC as GHL takes it.
fn due_after(from: DateTime<Utc>, hours: u32) -> String {
    (from + chrono::Duration::hours(i64::from(hours)))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests;
