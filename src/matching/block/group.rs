//! Rows grouped into blocks by key, into one shared row buffer.

use super::{Block, NO_KEY};
use polars::prelude::{Column, DataFrame, IntoLazy, SortMultipleOptions};
use rayon::prelude::*;

/// Groups rows by key with polars' lazy engine: rows without a key are left out, and so are keys
/// only one row holds. Each block's rows are appended to `rows`, ascending; the blocks come back
/// as (start in `rows`, length), ordered by their first row.
///
/// The rows are sorted by key (a stable sort, so rows stay ascending within a key) and the runs
/// of equal keys are the blocks. Most keys are held by one row: a `group_by` would build a list
/// for each of millions of groups only to drop all but a few, and took three times as long.
pub(super) fn group_rows(keys: &[u64], rows: &mut Vec<u32>) -> anyhow::Result<Vec<(usize, u32)>> {
    let (key_column, row_column): (Vec<u64>, Vec<u32>) = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| **k != NO_KEY)
        .map(|(r, k)| (*k, r as u32))
        .unzip();
    let frame = DataFrame::new_infer_height(vec![
        Column::new("key".into(), key_column),
        Column::new("row".into(), row_column),
    ])?;
    let sorted = frame
        .lazy()
        .sort(
            ["key"],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()?;
    let keys = sorted.column("key")?.u64()?.rechunk();
    let sorted_rows = sorted.column("row")?.u32()?.rechunk();
    let (keys, sorted_rows) = (keys.cont_slice()?, sorted_rows.cont_slice()?);
    let mut blocks: Vec<(usize, u32)> = Vec::new();
    let mut start = 0;
    for run in keys.chunk_by(|a, b| a == b) {
        if run.len() >= 2 {
            blocks.push((rows.len(), run.len() as u32));
            rows.extend_from_slice(&sorted_rows[start..start + run.len()]);
        }
        start += run.len();
    }
    blocks.par_sort_unstable_by_key(|&(start, _)| rows[start]);
    Ok(blocks)
}

/// The rows of each windowed block in `blocks` as its own mutable slice of `rows`, a buffer whose
/// first element is at `offset` in [`Blocking::rows`], so the blocks can be sorted side by side.
pub(super) fn windowed_rows<'a>(
    mut rows: &'a mut [u32],
    offset: usize,
    blocks: &[Block],
) -> Vec<&'a mut [u32]> {
    let mut spans: Vec<(usize, usize)> = blocks
        .iter()
        .filter(|b| b.windowed)
        .map(|b| (b.start - offset, b.len()))
        .collect();
    spans.sort_unstable();
    let mut out = Vec::with_capacity(spans.len());
    let mut at = 0;
    for (start, len) in spans {
        let (_, rest) = std::mem::take(&mut rows).split_at_mut(start - at);
        let (block, rest) = rest.split_at_mut(len);
        out.push(block);
        rows = rest;
        at = start + len;
    }
    out
}
