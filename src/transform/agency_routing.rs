//! Which of one BulkSMS account's messages belong to a location when one account serves many
//! locations. The pipeline writes `extract/agency_routing.json` into each location's run after
//! every location's contacts are extracted; transform keeps a message when its number is held by a
//! contact of this location, or when no location holds it and the number was adopted here (the
//! location that last texted it, else `[bulksms] default_location`). Without the file (one
//! location per account) every message is kept, as before.

use super::inputs::MessageRowIn;
use crate::normalize::link_digits;
use crate::snapshot::contract::transform_outputs::NormalizedRow;
use crate::snapshot::phone::digits;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::path::Path;

/// File name inside a run's `extract/`.
pub const AGENCY_ROUTING_FILE: &str = "agency_routing.json";

/// What a location of a multi-location pipeline takes of the shared account's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgencyRouting {
    /// The location this run is of.
    pub location_id: String,
    /// Numbers (digits) no location's contacts hold whose messages this location takes: their
    /// inbound texts become leads here and nowhere else.
    pub adopted_numbers: BTreeSet<String>,
}

impl AgencyRouting {
    /// The routing of a run's extract, `None` when the run is not part of a multi-location run.
    pub fn read(extract_dir: &Path) -> anyhow::Result<Option<AgencyRouting>> {
        let path = extract_dir.join(AGENCY_ROUTING_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let routing = serde_json::from_slice(&bytes)
            .with_context(|| format!("parsing {}", path.display()))?;
        Ok(Some(routing))
    }

    /// Writes the routing into a run's extract folder (atomically: a rerun reads it whole).
    pub fn write(&self, extract_dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        crate::snapshot::atomic::write(&extract_dir.join(AGENCY_ROUTING_FILE), &json)?;
        Ok(())
    }

    /// The messages of this location: those whose number (the recipient of a send, the sender
    /// of anything else) a contact here holds, or that this location adopted.
    pub fn keep(
        &self,
        messages: Vec<MessageRowIn>,
        normalized: &[NormalizedRow],
    ) -> Vec<MessageRowIn> {
        let held: HashSet<String> = normalized.iter().filter_map(link_digits).collect();
        messages
            .into_iter()
            .filter(|m| {
                message_number(m)
                    .is_some_and(|n| held.contains(&n) || self.adopted_numbers.contains(&n))
            })
            .collect()
    }
}

/// The other party of a message, as digits: the recipient of a send, the sender of the rest
/// (as linking reads it).
pub fn message_number(m: &MessageRowIn) -> Option<String> {
    let number = match m.message_type.as_str() {
        "SENT" => m.to.as_deref(),
        _ => m.from.as_deref(),
    };
    number.map(digits).filter(|n| n.len() >= 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbound(id: u64, from: &str) -> MessageRowIn {
        MessageRowIn {
            id,
            message_type: "RECEIVED".into(),
            from: Some(from.into()),
            body: Some("hi".into()),
            ..MessageRowIn::default()
        }
    }

    fn held(e164: &str) -> NormalizedRow {
        NormalizedRow {
            phone_e164: Some(e164.into()),
            ..NormalizedRow::default()
        }
    }

    #[test]
    fn a_location_keeps_its_numbers_and_its_adopted_ones_only() {
        let routing = AgencyRouting {
            location_id: "a".into(),
            adopted_numbers: ["15550000003".to_string()].into(),
        };
        let messages = vec![
            inbound(1, "+15550000001"),
            inbound(2, "+15550000002"),
            inbound(3, "+15550000003"),
            MessageRowIn {
                id: 4,
                message_type: "SENT".into(),
                to: Some("+15550000001".into()),
                ..MessageRowIn::default()
            },
        ];
        let kept = routing.keep(messages, &[held("+15550000001")]);
        let ids: Vec<u64> = kept.iter().map(|m| m.id).collect();
        // 2 is another location's (or nobody's and adopted elsewhere): not this one's.
        assert_eq!(ids, vec![1, 3, 4]);
    }

    #[test]
    fn the_file_round_trips_and_its_absence_means_no_routing() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(AgencyRouting::read(dir.path()).expect("read"), None);
        let routing = AgencyRouting {
            location_id: "a".into(),
            adopted_numbers: ["1555".to_string()].into(),
        };
        routing.write(dir.path()).expect("write");
        assert_eq!(
            AgencyRouting::read(dir.path()).expect("read"),
            Some(routing)
        );
    }
}
