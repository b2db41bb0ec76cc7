//! What earlier runs of the location saw and decided, as this run's transform needs it: "new"
//! opt-outs, triggers and survivors are measured against them.

use super::triggers::PreviousState;
use crate::clock::Clock;
use crate::matching::earlier_decisions::AcceptedPairs;
use crate::snapshot::contact::{SnapshotContact, SnapshotCustomField};
use crate::snapshot::contract::ContactField;
use crate::snapshot::contract::transform_outputs::{CLUSTERS_FILE, NORMALIZED_FILE, PAIRS_FILE};
use crate::snapshot::desired::{DESIRED_CONTACTS_FILE, DesiredContact, read_columns, read_rows};
use crate::snapshot::phone::digits;
use crate::snapshot::run::RunDir;
use crate::snapshot::schema::BlockedNumberRow;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};

/// The newest earlier run that acted on the events it saw: its plan was accepted, so what it fired
/// is owed in the ledger whatever happened to its load. A run killed before its plan, or refused by
/// a safety limit, acted on nothing, and the events it saw must fire again. Triggers and opt-outs
/// both measure "new" against this run. `None` when no run has acted on this location yet.
pub fn previous_acted_run(run: &RunDir) -> anyhow::Result<Option<RunDir>> {
    Ok(run.previous_acted()?)
}

/// What [`previous_acted_run`] saw, for the triggers.
pub fn previous_state(run: &RunDir) -> anyhow::Result<Option<PreviousState>> {
    let Some(previous) = previous_acted_run(run)? else {
        return Ok(None);
    };
    #[derive(Deserialize)]
    struct ContactTags {
        id: String,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        contact_type: Option<String>,
        #[serde(default)]
        custom_fields: Vec<SnapshotCustomField>,
    }
    #[derive(Deserialize)]
    struct MessageStatus {
        id: u64,
        status_type: Option<String>,
    }
    let extract = previous.extract_dir();
    let contacts: Vec<ContactTags> = read_rows(&extract.join("ghl/contacts.parquet"))?;
    let messages: Vec<MessageStatus> = read_rows(&extract.join("bulksms/messages.parquet"))?;
    Ok(Some(PreviousState {
        run_id: previous.id.clone(),
        contact_types: contacts
            .iter()
            .map(|c| (c.id.clone(), c.contact_type.clone()))
            .collect(),
        contact_fields: contacts
            .iter()
            .map(|c| (c.id.clone(), field_texts(&c.custom_fields)))
            .collect(),
        contact_tags: contacts
            .into_iter()
            .map(|c| (c.id, c.tags.into_iter().collect()))
            .collect(),
        message_status: messages
            .into_iter()
            .map(|m| (m.id, m.status_type))
            .collect(),
    }))
}

/// Custom field values as text, by field id (empty values left out).
pub fn field_texts(fields: &[SnapshotCustomField]) -> HashMap<String, String> {
    fields
        .iter()
        .filter_map(|f| Some((f.id.clone(), f.text()?)))
        .filter(|(_, v)| !v.trim().is_empty())
        .collect()
}

/// When the run read the systems (its extract's finish), for windows that start at the run; the
/// clock's time when the run has no extract manifest.
pub fn run_time(run: &RunDir, clock: &dyn Clock) -> chrono::DateTime<chrono::Utc> {
    run.extract_manifest()
        .map(|m| m.finished_at)
        .unwrap_or_else(|| clock.now())
}

/// The blocked numbers (digits) [`previous_acted_run`] saw; `None` when no run has acted yet.
pub fn previous_blocked(run: &RunDir) -> anyhow::Result<Option<HashSet<String>>> {
    let Some(previous) = previous_acted_run(run)? else {
        return Ok(None);
    };
    let rows: Vec<BlockedNumberRow> = read_rows(
        &previous
            .extract_dir()
            .join("bulksms/blocked_numbers.parquet"),
    )?;
    Ok(Some(rows.iter().map(|b| digits(&b.phone_number)).collect()))
}

/// The contacts the latest earlier run with a finished transform read, as survivorship dates
/// them: when their data last changed.
#[derive(Debug, Default)]
pub struct PreviousContacts {
    /// As that run read them, by id, each dated by its data time as that run worked it out: its
    /// raw `dateUpdated` would carry the bump of our writes of the night before, and a bump
    /// undone one night would come back the next.
    pub read: HashMap<String, SnapshotContact>,
    /// The contacts that run gave golden values, as those values leave them: data that changed
    /// only by our own fill is not a change by a person, and keeps its time.
    pub filled: HashMap<String, SnapshotContact>,
}

/// [`PreviousContacts`] of the latest earlier run with a finished transform (empty on a first
/// run).
pub fn previous_snapshot(run: &RunDir) -> anyhow::Result<PreviousContacts> {
    #[derive(Deserialize)]
    struct DataTime {
        id: String,
        data_updated: Option<String>,
    }
    let Some(previous) = run.previous_transformed()? else {
        return Ok(PreviousContacts::default());
    };
    let contacts: Vec<SnapshotContact> =
        read_rows(&previous.extract_dir().join("ghl/contacts.parquet"))?;
    let times: HashMap<String, String> = read_columns::<DataTime>(
        &previous.transform_dir().join(NORMALIZED_FILE),
        &["id", "data_updated"],
    )?
    .into_iter()
    .filter_map(|t| Some((t.id, t.data_updated?)))
    .collect();
    let read: HashMap<String, SnapshotContact> = contacts
        .into_iter()
        .map(|mut c| {
            if let Some(time) = times.get(&c.id) {
                c.date_updated = Some(time.clone());
            }
            (c.id.clone(), c)
        })
        .collect();
    let desired: Vec<DesiredContact> =
        read_rows(&previous.transform_dir().join(DESIRED_CONTACTS_FILE))?;
    let filled = desired
        .iter()
        .filter(|d| d.duplicate_of.is_none())
        .filter_map(|d| {
            let mut c = read.get(d.contact_id.as_deref()?)?.clone();
            let mut changed = false;
            for field in ContactField::ALL {
                if let Some(value) = field.of_desired(d) {
                    *field.of_contact_mut(&mut c) = Some(value.clone());
                    changed = true;
                }
            }
            changed.then(|| (c.id.clone(), c))
        })
        .collect();
    Ok(PreviousContacts { read, filled })
}

/// The contacts that survived a duplicate cluster in the latest earlier run whose transform
/// finished (empty on a first run).
pub fn previous_survivors(run: &RunDir) -> anyhow::Result<HashSet<String>> {
    let Some(previous) = run.previous_transformed()? else {
        return Ok(HashSet::new());
    };
    #[derive(Deserialize)]
    struct Survivor {
        id: String,
        survivor_id: String,
    }
    let rows: Vec<Survivor> = read_rows(&previous.transform_dir().join(CLUSTERS_FILE))?;
    Ok(rows
        .into_iter()
        .filter(|r| r.id != r.survivor_id)
        .map(|r| r.survivor_id)
        .collect())
}

/// What the latest earlier run with a finished transform decided about pairs: the pairs it
/// accepted, and the contacts it read them from ([`PreviousContacts::read`] of the same run).
pub struct EarlierPairs<'a> {
    pub accepted: AcceptedPairs,
    pub contacts: &'a HashMap<String, SnapshotContact>,
}

/// The pairs the latest earlier run whose transform finished accepted; `None` on a first run, or
/// when that run left no pairs file (written before pairs were kept).
pub fn previous_accepted_pairs(run: &RunDir) -> anyhow::Result<Option<AcceptedPairs>> {
    let Some(previous) = run.previous_transformed()? else {
        return Ok(None);
    };
    let pairs = previous.transform_dir().join(PAIRS_FILE);
    if !pairs.exists() {
        return Ok(None);
    }
    Ok(Some(AcceptedPairs::new(
        crate::matching::io::read_accepted_pairs(&pairs)?,
    )))
}

/// The run's date (UTC), from its manifest's finish time (the clock's date when it has none); the
/// digest fires once per date.
pub fn run_date(run: &RunDir, clock: &dyn Clock) -> String {
    run_time(run, clock).format("%Y-%m-%d").to_string()
}

/// The contacts [`previous_acted_run`] saw, by id (empty when no run has acted yet).
pub fn previous_acted_contacts(run: &RunDir) -> anyhow::Result<HashMap<String, SnapshotContact>> {
    Ok(match previous_acted_run(run)? {
        Some(acted) => {
            read_rows::<SnapshotContact>(&acted.extract_dir().join("ghl/contacts.parquet"))?
                .into_iter()
                .map(|c| (c.id.clone(), c))
                .collect()
        }
        None => HashMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use chrono::TimeZone;

    #[test]
    fn a_run_without_an_extract_manifest_is_dated_by_the_clock() {
        // A date years from wall time: reading Utc::now() instead of the clock cannot pass.
        let dir = tempfile::tempdir().expect("tempdir");
        let run = RunDir {
            id: "20190302T230000Z-0001".into(),
            path: dir.path().join("runs/20190302T230000Z-0001"),
        };
        let at = chrono::Utc
            .with_ymd_and_hms(2019, 3, 2, 23, 59, 30)
            .unwrap();
        let clock = FixedClock::at(at);
        assert!(run.extract_manifest().is_none(), "the run has no manifest");
        assert_eq!(run_time(&run, &clock), at);
        assert_eq!(run_date(&run, &clock), "2019-03-02");
    }
}
