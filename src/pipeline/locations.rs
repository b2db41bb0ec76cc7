//! `contactsync run` on a pipeline file with `[ghl] locations`: today's one-location pipeline run
//! once per location, at most `[pipeline] max_parallel_locations` at a time, each location with
//! its own state directory (`state_dir/locations/<id>/`: runs, ledger, lock, cursors, tokens) and
//! its own GHL client, so its own GHL rate budget (GHL's budget is per app and location).
//!
//! The locations share one BulkSMS account, so the run goes in three steps: every location's
//! extract; then the account-wide number index (which locations hold each number, from every
//! location's latest contacts, kept by the [`RoutingStore`]: local files, or PostgreSQL shared by
//! the shards of every machine) decides which location adopts each number nobody holds
//! ([`super::agency`]) and writes each run's `extract/agency_routing.json`; then each location's
//! transform → plan → load → audit, which keeps only its share of the messages. While some
//! location was never extracted (a first night, another machine's shard not run yet) no number is
//! adopted: it may be that location's. One location's
//! failure (revoked install, 401, safety limit, any error) is recorded in its own report and
//! `metrics.prom` and stops no other location.

use super::agency::{Adoption, Shard, adopt};
use super::lock::StateLock;
pub use super::routing_store::AGENCY_DIR;
use super::routing_store::RoutingStore;
use super::run::{record_failed_run, run_after_extract};
use super::stages::extract_run;
use super::{CommandError, CommandReport};
use crate::clock::Clock;
use crate::config::{Locations, PipelineConfig};
use crate::exit_code::ExitCode;
use crate::extract::{AccountSource, ExtractOptions, ExtractOutcome, SharedAccount};
use crate::snapshot::desired::read_rows;
use crate::transform::agency_routing::AgencyRouting;
use crate::transform::inputs::MessageRowIn;
use anyhow::Context;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// One location's part of a multi-location run.
#[derive(Debug, Clone, Serialize)]
pub struct LocationReport {
    /// The location id.
    pub location: String,
    /// What its run did (its `exit_code` is the location's).
    #[serde(flatten)]
    pub report: CommandReport,
}

/// Sums over the locations of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Locations that ended 0.
    pub locations_ok: u64,
    /// Locations that ended otherwise.
    pub locations_failed: u64,
    /// Every count summed over the locations.
    pub counts: BTreeMap<String, u64>,
    /// Requests summed over the locations, per API.
    pub requests: BTreeMap<String, u64>,
}

/// What `run --json` prints for a multi-location pipeline.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AgencyReport {
    /// Always `run`.
    pub command: String,
    /// `i/n` when the run was one shard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// One entry per location run, in id order.
    pub locations: Vec<LocationReport>,
    /// Sums over the locations.
    pub totals: Totals,
    /// Account-wide things a person should look at.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The run's exit code ([`ExitCode::across_locations`]).
    pub exit_code: u8,
}

impl AgencyReport {
    /// Prints the report as one JSON line on stdout.
    pub fn print(&self) {
        println!(
            "{}",
            serde_json::to_string(self).expect("AgencyReport always serialises")
        );
    }
}

/// The locations a multi-location file runs, and those in `shard` (all of them without one).
/// `"all-installed"` asks the agency grant which locations the app is installed in.
pub async fn resolve_locations(
    config: &PipelineConfig,
    shard: Option<Shard>,
    clock: Arc<dyn Clock>,
) -> Result<(Vec<String>, Vec<String>), CommandError> {
    let mut all = match config.locations() {
        Locations::Listed(ids) => ids,
        Locations::AllInstalled => installed_locations(config, clock).await?,
        Locations::Single(_) => {
            return Err(CommandError {
                code: ExitCode::BadConfig,
                error: anyhow::anyhow!(
                    "{} names one location (`ghl.location_id`); --shard and --all-locations need `ghl.locations`",
                    config.source_path.display()
                ),
            });
        }
    };
    all.sort();
    all.dedup();
    let run: Vec<String> = all
        .iter()
        .filter(|id| shard.is_none_or(|s| s.holds(id)))
        .cloned()
        .collect();
    Ok((all, run))
}

/// The locations the agency app is installed in (with per-location Private Integration
/// Tokens: the locations that have one).
async fn installed_locations(
    config: &PipelineConfig,
    clock: Arc<dyn Clock>,
) -> Result<Vec<String>, CommandError> {
    let installed = super::clients::installed_ghl_locations(config, clock)
        .await
        .map_err(|e| CommandError {
            code: ExitCode::BadConfig,
            error: anyhow::Error::new(e).context(format!(
                "{}: listing the locations of `ghl.locations = \"all-installed\"`",
                config.source_path.display()
            )),
        })?;
    Ok(installed.into_iter().map(|l| l.id).collect())
}

/// A location that got through its extract, waiting for the others.
struct Extracted {
    config: PipelineConfig,
    outcome: ExtractOutcome,
    seconds: f64,
    _lock: StateLock,
}

/// Runs `run` (the locations of this shard) and writes the agency's `metrics.prom`.
pub async fn run_locations(
    config: &PipelineConfig,
    shard: Option<Shard>,
    progress: bool,
    clock: Arc<dyn Clock>,
) -> Result<AgencyReport, CommandError> {
    let (all, ids) = resolve_locations(config, shard, clock.clone()).await?;
    let permits = Arc::new(Semaphore::new(config.pipeline.max_parallel_locations));
    let mut reports: BTreeMap<String, CommandReport> = BTreeMap::new();
    let Some(first) = ids.first() else {
        return Ok(AgencyReport {
            command: "run".into(),
            shard: shard.map(|s| format!("{}/{}", s.index, s.count)),
            warnings: vec!["no location of the pipeline falls in this shard".into()],
            ..AgencyReport::default()
        });
    };

    // Which numbers each location holds and who planned each send: this machine's state
    // directory, or the database every shard's runner shares.
    let routing_store =
        Arc::new(RoutingStore::open(config).context("opening the agency's routing store")?);

    // 0. The BulkSMS account, read once for every location (in the background: the locations'
    // GHL reads start at once and take its tables when it is done).
    let (account_done, account) = tokio::sync::watch::channel(None);
    let account_read = tokio::spawn(read_account(
        config.for_location(first),
        config.state_dir().join(AGENCY_DIR).join("account"),
        account_done,
        clock.clone(),
    ));

    // 1. Every location's extract (GHL contacts and history, with its own rate budget).
    let mut extracts = JoinSet::new();
    for id in &ids {
        let location = config.for_location(id);
        let permits = permits.clone();
        let clock = clock.clone();
        let id = id.clone();
        let account = account.clone();
        let routing_store = routing_store.clone();
        extracts.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            let result =
                extract_location(&location, account, progress, clock.clone(), &routing_store).await;
            if let Err(failed) = &result {
                record_failed_run(&location, failed, clock.as_ref());
            }
            (id, location, result)
        });
    }
    let mut extracted: Vec<Extracted> = Vec::new();
    while let Some(joined) = extracts.join_next().await {
        let (id, _, result) = joined.context("a location's extract task")?;
        match result {
            Ok(done) => extracted.push(done),
            Err(failed) => {
                tracing::error!(location_id = %id, error = %format!("{:#}", failed.error), "Location failed");
                reports.insert(id, failed_report(&failed));
            }
        }
    }

    let account_requests = account_read
        .await
        .context("the BulkSMS account read task")?;

    // 2. Who holds each number, and who adopts the numbers nobody holds.
    let state_dir = config.state_dir();
    let mut warnings = Vec::new();
    let routings = match extracted.first() {
        Some(first) => {
            let messages: Vec<MessageRowIn> = read_rows(
                &first
                    .outcome
                    .run
                    .extract_dir()
                    .join("bulksms/messages.parquet"),
            )?;
            let read = routing_store.number_index(&all)?;
            let sent_by = routing_store.sent_by(&messages)?;
            // A number held only by a location no runner has extracted yet looks held by
            // nobody; adopting it would make a lead of another location's contact. Leads wait
            // until every location was extracted once (the messages stay in the snapshot).
            let adoption = if read.unknown.is_empty() {
                adopt(
                    &messages,
                    &read.index,
                    &sent_by,
                    config.bulksms.default_location.as_deref(),
                )
            } else {
                warnings.push(format!(
                    "{} locations were never extracted ({}): inbound numbers no contact holds make no lead until they are (run them, or take them out of `[ghl] locations`)",
                    read.unknown.len(),
                    read.unknown.join(", ")
                ));
                Adoption::default()
            };
            if !adoption.orphans.is_empty() {
                warnings.push(format!(
                    "{} inbound numbers no location holds made no lead: no location texted them and `[bulksms] default_location` is not set",
                    adoption.orphans.len()
                ));
            }
            let mut routings = HashMap::new();
            for e in &extracted {
                let id = e.config.ghl.location_id.clone();
                let routing = AgencyRouting {
                    adopted_numbers: adoption.of(&id),
                    location_id: id.clone(),
                };
                routings.insert(id, routing);
            }
            routings
        }
        None => HashMap::new(),
    };

    // 3. Each location's transform → plan → load → audit on its share of the messages.
    let mut rest = JoinSet::new();
    for e in extracted {
        let id = e.config.ghl.location_id.clone();
        let routing = routings.get(&id).cloned().unwrap_or_default();
        let permits = permits.clone();
        let clock = clock.clone();
        let routing_store = routing_store.clone();
        rest.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            let record_sends = |plan: &crate::snapshot::contract::plan::Plan| {
                routing_store.record_sends(&id, plan)
            };
            let result = match routing.write(&e.outcome.run.extract_dir()) {
                Ok(()) => {
                    run_after_extract(
                        &e.config,
                        &e.outcome,
                        e.seconds,
                        clock.clone(),
                        &record_sends,
                    )
                    .await
                }
                Err(error) => Err(error.into()),
            };
            if let Err(failed) = &result {
                record_failed_run(&e.config, failed, clock.as_ref());
            }
            drop(e._lock);
            (id, result)
        });
    }
    while let Some(joined) = rest.join_next().await {
        let (id, result) = joined.context("a location's run task")?;
        let report = match result {
            Ok((report, _)) => report,
            Err(failed) => {
                tracing::error!(location_id = %id, error = %format!("{:#}", failed.error), "Location failed");
                failed_report(&failed)
            }
        };
        reports.insert(id, report);
    }

    let mut report = AgencyReport {
        command: "run".into(),
        shard: shard.map(|s| format!("{}/{}", s.index, s.count)),
        warnings,
        ..AgencyReport::default()
    };
    let codes: Vec<ExitCode> = reports
        .values()
        .map(|r| ExitCode::from_u8(r.exit_code))
        .collect();
    report.exit_code = ExitCode::across_locations(&codes) as u8;
    for (location, r) in reports {
        if r.exit_code == 0 {
            report.totals.locations_ok += 1;
        } else {
            report.totals.locations_failed += 1;
        }
        for (k, v) in &r.counts {
            *report.totals.counts.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &r.requests {
            *report.totals.requests.entry(k.clone()).or_default() += v;
        }
        report.locations.push(LocationReport {
            location,
            report: r,
        });
    }
    *report.totals.requests.entry("bulksms".into()).or_default() += account_requests;
    let metrics = agency_metrics(config, &report);
    crate::snapshot::atomic::write(&state_dir.join(metrics_file(shard)), metrics.as_bytes())?;
    Ok(report)
}

/// The agency's metrics file: `metrics.prom`, one per shard when sharded (shards may share a
/// state directory).
pub fn metrics_file(shard: Option<Shard>) -> String {
    match shard {
        None => "metrics.prom".into(),
        Some(s) => format!("metrics-shard-{}-of-{}.prom", s.index, s.count),
    }
}

/// How long the account read waits for another runner's (another shard on the same state
/// directory) before failing the run.
const ACCOUNT_LOCK_WAIT_SECS: u64 = 3_600;

/// What the account read's pipeline name gains, so its lock is its own.
const ACCOUNT_LOCK_NAME: &str = "bulksms-account";

/// Reads the BulkSMS account once (messages, blocked numbers, profile) into `state_dir`, an
/// extract of its own with its own cursors, and tells the locations' extracts where it is.
/// Returns the BulkSMS requests it made.
async fn read_account(
    mut account: PipelineConfig,
    state_dir: PathBuf,
    done: tokio::sync::watch::Sender<Option<Result<PathBuf, String>>>,
    clock: Arc<dyn Clock>,
) -> u64 {
    account.pipeline.state_dir = state_dir;
    // Its own lock beside the locations' (with `[state] url` an advisory lock is named by
    // pipeline and location: the account's must not be the first location's, which it is a
    // copy of).
    account.pipeline.name = format!("{}:{ACCOUNT_LOCK_NAME}", account.pipeline.name);
    let lock_config = account.clone();
    let locked = tokio::task::spawn_blocking(move || {
        StateLock::acquire_waiting(
            &lock_config,
            std::time::Duration::from_secs(ACCOUNT_LOCK_WAIT_SECS),
        )
    })
    .await;
    let _lock = match locked {
        Ok(Ok(lock)) => lock,
        Ok(Err(failed)) => {
            done.send_replace(Some(Err(format!("{:#}", failed.error))));
            return 0;
        }
        Err(e) => {
            done.send_replace(Some(Err(format!("waiting for the account lock: {e}"))));
            return 0;
        }
    };
    let options = ExtractOptions {
        account: AccountSource::Only,
        ..ExtractOptions::default()
    };
    match extract_run(&account, &options, clock.clone()).await {
        Ok(outcome) => {
            done.send_replace(Some(Ok(outcome.run.extract_dir())));
            outcome
                .manifest
                .requests
                .get("bulksms")
                .map_or(0, |m| m.requests)
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "The BulkSMS account read failed");
            done.send_replace(Some(Err(format!("{e:#}"))));
            0
        }
    }
}

/// Takes a location's lock, extracts it and records its numbers in the routing store.
async fn extract_location(
    location: &PipelineConfig,
    account: SharedAccount,
    progress: bool,
    clock: Arc<dyn Clock>,
    routing_store: &RoutingStore,
) -> Result<Extracted, CommandError> {
    let lock = StateLock::acquire(location)?;
    let started = Instant::now();
    super::run::prepare_snapshots(location, clock.clone()).await?;
    let options = ExtractOptions {
        full: false,
        progress,
        account: AccountSource::Shared(account),
    };
    let outcome = extract_run(location, &options, clock.clone())
        .await
        .map_err(CommandError::from)?;
    routing_store
        .extracted(location, &outcome.run)
        .with_context(|| {
            format!(
                "recording the numbers of location {}",
                location.ghl.location_id
            )
        })?;
    Ok(Extracted {
        config: location.clone(),
        outcome,
        seconds: started.elapsed().as_secs_f64(),
        _lock: lock,
    })
}

fn failed_report(failed: &CommandError) -> CommandReport {
    CommandReport {
        command: "run".into(),
        errors: vec![format!("{:#}", failed.error)],
        exit_code: failed.code as u8,
        ..CommandReport::default()
    }
}

/// The agency's `metrics.prom`: every location's own metrics with a `location` label, each
/// family once, then how many locations ended ok and failed and the run's exit code.
fn agency_metrics(config: &PipelineConfig, report: &AgencyReport) -> String {
    let texts: Vec<(String, String)> = report
        .locations
        .iter()
        .map(|l| {
            let path: PathBuf = config
                .for_location(&l.location)
                .state_dir()
                .join("metrics.prom");
            (
                l.location.clone(),
                std::fs::read_to_string(path).unwrap_or_default(),
            )
        })
        .collect();
    let mut out = label_locations(&texts);
    let pipeline = config.pipeline.name.replace(['\\', '"', '\n'], "_");
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "# HELP contactsync_locations Locations of the run by how they ended.\n# TYPE contactsync_locations gauge\ncontactsync_locations{{pipeline=\"{pipeline}\",status=\"ok\"}} {}\ncontactsync_locations{{pipeline=\"{pipeline}\",status=\"failed\"}} {}",
        report.totals.locations_ok, report.totals.locations_failed
    );
    let _ = writeln!(
        out,
        "# HELP contactsync_agency_exit_code Exit code of the whole multi-location run.\n# TYPE contactsync_agency_exit_code gauge\ncontactsync_agency_exit_code{{pipeline=\"{pipeline}\"}} {}",
        report.exit_code
    );
    out
}

/// Merges Prometheus texts of several locations: a `location` label on every sample and each
/// family's HELP and TYPE once, its samples together (the format wants them grouped).
pub fn label_locations(texts: &[(String, String)]) -> String {
    let mut order: Vec<String> = Vec::new();
    let mut families: HashMap<String, (Vec<String>, Vec<String>)> = HashMap::new();
    for (location, text) in texts {
        let location = location.replace(['\\', '"', '\n'], "_");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (name, is_header) = match line.strip_prefix("# ") {
                Some(rest) => (rest.split_whitespace().nth(1).unwrap_or(""), true),
                None => (line.split(['{', ' ']).next().unwrap_or(""), false),
            };
            if !families.contains_key(name) {
                order.push(name.to_string());
            }
            let (headers, samples) = families.entry(name.to_string()).or_default();
            if is_header {
                if !headers.iter().any(|h| h == line) {
                    headers.push(line.to_string());
                }
            } else if let Some((head, tail)) = line.split_once('{') {
                samples.push(format!("{head}{{location=\"{location}\",{tail}"));
            } else if let Some((head, tail)) = line.split_once(' ') {
                samples.push(format!("{head}{{location=\"{location}\"}} {tail}"));
            }
        }
    }
    let mut out = String::new();
    for name in order {
        let (headers, samples) = &families[&name];
        for line in headers.iter().chain(samples) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_metrics_merge_into_one_family_each_with_a_location_label() {
        let text = "# HELP contactsync_requests r\n# TYPE contactsync_requests gauge\ncontactsync_requests{pipeline=\"p\",api=\"ghl\"} 5\n";
        let merged = label_locations(&[
            ("a".into(), text.into()),
            ("b".into(), text.replace(" 5", " 7")),
        ]);
        assert_eq!(
            merged,
            "# HELP contactsync_requests r\n# TYPE contactsync_requests gauge\ncontactsync_requests{location=\"a\",pipeline=\"p\",api=\"ghl\"} 5\ncontactsync_requests{location=\"b\",pipeline=\"p\",api=\"ghl\"} 7\n"
        );
    }
}
