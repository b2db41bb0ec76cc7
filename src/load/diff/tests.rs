//! Unit tests of `diff`.

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
        desired_tasks: &[],
        created_tasks: Box::leak(Box::new(HashMap::new())),
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

#[test]
fn a_marked_duplicate_is_deleted_until_it_is_gone() {
    let mut marked = snapshot("c2");
    marked.tags.push(DUPLICATE_TAG.into());
    let snap: HashMap<String, SnapshotContact> = [
        ("c1".to_string(), snapshot("c1")),
        ("c2".to_string(), marked),
    ]
    .into();
    let desired = vec![DesiredContact {
        contact_id: Some("c2".into()),
        first_name: Some("Ana".into()),
        add_tags: vec!["lead".into()],
        duplicate_of: Some("c1".into()),
        reason: "duplicate".into(),
        ..Default::default()
    }];
    let blocked = HashSet::new();
    let config = |merge| LoadConfig {
        merge,
        max_deletes: 10,
        max_merges: 1.0,
        ..LoadConfig::default()
    };
    let input = input(&desired, &snap, &blocked, &[]);
    let kinds = |merge| {
        build_plan(&input, &config(merge))
            .plan
            .operations
            .iter()
            .map(|o| o.op.kind())
            .collect::<Vec<_>>()
    };
    // Already marked: tagging plans nothing more; deleting plans the delete a failed run left.
    assert_eq!(kinds(MergeMode::Tag), Vec::<&str>::new());
    assert_eq!(kinds(MergeMode::Delete), vec!["delete_contact"]);
}
