//! Verifying a GHL webhook: the Ed25519 `x-ghl-signature` over the exact body bytes, then the
//! envelope (`appId`, `locationId`, `timestamp`, `webhookId`).
//!
//! HighLevel's SDK (`@gohighlevel/api-client`) verifies only `x-ghl-signature`; the legacy RSA
//! `x-wh-signature` is documented as no longer sent, so it is not accepted here.

use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;
use std::time::Duration;

/// HighLevel's published Ed25519 webhook public key (SPKI PEM), used when the pipeline file names
/// no other.
pub const HIGHLEVEL_PUBLIC_KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAi2HR1srL4o18O8BRa7gVJY7G7bupbN3H9AwJrHCDiOg=
-----END PUBLIC KEY-----
";

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-ghl-signature";

/// Why a GHL webhook was refused. Logged, never told to the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GhlRefusal {
    #[error("no x-ghl-signature header")]
    MissingSignature,
    #[error("x-ghl-signature is not a base64 Ed25519 signature")]
    MalformedSignature,
    #[error("signature does not verify over the body")]
    BadSignature,
    #[error("body is not a JSON object with type, timestamp and webhookId: {0}")]
    MalformedBody(String),
    #[error("appId {0:?} is not this app's")]
    ForeignApp(String),
    #[error("locationId {0:?} is not this pipeline's")]
    ForeignLocation(String),
    #[error("event without locationId of type {0:?}")]
    MissingLocation(String),
    #[error("timestamp {0} is outside the accepted window")]
    Stale(String),
}

/// What the receiver keeps of a verified event besides its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedGhlEvent {
    pub event_type: String,
    pub webhook_id: String,
    pub timestamp: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    location_id: Option<String>,
    #[serde(default)]
    app_id: Option<String>,
    timestamp: String,
    webhook_id: String,
}

/// The checks of one pipeline's GHL webhooks.
#[derive(Debug, Clone)]
pub struct GhlVerifier {
    key: VerifyingKey,
    app_id: Option<String>,
    location_id: String,
    window: Duration,
}

/// Reads an Ed25519 public key in the SPKI PEM form HighLevel publishes.
pub fn parse_public_key_pem(pem: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_public_key_pem(pem.trim())
        .map_err(|e| format!("not an Ed25519 SPKI public key in PEM form: {e}"))
}

/// The app id HighLevel puts in `appId`: the OAuth client id's part before the first `-`, as the
/// official SDK derives it.
pub fn app_id_from_client_id(client_id: &str) -> String {
    client_id.split('-').next().unwrap_or(client_id).to_string()
}

/// How far ahead of this host's clock an event's `timestamp` may be (clock skew).
pub const FUTURE_SKEW: Duration = Duration::from_secs(300);

impl GhlVerifier {
    pub fn new(
        key: VerifyingKey,
        app_id: Option<String>,
        location_id: String,
        window: Duration,
    ) -> Self {
        GhlVerifier {
            key,
            app_id,
            location_id,
            window,
        }
    }

    /// Checks one request: the signature first (nothing of an unsigned body is trusted), then the
    /// envelope against this pipeline and `now`.
    pub fn verify(
        &self,
        signature: Option<&[u8]>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<VerifiedGhlEvent, GhlRefusal> {
        use base64::Engine as _;
        let signature = signature.ok_or(GhlRefusal::MissingSignature)?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(signature.trim_ascii())
            .map_err(|_| GhlRefusal::MalformedSignature)?;
        let signature = Signature::from_slice(&raw).map_err(|_| GhlRefusal::MalformedSignature)?;
        self.key
            .verify_strict(body, &signature)
            .map_err(|_| GhlRefusal::BadSignature)?;
        let envelope: Envelope =
            serde_json::from_slice(body).map_err(|e| GhlRefusal::MalformedBody(e.to_string()))?;
        if let (Some(ours), Some(theirs)) = (&self.app_id, &envelope.app_id)
            && ours != theirs
        {
            return Err(GhlRefusal::ForeignApp(theirs.clone()));
        }
        match &envelope.location_id {
            Some(location) if *location != self.location_id => {
                return Err(GhlRefusal::ForeignLocation(location.clone()));
            }
            Some(_) => {}
            // Only app (un)installs at company level come without a location.
            None if matches!(envelope.event_type.as_str(), "INSTALL" | "UNINSTALL") => {}
            None => return Err(GhlRefusal::MissingLocation(envelope.event_type)),
        }
        let timestamp = DateTime::parse_from_rfc3339(&envelope.timestamp)
            .map_err(|e| GhlRefusal::MalformedBody(format!("timestamp: {e}")))?
            .with_timezone(&Utc);
        // GHL retries (after a 429) resend the same signed bytes, so a retry carries the first
        // attempt's timestamp: the window into the past must cover its retries. Replays inside
        // it are refused by `webhookId`. Nothing legitimate comes from the future beyond skew.
        let window = chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::MAX);
        let age = now - timestamp;
        if age > window || -age > chrono::Duration::from_std(FUTURE_SKEW).expect("small") {
            return Err(GhlRefusal::Stale(envelope.timestamp));
        }
        if envelope.webhook_id.is_empty() {
            return Err(GhlRefusal::MalformedBody("empty webhookId".into()));
        }
        Ok(VerifiedGhlEvent {
            event_type: envelope.event_type,
            webhook_id: envelope.webhook_id,
            timestamp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlevels_published_key_parses() {
        parse_public_key_pem(HIGHLEVEL_PUBLIC_KEY_PEM).expect("the default key is valid");
    }

    #[test]
    fn the_app_id_is_the_client_ids_first_part() {
        assert_eq!(
            app_id_from_client_id("65f0a1b2c3d4e5f6a7b8c9d0-lt1abcde"),
            "65f0a1b2c3d4e5f6a7b8c9d0"
        );
        assert_eq!(app_id_from_client_id("plain"), "plain");
    }
}
