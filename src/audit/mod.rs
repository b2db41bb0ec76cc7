//! Audit: reconciliation of the two systems and of two runs, as HTML, JSON and CSV.

use serde::Deserialize;

/// `[audit]`: thresholds that turn findings into a non-zero exit code.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Further options, typed as the audit stage lands.
    pub thresholds: Option<toml::Table>,
}
