//! Why pods stay pending: for every pod a placement leaves out, every node is evaluated
//! against the cluster *with the placement applied*, using the same filters the policies
//! use ([`FilterContext`]) — an explanation says what the scheduler sees.
//!
//! The summary follows kube-scheduler's `FitError.Error()` exactly when no node fits:
//! `0/N nodes are available: ` then "`count reason`" strings, one per distinct reason
//! text, sorted as strings (Go's `sort.Strings`, so `12 …` sorts before `3 …`), joined
//! with `, ` and closed by a period. A node rejected for several resources counts once
//! per resource, as kube does. When the pod fits somewhere but was left out (a gang that
//! could not be placed together, or the policy's choice) the summary says so instead of
//! a misleading "0/N nodes are available".
//!
//! This module owns only the wording and counting; it never decides placements (the
//! gang estimate binds members on a scratch copy, first fit by node index).

use super::filter::{FilterContext, Reason};
use crate::model::{Binding, Cluster, NodeId, Pod, Problem};
use std::collections::BTreeMap;

/// Why one pending pod was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// Index of the pod in [`Problem::pending`].
    pub pending_index: usize,
    /// `namespace/name` of the pod.
    pub pod: String,
    /// One-line summary (kube-scheduler's format when no node fits).
    pub summary: String,
    /// Every node that rejects the pod, ascending, with the reasons of the first filter
    /// plugin that rejected it.
    pub per_node: Vec<(NodeId, Vec<Reason>)>,
    /// Nodes that would accept the pod, ascending (empty when no node fits).
    pub feasible_nodes: Vec<NodeId>,
}

/// For every pod left out of `placement` (a `None` entry, or no entry at all), why —
/// evaluated against the cluster with the placement applied. Bindings that cannot be
/// applied (an invalid placement; see [`super::validate::validate`]) are skipped.
/// Ordered by pending index.
pub fn explain(problem: &Problem, placement: &[Option<Binding>]) -> Vec<Explanation> {
    let mut cluster = problem.cluster.clone();
    for (pod, b) in problem.pending.iter().zip(placement) {
        if let Some(b) = b {
            // An unappliable binding is a validation matter; explain what is left.
            let _ = cluster.bind(pod.clone(), b.node, Some(b.gpu_devices.clone()));
        }
    }
    let mut gang_estimates: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, pod) in problem.pending.iter().enumerate() {
        if placement.get(i).is_some_and(|b| b.is_some()) {
            continue;
        }
        let ctx = FilterContext::new(&cluster, pod);
        let mut per_node = Vec::new();
        let mut feasible_nodes = Vec::new();
        for n in cluster.node_ids() {
            match ctx.check(n) {
                Ok(()) => feasible_nodes.push(n),
                Err(reasons) => per_node.push((n, reasons)),
            }
        }
        let summary = if feasible_nodes.is_empty() {
            fit_error(cluster.node_count(), &per_node)
        } else if let Some(g) = &pod.gang {
            let key = (pod.namespace.clone(), g.name.clone());
            let could = *gang_estimates
                .entry(key)
                .or_insert_with(|| gang_estimate(&cluster, problem, placement, pod));
            if could < g.min_member as usize {
                format!(
                    "gang {}/{} needs {} members placed together; only {} could be",
                    pod.namespace, g.name, g.min_member, could
                )
            } else {
                format!(
                    "fits on {} node(s) but was not placed by the policy (gang {}/{} needs {} members; {} could be placed together)",
                    feasible_nodes.len(),
                    pod.namespace,
                    g.name,
                    g.min_member,
                    could
                )
            }
        } else {
            format!(
                "fits on {} node(s) but was not placed by the policy",
                feasible_nodes.len()
            )
        };
        out.push(Explanation {
            pending_index: i,
            pod: pod.key(),
            summary,
            per_node,
            feasible_nodes,
        });
    }
    out
}

/// kube-scheduler's `FitError.Error()` text for a pod no node accepts.
pub fn fit_error(num_nodes: usize, per_node: &[(NodeId, Vec<Reason>)]) -> String {
    if num_nodes == 0 {
        return "no nodes available to schedule pods".to_string();
    }
    let mut histogram: BTreeMap<String, usize> = BTreeMap::new();
    for (_, reasons) in per_node {
        for r in reasons {
            *histogram.entry(r.to_string()).or_insert(0) += 1;
        }
    }
    let mut parts: Vec<String> = histogram
        .into_iter()
        .map(|(reason, count)| format!("{count} {reason}"))
        .collect();
    parts.sort();
    let mut msg = format!("0/{num_nodes} nodes are available:");
    if !parts.is_empty() {
        msg.push_str(&format!(" {}.", parts.join(", ")));
    }
    msg
}

/// How many members of `pod`'s gang left out by the placement could be placed together
/// on top of it: binds them one by one on a scratch copy, each on the lowest-indexed
/// node the filters accept, in pending order. Members already placed count too.
fn gang_estimate(
    cluster: &Cluster,
    problem: &Problem,
    placement: &[Option<Binding>],
    pod: &Pod,
) -> usize {
    let Some(gang) = &pod.gang else { return 0 };
    let same_gang = |p: &Pod| {
        p.namespace == pod.namespace && p.gang.as_ref().is_some_and(|g| g.name == gang.name)
    };
    let mut scratch = cluster.clone();
    let mut placed = 0;
    for (i, member) in problem.pending.iter().enumerate() {
        if !same_gang(member) {
            continue;
        }
        if placement.get(i).is_some_and(|b| b.is_some()) {
            placed += 1;
            continue;
        }
        let node = {
            let ctx = FilterContext::new(&scratch, member);
            scratch.node_ids().find(|&n| ctx.check(n).is_ok())
        };
        if let Some(n) = node {
            if scratch.bind(member.clone(), n, None).is_ok() {
                placed += 1;
            }
        }
    }
    placed
}
