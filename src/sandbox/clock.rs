//! Simulated time: wall time plus an offset that tests and users advance through a control route.
//!
//! Everything in the sandbox that depends on time (token expiry, message status progression, rate-limit
//! windows, the deduplication-id replay window) reads this clock, so a test can move a day forward in
//! a millisecond instead of sleeping.

use chrono::{DateTime, Duration, Utc};
use std::sync::atomic::{AtomicI64, Ordering};

/// The sandbox's clock.
#[derive(Debug, Default)]
pub struct SimClock {
    offset_ms: AtomicI64,
}

impl SimClock {
    /// A clock that reads wall time.
    pub fn new() -> Self {
        SimClock::default()
    }

    /// The current simulated instant.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves simulated time forward by `by` (never backward: a negative value is ignored).
    pub fn advance(&self, by: Duration) {
        let ms = by.num_milliseconds().max(0);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// How far simulated time is ahead of wall time.
    pub fn offset(&self) -> Duration {
        Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }
}

/// The pipeline's clock trait, so a pipeline run in-process (the demo, tests) can share the
/// sandbox's simulated time.
impl crate::clock::Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        SimClock::now(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_forward_and_ignores_negative() {
        let clock = SimClock::new();
        let before = clock.now();
        clock.advance(Duration::hours(25));
        clock.advance(Duration::hours(-5));
        let gained = clock.now() - before;
        assert!(gained >= Duration::hours(25) && gained < Duration::hours(26));
    }
}
