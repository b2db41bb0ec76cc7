//! The table the deduper reads: ids and the raw cells of every column a model may use. Preparation
//! encodes the cells; after that the deduper keeps only the ids.

use super::encode::{TextColumn, prefetch};
use crate::normalize;
use rayon::prelude::*;
use std::collections::HashMap;

/// How many rows ahead a permutation starts loading an id (each is a cache miss in a random
/// order).
const PERMUTE_AHEAD: usize = 16;

/// A table to deduplicate: ids and the raw cells of every column the model may use.
#[derive(Debug, Clone, Default)]
pub struct InputTable {
    pub ids: Vec<String>,
    /// Column name → cells (one per row).
    pub columns: HashMap<String, TextColumn>,
}

impl InputTable {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.ids.len()
    }

    /// Row indices sorted by id (ties, which a table should not have, by position): the order the
    /// matcher works in, so that its clusters are a function of the rows, not of the order an API
    /// page or an export delivered them in. `None` when the rows are in that order already.
    pub fn canonical_order(&self) -> Option<Vec<usize>> {
        if self.ids.windows(2).all(|w| w[0] <= w[1]) {
            return None;
        }
        // Sorted by each id's first eight bytes first: at ten million rows, following every
        // comparison to two strings elsewhere in memory made the sort take seconds. Big-endian
        // bytes, zero-padded, order as the strings do; equal prefixes compare the whole ids, and
        // the position breaks ties, so an unstable (and parallel) sort gives one order.
        let prefix = |id: &str| {
            let mut bytes = [0u8; 8];
            let n = id.len().min(8);
            bytes[..n].copy_from_slice(&id.as_bytes()[..n]);
            u64::from_be_bytes(bytes)
        };
        let mut keys: Vec<(u64, usize)> = self
            .ids
            .par_iter()
            .enumerate()
            .map(|(row, id)| (prefix(id), row))
            .collect();
        keys.par_sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| self.ids[a.1].cmp(&self.ids[b.1]))
                .then(a.1.cmp(&b.1))
        });
        Some(keys.into_iter().map(|(_, row)| row).collect())
    }

    /// The table with its rows in `order` (row `k` of the result is row `order[k]` of this one).
    /// Ids are moved, not copied, and columns are rebuilt side by side: at ten million rows a
    /// copy of every id and a row-at-a-time rebuild took longer than scoring.
    pub fn into_permuted(mut self, order: &[usize]) -> InputTable {
        let ids = (0..order.len())
            .map(|k| {
                if let Some(&ahead) = order.get(k + PERMUTE_AHEAD) {
                    prefetch(&self.ids[ahead]);
                }
                std::mem::take(&mut self.ids[order[k]])
            })
            .collect();
        let columns = self
            .columns
            .into_par_iter()
            .map(|(name, cells)| {
                let sorted = cells.select(order);
                (name, sorted)
            })
            .collect();
        InputTable { ids, columns }
    }

    /// Splits a whole name typed into the `first` column of a row whose `last` column is empty
    /// ("Patricia Horton" → "Patricia" / "Horton"), so the row blocks and compares like the same
    /// person entered properly. Returns how many rows were split.
    pub fn split_full_names(&mut self, first: &str, last: &str) -> usize {
        if first == last {
            return 0;
        }
        let Some(firsts) = self.columns.get(first) else {
            return 0;
        };
        let blank = TextColumn::blank(self.ids.len());
        let lasts = self.columns.get(last).unwrap_or(&blank);
        let splits: HashMap<usize, (String, String)> = (0..self.ids.len())
            .filter(|&row| lasts.get(row).is_none())
            .filter_map(|row| Some((row, normalize::split_full_name(firsts.get(row)?)?)))
            .collect();
        if splits.is_empty() {
            return 0;
        }
        let (mut new_firsts, mut new_lasts) = (TextColumn::default(), TextColumn::default());
        for row in 0..self.ids.len() {
            match splits.get(&row) {
                Some((given, family)) => {
                    new_firsts.push(Some(given));
                    new_lasts.push(Some(family));
                }
                None => {
                    new_firsts.push(firsts.get(row));
                    new_lasts.push(lasts.get(row));
                }
            }
        }
        self.columns.insert(first.to_string(), new_firsts);
        self.columns.insert(last.to_string(), new_lasts);
        splits.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(ids: &[&str]) -> InputTable {
        InputTable {
            ids: ids.iter().map(|s| s.to_string()).collect(),
            columns: HashMap::from([(
                "name".to_string(),
                ids.iter().map(|id| Some(format!("cell {id}"))).collect(),
            )]),
        }
    }

    /// The order is the ids' own, whatever their prefixes: ids sharing eight bytes, ids shorter
    /// than eight, one a prefix of another, and bytes past ASCII.
    #[test]
    fn rows_are_put_in_id_order_and_carry_their_cells() {
        let ids = [
            "contact-0010",
            "contact-0002",
            "b",
            "contact-",
            "contact",
            "ab",
            "ä-1",
            "a",
            "contact-0001",
            "contact-00010",
        ];
        let input = table(&ids);
        let order = input.canonical_order().expect("not in order");
        let mut expected: Vec<&str> = ids.to_vec();
        expected.sort();
        let sorted = input.into_permuted(&order);
        assert_eq!(sorted.ids, expected);
        for (row, id) in sorted.ids.iter().enumerate() {
            assert_eq!(
                sorted.columns["name"].get(row),
                Some(format!("cell {id}").as_str())
            );
        }
        assert_eq!(sorted.canonical_order(), None, "already in order");
    }
}
