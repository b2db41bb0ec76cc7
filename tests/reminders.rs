//! Reminders on status changes and the digest, end to end against the sandbox: a custom field's new
//! value, a change of contact type and an appointment coming due each text the contact once (under
//! faults, and across kill -9 too), a "C" reply after a reminder tags the contact once, and the digest lands as an SMS of at
//! most two parts with `digest.md` beside it.

mod common;

use common::Harness;
use common::effects::{converge, count, options};
use contactsync::sandbox::faults::FaultProfile;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

const FIELD: &str = "cf_job_stage";

/// A reminder on a custom field reaching "booked", one on appointments due in 30 days, a digest.
const REMINDERS: &str = r#"
[extract]
history_for_changed = true

[transform.triggers]
activity_notes = false

[[transform.triggers.reminder]]
field = "cf_job_stage"
values = ["booked"]
template = "Hi {first_name|there}, your job is now {value}. Reply C to confirm."

[[transform.triggers.reminder]]
appointment_within_hours = 720
template = "Appointment reminder: {appointment_title}, {appointment_time}."

[[transform.triggers.reminder]]
tag = "appointment-tomorrow"
template = "Hi {first_name|there}, a reminder of your appointment tomorrow. Reply C to confirm."
confirm_reply = ["C", "CONFIRM"]
confirm_tag = "appointment-confirmed"

[[transform.triggers.reminder]]
contact_type = ["customer"]
template = "Hi {first_name|there}, you are now a {contact_type} (was {old_contact_type|new})."

[transform.triggers.digest]
to = "+14155550100"
"#;

async fn harness(seed: u64, contacts: usize) -> Harness {
    let h = Harness::start(options(seed, contacts)).await;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&h.pipeline)
        .expect("pipeline file");
    file.write_all(REMINDERS.as_bytes())
        .expect("append reminders");
    h.authorise().await;
    h
}

/// Sent messages whose body contains `needle`: (to, body).
fn sent(state: &Value, needle: &str) -> Vec<(String, String)> {
    state["bulksms"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["type"] == "SENT")
        .map(|m| {
            (
                m["to"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches('+')
                    .to_string(),
                m["body"].as_str().unwrap_or("").to_string(),
            )
        })
        .filter(|(_, body)| body.contains(needle))
        .collect()
}

/// A contact the pipeline can text after its first run (see [`textable_contacts`]).
fn textable_contact(state: &Value) -> (String, String, String) {
    textable_contacts(state)
        .into_iter()
        .next()
        .expect("a textable contact")
}

/// Contacts the pipeline can text after its first run: a US number no other contact has, a first
/// name, not opted out, blocked or marked as a duplicate. Each is (id, first name, number digits).
fn textable_contacts(state: &Value) -> Vec<(String, String, String)> {
    let blocked: BTreeSet<String> = state["bulksms"]["blocked_numbers"]
        .as_array()
        .expect("blocked")
        .iter()
        .map(|b| {
            b["phoneNumber"]
                .as_str()
                .unwrap_or("")
                .trim_start_matches('+')
                .to_string()
        })
        .collect();
    let contacts = state["ghl"]["contacts"].as_array().expect("contacts");
    let digits = |c: &Value| -> String {
        c["phone"]
            .as_str()
            .unwrap_or("")
            .chars()
            .filter(char::is_ascii_digit)
            .collect()
    };
    contacts
        .iter()
        .filter(|c| c["phone"].as_str().is_some_and(|p| p.starts_with("+1")))
        .filter(|c| c["firstName"].as_str().is_some_and(|f| !f.is_empty()))
        .filter(|c| !c["dnd"].as_bool().unwrap_or(false))
        .filter(|c| c["dndSettings"]["SMS"]["status"].as_str() != Some("active"))
        .filter(|c| {
            c["tags"].as_array().is_none_or(|t| {
                !t.iter().any(|x| {
                    x.as_str()
                        .is_some_and(|x| x.starts_with("contactsync:") || x.starts_with("sms:"))
                })
            })
        })
        .filter(|c| !blocked.contains(&digits(c)))
        .filter(|c| contacts.iter().filter(|o| digits(o) == digits(c)).count() == 1)
        .map(|c| {
            (
                c["id"].as_str().expect("id").to_string(),
                c["firstName"].as_str().expect("name").to_string(),
                digits(c),
            )
        })
        .collect()
}

/// Sets the custom field on a contact through the GHL API, as a user or another app would.
async fn set_field(h: &Harness, contact_id: &str, value: &str) {
    let info = &h.sandbox.info;
    h.http
        .put(format!("{}/contacts/{contact_id}", info.ghl_base_url))
        .bearer_auth(&info.ghl_token)
        .header("Version", "2021-07-28")
        .json(&json!({"customFields": [{"id": FIELD, "field_value": value}]}))
        .send()
        .await
        .expect("PUT answers")
        .error_for_status()
        .expect("PUT succeeds");
}

/// The hostile fault profile, with short delays so the test stays quick.
async fn turn_hostile(h: &Harness) {
    let profile = FaultProfile {
        slow_ms: 20,
        retry_after_secs: 1,
        ..FaultProfile::from_arg("hostile").expect("profile")
    };
    h.control_post(
        "faults",
        serde_json::to_value(&profile).expect("profile JSON"),
    )
    .await;
}

/// The folder of the newest run.
fn newest_run(h: &Harness) -> PathBuf {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(h.state_dir().join("runs"))
        .expect("runs")
        .map(|e| e.expect("entry").path())
        .collect();
    runs.sort();
    runs.pop().expect("a run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_field_reaching_a_listed_value_texts_the_contact_once() {
    let h = harness(31, 40).await;
    h.run_ok(&["run", "--json"]).await;
    let (id, first_name, number) = textable_contact(&h.control("state").await);
    // A value not listed fires nothing.
    set_field(&h, &id, "quoted").await;
    h.run_ok(&["run", "--json"]).await;
    assert!(sent(&h.control("state").await, "your job is now").is_empty());

    set_field(&h, &id, "booked").await;
    let report = h.run_ok(&["run", "--json"]).await;
    let expected = format!("Hi {first_name}, your job is now booked. Reply C to confirm.");
    assert_eq!(
        sent(&h.control("state").await, "your job is now"),
        [(number.clone(), expected.clone())],
        "{report}"
    );
    // The next night sees the same value: nothing more.
    h.run_ok(&["run", "--json"]).await;
    assert_eq!(
        sent(&h.control("state").await, "your job is now").len(),
        1,
        "the reminder was sent again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appointments_due_within_the_window_are_reminded_once_each() {
    let h = harness(32, 300).await;
    h.run_ok(&["run", "--json"]).await;
    // The baseline texts nobody; the next night reminds of the appointments due in 30 days.
    assert!(sent(&h.control("state").await, "Appointment reminder").is_empty());
    h.run_ok(&["run", "--json"]).await;
    let run = newest_run(&h);
    let appointments = run.join("extract/ghl/appointments.parquet");
    let contact_ids = common::column_strings(&appointments, "contact_id");
    let statuses = common::column_strings(&appointments, "appointment_status");
    let starts = common::column_strings(&appointments, "start_time");
    let now = chrono::Utc::now();
    // Due: inside the 30-day window, not cancelled. An appointment near either edge may go either
    // way (the run read the clock a moment before this test did), so it is only "may".
    let mut due: BTreeSet<String> = BTreeSet::new();
    let mut may: BTreeSet<String> = BTreeSet::new();
    for ((contact, status), start) in contact_ids.iter().zip(&statuses).zip(&starts) {
        let contact = contact.clone().expect("contact id");
        let start = start.as_deref().expect("start time");
        let start = chrono::DateTime::parse_from_rfc3339(start)
            .or_else(|_| chrono::DateTime::parse_from_rfc3339(&format!("{start}Z")))
            .expect("start parses");
        if status.as_deref() == Some("cancelled") {
            continue;
        }
        let hours = (start.with_timezone(&chrono::Utc) - now).num_minutes() as f64 / 60.0;
        if (1.0..719.0).contains(&hours) {
            due.insert(contact.clone());
        }
        if (-1.0..721.0).contains(&hours) {
            may.insert(contact);
        }
    }
    let state = h.control("state").await;
    let number_of = |id: &str| -> String {
        state["ghl"]["contacts"]
            .as_array()
            .expect("contacts")
            .iter()
            .find(|c| c["id"] == id)
            .and_then(|c| c["phone"].as_str())
            .unwrap_or("")
            .chars()
            .filter(char::is_ascii_digit)
            .collect()
    };
    let reminded: Vec<String> = sent(&state, "Appointment reminder")
        .into_iter()
        .map(|(to, _)| to)
        .collect();
    let may_numbers: BTreeSet<String> = may.iter().map(|id| number_of(id)).collect();
    for to in &reminded {
        // Phones are stored as typed ("(215) 531-6019", "0012155316019"): compare the last nine
        // digits.
        let tail = |n: &str| n[n.len().saturating_sub(9)..].to_string();
        assert!(
            may_numbers
                .iter()
                .any(|n| n.len() >= 7 && tail(n) == tail(to)),
            "{to} was reminded of no appointment due in the window: may {may_numbers:?}, events {:?} to {:?}",
            common::column_strings(&run.join("transform/desired_messages.parquet"), "event"),
            common::column_strings(&run.join("transform/desired_messages.parquet"), "to")
        );
    }
    // Every textable contact with an appointment due was reminded.
    let textable_due: BTreeSet<String> = textable_contacts(&state)
        .into_iter()
        .filter(|(id, _, _)| due.contains(id))
        .map(|(_, _, number)| number)
        .collect();
    assert!(
        !textable_due.is_empty(),
        "the seed has a textable contact with an appointment due: {starts:?}"
    );
    let reminded_set: BTreeSet<String> = reminded.iter().cloned().collect();
    assert!(
        textable_due.is_subset(&reminded_set),
        "due and textable {textable_due:?}, reminded {reminded_set:?}"
    );
    // Still due tomorrow night: not sent again.
    h.run_ok(&["run", "--json"]).await;
    let again = sent(&h.control("state").await, "Appointment reminder");
    assert_eq!(again.len(), reminded.len(), "reminders repeated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_reminder_is_sent_once_under_hostile_faults() {
    let h = harness(33, 40).await;
    h.run_ok(&["run", "--json"]).await;
    let (id, first_name, number) = textable_contact(&h.control("state").await);
    set_field(&h, &id, "booked").await;
    turn_hostile(&h).await;
    converge(&h, 6).await;
    let stats = h.control("stats").await;
    assert!(stats["faults"].as_u64().unwrap_or(0) > 0, "{stats}");
    let expected = format!("Hi {first_name}, your job is now booked. Reply C to confirm.");
    assert_eq!(
        sent(&h.control("state").await, "your job is now"),
        [(number, expected)]
    );
    h.control_post("faults", json!({"name": "none"})).await;
    let extra = h.run_ok(&["run", "--json"]).await;
    assert_eq!(count(&extra, "planned_operations"), 0, "{extra}");
    assert_eq!(sent(&h.control("state").await, "your job is now").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_reminder_is_sent_once_across_kill_9() {
    let h = harness(34, 40).await;
    h.run_ok(&["run", "--json"]).await;
    let (id, _, number) = textable_contact(&h.control("state").await);
    set_field(&h, &id, "booked").await;
    // Kill runs at growing delays: before, during and after the send, as a crash would.
    for delay_ms in [150, 400, 800, 1200, 1800, 2600] {
        let mut child = h.spawn_quiet(&["run"]);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let _ = child.kill();
        let _ = child.wait();
        let texts = sent(&h.control("state").await, "your job is now");
        assert!(texts.len() <= 1, "after a kill at {delay_ms} ms: {texts:?}");
    }
    converge(&h, 3).await;
    let texts = sent(&h.control("state").await, "your job is now");
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(texts[0].0, number);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_fits_two_parts_and_its_details_are_in_digest_md() {
    let h = harness(35, 60).await;
    h.run_ok(&["run", "--json"]).await;
    // A day: a reply nobody answers and a new contact from a web form.
    let state = h.control("state").await;
    let (_, _, number) = textable_contact(&state);
    h.control_post(
        "bulksms/inbound",
        json!({"from": number, "body": "Can someone call me back about the quote?"}),
    )
    .await;
    let info = &h.sandbox.info;
    h.http
        .post(format!("{}/contacts/", info.ghl_base_url))
        .bearer_auth(&info.ghl_token)
        .header("Version", "2021-07-28")
        .json(&json!({
            "locationId": info.ghl_location_id, "firstName": "Amara", "lastName": "Nwosu",
            "phone": "+14155550142", "source": "web form",
        }))
        .send()
        .await
        .expect("create answers")
        .error_for_status()
        .expect("create succeeds");
    h.run_ok(&["run", "--json"]).await;
    let digests: Vec<(String, String)> = sent(&h.control("state").await, "contactsync ");
    let [(to, body)] = digests.as_slice() else {
        panic!("one digest expected: {digests:?}");
    };
    assert_eq!(to, "14155550100");
    let parts = contactsync::sms_encoding::count_parts(
        body,
        contactsync::sms_encoding::encoding_for(body, true),
    );
    assert!(parts.parts <= 2, "{parts:?}: {body}");
    assert!(body.contains("replies waiting"), "{body}");
    let md = std::fs::read_to_string(newest_run(&h).join("transform/digest.md"))
        .expect("digest.md is written");
    assert!(
        md.contains(&format!("+{number}")) && md.contains("Can someone call me back"),
        "{md}"
    );
    assert!(md.contains("- web form: 1"), "{md}");
}

/// The tags of a contact in the sandbox.
fn tags_of(state: &Value, id: &str) -> Vec<String> {
    state["ghl"]["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .find(|c| c["id"] == id)
        .and_then(|c| c["tags"].as_array())
        .map(|t| {
            t.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_reply_after_the_reminder_adds_the_confirmation_tag_once() {
    let h = harness(36, 40).await;
    h.run_ok(&["run", "--json"]).await;
    let (id, _, number) = textable_contact(&h.control("state").await);
    let info = &h.sandbox.info;
    h.http
        .post(format!("{}/contacts/{id}/tags", info.ghl_base_url))
        .bearer_auth(&info.ghl_token)
        .header("Version", "2021-07-28")
        .json(&json!({"tags": ["appointment-tomorrow"]}))
        .send()
        .await
        .expect("tags answer")
        .error_for_status()
        .expect("tags added");
    // A "C" that arrives before the reminder goes out confirms nothing.
    h.control_post("bulksms/inbound", json!({"from": number, "body": "C"}))
        .await;
    h.run_ok(&["run", "--json"]).await;
    let state = h.control("state").await;
    assert_eq!(
        sent(&state, "a reminder of your appointment").len(),
        1,
        "the tag fires one reminder"
    );
    h.run_ok(&["run", "--json"]).await;
    assert!(
        !tags_of(&h.control("state").await, &id).contains(&"appointment-confirmed".to_string()),
        "a reply from before the reminder confirmed it"
    );
    h.control_post(
        "bulksms/inbound",
        json!({"from": number, "body": "c, see you then"}),
    )
    .await;
    h.run_ok(&["run", "--json"]).await;
    let tags = tags_of(&h.control("state").await, &id);
    assert!(
        tags.contains(&"appointment-confirmed".to_string()),
        "{tags:?}"
    );
    // Once: the next night finds it done and plans nothing.
    let report = h.run_ok(&["run", "--json"]).await;
    assert_eq!(count(&report, "planned_operations"), 0, "{report}");
}

/// Changes a contact's type as a user does in GHL's UI (GHL's API has no `type` to write).
async fn set_type_as_a_user(h: &Harness, contact_id: &str, contact_type: &str) {
    h.http
        .post(format!(
            "{}/_sandbox/ghl/contacts/{contact_id}/type",
            h.sandbox.info.control_url
        ))
        .json(&json!({ "type": contact_type }))
        .send()
        .await
        .expect("control route answers")
        .error_for_status()
        .expect("type changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_becoming_a_customer_is_texted_once_under_hostile_faults() {
    let h = harness(35, 60).await;
    h.run_ok(&["run", "--json"]).await;
    let state = h.control("state").await;
    let lead = textable_contacts(&state)
        .into_iter()
        .find(|(id, _, _)| {
            state["ghl"]["contacts"]
                .as_array()
                .expect("contacts")
                .iter()
                .any(|c| c["id"] == id.as_str() && c["type"] == "lead")
        })
        .expect("a textable lead");
    let (id, first_name, number) = lead;
    // A change to a type the reminder does not list fires nothing; nor does no change.
    set_type_as_a_user(&h, &id, "lead").await;
    h.run_ok(&["run", "--json"]).await;
    assert!(sent(&h.control("state").await, "you are now a").is_empty());

    set_type_as_a_user(&h, &id, "customer").await;
    turn_hostile(&h).await;
    converge(&h, 6).await;
    let expected = format!("Hi {first_name}, you are now a customer (was lead).");
    assert_eq!(
        sent(&h.control("state").await, "you are now a"),
        [(number, expected)]
    );
    h.control_post("faults", json!({"name": "none"})).await;
    let extra = h.run_ok(&["run", "--json"]).await;
    assert_eq!(count(&extra, "planned_operations"), 0, "{extra}");
    assert_eq!(sent(&h.control("state").await, "you are now a").len(), 1);
}
