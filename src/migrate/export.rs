//! Reading an export as other tools ship it: CSV (rows whose field count differs from the header
//! are set aside, not guessed at) or Parquet, every cell as text.

use anyhow::{Context, bail};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// One row of the export, read as text.
#[derive(Debug, Clone)]
pub struct RawRow {
    /// 1-based data row (the header is row 0).
    pub row: usize,
    pub cells: HashMap<String, String>,
}

/// A row set aside, with why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rejected {
    pub row: usize,
    pub reason: String,
    /// The row as read (cells joined), so nothing is lost.
    pub raw: String,
}

/// Reads an export. CSV rows whose field count differs from the header are rejected, not
/// guessed at; Parquet goes through polars.
pub fn read_export(path: &Path) -> anyhow::Result<(Vec<String>, Vec<RawRow>, Vec<Rejected>)> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "csv" => read_csv(path),
        "parquet" => read_parquet(path),
        other => bail!(
            "{}: unsupported input type {other:?}; use .csv or .parquet",
            path.display()
        ),
    }
}

fn read_csv(path: &Path) -> anyhow::Result<(Vec<String>, Vec<RawRow>, Vec<Rejected>)> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let header: Vec<String> = reader
        .headers()
        .with_context(|| format!("{}: reading the header", path.display()))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let mut rows = Vec::new();
    let mut rejected = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let row = index + 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                rejected.push(Rejected {
                    row,
                    reason: format!("unreadable CSV row: {e}"),
                    raw: String::new(),
                });
                continue;
            }
        };
        if record.len() != header.len() {
            rejected.push(Rejected {
                row,
                reason: format!(
                    "row has {} fields, the header has {}",
                    record.len(),
                    header.len()
                ),
                raw: record.iter().collect::<Vec<_>>().join(","),
            });
            continue;
        }
        rows.push(RawRow {
            row,
            cells: header
                .iter()
                .cloned()
                .zip(record.iter().map(str::to_string))
                .collect(),
        });
    }
    Ok((header, rows, rejected))
}

fn read_parquet(path: &Path) -> anyhow::Result<(Vec<String>, Vec<RawRow>, Vec<Rejected>)> {
    use polars::prelude::DataType;
    let frame = crate::matching::io::read_frame(path)?;
    let header: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let mut rows: Vec<RawRow> = (0..frame.height())
        .map(|i| RawRow {
            row: i + 1,
            cells: HashMap::new(),
        })
        .collect();
    for name in &header {
        let col = frame
            .column(name)?
            .cast(&DataType::String)
            .with_context(|| format!("{}: column {name} as text", path.display()))?;
        for (i, v) in col.str()?.iter().enumerate() {
            rows[i]
                .cells
                .insert(name.clone(), v.unwrap_or_default().to_string());
        }
    }
    Ok((header, rows, Vec::new()))
}
