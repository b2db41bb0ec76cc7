//! Snapshots in object storage. With `[snapshots] url = "s3://bucket/prefix"` (also `gs://`,
//! `az://`, `file:///absolute/path`) every run's stage folders are published under a Hive-style
//! layout, `<prefix>/location=<location id>/run=<run id>/<stage>/<file>`, so DuckDB, Spark or Trino
//! read every location's snapshots at once; and a runner whose state directory is empty or behind
//! (a fresh pod, another machine) first fetches the location's latest published run, so its
//! previous-run comparisons and extract cursors work as if it had run there.
//!
//! A run's `_manifest.json` lists every file with its size and SHA-256 and is written last: a reader
//! that sees it sees a complete run. A run prefix without one is a publish under way or one that
//! failed; the next run of the location publishes what is missing (publishing is idempotent).
//! Credentials and endpoints come from the standard environment variables of each service
//! (`AWS_*`, `GOOGLE_*`, `AZURE_*`), read by object_store's `from_env` builders.

use super::run::{RunDir, list_runs, runs_dir};
use crate::api::config::HttpConfig;
use crate::clock::Clock;
use chrono::{DateTime, Utc};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutPayload, RetryConfig,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;

/// Name of a published run's manifest, beside its stage folders. The leading `_` makes Spark,
/// Hive and Trino skip it when they read the stage files as tables.
pub const RUN_MANIFEST: &str = "_manifest.json";

/// The stage folders of a run that are published, in the order the stages write them.
pub const STAGES: [&str; 4] = ["extract", "transform", "load", "audit"];

/// The file the audit writes last: a local run holding it went through every stage and is
/// published (or owed to the store) whole.
const AUDIT_DONE: &str = "audit/report.json";

/// `[snapshots]`: where runs are published. Absent: runs stay in the state directory only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotsConfig {
    /// `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` or
    /// `file:///absolute/path`.
    pub url: Option<String>,
}

impl SnapshotsConfig {
    /// Checks the URL without touching the network or reading credentials.
    pub fn validate(&self) -> Result<(), String> {
        match &self.url {
            Some(url) => parse_url(url).map(|_| ()),
            None => Ok(()),
        }
    }
}

/// Errors publishing or fetching snapshots; each names the object or file concerned.
/// object_store's errors print their causes in their own message, so they are held as `error`
/// rather than as a source: a cause chain would print each cause twice.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("[snapshots] url {url:?}: {message}")]
    Open { url: String, message: String },
    #[error("publishing {object}: {error}")]
    Put {
        object: String,
        error: object_store::Error,
    },
    #[error("reading {object}: {error}")]
    Get {
        object: String,
        error: object_store::Error,
    },
    #[error("listing {prefix}: {error}")]
    List {
        prefix: String,
        error: object_store::Error,
    },
    #[error("{action} {}: {source}", path.display())]
    Local {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{object}: {message}")]
    Invalid { object: String, message: String },
}

/// `_manifest.json` of a published run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunManifest {
    pub schema_version: u32,
    pub pipeline: String,
    pub location_id: String,
    pub run_id: String,
    pub published_at: DateTime<Utc>,
    /// Every published file of the run, by path relative to the run (`extract/ghl/contacts.parquet`).
    pub files: Vec<PublishedFile>,
}

/// One file of a published run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PublishedFile {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

impl RunManifest {
    /// True when the run's plan was accepted (the same test as [`RunDir::plan_committed`]), so a
    /// later run's triggers measure "new" against it.
    fn acted(&self) -> bool {
        let has = |p: &str| self.files.iter().any(|f| f.path == p);
        has("extract/manifest.json") && has("load/plan.parquet") && !has("load/refused.json")
    }
}

/// What [`SnapshotStore::prepare`] did before a run.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Prepared {
    /// Runs fetched from the store into the state directory, newest first.
    pub hydrated: Vec<String>,
    /// Earlier local runs whose publishing was finished now.
    pub published: Vec<String>,
}

/// One location's part of the store.
#[derive(Debug)]
pub struct SnapshotStore {
    store: Arc<dyn ObjectStore>,
    /// `<prefix>/location=<id>` inside the store.
    root: ObjectPath,
    /// The same as a URL, for messages: `s3://bucket/prefix/location=<id>`.
    root_url: String,
    pipeline: String,
    location_id: String,
    /// Objects this process has put, with the SHA-256 put: a file a later stage rewrote is put again.
    published: Mutex<HashMap<String, String>>,
    /// Dates a run's manifest (`published_at`).
    clock: Arc<dyn Clock>,
}

/// A checked `[snapshots] url`: the kind of store and the prefix inside it.
fn parse_url(raw: &str) -> Result<(url::Url, ObjectStoreScheme, ObjectPath), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL ({e}): {raw:?}"))?;
    match url.scheme() {
        "s3" | "gs" | "az" => {
            if url.host_str().is_none_or(str::is_empty) {
                return Err(format!("names no bucket or container: {raw:?}"));
            }
        }
        "file" => {
            if url.host_str().is_some_and(|h| !h.is_empty()) {
                return Err(format!(
                    "a file URL must hold an absolute path (file:///path), got {raw:?}"
                ));
            }
        }
        other => {
            return Err(format!(
                "unsupported scheme {other:?} in {raw:?}: use s3://, gs://, az:// or file:///absolute/path"
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "takes no query or fragment; credentials and options come from the environment: {raw:?}"
        ));
    }
    let (scheme, prefix) = ObjectStoreScheme::parse(&url).map_err(|e| format!("{e}"))?;
    Ok((url, scheme, prefix))
}

/// object_store's retries follow the pipeline's `[http]` policy, like every other request.
fn retry_config(http: &HttpConfig) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(http.backoff_base_ms),
            max_backoff: Duration::from_millis(http.backoff_max_ms),
            base: 2.0,
        },
        max_retries: http.max_attempts.saturating_sub(1),
        retry_timeout: RetryConfig::default().retry_timeout,
    }
}

impl SnapshotStore {
    /// The store of a pipeline's location, or `None` without `[snapshots] url`.
    pub fn open(
        snapshots: &SnapshotsConfig,
        pipeline: &str,
        location_id: &str,
        http: &HttpConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<Self>, StoreError> {
        match &snapshots.url {
            Some(url) => Self::new(url, pipeline, location_id, http, clock).map(Some),
            None => Ok(None),
        }
    }

    /// The part of the store at `url` that holds `location_id`'s runs; `clock` dates what it
    /// publishes.
    pub fn new(
        url: &str,
        pipeline: &str,
        location_id: &str,
        http: &HttpConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let open_error = |message: String| StoreError::Open {
            url: url.to_string(),
            message,
        };
        let (parsed, scheme, prefix) = parse_url(url).map_err(open_error)?;
        let retry = retry_config(http);
        let store: Arc<dyn ObjectStore> = match scheme {
            ObjectStoreScheme::Local => Arc::new(object_store::local::LocalFileSystem::new()),
            ObjectStoreScheme::AmazonS3 => Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(parsed.as_str())
                    .with_retry(retry)
                    .build()
                    .map_err(|e| open_error(e.to_string()))?,
            ),
            ObjectStoreScheme::GoogleCloudStorage => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(parsed.as_str())
                    .with_retry(retry)
                    .build()
                    .map_err(|e| open_error(e.to_string()))?,
            ),
            ObjectStoreScheme::MicrosoftAzure => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(parsed.as_str())
                    .with_retry(retry)
                    .build()
                    .map_err(|e| open_error(e.to_string()))?,
            ),
            other => return Err(open_error(format!("unsupported store {other:?}"))),
        };
        let location = format!("location={location_id}");
        let root = prefix.clone().join(location.as_str());
        Ok(SnapshotStore {
            store,
            root_url: format!("{}/{location}", url.trim_end_matches('/')),
            root,
            pipeline: pipeline.to_string(),
            location_id: location_id.to_string(),
            published: Mutex::new(HashMap::new()),
            clock,
        })
    }

    /// `location=<id>/run=<id>` inside the store.
    fn run_path(&self, run_id: &str) -> ObjectPath {
        self.root.clone().join(format!("run={run_id}").as_str())
    }

    /// The object of a run's file (`rel` relative to the run, `/`-separated).
    fn object(&self, run_id: &str, rel: &str) -> ObjectPath {
        rel.split('/')
            .fold(self.run_path(run_id), |path, part| path.join(part))
    }

    /// The object as a URL, for messages.
    fn object_url(&self, run_id: &str, rel: &str) -> String {
        format!("{}/run={run_id}/{rel}", self.root_url)
    }

    /// Before a run: fetches the location's latest published run when it is newer than every local
    /// run (a fresh or stale state directory), and finishes publishing local runs that went
    /// through every stage but whose manifest is not in the store yet (a publish that failed).
    pub async fn prepare(&self, state_dir: &Path) -> Result<Prepared, StoreError> {
        let remote = self.remote_runs().await?;
        let mut complete: Vec<(String, RunManifest)> = Vec::new();
        // Newest first, stopping at the first complete run and, when that one did not act, at the
        // newest complete run that did: the two runs a new run's comparisons look for.
        for id in remote.iter().rev() {
            if let Some(manifest) = self.read_manifest(id).await? {
                let acted = manifest.acted();
                complete.push((id.clone(), manifest));
                if acted {
                    break;
                }
            }
        }
        let local =
            list_runs(state_dir).map_err(local_error("listing runs in", &runs_dir(state_dir)))?;
        let local_newest = local.last().map(|r| r.id.clone());
        let mut prepared = Prepared::default();
        for (id, manifest) in &complete {
            if local_newest.as_ref().is_none_or(|newest| id > newest) {
                self.hydrate(state_dir, manifest).await?;
                prepared.hydrated.push(id.clone());
            }
        }
        let newest_published = complete.first().map(|(id, _)| id.clone());
        for run in local {
            let owed = newest_published.as_ref().is_none_or(|p| &run.id > p);
            if owed && run.path.join(AUDIT_DONE).exists() {
                tracing::info!(run = %run.id, "Publishing an earlier run the store lacks");
                self.publish_run(&run).await?;
                prepared.published.push(run.id);
            }
        }
        Ok(prepared)
    }

    /// Publishes the files one stage wrote in `run` (`stage` is one of [`STAGES`]); files this
    /// process already put unchanged are skipped.
    pub async fn publish_stage(&self, run: &RunDir, stage: &str) -> Result<usize, StoreError> {
        let mut put = 0;
        for rel in local_files(&run.path, &[stage])? {
            if self.put_file(run, &rel, None).await?.1 {
                put += 1;
            }
        }
        Ok(put)
    }

    /// Publishes whatever of `run` the store lacks, then its manifest, last. Files an earlier
    /// attempt left in the store with their local size are not put again (objects are put whole
    /// or not at all, and a finished run's files do not change).
    pub async fn publish_run(&self, run: &RunDir) -> Result<RunManifest, StoreError> {
        let remote = self.remote_sizes(&run.id).await?;
        let mut files = Vec::new();
        for rel in local_files(&run.path, &STAGES)? {
            files.push(self.put_file(run, &rel, Some(&remote)).await?.0);
        }
        let manifest = RunManifest {
            schema_version: super::SCHEMA_VERSION,
            pipeline: self.pipeline.clone(),
            location_id: self.location_id.clone(),
            run_id: run.id.clone(),
            published_at: self.clock.now(),
            files,
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| StoreError::Invalid {
            object: self.object_url(&run.id, RUN_MANIFEST),
            message: e.to_string(),
        })?;
        self.store
            .put(&self.object(&run.id, RUN_MANIFEST), PutPayload::from(json))
            .await
            .map_err(|error| StoreError::Put {
                object: self.object_url(&run.id, RUN_MANIFEST),
                error,
            })?;
        tracing::info!(
            run = %run.id,
            files = manifest.files.len(),
            store = %self.root_url,
            "Run published"
        );
        Ok(manifest)
    }

    /// Puts one file of a run unless it is known to be there; returns its entry and whether it was
    /// put.
    async fn put_file(
        &self,
        run: &RunDir,
        rel: &str,
        remote: Option<&HashMap<String, u64>>,
    ) -> Result<(PublishedFile, bool), StoreError> {
        let path = run.path.join(rel);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(local_error("reading", &path))?;
        let entry = PublishedFile {
            path: rel.to_string(),
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
        };
        let key = format!("{}/{rel}", run.id);
        let known = self.published_sha(&key);
        let there = match known {
            Some(sha) => sha == entry.sha256,
            None => remote
                .and_then(|r| r.get(rel))
                .is_some_and(|&size| size == entry.bytes),
        };
        if there {
            return Ok((entry, false));
        }
        self.store
            .put(&self.object(&run.id, rel), PutPayload::from(bytes))
            .await
            .map_err(|error| StoreError::Put {
                object: self.object_url(&run.id, rel),
                error,
            })?;
        self.published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, entry.sha256.clone());
        Ok((entry, true))
    }

    fn published_sha(&self, key: &str) -> Option<String> {
        self.published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// The run ids published for the location (complete or not), oldest first.
    async fn remote_runs(&self) -> Result<Vec<String>, StoreError> {
        let listing = self
            .store
            .list_with_delimiter(Some(&self.root))
            .await
            .map_err(|error| StoreError::List {
                prefix: self.root_url.clone(),
                error,
            })?;
        let mut ids: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename()?.strip_prefix("run=").map(str::to_string))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Sizes of the objects already under a run's prefix, by path relative to the run.
    async fn remote_sizes(&self, run_id: &str) -> Result<HashMap<String, u64>, StoreError> {
        use futures_util::TryStreamExt;
        let prefix = self.run_path(run_id);
        let objects: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|error| StoreError::List {
                prefix: format!("{}/run={run_id}", self.root_url),
                error,
            })?;
        Ok(objects
            .into_iter()
            .filter_map(|o| {
                let rel: Vec<String> = o
                    .location
                    .prefix_match(&prefix)?
                    .map(|part| part.as_ref().to_string())
                    .collect();
                Some((rel.join("/"), o.size))
            })
            .collect())
    }

    /// A run's manifest, or `None` when the run is not (yet) complete in the store.
    pub async fn read_manifest(&self, run_id: &str) -> Result<Option<RunManifest>, StoreError> {
        let object = self.object_url(run_id, RUN_MANIFEST);
        let bytes = match self.get(run_id, RUN_MANIFEST).await {
            Ok(bytes) => bytes,
            Err(StoreError::Get {
                error: object_store::Error::NotFound { .. },
                ..
            }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let manifest: RunManifest =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Invalid {
                object: object.clone(),
                message: format!("not a run manifest: {e}"),
            })?;
        if manifest.run_id != run_id || manifest.location_id != self.location_id {
            return Err(StoreError::Invalid {
                object,
                message: format!(
                    "names run {} of location {}: it was copied from elsewhere",
                    manifest.run_id, manifest.location_id
                ),
            });
        }
        Ok(Some(manifest))
    }

    async fn get(&self, run_id: &str, rel: &str) -> Result<bytes::Bytes, StoreError> {
        let get_error = |error| StoreError::Get {
            object: self.object_url(run_id, rel),
            error,
        };
        self.store
            .get(&self.object(run_id, rel))
            .await
            .map_err(get_error)?
            .bytes()
            .await
            .map_err(get_error)
    }

    /// Fetches a published run into `state_dir/runs/<id>`, checking each file against the
    /// manifest. The run appears whole or not at all: it is written to a hidden folder first.
    async fn hydrate(&self, state_dir: &Path, manifest: &RunManifest) -> Result<(), StoreError> {
        let id = &manifest.run_id;
        let runs = runs_dir(state_dir);
        let target = runs.join(id);
        let staging = runs.join(format!(".hydrate-{id}"));
        let local = local_error;
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(local("clearing", &staging))?;
        }
        for file in &manifest.files {
            let object = self.object_url(id, &file.path);
            let rel = safe_relative(&file.path).ok_or_else(|| StoreError::Invalid {
                object: self.object_url(id, RUN_MANIFEST),
                message: format!("lists a path outside the run: {:?}", file.path),
            })?;
            let bytes = self.get(id, &file.path).await?;
            let sha = hex::encode(Sha256::digest(&bytes));
            if bytes.len() as u64 != file.bytes || sha != file.sha256 {
                return Err(StoreError::Invalid {
                    object,
                    message: format!(
                        "{} bytes with SHA-256 {sha}; the manifest says {} bytes with {}",
                        bytes.len(),
                        file.bytes,
                        file.sha256
                    ),
                });
            }
            let path = staging.join(rel);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(local("creating", dir))?;
            }
            std::fs::write(&path, &bytes).map_err(local("writing", &path))?;
        }
        std::fs::rename(&staging, &target).map_err(local("moving a fetched run to", &target))?;
        tracing::info!(run = %id, store = %self.root_url, files = manifest.files.len(), "Run fetched from the store");
        Ok(())
    }
}

/// The error of a local file operation, naming the file.
fn local_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Local {
        action,
        path,
        source,
    }
}

/// A manifest's `/`-separated path as a relative path that stays inside the run.
fn safe_relative(rel: &str) -> Option<PathBuf> {
    let parts: Vec<&str> = rel.split('/').collect();
    let ok = !parts.is_empty()
        && parts
            .iter()
            .all(|p| !p.is_empty() && *p != "." && *p != ".." && !p.contains('\\'));
    ok.then(|| parts.iter().collect())
}

/// The files under the given stage folders of a run, as `/`-separated paths relative to the run,
/// sorted; hidden names (temporary files of atomic writes) are left out.
fn local_files(run_dir: &Path, stages: &[&str]) -> Result<Vec<String>, StoreError> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<(), StoreError> {
        let entries = std::fs::read_dir(dir).map_err(local_error("listing", dir))?;
        for entry in entries {
            let entry = entry.map_err(local_error("listing", dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let child = format!("{rel}/{name}");
            if path.is_dir() {
                walk(&path, &child, out)?;
            } else {
                out.push(child);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for stage in stages {
        let dir = run_dir.join(stage);
        if dir.is_dir() {
            walk(&dir, stage, &mut out)?;
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests;
