//! Priors: the share of matches among a blocking rule's pairs, which falls with the size of the
//! block a pair comes from, and how crowded blocks bound it.

use super::em::PRIOR_WEIGHT;
use crate::transform::block::Blocking;
use crate::transform::score::{NULL_LEVEL, probability};

/// How far below their estimate under independence of names and place the pairs that share a
/// rule's key by chance may be ([`crate::transform::block::Crowding`]), as a share of it.
const CHANCE_PAIRS_ERROR: f64 = 0.1;

/// The log2 prior odds of a pair from a block of `block_rows` rows, given the rule's odds in a
/// block of two: `log2(k - 1)` bits less in a block of `k`.
///
/// A person has only so many records, so the duplicates inside a block grow with its rows while
/// its pairs grow with their square: of the `k - 1` records a record meets in its block, about
/// the same few are its own whatever `k` is. Two records alone sharing a personal inbox are
/// nearly always one person; thirty sharing `info@` are a team; and a million-row table puts
/// a thousand namesakes where a hundred-thousand-row table put a hundred, so the prior of a pair
/// that shares only a name falls as the table grows, for every kind of key (a term-frequency
/// adjustment of the key itself). Only the level is fitted, per rule ([`estimate_block_prior`]).
pub fn block_prior(odds_in_pair: f64, block_rows: usize) -> f64 {
    odds_in_pair - ((block_rows.max(2) - 1) as f64).log2()
}

/// Fits a rule's log2 prior odds in a block of two ([`block_prior`]) on its sampled own pairs,
/// by EM with m and u held: `pairs` holds each pattern's levels, its block's rows and its count.
/// `start` (log2 odds) is where a rule with few pairs is pulled, as `PRIOR_WEIGHT` pseudo-pairs
/// in blocks of two.
pub fn estimate_block_prior(
    m: &[Vec<f64>],
    u: &[Vec<f64>],
    pairs: &[(Vec<u8>, usize, f64)],
    iterations: usize,
    start: f64,
) -> f64 {
    let ln2 = std::f64::consts::LN_2;
    // Per pattern: the natural-log likelihood ratio of its levels, its block's offset and count.
    let terms: Vec<(f64, f64, f64)> = pairs
        .iter()
        .map(|(levels, rows, count)| {
            let ratio = levels
                .iter()
                .enumerate()
                .filter(|(_, l)| **l != NULL_LEVEL)
                .map(|(f, &l)| (m[f][l as usize] / u[f][l as usize]).ln())
                .sum();
            let offset = -((*rows).max(2) as f64 - 1.0).ln();
            (ratio, offset, *count)
        })
        .collect();
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    let pseudo = sigmoid(start * ln2);
    let mut theta = start * ln2;
    for _ in 0..iterations.max(1) * 5 {
        // E step: each pattern's posterior under the current prior.
        let posterior: Vec<f64> = terms
            .iter()
            .map(|(r, a, _)| sigmoid(theta + a + r))
            .collect();
        let expected: f64 = terms
            .iter()
            .zip(&posterior)
            .map(|((_, _, n), p)| n * p)
            .sum::<f64>()
            + PRIOR_WEIGHT * pseudo;
        // M step: the intercept of a logistic model with the blocks' offsets, whose expected
        // matches equal the posterior's. Monotone in the intercept, so bisection finds it.
        let matches_at = |t: f64| {
            terms
                .iter()
                .map(|(_, a, n)| n * sigmoid(t + a))
                .sum::<f64>()
                + PRIOR_WEIGHT * sigmoid(t)
        };
        let (mut lo, mut hi) = (-60.0f64, 60.0f64);
        for _ in 0..60 {
            let mid = (lo + hi) / 2.0;
            if matches_at(mid) < expected {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let next = (lo + hi) / 2.0;
        let change = (next - theta).abs();
        theta = next;
        if change < 1e-7 {
            break;
        }
    }
    theta / ln2
}

/// The share of matches the block prior `odds_in_pair` gives pairs from blocks of these sizes
/// (each with its count), on average.
pub fn mean_block_prior(odds_in_pair: f64, blocks: impl Iterator<Item = (usize, f64)>) -> f64 {
    let (sum, n) = blocks.fold((0.0, 0.0), |(s, n), (rows, count)| {
        (
            s + count * probability(block_prior(odds_in_pair, rows)),
            n + count,
        )
    });
    if n > 0.0 {
        sum / n
    } else {
        probability(odds_in_pair)
    }
}

/// The most of a rule's own pairs that can be matches, given the pairs chance gives its blocks
/// ([`crate::transform::block::Crowding`]); None for a rule with no such estimate.
pub fn crowding_bound(
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
