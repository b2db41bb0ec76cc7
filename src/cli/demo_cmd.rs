//! `contactsync demo`: a seeded sandbox in-process and the nightly pipeline against it, end to end.

use super::sandbox_cmd::sandbox_pipeline_toml;
use super::{CommandError, DemoArgs};
use crate::api::ghl::GhlClient;
use crate::config::{GhlAuthConfig, PipelineConfig};
use crate::exit_code::ExitCode;
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

    let (mut report, code) = super::pipeline_cmds::run_pipeline(&config, !args.json).await?;
    report.command = "demo".into();
    let control = handle.info.control_url.clone();
    let sandbox_stats: serde_json::Value = reqwest::get(format!("{control}/_sandbox/stats"))
        .await
        .context("reading sandbox stats")?
        .json()
        .await
        .context("parsing sandbox stats")?;
    handle.shutdown().await.context("stopping the sandbox")?;
    let run_dir = report.run_dir.clone().unwrap_or_default();
    if args.json {
        report.print();
    } else {
        let count = |k: &str| report.counts.get(k).copied().unwrap_or(0);
        eprintln!();
        eprintln!(
            "Demo finished in {:.1} s ({:?}).",
            started.elapsed().as_secs_f64(),
            code
        );
        eprintln!("  pipeline file:  {}", pipeline_path.display());
        eprintln!("  run folder:     {}", run_dir.display());
        eprintln!(
            "  snapshot:       {} ({} contacts, {} messages)",
            run_dir.join("extract").display(),
            count("ghl/contacts.rows"),
            count("bulksms/messages.rows")
        );
        eprintln!(
            "  transform:      {} ({} duplicate clusters)",
            run_dir.join("transform").display(),
            count("duplicate_clusters")
        );
        eprintln!(
            "  plan:           {} ({} operations)",
            run_dir.join("load/plan.md").display(),
            count("planned_operations")
        );
        eprintln!(
            "  applied:        {} operations, {} failed, {} skipped; the sandbox saw {} requests and {} writes",
            count("applied"),
            count("failed"),
            count("skipped"),
            sandbox_stats["total_requests"],
            sandbox_stats["writes"]
        );
        eprintln!(
            "  report:         {}",
            run_dir.join("audit/report.html").display()
        );
        eprintln!(
            "  metrics:        {}",
            run_dir.join("metrics.prom").display()
        );
        for e in &report.errors {
            eprintln!("  {e}");
        }
    }
    Ok(code)
}
