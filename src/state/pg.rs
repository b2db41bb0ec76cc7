//! PostgreSQL as the shared state store: one connection per use (the ledger, the run's lock, the
//! agency's routing), the schema created and migrated on open, and the advisory lock that keeps two
//! runners of one (pipeline, location) apart.
//!
//! Each connection lives on a thread of its own and the callers hand it jobs: the `postgres` client
//! blocks on a runtime of its own, which tokio refuses inside the async load (which calls the
//! ledger as it calls SQLite, synchronously, between two HTTP calls).

pub use super::pg_error::PgError;
use super::pg_session::{Connect, Reconnect, Session};
use super::pg_tls::ConnectSpec;
use crate::secret::Secret;
use postgres::Client;
use sha2::{Digest, Sha256};
use std::sync::{Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

/// The schema version this build writes; `migrate` brings an older database up to it.
pub const SCHEMA_VERSION: i32 = 3;

/// An advisory-lock key that only the schema migration takes, so two runners opening a new
/// database at once do not both create its tables.
const MIGRATION_LOCK: i64 = 0x636f_6e74_6163_7473; // "contacts"

/// Which rows of a shared database are one pipeline location's: every table is keyed by the
/// pipeline's name and the GHL location id.
/// `Debug` shows the URL as `[redacted]` (a [`Secret`]).
#[derive(Debug, Clone)]
pub struct PgTarget {
    /// `[state] url`, with its password: never printed (see [`PgTarget::display`]).
    pub url: Secret,
    pub pipeline: String,
    pub location: String,
}

impl PgTarget {
    /// How errors name the store: the URL without its password, and the rows' keys.
    pub fn display(&self) -> String {
        format!(
            "{} (pipeline {:?}, location {:?})",
            redacted_url(&self.url),
            self.pipeline,
            self.location
        )
    }

    /// The advisory-lock key of this (pipeline, location): the first 8 bytes of a SHA-256, the
    /// same on every machine and every build (Rust's own hashers are neither).
    pub fn lock_key(&self) -> i64 {
        let mut hash = Sha256::new();
        hash.update(b"contactsync state lock\0");
        hash.update(self.pipeline.as_bytes());
        hash.update(b"\0");
        hash.update(self.location.as_bytes());
        let digest = hash.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(first)
    }
}

/// `[state] url` with its password replaced by `***`: how messages name the database.
pub fn redacted_url(url: &Secret) -> String {
    match url::Url::parse(url.expose()) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "postgres (unparsable url)".to_string(),
    }
}

type Job = Box<dyn FnOnce(&mut Session<Client>) + Send>;

/// One PostgreSQL connection, owned by a thread that runs the jobs it is given in order, made
/// again when the server drops it if it was opened to be (see [`super::pg_session`]).
/// Dropping it closes the connection (which also releases its session advisory locks).
pub struct PgConn {
    jobs: Option<mpsc::Sender<Job>>,
    worker: Option<JoinHandle<()>>,
}

impl PgConn {
    /// Connects (`purpose` names the thread and the session's `application_name`), reconnecting
    /// when the server drops the connection, and brings the schema up to [`SCHEMA_VERSION`]: the
    /// ledger's and the routing's connections.
    pub fn open(target: &PgTarget, purpose: &str) -> Result<PgConn, PgError> {
        let conn = PgConn::connect_with(&target.url, purpose, Some(Reconnect::standard()))?;
        conn.call_repeatable(|client, _| migrate(client))?;
        Ok(conn)
    }

    /// [`PgConn::open`] for a session that must not outlive its connection (the run's lock):
    /// once lost, it is not made again.
    pub fn open_session(target: &PgTarget, purpose: &str) -> Result<PgConn, PgError> {
        let conn = PgConn::connect_with(&target.url, purpose, None)?;
        conn.call(migrate)?;
        Ok(conn)
    }

    /// Connects without touching the schema (`check` reads, it does not create); not made again.
    pub fn connect(url: &Secret, purpose: &str) -> Result<PgConn, PgError> {
        PgConn::connect_with(url, purpose, None)
    }

    /// Connects; with `reconnect`, a connection the server drops is made again.
    pub fn connect_with(
        url: &Secret,
        purpose: &str,
        reconnect: Option<Reconnect>,
    ) -> Result<PgConn, PgError> {
        let spec = ConnectSpec::parse(url.expose()).map_err(PgError::Url)?;
        let mut config = spec.config.clone();
        config.application_name(&format!("contactsync {purpose}"));
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let server = spec.server();
        let tls = spec.connector().map_err(|reason| PgError::Tls {
            server: server.clone(),
            reason,
        })?;
        let ssl_mode = spec.ssl_mode.as_str();
        let mut connect: Connect<Client> = Box::new(move || {
            config
                .connect(tls.clone())
                .map_err(|source| PgError::Connect {
                    server: server.clone(),
                    ssl_mode,
                    source,
                })
        });
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready, connected) = mpsc::sync_channel(1);
        let worker = std::thread::Builder::new()
            .name(format!("contactsync-pg-{purpose}"))
            .spawn(move || {
                let client = match connect() {
                    Ok(client) => {
                        let _ = ready.send(Ok(()));
                        client
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let mut session = Session::new(client, connect, reconnect);
                for job in inbox {
                    job(&mut session);
                }
            })
            .map_err(PgError::Thread)?;
        let conn = PgConn {
            jobs: Some(jobs),
            worker: Some(worker),
        };
        connected.recv().map_err(|_| PgError::WorkerGone)??;
        Ok(conn)
    }

    /// Runs `job` on the connection once and waits for its answer: a job whose outcome, should
    /// the connection be lost during it, is the caller's to settle (or that reads only, on a
    /// connection that is not made again).
    pub fn call<R, F>(&self, job: F) -> Result<R, PgError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Client) -> Result<R, PgError> + Send + 'static,
    {
        self.send(move |session| session.once(job))
    }

    /// Runs `job`, and again on a new connection if the connection is lost during it; its flag
    /// says an earlier run's answer was lost (it may have committed). For reads and idempotent
    /// writes, or a job that reads back what it did when told.
    pub fn call_repeatable<R, F>(&self, job: F) -> Result<R, PgError>
    where
        R: Send + 'static,
        F: FnMut(&mut Client, bool) -> Result<R, PgError> + Send + 'static,
    {
        self.send(move |session| session.repeatable(job))
    }

    fn send<R, F>(&self, job: F) -> Result<R, PgError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Session<Client>) -> Result<R, PgError> + Send + 'static,
    {
        let (answer, answered) = mpsc::sync_channel(1);
        let jobs = self.jobs.as_ref().ok_or(PgError::WorkerGone)?;
        jobs.send(Box::new(move |session: &mut Session<Client>| {
            let _ = answer.send(job(session));
        }))
        .map_err(|_| PgError::WorkerGone)?;
        answered.recv().map_err(|_| PgError::WorkerGone)?
    }
}

impl Drop for PgConn {
    fn drop(&mut self) {
        // Closing the inbox ends the thread's loop, which drops (closes) the connection.
        self.jobs.take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Creates the tables of a new database, or upgrades an older schema, under a transaction-level
/// advisory lock so concurrent openers take turns. Every table's key starts with
/// (pipeline, location_id): many pipelines and locations share one database.
fn migrate(client: &mut Client) -> Result<(), PgError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS contactsync_schema_version (version INTEGER NOT NULL)",
    )?;
    let found: Option<i32> = tx
        .query_opt("SELECT max(version) FROM contactsync_schema_version", &[])?
        .and_then(|row| row.get(0));
    let found = found.unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(PgError::SchemaTooNew {
            found,
            build: SCHEMA_VERSION,
        });
    }
    if found < 1 {
        tx.batch_execute(
            "CREATE TABLE contactsync_operations (
                pipeline TEXT NOT NULL,
                location_id TEXT NOT NULL,
                key TEXT NOT NULL,
                run_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                target TEXT NOT NULL,
                payload TEXT NOT NULL,
                status TEXT NOT NULL,
                attempts BIGINT NOT NULL DEFAULT 0,
                result TEXT,
                error TEXT,
                deduplication_id BIGINT,
                updated_at TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (pipeline, location_id, key)
            );
            CREATE INDEX contactsync_operations_run
                ON contactsync_operations (pipeline, location_id, run_id);
            CREATE INDEX contactsync_operations_updated
                ON contactsync_operations (pipeline, location_id, updated_at);
            -- Counters shared by every pipeline and location of the database: BulkSMS accounts
            -- are shared by locations, and a deduplication id must not repeat across them.
            CREATE TABLE contactsync_counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
            INSERT INTO contactsync_schema_version (version) VALUES (1);",
        )?;
    }
    if found < 2 {
        tx.batch_execute(
            "-- The agency's routing of one BulkSMS account over its locations, shared by the
            -- runners of every shard: which numbers each location's contacts hold (replaced
            -- after each extract of it) and which location planned each send.
            CREATE TABLE contactsync_location_numbers (
                pipeline TEXT NOT NULL,
                location_id TEXT NOT NULL,
                number TEXT NOT NULL,
                PRIMARY KEY (pipeline, location_id, number)
            );
            CREATE TABLE contactsync_location_extracts (
                pipeline TEXT NOT NULL,
                location_id TEXT NOT NULL,
                run_id TEXT NOT NULL,
                numbers BIGINT NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (pipeline, location_id)
            );
            CREATE TABLE contactsync_sends (
                pipeline TEXT NOT NULL,
                user_supplied_id TEXT NOT NULL,
                location_id TEXT NOT NULL,
                recorded_at TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (pipeline, user_supplied_id)
            );
            INSERT INTO contactsync_schema_version (version) VALUES (2);",
        )?;
    }
    if found < 3 {
        tx.batch_execute(
            "-- The agency's (Company) grant of each pipeline, shared by its runners on every
            -- machine; refreshed under an advisory lock (state::pg_grant). The company is known
            -- only from the grant, so the pipeline alone keys it: one agency grant per pipeline.
            CREATE TABLE contactsync_agency_grants (
                pipeline TEXT PRIMARY KEY,
                company_id TEXT,
                grant_json TEXT NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL
            );
            INSERT INTO contactsync_schema_version (version) VALUES (3);",
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// The schema version a database holds, `None` when contactsync never wrote to it (the first
/// run creates the tables). Reads only.
pub fn schema_version(client: &mut Client) -> Result<Option<i32>, PgError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('contactsync_schema_version') IS NOT NULL",
            &[],
        )?
        .try_get(0)?;
    if !exists {
        return Ok(None);
    }
    Ok(client
        .query_one("SELECT max(version) FROM contactsync_schema_version", &[])?
        .try_get(0)?)
}

/// The run's lock in PostgreSQL: a session advisory lock on [`PgTarget::lock_key`], held by a
/// connection of its own for as long as this value lives. The server releases it when the
/// connection ends, so a runner killed with `kill -9` leaves no stale lock. That connection is
/// never made again: if it is lost, so is the lock, and the ledger refuses to record another
/// intent ([`held_lock`]), which stops the run before its next write.
pub struct PgLock {
    _conn: PgConn,
    /// Where it is held ([`redacted_url`]) and by which session: its entry in [`held_lock`]'s list.
    store: String,
    session: LockSession,
}

/// The database session that holds a run lock of this process: the ledger checks it still does
/// before each intent it records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockSession {
    /// [`PgTarget::lock_key`].
    pub key: i64,
    /// The backend's process id, and when it started (microseconds since 1970): a pid may be
    /// reused by a later session, the pair is not.
    pub pid: i32,
    pub started_us: i64,
}

impl LockSession {
    /// The key as `pg_locks` shows a bigint advisory lock: high half in `classid`, low in `objid`.
    pub fn classid_objid(&self) -> (u32, u32) {
        let key = self.key as u64;
        ((key >> 32) as u32, key as u32)
    }
}

/// The run locks this process holds, by database (its URL without the password) and key. The
/// ledger and the lock are opened by different layers of a command (and `serve` takes the lock per
/// micro-batch), so the ledger finds its lock here.
static HELD_LOCKS: Mutex<Vec<(String, LockSession)>> = Mutex::new(Vec::new());

/// The session holding the run lock of `target` in this process, if this process holds it.
pub fn held_lock(target: &PgTarget) -> Option<LockSession> {
    let (store, key) = (redacted_url(&target.url), target.lock_key());
    HELD_LOCKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(s, session)| *s == store && session.key == key)
        .map(|(_, session)| *session)
}

impl PgLock {
    /// Takes the lock, polling every 200 ms for up to `wait`; `Ok(None)` when another session
    /// still holds it then.
    pub fn acquire(target: &PgTarget, wait: Duration) -> Result<Option<PgLock>, PgError> {
        let conn = PgConn::open_session(target, "lock")?;
        let key = target.lock_key();
        let deadline = std::time::Instant::now() + wait;
        loop {
            let taken = conn.call(move |client| {
                Ok(client
                    .query_one("SELECT pg_try_advisory_lock($1)", &[&key])?
                    .get::<_, bool>(0))
            })?;
            if taken {
                let (pid, started_us) = conn.call(|client| {
                    let row = client.query_one(
                        "SELECT pid, (extract(epoch FROM backend_start) * 1000000)::bigint
                         FROM pg_stat_activity WHERE pid = pg_backend_pid()",
                        &[],
                    )?;
                    Ok((row.try_get(0)?, row.try_get(1)?))
                })?;
                let session = LockSession {
                    key,
                    pid,
                    started_us,
                };
                let store = redacted_url(&target.url);
                let mut held = HELD_LOCKS.lock().unwrap_or_else(|e| e.into_inner());
                // A session of this process that held it before is gone (else this one could
                // not have taken it).
                held.retain(|(s, other)| !(*s == store && other.key == key));
                held.push((store.clone(), session));
                drop(held);
                return Ok(Some(PgLock {
                    _conn: conn,
                    store,
                    session,
                }));
            }
            if std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for PgLock {
    fn drop(&mut self) {
        HELD_LOCKS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(store, session)| !(*store == self.store && *session == self.session));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(pipeline: &str, location: &str) -> PgTarget {
        PgTarget {
            url: Secret::new("postgres://app:hunter2@db.internal:5432/state?sslmode=disable"),
            pipeline: pipeline.into(),
            location: location.into(),
        }
    }

    #[test]
    fn lock_keys_are_stable_and_tell_locations_apart() {
        // A constant: runners built at different times on different machines must agree.
        assert_eq!(target("p", "loc").lock_key(), target("p", "loc").lock_key());
        // The first 8 bytes of sha256(b"contactsync state lock\0p\0loc"), big-endian, signed.
        assert_eq!(target("p", "loc").lock_key(), -7_171_600_721_339_151_746);
        assert_ne!(
            target("p", "loc").lock_key(),
            target("p", "loc2").lock_key()
        );
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(target("ab", "c").lock_key(), target("a", "bc").lock_key());
    }

    #[test]
    fn the_store_is_named_without_its_password() {
        let shown = target("p", "loc").display();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("db.internal") && shown.contains("\"loc\""),
            "{shown}"
        );
    }
}
