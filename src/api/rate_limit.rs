//! The client-side rate limiter: the pipeline's share of a location's GHL budget.
//!
//! GHL allows 100 requests per 10 s and 200,000 a day per app and location, counted in fixed windows
//! on its side. A token bucket (governor's GCRA) keeps the steady rate at `share` × 95 % of the limit
//! with a small burst, so no window of 10 s can see more than the limit whatever its alignment. The
//! `X-RateLimit-*` headers of each answer feed back into it: when the service says the window is
//! spent (other apps share it) or answers 429, every caller waits for the window to pass.

use super::config::GhlRateLimitConfig;
use super::error::ApiError;
use governor::{DefaultDirectRateLimiter, Quota};
use reqwest::header::HeaderMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Limits read from the service's headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedLimits {
    pub max: Option<u64>,
    pub remaining: Option<u64>,
    pub interval_ms: Option<u64>,
    pub daily_limit: Option<u64>,
    pub daily_remaining: Option<u64>,
}

impl ObservedLimits {
    /// Reads the `X-RateLimit-*` headers GHL sends on every answer.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let num = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        ObservedLimits {
            max: num("x-ratelimit-max"),
            remaining: num("x-ratelimit-remaining"),
            interval_ms: num("x-ratelimit-interval-milliseconds"),
            daily_limit: num("x-ratelimit-limit-daily"),
            daily_remaining: num("x-ratelimit-daily-remaining"),
        }
    }
}

/// A shared limiter for one API budget (one GHL location).
#[derive(Debug)]
pub struct RateLimiter {
    bucket: DefaultDirectRateLimiter,
    window: Duration,
    daily_allowance: u64,
    used_today: AtomicU64,
    paused_until: Mutex<Option<Instant>>,
    last_seen: Mutex<ObservedLimits>,
}

impl RateLimiter {
    /// A limiter for the pipeline's share of a GHL location's budget.
    pub fn for_ghl(config: &GhlRateLimitConfig) -> Self {
        let window = Duration::from_millis(config.window_ms);
        let per_window = ((f64::from(config.burst) * config.share * 0.95).floor() as u32).max(1);
        let burst = per_window.clamp(1, 5);
        let period = window / per_window;
        let quota = Quota::with_period(period)
            .expect("period is positive: window_ms and burst are validated positive")
            .allow_burst(NonZeroU32::new(burst).expect("burst is at least 1"));
        RateLimiter {
            bucket: DefaultDirectRateLimiter::direct(quota),
            window,
            daily_allowance: (f64::from(config.daily) * config.share).floor() as u64,
            used_today: AtomicU64::new(0),
            paused_until: Mutex::new(None),
            last_seen: Mutex::new(ObservedLimits::default()),
        }
    }

    /// Waits until a request may be sent; fails when the daily allowance is spent.
    pub async fn acquire(&self, api: &str) -> Result<(), ApiError> {
        let used = self.used_today.fetch_add(1, Ordering::Relaxed);
        if used >= self.daily_allowance {
            return Err(ApiError::BudgetExhausted {
                api: api.to_string(),
                message: format!("this pipeline's share is {} requests", self.daily_allowance),
            });
        }
        loop {
            let pause = *self.paused_until.lock().expect("limiter lock");
            match pause {
                Some(until) if until > Instant::now() => {
                    tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
                }
                _ => break,
            }
        }
        self.bucket.until_ready().await;
        Ok(())
    }

    /// Feeds an answer's headers and status back: a spent window or a 429 pauses every caller.
    pub fn observe(&self, headers: &HeaderMap, status: u16, retry_after: Option<Duration>) {
        let seen = ObservedLimits::from_headers(headers);
        let window = seen
            .interval_ms
            .map(Duration::from_millis)
            .unwrap_or(self.window);
        let pause = if status == 429 {
            Some(retry_after.unwrap_or(window))
        } else if seen.remaining == Some(0) {
            // The service's window is spent (other apps count too): wait it out rather than earn 429s.
            Some(window)
        } else {
            None
        };
        if let Some(pause) = pause {
            let until = Instant::now() + pause;
            let mut slot = self.paused_until.lock().expect("limiter lock");
            if slot.is_none_or(|current| current < until) {
                *slot = Some(until);
            }
            tracing::debug!(
                pause_ms = pause.as_millis() as u64,
                status,
                "Rate limit pause"
            );
        }
        if seen != ObservedLimits::default() {
            *self.last_seen.lock().expect("limiter lock") = seen;
        }
    }

    /// The limits most recently reported by the service.
    pub fn last_seen(&self) -> ObservedLimits {
        self.last_seen.lock().expect("limiter lock").clone()
    }

    /// Requests counted against today's allowance.
    pub fn used(&self) -> u64 {
        self.used_today.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read() {
        let mut h = HeaderMap::new();
        h.insert("X-RateLimit-Remaining", "7".parse().expect("header"));
        h.insert(
            "X-RateLimit-Interval-Milliseconds",
            "10000".parse().expect("header"),
        );
        let seen = ObservedLimits::from_headers(&h);
        assert_eq!(seen.remaining, Some(7));
        assert_eq!(seen.interval_ms, Some(10_000));
        assert_eq!(seen.max, None);
    }

    #[tokio::test]
    async fn daily_allowance_is_enforced() {
        let limiter = RateLimiter::for_ghl(&GhlRateLimitConfig {
            share: 0.5,
            burst: 1000,
            window_ms: 10,
            daily: 4,
        });
        assert!(limiter.acquire("ghl").await.is_ok());
        assert!(limiter.acquire("ghl").await.is_ok());
        let err = limiter.acquire("ghl").await.expect_err("share of 4 is 2");
        assert!(err.to_string().contains("daily request budget"), "{err}");
    }
}
