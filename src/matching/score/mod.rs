//! Fellegi-Sunter scoring: the prepared table and its level cache, match weights and
//! probabilities from the estimated parameters (see `estimate`), term-frequency adjusted exact
//! matches, and the per-field explanation of every score.

use super::compare::{self, text_level};
use super::encode::{NULL_CODE, TextColumn, prefetch, prefetch_slice};
use super::model::{FieldKind, FieldModel};
pub use level_cache::LevelCache;
use level_cache::{CACHEABLE_CODES, PairCache};
use rayon::prelude::*;

mod level_cache;

/// A level code for "one side is empty": contributes no evidence.
pub const NULL_LEVEL: u8 = u8::MAX;

pub use super::model::MAX_FIELDS;

/// Levels of one pair, field by field (`NULL_LEVEL` past the table's fields).
pub type Levels = [u8; MAX_FIELDS];

/// Prepared values of every compared field, dictionary-encoded: a code per row and the key of each
/// distinct prepared value, so identical values are recognised without comparing text.
pub struct PreparedTable {
    pub fields: Vec<FieldModel>,
    /// Row-major codes, `codes[row * fields + field]`: index into `values[field]`, or `NULL_CODE`
    /// when empty. A pair's comparison reads two rows, each one cache line, not one line per
    /// field.
    codes: Vec<u32>,
    /// `values[field]`: each distinct prepared value's key ([`compare::Prepared::key`]) by code,
    /// end to end in one buffer. An email's address is not kept: distinct values of a field have
    /// distinct addresses, so two codes that differ are two addresses, and an email's or phone's
    /// other levels come from `parts`. Ten million emails as `Prepared` values were 1.2 GB.
    pub values: Vec<TextColumn>,
    pub rows: usize,
    /// Indexes of the two swappable fields, if any.
    pub swap: Option<(usize, usize)>,
    /// Per email or phone field, each value's [`compare::part_codes`]: pairs of those fields
    /// (every candidate pair compares them first) read a few megabytes of integers rather than
    /// each value's strings scattered over the heap.
    parts: Vec<Option<Vec<[u32; 2]>>>,
}

impl PreparedTable {
    /// A table from each field's codes (`codes_by_field[field][row]`) and distinct values.
    pub fn new(
        fields: Vec<FieldModel>,
        codes_by_field: Vec<Vec<u32>>,
        values: Vec<TextColumn>,
        rows: usize,
        swap: Option<(usize, usize)>,
    ) -> Self {
        let width = fields.len();
        let mut codes = super::encode::with_huge_pages(rows * width);
        codes.resize(rows * width, NULL_CODE);
        for (f, column) in codes_by_field.iter().enumerate() {
            for (row, &c) in column.iter().enumerate() {
                codes[row * width + f] = c;
            }
        }
        let parts = fields
            .par_iter()
            .zip(&values)
            .map(|(f, v)| compare::part_codes(f.kind, v))
            .collect();
        PreparedTable {
            fields,
            codes,
            values,
            rows,
            swap,
            parts,
        }
    }

    /// The number of the first of [`compare::part_codes`] of a value of an email or phone field
    /// (an email's match key, a phone's last seven digits); None for other fields.
    pub fn first_part(&self, field: usize, code: u32) -> Option<u32> {
        self.parts[field]
            .as_ref()
            .map(|parts| parts[code as usize][0])
    }

    /// The code of a field's value in a row (`NULL_CODE` when empty).
    #[inline]
    pub fn code(&self, field: usize, row: u32) -> u32 {
        self.codes[row as usize * self.fields.len() + field]
    }

    /// Starts loading a row's codes ([`prefetch_slice`]).
    #[inline]
    pub fn prefetch_codes(&self, row: u32) {
        let width = self.fields.len();
        prefetch_slice(&self.codes[row as usize * width..][..width]);
    }

    /// Starts loading the parts of a row's emails and phones, which every pair compares first.
    /// Reads the row's codes: best called a while after [`Self::prefetch_codes`].
    #[inline]
    pub fn prefetch_parts(&self, row: u32) {
        for (f, parts) in self.parts.iter().enumerate() {
            if let Some(parts) = parts
                && let Some(p) = parts.get(self.code(f, row) as usize)
            {
                prefetch(p);
            }
        }
    }

    /// The codes of one field, row by row.
    pub fn field_codes(&self, field: usize) -> impl Iterator<Item = u32> + '_ {
        self.codes
            .iter()
            .skip(field)
            .step_by(self.fields.len().max(1))
            .copied()
    }

    /// The key of a field's prepared value in a row ([`compare::Prepared::key`]).
    pub fn value(&self, field: usize, row: u32) -> Option<&str> {
        match self.code(field, row) {
            NULL_CODE => None,
            c => self.values[field].get(c as usize),
        }
    }

    /// Levels of a pair, field by field (swapped names count as a near match on both).
    pub fn levels(&self, i: u32, j: u32) -> Vec<u8> {
        let mut cache = LevelCache::new(self);
        let mut out = [NULL_LEVEL; MAX_FIELDS];
        self.levels_into(i, j, None, &mut cache, &mut out);
        out[..self.fields.len()].to_vec()
    }

    /// Level of one field of a pair.
    pub fn field_level(&self, f: usize, i: u32, j: u32, cache: &mut LevelCache) -> u8 {
        let (a, b) = (self.code(f, i), self.code(f, j));
        if a == NULL_CODE || b == NULL_CODE {
            return NULL_LEVEL;
        }
        if a == b {
            return 0;
        }
        let kind = self.fields[f].kind;
        if let Some(parts) = &self.parts[f] {
            return compare::level_of_parts(kind, parts[a as usize], parts[b as usize]);
        }
        let values = &self.values[f];
        let level = || {
            let text = |c: u32| values.get(c as usize).unwrap_or_default();
            text_level(kind, text(a), text(b))
        };
        match &mut cache.fields[f] {
            Some(pairs) => {
                let key = PairCache::key(a.min(b), a.max(b));
                if let Some(l) = pairs.get(key) {
                    return l;
                }
                let l = level();
                pairs.put(key, l);
                l
            }
            None => level(),
        }
    }

    /// Writes the levels of the fields `wanted` says (all when `None`; the others are
    /// `NULL_LEVEL`) into `out`. The swapped-names check runs when both name fields are computed.
    /// The cluster guard needs one or two fields for many pairs, so it does not pay for string
    /// comparisons it ignores.
    pub fn levels_into(
        &self,
        i: u32,
        j: u32,
        wanted: Option<&[bool]>,
        cache: &mut LevelCache,
        out: &mut Levels,
    ) {
        out.fill(NULL_LEVEL);
        for (f, slot) in out.iter_mut().enumerate().take(self.fields.len()) {
            if wanted.is_none_or(|w| w[f]) {
                *slot = self.field_level(f, i, j, cache);
            }
        }
        if self
            .swap
            .is_some_and(|(fi, li)| wanted.is_none_or(|w| w[fi] && w[li]))
        {
            self.apply_swap(i, j, cache, out);
        }
    }

    /// Swapped first and last names: when the names compare poorly straight but well crossed,
    /// both count as a near match.
    fn apply_swap(&self, i: u32, j: u32, cache: &mut LevelCache, out: &mut Levels) {
        let Some((fi, li)) = self.swap else {
            return;
        };
        if out[fi] == NULL_LEVEL || out[li] == NULL_LEVEL {
            return;
        }
        let straight = u16::from(out[fi]) + u16::from(out[li]);
        if straight <= 2 {
            return;
        }
        // Either record may be the swapped one, so each cross comparison accepts what a given
        // name (nicknames: "Turner, William" vs "Bill Turner") or a family name (one typo) would.
        // Both compare a first-name value with a last-name value, so one cache keyed by the two
        // codes serves both.
        let mut close = |first_row: u32, last_row: u32| {
            let (fc, lc) = (self.code(fi, first_row), self.code(li, last_row));
            let cacheable = (fc as usize) < CACHEABLE_CODES && (lc as usize) < CACHEABLE_CODES;
            let key = PairCache::key(fc, lc);
            if cacheable && let Some(c) = cache.swapped.get(key) {
                return c == 1;
            }
            let x = self.values[fi].get(fc as usize).unwrap_or_default();
            let y = self.values[li].get(lc as usize).unwrap_or_default();
            let c = text_level(FieldKind::GivenName, x, y) <= 2
                || text_level(FieldKind::FamilyName, x, y) <= 1;
            if cacheable {
                cache.swapped.put(key, u8::from(c));
            }
            c
        };
        if close(i, j) && close(j, i) {
            out[fi] = 1;
            out[li] = 1;
        }
    }
}

/// Estimated (or given) parameters.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Parameters {
    /// `m[field][level]`.
    pub m: Vec<Vec<f64>>,
    /// `u[field][level]`.
    pub u: Vec<Vec<f64>>,
    /// Share of candidate pairs that are matches.
    pub lambda: f64,
    /// Share of matches among the pairs each blocking rule adds (a pair that shares a phone is a
    /// match far more often than one that shares only a common name), on average over its blocks.
    pub lambda_per_rule: Vec<f64>,
    /// Per blocking rule, the log2 prior odds of a pair in a block of two; a pair in a block of
    /// `k` rows has `log2(k - 1)` bits less ([`block_prior`]).
    pub block_prior_per_rule: Vec<f64>,
    /// Per blocking rule whose prior comes from how its blocks crowd: m and u fitted on that
    /// rule's own pairs with the prior held, so they describe duplicates and namesakes among
    /// pairs that already share the key (a shared first name says less among pairs that share
    /// a surname and an initial than among all pairs). Other rules use `m` and `u`.
    pub per_rule: Vec<Option<RuleParameters>>,
    /// EM iterations run.
    pub iterations: usize,
    /// Per field with term-frequency adjustment: the weight an exact match on each value code
    /// adds or takes away, by how common the value is.
    #[serde(skip)]
    pub term_frequency: Vec<Option<Vec<f64>>>,
}

/// m and u fitted on one blocking rule's pairs, and the fields its key settles.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuleParameters {
    pub m: Vec<Vec<f64>>,
    pub u: Vec<Vec<f64>>,
    /// Per field: agreement the rule's key forces on its pairs
    /// ([`crate::matching::block::settled_fields`]). It adds no weight to those pairs: the
    /// rule's prior holds it.
    pub settled: Vec<bool>,
}

/// A scored pair. The per-field weights of its explanation are recomputed from its levels when
/// written ([`Scorer::field_weights`]), so a kept pair costs a few bytes per field.
#[derive(Debug, Clone)]
pub struct ScoredPair {
    pub left: u32,
    pub right: u32,
    /// The blocking rule that brought the pair (None: scored outside blocking).
    pub rule: Option<usize>,
    pub weight: f64,
    /// The part of `weight` no field explains: the prior of the pair's rule and block.
    pub prior: f64,
    pub probability: f64,
    pub levels: Box<[u8]>,
}

/// log2(m/u) per field and level under one set of m and u, and the most each field can add.
struct Weights {
    log_ratio: Vec<Vec<f64>>,
    /// The most each field can add (its best level, with the largest term-frequency bonus).
    max_weight: Vec<f64>,
    /// Fields whose agreement a rule's key forces: they add nothing (the rule's prior holds it).
    settled: Vec<bool>,
}

impl Weights {
    fn new(
        m: &[Vec<f64>],
        u: &[Vec<f64>],
        settled: Vec<bool>,
        term_frequency: &[Option<Vec<f64>>],
    ) -> Self {
        let log_ratio: Vec<Vec<f64>> = m
            .iter()
            .zip(u)
            .map(|(m, u)| m.iter().zip(u).map(|(m, u)| (m / u).log2()).collect())
            .collect();
        let max_weight = log_ratio
            .iter()
            .enumerate()
            .map(|(f, ratios)| {
                let bonus = term_frequency[f]
                    .as_ref()
                    .map_or(0.0, |adj| adj.iter().copied().fold(0.0, f64::max));
                if settled[f] {
                    return bonus;
                }
                ratios
                    .iter()
                    .enumerate()
                    .map(|(l, r)| if l == 0 { r + bonus } else { *r })
                    .fold(0.0, f64::max)
            })
            .collect();
        Weights {
            log_ratio,
            max_weight,
            settled,
        }
    }
}

/// Match weights from parameters, precomputed per field and level.
pub struct Scorer<'a> {
    table: &'a PreparedTable,
    params: &'a Parameters,
    /// The weights of the model's m and u.
    global: Weights,
    /// Per blocking rule with its own m and u, its weights.
    per_rule: Vec<Option<Weights>>,
    prior: f64,
    /// Per rule, the log2 prior odds of a pair in a block of two.
    prior_per_rule: Vec<f64>,
    /// Fields in the order a bounded score compares them: cheap comparisons first (codes,
    /// phones, emails), then names (cached), then free text (Jaro-Winkler on every new pair).
    order: Vec<usize>,
}

impl<'a> Scorer<'a> {
    pub fn new(table: &'a PreparedTable, params: &'a Parameters) -> Self {
        let fields = params.m.len();
        let tf = &params.term_frequency;
        let per_rule = params
            .per_rule
            .iter()
            .map(|own| {
                own.as_ref()
                    .map(|own| Weights::new(&own.m, &own.u, own.settled.clone(), tf))
            })
            .collect();
        Scorer {
            table,
            params,
            global: Weights::new(&params.m, &params.u, vec![false; fields], tf),
            per_rule,
            prior: log2_odds(params.lambda),
            prior_per_rule: params.block_prior_per_rule.clone(),
            order: comparison_order(table),
        }
    }

    /// The weights pairs of `rule` are scored with (the model's, outside blocking).
    fn weights(&self, rule: Option<usize>) -> &Weights {
        rule.and_then(|r| self.per_rule.get(r))
            .and_then(Option::as_ref)
            .unwrap_or(&self.global)
    }

    /// The weight one field's level adds (0 for an empty side), with the model's m and u.
    pub fn field_weight(&self, f: usize, level: u8, left: u32) -> f64 {
        self.field_weight_with(&self.global, f, level, left)
    }

    fn field_weight_with(&self, weights: &Weights, f: usize, level: u8, left: u32) -> f64 {
        if level == NULL_LEVEL {
            return 0.0;
        }
        // A field the rule's key settles adds no weight of its own (the rule's prior holds the
        // agreement), only how much rarer or commoner this value is than the key's values are
        // on average.
        let mut w = if weights.settled[f] {
            0.0
        } else {
            weights.log_ratio[f][level as usize]
        };
        if level == 0
            && let Some(adjustment) = &self.params.term_frequency[f]
        {
            let code = self.table.code(f, left);
            if code != NULL_CODE {
                w += adjustment[code as usize];
            }
        }
        w
    }

    /// Match weight of a pair from its levels, with the prior of all candidate pairs.
    pub fn weight(&self, left: u32, levels: &[u8]) -> f64 {
        self.prior + self.evidence(&self.global, left, levels)
    }

    /// Match weight of a pair the blocking rule `rule` added in a block of `block_rows` rows:
    /// that rule's prior there, and what the fields the rule's key leaves open say, with the
    /// rule's m and u where it has its own.
    pub fn weight_in_rule(&self, rule: usize, block_rows: usize, left: u32, levels: &[u8]) -> f64 {
        self.prior_of(rule, block_rows) + self.evidence(self.weights(Some(rule)), left, levels)
    }

    /// The prior weight of a pair `rule` brought from a block of `block_rows` rows.
    pub fn prior_of(&self, rule: usize, block_rows: usize) -> f64 {
        self.prior_per_rule
            .get(rule)
            .map_or(self.prior, |p| block_prior(*p, block_rows))
    }

    /// What the fields say, without the prior.
    fn evidence(&self, weights: &Weights, left: u32, levels: &[u8]) -> f64 {
        levels
            .iter()
            .take(self.table.fields.len())
            .enumerate()
            .map(|(f, &l)| self.field_weight_with(weights, f, l, left))
            .sum::<f64>()
    }

    /// The explanation: the weight each field added, as the pair was scored (nothing for a
    /// field the pair's blocking rule made agree: the rule's prior holds that).
    pub fn field_weights(&self, pair: &ScoredPair) -> Vec<f64> {
        let weights = self.weights(pair.rule);
        pair.levels
            .iter()
            .enumerate()
            .map(|(f, &l)| self.field_weight_with(weights, f, l, pair.left))
            .collect()
    }

    /// The prior weight of a scored pair, the part of its weight no field explains.
    pub fn prior_weight(&self, pair: &ScoredPair) -> f64 {
        pair.prior
    }

    /// The weight of a pair the blocking rule `rule` added, or None as soon as the fields left to
    /// compare cannot lift it to `floor`: most candidate pairs of a large table are namesakes
    /// that lose on phone and email, and need no Jaro-Winkler on their company names. A pair that
    /// can reach the floor is compared in full, so its levels and weight are exact.
    #[allow(clippy::too_many_arguments)]
    pub fn weight_at_least(
        &self,
        rule: usize,
        block_rows: usize,
        i: u32,
        j: u32,
        floor: f64,
        cache: &mut LevelCache,
        levels: &mut Levels,
    ) -> Option<f64> {
        levels.fill(NULL_LEVEL);
        let table = self.table;
        let weights = self.weights(Some(rule));
        let mut partial = self.prior_of(rule, block_rows);
        let weight_of = |f: usize, level: u8| self.field_weight_with(weights, f, level, i);
        let mut remaining: f64 = weights.max_weight.iter().sum();
        let mut name_pending = false;
        for &f in &self.order {
            levels[f] = table.field_level(f, i, j, cache);
            match table.swap {
                Some((first, last)) if f == first || f == last => {
                    // The two names are next to each other in the order; once both are compared
                    // the swap check may still raise them, so they count together.
                    if !name_pending {
                        name_pending = true;
                        continue;
                    }
                    table.apply_swap(i, j, cache, levels);
                    for g in [first, last] {
                        partial += weight_of(g, levels[g]);
                        remaining -= weights.max_weight[g];
                    }
                }
                _ => {
                    partial += weight_of(f, levels[f]);
                    remaining -= weights.max_weight[f];
                }
            }
            if partial + remaining < floor {
                return None;
            }
        }
        Some(partial)
    }

    /// Scores one pair.
    pub fn score(&self, i: u32, j: u32, cache: &mut LevelCache) -> ScoredPair {
        let mut levels = [NULL_LEVEL; MAX_FIELDS];
        self.table.levels_into(i, j, None, cache, &mut levels);
        let weight = self.weight(i, &levels);
        ScoredPair {
            left: i,
            right: j,
            rule: None,
            weight,
            prior: self.prior,
            probability: probability(weight),
            levels: levels[..self.table.fields.len()].into(),
        }
    }
}

/// Fields cheapest to compare first, the two swappable names next to each other.
fn comparison_order(table: &PreparedTable) -> Vec<usize> {
    let cost = |f: usize| match table.fields[f].kind {
        FieldKind::Exact
        | FieldKind::Phone
        | FieldKind::Email
        | FieldKind::Code
        | FieldKind::Date => 0,
        FieldKind::GivenName | FieldKind::FamilyName => 1,
        FieldKind::Text => 2,
    };
    let mut order: Vec<usize> = (0..table.fields.len()).collect();
    order.sort_by_key(|&f| {
        let swapped = table.swap.is_some_and(|(a, b)| f == a || f == b);
        // The swappable pair sorts as one unit, at the cost of names.
        (if swapped { 1 } else { cost(f) }, !swapped, f)
    });
    order
}

/// log2 of the odds of a probability: the match weight it is.
pub fn log2_odds(p: f64) -> f64 {
    (p / (1.0 - p)).log2()
}

/// Match probability of a match weight (log2 odds).
pub fn probability(weight: f64) -> f64 {
    1.0 / (1.0 + (-weight).exp2())
}

/// The log2 prior odds of a pair from a block of `block_rows` rows, given the rule's odds in a
/// block of two: `log2(k - 1)` bits less in a block of `k`.
///
/// A person has only so many records, so the duplicates inside a block grow with its rows while
/// its pairs grow with their square: of the `k - 1` records a record meets in its block, about
/// the same few are its own whatever `k` is. Two records alone sharing a personal inbox are
/// nearly always one person; thirty sharing `info@` are a team; and a million-row table puts
/// a thousand namesakes where a hundred-thousand-row table put a hundred, so the prior of a pair
/// that shares only a name falls as the table grows, for every kind of key (a term-frequency
/// adjustment of the key itself). Only the level is fitted, per rule (`estimate::estimate_block_prior`).
pub fn block_prior(odds_in_pair: f64, block_rows: usize) -> f64 {
    odds_in_pair - ((block_rows.max(2) - 1) as f64).log2()
}

#[cfg(test)]
mod tests;
