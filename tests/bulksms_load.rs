//! The pipeline against the BulkSMS behaviours issue 18 measured: blocked numbers written with and
//! without `+`, opt-out replies in their everyday spellings, and sends that share nothing but
//! their `deduplication-id`.

mod common;

use common::Harness;
use contactsync::load::plan::PlanOp;
use contactsync::sandbox::SandboxOptions;
use serde_json::{Value, json};
use std::io::Write;

/// Welcome texts on the first run, so a load has sends to check.
const TRIGGERS: &str = r#"
[transform.triggers]
fire_on_first_run = true
activity_notes = true

[transform.triggers.welcome]
template = "Hi {first_name|there}, welcome! Reply STOP to opt out."
"#;

async fn harness(seed: u64, contacts: usize) -> Harness {
    let h = Harness::start(SandboxOptions {
        seed,
        contacts,
        messages: contacts * 2,
        rate_limit: false,
        ..SandboxOptions::default()
    })
    .await;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&h.pipeline)
        .expect("pipeline file")
        .write_all(TRIGGERS.as_bytes())
        .expect("append triggers");
    h.authorise().await;
    h
}

/// The welcome sends of the latest run's plan: (to, contact id).
fn planned_welcomes(h: &Harness) -> Vec<(String, Option<String>)> {
    let run = contactsync::snapshot::run::latest_complete_extract(&h.state_dir())
        .expect("runs")
        .expect("a finished extract")
        .0;
    let plan = contactsync::load::plan_io::read_plan(&run.load_dir(), &run.id).expect("plan");
    plan.operations
        .iter()
        .filter_map(|o| match &o.op {
            PlanOp::SendSms {
                to,
                contact_id,
                trigger,
                ..
            } if trigger == "welcome" => Some((to.clone(), contact_id.clone())),
            _ => None,
        })
        .collect()
}

fn digits(n: &str) -> String {
    n.chars().filter(char::is_ascii_digit).collect()
}

/// SENT messages to `number` whose body contains `text`.
fn sends_to(state: &Value, number: &str, text: &str) -> usize {
    state["bulksms"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["type"] == "SENT" && digits(m["to"].as_str().unwrap_or("")) == digits(number))
        .filter(|m| m["body"].as_str().unwrap_or("").contains(text))
        .count()
}

/// POSTs to the BulkSMS API of the sandbox.
async fn bulksms_post(h: &Harness, path: &str, body: Value) -> reqwest::StatusCode {
    let info = &h.sandbox.info;
    h.http
        .post(format!("{}{path}", info.bulksms_base_url))
        .basic_auth(&info.bulksms_token_id, Some(&info.bulksms_token_secret))
        .json(&body)
        .send()
        .await
        .expect("BulkSMS answers")
        .status()
}

/// Issue 18 §3: a number blocked as `+1…` after planning gets no text sent to `1…`. Load built its
/// blocked set from the raw values and checked the digits of the recipient, so the send went out
/// (and, blocked, was billed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_blocked_with_a_plus_after_planning_gets_no_sms() {
    let h = harness(21, 80).await;
    h.run_ok(&["extract", "--json"]).await;
    h.run_ok(&["transform", "--json"]).await;
    h.run_ok(&["plan", "--json"]).await;
    let welcomes = planned_welcomes(&h);
    let (number, _) = welcomes.first().expect("the plan has welcome texts");
    assert!(number.starts_with('+'), "plans hold E.164: {number}");
    let status = bulksms_post(&h, "/blocked-numbers", json!([number])).await;
    assert!(status.is_success(), "blocking answered {status}");
    h.run(&["load", "--json"]).await;
    let state = h.control("state").await;
    assert_eq!(
        sends_to(&state, number, "welcome"),
        0,
        "{number} was blocked before the load but was texted"
    );
}
