//! The guards clustering runs under: accepted pairs merge unless the records are of different
//! generations (Jr./Sr.), strangers (every stranger field differs), in conflict on every conflict
//! field, or a confident non-match as a pair.

use super::cluster;
use super::compare;
use super::encode::{Dictionary, NULL_CODE};
use super::model::{FieldKind, MatchModel};
use super::score::{self, LevelCache, Levels, MAX_FIELDS, NULL_LEVEL, PreparedTable, Scorer};
use crate::normalize;
use std::collections::HashMap;

/// How the reason of a merge the strangers guard refused begins.
pub const STRANGERS: &str = "strangers:";

/// A blocking rule whose key is one identifier's whole value (`phone:phone`, `email:email_key`):
/// two records at one level of `field` up to `shared_up_to` share its key, so the rule would have
/// brought their pair.
pub struct IdentifierRule {
    pub rule: usize,
    pub field: usize,
    pub shared_up_to: u8,
    /// Whether the key is a value's first part ([`PreparedTable::first_part`]: an email's match
    /// key, which several addresses share) rather than the value itself (a phone).
    keyed_by_first_part: bool,
    /// Rows per key: the size of the rule's block a pair sharing that key sits in.
    rows_with: Vec<u32>,
}

impl IdentifierRule {
    /// The number of the key of a value code of the rule's field.
    fn key(&self, table: &PreparedTable, code: u32) -> u32 {
        if self.keyed_by_first_part {
            table.first_part(self.field, code).unwrap_or(code)
        } else {
            code
        }
    }

    /// The rows of the rule's block holding `row`'s key.
    fn block_rows(&self, table: &PreparedTable, row: u32) -> usize {
        self.rows_with[self.key(table, table.code(self.field, row)) as usize] as usize
    }
}

/// The rules that ran (`rule_names`, in their order) whose key is a single phone or email key.
pub fn identifier_rules(
    model: &MatchModel,
    table: &PreparedTable,
    rule_names: &[String],
) -> Vec<IdentifierRule> {
    rule_names
        .iter()
        .enumerate()
        .filter_map(|(rule, name)| {
            let spec = model.blocking.iter().find(|b| &b.name == name)?;
            let parts: Vec<(&str, &str)> = spec.key_parts().collect();
            let [(column, transform)] = parts.as_slice() else {
                return None;
            };
            let field = table.fields.iter().position(|f| f.name == *column)?;
            let (shared_up_to, keyed_by_first_part) = match (table.fields[field].kind, *transform) {
                (FieldKind::Phone, "phone") => (0, false),
                (FieldKind::Email, "email_key") => (1, true),
                _ => return None,
            };
            // Keys are numbered from 0, and there are at most as many as distinct values.
            let mut identifier = IdentifierRule {
                rule,
                field,
                shared_up_to,
                keyed_by_first_part,
                rows_with: vec![0u32; table.values[field].len()],
            };
            for code in table.field_codes(field).filter(|&c| c != NULL_CODE) {
                let key = identifier.key(table, code);
                identifier.rows_with[key as usize] += 1;
            }
            Some(identifier)
        })
        .collect()
}

/// Clusters the accepted pairs under the model's guards: different generational suffixes
/// (Jr./Sr.) never merge, nor do records that differ in every conflict field, nor two records whose
/// own pair is a confident non-match (below `cluster_min_probability`).
pub fn guarded_clusters(
    model: &MatchModel,
    scorer: &Scorer,
    table: &PreparedTable,
    raw: &HashMap<String, Dictionary>,
    identifiers: &[IdentifierRule],
    accepted: &mut [(u32, u32, f64)],
) -> cluster::Clusters {
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
    let stranger_fields: Vec<usize> = model
        .stranger_fields
        .iter()
        .filter_map(|name| table.fields.iter().position(|f| &f.name == name))
        .collect();
    // "surname, phone and email": the fields a refusal names.
    let strangers_reason = {
        let names: Vec<&str> = stranger_fields
            .iter()
            .map(|&f| table.fields[f].name.as_str())
            .collect();
        let listed = match names.as_slice() {
            [] => String::new(),
            [one] => one.to_string(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        };
        format!("{STRANGERS} {listed} all differ")
    };
    // Generational suffixes (Jr./Sr./II/III) of each row, read from the raw name fields (once per
    // distinct value): a father and son share every other field, so two different suffixes mean
    // two people.
    let generation: Vec<Option<&'static str>> = if model.generational_suffixes {
        let per_column: Vec<(&Dictionary, Vec<Option<&'static str>>)> = model
            .swappable
            .iter()
            .flatten()
            .filter_map(|name| {
                let dictionary = raw.get(name)?;
                let suffixes = dictionary
                    .distinct()
                    .iter()
                    .map(|v| normalize::generational_suffix(v))
                    .collect();
                Some((dictionary, suffixes))
            })
            .collect();
        (0..table.rows)
            .map(|r| {
                per_column
                    .iter()
                    .find_map(|(d, suffixes)| match d.codes[r] {
                        NULL_CODE => None,
                        c => suffixes[c as usize],
                    })
            })
            .collect()
    } else {
        Vec::new()
    };
    // The guard computes only its own fields (and the name pair, for swapped names).
    let mut guard_fields = vec![false; table.fields.len()];
    for f in conflict_fields
        .iter()
        .map(|(f, _)| *f)
        .chain(stranger_fields.iter().copied())
    {
        guard_fields[f] = true;
    }
    if let Some((fi, li)) = table.swap
        && (guard_fields[fi] || guard_fields[li])
    {
        guard_fields[fi] = true;
        guard_fields[li] = true;
    }
    // A suffix on one record and none on the other is one person only if they share an email: a
    // father and son share a name, an address and often the home phone, rarely an inbox.
    let email_field = table.fields.iter().position(|f| f.kind == FieldKind::Email);
    if let Some(f) = email_field
        && model.generational_suffixes
    {
        guard_fields[f] = true;
    }
    // Rows that hold the same value in every field the guards read are interchangeable: the
    // clustering checks one of them.
    let score_guard = model.cluster_min_probability > 0.0;
    let guarded: Vec<usize> = (0..table.fields.len())
        .filter(|f| score_guard || guard_fields[*f])
        .collect();
    let same_signature = |a: u32, b: u32| {
        generation.get(a as usize) == generation.get(b as usize)
            && guarded
                .iter()
                .all(|&f| table.code(f, a) == table.code(f, b))
    };
    // Each worker's caches: levels of value pairs, and the guard's verdict per field and pair of
    // distinct values (a cluster of namesakes asks about the same few names again and again, and
    // judging two names can cost string work).
    type NameVerdicts = rustc_hash::FxHashMap<(usize, u8, u32, u32), bool>;
    let new_state = || {
        (
            LevelCache::new(table),
            [NULL_LEVEL; MAX_FIELDS],
            NameVerdicts::default(),
        )
    };
    let conflict = |state: &mut (LevelCache, Levels, NameVerdicts), a: u32, b: u32| {
        let (cache, levels, name_verdicts) = state;
        match (generation.get(a as usize), generation.get(b as usize)) {
            (Some(Some(x)), Some(Some(y))) if x != y => {
                return Some(format!("generations {x} and {y} differ"));
            }
            (Some(Some(x)), Some(None)) | (Some(None), Some(Some(x))) => {
                let shared_email =
                    email_field.is_some_and(|f| table.field_level(f, a, b, cache) <= 1);
                if !shared_email {
                    return Some(format!("{x} on one record only, and no shared email"));
                }
            }
            _ => {}
        }
        if !conflict_fields.is_empty() || !stranger_fields.is_empty() {
            table.levels_into(a, b, Some(&guard_fields), cache, levels);
        }
        // Different in every stranger field, each present on both (a field empty on one side
        // proves nothing): no shared surname (nor a typo of one, nor names swapped), no shared
        // number, no shared inbox.
        if !stranger_fields.is_empty()
            && stranger_fields.iter().all(|&f| {
                levels[f] != NULL_LEVEL
                    && usize::from(levels[f]) + 1 == table.fields[f].kind.levels().len()
            })
        {
            return Some(strangers_reason.clone());
        }
        if !conflict_fields.is_empty() {
            let all_conflict = conflict_fields.iter().all(|(f, _)| {
                let (ca, cb) = (table.code(*f, a), table.code(*f, b));
                match (levels[*f], table.value(*f, a), table.value(*f, b)) {
                    (NULL_LEVEL, _, _) => false,
                    // Keyed by the level too: swapped names lift the level of a pair of first
                    // names that would conflict compared straight.
                    (l, Some(x), Some(y)) => *name_verdicts
                        .entry((*f, l, ca.min(cb), ca.max(cb)))
                        .or_insert_with(|| compare::conflict(table.fields[*f].kind, l, x, y)),
                    _ => false,
                }
            });
            if all_conflict {
                return Some(format!("{rule} differ"));
            }
        }
        if score_guard {
            table.levels_into(a, b, None, cache, levels);
            // Two records sharing a phone or an inbox are judged as the rule on it judges its
            // pairs (its prior, its block), as they were accepted: with the global m and u and
            // share of matches, a shared number can count for little where EM's u of it is high
            // (0.022 on seeded 10 M, 6e-6 at 1 M), and one person's records were kept apart. The
            // first such rule is the one that brings the pair when identifier rules come first,
            // as in the contacts model.
            let weight = identifiers
                .iter()
                .find(|id| levels[id.field] <= id.shared_up_to)
                .map_or_else(
                    || scorer.weight(a, levels),
                    |id| {
                        let rows = id.block_rows(table, a).max(2);
                        scorer.weight_in_rule(id.rule, rows, a, levels)
                    },
                );
            let p = score::probability(weight);
            if p < model.cluster_min_probability {
                return Some(format!("records score {p:.4} as a pair"));
            }
        }
        None
    };
    cluster::cluster(table.rows, accepted, same_signature, new_state, conflict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::dedupe::{InputTable, prepare_table};

    #[test]
    fn an_identifier_rules_block_holds_every_row_sharing_its_key() {
        let model = MatchModel::from_toml(
            r#"
id_column = "id"
threshold = 0.9

[[blocking]]
name = "town"
keys = ["city"]

[[blocking]]
name = "email"
keys = ["email:email_key"]

[[blocking]]
name = "phone"
keys = ["phone:phone"]

[[fields]]
name = "email"
kind = "email"

[[fields]]
name = "phone"
kind = "phone"

[[fields]]
name = "city"
kind = "text"
"#,
            "test",
        )
        .expect("model");
        // Three addresses Gmail delivers to one inbox (one match key), one other; one number
        // written two ways, one other.
        let emails = [
            "jo.smith@gmail.com",
            "josmith@gmail.com",
            "jo.smith+news@gmail.com",
            "ann@example.com",
        ];
        let phones = ["+1 312 240 1000", "(312) 240-1000", "+1 312 240 2000", ""];
        let input = InputTable {
            ids: (0..4).map(|i| format!("r{i}")).collect(),
            columns: HashMap::from([
                (
                    "email".to_string(),
                    emails.iter().map(|e| Some(e.to_string())).collect(),
                ),
                (
                    "phone".to_string(),
                    phones
                        .iter()
                        .map(|p| (!p.is_empty()).then(|| p.to_string()))
                        .collect(),
                ),
                (
                    "city".to_string(),
                    (0..4).map(|_| Some("Springfield")).collect(),
                ),
            ]),
        };
        let table = prepare_table(&model, &input, normalize::region("US")).0;
        let names = ["town", "email", "phone"].map(String::from);
        let rules = identifier_rules(&model, &table, &names);
        assert_eq!(
            rules.iter().map(|r| r.rule).collect::<Vec<_>>(),
            vec![1, 2],
            "the town rule keys on no identifier"
        );
        let (email, phone) = (&rules[0], &rules[1]);
        assert_eq!(
            (0..4)
                .map(|r| email.block_rows(&table, r))
                .collect::<Vec<_>>(),
            vec![3, 3, 3, 1]
        );
        assert_eq!(
            (0..3)
                .map(|r| phone.block_rows(&table, r))
                .collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
    }
}
