//! The run's metrics in Prometheus text format (`metrics.prom`, for node_exporter's textfile
//! collector). Pure: the run function records the last success and passes the times in.

use super::CommandReport;

/// The run's metrics in Prometheus text exposition format.
pub(super) fn prometheus_text(
    pipeline_name: &str,
    report: &CommandReport,
    durations: &[(&str, f64)],
    now: i64,
    last_success: Option<i64>,
) -> String {
    use std::fmt::Write;
    let pipeline = pipeline_name.replace(['\\', '"', '\n'], "_");
    let mut out = String::new();
    let mut family = |name: &str, help: &str, kind: &str, samples: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP contactsync_{name} {help}");
        let _ = writeln!(out, "# TYPE contactsync_{name} {kind}");
        for (labels, value) in samples {
            let sep = if labels.is_empty() { "" } else { "," };
            let _ = writeln!(
                out,
                "contactsync_{name}{{pipeline=\"{pipeline}\"{sep}{labels}}} {value}"
            );
        }
    };
    let rows: Vec<(String, f64)> = report
        .counts
        .iter()
        .filter_map(|(k, v)| {
            let entity = k.strip_suffix(".rows")?;
            Some((format!("entity=\"{entity}\""), *v as f64))
        })
        .collect();
    family(
        "snapshot_rows",
        "Rows in the run's snapshot per entity.",
        "gauge",
        rows,
    );
    family(
        "requests",
        "HTTP requests made by the run per API.",
        "gauge",
        report
            .requests
            .iter()
            .map(|(api, n)| (format!("api=\"{api}\""), *n as f64))
            .collect(),
    );
    family(
        "rate_limited_responses",
        "429 responses met by the run per API.",
        "gauge",
        report
            .counts
            .iter()
            .filter_map(|(k, v)| {
                let api = k.strip_suffix(".rate_limited")?;
                Some((format!("api=\"{api}\""), *v as f64))
            })
            .collect(),
    );
    family(
        "operations",
        "Planned operations by outcome.",
        "gauge",
        [
            "applied",
            "already_done",
            "resolved_by_readback",
            "failed",
            "skipped",
            "deferred",
        ]
        .iter()
        .map(|s| {
            (
                format!("status=\"{s}\""),
                report.counts.get(*s).copied().unwrap_or(0) as f64,
            )
        })
        .collect(),
    );
    family(
        "stage_duration_seconds",
        "Wall time of each stage.",
        "gauge",
        durations
            .iter()
            .map(|(stage, s)| (format!("stage=\"{stage}\""), *s))
            .collect(),
    );
    family(
        "findings",
        "Audit findings per list.",
        "gauge",
        report
            .counts
            .iter()
            .filter_map(|(k, v)| {
                let id = k.strip_prefix("findings.")?;
                Some((format!("list=\"{id}\""), *v as f64))
            })
            .collect(),
    );
    family(
        "last_run_exit_code",
        "Exit code of the last run (0 ok).",
        "gauge",
        vec![(String::new(), f64::from(report.exit_code))],
    );
    family(
        "last_run_timestamp_seconds",
        "When the last run finished (Unix time).",
        "gauge",
        vec![(String::new(), now as f64)],
    );
    if let Some(at) = last_success {
        family(
            "last_success_timestamp_seconds",
            "When the last run that exited 0 finished (Unix time): alert when it grows old.",
            "gauge",
            vec![(String::new(), at as f64)],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_come_from_the_caller_and_last_success_only_when_known() {
        let report = CommandReport {
            exit_code: 3,
            ..CommandReport::default()
        };
        let text = prometheus_text("p\"1", &report, &[("load", 1.5)], 1_700_000_000, None);
        assert!(
            text.contains("contactsync_last_run_timestamp_seconds{pipeline=\"p_1\"} 1700000000"),
            "{text}"
        );
        assert!(
            text.contains(
                "contactsync_stage_duration_seconds{pipeline=\"p_1\",stage=\"load\"} 1.5"
            ),
            "{text}"
        );
        assert!(!text.contains("last_success"), "{text}");
        let text = prometheus_text("p", &report, &[], 1_700_000_000, Some(1_600_000_000));
        assert!(
            text.contains("contactsync_last_success_timestamp_seconds{pipeline=\"p\"} 1600000000"),
            "{text}"
        );
    }
}
