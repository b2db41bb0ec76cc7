//! Extract: page both APIs into Parquet snapshots, incremental and resumable, inside the rate limits.

use serde::Deserialize;

/// `[extract]`: what extract reads and how.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExtractConfig {
    /// Contacts per `/contacts/search` page (GHL allows at most 500).
    pub page_size: u32,
    /// Re-read contacts updated this many minutes before the stored cursor, to catch writes that
    /// reached the search index late; rows seen twice are de-duplicated by id.
    pub overlap_minutes: i64,
    /// Business ids whose contacts are read through `/contacts/business/{id}`.
    pub businesses: Vec<String>,
    /// Read tasks, notes and appointments of every changed contact (one request each per contact).
    pub history_for_changed: bool,
    /// Re-read BulkSMS messages sent within this many hours to pick up late status changes.
    pub status_lookback_hours: i64,
}

impl Default for ExtractConfig {
    fn default() -> Self {
        ExtractConfig {
            page_size: 500,
            overlap_minutes: 10,
            businesses: Vec::new(),
            history_for_changed: false,
            status_lookback_hours: 72,
        }
    }
}

impl ExtractConfig {
    /// Range checks; the error names the key inside `[extract]`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if !(1..=500).contains(&self.page_size) {
            return Err((
                "page_size".into(),
                format!(
                    "must be between 1 and 500 (GHL's limit), got {}",
                    self.page_size
                ),
            ));
        }
        if self.overlap_minutes < 0 || self.status_lookback_hours < 0 {
            return Err((
                "overlap_minutes".into(),
                "overlap_minutes and status_lookback_hours must not be negative".into(),
            ));
        }
        Ok(())
    }
}
