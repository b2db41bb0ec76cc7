//! The level cache: levels of value pairs a worker has already compared.

use super::PreparedTable;
use crate::matching::model::FieldKind;

/// Remembers the level of value pairs already compared, per field, for the kinds whose comparison
/// costs string work (names, free text, codes): the same two first names meet in thousands of
/// pairs. One cache per worker; each is a fixed direct-mapped table small enough to stay in the
/// CPU's cache, where a newer pair simply overwrites an older one.
pub struct LevelCache {
    pub(super) fields: Vec<Option<PairCache>>,
    /// Swapped names: (first-name code, last-name code) → whether the two are close.
    pub(super) swapped: PairCache,
}

/// Slots of one cache (a power of two): 512 KiB.
const CACHE_SLOTS_LOG2: u32 = 16;
const EMPTY_SLOT: u64 = u64::MAX;

/// A direct-mapped cache from a pair of codes (each below 2^28) to a byte.
pub(super) struct PairCache {
    slots: Box<[u64]>,
}

impl PairCache {
    fn new() -> Self {
        PairCache {
            slots: vec![EMPTY_SLOT; 1 << CACHE_SLOTS_LOG2].into_boxed_slice(),
        }
    }

    pub(super) fn key(a: u32, b: u32) -> u64 {
        (u64::from(a) << 28) | u64::from(b)
    }

    fn slot(key: u64) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - CACHE_SLOTS_LOG2)) as usize
    }

    pub(super) fn get(&self, key: u64) -> Option<u8> {
        let entry = self.slots[Self::slot(key)];
        (entry != EMPTY_SLOT && entry >> 8 == key).then_some(entry as u8)
    }

    pub(super) fn put(&mut self, key: u64, value: u8) {
        self.slots[Self::slot(key)] = (key << 8) | u64::from(value);
    }
}

/// Codes at or above this are not cached (the cache key holds 28 bits per code).
pub(super) const CACHEABLE_CODES: usize = 1 << 28;

impl LevelCache {
    pub fn new(table: &PreparedTable) -> Self {
        LevelCache {
            fields: table
                .fields
                .iter()
                .zip(&table.values)
                .map(|(f, v)| {
                    let text = matches!(
                        f.kind,
                        FieldKind::GivenName
                            | FieldKind::FamilyName
                            | FieldKind::Text
                            | FieldKind::Code
                    );
                    (text && v.len() < CACHEABLE_CODES).then(PairCache::new)
                })
                .collect(),
            swapped: PairCache::new(),
        }
    }
}
