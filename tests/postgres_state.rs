//! The PostgreSQL state store against a real server: the ledger's exactly-once operations shared
//! by connections (as runners on several machines share them), rows kept apart by (pipeline,
//! location), and the advisory lock that keeps two runners of one location apart and dies with its
//! holder. Each test has a database of its own (tests/common/postgres.rs).

mod common;

use common::effects;
use common::postgres::{StateBackend, TestDatabase};
use contactsync::load::ledger::{Ledger, OpStatus};
use contactsync::secret::Secret;
use contactsync::state::pg::PgTarget;
use contactsync::state::{LockError, StateStore};
use std::collections::HashSet;
use std::io::BufRead;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

fn target(db: &TestDatabase, location: &str) -> PgTarget {
    PgTarget {
        url: Secret::new(db.url.clone()),
        pipeline: "nightly".into(),
        location: location.into(),
    }
}

fn store(db: &TestDatabase, location: &str, state_dir: &std::path::Path) -> StateStore {
    StateStore {
        state_dir: state_dir.to_path_buf(),
        postgres: Some(target(db, location)),
    }
}

#[test]
fn the_ledger_keeps_intents_outcomes_and_owed_operations_per_location() {
    let db = TestDatabase::create();
    {
        let mut ledger = Ledger::open_postgres(&target(&db, "loc-a")).expect("open");
        ledger
            .begin("k1", "r1", "add_tags", "c1", "{}")
            .expect("begin");
        ledger
            .begin("k2", "r1", "send_sms", "+1", "{}")
            .expect("begin");
        ledger
            .finish("k1", OpStatus::Succeeded, Some(r#"{"ok":1}"#), None)
            .expect("finish");
        let owed = |key: &'static str| (key, "create_note", "c9".to_string(), "{}".to_string());
        assert_eq!(
            ledger
                .register_owed("r1", &[owed("k1"), owed("new")])
                .expect("owe"),
            1,
            "a settled operation is not owed again"
        );
    }
    // Reopened (another runner, another connection): what the first wrote is there.
    let ledger = Ledger::open_postgres(&target(&db, "loc-a")).expect("reopen");
    let k1 = ledger.get("k1").expect("get").expect("k1");
    assert_eq!(
        (k1.status, k1.result.as_deref()),
        (OpStatus::Succeeded, Some(r#"{"ok":1}"#))
    );
    let k2 = ledger.get("k2").expect("get").expect("k2");
    assert_eq!(k2.status, OpStatus::InFlight, "a crash leaves the intent");
    ledger
        .begin("k2", "r2", "send_sms", "+1", "{}")
        .expect("again");
    assert_eq!(ledger.get("k2").expect("get").expect("k2").attempts, 2);
    assert_eq!(
        ledger.get("new").expect("get").expect("new").status,
        OpStatus::Planned
    );
    let unfinished: Vec<(String, String)> = ledger
        .unfinished()
        .expect("unfinished")
        .into_iter()
        .map(|(key, run, _)| (key, run))
        .collect();
    assert_eq!(
        unfinished,
        [
            ("new".to_string(), "r1".to_string()),
            ("k2".into(), "r2".into())
        ]
    );
    assert_eq!(
        ledger.counts_for_run("r1").expect("counts"),
        [("planned".to_string(), 1), ("succeeded".to_string(), 1)]
    );
    assert!(ledger.get("nope").expect("get").is_none());
    // Another location of the same database sees none of it: the same key is its own operation.
    let other = Ledger::open_postgres(&target(&db, "loc-b")).expect("other location");
    assert!(other.get("k1").expect("get").is_none());
    assert!(other.unfinished().expect("unfinished").is_empty());
    other
        .begin("k1", "r1", "add_tags", "c1", "{}")
        .expect("begin");
    assert_eq!(
        other.get("k1").expect("get").expect("k1").status,
        OpStatus::InFlight
    );
    assert_eq!(
        ledger.get("k1").expect("get").expect("k1").status,
        OpStatus::Succeeded
    );
    // The reader audit and the history look-ups use sees the writer's rows.
    let reader = store(&db, "loc-a", std::path::Path::new("/nonexistent"))
        .open_ledger_reader()
        .expect("reader")
        .expect("a PostgreSQL ledger is always there");
    assert_eq!(
        reader.get("k1").expect("get").expect("k1").status,
        OpStatus::Succeeded
    );
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    assert_eq!(
        reader.contacts_touched_since(since).expect("touched"),
        ["c1"]
    );
    ledger
        .begin("del", "r2", "delete_contact", "c7", "{}")
        .expect("begin");
    ledger
        .finish("del", OpStatus::Succeeded, None, None)
        .expect("finish");
    assert_eq!(
        reader.contacts_deleted().expect("deleted"),
        HashSet::from(["c7".to_string()])
    );
}

/// Two runners registering the same owed operations at the same moment: each operation is
/// registered by exactly one of them; two beginning the same operation count two attempts.
#[test]
fn concurrent_registrations_of_one_operation_have_exactly_one_winner() {
    let db = TestDatabase::create();
    const KEYS: usize = 300;
    let keys: Vec<String> = (0..KEYS).map(|i| format!("op-{i:04}")).collect();
    let barrier = Arc::new(Barrier::new(2));
    let runners: Vec<_> = (0..2)
        .map(|runner| {
            let (target, keys, barrier) = (target(&db, "loc"), keys.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut ledger = Ledger::open_postgres(&target).expect("open");
                let ops: Vec<(&str, &str, String, String)> = keys
                    .iter()
                    .map(|k| (k.as_str(), "send_sms", "+1".to_string(), "{}".to_string()))
                    .collect();
                barrier.wait();
                let added = ledger
                    .register_owed(&format!("run-{runner}"), &ops)
                    .expect("register");
                barrier.wait();
                for key in &keys {
                    ledger
                        .begin(key, "r", "send_sms", "+1", "{}")
                        .expect("begin");
                }
                added
            })
        })
        .collect();
    let added: Vec<usize> = runners
        .into_iter()
        .map(|r| r.join().expect("runner"))
        .collect();
    assert_eq!(
        added.iter().sum::<usize>(),
        KEYS,
        "registered by each: {added:?}"
    );
    let ledger = Ledger::open_postgres(&target(&db, "loc")).expect("open");
    for key in &keys {
        let entry = ledger.get(key).expect("get").expect("row");
        assert_eq!(entry.attempts, 2, "{key}: an attempt was lost");
    }
}

/// Deduplication ids never repeat, across runners and across locations (one BulkSMS account may
/// serve them all), and a retry keeps its id.
#[test]
fn deduplication_ids_are_unique_across_runners_and_locations() {
    let db = TestDatabase::create();
    let now = 1_765_000_000_000_i64;
    let runners: Vec<_> = ["loc-a", "loc-b", "loc-a"]
        .into_iter()
        .enumerate()
        .map(|(runner, location)| {
            let target = target(&db, location);
            std::thread::spawn(move || {
                let ledger = Ledger::open_postgres(&target).expect("open");
                (0..300)
                    .map(|i| {
                        let key = format!("{runner}-{i}");
                        ledger
                            .begin(&key, "r", "send_sms", "+1", "{}")
                            .expect("begin");
                        let id = ledger.deduplication_id(&key, now).expect("id");
                        assert_eq!(ledger.deduplication_id(&key, now + 9).expect("again"), id);
                        id
                    })
                    .collect::<Vec<i32>>()
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for runner in runners {
        for id in runner.join().expect("runner") {
            assert!(seen.insert(id), "id {id} given twice");
        }
    }
    let ledger = Ledger::open_postgres(&target(&db, "loc-a")).expect("open");
    assert!(ledger.deduplication_id("never-begun", now).is_err());
}

#[test]
fn the_advisory_lock_excludes_a_second_runner_until_released() {
    let db = TestDatabase::create();
    let (here, there) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    // Two machines: two state directories, one database.
    let first = store(&db, "loc", here.path());
    let second = store(&db, "loc", there.path());
    let held = first.lock(Duration::ZERO).expect("first runner locks");
    match second.lock(Duration::ZERO) {
        Err(LockError::Held(what)) => assert!(what.contains("advisory lock"), "{what}"),
        Err(e) => panic!("expected Held, got {e}"),
        Ok(_) => panic!("a second runner took the lock of a running one"),
    }
    // Waiting: refused after the wait, not before.
    let started = Instant::now();
    assert!(matches!(
        second.lock(Duration::from_millis(700)),
        Err(LockError::Held(_))
    ));
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    // Another location of the same database is not held.
    drop(
        store(&db, "loc-2", there.path())
            .lock(Duration::ZERO)
            .expect("other location"),
    );
    // Released while the second waits: it gets the lock.
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        drop(held);
    });
    second
        .lock(Duration::from_secs(10))
        .expect("taken once released");
    releaser.join().expect("releaser");
}

/// The child half of the next test: holds the lock until killed.
#[test]
#[ignore = "run by the_advisory_lock_dies_with_a_killed_runner as its child process"]
fn hold_the_lock_until_killed() {
    let Ok(url) = std::env::var("CONTACTSYNC_TEST_LOCK_URL") else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let store = StateStore {
        state_dir: dir.path().to_path_buf(),
        postgres: Some(PgTarget {
            url: Secret::new(url),
            pipeline: "nightly".into(),
            location: "loc".into(),
        }),
    };
    let _lock = store.lock(Duration::ZERO).expect("child locks");
    println!("LOCKED");
    std::thread::sleep(Duration::from_secs(120));
}

/// `kill -9` of a runner holding the lock: the server ends its session and the next runner takes
/// the lock at once; no stale lock to clear by hand.
#[test]
fn the_advisory_lock_dies_with_a_killed_runner() {
    let db = TestDatabase::create();
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "hold_the_lock_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env("CONTACTSYNC_TEST_LOCK_URL", &db.url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().expect("stdout");
    let locked = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("LOCKED"));
    assert!(locked, "the child never took the lock");
    let dir = tempfile::tempdir().expect("dir");
    let here = store(&db, "loc", dir.path());
    assert!(
        matches!(here.lock(Duration::ZERO), Err(LockError::Held(_))),
        "the child holds the lock"
    );
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    here.lock(Duration::from_secs(5))
        .expect("the killed runner's lock is released");
}

/// The binary on a PostgreSQL store: a run while another machine's runner holds the location's
/// lock exits 6 and names it; then runs apply and a rerun writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_share_the_ledger_and_lock_of_the_database() {
    let h = common::effects::harness_with_triggers_on(
        common::effects::options(5, 40),
        StateBackend::Postgres,
    )
    .await;
    h.authorise().await;
    let held = common::postgres::lock_as_another_machine(&h.pipeline).await;
    let refused = h.run(&["run", "--json"]).await;
    assert_eq!(
        refused.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("advisory lock"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    drop(held);
    let initial = effects::effects(&h.control("state").await);
    h.run_ok(&["run", "--json"]).await;
    let after = effects::effects(&h.control("state").await);
    assert!(
        !effects::diff(&initial, &after).is_empty(),
        "the run wrote nothing"
    );
    assert!(
        !h.state_dir().join("ledger.sqlite").exists(),
        "the ledger is in PostgreSQL, not in the state directory"
    );
    let again = h.run_ok(&["run", "--json"]).await;
    assert_eq!(effects::count(&again, "planned_operations"), 0, "{again}");
    assert!(effects::diff(&after, &effects::effects(&h.control("state").await)).is_empty());
}

/// A database whose schema a newer build wrote is refused, not written with old assumptions.
#[test]
fn a_schema_newer_than_the_build_is_refused() {
    let db = TestDatabase::create();
    drop(Ledger::open_postgres(&target(&db, "loc")).expect("creates the schema"));
    let url = db.url.clone();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        client
            .batch_execute("INSERT INTO contactsync_schema_version (version) VALUES (99)")
            .expect("a newer schema");
    })
    .join()
    .expect("writer");
    match Ledger::open_postgres(&target(&db, "loc")) {
        Err(e) => assert!(e.to_string().contains("version 99"), "{e}"),
        Ok(_) => panic!("opened a schema newer than this build"),
    }
}

/// A store that cannot be reached fails the command with the URL, never its password.
#[test]
fn an_unreachable_store_is_named_without_its_password() {
    let dir = tempfile::tempdir().expect("dir");
    let store = StateStore {
        state_dir: dir.path().to_path_buf(),
        postgres: Some(PgTarget {
            url: Secret::new("postgres://app:pw-77zq@127.0.0.1:1/state?sslmode=disable"),
            pipeline: "nightly".into(),
            location: "loc".into(),
        }),
    };
    let lock = match store.lock(Duration::ZERO) {
        Err(e @ LockError::Postgres { .. }) => e.to_string(),
        Err(e) => panic!("expected a connection error, got {e}"),
        Ok(_) => panic!("locked a store that is not there"),
    };
    let ledger = match store.open_ledger() {
        Err(e) => e.to_string(),
        Ok(_) => panic!("opened a ledger that is not there"),
    };
    for err in [lock, ledger] {
        assert!(err.contains("127.0.0.1:1/state"), "{err}");
        assert!(!err.contains("pw-77zq"), "the password is shown: {err}");
    }
}

/// The agency's routing rows: two runners (two machines) each record the numbers of the locations
/// they extracted and the sends they planned; each reads the union. A location's numbers are
/// replaced whole, and pipelines sharing the database keep theirs apart.
#[test]
fn routing_rows_are_shared_by_runners_and_replaced_per_location() {
    use contactsync::state::pg_routing::PgRouting;
    let db = TestDatabase::create();
    let url = Secret::new(db.url.clone());
    let here = PgRouting::open(&url, "agency").expect("open");
    let there = PgRouting::open(&url, "agency").expect("open");
    let other_pipeline = PgRouting::open(&url, "another").expect("open");
    here.replace_numbers("loc-a", "r1", vec!["1".into(), "2".into(), "2".into()])
        .expect("a");
    there
        .replace_numbers("loc-b", "r1", vec!["2".into(), "3".into()])
        .expect("b");
    other_pipeline
        .replace_numbers("loc-a", "r1", vec!["9".into()])
        .expect("other");
    let all = ["loc-a".to_string(), "loc-b".into(), "loc-c".into()];
    let sorted = |routing: &PgRouting| {
        let stored = routing.numbers(&all).expect("numbers");
        let mut numbers = stored.numbers;
        numbers.sort();
        (numbers, stored.recorded)
    };
    let pair = |l: &str, n: &str| (l.to_string(), n.to_string());
    let (numbers, recorded) = sorted(&here);
    assert_eq!(
        numbers,
        [
            pair("loc-a", "1"),
            pair("loc-a", "2"),
            pair("loc-b", "2"),
            pair("loc-b", "3")
        ]
    );
    assert_eq!(recorded, ["loc-a".to_string(), "loc-b".into()].into());
    // The next extract of loc-a: its old numbers go, loc-b's stay.
    there
        .replace_numbers("loc-a", "r2", vec!["4".into()])
        .expect("a again");
    assert_eq!(
        sorted(&here).0,
        [pair("loc-a", "4"), pair("loc-b", "2"), pair("loc-b", "3")]
    );
    // Locations no longer in the pipeline's list do not count.
    let only_b = here.numbers(&["loc-b".to_string()]).expect("numbers");
    assert_eq!(only_b.numbers.len(), 2);

    here.record_sends("loc-a", vec!["cs1".into(), "cs2".into(), "cs1".into()])
        .expect("sends");
    there
        .record_sends("loc-b", vec!["cs2".into()])
        .expect("sends");
    let sent_by = there
        .sent_by(vec!["cs1".into(), "cs2".into(), "cs3".into()])
        .expect("sent by");
    assert_eq!(
        sent_by,
        [pair("cs1", "loc-a"), pair("cs2", "loc-b")]
            .into_iter()
            .collect()
    );
    assert!(
        other_pipeline
            .sent_by(vec!["cs1".into()])
            .expect("other")
            .is_empty()
    );
}

/// The certificate the machine's cluster serves (Debian's `ssl = on` default): self-signed, for
/// the name `localhost`.
const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

/// `url` with its `sslmode=disable` replaced by `params`.
fn with_tls(url: &str, params: &str) -> String {
    assert!(url.contains("sslmode=disable"), "{url}");
    url.replace("sslmode=disable", params)
}

/// Whether the server says the connection of `conn` is encrypted.
fn encrypted(conn: &contactsync::state::pg::PgConn) -> bool {
    conn.call(|client| {
        Ok(client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )?
            .get::<_, bool>(0))
    })
    .expect("pg_stat_ssl")
}

fn connect(url: &str) -> Result<contactsync::state::pg::PgConn, String> {
    contactsync::state::pg::PgConn::connect(&Secret::new(url.to_string()), "tls-test")
        .map_err(|e| error_chain(&e))
}

/// An error with its causes (the `postgres` client keeps the TLS stack's words in its source).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// `sslmode=require` encrypts (the server says so), and the ledger works over it; `disable` does
/// not. `verify-ca` trusts the server's certificate through `sslrootcert` whatever the host is
/// called, `verify-full` only for the name the certificate is for.
#[test]
fn tls_modes_encrypt_and_check_the_server_certificate_as_libpq_does() {
    let db = TestDatabase::create();
    assert!(
        !encrypted(&connect(&db.url).expect("disable")),
        "disable is plain"
    );
    let require = with_tls(&db.url, "sslmode=require");
    assert!(
        encrypted(&connect(&require).expect("require")),
        "require encrypts"
    );
    let mut over_tls = target(&db, "loc");
    over_tls.url = Secret::new(require);
    let ledger = Ledger::open_postgres(&over_tls).expect("the ledger over TLS");
    ledger
        .begin("k", "r", "add_tags", "c", "{}")
        .expect("begin");
    assert_eq!(ledger.get("k").expect("get").expect("k").attempts, 1);

    let verify_ca = with_tls(
        &db.url,
        &format!("sslmode=verify-ca&sslrootcert={SNAKEOIL}"),
    );
    assert!(encrypted(&connect(&verify_ca).expect("verify-ca")));
    // The certificate is for `localhost`: by that name verify-full accepts it...
    let by_name = with_tls(
        &db.url,
        &format!("sslmode=verify-full&sslrootcert={SNAKEOIL}"),
    )
    .replace("@127.0.0.1:", "@localhost:");
    assert!(encrypted(
        &connect(&by_name).expect("verify-full, right name")
    ));
    // ...by another (the URL's 127.0.0.1) it refuses, naming the server and why.
    let wrong_name = with_tls(
        &db.url,
        &format!("sslmode=verify-full&sslrootcert={SNAKEOIL}"),
    );
    let err = connect(&wrong_name)
        .map(|_| ())
        .expect_err("a certificate for another name");
    assert!(
        err.contains("127.0.0.1:")
            && err.contains("verify-full")
            && err.contains("not valid for name"),
        "{err}"
    );
    assert!(
        !err.contains(":contactsync_test@"),
        "the password is shown: {err}"
    );
    // CAs that never signed the snakeoil: verify-ca refuses it, and so does require when given a
    // root certificate (libpq's meaning).
    let public_cas = "/etc/ssl/certs/ca-certificates.crt";
    for mode in ["verify-ca", "require"] {
        let url = with_tls(&db.url, &format!("sslmode={mode}&sslrootcert={public_cas}"));
        let err = connect(&url).map(|_| ()).expect_err(mode);
        assert!(err.contains("UnknownIssuer"), "{mode}: {err}");
    }
}

/// A server without TLS: `require` (and above) never falls back to a plain connection; the error
/// names the server and says why, without the password. `prefer` connects plain, as libpq does.
#[test]
fn require_against_a_server_without_tls_fails_and_names_it() {
    let server = common::postgres::ThrowawayCluster::start_without_tls();
    for mode in ["require", "verify-ca", "verify-full"] {
        let err = connect(&server.url(mode)).map(|_| ()).expect_err(mode);
        assert!(
            err.contains(&format!(
                "connecting to 127.0.0.1:{} (sslmode={mode})",
                server.port
            )) && err.contains("server does not support TLS"),
            "{mode}: {err}"
        );
        assert!(
            !err.contains("pw-throwaway-5521"),
            "the password is shown: {err}"
        );
    }
    let plain = connect(&server.url("prefer")).expect("prefer falls back to plain");
    assert!(!encrypted(&plain));
}

/// One number from the test database (on a thread of its own: the `postgres` client refuses to
/// run inside the tests' runtime).
fn scalar(client: &mut postgres::Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// Operations whose intent was recorded (begun, whatever came of them).
const BEGUN: &str = "SELECT count(*) FROM contactsync_operations WHERE status <> 'planned'";

/// Waits (up to a minute) until `threshold` operations have succeeded, then ends the database
/// sessions of this test's database whose `application_name` is `contactsync {purpose}`, waits
/// until they are gone, and returns how many operations were begun by then.
fn cut_connection_when(url: String, purpose: &'static str, threshold: i64) -> i64 {
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("admin connects");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                Instant::now() < deadline,
                "the run never got {threshold} operations done"
            );
            let table = scalar(
                &mut client,
                "SELECT count(*) FROM pg_class WHERE relname = 'contactsync_operations'",
            );
            if table > 0
                && scalar(
                    &mut client,
                    "SELECT count(*) FROM contactsync_operations WHERE status = 'succeeded'",
                ) >= threshold
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let name = format!("contactsync {purpose}");
        let ended = terminate_and_wait(&mut client, &name);
        assert_eq!(ended, 1, "one {name} session to end");
        scalar(&mut client, BEGUN)
    })
    .join()
    .expect("the cutter")
}

/// A harness whose first run has many operations to apply (welcome texts for 60 contacts), and
/// what a clean run of the same sandbox ends with.
async fn a_load_to_interrupt(
    seed: u64,
) -> (
    common::Harness,
    std::collections::BTreeMap<String, usize>,
    std::collections::BTreeMap<String, usize>,
) {
    let clean =
        effects::harness_with_triggers_on(effects::options(seed, 60), StateBackend::Local).await;
    clean.authorise().await;
    let expected = effects::converge(&clean, 1).await;
    let h =
        effects::harness_with_triggers_on(effects::options(seed, 60), StateBackend::Postgres).await;
    h.authorise().await;
    let initial = effects::effects(&h.control("state").await);
    // Slow answers, so the load is still going when a connection is cut.
    h.control_post("faults", serde_json::json!({"slow": 1.0, "slow_ms": 40}))
        .await;
    (h, initial, expected)
}

/// Issue 24: the server drops the ledger's connection in the middle of a load (as a restart or
/// an administrator would). The ledger connects again and carries on: the run ends well, every
/// effect happened once, and nothing is left for the next run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_ledger_connection_is_made_again_and_every_effect_happens_once() {
    let (h, initial, expected) = a_load_to_interrupt(41).await;
    let url = h.state_db.as_ref().expect("database").url.clone();
    let cutter = tokio::task::spawn_blocking(move || cut_connection_when(url, "ledger", 5));
    let out = h.run(&["run", "--json"]).await;
    cutter.await.expect("cutter");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    h.control_post("faults", serde_json::json!({"name": "none"}))
        .await;
    let got = effects::effects(&h.control("state").await);
    assert!(effects::repeated(&initial, &expected, &got).is_empty());
    let differences = effects::diff(&expected, &got);
    assert!(differences.is_empty(), "{differences:?}");
    let again = h.run_ok(&["run", "--json"]).await;
    assert_eq!(effects::count(&again, "planned_operations"), 0, "{again}");
}

/// Issue 24: the session holding the run's advisory lock ends mid-load. Another runner could take
/// the lock now, so the run must not go on unlocked: it stops before its next write, with an error
/// saying so, and the next run finishes the work, nothing lost, nothing done twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lock_session_stops_the_run_and_the_next_run_finishes_it() {
    let (h, initial, expected) = a_load_to_interrupt(42).await;
    let url = h.state_db.as_ref().expect("database").url.clone();
    let cut_url = url.clone();
    let cutter = tokio::task::spawn_blocking(move || cut_connection_when(cut_url, "lock", 5));
    let out = h.run(&["run", "--json"]).await;
    let begun_at_cut = cutter.await.expect("cutter");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("advisory lock is no longer held") && stderr.contains("run again"),
        "{stderr}"
    );
    // Not one intent recorded once the lock's session was gone (one may have been checked just
    // before, and written just after, the count).
    let begun = std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        scalar(&mut client, BEGUN)
    })
    .join()
    .expect("count");
    assert!(
        begun <= begun_at_cut + 1,
        "{begun} begun, {begun_at_cut} when the lock was lost"
    );
    h.control_post("faults", serde_json::json!({"name": "none"}))
        .await;
    let rerun = h.run_ok(&["run", "--json"]).await;
    assert!(
        effects::count(&rerun, "applied") > 0,
        "the rerun did the rest: {rerun}"
    );
    let got = effects::effects(&h.control("state").await);
    assert!(effects::repeated(&initial, &expected, &got).is_empty());
    let differences = effects::diff(&expected, &got);
    assert!(differences.is_empty(), "{differences:?}");
}

/// Ends the sessions of this database with application name `name` and waits until they are
/// gone; how many were ended.
fn terminate_and_wait(client: &mut postgres::Client, name: &str) -> usize {
    let ended = client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = $1 AND datname = current_database()",
            &[&name],
        )
        .expect("terminate");
    while client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE application_name = $1 AND datname = current_database()",
            &[&name],
        )
        .expect("sessions")
        .get::<_, i64>(0)
        > 0
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    ended.len()
}

/// Ends this database's sessions named `contactsync {purpose}` and waits until they are gone.
fn end_sessions(db: &TestDatabase, purpose: &str) {
    let (url, name) = (db.url.clone(), format!("contactsync {purpose}"));
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        let ended = terminate_and_wait(&mut client, &name);
        assert!(ended > 0, "no {name} session");
    })
    .join()
    .expect("end sessions");
}

/// The ledger's and the routing's connections, ended by the server between two statements, are
/// made again and the next statement runs once: an attempt is counted once, not lost, not twice.
#[test]
fn ledger_and_routing_connections_ended_between_statements_are_made_again() {
    let db = TestDatabase::create();
    let ledger = Ledger::open_postgres(&target(&db, "loc")).expect("open");
    ledger
        .begin("k", "r1", "send_sms", "+1", "{}")
        .expect("begin");
    end_sessions(&db, "ledger");
    ledger
        .begin("k", "r2", "send_sms", "+1", "{}")
        .expect("begin on a new connection");
    let entry = ledger.get("k").expect("get").expect("k");
    assert_eq!((entry.status, entry.attempts), (OpStatus::InFlight, 2));
    end_sessions(&db, "ledger");
    ledger
        .finish("k", OpStatus::Succeeded, Some("{}"), None)
        .expect("finish on a new connection");
    assert_eq!(
        ledger.get("k").expect("get").expect("k").status,
        OpStatus::Succeeded
    );

    let routing =
        contactsync::state::pg_routing::PgRouting::open(&Secret::new(db.url.clone()), "agency")
            .expect("routing");
    routing
        .replace_numbers("loc", "r1", vec!["1".into()])
        .expect("numbers");
    end_sessions(&db, "routing");
    let stored = routing
        .numbers(&["loc".to_string()])
        .expect("numbers again");
    assert_eq!(stored.numbers, [("loc".to_string(), "1".to_string())]);
}

/// The lock's session ended: the ledger of the same location refuses the next intent (another
/// runner may hold the lock now), and no reconnect brings the lock back.
#[test]
fn a_ledger_refuses_intents_once_its_run_lock_session_is_gone() {
    let db = TestDatabase::create();
    let dir = tempfile::tempdir().expect("dir");
    let lock = store(&db, "loc", dir.path())
        .lock(Duration::ZERO)
        .expect("locked");
    let ledger = Ledger::open_postgres(&target(&db, "loc")).expect("open");
    ledger
        .begin("k1", "r", "add_tags", "c1", "{}")
        .expect("begin while locked");
    end_sessions(&db, "lock");
    let err = ledger
        .begin("k2", "r", "add_tags", "c2", "{}")
        .expect_err("the lock is gone");
    assert!(err.is_lock_lost(), "{err}");
    assert!(
        err.to_string().contains("advisory lock is no longer held"),
        "{err}"
    );
    assert!(
        ledger.get("k2").expect("get").is_none(),
        "no intent recorded"
    );
    // Another runner takes the lock now.
    let there = tempfile::tempdir().expect("dir");
    let other = store(&db, "loc", there.path())
        .lock(Duration::ZERO)
        .expect("the lock is free for another runner");
    drop(other);
    drop(lock);
    // Without the lock (this process holds none now) the ledger records intents as before.
    ledger
        .begin("k2", "r", "add_tags", "c2", "{}")
        .expect("begin, no lock held");
}

/// What [`LosingProxy`] does to the next `begin` upsert it sees.
const PASS: u8 = 0;
/// Forwards the statement, lets the server commit it, then cuts both sides: the answer is lost.
const LOSE_ANSWER: u8 = 1;
/// Cuts both sides instead of forwarding the statement: it never reaches the server.
const LOSE_STATEMENT: u8 = 2;

/// A TCP proxy in front of the test server that cuts the connection around the ledger's `begin`
/// upsert, to show what happens when a statement's outcome is unknown. Plain connections only.
struct LosingProxy {
    port: u16,
    mode: Arc<std::sync::atomic::AtomicU8>,
    cuts: Arc<std::sync::atomic::AtomicU32>,
}

impl LosingProxy {
    fn start(upstream: u16) -> LosingProxy {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mode = Arc::new(AtomicU8::new(PASS));
        let cuts = Arc::new(AtomicU32::new(0));
        let (accept_mode, accept_cuts) = (mode.clone(), cuts.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let mut server =
                    std::net::TcpStream::connect(("127.0.0.1", upstream)).expect("upstream");
                let (mode, cuts) = (accept_mode.clone(), accept_cuts.clone());
                let muted = Arc::new(AtomicBool::new(false));
                let (mut from_server, mut to_client) = (
                    server.try_clone().expect("clone"),
                    client.try_clone().expect("clone"),
                );
                let relay_muted = muted.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n @ 1..) = from_server.read(&mut buf) {
                        if relay_muted.load(Ordering::SeqCst)
                            || to_client.write_all(&buf[..n]).is_err()
                        {
                            return;
                        }
                    }
                });
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    // The upsert is prepared (Parse) and then executed (Bind/Execute) in a later
                    // write, once the server has answered the Parse.
                    let mut prepared = false;
                    while let Ok(n @ 1..) = client.read(&mut buf) {
                        let chunk = &buf[..n];
                        let action = mode.load(Ordering::SeqCst);
                        if action != PASS && prepared {
                            muted.store(true, Ordering::SeqCst);
                            if action == LOSE_ANSWER {
                                let _ = server.write_all(chunk);
                                // The server runs and commits it (autocommit) meanwhile.
                                std::thread::sleep(Duration::from_millis(300));
                            }
                            mode.store(PASS, Ordering::SeqCst);
                            cuts.fetch_add(1, Ordering::SeqCst);
                            let _ = server.shutdown(std::net::Shutdown::Both);
                            let _ = client.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        let needle = b"INSERT INTO contactsync_operations AS o";
                        prepared =
                            action != PASS && chunk.windows(needle.len()).any(|w| w == needle);
                        if server.write_all(chunk).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        LosingProxy { port, mode, cuts }
    }
}

/// The connection is cut while `begin` records an intent, once after the server committed it (the
/// answer lost) and once before the statement reached it: either way the intent is recorded and
/// its attempt counted once. Run again blindly, the first would count two attempts.
#[test]
fn an_intent_whose_answer_was_lost_is_read_back_not_counted_twice() {
    use std::sync::atomic::Ordering;
    let db = TestDatabase::create();
    let upstream = url::Url::parse(&db.url).expect("url").port().expect("port");
    let proxy = LosingProxy::start(upstream);
    let mut through = target(&db, "loc");
    through.url = Secret::new(db.url.replace(
        &format!("127.0.0.1:{upstream}/"),
        &format!("127.0.0.1:{}/", proxy.port),
    ));
    let ledger = Ledger::open_postgres(&through).expect("open through the proxy");
    for (key, mode) in [("answer-lost", LOSE_ANSWER), ("never-sent", LOSE_STATEMENT)] {
        let cuts = proxy.cuts.load(Ordering::SeqCst);
        proxy.mode.store(mode, Ordering::SeqCst);
        ledger
            .begin(key, "r1", "send_sms", "+1", "{}")
            .expect("begin, over a new connection");
        assert_eq!(
            proxy.cuts.load(Ordering::SeqCst),
            cuts + 1,
            "{key}: not cut"
        );
        let entry = ledger.get(key).expect("get").expect(key);
        assert_eq!(
            (entry.status, entry.attempts),
            (OpStatus::InFlight, 1),
            "{key}"
        );
    }
}
