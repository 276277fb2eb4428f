//! The arrival sequence of a saturation run: the original pods sorted by name and
//! shuffled with the seed, then uniformly drawn copies until the arrived GPU demand would
//! pass `tune` × the cluster's GPU milli (the paper's `tuneUpPods`, per-GPU-milli quirk
//! included).

use super::SaturationError;
use crate::model::{GpuAmount, Node, Pod};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// A pod as the saturation harness sees it: requests in plain numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSpec {
    /// Index of the pod in [`Workload::originals`] (copies point at their original).
    pub original: usize,
    /// CPU request, milli-cores.
    pub cpu: u64,
    /// Memory request, bytes.
    pub mem: u64,
    /// GPU milli asked of each device: 1..=999 for a share, 1000 for whole devices, 0 for
    /// a CPU-only pod.
    pub milli: u32,
    /// Number of GPU devices (0 for a CPU-only pod, 1 for a share).
    pub count: u32,
    /// Bit `i` set if the pod accepts the GPU model with id `i` ([`super::State::model`]);
    /// `u64::MAX` when any model will do.
    pub models: u64,
    /// Id of the pod's distinct (cpu, milli, count, models) shape, dense from 0: lets a
    /// policy cache per-node results per shape.
    pub shape: u32,
}

impl PodSpec {
    /// Total GPU milli the pod takes (`milli × count`).
    pub fn gpu_total(&self) -> u64 {
        u64::from(self.milli) * u64::from(self.count)
    }

    /// True for a share of one device (milli below 1000).
    pub fn is_share(&self) -> bool {
        self.count == 1 && self.milli < 1000
    }
}

/// The pods of one seeded saturation run, in arrival order.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The original pods sorted by name (stable); copies are drawn from this list.
    pub originals: Vec<Pod>,
    /// The arrival sequence.
    pub arrivals: Vec<PodSpec>,
    /// How many of the arrivals are the shuffled originals (the rest are copies).
    pub shuffled: usize,
    /// The seed.
    pub seed: u64,
    /// The tune ratio.
    pub tune: f64,
    /// Number of distinct shapes (max [`PodSpec::shape`] + 1).
    pub shapes: u32,
    /// GPU model names, indexed by model id (sorted).
    pub models: Vec<String>,
}

/// Sorted distinct GPU model names of `nodes`.
pub fn model_names(nodes: &[Node]) -> Vec<String> {
    let mut m: Vec<String> = nodes
        .iter()
        .filter_map(|n| n.gpu_model().map(str::to_string))
        .collect();
    m.sort();
    m.dedup();
    m
}

fn spec_of(
    i: usize,
    pod: &Pod,
    models: &[String],
    shapes: &mut HashMap<(u64, u32, u32, u64), u32>,
) -> Result<PodSpec, SaturationError> {
    let (milli, count) = match pod.gpu.amount {
        GpuAmount::None => (0, 0),
        GpuAmount::Shared(m) => (m.min(1000), 1),
        GpuAmount::Whole(n) => (1000, n),
    };
    let mask = if pod.gpu.models.is_empty() {
        u64::MAX
    } else {
        let mut mask = 0u64;
        for (id, name) in models.iter().enumerate() {
            if pod.gpu.accepts_model(name) {
                mask |= 1 << id;
            }
        }
        mask
    };
    let cpu = pod.requests.cpu_milli;
    let next = shapes.len() as u32;
    let shape = *shapes.entry((cpu, milli, count, mask)).or_insert(next);
    Ok(PodSpec {
        original: i,
        cpu,
        mem: pod.requests.memory_bytes,
        milli,
        count,
        models: mask,
        shape,
    })
}

/// The largest `tune` accepted: ten times the cluster's GPU capacity (the paper uses
/// 1.3). Larger ratios would append copies until memory runs out (1e9 took 24 GB).
pub const MAX_TUNE: f64 = 10.0;

impl Workload {
    /// The specs of the original pods in name order (the shuffled part of the arrival
    /// sequence, sorted back): what FGD-style policies learn their typical pods from.
    pub fn original_specs(&self) -> Vec<PodSpec> {
        let mut originals: Vec<PodSpec> = self.arrivals[..self.shuffled].to_vec();
        originals.sort_by_key(|s| s.original);
        originals
    }

    /// Builds the arrival sequence for `seed`: `pods` sorted by name, shuffled with a
    /// [`ChaCha8Rng`] seeded with `seed`, then copies drawn uniformly with replacement
    /// (same RNG stream) and appended while the arrived GPU milli plus the drawn copy's
    /// *per-GPU* milli stays within `tune × 1000 × GPUs of nodes` (the first draw that
    /// would pass stops it and is not added). `tune <= 0` or originals already past the
    /// limit add no copies, and so does a workload without GPU pods (the paper's tune-down is not implemented).
    pub fn build(
        nodes: &[Node],
        pods: &[Pod],
        seed: u64,
        tune: f64,
    ) -> Result<Workload, SaturationError> {
        if !(tune.is_finite() && (0.0..=MAX_TUNE).contains(&tune)) {
            return Err(SaturationError::Input(format!(
                "tune {tune} is outside 0..={MAX_TUNE} (the ratio of arrived GPU demand to the cluster's GPU capacity)"
            )));
        }
        if pods.len() > u32::MAX as usize {
            return Err(SaturationError::Input("too many pods".into()));
        }
        let models = model_names(nodes);
        if models.len() > 64 {
            return Err(SaturationError::Input(format!(
                "{} GPU models; at most 64 are supported",
                models.len()
            )));
        }
        let mut originals = pods.to_vec();
        originals.sort_by(|a, b| a.name.cmp(&b.name));
        let mut shapes = HashMap::new();
        let specs: Vec<PodSpec> = originals
            .iter()
            .enumerate()
            .map(|(i, p)| spec_of(i, p, &models, &mut shapes))
            .collect::<Result<_, _>>()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut arrivals = specs.clone();
        arrivals.shuffle(&mut rng);
        let shuffled = arrivals.len();
        let cluster_milli: u64 = nodes.iter().map(|n| u64::from(n.gpu_count()) * 1000).sum();
        let limit = tune * cluster_milli as f64;
        let mut total: u64 = specs.iter().map(PodSpec::gpu_total).sum();
        let any_gpu = specs.iter().any(|s| s.milli > 0);
        if tune > 0.0 && any_gpu && (total as f64) < limit {
            loop {
                let idx = rng.gen_range(0..specs.len());
                let s = &specs[idx];
                if (total + u64::from(s.milli)) as f64 > limit {
                    break;
                }
                total += s.gpu_total();
                arrivals.push(s.clone());
            }
        }
        Ok(Workload {
            originals,
            arrivals,
            shuffled,
            seed,
            tune,
            shapes: shapes.len() as u32,
            models,
        })
    }

    /// A workload that arrives exactly in the order of `pods` (no sorting, shuffling or
    /// copies): for hand-made scenarios. `seed` only feeds the policies' tie-breaks.
    pub fn fixed(nodes: &[Node], pods: &[Pod], seed: u64) -> Result<Workload, SaturationError> {
        let models = model_names(nodes);
        let mut shapes = HashMap::new();
        let arrivals: Vec<PodSpec> = pods
            .iter()
            .enumerate()
            .map(|(i, p)| spec_of(i, p, &models, &mut shapes))
            .collect::<Result<_, _>>()?;
        Ok(Workload {
            originals: pods.to_vec(),
            shuffled: arrivals.len(),
            arrivals,
            seed,
            tune: 0.0,
            shapes: shapes.len() as u32,
            models,
        })
    }

    /// The model pod of arrival `i`: the original, renamed `NAME-tuned-K` for the K-th copy.
    pub fn pod(&self, i: usize) -> Pod {
        let spec = &self.arrivals[i];
        let mut p = self.originals[spec.original].clone();
        if i >= self.shuffled {
            p.name = format!("{}-tuned-{}", p.name, i - self.shuffled);
        }
        p
    }
}
