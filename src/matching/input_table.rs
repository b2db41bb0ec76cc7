//! The table the deduper reads: ids and the raw cells of every column a model may use, shared by
//! preparation, the deduper and the cluster guard.

use super::encode::TextColumn;
use crate::normalize;
use std::collections::HashMap;

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
        let mut order: Vec<usize> = (0..self.ids.len()).collect();
        order.sort_by(|&a, &b| self.ids[a].cmp(&self.ids[b]).then(a.cmp(&b)));
        Some(order)
    }

    /// The table with its rows in `order` (row `k` of the result is row `order[k]` of this one).
    pub fn permuted(&self, order: &[usize]) -> InputTable {
        InputTable {
            ids: order.iter().map(|&r| self.ids[r].clone()).collect(),
            columns: self
                .columns
                .iter()
                .map(|(name, cells)| (name.clone(), order.iter().map(|&r| cells.get(r)).collect()))
                .collect(),
        }
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
