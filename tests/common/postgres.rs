//! A real PostgreSQL server for the tests of the shared state store, and a fresh database per test.
//!
//! `CONTACTSYNC_TEST_PG_URL` names a server to use (a URL whose role may `CREATE DATABASE`; its
//! database part is replaced per test). Otherwise the machine's own cluster is started if it is
//! down (`pg_ctlcluster`, as root) and a password role `contactsync_test` is created in it once,
//! so the tests connect over loopback the way a runner does. No PostgreSQL: the tests fail and
//! say so; they never pass without a server.

use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

const ROLE: &str = "contactsync_test";

/// `postgres://…/DB?…` with `DB` replaced by `database`.
fn with_database(base: &str, database: &str) -> String {
    let mut url = url::Url::parse(base).unwrap_or_else(|e| panic!("bad server URL {base}: {e}"));
    url.set_path(&format!("/{database}"));
    url.to_string()
}

/// The URL of a server the tests may create databases on, started and set up on first use.
pub fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("CONTACTSYNC_TEST_PG_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => start_local_cluster(),
    })
}

/// Starts the machine's first PostgreSQL cluster if it is down and makes sure the test role exists.
fn start_local_cluster() -> String {
    let clusters = Command::new("pg_lsclusters").arg("-h").output().unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not installed (pg_lsclusters: {e}): the state-store tests need a real \
             server. Install it (Debian: apt-get install postgresql) or set \
             CONTACTSYNC_TEST_PG_URL to a server whose role may create databases"
        )
    });
    let listing = String::from_utf8_lossy(&clusters.stdout).to_string();
    // "15 main 5432 down postgres /var/lib/... /var/log/..."
    let first: Vec<&str> = listing
        .lines()
        .next()
        .unwrap_or_else(|| panic!("PostgreSQL is installed but has no cluster (pg_lsclusters)"))
        .split_whitespace()
        .collect();
    let (version, name, port, status) = (first[0], first[1], first[2], first[3]);
    if status != "online" {
        let started = Command::new("pg_ctlcluster")
            .args([version, name, "start"])
            .output()
            .expect("pg_ctlcluster runs");
        // Two test binaries starting it at once: the second's start fails as already running.
        let listing = Command::new("pg_lsclusters")
            .arg("-h")
            .output()
            .expect("pg_lsclusters");
        assert!(
            String::from_utf8_lossy(&listing.stdout).contains(" online "),
            "pg_ctlcluster {version} {name} start failed: {}",
            String::from_utf8_lossy(&started.stderr)
        );
    }
    // As the server's superuser, over its socket (peer authentication): a password role for tests.
    let create_role = format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN \
         CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{ROLE}'; END IF; END $$;"
    );
    let psql = Command::new("runuser")
        .args([
            "-u",
            "postgres",
            "--",
            "psql",
            "-p",
            port,
            "-qAtc",
            &create_role,
        ])
        .output()
        .expect("runuser psql runs (the tests run as root, as CI does)");
    let stderr = String::from_utf8_lossy(&psql.stderr);
    // A concurrent creation from another test binary is fine.
    assert!(
        psql.status.success() || stderr.contains("already exists"),
        "creating the test role failed: {stderr}"
    );
    format!("postgres://{ROLE}:{ROLE}@127.0.0.1:{port}/postgres?sslmode=disable")
}

/// Runs one statement on the server's maintenance database (on a thread of its own: the
/// `postgres` client refuses to run inside the tests' tokio runtime).
fn admin(sql: String) {
    let url = server_url().to_string();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connecting to the test server {url}: {e}"));
        client
            .batch_execute(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    })
    .join()
    .expect("admin statement");
}

/// A database of its own for one test, dropped with it.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub fn create() -> TestDatabase {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .subsec_nanos();
        let name = format!(
            "cs_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        admin(format!("CREATE DATABASE {name}"));
        TestDatabase {
            url: with_database(server_url(), &name),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let url = server_url().to_string();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Best effort: a leftover test database is harmless.
        let _ = std::thread::spawn(move || {
            if let Ok(mut client) = postgres::Client::connect(&url, postgres::NoTls) {
                let _ = client.batch_execute(&sql);
            }
        })
        .join();
    }
}

/// Where a test's pipeline keeps its ledger and lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateBackend {
    /// SQLite and a lock file in the state directory (the default).
    Local,
    /// A fresh PostgreSQL database (`[state] url`).
    Postgres,
}

impl StateBackend {
    /// `CONTACTSYNC_TEST_STATE=postgres` runs every harness's pipeline on PostgreSQL.
    pub fn from_env() -> StateBackend {
        match std::env::var("CONTACTSYNC_TEST_STATE").as_deref() {
            Ok("postgres") => StateBackend::Postgres,
            Ok("local") | Ok("") | Err(_) => StateBackend::Local,
            Ok(other) => panic!("CONTACTSYNC_TEST_STATE={other}: expected local or postgres"),
        }
    }
}

/// The run lock of `pipeline`'s location, taken as a runner on another machine would: the same
/// database, its own state folder. Held until the returned values are dropped.
pub async fn lock_as_another_machine(
    pipeline: &std::path::Path,
) -> (contactsync::state::StateLock, tempfile::TempDir) {
    let config = contactsync::config::PipelineConfig::load(pipeline).expect("pipeline");
    let elsewhere = tempfile::tempdir().expect("another machine's state dir");
    let mut other_machine = config.state_store();
    other_machine.state_dir = elsewhere.path().to_path_buf();
    let held = tokio::task::spawn_blocking(move || other_machine.lock(std::time::Duration::ZERO))
        .await
        .expect("join")
        .expect("the other machine locks");
    (held, elsewhere)
}

/// A PostgreSQL server of its own, started from `initdb` in a temporary folder, for what the
/// machine's cluster cannot show (it has `ssl = on`): here `ssl = off`. Trust authentication on
/// loopback, a free port; stopped and removed when dropped.
pub struct ThrowawayCluster {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    pub port: u16,
}

impl ThrowawayCluster {
    /// Starts a server without TLS.
    pub fn start_without_tls() -> ThrowawayCluster {
        server_url(); // The machine's PostgreSQL is installed and its version known.
        let listing = Command::new("pg_lsclusters")
            .arg("-h")
            .output()
            .expect("pg_lsclusters");
        let version = String::from_utf8_lossy(&listing.stdout)
            .split_whitespace()
            .next()
            .expect("a cluster's version")
            .to_string();
        let bin = std::path::PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"));
        let dir = tempfile::tempdir().expect("tempdir");
        // initdb and the server refuse to run as root.
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .expect("chown");
        assert!(chown.success(), "chown of {}", dir.path().display());
        let as_postgres = |program: &str, args: &[&str]| {
            let out = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin.join(program))
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("{program}: {e}"));
            assert!(
                out.status.success(),
                "{program} {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let data = dir.path().join("data");
        let data = data.to_str().expect("utf-8 path");
        as_postgres(
            "initdb",
            &["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c ssl=off -k {}",
            dir.path().display()
        );
        let log = dir.path().join("log");
        as_postgres(
            "pg_ctl",
            &[
                "-D",
                data,
                "-o",
                &options,
                "-l",
                log.to_str().expect("utf-8 path"),
                "-w",
                "start",
            ],
        );
        ThrowawayCluster { dir, bin, port }
    }

    /// The URL of its `postgres` database with `sslmode`; the password is there only to be
    /// looked for in messages (trust authentication ignores it).
    pub fn url(&self, ssl_mode: &str) -> String {
        format!(
            "postgres://postgres:pw-throwaway-5521@127.0.0.1:{}/postgres?sslmode={ssl_mode}",
            self.port
        )
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
