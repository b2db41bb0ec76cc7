//! Applying a plan exactly once: ledger intent → call → ledger outcome, with read-back for
//! operations whose outcome a crash or a lost answer left unknown, bounded concurrency, the shared
//! rate limiter and backoff (inside the API clients), messaging safety checks right before each
//! send, and a circuit breaker that stops the run when the service looks down.
//! Over 600 lines because intent, call, outcome and read-back share one operation's state, and
//! splitting them would put the exactly-once protocol in two places.

use super::ledger::{Ledger, OpStatus};
use super::sms_dnd::{NumberDnd, ghl_sms_dnd};
use crate::api::ApiError;
use crate::api::bulksms::BulkSmsClient;
use crate::api::bulksms::writes::Submission;
use crate::api::ghl::GhlClient;
use crate::clock::Clock;
use crate::snapshot::contract::plan::{Plan, PlanOp, PlannedOperation};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub use crate::snapshot::desired::DUPLICATE_TAG;

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub run_id: String,
    /// Operations in flight at once.
    pub concurrency: usize,
    /// Consecutive failed operations that open the circuit breaker.
    pub breaker_threshold: usize,
    /// Local hours in which no SMS is sent.
    pub quiet_hours: Option<super::QuietHours>,
    /// Where "now" comes from (quiet hours, the deduplication-id window).
    pub clock: Arc<dyn Clock>,
}

/// What an apply did, by outcome.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ApplyMetrics {
    /// Operations that took effect in this run.
    pub applied: u64,
    /// Operations the ledger already showed as done (a rerun).
    pub already_done: u64,
    /// In-flight operations found to have taken effect when read back.
    pub resolved_by_readback: u64,
    /// Operations that failed after their retries (retried next run).
    pub failed: u64,
    /// Operations deliberately not done (opted out, blocked).
    pub skipped: u64,
    /// Operations left for a later run: the circuit breaker opened, quiet hours, or an opt-out
    /// that could not be checked.
    pub deferred: u64,
    /// Of `deferred`, sends held because the recipient was inside quiet hours.
    pub deferred_quiet_hours: u64,
    /// Those sends by the recipient's time zone: the zones this job's schedule does not reach.
    pub quiet_hours_zones: BTreeMap<String, u64>,
    /// True when the breaker stopped the run.
    pub circuit_open: bool,
}

struct Shared<'a> {
    ledger: Mutex<Ledger>,
    ghl: &'a GhlClient,
    bulksms: &'a BulkSmsClient,
    options: &'a ApplyOptions,
    blocked: HashSet<String>,
    consecutive_failures: AtomicUsize,
    open: AtomicBool,
    applied: AtomicU64,
    already_done: AtomicU64,
    resolved: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    deferred: AtomicU64,
    quiet_hours_zones: Mutex<BTreeMap<String, u64>>,
    errors: Mutex<Vec<String>>,
    /// Set when the ledger found the run's lock lost: nothing more is attempted, and the apply
    /// fails with this error.
    lock_lost: Mutex<Option<crate::load::ledger::LedgerError>>,
}

/// The order in which kinds are applied: contacts exist before they are tagged, opt-outs are
/// recorded before any message goes out, and sends come last.
fn phase(op: &PlanOp) -> u8 {
    match op {
        PlanOp::CreateContact { .. } => 0,
        PlanOp::UpdateContact { .. }
        | PlanOp::AddTags { .. }
        | PlanOp::RemoveTags { .. }
        | PlanOp::SetSmsDnd { .. } => 1,
        PlanOp::BlockNumbers { .. } => 1,
        PlanOp::CreateNote { .. }
        | PlanOp::CreateTask { .. }
        | PlanOp::CompleteTask { .. }
        | PlanOp::UpdateTask { .. }
        | PlanOp::MarkDuplicate { .. } => 2,
        PlanOp::DeleteContact { .. } => 3,
        PlanOp::SendSms { .. } => 4,
    }
}

/// Applies `plan`; `blocked` is the BulkSMS blocked list as known right before applying, E.164
/// ([`crate::snapshot::phone::e164`]).
pub async fn apply(
    plan: &Plan,
    ledger: Ledger,
    ghl: &GhlClient,
    bulksms: &BulkSmsClient,
    blocked: HashSet<String>,
    options: &ApplyOptions,
) -> anyhow::Result<(ApplyMetrics, Vec<String>)> {
    let shared = Shared {
        ledger: Mutex::new(ledger),
        ghl,
        bulksms,
        options,
        blocked,
        consecutive_failures: AtomicUsize::new(0),
        open: AtomicBool::new(false),
        applied: AtomicU64::new(0),
        already_done: AtomicU64::new(0),
        resolved: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        skipped: AtomicU64::new(0),
        deferred: AtomicU64::new(0),
        quiet_hours_zones: Mutex::new(BTreeMap::new()),
        errors: Mutex::new(Vec::new()),
        lock_lost: Mutex::new(None),
    };
    for current in 0..=4u8 {
        let ops: Vec<&PlannedOperation> = plan
            .operations
            .iter()
            .filter(|o| phase(&o.op) == current)
            .collect();
        futures_util::stream::iter(ops)
            .for_each_concurrent(options.concurrency.max(1), |op| apply_one(&shared, op))
            .await;
    }
    if let Some(lost) = shared.lock_lost.into_inner().expect("lock-lost lock") {
        // What was done is in the ledger; the next run (holding the lock again) does the rest.
        return Err(anyhow::Error::new(lost).context("the load stopped"));
    }
    let quiet_hours_zones = shared.quiet_hours_zones.into_inner().expect("zones lock");
    let metrics = ApplyMetrics {
        applied: shared.applied.load(Ordering::Relaxed),
        already_done: shared.already_done.load(Ordering::Relaxed),
        resolved_by_readback: shared.resolved.load(Ordering::Relaxed),
        failed: shared.failed.load(Ordering::Relaxed),
        skipped: shared.skipped.load(Ordering::Relaxed),
        deferred: shared.deferred.load(Ordering::Relaxed),
        deferred_quiet_hours: quiet_hours_zones.values().sum(),
        quiet_hours_zones,
        circuit_open: shared.open.load(Ordering::Relaxed),
    };
    let errors = shared.errors.into_inner().expect("errors lock");
    Ok((metrics, errors))
}

async fn apply_one(shared: &Shared<'_>, planned: &PlannedOperation) {
    if shared.open.load(Ordering::Relaxed) || lock_lost(shared) {
        shared.deferred.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let key = planned.key.as_str();
    let previous = match shared.ledger.lock().expect("ledger lock").get(key) {
        Ok(p) => p,
        Err(e) => return record_error(shared, planned, e.to_string()),
    };
    if let Some(entry) = &previous {
        match entry.status {
            OpStatus::Succeeded | OpStatus::Skipped => {
                shared.already_done.fetch_add(1, Ordering::Relaxed);
                return;
            }
            // In flight: a crash or a lost answer. Failed: one of its attempts may still have
            // landed before the last error. Either way, find out before doing it again.
            // Owed by a plan, never attempted: nothing to read back.
            OpStatus::Planned => {}
            OpStatus::InFlight | OpStatus::Failed => match read_back(shared, planned).await {
                Ok(Some(found)) => {
                    finish(shared, key, OpStatus::Succeeded, Some(&found), None);
                    shared.resolved.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(None) => {}
                Err(e) => return record_failure(shared, planned, &e),
            },
        }
    }
    let retry = previous
        .as_ref()
        .is_some_and(|p| p.status != OpStatus::Planned);
    if let Some(hold) = safety_block(shared, planned).await {
        if let Err(e) = record_intent(shared, planned) {
            return intent_refused(shared, planned, e);
        }
        match hold {
            // Not now: recorded as failed with the reason, so the next run's plan carries it
            // over and checks again; counted as deferred, not as an API failure.
            Hold::Later(reason) => {
                finish(shared, key, OpStatus::Failed, None, Some(&reason));
                shared.deferred.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(key, reason, "Send deferred");
            }
            Hold::Quiet { reason, zone } => {
                finish(shared, key, OpStatus::Failed, None, Some(&reason));
                shared.deferred.fetch_add(1, Ordering::Relaxed);
                *shared
                    .quiet_hours_zones
                    .lock()
                    .expect("zones lock")
                    .entry(zone)
                    .or_default() += 1;
                tracing::warn!(key, reason, "Send deferred");
            }
            Hold::Never(reason) => {
                finish(shared, key, OpStatus::Skipped, None, Some(&reason));
                shared.skipped.fetch_add(1, Ordering::Relaxed);
                tracing::info!(key, kind = planned.op.kind(), reason, "Operation skipped");
            }
        }
        return;
    }
    let begun = record_intent(shared, planned);
    if let Err(e) = begun {
        return intent_refused(shared, planned, e);
    }
    // A send's deduplication-id is allocated with its intent (and kept for its retries).
    let deduplication_id = match &planned.op {
        PlanOp::SendSms { .. } => {
            let now_ms = shared.options.clock.now().timestamp_millis();
            match shared
                .ledger
                .lock()
                .expect("ledger lock")
                .deduplication_id(key, now_ms)
            {
                Ok(id) => Some(id),
                Err(e) => return record_error(shared, planned, e.to_string()),
            }
        }
        _ => None,
    };
    match execute(shared, planned, retry, deduplication_id).await {
        Ok(result) => {
            finish(shared, key, OpStatus::Succeeded, Some(&result), None);
            shared.applied.fetch_add(1, Ordering::Relaxed);
            shared.consecutive_failures.store(0, Ordering::Relaxed);
        }
        Err(e) if e.outcome_unknown() => {
            // Leave it in flight: the next run reads it back before deciding.
            shared.failed.fetch_add(1, Ordering::Relaxed);
            note_failure(shared, planned, &e);
        }
        Err(e) => record_failure(shared, planned, &e),
    }
}

/// Writes an operation's intent to the ledger (before its call, or before recording why not).
fn record_intent(
    shared: &Shared<'_>,
    planned: &PlannedOperation,
) -> Result<(), crate::load::ledger::LedgerError> {
    shared.ledger.lock().expect("ledger lock").begin(
        &planned.key,
        &shared.options.run_id,
        planned.op.kind(),
        &planned.op.target(),
        &payload_of(planned),
    )
}

fn lock_lost(shared: &Shared<'_>) -> bool {
    shared.lock_lost.lock().expect("lock-lost lock").is_some()
}

/// The ledger would not record an intent: the operation is not attempted. A lost run lock stops
/// the whole apply (operations already past their intent finish their call); anything else fails
/// this operation only.
fn intent_refused(
    shared: &Shared<'_>,
    planned: &PlannedOperation,
    error: crate::load::ledger::LedgerError,
) {
    if error.is_lock_lost() {
        tracing::error!(error = %error, "Run lock lost: stopping before the next write");
        shared.deferred.fetch_add(1, Ordering::Relaxed);
        let mut lost = shared.lock_lost.lock().expect("lock-lost lock");
        if lost.is_none() {
            *lost = Some(error);
        }
        return;
    }
    record_error(shared, planned, error.to_string());
}

fn payload_of(planned: &PlannedOperation) -> String {
    serde_json::to_string(&planned.op).expect("PlanOp serialises")
}

fn finish(
    shared: &Shared<'_>,
    key: &str,
    status: OpStatus,
    result: Option<&Value>,
    error: Option<&str>,
) {
    let result = result.map(Value::to_string);
    if let Err(e) =
        shared
            .ledger
            .lock()
            .expect("ledger lock")
            .finish(key, status, result.as_deref(), error)
    {
        // The effect happened but could not be recorded: the next run reads it back.
        tracing::error!(key, error = %e, "Could not record an outcome in the ledger");
    }
}

fn record_failure(shared: &Shared<'_>, planned: &PlannedOperation, error: &ApiError) {
    finish(
        shared,
        &planned.key,
        OpStatus::Failed,
        None,
        Some(&error.to_string()),
    );
    shared.failed.fetch_add(1, Ordering::Relaxed);
    note_failure(shared, planned, error);
}

fn note_failure(shared: &Shared<'_>, planned: &PlannedOperation, error: &ApiError) {
    let failures = shared.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
    if failures >= shared.options.breaker_threshold && !shared.open.swap(true, Ordering::Relaxed) {
        tracing::error!(
            failures,
            "Circuit breaker open: the service looks down; the rest of the plan is left for the next run"
        );
    }
    tracing::warn!(key = %planned.key, kind = planned.op.kind(), error = %error, "Operation failed");
    shared.errors.lock().expect("errors lock").push(format!(
        "{} {} ({}): {error}",
        planned.op.kind(),
        planned.op.target(),
        planned.key
    ));
}

fn record_error(shared: &Shared<'_>, planned: &PlannedOperation, message: String) {
    shared.failed.fetch_add(1, Ordering::Relaxed);
    tracing::error!(key = %planned.key, error = %message, "Ledger error");
    shared.errors.lock().expect("errors lock").push(format!(
        "{} ({}): {message}",
        planned.op.kind(),
        planned.key
    ));
}

/// A marker put in note and task bodies, so a created note can be found again by its key.
pub fn marker(key: &str) -> String {
    format!(
        "{}{}]",
        crate::snapshot::contract::plan::BODY_MARKER_PREFIX,
        &key[..key.len().min(12)]
    )
}

pub use crate::snapshot::contract::plan::user_supplied_id;

/// Why a send is held back.
enum Hold {
    /// The number opted out: never sent for this event.
    Never(String),
    /// Not now (the opt-out could not be checked): a later run tries again.
    Later(String),
    /// Not now: the recipient is inside quiet hours in `zone`. A later run tries again.
    Quiet { reason: String, zone: String },
}

/// Right before a send: is the number opted out in either system, or is it quiet there?
async fn safety_block(shared: &Shared<'_>, planned: &PlannedOperation) -> Option<Hold> {
    let PlanOp::SendSms { to, contact_id, .. } = &planned.op else {
        return None;
    };
    if crate::snapshot::phone::e164(to).is_some_and(|n| shared.blocked.contains(&n)) {
        return Some(Hold::Never(
            "the number is on the BulkSMS blocked list".into(),
        ));
    }
    match ghl_sms_dnd(shared.ghl, contact_id.as_deref(), to).await {
        Ok(NumberDnd {
            opted_out_by: Some(id),
            ..
        }) => Some(Hold::Never(format!(
            "contact {id}, which holds this number, has SMS DND set in GHL"
        ))),
        Ok(NumberDnd { timezone, .. }) => quiet(shared, timezone.as_deref()),
        // Unknown means not safe: hold it, the next run checks again.
        Err(reason) => Some(Hold::Later(format!(
            "the GHL DND re-check failed ({reason}); not sending blind"
        ))),
    }
}

/// A send that would land in the recipient's quiet hours waits.
fn quiet(shared: &Shared<'_>, timezone: Option<&str>) -> Option<Hold> {
    let window = shared.options.quiet_hours.as_ref()?;
    window
        .is_quiet(shared.options.clock.now(), timezone)
        .then(|| {
            let zone = window.zone_of(timezone);
            Hold::Quiet {
                reason: format!(
                    "quiet hours ({}–{} in {zone}); sent by a later run",
                    window.start, window.end
                ),
                zone,
            }
        })
}

/// Performs an operation once.
/// `retry`: an earlier attempt may have done part of the work (read back first where it matters).
/// `deduplication_id`: a send's id from the ledger.
async fn execute(
    shared: &Shared<'_>,
    planned: &PlannedOperation,
    retry: bool,
    deduplication_id: Option<i32>,
) -> Result<Value, ApiError> {
    let ghl = shared.ghl;
    match &planned.op {
        PlanOp::CreateContact { fields } => {
            // Upsert follows the location's duplicate rule: it never makes a second contact for an
            // email or phone GHL already knows, whatever "Allow Duplicate Contact" says. Its `tags`
            // would replace the tags of the contact it matches, so the tags go on afterwards
            // through the add-tags endpoint, which adds.
            let mut fields = fields.clone();
            let tags = fields.remove("tags");
            let (_, contact) = ghl.upsert_contact(Value::Object(fields)).await?;
            add_created_tags(ghl, &contact, tags.as_ref()).await?;
            Ok(contact)
        }
        PlanOp::UpdateContact {
            contact_id, after, ..
        } => {
            ghl.update_contact(contact_id, Value::Object(after.clone()))
                .await
        }
        PlanOp::AddTags {
            contact_id, tags, ..
        } => ghl.add_tags(contact_id, tags).await,
        PlanOp::RemoveTags {
            contact_id, tags, ..
        } => ghl.remove_tags(contact_id, tags).await,
        PlanOp::SetSmsDnd {
            contact_id, active, ..
        } => {
            let status = if *active { "active" } else { "inactive" };
            ghl.update_contact(
                contact_id,
                json!({"dndSettings": {"SMS": {"status": status, "message": "Opted out by SMS reply", "code": "contactsync"}}}),
            )
            .await
        }
        PlanOp::CreateNote { contact_id, body } => {
            ghl.create_note(contact_id, &format!("{body}\n{}", marker(&planned.key)))
                .await
        }
        PlanOp::CreateTask {
            contact_id,
            title,
            body,
            due_date,
            assigned_to,
            ..
        } => {
            ghl.create_task(
                contact_id,
                title,
                &format!("{body}\n{}", marker(&planned.key)),
                due_date,
                assigned_to.as_deref(),
            )
            .await
        }
        PlanOp::CompleteTask { .. } | PlanOp::UpdateTask { .. } => {
            super::created_tasks::write(ghl, &planned.op).await
        }
        PlanOp::MarkDuplicate {
            contact_id,
            survivor_id,
        } => {
            // The note first, the tag last: the tag is what tells the next diff the contact is
            // marked, so it must only appear once the note exists.
            let mark = marker(&planned.key);
            let noted = retry
                && ghl.contact_notes(contact_id).await?.iter().any(|n| {
                    n.get("body")
                        .and_then(Value::as_str)
                        .is_some_and(|b| b.contains(&mark))
                });
            if !noted {
                ghl.create_note(
                    contact_id,
                    &format!("Duplicate of contact {survivor_id} (found by contactsync).\n{mark}"),
                )
                .await?;
            }
            ghl.add_tags(contact_id, &[DUPLICATE_TAG.to_string()]).await
        }
        PlanOp::DeleteContact {
            contact_id,
            survivor_id,
        } => {
            // GHL deletes a contact's notes and tasks with it: its history moves first.
            let moved =
                super::merge_history::move_to_survivor(ghl, contact_id, survivor_id).await?;
            if moved.is_some() {
                ghl.delete_contact(contact_id).await?;
            }
            Ok(json!({"deleted": contact_id, "moved": moved}))
        }
        PlanOp::BlockNumbers { numbers } => {
            shared.bulksms.block_numbers(numbers).await?;
            Ok(json!({"blocked": numbers.len()}))
        }
        PlanOp::SendSms {
            to, body, encoding, ..
        } => {
            let submission = Submission {
                to: to.clone(),
                body: body.clone(),
                encoding: encoding.clone(),
                user_supplied_id: user_supplied_id(&planned.key),
                long_message_max_parts: 6,
                from: None,
            };
            let deduplication_id =
                deduplication_id.expect("apply_one allocates a send's deduplication-id");
            let sent = shared.bulksms.send(&submission, deduplication_id).await?;
            Ok(Value::Array(sent))
        }
    }
}

/// Adds a created contact's planned tags (a set union: repeating it is harmless).
async fn add_created_tags(
    ghl: &GhlClient,
    contact: &Value,
    tags: Option<&Value>,
) -> Result<(), ApiError> {
    let tags: Vec<String> = tags
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    if tags.is_empty() {
        return Ok(());
    }
    let id = contact
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::Decode {
            endpoint: "POST /contacts/upsert".into(),
            message: "the answer names no contact id to tag".into(),
        })?;
    ghl.add_tags(id, &tags).await?;
    Ok(())
}

/// Looks for the effect of an operation whose outcome is unknown. `Some` = it happened.
async fn read_back(
    shared: &Shared<'_>,
    planned: &PlannedOperation,
) -> Result<Option<Value>, ApiError> {
    let ghl = shared.ghl;
    let mark = marker(&planned.key);
    let find_marked = |rows: Vec<Value>| {
        rows.into_iter().find(|r| {
            r.get("body")
                .and_then(Value::as_str)
                .is_some_and(|b| b.contains(&mark))
        })
    };
    match &planned.op {
        PlanOp::CreateContact { fields } => {
            let email = fields.get("email").and_then(Value::as_str);
            let phone = fields.get("phone").and_then(Value::as_str);
            if email.is_none() && phone.is_none() {
                return Ok(None);
            }
            let found = ghl.find_duplicate(email, phone).await?;
            // The contact may exist without its tags (the answer was lost between the two calls).
            if let Some(contact) = &found {
                add_created_tags(ghl, contact, fields.get("tags")).await?;
            }
            Ok(found)
        }
        PlanOp::CreateNote { contact_id, .. } => {
            Ok(find_marked(ghl.contact_notes(contact_id).await?))
        }
        // Two writes: execute finishes whichever part is missing.
        PlanOp::MarkDuplicate { .. } => Ok(None),
        PlanOp::CreateTask { contact_id, .. } => {
            Ok(find_marked(ghl.contact_tasks(contact_id).await?))
        }
        PlanOp::CompleteTask { .. } | PlanOp::UpdateTask { .. } => {
            super::created_tasks::read_back(ghl, &planned.op).await
        }
        PlanOp::SendSms { .. } => {
            let found = shared
                .bulksms
                .messages_with_user_id(&user_supplied_id(&planned.key))
                .await?;
            Ok((!found.is_empty()).then_some(Value::Array(found)))
        }
        // The rest are idempotent: doing them again is the read-back.
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests;
