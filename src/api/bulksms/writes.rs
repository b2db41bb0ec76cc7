//! BulkSMS write calls used by load: sends (made idempotent by `deduplication-id`) and blocking.

use super::BulkSmsClient;
use crate::api::error::ApiError;
use crate::api::http::ApiRequest;
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

/// One message to submit.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Submission {
    /// E.164, with or without `+`.
    pub to: String,
    pub body: String,
    /// TEXT or UNICODE.
    pub encoding: String,
    /// ≤ 20 characters; load puts the operation's key here to find the send again.
    pub user_supplied_id: String,
    pub long_message_max_parts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl BulkSmsClient {
    /// `POST /messages?deduplication-id=N`: a resend with the same id within 12 hours answers the
    /// first response and sends nothing, which makes the call safe to retry.
    pub async fn send(
        &self,
        submission: &Submission,
        deduplication_id: i32,
    ) -> Result<Vec<Value>, ApiError> {
        let body = serde_json::to_value(submission).expect("Submission serialises");
        let request = ApiRequest::with_body(Method::POST, "/messages", body, true)
            .query("deduplication-id", deduplication_id);
        self.api().send_json(&request).await
    }

    /// Sent messages carrying `userSuppliedId` (to find a send whose answer was lost).
    pub async fn messages_with_user_id(
        &self,
        user_supplied_id: &str,
    ) -> Result<Vec<Value>, ApiError> {
        let request = ApiRequest::get("/messages")
            .query("filter", format!("userSuppliedId={user_supplied_id}"))
            .query("limit", 10);
        self.api().send_json(&request).await
    }

    /// `POST /blocked-numbers` with at most 1,000 numbers (idempotent: blocking twice is a no-op).
    pub async fn block_numbers(&self, numbers: &[String]) -> Result<(), ApiError> {
        let request = ApiRequest::with_body(
            Method::POST,
            "/blocked-numbers",
            serde_json::json!(numbers),
            true,
        );
        self.api().send_decoded(&request, |_| Ok(())).await
    }
}
