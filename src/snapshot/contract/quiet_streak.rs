//! Sends held back by quiet hours run after run. A send that would land inside the recipient's
//! quiet window waits for a later run; with a fixed daily schedule, recipients in a zone that is
//! always inside its window at that hour never get a text, and each run only counts the send as
//! deferred. The plan and the audit look at the runs before (and the audit at this one too) and
//! warn when the streak is long enough to be the schedule rather than chance.

use crate::snapshot::run::list_runs;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Runs in a row whose load held sends for quiet hours before the plan and the audit warn.
pub const WARN_AFTER_RUNS: usize = 3;

/// One run whose load held sends for quiet hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuietRun {
    pub run_id: String,
    /// Sends held.
    pub deferred: u64,
    /// Sends held by the recipient's time zone.
    pub zones: BTreeMap<String, u64>,
}

/// The unbroken run of loads, newest first, that held sends for quiet hours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuietStreak {
    pub runs: Vec<QuietRun>,
}

/// What this module reads of `load/result.json` (written by every load that applied a plan).
#[derive(Deserialize)]
struct LoadResult {
    metrics: LoadResultMetrics,
}

/// Loads written before the quiet-hours counts existed read as 0: they end a streak.
#[derive(Deserialize, Default)]
#[serde(default)]
struct LoadResultMetrics {
    deferred_quiet_hours: u64,
    quiet_hours_zones: BTreeMap<String, u64>,
}

impl QuietStreak {
    /// The streak that ends at the newest run up to `last_run_id` (that run included when
    /// `include_last`). Runs with no load result (a refused plan, a run stopped before its load)
    /// neither count nor break it; a load that held no send for quiet hours ends it.
    pub fn find(state_dir: &Path, last_run_id: &str, include_last: bool) -> std::io::Result<Self> {
        let mut runs = Vec::new();
        for run in list_runs(state_dir)?.into_iter().rev() {
            if run.id.as_str() > last_run_id || (run.id == last_run_id && !include_last) {
                continue;
            }
            let path = run.load_dir().join("result.json");
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let metrics = match serde_json::from_slice::<LoadResult>(&bytes) {
                Ok(result) => result.metrics,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "Unreadable load result; skipped");
                    continue;
                }
            };
            if metrics.deferred_quiet_hours == 0 {
                break;
            }
            runs.push(QuietRun {
                run_id: run.id,
                deferred: metrics.deferred_quiet_hours,
                zones: metrics.quiet_hours_zones,
            });
        }
        Ok(QuietStreak { runs })
    }

    /// The warning for the plan and the audit, once the streak reaches [`WARN_AFTER_RUNS`].
    pub fn warning(&self) -> Option<String> {
        if self.runs.len() < WARN_AFTER_RUNS {
            return None;
        }
        let newest = &self.runs[0];
        let oldest = &self.runs[self.runs.len() - 1];
        let mut zones: Vec<(&String, &u64)> = newest.zones.iter().collect();
        zones.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let zones = zones
            .iter()
            .map(|(zone, n)| format!("{zone} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        Some(format!(
            "Quiet hours held back sends in each of the last {} runs ({} to {}); the latest held {} ({zones}). \
             At the time this job runs those recipients are inside their quiet hours, so they may never get a text: \
             schedule the job when it is daytime in their zones, or add a second daily run.",
            self.runs.len(),
            oldest.run_id,
            newest.run_id,
            newest.deferred
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_result(state: &Path, run: &str, body: &str) {
        let dir = state.join("runs").join(run).join("load");
        std::fs::create_dir_all(&dir).expect("load dir");
        std::fs::write(dir.join("result.json"), body).expect("result");
    }

    fn held(n: u64) -> String {
        format!(
            r#"{{"metrics": {{"applied": 1, "deferred": {n}, "deferred_quiet_hours": {n},
                "quiet_hours_zones": {{"Pacific/Honolulu": {n}}}}}, "errors": []}}"#
        )
    }

    #[test]
    fn the_streak_counts_consecutive_loads_that_held_sends_and_warns_from_three() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path();
        // Oldest first: a load written before the counts existed, then one that held nothing,
        // then three that held sends with a run that never loaded in between.
        load_result(
            state,
            "r1",
            r#"{"metrics": {"applied": 2, "deferred": 0}, "errors": []}"#,
        );
        load_result(state, "r2", &held(0));
        load_result(state, "r3", &held(4));
        std::fs::create_dir_all(state.join("runs/r4/extract")).expect("r4");
        load_result(state, "r5", &held(5));
        load_result(state, "r6", &held(6));

        let before_r6 = QuietStreak::find(state, "r6", false).expect("find");
        assert_eq!(
            before_r6
                .runs
                .iter()
                .map(|r| r.run_id.as_str())
                .collect::<Vec<_>>(),
            ["r5", "r3"]
        );
        assert_eq!(before_r6.warning(), None, "two runs are not yet a pattern");

        let with_r6 = QuietStreak::find(state, "r6", true).expect("find");
        assert_eq!(with_r6.runs.len(), 3);
        let warning = with_r6.warning().expect("three runs in a row warn");
        assert!(warning.contains("last 3 runs (r3 to r6)"), "{warning}");
        assert!(warning.contains("held 6 (Pacific/Honolulu 6)"), "{warning}");

        // A run after them that held nothing ends the streak.
        load_result(state, "r7", &held(0));
        assert_eq!(
            QuietStreak::find(state, "r8", false)
                .expect("find")
                .runs
                .len(),
            0
        );
    }
}
