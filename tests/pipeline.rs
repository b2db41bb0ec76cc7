//! The nightly pipeline end to end against the sandbox: rerun economy, dry runs, exactly-once
//! effects under faults and kill -9, opt-outs after planning, and the audit's outputs.

mod common;

use common::Harness;
use contactsync::sandbox::SandboxOptions;
use contactsync::sandbox::faults::FaultProfile;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Welcome texts fire on this pipeline's first run, so loads have sends to get exactly once.
const TRIGGERS: &str = r#"
[transform.triggers]
fire_on_first_run = true
activity_notes = false

[transform.triggers.welcome]
template = "Hi {first_name|there}, welcome! Reply STOP to opt out."

[transform.triggers.digest]
to = "+14155550100"
template = "contactsync {date}: {contacts} contacts, {duplicate_clusters} duplicate clusters"
"#;

fn options(seed: u64, contacts: usize) -> SandboxOptions {
    SandboxOptions {
        seed,
        contacts,
        messages: contacts * 2,
        rate_limit: false,
        ..SandboxOptions::default()
    }
}

async fn harness_with_triggers(options: SandboxOptions) -> Harness {
    let h = Harness::start(options).await;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&h.pipeline)
        .expect("pipeline file");
    file.write_all(TRIGGERS.as_bytes())
        .expect("append triggers");
    h
}

/// What the two services hold, without the ids and times that differ between equivalent runs:
/// contacts by their fields and tags, notes by contact and body, sent messages, blocked numbers.
/// Counts are kept, so a duplicate contact or a second send shows up as a difference.
fn effects(state: &Value) -> BTreeMap<String, usize> {
    let mut out: BTreeMap<String, usize> = BTreeMap::new();
    let mut key_of: HashMap<String, String> = HashMap::new();
    for c in state["ghl"]["contacts"].as_array().expect("contacts") {
        let mut tags: Vec<String> = c["tags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|v| v.as_str().map(str::to_lowercase))
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        let key = format!(
            "{}|{}|{}|{}|{}|{}",
            c["firstName"], c["lastName"], c["email"], c["phone"], c["city"], c["country"]
        );
        key_of.insert(c["id"].as_str().unwrap_or("").to_string(), key.clone());
        let dnd = c["dnd"].as_bool().unwrap_or(false)
            || c["dndSettings"]["SMS"]["status"].as_str() == Some("active");
        *out.entry(format!("contact {key} tags={tags:?} dnd={dnd}"))
            .or_default() += 1;
    }
    for n in state["ghl"]["notes"].as_array().expect("notes") {
        let contact = key_of
            .get(n["contactId"].as_str().unwrap_or(""))
            .cloned()
            .unwrap_or_default();
        *out.entry(format!("note {contact} {}", n["body"]))
            .or_default() += 1;
    }
    for m in state["bulksms"]["messages"].as_array().expect("messages") {
        if m["type"] == "SENT" {
            let body = without_dates(m["body"].as_str().unwrap_or(""));
            *out.entry(format!("sms {} {body:?}", m["to"])).or_default() += 1;
        }
    }
    for b in state["bulksms"]["blocked_numbers"]
        .as_array()
        .expect("blocked numbers")
    {
        *out.entry(format!("blocked {}", b["phoneNumber"]))
            .or_default() += 1;
    }
    out
}

/// A message body with its ISO dates (`2026-12-01`) masked: the digest names the day it was
/// planned, and a clean run and a trial may be planned on either side of midnight.
fn without_dates(body: &str) -> String {
    let shape = |w: &[u8]| {
        w.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
    };
    let bytes = body.as_bytes();
    let mut out = String::with_capacity(body.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes.len() - i >= 10 && shape(&bytes[i..i + 10]) {
            out.push_str("<date>");
            i += 10;
        } else {
            let c = body[i..].chars().next().expect("inside the body");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

#[test]
fn dates_are_masked_in_message_bodies() {
    assert_eq!(
        without_dates("contactsync 2026-12-01: 120 contacts, café 😀"),
        "contactsync <date>: 120 contacts, café 😀"
    );
    assert_eq!(without_dates("call 2026-1-01"), "call 2026-1-01");
}

/// Effects that happened more than once since `initial` (the seeded state).
fn repeated<'a>(
    initial: &BTreeMap<String, usize>,
    effects: &'a BTreeMap<String, usize>,
) -> Vec<&'a String> {
    effects
        .iter()
        .filter(|(k, n)| **n > initial.get(*k).copied().unwrap_or(0) + 1)
        .map(|(k, _)| k)
        .collect()
}

fn diff(a: &BTreeMap<String, usize>, b: &BTreeMap<String, usize>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, n) in a {
        if b.get(k) != Some(n) {
            out.push(format!("{k}: {n} vs {:?}", b.get(k)));
        }
    }
    for (k, n) in b {
        if !a.contains_key(k) {
            out.push(format!("{k}: missing vs {n}"));
        }
    }
    out
}

fn count(report: &Value, key: &str) -> u64 {
    report["counts"][key].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_with_nothing_changed_writes_nothing() {
    let h = harness_with_triggers(options(11, 200)).await;
    h.authorise().await;
    let first = h.run_ok(&["run", "--json"]).await;
    assert!(count(&first, "applied") > 0, "{first}");
    assert!(
        count(&first, "messages_fired") > 0,
        "welcome texts fire: {first}"
    );
    let run_dir = std::path::PathBuf::from(first["run_dir"].as_str().expect("run_dir"));
    for file in [
        "audit/report.html",
        "audit/report.json",
        "audit/dnd_mismatches.csv",
        "metrics.prom",
    ] {
        assert!(run_dir.join(file).exists(), "{file} missing");
    }
    let metrics = std::fs::read_to_string(run_dir.join("metrics.prom")).expect("metrics");
    assert!(metrics.contains("contactsync_operations{pipeline=\"sandbox\",status=\"applied\"}"));

    h.control_post("stats/reset", Value::Null).await;
    let second = h.run_ok(&["run", "--json"]).await;
    assert_eq!(
        count(&second, "planned_operations"),
        0,
        "the second run plans nothing: {second}"
    );
    let stats = h.control("stats").await;
    assert_eq!(stats["writes"], 0, "the second run wrote: {stats}");
    // The audit compares the two runs.
    let report: Value = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(second["run_dir"].as_str().unwrap()).join("audit/report.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(report["trend"].as_array().unwrap().len(), 2);
    assert_eq!(report["against_run"], first["run_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_writes_nothing_at_all() {
    let h = harness_with_triggers(options(12, 120)).await;
    h.authorise().await;
    h.run_ok(&["extract", "--json"]).await;
    h.run_ok(&["transform", "--json"]).await;
    let plan = h.run_ok(&["plan", "--json"]).await;
    assert!(
        plan["counts"]
            .as_object()
            .unwrap()
            .values()
            .any(|v| v.as_u64() > Some(0)),
        "{plan}"
    );
    h.control_post("stats/reset", Value::Null).await;
    let before = effects(&h.control("state").await);
    let dry = h.run_ok(&["load", "--dry-run", "--json"]).await;
    assert!(count(&dry, "applied") == 0, "{dry}");
    let stats = h.control("stats").await;
    assert_eq!(stats["writes"], 0, "{stats}");
    assert_eq!(
        stats["total_requests"], 0,
        "a dry run does not even read: {stats}"
    );
    assert!(!h.state_dir().join("ledger.sqlite").exists());
    assert!(diff(&before, &effects(&h.control("state").await)).is_empty());
}

/// Runs the pipeline on a fresh sandbox until a run exits 0; returns the final effects.
async fn converge(h: &Harness, max_runs: usize) -> BTreeMap<String, usize> {
    for attempt in 0..max_runs {
        let out = h.run(&["run", "--json"]).await;
        match out.status.code() {
            Some(0) => return effects(&h.control("state").await),
            // Partial failure: the rest is retried by the next run, as the nightly job would.
            Some(3) => continue,
            other => panic!(
                "run {attempt} exited {other:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
    panic!("the pipeline did not converge in {max_runs} runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_faults_leave_every_effect_exactly_once() {
    let clean = harness_with_triggers(options(13, 150)).await;
    clean.authorise().await;
    let expected = converge(&clean, 1).await;
    let hostile = harness_with_triggers(options(13, 150)).await;
    hostile.authorise().await;
    let initial = effects(&hostile.control("state").await);
    let profile = FaultProfile {
        slow_ms: 20,
        retry_after_secs: 1,
        ..FaultProfile::from_arg("hostile").expect("profile")
    };
    hostile
        .control_post(
            "faults",
            serde_json::to_value(&profile).expect("profile JSON"),
        )
        .await;
    let got = converge(&hostile, 6).await;
    let twice = repeated(&initial, &got);
    assert!(twice.is_empty(), "repeated: {twice:?}");
    let differences = diff(&expected, &got);
    assert!(
        differences.is_empty(),
        "{} differences, e.g. {:?}",
        differences.len(),
        &differences[..differences.len().min(10)]
    );
    let stats = hostile.control("stats").await;
    assert!(stats["faults"].as_u64().unwrap_or(0) > 0, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_load_then_rerun_matches_a_clean_run() {
    const TRIALS: u64 = 20;
    let clean = harness_with_triggers(options(14, 120)).await;
    clean.authorise().await;
    let expected = converge(&clean, 1).await;
    let mut killed_mid_load = 0;
    for trial in 0..TRIALS {
        let h = harness_with_triggers(options(14, 120)).await;
        h.authorise().await;
        let initial = effects(&h.control("state").await);
        h.run_ok(&["extract", "--json"]).await;
        h.run_ok(&["transform", "--json"]).await;
        h.run_ok(&["plan", "--json"]).await;
        // Kill points spread over the load: from before the first write to near its end.
        let delay = Duration::from_millis(150 + (trial * 7919) % 1200);
        let mut child = Command::new(env!("CARGO_BIN_EXE_contactsync"))
            .args(["load", "--json", "--pipeline"])
            .arg(&h.pipeline)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("load starts");
        tokio::time::sleep(delay).await;
        if child.try_wait().expect("wait").is_none() {
            killed_mid_load += 1;
        }
        child.kill().ok(); // SIGKILL on Unix
        child.wait().ok();
        let rerun = h.run(&["load", "--json"]).await;
        assert!(
            rerun.status.success(),
            "trial {trial}: rerun exited {:?}: {}",
            rerun.status.code(),
            String::from_utf8_lossy(&rerun.stderr)
        );
        let got = effects(&h.control("state").await);
        let twice = repeated(&initial, &got);
        assert!(twice.is_empty(), "trial {trial}: repeated {twice:?}");
        let differences = diff(&expected, &got);
        assert!(
            differences.is_empty(),
            "trial {trial} (killed after {delay:?}): {} differences, e.g. {:?}",
            differences.len(),
            &differences[..differences.len().min(10)]
        );
    }
    assert!(
        killed_mid_load >= TRIALS / 2,
        "only {killed_mid_load} of {TRIALS} kills landed during a load"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_that_opts_out_after_planning_gets_no_sms() {
    let h = harness_with_triggers(options(15, 120)).await;
    h.authorise().await;
    h.run_ok(&["extract", "--json"]).await;
    h.run_ok(&["transform", "--json"]).await;
    h.run_ok(&["plan", "--json"]).await;
    // Two planned welcome texts; their numbers opt out after the plan was written.
    let run = contactsync::snapshot::run::latest_complete_extract(&h.state_dir())
        .unwrap()
        .unwrap()
        .0;
    let plan = contactsync::load::plan_io::read_plan(&run.load_dir(), &run.id).unwrap();
    let sends: Vec<(String, Option<String>)> = plan
        .operations
        .iter()
        .filter_map(|o| match &o.op {
            contactsync::load::plan::PlanOp::SendSms {
                to,
                contact_id,
                trigger,
                ..
            } if trigger == "welcome" => Some((to.clone(), contact_id.clone())),
            _ => None,
        })
        .collect();
    assert!(sends.len() >= 2, "the plan has welcome texts");
    let (stop_number, _) = &sends[0];
    h.control_post(
        "bulksms/inbound",
        serde_json::json!({"from": stop_number.trim_start_matches('+'), "body": "STOP"}),
    )
    .await;
    let (dnd_number, dnd_contact) = &sends[1];
    let dnd_contact = dnd_contact
        .as_deref()
        .expect("welcome texts name their contact");
    let info = &h.sandbox.info;
    let response = h
        .http
        .put(format!("{}/contacts/{dnd_contact}", info.ghl_base_url))
        .bearer_auth(&info.ghl_token)
        .header("Version", "2021-07-28")
        .json(&serde_json::json!({"dndSettings": {"SMS": {"status": "active", "message": "asked by phone", "code": ""}}}))
        .send()
        .await
        .expect("GHL answers");
    assert!(
        response.status().is_success(),
        "{:?}",
        response.text().await
    );

    let load = h.run(&["load", "--json"]).await;
    let report: Value = serde_json::from_slice(
        load.stdout
            .split(|b| *b == b'\n')
            .rfind(|l| !l.is_empty())
            .unwrap(),
    )
    .unwrap();
    assert!(count(&report, "skipped") >= 2, "{report}");
    let state = h.control("state").await;
    let digits = |n: &str| n.chars().filter(char::is_ascii_digit).collect::<String>();
    for number in [stop_number, dnd_number] {
        let sent = state["bulksms"]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| {
                m["type"] == "SENT" && digits(m["to"].as_str().unwrap_or("")) == digits(number)
            })
            .filter(|m| m["body"].as_str().unwrap_or("").contains("welcome"))
            .count();
        assert_eq!(sent, 0, "{number} opted out after planning but was texted");
    }
}

/// Creates three unrelated contacts through the GHL API with SMS DND set at sign-up.
async fn sign_up_with_sms_dnd(h: &Harness, numbers: &[&str]) {
    let info = &h.sandbox.info;
    const NAMES: [(&str, &str); 3] = [
        ("Ingrid", "Valdez"),
        ("Kofi", "Brennan"),
        ("Yuki", "Okonkwo"),
    ];
    for (number, (first, last)) in numbers.iter().zip(NAMES) {
        let response = h
            .http
            .post(format!("{}/contacts/", info.ghl_base_url))
            .bearer_auth(&info.ghl_token)
            .header("Version", "2021-07-28")
            .json(&serde_json::json!({
                "locationId": info.ghl_location_id,
                "firstName": first,
                "lastName": last,
                "phone": number,
                "dndSettings": {"SMS": {"status": "active", "message": "ticked at sign-up", "code": ""}},
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
}

fn welcomes_to(state: &Value, number: &str) -> usize {
    let digits = |n: &str| n.chars().filter(char::is_ascii_digit).collect::<String>();
    state["bulksms"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["type"] == "SENT" && digits(m["to"].as_str().unwrap_or("")) == digits(number))
        .filter(|m| m["body"].as_str().unwrap_or("").contains("welcome"))
        .count()
}

fn planned_sends_to(h: &Harness, numbers: &[&str]) -> usize {
    let run = contactsync::snapshot::run::latest_complete_extract(&h.state_dir())
        .unwrap()
        .unwrap()
        .0;
    let plan = contactsync::load::plan_io::read_plan(&run.load_dir(), &run.id).unwrap();
    plan.operations
        .iter()
        .filter(|o| matches!(&o.op, contactsync::load::plan::PlanOp::SendSms { to, .. } if numbers.contains(&to.as_str())))
        .count()
}

/// Search and the duplicate search answer without DND (as GHL's do): DND set at sign-up must still
/// stop the welcome text, whether extract learned it (default) or not (no lookups: load's
/// pre-send check reads it with GET /contacts/{id}).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_dnd_set_at_sign_up_stops_the_welcome_even_though_search_omits_it() {
    const NUMBERS: [&str; 3] = ["+12025550181", "+13125550247", "+16175550392"];
    for lookups in [None, Some(0)] {
        let h = harness_with_triggers(options(16, 60)).await;
        if let Some(n) = lookups {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&h.pipeline)
                .expect("pipeline file");
            write!(file, "\n[extract]\ndnd_lookups_per_run = {n}\n").expect("append");
        }
        h.authorise().await;
        sign_up_with_sms_dnd(&h, &NUMBERS).await;
        h.run_ok(&["extract", "--json"]).await;
        h.run_ok(&["transform", "--json"]).await;
        h.run_ok(&["plan", "--json"]).await;
        let planned = planned_sends_to(&h, &NUMBERS);
        match lookups {
            // Extract read their DND: no text is even planned.
            None => assert_eq!(planned, 0, "DND contacts got welcome texts planned"),
            // Unknown to the snapshot: planned, and load must hold them back.
            Some(_) => assert_eq!(planned, 3, "the welcomes are planned without DND known"),
        }
        let load = h.run(&["load", "--json"]).await;
        assert!(
            load.status.success(),
            "load failed: {}",
            String::from_utf8_lossy(&load.stderr)
        );
        let state = h.control("state").await;
        for number in NUMBERS {
            assert_eq!(
                welcomes_to(&state, number),
                0,
                "{number} had SMS DND from sign-up but was welcomed (lookups {lookups:?})"
            );
        }
    }
}

/// A planned create whose phone a contact took in GHL after the plan was made: upsert matches that
/// contact, and its tags must survive (upsert's `tags` would replace them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_matches_an_existing_contact_keeps_its_tags() {
    let h = Harness::start(options(15, 120)).await;
    h.authorise().await;
    h.run_ok(&["extract", "--json"]).await;
    h.run_ok(&["transform", "--json"]).await;
    h.run_ok(&["plan", "--json"]).await;
    let run = contactsync::snapshot::run::latest_complete_extract(&h.state_dir())
        .unwrap()
        .unwrap()
        .0;
    let plan = contactsync::load::plan_io::read_plan(&run.load_dir(), &run.id).unwrap();
    let (phone, planned_tags) = plan
        .operations
        .iter()
        .find_map(|o| match &o.op {
            contactsync::load::plan::PlanOp::CreateContact { fields } => Some((
                fields.get("phone")?.as_str()?.to_string(),
                fields.get("tags")?.clone(),
            )),
            _ => None,
        })
        .expect("the plan creates a contact with a phone and tags");
    let info = &h.sandbox.info;
    let response = h
        .http
        .post(format!("{}/contacts/", info.ghl_base_url))
        .bearer_auth(&info.ghl_token)
        .header("Version", "2021-07-28")
        .json(&serde_json::json!({
            "locationId": info.ghl_location_id, "firstName": "Already", "lastName": "Here",
            "phone": phone, "tags": ["vip"],
        }))
        .send()
        .await
        .expect("GHL answers");
    assert!(response.status().is_success());
    let load = h.run(&["load", "--json"]).await;
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let state = h.control("state").await;
    let digits = |n: &str| n.chars().filter(char::is_ascii_digit).collect::<String>();
    let holders: Vec<&Value> = state["ghl"]["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| digits(c["phone"].as_str().unwrap_or("")) == digits(&phone))
        .collect();
    assert_eq!(
        holders.len(),
        1,
        "upsert made a second contact: {holders:?}"
    );
    let tags = holders[0]["tags"].as_array().expect("tags");
    assert!(
        tags.contains(&Value::from("vip")),
        "the existing contact lost its tag: {tags:?}"
    );
    for tag in planned_tags.as_array().expect("planned tags") {
        assert!(tags.contains(tag), "planned tag {tag} missing: {tags:?}");
    }
}

/// Everything a run leaves in the state folder (ledger, tokens, snapshots, reports) is the
/// owner's only: folders 0700, files 0600, whatever the umask it was started with.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_folder_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let h = harness_with_triggers(options(17, 40)).await;
    h.authorise().await;
    h.run_ok(&["run", "--json"]).await;
    let mut open = Vec::new();
    let mut seen = 0;
    let mut pending = vec![h.state_dir()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::metadata(&path).expect("metadata");
        seen += 1;
        if meta.permissions().mode() & 0o077 != 0 {
            open.push(format!(
                "{:o} {}",
                meta.permissions().mode() & 0o777,
                path.display()
            ));
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read_dir") {
                pending.push(entry.expect("entry").path());
            }
        }
    }
    assert!(seen > 10, "a run leaves files: {seen}");
    assert!(
        h.state_dir().join("ledger.sqlite").exists(),
        "the ledger is checked too"
    );
    assert!(open.is_empty(), "readable by others: {open:#?}");
}
