//! `merge = "delete"` end to end (issue 22): before a duplicate is deleted, its tags, notes and
//! open tasks move to the contact that survives, once each — on a clean run and when the answers
//! of those writes are lost and the load is retried by later runs.

mod common;

use common::Harness;
use common::effects::options;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

/// The seeded location holds planted duplicates of its own: the limits let all their merges through.
const MERGE_DELETE: &str = "\n[load]\nmerge = \"delete\"\nmax_deletes = 100\nmax_merges = 1.0\n";

/// The history each of the two records of one person carries before the run.
struct Record {
    tag: &'static str,
    note: &'static str,
    open_task: &'static str,
    done_task: &'static str,
}

const RECORDS: [Record; 2] = [
    Record {
        tag: "vip",
        note: "Called on Monday: wants a quote for the roof.",
        open_task: "Send the roof quote",
        done_task: "First call",
    },
    Record {
        tag: "referral",
        note: "Came through her neighbour's referral.",
        open_task: "Thank the neighbour",
        done_task: "Log the referral",
    },
];

async fn ghl_post(h: &Harness, path: &str, body: Value) -> Value {
    let info = &h.sandbox.info;
    let response = h
        .http
        .post(format!("{}{path}", info.ghl_base_url))
        .bearer_auth(&info.ghl_token)
        .header("Version", "2021-07-28")
        .json(&body)
        .send()
        .await
        .expect("GHL answers");
    assert!(
        response.status().is_success(),
        "POST {path}: {:?}",
        response.text().await
    );
    response.json().await.expect("JSON answer")
}

/// A sandbox allowing duplicate contacts, holding the same person twice, each record with its own
/// tag, note, open task and completed task. Returns the two contact ids.
async fn two_records_of_one_person(seed: u64) -> (Harness, [String; 2]) {
    let mut opts = options(seed, 30);
    opts.allow_duplicates = true;
    let h = Harness::start(opts).await;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&h.pipeline)
        .expect("pipeline file")
        .write_all(MERGE_DELETE.as_bytes())
        .expect("append [load]");
    h.authorise().await;
    let mut ids = Vec::new();
    for record in &RECORDS {
        let created = ghl_post(
            &h,
            "/contacts/",
            json!({
                "locationId": h.sandbox.info.ghl_location_id,
                "firstName": "Dana",
                "lastName": "Merriweather",
                "email": "dana.merriweather@example.com",
                "phone": "+14155557301",
                "tags": [record.tag],
            }),
        )
        .await;
        let id = created["contact"]["id"]
            .as_str()
            .expect("contact id")
            .to_string();
        ghl_post(
            &h,
            &format!("/contacts/{id}/notes"),
            json!({"body": record.note}),
        )
        .await;
        for (title, completed) in [(record.open_task, false), (record.done_task, true)] {
            ghl_post(
                &h,
                &format!("/contacts/{id}/tasks"),
                json!({"title": title, "body": "", "dueDate": "2026-12-20T17:00:00Z", "completed": completed}),
            )
            .await;
        }
        ids.push(id);
    }
    let ids: [String; 2] = ids.try_into().expect("two ids");
    (h, ids)
}

/// What the sandbox holds for one contact: tags, note bodies (first line), task titles by state.
#[derive(Debug)]
struct History {
    exists: bool,
    tags: BTreeSet<String>,
    notes: BTreeMap<String, usize>,
    open_tasks: BTreeMap<String, usize>,
    done_tasks: BTreeMap<String, usize>,
}

fn history(state: &Value, id: &str) -> History {
    let contact = state["ghl"]["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .find(|c| c["id"] == id);
    let mut out = History {
        exists: contact.is_some(),
        tags: contact
            .and_then(|c| c["tags"].as_array())
            .map(|t| {
                t.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        notes: BTreeMap::new(),
        open_tasks: BTreeMap::new(),
        done_tasks: BTreeMap::new(),
    };
    for note in state["ghl"]["notes"].as_array().expect("notes") {
        if note["contactId"] == id {
            let first = note["body"].as_str().unwrap_or("").lines().next();
            *out.notes
                .entry(first.unwrap_or("").to_string())
                .or_default() += 1;
        }
    }
    for task in state["ghl"]["tasks"].as_array().expect("tasks") {
        if task["contactId"] == id {
            let title = task["title"].as_str().unwrap_or("").to_string();
            let map = if task["completed"].as_bool() == Some(true) {
                &mut out.done_tasks
            } else {
                &mut out.open_tasks
            };
            *map.entry(title).or_default() += 1;
        }
    }
    out
}

/// The survivor holds both records' tags, notes and open tasks exactly once, and only its own
/// completed task; the duplicate is gone.
fn assert_moved_once(state: &Value, ids: &[String; 2]) {
    let histories: Vec<History> = ids.iter().map(|id| history(state, id)).collect();
    let surviving: Vec<usize> = (0..2).filter(|&i| histories[i].exists).collect();
    assert_eq!(
        surviving.len(),
        1,
        "exactly one record survives: {histories:?}"
    );
    let (kept, deleted) = (surviving[0], 1 - surviving[0]);
    let survivor = &histories[kept];
    for record in &RECORDS {
        assert!(
            survivor.tags.contains(record.tag),
            "tag {} on the survivor: {survivor:?}",
            record.tag
        );
        assert_eq!(
            survivor.notes.get(record.note),
            Some(&1),
            "note {:?} once on the survivor: {survivor:?}",
            record.note
        );
        assert_eq!(
            survivor.open_tasks.get(record.open_task),
            Some(&1),
            "open task {:?} once on the survivor: {survivor:?}",
            record.open_task
        );
    }
    assert_eq!(
        survivor.done_tasks.keys().collect::<Vec<_>>(),
        vec![RECORDS[kept].done_task],
        "a completed task stays history of the deleted record: {survivor:?}"
    );
    assert!(
        !survivor.tags.iter().any(|t| t.contains("duplicate")),
        "the duplicate's mark does not move: {survivor:?}"
    );
    assert!(
        !survivor
            .notes
            .keys()
            .any(|n| n.starts_with("Duplicate of contact")),
        "the note pointing at the survivor stays behind: {survivor:?}"
    );
    assert_eq!(
        state["ghl"]["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .filter(|t| t["contactId"] == ids[deleted].as_str())
            .count(),
        0,
        "the duplicate's tasks went with it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_duplicate_hands_its_tags_notes_and_open_tasks_to_the_survivor() {
    let (h, ids) = two_records_of_one_person(2201).await;
    let report = h.run_ok(&["run", "--json"]).await;
    assert_eq!(report["exit_code"], json!(0), "{report}");
    assert_moved_once(&h.control("state").await, &ids);

    // The next night finds nothing left to do.
    let again = h.run_ok(&["run", "--json"]).await;
    assert_moved_once(&h.control("state").await, &ids);
    assert_eq!(again["counts"]["planned_operations"], json!(0), "{again}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_answers_while_moving_history_still_move_it_once() {
    let (h, ids) = two_records_of_one_person(2202).await;
    // Half the answers of note and task writes are lost after GHL made the write.
    h.control_post(
        "faults",
        json!({"lost_response": 0.5, "only_paths": ["/notes", "/tasks"]}),
    )
    .await;
    let mut exits = Vec::new();
    for _ in 0..10 {
        let out = h.run(&["run"]).await;
        exits.push(out.status.code());
        if out.status.success() {
            break;
        }
    }
    assert_eq!(exits.last(), Some(&Some(0)), "a run finishes: {exits:?}");
    h.control_post("faults", json!({"name": "none"})).await;
    assert_moved_once(&h.control("state").await, &ids);
}
