//! Fellegi-Sunter scoring: u from random pairs, m by expectation-maximisation over the candidate
//! pairs (no labels needed), term-frequency adjusted exact matches, match weights and
//! probabilities, and the per-field explanation of every score.

use super::compare::{Prepared, level};
use super::model::{FieldKind, FieldModel};
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;
use std::collections::HashMap;

/// A level code for "one side is empty": contributes no evidence.
pub const NULL_LEVEL: u8 = u8::MAX;

/// Prepared values of every compared field, column by column.
pub struct PreparedTable {
    pub fields: Vec<FieldModel>,
    /// `values[field][row]`.
    pub values: Vec<Vec<Option<Prepared>>>,
    pub rows: usize,
    /// Indexes of the two swappable fields, if any.
    pub swap: Option<(usize, usize)>,
}

impl PreparedTable {
    /// Levels of a pair, field by field (swapped names count as a near match on both).
    pub fn levels(&self, i: u32, j: u32) -> Vec<u8> {
        self.levels_of(i, j, None)
    }

    /// Levels of the fields `wanted` says (all when `None`; the others are `NULL_LEVEL`). The
    /// swapped-names check runs when both name fields are computed. The cluster guard needs one
    /// or two fields for many pairs, so it does not pay for string comparisons it ignores.
    pub fn levels_of(&self, i: u32, j: u32, wanted: Option<&[bool]>) -> Vec<u8> {
        let mut out: Vec<u8> = self
            .fields
            .iter()
            .zip(&self.values)
            .enumerate()
            .map(|(f, (field, col))| {
                if wanted.is_some_and(|w| !w[f]) {
                    return NULL_LEVEL;
                }
                match (&col[i as usize], &col[j as usize]) {
                    (Some(a), Some(b)) => level(field.kind, a, b),
                    _ => NULL_LEVEL,
                }
            })
            .collect();
        if let Some((fi, li)) = self.swap
            && wanted.is_none_or(|w| w[fi] && w[li])
        {
            let v = &self.values;
            if let (Some(fa), Some(la), Some(fb), Some(lb)) = (
                &v[fi][i as usize],
                &v[li][i as usize],
                &v[fi][j as usize],
                &v[li][j as usize],
            ) {
                let straight = u16::from(out[fi]) + u16::from(out[li]);
                // Either record may be the swapped one, so each cross comparison accepts what a
                // given name (nicknames: "Turner, William" vs "Bill Turner") or a family name
                // (one typo) would.
                let close = |x: &Prepared, y: &Prepared| {
                    level(FieldKind::GivenName, x, y) <= 2
                        || level(FieldKind::FamilyName, x, y) <= 1
                };
                if close(fa, lb) && close(la, fb) && straight > 2 {
                    out[fi] = 1;
                    out[li] = 1;
                }
            }
        }
        out
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
    /// EM iterations run.
    pub iterations: usize,
    #[serde(skip)]
    /// Per field with term-frequency adjustment: value → share of records holding it, and the
    /// chance that two random records agree exactly (the sum of squared shares).
    pub term_frequency: Vec<Option<(HashMap<String, f64>, f64)>>,
}

/// A scored pair with its explanation.
#[derive(Debug, Clone)]
pub struct ScoredPair {
    pub left: u32,
    pub right: u32,
    pub weight: f64,
    pub probability: f64,
    pub levels: Vec<u8>,
    /// log2(m/u) each field added.
    pub field_weights: Vec<f64>,
}

/// Estimates u by comparing random pairs (almost all of which are non-matches).
pub fn estimate_u(table: &PreparedTable, samples: usize, seed: u64) -> Vec<Vec<f64>> {
    let n = table.rows;
    let mut counts: Vec<Vec<f64>> = table
        .fields
        .iter()
        .map(|f| vec![1.0; f.kind.levels().len()])
        .collect();
    if n >= 2 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..samples {
            let i = rng.random_range(0..n) as u32;
            let mut j = rng.random_range(0..n) as u32;
            if i == j {
                j = (j + 1) % n as u32;
            }
            for (f, l) in table.levels(i, j).into_iter().enumerate() {
                if l != NULL_LEVEL {
                    counts[f][l as usize] += 1.0;
                }
            }
        }
    }
    normalise(counts)
}

fn normalise(counts: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    counts
        .into_iter()
        .map(|c| {
            let total: f64 = c.iter().sum();
            c.into_iter().map(|x| (x / total).max(1e-9)).collect()
        })
        .collect()
}

/// Prior m per comparison kind: how true duplicates of contact data usually compare. It seeds EM
/// and, as pseudo-counts, keeps small tables from dragging the estimate anywhere.
fn prior_m(kind: FieldKind) -> Vec<f64> {
    match kind {
        FieldKind::GivenName => vec![0.72, 0.08, 0.08, 0.06, 0.06],
        FieldKind::FamilyName => vec![0.85, 0.08, 0.03, 0.04],
        FieldKind::Email => vec![0.5, 0.15, 0.05, 0.3],
        FieldKind::Phone => vec![0.75, 0.05, 0.2],
        FieldKind::Text => vec![0.7, 0.1, 0.2],
        FieldKind::Code => vec![0.85, 0.1, 0.05],
        FieldKind::Date => vec![0.85, 0.08, 0.04, 0.03],
        FieldKind::Exact => vec![0.9, 0.1],
    }
}

/// Pseudo-pairs the priors count as (per class).
const PRIOR_WEIGHT: f64 = 30.0;

/// Estimates m, u and the match share among candidate pairs by expectation-maximisation (no labels
/// needed). Both classes are fitted: candidate pairs are not random pairs (blocking made them agree
/// on something), so u must describe the non-matches *among candidates*; the random-pair u only
/// seeds it. Fields whose u the model fixes keep it.
pub fn estimate_em(
    table: &PreparedTable,
    estimate_u: bool,
    u_random: &[Vec<f64>],
    level_rows: &[Vec<u8>],
    iterations: usize,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, f64, usize) {
    let m_prior: Vec<Vec<f64>> = table.fields.iter().map(|f| prior_m(f.kind)).collect();
    // An m given in the model is held fixed while EM runs: it anchors the latent "match" class
    // to what a duplicate is (e.g. the same first name), so EM cannot settle on "same household".
    let given_m: Vec<Option<Vec<f64>>> = table.fields.iter().map(|f| f.m.clone()).collect();
    let mut m: Vec<Vec<f64>> = m_prior
        .iter()
        .zip(&given_m)
        .map(|(prior, given)| given.clone().unwrap_or_else(|| prior.clone()))
        .collect();
    let mut u: Vec<Vec<f64>> = u_random.to_vec();
    let fixed_u: Vec<bool> = table
        .fields
        .iter()
        .map(|f| !estimate_u || f.u.is_some())
        .collect();
    let mut lambda: f64 = 0.1;
    let mut done = 0;
    let shape: Vec<usize> = m.iter().map(Vec::len).collect();
    let zero = || shape.iter().map(|n| vec![0.0; *n]).collect::<Vec<_>>();
    for _ in 0..iterations {
        done += 1;
        let (m_sums, u_sums, total_p) = level_rows
            .par_iter()
            .fold(
                || (zero(), zero(), 0.0),
                |(mut am, mut au, mut tp), levels| {
                    let mut log_m = lambda.ln();
                    let mut log_u = (1.0 - lambda).ln();
                    for (f, &l) in levels.iter().enumerate() {
                        if l != NULL_LEVEL {
                            log_m += m[f][l as usize].ln();
                            log_u += u[f][l as usize].ln();
                        }
                    }
                    let p = 1.0 / (1.0 + (log_u - log_m).exp());
                    for (f, &l) in levels.iter().enumerate() {
                        if l != NULL_LEVEL {
                            am[f][l as usize] += p;
                            au[f][l as usize] += 1.0 - p;
                        }
                    }
                    tp += p;
                    (am, au, tp)
                },
            )
            .reduce(
                || (zero(), zero(), 0.0),
                |(mut am, mut au, ta), (bm, bu, tb)| {
                    for (ra, rb) in am.iter_mut().zip(bm).chain(au.iter_mut().zip(bu)) {
                        for (x, y) in ra.iter_mut().zip(rb) {
                            *x += y;
                        }
                    }
                    (am, au, ta + tb)
                },
            );
        let norm = |rows: Vec<Vec<f64>>| -> Vec<Vec<f64>> {
            rows.into_iter()
                .map(|row| {
                    let total: f64 = row.iter().sum::<f64>().max(1e-12);
                    row.into_iter().map(|x| (x / total).max(1e-6)).collect()
                })
                .collect()
        };
        let with_prior = |sums: Vec<Vec<f64>>, prior: &[Vec<f64>]| -> Vec<Vec<f64>> {
            sums.into_iter()
                .zip(prior)
                .map(|(row, p)| {
                    row.iter()
                        .zip(p)
                        .map(|(x, q)| x + PRIOR_WEIGHT * q)
                        .collect()
                })
                .collect()
        };
        let mut new_m = norm(with_prior(m_sums, &m_prior));
        for (f, given) in given_m.iter().enumerate() {
            if let Some(given) = given {
                new_m[f] = given.clone();
            }
        }
        let mut new_u = norm(with_prior(u_sums, u_random));
        // Blocking only makes non-matches agree more often than random pairs, never less: an
        // agreement level's u among candidates is floored at its random-pair u, or EM can drive
        // it to zero and turn one shared postcode into proof.
        for (row, random) in new_u.iter_mut().zip(u_random) {
            let last = row.len() - 1;
            for (x, r) in row[..last].iter_mut().zip(random) {
                *x = x.max(*r);
            }
            let agree: f64 = row[..last].iter().sum();
            row[last] = (1.0 - agree).max(1e-6);
        }
        for (f, fixed) in fixed_u.iter().enumerate() {
            if *fixed {
                new_u[f] = u[f].clone();
            }
        }
        let new_lambda = ((total_p + PRIOR_WEIGHT * 0.1)
            / (level_rows.len() as f64 + PRIOR_WEIGHT))
            .clamp(1e-6, 1.0 - 1e-6);
        let change = (new_lambda - lambda).abs()
            + new_m
                .iter()
                .zip(&m)
                .chain(new_u.iter().zip(&u))
                .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
                .sum::<f64>();
        m = new_m;
        u = new_u;
        lambda = new_lambda;
        if change < 1e-7 {
            break;
        }
    }
    (m, u, lambda, done)
}

/// Share of records holding each value of the term-frequency fields.
pub fn term_frequencies(table: &PreparedTable) -> Vec<Option<(HashMap<String, f64>, f64)>> {
    table
        .fields
        .iter()
        .zip(&table.values)
        .map(|(f, col)| {
            f.term_frequency.then(|| {
                let mut counts: HashMap<String, f64> = HashMap::new();
                for v in col.iter().flatten() {
                    *counts.entry(v.key().to_string()).or_default() += 1.0;
                }
                let n: f64 = counts.values().sum::<f64>().max(1.0);
                counts.values_mut().for_each(|c| *c /= n);
                let agree = counts.values().map(|s| s * s).sum::<f64>().max(1e-12);
                (counts, agree)
            })
        })
        .collect()
}

/// Scores one pair.
pub fn score(table: &PreparedTable, params: &Parameters, i: u32, j: u32) -> ScoredPair {
    let levels = table.levels(i, j);
    let mut weight = (params.lambda / (1.0 - params.lambda)).log2();
    let mut field_weights = Vec::with_capacity(levels.len());
    for (f, &l) in levels.iter().enumerate() {
        if l == NULL_LEVEL {
            field_weights.push(0.0);
            continue;
        }
        let m = params.m[f][l as usize];
        let u = params.u[f][l as usize];
        let mut w = (m / u).log2();
        if l == 0
            && let Some((shares, agree)) = &params.term_frequency[f]
            && let Some(value) = &table.values[f][i as usize]
            && let Some(share) = shares.get(value.key())
        {
            // A match on a rare value is stronger evidence than one on a common value: two random
            // records agree on this value with chance share², on some value with chance Σ share²,
            // and a true match shows it with chance ∝ share, so the odds scale by Σ share² / share.
            w += (agree / share).log2().clamp(-6.0, 6.0);
        }
        weight += w;
        field_weights.push(w);
    }
    ScoredPair {
        left: i,
        right: j,
        weight,
        probability: 1.0 / (1.0 + (-weight).exp2()),
        levels,
        field_weights,
    }
}
