//! GHL contacts: keyset paging through `/contacts/search` sorted by `dateUpdated`, from the previous
//! run's cursor minus an overlap window.

use super::checkpoint::CheckpointStore;
use super::entity_writer::EntityWriter;
use super::progress::EntityProgress;
use super::rows::contact_row;
use crate::api::ghl::GhlClient;
use crate::clock::Clock;
use crate::snapshot::schema::{QuarantineRow, contacts_schema};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// Entity name of GHL contacts in checkpoints and manifests.
pub const CONTACTS: &str = "ghl/contacts";

/// Where the next incremental read of contacts starts.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContactsCursor {
    /// Largest `dateUpdated` seen, epoch ms.
    pub date_updated_ms: Option<i64>,
}

/// What to read of the contacts.
#[derive(Debug, Clone, Copy)]
pub struct ContactsQuery {
    /// `pageLimit` of each search.
    pub page_size: u32,
    /// Read contacts updated at or after this instant (epoch ms); all when `None`.
    pub since_ms: Option<i64>,
    /// The previous run's cursor (kept when nothing newer is seen).
    pub previous_cursor: ContactsCursor,
    /// When this extract started (epoch ms): rows updated after it may be read twice.
    pub run_started_ms: i64,
    /// `GET /contacts/{id}` reads this run may spend learning the SMS DND of contacts whose
    /// search answer lacked it (see [`learn_dnd`]).
    pub dnd_lookups: usize,
}

/// What [`learn_dnd`] did over a run.
#[derive(Debug, Default)]
struct DndLookups {
    read: usize,
    failed: usize,
    left_unknown: usize,
}

/// Learns SMS DND for the rows of a page whose search answer lacked it and that have a phone (DND
/// matters for texting, and a contact without a phone cannot be texted) with one
/// `GET /contacts/{id}` each, while `budget` lasts. In an incremental run the page holds only the
/// contacts changed since the last run, so that is one request per changed contact with a phone;
/// a full run of a large location spends the whole budget and leaves the rest unknown (null), which
/// the stages after extract treat as "not known to be DND", and sends re-check right before they
/// go out. A failed read also leaves the row unknown instead of failing the extract.
async fn learn_dnd(
    client: &GhlClient,
    rows: &mut [crate::snapshot::schema::ContactRow],
    budget: &mut usize,
    stats: &mut DndLookups,
) {
    let wanted: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            super::rows::dnd_unknown(r) && r.phone.as_deref().is_some_and(|p| !p.trim().is_empty())
        })
        .map(|(i, _)| i)
        .collect();
    let take = wanted.len().min(*budget);
    *budget -= take;
    stats.left_unknown += wanted.len() - take;
    // One at a time: the burst limit (100 per 10 s) caps the pace anyway, and parallel reads would
    // race each other through every token refresh.
    for i in wanted.into_iter().take(take) {
        match client.get_contact(&rows[i].id).await {
            Ok(Some(contact)) => {
                super::rows::fill_dnd(&mut rows[i], &contact);
                stats.read += 1;
            }
            // Deleted since the search: the next run sees it gone.
            Ok(None) => stats.left_unknown += 1,
            Err(e) => {
                tracing::warn!(contact = %rows[i].id, error = %e, "Could not read DND; left unknown");
                stats.failed += 1;
            }
        }
    }
}

/// Reads contacts changed since `query.since_ms` (all when `None`) into part files.
pub async fn read_contacts(
    client: &GhlClient,
    query: ContactsQuery,
    extract_dir: &Path,
    store: Arc<CheckpointStore>,
    progress: EntityProgress,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let mut writer = EntityWriter::open(CONTACTS, contacts_schema(), extract_dir, store, progress)?;
    if writer.state().done {
        return Ok(());
    }
    let mut cursor: ContactsCursor =
        serde_json::from_value(writer.state().next_cursor.clone()).unwrap_or(query.previous_cursor);
    let ContactsQuery {
        page_size,
        since_ms,
        run_started_ms,
        dnd_lookups,
        ..
    } = query;
    let mut dnd_budget = dnd_lookups;
    let mut dnd_stats = DndLookups::default();
    let mut search_after: Option<Value> = match &writer.state().resume_from {
        Value::Null => None,
        v => Some(v.clone()),
    };
    let mut page_number = writer.state().pages;
    loop {
        page_number += 1;
        let page = client
            .search_updated_since(
                since_ms,
                search_after.as_ref(),
                page_size,
                format!("page {page_number}"),
            )
            .await
            .with_context(|| format!("reading page {page_number} of POST /contacts/search"))?;
        let count = page.contacts.len();
        if count == 0 {
            break;
        }
        let last_cursor = page
            .contacts
            .last()
            .and_then(|c| c.get("searchAfter"))
            .cloned()
            .with_context(|| {
                format!(
                    "page {page_number} of POST /contacts/search: last contact has no searchAfter"
                )
            })?;
        let extracted_at = clock.now().timestamp_millis();
        let mut rows = Vec::with_capacity(count);
        let mut quarantine = Vec::new();
        let mut may_repeat = Vec::new();
        for (index, raw) in page.contacts.into_iter().enumerate() {
            let raw_text = raw.to_string();
            match contact_row(raw, extracted_at) {
                Ok(row) => {
                    if let Some(updated) = row.date_updated {
                        cursor.date_updated_ms =
                            Some(cursor.date_updated_ms.map_or(updated, |c| c.max(updated)));
                        // Changed while this read runs: it can show up again further on.
                        if updated >= run_started_ms - 1_000 {
                            may_repeat.push(row.id.clone());
                        }
                    }
                    rows.push(row);
                }
                Err(reason) => quarantine.push(QuarantineRow {
                    entity: CONTACTS.into(),
                    source: format!("POST /contacts/search page {page_number}"),
                    row_index: index as u64,
                    reason,
                    raw: raw_text,
                    quarantined_at: extracted_at,
                }),
            }
        }
        learn_dnd(client, &mut rows, &mut dnd_budget, &mut dnd_stats).await;
        writer.push_page(
            rows,
            quarantine,
            last_cursor.clone(),
            serde_json::to_value(cursor).expect("cursor serialises"),
            may_repeat,
        )?;
        search_after = Some(last_cursor);
        if count < page_size as usize {
            break;
        }
    }
    writer.finish()?;
    if dnd_stats.failed + dnd_stats.left_unknown > 0 {
        tracing::warn!(
            read = dnd_stats.read,
            failed = dnd_stats.failed,
            left_unknown = dnd_stats.left_unknown,
            budget = dnd_lookups,
            "SMS DND left unknown for some contacts with a phone (raise [extract] dnd_lookups_per_run to learn more per run)"
        );
    } else {
        tracing::info!(
            read = dnd_stats.read,
            "SMS DND read for contacts search answered without it"
        );
    }
    Ok(())
}
