//! What the transform stage reads of a run's extract: the GHL contacts, the BulkSMS messages and
//! blocked numbers.

use crate::snapshot::contact::SnapshotContact;
use crate::snapshot::desired::read_rows;
use crate::snapshot::schema::BlockedNumberRow;
use serde::Deserialize;
use std::path::Path;

/// A BulkSMS message as transform reads it from `extract/bulksms/messages.parquet`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessageRowIn {
    pub id: u64,
    pub message_type: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub body: Option<String>,
    pub status_type: Option<String>,
    pub status_subtype: Option<String>,
    pub submission_date: Option<String>,
    /// Set on the sends load makes ([`crate::snapshot::contract::plan::user_supplied_id`]).
    #[serde(default)]
    pub user_supplied_id: Option<String>,
}

impl MessageRowIn {
    /// When it was submitted: the column comes back as RFC 3339 text, its fraction of a second
    /// only when there is one, so texts do not sort in time order.
    pub fn submitted(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        instant(self.submission_date.as_deref()?)
    }
}

/// A timestamp column's text as a time (with or without its `Z`).
pub fn instant(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(&format!("{text}Z")))
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// The extract's tables.
pub struct Inputs {
    pub contacts: Vec<SnapshotContact>,
    pub messages: Vec<MessageRowIn>,
    pub blocked: Vec<BlockedNumberRow>,
}

impl Inputs {
    /// Reads the tables of an extract directory.
    pub fn read(extract: &Path) -> anyhow::Result<Inputs> {
        Ok(Inputs {
            contacts: read_rows(&extract.join("ghl/contacts.parquet"))?,
            messages: read_rows(&extract.join("bulksms/messages.parquet"))?,
            blocked: read_rows(&extract.join("bulksms/blocked_numbers.parquet"))?,
        })
    }
}
