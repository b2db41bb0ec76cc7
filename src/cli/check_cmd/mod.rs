//! `contactsync check`: everything a night needs, checked before the night, without writing
//! anything remote: GHL credentials and scopes, access to the location, rate-limit headers, the
//! BulkSMS account and its credits, the state directory (and `[state] url`'s database), the match
//! model and quiet hours.
//!
//! Every call it makes is a read. The one exception a run would make too: an OAuth access token
//! that has already expired is refreshed (and the rotated pair stored), as the run would.

mod local;
mod services;
mod state_store;

use super::stage::load_pipeline;
use super::{CheckArgs, CommandError};
use crate::config::PipelineConfig;
use crate::exit_code::ExitCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::PathBuf;

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
    let mut checks = vec![
        local::state_dir_check(&config.state_dir()),
        local::model_check(config),
        local::quiet_hours_check(config, now),
    ];
    checks.extend(state_store::state_url_check(config));
    checks.extend(services::ghl_checks(&quick, now).await);
    checks.extend(services::bulksms_checks(&quick).await);
    checks
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

/// A pipeline file for unit tests: private token, a welcome text, and `extra` appended.
#[cfg(test)]
fn test_pipeline(extra: &str) -> PipelineConfig {
    crate::config::test_support::pipeline(
        r#"{ kind = "private_token", token = "pit-1" }"#,
        &format!("[transform.triggers.welcome]\ntemplate = \"Hi\"\n{extra}"),
    )
}
