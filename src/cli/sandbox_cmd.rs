//! `contactsync sandbox`: serve both emulators until interrupted.

use super::{CommandError, SandboxArgs};
use crate::exit_code::ExitCode;
use crate::sandbox::{self, ReadyInfo, SandboxOptions, faults::FaultProfile};
use anyhow::Context;
use std::path::Path;

pub(super) async fn run(args: SandboxArgs) -> Result<ExitCode, CommandError> {
    let faults = FaultProfile::from_arg(&args.faults).map_err(|e| CommandError {
        code: ExitCode::BadConfig,
        error: anyhow::anyhow!(e),
    })?;
    let options = SandboxOptions {
        listen: args.listen,
        seed: args.seed,
        contacts: args.contacts,
        messages: args.messages,
        faults,
        rate_limit: !args.no_rate_limit,
        token_ttl_secs: args.token_ttl,
        search_index_lag_ms: args.index_lag_ms,
        allow_duplicates: !args.forbid_duplicates,
        ..SandboxOptions::default()
    };
    let started = std::time::Instant::now();
    let handle = sandbox::start(options)
        .await
        .with_context(|| format!("starting the sandbox on {}", args.listen))?;
    if let Some(path) = &args.emit_pipeline {
        write_pipeline_file(path, &handle.info)
            .with_context(|| format!("writing pipeline file {}", path.display()))?;
    }
    tracing::info!(
        addr = %handle.addr,
        contacts = args.contacts,
        messages = args.messages,
        startup_ms = started.elapsed().as_millis() as u64,
        "Sandbox ready"
    );
    println!(
        "{}",
        serde_json::to_string(&handle.info).expect("ReadyInfo always serialises")
    );
    tokio::select! {
        result = handle.wait() => { result.context("sandbox server failed")?; }
        _ = tokio::signal::ctrl_c() => { tracing::info!("Interrupted; sandbox stopping"); }
    }
    Ok(ExitCode::Ok)
}

/// Writes a pipeline file that points every stage at a running sandbox.
pub fn write_pipeline_file(path: &Path, info: &ReadyInfo) -> std::io::Result<()> {
    let text = sandbox_pipeline_toml(info, "state");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)
}

/// The TOML of a pipeline pointed at a sandbox, with credentials inline (they are sandbox-only).
pub fn sandbox_pipeline_toml(info: &ReadyInfo, state_dir: &str) -> String {
    format!(
        r#"# Pipeline pointing at a contactsync sandbox (written by `contactsync sandbox --emit-pipeline`).
# The credentials below are the sandbox's own; never put real ones in a file: use ${{ENV_VAR}}.

[pipeline]
name = "sandbox"
state_dir = "{state_dir}"
default_region = "US"

[ghl]
base_url = "{ghl}"
location_id = "{location}"
auth = {{ kind = "oauth", client_id = "{client_id}", client_secret = "{client_secret}", auth_code = "{auth_code}" }}

[bulksms]
base_url = "{bulksms}"
token_id = "{token_id}"
token_secret = "{token_secret}"
"#,
        ghl = info.ghl_base_url,
        location = info.ghl_location_id,
        client_id = info.ghl_client_id,
        client_secret = info.ghl_client_secret,
        auth_code = info.ghl_auth_code,
        bulksms = info.bulksms_base_url,
        token_id = info.bulksms_token_id,
        token_secret = toml_escape(&info.bulksms_token_secret),
    )
}

fn toml_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
