//! The one HTTP layer (auth, rate limit, retry, redaction) and the GHL and BulkSMS clients on it.
//!
//! Both clients send every request through [`http::ApiClient`], so auth refresh, the rate limiter,
//! backoff and error context are written once.

pub mod agency;
pub mod auth;
pub mod authorize;
pub mod bulksms;
pub mod config;
pub mod error;
pub mod ghl;
pub mod grant_store;
pub mod http;
pub mod rate_limit;
pub mod retry;

pub use error::ApiError;
pub use http::{ApiClient, ApiRequest, RequestMetrics};
