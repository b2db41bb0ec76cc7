//! The nightly pipeline end to end against the sandbox: rerun economy, dry runs, exactly-once
//! effects under faults and kill -9, opt-outs after planning, and the audit's outputs.

mod common;

use common::Harness;
use common::effects::{
    converge, count, diff, effects, harness_with_triggers, harness_with_triggers_on, ledger_rows,
    options, repeated, without_dates,
};
use common::postgres::StateBackend;
use contactsync::sandbox::faults::FaultProfile;
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

#[test]
fn dates_are_masked_in_message_bodies() {
    assert_eq!(
        without_dates("contactsync 2026-12-01: 120 contacts, café 😀"),
        "contactsync <date>: 120 contacts, café 😀"
    );
    assert_eq!(without_dates("call 2026-1-01"), "call 2026-1-01");
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

/// Issue 18, item 10: a merge changes the records it touches, and the changed records can match
/// others. On seed 2, run 1 fills the survivor "A. Koch" to "Ahmed Koch", which matches "Koch
/// Ahmed" at the same phone and office. Transform plays the following nights before planning, so
/// the second run finds nothing left to merge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_that_make_new_matches_are_planned_in_the_same_run() {
    second_run_plans_nothing(2).await;
}

/// Issue 18, item 10: weights are estimated on each night's table, so a borderline pair can cross
/// the threshold with nothing changed on either record. On seed 26 two Juana Hernandez of Fort
/// Worth score 0.896 on the first night and 0.901 on the second (the postcode's weight moves from
/// 3.91 to 3.98 bits as the first run's 40 created leads join the table). The pair keeps the first
/// night's decision: its records are unchanged and its score is within the margin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_s_creates_do_not_tip_a_borderline_pair_the_next_night() {
    let second = second_run_plans_nothing(26).await;
    assert!(count(&second, "held_decisions") >= 1, "{second}");
}

/// Two nightly runs on seeded contacts; returns the second's report.
async fn second_run_plans_nothing(seed: u64) -> Value {
    let h = harness_at_scale(seed, 2_000).await;
    let first = h.run_ok(&["run", "--json"]).await;
    assert!(count(&first, "planned.mark_duplicate") > 0, "{first}");
    let second = h.run_ok(&["run", "--json"]).await;
    assert_eq!(
        count(&second, "planned_operations"),
        0,
        "seed {seed}: the second run plans: {second}"
    );
    second
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
    let ledger_before = ledger_rows(&h.state_dir().join("ledger.sqlite"));
    let dry = h.run_ok(&["load", "--dry-run", "--json"]).await;
    // The dry run reports what it would do, and nothing as done.
    let planned: u64 = plan["counts"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_u64)
        .sum();
    let would: u64 = dry["counts"]
        .as_object()
        .expect("counts")
        .iter()
        .filter(|(k, _)| k.starts_with("planned."))
        .filter_map(|(_, v)| v.as_u64())
        .sum();
    assert_eq!(would, planned, "{dry}");
    for outcome in ["applied", "already_done", "failed", "skipped"] {
        assert!(dry["counts"].get(outcome).is_none(), "{outcome} in {dry}");
    }
    let stats = h.control("stats").await;
    assert_eq!(stats["writes"], 0, "{stats}");
    assert_eq!(
        stats["total_requests"], 0,
        "a dry run does not even read: {stats}"
    );
    assert_eq!(
        ledger_rows(&h.state_dir().join("ledger.sqlite")),
        ledger_before,
        "a dry run changes nothing in the ledger"
    );
    assert!(diff(&before, &effects(&h.control("state").await)).is_empty());
}

/// Under the hostile profile, nightly runs until one exits 0, then one more: every effect exactly
/// once, the state a clean run's, and the extra run plans nothing (issue 18, item 15: a partly
/// applied merge must not send later runs down another path to another final state).
/// The hostile runs keep their ledger and lock on `backend`.
async fn hostile_runs_converge_to_the_clean_state(
    seed: u64,
    contacts: usize,
    backend: StateBackend,
) {
    let clean = harness_with_triggers(options(seed, contacts)).await;
    clean.authorise().await;
    let expected = converge(&clean, 1).await;
    let hostile = harness_with_triggers_on(options(seed, contacts), backend).await;
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
    let twice = repeated(&initial, &expected, &got);
    assert!(twice.is_empty(), "seed {seed}: repeated: {twice:?}");
    let differences = diff(&expected, &got);
    assert!(
        differences.is_empty(),
        "seed {seed}: {} differences, e.g. {:?}",
        differences.len(),
        &differences[..differences.len().min(10)]
    );
    let stats = hostile.control("stats").await;
    assert!(stats["faults"].as_u64().unwrap_or(0) > 0, "{stats}");
    // One more night, faults off: nothing left to do.
    hostile
        .control_post("faults", serde_json::json!({"name": "none"}))
        .await;
    let extra = hostile.run_ok(&["run", "--json"]).await;
    assert_eq!(
        count(&extra, "planned_operations"),
        0,
        "seed {seed}: the run after convergence plans: {extra}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_faults_leave_every_effect_exactly_once() {
    hostile_runs_converge_to_the_clean_state(13, 150, StateBackend::from_env()).await;
}

/// The same with the ledger and lock in PostgreSQL (`[state] url`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_faults_leave_every_effect_exactly_once_on_postgres() {
    hostile_runs_converge_to_the_clean_state(13, 150, StateBackend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_faults_converge_on_another_seed_too() {
    hostile_runs_converge_to_the_clean_state(9, 250, StateBackend::from_env()).await;
}

/// One trial of issue 18, item 15 at scale: what a hostile night did, for the record.
#[derive(Debug, serde::Serialize)]
struct HostileTrial {
    seed: u64,
    contacts: usize,
    /// Exit codes of the hostile runs, the last one 0 when they converged.
    exit_codes: Vec<Option<i32>>,
    /// What runs that failed outright (neither 0 nor 3) printed last.
    failures: Vec<String>,
    differences: usize,
    difference_examples: Vec<String>,
    repeated: usize,
    /// Operations planned by one more run with faults off.
    planned_after: u64,
    seconds: f64,
}

/// A first night at thousands of contacts: every limit sized for it, so the clean run finishes in one.
const AT_SCALE: &str = "
[extract]
dnd_lookups_per_run = 1000000
history_lookups_per_run = 1000000

[load]
max_sends = 1000000
max_creates = 1000000
";

async fn harness_at_scale(seed: u64, contacts: usize) -> Harness {
    let h = harness_with_triggers(options(seed, contacts)).await;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&h.pipeline)
        .and_then(|mut f| f.write_all(AT_SCALE.as_bytes()))
        .expect("append to the pipeline");
    h.authorise().await;
    h
}

async fn hostile_trial(seed: u64, contacts: usize, max_runs: usize) -> HostileTrial {
    let started = std::time::Instant::now();
    let clean = harness_at_scale(seed, contacts).await;
    let expected = converge(&clean, 1).await;
    let hostile = harness_at_scale(seed, contacts).await;
    let initial = effects(&hostile.control("state").await);
    let profile = FaultProfile::from_arg("hostile").expect("profile");
    hostile
        .control_post(
            "faults",
            serde_json::to_value(&profile).expect("profile JSON"),
        )
        .await;
    let mut exit_codes = Vec::new();
    let mut failures = Vec::new();
    for _ in 0..max_runs {
        let out = hostile.run(&["run", "--json"]).await;
        let code = out.status.code();
        exit_codes.push(code);
        if !matches!(code, Some(0 | 3)) {
            let stderr = String::from_utf8_lossy(&out.stderr);
            failures.push(stderr.lines().last().unwrap_or_default().to_string());
        }
        if code == Some(0) {
            break;
        }
    }
    let got = effects(&hostile.control("state").await);
    let repeated = repeated(&initial, &expected, &got).len();
    let differences = diff(&expected, &got);
    hostile
        .control_post("faults", serde_json::json!({"name": "none"}))
        .await;
    let extra = hostile.run_ok(&["run", "--json"]).await;
    HostileTrial {
        seed,
        contacts,
        exit_codes,
        failures,
        differences: differences.len(),
        difference_examples: differences.into_iter().take(10).collect(),
        repeated,
        planned_after: count(&extra, "planned_operations"),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Issue 18, item 15 at the size it was reported at (`bench/hostile.sh`): trials of
/// `CONTACTSYNC_HOSTILE_CONTACTS` seeded contacts (default 5,000) under the full hostile profile,
/// `CONTACTSYNC_HOSTILE_TRIALS` seeds (default 3) side by side. Each trial's outcome goes to
/// `bench-output/hostile-convergence.json` before the checks, so a failure is on record too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "tens of minutes: run by bench/hostile.sh"]
async fn hostile_faults_converge_at_scale() {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .map(|v| {
                v.parse::<usize>()
                    .unwrap_or_else(|_| panic!("{name}={v:?}"))
            })
            .unwrap_or(default)
    };
    let contacts = env("CONTACTSYNC_HOSTILE_CONTACTS", 5_000);
    let trials = env("CONTACTSYNC_HOSTILE_TRIALS", 3) as u64;
    let mut running = tokio::task::JoinSet::new();
    for seed in 1..=trials {
        running.spawn(hostile_trial(seed, contacts, 10));
    }
    let mut outcomes = running.join_all().await;
    outcomes.sort_by_key(|t| t.seed);
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-output");
    std::fs::create_dir_all(&out).expect("bench-output");
    let record = serde_json::json!({
        "commit": std::env::var("CONTACTSYNC_COMMIT").unwrap_or_else(|_| "unknown".into()),
        "trials": outcomes,
    });
    std::fs::write(
        out.join("hostile-convergence.json"),
        serde_json::to_vec_pretty(&record).expect("JSON"),
    )
    .expect("write the result");
    for t in &outcomes {
        assert_eq!(t.exit_codes.last(), Some(&Some(0)), "{t:?}");
        assert!(t.failures.is_empty(), "{t:?}");
        assert_eq!(
            (t.differences, t.repeated, t.planned_after),
            (0, 0, 0),
            "{t:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_load_then_rerun_matches_a_clean_run() {
    const TRIALS: u64 = 20;
    let clean = harness_with_triggers(options(14, 120)).await;
    clean.authorise().await;
    clean.run_ok(&["extract", "--json"]).await;
    clean.run_ok(&["transform", "--json"]).await;
    clean.run_ok(&["plan", "--json"]).await;
    let started = std::time::Instant::now();
    clean.run_ok(&["load", "--json"]).await;
    let load_seconds = started.elapsed().as_secs_f64();
    let expected = effects(&clean.control("state").await);
    let mut killed_mid_load = 0;
    // Shrinks whenever a load ends before its kill (a busy machine changes how long loads take).
    let mut reach = 0.9;
    for trial in 0..TRIALS {
        let h = harness_with_triggers(options(14, 120)).await;
        h.authorise().await;
        let initial = effects(&h.control("state").await);
        h.run_ok(&["extract", "--json"]).await;
        h.run_ok(&["transform", "--json"]).await;
        h.run_ok(&["plan", "--json"]).await;
        // Kill points spread by golden-ratio steps over the clean load's length, times `reach`.
        let fraction = (trial as f64 * 0.618_034).fract();
        let delay = Duration::from_secs_f64(load_seconds * fraction * reach);
        let mut child = h.spawn_quiet(&["load", "--json"]);
        tokio::time::sleep(delay).await;
        if child.try_wait().expect("wait").is_none() {
            killed_mid_load += 1;
        } else {
            reach *= 0.8;
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
        let twice = repeated(&initial, &expected, &got);
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
