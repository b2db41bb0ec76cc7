//! `transform`, `plan`, `load` and `run`: the nightly pipeline's stages on a run directory.

use super::stage::{StateLock, load_pipeline};
use super::{CommandError, CommandReport, LoadArgs, RunSelectArgs, StageArgs};
use crate::api::bulksms::{BulkSmsClient, MAX_BLOCKED_PAGE};
use crate::api::ghl::GhlClient;
use crate::config::PipelineConfig;
use crate::exit_code::ExitCode;
use crate::extract::{ExtractOptions, run_extract};
use crate::load::apply::{ApplyOptions, apply};
use crate::load::diff::{DiffInput, SafetyLimitExceeded, SnapshotContact, build_plan};
use crate::load::ledger::Ledger;
use crate::load::plan_io::{read_plan, write_plan};
use crate::snapshot::desired::read_rows;
use crate::snapshot::run::{RunDir, latest_complete_extract};
use crate::transform::model::MatchModel;
use crate::transform::stage::{TransformSummary, run_transform};
use anyhow::Context;
use std::collections::{HashMap, HashSet};

/// The run a stage works on: `--run ID`, else the newest run whose extract finished.
fn select_run(config: &PipelineConfig, id: Option<&str>) -> Result<RunDir, CommandError> {
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

fn match_model(config: &PipelineConfig) -> Result<MatchModel, CommandError> {
    let path = match &config.transform.model {
        Some(p) => config.resolve(p),
        None => super::dedupe_cmd::default_model_path(),
    };
    MatchModel::load(&path).map_err(|e| CommandError {
        code: ExitCode::BadConfig,
        error: e,
    })
}

/// Transform a run (blocking work on a worker thread).
pub async fn transform_run(
    config: &PipelineConfig,
    run: &RunDir,
) -> anyhow::Result<TransformSummary> {
    let model = match_model(config).map_err(|e| e.error)?;
    let run = run.clone();
    let region = config.pipeline.default_region.clone();
    let transform = config.transform.clone();
    tokio::task::spawn_blocking(move || run_transform(&run, &model, &region, &transform))
        .await
        .context("transform worker")?
}

/// Builds and writes the plan of a run.
pub fn plan_run(
    config: &PipelineConfig,
    run: &RunDir,
) -> Result<crate::load::plan::Plan, CommandError> {
    let transform = run.transform_dir();
    let extract = run.extract_dir();
    let desired_contacts = read_rows(&transform.join("desired_contacts.parquet"))
        .context("reading the desired state (run `contactsync transform` first)")?;
    let desired_messages = read_rows(&transform.join("desired_messages.parquet"))?;
    let desired_notes = read_rows(&transform.join("desired_notes.parquet"))?;
    let desired_blocked = read_rows(&transform.join("desired_blocked.parquet"))?;
    let snapshot: Vec<SnapshotContact> = read_rows(&extract.join("ghl/contacts.parquet"))?;
    let snapshot_contacts: HashMap<String, SnapshotContact> =
        snapshot.into_iter().map(|c| (c.id.clone(), c)).collect();
    #[derive(serde::Deserialize)]
    struct Blocked {
        phone_number: String,
    }
    let blocked: Vec<Blocked> = read_rows(&extract.join("bulksms/blocked_numbers.parquet"))?;
    let snapshot_blocked: HashSet<String> = blocked.into_iter().map(|b| b.phone_number).collect();
    let input = DiffInput {
        run_id: run.id.clone(),
        desired_contacts: &desired_contacts,
        desired_messages: &desired_messages,
        desired_notes: &desired_notes,
        desired_blocked: &desired_blocked,
        snapshot_contacts: &snapshot_contacts,
        snapshot_blocked: &snapshot_blocked,
    };
    let plan = build_plan(&input, &config.load).map_err(|e: SafetyLimitExceeded| CommandError {
        code: ExitCode::SafetyLimit,
        error: e.into(),
    })?;
    let dir = run.load_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    write_plan(&plan, &dir)?;
    Ok(plan)
}

/// Applies a run's plan; returns the report and exit code.
pub async fn load_run(
    config: &PipelineConfig,
    run: &RunDir,
    dry_run: bool,
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
        eprintln!("{}", crate::load::plan_io::summary(&plan));
        eprintln!("Dry run: nothing was written.");
        return Ok((report, ExitCode::Ok));
    }
    let ghl = GhlClient::from_config(config)?;
    let bulksms = BulkSmsClient::from_config(config)?;
    ghl.require_scopes(true)
        .await
        .context("checking the GHL grant before writing")?;
    // The blocked list as of now: the snapshot's, plus anything blocked since it was taken.
    #[derive(serde::Deserialize)]
    struct Blocked {
        id: u64,
        phone_number: String,
    }
    let known: Vec<Blocked> =
        read_rows(&run.extract_dir().join("bulksms/blocked_numbers.parquet"))?;
    let mut blocked: HashSet<String> = known.iter().map(|b| b.phone_number.clone()).collect();
    let mut after = known.iter().map(|b| b.id).max().unwrap_or(0);
    loop {
        let page = bulksms
            .blocked_numbers_from(after + 1, MAX_BLOCKED_PAGE)
            .await?;
        if page.is_empty() {
            break;
        }
        for entry in &page {
            after = after.max(entry.id.as_u64().unwrap_or(after));
            blocked.insert(entry.phone_number.clone());
        }
        if page.len() < MAX_BLOCKED_PAGE as usize {
            break;
        }
    }
    let ledger_path = config.state_dir().join("ledger.sqlite");
    let ledger = Ledger::open(&ledger_path)?;
    let options = ApplyOptions {
        run_id: run.id.clone(),
        concurrency: config.load.concurrency,
        breaker_threshold: 10,
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
    ] {
        report.counts.insert(k.into(), v);
    }
    report
        .requests
        .insert("ghl".into(), ghl.api().metrics().snapshot().requests);
    report.requests.insert(
        "bulksms".into(),
        bulksms.api().metrics().snapshot().requests,
    );
    report.errors = errors;
    let code = if metrics.failed > 0 || metrics.deferred > 0 {
        ExitCode::PartialFailure
    } else {
        ExitCode::Ok
    };
    report.exit_code = code as u8;
    Ok((report, code))
}

fn finish(
    report: CommandReport,
    json: bool,
    code: ExitCode,
    human: String,
) -> Result<ExitCode, CommandError> {
    if json {
        report.print();
    } else {
        eprintln!("{human}");
    }
    Ok(code)
}

/// `contactsync transform`.
pub(super) async fn transform(args: RunSelectArgs) -> Result<ExitCode, CommandError> {
    let config = load_pipeline(&args.stage)?;
    let _lock = StateLock::acquire(&config.state_dir())?;
    let run = select_run(&config, args.run.as_deref())?;
    let summary = transform_run(&config, &run).await?;
    let mut report = CommandReport {
        command: "transform".into(),
        run_id: Some(run.id.clone()),
        run_dir: Some(run.path.clone()),
        ..CommandReport::default()
    };
    if let serde_json::Value::Object(map) = serde_json::to_value(&summary)? {
        for (k, v) in map {
            report.counts.insert(k, v.as_u64().unwrap_or(0));
        }
    }
    let human = format!(
        "Transformed run {}: {} contacts, {} duplicate clusters, {} opted-out numbers, {} DND updates, {} lead candidates; written to {}",
        run.id,
        summary.contacts,
        summary.duplicate_clusters,
        summary.opted_out_numbers,
        summary.dnd_updates,
        summary.lead_candidates,
        run.transform_dir().display()
    );
    finish(report, args.stage.json, ExitCode::Ok, human)
}

/// `contactsync plan`.
pub(super) async fn plan(args: RunSelectArgs) -> Result<ExitCode, CommandError> {
    let config = load_pipeline(&args.stage)?;
    let _lock = StateLock::acquire(&config.state_dir())?;
    let run = select_run(&config, args.run.as_deref())?;
    let plan = plan_run(&config, &run)?;
    let mut report = CommandReport {
        command: "plan".into(),
        run_id: Some(run.id.clone()),
        run_dir: Some(run.path.clone()),
        ..CommandReport::default()
    };
    for (kind, n) in plan.counts() {
        report.counts.insert(kind.to_string(), n);
    }
    let human = format!(
        "Planned {} operations for run {}: review {}",
        plan.operations.len(),
        run.id,
        run.load_dir().join("plan.md").display()
    );
    finish(report, args.stage.json, ExitCode::Ok, human)
}

/// `contactsync load`.
pub(super) async fn load(args: LoadArgs) -> Result<ExitCode, CommandError> {
    let config = load_pipeline(&args.stage)?;
    let _lock = StateLock::acquire(&config.state_dir())?;
    let run = select_run(&config, args.run.as_deref())?;
    let (report, code) = load_run(&config, &run, args.dry_run).await?;
    let human = format!(
        "Load of run {}: {} applied, {} already done, {} failed, {} skipped",
        run.id,
        report.counts.get("applied").copied().unwrap_or(0),
        report.counts.get("already_done").copied().unwrap_or(0),
        report.counts.get("failed").copied().unwrap_or(0),
        report.counts.get("skipped").copied().unwrap_or(0),
    );
    finish(report, args.stage.json, code, human)
}

/// Extract → transform → plan → load in one locked run.
pub async fn run_pipeline(
    config: &PipelineConfig,
    progress: bool,
) -> Result<(CommandReport, ExitCode), CommandError> {
    let extract = run_extract(
        config,
        &ExtractOptions {
            full: false,
            progress,
        },
    )
    .await?;
    let run = extract.run.clone();
    let summary = transform_run(config, &run).await?;
    let plan = plan_run(config, &run)?;
    let (mut report, code) = load_run(config, &run, false).await?;
    report.command = "run".into();
    for (name, entity) in &extract.manifest.entities {
        report.counts.insert(format!("{name}.rows"), entity.rows);
    }
    report
        .counts
        .insert("duplicate_clusters".into(), summary.duplicate_clusters);
    report
        .counts
        .insert("planned_operations".into(), plan.operations.len() as u64);
    for (api, m) in &extract.manifest.requests {
        *report.requests.entry(api.clone()).or_default() += m.requests;
    }
    Ok((report, code))
}

/// `contactsync run`.
pub(super) async fn run(args: StageArgs) -> Result<ExitCode, CommandError> {
    let config = load_pipeline(&args)?;
    let _lock = StateLock::acquire(&config.state_dir())?;
    let (report, code) = run_pipeline(&config, !args.json).await?;
    let human = format!(
        "Run {} finished ({:?}): {} operations planned, {} applied, {} failed",
        report.run_id.as_deref().unwrap_or("-"),
        code,
        report
            .counts
            .get("planned_operations")
            .copied()
            .unwrap_or(0),
        report.counts.get("applied").copied().unwrap_or(0),
        report.counts.get("failed").copied().unwrap_or(0),
    );
    finish(report, args.json, code, human)
}
