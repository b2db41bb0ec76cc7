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

/// GHL contacts of the sandbox state with SMS DND on.
fn sms_dnd(contact: &Value) -> bool {
    contact["dnd"].as_bool().unwrap_or(false)
        || matches!(
            contact["dndSettings"]["SMS"]["status"].as_str(),
            Some("active" | "permanent")
        )
}

/// Issue 18 §7: an opt-out writes its DND once. An operator who clears the DND afterwards (the
/// customer asked for texts again by phone) does not find it set again by the next night's run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_who_clears_dnd_after_an_opt_out_keeps_it_cleared() {
    let h = harness(23, 120).await;
    h.run_ok(&["run", "--json"]).await;
    let state = h.control("state").await;
    let opted_out: Vec<String> = state["ghl"]["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .filter(|c| {
            sms_dnd(c)
                && c["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "sms:opted-out"))
        })
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect();
    let cleared = opted_out
        .first()
        .expect("the first run set DND on an opted-out contact");
    let info = &h.sandbox.info;
    let response = h
        .http
        .put(format!("{}/contacts/{cleared}", info.ghl_base_url))
        .bearer_auth(&info.ghl_token)
        .header("Version", "2021-07-28")
        .json(&json!({"dnd": false, "dndSettings": {"SMS": {"status": "inactive", "message": "asked for texts again", "code": ""}}}))
        .send()
        .await
        .expect("GHL answers");
    assert!(
        response.status().is_success(),
        "{:?}",
        response.text().await
    );

    // The next night's transform no longer asks for DND on it...
    h.run_ok(&["extract", "--json"]).await;
    h.run_ok(&["transform", "--json"]).await;
    let run = contactsync::snapshot::run::latest_complete_extract(&h.state_dir())
        .expect("runs")
        .expect("a finished extract")
        .0;
    let desired: Vec<contactsync::snapshot::desired::DesiredContact> =
        contactsync::snapshot::desired::read_rows(
            &run.transform_dir().join("desired_contacts.parquet"),
        )
        .expect("desired contacts");
    let asks_dnd = desired
        .iter()
        .filter(|d| d.contact_id.as_deref() == Some(cleared.as_str()))
        .any(|d| d.sms_dnd == Some(true));
    assert!(
        !asks_dnd,
        "the opt-out is a standing desired DND on {cleared}"
    );
    h.run_ok(&["plan", "--json"]).await;
    h.run_ok(&["load", "--json"]).await;
    // ...and neither load nor the runs after it set it again.
    for night in 2..=3 {
        if night > 2 {
            h.run_ok(&["run", "--json"]).await;
        }
        let state = h.control("state").await;
        let contact = state["ghl"]["contacts"]
            .as_array()
            .expect("contacts")
            .iter()
            .find(|c| c["id"] == cleared.as_str())
            .expect("the contact is still there");
        assert!(
            !sms_dnd(contact),
            "night {night}: DND set again on {cleared} after the operator cleared it"
        );
    }

    // A new opt-out of the same number is a new event: its DND is written again, once.
    let state = h.control("state").await;
    let phone: String = state["ghl"]["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .find(|c| c["id"] == cleared.as_str())
        .and_then(|c| c["phone"].as_str())
        .expect("the cleared contact has a phone")
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    h.control_post("bulksms/inbound", json!({"from": phone, "body": "STOP"}))
        .await;
    h.run_ok(&["run", "--json"]).await;
    let state = h.control("state").await;
    let contact = state["ghl"]["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .find(|c| c["id"] == cleared.as_str())
        .expect("the contact is still there");
    assert!(
        sms_dnd(contact),
        "a second STOP from {phone} left DND off on {cleared}"
    );
}

/// Issue 18 §7: replies in the everyday spellings of an opt-out are honoured: the contact gets
/// DND and the opted-out tag, and no welcome text. Only an exact `stop` counted; the sandbox (as
/// BulkSMS for a STOP) blocks "Stop." and "Unsubscribe me" itself, but not "Opt-out", which the
/// pipeline alone must read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_with_punctuation_unsubscribe_me_and_opt_out_are_honoured() {
    let h = harness(25, 80).await;
    let state = h.control("state").await;
    let targets: Vec<(String, String)> = state["ghl"]["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .filter(|c| !sms_dnd(c))
        .filter_map(|c| {
            let phone = c["phone"].as_str()?;
            phone
                .starts_with('+')
                .then(|| (c["id"].as_str().expect("id").to_string(), phone.to_string()))
        })
        .take(3)
        .collect();
    assert_eq!(targets.len(), 3, "three contacts with E.164 phones");
    for ((_, phone), body) in targets.iter().zip(["Stop.", "Unsubscribe me", "Opt-out"]) {
        h.control_post(
            "bulksms/inbound",
            json!({"from": phone.trim_start_matches('+'), "body": body}),
        )
        .await;
    }
    h.run_ok(&["run", "--json"]).await;
    let state = h.control("state").await;
    for ((id, phone), body) in targets.iter().zip(["Stop.", "Unsubscribe me", "Opt-out"]) {
        assert_eq!(
            sends_to(&state, phone, "welcome"),
            0,
            "{phone} replied {body:?} but was welcomed"
        );
        let contact = state["ghl"]["contacts"]
            .as_array()
            .expect("contacts")
            .iter()
            .find(|c| c["id"] == id.as_str())
            .expect("contact");
        assert!(sms_dnd(contact), "{phone} replied {body:?} but has no DND");
    }
}

/// Issue 18 §6: two different sends whose keys share their first 31 bits, the old
/// `deduplication-id`: BulkSMS replays the first answer to the second (the sandbox does, for
/// 12 hours, as the spec says) and the second text never goes out while the ledger says it did.
/// Ids allocated by the ledger differ, so both go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sends_whose_keys_share_31_bits_both_go_out() {
    use contactsync::load::plan::{Plan, PlannedOperation};
    let op = |i: u32| PlanOp::SendSms {
        to: if i.is_multiple_of(2) {
            "+15005550101"
        } else {
            "+15005550102"
        }
        .to_string(),
        body: format!("Collision probe {i}"),
        trigger: "probe".into(),
        event: format!("probe {i}"),
        contact_id: None,
        encoding: "TEXT".into(),
        parts: 1,
    };
    let old_id = |key: &str| u32::from_str_radix(&key[..8], 16).expect("hex key") & 0x7fff_ffff;
    let mut seen: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
    let (first, second) = (0..2_000_000u32)
        .find_map(|i| {
            let id = old_id(&op(i).idempotency_key());
            seen.insert(id, i).map(|j| (j, i))
        })
        .expect("a 31-bit collision within 2 M keys");

    let h = harness(27, 30).await;
    let report = h.run_ok(&["extract", "--json"]).await;
    let run_id = report["run_id"].as_str().expect("run id").to_string();
    let run = contactsync::snapshot::run::RunDir::open(&h.state_dir(), &run_id).expect("run");
    let plan = Plan {
        run_id: run_id.clone(),
        operations: [first, second]
            .into_iter()
            .map(|i| PlannedOperation::new(op(i), "probe"))
            .collect(),
    };
    std::fs::create_dir_all(run.load_dir()).expect("load dir");
    contactsync::load::plan_io::write_plan(&plan, None, &run.load_dir()).expect("write plan");
    let load = h.run_ok(&["load", "--run", &run_id, "--json"]).await;
    assert_eq!(load["counts"]["applied"], 2, "{load}");
    let state = h.control("state").await;
    for i in [first, second] {
        let body = format!("Collision probe {i}");
        let sent = state["bulksms"]["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter(|m| m["type"] == "SENT" && m["body"] == body.as_str())
            .count();
        assert_eq!(sent, 1, "{body:?} was sent {sent} times (ledger: applied)");
    }
}
