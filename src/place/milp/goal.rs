//! The second goal's value of any placement, so that placements from different sources
//! (the greedy policies, the program, the aggregated program) compare lexicographically:
//! first the priority weight of the placed pods (higher is better), then the second goal
//! (lower is better).

use super::Objective;
use crate::model::{Binding, GpuAmount, NodeId, Problem, MILLI_PER_GPU};

/// Tolerance when comparing goal values (weights are sums of small integers; the
/// utilisation of `balance` is a ratio).
const EPS: f64 = 1e-9;

/// The second goal's value of `placement` (pending order), measured on the cluster after
/// binding it:
/// - `pack`: nodes empty now that receive at least one pod;
/// - `balance`: the largest utilisation over CPU, memory and GPU of every node;
/// - `fragmentation`: milli-GPU free on devices with some but not all of their milli
///   taken.
pub(crate) fn value(problem: &Problem, placement: &[Option<Binding>], objective: Objective) -> f64 {
    let c = &problem.cluster;
    let slots = || (0..c.node_slots()).map(NodeId::from_index);
    match objective {
        Objective::Pack => {
            let mut used = vec![false; c.node_slots()];
            for b in placement.iter().flatten() {
                if let Some(u) = used.get_mut(b.node.index()) {
                    *u = true;
                }
            }
            c.node_ids()
                .filter(|&n| used[n] && c.pods_on(n).is_empty())
                .count() as f64
        }
        Objective::Balance => {
            let mut cpu: Vec<u64> = slots().map(|n| c.used(n).cpu_milli).collect();
            let mut mem: Vec<u64> = slots().map(|n| c.used(n).memory_bytes).collect();
            let mut gpu: Vec<u64> = slots()
                .map(|n| gpu_total(problem, n) - c.gpu_free_total(n))
                .collect();
            for (p, b) in problem.pending.iter().zip(placement) {
                if let Some(b) = b {
                    cpu[b.node] += p.requests.cpu_milli;
                    mem[b.node] += p.requests.memory_bytes;
                    gpu[b.node] += p.gpu.amount.total_milli();
                }
            }
            let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
            c.nodes()
                .map(|(n, node)| {
                    let a = &node.allocatable;
                    ratio(cpu[n], a.cpu_milli)
                        .max(ratio(mem[n], a.memory_bytes))
                        .max(ratio(gpu[n], gpu_total(problem, n)))
                })
                .fold(0.0, f64::max)
        }
        Objective::Fragmentation => {
            let mut free: Vec<Vec<u32>> = slots().map(|n| c.gpu_free(n).to_vec()).collect();
            for (p, b) in problem.pending.iter().zip(placement) {
                let Some(b) = b else { continue };
                let take = match p.gpu.amount {
                    GpuAmount::None => 0,
                    GpuAmount::Shared(m) => m,
                    GpuAmount::Whole(_) => MILLI_PER_GPU,
                };
                for &d in &b.gpu_devices {
                    if let Some(f) = free[b.node].get_mut(d as usize) {
                        *f = f.saturating_sub(take);
                    }
                }
            }
            free.iter()
                .flatten()
                .filter(|&&f| f > 0 && f < MILLI_PER_GPU)
                .map(|&f| f64::from(f))
                .sum()
        }
    }
}

fn gpu_total(problem: &Problem, n: NodeId) -> u64 {
    let count = problem.cluster.node(n).map_or(0, |n| n.gpu_count());
    u64::from(count) * u64::from(MILLI_PER_GPU)
}

/// A placement's lexicographic score: (priority weight placed, second goal).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Score {
    /// Priority weight of the placed pods (higher is better).
    pub weight: f64,
    /// Second goal (lower is better).
    pub goal: f64,
}

impl Score {
    /// Scores `placement`.
    pub fn of(problem: &Problem, placement: &[Option<Binding>], objective: Objective) -> Self {
        Score {
            weight: super::weighted_placed(problem, placement),
            goal: value(problem, placement, objective),
        }
    }

    /// True if `self` is strictly better than `other`.
    pub fn better_than(&self, other: &Score) -> bool {
        self.weight > other.weight + EPS
            || (self.weight > other.weight - EPS && self.goal < other.goal - EPS)
    }
}
