//! `contactsync sandbox`: serve both emulators until interrupted.

use super::{CommandError, SandboxArgs};
use crate::exit_code::ExitCode;
use crate::sandbox::{self, ReadyInfo, SandboxOptions, faults::FaultProfile};
use anyhow::Context;
use std::path::Path;

pub(super) async fn run(args: SandboxArgs) -> Result<ExitCode, CommandError> {
    if let Some(dir) = &args.export_seed {
        return export_seed(&args, dir);
    }
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

/// Writes the seeded contacts and their truth as CSV, without serving.
fn export_seed(args: &SandboxArgs, dir: &Path) -> Result<ExitCode, CommandError> {
    use crate::sandbox::seed;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let started = std::time::Instant::now();
    let data = seed::generate(&seed::SeedSpec {
        seed: args.seed,
        contacts: args.contacts,
        messages: args.messages,
        now: chrono::Utc::now(),
    });
    let generated = started.elapsed();
    seed::write_contacts_csv(&data, &dir.join("contacts.csv"))
        .with_context(|| format!("writing {}", dir.join("contacts.csv").display()))?;
    seed::write_truth_csv(&data, &dir.join("truth.csv"))
        .with_context(|| format!("writing {}", dir.join("truth.csv").display()))?;
    eprintln!(
        "Generated {} contacts in {:.2} s; wrote contacts.csv and truth.csv to {}",
        data.contacts.len(),
        generated.as_secs_f64(),
        dir.display()
    );
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
