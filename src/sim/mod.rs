//! Discrete-event simulation of a cluster over time: nodes come and go, pods arrive,
//! wait, run and leave, and a placement policy decides where each one goes.
//!
//! This module owns the event loop, the pending queue and the metrics; it decides no
//! placement itself — that is the policy's job ([`crate::place`]).
//!
//! # Events and time
//! Time is whole seconds ([`Time`]) from the trace start; the simulator never reads the
//! wall clock, so a run is a pure function of the trace, the configuration and the
//! policy's seed (a batch policy with a wall-clock time limit, such as the MILP, is the
//! one exception: what it finds within its limit can vary). Events are ordered by
//! `(time, insertion sequence)` ([`event::EventQueue`]): at equal times they come out in
//! the order they were scheduled. Trace events (node events first, then arrivals, each
//! sorted stably by time) are all scheduled before the run starts, so at a given second
//! they come before the departures and ticks scheduled during the run.
//!
//! # Policies
//! - **Online** ([`SimPolicy::Online`]): a pod is placed the moment it arrives, through an
//!   [`OnlinePolicy`] [`Session`](crate::place::online::Session) (incremental; node
//!   changes rebuild the session before the next decision). FGD uses the run's target
//!   workload ([`SimConfig::target_workload`], by default the typical specs of all the
//!   trace's pods) unless the policy carries its own.
//! - **Batch** ([`SimPolicy::Batch`]): arrivals wait in the queue; a periodic tick (every
//!   [`SimConfig::tick_seconds`], at multiples of it, only while pods wait and something
//!   changed since the last call) hands the current cluster and the whole queue to a
//!   [`Placer`] as a [`Problem`]. Its answer is checked by the validator before it is
//!   applied; a rejected answer ends the run with [`SimError::InvalidPlacement`].
//!
//! # The pending queue
//! In [`QueueMode::Retry`] (kube-scheduler's behaviour) a pod that does not fit waits.
//! Whenever capacity frees (a departure, a node added) every waiting pod is tried
//! again, highest priority first, then in queue-entry order; within one such pass, once
//! a pod fails, pods identical to it except for their name are skipped (nothing freed
//! since). A new arrival is tried on its own at once, as kube tries a new pod before
//! the ones parked as unschedulable. In [`QueueMode::Drop`] a pod that does not fit when
//! tried (on arrival for online policies, on the first tick for batch ones) is dropped.
//!
//! # Runs, failures and removals
//! A pod runs for its trace duration from the moment it is bound, so waiting delays its
//! departure. When a node fails or is removed, its pods (ascending pod id) go back to
//! the scheduler as new arrivals at that instant — queue-entry time and order are reset
//! and a pod that gets placed again runs its full duration again (its work is lost) —
//! and the node is removed from the cluster until an add event brings it back (as a new
//! node, with a new id: ties between equal nodes go to the lower id, so a node that came
//! back is tried after those that stayed). Nodes join the cluster at their first add
//! event. In drop mode an evicted pod that fits nowhere is dropped.
//!
//! # Gangs
//! Members of a gang (`pod.gang`: namespace, name, `min_member`) wait in the queue until
//! enough of them are there to reach the minimum (counting members already running).
//! Online policies then try the waiting members together, in queue order, each through
//! the policy as usual: if at least the missing number fit, all that fit start at that
//! instant; otherwise every one placed is removed again and all keep waiting (retried
//! with the queue when capacity frees) — or, in drop mode, are all dropped. Once a gang
//! has its minimum running, later members are placed one by one like any pod. Batch
//! policies get the waiting members in the pending set and place gangs all-or-nothing
//! themselves (the validator checks it). The openb and Alibaba traces have no gangs.
//!
//! # Metrics
//! Allocation per resource is allocated / allocatable over live nodes; GPU fragmentation
//! is the FGD paper's measure summed over live nodes, against the run's target workload
//! ([`metrics`]). Samples are taken after all events of each distinct time
//! ([`Sampling::EveryEvent`]) or at multiples of a fixed interval
//! ([`Sampling::Interval`], the state after all events up to that second). Summary means
//! are time-weighted over the state between events, whatever the sampling. Waiting time
//! runs from queue entry to binding, one value per placement.
//!
//! # Example
//! ```
//! use plimsoll::model::{Node, Pod, Resources};
//! use plimsoll::place::online::{OnlineKind, OnlinePolicy};
//! use plimsoll::sim::{simulate, SimConfig, SimPolicy, Trace, TracePod};
//!
//! let r = Resources { cpu_milli: 4000, memory_bytes: 8 << 30, pods: 110, ..Default::default() };
//! let node = Node { name: "n0".into(), capacity: r.clone(), allocatable: r, ..Default::default() };
//! let pod = |name: &str, arrival, duration| TracePod {
//!     pod: Pod { name: name.into(), namespace: "default".into(),
//!                requests: Resources::cpu_mem(3000, 1 << 30), ..Default::default() },
//!     arrival,
//!     duration: Some(duration),
//! };
//! // The second pod does not fit until the first leaves at t=10.
//! let trace = Trace::with_static_nodes(vec![node], vec![pod("a", 0, 10), pod("b", 5, 10)]);
//! let policy = SimPolicy::Online(OnlinePolicy::new(OnlineKind::BestFit, 1));
//! let run = simulate(&trace, &policy, &SimConfig::default())?;
//! assert_eq!(run.summary.placed_pods, 2);
//! assert_eq!(run.summary.wait.max, 5);
//! assert_eq!(run.summary.end_time, 20);
//! # Ok::<(), plimsoll::sim::SimError>(())
//! ```

mod backend;
pub mod event;
pub mod metrics;
#[cfg(feature = "plot")]
pub mod plot;
mod run;
pub mod trace;

pub use event::Time;
pub use metrics::{Sample, Summary, WaitStats};
pub use trace::{NodeChange, NodeEvent, Trace, TraceError, TracePod};

use crate::model::{Binding, Cluster, ClusterError, Problem};
use crate::place::online::{OnlineKind, OnlinePolicy};
use crate::place::score::fgd::{self, TargetWorkload};
use crate::place::validate::{self, Violation};
use crate::place::{policy_by_name, PlaceError, Placer, PolicyName, PolicyOptions};
use backend::Backend;
use thiserror::Error;

/// What happens to a pod that does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueMode {
    /// It waits and is retried when capacity frees.
    #[default]
    Retry,
    /// It is dropped.
    Drop,
}

/// When samples are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sampling {
    /// After all events of each distinct time.
    #[default]
    EveryEvent,
    /// At every multiple of this many seconds, from 0 to the end.
    Interval(Time),
}

/// Settings of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Retry or drop pods that do not fit.
    pub mode: QueueMode,
    /// Seconds between batch ticks (batch policies only; at least 1).
    pub tick_seconds: Time,
    /// When samples are taken.
    pub sampling: Sampling,
    /// Stop after this time (events later are not processed); `None` runs to the end.
    pub until: Option<Time>,
    /// Validate the whole cluster every this many events (and always at the end).
    /// Defaults to every 1,000 events in debug builds, only at the end in release.
    pub validate_every: Option<u64>,
    /// The target workload for fragmentation (and FGD); `None` derives it from all the
    /// trace's pods ([`TargetWorkload::from_pods`] at [`fgd::DEFAULT_COVERAGE`]).
    pub target_workload: Option<TargetWorkload>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            mode: QueueMode::Retry,
            tick_seconds: 60,
            sampling: Sampling::EveryEvent,
            until: None,
            validate_every: cfg!(debug_assertions).then_some(1000),
            target_workload: None,
        }
    }
}

/// A policy as the simulator drives it.
pub enum SimPolicy {
    /// Placed one pod at a time, on arrival and on retries.
    Online(OnlinePolicy),
    /// Placed in batches on the tick.
    Batch(std::sync::Arc<dyn Placer>),
}

impl std::fmt::Debug for SimPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimPolicy::Online(p) => write!(f, "Online({})", p.kind.name()),
            SimPolicy::Batch(p) => write!(f, "Batch({})", p.name()),
        }
    }
}

impl SimPolicy {
    /// By name: an online policy name (`best-fit`, `fgd`, …) is online; `milp` is batch;
    /// `batch:NAME` runs any policy of [`policy_by_name`] as a batch policy on the tick.
    pub fn by_name(name: &str, opts: &PolicyOptions) -> Result<Self, PlaceError> {
        if let Some(inner) = name.strip_prefix("batch:") {
            return Ok(SimPolicy::Batch(policy_by_name(inner, opts)?.into()));
        }
        match name.parse::<PolicyName>()? {
            PolicyName::Online(k) => Ok(SimPolicy::Online(OnlinePolicy::new(k, opts.seed))),
            batch => Ok(SimPolicy::Batch(batch.build(opts)?.into())),
        }
    }

    /// The name results are reported under (`batch:` prefixed for batch runs of online
    /// policies).
    pub fn name(&self) -> String {
        match self {
            SimPolicy::Online(p) => p.kind.name().to_string(),
            SimPolicy::Batch(p) if p.name().parse::<OnlineKind>().is_ok() => {
                format!("batch:{}", p.name())
            }
            SimPolicy::Batch(p) => p.name().to_string(),
        }
    }
}

/// Why a simulation failed.
#[derive(Debug, Error)]
pub enum SimError {
    /// The cluster, or a batch answer, broke a hard constraint (a policy bug).
    #[error("invalid placement by {policy} at t={time}: {violations}")]
    InvalidPlacement {
        /// Simulated time.
        time: Time,
        /// Policy name.
        policy: String,
        /// The violations, joined.
        violations: String,
    },
    /// The trace is unusable.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The policy failed.
    #[error(transparent)]
    Place(#[from] PlaceError),
    /// A binding could not be applied.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// Writing results failed.
    #[error("writing results: {0}")]
    Io(#[from] std::io::Error),
    /// Writing CSV failed.
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    /// Drawing a plot failed.
    #[error("plotting: {0}")]
    Plot(String),
}

impl SimError {
    fn invalid(time: Time, policy: &str, v: &[Violation]) -> Self {
        let shown: Vec<String> = v.iter().take(5).map(|x| x.to_string()).collect();
        let more = v.len().saturating_sub(5);
        SimError::InvalidPlacement {
            time,
            policy: policy.to_string(),
            violations: if more > 0 {
                format!("{} (and {more} more)", shown.join("; "))
            } else {
                shown.join("; ")
            },
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct SimResult {
    /// Figures of the whole run.
    pub summary: Summary,
    /// The time series.
    pub samples: Vec<Sample>,
    /// The cluster at the end.
    pub cluster: Cluster,
}

impl SimResult {
    /// Writes the samples as CSV (a header, then one row per sample).
    pub fn write_csv(&self, out: impl std::io::Write) -> Result<(), SimError> {
        let mut w = csv::Writer::from_writer(out);
        for s in &self.samples {
            w.serialize(s)?;
        }
        w.flush()?;
        Ok(())
    }

    /// The summary as pretty JSON.
    pub fn summary_json(&self) -> String {
        serde_json::to_string_pretty(&self.summary).expect("a summary always serialises")
    }
}

/// The target workload a run of `trace` uses by default: the typical specs of all its pods.
pub fn default_workload(trace: &Trace) -> TargetWorkload {
    TargetWorkload::from_pods(trace.pods.iter().map(|p| &p.pod), fgd::DEFAULT_COVERAGE)
}

/// Replays `trace` under `policy`.
pub fn simulate(
    trace: &Trace,
    policy: &SimPolicy,
    config: &SimConfig,
) -> Result<SimResult, SimError> {
    simulate_with_progress(trace, policy, config, &mut |_, _| {})
}

/// [`simulate`], calling `progress(done, total)` now and then with the number of trace
/// events (arrivals and node events) processed so far.
pub fn simulate_with_progress(
    trace: &Trace,
    policy: &SimPolicy,
    config: &SimConfig,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SimResult, SimError> {
    let workload = config
        .target_workload
        .clone()
        .unwrap_or_else(|| default_workload(trace));
    let name = policy.name();
    let w = workload.clone();
    let run = match policy {
        SimPolicy::Online(p) => {
            run::Run::new(trace, config, |c| Backend::online(p, w, c), workload, name)?
        }
        SimPolicy::Batch(p) => run::Run::new(
            trace,
            config,
            |cluster| Backend::batch(p.clone(), cluster),
            workload,
            name,
        )?,
    };
    run.execute(progress)
}

/// Checks every pod bound in `cluster` with the independent validator, as if all of them
/// had just been placed on the bare nodes: resources, devices, taints, selectors, host
/// ports and the inter-pod constraints of the final state. Gang minimums are left out:
/// they bind when members are placed (the run checks that), and members leave on their
/// own schedules afterwards.
pub fn validate_cluster(cluster: &Cluster) -> Result<(), Vec<Violation>> {
    let bare = cluster.without_pods();
    let mut pending = Vec::with_capacity(cluster.bound_count());
    let mut placement: Vec<Option<Binding>> = Vec::with_capacity(cluster.bound_count());
    for (_, pod, b) in cluster.bound_pods() {
        let mut p = pod.clone();
        p.node_name = None;
        p.gpu_devices.clear();
        p.gang = None;
        pending.push(p);
        placement.push(Some(b.clone()));
    }
    let problem = Problem {
        cluster: bare,
        pending,
    };
    validate::validate(&problem, &placement)
}
