//! PLACEHOLDER generator: being written.

use super::{SeedData, SeedSpec};

/// Generates the seed data for a spec.
pub fn generate(_spec: &SeedSpec) -> SeedData {
    SeedData::default()
}
