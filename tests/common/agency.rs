//! An agency in the sandbox: several GHL locations sharing one BulkSMS account, and a pipeline file
//! running all of them.

use super::Harness;
use super::effects::{TRIGGERS, effects, options};
use super::postgres::StateBackend;
use contactsync::sandbox::SandboxOptions;
use serde_json::Value;
use std::collections::BTreeMap;

/// A sandbox with `n` locations and a pipeline file running all of them, each with its own
/// Private Integration Token (`tokens` overrides some), welcome texts on, `bulksms_extra` lines in
/// `[bulksms]`, and its state on `backend`.
pub async fn agency_on(
    n: usize,
    seed: u64,
    contacts: usize,
    tokens: &BTreeMap<String, String>,
    bulksms_extra: &str,
    backend: StateBackend,
) -> Harness {
    let h = Harness::start_on(
        SandboxOptions {
            locations: n,
            ..options(seed, contacts)
        },
        backend,
    )
    .await;
    let text = std::fs::read_to_string(&h.pipeline).expect("pipeline file");
    let ids = ids(&h);
    let list: Vec<String> = ids.iter().map(|id| format!("{id:?}")).collect();
    let token_list: Vec<String> = h
        .locations()
        .iter()
        .map(|l| {
            let token = tokens.get(&l.id).unwrap_or(&l.private_token);
            format!("{:?} = {token:?}", l.id)
        })
        .collect();
    let location_line = format!("location_id = \"{}\"", ids[0]);
    assert!(text.contains(&location_line), "{text}");
    let auth_line = text
        .lines()
        .find(|l| l.starts_with("auth = "))
        .expect("an auth line")
        .to_string();
    let text = text
        .replace(
            &location_line,
            &format!("locations = [{}]", list.join(", ")),
        )
        .replace(
            &auth_line,
            &format!(
                "auth = {{ kind = \"private_token\", tokens = {{ {} }} }}",
                token_list.join(", ")
            ),
        )
        .replace("[bulksms]\n", &format!("[bulksms]\n{bulksms_extra}\n"));
    // Small seeded locations have many planted duplicates: keep their merges under the limit.
    std::fs::write(
        &h.pipeline,
        format!("{text}\n{TRIGGERS}\n[load]\nmax_merges = 0.5\n"),
    )
    .expect("write pipeline");
    h
}

/// The sandbox's location ids, in order.
pub fn ids(h: &Harness) -> Vec<String> {
    h.locations().iter().map(|l| l.id.clone()).collect()
}

/// A location's contacts as the sandbox holds them.
pub async fn contacts_of(h: &Harness, location: &str) -> Vec<Value> {
    h.control(&format!("state?location={location}")).await["ghl"]["contacts"]
        .as_array()
        .expect("contacts")
        .clone()
}

/// Every location's effects (its GHL contacts and notes with the account's BulkSMS messages).
pub async fn effects_by_location(h: &Harness) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut out = BTreeMap::new();
    for id in ids(h) {
        out.insert(
            id.clone(),
            effects(&h.control(&format!("state?location={id}")).await),
        );
    }
    out
}
