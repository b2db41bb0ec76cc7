//! Confirming a reminder by reply: a reminder whose rule has `confirm_reply` is remembered in
//! `transform/reminders.parquet` (carried from run to run for [`KEEP_DAYS`]); once BulkSMS shows it
//! sent (found by the `userSuppliedId` load gives each send), a later inbound message from its
//! number holding one of the keywords asks for the confirmation tag or field on the contact. The
//! write is keyed by its payload, so the ledger applies it once.

use super::inputs::MessageRowIn;
use super::triggers::TriggersConfig;
use crate::snapshot::contract::plan::{PlanOp, user_supplied_id};
use crate::snapshot::desired::{DesiredContact, DesiredCustomField, DesiredMessage, read_rows};
use crate::snapshot::phone::digits;
use crate::snapshot::run::RunDir;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// `transform/reminders.parquet`.
pub const REMINDERS_FILE: &str = "reminders.parquet";
/// How long a reminder can be confirmed by reply.
pub const KEEP_DAYS: i64 = 30;

/// A reminder that a reply can confirm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfirmableReminder {
    pub contact_id: String,
    /// E.164, as sent.
    pub to: String,
    /// The reminder's event (with `to`, it names the send).
    pub event: String,
    /// Confirming words, one per line.
    pub keywords: String,
    pub confirm_tag: Option<String>,
    pub confirm_field: Option<String>,
    pub confirm_value: Option<String>,
    /// `YYYY-MM-DD` of the run that fired it.
    pub fired_on: String,
}

/// Schema of [`REMINDERS_FILE`].
pub fn reminders_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let utf8 = |n: &str, nullable| Field::new(n, DataType::Utf8, nullable);
            Arc::new(Schema::new(vec![
                utf8("contact_id", false),
                utf8("to", false),
                utf8("event", false),
                utf8("keywords", false),
                utf8("confirm_tag", true),
                utf8("confirm_field", true),
                utf8("confirm_value", true),
                utf8("fired_on", false),
            ]))
        })
        .clone()
}

/// The confirmable reminders of the latest earlier transformed run (empty on a first run or
/// when it had none).
pub fn previous_reminders(run: &RunDir) -> anyhow::Result<Vec<ConfirmableReminder>> {
    let Some(previous) = run.previous_transformed()? else {
        return Ok(Vec::new());
    };
    let path = previous.transform_dir().join(REMINDERS_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    read_rows(&path)
}

/// The earlier reminders still inside [`KEEP_DAYS`] plus this run's reminders whose rule confirms
/// by reply (`rules`: the rule of each reminder, by to and event).
pub fn remember(
    config: &TriggersConfig,
    earlier: Vec<ConfirmableReminder>,
    fired: &[DesiredMessage],
    rules: &HashMap<(String, String), usize>,
    run_date: &str,
) -> Vec<ConfirmableReminder> {
    let today = chrono::NaiveDate::parse_from_str(run_date, "%Y-%m-%d").ok();
    let mut out: Vec<ConfirmableReminder> = earlier
        .into_iter()
        .filter(|r| {
            let fired = chrono::NaiveDate::parse_from_str(&r.fired_on, "%Y-%m-%d").ok();
            match (today, fired) {
                (Some(t), Some(f)) => (t - f).num_days() <= KEEP_DAYS,
                _ => true,
            }
        })
        .collect();
    for m in fired.iter().filter(|m| m.trigger == "reminder") {
        let Some(contact_id) = &m.contact_id else {
            continue;
        };
        let Some(rule) = rules
            .get(&(m.to.clone(), m.event.clone()))
            .and_then(|&i| config.reminder.get(i))
        else {
            continue;
        };
        if rule.confirm_reply.is_empty() {
            continue;
        }
        if out.iter().any(|r| r.to == m.to && r.event == m.event) {
            continue;
        }
        out.push(ConfirmableReminder {
            contact_id: contact_id.clone(),
            to: m.to.clone(),
            event: m.event.clone(),
            keywords: rule.confirm_reply.join("\n"),
            confirm_tag: rule.confirm_tag.clone(),
            confirm_field: rule.confirm_field.clone(),
            confirm_value: rule.confirm_value.clone(),
            fired_on: run_date.to_string(),
        });
    }
    out
}

/// Whether `body` holds `keyword` as a word (case and surrounding punctuation ignored).
pub fn holds_keyword(body: &str, keyword: &str) -> bool {
    let keyword = keyword.trim();
    !keyword.is_empty()
        && body
            .split_whitespace()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
            .any(|w| w.eq_ignore_ascii_case(keyword))
}

/// The confirmations the messages show: for each remembered reminder that BulkSMS shows sent, an
/// inbound message from its number, after it, with a keyword.
pub fn confirmations(
    reminders: &[ConfirmableReminder],
    messages: &[MessageRowIn],
) -> Vec<DesiredContact> {
    let sent_at: HashMap<&str, chrono::DateTime<chrono::Utc>> = messages
        .iter()
        .filter(|m| m.message_type == "SENT")
        .filter_map(|m| Some((m.user_supplied_id.as_deref()?, m.submitted()?)))
        .collect();
    let mut out = Vec::new();
    for r in reminders {
        let key = PlanOp::SendSms {
            to: r.to.clone(),
            body: String::new(),
            trigger: "reminder".into(),
            event: r.event.clone(),
            contact_id: Some(r.contact_id.clone()),
            encoding: String::new(),
            parts: 0,
        }
        .idempotency_key();
        let Some(sent) = sent_at.get(user_supplied_id(&key).as_str()) else {
            continue;
        };
        let number = digits(&r.to);
        let reply = messages.iter().find(|m| {
            m.message_type != "SENT"
                && m.from.as_deref().is_some_and(|f| digits(f) == number)
                && m.submitted().is_some_and(|d| d > *sent)
                && m.body
                    .as_deref()
                    .is_some_and(|b| r.keywords.lines().any(|k| holds_keyword(b, k)))
        });
        let Some(reply) = reply else { continue };
        out.push(DesiredContact {
            contact_id: Some(r.contact_id.clone()),
            add_tags: r.confirm_tag.iter().cloned().collect(),
            custom_fields: r
                .confirm_field
                .iter()
                .map(|id| DesiredCustomField {
                    id: id.clone(),
                    value: r
                        .confirm_value
                        .clone()
                        .unwrap_or_else(|| "confirmed".to_string()),
                })
                .collect(),
            reason: format!(
                "replied {:?} to the reminder for {} (message {})",
                reply.body.as_deref().unwrap_or(""),
                r.event,
                reply.id
            ),
            ..DesiredContact::default()
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_whole_words_only() {
        assert!(holds_keyword("C", "c"));
        assert!(holds_keyword("ok c.", "C"));
        assert!(holds_keyword("Confirm!", "confirm"));
        assert!(!holds_keyword("I can't come", "C"));
        assert!(!holds_keyword("anything", " "));
    }

    fn reminder() -> ConfirmableReminder {
        ConfirmableReminder {
            contact_id: "c1".into(),
            to: "+14155550001".into(),
            event: "contact c1 tagged x at t".into(),
            keywords: "C\nCONFIRM".into(),
            confirm_tag: Some("appointment-confirmed".into()),
            confirm_field: None,
            confirm_value: None,
            fired_on: "2026-12-05".into(),
        }
    }

    fn message(id: u64, kind: &str, body: &str, at: &str, usid: Option<String>) -> MessageRowIn {
        MessageRowIn {
            id,
            message_type: kind.into(),
            from: Some("14155550001".into()),
            to: Some("14155550001".into()),
            body: Some(body.into()),
            submission_date: Some(at.into()),
            user_supplied_id: usid,
            ..MessageRowIn::default()
        }
    }

    #[test]
    fn a_keyword_reply_after_the_sent_reminder_confirms() {
        let r = reminder();
        let key = PlanOp::SendSms {
            to: r.to.clone(),
            body: "whatever".into(),
            trigger: "reminder".into(),
            event: r.event.clone(),
            contact_id: None,
            encoding: "TEXT".into(),
            parts: 1,
        }
        .idempotency_key();
        let usid = Some(user_supplied_id(&key));
        // A "C" before the reminder went out does not count; one after does.
        let before = vec![
            message(1, "RECEIVED", "C", "2026-12-05T09:00:00", None),
            message(2, "SENT", "reminder", "2026-12-05T10:00:00", usid.clone()),
        ];
        assert!(confirmations(std::slice::from_ref(&r), &before).is_empty());
        let mut after = before.clone();
        after.push(message(
            3,
            "RECEIVED",
            "c thanks",
            "2026-12-05T11:00:00",
            None,
        ));
        let got = confirmations(std::slice::from_ref(&r), &after);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].add_tags, ["appointment-confirmed"]);
        assert_eq!(got[0].contact_id.as_deref(), Some("c1"));
        // Not sent (no message carries its userSuppliedId): nothing to confirm yet.
        let unsent: Vec<MessageRowIn> = after
            .into_iter()
            .map(|mut m| {
                m.user_supplied_id = None;
                m
            })
            .collect();
        assert!(confirmations(&[r], &unsent).is_empty());
    }

    #[test]
    fn reminders_are_kept_for_thirty_days() {
        let mut old = reminder();
        old.fired_on = "2026-10-01".into();
        let kept = remember(
            &TriggersConfig::default(),
            vec![reminder(), old],
            &[],
            &HashMap::new(),
            "2026-12-06",
        );
        assert_eq!(kept, [reminder()]);
    }
}
