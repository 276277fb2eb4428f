//! The per-placement figures a suite reports.

use crate::model::{Cluster, MILLI_PER_GPU};
use crate::place::Outcome;
use std::collections::BTreeSet;

/// Nodes that received at least one newly placed pod.
pub fn nodes_receiving(outcome: &Outcome) -> usize {
    outcome
        .placement
        .iter()
        .flatten()
        .map(|b| b.node)
        .collect::<BTreeSet<_>>()
        .len()
}

/// Allocated milli-GPU / total milli-GPU over all nodes, percent (0 without GPUs).
pub fn gpu_allocation_pct(cluster: &Cluster) -> f64 {
    let mut total = 0u64;
    let mut free = 0u64;
    for (i, n) in cluster.nodes() {
        total += u64::from(n.gpu_count()) * u64::from(MILLI_PER_GPU);
        free += cluster.gpu_free_total(i);
    }
    if total == 0 {
        0.0
    } else {
        100.0 * (total - free) as f64 / total as f64
    }
}

/// A placement that passed the validator, measured.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Pending pods placed.
    pub placed: usize,
    /// Pending pods left out.
    pub unplaced: usize,
    /// Nodes that received at least one newly placed pod.
    pub nodes_used: usize,
    /// Allocated GPU milli / total after placement, percent.
    pub gpu_alloc_pct: f64,
    /// The cluster with the placement applied.
    pub after: Cluster,
}

/// Validates `outcome` on `problem` with the independent validator, applies it and
/// measures it. The error lists the violations, or why the placement could not be
/// applied.
pub fn check_and_measure(
    problem: &crate::model::Problem,
    outcome: &Outcome,
) -> Result<Checked, Vec<String>> {
    crate::place::validate::validate(problem, &outcome.placement)
        .map_err(|v| v.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let after = outcome.apply(problem).map_err(|e| vec![e.to_string()])?;
    let placed = outcome.placed();
    Ok(Checked {
        placed,
        unplaced: problem.pending.len() - placed,
        nodes_used: nodes_receiving(outcome),
        gpu_alloc_pct: gpu_allocation_pct(&after),
        after,
    })
}
