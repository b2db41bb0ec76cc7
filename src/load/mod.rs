//! Load: diff the desired state against the snapshots, write a reviewable plan, apply it exactly once.

use serde::Deserialize;

/// `[load]`: safety limits and apply options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadConfig {
    /// Further options, typed as the load stage lands.
    pub options: Option<toml::Table>,
}
