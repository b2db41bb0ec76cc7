//! BulkSMS error bodies: `{type, title, status, detail}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer.
#[derive(Debug)]
pub struct BulkSmsError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
}

impl BulkSmsError {
    /// 400 bad-request.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        BulkSmsError {
            status: StatusCode::BAD_REQUEST,
            kind: "bad-request",
            title: "Bad Request",
            detail: detail.into(),
        }
    }

    /// 404 not-found.
    pub fn not_found(detail: impl Into<String>) -> Self {
        BulkSmsError {
            status: StatusCode::NOT_FOUND,
            kind: "not-found",
            title: "Not Found",
            detail: detail.into(),
        }
    }

    /// 401 authentication-failed.
    pub fn unauthorized() -> Self {
        BulkSmsError {
            status: StatusCode::UNAUTHORIZED,
            kind: "authentication-failed",
            title: "Authentication Failed",
            detail: "Full authentication is required to access this resource".into(),
        }
    }

    /// 403 insufficient-credits.
    pub fn insufficient_credits(detail: impl Into<String>) -> Self {
        BulkSmsError {
            status: StatusCode::FORBIDDEN,
            kind: "insufficient-credits",
            title: "Insufficient Credits",
            detail: detail.into(),
        }
    }

    /// 403 quota exceeded (documented choice: BulkSMS names no type for it).
    pub fn quota_exceeded(detail: impl Into<String>) -> Self {
        BulkSmsError {
            status: StatusCode::FORBIDDEN,
            kind: "quota-exceeded",
            title: "Quota Exceeded",
            detail: detail.into(),
        }
    }
}

impl IntoResponse for BulkSmsError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({
                "type": format!("https://developer.bulksms.com/json/v1/errors#{}", self.kind),
                "title": self.title,
                "status": self.status.as_u16(),
                "detail": self.detail,
            })),
        )
            .into_response()
    }
}
