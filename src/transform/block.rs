//! Blocking: records that agree on every key of a rule become candidate pairs; rules are unioned,
//! so a typo in one field does not hide a pair another rule finds.
//!
//! Cost stays close to linear in the rows. Keys are computed once per distinct value and hashed
//! to integers; polars' lazy engine groups rows by key. A block larger than `max_block_size` is
//! not dropped (that would hide every duplicate of a common name) but compared by sorted
//! neighbourhood: its rows are sorted by their field values and each is compared with the next
//! `window` rows. The union needs no set of pairs: a pair belongs to the first rule that generates
//! it, and later rules skip it by checking the earlier rules' keys, so pairs can be scored as they
//! are generated and never all held in memory.

use super::compare::Prepared;
use super::encode::{Dictionary, NULL_CODE};
use super::model::{BlockingRule, FieldKind, MatchModel};
use super::normalize;
use super::score::PreparedTable;
use anyhow::Context;
use polars::prelude::{Column, DataFrame, IntoLazy, SortMultipleOptions};
use rayon::prelude::*;
use rlibphonenumber::enums::Region;
use std::cmp::Ordering;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::time::Instant;

/// The key of a row without one under a rule (a key part's cell was empty).
const NO_KEY: u64 = 0;
/// Position of a row in a block compared in full.
const FULL: u32 = u32::MAX;

/// The key of one cell for a blocking transform.
pub fn key_of(raw: &str, transform: &str, region: Region) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let key = match transform {
        "exact" => normalize::name(raw),
        "phonetic" => normalize::phonetic(&normalize::name(raw)),
        "initial" => normalize::name(raw).chars().next()?.to_string(),
        "prefix3" => normalize::name(raw)
            .chars()
            .filter(|c| *c != ' ')
            .take(3)
            .collect(),
        "email_key" => normalize::email(raw)?.match_key,
        "email_local" => email_local(&normalize::email(raw)?)?.to_string(),
        "phone" => normalize::phone(raw, region)?.as_str().to_string(),
        "phone_last7" => phone_last7(&normalize::phone(raw, region)?)?.to_string(),
        "year" => raw.chars().filter(char::is_ascii_digit).take(4).collect(),
        "digits" => raw.chars().filter(char::is_ascii_digit).collect(),
        _ => return None,
    };
    (!key.is_empty()).then_some(key)
}

/// Per field of `table`: whether every pair `rule` brings agrees on it, because one of the rule's
/// keys is the field's whole normalised value (`postal_code`, `city`, `last_name:exact`,
/// `phone:phone`, `email:email_key`). A phonetic code, an initial or a prefix leaves the field's
/// comparison open, and so does a rule whose key parts may come in either order.
///
/// Scoring such a pair counts the agreement once, in the rule's prior (the share of matches among
/// the rule's pairs, which falls as the table grows and namesakes crowd each postcode), not a
/// second time as the field's match weight: counted twice, ten namesakes in one postcode would
/// each look like a certain match, however many of them the table holds.
pub fn settled_fields(rule: &BlockingRule, table: &PreparedTable) -> Vec<bool> {
    let mut settled = vec![false; table.fields.len()];
    if rule.unordered {
        return settled;
    }
    for (field, transform) in rule.key_parts() {
        let Some(f) = table.fields.iter().position(|x| x.name == field) else {
            continue;
        };
        settled[f] |= match (table.fields[f].kind, transform) {
            (FieldKind::Phone, "phone") | (FieldKind::Email, "email_key") => true,
            (FieldKind::Phone | FieldKind::Email, _) => false,
            (_, "exact") => true,
            _ => false,
        };
    }
    settled
}

/// Per field of `table`: whether `rule`'s key reads a name in it (its whole value, a phonetic
/// code, an initial). With swappable names, a key on one name reads the other too, as either may
/// hold the value.
///
/// Among a rule's pairs such a name agrees (or nearly) for duplicates and for the namesakes the
/// key joins alike, and the larger the table, the more namesakes: estimation leaves the name out
/// of that rule's pairs, as Splink leaves a training rule's own columns out, so the rule's prior
/// is judged by what tells namesakes apart (phone, email, place). Counted in, a rule on names
/// read the namesakes crowding its blocks in a million contacts as duplicates (its prior went to
/// 0.9997), because under any u but the rule's own, a shared name looks like evidence.
/// Identifiers and places stay in: strangers share a phone or an inbox only in a household or a
/// team, however large the table, and a place's crowding is what [`Crowding`] counts. (Leaving
/// them out too cost FEBRL2 and 3 a pair of dates of birth each.)
pub fn keyed_fields(rule: &BlockingRule, table: &PreparedTable) -> Vec<bool> {
    let mut keyed = vec![false; table.fields.len()];
    for (field, _) in rule.key_parts() {
        if let Some(f) = table.fields.iter().position(|x| x.name == field) {
            if !matches!(
                table.fields[f].kind,
                FieldKind::GivenName | FieldKind::FamilyName
            ) {
                continue;
            }
            keyed[f] = true;
            if let Some((a, b)) = table.swap
                && (f == a || f == b)
            {
                keyed[a] = true;
                keyed[b] = true;
            }
        }
    }
    keyed
}

/// The local part of an address as a key: long enough to name someone (`jsmith`, not `jo`),
/// so a domain typo or a second provider (`karen.russell@yaho.com`) still meets its record.
fn email_local(email: &normalize::EmailKey) -> Option<&str> {
    (email.local().chars().count() >= 4).then_some(email.local())
}

/// The last seven digits of a phone as a key: a national form read in the wrong region, or a
/// country code one record lacks, still meets the number it is.
fn phone_last7(phone: &normalize::PhoneKey) -> Option<&str> {
    (phone.as_str().len() >= 7).then(|| phone.last7())
}

/// A block of rows that agree on a rule's key.
#[derive(Debug)]
pub struct Block {
    pub rule: usize,
    /// Rows, ascending; for a windowed block, in sorted-neighbourhood order.
    pub rows: Vec<u32>,
    pub windowed: bool,
}

/// A row's key and windowed position under one rule.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// `NO_KEY` when the row has none.
    key: u64,
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

/// A raw input column and its dictionary, for keys computed from cells.
pub struct RawColumn<'a> {
    pub cells: &'a super::encode::TextColumn,
    pub dictionary: &'a Dictionary,
}

impl Blocking {
    /// Computes every rule's keys and groups rows into blocks. `column(name)` gives an input
    /// column (None when the input lacks it: a rule that needs it is skipped). Phone and email
    /// keys reuse the prepared values of a phone or email field on the same column, so no number
    /// is parsed twice.
    pub fn build<'a>(
        model: &MatchModel,
        table: &PreparedTable,
        column: impl Fn(&str) -> Option<RawColumn<'a>>,
        region: Region,
    ) -> anyhow::Result<Self> {
        let mut names = Vec::new();
        let mut per_rule: Vec<(Vec<u64>, Vec<u32>)> = Vec::new();
        let mut blocks = Vec::new();
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
            let mut positions = vec![FULL; table.rows];
            let mut rule_blocks: Vec<Block> = group_rows(&keys)
                .with_context(|| format!("grouping blocking rule {}", rule.name))?
                .into_iter()
                .map(|rows| Block {
                    rule: index,
                    windowed: rows.len() > model.max_block_size,
                    rows,
                })
                .collect();
            let grouped_ms = started.elapsed().as_millis() as u64;
            if rule_blocks.iter().any(|b| b.windowed) {
                let order = order.get_or_insert_with(|| NeighbourhoodOrder::new(table));
                rule_blocks
                    .par_iter_mut()
                    .filter(|b| b.windowed)
                    .for_each(|b| order.sort(table, &mut b.rows));
            }
            for b in rule_blocks.iter().filter(|b| b.windowed) {
                for (p, &r) in b.rows.iter().enumerate() {
                    positions[r as usize] = p as u32;
                }
                windowed.push((rule.name.clone(), b.rows.len(), b.rows[0]));
            }
            let block_pairs = rule_blocks
                .iter()
                .map(|b| pairs_among(b.rows.len() as f64))
                .sum();
            crowding.push(Crowding {
                block_pairs,
                chance_pairs: agreement.map(|a| a.chance_pairs(block_pairs)),
            });
            tracing::debug!(rule = %rule.name, keyed_ms, grouped_ms,
                ms = started.elapsed().as_millis() as u64, blocks = rule_blocks.len(), "Rule blocked");
            blocks.extend(rule_blocks);
            names.push(rule.name.clone());
            per_rule.push((keys, positions));
        }
        let started = Instant::now();
        // Filled on both cores, straight into the vector: at 10 M rows it is 960 MB, and one
        // core writing it took two seconds.
        let width = per_rule.len();
        let mut slots = super::encode::with_huge_pages(table.rows * width);
        slots.par_extend((0..table.rows * width).into_par_iter().map(|i| {
            let (keys, positions) = &per_rule[i % width];
            Slot {
                key: keys[i / width],
                position: positions[i / width],
            }
        }));
        let slotted_ms = started.elapsed().as_millis() as u64;
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

    /// Names of the rules that ran, in order.
    pub fn rule_names(&self) -> &[String] {
        &self.names
    }

    /// Calls `visit(i, j)` with `i < j` for every pair of a block that no earlier rule generated,
    /// so across all blocks each candidate pair is visited exactly once.
    pub fn for_each_pair(&self, block: &Block, mut visit: impl FnMut(u32, u32)) {
        self.for_each_pair_marked(block, |i, j, earlier| {
            if !earlier {
                visit(i, j)
            }
        })
    }

    /// Calls `visit(i, j, earlier)` with `i < j` for every pair of a block, `earlier` telling
    /// whether an earlier rule generated it too.
    pub fn for_each_pair_marked(&self, block: &Block, mut visit: impl FnMut(u32, u32, bool)) {
        let rows = &block.rows;
        let rules = self.names.len();
        let reach = if block.windowed {
            self.window
        } else {
            rows.len()
        };
        for (x, &a) in rows.iter().enumerate() {
            for &b in rows.iter().skip(x + 1).take(reach) {
                let (i, j) = if a < b { (a, b) } else { (b, a) };
                let si = &self.slots[i as usize * rules..][..block.rule];
                let sj = &self.slots[j as usize * rules..][..block.rule];
                // An earlier rule generates the pair when both rows share its key (and, in a
                // windowed block, sit within the window).
                let earlier = si.iter().zip(sj).any(|(p, q)| {
                    p.key != NO_KEY
                        && p.key == q.key
                        && (p.position == FULL
                            || (p.position.abs_diff(q.position) as usize) <= self.window)
                });
                visit(i, j, earlier);
            }
        }
    }
}

/// Sorted-neighbourhood order: rows by their prepared field values in model order, so records that
/// differ only in a later field (or by a typo late in a name) sit next to each other. Each field's
/// distinct values are ranked once, so sorting a block compares integers. Fields whose values are
/// nearly all distinct (emails, phones) are left out of the order: records sharing one already
/// meet through that field's own blocking rule, and ranking a million of them costs more than the
/// blocks it would sort.
struct NeighbourhoodOrder {
    /// `ranks[field][code]`; empty for a field left out.
    ranks: Vec<Vec<u32>>,
    /// The ordered fields whose ranks fit one 128-bit sort key, with the bits each takes, most
    /// significant first.
    packed: Vec<(usize, u32)>,
    /// Whether every ordered field is in the key (otherwise ties are broken by [`Self::compare`]).
    complete: bool,
    /// Every row's packed key, computed once in row order: a row sits in the windowed blocks of
    /// several rules, and reading its ranks while sorting a block is a cache miss per field on a
    /// large table.
    keys: Vec<u128>,
}

/// Fields with more distinct values than this share of the rows are left out of the order.
const ORDER_MAX_DISTINCT_SHARE: f64 = 0.25;

impl NeighbourhoodOrder {
    fn new(table: &PreparedTable) -> Self {
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
                    values[a as usize].key().cmp(values[b as usize].key())
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
    fn sort(&self, table: &PreparedTable, rows: &mut [u32]) {
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

    fn compare(&self, table: &PreparedTable, a: u32, b: u32) -> Ordering {
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

/// Pairs a block yields at most.
fn pairs_in(block: &Block, window: usize) -> usize {
    let n = block.rows.len();
    if block.windowed {
        n * window.min(n)
    } else {
        n * (n - 1) / 2
    }
}

/// Groups rows by key with polars' lazy engine: rows without a key are left out, and so are keys
/// only one row holds. Each block's rows come back ascending, blocks ordered by their first row.
///
/// The rows are sorted by key (a stable sort, so rows stay ascending within a key) and the runs
/// of equal keys are the blocks. Most keys are held by one row: a `group_by` would build a list
/// for each of millions of groups only to drop all but a few, and took three times as long.
fn group_rows(keys: &[u64]) -> anyhow::Result<Vec<Vec<u32>>> {
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
    let rows = sorted.column("row")?.u32()?.rechunk();
    let (keys, rows) = (keys.cont_slice()?, rows.cont_slice()?);
    let mut blocks: Vec<Vec<u32>> = Vec::new();
    let mut start = 0;
    for run in keys.chunk_by(|a, b| a == b) {
        if run.len() >= 2 {
            blocks.push(rows[start..start + run.len()].to_vec());
        }
        start += run.len();
    }
    blocks.par_sort_unstable_by_key(|b| b[0]);
    Ok(blocks)
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
    column: &impl Fn(&str) -> Option<RawColumn<'a>>,
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

/// One key part's hash per row.
fn part_hashes<'a>(
    field: &str,
    transform: &str,
    table: &PreparedTable,
    column: &impl Fn(&str) -> Option<RawColumn<'a>>,
    region: Region,
) -> Option<Vec<u64>> {
    // A phone or email field on this column already holds the parsed value the key is.
    let reusable = table.fields.iter().position(|f| {
        f.name == field
            && matches!(
                (f.kind, transform),
                (FieldKind::Phone, "phone" | "phone_last7")
                    | (FieldKind::Email, "email_key" | "email_local")
            )
    });
    let lookup = |per_code: &[u64], code: u32| {
        if code == NULL_CODE {
            NO_KEY
        } else {
            per_code[code as usize]
        }
    };
    if let Some(f) = reusable {
        let per_code: Vec<u64> = table.values[f]
            .par_iter()
            .map(|v| {
                let key = match (transform, v) {
                    ("phone_last7", Prepared::Phone(p)) => phone_last7(p),
                    ("email_local", Prepared::Email(e)) => email_local(e),
                    _ => Some(v.key()),
                };
                key.map_or(NO_KEY, hash_text)
            })
            .collect();
        return Some(table.field_codes(f).map(|c| lookup(&per_code, c)).collect());
    }
    let raw = column(field)?;
    let per_code: Vec<u64> = raw
        .dictionary
        .distinct(raw.cells)
        .par_iter()
        .map(|v| key_of(v, transform, region).map_or(NO_KEY, |k| hash_text(&k)))
        .collect();
    Some(
        raw.dictionary
            .codes
            .iter()
            .map(|&c| lookup(&per_code, c))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::dedupe::{InputTable, block, prepare_table};

    fn model(unordered: bool) -> MatchModel {
        toml::from_str(&format!(
            r#"
id_column = "id"
threshold = 0.9
[[blocking]]
name = "names"
keys = ["first_name:phonetic", "last_name:phonetic"]
unordered = {unordered}
[[fields]]
name = "first_name"
kind = "given_name"
[[fields]]
name = "last_name"
kind = "family_name"
"#
        ))
        .expect("model")
    }

    /// An input table of the given columns, ids "0", "1", ...
    fn table_of(columns: &[(&str, &[&str])]) -> InputTable {
        let rows = columns.first().map_or(0, |(_, cells)| cells.len());
        InputTable {
            ids: (0..rows).map(|i| i.to_string()).collect(),
            columns: columns
                .iter()
                .map(|(name, cells)| (name.to_string(), cells.iter().map(|s| Some(*s)).collect()))
                .collect(),
        }
    }

    fn input(first: &[&str], last: &[&str]) -> InputTable {
        table_of(&[("first_name", first), ("last_name", last)])
    }

    fn blocking_of(model: &MatchModel, input: &InputTable) -> Blocking {
        let us = normalize::region("US");
        let (table, raw, _) = prepare_table(model, input, us);
        block(model, &table, input, &raw, us).expect("blocking")
    }

    fn pairs(model: &MatchModel, input: &InputTable) -> Vec<(u32, u32)> {
        let blocking = blocking_of(model, input);
        let mut out = Vec::new();
        for b in &blocking.blocks {
            blocking.for_each_pair(b, |i, j| out.push((i, j)));
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn unordered_keys_put_swapped_names_in_one_block() {
        let t = input(&["William", "Turner", "Ann"], &["Turner", "William", "Lee"]);
        assert_eq!(pairs(&model(true), &t), vec![(0, 1)]);
        assert!(pairs(&model(false), &t).is_empty());
    }

    #[test]
    fn a_pair_two_rules_find_is_generated_once() {
        let mut m = model(false);
        m.blocking.push(m.blocking[0].clone());
        m.blocking[1].name = "again".into();
        let t = input(&["Ann", "Ann", "Ann"], &["Lee", "Lee", "Lee"]);
        assert_eq!(pairs(&m, &t), vec![(0, 1), (0, 2), (1, 2)]);
    }

    #[test]
    fn last_seven_digits_and_local_parts_block_what_the_full_values_miss() {
        let m: MatchModel = toml::from_str(
            r#"
id_column = "id"
[[blocking]]
name = "last7"
keys = ["phone:phone_last7"]
[[blocking]]
name = "local"
keys = ["email:email_local"]
[[fields]]
name = "phone"
kind = "phone"
[[fields]]
name = "email"
kind = "email"
"#,
        )
        .expect("model");
        m.validate().expect("valid model");
        let t = table_of(&[
            // A UK mobile once national (read in the default region, unparsed) and once
            // international.
            ("phone", &["07898 108856", "+44 7898 108856", "", ""]),
            (
                "email",
                &["", "", "karen.russell@yahoo.com", "karen.russell@yaho.com"],
            ),
        ]);
        assert_eq!(pairs(&m, &t), vec![(0, 1), (2, 3)]);
    }

    #[test]
    fn duplicates_sharing_a_key_are_not_counted_as_chance_agreements_of_its_parts() {
        // 100 pairs agree on the names and 100 on the place among 10,000: one by chance, were
        // the 50 pairs in the blocks not mostly one person's records, which agree on both.
        let agreement = KeyAgreement {
            all: 10_000.0,
            names: 100.0,
            other: 100.0,
        };
        let chance = agreement.chance_pairs(50.0);
        // (100 - d)^2 / 10,000 with d = 50 - chance: about 0.2525.
        assert!((chance - 0.2525).abs() < 1e-3, "{chance}");
        // With no more block pairs than chance gives, nothing is taken out.
        assert_eq!(agreement.chance_pairs(0.5), 1.0);
    }

    #[test]
    fn chance_pairs_are_the_pairs_agreeing_on_names_times_the_share_agreeing_on_place() {
        let m: MatchModel = toml::from_str(
            r#"
id_column = "id"
[[blocking]]
name = "surname_city"
keys = ["last_name:exact", "city"]
[[blocking]]
name = "first_name"
keys = ["first_name:exact"]
[[blocking]]
name = "surname_city_again"
keys = ["last_name:exact", "city"]
[[fields]]
name = "first_name"
kind = "given_name"
[[fields]]
name = "last_name"
kind = "family_name"
[[fields]]
name = "city"
kind = "text"
"#,
        )
        .expect("model");
        let t = table_of(&[
            ("first_name", &["Ann", "Bo", "Cy", "Di", "Ed", "Flo"]),
            ("last_name", &["Li", "Li", "Li", "Li", "Ng", "Ng"]),
            ("city", &["Oslo", "Oslo", "Rome", "Rome", "Oslo", "Rome"]),
        ]);
        let blocking = blocking_of(&m, &t);
        let crowding = blocking.crowding();
        // 15 pairs of rows; 7 share a surname and 6 a city: 15 * 7/15 * 6/15 = 2.8 by chance,
        // against the 2 pairs (Li in Oslo, Li in Rome) the rule's blocks hold.
        let chance = crowding[0].chance_pairs.expect("names and place");
        assert!((chance - 2.8).abs() < 1e-9, "{chance}");
        assert_eq!(crowding[0].block_pairs, 2.0);
        // One part gives no estimate; after a rule on names the rule's own pairs no longer hold
        // its chance pairs, so there is none either.
        assert_eq!(crowding[1].chance_pairs, None);
        assert_eq!(crowding[2].chance_pairs, None);
        assert_eq!(crowding[2].block_pairs, 2.0);
    }

    #[test]
    fn a_rule_missing_a_column_is_skipped() {
        let mut m = model(false);
        m.blocking[0].keys = vec!["first_name:exact".into(), "postal_code".into()];
        let t = input(&["Ann", "Ann"], &["Lee", "Lee"]);
        assert!(pairs(&m, &t).is_empty());
    }

    #[test]
    fn an_oversized_block_is_compared_by_sorted_neighbourhood_not_dropped() {
        let mut m = model(false);
        m.blocking[0].keys = vec!["last_name:exact".into()];
        m.max_block_size = 3;
        m.window = 1;
        // Six Lees: the block is too large, so each row meets its neighbour in name order; the two
        // Anns and the two Bobs sit next to each other and meet.
        let t = input(
            &["Zed", "Ann", "Bob", "Ann", "Cat", "Bob"],
            &["Lee", "Lee", "Lee", "Lee", "Lee", "Lee"],
        );
        let got = pairs(&m, &t);
        assert_eq!(got.len(), 5, "n - 1 neighbours: {got:?}");
        assert!(got.contains(&(1, 3)), "the Anns: {got:?}");
        assert!(got.contains(&(2, 5)), "the Bobs: {got:?}");
    }

    #[test]
    fn a_block_sorted_by_packed_keys_is_in_the_order_of_its_field_values() {
        // Ties in the first name, empty cells (which sort last) and repeated rows of values.
        let first = ["Bob", "Ann", "", "Bob", "Ann", "Cat", "", "Ann"];
        let last = ["Lee", "Kim", "Lee", "", "Kim", "Abe", "Abe", "Lee"];
        let t = input(&first, &last);
        let us = normalize::region("US");
        let (table, _, _) = prepare_table(&model(false), &t, us);
        let mut order = NeighbourhoodOrder::new(&table);
        let expected = {
            let mut rows: Vec<u32> = (0..first.len() as u32).rev().collect();
            rows.sort_unstable_by(|&a, &b| order.compare(&table, a, b));
            rows
        };
        assert_eq!(
            expected
                .iter()
                .map(|&r| first[r as usize])
                .collect::<Vec<_>>(),
            vec!["Ann", "Ann", "Ann", "Bob", "Bob", "Cat", "", ""]
        );
        let mut rows: Vec<u32> = (0..first.len() as u32).rev().collect();
        order.sort(&table, &mut rows);
        assert_eq!(rows, expected, "every field in the key");
        // A key that holds only the first field leaves the rest to the comparison.
        order.packed.truncate(1);
        order.complete = false;
        let mut rows: Vec<u32> = (0..first.len() as u32).rev().collect();
        order.sort(&table, &mut rows);
        assert_eq!(rows, expected, "the first field in the key");
    }

    #[test]
    fn a_windowed_rule_does_not_hide_pairs_outside_its_window_from_later_rules() {
        let mut m = model(false);
        m.blocking[0].keys = vec!["first_name:initial".into()];
        m.max_block_size = 2;
        m.window = 1;
        let mut second = m.blocking[0].clone();
        second.name = "last".into();
        second.keys = vec!["last_name:exact".into()];
        m.blocking.push(second);
        // Under the initial rule the order is Abe, Amy, Ann: Ann (0) and Abe (1) are not
        // neighbours, so the last-name rule must still generate them.
        let t = input(&["Ann", "Abe", "Amy"], &["Lee", "Lee", "Kim"]);
        let got = pairs(&m, &t);
        assert_eq!(got, vec![(0, 1), (0, 2), (1, 2)]);
    }
}
