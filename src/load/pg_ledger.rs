//! The ledger in PostgreSQL (`[state] url`): the SQLite ledger's operations on one
//! (pipeline, location)'s rows of `contactsync_operations`, so runners on several machines share
//! it. Each write is its own committed transaction (PostgreSQL's `synchronous_commit` makes it
//! durable before the call it guards is sent), and what SQLite did in one transaction is one here.

use crate::snapshot::contract::ledger::{
    LedgerEntry, LedgerError, OpStatus, StoreError, read_entry_pg,
};
use crate::state::pg::{PgConn, PgError, PgTarget, held_lock};

/// One pipeline location's ledger rows in a PostgreSQL store.
pub struct PgLedger {
    conn: PgConn,
    target: PgTarget,
    path: String,
}

impl PgLedger {
    /// Connects, creating or migrating the schema.
    pub fn open(target: &PgTarget) -> Result<Self, LedgerError> {
        let path = target.display();
        let conn = PgConn::open(target, "ledger").map_err(|source| LedgerError {
            path: path.clone(),
            source: source.into(),
        })?;
        Ok(PgLedger {
            conn,
            target: target.clone(),
            path,
        })
    }

    fn err(&self, source: impl Into<StoreError>) -> LedgerError {
        LedgerError {
            path: self.path.clone(),
            source: source.into(),
        }
    }

    /// The row keys: (pipeline, location id).
    fn keys(&self) -> (String, String) {
        (self.target.pipeline.clone(), self.target.location.clone())
    }

    /// See `Ledger::register_owed`: all or none, an operation already known keeps its status.
    /// Two runners registering the same operation at once: the second waits for the first's
    /// commit, then finds the row and adds nothing. Run again after a lost connection (adding
    /// what is missing is idempotent); the count is then what the last run added.
    pub fn register_owed(
        &mut self,
        run_id: &str,
        ops: &[(&str, &str, String, String)],
    ) -> Result<usize, LedgerError> {
        let (pipeline, location) = self.keys();
        let run_id = run_id.to_string();
        let ops: Vec<(String, String, String, String)> = ops
            .iter()
            .map(|(key, kind, target, payload)| {
                (
                    key.to_string(),
                    kind.to_string(),
                    target.clone(),
                    payload.clone(),
                )
            })
            .collect();
        self.conn
            .call_repeatable(move |client, _| {
                let mut tx = client.transaction()?;
                let insert = tx.prepare(
                    "INSERT INTO contactsync_operations
                       (pipeline, location_id, key, run_id, kind, target, payload, status, attempts, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'planned', 0, now())
                     ON CONFLICT (pipeline, location_id, key) DO NOTHING",
                )?;
                let mut added = 0;
                for (key, kind, target, payload) in &ops {
                    added += tx.execute(
                        &insert,
                        &[&pipeline, &location, key, &run_id, kind, target, payload],
                    )?;
                }
                tx.commit()?;
                Ok(added as usize)
            })
            .map_err(|e| self.err(e))
    }

    /// See `Ledger::unfinished`.
    pub fn unfinished(&self) -> Result<Vec<(String, String, String)>, LedgerError> {
        let (pipeline, location) = self.keys();
        self.conn
            .call_repeatable(move |client, _| {
                // Keys in byte order, as SQLite sorts them, whatever the database's collation.
                let rows = client.query(
                    "SELECT key, run_id, payload FROM contactsync_operations
                     WHERE pipeline = $1 AND location_id = $2
                       AND status IN ('planned', 'failed', 'in_flight')
                     ORDER BY updated_at, key COLLATE \"C\"",
                    &[&pipeline, &location],
                )?;
                rows.iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                    .collect()
            })
            .map_err(|e| self.err(e))
    }

    /// See `Ledger::get`.
    pub fn get(&self, key: &str) -> Result<Option<LedgerEntry>, LedgerError> {
        read_entry_pg(&self.conn, &self.target, key).map_err(|e| self.err(e))
    }

    /// See `Ledger::begin`: an upsert in one statement, so two runners beginning the same
    /// operation (which the run's lock prevents) would count two attempts, never lose one.
    ///
    /// Two guards come first, in one read. The run's lock: while this process holds the lock of
    /// this location, the intent is recorded only if the session that took it still holds it
    /// ([`held_lock`]); otherwise the lock was lost, another runner may be writing, and this
    /// fails with `LockLost` before the write it guards. And the attempts so far: the upsert is
    /// not idempotent (it counts an attempt), so when the connection is lost after it was sent,
    /// the row is read back on the new connection (under the run's lock nobody else writes it):
    /// one attempt more than before, in flight for this run, means it committed.
    pub fn begin(
        &self,
        key: &str,
        run_id: &str,
        kind: &str,
        target: &str,
        payload: &str,
    ) -> Result<(), LedgerError> {
        let (pipeline, location) = self.keys();
        let row = [key, run_id, kind, target, payload].map(str::to_string);
        let lock = held_lock(&self.target);
        let (pid, started_us, classid, objid) = match lock {
            Some(session) => {
                let (classid, objid) = session.classid_objid();
                (
                    Some(session.pid),
                    Some(session.started_us),
                    Some(classid),
                    Some(objid),
                )
            }
            None => (None, None, None, None),
        };
        // The attempts before this begin (None: no row), once read.
        let mut before: Option<Option<i64>> = None;
        self.conn
            .call_repeatable(move |client, answer_lost| {
                let [key, run_id, kind, target, payload] = &row;
                let now = client.query_one(
                    "SELECT o.attempts, o.status, o.run_id,
                       $4::integer IS NULL OR EXISTS (
                         SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                         WHERE l.locktype = 'advisory' AND l.granted AND l.pid = $4
                           AND l.classid = $5 AND l.objid = $6 AND l.objsubid = 1
                           AND (extract(epoch FROM a.backend_start) * 1000000)::bigint = $7)
                     FROM (SELECT 1) AS one
                     LEFT JOIN contactsync_operations o
                       ON o.pipeline = $1 AND o.location_id = $2 AND o.key = $3",
                    &[
                        &pipeline,
                        &location,
                        key,
                        &pid,
                        &classid,
                        &objid,
                        &started_us,
                    ],
                )?;
                let attempts: Option<i64> = now.try_get(0)?;
                if !now.try_get::<_, bool>(3)? {
                    return Err(PgError::LockLost);
                }
                match before {
                    Some(previous) if answer_lost => {
                        let status: Option<String> = now.try_get(1)?;
                        let by: Option<String> = now.try_get(2)?;
                        if attempts == Some(previous.unwrap_or(0) + 1)
                            && status.as_deref() == Some(OpStatus::InFlight.as_str())
                            && by.as_deref() == Some(run_id.as_str())
                        {
                            return Ok(());
                        }
                    }
                    _ => before = Some(attempts),
                }
                client.execute(
                    "INSERT INTO contactsync_operations AS o
                       (pipeline, location_id, key, run_id, kind, target, payload, status, attempts, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'in_flight', 1, now())
                     ON CONFLICT (pipeline, location_id, key) DO UPDATE SET status = 'in_flight',
                       run_id = EXCLUDED.run_id, attempts = o.attempts + 1, updated_at = now()",
                    &[&pipeline, &location, key, run_id, kind, target, payload],
                )?;
                Ok(())
            })
            .map_err(|e| self.err(e))
    }

    /// The counter value behind a send's `deduplication-id` (see `Ledger::deduplication_id`):
    /// the operation's own when it has one, else the next of the database's one counter, in one
    /// transaction. The counter is shared by every pipeline and location of the database: they
    /// may send through one BulkSMS account, which must never see one id on two sends.
    pub fn deduplication_counter(&self, key: &str, now_ms: i64) -> Result<i64, LedgerError> {
        let (pipeline, location) = self.keys();
        let owned_key = key.to_string();
        let stored = self
            .conn
            .call_repeatable(move |client, _| {
                let mut tx = client.transaction()?;
                let row = tx.query_opt(
                    "SELECT deduplication_id FROM contactsync_operations
                     WHERE pipeline = $1 AND location_id = $2 AND key = $3 FOR UPDATE",
                    &[&pipeline, &location, &owned_key],
                )?;
                let Some(row) = row else { return Ok(None) };
                if let Some(id) = row.try_get::<_, Option<i64>>(0)? {
                    return Ok(Some(id));
                }
                let next: i64 = tx
                    .query_one(
                        "INSERT INTO contactsync_counters AS c (name, value)
                         VALUES ('deduplication_id', $1)
                         ON CONFLICT (name) DO UPDATE SET value = GREATEST(c.value + 1, EXCLUDED.value)
                         RETURNING value",
                        &[&now_ms],
                    )?
                    .try_get(0)?;
                tx.execute(
                    "UPDATE contactsync_operations SET deduplication_id = $4
                     WHERE pipeline = $1 AND location_id = $2 AND key = $3",
                    &[&pipeline, &location, &owned_key, &next],
                )?;
                tx.commit()?;
                Ok::<_, PgError>(Some(next))
            })
            .map_err(|e| self.err(e))?;
        stored.ok_or_else(|| LedgerError {
            path: format!("{} (no intent recorded for operation {key})", self.path),
            source: StoreError::NoIntent,
        })
    }

    /// See `Ledger::finish`.
    pub fn finish(
        &self,
        key: &str,
        status: OpStatus,
        result: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), LedgerError> {
        let (pipeline, location) = self.keys();
        let key = key.to_string();
        let (result, error) = (result.map(str::to_string), error.map(str::to_string));
        self.conn
            .call_repeatable(move |client, _| {
                client.execute(
                    "UPDATE contactsync_operations
                     SET status = $4, result = $5, error = $6, updated_at = now()
                     WHERE pipeline = $1 AND location_id = $2 AND key = $3",
                    &[
                        &pipeline,
                        &location,
                        &key,
                        &status.as_str(),
                        &result,
                        &error,
                    ],
                )?;
                Ok(())
            })
            .map_err(|e| self.err(e))
    }

    /// See `Ledger::counts_for_run`.
    pub fn counts_for_run(&self, run_id: &str) -> Result<Vec<(String, i64)>, LedgerError> {
        let (pipeline, location) = self.keys();
        let run_id = run_id.to_string();
        self.conn
            .call_repeatable(move |client, _| {
                let rows = client.query(
                    "SELECT status, COUNT(*) FROM contactsync_operations
                     WHERE pipeline = $1 AND location_id = $2 AND run_id = $3
                     GROUP BY status ORDER BY status COLLATE \"C\"",
                    &[&pipeline, &location, &run_id],
                )?;
                rows.iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect()
            })
            .map_err(|e| self.err(e))
    }
}
