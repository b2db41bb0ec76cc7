//! The deduper: a table and a match model in; clusters, scored pairs with explanations and metrics
//! out. Dictionary encoding, blocking, parameter estimation, streaming scoring (rayon-parallel) and
//! guarded clustering.
//!
//! Candidate pairs are never all held: blocking walks its blocks pair by pair, a first pass
//! compares a deterministic sample for EM, a second scores every pair and keeps only the accepted
//! ones (and, when asked, those above a probability floor for the pairs output).

use super::block::{Blocking, RawColumn};
use super::cluster::{self, Split};
use super::compare::{self, prepare};
use super::encode::{Dictionary, NULL_CODE, TextColumn, number_by_first_occurrence, remap};
use super::model::{FieldKind, MatchModel};
use super::normalize;
use super::score::{
    self, LevelCache, Levels, MAX_FIELDS, NULL_LEVEL, Parameters, PreparedTable, RuleParameters,
    ScoredPair, Scorer,
};
use rayon::prelude::*;
use rlibphonenumber::enums::Region;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Instant;

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

/// One row of the assignments output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment {
    pub id: String,
    pub cluster_id: String,
    /// The best accepted probability linking the row into its cluster; `None` for a singleton.
    pub match_probability: Option<f64>,
}

/// Which scored pairs a run keeps for its pairs output. Accepted pairs always feed clustering;
/// keeping every scored pair of a million-row table would cost gigabytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeepPairs {
    /// None beyond what clustering needs.
    Nothing,
    /// Pairs whose probability is at least this (0 keeps every scored pair).
    AtLeast(f64),
}

/// Counts and timings of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DedupeMetrics {
    pub rows: u64,
    pub candidate_pairs: u64,
    /// Candidate pairs each rule added (a pair belongs to the first rule that generates it).
    pub pairs_per_rule: Vec<(String, u64)>,
    /// Blocks larger than the model's `max_block_size`, compared by sorted neighbourhood.
    pub windowed_blocks: u64,
    /// Rows whose country cell names no country: their national phones were read in the default
    /// region.
    pub unknown_country_rows: u64,
    pub accepted_pairs: u64,
    pub clusters: u64,
    pub clusters_with_duplicates: u64,
    /// Clusters by their number of records, in buckets ("1" to "5", "6-10", "11-50", "51-200",
    /// "201+"), those that occur: a job can alert on a run whose clusters grow.
    pub clusters_by_size: Vec<(String, u64)>,
    pub largest_cluster: u64,
    pub splits: u64,
    /// Merges the strangers guard refused (`stranger_fields` all differ).
    pub refused_strangers: u64,
    pub seconds_preparing: f64,
    pub seconds_blocking: f64,
    pub seconds_estimating: f64,
    pub seconds_scoring: f64,
    pub seconds_clustering: f64,
    pub scored_pairs_per_second: f64,
}

/// Everything a run produced.
pub struct DedupeResult {
    pub assignments: Vec<Assignment>,
    /// The scored pairs `KeepPairs` asked for, ordered by rows.
    pub pairs: Vec<ScoredPair>,
    pub splits: Vec<Split>,
    pub parameters: Parameters,
    pub metrics: DedupeMetrics,
    pub table: PreparedTable,
    /// Row of each id (for reading pairs back).
    pub ids: Vec<String>,
}

/// Dictionary-encodes the input columns the model reads and prepares each field's distinct values.
/// Returns the prepared table, the raw dictionaries (by column), which blocking keys and the
/// generational-suffix check read, and how many rows have a country cell that names no country.
pub fn prepare_table(
    model: &MatchModel,
    input: &InputTable,
    region: Region,
) -> (PreparedTable, HashMap<String, Dictionary>, u64) {
    let fields: Vec<_> = model
        .fields
        .iter()
        .filter(|f| {
            let present = input.columns.contains_key(&f.name);
            if !present {
                tracing::warn!(field = %f.name, "Model field absent from the input; not compared");
            }
            present
        })
        .cloned()
        .collect();
    let mut wanted: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    for rule in &model.blocking {
        wanted.extend(rule.key_parts().map(|(field, _)| field));
    }
    wanted.extend(model.swappable.iter().flatten().map(String::as_str));
    wanted.extend(model.phone_region_column.as_deref());
    wanted.sort_unstable();
    wanted.dedup();
    let started = Instant::now();
    let raw: HashMap<String, Dictionary> = wanted
        .par_iter()
        .filter_map(|name| {
            let cells = input.columns.get(*name)?;
            Some((name.to_string(), Dictionary::of_cells(cells)))
        })
        .collect();
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "Input columns encoded"
    );
    let mut unknown_country_rows = 0;
    let row_regions = model.phone_region_column.as_deref().and_then(|column| {
        let Some((regions, unknown)) = row_regions(input, &raw, column, region) else {
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
            let cells = &input.columns[&f.name];
            let prepared = if f.kind == FieldKind::Phone {
                // Parsing is the costly part: parse each number once, however it was written.
                let (canonical_codes, canonical) =
                    raw[&f.name].map_distinct(cells, |cell| Some(normalize::phone_canonical(cell)));
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
                raw[&f.name].map_distinct(cells, |cell| prepare(f.kind, cell, region))
            };
            tracing::debug!(field = %f.name, ms = started.elapsed().as_millis() as u64,
                "Field prepared");
            prepared
        })
        .unzip();
    let started = Instant::now();
    let swap = model.swappable.as_ref().and_then(|[a, b]| {
        let ia = fields.iter().position(|f| &f.name == a)?;
        let ib = fields.iter().position(|f| &f.name == b)?;
        Some((ia, ib))
    });
    let table = PreparedTable::new(fields, codes, values, input.rows(), swap);
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
    input: &InputTable,
    raw: &HashMap<String, Dictionary>,
    column: &str,
    default: Region,
) -> Option<(Vec<Region>, usize)> {
    let (dictionary, cells) = (raw.get(column)?, input.columns.get(column)?);
    let distinct = dictionary.distinct(cells);
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
    let pair_of = |row: usize| {
        let c = number_codes[row];
        // A number written with its country code reads the same in every region, so it is
        // keyed by the default one and parsed once.
        (c != NULL_CODE).then(|| {
            if numbers[c as usize].starts_with('+') {
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

/// Blocks a prepared table, reading raw cells through the input's dictionaries.
pub fn block(
    model: &MatchModel,
    table: &PreparedTable,
    input: &InputTable,
    raw: &HashMap<String, Dictionary>,
    region: Region,
) -> anyhow::Result<Blocking> {
    Blocking::build(
        model,
        table,
        |name| {
            Some(RawColumn {
                cells: input.columns.get(name)?,
                dictionary: raw.get(name)?,
            })
        },
        region,
    )
}

/// A cheap deterministic hash of a pair, for sampling pairs without storing them.
fn pair_hash(i: u32, j: u32) -> u64 {
    ((u64::from(i) << 32) | u64::from(j)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 17
}

/// How the reason of a merge the strangers guard refused begins.
pub const STRANGERS: &str = "strangers:";

/// Cluster-size buckets of [`DedupeMetrics::clusters_by_size`]: name and the largest size in it.
const SIZE_BUCKETS: [(&str, u32); 9] = [
    ("1", 1),
    ("2", 2),
    ("3", 3),
    ("4", 4),
    ("5", 5),
    ("6-10", 10),
    ("11-50", 50),
    ("51-200", 200),
    ("201+", u32::MAX),
];

/// How far below their estimate under independence of names and place the pairs that share a
/// rule's key by chance may be ([`crate::transform::block::Crowding`]), as a share of it.
const CHANCE_PAIRS_ERROR: f64 = 0.1;

/// Candidate pairs EM is fitted on, at most (a handful of parameters needs no more).
const EM_SAMPLE: usize = 300_000;

/// What the scoring pass collects on each worker.
#[derive(Default)]
struct ScoringOutput {
    accepted: Vec<(u32, u32, f64)>,
    kept: Vec<ScoredPair>,
    per_rule: Vec<u64>,
}

/// Runs the whole model over a table. The table is taken because the model may rewrite cells for
/// matching (a full name typed into the first-name field is split); the outputs carry only ids.
pub fn run(
    model: &MatchModel,
    mut input: InputTable,
    region: Region,
    seed: u64,
    keep: KeepPairs,
) -> anyhow::Result<DedupeResult> {
    if model.split_full_names
        && let Some([first, last]) = &model.swappable
    {
        let split = input.split_full_names(first, last);
        if split > 0 {
            tracing::info!(
                rows = split,
                "Full names in the first-name field split for matching"
            );
        }
    }
    let owned_input = input;
    let input = &owned_input;
    let rows = input.rows();
    let mut metrics = DedupeMetrics {
        rows: rows as u64,
        ..DedupeMetrics::default()
    };
    let started = Instant::now();
    let (table, raw, unknown_country_rows) = prepare_table(model, input, region);
    metrics.unknown_country_rows = unknown_country_rows;
    metrics.seconds_preparing = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let blocking = block(model, &table, input, &raw, region)?;
    metrics.seconds_blocking = started.elapsed().as_secs_f64();
    metrics.windowed_blocks = blocking.windowed.len() as u64;
    for (rule, size, row) in blocking.windowed.iter().take(10) {
        tracing::info!(rule = %rule, size, example = %input.ids[*row as usize],
            "Large block compared by sorted neighbourhood");
    }

    let started = Instant::now();
    let given_u = table.fields.iter().all(|f| f.u.is_some());
    let mut u = if given_u {
        Vec::new()
    } else {
        score::estimate_u(&table, model.u_sample_pairs, seed)
    };
    for (f, field) in table.fields.iter().enumerate() {
        if let Some(given) = &field.u {
            if u.len() <= f {
                u.resize(f + 1, Vec::new());
            }
            u[f] = given.clone();
        }
    }
    // EM on a deterministic sample of candidate pairs, about the same number from each blocking
    // rule, taken as whole blocks so the blocks left out cost nothing. Sampling in
    // proportion would let the broad name rules (whose pairs grow with the square of a name's
    // frequency) outvote the phone and email rules on a large table, and EM would learn that a
    // duplicate is "the same common name".
    let rules = blocking.rule_names().len();
    let mut bound_per_rule = vec![0usize; rules];
    for b in &blocking.blocks {
        bound_per_rule[b.rule] += blocking.pairs_in(b);
    }
    let per_rule_sample = (EM_SAMPLE / rules.max(1)).max(1);
    let step_per_rule: Vec<u64> = bound_per_rule
        .iter()
        .map(|b| (b / per_rule_sample).max(1) as u64)
        .collect();
    let fields = table.fields.len();
    // Workers take blocks in runs of about equal work, and each keeps its level cache warm across
    // the runs it takes instead of starting a fresh one at every block.
    let runs = blocking.balanced_runs(rayon::current_num_threads() * 64);
    let sample: Vec<(usize, bool, Vec<u8>, usize)> = runs
        .par_iter()
        .flat_map_iter(|run| &blocking.blocks[run.clone()])
        .fold(
            || (LevelCache::new(&table), Vec::new()),
            |(mut cache, mut out), block| {
                let mut levels: Levels = [NULL_LEVEL; MAX_FIELDS];
                let step = step_per_rule[block.rule];
                if pair_hash(block.rows[0], block.rows.len() as u32).is_multiple_of(step) {
                    // A pair an earlier rule brought is compared too: it is not the rule's own
                    // (the share of them tells how many of a rule's block pairs are), but leaving
                    // it out would leave out every duplicate the earlier rules find, and m
                    // would learn that duplicates sharing a name never share a phone.
                    blocking.for_each_pair_marked(block, |i, j, earlier| {
                        table.levels_into(i, j, None, &mut cache, &mut levels);
                        out.push((
                            block.rule,
                            earlier,
                            levels[..fields].to_vec(),
                            block.rows.len(),
                        ));
                    });
                }
                (cache, out)
            },
        )
        .map(|(_, out)| out)
        .reduce(Vec::new, |mut a, b| {
            a.extend(b);
            a
        });
    // Each sampled pair with the fields its rule's key reads left out: those agree for the
    // strangers the key joins as for duplicates, so only the other fields can tell which a pair
    // is (see `keyed_fields`). Every field is still estimated, from the rules that do not key on
    // it.
    let masked_sample: Vec<(usize, bool, Vec<u8>, usize)> = sample
        .iter()
        .map(|(rule, earlier, levels, rows)| {
            let keyed = &blocking.keyed()[*rule];
            let masked = levels
                .iter()
                .zip(keyed)
                .map(|(l, k)| if *k { NULL_LEVEL } else { *l })
                .collect();
            (*rule, *earlier, masked, *rows)
        })
        .collect();
    let patterns = score::level_patterns(masked_sample.iter().map(|(_, _, l, _)| l.as_slice()));
    let u_random = u;
    let (mut m, u, sample_lambda, iterations) = score::estimate_em(
        &table,
        model.em_estimates_u,
        &u_random,
        &patterns,
        model.em_iterations,
        None,
    );
    for (f, field) in table.fields.iter().enumerate() {
        if let Some(given) = &field.m {
            m[f] = given.clone();
        }
    }
    // The prior of each rule's pairs, with m and u held: its odds in a block of two, less
    // log2(k - 1) bits in a block of k (`score::block_prior`), judged by the fields the key
    // leaves open. Namesakes in a million rows differ in phone and email as they do in a
    // thousand; there are just more of them in each block, and the prior falls with that, for
    // every kind of key. The overall share weighs the rules by the pairs they bring.
    let (block_prior_per_rule, lambda_per_rule, bounded_by_crowding) = {
        let mut odds = Vec::with_capacity(rules);
        let mut lambdas = Vec::with_capacity(rules);
        let mut bounded = Vec::with_capacity(rules);
        for r in 0..rules {
            let mut counts: HashMap<(&[u8], usize), f64> = HashMap::new();
            for (_, _, levels, rows) in masked_sample
                .iter()
                .filter(|(rule, earlier, ..)| *rule == r && !earlier)
            {
                *counts.entry((levels.as_slice(), *rows)).or_default() += 1.0;
            }
            let mut pairs: Vec<(Vec<u8>, usize, f64)> = counts
                .into_iter()
                .map(|((l, rows), n)| (l.to_vec(), rows, n))
                .collect();
            pairs.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            let fitted = score::estimate_block_prior(
                &m,
                &u,
                &pairs,
                model.em_iterations,
                score::log2_odds(sample_lambda),
            );
            let share_at =
                |o: f64| score::mean_block_prior(o, pairs.iter().map(|(_, rows, n)| (*rows, *n)));
            let mean = share_at(fitted);
            let (o, l, b) = match crowding_bound(&blocking, &sample, r) {
                Some(most) if mean > most => {
                    // Lower the level until the rule's pairs hold no more matches than the
                    // crowding of its blocks leaves room for.
                    let (mut lo, mut hi) = (-60.0f64, fitted);
                    for _ in 0..60 {
                        let mid = (lo + hi) / 2.0;
                        if share_at(mid) > most {
                            hi = mid;
                        } else {
                            lo = mid;
                        }
                    }
                    (lo, share_at(lo), true)
                }
                _ => (fitted, mean, false),
            };
            tracing::debug!(rule = %blocking.rule_names()[r], odds_in_pair = o, share = l,
                bounded = b, "Prior of the rule's own pairs: log2 odds in a block of two, and the share of matches over its blocks");
            odds.push(o);
            lambdas.push(l);
            bounded.push(b);
        }
        (odds, lambdas, bounded)
    };
    // A prior from crowding is the share of matches among pairs that share the rule's key: it
    // holds that agreement already, so the fields the key settles add nothing more, and the
    // other fields are weighed by how they tell duplicates from namesakes among such pairs (m
    // and u fitted on the rule's own pairs with the prior held, which also keeps EM from
    // taking "same surname and postcode" for a duplicate).
    let per_rule: Vec<Option<RuleParameters>> = (0..rules)
        .map(|r| {
            // The names a rule keys on were left out of its prior's estimate, and the prior
            // (with its block's size) already holds that they agree: counted again at scoring
            // with u from pairs that do not share them, a shared common name would outweigh the
            // prior of a crowded block, and namesakes would merge (a million seeded contacts
            // fell to precision 0.13).
            let ignored: Vec<bool> = blocking.settled()[r]
                .iter()
                .zip(&blocking.keyed()[r])
                .map(|(s, k)| *s || *k)
                .collect();
            if !bounded_by_crowding[r] {
                // Only the names: a shared phone or inbox keeps its weight on top of its rule's
                // prior, as a small table's prior alone cannot carry it.
                let keyed = blocking.keyed()[r].clone();
                return keyed.contains(&true).then(|| RuleParameters {
                    m: m.clone(),
                    u: u.clone(),
                    settled: keyed,
                });
            }
            let settled = &ignored;
            let masked: Vec<Vec<u8>> = sample
                .iter()
                .filter(|(rule, earlier, ..)| *rule == r && !earlier)
                .map(|(_, _, levels, _)| {
                    levels
                        .iter()
                        .zip(settled)
                        .map(|(l, s)| if *s { NULL_LEVEL } else { *l })
                        .collect()
                })
                .collect();
            let patterns = score::level_patterns(masked.iter().map(Vec::as_slice));
            let (m, u, _, _) = score::estimate_em(
                &table,
                true,
                &u_random,
                &patterns,
                model.em_iterations,
                Some(lambda_per_rule[r]),
            );
            Some(RuleParameters {
                m,
                u,
                settled: settled.clone(),
            })
        })
        .collect();
    drop(sample);
    let total_bound = bound_per_rule.iter().sum::<usize>().max(1) as f64;
    let lambda = lambda_per_rule
        .iter()
        .zip(&bound_per_rule)
        .map(|(l, b)| l * *b as f64 / total_bound)
        .sum::<f64>()
        .clamp(1e-6, 1.0 - 1e-6);
    let parameters = Parameters {
        m,
        u,
        lambda,
        lambda_per_rule,
        block_prior_per_rule,
        per_rule,
        iterations,
        term_frequency: score::term_frequencies(&table),
    };
    metrics.seconds_estimating = started.elapsed().as_secs_f64();
    // What the model learned, for `-v`: a surprising prior or m is the first thing to look at
    // when a run merges too much or too little.
    for (rule, lambda) in blocking
        .rule_names()
        .iter()
        .zip(&parameters.lambda_per_rule)
    {
        tracing::debug!(rule = %rule, prior = lambda, "Estimated share of matches among the rule's pairs");
    }
    for (field, (m, u)) in table
        .fields
        .iter()
        .zip(parameters.m.iter().zip(&parameters.u))
    {
        tracing::debug!(field = %field.name, ?m, ?u, "Estimated m and u per level");
    }

    let started = Instant::now();
    let scorer = Scorer::new(&table, &parameters);
    // The lowest weight any pair needs to be of use: accepted, or kept for the pairs output.
    // Pairs that cannot reach it stop being compared as soon as that is certain.
    let needed = match keep {
        KeepPairs::AtLeast(p) => p.min(model.threshold),
        KeepPairs::Nothing => model.threshold,
    };
    let floor = if needed <= 0.0 {
        f64::NEG_INFINITY
    } else {
        score::log2_odds(needed) - 1e-6
    };
    let scored = runs
        .par_iter()
        .flat_map_iter(|run| &blocking.blocks[run.clone()])
        .fold(
            || {
                (
                    LevelCache::new(&table),
                    ScoringOutput {
                        per_rule: vec![0; rules],
                        ..ScoringOutput::default()
                    },
                )
            },
            |(mut cache, mut out), block| {
                let mut levels: Levels = [NULL_LEVEL; MAX_FIELDS];
                let mut generated = 0u64;
                blocking.for_each_pair(block, |i, j| {
                    generated += 1;
                    let rows = block.rows.len();
                    if scorer
                        .weight_at_least(block.rule, rows, i, j, floor, &mut cache, &mut levels)
                        .is_none()
                    {
                        return;
                    }
                    let weight = scorer.weight_in_rule(block.rule, rows, i, &levels);
                    let probability = score::probability(weight);
                    if probability >= model.threshold {
                        out.accepted.push((i, j, probability));
                    }
                    if let KeepPairs::AtLeast(floor) = keep
                        && probability >= floor
                    {
                        out.kept.push(ScoredPair {
                            left: i,
                            right: j,
                            rule: Some(block.rule),
                            weight,
                            prior: scorer.prior_of(block.rule, rows),
                            probability,
                            levels: levels[..fields].into(),
                        });
                    }
                });
                out.per_rule[block.rule] += generated;
                (cache, out)
            },
        )
        .map(|(_, out)| out)
        .reduce(
            || ScoringOutput {
                per_rule: vec![0; rules],
                ..ScoringOutput::default()
            },
            |mut a, b| {
                a.accepted.extend(b.accepted);
                a.kept.extend(b.kept);
                for (x, y) in a.per_rule.iter_mut().zip(b.per_rule) {
                    *x += y;
                }
                a
            },
        );
    let ScoringOutput {
        mut accepted,
        kept: mut pairs,
        per_rule,
    } = scored;
    pairs.par_sort_unstable_by_key(|p| (p.left, p.right));
    metrics.candidate_pairs = per_rule.iter().sum();
    metrics.pairs_per_rule = blocking
        .rule_names()
        .iter()
        .cloned()
        .zip(per_rule)
        .collect();
    metrics.seconds_scoring = started.elapsed().as_secs_f64();
    metrics.scored_pairs_per_second =
        metrics.candidate_pairs as f64 / metrics.seconds_scoring.max(1e-9);

    let started = Instant::now();
    metrics.accepted_pairs = accepted.len() as u64;
    let clusters = guarded_clusters(model, input, &scorer, &table, &raw, &mut accepted);
    metrics.seconds_clustering = started.elapsed().as_secs_f64();
    metrics.splits = clusters.splits.len() as u64;
    metrics.refused_strangers = clusters
        .splits
        .iter()
        .filter(|s| s.rule.starts_with(STRANGERS))
        .count() as u64;
    // Clusters are named by a row (their smallest), so their sizes fit a vector by row.
    let mut sizes = vec![0u32; rows];
    for &c in &clusters.cluster_of {
        sizes[c as usize] += 1;
    }
    metrics.clusters = sizes.iter().filter(|n| **n > 0).count() as u64;
    metrics.clusters_with_duplicates = sizes.iter().filter(|n| **n > 1).count() as u64;
    metrics.largest_cluster = sizes.iter().copied().max().unwrap_or(0).into();
    let mut by_bucket = [0u64; SIZE_BUCKETS.len()];
    for &n in sizes.iter().filter(|n| **n > 0) {
        if let Some(b) = SIZE_BUCKETS.iter().position(|(_, most)| n <= *most) {
            by_bucket[b] += 1;
        }
    }
    metrics.clusters_by_size = SIZE_BUCKETS
        .iter()
        .zip(by_bucket)
        .filter(|(_, n)| *n > 0)
        .map(|((name, _), n)| (name.to_string(), n))
        .collect();
    let assignments = (0..rows)
        .into_par_iter()
        .map(|r| Assignment {
            id: input.ids[r].clone(),
            cluster_id: input.ids[clusters.cluster_of[r] as usize].clone(),
            match_probability: clusters.best_probability[r],
        })
        .collect();
    drop(raw);
    let InputTable { ids, .. } = owned_input;
    Ok(DedupeResult {
        assignments,
        pairs,
        splits: clusters.splits,
        parameters,
        metrics,
        table,
        ids,
    })
}

/// The most of a rule's own pairs that can be matches, given the pairs chance gives its blocks
/// ([`crate::transform::block::Crowding`]); None for a rule with no such estimate.
fn crowding_bound(
    blocking: &Blocking,
    sample: &[(usize, bool, Vec<u8>, usize)],
    r: usize,
) -> Option<f64> {
    let crowding = blocking.crowding()[r];
    let chance = crowding.chance_pairs?;
    // The rule's own pairs (those no earlier rule brought), from the share of its sampled pairs
    // an earlier rule did not bring.
    let (seen, earlier) = sample
        .iter()
        .filter(|(rule, ..)| *rule == r)
        .fold((0usize, 0usize), |(n, e), (_, earlier, ..)| {
            (n + 1, e + usize::from(*earlier))
        });
    let own_share = if seen == 0 {
        1.0
    } else {
        1.0 - earlier as f64 / seen as f64
    };
    let own_pairs = crowding.block_pairs * own_share;
    if own_pairs <= 0.0 {
        return None;
    }
    // Names do depend a little on place (and a household shares both), so the chance pairs are
    // taken as known to within CHANCE_PAIRS_ERROR: the most the rule's own pairs can hold of
    // duplicates is what a tenth fewer chance pairs leave.
    let most = (1.0 - (1.0 - CHANCE_PAIRS_ERROR) * chance / own_pairs).clamp(1e-6, 1.0 - 1e-6);
    tracing::debug!(rule = %blocking.rule_names()[r], most, chance, own_pairs,
        "The most of the rule's own pairs its blocks' crowding allows to be matches");
    Some(most)
}

/// Clusters the accepted pairs under the model's guards: different generational suffixes
/// (Jr./Sr.) never merge, nor do records that differ in every conflict field, nor two records whose
/// own pair is a confident non-match (below `cluster_min_probability`).
fn guarded_clusters(
    model: &MatchModel,
    input: &InputTable,
    scorer: &Scorer,
    table: &PreparedTable,
    raw: &HashMap<String, Dictionary>,
    accepted: &mut [(u32, u32, f64)],
) -> cluster::Clusters {
    let conflict_fields: Vec<(usize, String)> = model
        .conflict_fields
        .iter()
        .filter_map(|name| {
            table
                .fields
                .iter()
                .position(|f| &f.name == name)
                .map(|i| (i, name.clone()))
        })
        .collect();
    let rule = conflict_fields
        .iter()
        .map(|(_, n)| n.as_str())
        .collect::<Vec<_>>()
        .join("+");
    let stranger_fields: Vec<usize> = model
        .stranger_fields
        .iter()
        .filter_map(|name| table.fields.iter().position(|f| &f.name == name))
        .collect();
    // "surname, phone and email": the fields a refusal names.
    let strangers_reason = {
        let names: Vec<&str> = stranger_fields
            .iter()
            .map(|&f| table.fields[f].name.as_str())
            .collect();
        let listed = match names.as_slice() {
            [] => String::new(),
            [one] => one.to_string(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        };
        format!("{STRANGERS} {listed} all differ")
    };
    // Generational suffixes (Jr./Sr./II/III) of each row, read from the raw name fields (once per
    // distinct value): a father and son share every other field, so two different suffixes mean
    // two people.
    let generation: Vec<Option<&'static str>> = if model.generational_suffixes {
        let per_column: Vec<(&Dictionary, Vec<Option<&'static str>>)> = model
            .swappable
            .iter()
            .flatten()
            .filter_map(|name| {
                let dictionary = raw.get(name)?;
                let suffixes = dictionary
                    .distinct(input.columns.get(name)?)
                    .iter()
                    .map(|v| normalize::generational_suffix(v))
                    .collect();
                Some((dictionary, suffixes))
            })
            .collect();
        (0..table.rows)
            .map(|r| {
                per_column
                    .iter()
                    .find_map(|(d, suffixes)| match d.codes[r] {
                        NULL_CODE => None,
                        c => suffixes[c as usize],
                    })
            })
            .collect()
    } else {
        Vec::new()
    };
    // The guard computes only its own fields (and the name pair, for swapped names).
    let mut guard_fields = vec![false; table.fields.len()];
    for f in conflict_fields
        .iter()
        .map(|(f, _)| *f)
        .chain(stranger_fields.iter().copied())
    {
        guard_fields[f] = true;
    }
    if let Some((fi, li)) = table.swap
        && (guard_fields[fi] || guard_fields[li])
    {
        guard_fields[fi] = true;
        guard_fields[li] = true;
    }
    // A suffix on one record and none on the other is one person only if they share an email: a
    // father and son share a name, an address and often the home phone, rarely an inbox.
    let email_field = table.fields.iter().position(|f| f.kind == FieldKind::Email);
    if let Some(f) = email_field
        && model.generational_suffixes
    {
        guard_fields[f] = true;
    }
    // Rows that hold the same value in every field the guards read are interchangeable: the
    // clustering checks one of them.
    let score_guard = model.cluster_min_probability > 0.0;
    let guarded: Vec<usize> = (0..table.fields.len())
        .filter(|f| score_guard || guard_fields[*f])
        .collect();
    let same_signature = |a: u32, b: u32| {
        generation.get(a as usize) == generation.get(b as usize)
            && guarded
                .iter()
                .all(|&f| table.code(f, a) == table.code(f, b))
    };
    // Each worker's caches: levels of value pairs, and the guard's verdict per field and pair of
    // distinct values (a cluster of namesakes asks about the same few names again and again, and
    // judging two names can cost string work).
    type NameVerdicts = rustc_hash::FxHashMap<(usize, u8, u32, u32), bool>;
    let new_state = || {
        (
            LevelCache::new(table),
            [NULL_LEVEL; MAX_FIELDS],
            NameVerdicts::default(),
        )
    };
    let conflict = |state: &mut (LevelCache, Levels, NameVerdicts), a: u32, b: u32| {
        let (cache, levels, name_verdicts) = state;
        match (generation.get(a as usize), generation.get(b as usize)) {
            (Some(Some(x)), Some(Some(y))) if x != y => {
                return Some(format!("generations {x} and {y} differ"));
            }
            (Some(Some(x)), Some(None)) | (Some(None), Some(Some(x))) => {
                let shared_email =
                    email_field.is_some_and(|f| table.field_level(f, a, b, cache) <= 1);
                if !shared_email {
                    return Some(format!("{x} on one record only, and no shared email"));
                }
            }
            _ => {}
        }
        if !conflict_fields.is_empty() || !stranger_fields.is_empty() {
            table.levels_into(a, b, Some(&guard_fields), cache, levels);
        }
        // Different in every stranger field, each present on both (a field empty on one side
        // proves nothing): no shared surname (nor a typo of one, nor names swapped), no shared
        // number, no shared inbox.
        if !stranger_fields.is_empty()
            && stranger_fields.iter().all(|&f| {
                levels[f] != NULL_LEVEL
                    && usize::from(levels[f]) + 1 == table.fields[f].kind.levels().len()
            })
        {
            return Some(strangers_reason.clone());
        }
        if !conflict_fields.is_empty() {
            let all_conflict = conflict_fields.iter().all(|(f, _)| {
                let (ca, cb) = (table.code(*f, a), table.code(*f, b));
                match (levels[*f], table.value(*f, a), table.value(*f, b)) {
                    (NULL_LEVEL, _, _) => false,
                    // Keyed by the level too: swapped names lift the level of a pair of first
                    // names that would conflict compared straight.
                    (l, Some(x), Some(y)) => *name_verdicts
                        .entry((*f, l, ca.min(cb), ca.max(cb)))
                        .or_insert_with(|| compare::conflict(table.fields[*f].kind, l, x, y)),
                    _ => false,
                }
            });
            if all_conflict {
                return Some(format!("{rule} differ"));
            }
        }
        if score_guard {
            table.levels_into(a, b, None, cache, levels);
            let p = score::probability(scorer.weight(a, levels));
            if p < model.cluster_min_probability {
                return Some(format!("records score {p:.4} as a pair"));
            }
        }
        None
    };
    cluster::cluster(table.rows, accepted, same_signature, new_state, conflict)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contacts_model() -> MatchModel {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/models/contacts.toml");
        MatchModel::load(&path).expect("contacts model")
    }

    /// The columns of the guard tests' rows.
    const CONTACT_COLUMNS: [&str; 6] = [
        "first_name",
        "last_name",
        "email",
        "phone",
        "city",
        "postal_code",
    ];

    fn table(rows: &[[&str; 6]]) -> InputTable {
        let rows: Vec<&[&str]> = rows.iter().map(|r| &r[..]).collect();
        columns_table(&CONTACT_COLUMNS, &rows)
    }

    fn cluster_of(result: &DedupeResult, id: &str) -> String {
        result
            .assignments
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.cluster_id.clone())
            .expect("assigned")
    }

    fn columns_table(names: &[&str], rows: &[&[&str]]) -> InputTable {
        InputTable {
            ids: (0..rows.len()).map(|i| format!("r{i}")).collect(),
            columns: names
                .iter()
                .enumerate()
                .map(|(c, name)| {
                    let cells = rows
                        .iter()
                        .map(|r| (!r[c].is_empty()).then(|| r[c].to_string()))
                        .collect();
                    (name.to_string(), cells)
                })
                .collect(),
        }
    }

    fn dedupe(input: InputTable) -> DedupeResult {
        run(
            &contacts_model(),
            input,
            normalize::region("US"),
            42,
            KeepPairs::Nothing,
        )
        .expect("dedupe")
    }

    #[test]
    fn national_phones_are_read_in_each_records_country() {
        let names = ["first_name", "last_name", "phone", "city", "country"];
        let rows: &[&[&str]] = &[
            // One person in London, the number once national and once international.
            &["Olivia", "Hughes", "07911 123456", "London", "UK"],
            &["Olivia", "Hughes", "+44 7911 123456", "", ""],
            // Sydney: national mobile form with the country spelled out.
            &["Jack", "Nguyen", "0412 345 678", "Sydney", "Australia"],
            &["Jack", "Nguyen", "+61 412 345 678", "", "AU"],
            &["Tom", "Hart", "+1 415 555 0122", "Miami", "US"],
            &["Ann", "Lee", "+1 415 555 0111", "Denver", "US"],
            // A country no one can read: counted, and the number read in the default region.
            &["Eve", "Stone", "(303) 555 0199", "Denver", "Narnia"],
        ];
        let result = dedupe(columns_table(&names, rows));
        assert_eq!(result.metrics.unknown_country_rows, 1);
        let phone = result
            .table
            .fields
            .iter()
            .position(|f| f.name == "phone")
            .expect("phone field");
        assert_eq!(
            result.table.value(phone, 0).map(|p| p.key().to_string()),
            Some("+447911123456".to_string())
        );
        assert_eq!(
            result.table.value(phone, 2).map(|p| p.key().to_string()),
            Some("+61412345678".to_string())
        );
        assert_eq!(cluster_of(&result, "r0"), cluster_of(&result, "r1"));
        assert_eq!(cluster_of(&result, "r2"), cluster_of(&result, "r3"));
    }

    #[test]
    fn full_names_in_the_first_name_field_are_split_only_where_the_last_name_is_empty() {
        let names = ["first_name", "last_name"];
        let rows: &[&[&str]] = &[
            &["Patricia Horton", ""],
            &["Horton, Patricia", ""],
            &["Mary Ann", "Smith"],
            &["Patricia", ""],
        ];
        let mut t = columns_table(&names, rows);
        assert_eq!(t.split_full_names("first_name", "last_name"), 2);
        let cells = |c: &str| -> Vec<Option<&str>> { t.columns[c].iter().collect() };
        assert_eq!(
            cells("first_name"),
            vec![
                Some("Patricia"),
                Some("Patricia"),
                Some("Mary Ann"),
                Some("Patricia")
            ]
        );
        assert_eq!(
            cells("last_name"),
            vec![Some("Horton"), Some("Horton"), Some("Smith"), None]
        );
    }

    #[test]
    fn a_full_name_in_the_first_name_field_compares_as_the_same_name() {
        let names = ["first_name", "last_name", "email", "city"];
        let rows: &[&[&str]] = &[
            &["Patricia Horton", "", "", "Austin"],
            &["Patricia", "Horton", "pat.horton@gmail.com", "Austin"],
            &["Horton, Patricia", "", "", ""],
            &["Ann", "Lee", "ann.lee@gmail.com", "Denver"],
            &["Tom", "Hart", "tom.hart@gmail.com", "Miami"],
        ];
        let result = run(
            &contacts_model(),
            columns_table(&names, rows),
            normalize::region("US"),
            42,
            KeepPairs::AtLeast(0.0),
        )
        .expect("dedupe");
        let (first, last) = (0, 1);
        assert_eq!(result.table.fields[first].name, "first_name");
        assert_eq!(result.table.fields[last].name, "last_name");
        // Blocked together, and both names compare as identical.
        for (i, j) in [(0, 1), (0, 2), (1, 2)] {
            let pair = result
                .pairs
                .iter()
                .find(|p| (p.left, p.right) == (i, j))
                .unwrap_or_else(|| panic!("rows {i} and {j} are a candidate pair"));
            assert_eq!(
                (pair.levels[first], pair.levels[last]),
                (0, 0),
                "rows {i}, {j}"
            );
        }
    }

    #[test]
    fn twins_and_gendered_forms_sharing_a_home_stay_apart() {
        let names = CONTACT_COLUMNS;
        let rows: &[&[&str]] = &[
            &[
                "Ethan",
                "Taylor",
                "ethantaylor58@yahoo.com",
                "(470) 698-1958",
                "Atlanta",
                "30376",
            ],
            &[
                "Evan",
                "Taylor",
                "etaylor@gmail.com",
                "470-698-1958",
                "Atlanta",
                "30376",
            ],
            &[
                "Mario",
                "Martinez",
                "mario.m@gmail.com",
                "323 374 1765",
                "Los Angeles",
                "90021",
            ],
            &[
                "María",
                "Martínez",
                "maria72@gmail.com",
                "323 374 1765",
                "Los Angeles",
                "90021",
            ],
            // A typo in a long name with the same phone and email is one person.
            &[
                "Jonathon",
                "Reyes",
                "jreyes@gmail.com",
                "212 555 0199",
                "New York",
                "10001",
            ],
            &[
                "Jonathan",
                "Reyes",
                "jreyes@gmail.com",
                "212-555-0199",
                "New York",
                "10001",
            ],
        ];
        let result = dedupe(columns_table(&names, rows));
        assert_ne!(cluster_of(&result, "r0"), cluster_of(&result, "r1"));
        assert_ne!(cluster_of(&result, "r2"), cluster_of(&result, "r3"));
        assert_eq!(cluster_of(&result, "r4"), cluster_of(&result, "r5"));
    }

    #[test]
    fn a_junior_without_a_shared_email_stays_apart_from_his_father() {
        let rows = [
            // Father and son: one address and home phone, their own inboxes.
            [
                "Michael",
                "Morgan",
                "mike.morgan@gmail.com",
                "+14155550134",
                "Boston",
                "02118",
            ],
            [
                "Michael",
                "Morgan Jr.",
                "mmorgan.jr@yahoo.com",
                "+14155550134",
                "Boston",
                "02118",
            ],
            // One person, once with the suffix and once without, one email.
            [
                "Robert",
                "Lane Jr.",
                "rob.lane@gmail.com",
                "+14155550199",
                "Austin",
                "78701",
            ],
            [
                "Robert",
                "Lane",
                "rob.lane@gmail.com",
                "+14155550199",
                "Austin",
                "78701",
            ],
            [
                "Ann",
                "Lee",
                "ann.lee@gmail.com",
                "+14155550111",
                "Denver",
                "80202",
            ],
            [
                "Tom",
                "Hart",
                "tom.hart@gmail.com",
                "+14155550122",
                "Miami",
                "33101",
            ],
        ];
        let result = run(
            &contacts_model(),
            table(&rows),
            normalize::region("US"),
            42,
            KeepPairs::Nothing,
        )
        .expect("dedupe");
        assert_ne!(cluster_of(&result, "r0"), cluster_of(&result, "r1"));
        assert_eq!(cluster_of(&result, "r2"), cluster_of(&result, "r3"));
    }

    #[test]
    fn namesakes_crowding_a_name_only_rule_are_not_taken_for_duplicates() {
        // 4,000 different people drawn from six first names and six surnames, with no place to
        // tell them apart, every one with an own email and phone; 60 of them entered twice with
        // the same phone and no email. The rules on names alone (names in either order, last
        // name + initial) hold about 450,000 namesake pairs against 60 duplicates.
        let names = ["first_name", "last_name", "email", "phone"];
        let surnames = ["Smith", "Jones", "Brown", "Garcia", "Miller", "Davis"];
        let firsts = ["James", "Mary", "Robert", "Linda", "Thomas", "Karen"];
        let mut state: u64 = 11;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as usize) % n
        };
        let mut rows: Vec<[String; 4]> = Vec::new();
        for p in 0..4000 {
            let (f, s) = (firsts[next(6)], surnames[next(6)]);
            let row = [
                f.to_string(),
                s.to_string(),
                format!("{}.{}{p}@example.com", f.to_lowercase(), s.to_lowercase()),
                format!("+1 312 55{:05}", p),
            ];
            if p < 60 {
                let mut again = row.clone();
                again[2] = String::new();
                rows.push(again);
            }
            rows.push(row);
        }
        let borrowed: Vec<Vec<&str>> = rows
            .iter()
            .map(|r| r.iter().map(String::as_str).collect())
            .collect();
        let slices: Vec<&[&str]> = borrowed.iter().map(Vec::as_slice).collect();
        let result = dedupe(columns_table(&names, &slices));
        let person = |row: usize| if row < 120 { row / 2 } else { row - 60 };
        let mut members: HashMap<String, Vec<usize>> = HashMap::new();
        for (row, a) in result.assignments.iter().enumerate() {
            members.entry(a.cluster_id.clone()).or_default().push(row);
        }
        for rows in members.values() {
            let people: std::collections::HashSet<usize> =
                rows.iter().map(|r| person(*r)).collect();
            assert_eq!(people.len(), 1, "rows {rows:?} merge different people");
        }
        assert_eq!(members.len(), 4000, "the 60 entered twice are found");
        for name in ["names_any_order", "last_name_first_initial"] {
            let rule = result
                .metrics
                .pairs_per_rule
                .iter()
                .position(|(n, _)| n == name)
                .expect("rule ran");
            assert!(
                result.parameters.lambda_per_rule[rule] < 0.05,
                "{name}: {:?}",
                result.parameters.lambda_per_rule
            );
        }
    }

    /// Runs the contacts model with every guard but the strangers guard off and a threshold
    /// low enough that any shared phone or email is accepted, so a chain of such links would
    /// join whoever it reaches.
    fn dedupe_linking_everything(input: InputTable, strangers: &[&str]) -> DedupeResult {
        let mut model = contacts_model();
        model.threshold = 1e-6;
        model.cluster_min_probability = 0.0;
        model.conflict_fields.clear();
        model.generational_suffixes = false;
        model.stranger_fields = strangers.iter().map(|s| s.to_string()).collect();
        run(
            &model,
            input,
            normalize::region("US"),
            42,
            KeepPairs::Nothing,
        )
        .expect("dedupe")
    }

    #[test]
    fn a_cluster_never_holds_two_records_differing_in_surname_phone_and_email() {
        let names = ["first_name", "last_name", "email", "phone"];
        let rows: &[&[&str]] = &[
            // One person, a second number on the second record.
            &["Michael", "Smith", "msmith@gmail.com", "+1 312 555 0101"],
            &["Michael", "Smith", "msmith@gmail.com", "+1 312 555 0202"],
            // A stranger at the office line the second record gave: nothing else in common
            // with the first.
            &[
                "Michael",
                "Bealing",
                "mbealing@yahoo.com",
                "+1 312 555 0202",
            ],
            // A married name with the same inbox is not refused: the email agrees.
            &["Anna", "Lee", "anna.k@gmail.com", "+1 415 555 0111"],
            &["Anna", "Kim", "anna.k@gmail.com", "+1 415 555 0999"],
        ];
        let strangers = ["last_name", "phone", "email"];
        let result = dedupe_linking_everything(columns_table(&names, rows), &strangers);
        assert_eq!(cluster_of(&result, "r0"), cluster_of(&result, "r1"));
        assert_ne!(cluster_of(&result, "r0"), cluster_of(&result, "r2"));
        assert_eq!(cluster_of(&result, "r3"), cluster_of(&result, "r4"));
        let refused: Vec<&Split> = result
            .splits
            .iter()
            .filter(|s| s.rule.starts_with(STRANGERS))
            .collect();
        assert!(!refused.is_empty(), "{:?}", result.splits);
        assert!(
            refused[0].rule.contains("last_name, phone and email"),
            "the reason names the fields: {:?}",
            refused[0]
        );
        assert_eq!(result.metrics.refused_strangers, refused.len() as u64);
        // Without the guard the chain joins all three.
        let result = dedupe_linking_everything(columns_table(&names, rows), &[]);
        assert_eq!(cluster_of(&result, "r0"), cluster_of(&result, "r2"));
    }

    #[test]
    fn cluster_sizes_are_counted_by_size() {
        let names = ["first_name", "last_name", "email", "phone"];
        let firsts = ["Ada", "Ben", "Cal", "Dee", "Eli", "Fay", "Gus", "Hal"];
        let lasts = ["Reed", "Shaw", "Todd", "Vale", "West"];
        let mut rows: Vec<[String; 4]> = Vec::new();
        for (k, copies) in [(0, 3), (1, 2)] {
            for _ in 0..copies {
                rows.push([
                    ["Ann", "Bob"][k].to_string(),
                    ["Lee", "Ray"][k].to_string(),
                    format!("{}@example.com", ["ann", "bob"][k]),
                    format!("+1 312 555 010{k}"),
                ]);
            }
        }
        for (p, (f, l)) in firsts
            .iter()
            .flat_map(|f| lasts.iter().map(move |l| (f, l)))
            .enumerate()
        {
            rows.push([
                f.to_string(),
                l.to_string(),
                format!("{f}.{l}@example.com"),
                format!("+1 415 555 {:04}", 100 + p),
            ]);
        }
        let borrowed: Vec<Vec<&str>> = rows
            .iter()
            .map(|r| r.iter().map(String::as_str).collect())
            .collect();
        let slices: Vec<&[&str]> = borrowed.iter().map(Vec::as_slice).collect();
        let result = dedupe(columns_table(&names, &slices));
        assert_eq!(result.metrics.largest_cluster, 3);
        assert_eq!(
            result.metrics.clusters_by_size,
            vec![
                ("1".to_string(), 40),
                ("2".to_string(), 1),
                ("3".to_string(), 1)
            ]
        );
    }

    #[test]
    fn a_personal_inbox_shared_by_two_weighs_more_than_one_shared_by_a_team() {
        // The prior of a pair falls with the rows of its block: two records alone on an address
        // are far likelier one person than two of thirty on `info@`.
        let low = score::block_prior(3.0, 30);
        assert!((score::block_prior(3.0, 2) - 3.0).abs() < 1e-12);
        assert!((3.0 - low - 29f64.log2()).abs() < 1e-12, "{low}");
    }

    #[test]
    fn namesakes_crowding_a_postcode_are_not_taken_for_duplicates() {
        // 3,000 different people drawn from ten surnames, ten first names and 200 postcodes (so
        // a surname, initial and postcode is shared by 0.15 people besides oneself by chance: one
        // postcode is weighty evidence, yet about 200 namesake pairs share one), every one with
        // an own email and phone; and 40 of them entered twice with the same phone.
        let surnames = [
            "Smith", "Jones", "Brown", "Garcia", "Miller", "Davis", "Lopez", "Wilson", "Moore",
            "Clark",
        ];
        let firsts = [
            "James", "Mary", "Robert", "Linda", "Thomas", "Karen", "David", "Nancy", "Paul",
            "Helen",
        ];
        let mut state: u64 = 7;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as usize) % n
        };
        let mut rows: Vec<[String; 6]> = Vec::new();
        for p in 0..3000 {
            let (s, f, z) = (surnames[next(10)], firsts[next(10)], 10_000 + next(200));
            let row = [
                f.to_string(),
                s.to_string(),
                format!("{}.{}{p}@example.com", f.to_lowercase(), s.to_lowercase()),
                format!("+1 312 55{:05}", p),
                "Chicago".to_string(),
                format!("{z}"),
            ];
            if p < 40 {
                let mut again = row.clone();
                again[2] = String::new();
                rows.push(again);
            }
            rows.push(row);
        }
        let borrowed: Vec<Vec<&str>> = rows
            .iter()
            .map(|r| r.iter().map(String::as_str).collect())
            .collect();
        let slices: Vec<&[&str]> = borrowed.iter().map(Vec::as_slice).collect();
        let result = dedupe(columns_table(&CONTACT_COLUMNS, &slices));
        let mut members: HashMap<String, Vec<usize>> = HashMap::new();
        for (row, a) in result.assignments.iter().enumerate() {
            members.entry(a.cluster_id.clone()).or_default().push(row);
        }
        // The 40 people entered twice are found (rows 2k and 2k+1 for k < 40), and no cluster
        // holds two people.
        let person = |row: usize| if row < 80 { row / 2 } else { row - 40 };
        for rows in members.values() {
            let people: std::collections::HashSet<usize> =
                rows.iter().map(|r| person(*r)).collect();
            assert_eq!(people.len(), 1, "rows {rows:?} merge different people");
        }
        assert_eq!(members.len(), 3000);
        let rule = result
            .metrics
            .pairs_per_rule
            .iter()
            .position(|(name, _)| name == "name_sound_postcode")
            .expect("rule ran");
        // Chance explains the rule's pairs, so its prior says they are mostly not duplicates.
        assert!(
            result.parameters.lambda_per_rule[rule] < 0.2,
            "{:?}",
            result.parameters.lambda_per_rule
        );
    }
}
