//! `transform`, `plan`, `load` and `run`: the nightly pipeline's stages on a run directory.

use super::stage::{StateLock, load_pipeline};
use super::{CommandError, CommandReport, LoadArgs, RunSelectArgs, StageArgs};
use crate::api::bulksms::BulkSmsClient;
use crate::api::bulksms::blocked::BlockedPaging;
use crate::api::ghl::GhlClient;
use crate::config::PipelineConfig;
use crate::exit_code::ExitCode;
use crate::extract::{ExtractOptions, run_extract};
use crate::load::apply::{ApplyOptions, apply};
use crate::load::diff::{DiffInput, PlanDecision, Refusal, SnapshotContact, build_plan};
use crate::load::ledger::Ledger;
use crate::load::ledger::OpStatus;
use crate::load::plan::{PlanOp, PlannedOperation};
use crate::load::plan_io::{read_plan, write_plan_with_warnings};
use crate::load::quiet_streak::QuietStreak;
use crate::snapshot::desired::read_rows;
use crate::snapshot::phone::e164;
use crate::snapshot::run::{RunDir, latest_complete_extract};
use crate::transform::model::MatchModel;
use crate::transform::stage::{TransformSummary, run_transform};
use anyhow::Context;
use std::collections::{HashMap, HashSet};

/// The run a stage works on: `--run ID`, else the newest run whose extract finished.
pub(super) fn select_run(
    config: &PipelineConfig,
    id: Option<&str>,
) -> Result<RunDir, CommandError> {
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

pub(super) fn match_model(config: &PipelineConfig) -> Result<MatchModel, CommandError> {
    let path = config.transform.model.as_ref().map(|p| config.resolve(p));
    MatchModel::load_or_default(path.as_deref()).map_err(|e| CommandError {
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

/// Builds and writes the plan of a run. When the plan breaks a safety limit, the plan written
/// holds only its opt-outs and the refusal says what was held back. Also returns warnings for the
/// reviewer (at the head of `plan.md` too).
pub fn plan_run(
    config: &PipelineConfig,
    run: &RunDir,
) -> Result<(crate::load::plan::Plan, Option<Refusal>, Vec<String>), CommandError> {
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
    let snapshot_blocked: HashSet<String> = blocked
        .iter()
        .filter_map(|b| e164(&b.phone_number))
        .collect();
    let input = DiffInput {
        run_id: run.id.clone(),
        desired_contacts: &desired_contacts,
        desired_messages: &desired_messages,
        desired_notes: &desired_notes,
        desired_blocked: &desired_blocked,
        snapshot_contacts: &snapshot_contacts,
        snapshot_blocked: &snapshot_blocked,
    };
    let PlanDecision { mut plan, refusal } = build_plan(&input, &config.load);
    let mut ledger = Ledger::open(&config.state_dir().join("ledger.sqlite"))?;
    // Operations the ledger says took effect (the digest of a date already sent, a rerun of
    // the same run) are not planned again: the plan shows only what load will really do.
    let mut done = HashSet::new();
    for op in &plan.operations {
        if let Some(entry) = ledger.get(&op.key)?
            && matches!(entry.status, OpStatus::Succeeded | OpStatus::Skipped)
        {
            done.insert(op.key.clone());
        }
    }
    if !done.is_empty() {
        tracing::info!(
            operations = done.len(),
            "Left out of the plan: already done according to the ledger"
        );
        plan.operations.retain(|op| !done.contains(&op.key));
    }
    if refusal.is_none() {
        // Sends and notes fire on what changed since the previous run, so a later transform
        // does not ask for them again: the ones an earlier run owes (planned and not applied,
        // failed, or with a lost outcome) are carried over from the ledger, under the same key,
        // and read back before they are retried. When this run plans the same key again (the
        // digest of the same date), the op as first planned wins: the digest is sent with the
        // counts of the run that planned it, not with counts a half-applied earlier load has
        // already changed.
        let mut carried = 0;
        for (key, from_run, payload) in ledger.unfinished(&PlanOp::EVENT_FIRED_KINDS)? {
            let Ok(op) = serde_json::from_str::<PlanOp>(&payload) else {
                tracing::warn!(key, "Unreadable operation in the ledger; not carried over");
                continue;
            };
            if !op.is_event_fired() {
                continue;
            }
            let carried_op = PlannedOperation::new(op, format!("retry: owed since run {from_run}"));
            if carried_op.key != key {
                continue;
            }
            match plan.operations.iter_mut().find(|o| o.key == key) {
                Some(planned) => *planned = carried_op,
                None => plan.operations.push(carried_op),
            }
            carried += 1;
        }
        if carried > 0 {
            tracing::info!(operations = carried, "Carried over from earlier runs");
        }
        // Owed from here on, before the plan file marks this run as acted on: whatever is killed
        // next, a later plan carries these until a load settles them.
        let owed: Vec<(&str, &str, String, String)> = plan
            .operations
            .iter()
            .filter(|o| o.op.is_event_fired())
            .map(|o| {
                (
                    o.key.as_str(),
                    o.op.kind(),
                    o.op.target(),
                    serde_json::to_string(&o.op).expect("PlanOp serialises"),
                )
            })
            .collect();
        ledger.register_owed(&run.id, &owed)?;
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
    Ok((plan, refusal, warnings))
}

/// Stops a write from a read-only pipeline (`[load] enabled = false`) before anything happens.
fn refuse_if_read_only(config: &PipelineConfig) -> Result<(), CommandError> {
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

/// Applies a run's plan; returns the report and exit code.
pub async fn load_run(
    config: &PipelineConfig,
    run: &RunDir,
    dry_run: bool,
) -> Result<(CommandReport, ExitCode), CommandError> {
    if !dry_run {
        refuse_if_read_only(config)?;
    }
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
    let mut blocked: HashSet<String> = known.iter().filter_map(|b| e164(&b.phone_number)).collect();
    let mut paging = BlockedPaging::after(known.iter().map(|b| b.id).max().unwrap_or(0));
    while let Some(page) = bulksms
        .next_blocked_page(&mut paging)
        .await
        .context("reading numbers blocked since the extract (GET /blocked-numbers)")?
    {
        blocked.extend(page.entries.iter().filter_map(|e| e164(&e.phone_number)));
    }
    let ledger_path = config.state_dir().join("ledger.sqlite");
    let ledger = Ledger::open(&ledger_path)?;
    let options = ApplyOptions {
        run_id: run.id.clone(),
        concurrency: config.load.concurrency,
        breaker_threshold: 10,
        quiet_hours: config.load.quiet_hours.clone(),
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
    let (plan, refusal, warnings) = plan_run(&config, &run)?;
    let mut report = CommandReport {
        command: "plan".into(),
        run_id: Some(run.id.clone()),
        run_dir: Some(run.path.clone()),
        warnings,
        ..CommandReport::default()
    };
    for (kind, n) in plan.counts() {
        report.counts.insert(kind.to_string(), n);
    }
    let mut human = format!(
        "Planned {} operations for run {}: review {}",
        plan.operations.len(),
        run.id,
        run.load_dir().join("plan.md").display()
    );
    for warning in &report.warnings {
        human.push_str(&format!("\nWarning: {warning}"));
    }
    let code = match &refusal {
        Some(refusal) => {
            report
                .counts
                .insert("held".into(), refusal.held.len() as u64);
            report.errors.push(refusal.to_string());
            human = format!("Plan refused: {refusal}\n{human}");
            ExitCode::SafetyLimit
        }
        None => ExitCode::Ok,
    };
    report.exit_code = code as u8;
    finish(report, args.stage.json, code, human)
}

/// `contactsync load`.
pub(super) async fn load(args: LoadArgs) -> Result<ExitCode, CommandError> {
    let config = load_pipeline(&args.stage)?;
    if !args.dry_run {
        refuse_if_read_only(&config)?;
    }
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

/// Extract → transform → plan → load → audit in one locked run.
pub async fn run_pipeline(
    config: &PipelineConfig,
    progress: bool,
) -> Result<(CommandReport, ExitCode), CommandError> {
    let mut durations: Vec<(&str, f64)> = Vec::new();
    let clock = std::time::Instant::now();
    let extract = run_extract(
        config,
        &ExtractOptions {
            full: false,
            progress,
        },
    )
    .await?;
    durations.push(("extract", clock.elapsed().as_secs_f64()));
    let run = extract.run.clone();
    let clock = std::time::Instant::now();
    let summary = transform_run(config, &run).await?;
    durations.push(("transform", clock.elapsed().as_secs_f64()));
    let clock = std::time::Instant::now();
    let (plan, refusal, _) = plan_run(config, &run)?;
    durations.push(("plan", clock.elapsed().as_secs_f64()));
    let clock = std::time::Instant::now();
    // A read-only pipeline (`[load] enabled = false`) plans and audits but writes nothing.
    let (mut report, load_code) = load_run(config, &run, !config.load.enabled).await?;
    durations.push(("load", clock.elapsed().as_secs_f64()));
    let clock = std::time::Instant::now();
    let (audit, audit_code) = super::audit_cmd::audit_run(config, &run, None)?;
    durations.push(("audit", clock.elapsed().as_secs_f64()));
    report.command = "run".into();
    for (name, entity) in &extract.manifest.entities {
        report.counts.insert(format!("{name}.rows"), entity.rows);
    }
    report
        .counts
        .insert("duplicate_clusters".into(), summary.duplicate_clusters);
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
    } else {
        audit_code
    };
    report.exit_code = code as u8;
    let metrics = prometheus_text(config, &report, &durations);
    crate::snapshot::atomic::write(&run.path.join("metrics.prom"), metrics.as_bytes())?;
    // A fixed path too, for node_exporter's textfile collector.
    crate::snapshot::atomic::write(&config.state_dir().join("metrics.prom"), metrics.as_bytes())?;
    Ok((report, code))
}

/// The run's metrics in Prometheus text exposition format.
fn prometheus_text(
    config: &PipelineConfig,
    report: &CommandReport,
    durations: &[(&str, f64)],
) -> String {
    use std::fmt::Write;
    let pipeline = config.pipeline.name.replace(['\\', '"', '\n'], "_");
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
    let now = chrono::Utc::now().timestamp();
    family(
        "last_run_timestamp_seconds",
        "When the last run finished (Unix time).",
        "gauge",
        vec![(String::new(), now as f64)],
    );
    if let Some(at) = last_success(config, report.exit_code, now) {
        family(
            "last_success_timestamp_seconds",
            "When the last run that exited 0 finished (Unix time): alert when it grows old.",
            "gauge",
            vec![(String::new(), at as f64)],
        );
    }
    out
}

/// When the last successful run finished: `now` when this run succeeded (and recorded in
/// `STATE/last_success`), else what that file says.
fn last_success(config: &PipelineConfig, exit_code: u8, now: i64) -> Option<i64> {
    let path = config.state_dir().join("last_success");
    if exit_code == 0 {
        if let Err(e) = crate::snapshot::atomic::write(&path, now.to_string().as_bytes()) {
            tracing::warn!(error = %e, path = %path.display(), "Could not record the last success");
        }
        return Some(now);
    }
    std::fs::read_to_string(&path).ok()?.trim().parse().ok()
}

/// `contactsync run`.
pub(super) async fn run(args: StageArgs) -> Result<ExitCode, CommandError> {
    let config = load_pipeline(&args)?;
    let outcome = match StateLock::acquire(&config.state_dir()) {
        Ok(lock) => run_pipeline(&config, !args.json).await.map(|r| (r, lock)),
        Err(e) => Err(e),
    };
    let (report, code) = match outcome {
        Ok((done, _lock)) => done,
        Err(failed) => {
            // A failed run still leaves its exit code where alerting looks, beside the time of
            // the last run that succeeded.
            let report = CommandReport {
                command: "run".into(),
                errors: vec![format!("{:#}", failed.error)],
                exit_code: failed.code as u8,
                ..CommandReport::default()
            };
            let metrics = prometheus_text(&config, &report, &[]);
            if let Err(e) = crate::snapshot::atomic::write(
                &config.state_dir().join("metrics.prom"),
                metrics.as_bytes(),
            ) {
                tracing::error!(error = %e, "Could not write metrics.prom for the failed run");
            }
            return Err(failed);
        }
    };
    let count = |k: &str| report.counts.get(k).copied().unwrap_or(0);
    let mut human = format!(
        "Run {} finished ({:?}): {} contacts, {} duplicate clusters, {} operations planned, {} applied, {} failed, {} skipped; {} GHL and {} BulkSMS requests ({} rate-limited)",
        report.run_id.as_deref().unwrap_or("-"),
        code,
        count("ghl/contacts.rows"),
        count("duplicate_clusters"),
        count("planned_operations"),
        count("applied"),
        count("failed"),
        count("skipped"),
        report.requests.get("ghl").copied().unwrap_or(0),
        report.requests.get("bulksms").copied().unwrap_or(0),
        count("ghl.rate_limited"),
    );
    if let Some(dir) = &report.run_dir {
        human.push_str(&format!(
            "\n  report: {}",
            dir.join("audit/report.html").display()
        ));
    }
    for e in &report.errors {
        human.push_str(&format!("\n  {e}"));
    }
    for w in &report.warnings {
        human.push_str(&format!("\n  warning: {w}"));
    }
    finish(report, args.json, code, human)
}
