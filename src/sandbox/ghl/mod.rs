//! GHL API v2 emulator: OAuth 2.0, contacts, search, tasks, notes, appointments, tags, duplicate
//! search, per-location rate limits — answering as HighLevel's OpenAPI files and docs say.
//! Over 600 lines because the agency (company grant, its locations) and each location's routing,
//! token and budget checks are one request path; the endpoints themselves live in the submodules.
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
//!
//! # Locations and the agency
//! - The sandbox emulates one agency (company) with `--locations N` locations that installed the
//!   app, plus one location of the company that did not (so `isInstalled` filters something).
//!   Each location has its own seeded contacts, Private Integration Token and rate budget (GHL's
//!   limit is per app per resource); the agency has its own budget for `/oauth/installedLocations`
//!   and `/oauth/locationToken`.
//! - A token works for its own location only: another `locationId` in the query or body answers
//!   403 "The token does not have access to this location." (as it does for a contact, task or note
//!   id of another location; an id no location has stays 400 "Contact with id X not found").
//! - A Company token on a location route, or a location token on an agency route, answers 401
//!   "This authClass type is not allowed to access this scope." (the text integrators report).
//! - A minted location token has no refresh token (the spec's response has none): the agency
//!   mints another. Minting one for a location where the app is not installed answers 400
//!   `{"statusCode":400,"message":"The app is not installed on this location"}`; for a location of
//!   no company of this token, 403 as above.

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
use auth::{Approver, AuthState, Subject};
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Form, Json, Router};
use errors::GhlError;
use rate_limit::LocationLimiter;
use serde::Deserialize;
use serde_json::json;
use state::GhlState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Credentials the sandbox prints in its ready line (of the first location and the app).
#[derive(Debug, Clone)]
pub struct GhlCredentials {
    pub location_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub auth_code: String,
    pub private_token: String,
}

/// One location as the ready line and `/_sandbox/ghl/locations` describe it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct LocationCredentials {
    /// The location id (`locationId`).
    pub id: String,
    /// Its name, as `/oauth/installedLocations` lists it.
    pub name: String,
    /// Its Private Integration Token (contacts.readonly and contacts.write).
    pub private_token: String,
}

/// One emulated location: its contacts, its rate budget, its id generator.
pub struct GhlLocation {
    core: Arc<SandboxCore>,
    options: SandboxOptions,
    location_id: String,
    name: String,
    address: String,
    private_token: String,
    app_id: String,
    state: RwLock<GhlState>,
    limiter: Mutex<LocationLimiter>,
    ids: Mutex<rand_chacha::ChaCha8Rng>,
    search_totals: Mutex<HashMap<String, (u64, usize)>>,
}

/// The emulated Marketplace app and the agency that installed it on its locations.
pub struct GhlEmulator {
    core: Arc<SandboxCore>,
    options: SandboxOptions,
    credentials: GhlCredentials,
    readonly_code: String,
    readonly_token: String,
    company_id: String,
    company_auth_code: String,
    auth: Mutex<AuthState>,
    /// The agency's own budget (`/oauth/installedLocations`, `/oauth/locationToken`).
    company_limiter: Mutex<LocationLimiter>,
    /// Installed locations, in order; the first is the one of the single-location ready line.
    locations: Vec<Arc<GhlLocation>>,
    by_id: HashMap<String, usize>,
    /// A location of the company where the app is not installed.
    not_installed: (String, String),
    ids: Mutex<rand_chacha::ChaCha8Rng>,
}

/// A GHL-style 20-character alphanumeric id from a seeded RNG.
pub fn ghl_id(rng: &mut impl rand::Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..20)
        .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
        .collect()
}

/// The seed of location `index`'s data: the sandbox's seed for the first (so one location is
/// what it always was), a mix of it and the index for the others.
pub fn location_seed(seed: u64, index: usize) -> u64 {
    if index == 0 {
        seed
    } else {
        seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

fn limiter(options: &SandboxOptions) -> LocationLimiter {
    LocationLimiter::new(
        options.rate_limit,
        options.rate_limit_burst,
        options.rate_limit_window_ms,
        options.rate_limit_daily,
    )
}

impl GhlEmulator {
    /// Builds the agency's locations, one per seed (`seeds[0]` is the first location's).
    pub fn new(options: &SandboxOptions, seeds: &[&SeedData], core: Arc<SandboxCore>) -> Self {
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
        let app_id = credentials
            .client_id
            .split('-')
            .next()
            .unwrap_or_default()
            .to_string();
        // The agency's ids come from their own stream so the first location's are as they were.
        let mut agency_rng = rand_chacha::ChaCha8Rng::seed_from_u64(core.seed ^ 0xA6E);
        let company_id = ghl_id(&mut agency_rng);
        let company_auth_code = hex_of(&mut agency_rng, 20);
        let not_installed = (
            ghl_id(&mut agency_rng),
            "Sandbox Location (not installed)".into(),
        );
        let mut auth = AuthState::default();
        let first = Approver::Location(credentials.location_id.clone());
        auth.add_code(
            &credentials.auth_code,
            &[auth::READ, auth::WRITE],
            first.clone(),
        );
        auth.add_code(&readonly_code, &[auth::READ], first);
        auth.add_code(
            &company_auth_code,
            &[auth::READ, auth::WRITE, auth::OAUTH_READ, auth::OAUTH_WRITE],
            Approver::Agency {
                default_location: credentials.location_id.clone(),
            },
        );
        auth.add_private_token(
            &credentials.private_token,
            &[auth::READ, auth::WRITE],
            &credentials.location_id,
        );
        auth.add_private_token(&readonly_token, &[auth::READ], &credentials.location_id);

        let mut locations = Vec::with_capacity(seeds.len().max(1));
        let mut first_rng = Some(rng);
        for (index, seed) in seeds.iter().enumerate() {
            let (location_id, private_token, ids) = match first_rng.take() {
                Some(rng) => (
                    credentials.location_id.clone(),
                    credentials.private_token.clone(),
                    rng,
                ),
                None => {
                    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
                        location_seed(core.seed, index) ^ 0x6A1,
                    );
                    let id = ghl_id(&mut rng);
                    let token = format!("pit-{}", hex_of(&mut rng, 16));
                    auth.add_private_token(&token, &[auth::READ, auth::WRITE], &id);
                    (id, token, rng)
                }
            };
            let state = GhlState::from_seed(
                &location_id,
                &seed.contacts,
                &seed.tasks,
                &seed.notes,
                &seed.appointments,
            );
            locations.push(Arc::new(GhlLocation {
                core: core.clone(),
                options: options.clone(),
                name: format!("Sandbox Location {}", index + 1),
                address: format!("{} Main St, Springfield, IL 62701, USA", 100 + index),
                location_id,
                private_token,
                app_id: app_id.clone(),
                state: RwLock::new(state),
                limiter: Mutex::new(limiter(options)),
                ids: Mutex::new(ids),
                search_totals: Mutex::new(HashMap::new()),
            }));
        }
        let by_id = locations
            .iter()
            .enumerate()
            .map(|(i, l)| (l.location_id.clone(), i))
            .collect();
        GhlEmulator {
            company_limiter: Mutex::new(limiter(options)),
            ids: Mutex::new(agency_rng),
            core,
            options: options.clone(),
            credentials,
            readonly_code,
            readonly_token,
            company_id,
            company_auth_code,
            auth: Mutex::new(auth),
            locations,
            by_id,
            not_installed,
        }
    }

    /// Sends a webhook event of the first location to the registered receiver, if any.
    pub fn emit_webhook(
        &self,
        event_type: &str,
        fields: serde_json::Map<String, serde_json::Value>,
    ) {
        self.locations[0].emit_webhook(event_type, fields);
    }

    /// Credentials for the ready line.
    pub fn credentials(&self) -> GhlCredentials {
        self.credentials.clone()
    }

    /// The agency's company id.
    pub fn company_id(&self) -> &str {
        &self.company_id
    }

    /// A code an agency admin approved: `user_type=Company` exchanges it for a Company token.
    pub fn company_auth_code(&self) -> &str {
        &self.company_auth_code
    }

    /// The installed locations, in order.
    pub fn location_credentials(&self) -> Vec<LocationCredentials> {
        self.locations
            .iter()
            .map(|l| LocationCredentials {
                id: l.location_id.clone(),
                name: l.name.clone(),
                private_token: l.private_token.clone(),
            })
            .collect()
    }

    /// `{"contacts": [...], "tasks": [...], "notes": [...]}` of a location (the first when `None`),
    /// or `None` for an unknown id.
    pub fn state_json(&self, location_id: Option<&str>) -> Option<serde_json::Value> {
        self.location(location_id.unwrap_or(&self.credentials.location_id))
            .map(|l| l.state.read().expect("ghl state lock").to_json())
    }

    pub(super) fn location(&self, id: &str) -> Option<&Arc<GhlLocation>> {
        self.by_id.get(id).map(|&i| &self.locations[i])
    }
}

impl GhlLocation {
    /// Sends a webhook event of this location to the registered receiver, if any. `appId` is the
    /// client id's part before the first `-`, as HighLevel's is.
    pub fn emit_webhook(
        &self,
        event_type: &str,
        fields: serde_json::Map<String, serde_json::Value>,
    ) {
        self.core.webhooks.emit_ghl(
            &self.core.faults.profile(),
            event_type,
            fields,
            &self.location_id,
            &self.app_id,
            self.core.clock.now(),
        );
    }

    fn new_id(&self) -> String {
        ghl_id(&mut *self.ids.lock().expect("id rng lock"))
    }

    fn now_ms(&self) -> i64 {
        self.core.clock.now().timestamp_millis()
    }

    fn holds(&self, id: &str) -> bool {
        let state = self.state.read().expect("ghl state lock");
        state.contacts.contains_key(id)
    }
}

fn hex_of(rng: &mut impl rand::Rng, bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rng.next_u32() as u8))
        .collect()
}

/// The location a request acts for, as the route handlers see it.
type Emu = Arc<GhlLocation>;
/// The app and agency, as the OAuth routes and the gates see them.
type App = Arc<GhlEmulator>;

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
        .route_layer(middleware::from_fn_with_state(emu.clone(), gate));
    let agency = Router::new()
        .route("/oauth/locationToken", post(location_token))
        .route("/oauth/installedLocations", get(installed_locations))
        .route_layer(middleware::from_fn_with_state(emu.clone(), agency_gate))
        .with_state(emu.clone());
    Router::new()
        .route("/oauth/token", post(token))
        .route("/v2/oauth/chooselocation", get(authorize::choose_location))
        .with_state(emu)
        .merge(agency)
        .merge(api)
}

/// Emulator-specific control routes under `/_sandbox/ghl`.
pub fn control_router(emu: Arc<GhlEmulator>) -> Router {
    Router::new()
        .route("/credentials", get(credentials_route))
        .route("/reinstall", post(reinstall_route))
        .route("/locations", get(locations_route))
        .route(
            "/contacts/{contact_id}/type",
            post(contacts::set_type_as_a_user),
        )
        .with_state(emu)
}

/// `POST /_sandbox/ghl/reinstall`: a new single-use authorization code for the sandbox location,
/// as installing the app again gives in GHL. An operator needs one when a grant is lost (a
/// process killed after GHL rotated the refresh token but before the new one was stored).
async fn reinstall_route(State(emu): State<App>) -> Response {
    // Named like the authorization page's codes, from the emulator's id generator: two
    // reinstalls never hand out one code.
    let code = hex_of(&mut *emu.ids.lock().expect("id rng lock"), 20);
    emu.auth.lock().expect("auth state").add_code(
        &code,
        &[auth::READ, auth::WRITE],
        Approver::Location(emu.credentials.location_id.clone()),
    );
    Json(json!({ "auth_code": code })).into_response()
}

async fn credentials_route(State(emu): State<App>) -> Response {
    Json(json!({
        "location_id": emu.credentials.location_id,
        "client_id": emu.credentials.client_id,
        "client_secret": emu.credentials.client_secret,
        "auth_code": emu.credentials.auth_code,
        "readonly_auth_code": emu.readonly_code,
        "private_token": emu.credentials.private_token,
        "readonly_private_token": emu.readonly_token,
        "company_id": emu.company_id,
        "company_auth_code": emu.company_auth_code,
    }))
    .into_response()
}

async fn locations_route(State(emu): State<App>) -> Response {
    Json(json!({ "locations": emu.location_credentials() })).into_response()
}

/// The 429 of a spent budget, with the seconds to the window's end.
fn rate_limited(emu: &GhlEmulator, reset_in_ms: i64) -> Response {
    emu.core.stats.record_rate_limited();
    let mut r = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({"statusCode": 429, "message": "Too Many Requests"})),
    )
        .into_response();
    let secs = (reset_in_ms + 999) / 1000;
    r.headers_mut()
        .insert("retry-after", HeaderValue::from(secs.max(1)));
    r
}

/// Counts a request against a budget: the 429 when it is spent, and the headers to send.
fn spend(emu: &GhlEmulator, limiter: &Mutex<LocationLimiter>) -> (Option<Response>, HeaderMap) {
    let now_ms = emu.core.clock.now().timestamp_millis();
    let mut limiter = limiter.lock().expect("limiter lock");
    let decision = limiter.check(now_ms);
    let headers = limiter.headers(&decision);
    let refused = (!decision.allowed).then(|| rate_limited(emu, decision.reset_in_ms));
    (refused, headers)
}

fn check_version(req: &Request) -> Result<(), GhlError> {
    let version = req
        .headers()
        .get("version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if matches!(version, "2021-07-28" | "2023-02-21") {
        Ok(())
    } else {
        Err(GhlError::bad_request(
            "Version header is missing or not supported",
        ))
    }
}

fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

fn wrong_auth_class() -> GhlError {
    GhlError::unauthorized("This authClass type is not allowed to access this scope.")
}

/// Everything a location request passes before its handler: token revocation faults, the token
/// (which picks the location), that location's rate limiter, the `Version` header, the scope, and
/// a contact id of another location. The handler gets the location as an extension.
async fn gate(State(emu): State<App>, mut req: Request, next: Next) -> Response {
    if emu.core.faults.tick_ghl_revocation() {
        emu.auth.lock().expect("auth lock").revoke_access_tokens();
    }
    let resolved = emu
        .auth
        .lock()
        .expect("auth lock")
        .resolve(bearer(&req), emu.core.clock.now());
    let (location, scopes) = match resolved {
        Ok((Subject::Location(id), scopes)) => match emu.location(&id) {
            Some(location) => (location.clone(), scopes),
            None => return GhlError::forbidden_location().into_response(),
        },
        Ok((Subject::Company, _)) => return wrong_auth_class().into_response(),
        Err(e) => return e.into_response(),
    };
    let (refused, limit_headers) = spend(&emu, &location.limiter);
    let mut response = match refused {
        Some(r) => r,
        None => match check_request(&emu, &location, &scopes, &req) {
            Ok(()) => {
                req.extensions_mut().insert(location);
                next.run(req).await
            }
            Err(e) => e.into_response(),
        },
    };
    response.headers_mut().extend(limit_headers);
    response
}

fn check_request(
    emu: &GhlEmulator,
    location: &GhlLocation,
    scopes: &[String],
    req: &Request,
) -> Result<(), GhlError> {
    check_version(req)?;
    let read_only = req.method() == Method::GET || req.uri().path().ends_with("/contacts/search");
    auth::require_scope(scopes, if read_only { auth::READ } else { auth::WRITE })?;
    if let Some(contact_id) = routed_contact_id(req)
        && !location.holds(contact_id)
        && emu.locations.iter().any(|l| l.holds(contact_id))
    {
        return Err(GhlError::forbidden_location());
    }
    Ok(())
}

/// The `{contact_id}` of a `/contacts/{contact_id}...` route.
fn routed_contact_id(req: &Request) -> Option<&str> {
    let matched = req.extensions().get::<MatchedPath>()?;
    if !matched.as_str().contains("{contact_id}") {
        return None;
    }
    let path = req.uri().path();
    let rest = &path[path.find("/contacts/")? + "/contacts/".len()..];
    rest.split('/').next().filter(|id| !id.is_empty())
}

/// What an agency route passes: a live Company token with the route's scope, the agency's budget
/// and the `Version` header.
async fn agency_gate(State(emu): State<App>, req: Request, next: Next) -> Response {
    let resolved = emu
        .auth
        .lock()
        .expect("auth lock")
        .resolve(bearer(&req), emu.core.clock.now());
    let scopes = match resolved {
        Ok((Subject::Company, scopes)) => scopes,
        Ok((Subject::Location(_), _)) => return wrong_auth_class().into_response(),
        Err(e) => return e.into_response(),
    };
    let (refused, limit_headers) = spend(&emu, &emu.company_limiter);
    let scope = if req.method() == Method::GET {
        auth::OAUTH_READ
    } else {
        auth::OAUTH_WRITE
    };
    let mut response = match refused {
        Some(r) => r,
        None => match check_version(&req).and_then(|()| auth::require_scope(&scopes, scope)) {
            Ok(()) => next.run(req).await,
            Err(e) => e.into_response(),
        },
    };
    response.headers_mut().extend(limit_headers);
    response
}

#[derive(Deserialize)]
struct TokenForm {
    client_id: Option<String>,
    client_secret: Option<String>,
    grant_type: Option<String>,
    code: Option<String>,
    refresh_token: Option<String>,
    redirect_uri: Option<String>,
    user_type: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn token(State(emu): State<App>, Form(form): Form<TokenForm>) -> Response {
    if form.client_id.as_deref() != Some(emu.credentials.client_id.as_str())
        || form.client_secret.as_deref() != Some(emu.credentials.client_secret.as_str())
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    let company = match form.user_type.as_deref() {
        None | Some("Location") => false,
        Some("Company") => true,
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "user_type must be Company or Location",
            );
        }
    };
    let now = emu.core.clock.now();
    let ttl = emu.options.token_ttl_secs;
    let seed = emu.core.seed;
    let issued = {
        let mut auth = emu.auth.lock().expect("auth lock");
        match form.grant_type.as_deref() {
            Some("authorization_code") => form
                .code
                .as_deref()
                .ok_or(auth::ExchangeError::InvalidCode)
                .and_then(|c| {
                    auth.exchange_code(c, form.redirect_uri.as_deref(), company, now, ttl, seed)
                })
                .map_err(|e| match e {
                    auth::ExchangeError::InvalidCode => "Invalid authorization code",
                    auth::ExchangeError::UserTypeMismatch => {
                        "The code was approved by a location, not by the company"
                    }
                }),
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
            let mut body = json!({
                "access_token": t.access_token,
                "token_type": "Bearer",
                "expires_in": t.expires_in,
                "refresh_token": t.refresh_token,
                "scope": t.scope,
                "companyId": emu.company_id,
                "userId": "sbxUser0000000000000",
            });
            match &t.subject {
                Subject::Location(id) => {
                    body["userType"] = json!("Location");
                    body["locationId"] = json!(id);
                }
                Subject::Company => {
                    body["userType"] = json!("Company");
                    body["approvedLocations"] = json!(
                        emu.locations
                            .iter()
                            .map(|l| l.location_id.as_str())
                            .collect::<Vec<_>>()
                    );
                    body["isBulkInstallation"] = json!(true);
                    body["installToFutureLocations"] = json!(false);
                    body["approveAllLocations"] = json!(true);
                }
            }
            Json(body).into_response()
        }
        Err(description) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description),
    }
}

#[derive(Deserialize)]
struct LocationTokenForm {
    #[serde(rename = "companyId")]
    company_id: Option<String>,
    #[serde(rename = "locationId")]
    location_id: Option<String>,
}

/// `POST /oauth/locationToken` (form `companyId`, `locationId`).
async fn location_token(
    State(emu): State<App>,
    headers: HeaderMap,
    Form(form): Form<LocationTokenForm>,
) -> Response {
    let mut missing = Vec::new();
    if form.company_id.as_deref().is_none_or(str::is_empty) {
        missing.push("companyId should not be empty".to_string());
    }
    if form.location_id.as_deref().is_none_or(str::is_empty) {
        missing.push("locationId should not be empty".to_string());
    }
    if !missing.is_empty() {
        return GhlError::unprocessable(missing).into_response();
    }
    let (company_id, location_id) = (
        form.company_id.unwrap_or_default(),
        form.location_id.unwrap_or_default(),
    );
    if company_id != emu.company_id {
        return GhlError::forbidden_location().into_response();
    }
    if location_id == emu.not_installed.0 {
        return GhlError::bad_request("The app is not installed on this location").into_response();
    }
    if emu.location(&location_id).is_none() {
        return GhlError::forbidden_location().into_response();
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let now = emu.core.clock.now();
    let mut auth = emu.auth.lock().expect("auth lock");
    let Ok((_, scopes)) = auth.resolve(token, now) else {
        // The gate checked it a moment ago; only a concurrent revocation gets here.
        return GhlError::unauthorized("Invalid token: access token is invalid").into_response();
    };
    let t = auth.mint_location_token(
        &scopes,
        &location_id,
        now,
        emu.options.token_ttl_secs,
        emu.core.seed,
    );
    drop(auth);
    emu.core.stats.record_write();
    Json(json!({
        "access_token": t.access_token,
        "token_type": "Bearer",
        "expires_in": t.expires_in,
        "scope": t.scope,
        "locationId": location_id,
        "userId": "sbxUser0000000000000",
        "appId": emu.locations[0].app_id,
        "versionId": emu.locations[0].app_id,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct InstalledQuery {
    skip: Option<String>,
    limit: Option<String>,
    query: Option<String>,
    #[serde(rename = "isInstalled")]
    is_installed: Option<String>,
    #[serde(rename = "companyId")]
    company_id: Option<String>,
    #[serde(rename = "appId")]
    app_id: Option<String>,
    #[serde(rename = "locationId")]
    location_id: Option<String>,
}

/// `GET /oauth/installedLocations?companyId=&appId=&skip=&limit=&isInstalled=&query=&locationId=`:
/// the company's locations, `{locations: [{_id, name, address, isInstalled, ...}], count}`;
/// `count` is the total of the filtered list, before `skip`/`limit`.
async fn installed_locations(State(emu): State<App>, Query(q): Query<InstalledQuery>) -> Response {
    let mut errors = Vec::new();
    if q.company_id.as_deref().is_none_or(str::is_empty) {
        errors.push("companyId should not be empty".to_string());
    }
    if q.app_id.as_deref().is_none_or(str::is_empty) {
        errors.push("appId should not be empty".to_string());
    }
    let number =
        |name: &str, raw: &Option<String>, default: usize, errors: &mut Vec<String>| match raw
            .as_deref()
            .map(str::parse::<usize>)
        {
            None => default,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                errors.push(format!("{name} must be a number string"));
                default
            }
        };
    let skip = number("skip", &q.skip, 0, &mut errors);
    let limit = number("limit", &q.limit, 20, &mut errors);
    let is_installed = match q.is_installed.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            errors.push("isInstalled must be a boolean value".to_string());
            None
        }
    };
    if !errors.is_empty() {
        return GhlError::unprocessable(errors).into_response();
    }
    if q.company_id.as_deref() != Some(emu.company_id.as_str()) {
        return GhlError::forbidden_location().into_response();
    }
    if q.app_id.as_deref() != Some(emu.locations[0].app_id.as_str()) {
        return GhlError::bad_request("App not found").into_response();
    }
    let installed_at = state::iso(emu.core.clock.now() - chrono::Duration::days(30));
    let all = emu
        .locations
        .iter()
        .map(|l| {
            (
                l.location_id.as_str(),
                l.name.as_str(),
                l.address.as_str(),
                true,
            )
        })
        .chain(std::iter::once((
            emu.not_installed.0.as_str(),
            emu.not_installed.1.as_str(),
            "1 Elm St, Springfield, IL 62701, USA",
            false,
        )));
    let wanted: Vec<_> = all
        .filter(|(_, _, _, installed)| is_installed.is_none_or(|want| want == *installed))
        .filter(|(id, _, _, _)| q.location_id.as_deref().is_none_or(|want| want == *id))
        .filter(|(_, name, _, _)| {
            q.query
                .as_deref()
                .is_none_or(|want| name.to_lowercase().contains(&want.to_lowercase()))
        })
        .collect();
    let page: Vec<_> = wanted
        .iter()
        .skip(skip)
        .take(limit)
        .map(|(id, name, address, installed)| {
            let mut row =
                json!({"_id": id, "name": name, "address": address, "isInstalled": installed});
            if *installed {
                row["versionId"] = json!(emu.locations[0].app_id);
                row["installedAt"] = json!(installed_at);
            }
            row
        })
        .collect();
    Json(json!({
        "locations": page,
        "count": wanted.len(),
        "installToFutureLocations": false,
    }))
    .into_response()
}
