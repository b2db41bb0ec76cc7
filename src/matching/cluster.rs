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
    /// Per root: its members with distinct signatures (those the guard tells apart). A cluster of
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
/// answer (they hold the same values), so most merges need no other check. What has to run in
/// order runs per connected component of the accepted pairs, the components in parallel: a merge
/// only ever joins clusters of one component, and within each the pairs keep their global order,
/// so the clusters are the ones a single ordered pass makes.
pub fn cluster<S>(
    rows: usize,
    accepted: &mut [(u32, u32, f64)],
    same_signature: impl Fn(u32, u32) -> bool + Sync,
    new_state: impl Fn() -> S + Sync + Send,
    conflict: impl Fn(&mut S, u32, u32) -> Option<String> + Sync + Send,
) -> Clusters {
    accepted
        .par_sort_unstable_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    let components = Components::of(rows, accepted);
    // The own checks, computed in the components' order of pairs so that each component's
    // stretch can be handed to its task without copying.
    let mut own_check: Vec<Option<String>> = components
        .pairs
        .par_iter()
        .map_init(&new_state, |state, &k| {
            let (i, j, _) = accepted[k];
            conflict(state, i, j)
        })
        .collect();
    // Each component's task: its members, its pairs in merge order and their own checks.
    // Largest first, so the longest task starts at once instead of last.
    let mut tasks: Vec<ComponentTask> = Vec::with_capacity(components.len());
    let mut rest = own_check.as_mut_slice();
    for c in 0..components.len() {
        let (own_checks, tail) = rest.split_at_mut(components.pairs(c).len());
        tasks.push(ComponentTask {
            members: components.members(c),
            pairs: components.pairs(c),
            own_checks,
        });
        rest = tail;
    }
    tasks.par_sort_by_key(|task| std::cmp::Reverse(task.members.len()));
    let results: Vec<ComponentResult> = tasks
        .into_par_iter()
        .map_init(&new_state, |state, task| {
            merge_component(
                task,
                accepted,
                &components.position,
                &same_signature,
                state,
                &conflict,
            )
        })
        .collect();
    let mut cluster_of: Vec<u32> = (0..rows as u32).collect();
    let mut best = vec![None::<f64>; rows];
    let mut splits: Vec<(usize, Split)> = Vec::new();
    for result in results {
        for ((&row, &root), probability) in result.members.iter().zip(&result.root).zip(result.best)
        {
            cluster_of[row as usize] = result.members[root as usize];
            best[row as usize] = probability;
        }
        splits.extend(result.splits);
    }
    splits.sort_unstable_by_key(|(k, _)| *k);
    Clusters {
        cluster_of,
        best_probability: best,
        splits: splits.into_iter().map(|(_, s)| s).collect(),
    }
}

/// The connected components of the accepted pairs, stored flat: component `c`'s rows (ascending)
/// and the indexes of its pairs in `accepted` (ascending, so in merge order). Rows no pair touches
/// are in none.
struct Components {
    rows: Vec<u32>,
    row_start: Vec<usize>,
    /// Every pair's index in `accepted`, component by component.
    pairs: Vec<usize>,
    pair_start: Vec<usize>,
    /// Per row, its place among its component's rows.
    position: Vec<u32>,
}

impl Components {
    fn of(rows: usize, accepted: &[(u32, u32, f64)]) -> Self {
        let mut uf = UnionFind {
            parent: (0..rows as u32).collect(),
            representatives: Vec::new(),
        };
        for &(i, j, _) in accepted {
            let (a, b) = (uf.find(i), uf.find(j));
            if a != b {
                uf.parent[a.max(b) as usize] = a.min(b);
            }
        }
        let mut touched = vec![false; rows];
        for &(i, j, _) in accepted {
            touched[i as usize] = true;
            touched[j as usize] = true;
        }
        // Components numbered in the order of their smallest rows; rows and pairs bucketed by
        // component with a counting sort, which keeps each bucket in row (pair) order.
        let touched_rows: Vec<u32> = (0..rows as u32).filter(|&r| touched[r as usize]).collect();
        let mut number = vec![u32::MAX; rows];
        let mut component_of = vec![u32::MAX; rows];
        let mut count = 0u32;
        for &row in &touched_rows {
            let root = uf.find(row) as usize;
            if number[root] == u32::MAX {
                number[root] = count;
                count += 1;
            }
            component_of[row as usize] = number[root];
        }
        let n = count as usize;
        let row_keys: Vec<u32> = touched_rows
            .iter()
            .map(|&r| component_of[r as usize])
            .collect();
        let (order, row_start) = bucket_by(&row_keys, n);
        let member_rows: Vec<u32> = order.iter().map(|&i| touched_rows[i]).collect();
        let mut position = vec![u32::MAX; rows];
        for c in 0..n {
            for (p, &row) in member_rows[row_start[c]..row_start[c + 1]]
                .iter()
                .enumerate()
            {
                position[row as usize] = p as u32;
            }
        }
        let pair_keys: Vec<u32> = accepted
            .iter()
            .map(|&(i, _, _)| component_of[i as usize])
            .collect();
        let (pairs, pair_start) = bucket_by(&pair_keys, n);
        Components {
            rows: member_rows,
            row_start,
            pairs,
            pair_start,
            position,
        }
    }

    fn len(&self) -> usize {
        self.row_start.len() - 1
    }

    fn members(&self, c: usize) -> &[u32] {
        &self.rows[self.row_start[c]..self.row_start[c + 1]]
    }

    fn pairs(&self, c: usize) -> &[usize] {
        &self.pairs[self.pair_start[c]..self.pair_start[c + 1]]
    }
}

/// Counting sort of items by their bucket (`keys[item] < buckets`): the items bucket by bucket,
/// each bucket in item order, and where each bucket starts (with the end last).
fn bucket_by(keys: &[u32], buckets: usize) -> (Vec<usize>, Vec<usize>) {
    let mut start = vec![0usize; buckets + 1];
    for &c in keys {
        start[c as usize + 1] += 1;
    }
    for c in 0..buckets {
        start[c + 1] += start[c];
    }
    let mut next = start.clone();
    let mut out = vec![0usize; keys.len()];
    for (item, &c) in keys.iter().enumerate() {
        out[next[c as usize]] = item;
        next[c as usize] += 1;
    }
    (out, start)
}

/// One component's clustering: per member (in `members` order) the place in `members` of its
/// cluster's root and its best accepted probability, and the refused merges with their pair's
/// index in `accepted`.
struct ComponentResult<'a> {
    members: &'a [u32],
    root: Vec<u32>,
    best: Vec<Option<f64>>,
    splits: Vec<(usize, Split)>,
}

/// One component to cluster: its rows (ascending), its pairs (indexes in `accepted`, in merge
/// order) and the answers of their own checks.
struct ComponentTask<'a> {
    members: &'a [u32],
    pairs: &'a [usize],
    own_checks: &'a mut [Option<String>],
}

/// The ordered pass over one component's pairs, on places in `members`: ascending rows, so the
/// smallest place is the smallest row and a cluster is still named by its smallest row.
fn merge_component<'a, S>(
    task: ComponentTask<'a>,
    accepted: &[(u32, u32, f64)],
    position: &[u32],
    same_signature: &impl Fn(u32, u32) -> bool,
    state: &mut S,
    conflict: &impl Fn(&mut S, u32, u32) -> Option<String>,
) -> ComponentResult<'a> {
    let ComponentTask {
        members,
        pairs,
        own_checks,
    } = task;
    let n = members.len();
    let mut uf = UnionFind {
        parent: (0..n as u32).collect(),
        representatives: vec![Vec::new(); n],
    };
    let mut best = vec![None::<f64>; n];
    let mut splits = Vec::new();
    for (&k, own_check) in pairs.iter().zip(own_checks) {
        let (i, j, p) = accepted[k];
        let (pi, pj) = (position[i as usize], position[j as usize]);
        let (ri, rj) = (uf.find(pi), uf.find(pj));
        if ri == rj {
            continue;
        }
        let clash = {
            let (a, b) = (uf.representatives(ri), uf.representatives(rj));
            a.iter()
                .flat_map(|&x| {
                    b.iter()
                        .map(move |&y| (members[x as usize], members[y as usize]))
                })
                .find_map(|(x, y)| {
                    // A member with the same signature as the pair's row gives the same answer.
                    let rule =
                        if (x == i || same_signature(x, i)) && (y == j || same_signature(y, j)) {
                            own_check.take()
                        } else {
                            conflict(state, x, y)
                        };
                    rule.map(|rule| (x, y, rule))
                })
        };
        if let Some((x, y, rule)) = clash {
            splits.push((
                k,
                Split {
                    pair: (i, j),
                    conflict: (x, y),
                    rule,
                },
            ));
            continue;
        }
        let (root, other) = if ri < rj { (ri, rj) } else { (rj, ri) };
        let moved = uf.representatives(other).to_vec();
        let mut kept = std::mem::take(&mut uf.representatives[root as usize]);
        if kept.is_empty() {
            kept.push(root);
        }
        for q in moved {
            if !kept
                .iter()
                .any(|&k| same_signature(members[k as usize], members[q as usize]))
            {
                kept.push(q);
            }
        }
        uf.representatives[root as usize] = kept;
        uf.representatives[other as usize] = Vec::new();
        uf.parent[other as usize] = root;
        for q in [pi, pj] {
            let slot = &mut best[q as usize];
            *slot = Some(slot.map_or(p, |b: f64| b.max(p)));
        }
    }
    ComponentResult {
        members,
        root: (0..n as u32).map(|q| uf.find(q)).collect(),
        best,
        splits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clusters with a conflict rule that needs no state.
    fn run(
        rows: usize,
        accepted: &mut [(u32, u32, f64)],
        same_signature: impl Fn(u32, u32) -> bool + Sync,
        conflict: impl Fn(u32, u32) -> Option<String> + Sync + Send,
    ) -> Clusters {
        cluster(
            rows,
            accepted,
            same_signature,
            || (),
            |_, a, b| conflict(a, b),
        )
    }

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

    /// The plain ordered pass the component-parallel clustering must agree with: pairs strongest
    /// first, every member of one cluster checked against every member of the other.
    fn ordered_pass(
        rows: usize,
        accepted: &[(u32, u32, f64)],
        conflict: impl Fn(u32, u32) -> Option<String>,
    ) -> (Vec<u32>, Vec<Option<f64>>, Vec<Split>) {
        let mut sorted = accepted.to_vec();
        sorted.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
        let mut cluster_of: Vec<u32> = (0..rows as u32).collect();
        let mut best = vec![None::<f64>; rows];
        let mut splits = Vec::new();
        for (i, j, p) in sorted {
            let (ci, cj) = (cluster_of[i as usize], cluster_of[j as usize]);
            if ci == cj {
                continue;
            }
            let members = |c: u32| -> Vec<u32> {
                (0..rows as u32)
                    .filter(|&r| cluster_of[r as usize] == c)
                    .collect()
            };
            let (a, b) = (members(ci), members(cj));
            let clash = a
                .iter()
                .flat_map(|&x| b.iter().map(move |&y| (x, y)))
                .find_map(|(x, y)| conflict(x, y).map(|rule| (x, y, rule)));
            if let Some((x, y, rule)) = clash {
                splits.push(Split {
                    pair: (i, j),
                    conflict: (x, y),
                    rule,
                });
                continue;
            }
            let (keep, gone) = (ci.min(cj), ci.max(cj));
            for c in cluster_of.iter_mut().filter(|c| **c == gone) {
                *c = keep;
            }
            for r in [i, j] {
                let slot = &mut best[r as usize];
                *slot = Some(slot.map_or(p, |q: f64| q.max(p)));
            }
        }
        (cluster_of, best, splits)
    }

    proptest::proptest! {
        #[test]
        fn components_clustered_apart_give_the_ordered_pass_clusters(
            edges in proptest::collection::vec((0u32..24, 0u32..24, 0u8..4), 0..60),
            salt in 0u32..50,
        ) {
            let rows = 24;
            // Ties in probability are common, so the order's tie-breaks matter.
            let accepted: Vec<(u32, u32, f64)> = edges
                .into_iter()
                .filter(|(i, j, _)| i != j)
                .map(|(i, j, p)| (i.min(j), i.max(j), 0.9 + f64::from(p) * 0.02))
                .collect();
            let conflict = |a: u32, b: u32| {
                let (a, b) = (a.min(b), a.max(b));
                (((a * 7 + b * 13 + salt) % 5) == 0).then(|| format!("{a}-{b}"))
            };
            let expected = ordered_pass(rows, &accepted, conflict);
            let mut input = accepted.clone();
            let got = run(rows, &mut input, |a, b| a == b, conflict);
            proptest::prop_assert_eq!(&got.cluster_of, &expected.0);
            proptest::prop_assert_eq!(&got.best_probability, &expected.1);
            // The same merges are refused; which conflicting members a refusal names depends on
            // the order members are checked in, and any conflicting pair is a true answer.
            let refused = |splits: &[Split]| splits.iter().map(|s| s.pair).collect::<Vec<_>>();
            proptest::prop_assert_eq!(refused(&got.splits), refused(&expected.2));
            for split in &got.splits {
                let (x, y) = split.conflict;
                proptest::prop_assert_eq!(conflict(x, y), Some(split.rule.clone()));
            }
        }
    }
}
