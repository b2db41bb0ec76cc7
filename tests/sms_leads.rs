//! A lead made from an inbound SMS keeps being a lead when the write of its tag is lost: it is
//! tagged by a later run and never welcomed (the conversation is already open).

mod common;

use common::effects::{harness_with_triggers, options};
use serde_json::{Value, json};

const UNKNOWN: &str = "14155559911";

fn contacts_with_number(state: &Value) -> Vec<Value> {
    state["ghl"]["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .filter(|c| c["phone"].as_str().is_some_and(|p| p.ends_with(UNKNOWN)))
        .cloned()
        .collect()
}

fn texts_to_number(state: &Value) -> usize {
    state["bulksms"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["type"] == "SENT" && m["to"].as_str().is_some_and(|t| t.ends_with(UNKNOWN)))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lead_whose_tag_write_failed_is_tagged_later_and_never_welcomed() {
    let h = harness_with_triggers(options(2401, 20)).await;
    h.authorise().await;
    h.control_post(
        "bulksms/inbound",
        json!({"from": UNKNOWN, "body": "Hi, do you do weekend appointments?"}),
    )
    .await;
    // Every tag write fails: the lead is created, its tag is not.
    h.control_post(
        "faults",
        json!({"server_error": 1.0, "only_paths": ["/tags"]}),
    )
    .await;
    let first = h.run(&["run"]).await;
    assert_ne!(first.status.code(), Some(0), "the tag writes failed");
    let created = contacts_with_number(&h.control("state").await);
    assert_eq!(created.len(), 1, "the lead was created: {created:?}");
    assert_eq!(created[0]["tags"], json!([]), "without its tag so far");

    h.control_post("faults", json!({"name": "none"})).await;
    for _ in 0..2 {
        h.run_ok(&["run"]).await;
    }
    let state = h.control("state").await;
    let lead = contacts_with_number(&state);
    assert_eq!(lead.len(), 1, "{lead:?}");
    assert!(
        lead[0]["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "sms:lead")),
        "the later run tagged the lead: {lead:?}"
    );
    assert_eq!(
        texts_to_number(&state),
        0,
        "a lead from an SMS is not welcomed"
    );
}
