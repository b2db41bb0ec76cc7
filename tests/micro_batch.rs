//! Micro-batches of `contactsync serve`: a contact created in GHL is welcomed within a minute
//! through the sandbox's signed webhooks, exactly once even when the nightly run sees it later; a
//! new contact duplicating an existing one is marked, not welcomed; and events the sandbox drops
//! are caught by the next nightly run, which ends where a clean run does.

mod common;

use common::Harness;
use common::effects::{effects, harness_with_triggers, options};
use contactsync::serve::spool::SpoolReader;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Turns micro-batches on (every second) with the sandbox's webhook key.
fn enable_serve(h: &Harness) {
    let pem = &h.sandbox.info.ghl_webhook_public_key_pem;
    let text = format!(
        "\n[serve]\nlisten = \"127.0.0.1:0\"\nbatch_interval_secs = 1\n\n[serve.ghl]\npublic_key_pem = \"\"\"\n{pem}\"\"\"\n"
    );
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&h.pipeline)
        .expect("pipeline file");
    file.write_all(text.as_bytes()).expect("append serve");
}

/// A running `contactsync serve`, killed when dropped.
struct Serve {
    child: Child,
    addr: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve` and registers its URL with the sandbox's GHL webhooks.
async fn start_serve(h: &Harness) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_contactsync"))
        .args(["serve", "--pipeline"])
        .arg(&h.pipeline)
        .env(
            "RUST_LOG",
            std::env::var("CONTACTSYNC_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("ready line");
        line
    })
    .await
    .expect("join");
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    let addr = ready["listen"].as_str().expect("listen").to_string();
    let response = h
        .http
        .post(format!(
            "{}/_sandbox/webhooks/ghl",
            h.sandbox.info.control_url
        ))
        .json(&json!({ "url": format!("http://{addr}/webhooks/ghl"), "retry_interval_ms": 50 }))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), 204);
    Serve { child, addr }
}

async fn create_contact(h: &Harness, fields: &Value) -> String {
    let mut body = fields.clone();
    body["locationId"] = json!(h.sandbox.info.ghl_location_id);
    let answer: Value = h
        .http
        .post(format!("{}/contacts/", h.sandbox.info.ghl_base_url))
        .bearer_auth(&h.sandbox.info.ghl_token)
        .header("Version", "2021-07-28")
        .json(&body)
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    answer["contact"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no contact in {answer}"))
        .to_string()
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Welcome texts sent to `phone` so far.
fn welcomes_to(state: &Value, phone: &str) -> usize {
    texts_to(state, phone, "welcome")
}

/// Waits (up to `limit`) until `check` on the sandbox's state holds.
async fn wait_for_state(h: &Harness, limit: Duration, check: impl Fn(&Value) -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check(&h.control("state").await) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Waits until the micro-batches consumed everything spooled so far (at least `events`).
async fn wait_consumed(h: &Harness, events: usize) {
    let reader = SpoolReader::new(&h.state_dir());
    let started = Instant::now();
    loop {
        let spooled = reader.read_from(0, usize::MAX).expect("spool").len();
        let committed = reader.committed("micro-batch").expect("offset") as usize;
        if spooled >= events && committed >= spooled {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "micro-batches consumed {committed} of {spooled} spooled events (want {events}) in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The reports of the micro-batches that ran, oldest first.
fn batch_reports(h: &Harness) -> Vec<Value> {
    let dir = h.state_dir().join("batches");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.sort();
    paths
        .iter()
        .filter_map(|p| std::fs::read(p.join("report.json")).ok())
        .map(|bytes| serde_json::from_slice(&bytes).expect("report JSON"))
        .collect()
}

fn total(reports: &[Value], key: &str) -> u64 {
    reports.iter().map(|r| r[key].as_u64().unwrap_or(0)).sum()
}

async fn nightly(h: &Harness) {
    let out = h.run(&["run", "--json"]).await;
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "run exited {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn baseline(seed: u64) -> Harness {
    let h = harness_with_triggers(options(seed, 30)).await;
    h.authorise().await;
    nightly(&h).await;
    h
}

#[tokio::test]
async fn a_created_contact_is_welcomed_within_a_minute_and_the_nightly_run_does_not_text_it_again()
{
    let h = baseline(231).await;
    enable_serve(&h);
    let serve = start_serve(&h).await;
    let phone = "+14155550187";
    let created = Instant::now();
    create_contact(
        &h,
        &json!({"firstName": "Wendy", "lastName": "Welcome", "email": "wendy.welcome@example.com", "phone": phone}),
    )
    .await;
    let welcomed =
        wait_for_state(&h, Duration::from_secs(60), |s| welcomes_to(s, phone) >= 1).await;
    assert!(
        welcomed,
        "no welcome text to {phone} within 60 s of its creation"
    );
    let latency = created.elapsed();
    wait_consumed(&h, 1).await;
    drop(serve);
    assert_eq!(welcomes_to(&h.control("state").await, phone), 1);
    let reports = batch_reports(&h);
    assert_eq!(total(&reports, "new_contacts"), 1, "{reports:?}");
    assert_eq!(
        reports
            .iter()
            .map(|r| r["apply"]["applied"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        1,
        "{reports:?}"
    );

    // The nightly run sees the contact as new too and plans the same welcome: the ledger has it
    // done under the same key, so nothing is sent again.
    nightly(&h).await;
    nightly(&h).await;
    assert_eq!(
        welcomes_to(&h.control("state").await, phone),
        1,
        "welcomed again by the nightly run (batch latency was {latency:?})"
    );
}

#[tokio::test]
async fn a_new_contact_duplicating_an_existing_one_is_marked_and_not_welcomed_again() {
    let h = baseline(232).await;
    let state = h.control("state").await;
    let contacts = state["ghl"]["contacts"].as_array().expect("contacts");
    let phones: Vec<String> = contacts
        .iter()
        .filter_map(|c| c["phone"].as_str().map(digits))
        .collect();
    // A contact with every field to match on, a number no one else has, welcomed by the baseline.
    let original = contacts
        .iter()
        .find(|c| {
            let phone = c["phone"].as_str().map(digits).unwrap_or_default();
            ["firstName", "lastName", "email", "phone"]
                .iter()
                .all(|k| c[*k].as_str().is_some_and(|v| !v.is_empty()))
                && phones.iter().filter(|p| **p == phone).count() == 1
                && welcomes_to(&state, &phone) == 1
        })
        .expect("a seeded contact with names, email and a unique phone, welcomed once");
    let phone = original["phone"].as_str().expect("phone").to_string();
    enable_serve(&h);
    let serve = start_serve(&h).await;
    let copy = create_contact(
        &h,
        &json!({
            "firstName": original["firstName"],
            "lastName": original["lastName"],
            "email": original["email"],
            "phone": phone,
        }),
    )
    .await;
    wait_consumed(&h, 1).await;
    let marked = wait_for_state(&h, Duration::from_secs(30), |s| {
        s["ghl"]["contacts"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["id"] == copy.as_str()
                    && c["tags"]
                        .as_array()
                        .is_some_and(|t| t.iter().any(|t| t == "contactsync:duplicate"))
            })
        })
    })
    .await;
    drop(serve);
    assert!(
        marked,
        "the copy {copy} of {} was not marked as a duplicate",
        original["id"]
    );
    let reports = batch_reports(&h);
    // The mark's tag write comes back as a webhook, and the next batch finds the copy marked.
    assert!(total(&reports, "duplicates") >= 1, "{reports:?}");
    assert_eq!(
        reports
            .iter()
            .map(|r| r["apply"]["applied"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        1,
        "one write in all (the mark), no welcome: {reports:?}"
    );
    assert_eq!(total(&reports, "left_to_nightly"), 0, "{reports:?}");
    assert_eq!(
        welcomes_to(&h.control("state").await, &phone),
        1,
        "the duplicate's number was welcomed again"
    );
    nightly(&h).await;
    assert_eq!(welcomes_to(&h.control("state").await, &phone), 1);
}

async fn set_webhook_drop(h: &Harness, drop: f64) {
    let mut profile = h.control("faults").await;
    profile["webhook_drop"] = json!(drop);
    let response = h
        .http
        .post(format!("{}/_sandbox/faults", h.sandbox.info.control_url))
        .json(&profile)
        .send()
        .await
        .expect("set faults");
    assert!(response.status().is_success(), "{}", response.status());
}

#[tokio::test]
async fn events_the_sandbox_drops_are_caught_by_the_next_nightly_run_which_ends_where_a_clean_run_does()
 {
    let seed = 233;
    let dropped = json!({"firstName": "Dora", "lastName": "Dropped", "email": "dora.dropped@example.com", "phone": "+14155550171"});
    let kept = json!({"firstName": "Kim", "lastName": "Kept", "email": "kim.kept@example.com", "phone": "+14155550172"});

    // The clean run: the same contacts created, the nightly run alone.
    let clean = baseline(seed).await;
    create_contact(&clean, &dropped).await;
    create_contact(&clean, &kept).await;
    nightly(&clean).await;
    let clean_effects = effects(&clean.control("state").await);

    let h = baseline(seed).await;
    enable_serve(&h);
    let serve = start_serve(&h).await;
    set_webhook_drop(&h, 1.0).await;
    create_contact(&h, &dropped).await;
    set_webhook_drop(&h, 0.0).await;
    create_contact(&h, &kept).await;
    let welcomed = wait_for_state(&h, Duration::from_secs(60), |s| {
        welcomes_to(s, "+14155550172") == 1
    })
    .await;
    assert!(
        welcomed,
        "the delivered ContactCreate was not welcomed by a micro-batch"
    );
    wait_consumed(&h, 1).await;
    drop(serve);
    assert_eq!(
        welcomes_to(&h.control("state").await, "+14155550171"),
        0,
        "the dropped event's contact was welcomed before any nightly run"
    );

    nightly(&h).await;
    let state = h.control("state").await;
    assert_eq!(welcomes_to(&state, "+14155550171"), 1);
    assert_eq!(welcomes_to(&state, "+14155550172"), 1);
    let got = effects(&state);
    let differences = common::effects::diff(&clean_effects, &got);
    assert!(
        differences.is_empty(),
        "micro-batches + nightly differ from the nightly alone:\n{}",
        differences.join("\n")
    );
}

const BULKSMS_TOKEN: &str = "bulksms-path-token-0123456789";

/// A seeded contact with a phone no other contact has and no DND, welcomed by the baseline.
fn lone_contact(state: &Value) -> Value {
    let contacts = state["ghl"]["contacts"].as_array().expect("contacts");
    let phones: Vec<String> = contacts
        .iter()
        .filter_map(|c| c["phone"].as_str().map(digits))
        .collect();
    contacts
        .iter()
        .find(|c| {
            let phone = c["phone"].as_str().map(digits).unwrap_or_default();
            !phone.is_empty()
                && phones.iter().filter(|p| **p == phone).count() == 1
                && c["dnd"] != true
                && welcomes_to(state, &phone) == 1
        })
        .expect("a seeded contact with a unique phone and no DND")
        .clone()
}

fn sms_dnd_on(state: &Value, id: &str) -> bool {
    state["ghl"]["contacts"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| {
            c["id"] == id
                && (c["dnd"] == true || c["dndSettings"]["SMS"]["status"] == "active")
                && c["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "sms:opted-out"))
        })
    })
}

#[tokio::test]
async fn a_stop_reply_through_the_bulksms_webhook_sets_dnd_once() {
    let h = baseline(234).await;
    let contact = lone_contact(&h.control("state").await);
    let id = contact["id"].as_str().expect("id").to_string();
    let phone = digits(contact["phone"].as_str().expect("phone"));
    enable_serve(&h);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&h.pipeline)
        .expect("pipeline file");
    writeln!(file, "\n[serve.bulksms]\npath_token = \"{BULKSMS_TOKEN}\"").expect("append");
    drop(file);
    let serve = start_serve(&h).await;
    let hook = format!("http://{}/webhooks/bulksms/{BULKSMS_TOKEN}", serve.addr);
    let created = h
        .http
        .post(format!("{}/webhooks", h.sandbox.info.bulksms_base_url))
        .basic_auth(
            &h.sandbox.info.bulksms_token_id,
            Some(&h.sandbox.info.bulksms_token_secret),
        )
        .json(&json!({"name": "replies", "url": hook, "triggerScope": "RECEIVED", "active": true, "invokeOption": "ONE"}))
        .send()
        .await
        .expect("create webhook");
    assert!(created.status().is_success(), "{}", created.status());
    let inbound = h
        .http
        .post(format!(
            "{}/_sandbox/bulksms/inbound",
            h.sandbox.info.control_url
        ))
        .json(&json!({"from": phone, "body": "STOP"}))
        .send()
        .await
        .expect("inbound");
    assert!(inbound.status().is_success());
    let dnd = wait_for_state(&h, Duration::from_secs(60), |s| sms_dnd_on(s, &id)).await;
    wait_consumed(&h, 1).await;
    drop(serve);
    assert!(
        dnd,
        "the STOP from +{phone} did not set SMS DND on {id} within 60 s"
    );
    let reports = batch_reports(&h);
    assert_eq!(total(&reports, "opt_outs"), 1, "{reports:?}");

    // The nightly run finds the DND and tag already there: its plan writes no second DND.
    // (Read from the run's plan file, so the check holds on every state backend.)
    let latest_run = || {
        contactsync::snapshot::run::latest_complete_extract(&h.state_dir())
            .expect("list runs")
            .expect("a finished extract")
            .0
    };
    let baseline_run = latest_run().id;
    nightly(&h).await;
    assert!(sms_dnd_on(&h.control("state").await, &id));
    let run = latest_run();
    assert_ne!(run.id, baseline_run, "the nightly run finished its extract");
    let plan = contactsync::load::plan_io::read_plan(&run.load_dir(), &run.id).expect("plan");
    let dnd_writes: Vec<_> = plan
        .operations
        .iter()
        .filter(|o| {
            matches!(&o.op, contactsync::load::plan::PlanOp::SetSmsDnd { contact_id, .. }
                if *contact_id == id)
        })
        .collect();
    assert!(
        dnd_writes.is_empty(),
        "the nightly run plans SMS DND of {id} again: {dnd_writes:?}"
    );
}

#[tokio::test]
async fn a_batch_skips_its_tick_while_the_state_lock_is_held_and_catches_up_after() {
    use fs2::FileExt;
    let h = baseline(235).await;
    enable_serve(&h);
    let serve = start_serve(&h).await;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(h.state_dir().join("lock"))
        .expect("lock file");
    lock.lock_exclusive()
        .expect("hold the state lock, as a nightly run does");
    let phone = "+14155550164";
    create_contact(
        &h,
        &json!({"firstName": "Lena", "lastName": "Locked", "email": "lena.locked@example.com", "phone": phone}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let reader = SpoolReader::new(&h.state_dir());
    assert_eq!(reader.read_from(0, usize::MAX).expect("spool").len(), 1);
    assert_eq!(reader.committed("micro-batch").expect("offset"), 0);
    assert_eq!(welcomes_to(&h.control("state").await, phone), 0);
    fs2::FileExt::unlock(&lock).expect("release");
    let welcomed =
        wait_for_state(&h, Duration::from_secs(30), |s| welcomes_to(s, phone) == 1).await;
    drop(serve);
    assert!(welcomed, "no welcome once the lock was released");
}

#[tokio::test]
async fn with_micro_batches_on_the_nightly_run_waits_for_a_batch_holding_the_lock() {
    use fs2::FileExt;
    let h = baseline(236).await;
    enable_serve(&h);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(h.state_dir().join("lock"))
        .expect("lock file");
    lock.lock_exclusive()
        .expect("hold the state lock, as a batch does");
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        drop(lock);
    });
    let started = Instant::now();
    let out = h.run(&["run", "--json"]).await;
    release.join().expect("release thread");
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "run exited {:?} instead of waiting for the lock: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
}

// Multi-threaded, as serve's runtime is: the batch's Parquet reads need it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_redone_after_its_offset_was_lost_finds_its_work_done_and_sends_nothing_twice() {
    use contactsync::pipeline::micro_batch::{BatchOutcome, CONSUMER, run_micro_batch};
    let h = baseline(237).await;
    enable_serve(&h);
    let serve = start_serve(&h).await;
    let phone = "+14155550153";
    create_contact(
        &h,
        &json!({"firstName": "Rhea", "lastName": "Redo", "email": "rhea.redo@example.com", "phone": phone}),
    )
    .await;
    let welcomed =
        wait_for_state(&h, Duration::from_secs(60), |s| welcomes_to(s, phone) == 1).await;
    assert!(welcomed, "no welcome within 60 s");
    wait_consumed(&h, 1).await;
    drop(serve);

    // As if serve was killed after the batch's load and before its offset was committed.
    let reader = SpoolReader::new(&h.state_dir());
    reader.commit(CONSUMER, 0).expect("rewind");
    let config = contactsync::config::PipelineConfig::load(&h.pipeline).expect("pipeline");
    let outcome = run_micro_batch(
        &config,
        std::sync::Arc::new(contactsync::clock::SystemClock),
    )
    .await
    .expect("batch");
    let BatchOutcome::Done(report) = outcome else {
        panic!("the rewound events were not taken again: {outcome:?}");
    };
    assert_eq!(report.new_contacts, 1, "{report:?}");
    assert!(report.already_done >= 1, "{report:?}");
    assert_eq!(report.apply.applied, 0, "{report:?}");
    assert_eq!(welcomes_to(&h.control("state").await, phone), 1);
    assert_eq!(reader.committed(CONSUMER).expect("offset"), 1);
}

/// Texts sent to `phone` whose body holds `needle`.
fn texts_to(state: &Value, phone: &str, needle: &str) -> usize {
    let want = digits(phone);
    state["bulksms"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| {
            m["type"] == "SENT"
                && digits(m["to"].as_str().unwrap_or("")).ends_with(&want)
                && m["body"].as_str().unwrap_or("").contains(needle)
        })
        .count()
}

async fn ghl_write(h: &Harness, method: reqwest::Method, path: &str, body: Value) {
    let info = &h.sandbox.info;
    let response = h
        .http
        .request(method, format!("{}{path}", info.ghl_base_url))
        .bearer_auth(&info.ghl_token)
        .header("Version", "2021-07-28")
        .json(&body)
        .send()
        .await
        .expect("GHL answers");
    assert!(
        response.status().is_success(),
        "{path}: {:?}",
        response.text().await
    );
}

#[tokio::test]
async fn a_tag_added_in_ghl_fires_its_reminder_within_a_minute_and_the_nightly_run_does_not_text_it_again()
 {
    let h = harness_with_triggers(options(236, 30)).await;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&h.pipeline)
        .expect("pipeline file");
    file.write_all(
        b"\n[[transform.triggers.reminder]]\ntag = \"call-back\"\ntemplate = \"Hi {first_name|there}, we will call you back today. Reply STOP to opt out.\"\n",
    )
    .expect("append reminder");
    drop(file);
    h.authorise().await;
    nightly(&h).await;
    let contact = lone_contact(&h.control("state").await);
    let id = contact["id"].as_str().expect("id").to_string();
    let phone = contact["phone"].as_str().expect("phone").to_string();
    enable_serve(&h);
    let serve = start_serve(&h).await;
    ghl_write(
        &h,
        reqwest::Method::POST,
        &format!("/contacts/{id}/tags"),
        json!({"tags": ["call-back"]}),
    )
    .await;
    let reminded = wait_for_state(&h, Duration::from_secs(60), |s| {
        texts_to(s, &phone, "call you back") >= 1
    })
    .await;
    assert!(reminded, "no reminder to {phone} within 60 s of its tag");
    wait_consumed(&h, 1).await;
    drop(serve);

    // Someone edits the contact before the night: its update time moves on. The nightly run sees
    // the tag as new since the same run the batch measured against, and finds the reminder done.
    ghl_write(
        &h,
        reqwest::Method::PUT,
        &format!("/contacts/{id}"),
        json!({"city": "Springfield"}),
    )
    .await;
    nightly(&h).await;
    nightly(&h).await;
    assert_eq!(
        texts_to(&h.control("state").await, &phone, "call you back"),
        1,
        "the reminder was sent again by the nightly run"
    );
}
