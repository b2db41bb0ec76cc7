//! Checks of what lives on this machine: the state directory, the match model, quiet hours.

use super::{CheckLine, fail, ok, sends_possible, warn};
use crate::config::PipelineConfig;
use crate::matching::model::MatchModel;
use chrono::{DateTime, Utc};
use std::path::Path;

pub(super) fn state_dir_check(dir: &Path) -> CheckLine {
    const NAME: &str = "state_dir";
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return warn(
                NAME,
                format!("{} does not exist yet", dir.display()),
                "the first run (or `contactsync auth ghl`) creates it with mode 0700; its parent must be writable by the user the job runs as",
            );
        }
        Err(e) => {
            return fail(
                NAME,
                format!("{}: {e}", dir.display()),
                "make the folder reachable by the user the job runs as",
            );
        }
    };
    if !meta.is_dir() {
        return fail(
            NAME,
            format!("{} is not a folder", dir.display()),
            "point pipeline.state_dir at a folder",
        );
    }
    // Writable: create and remove one probe file inside it (nothing is left behind).
    let probe = dir.join(format!(".contactsync-check-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|_| std::fs::remove_file(&probe));
    if let Err(e) = written {
        return fail(
            NAME,
            format!("{} is not writable: {e}", dir.display()),
            "give the user the job runs as ownership of the folder (chown -R USER DIR)",
        );
    }
    let mut notes = Vec::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        #[cfg(target_os = "linux")]
        {
            // SAFETY: geteuid has no preconditions and cannot fail.
            let me = unsafe { libc::geteuid() };
            if meta.uid() != me {
                return fail(
                    NAME,
                    format!(
                        "{} belongs to uid {}, but this runs as uid {me}: a run cannot restrict it to 0700",
                        dir.display(),
                        meta.uid()
                    ),
                    "run the job as the folder's owner, or chown the folder to the job's user",
                );
            }
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return warn(
                NAME,
                format!(
                    "{} has mode {mode:04o}: tokens, the ledger and snapshots of contacts live here",
                    dir.display()
                ),
                format!("chmod 700 {} (the next run also does it)", dir.display()),
            );
        }
        let tokens = dir.join("tokens").join("ghl.json");
        if let Ok(t) = std::fs::metadata(&tokens)
            && t.permissions().mode() & 0o077 != 0
        {
            return warn(
                NAME,
                format!("{} is readable by others", tokens.display()),
                format!("chmod 600 {}", tokens.display()),
            );
        }
        notes.push(format!("mode {mode:04o}"));
    }
    let runs = crate::snapshot::run::list_runs(dir).map_or(0, |r| r.len());
    notes.push("writable".into());
    notes.push(format!("{runs} runs"));
    if lock_is_held(dir) {
        return warn(
            NAME,
            format!("{}: a run holds its lock now", dir.display()),
            "wait for the run to finish before starting another",
        );
    }
    ok(NAME, format!("{} ({})", dir.display(), notes.join(", ")))
}

/// Whether a run holds the state directory's lock (the lock file is opened, never created).
fn lock_is_held(dir: &Path) -> bool {
    use fs2::FileExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("lock"))
    {
        Ok(file) => {
            let held = file.try_lock_exclusive().is_err();
            if !held {
                let _released_on_close_anyway = FileExt::unlock(&file);
            }
            held
        }
        Err(_) => false,
    }
}

pub(super) fn model_check(config: &PipelineConfig) -> CheckLine {
    const NAME: &str = "match_model";
    let path = config.transform.model.as_ref().map(|p| config.resolve(p));
    match MatchModel::load_or_default(path.as_deref()) {
        Ok(model) => ok(
            NAME,
            format!(
                "{}: {} fields, threshold {}",
                path.map_or("built into contactsync".to_string(), |p| p
                    .display()
                    .to_string()),
                model.fields.len(),
                model.threshold
            ),
        ),
        Err(e) => fail(
            NAME,
            format!("{e:#}"),
            "fix the model file, or remove transform.model to use the built-in contacts model",
        ),
    }
}

pub(super) fn quiet_hours_check(config: &PipelineConfig, now: DateTime<Utc>) -> CheckLine {
    const NAME: &str = "quiet_hours";
    let may_send = sends_possible(config);
    let Some(quiet) = &config.load.quiet_hours else {
        if may_send {
            return warn(
                NAME,
                "no [load.quiet_hours]: texts go out whenever the job runs, at any hour of the recipient's night",
                "add [load.quiet_hours] start = \"21:00\", end = \"08:00\", default_timezone = \"America/New_York\"",
            );
        }
        return ok(NAME, "not set (this pipeline sends no texts)");
    };
    let parse = |t: &str| chrono::NaiveTime::parse_from_str(t.trim(), "%H:%M").ok();
    let (Some(start), Some(end)) = (parse(&quiet.start), parse(&quiet.end)) else {
        // validate() already refused these; kept so this function never panics.
        return fail(NAME, "start or end is not HH:MM", "write times as HH:MM");
    };
    let minutes = |t: chrono::NaiveTime| {
        use chrono::Timelike;
        (t.hour() * 60 + t.minute()) as i64
    };
    let length = (minutes(end) - minutes(start)).rem_euclid(24 * 60);
    let zone: chrono_tz::Tz = quiet.default_timezone.parse().unwrap_or(chrono_tz::UTC);
    let local = now.with_timezone(&zone).format("%H:%M");
    let inside = quiet.is_quiet(now, None);
    let summary = format!(
        "{}–{} in each recipient's zone (default {}: {local} there now, {})",
        quiet.start,
        quiet.end,
        quiet.default_timezone,
        if inside { "quiet" } else { "sending" }
    );
    if length == 0 {
        return warn(
            NAME,
            format!("{summary}: start equals end, so no hour is quiet"),
            "set start and end to different times",
        );
    }
    let noon = 12 * 60;
    let covers_noon = (noon - minutes(start)).rem_euclid(24 * 60) < length;
    if covers_noon || length > 16 * 60 {
        return warn(
            NAME,
            format!(
                "{summary}: {} h of every day are quiet{}",
                length as f64 / 60.0,
                if covers_noon { ", midday included" } else { "" }
            ),
            "did start and end swap? start is when texting stops (e.g. 21:00), end when it resumes (e.g. 08:00)",
        );
    }
    ok(
        NAME,
        format!("{summary}; schedule the job outside these hours in the recipients' zones"),
    )
}

#[cfg(test)]
mod tests {
    use super::super::{CheckStatus, test_pipeline};
    use super::*;
    use chrono::TimeZone;

    fn quiet(start: &str, end: &str) -> CheckLine {
        let config = test_pipeline(&format!(
            "[load.quiet_hours]\nstart = \"{start}\"\nend = \"{end}\"\ndefault_timezone = \"America/New_York\"\n"
        ));
        // 15:00 UTC is 10:00 in New York.
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 15, 0, 0).unwrap();
        quiet_hours_check(&config, now)
    }

    #[test]
    fn night_quiet_hours_pass_and_swapped_or_empty_ones_warn() {
        let night = quiet("21:00", "08:00");
        assert_eq!(night.status, CheckStatus::Ok, "{}", night.message);
        assert!(
            night.message.contains("10:00 there now, sending"),
            "{}",
            night.message
        );
        let swapped = quiet("08:00", "21:00");
        assert_eq!(swapped.status, CheckStatus::Warn);
        assert!(
            swapped.message.contains("midday included"),
            "{}",
            swapped.message
        );
        assert_eq!(quiet("09:00", "09:00").status, CheckStatus::Warn);
        let config = test_pipeline("");
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 15, 0, 0).unwrap();
        assert_eq!(
            quiet_hours_check(&config, now).status,
            CheckStatus::Warn,
            "a sending pipeline without quiet hours"
        );
    }
}
