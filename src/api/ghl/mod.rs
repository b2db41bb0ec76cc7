//! The GHL API v2 client (contacts, tasks, notes, appointments) on the shared HTTP layer.

pub mod types;
mod writes;

use super::agency::{AgencyAuth, LocationTokenSource};
use super::auth::{Credentials, GHL_READ_SCOPE, GHL_WRITE_SCOPE, GhlTokenManager};
use super::config::{GhlAuthConfig, GhlConfig, HttpConfig};
use super::error::ApiError;
use super::http::{ApiClient, ApiRequest, build_http};
use super::rate_limit::RateLimiter;
use super::retry::RetryPolicy;
use crate::clock::Clock;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Largest `pageLimit` `/contacts/search` accepts.
pub const MAX_SEARCH_PAGE: u32 = 500;

/// One page of `/contacts/search`, rows still untyped (extract types each row and quarantines misfits).
#[derive(Debug, Clone, Deserialize)]
pub struct SearchPage {
    #[serde(default)]
    pub contacts: Vec<Value>,
    /// `total` (the help docs) or `count` (the spec): both are accepted.
    #[serde(default, alias = "count")]
    pub total: Option<u64>,
}

/// A GHL client bound to one location.
#[derive(Debug, Clone)]
pub struct GhlClient {
    api: ApiClient,
    location_id: String,
    token_manager: Option<Arc<GhlTokenManager>>,
}

/// Where the GHL token store of a pipeline lives, in its state directory.
pub fn token_store_path(state_dir: &Path) -> PathBuf {
    state_dir.join("tokens").join("ghl.json")
}

impl GhlClient {
    /// Builds the client of a pipeline file's `[ghl]` and `[http]` sections; OAuth tokens are kept
    /// in `token_store` ([`token_store_path`]) and their expiry judged by `clock`.
    pub fn new(
        ghl: &GhlConfig,
        http_config: &HttpConfig,
        token_store: PathBuf,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ApiError> {
        let http = build_http(Duration::from_secs(http_config.timeout_secs))?;
        let (credentials, token_manager) = match &ghl.auth {
            GhlAuthConfig::PrivateToken { .. } => {
                let token = ghl
                    .auth
                    .private_token_for(&ghl.location_id)
                    .map_err(|message| ApiError::Auth {
                        api: "ghl".into(),
                        message,
                    })?;
                (Credentials::Bearer(token.clone()), None)
            }
            GhlAuthConfig::AgencyOauth {
                company_token_store,
                ..
            } => {
                if company_token_store.is_unset() {
                    return Err(ApiError::Auth {
                        api: "ghl".into(),
                        message: "ghl.auth.kind = \"agency_oauth\" needs the agency's token file, which PipelineConfig::load sets".into(),
                    });
                }
                let agency = AgencyAuth::shared(ghl, http_config, company_token_store, clock)?;
                let source = LocationTokenSource::new(agency, &ghl.location_id, token_store);
                (Credentials::GhlAgencyLocation(Arc::new(source)), None)
            }
            GhlAuthConfig::Oauth {
                client_id,
                client_secret,
                ..
            } => {
                let manager = Arc::new(GhlTokenManager::new(
                    &ghl.base_url,
                    client_id,
                    client_secret,
                    token_store,
                    Duration::from_secs(http_config.timeout_secs),
                    RetryPolicy::from_config(http_config),
                    clock,
                )?);
                (Credentials::GhlOauth(manager.clone()), Some(manager))
            }
        };
        let limiter = Arc::new(RateLimiter::for_ghl(&ghl.rate_limit));
        let api = ApiClient::new(
            "ghl",
            http,
            &ghl.base_url,
            credentials,
            Some(limiter),
            RetryPolicy::from_config(http_config),
            &[("version", ghl.api_version.clone())],
        )?;
        Ok(GhlClient {
            api,
            location_id: ghl.location_id.clone(),
            token_manager,
        })
    }

    /// The shared HTTP client (metrics, limiter).
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// The location every call is scoped to.
    pub fn location_id(&self) -> &str {
        &self.location_id
    }

    /// The OAuth token manager, when the pipeline uses OAuth.
    pub fn token_manager(&self) -> Option<&Arc<GhlTokenManager>> {
        self.token_manager.as_ref()
    }

    /// Fails before any work when the grant lacks a scope the run needs (OAuth only: a private
    /// integration token's scopes are not visible to the client; a missing one shows up as a 401).
    pub async fn require_scopes(&self, write: bool) -> Result<(), ApiError> {
        if let Some(manager) = &self.token_manager {
            let mut needed = vec![GHL_READ_SCOPE];
            if write {
                needed.push(GHL_WRITE_SCOPE);
            }
            manager.require_scopes(&needed).await?;
        }
        Ok(())
    }

    /// One page of `/contacts/search` sorted by `dateUpdated` then id, from a keyset cursor.
    /// Keyset paging (`searchAfter`) is used from the first page on: page numbers shift when
    /// contacts change mid-read, a cursor does not, and it is what a checkpoint can store.
    pub async fn search_updated_since(
        &self,
        updated_since_ms: Option<i64>,
        search_after: Option<&Value>,
        page_limit: u32,
        label: String,
    ) -> Result<SearchPage, ApiError> {
        let mut body = json!({
            "locationId": self.location_id,
            "pageLimit": page_limit.min(MAX_SEARCH_PAGE),
            "sort": [{"field": "dateUpdated", "direction": "asc"}],
        });
        if let Some(since) = updated_since_ms {
            body["filters"] = json!([{
                "field": "dateUpdated", "operator": "range", "value": {"gte": since}
            }]);
        }
        if let Some(cursor) = search_after {
            body["searchAfter"] = cursor.clone();
        }
        // A search is a read: safe to resend.
        let request =
            ApiRequest::with_body(Method::POST, "/contacts/search", body, true).label(label);
        self.api.send_json(&request).await
    }

    /// Contacts of a business, `limit` at a time from `skip`.
    pub async fn business_contacts(
        &self,
        business_id: &str,
        skip: u64,
        limit: u32,
    ) -> Result<SearchPage, ApiError> {
        let request = ApiRequest::get(format!("/contacts/business/{business_id}"))
            .query("locationId", &self.location_id)
            .query("limit", limit)
            .query("skip", skip)
            .label(format!("skip {skip}"));
        self.api.send_json(&request).await
    }

    /// Tasks of a contact (raw rows).
    pub async fn contact_tasks(&self, contact_id: &str) -> Result<Vec<Value>, ApiError> {
        self.list_of(&format!("/contacts/{contact_id}/tasks"), "tasks")
            .await
    }

    /// `GET /contacts/{id}/tasks/{taskId}`: one task as GHL has it now; `None` when GHL no longer
    /// has it (a person deleted it, or its contact was deleted: GHL answers 400 "not found").
    pub async fn get_task(
        &self,
        contact_id: &str,
        task_id: &str,
    ) -> Result<Option<Value>, ApiError> {
        let request = ApiRequest::get(format!("/contacts/{contact_id}/tasks/{task_id}"));
        let answer = self
            .api
            .send_decoded(&request, |resp| {
                let value: Value = serde_json::from_slice(&resp.body).map_err(|e| e.to_string())?;
                match value.get("task") {
                    Some(task @ Value::Object(_)) => Ok(task.clone()),
                    _ => Err("no `task` object in the answer".to_string()),
                }
            })
            .await;
        match answer {
            Ok(task) => Ok(Some(task)),
            Err(e) if matches!(e.status(), Some(400 | 404)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Notes of a contact (raw rows).
    pub async fn contact_notes(&self, contact_id: &str) -> Result<Vec<Value>, ApiError> {
        self.list_of(&format!("/contacts/{contact_id}/notes"), "notes")
            .await
    }

    /// Appointments of a contact (raw rows).
    pub async fn contact_appointments(&self, contact_id: &str) -> Result<Vec<Value>, ApiError> {
        self.list_of(&format!("/contacts/{contact_id}/appointments"), "events")
            .await
    }

    async fn list_of(&self, path: &str, key: &'static str) -> Result<Vec<Value>, ApiError> {
        let request = ApiRequest::get(path);
        self.api
            .send_decoded(&request, |resp| {
                let mut value: Value =
                    serde_json::from_slice(&resp.body).map_err(|e| e.to_string())?;
                match value.get_mut(key).map(Value::take) {
                    Some(Value::Array(rows)) => Ok(rows),
                    Some(Value::Null) | None => Err(format!("no `{key}` array in the answer")),
                    Some(other) => Err(format!("`{key}` is not an array but {other}")),
                }
            })
            .await
    }
}
