//! Credentials for both APIs: GHL OAuth 2.0 (with a token store that survives restarts), GHL private
//! integration tokens, and BulkSMS Basic auth.
//! Over 600 lines because its tests (a quarter of it) drive the token flow against a loopback
//! endpoint, and they stay beside the code they check.
//!
//! The OAuth exchange and refresh go through the `oauth2` crate. GHL rotates refresh tokens (a used
//! one stops working), so a refreshed pair is stored (on disk with mode 0600, atomically, or in the
//! shared database: [`super::grant_store::GrantStore`]) before the new access token is handed to any caller: a crash
//! right after a refresh never strands the pipeline with only a spent refresh token.

use super::error::ApiError;
use super::grant_store::GrantStore;
pub(crate) use super::grant_store::auth_error;
pub use super::grant_store::{StoredTokens, read_token_store, write_token_store};
use super::retry::RetryPolicy;
use crate::clock::Clock;
use crate::secret::Secret;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use oauth2::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet, RefreshToken,
    TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::Mutex;

/// Scope of every read the pipeline makes: `/contacts/search`, `GET /contacts/{id}`, the duplicate
/// search, contacts of a business, and a contact's tasks, notes and appointments (all under
/// `contacts.readonly` in HighLevel's scope table, docs/Scopes.md).
pub const GHL_READ_SCOPE: &str = "contacts.readonly";
/// Scope of every write the pipeline makes: creates, updates, upserts, deletes, and a contact's
/// tags, notes and tasks (`contacts.write` in docs/Scopes.md).
pub const GHL_WRITE_SCOPE: &str = "contacts.write";

/// A boxed, sendable future of an API result.
pub type BoxedFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, ApiError>> + Send + 'a>>;

/// Tokens a source mints for itself (a location's token minted from an agency grant,
/// `api::agency::LocationTokenSource`). A trait, so this module, which the HTTP layer reads,
/// does not depend on the agency code, which calls the HTTP layer.
pub trait MintedTokenSource: Send + Sync + std::fmt::Debug {
    /// A valid access token.
    fn access_token(&self) -> BoxedFuture<'_, Secret>;
    /// After a 401: a new token unless another task already replaced `rejected`.
    fn remint_if_current<'a>(&'a self, rejected: &'a str) -> BoxedFuture<'a, ()>;
}

/// How requests to one API are authenticated.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A static bearer token (GHL private integration token).
    Bearer(Secret),
    /// GHL OAuth tokens that refresh themselves.
    GhlOauth(Arc<GhlTokenManager>),
    /// A location's token minted from an agency grant, minted again when it expires.
    GhlAgencyLocation(Arc<dyn MintedTokenSource>),
    /// HTTP Basic, sent pre-emptively (BulkSMS token id and secret).
    Basic { user: Secret, password: Secret },
}

impl Credentials {
    /// The `Authorization` header value for the next request.
    pub async fn header_value(&self) -> Result<Secret, ApiError> {
        match self {
            Credentials::Bearer(token) => Ok(Secret::new(format!("Bearer {}", token.expose()))),
            Credentials::GhlOauth(manager) => {
                let token = manager.access_token().await?;
                Ok(Secret::new(format!("Bearer {}", token.expose())))
            }
            Credentials::GhlAgencyLocation(source) => {
                let token = source.access_token().await?;
                Ok(Secret::new(format!("Bearer {}", token.expose())))
            }
            Credentials::Basic { user, password } => {
                let raw = format!("{}:{}", user.expose(), password.expose());
                let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
                Ok(Secret::new(format!("Basic {encoded}")))
            }
        }
    }

    /// After a 401: refresh once if these credentials can; true when a retry is worth it.
    pub async fn recover_from_401(&self, rejected: &Secret) -> Result<bool, ApiError> {
        match self {
            Credentials::GhlOauth(manager) => {
                let rejected_token = rejected.expose().trim_start_matches("Bearer ");
                manager.refresh_if_current(rejected_token).await?;
                Ok(true)
            }
            Credentials::GhlAgencyLocation(source) => {
                let rejected_token = rejected.expose().trim_start_matches("Bearer ");
                source.remint_if_current(rejected_token).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// What GHL's token answer adds to OAuth's fields (spec/oauth.json,
/// GetAccessCodeSuccessfulResponseDto).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GhlTokenFields {
    #[serde(rename = "userType", default)]
    pub user_type: Option<String>,
    #[serde(rename = "companyId", default)]
    pub company_id: Option<String>,
    #[serde(rename = "locationId", default)]
    pub location_id: Option<String>,
}

impl oauth2::ExtraTokenFields for GhlTokenFields {}

type GhlTokenResponse =
    oauth2::StandardTokenResponse<GhlTokenFields, oauth2::basic::BasicTokenType>;

type GhlOauthBase = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    GhlTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
>;

type GhlOauthClient = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    GhlTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Which kind of GHL grant a token manager holds (`user_type` of every token request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GhlUserType {
    /// A location (sub-account) grant: today's single-location app.
    Location,
    /// An agency grant, which mints location tokens.
    Company,
}

impl GhlUserType {
    fn as_str(self) -> &'static str {
        match self {
            GhlUserType::Location => "Location",
            GhlUserType::Company => "Company",
        }
    }
}

/// Holds GHL OAuth tokens, refreshes them ahead of expiry and persists every rotation.
#[derive(Debug)]
pub struct GhlTokenManager {
    oauth: GhlOauthClient,
    http: reqwest::Client,
    retry: RetryPolicy,
    store: GrantStore,
    user_type: GhlUserType,
    tokens: Mutex<Option<StoredTokens>>,
    /// What token expiry is compared with.
    clock: Arc<dyn Clock>,
}

/// Whether `tokens` can still be used at `now`: not within five minutes (or a tenth of their
/// lifetime, for short-lived tokens) of their expiry.
pub(crate) fn still_fresh(tokens: &StoredTokens, now: DateTime<Utc>) -> bool {
    let margin = Duration::minutes(5).min((tokens.expires_at - tokens.obtained_at) / 10);
    tokens.expires_at - margin > now
}

impl GhlTokenManager {
    /// A manager for an app, keeping its tokens in `store` (a file path, or a [`GrantStore`]).
    /// Token requests are retried with the shared `retry` policy while the endpoint answers a
    /// transient error; expiry is judged by `clock`.
    pub fn new(
        base_url: &str,
        client_id: &str,
        client_secret: &Secret,
        store: impl Into<GrantStore>,
        timeout: std::time::Duration,
        retry: RetryPolicy,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ApiError> {
        // Never follows redirects: the request body carries the client secret and a code or
        // refresh token, and a redirect would hand them to wherever it points.
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("contactsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| auth_error(format!("building the token client: {e}")))?;
        let token_url = TokenUrl::new(format!("{}/oauth/token", base_url.trim_end_matches('/')))
            .map_err(|e| auth_error(format!("bad token URL: {e}")))?;
        let oauth = GhlOauthBase::new(ClientId::new(client_id.to_string()))
            .set_client_secret(ClientSecret::new(client_secret.expose().to_string()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(token_url);
        Ok(GhlTokenManager {
            oauth,
            http,
            retry,
            store: store.into(),
            user_type: GhlUserType::Location,
            tokens: Mutex::new(None),
            clock,
        })
    }

    /// The same manager asking for (and refreshing) a Company grant.
    pub fn for_company(mut self) -> Self {
        self.user_type = GhlUserType::Company;
        self
    }

    /// Which grant this manager holds.
    pub fn user_type(&self) -> GhlUserType {
        self.user_type
    }

    /// Where the tokens are kept.
    pub fn store(&self) -> &GrantStore {
        &self.store
    }

    /// Exchanges an authorization code for tokens and stores them.
    pub async fn exchange_code(&self, code: &Secret) -> Result<StoredTokens, ApiError> {
        self.exchange_code_for(code, None).await
    }

    /// Exchanges a code obtained through the authorization page opened with `redirect_uri`, which
    /// the token request repeats (RFC 6749 §4.1.3), and stores the tokens.
    pub async fn exchange_code_for(
        &self,
        code: &Secret,
        redirect_uri: Option<&str>,
    ) -> Result<StoredTokens, ApiError> {
        let response = self
            .token_request("exchanging the authorization code", || {
                let http = self.http.clone();
                async move {
                    let mut request = self
                        .oauth
                        .exchange_code(AuthorizationCode::new(code.expose().to_string()))
                        .add_extra_param("user_type", self.user_type.as_str());
                    if let Some(uri) = redirect_uri {
                        request = request.add_extra_param("redirect_uri", uri.to_string());
                    }
                    request
                        .request_async(&move |req| oauth_http(http.clone(), req))
                        .await
                }
            })
            .await?;
        let granted = response.extra_fields().user_type.as_deref();
        if self.user_type == GhlUserType::Company && granted.is_some_and(|t| t != "Company") {
            return Err(auth_error(format!(
                "ghl.auth.kind is agency_oauth but GHL granted a {} token: the code was approved for one location; approve the app as the agency (Company) and run `contactsync auth ghl` again",
                granted.unwrap_or_default()
            )));
        }
        let tokens = stored_from(&response, None, self.clock.now())?;
        self.store.write(&tokens).await?;
        *self.tokens.lock().await = Some(tokens.clone());
        Ok(tokens)
    }

    /// The stored tokens, loading them from disk on first use.
    pub async fn tokens(&self) -> Result<StoredTokens, ApiError> {
        let mut slot = self.tokens.lock().await;
        if slot.is_none() {
            *slot = Some(self.store.read().await?);
        }
        Ok(slot.clone().expect("just filled"))
    }

    /// A valid access token, refreshed first when it expires within five minutes.
    pub async fn access_token(&self) -> Result<Secret, ApiError> {
        let mut slot = self.tokens.lock().await;
        if slot.is_none() {
            *slot = Some(self.store.read().await?);
        }
        let current = slot.clone().expect("just filled");
        if still_fresh(&current, self.clock.now()) {
            return Ok(current.access_token);
        }
        let refreshed = self.refresh_locked(&current).await?;
        let token = refreshed.access_token.clone();
        *slot = Some(refreshed);
        Ok(token)
    }

    /// Refreshes unless another task already replaced the token that was rejected.
    pub async fn refresh_if_current(&self, rejected: &str) -> Result<(), ApiError> {
        let mut slot = self.tokens.lock().await;
        if slot.is_none() {
            *slot = Some(self.store.read().await?);
        }
        let current = slot.clone().expect("just filled");
        if current.access_token.expose() != rejected {
            return Ok(());
        }
        tracing::info!("GHL access token rejected; refreshing");
        *slot = Some(self.refresh_locked(&current).await?);
        Ok(())
    }

    async fn refresh_locked(&self, current: &StoredTokens) -> Result<StoredTokens, ApiError> {
        // Other processes may hold the same grant (shards of an agency: on one machine through
        // its token file, on several through the database): one refreshes at a time, and a grant
        // another rotated meanwhile is used instead of spending a refresh token that no longer
        // works. A rotated grant that is itself due is refreshed with its own refresh token.
        let lock = self.store.lock().await?;
        let latest = lock.read().await?;
        let current = match &latest {
            Some(latest) if latest.access_token.expose() != current.access_token.expose() => {
                if still_fresh(latest, self.clock.now()) {
                    tracing::info!("GHL tokens were refreshed by another process; using those");
                    return Ok(latest.clone());
                }
                latest
            }
            _ => current,
        };
        // A rotated refresh token is spent only when the service answered, and then we have its
        // successor: transient failures before that are safe to retry.
        let response = self
            .token_request("refreshing tokens", || {
                let http = self.http.clone();
                async move {
                    self.oauth
                        .exchange_refresh_token(&RefreshToken::new(
                            current.refresh_token.expose().to_string(),
                        ))
                        .add_extra_param("user_type", self.user_type.as_str())
                        .request_async(&move |req| oauth_http(http.clone(), req))
                        .await
                }
            })
            .await?;
        let tokens = stored_from(&response, Some(current), self.clock.now())?;
        lock.write(&tokens).await?;
        tracing::info!(expires_at = %tokens.expires_at, "GHL tokens refreshed and stored");
        Ok(tokens)
    }

    /// Sends a token request, retrying under the shared policy while the endpoint answers 408,
    /// 429 or 5xx or the connection fails; a refusal (an OAuth error body) is final. Errors say
    /// what the endpoint answered: status and an excerpt of the body (never the request's secrets).
    async fn token_request<F, Fut>(
        &self,
        what: &str,
        attempt: F,
    ) -> Result<GhlTokenResponse, ApiError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<GhlTokenResponse, TokenError>>,
    {
        use backon::Retryable;
        // Classified and timed by the shared policy, the way api/http.rs retries, as an idempotent
        // request: a refresh that failed in transit may be tried again (the hint below covers a
        // spent refresh token). Only transport failures and non-OAuth statuses can be retried.
        let as_api_error = |error: &TokenError| match error {
            oauth2::RequestTokenError::Request(TokenHttpError::Status {
                status,
                retry_after_secs,
                ..
            }) => Some(ApiError::Status {
                endpoint: what.to_string(),
                status: *status,
                body: String::new(),
                retry_after_secs: *retry_after_secs,
            }),
            oauth2::RequestTokenError::Request(TokenHttpError::Transport(_)) => {
                Some(ApiError::Transport {
                    endpoint: what.to_string(),
                    message: describe_token_error(error),
                })
            }
            _ => None,
        };
        // A 429 asks the client to wait; the service did not fail. As in api/http.rs, a burst of
        // them is waited out inside one attempt (up to RATE_LIMITED_WAITS, by Retry-After), so it
        // does not spend the policy's attempts and fail the whole run.
        let waiting_out_429s = || async {
            let mut rate_limited = super::retry::RateLimitedWaits::default();
            loop {
                let outcome = attempt().await;
                let delay = match &outcome {
                    Err(oauth2::RequestTokenError::Request(TokenHttpError::Status {
                        status: 429,
                        retry_after_secs,
                        ..
                    })) => rate_limited.wait_after(*retry_after_secs),
                    _ => None,
                };
                let Some(delay) = delay else {
                    return outcome;
                };
                tracing::warn!(what, ?delay, "GHL token endpoint answered 429; waiting");
                tokio::time::sleep(delay).await;
            }
        };
        let failures = std::sync::Mutex::new(Vec::new());
        let outcome = waiting_out_429s
            .retry(self.retry.backoff())
            .when(|e| as_api_error(e).is_some_and(|e| super::retry::is_retryable(&e, true)))
            .adjust(|e, computed| as_api_error(e).and_then(|e| super::retry::next_delay(&e, computed)))
            .notify(|e, delay| {
                let message = describe_token_error(e);
                tracing::warn!(what, error = %message, ?delay, "GHL token endpoint failed; retrying");
                failures
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(message);
            })
            .await;
        let error = match outcome {
            Ok(response) => return Ok(response),
            Err(error) => error,
        };
        let failures = failures
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let message = describe_token_error(&error);
        let earlier = if failures.is_empty() {
            String::new()
        } else {
            format!(
                " (after {} failed attempts: {})",
                failures.len(),
                failures.join("; ")
            )
        };
        let hint = match &error {
            oauth2::RequestTokenError::ServerResponse(_) if !failures.is_empty() => {
                "; an earlier attempt may have spent the code or refresh token before its answer was lost: run `contactsync auth ghl` with a new authorization code"
            }
            oauth2::RequestTokenError::ServerResponse(_) => {
                "; run `contactsync auth ghl` with a new authorization code"
            }
            _ => "",
        };
        Err(auth_error(format!("{what}: {message}{earlier}{hint}")))
    }

    /// Fails naming the first scope the stored grant lacks.
    pub async fn require_scopes(&self, needed: &[&str]) -> Result<(), ApiError> {
        let tokens = self.tokens().await?;
        let granted = tokens.scopes();
        for scope in needed {
            if !granted.contains(scope) {
                return Err(auth_error(format!(
                    "the stored GHL grant lacks scope {scope} (granted: {})",
                    tokens.scope
                )));
            }
        }
        Ok(())
    }
}

fn describe<E: std::error::Error>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn stored_from(
    response: &GhlTokenResponse,
    previous: Option<&StoredTokens>,
    now: DateTime<Utc>,
) -> Result<StoredTokens, ApiError> {
    let lifetime = response
        .expires_in()
        .map(|d| Duration::from_std(d).unwrap_or(Duration::days(1)))
        .unwrap_or(Duration::days(1));
    let refresh_token = match (response.refresh_token(), previous) {
        (Some(rt), _) => Secret::new(rt.secret().clone()),
        (None, Some(prev)) => prev.refresh_token.clone(),
        (None, None) => return Err(auth_error("token answer carried no refresh token".into())),
    };
    let scope = match (response.scopes(), previous) {
        (Some(scopes), _) => scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        (None, Some(prev)) => prev.scope.clone(),
        (None, None) => String::new(),
    };
    Ok(StoredTokens {
        access_token: Secret::new(response.access_token().secret().clone()),
        refresh_token,
        expires_at: now + lifetime,
        scope,
        obtained_at: now,
        company_id: response
            .extra_fields()
            .company_id
            .clone()
            .or_else(|| previous.and_then(|p| p.company_id.clone())),
    })
}

type TokenError = oauth2::RequestTokenError<TokenHttpError, oauth2::basic::BasicErrorResponse>;

/// Why a token request got no OAuth answer.
#[derive(Debug, thiserror::Error)]
pub enum TokenHttpError {
    /// The request did not complete (connection, timeout, unreadable body).
    #[error("{0}")]
    Transport(#[from] reqwest::Error),
    /// The endpoint answered with a status and a body that is not an OAuth error (a gateway's
    /// 502 page, a redirect, ...).
    #[error("HTTP {status}: {body}")]
    Status {
        status: u16,
        body: String,
        retry_after_secs: Option<u64>,
    },
}

/// Text of a token request failure, without the request (which carries secrets).
fn describe_token_error(error: &TokenError) -> String {
    match error {
        oauth2::RequestTokenError::ServerResponse(resp) => {
            let mut text = format!("refused: {}", resp.error());
            if let Some(description) = resp.error_description() {
                text.push_str(&format!(" ({description})"));
            }
            text
        }
        oauth2::RequestTokenError::Request(e) => describe(e),
        oauth2::RequestTokenError::Parse(e, body) => format!(
            "unreadable answer ({e}): {}",
            super::error::shorten(&String::from_utf8_lossy(body), 300)
        ),
        oauth2::RequestTokenError::Other(e) => e.clone(),
    }
}

/// Adapts our reqwest client to the `oauth2` crate's HTTP interface. An answer that is neither a
/// success nor an OAuth error body (`{"error": ...}`) comes back as [`TokenHttpError::Status`], so
/// the caller sees the status and body instead of a parse error about a missing `error` field.
async fn oauth_http(
    client: reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, TokenHttpError> {
    let (parts, body) = request.into_parts();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await?;
    let oauth_error_body = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .is_some_and(|v| v.get("error").is_some_and(serde_json::Value::is_string));
    let answered = status.is_success() || (status.is_client_error() && oauth_error_body);
    if !answered {
        let retry_after_secs = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        return Err(TokenHttpError::Status {
            status: status.as_u16(),
            body: super::error::shorten(&String::from_utf8_lossy(&bytes), 300),
            retry_after_secs,
        });
    }
    let mut builder = http::Response::builder().status(status);
    if let Some(h) = builder.headers_mut() {
        *h = headers;
    }
    Ok(builder
        .body(bytes.to_vec())
        .expect("status and headers come from a valid response"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A token endpoint on loopback: `answer(n)` gives the response to its n-th request (from 0);
    /// `/elsewhere` counts the requests a redirect would have sent it.
    async fn token_endpoint(
        answer: fn(usize) -> axum::response::Response,
    ) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let elsewhere = Arc::new(AtomicUsize::new(0));
        let (c, e) = (calls.clone(), elsewhere.clone());
        let app = axum::Router::new()
            .route(
                "/oauth/token",
                axum::routing::post(move || {
                    let n = c.fetch_add(1, Ordering::SeqCst);
                    async move { answer(n) }
                }),
            )
            .route(
                "/elsewhere",
                axum::routing::post(move || {
                    e.fetch_add(1, Ordering::SeqCst);
                    async { StatusCode::OK }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, calls, elsewhere)
    }

    fn manager(base: &str, dir: &Path) -> GhlTokenManager {
        manager_at(base, dir, Arc::new(crate::clock::SystemClock))
    }

    fn manager_at(base: &str, dir: &Path, clock: Arc<dyn Clock>) -> GhlTokenManager {
        GhlTokenManager::new(
            base,
            "client-id",
            &Secret::new("client-secret-value".to_string()),
            dir.join("ghl.json"),
            std::time::Duration::from_secs(5),
            RetryPolicy {
                max_attempts: 4,
                base_delay: std::time::Duration::from_millis(1),
                max_delay: std::time::Duration::from_millis(5),
            },
            clock,
        )
        .expect("manager")
    }

    fn bad_gateway() -> axum::response::Response {
        (
            StatusCode::BAD_GATEWAY,
            axum::Json(serde_json::json!({"statusCode": 502, "message": "Bad Gateway"})),
        )
            .into_response()
    }

    /// The endpoint's answer granting tokens.
    fn granted() -> axum::response::Response {
        axum::Json(serde_json::json!({
            "access_token": "at", "token_type": "Bearer", "expires_in": 86399,
            "refresh_token": "rt", "scope": "contacts.readonly contacts.write"
        }))
        .into_response()
    }

    /// Exchanges a code at `base` with a fresh manager: the access token it got.
    async fn exchanged_access_token(base: &str) -> Result<String, ApiError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = manager(base, dir.path())
            .exchange_code(&Secret::new("the-code".to_string()))
            .await?;
        Ok(tokens.access_token.expose().to_string())
    }

    #[tokio::test]
    async fn a_code_exchange_is_retried_through_transient_5xx() {
        let (base, calls, _) =
            token_endpoint(|n| if n < 2 { bad_gateway() } else { granted() }).await;
        let token = exchanged_access_token(&base)
            .await
            .expect("the third attempt succeeds");
        assert_eq!(token, "at");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_burst_of_429s_from_the_token_endpoint_does_not_spend_the_attempts() {
        // Six 429s, then a 502 and the answer: more failures than the policy's 4 attempts, but
        // only the 502 is one.
        let (base, calls, _) = token_endpoint(|n| match n {
            0..6 => (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "0")],
                axum::Json(serde_json::json!({"statusCode": 429, "message": "Too Many Requests"})),
            )
                .into_response(),
            6 => bad_gateway(),
            _ => granted(),
        })
        .await;
        let token = exchanged_access_token(&base)
            .await
            .expect("the burst is waited out");
        assert_eq!(token, "at");
        assert_eq!(calls.load(Ordering::SeqCst), 8);
    }

    #[tokio::test]
    async fn a_failing_token_endpoint_is_reported_by_status_and_body() {
        let (base, calls, _) = token_endpoint(|_| bad_gateway()).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let error = manager(&base, dir.path())
            .exchange_code(&Secret::new("the-code".to_string()))
            .await
            .expect_err("always 502")
            .to_string();
        assert_eq!(calls.load(Ordering::SeqCst), 4, "the policy's 4 attempts");
        assert!(error.contains("HTTP 502"), "{error}");
        assert!(error.contains("Bad Gateway"), "{error}");
        assert!(!error.contains("missing field"), "{error}");
        assert!(!error.contains("client-secret-value") && !error.contains("the-code"));
    }

    #[tokio::test]
    async fn token_expiry_is_judged_by_the_managers_clock() {
        // A grant of 2019, a day long: wall time is years past its expiry, so only a manager that
        // reads its clock uses it without asking the token endpoint.
        let (base, calls, _) = token_endpoint(|_| {
            (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"error": "invalid_grant"})),
            )
                .into_response()
        })
        .await;
        let dir = tempfile::tempdir().expect("tempdir");
        let obtained = DateTime::parse_from_rfc3339("2019-01-01T00:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let stored = StoredTokens {
            access_token: Secret::new("stored-access".to_string()),
            refresh_token: Secret::new("stored-refresh".to_string()),
            expires_at: obtained + Duration::days(1),
            scope: "contacts.readonly".into(),
            obtained_at: obtained,
            company_id: None,
        };
        write_token_store(&dir.path().join("ghl.json"), &stored).expect("store");

        let clock = Arc::new(crate::clock::FixedClock::at(obtained + Duration::hours(12)));
        let midday = manager_at(&base, dir.path(), clock.clone());
        let token = midday.access_token().await.expect("fresh at midday");
        assert_eq!(token.expose(), "stored-access");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "a fresh token is not refreshed"
        );

        // Four minutes before expiry is inside the five-minute margin: the manager refreshes.
        clock.set(stored.expires_at - Duration::minutes(4));
        let late = manager_at(&base, dir.path(), clock);
        late.access_token().await.expect_err("the endpoint refuses");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "a token about to expire is refreshed"
        );
    }

    #[tokio::test]
    async fn a_refusal_is_final_and_named() {
        let (base, calls, _) = token_endpoint(|_| {
            (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"error": "invalid_grant", "error_description": "Invalid authorization code"})),
            )
                .into_response()
        })
        .await;
        let dir = tempfile::tempdir().expect("tempdir");
        let error = manager(&base, dir.path())
            .exchange_code(&Secret::new("the-code".to_string()))
            .await
            .expect_err("refused")
            .to_string();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a refusal is not retried");
        assert!(error.contains("invalid_grant"), "{error}");
    }

    #[tokio::test]
    async fn a_redirect_from_the_token_endpoint_is_not_followed() {
        let (base, _, elsewhere) = token_endpoint(|_| {
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, "/elsewhere")],
            )
                .into_response()
        })
        .await;
        let dir = tempfile::tempdir().expect("tempdir");
        let error = manager(&base, dir.path())
            .exchange_code(&Secret::new("the-code".to_string()))
            .await
            .expect_err("a redirect is not a token answer")
            .to_string();
        assert_eq!(
            elsewhere.load(Ordering::SeqCst),
            0,
            "the client secret followed the redirect"
        );
        assert!(error.contains("HTTP 307"), "{error}");
    }
}
