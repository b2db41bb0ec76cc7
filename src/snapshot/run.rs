//! Run directories: `STATE/runs/<run id>/`, one per run, with one folder per stage.
//!
//! Run ids sort by time (`20261125T035012Z-1a2b`), so "the latest run" is the last name in order.

use super::manifest::ExtractManifest;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

/// Name of the extract manifest inside a run's `extract/` folder.
pub const EXTRACT_MANIFEST: &str = "manifest.json";
/// Name of the extract checkpoint inside a run's `extract/` folder (present while unfinished).
pub const EXTRACT_CHECKPOINT: &str = "checkpoint.json";

/// Name of the plan inside a run's `load/` folder, written last by `plan`.
pub const PLAN_FILE: &str = "plan.parquet";
/// Present in a run's `load/` folder when its plan broke a safety limit.
pub const REFUSED_FILE: &str = "refused.json";

/// One run's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    pub id: String,
    pub path: PathBuf,
}

impl RunDir {
    /// Creates a new run directory under `state_dir/runs`.
    pub fn create(state_dir: &Path, now: DateTime<Utc>) -> std::io::Result<Self> {
        let suffix: u16 = rand::random();
        let id = format!("{}-{suffix:04x}", now.format("%Y%m%dT%H%M%SZ"));
        let path = runs_dir(state_dir).join(&id);
        std::fs::create_dir_all(&path)?;
        Ok(RunDir { id, path })
    }

    /// An existing run.
    pub fn open(state_dir: &Path, id: &str) -> std::io::Result<Self> {
        let path = runs_dir(state_dir).join(id);
        if !path.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no run {id} in {}", runs_dir(state_dir).display()),
            ));
        }
        Ok(RunDir {
            id: id.to_string(),
            path,
        })
    }

    /// `extract/` of this run.
    pub fn extract_dir(&self) -> PathBuf {
        self.path.join("extract")
    }

    /// `transform/` of this run.
    pub fn transform_dir(&self) -> PathBuf {
        self.path.join("transform")
    }

    /// `load/` of this run.
    pub fn load_dir(&self) -> PathBuf {
        self.path.join("load")
    }

    /// `audit/` of this run.
    pub fn audit_dir(&self) -> PathBuf {
        self.path.join("audit")
    }

    /// The extract manifest, if the extract finished.
    pub fn extract_manifest(&self) -> Option<ExtractManifest> {
        let path = self.extract_dir().join(EXTRACT_MANIFEST);
        path.exists()
            .then(|| ExtractManifest::read(&path).ok())
            .flatten()
    }

    /// True when this run's plan was accepted: its event-fired operations are in the ledger (owed
    /// or settled), so a later run's triggers may take this run as what it already acted on. A
    /// plan refused by a safety limit (`load/refused.json`) is not: its events fire again.
    pub fn plan_committed(&self) -> bool {
        let load = self.load_dir();
        load.join(PLAN_FILE).exists() && !load.join(REFUSED_FILE).exists()
    }

    /// True when an extract started here and did not finish.
    pub fn extract_unfinished(&self) -> bool {
        let dir = self.extract_dir();
        dir.join(EXTRACT_CHECKPOINT).exists() && !dir.join(EXTRACT_MANIFEST).exists()
    }
}

/// `state_dir/runs`.
pub fn runs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("runs")
}

/// All runs, oldest first.
pub fn list_runs(state_dir: &Path) -> std::io::Result<Vec<RunDir>> {
    let dir = runs_dir(state_dir);
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut runs = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            let id = entry.file_name().to_string_lossy().into_owned();
            if !id.starts_with('.') {
                runs.push(RunDir {
                    id,
                    path: entry.path(),
                });
            }
        }
    }
    runs.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(runs)
}

/// The newest run whose extract finished, with its manifest.
pub fn latest_complete_extract(
    state_dir: &Path,
) -> std::io::Result<Option<(RunDir, ExtractManifest)>> {
    Ok(list_runs(state_dir)?
        .into_iter()
        .rev()
        .find_map(|run| run.extract_manifest().map(|m| (run, m))))
}

/// The newest run whose extract started and did not finish (to resume).
pub fn unfinished_extract(state_dir: &Path) -> std::io::Result<Option<RunDir>> {
    let runs = list_runs(state_dir)?;
    // Only the newest run may be resumed: an older unfinished one was superseded.
    Ok(runs.into_iter().last().filter(RunDir::extract_unfinished))
}
