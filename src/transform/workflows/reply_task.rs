//! An inbound SMS reply → a follow-up task on each contact with the number, one per conversation:
//! the replies a number sends until it is answered are one conversation, and its task is named by
//! the first of them (the BulkSMS message id). A reply while the task is open adds its message to
//! the task and moves the due time (load updates the task, once per reply). The task is completed
//! once the conversation is dealt with: an SMS to the number sent after the last reply, or a later
//! reply containing one of the configured resolve keywords; a reply after that opens a new one.
//! Load finds the id of the task to update or complete in its ledger.

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

/// The replies a number sent until they were dealt with (or until now).
struct Conversation<'n, 'a> {
    replies: Vec<&'n Dated<'a>>,
    /// An SMS to the number that did not fail, or a reply with a resolve keyword, came after the
    /// last reply.
    resolved: bool,
}

/// Splits a number's thread (in time order) into conversations. A reply that asks something (not
/// STOP/START, not itself a resolve keyword) joins the open conversation or opens one; an SMS to
/// the number that did not fail, or a reply with a resolve keyword, later than the last reply
/// closes it.
fn conversations<'n, 'a>(
    thread: &'n [Dated<'a>],
    keywords: &[String],
) -> Vec<Conversation<'n, 'a>> {
    let mut out: Vec<Conversation<'n, 'a>> = Vec::new();
    for d in thread {
        let open = out.last_mut().filter(|c| !c.resolved);
        let body = d.message.body.as_deref().unwrap_or("").trim();
        let resolves = if d.message.inbound {
            has_keyword(body, keywords)
        } else {
            d.message.status_type.as_deref() != Some("FAILED")
        };
        if resolves {
            // Sent in the same second as the last reply: no answer to it.
            if let Some(c) = open.filter(|c| c.replies.last().is_some_and(|r| r.at < d.at)) {
                c.resolved = true;
            }
            continue;
        }
        // STOP and START are opt-out business: they neither ask nor answer.
        if !d.message.inbound || reply_keywords::classify(body).is_some() {
            continue;
        }
        match open {
            Some(c) => c.replies.push(d),
            None => out.push(Conversation {
                replies: vec![d],
                resolved: false,
            }),
        }
    }
    out
}

/// For each conversation, on each contact with the number: the completion of its task once it is
/// resolved (under every reply's event: ledgers from before one task per conversation hold a task
/// per reply), else one follow-up row holding every reply so far. `previous` is the previous
/// acting run (`None`: a baseline run): only a conversation with a reply new since then may open a
/// task.
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
    for thread in threads.values_mut() {
        thread.sort_by_key(|d| (d.at, d.message.id));
    }
    let mut out = Vec::new();
    let mut numbers: Vec<&&str> = threads.keys().collect();
    numbers.sort();
    for number in numbers {
        let contacts = contacts_of(events, number);
        if contacts.is_empty() {
            continue;
        }
        for conversation in conversations(&threads[*number], &config.resolve_keywords) {
            let reply_events: Vec<String> = conversation
                .replies
                .iter()
                .map(|r| reply_event(r.message.id))
                .collect();
            let (first, last) = match (conversation.replies.first(), conversation.replies.last()) {
                (Some(first), Some(last)) => (*first, *last),
                _ => continue,
            };
            if conversation.resolved {
                for c in &contacts {
                    for (event, reply) in reply_events.iter().zip(&conversation.replies) {
                        out.push(DesiredTask {
                            contact_id: c.id.clone(),
                            event: event.clone(),
                            complete: true,
                            reason: format!(
                                "the reply of message {} was answered or resolved",
                                reply.message.id
                            ),
                            ..DesiredTask::default()
                        });
                    }
                }
                continue;
            }
            let new_reply = previous.is_some_and(|p| {
                conversation
                    .replies
                    .iter()
                    .any(|r| !p.message_status.contains_key(&r.message.id))
            });
            let received = |r: &Dated<'_>| r.at.format("%Y-%m-%d %H:%M UTC").to_string();
            for c in &contacts {
                let values = |r: &Dated<'_>| {
                    let mut values = contact_values(c, number);
                    values.insert("received", received(r));
                    values.insert(
                        "message",
                        r.message.body.as_deref().unwrap_or("").trim().to_string(),
                    );
                    values
                };
                let body: Vec<String> = conversation
                    .replies
                    .iter()
                    .map(|r| render(&config.body, &values(r)))
                    .collect();
                let waiting = match conversation.replies.len() {
                    1 => format!(
                        "SMS reply {} from {number} waits for an answer",
                        first.message.id
                    ),
                    n => format!(
                        "{n} SMS replies from {number} (messages {} to {}) wait for an answer",
                        first.message.id, last.message.id
                    ),
                };
                out.push(DesiredTask {
                    contact_id: c.id.clone(),
                    event: reply_events[0].clone(),
                    complete: false,
                    title: render(&config.title, &values(first)),
                    body: body.join("\n\n"),
                    due_date: due_after(last.at, config.due_hours),
                    assigned_to: config.assigned_to.clone(),
                    reason: waiting,
                    replies: reply_events.clone(),
                    new_reply,
                });
            }
        }
    }
    out
}
