//! The plan: typed operations with deterministic idempotency keys, and `load/plan.parquet` that
//! holds them. `load` builds and writes it (with `plan.md` for the person who reviews it), `load`
//! applies it and `audit` reads it back: so its types and its reader live here, in the contract.

use crate::snapshot::desired::{OPTED_OUT_TAG, SMS_LEAD_TAG, read_rows};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// One change to make in GHL or BulkSMS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlanOp {
    /// A contact that does not exist yet (upserted where the location forbids duplicates).
    CreateContact {
        /// GHL create payload (camelCase fields).
        fields: Map<String, Value>,
    },
    /// Fields of an existing contact that differ from the desired state.
    UpdateContact {
        contact_id: String,
        before: Map<String, Value>,
        after: Map<String, Value>,
        /// The message event that asks for it (part of the key): the same change asked again by
        /// a later event is a new operation, not one the ledger already shows as done.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<String>,
    },
    AddTags {
        contact_id: String,
        tags: Vec<String>,
        /// The message event that asks for it (part of the key): the same change asked again by
        /// a later event is a new operation, not one the ledger already shows as done.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<String>,
    },
    RemoveTags {
        contact_id: String,
        tags: Vec<String>,
        /// The message event that asks for it (part of the key): the same change asked again by
        /// a later event is a new operation, not one the ledger already shows as done.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<String>,
    },
    /// SMS do-not-disturb on (opted out) or off.
    SetSmsDnd {
        contact_id: String,
        active: bool,
        /// The opt-out that asked for it (part of the key: each opt-out writes DND once).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<String>,
    },
    CreateNote {
        contact_id: String,
        body: String,
    },
    CreateTask {
        contact_id: String,
        title: String,
        body: String,
        due_date: String,
        /// GHL user id the task is assigned to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assigned_to: Option<String>,
        /// The message event the task follows up (its key, like a send's): one task per event,
        /// ever, whatever the wording. `None`: keyed by the payload.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<String>,
    },
    CompleteTask {
        contact_id: String,
        task_id: String,
    },
    /// A follow-up task kept current while its conversation waits for an answer: the body with
    /// every reply so far and the due time of the latest, open again if someone closed it. Title
    /// and assignee are left as they are.
    UpdateTask {
        contact_id: String,
        task_id: String,
        /// The whole body, ending with the marker of the task's create.
        body: String,
        due_date: String,
        /// The reply that asks for it (its key): each reply updates the task once, ever.
        event: String,
    },
    /// Tag a duplicate and leave a note pointing at the record that survives.
    MarkDuplicate {
        contact_id: String,
        survivor_id: String,
    },
    /// Delete a duplicate (only with `merge = "delete"`).
    DeleteContact {
        contact_id: String,
        survivor_id: String,
    },
    /// One SMS for one trigger event.
    SendSms {
        /// E.164.
        to: String,
        body: String,
        /// The trigger that fired (welcome, reminder, digest).
        trigger: String,
        /// The event it fired for (e.g. the contact and its creation, or the digest's date): a
        /// number gets one message per trigger event, ever.
        event: String,
        contact_id: Option<String>,
        /// TEXT or UNICODE, predicted from the body.
        encoding: String,
        parts: u32,
    },
    /// Numbers to add to the BulkSMS blocked list (≤ 1,000 per operation).
    BlockNumbers {
        numbers: Vec<String>,
    },
}

impl PlanOp {
    /// Short name of the kind (`create_contact`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            PlanOp::CreateContact { .. } => "create_contact",
            PlanOp::UpdateContact { .. } => "update_contact",
            PlanOp::AddTags { .. } => "add_tags",
            PlanOp::RemoveTags { .. } => "remove_tags",
            PlanOp::SetSmsDnd { .. } => "set_sms_dnd",
            PlanOp::CreateNote { .. } => "create_note",
            PlanOp::CreateTask { .. } => "create_task",
            PlanOp::CompleteTask { .. } => "complete_task",
            PlanOp::UpdateTask { .. } => "update_task",
            PlanOp::MarkDuplicate { .. } => "mark_duplicate",
            PlanOp::DeleteContact { .. } => "delete_contact",
            PlanOp::SendSms { .. } => "send_sms",
            PlanOp::BlockNumbers { .. } => "block_numbers",
        }
    }

    /// What the operation acts on: a contact id, a phone number, or the email/phone of a new contact.
    pub fn target(&self) -> String {
        match self {
            PlanOp::CreateContact { fields } => {
                let email = fields.get("email").and_then(Value::as_str).unwrap_or("");
                let phone = fields.get("phone").and_then(Value::as_str).unwrap_or("");
                format!("new:{email}|{phone}")
            }
            PlanOp::UpdateContact { contact_id, .. }
            | PlanOp::AddTags { contact_id, .. }
            | PlanOp::RemoveTags { contact_id, .. }
            | PlanOp::SetSmsDnd { contact_id, .. }
            | PlanOp::CreateNote { contact_id, .. }
            | PlanOp::CreateTask { contact_id, .. }
            | PlanOp::CompleteTask { contact_id, .. }
            | PlanOp::UpdateTask { contact_id, .. }
            | PlanOp::MarkDuplicate { contact_id, .. }
            | PlanOp::DeleteContact { contact_id, .. } => contact_id.clone(),
            PlanOp::SendSms { to, .. } => to.clone(),
            PlanOp::BlockNumbers { numbers } => format!(
                "{} numbers from {}",
                numbers.len(),
                numbers.first().map(String::as_str).unwrap_or("-")
            ),
        }
    }

    /// The deterministic idempotency key: a hash of kind, target and what makes the effect unique.
    /// For a send that is the trigger event, not the wording, so editing a template never re-texts
    /// anyone; for a task's create or update the event that asks for it; for everything else it
    /// is the payload.
    pub fn idempotency_key(&self) -> String {
        let identity = match self {
            PlanOp::SendSms {
                to, trigger, event, ..
            } => format!("{to}|{trigger}|{event}"),
            PlanOp::CreateTask {
                event: Some(event), ..
            }
            | PlanOp::UpdateTask { event, .. } => event.clone(),
            other => serde_json::to_string(other).expect("PlanOp serialises"),
        };
        let mut hasher = Sha256::new();
        hasher.update(self.kind().as_bytes());
        hasher.update(b"|");
        hasher.update(self.target().as_bytes());
        hasher.update(b"|");
        hasher.update(identity.as_bytes());
        hex::encode(&hasher.finalize()[..16])
    }

    /// Whether an event fired it (a trigger, a messaging event, an opt-out) rather than the desired
    /// state: a later transform does not ask for it again, so once planned it is owed (in the
    /// ledger) until a load settles it. The opt-out tag counts: the opt-out that asks for it is
    /// seen once, like the DND write beside it.
    pub fn is_event_fired(&self) -> bool {
        match self {
            PlanOp::SendSms { .. } | PlanOp::CreateNote { .. } | PlanOp::SetSmsDnd { .. } => true,
            PlanOp::CreateTask { event, .. } => event.is_some(),
            PlanOp::AddTags { tags, .. } => tags.iter().any(|t| t == OPTED_OUT_TAG),
            // A lead from an inbound SMS: once created, the next transform sees a contact, not
            // an unknown number, and would not ask again for the tag a crash may have cut off.
            PlanOp::CreateContact { fields } => fields
                .get("tags")
                .and_then(Value::as_array)
                .is_some_and(|tags| tags.iter().any(|t| t.as_str() == Some(SMS_LEAD_TAG))),
            PlanOp::UpdateContact { .. }
            | PlanOp::RemoveTags { .. }
            | PlanOp::CompleteTask { .. }
            // Asked for again by every transform while the conversation waits, like a completion.
            | PlanOp::UpdateTask { .. }
            | PlanOp::MarkDuplicate { .. }
            | PlanOp::DeleteContact { .. }
            | PlanOp::BlockNumbers { .. } => false,
        }
    }

    /// The key of the task created for `event` on a contact ([`PlanOp::CreateTask`] with an
    /// event): how load finds, in the ledger, the task id a later completion needs.
    pub fn task_key(contact_id: &str, event: &str) -> String {
        PlanOp::CreateTask {
            contact_id: contact_id.to_string(),
            title: String::new(),
            body: String::new(),
            due_date: String::new(),
            assigned_to: None,
            event: Some(event.to_string()),
        }
        .idempotency_key()
    }

    /// Whether the operation writes to GHL (else BulkSMS).
    pub fn is_ghl(&self) -> bool {
        !matches!(self, PlanOp::SendSms { .. } | PlanOp::BlockNumbers { .. })
    }
}

/// How every note and task body load writes ends: `[contactsync:<key prefix>]` (see
/// `load::apply::marker`), which finds it again after a lost answer and tells the audit who made it.
pub const BODY_MARKER_PREFIX: &str = "[contactsync:";

/// `userSuppliedId` of a send (≤ 20 characters): finds the message again when its answer was lost,
/// and tells transform which message a reminder was.
pub fn user_supplied_id(key: &str) -> String {
    format!("cs{}", &key[..key.len().min(18)])
}

/// An operation with its key and the reason it was planned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedOperation {
    pub key: String,
    pub op: PlanOp,
    /// Why (for the reviewer): the rule or finding that asked for it.
    pub reason: String,
}

impl PlannedOperation {
    /// Keys an operation.
    pub fn new(op: PlanOp, reason: impl Into<String>) -> Self {
        PlannedOperation {
            key: op.idempotency_key(),
            op,
            reason: reason.into(),
        }
    }
}

/// A whole plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub run_id: String,
    pub operations: Vec<PlannedOperation>,
}

impl Plan {
    /// Operations per kind.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        let mut counts = BTreeMap::new();
        for op in &self.operations {
            *counts.entry(op.op.kind()).or_default() += 1;
        }
        counts
    }
}

/// `load/plan.parquet`.
pub fn plan_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let utf8 = |n: &str, nullable| Field::new(n, DataType::Utf8, nullable);
            Arc::new(Schema::new(vec![
                utf8("key", false),
                utf8("kind", false),
                utf8("target", false),
                utf8("reason", false),
                utf8("before_json", true),
                utf8("after_json", true),
                utf8("operation_json", false),
            ]))
        })
        .clone()
}

/// A row of [`plan_schema`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRow {
    pub key: String,
    pub kind: String,
    pub target: String,
    pub reason: String,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
    /// The whole operation (what `load` executes).
    pub operation_json: String,
}

impl PlanRow {
    /// The row of one operation.
    pub fn from_planned(op: &PlannedOperation) -> Self {
        let (before, after) = match &op.op {
            PlanOp::UpdateContact { before, after, .. } => (
                Some(serde_json::Value::Object(before.clone()).to_string()),
                Some(serde_json::Value::Object(after.clone()).to_string()),
            ),
            _ => (None, None),
        };
        PlanRow {
            key: op.key.clone(),
            kind: op.op.kind().to_string(),
            target: op.op.target(),
            reason: op.reason.clone(),
            before_json: before,
            after_json: after,
            operation_json: serde_json::to_string(&op.op).expect("PlanOp serialises"),
        }
    }
}

/// Reads a plan back from `plan.parquet`.
pub fn read_plan(dir: &Path, run_id: &str) -> anyhow::Result<Plan> {
    use anyhow::Context;
    let path = dir.join(crate::snapshot::run::PLAN_FILE);
    let rows: Vec<PlanRow> = read_rows(&path)?;
    let operations = rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let op: PlanOp = serde_json::from_str(&row.operation_json)
                .with_context(|| format!("{} row {i}: operation_json", path.display()))?;
            let planned = PlannedOperation {
                key: row.key,
                op,
                reason: row.reason,
            };
            anyhow::ensure!(
                planned.key == planned.op.idempotency_key(),
                "{} row {i}: key does not match the operation (was the plan edited?)",
                path.display()
            );
            Ok(planned)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Plan {
        run_id: run_id.to_string(),
        operations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(body: &str, event: &str) -> PlanOp {
        PlanOp::SendSms {
            to: "+14155550134".into(),
            body: body.into(),
            trigger: "welcome".into(),
            event: event.into(),
            contact_id: Some("c1".into()),
            encoding: "TEXT".into(),
            parts: 1,
        }
    }

    #[test]
    fn sends_notes_dnd_and_the_opt_out_tag_are_event_fired() {
        let contact = || "c1".to_string();
        let fired: Vec<&str> = [
            send("Hi!", "c1:created"),
            PlanOp::CreateNote {
                contact_id: contact(),
                body: "b".into(),
            },
            PlanOp::SetSmsDnd {
                contact_id: contact(),
                active: true,
                event: None,
            },
            PlanOp::AddTags {
                contact_id: contact(),
                tags: vec!["lead".into()],
                event: None,
            },
            PlanOp::AddTags {
                contact_id: contact(),
                tags: vec![OPTED_OUT_TAG.into()],
                event: None,
            },
            PlanOp::BlockNumbers { numbers: vec![] },
            PlanOp::CreateTask {
                contact_id: contact(),
                title: "t".into(),
                body: "b".into(),
                due_date: "2026-01-01".into(),
                assigned_to: None,
                event: None,
            },
            PlanOp::CreateContact {
                fields: serde_json::json!({"phone": "+14155550134", "tags": [SMS_LEAD_TAG]})
                    .as_object()
                    .cloned()
                    .expect("object"),
            },
            PlanOp::CreateContact {
                fields: serde_json::json!({"phone": "+14155550135", "tags": ["lead"]})
                    .as_object()
                    .cloned()
                    .expect("object"),
            },
        ]
        .iter()
        .filter(|op| op.is_event_fired())
        .map(PlanOp::kind)
        .collect();
        assert_eq!(
            fired,
            [
                "send_sms",
                "create_note",
                "set_sms_dnd",
                "add_tags",
                "create_contact"
            ]
        );
    }

    #[test]
    fn send_keys_name_the_event_not_the_wording() {
        assert_eq!(
            send("Hi!", "c1:created").idempotency_key(),
            send("Hello there!", "c1:created").idempotency_key()
        );
        assert_ne!(
            send("Hi!", "c1:created").idempotency_key(),
            send("Hi!", "c1:recreated").idempotency_key()
        );
    }

    #[test]
    fn other_keys_follow_the_payload_and_are_stable() {
        let a = PlanOp::AddTags {
            contact_id: "c1".into(),
            tags: vec!["vip".into()],
            event: None,
        };
        let b = PlanOp::AddTags {
            contact_id: "c1".into(),
            tags: vec!["lead".into()],
            event: None,
        };
        assert_ne!(a.idempotency_key(), b.idempotency_key());
        assert_eq!(a.idempotency_key(), a.clone().idempotency_key());
        assert_eq!(a.idempotency_key().len(), 32);
    }
}
