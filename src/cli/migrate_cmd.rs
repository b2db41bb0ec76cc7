//! `contactsync migrate`: a CSV or Parquet export into GHL, deduplicated against itself and the
//! location's contacts. Without `--apply` it only reads GHL and writes the plan and report.

use super::stage::{StateLock, load_pipeline, pipeline_clock};
use super::{CommandError, CommandReport, MigrateArgs};
use crate::exit_code::ExitCode;
use crate::extract::ExtractOptions;
use crate::migrate::{RowOutcome, map_row, plan_migration, read_export};
use crate::normalize;
use crate::pipeline::{extract_run, load_run, match_model, plan_run};
use anyhow::Context;

pub(super) async fn run(args: MigrateArgs) -> Result<ExitCode, CommandError> {
    let config = load_pipeline(&args.stage)?;
    if config.migrate.mapping.is_empty() {
        return Err(CommandError {
            code: ExitCode::BadConfig,
            error: anyhow::anyhow!(
                "{}: [migrate] has no `mapping`: say which input column is which GHL field",
                config.source_path.display()
            ),
        });
    }
    let (header, raw_rows, mut rejected) = read_export(&args.input)?;
    // Rows the reader already refused (ragged CSV lines) are rows of the file too.
    let unreadable = rejected.len();
    let unknown: Vec<&String> = config
        .migrate
        .mapping
        .keys()
        .filter(|c| !header.contains(c))
        .collect();
    if !unknown.is_empty() {
        return Err(CommandError {
            code: ExitCode::BadConfig,
            error: anyhow::anyhow!(
                "{}: migrate.mapping names columns the input does not have: {unknown:?}; its columns are {header:?}",
                args.input.display()
            ),
        });
    }
    let _lock = StateLock::acquire(&config)?;
    let region_code = config.pipeline.default_region.clone();
    let region = normalize::region(&region_code);
    let mut mapped = Vec::new();
    for raw in &raw_rows {
        match map_row(raw, &config.migrate, region, &region_code) {
            Ok(row) => mapped.push(row),
            Err(reason) => rejected.push(crate::migrate::Rejected {
                row: raw.row,
                reason,
                raw: row_text(&header, raw),
            }),
        }
    }
    rejected.sort_by_key(|r| r.row);

    // The location as it is now: an incremental extract (reads only).
    let clock = pipeline_clock()?;
    let extract = extract_run(
        &config,
        &ExtractOptions {
            full: false,
            progress: !args.stage.json,
            ..ExtractOptions::default()
        },
        clock.clone(),
    )
    .await?;
    let run = extract.run.clone();
    let model = match_model(&config)?;
    let snapshot = run.extract_dir().join("ghl/contacts.parquet");
    let transform_dir = run.transform_dir();
    let migrate_config = config.migrate.clone();
    let rows_for_worker = mapped.clone();
    let (mut outcomes, mut summary) = tokio::task::spawn_blocking(move || {
        plan_migration(
            &rows_for_worker,
            &snapshot,
            &model,
            region,
            &migrate_config,
            &transform_dir,
        )
    })
    .await
    .context("migration worker")??;
    // Rows the plan refused (a create with nothing to find it by) join the quarantine.
    for o in outcomes.iter().filter(|o| o.outcome == "reject") {
        let raw = raw_rows.iter().find(|r| r.row == o.row);
        rejected.push(crate::migrate::Rejected {
            row: o.row,
            reason: o.reason.clone(),
            raw: raw.map(|raw| row_text(&header, raw)).unwrap_or_default(),
        });
    }
    outcomes.retain(|o| o.outcome != "reject");
    rejected.sort_by_key(|r| r.row);
    summary.rows = (raw_rows.len() + unreadable) as u64;
    summary.rejects = rejected.len() as u64;
    for r in &rejected {
        outcomes.push(RowOutcome {
            row: r.row,
            outcome: "reject".into(),
            contact_id: String::new(),
            reason: r.reason.clone(),
        });
    }
    outcomes.sort_by_key(|o| o.row);
    let (plan, refusal, _) = plan_run(&config, &run)?;
    // A migration is all or nothing at its limits: a refused one writes nothing at all.
    if let Some(refusal) = refusal {
        return Err(CommandError {
            code: ExitCode::SafetyLimit,
            error: anyhow::anyhow!("{refusal}; nothing was written"),
        });
    }

    // The report: rows.csv (every row's fate), quarantine.csv (rejects with the row as read).
    let dir = run.path.join("migrate");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let s = |v: &[&str]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    let mut bytes = Vec::new();
    crate::audit::csv::write_table(
        &mut bytes,
        &s(&["row", "outcome", "contact_id", "reason"]),
        &outcomes
            .iter()
            .map(|o| {
                vec![
                    o.row.to_string(),
                    o.outcome.clone(),
                    o.contact_id.clone(),
                    o.reason.clone(),
                ]
            })
            .collect::<Vec<_>>(),
    )?;
    crate::snapshot::atomic::write(&dir.join("rows.csv"), &bytes)?;
    let mut bytes = Vec::new();
    crate::audit::csv::write_table(
        &mut bytes,
        &s(&["row", "reason", "raw"]),
        &rejected
            .iter()
            .map(|r| vec![r.row.to_string(), r.reason.clone(), r.raw.clone()])
            .collect::<Vec<_>>(),
    )?;
    crate::snapshot::atomic::write(&dir.join("quarantine.csv"), &bytes)?;
    crate::snapshot::atomic::write(
        &dir.join("summary.json"),
        &serde_json::to_vec_pretty(&summary)?,
    )?;

    let mut report = CommandReport {
        command: "migrate".into(),
        run_id: Some(run.id.clone()),
        run_dir: Some(run.path.clone()),
        ..CommandReport::default()
    };
    let mut code = ExitCode::Ok;
    if args.apply {
        let (load_report, load_code) = load_run(&config, &run, false, clock.clone()).await?;
        report.counts.extend(load_report.counts);
        report.requests = load_report.requests;
        report.errors = load_report.errors;
        code = load_code;
    }
    for (k, v) in [
        ("rows", summary.rows),
        ("creates", summary.creates),
        ("updates", summary.updates),
        ("unchanged", summary.unchanged),
        ("merges", summary.merges),
        ("rejects", summary.rejects),
        ("planned_operations", plan.operations.len() as u64),
    ] {
        report.counts.insert(k.into(), v);
    }
    report.exit_code = code as u8;
    if args.stage.json {
        report.print();
    } else {
        eprintln!(
            "Migration of {}: {} rows → {} creates, {} updates, {} unchanged, {} merged into another row, {} rejected",
            args.input.display(),
            summary.rows,
            summary.creates,
            summary.updates,
            summary.unchanged,
            summary.merges,
            summary.rejects
        );
        eprintln!("  every row:   {}", dir.join("rows.csv").display());
        eprintln!("  rejected:    {}", dir.join("quarantine.csv").display());
        eprintln!(
            "  plan:        {} ({} operations)",
            run.load_dir().join("plan.md").display(),
            plan.operations.len()
        );
        if args.apply {
            eprintln!(
                "  applied:     {} operations, {} failed",
                report.counts.get("applied").copied().unwrap_or(0),
                report.counts.get("failed").copied().unwrap_or(0)
            );
        } else {
            eprintln!("  Nothing was written to GHL: review the plan, then rerun with --apply.");
        }
    }
    Ok(code)
}

/// A row as read, its cells in header order (kept in the quarantine so nothing is lost).
fn row_text(header: &[String], raw: &crate::migrate::RawRow) -> String {
    header
        .iter()
        .map(|h| raw.cells.get(h).cloned().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(",")
}
