//! Blocking: records that agree on every key of a rule become candidate pairs; rules are unioned,
//! so a typo in one field does not hide a pair another rule finds.

use super::model::{BlockingRule, MatchModel};
use super::normalize;
use rlibphonenumber::enums::Region;
use std::collections::{HashMap, HashSet};

/// What blocking produced.
#[derive(Debug, Default)]
pub struct Candidates {
    /// Pairs `(i, j)` with `i < j`, each once.
    pub pairs: Vec<(u32, u32)>,
    /// Pairs each rule produced (before the union).
    pub per_rule: Vec<(String, u64)>,
    /// Blocks skipped for being larger than `max_block_size`: (rule, key, size).
    pub skipped_blocks: Vec<(String, String, usize)>,
}

/// The key of one cell for a blocking transform.
pub fn key_of(raw: &str, transform: &str, region: Region) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let key = match transform {
        "exact" => normalize::name(raw),
        "phonetic" => normalize::phonetic(&normalize::name(raw)),
        "initial" => normalize::name(raw).chars().next()?.to_string(),
        "prefix3" => normalize::name(raw)
            .chars()
            .filter(|c| *c != ' ')
            .take(3)
            .collect(),
        "email_key" => normalize::email(raw)?.match_key,
        "phone" => normalize::phone(raw, region)?.as_str().to_string(),
        "year" => raw.chars().filter(char::is_ascii_digit).take(4).collect(),
        "digits" => raw.chars().filter(char::is_ascii_digit).collect(),
        _ => return None,
    };
    (!key.is_empty()).then_some(key)
}

/// Builds the candidate pairs. `column(name)` gives a field's raw cells (None when the input has
/// no such column: a rule that needs it is skipped).
pub fn candidates<'a>(
    model: &MatchModel,
    rows: usize,
    column: impl Fn(&str) -> Option<&'a [Option<String>]>,
    region: Region,
) -> Candidates {
    let mut seen: HashSet<u64> = HashSet::new();
    let mut out = Candidates::default();
    for rule in &model.blocking {
        let Some(keys) = rule_keys(rule, rows, &column, region) else {
            tracing::warn!(rule = %rule.name, "Blocking rule skipped: the input lacks one of its columns");
            continue;
        };
        let mut blocks: HashMap<&str, Vec<u32>> = HashMap::new();
        for (row, key) in keys.iter().enumerate() {
            if let Some(k) = key {
                blocks.entry(k.as_str()).or_default().push(row as u32);
            }
        }
        let mut produced = 0u64;
        for (key, members) in blocks {
            if members.len() < 2 {
                continue;
            }
            if members.len() > model.max_block_size {
                out.skipped_blocks
                    .push((rule.name.clone(), key.to_string(), members.len()));
                continue;
            }
            for (x, &i) in members.iter().enumerate() {
                for &j in &members[x + 1..] {
                    let (a, b) = if i < j { (i, j) } else { (j, i) };
                    produced += 1;
                    if seen.insert((u64::from(a) << 32) | u64::from(b)) {
                        out.pairs.push((a, b));
                    }
                }
            }
        }
        out.per_rule.push((rule.name.clone(), produced));
    }
    out.pairs.sort_unstable();
    out
}

fn rule_keys<'a>(
    rule: &BlockingRule,
    rows: usize,
    column: &impl Fn(&str) -> Option<&'a [Option<String>]>,
    region: Region,
) -> Option<Vec<Option<String>>> {
    let parts: Vec<(&'a [Option<String>], &str)> = rule
        .keys
        .iter()
        .map(|k| {
            let (field, transform) = k.split_once(':').unwrap_or((k, "exact"));
            column(field).map(|c| (c, transform))
        })
        .collect::<Option<_>>()?;
    Some(
        (0..rows)
            .map(|row| {
                let mut values = Vec::with_capacity(parts.len());
                for (cells, transform) in &parts {
                    let cell = cells[row].as_deref()?;
                    values.push(key_of(cell, transform, region)?);
                }
                if rule.unordered {
                    values.sort_unstable();
                }
                let mut key = values.join("\u{1f}");
                key.push('\u{1f}');
                Some(key)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
"#
        ))
        .expect("model")
    }

    #[test]
    fn unordered_keys_put_swapped_names_in_one_block() {
        let first = vec![
            Some("William".to_string()),
            Some("Turner".to_string()),
            Some("Ann".into()),
        ];
        let last = vec![
            Some("Turner".to_string()),
            Some("William".to_string()),
            Some("Lee".into()),
        ];
        let column = |name: &str| match name {
            "first_name" => Some(first.as_slice()),
            "last_name" => Some(last.as_slice()),
            _ => None,
        };
        let us = crate::transform::normalize::region("US");
        assert_eq!(candidates(&model(true), 3, column, us).pairs, vec![(0, 1)]);
        assert!(candidates(&model(false), 3, column, us).pairs.is_empty());
    }

    #[test]
    fn a_rule_missing_a_column_is_skipped_and_oversized_blocks_are_reported() {
        let first: Vec<Option<String>> = (0..5).map(|_| Some("Ann".to_string())).collect();
        let column = |name: &str| (name == "first_name").then_some(first.as_slice());
        let us = crate::transform::normalize::region("US");
        // The rule needs last_name, which this input lacks.
        assert!(candidates(&model(false), 5, column, us).pairs.is_empty());
        let mut small = model(false);
        small.blocking[0].keys = vec!["first_name:exact".into()];
        small.max_block_size = 3;
        let c = candidates(&small, 5, column, us);
        assert!(c.pairs.is_empty());
        assert_eq!(c.skipped_blocks.len(), 1);
        assert_eq!(c.skipped_blocks[0].2, 5);
    }
}
