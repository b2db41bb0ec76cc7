//! The run's lock, taken by every command that writes to a pipeline location's state.

use super::CommandError;
use crate::config::PipelineConfig;
use crate::exit_code::ExitCode;

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
