//! The API sections of the pipeline file (`[ghl]`, `[bulksms]`, `[http]`): what the clients and the
//! shared HTTP layer are built from. They live here, not in `config.rs`, so `api/` needs nothing of
//! the pipeline-level file (each client takes only its own section) and `config.rs` re-uses them.

use crate::env_vars::env_string;
use crate::secret::Secret;
use serde::Deserialize;

/// `[ghl]`: the HighLevel location and how to authenticate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GhlConfig {
    /// API base URL, `https://services.leadconnectorhq.com` in production.
    #[serde(deserialize_with = "env_string")]
    pub base_url: String,
    /// Location (sub-account) id every call is scoped to. Empty when the file names `locations`
    /// instead; the pipeline then runs once per location with this set to each id.
    #[serde(default, deserialize_with = "env_string")]
    pub location_id: String,
    /// Many locations in one run: a list of ids or `"all-installed"` (every location the agency
    /// app is installed in). Exclusive with `location_id`.
    #[serde(default)]
    pub locations: Option<LocationSelection>,
    /// Value of the `Version` header.
    #[serde(default = "default_ghl_version")]
    pub api_version: String,
    /// OAuth app or private integration token.
    pub auth: GhlAuthConfig,
    /// This pipeline's share of the location's rate limit.
    #[serde(default)]
    pub rate_limit: GhlRateLimitConfig,
}

/// `[ghl] locations`: which locations a multi-location pipeline runs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum LocationSelection {
    /// These location ids.
    List(Vec<String>),
    /// A word: only `"all-installed"` is accepted (checked by the pipeline file's validation).
    Word(String),
}

/// The word of `locations = "all-installed"`.
pub const ALL_INSTALLED: &str = "all-installed";

fn default_ghl_version() -> String {
    "2021-07-28".to_string()
}

/// How the pipeline authenticates to GHL.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GhlAuthConfig {
    /// A Marketplace app: tokens come from `contactsync auth ghl` and refresh by themselves.
    Oauth {
        #[serde(deserialize_with = "env_string")]
        client_id: String,
        client_secret: Secret,
        /// Authorization code to exchange on `auth ghl` when none is given on the command line.
        #[serde(default)]
        auth_code: Option<Secret>,
        /// Where the app sends the browser back with the code. A loopback address
        /// (`http://127.0.0.1:PORT/...` or `http://localhost:PORT/...`) lets `auth ghl` catch
        /// the code itself; it must be one of the app's registered redirect URLs.
        #[serde(default)]
        redirect_uri: Option<String>,
        /// The authorization page; HighLevel's (`https://marketplace.gohighlevel.com/v2/oauth/
        /// chooselocation`) when unset. White-labelled agencies use their own host.
        #[serde(default)]
        authorize_url: Option<String>,
    },
    /// A Company-level (agency) Marketplace app: `contactsync auth ghl` stores the agency's grant
    /// (`user_type=Company`), and each location's token is minted from it through
    /// `POST /oauth/locationToken` when needed.
    AgencyOauth {
        #[serde(deserialize_with = "env_string")]
        client_id: String,
        client_secret: Secret,
        /// Authorization code (approved by an agency admin) to exchange on `auth ghl`.
        #[serde(default)]
        auth_code: Option<Secret>,
        /// As for `oauth`.
        #[serde(default)]
        redirect_uri: Option<String>,
        /// As for `oauth`.
        #[serde(default)]
        authorize_url: Option<String>,
        /// Where the agency's grant is kept: `[state] url`'s database when set, else
        /// `<state_dir>/tokens/ghl-company.json` of the pipeline file; set when the file is loaded
        /// so that a per-location copy of the configuration (another `state_dir`) still finds the
        /// one agency grant.
        #[serde(skip)]
        company_token_store: crate::api::grant_store::GrantStore,
    },
    /// Static private integration tokens made in each location's settings: `token` for the one
    /// location of `location_id`, or `tokens` mapping location ids to their tokens (exactly one).
    PrivateToken {
        #[serde(default)]
        token: Option<Secret>,
        #[serde(default)]
        tokens: Option<std::collections::BTreeMap<String, Secret>>,
    },
}

/// The settings both OAuth kinds share.
#[derive(Debug, Clone, Copy)]
pub struct OauthApp<'a> {
    pub client_id: &'a str,
    pub auth_code: Option<&'a Secret>,
    pub redirect_uri: Option<&'a str>,
    pub authorize_url: Option<&'a str>,
}

impl GhlAuthConfig {
    /// The `oauth`/`agency_oauth` app's settings (`None` for private tokens).
    pub fn app(&self) -> Option<OauthApp<'_>> {
        match self {
            GhlAuthConfig::Oauth {
                client_id,
                auth_code,
                redirect_uri,
                authorize_url,
                ..
            }
            | GhlAuthConfig::AgencyOauth {
                client_id,
                auth_code,
                redirect_uri,
                authorize_url,
                ..
            } => Some(OauthApp {
                client_id,
                auth_code: auth_code.as_ref(),
                redirect_uri: redirect_uri.as_deref(),
                authorize_url: authorize_url.as_deref(),
            }),
            GhlAuthConfig::PrivateToken { .. } => None,
        }
    }

    /// The private integration token of `location_id`, or why there is none (naming the key).
    pub fn private_token_for(&self, location_id: &str) -> Result<&Secret, String> {
        match self {
            GhlAuthConfig::PrivateToken {
                token: Some(token),
                tokens: None,
            } => Ok(token),
            GhlAuthConfig::PrivateToken {
                token: None,
                tokens: Some(tokens),
            } => tokens
                .get(location_id)
                .ok_or_else(|| format!("ghl.auth.tokens has no token for location {location_id}")),
            GhlAuthConfig::PrivateToken { .. } => Err(PRIVATE_TOKEN_KEYS.to_string()),
            _ => Err("ghl.auth.kind is not private_token".to_string()),
        }
    }

    /// Checks what serde cannot: (key, message) of the first problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match self {
            GhlAuthConfig::PrivateToken { token, tokens } => match (token, tokens) {
                (Some(_), None) => Ok(()),
                (None, Some(tokens)) if tokens.is_empty() => {
                    Err(("ghl.auth.tokens", "lists no location".to_string()))
                }
                (None, Some(tokens)) => match tokens.keys().find(|id| id.trim().is_empty()) {
                    Some(_) => Err(("ghl.auth.tokens", "has an empty location id".to_string())),
                    None => Ok(()),
                },
                _ => Err(("ghl.auth.token", PRIVATE_TOKEN_KEYS.to_string())),
            },
            _ => Ok(()),
        }
    }
}

const PRIVATE_TOKEN_KEYS: &str = "kind = \"private_token\" takes exactly one of token (one location) and tokens (a table of location id = token)";

/// `[ghl.rate_limit]`: GHL allows 100 requests per 10 s and 200,000 a day per app and location.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GhlRateLimitConfig {
    /// Fraction of the location's budget this pipeline may use (other apps spend the rest).
    pub share: f64,
    /// Requests allowed per window by GHL.
    pub burst: u32,
    /// Window length in milliseconds.
    pub window_ms: u64,
    /// Requests allowed per day by GHL.
    pub daily: u32,
}

impl Default for GhlRateLimitConfig {
    fn default() -> Self {
        GhlRateLimitConfig {
            share: 1.0,
            burst: 100,
            window_ms: 10_000,
            daily: 200_000,
        }
    }
}

/// `[bulksms]`: the BulkSMS.com account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkSmsConfig {
    /// API base URL, `https://api.bulksms.com/v1` in production.
    #[serde(deserialize_with = "env_string")]
    pub base_url: String,
    /// API token id (Basic auth user).
    pub token_id: Secret,
    /// API token secret (Basic auth password).
    pub token_secret: Secret,
    /// With many locations on one account: the location that turns an inbound number no
    /// location holds and none texted into a lead (none: such numbers make no lead, with a
    /// warning).
    #[serde(default)]
    pub default_location: Option<String>,
}

/// `[http]`: the shared HTTP layer's timeouts and retry policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Whole-request timeout in seconds.
    pub timeout_secs: u64,
    /// Attempts per request, the first included.
    pub max_attempts: usize,
    /// First backoff delay in milliseconds (full jitter is applied).
    pub backoff_base_ms: u64,
    /// Largest backoff delay in milliseconds.
    pub backoff_max_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            timeout_secs: 30,
            max_attempts: 8,
            backoff_base_ms: 200,
            backoff_max_ms: 30_000,
        }
    }
}
