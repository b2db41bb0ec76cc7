//! Golden records: one merged record per duplicate cluster, each field chosen by a survivorship
//! rule, with every disagreement between members recorded as a conflict.

use crate::normalize;
use crate::snapshot::contract::ContactField;
pub use crate::snapshot::contract::transform_outputs::GoldenRecord;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The contact fields a golden record is built from, in the snapshot's names.
pub const GOLDEN_FIELDS: [&str; 8] = {
    let mut names = [""; 8];
    let mut i = 0;
    while i < names.len() {
        names[i] = ContactField::GOLDEN[i].name();
        i += 1;
    }
    names
};

/// How one field's value is chosen among a cluster's members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The non-empty value of the most recently updated member (people update what changed).
    #[default]
    MostRecent,
    /// The longest non-empty value ("Robert" over "Bob", a full street over a postcode).
    MostComplete,
    /// The non-empty value from the member whose `source` ranks first in `source_priority`
    /// (a form the customer filled beats a list import); ties go to the most recent.
    SourcePriority,
}

/// `[transform.survivorship]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SurvivorshipConfig {
    /// Rule for fields not named in `fields`.
    pub default_rule: Rule,
    /// Rule per field (`first_name = "most_complete"`).
    pub fields: BTreeMap<String, Rule>,
    /// Sources, best first, for `source_priority` (compared case-insensitively).
    pub source_priority: Vec<String>,
}

impl SurvivorshipConfig {
    /// Names the first unknown field, so a typo is an error rather than a silent default.
    pub fn validate(&self) -> Result<(), String> {
        for field in self.fields.keys() {
            if !GOLDEN_FIELDS.contains(&field.as_str()) {
                return Err(format!(
                    "transform.survivorship.fields: unknown field `{field}` (known: {})",
                    GOLDEN_FIELDS.join(", ")
                ));
            }
        }
        let uses_priority = self.default_rule == Rule::SourcePriority
            || self.fields.values().any(|r| *r == Rule::SourcePriority);
        if uses_priority && self.source_priority.is_empty() {
            return Err(
                "transform.survivorship: `source_priority` rule used but the `source_priority` list is empty"
                    .into(),
            );
        }
        Ok(())
    }

    fn rule(&self, field: &str) -> Rule {
        self.fields.get(field).copied().unwrap_or(self.default_rule)
    }
}

/// One member of a cluster as the golden record sees it.
#[derive(Debug, Clone, Default)]
pub struct Member {
    pub id: String,
    pub source: Option<String>,
    /// ISO-8601 text (sorts in time order).
    pub date_updated: Option<String>,
    /// Values by [`GOLDEN_FIELDS`] name.
    pub values: BTreeMap<&'static str, Option<String>>,
}

/// The key two values of a field are compared by: formatting differences are not conflicts. A
/// national phone is read in the record's `country` (as the dedupe reads it), else in `region`.
pub fn comparison_key(
    field: &str,
    value: &str,
    country: Option<&str>,
    region: normalize::Region,
) -> String {
    match field {
        "phone" => match normalize::contact_phone(Some(value), country, region) {
            Some(normalize::PhoneKey::E164(e)) => e,
            _ => crate::snapshot::phone::digits(value),
        },
        "email" => value.trim().to_lowercase(),
        // "AU" and "Australia" are one country.
        "country" => normalize::country_region(value)
            .map_or_else(|| normalize::name(value), |r| r.to_string()),
        _ => normalize::name(value),
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The members with their names in one layout, the cluster's: a full name typed into the first
/// name with the last name empty is split ("Anh Hoang" → Anh / Hoang), and a record whose first and
/// last names are the reference's the wrong way round is turned back. The matcher already reads
/// names so; survivorship must too, or it picks a first name from one layout and a last name from
/// the other ("Jesús Jesús"), the survivor stops matching, and each run undoes the last one's merge.
fn with_aligned_names(members: &[Member], survivor_id: &str) -> Vec<Member> {
    let names = |m: &Member| -> (Option<String>, Option<String>) {
        let first = m.values.get("first_name").and_then(non_empty);
        let last = m.values.get("last_name").and_then(non_empty);
        match (first, last) {
            (Some(full), None) if full.split_whitespace().count() > 1 => {
                let (given, family) = full
                    .trim()
                    .rsplit_once(char::is_whitespace)
                    .expect("two words at least");
                (Some(given.trim().to_string()), Some(family.to_string()))
            }
            (first, last) => (first.map(str::to_string), last.map(str::to_string)),
        }
    };
    let split: Vec<(Option<String>, Option<String>)> = members.iter().map(names).collect();
    // The reference layout: the survivor's when it has both names, else the first member's that has.
    let reference = members
        .iter()
        .position(|m| m.id == survivor_id)
        .filter(|&i| split[i].0.is_some() && split[i].1.is_some())
        .or_else(|| split.iter().position(|(f, l)| f.is_some() && l.is_some()));
    let fold = |v: &Option<String>| v.as_deref().map(normalize::name);
    members
        .iter()
        .zip(&split)
        .map(|(member, (first, last))| {
            let mut aligned = member.clone();
            let (mut first, mut last) = (first.clone(), last.clone());
            if let Some(r) = reference {
                let (ref_first, ref_last) = (fold(&split[r].0), fold(&split[r].1));
                let swapped =
                    fold(&first) == ref_last && fold(&last) == ref_first && ref_first != ref_last;
                if swapped {
                    std::mem::swap(&mut first, &mut last);
                }
            }
            aligned.values.insert("first_name", first);
            aligned.values.insert("last_name", last);
            aligned
        })
        .collect()
}

/// The candidates a name is chosen from: an initial ("J", "J.") is left out when another member
/// spells out a name it abbreviates. It says less than the full name and contradicts nothing, so
/// no rule should pick it; and a survivor cut down to "J Williams" matches every James and
/// Jessica Williams sharing a phone with it, merging a household on the next run.
fn without_initials_of_fuller_names<'a>(
    field: &str,
    candidates: &[(&'a Member, &'a str)],
) -> Vec<(&'a Member, &'a str)> {
    if field != "first_name" && field != "last_name" {
        return candidates.to_vec();
    }
    let initial = |v: &str| -> Option<char> {
        let mut letters = v.trim_end_matches('.').chars();
        match (letters.next(), letters.next()) {
            (Some(c), None) if c.is_alphabetic() => normalize::name(&c.to_string()).chars().next(),
            _ => None,
        }
    };
    let spelled_out = |letter: char| {
        candidates
            .iter()
            .any(|(_, v)| initial(v).is_none() && normalize::name(v).starts_with(letter))
    };
    candidates
        .iter()
        .filter(|(_, v)| !initial(v).is_some_and(spelled_out))
        .copied()
        .collect()
}

/// Builds the golden record of one cluster. `members` holds at least one record.
pub fn merge(
    cluster_id: &str,
    survivor_id: &str,
    members: &[Member],
    config: &SurvivorshipConfig,
    region: normalize::Region,
) -> GoldenRecord {
    let members = &with_aligned_names(members, survivor_id)[..];
    let mut golden = GoldenRecord {
        cluster_id: cluster_id.to_string(),
        survivor_id: survivor_id.to_string(),
        member_ids: members.iter().map(|m| m.id.clone()).collect(),
        ..GoldenRecord::default()
    };
    let priority = |m: &Member| -> usize {
        let source = m.source.as_deref().unwrap_or("").trim().to_lowercase();
        config
            .source_priority
            .iter()
            .position(|s| s.trim().to_lowercase() == source)
            .unwrap_or(usize::MAX)
    };
    for field in GOLDEN_FIELDS {
        let candidates: Vec<(&Member, &str)> = members
            .iter()
            .filter_map(|m| non_empty(m.values.get(field)?).map(|v| (m, v)))
            .collect();
        let chosen_from = without_initials_of_fuller_names(field, &candidates);
        // Ties fall to the survivor, then to the smallest id, so the result never depends on
        // the order rows arrived in.
        let tie = |a: &Member, b: &Member| {
            (a.id == survivor_id)
                .cmp(&(b.id == survivor_id))
                .then(b.id.cmp(&a.id))
        };
        let chosen = match config.rule(field) {
            Rule::MostRecent => chosen_from
                .iter()
                .max_by(|(a, _), (b, _)| a.date_updated.cmp(&b.date_updated).then(tie(a, b))),
            Rule::MostComplete => chosen_from.iter().max_by(|(a, va), (b, vb)| {
                va.chars()
                    .count()
                    .cmp(&vb.chars().count())
                    .then(a.date_updated.cmp(&b.date_updated))
                    .then(tie(a, b))
            }),
            Rule::SourcePriority => chosen_from.iter().max_by(|(a, _), (b, _)| {
                priority(b)
                    .cmp(&priority(a))
                    .then(a.date_updated.cmp(&b.date_updated))
                    .then(tie(a, b))
            }),
        };
        if let Some((member, value)) = chosen {
            golden.set(field, Some(value.to_string()));
            golden.provenance.push(format!("{field}={}", member.id));
        }
        let mut distinct: Vec<(String, &str)> = Vec::new();
        for (member, value) in &candidates {
            let country = member.values.get("country").and_then(non_empty);
            let key = comparison_key(field, value, country, region);
            if !distinct.iter().any(|(k, _)| *k == key) {
                distinct.push((key, value));
            }
        }
        if distinct.len() > 1 {
            let values: Vec<&str> = distinct.iter().map(|(_, v)| *v).collect();
            golden
                .conflicts
                .push(format!("{field}: {}", values.join(" | ")));
        }
    }
    golden
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, updated: &str, source: &str, fields: &[(&'static str, &str)]) -> Member {
        Member {
            id: id.into(),
            source: Some(source.into()),
            date_updated: Some(updated.into()),
            values: fields
                .iter()
                .map(|(f, v)| (*f, Some(v.to_string())))
                .collect(),
        }
    }

    fn us() -> normalize::Region {
        normalize::region("US")
    }

    /// An initial never replaces the name it abbreviates, however recent: "J" over "Jessica"
    /// made the survivor match a James Williams at the same phone the next night.
    #[test]
    fn an_initial_does_not_replace_the_name_it_abbreviates() {
        let members = vec![
            member(
                "full",
                "2025-03-19T00:00:00",
                "form",
                &[("first_name", "Jessica"), ("last_name", "Williams")],
            ),
            member(
                "initial",
                "2026-09-22T00:00:00",
                "import",
                &[("first_name", "J."), ("last_name", "Williams")],
            ),
        ];
        let g = merge("c1", "full", &members, &SurvivorshipConfig::default(), us());
        assert_eq!(g.first_name.as_deref(), Some("Jessica"));
        // Still a conflict worth reporting, and an initial of another letter is a real value.
        assert_eq!(g.conflicts, vec!["first_name: Jessica | J.".to_string()]);
        let members = vec![
            member(
                "a",
                "2025-03-19T00:00:00",
                "form",
                &[("first_name", "Jessica")],
            ),
            member("b", "2026-09-22T00:00:00", "form", &[("first_name", "K")]),
        ];
        let g = merge("c1", "a", &members, &SurvivorshipConfig::default(), us());
        assert_eq!(g.first_name.as_deref(), Some("K"));
    }

    /// Issue 18, item 10: names in another layout (swapped, or a full name in the first name)
    /// are read in the cluster's layout before the most recent value is picked.
    #[test]
    fn swapped_and_full_names_are_aligned_before_picking() {
        let members = vec![
            member(
                "survivor",
                "2026-10-31T00:00:00",
                "form",
                &[("first_name", "Jesús")],
            ),
            member(
                "old",
                "2025-09-26T00:00:00",
                "import",
                &[("first_name", "Jesús"), ("last_name", "Sánchez")],
            ),
            member(
                "swapped",
                "2026-05-01T00:00:00",
                "import",
                &[("first_name", "Sánchez"), ("last_name", "Jesús")],
            ),
        ];
        let g = merge(
            "c1",
            "survivor",
            &members,
            &SurvivorshipConfig::default(),
            us(),
        );
        assert_eq!(g.first_name.as_deref(), Some("Jesús"));
        assert_eq!(g.last_name.as_deref(), Some("Sánchez"));

        let members = vec![
            member(
                "survivor",
                "2025-12-24T00:00:00",
                "form",
                &[("first_name", "Anh"), ("last_name", "hoang")],
            ),
            member(
                "full",
                "2026-10-12T00:00:00",
                "import",
                &[("first_name", "Anh Hoang")],
            ),
        ];
        let g = merge(
            "c2",
            "survivor",
            &members,
            &SurvivorshipConfig::default(),
            us(),
        );
        assert_eq!(g.first_name.as_deref(), Some("Anh"));
        assert_eq!(g.last_name.as_deref(), Some("Hoang"));
    }

    #[test]
    fn most_recent_non_empty_value_wins_and_conflicts_are_recorded() {
        let members = vec![
            member(
                "a",
                "2026-01-01T00:00:00",
                "import",
                &[("first_name", "Bob"), ("email", "bob@old.com")],
            ),
            member(
                "b",
                "2026-06-01T00:00:00",
                "form",
                &[("first_name", "Robert"), ("email", "")],
            ),
        ];
        let g = merge("c1", "a", &members, &SurvivorshipConfig::default(), us());
        assert_eq!(g.first_name.as_deref(), Some("Robert"));
        // b's email is empty, so the older non-empty one survives.
        assert_eq!(g.email.as_deref(), Some("bob@old.com"));
        assert_eq!(g.conflicts, vec!["first_name: Bob | Robert".to_string()]);
        assert!(g.provenance.contains(&"email=a".to_string()));
    }

    #[test]
    fn two_ways_of_writing_one_value_are_not_conflicts() {
        let cases: [[&[(&'static str, &str)]; 2]; 2] = [
            [
                &[("phone", "(415) 555-0134"), ("email", "Ann@Example.com")],
                &[("phone", "+14155550134"), ("email", "ann@example.com")],
            ],
            // A national phone is read in its record's country.
            [
                &[("phone", "0412 345 678"), ("country", "AU")],
                &[("phone", "+61 412 345 678"), ("country", "Australia")],
            ],
        ];
        for [a, b] in cases {
            let members = vec![
                member("a", "2026-01-01T00:00:00", "x", a),
                member("b", "2026-02-01T00:00:00", "x", b),
            ];
            let g = merge("c1", "a", &members, &SurvivorshipConfig::default(), us());
            assert!(g.conflicts.is_empty(), "{a:?} / {b:?}: {:?}", g.conflicts);
        }
    }

    #[test]
    fn source_priority_and_most_complete_rules() {
        let config = SurvivorshipConfig {
            default_rule: Rule::SourcePriority,
            fields: [("first_name".to_string(), Rule::MostComplete)].into(),
            source_priority: vec!["Web Form".into(), "import".into()],
        };
        assert!(config.validate().is_ok());
        let members = vec![
            member(
                "a",
                "2026-09-01T00:00:00",
                "import",
                &[("first_name", "Kate"), ("city", "Austin")],
            ),
            member(
                "b",
                "2026-01-01T00:00:00",
                "web form",
                &[("first_name", "Katherine"), ("city", "Dallas")],
            ),
        ];
        let g = merge("c1", "a", &members, &config, us());
        assert_eq!(
            g.city.as_deref(),
            Some("Dallas"),
            "the form outranks the import"
        );
        assert_eq!(g.first_name.as_deref(), Some("Katherine"));
    }

    #[test]
    fn unknown_fields_and_missing_priority_list_are_rejected() {
        let config = SurvivorshipConfig {
            fields: [("emial".to_string(), Rule::MostRecent)].into(),
            ..SurvivorshipConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("emial"));
        let config = SurvivorshipConfig {
            default_rule: Rule::SourcePriority,
            ..SurvivorshipConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("source_priority"));
    }
}
