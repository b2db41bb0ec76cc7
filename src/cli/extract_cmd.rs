//! `contactsync extract`: read both APIs into a snapshot.

use super::stage::{StateLock, load_pipeline, pipeline_clock};
use super::{CommandError, CommandReport, ExtractArgs};
use crate::exit_code::ExitCode;
use crate::extract::ExtractOptions;
use crate::pipeline::extract_run;

pub(super) async fn run(args: ExtractArgs) -> Result<ExitCode, CommandError> {
    let config = load_pipeline(&args.stage)?;
    let _lock = StateLock::acquire(&config)?;
    let options = ExtractOptions {
        full: args.full,
        progress: !args.stage.json,
        ..ExtractOptions::default()
    };
    let clock = pipeline_clock()?;
    let outcome = extract_run(&config, &options, clock.clone()).await?;
    let history_failure = outcome.manifest.history.failure_message();
    let code = if outcome.manifest.quarantined_rows > 0 || history_failure.is_some() {
        ExitCode::PartialFailure
    } else {
        ExitCode::Ok
    };
    let mut report = CommandReport {
        command: "extract".into(),
        run_id: Some(outcome.run.id.clone()),
        run_dir: Some(outcome.run.path.clone()),
        exit_code: code as u8,
        ..CommandReport::default()
    };
    for (name, entity) in &outcome.manifest.entities {
        report.counts.insert(format!("{name}.rows"), entity.rows);
        report
            .counts
            .insert(format!("{name}.delta_rows"), entity.delta_rows);
    }
    report
        .counts
        .insert("quarantined_rows".into(), outcome.manifest.quarantined_rows);
    let history = &outcome.manifest.history;
    report
        .counts
        .insert("history.contacts_read".into(), history.contacts_read);
    report
        .counts
        .insert("history.contacts_left".into(), history.contacts_left);
    report
        .counts
        .insert("history.contacts_failed".into(), history.contacts_failed);
    for (api, metrics) in &outcome.manifest.requests {
        report.requests.insert(api.clone(), metrics.requests);
    }
    if outcome.manifest.quarantined_rows > 0 {
        report.errors.push(format!(
            "{} rows quarantined: see {}",
            outcome.manifest.quarantined_rows,
            outcome
                .run
                .extract_dir()
                .join("quarantine.parquet")
                .display()
        ));
    }
    report.errors.extend(history_failure);
    if args.stage.json {
        report.print();
    } else {
        eprintln!(
            "Extract {} ({}) written to {}",
            outcome.run.id,
            outcome.manifest.mode,
            outcome.run.extract_dir().display()
        );
    }
    Ok(code)
}
