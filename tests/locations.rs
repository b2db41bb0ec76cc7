//! Many locations in one run (issue 24): a sandbox with several GHL locations and one BulkSMS
//! account, the pipeline file naming them all with `[ghl] locations`. Each location keeps its own
//! contacts and texts, a failing location fails alone, an unknown inbound number becomes a lead in
//! exactly one location, a STOP is DND in every location holding the number, and a shard killed
//! with SIGKILL then rerun ends as a clean run did without touching the other shard.

mod common;

use common::Harness;
use common::agency::{agency_on, contacts_of, effects_by_location, ids};
use common::effects::{diff, options, repeated};
use common::postgres::StateBackend;
use contactsync::pipeline::agency::shard_of;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn digits(n: &str) -> String {
    n.chars().filter(char::is_ascii_digit).collect()
}

fn sms_dnd(contact: &Value) -> bool {
    contact["dnd"].as_bool().unwrap_or(false)
        || matches!(
            contact["dndSettings"]["SMS"]["status"].as_str(),
            Some("active" | "permanent")
        )
}

/// [`agency_on`] with the state on the backend `CONTACTSYNC_TEST_STATE` names.
async fn agency(
    n: usize,
    seed: u64,
    contacts: usize,
    tokens: &BTreeMap<String, String>,
    bulksms_extra: &str,
) -> Harness {
    agency_on(
        n,
        seed,
        contacts,
        tokens,
        bulksms_extra,
        StateBackend::from_env(),
    )
    .await
}

/// A number's last nine digits: contacts hold national and international spellings of numbers
/// sends address in E.164.
fn tail(number: &str) -> String {
    let d = digits(number);
    d[d.len().saturating_sub(9)..].to_string()
}

fn phones(contacts: &[Value]) -> BTreeSet<String> {
    contacts
        .iter()
        .filter_map(|c| c["phone"].as_str().map(tail))
        .filter(|p| !p.is_empty())
        .collect()
}

fn has_tag(contact: &Value, tag: &str) -> bool {
    contact["tags"]
        .as_array()
        .is_some_and(|t| t.iter().any(|v| v.as_str() == Some(tag)))
}

fn location_report<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["locations"]
        .as_array()
        .expect("locations in the report")
        .iter()
        .find(|l| l["location"] == id)
        .unwrap_or_else(|| panic!("no report for location {id}: {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_locations_in_one_run_keep_their_own_contacts_and_texts() {
    let h = agency(3, 31, 60, &BTreeMap::new(), "").await;
    let ids = ids(&h);
    let mut before = BTreeMap::new();
    for id in &ids {
        before.insert(id.clone(), contacts_of(&h, id).await);
    }
    let seeded: BTreeSet<String> = h.control("state").await["bulksms"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].to_string())
        .collect();
    let report = h.run_ok(&["run", "--json"]).await;
    assert_eq!(report["exit_code"], 0, "{report}");
    assert_eq!(report["totals"]["locations_ok"], 3, "{report}");
    let state = h.control("state").await;
    let welcomes: Vec<String> = state["bulksms"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["type"] == "SENT" && !seeded.contains(&m["id"].to_string()))
        .filter(|m| {
            m["body"]
                .as_str()
                .unwrap_or("")
                .contains("welcome! Reply STOP")
        })
        .map(|m| tail(m["to"].as_str().unwrap_or("")))
        .collect();
    let mut all_phones = BTreeSet::new();
    for id in &ids {
        let r = location_report(&report, id);
        assert_eq!(r["exit_code"], 0, "{r}");
        assert!(r["counts"]["applied"].as_u64().unwrap_or(0) > 0, "{r}");
        let after = contacts_of(&h, id).await;
        let own = phones(&before[id]);
        // The account's message history is location 0's: its inbound numbers are no lead in the
        // other locations (each took only its own share of the shared messages).
        let leads: Vec<&Value> = after.iter().filter(|c| has_tag(c, "sms:lead")).collect();
        assert!(
            leads.is_empty() || id == &ids[0],
            "location {id} made leads of another location's numbers: {leads:?}"
        );
        let welcomed_here = welcomes.iter().filter(|p| own.contains(*p)).count();
        assert!(
            welcomed_here > 0,
            "location {id} texted none of its contacts"
        );
        all_phones.extend(phones(&after));
    }
    let strays: Vec<&String> = welcomes
        .iter()
        .filter(|p| !all_phones.contains(*p))
        .collect();
    assert!(
        strays.is_empty(),
        "welcome texts to numbers no location holds: {strays:?}"
    );
    // Each location's state is its own, beside the others'.
    for id in &ids {
        let dir = h.state_dir().join("locations").join(id);
        // Its ledger: a file of its own, or its rows in the shared database.
        let local =
            common::postgres::StateBackend::from_env() == common::postgres::StateBackend::Local;
        assert_eq!(
            dir.join("ledger.sqlite").exists(),
            local,
            "{}",
            dir.display()
        );
        // The account's messages were read once for all: no location's extract asked BulkSMS.
        let run_dir = location_report(&report, id)["run_dir"]
            .as_str()
            .expect("run_dir")
            .to_string();
        let manifest: Value = serde_json::from_slice(
            &std::fs::read(std::path::Path::new(&run_dir).join("extract/manifest.json"))
                .expect("manifest"),
        )
        .expect("manifest JSON");
        assert_eq!(
            manifest["requests"]["bulksms"]["requests"], 0,
            "{id}: {manifest}"
        );
        assert!(
            manifest["entities"]["bulksms/messages"]["rows"]
                .as_u64()
                .unwrap_or(0)
                > 0,
            "{id} has the account's messages"
        );
    }
    let account_runs = std::fs::read_dir(h.state_dir().join("agency/account/runs"))
        .expect("the account's read")
        .count();
    assert_eq!(account_runs, 1, "one BulkSMS read for the run");
    // The agency's audit: a line per location and the totals.
    let audit = h.run_ok(&["audit", "--all-locations", "--json"]).await;
    assert_eq!(
        audit["locations"].as_array().map(Vec::len),
        Some(3),
        "{audit}"
    );
    for id in &ids {
        assert!(
            location_report(&audit, id)["counts"]["thresholds_breached"].is_u64(),
            "{audit}"
        );
    }
    assert!(audit["totals"]["counts"]["findings.duplicate_clusters"].as_u64() > Some(0));
    // The stage commands work on one location: a multi-location file is refused by name.
    let out = h.run(&["extract", "--json"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ghl.locations"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_whose_token_is_revoked_fails_alone() {
    let probe = Harness::start_locations(3, options(32, 40)).await;
    let revoked = probe.locations()[1].id.clone();
    drop(probe);
    let tokens = BTreeMap::from([(revoked.clone(), "pit-revoked-by-the-agency".to_string())]);
    let h = agency(3, 32, 40, &tokens, "").await;
    assert_eq!(ids(&h)[1], revoked, "same seed, same locations");
    let out = h.run(&["run", "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "one location failed, two succeeded: partial failure\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = common::json_report(&["run", "--json"], &out);
    assert_eq!(report["totals"]["locations_failed"], 1, "{report}");
    assert_eq!(report["totals"]["locations_ok"], 2, "{report}");
    let failed = location_report(&report, &revoked);
    assert_ne!(failed["exit_code"], 0, "{failed}");
    assert!(
        !failed["errors"].as_array().expect("errors").is_empty(),
        "{failed}"
    );
    for id in ids(&h).iter().filter(|id| **id != revoked) {
        let r = location_report(&report, id);
        assert_eq!(r["exit_code"], 0, "{r}");
        assert!(r["counts"]["applied"].as_u64().unwrap_or(0) > 0, "{r}");
    }
    let metrics = std::fs::read_to_string(h.state_dir().join("metrics.prom")).expect("metrics");
    assert!(
        metrics.contains(&format!(
            "contactsync_last_run_exit_code{{location=\"{revoked}\""
        )),
        "{metrics}"
    );
    assert!(metrics.contains("status=\"failed\"} 1"), "{metrics}");
    assert!(
        metrics.contains("contactsync_agency_exit_code{pipeline=\"sandbox\"} 3"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_inbound_number_becomes_a_lead_in_exactly_one_location() {
    let probe = Harness::start_locations(3, options(33, 40)).await;
    let default = probe.locations()[2].id.clone();
    drop(probe);
    let h = agency(
        3,
        33,
        40,
        &BTreeMap::new(),
        &format!("default_location = {default:?}"),
    )
    .await;
    let stranger = "15557770123";
    h.control_post(
        "bulksms/inbound",
        json!({"from": stranger, "body": "Hi, is this still available?"}),
    )
    .await;
    h.run_ok(&["run", "--json"]).await;
    for id in ids(&h) {
        let leads = contacts_of(&h, &id)
            .await
            .iter()
            .filter(|c| c["phone"].as_str().map(digits).as_deref() == Some(stranger))
            .count();
        let expected = usize::from(id == default);
        assert_eq!(
            leads, expected,
            "location {id}: {leads} contacts for +{stranger}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_is_dnd_in_every_location_holding_the_number() {
    let h = agency(3, 34, 40, &BTreeMap::new(), "").await;
    let ids = ids(&h);
    let first = contacts_of(&h, &ids[0]).await;
    let phone = first
        .iter()
        .filter(|c| !sms_dnd(c))
        .filter_map(|c| c["phone"].as_str())
        .find(|p| p.starts_with('+'))
        .expect("a contact with an E.164 phone")
        .to_string();
    // The same person is a contact of the second location too, not of the third.
    let token = &h.locations()[1].private_token;
    let (status, body) = h
        .ghl(
            reqwest::Method::POST,
            "/contacts/",
            token,
            Some(json!({"locationId": ids[1], "firstName": "Shared", "phone": phone})),
        )
        .await;
    assert!(status.is_success(), "{status}: {body}");
    h.control_post(
        "bulksms/inbound",
        json!({"from": phone.trim_start_matches('+'), "body": "STOP"}),
    )
    .await;
    h.run_ok(&["run", "--json"]).await;
    for (i, id) in ids.iter().enumerate() {
        let holders: Vec<Value> = contacts_of(&h, id)
            .await
            .into_iter()
            .filter(|c| c["phone"].as_str().map(digits) == Some(digits(&phone)))
            .collect();
        if i == 2 {
            assert!(holders.is_empty(), "location {id} never held {phone}");
            continue;
        }
        assert!(!holders.is_empty(), "location {id} holds {phone}");
        for c in &holders {
            assert!(
                sms_dnd(c),
                "location {id}: {phone} replied STOP, no DND on {c}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_shard_then_a_rerun_matches_a_clean_run_and_spares_the_other_shard() {
    let clean = agency(4, 35, 80, &BTreeMap::new(), "").await;
    let ids = ids(&clean);
    let shard0: Vec<&String> = ids.iter().filter(|id| shard_of(id, 2) == 0).collect();
    let shard1: Vec<&String> = ids.iter().filter(|id| shard_of(id, 2) == 1).collect();
    assert!(
        !shard0.is_empty() && !shard1.is_empty(),
        "the seed's locations fall in both shards: {shard0:?} {shard1:?}"
    );
    let started = std::time::Instant::now();
    clean.run_ok(&["run", "--json"]).await;
    let clean_seconds = started.elapsed().as_secs_f64();
    let expected = effects_by_location(&clean).await;

    let h = agency(4, 35, 80, &BTreeMap::new(), "").await;
    let initial = effects_by_location(&h).await;
    let mut child = h.spawn_quiet(&["run", "--shard", "0/2", "--json"]);
    tokio::time::sleep(Duration::from_secs_f64(clean_seconds * 0.6)).await;
    let killed_while_running = child.try_wait().expect("wait").is_none();
    child.kill().ok(); // SIGKILL on Unix
    child.wait().ok();
    // The other shard was not touched by the killed runner.
    let after_kill = effects_by_location(&h).await;
    for id in &shard1 {
        assert!(
            !h.state_dir().join("locations").join(id).exists(),
            "shard 1's location {id} got state from shard 0's runner"
        );
        let ghl_only = |e: &BTreeMap<String, usize>| -> BTreeMap<String, usize> {
            e.iter()
                .filter(|(k, _)| !k.starts_with("sms") && !k.starts_with("blocked"))
                .map(|(k, v)| (k.clone(), *v))
                .collect()
        };
        assert_eq!(
            ghl_only(&after_kill[*id]),
            ghl_only(&initial[*id]),
            "shard 1's location {id} changed"
        );
    }
    h.run_ok(&["run", "--shard", "0/2", "--json"]).await;
    h.run_ok(&["run", "--shard", "1/2", "--json"]).await;
    let got = effects_by_location(&h).await;
    for id in &ids {
        let twice = repeated(&initial[id], &expected[id], &got[id]);
        assert!(twice.is_empty(), "location {id}: repeated {twice:?}");
        let differences = diff(&expected[id], &got[id]);
        assert!(
            differences.is_empty(),
            "location {id} (killed while running: {killed_while_running}): {} differences, e.g. {:?}",
            differences.len(),
            &differences[..differences.len().min(10)]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_installed_runs_every_location_the_agency_app_is_installed_in() {
    let h = Harness::start_locations(3, options(36, 30)).await;
    let info = &h.sandbox.info;
    let text = std::fs::read_to_string(&h.pipeline).expect("pipeline file");
    let auth_line = text
        .lines()
        .find(|l| l.starts_with("auth = "))
        .expect("an auth line")
        .to_string();
    let text = text
        .replace(
            &format!("location_id = \"{}\"", info.ghl_location_id),
            "locations = \"all-installed\"",
        )
        .replace(
            &auth_line,
            &format!(
                "auth = {{ kind = \"agency_oauth\", client_id = {:?}, client_secret = {:?}, auth_code = {:?} }}",
                info.ghl_client_id, info.ghl_client_secret, info.ghl_company_auth_code
            ),
        );
    std::fs::write(&h.pipeline, format!("{text}\n[load]\nmax_merges = 0.5\n")).expect("write");
    h.run_ok(&["auth", "ghl", "--json"]).await;
    let report = h.run_ok(&["run", "--json"]).await;
    let ran: BTreeSet<String> = report["locations"]
        .as_array()
        .expect("locations")
        .iter()
        .map(|l| l["location"].as_str().expect("id").to_string())
        .collect();
    let installed: BTreeSet<String> = ids(&h).into_iter().collect();
    assert_eq!(ran, installed, "{report}");
    assert_eq!(report["exit_code"], 0, "{report}");
}
