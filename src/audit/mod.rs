//! Audit: reconciliation of the two systems and of two runs, as HTML, JSON and CSV.

pub mod csv;
pub mod html;
pub mod reconcile;
pub mod report;
pub mod tasks;

use serde::Deserialize;

/// `[audit]`: thresholds that turn findings into a non-zero exit code.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Largest share of GHL contacts with no SMS activity before the audit fails (0..1).
    pub max_unmatched_share: Option<f64>,
    /// Most failed operations before the audit fails.
    pub max_failed_operations: Option<u64>,
    /// Most blocked numbers not DND in GHL (a compliance finding) before the audit fails.
    pub max_dnd_mismatches: Option<u64>,
}
