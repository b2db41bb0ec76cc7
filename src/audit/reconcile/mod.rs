//! Reconciliation: reads one run's snapshot, transform outputs, plan and ledger (and the runs
//! before it) and builds the [`AuditReport`]. Reads files only; writes nothing but the report.
//! Reading lives in `inputs`, each finding list in `findings`, the figures in `metrics`.

mod findings;
mod inputs;
mod metrics;

use super::AuditConfig;
use super::report::{AuditReport, Metric, OperationCount};
use crate::snapshot::contract::ledger::LedgerReader;
use crate::snapshot::contract::transform_outputs::SUMMARY_FILE;
use crate::snapshot::run::{RunDir, list_runs};
use anyhow::Context;
use inputs::RunInputs;
use std::collections::HashSet;
use std::path::Path;

/// Builds the report of `run`, compared with `against` (default: the run before it).
pub fn reconcile(
    pipeline: &str,
    state_dir: &Path,
    ledger: Option<LedgerReader>,
    run: &RunDir,
    against: Option<&RunDir>,
    config: &AuditConfig,
    generated_at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<AuditReport> {
    let inputs = RunInputs::read(ledger, run)?;
    let by_id = inputs.by_id();
    let outcomes = findings::outcomes(&inputs)?;

    let (quiet_hours, warnings) = findings::quiet_hours_streak(state_dir, run)?;
    let (dnd_mismatches, open_dnd) = findings::dnd_mismatches(&inputs, &by_id, &outcomes);
    let dnd_not_blocked = findings::dnd_not_blocked(&inputs, &outcomes);
    let failed_operations = findings::failed_operations(&outcomes);
    let (clusters, field_conflicts) = findings::duplicate_clusters(&inputs, &by_id);
    let only_bulksms = findings::only_in_bulksms(&inputs);
    let only_ghl = findings::only_in_ghl(&inputs);

    // Matching between the systems.
    let matched = inputs
        .links
        .iter()
        .flat_map(|l| l.contact_ids.iter().map(String::as_str))
        .collect::<HashSet<&str>>()
        .len() as u64;
    let total = inputs.contacts.len() as u64;
    let with_phone = inputs
        .contacts
        .iter()
        .filter(|c| {
            c.phone
                .as_deref()
                .is_some_and(|p| crate::snapshot::phone::digits(p).len() >= 7)
        })
        .count() as u64;
    let unmatched_share = if total == 0 {
        0.0
    } else {
        only_ghl.len() as f64 / total as f64
    };

    let runs = list_runs(state_dir)?;
    let trend = metrics::trend(&runs, run);
    let against = match against {
        Some(a) => Some(a.clone()),
        None => runs
            .iter()
            .rev()
            .filter(|r| r.id < run.id)
            .find(|r| r.transform_dir().join(SUMMARY_FILE).exists())
            .cloned(),
    };

    let mut summary = vec![
        metrics::count("GHL contacts", total),
        metrics::count("Numbers with BulkSMS activity", inputs.links.len() as u64),
        metrics::count("Contacts matched to SMS activity", matched),
        metrics::count("Contacts only in GHL", only_ghl.len() as u64),
        metrics::count("Numbers only in BulkSMS", only_bulksms.len() as u64),
        metrics::count("Duplicate clusters", clusters.rows.len() as u64),
        metrics::count("Field conflicts", field_conflicts.rows.len() as u64),
        metrics::count("Opt-outs not DND in GHL (open)", open_dnd),
        metrics::count("Operations planned", outcomes.planned),
        metrics::count("Operations applied", outcomes.applied),
        metrics::count("Operations failed", outcomes.failed),
        Metric::percent("Share of contacts unmatched", unmatched_share),
    ];
    if let Some(a) = &against
        && let Some(prev) = trend.iter().find(|t| t.run_id == a.id)
    {
        summary.push(metrics::count(
            &format!("Contacts added since {}", a.id),
            total.saturating_sub(prev.contacts),
        ));
    }

    let changed_contacts = inputs
        .plan
        .as_ref()
        .map(|p| {
            p.operations
                .iter()
                .filter_map(|o| {
                    let t = o.op.target();
                    by_id.contains_key(t.as_str()).then_some(t)
                })
                .collect::<HashSet<_>>()
                .len() as u64
        })
        .unwrap_or(0);
    let funnel = vec![
        metrics::count("GHL contacts", total),
        metrics::count("With a phone", with_phone),
        metrics::count("Matched to BulkSMS", matched),
        metrics::count("Already in sync", total.saturating_sub(changed_contacts)),
    ];
    let thresholds = metrics::thresholds(config, unmatched_share, outcomes.failed, open_dnd);

    let findings = vec![
        quiet_hours,
        dnd_mismatches,
        dnd_not_blocked,
        failed_operations,
        clusters,
        field_conflicts,
        findings::numbers_only_in_bulksms(&only_bulksms),
        findings::delivery_failures(&inputs),
        findings::contacts_only_in_ghl(&only_ghl),
        super::tasks::open_tasks(&run.extract_dir(), &inputs.contacts, generated_at)?,
    ];

    Ok(AuditReport {
        pipeline: pipeline.to_string(),
        run_id: run.id.clone(),
        against_run: against.map(|a| a.id),
        generated_at: generated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        summary,
        funnel,
        score_histogram: metrics::score_histogram(&inputs.pairs),
        operations: outcomes
            .counts
            .into_iter()
            .map(|((kind, status), count)| OperationCount {
                kind,
                status,
                count,
            })
            .collect(),
        trend,
        findings,
        thresholds,
        warnings,
    })
}

/// Writes `report.html`, `report.json` and one CSV per finding list into `dir`.
pub fn write_report(report: &AuditReport, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    crate::snapshot::atomic::write(
        &dir.join("report.html"),
        super::html::render(report).as_bytes(),
    )
    .with_context(|| format!("writing {}", dir.join("report.html").display()))?;
    crate::snapshot::atomic::write(
        &dir.join("report.json"),
        &serde_json::to_vec_pretty(report)?,
    )?;
    for table in &report.findings {
        let mut bytes = Vec::new();
        super::csv::write_table(&mut bytes, &table.columns, &table.rows)?;
        crate::snapshot::atomic::write(&dir.join(format!("{}.csv", table.id)), &bytes)?;
    }
    Ok(())
}
