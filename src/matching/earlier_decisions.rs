//! An earlier run's decisions for pairs near the threshold (hysteresis). Weights are estimated on
//! each night's table, so a table that changed elsewhere (a run's own creates and merges) moves a
//! borderline pair's score by a fraction of a bit. Without memory such a pair crosses the
//! threshold one night late with nothing changed on either record, and a nightly sync writes a
//! merge no data asked for. A pair whose two records are unchanged since the run that decided it
//! keeps that decision while its weight stays within a margin of the threshold's weight.

use std::collections::HashSet;

/// The decisions of one earlier run, and which records still hold the data it decided on.
#[derive(Debug, Clone, Default)]
pub struct EarlierDecisions {
    margin_bits: f64,
    /// Pairs the earlier run accepted, each as (smaller id, larger id). Any other pair of
    /// unchanged records was rejected: it scored lower, or was not a candidate at all.
    accepted: HashSet<(String, String)>,
    /// Records whose data equals what the earlier run read.
    unchanged: HashSet<String>,
}

fn ordered<'a>(a: &'a str, b: &'a str) -> (&'a str, &'a str) {
    if a <= b { (a, b) } else { (b, a) }
}

impl EarlierDecisions {
    pub fn new(
        margin_bits: f64,
        accepted: impl IntoIterator<Item = (String, String)>,
        unchanged: HashSet<String>,
    ) -> Self {
        EarlierDecisions {
            margin_bits,
            accepted: accepted
                .into_iter()
                .map(|(a, b)| if a <= b { (a, b) } else { (b, a) })
                .collect(),
            unchanged,
        }
    }

    /// How far below the threshold's weight (in bits) a pair can still be accepted by memory.
    pub fn margin_bits(&self) -> f64 {
        self.margin_bits
    }

    /// The earlier decision for a pair whose weight is `weight` against the threshold's
    /// `threshold_weight`: `Some` only when both records are unchanged and the weight lies within
    /// the margin; otherwise the pair is decided by its score alone.
    pub fn kept(
        &self,
        left: &str,
        right: &str,
        weight: f64,
        threshold_weight: f64,
    ) -> Option<bool> {
        if (weight - threshold_weight).abs() >= self.margin_bits
            || !self.unchanged.contains(left)
            || !self.unchanged.contains(right)
        {
            return None;
        }
        let (a, b) = ordered(left, right);
        // Few pairs lie in the band, so an owned key per lookup costs little.
        Some(self.accepted.contains(&(a.to_string(), b.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decisions() -> EarlierDecisions {
        EarlierDecisions::new(
            0.5,
            [("b".to_string(), "a".to_string())],
            ["a", "b", "c"].into_iter().map(String::from).collect(),
        )
    }

    #[test]
    fn unchanged_pairs_near_the_threshold_keep_the_earlier_decision() {
        let d = decisions();
        // Accepted before, now just under the threshold: still accepted, in either order.
        assert_eq!(d.kept("a", "b", 2.9, 3.17), Some(true));
        assert_eq!(d.kept("b", "a", 3.3, 3.17), Some(true));
        // Rejected before (never accepted), now just over: still rejected.
        assert_eq!(d.kept("a", "c", 3.4, 3.17), Some(false));
    }

    #[test]
    fn changed_records_and_clear_scores_are_decided_afresh() {
        let d = decisions();
        assert_eq!(d.kept("a", "z", 3.2, 3.17), None, "z changed");
        assert_eq!(d.kept("a", "c", 3.8, 3.17), None, "past the margin");
        assert_eq!(d.kept("a", "b", 2.6, 3.17), None, "past the margin below");
    }
}
