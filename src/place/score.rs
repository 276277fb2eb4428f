//! Node scores: kube-scheduler's NodeResourcesFit (LeastAllocated, MostAllocated),
//! NodeResourcesBalancedAllocation and score normalisation, plus the packing scores of
//! the FGD paper's baselines (best-fit, dot-product, GPU packing, GPU clustering) and the
//! fragmentation-aware score ([`fgd`]).
//!
//! Every function here is pure and allocation-free: it takes the numbers of one node and
//! one pod and returns a score where higher is better. The online policies
//! ([`crate::place::online`]) decide which scores to combine and with which weights; this
//! module never looks at a [`crate::model::Cluster`].
//!
//! kube-scheduler formulas follow `pkg/scheduler/framework/plugins/noderesources`
//! (`least_allocated.go`, `most_allocated.go`, `balanced_allocation.go`) and
//! `pkg/scheduler/framework/plugins/helper/normalize_score.go`: integer scores in
//! `0..=100` computed with integer division, as kube does.

pub mod fgd;

use crate::model::{GpuAmount, MILLI_PER_GPU};

/// kube-scheduler's `framework.MaxNodeScore`.
pub const MAX_NODE_SCORE: i64 = 100;

/// CPU a container without a CPU request counts for in scoring (kube's
/// `schedutil.DefaultMilliCPURequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: u64 = 100;

/// Memory a container without a memory request counts for in scoring (kube's
/// `schedutil.DefaultMemoryRequest`, 200 MiB).
pub const DEFAULT_MEMORY_REQUEST_BYTES: u64 = 200 * 1024 * 1024;

/// The largest GPU spec of a node in the FGD paper's simulator (8 GPUs), in milli-GPU;
/// GPU clustering scales free GPU by it.
pub const MAX_SPEC_GPU_MILLI: i64 = 8 * MILLI_PER_GPU as i64;

/// kube's non-zero requests of a pod for scoring: a CPU or memory request of zero counts
/// as [`DEFAULT_MILLI_CPU_REQUEST`] / [`DEFAULT_MEMORY_REQUEST_BYTES`]. Our pods carry
/// pod-level totals, so the default applies to the pod rather than per container.
pub fn non_zero_request(cpu_milli: u64, memory_bytes: u64) -> (u64, u64) {
    (
        if cpu_milli == 0 {
            DEFAULT_MILLI_CPU_REQUEST
        } else {
            cpu_milli
        },
        if memory_bytes == 0 {
            DEFAULT_MEMORY_REQUEST_BYTES
        } else {
            memory_bytes
        },
    )
}

/// kube's `leastRequestedScore`: `(capacity - requested) * 100 / capacity`, 0 if the
/// capacity is zero or exceeded.
pub fn least_requested_score(requested: u64, capacity: u64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    ((capacity - requested) as u128 * MAX_NODE_SCORE as u128 / capacity as u128) as i64
}

/// kube's `mostRequestedScore`: `requested * 100 / capacity`, requested capped at capacity,
/// 0 if the capacity is zero.
pub fn most_requested_score(requested: u64, capacity: u64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    let requested = requested.min(capacity);
    (requested as u128 * MAX_NODE_SCORE as u128 / capacity as u128) as i64
}

/// One resource's numbers for the NodeResourcesFit strategies: requested on the node
/// *including the pod being scored*, and allocatable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceUse {
    /// Requested, including the incoming pod.
    pub requested: u64,
    /// Allocatable.
    pub allocatable: u64,
}

/// NodeResourcesFit with the `LeastAllocated` strategy over cpu and memory at weight 1
/// each (kube's default): `(Σ score_r · w_r) / Σ w_r` in integers.
pub fn least_allocated(cpu: ResourceUse, memory: ResourceUse) -> i64 {
    (least_requested_score(cpu.requested, cpu.allocatable)
        + least_requested_score(memory.requested, memory.allocatable))
        / 2
}

/// NodeResourcesFit with the `MostAllocated` strategy over cpu and memory at weight 1 each.
pub fn most_allocated(cpu: ResourceUse, memory: ResourceUse) -> i64 {
    (most_requested_score(cpu.requested, cpu.allocatable)
        + most_requested_score(memory.requested, memory.allocatable))
        / 2
}

/// NodeResourcesBalancedAllocation (kube ≥ 1.25): the fractions `requested / allocatable`
/// (capped at 1, resources with zero allocatable skipped) of the given resources; the
/// score is `(1 - std) · 100` truncated, with `std = |f1 - f2| / 2` for two resources and
/// the population standard deviation for more.
///
/// kube scores cpu and memory by default. Plimsoll's policies pass the GPU fraction as a
/// third resource when the pod asks for GPUs and the node has them, so a GPU pod also
/// balances GPU against CPU and memory (see [`crate::place::online`]).
pub fn balanced_allocation(resources: &[ResourceUse]) -> i64 {
    let mut fractions = [0.0f64; 4];
    let mut len = 0;
    let mut total = 0.0;
    for r in resources.iter().filter(|r| r.allocatable > 0).take(4) {
        let f = (r.requested as f64 / r.allocatable as f64).min(1.0);
        fractions[len] = f;
        total += f;
        len += 1;
    }
    let std = match len {
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n if n > 2 => {
            let mean = total / n as f64;
            let sum: f64 = fractions[..n].iter().map(|f| (f - mean) * (f - mean)).sum();
            (sum / n as f64).sqrt()
        }
        _ => 0.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

/// A node's free and total amounts after (or before) a placement, for the packing scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dim {
    /// Free amount.
    pub free: f64,
    /// Total (allocatable) amount; dimensions with zero total are skipped.
    pub total: f64,
}

/// Best-fit: `100 · (1 - mean_d free_after_d / total_d)` over the given dimensions (cpu,
/// memory, and GPU when the node has GPUs), so the node left with the least normalised
/// free resources after the placement scores highest. Including GPU for GPU nodes makes
/// a CPU-only pod prefer a CPU node over an idle GPU node.
pub fn best_fit(after: &[Dim]) -> f64 {
    let mut sum = 0.0;
    let mut n = 0.0;
    for d in after.iter().filter(|d| d.total > 0.0) {
        sum += (d.free / d.total).clamp(0.0, 1.0);
        n += 1.0;
    }
    if n == 0.0 {
        return 0.0;
    }
    MAX_NODE_SCORE as f64 * (1.0 - sum / n)
}

/// Dot-product (Tetris), as the FGD paper's DotProd baseline implements it: pod demand
/// and node free vectors both normalised by the node's capacity, averaged over the
/// dimensions, and `100 · (1 - dot)` so the node whose free resources align *least* with
/// the demand (the tightest) scores highest. `demand[i]` pairs with `free[i]`.
pub fn dot_product(demand: &[f64], free: &[Dim]) -> f64 {
    let mut dot = 0.0;
    let mut n = 0.0;
    for (q, d) in demand.iter().zip(free).filter(|(_, d)| d.total > 0.0) {
        dot += (q / d.total) * (d.free / d.total);
        n += 1.0;
    }
    if n == 0.0 {
        return MAX_NODE_SCORE as f64;
    }
    MAX_NODE_SCORE as f64 * (1.0 - dot / n)
}

/// The FGD paper's GpuPacking baseline (simulator plugin `gpu_packing_score.go`), from
/// best to worst: (1) the request fits on already-shared devices: `100 - Σ free% / 10`,
/// at least 50; (2) it needs fully free devices on a node already in use:
/// `50 - devices used`, at least 33; (3) the node's GPUs are all free:
/// `max(33 - free devices, free devices)`. Pods without GPUs score 0 everywhere.
/// `free_milli` is the node's per-device free milli-GPU; the request must fit.
pub fn gpu_packing(free_milli: &[u32], amount: GpuAmount) -> i64 {
    let (count, per_device) = match amount {
        GpuAmount::None => return 0,
        GpuAmount::Shared(m) => (1u32, m),
        GpuAmount::Whole(n) => (n, MILLI_PER_GPU),
    };
    let fully_free = free_milli.iter().filter(|&&f| f == MILLI_PER_GPU).count() as i64;
    if fully_free == free_milli.len() as i64 {
        return (MAX_NODE_SCORE / 3 - fully_free).max(fully_free);
    }
    // Devices by least free first (stable: lowest index on ties), as the plugin sorts.
    let mut order = [0u8; 64];
    let n = free_milli.len().min(64);
    for (i, o) in order.iter_mut().enumerate().take(n) {
        *o = i as u8;
    }
    order[..n].sort_by_key(|&i| free_milli[i as usize]);
    let mut left = count;
    let mut fully_free_used = 0;
    let mut free_pct_on_used = 0i64;
    for &i in &order[..n] {
        if left == 0 {
            break;
        }
        let f = free_milli[i as usize];
        if per_device <= f {
            left -= 1;
            free_pct_on_used += i64::from(f) * 100 / i64::from(MILLI_PER_GPU);
            if f == MILLI_PER_GPU {
                fully_free_used += 1;
            }
        }
    }
    if left != 0 {
        return 0;
    }
    if fully_free_used > 0 {
        return (MAX_NODE_SCORE / 2 - fully_free_used).max(MAX_NODE_SCORE / 3);
    }
    (MAX_NODE_SCORE - free_pct_on_used / 10).max(MAX_NODE_SCORE / 2)
}

/// What GPU request types a node already runs, relative to the incoming pod's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuAffinity {
    /// Only pods of the pod's GPU request type.
    OnlySame,
    /// The pod's type among others.
    Mixed,
    /// No GPU pods at all.
    Idle,
    /// Only other types.
    Different,
}

/// The FGD paper's GpuClustering baseline (`gpu_clustering_score.go`): nodes already
/// running only pods of the same GPU request type score in (75, 100], mixed nodes with
/// that type in (50, 75], idle nodes in (25, 50], others in (0, 25]; within a band,
/// less free GPU scores higher (`25 · (8000 - free) / 8000`). Pods without GPUs score 0.
pub fn gpu_clustering(affinity: GpuAffinity, free_total_milli: u64, pod_wants_gpu: bool) -> i64 {
    if !pod_wants_gpu {
        return 0;
    }
    let packing =
        MAX_NODE_SCORE / 4 * (MAX_SPEC_GPU_MILLI - free_total_milli as i64) / MAX_SPEC_GPU_MILLI;
    let band = match affinity {
        GpuAffinity::OnlySame => 3,
        GpuAffinity::Mixed => 2,
        GpuAffinity::Idle => 1,
        GpuAffinity::Different => 0,
    };
    packing + MAX_NODE_SCORE * band / 4
}

/// kube's `helper.DefaultNormalizeScore(100, reverse, scores)`: scales raw scores so the
/// largest becomes 100 (integer math), reversed (`100 - s`) if asked; if every raw score
/// is 0, all become 0 (or 100 when reversed).
pub fn default_normalize(raw: i64, max_raw: i64, reverse: bool) -> i64 {
    if max_raw == 0 {
        return if reverse { MAX_NODE_SCORE } else { 0 };
    }
    let s = MAX_NODE_SCORE * raw / max_raw;
    if reverse {
        MAX_NODE_SCORE - s
    } else {
        s
    }
}

/// PodTopologySpread's per-node raw score term for one soft constraint
/// (`scoreForCount`): `count · weight + (maxSkew - 1)`, where
/// `weight = ln(domains + 2)`.
pub fn spread_raw_term(count: u32, max_skew: u32, domains: usize) -> f64 {
    f64::from(count) * ((domains + 2) as f64).ln() + f64::from(max_skew) - 1.0
}

/// PodTopologySpread's `NormalizeScore`: `100 · (max + min - s) / max` over the nodes
/// that carry every soft constraint's key; 100 for all if `max` is 0. Nodes missing a key
/// score 0 (the caller handles them).
pub fn spread_normalize(raw: i64, min_raw: i64, max_raw: i64) -> i64 {
    if max_raw == 0 {
        return MAX_NODE_SCORE;
    }
    MAX_NODE_SCORE * (max_raw + min_raw - raw) / max_raw
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ru(requested: u64, allocatable: u64) -> ResourceUse {
        ResourceUse {
            requested,
            allocatable,
        }
    }

    #[test]
    fn kube_resource_formulas() {
        // kube's least_allocated_test "nothing scheduled, resources requested, differently
        // sized nodes": cpu 3000/4000 → 25, memory 5000/10000 → 50, score (25+50)/2 = 37.
        assert_eq!(least_allocated(ru(3000, 4000), ru(5000, 10000)), 37);
        // most_allocated: cpu 75, memory 50 → 62.
        assert_eq!(most_allocated(ru(3000, 4000), ru(5000, 10000)), 62);
        assert_eq!(least_requested_score(5, 4), 0);
        assert_eq!(most_requested_score(5, 4), 100);
        // Balanced: |0.75 - 0.5| / 2 = 0.125 → 87.
        assert_eq!(balanced_allocation(&[ru(3000, 4000), ru(5000, 10000)]), 87);
        // Three resources: fractions 0.5, 0.5, 1.0: mean 2/3, std = sqrt(1/18) ≈ 0.2357 → 76.
        assert_eq!(balanced_allocation(&[ru(1, 2), ru(1, 2), ru(2, 2)]), 76);
    }

    #[test]
    fn gpu_packing_bands() {
        // Shared device with 400 free takes a 300 share: 100 - 40/10 = 96.
        assert_eq!(gpu_packing(&[400, 1000], GpuAmount::Shared(300)), 96);
        // Needs a fresh device on a used node: 50 - 1.
        assert_eq!(gpu_packing(&[200, 1000], GpuAmount::Shared(300)), 49);
        // Idle 2-GPU node: max(33 - 2, 2) = 31.
        assert_eq!(gpu_packing(&[1000, 1000], GpuAmount::Shared(300)), 31);
    }

    #[test]
    fn normalisation() {
        assert_eq!(default_normalize(3, 6, false), 50);
        assert_eq!(default_normalize(3, 6, true), 50);
        assert_eq!(default_normalize(0, 0, true), 100);
        assert_eq!(spread_normalize(2, 2, 10), 100);
        assert_eq!(spread_normalize(10, 2, 10), 20);
    }
}
