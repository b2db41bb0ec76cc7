//! `contactsync serve`: runs the webhook receiver until SIGTERM or ctrl-c, then drains.

use super::{CommandError, ServeArgs};
use crate::config::PipelineConfig;
use crate::exit_code::ExitCode;
use crate::serve::start;

pub async fn run(args: ServeArgs) -> Result<ExitCode, CommandError> {
    let config = PipelineConfig::load(&args.pipeline).map_err(|e| CommandError {
        code: ExitCode::BadConfig,
        error: e.into(),
    })?;
    let mut options = crate::pipeline::serve::serve_options(&config).map_err(|e| CommandError {
        code: ExitCode::BadConfig,
        error: e.into(),
    })?;
    if let Some(listen) = args.listen {
        options.listen = listen;
    }
    let server = start(options).await?;
    // One JSON line a supervisor or test reads to learn the port.
    println!(
        "{}",
        serde_json::json!({ "listen": server.addr.to_string() })
    );
    tracing::info!(listen = %server.addr, "Receiving webhooks");
    wait_for_stop_signal().await;
    tracing::info!("Stop requested; draining (new events get 429) and flushing the spool");
    server.shutdown().await;
    Ok(ExitCode::Ok)
}

async fn wait_for_stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot listen for SIGTERM; only ctrl-c stops serve")
            }
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
