//! contactsync: a batch ETL pipeline between HighLevel (GHL) CRM locations and BulkSMS.com.
//!
//! The module tree is the pipeline: `extract` pages both APIs into Parquet snapshots, `transform`
//! normalises, deduplicates and links them, `load` plans and applies the writes, `audit` reports.
//! Stages meet only through files whose schemas live in `snapshot`. `api` is the one HTTP layer both
//! clients share; `sandbox` emulates both services and depends on nothing of the pipeline.

pub mod api;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod env_vars;
pub mod exit_code;
pub mod extract;
pub mod load;
pub mod logging;
pub mod matching;
pub mod migrate;
pub mod normalize;
pub mod pipeline;
pub mod sandbox;
pub mod secret;
pub mod serve;
pub mod sms_encoding;
pub mod snapshot;
pub mod state;
pub mod transform;
