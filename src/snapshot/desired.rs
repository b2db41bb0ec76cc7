//! The desired state: what transform decides both systems should hold, and what load diffs against
//! the snapshots. Files live in a run's `transform/` folder.

use super::schema::batch_from_rows;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};

/// Tag put on contacts marked as duplicates (transform reads it back, load writes it).
pub const DUPLICATE_TAG: &str = "contactsync:duplicate";
/// Tag put on contacts whose number opted out by SMS (an event: load owes it once planned).
pub const OPTED_OUT_TAG: &str = "sms:opted-out";
/// Tag put on leads created from inbound SMS (no welcome: the conversation is already open).
pub const SMS_LEAD_TAG: &str = "sms:lead";
/// `source` of those leads: set in the same write that creates them, so a lead whose tag write
/// was cut short (a crash between the create and the tag) is still known as one.
pub const SMS_LEAD_SOURCE: &str = "sms inbound";

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn list(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        true,
    )
}

/// `transform/desired_contacts.parquet`: one row per GHL contact to create or change.
pub const DESIRED_CONTACTS_FILE: &str = "desired_contacts.parquet";

/// `transform/desired_contacts.parquet`: one row per GHL contact to create or change.
pub fn desired_contacts_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                utf8("contact_id", true),
                utf8("first_name", true),
                utf8("last_name", true),
                utf8("email", true),
                utf8("phone", true),
                utf8("company_name", true),
                utf8("city", true),
                utf8("postal_code", true),
                utf8("country", true),
                utf8("source", true),
                list("add_tags"),
                list("remove_tags"),
                Field::new("sms_dnd", DataType::Boolean, true),
                utf8("sms_dnd_event", true),
                Field::new(
                    "custom_fields",
                    DataType::List(Arc::new(Field::new(
                        "item",
                        DataType::Struct(vec![utf8("id", false), utf8("value", false)].into()),
                        true,
                    ))),
                    true,
                ),
                utf8("duplicate_of", true),
                utf8("event", true),
                utf8("reason", false),
            ]))
        })
        .clone()
}

/// A row of [`desired_contacts_schema`]. `contact_id` empty = create; a `None` field = leave as is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DesiredContact {
    pub contact_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company_name: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub source: Option<String>,
    #[serde(default)]
    pub add_tags: Vec<String>,
    #[serde(default)]
    pub remove_tags: Vec<String>,
    /// `Some(true)`: SMS DND must be on (the number opted out).
    pub sms_dnd: Option<bool>,
    /// The opt-out that asks for the DND: it names the DND write, so a later opt-out of the same
    /// number (after an operator cleared the DND) writes it again instead of finding it done.
    pub sms_dnd_event: Option<String>,
    /// Custom field values to set (by GHL custom field id).
    #[serde(default)]
    pub custom_fields: Vec<DesiredCustomField>,
    /// The surviving contact when this one is a duplicate.
    pub duplicate_of: Option<String>,
    /// The message event that asks for these writes (a delivery status, a failure streak): it
    /// names the operations, so the same tag asked again by a later event is written again.
    #[serde(default)]
    pub event: Option<String>,
    /// Why (shown in the plan).
    pub reason: String,
}

/// A custom field value a contact must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DesiredCustomField {
    pub id: String,
    pub value: String,
}

/// `transform/desired_messages.parquet`: SMS the triggers ask for.
pub fn desired_messages_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                utf8("to", false),
                utf8("body", false),
                utf8("trigger", false),
                utf8("event", false),
                utf8("contact_id", true),
            ]))
        })
        .clone()
}

/// A row of [`desired_messages_schema`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DesiredMessage {
    /// E.164.
    pub to: String,
    pub body: String,
    pub trigger: String,
    /// The event the trigger fired for: one message per number, trigger and event, ever.
    pub event: String,
    pub contact_id: Option<String>,
}

/// `transform/desired_notes.parquet`: notes to add for messaging events.
pub fn desired_notes_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                utf8("contact_id", false),
                utf8("body", false),
                utf8("event", false),
            ]))
        })
        .clone()
}

/// A row of [`desired_notes_schema`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DesiredNote {
    pub contact_id: String,
    pub body: String,
    /// The event the note records (part of its identity).
    pub event: String,
}

/// `transform/desired_tasks.parquet`: GHL tasks the message workflows ask to create, keep current
/// or complete.
pub fn desired_tasks_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                utf8("contact_id", false),
                utf8("event", false),
                Field::new("complete", DataType::Boolean, false),
                utf8("title", false),
                utf8("body", false),
                utf8("due_date", false),
                utf8("assigned_to", true),
                utf8("reason", false),
                list("replies"),
                Field::new("new_reply", DataType::Boolean, true),
            ]))
        })
        .clone()
}

/// A row of [`desired_tasks_schema`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DesiredTask {
    pub contact_id: String,
    /// The event the task follows up: one task per contact and event, ever.
    pub event: String,
    /// `false`: create the task (or, with `replies`, keep it current); `true`: complete the task
    /// created for `event` (title, body and due date are then empty).
    pub complete: bool,
    pub title: String,
    pub body: String,
    /// RFC 3339.
    pub due_date: String,
    /// GHL user id.
    pub assigned_to: Option<String>,
    /// Why (shown in the plan).
    pub reason: String,
    /// A follow-up of a conversation (an open task, not a completion): the events of the replies
    /// it follows up, oldest first (`event` is the first). Load keeps the task made for the
    /// earliest of them that has one current instead of making another; empty for other tasks.
    #[serde(default)]
    pub replies: Vec<String>,
    /// With `replies`: one of them is new since the last acting run, so load may make the task
    /// when none of them has one yet (a conversation only ever seen by a baseline run gets none).
    #[serde(default)]
    pub new_reply: bool,
}

/// Where the desired tasks live in a run's `transform/` folder.
pub const DESIRED_TASKS_FILE: &str = "desired_tasks.parquet";

/// `transform/desired_blocked.parquet`: numbers that must be on the BulkSMS blocked list.
pub fn desired_blocked_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                utf8("phone_number", false),
                utf8("reason", false),
            ]))
        })
        .clone()
}

/// A row of [`desired_blocked_schema`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DesiredBlocked {
    /// E.164 with `+` ([`super::phone::e164`]).
    pub phone_number: String,
    pub reason: String,
}

/// Writes rows of a desired-state table.
pub fn write_rows<T: Serialize>(
    path: &std::path::Path,
    schema: &SchemaRef,
    rows: &[T],
) -> anyhow::Result<u64> {
    let mut writer = super::parts::SnapshotWriter::create(path, schema)?;
    for chunk in rows.chunks(8192) {
        writer.write(&batch_from_rows(schema, chunk)?)?;
    }
    Ok(writer.finish()?)
}

/// Reads every row of a Parquet file into `T` (through JSON, so nested lists map naturally).
pub fn read_rows<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> anyhow::Result<Vec<T>> {
    read_rows_of(path, None)
}

/// [`read_rows`] of only the named columns (those the file has): a million-row table converts
/// what `T` reads, not every column.
pub fn read_columns<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    columns: &[&str],
) -> anyhow::Result<Vec<T>> {
    read_rows_of(path, Some(columns))
}

fn read_rows_of<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    columns: Option<&[&str]>,
) -> anyhow::Result<Vec<T>> {
    use anyhow::Context;
    let mut out = Vec::new();
    for batch in super::parts::read_batches(path)? {
        let mut batch = batch?;
        if let Some(columns) = columns {
            let schema = batch.schema();
            let kept: Vec<usize> = columns
                .iter()
                .filter_map(|c| schema.index_of(c).ok())
                .collect();
            batch = batch.project(&kept)?;
        }
        let mut writer = arrow::json::ArrayWriter::new(Vec::new());
        writer.write(&batch)?;
        writer.finish()?;
        let bytes = writer.into_inner();
        if bytes.is_empty() {
            continue;
        }
        let rows: Vec<T> = serde_json::from_slice(&bytes)
            .with_context(|| format!("reading rows of {}", path.display()))?;
        out.extend(rows);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_rows_round_trip_through_parquet() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("desired_contacts.parquet");
        let rows = vec![
            DesiredContact {
                contact_id: Some("c1".into()),
                add_tags: vec!["sms:opted-out".into()],
                sms_dnd: Some(true),
                reason: "STOP received".into(),
                ..Default::default()
            },
            DesiredContact {
                first_name: Some("Ana".into()),
                email: Some("ana@example.com".into()),
                reason: "inbound lead".into(),
                ..Default::default()
            },
        ];
        write_rows(&path, &desired_contacts_schema(), &rows).expect("write");
        let back: Vec<DesiredContact> = read_rows(&path).expect("read");
        assert_eq!(back, rows);
    }
}
