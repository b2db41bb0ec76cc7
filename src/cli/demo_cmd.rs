//! `contactsync demo`: a seeded sandbox in-process and the nightly pipeline against it, end to end.

use super::sandbox_cmd::sandbox_pipeline_toml;
use super::{CommandError, CommandReport, DemoArgs};
use crate::api::ghl::GhlClient;
use crate::config::{GhlAuthConfig, PipelineConfig};
use crate::exit_code::ExitCode;
use crate::extract::{ExtractOptions, run_extract};
use crate::sandbox::{self, SandboxOptions};
use anyhow::Context;

pub(super) async fn run(args: DemoArgs) -> Result<ExitCode, CommandError> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating demo folder {}", args.out.display()))?;
    let out = args
        .out
        .canonicalize()
        .with_context(|| format!("resolving {}", args.out.display()))?;
    let options = SandboxOptions {
        seed: args.seed,
        contacts: args.contacts,
        messages: args.messages,
        ..SandboxOptions::default()
    };
    let handle = sandbox::start(options)
        .await
        .context("starting the sandbox")?;
    tracing::info!(ghl = %handle.info.ghl_base_url, bulksms = %handle.info.bulksms_base_url, "Sandbox started");

    let pipeline_path = out.join("pipeline.toml");
    // A fresh state folder each time: the demo shows a first (baseline) run.
    let state_dir = out.join("state");
    if state_dir.exists() {
        std::fs::remove_dir_all(&state_dir)
            .with_context(|| format!("clearing {}", state_dir.display()))?;
    }
    std::fs::write(&pipeline_path, sandbox_pipeline_toml(&handle.info, "state"))
        .with_context(|| format!("writing {}", pipeline_path.display()))?;
    let config = PipelineConfig::load(&pipeline_path)?;

    // Authorise once, as a user would with `contactsync auth ghl`.
    if let GhlAuthConfig::Oauth {
        auth_code: Some(code),
        ..
    } = &config.ghl.auth
    {
        let client = GhlClient::from_config(&config)?;
        let manager = client
            .token_manager()
            .expect("OAuth config always has a token manager");
        manager
            .exchange_code(code)
            .await
            .context("exchanging the sandbox's authorization code")?;
    }

    let extract = run_extract(
        &config,
        &ExtractOptions {
            full: false,
            progress: !args.json,
        },
    )
    .await?;

    let mut report = CommandReport {
        command: "demo".into(),
        run_id: Some(extract.run.id.clone()),
        run_dir: Some(extract.run.path.clone()),
        ..CommandReport::default()
    };
    for (name, entity) in &extract.manifest.entities {
        report.counts.insert(format!("{name}.rows"), entity.rows);
    }
    for (api, metrics) in &extract.manifest.requests {
        report.requests.insert(api.clone(), metrics.requests);
    }
    handle.shutdown().await.context("stopping the sandbox")?;
    if args.json {
        report.print();
    } else {
        eprintln!();
        eprintln!("Demo finished in {:.1} s.", started.elapsed().as_secs_f64());
        eprintln!("  pipeline file: {}", pipeline_path.display());
        eprintln!("  run folder:    {}", extract.run.path.display());
        eprintln!("  snapshot:      {}", extract.run.extract_dir().display());
        for (name, entity) in &extract.manifest.entities {
            eprintln!("    {name:<24} {:>8} rows  {}", entity.rows, entity.file);
        }
    }
    Ok(ExitCode::Ok)
}
