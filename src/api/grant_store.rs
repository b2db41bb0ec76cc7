//! Where a GHL grant is kept: a file of the state directory, or (an agency grant with
//! `[state] url`) a row of the shared PostgreSQL database, and the lock a refresh is made under.

use super::auth::{StoredTokens, auth_error, lock_store, read_token_store, write_token_store};
use super::error::ApiError;
use crate::secret::Secret;
use crate::state::pg::PgError;
use crate::state::pg_grant::{PgGrantLock, PgGrantTarget};
use std::path::PathBuf;
use std::sync::Arc;

/// How long a refresh waits for another runner's refresh of the same grant in the database.
const GRANT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Where a grant is kept: a file of the state directory (mode 0600, refreshed under a file lock),
/// or, for an agency grant with `[state] url`, a row of the shared PostgreSQL database (refreshed
/// under an advisory lock), so runners on several machines share one grant.
#[derive(Debug, Clone)]
pub enum GrantStore {
    File(PathBuf),
    Postgres(PgGrantTarget),
}

impl Default for GrantStore {
    fn default() -> Self {
        GrantStore::File(PathBuf::new())
    }
}

impl From<PathBuf> for GrantStore {
    fn from(path: PathBuf) -> Self {
        GrantStore::File(path)
    }
}

impl std::fmt::Display for GrantStore {
    /// The file's path, or the database row (its URL without the password).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GrantStore::File(path) => write!(f, "{}", path.display()),
            GrantStore::Postgres(target) => f.write_str(&target.display()),
        }
    }
}

impl GrantStore {
    /// Whether no store was set (a configuration that was not loaded from a file).
    pub fn is_unset(&self) -> bool {
        matches!(self, GrantStore::File(path) if path.as_os_str().is_empty())
    }

    /// The stored grant, explaining how to create it when there is none.
    pub async fn read(&self) -> Result<StoredTokens, ApiError> {
        match self {
            GrantStore::File(path) => read_token_store(path),
            GrantStore::Postgres(target) => {
                let found = pg_blocking(self, {
                    let target = target.clone();
                    move || target.read()
                })
                .await?;
                let json = found.ok_or_else(|| {
                    auth_error(format!(
                        "no GHL tokens in {self}; run `contactsync auth ghl --pipeline FILE` first"
                    ))
                })?;
                grant_from_json(self, &json)
            }
        }
    }

    /// Stores `tokens` (a new grant), replacing what was there.
    pub async fn write(&self, tokens: &StoredTokens) -> Result<(), ApiError> {
        match self {
            GrantStore::File(path) => write_token_store(path, tokens)
                .map_err(|e| auth_error(format!("storing tokens in {}: {e}", path.display()))),
            GrantStore::Postgres(target) => {
                let (target, company, json) = (
                    target.clone(),
                    tokens.company_id.clone(),
                    grant_json(tokens)?,
                );
                pg_blocking(self, move || target.write(company.as_deref(), &json)).await
            }
        }
    }

    /// Takes the grant's lock, waiting while another process refreshes it.
    pub async fn lock(&self) -> Result<GrantLock, ApiError> {
        match self {
            GrantStore::File(path) => Ok(GrantLock::File {
                _lock: lock_store(path).await?,
                path: path.clone(),
            }),
            GrantStore::Postgres(target) => {
                let target = target.clone();
                let lock = pg_blocking(self, move || target.lock(GRANT_LOCK_WAIT)).await?;
                Ok(GrantLock::Postgres {
                    lock: Arc::new(lock),
                    store: self.clone(),
                })
            }
        }
    }
}

/// A grant's lock, held until dropped: what is read and written under it.
pub enum GrantLock {
    File {
        _lock: std::fs::File,
        path: PathBuf,
    },
    Postgres {
        lock: Arc<PgGrantLock>,
        store: GrantStore,
    },
}

impl GrantLock {
    /// The grant as stored now; a token file that cannot be read counts as none (the
    /// caller's own grant is refreshed then).
    pub async fn read(&self) -> Result<Option<StoredTokens>, ApiError> {
        match self {
            GrantLock::File { path, .. } => Ok(read_token_store(path).ok()),
            GrantLock::Postgres { lock, store } => {
                let lock = lock.clone();
                match pg_blocking(store, move || lock.read()).await? {
                    Some(json) => grant_from_json(store, &json).map(Some),
                    None => Ok(None),
                }
            }
        }
    }

    /// Stores the refreshed grant, before its access token is handed out.
    pub async fn write(&self, tokens: &StoredTokens) -> Result<(), ApiError> {
        match self {
            GrantLock::File { path, .. } => write_token_store(path, tokens).map_err(|e| {
                auth_error(format!(
                    "storing refreshed tokens in {}: {e}",
                    path.display()
                ))
            }),
            GrantLock::Postgres { lock, store } => {
                let (lock, company, json) =
                    (lock.clone(), tokens.company_id.clone(), grant_json(tokens)?);
                pg_blocking(store, move || lock.write(company.as_deref(), &json)).await
            }
        }
    }
}

/// Runs a blocking PostgreSQL call off the async threads, naming the store in its error.
async fn pg_blocking<R: Send + 'static>(
    store: &GrantStore,
    call: impl FnOnce() -> Result<R, PgError> + Send + 'static,
) -> Result<R, ApiError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| auth_error(format!("{store}: {e}")))?
        .map_err(|e| auth_error(format!("{store}: {e}")))
}

fn grant_json(tokens: &StoredTokens) -> Result<Secret, ApiError> {
    serde_json::to_string(tokens)
        .map(Secret::new)
        .map_err(|e| auth_error(format!("encoding the GHL grant: {e}")))
}

fn grant_from_json(store: &GrantStore, json: &Secret) -> Result<StoredTokens, ApiError> {
    serde_json::from_str(json.expose())
        .map_err(|e| auth_error(format!("the GHL grant in {store} is unreadable: {e}")))
}
