//! The two API clients of a pipeline file: each built from its own sections only.

use crate::api::ApiError;
use crate::api::bulksms::BulkSmsClient;
use crate::api::ghl::{GhlClient, token_store_path};
use crate::config::PipelineConfig;

/// The GHL client of a pipeline (`[ghl]`, `[http]`, tokens in the state directory).
pub fn ghl_client(config: &PipelineConfig) -> Result<GhlClient, ApiError> {
    GhlClient::new(
        &config.ghl,
        &config.http,
        token_store_path(&config.state_dir()),
    )
}

/// The BulkSMS client of a pipeline (`[bulksms]`, `[http]`).
pub fn bulksms_client(config: &PipelineConfig) -> Result<BulkSmsClient, ApiError> {
    BulkSmsClient::new(&config.bulksms, &config.http)
}
