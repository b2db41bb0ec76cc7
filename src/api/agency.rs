//! An agency's (Company-level) GHL app: the agency grant, the locations where the app is installed
//! (`GET /oauth/installedLocations`), and each location's token minted from the grant
//! (`POST /oauth/locationToken`, spec/oauth.json).
//!
//! The agency grant is one per pipeline, kept in `<state_dir>/tokens/ghl-company.json` or, with
//! `[state] url`, in the shared database (see [`GrantStore`]). Its refresh token rotates, so every
//! client of a process shares one [`AgencyAuth`] per grant: locations run in parallel never refresh
//! it twice (and other processes take the grant's lock to refresh it). Location tokens have no refresh token; they are minted again
//! when they expire or are refused, and each is stored in its location's own state directory.
//! The agency's calls go through the one HTTP layer, on the agency's own rate budget (GHL counts
//! per app and resource: the company is one).

use super::auth::{
    BoxedFuture, Credentials, GhlTokenManager, MintedTokenSource, StoredTokens, auth_error,
    read_token_store, still_fresh,
};
use super::config::{GhlAuthConfig, GhlConfig, HttpConfig};
use super::error::ApiError;
use super::grant_store::GrantStore;
use super::http::{ApiClient, ApiRequest, build_http};
use super::rate_limit::RateLimiter;
use super::retry::RetryPolicy;
use crate::clock::Clock;
use crate::secret::Secret;
use chrono::Duration;
use reqwest::Method;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

/// The `Version` the OAuth agency endpoints accept (spec/oauth.json lists only this one).
const OAUTH_API_VERSION: &str = "2021-07-28";
/// Locations asked for per `installedLocations` page (the spec's default is 20).
const INSTALLED_PAGE: usize = 100;

/// Where a pipeline's agency grant is stored in its state directory (without `[state] url`).
pub fn company_token_store_path(state_dir: &Path) -> PathBuf {
    state_dir.join("tokens").join("ghl-company.json")
}

/// A location where the agency's app is installed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstalledLocation {
    pub id: String,
    pub name: String,
}

/// The agency grant and the calls made with it.
#[derive(Debug)]
pub struct AgencyAuth {
    company: Arc<GhlTokenManager>,
    api: ApiClient,
    app_id: String,
    /// What location token expiry is compared with, and what dates a minted token.
    clock: Arc<dyn Clock>,
}

/// One [`AgencyAuth`] per agency grant in this process, by where the grant is kept.
static SHARED: LazyLock<Mutex<HashMap<String, Arc<AgencyAuth>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

impl AgencyAuth {
    /// The process's agency grant kept in `company_store`, for a `[ghl]` section whose
    /// `auth.kind` is `agency_oauth` (built on first use with `clock`, then shared).
    pub fn shared(
        ghl: &GhlConfig,
        http_config: &HttpConfig,
        company_store: &GrantStore,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<AgencyAuth>, ApiError> {
        let key = company_store.to_string();
        let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(agency) = shared.get(&key) {
            return Ok(agency.clone());
        }
        let agency = Arc::new(AgencyAuth::new(ghl, http_config, company_store, clock)?);
        shared.insert(key, agency.clone());
        Ok(agency)
    }

    fn new(
        ghl: &GhlConfig,
        http_config: &HttpConfig,
        company_store: &GrantStore,
        clock: Arc<dyn Clock>,
    ) -> Result<AgencyAuth, ApiError> {
        let GhlAuthConfig::AgencyOauth {
            client_id,
            client_secret,
            ..
        } = &ghl.auth
        else {
            return Err(auth_error(
                "an agency grant needs ghl.auth.kind = \"agency_oauth\"".into(),
            ));
        };
        let timeout = std::time::Duration::from_secs(http_config.timeout_secs);
        let retry = RetryPolicy::from_config(http_config);
        let company = Arc::new(
            GhlTokenManager::new(
                &ghl.base_url,
                client_id,
                client_secret,
                company_store.clone(),
                timeout,
                retry.clone(),
                clock.clone(),
            )?
            .for_company(),
        );
        let api = ApiClient::new(
            "ghl",
            build_http(timeout)?,
            &ghl.base_url,
            Credentials::GhlOauth(company.clone()),
            Some(Arc::new(RateLimiter::for_ghl(&ghl.rate_limit))),
            retry,
            &[("version", OAUTH_API_VERSION.to_string())],
        )?;
        Ok(AgencyAuth {
            company,
            api,
            // HighLevel's client ids are `<appId>-<suffix>`.
            app_id: client_id.split('-').next().unwrap_or(client_id).to_string(),
            clock,
        })
    }

    /// The agency grant's token manager (`auth ghl` exchanges the code through it).
    pub fn token_manager(&self) -> &Arc<GhlTokenManager> {
        &self.company
    }

    /// The agency's id, from its stored grant.
    pub async fn company_id(&self) -> Result<String, ApiError> {
        self.company.tokens().await?.company_id.ok_or_else(|| {
            auth_error(format!(
                "the agency grant in {} names no companyId; run `contactsync auth ghl` again",
                self.company.store()
            ))
        })
    }

    /// Every location where the app is installed, in the API's order, read page by page
    /// (`skip`/`limit`) until the answer's `count` is reached.
    pub async fn installed_locations(&self) -> Result<Vec<InstalledLocation>, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            #[serde(rename = "_id")]
            id: String,
            #[serde(default)]
            name: String,
        }
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            locations: Vec<Row>,
            #[serde(default)]
            count: Option<usize>,
        }
        let company_id = self.company_id().await?;
        let mut found = Vec::new();
        loop {
            let request = ApiRequest::get("/oauth/installedLocations")
                .query("companyId", &company_id)
                .query("appId", &self.app_id)
                .query("isInstalled", "true")
                .query("skip", found.len())
                .query("limit", INSTALLED_PAGE)
                .label(format!("from {}", found.len()));
            let page: Page = self.api.send_json(&request).await?;
            let received = page.locations.len();
            found.extend(page.locations.into_iter().map(|r| InstalledLocation {
                id: r.id,
                name: r.name,
            }));
            let total = page.count.unwrap_or(found.len());
            // A short page before `count` would loop forever on a server that caps `limit` at 0.
            if received == 0 || found.len() >= total {
                if found.len() < total {
                    tracing::warn!(
                        listed = found.len(),
                        count = total,
                        "GHL's installedLocations stopped before its count"
                    );
                }
                return Ok(found);
            }
        }
    }

    /// A new token of `location_id` (`POST /oauth/locationToken`).
    pub async fn mint_location_token(&self, location_id: &str) -> Result<StoredTokens, ApiError> {
        #[derive(Deserialize)]
        struct Minted {
            access_token: String,
            #[serde(default)]
            expires_in: Option<i64>,
            #[serde(default)]
            scope: Option<String>,
            #[serde(rename = "locationId", default)]
            location_id: Option<String>,
        }
        let company_id = self.company_id().await?;
        // Minting twice is harmless (two valid tokens), so a lost answer may be asked again.
        let request = ApiRequest::with_form(
            Method::POST,
            "/oauth/locationToken",
            &[("companyId", &company_id), ("locationId", location_id)],
            true,
        )
        .label(format!("location {location_id}"));
        let minted: Minted = self.api.send_json(&request).await?;
        if let Some(other) = minted
            .location_id
            .as_deref()
            .filter(|id| *id != location_id)
        {
            return Err(auth_error(format!(
                "GHL minted a token of location {other} when asked for {location_id}"
            )));
        }
        let now = self.clock.now();
        Ok(StoredTokens {
            access_token: Secret::new(minted.access_token),
            refresh_token: Secret::new(String::new()),
            expires_at: now + Duration::seconds(minted.expires_in.unwrap_or(86_399)),
            scope: minted.scope.unwrap_or_default(),
            obtained_at: now,
            company_id: Some(company_id),
        })
    }
}

// Boxed futures: minting goes through the HTTP layer, whose credentials are this source's, so the
// futures would otherwise contain themselves.
impl MintedTokenSource for LocationTokenSource {
    fn access_token(&self) -> BoxedFuture<'_, Secret> {
        Box::pin(self.access_token_inner())
    }

    fn remint_if_current<'a>(&'a self, rejected: &'a str) -> BoxedFuture<'a, ()> {
        Box::pin(self.remint_inner(rejected))
    }
}

/// The token of one location of an agency grant, stored in the location's state directory and
/// minted again when it is due or refused.
#[derive(Debug)]
pub struct LocationTokenSource {
    agency: Arc<AgencyAuth>,
    location_id: String,
    store_path: PathBuf,
    tokens: tokio::sync::Mutex<Option<StoredTokens>>,
}

impl LocationTokenSource {
    /// The token source of `location_id`, stored at `store_path`.
    pub fn new(agency: Arc<AgencyAuth>, location_id: &str, store_path: PathBuf) -> Self {
        LocationTokenSource {
            agency,
            location_id: location_id.to_string(),
            store_path,
            tokens: tokio::sync::Mutex::new(None),
        }
    }

    /// The location this source mints for.
    pub fn location_id(&self) -> &str {
        &self.location_id
    }

    /// A valid access token: the stored one unless it expires within five minutes (or a tenth
    /// of its life), else a new one, stored before it is handed out.
    async fn access_token_inner(&self) -> Result<Secret, ApiError> {
        let mut slot = self.tokens.lock().await;
        if slot.is_none() && self.store_path.exists() {
            match read_token_store(&self.store_path) {
                Ok(stored) => *slot = Some(stored),
                // Nothing is lost by minting another: the agency grant is the credential.
                Err(e) => tracing::warn!(error = %e, "Unreadable location token; minting another"),
            }
        }
        if let Some(current) = slot.as_ref()
            && still_fresh(current, self.agency.clock.now())
        {
            return Ok(current.access_token.clone());
        }
        let minted = self.mint_and_store().await?;
        let token = minted.access_token.clone();
        *slot = Some(minted);
        Ok(token)
    }

    /// After a 401: mints again unless another task already replaced the refused token.
    async fn remint_inner(&self, rejected: &str) -> Result<(), ApiError> {
        let mut slot = self.tokens.lock().await;
        if slot
            .as_ref()
            .is_some_and(|t| t.access_token.expose() != rejected)
        {
            return Ok(());
        }
        tracing::info!(location_id = %self.location_id, "GHL location token refused; minting another");
        *slot = Some(self.mint_and_store().await?);
        Ok(())
    }

    async fn mint_and_store(&self) -> Result<StoredTokens, ApiError> {
        let minted = self.agency.mint_location_token(&self.location_id).await?;
        super::auth::write_token_store(&self.store_path, &minted).map_err(|e| {
            auth_error(format!(
                "storing the token of location {} in {}: {e}",
                self.location_id,
                self.store_path.display()
            ))
        })?;
        tracing::info!(location_id = %self.location_id, expires_at = %minted.expires_at, "GHL location token minted and stored");
        Ok(minted)
    }
}
