//! Blocking: records that agree on every key of a rule become candidate pairs; rules are unioned,
//! so a typo in one field does not hide a pair another rule finds.
//!
//! Cost stays close to linear in the rows. Keys are computed once per distinct value and hashed
//! to integers; polars' lazy engine groups rows by key. A block larger than `max_block_size` is
//! not dropped (that would hide every duplicate of a common name) but compared by sorted
//! neighbourhood: its rows are sorted by their field values and each is compared with the next
//! `window` rows. The union needs no set of pairs: a pair belongs to the first rule that generates
//! it, and later rules skip it by checking which of the earlier rules' blocks its rows sit in, so
//! pairs can be scored as they are generated and never all held in memory.

mod group;
mod keys;
mod window;

use group::{group_rows, windowed_rows};
use keys::{email_local, phone_last7};
pub use keys::{key_of, keyed_fields, settled_fields};

use super::encode::{Dictionary, NULL_CODE, prefetch_slice};
use super::model::{BlockingRule, FieldKind, MatchModel};
use super::score::PreparedTable;
use anyhow::Context;
use rayon::prelude::*;
use rlibphonenumber::enums::Region;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::time::Instant;
use window::NeighbourhoodOrder;

/// The key of a row without one under a rule (a key part's cell was empty).
const NO_KEY: u64 = 0;
/// The block of a row in none under a rule (no key, or a key no other row holds).
const NO_BLOCK: u32 = u32::MAX;
/// Position of a row in a block compared in full.
const FULL: u32 = u32::MAX;

/// A block of rows that agree on a rule's key: a run of [`Blocking::rows`].
#[derive(Debug, Clone, Copy)]
pub struct Block {
    pub rule: usize,
    /// Where its rows start in [`Blocking::rows`].
    start: usize,
    len: u32,
    pub windowed: bool,
}

impl Block {
    /// Rows in the block.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the block has no rows (never, for a block blocking made).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A row's block and windowed position under one rule. Two rows share a rule's key exactly when
/// they sit in one of its blocks, so the block's number stands for the key in half the bytes
/// (the slot table is rows × rules of these: 560 MB at 10 M rows and 7 rules).
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The block's number among its rule's blocks; `NO_BLOCK` when the row is in none.
    block: u32,
    /// Position in its windowed block (`FULL` in a block compared in full).
    position: u32,
}

/// The blocks of every rule, ready to be walked pair by pair.
#[derive(Debug)]
pub struct Blocking {
    names: Vec<String>,
    /// Row-major, `slots[row * rules + rule]`: the "did an earlier rule generate this pair"
    /// check reads each row's slots from one place.
    slots: Vec<Slot>,
    /// Every block's rows, block after block: one buffer instead of a vector per block (seven
    /// million of them at 10 M rows). Ascending within a block, or for a windowed block in
    /// sorted-neighbourhood order.
    rows: Vec<u32>,
    pub blocks: Vec<Block>,
    pub window: usize,
    /// Blocks compared by sorted neighbourhood: (rule, size, a member row).
    pub windowed: Vec<(String, usize, u32)>,
    /// Per rule that ran, per field: whether every pair the rule brings agrees on that field by
    /// construction (its key is the field's whole value: `postal_code`, `phone:phone`). Such an
    /// agreement is no evidence about those pairs; the rule's prior already holds it.
    settled: Vec<Vec<bool>>,
    /// Per rule that ran: how its blocks crowd (see [`Crowding`]).
    crowding: Vec<Crowding>,
    /// Per rule that ran, per field: whether the rule's key reads the field ([`keyed_fields`]).
    keyed: Vec<Vec<bool>>,
}

/// How many of a rule's pairs chance alone would make. A rule whose key has several parts (a
/// surname's sound, a first initial, a postcode) joins two different people whenever each part
/// happens to agree; people's names do not depend on their postcode, so the pairs that share the
/// whole key by chance are about the pairs of rows with a key, times the share of them that
/// agree on each part. What the rule's blocks hold beyond that is duplicates. That share falls as
/// a table grows and namesakes crowd each postcode, which a prior fitted to the pairs' own fields
/// cannot see: the fields of two namesakes look the same in a thousand rows as in ten million.
#[derive(Debug, Clone, Copy)]
pub struct Crowding {
    /// Pairs within the rule's blocks (all of them, windowed or not).
    pub block_pairs: f64,
    /// Pairs of different people expected to share the whole key by chance; None for a key of
    /// one part or an unordered one, which give no such estimate.
    pub chance_pairs: Option<f64>,
}

impl Blocking {
    /// Computes every rule's keys and groups rows into blocks. `column(name)` gives an input
    /// column's dictionary (None when the input lacks it: a rule that needs it is skipped). Phone and email
    /// keys reuse the prepared values of a phone or email field on the same column, so no number
    /// is parsed twice.
    pub fn build<'a>(
        model: &MatchModel,
        table: &PreparedTable,
        column: impl Fn(&str) -> Option<&'a Dictionary>,
        region: Region,
    ) -> anyhow::Result<Self> {
        let mut names = Vec::new();
        // Row-major slots, a column per rule that can run, written as each rule is grouped: a
        // rule's keys are freed before the next rule's are made, instead of every
        // rule's (840 MB at 10 M rows) waiting beside the slots to be copied into them.
        let runs = |rule: &BlockingRule| {
            rule.key_parts().all(|(field, transform)| {
                reusable_field(table, field, transform).is_some() || column(field).is_some()
            })
        };
        let planned = model.blocking.iter().filter(|r| runs(r)).count();
        let started = Instant::now();
        let mut slots: Vec<Slot> = super::encode::with_huge_pages(table.rows * planned);
        slots.par_extend((0..table.rows * planned).into_par_iter().map(|_| Slot {
            block: NO_BLOCK,
            position: FULL,
        }));
        let slotted_ms = started.elapsed().as_millis() as u64;
        let mut blocks = Vec::new();
        // Room for every row in a block of every rule: only what is written is touched, and a
        // buffer grown by doubling would copy itself into fresh pages (about 220 MB at 10 M).
        let mut rows = Vec::with_capacity(table.rows * planned);
        let mut windowed = Vec::new();
        let mut order: Option<NeighbourhoodOrder> = None;
        let mut settled = Vec::new();
        let mut keyed = Vec::new();
        let mut crowding = Vec::new();
        let mut earlier_on_names = false;
        for rule in &model.blocking {
            // A rule's pairs are those no earlier rule brought. The namesakes its key joins by
            // chance are among them only while the earlier rules key on identifiers (a phone, an
            // email), which namesakes seldom share; after a rule on names they are not, and
            // the estimate would say nothing about the rule's own pairs.
            // The estimate needs parts on names and parts on anything else, in a fixed order.
            let started = Instant::now();
            let is_name = parts_on_names(rule, table);
            let estimate_chance = !earlier_on_names
                && !rule.unordered
                && is_name.contains(&true)
                && is_name.contains(&false);
            let Some((keys, agreement)) = rule_keys(
                rule,
                table,
                &column,
                region,
                estimate_chance.then_some(is_name.as_slice()),
            ) else {
                tracing::warn!(rule = %rule.name, "Blocking rule skipped: the input lacks one of its columns");
                continue;
            };
            let keyed_ms = started.elapsed().as_millis() as u64;
            earlier_on_names |= is_name.contains(&true);
            settled.push(settled_fields(rule, table));
            keyed.push(keyed_fields(rule, table));
            let index = names.len();
            let first = rows.len();
            let rule_blocks: Vec<Block> = group_rows(&keys, &mut rows)
                .with_context(|| format!("grouping blocking rule {}", rule.name))?
                .into_iter()
                .map(|(start, len)| Block {
                    rule: index,
                    start,
                    len,
                    windowed: len as usize > model.max_block_size,
                })
                .collect();
            drop(keys);
            let grouped_ms = started.elapsed().as_millis() as u64;
            if rule_blocks.iter().any(|b| b.windowed) {
                let order = order.get_or_insert_with(|| NeighbourhoodOrder::new(table));
                windowed_rows(&mut rows[first..], first, &rule_blocks)
                    .into_par_iter()
                    .for_each(|rows| order.sort(table, rows));
            }
            // Each row's block (numbered within the rule) and windowed position, written into
            // the rule's column of the slots; a row in no block keeps the NO_BLOCK it started with.
            for (number, b) in rule_blocks.iter().enumerate() {
                let members = &rows[b.start..][..b.len()];
                for (p, &r) in members.iter().enumerate() {
                    slots[r as usize * planned + index] = Slot {
                        block: number as u32,
                        position: if b.windowed { p as u32 } else { FULL },
                    };
                }
                if b.windowed {
                    windowed.push((rule.name.clone(), b.len(), members[0]));
                }
            }
            let block_pairs = rule_blocks
                .iter()
                .map(|b| pairs_among(b.len() as f64))
                .sum();
            crowding.push(Crowding {
                block_pairs,
                chance_pairs: agreement.map(|a| a.chance_pairs(block_pairs)),
            });
            tracing::debug!(rule = %rule.name, keyed_ms, grouped_ms,
                ms = started.elapsed().as_millis() as u64, blocks = rule_blocks.len(), "Rule blocked");
            blocks.extend(rule_blocks);
            names.push(rule.name.clone());
        }
        let started = Instant::now();
        // Pairs read a row's slots `names.len()` apart: a rule counted as able to run must have.
        assert_eq!(names.len(), planned, "blocking rules that ran");
        // Largest blocks first: they are the longest tasks for the workers.
        blocks.par_sort_by_key(|b| std::cmp::Reverse(pairs_in(b, model.window)));
        tracing::debug!(
            slotted_ms,
            ms = started.elapsed().as_millis() as u64,
            "Row slots laid out and blocks ordered"
        );
        Ok(Blocking {
            names,
            slots,
            rows,
            blocks,
            window: model.window,
            windowed,
            settled,
            crowding,
            keyed,
        })
    }

    /// Per rule that ran: the pairs its blocks hold and those chance would make.
    pub fn crowding(&self) -> &[Crowding] {
        &self.crowding
    }

    /// Per rule that ran, per field: whether the rule's key makes its pairs agree on the field
    /// (see [`settled_fields`]).
    pub fn settled(&self) -> &[Vec<bool>] {
        &self.settled
    }

    /// Per rule that ran, per field: whether the rule's key reads it (see [`keyed_fields`]).
    pub fn keyed(&self) -> &[Vec<bool>] {
        &self.keyed
    }

    /// An upper bound on the pairs a block yields (its pairs, or its windowed neighbours).
    pub fn pairs_in(&self, block: &Block) -> usize {
        pairs_in(block, self.window)
    }

    /// Splits the blocks into consecutive runs holding about equal numbers of pairs, at least
    /// `runs` of them when there are that many blocks, for the workers to take one at a time.
    /// Blocks come largest first, so runs of an equal number of blocks would hand one worker the
    /// largest blocks of all and leave the others idle at the end.
    pub fn balanced_runs(&self, runs: usize) -> Vec<std::ops::Range<usize>> {
        let total: usize = self.blocks.iter().map(|b| self.pairs_in(b)).sum();
        let target = (total / runs.max(1)).max(1);
        let mut out = Vec::with_capacity(runs + 1);
        let (mut start, mut pairs) = (0, 0);
        for (i, block) in self.blocks.iter().enumerate() {
            pairs += self.pairs_in(block);
            if pairs >= target {
                out.push(start..i + 1);
                (start, pairs) = (i + 1, 0);
            }
        }
        if start < self.blocks.len() {
            out.push(start..self.blocks.len());
        }
        out
    }

    /// A block's rows: ascending, or for a windowed block in sorted-neighbourhood order.
    pub fn rows(&self, block: &Block) -> &[u32] {
        &self.rows[block.start..][..block.len()]
    }

    /// Names of the rules that ran, in order.
    pub fn rule_names(&self) -> &[String] {
        &self.names
    }

    /// Calls `visit(i, j)` with `i < j` for every pair of a block that no earlier rule generated,
    /// so across all blocks each candidate pair is visited exactly once. `table` must be the table
    /// the blocks were made from: the walk loads its rows' codes and email and phone parts ahead
    /// of `visit`.
    pub fn for_each_pair(
        &self,
        block: &Block,
        table: &PreparedTable,
        mut visit: impl FnMut(u32, u32),
    ) {
        self.for_each_pair_marked(block, table, |i, j, earlier| {
            if !earlier {
                visit(i, j)
            }
        })
    }

    /// Calls `visit(i, j, earlier)` with `i < j` for every pair of a block, `earlier` telling
    /// whether an earlier rule generated it too; `table` as for [`Self::for_each_pair`].
    pub fn for_each_pair_marked(
        &self,
        block: &Block,
        table: &PreparedTable,
        mut visit: impl FnMut(u32, u32, bool),
    ) {
        let rows = self.rows(block);
        let rules = self.names.len();
        debug_assert_eq!(table.rows * rules, self.slots.len(), "another table");
        let reach = if block.windowed {
            self.window
        } else {
            rows.len()
        };
        // A block's rows sit all over the table, so each row's slots, codes, and its phone's and
        // email's parts are cache misses; waited for one at a time inside the pair loop, they
        // were most of scoring's time. They are loaded ahead instead, the parts a step after the
        // codes they are found by: for a block compared in full, every row's before its first
        // pair; for a windowed one, a row's codes LOAD_AHEAD_ROWS rows before it enters the
        // window, and its parts half as far.
        let load_codes = |r: u32| {
            prefetch_slice(&self.slots[r as usize * rules..][..block.rule]);
            table.prefetch_codes(r);
        };
        let (codes_ahead, parts_ahead) = if block.windowed {
            (reach + LOAD_AHEAD_ROWS, reach + LOAD_AHEAD_ROWS / 2)
        } else {
            (rows.len(), rows.len())
        };
        rows.iter().take(codes_ahead).for_each(|&r| load_codes(r));
        rows.iter()
            .take(parts_ahead)
            .for_each(|&r| table.prefetch_parts(r));
        for (x, &a) in rows.iter().enumerate() {
            if block.windowed {
                if let Some(&r) = rows.get(x + codes_ahead) {
                    load_codes(r);
                }
                if let Some(&r) = rows.get(x + parts_ahead) {
                    table.prefetch_parts(r);
                }
            }
            for &b in rows.iter().skip(x + 1).take(reach) {
                let (i, j) = if a < b { (a, b) } else { (b, a) };
                let si = &self.slots[i as usize * rules..][..block.rule];
                let sj = &self.slots[j as usize * rules..][..block.rule];
                // An earlier rule generates the pair when both rows sit in one of its blocks
                // (and, in a windowed block, within the window).
                let earlier = si.iter().zip(sj).any(|(p, q)| {
                    p.block != NO_BLOCK
                        && p.block == q.block
                        && (p.position == FULL
                            || (p.position.abs_diff(q.position) as usize) <= self.window)
                });
                visit(i, j, earlier);
            }
        }
    }
}

/// How many rows before they enter a windowed block's window its rows' codes are loaded.
const LOAD_AHEAD_ROWS: usize = 8;

/// Pairs a block yields at most.
fn pairs_in(block: &Block, window: usize) -> usize {
    let n = block.len();
    if block.windowed {
        n * window.min(n)
    } else {
        n * (n - 1) / 2
    }
}

/// A 64-bit hash of a key's text, never `NO_KEY`.
fn hash_text(text: &str) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default()
        .hash_one(text)
        .max(1)
}

/// Mixes part hashes into one key (splitmix64 finaliser), never `NO_KEY`.
fn combine(parts: &[u64]) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for p in parts {
        h = super::encode::mix((h ^ *p).wrapping_add(0x9e37_79b9_7f4a_7c15));
    }
    h.max(1)
}

/// The key of every row under a rule, or None when the input lacks a column the rule needs; and,
/// given which of its parts are on names (`chance_parts`), the pair counts its chance pairs come
/// from ([`Crowding`]).
fn rule_keys<'a>(
    rule: &BlockingRule,
    table: &PreparedTable,
    column: &impl Fn(&str) -> Option<&'a Dictionary>,
    region: Region,
    chance_parts: Option<&[bool]>,
) -> Option<(Vec<u64>, Option<KeyAgreement>)> {
    // Each part as a hash per row (NO_KEY when the cell gives no key).
    let parts: Vec<Vec<u64>> = rule
        .key_parts()
        .map(|(field, transform)| part_hashes(field, transform, table, column, region))
        .collect::<Option<_>>()?;
    let keys = (0..table.rows)
        .into_par_iter()
        .map_init(
            // One scratch buffer per worker: a vector per row was a million allocations per
            // rule.
            || vec![0u64; parts.len()],
            |hashes, row| {
                for (slot, part) in hashes.iter_mut().zip(&parts) {
                    match part[row] {
                        NO_KEY => return NO_KEY,
                        h => *slot = h,
                    }
                }
                if rule.unordered {
                    hashes.sort_unstable();
                }
                combine(hashes)
            },
        )
        .collect::<Vec<u64>>();
    let agreement = chance_parts.map(|is_name| key_agreement(&keys, &parts, is_name));
    Some((keys, agreement))
}

/// Per key part of `rule`: whether it is on a name field. Parts on names go together (a surname
/// says something about the first name); parts on anything else (a postcode, a city) are what
/// names do not depend on.
fn parts_on_names(rule: &BlockingRule, table: &PreparedTable) -> Vec<bool> {
    rule.key_parts()
        .map(|(field, _)| {
            table.fields.iter().any(|f| {
                f.name == field && matches!(f.kind, FieldKind::GivenName | FieldKind::FamilyName)
            })
        })
        .collect()
}

/// Pairs among `n` rows.
fn pairs_among(n: f64) -> f64 {
    n * (n - 1.0) / 2.0
}

/// Pair counts behind a rule's chance pairs: all pairs of rows with the whole key, and those that
/// agree on its name parts and on its other parts.
#[derive(Debug, Clone, Copy)]
struct KeyAgreement {
    all: f64,
    names: f64,
    other: f64,
}

impl KeyAgreement {
    /// The pairs that share the whole key by chance, as if a person's name did not depend on
    /// where they live: all pairs × the share agreeing on the names × the share agreeing on the
    /// rest. A person's own records that share the key agree on every part too, and they are no
    /// chance agreement of a part: a table full of duplicates would otherwise look crowded. So the
    /// blocks' pairs beyond chance (`block_pairs` less the estimate) are taken out of both part
    /// counts, and the estimate is found again until it settles.
    fn chance_pairs(&self, block_pairs: f64) -> f64 {
        if self.all <= 0.0 {
            return 0.0;
        }
        let mut chance = self.names * self.other / self.all;
        for _ in 0..50 {
            let duplicates = (block_pairs - chance).max(0.0);
            let next =
                (self.names - duplicates).max(0.0) * (self.other - duplicates).max(0.0) / self.all;
            let settled = (next - chance).abs() < 1e-9 * chance.max(1.0);
            chance = next;
            if settled {
                break;
            }
        }
        chance
    }
}

/// Counts the pairs of rows with a whole key, and those agreeing on its name parts and on its
/// other parts (one sort per group of parts).
fn key_agreement(keys: &[u64], parts: &[Vec<u64>], is_name: &[bool]) -> KeyAgreement {
    let with_key: Vec<usize> = (0..keys.len()).filter(|r| keys[*r] != NO_KEY).collect();
    let agreeing = |names: bool| {
        let group: Vec<&Vec<u64>> = parts
            .iter()
            .zip(is_name)
            .filter(|(_, n)| **n == names)
            .map(|(p, _)| p)
            .collect();
        let mut values: Vec<u64> = with_key
            .iter()
            .map(|r| group.iter().fold(0, |h, p| combine(&[h, p[*r]])))
            .collect();
        values.par_sort_unstable();
        values
            .chunk_by(|a, b| a == b)
            .map(|run| pairs_among(run.len() as f64))
            .sum::<f64>()
    };
    KeyAgreement {
        all: pairs_among(with_key.len() as f64),
        names: agreeing(true),
        other: agreeing(false),
    }
}

/// The prepared phone or email field on `field` that already holds the parsed value a key part
/// with this transform is.
fn reusable_field(table: &PreparedTable, field: &str, transform: &str) -> Option<usize> {
    table.fields.iter().position(|f| {
        f.name == field
            && matches!(
                (f.kind, transform),
                (FieldKind::Phone, "phone" | "phone_last7")
                    | (FieldKind::Email, "email_key" | "email_local")
            )
    })
}

/// One key part's hash per row.
fn part_hashes<'a>(
    field: &str,
    transform: &str,
    table: &PreparedTable,
    column: &impl Fn(&str) -> Option<&'a Dictionary>,
    region: Region,
) -> Option<Vec<u64>> {
    let reusable = reusable_field(table, field, transform);
    let lookup = |per_code: &[u64], code: u32| {
        if code == NULL_CODE {
            NO_KEY
        } else {
            per_code[code as usize]
        }
    };
    if let Some(f) = reusable {
        let values = &table.values[f];
        let per_code: Vec<u64> = (0..values.len())
            .into_par_iter()
            .map(|c| {
                let value = values.get(c);
                let key = match transform {
                    "phone_last7" => value.and_then(phone_last7),
                    "email_local" => value.and_then(email_local),
                    _ => value,
                };
                key.map_or(NO_KEY, hash_text)
            })
            .collect();
        return Some(table.field_codes(f).map(|c| lookup(&per_code, c)).collect());
    }
    let dictionary = column(field)?;
    let per_code: Vec<u64> = dictionary
        .distinct()
        .par_iter()
        .map(|v| key_of(v, transform, region).map_or(NO_KEY, |k| hash_text(&k)))
        .collect();
    Some(
        dictionary
            .codes
            .iter()
            .map(|&c| lookup(&per_code, c))
            .collect(),
    )
}

#[cfg(test)]
mod tests;
