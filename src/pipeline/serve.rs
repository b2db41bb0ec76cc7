//! The webhook receiver's options from a pipeline file (`[serve]`, `[ghl]`, the state directory).

use crate::config::PipelineConfig;
use crate::serve::{ServeError, ServeOptions};

/// [`ServeOptions`] of a pipeline file.
pub fn serve_options(config: &PipelineConfig) -> Result<ServeOptions, ServeError> {
    ServeOptions::from_sections(&config.serve, &config.ghl, config.state_dir(), &|path| {
        config.resolve(path)
    })
}
