//! The extract checkpoint: which parts of each entity are durable and where reading resumes.
//!
//! It is rewritten atomically after every part file is fsynced, never before, so after a crash it
//! names only complete parts and a cursor just past their last row.

use crate::snapshot::atomic;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Progress of one run's extract.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    pub run_id: String,
    /// "full" or "incremental".
    pub mode: String,
    /// The completed run an incremental extract builds on.
    pub based_on_run: Option<String>,
    pub started_at: DateTime<Utc>,
    pub entities: BTreeMap<String, EntityCheckpoint>,
}

/// Progress of one entity.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EntityCheckpoint {
    /// Committed part files, relative to the extract folder, in order.
    pub parts: Vec<String>,
    /// Committed quarantine part files.
    pub quarantine_parts: Vec<String>,
    /// Rows in the committed parts.
    pub rows: u64,
    /// Pages read into the committed parts.
    pub pages: u64,
    /// Where reading resumes (entity-specific).
    pub resume_from: serde_json::Value,
    /// The cursor the next run starts from, once the entity is done.
    pub next_cursor: serde_json::Value,
    /// Ids that may occur in more than one part (changed while being read).
    pub may_repeat: Vec<String>,
    /// All pages read.
    pub done: bool,
    /// Time spent on this entity so far.
    pub duration_ms: u64,
}

/// A checkpoint shared by the entity readers of one run, saved on every commit.
#[derive(Debug)]
pub struct CheckpointStore {
    path: PathBuf,
    state: Mutex<Checkpoint>,
}

impl CheckpointStore {
    /// Starts a new checkpoint and saves it.
    pub fn create(path: PathBuf, checkpoint: Checkpoint) -> std::io::Result<Self> {
        let store = CheckpointStore {
            path,
            state: Mutex::new(checkpoint),
        };
        store.save()?;
        Ok(store)
    }

    /// Loads the checkpoint of an unfinished run.
    pub fn load(path: PathBuf) -> anyhow::Result<Self> {
        use anyhow::Context;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading checkpoint {}", path.display()))?;
        let state: Checkpoint = serde_json::from_str(&text)
            .with_context(|| format!("parsing checkpoint {}", path.display()))?;
        Ok(CheckpointStore {
            path,
            state: Mutex::new(state),
        })
    }

    /// A copy of the current state.
    pub fn snapshot(&self) -> Checkpoint {
        self.state.lock().expect("checkpoint lock").clone()
    }

    /// The state of one entity (default when not started).
    pub fn entity(&self, name: &str) -> EntityCheckpoint {
        self.state
            .lock()
            .expect("checkpoint lock")
            .entities
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces an entity's state and saves the checkpoint durably.
    pub fn commit(&self, name: &str, entity: EntityCheckpoint) -> std::io::Result<()> {
        // The file is written under the lock so two readers committing at once cannot leave the
        // older state on disk.
        let mut state = self.state.lock().expect("checkpoint lock");
        state.entities.insert(name.to_string(), entity);
        let json = serde_json::to_vec_pretty(&*state).map_err(std::io::Error::other)?;
        atomic::write(&self.path, &json)
    }

    fn save(&self) -> std::io::Result<()> {
        let state = self.state.lock().expect("checkpoint lock");
        let json = serde_json::to_vec_pretty(&*state).map_err(std::io::Error::other)?;
        atomic::write(&self.path, &json)
    }

    /// Where the checkpoint lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
