//! A GHL contact as later stages read it back from `extract/ghl/contacts.parquet`: the columns of
//! [`super::schema::contacts_schema`] that transform, load, audit and migrate use, in one type.

use serde::Deserialize;
use serde_json::Value;

/// The parts of a snapshot contact the stages after extract read.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SnapshotContact {
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company_name: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub source: Option<String>,
    /// ISO-8601 text (sorts in time order).
    pub date_updated: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub dnd: Option<bool>,
    #[serde(default)]
    pub dnd_settings: Vec<SnapshotDnd>,
    #[serde(default)]
    pub custom_fields: Vec<SnapshotCustomField>,
}

/// One channel of a snapshot contact's DND settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SnapshotDnd {
    pub channel: String,
    pub status: Option<String>,
}

/// A custom field value in the snapshot (the value as JSON text).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SnapshotCustomField {
    pub id: String,
    pub value_json: Option<String>,
}

impl SnapshotCustomField {
    /// The value as text (a JSON string unquoted).
    pub fn text(&self) -> Option<String> {
        let value: Value = serde_json::from_str(self.value_json.as_deref()?).ok()?;
        Some(match value {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }
}

impl SnapshotContact {
    /// True when SMS DND is on (all channels, or the SMS channel active or permanent).
    pub fn sms_dnd_active(&self) -> bool {
        self.dnd.unwrap_or(false)
            || self.dnd_settings.iter().any(|d| {
                d.channel.eq_ignore_ascii_case("sms")
                    && matches!(d.status.as_deref(), Some("active" | "permanent"))
            })
    }

    /// "First Last", trimmed.
    pub fn name(&self) -> String {
        format!(
            "{} {}",
            self.first_name.as_deref().unwrap_or(""),
            self.last_name.as_deref().unwrap_or("")
        )
        .trim()
        .to_string()
    }

    /// A text field by its snapshot column name, `None` when empty.
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "first_name" => self.first_name.as_deref(),
            "last_name" => self.last_name.as_deref(),
            "email" => self.email.as_deref(),
            "phone" => self.phone.as_deref(),
            "company_name" => self.company_name.as_deref(),
            "city" => self.city.as_deref(),
            "postal_code" => self.postal_code.as_deref(),
            "country" => self.country.as_deref(),
            "source" => self.source.as_deref(),
            _ => None,
        }
        .filter(|v| !v.trim().is_empty())
    }
}
