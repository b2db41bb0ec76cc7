//! Unit tests of the message workflows.

use super::delivery_failures::{DeliveryFailuresConfig, open_streak};
use super::reply_task::ReplyTaskConfig;
use super::sms_status::{SmsStatusConfig, StatusStore};
use super::*;
use crate::transform::triggers::TriggerMessage;

fn contact(id: &str, phone: &str) -> TriggerContact {
    TriggerContact {
        id: id.into(),
        first_name: Some("Ana".into()),
        last_name: Some("Lopez".into()),
        phone: Some(phone.into()),
        ..TriggerContact::default()
    }
}

fn message(id: u64, inbound: bool, body: &str, status: &str, at: &str) -> TriggerMessage {
    TriggerMessage {
        id,
        inbound,
        number: "+14155550001".into(),
        body: Some(body.into()),
        status_type: Some(status.into()),
        status_subtype: None,
        submission_date: Some(at.into()),
    }
}

fn events(messages: Vec<TriggerMessage>) -> TriggerEvents {
    TriggerEvents {
        contacts: vec![contact("c1", "+14155550001")],
        messages,
        contacts_by_number: HashMap::from([("+14155550001".to_string(), vec![0])]),
        new_contacts: 0,
        failed_deliveries: 0,
        inbound: 0,
        digest_facts: Default::default(),
    }
}

fn reply_config() -> ReplyTaskConfig {
    toml::from_str("resolve_keywords = [\"thanks\", \"all good\"]\nassigned_to = \"u1\"")
        .expect("reply_task config")
}

#[test]
fn a_new_reply_opens_one_task_due_later_and_an_answer_completes_it() {
    let seen_before = PreviousState::default();
    let reply = message(7, true, "Can I move my booking?", "", "2026-11-24T09:00:00");
    let tasks = reply_task::tasks(
        &reply_config(),
        &events(vec![reply.clone()]),
        Some(&seen_before),
    );
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let t = &tasks[0];
    assert!(!t.complete);
    assert_eq!(t.event, "sms reply 7");
    assert_eq!(t.title, "SMS reply from Ana Lopez (+14155550001)");
    assert!(t.body.contains("Can I move my booking?"), "{}", t.body);
    assert_eq!(t.due_date, "2026-11-25T09:00:00Z");
    assert_eq!(t.assigned_to.as_deref(), Some("u1"));
    // A baseline run (no previous) opens nothing.
    let baseline = reply_task::tasks(&reply_config(), &events(vec![reply.clone()]), None);
    assert!(baseline.iter().all(|t| !t.new_reply), "{baseline:?}");

    // Answered later: the completion of that event, and no new task.
    let answer = message(8, false, "Sure", "DELIVERED", "2026-11-24T10:00:00");
    let tasks = reply_task::tasks(
        &reply_config(),
        &events(vec![reply.clone(), answer]),
        Some(&seen_before),
    );
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert!(tasks[0].complete && tasks[0].event == "sms reply 7");

    // An SMS sent before the reply is no answer; a failed one neither.
    let earlier = message(6, false, "Hi", "DELIVERED", "2026-11-24T08:00:00");
    let failed = message(9, false, "Sure", "FAILED", "2026-11-24T10:00:00");
    let tasks = reply_task::tasks(
        &reply_config(),
        &events(vec![earlier, reply.clone(), failed]),
        Some(&seen_before),
    );
    assert!(tasks.iter().all(|t| !t.complete), "{tasks:?}");
}

#[test]
fn a_later_reply_with_a_resolve_keyword_completes_and_opens_nothing() {
    let previous = PreviousState {
        message_status: HashMap::from([(7, None)]),
        ..PreviousState::default()
    };
    let messages = vec![
        message(7, true, "Can I move my booking?", "", "2026-11-24T09:00:00"),
        message(8, true, "All good, THANKS!", "", "2026-11-24T11:00:00"),
        message(9, true, "STOP", "", "2026-11-24T12:00:00"),
    ];
    let tasks = reply_task::tasks(&reply_config(), &events(messages), Some(&previous));
    let got: Vec<(&str, bool)> = tasks
        .iter()
        .map(|t| (t.event.as_str(), t.complete))
        .collect();
    assert_eq!(got, vec![("sms reply 7", true)]);
}

/// Replies 7, 8 and 9 from the number, an hour apart, before anyone answers.
fn three_replies() -> Vec<TriggerMessage> {
    vec![
        message(7, true, "Can I move my booking?", "", "2026-11-24T09:00:00"),
        message(8, true, "To Friday?", "", "2026-11-24T10:00:00"),
        message(9, true, "Or Saturday", "", "2026-11-24T11:00:00"),
    ]
}

fn seen(ids: &[u64]) -> PreviousState {
    PreviousState {
        message_status: ids.iter().map(|&id| (id, None)).collect(),
        ..PreviousState::default()
    }
}

#[test]
fn replies_before_an_answer_are_one_follow_up_holding_them_all() {
    let config = reply_config();
    // All three new in one run: one task, named by the first, due after the last.
    let tasks = reply_task::tasks(&config, &events(three_replies()), Some(&seen(&[])));
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let t = &tasks[0];
    assert!(!t.complete && t.new_reply);
    assert_eq!(t.event, "sms reply 7");
    assert_eq!(t.replies, ["sms reply 7", "sms reply 8", "sms reply 9"]);
    assert_eq!(t.title, "SMS reply from Ana Lopez (+14155550001)");
    for text in ["Can I move my booking?", "To Friday?", "Or Saturday"] {
        assert_eq!(t.body.matches(text).count(), 1, "{}", t.body);
    }
    assert!(t.body.find("To Friday?") < t.body.find("Or Saturday"));
    assert_eq!(t.due_date, "2026-11-25T11:00:00Z");

    // A later run that sees the third for the first time asks for the same follow-up (load
    // updates the task): the same row.
    let later = reply_task::tasks(&config, &events(three_replies()), Some(&seen(&[7, 8])));
    assert_eq!(later, tasks);
    // Nothing new: the row stays (load has nothing left to do), but may open no task.
    let quiet = reply_task::tasks(&config, &events(three_replies()), Some(&seen(&[7, 8, 9])));
    assert_eq!(quiet.len(), 1);
    assert!(!quiet[0].new_reply);
    assert_eq!(quiet[0].replies, tasks[0].replies);
}

#[test]
fn an_answer_completes_every_task_of_the_conversation_and_a_later_reply_opens_a_new_one() {
    let mut messages = three_replies();
    messages.push(message(
        10,
        false,
        "Friday works",
        "DELIVERED",
        "2026-11-24T12:00:00",
    ));
    messages.push(message(11, true, "STOP", "", "2026-11-24T12:30:00"));
    messages.push(message(
        12,
        true,
        "One more thing",
        "",
        "2026-11-24T13:00:00",
    ));
    let tasks = reply_task::tasks(&reply_config(), &events(messages), Some(&seen(&[7, 8, 9])));
    let got: Vec<(&str, bool)> = tasks
        .iter()
        .map(|t| (t.event.as_str(), t.complete))
        .collect();
    // Completions under every reply's event: a ledger from before one task per conversation
    // holds a task per reply (load completes those it has).
    assert_eq!(
        got,
        [
            ("sms reply 7", true),
            ("sms reply 8", true),
            ("sms reply 9", true),
            ("sms reply 12", false),
        ]
    );
    let new = &tasks[3];
    assert_eq!(new.replies, ["sms reply 12"]);
    assert!(new.new_reply);
    assert!(!new.body.contains("STOP") && !new.body.contains("booking"));
}

#[test]
fn a_failed_answer_or_one_in_the_same_second_leaves_the_conversation_open() {
    let mut messages = three_replies();
    messages.push(message(
        10,
        false,
        "Friday works",
        "FAILED",
        "2026-11-24T12:00:00",
    ));
    messages.push(message(11, false, "Hi", "DELIVERED", "2026-11-24T11:00:00"));
    messages.push(message(12, true, "Hello?", "", "2026-11-24T13:00:00"));
    let tasks = reply_task::tasks(&reply_config(), &events(messages), Some(&seen(&[7, 8, 9])));
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0].replies.len(), 4);
    assert_eq!(tasks[0].due_date, "2026-11-25T13:00:00Z");
}

#[test]
fn a_streak_counts_once_enough_failures_fall_in_the_window_and_a_delivery_ends_it() {
    let day = |d: u32| parse_time(&format!("2026-11-{d:02}T09:00:00")).expect("date");
    let mut sends = vec![
        (day(1), 1, true),
        (day(2), 2, false),
        (day(3), 3, true),
        (day(20), 4, true),
    ];
    // The delivery on day 2 ended the first streak: 3 and 20 are two failures.
    assert_eq!(open_streak(&mut sends, 3, 14), None);
    // Three failures, but 3 → 21 is 18 days: not within 14.
    sends.push((day(21), 5, true));
    assert_eq!(open_streak(&mut sends, 3, 14), None);
    sends.push((day(22), 6, true));
    let streak = open_streak(&mut sends, 3, 14).expect("20, 21, 22 within 14 days");
    // Named by its first failure, whatever came later: the same streak on every run.
    assert_eq!(streak.first_message, 3);
    assert_eq!(streak.reached_at, day(22));
    assert_eq!(streak.failures, 4);
    sends.push((day(23), 7, false));
    assert_eq!(open_streak(&mut sends, 3, 14), None);
}

#[test]
fn a_counting_streak_asks_for_a_task_and_the_tag_under_its_event() {
    let config: DeliveryFailuresConfig = toml::from_str("failures = 2").expect("config");
    let messages = vec![
        message(1, false, "a", "FAILED", "2026-11-20T09:00:00"),
        message(2, false, "b", "FAILED", "2026-11-21T09:00:00"),
    ];
    let (tasks, contacts) = delivery_failures::streak_writes(&config, &events(messages));
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].title, "Check the number +14155550001");
    assert_eq!(
        tasks[0].event,
        "sms failures to +14155550001 from message 1"
    );
    assert_eq!(contacts[0].add_tags, vec!["sms:undeliverable".to_string()]);
    assert_eq!(contacts[0].event.as_deref(), Some(tasks[0].event.as_str()));
}

#[test]
fn the_status_is_the_latest_event_and_replaces_the_old_tag() {
    let config = SmsStatusConfig {
        store: StatusStore::Tags,
        field_id: None,
        tag_prefix: "sms:".into(),
    };
    let messages = vec![
        message(1, false, "a", "DELIVERED", "2026-11-20T09:00:00"),
        message(2, true, "hi", "", "2026-11-21T09:00:00"),
        message(3, false, "b", "ACCEPTED", "2026-11-22T09:00:00"),
    ];
    let writes = sms_status::status_writes(&config, &events(messages));
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].add_tags, vec!["sms:replied".to_string()]);
    assert_eq!(
        writes[0].remove_tags,
        vec!["sms:delivered".to_string(), "sms:failed".to_string()]
    );
    assert_eq!(
        writes[0].event.as_deref(),
        Some("sms status replied message 2")
    );
    let field = SmsStatusConfig {
        store: StatusStore::CustomField,
        field_id: Some("f1".into()),
        tag_prefix: "sms:".into(),
    };
    let mut e = events(vec![message(
        1,
        false,
        "a",
        "FAILED",
        "2026-11-20T09:00:00",
    )]);
    e.contacts[0].opted_out = true;
    let writes = sms_status::status_writes(&field, &e);
    assert_eq!(writes[0].custom_fields[0].value, "opted-out");
}

#[test]
fn bad_workflow_tables_are_refused_with_their_key() {
    let parse = |text: &str| -> WorkflowsConfig { toml::from_str(text).expect("parses") };
    let err = |text: &str| parse(text).validate().unwrap_err();
    assert_eq!(
        err("[reply_task]\nbody = \"Reply waiting\"").0,
        "reply_task.body"
    );
    assert_eq!(
        err("[reply_task]\ntitle = \"{nmae}\"").0,
        "reply_task.title"
    );
    assert_eq!(
        err("[reply_task]\ntitle = \"{full_name|{number}}\"").0,
        "reply_task.title"
    );
    assert_eq!(
        err("[delivery_failures]\nfailures = 1").0,
        "delivery_failures.failures"
    );
    assert_eq!(
        err("[sms_status]\nstore = \"custom_field\"").0,
        "sms_status.field_id"
    );
    assert!(
        parse("[reply_task]\n[delivery_failures]\n[sms_status]\nstore = \"tags\"")
            .validate()
            .is_ok()
    );
    assert!(toml::from_str::<WorkflowsConfig>("[reply_tasks]").is_err());
}
