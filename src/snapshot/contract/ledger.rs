//! The ledger's rows (`STATE/ledger.sqlite`, table `operations`, or the PostgreSQL table
//! `contactsync_operations` with `[state] url`): load writes each operation's intent and outcome
//! there, plan reads what is owed, audit reads how each planned operation ended. The writer is
//! `load::ledger::Ledger`; the row types and the read-only look-up are here.

use crate::state::pg::{PgConn, PgError, PgTarget};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::Path;
use thiserror::Error;

/// The ledger's file name in a state directory.
pub const LEDGER_FILE: &str = "ledger.sqlite";

/// Ledger errors name the database file (or the PostgreSQL store and its rows' keys).
#[derive(Debug, Error)]
#[error("ledger {path}: {source}")]
pub struct LedgerError {
    pub(crate) path: String,
    pub(crate) source: StoreError,
}

impl LedgerError {
    /// Whether the run's lock was lost: the run must stop before its next write.
    pub fn is_lock_lost(&self) -> bool {
        matches!(self.source, StoreError::Postgres(PgError::LockLost))
    }
}

/// What went wrong in the ledger's database.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Postgres(#[from] PgError),
    #[error("no such operation")]
    NoIntent,
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        StoreError::Postgres(PgError::Postgres(e))
    }
}

/// Where an operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpStatus {
    /// Planned by a run whose plan was accepted, not attempted yet: owed until a load applies it,
    /// whatever happens to that run.
    Planned,
    /// About to be sent: if found after a crash, the outcome is unknown.
    InFlight,
    /// Took effect.
    Succeeded,
    /// Failed after its retries; tried again on the next run.
    Failed,
    /// Deliberately not done (e.g. the number opted out after planning).
    Skipped,
}

impl OpStatus {
    /// Its name in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            OpStatus::Planned => "planned",
            OpStatus::InFlight => "in_flight",
            OpStatus::Succeeded => "succeeded",
            OpStatus::Failed => "failed",
            OpStatus::Skipped => "skipped",
        }
    }

    /// The status of its name in the ledger.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "planned" => OpStatus::Planned,
            "in_flight" => OpStatus::InFlight,
            "succeeded" => OpStatus::Succeeded,
            "failed" => OpStatus::Failed,
            "skipped" => OpStatus::Skipped,
            _ => return None,
        })
    }
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    pub key: String,
    pub status: OpStatus,
    pub attempts: i64,
    pub result: Option<String>,
    pub error: Option<String>,
}

/// One entry by operation key, on an open connection (shared by the writer and [`LedgerReader`]).
pub(crate) fn read_entry(conn: &Connection, key: &str) -> rusqlite::Result<Option<LedgerEntry>> {
    conn.query_row(
        "SELECT key, status, attempts, result, error FROM operations WHERE key = ?1",
        params![key],
        |row| {
            let status: String = row.get(1)?;
            Ok(LedgerEntry {
                key: row.get(0)?,
                status: OpStatus::parse(&status).unwrap_or(OpStatus::InFlight),
                attempts: row.get(2)?,
                result: row.get(3)?,
                error: row.get(4)?,
            })
        },
    )
    .optional()
}

/// One entry by operation key, from one (pipeline, location)'s rows in PostgreSQL (shared by the
/// writer and [`LedgerReader`]).
pub(crate) fn read_entry_pg(
    conn: &PgConn,
    target: &PgTarget,
    key: &str,
) -> Result<Option<LedgerEntry>, PgError> {
    let (pipeline, location, key) = (
        target.pipeline.clone(),
        target.location.clone(),
        key.to_string(),
    );
    conn.call_repeatable(move |client, _| {
        let row = client.query_opt(
            "SELECT key, status, attempts, result, error FROM contactsync_operations
             WHERE pipeline = $1 AND location_id = $2 AND key = $3",
            &[&pipeline, &location, &key],
        )?;
        let Some(row) = row else { return Ok(None) };
        let status: String = row.try_get(1)?;
        Ok(Some(LedgerEntry {
            key: row.try_get(0)?,
            status: OpStatus::parse(&status).unwrap_or(OpStatus::InFlight),
            attempts: row.try_get(2)?,
            result: row.try_get(3)?,
            error: row.try_get(4)?,
        }))
    })
}

/// A ledger opened to read: what audit uses. It never creates a ledger or its tables (opened
/// read-write only because SQLite needs to write the WAL index of a WAL database to read it).
pub struct LedgerReader {
    backend: ReaderBackend,
    path: String,
}

enum ReaderBackend {
    Sqlite(Connection),
    Postgres { conn: PgConn, target: PgTarget },
}

impl LedgerReader {
    /// Opens an existing ledger.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let display = path.display().to_string();
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| LedgerError {
            path: display.clone(),
            source: source.into(),
        })?;
        Ok(LedgerReader {
            backend: ReaderBackend::Sqlite(conn),
            path: display,
        })
    }

    /// Opens one (pipeline, location)'s rows of a PostgreSQL store (creating the schema when the
    /// database is new: a fresh database reads as an empty ledger).
    pub fn open_postgres(target: &PgTarget) -> Result<Self, LedgerError> {
        let path = target.display();
        let conn = PgConn::open(target, "ledger-reader").map_err(|source| LedgerError {
            path: path.clone(),
            source: source.into(),
        })?;
        Ok(LedgerReader {
            backend: ReaderBackend::Postgres {
                conn,
                target: target.clone(),
            },
            path,
        })
    }

    fn err(&self, source: impl Into<StoreError>) -> LedgerError {
        LedgerError {
            path: self.path.clone(),
            source: source.into(),
        }
    }

    /// The entry of an operation, if it was ever planned or attempted.
    pub fn get(&self, key: &str) -> Result<Option<LedgerEntry>, LedgerError> {
        match &self.backend {
            ReaderBackend::Sqlite(conn) => read_entry(conn, key).map_err(|e| self.err(e)),
            ReaderBackend::Postgres { conn, target } => {
                read_entry_pg(conn, target, key).map_err(|e| self.err(e))
            }
        }
    }

    /// Contacts this pipeline deleted (`merge = "delete"`): an incremental extract cannot see a
    /// deletion, so it drops them from the carried snapshot by this list.
    pub fn contacts_deleted(&self) -> Result<std::collections::HashSet<String>, LedgerError> {
        match &self.backend {
            ReaderBackend::Sqlite(conn) => deleted_sqlite(conn).map_err(|e| self.err(e)),
            ReaderBackend::Postgres { conn, target } => {
                deleted_pg(conn, target).map_err(|e| self.err(e))
            }
        }
    }

    /// Contacts that operations reached (`succeeded`) or may have reached (`in_flight`: outcome
    /// unknown) since `since`, in the order they were settled, each once. A created contact is
    /// known by the id its create answer returned; sends and blocks act on numbers, not contacts.
    pub fn contacts_touched_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<String>, LedgerError> {
        let rows = match &self.backend {
            ReaderBackend::Sqlite(conn) => {
                touched_rows_sqlite(conn, since).map_err(|e| self.err(e))?
            }
            ReaderBackend::Postgres { conn, target } => {
                touched_rows_pg(conn, target, since).map_err(|e| self.err(e))?
            }
        };
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (kind, target, result) in rows {
            let contact = match kind.as_str() {
                "send_sms" | "block_numbers" => None,
                "create_contact" => result
                    .as_deref()
                    .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
                    .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_string)),
                _ => Some(target),
            };
            if let Some(id) = contact.filter(|id| !id.is_empty())
                && seen.insert(id.clone())
            {
                out.push(id);
            }
        }
        Ok(out)
    }
}

fn deleted_sqlite(conn: &Connection) -> rusqlite::Result<std::collections::HashSet<String>> {
    let mut stmt = conn.prepare(
        "SELECT target FROM operations WHERE kind = 'delete_contact' AND status = 'succeeded'",
    )?;
    stmt.query_map([], |r| r.get::<_, String>(0))?.collect()
}

fn deleted_pg(
    conn: &PgConn,
    target: &PgTarget,
) -> Result<std::collections::HashSet<String>, PgError> {
    let (pipeline, location) = (target.pipeline.clone(), target.location.clone());
    conn.call_repeatable(move |client, _| {
        let rows = client.query(
            "SELECT target FROM contactsync_operations
             WHERE pipeline = $1 AND location_id = $2
               AND kind = 'delete_contact' AND status = 'succeeded'",
            &[&pipeline, &location],
        )?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    })
}

/// (kind, target, result) of the operations that reached or may have reached a contact since
/// `since`, in the order they were settled.
type TouchedRow = (String, String, Option<String>);

fn touched_rows_sqlite(
    conn: &Connection,
    since: chrono::DateTime<chrono::Utc>,
) -> rusqlite::Result<Vec<TouchedRow>> {
    // `updated_at` is SQLite's `datetime('now')`: UTC, to the second.
    let since = since.format("%Y-%m-%d %H:%M:%S").to_string();
    let mut stmt = conn.prepare(
        "SELECT kind, target, result FROM operations
         WHERE status IN ('succeeded', 'in_flight') AND updated_at >= ?1
         ORDER BY updated_at, key",
    )?;
    let rows = stmt.query_map(params![since], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

fn touched_rows_pg(
    conn: &PgConn,
    target: &PgTarget,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<TouchedRow>, PgError> {
    // To the second, as SQLite's `datetime('now')` is: the same rows on both backends.
    let since = since.timestamp() as f64;
    let (pipeline, location) = (target.pipeline.clone(), target.location.clone());
    conn.call_repeatable(move |client, _| {
        let rows = client.query(
            "SELECT kind, target, result FROM contactsync_operations
             WHERE pipeline = $1 AND location_id = $2
               AND status IN ('succeeded', 'in_flight') AND updated_at >= to_timestamp($3)
             ORDER BY updated_at, key COLLATE \"C\"",
            &[&pipeline, &location, &since],
        )?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    })
}
