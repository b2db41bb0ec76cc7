//! `transform`, `plan`, `load` and `run`: parse, call the stage in [`crate::pipeline`], print.

use super::stage::{StateLock, load_any_pipeline, load_pipeline, pipeline_clock};
use super::{CommandError, CommandReport, LoadArgs, RunArgs, RunSelectArgs};
use crate::config::Locations;
use crate::exit_code::ExitCode;
use crate::pipeline::locations::{AgencyReport, metrics_file, run_locations};
use crate::pipeline::run::{record_failed_run, record_refused_pipeline};
use crate::pipeline::stages::refuse_if_read_only;
use crate::pipeline::{load_run, plan_run, plan_summary, run_pipeline, select_run, transform_run};

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
    let _lock = StateLock::acquire(&config)?;
    let run = select_run(&config, args.run.as_deref())?;
    let summary = transform_run(&config, &run, pipeline_clock()?).await?;
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
    let _lock = StateLock::acquire(&config)?;
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
    let _lock = StateLock::acquire(&config)?;
    let run = select_run(&config, args.run.as_deref())?;
    let clock = pipeline_clock()?;
    if args.dry_run {
        eprintln!("{}", plan_summary(&run)?);
        eprintln!("Dry run: nothing was written.");
    }
    let (report, code) = load_run(&config, &run, args.dry_run, clock).await?;
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

/// How long `run` waits for a micro-batch holding the state lock.
const RUN_WAITS_FOR_BATCH_SECS: u64 = 300;

/// `contactsync run`.
pub(super) async fn run(args: RunArgs) -> Result<ExitCode, CommandError> {
    let clock = pipeline_clock()?;
    let config = load_any_pipeline(&args.stage).inspect_err(|refused| {
        record_refused_pipeline(
            &args.stage.pipeline,
            &metrics_file(args.shard),
            refused,
            clock.as_ref(),
        )
    })?;
    if args.shard.is_some() || !matches!(config.locations(), Locations::Single(_)) {
        let report = run_locations(&config, args.shard, !args.stage.json, clock).await?;
        return Ok(finish_locations(&report, args.stage.json));
    }
    let args = args.stage;
    // With micro-batches on, `serve` takes the lock for a few seconds every tick: wait for it
    // rather than fail the night (a batch skips its tick while the run holds the lock).
    let wait = match config.serve.batch_interval_secs {
        Some(_) => std::time::Duration::from_secs(RUN_WAITS_FOR_BATCH_SECS),
        None => std::time::Duration::ZERO,
    };
    let outcome = match StateLock::acquire_waiting(&config, wait) {
        Ok(lock) => run_pipeline(&config, !args.json, clock.clone())
            .await
            .map(|r| (r, lock)),
        Err(e) => Err(e),
    };
    let (report, code) = match outcome {
        Ok((done, _lock)) => done,
        Err(failed) => {
            record_failed_run(&config, &failed, clock.as_ref());
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

/// Prints a multi-location run: the JSON report, or a line per location and the totals.
fn finish_locations(report: &AgencyReport, json: bool) -> ExitCode {
    let code = ExitCode::from_u8(report.exit_code);
    if json {
        report.print();
        return code;
    }
    for l in &report.locations {
        let count = |k: &str| l.report.counts.get(k).copied().unwrap_or(0);
        let mut line = format!(
            "Location {} (exit {}): run {}, {} contacts, {} applied, {} failed; {} GHL requests ({} rate-limited)",
            l.location,
            l.report.exit_code,
            l.report.run_id.as_deref().unwrap_or("-"),
            count("ghl/contacts.rows"),
            count("applied"),
            count("failed"),
            l.report.requests.get("ghl").copied().unwrap_or(0),
            count("ghl.rate_limited"),
        );
        for e in &l.report.errors {
            line.push_str(&format!("\n  {e}"));
        }
        eprintln!("{line}");
    }
    let count = |k: &str| report.totals.counts.get(k).copied().unwrap_or(0);
    eprintln!(
        "Run of {} locations finished ({code:?}): {} ok, {} failed; {} contacts, {} applied, {} failed operations",
        report.locations.len(),
        report.totals.locations_ok,
        report.totals.locations_failed,
        count("ghl/contacts.rows"),
        count("applied"),
        count("failed"),
    );
    for w in &report.warnings {
        eprintln!("  warning: {w}");
    }
    code
}
