//! The ledger's rows (`STATE/ledger.sqlite`, table `operations`): load writes each operation's
//! intent and outcome there, plan reads what is owed, audit reads how each planned operation
//! ended. The writer is `load::ledger::Ledger`; the row types and the read-only look-up are here.

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::Path;
use thiserror::Error;

/// The ledger's file name in a state directory.
pub const LEDGER_FILE: &str = "ledger.sqlite";

/// Ledger errors name the database file.
#[derive(Debug, Error)]
#[error("ledger {path}: {source}")]
pub struct LedgerError {
    pub(crate) path: String,
    pub(crate) source: rusqlite::Error,
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

/// A ledger opened to read: what audit uses. It never creates a ledger or its tables (opened
/// read-write only because SQLite needs to write the WAL index of a WAL database to read it).
pub struct LedgerReader {
    conn: Connection,
    path: String,
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
            source,
        })?;
        Ok(LedgerReader {
            conn,
            path: display,
        })
    }

    /// The entry of an operation, if it was ever planned or attempted.
    pub fn get(&self, key: &str) -> Result<Option<LedgerEntry>, LedgerError> {
        read_entry(&self.conn, key).map_err(|source| LedgerError {
            path: self.path.clone(),
            source,
        })
    }

    /// Contacts this pipeline deleted (`merge = "delete"`): an incremental extract cannot see a
    /// deletion, so it drops them from the carried snapshot by this list.
    pub fn contacts_deleted(&self) -> Result<std::collections::HashSet<String>, LedgerError> {
        let error = |source| LedgerError {
            path: self.path.clone(),
            source,
        };
        let mut stmt = self
            .conn
            .prepare(
                "SELECT target FROM operations WHERE kind = 'delete_contact' AND status = 'succeeded'",
            )
            .map_err(error)?;
        let ids = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(error)?
            .collect::<rusqlite::Result<_>>()
            .map_err(error)?;
        Ok(ids)
    }

    /// Contacts that operations reached (`succeeded`) or may have reached (`in_flight`: outcome
    /// unknown) since `since`, in the order they were settled, each once. A created contact is
    /// known by the id its create answer returned; sends and blocks act on numbers, not contacts.
    pub fn contacts_touched_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<String>, LedgerError> {
        // `updated_at` is SQLite's `datetime('now')`: UTC, to the second.
        let since = since.format("%Y-%m-%d %H:%M:%S").to_string();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT kind, target, result FROM operations
                 WHERE status IN ('succeeded', 'in_flight') AND updated_at >= ?1
                 ORDER BY updated_at, key",
            )
            .map_err(|source| LedgerError {
                path: self.path.clone(),
                source,
            })?;
        let rows = stmt
            .query_map(params![since], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(|source| LedgerError {
                path: self.path.clone(),
                source,
            })?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for row in rows {
            let (kind, target, result) = row.map_err(|source| LedgerError {
                path: self.path.clone(),
                source,
            })?;
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
