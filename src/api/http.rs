//! [`ApiClient`]: one request path for both APIs — auth header, rate limiter, timeout, retry with
//! backoff, 401 recovery, metrics, and errors that name the endpoint.

use super::auth::Credentials;
use super::error::{ApiError, shorten};
use super::rate_limit::RateLimiter;
use super::retry::{RetryPolicy, is_retryable, next_delay};
use backon::Retryable;
use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One logical request (retries resend it).
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    /// Path relative to the API's base URL, starting with `/`.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<serde_json::Value>,
    /// A form body (`application/x-www-form-urlencoded`), for the OAuth endpoints that take one.
    pub form: Option<Vec<(String, String)>>,
    /// Safe to send twice: reads, PUT/DELETE, and writes that carry an idempotency key.
    pub idempotent: bool,
    /// Where in a larger job this request stands (e.g. "page 3"), for error messages.
    pub label: Option<String>,
}

impl ApiRequest {
    /// A GET (idempotent).
    pub fn get(path: impl Into<String>) -> Self {
        ApiRequest {
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
            form: None,
            idempotent: true,
            label: None,
        }
    }

    /// A request with a form body; `idempotent` says whether a blind resend is safe.
    pub fn with_form(
        method: Method,
        path: impl Into<String>,
        form: &[(&str, &str)],
        idempotent: bool,
    ) -> Self {
        ApiRequest {
            method,
            form: Some(
                form.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            idempotent,
            ..ApiRequest::get(path)
        }
    }

    /// A request with a JSON body; `idempotent` says whether a blind resend is safe.
    pub fn with_body(
        method: Method,
        path: impl Into<String>,
        body: serde_json::Value,
        idempotent: bool,
    ) -> Self {
        ApiRequest {
            method,
            path: path.into(),
            query: Vec::new(),
            body: Some(body),
            form: None,
            idempotent,
            label: None,
        }
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: &str, value: impl ToString) -> Self {
        self.query.push((key.to_string(), value.to_string()));
        self
    }

    /// Sets the label used in error messages.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// "METHOD /path (label)", for errors and logs.
    pub fn endpoint(&self) -> String {
        match &self.label {
            Some(label) => format!("{} {} ({label})", self.method, self.path),
            None => format!("{} {}", self.method, self.path),
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Counters of one client, reported in manifests, `--json` output and metrics.
#[derive(Debug, Default)]
pub struct RequestMetrics {
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    by_status: Mutex<BTreeMap<u16, u64>>,
}

/// A copy of [`RequestMetrics`] for serialising.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct MetricsSnapshot {
    pub requests: u64,
    pub retries: u64,
    pub rate_limited: u64,
    pub by_status: BTreeMap<String, u64>,
}

impl RequestMetrics {
    fn record(&self, status: Option<u16>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(status) = status {
            if status == 429 {
                self.rate_limited.fetch_add(1, Ordering::Relaxed);
            }
            *self
                .by_status
                .lock()
                .expect("metrics lock")
                .entry(status)
                .or_default() += 1;
        }
    }

    /// A consistent copy.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            by_status: self
                .by_status
                .lock()
                .expect("metrics lock")
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        }
    }
}

/// The shared HTTP client of one API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    api: &'static str,
    http: reqwest::Client,
    base_url: String,
    credentials: Credentials,
    limiter: Option<Arc<RateLimiter>>,
    retry: RetryPolicy,
    default_headers: HeaderMap,
    metrics: Arc<RequestMetrics>,
}

/// Builds the reqwest client every API client shares settings with.
pub fn build_http(timeout: Duration) -> Result<reqwest::Client, ApiError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("contactsync/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ApiError::Transport {
            endpoint: "client setup".into(),
            message: e.to_string(),
        })
}

impl ApiClient {
    /// A client for one API. `base_url` has already passed `config::check_base_url`.
    pub fn new(
        api: &'static str,
        http: reqwest::Client,
        base_url: &str,
        credentials: Credentials,
        limiter: Option<Arc<RateLimiter>>,
        retry: RetryPolicy,
        default_headers: &[(&'static str, String)],
    ) -> Result<Self, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert("accept", HeaderValue::from_static("application/json"));
        for (name, value) in default_headers {
            let value = HeaderValue::from_str(value).map_err(|e| ApiError::Transport {
                endpoint: "client setup".into(),
                message: format!("header {name}: {e}"),
            })?;
            headers.insert(HeaderName::from_static(name), value);
        }
        Ok(ApiClient {
            api,
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            credentials,
            limiter,
            retry,
            default_headers: headers,
            metrics: Arc::new(RequestMetrics::default()),
        })
    }

    /// Which API this client talks to ("ghl", "bulksms").
    pub fn api(&self) -> &'static str {
        self.api
    }

    /// The client's counters.
    pub fn metrics(&self) -> &Arc<RequestMetrics> {
        &self.metrics
    }

    /// The credentials (for scope checks).
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The shared limiter, if this API has one.
    pub fn limiter(&self) -> Option<&Arc<RateLimiter>> {
        self.limiter.as_ref()
    }

    /// Sends with retries and deserialises the JSON answer.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        request: &ApiRequest,
    ) -> Result<T, ApiError> {
        self.send_decoded(request, |resp| {
            serde_json::from_slice::<T>(&resp.body).map_err(|e| e.to_string())
        })
        .await
    }

    /// Sends with retries; `decode` runs inside the retry loop, so a truncated or malformed answer
    /// to an idempotent request is fetched again instead of failing the run.
    pub async fn send_decoded<T>(
        &self,
        request: &ApiRequest,
        decode: impl Fn(&ApiResponse) -> Result<T, String>,
    ) -> Result<T, ApiError> {
        let decode = &decode;
        let operation = || async move {
            let response = self.attempt(request).await?;
            decode(&response).map_err(|message| ApiError::Decode {
                endpoint: request.endpoint(),
                message: format!(
                    "{message}; body starts {:?}",
                    shorten(&String::from_utf8_lossy(&response.body), 120)
                ),
            })
        };
        operation
            .retry(self.retry.backoff())
            .when(|e| is_retryable(e, request.idempotent))
            .adjust(next_delay)
            .notify(|e, delay| {
                self.metrics.retries.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(api = self.api, error = %e, delay_ms = delay.as_millis() as u64, "Retrying");
            })
            .await
    }

    /// One attempt: wait for the limiter, send, and on a 401 refresh credentials once.
    async fn attempt(&self, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let mut refreshed = false;
        let mut rate_limited = super::retry::RateLimitedWaits::default();
        loop {
            if let Some(limiter) = &self.limiter {
                limiter.acquire(self.api).await?;
            }
            let auth = self.credentials.header_value().await?;
            let url = format!("{}{}", self.base_url, request.path);
            let mut builder = self
                .http
                .request(request.method.clone(), &url)
                .headers(self.default_headers.clone())
                .header("authorization", auth.expose());
            if !request.query.is_empty() {
                builder = builder.query(&request.query);
            }
            if let Some(body) = &request.body {
                builder = builder.json(body);
            }
            if let Some(form) = &request.form {
                builder = builder.form(form);
            }
            let sent = builder.send().await;
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    self.metrics.record(None);
                    return Err(ApiError::Transport {
                        endpoint: request.endpoint(),
                        message: transport_message(&e),
                    });
                }
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let retry_after_secs = headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            self.metrics.record(Some(status));
            if let Some(limiter) = &self.limiter {
                limiter.observe(&headers, status, retry_after_secs.map(Duration::from_secs));
            }
            let body = response.bytes().await.map_err(|e| ApiError::Transport {
                endpoint: request.endpoint(),
                message: format!("reading the answer: {}", transport_message(&e)),
            })?;
            if (200..300).contains(&status) {
                return Ok(ApiResponse {
                    status,
                    headers,
                    body,
                });
            }
            if status == 429
                && let Some(delay) = rate_limited.wait_after(retry_after_secs)
            {
                self.metrics.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(delay).await;
                continue;
            }
            if status == 401 && !refreshed && self.credentials.recover_from_401(&auth).await? {
                refreshed = true;
                continue;
            }
            return Err(ApiError::Status {
                endpoint: request.endpoint(),
                status,
                body: shorten(&String::from_utf8_lossy(&body), 400),
                retry_after_secs,
            });
        }
    }
}

fn transport_message(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// A server answering 429 (`Retry-After: 0`) to the first `limited` requests, then 200.
    async fn limited_server(limited: u32) -> (String, Arc<AtomicU32>) {
        let seen = Arc::new(AtomicU32::new(0));
        let counter = seen.clone();
        let app = axum::Router::new().route(
            "/x",
            axum::routing::get(move || {
                let counter = counter.clone();
                async move {
                    if counter.fetch_add(1, Ordering::SeqCst) < limited {
                        (
                            axum::http::StatusCode::TOO_MANY_REQUESTS,
                            [("retry-after", "0")],
                            "{}",
                        )
                    } else {
                        (
                            axum::http::StatusCode::OK,
                            [("retry-after", "0")],
                            "{\"ok\":true}",
                        )
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    fn client(url: &str, max_attempts: usize) -> ApiClient {
        ApiClient::new(
            "test",
            build_http(Duration::from_secs(5)).expect("http"),
            url,
            Credentials::Bearer(crate::secret::Secret::new("t")),
            None,
            RetryPolicy {
                max_attempts,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(2),
            },
            &[],
        )
        .expect("client")
    }

    #[tokio::test]
    async fn a_burst_of_429s_is_waited_out_without_spending_the_retry_attempts() {
        let (url, seen) = limited_server(super::super::retry::RATE_LIMITED_WAITS).await;
        let answer: serde_json::Value = client(&url, 2)
            .send_json(&ApiRequest::get("/x"))
            .await
            .expect("the burst is waited out");
        assert_eq!(answer["ok"], true);
        assert_eq!(
            seen.load(Ordering::SeqCst),
            super::super::retry::RATE_LIMITED_WAITS + 1
        );
    }

    #[tokio::test]
    async fn endless_429s_still_end_in_an_error_naming_the_status() {
        let (url, seen) = limited_server(u32::MAX).await;
        let error = client(&url, 2)
            .send_json::<serde_json::Value>(&ApiRequest::get("/x"))
            .await
            .expect_err("never answered");
        assert!(error.to_string().contains("429"), "{error}");
        // Each of the policy's two attempts waited out its own budget of 429s first.
        assert_eq!(
            seen.load(Ordering::SeqCst),
            2 * (super::super::retry::RATE_LIMITED_WAITS + 1)
        );
    }
}
