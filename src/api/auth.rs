//! Credentials for both APIs: GHL OAuth 2.0 (with a token store that survives restarts), GHL private
//! integration tokens, and BulkSMS Basic auth.
//!
//! The OAuth exchange and refresh go through the `oauth2` crate. GHL rotates refresh tokens (a used
//! one stops working), so a refreshed pair is written to disk (mode 0600, atomically) before the new
//! access token is handed to any caller: a crash right after a refresh never strands the pipeline
//! with only a spent refresh token.

use super::error::ApiError;
use crate::secret::Secret;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet, RefreshToken,
    TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Mutex;

/// Scopes the pipeline needs from GHL.
pub const GHL_READ_SCOPE: &str = "contacts.readonly";
/// Scope for every GHL write.
pub const GHL_WRITE_SCOPE: &str = "contacts.write";

/// How requests to one API are authenticated.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A static bearer token (GHL private integration token).
    Bearer(Secret),
    /// GHL OAuth tokens that refresh themselves.
    GhlOauth(Arc<GhlTokenManager>),
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
            _ => Ok(false),
        }
    }
}

/// The tokens kept in the state directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredTokens {
    pub access_token: Secret,
    pub refresh_token: Secret,
    pub expires_at: DateTime<Utc>,
    /// Space-separated scopes granted.
    pub scope: String,
    pub obtained_at: DateTime<Utc>,
}

impl StoredTokens {
    /// Scopes granted, as a list.
    pub fn scopes(&self) -> Vec<&str> {
        self.scope.split_whitespace().collect()
    }
}

type GhlOauthClient =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// Holds GHL OAuth tokens, refreshes them ahead of expiry and persists every rotation.
#[derive(Debug)]
pub struct GhlTokenManager {
    oauth: GhlOauthClient,
    http: reqwest::Client,
    store_path: PathBuf,
    tokens: Mutex<Option<StoredTokens>>,
}

impl GhlTokenManager {
    /// A manager for an app, storing tokens at `store_path`.
    pub fn new(
        base_url: &str,
        client_id: &str,
        client_secret: &Secret,
        store_path: PathBuf,
        http: reqwest::Client,
    ) -> Result<Self, ApiError> {
        let token_url = TokenUrl::new(format!("{}/oauth/token", base_url.trim_end_matches('/')))
            .map_err(|e| auth_error(format!("bad token URL: {e}")))?;
        let oauth = BasicClient::new(ClientId::new(client_id.to_string()))
            .set_client_secret(ClientSecret::new(client_secret.expose().to_string()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(token_url);
        Ok(GhlTokenManager {
            oauth,
            http,
            store_path,
            tokens: Mutex::new(None),
        })
    }

    /// Where the tokens are stored.
    pub fn store_path(&self) -> &Path {
        &self.store_path
    }

    /// Exchanges an authorization code for tokens and stores them.
    pub async fn exchange_code(&self, code: &Secret) -> Result<StoredTokens, ApiError> {
        let http = self.http.clone();
        let response = self
            .oauth
            .exchange_code(AuthorizationCode::new(code.expose().to_string()))
            .add_extra_param("user_type", "Location")
            .request_async(&move |req| oauth_http(http.clone(), req))
            .await
            .map_err(|e| {
                auth_error(format!(
                    "exchanging the authorization code: {}",
                    describe(&e)
                ))
            })?;
        let tokens = stored_from(&response, None)?;
        write_token_store(&self.store_path, &tokens).map_err(|e| {
            auth_error(format!(
                "storing tokens in {}: {e}",
                self.store_path.display()
            ))
        })?;
        *self.tokens.lock().await = Some(tokens.clone());
        Ok(tokens)
    }

    /// The stored tokens, loading them from disk on first use.
    pub async fn tokens(&self) -> Result<StoredTokens, ApiError> {
        let mut slot = self.tokens.lock().await;
        if slot.is_none() {
            *slot = Some(read_token_store(&self.store_path)?);
        }
        Ok(slot.clone().expect("just filled"))
    }

    /// A valid access token, refreshed first when it expires within five minutes.
    pub async fn access_token(&self) -> Result<Secret, ApiError> {
        let mut slot = self.tokens.lock().await;
        if slot.is_none() {
            *slot = Some(read_token_store(&self.store_path)?);
        }
        let current = slot.clone().expect("just filled");
        let margin = Duration::minutes(5).min((current.expires_at - current.obtained_at) / 10);
        if current.expires_at - margin > Utc::now() {
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
            *slot = Some(read_token_store(&self.store_path)?);
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
        let http = self.http.clone();
        let mut last_error = String::new();
        // The token endpoint is retried on its own (a few quick attempts): a rotated refresh token
        // is spent only when the service answered, and then we have its successor.
        for attempt in 0..4u32 {
            if attempt > 0 {
                tokio::time::sleep(super::retry::full_jitter(std::time::Duration::from_millis(
                    250 << attempt,
                )))
                .await;
            }
            let result = self
                .oauth
                .exchange_refresh_token(&RefreshToken::new(
                    current.refresh_token.expose().to_string(),
                ))
                .add_extra_param("user_type", "Location")
                .request_async(&|req| oauth_http(http.clone(), req))
                .await;
            match result {
                Ok(response) => {
                    let tokens = stored_from(&response, Some(current))?;
                    write_token_store(&self.store_path, &tokens).map_err(|e| {
                        auth_error(format!(
                            "storing refreshed tokens in {}: {e}",
                            self.store_path.display()
                        ))
                    })?;
                    tracing::info!(expires_at = %tokens.expires_at, "GHL tokens refreshed and stored");
                    return Ok(tokens);
                }
                Err(oauth2::RequestTokenError::ServerResponse(resp)) => {
                    return Err(auth_error(format!(
                        "refresh refused ({}); run `contactsync auth ghl` with a new authorization code",
                        resp.error()
                    )));
                }
                Err(e) => last_error = describe(&e),
            }
        }
        Err(auth_error(format!("refreshing tokens: {last_error}")))
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

fn auth_error(message: String) -> ApiError {
    ApiError::Auth {
        api: "ghl".into(),
        message,
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
    response: &oauth2::basic::BasicTokenResponse,
    previous: Option<&StoredTokens>,
) -> Result<StoredTokens, ApiError> {
    let now = Utc::now();
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
    })
}

/// Adapts our reqwest client to the `oauth2` crate's HTTP interface.
async fn oauth_http(
    client: reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, reqwest::Error> {
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
    let mut builder = http::Response::builder().status(status);
    if let Some(h) = builder.headers_mut() {
        *h = headers;
    }
    Ok(builder
        .body(bytes.to_vec())
        .expect("status and headers come from a valid response"))
}

/// Reads the token store, explaining how to create it when missing.
pub fn read_token_store(path: &Path) -> Result<StoredTokens, ApiError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        auth_error(format!(
            "no GHL tokens at {} ({e}); run `contactsync auth ghl --pipeline FILE` first",
            path.display()
        ))
    })?;
    serde_json::from_str(&text)
        .map_err(|e| auth_error(format!("token store {} is unreadable: {e}", path.display())))
}

/// Writes the token store atomically with mode 0600.
pub fn write_token_store(path: &Path, tokens: &StoredTokens) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(tokens).map_err(std::io::Error::other)?;
    crate::snapshot::atomic::write_private(path, &json)
}
