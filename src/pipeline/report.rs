//! What a stage or a whole run did: the `--json` summary every stage command prints on stdout
//! when asked, and what the run's metrics are made from.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One JSON object describing what a command did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CommandReport {
    /// The subcommand.
    pub command: String,
    /// Run id, when the command made or used a run.
    pub run_id: Option<String>,
    /// Run directory.
    pub run_dir: Option<PathBuf>,
    /// Named counts (rows, operations, clusters, ...).
    pub counts: BTreeMap<String, u64>,
    /// HTTP requests made, per API.
    pub requests: BTreeMap<String, u64>,
    /// Errors met (empty on success).
    pub errors: Vec<String>,
    /// Things a person should look at that did not fail the command (left out when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The process exit code this run ends with.
    pub exit_code: u8,
}

impl CommandReport {
    /// Prints the report as one JSON line on stdout.
    pub fn print(&self) {
        println!(
            "{}",
            serde_json::to_string(self).expect("CommandReport always serialises")
        );
    }
}
