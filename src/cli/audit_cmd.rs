//! `contactsync audit`: reconcile the two systems and two runs into report.html, report.json and
//! CSV finding lists in the run's `audit/` folder.

use super::stage::{load_pipeline, pipeline_clock};
use super::{AuditArgs, CommandError};
use crate::exit_code::ExitCode;
use crate::pipeline::{audit_run, select_run};
use crate::snapshot::run::RunDir;

pub(super) async fn run(args: AuditArgs) -> Result<ExitCode, CommandError> {
    let config = load_pipeline(&args.stage)?;
    let run = select_run(&config, args.run.as_deref())?;
    let against = match &args.against {
        Some(id) => Some(RunDir::open(&config.state_dir(), id)?),
        None => None,
    };
    let clock = pipeline_clock()?;
    let (report, code) = audit_run(&config, &run, against.as_ref(), clock.as_ref())?;
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
