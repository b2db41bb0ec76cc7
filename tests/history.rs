//! Tasks, notes and appointments in the snapshot: of the contacts loads touched, of changed
//! contacts with `history_for_changed`, capped per run with the rest owed to the next, across a
//! `kill -9`, and the open tasks the audit lists.

mod common;
mod contract;

use common::{Harness, column_strings, unique_ids};
use contactsync::sandbox::SandboxOptions;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

const SPEC: &str = "../shared/api/ghl/spec/contacts.json";

fn options(seed: u64, contacts: usize) -> SandboxOptions {
    SandboxOptions {
        seed,
        contacts,
        messages: contacts * 2,
        rate_limit: false,
        ..SandboxOptions::default()
    }
}

/// A sandbox, a pipeline file with `extra` appended, and an authorised grant.
async fn harness(options: SandboxOptions, extra: &str) -> Harness {
    let h = Harness::start(options).await;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&h.pipeline)
        .expect("pipeline file")
        .write_all(extra.as_bytes())
        .expect("append to the pipeline");
    h.authorise().await;
    h
}

/// A GHL API call with the sandbox's private token.
async fn ghl(h: &Harness, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = h
        .http
        .request(method, format!("{}{path}", h.sandbox.info.ghl_base_url))
        .bearer_auth(&h.sandbox.info.ghl_token)
        .header("Version", "2021-07-28");
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn run_dir(report: &Value) -> PathBuf {
    PathBuf::from(report["run_dir"].as_str().expect("run_dir in report"))
}

fn ids_of(rows: &Value, key: &str) -> BTreeSet<String> {
    rows[key]
        .as_array()
        .unwrap_or_else(|| panic!("no `{key}` array in {rows}"))
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect()
}

/// What the sandbox holds for `contacts`, read through the API: (tasks, notes, appointments) ids.
async fn sandbox_history(
    h: &Harness,
    contacts: impl IntoIterator<Item = &String>,
) -> [BTreeSet<String>; 3] {
    let mut out: [BTreeSet<String>; 3] = Default::default();
    for id in contacts {
        for (i, (what, key)) in [
            ("tasks", "tasks"),
            ("notes", "notes"),
            ("appointments", "events"),
        ]
        .into_iter()
        .enumerate()
        {
            let (status, rows) = ghl(h, Method::GET, &format!("/contacts/{id}/{what}"), None).await;
            assert_eq!(status, 200, "GET /contacts/{id}/{what}: {rows}");
            out[i].extend(ids_of(&rows, key));
        }
    }
    out
}

/// The (tasks, notes, appointments) ids of a run's snapshot, asserting none repeats.
fn snapshot_history(run: &Path) -> [BTreeSet<String>; 3] {
    ["tasks", "notes", "appointments"]
        .map(|entity| unique_ids(&run.join(format!("extract/ghl/{entity}.parquet")), "id"))
}

/// Every contact id of the sandbox.
async fn all_contacts(h: &Harness) -> Vec<String> {
    common::state_ids(&h.control("state").await, "ghl", "contacts", "id")
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_answers_history_reads_as_the_spec_says() {
    let spec = contract::Spec::load_json(SPEC);
    let h = harness(options(11, 200), "").await;
    let contacts = all_contacts(&h).await;
    let mut checked = BTreeMap::new();
    for id in &contacts {
        for (what, key) in [
            ("tasks", "tasks"),
            ("notes", "notes"),
            ("appointments", "events"),
        ] {
            let path = format!("/contacts/{{contactId}}/{what}");
            let (status, answer) =
                ghl(&h, Method::GET, &format!("/contacts/{id}/{what}"), None).await;
            assert_eq!(status, 200);
            let schema = spec.response_schema(&path, "get", "200");
            let errors = spec.type_errors(&answer, schema, &path);
            assert!(errors.is_empty(), "{errors:#?}");
            let items = &spec.property(schema, key)["items"];
            for item in answer[key].as_array().expect("list") {
                // Notes' title, color and pinned are not emulated (see tests/sandbox_ghl.rs).
                let missing: Vec<String> = spec
                    .missing(item, items)
                    .into_iter()
                    .filter(|m| {
                        !["title", "color", "pinned"].contains(&m.as_str()) || what != "notes"
                    })
                    .collect();
                assert!(
                    missing.is_empty(),
                    "GET {path} item lacks {missing:?}: {item}"
                );
                *checked.entry(what).or_insert(0) += 1;
            }
            if what == "appointments" {
                for event in answer[key].as_array().expect("events") {
                    // The spec writes event times as "2021-07-16 11:00:00".
                    for field in ["startTime", "endTime", "dateAdded", "dateUpdated"] {
                        let text = event[field].as_str().expect("time is text");
                        assert!(
                            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
                                .is_ok(),
                            "{field} {text:?} is not written as the spec's examples are"
                        );
                    }
                }
            }
        }
    }
    for what in ["tasks", "notes", "appointments"] {
        assert!(
            checked.get(what).copied().unwrap_or(0) > 0,
            "no {what} seen: {checked:?}"
        );
    }
    // An unknown contact answers 400, as the API does.
    let (status, _) = ghl(&h, Method::GET, "/contacts/nope/tasks", None).await;
    assert_eq!(status, 400);
}

/// Welcome texts and notes of message activity on the first run: its load creates notes.
const TRIGGERS: &str = r#"
[transform.triggers]
fire_on_first_run = true
activity_notes = true

[transform.triggers.welcome]
template = "Hi {first_name|there}, welcome! Reply STOP to opt out."
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_of_contacts_a_load_touched_is_in_the_next_snapshot() {
    let h = harness(options(21, 300), TRIGGERS).await;
    let first = h.run_ok(&["run", "--json"]).await;
    let first_run = run_dir(&first);
    // Nothing was touched before the first extract: the files are there, empty, in the manifest.
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(first_run.join("extract/manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    for entity in ["ghl/tasks", "ghl/notes", "ghl/appointments"] {
        assert_eq!(
            manifest["entities"][entity]["rows"], 0,
            "{entity}: {manifest}"
        );
        let file = first_run.join(format!("extract/{entity}.parquet"));
        assert!(column_strings(&file, "contact_id").is_empty());
    }
    assert_eq!(manifest["history"]["contacts_read"], 0);

    // The contacts the first load wrote on (its notes among them); a created contact is known by
    // the id its answer returned.
    let ledger = rusqlite::Connection::open(h.state_dir().join("ledger.sqlite")).expect("ledger");
    let written = |sql: &str| -> BTreeSet<String> {
        ledger
            .prepare(sql)
            .expect("query")
            .query_map([], |r| r.get::<_, String>(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("row")
    };
    let noted = written(
        "SELECT target FROM operations WHERE kind = 'create_note' AND status = 'succeeded'",
    );
    assert!(!noted.is_empty(), "the first load created no notes");
    let mut touched = written(
        "SELECT target FROM operations WHERE status = 'succeeded'
         AND kind NOT IN ('send_sms', 'block_numbers', 'create_contact')",
    );
    touched.extend(written(
        "SELECT json_extract(result, '$.id') FROM operations
         WHERE status = 'succeeded' AND kind = 'create_contact'",
    ));
    assert!(noted.is_subset(&touched));

    let second = h.run_ok(&["extract", "--json"]).await;
    let run = run_dir(&second);
    assert_eq!(
        second["counts"]["history.contacts_read"]
            .as_u64()
            .expect("count"),
        touched.len() as u64,
        "{second}"
    );
    let snapshot = snapshot_history(&run);
    let sandbox = sandbox_history(&h, &touched).await;
    for (i, entity) in ["tasks", "notes", "appointments"].iter().enumerate() {
        let in_snapshot: BTreeSet<String> = column_strings(
            &run.join(format!("extract/ghl/{entity}.parquet")),
            "contact_id",
        )
        .into_iter()
        .flatten()
        .collect();
        assert!(
            in_snapshot.is_subset(&touched),
            "{entity} of untouched contacts were read"
        );
        assert_eq!(snapshot[i], sandbox[i], "{entity} of the touched contacts");
    }
    // The pipeline's notes themselves are there (their bodies carry the operation's marker).
    let bodies = column_strings(&run.join("extract/ghl/notes.parquet"), "body");
    assert!(
        bodies
            .iter()
            .flatten()
            .any(|b| b.contains("Replied") || b.contains("SMS")),
        "no note the pipeline wrote is in the snapshot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_for_changed_reads_changed_contacts_and_only_those() {
    let h = harness(
        options(31, 250),
        "\n[extract]\nhistory_for_changed = true\noverlap_minutes = 0\n",
    )
    .await;
    let full = h.run_ok(&["extract", "--json"]).await;
    let contacts = all_contacts(&h).await;
    // A full extract with history_for_changed reads every contact's history.
    assert_eq!(
        snapshot_history(&run_dir(&full)),
        sandbox_history(&h, &contacts).await
    );

    // A note on a contact that then changes, and one on a contact that does not (the two updated
    // longest ago: the newest one is read again, as the cursor's own instant is).
    let state = h.control("state").await;
    let mut by_updated: Vec<(String, String)> = state["ghl"]["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(|c| {
            (
                c["dateUpdated"].as_str().expect("dateUpdated").to_string(),
                c["id"].as_str().expect("id").to_string(),
            )
        })
        .collect();
    by_updated.sort();
    let (changed, unchanged) = (&by_updated[0].1, &by_updated[1].1);
    for id in [changed, unchanged] {
        let (status, _) = ghl(
            &h,
            Method::POST,
            &format!("/contacts/{id}/notes"),
            Some(json!({"body": format!("note on {id}")})),
        )
        .await;
        assert_eq!(status, 201);
    }
    let (status, answer) = ghl(
        &h,
        Method::PUT,
        &format!("/contacts/{changed}"),
        Some(json!({"city": "Somewhere New"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let incremental = h.run_ok(&["extract", "--json"]).await;
    assert_eq!(
        incremental["counts"]["history.contacts_read"],
        incremental["counts"]["ghl/contacts.delta_rows"],
        "history is read for exactly the contacts the incremental extract saw: {incremental}"
    );
    let notes = column_strings(
        &run_dir(&incremental).join("extract/ghl/notes.parquet"),
        "body",
    );
    let has = |text: &str| notes.iter().flatten().any(|b| b == text);
    assert!(
        has(&format!("note on {changed}")),
        "the changed contact's new note was not read"
    );
    assert!(
        !has(&format!("note on {unchanged}")),
        "an unchanged, untouched contact's history was read again"
    );
    // What was read before is carried over: only the changed contact's history was replaced.
    let [tasks, _, appointments] = snapshot_history(&run_dir(&incremental));
    let [all_tasks, _, all_appointments] = sandbox_history(&h, &contacts).await;
    assert_eq!(tasks, all_tasks);
    assert_eq!(appointments, all_appointments);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_defers_the_rest_to_the_next_runs() {
    let h = harness(
        options(41, 250),
        "\n[extract]\nhistory_for_changed = true\nhistory_lookups_per_run = 100\noverlap_minutes = 0\n",
    )
    .await;
    let contacts = all_contacts(&h).await;
    assert_eq!(contacts.len(), 250);
    let mut left = Vec::new();
    let mut last = Value::Null;
    // Two runs at the cap, then the rest. A busy machine has seen a third extract find 100
    // contacts changed again (cause not yet found): those are read again, and the pending list
    // still drains within a run or two more.
    for _ in 0..5 {
        last = h.run_ok(&["extract", "--json"]).await;
        left.push((
            last["counts"]["history.contacts_read"]
                .as_u64()
                .expect("read"),
            last["counts"]["history.contacts_left"]
                .as_u64()
                .expect("left"),
        ));
        if left.len() >= 3 && left.last().is_some_and(|(_, l)| *l == 0) {
            break;
        }
    }
    assert_eq!(left[..2], [(100, 150), (100, 50)]);
    assert!(
        left.iter().all(|(read, _)| *read <= 100),
        "a run read over its cap: {left:?}"
    );
    assert_eq!(left.last().map(|(_, l)| *l), Some(0), "{left:?}");
    let pending = std::fs::read_to_string(run_dir(&last).join("extract/ghl/history_pending.txt"))
        .expect("pending file");
    assert!(pending.trim().is_empty(), "{pending}");
    // After three runs the snapshot holds every contact's history, each row once.
    assert_eq!(
        snapshot_history(&run_dir(&last)),
        sandbox_history(&h, &contacts).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_minus_nine_mid_history_then_rerun_gives_the_same_rows() {
    let h = harness(
        options(51, 400),
        "\n[extract]\nhistory_for_changed = true\n",
    )
    .await;
    let contacts = all_contacts(&h).await;
    let expected = sandbox_history(&h, &contacts).await;
    h.control_post("faults", json!({"slow": 1.0, "slow_ms": 30}))
        .await;
    let mut child = h.spawn_quiet(&["extract", "--json"]);
    // Kill once history parts are committed for some contacts but not all.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let checkpoint = h
            .extract_checkpoint()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok());
        let tasks_covered = checkpoint
            .as_ref()
            .and_then(|c| c["entities"]["ghl/tasks"]["resume_from"].as_u64())
            .unwrap_or(0);
        if tasks_covered >= 50 {
            break;
        }
        assert!(
            child.try_wait().expect("poll child").is_none(),
            "extract finished before it could be killed: slow the sandbox down further"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no history committed within 120 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    h.control_post("faults", json!({"name": "none"})).await;
    let report = h.run_ok(&["extract", "--json"]).await;
    let runs = std::fs::read_dir(h.state_dir().join("runs"))
        .expect("runs")
        .count();
    assert_eq!(
        runs, 1,
        "the rerun started over instead of resuming the killed run"
    );
    assert_eq!(report["counts"]["history.contacts_read"], 400);
    assert_eq!(snapshot_history(&run_dir(&report)), expected);
}

/// A contact whose notes keep failing after every retry does not fail the run: it is owed to the
/// next run (first in the pending list), its rows of the previous snapshot are kept, and the run
/// exits 3. Contact after contact failing means GHL is down: the run stops with exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_whose_history_keeps_failing_is_owed_to_the_next_run() {
    let h = harness(
        options(71, 40),
        "\n[extract]\nhistory_for_changed = true\noverlap_minutes = 0\n\
         \n[http]\nmax_attempts = 2\nbackoff_base_ms = 5\nbackoff_max_ms = 20\n",
    )
    .await;
    let first = h.run_ok(&["extract", "--json"]).await;
    let contacts = all_contacts(&h).await;
    let before = snapshot_history(&run_dir(&first));
    let victim = &contacts[0];
    let (status, _) = ghl(
        &h,
        Method::POST,
        &format!("/contacts/{victim}/notes"),
        Some(json!({"body": "written while GHL failed"})),
    )
    .await;
    assert_eq!(status, 201);
    // The change makes the victim one of the contacts whose history this run reads.
    let (status, answer) = ghl(
        &h,
        Method::PUT,
        &format!("/contacts/{victim}"),
        Some(json!({"city": "Elsewhere"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    h.control_post(
        "faults",
        json!({"server_error": 1.0, "only_paths": [format!("/contacts/{victim}/notes")]}),
    )
    .await;
    let args = ["extract", "--json"];
    let out = h.run(&args).await;
    let report = common::json_report(&args, &out);
    assert_eq!(out.status.code(), Some(3), "{report}");
    assert_eq!(report["counts"]["history.contacts_failed"], 1, "{report}");
    assert!(
        report["errors"].to_string().contains("could not be read"),
        "{report}"
    );
    let pending = std::fs::read_to_string(run_dir(&report).join("extract/ghl/history_pending.txt"))
        .expect("pending file");
    assert_eq!(pending.lines().next(), Some(victim.as_str()), "{pending}");
    // The snapshot still holds the victim's notes as the first run read them, and not the new one.
    assert_eq!(snapshot_history(&run_dir(&report)), before);

    h.control_post("faults", json!({"name": "none"})).await;
    let next = h.run_ok(&["extract", "--json"]).await;
    assert_eq!(next["counts"]["history.contacts_failed"], 0, "{next}");
    assert_eq!(
        snapshot_history(&run_dir(&next)),
        sandbox_history(&h, &contacts).await,
        "the owed contact's history was not read by the next run"
    );

    // Every contact's tasks failing: the run stops instead of owing the whole location.
    h.control_post(
        "faults",
        json!({"server_error": 1.0, "only_paths": ["/tasks"]}),
    )
    .await;
    let args = ["extract", "--full", "--json"];
    let out = h.run(&args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("contacts in a row"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_lists_an_open_task_made_in_ghl() {
    let h = harness(
        options(61, 150),
        "\n[extract]\nhistory_for_changed = true\n",
    )
    .await;
    let contacts = all_contacts(&h).await;
    let contact = &contacts[7];
    let (status, created) = ghl(
        &h,
        Method::POST,
        &format!("/contacts/{contact}/tasks"),
        Some(json!({
            "title": "Call back about the quote",
            "dueDate": "2020-01-02T09:00:00Z",
            "completed": false
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let task_id = created["task"]["id"].as_str().expect("task id").to_string();
    let report = h.run_ok(&["run", "--json"]).await;
    let audit: Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir(&report).join("audit/report.json")).expect("report.json"),
    )
    .expect("report JSON");
    let table = audit["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|t| t["id"] == "open_tasks")
        .expect("an open_tasks finding list");
    let columns: Vec<&str> = table["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c.as_str().expect("column"))
        .collect();
    let col = |name: &str| columns.iter().position(|c| *c == name).expect(name);
    let row = table["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r[col("task_id")] == task_id.as_str())
        .unwrap_or_else(|| panic!("task {task_id} not listed: {table}"));
    assert_eq!(row[col("contact_id")], contact.as_str());
    assert_eq!(row[col("title")], "Call back about the quote");
    assert_eq!(row[col("due_date")], "2020-01-02T09:00:00Z");
    assert_eq!(row[col("overdue")], "true");
    let csv = std::fs::read_to_string(run_dir(&report).join("audit/open_tasks.csv")).expect("csv");
    assert!(csv.contains(&task_id), "the CSV lacks the task");
    let html = std::fs::read_to_string(run_dir(&report).join("audit/report.html")).expect("html");
    assert!(
        html.contains("Call back about the quote"),
        "the HTML lacks the task"
    );
}
