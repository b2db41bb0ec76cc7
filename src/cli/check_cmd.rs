//! `contactsync check`: everything a night needs, checked before the night, without writing
//! anything remote: GHL credentials and scopes, access to the location, rate-limit headers, the
//! BulkSMS account and its credits, the state directory, the match model and quiet hours.
//!
//! Every call it makes is a read. The one exception a run would make too: an OAuth access token
//! that has already expired is refreshed (and the rotated pair stored), as the run would.

use super::stage::load_pipeline;
use super::{CheckArgs, CommandError};
use crate::api::ApiError;
use crate::api::ApiRequest;
use crate::api::auth::read_token_store;
use crate::api::authorize::ghl_scopes_needed;
use crate::api::bulksms::BulkSmsClient;
use crate::api::ghl::{GhlClient, token_store_path};
use crate::config::{GhlAuthConfig, PipelineConfig};
use crate::exit_code::ExitCode;
use crate::transform::model::MatchModel;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Ok,
    Warn,
    Fail,
}

/// One line of the check report.
#[derive(Debug, Clone, Serialize)]
pub struct CheckLine {
    /// What was checked (`ghl.location`, `bulksms.credits`, ...).
    pub name: &'static str,
    pub status: CheckStatus,
    /// What was found.
    pub message: String,
    /// What to do about a warning or failure.
    pub fix: Option<String>,
}

fn ok(name: &'static str, message: impl Into<String>) -> CheckLine {
    CheckLine {
        name,
        status: CheckStatus::Ok,
        message: message.into(),
        fix: None,
    }
}

fn warn(name: &'static str, message: impl Into<String>, fix: impl Into<String>) -> CheckLine {
    CheckLine {
        name,
        status: CheckStatus::Warn,
        message: message.into(),
        fix: Some(fix.into()),
    }
}

fn fail(name: &'static str, message: impl Into<String>, fix: impl Into<String>) -> CheckLine {
    CheckLine {
        name,
        status: CheckStatus::Fail,
        message: message.into(),
        fix: Some(fix.into()),
    }
}

/// The `--json` report of `check`.
#[derive(Debug, Serialize)]
struct CheckReport {
    command: &'static str,
    pipeline: PathBuf,
    checks: Vec<CheckLine>,
    ok: usize,
    warn: usize,
    fail: usize,
    exit_code: u8,
}

pub(super) async fn run(args: CheckArgs) -> Result<ExitCode, CommandError> {
    let config = load_pipeline(&args.stage)?;
    let checks = run_checks(&config, Utc::now()).await;
    let count = |s: CheckStatus| checks.iter().filter(|c| c.status == s).count();
    let (oks, warns, fails) = (
        count(CheckStatus::Ok),
        count(CheckStatus::Warn),
        count(CheckStatus::Fail),
    );
    // A failed check means the pipeline file or what it points at is not fit to run: the same
    // exit code as a bad pipeline file, so a deploy step can stop on it.
    let code = if fails > 0 {
        ExitCode::BadConfig
    } else {
        ExitCode::Ok
    };
    if args.stage.json {
        let report = CheckReport {
            command: "check",
            pipeline: args.stage.pipeline.clone(),
            checks,
            ok: oks,
            warn: warns,
            fail: fails,
            exit_code: code as u8,
        };
        println!(
            "{}",
            serde_json::to_string(&report).expect("CheckReport serialises")
        );
    } else {
        for line in &checks {
            let status = match line.status {
                CheckStatus::Ok => "OK  ",
                CheckStatus::Warn => "WARN",
                CheckStatus::Fail => "FAIL",
            };
            println!("{status} {:<20} {}", line.name, line.message);
            if let Some(fix) = &line.fix {
                println!("     {:<20} fix: {fix}", "");
            }
        }
        println!("{oks} ok, {warns} warnings, {fails} failed");
    }
    Ok(code)
}

/// Every check, in the order an operator fixes things.
pub async fn run_checks(config: &PipelineConfig, now: DateTime<Utc>) -> Vec<CheckLine> {
    // A check answers in seconds: two attempts, a short timeout. The run keeps its own policy.
    let mut quick = config.clone();
    quick.http.max_attempts = quick.http.max_attempts.min(2);
    quick.http.timeout_secs = quick.http.timeout_secs.min(15);
    quick.http.backoff_max_ms = quick.http.backoff_max_ms.min(1_000);
    let mut checks = vec![state_dir_check(&config.state_dir()), model_check(config)];
    checks.push(quiet_hours_check(config, now));
    checks.extend(ghl_checks(&quick, now).await);
    checks.extend(bulksms_checks(&quick).await);
    checks
}

fn state_dir_check(dir: &Path) -> CheckLine {
    const NAME: &str = "state_dir";
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return warn(
                NAME,
                format!("{} does not exist yet", dir.display()),
                "the first run (or `contactsync auth ghl`) creates it with mode 0700; its parent must be writable by the user the job runs as",
            );
        }
        Err(e) => {
            return fail(
                NAME,
                format!("{}: {e}", dir.display()),
                "make the folder reachable by the user the job runs as",
            );
        }
    };
    if !meta.is_dir() {
        return fail(
            NAME,
            format!("{} is not a folder", dir.display()),
            "point pipeline.state_dir at a folder",
        );
    }
    // Writable: create and remove one probe file inside it (nothing is left behind).
    let probe = dir.join(format!(".contactsync-check-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|_| std::fs::remove_file(&probe));
    if let Err(e) = written {
        return fail(
            NAME,
            format!("{} is not writable: {e}", dir.display()),
            "give the user the job runs as ownership of the folder (chown -R USER DIR)",
        );
    }
    let mut notes = Vec::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        #[cfg(target_os = "linux")]
        {
            // SAFETY: geteuid has no preconditions and cannot fail.
            let me = unsafe { libc::geteuid() };
            if meta.uid() != me {
                return fail(
                    NAME,
                    format!(
                        "{} belongs to uid {}, but this runs as uid {me}: a run cannot restrict it to 0700",
                        dir.display(),
                        meta.uid()
                    ),
                    "run the job as the folder's owner, or chown the folder to the job's user",
                );
            }
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return warn(
                NAME,
                format!(
                    "{} has mode {mode:04o}: tokens, the ledger and snapshots of contacts live here",
                    dir.display()
                ),
                format!("chmod 700 {} (the next run also does it)", dir.display()),
            );
        }
        let tokens = dir.join("tokens").join("ghl.json");
        if let Ok(t) = std::fs::metadata(&tokens)
            && t.permissions().mode() & 0o077 != 0
        {
            return warn(
                NAME,
                format!("{} is readable by others", tokens.display()),
                format!("chmod 600 {}", tokens.display()),
            );
        }
        notes.push(format!("mode {mode:04o}"));
    }
    let runs = crate::snapshot::run::list_runs(dir).map_or(0, |r| r.len());
    notes.push("writable".into());
    notes.push(format!("{runs} runs"));
    if lock_is_held(dir) {
        return warn(
            NAME,
            format!("{}: a run holds its lock now", dir.display()),
            "wait for the run to finish before starting another",
        );
    }
    ok(NAME, format!("{} ({})", dir.display(), notes.join(", ")))
}

/// Whether a run holds the state directory's lock (the lock file is opened, never created).
fn lock_is_held(dir: &Path) -> bool {
    use fs2::FileExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("lock"))
    {
        Ok(file) => {
            let held = file.try_lock_exclusive().is_err();
            if !held {
                let _released_on_close_anyway = FileExt::unlock(&file);
            }
            held
        }
        Err(_) => false,
    }
}

fn model_check(config: &PipelineConfig) -> CheckLine {
    const NAME: &str = "match_model";
    let path = config.transform.model.as_ref().map(|p| config.resolve(p));
    match MatchModel::load_or_default(path.as_deref()) {
        Ok(model) => ok(
            NAME,
            format!(
                "{}: {} fields, threshold {}",
                path.map_or("built into contactsync".to_string(), |p| p
                    .display()
                    .to_string()),
                model.fields.len(),
                model.threshold
            ),
        ),
        Err(e) => fail(
            NAME,
            format!("{e:#}"),
            "fix the model file, or remove transform.model to use the built-in contacts model",
        ),
    }
}

fn quiet_hours_check(config: &PipelineConfig, now: DateTime<Utc>) -> CheckLine {
    const NAME: &str = "quiet_hours";
    let may_send = sends_possible(config);
    let Some(quiet) = &config.load.quiet_hours else {
        if may_send {
            return warn(
                NAME,
                "no [load.quiet_hours]: texts go out whenever the job runs, at any hour of the recipient's night",
                "add [load.quiet_hours] start = \"21:00\", end = \"08:00\", default_timezone = \"America/New_York\"",
            );
        }
        return ok(NAME, "not set (this pipeline sends no texts)");
    };
    let parse = |t: &str| chrono::NaiveTime::parse_from_str(t.trim(), "%H:%M").ok();
    let (Some(start), Some(end)) = (parse(&quiet.start), parse(&quiet.end)) else {
        // validate() already refused these; kept so this function never panics.
        return fail(NAME, "start or end is not HH:MM", "write times as HH:MM");
    };
    let minutes = |t: chrono::NaiveTime| {
        use chrono::Timelike;
        (t.hour() * 60 + t.minute()) as i64
    };
    let length = (minutes(end) - minutes(start)).rem_euclid(24 * 60);
    let zone: chrono_tz::Tz = quiet.default_timezone.parse().unwrap_or(chrono_tz::UTC);
    let local = now.with_timezone(&zone).format("%H:%M");
    let inside = quiet.is_quiet(now, None);
    let summary = format!(
        "{}–{} in each recipient's zone (default {}: {local} there now, {})",
        quiet.start,
        quiet.end,
        quiet.default_timezone,
        if inside { "quiet" } else { "sending" }
    );
    if length == 0 {
        return warn(
            NAME,
            format!("{summary}: start equals end, so no hour is quiet"),
            "set start and end to different times",
        );
    }
    let noon = 12 * 60;
    let covers_noon = (noon - minutes(start)).rem_euclid(24 * 60) < length;
    if covers_noon || length > 16 * 60 {
        return warn(
            NAME,
            format!(
                "{summary}: {} h of every day are quiet{}",
                length as f64 / 60.0,
                if covers_noon { ", midday included" } else { "" }
            ),
            "did start and end swap? start is when texting stops (e.g. 21:00), end when it resumes (e.g. 08:00)",
        );
    }
    ok(
        NAME,
        format!("{summary}; schedule the job outside these hours in the recipients' zones"),
    )
}

/// Whether a run of this pipeline can send a text at all.
fn sends_possible(config: &PipelineConfig) -> bool {
    let triggers = &config.transform.triggers;
    config.load.enabled
        && config.load.max_sends > 0
        && (triggers.welcome.is_some()
            || !triggers.reminder.is_empty()
            || triggers.digest.is_some())
}

async fn ghl_checks(config: &PipelineConfig, now: DateTime<Utc>) -> Vec<CheckLine> {
    let needed = ghl_scopes_needed(config);
    let mut checks = Vec::new();
    let client = match GhlClient::from_config(config) {
        Ok(c) => c,
        Err(e) => {
            checks.push(fail(
                "ghl.credentials",
                e.to_string(),
                "check [ghl] in the pipeline file",
            ));
            return checks;
        }
    };
    let oauth = matches!(config.ghl.auth, GhlAuthConfig::Oauth { .. });
    if oauth {
        let store = token_store_path(config);
        let tokens = match read_token_store(&store) {
            Ok(t) => t,
            Err(e) => {
                checks.push(fail(
                    "ghl.credentials",
                    e.to_string(),
                    "connect the location: contactsync auth ghl --pipeline FILE",
                ));
                return checks;
            }
        };
        let manager = client
            .token_manager()
            .expect("OAuth config always has a token manager");
        // Refreshes only when the access token is due, as a run would.
        if let Err(e) = manager.access_token().await {
            checks.push(fail(
                "ghl.credentials",
                format!("the stored tokens cannot be refreshed: {e}"),
                "connect the location again: contactsync auth ghl --pipeline FILE",
            ));
            return checks;
        }
        let current = manager.tokens().await.unwrap_or(tokens);
        let age_days = (now - current.obtained_at).num_days();
        checks.push(if age_days > 300 {
            warn(
                "ghl.credentials",
                format!(
                    "OAuth tokens last refreshed {age_days} days ago; GHL refresh tokens expire a year after they are issued"
                ),
                "run the pipeline (each run refreshes them) or authorise again: contactsync auth ghl",
            )
        } else {
            ok(
                "ghl.credentials",
                format!(
                    "OAuth tokens in {} (access token valid until {})",
                    store.display(),
                    current.expires_at.format("%Y-%m-%d %H:%M UTC")
                ),
            )
        });
        let granted = current.scopes();
        let missing: Vec<&str> = needed
            .iter()
            .copied()
            .filter(|s| !granted.contains(s))
            .collect();
        checks.push(if missing.is_empty() {
            ok(
                "ghl.scopes",
                format!("granted {}; needed {}", current.scope, needed.join(" ")),
            )
        } else {
            fail(
                "ghl.scopes",
                format!(
                    "the grant lacks {} (granted: {:?}; this pipeline {} and needs {})",
                    missing.join(", "),
                    current.scope,
                    if config.load.enabled { "writes" } else { "only reads" },
                    needed.join(" ")
                ),
                "enable the scopes in the app's settings (Marketplace > My Apps > the app > Advanced Settings > Auth), then run `contactsync auth ghl` again and allow them",
            )
        });
    } else {
        checks.push(ok(
            "ghl.credentials",
            "private integration token (static; HighLevel suggests rotating it every 90 days)",
        ));
        checks.push(if config.load.enabled {
            warn(
                "ghl.scopes",
                "the scopes of a private integration token cannot be read through the API; the location check below proves contacts.readonly only",
                "in HighLevel, Settings > Private Integrations > the token: make sure it has contacts.readonly and contacts.write",
            )
        } else {
            ok(
                "ghl.scopes",
                "this pipeline only reads: contacts.readonly, which the location check below proves",
            )
        });
    }
    checks.extend(ghl_location_checks(&client, config).await);
    checks
}

/// One location-scoped read (a search for one contact): access to the location, and the
/// rate-limit headers of its answer.
async fn ghl_location_checks(client: &GhlClient, config: &PipelineConfig) -> Vec<CheckLine> {
    let body = serde_json::json!({"locationId": client.location_id(), "pageLimit": 1});
    let request =
        ApiRequest::with_body(Method::POST, "/contacts/search", body, true).label("check");
    let answer = client
        .api()
        .send_decoded(&request, |resp| {
            let total = serde_json::from_slice::<serde_json::Value>(&resp.body)
                .ok()
                .and_then(|v| {
                    v.get("total")
                        .or_else(|| v.get("count"))
                        .and_then(|t| t.as_u64())
                });
            Ok((total, resp.headers.clone()))
        })
        .await;
    let (total, headers) = match answer {
        Ok(found) => found,
        Err(e) => return vec![ghl_failure(&e, config)],
    };
    let mut checks = vec![ok(
        "ghl.location",
        format!(
            "location {} answers ({} contacts)",
            client.location_id(),
            total.map_or("an unknown number of".to_string(), |t| t.to_string())
        ),
    )];
    checks.push(rate_limit_check(&headers, config));
    checks
}

fn ghl_failure(error: &ApiError, config: &PipelineConfig) -> CheckLine {
    const NAME: &str = "ghl.location";
    match error {
        ApiError::Status {
            status: 401, body, ..
        } => fail(
            NAME,
            format!("GHL refused the token (HTTP 401: {body})"),
            match config.ghl.auth {
                GhlAuthConfig::Oauth { .. } => {
                    "connect the location again: contactsync auth ghl --pipeline FILE"
                }
                GhlAuthConfig::PrivateToken { .. } => {
                    "make a new token in HighLevel, Settings > Private Integrations, with contacts.readonly (and contacts.write to write), and set ghl.auth.token"
                }
            },
        ),
        ApiError::Status {
            status: 403, body, ..
        } => fail(
            NAME,
            format!(
                "the token has no access to location {} (HTTP 403: {body})",
                config.ghl.location_id
            ),
            "set ghl.location_id to the sub-account's id (Settings > Business Profile), and use a token made in that sub-account",
        ),
        ApiError::Status { status, body, .. } => fail(
            NAME,
            format!("GHL answered HTTP {status}: {body}"),
            "check ghl.base_url and ghl.api_version",
        ),
        ApiError::Transport { message, .. } => fail(
            NAME,
            format!("cannot reach GHL at {}: {message}", config.ghl.base_url),
            "check ghl.base_url (https://services.leadconnectorhq.com in production) and the network or proxy",
        ),
        other => fail(NAME, other.to_string(), "see the error"),
    }
}

fn rate_limit_check(headers: &reqwest::header::HeaderMap, config: &PipelineConfig) -> CheckLine {
    const NAME: &str = "ghl.rate_limit";
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let max = value("x-ratelimit-max");
    let remaining = value("x-ratelimit-remaining");
    let interval = value("x-ratelimit-interval-milliseconds");
    let daily = value("x-ratelimit-limit-daily");
    let daily_remaining = value("x-ratelimit-daily-remaining");
    let show = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
    let seen = format!(
        "burst {} per {} ms ({} left), daily {} ({} left)",
        show(max),
        show(interval),
        show(remaining),
        show(daily),
        show(daily_remaining)
    );
    if max.is_none() && daily.is_none() {
        return warn(
            NAME,
            "the answer carried no X-RateLimit-* headers",
            "the pipeline then paces by [ghl.rate_limit] alone; check that nothing between here and GHL strips headers",
        );
    }
    let configured = &config.ghl.rate_limit;
    if let (Some(max), Some(interval)) = (max, interval) {
        let allowed = max as f64 / interval.max(1) as f64;
        let planned = configured.burst as f64 / configured.window_ms.max(1) as f64;
        if allowed < planned {
            return warn(
                NAME,
                format!(
                    "{seen}: GHL allows less than [ghl.rate_limit] says ({} per {} ms)",
                    configured.burst, configured.window_ms
                ),
                format!(
                    "set [ghl.rate_limit] burst = {max}, window_ms = {interval} (the pipeline also slows down on these headers and on 429)"
                ),
            );
        }
    }
    if let (Some(daily), Some(left)) = (daily, daily_remaining)
        && left < daily / 10
    {
        return warn(
            NAME,
            format!("{seen}: under 10 % of today's budget is left"),
            "another app may be spending this location's budget; run later or lower other apps' use",
        );
    }
    ok(NAME, seen)
}

async fn bulksms_checks(config: &PipelineConfig) -> Vec<CheckLine> {
    const NAME: &str = "bulksms.credentials";
    let client = match BulkSmsClient::from_config(config) {
        Ok(c) => c,
        Err(e) => {
            return vec![fail(
                NAME,
                e.to_string(),
                "check [bulksms] in the pipeline file",
            )];
        }
    };
    let profile = match client.profile().await {
        Ok(p) => p,
        Err(ApiError::Status {
            status: 401 | 403,
            body,
            ..
        }) => {
            return vec![fail(
                NAME,
                format!("BulkSMS refused the token id and secret (GET /profile: {body})"),
                "make an API token in the BulkSMS web app (Settings > API Tokens) and set bulksms.token_id and bulksms.token_secret",
            )];
        }
        Err(ApiError::Transport { message, .. }) => {
            return vec![fail(
                NAME,
                format!(
                    "cannot reach BulkSMS at {}: {message}",
                    config.bulksms.base_url
                ),
                "check bulksms.base_url (https://api.bulksms.com/v1 in production) and the network or proxy",
            )];
        }
        Err(e) => return vec![fail(NAME, e.to_string(), "check bulksms.base_url")],
    };
    let username = profile
        .extra
        .get("username")
        .and_then(|v| v.as_str())
        .unwrap_or("?");
    let mut checks = vec![ok(
        NAME,
        format!("GET /profile answers for account {username}"),
    )];
    checks.push(credits_check(&profile, config));
    checks
}

/// Texts the next run may send: the last accepted plan's, else the `max_sends` limit.
fn expected_sends(config: &PipelineConfig) -> (u64, String) {
    let last_plan = crate::snapshot::run::list_runs(&config.state_dir())
        .ok()
        .and_then(|runs| runs.into_iter().rev().find(|r| r.plan_committed()))
        .and_then(|run| {
            crate::load::plan_io::read_plan(&run.load_dir(), &run.id)
                .ok()
                .map(|plan| (run.id, plan.counts().get("send_sms").copied().unwrap_or(0)))
        });
    match last_plan {
        Some((run, sends)) => (sends, format!("run {run} planned {sends} texts")),
        None => (
            config.load.max_sends,
            format!(
                "a run may send up to load.max_sends = {}",
                config.load.max_sends
            ),
        ),
    }
}

fn credits_check(
    profile: &crate::api::bulksms::types::Profile,
    config: &PipelineConfig,
) -> CheckLine {
    const NAME: &str = "bulksms.credits";
    let balance = profile.credits.as_ref().and_then(|c| c.balance);
    let quota = profile.quota.as_ref().and_then(|q| q.remaining);
    let shown = format!(
        "balance {} credits, today's quota {} messages left",
        balance.map_or("?".to_string(), |b| format!("{b}")),
        quota.map_or("?".to_string(), |q| q.to_string())
    );
    if !sends_possible(config) {
        return ok(NAME, format!("{shown} (this pipeline sends no texts)"));
    }
    let (expected, why) = expected_sends(config);
    if let Some(balance) = balance
        && balance < expected as f64
    {
        return warn(
            NAME,
            format!("{shown}; {why}, a credit or more each"),
            "buy credits in the BulkSMS web app before the run, or texts past the balance fail",
        );
    }
    if let Some(quota) = quota
        && quota < expected as i64
    {
        return warn(
            NAME,
            format!("{shown}; {why}"),
            "texts past today's quota fail until it resets; ask BulkSMS to raise it",
        );
    }
    ok(NAME, format!("{shown}; {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn pipeline(extra: &str) -> PipelineConfig {
        let text = format!(
            r#"
[pipeline]
name = "t"
state_dir = "state"
[ghl]
base_url = "http://127.0.0.1:9/ghl"
location_id = "loc"
auth = {{ kind = "private_token", token = "pit-1" }}
[bulksms]
base_url = "http://127.0.0.1:9/bulksms/v1"
token_id = "id"
token_secret = "secret"
[transform.triggers.welcome]
template = "Hi"
{extra}
"#
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.toml");
        std::fs::write(&path, text).expect("write");
        PipelineConfig::load(&path).expect("valid pipeline")
    }

    fn quiet(start: &str, end: &str) -> CheckLine {
        let config = pipeline(&format!(
            "[load.quiet_hours]\nstart = \"{start}\"\nend = \"{end}\"\ndefault_timezone = \"America/New_York\"\n"
        ));
        // 15:00 UTC is 10:00 in New York.
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 15, 0, 0).unwrap();
        quiet_hours_check(&config, now)
    }

    #[test]
    fn night_quiet_hours_pass_and_swapped_or_empty_ones_warn() {
        let night = quiet("21:00", "08:00");
        assert_eq!(night.status, CheckStatus::Ok, "{}", night.message);
        assert!(
            night.message.contains("10:00 there now, sending"),
            "{}",
            night.message
        );
        let swapped = quiet("08:00", "21:00");
        assert_eq!(swapped.status, CheckStatus::Warn);
        assert!(
            swapped.message.contains("midday included"),
            "{}",
            swapped.message
        );
        assert_eq!(quiet("09:00", "09:00").status, CheckStatus::Warn);
        let config = pipeline("");
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 15, 0, 0).unwrap();
        assert_eq!(
            quiet_hours_check(&config, now).status,
            CheckStatus::Warn,
            "a sending pipeline without quiet hours"
        );
    }

    #[test]
    fn rate_limit_headers_are_reported_and_a_lower_limit_warns() {
        let config = pipeline("");
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in [
            ("x-ratelimit-max", "25"),
            ("x-ratelimit-remaining", "24"),
            ("x-ratelimit-interval-milliseconds", "10000"),
            ("x-ratelimit-limit-daily", "10000"),
            ("x-ratelimit-daily-remaining", "9000"),
        ] {
            headers.insert(k, v.parse().expect("header value"));
        }
        let line = rate_limit_check(&headers, &config);
        assert_eq!(line.status, CheckStatus::Warn, "{}", line.message);
        assert!(
            line.message.contains("burst 25 per 10000 ms (24 left)"),
            "{}",
            line.message
        );
        assert!(line.fix.expect("fix").contains("burst = 25"));
        headers.insert("x-ratelimit-max", "100".parse().expect("value"));
        assert_eq!(rate_limit_check(&headers, &config).status, CheckStatus::Ok);
        let line = rate_limit_check(&reqwest::header::HeaderMap::new(), &config);
        assert_eq!(line.status, CheckStatus::Warn);
    }
}
