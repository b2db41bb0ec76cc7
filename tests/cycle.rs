//! Exactly-once over whole nightly cycles: whatever stops a run, and wherever, every effect it
//! planned is applied by a later run, none twice, and the services end as after clean nights.
//! Also the safety limits, which hold back what they must and never an opt-out.

mod common;

use common::Harness;
use common::effects::{
    TRIGGERS, converge, converge_as_an_operator, count, diff, effects, harness_with_triggers,
    harness_with_triggers_on, options, repeated,
};
use common::postgres::StateBackend;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

/// Sent messages whose body contains `needle`, by number (digits).
fn sent_to(state: &Value, needle: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in state["bulksms"]["messages"].as_array().expect("messages") {
        if m["type"] == "SENT" && m["body"].as_str().unwrap_or("").contains(needle) {
            let to: String = m["to"]
                .as_str()
                .unwrap_or("")
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            *out.entry(to).or_default() += 1;
        }
    }
    out
}

/// Counts in `after` above those in `before`: what was sent since.
fn sent_to_filtered(
    before: &BTreeMap<String, usize>,
    after: &BTreeMap<String, usize>,
) -> BTreeMap<String, usize> {
    after
        .iter()
        .filter_map(|(to, n)| {
            let new = n - before.get(to).copied().unwrap_or(0).min(*n);
            (new > 0).then(|| (to.clone(), new))
        })
        .collect()
}

/// Issue 18, item 4: a run stopped between its plan and its load (as `kill -9` at that point
/// leaves it) must not take its welcome texts with it: the next nightly runs send every one, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_after_its_plan_still_sends_every_welcome_once() {
    let clean = harness_with_triggers(options(21, 120)).await;
    clean.authorise().await;
    let expected = converge(&clean, 1).await;
    let welcomed = sent_to(&clean.control("state").await, "welcome");
    assert!(welcomed.len() > 10, "the clean run welcomes: {welcomed:?}");

    let h = harness_with_triggers(options(21, 120)).await;
    h.authorise().await;
    let initial = effects(&h.control("state").await);
    h.run_ok(&["extract", "--json"]).await;
    h.run_ok(&["transform", "--json"]).await;
    let plan = h.run_ok(&["plan", "--json"]).await;
    assert!(count(&plan, "send_sms") > 10, "{plan}");
    // The load never happens; two nightly runs follow.
    h.run_ok(&["run", "--json"]).await;
    h.run_ok(&["run", "--json"]).await;
    let got = effects(&h.control("state").await);
    assert!(repeated(&initial, &expected, &got).is_empty());
    assert_eq!(sent_to(&h.control("state").await, "welcome"), welcomed);
    let differences = diff(&expected, &got);
    assert!(differences.is_empty(), "{differences:?}");
}

/// The other side of item 4: a run stopped before its plan acted on nothing, so the next run
/// fires the events it saw (the previous run that counts is the last one whose plan was made).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_before_its_plan_leaves_its_events_to_the_next_run() {
    let clean = harness_with_triggers(options(22, 100)).await;
    clean.authorise().await;
    let expected = converge(&clean, 1).await;
    let welcomed = sent_to(&clean.control("state").await, "welcome");
    assert!(!welcomed.is_empty());

    let h = harness_with_triggers(options(22, 100)).await;
    h.authorise().await;
    h.run_ok(&["extract", "--json"]).await;
    h.run_ok(&["transform", "--json"]).await;
    h.run_ok(&["run", "--json"]).await;
    assert_eq!(sent_to(&h.control("state").await, "welcome"), welcomed);
    let differences = diff(&expected, &effects(&h.control("state").await));
    assert!(differences.is_empty(), "{differences:?}");
}

/// An opt-out is an event too: a run stopped between its plan and its load on the night a STOP
/// arrives leaves its opt-out tag, not only its DND write, to the next runs (kill point of trial 11
/// of the whole-cycle test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_after_its_plan_still_tags_the_night_s_opt_out() {
    const SEED: u64 = 23;
    const CONTACTS: usize = 50;
    let clean = two_day_harness(SEED, CONTACTS, StateBackend::from_env()).await;
    let (tagged, stopper) = day_targets(&clean).await;
    converge(&clean, 1).await;
    a_day_passes(&clean, &tagged, &stopper).await;
    converge(&clean, 1).await;
    let expected = effects(&clean.control("state").await);

    let h = two_day_harness(SEED, CONTACTS, StateBackend::from_env()).await;
    let initial = effects(&h.control("state").await);
    converge(&h, 1).await;
    a_day_passes(&h, &tagged, &stopper).await;
    h.run_ok(&["extract", "--json"]).await;
    h.run_ok(&["transform", "--json"]).await;
    let plan = h.run_ok(&["plan", "--json"]).await;
    assert!(count(&plan, "set_sms_dnd") > 0, "{plan}");
    assert!(count(&plan, "add_tags") > 0, "{plan}");
    // The load never happens; nightly runs follow.
    converge(&h, 3).await;
    let got = effects(&h.control("state").await);
    assert!(repeated(&initial, &expected, &got).is_empty());
    let differences = diff(&expected, &got);
    assert!(differences.is_empty(), "{differences:?}");
}

/// What a day brings between two nightly runs, the same in every trial: three contacts from a
/// web form, a reminder tag on one contact, a STOP from another, and a day of simulated time.
async fn a_day_passes(h: &Harness, tagged: &str, stopper_phone: &str) {
    let info = &h.sandbox.info;
    for (i, (first, last)) in [("Mara", "Quint"), ("Oskar", "Velde"), ("Ines", "Farrow")]
        .iter()
        .enumerate()
    {
        let response = h
            .http
            .post(format!("{}/contacts/", info.ghl_base_url))
            .bearer_auth(&info.ghl_token)
            .header("Version", "2021-07-28")
            .json(&json!({
                "locationId": info.ghl_location_id,
                "firstName": first,
                "lastName": last,
                "phone": format!("+1415555{:04}", 7100 + i),
                "email": format!("{}.{}@example.org", first.to_lowercase(), last.to_lowercase()),
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
    let response = h
        .http
        .post(format!("{}/contacts/{tagged}/tags", info.ghl_base_url))
        .bearer_auth(&info.ghl_token)
        .header("Version", "2021-07-28")
        .json(&json!({"tags": ["appointment-tomorrow"]}))
        .send()
        .await
        .expect("GHL answers");
    assert!(
        response.status().is_success(),
        "{:?}",
        response.text().await
    );
    h.control_post(
        "bulksms/inbound",
        json!({"from": stopper_phone.trim_start_matches('+'), "body": "STOP"}),
    )
    .await;
    h.http
        .post(format!(
            "{}/_sandbox/clock/advance?seconds=86400",
            info.control_url
        ))
        .send()
        .await
        .expect("clock advances");
}

/// Two seeded contacts with a US phone, no opt-out and no duplicate, the same for every sandbox
/// of a seed: the one the day tags and the one that replies STOP.
async fn day_targets(h: &Harness) -> (String, String) {
    let state = h.control("state").await;
    let mut records_of: BTreeMap<String, usize> = BTreeMap::new();
    let truth = h.control("truth").await;
    let person_of: BTreeMap<String, String> = truth
        .as_array()
        .expect("truth")
        .iter()
        .map(|t| {
            (
                t["id"].as_str().expect("id").to_string(),
                t["person"].to_string(),
            )
        })
        .collect();
    for person in person_of.values() {
        *records_of.entry(person.clone()).or_default() += 1;
    }
    let single = |id: &str| person_of.get(id).is_some_and(|p| records_of[p] == 1);
    let mut plain: Vec<(String, String)> = state["ghl"]["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .filter(|c| c["id"].as_str().is_some_and(single))
        .filter(|c| c["phone"].as_str().is_some_and(|p| p.starts_with("+1")))
        .filter(|c| c["dndSettings"]["SMS"]["status"].as_str() != Some("active"))
        .filter(|c| !c["dnd"].as_bool().unwrap_or(false))
        .map(|c| {
            (
                c["id"].as_str().expect("id").to_string(),
                c["phone"].as_str().expect("phone").to_string(),
            )
        })
        .collect();
    plain.sort();
    assert!(plain.len() >= 2, "two plain contacts in the seed");
    (plain[0].0.clone(), plain[1].1.clone())
}

/// Reminder texts on the day's tag, beside the welcome and digest of [`TRIGGERS`].
const REMINDER: &str = r#"
[[transform.triggers.reminder]]
tag = "appointment-tomorrow"
template = "Hi {first_name|there}, see you tomorrow. Reply STOP to opt out."
"#;

async fn two_day_harness(seed: u64, contacts: usize, backend: StateBackend) -> Harness {
    let h = harness_with_triggers_on(options(seed, contacts), backend).await;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&h.pipeline)
        .expect("pipeline file");
    file.write_all(REMINDER.as_bytes()).expect("append");
    h.authorise().await;
    h
}

/// Runs `run` and kills it with SIGKILL after `delay` (if it is still running then).
async fn run_killed_after(h: &Harness, delay: Duration) -> bool {
    let mut child = h.spawn_quiet(&["run", "--json"]);
    let started = Instant::now();
    while started.elapsed() < delay {
        if child.try_wait().expect("wait").is_some() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed = child.try_wait().expect("wait").is_none();
    child.kill().ok(); // SIGKILL on Unix
    child.wait().ok();
    killed
}

/// The whole-cycle crash test of issue 18: `kill -9` at points spread over a nightly `run`
/// (extract, transform, plan, load, audit) on either of two simulated days with triggers on,
/// then nightly runs until one exits 0. No effect lost, none repeated, and the final state is a
/// clean run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_anywhere_in_two_nightly_cycles_loses_and_repeats_nothing() {
    kill_9_anywhere_in_two_nightly_cycles(20, StateBackend::from_env()).await;
}

/// The same with the ledger and lock in PostgreSQL (`[state] url`), fewer trials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_anywhere_in_two_nightly_cycles_on_postgres_loses_and_repeats_nothing() {
    kill_9_anywhere_in_two_nightly_cycles(6, StateBackend::Postgres).await;
}

/// `trials` runs of two nights, each killed once, on `backend`; against a clean run on the
/// state directory (what the services end with does not depend on where the ledger is).
async fn kill_9_anywhere_in_two_nightly_cycles(trials: u64, backend: StateBackend) {
    const SEED: u64 = 23;
    const CONTACTS: usize = 50;
    let clean = two_day_harness(SEED, CONTACTS, StateBackend::Local).await;
    let (tagged, stopper) = day_targets(&clean).await;
    let mut day_seconds = [0.0f64; 2];
    for (day, seconds) in day_seconds.iter_mut().enumerate() {
        if day == 1 {
            a_day_passes(&clean, &tagged, &stopper).await;
        }
        let started = Instant::now();
        converge(&clean, 1).await;
        *seconds = started.elapsed().as_secs_f64();
    }
    let expected = effects(&clean.control("state").await);
    let reminded = sent_to(&clean.control("state").await, "see you tomorrow");
    assert_eq!(
        reminded.len(),
        1,
        "the clean second night sends the reminder"
    );

    let mut killed = 0;
    // Shrinks whenever a run ends before its kill: a busy machine makes runs slower or faster
    // than the clean one measured, and kills that miss test nothing.
    let mut reach = 0.9;
    for trial in 0..trials {
        let h = two_day_harness(SEED, CONTACTS, backend).await;
        let initial = effects(&h.control("state").await);
        let kill_day = (trial % 2) as usize;
        // Golden-ratio steps spread the kill points evenly over the run.
        let fraction = (trial as f64 * 0.618_034).fract();
        let delay = Duration::from_secs_f64(day_seconds[kill_day] * fraction * reach);
        for day in 0..2 {
            if day == 1 {
                a_day_passes(&h, &tagged, &stopper).await;
            }
            if day == kill_day {
                if run_killed_after(&h, delay).await {
                    killed += 1;
                } else {
                    reach *= 0.8;
                }
            }
            converge_as_an_operator(&h, 6).await;
        }
        let got = effects(&h.control("state").await);
        let twice = repeated(&initial, &expected, &got);
        assert!(
            twice.is_empty(),
            "trial {trial} (day {kill_day}, {delay:?}): repeated {twice:?}"
        );
        let differences = diff(&expected, &got);
        assert!(
            differences.is_empty(),
            "trial {trial} (killed on day {kill_day} after {delay:?}): {} differences, e.g. {:?}",
            differences.len(),
            &differences[..differences.len().min(10)]
        );
    }
    assert!(
        killed >= trials * 3 / 4,
        "only {killed} of {trials} kills landed while a run was going"
    );
}

/// Appends `text` to a harness's pipeline file.
fn append(h: &Harness, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&h.pipeline)
        .expect("pipeline file");
    file.write_all(text.as_bytes()).expect("append");
}

/// Issue 18, item 8: a plan over `max_sends` is refused (exit 5) but its opt-outs are still
/// written; once the limit is raised, the held texts go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_over_a_safety_limit_still_applies_its_opt_outs() {
    let h = Harness::start(options(24, 150)).await;
    append(&h, TRIGGERS);
    append(&h, "\n[load]\nmax_sends = 2\n");
    h.authorise().await;
    let texted_before = sent_to(&h.control("state").await, "");
    let out = h.run(&["run", "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = common::json_report(&["run", "--json"], &out);
    assert!(count(&report, "held") > 2, "{report}");
    let state = h.control("state").await;
    assert_eq!(sent_to(&state, ""), texted_before, "nothing is texted");
    let stats = h.control("stats").await;
    let requests = stats["requests"].as_object().expect("requests");
    let writes_of = |route: &str| -> u64 {
        requests
            .get(route)
            .and_then(Value::as_object)
            .map(|by_status| by_status.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0)
    };
    let opt_out_writes =
        writes_of("PUT /ghl/contacts/{contact_id}") + writes_of("POST /bulksms/v1/blocked-numbers");
    assert!(
        opt_out_writes > 0,
        "the seeded opt-outs are written despite the refusal: {stats}"
    );
    let refused = std::path::Path::new(report["run_dir"].as_str().expect("run_dir"))
        .join("load/refused.json");
    let refused: Value =
        serde_json::from_slice(&std::fs::read(&refused).expect("refused.json")).expect("JSON");
    assert_eq!(refused["limits"][0]["key"], "max_sends", "{refused}");

    // The operator raises the limit: the next run sends what was held, once.
    let text = std::fs::read_to_string(&h.pipeline)
        .expect("read")
        .replace("max_sends = 2", "max_sends = 1000");
    std::fs::write(&h.pipeline, text).expect("write");
    h.run_ok(&["run", "--json"]).await;
    let welcomes_before = sent_to_filtered(
        &texted_before,
        &sent_to(&h.control("state").await, "welcome"),
    );
    assert!(welcomes_before.len() > 2, "{welcomes_before:?}");
    assert!(
        welcomes_before.values().all(|n| *n == 1),
        "{welcomes_before:?}"
    );
}

/// Issue 19: a match model that merges strangers shows as a flood of duplicates, and `plan`
/// stops with exit 5 before anything is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_over_merges_stops_the_plan_before_any_write() {
    let h = Harness::start(options(25, 300)).await;
    let model = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/models/contacts.toml"),
    )
    .expect("default model")
    .replace("threshold = 0.9", "threshold = 0.000001")
    .replace("conflict_fields = [\"first_name\"]", "conflict_fields = []")
    .replace(
        "cluster_min_probability = 0.01",
        "cluster_min_probability = 0.0",
    );
    let model_path = h.dir.path().join("over-merging.toml");
    std::fs::write(&model_path, model).expect("write model");
    append(
        &h,
        &format!(
            "\n[transform]\nmodel = {:?}\n\n[load]\nmax_merges = 0.1\n",
            model_path.display().to_string()
        ),
    );
    h.authorise().await;
    h.run_ok(&["extract", "--json"]).await;
    h.run_ok(&["transform", "--json"]).await;
    h.control_post("stats/reset", Value::Null).await;
    let out = h.run(&["plan", "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = common::json_report(&["plan", "--json"], &out);
    assert!(
        report["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("max_merges")),
        "{report}"
    );
    assert_eq!(count(&report, "mark_duplicate"), 0, "{report}");
    assert_eq!(h.control("stats").await["writes"], 0);
}
