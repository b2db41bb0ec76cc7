//! Errors of the HTTP layer; each names the endpoint (and page, where there is one).

use thiserror::Error;

/// A failed API call, after retries.
#[derive(Debug, Error)]
pub enum ApiError {
    /// The service answered with an error status.
    #[error("{endpoint}: HTTP {status}: {body}")]
    Status {
        endpoint: String,
        status: u16,
        /// The error body, shortened.
        body: String,
        /// `Retry-After` seconds, when sent.
        retry_after_secs: Option<u64>,
    },
    /// The request did not complete (connection refused or reset, timeout).
    #[error("{endpoint}: request failed: {message}")]
    Transport { endpoint: String, message: String },
    /// The answer arrived but could not be read as expected (truncated or malformed JSON).
    #[error("{endpoint}: unreadable answer: {message}")]
    Decode { endpoint: String, message: String },
    /// Authentication could not be obtained or refreshed.
    #[error("{api} authentication failed: {message}")]
    Auth { api: String, message: String },
    /// The pipeline's share of the daily request budget is spent.
    #[error("{api}: daily request budget exhausted ({message})")]
    BudgetExhausted { api: String, message: String },
}

impl ApiError {
    /// The HTTP status, when the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the outcome of a write is unknown: the request may or may not have taken effect.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            ApiError::Transport { .. } | ApiError::Decode { .. } => true,
            ApiError::Status { status, .. } => *status >= 500 || *status == 408,
            _ => false,
        }
    }
}

/// Shortens a body for an error message without splitting a character.
pub fn shorten(body: &str, max: usize) -> String {
    if body.len() <= max {
        return body.to_string();
    }
    let mut end = max;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &body[..end], body.len())
}
