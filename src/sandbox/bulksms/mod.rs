//! BulkSMS JSON REST API v1 emulator: sends (encodings, parts, credits, quota, deduplication-id
//! replay), message listing with the `filter` language, blocked numbers, profile and webhooks, on
//! the simulated clock.
//!
//! # Documented choices (where the vendor is silent)
//! - A bad or missing Basic credential answers 401 `{type …#authentication-failed, title
//!   "Authentication Failed", status 401, detail}`.
//! - Statuses move ACCEPTED → SENT after 2 s → final after 10 s of simulated time; the final
//!   status is decided reproducibly from the seed and the message id (about 3 % fail with
//!   HANDSET_ERROR, EXPIRED or NOT_SENT). Received messages report status DELIVERED (the spec's
//!   status enum has no RECEIVED).
//! - Credits per part: ECONOMY 0.8, STANDARD 1.0, PREMIUM 1.5; a send to a blocked number fails
//!   FAILED.BLOCKED and is billed; the test number 1111111 fails and costs nothing.
//! - A body needing more parts than `longMessageMaxParts` (default 3) answers 400. BINARY
//!   encoding and GROUP recipients answer 400 (not emulated).
//! - The same `deduplication-id` within 12 h replays the first answer whatever the new body is.
//! - `limit` above 1000 on `GET /messages` is served as 1000 (the spec allows fewer rows).
//!
//! # Documented behaviours shown by default
//! - `limit` "is not a guarantee": about half of the `GET /messages` pages that would be full
//!   come back 1 to 3 rows short (decided from the seed and the page's first id), so only an
//!   empty page shows the end.
//! - Blocked numbers are kept as written, with or without `+` (the spec's E.164 examples are
//!   `44123456789` and `+27001234567`): every other seeded entry has the `+`, `POST
//!   /blocked-numbers` keeps what it was sent, a STOP reply blocks the bare digits it came from.
//! - `filter` as the docs write it: `<` and `>` unencoded in the URL (`filter=id<123456`; the
//!   listener escapes them before hyper, which refuses them) and clauses joined by a raw `&`.
//! - Over the daily quota: 403 `#quota-exceeded`.
//! - Inbound messages arrive through `POST /_sandbox/bulksms/inbound {from, body}`; a body of
//!   STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT or REVOKE (any case, punctuation
//!   around it) blocks the number, and so does a reply starting with STOP, STOPALL or UNSUBSCRIBE.
//! - Webhooks are called (src/sandbox/webhooks.rs): a SENT webhook gets each sent message's final
//!   status report when it is submitted, a RECEIVED webhook each inbound message.

mod errors;
mod filter;
mod messages;
pub mod state;

use super::seed::{SeedData, SeedMessageType};
use super::{SandboxCore, SandboxOptions};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use errors::BulkSmsError;
use serde_json::{Value, json};
use state::{AccountState, Direction, Message, Outcome, Webhook};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Credentials the sandbox prints in its ready line.
#[derive(Debug, Clone)]
pub struct BulkSmsCredentials {
    pub token_id: String,
    pub token_secret: String,
}

/// The emulated BulkSMS account.
pub struct BulkSmsEmulator {
    core: Arc<SandboxCore>,
    credentials: BulkSmsCredentials,
    account: Mutex<AccountState>,
}

type Emu = Arc<BulkSmsEmulator>;

fn static_status(s: &str) -> &'static str {
    match s {
        "EXPIRED" => "EXPIRED",
        "HANDSET_ERROR" => "HANDSET_ERROR",
        "BLOCKED" => "BLOCKED",
        "NOT_SENT" => "NOT_SENT",
        "ACCEPTED" => "ACCEPTED",
        "SENT" => "SENT",
        "DELIVERED" => "DELIVERED",
        "FAILED" => "FAILED",
        _ => "UNKNOWN",
    }
}

impl BulkSmsEmulator {
    /// Builds the account from the seed.
    pub fn new(_options: &SandboxOptions, seed: &SeedData, core: Arc<SandboxCore>) -> Self {
        let mix = core.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let credentials = BulkSmsCredentials {
            token_id: format!("{:016X}{:016X}-01-B", mix, mix.rotate_left(17)),
            token_secret: format!("sbx!{:x}#{:x}*Q", mix.rotate_left(7), mix.rotate_left(29)),
        };
        let mut account = AccountState {
            credits: 1_000_000.0,
            quota_size: 1_000_000,
            next_message_id: 1_415_000_000_000_000_000,
            ..AccountState::default()
        };
        for m in &seed.messages {
            let outcome = match m.status_type.as_str() {
                "DELIVERED" | "RECEIVED" => Outcome::Delivered,
                "FAILED" => Outcome::Failed(static_status(
                    m.status_subtype.as_deref().unwrap_or("NOT_SENT"),
                )),
                other => Outcome::Stuck(static_status(other)),
            };
            account.next_submission += 1;
            let body_encoding = crate::sms_encoding::encoding_for(&m.body, true);
            let parts = crate::sms_encoding::count_parts(&m.body, body_encoding).parts;
            let direction = match m.message_type {
                SeedMessageType::Sent => Direction::Sent,
                SeedMessageType::Received => Direction::Received,
            };
            account.insert(Message {
                id: m.id,
                direction,
                from: m.from.clone(),
                to: m.to.clone(),
                body: m.body.clone(),
                encoding: body_encoding.api_name(),
                submission_id: format!("2-{:020}", account.next_submission),
                submitted_at: m.submission_date,
                user_supplied_id: m.user_supplied_id.clone(),
                related_sent_message_id: m.related_sent_message_id,
                parts,
                credit_cost: if direction == Direction::Sent {
                    f64::from(parts)
                } else {
                    0.0
                },
                outcome,
            });
            account.next_message_id = account.next_message_id.max(m.id);
        }
        // Documented behaviour: numbers are E.164 with or without `+`; every other seeded entry
        // is written with it.
        for (index, number) in seed.blocked_numbers.iter().enumerate() {
            if index % 2 == 1 {
                account.block(&format!("+{number}"));
            } else {
                account.block(number);
            }
        }
        BulkSmsEmulator {
            core,
            credentials,
            account: Mutex::new(account),
        }
    }

    /// Credentials for the ready line.
    pub fn credentials(&self) -> BulkSmsCredentials {
        self.credentials.clone()
    }

    /// `{"messages": [...], "blocked_numbers": [...]}` in API shapes.
    pub fn state_json(&self) -> Value {
        self.account
            .lock()
            .expect("account lock")
            .to_json(self.core.clock.now())
    }
}

/// The API routes, relative to the BulkSMS base URL.
pub fn router(emu: Arc<BulkSmsEmulator>) -> Router {
    Router::new()
        .route("/messages", get(messages::list).post(messages::send))
        .route("/messages/send", get(messages::send_get))
        .route("/messages/{id}", get(messages::get_one))
        .route(
            "/messages/{id}/relatedReceivedMessages",
            get(messages::related),
        )
        .route("/profile", get(profile))
        .route("/blocked-numbers", get(list_blocked).post(add_blocked))
        .route("/webhooks", get(list_webhooks).post(create_webhook))
        .route(
            "/webhooks/{id}",
            get(get_webhook).post(update_webhook).delete(delete_webhook),
        )
        .route_layer(middleware::from_fn_with_state(emu.clone(), basic_auth))
        .with_state(emu)
}

/// Emulator-specific control routes under `/_sandbox/bulksms`.
pub fn control_router(emu: Arc<BulkSmsEmulator>) -> Router {
    Router::new()
        .route("/inbound", post(inbound))
        .with_state(emu)
}

async fn basic_auth(State(emu): State<Emu>, req: Request, next: Next) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            emu.credentials.token_id, emu.credentials.token_secret
        ))
    );
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if given != Some(expected.as_str()) {
        return BulkSmsError::unauthorized().into_response();
    }
    next.run(req).await
}

async fn profile(State(emu): State<Emu>) -> Response {
    let now = emu.core.clock.now();
    let mut account = emu.account.lock().expect("account lock");
    let remaining = account.quota_remaining(now);
    Json(json!({
        "id": "sbx-account",
        "username": "sandbox",
        "firstName": "Sandbox",
        "lastName": "Account",
        "created": "2024-01-01T00:00:00Z",
        "company": {"name": "contactsync sandbox", "taxReference": null},
        "credits": {"balance": account.credits, "isTransferAllowed": false, "limit": 0},
        "quota": {"size": account.quota_size, "remaining": remaining},
        "originAddresses": {"allowed": ["ACME"], "isFullControlAllowed": false},
    }))
    .into_response()
}

async fn list_blocked(
    State(emu): State<Emu>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let parse = |key: &str, default: u64| -> Result<u64, BulkSmsError> {
        q.get(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| BulkSmsError::bad_request(format!("Invalid {key} '{v}'")))
            })
            .transpose()
            .map(|v| v.unwrap_or(default))
    };
    let result: Result<Response, BulkSmsError> = (|| {
        let min_id = parse("min-id", 0)?;
        let limit = parse("limit", 10_000)?;
        if limit == 0 || limit > 10_000 {
            return Err(BulkSmsError::bad_request(
                "limit cannot be greater than 10000",
            ));
        }
        let account = emu.account.lock().expect("account lock");
        let rows: Vec<Value> = account
            .blocked_by_id
            .range(min_id..)
            .take(limit as usize)
            .map(|(id, number)| json!({"id": id, "phoneNumber": number}))
            .collect();
        Ok(Json(rows).into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn add_blocked(
    State(emu): State<Emu>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let result: Result<Response, BulkSmsError> = (|| {
        let items = match body {
            Ok(Json(Value::Array(items))) => items,
            _ => {
                return Err(BulkSmsError::bad_request(
                    "The body must be a JSON array of phone numbers",
                ));
            }
        };
        if items.len() > 1_000 {
            return Err(BulkSmsError::bad_request(
                "At most 1000 numbers may be blocked in one request",
            ));
        }
        let mut numbers = Vec::with_capacity(items.len());
        for item in &items {
            let raw = item.as_str().ok_or_else(|| {
                BulkSmsError::bad_request("Each entry must be a phone number string")
            })?;
            let written = raw.trim();
            let digits = written.strip_prefix('+').unwrap_or(written);
            if digits.len() < 7 || !digits.chars().all(|c| c.is_ascii_digit()) {
                return Err(BulkSmsError::bad_request(format!(
                    "'{raw}' is not a valid phone number"
                )));
            }
            numbers.push(written.to_string());
        }
        let mut account = emu.account.lock().expect("account lock");
        let mut changed = false;
        for n in numbers {
            changed |= account.block(&n);
        }
        if changed {
            emu.core.stats.record_write();
        }
        Ok(StatusCode::OK.into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

fn webhook_json(w: &Webhook) -> Value {
    let mut body = w.body.clone();
    body.insert("id".into(), json!(w.id.to_string()));
    Value::Object(body)
}

fn validate_webhook(body: &serde_json::Map<String, Value>) -> Result<(), BulkSmsError> {
    for key in ["name", "url", "triggerScope"] {
        if body
            .get(key)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(BulkSmsError::bad_request(format!("'{key}' is required")));
        }
    }
    match body.get("triggerScope").and_then(Value::as_str) {
        Some("SENT" | "RECEIVED") => Ok(()),
        _ => Err(BulkSmsError::bad_request(
            "triggerScope must be SENT or RECEIVED",
        )),
    }
}

async fn list_webhooks(State(emu): State<Emu>) -> Response {
    let account = emu.account.lock().expect("account lock");
    Json(
        account
            .webhooks
            .values()
            .map(webhook_json)
            .collect::<Vec<_>>(),
    )
    .into_response()
}

async fn create_webhook(
    State(emu): State<Emu>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let result: Result<Response, BulkSmsError> = (|| {
        let Ok(Json(Value::Object(body))) = body else {
            return Err(BulkSmsError::bad_request(
                "The body must be a webhook object",
            ));
        };
        validate_webhook(&body)?;
        let mut account = emu.account.lock().expect("account lock");
        let name = body.get("name").cloned();
        if account
            .webhooks
            .values()
            .any(|w| w.body.get("name") == name.as_ref())
        {
            return Err(BulkSmsError::bad_request(
                "A webhook with this name already exists",
            ));
        }
        account.next_webhook_id += 1;
        let w = Webhook {
            id: account.next_webhook_id,
            body,
        };
        let json = webhook_json(&w);
        account.webhooks.insert(w.id, w);
        emu.core.stats.record_write();
        Ok(Json(json).into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

fn webhook_missing(id: &str) -> BulkSmsError {
    BulkSmsError::not_found(format!("Webhook with id '{id}' does not exist\n"))
}

async fn get_webhook(State(emu): State<Emu>, Path(id): Path<String>) -> Response {
    let account = emu.account.lock().expect("account lock");
    match id
        .parse::<u64>()
        .ok()
        .and_then(|n| account.webhooks.get(&n))
    {
        Some(w) => Json(webhook_json(w)).into_response(),
        None => webhook_missing(&id).into_response(),
    }
}

async fn update_webhook(
    State(emu): State<Emu>,
    Path(id): Path<String>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let result: Result<Response, BulkSmsError> = (|| {
        let Ok(Json(Value::Object(body))) = body else {
            return Err(BulkSmsError::bad_request(
                "The body must be a webhook object",
            ));
        };
        validate_webhook(&body)?;
        let mut account = emu.account.lock().expect("account lock");
        let n = id.parse::<u64>().map_err(|_| webhook_missing(&id))?;
        let w = account
            .webhooks
            .get_mut(&n)
            .ok_or_else(|| webhook_missing(&id))?;
        w.body = body;
        let json = webhook_json(w);
        emu.core.stats.record_write();
        Ok(Json(json).into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn delete_webhook(State(emu): State<Emu>, Path(id): Path<String>) -> Response {
    let mut account = emu.account.lock().expect("account lock");
    match id
        .parse::<u64>()
        .ok()
        .and_then(|n| account.webhooks.remove(&n))
    {
        Some(_) => {
            emu.core.stats.record_write();
            StatusCode::OK.into_response()
        }
        None => webhook_missing(&id).into_response(),
    }
}

/// Words that opt a number out when they are the whole reply.
const STOP_WORDS: [&str; 8] = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
    "REVOKE",
];

/// Whether a reply blocks its sender (documented choice, as carriers do): a reply that is one of
/// [`STOP_WORDS`] in any case with punctuation or spaces around it, or one that starts with STOP,
/// STOPALL or UNSUBSCRIBE ("Unsubscribe me").
fn is_stop_reply(text: &str) -> bool {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_uppercase)
        .collect();
    match words.as_slice() {
        [only] => STOP_WORDS.contains(&only.as_str()),
        [first, ..] => matches!(first.as_str(), "STOP" | "STOPALL" | "UNSUBSCRIBE"),
        [] => false,
    }
}

/// `POST /_sandbox/bulksms/inbound {from, body}`: a reply arrives; STOP blocks the number.
async fn inbound(State(emu): State<Emu>, Json(body): Json<Value>) -> Response {
    let from: String = body
        .get("from")
        .and_then(Value::as_str)
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let text = body
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if from.len() < 7 {
        return (StatusCode::BAD_REQUEST, "from must be a phone number").into_response();
    }
    let now = emu.core.clock.now();
    let mut account = emu.account.lock().expect("account lock");
    let related = account
        .messages
        .values()
        .rev()
        .find(|m| m.direction == Direction::Sent && m.to == from)
        .map(|m| m.id);
    account.next_message_id += 1;
    account.next_submission += 1;
    let id = account.next_message_id;
    let message = Message {
        id,
        direction: Direction::Received,
        from: from.clone(),
        to: body
            .get("to")
            .and_then(Value::as_str)
            .unwrap_or("ACME")
            .to_string(),
        body: text.clone(),
        encoding: crate::sms_encoding::encoding_for(&text, true).api_name(),
        submission_id: format!("2-{:020}", account.next_submission),
        submitted_at: now,
        user_supplied_id: None,
        related_sent_message_id: related,
        parts: 1,
        credit_cost: 0.0,
        outcome: Outcome::Delivered,
    };
    let json = message.to_json(now, false);
    account.insert(message);
    emu.core.webhooks.emit_bulksms_to_webhooks(
        &emu.core.faults.profile(),
        account.webhooks.values().map(|w| &w.body),
        "RECEIVED",
        std::slice::from_ref(&json),
    );
    let stop = is_stop_reply(&text);
    if stop {
        account.block(&from);
    }
    Json(json!({"message": json, "blocked": stop})).into_response()
}
