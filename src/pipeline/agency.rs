//! The rules of one BulkSMS account shared by many locations, and the shards of a location list.
//! Pure: the orchestrator ([`super::locations`]) reads the files and applies what these decide.
//!
//! - A message belongs to every location whose contacts hold its number (a STOP sets DND in each
//!   of them; the blocked list is the account's, so every location reads all of it).
//! - A number no location holds is adopted by exactly one location: the one that last texted it
//!   (sends are attributed to locations by their `userSuppliedId`), else
//!   `[bulksms] default_location`; with neither, nobody adopts it and its inbound texts make no
//!   lead (the run warns).
//! - `run --shard i/n` runs the locations whose id's SHA-256, first 8 bytes read big-endian,
//!   mod n is i: stable across runs, machines and list order.

use crate::transform::agency_routing::message_number;
use crate::transform::inputs::MessageRowIn;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Which locations hold each number (digits), from every location's latest contacts.
#[derive(Debug, Clone, Default)]
pub struct NumberIndex {
    holders: HashMap<String, BTreeSet<String>>,
}

impl NumberIndex {
    /// Records that `location`'s contacts hold `numbers`.
    pub fn add(&mut self, location: &str, numbers: impl IntoIterator<Item = String>) {
        for number in numbers {
            self.holders
                .entry(number)
                .or_default()
                .insert(location.to_string());
        }
    }

    /// The locations holding a number (empty when none).
    pub fn holders(&self, number: &str) -> impl Iterator<Item = &String> {
        self.holders.get(number).into_iter().flatten()
    }

    /// Whether any location holds the number.
    pub fn is_held(&self, number: &str) -> bool {
        self.holders.contains_key(number)
    }
}

/// Who takes the numbers no location holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adoption {
    /// Numbers adopted, by location.
    pub by_location: BTreeMap<String, BTreeSet<String>>,
    /// Numbers that texted in, no location holds and nobody adopted (no send of ours to them
    /// and no `default_location`).
    pub orphans: BTreeSet<String>,
}

impl Adoption {
    /// The numbers a location adopted.
    pub fn of(&self, location: &str) -> BTreeSet<String> {
        self.by_location.get(location).cloned().unwrap_or_default()
    }
}

/// Gives each number no location holds to one location: the one whose send to it is the latest
/// (`sent_by`: `userSuppliedId` → location), else `default_location`.
pub fn adopt(
    messages: &[MessageRowIn],
    index: &NumberIndex,
    sent_by: &HashMap<String, String>,
    default_location: Option<&str>,
) -> Adoption {
    // Per unheld number: the latest attributed send (time, id, location) and whether it texted in.
    let mut last_send: HashMap<String, (Option<chrono::DateTime<chrono::Utc>>, u64, &str)> =
        HashMap::new();
    let mut inbound: BTreeSet<String> = BTreeSet::new();
    let mut unheld: BTreeSet<String> = BTreeSet::new();
    for m in messages {
        let Some(number) = message_number(m).filter(|n| !index.is_held(n)) else {
            continue;
        };
        unheld.insert(number.clone());
        if m.message_type != "SENT" {
            inbound.insert(number);
            continue;
        }
        let Some(location) = m.user_supplied_id.as_deref().and_then(|id| sent_by.get(id)) else {
            continue;
        };
        let this = (m.submitted(), m.id, location.as_str());
        let entry = last_send.entry(number).or_insert(this);
        if (this.0, this.1) > (entry.0, entry.1) {
            *entry = this;
        }
    }
    let mut adoption = Adoption::default();
    for number in unheld {
        let location = last_send
            .get(&number)
            .map(|(_, _, location)| *location)
            .or(default_location);
        match location {
            Some(location) => {
                adoption
                    .by_location
                    .entry(location.to_string())
                    .or_default()
                    .insert(number);
            }
            None if inbound.contains(&number) => {
                adoption.orphans.insert(number);
            }
            None => {}
        }
    }
    adoption
}

/// `--shard i/n`: one of n stable slices of the locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This slice, from 0.
    pub index: u64,
    /// How many slices.
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("--shard takes i/n (e.g. 0/4), got {text:?}"))?;
        let index: u64 = i
            .trim()
            .parse()
            .map_err(|_| format!("--shard {text:?}: {i:?} is not a number"))?;
        let count: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("--shard {text:?}: {n:?} is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "--shard {text:?}: needs 0 <= i < n (shards count from 0)"
            ));
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether a location falls in this shard.
    pub fn holds(&self, location_id: &str) -> bool {
        shard_of(location_id, self.count) == self.index
    }
}

/// The shard (of `count`) a location belongs to: its id's SHA-256, first 8 bytes big-endian, mod
/// `count`.
pub fn shard_of(location_id: &str, count: u64) -> u64 {
    let digest = Sha256::digest(location_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: u64, kind: &str, number: &str, usid: Option<&str>, at: &str) -> MessageRowIn {
        let (from, to) = if kind == "SENT" {
            (None, Some(number.to_string()))
        } else {
            (Some(number.to_string()), None)
        };
        MessageRowIn {
            id,
            message_type: kind.into(),
            from,
            to,
            body: Some("hello".into()),
            submission_date: Some(at.into()),
            user_supplied_id: usid.map(str::to_string),
            ..MessageRowIn::default()
        }
    }

    #[test]
    fn an_unknown_number_goes_to_the_location_that_last_texted_it_else_the_default() {
        let mut index = NumberIndex::default();
        index.add("a", ["15550000001".to_string()]);
        index.add("b", ["15550000001".to_string()]);
        let sent_by: HashMap<String, String> = [
            ("csA".to_string(), "a".to_string()),
            ("csB".to_string(), "b".to_string()),
        ]
        .into();
        let messages = vec![
            // Held by a and b: nobody adopts it.
            message(1, "RECEIVED", "+15550000001", None, "2026-01-01T10:00:00Z"),
            // Texted by a, later by b, then it writes in: b's.
            message(
                2,
                "SENT",
                "+15550000002",
                Some("csA"),
                "2026-01-01T10:00:00Z",
            ),
            message(
                3,
                "SENT",
                "+15550000002",
                Some("csB"),
                "2026-01-02T10:00:00Z",
            ),
            message(4, "RECEIVED", "+15550000002", None, "2026-01-03T10:00:00Z"),
            // Never texted by us: the default's.
            message(5, "RECEIVED", "+15550000003", None, "2026-01-03T10:00:00Z"),
            // A send of no known location does not count.
            message(
                6,
                "SENT",
                "+15550000003",
                Some("csX"),
                "2026-01-04T10:00:00Z",
            ),
        ];
        let adoption = adopt(&messages, &index, &sent_by, Some("c"));
        assert_eq!(adoption.of("b"), ["15550000002".to_string()].into());
        assert_eq!(adoption.of("c"), ["15550000003".to_string()].into());
        assert!(adoption.of("a").is_empty());
        assert!(adoption.orphans.is_empty());
        // Every unheld number has exactly one owner.
        let owners: usize = adoption.by_location.values().map(BTreeSet::len).sum();
        assert_eq!(owners, 2);

        let without_default = adopt(&messages, &index, &sent_by, None);
        assert_eq!(without_default.orphans, ["15550000003".to_string()].into());
        assert!(without_default.of("c").is_empty());
    }

    #[test]
    fn shards_are_stable_and_cover_every_location_once() {
        let ids: Vec<String> = (0..200).map(|i| format!("loc{i}")).collect();
        let shards: Vec<Shard> = (0..4).map(|i| Shard { index: i, count: 4 }).collect();
        for id in &ids {
            assert_eq!(shards.iter().filter(|s| s.holds(id)).count(), 1, "{id}");
        }
        // Every shard gets some of 200 locations.
        for s in &shards {
            assert!(ids.iter().filter(|id| s.holds(id)).count() > 20);
        }
        // Fixed by the id alone (the documented hash), not by the process or the list.
        assert_eq!(shard_of("loc0", 1_000_003), shard_of("loc0", 1_000_003));
        let digest = Sha256::digest(b"loc0");
        let expected = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % 7;
        assert_eq!(shard_of("loc0", 7), expected);
    }

    #[test]
    fn shard_text_is_checked() {
        assert_eq!("1/3".parse::<Shard>(), Ok(Shard { index: 1, count: 3 }));
        for bad in ["3/3", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
