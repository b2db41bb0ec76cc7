//! Snapshots: the Arrow schemas, manifests, run directories and atomic Parquet writes that are the
//! contract between stages. A stage reads files described here and writes files described here; it
//! never reaches into another stage's code.

pub mod atomic;
pub mod contact;
pub mod contract;
pub mod desired;
pub mod manifest;
pub mod parts;
pub mod phone;
pub mod run;
pub mod schema;
pub mod store;

/// Version of the snapshot layout; bumped when a schema changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;
