//! GHL API objects as serde structs. Unknown fields are kept in `extra`, so nothing the API sends is lost.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A contact as `/contacts/search` and `/contacts/{id}` return it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GhlContact {
    pub id: String,
    #[serde(default)]
    pub location_id: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub contact_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub company_name: Option<String>,
    #[serde(default)]
    pub address1: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub website: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default, rename = "type")]
    pub contact_type: Option<String>,
    #[serde(default)]
    pub assigned_to: Option<String>,
    #[serde(default)]
    pub business_id: Option<String>,
    #[serde(default)]
    pub date_of_birth: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub custom_fields: Vec<GhlCustomFieldValue>,
    #[serde(default)]
    pub dnd: Option<bool>,
    #[serde(default)]
    pub dnd_settings: Option<Map<String, Value>>,
    #[serde(default)]
    pub date_added: Option<String>,
    #[serde(default)]
    pub date_updated: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub additional_emails: Vec<Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub additional_phones: Vec<Value>,
    /// Fields this schema does not name (kept as JSON in the snapshot's `extra_json` column).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A custom field value as read back: `{id, value}` (written as `{id|key, field_value}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GhlCustomFieldValue {
    pub id: String,
    #[serde(default)]
    pub value: Value,
}

/// A task of a contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GhlTask {
    pub id: String,
    #[serde(default)]
    pub contact_id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub due_date: Option<String>,
    #[serde(default)]
    pub completed: Option<bool>,
    #[serde(default)]
    pub assigned_to: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A note of a contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GhlNote {
    pub id: String,
    #[serde(default)]
    pub contact_id: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub date_added: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An appointment (`events[]` of `/contacts/{id}/appointments`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GhlAppointment {
    pub id: String,
    #[serde(default)]
    pub contact_id: Option<String>,
    #[serde(default)]
    pub calendar_id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub appointment_status: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// SMS DND of a contact as an API answer carries it: `Some(true)` when `dnd` (all channels) is on
/// or the SMS channel is active or permanent, `Some(false)` only when the answer carries both `dnd`
/// and `dndSettings` and neither says so, `None` when the answer does not say (search and the
/// duplicate search leave both out; only `GET /contacts/{id}` is known to carry them).
pub fn sms_dnd_of(contact: &Value) -> Option<bool> {
    let all_channels = contact.get("dnd").and_then(Value::as_bool);
    let settings = contact.get("dndSettings").and_then(Value::as_object);
    let sms_status = settings
        .and_then(|s| s.iter().find(|(k, _)| k.eq_ignore_ascii_case("sms")))
        .and_then(|(_, v)| v.get("status"))
        .and_then(Value::as_str);
    if all_channels == Some(true) || matches!(sms_status, Some("active" | "permanent")) {
        return Some(true);
    }
    (all_channels.is_some() && settings.is_some()).then_some(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sms_dnd_is_unknown_unless_the_answer_carries_it() {
        assert_eq!(
            sms_dnd_of(&json!({"id": "a", "phone": "+14155550134"})),
            None
        );
        assert_eq!(sms_dnd_of(&json!({"dnd": false})), None, "settings missing");
        assert_eq!(sms_dnd_of(&json!({"dndSettings": {}})), None, "dnd missing");
        assert_eq!(
            sms_dnd_of(&json!({"dnd": false, "dndSettings": {}})),
            Some(false)
        );
        assert_eq!(sms_dnd_of(&json!({"dnd": true})), Some(true));
        assert_eq!(
            sms_dnd_of(&json!({"dndSettings": {"SMS": {"status": "permanent"}}})),
            Some(true)
        );
        assert_eq!(
            sms_dnd_of(
                &json!({"dnd": false, "dndSettings": {"SMS": {"status": "inactive"}, "Email": {"status": "active"}}})
            ),
            Some(false)
        );
    }
}
