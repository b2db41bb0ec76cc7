//! OAuth 2.0 and private integration tokens: codes that work once, access tokens that expire on the
//! simulated clock, refresh tokens that rotate (a used one is refused), scopes per endpoint.

use super::errors::GhlError;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;

/// Read scope.
pub const READ: &str = "contacts.readonly";
/// Write scope.
pub const WRITE: &str = "contacts.write";

/// What an authorization code grants, and the redirect URI it was issued for (which the token
/// request must repeat, RFC 6749 §4.1.3).
#[derive(Debug, Clone)]
struct CodeGrant {
    scopes: Vec<String>,
    redirect_uri: Option<String>,
}

#[derive(Debug, Clone)]
struct AccessGrant {
    scopes: Vec<String>,
    expires_at: DateTime<Utc>,
}

/// Token bookkeeping of the emulated app.
#[derive(Debug, Default)]
pub struct AuthState {
    codes: HashMap<String, CodeGrant>,
    access: HashMap<String, AccessGrant>,
    refresh: HashMap<String, Vec<String>>,
    pit: HashMap<String, Vec<String>>,
    counter: u64,
}

/// What a token endpoint call answers.
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub scope: String,
}

impl AuthState {
    /// Registers an authorization code granting `scopes`, issued outside the authorization page
    /// (so the token request need not name a redirect URI).
    pub fn add_code(&mut self, code: &str, scopes: &[&str]) {
        self.codes.insert(
            code.to_string(),
            CodeGrant {
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                redirect_uri: None,
            },
        );
    }

    /// Registers a code the authorization page issued for `redirect_uri`.
    pub fn add_redirect_code(&mut self, code: &str, scopes: Vec<String>, redirect_uri: &str) {
        self.codes.insert(
            code.to_string(),
            CodeGrant {
                scopes,
                redirect_uri: Some(redirect_uri.to_string()),
            },
        );
    }

    /// Registers a private integration token.
    pub fn add_private_token(&mut self, token: &str, scopes: &[&str]) {
        self.pit.insert(
            token.to_string(),
            scopes.iter().map(|s| s.to_string()).collect(),
        );
    }

    fn issue(
        &mut self,
        scopes: Vec<String>,
        now: DateTime<Utc>,
        ttl: i64,
        seed: u64,
    ) -> IssuedTokens {
        self.counter += 1;
        let access_token = format!("sbx-at-{seed:x}-{:08x}", self.counter);
        let refresh_token = format!("sbx-rt-{seed:x}-{:08x}", self.counter);
        self.access.insert(
            access_token.clone(),
            AccessGrant {
                scopes: scopes.clone(),
                expires_at: now + Duration::seconds(ttl),
            },
        );
        self.refresh.insert(refresh_token.clone(), scopes.clone());
        IssuedTokens {
            access_token,
            refresh_token,
            expires_in: ttl,
            scope: scopes.join(" "),
        }
    }

    /// `grant_type=authorization_code`: a code works once, and only with the redirect URI it was
    /// issued for (a mismatch spends it, as a replayed code should be).
    pub fn exchange_code(
        &mut self,
        code: &str,
        redirect_uri: Option<&str>,
        now: DateTime<Utc>,
        ttl: i64,
        seed: u64,
    ) -> Option<IssuedTokens> {
        let grant = self.codes.remove(code)?;
        if grant.redirect_uri.is_some() && grant.redirect_uri.as_deref() != redirect_uri {
            return None;
        }
        Some(self.issue(grant.scopes, now, ttl, seed))
    }

    /// `grant_type=refresh_token`: rotates; the used refresh token stops working.
    pub fn refresh(
        &mut self,
        token: &str,
        now: DateTime<Utc>,
        ttl: i64,
        seed: u64,
    ) -> Option<IssuedTokens> {
        let scopes = self.refresh.remove(token)?;
        Some(self.issue(scopes, now, ttl, seed))
    }

    /// Revokes every OAuth access token (fault injection); refresh tokens and PITs survive.
    pub fn revoke_access_tokens(&mut self) {
        self.access.clear();
    }

    /// Checks a bearer token for a scope.
    pub fn authorize(
        &self,
        bearer: Option<&str>,
        scope: &str,
        now: DateTime<Utc>,
    ) -> Result<(), GhlError> {
        let Some(token) = bearer else {
            return Err(GhlError::unauthorized(
                "Invalid token: access token is invalid",
            ));
        };
        let scopes = if let Some(grant) = self.access.get(token) {
            if grant.expires_at <= now {
                return Err(GhlError::unauthorized(
                    "Invalid token: access token is invalid",
                ));
            }
            &grant.scopes
        } else if let Some(scopes) = self.pit.get(token) {
            scopes
        } else {
            return Err(GhlError::unauthorized(
                "Invalid token: access token is invalid",
            ));
        };
        if scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(GhlError::unauthorized(
                "The token is not authorized for this scope.",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_work_once_and_refresh_tokens_rotate() {
        let now = Utc::now();
        let mut auth = AuthState::default();
        auth.add_code("c", &[READ, WRITE]);
        let first = auth
            .exchange_code("c", None, now, 60, 1)
            .expect("first use");
        assert!(
            auth.exchange_code("c", None, now, 60, 1).is_none(),
            "single use"
        );
        let second = auth
            .refresh(&first.refresh_token, now, 60, 1)
            .expect("refresh");
        assert!(
            auth.refresh(&first.refresh_token, now, 60, 1).is_none(),
            "rotated"
        );
        assert!(
            auth.authorize(Some(&second.access_token), WRITE, now)
                .is_ok()
        );
        let later = now + Duration::seconds(61);
        assert!(
            auth.authorize(Some(&second.access_token), READ, later)
                .is_err(),
            "expired"
        );
    }

    #[test]
    fn a_page_issued_code_needs_its_redirect_uri() {
        let now = Utc::now();
        let mut auth = AuthState::default();
        let uri = "http://127.0.0.1:8976/cb";
        auth.add_redirect_code("c1", vec![READ.into()], uri);
        assert!(auth.exchange_code("c1", None, now, 60, 1).is_none());
        assert!(
            auth.exchange_code("c1", Some(uri), now, 60, 1).is_none(),
            "the failed attempt spent it"
        );
        auth.add_redirect_code("c2", vec![READ.into()], uri);
        let issued = auth
            .exchange_code("c2", Some(uri), now, 60, 1)
            .expect("same redirect URI");
        assert_eq!(issued.scope, READ);
    }

    #[test]
    fn readonly_tokens_cannot_write() {
        let now = Utc::now();
        let mut auth = AuthState::default();
        auth.add_private_token("pit-r", &[READ]);
        assert!(auth.authorize(Some("pit-r"), READ, now).is_ok());
        let err = auth
            .authorize(Some("pit-r"), WRITE, now)
            .expect_err("no write");
        assert_eq!(
            err.body["message"],
            "The token is not authorized for this scope."
        );
    }
}
