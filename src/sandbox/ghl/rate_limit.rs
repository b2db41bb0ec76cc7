//! GHL's per-location limits: a fixed burst window and a daily budget, on the simulated clock, with
//! the `X-RateLimit-*` headers on every answer.

use axum::http::{HeaderMap, HeaderValue};

/// Fixed-window counters.
#[derive(Debug)]
pub struct LocationLimiter {
    pub enabled: bool,
    pub burst: u32,
    pub window_ms: i64,
    pub daily: u32,
    window_start_ms: i64,
    in_window: u32,
    day: i64,
    today: u32,
}

/// The outcome of counting one request.
#[derive(Debug, Clone, Copy)]
pub struct LimitDecision {
    pub allowed: bool,
    pub remaining: u32,
    pub daily_remaining: u32,
    /// Milliseconds until the burst window resets.
    pub reset_in_ms: i64,
}

impl LocationLimiter {
    /// A limiter with GHL's shape.
    pub fn new(enabled: bool, burst: u32, window_ms: u64, daily: u32) -> Self {
        LocationLimiter {
            enabled,
            burst,
            window_ms: window_ms.max(1) as i64,
            daily,
            window_start_ms: 0,
            in_window: 0,
            day: -1,
            today: 0,
        }
    }

    /// Counts a request at `now_ms`.
    pub fn check(&mut self, now_ms: i64) -> LimitDecision {
        let window = now_ms - now_ms.rem_euclid(self.window_ms);
        if window != self.window_start_ms {
            self.window_start_ms = window;
            self.in_window = 0;
        }
        let day = now_ms.div_euclid(86_400_000);
        if day != self.day {
            self.day = day;
            self.today = 0;
        }
        let reset_in_ms = self.window_start_ms + self.window_ms - now_ms;
        let allowed = !self.enabled || (self.in_window < self.burst && self.today < self.daily);
        if allowed {
            self.in_window += 1;
            self.today += 1;
        }
        LimitDecision {
            allowed,
            remaining: self.burst.saturating_sub(self.in_window),
            daily_remaining: self.daily.saturating_sub(self.today),
            reset_in_ms,
        }
    }

    /// The `X-RateLimit-*` headers for a decision.
    pub fn headers(&self, d: &LimitDecision) -> HeaderMap {
        let mut h = HeaderMap::new();
        if !self.enabled {
            // With the limit off (`--no-rate-limit`) there is no budget to announce; a remaining
            // count reaching 0 would make well-behaved clients pause for nothing.
            return h;
        }
        let mut put = |name: &'static str, v: u64| {
            h.insert(name, HeaderValue::from(v));
        };
        put("x-ratelimit-limit-daily", u64::from(self.daily));
        put("x-ratelimit-daily-remaining", u64::from(d.daily_remaining));
        put("x-ratelimit-interval-milliseconds", self.window_ms as u64);
        put("x-ratelimit-max", u64::from(self.burst));
        put("x-ratelimit-remaining", u64::from(d.remaining));
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burst_window_and_the_day_are_enforced() {
        let mut l = LocationLimiter::new(true, 3, 10_000, 5);
        let t = 1_000_000_000_000;
        assert!((0..3).all(|i| l.check(t + i).allowed));
        let d = l.check(t + 5);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert!(d.reset_in_ms > 0 && d.reset_in_ms <= 10_000);
        let next = t + 10_000;
        assert!(l.check(next).allowed && l.check(next + 1).allowed);
        assert!(!l.check(next + 2).allowed, "daily budget of 5 spent");
    }
}
