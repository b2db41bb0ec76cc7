//! GHL's NestJS-style error bodies (`spec/common-schemas.json`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer.
#[derive(Debug)]
pub struct GhlError {
    pub status: StatusCode,
    pub body: serde_json::Value,
}

impl GhlError {
    /// 400 `{statusCode, message}`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        GhlError {
            status: StatusCode::BAD_REQUEST,
            body: json!({"statusCode": 400, "message": message.into()}),
        }
    }

    /// 401 with the message GHL uses for the case.
    pub fn unauthorized(message: &str) -> Self {
        GhlError {
            status: StatusCode::UNAUTHORIZED,
            body: json!({"statusCode": 401, "message": message, "error": "Unauthorized"}),
        }
    }

    /// 403 for a token of another location.
    pub fn forbidden_location() -> Self {
        GhlError {
            status: StatusCode::FORBIDDEN,
            body: json!({"statusCode": 403, "message": "The token does not have access to this location.", "error": "Forbidden"}),
        }
    }

    /// 422 `{statusCode, message: [...], error}`.
    pub fn unprocessable(messages: Vec<String>) -> Self {
        GhlError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: json!({"statusCode": 422, "message": messages, "error": "Unprocessable Entity"}),
        }
    }

    /// An unknown contact: GHL answers 400, not 404.
    pub fn contact_not_found(id: &str) -> Self {
        GhlError::bad_request(format!("Contact with id {id} not found"))
    }
}

impl IntoResponse for GhlError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
