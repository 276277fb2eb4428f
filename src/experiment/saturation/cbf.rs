//! Plimsoll's saturation policy CBF, "CPU-backed fragmentation", registered as `cbf`.
//!
//! FGD measures how much free GPU the *next* typical pod could not use. In the
//! saturation experiment the binding loss is different: CPU runs out before GPUs on the
//! CPU-poor node types (8-GPU nodes with 12 cores per GPU, 16-core P100 pairs) while T4
//! nodes keep 50 cores per GPU, and free GPU on a node whose CPU is gone is lost for
//! good. CBF scores a placement by the increase of
//!
//! `cost(node) = F(node) + w · max(0, G(node) − C(node)/ρ)`
//!
//! where `F` is FGD's fragment ([`node_frag`]) over the GPU typical pods of
//! [`typical_pods`] (CPU-only typical pods add the same amount to every node and are left
//! out), `G` the node's free GPU milli, `C` its free CPU and `ρ` the workload's CPU per
//! GPU milli (total CPU over total GPU milli of the original GPU pods). The second term is
//! the free GPU that the expected future pods could not back with CPU ("stranded").
//!
//! A pod goes to the node and devices with the smallest cost increase (a share tries
//! every distinct free amount; other pods take the first devices with room in
//! ascending-free order). The score is the negated increase in 1/1000 milli, rounded,
//! and equal scores are broken by the run's [`Ties`], so the policy is seed-dependent
//! exactly as the others. It never refuses a pod that fits ([`State::fits`]).

use super::fgd::{memo_len, node_frag, typical_pods, Typical, COVERAGE};
use super::{
    Choice, NodeIdx, PodSpec, PolicyRun, RunContext, SaturationError, SaturationPolicy, State, Ties,
};

/// Parameters of [`Cbf`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CbfParams {
    /// Weight `w` of the stranded-GPU term (0 gives FGD's fragment alone).
    pub strand_weight: f64,
    /// Multiplier on the learnt CPU per GPU milli `ρ`.
    pub rho_scale: f64,
    /// Share of the original pods the typical shapes cover (FGD's [`COVERAGE`]).
    pub coverage: f64,
}

impl Default for CbfParams {
    fn default() -> Self {
        CbfParams {
            strand_weight: 1.0,
            rho_scale: 1.0,
            coverage: COVERAGE,
        }
    }
}

/// The CPU-backed fragmentation policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cbf {
    /// Its parameters.
    pub params: CbfParams,
}

/// Per-run state of [`Cbf`]: the GPU typical pods, `ρ`, each node's cost before the
/// placement and, per node and pod shape, the score and share device, cached until the
/// node changes.
struct CbfRun {
    typical: Vec<Typical>,
    rho: f64,
    weight: f64,
    shapes: usize,
    before: Vec<(u32, f64)>,
    memo: Vec<(u32, i64, u32)>,
    scratch: Vec<u32>,
}

impl SaturationPolicy for Cbf {
    fn name(&self) -> String {
        "cbf".into()
    }

    fn start<'a>(
        &'a self,
        ctx: &RunContext<'a>,
    ) -> Result<Box<dyn PolicyRun + 'a>, SaturationError> {
        let w = ctx.workload;
        let originals = w.original_specs();
        let typical: Vec<Typical> = typical_pods(&originals, self.params.coverage)
            .into_iter()
            .filter(|t| t.milli > 0)
            .collect();
        let (cpu, gpu) = originals
            .iter()
            .filter(|p| p.count > 0 && p.milli > 0)
            .fold((0u64, 0u64), |(c, g), p| (c + p.cpu, g + p.gpu_total()));
        let rho = if gpu == 0 {
            1.0
        } else {
            cpu as f64 / gpu as f64
        } * self.params.rho_scale;
        if !(rho.is_finite() && rho > 0.0) {
            return Err(SaturationError::Input(format!(
                "cbf: CPU per GPU milli must be positive, got {rho}"
            )));
        }
        let n = ctx.nodes.len();
        let shapes = w.shapes as usize;
        let memo_len = memo_len(n, shapes);
        Ok(Box::new(CbfRun {
            typical,
            rho,
            weight: self.params.strand_weight,
            shapes,
            before: vec![(0, 0.0); n],
            memo: vec![(0, 0, 0); memo_len],
            scratch: Vec::new(),
        }))
    }
}

/// CBF's cost of a node with free CPU `cpu`, device free milli `devs` and GPU model
/// `model`: `F + w · max(0, G − cpu/ρ)` (see the module docs).
pub fn node_cost(
    typical: &[Typical],
    rho: f64,
    weight: f64,
    cpu: u64,
    devs: &[u32],
    model: Option<u8>,
) -> f64 {
    let g: u64 = devs.iter().map(|&d| u64::from(d)).sum();
    let strand = (g as f64 - cpu as f64 / rho).max(0.0);
    node_frag(typical, cpu, devs, model) + weight * strand
}

impl CbfRun {
    fn cost(&self, cpu: u64, devs: &[u32], model: Option<u8>) -> f64 {
        node_cost(&self.typical, self.rho, self.weight, cpu, devs, model)
    }

    /// The devices a non-share `pod` takes on devices `devs`: the first ones with room in
    /// ascending-free order (lowest index on equal free milli).
    fn exclusive(devs: &[u32], pod: &PodSpec) -> Vec<u32> {
        if pod.count == 0 {
            return Vec::new();
        }
        let mut order: Vec<usize> = (0..devs.len()).collect();
        order.sort_by_key(|&i| devs[i]);
        order
            .into_iter()
            .filter(|&i| devs[i] >= pod.milli)
            .take(pod.count as usize)
            .map(|i| i as u32)
            .collect()
    }

    /// The score (negated cost increase in 1/1000 milli) of the best device choice for
    /// `pod` on the fitting node `n`, and the device a share takes (`u32::MAX` for other
    /// pods).
    fn score(&mut self, state: &State, n: NodeIdx, pod: &PodSpec) -> (i64, u32) {
        let stamp = state.version(n).wrapping_add(1);
        let slot = n * self.shapes + pod.shape as usize;
        if let Some(&(s, sc, dev)) = self.memo.get(slot) {
            if s == stamp {
                return (sc, dev);
            }
        }
        let devs = state.devices(n);
        let model = state.model(n);
        if self.before[n].0 != stamp {
            self.before[n] = (stamp, self.cost(state.cpu_free(n), devs, model));
        }
        let before = self.before[n].1;
        let cpu = state.cpu_free(n) - pod.cpu;
        let mut g = std::mem::take(&mut self.scratch);
        g.clear();
        g.extend_from_slice(devs);
        let (delta, dev) = if pod.is_share() {
            let mut best: Option<(f64, u32)> = None;
            for i in 0..devs.len() {
                if devs[i] < pod.milli || devs[..i].contains(&devs[i]) {
                    continue;
                }
                g[i] -= pod.milli;
                let d = self.cost(cpu, &g, model) - before;
                g[i] += pod.milli;
                if best.is_none_or(|(b, _)| d < b) {
                    best = Some((d, i as u32));
                }
            }
            best.unwrap_or((0.0, u32::MAX))
        } else {
            for i in Self::exclusive(devs, pod) {
                g[i as usize] -= pod.milli;
            }
            (self.cost(cpu, &g, model) - before, u32::MAX)
        };
        self.scratch = g;
        let result = (-(delta * 1000.0).round() as i64, dev);
        if let Some(m) = self.memo.get_mut(slot) {
            *m = (stamp, result.0, result.1);
        }
        result
    }
}

impl PolicyRun for CbfRun {
    fn select(
        &mut self,
        state: &State,
        pod: &PodSpec,
        _arrival: usize,
        ties: &mut Ties,
    ) -> Result<Option<Choice>, SaturationError> {
        Ok(ties.select_scored(state, pod, |n| self.score(state, n, pod), Self::exclusive))
    }
}
