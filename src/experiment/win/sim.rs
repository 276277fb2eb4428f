//! Cluster state, workload and metric of the saturation experiment, in a compact form
//! (integers only, one `Vec` of devices per node) so that ten seeds × several pod lists
//! replay in seconds.

use crate::datasets::openb::{self, DatasetError};
use crate::model::GpuAmount;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// Milli-GPU of one device.
pub const MILLI: u32 = 1000;

/// One pod's request, as the simulator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodSpec {
    /// CPU request in milli-cores.
    pub cpu: u64,
    /// Memory request in MiB.
    pub mem: u64,
    /// Number of devices (0 for a CPU-only pod).
    pub num_gpu: u32,
    /// Milli-GPU per device (1..=1000; 0 for a CPU-only pod).
    pub milli: u32,
    /// Bit set of acceptable GPU models (indices into [`Cluster::models`]); all ones = any.
    pub models: u64,
}

impl PodSpec {
    /// Total milli-GPU the pod takes.
    pub fn total_milli(&self) -> u64 {
        u64::from(self.num_gpu) * u64::from(self.milli)
    }
    /// True for a pod that shares one device.
    pub fn is_sharing(&self) -> bool {
        self.num_gpu == 1 && self.milli < MILLI
    }
}

/// Free resources of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    /// Free CPU, milli-cores.
    pub cpu: u64,
    /// Free memory, MiB.
    pub mem: u64,
    /// Free milli-GPU per device.
    pub gpus: Vec<u32>,
    /// GPU model index into [`Cluster::models`].
    pub model: usize,
    /// Node type index into [`Cluster::types`].
    pub kind: usize,
}

impl NodeState {
    /// Free milli-GPU summed over the devices.
    pub fn gpu_left(&self) -> u64 {
        self.gpus.iter().map(|&g| u64::from(g)).sum()
    }
    /// Devices with nothing allocated.
    pub fn full_free(&self) -> usize {
        self.gpus.iter().filter(|&&g| g == MILLI).count()
    }
    /// Whether `pod` fits (CPU, memory, model and devices).
    pub fn fits(&self, pod: &PodSpec) -> bool {
        if self.cpu < pod.cpu || self.mem < pod.mem {
            return false;
        }
        if pod.num_gpu == 0 {
            return true;
        }
        if pod.models & (1 << self.model) == 0 {
            return false;
        }
        let roomy = self.gpus.iter().filter(|&&g| g >= pod.milli).count();
        roomy >= pod.num_gpu as usize
    }
}

/// A node type: identical capacity and model.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeType {
    /// CPU capacity, milli-cores.
    pub cpu: u64,
    /// Memory capacity, MiB.
    pub mem: u64,
    /// Devices.
    pub gpus: u32,
    /// GPU model index.
    pub model: usize,
}

/// The initial cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Node states with everything free, in file order.
    pub nodes: Vec<NodeState>,
    /// GPU model names; a pod's bit `i` stands for `models[i]`.
    pub models: Vec<String>,
    /// Distinct node types, sorted.
    pub types: Vec<NodeType>,
}

impl Cluster {
    /// Total milli-GPU capacity.
    pub fn gpu_milli(&self) -> u64 {
        self.nodes.iter().map(|n| n.gpu_left()).sum()
    }
}

/// A pod list and the cluster it runs on.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Cluster at time zero.
    pub cluster: Cluster,
    /// The original pods in name order (as the simulator sorts them).
    pub pods: Vec<PodSpec>,
}

const MIB: u64 = 1 << 20;

/// Loads a node list and a pod list. Models named by pods but absent from the cluster
/// simply never match.
pub fn load(nodes: &Path, pods: &Path) -> Result<Workload, DatasetError> {
    let raw_nodes = openb::load_nodes(nodes)?;
    let mut models: Vec<String> = raw_nodes
        .iter()
        .filter_map(|n| n.gpus.as_ref().map(|g| g.model.clone()))
        .collect();
    models.sort();
    models.dedup();
    let mut states = Vec::new();
    let mut types = Vec::new();
    for n in &raw_nodes {
        let Some(g) = &n.gpus else { continue };
        let model = models.binary_search(&g.model).unwrap_or(0);
        let t = NodeType {
            cpu: n.allocatable.cpu_milli,
            mem: n.allocatable.memory_bytes / MIB,
            gpus: g.count,
            model,
        };
        types.push(t.clone());
        states.push((t, model));
    }
    types.sort();
    types.dedup();
    let nodes = states
        .into_iter()
        .map(|(t, model)| NodeState {
            cpu: t.cpu,
            mem: t.mem,
            gpus: vec![MILLI; t.gpus as usize],
            model,
            kind: types.binary_search(&t).unwrap_or(0),
        })
        .collect();
    let mut recs = openb::load_pods(pods)?;
    recs.sort_by(|a, b| a.name.cmp(&b.name));
    let pods = recs
        .iter()
        .map(|p| {
            let (num_gpu, milli) = match p.gpu.amount {
                GpuAmount::None => (0, 0),
                GpuAmount::Shared(m) => (1, m),
                GpuAmount::Whole(n) => (n, MILLI),
            };
            let mask = if p.gpu.models.is_empty() {
                u64::MAX
            } else {
                p.gpu
                    .models
                    .iter()
                    .filter_map(|m| models.binary_search(m).ok())
                    .fold(0u64, |acc, i| acc | (1 << i))
            };
            PodSpec {
                cpu: p.requests.cpu_milli,
                mem: p.requests.memory_bytes / MIB,
                num_gpu: if milli == 0 { 0 } else { num_gpu },
                milli,
                models: mask,
            }
        })
        .collect();
    Ok(Workload {
        cluster: Cluster {
            nodes,
            models,
            types,
        },
        pods,
    })
}

/// The arrival sequence for one seed: the originals shuffled, then copies drawn uniformly
/// with replacement while `arrived + per-device milli ≤ ratio × capacity` (the simulator's
/// stop test, which uses the per-device milli).
pub fn arrivals(w: &Workload, ratio: f64, seed: u64) -> Vec<PodSpec> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut seq = w.pods.clone();
    seq.shuffle(&mut rng);
    let cap = ratio * w.cluster.gpu_milli() as f64;
    let mut total: u64 = seq.iter().map(PodSpec::total_milli).sum();
    if w.pods.is_empty() || total as f64 > cap {
        return seq;
    }
    loop {
        let p = &w.pods[rng.gen_range(0..w.pods.len())];
        if (total + u64::from(p.milli)) as f64 > cap {
            break;
        }
        total += p.total_milli();
        seq.push(p.clone());
    }
    seq
}

/// Where a pod goes: a node and the devices it takes (one device for a sharing pod).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Node index.
    pub node: usize,
    /// Device indices on that node.
    pub devices: Vec<usize>,
}

/// Everything a policy may look at: the current state. No future pods.
pub trait OnlinePolicy {
    /// Short name for tables.
    fn name(&self) -> &str;
    /// Picks a feasible node and devices for `pod`, or `None` if it fits nowhere.
    fn place(&mut self, nodes: &[NodeState], pod: &PodSpec, rng: &mut ChaCha8Rng)
        -> Option<Choice>;
    /// Called after the choice has been applied.
    fn placed(&mut self, _nodes: &[NodeState], _pod: &PodSpec, _choice: &Choice) {}
}

/// Why a choice was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The choice breaks a capacity, model or device rule.
    #[error("pod {index}: invalid choice {choice:?}: {why}")]
    Invalid {
        /// Arrival index.
        index: usize,
        /// The rejected choice.
        choice: Choice,
        /// Which rule.
        why: &'static str,
    },
    /// The policy dropped a pod that fits somewhere.
    #[error("pod {index} fits but the policy dropped it")]
    Refused {
        /// Arrival index.
        index: usize,
    },
}

/// Applies a choice after checking every rule (so no policy can break capacity).
pub fn apply(n: &mut NodeState, pod: &PodSpec, devices: &[usize]) -> Result<(), &'static str> {
    if n.cpu < pod.cpu {
        return Err("cpu");
    }
    if n.mem < pod.mem {
        return Err("memory");
    }
    if pod.num_gpu > 0 && pod.models & (1 << n.model) == 0 {
        return Err("gpu model");
    }
    if devices.len() != pod.num_gpu as usize {
        return Err("device count");
    }
    for (i, &d) in devices.iter().enumerate() {
        if d >= n.gpus.len() || devices[..i].contains(&d) {
            return Err("device index");
        }
        if n.gpus[d] < pod.milli {
            return Err("device room");
        }
    }
    n.cpu -= pod.cpu;
    n.mem -= pod.mem;
    for &d in devices {
        n.gpus[d] -= pod.milli;
    }
    Ok(())
}

/// Result of one replay.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// Mean allocated GPU % over the events whose arrived % rounds to the target.
    pub alloc_at_target: f64,
    /// Allocated GPU % after the last event.
    pub alloc_final: f64,
    /// Pods dropped.
    pub dropped: usize,
    /// Final node states.
    pub nodes: Vec<NodeState>,
}

/// Replays `seq` with `policy`, checking every choice and that no fitting pod is dropped.
/// `target` is the arrived % whose bucket is reported (130 in the paper).
pub fn run(
    cluster: &Cluster,
    seq: &[PodSpec],
    policy: &mut dyn OnlinePolicy,
    seed: u64,
    target: u32,
) -> Result<RunResult, SimError> {
    let mut nodes = cluster.nodes.clone();
    let total = cluster.gpu_milli() as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0005_eed0_ff6d);
    let (mut arrived, mut used) = (0u64, 0u64);
    let (mut sum, mut cnt, mut dropped) = (0.0, 0usize, 0usize);
    for (index, pod) in seq.iter().enumerate() {
        arrived += pod.total_milli();
        match policy.place(&nodes, pod, &mut rng) {
            Some(choice) => {
                let node = nodes.get_mut(choice.node).ok_or(SimError::Invalid {
                    index,
                    choice: choice.clone(),
                    why: "node index",
                })?;
                apply(node, pod, &choice.devices).map_err(|why| SimError::Invalid {
                    index,
                    choice: choice.clone(),
                    why,
                })?;
                used += pod.total_milli();
                policy.placed(&nodes, pod, &choice);
            }
            None => {
                if nodes.iter().any(|n| n.fits(pod)) {
                    return Err(SimError::Refused { index });
                }
                dropped += 1;
            }
        }
        let arr_pct = arrived as f64 / total * 100.0;
        if arr_pct.round_ties_even() as u32 == target {
            sum += (used as f64 / total * 100.0 * 100.0).round() / 100.0;
            cnt += 1;
        }
    }
    let fin = used as f64 / total * 100.0;
    Ok(RunResult {
        alloc_at_target: if cnt == 0 { fin } else { sum / cnt as f64 },
        alloc_final: fin,
        dropped,
        nodes,
    })
}

/// Picks uniformly among the indices with the maximal key (reservoir sampling), as
/// kube-scheduler's `selectHost` does.
pub fn argmax_random<I: Iterator<Item = (usize, i64)>>(
    it: I,
    rng: &mut ChaCha8Rng,
) -> Option<usize> {
    let (mut best, mut key, mut cnt) = (None, i64::MIN, 0u32);
    for (i, k) in it {
        if best.is_none() || k > key {
            best = Some(i);
            key = k;
            cnt = 1;
        } else if k == key {
            cnt += 1;
            if rng.gen_range(0..cnt) == 0 {
                best = Some(i);
            }
        }
    }
    best
}
