//! Tests of scoring on a hand-built two-field table: weights, priors, the bounded score.

use super::*;
use crate::matching::dedupe::{InputTable, prepare_table};
use crate::matching::model::MatchModel;
use rlibphonenumber::enums::Region;
use std::collections::HashMap;

/// A prepared table of the fields `(name, kind)` with these rows ("" is an empty cell).
fn table(fields: &[(&str, &str)], rows: &[&[&str]]) -> PreparedTable {
    let mut toml = String::from(
        "id_column = \"id\"\nthreshold = 0.9\n\n[[blocking]]\nname = \"b\"\nkeys = [\"x\"]\n",
    );
    for (name, kind) in fields {
        toml.push_str(&format!(
            "\n[[fields]]\nname = \"{name}\"\nkind = \"{kind}\"\n"
        ));
    }
    let model = MatchModel::from_toml(&toml, "test").expect("model");
    let input = InputTable {
        ids: (0..rows.len()).map(|i| format!("r{i}")).collect(),
        columns: fields
            .iter()
            .enumerate()
            .map(|(c, (name, _))| {
                let cells = rows
                    .iter()
                    .map(|r| (!r[c].is_empty()).then_some(r[c]))
                    .collect();
                (name.to_string(), cells)
            })
            .collect::<HashMap<_, _>>(),
    };
    prepare_table(&model, &input, Region::US).0
}

/// Two exact fields: x with m/u = 0.9/0.1 (agreeing: 9, log2 ≈ 3.17 bits) and y with 0.8/0.2
/// (agreeing: 4, 2 bits; differing: 0.2/0.8 = 1/4, -2 bits). Prior share 1/2: 0 bits.
fn parameters(fields: usize) -> Parameters {
    Parameters {
        m: vec![vec![0.9, 0.1], vec![0.8, 0.2]],
        u: vec![vec![0.1, 0.9], vec![0.2, 0.8]],
        lambda: 0.5,
        lambda_per_rule: vec![],
        block_prior_per_rule: vec![],
        per_rule: vec![],
        iterations: 0,
        term_frequency: vec![None; fields],
    }
}

fn xy_table() -> PreparedTable {
    table(
        &[("x", "exact"), ("y", "exact")],
        &[&["a", "p"], &["a", "q"], &["b", ""]],
    )
}

#[test]
fn probabilities_and_log2_odds_are_inverse() {
    assert_eq!(log2_odds(0.5), 0.0);
    assert!((probability(3.0) - 8.0 / 9.0).abs() < 1e-12);
    assert!((probability(log2_odds(0.8)) - 0.8).abs() < 1e-12);
    assert!((log2_odds(probability(-2.5)) + 2.5).abs() < 1e-12);
}

#[test]
fn a_pair_weighs_the_log2_ratio_of_its_levels_and_an_empty_side_nothing() {
    let table = xy_table();
    let params = parameters(2);
    let scorer = Scorer::new(&table, &params);
    let mut cache = LevelCache::new(&table);
    // r0/r1: x agrees (odds × 9), y differs (× 1/4): odds 9/4, probability 9/13.
    let pair = scorer.score(0, 1, &mut cache);
    assert_eq!(&*pair.levels, &[0, 1]);
    assert!((pair.weight - (9.0f64 / 4.0).log2()).abs() < 1e-12);
    assert!((pair.probability - 9.0 / 13.0).abs() < 1e-12);
    assert_eq!(pair.prior, 0.0);
    // r0/r2: x differs (× 1/9), y empty on r2 (no evidence): probability 1/10.
    let pair = scorer.score(0, 2, &mut cache);
    assert_eq!(pair.levels[1], NULL_LEVEL);
    assert!((pair.probability - 0.1).abs() < 1e-12);
    // The explanation is the same weights, field by field.
    let weights = scorer.field_weights(&pair);
    assert!((weights[0] - (1.0f64 / 9.0).log2()).abs() < 1e-12);
    assert_eq!(weights[1], 0.0);
}

#[test]
fn a_rule_scores_with_its_block_prior_and_its_settled_fields_add_nothing() {
    let table = xy_table();
    let mut params = parameters(2);
    // Rule 0: 1 bit in a block of two, 1 - log2(2) = 0 bits in a block of three; its key
    // settles x, so x's agreement adds nothing (the prior holds it).
    params.block_prior_per_rule = vec![1.0];
    params.per_rule = vec![Some(RuleParameters {
        m: params.m.clone(),
        u: params.u.clone(),
        settled: vec![true, false],
    })];
    let scorer = Scorer::new(&table, &params);
    assert_eq!(scorer.prior_of(0, 2), 1.0);
    assert_eq!(scorer.prior_of(0, 3), 0.0);
    assert_eq!(
        scorer.prior_of(1, 2),
        0.0,
        "a rule without a prior: the overall one"
    );
    assert!((scorer.weight_in_rule(0, 2, 0, &[0, 1]) - (1.0 - 2.0)).abs() < 1e-12);
    assert!((scorer.weight_in_rule(0, 3, 0, &[0, 0]) - 2.0).abs() < 1e-12);
}

#[test]
fn a_bounded_score_stops_only_when_the_floor_is_out_of_reach() {
    let table = xy_table();
    let mut params = parameters(2);
    params.block_prior_per_rule = vec![1.0];
    params.per_rule = vec![None];
    let scorer = Scorer::new(&table, &params);
    let mut cache = LevelCache::new(&table);
    let mut levels = [NULL_LEVEL; MAX_FIELDS];
    // r0/r1 in a block of two: 1 + log2(9) - 2 bits; the most any pair can reach is
    // 1 + log2(9) + 2 ≈ 6.17 bits.
    let want = 1.0 + 9f64.log2() - 2.0;
    let got = scorer.weight_at_least(0, 2, 0, 1, want - 0.01, &mut cache, &mut levels);
    assert!((got.expect("reachable") - want).abs() < 1e-12);
    assert_eq!(&levels[..2], &[0, 1]);
    assert_eq!(
        scorer.weight_at_least(0, 2, 0, 1, want + 0.01, &mut cache, &mut levels),
        None
    );
    assert_eq!(
        scorer.weight_at_least(0, 2, 0, 2, 6.5, &mut cache, &mut levels),
        None
    );
}

#[test]
fn an_exact_match_on_a_rare_value_adds_its_term_frequency_bonus() {
    let table = xy_table();
    let mut params = parameters(2);
    params.term_frequency = vec![Some(vec![2.0; table.values[0].len()]), None];
    let scorer = Scorer::new(&table, &params);
    assert!((scorer.field_weight(0, 0, 0) - (9f64.log2() + 2.0)).abs() < 1e-12);
    assert!((scorer.field_weight(0, 1, 0) - (1.0f64 / 9.0).log2()).abs() < 1e-12);
    assert_eq!(scorer.field_weight(0, NULL_LEVEL, 0), 0.0);
}

#[test]
fn cheap_fields_are_compared_first_names_next_free_text_last() {
    let table = table(
        &[
            ("n", "given_name"),
            ("p", "phone"),
            ("t", "text"),
            ("c", "code"),
        ],
        &[&["ann", "4155550134", "acme", "94110"]],
    );
    assert_eq!(comparison_order(&table), vec![1, 3, 0, 2]);
}
