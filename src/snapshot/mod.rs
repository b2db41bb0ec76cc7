//! Snapshots: the Arrow schemas, manifest and atomic Parquet writes that are the contract between stages.
