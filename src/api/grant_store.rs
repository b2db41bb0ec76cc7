//! Where a GHL grant is kept: a file of the state directory, or (an agency grant with
//! `[state] url`) a row of the shared PostgreSQL database, and the lock a refresh is made under.

use super::error::ApiError;
use crate::secret::Secret;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The tokens kept in the state directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredTokens {
    pub access_token: Secret,
    pub refresh_token: Secret,
    pub expires_at: DateTime<Utc>,
    /// Space-separated scopes granted.
    pub scope: String,
    pub obtained_at: DateTime<Utc>,
    /// The agency (`companyId`) of a Company grant; also sent with location grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
}

impl StoredTokens {
    /// Scopes granted, as a list.
    pub fn scopes(&self) -> Vec<&str> {
        self.scope.split_whitespace().collect()
    }
}

/// A grant kept in a database that runners on several machines share (`state::pg_grant` keeps it
/// in PostgreSQL; `config` joins the two). The HTTP layer sees the database only through this,
/// so it depends on no storage layer. Errors are messages that already name what failed.
pub trait SharedGrant: std::fmt::Debug + Send + Sync {
    /// Where the grant is kept, for messages (never a password).
    fn describe(&self) -> String;
    /// The grant's JSON, `None` when none was stored.
    fn read(&self) -> Result<Option<Secret>, String>;
    /// Stores the grant's JSON, replacing what was there.
    fn write(&self, company_id: Option<&str>, grant: &Secret) -> Result<(), String>;
    /// Takes the grant's lock, waiting at most `wait` while another runner refreshes it.
    fn lock(&self, wait: Duration) -> Result<Box<dyn SharedGrantLock>, String>;
}

/// The lock of a [`SharedGrant`], held until dropped, and the row read and written under it.
pub trait SharedGrantLock: Send + Sync {
    fn read(&self) -> Result<Option<Secret>, String>;
    fn write(&self, company_id: Option<&str>, grant: &Secret) -> Result<(), String>;
}

/// How long a refresh waits for another runner's refresh of the same grant in the database.
const GRANT_LOCK_WAIT: Duration = Duration::from_secs(120);

/// Where a grant is kept: a file of the state directory (mode 0600, refreshed under a file lock),
/// or, for an agency grant with `[state] url`, a row of the shared PostgreSQL database (refreshed
/// under an advisory lock), so runners on several machines share one grant.
#[derive(Debug, Clone)]
pub enum GrantStore {
    File(PathBuf),
    Postgres(Arc<dyn SharedGrant>),
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
            GrantStore::Postgres(target) => f.write_str(&target.describe()),
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
                    lock: Arc::from(lock),
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
        lock: Arc<dyn SharedGrantLock>,
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
    call: impl FnOnce() -> Result<R, String> + Send + 'static,
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

pub(crate) fn auth_error(message: String) -> ApiError {
    ApiError::Auth {
        api: "ghl".into(),
        message,
    }
}

/// Reads the token store, explaining how to create it when missing.
pub fn read_token_store(path: &Path) -> Result<StoredTokens, ApiError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        auth_error(format!(
            "no GHL tokens at {} ({e}); run `contactsync auth ghl --pipeline FILE` first",
            path.display()
        ))
    })?;
    serde_json::from_str(&text)
        .map_err(|e| auth_error(format!("token store {} is unreadable: {e}", path.display())))
}

/// An exclusive lock on `<store>.lock`, held by the returned file until it is dropped; waits
/// (off the async threads) while another process holds it.
pub(crate) async fn lock_store(store: &Path) -> Result<std::fs::File, ApiError> {
    let mut name = store.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    let opened = path.clone();
    let locked = tokio::task::spawn_blocking(move || {
        if let Some(dir) = opened.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&opened)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|e| auth_error(format!("locking {}: {e}", path.display())))?;
    locked.map_err(|e| auth_error(format!("locking {}: {e}", path.display())))
}

/// Writes the token store atomically with mode 0600.
pub fn write_token_store(path: &Path, tokens: &StoredTokens) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(tokens).map_err(std::io::Error::other)?;
    crate::snapshot::atomic::write_private(path, &json)
}
