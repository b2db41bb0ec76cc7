//! Preparing a table for matching: the columns the model reads dictionary-encoded, and each
//! field's distinct values prepared for comparison once (phones parsed once per number and
//! region they are read in).

use super::compare::prepare;
use super::encode::{Dictionary, NULL_CODE, TextColumn, number_by_first_occurrence, remap};
#[cfg(test)]
use super::input_table::InputTable;
use super::model::{FieldKind, MatchModel};
use super::score::PreparedTable;
use crate::normalize;
use rayon::prelude::*;
use rlibphonenumber::enums::Region;
use std::collections::HashMap;
use std::time::Instant;

/// [`encode_columns`] then [`prepare_fields`], for tests that keep their input table; a dedupe
/// drops the cells between the two.
#[cfg(test)]
pub fn prepare_table(
    model: &MatchModel,
    input: &InputTable,
    region: Region,
) -> (PreparedTable, HashMap<String, Dictionary>, u64) {
    prepare_fields(
        model,
        encode_columns(model, &input.columns),
        input.rows(),
        region,
    )
}

/// The dictionaries of the input columns the model reads: its fields, its blocking keys' columns,
/// the swappable names and the phone region column. They hold each distinct value, so the cells
/// can go once they are made.
pub fn encode_columns(
    model: &MatchModel,
    columns: &HashMap<String, TextColumn>,
) -> HashMap<String, Dictionary> {
    let mut wanted: Vec<&str> = model.fields.iter().map(|f| f.name.as_str()).collect();
    for rule in &model.blocking {
        wanted.extend(rule.key_parts().map(|(field, _)| field));
    }
    wanted.extend(model.swappable.iter().flatten().map(String::as_str));
    wanted.extend(model.phone_region_column.as_deref());
    wanted.sort_unstable();
    wanted.dedup();
    let started = Instant::now();
    let raw = wanted
        .par_iter()
        .filter_map(|name| {
            let cells = columns.get(*name)?;
            Some((name.to_string(), Dictionary::of_cells(cells)))
        })
        .collect();
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "Input columns encoded"
    );
    raw
}

/// Prepares each field's distinct values from the dictionaries [`encode_columns`] made of a table
/// of `rows` rows. Returns the prepared table, the dictionaries (by column), which blocking keys
/// and the generational-suffix check read, and how many rows have a country cell that names no
/// country.
pub fn prepare_fields(
    model: &MatchModel,
    raw: HashMap<String, Dictionary>,
    rows: usize,
    region: Region,
) -> (PreparedTable, HashMap<String, Dictionary>, u64) {
    let fields: Vec<_> = model
        .fields
        .iter()
        .filter(|f| {
            let present = raw.contains_key(&f.name);
            if !present {
                tracing::warn!(field = %f.name, "Model field absent from the input; not compared");
            }
            present
        })
        .cloned()
        .collect();
    let mut unknown_country_rows = 0;
    let row_regions = model.phone_region_column.as_deref().and_then(|column| {
        let Some((regions, unknown)) = row_regions(&raw, column, region) else {
            tracing::warn!(column, default_region = %region,
                "Phone region column absent from the input; national numbers read in the default region");
            return None;
        };
        unknown_country_rows = unknown as u64;
        Some(regions)
    });
    let (codes, values): (Vec<_>, Vec<_>) = fields
        .par_iter()
        .map(|f| {
            let started = Instant::now();
            let (codes, prepared) = if f.kind == FieldKind::Phone {
                // Parsing is the costly part: parse each number once, however it was written.
                let (canonical_codes, canonical) =
                    raw[&f.name].map_distinct(|cell| Some(normalize::phone_canonical(cell)));
                match &row_regions {
                    None => remap(&canonical_codes, &canonical, |c: &String| {
                        prepare(f.kind, c, region)
                    }),
                    Some(regions) => {
                        let (pair_codes, pairs) =
                            number_region_pairs(&canonical_codes, &canonical, regions, region);
                        remap(&pair_codes, &pairs, |(c, r): &(u32, Region)| {
                            prepare(f.kind, &canonical[*c as usize], *r)
                        })
                    }
                }
            } else {
                raw[&f.name].map_distinct(|cell| prepare(f.kind, cell, region))
            };
            // The table keeps each value's key, end to end (see `PreparedTable::values`).
            let keys: TextColumn = prepared.iter().map(|v| Some(v.key())).collect();
            drop(prepared);
            tracing::debug!(field = %f.name, ms = started.elapsed().as_millis() as u64,
                "Field prepared");
            (codes, keys)
        })
        .unzip();
    let started = Instant::now();
    let swap = model.swappable.as_ref().and_then(|[a, b]| {
        let ia = fields.iter().position(|f| &f.name == a)?;
        let ib = fields.iter().position(|f| &f.name == b)?;
        Some((ia, ib))
    });
    let table = PreparedTable::new(fields, codes, values, rows, swap);
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "Prepared table laid out"
    );
    (table, raw, unknown_country_rows)
}

/// The region each row's national phone numbers are read in: its country column's, or `default`
/// where that is empty or names no country, and how many rows name none. `None` when the input has
/// no such column.
fn row_regions(
    raw: &HashMap<String, Dictionary>,
    column: &str,
    default: Region,
) -> Option<(Vec<Region>, usize)> {
    let dictionary = raw.get(column)?;
    let distinct = dictionary.distinct();
    let per_value: Vec<Option<Region>> = distinct
        .iter()
        .map(|v| normalize::country_region(v))
        .collect();
    let mut unknown_rows = 0usize;
    let regions = dictionary
        .codes
        .iter()
        .map(|&c| match c {
            NULL_CODE => default,
            c => per_value[c as usize].unwrap_or_else(|| {
                unknown_rows += 1;
                default
            }),
        })
        .collect();
    // Said once, with a count and an example, so a column of unexpected spellings is noticed
    // instead of silently reading its phones in the wrong country.
    if unknown_rows > 0 {
        let example = distinct
            .iter()
            .zip(&per_value)
            .find_map(|(v, r)| r.is_none().then_some(*v))
            .unwrap_or_default();
        tracing::warn!(column, rows = unknown_rows, example, default_region = %default,
            "Country cells that name no country; their national phone numbers read in the default region");
    }
    Some((regions, unknown_rows))
}

/// Encodes each row's (number, region) so a number is parsed once per region it is read in. A
/// number written with its country code (`+44…`) reads the same anywhere, so only national forms
/// are keyed by the row's region.
fn number_region_pairs(
    number_codes: &[u32],
    numbers: &[String],
    regions: &[Region],
    default: Region,
) -> (Vec<u32>, Vec<(u32, Region)>) {
    // Whether each distinct number carries its country code, worked out once: read per row, the
    // numbers' strings sit all over the heap, and at 10 M rows each read was a cache miss.
    let international: Vec<bool> = numbers.iter().map(|n| n.starts_with('+')).collect();
    let pair_of = |row: usize| {
        let c = number_codes[row];
        // A number written with its country code reads the same in every region, so it is
        // keyed by the default one and parsed once.
        (c != NULL_CODE).then(|| {
            if international[c as usize] {
                (c, default)
            } else {
                (c, regions[row])
            }
        })
    };
    let (codes, first_rows) = number_by_first_occurrence(number_codes.len(), pair_of);
    let pairs = first_rows
        .iter()
        .filter_map(|&row| pair_of(row as usize))
        .collect();
    (codes, pairs)
}
