//! The FGD paper's baselines as its simulator codes them (`pkg/simulator/plugin/*.go`):
//! integer scores in 0..=100, one score plugin at weight 1000, no normalisation except
//! BestFit's min–max (monotone and injective here, since raw scores span ≤ 100, so it
//! never changes the winner and is left out). Device choice: Random picks a random
//! device with room for a share; the others take the tightest device with room (lowest
//! index on ties); whole GPUs are the lowest-index fully free devices. FGD is in
//! [`super::fgd`].

use super::{
    Choice, NodeIdx, PodSpec, PolicyRun, RunContext, SaturationError, SaturationPolicy, State, Ties,
};
use rand::Rng;

/// `MaxSpecCpu` of the paper's simulator (milli-cores).
pub const MAX_SPEC_CPU: f64 = 128_000.0;
/// `MaxSpecGpu` of the paper's simulator (milli-GPU).
pub const MAX_SPEC_GPU: f64 = 8_000.0;

/// Which baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// `random`: a uniformly random feasible node.
    Random,
    /// `dot-product`: DotProd, dimExt merge, norm max.
    DotProduct,
    /// `gpu-clustering`: GpuClustering.
    GpuClustering,
    /// `gpu-packing`: GpuPacking.
    GpuPacking,
    /// `best-fit`: BestFit.
    BestFit,
}

impl Baseline {
    /// The CLI name.
    pub fn name(&self) -> &'static str {
        match self {
            Baseline::Random => "random",
            Baseline::DotProduct => "dot-product",
            Baseline::GpuClustering => "gpu-clustering",
            Baseline::GpuPacking => "gpu-packing",
            Baseline::BestFit => "best-fit",
        }
    }
}

/// A paper baseline as a [`SaturationPolicy`].
#[derive(Debug, Clone, Copy)]
pub struct PaperPolicy(pub Baseline);

impl SaturationPolicy for PaperPolicy {
    fn name(&self) -> String {
        self.0.name().to_string()
    }

    fn start<'a>(
        &'a self,
        _ctx: &RunContext<'a>,
    ) -> Result<Box<dyn PolicyRun + 'a>, SaturationError> {
        Ok(Box::new(*self))
    }
}

/// The simulator's `best` device rule: a share takes the device with the least free
/// milli that fits (lowest index on ties); otherwise the lowest-index devices with room
/// (for whole GPUs: fully free ones).
pub fn best_devices(devs: &[u32], pod: &PodSpec) -> Vec<u32> {
    if pod.count == 0 {
        return Vec::new();
    }
    if pod.is_share() {
        let mut best: Option<usize> = None;
        for (i, &d) in devs.iter().enumerate() {
            if d >= pod.milli && best.is_none_or(|b| d < devs[b]) {
                best = Some(i);
            }
        }
        return best.map(|b| vec![b as u32]).unwrap_or_default();
    }
    devs.iter()
        .enumerate()
        .filter(|(_, &d)| d >= pod.milli)
        .map(|(i, _)| i as u32)
        .take(pod.count as usize)
        .collect()
}

/// DotProd's score (`dot_product_score.go`, merge + max).
pub fn dot_product_score(state: &State, n: NodeIdx, pod: &PodSpec) -> i64 {
    let node = [
        state.cpu_free(n) as f64 / MAX_SPEC_CPU,
        state.gpu_free_total(n) as f64 / MAX_SPEC_GPU,
    ];
    let req = [
        pod.cpu as f64 / MAX_SPEC_CPU,
        pod.gpu_total() as f64 / MAX_SPEC_GPU,
    ];
    let mut s = 0.0;
    for i in 0..2 {
        s += node[i] * req[i];
    }
    s /= 2.0;
    s = 1.0 - s;
    (100.0 * s) as i64
}

/// GpuClustering's score (`gpu_clustering_score.go`); 0 for CPU-only pods.
pub fn gpu_clustering_score(state: &State, n: NodeIdx, pod: &PodSpec) -> i64 {
    if pod.count == 0 {
        return 0;
    }
    let class = if pod.is_share() { 0 } else { pod.count };
    let left = state.gpu_free_total(n) as i64;
    let base = 100 / 4 * (8000 - left) / 8000;
    let classes = state.gpu_classes(n);
    if classes.iter().any(|&(c, k)| c == class && k > 0) {
        if classes.len() == 1 {
            base + 100 * 3 / 4
        } else {
            base + 100 * 2 / 4
        }
    } else if classes.is_empty() {
        base + 100 / 4
    } else {
        base
    }
}

/// GpuPacking's score (`gpu_packing_score.go`); 0 for CPU-only pods.
pub fn gpu_packing_score(state: &State, n: NodeIdx, pod: &PodSpec) -> i64 {
    if pod.milli == 0 {
        return 0;
    }
    let devs = state.devices(n);
    let fully_free = devs.iter().filter(|&&d| d == 1000).count() as i64;
    if fully_free == devs.len() as i64 {
        return (100 / 3 - fully_free).max(fully_free);
    }
    let mut order: Vec<usize> = (0..devs.len()).collect();
    order.sort_by_key(|&i| devs[i]); // stable: ascending free, index order on ties
    let mut req = pod.count;
    let mut used_free = 0i64;
    let mut ratio = 0i64;
    for i in order {
        if req == 0 {
            break;
        }
        if pod.milli <= devs[i] {
            req -= 1;
            if devs[i] == 1000 {
                used_free += 1;
            }
            ratio += i64::from(devs[i]) * 100 / 1000;
        }
    }
    if used_free > 0 {
        return (100 / 2 - used_free).max(100 / 3);
    }
    (100 - ratio / 10).max(100 / 2)
}

/// BestFit's score before its min–max normalisation (`best_fit_score.go`).
pub fn best_fit_score(state: &State, n: NodeIdx, pod: &PodSpec) -> i64 {
    let free = [state.cpu_free(n) as f64, state.gpu_free_total(n) as f64];
    let req = [pod.cpu as f64, pod.gpu_total() as f64];
    let max = [MAX_SPEC_CPU, MAX_SPEC_GPU];
    let mut s = 0.0;
    for i in 0..2 {
        s += (free[i] - req[i]) / max[i] * 0.5;
    }
    ((1.0 - s) * 100.0) as i64
}

impl PolicyRun for PaperPolicy {
    fn select(
        &mut self,
        state: &State,
        pod: &PodSpec,
        _arrival: usize,
        ties: &mut Ties,
    ) -> Result<Option<Choice>, SaturationError> {
        if self.0 == Baseline::Random {
            return Ok(random_select(state, pod, ties));
        }
        let score = match self.0 {
            Baseline::DotProduct => dot_product_score,
            Baseline::GpuClustering => gpu_clustering_score,
            Baseline::GpuPacking => gpu_packing_score,
            _ => best_fit_score,
        };
        let mut best = ties.best::<()>();
        for n in 0..state.len() {
            if state.fits(n, pod) {
                best.offer(n, score(state, n, pod), ());
            }
        }
        Ok(best.finish().map(|(n, _, ())| Choice {
            node: n,
            devices: best_devices(state.devices(n), pod),
        }))
    }
}

/// Random: a uniform feasible node (the RandomScore PreScore draw), a share on a uniform
/// device with room (fully free ones included), whole GPUs on the lowest-index free ones.
fn random_select(state: &State, pod: &PodSpec, ties: &mut Ties) -> Option<Choice> {
    let feasible: Vec<NodeIdx> = (0..state.len()).filter(|&n| state.fits(n, pod)).collect();
    if feasible.is_empty() {
        return None;
    }
    let n = feasible[ties.rng.gen_range(0..feasible.len())];
    let devs = state.devices(n);
    let devices = if pod.is_share() {
        let mut pick = None;
        let mut seen = 0u32;
        for (i, &d) in devs.iter().enumerate() {
            if d >= pod.milli {
                seen += 1;
                if ties.rng.gen_range(0..seen) == 0 {
                    pick = Some(i as u32);
                }
            }
        }
        pick.into_iter().collect()
    } else {
        best_devices(devs, pod)
    };
    Some(Choice { node: n, devices })
}
