//! `[serve]`: the webhook receiver's settings.

use crate::secret::Secret;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[serve]`: where `contactsync serve` listens and what it accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address to listen on (`--listen` overrides).
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Seconds a client may take to send a request's headers.
    pub header_timeout_secs: u64,
    /// Seconds a client may take to send a request's body.
    pub body_timeout_secs: u64,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Seconds between micro-batches that turn the spooled events into an incremental run
    /// (`pipeline::micro_batch`). Unset: no micro-batches, the nightly run catches up on
    /// everything. Set, `run` waits for a batch holding the state lock instead of exiting 6.
    pub batch_interval_secs: Option<u64>,
    /// `[serve.ghl]`: GHL webhooks at `/webhooks/ghl`.
    pub ghl: ServeGhlConfig,
    /// `[serve.bulksms]`: BulkSMS webhooks at `/webhooks/bulksms/<path_token>`.
    pub bulksms: ServeBulkSmsConfig,
    /// `[serve.spool]`: the durable spool in `STATE/spool/`.
    pub spool: ServeSpoolConfig,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            max_body_bytes: 256 * 1024,
            header_timeout_secs: 10,
            body_timeout_secs: 10,
            max_connections: 1024,
            batch_interval_secs: None,
            ghl: ServeGhlConfig::default(),
            bulksms: ServeBulkSmsConfig::default(),
            spool: ServeSpoolConfig::default(),
        }
    }
}

/// `[serve.ghl]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeGhlConfig {
    /// File holding the Ed25519 public key (SPKI PEM) that signs `x-ghl-signature`, relative to the
    /// pipeline file. Default: HighLevel's published key.
    pub public_key_file: Option<PathBuf>,
    /// The same key inline (PEM text); at most one of the two.
    pub public_key_pem: Option<String>,
    /// The app id events must carry in `appId`. Default: the OAuth client id's part before the
    /// first `-`; no check with a private integration token.
    pub app_id: Option<String>,
    /// Events whose `timestamp` is older than this are refused (replay protection; later than
    /// 5 minutes ahead is refused too). GHL retries an event answered 429 up to 6 times about 10
    /// minutes apart with the first attempt's bytes, so the default, 75 minutes, takes every retry;
    /// a replay inside the window is refused by its `webhookId`.
    pub timestamp_window_secs: u64,
    /// RSA key for the legacy `x-wh-signature`. Not supported: HighLevel no longer sends it.
    pub rsa_public_key_file: Option<PathBuf>,
}

impl Default for ServeGhlConfig {
    fn default() -> Self {
        ServeGhlConfig {
            public_key_file: None,
            public_key_pem: None,
            app_id: None,
            timestamp_window_secs: 75 * 60,
            rsa_public_key_file: None,
        }
    }
}

/// `[serve.bulksms]`. Without `path_token` BulkSMS webhooks are not accepted at all.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeBulkSmsConfig {
    /// The secret last path segment of the webhook URL (BulkSMS signs nothing; its docs suggest a
    /// secret in the URL). Use `${ENV}`; at least 16 characters.
    pub path_token: Option<Secret>,
    /// Basic auth the webhook URL carries (`https://user:pass@host/...`), checked when set.
    pub basic_auth: Option<ServeBasicAuth>,
    /// Source networks (CIDRs, e.g. `"203.0.113.0/24"`) allowed to call; empty allows any.
    pub allow: Vec<String>,
}

/// Basic auth credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeBasicAuth {
    pub username: String,
    pub password: Secret,
}

/// `[serve.spool]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeSpoolConfig {
    /// Bytes of spool above which new events are answered 429 (GHL retries those).
    pub max_bytes: u64,
    /// Size at which a new segment file is started.
    pub segment_bytes: u64,
    /// Hours a `webhookId` is remembered to refuse a replay.
    pub dedup_retention_hours: u64,
}

impl Default for ServeSpoolConfig {
    fn default() -> Self {
        ServeSpoolConfig {
            max_bytes: 1 << 30,
            segment_bytes: 64 << 20,
            dedup_retention_hours: 24,
        }
    }
}

impl ServeConfig {
    /// Checks what serde cannot (pure). Errors name the key below `serve.`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.ghl.public_key_file.is_some() && self.ghl.public_key_pem.is_some() {
            return Err((
                "ghl".into(),
                "set public_key_file or public_key_pem, not both".into(),
            ));
        }
        if let Some(pem) = &self.ghl.public_key_pem {
            super::ghl::parse_public_key_pem(pem).map_err(|m| ("ghl.public_key_pem".into(), m))?;
        }
        if self.ghl.rsa_public_key_file.is_some() {
            return Err((
                "ghl.rsa_public_key_file".into(),
                "the legacy RSA x-wh-signature is not supported (HighLevel signs with Ed25519 \
                 x-ghl-signature); remove the key"
                    .into(),
            ));
        }
        if self.ghl.timestamp_window_secs == 0 {
            return Err((
                "ghl.timestamp_window_secs".into(),
                "must be positive".into(),
            ));
        }
        if self.ghl.timestamp_window_secs > self.spool.dedup_retention_hours.saturating_mul(3_600) {
            return Err((
                "ghl.timestamp_window_secs".into(),
                format!(
                    "{} s is longer than spool.dedup_retention_hours ({} h): a replay older than \
                     the remembered webhookIds would be accepted",
                    self.ghl.timestamp_window_secs, self.spool.dedup_retention_hours
                ),
            ));
        }
        if let Some(token) = &self.bulksms.path_token {
            let token = token.expose();
            if token.len() < 16
                || !token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err((
                    "bulksms.path_token".into(),
                    "must be at least 16 characters of letters, digits, '-' and '_'".into(),
                ));
            }
        }
        for cidr in &self.bulksms.allow {
            cidr.parse::<ipnet::IpNet>()
                .or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|e| {
                    (
                        "bulksms.allow".into(),
                        format!("{cidr:?} is not a CIDR: {e}"),
                    )
                })?;
        }
        if self.batch_interval_secs == Some(0) {
            return Err((
                "batch_interval_secs".into(),
                "must be positive (leave it out for no micro-batches)".into(),
            ));
        }
        if self.max_body_bytes == 0 || self.max_connections == 0 {
            return Err((
                "max_body_bytes".into(),
                "max_body_bytes and max_connections must be positive".into(),
            ));
        }
        if self.spool.segment_bytes == 0 || self.spool.max_bytes == 0 {
            return Err((
                "spool".into(),
                "max_bytes and segment_bytes must be positive".into(),
            ));
        }
        Ok(())
    }
}
