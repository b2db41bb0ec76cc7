//! One stage on one run, from a pipeline file's settings: what `contactsync extract|transform|plan|
//! load|audit` do, and what `run` chains.

use super::clients::{bulksms_client, ghl_client};
use super::{CommandError, CommandReport};
use crate::audit::reconcile::{reconcile, write_report};
use crate::clock::Clock;
use crate::config::PipelineConfig;
use crate::exit_code::ExitCode;
use crate::extract::{ExtractOptions, ExtractOutcome, ExtractSetup, run_extract};
use crate::load::apply::{ApplyOptions, apply};
use crate::load::blocked::blocked_now;
use crate::load::created_tasks::created_tasks;
use crate::load::diff::{DiffInput, PlanDecision, Refusal, SnapshotContact, build_plan};
use crate::load::owed::{carry_over_owed, leave_out_done, register_owed};
use crate::load::plan_io::write_plan_with_warnings;
use crate::matching::model::MatchModel;
use crate::snapshot::contract::plan::{Plan, read_plan};
use crate::snapshot::contract::quiet_streak::QuietStreak;
use crate::snapshot::desired::{DESIRED_TASKS_FILE, DesiredTask, read_rows};
use crate::snapshot::phone::e164;
use crate::snapshot::run::{RunDir, latest_complete_extract};
use crate::snapshot::schema::BlockedNumberRow;
use crate::transform::stage::{TransformSummary, run_transform};
use anyhow::Context;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tracing::Instrument;

/// The span every log line of a run carries: which location (GHL sub-account) it is about.
pub fn location_span(config: &PipelineConfig) -> tracing::Span {
    tracing::info_span!("location", location_id = %config.ghl.location_id)
}

/// The span of one stage (`extract`, `transform`, `plan`, `load`, `audit`) of a location, inside
/// that location's span whether the stage runs alone or in `contactsync run`.
pub fn stage_span(config: &PipelineConfig, stage: &'static str) -> tracing::Span {
    let location = location_span(config);
    tracing::info_span!(parent: &location, "stage", stage, location_id = %config.ghl.location_id)
}

/// The run a stage works on: `--run ID`, else the newest run whose extract finished.
pub fn select_run(config: &PipelineConfig, id: Option<&str>) -> Result<RunDir, CommandError> {
    let state = config.state_dir();
    match id {
        Some(id) => Ok(RunDir::open(&state, id)?),
        None => Ok(latest_complete_extract(&state)?
            .map(|(run, _)| run)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no finished extract in {}; run `contactsync extract` first",
                    state.display()
                )
            })?),
    }
}

/// The match model the pipeline file names (or the built-in one); a bad model file exits 2.
pub fn match_model(config: &PipelineConfig) -> Result<MatchModel, CommandError> {
    let path = config.transform.model.as_ref().map(|p| config.resolve(p));
    MatchModel::load_or_default(path.as_deref()).map_err(|e| CommandError {
        code: ExitCode::BadConfig,
        error: e,
    })
}

/// Extracts (or resumes an extract) with the pipeline's clients.
pub async fn extract_run(
    config: &PipelineConfig,
    options: &ExtractOptions,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<ExtractOutcome> {
    let state_dir = config.state_dir();
    let state = config.state_store();
    let ghl = ghl_client(config, clock.clone())?;
    let bulksms = bulksms_client(config)?;
    let setup = ExtractSetup {
        state_dir: &state_dir,
        pipeline_name: &config.pipeline.name,
        state: &state,
        settings: &config.extract,
        ghl: &ghl,
        bulksms: &bulksms,
        clock: clock.as_ref(),
    };
    run_extract(setup, options)
        .instrument(stage_span(config, "extract"))
        .await
}

/// Transforms a run (blocking work on a worker thread).
pub async fn transform_run(
    config: &PipelineConfig,
    run: &RunDir,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<TransformSummary> {
    let model = match_model(config).map_err(|e| e.error)?;
    let run = run.clone();
    let region = config.pipeline.default_region.clone();
    let transform = config.transform.clone();
    let span = stage_span(config, "transform");
    tokio::task::spawn_blocking(move || {
        span.in_scope(|| {
            let summary = run_transform(&run, &model, &region, &transform, clock.as_ref())?;
            tracing::info!(
                run = %run.id,
                contacts = summary.contacts,
                duplicate_clusters = summary.duplicate_clusters,
                "Transform finished"
            );
            Ok(summary)
        })
    })
    .await
    .context("transform worker")?
}

/// Builds and writes the plan of a run. When the plan breaks a safety limit, the plan written
/// holds only its opt-outs and the refusal says what was held back.
pub fn plan_run(
    config: &PipelineConfig,
    run: &RunDir,
) -> Result<(Plan, Option<Refusal>, Vec<String>), CommandError> {
    let _stage = stage_span(config, "plan").entered();
    let transform = run.transform_dir();
    let extract = run.extract_dir();
    let desired_contacts =
        read_rows(&transform.join(crate::snapshot::desired::DESIRED_CONTACTS_FILE))
            .context("reading the desired state (run `contactsync transform` first)")?;
    let desired_messages = read_rows(&transform.join("desired_messages.parquet"))?;
    let desired_notes = read_rows(&transform.join("desired_notes.parquet"))?;
    let desired_blocked = read_rows(&transform.join("desired_blocked.parquet"))?;
    // Runs transformed before the message workflows existed have no tasks file.
    let tasks_path = transform.join(DESIRED_TASKS_FILE);
    let desired_tasks: Vec<DesiredTask> = if tasks_path.exists() {
        read_rows(&tasks_path)?
    } else {
        Vec::new()
    };
    let snapshot: Vec<SnapshotContact> = read_rows(&extract.join("ghl/contacts.parquet"))?;
    let snapshot_contacts: HashMap<String, SnapshotContact> =
        snapshot.into_iter().map(|c| (c.id.clone(), c)).collect();
    let blocked: Vec<BlockedNumberRow> =
        read_rows(&extract.join("bulksms/blocked_numbers.parquet"))?;
    let snapshot_blocked: HashSet<String> = blocked
        .iter()
        .filter_map(|b| e164(&b.phone_number))
        .collect();
    let mut ledger = config.state_store().open_ledger()?;
    let created_tasks = created_tasks(&desired_tasks, &ledger)?;
    let input = DiffInput {
        run_id: run.id.clone(),
        desired_contacts: &desired_contacts,
        desired_messages: &desired_messages,
        desired_notes: &desired_notes,
        desired_blocked: &desired_blocked,
        snapshot_contacts: &snapshot_contacts,
        snapshot_blocked: &snapshot_blocked,
        desired_tasks: &desired_tasks,
        created_tasks: &created_tasks,
    };
    let PlanDecision { mut plan, refusal } = build_plan(&input, &config.load);
    let done = leave_out_done(&mut plan, &ledger)?;
    if done > 0 {
        tracing::info!(
            operations = done,
            "Left out of the plan: already done according to the ledger"
        );
    }
    if refusal.is_none() {
        let carried = carry_over_owed(&mut plan, &ledger)?;
        if carried > 0 {
            tracing::info!(operations = carried, "Carried over from earlier runs");
        }
        // Owed from here on, before the plan file marks this run as acted on.
        register_owed(&plan, &run.id, &mut ledger)?;
    }
    let mut warnings = Vec::new();
    if let Some(warning) = QuietStreak::find(&config.state_dir(), &run.id, false)?.warning() {
        tracing::warn!(warning, "Sends held by quiet hours run after run");
        warnings.push(warning);
    }
    let dir = run.load_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    write_plan_with_warnings(&plan, refusal.as_ref(), &warnings, &dir)?;
    if let Some(refusal) = &refusal {
        tracing::error!(%refusal, "Plan refused by a safety limit");
    }
    tracing::info!(
        run = %run.id,
        operations = plan.operations.len(),
        refused = refusal.is_some(),
        "Plan written"
    );
    Ok((plan, refusal, warnings))
}

/// Applies a run's plan; returns the report and exit code. A dry run only counts the plan
/// ([`plan_summary`] says what it holds) and writes nothing.
pub async fn load_run(
    config: &PipelineConfig,
    run: &RunDir,
    dry_run: bool,
    clock: Arc<dyn Clock>,
) -> Result<(CommandReport, ExitCode), CommandError> {
    if !dry_run {
        refuse_if_read_only(config)?;
    }
    load_stage(config, run, dry_run, clock)
        .instrument(stage_span(config, "load"))
        .await
}

/// Stops a write from a read-only pipeline (`[load] enabled = false`) before anything happens.
pub fn refuse_if_read_only(config: &PipelineConfig) -> Result<(), CommandError> {
    if config.load.enabled {
        return Ok(());
    }
    Err(CommandError {
        code: ExitCode::BadConfig,
        error: anyhow::anyhow!(
            "{} is read-only (`[load] enabled = false`): nothing is written; use --dry-run to see the plan",
            config.source_path.display()
        ),
    })
}

async fn load_stage(
    config: &PipelineConfig,
    run: &RunDir,
    dry_run: bool,
    clock: Arc<dyn Clock>,
) -> Result<(CommandReport, ExitCode), CommandError> {
    let plan = read_plan(&run.load_dir(), &run.id)
        .context("reading the plan (run `contactsync plan` first)")?;
    let mut report = CommandReport {
        command: "load".into(),
        run_id: Some(run.id.clone()),
        run_dir: Some(run.path.clone()),
        ..CommandReport::default()
    };
    for (kind, n) in plan.counts() {
        report.counts.insert(format!("planned.{kind}"), n);
    }
    if dry_run {
        return Ok((report, ExitCode::Ok));
    }
    let ghl = ghl_client(config, clock.clone())?;
    let bulksms = bulksms_client(config)?;
    ghl.require_scopes(true)
        .await
        .context("checking the GHL grant before writing")?;
    let blocked = blocked_now(
        &run.extract_dir().join("bulksms/blocked_numbers.parquet"),
        &bulksms,
    )
    .await?;
    let ledger = config.state_store().open_ledger()?;
    let options = ApplyOptions {
        run_id: run.id.clone(),
        concurrency: config.load.concurrency,
        breaker_threshold: 10,
        quiet_hours: config.load.quiet_hours.clone(),
        clock,
    };
    let (metrics, errors) = apply(&plan, ledger, &ghl, &bulksms, blocked, &options).await?;
    let json =
        serde_json::to_vec_pretty(&serde_json::json!({"metrics": metrics, "errors": errors}))?;
    crate::snapshot::atomic::write(&run.load_dir().join("result.json"), &json)?;
    for (k, v) in [
        ("applied", metrics.applied),
        ("already_done", metrics.already_done),
        ("resolved_by_readback", metrics.resolved_by_readback),
        ("failed", metrics.failed),
        ("skipped", metrics.skipped),
        ("deferred", metrics.deferred),
        ("deferred_quiet_hours", metrics.deferred_quiet_hours),
    ] {
        report.counts.insert(k.into(), v);
    }
    for (api, metrics) in [
        ("ghl", ghl.api().metrics().snapshot()),
        ("bulksms", bulksms.api().metrics().snapshot()),
    ] {
        report.requests.insert(api.into(), metrics.requests);
        report
            .counts
            .insert(format!("{api}.rate_limited"), metrics.rate_limited);
        report
            .counts
            .insert(format!("{api}.retries"), metrics.retries);
    }
    report.errors = errors;
    tracing::info!(
        run = %run.id,
        applied = metrics.applied,
        failed = metrics.failed,
        deferred = metrics.deferred,
        "Load finished"
    );
    let code = if metrics.failed > 0 || metrics.deferred > 0 {
        ExitCode::PartialFailure
    } else {
        ExitCode::Ok
    };
    report.exit_code = code as u8;
    Ok((report, code))
}

/// The readable summary of a run's plan (what `plan.md` says).
pub fn plan_summary(run: &RunDir) -> anyhow::Result<String> {
    let plan = read_plan(&run.load_dir(), &run.id)
        .context("reading the plan (run `contactsync plan` first)")?;
    Ok(crate::load::plan_io::summary(&plan))
}

/// Audits a run (against an earlier one, by default the one before); the exit code says whether a
/// threshold was breached.
pub fn audit_run(
    config: &PipelineConfig,
    run: &RunDir,
    against: Option<&RunDir>,
    clock: &dyn Clock,
) -> anyhow::Result<(CommandReport, ExitCode)> {
    let _stage = stage_span(config, "audit").entered();
    let report = reconcile(
        &config.pipeline.name,
        &config.state_dir(),
        config.state_store().open_ledger_reader()?,
        run,
        against,
        &config.audit,
        clock.now(),
    )?;
    let dir = run.audit_dir();
    write_report(&report, &dir)?;
    let mut out = CommandReport {
        command: "audit".into(),
        run_id: Some(run.id.clone()),
        run_dir: Some(run.path.clone()),
        warnings: report.warnings.clone(),
        ..CommandReport::default()
    };
    for table in &report.findings {
        out.counts
            .insert(format!("findings.{}", table.id), table.rows.len() as u64);
    }
    let breached: Vec<String> = report
        .thresholds
        .iter()
        .filter(|t| t.breached)
        .map(|t| {
            format!(
                "audit threshold {} breached: {} > {}",
                t.name, t.actual, t.limit
            )
        })
        .collect();
    out.counts
        .insert("thresholds_breached".into(), breached.len() as u64);
    tracing::info!(
        run = %run.id,
        findings = report.findings.iter().map(|t| t.rows.len()).sum::<usize>(),
        thresholds_breached = breached.len(),
        "Audit written"
    );
    out.errors = breached;
    let code = if out.errors.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::AuditThreshold
    };
    out.exit_code = code as u8;
    Ok((out, code))
}
