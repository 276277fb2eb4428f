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
    for (i, n) in cluster.nodes().iter().enumerate() {
        total += u64::from(n.gpu_count()) * u64::from(MILLI_PER_GPU);
        free += cluster.gpu_free_total(i);
    }
    if total == 0 {
        0.0
    } else {
        100.0 * (total - free) as f64 / total as f64
    }
}
