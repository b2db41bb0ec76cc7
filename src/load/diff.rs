//! The diff: desired state against the latest snapshot → the minimal plan. Only what differs is
//! written (reverse-ETL style), so a rerun with nothing changed plans nothing.

use super::apply::{DUPLICATE_TAG, marker};
use super::created_tasks::CreatedTask;
use super::plan::{Plan, PlanOp, PlannedOperation};
use super::{LoadConfig, MergeMode};
use crate::snapshot::contract::ContactField;
use crate::snapshot::desired::{
    DesiredBlocked, DesiredContact, DesiredMessage, DesiredNote, DesiredTask,
};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Most numbers one `POST /blocked-numbers` takes.
pub const BLOCK_BATCH: usize = 1_000;

pub use crate::snapshot::contact::{SnapshotContact, SnapshotCustomField, SnapshotDnd};

/// What the diff reads.
pub struct DiffInput<'a> {
    pub run_id: String,
    pub desired_contacts: &'a [DesiredContact],
    pub desired_messages: &'a [DesiredMessage],
    pub desired_notes: &'a [DesiredNote],
    pub desired_blocked: &'a [DesiredBlocked],
    /// Tasks the message workflows ask to create, keep current or complete.
    pub desired_tasks: &'a [DesiredTask],
    /// What the ledger holds of the tasks load created, by the key of their create
    /// ([`PlanOp::task_key`]): what an update or a completion needs.
    pub created_tasks: &'a HashMap<String, CreatedTask>,
    /// Snapshot contacts by id (at least every id the desired contacts name).
    pub snapshot_contacts: &'a HashMap<String, SnapshotContact>,
    /// The blocked list in the snapshot, E.164 ([`crate::snapshot::phone::e164`]).
    pub snapshot_blocked: &'a HashSet<String>,
}

/// A safety limit the plan breaks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the plan has {count} {what}, over the limit of {limit} (load.{key} in the pipeline file)")]
pub struct SafetyLimitExceeded {
    pub what: &'static str,
    /// The pipeline-file key of the limit.
    pub key: &'static str,
    pub count: u64,
    pub limit: u64,
}

/// A plan refused by its safety limits. Compliance writes (SMS DND on, numbers blocked) are never
/// held hostage by a limit: a run that would text too many people must still honour the opt-outs it
/// found, so they stay in the plan and everything else waits for a person.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub limits: Vec<SafetyLimitExceeded>,
    /// Operations left out of the plan until the limit is raised or the data is fixed.
    pub held: Vec<PlannedOperation>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let limits: Vec<String> = self.limits.iter().map(ToString::to_string).collect();
        write!(
            f,
            "{}; {} operations held back, only opt-outs (SMS DND, blocked numbers) are applied",
            limits.join("; "),
            self.held.len()
        )
    }
}

impl std::error::Error for Refusal {}

/// Whether an operation records an opt-out: the only kind a safety limit never holds back.
pub fn is_compliance(op: &PlanOp) -> bool {
    matches!(
        op,
        PlanOp::SetSmsDnd { active: true, .. } | PlanOp::BlockNumbers { .. }
    )
}

/// The plan and, when it breaks a safety limit, what was held back.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanDecision {
    /// What load may apply: everything, or only the compliance writes of a refused plan.
    pub plan: Plan,
    pub refusal: Option<Refusal>,
}

/// Builds the plan; when it breaks a safety limit only its compliance writes are kept.
pub fn build_plan(input: &DiffInput<'_>, config: &LoadConfig) -> PlanDecision {
    let mut ops = Vec::new();
    for desired in input.desired_contacts {
        match desired
            .contact_id
            .as_deref()
            .and_then(|id| input.snapshot_contacts.get(id))
        {
            Some(current) => diff_contact(desired, current, config, &mut ops),
            None if desired.contact_id.is_none() => {
                ops.push(PlannedOperation::new(
                    PlanOp::CreateContact {
                        fields: create_fields(desired),
                    },
                    desired.reason.clone(),
                ));
            }
            None => {
                // The contact left GHL since the snapshot: nothing to change there.
                tracing::debug!(contact = ?desired.contact_id, "Desired contact not in snapshot; skipped");
            }
        }
    }
    for note in input.desired_notes {
        ops.push(PlannedOperation::new(
            PlanOp::CreateNote {
                contact_id: note.contact_id.clone(),
                body: note.body.clone(),
            },
            format!("messaging event {}", note.event),
        ));
    }
    for task in input.desired_tasks {
        if let Some(op) = task_op(task, input.created_tasks) {
            ops.push(PlannedOperation::new(op, task.reason.clone()));
        }
    }
    let to_block: BTreeSet<String> = input
        .desired_blocked
        .iter()
        .filter_map(|b| crate::snapshot::phone::e164(&b.phone_number))
        .filter(|n| !input.snapshot_blocked.contains(n))
        .collect();
    let to_block: Vec<String> = to_block.into_iter().collect();
    for chunk in to_block.chunks(BLOCK_BATCH) {
        ops.push(PlannedOperation::new(
            PlanOp::BlockNumbers {
                numbers: chunk.to_vec(),
            },
            "opted out in GHL but not blocked in BulkSMS".to_string(),
        ));
    }
    for message in input.desired_messages {
        let parts = crate::sms_encoding::count_parts(
            &message.body,
            crate::sms_encoding::encoding_for(&message.body, true),
        );
        ops.push(PlannedOperation::new(
            PlanOp::SendSms {
                to: message.to.clone(),
                body: message.body.clone(),
                trigger: message.trigger.clone(),
                event: message.event.clone(),
                contact_id: message.contact_id.clone(),
                encoding: parts.encoding.api_name().to_string(),
                parts: parts.parts,
            },
            format!("trigger {} for {}", message.trigger, message.event),
        ));
    }
    let plan = Plan {
        run_id: input.run_id.clone(),
        operations: ops,
    };
    let limits = broken_limits(&plan, config, input.snapshot_contacts.len());
    if limits.is_empty() {
        return PlanDecision {
            plan,
            refusal: None,
        };
    }
    let (kept, held): (Vec<_>, Vec<_>) = plan
        .operations
        .into_iter()
        .partition(|o| is_compliance(&o.op));
    PlanDecision {
        plan: Plan {
            run_id: plan.run_id,
            operations: kept,
        },
        refusal: Some(Refusal { limits, held }),
    }
}

/// The safety limits `plan` breaks. `contacts` is the number of contacts in the location, which
/// `max_merges` is a share of.
pub fn broken_limits(
    plan: &Plan,
    config: &LoadConfig,
    contacts: usize,
) -> Vec<SafetyLimitExceeded> {
    let counts = plan.counts();
    let get = |k: &str| counts.get(k).copied().unwrap_or(0);
    // A share of the location, rounded down, but a small location may always merge one pair.
    let merge_limit = ((config.max_merges * contacts as f64).floor() as u64).max(1);
    [
        (
            "creates",
            "max_creates",
            get("create_contact"),
            config.max_creates,
        ),
        (
            "deletes",
            "max_deletes",
            get("delete_contact"),
            config.max_deletes,
        ),
        ("sends", "max_sends", get("send_sms"), config.max_sends),
        (
            "duplicates to mark",
            "max_merges",
            get("mark_duplicate"),
            merge_limit,
        ),
    ]
    .into_iter()
    .filter(|(_, _, count, limit)| count > limit)
    .map(|(what, key, count, limit)| SafetyLimitExceeded {
        what,
        key,
        count,
        limit,
    })
    .collect()
}

/// GHL field names of the comparable fields, with their desired and current values. The flag says
/// whether `PUT /contacts/{id}` takes the field: `UpdateContactDto` has no `companyName`, so a
/// company change is only ever written on create.
/// Per data field: its API name, the wanted and the current value, and whether an update can
/// write it ([`ContactField::update_can_write`]).
fn field_pairs<'a>(
    desired: &'a DesiredContact,
    current: &'a SnapshotContact,
) -> [(&'static str, &'a Option<String>, &'a Option<String>, bool); 9] {
    ContactField::ALL.map(|f| {
        (
            f.api_name(),
            f.of_desired(desired),
            f.of_contact(current),
            f.update_can_write(),
        )
    })
}

fn diff_contact(
    desired: &DesiredContact,
    current: &SnapshotContact,
    config: &LoadConfig,
    ops: &mut Vec<PlannedOperation>,
) {
    let id = current.id.clone();
    let mut before = Map::new();
    let mut after = Map::new();
    for (field, want, have, updatable) in field_pairs(desired, current) {
        if !updatable {
            continue;
        }
        if let Some(want) = want.as_deref().filter(|w| !w.is_empty())
            && have.as_deref() != Some(want)
        {
            before.insert(field.into(), json!(have));
            after.insert(field.into(), json!(want));
        }
    }
    let custom: Vec<Value> = desired
        .custom_fields
        .iter()
        .filter(|want| {
            current
                .custom_fields
                .iter()
                .find(|c| c.id == want.id)
                .and_then(SnapshotCustomField::text)
                .as_deref()
                != Some(want.value.as_str())
        })
        .map(|want| json!({"id": want.id, "field_value": want.value}))
        .collect();
    if !custom.is_empty() {
        before.insert(
            "customFields".into(),
            json!(
                current
                    .custom_fields
                    .iter()
                    .filter(|c| desired.custom_fields.iter().any(|d| d.id == c.id))
                    .map(|c| json!({"id": c.id, "field_value": c.text()}))
                    .collect::<Vec<_>>()
            ),
        );
        after.insert("customFields".into(), Value::Array(custom));
    }
    if !after.is_empty() {
        ops.push(PlannedOperation::new(
            PlanOp::UpdateContact {
                contact_id: id.clone(),
                before,
                after,
                event: desired.event.clone(),
            },
            desired.reason.clone(),
        ));
    }
    let have: HashSet<&str> = current.tags.iter().map(String::as_str).collect();
    let add: Vec<String> = desired
        .add_tags
        .iter()
        .filter(|t| !have.contains(t.as_str()))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !add.is_empty() {
        ops.push(PlannedOperation::new(
            PlanOp::AddTags {
                contact_id: id.clone(),
                tags: add,
                event: desired.event.clone(),
            },
            desired.reason.clone(),
        ));
    }
    let remove: Vec<String> = desired
        .remove_tags
        .iter()
        .filter(|t| have.contains(t.as_str()))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !remove.is_empty() {
        ops.push(PlannedOperation::new(
            PlanOp::RemoveTags {
                contact_id: id.clone(),
                tags: remove,
                event: desired.event.clone(),
            },
            desired.reason.clone(),
        ));
    }
    if desired.sms_dnd == Some(true) && !current.sms_dnd_active() {
        ops.push(PlannedOperation::new(
            PlanOp::SetSmsDnd {
                contact_id: id.clone(),
                active: true,
                event: desired.sms_dnd_event.clone(),
            },
            desired.reason.clone(),
        ));
    }
    if let Some(survivor) = &desired.duplicate_of {
        if !have.contains(DUPLICATE_TAG) {
            ops.push(PlannedOperation::new(
                PlanOp::MarkDuplicate {
                    contact_id: id.clone(),
                    survivor_id: survivor.clone(),
                },
                desired.reason.clone(),
            ));
        }
        // Planned while the duplicate exists, marked or not: a delete that failed after the mark
        // (or whose history move was cut short) is done by a later run.
        if config.merge == MergeMode::Delete {
            ops.push(PlannedOperation::new(
                PlanOp::DeleteContact {
                    contact_id: id,
                    survivor_id: survivor.clone(),
                },
                desired.reason.clone(),
            ));
        }
    }
}

/// The operation of a desired task. A completion completes the task created for its event (none
/// while that create has not succeeded: a later run completes it). A follow-up (`replies`) updates
/// the task of its conversation when that task does not hold it yet, or creates the task when the
/// conversation has none and a reply of it is new; while its create is owed, a later run updates
/// it. Any other task is created.
fn task_op(task: &DesiredTask, created: &HashMap<String, CreatedTask>) -> Option<PlanOp> {
    if task.complete {
        return match created.get(&PlanOp::task_key(&task.contact_id, &task.event)) {
            Some(CreatedTask::Made { id, .. }) => Some(PlanOp::CompleteTask {
                contact_id: task.contact_id.clone(),
                task_id: id.clone(),
            }),
            _ => None,
        };
    }
    let create = || PlanOp::CreateTask {
        contact_id: task.contact_id.clone(),
        title: task.title.clone(),
        body: task.body.clone(),
        due_date: task.due_date.clone(),
        assigned_to: task.assigned_to.clone(),
        event: Some(task.event.clone()),
    };
    let Some(latest) = task.replies.last() else {
        return Some(create());
    };
    let found = task.replies.iter().find_map(|event| {
        let key = PlanOp::task_key(&task.contact_id, event);
        created.get(&key).map(|c| (event, key, c))
    });
    match found {
        None => task.new_reply.then(create),
        Some((_, _, CreatedTask::NoId)) => None,
        // Made for the latest reply itself: it holds it.
        Some((event, _, CreatedTask::Made { .. })) if event == latest => None,
        Some((
            _,
            key,
            CreatedTask::Made {
                id,
                body: made_with,
            },
        )) => {
            let body = format!("{}\n{}", task.body, marker(&key));
            // Made holding every reply so far (they came in the run that made it).
            (made_with.as_deref() != Some(body.as_str())).then(|| PlanOp::UpdateTask {
                contact_id: task.contact_id.clone(),
                task_id: id.clone(),
                body,
                due_date: task.due_date.clone(),
                event: latest.clone(),
            })
        }
    }
}

fn create_fields(desired: &DesiredContact) -> Map<String, Value> {
    let mut fields = Map::new();
    let empty = SnapshotContact::default();
    for (field, want, _, _) in field_pairs(desired, &empty) {
        if let Some(want) = want.as_deref().filter(|w| !w.is_empty()) {
            fields.insert(field.into(), json!(want));
        }
    }
    if !desired.custom_fields.is_empty() {
        fields.insert(
            "customFields".into(),
            Value::Array(
                desired
                    .custom_fields
                    .iter()
                    .map(|c| json!({"id": c.id, "field_value": c.value}))
                    .collect(),
            ),
        );
    }
    if !desired.add_tags.is_empty() {
        fields.insert("tags".into(), json!(desired.add_tags));
    }
    if desired.sms_dnd == Some(true) {
        fields.insert(
            "dndSettings".into(),
            json!({"SMS": {"status": "active", "message": "Opted out by SMS reply", "code": "contactsync"}}),
        );
    }
    fields
}

#[cfg(test)]
mod tests;
