//! The one retry policy: which failures are retried, and how long to wait.
//!
//! 408, 429, 5xx, connection errors and unreadable answers are retried; other 4xx are not. A request
//! that is not idempotent is retried only when the service certainly did not act on it (429). Delays
//! grow exponentially with full jitter (a uniform draw between zero and the exponential delay), and a
//! `Retry-After` from the service wins over the computed delay. A 429 is first waited out inside the
//! attempt, up to [`RATE_LIMITED_WAITS`] times, without spending one of the policy's attempts.

use super::config::HttpConfig;
use super::error::ApiError;
use backon::ExponentialBuilder;
use rand::RngExt;
use std::time::Duration;

/// Backoff settings of the shared HTTP layer.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts including the first.
    pub max_attempts: usize,
    /// First delay before jitter.
    pub base_delay: Duration,
    /// Largest delay before jitter.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The policy the pipeline file asks for.
    pub fn from_config(config: &HttpConfig) -> Self {
        RetryPolicy {
            max_attempts: config.max_attempts,
            base_delay: Duration::from_millis(config.backoff_base_ms),
            max_delay: Duration::from_millis(config.backoff_max_ms),
        }
    }

    /// The exponential schedule (backon), before full jitter is applied by [`full_jitter`].
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.max_attempts.saturating_sub(1))
    }
}

/// 429s one request waits out inside an attempt, beyond the policy's `max_attempts`: a 429 asks
/// the client to wait, the service did not fail. Counted against the attempts, a burst of them
/// (GHL's and BulkSMS's limits, a neighbour's traffic) beside a few 5xx failed whole runs.
pub const RATE_LIMITED_WAITS: u32 = 10;

/// How long to wait after a 429: its `Retry-After`, else a second; never over two minutes.
fn rate_limited_wait(retry_after_secs: Option<u64>) -> Duration {
    Duration::from_secs(retry_after_secs.unwrap_or(1).min(120))
}

/// The 429s one attempt has waited out. Both ways a request reaches a service (the HTTP layer and
/// the OAuth token exchange) count them here, so they give up after the same number.
#[derive(Debug, Default)]
pub struct RateLimitedWaits {
    waited: u32,
}

impl RateLimitedWaits {
    /// The wait before asking again after a 429 with this `Retry-After`, or `None` once the
    /// attempt has waited out [`RATE_LIMITED_WAITS`] (the 429 is then the attempt's outcome).
    pub fn wait_after(&mut self, retry_after_secs: Option<u64>) -> Option<Duration> {
        if self.waited >= RATE_LIMITED_WAITS {
            return None;
        }
        self.waited += 1;
        Some(rate_limited_wait(retry_after_secs))
    }
}

/// Whether a failed attempt may be tried again.
pub fn is_retryable(error: &ApiError, idempotent: bool) -> bool {
    match error {
        ApiError::Status { status, .. } => match *status {
            429 => true,
            408 | 500..=599 => idempotent,
            _ => false,
        },
        ApiError::Transport { .. } | ApiError::Decode { .. } => idempotent,
        ApiError::Auth { .. } | ApiError::BudgetExhausted { .. } => false,
    }
}

/// The delay before the next attempt: `Retry-After` when the service sent one, else a uniform draw
/// in `[0, computed]` (full jitter spreads retries of many clients instead of synchronising them).
pub fn next_delay(error: &ApiError, computed: Option<Duration>) -> Option<Duration> {
    let computed = computed?;
    if let ApiError::Status {
        retry_after_secs: Some(secs),
        ..
    } = error
    {
        return Some(Duration::from_secs(*secs));
    }
    Some(full_jitter(computed))
}

/// A uniform draw between zero and `max`.
pub fn full_jitter(max: Duration) -> Duration {
    let millis = max.as_millis().min(u128::from(u64::MAX)) as u64;
    if millis == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, retry_after: Option<u64>) -> ApiError {
        ApiError::Status {
            endpoint: "GET /x".into(),
            status: code,
            body: String::new(),
            retry_after_secs: retry_after,
        }
    }

    // The test below spends three waits before counting the rest.
    const _: () = assert!(RATE_LIMITED_WAITS >= 3);

    #[test]
    fn an_attempt_waits_out_a_bounded_number_of_429s_by_retry_after() {
        let mut rate_limited = RateLimitedWaits::default();
        assert_eq!(
            rate_limited.wait_after(Some(7)),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            rate_limited.wait_after(None),
            Some(Duration::from_secs(1)),
            "no Retry-After: a second"
        );
        assert_eq!(
            rate_limited.wait_after(Some(3_600)),
            Some(Duration::from_secs(120)),
            "never over two minutes"
        );
        for _ in 3..RATE_LIMITED_WAITS {
            assert!(rate_limited.wait_after(Some(1)).is_some());
        }
        assert_eq!(
            rate_limited.wait_after(Some(1)),
            None,
            "the next 429 is the attempt's outcome"
        );
        assert_eq!(
            RateLimitedWaits::default().wait_after(Some(2)),
            Some(Duration::from_secs(2)),
            "each attempt counts its own"
        );
    }

    #[test]
    fn classification_follows_the_policy() {
        assert!(
            is_retryable(&status(429, None), false),
            "429: never acted on"
        );
        assert!(is_retryable(&status(503, None), true));
        assert!(
            !is_retryable(&status(503, None), false),
            "unsafe write not retried"
        );
        assert!(!is_retryable(&status(400, None), true));
        assert!(!is_retryable(&status(401, None), true));
        assert!(is_retryable(&status(408, None), true));
        let decode = ApiError::Decode {
            endpoint: "x".into(),
            message: "eof".into(),
        };
        assert!(is_retryable(&decode, true));
        assert!(!is_retryable(&decode, false));
    }

    #[test]
    fn retry_after_wins_and_jitter_stays_below_the_computed_delay() {
        let d = next_delay(&status(429, Some(7)), Some(Duration::from_millis(100)));
        assert_eq!(d, Some(Duration::from_secs(7)));
        for _ in 0..100 {
            let d =
                next_delay(&status(503, None), Some(Duration::from_millis(400))).expect("a delay");
            assert!(d <= Duration::from_millis(400));
        }
        assert_eq!(
            next_delay(&status(503, None), None),
            None,
            "no attempts left"
        );
    }
}
