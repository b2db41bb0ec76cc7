//! The two API clients of a pipeline file: each built from its own sections only.

use crate::api::ApiError;
use crate::api::bulksms::BulkSmsClient;
use crate::api::ghl::{GhlClient, token_store_path};
use crate::clock::Clock;
use crate::config::PipelineConfig;
use std::sync::Arc;

/// The GHL client of a pipeline (`[ghl]`, `[http]`, tokens in the state directory, their expiry
/// judged by `clock`).
pub fn ghl_client(config: &PipelineConfig, clock: Arc<dyn Clock>) -> Result<GhlClient, ApiError> {
    GhlClient::new(
        &config.ghl,
        &config.http,
        token_store_path(&config.state_dir()),
        clock,
    )
}

/// The BulkSMS client of a pipeline (`[bulksms]`, `[http]`).
pub fn bulksms_client(config: &PipelineConfig) -> Result<BulkSmsClient, ApiError> {
    BulkSmsClient::new(&config.bulksms, &config.http)
}

/// The locations a pipeline's GHL grant covers, for `locations = "all-installed"`: with an agency
/// grant (`agency_oauth`), those where the app is installed (`GET /oauth/installedLocations`, every
/// page); with per-location private integration tokens (`tokens`), the table's location ids,
/// sorted. A single-location grant (`oauth`, or one `token`) lists nothing to discover: an error.
pub async fn installed_ghl_locations(
    config: &PipelineConfig,
    clock: Arc<dyn Clock>,
) -> Result<Vec<crate::api::agency::InstalledLocation>, ApiError> {
    use crate::api::agency::{AgencyAuth, InstalledLocation};
    use crate::config::GhlAuthConfig;
    match &config.ghl.auth {
        GhlAuthConfig::AgencyOauth {
            company_token_store,
            ..
        } => {
            AgencyAuth::shared(&config.ghl, &config.http, company_token_store, clock)?
                .installed_locations()
                .await
        }
        GhlAuthConfig::PrivateToken {
            tokens: Some(tokens),
            ..
        } => Ok(tokens
            .keys()
            .map(|id| InstalledLocation {
                id: id.clone(),
                name: String::new(),
            })
            .collect()),
        _ => Err(ApiError::Auth {
            api: "ghl".into(),
            message: "discovering installed locations needs ghl.auth.kind = \"agency_oauth\" or a ghl.auth.tokens table; this grant covers one location".into(),
        }),
    }
}
