//! Durable part files and their compaction into one snapshot file.
//!
//! Extract writes each chunk of pages as a complete, fsynced Parquet part before it records a
//! checkpoint, so a crash loses at most the chunk in flight and a resumed run continues from the
//! last committed part. When an entity is complete its parts (and, for an incremental run, the
//! previous snapshot) are streamed into one file, keeping only the latest row of each id; memory
//! holds one batch plus the ids that can repeat, not the table.

use super::atomic;
use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Rows per Parquet row group in snapshot files.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// Errors writing or compacting snapshot files; each names the file.
#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: {source}")]
    Arrow {
        path: PathBuf,
        source: arrow::error::ArrowError,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn pq_err(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> SnapshotError + '_ {
    move |source| SnapshotError::Parquet {
        path: path.to_path_buf(),
        source,
    }
}

fn arrow_err(path: &Path) -> impl FnOnce(arrow::error::ArrowError) -> SnapshotError + '_ {
    move |source| SnapshotError::Arrow {
        path: path.to_path_buf(),
        source,
    }
}

/// Writer settings shared by every snapshot file: zstd, bounded row groups.
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("3 is a valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

/// Streams record batches into a Parquet file that appears under its final name only when closed.
pub struct SnapshotWriter {
    path: PathBuf,
    tmp: PathBuf,
    writer: ArrowWriter<File>,
    rows: u64,
}

impl SnapshotWriter {
    /// Starts a file of `schema` at `path` (written to a temporary sibling until [`Self::finish`]).
    pub fn create(path: &Path, schema: &SchemaRef) -> Result<Self, SnapshotError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let tmp = atomic::temp_path(path);
        let file = File::create(&tmp).map_err(io_err(&tmp))?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(writer_properties()))
            .map_err(pq_err(path))?;
        Ok(SnapshotWriter {
            path: path.to_path_buf(),
            tmp,
            writer,
            rows: 0,
        })
    }

    /// Appends a batch (flushed as row groups fill).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), SnapshotError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.rows += batch.num_rows() as u64;
        self.writer.write(batch).map_err(pq_err(&self.path))
    }

    /// Closes, fsyncs and renames the file into place; returns its row count.
    pub fn finish(self) -> Result<u64, SnapshotError> {
        let file = self.writer.into_inner().map_err(pq_err(&self.path))?;
        file.sync_all().map_err(io_err(&self.tmp))?;
        drop(file);
        atomic::commit(&self.tmp, &self.path).map_err(io_err(&self.path))?;
        Ok(self.rows)
    }
}

/// Writes one durable part file.
pub fn write_part(path: &Path, batch: &RecordBatch) -> Result<u64, SnapshotError> {
    let mut writer = SnapshotWriter::create(path, &batch.schema())?;
    writer.write(batch)?;
    writer.finish()
}

/// Opens a Parquet file for batch-by-batch reading.
pub fn read_batches(
    path: &Path,
) -> Result<impl Iterator<Item = Result<RecordBatch, SnapshotError>> + use<>, SnapshotError> {
    let file = File::open(path).map_err(io_err(path))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(pq_err(path))?
        .with_batch_size(8192)
        .build()
        .map_err(pq_err(path))?;
    let owned = path.to_path_buf();
    Ok(reader.map(move |r| r.map_err(arrow_err(&owned))))
}

/// The `id` column of a batch as strings (ids are Utf8 or UInt64 depending on the entity).
fn id_strings(batch: &RecordBatch, path: &Path) -> Result<Vec<String>, SnapshotError> {
    let column = batch
        .column_by_name("id")
        .ok_or_else(|| SnapshotError::Invalid {
            path: path.to_path_buf(),
            message: "no `id` column".into(),
        })?;
    let as_text = cast(column, &DataType::Utf8).map_err(arrow_err(path))?;
    let strings = as_text.as_string::<i32>();
    Ok((0..strings.len())
        .map(|i| strings.value(i).to_string())
        .collect())
}

/// What a compaction wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactStats {
    /// Rows in the finished file.
    pub rows: u64,
    /// Rows of the parts (the delta) that survived de-duplication.
    pub delta_rows: u64,
    /// Rows carried over from the previous snapshot.
    pub carried_rows: u64,
}

/// Streams `previous` (minus rows whose id reappears in the parts) and then the parts (keeping only
/// the last row of each id) into `out`.
///
/// `may_repeat` bounds memory on a full read: only those ids can occur twice in the parts (contacts
/// changed while the read ran). With a `previous` snapshot every part id is tracked, which is the
/// size of the change set, not of the table. Rows whose id is in `deleted` (records known to be
/// gone, which an incremental read cannot see) are left out of both.
pub fn compact(
    schema: &SchemaRef,
    parts: &[PathBuf],
    previous: Option<&Path>,
    may_repeat: &HashSet<String>,
    deleted: &HashSet<String>,
    out: &Path,
) -> Result<CompactStats, SnapshotError> {
    if schema.field_with_name("id").is_err() {
        // A table without ids (the profile) is a snapshot of now: the parts replace it whole.
        let mut writer = SnapshotWriter::create(out, schema)?;
        for part in parts {
            for batch in read_batches(part)? {
                writer.write(&conform(batch?, schema, part)?)?;
            }
        }
        let rows = writer.finish()?;
        return Ok(CompactStats {
            rows,
            delta_rows: rows,
            carried_rows: 0,
        });
    }
    // Pass 1: last position of each tracked id.
    let mut last_seen: HashMap<String, (usize, usize)> = HashMap::new();
    for (part_index, part) in parts.iter().enumerate() {
        let mut offset = 0usize;
        for batch in read_batches(part)? {
            let batch = batch?;
            for (i, id) in id_strings(&batch, part)?.into_iter().enumerate() {
                if previous.is_some() || may_repeat.contains(&id) {
                    last_seen.insert(id, (part_index, offset + i));
                }
            }
            offset += batch.num_rows();
        }
    }

    let mut writer = SnapshotWriter::create(out, schema)?;
    let mut carried_rows = 0u64;
    if let Some(prev) = previous {
        for batch in read_batches(prev)? {
            let batch = batch?;
            let ids = id_strings(&batch, prev)?;
            let keep: BooleanArray = ids
                .iter()
                .map(|id| Some(!last_seen.contains_key(id) && !deleted.contains(id)))
                .collect();
            let kept = filter_record_batch(&batch, &keep).map_err(arrow_err(prev))?;
            carried_rows += kept.num_rows() as u64;
            writer.write(&conform(kept, schema, prev)?)?;
        }
    }
    let mut delta_rows = 0u64;
    for (part_index, part) in parts.iter().enumerate() {
        let mut offset = 0usize;
        for batch in read_batches(part)? {
            let batch = batch?;
            let ids = id_strings(&batch, part)?;
            let keep: BooleanArray = ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    Some(
                        !deleted.contains(id)
                            && match last_seen.get(id) {
                                Some(&(p, row)) => p == part_index && row == offset + i,
                                None => true,
                            },
                    )
                })
                .collect();
            offset += batch.num_rows();
            let kept = filter_record_batch(&batch, &keep).map_err(arrow_err(part))?;
            delta_rows += kept.num_rows() as u64;
            writer.write(&conform(kept, schema, part)?)?;
        }
    }
    let rows = writer.finish()?;
    Ok(CompactStats {
        rows,
        delta_rows,
        carried_rows,
    })
}

/// Re-labels a batch read back from Parquet with the declared schema (metadata may differ), and
/// fails clearly when a file does not hold the declared columns.
fn conform(
    batch: RecordBatch,
    schema: &SchemaRef,
    path: &Path,
) -> Result<RecordBatch, SnapshotError> {
    if batch.schema().fields().len() != schema.fields().len() {
        return Err(SnapshotError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "has {} columns, schema declares {}: written by another schema version?",
                batch.schema().fields().len(),
                schema.fields().len()
            ),
        });
    }
    RecordBatch::try_new(schema.clone(), batch.columns().to_vec()).map_err(arrow_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::schema::{BlockedNumberRow, batch_from_rows, blocked_numbers_schema};

    fn rows(pairs: &[(u64, &str)]) -> Vec<BlockedNumberRow> {
        pairs
            .iter()
            .map(|(id, phone)| BlockedNumberRow {
                id: *id,
                phone_number: phone.to_string(),
                extracted_at: 0,
            })
            .collect()
    }

    fn read_all(path: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for batch in read_batches(path).expect("open") {
            let batch = batch.expect("batch");
            let ids = id_strings(&batch, path).expect("ids");
            let phones = batch
                .column_by_name("phone_number")
                .expect("col")
                .as_string::<i32>();
            for (i, id) in ids.into_iter().enumerate() {
                out.push((id, phones.value(i).to_string()));
            }
        }
        out
    }

    #[test]
    fn compaction_keeps_the_last_row_of_each_id_and_replaces_previous_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let schema = blocked_numbers_schema();
        let previous = dir.path().join("prev.parquet");
        write_part(
            &previous,
            &batch_from_rows(&schema, &rows(&[(1, "a"), (2, "b"), (3, "c")])).expect("batch"),
        )
        .expect("prev");
        let p1 = dir.path().join("p1.parquet");
        let p2 = dir.path().join("p2.parquet");
        write_part(
            &p1,
            &batch_from_rows(&schema, &rows(&[(2, "b1"), (4, "d")])).expect("b"),
        )
        .expect("p1");
        write_part(
            &p2,
            &batch_from_rows(&schema, &rows(&[(2, "b2")])).expect("b"),
        )
        .expect("p2");
        let out = dir.path().join("out.parquet");
        let stats = compact(
            &schema,
            &[p1.clone(), p2.clone()],
            Some(&previous),
            &HashSet::new(),
            &HashSet::new(),
            &out,
        )
        .expect("compact");
        assert_eq!(stats.rows, 4);
        assert_eq!(stats.carried_rows, 2);
        let mut got = read_all(&out);
        got.sort();
        assert_eq!(
            got,
            vec![
                ("1".into(), "a".into()),
                ("2".into(), "b2".into()),
                ("3".into(), "c".into()),
                ("4".into(), "d".into())
            ]
        );
    }

    #[test]
    fn a_full_read_deduplicates_only_ids_that_may_repeat() {
        let dir = tempfile::tempdir().expect("tempdir");
        let schema = blocked_numbers_schema();
        let p1 = dir.path().join("p1.parquet");
        write_part(
            &p1,
            &batch_from_rows(&schema, &rows(&[(1, "a"), (2, "b"), (2, "b-new")])).expect("b"),
        )
        .expect("p1");
        let out = dir.path().join("out.parquet");
        let may_repeat: HashSet<String> = ["2".to_string()].into();
        let stats =
            compact(&schema, &[p1], None, &may_repeat, &HashSet::new(), &out).expect("compact");
        assert_eq!(stats.rows, 2);
        assert!(read_all(&out).contains(&("2".into(), "b-new".into())));
    }
}
