//! An inbound SMS reply → a follow-up task on each contact with the number, one per message, ever
//! (the task is named by the BulkSMS message id). The task is completed once the reply is dealt
//! with: an SMS to the number sent after it, or a later reply containing one of the configured
//! resolve keywords. Load finds the id of the task to complete in its ledger.

use super::{
    TriggerEvents, check_assignee, check_template, contact_values, contacts_of, due_after,
    parse_time,
};
use crate::snapshot::desired::DesiredTask;
use crate::transform::reply_keywords;
use crate::transform::triggers::{PreviousState, TriggerMessage, render};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::HashMap;

/// `[transform.workflows.reply_task]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyTaskConfig {
    /// Task title; placeholders `{first_name}`, `{last_name}`, `{full_name}`, `{company}`,
    /// `{number}`, `{received}`, `{message}` (with an optional fallback after `|`).
    #[serde(default = "default_title")]
    pub title: String,
    /// Task body, the same placeholders; it must hold `{message}`.
    #[serde(default = "default_body")]
    pub body: String,
    /// Hours after the reply's arrival the task is due.
    #[serde(default = "default_due_hours")]
    pub due_hours: u32,
    /// GHL user id the task is assigned to (unassigned when unset).
    pub assigned_to: Option<String>,
    /// Words or phrases that, in a later reply, close the task without an answer ("thanks",
    /// "resolved"); matched case-insensitively as whole words. None by default.
    #[serde(default)]
    pub resolve_keywords: Vec<String>,
}

fn default_title() -> String {
    "SMS reply from {full_name|a contact} ({number})".into()
}

fn default_body() -> String {
    "SMS from {number} at {received}:\n{message}".into()
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
    "received",
    "message",
];

impl ReplyTaskConfig {
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        check_template("title", &self.title, &PLACEHOLDERS)?;
        check_template("body", &self.body, &PLACEHOLDERS)?;
        if !super::placeholders(&self.body).contains(&"message") {
            return Err((
                "body".into(),
                "must hold `{message}` (the reply the task follows up)".into(),
            ));
        }
        if self.due_hours == 0 || self.due_hours > 24 * 365 {
            return Err((
                "due_hours".into(),
                format!("must be 1 to 8760 hours, got {}", self.due_hours),
            ));
        }
        if let Some((i, _)) = self
            .resolve_keywords
            .iter()
            .enumerate()
            .find(|(_, k)| words(k).is_empty())
        {
            return Err((format!("resolve_keywords[{i}]"), "must hold a word".into()));
        }
        check_assignee(self.assigned_to.as_deref())
    }
}

/// The event that names the task of a reply.
pub fn reply_event(message_id: u64) -> String {
    format!("sms reply {message_id}")
}

/// Lowercase words of a text, space-separated.
fn words(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `body` holds one of `keywords` as whole words.
fn has_keyword(body: &str, keywords: &[String]) -> bool {
    let body = format!(" {} ", words(body));
    keywords
        .iter()
        .map(|k| words(k))
        .any(|k| !k.is_empty() && body.contains(&format!(" {k} ")))
}

/// A message with its time.
struct Dated<'a> {
    at: DateTime<Utc>,
    message: &'a TriggerMessage,
}

/// Whether the reply `at` was dealt with: an SMS to the number after it that did not fail, or a
/// later reply with a resolve keyword.
fn resolved(reply: &Dated<'_>, thread: &[Dated<'_>], keywords: &[String]) -> bool {
    thread.iter().any(|d| {
        d.at > reply.at
            && if d.message.inbound {
                d.message
                    .body
                    .as_deref()
                    .is_some_and(|b| has_keyword(b, keywords))
            } else {
                d.message.status_type.as_deref() != Some("FAILED")
            }
    })
}

/// Task creations for replies new since the previous acting run (`previous`; `None`: a baseline
/// run, which creates none) and completions for every reply that has been dealt with.
pub fn tasks(
    config: &ReplyTaskConfig,
    events: &TriggerEvents,
    previous: Option<&PreviousState>,
) -> Vec<DesiredTask> {
    let mut threads: HashMap<&str, Vec<Dated<'_>>> = HashMap::new();
    for m in &events.messages {
        match m.submission_date.as_deref().and_then(parse_time) {
            Some(at) => threads
                .entry(m.number.as_str())
                .or_default()
                .push(Dated { at, message: m }),
            None => tracing::debug!(message = m.id, "SMS without a readable date; no reply task"),
        }
    }
    let mut out = Vec::new();
    let mut numbers: Vec<&&str> = threads.keys().collect();
    numbers.sort();
    for number in numbers {
        let thread = &threads[*number];
        let contacts = contacts_of(events, number);
        if contacts.is_empty() {
            continue;
        }
        for reply in thread.iter().filter(|d| d.message.inbound) {
            let m = reply.message;
            let body = m.body.as_deref().unwrap_or("").trim();
            // STOP and START are opt-out business, and a "thanks" closes, it does not ask.
            let is_keyword = reply_keywords::classify(body).is_some()
                || has_keyword(body, &config.resolve_keywords);
            let event = reply_event(m.id);
            if resolved(reply, thread, &config.resolve_keywords) {
                for c in &contacts {
                    out.push(DesiredTask {
                        contact_id: c.id.clone(),
                        event: event.clone(),
                        complete: true,
                        reason: format!("the reply of message {} was answered or resolved", m.id),
                        ..DesiredTask::default()
                    });
                }
                continue;
            }
            let is_new = previous.is_some_and(|p| !p.message_status.contains_key(&m.id));
            if !is_new || is_keyword {
                continue;
            }
            let received = reply.at.format("%Y-%m-%d %H:%M UTC").to_string();
            for c in &contacts {
                let mut values = contact_values(c, number);
                values.insert("received", received.clone());
                values.insert("message", body.to_string());
                out.push(DesiredTask {
                    contact_id: c.id.clone(),
                    event: event.clone(),
                    complete: false,
                    title: render(&config.title, &values),
                    body: render(&config.body, &values),
                    due_date: due_after(reply.at, config.due_hours),
                    assigned_to: config.assigned_to.clone(),
                    reason: format!("SMS reply {} from {number} waits for an answer", m.id),
                });
            }
        }
    }
    out
}
