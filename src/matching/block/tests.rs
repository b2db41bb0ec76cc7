//! Tests of blocking: keys, blocks, windows and the union of rules on small tables.

use super::*;
use crate::matching::dedupe::{InputTable, block, prepare_table};
use crate::normalize;

fn model(unordered: bool) -> MatchModel {
    toml::from_str(&format!(
        r#"
id_column = "id"
threshold = 0.9
[[blocking]]
name = "names"
keys = ["first_name:phonetic", "last_name:phonetic"]
unordered = {unordered}
[[fields]]
name = "first_name"
kind = "given_name"
[[fields]]
name = "last_name"
kind = "family_name"
"#
    ))
    .expect("model")
}

/// An input table of the given columns, ids "0", "1", ...
fn table_of(columns: &[(&str, &[&str])]) -> InputTable {
    let rows = columns.first().map_or(0, |(_, cells)| cells.len());
    InputTable {
        ids: (0..rows).map(|i| i.to_string()).collect(),
        columns: columns
            .iter()
            .map(|(name, cells)| (name.to_string(), cells.iter().map(|s| Some(*s)).collect()))
            .collect(),
    }
}

fn input(first: &[&str], last: &[&str]) -> InputTable {
    table_of(&[("first_name", first), ("last_name", last)])
}

fn blocking_of(model: &MatchModel, input: &InputTable) -> (PreparedTable, Blocking) {
    let us = normalize::region("US");
    let (table, raw, _) = prepare_table(model, input, us);
    let blocking = block(model, &table, &raw, us).expect("blocking");
    (table, blocking)
}

fn pairs(model: &MatchModel, input: &InputTable) -> Vec<(u32, u32)> {
    let (table, blocking) = blocking_of(model, input);
    let mut out = Vec::new();
    for b in &blocking.blocks {
        blocking.for_each_pair(b, &table, |i, j| out.push((i, j)));
    }
    out.sort_unstable();
    out
}

#[test]
fn unordered_keys_put_swapped_names_in_one_block() {
    let t = input(&["William", "Turner", "Ann"], &["Turner", "William", "Lee"]);
    assert_eq!(pairs(&model(true), &t), vec![(0, 1)]);
    assert!(pairs(&model(false), &t).is_empty());
}

#[test]
fn a_pair_two_rules_find_is_generated_once() {
    let mut m = model(false);
    m.blocking.push(m.blocking[0].clone());
    m.blocking[1].name = "again".into();
    let t = input(&["Ann", "Ann", "Ann"], &["Lee", "Lee", "Lee"]);
    assert_eq!(pairs(&m, &t), vec![(0, 1), (0, 2), (1, 2)]);
}

#[test]
fn last_seven_digits_and_local_parts_block_what_the_full_values_miss() {
    let m: MatchModel = toml::from_str(
        r#"
id_column = "id"
[[blocking]]
name = "last7"
keys = ["phone:phone_last7"]
[[blocking]]
name = "local"
keys = ["email:email_local"]
[[fields]]
name = "phone"
kind = "phone"
[[fields]]
name = "email"
kind = "email"
"#,
    )
    .expect("model");
    m.validate().expect("valid model");
    let t = table_of(&[
        // A UK mobile once national (read in the default region, unparsed) and once
        // international.
        ("phone", &["07898 108856", "+44 7898 108856", "", ""]),
        (
            "email",
            &["", "", "karen.russell@yahoo.com", "karen.russell@yaho.com"],
        ),
    ]);
    assert_eq!(pairs(&m, &t), vec![(0, 1), (2, 3)]);
}

#[test]
fn duplicates_sharing_a_key_are_not_counted_as_chance_agreements_of_its_parts() {
    // 100 pairs agree on the names and 100 on the place among 10,000: one by chance, were
    // the 50 pairs in the blocks not mostly one person's records, which agree on both.
    let agreement = KeyAgreement {
        all: 10_000.0,
        names: 100.0,
        other: 100.0,
    };
    let chance = agreement.chance_pairs(50.0);
    // (100 - d)^2 / 10,000 with d = 50 - chance: about 0.2525.
    assert!((chance - 0.2525).abs() < 1e-3, "{chance}");
    // With no more block pairs than chance gives, nothing is taken out.
    assert_eq!(agreement.chance_pairs(0.5), 1.0);
}

#[test]
fn chance_pairs_are_the_pairs_agreeing_on_names_times_the_share_agreeing_on_place() {
    let m: MatchModel = toml::from_str(
        r#"
id_column = "id"
[[blocking]]
name = "surname_city"
keys = ["last_name:exact", "city"]
[[blocking]]
name = "first_name"
keys = ["first_name:exact"]
[[blocking]]
name = "surname_city_again"
keys = ["last_name:exact", "city"]
[[fields]]
name = "first_name"
kind = "given_name"
[[fields]]
name = "last_name"
kind = "family_name"
[[fields]]
name = "city"
kind = "text"
"#,
    )
    .expect("model");
    let t = table_of(&[
        ("first_name", &["Ann", "Bo", "Cy", "Di", "Ed", "Flo"]),
        ("last_name", &["Li", "Li", "Li", "Li", "Ng", "Ng"]),
        ("city", &["Oslo", "Oslo", "Rome", "Rome", "Oslo", "Rome"]),
    ]);
    let (_, blocking) = blocking_of(&m, &t);
    let crowding = blocking.crowding();
    // 15 pairs of rows; 7 share a surname and 6 a city: 15 * 7/15 * 6/15 = 2.8 by chance,
    // against the 2 pairs (Li in Oslo, Li in Rome) the rule's blocks hold.
    let chance = crowding[0].chance_pairs.expect("names and place");
    assert!((chance - 2.8).abs() < 1e-9, "{chance}");
    assert_eq!(crowding[0].block_pairs, 2.0);
    // One part gives no estimate; after a rule on names the rule's own pairs no longer hold
    // its chance pairs, so there is none either.
    assert_eq!(crowding[1].chance_pairs, None);
    assert_eq!(crowding[2].chance_pairs, None);
    assert_eq!(crowding[2].block_pairs, 2.0);
}

#[test]
fn a_rule_missing_a_column_is_skipped() {
    let mut m = model(false);
    m.blocking[0].keys = vec!["first_name:exact".into(), "postal_code".into()];
    let t = input(&["Ann", "Ann"], &["Lee", "Lee"]);
    assert!(pairs(&m, &t).is_empty());
}

#[test]
fn a_rule_skipped_between_two_others_leaves_each_pair_generated_once() {
    let mut m = model(false);
    let rule = m.blocking[0].clone();
    m.blocking = ["last_name:exact", "postal_code", "first_name:exact"]
        .iter()
        .enumerate()
        .map(|(k, key)| {
            let mut r = rule.clone();
            r.name = format!("rule{k}");
            r.keys = vec![key.to_string()];
            r
        })
        .collect();
    let t = input(
        &["Ann", "Ann", "Ann", "Bob", "Bob"],
        &["Lee", "Lee", "Kim", "Kim", "Day"],
    );
    let (table, blocking) = blocking_of(&m, &t);
    assert_eq!(blocking.rule_names(), ["rule0", "rule2"]);
    let mut got = Vec::new();
    for b in &blocking.blocks {
        blocking.for_each_pair(b, &table, |i, j| got.push((i.min(j), i.max(j), b.rule)));
    }
    got.sort_unstable();
    // Surnames bring 0-1 and 2-3; first names bring 0-1 again (an earlier rule's, so not
    // twice), 0-2, 1-2 and 3-4.
    assert_eq!(
        got,
        vec![(0, 1, 0), (0, 2, 1), (1, 2, 1), (2, 3, 0), (3, 4, 1)]
    );
}

#[test]
fn an_oversized_block_is_compared_by_sorted_neighbourhood_not_dropped() {
    let mut m = model(false);
    m.blocking[0].keys = vec!["last_name:exact".into()];
    m.max_block_size = 3;
    m.window = 1;
    // Six Lees: the block is too large, so each row meets its neighbour in name order; the two
    // Anns and the two Bobs sit next to each other and meet.
    let t = input(
        &["Zed", "Ann", "Bob", "Ann", "Cat", "Bob"],
        &["Lee", "Lee", "Lee", "Lee", "Lee", "Lee"],
    );
    let got = pairs(&m, &t);
    assert_eq!(got.len(), 5, "n - 1 neighbours: {got:?}");
    assert!(got.contains(&(1, 3)), "the Anns: {got:?}");
    assert!(got.contains(&(2, 5)), "the Bobs: {got:?}");
}

#[test]
fn windowed_blocks_among_full_ones_each_sort_their_own_rows() {
    // Two rules over one table: surnames (Lee and Kim too large, Day and Fox compared in full)
    // and first names (Ann too large). The rules' blocks share one row buffer, windowed and full
    // ones mixed in an order the key hashes decide; each windowed block must be sorted within
    // its own rows and no others.
    let m = two_rules_on_exact_names(1);
    let first = [
        "Zed", "Ann", "Bob", "Ann", "Cat", "Bob", "Ann", "Eve", "Ann", "Ann", "Dan", "Ann",
    ];
    let last = [
        "Lee", "Kim", "Lee", "Lee", "Day", "Kim", "Lee", "Kim", "Day", "Kim", "Fox", "Fox",
    ];
    let t = input(&first, &last);
    let (_, blocking) = blocking_of(&m, &t);
    assert_eq!(blocking.windowed.len(), 3, "Lee, Kim and Ann");
    // A windowed block's rows are its key's rows, sorted by (first, last) name and then row.
    for b in &blocking.blocks {
        let rows = blocking.rows(b);
        let key = |r: u32| {
            let (f, l) = (first[r as usize], last[r as usize]);
            if b.rule == 0 { l } else { f }
        };
        let mut expected: Vec<u32> = (0..first.len() as u32)
            .filter(|&r| key(r) == key(rows[0]))
            .collect();
        if b.windowed {
            expected.sort_by_key(|&r| (first[r as usize], last[r as usize], r));
        }
        assert_eq!(rows, expected, "rule {} block of {}", b.rule, key(rows[0]));
    }
    assert_eq!(pairs(&m, &t), neighbours_once(&blocking, 1));
}

/// The pairs blocking should yield, worked out from its blocks: neighbours within `window` in a
/// windowed block, every pair of a full one, each pair once.
fn neighbours_once(blocking: &Blocking, window: usize) -> Vec<(u32, u32)> {
    let mut reference = Vec::new();
    for b in &blocking.blocks {
        let rows = blocking.rows(b);
        for (x, &a) in rows.iter().enumerate() {
            for &c in rows
                .iter()
                .skip(x + 1)
                .take(if b.windowed { window } else { rows.len() })
            {
                reference.push((a.min(c), a.max(c)));
            }
        }
    }
    reference.sort_unstable();
    reference.dedup();
    reference
}

/// Two rules, surnames then first names, each on the whole value; blocks over three rows
/// compared by sorted neighbourhood in `window`.
fn two_rules_on_exact_names(window: usize) -> MatchModel {
    let mut m = model(false);
    m.blocking[0].keys = vec!["last_name:exact".into()];
    let mut by_first = m.blocking[0].clone();
    by_first.name = "first".into();
    by_first.keys = vec!["first_name:exact".into()];
    m.blocking.push(by_first);
    m.max_block_size = 3;
    m.window = window;
    m
}

#[test]
fn long_windowed_blocks_with_emails_and_phones_yield_their_neighbours_once() {
    // A windowed block many times longer than its window, so the walk loads rows ahead of the
    // window as it goes, over a table with email and phone parts and blank cells among them.
    let mut m = two_rules_on_exact_names(2);
    for (name, kind) in [("email", FieldKind::Email), ("phone", FieldKind::Phone)] {
        let mut field = m.fields[0].clone();
        field.name = name.into();
        field.kind = kind;
        m.fields.push(field);
    }
    let rows = 40;
    let names = ["Ann", "Bob", "Cat", "Dan", "Eve"];
    let first: Vec<String> = (0..rows).map(|r| names[r * 7 % 5].to_string()).collect();
    let last: Vec<String> = (0..rows)
        .map(|r| if r % 9 == 4 { "Kim" } else { "Lee" }.to_string())
        .collect();
    let email: Vec<String> = (0..rows)
        .map(|r| match r % 4 {
            0 => String::new(),
            _ => format!("person{}@example.com", r % 11),
        })
        .collect();
    let phone: Vec<String> = (0..rows)
        .map(|r| match r % 3 {
            0 => String::new(),
            _ => format!("(415) 555-{:04}", 100 + r % 13),
        })
        .collect();
    fn column(cells: &[String]) -> Vec<&str> {
        cells.iter().map(String::as_str).collect()
    }
    let (f, l, e, p) = (
        column(&first),
        column(&last),
        column(&email),
        column(&phone),
    );
    let t = table_of(&[
        ("first_name", &f),
        ("last_name", &l),
        ("email", &e),
        ("phone", &p),
    ]);
    let (_, blocking) = blocking_of(&m, &t);
    let longest = blocking.blocks.iter().map(Block::len).max().unwrap_or(0);
    assert!(
        longest > m.window + LOAD_AHEAD_ROWS,
        "a block longer than the rows loaded ahead: {longest}"
    );
    assert_eq!(pairs(&m, &t), neighbours_once(&blocking, m.window));
}

#[test]
fn a_block_sorted_by_packed_keys_is_in_the_order_of_its_field_values() {
    // Ties in the first name, empty cells (which sort last) and repeated rows of values.
    let first = ["Bob", "Ann", "", "Bob", "Ann", "Cat", "", "Ann"];
    let last = ["Lee", "Kim", "Lee", "", "Kim", "Abe", "Abe", "Lee"];
    let t = input(&first, &last);
    let us = normalize::region("US");
    let (table, _, _) = prepare_table(&model(false), &t, us);
    let mut order = NeighbourhoodOrder::new(&table);
    let expected = {
        let mut rows: Vec<u32> = (0..first.len() as u32).rev().collect();
        rows.sort_unstable_by(|&a, &b| order.compare(&table, a, b));
        rows
    };
    assert_eq!(
        expected
            .iter()
            .map(|&r| first[r as usize])
            .collect::<Vec<_>>(),
        vec!["Ann", "Ann", "Ann", "Bob", "Bob", "Cat", "", ""]
    );
    let mut rows: Vec<u32> = (0..first.len() as u32).rev().collect();
    order.sort(&table, &mut rows);
    assert_eq!(rows, expected, "every field in the key");
    // A key that holds only the first field leaves the rest to the comparison.
    order.packed.truncate(1);
    order.complete = false;
    let mut rows: Vec<u32> = (0..first.len() as u32).rev().collect();
    order.sort(&table, &mut rows);
    assert_eq!(rows, expected, "the first field in the key");
}

#[test]
fn a_windowed_rule_does_not_hide_pairs_outside_its_window_from_later_rules() {
    let mut m = model(false);
    m.blocking[0].keys = vec!["first_name:initial".into()];
    m.max_block_size = 2;
    m.window = 1;
    let mut second = m.blocking[0].clone();
    second.name = "last".into();
    second.keys = vec!["last_name:exact".into()];
    m.blocking.push(second);
    // Under the initial rule the order is Abe, Amy, Ann: Ann (0) and Abe (1) are not
    // neighbours, so the last-name rule must still generate them.
    let t = input(&["Ann", "Abe", "Amy"], &["Lee", "Lee", "Kim"]);
    let got = pairs(&m, &t);
    assert_eq!(got, vec![(0, 1), (0, 2), (1, 2)]);
}
