//! The agency (Company) grant in PostgreSQL (`[state] url`): one row per pipeline, so runners on
//! several machines share one grant. GHL rotates its refresh token (a spent one is refused), so a
//! refresh happens under a session advisory lock of the pipeline's grant, and the runner that takes
//! it reads the row again first: a grant another runner refreshed meanwhile is used, not refreshed
//! again with a refresh token that no longer works.
//!
//! The grant is stored as the JSON of the token store (its tokens are secrets: never logged).

use super::pg::{PgConn, PgError, PgTarget, redacted_url};
use crate::secret::Secret;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Which row holds a pipeline's agency grant. `Debug` shows the URL as `[redacted]`.
#[derive(Debug, Clone)]
pub struct PgGrantTarget {
    /// `[state] url`, with its password.
    pub url: Secret,
    /// The pipeline's name (`[pipeline] name`).
    pub pipeline: String,
}

impl PgGrantTarget {
    /// How messages name the row: the URL without its password, and the pipeline.
    pub fn display(&self) -> String {
        format!(
            "the database {} (agency grant of pipeline {:?})",
            redacted_url(&self.url),
            self.pipeline
        )
    }

    fn target(&self) -> PgTarget {
        PgTarget {
            url: self.url.clone(),
            pipeline: self.pipeline.clone(),
            location: String::new(),
        }
    }

    /// The advisory-lock key of this pipeline's grant (distinct from every run lock's key, which
    /// hashes another prefix).
    fn lock_key(&self) -> i64 {
        let mut hash = Sha256::new();
        hash.update(b"contactsync agency grant lock\0");
        hash.update(self.pipeline.as_bytes());
        let digest = hash.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(first)
    }

    /// The stored grant's JSON, `None` when `auth ghl` never stored one.
    pub fn read(&self) -> Result<Option<Secret>, PgError> {
        let conn = PgConn::open(&self.target(), "agency grant")?;
        let pipeline = self.pipeline.clone();
        conn.call_repeatable(move |client, _| read_row(client, &pipeline))
    }

    /// Stores a grant (`auth ghl`), replacing the pipeline's previous one.
    pub fn write(&self, company_id: Option<&str>, grant: &Secret) -> Result<(), PgError> {
        let conn = PgConn::open(&self.target(), "agency grant")?;
        let (pipeline, company, grant) = (
            self.pipeline.clone(),
            company_id.map(str::to_string),
            grant.clone(),
        );
        // An upsert of the same values: safe to run again.
        conn.call_repeatable(move |client, _| write_row(client, &pipeline, &company, &grant))
    }

    /// Takes the pipeline's grant lock, waiting up to `wait` for another runner's refresh. The
    /// lock is held by a connection of its own, never made again, and released when the value is
    /// dropped (or the process dies).
    pub fn lock(&self, wait: Duration) -> Result<PgGrantLock, PgError> {
        let conn = PgConn::open_session(&self.target(), "agency grant lock")?;
        let key = self.lock_key();
        conn.call(move |client| {
            client.batch_execute(&format!("SET lock_timeout = {}", wait.as_millis().max(1)))?;
            client.execute("SELECT pg_advisory_lock($1)", &[&key])?;
            Ok(())
        })?;
        Ok(PgGrantLock {
            conn,
            pipeline: self.pipeline.clone(),
        })
    }
}

/// The lock of a pipeline's grant: reads and writes the row on the connection that holds it.
pub struct PgGrantLock {
    conn: PgConn,
    pipeline: String,
}

impl PgGrantLock {
    /// The grant as stored now (another runner may have refreshed it).
    pub fn read(&self) -> Result<Option<Secret>, PgError> {
        let pipeline = self.pipeline.clone();
        self.conn.call(move |client| read_row(client, &pipeline))
    }

    /// Stores the refreshed grant.
    pub fn write(&self, company_id: Option<&str>, grant: &Secret) -> Result<(), PgError> {
        let (pipeline, company, grant) = (
            self.pipeline.clone(),
            company_id.map(str::to_string),
            grant.clone(),
        );
        self.conn
            .call(move |client| write_row(client, &pipeline, &company, &grant))
    }
}

fn read_row(client: &mut postgres::Client, pipeline: &str) -> Result<Option<Secret>, PgError> {
    let row = client.query_opt(
        "SELECT grant_json FROM contactsync_agency_grants WHERE pipeline = $1",
        &[&pipeline],
    )?;
    match row {
        Some(row) => Ok(Some(Secret::new(row.try_get::<_, String>(0)?))),
        None => Ok(None),
    }
}

fn write_row(
    client: &mut postgres::Client,
    pipeline: &str,
    company_id: &Option<String>,
    grant: &Secret,
) -> Result<(), PgError> {
    client.execute(
        "INSERT INTO contactsync_agency_grants (pipeline, company_id, grant_json, updated_at)
         VALUES ($1, $2, $3, now())
         ON CONFLICT (pipeline) DO UPDATE SET company_id = EXCLUDED.company_id,
           grant_json = EXCLUDED.grant_json, updated_at = now()",
        &[&pipeline, company_id, &grant.expose()],
    )?;
    Ok(())
}
