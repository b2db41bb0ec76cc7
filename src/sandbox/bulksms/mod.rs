//! BulkSMS JSON API v1 emulator (messages, blocked numbers, profile, webhooks).
//! PLACEHOLDER: the full emulator is being written; this keeps the interface compiling.

use super::seed::SeedData;
use super::{SandboxCore, SandboxOptions};
use axum::Router;
use std::sync::Arc;

/// Credentials the sandbox prints in its ready line.
#[derive(Debug, Clone)]
pub struct BulkSmsCredentials {
    pub token_id: String,
    pub token_secret: String,
}

/// The emulated BulkSMS account.
pub struct BulkSmsEmulator {
    core: Arc<SandboxCore>,
}

impl BulkSmsEmulator {
    /// Builds the location from the seed.
    pub fn new(_options: &SandboxOptions, _seed: &SeedData, core: Arc<SandboxCore>) -> Self {
        BulkSmsEmulator { core }
    }

    /// Credentials for the ready line.
    pub fn credentials(&self) -> BulkSmsCredentials {
        let _ = &self.core;
        BulkSmsCredentials {
            token_id: String::new(),
            token_secret: String::new(),
        }
    }

    /// `{"messages": [...], "blocked_numbers": [...]}` in API shapes.
    pub fn state_json(&self) -> serde_json::Value {
        serde_json::json!({"messages": [], "blocked_numbers": []})
    }
}

/// The API routes, relative to the BulkSMS base URL.
pub fn router(_emu: Arc<BulkSmsEmulator>) -> Router {
    Router::new()
}

/// Emulator-specific control routes under `/_sandbox/bulksms`.
pub fn control_router(_emu: Arc<BulkSmsEmulator>) -> Router {
    Router::new()
}
