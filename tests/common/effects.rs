//! What the two services hold after a pipeline has run, compared between runs: the effects of a
//! run, the ones repeated, the differences from a clean run, and the nightly loop that reaches them.

use super::Harness;
use contactsync::sandbox::SandboxOptions;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;

/// Welcome texts fire on this pipeline's first run, so loads have sends to get exactly once.
pub const TRIGGERS: &str = r#"
[transform.triggers]
fire_on_first_run = true
activity_notes = false

[transform.triggers.welcome]
template = "Hi {first_name|there}, welcome! Reply STOP to opt out."

[transform.triggers.digest]
to = "+14155550100"
template = "contactsync {date}: {contacts} contacts, {duplicate_clusters} duplicate clusters"
"#;

pub fn options(seed: u64, contacts: usize) -> SandboxOptions {
    SandboxOptions {
        seed,
        contacts,
        messages: contacts * 2,
        rate_limit: false,
        ..SandboxOptions::default()
    }
}

pub async fn harness_with_triggers(options: SandboxOptions) -> Harness {
    harness_with_triggers_on(options, super::postgres::StateBackend::from_env()).await
}

/// [`harness_with_triggers`] with its ledger and lock on `backend`.
pub async fn harness_with_triggers_on(
    options: SandboxOptions,
    backend: super::postgres::StateBackend,
) -> Harness {
    let h = Harness::start_on(options, backend).await;
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
pub fn effects(state: &Value) -> BTreeMap<String, usize> {
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
pub fn without_dates(body: &str) -> String {
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

/// Effects that happened more often than a clean run made them happen (and more than once since
/// `initial`, the seeded state). Two seeded contacts alike in every compared field end with the
/// same tags and notes, so a count of two can be right: the clean run's count says what is.
pub fn repeated<'a>(
    initial: &BTreeMap<String, usize>,
    clean: &BTreeMap<String, usize>,
    effects: &'a BTreeMap<String, usize>,
) -> Vec<&'a String> {
    effects
        .iter()
        .filter(|(k, n)| {
            let once = initial.get(*k).copied().unwrap_or(0) + 1;
            **n > once.max(clean.get(*k).copied().unwrap_or(0))
        })
        .map(|(k, _)| k)
        .collect()
}

pub fn diff(a: &BTreeMap<String, usize>, b: &BTreeMap<String, usize>) -> Vec<String> {
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

/// Every ledger row as `key status attempts`, in key order (empty when there is no ledger).
pub fn ledger_rows(path: &std::path::Path) -> Vec<String> {
    if !path.exists() {
        return Vec::new();
    }
    let conn = rusqlite::Connection::open(path).expect("open ledger");
    let mut stmt = conn
        .prepare("SELECT key, status, attempts FROM operations ORDER BY key")
        .expect("query");
    stmt.query_map([], |r| {
        Ok(format!(
            "{} {} {}",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?
        ))
    })
    .expect("rows")
    .collect::<Result<_, _>>()
    .expect("row")
}

pub fn count(report: &Value, key: &str) -> u64 {
    report["counts"][key].as_u64().unwrap_or(0)
}

/// Runs the pipeline on a fresh sandbox until a run exits 0; returns the final effects.
pub async fn converge(h: &Harness, max_runs: usize) -> BTreeMap<String, usize> {
    converge_with(h, max_runs, false).await
}

/// [`converge`], as the operator of a nightly job keeps it going. A kill that lands after GHL
/// rotated the refresh token and before the new one was stored spends the grant (GHL documents
/// that a used refresh token stops working): the next run stops with exit 1 and says to run
/// `contactsync auth ghl`, and the operator does, with a code from installing the app again.
pub async fn converge_as_an_operator(h: &Harness, max_runs: usize) -> BTreeMap<String, usize> {
    converge_with(h, max_runs, true).await
}

async fn converge_with(h: &Harness, max_runs: usize, reauthorise: bool) -> BTreeMap<String, usize> {
    for attempt in 0..max_runs {
        let out = h.run(&["run", "--json"]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => return effects(&h.control("state").await),
            // Partial failure: the rest is retried by the next run, as the nightly job would.
            Some(3) => continue,
            Some(1)
                if reauthorise
                    && stderr.contains("invalid_grant")
                    && stderr.contains("run `contactsync auth ghl`") =>
            {
                let code = h.control_post("ghl/reinstall", Value::Null).await;
                let code = code["auth_code"].as_str().expect("a new code");
                h.run_ok(&["auth", "ghl", "--code", code, "--json"]).await;
            }
            other => panic!("run {attempt} exited {other:?}: {stderr}"),
        }
    }
    panic!("the pipeline did not converge in {max_runs} runs");
}
