//! The agency's routing in PostgreSQL (`[state] url`): which numbers each location's contacts hold
//! and which location planned each send, keyed by the pipeline's name, so the runners of every
//! shard, on any machine, route the shared BulkSMS account alike.

use super::pg::{PgConn, PgError, redacted_url};
use crate::secret::Secret;
use std::collections::{BTreeSet, HashMap};

/// One pipeline's routing rows in a PostgreSQL store.
pub struct PgRouting {
    conn: PgConn,
    pipeline: String,
    name: String,
}

/// Errors of the routing rows, naming the store (never its password).
#[derive(Debug, thiserror::Error)]
#[error("the agency routing in {store}: {source}")]
pub struct PgRoutingError {
    store: String,
    source: PgError,
}

/// What the index holds for some locations.
#[derive(Debug, Default)]
pub struct StoredNumbers {
    /// (location, number digits) pairs.
    pub numbers: Vec<(String, String)>,
    /// The locations whose numbers were ever recorded (by any runner).
    pub recorded: BTreeSet<String>,
}

impl PgRouting {
    /// Connects, creating or migrating the schema.
    pub fn open(url: &Secret, pipeline: &str) -> Result<Self, PgRoutingError> {
        let name = format!("{} (pipeline {pipeline:?})", redacted_url(url));
        let target = super::pg::PgTarget {
            url: url.clone(),
            pipeline: pipeline.to_string(),
            location: String::new(),
        };
        let conn = PgConn::open(&target, "routing").map_err(|source| PgRoutingError {
            store: name.clone(),
            source,
        })?;
        Ok(PgRouting {
            conn,
            pipeline: pipeline.to_string(),
            name,
        })
    }

    fn err(&self, source: PgError) -> PgRoutingError {
        PgRoutingError {
            store: self.name.clone(),
            source,
        }
    }

    /// Replaces a location's numbers with those of its latest extract (`run_id`), in one
    /// transaction: a reader sees the old set or the new one, never half of either.
    pub fn replace_numbers(
        &self,
        location: &str,
        run_id: &str,
        numbers: Vec<String>,
    ) -> Result<(), PgRoutingError> {
        let (pipeline, location, run_id) = (
            self.pipeline.clone(),
            location.to_string(),
            run_id.to_string(),
        );
        self.conn
            .call_repeatable(move |client, _| {
                let mut tx = client.transaction()?;
                tx.execute(
                    "DELETE FROM contactsync_location_numbers WHERE pipeline = $1 AND location_id = $2",
                    &[&pipeline, &location],
                )?;
                let added = tx.execute(
                    "INSERT INTO contactsync_location_numbers (pipeline, location_id, number)
                     SELECT $1, $2, n FROM unnest($3::text[]) AS n
                     ON CONFLICT DO NOTHING",
                    &[&pipeline, &location, &numbers],
                )?;
                tx.execute(
                    "INSERT INTO contactsync_location_extracts AS e
                       (pipeline, location_id, run_id, numbers, updated_at)
                     VALUES ($1, $2, $3, $4, now())
                     ON CONFLICT (pipeline, location_id) DO UPDATE SET run_id = EXCLUDED.run_id,
                       numbers = EXCLUDED.numbers, updated_at = now()",
                    &[&pipeline, &location, &run_id, &(added as i64)],
                )?;
                tx.commit()?;
                Ok(())
            })
            .map_err(|e| self.err(e))
    }

    /// The numbers of `locations`, whichever runner recorded them.
    pub fn numbers(&self, locations: &[String]) -> Result<StoredNumbers, PgRoutingError> {
        let (pipeline, locations) = (self.pipeline.clone(), locations.to_vec());
        self.conn
            .call_repeatable(move |client, _| {
                let mut stored = StoredNumbers::default();
                for row in client.query(
                    "SELECT location_id FROM contactsync_location_extracts
                     WHERE pipeline = $1 AND location_id = ANY($2)",
                    &[&pipeline, &locations],
                )? {
                    stored.recorded.insert(row.try_get(0)?);
                }
                for row in client.query(
                    "SELECT location_id, number FROM contactsync_location_numbers
                     WHERE pipeline = $1 AND location_id = ANY($2)",
                    &[&pipeline, &locations],
                )? {
                    stored.numbers.push((row.try_get(0)?, row.try_get(1)?));
                }
                Ok(stored)
            })
            .map_err(|e| self.err(e))
    }

    /// Records that `location` planned the sends `ids` (their `userSuppliedId`s), before any of
    /// them is made.
    pub fn record_sends(&self, location: &str, mut ids: Vec<String>) -> Result<(), PgRoutingError> {
        // One statement may not update a row twice.
        ids.sort_unstable();
        ids.dedup();
        let (pipeline, location) = (self.pipeline.clone(), location.to_string());
        self.conn
            .call_repeatable(move |client, _| {
                client.execute(
                    "INSERT INTO contactsync_sends (pipeline, user_supplied_id, location_id, recorded_at)
                     SELECT $1, id, $2, now() FROM unnest($3::text[]) AS id
                     ON CONFLICT (pipeline, user_supplied_id)
                     DO UPDATE SET location_id = EXCLUDED.location_id, recorded_at = now()",
                    &[&pipeline, &location, &ids],
                )?;
                Ok(())
            })
            .map_err(|e| self.err(e))
    }

    /// The location that planned each of the sends `ids` that any runner recorded.
    pub fn sent_by(&self, ids: Vec<String>) -> Result<HashMap<String, String>, PgRoutingError> {
        let pipeline = self.pipeline.clone();
        self.conn
            .call_repeatable(move |client, _| {
                client
                    .query(
                        "SELECT user_supplied_id, location_id FROM contactsync_sends
                         WHERE pipeline = $1 AND user_supplied_id = ANY($2)",
                        &[&pipeline, &ids],
                    )?
                    .iter()
                    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                    .collect()
            })
            .map_err(|e| self.err(e))
    }
}
