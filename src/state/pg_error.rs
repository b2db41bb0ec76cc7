//! Errors of the PostgreSQL state store, apart from the store so that its connection sessions
//! (`pg_session`) name them without importing the store.

use thiserror::Error;

/// Errors of the PostgreSQL state store.
#[derive(Debug, Error)]
pub enum PgError {
    #[error(transparent)]
    Postgres(#[from] postgres::Error),
    /// `[state] url` cannot be read (checked at validation too; this is a library caller's URL).
    #[error("{0}")]
    Url(String),
    /// Connecting failed: names the server and the TLS mode, never the password.
    #[error("connecting to {server} (sslmode={ssl_mode}): {source}")]
    Connect {
        server: String,
        ssl_mode: &'static str,
        source: postgres::Error,
    },
    #[error("connecting to {server}: {reason}")]
    Tls { server: String, reason: String },
    #[error("its connection thread could not start: {0}")]
    Thread(std::io::Error),
    #[error("its connection thread stopped")]
    WorkerGone,
    /// A connection that is not made again (the run's lock) was lost.
    #[error("its connection was lost ({0}) and is not made again")]
    ConnectionLost(String),
    #[error("the server dropped the connection and {tries} tries to carry on failed: {last}")]
    GaveUp { tries: u32, last: Box<PgError> },
    /// The session holding the run's advisory lock ended: another runner may hold the lock now.
    #[error(
        "the run's advisory lock is no longer held (the database session that held it ended, so \
         another runner may take it): stopped before the next write; run again to finish"
    )]
    LockLost,
    #[error(
        "the database's schema is version {found}, newer than this build's {build}; upgrade contactsync"
    )]
    SchemaTooNew { found: i32, build: i32 },
}
