//! Clustering that does not chain: accepted pairs are merged strongest first, and a merge that
//! would put two conflicting records in one cluster is refused — connected components alone would
//! merge a whole household through one shared phone number.

/// A refused merge, with the rule that refused it.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Rows of the accepted pair whose merge was refused.
    pub pair: (u32, u32),
    /// Rows whose values conflict.
    pub conflict: (u32, u32),
    pub rule: String,
}

/// The clustering of all rows.
#[derive(Debug, Clone)]
pub struct Clusters {
    /// Cluster representative (smallest row) of every row.
    pub cluster_of: Vec<u32>,
    /// Best accepted probability linking each row into its cluster.
    pub best_probability: Vec<Option<f64>>,
    pub splits: Vec<Split>,
}

struct UnionFind {
    parent: Vec<u32>,
    /// Per root: its members with distinct signatures (rows the guard tells apart). A cluster of
    /// one person's forty records usually has one to three, so checking a merge costs a handful of
    /// comparisons however large the clusters are.
    representatives: Vec<Vec<u32>>,
}

impl UnionFind {
    fn find(&mut self, x: u32) -> u32 {
        let mut root = x;
        while self.parent[root as usize] != root {
            root = self.parent[root as usize];
        }
        let mut cur = x;
        while self.parent[cur as usize] != root {
            let next = self.parent[cur as usize];
            self.parent[cur as usize] = root;
            cur = next;
        }
        root
    }
}

/// Merges accepted pairs (`(i, j, probability)`, any order) strongest first; `conflict(a, b)`
/// names the rule two rows break, if any. `same_signature(a, b)` says two rows hold the same
/// values for everything `conflict` reads, so one of them can stand for both.
pub fn cluster(
    rows: usize,
    accepted: &mut [(u32, u32, f64)],
    same_signature: impl Fn(u32, u32) -> bool,
    mut conflict: impl FnMut(u32, u32) -> Option<String>,
) -> Clusters {
    accepted.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    let mut uf = UnionFind {
        parent: (0..rows as u32).collect(),
        representatives: (0..rows as u32).map(|r| vec![r]).collect(),
    };
    let mut best = vec![None::<f64>; rows];
    let mut splits = Vec::new();
    for &(i, j, p) in accepted.iter() {
        let (ri, rj) = (uf.find(i), uf.find(j));
        if ri == rj {
            continue;
        }
        let clash = {
            let (a, b) = (
                &uf.representatives[ri as usize],
                &uf.representatives[rj as usize],
            );
            a.iter()
                .flat_map(|&x| b.iter().map(move |&y| (x, y)))
                .find_map(|(x, y)| conflict(x, y).map(|rule| (x, y, rule)))
        };
        if let Some((x, y, rule)) = clash {
            splits.push(Split {
                pair: (i, j),
                conflict: (x, y),
                rule,
            });
            continue;
        }
        let (root, other) = if ri < rj { (ri, rj) } else { (rj, ri) };
        uf.parent[other as usize] = root;
        let moved = std::mem::take(&mut uf.representatives[other as usize]);
        let kept = &mut uf.representatives[root as usize];
        for row in moved {
            if !kept.iter().any(|&k| same_signature(k, row)) {
                kept.push(row);
            }
        }
        for row in [i, j] {
            let slot = &mut best[row as usize];
            *slot = Some(slot.map_or(p, |q: f64| q.max(p)));
        }
    }
    let cluster_of = (0..rows as u32).map(|r| uf.find(r)).collect();
    Clusters {
        cluster_of,
        best_probability: best,
        splits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_household_does_not_chain_through_a_shared_phone() {
        // 0 and 1 are one person; 1–2 and 2–3 are household members linked by a shared phone.
        let mut accepted = vec![(0, 1, 0.99), (1, 2, 0.93), (2, 3, 0.92)];
        let household = |a: u32, b: u32| {
            let person = |r: u32| if r <= 1 { 0 } else { r };
            (person(a) != person(b)).then(|| "first_name+email".to_string())
        };
        let c = cluster(4, &mut accepted, |a, b| a == b, household);
        assert_eq!(c.cluster_of[0], c.cluster_of[1]);
        assert_ne!(c.cluster_of[1], c.cluster_of[2]);
        assert_ne!(c.cluster_of[2], c.cluster_of[3]);
        assert_eq!(c.splits.len(), 2);
        assert_eq!(c.splits[0].rule, "first_name+email");
        assert_eq!(c.best_probability[0], Some(0.99));
        assert_eq!(c.best_probability[3], None);
    }

    #[test]
    fn without_conflicts_it_is_connected_components() {
        let mut accepted = vec![(2, 3, 0.95), (0, 1, 0.95), (1, 2, 0.95)];
        let c = cluster(5, &mut accepted, |a, b| a == b, |_, _| None);
        assert!(c.cluster_of[..4].iter().all(|&r| r == 0));
        assert_eq!(c.cluster_of[4], 4);
    }

    #[test]
    fn rows_with_one_signature_are_checked_once() {
        // Rows 0-3 are one person's records (signature 0); row 4 conflicts with every one of them.
        let signature = |r: u32| u32::from(r == 4);
        let checks = std::cell::Cell::new(0);
        let mut accepted = vec![(0, 1, 0.99), (1, 2, 0.98), (2, 3, 0.97), (3, 4, 0.96)];
        let c = cluster(
            5,
            &mut accepted,
            |a, b| signature(a) == signature(b),
            |a, b| {
                checks.set(checks.get() + 1);
                (signature(a) != signature(b)).then(|| "first_name differ".to_string())
            },
        );
        assert!(c.cluster_of[..4].iter().all(|&r| r == 0));
        assert_eq!(c.cluster_of[4], 4);
        assert_eq!(c.splits.len(), 1);
        assert_eq!(checks.get(), 4, "one check per merge, not one per member");
    }
}
