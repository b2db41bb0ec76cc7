//! Webhook delivery: the sandbox calls a receiver the way GHL and BulkSMS do.
//!
//! GHL events are signed with the sandbox's own Ed25519 key (derived from the seed; its SPKI PEM is
//! in the ready line) in `x-ghl-signature`, and retried only on a 429 answer, up to 6 times about
//! 10 minutes apart (the interval can be shortened when registering). BulkSMS posts JSON arrays of
//! messages, unsigned. The fault profile's `webhook_*` fields drop, duplicate, reorder and delay
//! deliveries, with their own seeded RNG so API faults stay reproducible.
//!
//! Control routes: `POST /_sandbox/webhooks/ghl {url, retry_interval_ms?, max_retries?}` registers
//! the GHL receiver (`DELETE` removes it), `POST /_sandbox/webhooks/ghl/emit {type, ...}` sends any
//! event (InboundMessage, NoteCreate, ...) the emulator does not produce itself, and
//! `GET /_sandbox/webhooks` counts deliveries.

use super::faults::FaultProfile;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::{Signer, SigningKey};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// GHL: retries after a 429 answer.
const GHL_MAX_RETRIES: u32 = 6;
/// GHL: about ten minutes between retries.
const GHL_RETRY_INTERVAL: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
struct GhlTarget {
    url: String,
    retry_interval: Duration,
    max_retries: u32,
}

struct Delivery {
    url: String,
    body: String,
    signature: Option<String>,
    retry_interval: Duration,
    max_retries: u32,
}

/// Counters of what was delivered.
#[derive(Debug, Default)]
struct DeliveryStats {
    emitted: AtomicU64,
    attempts: AtomicU64,
    acknowledged: AtomicU64,
    refused: AtomicU64,
    gave_up_after_429: AtomicU64,
    unreachable: AtomicU64,
    dropped_by_fault: AtomicU64,
    duplicated_by_fault: AtomicU64,
}

/// Signs and sends webhooks.
pub struct WebhookDispatcher {
    signing_key: SigningKey,
    public_key_pem: String,
    ghl: Mutex<Option<GhlTarget>>,
    tx: mpsc::UnboundedSender<Delivery>,
    rng: Mutex<ChaCha8Rng>,
    stats: Arc<DeliveryStats>,
    webhook_ids: Mutex<ChaCha8Rng>,
}

impl std::fmt::Debug for WebhookDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookDispatcher")
            .field("public_key_pem", &self.public_key_pem)
            .finish_non_exhaustive()
    }
}

impl WebhookDispatcher {
    /// A dispatcher whose key and fault choices follow the seed; starts its sending task.
    pub fn start(seed: u64) -> Arc<WebhookDispatcher> {
        let mut key_rng = ChaCha8Rng::seed_from_u64(seed ^ 0xED25519);
        let secret: [u8; 32] = key_rng.random();
        let signing_key = SigningKey::from_bytes(&secret);
        let public_key_pem = signing_key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default();
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(DeliveryStats::default());
        tokio::spawn(send_loop(rx, stats.clone()));
        Arc::new(WebhookDispatcher {
            signing_key,
            public_key_pem,
            ghl: Mutex::new(None),
            tx,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0x3EB400C)),
            stats,
            webhook_ids: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0x1D5)),
        })
    }

    /// The public key receivers verify with, SPKI PEM like HighLevel's published key.
    pub fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    /// Sends a GHL event: adds `locationId`, `appId`, `timestamp` and `webhookId`, signs the exact
    /// bytes. Nothing happens while no receiver is registered.
    pub fn emit_ghl(
        &self,
        faults: &FaultProfile,
        event_type: &str,
        mut fields: serde_json::Map<String, Value>,
        location_id: &str,
        app_id: &str,
        now: DateTime<Utc>,
    ) {
        let Some(target) = self.ghl.lock().expect("ghl target lock").clone() else {
            return;
        };
        let webhook_id = {
            let mut rng = self.webhook_ids.lock().expect("webhook id lock");
            super::ghl::ghl_id(&mut *rng)
        };
        fields.insert("type".into(), json!(event_type));
        fields
            .entry("locationId")
            .or_insert_with(|| json!(location_id));
        fields.insert("appId".into(), json!(app_id));
        fields.insert(
            "timestamp".into(),
            json!(now.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        fields.insert("webhookId".into(), json!(webhook_id));
        let body = Value::Object(fields).to_string();
        let signature = base64::engine::general_purpose::STANDARD
            .encode(self.signing_key.sign(body.as_bytes()).to_bytes());
        self.enqueue(
            faults,
            Delivery {
                url: target.url,
                body,
                signature: Some(signature),
                retry_interval: target.retry_interval,
                max_retries: target.max_retries,
            },
        );
    }

    /// Sends BulkSMS messages (status reports or received messages) to a registered webhook URL.
    /// BulkSMS retries answers other than 2xx and 4xx (90 s, 3, 6, 12 min, then every 15 min for
    /// two days); the sandbox retries them 5 times, 90 s apart.
    pub fn emit_bulksms(&self, faults: &FaultProfile, url: &str, messages: &[Value]) {
        if messages.is_empty() {
            return;
        }
        self.enqueue(
            faults,
            Delivery {
                url: url.to_string(),
                body: Value::Array(messages.to_vec()).to_string(),
                signature: None,
                retry_interval: Duration::from_secs(90),
                max_retries: 5,
            },
        );
    }

    /// Calls every active BulkSMS webhook (its stored create/update body) of this trigger scope
    /// (`SENT` status reports or `RECEIVED` messages) with the messages, one per call for
    /// `invokeOption` ONE, up to 10 for MANY.
    pub fn emit_bulksms_to_webhooks<'a>(
        &self,
        faults: &FaultProfile,
        webhooks: impl Iterator<Item = &'a serde_json::Map<String, Value>>,
        scope: &str,
        messages: &[Value],
    ) {
        for webhook in webhooks {
            let active = webhook
                .get("active")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            if !active || webhook.get("triggerScope").and_then(Value::as_str) != Some(scope) {
                continue;
            }
            let Some(url) = webhook.get("url").and_then(Value::as_str) else {
                continue;
            };
            let per_call = match webhook.get("invokeOption").and_then(Value::as_str) {
                Some("MANY") => 10,
                _ => 1,
            };
            for chunk in messages.chunks(per_call) {
                self.emit_bulksms(faults, url, chunk);
            }
        }
    }

    fn enqueue(&self, faults: &FaultProfile, delivery: Delivery) {
        self.stats.emitted.fetch_add(1, Ordering::Relaxed);
        let (drop, duplicate, delay) = {
            let mut rng = self.rng.lock().expect("webhook fault rng");
            (
                rng.random::<f64>() < faults.webhook_drop,
                rng.random::<f64>() < faults.webhook_duplicate,
                (rng.random::<f64>() < faults.webhook_reorder
                    || rng.random::<f64>() < faults.webhook_delay)
                    .then(|| Duration::from_millis(faults.webhook_delay_ms.max(1))),
            )
        };
        if drop {
            self.stats.dropped_by_fault.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let copies = if duplicate {
            self.stats
                .duplicated_by_fault
                .fetch_add(1, Ordering::Relaxed);
            2
        } else {
            1
        };
        for _ in 0..copies {
            let copy = Delivery {
                url: delivery.url.clone(),
                body: delivery.body.clone(),
                signature: delivery.signature.clone(),
                retry_interval: delivery.retry_interval,
                max_retries: delivery.max_retries,
            };
            match delay {
                // A delayed event arrives after the ones emitted just after it: reordered.
                Some(delay) => {
                    let tx = self.tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = tx.send(copy);
                    });
                }
                None => {
                    let _ = self.tx.send(copy);
                }
            }
        }
    }

    fn stats_json(&self) -> Value {
        let s = &self.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "emitted": get(&s.emitted),
            "attempts": get(&s.attempts),
            "acknowledged": get(&s.acknowledged),
            "refused": get(&s.refused),
            "gave_up_after_429": get(&s.gave_up_after_429),
            "unreachable": get(&s.unreachable),
            "dropped_by_fault": get(&s.dropped_by_fault),
            "duplicated_by_fault": get(&s.duplicated_by_fault),
            "ghl_url": self.ghl.lock().expect("ghl target lock").as_ref().map(|t| t.url.clone()),
        })
    }
}

async fn send_loop(mut rx: mpsc::UnboundedReceiver<Delivery>, stats: Arc<DeliveryStats>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default();
    while let Some(delivery) = rx.recv().await {
        tokio::spawn(deliver(client.clone(), delivery, stats.clone()));
    }
}

/// One event until it is answered: 429 (and for BulkSMS 5xx) is retried, anything else is final.
async fn deliver(client: reqwest::Client, delivery: Delivery, stats: Arc<DeliveryStats>) {
    let mut retries = 0;
    loop {
        stats.attempts.fetch_add(1, Ordering::Relaxed);
        let mut request = client
            .post(&delivery.url)
            .header("content-type", "application/json")
            .body(delivery.body.clone());
        if let Some(signature) = &delivery.signature {
            request = request.header("x-ghl-signature", signature);
        }
        let retryable = match request.send().await {
            Ok(response) if response.status().is_success() => {
                stats.acknowledged.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(response) => {
                let status = response.status();
                let retryable = status == StatusCode::TOO_MANY_REQUESTS
                    || (delivery.signature.is_none() && status.is_server_error());
                if !retryable {
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                true
            }
            Err(_) => {
                // GHL retries nothing but a 429: an unreachable receiver loses the event.
                stats.unreachable.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        if retryable && retries < delivery.max_retries {
            retries += 1;
            tokio::time::sleep(delivery.retry_interval).await;
            continue;
        }
        stats.gave_up_after_429.fetch_add(1, Ordering::Relaxed);
        return;
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterGhl {
    url: String,
    #[serde(default)]
    retry_interval_ms: Option<u64>,
    #[serde(default)]
    max_retries: Option<u32>,
}

/// Control routes under `/_sandbox/webhooks`; `emit` needs the GHL location's identity.
pub fn control_router(core: Arc<super::SandboxCore>, ghl: Arc<super::ghl::GhlEmulator>) -> Router {
    #[derive(Clone)]
    struct Ctl {
        dispatcher: Arc<WebhookDispatcher>,
        ghl: Arc<super::ghl::GhlEmulator>,
    }
    async fn register(State(ctl): State<Ctl>, Json(body): Json<RegisterGhl>) -> Response {
        if url::Url::parse(&body.url).is_err() {
            return (StatusCode::BAD_REQUEST, "url is not a URL").into_response();
        }
        *ctl.dispatcher.ghl.lock().expect("ghl target lock") = Some(GhlTarget {
            url: body.url,
            retry_interval: body
                .retry_interval_ms
                .map_or(GHL_RETRY_INTERVAL, Duration::from_millis),
            max_retries: body.max_retries.unwrap_or(GHL_MAX_RETRIES),
        });
        StatusCode::NO_CONTENT.into_response()
    }
    async fn unregister(State(ctl): State<Ctl>) -> StatusCode {
        *ctl.dispatcher.ghl.lock().expect("ghl target lock") = None;
        StatusCode::NO_CONTENT
    }
    async fn emit(State(ctl): State<Ctl>, Json(body): Json<Value>) -> Response {
        let Value::Object(mut fields) = body else {
            return (StatusCode::BAD_REQUEST, "body must be a JSON object").into_response();
        };
        let Some(Value::String(event_type)) = fields.remove("type") else {
            return (StatusCode::BAD_REQUEST, "type is required").into_response();
        };
        ctl.ghl.emit_webhook(&event_type, fields);
        StatusCode::ACCEPTED.into_response()
    }
    async fn stats(State(ctl): State<Ctl>) -> Json<Value> {
        Json(ctl.dispatcher.stats_json())
    }
    Router::new()
        .route("/_sandbox/webhooks", get(stats))
        .route("/_sandbox/webhooks/ghl", post(register).delete(unregister))
        .route("/_sandbox/webhooks/ghl/emit", post(emit))
        .with_state(Ctl {
            dispatcher: core.webhooks.clone(),
            ghl,
        })
}
