//! OAuth 2.0 and private integration tokens: codes that work once, access tokens that expire on the
//! simulated clock, refresh tokens that rotate (a used one is refused), scopes per endpoint. Every
//! token belongs to one subject: a location (location tokens and Private Integration Tokens) or
//! the agency (Company tokens), and works only for it.

use super::errors::GhlError;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;

/// Read scope.
pub const READ: &str = "contacts.readonly";
/// Write scope.
pub const WRITE: &str = "contacts.write";
/// Agency scope of `GET /oauth/installedLocations`.
pub const OAUTH_READ: &str = "oauth.readonly";
/// Agency scope of `POST /oauth/locationToken`.
pub const OAUTH_WRITE: &str = "oauth.write";

/// Whom a token acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A location (sub-account), by id.
    Location(String),
    /// The agency (company) that installed the app.
    Company,
}

/// Whom an authorization code was approved by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approver {
    /// A location admin: the code yields that location's tokens only.
    Location(String),
    /// An agency admin: `user_type=Company` yields a Company token; `Location` (or none) the
    /// token of `default_location`, as a single-location install would.
    Agency { default_location: String },
}

/// What an authorization code grants, and the redirect URI it was issued for (which the token
/// request must repeat, RFC 6749 §4.1.3).
#[derive(Debug, Clone)]
struct CodeGrant {
    scopes: Vec<String>,
    redirect_uri: Option<String>,
    approver: Approver,
}

#[derive(Debug, Clone)]
struct AccessGrant {
    scopes: Vec<String>,
    expires_at: DateTime<Utc>,
    subject: Subject,
}

#[derive(Debug, Clone)]
struct RefreshGrant {
    scopes: Vec<String>,
    subject: Subject,
}

/// Why a code exchange failed (the token endpoint's `error_description`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeError {
    InvalidCode,
    UserTypeMismatch,
}

/// Token bookkeeping of the emulated app.
#[derive(Debug, Default)]
pub struct AuthState {
    codes: HashMap<String, CodeGrant>,
    access: HashMap<String, AccessGrant>,
    refresh: HashMap<String, RefreshGrant>,
    pit: HashMap<String, (Vec<String>, String)>,
    counter: u64,
}

/// What a token endpoint call answers.
pub struct IssuedTokens {
    pub access_token: String,
    /// Empty for minted location tokens, which have none (`POST /oauth/locationToken`).
    pub refresh_token: String,
    pub expires_in: i64,
    pub scope: String,
    pub subject: Subject,
}

impl AuthState {
    /// Registers an authorization code granting `scopes`, issued outside the authorization page
    /// (so the token request need not name a redirect URI).
    pub fn add_code(&mut self, code: &str, scopes: &[&str], approver: Approver) {
        self.codes.insert(
            code.to_string(),
            CodeGrant {
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                redirect_uri: None,
                approver,
            },
        );
    }

    /// Registers a code the authorization page issued for `redirect_uri`.
    pub fn add_redirect_code(
        &mut self,
        code: &str,
        scopes: Vec<String>,
        redirect_uri: &str,
        approver: Approver,
    ) {
        self.codes.insert(
            code.to_string(),
            CodeGrant {
                scopes,
                redirect_uri: Some(redirect_uri.to_string()),
                approver,
            },
        );
    }

    /// Registers a private integration token of `location_id`.
    pub fn add_private_token(&mut self, token: &str, scopes: &[&str], location_id: &str) {
        self.pit.insert(
            token.to_string(),
            (
                scopes.iter().map(|s| s.to_string()).collect(),
                location_id.to_string(),
            ),
        );
    }

    fn issue(
        &mut self,
        scopes: Vec<String>,
        subject: Subject,
        with_refresh: bool,
        now: DateTime<Utc>,
        ttl: i64,
        seed: u64,
    ) -> IssuedTokens {
        self.counter += 1;
        let access_token = format!("sbx-at-{seed:x}-{:08x}", self.counter);
        self.access.insert(
            access_token.clone(),
            AccessGrant {
                scopes: scopes.clone(),
                expires_at: now + Duration::seconds(ttl),
                subject: subject.clone(),
            },
        );
        let refresh_token = if with_refresh {
            let token = format!("sbx-rt-{seed:x}-{:08x}", self.counter);
            self.refresh.insert(
                token.clone(),
                RefreshGrant {
                    scopes: scopes.clone(),
                    subject: subject.clone(),
                },
            );
            token
        } else {
            String::new()
        };
        IssuedTokens {
            access_token,
            refresh_token,
            expires_in: ttl,
            scope: scopes.join(" "),
            subject,
        }
    }

    /// `grant_type=authorization_code`: a code works once, and only with the redirect URI it was
    /// issued for (a mismatch spends it, as a replayed code should be). `user_type=Company` needs a
    /// code an agency admin approved.
    pub fn exchange_code(
        &mut self,
        code: &str,
        redirect_uri: Option<&str>,
        company: bool,
        now: DateTime<Utc>,
        ttl: i64,
        seed: u64,
    ) -> Result<IssuedTokens, ExchangeError> {
        let grant = self.codes.remove(code).ok_or(ExchangeError::InvalidCode)?;
        if grant.redirect_uri.is_some() && grant.redirect_uri.as_deref() != redirect_uri {
            return Err(ExchangeError::InvalidCode);
        }
        let subject = match (grant.approver, company) {
            (Approver::Agency { .. }, true) => Subject::Company,
            (Approver::Agency { default_location }, false) => Subject::Location(default_location),
            (Approver::Location(id), false) => Subject::Location(id),
            (Approver::Location(_), true) => return Err(ExchangeError::UserTypeMismatch),
        };
        // A location token never carries the agency's oauth.* scopes.
        let scopes = match subject {
            Subject::Company => grant.scopes,
            Subject::Location(_) => location_scopes(&grant.scopes),
        };
        Ok(self.issue(scopes, subject, true, now, ttl, seed))
    }

    /// `grant_type=refresh_token`: rotates; the used refresh token stops working.
    pub fn refresh(
        &mut self,
        token: &str,
        now: DateTime<Utc>,
        ttl: i64,
        seed: u64,
    ) -> Option<IssuedTokens> {
        let grant = self.refresh.remove(token)?;
        Some(self.issue(grant.scopes, grant.subject, true, now, ttl, seed))
    }

    /// `POST /oauth/locationToken`: a location token with the company grant's location scopes and
    /// no refresh token (the agency mints another when it expires).
    pub fn mint_location_token(
        &mut self,
        company_scopes: &[String],
        location_id: &str,
        now: DateTime<Utc>,
        ttl: i64,
        seed: u64,
    ) -> IssuedTokens {
        let scopes = location_scopes(company_scopes);
        self.issue(
            scopes,
            Subject::Location(location_id.to_string()),
            false,
            now,
            ttl,
            seed,
        )
    }

    /// Revokes every OAuth access token (fault injection); refresh tokens and PITs survive.
    pub fn revoke_access_tokens(&mut self) {
        self.access.clear();
    }

    /// Whom a live bearer token acts for, and its scopes.
    pub fn resolve(
        &self,
        bearer: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(Subject, Vec<String>), GhlError> {
        let invalid = || GhlError::unauthorized("Invalid token: access token is invalid");
        let token = bearer.ok_or_else(invalid)?;
        if let Some(grant) = self.access.get(token) {
            if grant.expires_at <= now {
                return Err(invalid());
            }
            Ok((grant.subject.clone(), grant.scopes.clone()))
        } else if let Some((scopes, location_id)) = self.pit.get(token) {
            Ok((Subject::Location(location_id.clone()), scopes.clone()))
        } else {
            Err(invalid())
        }
    }

    /// Checks a bearer token for a scope.
    #[cfg(test)]
    pub fn authorize(
        &self,
        bearer: Option<&str>,
        scope: &str,
        now: DateTime<Utc>,
    ) -> Result<Subject, GhlError> {
        let (subject, scopes) = self.resolve(bearer, now)?;
        require_scope(&scopes, scope)?;
        Ok(subject)
    }
}

/// The 401 GHL answers when a token lacks `scope`.
pub fn require_scope(scopes: &[String], scope: &str) -> Result<(), GhlError> {
    if scopes.iter().any(|s| s == scope) {
        Ok(())
    } else {
        Err(GhlError::unauthorized(
            "The token is not authorized for this scope.",
        ))
    }
}

/// A grant's scopes without the agency-only `oauth.*` ones.
fn location_scopes(scopes: &[String]) -> Vec<String> {
    scopes
        .iter()
        .filter(|s| !s.starts_with("oauth."))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_work_once_and_refresh_tokens_rotate() {
        let now = Utc::now();
        let mut auth = AuthState::default();
        auth.add_code("c", &[READ, WRITE], Approver::Location("L".into()));
        let first = auth
            .exchange_code("c", None, false, now, 60, 1)
            .expect("first use");
        assert!(
            auth.exchange_code("c", None, false, now, 60, 1).is_err(),
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
        let approver = Approver::Location("L".into());
        auth.add_redirect_code("c1", vec![READ.into()], uri, approver.clone());
        assert!(auth.exchange_code("c1", None, false, now, 60, 1).is_err());
        assert!(
            auth.exchange_code("c1", Some(uri), false, now, 60, 1)
                .is_err(),
            "the failed attempt spent it"
        );
        auth.add_redirect_code("c2", vec![READ.into()], uri, approver);
        let issued = auth
            .exchange_code("c2", Some(uri), false, now, 60, 1)
            .expect("same redirect URI");
        assert_eq!(issued.scope, READ);
    }

    #[test]
    fn readonly_tokens_cannot_write() {
        let now = Utc::now();
        let mut auth = AuthState::default();
        auth.add_private_token("pit-r", &[READ], "L");
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
