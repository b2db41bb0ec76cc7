//! The match model: which column is the id, how records are blocked, how each field is compared,
//! the Fellegi-Sunter parameters (estimated or given) and the threshold. Read from TOML, so any table
//! can have its own model.

use serde::Deserialize;
use std::path::Path;

/// Fields a model may compare (levels of a pair live in a fixed array, so scoring allocates
/// nothing).
pub const MAX_FIELDS: usize = 32;

/// The default contacts model, `pipelines/models/contacts.toml`, as built into the binary.
pub const DEFAULT_CONTACTS_MODEL: &str = include_str!("../../pipelines/models/contacts.toml");

/// A whole model file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchModel {
    /// The input column holding the record id.
    pub id_column: String,
    /// Match probability at or above which a pair is a match.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Blocks with up to this many records are compared in full (every pair); larger ones by
    /// sorted neighbourhood (see `window`), and reported.
    #[serde(default = "default_max_block")]
    pub max_block_size: usize,
    /// A block larger than `max_block_size` is compared by sorted neighbourhood: its records are
    /// sorted by their field values and each is compared with the next `window` records, so a
    /// common name costs pairs in proportion to its records, not their square.
    #[serde(default = "default_window")]
    pub window: usize,
    /// Random pairs sampled to estimate u.
    #[serde(default = "default_u_sample")]
    pub u_sample_pairs: usize,
    /// EM iterations for m.
    #[serde(default = "default_em_iterations")]
    pub em_iterations: usize,
    /// Let EM re-estimate u among the candidate pairs too (default true: blocking makes
    /// non-matches agree more often than random pairs do). False keeps u at the random-pair
    /// estimate, as Splink does, and is far less accurate on contacts (docs/benchmarks.md).
    #[serde(default = "default_true")]
    pub em_estimates_u: bool,
    /// Never cluster two records whose names carry different generational suffixes (Jr./Sr./III),
    /// read from the `swappable` name fields, nor one with a suffix and one without unless they
    /// share an email.
    #[serde(default)]
    pub generational_suffixes: bool,
    /// Two fields that are often entered the wrong way round (first and last name).
    #[serde(default)]
    pub swappable: Option<[String; 2]>,
    /// A whole name typed into the first of the `swappable` fields with the second left empty
    /// ("Patricia Horton" / "", "Horton, Patricia" / "", a web form with one name box) is split
    /// for matching: the last word becomes the family name (before a comma, the first part does).
    /// The stored values are not changed.
    #[serde(default)]
    pub split_full_names: bool,
    /// The column holding each record's country (an ISO code or an English name): a phone written
    /// in national form ("07911 123456") is read in that country, and in the run's default region
    /// when the column is empty or unknown. Accounts with customers in several countries need it.
    #[serde(default)]
    pub phone_region_column: Option<String>,
    /// A cluster never merges two records whose values conflict in all of these fields (e.g. a
    /// different first name and a different email: a household, not one person).
    #[serde(default)]
    pub conflict_fields: Vec<String>,
    /// A cluster never holds two records that differ in every one of these fields at once, each
    /// present on both (e.g. surname, phone and email): whatever chain of shared office lines,
    /// inboxes and namesakes linked them, such records are strangers. Refusals are counted and
    /// each is recorded with the fields that differ.
    #[serde(default)]
    pub stranger_fields: Vec<String>,
    /// A cluster never holds two records whose own pair scores below this probability: a record
    /// with only a name links to many namesakes, and without this check it would chain them all
    /// into one cluster. 0 turns the check off.
    #[serde(default = "default_cluster_min_probability")]
    pub cluster_min_probability: f64,
    /// Blocking rules, unioned.
    pub blocking: Vec<BlockingRule>,
    /// Compared fields.
    pub fields: Vec<FieldModel>,
}

fn default_threshold() -> f64 {
    0.9
}
fn default_max_block() -> usize {
    1_000
}
fn default_cluster_min_probability() -> f64 {
    0.01
}
fn default_window() -> usize {
    20
}
fn default_u_sample() -> usize {
    200_000
}
fn default_true() -> bool {
    true
}

fn default_em_iterations() -> usize {
    20
}

/// A blocking rule: records agreeing on every key are compared.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockingRule {
    pub name: String,
    /// Keys `field` or `field:transform` with transform one of `exact`, `phonetic`, `initial`,
    /// `prefix3`, `email_key`, `email_local` (the local part, four characters or more), `phone`,
    /// `phone_last7` (the last seven digits), `year`, `digits`.
    pub keys: Vec<String>,
    /// Join the key parts in sorted order, so values entered in each other's fields (first and
    /// last name swapped) land in one block.
    #[serde(default)]
    pub unordered: bool,
}

impl BlockingRule {
    /// Each key as its field and transform (`exact` when the key names only a field).
    pub fn key_parts(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.keys.iter().map(|key| split_key(key))
    }
}

/// A blocking key `field` or `field:transform` as its field and transform (`exact` when only a
/// field is named).
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once(':').unwrap_or((key, "exact"))
}

/// How one field is compared.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldModel {
    /// Input column.
    pub name: String,
    /// Comparison kind.
    pub kind: FieldKind,
    /// Adjust the weight of an exact match by how common the value is.
    #[serde(default)]
    pub term_frequency: bool,
    /// Fixed m per level (else estimated by EM).
    #[serde(default)]
    pub m: Option<Vec<f64>>,
    /// Fixed u per level (else estimated from random pairs).
    #[serde(default)]
    pub u: Option<Vec<f64>>,
}

/// Comparison kinds, each with its levels (the last level is "different").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// exact, nickname, Jaro-Winkler ≥ 0.92, ≥ 0.80 or initial, different.
    GivenName,
    /// exact, Damerau-Levenshtein ≤ 1 or Jaro-Winkler ≥ 0.92, Jaro-Winkler ≥ 0.80, different.
    FamilyName,
    /// exact address, same match key (tags, Gmail dots), same local part, different.
    Email,
    /// same E.164, same last seven digits, different.
    Phone,
    /// exact, Jaro-Winkler ≥ 0.90, different.
    Text,
    /// exact, Damerau-Levenshtein ≤ 1, different (ids, postcodes, street numbers).
    Code,
    /// exact, day and month swapped or one digit off, same year, different (YYYYMMDD or ISO).
    Date,
    /// exact, different.
    Exact,
}

impl FieldKind {
    /// Names of the levels, most similar first.
    pub fn levels(self) -> &'static [&'static str] {
        match self {
            FieldKind::GivenName => &[
                "exact",
                "nickname",
                "jw>=0.92",
                "jw>=0.80|initial",
                "different",
            ],
            FieldKind::FamilyName => &["exact", "dl<=1|jw>=0.92", "jw>=0.80", "different"],
            FieldKind::Email => &["exact", "match_key", "same_local_part", "different"],
            FieldKind::Phone => &["exact", "last7", "different"],
            FieldKind::Text => &["exact", "jw>=0.90", "different"],
            FieldKind::Code => &["exact", "dl<=1", "different"],
            FieldKind::Date => &["exact", "close", "same_year", "different"],
            FieldKind::Exact => &["exact", "different"],
        }
    }
}

impl MatchModel {
    /// Reads and checks a model file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading match model {}", path.display()))?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and checks a model; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> anyhow::Result<Self> {
        let model: MatchModel = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("invalid match model {origin}: {e}"))?;
        model
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid match model {origin}: {e}"))?;
        Ok(model)
    }

    /// The model at `path`, or the contacts model built into the binary: an installed binary,
    /// a container or a systemd unit has no checkout to read `pipelines/models/` from.
    pub fn load_or_default(path: Option<&Path>) -> anyhow::Result<Self> {
        // Logged, so a run's log says which model it matched with.
        match path {
            Some(path) => {
                let model = Self::load(path)?;
                tracing::info!(model = %path.display(), "Match model");
                Ok(model)
            }
            None => {
                let origin = "built into contactsync (pipelines/models/contacts.toml)";
                let model = Self::from_toml(DEFAULT_CONTACTS_MODEL, origin)?;
                tracing::info!(model = origin, "Match model");
                Ok(model)
            }
        }
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..1.0).contains(&self.threshold) || self.threshold <= 0.0 {
            return Err(format!(
                "threshold must be in (0, 1), got {}",
                self.threshold
            ));
        }
        if self.fields.is_empty() || self.blocking.is_empty() {
            return Err("a model needs at least one field and one blocking rule".into());
        }
        if self.fields.len() > MAX_FIELDS {
            return Err(format!(
                "a model compares at most {} fields, this one has {}",
                MAX_FIELDS,
                self.fields.len()
            ));
        }
        if !(0.0..1.0).contains(&self.cluster_min_probability) {
            return Err(format!(
                "cluster_min_probability must be in [0, 1), got {}",
                self.cluster_min_probability
            ));
        }
        if self.window == 0 {
            return Err("window must be at least 1".into());
        }
        for f in &self.fields {
            let levels = f.kind.levels().len();
            for (name, given) in [("m", &f.m), ("u", &f.u)] {
                if let Some(values) = given
                    && (values.len() != levels || values.iter().any(|v| !(*v > 0.0 && *v <= 1.0)))
                {
                    return Err(format!(
                        "field {}: {name} needs {levels} values in (0, 1] (levels {:?})",
                        f.name,
                        f.kind.levels()
                    ));
                }
            }
        }
        for rule in &self.blocking {
            for key in &rule.keys {
                let (field, transform) = split_key(key);
                if !matches!(
                    transform,
                    "exact"
                        | "phonetic"
                        | "initial"
                        | "prefix3"
                        | "email_key"
                        | "phone"
                        | "phone_last7"
                        | "email_local"
                        | "year"
                        | "digits"
                ) {
                    return Err(format!(
                        "blocking rule {}: unknown transform {transform:?} in {key:?}",
                        rule.name
                    ));
                }
                if field.is_empty() {
                    return Err(format!(
                        "blocking rule {}: empty field in {key:?}",
                        rule.name
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_model_is_the_shipped_file_and_is_valid() {
        let file =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/models/contacts.toml");
        let built_in = MatchModel::load_or_default(None).expect("the built-in model is valid");
        let shipped = MatchModel::load(&file).expect("the shipped model is valid");
        assert_eq!(built_in.threshold, shipped.threshold);
        assert_eq!(built_in.blocking.len(), shipped.blocking.len());
        let err = MatchModel::from_toml("threshold = 2.0", "test.toml").expect_err("invalid");
        assert!(err.to_string().contains("test.toml"), "{err}");
    }
}
