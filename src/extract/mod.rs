//! Extract: page both APIs into Parquet snapshots, incremental and resumable, inside the rate limits.
//!
//! Layout of a run's `extract/` folder when done: `ghl/contacts.parquet`, `ghl/{tasks,notes,
//! appointments}.parquet` (of the contacts [`history`] chose; empty when none) with `ghl/history_pending.txt`,
//! `bulksms/{messages,blocked_numbers,profile}.parquet`, `quarantine.parquet` and `manifest.json`
//! (written last: a folder without it is unfinished). While running, `.parts/` holds durable part
//! files and `checkpoint.json` says which of them are committed and where each reader resumes.

pub mod bulksms;
pub mod checkpoint;
pub mod entity_writer;
pub mod ghl;
pub mod history;
pub mod progress;
pub mod rows;

use crate::api::bulksms::BulkSmsClient;
use crate::api::ghl::GhlClient;
use crate::api::http::MetricsSnapshot;
use crate::clock::Clock;
use crate::snapshot::manifest::{EntityManifest, ExtractManifest};
use crate::snapshot::parts::{SnapshotWriter, compact, read_batches};
use crate::snapshot::run::{
    EXTRACT_CHECKPOINT, EXTRACT_MANIFEST, RunDir, latest_complete_extract, unfinished_extract,
};
use crate::snapshot::{SCHEMA_VERSION, atomic, schema};
use anyhow::Context;
use arrow::datatypes::SchemaRef;
use checkpoint::{Checkpoint, CheckpointStore};
use entity_writer::parts_dir;
use progress::ExtractProgress;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// Read tasks, notes and appointments of every changed contact (every contact in a full
    /// extract), not only of those the loads since the previous extract touched.
    pub history_for_changed: bool,
    /// Contacts whose tasks, notes and appointments a run may read (three requests each). 2,000
    /// take about 600 s at GHL's burst limit (100 per 10 s) and 3 % of the daily budget; the
    /// contacts past it are read first by the next run.
    pub history_lookups_per_run: usize,
    /// Re-read BulkSMS messages sent within this many hours to pick up late status changes.
    pub status_lookback_hours: i64,
    /// `GET /contacts/{id}` reads a run may spend learning SMS DND, which `/contacts/search` does
    /// not carry: one per changed contact with a phone. 2,000 take about 200 s at GHL's burst
    /// limit (100 per 10 s) and 1 % of the daily budget; contacts past it stay "DND unknown".
    pub dnd_lookups_per_run: usize,
}

impl Default for ExtractConfig {
    fn default() -> Self {
        ExtractConfig {
            page_size: 500,
            overlap_minutes: 10,
            businesses: Vec::new(),
            history_for_changed: false,
            status_lookback_hours: 72,
            dnd_lookups_per_run: 2_000,
            history_lookups_per_run: 2_000,
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

/// How to run an extract.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Ignore cursors and re-read everything (also the way to see deletions).
    pub full: bool,
    /// Show progress bars on a terminal.
    pub progress: bool,
    /// Where the BulkSMS account's tables come from.
    pub account: AccountSource,
}

/// The finished extract folder of a shared BulkSMS account read, or why it failed; `None` while
/// it is still running.
pub type SharedAccount = tokio::sync::watch::Receiver<Option<Result<PathBuf, String>>>;

/// Where an extract's BulkSMS tables (messages, blocked numbers, profile) come from.
#[derive(Debug, Clone, Default)]
pub enum AccountSource {
    /// Read from the API along with the location's GHL data (one location per account).
    #[default]
    Read,
    /// Read from the API and nothing of GHL: the one account read of a multi-location run.
    Only,
    /// Taken from that read's finished extract once it is there: many locations on one account
    /// read its messages once per run, not once per location.
    Shared(SharedAccount),
}

/// What an extract reads with: the clients, the `[extract]` section and where runs live. The
/// pipeline builds it from the pipeline file; extract needs nothing else of that file.
#[derive(Debug, Clone, Copy)]
pub struct ExtractSetup<'a> {
    /// The state directory (`runs/` is under it).
    pub state_dir: &'a Path,
    /// The pipeline's name, recorded in the manifest.
    pub pipeline_name: &'a str,
    /// Where the ledger is: the history look-ups read which contacts loads touched.
    pub state: &'a crate::state::StateStore,
    /// `[extract]`.
    pub settings: &'a ExtractConfig,
    /// The location's GHL client (contacts).
    pub ghl: &'a GhlClient,
    /// The account's BulkSMS client (messages, blocked numbers, profile).
    pub bulksms: &'a BulkSmsClient,
    /// Where "now" comes from (run id, extract times, the status look-back).
    pub clock: &'a dyn Clock,
}

/// What an extract produced.
#[derive(Debug, Clone)]
pub struct ExtractOutcome {
    pub run: RunDir,
    pub manifest: ExtractManifest,
    /// True when this call finished a run an earlier call had started.
    pub resumed: bool,
}

/// How an entity's snapshot relates to the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carry {
    /// Rows of the previous snapshot are kept unless their id was read again (incremental runs).
    ById,
    /// Rows of the previous snapshot are kept unless their contact was read again (in every run:
    /// only some contacts' history is read at a time).
    ByContact,
    /// The parts replace the previous snapshot.
    Nothing,
}

/// The entities of an extract, with their schemas, in manifest order.
fn entities() -> [(&'static str, SchemaRef, Carry); 7] {
    [
        (ghl::CONTACTS, schema::contacts_schema(), Carry::ById),
        (history::TASKS, schema::tasks_schema(), Carry::ByContact),
        (history::NOTES, schema::notes_schema(), Carry::ByContact),
        (
            history::APPOINTMENTS,
            schema::appointments_schema(),
            Carry::ByContact,
        ),
        (bulksms::MESSAGES, schema::messages_schema(), Carry::ById),
        (
            bulksms::BLOCKED_NUMBERS,
            schema::blocked_numbers_schema(),
            Carry::ById,
        ),
        (bulksms::PROFILE, schema::profile_schema(), Carry::Nothing),
    ]
}

/// Runs (or resumes) an extract and returns its manifest.
pub async fn run_extract(
    setup: ExtractSetup<'_>,
    options: &ExtractOptions,
) -> anyhow::Result<ExtractOutcome> {
    let state_dir = setup.state_dir;
    let state = setup.state;
    let ghl_client = setup.ghl;
    let bulksms_client = setup.bulksms;
    let settings = setup.settings;
    let clock = setup.clock;
    let account_only = matches!(options.account, AccountSource::Only);
    if !account_only {
        ghl_client
            .require_scopes(false)
            .await
            .context("checking the GHL grant before extracting")?;
    }

    let (run, store, resumed) = open_or_start(state_dir, options.full, clock)?;
    let checkpoint = store.snapshot();
    let previous = match &checkpoint.based_on_run {
        Some(id) => {
            let run = RunDir::open(state_dir, id)?;
            let manifest = run
                .extract_manifest()
                .with_context(|| format!("run {id} has no extract manifest to build on"))?;
            Some((run, manifest))
        }
        None => None,
    };
    tracing::info!(run = %run.id, mode = %checkpoint.mode, resumed, "Extract started");

    let prev_cursor = |entity: &str| {
        previous
            .as_ref()
            .and_then(|(_, m)| m.entities.get(entity))
            .map(|e| e.cursor.clone())
            .unwrap_or(serde_json::Value::Null)
    };
    let contacts_cursor: ghl::ContactsCursor =
        serde_json::from_value(prev_cursor(ghl::CONTACTS)).unwrap_or_default();
    let messages_cursor: bulksms::MessagesCursor =
        serde_json::from_value(prev_cursor(bulksms::MESSAGES)).unwrap_or_default();
    let blocked_cursor: bulksms::BlockedCursor =
        serde_json::from_value(prev_cursor(bulksms::BLOCKED_NUMBERS)).unwrap_or_default();
    let since_ms = contacts_cursor
        .date_updated_ms
        .map(|ms| ms - settings.overlap_minutes * 60_000);

    let extract_dir = run.extract_dir();
    let progress = ExtractProgress::new(options.progress);
    let run_started_ms = checkpoint.started_at.timestamp_millis();
    // History builds on the newest finished extract whatever the mode: a full extract re-reads
    // all contacts but only some contacts' history.
    let history_base = latest_complete_extract(state_dir)?;
    let ghl_task = async {
        if account_only {
            return anyhow::Ok(history::HistoryPlan::default());
        }
        ghl::read_contacts(
            ghl_client,
            ghl::ContactsQuery {
                page_size: settings.page_size,
                since_ms,
                previous_cursor: contacts_cursor,
                run_started_ms,
                dnd_lookups: settings.dnd_lookups_per_run,
            },
            &extract_dir,
            store.clone(),
            progress.entity(ghl::CONTACTS),
            clock,
        )
        .await?;
        let query = history::HistoryQuery {
            cap: settings.history_lookups_per_run,
            for_changed: settings.history_for_changed,
            ledger: Some(state.clone()),
            touched_since: history_base.as_ref().map(|(_, m)| m.started_at),
            previous_pending: history_base
                .as_ref()
                .map(|(run, _)| run.extract_dir().join(history::PENDING_FILE)),
            contact_parts: store
                .entity(ghl::CONTACTS)
                .parts
                .iter()
                .map(|p| extract_dir.join(p))
                .collect(),
        };
        let mut plan = history::plan(&query, &extract_dir)
            .context("choosing the contacts whose tasks, notes and appointments to read")?;
        plan.failed = history::read_history(
            ghl_client,
            &plan,
            &extract_dir,
            store.clone(),
            history::HistoryProgress {
                tasks: progress.entity(history::TASKS),
                notes: progress.entity(history::NOTES),
                appointments: progress.entity(history::APPOINTMENTS),
            },
            clock,
        )
        .await?;
        anyhow::Ok(plan)
    };
    let bulksms_task = async {
        if let AccountSource::Shared(shared) = &options.account {
            let dir = wait_for_account(shared.clone()).await?;
            return take_account_tables(&dir, &extract_dir, &store);
        }
        bulksms::read_messages(
            bulksms_client,
            messages_cursor,
            settings.status_lookback_hours,
            &extract_dir,
            store.clone(),
            progress.entity(bulksms::MESSAGES),
            clock,
        )
        .await?;
        bulksms::read_blocked_numbers(
            bulksms_client,
            blocked_cursor,
            &extract_dir,
            store.clone(),
            progress.entity(bulksms::BLOCKED_NUMBERS),
            clock,
        )
        .await?;
        bulksms::read_profile(
            bulksms_client,
            &extract_dir,
            store.clone(),
            progress.entity(bulksms::PROFILE),
            clock,
        )
        .await
    };
    let (history_plan, ()) = tokio::try_join!(ghl_task, bulksms_task)?;

    let mut requests = BTreeMap::new();
    requests.insert("ghl".to_string(), ghl_client.api().metrics().snapshot());
    requests.insert(
        "bulksms".to_string(),
        bulksms_client.api().metrics().snapshot(),
    );
    // Contacts the loads deleted are gone although no incremental read shows it.
    let deleted = match state.open_ledger_reader()? {
        Some(ledger) => ledger.contacts_deleted()?,
        None => HashSet::new(),
    };
    let manifest = finalize(
        setup,
        &run,
        &store,
        Carried {
            previous: previous.as_ref().map(|(r, _)| r),
            history_base: history_base.as_ref().map(|(r, _)| r),
            deleted_contacts: &deleted,
        },
        &history_plan,
        requests,
    )?;
    tracing::info!(
        run = %run.id,
        contacts = manifest.entities.get(ghl::CONTACTS).map_or(0, |e| e.rows),
        messages = manifest.entities.get(bulksms::MESSAGES).map_or(0, |e| e.rows),
        quarantined = manifest.quarantined_rows,
        "Extract finished"
    );
    Ok(ExtractOutcome {
        run,
        manifest,
        resumed,
    })
}

/// Waits for the shared account read of this run.
async fn wait_for_account(mut shared: SharedAccount) -> anyhow::Result<PathBuf> {
    let done = shared
        .wait_for(Option::is_some)
        .await
        .map_err(|_| anyhow::anyhow!("the shared BulkSMS read stopped before it finished"))?;
    match done.as_ref() {
        Some(Ok(dir)) => Ok(dir.clone()),
        Some(Err(message)) => Err(anyhow::anyhow!("the shared BulkSMS read failed: {message}")),
        None => unreachable!("waited for Some"),
    }
}

/// Commits the BulkSMS tables of a finished extract (`from`) as this extract's: one part each,
/// with the cursors that extract ended with. Its tables are complete snapshots, so the rows this
/// extract carries over from its previous run add nothing they lack.
fn take_account_tables(
    from: &Path,
    extract_dir: &Path,
    store: &CheckpointStore,
) -> anyhow::Result<()> {
    let manifest = ExtractManifest::read(&from.join(EXTRACT_MANIFEST)).with_context(|| {
        format!(
            "reading the shared BulkSMS read's manifest in {}",
            from.display()
        )
    })?;
    for name in [
        bulksms::MESSAGES,
        bulksms::BLOCKED_NUMBERS,
        bulksms::PROFILE,
    ] {
        if store.entity(name).done {
            continue;
        }
        let file = entity_file(name);
        let dir = parts_dir(extract_dir, name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let part = dir.join("shared.parquet");
        let source = from.join(&file);
        std::fs::copy(&source, &part)
            .with_context(|| format!("copying {} to {}", source.display(), part.display()))?;
        let entity = manifest.entities.get(name);
        let relative = part
            .strip_prefix(extract_dir)
            .expect("the part is inside the extract folder")
            .to_string_lossy()
            .into_owned();
        store.commit(
            name,
            checkpoint::EntityCheckpoint {
                parts: vec![relative],
                rows: entity.map_or(0, |e| e.rows),
                next_cursor: entity.map_or(serde_json::Value::Null, |e| e.cursor.clone()),
                done: true,
                ..checkpoint::EntityCheckpoint::default()
            },
        )?;
    }
    Ok(())
}

fn open_or_start(
    state_dir: &Path,
    full: bool,
    clock: &dyn Clock,
) -> anyhow::Result<(RunDir, Arc<CheckpointStore>, bool)> {
    if let Some(run) = unfinished_extract(state_dir)? {
        let store = CheckpointStore::load(run.extract_dir().join(EXTRACT_CHECKPOINT))?;
        return Ok((run, Arc::new(store), true));
    }
    let based_on = if full {
        None
    } else {
        latest_complete_extract(state_dir)?.map(|(run, _)| run.id)
    };
    let now = clock.now();
    let run = RunDir::create(state_dir, now)
        .with_context(|| format!("creating a run directory in {}", state_dir.display()))?;
    let checkpoint = Checkpoint {
        run_id: run.id.clone(),
        mode: if based_on.is_some() {
            "incremental"
        } else {
            "full"
        }
        .to_string(),
        based_on_run: based_on,
        started_at: now,
        entities: BTreeMap::new(),
    };
    let store = CheckpointStore::create(run.extract_dir().join(EXTRACT_CHECKPOINT), checkpoint)
        .with_context(|| format!("writing the checkpoint of run {}", run.id))?;
    Ok((run, Arc::new(store), false))
}

/// What a run's snapshot carries over from earlier ones, and what it must not.
struct Carried<'a> {
    /// The run whose snapshot this one builds on (incremental runs).
    previous: Option<&'a RunDir>,
    /// The newest finished extract, whose history (tasks, notes, appointments) carries over.
    history_base: Option<&'a RunDir>,
    /// Contacts the loads deleted: dropped with their history.
    deleted_contacts: &'a HashSet<String>,
}

/// Compacts every entity into its snapshot file, gathers quarantined rows and writes the manifest.
fn finalize(
    setup: ExtractSetup<'_>,
    run: &RunDir,
    store: &CheckpointStore,
    carried: Carried<'_>,
    history_plan: &history::HistoryPlan,
    requests: BTreeMap<String, MetricsSnapshot>,
) -> anyhow::Result<ExtractManifest> {
    let Carried {
        previous,
        history_base,
        deleted_contacts,
    } = carried;
    let extract_dir = run.extract_dir();
    let checkpoint = store.snapshot();
    let mut entities_out = BTreeMap::new();
    let mut quarantine_parts: Vec<PathBuf> = Vec::new();
    // A deleted contact's history is replaced by nothing.
    let mut history_read = history::contacts_read(history_plan);
    history_read.extend(deleted_contacts.iter().cloned());
    let no_ids = HashSet::new();
    for (name, schema, carry) in entities() {
        let state = checkpoint.entities.get(name).cloned().unwrap_or_default();
        let parts: Vec<PathBuf> = state.parts.iter().map(|p| extract_dir.join(p)).collect();
        quarantine_parts.extend(state.quarantine_parts.iter().map(|p| extract_dir.join(p)));
        let file = entity_file(name);
        let previous_file = match carry {
            Carry::ById => previous
                .map(|r| r.extract_dir().join(&file))
                .filter(|p| p.exists()),
            Carry::ByContact => match history_base
                .map(|r| r.extract_dir().join(&file))
                .filter(|p| p.exists())
            {
                Some(prev) => {
                    let kept = parts_dir(&extract_dir, name).join("carried.parquet");
                    history::carry_over(&schema, &prev, &history_read, &kept)
                        .with_context(|| format!("carrying {} over", prev.display()))?;
                    Some(kept)
                }
                None => None,
            },
            Carry::Nothing => None,
        };
        let out = extract_dir.join(&file);
        let may_repeat: HashSet<String> = state.may_repeat.iter().cloned().collect();
        let deleted = if name == ghl::CONTACTS {
            deleted_contacts
        } else {
            &no_ids
        };
        let stats = compact(
            &schema,
            &parts,
            previous_file.as_deref(),
            &may_repeat,
            deleted,
            &out,
        )
        .with_context(|| format!("writing snapshot {}", out.display()))?;
        let bytes = std::fs::metadata(&out)
            .with_context(|| format!("reading size of {}", out.display()))?
            .len();
        entities_out.insert(
            name.to_string(),
            EntityManifest {
                file: format!("extract/{file}"),
                rows: stats.rows,
                delta_rows: stats.delta_rows,
                carried_rows: stats.carried_rows,
                sha256: atomic::sha256_file(&out)?,
                bytes,
                cursor: state.next_cursor.clone(),
                pages: state.pages,
                duration_ms: state.duration_ms,
            },
        );
    }
    let quarantined_rows =
        write_quarantine(&extract_dir.join("quarantine.parquet"), &quarantine_parts)?;
    let manifest = ExtractManifest {
        schema_version: SCHEMA_VERSION,
        run_id: run.id.clone(),
        pipeline: setup.pipeline_name.to_string(),
        mode: checkpoint.mode.clone(),
        based_on_run: checkpoint.based_on_run.clone(),
        started_at: checkpoint.started_at,
        finished_at: setup.clock.now(),
        entities: entities_out,
        requests,
        quarantined_rows,
        history: history_plan.summary(),
    };
    history::write_pending(&extract_dir, history_plan)?;
    manifest
        .write(&extract_dir.join(EXTRACT_MANIFEST))
        .context("writing the extract manifest")?;
    // The snapshot is complete and visible; the scaffolding can go.
    let parts_dir = extract_dir.join(".parts");
    if parts_dir.exists() {
        std::fs::remove_dir_all(&parts_dir)
            .with_context(|| format!("removing {}", parts_dir.display()))?;
    }
    std::fs::remove_file(store.path())
        .with_context(|| format!("removing {}", store.path().display()))?;
    Ok(manifest)
}

/// File of an entity relative to `extract/` (`ghl/contacts` → `ghl/contacts.parquet`).
pub fn entity_file(name: &str) -> String {
    format!("{name}.parquet")
}

fn write_quarantine(out: &Path, parts: &[PathBuf]) -> anyhow::Result<u64> {
    let mut writer = SnapshotWriter::create(out, &schema::quarantine_schema())?;
    for part in parts {
        for batch in read_batches(part)? {
            writer.write(&batch?)?;
        }
    }
    let rows = writer.finish()?;
    if rows > 0 {
        tracing::warn!(rows, file = %out.display(), "Rows quarantined: they could not be typed");
    }
    Ok(rows)
}
