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
