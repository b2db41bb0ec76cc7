//! `contactsync audit`: reconcile the two systems and two runs into report.html, report.json and
//! CSV finding lists in the run's `audit/` folder.

use super::pipeline_cmds::select_run;
use super::stage::load_pipeline;
use super::{AuditArgs, CommandError, CommandReport};
use crate::audit::reconcile::{reconcile, write_report};
use crate::config::PipelineConfig;
use crate::exit_code::ExitCode;
use crate::snapshot::run::RunDir;

/// Audits a run; the exit code says whether a threshold was breached.
pub fn audit_run(
    config: &PipelineConfig,
    run: &RunDir,
    against: Option<&RunDir>,
) -> anyhow::Result<(CommandReport, ExitCode)> {
    let report = reconcile(
        &config.pipeline.name,
        &config.state_dir(),
        run,
        against,
        &config.audit,
        &config.pipeline.default_region,
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
    out.errors = breached;
    let code = if out.errors.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::AuditThreshold
    };
    out.exit_code = code as u8;
    Ok((out, code))
}

pub(super) async fn run(args: AuditArgs) -> Result<ExitCode, CommandError> {
    let config = load_pipeline(&args.stage)?;
    let run = select_run(&config, args.run.as_deref())?;
    let against = match &args.against {
        Some(id) => Some(RunDir::open(&config.state_dir(), id)?),
        None => None,
    };
    let (report, code) = audit_run(&config, &run, against.as_ref())?;
    if args.stage.json {
        report.print();
    } else {
        eprintln!(
            "Audit of run {}: {}",
            run.id,
            run.audit_dir().join("report.html").display()
        );
        for e in &report.errors {
            eprintln!("  {e}");
        }
        for w in &report.warnings {
            eprintln!("  warning: {w}");
        }
    }
    Ok(code)
}
