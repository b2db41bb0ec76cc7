//! The order a block too large to compare in full is walked in (sorted neighbourhood).

use crate::matching::encode::NULL_CODE;
use crate::matching::score::PreparedTable;
use rayon::prelude::*;
use std::cmp::Ordering;

/// Sorted-neighbourhood order: rows by their prepared field values in model order, so records that
/// differ only in a later field (or by a typo late in a name) sit next to each other. Each field's
/// distinct values are ranked once, so sorting a block compares integers. Fields whose values are
/// nearly all distinct (emails, phones) are left out of the order: records sharing one already
/// meet through that field's own blocking rule, and ranking a million of them costs more than the
/// blocks it would sort.
pub(super) struct NeighbourhoodOrder {
    /// `ranks[field][code]`; empty for a field left out.
    ranks: Vec<Vec<u32>>,
    /// The ordered fields whose ranks fit one 128-bit sort key, with the bits each takes, most
    /// significant first.
    pub(super) packed: Vec<(usize, u32)>,
    /// Whether every ordered field is in the key (otherwise ties are broken by [`Self::compare`]).
    pub(super) complete: bool,
    /// Every row's packed key, computed once in row order: a row sits in the windowed blocks of
    /// several rules, and reading its ranks while sorting a block is a cache miss per field on a
    /// large table.
    keys: Vec<u128>,
}

/// Fields with more distinct values than this share of the rows are left out of the order.
const ORDER_MAX_DISTINCT_SHARE: f64 = 0.25;

impl NeighbourhoodOrder {
    pub(super) fn new(table: &PreparedTable) -> Self {
        let limit = (table.rows as f64 * ORDER_MAX_DISTINCT_SHARE) as usize;
        let ranks = table
            .values
            .par_iter()
            .map(|values| {
                if values.len() > limit.max(1_000) {
                    return Vec::new();
                }
                let mut by_key: Vec<u32> = (0..values.len() as u32).collect();
                by_key.par_sort_unstable_by(|&a, &b| {
                    values.get(a as usize).cmp(&values.get(b as usize))
                });
                let mut rank = vec![0u32; values.len()];
                for (r, &code) in by_key.iter().enumerate() {
                    rank[code as usize] = r as u32;
                }
                rank
            })
            .collect::<Vec<Vec<u32>>>();
        // A field of n distinct values takes the bits of n + 1 ranks (the last for an empty cell).
        let mut packed = Vec::new();
        let mut used = 0;
        let mut complete = true;
        for (f, r) in ranks.iter().enumerate().filter(|(_, r)| !r.is_empty()) {
            let bits = u32::BITS - (r.len() as u32).leading_zeros();
            if !complete || used + bits > u128::BITS {
                complete = false;
                continue;
            }
            packed.push((f, bits));
            used += bits;
        }
        let mut order = NeighbourhoodOrder {
            ranks,
            packed,
            complete,
            keys: Vec::new(),
        };
        order.keys = (0..table.rows as u32)
            .into_par_iter()
            .map(|row| order.key(table, row))
            .collect();
        order
    }

    /// A row's ranks in the packed fields, as one integer that sorts as they do.
    fn key(&self, table: &PreparedTable, row: u32) -> u128 {
        self.packed.iter().fold(0u128, |key, &(f, bits)| {
            let rank = match table.code(f, row) {
                NULL_CODE => self.ranks[f].len() as u32,
                c => self.ranks[f][c as usize],
            };
            (key << bits) | u128::from(rank)
        })
    }

    /// Sorts a block's rows into [`Self::compare`]'s order, by the rows' packed keys rather than
    /// their ranks in each comparison: a block of a common name holds thousands of rows whose
    /// codes sit all over a table too large for the cache.
    pub(super) fn sort(&self, table: &PreparedTable, rows: &mut [u32]) {
        let mut keyed: Vec<(u128, u32)> =
            rows.iter().map(|&r| (self.keys[r as usize], r)).collect();
        if self.complete {
            // Equal keys hold equal ranks in every field, and compare() then orders by row.
            keyed.sort_unstable();
        } else {
            keyed
                .sort_unstable_by(|x, y| x.0.cmp(&y.0).then_with(|| self.compare(table, x.1, y.1)));
        }
        for (slot, (_, row)) in rows.iter_mut().zip(keyed) {
            *slot = row;
        }
    }

    pub(super) fn compare(&self, table: &PreparedTable, a: u32, b: u32) -> Ordering {
        let rank = |f: usize, row: u32| match table.code(f, row) {
            NULL_CODE => u32::MAX,
            c => self.ranks[f][c as usize],
        };
        (0..table.fields.len())
            .filter(|&f| !self.ranks[f].is_empty())
            .map(|f| rank(f, a).cmp(&rank(f, b)))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.cmp(&b))
    }
}
