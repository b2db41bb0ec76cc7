//! BulkSMS messages (id ascending, re-reading messages whose status may still change), blocked
//! numbers (`min-id` paging) and the profile.

use super::checkpoint::CheckpointStore;
use super::entity_writer::EntityWriter;
use super::progress::EntityProgress;
use super::rows::message_row;
use crate::api::bulksms::blocked::{BlockedPaging, blocked_number_id};
use crate::api::bulksms::{BulkSmsClient, MAX_MESSAGES_PAGE};
use crate::clock::Clock;
use crate::snapshot::phone::e164;
use crate::snapshot::schema::{
    BlockedNumberRow, ProfileRow, QuarantineRow, blocked_numbers_schema, messages_schema,
    profile_schema,
};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// Entity names in checkpoints and manifests.
pub const MESSAGES: &str = "bulksms/messages";
/// Blocked numbers entity.
pub const BLOCKED_NUMBERS: &str = "bulksms/blocked_numbers";
/// Profile entity.
pub const PROFILE: &str = "bulksms/profile";

/// Where the next incremental read of messages starts.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MessagesCursor {
    /// Largest id read.
    pub max_id: u64,
    /// Smallest id whose status was not final and recent enough to still change; the next run
    /// re-reads from there so late status changes are picked up.
    pub oldest_open_id: Option<u64>,
}

impl MessagesCursor {
    /// The id after which the next run starts reading.
    pub fn read_after(&self) -> u64 {
        match self.oldest_open_id {
            Some(open) => open.saturating_sub(1).min(self.max_id),
            None => self.max_id,
        }
    }
}

/// Where the next incremental read of blocked numbers starts.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlockedCursor {
    pub max_id: u64,
}

fn is_final(status_type: Option<&str>) -> bool {
    matches!(status_type, Some("DELIVERED" | "FAILED" | "RECEIVED"))
}

/// Reads the messages the previous run's cursor leaves to read into part files.
///
/// `limit` "is not a guarantee" (the spec): a page may come back short although more messages
/// exist, so only an empty page ends the read. The cursor is stored even when nothing new came
/// back, so the next run starts where this one ended instead of at the start of the history.
pub async fn read_messages(
    client: &BulkSmsClient,
    previous: MessagesCursor,
    lookback_hours: i64,
    extract_dir: &Path,
    store: Arc<CheckpointStore>,
    progress: EntityProgress,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let mut writer = EntityWriter::open(MESSAGES, messages_schema(), extract_dir, store, progress)?;
    if writer.state().done {
        return Ok(());
    }
    // Open messages are found again by this read, so only the largest id carries over.
    let mut cursor: MessagesCursor = serde_json::from_value(writer.state().next_cursor.clone())
        .unwrap_or(MessagesCursor {
            max_id: previous.max_id,
            oldest_open_id: None,
        });
    let mut after = writer
        .state()
        .resume_from
        .as_u64()
        .unwrap_or(previous.read_after());
    let open_since_ms = (clock.now() - chrono::Duration::hours(lookback_hours)).timestamp_millis();
    let mut page_number = writer.state().pages;
    loop {
        page_number += 1;
        let page = client
            .messages_after(after, MAX_MESSAGES_PAGE)
            .await
            .with_context(|| format!("reading page {page_number} of GET /messages (id>{after})"))?;
        let count = page.len();
        if count == 0 {
            break;
        }
        let extracted_at = clock.now().timestamp_millis();
        let mut rows = Vec::with_capacity(count);
        let mut quarantine = Vec::new();
        let mut last_id = after;
        for (index, raw) in page.into_iter().enumerate() {
            let raw_id = raw
                .get("id")
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse::<u64>().ok());
            let raw_text = raw.to_string();
            match message_row(raw, extracted_at) {
                Ok(row) => {
                    last_id = last_id.max(row.id);
                    cursor.max_id = cursor.max_id.max(row.id);
                    let recent = row.submission_date.is_none_or(|d| d >= open_since_ms);
                    if !is_final(row.status_type.as_deref()) && recent {
                        cursor.oldest_open_id =
                            Some(cursor.oldest_open_id.map_or(row.id, |o| o.min(row.id)));
                    }
                    rows.push(row);
                }
                Err(reason) => {
                    if let Some(id) = raw_id {
                        last_id = last_id.max(id);
                    }
                    quarantine.push(QuarantineRow {
                        entity: MESSAGES.into(),
                        source: format!("GET /messages page {page_number} (id>{after})"),
                        row_index: index as u64,
                        reason,
                        raw: raw_text,
                        quarantined_at: extracted_at,
                    });
                }
            }
        }
        if last_id == after {
            anyhow::bail!(
                "GET /messages page {page_number} (id>{after}): no row had a readable id, cannot advance"
            );
        }
        after = last_id;
        writer.push_page(
            rows,
            quarantine,
            serde_json::json!(after),
            serde_json::to_value(cursor).expect("cursor serialises"),
            Vec::new(),
        )?;
    }
    writer.set_next_cursor(serde_json::to_value(cursor).expect("cursor serialises"));
    writer.finish()?;
    Ok(())
}

/// Reads the blocked numbers added since the previous run's cursor, with the walk load uses too
/// ([`BlockedPaging`]: to an empty page, robust to string ids); the cursor is stored even when
/// nothing new came back.
pub async fn read_blocked_numbers(
    client: &BulkSmsClient,
    previous: BlockedCursor,
    extract_dir: &Path,
    store: Arc<CheckpointStore>,
    progress: EntityProgress,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let mut writer = EntityWriter::open(
        BLOCKED_NUMBERS,
        blocked_numbers_schema(),
        extract_dir,
        store,
        progress,
    )?;
    if writer.state().done {
        return Ok(());
    }
    let mut cursor: BlockedCursor =
        serde_json::from_value(writer.state().next_cursor.clone()).unwrap_or(previous);
    let resume_after = writer
        .state()
        .resume_from
        .as_u64()
        .unwrap_or(previous.max_id);
    let mut paging = BlockedPaging::after(resume_after);
    let mut page_number = writer.state().pages;
    loop {
        page_number += 1;
        let min_id = paging.next_min_id();
        let Some(page) = client
            .next_blocked_page(&mut paging)
            .await
            .with_context(|| {
                format!("reading page {page_number} of GET /blocked-numbers (min-id {min_id})")
            })?
        else {
            break;
        };
        let extracted_at = clock.now().timestamp_millis();
        let mut rows = Vec::with_capacity(page.entries.len());
        let mut quarantine = Vec::new();
        for (index, entry) in page.entries.into_iter().enumerate() {
            let id = blocked_number_id(&entry.id);
            if let Some(id) = id {
                cursor.max_id = cursor.max_id.max(id);
            }
            // Stored as E.164 whichever way the service wrote it (with or without `+`).
            match (id, e164(&entry.phone_number)) {
                (Some(id), Some(phone_number)) => rows.push(BlockedNumberRow {
                    id,
                    phone_number,
                    extracted_at,
                }),
                (id, _) => quarantine.push(QuarantineRow {
                    entity: BLOCKED_NUMBERS.into(),
                    source: format!("GET /blocked-numbers page {page_number} (min-id {min_id})"),
                    row_index: index as u64,
                    reason: if id.is_none() {
                        format!("id {} is not numeric", entry.id)
                    } else {
                        format!(
                            "phoneNumber {:?} is not an E.164 number",
                            entry.phone_number
                        )
                    },
                    raw: serde_json::to_string(&entry).unwrap_or_default(),
                    quarantined_at: extracted_at,
                }),
            }
        }
        writer.push_page(
            rows,
            quarantine,
            serde_json::json!(paging.next_min_id() - 1),
            serde_json::to_value(cursor).expect("cursor serialises"),
            Vec::new(),
        )?;
    }
    writer.set_next_cursor(serde_json::to_value(cursor).expect("cursor serialises"));
    writer.finish()?;
    Ok(())
}

/// Reads the profile (one row).
pub async fn read_profile(
    client: &BulkSmsClient,
    extract_dir: &Path,
    store: Arc<CheckpointStore>,
    progress: EntityProgress,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let mut writer = EntityWriter::open(PROFILE, profile_schema(), extract_dir, store, progress)?;
    if writer.state().done {
        return Ok(());
    }
    let profile = client.profile().await.context("reading GET /profile")?;
    let row = ProfileRow {
        credit_balance: profile.credits.as_ref().and_then(|c| c.balance),
        quota_size: profile.quota.as_ref().and_then(|q| q.size),
        quota_remaining: profile.quota.as_ref().and_then(|q| q.remaining),
        extra_json: (!profile.extra.is_empty())
            .then(|| serde_json::Value::Object(profile.extra.clone()).to_string()),
        extracted_at: clock.now().timestamp_millis(),
    };
    writer.push_page(
        vec![row],
        Vec::new(),
        serde_json::Value::Null,
        serde_json::Value::Null,
        Vec::new(),
    )?;
    writer.finish()?;
    Ok(())
}
