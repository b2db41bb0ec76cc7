//! API rows → snapshot rows. Each conversion either types the whole row or says why it cannot, so
//! the caller can quarantine the row with its reason instead of failing the page or guessing.

use crate::api::bulksms::types::BulkSmsMessage;
use crate::api::ghl::types::{GhlAppointment, GhlContact, GhlNote, GhlTask};
use crate::snapshot::schema::{
    AppointmentRow, ContactRow, CustomFieldCell, DndSettingCell, MessageRow, NoteRow, TaskRow,
};
use chrono::DateTime;
use serde_json::{Map, Value};

/// Parses an API timestamp (ISO-8601 with offset, or epoch milliseconds) to epoch milliseconds.
pub fn parse_time(field: &str, raw: Option<&str>) -> Result<Option<i64>, String> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Ok(dt) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(dt.timestamp_millis()));
    }
    if let Ok(ms) = raw.parse::<i64>() {
        return Ok(Some(ms));
    }
    // Appointments (`GET /contacts/{id}/appointments`) carry "2021-07-16 11:00:00": no zone is
    // stated, so it is read as UTC.
    if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S") {
        return Ok(Some(naive.and_utc().timestamp_millis()));
    }
    Err(format!("{field}: {raw:?} is not an ISO-8601 date"))
}

fn extra_json(extra: &Map<String, Value>) -> Option<String> {
    (!extra.is_empty()).then(|| Value::Object(extra.clone()).to_string())
}

fn text_of(value: &Value, key: &str) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(map) => map
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string()),
        other => other.to_string(),
    }
}

/// Types a `/contacts/search` row.
pub fn contact_row(raw: Value, extracted_at: i64) -> Result<ContactRow, String> {
    let c: GhlContact = serde_json::from_value(raw).map_err(|e| format!("contact: {e}"))?;
    if c.id.trim().is_empty() {
        return Err("contact: empty id".into());
    }
    let date_added = parse_time("dateAdded", c.date_added.as_deref())?;
    let date_updated = parse_time("dateUpdated", c.date_updated.as_deref())?;
    // Absent stays absent: search answers carry no DND, and "no settings" must not read as "not DND".
    let dnd_settings = c.dnd_settings.as_ref().map(dnd_cells);
    Ok(ContactRow {
        id: c.id,
        location_id: c.location_id,
        first_name: c.first_name,
        last_name: c.last_name,
        contact_name: c.contact_name,
        email: c.email,
        phone: c.phone,
        company_name: c.company_name,
        address1: c.address1,
        city: c.city,
        state: c.state,
        postal_code: c.postal_code,
        country: c.country,
        timezone: c.timezone,
        website: c.website,
        source: c.source,
        contact_type: c.contact_type,
        assigned_to: c.assigned_to,
        business_id: c.business_id,
        date_of_birth: c.date_of_birth,
        tags: c.tags,
        custom_fields: c
            .custom_fields
            .into_iter()
            .map(|f| CustomFieldCell {
                id: f.id,
                value_json: (!f.value.is_null()).then(|| f.value.to_string()),
            })
            .collect(),
        dnd: c.dnd,
        dnd_settings,
        date_added,
        date_updated,
        additional_emails: c
            .additional_emails
            .iter()
            .map(|v| text_of(v, "email"))
            .collect(),
        additional_phones: c
            .additional_phones
            .iter()
            .map(|v| text_of(v, "phone"))
            .collect(),
        extra_json: extra_json(&c.extra),
        extracted_at,
    })
}

fn dnd_cells(settings: &Map<String, Value>) -> Vec<DndSettingCell> {
    let text =
        |setting: &Value, key: &str| setting.get(key).and_then(Value::as_str).map(str::to_string);
    let mut cells: Vec<DndSettingCell> = settings
        .iter()
        .map(|(channel, setting)| DndSettingCell {
            channel: channel.clone(),
            status: text(setting, "status"),
            message: text(setting, "message"),
            code: text(setting, "code"),
        })
        .collect();
    cells.sort_by(|a, b| a.channel.cmp(&b.channel));
    cells
}

/// Copies `dnd` and `dndSettings` from a `GET /contacts/{id}` answer into a row typed from a search
/// answer that lacked them. Fields the answer does not carry stay unknown.
pub fn fill_dnd(row: &mut ContactRow, contact: &Value) {
    if let Some(dnd) = contact.get("dnd").and_then(Value::as_bool) {
        row.dnd = Some(dnd);
    }
    if let Some(settings) = contact.get("dndSettings").and_then(Value::as_object) {
        row.dnd_settings = Some(dnd_cells(settings));
    }
}

/// True when the row does not know its contact's SMS DND (see
/// [`crate::api::ghl::types::sms_dnd_of`]).
pub fn dnd_unknown(row: &ContactRow) -> bool {
    row.dnd != Some(true)
        && !row.dnd_settings.iter().flatten().any(|d| {
            d.channel.eq_ignore_ascii_case("sms")
                && matches!(d.status.as_deref(), Some("active" | "permanent"))
        })
        && (row.dnd.is_none() || row.dnd_settings.is_none())
}

/// Types a `/messages` row.
pub fn message_row(raw: Value, extracted_at: i64) -> Result<MessageRow, String> {
    let m: BulkSmsMessage = serde_json::from_value(raw).map_err(|e| format!("message: {e}"))?;
    let id =
        m.id.parse::<u64>()
            .map_err(|_| format!("message: id {:?} is not numeric", m.id))?;
    let related_sent_message_id = match m.related_sent_message_id.as_deref() {
        None | Some("") => None,
        Some(r) => Some(
            r.parse::<u64>()
                .map_err(|_| format!("message {id}: relatedSentMessageId {r:?} is not numeric"))?,
        ),
    };
    let submission_date = parse_time(
        "submission.date",
        m.submission.as_ref().and_then(|s| s.date.as_deref()),
    )?;
    Ok(MessageRow {
        id,
        message_type: m.message_type,
        from: m.from,
        to: m.to,
        body: m.body,
        encoding: m.encoding,
        submission_id: m.submission.and_then(|s| s.id),
        submission_date,
        status_id: m.status.as_ref().and_then(|s| s.id.clone()),
        status_type: m.status.as_ref().and_then(|s| s.status_type.clone()),
        status_subtype: m.status.and_then(|s| s.subtype),
        related_sent_message_id,
        user_supplied_id: m.user_supplied_id,
        number_of_parts: m.number_of_parts,
        credit_cost: m.credit_cost,
        extra_json: extra_json(&m.extra),
        extracted_at,
    })
}

/// Types a task of `contact_id`.
pub fn task_row(raw: Value, contact_id: &str, extracted_at: i64) -> Result<TaskRow, String> {
    let t: GhlTask = serde_json::from_value(raw).map_err(|e| format!("task: {e}"))?;
    Ok(TaskRow {
        due_date: parse_time("dueDate", t.due_date.as_deref())?,
        id: t.id,
        contact_id: t.contact_id.unwrap_or_else(|| contact_id.to_string()),
        title: t.title,
        body: t.body,
        completed: t.completed,
        assigned_to: t.assigned_to,
        extra_json: extra_json(&t.extra),
        extracted_at,
    })
}

/// Types a note of `contact_id`.
pub fn note_row(raw: Value, contact_id: &str, extracted_at: i64) -> Result<NoteRow, String> {
    let n: GhlNote = serde_json::from_value(raw).map_err(|e| format!("note: {e}"))?;
    Ok(NoteRow {
        date_added: parse_time("dateAdded", n.date_added.as_deref())?,
        id: n.id,
        contact_id: n.contact_id.unwrap_or_else(|| contact_id.to_string()),
        body: n.body,
        user_id: n.user_id,
        extra_json: extra_json(&n.extra),
        extracted_at,
    })
}

/// Types an appointment of `contact_id`.
pub fn appointment_row(
    raw: Value,
    contact_id: &str,
    extracted_at: i64,
) -> Result<AppointmentRow, String> {
    let a: GhlAppointment = serde_json::from_value(raw).map_err(|e| format!("appointment: {e}"))?;
    Ok(AppointmentRow {
        start_time: parse_time("startTime", a.start_time.as_deref())?,
        end_time: parse_time("endTime", a.end_time.as_deref())?,
        id: a.id,
        contact_id: a.contact_id.unwrap_or_else(|| contact_id.to_string()),
        calendar_id: a.calendar_id,
        title: a.title,
        appointment_status: a.appointment_status,
        extra_json: extra_json(&a.extra),
        extracted_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_full_contact_is_typed_and_unknown_fields_are_kept() {
        let raw = json!({
            "id": "abc", "firstName": "Ana", "tags": ["a"], "dnd": false,
            "dndSettings": {"SMS": {"status": "active", "message": "stop", "code": "x"}},
            "customFields": [{"id": "f", "value": ["x", "y"]}],
            "dateUpdated": "2026-01-02T03:04:05.678Z", "dateAdded": null,
            "brandNewField": {"nested": 1}
        });
        let row = contact_row(raw, 5).expect("typed");
        assert_eq!(row.first_name.as_deref(), Some("Ana"));
        assert_eq!(row.date_updated, Some(1_767_323_045_678));
        let settings = row.dnd_settings.expect("the answer carried dndSettings");
        assert_eq!(settings[0].status.as_deref(), Some("active"));
        assert_eq!(
            row.custom_fields[0].value_json.as_deref(),
            Some("[\"x\",\"y\"]")
        );
        assert_eq!(
            row.extra_json.as_deref(),
            Some("{\"brandNewField\":{\"nested\":1}}")
        );
    }

    #[test]
    fn untypeable_rows_explain_why() {
        let err = contact_row(json!({"id": 5}), 0).expect_err("id must be a string");
        assert!(err.starts_with("contact:"), "{err}");
        let err =
            contact_row(json!({"id": "a", "dateUpdated": "yesterday"}), 0).expect_err("bad date");
        assert!(err.contains("dateUpdated"), "{err}");
        let err = message_row(json!({"id": "x1", "type": "SENT"}), 0).expect_err("bad id");
        assert!(err.contains("not numeric"), "{err}");
    }

    #[test]
    fn appointment_times_without_a_zone_are_read_as_utc() {
        let raw = json!({
            "id": "e1", "calendarId": "cal", "status": "booked", "appointmentStatus": "confirmed",
            "startTime": "2021-07-16 11:00:00", "endTime": "2021-07-16 11:30:00",
            "users": ["u1"], "dateUpdated": "2021-07-16 11:30:00"
        });
        let row = appointment_row(raw, "c1", 0).expect("typed");
        assert_eq!(row.start_time, Some(1_626_433_200_000));
        assert_eq!(row.end_time, Some(1_626_435_000_000));
        assert_eq!(row.contact_id, "c1");
        assert!(row.extra_json.expect("users kept").contains("users"));
    }

    #[test]
    fn messages_keep_status_and_relations() {
        let raw = json!({
            "id": "1415937027307741184", "type": "RECEIVED", "from": "15551234567", "to": "ACME",
            "body": "STOP", "encoding": "TEXT", "protocolId": 0, "messageClass": 0,
            "submission": {"id": "2-00000000002516605256", "date": "2024-09-12T05:48:14Z"},
            "status": {"id": "RECEIVED.null", "type": "RECEIVED", "subtype": null},
            "relatedSentMessageId": "1415937027307741000", "userSuppliedId": null,
            "numberOfParts": 1, "creditCost": 0.0
        });
        let row = message_row(raw, 0).expect("typed");
        assert_eq!(row.id, 1_415_937_027_307_741_184);
        assert_eq!(row.related_sent_message_id, Some(1_415_937_027_307_741_000));
        assert_eq!(row.submission_date, Some(1_726_120_094_000));
        assert!(
            row.extra_json
                .expect("protocolId kept")
                .contains("protocolId")
        );
    }
}
