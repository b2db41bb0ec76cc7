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

/// The follow-up of a conversation of replies 7, 8 and 9 on c1.
fn follow_up(new_reply: bool) -> DesiredTask {
    DesiredTask {
        contact_id: "c1".into(),
        event: "sms reply 7".into(),
        title: "Reply from Ana".into(),
        body: "one\n\ntwo\n\nthree".into(),
        due_date: "2026-11-25T12:00:00Z".into(),
        replies: vec![
            "sms reply 7".into(),
            "sms reply 8".into(),
            "sms reply 9".into(),
        ],
        new_reply,
        ..DesiredTask::default()
    }
}

fn made(id: &str, body: Option<&str>) -> CreatedTask {
    CreatedTask::Made {
        id: id.into(),
        body: body.map(str::to_string),
    }
}

#[test]
fn a_follow_up_is_created_once_then_kept_current_by_its_latest_reply() {
    let key = |event: &str| PlanOp::task_key("c1", event);
    // No task yet: created under the first reply, holding all three, when a reply is new.
    let none = HashMap::new();
    match task_op(&follow_up(true), &none) {
        Some(PlanOp::CreateTask { event, body, .. }) => {
            assert_eq!(event.as_deref(), Some("sms reply 7"));
            assert_eq!(body, "one\n\ntwo\n\nthree");
        }
        other => panic!("{other:?}"),
    }
    // ... and not for a conversation whose replies all came before a baseline run.
    assert_eq!(task_op(&follow_up(false), &none), None);
    // Its create is owed: nothing to update until a later run knows the id, and no second task.
    let owed = HashMap::from([(key("sms reply 7"), CreatedTask::NoId)]);
    assert_eq!(task_op(&follow_up(true), &owed), None);
    // Made with reply 7 only: updated, named by reply 9, keeping the create's marker.
    let created = HashMap::from([(key("sms reply 7"), made("t1", Some("one\n[contactsync:x]")))]);
    let want_body = format!("one\n\ntwo\n\nthree\n{}", marker(&key("sms reply 7")));
    assert_eq!(
        task_op(&follow_up(true), &created),
        Some(PlanOp::UpdateTask {
            contact_id: "c1".into(),
            task_id: "t1".into(),
            body: want_body.clone(),
            due_date: "2026-11-25T12:00:00Z".into(),
            event: "sms reply 9".into(),
        })
    );
    // Made in the run that saw all three: it holds them already.
    let holding = HashMap::from([(key("sms reply 7"), made("t1", Some(want_body.as_str())))]);
    assert_eq!(task_op(&follow_up(false), &holding), None);
    // An older ledger with a task per reply (or a conversation begun before a baseline run, its
    // task under reply 8): the earliest task is kept current.
    let per_reply = HashMap::from([(key("sms reply 8"), made("t8", None))]);
    match task_op(&follow_up(false), &per_reply) {
        Some(PlanOp::UpdateTask { task_id, body, .. }) => {
            assert_eq!(task_id, "t8");
            assert!(body.ends_with(&marker(&key("sms reply 8"))), "{body}");
        }
        other => panic!("{other:?}"),
    }
    // Made for the latest reply itself: nothing to add.
    let latest = HashMap::from([(key("sms reply 9"), made("t9", None))]);
    assert_eq!(task_op(&follow_up(false), &latest), None);
}

#[test]
fn a_completion_needs_the_made_task_and_other_tasks_are_created() {
    let completion = DesiredTask {
        contact_id: "c1".into(),
        event: "sms reply 7".into(),
        complete: true,
        ..DesiredTask::default()
    };
    let key = PlanOp::task_key("c1", "sms reply 7");
    assert_eq!(task_op(&completion, &HashMap::new()), None);
    let owed = HashMap::from([(key.clone(), CreatedTask::NoId)]);
    assert_eq!(task_op(&completion, &owed), None);
    let created = HashMap::from([(key, made("t1", None))]);
    assert_eq!(
        task_op(&completion, &created),
        Some(PlanOp::CompleteTask {
            contact_id: "c1".into(),
            task_id: "t1".into(),
        })
    );
    let check = DesiredTask {
        contact_id: "c1".into(),
        event: "sms failures to +1 from message 1".into(),
        ..DesiredTask::default()
    };
    assert!(matches!(
        task_op(&check, &HashMap::new()),
        Some(PlanOp::CreateTask { .. })
    ));
}
