//! Plimsoll's online policy for the saturation experiment: "CPU-backed fragmentation"
//! (CBF).
//!
//! FGD measures how much free GPU the *next* typical pod could not use. In the
//! saturation experiment the binding loss is different: CPU runs out before GPUs on the
//! CPU-poor node types (8-GPU nodes with 12 cores per GPU, 16-core P100 pairs) while
//! T4 nodes keep 50 cores per GPU. Free GPU on a node whose CPU is gone is lost for
//! good. CBF therefore scores a placement by the change of
//!
//! `cost(node) = F(node) + w · max(0, G(node) − C(node)/ρ)`
//!
//! where `F` is FGD's fragment over the GPU typical pods (CPU-only typical pods add the
//! same amount to every node and are left out), `G` the node's free GPU milli, `C` its
//! free CPU and `ρ` the workload's CPU per GPU milli (learnt from the original pod list:
//! total CPU over total GPU milli of its GPU pods). The second term is the free GPU that
//! the expected future pods could not back with CPU ("stranded"). A pod goes to the node
//! and devices with the smallest cost increase; CPU-heavy pods thus go to CPU-rich nodes,
//! CPU-light pods to CPU-poor ones, and CPU-only pods to nodes whose CPU no GPU needs.
//! Ties go to the lowest node index (the policy is deterministic). It never refuses a
//! pod that fits.

use super::fgd::{exclusive_devices, frag, typical_pods, Typical};
use super::sim::{Choice, NodeState, OnlinePolicy, PodSpec, Workload};
use rand_chacha::ChaCha8Rng;

/// Parameters of [`Cbf`].
#[derive(Debug, Clone, PartialEq)]
pub struct CbfParams {
    /// Weight of the stranded-GPU term.
    pub strand_weight: f64,
    /// Multiplier on the learnt CPU per GPU milli.
    pub rho_scale: f64,
    /// Measure stranding against every typical GPU pod's own CPU per GPU milli (weighted
    /// by its GPU share) instead of the single workload average.
    pub per_shape: bool,
    /// Percent of the original pods the typical shapes cover (FGD uses 95).
    pub cover_pct: u64,
}

impl Default for CbfParams {
    fn default() -> Self {
        CbfParams {
            strand_weight: 1.0,
            rho_scale: 1.0,
            cover_pct: 95,
            per_shape: false,
        }
    }
}

/// The CPU-backed fragmentation policy.
#[derive(Debug, Clone)]
pub struct Cbf {
    typical: Vec<Typical>,
    rho: f64,
    /// (GPU-share weight, CPU per GPU milli) of each typical GPU shape.
    shapes: Vec<(f64, f64)>,
    params: CbfParams,
}

impl Cbf {
    /// Learns the typical pods and ρ from the original pod list.
    pub fn new(originals: &[PodSpec], params: CbfParams) -> Self {
        let typical: Vec<Typical> = typical_pods(originals, params.cover_pct)
            .into_iter()
            .filter(|t| t.pod.num_gpu > 0)
            .collect();
        let (cpu, gpu) = originals
            .iter()
            .filter(|p| p.num_gpu > 0)
            .fold((0u64, 0u64), |(c, g), p| (c + p.cpu, g + p.total_milli()));
        let rho = if gpu == 0 {
            1.0
        } else {
            cpu as f64 / gpu as f64
        } * params.rho_scale;
        let mass: f64 = typical
            .iter()
            .map(|t| t.freq * t.pod.total_milli() as f64)
            .sum();
        let shapes = typical
            .iter()
            .map(|t| {
                let g = t.pod.total_milli() as f64;
                (t.freq * g / mass, t.pod.cpu as f64 / g * params.rho_scale)
            })
            .collect();
        Cbf {
            typical,
            rho,
            shapes,
            params,
        }
    }

    fn cost(&self, cpu: u64, model: usize, gpus: &[u32]) -> f64 {
        let g: u32 = gpus.iter().sum();
        let g = f64::from(g);
        let strand = if self.params.per_shape {
            self.shapes
                .iter()
                .map(|&(w, r)| w * (g - cpu as f64 / r).max(0.0))
                .sum()
        } else {
            (g - cpu as f64 / self.rho).max(0.0)
        };
        frag(cpu, model, gpus, &self.typical) + self.params.strand_weight * strand
    }

    /// Cost increase of the best device choice for `pod` on `n`.
    pub fn best_on(&self, n: &NodeState, pod: &PodSpec) -> (f64, Vec<usize>) {
        let before = self.cost(n.cpu, n.model, &n.gpus);
        let cpu = n.cpu - pod.cpu;
        let mut g = n.gpus.clone();
        if pod.is_sharing() {
            let mut best: Option<(f64, usize)> = None;
            for i in 0..g.len() {
                if n.gpus[i] < pod.milli || n.gpus[..i].contains(&n.gpus[i]) {
                    continue;
                }
                g[i] -= pod.milli;
                let d = self.cost(cpu, n.model, &g) - before;
                g[i] += pod.milli;
                if best.is_none_or(|(b, _)| d < b) {
                    best = Some((d, i));
                }
            }
            let (d, i) = best.unwrap_or((0.0, 0));
            (d, vec![i])
        } else {
            let devs = exclusive_devices(n, pod);
            for &d in &devs {
                g[d] -= pod.milli;
            }
            (self.cost(cpu, n.model, &g) - before, devs)
        }
    }
}

impl OnlinePolicy for Cbf {
    fn name(&self) -> &str {
        "CBF"
    }
    fn place(
        &mut self,
        nodes: &[NodeState],
        pod: &PodSpec,
        _rng: &mut ChaCha8Rng,
    ) -> Option<Choice> {
        let mut best: Option<(f64, usize, Vec<usize>)> = None;
        for (i, n) in nodes.iter().enumerate() {
            if !n.fits(pod) {
                continue;
            }
            let (d, devs) = self.best_on(n, pod);
            if best.as_ref().is_none_or(|(b, _, _)| d < *b - 1e-9) {
                best = Some((d, i, devs));
            }
        }
        best.map(|(_, node, devices)| Choice { node, devices })
    }
}

/// Builds a policy by name: `cbf`, or `cbf:W:S:C` with the strand weight `W`, the ρ
/// multiplier `S` and the typical cover `C` %.
pub fn by_name(name: &str, w: &Workload) -> Option<Box<dyn OnlinePolicy>> {
    let mut parts = name.split(':');
    match parts.next()? {
        kind @ ("cbf" | "cbfm") => {
            let mut p = CbfParams {
                per_shape: kind == "cbfm",
                ..CbfParams::default()
            };
            if let Some(x) = parts.next() {
                p.strand_weight = x.parse().ok()?;
            }
            if let Some(x) = parts.next() {
                p.rho_scale = x.parse().ok()?;
            }
            if let Some(x) = parts.next() {
                p.cover_pct = x.parse().ok()?;
            }
            Some(Box::new(Cbf::new(&w.pods, p)))
        }
        _ => None,
    }
}
