//! The policies' scores of one node row: kube-scheduler's integer formulas with the
//! divisions replaced by exact reciprocal arithmetic, unrolled BalancedAllocation, the
//! packing scores. Each must return exactly what the reference function in
//! [`crate::place::score`] returns (tested below).

use super::hot::{NodeRow, PodReq};
use super::OnlineKind;
use crate::model::{Cluster, GpuAmount, NodeId, MILLI_PER_GPU};
use crate::place::score::{self, GpuAffinity, ResourceUse};

/// Per-node data behind a pointer, read only by the policies that need it.
pub(crate) struct NodeRefs<'s> {
    pub cluster: &'s Cluster,
    pub gpu_types: &'s [Vec<(GpuAmount, u32)>],
    pub node: NodeId,
}

/// `x / d` for integers, exactly, using a precomputed `inv = 1 / d` (d > 0, x < 2^53):
/// the float quotient is off by at most one and is corrected.
#[inline]
fn div_exact(x: u64, d: u64, inv: f64) -> u64 {
    // Through i64: x < 2^53, so the signed conversions are exact and cheaper.
    let mut q = ((x as i64) as f64 * inv) as i64 as u64;
    if q * d > x {
        q -= 1;
    } else if (q + 1) * d <= x {
        q += 1;
    }
    q
}

/// kube's `leastRequestedScore` with the row's reciprocal (same integers).
#[inline]
fn least_requested_fast(requested: u64, capacity: u64, inv: f64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    let x = (capacity - requested) * score::MAX_NODE_SCORE as u64;
    if x >= 1 << 53 {
        return score::least_requested_score(requested, capacity);
    }
    div_exact(x, capacity, inv) as i64
}

/// kube's `mostRequestedScore` with the row's reciprocal (same integers).
#[inline]
fn most_requested_fast(requested: u64, capacity: u64, inv: f64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    let x = requested.min(capacity) * score::MAX_NODE_SCORE as u64;
    if x >= 1 << 53 {
        return score::most_requested_score(requested, capacity);
    }
    div_exact(x, capacity, inv) as i64
}

/// NodeResourcesFit LeastAllocated (cpu, memory; weight 1 each) on a row.
#[inline]
pub(crate) fn least_allocated_fast(r: &NodeRow, q: &PodReq) -> f64 {
    ((least_requested_fast(r.nz_cpu + q.nz_cpu, r.alloc_cpu, r.inv_cpu)
        + least_requested_fast(r.nz_mem + q.nz_mem, r.alloc_mem, r.inv_mem))
        / 2) as f64
}

/// NodeResourcesFit MostAllocated (cpu, memory; weight 1 each) on a row.
#[inline]
pub(crate) fn most_allocated_fast(r: &NodeRow, q: &PodReq) -> f64 {
    ((most_requested_fast(r.nz_cpu + q.nz_cpu, r.alloc_cpu, r.inv_cpu)
        + most_requested_fast(r.nz_mem + q.nz_mem, r.alloc_mem, r.inv_mem))
        / 2) as f64
}

/// kube-default's resource scores: LeastAllocated + BalancedAllocation (GPU fraction
/// included for GPU pods on GPU nodes).
#[inline(always)]
pub(crate) fn kube_resources_fast(r: &NodeRow, q: &PodReq) -> f64 {
    let gpu_cap = u64::from(r.gpu_count) * u64::from(MILLI_PER_GPU);
    let balanced = if q.gpu.is_some() && gpu_cap > 0 {
        balanced_guarded(
            r,
            [
                r.used_cpu + q.cpu,
                r.used_mem + q.mem,
                gpu_cap - u64::from(r.gpu_free_total) + q.gpu_milli(),
            ],
            true,
        )
    } else {
        balanced_guarded(r, [r.used_cpu + q.cpu, r.used_mem + q.mem, 0], false)
    };
    least_allocated_fast(r, q) + balanced as f64
}

/// BalancedAllocation with the row's reciprocals instead of divisions. The fractions may
/// then differ from kube's by an ulp, which can only change the truncated score when
/// `(1 - std) · 100` lies within rounding distance of an integer: there (within 1e-9) the
/// exact unrolled formula decides, so the result always equals kube's.
#[inline]
pub(crate) fn balanced_guarded(r: &NodeRow, req: [u64; 3], with_gpu: bool) -> i64 {
    let gpu_cap = u64::from(r.gpu_count) * u64::from(MILLI_PER_GPU);
    let exact = || {
        if with_gpu {
            balanced_cpu_mem_gpu(req, [r.alloc_cpu, r.alloc_mem, gpu_cap])
        } else {
            balanced_cpu_mem(req[0], r.alloc_cpu, req[1], r.alloc_mem)
        }
    };
    const LIMIT: u64 = 1 << 53;
    if r.alloc_cpu == 0 || r.alloc_mem == 0 || req.iter().any(|&x| x >= LIMIT) {
        return exact();
    }
    let f0 = ((req[0] as i64) as f64 * r.inv_cpu).min(1.0);
    let f1 = ((req[1] as i64) as f64 * r.inv_mem).min(1.0);
    let std = if with_gpu {
        let f2 = ((req[2] as i64) as f64 * r.inv_gpu).min(1.0);
        let mean = (f0 + f1 + f2) / 3.0;
        (((f0 - mean) * (f0 - mean) + (f1 - mean) * (f1 - mean) + (f2 - mean) * (f2 - mean)) / 3.0)
            .sqrt()
    } else {
        ((f0 - f1) / 2.0).abs()
    };
    let v = (1.0 - std) * score::MAX_NODE_SCORE as f64;
    // v is in [0, 100]: truncation through i64 is the floor (and needs no libm call).
    let t = v as i64;
    let frac = v - t as f64;
    if !(1e-9..=1.0 - 1e-9).contains(&frac) {
        return exact();
    }
    t
}

/// [`score::balanced_allocation`] for cpu, memory and GPU, unrolled: the same float
/// operations in the same order, so the same result.
#[inline]
fn balanced_cpu_mem_gpu(req: [u64; 3], alloc: [u64; 3]) -> i64 {
    if alloc.contains(&0) {
        let res = [0, 1, 2].map(|i| ResourceUse {
            requested: req[i],
            allocatable: alloc[i],
        });
        return score::balanced_allocation(&res);
    }
    let f = [0, 1, 2].map(|i| (req[i] as f64 / alloc[i] as f64).min(1.0));
    let total = f[0] + f[1] + f[2];
    let mean = total / 3.0;
    let sum = (f[0] - mean) * (f[0] - mean)
        + (f[1] - mean) * (f[1] - mean)
        + (f[2] - mean) * (f[2] - mean);
    let std = (sum / 3.0).sqrt();
    ((1.0 - std) * score::MAX_NODE_SCORE as f64) as i64
}

/// [`score::balanced_allocation`] for cpu and memory, unrolled: the same float
/// operations in the same order, so the same result.
#[inline]
fn balanced_cpu_mem(cpu_req: u64, cpu_alloc: u64, mem_req: u64, mem_alloc: u64) -> i64 {
    if cpu_alloc == 0 || mem_alloc == 0 {
        let res = [
            ResourceUse {
                requested: cpu_req,
                allocatable: cpu_alloc,
            },
            ResourceUse {
                requested: mem_req,
                allocatable: mem_alloc,
            },
        ];
        return score::balanced_allocation(&res);
    }
    let f0 = (cpu_req as f64 / cpu_alloc as f64).min(1.0);
    let f1 = (mem_req as f64 / mem_alloc as f64).min(1.0);
    let std = ((f0 - f1) / 2.0).abs();
    ((1.0 - std) * score::MAX_NODE_SCORE as f64) as i64
}

/// [`score::best_fit`] with the divisions replaced by the row's reciprocals.
#[inline]
pub(crate) fn best_fit_fast(r: &NodeRow, q: &PodReq) -> f64 {
    let free_cpu = r.alloc_cpu.saturating_sub(r.used_cpu);
    let free_mem = r.alloc_mem.saturating_sub(r.used_mem);
    // Amounts are far below 2^63: convert through i64 (one instruction on x86-64).
    let free_after = ((free_cpu - q.cpu) as i64) as f64 * r.inv_cpu
        + ((free_mem - q.mem) as i64) as f64 * r.inv_mem
        + f64::from(r.gpu_free_total - q.gpu_milli() as u32) * r.inv_gpu;
    score::MAX_NODE_SCORE as f64 * (1.0 - free_after * r.inv_dims)
}

/// The policy's own score of a feasible node, and the device it picks (FGD shares).
pub(crate) fn main_score(kind: OnlineKind, r: &NodeRow, q: &PodReq, refs: NodeRefs<'_>) -> f64 {
    let free_cpu = r.alloc_cpu.saturating_sub(r.used_cpu);
    let free_mem = r.alloc_mem.saturating_sub(r.used_mem);
    match kind {
        OnlineKind::LeastAllocated => least_allocated_fast(r, q),
        OnlineKind::MostAllocated => most_allocated_fast(r, q),
        OnlineKind::KubeDefault => kube_resources_fast(r, q),
        OnlineKind::BestFit => best_fit_fast(r, q),
        OnlineKind::DotProduct => {
            // score::dot_product with the divisions replaced by the row's reciprocals:
            // Σ (q_d / total_d) · (free_d / total_d) = Σ q_d · free_d · (1 / total_d)².
            let (gpu_q, gpu_free, gpu_inv) = match q.gpu {
                GpuAmount::Shared(m) => (
                    f64::from(m),
                    f64::from(
                        tightest_device(refs.cluster.gpu_free(refs.node), m).map_or(0, |(_, f)| f),
                    ),
                    1.0 / f64::from(MILLI_PER_GPU),
                ),
                _ => (q.gpu_milli() as f64, f64::from(r.gpu_free_total), r.inv_gpu),
            };
            let dot = (q.cpu as i64) as f64 * (free_cpu as i64) as f64 * r.inv_cpu * r.inv_cpu
                + (q.mem as i64) as f64 * (free_mem as i64) as f64 * r.inv_mem * r.inv_mem
                + gpu_q * gpu_free * gpu_inv * gpu_inv;
            score::MAX_NODE_SCORE as f64 * (1.0 - dot * r.inv_dims)
        }
        OnlineKind::GpuPacking => {
            score::gpu_packing(refs.cluster.gpu_free(refs.node), q.gpu) as f64
        }
        OnlineKind::GpuClustering => {
            let mut same = false;
            let mut other = false;
            for (g, _) in &refs.gpu_types[refs.node] {
                if *g == q.gpu {
                    same = true;
                } else {
                    other = true;
                }
            }
            let aff = match (same, other) {
                (true, false) => GpuAffinity::OnlySame,
                (true, true) => GpuAffinity::Mixed,
                (false, false) => GpuAffinity::Idle,
                (false, true) => GpuAffinity::Different,
            };
            score::gpu_clustering(aff, u64::from(r.gpu_free_total), q.gpu.is_some()) as f64
        }
        // FGD is scored by FragState; first-fit and random do not score.
        OnlineKind::Fgd | OnlineKind::Cbf | OnlineKind::FirstFit | OnlineKind::Random => 0.0,
    }
}

/// The device with the least free milli that still holds `m` (lowest index on ties).
fn tightest_device(free: &[u32], m: u32) -> Option<(usize, u32)> {
    free.iter()
        .copied()
        .enumerate()
        .filter(|&(_, f)| f >= m)
        .min_by_key(|&(i, f)| (f, i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn fast_scores_equal_the_reference_formulas() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..20_000 {
            let cap: u64 = match rng.gen_range(0..3) {
                0 => rng.gen_range(1..200_000),
                1 => rng.gen_range(1..(1u64 << 41)),
                _ => rng.gen_range(1..10) * 1000,
            };
            let req = rng.gen_range(0..cap + cap / 4 + 1);
            let inv = 1.0 / cap as f64;
            assert_eq!(
                least_requested_fast(req, cap, inv),
                score::least_requested_score(req, cap)
            );
            assert_eq!(
                most_requested_fast(req, cap, inv),
                score::most_requested_score(req, cap)
            );
            let (c2, r2) = (
                rng.gen_range(1..64u64) * 1000,
                rng.gen_range(0..64u64) * 500,
            );
            let (c3, r3) = (rng.gen_range(1..9u64) * 1000, rng.gen_range(0..9u64) * 250);
            let ru = |requested, allocatable| ResourceUse {
                requested,
                allocatable,
            };
            assert_eq!(
                balanced_cpu_mem(req, cap, r2, c2),
                score::balanced_allocation(&[ru(req, cap), ru(r2, c2)])
            );
            let mut row = NodeRow {
                alloc_cpu: cap,
                alloc_mem: c2,
                gpu_count: (c3 / 1000) as u32,
                inv_cpu: 1.0 / cap as f64,
                inv_mem: 1.0 / c2 as f64,
                inv_gpu: 1.0 / c3 as f64,
                ..Default::default()
            };
            assert_eq!(
                balanced_guarded(&row, [req, r2, 0], false),
                score::balanced_allocation(&[ru(req, cap), ru(r2, c2)])
            );
            assert_eq!(
                balanced_guarded(&row, [req, r2, r3], true),
                score::balanced_allocation(&[ru(req, cap), ru(r2, c2), ru(r3, c3)])
            );
            row.alloc_mem = 0;
            assert_eq!(
                balanced_guarded(&row, [req, r2, 0], false),
                score::balanced_allocation(&[ru(req, cap), ru(r2, 0)])
            );
            assert_eq!(
                balanced_cpu_mem_gpu([req, r2, r3], [cap, c2, c3]),
                score::balanced_allocation(&[ru(req, cap), ru(r2, c2), ru(r3, c3)])
            );
        }
    }
}
