//! The pipeline file: one typed, validated TOML document per pipeline.
//!
//! Every table uses `deny_unknown_fields`, so a typo is an error naming the key and line rather than
//! a silently ignored setting. String values may reference `${ENV_VAR}` so secrets stay out of files.

pub use crate::api::config::{
    BulkSmsConfig, GhlAuthConfig, GhlConfig, GhlRateLimitConfig, HttpConfig,
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
}

fn default_region() -> String {
    "US".to_string()
}

/// `[state]`: the shared state store of runners on several machines.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    /// `postgres://user:password@host:port/database?sslmode=disable`: the ledger's rows and the
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
        let config: postgres::Config = raw
            .parse()
            .map_err(|e: postgres::Error| format!("not a PostgreSQL connection URL ({e})"))?;
        if config.get_dbname().is_none() {
            return Err("names no database (postgres://user@host/DATABASE)".into());
        }
        // Only plain connections are built in (no TLS connector): `require` would fail at connect.
        if config.get_ssl_mode() == postgres::config::SslMode::Require {
            return Err(
                "sslmode=require is not supported yet (no TLS); use sslmode=disable on a trusted \
                 network or a local TLS tunnel"
                    .into(),
            );
        }
        Ok(())
    }
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
            *company_token_store = crate::api::agency::company_token_store_path(&state_dir);
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
        if self.ghl.location_id.trim().is_empty() {
            return Err(invalid("ghl.location_id", "must not be empty".into()));
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

    /// The state directory, resolved against the pipeline file's folder.
    pub fn state_dir(&self) -> PathBuf {
        self.resolve(&self.pipeline.state_dir)
    }

    /// Resolves a path written in the pipeline file against the file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        match self.source_path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> String {
        super::test_support::pipeline_text(r#"{ kind = "private_token", token = "pit-1" }"#, "")
    }

    fn parse(text: &str) -> Result<PipelineConfig, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.toml");
        std::fs::write(&path, text).expect("write");
        PipelineConfig::load(&path)
    }

    #[test]
    fn minimal_file_parses_with_defaults() {
        let config = parse(&minimal()).expect("valid");
        assert_eq!(config.ghl.rate_limit.burst, 100);
        assert_eq!(config.pipeline.default_region, "US");
        assert!(config.state_dir().ends_with("state"));
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = minimal().replace("name = \"t\"", "name = \"t\"\nstate_dri = \"x\"");
        let err = parse(&text).expect_err("typo must fail").to_string();
        assert!(err.contains("state_dri"), "{err}");
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn a_parse_error_never_quotes_a_secret() {
        let text = minimal().replace(
            "token_secret = \"secret\"",
            "token_secrt = \"sbx!Zq9-very-private\"",
        );
        let err = parse(&text).expect_err("typo must fail").to_string();
        assert!(err.contains("token_secrt"), "the key is named: {err}");
        assert!(err.contains("line"), "{err}");
        assert!(!err.contains("sbx!Zq9"), "the secret is quoted: {err}");
        let text = minimal().replace("token = \"pit-1\"", "token = 12345678");
        let err = parse(&text).expect_err("wrong type").to_string();
        assert!(!err.contains("12345678"), "the secret is quoted: {err}");
        // Other values are still quoted: they help and are not secret.
        let text = minimal().replace("name = \"t\"", "name = 5");
        let err = parse(&text).expect_err("wrong type").to_string();
        assert!(err.contains("name = 5"), "{err}");
    }

    #[test]
    fn a_state_url_is_checked_and_named_without_its_password() {
        let config = parse(&minimal()).expect("valid");
        assert!(
            config.state_store().postgres.is_none(),
            "absent: local state"
        );
        // SAFETY of the test: the variable name is unique to this test.
        unsafe { std::env::set_var("CONTACTSYNC_TEST_STATE_PASSWORD", "pw-91xq") };
        let with = |url: &str| format!("{}\n[state]\nurl = \"{url}\"\n", minimal());
        let config = parse(&with(
            "postgres://app:${CONTACTSYNC_TEST_STATE_PASSWORD}@db:5432/cs?sslmode=disable",
        ))
        .expect("valid");
        let target = config.state_store().postgres.expect("postgres");
        assert_eq!(
            target.url.expose(),
            "postgres://app:pw-91xq@db:5432/cs?sslmode=disable"
        );
        assert_eq!(
            (target.pipeline.as_str(), target.location.as_str()),
            ("t", "loc")
        );
        for (url, says) in [
            ("mysql://app:pw-91xq@db/cs", "postgres://"),
            ("postgres://app:pw-91xq@db:notaport/cs", "not a PostgreSQL"),
            ("postgres://app:pw-91xq@db", "names no database"),
            (
                "postgres://app:pw-91xq@db/cs?sslmode=require",
                "sslmode=require",
            ),
        ] {
            let err = parse(&with(url)).expect_err(url).to_string();
            assert!(
                err.contains("state.url") && err.contains(says),
                "{url}: {err}"
            );
            assert!(!err.contains("pw-91xq"), "the password is quoted: {err}");
        }
    }

    #[test]
    fn a_bad_snapshots_url_is_named() {
        let config = parse(&minimal()).expect("valid");
        assert!(
            config.snapshots.url.is_none(),
            "absent: nothing is published"
        );
        let text = format!("{}\n[snapshots]\nurl = \"ftp://host/x\"\n", minimal());
        let err = parse(&text).expect_err("must refuse").to_string();
        assert!(err.contains("snapshots.url"), "{err}");
        let text = format!(
            "{}\n[snapshots]\nurl = \"s3://b/p\"\nregion = \"x\"\n",
            minimal()
        );
        let err = parse(&text).expect_err("unknown key").to_string();
        assert!(err.contains("region"), "{err}");
        let text = format!("{}\n[snapshots]\nurl = \"s3://bucket/prefix\"\n", minimal());
        let config = parse(&text).expect("valid");
        assert_eq!(config.snapshots.url.as_deref(), Some("s3://bucket/prefix"));
    }

    #[test]
    fn plain_http_to_a_remote_host_is_refused() {
        let text = minimal().replace("http://127.0.0.1:9/ghl", "http://example.com/ghl");
        let err = parse(&text).expect_err("must refuse").to_string();
        assert!(err.contains("ghl.base_url"), "{err}");
    }

    #[test]
    fn example_pipeline_files_parse() {
        for var in [
            "GHL_LOCATION_ID",
            "GHL_CLIENT_ID",
            "GHL_CLIENT_SECRET",
            "BULKSMS_TOKEN_ID",
            "BULKSMS_TOKEN_SECRET",
            "GHL_PRIVATE_TOKEN",
            "SANDBOX_GHL_LOCATION_ID",
            "SANDBOX_GHL_TOKEN",
            "SANDBOX_BULKSMS_TOKEN_ID",
            "SANDBOX_BULKSMS_TOKEN_SECRET",
        ] {
            // SAFETY of the test: these names are only read by pipeline files.
            unsafe { std::env::set_var(var, "x") };
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("pipelines folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                PipelineConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
                seen += 1;
            }
        }
        assert!(seen >= 4, "expected example pipelines in {}", dir.display());
    }
}
