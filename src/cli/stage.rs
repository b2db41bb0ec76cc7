//! What every stage command does first: read the pipeline file and take the state directory's lock.

use super::{CommandError, StageArgs};
use crate::clock::Clock;
use crate::config::PipelineConfig;
use crate::exit_code::ExitCode;
use anyhow::Context;
use fs2::FileExt;
use std::fs::File;
use std::path::Path;
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

/// An exclusive lock on a state directory, held while a command writes to it, so two runs never
/// overlap. Released when dropped (and by the OS if the process dies).
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Takes the lock or fails at once with exit code 6.
    pub fn acquire(state_dir: &Path) -> Result<Self, CommandError> {
        Self::acquire_waiting(state_dir, std::time::Duration::ZERO)
    }

    /// Takes the lock, waiting up to `wait` for its holder to finish (a micro-batch of `serve`
    /// holds it for seconds), then fails with exit code 6.
    pub fn acquire_waiting(
        state_dir: &Path,
        wait: std::time::Duration,
    ) -> Result<Self, CommandError> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("creating state directory {}", state_dir.display()))?;
        crate::snapshot::atomic::restrict_dir(state_dir)
            .with_context(|| format!("making {} owner-only", state_dir.display()))?;
        let path = state_dir.join("lock");
        let file = File::create(&path).with_context(|| format!("opening {}", path.display()))?;
        let deadline = std::time::Instant::now() + wait;
        // Before anything else happens in the command, so a blocking wait stalls nothing.
        while file.try_lock_exclusive().is_err() {
            if std::time::Instant::now() >= deadline {
                return Err(CommandError {
                    code: ExitCode::Locked,
                    error: anyhow::anyhow!(
                        "another contactsync run holds {}; try again when it has finished",
                        path.display()
                    ),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        Ok(StateLock { _file: file })
    }
}
