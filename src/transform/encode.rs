//! Dictionary encoding: every column the model reads becomes a code per row and a list of its
//! distinct values. Contact tables repeat values heavily (a few thousand first names and cities
//! across a million rows), so each normaliser, phone parse and blocking key runs once per distinct
//! value, and "are these two values identical" is one integer comparison.

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::hash::Hash;

/// The code of an empty cell.
pub const NULL_CODE: u32 = u32::MAX;

/// One column, encoded.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    /// Code of each row's value (`NULL_CODE` for an empty cell).
    pub codes: Vec<u32>,
    /// A row holding each distinct value (its first), so the text is read from the input.
    pub first_row: Vec<u32>,
}

impl Dictionary {
    /// Encodes raw cells; blank cells are empty.
    pub fn of_cells(cells: &[Option<String>]) -> Self {
        // Sized for every cell distinct: growing a million-entry map rehashes it twenty times.
        let mut index: FxHashMap<&str, u32> =
            FxHashMap::with_capacity_and_hasher(cells.len(), Default::default());
        let mut first_row = Vec::new();
        let codes = cells
            .iter()
            .enumerate()
            .map(|(row, cell)| match cell.as_deref().map(str::trim) {
                Some(v) if !v.is_empty() => *index.entry(v).or_insert_with(|| {
                    first_row.push(row as u32);
                    (first_row.len() - 1) as u32
                }),
                _ => NULL_CODE,
            })
            .collect();
        Dictionary { codes, first_row }
    }

    /// Number of distinct values.
    pub fn len(&self) -> usize {
        self.first_row.len()
    }

    /// Whether the column holds no value at all.
    pub fn is_empty(&self) -> bool {
        self.first_row.is_empty()
    }

    /// The text of each distinct value.
    pub fn distinct<'a>(&self, cells: &'a [Option<String>]) -> Vec<&'a str> {
        self.first_row
            .iter()
            .map(|&r| cells[r as usize].as_deref().map_or("", str::trim))
            .collect()
    }

    /// Maps every distinct value through `f` (in parallel: this is where phone parsing and name
    /// folding happen), then re-encodes by the result, so values that map to the same thing share
    /// a code. Returns the new codes per row and the distinct results.
    pub fn map_distinct<T, F>(&self, cells: &[Option<String>], f: F) -> (Vec<u32>, Vec<T>)
    where
        T: Eq + Hash + Send + Sync,
        F: Fn(&str) -> Option<T> + Sync + Send,
    {
        remap(&self.codes, &self.distinct(cells), |v: &&str| f(v))
    }
}

/// Maps distinct values (`values[code]`) through `f` and re-encodes by the result, like
/// [`Dictionary::map_distinct`] for a column that is already encoded.
pub fn remap<S, T, F>(codes: &[u32], values: &[S], f: F) -> (Vec<u32>, Vec<T>)
where
    S: Sync,
    T: Eq + Hash + Send + Sync,
    F: Fn(&S) -> Option<T> + Sync + Send,
{
    let mut mapped: Vec<Option<T>> = values.par_iter().map(&f).collect();
    // The index holds references (a compact table even when each result is large), and the
    // distinct results are moved out of `mapped` afterwards: a million prepared emails or phones
    // are not cloned.
    let mut first: Vec<usize> = Vec::new();
    let recode: Vec<u32> = {
        let mut index: FxHashMap<&T, u32> =
            FxHashMap::with_capacity_and_hasher(mapped.len(), Default::default());
        mapped
            .iter()
            .enumerate()
            .map(|(position, m)| match m {
                Some(v) => *index.entry(v).or_insert_with(|| {
                    first.push(position);
                    (first.len() - 1) as u32
                }),
                None => NULL_CODE,
            })
            .collect()
    };
    let distinct: Vec<T> = first
        .iter()
        .filter_map(|&position| mapped[position].take())
        .collect();
    let codes = codes
        .iter()
        .map(|&c| {
            if c == NULL_CODE {
                NULL_CODE
            } else {
                recode[c as usize]
            }
        })
        .collect();
    (codes, distinct)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(values: &[&str]) -> Vec<Option<String>> {
        values
            .iter()
            .map(|v| (!v.is_empty()).then(|| v.to_string()))
            .collect()
    }

    #[test]
    fn equal_cells_share_a_code_and_blanks_are_null() {
        let c = cells(&["Ann", "Bob", " Ann ", "", "  "]);
        let d = Dictionary::of_cells(&c);
        assert_eq!(d.codes, vec![0, 1, 0, NULL_CODE, NULL_CODE]);
        assert_eq!(d.distinct(&c), vec!["Ann", "Bob"]);
    }

    #[test]
    fn mapping_merges_values_that_normalise_alike() {
        let c = cells(&["ANN", "ann", "Bob", "x"]);
        let d = Dictionary::of_cells(&c);
        let (codes, values) = d.map_distinct(&c, |v| (v.len() == 3).then(|| v.to_lowercase()));
        assert_eq!(codes, vec![0, 0, 1, NULL_CODE]);
        assert_eq!(values, vec!["ann".to_string(), "bob".to_string()]);
    }
}
