//! Expectation-maximisation of the Fellegi-Sunter parameters: u from random pairs, then m, u and
//! the share of matches among sampled candidate pairs, fitted together without labels.

use crate::matching::model::FieldKind;
use crate::matching::score::{LevelCache, MAX_FIELDS, NULL_LEVEL, PreparedTable};
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;
use rustc_hash::FxHashMap;

/// Estimates u by comparing random pairs (almost all of which are non-matches).
pub fn estimate_u(table: &PreparedTable, samples: usize, seed: u64) -> Vec<Vec<f64>> {
    let n = table.rows;
    let mut counts: Vec<Vec<f64>> = table
        .fields
        .iter()
        .map(|f| vec![1.0; f.kind.levels().len()])
        .collect();
    if n >= 2 {
        // Pairs are drawn in sequence (the seed fixes them) and compared in parallel; counts are
        // whole numbers, so their sum does not depend on the order.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let pairs: Vec<(u32, u32)> = (0..samples)
            .map(|_| {
                let i = rng.random_range(0..n) as u32;
                let mut j = rng.random_range(0..n) as u32;
                if i == j {
                    j = (j + 1) % n as u32;
                }
                (i, j)
            })
            .collect();
        let zeros: Vec<Vec<f64>> = counts.iter().map(|r| vec![0.0; r.len()]).collect();
        let sampled = pairs
            .par_iter()
            .fold(
                || (LevelCache::new(table), zeros.clone()),
                |(mut cache, mut counts), &(i, j)| {
                    let mut levels = [NULL_LEVEL; MAX_FIELDS];
                    table.levels_into(i, j, None, &mut cache, &mut levels);
                    for (f, &l) in levels.iter().take(table.fields.len()).enumerate() {
                        if l != NULL_LEVEL {
                            counts[f][l as usize] += 1.0;
                        }
                    }
                    (cache, counts)
                },
            )
            .map(|(_, c)| c)
            .reduce(
                || zeros.clone(),
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(b) {
                        for (p, q) in x.iter_mut().zip(y) {
                            *p += q;
                        }
                    }
                    a
                },
            );
        for (x, y) in counts.iter_mut().zip(sampled) {
            for (p, q) in x.iter_mut().zip(y) {
                *p += q;
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
pub(super) const PRIOR_WEIGHT: f64 = 30.0;

/// Estimates m, u and the match share among candidate pairs by expectation-maximisation (no labels
/// needed). Both classes are fitted: candidate pairs are not random pairs (blocking made them agree
/// on something), so u must describe the non-matches *among candidates*; the random-pair u only
/// seeds it. Fields whose u the model fixes keep it.
pub fn estimate_em(
    table: &PreparedTable,
    estimate_u: bool,
    u_random: &[Vec<f64>],
    patterns: &[LevelPattern],
    iterations: usize,
    held_lambda: Option<f64>,
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
    let mut lambda: f64 = held_lambda.unwrap_or(0.1);
    let mut done = 0;
    let shape: Vec<usize> = m.iter().map(Vec::len).collect();
    let zero = || shape.iter().map(|n| vec![0.0; *n]).collect::<Vec<_>>();
    for _ in 0..iterations {
        done += 1;
        // E step over the distinct level patterns (a few thousand however many pairs were
        // sampled), with the logs of m and u taken once per iteration.
        let log_m: Vec<Vec<f64>> = m
            .iter()
            .map(|r| r.iter().map(|x| x.ln()).collect())
            .collect();
        let log_u: Vec<Vec<f64>> = u
            .iter()
            .map(|r| r.iter().map(|x| x.ln()).collect())
            .collect();
        let (mut m_sums, mut u_sums, mut total_p) = (zero(), zero(), 0.0);
        for (levels, count) in patterns {
            let mut lm = lambda.ln();
            let mut lu = (1.0 - lambda).ln();
            for (f, &l) in levels.iter().enumerate() {
                if l != NULL_LEVEL {
                    lm += log_m[f][l as usize];
                    lu += log_u[f][l as usize];
                }
            }
            let p = 1.0 / (1.0 + (lu - lm).exp());
            for (f, &l) in levels.iter().enumerate() {
                if l != NULL_LEVEL {
                    m_sums[f][l as usize] += p * count;
                    u_sums[f][l as usize] += (1.0 - p) * count;
                }
            }
            total_p += p * count;
        }
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
        let pairs: f64 = patterns.iter().map(|(_, n)| n).sum();
        let new_lambda = held_lambda.unwrap_or_else(|| {
            ((total_p + PRIOR_WEIGHT * 0.1) / (pairs + PRIOR_WEIGHT)).clamp(1e-6, 1.0 - 1e-6)
        });
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

/// The natural-log likelihood ratio m/u of a pair with these levels (null levels say nothing).
pub(super) fn log_ratio(m: &[Vec<f64>], u: &[Vec<f64>], levels: &[u8]) -> f64 {
    levels
        .iter()
        .enumerate()
        .filter(|(_, l)| **l != NULL_LEVEL)
        .map(|(f, &l)| (m[f][l as usize] / u[f][l as usize]).ln())
        .sum()
}

/// The share of matches among candidate pairs, by EM with m and u held. `prior` is where a small
/// sample is pulled (as `PRIOR_WEIGHT` pseudo-pairs): a rule that generated ten pairs says little
/// about its own match share.
pub fn estimate_lambda(
    m: &[Vec<f64>],
    u: &[Vec<f64>],
    patterns: &[LevelPattern],
    iterations: usize,
    prior: f64,
) -> f64 {
    // Each pattern's log likelihood ratio does not change while lambda does.
    let ratios: Vec<(f64, f64)> = patterns
        .iter()
        .map(|(levels, count)| (log_ratio(m, u, levels), *count))
        .collect();
    let pairs: f64 = ratios.iter().map(|(_, n)| n).sum();
    let mut lambda: f64 = prior;
    for _ in 0..iterations.max(1) * 5 {
        let odds = (lambda / (1.0 - lambda)).ln();
        let total: f64 = ratios
            .iter()
            .map(|(r, n)| n / (1.0 + (-(odds + r)).exp()))
            .sum();
        let next =
            ((total + PRIOR_WEIGHT * prior) / (pairs + PRIOR_WEIGHT)).clamp(1e-6, 1.0 - 1e-6);
        let change = (next - lambda).abs();
        lambda = next;
        if change < 1e-9 {
            break;
        }
    }
    lambda
}

/// A level pattern (one level per field) and how many sampled pairs showed it.
pub type LevelPattern = (Vec<u8>, f64);

/// Counts the distinct level patterns among sampled pairs, in a fixed order (so EM sums the same
/// numbers in the same order on every run).
pub fn level_patterns<'a>(rows: impl Iterator<Item = &'a [u8]>) -> Vec<LevelPattern> {
    let mut counts: FxHashMap<&[u8], f64> = FxHashMap::default();
    for levels in rows {
        *counts.entry(levels).or_default() += 1.0;
    }
    let mut patterns: Vec<LevelPattern> =
        counts.into_iter().map(|(l, n)| (l.to_vec(), n)).collect();
    patterns.sort_by(|a, b| a.0.cmp(&b.0));
    patterns
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::dedupe::{InputTable, prepare_table};
    use crate::matching::model::MatchModel;
    use rlibphonenumber::enums::Region;
    use std::collections::HashMap;

    /// A table of one exact-match field `x` with these cells; `m` fixes the field's m (set on the
    /// prepared field, as a model file may not hold the 0 that makes a level decisive).
    fn one_field_table(cells: &[&str], m: Option<[f64; 2]>) -> PreparedTable {
        let model = MatchModel::from_toml(
            "id_column = \"id\"\nthreshold = 0.9\n\n[[blocking]]\nname = \"x\"\nkeys = [\"x\"]\n\n\
             [[fields]]\nname = \"x\"\nkind = \"exact\"\n",
            "test",
        )
        .expect("model");
        let input = InputTable {
            ids: (0..cells.len()).map(|i| format!("r{i}")).collect(),
            columns: HashMap::from([("x".to_string(), cells.iter().map(|c| Some(*c)).collect())]),
        };
        let mut table = prepare_table(&model, &input, Region::US).0;
        table.fields[0].m = m.map(Vec::from);
        table
    }

    #[test]
    fn level_patterns_are_counted_and_sorted() {
        let rows: [&[u8]; 4] = [&[1, 0], &[0, 1], &[0, 1], &[1, 0]];
        let mut more = rows.to_vec();
        more.push(&[0, 0]);
        assert_eq!(
            level_patterns(more.into_iter()),
            vec![(vec![0, 0], 1.0), (vec![0, 1], 2.0), (vec![1, 0], 2.0)]
        );
    }

    #[test]
    fn u_of_two_equal_records_is_their_agreement_with_one_pseudo_count_per_level() {
        // Two rows: every random pair is the pair of them, and they agree; 98 samples plus one
        // pseudo-count on each level give u = (99, 1) / 100.
        let table = one_field_table(&["a", "a"], None);
        let u = estimate_u(&table, 98, 7);
        assert_eq!(u.len(), 1);
        assert!((u[0][0] - 0.99).abs() < 1e-12, "{:?}", u[0]);
        assert!((u[0][1] - 0.01).abs() < 1e-12, "{:?}", u[0]);
    }

    #[test]
    fn with_m_and_u_decisive_em_finds_the_match_share_with_its_pseudo_pairs() {
        // m and u held and decisive: the 40 agreeing pairs are matches, the 30 others are not.
        // The share is pulled towards 0.1 by 30 pseudo-pairs: (40 + 3) / (70 + 30) = 0.43,
        // reached in one step and confirmed by the second.
        let table = one_field_table(&["a", "b"], Some([1.0, 0.0]));
        let patterns = vec![(vec![0u8], 40.0), (vec![1u8], 30.0)];
        let u_random = vec![vec![0.0, 1.0]];
        let (m, u, lambda, iterations) = estimate_em(&table, false, &u_random, &patterns, 50, None);
        assert!((lambda - 0.43).abs() < 1e-12, "{lambda}");
        assert_eq!(iterations, 2);
        assert_eq!(m, vec![vec![1.0, 0.0]], "a given m is held");
        assert_eq!(u, u_random, "u held when not estimated");
        // estimate_lambda is the same fixed point with m and u given.
        let alone = estimate_lambda(&m, &u, &patterns, 10, 0.1);
        assert!((alone - 0.43).abs() < 1e-12, "{alone}");
    }

    #[test]
    fn a_held_share_is_not_estimated() {
        let table = one_field_table(&["a", "b"], Some([1.0, 0.0]));
        let patterns = vec![(vec![0u8], 40.0), (vec![1u8], 30.0)];
        let (_, _, lambda, _) =
            estimate_em(&table, false, &[vec![0.0, 1.0]], &patterns, 50, Some(0.25));
        assert_eq!(lambda, 0.25);
    }

    #[test]
    fn candidates_never_agree_less_often_than_random_pairs() {
        // Every sampled candidate pair disagrees, so EM would drive u's agreement towards 0; it
        // is floored at the random pairs' 0.3, and "different" takes the rest.
        let table = one_field_table(&["a", "b"], None);
        let patterns = vec![(vec![1u8], 500.0)];
        let (_, u, _, _) = estimate_em(&table, true, &[vec![0.3, 0.7]], &patterns, 50, None);
        assert!((u[0][0] - 0.3).abs() < 1e-12, "{:?}", u[0]);
        assert!((u[0][1] - 0.7).abs() < 1e-12, "{:?}", u[0]);
    }

    #[test]
    fn without_pairs_the_share_is_its_prior() {
        let (m, u) = (vec![vec![0.9, 0.1]], vec![vec![0.2, 0.8]]);
        assert!((estimate_lambda(&m, &u, &[], 10, 0.05) - 0.05).abs() < 1e-12);
    }
}
