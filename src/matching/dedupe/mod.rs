//! The deduper: a table and a match model in; clusters, scored pairs with explanations and metrics
//! out. Dictionary encoding, blocking, parameter estimation, streaming scoring (rayon-parallel) and
//! guarded clustering.
//!
//! Candidate pairs are never all held: blocking walks its blocks pair by pair, a first pass
//! compares a deterministic sample for EM, a second scores every pair and keeps only the accepted
//! ones (and, when asked, those above a probability floor for the pairs output).
//!
//! The steps live in their own modules (`prepare`, `block`, `estimate`, `score`, `cluster_guard`);
//! this one runs them in order and gathers the metrics.

use super::block::Blocking;
use super::cluster::Split;
use super::cluster_guard;
use super::earlier_decisions::EarlierDecisions;
use super::encode::Dictionary;
use super::estimate;
use super::model::MatchModel;
use super::score::{
    self, LevelCache, Levels, MAX_FIELDS, NULL_LEVEL, Parameters, PreparedTable, ScoredPair, Scorer,
};
use rayon::prelude::*;
use rlibphonenumber::enums::Region;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::time::Instant;

pub use super::input_table::InputTable;

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
    /// Pairs decided against their score by an earlier run's decision (`run_remembering`).
    pub decisions_held: u64,
    /// Splitting full names and putting the rows in id order.
    pub seconds_ordering: f64,
    pub seconds_preparing: f64,
    pub seconds_blocking: f64,
    pub seconds_estimating: f64,
    pub seconds_scoring: f64,
    pub seconds_clustering: f64,
    /// Handing the assignments back in the caller's row order.
    pub seconds_finishing: f64,
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
    /// Pairs (rows, smaller first) an earlier decision decided against their score: accepted
    /// below the threshold, or rejected above it.
    pub held: HashSet<(u32, u32)>,
}

#[cfg(test)]
pub use super::prepare::prepare_table;
use super::prepare::{encode_columns, prepare_fields};

/// Blocks a prepared table, reading raw values through the input's dictionaries.
pub fn block(
    model: &MatchModel,
    table: &PreparedTable,
    raw: &HashMap<String, Dictionary>,
    region: Region,
) -> anyhow::Result<Blocking> {
    Blocking::build(model, table, |name| raw.get(name), region)
}

pub use super::cluster_guard::STRANGERS;

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

/// What the scoring pass collects on each worker.
#[derive(Default)]
struct ScoringOutput {
    accepted: Vec<(u32, u32, f64)>,
    kept: Vec<ScoredPair>,
    per_rule: Vec<u64>,
    /// Pairs an earlier decision decided against their score.
    held: Vec<(u32, u32)>,
}

/// Runs the whole model over a table. The table is taken because the model may rewrite cells for
/// matching (a full name typed into the first-name field is split); the outputs carry only ids.
pub fn run(
    model: &MatchModel,
    input: InputTable,
    region: Region,
    seed: u64,
    keep: KeepPairs,
) -> anyhow::Result<DedupeResult> {
    run_remembering(model, input, region, seed, keep, None)
}

/// [`run`], with an earlier run's decisions held for unchanged pairs near the threshold.
pub fn run_remembering(
    model: &MatchModel,
    mut input: InputTable,
    region: Region,
    seed: u64,
    keep: KeepPairs,
    earlier: Option<&EarlierDecisions<'_>>,
) -> anyhow::Result<DedupeResult> {
    let ordering = Instant::now();
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
    // The same rows in another order must give the same clusters: blocks windowed by sorted
    // neighbourhood, the estimation sample and the guard's splits all read rows in table order,
    // and an API's page order changes from night to night.
    let input_order = input.canonical_order();
    let mut owned_input = match &input_order {
        Some(order) => input.into_permuted(order),
        None => input,
    };
    let seconds_ordering = ordering.elapsed().as_secs_f64();
    let rows = owned_input.rows();
    let mut metrics = DedupeMetrics {
        rows: rows as u64,
        seconds_ordering,
        ..DedupeMetrics::default()
    };
    let started = Instant::now();
    let raw = encode_columns(model, &owned_input.columns);
    // Preparing, blocking and clustering read the dictionaries, which hold each distinct value:
    // the cells (about 1 GB at 10 M rows) go before the fields are prepared, whose values reuse
    // their memory instead of taking fresh pages.
    owned_input.columns = HashMap::new();
    let (table, raw, unknown_country_rows) = prepare_fields(model, raw, rows, region);
    metrics.unknown_country_rows = unknown_country_rows;
    metrics.seconds_preparing = started.elapsed().as_secs_f64();
    let input = &owned_input;

    let started = Instant::now();
    let blocking = block(model, &table, &raw, region)?;
    metrics.seconds_blocking = started.elapsed().as_secs_f64();
    metrics.windowed_blocks = blocking.windowed.len() as u64;
    for (rule, size, row) in blocking.windowed.iter().take(10) {
        tracing::info!(rule = %rule, size, example = %input.ids[*row as usize],
            "Large block compared by sorted neighbourhood");
    }

    let started = Instant::now();
    // Workers take blocks in runs of about equal work, and each keeps its level cache warm across
    // the runs it takes instead of starting a fresh one at every block.
    let runs = blocking.balanced_runs(rayon::current_num_threads() * 64);
    let parameters = estimate::estimate(model, &table, &blocking, &runs, seed);
    let rules = blocking.rule_names().len();
    let fields = table.fields.len();
    metrics.seconds_estimating = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let scorer = Scorer::new(&table, &parameters);
    // The lowest weight any pair needs to be of use: accepted, or kept for the pairs output.
    // Pairs that cannot reach it stop being compared as soon as that is certain.
    let needed = match keep {
        KeepPairs::AtLeast(p) => p.min(model.threshold),
        KeepPairs::Nothing => model.threshold,
    };
    let threshold_weight = score::log2_odds(model.threshold);
    let floor = if needed <= 0.0 {
        f64::NEG_INFINITY
    } else {
        score::log2_odds(needed) - 1e-6
    };
    // A pair an earlier decision may hold is scored in full down to the margin.
    let floor = earlier.map_or(floor, |e| floor.min(threshold_weight - e.margin_bits()));
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
                blocking.for_each_pair(block, &table, |i, j| {
                    generated += 1;
                    let rows = block.len();
                    if scorer
                        .weight_at_least(block.rule, rows, i, j, floor, &mut cache, &mut levels)
                        .is_none()
                    {
                        return;
                    }
                    let weight = scorer.weight_in_rule(block.rule, rows, i, &levels);
                    let probability = score::probability(weight);
                    let scored_in = probability >= model.threshold;
                    let held = earlier.and_then(|e| {
                        e.kept(
                            &input.ids[i as usize],
                            &input.ids[j as usize],
                            weight,
                            threshold_weight,
                        )
                    });
                    if held.is_some_and(|h| h != scored_in) {
                        out.held.push((i.min(j), i.max(j)));
                    }
                    if held.unwrap_or(scored_in) {
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
                a.held.extend(b.held);
                a
            },
        );
    let ScoringOutput {
        mut accepted,
        kept: mut pairs,
        per_rule,
        held,
    } = scored;
    metrics.decisions_held = held.len() as u64;
    pairs.par_sort_unstable_by_key(|p| (p.left, p.right));
    metrics.candidate_pairs = per_rule.iter().sum();
    metrics.pairs_per_rule = blocking
        .rule_names()
        .iter()
        .cloned()
        .zip(per_rule)
        .collect();
    // Blocks and row slots are the largest thing alive (1.4 GB at 10 M rows) and nothing after
    // scoring reads them: clustering and the assignments reuse their memory instead of taking
    // fresh pages from the system.
    let rule_names = blocking.rule_names().to_vec();
    drop(blocking);
    metrics.seconds_scoring = started.elapsed().as_secs_f64();
    metrics.scored_pairs_per_second =
        metrics.candidate_pairs as f64 / metrics.seconds_scoring.max(1e-9);

    let started = Instant::now();
    metrics.accepted_pairs = accepted.len() as u64;
    let identifiers = cluster_guard::identifier_rules(model, &table, &rule_names);
    let clusters =
        cluster_guard::guarded_clusters(model, &scorer, &table, &raw, &identifiers, &mut accepted);
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
    // Nothing below reads the dictionaries or the accepted pairs (about 1 GB at 10 M rows):
    // freed first, their memory holds the assignments, where fresh pages cost a first touch each.
    drop(raw);
    drop(accepted);
    drop(sizes);
    // Assignments go back in the caller's row order; pairs and `ids` stay in the matcher's.
    let started = Instant::now();
    let matcher_row: Vec<usize> = match &input_order {
        Some(order) => {
            let mut inverse = vec![0; rows];
            for (k, &r) in order.iter().enumerate() {
                inverse[r] = k;
            }
            inverse
        }
        None => (0..rows).collect(),
    };
    let assignments: Vec<Assignment> = matcher_row
        .into_par_iter()
        .map(|k| Assignment {
            id: input.ids[k].clone(),
            cluster_id: input.ids[clusters.cluster_of[k] as usize].clone(),
            match_probability: clusters.best_probability[k],
        })
        .collect();
    metrics.seconds_finishing = started.elapsed().as_secs_f64();
    let InputTable { ids, .. } = owned_input;
    Ok(DedupeResult {
        assignments,
        pairs,
        splits: clusters.splits,
        parameters,
        metrics,
        table,
        ids,
        held: held.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests;
