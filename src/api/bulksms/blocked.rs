//! Paging `GET /blocked-numbers` by `min-id`: the one loop extract and load share.
//!
//! The spec pages "with the last id + 1" and types ids as int32, but ids may come as strings
//! (`"234"`, like message ids), and nothing promises a page is full while more remain. So a page
//! advances on the largest id it holds, numeric or numeric text; only an empty page, or a page
//! that adds no entry not already seen, ends the walk (a server that ignores `min-id` or ids that
//! cannot be read as numbers would otherwise loop forever).

use super::types::BlockedNumber;
use super::{BulkSmsClient, MAX_BLOCKED_PAGE};
use crate::api::error::ApiError;
use serde_json::Value;
use std::collections::HashSet;

/// A blocked-number id as a number: a JSON number or a string of digits.
pub fn blocked_number_id(id: &Value) -> Option<u64> {
    id.as_u64()
        .or_else(|| id.as_str().and_then(|s| s.trim().parse().ok()))
}

/// One page of the walk: the entries not seen before, and the `min-id` it was asked with.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockedPage {
    pub min_id: u64,
    pub entries: Vec<BlockedNumber>,
}

/// Where a walk over the blocked list stands.
#[derive(Debug, Clone)]
pub struct BlockedPaging {
    next_min_id: u64,
    seen: HashSet<String>,
    finished: bool,
}

impl BlockedPaging {
    /// A walk over the entries with id above `max_id_read` (0: the whole list).
    pub fn after(max_id_read: u64) -> Self {
        BlockedPaging {
            next_min_id: max_id_read.saturating_add(1),
            seen: HashSet::new(),
            finished: false,
        }
    }

    /// The `min-id` of the next request.
    pub fn next_min_id(&self) -> u64 {
        self.next_min_id
    }

    /// True once the walk has ended.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Takes in the answer to a request with [`BlockedPaging::next_min_id`]: the entries not seen
    /// before, or `None` when the walk has ended.
    pub fn absorb(&mut self, page: Vec<BlockedNumber>) -> Option<BlockedPage> {
        if self.finished {
            return None;
        }
        let min_id = self.next_min_id;
        let largest = page.iter().filter_map(|e| blocked_number_id(&e.id)).max();
        let entries: Vec<BlockedNumber> = page
            .into_iter()
            .filter(|e| self.seen.insert(e.id.to_string()))
            .collect();
        if entries.is_empty() {
            // Empty (the end), or a page of entries already read (min-id ignored, or ids that
            // cannot advance it): either way there is nothing more to get.
            self.finished = true;
            return None;
        }
        match largest {
            Some(id) if id >= self.next_min_id => self.next_min_id = id + 1,
            _ => {
                tracing::warn!(
                    min_id,
                    "GET /blocked-numbers: no id on this page moves min-id on; stopping after it"
                );
                self.finished = true;
            }
        }
        Some(BlockedPage { min_id, entries })
    }
}

impl BulkSmsClient {
    /// The next page of a walk over the blocked list (`None` at its end).
    pub async fn next_blocked_page(
        &self,
        paging: &mut BlockedPaging,
    ) -> Result<Option<BlockedPage>, ApiError> {
        if paging.is_finished() {
            return Ok(None);
        }
        let page = self
            .blocked_numbers_from(paging.next_min_id(), MAX_BLOCKED_PAGE)
            .await?;
        Ok(paging.absorb(page))
    }

    /// Every entry added after `max_id_read`, to the end of the list: the whole walk in one call,
    /// for a reader that keeps nothing per page (load's refresh of the blocked list).
    pub async fn blocked_numbers_after(
        &self,
        max_id_read: u64,
    ) -> Result<Vec<BlockedNumber>, ApiError> {
        let mut paging = BlockedPaging::after(max_id_read);
        let mut entries = Vec::new();
        while let Some(page) = self.next_blocked_page(&mut paging).await? {
            entries.extend(page.entries);
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(id: Value, number: &str) -> BlockedNumber {
        BlockedNumber {
            id,
            phone_number: number.to_string(),
        }
    }

    #[test]
    fn string_ids_advance_min_id_like_numbers() {
        let mut paging = BlockedPaging::after(0);
        let page = paging
            .absorb(vec![
                entry(json!("1"), "441234567890"),
                entry(json!(" 7 "), "+441234567891"),
            ])
            .expect("a page");
        assert_eq!(page.min_id, 1);
        assert_eq!(page.entries.len(), 2);
        assert_eq!(paging.next_min_id(), 8);
        paging
            .absorb(vec![entry(json!(9), "441234567892")])
            .expect("a page");
        assert_eq!(paging.next_min_id(), 10);
        assert!(paging.absorb(Vec::new()).is_none(), "an empty page ends it");
        assert!(paging.is_finished());
    }

    #[test]
    fn a_short_page_does_not_end_the_walk() {
        let mut paging = BlockedPaging::after(100);
        assert_eq!(paging.next_min_id(), 101);
        paging
            .absorb(vec![entry(json!(101), "441234567890")])
            .expect("a page");
        assert!(!paging.is_finished(), "one row of 10,000 is not the end");
    }

    #[test]
    fn a_page_with_nothing_new_ends_the_walk() {
        // A server that ignores min-id answers the same page again.
        let page = || {
            vec![
                entry(json!(1), "441234567890"),
                entry(json!(2), "441234567891"),
            ]
        };
        let mut paging = BlockedPaging::after(0);
        assert!(paging.absorb(page()).is_some());
        assert!(paging.absorb(page()).is_none());
        assert!(paging.is_finished());
    }

    #[test]
    fn ids_that_are_not_numbers_are_read_once_then_the_walk_stops() {
        let mut paging = BlockedPaging::after(0);
        let page = paging
            .absorb(vec![entry(json!("abc"), "441234567890")])
            .expect("the entries are kept");
        assert_eq!(page.entries.len(), 1);
        assert!(
            paging.is_finished(),
            "min-id cannot move: no second request"
        );
    }
}
