//! `manifest.json`: what a stage wrote — schema version, row counts, checksums, cursors, timings and
//! request counts. It is written last, so a run directory with a manifest is complete.

use crate::api::http::MetricsSnapshot;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Manifest of an extract.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExtractManifest {
    pub schema_version: u32,
    pub run_id: String,
    pub pipeline: String,
    /// "full" or "incremental".
    pub mode: String,
    /// The run whose snapshot an incremental extract was merged onto.
    pub based_on_run: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Entities by name (`ghl/contacts`, `bulksms/messages`, ...).
    pub entities: BTreeMap<String, EntityManifest>,
    /// Requests per API.
    pub requests: BTreeMap<String, MetricsSnapshot>,
    /// Rows sent to `quarantine.parquet`.
    pub quarantined_rows: u64,
    /// Whose tasks, notes and appointments were read (absent in manifests written before they were).
    #[serde(default)]
    pub history: HistorySummary,
}

/// What the manifest says of the history read.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HistorySummary {
    /// Contacts whose tasks, notes and appointments were read.
    pub contacts_read: u64,
    /// Contacts whose reads failed after every retry: owed to the next extract, first.
    #[serde(default)]
    pub contacts_failed: u64,
    /// Contacts chosen but past `history_lookups_per_run`: read first by the next extract.
    pub contacts_left: u64,
    /// Of the chosen contacts: owed by the previous extract, touched by loads, seen changed.
    pub from_previous: u64,
    pub touched_by_loads: u64,
    pub changed: u64,
    /// The pending list, relative to the run directory.
    pub pending_file: String,
}

impl HistorySummary {
    /// The error a run reports when some contacts' history could not be read.
    pub fn failure_message(&self) -> Option<String> {
        (self.contacts_failed > 0).then(|| {
            format!(
                "tasks, notes or appointments of {} contacts could not be read after every retry; \
                 the next run reads them first (listed in {})",
                self.contacts_failed, self.pending_file
            )
        })
    }
}

/// One snapshot file in a manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EntityManifest {
    /// File path relative to the run directory.
    pub file: String,
    pub rows: u64,
    /// Rows read from the API in this run (after de-duplication).
    pub delta_rows: u64,
    /// Rows carried over from the previous snapshot.
    pub carried_rows: u64,
    pub sha256: String,
    pub bytes: u64,
    /// Where the next incremental read starts (entity-specific JSON).
    pub cursor: serde_json::Value,
    pub pages: u64,
    pub duration_ms: u64,
}

impl ExtractManifest {
    /// Reads a manifest.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading manifest {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing manifest {}", path.display()))
    }

    /// Writes the manifest atomically.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        super::atomic::write(path, &json)
    }
}
