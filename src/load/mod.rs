//! Load: diff the desired state against the snapshots, write a reviewable plan, apply it exactly once.

pub mod apply;
pub mod blocked;
pub mod created_tasks;
pub mod diff;
pub mod ledger;
pub mod merge_history;
pub mod owed;
mod pg_ledger;
pub mod plan;
pub mod plan_io;
mod sms_dnd;

use serde::Deserialize;

/// `[load]`: safety limits and apply options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadConfig {
    /// Whether this pipeline writes at all. `false` makes it read-only: `load` refuses, `run`
    /// stops after the plan (and audits it), and `auth ghl` asks GHL for read scopes only.
    pub enabled: bool,
    /// Most contacts a run may create.
    pub max_creates: u64,
    /// Most contacts a run may delete.
    pub max_deletes: u64,
    /// Most SMS a run may send.
    pub max_sends: u64,
    /// Largest share of the location's contacts a run may mark as duplicates (0.0–1.0): a match
    /// model gone wrong shows as a flood of merges, and is stopped before it tags strangers.
    pub max_merges: f64,
    /// What to do with a duplicate: "tag" (tag and note pointing at the survivor) or "delete".
    pub merge: MergeMode,
    /// Operations in flight at once.
    pub concurrency: usize,
    /// No SMS in these local hours of the recipient (`[load.quiet_hours]`).
    pub quiet_hours: Option<QuietHours>,
}

/// `[load.quiet_hours]`: sends that would land in this window of the recipient's local time are
/// held back (recorded, retried by the next run) instead of sent.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// Start of the quiet window, `HH:MM` local time (e.g. `"21:00"`).
    pub start: String,
    /// End of the quiet window, `HH:MM` (e.g. `"08:00"`; a window may cross midnight).
    pub end: String,
    /// IANA time zone for recipients whose contact has none (the team number of the digest too).
    pub default_timezone: String,
}

impl QuietHours {
    fn parse_time(text: &str) -> Option<chrono::NaiveTime> {
        chrono::NaiveTime::parse_from_str(text.trim(), "%H:%M").ok()
    }

    /// Checks the times and the zone; the error names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (key, value) in [("start", &self.start), ("end", &self.end)] {
            if Self::parse_time(value).is_none() {
                return Err((key.into(), format!("must be HH:MM, got {value:?}")));
            }
        }
        if self.default_timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err((
                "default_timezone".into(),
                format!(
                    "{:?} is not an IANA time zone (e.g. America/New_York)",
                    self.default_timezone
                ),
            ));
        }
        Ok(())
    }

    /// The zone the window is read in for a recipient whose contact says `timezone`: that zone
    /// when it is a known IANA name, else the default one.
    pub fn zone_of(&self, timezone: Option<&str>) -> String {
        match timezone.filter(|t| t.parse::<chrono_tz::Tz>().is_ok()) {
            Some(zone) => zone.to_string(),
            None => self.default_timezone.clone(),
        }
    }

    /// Whether `now` falls in the window in `timezone` (the default zone when it is unknown).
    pub fn is_quiet(&self, now: chrono::DateTime<chrono::Utc>, timezone: Option<&str>) -> bool {
        let (Some(start), Some(end)) = (Self::parse_time(&self.start), Self::parse_time(&self.end))
        else {
            return false;
        };
        let zone: chrono_tz::Tz = timezone
            .and_then(|t| t.parse().ok())
            .or_else(|| self.default_timezone.parse().ok())
            .unwrap_or(chrono_tz::UTC);
        let local = now.with_timezone(&zone).time();
        if start <= end {
            local >= start && local < end
        } else {
            local >= start || local < end
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn quiet_hours_follow_the_recipients_zone_and_cross_midnight() {
        let q = QuietHours {
            start: "21:00".into(),
            end: "08:00".into(),
            default_timezone: "America/New_York".into(),
        };
        assert!(q.validate().is_ok());
        // 03:00 UTC is 22:00 in New York (quiet) and 04:00 in Paris (quiet), 14:00 in Sydney.
        let t = chrono::Utc.with_ymd_and_hms(2026, 11, 25, 3, 0, 0).unwrap();
        assert!(q.is_quiet(t, None));
        assert!(q.is_quiet(t, Some("Europe/Paris")));
        assert!(!q.is_quiet(t, Some("Australia/Sydney")));
        // 15:00 UTC is 10:00 in New York.
        let t = chrono::Utc
            .with_ymd_and_hms(2026, 11, 25, 15, 0, 0)
            .unwrap();
        assert!(!q.is_quiet(t, None));
        let bad = QuietHours {
            start: "9pm".into(),
            ..q.clone()
        };
        assert_eq!(bad.validate().unwrap_err().0, "start");
        let bad = QuietHours {
            default_timezone: "Mars/Olympus".into(),
            ..q
        };
        assert_eq!(bad.validate().unwrap_err().0, "default_timezone");
    }
}

/// How duplicates are resolved in GHL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeMode {
    /// Tag the duplicate and note the survivor's id; nothing is deleted.
    Tag,
    /// Delete the duplicate after tagging the survivor.
    Delete,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            enabled: true,
            max_creates: 500,
            max_deletes: 0,
            max_sends: 1_000,
            max_merges: 0.35,
            merge: MergeMode::Tag,
            concurrency: 8,
            quiet_hours: None,
        }
    }
}
