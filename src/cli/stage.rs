//! What every stage command does first: read the pipeline file and take the state directory's lock.

use super::{CommandError, StageArgs};
use crate::clock::Clock;
use crate::config::PipelineConfig;
use crate::exit_code::ExitCode;
pub use crate::pipeline::lock::StateLock;
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
