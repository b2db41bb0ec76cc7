//! The diff: desired state against the latest snapshot → the minimal plan. Only what differs is
//! written (reverse-ETL style), so a rerun with nothing changed plans nothing.

use super::apply::DUPLICATE_TAG;
use super::plan::{Plan, PlanOp, PlannedOperation};
use super::{LoadConfig, MergeMode};
use crate::snapshot::contract::ContactField;
use crate::snapshot::desired::{DesiredBlocked, DesiredContact, DesiredMessage, DesiredNote};
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
            },
            desired.reason.clone(),
        ));
    }
    if desired.sms_dnd == Some(true) && !current.sms_dnd_active() {
        ops.push(PlannedOperation::new(
            PlanOp::SetSmsDnd {
                contact_id: id.clone(),
                active: true,
            },
            desired.reason.clone(),
        ));
    }
    if let Some(survivor) = &desired.duplicate_of
        && !have.contains(DUPLICATE_TAG)
    {
        ops.push(PlannedOperation::new(
            PlanOp::MarkDuplicate {
                contact_id: id.clone(),
                survivor_id: survivor.clone(),
            },
            desired.reason.clone(),
        ));
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
mod tests {
    use super::*;

    fn snapshot(id: &str) -> SnapshotContact {
        SnapshotContact {
            id: id.into(),
            first_name: Some("Ana".into()),
            email: Some("ana@example.com".into()),
            tags: vec!["lead".into()],
            ..Default::default()
        }
    }

    fn input<'a>(
        contacts: &'a [DesiredContact],
        snap: &'a HashMap<String, SnapshotContact>,
        blocked: &'a HashSet<String>,
        desired_blocked: &'a [DesiredBlocked],
    ) -> DiffInput<'a> {
        DiffInput {
            run_id: "r".into(),
            desired_contacts: contacts,
            desired_messages: &[],
            desired_notes: &[],
            desired_blocked,
            snapshot_contacts: snap,
            snapshot_blocked: blocked,
        }
    }

    #[test]
    fn nothing_changed_plans_nothing() {
        let snap: HashMap<_, _> = [("c1".to_string(), snapshot("c1"))].into();
        let desired = vec![DesiredContact {
            contact_id: Some("c1".into()),
            first_name: Some("Ana".into()),
            add_tags: vec!["lead".into()],
            reason: "golden".into(),
            ..Default::default()
        }];
        let blocked = HashSet::new();
        let plan = build_plan(
            &input(&desired, &snap, &blocked, &[]),
            &LoadConfig::default(),
        )
        .plan;
        assert!(plan.operations.is_empty(), "{:?}", plan.operations);
    }

    #[test]
    fn changes_become_minimal_operations_with_before_and_after() {
        let snap: HashMap<_, _> = [("c1".to_string(), snapshot("c1"))].into();
        let desired = vec![DesiredContact {
            contact_id: Some("c1".into()),
            first_name: Some("Anna".into()),
            add_tags: vec!["lead".into(), "sms:opted-out".into()],
            sms_dnd: Some(true),
            reason: "STOP received".into(),
            ..Default::default()
        }];
        let blocked: HashSet<String> = ["+15550001".to_string()].into();
        let desired_blocked = vec![
            DesiredBlocked {
                phone_number: "15550001".into(),
                reason: "r".into(),
            },
            DesiredBlocked {
                phone_number: "15550002".into(),
                reason: "r".into(),
            },
        ];
        let plan = build_plan(
            &input(&desired, &snap, &blocked, &desired_blocked),
            &LoadConfig::default(),
        )
        .plan;
        let kinds: Vec<_> = plan.operations.iter().map(|o| o.op.kind()).collect();
        assert_eq!(
            kinds,
            vec!["update_contact", "add_tags", "set_sms_dnd", "block_numbers"]
        );
        match &plan.operations[0].op {
            PlanOp::UpdateContact { before, after, .. } => {
                assert_eq!(before["firstName"], "Ana");
                assert_eq!(after["firstName"], "Anna");
            }
            other => panic!("unexpected {other:?}"),
        }
        match &plan.operations[3].op {
            PlanOp::BlockNumbers { numbers } => {
                assert_eq!(numbers, &vec!["+15550002".to_string()])
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn blocked_numbers_are_compared_as_e164_whichever_way_they_were_written() {
        // Issue 18 §3: the snapshot holds `+44…`, transform wrote `44…`: already blocked.
        let snap = HashMap::new();
        let blocked: HashSet<String> = ["+44123456789".to_string()].into();
        let desired_blocked = vec![
            DesiredBlocked {
                phone_number: "44123456789".into(),
                reason: "r".into(),
            },
            DesiredBlocked {
                phone_number: "44 123 456 780".into(),
                reason: "r".into(),
            },
        ];
        let plan = build_plan(
            &input(&[], &snap, &blocked, &desired_blocked),
            &LoadConfig::default(),
        )
        .plan;
        let blocked_now: Vec<&PlanOp> = plan.operations.iter().map(|o| &o.op).collect();
        assert_eq!(
            blocked_now,
            vec![&PlanOp::BlockNumbers {
                numbers: vec!["+44123456780".to_string()]
            }]
        );
    }

    #[test]
    fn a_plan_over_a_limit_is_refused() {
        let snap = HashMap::new();
        let desired: Vec<DesiredContact> = (0..3)
            .map(|i| DesiredContact {
                email: Some(format!("p{i}@example.com")),
                reason: "migrate".into(),
                ..Default::default()
            })
            .collect();
        let blocked = HashSet::new();
        let config = LoadConfig {
            max_creates: 2,
            ..LoadConfig::default()
        };
        let decision = build_plan(&input(&desired, &snap, &blocked, &[]), &config);
        let refusal = decision.refusal.expect("over the limit");
        assert_eq!(refusal.limits.len(), 1);
        assert_eq!(refusal.limits[0].count, 3);
        assert!(refusal.to_string().contains("max_creates"), "{refusal}");
        assert!(decision.plan.operations.is_empty());
        assert_eq!(refusal.held.len(), 3);
    }

    /// Issue 18, item 8: a plan over `max_sends` still records the opt-outs it found.
    #[test]
    fn a_refused_plan_keeps_its_opt_outs() {
        let snap: HashMap<_, _> = [("c1".to_string(), snapshot("c1"))].into();
        let desired = vec![DesiredContact {
            contact_id: Some("c1".into()),
            sms_dnd: Some(true),
            add_tags: vec!["sms:opted-out".into()],
            reason: "STOP received".into(),
            ..Default::default()
        }];
        let desired_blocked = vec![DesiredBlocked {
            phone_number: "+15550002".into(),
            reason: "r".into(),
        }];
        let messages: Vec<DesiredMessage> = (0..3)
            .map(|i| DesiredMessage {
                to: format!("+1555000100{i}"),
                body: "hi".into(),
                trigger: "welcome".into(),
                event: format!("c{i}:created"),
                contact_id: None,
            })
            .collect();
        let blocked = HashSet::new();
        let mut diff_input = input(&desired, &snap, &blocked, &desired_blocked);
        diff_input.desired_messages = &messages;
        let config = LoadConfig {
            max_sends: 2,
            ..LoadConfig::default()
        };
        let decision = build_plan(&diff_input, &config);
        let kinds: Vec<_> = decision
            .plan
            .operations
            .iter()
            .map(|o| o.op.kind())
            .collect();
        assert_eq!(kinds, vec!["set_sms_dnd", "block_numbers"]);
        let refusal = decision.refusal.expect("over max_sends");
        let held: Vec<_> = refusal.held.iter().map(|o| o.op.kind()).collect();
        assert_eq!(held, vec!["add_tags", "send_sms", "send_sms", "send_sms"]);
    }

    #[test]
    fn marking_more_than_the_merge_share_is_refused() {
        let snap: HashMap<String, SnapshotContact> = (0..10)
            .map(|i| (format!("c{i}"), snapshot(&format!("c{i}"))))
            .collect();
        let desired: Vec<DesiredContact> = (1..4)
            .map(|i| DesiredContact {
                contact_id: Some(format!("c{i}")),
                duplicate_of: Some("c0".into()),
                reason: "duplicate".into(),
                ..Default::default()
            })
            .collect();
        let blocked = HashSet::new();
        let config = |share| LoadConfig {
            max_merges: share,
            ..LoadConfig::default()
        };
        let input = input(&desired, &snap, &blocked, &[]);
        // 3 of 10 contacts: refused at 20 %, accepted at 30 %.
        let refused = build_plan(&input, &config(0.2)).refusal.expect("over 20 %");
        assert_eq!(refused.limits[0].key, "max_merges");
        assert_eq!((refused.limits[0].count, refused.limits[0].limit), (3, 2));
        assert!(build_plan(&input, &config(0.3)).refusal.is_none());
    }
}
