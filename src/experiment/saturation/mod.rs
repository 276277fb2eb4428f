//! The FGD paper's saturation experiment (Weng et al., ATC'23, openb trace), as its
//! simulator (`hkust-adsl/kubernetes-scheduler-simulator`) runs it.
//!
//! - **Cluster**: the nodes, empty. Pods never depart.
//! - **Order** ([`Workload::build`]): the original pods sorted by name, shuffled with the
//!   seed, then copies drawn uniformly with replacement until the arrived GPU demand
//!   would pass `tune` × the cluster's GPU milli (the stop test adds the drawn pod's
//!   *per-GPU* milli, as the paper's `tuneUpPods` does). The RNG is a seeded
//!   [`ChaCha8Rng`](rand_chacha::ChaCha8Rng): Go's `math/rand` stream is not
//!   reproduced, so per-seed sequences differ from the paper's; only their statistics
//!   match.
//! - **Placement** ([`run`]): one pod at a time; a pod that fits nowhere is dropped and
//!   never retried. The filter ([`State::fits`]) checks CPU, memory and a pod slot by
//!   request, the GPU model, and the devices (a share needs one device with enough free
//!   milli, k whole GPUs k fully free devices).
//! - **Metric** ([`CurveBuilder`]): after every pod (failed ones included) the arrived
//!   GPU milli (counted before the attempt) and the allocated GPU milli, as % of the
//!   cluster's GPU milli; the curve is, per integer arrived % from 0 to 130, the mean
//!   allocated % of the events rounding there, averaged over seeds ([`mean_curve`]).
//! - **Policies** ([`SaturationPolicy`], [`registry`]): the paper's six baselines as its
//!   simulator codes them — five in [`paper`] (integer scores, device choice per
//!   policy), and FGD, which is the library's FGD with the paper's conventions as
//!   options (integer scores, the typical pods covering 95% incl. CPU-only ones:
//!   [`fgd`]) — every online policy of the library ([`engine`]), Plimsoll's CPU-backed
//!   fragmentation ([`cbf`], the library's `cbf`) and the look-ahead batch policy
//!   ([`lookahead`], the library's). Library policies run through the scheduling
//!   interface ([`crate::place::scheduler::Scheduler`]). Equal best scores go to the
//!   node first in a fixed node order drawn from the seed ([`TieMode::Order`], the
//!   default) or, as the paper's kube `selectHost` does, to a uniformly random one
//!   ([`TieMode::Random`]; the library's policies keep the fixed order).
//!
//! A new policy implements [`SaturationPolicy`] in its own file and is added to
//! [`registry::by_name`]:
//!
//! ```
//! use plimsoll::experiment::saturation::*;
//! use plimsoll::model::{GpuAmount, GpuRequest, Node, NodeGpus, Pod, Resources};
//!
//! /// Most free CPU first (a toy policy); ties by the run's [`Ties`].
//! struct MostFreeCpu;
//! impl SaturationPolicy for MostFreeCpu {
//!     fn name(&self) -> String { "most-free-cpu".into() }
//!     fn start<'a>(&'a self, _: &RunContext<'a>) -> Result<Box<dyn PolicyRun + 'a>, SaturationError> {
//!         Ok(Box::new(MostFreeCpuRun))
//!     }
//! }
//! struct MostFreeCpuRun;
//! impl PolicyRun for MostFreeCpuRun {
//!     fn select(&mut self, state: &State, pod: &PodSpec, _arrival: usize, ties: &mut Ties)
//!         -> Result<Option<Choice>, SaturationError> {
//!         let mut best = ties.best::<()>();
//!         for n in (0..state.len()).filter(|&n| state.fits(n, pod)) {
//!             best.offer(n, state.cpu_free(n) as i64, ());
//!         }
//!         Ok(best.finish().map(|(n, _, ())| Choice {
//!             node: n,
//!             devices: paper::best_devices(state.devices(n), pod),
//!         }))
//!     }
//! }
//!
//! let r = Resources { cpu_milli: 8000, memory_bytes: 32 << 30, pods: 110, ..Default::default() };
//! let node = |name: &str| Node {
//!     name: name.into(), capacity: r.clone(), allocatable: r.clone(),
//!     gpus: Some(NodeGpus { model: "T4".into(), count: 2 }), ..Default::default()
//! };
//! let pods: Vec<Pod> = (0..6).map(|i| Pod {
//!     name: format!("p{i}"),
//!     requests: Resources::cpu_mem(2000, 1 << 30),
//!     gpu: GpuRequest { amount: GpuAmount::Shared(600), models: vec![] },
//!     ..Default::default()
//! }).collect();
//! let nodes = vec![node("a"), node("b")];
//! let workload = Workload::build(&nodes, &pods, 42, 1.3)?;
//! let result = run(&nodes, &workload, &MostFreeCpu, TieMode::Order)?;
//! assert_eq!(result.curve.len(), 131);
//! assert_eq!(result.placed, 4); // four 600-milli shares fit on four devices
//! # Ok::<(), SaturationError>(())
//! ```

pub mod bound;
pub mod cbf;
pub mod compare;
pub mod curve;
pub mod engine;
pub mod fgd;
pub mod lookahead;
pub mod paper;
pub mod registry;
pub mod report;
pub mod state;
pub mod workload;

pub use curve::{mean_curve, CurveBuilder, LAST_BUCKET};
pub use state::{Best, Choice, NodeIdx, State, TieMode, Ties};
pub use workload::{PodSpec, Workload};

use crate::model::Node;
use std::time::Instant;

/// Why a saturation run failed.
#[derive(Debug, thiserror::Error)]
pub enum SaturationError {
    /// Bad input (cluster, pods, options).
    #[error("{0}")]
    Input(String),
    /// A policy chose a node or devices the filter rejects (a policy bug).
    #[error("policy chose an invalid placement: {0}")]
    InvalidChoice(String),
    /// A policy failed.
    #[error("policy {policy}: {msg}")]
    Policy {
        /// The policy.
        policy: String,
        /// What went wrong.
        msg: String,
    },
}

/// What a policy sees when a run starts.
#[derive(Debug, Clone, Copy)]
pub struct RunContext<'a> {
    /// The nodes (index = [`NodeIdx`]).
    pub nodes: &'a [Node],
    /// The arrival sequence.
    pub workload: &'a Workload,
    /// The run's seed.
    pub seed: u64,
    /// How ties are broken.
    pub ties: TieMode,
}

/// A placement policy for saturation runs. `start` builds the per-run state.
pub trait SaturationPolicy: Sync + Send {
    /// The policy's name (as the CLI takes it).
    fn name(&self) -> String;
    /// Per-run state for one run.
    fn start<'a>(
        &'a self,
        ctx: &RunContext<'a>,
    ) -> Result<Box<dyn PolicyRun + 'a>, SaturationError>;
}

/// One policy's state during one run.
pub trait PolicyRun {
    /// Where to put `pod` (arrival number `arrival`) on the cluster `state`, or `None` if
    /// it fits nowhere. The harness checks the choice ([`State::valid`]) and binds it.
    fn select(
        &mut self,
        state: &State,
        pod: &PodSpec,
        arrival: usize,
        ties: &mut Ties,
    ) -> Result<Option<Choice>, SaturationError>;
}

/// One policy × one seed.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The policy.
    pub policy: String,
    /// The seed.
    pub seed: u64,
    /// Allocated GPU % per arrived % 0..=130.
    pub curve: Vec<f64>,
    /// Placement of every arrival (`None`: dropped).
    pub placements: Vec<Option<Choice>>,
    /// Pods placed.
    pub placed: usize,
    /// Allocated GPU milli at the end.
    pub allocated_milli: u64,
    /// The cluster's GPUs.
    pub total_gpus: u64,
    /// Wall time of the run (placement only), seconds.
    pub seconds: f64,
}

/// Runs `policy` over `workload` on the empty cluster `nodes`.
pub fn run(
    nodes: &[Node],
    workload: &Workload,
    policy: &dyn SaturationPolicy,
    ties: TieMode,
) -> Result<RunResult, SaturationError> {
    let start = Instant::now();
    let mut state = State::new(nodes)?;
    let ctx = RunContext {
        nodes,
        workload,
        seed: workload.seed,
        ties,
    };
    let mut p = policy.start(&ctx)?;
    let mut t = Ties::new(ties, nodes.len(), workload.seed);
    let mut curve = CurveBuilder::new(state.total_gpus());
    let mut arrived = 0u64;
    let mut placements = Vec::with_capacity(workload.arrivals.len());
    let mut placed = 0;
    for (i, pod) in workload.arrivals.iter().enumerate() {
        arrived += pod.gpu_total();
        let choice = p.select(&state, pod, i, &mut t)?;
        if let Some(c) = &choice {
            state.bind(pod, c).map_err(|e| SaturationError::Policy {
                policy: policy.name(),
                msg: e.to_string(),
            })?;
            placed += 1;
        }
        placements.push(choice);
        curve.record(arrived, state.allocated_milli());
    }
    Ok(RunResult {
        policy: policy.name(),
        seed: workload.seed,
        curve: curve.finish(),
        placements,
        placed,
        allocated_milli: state.allocated_milli(),
        total_gpus: state.total_gpus(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Runs every policy × seed in parallel (rayon); workloads are built once per seed.
/// Results come back ordered by policy (as given), then seed; their `placements` are
/// left empty to save memory (use [`run`] to get them).
pub fn run_all(
    nodes: &[Node],
    pods: &[crate::model::Pod],
    policies: &[Box<dyn SaturationPolicy>],
    seeds: &[u64],
    tune: f64,
    ties: TieMode,
) -> Result<Vec<RunResult>, SaturationError> {
    use rayon::prelude::*;
    let workloads: Vec<Workload> = seeds
        .par_iter()
        .map(|&s| Workload::build(nodes, pods, s, tune))
        .collect::<Result<_, _>>()?;
    let jobs: Vec<(usize, usize)> = (0..policies.len())
        .flat_map(|p| (0..seeds.len()).map(move |s| (p, s)))
        .collect();
    jobs.par_iter()
        .map(|&(p, s)| {
            let mut r = run(nodes, &workloads[s], policies[p].as_ref(), ties)?;
            r.placements = Vec::new();
            Ok(r)
        })
        .collect()
}
