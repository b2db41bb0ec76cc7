//! The ledger: each operation's intent recorded before its call and its outcome after, in SQLite in
//! the state directory (or in PostgreSQL with `[state] url`: see `pg_ledger`). It is what makes
//! effects happen exactly once across retries and crashes: an operation found `in_flight` after a
//! crash had its outcome lost and is resolved by reading the service back, never by sending it
//! blindly again.

use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;

use super::pg_ledger::PgLedger;
use crate::snapshot::contract::ledger::read_entry;
/// The ledger's row types are the contract between load (which writes them) and audit.
pub use crate::snapshot::contract::ledger::{LedgerEntry, LedgerError, OpStatus};
use crate::state::pg::PgTarget;

/// The ledger of one pipeline location: the same operations on either backend.
pub struct Ledger {
    backend: Backend,
}

enum Backend {
    Sqlite(SqliteLedger),
    Postgres(PgLedger),
}

impl Ledger {
    /// Opens (creating) `STATE/ledger.sqlite`.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        SqliteLedger::open(path).map(|l| Ledger {
            backend: Backend::Sqlite(l),
        })
    }

    /// Opens one (pipeline, location)'s rows in a PostgreSQL store, creating or migrating its
    /// schema.
    pub fn open_postgres(target: &PgTarget) -> Result<Self, LedgerError> {
        PgLedger::open(target).map(|l| Ledger {
            backend: Backend::Postgres(l),
        })
    }

    /// Records operations a run owes, in one transaction, before its plan is written: from then
    /// on they are carried over by every later plan until a load settles them, so a crash at any
    /// point of the cycle cannot lose them. An operation the ledger already knows keeps its status.
    /// Returns how many were new.
    pub fn register_owed(
        &mut self,
        run_id: &str,
        ops: &[(&str, &str, String, String)],
    ) -> Result<usize, LedgerError> {
        match &mut self.backend {
            Backend::Sqlite(l) => l.register_owed(run_id, ops),
            Backend::Postgres(l) => l.register_owed(run_id, ops),
        }
    }

    /// Operations that are owed, failed or whose outcome is unknown, with the run that planned
    /// them and their payload (the serialised operation), oldest first.
    pub fn unfinished(&self) -> Result<Vec<(String, String, String)>, LedgerError> {
        match &self.backend {
            Backend::Sqlite(l) => l.unfinished(),
            Backend::Postgres(l) => l.unfinished(),
        }
    }

    /// The entry of an operation, if it was ever attempted.
    pub fn get(&self, key: &str) -> Result<Option<LedgerEntry>, LedgerError> {
        match &self.backend {
            Backend::Sqlite(l) => l.get(key),
            Backend::Postgres(l) => l.get(key),
        }
    }

    /// Records the intent to send an operation (durably, before the call).
    pub fn begin(
        &self,
        key: &str,
        run_id: &str,
        kind: &str,
        target: &str,
        payload: &str,
    ) -> Result<(), LedgerError> {
        match &self.backend {
            Backend::Sqlite(l) => l.begin(key, run_id, kind, target, payload),
            Backend::Postgres(l) => l.begin(key, run_id, kind, target, payload),
        }
    }

    /// The `deduplication-id` of a send whose intent is recorded: allocated on its first attempt
    /// and stored with the operation, so every retry sends the same id (why the ids come from a
    /// counter: `SqliteLedger::deduplication_id`).
    pub fn deduplication_id(&self, key: &str, now_ms: i64) -> Result<i32, LedgerError> {
        match &self.backend {
            Backend::Sqlite(l) => l.deduplication_id(key, now_ms),
            Backend::Postgres(l) => l.deduplication_counter(key, now_ms).map(to_int31),
        }
    }

    /// Records an outcome.
    pub fn finish(
        &self,
        key: &str,
        status: OpStatus,
        result: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), LedgerError> {
        match &self.backend {
            Backend::Sqlite(l) => l.finish(key, status, result, error),
            Backend::Postgres(l) => l.finish(key, status, result, error),
        }
    }

    /// Counts of operations by status for one run.
    pub fn counts_for_run(&self, run_id: &str) -> Result<Vec<(String, i64)>, LedgerError> {
        match &self.backend {
            Backend::Sqlite(l) => l.counts_for_run(run_id),
            Backend::Postgres(l) => l.counts_for_run(run_id),
        }
    }
}

/// The SQLite ledger of one state directory.
struct SqliteLedger {
    conn: Connection,
    path: String,
}

impl SqliteLedger {
    /// Opens (creating) `STATE/ledger.sqlite`.
    fn open(path: &Path) -> Result<Self, LedgerError> {
        let display = path.display().to_string();
        let wrap = |source: rusqlite::Error| LedgerError {
            path: display.clone(),
            source: source.into(),
        };
        let conn = Connection::open(path).map_err(wrap)?;
        // WAL + synchronous=FULL: an intent is on disk before the call that it guards is sent.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(wrap)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(wrap)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS operations (
                key TEXT PRIMARY KEY,
                run_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                target TEXT NOT NULL,
                payload TEXT NOT NULL,
                status TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                result TEXT,
                error TEXT,
                updated_at TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS operations_run ON operations(run_id);
            CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
        )
        .map_err(wrap)?;
        // Ledgers written before sends had allocated deduplication ids lack the column.
        let has_dedup_column = conn
            .prepare(
                "SELECT 1 FROM pragma_table_info('operations') WHERE name = 'deduplication_id'",
            )
            .and_then(|mut s| s.exists([]))
            .map_err(wrap)?;
        if !has_dedup_column {
            conn.execute_batch("ALTER TABLE operations ADD COLUMN deduplication_id INTEGER")
                .map_err(wrap)?;
        }
        Ok(SqliteLedger {
            conn,
            path: display,
        })
    }

    fn err(&self, source: rusqlite::Error) -> LedgerError {
        LedgerError {
            path: self.path.clone(),
            source: source.into(),
        }
    }

    /// Records operations a run owes, in one transaction, before its plan is written: from then
    /// on they are carried over by every later plan until a load settles them, so a crash at any
    /// point of the cycle cannot lose them. An operation the ledger already knows keeps its status.
    fn register_owed(
        &mut self,
        run_id: &str,
        ops: &[(&str, &str, String, String)],
    ) -> Result<usize, LedgerError> {
        let tx = self.conn.transaction().map_err(|e| LedgerError {
            path: self.path.clone(),
            source: e.into(),
        })?;
        let mut added = 0;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO operations (key, run_id, kind, target, payload, status, attempts, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'planned', 0, datetime('now'))
                     ON CONFLICT(key) DO NOTHING",
                )
                .map_err(|e| LedgerError {
                    path: self.path.clone(),
                    source: e.into(),
                })?;
            for (key, kind, target, payload) in ops {
                added += insert
                    .execute(params![key, run_id, kind, target, payload])
                    .map_err(|e| LedgerError {
                        path: self.path.clone(),
                        source: e.into(),
                    })?;
            }
        }
        tx.commit().map_err(|e| LedgerError {
            path: self.path.clone(),
            source: e.into(),
        })?;
        Ok(added)
    }

    /// Operations that are owed, failed or whose outcome is unknown, with the run that planned
    /// them and their payload (the serialised operation), oldest first.
    fn unfinished(&self) -> Result<Vec<(String, String, String)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT key, run_id, payload FROM operations
                 WHERE status IN ('planned', 'failed', 'in_flight') ORDER BY updated_at, key",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// The entry of an operation, if it was ever attempted.
    fn get(&self, key: &str) -> Result<Option<LedgerEntry>, LedgerError> {
        read_entry(&self.conn, key).map_err(|e| self.err(e))
    }

    /// Records the intent to send an operation (durably, before the call).
    fn begin(
        &self,
        key: &str,
        run_id: &str,
        kind: &str,
        target: &str,
        payload: &str,
    ) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT INTO operations (key, run_id, kind, target, payload, status, attempts, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'in_flight', 1, datetime('now'))
                 ON CONFLICT(key) DO UPDATE SET status = 'in_flight', run_id = ?2,
                   attempts = attempts + 1, updated_at = datetime('now')",
                params![key, run_id, kind, target, payload],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The `deduplication-id` of a send whose intent is recorded: allocated on its first attempt
    /// and stored with the operation, so every retry sends the same id.
    ///
    /// BulkSMS remembers an id for about 12 hours and answers a second request with it by replaying
    /// the first answer, sending nothing: two different sends must never share one inside that
    /// window (31 bits of the key collided at ~2 % for 10,000 sends). Ids come from one counter
    /// that never goes back and is never behind the clock in milliseconds (`now_ms`), taken modulo
    /// 2^31: two ids repeat only 2^31 allocations or ms (24 days) apart, and a ledger started
    /// afresh begins at the clock, past what an earlier ledger used unless that one allocated
    /// faster than 1,000 ids a second.
    fn deduplication_id(&self, key: &str, now_ms: i64) -> Result<i32, LedgerError> {
        let stored: Option<Option<i64>> = self
            .conn
            .query_row(
                "SELECT deduplication_id FROM operations WHERE key = ?1",
                params![key],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        match stored {
            None => {
                return Err(LedgerError {
                    path: format!("{} (no intent recorded for operation {key})", self.path),
                    source: rusqlite::Error::QueryReturnedNoRows.into(),
                });
            }
            Some(Some(id)) => return Ok(to_int31(id)),
            Some(None) => {}
        }
        let last: Option<i64> = self
            .conn
            .query_row(
                "SELECT value FROM counters WHERE name = 'deduplication_id'",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let next =
            after_every_ledger_of_this_process(last.map_or(now_ms, |last| (last + 1).max(now_ms)));
        // The counter first: a crash between the two writes wastes an id, never reuses one.
        self.conn
            .execute(
                "INSERT INTO counters (name, value) VALUES ('deduplication_id', ?1)
                 ON CONFLICT(name) DO UPDATE SET value = ?1",
                params![next],
            )
            .map_err(|e| self.err(e))?;
        self.conn
            .execute(
                "UPDATE operations SET deduplication_id = ?2 WHERE key = ?1",
                params![key, next],
            )
            .map_err(|e| self.err(e))?;
        Ok(to_int31(next))
    }

    /// Records an outcome.
    fn finish(
        &self,
        key: &str,
        status: OpStatus,
        result: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "UPDATE operations SET status = ?2, result = ?3, error = ?4, updated_at = datetime('now')
                 WHERE key = ?1",
                params![key, status.as_str(), result, error],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Counts of operations by status for one run.
    fn counts_for_run(&self, run_id: &str) -> Result<Vec<(String, i64)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT status, COUNT(*) FROM operations WHERE run_id = ?1 GROUP BY status ORDER BY status")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![run_id], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

/// A counter value as the int32 `deduplication-id` BulkSMS takes (0 ..= 2^31 - 1).
fn to_int31(counter: i64) -> i32 {
    counter.rem_euclid(1 << 31) as i32
}

/// The last deduplication-id any ledger of this process handed out. Locations of one run share
/// one BulkSMS account but each has its own ledger: two ledgers started in the same millisecond
/// counted the same ids, and BulkSMS answered the second location's sends with the first's,
/// sending nothing. Runners in other processes on the same account still need a shared counter.
static PROCESS_LAST_DEDUPLICATION_ID: std::sync::atomic::AtomicI64 =
    std::sync::atomic::AtomicI64::new(i64::MIN);

/// `candidate`, or the next id after the last one any ledger of this process allocated.
fn after_every_ledger_of_this_process(candidate: i64) -> i64 {
    use std::sync::atomic::Ordering;
    let mut current = PROCESS_LAST_DEDUPLICATION_ID.load(Ordering::SeqCst);
    loop {
        let next = candidate.max(current.saturating_add(1));
        match PROCESS_LAST_DEDUPLICATION_ID.compare_exchange(
            current,
            next,
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) => return next,
            Err(seen) => current = seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touched_contacts_are_those_reached_or_maybe_reached_since_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.sqlite");
        {
            let ledger = Ledger::open(&path).expect("open");
            ledger
                .begin("k1", "r", "create_note", "c1", "{}")
                .expect("b");
            ledger
                .finish("k1", OpStatus::Succeeded, None, None)
                .expect("f");
            ledger
                .begin("k2", "r", "create_contact", "new:a@b|", "{}")
                .expect("b");
            ledger
                .finish("k2", OpStatus::Succeeded, Some(r#"{"id":"c2"}"#), None)
                .expect("f");
            ledger.begin("k3", "r", "add_tags", "c3", "{}").expect("b");
            ledger.begin("k4", "r", "add_tags", "c4", "{}").expect("b");
            ledger
                .finish("k4", OpStatus::Failed, None, Some("x"))
                .expect("f");
            ledger
                .begin("k5", "r", "send_sms", "+1555", "{}")
                .expect("b");
            ledger
                .finish("k5", OpStatus::Succeeded, None, None)
                .expect("f");
            ledger
                .begin("k6", "r", "create_task", "c1", "{}")
                .expect("b");
            ledger
                .finish("k6", OpStatus::Succeeded, None, None)
                .expect("f");
        }
        let ledger =
            crate::snapshot::contract::ledger::LedgerReader::open(&path).expect("read-only");
        let since = chrono::Utc::now() - chrono::Duration::minutes(1);
        let mut touched = ledger.contacts_touched_since(since).expect("touched");
        touched.sort();
        assert_eq!(touched, vec!["c1", "c2", "c3"]);
        let later = chrono::Utc::now() + chrono::Duration::minutes(1);
        assert!(
            ledger
                .contacts_touched_since(later)
                .expect("none")
                .is_empty()
        );
    }

    #[test]
    fn intent_then_outcome_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.sqlite");
        {
            let ledger = Ledger::open(&path).expect("open");
            ledger
                .begin("k1", "r1", "add_tags", "c1", "{}")
                .expect("begin");
            ledger
                .begin("k2", "r1", "send_sms", "+1", "{}")
                .expect("begin");
            ledger
                .finish("k1", OpStatus::Succeeded, Some("{\"ok\":1}"), None)
                .expect("finish");
        }
        let ledger = Ledger::open(&path).expect("reopen");
        assert_eq!(
            ledger.get("k1").expect("get").expect("k1").status,
            OpStatus::Succeeded
        );
        let k2 = ledger.get("k2").expect("get").expect("k2");
        assert_eq!(k2.status, OpStatus::InFlight, "a crash leaves the intent");
        ledger
            .begin("k2", "r2", "send_sms", "+1", "{}")
            .expect("again");
        assert_eq!(ledger.get("k2").expect("get").expect("k2").attempts, 2);
        assert!(ledger.get("nope").expect("get").is_none());
        assert_eq!(
            ledger.counts_for_run("r1").expect("counts"),
            vec![("succeeded".to_string(), 1)]
        );
    }

    #[test]
    fn owed_operations_are_carried_until_settled_and_never_downgraded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ledger = Ledger::open(&dir.path().join("ledger.sqlite")).expect("open");
        ledger
            .begin("done", "r0", "send_sms", "+1", "{}")
            .expect("begin");
        ledger
            .finish("done", OpStatus::Succeeded, None, None)
            .expect("finish");
        let owed = |key: &'static str| (key, "send_sms", "+1".to_string(), "{}".to_string());
        let added = ledger
            .register_owed("r1", &[owed("done"), owed("new")])
            .expect("register");
        assert_eq!(added, 1, "a settled operation is not owed again");
        assert_eq!(
            ledger.get("done").expect("get").expect("done").status,
            OpStatus::Succeeded
        );
        assert_eq!(
            ledger.get("new").expect("get").expect("new").status,
            OpStatus::Planned
        );
        let unfinished = ledger.unfinished().expect("unfinished");
        assert_eq!(unfinished.len(), 1);
        assert_eq!(
            (unfinished[0].0.as_str(), unfinished[0].1.as_str()),
            ("new", "r1")
        );
    }

    #[test]
    fn deduplication_ids_never_repeat_and_a_retry_reuses_its_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.sqlite");
        let now = 1_765_000_000_000_i64;
        let mut ids = std::collections::HashSet::new();
        {
            let ledger = Ledger::open(&path).expect("open");
            // 10,000 sends in one burst: 31 bits of their keys shared an id at ~2 %.
            for i in 0..10_000 {
                let key = format!("{i:032x}");
                ledger
                    .begin(&key, "r1", "send_sms", "+1", "{}")
                    .expect("begin");
                let id = ledger.deduplication_id(&key, now).expect("allocate");
                assert!(id >= 0);
                assert!(ids.insert(id), "id {id} given twice");
                assert_eq!(ledger.deduplication_id(&key, now + 5).expect("again"), id);
            }
            assert!(ledger.deduplication_id("never-begun", now).is_err());
        }
        // Reopened, with a clock that went back: still new ids; a retry keeps its id.
        let ledger = Ledger::open(&path).expect("reopen");
        let retried = format!("{:032x}", 7);
        ledger
            .begin(&retried, "r2", "send_sms", "+1", "{}")
            .expect("again");
        let first = ledger.deduplication_id(&retried, now).expect("stored");
        assert!(ids.contains(&first));
        ledger
            .begin("new", "r2", "send_sms", "+1", "{}")
            .expect("begin");
        assert!(ids.insert(ledger.deduplication_id("new", now - 60_000).expect("new")));
        assert_eq!(to_int31((1 << 31) + 5), 5);
    }

    #[test]
    fn two_ledgers_of_one_process_never_share_a_deduplication_id() {
        // Two locations' ledgers on one BulkSMS account, started in the same millisecond.
        let dirs = [
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        ];
        let ledgers: Vec<Ledger> = dirs
            .iter()
            .map(|d| Ledger::open(&d.path().join("ledger.sqlite")).expect("open"))
            .collect();
        let now = 1_765_000_000_000_i64;
        let mut ids = std::collections::HashSet::new();
        for i in 0..200 {
            for ledger in &ledgers {
                let key = format!("{i:032x}");
                ledger
                    .begin(&key, "r1", "send_sms", "+1", "{}")
                    .expect("begin");
                let id = ledger.deduplication_id(&key, now).expect("allocate");
                assert!(ids.insert(id), "id {id} given to two locations");
            }
        }
    }
}
