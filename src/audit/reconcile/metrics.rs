//! The figures of an audit: score histogram, trend over runs, summary cards, funnel, thresholds.

use super::inputs::PairRow;
use crate::audit::AuditConfig;
use crate::audit::report::{HistogramBin, Metric, ThresholdResult, TrendPoint};
use crate::snapshot::contract::transform_outputs::{SUMMARY_FILE, TransformSummary};
use crate::snapshot::run::RunDir;

/// Match probabilities of the scored pairs in ten bins, accepted and rejected apart.
pub fn score_histogram(pairs: &[PairRow]) -> Vec<HistogramBin> {
    let mut histogram: Vec<HistogramBin> = (0..10)
        .map(|i| HistogramBin {
            low: i as f64 / 10.0,
            high: (i + 1) as f64 / 10.0,
            ..HistogramBin::default()
        })
        .collect();
    for (_, _, p, accepted, _) in pairs {
        let bin = ((p * 10.0).floor() as usize).min(9);
        if *accepted {
            histogram[bin].accepted += 1;
        } else {
            histogram[bin].rejected += 1;
        }
    }
    histogram
}

/// This run and the ones before it in `runs` (at most 30), oldest first.
pub fn trend(runs: &[RunDir], run: &RunDir) -> Vec<TrendPoint> {
    let mut trend = Vec::new();
    for r in runs.iter().filter(|r| r.id <= run.id) {
        let Ok(text) = std::fs::read(r.transform_dir().join(SUMMARY_FILE)) else {
            continue;
        };
        let Ok(s) = serde_json::from_slice::<TransformSummary>(&text) else {
            continue;
        };
        let failed_ops = std::fs::read(r.load_dir().join("result.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.pointer("/metrics/failed").and_then(|f| f.as_u64()))
            .unwrap_or(0);
        trend.push(TrendPoint {
            run_id: r.id.clone(),
            contacts: s.contacts,
            duplicate_clusters: s.duplicate_clusters,
            opted_out: s.opted_out_numbers,
            failed_operations: failed_ops,
        });
    }
    if trend.len() > 30 {
        trend.drain(..trend.len() - 30);
    }
    trend
}

/// The audit thresholds of `[audit]` that are set, each with what this run measured.
pub fn thresholds(
    config: &AuditConfig,
    unmatched_share: f64,
    failed_operations: u64,
    open_dnd_mismatches: u64,
) -> Vec<ThresholdResult> {
    [
        (
            "max_unmatched_share",
            config.max_unmatched_share,
            unmatched_share,
        ),
        (
            "max_failed_operations",
            config.max_failed_operations.map(|v| v as f64),
            failed_operations as f64,
        ),
        (
            "max_dnd_mismatches",
            config.max_dnd_mismatches.map(|v| v as f64),
            open_dnd_mismatches as f64,
        ),
    ]
    .into_iter()
    .filter_map(|(name, limit, actual)| {
        limit.map(|limit| ThresholdResult {
            name: name.into(),
            limit,
            actual,
            breached: actual > limit,
        })
    })
    .collect()
}

/// A summary card's value as a count.
pub fn count(name: &str, value: u64) -> Metric {
    Metric::count(name, value)
}
