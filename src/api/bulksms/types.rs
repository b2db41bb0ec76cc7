//! BulkSMS JSON API v1 objects as serde structs; unknown fields are kept in `extra`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A message as `GET /messages` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkSmsMessage {
    /// Numeric id as a string.
    pub id: String,
    /// SENT or RECEIVED.
    #[serde(rename = "type")]
    pub message_type: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub encoding: Option<String>,
    #[serde(default)]
    pub submission: Option<Submission>,
    #[serde(default)]
    pub status: Option<MessageStatus>,
    #[serde(default)]
    pub related_sent_message_id: Option<String>,
    #[serde(default)]
    pub user_supplied_id: Option<String>,
    #[serde(default)]
    pub number_of_parts: Option<i64>,
    #[serde(default)]
    pub credit_cost: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `submission {id, date}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
}

/// `status {id, type, subtype}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageStatus {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "type", default)]
    pub status_type: Option<String>,
    #[serde(default)]
    pub subtype: Option<String>,
}

impl MessageStatus {
    /// DELIVERED and FAILED never change again.
    pub fn is_final(&self) -> bool {
        matches!(self.status_type.as_deref(), Some("DELIVERED" | "FAILED"))
    }
}

/// An entry of the blocked-numbers list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockedNumber {
    pub id: Value,
    pub phone_number: String,
}

/// The parts of `GET /profile` the pipeline uses; the rest is kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    #[serde(default)]
    pub credits: Option<Credits>,
    #[serde(default)]
    pub quota: Option<Quota>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `credits {balance, ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credits {
    #[serde(default)]
    pub balance: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `quota {size, remaining}` per day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quota {
    #[serde(default)]
    pub size: Option<i64>,
    #[serde(default)]
    pub remaining: Option<i64>,
}
