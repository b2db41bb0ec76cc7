//! GHL API v2 emulator (contacts, tasks, notes, appointments, tags, OAuth, rate limits).
//! PLACEHOLDER: the full emulator is being written; this keeps the interface compiling.

use super::seed::SeedData;
use super::{SandboxCore, SandboxOptions};
use axum::Router;
use std::sync::Arc;

/// Credentials the sandbox prints in its ready line.
#[derive(Debug, Clone)]
pub struct GhlCredentials {
    pub location_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub auth_code: String,
    pub private_token: String,
}

/// The emulated GHL location.
pub struct GhlEmulator {
    core: Arc<SandboxCore>,
}

impl GhlEmulator {
    /// Builds the location from the seed.
    pub fn new(_options: &SandboxOptions, _seed: &SeedData, core: Arc<SandboxCore>) -> Self {
        GhlEmulator { core }
    }

    /// Credentials for the ready line.
    pub fn credentials(&self) -> GhlCredentials {
        let _ = &self.core;
        GhlCredentials {
            location_id: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            auth_code: String::new(),
            private_token: String::new(),
        }
    }

    /// `{"contacts": [...], "tasks": [...], "notes": [...]}` in API shapes.
    pub fn state_json(&self) -> serde_json::Value {
        serde_json::json!({"contacts": [], "tasks": [], "notes": []})
    }
}

/// The API routes, relative to the GHL base URL.
pub fn router(_emu: Arc<GhlEmulator>) -> Router {
    Router::new()
}

/// Emulator-specific control routes under `/_sandbox/ghl`.
pub fn control_router(_emu: Arc<GhlEmulator>) -> Router {
    Router::new()
}
