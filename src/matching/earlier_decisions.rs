//! An earlier run's decisions for pairs near the threshold (hysteresis). Weights are estimated on
//! each night's table, so a table that changed elsewhere (a run's own creates and merges) moves a
//! borderline pair's score by a fraction of a bit. Without memory such a pair crosses the
//! threshold one night late with nothing changed on either record, and a nightly sync writes a
//! merge no data asked for. A pair whose two records are unchanged since the run that decided it
//! keeps that decision while its weight stays within a margin of the threshold's weight.

use std::collections::HashSet;

/// The pairs an earlier run accepted, each as (smaller id, larger id). Any other pair of
/// unchanged records was rejected: it scored lower, or was not a candidate at all.
#[derive(Debug, Clone, Default)]
pub struct AcceptedPairs(HashSet<(String, String)>);

impl AcceptedPairs {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        AcceptedPairs(
            pairs
                .into_iter()
                .map(|(a, b)| if a <= b { (a, b) } else { (b, a) })
                .collect(),
        )
    }

    fn contains(&self, left: &str, right: &str) -> bool {
        let (a, b) = if left <= right {
            (left, right)
        } else {
            (right, left)
        };
        // Few pairs lie in the band, so an owned key per lookup costs little.
        self.0.contains(&(a.to_string(), b.to_string()))
    }
}

/// The decisions of one earlier run, and which records still hold the data it decided on. The
/// accepted pairs are borrowed: a run matches several predicted tables against one earlier run.
#[derive(Debug, Clone)]
pub struct EarlierDecisions<'a> {
    margin_bits: f64,
    accepted: &'a AcceptedPairs,
    /// Records whose data equals what the earlier run read.
    unchanged: HashSet<String>,
}

impl<'a> EarlierDecisions<'a> {
    pub fn new(margin_bits: f64, accepted: &'a AcceptedPairs, unchanged: HashSet<String>) -> Self {
        EarlierDecisions {
            margin_bits,
            accepted,
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
        Some(self.accepted.contains(left, right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decisions(accepted: &AcceptedPairs) -> EarlierDecisions<'_> {
        EarlierDecisions::new(
            0.5,
            accepted,
            ["a", "b", "c"].into_iter().map(String::from).collect(),
        )
    }

    fn b_and_a() -> AcceptedPairs {
        AcceptedPairs::new([("b".to_string(), "a".to_string())])
    }

    #[test]
    fn unchanged_pairs_near_the_threshold_keep_the_earlier_decision() {
        let accepted = b_and_a();
        let d = decisions(&accepted);
        // Accepted before, now just under the threshold: still accepted, in either order.
        assert_eq!(d.kept("a", "b", 2.9, 3.17), Some(true));
        assert_eq!(d.kept("b", "a", 3.3, 3.17), Some(true));
        // Rejected before (never accepted), now just over: still rejected.
        assert_eq!(d.kept("a", "c", 3.4, 3.17), Some(false));
    }

    #[test]
    fn changed_records_and_clear_scores_are_decided_afresh() {
        let accepted = b_and_a();
        let d = decisions(&accepted);
        assert_eq!(d.kept("a", "z", 3.2, 3.17), None, "z changed");
        assert_eq!(d.kept("a", "c", 3.8, 3.17), None, "past the margin");
        assert_eq!(d.kept("a", "b", 2.6, 3.17), None, "past the margin below");
    }
}
