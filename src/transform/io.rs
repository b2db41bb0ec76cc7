//! Reading tables to deduplicate (CSV or Parquet, through polars) and writing the results.
//! Rows without a usable id go to a quarantine file with the reason; nothing is dropped silently.

use super::dedupe::{DedupeResult, InputTable};
use super::encode::TextColumn;
use super::model::MatchModel;
use anyhow::{Context, bail};
use polars::prelude::{
    Column, CsvReadOptions, CsvWriter, DataFrame, DataType, ParquetCompression, ParquetReader,
    ParquetWriter, SerReader, SerWriter, df,
};
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A row set aside, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantinedRow {
    /// 1-based data row (the header is row 0).
    pub row: usize,
    pub id: Option<String>,
    pub reason: String,
}

/// Reads a CSV (every column as text) or Parquet file into a frame.
pub(crate) fn read_frame(path: &Path) -> anyhow::Result<DataFrame> {
    read_frame_columns(path, None)
}

/// The header of a CSV file.
fn csv_header(path: &Path) -> anyhow::Result<Vec<String>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("opening CSV {}", path.display()))?;
    Ok(reader
        .headers()
        .with_context(|| format!("reading the header of {}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect())
}

/// Reads a CSV or Parquet file, only the columns in `wanted` (all when None) that it has: an
/// export with forty columns costs what the model reads, not all forty.
fn read_frame_columns(path: &Path, wanted: Option<&HashSet<String>>) -> anyhow::Result<DataFrame> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "csv" => CsvReadOptions::default()
            .with_has_header(true)
            .with_columns(match wanted {
                Some(wanted) => Some(
                    csv_header(path)?
                        .into_iter()
                        .filter(|h| wanted.contains(h))
                        .map(Into::into)
                        .collect(),
                ),
                None => None,
            })
            // Every column as text: ids like 00123 and phone numbers keep their form.
            .with_infer_schema_length(Some(0))
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
            .with_context(|| format!("reading CSV {}", path.display())),
        "parquet" => {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            ParquetReader::new(file)
                .finish()
                .with_context(|| format!("reading Parquet {}", path.display()))
        }
        other => bail!(
            "{}: unsupported input type {other:?}; use .csv or .parquet",
            path.display()
        ),
    }
}

/// Reads the columns a model needs; rows with an empty or repeated id are quarantined.
pub fn read_table(
    path: &Path,
    model: &MatchModel,
) -> anyhow::Result<(InputTable, Vec<QuarantinedRow>)> {
    let mut wanted: HashSet<String> = model.fields.iter().map(|f| f.name.clone()).collect();
    for rule in &model.blocking {
        wanted.extend(rule.key_parts().map(|(field, _)| field.to_string()));
    }
    wanted.extend(model.swappable.iter().flatten().cloned());
    wanted.extend(model.phone_region_column.iter().cloned());
    wanted.insert(model.id_column.clone());
    let started = std::time::Instant::now();
    let frame = read_frame_columns(path, Some(&wanted))?;
    let parsed_ms = started.elapsed().as_millis() as u64;
    let names: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    if !names.contains(&model.id_column) {
        bail!(
            "{}: no id column {:?} (the model's id_column); columns are {names:?}",
            path.display(),
            model.id_column
        );
    }
    let text = |name: &str| -> anyhow::Result<TextColumn> {
        let col = frame
            .column(name)
            .with_context(|| format!("{}: column {name}", path.display()))?
            .cast(&DataType::String)
            .with_context(|| format!("{}: column {name} as text", path.display()))?;
        let strings = col
            .str()
            .with_context(|| format!("{}: column {name} as text", path.display()))?;
        let bytes = strings.iter().map(|v| v.map_or(0, str::len)).sum::<usize>();
        let mut column = TextColumn::with_capacity(strings.len(), bytes);
        for v in strings.iter() {
            column.push(v);
        }
        Ok(column)
    };
    let ids = text(&model.id_column)?;
    wanted.remove(&model.id_column);
    // Columns are copied into text columns in parallel: on a million rows each is a million cells.
    let columns: std::collections::HashMap<String, TextColumn> = wanted
        .par_iter()
        .filter(|n| names.contains(n))
        .map(|name| Ok((name.clone(), text(name)?)))
        .collect::<anyhow::Result<_>>()?;
    drop(frame);
    let copied_ms = started.elapsed().as_millis() as u64 - parsed_ms;
    let mut keep = Vec::with_capacity(ids.len());
    let mut seen: rustc_hash::FxHashSet<&str> =
        rustc_hash::FxHashSet::with_capacity_and_hasher(ids.len(), Default::default());
    let mut quarantined = Vec::new();
    for (row, id) in ids.iter().enumerate() {
        match id {
            None => quarantined.push(QuarantinedRow {
                row: row + 1,
                id: None,
                reason: format!("empty {}", model.id_column),
            }),
            Some(id) if !seen.insert(id) => quarantined.push(QuarantinedRow {
                row: row + 1,
                id: Some(id.to_string()),
                reason: format!("repeated {} {id:?}", model.id_column),
            }),
            Some(_) => keep.push(row),
        }
    }
    drop(seen);
    let keep_rows = |cells: TextColumn| -> TextColumn {
        if keep.len() == cells.len() {
            return cells;
        }
        cells.select(&keep)
    };
    let table = InputTable {
        ids: keep
            .iter()
            .filter_map(|&r| ids.get(r).map(str::to_string))
            .collect(),
        columns: columns
            .into_iter()
            .map(|(name, cells)| (name, keep_rows(cells)))
            .collect(),
    };
    tracing::debug!(
        parsed_ms,
        copied_ms,
        ms = started.elapsed().as_millis() as u64,
        "Read the input table"
    );
    Ok((table, quarantined))
}

fn write_frame(mut frame: DataFrame, path: &Path) -> anyhow::Result<()> {
    let tmp = crate::snapshot::atomic::temp_path(path);
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "csv" => CsvWriter::new(file)
            .finish(&mut frame)
            .with_context(|| format!("writing {}", path.display()))?,
        "parquet" => {
            // Snappy: these are working files read back at once, and on a million rows zstd's
            // compression was most of the write's time for a few megabytes saved.
            ParquetWriter::new(file)
                .with_compression(ParquetCompression::Snappy)
                .finish(&mut frame)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        other => bail!(
            "{}: unsupported output type {other:?}; use .csv or .parquet",
            path.display()
        ),
    }
    crate::snapshot::atomic::commit(&tmp, path)
        .with_context(|| format!("renaming into {}", path.display()))
}

/// Writes `id, cluster_id, match_probability`.
pub fn write_assignments(result: &DedupeResult, path: &Path) -> anyhow::Result<()> {
    let a = &result.assignments;
    let frame = df!(
        "id" => a.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
        "cluster_id" => a.iter().map(|x| x.cluster_id.as_str()).collect::<Vec<_>>(),
        "match_probability" => a.iter().map(|x| x.match_probability).collect::<Vec<_>>(),
    )?;
    write_frame(frame, path)
}

/// Writes the scored pairs: ids, weight, probability, accepted, and each field's level and weight.
pub fn write_pairs(result: &DedupeResult, threshold: f64, path: &Path) -> anyhow::Result<()> {
    let pairs = &result.pairs;
    let id = |r: u32| result.ids[r as usize].as_str();
    let scorer = super::score::Scorer::new(&result.table, &result.parameters);
    let weights: Vec<Vec<f64>> = pairs.iter().map(|p| scorer.field_weights(p)).collect();
    let mut columns: Vec<Column> = vec![
        Column::new(
            "id_l".into(),
            pairs.iter().map(|p| id(p.left)).collect::<Vec<_>>(),
        ),
        Column::new(
            "id_r".into(),
            pairs.iter().map(|p| id(p.right)).collect::<Vec<_>>(),
        ),
        Column::new(
            "match_weight".into(),
            pairs.iter().map(|p| p.weight).collect::<Vec<_>>(),
        ),
        Column::new(
            "match_probability".into(),
            pairs.iter().map(|p| p.probability).collect::<Vec<_>>(),
        ),
        // The part of the weight no field explains, and the blocking rule it comes from (the
        // first rule that brought the pair): a pair that shares a phone starts from a
        // different prior than namesakes in one postcode.
        Column::new(
            "prior_weight".into(),
            pairs
                .iter()
                .map(|p| scorer.prior_weight(p))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "blocking_rule".into(),
            pairs
                .iter()
                .map(|p| {
                    p.rule
                        .and_then(|r| result.metrics.pairs_per_rule.get(r))
                        .map(|(name, _)| name.as_str())
                })
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "accepted".into(),
            pairs
                .iter()
                .map(|p| p.probability >= threshold)
                .collect::<Vec<_>>(),
        ),
    ];
    for (f, field) in result.table.fields.iter().enumerate() {
        let labels = field.kind.levels();
        columns.push(Column::new(
            format!("{}_level", field.name).into(),
            pairs
                .iter()
                .map(|p| match p.levels[f] {
                    super::score::NULL_LEVEL => "null",
                    l => labels[l as usize],
                })
                .collect::<Vec<_>>(),
        ));
        columns.push(Column::new(
            format!("{}_weight", field.name).into(),
            weights.iter().map(|w| w[f]).collect::<Vec<_>>(),
        ));
    }
    let frame = DataFrame::new_infer_height(columns)?;
    write_frame(frame, path)
}

/// Writes quarantined rows next to `out`: `<out stem>.quarantine.csv`.
pub fn write_quarantine(
    rows: &[QuarantinedRow],
    out: &Path,
    source: &Path,
) -> anyhow::Result<Option<PathBuf>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("output");
    let path = out.with_file_name(format!("{stem}.quarantine.csv"));
    let frame = df!(
        "source" => rows.iter().map(|_| source.display().to_string()).collect::<Vec<_>>(),
        "row" => rows.iter().map(|r| r.row as u64).collect::<Vec<_>>(),
        "id" => rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        "reason" => rows.iter().map(|r| r.reason.clone()).collect::<Vec<_>>(),
    )?;
    write_frame(frame, &path)?;
    Ok(Some(path))
}
