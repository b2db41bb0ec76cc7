//! The contact's SMS status — its latest message event: delivered, failed, replied, or opted out —
//! kept in a custom field or as tags (the status tag added, the other status tags removed), as the
//! pipeline chooses. An opted-out number stays opted out whatever comes after.

use super::{TriggerEvents, parse_time};
use crate::snapshot::desired::{DesiredContact, DesiredCustomField, OPTED_OUT_TAG};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::HashMap;

/// Where the status is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusStore {
    /// Tags `<tag_prefix><status>`.
    Tags,
    /// The custom field `field_id`.
    CustomField,
}

/// `[transform.workflows.sms_status]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsStatusConfig {
    /// `"tags"` or `"custom_field"`.
    pub store: StatusStore,
    /// GHL custom field id (with `store = "custom_field"`).
    pub field_id: Option<String>,
    /// Prefix of the status tags (with `store = "tags"`): `sms:` gives `sms:delivered`.
    #[serde(default = "default_prefix")]
    pub tag_prefix: String,
}

fn default_prefix() -> String {
    "sms:".into()
}

/// The statuses, as written.
pub const STATUSES: [&str; 4] = ["delivered", "failed", "replied", "opted-out"];

impl SmsStatusConfig {
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        match (self.store, self.field_id.as_deref()) {
            (StatusStore::CustomField, None) => Err((
                "field_id".into(),
                "is required with store = \"custom_field\" (the GHL custom field id)".into(),
            )),
            (StatusStore::CustomField, Some(id)) if id.trim().is_empty() => {
                Err(("field_id".into(), "must not be empty".into()))
            }
            (StatusStore::Tags, Some(_)) => Err((
                "field_id".into(),
                "only applies with store = \"custom_field\"".into(),
            )),
            (StatusStore::Tags, None) if self.tag_prefix.contains(',') => Err((
                "tag_prefix".into(),
                format!("must not hold commas, got {:?}", self.tag_prefix),
            )),
            _ => Ok(()),
        }
    }

    fn tag(&self, status: &str) -> String {
        format!("{}{status}", self.tag_prefix)
    }
}

/// The status of each number with its event: the latest delivered, failed or received message.
fn latest_by_number(events: &TriggerEvents) -> HashMap<&str, (DateTime<Utc>, u64, &'static str)> {
    let mut latest: HashMap<&str, (DateTime<Utc>, u64, &'static str)> = HashMap::new();
    for m in &events.messages {
        let status = match (m.inbound, m.status_type.as_deref()) {
            (true, _) => "replied",
            (false, Some("DELIVERED")) => "delivered",
            (false, Some("FAILED")) => "failed",
            _ => continue,
        };
        let Some(at) = m.submission_date.as_deref().and_then(parse_time) else {
            continue;
        };
        let entry = latest
            .entry(m.number.as_str())
            .or_insert((at, m.id, status));
        if (at, m.id) > (entry.0, entry.1) {
            *entry = (at, m.id, status);
        }
    }
    latest
}

/// The status writes of every contact with a status.
pub fn status_writes(config: &SmsStatusConfig, events: &TriggerEvents) -> Vec<DesiredContact> {
    let latest = latest_by_number(events);
    let mut out = Vec::new();
    for c in events.contacts.iter().filter(|c| !c.duplicate) {
        let Some(number) = c.phone.as_deref() else {
            continue;
        };
        let (status, event) = if c.opted_out {
            ("opted-out", "sms status opted-out".to_string())
        } else {
            match latest.get(number) {
                Some((_, id, status)) => (*status, format!("sms status {status} message {id}")),
                None => continue,
            }
        };
        let reason = format!("latest SMS status of {number}: {status}");
        let mut write = DesiredContact {
            contact_id: Some(c.id.clone()),
            event: Some(event),
            reason,
            ..DesiredContact::default()
        };
        match config.store {
            StatusStore::Tags => {
                write.add_tags = vec![config.tag(status)];
                // The opt-out tag is the opt-out's own record: a status never takes it away.
                write.remove_tags = STATUSES
                    .iter()
                    .filter(|s| **s != status)
                    .map(|s| config.tag(s))
                    .filter(|t| t != OPTED_OUT_TAG)
                    .collect();
            }
            StatusStore::CustomField => {
                write.custom_fields = vec![DesiredCustomField {
                    id: config.field_id.clone().unwrap_or_default(),
                    value: status.to_string(),
                }];
            }
        }
        out.push(write);
    }
    out
}
