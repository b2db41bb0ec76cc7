//! The deduper: a table and a match model in; clusters, scored pairs with explanations and metrics
//! out. Blocking, parameter estimation, scoring (rayon-parallel) and guarded clustering.

use super::block;
use super::cluster::{self, Split};
use super::compare::prepare;
use super::model::MatchModel;
use super::normalize;
use super::score::{self, NULL_LEVEL, Parameters, PreparedTable, ScoredPair};
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
    pub columns: HashMap<String, Vec<Option<String>>>,
}

impl InputTable {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.ids.len()
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

/// Counts and timings of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DedupeMetrics {
    pub rows: u64,
    pub candidate_pairs: u64,
    pub pairs_per_rule: Vec<(String, u64)>,
    pub skipped_blocks: u64,
    pub accepted_pairs: u64,
    pub clusters: u64,
    pub clusters_with_duplicates: u64,
    pub splits: u64,
    pub seconds_blocking: f64,
    pub seconds_estimating: f64,
    pub seconds_scoring: f64,
    pub seconds_clustering: f64,
    pub scored_pairs_per_second: f64,
}

/// Everything a run produced.
pub struct DedupeResult {
    pub assignments: Vec<Assignment>,
    pub pairs: Vec<ScoredPair>,
    pub splits: Vec<Split>,
    pub parameters: Parameters,
    pub metrics: DedupeMetrics,
    pub table: PreparedTable,
    /// Row of each id (for reading pairs back).
    pub ids: Vec<String>,
}

/// Runs the whole model over a table.
pub fn run(model: &MatchModel, input: &InputTable, region: Region, seed: u64) -> DedupeResult {
    let rows = input.rows();
    let mut metrics = DedupeMetrics {
        rows: rows as u64,
        ..DedupeMetrics::default()
    };
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
    let values: Vec<Vec<_>> = fields
        .par_iter()
        .map(|f| {
            input.columns[&f.name]
                .iter()
                .map(|cell| cell.as_deref().and_then(|c| prepare(f.kind, c, region)))
                .collect()
        })
        .collect();
    let swap = model.swappable.as_ref().and_then(|[a, b]| {
        let ia = fields.iter().position(|f| &f.name == a)?;
        let ib = fields.iter().position(|f| &f.name == b)?;
        Some((ia, ib))
    });
    let table = PreparedTable {
        fields,
        values,
        rows,
        swap,
    };

    let started = Instant::now();
    let candidates = block::candidates(
        model,
        rows,
        |name| input.columns.get(name).map(Vec::as_slice),
        region,
    );
    metrics.seconds_blocking = started.elapsed().as_secs_f64();
    metrics.candidate_pairs = candidates.pairs.len() as u64;
    metrics.pairs_per_rule = candidates.per_rule.clone();
    metrics.skipped_blocks = candidates.skipped_blocks.len() as u64;
    for (rule, key, size) in candidates.skipped_blocks.iter().take(10) {
        tracing::warn!(rule = %rule, key = %key.replace('\u{1f}', "|"), size, "Block too large; skipped");
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
    // EM on a sample of candidate pairs (enough to estimate a handful of parameters).
    let step = (candidates.pairs.len() / 300_000).max(1);
    let sample: Vec<Vec<u8>> = candidates
        .pairs
        .par_iter()
        .step_by(step)
        .map(|&(i, j)| table.levels(i, j))
        .collect();
    let (mut m, u, lambda, iterations) = score::estimate_em(
        &table,
        model.em_estimates_u,
        &u,
        &sample,
        model.em_iterations,
    );
    for (f, field) in table.fields.iter().enumerate() {
        if let Some(given) = &field.m {
            m[f] = given.clone();
        }
    }
    let parameters = Parameters {
        m,
        u,
        lambda,
        iterations,
        term_frequency: score::term_frequencies(&table),
    };
    metrics.seconds_estimating = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let pairs: Vec<ScoredPair> = candidates
        .pairs
        .par_iter()
        .map(|&(i, j)| score::score(&table, &parameters, i, j))
        .collect();
    metrics.seconds_scoring = started.elapsed().as_secs_f64();
    metrics.scored_pairs_per_second = pairs.len() as f64 / metrics.seconds_scoring.max(1e-9);

    let started = Instant::now();
    let mut accepted: Vec<(u32, u32, f64)> = pairs
        .iter()
        .filter(|p| p.probability >= model.threshold)
        .map(|p| (p.left, p.right, p.probability))
        .collect();
    metrics.accepted_pairs = accepted.len() as u64;
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
    // Generational suffixes (Jr./Sr./II/III) of each row, read from the raw name fields: a father
    // and son share every other field, so two different suffixes mean two people.
    let generation: Vec<Option<&'static str>> = if model.generational_suffixes {
        let names: Vec<&Vec<Option<String>>> = model
            .swappable
            .iter()
            .flatten()
            .filter_map(|name| input.columns.get(name))
            .collect();
        (0..rows)
            .map(|r| {
                names
                    .iter()
                    .filter_map(|col| col[r].as_deref())
                    .find_map(normalize::generational_suffix)
            })
            .collect()
    } else {
        Vec::new()
    };
    // The guard computes only its own fields (and the name pair, for swapped names).
    let mut guard_fields = vec![false; table.fields.len()];
    for (f, _) in &conflict_fields {
        guard_fields[*f] = true;
    }
    if let Some((fi, li)) = table.swap
        && (guard_fields[fi] || guard_fields[li])
    {
        guard_fields[fi] = true;
        guard_fields[li] = true;
    }
    let clusters = cluster::cluster(rows, &mut accepted, |a, b| {
        if let (Some(Some(x)), Some(Some(y))) =
            (generation.get(a as usize), generation.get(b as usize))
            && x != y
        {
            return Some(format!("generations {x} and {y} differ"));
        }
        if conflict_fields.is_empty() {
            return None;
        }
        let levels = table.levels_of(a, b, Some(&guard_fields));
        let all_conflict = conflict_fields.iter().all(|(f, _)| {
            let l = levels[*f];
            l != NULL_LEVEL && usize::from(l) + 1 == table.fields[*f].kind.levels().len()
        });
        all_conflict.then(|| format!("{rule} differ"))
    });
    metrics.seconds_clustering = started.elapsed().as_secs_f64();
    metrics.splits = clusters.splits.len() as u64;
    let mut sizes: HashMap<u32, u32> = HashMap::new();
    for &c in &clusters.cluster_of {
        *sizes.entry(c).or_default() += 1;
    }
    metrics.clusters = sizes.len() as u64;
    metrics.clusters_with_duplicates = sizes.values().filter(|n| **n > 1).count() as u64;
    let assignments = (0..rows)
        .map(|r| Assignment {
            id: input.ids[r].clone(),
            cluster_id: input.ids[clusters.cluster_of[r] as usize].clone(),
            match_probability: clusters.best_probability[r],
        })
        .collect();
    DedupeResult {
        assignments,
        pairs,
        splits: clusters.splits,
        parameters,
        metrics,
        table,
        ids: input.ids.clone(),
    }
}
