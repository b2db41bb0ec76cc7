//! The pipeline's clock: everything that reads "now" (run ids, extract times, the message status
//! look-back, deduplication-id windows, quiet hours, report and metrics times) reads it from a
//! [`Clock`] passed in, so tests can fix time instead of masking dates. Durations measured for logs
//! and metrics use `std::time::Instant` directly: they are not times of day.

use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};

/// Environment variable that fixes the binary's clock (RFC 3339, e.g. `2026-11-25T03:50:00Z`).
/// For tests and reproducing a past run; unset in production.
pub const NOW_ENV: &str = "CONTACTSYNC_NOW";

/// Where the current time comes from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// Wall time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stays where it is set: tests set it, and move it on with [`FixedClock::advance`].
#[derive(Debug)]
pub struct FixedClock {
    now: Mutex<DateTime<Utc>>,
}

impl FixedClock {
    /// A clock stopped at `now`.
    pub fn at(now: DateTime<Utc>) -> Self {
        FixedClock {
            now: Mutex::new(now),
        }
    }

    /// Sets the time.
    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    /// Moves the time on by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The binary's clock: fixed at `CONTACTSYNC_NOW` when it is set, else wall time. A value that is
/// not RFC 3339 is an error naming the variable.
pub fn from_env() -> Result<Arc<dyn Clock>, String> {
    match std::env::var(NOW_ENV) {
        Ok(raw) if !raw.trim().is_empty() => {
            let at = DateTime::parse_from_rfc3339(raw.trim()).map_err(|e| {
                format!(
                    "{NOW_ENV}={raw:?} is not an RFC 3339 time (e.g. 2026-11-25T03:50:00Z): {e}"
                )
            })?;
            Ok(Arc::new(FixedClock::at(at.with_timezone(&Utc))))
        }
        _ => Ok(Arc::new(SystemClock)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_stays_until_moved() {
        let start = DateTime::parse_from_rfc3339("2026-11-25T03:50:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        let clock = FixedClock::at(start);
        assert_eq!(clock.now(), start);
        clock.advance(chrono::Duration::hours(25));
        assert_eq!(clock.now(), start + chrono::Duration::hours(25));
        clock.set(start);
        assert_eq!(clock.now(), start);
    }
}
