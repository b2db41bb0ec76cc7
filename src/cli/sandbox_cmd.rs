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
        locations: args.locations,
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
        locations = args.locations,
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
{rate_limit}"#,
        ghl = info.ghl_base_url,
        location = info.ghl_location_id,
        client_id = info.ghl_client_id,
        client_secret = info.ghl_client_secret,
        auth_code = info.ghl_auth_code,
        bulksms = info.bulksms_base_url,
        token_id = info.bulksms_token_id,
        token_secret = toml_escape(&info.bulksms_token_secret),
        rate_limit = ghl_rate_limit_toml(info),
    )
}

/// The pipeline paces itself to the limit the sandbox enforces. A sandbox started without one
/// (tests of other things) gets a pipeline that need not wait either.
fn ghl_rate_limit_toml(info: &ReadyInfo) -> String {
    match info.ghl_rate_limit {
        Some(limit) => format!(
            "\n[ghl.rate_limit]\nburst = {}\nwindow_ms = {}\ndaily = {}\n",
            limit.burst, limit.window_ms, limit.daily
        ),
        None => "\n# This sandbox enforces no rate limit, so the pipeline need not pace itself.\n\
                 [ghl.rate_limit]\nburst = 1000000\nwindow_ms = 1000\ndaily = 1000000000\n"
            .to_string(),
    }
}

fn toml_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PipelineConfig;
    use crate::sandbox::SandboxRateLimit;

    fn info(limit: Option<SandboxRateLimit>) -> ReadyInfo {
        ReadyInfo {
            ghl_base_url: "http://127.0.0.1:1/ghl".into(),
            bulksms_base_url: "http://127.0.0.1:1/bulksms/v1".into(),
            control_url: "http://127.0.0.1:1".into(),
            ghl_location_id: "loc".into(),
            ghl_client_id: "id".into(),
            ghl_client_secret: "secret".into(),
            ghl_auth_code: "code".into(),
            ghl_token: "token".into(),
            bulksms_token_id: "tid".into(),
            bulksms_token_secret: "t\"s".into(),
            ghl_rate_limit: limit,
            ghl_webhook_public_key_pem: String::new(),
            ghl_locations: Vec::new(),
            ghl_company_id: String::new(),
            ghl_company_auth_code: String::new(),
        }
    }

    fn load(text: &str) -> PipelineConfig {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pipeline.toml");
        std::fs::write(&path, text).expect("write");
        PipelineConfig::load(&path).expect("the emitted pipeline loads")
    }

    #[test]
    fn the_pipeline_paces_itself_to_the_sandbox_s_limit() {
        let limit = SandboxRateLimit {
            burst: 7,
            window_ms: 700,
            daily: 70,
        };
        let config = load(&sandbox_pipeline_toml(&info(Some(limit)), "state"));
        let paced = &config.ghl.rate_limit;
        assert_eq!((paced.burst, paced.window_ms, paced.daily), (7, 700, 70));
        assert_eq!(config.bulksms.token_secret.expose(), "t\"s");
    }

    #[test]
    fn a_sandbox_without_a_limit_gets_a_pipeline_that_does_not_wait() {
        let config = load(&sandbox_pipeline_toml(&info(None), "state"));
        let paced = &config.ghl.rate_limit;
        assert!(
            paced.burst as f64 / paced.window_ms as f64 >= 100.0,
            "{paced:?}"
        );
    }
}
