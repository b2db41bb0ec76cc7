//! The sandbox: emulators of the GHL and BulkSMS APIs on one loopback port, with seeded data,
//! planted duplicates and their ground truth, simulated time and fault injection.
//!
//! It is the other side of the wire: nothing here depends on the pipeline's modules, so the pipeline
//! cannot pass its tests by agreeing with itself. Routes:
//! - `{ghl_base_url}` = `http://HOST:PORT/ghl`: the GHL API v2 (OAuth, contacts, tasks, notes, ...);
//! - `{bulksms_base_url}` = `http://HOST:PORT/bulksms/v1`: the BulkSMS JSON API v1;
//! - `{control_url}/_sandbox/...`: truth, stats, state, clock, faults.

pub mod bulksms;
pub mod clock;
pub mod control;
pub mod faults;
pub mod ghl;
mod request_target;
pub mod seed;
pub mod stats;
pub mod webhooks;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use clock::SimClock;
use faults::{FaultAction, FaultInjector, FaultProfile};
use serde::{Deserialize, Serialize};
use stats::SandboxStats;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Seed of every random choice (data, ids, faults).
    pub seed: u64,
    /// Installed GHL locations of the emulated agency (at least 1), each with its own contacts,
    /// tokens and rate budget.
    pub locations: usize,
    /// Seeded GHL contacts per location (duplicates included).
    pub contacts: usize,
    /// Seeded BulkSMS messages.
    pub messages: usize,
    /// Faults to inject from the start.
    pub faults: FaultProfile,
    /// Enforce GHL's rate limits.
    pub rate_limit: bool,
    /// GHL requests per window and window length, when enforcing.
    pub rate_limit_burst: u32,
    /// Window length of the burst limit in milliseconds.
    pub rate_limit_window_ms: u64,
    /// GHL requests per day, when enforcing.
    pub rate_limit_daily: u32,
    /// Lifetime of GHL access tokens in seconds (GHL: 86,399).
    pub token_ttl_secs: i64,
    /// Delay before a GHL write shows up in `/contacts/search`, in milliseconds.
    pub search_index_lag_ms: u64,
    /// Whether the GHL location allows duplicate contacts (creates of a known email/phone fail when not).
    pub allow_duplicates: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 42,
            locations: 1,
            contacts: 1_000,
            messages: 2_000,
            faults: FaultProfile::default(),
            rate_limit: true,
            rate_limit_burst: 100,
            rate_limit_window_ms: 10_000,
            rate_limit_daily: 200_000,
            token_ttl_secs: 86_399,
            search_index_lag_ms: 0,
            allow_duplicates: true,
        }
    }
}

/// The JSON line printed when the sandbox is ready: everything a client needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReadyInfo {
    pub ghl_base_url: String,
    pub bulksms_base_url: String,
    pub control_url: String,
    pub ghl_location_id: String,
    pub ghl_client_id: String,
    pub ghl_client_secret: String,
    pub ghl_auth_code: String,
    pub ghl_token: String,
    pub bulksms_token_id: String,
    pub bulksms_token_secret: String,
    /// The GHL rate limit the sandbox enforces, or `None` when it was started without one.
    #[serde(default)]
    pub ghl_rate_limit: Option<SandboxRateLimit>,
    /// The Ed25519 public key (SPKI PEM, the form HighLevel publishes) that verifies the
    /// sandbox's GHL webhooks.
    #[serde(default)]
    pub ghl_webhook_public_key_pem: String,
    /// Every installed location (the first is `ghl_location_id`), with its Private Integration
    /// Token.
    #[serde(default)]
    pub ghl_locations: Vec<ghl::LocationCredentials>,
    /// The agency that installed the app on the locations.
    #[serde(default)]
    pub ghl_company_id: String,
    /// A single-use code an agency admin approved: `user_type=Company` exchanges it for a Company
    /// token (`ghl_auth_code` is the first location's).
    #[serde(default)]
    pub ghl_company_auth_code: String,
}

/// A GHL rate limit as the sandbox enforces it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct SandboxRateLimit {
    /// Requests per window.
    pub burst: u32,
    /// Window length in milliseconds.
    pub window_ms: u64,
    /// Requests per day.
    pub daily: u32,
}

/// Services both emulators share: time, counters, faults.
#[derive(Debug)]
pub struct SandboxCore {
    pub clock: SimClock,
    pub stats: SandboxStats,
    pub faults: FaultInjector,
    pub seed: u64,
    /// Signs and delivers webhooks to registered receivers.
    pub webhooks: Arc<webhooks::WebhookDispatcher>,
}

/// A running sandbox.
pub struct SandboxHandle {
    /// Base URLs and credentials.
    pub info: ReadyInfo,
    /// The bound address.
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl SandboxHandle {
    /// Stops serving and waits for the server task.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ignored_if_already_gone = tx.send(());
        }
        self.task.await.map_err(std::io::Error::other)?
    }

    /// Serves until the process is interrupted.
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// Generates the seed data, binds the listener and starts serving.
pub async fn start(options: SandboxOptions) -> std::io::Result<SandboxHandle> {
    if options.locations == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the sandbox needs at least one GHL location (--locations)",
        ));
    }
    let core = Arc::new(SandboxCore {
        clock: SimClock::new(),
        stats: SandboxStats::default(),
        faults: FaultInjector::new(options.faults.clone(), options.seed),
        seed: options.seed,
        webhooks: webhooks::WebhookDispatcher::start(options.seed),
    });
    let seed_data = seed::generate(&seed::SeedSpec {
        seed: options.seed,
        contacts: options.contacts,
        messages: options.messages,
        now: core.clock.now(),
    });
    // Every location has its own seeded contacts; the one BulkSMS account is seeded with the
    // first location's message history.
    let other_locations: Vec<seed::SeedData> = (1..options.locations)
        .map(|index| {
            seed::generate(&seed::SeedSpec {
                seed: ghl::location_seed(options.seed, index),
                contacts: options.contacts,
                messages: 0,
                now: core.clock.now(),
            })
        })
        .collect();
    let location_seeds: Vec<&seed::SeedData> = std::iter::once(&seed_data)
        .chain(&other_locations)
        .collect();
    let ghl = Arc::new(ghl::GhlEmulator::new(
        &options,
        &location_seeds,
        core.clone(),
    ));
    drop(other_locations);
    let bulksms = Arc::new(bulksms::BulkSmsEmulator::new(
        &options,
        &seed_data,
        core.clone(),
    ));
    let truth = Arc::new(seed_data.truth);

    let listener = TcpListener::bind(options.listen).await?;
    let addr = listener.local_addr()?;
    let origin = format!("http://{addr}");
    let ghl_creds = ghl.credentials();
    let bulksms_creds = bulksms.credentials();
    let info = ReadyInfo {
        ghl_base_url: format!("{origin}/ghl"),
        bulksms_base_url: format!("{origin}/bulksms/v1"),
        control_url: origin.clone(),
        ghl_location_id: ghl_creds.location_id,
        ghl_client_id: ghl_creds.client_id,
        ghl_client_secret: ghl_creds.client_secret,
        ghl_auth_code: ghl_creds.auth_code,
        ghl_token: ghl_creds.private_token,
        bulksms_token_id: bulksms_creds.token_id,
        bulksms_token_secret: bulksms_creds.token_secret,
        ghl_rate_limit: options.rate_limit.then_some(SandboxRateLimit {
            burst: options.rate_limit_burst,
            window_ms: options.rate_limit_window_ms,
            daily: options.rate_limit_daily,
        }),
        ghl_webhook_public_key_pem: core.webhooks.public_key_pem().to_string(),
        ghl_locations: ghl.location_credentials(),
        ghl_company_id: ghl.company_id().to_string(),
        ghl_company_auth_code: ghl.company_auth_code().to_string(),
    };

    let app = Router::new()
        .nest(
            "/ghl",
            with_api_layers(ghl::router(ghl.clone()), core.clone()),
        )
        .nest(
            "/bulksms/v1",
            with_api_layers(bulksms::router(bulksms.clone()), core.clone()),
        )
        .merge(webhooks::control_router(core.clone(), ghl.clone()))
        .merge(control::router(core.clone(), ghl, bulksms, truth));

    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(request_target::LenientListener(listener), app)
            .with_graceful_shutdown(async {
                let _closed_or_sent = rx.await;
            })
            .await
    });
    Ok(SandboxHandle {
        info,
        addr,
        shutdown: Some(tx),
        task,
    })
}

/// Wraps an emulator's routes with request accounting and fault injection.
fn with_api_layers(router: Router, core: Arc<SandboxCore>) -> Router {
    router.route_layer(middleware::from_fn_with_state(core, api_middleware))
}

async fn api_middleware(
    State(core): State<Arc<SandboxCore>>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let faults_apply = core.faults.applies_to(req.uri().path());
    if let Some(delay) = core.faults.delay().filter(|_| faults_apply) {
        tokio::time::sleep(delay).await;
    }
    let mut action = if faults_apply {
        core.faults.decide()
    } else {
        FaultAction::None
    };
    // Documented choice: the token endpoint never loses an answer after rotating a refresh token.
    // GHL offers no recovery from a rotated refresh token that never arrived except re-authorising
    // by hand, so such a fault would test nothing but the operator; it fails before the handler.
    if route.ends_with("/oauth/token")
        && !matches!(action, FaultAction::None | FaultAction::RateLimited)
    {
        action = FaultAction::ServerError(axum::http::StatusCode::BAD_GATEWAY);
    }
    let response = match action {
        FaultAction::None => next.run(req).await,
        FaultAction::ServerError(status) => {
            core.stats.record_fault();
            error_page(status)
        }
        FaultAction::RateLimited => {
            core.stats.record_fault();
            let mut resp = error_page(axum::http::StatusCode::TOO_MANY_REQUESTS);
            resp.headers_mut().insert(
                "retry-after",
                axum::http::HeaderValue::from(core.faults.retry_after_secs()),
            );
            resp
        }
        after => {
            let resp = next.run(req).await;
            core.stats.record_fault();
            faults::apply_after(after, resp).await
        }
    };
    core.stats
        .record(&method, &route, response.status().as_u16());
    response
}

/// A gateway-style error page, as proxies in front of both APIs send them.
fn error_page(status: axum::http::StatusCode) -> Response {
    use axum::response::IntoResponse;
    let body = serde_json::json!({
        "statusCode": status.as_u16(),
        "message": status.canonical_reason().unwrap_or("error"),
    });
    (status, axum::Json(body)).into_response()
}
