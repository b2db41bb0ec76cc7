//! The blocked list as load sees it: the run's snapshot plus anything blocked since it was taken,
//! so a number that opted out between extract and load is never texted.

use crate::api::bulksms::BulkSmsClient;
use crate::snapshot::desired::read_rows;
use crate::snapshot::phone::e164;
use crate::snapshot::schema::BlockedNumberRow;
use anyhow::Context;
use std::collections::HashSet;
use std::path::Path;

/// The E.164 numbers blocked now: those in `snapshot` (a run's `blocked_numbers.parquet`) and those
/// BulkSMS has added since (the same `GET /blocked-numbers` walk extract uses, from the largest id
/// the snapshot holds).
pub async fn blocked_now(
    snapshot: &Path,
    bulksms: &BulkSmsClient,
) -> anyhow::Result<HashSet<String>> {
    let known: Vec<BlockedNumberRow> = read_rows(snapshot)?;
    let mut blocked: HashSet<String> = known.iter().filter_map(|b| e164(&b.phone_number)).collect();
    let max_id_read = known.iter().map(|b| b.id).max().unwrap_or(0);
    let added = bulksms
        .blocked_numbers_after(max_id_read)
        .await
        .context("reading numbers blocked since the extract (GET /blocked-numbers)")?;
    blocked.extend(added.iter().filter_map(|e| e164(&e.phone_number)));
    Ok(blocked)
}
