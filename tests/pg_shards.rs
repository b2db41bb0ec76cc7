//! Shards on several machines (issue 24): two runners, each with a state folder of its own, run
//! the two shards of one agency pipeline against one PostgreSQL database and one BulkSMS account.
//! Routing the shared account agrees across them: a number held by a location of the other
//! machine is that location's (never a lead in this machine's `default_location`), a reply to a
//! send the other machine made goes to the location that sent it, and the end state is the one a
//! single process running every location reaches.

mod common;

use common::agency::{agency_on, contacts_of, effects_by_location, ids};
use common::effects::{diff, repeated};
use common::postgres::StateBackend;
use common::{Harness, json_report, run_binary};
use contactsync::pipeline::agency::shard_of;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Held by the holder location only, never texted by it (a lead already: no welcome).
const HELD: &str = "12074820101";
/// Welcomed by the holder location, then that contact's phone changes to MOVED: held by nobody,
/// last texted by the holder.
const GONE: &str = "12074820102";
const MOVED: &str = "12074820103";

fn digits(n: &str) -> String {
    n.chars().filter(char::is_ascii_digit).collect()
}

fn holders_of(contacts: &[Value], number: &str) -> Vec<Value> {
    contacts
        .iter()
        .filter(|c| c["phone"].as_str().map(digits).as_deref() == Some(number))
        .cloned()
        .collect()
}

/// The agency of these tests: three locations split over the two shards of `--shard i/2`, the
/// holder of the numbers above in shard 1 and `default_location` in shard 0.
struct Agency {
    h: Harness,
    holder: String,
    default: String,
}

impl Agency {
    async fn start(backend: StateBackend) -> Agency {
        let h = agency_on(3, 2472, 40, &BTreeMap::new(), "", backend).await;
        let ids = ids(&h);
        let in_shard = |i: u64| ids.iter().find(|id| shard_of(id, 2) == i).cloned();
        let (Some(default), Some(holder)) = (in_shard(0), in_shard(1)) else {
            panic!("the seed's locations must fall in both shards: {ids:?}");
        };
        let text = std::fs::read_to_string(&h.pipeline).expect("pipeline");
        std::fs::write(
            &h.pipeline,
            text.replace(
                "[bulksms]\n",
                &format!("[bulksms]\ndefault_location = {default:?}\n"),
            ),
        )
        .expect("write pipeline");
        Agency { h, holder, default }
    }

    /// A contact of the holder location; its id.
    async fn add_contact(&self, name: &str, number: &str, tags: &[&str]) -> String {
        let token = self
            .h
            .locations()
            .iter()
            .find(|l| l.id == self.holder)
            .expect("holder")
            .private_token
            .clone();
        let (status, body) = self
            .h
            .ghl(
                reqwest::Method::POST,
                "/contacts/",
                &token,
                Some(json!({"locationId": self.holder, "firstName": name,
                            "phone": format!("+{number}"), "tags": tags})),
            )
            .await;
        assert!(status.is_success(), "{status}: {body}");
        body["contact"]["id"].as_str().expect("id").to_string()
    }

    /// Gives a contact of the holder location another phone number.
    async fn change_phone(&self, id: &str, number: &str) {
        let token = &self.h.locations()[ids(&self.h)
            .iter()
            .position(|l| *l == self.holder)
            .expect("holder")]
        .private_token;
        let (status, body) = self
            .h
            .ghl(
                reqwest::Method::PUT,
                &format!("/contacts/{id}"),
                token,
                Some(json!({"phone": format!("+{number}")})),
            )
            .await;
        assert!(status.is_success(), "{status}: {body}");
    }

    async fn inbound(&self, from: &str, body: &str) {
        self.h
            .control_post("bulksms/inbound", json!({"from": from, "body": body}))
            .await;
    }
}

/// Where a run happens: one process for every location, or each shard on a machine of its own
/// (its own state folder; the same pipeline file otherwise).
enum Runners {
    One(PathBuf),
    TwoMachines {
        shard0: PathBuf,
        shard1: PathBuf,
        _elsewhere: tempfile::TempDir,
    },
}

impl Runners {
    fn two_machines(h: &Harness) -> Runners {
        let elsewhere = tempfile::tempdir().expect("the other machine");
        let copy = elsewhere.path().join("pipeline.toml");
        std::fs::copy(&h.pipeline, &copy).expect("copy the pipeline file");
        Runners::TwoMachines {
            shard0: h.pipeline.clone(),
            shard1: copy,
            _elsewhere: elsewhere,
        }
    }

    /// One round: shard 1's machine first, then shard 0's (or the one process).
    async fn round(&self) {
        match self {
            Runners::One(pipeline) => run_ok(pipeline, &["run", "--json"]).await,
            Runners::TwoMachines { shard0, shard1, .. } => {
                run_ok(shard1, &["run", "--shard", "1/2", "--json"]).await;
                run_ok(shard0, &["run", "--shard", "0/2", "--json"]).await;
            }
        }
    }
}

async fn run_ok(pipeline: &Path, args: &[&str]) {
    let out = run_binary(pipeline, args).await;
    let report = json_report(args, &out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "contactsync {args:?}: {report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The story both tests tell: the holder location gets a contact it never texts (HELD) and one it
/// welcomes (GONE); that contact's phone then changes to MOVED; then HELD and GONE write in.
async fn play(agency: &Agency, runners: &Runners) {
    agency.add_contact("Held", HELD, &["sms:lead"]).await;
    let gone = agency.add_contact("Gone", GONE, &[]).await;
    runners.round().await;
    let texted = agency.h.control("state").await["bulksms"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .any(|m| m["type"] == "SENT" && m["to"].as_str().map(digits).as_deref() == Some(GONE));
    assert!(texted, "the holder location welcomed +{GONE}");
    agency.change_phone(&gone, MOVED).await;
    runners.round().await;
    agency.inbound(HELD, "Is Saturday still ok?").await;
    agency.inbound(GONE, "Yes please, book me in").await;
    runners.round().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_route_to_the_other_machines_locations_that_hold_or_texted_the_number() {
    let agency = Agency::start(StateBackend::Postgres).await;
    let runners = Runners::two_machines(&agency.h);
    play(&agency, &runners).await;
    for id in ids(&agency.h) {
        let contacts = contacts_of(&agency.h, &id).await;
        let (held, gone) = (holders_of(&contacts, HELD), holders_of(&contacts, GONE));
        if id == agency.holder {
            assert_eq!(held.len(), 1, "{id} keeps its own contact: {held:?}");
            // The reply to its welcome made the number a lead again, here and nowhere else.
            assert_eq!(gone.len(), 1, "{id}: {gone:?}");
            assert!(
                gone[0]["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "sms:lead")),
                "{gone:?}"
            );
        } else {
            let default = if id == agency.default {
                " (the default location)"
            } else {
                ""
            };
            assert!(
                held.is_empty(),
                "{id}{default} made a lead of +{HELD}, held by {} on the other machine: {held:?}",
                agency.holder
            );
            assert!(
                gone.is_empty(),
                "{id}{default} made a lead of +{GONE}, last texted by {} on the other machine: {gone:?}",
                agency.holder
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_machines_end_where_one_process_running_every_location_ends() {
    let one = Agency::start(StateBackend::Postgres).await;
    let initial = effects_by_location(&one.h).await;
    play(&one, &Runners::One(one.h.pipeline.clone())).await;
    let expected = effects_by_location(&one.h).await;

    let two = Agency::start(StateBackend::Postgres).await;
    assert_eq!((&two.holder, &two.default), (&one.holder, &one.default));
    play(&two, &Runners::two_machines(&two.h)).await;
    let got = effects_by_location(&two.h).await;
    for (id, expected) in &expected {
        let twice = repeated(&initial[id], expected, &got[id]);
        assert!(twice.is_empty(), "location {id}: repeated {twice:?}");
        let differences = diff(expected, &got[id]);
        assert!(
            differences.is_empty(),
            "location {id}: {} differences from one process, e.g. {:?}",
            differences.len(),
            &differences[..differences.len().min(10)]
        );
    }
}

/// On a first night one machine may run before the other ever extracted its locations, and a
/// number held only there looks held by nobody. No lead is made of it until every location was
/// extracted once; after that it stays the holder's, never the default location's lead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_lead_is_made_while_the_other_machines_locations_were_never_extracted() {
    let agency = Agency::start(StateBackend::Postgres).await;
    let runners = Runners::two_machines(&agency.h);
    let Runners::TwoMachines { shard0, shard1, .. } = &runners else {
        unreachable!("two machines")
    };
    agency.add_contact("Held", HELD, &[]).await;
    agency.inbound(HELD, "Is Saturday still ok?").await;
    let held_by = |contacts: Vec<Value>| holders_of(&contacts, HELD).len();

    run_ok(shard0, &["run", "--shard", "0/2", "--json"]).await;
    assert_eq!(
        held_by(contacts_of(&agency.h, &agency.default).await),
        0,
        "the default location made a lead of +{HELD} before {}'s contacts were ever read",
        agency.holder
    );

    run_ok(shard1, &["run", "--shard", "1/2", "--json"]).await;
    run_ok(shard0, &["run", "--shard", "0/2", "--json"]).await;
    for id in ids(&agency.h) {
        let expected = usize::from(id == agency.holder);
        assert_eq!(
            held_by(contacts_of(&agency.h, &id).await),
            expected,
            "contacts of {id} with +{HELD} (held by {})",
            agency.holder
        );
    }
}
