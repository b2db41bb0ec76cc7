//! Buffers one entity's typed rows into durable part files and commits the checkpoint after each.

use super::checkpoint::{CheckpointStore, EntityCheckpoint};
use super::progress::EntityProgress;
use crate::snapshot::parts::write_part;
use crate::snapshot::schema::{QuarantineRow, batch_from_rows, quarantine_schema};
use anyhow::Context;
use arrow::datatypes::SchemaRef;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Rows per part file: a crash re-reads at most this many rows.
pub const ROWS_PER_PART: usize = 10_000;

/// Writes one entity's parts and keeps its checkpoint entry current.
pub struct EntityWriter<R: Serialize> {
    name: &'static str,
    schema: SchemaRef,
    extract_dir: PathBuf,
    store: Arc<CheckpointStore>,
    state: EntityCheckpoint,
    rows: Vec<R>,
    quarantine: Vec<QuarantineRow>,
    pages_buffered: u64,
    pending_resume: serde_json::Value,
    pending_cursor: serde_json::Value,
    pending_may_repeat: Vec<String>,
    rows_per_part: usize,
    started: Instant,
    progress: EntityProgress,
}

impl<R: Serialize> EntityWriter<R> {
    /// Opens the entity at its last committed state, deleting part files a crash left uncommitted.
    pub fn open(
        name: &'static str,
        schema: SchemaRef,
        extract_dir: &Path,
        store: Arc<CheckpointStore>,
        progress: EntityProgress,
    ) -> anyhow::Result<Self> {
        let state = store.entity(name);
        let parts_dir = parts_dir(extract_dir, name);
        if parts_dir.exists() {
            for entry in std::fs::read_dir(&parts_dir)
                .with_context(|| format!("listing {}", parts_dir.display()))?
            {
                let entry = entry?;
                let rel = relative(extract_dir, &entry.path());
                if !state.parts.contains(&rel) && !state.quarantine_parts.contains(&rel) {
                    std::fs::remove_file(entry.path()).with_context(|| {
                        format!("removing uncommitted part {}", entry.path().display())
                    })?;
                }
            }
        }
        progress.resume(state.rows, state.pages);
        Ok(EntityWriter {
            name,
            schema,
            extract_dir: extract_dir.to_path_buf(),
            pending_resume: state.resume_from.clone(),
            pending_cursor: state.next_cursor.clone(),
            store,
            state,
            rows: Vec::new(),
            quarantine: Vec::new(),
            pages_buffered: 0,
            pending_may_repeat: Vec::new(),
            rows_per_part: ROWS_PER_PART,
            started: Instant::now(),
            progress,
        })
    }

    /// The committed state (where to resume).
    pub fn state(&self) -> &EntityCheckpoint {
        &self.state
    }

    /// Adds one page: its rows, its quarantined rows, the cursor just past it, the running next-run
    /// cursor, and ids that may appear again later in this read.
    pub fn push_page(
        &mut self,
        rows: Vec<R>,
        quarantine: Vec<QuarantineRow>,
        resume_after_page: serde_json::Value,
        next_cursor: serde_json::Value,
        may_repeat: Vec<String>,
    ) -> anyhow::Result<()> {
        self.progress.page(rows.len() as u64);
        self.rows.extend(rows);
        self.quarantine.extend(quarantine);
        self.pages_buffered += 1;
        self.pending_resume = resume_after_page;
        self.pending_cursor = next_cursor;
        self.pending_may_repeat.extend(may_repeat);
        if self.rows.len() >= self.rows_per_part {
            self.commit()?;
        }
        Ok(())
    }

    /// Sets the cursor the next run starts from without a page (a read that found nothing new
    /// still hands its cursor on); saved by the next commit or by [`EntityWriter::finish`].
    pub fn set_next_cursor(&mut self, next_cursor: serde_json::Value) {
        self.pending_cursor = next_cursor;
    }

    /// Commits what is buffered now, for readers whose pages are too small to fill a part soon
    /// (one contact's tasks) but whose requests should not be repeated after a crash.
    pub fn commit_now(&mut self) -> anyhow::Result<()> {
        self.commit()
    }

    /// Makes the buffered pages durable, then records them in the checkpoint.
    fn commit(&mut self) -> anyhow::Result<()> {
        if self.pages_buffered == 0 {
            return Ok(());
        }
        let index = self.state.parts.len() + self.state.quarantine_parts.len();
        let dir = parts_dir(&self.extract_dir, self.name);
        let mut next = self.state.clone();
        if !self.rows.is_empty() {
            let path = dir.join(format!("part-{index:06}.parquet"));
            let batch = batch_from_rows(&self.schema, &self.rows)
                .with_context(|| format!("building a {} batch", self.name))?;
            write_part(&path, &batch)?;
            next.parts.push(relative(&self.extract_dir, &path));
            next.rows += self.rows.len() as u64;
        }
        if !self.quarantine.is_empty() {
            let path = dir.join(format!("quarantine-{index:06}.parquet"));
            let batch = batch_from_rows(&quarantine_schema(), &self.quarantine)
                .context("building a quarantine batch")?;
            write_part(&path, &batch)?;
            next.quarantine_parts
                .push(relative(&self.extract_dir, &path));
        }
        next.pages += self.pages_buffered;
        next.resume_from = self.pending_resume.clone();
        next.next_cursor = self.pending_cursor.clone();
        next.may_repeat.append(&mut self.pending_may_repeat);
        next.duration_ms += self.started.elapsed().as_millis() as u64;
        self.started = Instant::now();
        self.store
            .commit(self.name, next.clone())
            .with_context(|| format!("saving checkpoint {}", self.store.path().display()))?;
        tracing::debug!(
            entity = self.name,
            rows = next.rows,
            pages = next.pages,
            "Part committed"
        );
        self.state = next;
        self.rows.clear();
        self.quarantine.clear();
        self.pages_buffered = 0;
        Ok(())
    }

    /// Commits what is buffered and marks the entity done.
    pub fn finish(mut self) -> anyhow::Result<EntityCheckpoint> {
        self.commit()?;
        let mut done = self.state.clone();
        done.next_cursor = self.pending_cursor.clone();
        done.done = true;
        self.store.commit(self.name, done.clone())?;
        self.progress.finish(done.rows);
        Ok(done)
    }
}

/// `extract/.parts/<entity>/`.
pub fn parts_dir(extract_dir: &Path, entity: &str) -> PathBuf {
    extract_dir.join(".parts").join(entity.replace('/', "__"))
}

fn relative(base: &Path, path: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}
