//! The webhook receiver's options from a pipeline file (`[serve]`, `[ghl]`, the state directory).

use crate::clock::Clock;
use crate::config::PipelineConfig;
use crate::serve::{ServeError, ServeOptions};
use std::sync::Arc;

/// [`ServeOptions`] of a pipeline file; webhook timestamps are checked against `clock`.
pub fn serve_options(
    config: &PipelineConfig,
    clock: Arc<dyn Clock>,
) -> Result<ServeOptions, ServeError> {
    ServeOptions::from_sections(
        &config.serve,
        &config.ghl,
        config.state_dir(),
        &|path| config.resolve(path),
        clock,
    )
}
