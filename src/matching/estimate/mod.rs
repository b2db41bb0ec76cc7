//! Estimation: the parameters the scorer weighs pairs with. u from random pairs, m and u by EM on
//! a sample of candidate pairs, each blocking rule's prior from its own pairs (bounded by how
//! crowded its blocks are), the rule's own m and u where its key settles some fields, and the
//! term-frequency adjustments of exact matches.

mod em;
mod prior;

pub use em::{LevelPattern, estimate_em, estimate_lambda, estimate_u, level_patterns};
pub use prior::{block_prior, estimate_block_prior, mean_block_prior};

use crate::matching::block::Blocking;
use crate::matching::encode::NULL_CODE;
use crate::matching::model::MatchModel;
use crate::matching::score::{
    LevelCache, Levels, MAX_FIELDS, NULL_LEVEL, Parameters, PreparedTable, RuleParameters,
    log2_odds,
};
use prior::{bounded_level, crowding_bound};
use rayon::prelude::*;
use std::collections::HashMap;
use std::ops::Range;

/// Candidate pairs EM is fitted on, at most (a handful of parameters needs no more).
const EM_SAMPLE: usize = 300_000;

/// A cheap deterministic hash of a pair, for sampling pairs without storing them.
fn pair_hash(i: u32, j: u32) -> u64 {
    ((u64::from(i) << 32) | u64::from(j)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 17
}

/// The parameters of a blocked table: `runs` are the runs of blocks the workers take (as the
/// scoring pass takes them), `seed` fixes the random pairs u is estimated on.
pub fn estimate(
    model: &MatchModel,
    table: &PreparedTable,
    blocking: &Blocking,
    runs: &[Range<usize>],
    seed: u64,
) -> Parameters {
    let given_u = table.fields.iter().all(|f| f.u.is_some());
    let mut u = if given_u {
        Vec::new()
    } else {
        estimate_u(table, model.u_sample_pairs, seed)
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
    let sample: Vec<(usize, bool, Vec<u8>, usize)> = runs
        .par_iter()
        .flat_map_iter(|run| &blocking.blocks[run.clone()])
        .fold(
            || (LevelCache::new(table), Vec::new()),
            |(mut cache, mut out), block| {
                let mut levels: Levels = [NULL_LEVEL; MAX_FIELDS];
                let step = step_per_rule[block.rule];
                if pair_hash(blocking.rows(block)[0], block.len() as u32).is_multiple_of(step) {
                    // A pair an earlier rule brought is compared too: it is not the rule's own
                    // (the share of them tells how many of a rule's block pairs are), but leaving
                    // it out would leave out every duplicate the earlier rules find, and m
                    // would learn that duplicates sharing a name never share a phone.
                    blocking.for_each_pair_marked(block, table, |i, j, earlier| {
                        table.levels_into(i, j, None, &mut cache, &mut levels);
                        out.push((block.rule, earlier, levels[..fields].to_vec(), block.len()));
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
    let patterns = level_patterns(masked_sample.iter().map(|(_, _, l, _)| l.as_slice()));
    let u_random = u;
    let (mut m, u, sample_lambda, iterations) = estimate_em(
        table,
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
            let fitted = estimate_block_prior(
                &m,
                &u,
                &pairs,
                model.em_iterations,
                log2_odds(sample_lambda),
            );
            let share_at =
                |o: f64| mean_block_prior(o, pairs.iter().map(|(_, rows, n)| (*rows, *n)));
            let mean = share_at(fitted);
            let (o, l, b) = match crowding_bound(blocking, &sample, r) {
                Some(most) if mean > most => {
                    let lo = bounded_level(fitted, most, share_at);
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
            let patterns = level_patterns(masked.iter().map(Vec::as_slice));
            let (m, u, _, _) = estimate_em(
                table,
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
        term_frequency: term_frequencies(table),
    };
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
    parameters
}

/// Term-frequency adjustments of exact matches, per value code of each adjusted field. A match on a
/// rare value is stronger evidence than one on a common value: two random records agree on this
/// value with chance share², on some value with chance Σ share², and a true match shows it with
/// chance ∝ share, so the odds scale by Σ share² / share. Shares count values by their match key
/// (an email's key ignores `+tags`), over the records that hold one.
pub fn term_frequencies(table: &PreparedTable) -> Vec<Option<Vec<f64>>> {
    (0..table.fields.len())
        .into_par_iter()
        .map(|field| {
            let values = &table.values[field];
            table.fields[field].term_frequency.then(|| {
                // Each distinct value's match key, numbered: values are hashed once, and the rows
                // are counted into a vector.
                let (key_of, first_of_key) =
                    crate::matching::encode::number_by_first_occurrence(values.len(), |v| {
                        values.get(v)
                    });
                let keys = first_of_key.len();
                let mut per_key = vec![0.0f64; keys];
                for c in table.field_codes(field).filter(|&c| c != NULL_CODE) {
                    per_key[key_of[c as usize] as usize] += 1.0;
                }
                let total: f64 = per_key.iter().sum::<f64>().max(1.0);
                let agree = per_key
                    .iter()
                    .map(|n| (n / total) * (n / total))
                    .sum::<f64>()
                    .max(1e-12);
                key_of
                    .iter()
                    .map(|&k| {
                        let share = per_key[k as usize] / total;
                        if share > 0.0 {
                            (agree / share).log2().clamp(-6.0, 6.0)
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
        })
        .collect()
}
