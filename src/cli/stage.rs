//! What every stage command does first: read the pipeline file and take the state directory's lock.

use super::{CommandError, StageArgs};
use crate::clock::Clock;
use crate::config::PipelineConfig;
use crate::exit_code::ExitCode;
use std::sync::Arc;

/// Reads and validates a one-location pipeline file; errors (a file naming many locations
/// among them: only `run` and `audit --all-locations` take those) exit with code 2.
pub fn load_pipeline(args: &StageArgs) -> Result<PipelineConfig, CommandError> {
    let config = load_any_pipeline(args)?;
    if !matches!(config.locations(), crate::config::Locations::Single(_)) {
        return Err(CommandError {
            code: ExitCode::BadConfig,
            error: anyhow::anyhow!(
                "{} names many locations (`ghl.locations`): only `contactsync run` and `contactsync audit --all-locations` work on it; each location's state is in {}",
                args.pipeline.display(),
                config.state_dir().join("locations").display()
            ),
        });
    }
    Ok(config)
}

/// Reads and validates a pipeline file of one location or many; errors exit with code 2.
pub fn load_any_pipeline(args: &StageArgs) -> Result<PipelineConfig, CommandError> {
    PipelineConfig::load(&args.pipeline).map_err(|e| CommandError {
        code: ExitCode::BadConfig,
        error: e.into(),
    })
}

/// The clock stage commands run on: wall time, or `CONTACTSYNC_NOW` when set (tests); a bad value
/// exits with code 2.
pub fn pipeline_clock() -> Result<Arc<dyn Clock>, CommandError> {
    crate::clock::from_env().map_err(|message| CommandError {
        code: ExitCode::BadConfig,
        error: anyhow::anyhow!(message),
    })
}

/// The run's lock (the state directory's lock file, and with `[state] url` the PostgreSQL advisory
/// lock of this pipeline location), held while a command writes to the state, so two runs never
/// overlap, on one machine or several. Released when dropped, and by the OS or the database server
/// if the process dies.
pub struct StateLock {
    _lock: crate::state::StateLock,
}

impl StateLock {
    /// Takes the lock or fails at once with exit code 6.
    pub fn acquire(config: &PipelineConfig) -> Result<Self, CommandError> {
        Self::acquire_waiting(config, std::time::Duration::ZERO)
    }

    /// Takes the lock, waiting up to `wait` for its holder to finish (a micro-batch of `serve`
    /// holds it for seconds), then fails with exit code 6.
    pub fn acquire_waiting(
        config: &PipelineConfig,
        wait: std::time::Duration,
    ) -> Result<Self, CommandError> {
        match config.state_store().lock(wait) {
            Ok(lock) => Ok(StateLock { _lock: lock }),
            Err(e @ crate::state::LockError::Held(_)) => Err(CommandError {
                code: ExitCode::Locked,
                error: e.into(),
            }),
            Err(e) => Err(e.into()),
        }
    }
}
