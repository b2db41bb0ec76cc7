//! Message workflows end to end against the sandbox (issue 22): an inbound reply becomes a
//! follow-up task that is completed once the contact is answered; repeated failed deliveries
//! become a "check this number" task and a tag; the contact's SMS status follows its latest event
//! in tags. Each effect exactly once: on a clean pair of nights, under the hostile fault profile,
//! and with the run killed (`kill -9`) anywhere in either night.

mod common;

use common::Harness;
use common::effects::{effects, options};
use contactsync::sandbox::faults::FaultProfile;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const WORKFLOWS: &str = r#"
[transform.workflows.reply_task]
title = "Reply from {full_name|a contact}"
body = "{number} wrote at {received}: {message}"
due_hours = 4
assigned_to = "user-7"
resolve_keywords = ["thanks", "resolved"]

[transform.workflows.delivery_failures]
failures = 3
window_days = 14
tag = "sms:undeliverable"

[transform.workflows.sms_status]
store = "tags"
"#;

/// The contact who replies, and the one whose number fails.
const REPLIER: &str = "+14155557201";
const UNREACHABLE: &str = "+14155557202";
const QUESTION: &str = "Can I move my booking to Friday?";

async fn harness(seed: u64) -> Harness {
    let h = Harness::start(options(seed, 40)).await;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&h.pipeline)
        .expect("pipeline file")
        .write_all(WORKFLOWS.as_bytes())
        .expect("append workflows");
    h.authorise().await;
    for (first, phone) in [("Rita", REPLIER), ("Ugo", UNREACHABLE)] {
        let info = &h.sandbox.info;
        let response = h
            .http
            .post(format!("{}/contacts/", info.ghl_base_url))
            .bearer_auth(&info.ghl_token)
            .header("Version", "2021-07-28")
            .json(&json!({
                "locationId": info.ghl_location_id,
                "firstName": first,
                "lastName": "Workflow",
                "phone": phone,
                "source": "web form",
            }))
            .send()
            .await
            .expect("GHL answers");
        assert!(
            response.status().is_success(),
            "{:?}",
            response.text().await
        );
    }
    h
}

async fn advance(h: &Harness, seconds: i64) {
    h.control_post(&format!("clock/advance?seconds={seconds}"), Value::Null)
        .await;
}

async fn bulksms_post(h: &Harness, path: &str, body: Value) {
    let info = &h.sandbox.info;
    let response = h
        .http
        .post(format!("{}{path}", info.bulksms_base_url))
        .basic_auth(&info.bulksms_token_id, Some(&info.bulksms_token_secret))
        .json(&body)
        .send()
        .await
        .expect("BulkSMS answers");
    assert!(
        response.status().is_success(),
        "{:?}",
        response.text().await
    );
}

/// Night 1's events: the replier texts in; the unreachable number is blocked and three texts
/// sent to it by someone else fail.
async fn night_one_events(h: &Harness) {
    advance(h, 3_600).await;
    h.control_post(
        "bulksms/inbound",
        json!({"from": REPLIER.trim_start_matches('+'), "body": QUESTION}),
    )
    .await;
    bulksms_post(h, "/blocked-numbers", json!([UNREACHABLE])).await;
    for i in 0..3 {
        advance(h, 600).await;
        bulksms_post(
            h,
            "/messages",
            json!({"to": UNREACHABLE, "body": format!("Your order {i} shipped")}),
        )
        .await;
    }
    advance(h, 600).await;
}

/// Night 2's event: the team answers the replier.
async fn night_two_events(h: &Harness) {
    advance(h, 3_600).await;
    bulksms_post(
        h,
        "/messages",
        json!({"to": REPLIER, "body": "Friday works, see you then"}),
    )
    .await;
    advance(h, 600).await;
}

fn contact<'a>(state: &'a Value, phone: &str) -> &'a Value {
    state["ghl"]["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .find(|c| c["phone"].as_str() == Some(phone))
        .unwrap_or_else(|| panic!("no contact with {phone}"))
}

fn tasks_of<'a>(state: &'a Value, phone: &str) -> Vec<&'a Value> {
    let id = contact(state, phone)["id"].clone();
    state["ghl"]["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|t| t["contactId"] == id)
        .collect()
}

fn tags_of(state: &Value, phone: &str) -> Vec<String> {
    contact(state, phone)["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect()
}

/// The effects compared between runs: the shared ones plus the tasks of the two contacts by
/// title, assignee, completion and whether the body quotes the reply (times follow the sandbox's
/// clock, which starts at the wall clock).
fn all_effects(state: &Value) -> BTreeMap<String, usize> {
    let mut out = effects(state);
    let phone_of: BTreeMap<&str, &str> = state["ghl"]["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .filter_map(|c| Some((c["id"].as_str()?, c["phone"].as_str().unwrap_or(""))))
        .collect();
    for t in state["ghl"]["tasks"].as_array().expect("tasks") {
        let phone = phone_of
            .get(t["contactId"].as_str().unwrap_or(""))
            .copied()
            .unwrap_or("");
        if phone != REPLIER && phone != UNREACHABLE {
            continue;
        }
        let quotes = t["body"].as_str().unwrap_or("").contains(QUESTION);
        let key = format!(
            "task {phone} {} quotes={quotes} to={} completed={}",
            t["title"], t["assignedTo"], t["completed"]
        );
        *out.entry(key).or_default() += 1;
    }
    out
}

/// How a night is run.
#[derive(Clone, Copy, Debug)]
enum Night {
    Clean,
    Hostile,
    /// Killed after this long, then run until it converges.
    KilledAfter(Duration),
}

/// Kills that found the run still going (a kill after the run ended tests nothing).
static KILLS_LANDED: AtomicU32 = AtomicU32::new(0);

/// Runs the pipeline until a run exits 0.
async fn converge(h: &Harness, max_runs: usize) {
    for attempt in 0..max_runs {
        let out = h.run(&["run", "--json"]).await;
        match out.status.code() {
            Some(0) => return,
            Some(3) => continue,
            other => panic!(
                "run {attempt} exited {other:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
    panic!("the pipeline did not converge in {max_runs} runs");
}

async fn night(h: &Harness, how: Night) {
    match how {
        Night::Clean => converge(h, 1).await,
        Night::Hostile => {
            let profile = FaultProfile {
                slow_ms: 20,
                retry_after_secs: 1,
                ..FaultProfile::from_arg("hostile").expect("profile")
            };
            h.control_post("faults", serde_json::to_value(&profile).expect("JSON"))
                .await;
            converge(h, 8).await;
            h.control_post("faults", json!({"name": "none"})).await;
        }
        Night::KilledAfter(delay) => {
            let mut child = Command::new(env!("CARGO_BIN_EXE_contactsync"))
                .args(["run", "--json", "--pipeline"])
                .arg(&h.pipeline)
                .env("RUST_LOG", "error")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("run starts");
            let started = Instant::now();
            while started.elapsed() < delay && child.try_wait().expect("wait").is_none() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if child.try_wait().expect("wait").is_none() {
                KILLS_LANDED.fetch_add(1, Ordering::Relaxed);
            }
            child.kill().ok(); // SIGKILL
            child.wait().ok();
            converge(h, 6).await;
        }
    }
}

/// The baseline night, then the two nights with events; `how` runs the nights with events.
/// Returns the state after night 1 and after night 2.
async fn scenario(seed: u64, how: [Night; 2]) -> (Value, Value) {
    let h = harness(seed).await;
    converge(&h, 1).await;
    night_one_events(&h).await;
    night(&h, how[0]).await;
    let first = h.control("state").await;
    night_two_events(&h).await;
    night(&h, how[1]).await;
    let second = h.control("state").await;
    // Nothing left to do: a further night plans nothing.
    let extra = h.run_ok(&["run", "--json"]).await;
    assert_eq!(
        extra["counts"]["planned_operations"].as_u64().unwrap_or(0),
        0,
        "{how:?}: the night after plans: {extra}"
    );
    (first, second)
}

const SEED: u64 = 31;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_failures_and_statuses_reach_ghl_once() {
    let (first, second) = scenario(SEED, [Night::Clean, Night::Clean]).await;

    // Night 1: the reply is a task, due 4 hours after it arrived, assigned, open.
    let tasks = tasks_of(&first, REPLIER);
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let task = tasks[0];
    assert_eq!(task["title"], "Reply from Rita Workflow");
    assert!(
        task["body"].as_str().unwrap_or("").contains(QUESTION),
        "{task}"
    );
    assert_eq!(task["assignedTo"], "user-7");
    assert_eq!(task["completed"], false);
    let received = first["bulksms"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["body"] == QUESTION)
        .and_then(|m| m["submission"]["date"].as_str())
        .expect("the reply is in BulkSMS");
    let hours = |text: &str| {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .timestamp()
    };
    assert_eq!(
        hours(task["dueDate"].as_str().expect("due date")) - hours(received),
        4 * 3_600,
        "due 4 hours after the reply: {task}"
    );
    assert!(tags_of(&first, REPLIER).contains(&"sms:replied".to_string()));
    // Three failed deliveries: one task to check the number, and the tag.
    let tasks = tasks_of(&first, UNREACHABLE);
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["title"], format!("Check the number {UNREACHABLE}"));
    assert!(tags_of(&first, UNREACHABLE).contains(&"sms:undeliverable".to_string()));

    // Night 2: answered, so the task is completed (not a second one); the status moved on.
    let tasks = tasks_of(&second, REPLIER);
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["completed"], true, "{}", tasks[0]);
    let tags = tags_of(&second, REPLIER);
    assert!(tags.contains(&"sms:delivered".to_string()), "{tags:?}");
    assert!(!tags.contains(&"sms:replied".to_string()), "{tags:?}");
    assert_eq!(tasks_of(&second, UNREACHABLE).len(), 1);
}

/// A follow-up task deleted in GHL before the contact is answered: the answer's night completes
/// nothing and succeeds (it failed every night since, asking GHL to complete a task it no longer
/// has).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_task_deleted_in_ghl_is_not_completed_again_and_again() {
    let h = harness(SEED).await;
    converge(&h, 1).await;
    night_one_events(&h).await;
    converge(&h, 1).await;
    let state = h.control("state").await;
    let task = tasks_of(&state, REPLIER)[0].clone();
    let info = &h.sandbox.info;
    let response = h
        .http
        .delete(format!(
            "{}/contacts/{}/tasks/{}",
            info.ghl_base_url,
            task["contactId"].as_str().expect("contact"),
            task["id"].as_str().expect("id")
        ))
        .bearer_auth(&info.ghl_token)
        .header("Version", "2021-07-28")
        .send()
        .await
        .expect("GHL answers");
    assert!(
        response.status().is_success(),
        "{:?}",
        response.text().await
    );
    night_two_events(&h).await;
    h.run_ok(&["run", "--json"]).await;
    let extra = h.run_ok(&["run", "--json"]).await;
    assert_eq!(
        extra["counts"]["planned_operations"].as_u64().unwrap_or(0),
        0,
        "{extra}"
    );
    assert!(tasks_of(&h.control("state").await, REPLIER).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_act_once_under_hostile_faults() {
    let (clean_first, clean_second) = scenario(SEED, [Night::Clean, Night::Clean]).await;
    let (first, second) = scenario(SEED, [Night::Hostile, Night::Hostile]).await;
    for (night, clean, got) in [(1, &clean_first, &first), (2, &clean_second, &second)] {
        let (want, got) = (all_effects(clean), all_effects(got));
        let differences = common::effects::diff(&want, &got);
        assert!(
            differences.is_empty(),
            "night {night}: {} differences, e.g. {:?}",
            differences.len(),
            &differences[..differences.len().min(10)]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_act_once_across_kill_9() {
    const TRIALS: u32 = 6;
    let (_, clean) = scenario(SEED, [Night::Clean, Night::Clean]).await;
    let want = all_effects(&clean);
    for trial in 0..TRIALS {
        // Spread over the first two seconds of either night (a night's run takes about that).
        let delay = Duration::from_millis(150 + u64::from(trial / 2) * 600);
        let how = if trial % 2 == 0 {
            [Night::KilledAfter(delay), Night::Clean]
        } else {
            [Night::Clean, Night::KilledAfter(delay)]
        };
        let (_, got) = scenario(SEED, how).await;
        let differences = common::effects::diff(&want, &all_effects(&got));
        assert!(
            differences.is_empty(),
            "trial {trial} ({how:?}): {} differences, e.g. {:?}",
            differences.len(),
            &differences[..differences.len().min(10)]
        );
    }
    let landed = KILLS_LANDED.load(Ordering::Relaxed);
    assert!(
        landed >= TRIALS / 2,
        "only {landed} of {TRIALS} kills landed while a run was going"
    );
}

/// The replier's two further texts, before anyone answers.
const FOLLOW_UP: &str = "Or Saturday morning?";
const AFTERTHOUGHT: &str = "Any time after 3pm works too";

async fn inbound(h: &Harness, body: &str) {
    h.control_post(
        "bulksms/inbound",
        json!({"from": REPLIER.trim_start_matches('+'), "body": body}),
    )
    .await;
}

/// The replier's tasks as compared between runs: title, assignee, completion and how often the
/// body quotes each of the three texts (times follow the sandbox's clock).
fn conversation_effects(state: &Value) -> BTreeMap<String, usize> {
    let mut out = common::effects::effects(state);
    for t in tasks_of(state, REPLIER) {
        let body = t["body"].as_str().unwrap_or("");
        let quoted: Vec<usize> = [QUESTION, FOLLOW_UP, AFTERTHOUGHT]
            .iter()
            .map(|text| body.matches(text).count())
            .collect();
        let key = format!(
            "task {} to={} completed={} quotes={quoted:?}",
            t["title"], t["assignedTo"], t["completed"]
        );
        *out.entry(key).or_default() += 1;
    }
    out
}

/// A baseline night, then the replier's first two texts ten minutes apart, before night 1.
async fn two_texts_after_a_baseline(seed: u64) -> Harness {
    let h = harness(seed).await;
    converge(&h, 1).await;
    advance(&h, 3_600).await;
    inbound(&h, QUESTION).await;
    advance(&h, 600).await;
    inbound(&h, FOLLOW_UP).await;
    advance(&h, 600).await;
    h
}

/// Night 1: two texts ten minutes apart. Night 2: a third. Night 3: the team answers. `how`
/// runs each of the three nights; returns the state after each.
async fn conversation(seed: u64, how: Night) -> [Value; 3] {
    let h = two_texts_after_a_baseline(seed).await;
    night(&h, how).await;
    let first = h.control("state").await;
    advance(&h, 3_600).await;
    inbound(&h, AFTERTHOUGHT).await;
    advance(&h, 600).await;
    night(&h, how).await;
    let second = h.control("state").await;
    night_two_events(&h).await;
    night(&h, how).await;
    let third = h.control("state").await;
    let extra = h.run_ok(&["run", "--json"]).await;
    assert_eq!(
        extra["counts"]["planned_operations"].as_u64().unwrap_or(0),
        0,
        "{how:?}: the night after plans: {extra}"
    );
    [first, second, third]
}

fn received(state: &Value, body: &str) -> i64 {
    let text = state["bulksms"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["body"] == body)
        .and_then(|m| m["submission"]["date"].as_str())
        .unwrap_or_else(|| panic!("{body:?} is not in BulkSMS"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .timestamp()
}

/// Three texts before an answer are one task: made holding the first two (they came the same
/// night), updated with the third and its due time (the title kept), completed once answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_before_an_answer_are_one_task_kept_current_then_completed() {
    let [first, second, third] = conversation(SEED, Night::Clean).await;
    let quotes = |t: &Value, text: &str| t["body"].as_str().unwrap_or("").matches(text).count();

    let tasks = tasks_of(&first, REPLIER);
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(
        (quotes(tasks[0], QUESTION), quotes(tasks[0], FOLLOW_UP)),
        (1, 1),
        "{}",
        tasks[0]
    );
    assert_eq!(quotes(tasks[0], AFTERTHOUGHT), 0);
    let id = tasks[0]["id"].clone();

    let tasks = tasks_of(&second, REPLIER);
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let task = tasks[0];
    assert_eq!(task["id"], id, "the same task, not a second one");
    assert_eq!(task["title"], "Reply from Rita Workflow");
    assert_eq!(task["assignedTo"], "user-7");
    assert_eq!(task["completed"], false);
    for text in [QUESTION, FOLLOW_UP, AFTERTHOUGHT] {
        assert_eq!(quotes(task, text), 1, "{text:?} in {task}");
    }
    let due = chrono::DateTime::parse_from_rfc3339(task["dueDate"].as_str().expect("due"))
        .expect("RFC 3339")
        .timestamp();
    assert_eq!(
        due - received(&second, AFTERTHOUGHT),
        4 * 3_600,
        "due 4 hours after the latest text: {task}"
    );

    let tasks = tasks_of(&third, REPLIER);
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["id"], id);
    assert_eq!(tasks[0]["completed"], true, "{}", tasks[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_is_one_task_exactly_once_under_hostile_faults() {
    let clean = conversation(SEED, Night::Clean).await;
    let hostile = conversation(SEED, Night::Hostile).await;
    // One task, holding each text once, completed once answered.
    let tasks = tasks_of(&hostile[2], REPLIER);
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["completed"], true, "{}", tasks[0]);
    for text in [QUESTION, FOLLOW_UP, AFTERTHOUGHT] {
        let body = tasks[0]["body"].as_str().unwrap_or("");
        assert_eq!(body.matches(text).count(), 1, "{text:?} in {body:?}");
    }
    for (night, (want, got)) in clean.iter().zip(&hostile).enumerate() {
        let (want, got) = (conversation_effects(want), conversation_effects(got));
        let differences = common::effects::diff(&want, &got);
        assert!(
            differences.is_empty(),
            "night {}: {} differences, e.g. {:?}",
            night + 1,
            differences.len(),
            &differences[..differences.len().min(10)]
        );
    }
}

/// `kill -9` while the update of the task is being applied: GHL took it but its answer was lost
/// (the client is retrying). The next run reads the task back by its id and finds it done; the
/// nights end as a clean run's do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_the_task_update_then_a_rerun_equals_a_clean_run() {
    let clean = conversation(SEED, Night::Clean).await;

    let h = two_texts_after_a_baseline(SEED).await;
    converge(&h, 1).await;
    let task = tasks_of(&h.control("state").await, REPLIER)[0].clone();
    let task_id = task["id"].as_str().expect("task id").to_string();
    advance(&h, 3_600).await;
    inbound(&h, AFTERTHOUGHT).await;
    advance(&h, 600).await;
    // Every answer about this task is lost, slowly: the update lands and the client retries.
    h.control_post(
        "faults",
        json!({"lost_response": 1.0, "slow": 1.0, "slow_ms": 1_500,
               "only_paths": [format!("/tasks/{task_id}")]}),
    )
    .await;
    let mut child = h.spawn_quiet(&["run", "--json"]);
    let started = Instant::now();
    loop {
        let state = h.control("state").await;
        let tasks = tasks_of(&state, REPLIER);
        if tasks.iter().any(|t| {
            t["id"] == task_id.as_str() && t["body"].as_str().unwrap_or("").contains(AFTERTHOUGHT)
        }) {
            break;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended without updating the task: {tasks:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the task was never updated: {tasks:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the run ended before the kill"
    );
    child.kill().expect("kill -9");
    child.wait().ok();
    h.control_post("faults", json!({"name": "none"})).await;

    // Rerun until a run ends clean (the first may finish what the killed one left).
    let mut read_back = 0;
    for attempt in 0.. {
        assert!(attempt < 4, "the reruns did not converge");
        let out = h.run(&["run", "--json"]).await;
        let report = common::json_report(&["run", "--json"], &out);
        read_back += report["counts"]["resolved_by_readback"]
            .as_u64()
            .unwrap_or(0);
        match out.status.code() {
            Some(0) => break,
            Some(3) => continue,
            other => panic!(
                "rerun exited {other:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
    assert!(
        read_back >= 1,
        "the update is found done by reading the task back by its id"
    );
    let second = h.control("state").await;
    night_two_events(&h).await;
    converge(&h, 1).await;
    let third = h.control("state").await;
    for (night, want, got) in [(2, &clean[1], &second), (3, &clean[2], &third)] {
        let differences =
            common::effects::diff(&conversation_effects(want), &conversation_effects(got));
        assert!(
            differences.is_empty(),
            "night {night}: {} differences, e.g. {:?}",
            differences.len(),
            &differences[..differences.len().min(10)]
        );
    }
}
