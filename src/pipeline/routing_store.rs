//! Where a multi-location pipeline keeps what routing the shared BulkSMS account needs: which
//! numbers each location's contacts hold, and which location planned each send (by its
//! `userSuppliedId`). Two backends, one routing ([`super::agency`] decides on what either reads):
//!
//! - `Local` (the default): the state directory. A location's numbers are read from its newest
//!   finished extract in `STATE/locations/<id>/`, sends from `STATE/agency/sends.json`. Shards on
//!   one machine share them.
//! - `Postgres` (`[state] url`): the database's routing rows, keyed by the pipeline's name. A
//!   location's numbers are replaced after each of its extracts and each send is recorded before
//!   it is made, so the shards on every machine route alike.

use super::agency::NumberIndex;
use crate::config::PipelineConfig;
use crate::normalize;
use crate::snapshot::contact::SnapshotContact;
use crate::snapshot::contract::plan::{Plan, PlanOp, user_supplied_id};
use crate::snapshot::desired::read_rows;
use crate::snapshot::run::{RunDir, latest_complete_extract};
use crate::state::pg_routing::PgRouting;
use crate::transform::inputs::MessageRowIn;
use anyhow::Context;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Folder under the pipeline's state directory for what the locations share.
pub const AGENCY_DIR: &str = "agency";
/// `agency/sends.json`: which location planned each send, by its `userSuppliedId`.
pub const SENDS_FILE: &str = "sends.json";

/// The routing store of one multi-location pipeline.
pub enum RoutingStore {
    Local(LocalRouting),
    Postgres(PgRouting),
}

/// The local backend: the pipeline's state directory.
pub struct LocalRouting {
    /// Boxed: a pipeline's configuration is large beside a connection handle.
    config: Box<PipelineConfig>,
    agency_dir: PathBuf,
    /// `sends.json` is read, extended and rewritten: one location at a time.
    sends: Mutex<()>,
}

/// The number index, and the locations nothing is known of yet.
pub struct IndexRead {
    pub index: NumberIndex,
    /// Locations of the pipeline whose numbers no runner has recorded (never extracted): their
    /// contacts' numbers look unheld until they are.
    pub unknown: Vec<String>,
}

impl RoutingStore {
    /// The store `config` names: PostgreSQL with `[state] url`, else the state directory.
    pub fn open(config: &PipelineConfig) -> anyhow::Result<RoutingStore> {
        match &config.state.url {
            Some(url) => Ok(RoutingStore::Postgres(PgRouting::open(
                url,
                &config.pipeline.name,
            )?)),
            None => {
                let agency_dir = config.state_dir().join(AGENCY_DIR);
                std::fs::create_dir_all(&agency_dir)
                    .with_context(|| format!("creating {}", agency_dir.display()))?;
                Ok(RoutingStore::Local(LocalRouting {
                    config: Box::new(config.clone()),
                    agency_dir,
                    sends: Mutex::new(()),
                }))
            }
        }
    }

    /// Records the numbers of a location's finished extract `run` (`location` is that location's
    /// pipeline). Locally the run itself is the record.
    pub fn extracted(&self, location: &PipelineConfig, run: &RunDir) -> anyhow::Result<()> {
        match self {
            RoutingStore::Local(_) => Ok(()),
            RoutingStore::Postgres(pg) => {
                let numbers = extract_numbers(location, &run.extract_dir())?;
                pg.replace_numbers(&location.ghl.location_id, &run.id, numbers)?;
                Ok(())
            }
        }
    }

    /// Which of `locations` hold each number: each location's latest recorded numbers.
    pub fn number_index(&self, locations: &[String]) -> anyhow::Result<IndexRead> {
        let mut read = IndexRead {
            index: NumberIndex::default(),
            unknown: Vec::new(),
        };
        match self {
            RoutingStore::Local(local) => {
                for id in locations {
                    match local.latest_numbers(id)? {
                        Some(numbers) => read.index.add(id, numbers),
                        None => read.unknown.push(id.clone()),
                    }
                }
            }
            RoutingStore::Postgres(pg) => {
                let stored = pg.numbers(locations)?;
                let mut by_location: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for (location, number) in stored.numbers {
                    by_location.entry(location).or_default().push(number);
                }
                for (location, numbers) in by_location {
                    read.index.add(&location, numbers);
                }
                read.unknown = locations
                    .iter()
                    .filter(|id| !stored.recorded.contains(*id))
                    .cloned()
                    .collect();
            }
        }
        Ok(read)
    }

    /// The location that planned each send of `messages` (those with a `userSuppliedId` some
    /// location recorded).
    pub fn sent_by(&self, messages: &[MessageRowIn]) -> anyhow::Result<HashMap<String, String>> {
        let ids: Vec<String> = messages
            .iter()
            .filter(|m| m.message_type == "SENT")
            .filter_map(|m| m.user_supplied_id.clone())
            .collect();
        match self {
            RoutingStore::Local(local) => {
                let mut all = read_sends(&local.agency_dir)?;
                Ok(ids
                    .into_iter()
                    .filter_map(|id| all.remove_entry(&id))
                    .collect())
            }
            RoutingStore::Postgres(pg) => Ok(pg.sent_by(ids)?),
        }
    }

    /// Records which location owns each send of a plan, before any of it is sent: a number texted
    /// by a location and held by none later is adopted by the location that texted it last.
    pub fn record_sends(&self, location: &str, plan: &Plan) -> anyhow::Result<()> {
        let ids: Vec<String> = plan
            .operations
            .iter()
            .filter(|p| matches!(p.op, PlanOp::SendSms { .. }))
            .map(|p| user_supplied_id(&p.key))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        match self {
            RoutingStore::Local(local) => {
                let _one_at_a_time = local.sends.lock().unwrap_or_else(|p| p.into_inner());
                let mut sends: BTreeMap<String, String> =
                    read_sends(&local.agency_dir)?.into_iter().collect();
                for id in ids {
                    sends.insert(id, location.to_string());
                }
                let json = serde_json::to_vec(&sends)?;
                crate::snapshot::atomic::write(&local.agency_dir.join(SENDS_FILE), &json)?;
                Ok(())
            }
            RoutingStore::Postgres(pg) => Ok(pg.record_sends(location, ids)?),
        }
    }
}

impl LocalRouting {
    /// A location's numbers from its newest finished extract in this state directory (this run's
    /// for the locations that got through it; the one before for those that failed and for other
    /// shards' locations whose state is here); `None` when it has none.
    fn latest_numbers(&self, id: &str) -> anyhow::Result<Option<Vec<String>>> {
        let location = self.config.for_location(id);
        let Some((run, _)) = latest_complete_extract(&location.state_dir())
            .with_context(|| format!("listing the runs of location {id}"))?
        else {
            return Ok(None);
        };
        extract_numbers(&location, &run.extract_dir()).map(Some)
    }
}

/// The numbers (digits, as linking reads them) of the contacts of an extract.
fn extract_numbers(location: &PipelineConfig, extract_dir: &Path) -> anyhow::Result<Vec<String>> {
    let region = normalize::region(&location.pipeline.default_region);
    let contacts: Vec<SnapshotContact> = read_rows(&extract_dir.join("ghl/contacts.parquet"))?;
    Ok(normalize::contact_rows(&contacts, region)
        .iter()
        .filter_map(normalize::link_digits)
        .collect())
}

fn read_sends(agency_dir: &Path) -> anyhow::Result<HashMap<String, String>> {
    let path = agency_dir.join(SENDS_FILE);
    if !path.exists() {
        return Ok(HashMap::new());
    }
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}
