//! A seeded generator of realistic GPU clusters and their workloads.
//!
//! Everything the generator does is set by [`SyntheticConfig`] (every field documented
//! with its default) and its seed: the same configuration always gives the same nodes and
//! pods. The node mix imitates the real openb cluster ([`node_types`]); pod shapes follow
//! the request quantiles of `openb_pod_list_default.csv` (see the `*_TABLE` constants).
//!
//! What a generated cluster holds:
//! - nodes `node-0000`, … with `kubernetes.io/hostname`, `topology.kubernetes.io/zone`
//!   (round robin over `zone-a`, `zone-b`, …), `plimsoll.io/node-pool` (`cpu`,
//!   `gpu-shared` or `gpu-dedicated`) and, on GPU nodes, `nvidia.com/gpu.product`;
//!   dedicated GPU nodes carry the taint `nvidia.com/gpu=present:NoSchedule`; a few nodes
//!   are cordoned;
//! - optionally one bound `node-agent` pod per node (a DaemonSet's pods);
//! - pending pods from four kinds of workload: service Deployments (CPU only, with
//!   required pod anti-affinity on hostname or a hard zone spread), GPU-sharing inference
//!   Jobs (milli-GPU shares), whole-GPU training Jobs (some restricted to GPU models, some
//!   gangs) and CPU batch Jobs (some pinned to a zone by node affinity).
//!
//! Every pending pod is sized against one real node (its "anchor": schedulable, tolerated,
//! matching the pod's selectors) so that each pod alone fits on an empty cluster: the
//! generator never produces an impossible request. Whether they all fit *together*
//! depends on the demand settings.
//!
//! This module only builds data: it never places a pending pod.

pub mod node_types;
pub mod shapes;
#[cfg(test)]
mod tests;
mod workloads;

use crate::model::selector::TolerationOperator;
use crate::model::{
    ClusterError, Gang, GpuAmount, GpuRequest, LabelSelector, Node, NodeGpus, NodeSelector,
    NodeSelectorTerm, Operator, Pod, PodAffinityTerm, Problem, Requirement, Resources, Taint,
    TaintEffect, Toleration, TopologySpreadConstraint, WhenUnsatisfiable, MILLI_PER_GPU,
};
use node_types::{apportion, NodeType, OPENB_NODE_TYPES};
use rand::seq::SliceRandom;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

/// Node label holding the node's name.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
/// Node label holding the node's zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Node label holding the GPU model (NVIDIA GPU feature discovery's name).
pub const GPU_PRODUCT_LABEL: &str = "nvidia.com/gpu.product";
/// Node label naming the node's pool: `cpu`, `gpu-shared` or `gpu-dedicated`.
pub const NODE_POOL_LABEL: &str = "plimsoll.io/node-pool";
/// Key of the taint on dedicated GPU nodes (`nvidia.com/gpu=present:NoSchedule`).
pub const GPU_TAINT_KEY: &str = "nvidia.com/gpu";

/// Priority of the bound node-agent pods (Kubernetes' `system-node-critical`).
pub const PRIORITY_NODE_AGENT: i32 = 2_000_001_000;
/// Priority of service Deployments' pods.
pub const PRIORITY_SERVICE: i32 = 1000;
/// Priority of whole-GPU training pods.
pub const PRIORITY_TRAINING: i32 = 500;
/// Priority of GPU-sharing inference pods.
pub const PRIORITY_INFERENCE: i32 = 100;
/// Priority of CPU batch pods.
pub const PRIORITY_BATCH: i32 = 0;

pub(crate) const GIB: u64 = 1 << 30;
pub(crate) const MIB: u64 = 1 << 20;

/// Every parameter of the generator. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticConfig {
    /// Seed of the ChaCha8 generator. Default 42.
    pub seed: u64,
    /// Number of nodes, split over openb's node types in openb's proportions. Default 200.
    pub nodes: usize,
    /// Number of zones (1–26), assigned round robin after a seeded shuffle. Default 3.
    pub zones: usize,
    /// Fraction of GPU nodes in the dedicated pool, tainted
    /// `nvidia.com/gpu=present:NoSchedule`. Default 0.3.
    pub gpu_taint_fraction: f64,
    /// Fraction of nodes cordoned (`unschedulable`), rounded; at least one node always
    /// stays schedulable. Default 0.02.
    pub cordoned_fraction: f64,
    /// Whether every node runs one bound `node-agent` pod (100m CPU, 128 MiB). Default true.
    pub node_agents: bool,
    /// Pending GPU pods' total milli-GPU as a fraction of the cluster's. Default 0.85.
    pub gpu_demand: f64,
    /// Pending CPU-only pods' total CPU as a fraction of the cluster's allocatable CPU.
    /// Default 0.2.
    pub cpu_demand: f64,
    /// Probability that a GPU workload is a sharing (milli-GPU) inference Job rather than
    /// a whole-GPU training Job. Default 0.44 (openb: 3,078 of 7,064 GPU pods share).
    pub share_fraction: f64,
    /// Probability that a training Job's pods need more than one device (2, 4 or 8, in
    /// openb's proportions). Default 0.05.
    pub multi_gpu_fraction: f64,
    /// Probability that a GPU workload restricts the GPU model. Default 0.3.
    pub model_constraint_fraction: f64,
    /// Probability that a training Job with more than one pod is a gang (all or
    /// nothing). Default 0.5.
    pub gang_fraction: f64,
    /// Probability that a CPU workload is a service Deployment rather than a batch Job.
    /// Default 0.5.
    pub service_fraction: f64,
    /// Probability that a Deployment uses required pod anti-affinity on hostname; the
    /// others use a hard zone spread (`maxSkew: 1`, `DoNotSchedule`). Default 0.5.
    pub anti_affinity_fraction: f64,
    /// Probability that a Deployment selects the CPU pool (`plimsoll.io/node-pool: cpu`).
    /// Default 0.3.
    pub cpu_pool_selector_fraction: f64,
    /// Probability that a batch Job is pinned to one zone by required node affinity.
    /// Default 0.2.
    pub zone_affinity_fraction: f64,
    /// Largest replica count of a Deployment (at least 2 replicas). Default 8.
    pub max_replicas: u32,
    /// Largest pod count of a Job. Default 8.
    pub max_job_pods: u32,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            seed: 42,
            nodes: 200,
            zones: 3,
            gpu_taint_fraction: 0.3,
            cordoned_fraction: 0.02,
            node_agents: true,
            gpu_demand: 0.85,
            cpu_demand: 0.2,
            share_fraction: 0.44,
            multi_gpu_fraction: 0.05,
            model_constraint_fraction: 0.3,
            gang_fraction: 0.5,
            service_fraction: 0.5,
            anti_affinity_fraction: 0.5,
            cpu_pool_selector_fraction: 0.3,
            zone_affinity_fraction: 0.2,
            max_replicas: 8,
            max_job_pods: 8,
        }
    }
}

/// Errors of the generator.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SyntheticError {
    /// A configuration value is out of range.
    #[error("invalid synthetic parameter {name}: {msg}")]
    InvalidParameter {
        /// Field of [`SyntheticConfig`].
        name: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// The generated cluster could not be built (a generator bug).
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl SyntheticConfig {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), SyntheticError> {
        let bad = |name, msg: String| Err(SyntheticError::InvalidParameter { name, msg });
        if self.nodes == 0 || self.nodes > 100_000 {
            return bad("nodes", format!("{} is not in 1..=100000", self.nodes));
        }
        if !(1..=26).contains(&self.zones) {
            return bad("zones", format!("{} is not in 1..=26", self.zones));
        }
        let fractions = [
            ("gpu_taint_fraction", self.gpu_taint_fraction),
            ("cordoned_fraction", self.cordoned_fraction),
            ("share_fraction", self.share_fraction),
            ("multi_gpu_fraction", self.multi_gpu_fraction),
            ("model_constraint_fraction", self.model_constraint_fraction),
            ("gang_fraction", self.gang_fraction),
            ("service_fraction", self.service_fraction),
            ("anti_affinity_fraction", self.anti_affinity_fraction),
            (
                "cpu_pool_selector_fraction",
                self.cpu_pool_selector_fraction,
            ),
            ("zone_affinity_fraction", self.zone_affinity_fraction),
        ];
        for (name, v) in fractions {
            if !(0.0..=1.0).contains(&v) {
                return bad(name, format!("{v} is not a probability in [0, 1]"));
            }
        }
        for (name, v) in [
            ("gpu_demand", self.gpu_demand),
            ("cpu_demand", self.cpu_demand),
        ] {
            if !(0.0..=10.0).contains(&v) {
                return bad(name, format!("{v} is not in [0, 10]"));
            }
        }
        if self.max_replicas < 2 {
            return bad("max_replicas", format!("{} is below 2", self.max_replicas));
        }
        if self.max_job_pods < 1 {
            return bad("max_job_pods", "must be at least 1".into());
        }
        Ok(())
    }
}

/// Generates the nodes and pods (bound node agents first, then the pending pods in a
/// seeded order of workloads, each workload's pods together).
pub fn generate(cfg: &SyntheticConfig) -> Result<(Vec<Node>, Vec<Pod>), SyntheticError> {
    cfg.validate()?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let nodes = make_nodes(cfg, &mut rng);
    let mut pods = Vec::new();
    if cfg.node_agents {
        pods.extend(nodes.iter().map(node_agent));
    }
    let mut gen = workloads::WorkloadGen::new(cfg, &nodes);
    let mut workloads = gen.gpu_workloads(&mut rng);
    workloads.extend(gen.cpu_workloads(&mut rng));
    workloads.shuffle(&mut rng);
    for w in workloads {
        pods.extend(w);
    }
    Ok((nodes, pods))
}

/// [`generate`], then [`Problem::from_parts`] (node agents bound, the rest pending).
pub fn problem(cfg: &SyntheticConfig) -> Result<Problem, SyntheticError> {
    let (nodes, pods) = generate(cfg)?;
    Ok(Problem::from_parts(nodes, pods)?)
}

/// The default configuration with `nodes` nodes and `seed`: e.g. `scaled(5000, 1)` for
/// benchmark-sized clusters.
pub fn scaled(nodes: usize, seed: u64) -> Result<(Vec<Node>, Vec<Pod>), SyntheticError> {
    generate(&SyntheticConfig {
        nodes,
        seed,
        ..SyntheticConfig::default()
    })
}

fn make_nodes(cfg: &SyntheticConfig, rng: &mut ChaCha8Rng) -> Vec<Node> {
    let mut types: Vec<&NodeType> = Vec::with_capacity(cfg.nodes);
    for (ty, n) in OPENB_NODE_TYPES.iter().zip(apportion(cfg.nodes)) {
        types.extend(std::iter::repeat_n(ty, n));
    }
    types.shuffle(rng);
    let mut nodes: Vec<Node> = types
        .iter()
        .enumerate()
        .map(|(i, ty)| node_of_type(i, ty, cfg.zones))
        .collect();
    let mut gpu_nodes: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].gpus.is_some())
        .collect();
    gpu_nodes.shuffle(rng);
    let tainted = (cfg.gpu_taint_fraction * gpu_nodes.len() as f64).round() as usize;
    for &i in &gpu_nodes[..tainted] {
        let n = &mut nodes[i];
        n.taints.push(Taint {
            key: GPU_TAINT_KEY.into(),
            value: "present".into(),
            effect: TaintEffect::NoSchedule,
        });
        n.labels
            .insert(NODE_POOL_LABEL.into(), "gpu-dedicated".into());
    }
    let cordoned =
        ((cfg.cordoned_fraction * nodes.len() as f64).round() as usize).min(nodes.len() - 1);
    let mut all: Vec<usize> = (0..nodes.len()).collect();
    all.shuffle(rng);
    for &i in &all[..cordoned] {
        nodes[i].unschedulable = true;
    }
    nodes
}

fn node_of_type(i: usize, ty: &NodeType, zones: usize) -> Node {
    let name = format!("node-{i:04}");
    let capacity = Resources {
        cpu_milli: ty.cpu_milli,
        memory_bytes: ty.memory_mib * MIB,
        pods: 110,
        ephemeral_storage_bytes: 500 * GIB,
        extended: Default::default(),
    };
    // kube-reserved + system-reserved, as a typical kubelet configuration sets them.
    let allocatable = Resources {
        cpu_milli: capacity.cpu_milli - 500,
        memory_bytes: capacity.memory_bytes - GIB,
        ..capacity.clone()
    };
    let zone = format!("zone-{}", (b'a' + (i % zones) as u8) as char);
    let mut labels = crate::model::Labels::new();
    labels.insert(HOSTNAME_LABEL.into(), name.clone());
    labels.insert(ZONE_LABEL.into(), zone);
    let gpus = (ty.gpus > 0).then(|| NodeGpus {
        model: ty.model.to_string(),
        count: ty.gpus,
    });
    let pool = if gpus.is_some() { "gpu-shared" } else { "cpu" };
    labels.insert(NODE_POOL_LABEL.into(), pool.into());
    if gpus.is_some() {
        labels.insert(GPU_PRODUCT_LABEL.into(), ty.model.into());
    }
    Node {
        name,
        capacity,
        allocatable,
        gpus,
        labels,
        taints: Vec::new(),
        unschedulable: false,
    }
}

pub(crate) fn node_agent_requests() -> Resources {
    Resources::cpu_mem(100, 128 * MIB)
}

fn node_agent(node: &Node) -> Pod {
    Pod {
        name: format!("node-agent-{}", node.name),
        namespace: "kube-system".into(),
        labels: [("app".to_string(), "node-agent".to_string())].into(),
        requests: node_agent_requests(),
        node_name: Some(node.name.clone()),
        tolerations: vec![Toleration {
            operator: TolerationOperator::Exists,
            ..Default::default()
        }],
        priority: PRIORITY_NODE_AGENT,
        ..Default::default()
    }
}

pub use shapes::*;
