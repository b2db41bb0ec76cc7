//! Priors: the share of matches among a blocking rule's pairs, which falls with the size of the
//! block a pair comes from, and how crowded blocks bound it.

use super::em::{PRIOR_WEIGHT, log_ratio};
use crate::matching::block::Blocking;
use crate::matching::score::probability;

/// How far below their estimate under independence of names and place the pairs that share a
/// rule's key by chance may be ([`crate::matching::block::Crowding`]), as a share of it; also the
/// lowest the crowding bound goes ([`most_matches`]).
const CHANCE_PAIRS_ERROR: f64 = 0.1;

pub use crate::matching::score::block_prior;

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
            let ratio = log_ratio(m, u, levels);
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
/// ([`crate::matching::block::Crowding`]); None for a rule with no such estimate.
pub fn crowding_bound(
    blocking: &Blocking,
    sample: &[(usize, bool, Vec<u8>, usize)],
    r: usize,
) -> Option<f64> {
    let crowding = blocking.crowding()[r];
    let chance = crowding.chance_pairs?;
    let share = own_share(sample, r);
    let own_pairs = crowding.block_pairs * share;
    let most = most_matches(chance, own_pairs)?;
    tracing::debug!(rule = %blocking.rule_names()[r], most, chance, own_pairs,
        block_pairs = crowding.block_pairs, own_share = share,
        "The most of the rule's own pairs its blocks' crowding allows to be matches");
    Some(most)
}

/// The share of rule `r`'s sampled pairs that no earlier rule brought (1 when none was sampled).
fn own_share(sample: &[(usize, bool, Vec<u8>, usize)], r: usize) -> f64 {
    let (seen, earlier) = sample
        .iter()
        .filter(|(rule, ..)| *rule == r)
        .fold((0usize, 0usize), |(n, e), (_, earlier, ..)| {
            (n + 1, e + usize::from(*earlier))
        });
    if seen == 0 {
        1.0
    } else {
        1.0 - earlier as f64 / seen as f64
    }
}

/// The most of `own_pairs` pairs that can be matches when `chance` of them are expected to share
/// the key by chance; `None` when the rule has no pairs of its own or the estimates give no number
/// (NaN), which leaves the rule unbounded. Names do depend a little on place (and a household
/// shares both), so the chance pairs are taken as known to within CHANCE_PAIRS_ERROR: the most the
/// rule's own pairs can hold of duplicates is what a tenth fewer chance pairs leave. The estimate
/// counts every namesake pair in the rule's blocks, also those an earlier rule brought (a
/// household's phone, a company's inbox), and the own pairs are themselves estimated from a
/// sample, so chance can come out above them. That says the own pairs are all chance, to within
/// the same tenth, so the bound goes no lower than CHANCE_PAIRS_ERROR: a bound of zero left a rule
/// on a surname's sound and a postcode unable to accept any pair in ten million crowded rows.
fn most_matches(chance: f64, own_pairs: f64) -> Option<f64> {
    if own_pairs <= 0.0 {
        return None;
    }
    let most = 1.0 - (1.0 - CHANCE_PAIRS_ERROR) * chance / own_pairs;
    (!most.is_nan()).then(|| most.clamp(CHANCE_PAIRS_ERROR, 1.0 - 1e-6))
}

/// The highest level (log2 odds in a block of two) at most `fitted` whose share of matches,
/// `share_at(level)`, is no more than `most`: a prior lowered until the rule's pairs hold no more
/// matches than the crowding of its blocks leaves room for. Bisection, as the share rises with
/// the level.
pub fn bounded_level(fitted: f64, most: f64, share_at: impl Fn(f64) -> f64) -> f64 {
    let (mut lo, mut hi) = (-60.0f64, fitted);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if share_at(mid) > most {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::score::log2_odds;

    #[test]
    fn a_block_of_k_rows_costs_log2_k_minus_1_bits() {
        assert_eq!(block_prior(3.0, 2), 3.0);
        assert_eq!(block_prior(3.0, 5), 1.0, "3 - log2(4)");
        assert_eq!(block_prior(3.0, 1), 3.0, "a block of one counts as two");
    }

    #[test]
    fn the_mean_prior_averages_the_blocks_by_their_pair_counts() {
        // Level 0: p = 1/2 in a block of two; in a block of three 1 bit less, odds 1/2, p = 1/3.
        let mean = mean_block_prior(0.0, [(2, 1.0), (3, 1.0)].into_iter());
        assert!((mean - 5.0 / 12.0).abs() < 1e-12, "{mean}");
        let weighted = mean_block_prior(0.0, [(2, 3.0), (3, 1.0)].into_iter());
        assert!((weighted - (3.0 * 0.5 + 1.0 / 3.0) / 4.0).abs() < 1e-12);
        // No blocks: the level's own share, odds 2 → 2/3.
        assert!((mean_block_prior(1.0, std::iter::empty()) - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_block_prior_fitted_on_decisive_pairs_counts_them_with_its_pseudo_pairs() {
        // One field whose levels decide: agreement only among matches, disagreement only among
        // non-matches. 40 agreeing and 30 disagreeing pairs in blocks of two, pulled towards
        // start 0 (share 1/2) by 30 pseudo-pairs: share (40 + 15) / (70 + 30) = 0.55.
        let (m, u) = (vec![vec![1.0, 0.0]], vec![vec![0.0, 1.0]]);
        let pairs = vec![(vec![0u8], 2usize, 40.0), (vec![1u8], 2usize, 30.0)];
        let fitted = estimate_block_prior(&m, &u, &pairs, 10, 0.0);
        assert!((fitted - (0.55f64 / 0.45).log2()).abs() < 1e-6, "{fitted}");
    }

    #[test]
    fn without_evidence_a_block_prior_stays_where_it_started() {
        // m = u: no pair says anything, whatever its block's size.
        let (m, u) = (vec![vec![0.5, 0.5]], vec![vec![0.5, 0.5]]);
        let pairs = vec![(vec![0u8], 5usize, 40.0), (vec![1u8], 2usize, 30.0)];
        let fitted = estimate_block_prior(&m, &u, &pairs, 10, -3.0);
        assert!((fitted + 3.0).abs() < 1e-6, "{fitted}");
        assert!((estimate_block_prior(&m, &u, &[], 10, 1.5) - 1.5).abs() < 1e-9);
    }

    #[test]
    fn the_crowding_bound_leaves_room_for_a_tenth_fewer_chance_pairs() {
        // 200 own pairs of which 50 are namesakes by chance: at most 1 - 0.9 × 50 / 200.
        assert_eq!(most_matches(50.0, 200.0), Some(1.0 - 0.9 * 0.25));
        // As many chance pairs as own pairs, or more: all chance, to within a tenth.
        for chance in [200.0, 210.0, 300.0] {
            let most = most_matches(chance, 200.0).expect("own pairs");
            assert!((most - 0.1).abs() < 1e-12, "{chance}: {most}");
        }
        // Just under: what a tenth fewer chance pairs leave, above the floor.
        let most = most_matches(190.0, 200.0).expect("own pairs");
        assert!((most - (1.0 - 0.9 * 0.95)).abs() < 1e-12, "{most}");
        assert_eq!(
            most_matches(0.0, 200.0),
            Some(1.0 - 1e-6),
            "no chance pairs"
        );
        assert_eq!(most_matches(50.0, 0.0), None);
        assert_eq!(most_matches(f64::NAN, 200.0), None);
        assert_eq!(most_matches(f64::INFINITY, f64::INFINITY), None);
    }

    #[test]
    fn a_rules_own_pairs_are_those_no_earlier_rule_brought() {
        let pair = |rule: usize, earlier: bool| (rule, earlier, vec![0u8], 2usize);
        let sample = [pair(0, false), pair(0, true), pair(0, false), pair(1, true)];
        assert!((own_share(&sample, 0) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(own_share(&sample, 1), 0.0);
        assert_eq!(own_share(&sample, 2), 1.0, "nothing sampled: all its own");
    }

    #[test]
    fn a_bounded_prior_is_the_level_whose_share_meets_the_bound() {
        // Blocks of two: the share at level w is probability(w); 0.2 is odds 1/4, level -2.
        let level = bounded_level(5.0, 0.2, probability);
        assert!((level - log2_odds(0.2)).abs() < 1e-9, "{level}");
        assert!((level + 2.0).abs() < 1e-9);
    }
}
