//! The pipeline file: one typed, validated TOML document per pipeline.
//!
//! Every table uses `deny_unknown_fields`, so a typo is an error naming the key and line rather than
//! a silently ignored setting. String values may reference `${ENV_VAR}` so secrets stay out of files.

pub use crate::api::config::{
    ALL_INSTALLED, BulkSmsConfig, GhlAuthConfig, GhlConfig, GhlRateLimitConfig, HttpConfig,
    LocationSelection,
};
pub use crate::env_vars::{env_string, expand_env};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Errors reading or validating a pipeline file.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read pipeline file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid pipeline file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid pipeline file {path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// A whole pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Name, state directory and defaults shared by every stage.
    pub pipeline: PipelineSection,
    /// The GHL location this pipeline syncs.
    pub ghl: GhlConfig,
    /// The BulkSMS account this pipeline sends through.
    pub bulksms: BulkSmsConfig,
    /// Timeouts and retry policy of the shared HTTP layer.
    #[serde(default)]
    pub http: HttpConfig,
    /// What extract reads.
    #[serde(default)]
    pub extract: crate::extract::ExtractConfig,
    /// Matching, linking and the desired state.
    #[serde(default)]
    pub transform: crate::transform::TransformConfig,
    /// Planning and applying writes, with safety limits.
    #[serde(default)]
    pub load: crate::load::LoadConfig,
    /// Reconciliation thresholds and report options.
    #[serde(default)]
    pub audit: crate::audit::AuditConfig,
    /// `[migrate]`: column mapping of `contactsync migrate`.
    #[serde(default)]
    pub migrate: crate::migrate::MigrateConfig,
    /// `[serve]`: the webhook receiver of `contactsync serve`.
    #[serde(default)]
    pub serve: crate::serve::ServeConfig,
    /// `[state]`: where the ledger and the run's lock live (default: the state directory).
    #[serde(default)]
    pub state: StateSection,
    /// `[snapshots]`: object storage each run's snapshots are published to (absent: none).
    #[serde(default)]
    pub snapshots: crate::snapshot::store::SnapshotsConfig,
    /// Where this file was read from; relative paths inside it resolve against its folder.
    #[serde(skip)]
    pub source_path: PathBuf,
}

/// `[pipeline]`: identity and shared defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// Name used in logs, run ids and reports.
    pub name: String,
    /// Directory holding runs, cursors, tokens, the ledger and the lock. Relative to the file.
    pub state_dir: PathBuf,
    /// ISO 3166 region used to read national phone numbers (e.g. "US", "GB").
    #[serde(default = "default_region")]
    pub default_region: String,
    /// With `[ghl] locations`: how many locations one run works on at once. Each location has
    /// its own GHL rate budget, so this bounds memory and connections, not API speed.
    #[serde(default = "default_max_parallel_locations")]
    pub max_parallel_locations: usize,
}

fn default_region() -> String {
    "US".to_string()
}

/// `[state]`: the shared state store of runners on several machines.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    /// `postgres://user:password@host:port/database?sslmode=verify-full`: the ledger's rows and the
    /// run's advisory lock in PostgreSQL, keyed by (pipeline name, location id). Absent: the SQLite
    /// ledger and the lock file in `state_dir`. `${ENV}` references expand (a password is a secret).
    #[serde(default)]
    pub url: Option<crate::secret::Secret>,
}

impl StateSection {
    /// Checks the URL's form without connecting; messages never quote the password.
    fn validate(&self) -> Result<(), String> {
        let Some(url) = &self.url else {
            return Ok(());
        };
        let raw = url.expose();
        let scheme = raw.split_once("://").map(|(s, _)| s);
        if !matches!(scheme, Some("postgres" | "postgresql")) {
            return Err("must be a postgres:// or postgresql:// URL".into());
        }
        let spec = crate::state::pg_tls::ConnectSpec::parse(raw)?;
        if spec.config.get_dbname().is_none() {
            return Err("names no database (postgres://user@host/DATABASE)".into());
        }
        if let Some(path) = &spec.root_cert
            && !path.is_file()
        {
            return Err(format!(
                "sslrootcert {}: no such file (the CA certificates, PEM, to trust)",
                path.display()
            ));
        }
        Ok(())
    }
}

fn default_max_parallel_locations() -> usize {
    8
}

/// Which locations a pipeline file runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locations {
    /// `location_id`: one location, state directly in `state_dir` (the layout before agencies).
    Single(String),
    /// `locations = [..]`: these, each with its state in `state_dir/locations/<id>/`.
    Listed(Vec<String>),
    /// `locations = "all-installed"`: every location the agency app is installed in.
    AllInstalled,
}

/// Words in a key that mark its value as a secret.
const SECRET_KEY_PARTS: &[&str] = &[
    "secr",
    "token",
    "pass",
    "pwd",
    "key",
    "auth",
    "code",
    "credential",
];

fn looks_secret(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
}

/// A TOML error with its line quoted, as toml's own message does, but with the value of a key that
/// looks secret (`token_secret = ...`, `auth = { ... }`) replaced by `<hidden>` in the quoted line
/// and in the message: a typo must not print the secret next to it into a terminal or a CI log.
fn parse_error_message(text: &str, error: &toml::de::Error) -> String {
    let mut message = error.message().trim().to_string();
    let Some(span) = error.span() else {
        return message;
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..start].chars().count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let quoted = match line.split_once('=') {
        Some((key, value)) if looks_secret(key) => {
            for word in value
                .split(|c: char| c.is_whitespace() || "\"',{}[]=".contains(c))
                .filter(|w| w.len() >= 3)
            {
                message = message.replace(word, "<hidden>");
            }
            format!("{}= <hidden>", key)
        }
        _ => line.to_string(),
    };
    format!("line {line_no}, column {column}: {message}\n  {line_no} | {quoted}")
}

impl PipelineConfig {
    /// Reads, parses and validates a pipeline file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: PipelineConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: parse_error_message(&text, &e),
        })?;
        config.source_path = path.to_path_buf();
        let state_dir = config.state_dir();
        if let GhlAuthConfig::AgencyOauth {
            company_token_store,
            ..
        } = &mut config.ghl.auth
        {
            *company_token_store = match &config.state.url {
                Some(url) => crate::api::grant_store::GrantStore::Postgres(std::sync::Arc::new(
                    crate::state::pg_grant::PgGrantTarget {
                        url: url.clone(),
                        pipeline: config.pipeline.name.clone(),
                    },
                )),
                None => crate::api::agency::company_token_store_path(&state_dir).into(),
            };
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks values serde cannot: ranges, URL schemes, regions. Pure: no files, network or secrets used.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: self.source_path.clone(),
            key: key.to_string(),
            message,
        };
        check_base_url(&self.ghl.base_url).map_err(|m| invalid("ghl.base_url", m))?;
        check_base_url(&self.bulksms.base_url).map_err(|m| invalid("bulksms.base_url", m))?;
        if let Some(app) = self.ghl.auth.app() {
            if let Some(url) = app.authorize_url {
                check_base_url(url).map_err(|m| invalid("ghl.auth.authorize_url", m))?;
            }
            if let Some(url) = app.redirect_uri {
                check_base_url(url).map_err(|m| invalid("ghl.auth.redirect_uri", m))?;
            }
        }
        self.ghl
            .auth
            .validate()
            .map_err(|(key, m)| invalid(key, m))?;
        match (&self.ghl.locations, self.ghl.location_id.trim().is_empty()) {
            (None, true) => {
                return Err(invalid(
                    "ghl.location_id",
                    "must be set (one location), or `ghl.locations` instead (many)".into(),
                ));
            }
            (Some(_), false) => {
                return Err(invalid(
                    "ghl.locations",
                    "cannot be set together with `ghl.location_id`: use one of the two".into(),
                ));
            }
            (Some(LocationSelection::Word(word)), _) if word != ALL_INSTALLED => {
                return Err(invalid(
                    "ghl.locations",
                    format!("must be a list of location ids or \"{ALL_INSTALLED}\", got {word:?}"),
                ));
            }
            (Some(LocationSelection::List(ids)), _) => {
                check_location_ids(ids).map_err(|m| invalid("ghl.locations", m))?
            }
            _ => {}
        }
        if self.pipeline.max_parallel_locations == 0 {
            return Err(invalid(
                "pipeline.max_parallel_locations",
                "must be at least 1".into(),
            ));
        }
        if let Some(default) = &self.bulksms.default_location {
            if let Some(LocationSelection::List(ids)) = &self.ghl.locations
                && !ids.contains(default)
            {
                return Err(invalid(
                    "bulksms.default_location",
                    format!("{default:?} is not one of `ghl.locations`"),
                ));
            }
            if self.ghl.locations.is_none() {
                return Err(invalid(
                    "bulksms.default_location",
                    "only applies with `ghl.locations` (many locations on one account)".into(),
                ));
            }
        }
        let share = self.ghl.rate_limit.share;
        if !(share > 0.0 && share <= 1.0) {
            return Err(invalid(
                "ghl.rate_limit.share",
                format!("must be in (0, 1], got {share}"),
            ));
        }
        if self.ghl.rate_limit.burst == 0 || self.ghl.rate_limit.window_ms == 0 {
            return Err(invalid(
                "ghl.rate_limit",
                "burst and window_ms must be positive".into(),
            ));
        }
        if self.http.max_attempts == 0 {
            return Err(invalid("http.max_attempts", "must be at least 1".into()));
        }
        let region = &self.pipeline.default_region;
        if region.len() != 2 || !region.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(invalid(
                "pipeline.default_region",
                format!("must be a two-letter upper-case ISO 3166 code, got {region:?}"),
            ));
        }
        self.extract
            .validate()
            .map_err(|(key, m)| invalid(&format!("extract.{key}"), m))?;
        self.transform
            .survivorship
            .validate()
            .map_err(|m| invalid("transform.survivorship", m))?;
        self.transform
            .triggers
            .validate()
            .map_err(|(key, m)| invalid(&format!("transform.triggers.{key}"), m))?;
        self.transform
            .workflows
            .validate()
            .map_err(|(key, m)| invalid(&format!("transform.workflows.{key}"), m))?;
        if !(0.0..=1.0).contains(&self.load.max_merges) {
            return Err(invalid(
                "load.max_merges",
                format!(
                    "is a share of the location's contacts, from 0.0 to 1.0; got {}",
                    self.load.max_merges
                ),
            ));
        }
        if let Some(quiet) = &self.load.quiet_hours {
            quiet
                .validate()
                .map_err(|(key, m)| invalid(&format!("load.quiet_hours.{key}"), m))?;
        }
        self.migrate
            .validate()
            .map_err(|(key, m)| invalid(&format!("migrate.{key}"), m))?;
        self.serve
            .validate()
            .map_err(|(key, m)| invalid(&format!("serve.{key}"), m))?;
        self.state.validate().map_err(|m| invalid("state.url", m))?;
        self.snapshots
            .validate()
            .map_err(|m| invalid("snapshots.url", m))?;
        Ok(())
    }

    /// Where this pipeline location's ledger and lock live: `[state] url`, else the state directory.
    pub fn state_store(&self) -> crate::state::StateStore {
        crate::state::StateStore {
            state_dir: self.state_dir(),
            postgres: self
                .state
                .url
                .as_ref()
                .map(|url| crate::state::pg::PgTarget {
                    url: url.clone(),
                    pipeline: self.pipeline.name.clone(),
                    location: self.ghl.location_id.clone(),
                }),
        }
    }

    /// Which locations this file runs.
    pub fn locations(&self) -> Locations {
        match &self.ghl.locations {
            None => Locations::Single(self.ghl.location_id.clone()),
            Some(LocationSelection::List(ids)) => Locations::Listed(ids.clone()),
            Some(LocationSelection::Word(_)) => Locations::AllInstalled,
        }
    }

    /// The single-location pipeline of one location of a multi-location file: `ghl.location_id`
    /// is `id` and the state directory `state_dir/locations/<id>/` (absolute), so every stage
    /// runs on it as on a one-location file.
    pub fn for_location(&self, id: &str) -> PipelineConfig {
        let mut config = self.clone();
        config.pipeline.state_dir = location_state_dir(&self.state_dir(), id);
        config.ghl.location_id = id.to_string();
        config.ghl.locations = None;
        config.bulksms.default_location = None;
        config
    }

    /// The state directory, resolved against the pipeline file's folder.
    pub fn state_dir(&self) -> PathBuf {
        self.resolve(&self.pipeline.state_dir)
    }

    /// Resolves a path written in the pipeline file against the file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        resolve_against(&self.source_path, path)
    }
}

fn resolve_against(source_path: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    match source_path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// What a pipeline file that failed to load still says about where its state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDirHint {
    pub pipeline_name: String,
    pub state_dir: PathBuf,
}

/// `[pipeline] name` and `state_dir` of a file `PipelineConfig::load` refused, when it is TOML
/// that names them: a file refused for an unknown key, a bad value or a missing `${VAR}` elsewhere
/// still tells where alerting reads the run's exit code. None for an unreadable or non-TOML file.
pub fn state_dir_hint(path: &Path) -> Option<StateDirHint> {
    let text = std::fs::read_to_string(path).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    let pipeline = table.get("pipeline")?.as_table()?;
    let name = pipeline.get("name")?.as_str()?;
    let state_dir = pipeline.get("state_dir")?.as_str()?;
    Some(StateDirHint {
        pipeline_name: name.to_string(),
        state_dir: resolve_against(path, Path::new(state_dir)),
    })
}

/// The state directory of one location of a multi-location pipeline.
pub fn location_state_dir(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join("locations").join(id)
}

/// Location ids become folder names: refuse what would escape `locations/` or collide.
fn check_location_ids(ids: &[String]) -> Result<(), String> {
    if ids.is_empty() {
        return Err("must name at least one location".into());
    }
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "location id {id:?} must be non-empty letters, digits, '-' or '_'"
            ));
        }
        if !seen.insert(id) {
            return Err(format!("location id {id:?} is listed twice"));
        }
    }
    Ok(())
}

/// Refuses plain http:// except to loopback, where the sandbox lives.
pub fn check_base_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL ({e}): {raw:?}"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "http:// is allowed only for loopback addresses; use https:// for {raw:?}"
                ))
            }
        }
        other => Err(format!("unsupported scheme {other:?} in {raw:?}")),
    }
}

/// Pipeline files for unit tests: one fixture instead of a copy per module.
#[cfg(test)]
pub(crate) mod test_support {
    use super::PipelineConfig;

    /// A pipeline pointed at closed local ports, with `auth` as the `[ghl] auth` value and `extra`
    /// appended.
    pub(crate) fn pipeline_text(auth: &str, extra: &str) -> String {
        format!(
            r#"
[pipeline]
name = "t"
state_dir = "state"

[ghl]
base_url = "http://127.0.0.1:9/ghl"
location_id = "loc"
auth = {auth}

[bulksms]
base_url = "http://127.0.0.1:9/bulksms/v1"
token_id = "id"
token_secret = "secret"
{extra}
"#
        )
    }

    /// [`pipeline_text`] written to a temporary file and loaded; panics when it is not valid.
    pub(crate) fn pipeline(auth: &str, extra: &str) -> PipelineConfig {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.toml");
        std::fs::write(&path, pipeline_text(auth, extra)).expect("write");
        PipelineConfig::load(&path).expect("valid pipeline")
    }
}

/// The HTTP layer keeps an agency grant shared by several machines through
/// [`SharedGrant`](crate::api::grant_store::SharedGrant); the state layer's PostgreSQL row is that
/// store. Joined here, where both layers are known, so neither depends on the other.
impl crate::api::grant_store::SharedGrant for crate::state::pg_grant::PgGrantTarget {
    fn describe(&self) -> String {
        self.display()
    }

    fn read(&self) -> Result<Option<crate::secret::Secret>, String> {
        crate::state::pg_grant::PgGrantTarget::read(self).map_err(|e| e.to_string())
    }

    fn write(&self, company_id: Option<&str>, grant: &crate::secret::Secret) -> Result<(), String> {
        crate::state::pg_grant::PgGrantTarget::write(self, company_id, grant)
            .map_err(|e| e.to_string())
    }

    fn lock(
        &self,
        wait: std::time::Duration,
    ) -> Result<Box<dyn crate::api::grant_store::SharedGrantLock>, String> {
        crate::state::pg_grant::PgGrantTarget::lock(self, wait)
            .map(|lock| Box::new(lock) as Box<dyn crate::api::grant_store::SharedGrantLock>)
            .map_err(|e| e.to_string())
    }
}

impl crate::api::grant_store::SharedGrantLock for crate::state::pg_grant::PgGrantLock {
    fn read(&self) -> Result<Option<crate::secret::Secret>, String> {
        crate::state::pg_grant::PgGrantLock::read(self).map_err(|e| e.to_string())
    }

    fn write(&self, company_id: Option<&str>, grant: &crate::secret::Secret) -> Result<(), String> {
        crate::state::pg_grant::PgGrantLock::write(self, company_id, grant)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests;
