//! `contactsync auth ghl`: connect a GHL location through the app's authorization page and keep its
//! tokens in the state directory.
//!
//! Without a code it prints the authorization page's URL, asking for the least scopes the pipeline
//! needs, then catches the code on a loopback `ghl.auth.redirect_uri` (`http://127.0.0.1:PORT/...`)
//! or, when the redirect lands elsewhere, reads the pasted code or address from stdin. `--code`
//! takes a code, the whole address the browser was sent to, or `-` to read either from stdin.
//!
//! With `ghl.auth.kind = "agency_oauth"` the code is exchanged for the agency's grant
//! (`user_type=Company`, stored in `<state_dir>/tokens/ghl-company.json`, or with `[state] url` in
//! that database, where the pipeline's runners on every machine share it) and the locations where
//! the app is installed are listed; each location's token is minted from the grant when a run
//! first needs it.

use super::stage::load_any_pipeline;
use super::{AuthApi, AuthArgs, CommandError};
use crate::api::agency::AgencyAuth;
use crate::api::auth::StoredTokens;
use crate::api::authorize::{
    self, AuthorizeError, GHL_AUTHORIZE_URL, LoopbackRedirect, code_from_pasted, ghl_scopes_needed,
};
use crate::config::{GhlAuthConfig, PipelineConfig};
use crate::exit_code::ExitCode;
use crate::secret::Secret;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `--json` report of `auth`.
#[derive(Debug, Serialize)]
struct AuthReport {
    command: &'static str,
    api: &'static str,
    /// Where the code came from: `loopback`, `stdin`, `command line` or `pipeline file`.
    code_from: &'static str,
    /// The authorization page's URL, when one was printed.
    authorize_url: Option<String>,
    scopes_requested: Vec<String>,
    scopes_granted: Vec<String>,
    /// The token file, or the database (its URL without the password) holding the grant.
    token_store: String,
    access_token_expires_at: chrono::DateTime<chrono::Utc>,
    /// `Location` or `Company` (an agency grant).
    grant: &'static str,
    /// The agency's id, for an agency grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    company_id: Option<String>,
    /// The locations where the app is installed, for an agency grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    installed_locations: Option<Vec<crate::api::agency::InstalledLocation>>,
    errors: Vec<String>,
    exit_code: u8,
}

/// The `state` of an authorization started here, kept until its code is exchanged so that a
/// redirect address pasted later (`--code URL`) can still be checked against it.
#[derive(Debug, Serialize, Deserialize)]
struct PendingAuthorization {
    state: String,
    redirect_uri: String,
    started_at: chrono::DateTime<chrono::Utc>,
}

fn pending_path(config: &PipelineConfig) -> PathBuf {
    config
        .state_dir()
        .join("tokens")
        .join("ghl-authorize-state.json")
}

fn read_pending(path: &Path) -> anyhow::Result<Option<PendingAuthorization>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn failure(error: impl Into<anyhow::Error>) -> CommandError {
    CommandError {
        code: ExitCode::Failure,
        error: error.into(),
    }
}

pub(super) async fn run(args: AuthArgs) -> Result<ExitCode, CommandError> {
    let AuthApi::Ghl = args.api;
    // An agency grant is stored once for every location: a multi-location file is fine here.
    let config = load_any_pipeline(&args.stage)?;
    let Some(crate::api::config::OauthApp {
        client_id,
        auth_code,
        redirect_uri,
        authorize_url: page,
    }) = config.ghl.auth.app()
    else {
        return Err(CommandError {
            code: ExitCode::BadConfig,
            error: anyhow::anyhow!(
                "ghl.auth.kind is private_token in {}: a private integration token needs no auth step (run `contactsync check` to test it)",
                args.stage.pipeline.display()
            ),
        });
    };
    let clock = super::stage::pipeline_clock()?;
    let agency = match &config.ghl.auth {
        GhlAuthConfig::AgencyOauth {
            company_token_store,
            ..
        } => Some(AgencyAuth::shared(
            &config.ghl,
            &config.http,
            company_token_store,
            clock.clone(),
        )?),
        _ => None,
    };
    let manager = match &agency {
        Some(agency) => agency.token_manager().clone(),
        None => crate::pipeline::clients::ghl_client(&config, clock)?
            .token_manager()
            .expect("OAuth config always has a token manager")
            .clone(),
    };
    let needed = ghl_scopes_needed(config.load.enabled, &config.ghl.auth);
    let pending_file = pending_path(&config);
    let pending = read_pending(&pending_file)?;
    let pending_state = pending.as_ref().map(|p| p.state.as_str());
    let mut printed_url = None;
    let (code, code_from) = match args.code.as_deref() {
        Some("-") => {
            let line = read_stdin_line().await?;
            (
                code_from_pasted(&line, pending_state).map_err(failure)?,
                "stdin",
            )
        }
        Some(value) => (
            code_from_pasted(value, pending_state).map_err(failure)?,
            "command line",
        ),
        None => match auth_code {
            Some(code) => (code.clone(), "pipeline file"),
            None => {
                let redirect_uri = redirect_uri.ok_or_else(|| CommandError {
                    code: ExitCode::BadConfig,
                    error: anyhow::anyhow!(
                        "no ghl.auth.redirect_uri in {}: set it to one of the app's redirect URLs (a loopback one such as http://127.0.0.1:8976/oauth/callback lets this command catch the code), or pass --code",
                        args.stage.pipeline.display()
                    ),
                })?;
                let state = authorize::new_state();
                let url = authorize::authorize_url(
                    page.unwrap_or(GHL_AUTHORIZE_URL),
                    client_id,
                    redirect_uri,
                    &needed,
                    &state,
                )
                .context("building the authorization URL from ghl.auth.authorize_url")?;
                let pending = PendingAuthorization {
                    state: state.clone(),
                    redirect_uri: redirect_uri.to_string(),
                    started_at: chrono::Utc::now(),
                };
                crate::snapshot::atomic::write_private(
                    &pending_file,
                    &serde_json::to_vec_pretty(&pending).expect("serialises"),
                )
                .with_context(|| format!("writing {}", pending_file.display()))?;
                let (code, from) = catch_code(&url, redirect_uri, &state, args.timeout).await?;
                printed_url = Some(url.to_string());
                (code, from)
            }
        },
    };
    let tokens = manager.exchange_code_for(&code, redirect_uri).await?;
    if let Err(e) = std::fs::remove_file(&pending_file)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %pending_file.display(), error = %e, "Could not remove the spent authorization state");
    }
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|s| !tokens.scopes().contains(s))
        .collect();
    if !missing.is_empty() {
        // main prints the failure report under --json.
        return Err(failure(anyhow::anyhow!(
            "GHL tokens stored in {}, but the grant lacks {} which this pipeline needs (granted: {:?}); add the scope in the app's settings (marketplace.gohighlevel.com, My Apps > the app, where its scopes are configured) and run `contactsync auth ghl` again",
            manager.store(),
            missing.join(", "),
            tokens.scope
        )));
    }
    let installed = match &agency {
        Some(agency) => Some(
            agency
                .installed_locations()
                .await
                .context("listing the locations where the app is installed")?,
        ),
        None => None,
    };
    if args.stage.json {
        let report = AuthReport {
            command: "auth",
            api: "ghl",
            code_from,
            authorize_url: printed_url,
            scopes_requested: needed.iter().map(|s| s.to_string()).collect(),
            scopes_granted: tokens.scopes().iter().map(|s| s.to_string()).collect(),
            token_store: manager.store().to_string(),
            access_token_expires_at: tokens.expires_at,
            grant: if agency.is_some() {
                "Company"
            } else {
                "Location"
            },
            company_id: agency.as_ref().and(tokens.company_id.clone()),
            installed_locations: installed,
            errors: Vec::new(),
            exit_code: ExitCode::Ok as u8,
        };
        println!(
            "{}",
            serde_json::to_string(&report).expect("AuthReport serialises")
        );
    } else {
        print_human(&manager.store().to_string(), &tokens, &args.stage.pipeline);
        if let Some(installed) = &installed {
            eprintln!(
                "The app is installed on {} location(s) of agency {}:",
                installed.len(),
                tokens.company_id.as_deref().unwrap_or("?")
            );
            for location in installed {
                eprintln!("  {}  {}", location.id, location.name);
            }
        }
    }
    Ok(ExitCode::Ok)
}

fn print_human(store: &str, tokens: &StoredTokens, pipeline: &Path) {
    eprintln!(
        "GHL tokens stored in {store} (scopes: {}; access token expires {}).\nNext: contactsync check --pipeline {}",
        tokens.scope,
        tokens.expires_at.format("%Y-%m-%d %H:%M UTC"),
        pipeline.display()
    );
}

/// Prints the authorization URL and waits for the code: on the loopback listener when the
/// redirect URI is one, else from a paste on stdin.
async fn catch_code(
    url: &url::Url,
    redirect_uri: &str,
    state: &str,
    timeout_secs: u64,
) -> Result<(Secret, &'static str), CommandError> {
    match LoopbackRedirect::bind(redirect_uri)
        .await
        .map_err(failure)?
    {
        Some(listener) => {
            eprintln!(
                "Open this address in a browser signed in to HighLevel, choose the location and allow access\n(waiting {timeout_secs} s for the redirect to {redirect_uri}):\n\n{url}\n"
            );
            let code = listener
                .wait_for_code(state, Duration::from_secs(timeout_secs))
                .await
                .map_err(failure)?;
            Ok((code, "loopback"))
        }
        None => {
            eprintln!(
                "Open this address in a browser signed in to HighLevel, choose the location and allow access:\n\n{url}\n\nThe browser is then sent to {redirect_uri}?code=...: paste that whole address (or just the code) here and press Enter.\n(Or stop here and run later: contactsync auth ghl --pipeline FILE --code 'ADDRESS')"
            );
            let line = read_stdin_line().await?;
            let code = code_from_pasted(&line, Some(state)).map_err(failure)?;
            Ok((code, "stdin"))
        }
    }
}

/// One line from stdin (a human pasting, or a pipe); EOF gives an empty line.
async fn read_stdin_line() -> Result<String, CommandError> {
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await
    .context("reading stdin")?
    .context("reading the code from stdin")?;
    if line.trim().is_empty() {
        return Err(failure(AuthorizeError::Empty));
    }
    Ok(line)
}
