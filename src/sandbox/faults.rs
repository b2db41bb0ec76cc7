//! Fault injection: what goes wrong on a real network and a real API, on demand and reproducibly.
//!
//! Faults are decided per request by a seeded RNG. Some strike before the handler runs (the request
//! never took effect), others after it (the write happened but its answer was lost), because the
//! second kind is what tests a client's exactly-once guarantees.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Probabilities (0..=1) of each fault per request, and the token-revocation period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultProfile {
    /// 500/502/503 before the handler runs.
    pub server_error: f64,
    /// The handler runs (a write takes effect) but the client gets a 502: the answer is lost.
    pub lost_response: f64,
    /// A burst of 429 with `Retry-After`; the burst lasts `rate_limit_burst_len` requests.
    pub rate_limit_burst: f64,
    /// Requests answered 429 in a row once a burst starts.
    pub rate_limit_burst_len: u32,
    /// Seconds sent in `Retry-After` with an injected 429.
    pub retry_after_secs: u64,
    /// The connection drops mid-response.
    pub connection_reset: f64,
    /// The answer is delayed by `slow_ms`.
    pub slow: f64,
    /// Delay of a slow answer in milliseconds.
    pub slow_ms: u64,
    /// A 200 answer whose JSON body is cut short.
    pub truncated_body: f64,
    /// A 200 answer whose body is not JSON at all (an HTML error page from a proxy).
    pub malformed_body: f64,
    /// Revoke every GHL access token after this many GHL requests (0 = never).
    pub revoke_token_every: u64,
    /// A webhook event is never sent.
    pub webhook_drop: f64,
    /// A webhook event is sent twice.
    pub webhook_duplicate: f64,
    /// A webhook event is held back so later ones overtake it.
    pub webhook_reorder: f64,
    /// A webhook event is sent `webhook_delay_ms` late.
    pub webhook_delay: f64,
    /// Delay of a delayed or reordered webhook event in milliseconds.
    pub webhook_delay_ms: u64,
    /// When not empty, request faults strike only requests whose path contains one of these
    /// (e.g. one contact's `/tasks`), to rehearse an endpoint that fails while the rest work.
    pub only_paths: Vec<String>,
}

impl FaultProfile {
    /// A named profile (`none`, `flaky`, `hostile`) or a TOML file holding a profile.
    pub fn from_arg(arg: &str) -> Result<Self, String> {
        match arg {
            "none" => Ok(FaultProfile::default()),
            "flaky" => Ok(FaultProfile {
                server_error: 0.02,
                lost_response: 0.01,
                rate_limit_burst: 0.005,
                rate_limit_burst_len: 3,
                retry_after_secs: 1,
                connection_reset: 0.01,
                slow: 0.02,
                slow_ms: 300,
                truncated_body: 0.005,
                malformed_body: 0.005,
                revoke_token_every: 0,
                ..FaultProfile::default()
            }),
            "hostile" => Ok(FaultProfile {
                server_error: 0.08,
                lost_response: 0.05,
                rate_limit_burst: 0.02,
                rate_limit_burst_len: 4,
                retry_after_secs: 1,
                connection_reset: 0.04,
                slow: 0.05,
                slow_ms: 800,
                truncated_body: 0.03,
                malformed_body: 0.03,
                revoke_token_every: 150,
                webhook_drop: 0.05,
                webhook_duplicate: 0.05,
                webhook_reorder: 0.05,
                webhook_delay: 0.05,
                webhook_delay_ms: 800,
                only_paths: Vec::new(),
            }),
            path => {
                let text = std::fs::read_to_string(Path::new(path)).map_err(|e| {
                    format!(
                        "--faults {path:?} is neither none|flaky|hostile nor a readable file: {e}"
                    )
                })?;
                toml::from_str(&text).map_err(|e| format!("fault profile {path}: {e}"))
            }
        }
    }
}

/// What to do to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Serve normally.
    None,
    /// Answer this status without running the handler.
    ServerError(StatusCode),
    /// Answer 429 with `Retry-After` without running the handler.
    RateLimited,
    /// Run the handler, then answer 502 instead of its response.
    LoseResponse,
    /// Run the handler, then drop the connection mid-body.
    ResetConnection,
    /// Run the handler, then cut its body short.
    TruncateBody,
    /// Run the handler, then replace its body with an HTML page.
    MalformBody,
}

/// Decides faults for each request, reproducibly for a given seed.
#[derive(Debug)]
pub struct FaultInjector {
    profile: Mutex<FaultProfile>,
    rng: Mutex<ChaCha8Rng>,
    burst_left: AtomicU64,
    ghl_requests: AtomicU64,
}

impl FaultInjector {
    /// An injector with a profile and seed.
    pub fn new(profile: FaultProfile, seed: u64) -> Self {
        FaultInjector {
            profile: Mutex::new(profile),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0xFA017)),
            burst_left: AtomicU64::new(0),
            ghl_requests: AtomicU64::new(0),
        }
    }

    /// Replaces the profile at run time (`POST /_sandbox/faults`).
    pub fn set_profile(&self, profile: FaultProfile) {
        *self.profile.lock().expect("fault profile lock") = profile;
        self.burst_left.store(0, Ordering::Relaxed);
    }

    /// Whether request faults may strike a request to `path` (see [`FaultProfile::only_paths`]).
    pub fn applies_to(&self, path: &str) -> bool {
        let profile = self.profile.lock().expect("fault profile lock");
        profile.only_paths.is_empty()
            || profile.only_paths.iter().any(|p| path.contains(p.as_str()))
    }

    /// The profile in force.
    pub fn profile(&self) -> FaultProfile {
        self.profile.lock().expect("fault profile lock").clone()
    }

    /// Extra latency for this request, if it is to be slow.
    pub fn delay(&self) -> Option<Duration> {
        let p = self.profile();
        let mut rng = self.rng.lock().expect("fault rng lock");
        (p.slow > 0.0 && rng.random_bool(p.slow.min(1.0))).then(|| Duration::from_millis(p.slow_ms))
    }

    /// The fault, if any, for this request.
    pub fn decide(&self) -> FaultAction {
        let p = self.profile();
        if self
            .burst_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            return FaultAction::RateLimited;
        }
        let mut rng = self.rng.lock().expect("fault rng lock");
        let mut roll = |prob: f64| prob > 0.0 && rng.random_bool(prob.min(1.0));
        if roll(p.rate_limit_burst) {
            let len = u64::from(p.rate_limit_burst_len.max(1));
            self.burst_left.store(len - 1, Ordering::Relaxed);
            return FaultAction::RateLimited;
        }
        if roll(p.server_error) {
            let status = [
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::BAD_GATEWAY,
                StatusCode::SERVICE_UNAVAILABLE,
            ][rng.random_range(0..3)];
            return FaultAction::ServerError(status);
        }
        let mut roll = |prob: f64| prob > 0.0 && rng.random_bool(prob.min(1.0));
        if roll(p.lost_response) {
            return FaultAction::LoseResponse;
        }
        if roll(p.connection_reset) {
            return FaultAction::ResetConnection;
        }
        if roll(p.truncated_body) {
            return FaultAction::TruncateBody;
        }
        if roll(p.malformed_body) {
            return FaultAction::MalformBody;
        }
        FaultAction::None
    }

    /// Counts a GHL request; true when access tokens are to be revoked now.
    pub fn tick_ghl_revocation(&self) -> bool {
        let every = self.profile().revoke_token_every;
        let n = self.ghl_requests.fetch_add(1, Ordering::Relaxed) + 1;
        every > 0 && n.is_multiple_of(every)
    }

    /// `Retry-After` seconds for injected 429s.
    pub fn retry_after_secs(&self) -> u64 {
        self.profile().retry_after_secs.max(1)
    }
}

/// Builds the response a fault stands for, given the handler's response where the fault needs it.
pub async fn apply_after(action: FaultAction, response: Response) -> Response {
    match action {
        FaultAction::LoseResponse => (
            StatusCode::BAD_GATEWAY,
            "<html><body>502 Bad Gateway</body></html>",
        )
            .into_response(),
        FaultAction::ResetConnection => {
            let (parts, _) = response.into_parts();
            let stream = futures_util::stream::once(async {
                Err::<bytes::Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "sandbox fault: connection reset",
                ))
            });
            Response::from_parts(parts, Body::from_stream(stream))
        }
        FaultAction::TruncateBody => {
            let (mut parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let cut = bytes.slice(..bytes.len() / 2);
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.status = StatusCode::OK;
            Response::from_parts(parts, Body::from(cut))
        }
        FaultAction::MalformBody => {
            let mut resp = (
                StatusCode::OK,
                "<!DOCTYPE html><html><body>upstream error</body></html>",
            )
                .into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        _ => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_profiles_parse_and_unknown_names_explain_themselves() {
        assert_eq!(
            FaultProfile::from_arg("none").expect("none"),
            FaultProfile::default()
        );
        assert!(
            FaultProfile::from_arg("hostile")
                .expect("hostile")
                .server_error
                > 0.0
        );
        let err = FaultProfile::from_arg("/no/such/profile.toml").expect_err("missing file");
        assert!(err.contains("none|flaky|hostile"), "{err}");
    }

    #[test]
    fn same_seed_gives_same_fault_sequence() {
        let profile = FaultProfile::from_arg("hostile").expect("hostile");
        let a = FaultInjector::new(profile.clone(), 7);
        let b = FaultInjector::new(profile, 7);
        let seq_a: Vec<_> = (0..200).map(|_| a.decide()).collect();
        let seq_b: Vec<_> = (0..200).map(|_| b.decide()).collect();
        assert_eq!(seq_a, seq_b);
        assert!(seq_a.iter().any(|f| *f != FaultAction::None));
    }

    #[test]
    fn a_burst_answers_429_for_its_whole_length() {
        let profile = FaultProfile {
            rate_limit_burst: 1.0,
            rate_limit_burst_len: 3,
            ..FaultProfile::default()
        };
        let inj = FaultInjector::new(profile, 1);
        let first = inj.decide();
        inj.set_profile(FaultProfile::default());
        assert_eq!(first, FaultAction::RateLimited);
        assert_eq!(
            inj.decide(),
            FaultAction::None,
            "set_profile clears a burst"
        );
    }
}
