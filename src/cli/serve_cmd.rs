//! `contactsync serve`: runs the webhook receiver until SIGTERM or ctrl-c, then drains.

use super::{CommandError, ServeArgs};
use crate::config::PipelineConfig;
use crate::exit_code::ExitCode;
use crate::pipeline::micro_batch::{BatchOutcome, run_micro_batch};
use crate::serve::start;
use std::time::Duration;
use tokio::sync::watch;

pub async fn run(args: ServeArgs) -> Result<ExitCode, CommandError> {
    let config = PipelineConfig::load(&args.pipeline).map_err(|e| CommandError {
        code: ExitCode::BadConfig,
        error: e.into(),
    })?;
    // Webhook timestamps are the senders' wall time, so the receiver checks them against the
    // system's clock even when CONTACTSYNC_NOW fixes the pipeline's.
    let receiver_clock = std::sync::Arc::new(crate::clock::SystemClock);
    let mut options =
        crate::pipeline::serve::serve_options(&config, receiver_clock).map_err(|e| {
            CommandError {
                code: ExitCode::BadConfig,
                error: e.into(),
            }
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
    let (stop_batches, stopped) = watch::channel(false);
    let batches = match config.serve.batch_interval_secs {
        Some(secs) => {
            let clock = super::stage::pipeline_clock()?;
            Some(tokio::spawn(batch_loop(
                config.clone(),
                Duration::from_secs(secs),
                clock,
                stopped,
            )))
        }
        None => None,
    };
    wait_for_stop_signal().await;
    tracing::info!("Stop requested; draining (new events get 429) and flushing the spool");
    // A batch under way finishes (its offset is committed after its load); no new one starts.
    let _ = stop_batches.send(true);
    if let Some(batches) = batches {
        let _ = batches.await;
    }
    server.shutdown().await;
    Ok(ExitCode::Ok)
}

/// Runs a micro-batch every `interval` until told to stop. A failed batch commits nothing: its
/// events are taken again next tick, and the ledger leaves out what it already applied.
async fn batch_loop(
    config: PipelineConfig,
    interval: Duration,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    mut stop: watch::Receiver<bool>,
) {
    // Ticks every `interval` from the start of the last batch (a batch that ran longer is
    // followed at once), so an event waits at most about one interval plus one batch.
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut failures_in_a_row = 0u32;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let outcome = run_micro_batch(&config, clock.clone()).await;
        failures_in_a_row = if outcome.is_err() {
            failures_in_a_row.saturating_add(1)
        } else {
            0
        };
        match outcome {
            Ok(BatchOutcome::Idle) => {}
            Ok(BatchOutcome::LockHeld) => {
                tracing::info!(
                    "State lock held (the nightly run); micro-batch waits for the next tick"
                )
            }
            Ok(BatchOutcome::NoBaseline { events }) => tracing::info!(
                events,
                "No run has acted on this location yet: events left to the first nightly run"
            ),
            Ok(BatchOutcome::Done(report)) => {
                for error in &report.errors {
                    tracing::warn!(batch = %report.id, error, "Micro-batch operation failed; owed to the next run");
                }
            }
            Err(e) => {
                let wait = failure_backoff(interval, failures_in_a_row);
                tracing::error!(
                    error = format!("{e:#}"),
                    failures_in_a_row,
                    retry_in_secs = wait.as_secs(),
                    "Micro-batch failed; its events are retried later"
                );
                // Not every tick: a GHL outage or a revoked grant would otherwise be hit (and
                // logged) every few seconds while the spool fills.
                tokio::select! {
                    _ = tokio::time::sleep(wait.saturating_sub(interval)) => {}
                    _ = stop.changed() => return,
                }
                ticker.reset();
            }
        }
    }
}

/// How long after a failed batch the next one starts: the interval, doubled with each failure in
/// a row, at most [`MAX_FAILURE_BACKOFF`] (events wait in the spool meanwhile, acknowledged).
pub fn failure_backoff(interval: Duration, failures_in_a_row: u32) -> Duration {
    let doubled = interval.saturating_mul(1u32 << failures_in_a_row.saturating_sub(1).min(16));
    doubled.min(MAX_FAILURE_BACKOFF.max(interval))
}

/// Longest wait between failing batches.
pub const MAX_FAILURE_BACKOFF: Duration = Duration::from_secs(600);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_batches_back_off_to_ten_minutes_and_no_further() {
        let ten = Duration::from_secs(10);
        let waits: Vec<u64> = (1..=8).map(|n| failure_backoff(ten, n).as_secs()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 600, 600]);
        assert_eq!(failure_backoff(ten, u32::MAX), MAX_FAILURE_BACKOFF);
        // An interval longer than the cap is kept: backing off never makes batches more frequent.
        let hour = Duration::from_secs(3_600);
        assert_eq!(failure_backoff(hour, 3), hour);
    }
}
