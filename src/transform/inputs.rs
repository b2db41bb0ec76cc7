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
