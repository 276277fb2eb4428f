//! Online policies: one pod at a time, filter every node, score the feasible ones, bind
//! to the best — kube-scheduler's cycle — with kube's own scoring
//! ([`OnlineKind::KubeDefault`]) and the packing heuristics of the GPU-sharing literature.
//!
//! # Order and ties
//! [`Placer::place`] takes pending pods by priority, highest first, keeping input order
//! among equals. Members of a gang (`pod.gang`, keyed by namespace and name) are placed
//! one after another at the position of the gang's first member; if fewer than
//! `min_member` of them fit, all of them are unbound again (all-or-nothing). A node wins
//! with the highest total score; equal totals go to the lowest node index. `random`
//! draws uniformly among the feasible nodes with a seeded [`ChaCha8Rng`]; `first-fit`
//! takes the lowest-index feasible node.
//!
//! # Scores
//! `kube-default` is kube-scheduler's default profile (`getDefaultPlugins` in
//! `pkg/scheduler/apis/config/v1/default_plugins.go`): NodeResourcesFit (LeastAllocated,
//! cpu and memory at weight 1) ×1, NodeResourcesBalancedAllocation ×1, NodeAffinity ×2,
//! TaintToleration ×3, PodTopologySpread ×2, InterPodAffinity ×2 (ImageLocality ×1 has
//! no input here). kube's InterPodAffinity score counts *preferred* pod (anti-)affinity
//! terms, which Plimsoll's pods do not carry, and — at `hardPodAffinityWeight` 1 —
//! existing pods' required affinity terms that match the incoming pod; that last part is
//! not implemented, so InterPodAffinity is left out. BalancedAllocation also balances the
//! GPU fraction when the pod asks for GPUs and the node has them (kube sees GPUs only as
//! a configured extended resource; without this, kube-default would ignore GPU
//! imbalance). PodTopologySpread scores the pod's own ScheduleAnyway constraints; kube's
//! cluster-level default constraints (for pods owned by a Service or ReplicaSet) are not
//! applied. Requests of zero count as 100m CPU / 200 MiB for the NodeResourcesFit
//! scores, as kube's non-zero requests do (per pod here, per container in kube).
//!
//! Every other scoring policy adds its own score (0..=100, see [`crate::place::score`])
//! to the NodeAffinity, TaintToleration and PodTopologySpread scores at weight 1 each, so
//! preferences still count.
//!
//! `fgd` places each pod where the fragmentation of the target workload grows least
//! ([`crate::place::score::fgd`]); for a GPU share it also picks the device. The target
//! workload is the policy's explicit one ([`OnlinePolicy::with_target_workload`]), else
//! [`Placer::place`] derives it from the pending pods, and a [`Session`] from the pods
//! already bound plus the first pod it scores.
//!
//! `cbf` (CPU-backed fragmentation, Plimsoll's best online policy in the saturation
//! experiment) scores the increase of `F + w · max(0, G − C/ρ)`: FGD's fragmentation
//! `F` plus the free GPU milli `G` that the node's free CPU `C` cannot back at the
//! workload's CPU per GPU milli `ρ` — on CPU-poor GPU nodes CPU runs out first and the
//! GPU left is lost for good. Its score is the negated increase in 1/1000 milli, rounded;
//! `w` and `ρ` are [`FragOptions`] (`ρ` derived from the target workload unless given).
//! FGD's and CBF's paper conventions are options too: [`FragOptions::integer_scores`]
//! truncates FGD's scores to integers as the paper's simulator does. Ties go to the
//! lowest node id, so a seeded tie order is a matter of the order nodes are added in (the
//! saturation experiment adds them in its seed's order). Every other policy takes devices
//! with
//! [`choose_devices`](crate::model::gpu::choose_devices). `first-fit` and `random` use no
//! scores at all, soft ones included.
//!
//! # Speed
//! Static filter results (cordon, taints, selectors, required affinity, GPU model) and
//! the static soft scores are computed once per distinct pod signature; the per-node
//! check and score read a compact row of numbers, allocate nothing, and are compiled once
//! per policy so the scorer inlines.
//!
//! Choosing a node ([`Session::place`], [`Session::select`], [`OnlinePolicy::select`],
//! [`Placer::place`]) does not score identical nodes twice. For a pod without inter-pod
//! constraints, host ports, extended resources or ScheduleAnyway spread, a node's filter
//! verdict and score depend only on its static verdict and static soft scores and on its
//! *state* (row numbers, GPU model, per-device free GPU, and for `gpu-clustering` the GPU
//! request types it runs). Each signature's eligible nodes are kept grouped into classes
//! of equal (state, static soft scores); a bind or removal changes one node's state, so
//! only that node moves class. A decision filters and scores the lowest-index node of
//! every class — the verdict and score of every other member are the same numbers — and
//! takes the highest total, ties to the lowest node index: exactly the node a scan of
//! every node picks (the test `incremental_decisions_equal_a_full_recompute` checks this
//! against [`OnlinePolicy::scores`] recomputed from scratch). Packing policies leave most
//! nodes idle, so the classes are few; spreading ones touch more nodes and gain less.
//! The soft scores are normalised by their maxima over the statically eligible nodes,
//! which is right whenever some feasible node reaches those maxima (checked; otherwise,
//! and for pods with soft spread, inter-pod constraints, host ports or extended
//! resources, every node is filtered and scored, in index order, and pods with dynamic
//! checks also run
//! [`FilterContext::check_dynamic`](crate::place::filter::FilterContext::check_dynamic)).
//! [`OnlinePolicy::scores`] and `random` always score every node.
//!
//! FGD keeps per-node device statistics and each node's per-task verdicts (valid until
//! the node changes), so a candidate costs O(typical specs), and nothing at all when the
//! pod asks no GPU and leaves every task that could run there still runnable (the
//! fragmentation is then unchanged, term by term).
//!
//! # Plugins
//! [`OnlinePolicy::with_plugins`] attaches an embedder's filters and scores
//! ([`crate::place::plugin`]): after the built-in filters, the plugins' hard rules run on
//! each feasible node, and their weighted scores are added to the total. With plugins,
//! decisions skip the class shortcut above and filter and score every node.
//!
//! # Example
//! ```
//! use plimsoll::model::{Cluster, GpuAmount, GpuRequest, Node, NodeGpus, Pod, Resources};
//! use plimsoll::place::online::{OnlineKind, OnlinePolicy};
//!
//! let r = Resources { cpu_milli: 8000, memory_bytes: 32 << 30, pods: 110, ..Default::default() };
//! let node = |name: &str| Node {
//!     name: name.into(),
//!     capacity: r.clone(),
//!     allocatable: r.clone(),
//!     gpus: Some(NodeGpus { model: "T4".into(), count: 2 }),
//!     ..Default::default()
//! };
//! let pod = Pod {
//!     name: "train".into(),
//!     namespace: "default".into(),
//!     requests: Resources::cpu_mem(2000, 4 << 30),
//!     gpu: GpuRequest { amount: GpuAmount::Shared(500), models: vec![] },
//!     ..Default::default()
//! };
//! let cluster = Cluster::new(vec![node("a"), node("b")]).unwrap();
//! let mut session = OnlinePolicy::new(OnlineKind::BestFit, 42).session(cluster);
//! let (id, binding) = session.place(pod.clone()).unwrap().expect("fits");
//! let a = session.cluster().node_id("a").unwrap();
//! assert_eq!(binding.node, a); // equal nodes: the lowest id wins
//! // The second share packs onto the same node and device.
//! let (_, second) = session.place(Pod { name: "train-2".into(), ..pod }).unwrap().unwrap();
//! assert_eq!((second.node, &second.gpu_devices), (a, &binding.gpu_devices));
//! session.remove(id).unwrap();
//! ```

mod classes;
mod engine;
mod frag;
mod hot;
mod rows;
mod soft;
pub(crate) mod units;

use super::{FilterContext, Outcome, PlaceError, Placer, Plugins, Reason, SolveStats};
use crate::model::{Binding, Cluster, ClusterError, Node, NodeId, Pod, PodId, Problem};
use crate::place::score::fgd::{self, TargetWorkload};
use engine::Engine;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::borrow::Cow;
use std::time::Instant;

/// Which online policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnlineKind {
    /// kube-scheduler's default scoring profile.
    KubeDefault,
    /// Least normalised free resources left after placement (GPU included).
    BestFit,
    /// NodeResourcesFit MostAllocated.
    MostAllocated,
    /// NodeResourcesFit LeastAllocated.
    LeastAllocated,
    /// The FGD paper's DotProd (Tetris) baseline.
    DotProduct,
    /// The FGD paper's GpuPacking baseline.
    GpuPacking,
    /// The FGD paper's GpuClustering baseline.
    GpuClustering,
    /// Fragmentation gradient descent.
    Fgd,
    /// CPU-backed fragmentation: FGD's fragmentation plus the GPU stranded by the CPU.
    Cbf,
    /// Lowest-index feasible node.
    FirstFit,
    /// Uniformly random feasible node (seeded).
    Random,
}

impl OnlineKind {
    /// Every kind, in CLI order.
    pub const ALL: [OnlineKind; 11] = [
        OnlineKind::KubeDefault,
        OnlineKind::BestFit,
        OnlineKind::MostAllocated,
        OnlineKind::LeastAllocated,
        OnlineKind::DotProduct,
        OnlineKind::GpuPacking,
        OnlineKind::GpuClustering,
        OnlineKind::Fgd,
        OnlineKind::Cbf,
        OnlineKind::FirstFit,
        OnlineKind::Random,
    ];

    /// True for the kinds that score fragmentation against a target workload (`fgd`,
    /// `cbf`).
    pub fn uses_workload(&self) -> bool {
        matches!(self, OnlineKind::Fgd | OnlineKind::Cbf)
    }

    /// The CLI name.
    pub fn name(&self) -> &'static str {
        match self {
            OnlineKind::KubeDefault => "kube-default",
            OnlineKind::BestFit => "best-fit",
            OnlineKind::MostAllocated => "most-allocated",
            OnlineKind::LeastAllocated => "least-allocated",
            OnlineKind::DotProduct => "dot-product",
            OnlineKind::GpuPacking => "gpu-packing",
            OnlineKind::GpuClustering => "gpu-clustering",
            OnlineKind::Fgd => "fgd",
            OnlineKind::Cbf => "cbf",
            OnlineKind::FirstFit => "first-fit",
            OnlineKind::Random => "random",
        }
    }
}

impl std::fmt::Display for OnlineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for OnlineKind {
    type Err = PlaceError;
    /// The kind whose [`name`](OnlineKind::name) is `s`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OnlineKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| PlaceError::UnknownPolicy(s.to_string()))
    }
}

/// FGD's and CBF's scoring options (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FragOptions {
    /// FGD: truncate scores to integers, `int(100 · σ(Δ/1000))`, as the FGD paper's
    /// simulator does (default: kept as floats, so near-equal placements are told apart).
    pub integer_scores: bool,
    /// CBF: weight `w` of the stranded-GPU term (0 leaves FGD's fragmentation alone).
    pub strand_weight: f64,
    /// CBF: the workload's CPU per GPU milli `ρ`; `None` derives it from the target
    /// workload's GPU specs (`Σ f · cpu / Σ f · GPU milli`).
    pub cpu_per_gpu_milli: Option<f64>,
    /// CBF: weight of the model-reservation term (0, the default, leaves it out): a pod
    /// that accepts every GPU model pays, per GPU milli it takes on a node, this weight
    /// times how much of the node's GPU model the model-restricted pods of the target
    /// workload need (their share of its GPU milli over the model's share of the
    /// cluster's, at most 1), so it leaves scarce models to the pods that can run
    /// nowhere else.
    pub reserve_weight: f64,
    /// CBF: rank nodes by FGD's integer score (as [`FragOptions::integer_scores`]) first
    /// and let CBF's cost break its ties (default off).
    pub fgd_first: bool,
}

impl Default for FragOptions {
    fn default() -> Self {
        FragOptions {
            integer_scores: false,
            strand_weight: 1.0,
            cpu_per_gpu_milli: None,
            reserve_weight: 0.0,
            fgd_first: false,
        }
    }
}

/// An online policy.
#[derive(Debug, Clone)]
pub struct OnlinePolicy {
    /// Which policy.
    pub kind: OnlineKind,
    /// Seed of `random`.
    pub seed: u64,
    /// FGD's and CBF's target workload; `None` derives it from the pods being placed.
    pub target_workload: Option<TargetWorkload>,
    /// FGD's and CBF's scoring options.
    pub frag: FragOptions,
    /// Embedders' filters and scores (see [`crate::place::plugin`]); empty by default.
    pub plugins: Plugins,
}

impl OnlinePolicy {
    /// A policy of this kind with this seed.
    pub fn new(kind: OnlineKind, seed: u64) -> Self {
        OnlinePolicy {
            kind,
            seed,
            target_workload: None,
            frag: FragOptions::default(),
            plugins: Plugins::default(),
        }
    }

    /// Sets FGD's and CBF's scoring options.
    pub fn with_frag_options(mut self, frag: FragOptions) -> Self {
        self.frag = frag;
        self
    }

    /// True for the policies that score fragmentation against a target workload.
    pub fn uses_workload(&self) -> bool {
        self.kind.uses_workload()
    }

    /// Attaches plugins: nodes a [`FilterPlugin`](crate::place::plugin::FilterPlugin)
    /// rejects (or a [`MilpPlugin`](crate::place::plugin::MilpPlugin) forbids) are
    /// skipped, and each [`ScorePlugin`](crate::place::plugin::ScorePlugin)'s weighted
    /// score is added to every feasible node's total. With plugins, every node is
    /// filtered and scored for every pod (no node classes).
    pub fn with_plugins(mut self, plugins: Plugins) -> Self {
        self.plugins = plugins;
        self
    }

    /// Sets FGD's target workload explicitly (otherwise [`Placer::place`] derives it from
    /// the pending pods and a [`Session`] from the pods already bound).
    pub fn with_target_workload(mut self, workload: TargetWorkload) -> Self {
        self.target_workload = Some(workload);
        self
    }

    /// Where this policy would put `pod` on `cluster` now (node and GPU devices), or
    /// `None` if no node is feasible. `rng` is used by `random` only. Builds the
    /// per-cluster state once; to place many pods, use a [`Session`].
    pub fn select(&self, cluster: &Cluster, pod: &Pod, rng: &mut ChaCha8Rng) -> Option<Binding> {
        let mut e = self.engine(Cow::Borrowed(cluster));
        e.select(pod, rng)
    }

    /// Every feasible node for `pod` with this policy's total score (higher is better),
    /// ascending node index. Nodes left out are infeasible (their reasons come from
    /// [`FilterContext::check`](crate::place::filter::FilterContext::check)).
    /// `first-fit` and `random` do not score: their nodes all get 0.
    pub fn scores(&self, cluster: &Cluster, pod: &Pod) -> Vec<(NodeId, f64)> {
        self.engine(Cow::Borrowed(cluster)).scores(pod)
    }

    /// kube-scheduler's filter verdict of every live node for `pod`, ascending id: `Ok`
    /// if feasible, else the reasons of the first rejecting plugin. The nodes
    /// [`OnlinePolicy::scores`] returns are exactly the `Ok` ones.
    pub fn filter(cluster: &Cluster, pod: &Pod) -> Vec<(NodeId, Result<(), Vec<Reason>>)> {
        let ctx = FilterContext::new(cluster, pod);
        cluster.node_ids().map(|n| (n, ctx.check(n))).collect()
    }

    /// A session that places pods one by one on its own copy of `cluster`.
    pub fn session(&self, cluster: Cluster) -> Session<'static> {
        Session {
            engine: self.engine(Cow::Owned(cluster)),
            rng: ChaCha8Rng::seed_from_u64(self.seed),
        }
    }

    fn engine<'a>(&self, cluster: Cow<'a, Cluster>) -> Engine<'a> {
        let mut e = Engine::new(self.kind, cluster);
        e.set_frag_options(self.frag);
        if !self.plugins.is_empty() {
            e.set_plugins(self.plugins.clone());
        }
        if let Some(w) = &self.target_workload {
            e.set_workload(w.clone());
        }
        e
    }
}

/// A live cluster being filled one pod at a time by one policy: the simulator's and the
/// extender's entry point. Every change — pods bound, removed or evicted, nodes added,
/// replaced (capacity, labels, taints, GPUs, cordon) or removed — is applied
/// incrementally to the per-node state, so the next decision and every score equal those
/// of a session built from scratch on the same cluster (property-tested in
/// `tests/session_live.rs`).
#[derive(Debug, Clone)]
pub struct Session<'a> {
    engine: Engine<'a>,
    rng: ChaCha8Rng,
}

impl Session<'_> {
    /// The cluster with everything bound so far.
    pub fn cluster(&self) -> &Cluster {
        &self.engine.cluster
    }

    /// Consumes the session, returning its cluster.
    pub fn into_cluster(self) -> Cluster {
        self.engine.cluster.into_owned()
    }

    /// Sets FGD's target workload (otherwise derived from the bound pods plus the first
    /// pod scored).
    pub fn set_target_workload(&mut self, workload: TargetWorkload) {
        self.engine.set_workload(workload);
    }

    /// FGD's target workload, once set or derived.
    pub fn target_workload(&self) -> Option<&TargetWorkload> {
        self.engine.workload()
    }

    /// Where the policy would put `pod` now, without binding it.
    pub fn select(&mut self, pod: &Pod) -> Option<Binding> {
        self.engine.select(pod, &mut self.rng)
    }

    /// Every feasible node's total score for `pod` (see [`OnlinePolicy::scores`]).
    pub fn scores(&mut self, pod: &Pod) -> Vec<(NodeId, f64)> {
        self.engine.scores(pod)
    }

    /// Selects a node for `pod` and binds it there; `None` if no node is feasible.
    pub fn place(&mut self, pod: Pod) -> Result<Option<(PodId, Binding)>, ClusterError> {
        match self.select(&pod) {
            None => Ok(None),
            Some(b) => {
                let id = self.engine.bind(pod, &b)?;
                Ok(Some((id, b)))
            }
        }
    }

    /// Binds `pod` where `binding` says (e.g. a decision taken elsewhere).
    pub fn bind(&mut self, pod: Pod, binding: &Binding) -> Result<PodId, ClusterError> {
        self.engine.bind(pod, binding)
    }

    /// Removes a bound pod (departure, preemption, gang rollback).
    pub fn remove(&mut self, id: PodId) -> Result<(Pod, Binding), ClusterError> {
        self.engine.unbind(id)
    }

    /// Evicts a bound pod: removes it and returns it as a pending pod again (no node
    /// name, no devices).
    pub fn evict(&mut self, id: PodId) -> Result<Pod, ClusterError> {
        let (mut pod, _) = self.engine.unbind(id)?;
        pod.node_name = None;
        pod.gpu_devices.clear();
        Ok(pod)
    }

    /// Adds a node; returns its id.
    pub fn add_node(&mut self, node: Node) -> Result<NodeId, ClusterError> {
        self.engine.add_node(node)
    }

    /// Replaces node `id`'s description; returns the old one (see
    /// [`Cluster::replace_node`] for what is refused).
    pub fn replace_node(&mut self, id: NodeId, node: Node) -> Result<Node, ClusterError> {
        self.engine.replace_node(id, node)
    }

    /// Cordons (`true`) or uncordons node `id`; returns whether it was cordoned.
    pub fn set_cordoned(&mut self, id: NodeId, cordoned: bool) -> Result<bool, ClusterError> {
        let mut node = self
            .cluster()
            .node(id)
            .ok_or(ClusterError::NoSuchNode(id))?
            .clone();
        let was = std::mem::replace(&mut node.unschedulable, cordoned);
        self.engine.replace_node(id, node)?;
        Ok(was)
    }

    /// Removes node `id`, evicting its pods; returns the node and the evicted pods with
    /// the bindings they had. The id stays an error from then on.
    pub fn remove_node(&mut self, id: NodeId) -> Result<(Node, Vec<(Pod, Binding)>), ClusterError> {
        self.engine.remove_node(id)
    }
}

impl Placer for OnlinePolicy {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn place(&self, problem: &Problem) -> Result<Outcome, PlaceError> {
        let start = Instant::now();
        let mut session = self.session(problem.cluster.clone());
        if self.kind.uses_workload() && self.target_workload.is_none() {
            session.set_target_workload(TargetWorkload::from_pods(
                &problem.pending,
                fgd::DEFAULT_COVERAGE,
            ));
        }
        let placement = units::place_units(&mut session, &problem.pending)?
            .into_iter()
            .map(|p| p.map(|(_, b)| b))
            .collect();
        Ok(Outcome {
            policy: self.name().to_string(),
            placement,
            stats: SolveStats {
                solve_seconds: start.elapsed().as_secs_f64(),
                ..Default::default()
            },
        })
    }
}
