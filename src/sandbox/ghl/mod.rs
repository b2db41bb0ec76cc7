//! GHL API v2 emulator: OAuth 2.0, contacts, search, tasks, notes, appointments, tags, duplicate
//! search, per-location rate limits — answering as HighLevel's OpenAPI files and docs say.
//!
//! # Documented choices (where HighLevel is silent)
//! - `Version` must be `2021-07-28` or `2023-02-21`; a missing or other value answers 400
//!   `{"statusCode":400,"message":"Version header is missing or not supported"}`.
//! - Rate-limited answers are 429 `{"statusCode":429,"message":"Too Many Requests"}` with
//!   `Retry-After` (seconds to the end of the window), which GHL does not document; the
//!   `X-RateLimit-*` headers are sent on every contacts answer. `/oauth/token` is not limited.
//! - The burst window is fixed (aligned to multiples of its length on the simulated clock); the
//!   daily budget resets at 00:00 UTC.
//! - Search: default sort `dateAdded` descending; ties broken by id ascending. `searchAfter` is
//!   `[sortValue, id]` with the sort value in epoch ms (or the field's text). A write reaches search
//!   `--index-lag-ms` after it happens; until then the contact is missing from search results
//!   (GET by id sees it at once).
//! - `/contacts/search/duplicate` answers `{"contact": {...}}` or `{"contact": null}`, matching
//!   email first (case-insensitive), then phone (E.164 after normalising the query).
//! - Only `GET /contacts/{id}` (and the answers of writes) carry `dnd` and `dndSettings`: search,
//!   the duplicate search, the deprecated list and contacts of a business leave them out, as
//!   integrators report of GHL's search (highlevel-api-docs issue 43). Search can still filter on
//!   them (`dndSettings.SMS.status`).
//! - A search filter on `phone` with `eq`/`not_eq` compares numbers by their last ten digits, as
//!   the duplicate search does, so `+14155550134` finds a contact imported as `(415) 555-0134`.
//! - Phones written through the API are stored E.164 (read with the contact's country, else US);
//!   seeded legacy records keep the format they were imported with.
//! - Refresh tokens are single-use (rotation); an unknown or used one answers 400
//!   `{"error":"invalid_grant","error_description":"Invalid refresh token"}` (OAuth 2.0 §5.2).
//! - The authorization page (`GET /v2/oauth/chooselocation`) has no page: the admin approves at
//!   once and the browser is redirected with a new code and the request's `state`
//!   (see `authorize.rs`).
//! - Upsert matches email first, then phone (the location's priority sequence); with duplicates
//!   forbidden, `POST /contacts/` of a known email/phone answers 400 with `meta.contactId`.

mod auth;
mod authorize;
mod children;
mod contacts;
mod errors;
mod fields;
mod rate_limit;
mod search;
pub mod state;

use super::seed::SeedData;
use super::{SandboxCore, SandboxOptions};
use auth::AuthState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Form, Json, Router};
use errors::GhlError;
use rate_limit::LocationLimiter;
use serde::Deserialize;
use serde_json::json;
use state::GhlState;
use std::sync::{Arc, Mutex, RwLock};

/// Credentials the sandbox prints in its ready line.
#[derive(Debug, Clone)]
pub struct GhlCredentials {
    pub location_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub auth_code: String,
    pub private_token: String,
}

/// The emulated GHL location.
pub struct GhlEmulator {
    core: Arc<SandboxCore>,
    options: SandboxOptions,
    credentials: GhlCredentials,
    readonly_code: String,
    readonly_token: String,
    state: RwLock<GhlState>,
    auth: Mutex<AuthState>,
    limiter: Mutex<LocationLimiter>,
    ids: Mutex<rand_chacha::ChaCha8Rng>,
    search_totals: Mutex<std::collections::HashMap<String, (u64, usize)>>,
}

/// A GHL-style 20-character alphanumeric id from a seeded RNG.
pub fn ghl_id(rng: &mut impl rand::Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..20)
        .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
        .collect()
}

impl GhlEmulator {
    /// Builds the location from the seed.
    pub fn new(options: &SandboxOptions, seed: &SeedData, core: Arc<SandboxCore>) -> Self {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(core.seed ^ 0x6A1);
        let credentials = GhlCredentials {
            location_id: ghl_id(&mut rng),
            client_id: format!("{}-{}", hex_of(&mut rng, 12), "sbxapp"),
            client_secret: hex_of(&mut rng, 16),
            auth_code: hex_of(&mut rng, 20),
            private_token: format!("pit-{}", hex_of(&mut rng, 16)),
        };
        let readonly_code = hex_of(&mut rng, 20);
        let readonly_token = format!("pit-{}", hex_of(&mut rng, 16));
        let mut auth = AuthState::default();
        auth.add_code(&credentials.auth_code, &[auth::READ, auth::WRITE]);
        auth.add_code(&readonly_code, &[auth::READ]);
        auth.add_private_token(&credentials.private_token, &[auth::READ, auth::WRITE]);
        auth.add_private_token(&readonly_token, &[auth::READ]);
        let state = GhlState::from_seed(
            &credentials.location_id,
            &seed.contacts,
            &seed.tasks,
            &seed.notes,
            &seed.appointments,
        );
        GhlEmulator {
            limiter: Mutex::new(LocationLimiter::new(
                options.rate_limit,
                options.rate_limit_burst,
                options.rate_limit_window_ms,
                options.rate_limit_daily,
            )),
            core,
            options: options.clone(),
            credentials,
            readonly_code,
            readonly_token,
            state: RwLock::new(state),
            auth: Mutex::new(auth),
            ids: Mutex::new(rng),
            search_totals: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Sends a webhook event of this location to the registered receiver, if any. `appId` is the
    /// client id's part before the first `-`, as HighLevel's is.
    pub fn emit_webhook(
        &self,
        event_type: &str,
        fields: serde_json::Map<String, serde_json::Value>,
    ) {
        let app_id = self
            .credentials
            .client_id
            .split('-')
            .next()
            .unwrap_or_default();
        self.core.webhooks.emit_ghl(
            &self.core.faults.profile(),
            event_type,
            fields,
            &self.credentials.location_id,
            app_id,
            self.core.clock.now(),
        );
    }

    /// Credentials for the ready line.
    pub fn credentials(&self) -> GhlCredentials {
        self.credentials.clone()
    }

    /// `{"contacts": [...], "tasks": [...], "notes": [...]}` in API shapes.
    pub fn state_json(&self) -> serde_json::Value {
        self.state.read().expect("ghl state lock").to_json()
    }

    fn new_id(&self) -> String {
        ghl_id(&mut *self.ids.lock().expect("id rng lock"))
    }

    fn now_ms(&self) -> i64 {
        self.core.clock.now().timestamp_millis()
    }
}

fn hex_of(rng: &mut impl rand::Rng, bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rng.next_u32() as u8))
        .collect()
}

type Emu = Arc<GhlEmulator>;

/// The API routes, relative to the GHL base URL.
pub fn router(emu: Arc<GhlEmulator>) -> Router {
    let api = Router::new()
        .route("/contacts", get(contacts::list).post(contacts::create))
        .route("/contacts/", get(contacts::list).post(contacts::create))
        .route("/contacts/search", post(search::search))
        .route("/contacts/search/duplicate", get(contacts::duplicate))
        .route("/contacts/upsert", post(contacts::upsert))
        .route(
            "/contacts/business/{business_id}",
            get(contacts::by_business),
        )
        .route(
            "/contacts/{contact_id}",
            get(contacts::get_one)
                .put(contacts::update)
                .delete(contacts::delete),
        )
        .route(
            "/contacts/{contact_id}/tasks",
            get(children::list_tasks).post(children::create_task),
        )
        .route(
            "/contacts/{contact_id}/tasks/{task_id}",
            get(children::get_task)
                .put(children::update_task)
                .delete(children::delete_task),
        )
        .route(
            "/contacts/{contact_id}/tasks/{task_id}/completed",
            put(children::complete_task),
        )
        .route(
            "/contacts/{contact_id}/notes",
            get(children::list_notes).post(children::create_note),
        )
        .route(
            "/contacts/{contact_id}/notes/{note_id}",
            get(children::get_note)
                .put(children::update_note)
                .delete(children::delete_note),
        )
        .route(
            "/contacts/{contact_id}/appointments",
            get(children::appointments),
        )
        .route(
            "/contacts/{contact_id}/tags",
            post(children::add_tags).delete(children::remove_tags),
        )
        .route_layer(middleware::from_fn_with_state(emu.clone(), gate))
        .with_state(emu.clone());
    Router::new()
        .route("/oauth/token", post(token))
        .route("/v2/oauth/chooselocation", get(authorize::choose_location))
        .with_state(emu)
        .merge(api)
}

/// Emulator-specific control routes under `/_sandbox/ghl`.
pub fn control_router(emu: Arc<GhlEmulator>) -> Router {
    Router::new()
        .route("/credentials", get(credentials_route))
        .with_state(emu)
}

async fn credentials_route(State(emu): State<Emu>) -> Response {
    Json(json!({
        "location_id": emu.credentials.location_id,
        "client_id": emu.credentials.client_id,
        "client_secret": emu.credentials.client_secret,
        "auth_code": emu.credentials.auth_code,
        "readonly_auth_code": emu.readonly_code,
        "private_token": emu.credentials.private_token,
        "readonly_private_token": emu.readonly_token,
    }))
    .into_response()
}

/// Everything a contacts request passes before its handler: token revocation faults, the rate
/// limiter, the `Version` header, the bearer token and its scope.
async fn gate(State(emu): State<Emu>, req: Request, next: Next) -> Response {
    if emu.core.faults.tick_ghl_revocation() {
        emu.auth.lock().expect("auth lock").revoke_access_tokens();
    }
    let now_ms = emu.now_ms();
    let (decision, limit_headers) = {
        let mut limiter = emu.limiter.lock().expect("limiter lock");
        let d = limiter.check(now_ms);
        (d, limiter.headers(&d))
    };
    let mut response = if !decision.allowed {
        emu.core.stats.record_rate_limited();
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"statusCode": 429, "message": "Too Many Requests"})),
        )
            .into_response();
        let secs = (decision.reset_in_ms + 999) / 1000;
        r.headers_mut()
            .insert("retry-after", HeaderValue::from(secs.max(1)));
        r
    } else {
        match check_request(&emu, &req) {
            Ok(()) => next.run(req).await,
            Err(e) => e.into_response(),
        }
    };
    response.headers_mut().extend(limit_headers);
    response
}

fn check_request(emu: &GhlEmulator, req: &Request) -> Result<(), GhlError> {
    let version = req
        .headers()
        .get("version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !matches!(version, "2021-07-28" | "2023-02-21") {
        return Err(GhlError::bad_request(
            "Version header is missing or not supported",
        ));
    }
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let read_only = req.method() == Method::GET || req.uri().path().ends_with("/contacts/search");
    let scope = if read_only { auth::READ } else { auth::WRITE };
    emu.auth
        .lock()
        .expect("auth lock")
        .authorize(bearer, scope, emu.core.clock.now())
}

#[derive(Deserialize)]
struct TokenForm {
    client_id: Option<String>,
    client_secret: Option<String>,
    grant_type: Option<String>,
    code: Option<String>,
    refresh_token: Option<String>,
    redirect_uri: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn token(State(emu): State<Emu>, Form(form): Form<TokenForm>) -> Response {
    if form.client_id.as_deref() != Some(emu.credentials.client_id.as_str())
        || form.client_secret.as_deref() != Some(emu.credentials.client_secret.as_str())
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    let now = emu.core.clock.now();
    let ttl = emu.options.token_ttl_secs;
    let seed = emu.core.seed;
    let issued = {
        let mut auth = emu.auth.lock().expect("auth lock");
        match form.grant_type.as_deref() {
            Some("authorization_code") => form
                .code
                .as_deref()
                .and_then(|c| auth.exchange_code(c, form.redirect_uri.as_deref(), now, ttl, seed))
                .ok_or("Invalid authorization code"),
            Some("refresh_token") => form
                .refresh_token
                .as_deref()
                .and_then(|t| auth.refresh(t, now, ttl, seed))
                .ok_or("Invalid refresh token"),
            _ => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "grant_type must be authorization_code or refresh_token",
                );
            }
        }
    };
    match issued {
        Ok(t) => {
            emu.core.stats.record_write();
            Json(json!({
                "access_token": t.access_token,
                "token_type": "Bearer",
                "expires_in": t.expires_in,
                "refresh_token": t.refresh_token,
                "scope": t.scope,
                "userType": "Location",
                "locationId": emu.credentials.location_id,
                "companyId": "sbxCompany0000000000",
                "userId": "sbxUser0000000000000",
            }))
            .into_response()
        }
        Err(description) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description),
    }
}
