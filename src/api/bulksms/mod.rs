//! The BulkSMS JSON API v1 client on the shared HTTP layer.

pub mod blocked;
pub mod types;
pub mod writes;

use super::auth::Credentials;
use super::config::{BulkSmsConfig, HttpConfig};
use super::error::ApiError;
use super::http::{ApiClient, ApiRequest, build_http};
use super::retry::RetryPolicy;
use serde_json::Value;
use std::time::Duration;
use types::{BlockedNumber, Profile};

/// Most messages `GET /messages` returns per call.
pub const MAX_MESSAGES_PAGE: u32 = 1000;
/// Most blocked numbers `GET /blocked-numbers` returns per call.
pub const MAX_BLOCKED_PAGE: u32 = 10_000;

/// A BulkSMS client for one account.
#[derive(Debug, Clone)]
pub struct BulkSmsClient {
    api: ApiClient,
}

impl BulkSmsClient {
    /// Builds the client of a pipeline file's `[bulksms]` and `[http]` sections.
    pub fn new(bulksms: &BulkSmsConfig, http_config: &HttpConfig) -> Result<Self, ApiError> {
        let http = build_http(Duration::from_secs(http_config.timeout_secs))?;
        let credentials = Credentials::Basic {
            user: bulksms.token_id.clone(),
            password: bulksms.token_secret.clone(),
        };
        // BulkSMS documents no request-rate limit (only a daily quota), so no limiter; 429s and
        // 5xx are still retried by the shared policy.
        let api = ApiClient::new(
            "bulksms",
            http,
            &bulksms.base_url,
            credentials,
            None,
            RetryPolicy::from_config(http_config),
            &[],
        )?;
        Ok(BulkSmsClient { api })
    }

    /// The shared HTTP client (metrics).
    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// Messages with id greater than `after_id`, oldest first (raw rows).
    pub async fn messages_after(&self, after_id: u64, limit: u32) -> Result<Vec<Value>, ApiError> {
        let request = ApiRequest::get("/messages")
            .query("sortOrder", "ASCENDING")
            .query("limit", limit.min(MAX_MESSAGES_PAGE))
            .query("filter", format!("id>{after_id}"))
            .label(format!("after id {after_id}"));
        self.api.send_json(&request).await
    }

    /// Blocked numbers with id at least `min_id`, ascending.
    pub async fn blocked_numbers_from(
        &self,
        min_id: u64,
        limit: u32,
    ) -> Result<Vec<BlockedNumber>, ApiError> {
        let request = ApiRequest::get("/blocked-numbers")
            .query("min-id", min_id)
            .query("limit", limit.min(MAX_BLOCKED_PAGE))
            .label(format!("min-id {min_id}"));
        self.api.send_json(&request).await
    }

    /// The account profile (credits, quota).
    pub async fn profile(&self) -> Result<Profile, ApiError> {
        self.api.send_json(&ApiRequest::get("/profile")).await
    }
}
