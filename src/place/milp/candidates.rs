//! Candidate nodes per class for programs too large to build whole.
//!
//! The exact program has a column per (class, node) where the class's first pod passes
//! every filter. On a 2,000-node synthetic cluster that is 2,400 classes × ~1,300 nodes =
//! 3 million columns (11 s to build, more than the default 10-s limit to solve); at
//! 20,000 nodes it cannot even be enumerated in time (every class filtered against every
//! node). Above [`LARGE_PAIRS`] (classes × nodes) the program is therefore *restricted*:
//! each class gets
//! - the nodes the greedy warm start put its pods on, so the warm start stays a point of
//!   the program and the MILP is never worse than it;
//! - up to [`extra_per_class`] more nodes, the nearest to the class's demand in
//!   free-resource space (free CPU, memory and milli-GPU, each divided by the largest
//!   allocatable of the cluster) that pass the class's filters. Nearest to the demand
//!   means the tightest fits first: the moves that pack better than the greedy.
//!
//! The nearest nodes are found in a kiddo k-d tree over the distinct free vectors (nodes
//! with equal free resources share a point; within a point nodes are taken in index
//! order), so a class costs one tree query and the filter checks of the nodes returned,
//! not a pass over the cluster. The restriction loses optimality, never validity: every
//! column is a (class, node) pair that passes the filters, and the program's other rows
//! are the exact ones.

use super::classes::Classes;
use crate::model::{Binding, NodeId, Problem};
use crate::place::filter::FilterContext;
use kiddo::{ImmutableKdTree, SquaredEuclidean};
use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroUsize;

/// Above this many (class, node) pairs the program is restricted to candidate nodes.
pub(crate) const LARGE_PAIRS: usize = 300_000;

/// The column budget of a restricted program, shared out over the classes.
const COLUMN_BUDGET: usize = 40_000;

/// Extra candidates per class (beyond the greedy's nodes): the budget left after the
/// greedy's columns, shared equally, between 4 and 64.
pub(crate) fn extra_per_class(classes: usize, greedy_columns: usize) -> usize {
    (COLUMN_BUDGET.saturating_sub(greedy_columns) / classes.max(1)).clamp(4, 64)
}

/// Filter checks spent looking for one class's nearest candidates, at most.
const MAX_CHECKS_PER_CLASS: usize = 512;

/// Free-resource points of the nodes: distinct points and the nodes at each.
struct FreeSpace {
    tree: ImmutableKdTree<f64, 3>,
    nodes_at: Vec<Vec<NodeId>>,
    scale: [f64; 3],
}

impl FreeSpace {
    fn new(problem: &Problem) -> FreeSpace {
        let c = &problem.cluster;
        let mut scale = [1.0f64; 3];
        for (_, node) in c.nodes() {
            let a = &node.allocatable;
            scale[0] = scale[0].max(a.cpu_milli as f64);
            scale[1] = scale[1].max(a.memory_bytes as f64);
            scale[2] = scale[2].max(f64::from(node.gpu_count()) * 1000.0);
        }
        let mut at: BTreeMap<[u64; 3], Vec<NodeId>> = BTreeMap::new();
        for (n, node) in c.nodes() {
            let a = &node.allocatable;
            let u = c.used(n);
            let free = [
                a.cpu_milli.saturating_sub(u.cpu_milli),
                a.memory_bytes.saturating_sub(u.memory_bytes),
                c.gpu_free_total(n),
            ];
            at.entry(free).or_default().push(n);
        }
        let points: Vec<[f64; 3]> = at
            .keys()
            .map(|f| [0, 1, 2].map(|d| f[d] as f64 / scale[d]))
            .collect();
        let nodes_at = at.into_values().collect();
        FreeSpace {
            tree: ImmutableKdTree::new_from_slice(&points),
            nodes_at,
            scale,
        }
    }
}

/// The candidate nodes of each class: the greedy's nodes for its pods plus up to `extra`
/// nodes nearest its demand that pass its filters, ascending, without duplicates.
pub(crate) fn restricted(
    problem: &Problem,
    classes: &Classes,
    greedy: &[Option<Binding>],
    cls: &[Option<usize>],
) -> Vec<Vec<NodeId>> {
    let mut out: Vec<BTreeSet<NodeId>> = vec![BTreeSet::new(); classes.classes.len()];
    for (b, c) in greedy.iter().zip(cls) {
        if let (Some(b), Some(c)) = (b, c) {
            out[*c].insert(b.node);
        }
    }
    let greedy_columns: usize = out.iter().map(BTreeSet::len).sum();
    let extra = extra_per_class(classes.classes.len(), greedy_columns);
    if problem.cluster.node_count() == 0 {
        return out.into_iter().map(|s| s.into_iter().collect()).collect();
    }
    let space = FreeSpace::new(problem);
    let points = space.nodes_at.len();
    for (class, set) in classes.classes.iter().zip(&mut out) {
        let pod = &problem.pending[class.rep()];
        let q = [
            pod.requests.cpu_milli as f64,
            pod.requests.memory_bytes as f64,
            pod.gpu.amount.total_milli() as f64,
        ];
        let q = [0, 1, 2].map(|d| q[d] / space.scale[d]);
        let ctx = FilterContext::new(&problem.cluster, pod);
        // Ask for 8× the nodes wanted (most nearby points are too small or filtered
        // out), then 8× more, up to every point.
        // At most `MAX_CHECKS_PER_CLASS` filter checks per class: a class whose nearest
        // nodes mostly fail its filters (a GPU model selector, a taint it does not
        // tolerate) keeps fewer candidates rather than scanning the cluster.
        let mut want = (extra * 8).min(points);
        let (mut found, mut seen, mut checks) = (0, 0, 0);
        'widen: loop {
            let near = space.tree.nearest_n::<SquaredEuclidean>(
                &q,
                NonZeroUsize::new(want).expect("at least one point"),
            );
            for nb in near.iter().skip(seen) {
                for &n in &space.nodes_at[nb.item as usize] {
                    if found >= extra || checks >= MAX_CHECKS_PER_CLASS {
                        break 'widen;
                    }
                    if !set.contains(&n) {
                        checks += 1;
                        if ctx.check(n).is_ok() {
                            set.insert(n);
                            found += 1;
                        }
                    }
                }
            }
            seen = near.len();
            if want >= points {
                break;
            }
            want = (want * 8).min(points);
        }
    }
    out.into_iter().map(|s| s.into_iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::synthetic::{problem as synthetic, SyntheticConfig};
    use crate::place::milp::{classes, extract};
    use crate::place::online::{OnlineKind, OnlinePolicy};
    use crate::place::Placer;

    #[test]
    fn candidates_pass_the_filters_and_include_the_greedy_nodes() {
        let problem = synthetic(&SyntheticConfig {
            nodes: 120,
            seed: 5,
            ..Default::default()
        })
        .expect("generates");
        let classes = classes::group(&problem.pending);
        let cls = extract::class_of(&problem, &classes);
        let greedy = OnlinePolicy::new(OnlineKind::FirstFit, 1)
            .place(&problem)
            .expect("places")
            .placement;
        let cand = restricted(&problem, &classes, &greedy, &cls);
        let extra = extra_per_class(classes.classes.len(), 0);
        for (c, ns) in cand.iter().enumerate() {
            let pod = &problem.pending[classes.classes[c].rep()];
            let ctx = FilterContext::new(&problem.cluster, pod);
            assert!(ns.windows(2).all(|w| w[0] < w[1]), "sorted, distinct");
            let greedy_nodes: BTreeSet<NodeId> = classes.classes[c]
                .members
                .iter()
                .filter_map(|&i| greedy[i].as_ref().map(|b| b.node))
                .collect();
            assert!(greedy_nodes.iter().all(|n| ns.contains(n)));
            for &n in ns.iter().filter(|n| !greedy_nodes.contains(n)) {
                assert!(ctx.check(n).is_ok(), "class {c} node {n}");
            }
            let eligible = problem
                .cluster
                .node_ids()
                .filter(|&n| ctx.check(n).is_ok())
                .count();
            // Every eligible node is found when there are no more than wanted.
            assert!(
                ns.len() >= eligible.min(extra),
                "class {c}: {} of {eligible}",
                ns.len()
            );
        }
    }

    #[test]
    fn nearest_candidates_are_the_tightest_fits() {
        // One pod of 3.5 cpu; nodes with 200, 199, ..., 1 cpu free: the candidates are
        // the smallest nodes that fit.
        use crate::model::{Node, Pod, Resources};
        let nodes: Vec<Node> = (0..200u64)
            .map(|i| {
                let mut a = Resources::cpu_mem(1000 * (200 - i), 1 << 36);
                a.pods = 110;
                Node {
                    name: format!("n{i:03}"),
                    capacity: a.clone(),
                    allocatable: a,
                    ..Default::default()
                }
            })
            .collect();
        let pod = Pod {
            name: "p".into(),
            namespace: "default".into(),
            requests: Resources::cpu_mem(3500, 1 << 30),
            ..Default::default()
        };
        let problem = Problem::from_parts(nodes, vec![pod]).expect("valid");
        let classes = classes::group(&problem.pending);
        let cls = extract::class_of(&problem, &classes);
        let cand = restricted(&problem, &classes, &[None], &cls);
        let extra = extra_per_class(1, 0);
        // Node i has 200 - i cpus: fitting nodes are i <= 196; the tightest are 196, 195...
        assert!(extra < 197);
        let want: Vec<NodeId> = (197 - extra..=196).map(NodeId::from_index).collect();
        assert_eq!(cand[0], want);
    }
}
