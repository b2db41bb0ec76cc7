//! `contactsync audit`: reconcile the two systems and two runs into report.html, report.json and
//! CSV finding lists in the run's `audit/` folder; `--all-locations` audits every location's
//! latest run of a multi-location pipeline and reports them side by side with totals.

use super::stage::{load_any_pipeline, load_pipeline, pipeline_clock};
use super::{AuditArgs, CommandError, CommandReport};
use crate::config::PipelineConfig;
use crate::exit_code::ExitCode;
use crate::pipeline::locations::{AgencyReport, LocationReport, resolve_locations};
use crate::pipeline::{audit_run, select_run};
use crate::snapshot::run::RunDir;

pub(super) async fn run(args: AuditArgs) -> Result<ExitCode, CommandError> {
    let config = load_any_pipeline(&args.stage)?;
    if args.all_locations {
        return all_locations(&config, args.stage.json).await;
    }
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

/// Audits the latest run of every location; the exit code follows the multi-location rule.
async fn all_locations(config: &PipelineConfig, json: bool) -> Result<ExitCode, CommandError> {
    let clock = pipeline_clock()?;
    let (all, _) = resolve_locations(config, None, clock.clone()).await?;
    let mut agency = AgencyReport {
        command: "audit".into(),
        ..AgencyReport::default()
    };
    for id in all {
        let location = config.for_location(&id);
        let audited = select_run(&location, None).and_then(|run| {
            audit_run(&location, &run, None, clock.as_ref()).map_err(CommandError::from)
        });
        let report = match audited {
            Ok((report, _)) => report,
            Err(failed) => CommandReport {
                command: "audit".into(),
                errors: vec![format!("{:#}", failed.error)],
                exit_code: failed.code as u8,
                ..CommandReport::default()
            },
        };
        if report.exit_code == 0 {
            agency.totals.locations_ok += 1;
        } else {
            agency.totals.locations_failed += 1;
        }
        for (k, v) in &report.counts {
            *agency.totals.counts.entry(k.clone()).or_default() += v;
        }
        agency.locations.push(LocationReport {
            location: id,
            report,
        });
    }
    let codes: Vec<ExitCode> = agency
        .locations
        .iter()
        .map(|l| ExitCode::from_u8(l.report.exit_code))
        .collect();
    let code = ExitCode::across_locations(&codes);
    agency.exit_code = code as u8;
    if json {
        agency.print();
        return Ok(code);
    }
    let findings = |counts: &std::collections::BTreeMap<String, u64>| -> u64 {
        counts
            .iter()
            .filter(|(k, _)| k.starts_with("findings."))
            .map(|(_, v)| v)
            .sum()
    };
    for l in &agency.locations {
        eprintln!(
            "Location {}: run {}, {} findings, {} thresholds breached (exit {})",
            l.location,
            l.report.run_id.as_deref().unwrap_or("-"),
            findings(&l.report.counts),
            l.report
                .counts
                .get("thresholds_breached")
                .copied()
                .unwrap_or(0),
            l.report.exit_code,
        );
        for e in &l.report.errors {
            eprintln!("  {e}");
        }
    }
    eprintln!(
        "Audit of {} locations: {} findings, {} thresholds breached; {} ok, {} not",
        agency.locations.len(),
        findings(&agency.totals.counts),
        agency
            .totals
            .counts
            .get("thresholds_breached")
            .copied()
            .unwrap_or(0),
        agency.totals.locations_ok,
        agency.totals.locations_failed,
    );
    Ok(code)
}
