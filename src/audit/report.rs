//! The audit report's data: one struct, rendered as HTML for people and JSON/CSV for machines.

use serde::{Deserialize, Serialize};

/// Everything an audit found about one run (and the run before it).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AuditReport {
    pub pipeline: String,
    pub run_id: String,
    pub against_run: Option<String>,
    pub generated_at: String,
    /// Headline figures, in display order.
    pub summary: Vec<Metric>,
    /// The sync funnel: from records read to records in sync.
    pub funnel: Vec<Metric>,
    /// Match-probability histogram of scored pairs.
    pub score_histogram: Vec<HistogramBin>,
    /// Planned operations by kind and outcome.
    pub operations: Vec<OperationCount>,
    /// Headline figures of recent runs, oldest first.
    pub trend: Vec<TrendPoint>,
    /// Lists of findings (each also written as a CSV file).
    pub findings: Vec<FindingTable>,
    /// Thresholds from the pipeline file and whether they were breached.
    pub thresholds: Vec<ThresholdResult>,
    /// Things to act on that breach no threshold (shown at the top of the report).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// A named number.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Metric {
    pub label: String,
    pub value: f64,
    /// How to show it: "count", "percent".
    pub unit: String,
}

impl Metric {
    /// A count.
    pub fn count(label: &str, value: u64) -> Self {
        Metric {
            label: label.into(),
            value: value as f64,
            unit: "count".into(),
        }
    }

    /// A fraction shown as a percentage.
    pub fn percent(label: &str, fraction: f64) -> Self {
        Metric {
            label: label.into(),
            value: fraction,
            unit: "percent".into(),
        }
    }

    /// The value as text.
    pub fn display(&self) -> String {
        match self.unit.as_str() {
            "percent" => format!("{:.1} %", self.value * 100.0),
            _ => format!("{}", self.value.round() as i64),
        }
    }
}

/// One bar of the score histogram.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HistogramBin {
    pub low: f64,
    pub high: f64,
    /// Pairs accepted as matches in this bin.
    pub accepted: u64,
    /// Pairs rejected in this bin.
    pub rejected: u64,
}

/// Operations of one kind with one outcome.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OperationCount {
    pub kind: String,
    pub status: String,
    pub count: u64,
}

/// Headline figures of one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TrendPoint {
    pub run_id: String,
    pub contacts: u64,
    pub duplicate_clusters: u64,
    pub opted_out: u64,
    pub failed_operations: u64,
}

/// A list of findings with its columns.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FindingTable {
    /// File-safe name (`dnd_mismatches`): the CSV is `<id>.csv`.
    pub id: String,
    pub title: String,
    /// "info", "warning" or "critical" (compliance).
    pub severity: String,
    pub description: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// A threshold check.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ThresholdResult {
    pub name: String,
    pub limit: f64,
    pub actual: f64,
    pub breached: bool,
}
