//! `contactsync dedupe`: deduplicate any CSV or Parquet table with a match model.

use super::{CommandError, CommandReport, DedupeArgs};
use crate::exit_code::ExitCode;
use crate::matching::{MatchModel, dedupe, io};
use crate::normalize;
use anyhow::Context;

pub(super) async fn run(args: DedupeArgs) -> Result<ExitCode, CommandError> {
    let model = MatchModel::load_or_default(args.model.as_deref()).map_err(|e| CommandError {
        code: ExitCode::BadConfig,
        error: e,
    })?;
    let region = normalize::region(&args.region);
    let started = std::time::Instant::now();
    let (table, quarantined) = io::read_table(&args.input, &model).map_err(|e| CommandError {
        code: ExitCode::BadConfig,
        error: e,
    })?;
    let keep = match &args.pairs {
        Some(_) => dedupe::KeepPairs::AtLeast(args.pairs_min_probability),
        None => dedupe::KeepPairs::Nothing,
    };
    let seconds_reading = started.elapsed().as_secs_f64();
    let result = tokio::task::spawn_blocking({
        let model = model.clone();
        move || dedupe::run(&model, table, region, 42, keep)
    })
    .await
    .context("dedupe worker")??;
    let writing = std::time::Instant::now();
    io::write_assignments(&result, &args.out)?;
    if let Some(pairs) = &args.pairs {
        io::write_pairs(&result, model.threshold, pairs)?;
    }
    let quarantine_file = io::write_quarantine(&quarantined, &args.out, &args.input)?;
    let seconds_writing = writing.elapsed().as_secs_f64();
    let m = &result.metrics;
    let code = if quarantined.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::PartialFailure
    };
    let mut report = CommandReport {
        command: "dedupe".into(),
        exit_code: code as u8,
        ..CommandReport::default()
    };
    for (k, v) in [
        ("rows", m.rows),
        ("candidate_pairs", m.candidate_pairs),
        ("accepted_pairs", m.accepted_pairs),
        ("clusters", m.clusters),
        ("clusters_with_duplicates", m.clusters_with_duplicates),
        ("splits", m.splits),
        ("refused_strangers", m.refused_strangers),
        ("largest_cluster", m.largest_cluster),
        ("windowed_blocks", m.windowed_blocks),
        ("unknown_country_rows", m.unknown_country_rows),
        ("quarantined_rows", quarantined.len() as u64),
    ] {
        report.counts.insert(k.into(), v);
    }
    for (phase, seconds) in [
        ("reading", seconds_reading),
        ("ordering", m.seconds_ordering),
        ("preparing", m.seconds_preparing),
        ("blocking", m.seconds_blocking),
        ("estimating", m.seconds_estimating),
        ("scoring", m.seconds_scoring),
        ("clustering", m.seconds_clustering),
        ("finishing", m.seconds_finishing),
        ("writing", seconds_writing),
    ] {
        report
            .counts
            .insert(format!("ms.{phase}"), (seconds * 1000.0).round() as u64);
    }
    report.counts.insert(
        "scored_pairs_per_second".into(),
        m.scored_pairs_per_second.round() as u64,
    );
    report
        .counts
        .insert("ms.total".into(), started.elapsed().as_millis() as u64);
    for (size, n) in &m.clusters_by_size {
        report.counts.insert(format!("clusters_of_size.{size}"), *n);
    }
    for (rule, n) in &m.pairs_per_rule {
        report.counts.insert(format!("pairs_from_rule.{rule}"), *n);
    }
    if let Some(path) = &quarantine_file {
        report.errors.push(format!(
            "{} rows quarantined: see {}",
            quarantined.len(),
            path.display()
        ));
    }
    if args.json {
        report.print();
    } else {
        eprintln!(
            "Deduplicated {} rows into {} clusters ({} with duplicates) in {:.2} s: {} candidate pairs, {} accepted, {} merges refused by the consistency rule; written to {}",
            m.rows,
            m.clusters,
            m.clusters_with_duplicates,
            started.elapsed().as_secs_f64(),
            m.candidate_pairs,
            m.accepted_pairs,
            m.splits,
            args.out.display()
        );
        if let Some(path) = quarantine_file {
            eprintln!("{} rows quarantined: {}", quarantined.len(), path.display());
        }
    }
    // A million rows' results are millions of small allocations: the process is about to exit,
    // so they are freed on the side rather than one by one before it can.
    std::thread::spawn(move || drop(result));
    Ok(code)
}
