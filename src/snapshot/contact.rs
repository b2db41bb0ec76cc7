//! A GHL contact as later stages read it back from `extract/ghl/contacts.parquet`: the columns of
//! [`super::schema::contacts_schema`] that transform, load, audit and migrate use, in one type.

use crate::snapshot::contract::ContactField;
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
    /// GHL's contact type (`lead`, `customer`).
    #[serde(default)]
    pub contact_type: Option<String>,
    /// IANA time zone of the contact.
    #[serde(default)]
    pub timezone: Option<String>,
    /// ISO-8601 text (sorts in time order).
    pub date_updated: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// `None` when extract did not learn it (search answers leave it out).
    pub dnd: Option<bool>,
    /// `None` when extract did not learn it; `Some(vec![])` when GHL said "no channel set".
    #[serde(default)]
    pub dnd_settings: Option<Vec<SnapshotDnd>>,
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
    /// SMS DND as far as the snapshot knows: `Some(true)` when on (all channels, or the SMS
    /// channel active or permanent), `Some(false)` only when GHL's answer carried both `dnd` and
    /// `dndSettings` and neither says so, `None` when extract did not learn it.
    pub fn sms_dnd(&self) -> Option<bool> {
        let sms_on = self.dnd_settings.iter().flatten().any(|d| {
            d.channel.eq_ignore_ascii_case("sms")
                && matches!(d.status.as_deref(), Some("active" | "permanent"))
        });
        if self.dnd == Some(true) || sms_on {
            return Some(true);
        }
        (self.dnd.is_some() && self.dnd_settings.is_some()).then_some(false)
    }

    /// True when SMS DND is known to be on. Unknown is not on: whoever acts on "not on" must
    /// not treat it as "off" (sends are re-checked against GHL right before they go out).
    pub fn sms_dnd_active(&self) -> bool {
        self.sms_dnd() == Some(true)
    }

    /// A lead contactsync made from an inbound SMS: its tag, or the source set in the create
    /// itself (which a crash cannot separate from the contact, as it can the tag written after).
    pub fn is_sms_lead(&self) -> bool {
        use crate::snapshot::desired::{SMS_LEAD_SOURCE, SMS_LEAD_TAG};
        self.tags.iter().any(|t| t == SMS_LEAD_TAG)
            || self.source.as_deref() == Some(SMS_LEAD_SOURCE)
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
        ContactField::from_name(name)
            .and_then(|f| f.of_contact(self).as_deref())
            .filter(|v| !v.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::rows::contact_row;
    use crate::snapshot::desired::{read_rows, write_rows};
    use crate::snapshot::schema::contacts_schema;
    use serde_json::json;

    fn through_parquet(raw: serde_json::Value) -> SnapshotContact {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("contacts.parquet");
        let row = contact_row(raw, 0).expect("typed");
        write_rows(&path, &contacts_schema(), &[row]).expect("written");
        let mut rows: Vec<SnapshotContact> = read_rows(&path).expect("read");
        rows.pop().expect("one row")
    }

    #[test]
    fn a_search_row_without_dnd_is_unknown_not_off() {
        let searched = through_parquet(json!({"id": "a", "phone": "+14155550134"}));
        assert_eq!(searched.dnd_settings, None);
        assert_eq!(searched.sms_dnd(), None);
        assert!(!searched.sms_dnd_active());
        let read = through_parquet(json!({"id": "b", "dnd": false, "dndSettings": {}}));
        assert_eq!(read.sms_dnd(), Some(false));
        let opted_out = through_parquet(
            json!({"id": "c", "dnd": false, "dndSettings": {"SMS": {"status": "permanent"}}}),
        );
        assert_eq!(opted_out.sms_dnd(), Some(true));
    }
}
