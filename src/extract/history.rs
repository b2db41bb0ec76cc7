//! GHL tasks, notes and appointments of chosen contacts: one `GET /contacts/{id}/{tasks, notes,
//! appointments}` each, since GHL has no endpoint listing them for a location.
//!
//! Which contacts: those still owed from the previous extract (its cap was reached), then those the
//! loads since the previous extract touched (the ledger's succeeded and unknown-outcome operations,
//! so read-back sees the notes and tasks the pipeline made), then, with
//! `[extract] history_for_changed`, every contact this extract read (the changed ones; all of
//! them in a full extract). At most `history_lookups_per_run` are read; the rest are written to
//! `ghl/history_pending.txt` and read first by the next extract.
//!
//! The list is fixed once, in `.parts/`, before the first request, so a resumed run reads the same
//! contacts; each entity's checkpoint says how many of them its committed parts cover.

use super::checkpoint::CheckpointStore;
use super::entity_writer::EntityWriter;
use super::progress::EntityProgress;
use super::rows::{appointment_row, note_row, task_row};
use crate::api::error::ApiError;
use crate::api::ghl::GhlClient;
use crate::api::retry::is_retryable;
use crate::clock::Clock;
use crate::snapshot::atomic;
use crate::snapshot::manifest::HistorySummary;
use crate::snapshot::parts::read_batches;
use crate::snapshot::schema::{
    AppointmentRow, NoteRow, QuarantineRow, TaskRow, appointments_schema, notes_schema,
    tasks_schema,
};
use anyhow::Context;
use arrow::array::{Array, AsArray};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Entity names in checkpoints and manifests.
pub const TASKS: &str = "ghl/tasks";
pub const NOTES: &str = "ghl/notes";
pub const APPOINTMENTS: &str = "ghl/appointments";

/// Contacts whose history was owed when an extract finished, one id a line (relative to `extract/`).
pub const PENDING_FILE: &str = "ghl/history_pending.txt";

/// Contacts read between checkpoint commits: a crash repeats at most this many contacts' requests.
const CONTACTS_PER_COMMIT: usize = 25;

/// Contacts whose reads fail in a row, every retry spent, before the extract gives up: one such
/// contact is a transient fault owed to the next run, several in a row mean GHL is down.
const FAILED_CONTACTS_IN_A_ROW_TO_STOP: usize = 5;

/// What to base the choice of contacts on.
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    /// `[extract] history_lookups_per_run`: contacts read at most.
    pub cap: usize,
    /// `[extract] history_for_changed`.
    pub for_changed: bool,
    /// Where the ledger is, when there is one.
    pub ledger: Option<crate::state::StateStore>,
    /// Start of the previous complete extract: loads after it touched the contacts to read.
    pub touched_since: Option<DateTime<Utc>>,
    /// The previous complete extract's pending list.
    pub previous_pending: Option<PathBuf>,
    /// This run's contact part files (the contacts it saw as new or changed, or all of them).
    pub contact_parts: Vec<PathBuf>,
}

/// The contacts of one run, fixed before the first request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HistoryPlan {
    /// Read in this run, in order.
    pub read: Vec<String>,
    /// Owed to the next run.
    pub left: Vec<String>,
    /// Read in this run but failing after every retry: owed to the next run, before `left`, and
    /// their rows of the previous snapshot kept. Filled by [`read_history`], never saved in the plan.
    #[serde(default, skip_serializing)]
    pub failed: Vec<String>,
    /// Of all chosen: carried over from the previous run, touched by loads, seen changed.
    pub from_previous: usize,
    pub touched: usize,
    pub changed: usize,
}

impl HistoryPlan {
    /// The manifest's view of the plan.
    pub fn summary(&self) -> HistorySummary {
        HistorySummary {
            contacts_read: (self.read.len() - self.failed.len()) as u64,
            contacts_failed: self.failed.len() as u64,
            contacts_left: self.left.len() as u64,
            from_previous: self.from_previous as u64,
            touched_by_loads: self.touched as u64,
            changed: self.changed as u64,
            pending_file: format!("extract/{PENDING_FILE}"),
        }
    }
}

/// Where the plan of a run is kept while it runs.
fn plan_path(extract_dir: &Path) -> PathBuf {
    extract_dir
        .join(".parts")
        .join("ghl__history_plan")
        .join("plan.json")
}

/// Where the contacts that failed so far are kept while the run runs, one id a line, so a resumed
/// run still owes them.
fn failed_path(extract_dir: &Path) -> PathBuf {
    extract_dir
        .join(".parts")
        .join("ghl__history_plan")
        .join("failed.txt")
}

/// The contacts whose history is not in this run's snapshot, in the order the next run reads them.
fn pending_ids(plan: &HistoryPlan) -> impl Iterator<Item = &String> {
    plan.failed.iter().chain(&plan.left)
}

/// The contacts whose rows this run read (the previous snapshot's rows of the others are kept).
pub fn contacts_read(plan: &HistoryPlan) -> HashSet<String> {
    let failed: HashSet<&String> = plan.failed.iter().collect();
    plan.read
        .iter()
        .filter(|id| !failed.contains(id))
        .cloned()
        .collect()
}

/// The plan of this run: the one saved by an earlier attempt, or a new one, saved before use.
pub fn plan(query: &HistoryQuery, extract_dir: &Path) -> anyhow::Result<HistoryPlan> {
    let path = plan_path(extract_dir);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        return serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()));
    }
    let mut chosen: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut add = |ids: Vec<String>| {
        let before = chosen.len();
        for id in ids {
            if seen.insert(id.clone()) {
                chosen.push(id);
            }
        }
        chosen.len() - before
    };
    let previous = match &query.previous_pending {
        Some(file) if file.exists() => std::fs::read_to_string(file)
            .with_context(|| format!("reading {}", file.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    let from_previous = add(previous);
    let reader = match &query.ledger {
        Some(store) => store.open_ledger_reader()?,
        None => None,
    };
    let touched_ids = match reader {
        Some(ledger) => {
            let since = query.touched_since.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
            ledger.contacts_touched_since(since)?
        }
        None => Vec::new(),
    };
    let touched = add(touched_ids);
    let changed = if query.for_changed {
        add(contact_ids(&query.contact_parts)?)
    } else {
        0
    };
    let left = chosen.split_off(query.cap.min(chosen.len()));
    let plan = HistoryPlan {
        read: chosen,
        left,
        failed: Vec::new(),
        from_previous,
        touched,
        changed,
    };
    let json = serde_json::to_vec(&plan)?;
    atomic::write(&path, &json).with_context(|| format!("writing {}", path.display()))?;
    Ok(plan)
}

/// The `id` column of contact part files, in order.
fn contact_ids(parts: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for part in parts {
        for batch in read_batches(part)? {
            let batch = batch?;
            let ids = batch
                .column_by_name("id")
                .with_context(|| format!("{} has no id column", part.display()))?
                .as_string_opt::<i32>()
                .with_context(|| format!("{}: id is not text", part.display()))?;
            out.extend(
                (0..ids.len())
                    .filter(|&i| ids.is_valid(i))
                    .map(|i| ids.value(i).to_string()),
            );
        }
    }
    Ok(out)
}

/// Writes the pending list of a finished run.
pub fn write_pending(extract_dir: &Path, plan: &HistoryPlan) -> anyhow::Result<()> {
    let mut text = String::new();
    for id in pending_ids(plan) {
        text.push_str(id);
        text.push('\n');
    }
    let path = extract_dir.join(PENDING_FILE);
    atomic::write(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// Progress displays of the three entities.
pub struct HistoryProgress {
    pub tasks: EntityProgress,
    pub notes: EntityProgress,
    pub appointments: EntityProgress,
}

/// Reads the tasks, notes and appointments of the plan's contacts into part files. Returns the
/// contacts whose reads still failed after every retry of the HTTP layer: they are owed to the next
/// run instead of failing this one (a nightly run of thousands of requests meets the odd one).
pub async fn read_history(
    client: &GhlClient,
    plan: &HistoryPlan,
    extract_dir: &Path,
    store: Arc<CheckpointStore>,
    progress: HistoryProgress,
    clock: &dyn Clock,
) -> anyhow::Result<Vec<String>> {
    let mut tasks: EntityWriter<TaskRow> = EntityWriter::open(
        TASKS,
        tasks_schema(),
        extract_dir,
        store.clone(),
        progress.tasks,
    )?;
    let mut notes: EntityWriter<NoteRow> = EntityWriter::open(
        NOTES,
        notes_schema(),
        extract_dir,
        store.clone(),
        progress.notes,
    )?;
    let mut appointments: EntityWriter<AppointmentRow> = EntityWriter::open(
        APPOINTMENTS,
        appointments_schema(),
        extract_dir,
        store,
        progress.appointments,
    )?;
    // How many of the plan's contacts each entity's committed parts already cover.
    let covered = |state: &super::checkpoint::EntityCheckpoint| {
        if state.done {
            plan.read.len()
        } else {
            state.resume_from.as_u64().unwrap_or(0) as usize
        }
    };
    let starts = [
        covered(tasks.state()),
        covered(notes.state()),
        covered(appointments.state()),
    ];
    let first = starts.iter().copied().min().unwrap_or(0);
    // Failures an interrupted attempt recorded for contacts this attempt does not read again.
    let failed_file = failed_path(extract_dir);
    let mut failed: Vec<String> = read_failed(&failed_file)?
        .into_iter()
        .filter(|id| {
            plan.read
                .iter()
                .position(|r| r == id)
                .is_some_and(|index| index < first)
        })
        .collect();
    let mut failed_in_a_row = 0usize;
    let mut missing = 0usize;
    for (index, contact_id) in plan.read.iter().enumerate().skip(first) {
        let want = starts.map(|start| index >= start);
        let answers = match fetch(client, contact_id, want).await {
            Ok(answers) => {
                failed_in_a_row = 0;
                answers
            }
            Err(ContactReadError::Transient(error))
                if failed_in_a_row + 1 < FAILED_CONTACTS_IN_A_ROW_TO_STOP =>
            {
                failed_in_a_row += 1;
                tracing::warn!(
                    contact = %contact_id,
                    error = %format!("{error:#}"),
                    "Tasks, notes or appointments of a contact unreadable after every retry: owed to the next run"
                );
                failed.push(contact_id.clone());
                // Durable before the checkpoint that covers this contact is committed.
                atomic::write(&failed_file, lines(&failed).as_bytes())
                    .with_context(|| format!("writing {}", failed_file.display()))?;
                // Nothing is written for it: its rows of the previous snapshot are kept.
                Some(Default::default())
            }
            Err(ContactReadError::Transient(error)) => {
                return Err(error.context(format!(
                    "{FAILED_CONTACTS_IN_A_ROW_TO_STOP} contacts in a row could not be read after \
                     every retry; GHL looks unavailable, run again later (the extract resumes)"
                )));
            }
            Err(ContactReadError::Fatal(error)) => return Err(error),
        };
        if answers.is_none() {
            missing += 1;
        }
        let [t, n, a] = answers.unwrap_or_default();
        let extracted_at = clock.now().timestamp_millis();
        let resume = Value::from(index as u64 + 1);
        if want[0] {
            let (rows, quarantine) =
                type_rows(t, TASKS, "tasks", contact_id, extracted_at, task_row);
            tasks.push_page(rows, quarantine, resume.clone(), Value::Null, Vec::new())?;
        }
        if want[1] {
            let (rows, quarantine) =
                type_rows(n, NOTES, "notes", contact_id, extracted_at, note_row);
            notes.push_page(rows, quarantine, resume.clone(), Value::Null, Vec::new())?;
        }
        if want[2] {
            let (rows, quarantine) = type_rows(
                a,
                APPOINTMENTS,
                "appointments",
                contact_id,
                extracted_at,
                appointment_row,
            );
            appointments.push_page(rows, quarantine, resume, Value::Null, Vec::new())?;
        }
        if (index + 1).is_multiple_of(CONTACTS_PER_COMMIT) {
            tasks.commit_now()?;
            notes.commit_now()?;
            appointments.commit_now()?;
        }
    }
    tasks.finish()?;
    notes.finish()?;
    appointments.finish()?;
    if missing > 0 {
        tracing::info!(
            missing,
            "Contacts gone before their history was read (deleted or merged): nothing to read"
        );
    }
    tracing::info!(
        contacts = plan.read.len() - failed.len(),
        failed = failed.len(),
        left = plan.left.len(),
        "Tasks, notes and appointments read"
    );
    Ok(failed)
}

fn lines(ids: &[String]) -> String {
    ids.iter().map(|id| format!("{id}\n")).collect()
}

fn read_failed(path: &Path) -> anyhow::Result<Vec<String>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Why one contact's lists could not be read.
enum ContactReadError {
    /// Every retry spent on a fault that may pass (429, 5xx, a dropped or garbled answer).
    Transient(anyhow::Error),
    /// A fault no later run fixes by itself (credentials, scope, a request GHL refuses).
    Fatal(anyhow::Error),
}

/// The three lists of one contact (only those wanted; the others empty), or `None` when the
/// contact no longer exists (GHL answers 400 "Contact with id X not found").
async fn fetch(
    client: &GhlClient,
    contact_id: &str,
    want: [bool; 3],
) -> Result<Option<[Vec<Value>; 3]>, ContactReadError> {
    async fn one(
        wanted: bool,
        read: impl std::future::Future<Output = Result<Vec<Value>, ApiError>>,
    ) -> Result<Vec<Value>, ApiError> {
        if wanted { read.await } else { Ok(Vec::new()) }
    }
    let (t, n, a) = tokio::join!(
        one(want[0], client.contact_tasks(contact_id)),
        one(want[1], client.contact_notes(contact_id)),
        one(want[2], client.contact_appointments(contact_id)),
    );
    let gone = |r: &Result<Vec<Value>, ApiError>| {
        r.as_ref()
            .err()
            .is_some_and(|e| matches!(e.status(), Some(400 | 404)))
    };
    if gone(&t) || gone(&n) || gone(&a) {
        return Ok(None);
    }
    let checked = |what: &str, result: Result<Vec<Value>, ApiError>| {
        result.map_err(|e| {
            let transient = is_retryable(&e, true);
            let error = anyhow::Error::new(e)
                .context(format!("reading the {what} of contact {contact_id}"));
            if transient {
                ContactReadError::Transient(error)
            } else {
                ContactReadError::Fatal(error)
            }
        })
    };
    Ok(Some([
        checked("tasks", t)?,
        checked("notes", n)?,
        checked("appointments", a)?,
    ]))
}

/// Types one contact's list, quarantining rows that do not fit.
fn type_rows<R>(
    raw: Vec<Value>,
    entity: &str,
    path: &str,
    contact_id: &str,
    extracted_at: i64,
    convert: fn(Value, &str, i64) -> Result<R, String>,
) -> (Vec<R>, Vec<QuarantineRow>) {
    let mut rows = Vec::with_capacity(raw.len());
    let mut quarantine = Vec::new();
    for (index, value) in raw.into_iter().enumerate() {
        let raw_text = value.to_string();
        match convert(value, contact_id, extracted_at) {
            Ok(row) => rows.push(row),
            Err(reason) => quarantine.push(QuarantineRow {
                entity: entity.into(),
                source: format!("GET /contacts/{contact_id}/{path}"),
                row_index: index as u64,
                reason,
                raw: raw_text,
                quarantined_at: extracted_at,
            }),
        }
    }
    (rows, quarantine)
}

/// Copies the previous snapshot's rows of `schema` except those of `replaced` contacts (read again
/// in this run, so their rows now come from the parts) into `out`.
pub fn carry_over(
    schema: &arrow::datatypes::SchemaRef,
    previous: &Path,
    replaced: &HashSet<String>,
    out: &Path,
) -> anyhow::Result<()> {
    let mut writer = crate::snapshot::parts::SnapshotWriter::create(out, schema)?;
    for batch in read_batches(previous)? {
        let batch = batch?;
        let contacts = batch
            .column_by_name("contact_id")
            .with_context(|| format!("{} has no contact_id column", previous.display()))?
            .as_string_opt::<i32>()
            .with_context(|| format!("{}: contact_id is not text", previous.display()))?;
        let keep: arrow::array::BooleanArray = (0..contacts.len())
            .map(|i| Some(!contacts.is_valid(i) || !replaced.contains(contacts.value(i))))
            .collect();
        let kept = arrow::compute::filter_record_batch(&batch, &keep)
            .with_context(|| format!("filtering {}", previous.display()))?;
        writer.write(&kept)?;
    }
    writer.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    // The test writes a ledger as load does; extract itself only reads it.
    use crate::load::ledger::Ledger;
    use crate::snapshot::parts::write_part;
    use crate::snapshot::schema::{ContactRow, NoteRow, batch_from_rows, contacts_schema};

    #[test]
    fn owed_contacts_come_first_then_touched_then_changed_each_once_up_to_the_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pending = dir.path().join("pending.txt");
        std::fs::write(&pending, "p1\np2\n").expect("pending");
        let ledger_path = dir.path().join("ledger.sqlite");
        let ledger = Ledger::open(&ledger_path).expect("ledger");
        for (key, contact) in [("k1", "t1"), ("k2", "p2")] {
            ledger
                .begin(key, "r", "add_tags", contact, "{}")
                .expect("begin");
            ledger
                .finish(key, crate::load::ledger::OpStatus::Succeeded, None, None)
                .expect("finish");
        }
        let part = dir.path().join("contacts.parquet");
        let rows: Vec<ContactRow> = ["c1", "t1", "c2"]
            .iter()
            .map(|id| ContactRow {
                id: id.to_string(),
                ..Default::default()
            })
            .collect();
        write_part(
            &part,
            &batch_from_rows(&contacts_schema(), &rows).expect("batch"),
        )
        .expect("part");
        let extract = dir.path().join("extract");
        let query = HistoryQuery {
            cap: 4,
            for_changed: true,
            ledger: Some(crate::state::StateStore::local(dir.path())),
            touched_since: None,
            previous_pending: Some(pending),
            contact_parts: vec![part],
        };
        let chosen = plan(&query, &extract).expect("plan");
        assert_eq!(chosen.read, ["p1", "p2", "t1", "c1"]);
        assert_eq!(chosen.left, ["c2"]);
        assert_eq!(
            (chosen.from_previous, chosen.touched, chosen.changed),
            (2, 1, 2)
        );
        // A resumed run reads the saved plan, whatever the inputs say now.
        let again = plan(&HistoryQuery { cap: 1, ..query }, &extract).expect("saved plan");
        assert_eq!(again, chosen);
    }

    #[test]
    fn carried_rows_are_those_of_contacts_not_read_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let previous = dir.path().join("notes.parquet");
        let rows: Vec<NoteRow> = [("n1", "a"), ("n2", "b"), ("n3", "a")]
            .iter()
            .map(|(id, contact)| NoteRow {
                id: id.to_string(),
                contact_id: contact.to_string(),
                ..Default::default()
            })
            .collect();
        write_part(
            &previous,
            &batch_from_rows(&notes_schema(), &rows).expect("batch"),
        )
        .expect("previous");
        let out = dir.path().join("carried.parquet");
        let replaced: HashSet<String> = ["a".to_string()].into();
        carry_over(&notes_schema(), &previous, &replaced, &out).expect("carry");
        let rows: Vec<NoteRow> = crate::snapshot::desired::read_rows::<serde_json::Value>(&out)
            .expect("read")
            .into_iter()
            .map(|v| NoteRow {
                id: v["id"].as_str().expect("id").to_string(),
                contact_id: v["contact_id"].as_str().expect("contact").to_string(),
                ..Default::default()
            })
            .collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].id.as_str(), rows[0].contact_id.as_str()),
            ("n2", "b")
        );
    }
}
