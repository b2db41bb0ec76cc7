//! The emulated account: messages (statuses computed from the simulated clock), blocked numbers,
//! credits, the daily quota, deduplication-id replays and webhooks.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// Seconds after submission a message is handed on (ACCEPTED → SENT).
pub const SENT_AFTER_SECS: i64 = 2;
/// Seconds after submission a message reaches its final status.
pub const FINAL_AFTER_SECS: i64 = 10;
/// How long a `deduplication-id` replays its first answer.
pub const DEDUP_WINDOW_HOURS: i64 = 12;

/// Direction of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

/// How a sent message ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Failed(&'static str),
    /// Stays where it is (seeded history may hold SENT or UNKNOWN messages).
    Stuck(&'static str),
}

/// A message.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: u64,
    pub direction: Direction,
    pub from: String,
    pub to: String,
    pub body: String,
    pub encoding: &'static str,
    pub submission_id: String,
    pub submitted_at: DateTime<Utc>,
    pub user_supplied_id: Option<String>,
    pub related_sent_message_id: Option<u64>,
    pub parts: u32,
    pub credit_cost: f64,
    pub outcome: Outcome,
}

impl Message {
    /// `(type, subtype)` of the status at `now`.
    pub fn status_at(&self, now: DateTime<Utc>) -> (&'static str, Option<&'static str>) {
        if self.direction == Direction::Received {
            // Documented choice: the spec's status enum has no RECEIVED; an inbound message is
            // reported as DELIVERED (it reached the account).
            return ("DELIVERED", None);
        }
        let age = now - self.submitted_at;
        if age < Duration::seconds(SENT_AFTER_SECS) {
            return ("ACCEPTED", None);
        }
        if age < Duration::seconds(FINAL_AFTER_SECS) {
            return ("SENT", None);
        }
        match &self.outcome {
            Outcome::Delivered => ("DELIVERED", None),
            Outcome::Failed(subtype) => ("FAILED", Some(subtype)),
            Outcome::Stuck(status) => (status, None),
        }
    }

    /// The message in the API shape and key order observed on the wire.
    pub fn to_json(&self, now: DateTime<Utc>, fresh_submission: bool) -> Value {
        let (status_type, subtype) = self.status_at(now);
        let status_type = if fresh_submission {
            "ACCEPTED"
        } else {
            status_type
        };
        let subtype = if fresh_submission { None } else { subtype };
        let status_id = format!("{status_type}.{}", subtype.unwrap_or("null"));
        json!({
            "id": self.id.to_string(),
            "type": if self.direction == Direction::Sent { "SENT" } else { "RECEIVED" },
            "from": self.from,
            "to": self.to,
            "body": self.body,
            "encoding": self.encoding,
            "protocolId": 0,
            "messageClass": 0,
            "submission": {
                "id": self.submission_id,
                "date": self.submitted_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            },
            "status": {"id": status_id, "type": status_type, "subtype": subtype},
            "relatedSentMessageId": self.related_sent_message_id.map(|id| id.to_string()),
            "userSuppliedId": self.user_supplied_id,
            "numberOfParts": if fresh_submission { None } else { Some(self.parts) },
            "creditCost": if fresh_submission { None } else { Some(self.credit_cost) },
        })
    }
}

/// A remembered `deduplication-id` answer.
#[derive(Debug, Clone)]
pub struct DedupEntry {
    pub at: DateTime<Utc>,
    pub response: Value,
}

/// A webhook.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: u64,
    pub body: serde_json::Map<String, Value>,
}

/// The account.
#[derive(Debug, Default)]
pub struct AccountState {
    pub messages: BTreeMap<u64, Message>,
    /// Digits → blocked entry id.
    pub blocked: BTreeMap<String, u64>,
    /// Blocked entry id → the number as it was written, for `min-id` paging.
    pub blocked_by_id: BTreeMap<u64, String>,
    pub next_message_id: u64,
    pub next_blocked_id: u64,
    pub next_submission: u64,
    pub credits: f64,
    pub quota_size: i64,
    pub quota_used_today: i64,
    pub quota_day: i64,
    pub dedup: HashMap<i64, DedupEntry>,
    /// userSuppliedId → message ids.
    pub by_user_id: HashMap<String, Vec<u64>>,
    pub webhooks: BTreeMap<u64, Webhook>,
    pub next_webhook_id: u64,
}

impl AccountState {
    /// Blocks a number, kept as it was written (with or without `+`: the spec's E.164 examples
    /// show both) and matched by its digits; false when it was already blocked.
    pub fn block(&mut self, written: &str) -> bool {
        let digits: String = written.chars().filter(char::is_ascii_digit).collect();
        if self.blocked.contains_key(&digits) {
            return false;
        }
        self.next_blocked_id += 1;
        self.blocked.insert(digits, self.next_blocked_id);
        self.blocked_by_id
            .insert(self.next_blocked_id, written.trim().to_string());
        true
    }

    /// Adds a message and indexes it.
    pub fn insert(&mut self, message: Message) {
        if let Some(user_id) = &message.user_supplied_id {
            self.by_user_id
                .entry(user_id.clone())
                .or_default()
                .push(message.id);
        }
        self.messages.insert(message.id, message);
    }

    /// Quota left today (the day turns at 00:00 UTC of the simulated clock).
    pub fn quota_remaining(&mut self, now: DateTime<Utc>) -> i64 {
        let day = now.timestamp().div_euclid(86_400);
        if day != self.quota_day {
            self.quota_day = day;
            self.quota_used_today = 0;
        }
        self.quota_size - self.quota_used_today
    }

    /// The state in API shapes (for `/_sandbox/state`).
    pub fn to_json(&self, now: DateTime<Utc>) -> Value {
        json!({
            "messages": self.messages.values().map(|m| m.to_json(now, false)).collect::<Vec<_>>(),
            "blocked_numbers": self.blocked_by_id.iter()
                .map(|(id, number)| json!({"id": id, "phoneNumber": number}))
                .collect::<Vec<_>>(),
        })
    }
}
