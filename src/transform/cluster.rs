//! Clustering that does not chain: accepted pairs are merged strongest first, and a merge that
//! would put two conflicting records in one cluster is refused — connected components alone would
//! merge a whole household through one shared phone number.

use rayon::prelude::*;

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
    /// comparisons however large the clusters are. Empty for a root that has merged nothing: it
    /// stands for itself (a million one-row vectors would be a million allocations).
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

    /// The members that stand for a root's cluster.
    fn representatives(&self, root: u32) -> &[u32] {
        match self.representatives[root as usize].as_slice() {
            [] => std::slice::from_ref(&self.parent[root as usize]),
            members => members,
        }
    }
}

/// Merges accepted pairs (`(i, j, probability)`, any order) strongest first; `conflict(state, a,
/// b)` names the rule two rows break, if any, with `state` a scratch space of one worker's (caches)
/// made by `new_state`. `same_signature(a, b)` says two rows hold the same values for everything
/// `conflict` reads, so one of them can stand for both.
///
/// Every accepted pair's own check runs first, in parallel. A merge checks each pair of members
/// standing for the two clusters, and the members standing for the pair's own rows give that
/// answer (they hold the same values), so most merges need no other check: the part that has to
/// run in order is left with union-find and the few checks between other members.
pub fn cluster<S>(
    rows: usize,
    accepted: &mut [(u32, u32, f64)],
    same_signature: impl Fn(u32, u32) -> bool,
    new_state: impl Fn() -> S + Sync + Send,
    conflict: impl Fn(&mut S, u32, u32) -> Option<String> + Sync + Send,
) -> Clusters {
    accepted
        .par_sort_unstable_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    let mut own_check: Vec<Option<String>> = accepted
        .par_iter()
        .map_init(&new_state, |state, &(i, j, _)| conflict(state, i, j))
        .collect();
    let mut state = new_state();
    let mut uf = UnionFind {
        parent: (0..rows as u32).collect(),
        representatives: vec![Vec::new(); rows],
    };
    let mut best = vec![None::<f64>; rows];
    let mut splits = Vec::new();
    for (k, &(i, j, p)) in accepted.iter().enumerate() {
        let (ri, rj) = (uf.find(i), uf.find(j));
        if ri == rj {
            continue;
        }
        let clash = {
            let (a, b) = (uf.representatives(ri), uf.representatives(rj));
            a.iter()
                .flat_map(|&x| b.iter().map(move |&y| (x, y)))
                .find_map(|(x, y)| {
                    // A member with the same signature as the pair's row gives the same answer.
                    let rule =
                        if (x == i || same_signature(x, i)) && (y == j || same_signature(y, j)) {
                            own_check[k].take()
                        } else {
                            conflict(&mut state, x, y)
                        };
                    rule.map(|rule| (x, y, rule))
                })
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
        let moved = uf.representatives(other).to_vec();
        let mut kept = std::mem::take(&mut uf.representatives[root as usize]);
        if kept.is_empty() {
            kept.push(root);
        }
        for row in moved {
            if !kept.iter().any(|&k| same_signature(k, row)) {
                kept.push(row);
            }
        }
        uf.representatives[root as usize] = kept;
        uf.representatives[other as usize] = Vec::new();
        uf.parent[other as usize] = root;
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
        let c = cluster(
            4,
            &mut accepted,
            |a, b| a == b,
            || (),
            |_, a, b| household(a, b),
        );
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
        let c = cluster(5, &mut accepted, |a, b| a == b, || (), |_, _, _| None);
        assert!(c.cluster_of[..4].iter().all(|&r| r == 0));
        assert_eq!(c.cluster_of[4], 4);
    }

    #[test]
    fn rows_with_one_signature_are_checked_once() {
        // Rows 0-3 are one person's records (signature 0); row 4 conflicts with every one of them.
        let signature = |r: u32| u32::from(r == 4);
        let checks = std::sync::atomic::AtomicUsize::new(0);
        let mut accepted = vec![(0, 1, 0.99), (1, 2, 0.98), (2, 3, 0.97), (3, 4, 0.96)];
        let c = cluster(
            5,
            &mut accepted,
            |a, b| signature(a) == signature(b),
            || (),
            |_, a, b| {
                checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                (signature(a) != signature(b)).then(|| "first_name differ".to_string())
            },
        );
        assert!(c.cluster_of[..4].iter().all(|&r| r == 0));
        assert_eq!(c.cluster_of[4], 4);
        assert_eq!(c.splits.len(), 1);
        assert_eq!(
            checks.load(std::sync::atomic::Ordering::Relaxed),
            4,
            "one check per accepted pair, not one per member"
        );
    }

    #[test]
    fn a_merge_checks_the_members_beside_the_pair() {
        // 0 and 1 merge; 2 is fine beside 1 but conflicts with 0, so 1–2 is refused.
        let mut accepted = vec![(0, 1, 0.99), (1, 2, 0.98)];
        let c = cluster(
            3,
            &mut accepted,
            |a, b| a == b,
            || (),
            |_, a, b| ((a.min(b), a.max(b)) == (0, 2)).then(|| "email differ".to_string()),
        );
        assert_eq!(c.cluster_of, vec![0, 0, 2]);
        assert_eq!(
            c.splits,
            vec![Split {
                pair: (1, 2),
                conflict: (0, 2),
                rule: "email differ".into()
            }]
        );
    }
}
