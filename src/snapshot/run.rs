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

    /// The newest earlier run of the same state directory for which `wanted` holds: the one
    /// look-up behind [`RunDir::previous_extracted`], [`RunDir::previous_transformed`] and
    /// [`RunDir::previous_acted`].
    pub fn previous(&self, wanted: impl Fn(&RunDir) -> bool) -> std::io::Result<Option<RunDir>> {
        let Some(state_dir) = self.path.parent().and_then(Path::parent) else {
            return Ok(None);
        };
        Ok(list_runs(state_dir)?
            .into_iter()
            .rev()
            .filter(|r| r.id < self.id)
            .find(|r| wanted(r)))
    }

    /// The newest earlier run whose extract finished (the snapshot before this one).
    pub fn previous_extracted(&self) -> std::io::Result<Option<RunDir>> {
        self.previous(|r| r.extract_manifest().is_some())
    }

    /// The newest earlier run whose transform finished: it wrote `transform/summary.json`, its
    /// last file (a run killed mid-transform leaves some outputs and not others).
    pub fn previous_transformed(&self) -> std::io::Result<Option<RunDir>> {
        self.previous(|r| {
            r.transform_dir()
                .join(super::contract::transform_outputs::SUMMARY_FILE)
                .exists()
        })
    }

    /// The newest earlier run that acted on the events it saw: its extract finished and its plan
    /// was accepted ([`RunDir::plan_committed`]), so what it fired is owed in the ledger whatever
    /// happened to its load. A run killed before its plan, or refused by a safety limit, acted on
    /// nothing, and the events it saw must fire again.
    pub fn previous_acted(&self) -> std::io::Result<Option<RunDir>> {
        self.previous(|r| r.extract_manifest().is_some() && r.plan_committed())
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::snapshot::contract::transform_outputs::SUMMARY_FILE;

    fn run(state: &Path, id: &str) -> RunDir {
        let path = runs_dir(state).join(id);
        std::fs::create_dir_all(&path).expect("run dir");
        RunDir {
            id: id.into(),
            path,
        }
    }

    fn touch(path: PathBuf) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(path, b"x").expect("write");
    }

    #[test]
    fn previous_runs_are_earlier_and_match_what_was_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path();
        let transformed = run(state, "20260101T000000Z-0001");
        touch(transformed.transform_dir().join("clusters.parquet"));
        touch(transformed.transform_dir().join(SUMMARY_FILE));
        let acted = run(state, "20260102T000000Z-0002");
        touch(acted.load_dir().join(PLAN_FILE));
        let refused = run(state, "20260103T000000Z-0003");
        touch(refused.load_dir().join(PLAN_FILE));
        touch(refused.load_dir().join(REFUSED_FILE));
        // Killed mid-transform: some outputs, not the summary written last.
        let half = run(state, "20260103T120000Z-0006");
        touch(half.transform_dir().join("clusters.parquet"));
        let current = run(state, "20260104T000000Z-0004");
        touch(current.transform_dir().join("clusters.parquet"));
        let later = run(state, "20260105T000000Z-0005");
        touch(later.transform_dir().join("clusters.parquet"));

        assert_eq!(
            current.previous_transformed().expect("list"),
            Some(transformed.clone())
        );
        assert_eq!(
            current.previous(RunDir::plan_committed).expect("list"),
            Some(acted.clone()),
            "a refused plan is not acted on, and later runs never count"
        );
        // Without a finished extract nothing has extracted or acted.
        assert_eq!(current.previous_extracted().expect("list"), None);
        assert_eq!(current.previous_acted().expect("list"), None);
        assert_eq!(transformed.previous_transformed().expect("list"), None);
    }
}
