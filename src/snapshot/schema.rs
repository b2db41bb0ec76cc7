//! The Arrow schemas of every snapshot file, declared once, with the row structs that fill them.
//!
//! Row structs serialise with the same field names as their schema, so
//! [`batch_from_rows`] (arrow-json's serde decoder) turns a page of rows into a record batch with
//! the declared types. Nested API fields stay nested (lists and structs), never JSON strings where a
//! type fits; fields the schema does not know yet go to `extra_json` so nothing is lost.

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use serde::Serialize;
use std::sync::{Arc, OnceLock};

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn timestamp(name: &str, nullable: bool) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        nullable,
    )
}

fn list_of(name: &str, item: DataType) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", item, true))),
        true,
    )
}

fn struct_of(fields: Vec<Field>) -> DataType {
    DataType::Struct(Fields::from(fields))
}

macro_rules! cached_schema {
    ($name:ident, $doc:literal, $fields:expr) => {
        #[doc = $doc]
        pub fn $name() -> SchemaRef {
            static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
            SCHEMA
                .get_or_init(|| Arc::new(Schema::new($fields)))
                .clone()
        }
    };
}

cached_schema!(
    contacts_schema,
    "`extract/ghl/contacts.parquet`: one row per GHL contact.",
    vec![
        utf8("id", false),
        utf8("location_id", true),
        utf8("first_name", true),
        utf8("last_name", true),
        utf8("contact_name", true),
        utf8("email", true),
        utf8("phone", true),
        utf8("company_name", true),
        utf8("address1", true),
        utf8("city", true),
        utf8("state", true),
        utf8("postal_code", true),
        utf8("country", true),
        utf8("timezone", true),
        utf8("website", true),
        utf8("source", true),
        utf8("contact_type", true),
        utf8("assigned_to", true),
        utf8("business_id", true),
        utf8("date_of_birth", true),
        list_of("tags", DataType::Utf8),
        list_of(
            "custom_fields",
            struct_of(vec![utf8("id", false), utf8("value_json", true)])
        ),
        Field::new("dnd", DataType::Boolean, true),
        list_of(
            "dnd_settings",
            struct_of(vec![
                utf8("channel", false),
                utf8("status", true),
                utf8("message", true),
                utf8("code", true),
            ])
        ),
        timestamp("date_added", true),
        timestamp("date_updated", true),
        list_of("additional_emails", DataType::Utf8),
        list_of("additional_phones", DataType::Utf8),
        utf8("extra_json", true),
        timestamp("extracted_at", false),
    ]
);

/// A row of [`contacts_schema`].
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ContactRow {
    pub id: String,
    pub location_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub contact_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company_name: Option<String>,
    pub address1: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub timezone: Option<String>,
    pub website: Option<String>,
    pub source: Option<String>,
    pub contact_type: Option<String>,
    pub assigned_to: Option<String>,
    pub business_id: Option<String>,
    pub date_of_birth: Option<String>,
    pub tags: Vec<String>,
    pub custom_fields: Vec<CustomFieldCell>,
    /// `None` when the API answer did not carry `dnd` (search leaves it out).
    pub dnd: Option<bool>,
    /// `None` (null, not an empty list) when the answer did not carry `dndSettings`: the snapshot
    /// never claims "no DND" the API did not state.
    pub dnd_settings: Option<Vec<DndSettingCell>>,
    /// Milliseconds since the Unix epoch.
    pub date_added: Option<i64>,
    /// Milliseconds since the Unix epoch.
    pub date_updated: Option<i64>,
    pub additional_emails: Vec<String>,
    pub additional_phones: Vec<String>,
    pub extra_json: Option<String>,
    pub extracted_at: i64,
}

/// A custom field value; values of any type are kept as their JSON text.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CustomFieldCell {
    pub id: String,
    pub value_json: Option<String>,
}

/// One channel of `dndSettings`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct DndSettingCell {
    pub channel: String,
    pub status: Option<String>,
    pub message: Option<String>,
    pub code: Option<String>,
}

cached_schema!(
    tasks_schema,
    "`extract/ghl/tasks.parquet`: tasks of the contacts history was read for.",
    vec![
        utf8("id", false),
        utf8("contact_id", false),
        utf8("title", true),
        utf8("body", true),
        timestamp("due_date", true),
        Field::new("completed", DataType::Boolean, true),
        utf8("assigned_to", true),
        utf8("extra_json", true),
        timestamp("extracted_at", false),
    ]
);

/// A row of [`tasks_schema`].
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TaskRow {
    pub id: String,
    pub contact_id: String,
    pub title: Option<String>,
    pub body: Option<String>,
    pub due_date: Option<i64>,
    pub completed: Option<bool>,
    pub assigned_to: Option<String>,
    pub extra_json: Option<String>,
    pub extracted_at: i64,
}

cached_schema!(
    notes_schema,
    "`extract/ghl/notes.parquet`: notes of the contacts history was read for.",
    vec![
        utf8("id", false),
        utf8("contact_id", false),
        utf8("body", true),
        utf8("user_id", true),
        timestamp("date_added", true),
        utf8("extra_json", true),
        timestamp("extracted_at", false),
    ]
);

/// A row of [`notes_schema`].
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct NoteRow {
    pub id: String,
    pub contact_id: String,
    pub body: Option<String>,
    pub user_id: Option<String>,
    pub date_added: Option<i64>,
    pub extra_json: Option<String>,
    pub extracted_at: i64,
}

cached_schema!(
    appointments_schema,
    "`extract/ghl/appointments.parquet`: appointments of the contacts history was read for.",
    vec![
        utf8("id", false),
        utf8("contact_id", false),
        utf8("calendar_id", true),
        utf8("title", true),
        utf8("appointment_status", true),
        timestamp("start_time", true),
        timestamp("end_time", true),
        utf8("extra_json", true),
        timestamp("extracted_at", false),
    ]
);

/// A row of [`appointments_schema`].
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AppointmentRow {
    pub id: String,
    pub contact_id: String,
    pub calendar_id: Option<String>,
    pub title: Option<String>,
    pub appointment_status: Option<String>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub extra_json: Option<String>,
    pub extracted_at: i64,
}

cached_schema!(
    messages_schema,
    "`extract/bulksms/messages.parquet`: sent and received messages with their latest status.",
    vec![
        Field::new("id", DataType::UInt64, false),
        utf8("message_type", false),
        utf8("from", true),
        utf8("to", true),
        utf8("body", true),
        utf8("encoding", true),
        utf8("submission_id", true),
        timestamp("submission_date", true),
        utf8("status_id", true),
        utf8("status_type", true),
        utf8("status_subtype", true),
        Field::new("related_sent_message_id", DataType::UInt64, true),
        utf8("user_supplied_id", true),
        Field::new("number_of_parts", DataType::Int64, true),
        Field::new("credit_cost", DataType::Float64, true),
        utf8("extra_json", true),
        timestamp("extracted_at", false),
    ]
);

/// A row of [`messages_schema`].
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct MessageRow {
    pub id: u64,
    pub message_type: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub body: Option<String>,
    pub encoding: Option<String>,
    pub submission_id: Option<String>,
    pub submission_date: Option<i64>,
    pub status_id: Option<String>,
    pub status_type: Option<String>,
    pub status_subtype: Option<String>,
    pub related_sent_message_id: Option<u64>,
    pub user_supplied_id: Option<String>,
    pub number_of_parts: Option<i64>,
    pub credit_cost: Option<f64>,
    pub extra_json: Option<String>,
    pub extracted_at: i64,
}

cached_schema!(
    blocked_numbers_schema,
    "`extract/bulksms/blocked_numbers.parquet`: the account's blocked (opted-out) numbers.",
    vec![
        Field::new("id", DataType::UInt64, false),
        utf8("phone_number", false),
        timestamp("extracted_at", false),
    ]
);

/// A row of [`blocked_numbers_schema`]: written by extract, read by transform, load and audit
/// (the one blocked-number row type).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct BlockedNumberRow {
    pub id: u64,
    /// E.164 with `+` ([`crate::snapshot::phone::e164`]); older snapshots may hold bare digits.
    pub phone_number: String,
    /// Epoch milliseconds (a UTC timestamp column in the file).
    #[serde(deserialize_with = "epoch_ms_or_rfc3339")]
    pub extracted_at: i64,
}

/// Reads a timestamp column back as epoch milliseconds: rows come back from Parquet through
/// Arrow's JSON writer, which prints timestamps as RFC 3339 text.
fn epoch_ms_or_rfc3339<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Millis(i64),
        Text(String),
    }
    match <Raw as serde::Deserialize>::deserialize(deserializer)? {
        Raw::Millis(ms) => Ok(ms),
        Raw::Text(text) => chrono::DateTime::parse_from_rfc3339(&text)
            .or_else(|_| chrono::DateTime::parse_from_rfc3339(&format!("{text}Z")))
            .map(|t| t.timestamp_millis())
            .map_err(|e| serde::de::Error::custom(format!("timestamp {text:?}: {e}"))),
    }
}

cached_schema!(
    profile_schema,
    "`extract/bulksms/profile.parquet`: one row, the account's credits and quota at extract time.",
    vec![
        Field::new("credit_balance", DataType::Float64, true),
        Field::new("quota_size", DataType::Int64, true),
        Field::new("quota_remaining", DataType::Int64, true),
        utf8("extra_json", true),
        timestamp("extracted_at", false),
    ]
);

/// A row of [`profile_schema`].
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ProfileRow {
    pub credit_balance: Option<f64>,
    pub quota_size: Option<i64>,
    pub quota_remaining: Option<i64>,
    pub extra_json: Option<String>,
    pub extracted_at: i64,
}

cached_schema!(
    quarantine_schema,
    "`quarantine.parquet`: rows that could not be typed, with the reason and the raw input.",
    vec![
        utf8("entity", false),
        utf8("source", false),
        Field::new("row_index", DataType::UInt64, false),
        utf8("reason", false),
        utf8("raw", false),
        timestamp("quarantined_at", false),
    ]
);

/// A row of [`quarantine_schema`].
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct QuarantineRow {
    /// Which entity the row belonged to (e.g. "ghl/contacts").
    pub entity: String,
    /// Where it came from: endpoint and page, or file and line.
    pub source: String,
    /// Position within that source.
    pub row_index: u64,
    /// Why it could not be typed.
    pub reason: String,
    /// The row as received.
    pub raw: String,
    pub quarantined_at: i64,
}

/// Builds a record batch of `schema` from serialisable rows with the schema's field names.
pub fn batch_from_rows<T: Serialize>(
    schema: &SchemaRef,
    rows: &[T],
) -> Result<RecordBatch, ArrowError> {
    let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.len().max(1))
        .build_decoder()?;
    decoder.serialize(rows)?;
    Ok(decoder
        .flush()?
        .unwrap_or_else(|| RecordBatch::new_empty(schema.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};

    #[test]
    fn blocked_number_rows_read_back_as_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("blocked_numbers.parquet");
        let rows = vec![BlockedNumberRow {
            id: 7,
            phone_number: "+14155550134".into(),
            extracted_at: 1_764_042_612_345,
        }];
        crate::snapshot::desired::write_rows(&path, &blocked_numbers_schema(), &rows)
            .expect("write");
        let back: Vec<BlockedNumberRow> = crate::snapshot::desired::read_rows(&path).expect("read");
        assert_eq!(back, rows);
    }

    #[test]
    fn contact_rows_become_typed_nested_columns() {
        let row = ContactRow {
            id: "c1".into(),
            first_name: Some("Zoë".into()),
            tags: vec!["vip".into(), "lead".into()],
            custom_fields: vec![CustomFieldCell {
                id: "f1".into(),
                value_json: Some("42".into()),
            }],
            dnd_settings: Some(vec![DndSettingCell {
                channel: "SMS".into(),
                status: Some("active".into()),
                ..Default::default()
            }]),
            date_updated: Some(1_700_000_000_123),
            extracted_at: 1_700_000_001_000,
            ..Default::default()
        };
        let schema = contacts_schema();
        let batch = batch_from_rows(&schema, &[row]).expect("batch");
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.schema(), schema);
        let tags = batch.column_by_name("tags").expect("tags").as_list::<i32>();
        assert_eq!(tags.value(0).len(), 2);
        let first = batch
            .column_by_name("first_name")
            .expect("first_name")
            .as_string::<i32>();
        assert_eq!(first.value(0), "Zoë");
        let updated = batch.column_by_name("date_updated").expect("date_updated");
        assert_eq!(
            updated
                .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
                .value(0),
            1_700_000_000_123
        );
    }

    #[test]
    fn every_schema_has_an_extracted_or_quarantined_time() {
        for schema in [
            contacts_schema(),
            tasks_schema(),
            notes_schema(),
            appointments_schema(),
            messages_schema(),
            blocked_numbers_schema(),
            profile_schema(),
        ] {
            assert!(schema.field_with_name("extracted_at").is_ok());
        }
        assert!(quarantine_schema().field_with_name("reason").is_ok());
    }
}
