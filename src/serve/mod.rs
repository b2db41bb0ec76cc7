//! `contactsync serve`: the webhook receiver. GHL and BulkSMS events are checked, appended to the
//! durable spool (`STATE/spool/`) and acknowledged only once fsynced; consumers read the spool later
//! through [`spool::SpoolReader`].
//!
//! Answers carry no body and no reason: 200 stored, 401 bad signature or envelope, 404 anything
//! unknown (including a wrong BulkSMS path token or a source outside the allowlist), 409 a replayed
//! `webhookId`, 413 too large, 408 too slow. When the spool cannot take an event (over its limit,
//! draining, or failing) GHL gets 429, the only status it retries, and BulkSMS gets 503, since
//! BulkSMS drops an event answered with any 4xx and retries the rest.

pub mod config;
pub mod ghl;
pub mod spool;

pub use config::ServeConfig;

use crate::api::config::{GhlAuthConfig, GhlConfig};
/// The time the receiver checks timestamps against: the pipeline's clock, injected.
pub use crate::clock::Clock;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ghl::GhlVerifier;
use ipnet::IpNet;
use spool::{AppendOutcome, EventSource, NewEvent, SpoolHandle, SpoolLimits, SpoolWriter};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Errors starting or running the receiver.
#[derive(Debug, Error)]
pub enum ServeError {
    #[error("serve configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
}

/// What gates BulkSMS webhooks (which carry no signature).
#[derive(Debug, Clone)]
pub struct BulkSmsGate {
    /// The secret last path segment.
    pub path_token: String,
    /// `(username, password)` of Basic auth, when required.
    pub basic_auth: Option<(String, String)>,
    /// Allowed source networks; empty allows any.
    pub allow: Vec<IpNet>,
}

/// Everything the receiver needs, resolved from the pipeline file (or built by a test).
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub ghl: GhlVerifier,
    /// None: BulkSMS webhooks are not accepted (404).
    pub bulksms: Option<BulkSmsGate>,
    pub max_body_bytes: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    /// How long draining answers 429 before the listener closes, so senders see "retry" rather than
    /// a refused connection.
    pub drain_grace: Duration,
    pub spool: SpoolLimits,
    pub clock: Arc<dyn Clock>,
}

impl ServeOptions {
    /// Resolves the `[serve]` table of a pipeline file: reads the key file (a relative path through
    /// `resolve`, against the pipeline file's folder), derives the app id from `[ghl]`'s client.
    pub fn from_sections(
        serve: &ServeConfig,
        ghl_config: &GhlConfig,
        state_dir: PathBuf,
        resolve: &dyn Fn(&std::path::Path) -> PathBuf,
        clock: Arc<dyn Clock>,
    ) -> Result<ServeOptions, ServeError> {
        let pem = match (&serve.ghl.public_key_file, &serve.ghl.public_key_pem) {
            (Some(file), _) => {
                let path = resolve(file);
                std::fs::read_to_string(&path).map_err(|e| {
                    ServeError::Config(format!("serve.ghl.public_key_file {}: {e}", path.display()))
                })?
            }
            (None, Some(pem)) => pem.clone(),
            (None, None) => ghl::HIGHLEVEL_PUBLIC_KEY_PEM.to_string(),
        };
        let key = ghl::parse_public_key_pem(&pem)
            .map_err(|m| ServeError::Config(format!("serve.ghl public key: {m}")))?;
        let app_id = serve.ghl.app_id.clone().or_else(|| match &ghl_config.auth {
            GhlAuthConfig::Oauth { client_id, .. }
            | GhlAuthConfig::AgencyOauth { client_id, .. } => {
                Some(ghl::app_id_from_client_id(client_id))
            }
            GhlAuthConfig::PrivateToken { .. } => None,
        });
        let bulksms = match &serve.bulksms.path_token {
            None => None,
            Some(token) => Some(BulkSmsGate {
                path_token: token.expose().to_string(),
                basic_auth: serve
                    .bulksms
                    .basic_auth
                    .as_ref()
                    .map(|b| (b.username.clone(), b.password.expose().to_string())),
                allow: serve
                    .bulksms
                    .allow
                    .iter()
                    .map(|c| parse_cidr(c).map_err(ServeError::Config))
                    .collect::<Result<_, _>>()?,
            }),
        };
        Ok(ServeOptions {
            listen: serve.listen,
            state_dir,
            ghl: GhlVerifier::new(
                key,
                app_id,
                ghl_config.location_id.clone(),
                Duration::from_secs(serve.ghl.timestamp_window_secs),
            ),
            bulksms,
            max_body_bytes: serve.max_body_bytes,
            header_timeout: Duration::from_secs(serve.header_timeout_secs),
            body_timeout: Duration::from_secs(serve.body_timeout_secs),
            max_connections: serve.max_connections,
            drain_grace: Duration::from_secs(2),
            spool: SpoolLimits {
                max_bytes: serve.spool.max_bytes,
                segment_bytes: serve.spool.segment_bytes,
                dedup_retention_ms: serve.spool.dedup_retention_hours as i64 * 3_600_000,
                ..SpoolLimits::default()
            },
            clock,
        })
    }
}

/// A CIDR, or a single address.
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|e| format!("{text:?} is not a CIDR: {e}"))
}

struct App {
    ghl: GhlVerifier,
    bulksms: Option<BulkSmsGate>,
    spool: SpoolWriter,
    max_body_bytes: usize,
    body_timeout: Duration,
    clock: Arc<dyn Clock>,
}

/// The peer of the connection a request came on.
#[derive(Debug, Clone, Copy)]
struct PeerAddr(SocketAddr);

fn status(code: StatusCode) -> Response {
    code.into_response()
}

/// Reads the body within the size limit and the body timeout.
async fn read_body(app: &App, body: Body) -> Result<bytes::Bytes, Response> {
    match tokio::time::timeout(
        app.body_timeout,
        axum::body::to_bytes(body, app.max_body_bytes),
    )
    .await
    {
        Err(_) => Err(status(StatusCode::REQUEST_TIMEOUT)),
        // Over the limit, or the connection broke: either way nothing to store.
        Ok(Err(_)) => Err(status(StatusCode::PAYLOAD_TOO_LARGE)),
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

async fn receive_ghl(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    if app.spool.is_refusing() {
        return status(StatusCode::TOO_MANY_REQUESTS);
    }
    let body = match read_body(&app, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let signature = headers
        .get(ghl::SIGNATURE_HEADER)
        .map(|value| value.as_bytes());
    let now = app.clock.now();
    let event = match app.ghl.verify(signature, &body, now) {
        Ok(event) => event,
        Err(refusal) => {
            tracing::warn!(reason = %refusal, "Refused a GHL webhook");
            return status(StatusCode::UNAUTHORIZED);
        }
    };
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return status(StatusCode::BAD_REQUEST);
    };
    let outcome = app
        .spool
        .append(NewEvent {
            source: EventSource::Ghl,
            key: Some(format!("ghl:{}", event.webhook_id)),
            received_at_ms: now.timestamp_millis(),
            body: text,
        })
        .await;
    match outcome {
        AppendOutcome::Stored { seq } => {
            tracing::debug!(seq, webhook_id = %event.webhook_id, event_type = %event.event_type, "Stored a GHL event");
            status(StatusCode::OK)
        }
        AppendOutcome::Duplicate => {
            tracing::info!(webhook_id = %event.webhook_id, "Refused a replayed GHL webhookId");
            status(StatusCode::CONFLICT)
        }
        AppendOutcome::Unavailable => status(StatusCode::TOO_MANY_REQUESTS),
    }
}

/// Compares without an early exit, so timing does not reveal how much of a secret matched.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn basic_auth_matches(headers: &HeaderMap, username: &str, password: &str) -> bool {
    use base64::Engine as _;
    let Some(value) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{username}:{password}");
    same_secret(&decoded, expected.as_bytes())
}

async fn receive_bulksms(
    State(app): State<Arc<App>>,
    UrlPath(token): UrlPath<String>,
    peer: Option<axum::Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(gate) = &app.bulksms else {
        return status(StatusCode::NOT_FOUND);
    };
    if !same_secret(token.as_bytes(), gate.path_token.as_bytes()) {
        return status(StatusCode::NOT_FOUND);
    }
    if !gate.allow.is_empty() {
        let allowed = peer.is_some_and(|axum::Extension(PeerAddr(addr))| {
            let ip = addr.ip().to_canonical();
            gate.allow.iter().any(|net| net.contains(&ip))
        });
        if !allowed {
            tracing::warn!(peer = ?peer.map(|p| p.0.0), "Refused a BulkSMS webhook from outside the allowlist");
            return status(StatusCode::NOT_FOUND);
        }
    }
    if let Some((username, password)) = &gate.basic_auth
        && !basic_auth_matches(&headers, username, password)
    {
        return status(StatusCode::UNAUTHORIZED);
    }
    if app.spool.is_refusing() {
        return status(StatusCode::SERVICE_UNAVAILABLE);
    }
    let body = match read_body(&app, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    // A JSON array of Message objects; `[]` is BulkSMS testing the URL and stores nothing.
    let messages: Vec<serde_json::Map<String, serde_json::Value>> = match serde_json::from_slice(
        &body,
    ) {
        Ok(messages) => messages,
        Err(e) => {
            tracing::warn!(error = %e, "Refused a BulkSMS webhook body that is not an array of messages");
            return status(StatusCode::BAD_REQUEST);
        }
    };
    if messages.is_empty() {
        return status(StatusCode::OK);
    }
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return status(StatusCode::BAD_REQUEST);
    };
    let outcome = app
        .spool
        .append(NewEvent {
            source: EventSource::Bulksms,
            key: None,
            received_at_ms: app.clock.now().timestamp_millis(),
            body: text,
        })
        .await;
    match outcome {
        AppendOutcome::Stored { .. } | AppendOutcome::Duplicate => status(StatusCode::OK),
        AppendOutcome::Unavailable => status(StatusCode::SERVICE_UNAVAILABLE),
    }
}

async fn refuse() -> Response {
    status(StatusCode::NOT_FOUND)
}

/// A receiver that is listening.
pub struct RunningServer {
    /// The address it listens on (the real port when 0 was asked for).
    pub addr: SocketAddr,
    spool: SpoolWriter,
    stop: watch::Sender<bool>,
    accept_loop: tokio::task::JoinHandle<()>,
    spool_handle: SpoolHandle,
    drain_grace: Duration,
}

impl RunningServer {
    /// Drains and stops: new events get 429 (503 for BulkSMS) for the grace period, then the
    /// listener closes, open requests finish, and the spool's writer flushes and stops.
    pub async fn shutdown(self) {
        self.spool.start_draining();
        tokio::time::sleep(self.drain_grace).await;
        let _ = self.stop.send(true);
        let _ = self.accept_loop.await;
        drop(self.spool);
        let handle = self.spool_handle;
        let _ = tokio::task::spawn_blocking(move || handle.join()).await;
    }
}

/// Opens the spool, binds the listener and starts serving.
pub async fn start(options: ServeOptions) -> Result<RunningServer, ServeError> {
    let spool_dir = spool::spool_dir(&options.state_dir);
    let (writer, spool_handle) = SpoolWriter::open(&spool_dir, options.spool.clone())?;
    let listener =
        TcpListener::bind(options.listen)
            .await
            .map_err(|source| ServeError::Listen {
                addr: options.listen,
                source,
            })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: options.listen,
        source,
    })?;
    let app = Arc::new(App {
        ghl: options.ghl,
        bulksms: options.bulksms,
        spool: writer.clone(),
        max_body_bytes: options.max_body_bytes,
        body_timeout: options.body_timeout,
        clock: options.clock,
    });
    let router = Router::new()
        .route("/webhooks/ghl", post(receive_ghl))
        .route("/webhooks/bulksms/{token}", post(receive_bulksms))
        .fallback(refuse)
        .with_state(app);
    let (stop, stop_rx) = watch::channel(false);
    let accept_loop = tokio::spawn(accept_loop(
        listener,
        router,
        stop_rx,
        options.max_connections,
        options.header_timeout,
    ));
    Ok(RunningServer {
        addr,
        spool: writer,
        stop,
        accept_loop,
        spool_handle,
        drain_grace: options.drain_grace,
    })
}

/// Serves HTTP/1.1 connections until told to stop, then waits (at most 10 s) for open ones.
async fn accept_loop(
    listener: TcpListener,
    router: Router,
    mut stop: watch::Receiver<bool>,
    max_connections: usize,
    header_timeout: Duration,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "Accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(
            router.clone().layer(axum::Extension(PeerAddr(peer))),
        );
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("Connections still open 10 s after shutdown began; closing them");
    }
}
