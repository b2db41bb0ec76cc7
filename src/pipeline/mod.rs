//! The pipeline: runs the stages on a pipeline file's settings, one at a time or all in order.
//! The CLI parses arguments and prints; what a command does to runs, the ledger and the two
//! services is here. Each stage runs inside a tracing span named `stage` (field `stage`) inside a
//! `location` span (field `location_id`), so every log line says which stage and location wrote it.

pub mod agency;
pub mod clients;
pub mod locations;
pub mod lock;
mod metrics;
pub mod micro_batch;
pub mod report;
pub mod routing_store;
pub mod run;
pub mod serve;
pub mod stages;

pub use report::CommandReport;
pub use run::run_pipeline;
pub use stages::{
    audit_run, extract_run, load_run, location_span, match_model, plan_run, plan_summary,
    select_run, stage_span, transform_run,
};

use crate::exit_code::ExitCode;

/// Error of a command or stage: what to print and which exit code to use.
#[derive(Debug)]
pub struct CommandError {
    /// The process exit code this failure ends with.
    pub code: ExitCode,
    /// What failed, with its cause chain.
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for CommandError {
    fn from(e: E) -> Self {
        let error: anyhow::Error = e.into();
        let code = if error.downcast_ref::<crate::config::ConfigError>().is_some() {
            ExitCode::BadConfig
        } else {
            ExitCode::Failure
        };
        CommandError { code, error }
    }
}
