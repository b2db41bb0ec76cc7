//! Where a pipeline location's shared state lives: the ledger and the run's lock.
//!
//! Two backends. `Local` (the default): the SQLite ledger and a lock file in the state directory,
//! for one machine. `Postgres` (`[state] url`): the ledger's rows and an advisory lock in a
//! PostgreSQL database that runners on several machines share, keyed by (pipeline, location),
//! and the agency grant of the pipeline ([`pg_grant`]). Either way the state directory keeps runs/
//! (snapshots, plans, extract checkpoints and the cursors their manifests carry), location tokens
//! and serve's spool: those stay on the runner's machine.

pub mod pg;
pub mod pg_error;
pub mod pg_grant;
pub mod pg_routing;
pub mod pg_session;
pub mod pg_tls;

use crate::load::ledger::Ledger;
use crate::snapshot::contract::ledger::{LEDGER_FILE, LedgerError, LedgerReader};
use fs2::FileExt;
use pg::{PgError, PgLock, PgTarget};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// One pipeline location's state store.
#[derive(Debug, Clone)]
pub struct StateStore {
    /// The state directory (always: runs/, tokens and the local lock live there).
    pub state_dir: PathBuf,
    /// The shared database, when `[state] url` is set.
    pub postgres: Option<PgTarget>,
}

/// Errors taking the run's lock.
#[derive(Debug, Error)]
pub enum LockError {
    #[error("another contactsync run holds {0}; try again when it has finished")]
    Held(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("state store {store}: {source}")]
    Postgres { store: String, source: PgError },
}

impl StateStore {
    /// The SQLite ledger and lock file of `state_dir`: today's layout.
    pub fn local(state_dir: impl Into<PathBuf>) -> Self {
        StateStore {
            state_dir: state_dir.into(),
            postgres: None,
        }
    }

    /// The SQLite ledger's file (local backend).
    pub fn ledger_file(&self) -> PathBuf {
        self.state_dir.join(LEDGER_FILE)
    }

    /// Opens the ledger load writes, creating it (or its tables) when new.
    pub fn open_ledger(&self) -> Result<Ledger, LedgerError> {
        match &self.postgres {
            None => Ledger::open(&self.ledger_file()),
            Some(target) => Ledger::open_postgres(target),
        }
    }

    /// Opens the ledger to read (audit, history look-ups); `None` when no run has written one.
    pub fn open_ledger_reader(&self) -> Result<Option<LedgerReader>, LedgerError> {
        match &self.postgres {
            None => {
                let path = self.ledger_file();
                if path.exists() {
                    LedgerReader::open(&path).map(Some)
                } else {
                    Ok(None)
                }
            }
            Some(target) => LedgerReader::open_postgres(target).map(Some),
        }
    }

    /// Takes the run's lock, waiting up to `wait` for its holder to finish. Always the state
    /// directory's lock file (runs/ and tokens are local); with PostgreSQL also the advisory lock
    /// of this (pipeline, location), which keeps runners on other machines out.
    pub fn lock(&self, wait: Duration) -> Result<StateLock, LockError> {
        let deadline = std::time::Instant::now() + wait;
        let file = lock_file(&self.state_dir, wait)?;
        let postgres = match &self.postgres {
            None => None,
            Some(target) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let pg_error = |source| LockError::Postgres {
                    store: target.display(),
                    source,
                };
                match PgLock::acquire(target, left).map_err(pg_error)? {
                    Some(lock) => Some(lock),
                    None => {
                        return Err(LockError::Held(format!(
                            "the advisory lock of {}",
                            target.display()
                        )));
                    }
                }
            }
        };
        Ok(StateLock {
            _file: file,
            _postgres: postgres,
        })
    }
}

/// The run's lock, held while a command writes to the state, so two runs never overlap. Released
/// when dropped, and by the OS or the database server if the process dies.
pub struct StateLock {
    _file: File,
    _postgres: Option<PgLock>,
}

/// `STATE/lock`, locked exclusively, polling every 200 ms for up to `wait`.
fn lock_file(state_dir: &Path, wait: Duration) -> Result<File, LockError> {
    let io = |what: String| move |source| LockError::Io { what, source };
    std::fs::create_dir_all(state_dir).map_err(io(format!(
        "creating state directory {}",
        state_dir.display()
    )))?;
    crate::snapshot::atomic::restrict_dir(state_dir)
        .map_err(io(format!("making {} owner-only", state_dir.display())))?;
    let path = state_dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(format!("opening {}", path.display())))?;
    let deadline = std::time::Instant::now() + wait;
    // Before anything else happens in the command, so a blocking wait stalls nothing.
    while file.try_lock_exclusive().is_err() {
        if std::time::Instant::now() >= deadline {
            return Err(LockError::Held(path.display().to_string()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(file)
}
