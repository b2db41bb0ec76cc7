//! `/_sandbox/...` control routes: ground truth, counters, a state dump (`?location=ID` for a GHL
//! location other than the first), the clock and faults.

use super::SandboxCore;
use super::bulksms::BulkSmsEmulator;
use super::faults::FaultProfile;
use super::ghl::GhlEmulator;
use super::seed::TruthRow;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Clone)]
struct ControlState {
    core: Arc<SandboxCore>,
    ghl: Arc<GhlEmulator>,
    bulksms: Arc<BulkSmsEmulator>,
    truth: Arc<Vec<TruthRow>>,
}

/// The control routes, plus each emulator's own (`/_sandbox/ghl/...`, `/_sandbox/bulksms/...`).
pub fn router(
    core: Arc<SandboxCore>,
    ghl: Arc<GhlEmulator>,
    bulksms: Arc<BulkSmsEmulator>,
    truth: Arc<Vec<TruthRow>>,
) -> Router {
    let ghl_routes = super::ghl::control_router(ghl.clone());
    let bulksms_routes = super::bulksms::control_router(bulksms.clone());
    let state = ControlState {
        core,
        ghl,
        bulksms,
        truth,
    };
    Router::new()
        .route("/_sandbox/truth", get(truth_route))
        .route("/_sandbox/stats", get(stats_route))
        .route("/_sandbox/stats/reset", post(reset_stats_route))
        .route("/_sandbox/state", get(state_route))
        .route("/_sandbox/clock", get(clock_route))
        .route("/_sandbox/clock/advance", post(advance_route))
        .route(
            "/_sandbox/faults",
            get(get_faults_route).post(set_faults_route),
        )
        .with_state(state)
        .nest("/_sandbox/ghl", ghl_routes)
        .nest("/_sandbox/bulksms", bulksms_routes)
}

async fn truth_route(State(s): State<ControlState>) -> Json<Arc<Vec<TruthRow>>> {
    Json(s.truth.clone())
}

async fn stats_route(State(s): State<ControlState>) -> Response {
    Json(s.core.stats.snapshot()).into_response()
}

async fn reset_stats_route(State(s): State<ControlState>) -> StatusCode {
    s.core.stats.reset();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct StateQuery {
    /// The GHL location to dump (the first when absent).
    location: Option<String>,
}

async fn state_route(State(s): State<ControlState>, Query(q): Query<StateQuery>) -> Response {
    let Some(ghl) = s.ghl.state_json(q.location.as_deref()) else {
        return (
            StatusCode::NOT_FOUND,
            format!("no GHL location {:?} in this sandbox", q.location),
        )
            .into_response();
    };
    Json(serde_json::json!({
        "ghl": ghl,
        "bulksms": s.bulksms.state_json(),
    }))
    .into_response()
}

async fn clock_route(State(s): State<ControlState>) -> Response {
    Json(serde_json::json!({
        "now": s.core.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "offset_ms": s.core.clock.offset().num_milliseconds(),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct AdvanceQuery {
    seconds: i64,
}

async fn advance_route(State(s): State<ControlState>, Query(q): Query<AdvanceQuery>) -> Response {
    if q.seconds < 0 {
        return (StatusCode::BAD_REQUEST, "seconds must not be negative").into_response();
    }
    s.core.clock.advance(chrono::Duration::seconds(q.seconds));
    clock_route(State(s)).await
}

async fn get_faults_route(State(s): State<ControlState>) -> Json<FaultProfile> {
    Json(s.core.faults.profile())
}

/// Takes a whole profile as JSON, or `{"name": "none|flaky|hostile"}`.
async fn set_faults_route(
    State(s): State<ControlState>,
    Json(body): Json<serde_json::Value>,
) -> Response {
    let profile = match body.get("name").and_then(|n| n.as_str()) {
        Some(name) if matches!(name, "none" | "flaky" | "hostile") => {
            FaultProfile::from_arg(name).expect("built-in profile names always parse")
        }
        Some(other) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("unknown fault profile {other:?}; expected none, flaky or hostile"),
            )
                .into_response();
        }
        None => match serde_json::from_value::<FaultProfile>(body) {
            Ok(p) => p,
            Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        },
    };
    s.core.faults.set_profile(profile.clone());
    Json(profile).into_response()
}
