//! `GET /v2/oauth/chooselocation`, HighLevel's authorization page, without the page: the emulated
//! location admin approves at once and the browser is redirected to `redirect_uri` with a new
//! single-use code for the scopes asked (docs/Authorization.md).
//!
//! # Documented choices (where HighLevel is silent)
//! - `state` is sent back unchanged, as RFC 6749 §4.1.2 requires; HighLevel's page does not
//!   mention it.
//! - An unknown `client_id`, or a `redirect_uri` that is missing or not an absolute http(s) URL,
//!   answers a 400 page and redirects nowhere (RFC 6749 §4.1.2.1: never send a code to an
//!   unverified address).
//! - A `response_type` other than `code` redirects with `error=unsupported_response_type`; no scope,
//!   or a scope the emulated app was not given (it has `contacts.readonly`, `contacts.write`, `oauth.readonly` and `oauth.write`),
//!   redirects with `error=invalid_scope`.
//! - The emulated admin is the agency's: its code yields a Company token with `user_type=Company`
//!   and the first location's token otherwise (what a single-location install gives).

use super::{App as Emu, auth, hex_of};
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// Scopes the emulated Marketplace app was configured with.
const APP_SCOPES: &[&str] = &[auth::READ, auth::WRITE, auth::OAUTH_READ, auth::OAUTH_WRITE];

/// The authorization page: approve and redirect.
pub async fn choose_location(State(emu): State<Emu>, RawQuery(query): RawQuery) -> Response {
    let mut response_type = None;
    let mut client_id = None;
    let mut redirect_uri = None;
    let mut scope = None;
    let mut state = None;
    for (key, value) in url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        let value = Some(value.into_owned());
        match key.as_ref() {
            "response_type" => response_type = value,
            "client_id" => client_id = value,
            "redirect_uri" => redirect_uri = value,
            "scope" => scope = value,
            "state" => state = value,
            _ => {}
        }
    }
    if client_id.as_deref() != Some(emu.credentials.client_id.as_str()) {
        return page(StatusCode::BAD_REQUEST, "Unknown client_id: no such app.");
    }
    let Some(target) = redirect_uri
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "redirect_uri is missing or not an absolute http(s) URL.",
        );
    };
    let redirect_uri = redirect_uri.unwrap_or_default();
    let back = |pairs: &[(&str, &str)]| {
        let mut url = target.clone();
        {
            let mut query = url.query_pairs_mut();
            for (k, v) in pairs {
                query.append_pair(k, v);
            }
            if let Some(state) = &state {
                query.append_pair("state", state);
            }
        }
        (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
    };
    if response_type.as_deref() != Some("code") {
        return back(&[
            ("error", "unsupported_response_type"),
            ("error_description", "response_type must be code"),
        ]);
    }
    let scopes: Vec<String> = scope
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if let Some(unknown) = scopes.iter().find(|s| !APP_SCOPES.contains(&s.as_str())) {
        let description = format!("scope {unknown} is not enabled for this app");
        return back(&[
            ("error", "invalid_scope"),
            ("error_description", &description),
        ]);
    }
    if scopes.is_empty() {
        return back(&[
            ("error", "invalid_scope"),
            ("error_description", "no scope requested"),
        ]);
    }
    let code = hex_of(&mut *emu.ids.lock().expect("id rng lock"), 20);
    let approver = auth::Approver::Agency {
        default_location: emu.credentials.location_id.clone(),
    };
    emu.auth
        .lock()
        .expect("auth lock")
        .add_redirect_code(&code, scopes, &redirect_uri, approver);
    back(&[("code", &code)])
}

fn page(status: StatusCode, message: &str) -> Response {
    (
        status,
        Html(format!("<h1>Authorization failed</h1><p>{message}</p>")),
    )
        .into_response()
}
