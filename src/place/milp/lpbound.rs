//! An upper bound on the MILP's first goal (priority-weighted placed pods) that holds for
//! *every* valid placement: the LP relaxation of the aggregated program
//! ([`super::aggregate`]).
//!
//! # What is relaxed, and why the bound stays valid
//! - Integrality: every column of the aggregated program is continuous.
//! - Required pod **affinity** and **topology spread** are dropped (the pods keep their
//!   requests, selectors, tolerations and priority): those pods enter the program like
//!   any other, where the MILP itself leaves them to its greedy tail. Gangs are dropped
//!   (with continuous columns their all-or-nothing rows bound nothing). Required pod
//!   **anti-affinity** among pending pods is dropped too (the aggregated program has no
//!   rows for it); anti-affinity against *bound* pods is kept, because it only removes
//!   nodes where the pod can never go. Host ports are dropped.
//! - Identical nodes are merged into one type (same free resources, same per-device free
//!   milli-GPU, same eligible classes; see below), with the per-node rows summed; classes
//!   with equal requests, GPU amount, weight and eligible nodes are merged into one.
//!
//! Dropping constraints and summing rows only enlarge the feasible set, so every valid
//! placement is a point of this LP with the same weight, and the LP optimum bounds the
//! weight of every placement. The weight of a placement is an integer (weights are
//! `1 + rank`), so the LP optimum is rounded down (after a tolerance of `1e-6` relative
//! for the simplex's own rounding).
//!
//! # Size
//! Eligibility (the full kube filter of one pod per class on the current cluster) is
//! computed once per group of *interchangeable nodes*: nodes equal in everything the
//! filter reads except their name and hostname label (allocatable, GPUs, taints,
//! cordon, other labels, what is in use, free milli-GPU per device, and the bound pods on
//! them up to their names). A class whose node selector or node affinity mentions the
//! hostname label or the node name (`matchFields`) is checked on every node. Such a
//! group whose GPU devices are all fully free is one `k`-type of the aggregated program
//! even when its nodes run pods (a DaemonSet's pod on every node no longer splits the
//! cluster into single-node types); other nodes with partly used devices stay one type
//! each. The synthetic cluster of
//! 20,000 nodes (125,745 pending pods) gives 126 types and 437 merged classes, an LP of
//! 13,874 columns solved in about 7 s including the filtering (5,000 nodes: 3 s).
//!
//! If HiGHS does not prove the LP optimal within [`LP_TIME_LIMIT_SECONDS`], the bound
//! falls back to the weight of every pod that passes the filter on some node (still
//! valid, looser).

use super::aggregate::{self, NodeType};
use super::classes::{self, Classes};
use super::formulate;
use super::solve;
use crate::model::{NodeId, Problem, MILLI_PER_GPU};
use crate::place::filter::FilterContext;
use crate::place::PlaceError;
use std::collections::BTreeMap;

/// Seconds HiGHS gets for the LP before the bound falls back to the eligible weight.
pub const LP_TIME_LIMIT_SECONDS: f64 = 120.0;

/// The node label naming a node; per-node unique, so it is left out of node groups.
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// An upper bound on [`super::weighted_placed`] over every placement that passes
/// [`crate::place::validate::validate`]: the optimum, rounded down, of the LP relaxation
/// of the aggregated program (identical nodes grouped into types with per-type capacity,
/// GPU and device rows; identical pods into classes).
///
/// Valid for every pod, including those the MILP leaves to its greedy tail: required pod
/// affinity, topology spread, anti-affinity among pending pods, host ports and gangs are
/// dropped, and dropping constraints only enlarges the feasible set, so every valid
/// placement is a point of the LP with the same weight. Anti-affinity against bound pods
/// is kept (it only removes nodes the pod can never use). The bound is therefore loosest
/// on constraint-heavy problems. Nodes equal in everything the filter reads except their
/// name form one type (a DaemonSet pod on every node does not split them); 20,000
/// synthetic nodes give an LP of about 14,000 columns, solved in a few seconds. If HiGHS
/// does not prove the LP optimal within [`LP_TIME_LIMIT_SECONDS`], the weight of every
/// pod that passes the filter on some node is returned (valid, looser).
///
/// Errors only if HiGHS rejects the program.
pub fn lp_bound(problem: &Problem) -> Result<f64, PlaceError> {
    let Some(lp) = relaxed_program(problem) else {
        return Ok(0.0);
    };
    let (agg, eligible_weight) = (lp.agg, lp.eligible_weight);
    let settings = solve::Settings {
        time_limit: LP_TIME_LIMIT_SECONDS,
        rel_gap: 0.0,
        abs_gap: 0.0,
        threads: 1,
        seed: 0,
    };
    let solved = solve::solve(&agg.program, solve::Goal::Primary, &settings, None)
        .map_err(|e| PlaceError::Solver(e.to_string()))?;
    let lp = match (&solved.values, solved.optimal) {
        (Some(v), true) => agg.program.primary_value(v),
        _ => {
            tracing::warn!("LP bound not proven optimal in time; using the eligible weight");
            return Ok(eligible_weight);
        }
    };
    let rounded = (lp + 1e-6 * lp.abs().max(1.0)).floor();
    Ok(rounded.min(eligible_weight))
}

/// Lower bounds on the number of nodes that receive at least one pending pod, one per
/// entry of `weights`: for each weight `w`, no placement that passes
/// [`crate::place::validate::validate`] and places priority weight at least `w` (see
/// [`super::weighted_placed`]) uses fewer nodes. The `pack` goal's LP bound: the LP
/// relaxation of the same aggregated program as [`lp_bound`] (the same constraints
/// relaxed), with a column "nodes of this type in use" on every type — also on single
/// nodes with partly used GPUs, where it is at least each resource's demand over the
/// node's free amount — minimised subject to the placed weight being at least `w`,
/// rounded up. `None` for a weight the LP cannot reach (above [`lp_bound`]) or when
/// HiGHS does not prove the LP optimal within [`LP_TIME_LIMIT_SECONDS`].
///
/// Errors only if HiGHS rejects the program.
pub fn node_lower_bound(
    problem: &Problem,
    weights: &[f64],
) -> Result<Vec<Option<f64>>, PlaceError> {
    let Some(mut lp) = relaxed_program(problem) else {
        return Ok(weights.iter().map(|_| Some(0.0)).collect());
    };
    let agg = &mut lp.agg;
    let relaxed = &lp.relaxed;
    let ext = aggregate::extended_names(relaxed, &lp.classes);
    for (t, ty) in agg.types.iter().enumerate() {
        if agg.k.contains_key(&t) {
            continue;
        }
        let n = ty.nodes[0];
        let k = agg.program.col(0.0, 1.0, false);
        agg.program.cols[k].secondary = 1.0;
        agg.k.insert(t, k);
        let xs: Vec<(usize, usize)> = agg
            .x
            .iter()
            .filter(|(&(_, tt), _)| tt == t)
            .map(|(&(c, _), &x)| (c, x))
            .collect();
        // Per dimension: demand on the node <= its free amount × k.
        let mut caps = formulate::free_of(relaxed, n, &ext);
        let node = &relaxed.cluster[n];
        caps.push(
            node.allocatable
                .pods
                .saturating_sub(relaxed.cluster.used(n).pods) as f64,
        );
        caps.push(relaxed.cluster.gpu_free_total(n) as f64);
        for (dim, &cap) in caps.iter().enumerate() {
            let terms: Vec<(usize, f64)> = xs
                .iter()
                .map(|&(c, x)| {
                    let i = lp.classes.classes[c].rep();
                    let d = formulate::demand_of(relaxed, i, &ext);
                    let a = match dim.cmp(&d.len()) {
                        std::cmp::Ordering::Less => d[dim],
                        std::cmp::Ordering::Equal => 1.0,
                        std::cmp::Ordering::Greater => {
                            relaxed.pending[i].gpu.amount.total_milli() as f64
                        }
                    };
                    (x, a)
                })
                .filter(|&(_, a)| a > 0.0)
                .collect();
            if terms.is_empty() || cap <= 0.0 {
                continue;
            }
            let mut row: Vec<(usize, f64)> = terms.into_iter().map(|(x, a)| (x, a / cap)).collect();
            row.push((k, -1.0));
            agg.program.le(row, 0.0);
        }
    }
    for c in &mut agg.program.cols {
        c.integer = false;
    }
    let settings = solve::Settings {
        time_limit: LP_TIME_LIMIT_SECONDS,
        rel_gap: 0.0,
        abs_gap: 0.0,
        threads: 1,
        seed: 0,
    };
    let mut out = Vec::with_capacity(weights.len());
    let mut memo: BTreeMap<u64, Option<f64>> = BTreeMap::new();
    for &w in weights {
        if let Some(&b) = memo.get(&w.to_bits()) {
            out.push(b);
            continue;
        }
        let solved = solve::solve(&agg.program, solve::Goal::Secondary(w), &settings, None)
            .map_err(|e| PlaceError::Solver(e.to_string()))?;
        let b = match (&solved.values, solved.optimal) {
            (Some(v), true) => {
                let nodes = agg.program.secondary_value(v);
                Some((nodes - 1e-6 * nodes.abs().max(1.0)).ceil().max(0.0))
            }
            _ => None,
        };
        memo.insert(w.to_bits(), b);
        out.push(b);
    }
    Ok(out)
}

/// The relaxed problem, its merged classes, the aggregated LP program over them and the
/// weight of every pod eligible somewhere; `None` if no pod can go anywhere.
struct Relaxed {
    relaxed: Problem,
    classes: Classes,
    agg: aggregate::Aggregate,
    eligible_weight: f64,
}

fn relaxed_program(problem: &Problem) -> Option<Relaxed> {
    let relaxed = Problem {
        cluster: problem.cluster.clone(),
        pending: problem
            .pending
            .iter()
            .map(|p| {
                let mut p = p.clone();
                p.pod_affinity.clear();
                p.topology_spread.clear();
                p
            })
            .collect(),
    };
    let classes = classes::group(&relaxed.pending);
    debug_assert!(classes.greedy_tail.is_empty());
    let groups = node_groups(&relaxed);
    let eligible = eligibility(&relaxed, &classes, &groups);
    let eligible_weight: f64 = classes
        .classes
        .iter()
        .zip(&eligible)
        .filter(|(_, e)| !e.is_empty())
        .map(|(c, _)| c.weight * c.size() as f64)
        .sum();
    let (classes, eligible) = merge_classes(&relaxed, classes, eligible);
    let types = lp_types(&relaxed, &groups, &eligible);
    let mut agg = aggregate::build(&relaxed, &classes, types);
    if agg.x.is_empty() {
        return None;
    }
    for c in &mut agg.program.cols {
        c.integer = false;
    }
    tracing::debug!(
        classes = classes.classes.len(),
        types = agg.types.len(),
        cols = agg.program.cols.len(),
        rows = agg.program.rows.len(),
        "LP bound program built"
    );
    Some(Relaxed {
        relaxed,
        classes,
        agg,
        eligible_weight,
    })
}

/// Groups of nodes the filter cannot tell apart except by name and hostname label.
fn node_groups(problem: &Problem) -> Vec<Vec<NodeId>> {
    let cluster = &problem.cluster;
    let mut by_sig: BTreeMap<String, usize> = BTreeMap::new();
    let mut groups: Vec<Vec<NodeId>> = Vec::new();
    for (n, node) in cluster.nodes() {
        let mut labels = node.labels.clone();
        // A hostname equal to the (unique) node name says nothing beyond the node; any
        // other hostname stays in the signature.
        if labels.get(HOSTNAME_LABEL) == Some(&node.name) {
            labels.remove(HOSTNAME_LABEL);
        }
        let pods: Vec<_> = cluster
            .pods_on(n)
            .iter()
            .filter_map(|&id| cluster.pod(id))
            .map(|(p, _)| {
                let mut p = p.clone();
                p.name.clear();
                p.node_name = None;
                p
            })
            .collect();
        let sig = serde_json::to_string(&(
            &node.allocatable,
            &node.gpus,
            &node.taints,
            node.unschedulable,
            &labels,
            cluster.used(n),
            cluster.gpu_free(n),
            &pods,
        ))
        .unwrap_or_else(|_| format!("node {n}"));
        let next = groups.len();
        let g = *by_sig.entry(sig).or_insert(next);
        if g == next {
            groups.push(Vec::new());
        }
        groups[g].push(n);
    }
    groups
}

/// Where one class passes the filter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Eligible {
    /// Every node of these groups (ascending group indices).
    Groups(Vec<usize>),
    /// These nodes (ascending; classes whose node selection reads the hostname).
    Nodes(Vec<NodeId>),
}

impl Eligible {
    fn is_empty(&self) -> bool {
        match self {
            Eligible::Groups(v) => v.is_empty(),
            Eligible::Nodes(v) => v.is_empty(),
        }
    }
}

/// Whether a pod's node selection reads the hostname label or the node name
/// (`matchFields`), which differ between the nodes of a group.
fn reads_hostname(pod: &crate::model::Pod) -> bool {
    pod.node_selector.contains_key(HOSTNAME_LABEL)
        || pod.required_node_affinity.as_ref().is_some_and(|a| {
            a.terms.iter().any(|t| !t.match_fields.is_empty())
                || serde_json::to_string(a).map_or(true, |s| s.contains(HOSTNAME_LABEL))
        })
}

/// Where each class passes the filter, checking one node per group.
fn eligibility(problem: &Problem, classes: &Classes, groups: &[Vec<NodeId>]) -> Vec<Eligible> {
    let cluster = &problem.cluster;
    classes
        .classes
        .iter()
        .map(|c| {
            let pod = &problem.pending[c.rep()];
            let ctx = FilterContext::new(cluster, pod);
            if reads_hostname(pod) {
                Eligible::Nodes(
                    cluster
                        .node_ids()
                        .filter(|&n| ctx.check(n).is_ok())
                        .collect(),
                )
            } else {
                Eligible::Groups(
                    (0..groups.len())
                        .filter(|&g| ctx.check(groups[g][0]).is_ok())
                        .collect(),
                )
            }
        })
        .collect()
}

/// Merges classes that are interchangeable in the LP: equal requests, GPU amount, weight
/// and eligibility. Sums of their rows are implied by the merged class's rows, and "one
/// node holds at most `fit` pods" holds for the merged class as for each. Gangs are
/// dropped: with `g` continuous their rows `min g <= placed <= size g` hold for every
/// `placed` (take `g = placed / size`), so they bound nothing.
fn merge_classes(
    problem: &Problem,
    classes: Classes,
    eligible: Vec<Eligible>,
) -> (Classes, Vec<Eligible>) {
    let mut out = Classes::default();
    let mut out_elig: Vec<Eligible> = Vec::new();
    let mut by_key: BTreeMap<(String, u64, Eligible), usize> = BTreeMap::new();
    for (class, elig) in classes.classes.into_iter().zip(eligible) {
        if elig.is_empty() {
            continue;
        }
        let pod = &problem.pending[class.rep()];
        let key = (
            serde_json::to_string(&(&pod.requests, pod.gpu.amount)).unwrap_or_default(),
            class.weight.to_bits(),
            elig,
        );
        match by_key.get(&key) {
            Some(&m) => out.classes[m].members.extend(class.members),
            None => {
                by_key.insert(key.clone(), out.classes.len());
                out.classes.push(class);
                out_elig.push(key.2);
            }
        }
    }
    (out, out_elig)
}

/// The types of the LP: each group split by the set of classes eligible on its nodes; a
/// part whose devices are all fully free is one `k`-type, other nodes are a type each.
fn lp_types(problem: &Problem, groups: &[Vec<NodeId>], eligible: &[Eligible]) -> Vec<NodeType> {
    let cluster = &problem.cluster;
    let mut of_group: Vec<Vec<usize>> = vec![Vec::new(); groups.len()];
    let mut of_node: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
    for (c, e) in eligible.iter().enumerate() {
        match e {
            Eligible::Groups(gs) => gs.iter().for_each(|&g| of_group[g].push(c)),
            Eligible::Nodes(ns) => ns
                .iter()
                .for_each(|&n| of_node.entry(n).or_default().push(c)),
        }
    }
    let mut types = Vec::new();
    for (g, nodes) in groups.iter().enumerate() {
        let mut parts: BTreeMap<Vec<usize>, Vec<NodeId>> = BTreeMap::new();
        for &n in nodes {
            let mut cls = of_group[g].clone();
            if let Some(extra) = of_node.get(&n) {
                cls.extend(extra);
                cls.sort_unstable();
            }
            if !cls.is_empty() {
                parts.entry(cls).or_default().push(n);
            }
        }
        let devices_free = cluster
            .gpu_free(nodes[0])
            .iter()
            .all(|&f| f == MILLI_PER_GPU);
        for (cls, nodes) in parts {
            if devices_free {
                types.push(NodeType {
                    nodes,
                    empty: true,
                    classes: cls,
                });
            } else {
                types.extend(nodes.into_iter().map(|n| NodeType {
                    nodes: vec![n],
                    empty: false,
                    classes: cls.clone(),
                }));
            }
        }
    }
    types
}
