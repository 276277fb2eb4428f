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
#[cfg(test)]
mod tests;

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

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// Milli-GPU of sharing pods with their counts among openb's sharing pods
/// (`openb_pod_list_default.csv`, `num_gpu == 1`, `gpu_milli < 1000`; values with at
/// least 40 pods).
pub const SHARE_MILLI_TABLE: &[(u32, u32)] = &[
    (810, 1078),
    (470, 750),
    (320, 328),
    (650, 253),
    (230, 140),
    (460, 128),
    (590, 75),
    (160, 74),
    (550, 72),
    (220, 62),
    (370, 47),
];

/// Whole devices per multi-GPU pod with openb's counts (2: 16 pods, 4: 15, 8: 44).
pub const MULTI_GPU_TABLE: &[(u32, u32)] = &[(2, 16), (4, 15), (8, 44)];

/// (CPU millicores, memory MiB, weight) of GPU-sharing pods, approximating openb's
/// quantiles for them (CPU p10 3.2, p50 4, p90 11.9 cores; memory p10 5.6, p50 15,
/// p90 46 GiB).
pub const SHARE_SHAPE_TABLE: &[(u64, u64, u32)] = &[
    (2_000, 6_144, 15),
    (4_000, 8_192, 20),
    (4_000, 16_384, 35),
    (8_000, 32_768, 15),
    (12_000, 46_080, 15),
];

/// (CPU millicores, memory MiB, weight) per whole GPU of training pods, approximating
/// openb's quantiles for one-GPU pods (CPU p10 3.2, p50 11.4, p90 16 cores; memory p10
/// 5.6, p50 47, p90 63 GiB).
pub const WHOLE_SHAPE_TABLE: &[(u64, u64, u32)] = &[
    (4_000, 8_192, 15),
    (8_000, 32_768, 25),
    (12_000, 49_152, 35),
    (16_000, 65_536, 25),
];

/// (CPU millicores, memory MiB, weight) of service pods: small web-style containers.
pub const SERVICE_SHAPE_TABLE: &[(u64, u64, u32)] = &[
    (250, 512, 15),
    (500, 1_024, 30),
    (1_000, 2_048, 30),
    (2_000, 4_096, 15),
    (4_000, 8_192, 10),
];

/// (CPU millicores, memory MiB, weight) of CPU batch pods, approximating openb's quantiles
/// for CPU-only pods (CPU p10 8, p50 12.5, p90 32 cores; memory p10 30, p50 50, p90 56 GiB).
pub const BATCH_SHAPE_TABLE: &[(u64, u64, u32)] = &[
    (4_000, 16_384, 10),
    (8_000, 32_768, 25),
    (12_000, 51_200, 35),
    (16_000, 57_344, 15),
    (32_000, 65_536, 15),
];

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
    let mut gen = WorkloadGen::new(cfg, &nodes);
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
        types.extend(std::iter::repeat(ty).take(n));
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

fn node_agent_requests() -> Resources {
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

fn gpu_toleration() -> Toleration {
    Toleration {
        key: GPU_TAINT_KEY.into(),
        operator: TolerationOperator::Exists,
        value: String::new(),
        effect: Some(TaintEffect::NoSchedule),
    }
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, table: &[(T, u32)]) -> T {
    table
        .choose_weighted(rng, |e| e.1)
        .expect("non-empty table with positive weights")
        .0
}

fn pick_shape(rng: &mut ChaCha8Rng, table: &[(u64, u64, u32)]) -> (u64, u64) {
    let e = table
        .choose_weighted(rng, |e| e.2)
        .expect("non-empty table with positive weights");
    (e.0, e.1 * MIB)
}

/// Builds the pending workloads, each a `Vec<Pod>` of identical pods (but for names).
struct WorkloadGen<'a> {
    cfg: &'a SyntheticConfig,
    nodes: &'a [Node],
    /// What a pending pod may use on each node (allocatable minus the node agent).
    headroom: Vec<Resources>,
    counter: usize,
}

impl<'a> WorkloadGen<'a> {
    fn new(cfg: &'a SyntheticConfig, nodes: &'a [Node]) -> Self {
        let agent = node_agent_requests();
        let headroom = nodes
            .iter()
            .map(|n| {
                let mut r = n.allocatable.clone();
                if cfg.node_agents {
                    r.cpu_milli -= agent.cpu_milli;
                    r.memory_bytes -= agent.memory_bytes;
                }
                r
            })
            .collect();
        WorkloadGen {
            cfg,
            nodes,
            headroom,
            counter: 0,
        }
    }

    /// A random schedulable node passing `ok`, or `None`.
    fn anchor(&self, rng: &mut ChaCha8Rng, ok: impl Fn(&Node) -> bool) -> Option<usize> {
        let cands: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].unschedulable && ok(&self.nodes[i]))
            .collect();
        cands.choose(rng).copied()
    }

    fn next_name(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}-{:03}", self.counter)
    }

    /// Pods of `count` copies of `template`, named `{workload}-{i}`.
    fn expand(workload: &str, template: Pod, count: u32) -> Vec<Pod> {
        (0..count)
            .map(|i| Pod {
                name: format!("{workload}-{i}"),
                ..template.clone()
            })
            .collect()
    }

    fn clamp(&self, anchor: usize, cpu_milli: u64, memory_bytes: u64) -> Resources {
        let h = &self.headroom[anchor];
        Resources::cpu_mem(cpu_milli.min(h.cpu_milli), memory_bytes.min(h.memory_bytes))
    }

    fn gpu_workloads(&mut self, rng: &mut ChaCha8Rng) -> Vec<Vec<Pod>> {
        let total: u64 = self
            .nodes
            .iter()
            .map(|n| u64::from(n.gpu_count()) * u64::from(MILLI_PER_GPU))
            .sum();
        let target = (self.cfg.gpu_demand * total as f64) as u64;
        let mut demand = 0u64;
        let mut out = Vec::new();
        while demand < target {
            let made = if rng.gen_bool(self.cfg.share_fraction) {
                self.share_job(rng)
            } else {
                self.training_job(rng)
            };
            let Some((template, count, gang)) = made else {
                break;
            };
            let per_pod = template.gpu.amount.total_milli();
            let count = count.min((target - demand).div_ceil(per_pod) as u32).max(1);
            demand += per_pod * u64::from(count);
            let name = template.labels["job-name"].clone();
            let mut template = template;
            if gang && count > 1 {
                template.gang = Some(Gang {
                    name: name.clone(),
                    min_member: count,
                });
            }
            out.push(Self::expand(&name, template, count));
        }
        out
    }

    fn model_constraint(&self, rng: &mut ChaCha8Rng, anchor: usize) -> Vec<String> {
        if !rng.gen_bool(self.cfg.model_constraint_fraction) {
            return Vec::new();
        }
        let model = self.nodes[anchor].gpu_model().unwrap_or_default();
        match model {
            // Jobs that run on either V100 memory size say so, as openb's gpu_spec does.
            "V100M16" | "V100M32" => vec!["V100M16".into(), "V100M32".into()],
            m => vec![m.to_string()],
        }
    }

    fn job_template(&mut self, prefix: &str, namespace: &str, priority: i32) -> Pod {
        let name = self.next_name(prefix);
        Pod {
            namespace: namespace.into(),
            labels: [
                ("job-name".to_string(), name.clone()),
                ("app".to_string(), prefix.to_string()),
            ]
            .into(),
            priority,
            ..Default::default()
        }
    }

    fn share_job(&mut self, rng: &mut ChaCha8Rng) -> Option<(Pod, u32, bool)> {
        let anchor = self.anchor(rng, |n| n.gpu_count() > 0)?;
        let milli = pick(rng, SHARE_MILLI_TABLE);
        let (cpu, mem) = pick_shape(rng, SHARE_SHAPE_TABLE);
        let mut pod = self.job_template("infer", "ml-infer", PRIORITY_INFERENCE);
        pod.requests = self.clamp(anchor, cpu, mem);
        pod.gpu = GpuRequest {
            amount: GpuAmount::Shared(milli),
            models: self.model_constraint(rng, anchor),
        };
        pod.tolerations = vec![gpu_toleration()];
        let count = rng.gen_range(1..=self.cfg.max_job_pods);
        Some((pod, count, false))
    }

    fn training_job(&mut self, rng: &mut ChaCha8Rng) -> Option<(Pod, u32, bool)> {
        let wanted = if rng.gen_bool(self.cfg.multi_gpu_fraction) {
            pick(rng, MULTI_GPU_TABLE)
        } else {
            1
        };
        // The largest device count a schedulable node offers bounds the request.
        let most = self
            .nodes
            .iter()
            .filter(|n| !n.unschedulable)
            .map(Node::gpu_count)
            .max()
            .unwrap_or(0);
        let devices = wanted.min(most);
        let anchor = self.anchor(rng, |n| devices > 0 && n.gpu_count() >= devices)?;
        let (cpu, mem) = pick_shape(rng, WHOLE_SHAPE_TABLE);
        let mut pod = self.job_template("train", "ml-train", PRIORITY_TRAINING);
        pod.requests = self.clamp(anchor, cpu * u64::from(devices), mem * u64::from(devices));
        pod.gpu = GpuRequest {
            amount: GpuAmount::Whole(devices),
            models: self.model_constraint(rng, anchor),
        };
        pod.tolerations = vec![gpu_toleration()];
        let max_pods = if devices > 1 {
            self.cfg.max_job_pods.min(4)
        } else {
            self.cfg.max_job_pods
        };
        let count = rng.gen_range(1..=max_pods);
        let gang = rng.gen_bool(self.cfg.gang_fraction);
        Some((pod, count, gang))
    }

    fn cpu_workloads(&mut self, rng: &mut ChaCha8Rng) -> Vec<Vec<Pod>> {
        let total: u64 = self.nodes.iter().map(|n| n.allocatable.cpu_milli).sum();
        let target = (self.cfg.cpu_demand * total as f64) as u64;
        let mut demand = 0u64;
        let mut out = Vec::new();
        while demand < target {
            let made = if rng.gen_bool(self.cfg.service_fraction) {
                self.service(rng)
            } else {
                self.batch_job(rng)
            };
            let Some((name, template, count)) = made else {
                break;
            };
            let per_pod = template.requests.cpu_milli.max(1);
            demand += per_pod * u64::from(count);
            out.push(Self::expand(&name, template, count));
        }
        out
    }

    fn service(&mut self, rng: &mut ChaCha8Rng) -> Option<(String, Pod, u32)> {
        let has_cpu_pool = self
            .nodes
            .iter()
            .any(|n| !n.unschedulable && n.gpus.is_none());
        let cpu_pool = has_cpu_pool && rng.gen_bool(self.cfg.cpu_pool_selector_fraction);
        let anchor = self.anchor(rng, |n| {
            n.taints.is_empty() && (!cpu_pool || n.gpus.is_none())
        })?;
        let name = self.next_name("svc");
        let (cpu, mem) = pick_shape(rng, SERVICE_SHAPE_TABLE);
        let app: crate::model::Labels = [("app".to_string(), name.clone())].into();
        let selector = LabelSelector {
            match_labels: app.clone(),
            match_expressions: Vec::new(),
        };
        let mut pod = Pod {
            namespace: "web".into(),
            labels: app,
            requests: self.clamp(anchor, cpu, mem),
            priority: PRIORITY_SERVICE,
            ..Default::default()
        };
        if cpu_pool {
            pod.node_selector
                .insert(NODE_POOL_LABEL.into(), "cpu".into());
        }
        if rng.gen_bool(self.cfg.anti_affinity_fraction) {
            pod.pod_anti_affinity.push(PodAffinityTerm {
                selector,
                namespaces: Vec::new(),
                topology_key: HOSTNAME_LABEL.into(),
            });
        } else {
            pod.topology_spread.push(TopologySpreadConstraint {
                max_skew: 1,
                topology_key: ZONE_LABEL.into(),
                when_unsatisfiable: WhenUnsatisfiable::DoNotSchedule,
                selector,
            });
        }
        let replicas = rng.gen_range(2..=self.cfg.max_replicas);
        Some((name, pod, replicas))
    }

    fn batch_job(&mut self, rng: &mut ChaCha8Rng) -> Option<(String, Pod, u32)> {
        let anchor = self.anchor(rng, |n| n.taints.is_empty())?;
        let (cpu, mem) = pick_shape(rng, BATCH_SHAPE_TABLE);
        let mut pod = self.job_template("batch", "batch", PRIORITY_BATCH);
        let name = pod.labels["job-name"].clone();
        pod.requests = self.clamp(anchor, cpu, mem);
        pod.requests.ephemeral_storage_bytes = 10 * GIB;
        if rng.gen_bool(self.cfg.zone_affinity_fraction) {
            let zone = self.nodes[anchor].labels[ZONE_LABEL].clone();
            pod.required_node_affinity = Some(NodeSelector {
                terms: vec![NodeSelectorTerm {
                    match_expressions: vec![Requirement {
                        key: ZONE_LABEL.into(),
                        operator: Operator::In,
                        values: vec![zone],
                    }],
                    match_fields: Vec::new(),
                }],
            });
        }
        let count = rng.gen_range(1..=self.cfg.max_job_pods);
        Some((name, pod, count))
    }
}
