//! `contactsync run`: extract → transform → plan → load → audit on one location, then the run's
//! metrics.

use super::metrics::prometheus_text;
use super::stages::{audit_run, extract_run, load_run, location_span, plan_run, transform_run};
use super::{CommandError, CommandReport};
use crate::clock::Clock;
use crate::config::PipelineConfig;
use crate::exit_code::ExitCode;
use crate::extract::{ExtractOptions, ExtractOutcome};
use crate::snapshot::contract::plan::Plan;
use crate::snapshot::run::RunDir;
use crate::snapshot::store::{SnapshotStore, StoreError};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Extract → transform → plan → load → audit. The caller holds the state directory's lock.
/// Writes `metrics.prom` into the run and the state directory.
pub async fn run_pipeline(
    config: &PipelineConfig,
    progress: bool,
    clock: Arc<dyn Clock>,
) -> Result<(CommandReport, ExitCode), CommandError> {
    run_stages(config, progress, clock)
        .instrument(location_span(config))
        .await
}

async fn run_stages(
    config: &PipelineConfig,
    progress: bool,
    clock: Arc<dyn Clock>,
) -> Result<(CommandReport, ExitCode), CommandError> {
    prepare_snapshots(config, clock.clone()).await?;
    let started = Instant::now();
    let options = ExtractOptions {
        full: false,
        progress,
        ..ExtractOptions::default()
    };
    let extract = extract_run(config, &options, clock.clone()).await?;
    let extract_secs = started.elapsed().as_secs_f64();
    run_after_extract(config, &extract, extract_secs, clock, &|_| Ok(())).await
}

/// Transform → plan → load → audit on a run whose extract finished, then the run's metrics.
/// `before_load` sees the plan once it is written and before anything of it is applied (the
/// multi-location run records which location owns each send there).
pub(super) async fn run_after_extract(
    config: &PipelineConfig,
    extract: &ExtractOutcome,
    extract_secs: f64,
    clock: Arc<dyn Clock>,
    before_load: &(dyn Fn(&Plan) -> anyhow::Result<()> + Sync),
) -> Result<(CommandReport, ExitCode), CommandError> {
    let mut durations: Vec<(&str, f64)> = vec![("extract", extract_secs)];
    let store = snapshot_store(config, clock.clone())?;
    let run = extract.run.clone();
    after_stage(store.as_ref(), &run, "extract").await?;
    let started = Instant::now();
    let summary = transform_run(config, &run, clock.clone()).await?;
    after_stage(store.as_ref(), &run, "transform").await?;
    durations.push(("transform", started.elapsed().as_secs_f64()));
    let started = Instant::now();
    let (plan, refusal, _) = plan_run(config, &run)?;
    durations.push(("plan", started.elapsed().as_secs_f64()));
    before_load(&plan)?;
    let started = Instant::now();
    // A read-only pipeline (`[load] enabled = false`) plans and audits but writes nothing.
    let (mut report, load_code) =
        load_run(config, &run, !config.load.enabled, clock.clone()).await?;
    durations.push(("load", started.elapsed().as_secs_f64()));
    after_stage(store.as_ref(), &run, "load").await?;
    let started = Instant::now();
    let (audit, audit_code) = audit_run(config, &run, None, clock.as_ref())?;
    // The rest of the run, then its manifest: the run is complete in the store from here on.
    if let Some(store) = &store {
        store.publish_run(&run).await?;
    }
    durations.push(("audit", started.elapsed().as_secs_f64()));
    report.command = "run".into();
    for (name, entity) in &extract.manifest.entities {
        report.counts.insert(format!("{name}.rows"), entity.rows);
    }
    report
        .counts
        .insert("duplicate_clusters".into(), summary.duplicate_clusters);
    report
        .counts
        .insert("held_decisions".into(), summary.held_decisions);
    report
        .counts
        .insert("messages_fired".into(), summary.messages_fired);
    report
        .counts
        .insert("planned_operations".into(), plan.operations.len() as u64);
    for (api, m) in &extract.manifest.requests {
        *report.requests.entry(api.clone()).or_default() += m.requests;
        *report
            .counts
            .entry(format!("{api}.rate_limited"))
            .or_default() += m.rate_limited;
    }
    report.counts.extend(audit.counts);
    report.errors.extend(audit.errors);
    // The audit's warnings, not the plan's: they also count this run's load.
    report.warnings = audit.warnings;
    // A refused plan outranks the rest (its opt-outs were still applied), then a failed write,
    // then a breached audit threshold: the order in which they need a person.
    let code = if let Some(refusal) = &refusal {
        report
            .counts
            .insert("held".into(), refusal.held.len() as u64);
        report.errors.insert(0, refusal.to_string());
        ExitCode::SafetyLimit
    } else if load_code != ExitCode::Ok {
        load_code
    } else if let Some(message) = extract.manifest.history.failure_message() {
        // Owed reads are retried next run, like failed writes.
        report.errors.push(message);
        ExitCode::PartialFailure
    } else {
        audit_code
    };
    report.counts.insert(
        "history.contacts_failed".into(),
        extract.manifest.history.contacts_failed,
    );
    report.exit_code = code as u8;
    let metrics = run_metrics(config, &report, &durations, clock.as_ref());
    crate::snapshot::atomic::write(&run.path.join("metrics.prom"), metrics.as_bytes())?;
    // A fixed path too, for node_exporter's textfile collector.
    crate::snapshot::atomic::write(&config.state_dir().join("metrics.prom"), metrics.as_bytes())?;
    Ok((report, code))
}

/// `[snapshots]`, when configured: the location's store.
fn snapshot_store(
    config: &PipelineConfig,
    clock: Arc<dyn Clock>,
) -> Result<Option<SnapshotStore>, CommandError> {
    Ok(SnapshotStore::open(
        &config.snapshots,
        &config.pipeline.name,
        &config.ghl.location_id,
        &config.http,
        clock,
    )?)
}

/// `[snapshots]`: fetches the location's latest published run into a fresh state directory and
/// finishes publishing earlier runs, before the extract reads the previous run.
pub(super) async fn prepare_snapshots(
    config: &PipelineConfig,
    clock: Arc<dyn Clock>,
) -> Result<(), CommandError> {
    if let Some(store) = snapshot_store(config, clock)? {
        store.prepare(&config.state_dir()).await?;
    }
    Ok(())
}

/// Leaves a failed run's exit code where alerting looks (`STATE/metrics.prom`), beside the time of
/// the last run that succeeded.
pub fn record_failed_run(config: &PipelineConfig, failed: &CommandError, clock: &dyn Clock) {
    record_failed_run_in(
        &config.pipeline.name,
        &config.state_dir(),
        "metrics.prom",
        failed,
        clock,
    );
}

/// [`record_failed_run`] for a pipeline file that could not be loaded (exit 2): written into the
/// state directory the file names, when it names one that exists, as `metrics_file`. A broken
/// file after a deploy is then an alert like any other failure, not a silent stop.
pub fn record_refused_pipeline(
    pipeline_file: &std::path::Path,
    metrics_file: &str,
    failed: &CommandError,
    clock: &dyn Clock,
) {
    let Some(hint) = crate::config::state_dir_hint(pipeline_file) else {
        return;
    };
    if hint.state_dir.is_dir() {
        record_failed_run_in(
            &hint.pipeline_name,
            &hint.state_dir,
            metrics_file,
            failed,
            clock,
        );
    }
}

fn record_failed_run_in(
    pipeline_name: &str,
    state_dir: &std::path::Path,
    metrics_file: &str,
    failed: &CommandError,
    clock: &dyn Clock,
) {
    let report = CommandReport {
        command: "run".into(),
        errors: vec![format!("{:#}", failed.error)],
        exit_code: failed.code as u8,
        ..CommandReport::default()
    };
    let now = clock.now().timestamp();
    let last_success = last_success(state_dir, report.exit_code, now);
    let metrics = prometheus_text(pipeline_name, &report, &[], now, last_success);
    if let Err(e) =
        crate::snapshot::atomic::write(&state_dir.join(metrics_file), metrics.as_bytes())
    {
        tracing::error!(error = %e, "Could not write metrics.prom for the failed run");
    }
}

/// The metrics text of a finished run, recording it as the last success when it exited 0.
pub(super) fn run_metrics(
    config: &PipelineConfig,
    report: &CommandReport,
    durations: &[(&str, f64)],
    clock: &dyn Clock,
) -> String {
    let now = clock.now().timestamp();
    let last_success = last_success(&config.state_dir(), report.exit_code, now);
    prometheus_text(&config.pipeline.name, report, durations, now, last_success)
}

/// When the last successful run finished: `now` when this run succeeded (and recorded in
/// `STATE/last_success`), else what that file says.
fn last_success(state_dir: &std::path::Path, exit_code: u8, now: i64) -> Option<i64> {
    let path = state_dir.join("last_success");
    if exit_code == 0 {
        if let Err(e) = crate::snapshot::atomic::write(&path, now.to_string().as_bytes()) {
            tracing::warn!(error = %e, path = %path.display(), "Could not record the last success");
        }
        return Some(now);
    }
    std::fs::read_to_string(&path).ok()?.trim().parse().ok()
}

/// `run`'s hook after a stage: publishes the stage's files when a store is configured.
async fn after_stage(
    store: Option<&SnapshotStore>,
    run: &RunDir,
    stage: &str,
) -> Result<(), StoreError> {
    if let Some(store) = store {
        store.publish_stage(run, stage).await?;
    }
    Ok(())
}
