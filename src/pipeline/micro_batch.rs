//! Micro-batches: `contactsync serve` turns the spooled webhook events it has not consumed yet into
//! an incremental run for just the contacts and messages they name, every `[serve]
//! batch_interval_secs`. Contacts are read back with `GET /contacts/{id}` (a webhook body lacks DND
//! settings and may be older than a reordered sibling), new ones are matched against the last
//! acting run's clusters (its neighbourhood in the snapshot, not the whole location), the welcome
//! trigger and STOP replies decide the desired state, and the plan goes through the same diff,
//! ledger and idempotency keys as the nightly run: what a batch did, the nightly finds done.
//! The nightly run stays the reconciler: events a batch never saw (dropped webhooks) it catches.
//!
//! A batch takes the state directory's lock and skips its tick when the nightly run holds it.
//! The spool's consumer offset is committed only after the batch's load is recorded in the
//! ledger, so a batch killed part-way is redone from the same events and finds its work done.

use super::clients::{bulksms_client, ghl_client};
use super::stages::match_model;
use crate::clock::Clock;
use crate::config::PipelineConfig;
use crate::extract::rows::contact_row;
use crate::load::apply::{ApplyMetrics, ApplyOptions, apply};
use crate::load::blocked::blocked_now;
use crate::load::diff::{DiffInput, PlanDecision, build_plan};
use crate::load::ledger::Ledger;
use crate::load::owed::{leave_out_done, register_owed};
use crate::load::plan_io::write_plan_with_warnings;
use crate::normalize;
use crate::serve::spool::{EventSource, SpoolReader, SpooledEvent};
use crate::snapshot::contact::SnapshotContact;
use crate::snapshot::contract::plan::Plan;
use crate::snapshot::contract::transform_outputs::{CLUSTERS_FILE, ClusterRow, NORMALIZED_FILE};
use crate::snapshot::desired::{DesiredContact, OPTED_OUT_TAG, read_rows, write_rows};
use crate::snapshot::phone::{digits, e164};
use crate::snapshot::run::{RunDir, list_runs};
use crate::snapshot::schema::{BlockedNumberRow, ContactRow, contacts_schema};
use crate::transform::history::field_texts;
use crate::transform::reply_keywords::is_opt_out;
use crate::transform::triggers::reminders::ReminderKind;
use crate::transform::triggers::{self, PreviousState, TriggerContact, TriggersConfig};
use anyhow::Context;
use matching::match_new_contacts;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The spool consumer name of micro-batches.
pub const CONSUMER: &str = "micro-batch";
/// Most events one batch takes; the rest wait for the next tick.
pub const MAX_EVENTS: usize = 1_000;
/// What a tick did.
#[derive(Debug)]
pub enum BatchOutcome {
    /// Nothing in the spool past the committed offset.
    Idle,
    /// Another command (the nightly run) holds the state lock: the events wait for the next tick.
    LockHeld,
    /// No run has acted on this location yet: the nightly's first run is the baseline, so the
    /// events were consumed without acting (that run sees every contact anyway).
    NoBaseline { events: usize },
    /// A batch ran; its report is also in `STATE/batches/<id>/report.json`.
    Done(Box<BatchReport>),
}

/// What one batch read, decided and applied.
#[derive(Debug, Default, Clone, Serialize)]
pub struct BatchReport {
    pub id: String,
    /// The acting run whose snapshot and clusters the batch matched against.
    pub base_run: String,
    pub events: usize,
    pub from_seq: u64,
    pub next_seq: u64,
    /// Contacts read back with `GET /contacts/{id}`.
    pub contacts_read: usize,
    /// Named by an event but gone (deleted) by the time of the read.
    pub contacts_gone: usize,
    /// Read-back contacts the base run's snapshot did not hold.
    pub new_contacts: usize,
    /// New contacts matched into an existing cluster: marked, never welcomed.
    pub duplicates: usize,
    /// New contacts that matched only each other: left to the nightly run, which picks the
    /// survivor (a batch guessing it could welcome the one the nightly marks).
    pub left_to_nightly: usize,
    /// Numbers that replied STOP in this batch's events.
    pub opt_outs: usize,
    /// Operations in the plan after the ledger's done ones were left out.
    pub planned: usize,
    /// Operations left out because the ledger shows them done (by a run or an earlier batch).
    pub already_done: usize,
    pub refused: bool,
    pub apply: ApplyMetrics,
    pub errors: Vec<String>,
    /// Seconds spent reading back, matching and deciding, and applying.
    pub read_back_secs: f64,
    pub decide_secs: f64,
    pub apply_secs: f64,
}

/// `STATE/batches`: one folder per batch (its read-back contacts, plan and report).
pub fn batches_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("batches")
}

/// The run's lock (the same one `run` and the stage commands take: the state directory's lock file,
/// and with `[state] url` the PostgreSQL advisory lock), if free.
fn try_state_lock(config: &PipelineConfig) -> anyhow::Result<Option<crate::state::StateLock>> {
    match config.state_store().lock(std::time::Duration::ZERO) {
        Ok(lock) => Ok(Some(lock)),
        Err(crate::state::LockError::Held(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The newest run that acted (extract finished, transform wrote clusters, plan accepted): what
/// the next nightly run will measure "new" against, so a batch measures against it too.
fn base_run(state_dir: &Path) -> anyhow::Result<Option<RunDir>> {
    Ok(list_runs(state_dir)?.into_iter().rev().find(|r| {
        r.extract_manifest().is_some()
            && r.transform_dir().join(CLUSTERS_FILE).exists()
            && r.plan_committed()
    }))
}

/// What a batch's events name.
#[derive(Debug, Default)]
struct Changes {
    /// Contacts to read back, in first-seen order.
    contact_ids: Vec<String>,
    /// Numbers (digits) that replied with an opt-out word, with the message that did.
    opt_out_numbers: BTreeMap<String, String>,
    /// Contacts whose inbound GHL message was an opt-out (their number is known after reading).
    opt_out_contacts: BTreeSet<String>,
}

const CONTACT_EVENTS: [&str; 5] = [
    "ContactCreate",
    "ContactUpdate",
    "ContactDndUpdate",
    "ContactTagUpdate",
    "ContactDelete",
];

impl Changes {
    fn of(events: &[SpooledEvent]) -> Changes {
        let mut changes = Changes::default();
        let mut seen: HashSet<String> = HashSet::new();
        let mut add = |changes: &mut Changes, id: &str| {
            // The id goes into a URL path: anything but a plain id is not read back.
            let plain = !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !plain {
                tracing::warn!(
                    id,
                    "Contact id in a webhook is not a plain id; left to the nightly run"
                );
            } else if seen.insert(id.to_string()) {
                changes.contact_ids.push(id.to_string());
            }
        };
        for event in events {
            let Ok(body) = serde_json::from_str::<Value>(&event.body) else {
                tracing::warn!(seq = event.seq, "Spooled event is not JSON; skipped");
                continue;
            };
            match event.source {
                EventSource::Ghl => {
                    let kind = body["type"].as_str().unwrap_or("");
                    if CONTACT_EVENTS.contains(&kind) {
                        // A delete reads back as gone: the nightly run handles deletions.
                        add(&mut changes, body["id"].as_str().unwrap_or(""));
                    } else if kind == "InboundMessage"
                        && let Some(contact) = body["contactId"].as_str()
                        && body["body"].as_str().is_some_and(is_opt_out)
                    {
                        add(&mut changes, contact);
                        changes.opt_out_contacts.insert(contact.to_string());
                    }
                }
                EventSource::Bulksms => {
                    for message in body.as_array().into_iter().flatten() {
                        let received = message["type"].as_str() == Some("RECEIVED");
                        if received
                            && message["body"].as_str().is_some_and(is_opt_out)
                            && let Some(from) = message["from"].as_str()
                        {
                            let id = match &message["id"] {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            changes.opt_out_numbers.insert(digits(from), id);
                        }
                    }
                }
            }
        }
        changes
    }
}

#[derive(Deserialize)]
struct NormalizedPhone {
    id: String,
    phone_e164: Option<String>,
}

/// Runs one micro-batch if the state lock is free and the spool holds unconsumed events.
pub async fn run_micro_batch(
    config: &PipelineConfig,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<BatchOutcome> {
    let state = config.state_dir();
    let Some(_lock) = try_state_lock(config)? else {
        return Ok(BatchOutcome::LockHeld);
    };
    let reader = SpoolReader::new(&state);
    let from_seq = reader.committed(CONSUMER)?;
    let events = reader.read_from(from_seq, MAX_EVENTS)?;
    let Some(last) = events.last() else {
        return Ok(BatchOutcome::Idle);
    };
    let next_seq = last.seq + 1;
    let Some(base) = base_run(&state)? else {
        reader.commit(CONSUMER, next_seq)?;
        return Ok(BatchOutcome::NoBaseline {
            events: events.len(),
        });
    };
    let now = clock.now();
    let mut report = BatchReport {
        id: format!("{}-{from_seq}", now.format("%Y%m%dT%H%M%SZ")),
        base_run: base.id.clone(),
        events: events.len(),
        from_seq,
        next_seq,
        ..BatchReport::default()
    };
    let dir = batches_dir(&state).join(&report.id);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let changes = Changes::of(&events);

    // Read back every contact an event names: the current record, DND included. The clients are
    // made under the lock: GHL refresh tokens are single-use, and the token store on disk is
    // shared with the nightly run, which never holds the lock at the same time.
    let ghl = ghl_client(config, clock.clone())?;
    let bulksms = bulksms_client(config)?;
    let started = std::time::Instant::now();
    let mut rows = Vec::new();
    for id in &changes.contact_ids {
        let answer = ghl
            .get_contact(id)
            .await
            .with_context(|| format!("reading back contact {id} (GET /contacts/{{id}})"))?;
        match answer {
            None => report.contacts_gone += 1,
            Some(raw) => match contact_row(raw, now.timestamp_millis()) {
                Ok(row) => rows.push(row),
                Err(reason) => {
                    tracing::warn!(contact = %id, reason, "Read-back contact unusable; left to the nightly run");
                }
            },
        }
    }
    report.contacts_read = rows.len();
    report.read_back_secs = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    // Parquet, matching and the ledger are blocking work: off the runtime that answers webhooks.
    let (config_owned, base_owned, dir_owned) = (config.clone(), base.clone(), dir.clone());
    let (decided, returned) = tokio::task::spawn_blocking(move || {
        let decided = decide(
            &config_owned,
            &base_owned,
            &dir_owned,
            rows,
            &changes,
            &mut report,
            now,
        );
        (decided, report)
    })
    .await
    .context("micro-batch worker")?;
    report = returned;
    let Decided {
        plan,
        ledger,
        blocked_path,
    } = decided?;
    report.decide_secs = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    if config.load.enabled && !plan.operations.is_empty() {
        let blocked = blocked_now(&blocked_path, &bulksms).await?;
        let options = ApplyOptions {
            run_id: report.id.clone(),
            concurrency: config.load.concurrency,
            breaker_threshold: 10,
            quiet_hours: config.load.quiet_hours.clone(),
            clock,
        };
        let (metrics, errors) = apply(&plan, ledger, &ghl, &bulksms, blocked, &options).await?;
        report.apply = metrics;
        report.errors.extend(errors);
    }
    report.apply_secs = started.elapsed().as_secs_f64();
    let json = serde_json::to_vec_pretty(&report)?;
    crate::snapshot::atomic::write(&dir.join("report.json"), &json)?;
    // The load is in the ledger (failed operations stay owed there for the nightly run): only now
    // are the events consumed.
    reader.commit(CONSUMER, next_seq)?;
    tracing::info!(
        batch = %report.id,
        events = report.events,
        contacts = report.contacts_read,
        new = report.new_contacts,
        duplicates = report.duplicates,
        applied = report.apply.applied,
        failed = report.apply.failed,
        "Micro-batch finished"
    );
    Ok(BatchOutcome::Done(Box::new(report)))
}

/// What a batch decided: the plan (written to its folder, owed operations registered), the
/// ledger to apply it with, and the blocked list its diff read.
struct Decided {
    plan: Plan,
    ledger: Ledger,
    blocked_path: PathBuf,
}

/// Matches the read-back contacts, decides the desired state and plans it (blocking work).
fn decide(
    config: &PipelineConfig,
    base: &RunDir,
    dir: &Path,
    rows: Vec<ContactRow>,
    changes: &Changes,
    report: &mut BatchReport,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Decided> {
    // Through Parquet, so the batch reads the contacts exactly as the nightly's snapshot does.
    let read_back_path = dir.join("contacts.parquet");
    write_rows(&read_back_path, &contacts_schema(), &rows)?;
    let read_back: Vec<SnapshotContact> = read_rows(&read_back_path)?;

    // The base run: its snapshot, clusters and phones.
    let base_contacts: Vec<SnapshotContact> =
        read_rows(&base.extract_dir().join("ghl/contacts.parquet"))?;
    let clusters: Vec<ClusterRow> = read_rows(&base.transform_dir().join(CLUSTERS_FILE))?;
    let survivor_of: HashMap<String, String> = clusters
        .into_iter()
        .map(|c| (c.id, c.survivor_id))
        .collect();
    let base_ids: HashSet<&str> = base_contacts.iter().map(|c| c.id.as_str()).collect();
    let region = normalize::region(&config.pipeline.default_region);
    let normalized = normalize::contact_rows(&read_back, region);

    // Match the new contacts against the snapshot's neighbourhood.
    let new: Vec<&SnapshotContact> = read_back
        .iter()
        .filter(|c| !base_ids.contains(c.id.as_str()))
        .collect();
    report.new_contacts = new.len();
    let model = match_model(config).map_err(|e| e.error)?;
    let matched = match_new_contacts(&base_contacts, &new, &survivor_of, &model, region)?;
    report.duplicates = matched.duplicate_of.len();
    report.left_to_nightly = matched.held.len();

    // Desired state: duplicates marked, opt-outs recorded, the welcome fired.
    let mut desired: Vec<DesiredContact> = matched
        .duplicate_of
        .iter()
        .map(|(id, survivor)| DesiredContact {
            contact_id: Some(id.clone()),
            duplicate_of: Some(survivor.clone()),
            reason: format!(
                "duplicate of {survivor} (matched by micro-batch {})",
                report.id
            ),
            ..DesiredContact::default()
        })
        .collect();
    let mut opt_out_numbers: BTreeMap<String, String> = changes.opt_out_numbers.clone();
    for (c, n) in read_back.iter().zip(&normalized) {
        if changes.opt_out_contacts.contains(&c.id)
            && let Some(phone) = &n.phone_e164
        {
            opt_out_numbers
                .entry(digits(phone))
                .or_insert_with(|| format!("GHL inbound message of contact {}", c.id));
        }
    }
    report.opt_outs = opt_out_numbers.len();
    let mut snapshot: HashMap<String, SnapshotContact> = base_contacts
        .iter()
        .map(|c| (c.id.clone(), c.clone()))
        .collect();
    for c in &read_back {
        snapshot.insert(c.id.clone(), c.clone());
    }
    if !opt_out_numbers.is_empty() {
        let mut phone_of: HashMap<String, String> =
            read_rows::<NormalizedPhone>(&base.transform_dir().join(NORMALIZED_FILE))?
                .into_iter()
                .filter_map(|n| Some((n.id, n.phone_e164?)))
                .collect();
        for n in &normalized {
            match &n.phone_e164 {
                Some(p) => phone_of.insert(n.id.clone(), p.clone()),
                None => phone_of.remove(&n.id),
            };
        }
        for (id, phone) in &phone_of {
            let number = digits(phone);
            let Some(message) = opt_out_numbers.get(&number) else {
                continue;
            };
            let Some(c) = snapshot.get(id) else { continue };
            if !c.sms_dnd_active() || !c.tags.iter().any(|t| t == OPTED_OUT_TAG) {
                desired.push(DesiredContact {
                    contact_id: Some(id.clone()),
                    sms_dnd: Some(true),
                    sms_dnd_event: Some(format!("opt-out seen by micro-batch {}", report.id)),
                    add_tags: vec![OPTED_OUT_TAG.to_string()],
                    reason: format!("+{number} replied STOP (message {message})"),
                    ..DesiredContact::default()
                });
            }
        }
    }
    // What the base run saw of the contacts this batch read back: the triggers look at no other,
    // and a batch runs every few seconds against a snapshot of the whole location.
    let read_ids: HashSet<&str> = read_back.iter().map(|c| c.id.as_str()).collect();
    let base_of_read: Vec<&SnapshotContact> = base_contacts
        .iter()
        .filter(|c| read_ids.contains(c.id.as_str()))
        .collect();
    let previous = PreviousState {
        run_id: base.id.clone(),
        contact_tags: base_of_read
            .iter()
            .map(|c| (c.id.clone(), c.tags.iter().cloned().collect()))
            .collect(),
        contact_types: base_of_read
            .iter()
            .map(|c| (c.id.clone(), c.contact_type.clone()))
            .collect(),
        contact_fields: base_of_read
            .iter()
            .map(|c| (c.id.clone(), field_texts(&c.custom_fields)))
            .collect(),
        message_status: HashMap::new(),
    };
    // Duplicates in the base run's clusters get no texts, as in the nightly run.
    let marked_in_base = |id: &str| survivor_of.get(id).is_some_and(|s| s != id);
    let trigger_contacts: Vec<TriggerContact> = read_back
        .iter()
        .zip(&normalized)
        .map(|(c, n)| TriggerContact {
            id: c.id.clone(),
            first_name: c.first_name.clone(),
            last_name: c.last_name.clone(),
            company: c.company_name.clone(),
            phone: n.phone_e164.clone(),
            tags: c.tags.clone(),
            contact_type: c.contact_type.clone(),
            custom_fields: field_texts(&c.custom_fields),
            timezone: c.timezone.clone(),
            date_updated: c.date_updated.clone(),
            opted_out: c.sms_dnd_active()
                || n.phone_e164
                    .as_deref()
                    .is_some_and(|p| opt_out_numbers.contains_key(&digits(p))),
            duplicate: matched.duplicate_of.contains_key(&c.id)
                || matched.held.contains(&c.id)
                || marked_in_base(&c.id),
            lead_from_sms: c.is_sms_lead(),
        })
        .collect();
    // The welcome and the status reminders (tag, field, type): their events ("contact X created",
    // "... since run R" with R the base run) are the ones the next nightly run names, so whichever
    // fires first, the other finds it done. Appointment reminders need the appointments the
    // nightly extract reads; the digest and activity notes are the nightly's.
    let realtime = TriggersConfig {
        fire_on_first_run: false,
        welcome: config.transform.triggers.welcome.clone(),
        reminder: config
            .transform
            .triggers
            .reminder
            .iter()
            .filter(|r| !matches!(r.kind(), Ok(ReminderKind::Appointment { .. })))
            .cloned()
            .collect(),
        digest: None,
        activity_notes: false,
    };
    let fired = triggers::fire(
        &realtime,
        &triggers::TriggerInput {
            run_date: now.format("%Y-%m-%d").to_string(),
            previous: Some(&previous),
            contacts: &trigger_contacts,
            messages: &[],
            contacts_by_number: &HashMap::new(),
            digest_counts: BTreeMap::new(),
            digest_facts: Default::default(),
            appointments: &[],
            now,
        },
    );

    // Plan through the same diff and ledger as the nightly run.
    let blocked_path = base.extract_dir().join("bulksms/blocked_numbers.parquet");
    let blocked_rows: Vec<BlockedNumberRow> = read_rows(&blocked_path)?;
    let snapshot_blocked: HashSet<String> = blocked_rows
        .iter()
        .filter_map(|b| e164(&b.phone_number))
        .collect();
    let PlanDecision { mut plan, refusal } = build_plan(
        &DiffInput {
            run_id: report.id.clone(),
            desired_contacts: &desired,
            desired_messages: &fired.messages,
            desired_notes: &[],
            desired_blocked: &[],
            // Tasks come from replies and delivery failures, which only the nightly run decides.
            desired_tasks: &[],
            created_tasks: &HashMap::new(),
            snapshot_contacts: &snapshot,
            snapshot_blocked: &snapshot_blocked,
        },
        &config.load,
    );
    let mut ledger = config.state_store().open_ledger()?;
    report.already_done = leave_out_done(&mut plan, &ledger)?;
    report.planned = plan.operations.len();
    report.refused = refusal.is_some();
    if refusal.is_none() {
        // Owed from here on: if this batch dies before its load, the nightly carries them over.
        register_owed(&plan, &report.id, &mut ledger)?;
    }
    write_plan_with_warnings(&plan, refusal.as_ref(), &[], dir)?;
    if let Some(refusal) = &refusal {
        report.errors.push(refusal.to_string());
    }
    Ok(Decided {
        plan,
        ledger,
        blocked_path,
    })
}

mod matching;
#[cfg(test)]
mod tests;
