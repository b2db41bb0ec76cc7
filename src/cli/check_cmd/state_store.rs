//! The `[state] url` check: the database answers, its schema is one this build reads (or the first
//! run will create it), and no run holds the locations' advisory locks now. It reads only: the
//! schema is not created and a lock taken to test it is released at once.

use super::{CheckLine, fail, ok, warn};
use crate::config::{Locations, PipelineConfig};
use crate::secret::Secret;
use crate::state::pg::{PgConn, PgError, SCHEMA_VERSION, redacted_url, schema_version};

const NAME: &str = "state.url";

/// The line, `None` without `[state] url` (the state directory's check covers that layout).
pub(super) fn state_url_check(config: &PipelineConfig) -> Option<CheckLine> {
    let url = config.state.url.as_ref()?;
    let shown = redacted_url(url);
    Some(match probe(config, url) {
        Err(e) => fail(
            NAME,
            format!("{shown}: {}", with_causes(&e)),
            "check the host, port, database, user and password of `[state] url` (and that the server accepts this machine)",
        ),
        Ok(found) => judge(&shown, found),
    })
}

/// An error and its causes: the `postgres` client says only "db error" and keeps the server's
/// words ("password authentication failed ...") in its source.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}

/// What the database says.
struct Found {
    /// How the connection is protected: the server's word on it (`pg_stat_ssl`) and `sslmode`.
    transport: String,
    version: Option<i32>,
    /// Whether the role may create the tables (asked only when there are none yet).
    may_create: Option<bool>,
    /// Locations whose run lock another session holds now.
    held: Vec<String>,
    /// Locations whose locks were tried; `None` for `locations = "all-installed"` (the list
    /// needs GHL).
    tried: Option<usize>,
}

fn probe(config: &PipelineConfig, url: &Secret) -> Result<Found, PgError> {
    let conn = PgConn::connect(url, "check")?;
    let ssl_mode = crate::state::pg_tls::ConnectSpec::parse(url.expose())
        .map_err(PgError::Url)?
        .ssl_mode
        .as_str();
    let tls: Option<String> = conn.call(|client| {
        let row = client.query_opt(
            "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
            &[],
        )?;
        Ok(match row {
            Some(row) => Some(row.try_get::<_, Option<String>>(0)?.unwrap_or_default()),
            None => None,
        })
    })?;
    let transport = match tls {
        Some(version) => format!("over TLS {version} (sslmode={ssl_mode})"),
        None => format!("without TLS (sslmode={ssl_mode})"),
    };
    let version = conn.call(schema_version)?;
    let may_create = match version {
        Some(_) => None,
        None => conn.call(|client| {
            Ok(client
                .query_one(
                    "SELECT has_schema_privilege(current_schema(), 'CREATE')",
                    &[],
                )?
                .try_get::<_, Option<bool>>(0)?)
        })?,
    };
    let locations = match config.locations() {
        Locations::Single(id) => Some(vec![id]),
        Locations::Listed(ids) => Some(ids),
        Locations::AllInstalled => None,
    };
    let tried = locations.as_ref().map(Vec::len);
    let mut held = Vec::new();
    for id in locations.unwrap_or_default() {
        let key = config.for_location(&id).state_store().postgres;
        let Some(target) = key else { continue };
        let key = target.lock_key();
        // Taken and released at once: a running runner's session keeps it, so this fails.
        let free = conn.call(move |client| {
            let taken: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])?
                .try_get(0)?;
            if taken {
                client.execute("SELECT pg_advisory_unlock($1)", &[&key])?;
            }
            Ok(taken)
        })?;
        if !free {
            held.push(id);
        }
    }
    Ok(Found {
        transport,
        version,
        may_create,
        held,
        tried,
    })
}

fn judge(shown: &str, found: Found) -> CheckLine {
    let schema = match found.version {
        Some(v) if v > SCHEMA_VERSION => {
            return fail(
                NAME,
                format!("{shown}: schema version {v}, newer than this build's {SCHEMA_VERSION}"),
                "upgrade contactsync on this machine to the version the other runners use",
            );
        }
        Some(v) if v < SCHEMA_VERSION => {
            format!("schema version {v} (the next run upgrades it to {SCHEMA_VERSION})")
        }
        Some(v) => format!("schema version {v}"),
        None if found.may_create == Some(false) => {
            return fail(
                NAME,
                format!("{shown}: no contactsync tables yet, and this role may not create them"),
                "GRANT CREATE ON SCHEMA public (or the role's schema) to the role of `[state] url`, or have an owner run contactsync once",
            );
        }
        None => "no contactsync tables yet: the first run creates them".to_string(),
    };
    if !found.held.is_empty() {
        return warn(
            NAME,
            format!(
                "{shown}: connected {}, {schema}; a run holds the advisory lock of {} now",
                found.transport,
                found.held.join(", ")
            ),
            "wait for that run to finish before starting another (its lock goes when its connection ends)",
        );
    }
    let locks = match found.tried {
        Some(1) => "the run lock is free".to_string(),
        Some(n) => format!("the run locks of {n} locations are free"),
        None => "run locks are taken per installed location by the run".to_string(),
    };
    ok(
        NAME,
        format!("{shown}: connected {}, {schema}, {locks}", found.transport),
    )
}
