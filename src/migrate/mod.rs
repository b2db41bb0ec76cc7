//! Migrate: a one-off CSV or Parquet export into GHL. Columns are mapped to GHL fields by the
//! pipeline's `[migrate]` section, rows that cannot be mapped are quarantined with the reason, and
//! the rest is deduplicated against itself and the location's contacts (one match model for both)
//! into the same desired-state files the nightly transform writes, so plan and load are shared.

use crate::matching::{MatchModel, match_tables};
use crate::normalize::{self, PhoneKey, Region};
use crate::snapshot::contact::SnapshotContact;
use crate::snapshot::contract::ContactField;
use crate::snapshot::desired::{
    DesiredContact, DesiredCustomField, desired_blocked_schema, desired_contacts_schema,
    desired_messages_schema, desired_notes_schema, read_rows, write_rows,
};
use crate::snapshot::phone::digits;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

mod export;
pub use export::{RawRow, Rejected, read_export};

/// `[migrate]`: how the export's columns become GHL fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MigrateConfig {
    /// Input column → GHL field: `first_name`, `last_name`, `full_name` (split on the last
    /// space), `email`, `phone`, `company_name`, `city`, `postal_code`, `country`, `source`,
    /// `tags`, or `custom.<custom field id>`.
    pub mapping: BTreeMap<String, String>,
    /// Separator of several tags in one cell.
    pub tags_separator: String,
    /// Tags put on every contact the migration creates or updates.
    pub add_tags: Vec<String>,
    /// `source` of created contacts when the row has none.
    pub source: Option<String>,
}

impl Default for MigrateConfig {
    fn default() -> Self {
        MigrateConfig {
            mapping: BTreeMap::new(),
            tags_separator: ",".into(),
            add_tags: Vec::new(),
            source: None,
        }
    }
}

const TARGETS: [&str; 11] = [
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "company_name",
    "city",
    "postal_code",
    "country",
    "source",
    "tags",
];

impl MigrateConfig {
    /// Checks the mapping; the error names the column.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (column, target) in &self.mapping {
            let custom = target
                .strip_prefix("custom.")
                .is_some_and(|id| !id.trim().is_empty());
            if !custom && !TARGETS.contains(&target.as_str()) {
                return Err((
                    format!("mapping.{column}"),
                    format!(
                        "unknown GHL field {target:?} (known: {}, custom.<field id>)",
                        TARGETS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A row mapped to GHL fields.
#[derive(Debug, Clone, Default)]
pub struct MappedRow {
    pub row: usize,
    /// Values by `TARGETS` name (without `tags` and `full_name`).
    pub fields: BTreeMap<&'static str, String>,
    pub tags: Vec<String>,
    pub custom: BTreeMap<String, String>,
}

/// A cell a spreadsheet would run as a formula (`=HYPERLINK(...)`, `@SUM(...)`, `+cmd|...`).
/// Phones (`+1 415 ...`) and negative numbers are not formulas.
fn formula_like(value: &str) -> bool {
    let mut chars = value.trim_start().chars();
    match chars.next() {
        Some('=' | '@') => true,
        Some('+' | '-') => chars
            .next()
            .is_some_and(|c| !(c.is_ascii_digit() || c == ' ' || c == '(' || c == '.')),
        _ => false,
    }
}

fn target_slot(target: &str) -> Option<&'static str> {
    TARGETS.iter().copied().find(|t| *t == target)
}

/// Maps one row, or says why it cannot be.
pub fn map_row(
    raw: &RawRow,
    config: &MigrateConfig,
    region: Region,
    region_code: &str,
) -> Result<MappedRow, String> {
    let mut mapped = MappedRow {
        row: raw.row,
        ..MappedRow::default()
    };
    for (column, target) in &config.mapping {
        let Some(value) = raw.cells.get(column).map(|v| v.trim()) else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        if formula_like(value) {
            return Err(format!(
                "column {column:?} holds a formula-looking value {value:?}; not imported"
            ));
        }
        if let Some(id) = target.strip_prefix("custom.") {
            mapped.custom.insert(id.to_string(), value.to_string());
            continue;
        }
        match target.as_str() {
            "tags" => mapped.tags.extend(
                value
                    .split(config.tags_separator.as_str())
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string),
            ),
            "full_name" => {
                let (first, last) = match value.rsplit_once(' ') {
                    Some((f, l)) => (f.trim(), l.trim()),
                    None => (value, ""),
                };
                mapped
                    .fields
                    .entry("first_name")
                    .or_insert(first.to_string());
                if !last.is_empty() {
                    mapped.fields.entry("last_name").or_insert(last.to_string());
                }
            }
            other => {
                let slot = target_slot(other).expect("validated mapping");
                mapped.fields.insert(slot, value.to_string());
            }
        }
    }
    if let Some(email) = mapped.fields.get("email") {
        let ok = normalize::email(email).is_some_and(|e| e.domain().contains('.'));
        if !ok {
            return Err(format!("email {email:?} is not an address"));
        }
        mapped.fields.insert("email", email.trim().to_string());
    }
    if let Some(phone) = mapped.fields.get("phone") {
        // A national form is read in the row's country when it names one.
        let country = mapped.fields.get("country").map(String::as_str);
        match normalize::contact_phone(Some(phone), country, region) {
            Some(PhoneKey::E164(e164)) => {
                mapped.fields.insert("phone", e164);
            }
            _ => {
                let read_in = country
                    .filter(|c| normalize::country_region(c).is_some())
                    .map_or(format!("default region {region_code}"), |c| {
                        format!("country {c}")
                    });
                return Err(format!(
                    "phone {phone:?} is not a valid number (read in {read_in})"
                ));
            }
        }
    }
    let has_identity = ["email", "phone", "first_name", "last_name"]
        .iter()
        .any(|f| mapped.fields.contains_key(f));
    if !has_identity {
        return Err("no email, phone or name to identify the contact".into());
    }
    Ok(mapped)
}

/// Why a row with a name but neither email nor phone, matching no contact, is not created.
pub const NAME_ONLY_CREATE: &str = "no email or phone: a new contact needs one, or a lost answer \
     could create it twice (GHL finds contacts again only by email or phone); add one, or create \
     it in GHL by hand";

/// What became of each row.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RowOutcome {
    pub row: usize,
    /// create, update, unchanged, merge (folded into another row's contact) or reject.
    pub outcome: String,
    /// The GHL contact it updates or merges into (empty for a create).
    pub contact_id: String,
    pub reason: String,
}

/// The migration's result.
#[derive(Debug, Default, Serialize)]
pub struct MigrationSummary {
    pub rows: u64,
    pub creates: u64,
    pub updates: u64,
    pub unchanged: u64,
    pub merges: u64,
    pub rejects: u64,
}

/// Fields filled in (non-empty) on a contact: the most complete of a cluster's contacts is the
/// one a migration row updates.
fn completeness(c: &SnapshotContact) -> usize {
    TARGETS.iter().filter(|f| c.field(f).is_some()).count()
}

/// Whether another contact of the cluster already holds this email or phone. GHL refuses (or
/// merges) a second contact with an email or phone one already has, so a survivor's empty email is
/// not filled with an address its duplicate still holds: the duplicate keeps it until the
/// duplicates are resolved.
fn identity_held_by(field: &str, value: &str, others: &[&SnapshotContact]) -> bool {
    let key = |v: &str| match field {
        "email" => Some(v.trim().to_lowercase()),
        "phone" => Some(digits(v)),
        _ => None,
    };
    let Some(wanted) = key(value) else {
        return false;
    };
    others
        .iter()
        .filter_map(|c| c.field(field))
        .any(|held| key(held).as_deref() == Some(wanted.as_str()))
}

/// The emails and phones every contact of the location holds (and those this migration gives
/// out), keyed as [`identity_held_by`] compares them. GHL allows one contact per email and per
/// phone, so a survivor's empty email is filled only with an address no other contact has: the
/// cluster's duplicates are not the only ones that may hold it (a namesake elsewhere in the
/// location, wrongly left out of the cluster, may), and two contacts with one email is what
/// the merge was meant to end.
struct IdentityIndex {
    held: std::collections::HashSet<(&'static str, String)>,
}

impl IdentityIndex {
    fn of(contacts: &[SnapshotContact]) -> Self {
        let mut held = std::collections::HashSet::new();
        for c in contacts {
            for field in ["email", "phone"] {
                if let Some(key) = c.field(field).and_then(|v| identity_key(field, v)) {
                    held.insert((field, key));
                }
            }
        }
        IdentityIndex { held }
    }

    /// Whether a contact already holds (or this migration gave out) the field's value; for a
    /// field that is not an identity, never.
    fn held(&self, field: &str, value: &str) -> bool {
        let Some(field) = ["email", "phone"].into_iter().find(|f| *f == field) else {
            return false;
        };
        identity_key(field, value).is_some_and(|key| self.held.contains(&(field, key)))
    }

    /// Records that the value is given to a contact.
    fn claim(&mut self, field: &str, value: &str) {
        if let Some(field) = ["email", "phone"].into_iter().find(|f| *f == field)
            && let Some(key) = identity_key(field, value)
        {
            self.held.insert((field, key));
        }
    }
}

/// An email or phone as identities are compared (case and spacing of an address, formatting of a
/// number do not make another one); None for any other field.
fn identity_key(field: &str, value: &str) -> Option<String> {
    match field {
        "email" => Some(value.trim().to_lowercase()),
        "phone" => Some(digits(value)),
        _ => None,
    }
    .filter(|k| !k.is_empty())
}

fn set(desired: &mut DesiredContact, field: &str, value: String) {
    if let Some(field) = ContactField::from_name(field) {
        *field.of_desired_mut(desired) = Some(value);
    }
}

/// Dedupes the mapped rows against themselves and the snapshot's contacts and writes the desired
/// state into `transform_dir`. Existing values are never overwritten: a migration fills what the
/// CRM lacks and adds tags.
pub fn plan_migration(
    rows: &[MappedRow],
    snapshot_contacts: &Path,
    model: &MatchModel,
    region: Region,
    config: &MigrateConfig,
    transform_dir: &Path,
) -> anyhow::Result<(Vec<RowOutcome>, MigrationSummary)> {
    let existing: Vec<SnapshotContact> = read_rows(snapshot_contacts)?;
    let incoming: Vec<(String, &BTreeMap<&'static str, String>)> = rows
        .iter()
        .map(|r| (format!("row:{}", r.row), &r.fields))
        .collect();
    let clusters = match_tables(&existing, &incoming, model, region)?;
    let n_existing = existing.len();
    let mut identities = IdentityIndex::of(&existing);
    let mut desired = Vec::new();
    let mut outcomes = Vec::new();
    let mut summary = MigrationSummary::default();
    for members in &clusters {
        let imported: Vec<&MappedRow> = members
            .iter()
            .filter(|&&i| i >= n_existing)
            .map(|&i| &rows[i - n_existing])
            .collect();
        if imported.is_empty() {
            continue;
        }
        let target = members
            .iter()
            .filter(|&&i| i < n_existing)
            .map(|&i| &existing[i])
            .max_by(|a, b| completeness(a).cmp(&completeness(b)).then(b.id.cmp(&a.id)));
        // The rows' merged values: for each field the first row (in file order) that has one.
        let mut merged: BTreeMap<&'static str, String> = BTreeMap::new();
        let mut custom: BTreeMap<String, String> = BTreeMap::new();
        let mut tags: Vec<String> = config.add_tags.clone();
        for r in &imported {
            for (f, v) in &r.fields {
                merged.entry(f).or_insert_with(|| v.clone());
            }
            for (id, v) in &r.custom {
                custom.entry(id.clone()).or_insert_with(|| v.clone());
            }
            for t in &r.tags {
                if !tags.contains(t) {
                    tags.push(t.clone());
                }
            }
        }
        let mut contact = DesiredContact {
            contact_id: target.map(|t| t.id.clone()),
            ..DesiredContact::default()
        };
        let rows_text = imported
            .iter()
            .map(|r| r.row.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let mut changes = false;
        match target {
            Some(t) => {
                let others: Vec<&SnapshotContact> = members
                    .iter()
                    .filter(|&&i| i < n_existing && existing[i].id != t.id)
                    .map(|&i| &existing[i])
                    .collect();
                for (f, v) in &merged {
                    if t.field(f).is_none()
                        && !identity_held_by(f, v, &others)
                        && !identities.held(f, v)
                    {
                        identities.claim(f, v);
                        set(&mut contact, f, v.clone());
                        changes = true;
                    }
                }
                let have: Vec<String> = t.tags.iter().map(|x| x.to_lowercase()).collect();
                contact.add_tags = tags
                    .iter()
                    .filter(|x| !have.contains(&x.to_lowercase()))
                    .cloned()
                    .collect();
                changes |= !contact.add_tags.is_empty();
                for (id, v) in &custom {
                    let current = t
                        .custom_fields
                        .iter()
                        .find(|c| &c.id == id)
                        .and_then(|c| c.text());
                    if current.is_none() {
                        contact.custom_fields.push(DesiredCustomField {
                            id: id.clone(),
                            value: v.clone(),
                        });
                        changes = true;
                    }
                }
                contact.reason = format!("migration rows {rows_text} match contact {}", t.id);
            }
            None if !merged.contains_key("email") && !merged.contains_key("phone") => {
                // Nothing GHL can find a created contact by again (search and the duplicate
                // search key on email and phone): after a lost answer, a retry would create it a
                // second time. Such rows are set aside for the user to complete or create by hand;
                // a name-only row that matches an existing contact still updates it.
                for r in &imported {
                    outcomes.push(RowOutcome {
                        row: r.row,
                        outcome: "reject".into(),
                        contact_id: String::new(),
                        reason: NAME_ONLY_CREATE.into(),
                    });
                }
                continue;
            }
            None => {
                for (f, v) in &merged {
                    set(&mut contact, f, v.clone());
                }
                if contact.source.is_none() {
                    contact.source = config.source.clone();
                }
                contact.add_tags = tags;
                contact.custom_fields = custom
                    .iter()
                    .map(|(id, v)| DesiredCustomField {
                        id: id.clone(),
                        value: v.clone(),
                    })
                    .collect();
                contact.reason = format!("migration rows {rows_text}");
                changes = true;
            }
        }
        for (k, r) in imported.iter().enumerate() {
            let (outcome, reason) = match (k, target, changes) {
                (0, None, _) => ("create", "no existing contact matches".to_string()),
                (0, Some(t), true) => ("update", format!("fills empty fields of {}", t.id)),
                (0, Some(t), false) => ("unchanged", format!("{} already has everything", t.id)),
                (_, _, _) => (
                    "merge",
                    format!("duplicate of row {} in the file", imported[0].row),
                ),
            };
            outcomes.push(RowOutcome {
                row: r.row,
                outcome: outcome.to_string(),
                contact_id: target.map(|t| t.id.clone()).unwrap_or_default(),
                reason,
            });
        }
        if changes {
            desired.push(contact);
        }
    }
    outcomes.sort_by_key(|o| o.row);
    for o in &outcomes {
        match o.outcome.as_str() {
            "create" => summary.creates += 1,
            "update" => summary.updates += 1,
            "unchanged" => summary.unchanged += 1,
            // Counted with the caller's other rejects.
            "reject" => {}
            _ => summary.merges += 1,
        }
    }
    std::fs::create_dir_all(transform_dir)
        .with_context(|| format!("creating {}", transform_dir.display()))?;
    write_rows(
        &transform_dir.join(crate::snapshot::desired::DESIRED_CONTACTS_FILE),
        &desired_contacts_schema(),
        &desired,
    )?;
    write_rows::<crate::snapshot::desired::DesiredMessage>(
        &transform_dir.join("desired_messages.parquet"),
        &desired_messages_schema(),
        &[],
    )?;
    write_rows::<crate::snapshot::desired::DesiredNote>(
        &transform_dir.join("desired_notes.parquet"),
        &desired_notes_schema(),
        &[],
    )?;
    write_rows::<crate::snapshot::desired::DesiredBlocked>(
        &transform_dir.join("desired_blocked.parquet"),
        &desired_blocked_schema(),
        &[],
    )?;
    Ok((outcomes, summary))
}

#[cfg(test)]
mod tests;
