//! The overcommit experiment: Bitbrains VMs (GWA-T-12, Shen et al., CCGrid 2015) become
//! pods (request = provisioned cores and memory, usage = their series) on a uniform
//! cluster, are placed once by requests and once by predicted peak usage
//! ([`crate::place::usage`]), and the test period is replayed to count node-intervals
//! whose real CPU usage exceeds the node.
//!
//! No leakage: the series are split at one time ([`workload::split`]); estimators see
//! only the history, the replay sees only the test period. The placement is static for
//! the whole replay, so an estimator must bound the peak over the whole period
//! ([`estimate::PeakEstimator`]), not over a short horizon.
//!
//! [`run`] compares the modes for several policies; [`end_state`] returns the cluster
//! after the prediction-based placement, with per-pod requests, predictions and real
//! peaks, for the rebalancer.

pub mod estimate;
pub mod learned;
pub mod rebalance;
pub mod replay;
pub mod report;
pub mod workload;

use crate::model::{ClusterError, Node, Pod, Problem, Resources};
use crate::place::usage::{place_by_usage, PodEstimate, UsageError, UsageEstimates, UsageOptions};
use crate::place::validate::validate;
use crate::place::{PlaceError, Placer};
use estimate::PeakEstimator;
use replay::{count_overloads, OverloadCount};
pub use report::{ModeResult, OvercommitReport};
use std::collections::BTreeMap;
use thiserror::Error;
use workload::Workloads;

/// Errors of the experiment.
#[derive(Debug, Error)]
pub enum OvercommitError {
    /// An option is out of range.
    #[error("invalid option --{name}: {msg}")]
    InvalidOption {
        /// Option name.
        name: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// The input has no usable data.
    #[error("no usable data: {0}")]
    NoData(String),
    /// Usage-aware placement failed.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// A policy failed.
    #[error(transparent)]
    Place(#[from] PlaceError),
    /// A learned predictor could not be trained.
    #[error(transparent)]
    Predict(#[from] crate::predict::PredictError),
    /// The cluster could not be built.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A request-based placement broke a hard constraint (a bug in the policy).
    #[error("policy {policy} returned an invalid placement: {first}")]
    Invalid {
        /// Policy name.
        policy: String,
        /// The first violation.
        first: String,
    },
}

/// The cluster and the usage options of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OvercommitConfig {
    /// CPU of every node, millicores.
    pub node_cpu_milli: u64,
    /// Memory of every node, bytes.
    pub node_memory_bytes: u64,
    /// Number of nodes (`None`: one per VM, always enough for request-based packing
    /// when every VM fits a node).
    pub nodes: Option<usize>,
    /// Margin and memory mode of the usage-aware placement.
    pub usage: UsageOptions,
}

impl OvercommitConfig {
    /// Checks that nodes have CPU and memory and that there is at least one node.
    pub fn validate(&self) -> Result<(), OvercommitError> {
        let bad = |name, msg: &str| OvercommitError::InvalidOption {
            name,
            msg: msg.to_string(),
        };
        if self.node_cpu_milli == 0 {
            return Err(bad("node-cpu", "a node needs some CPU"));
        }
        if self.node_memory_bytes == 0 {
            return Err(bad("node-memory", "a node needs some memory"));
        }
        if self.nodes == Some(0) {
            return Err(bad("nodes", "the cluster needs at least one node"));
        }
        Ok(())
    }
}

/// Namespace of the VM pods.
pub const NAMESPACE: &str = "default";

/// The placement problem: uniform nodes `node-0`, `node-1`, … and one pending pod per VM
/// (same order) requesting its provisioned cores and memory.
pub fn problem(
    workloads: &Workloads,
    config: &OvercommitConfig,
) -> Result<Problem, OvercommitError> {
    config.validate()?;
    let r = Resources {
        cpu_milli: config.node_cpu_milli,
        memory_bytes: config.node_memory_bytes,
        pods: 110,
        ephemeral_storage_bytes: 1 << 40,
        extended: Default::default(),
    };
    let count = config.nodes.unwrap_or(workloads.vms.len()).max(1);
    let nodes = (0..count)
        .map(|i| Node {
            name: format!("node-{i}"),
            capacity: r.clone(),
            allocatable: r.clone(),
            ..Default::default()
        })
        .collect();
    let pods = workloads
        .vms
        .iter()
        .map(|v| Pod {
            name: v.name.clone(),
            namespace: NAMESPACE.into(),
            requests: Resources::cpu_mem(v.cpu_request_milli, v.memory_request_bytes),
            ..Default::default()
        })
        .collect();
    Ok(Problem::from_parts(nodes, pods)?)
}

/// Per-pod estimates from the history only: CPU (and memory) peaks by `estimator`. VMs
/// with an empty history get no estimate (they keep their request).
pub fn estimates(workloads: &Workloads, estimator: &dyn PeakEstimator) -> UsageEstimates {
    let by_pod = workloads
        .vms
        .iter()
        .filter_map(|v| {
            let cpu = estimator.cpu_peak(v)?;
            let mem = estimator.peak(&v.history_memory_bytes);
            Some((
                format!("{NAMESPACE}/{}", v.name),
                PodEstimate {
                    cpu_milli: ceil_tolerant(cpu * 1000.0),
                    memory_bytes: mem.map(ceil_tolerant),
                },
            ))
        })
        .collect();
    UsageEstimates { by_pod }
}

/// Rounds up to an integer, ignoring floating-point noise below 1e-6 (so 600.0000001
/// millicores is 600, not 601); negative values become 0.
fn ceil_tolerant(x: f64) -> u64 {
    (x - 1e-6).ceil().max(0.0) as u64
}

/// Places by requests and by prediction with every policy and replays each placement.
pub fn run(
    workloads: &Workloads,
    config: &OvercommitConfig,
    policies: &[&dyn Placer],
    estimator: &dyn PeakEstimator,
) -> Result<OvercommitReport, OvercommitError> {
    let problem = problem(workloads, config)?;
    let est = estimates(workloads, estimator);
    let mut results = Vec::new();
    for placer in policies {
        let outcome = placer.place(&problem)?;
        if let Err(v) = validate(&problem, &outcome.placement) {
            return Err(OvercommitError::Invalid {
                policy: placer.name().to_string(),
                first: v.first().map(ToString::to_string).unwrap_or_default(),
            });
        }
        results.push(result(workloads, config, "request", None, &outcome));
        let u = place_by_usage(*placer, &problem, &est, &config.usage)?;
        results.push(result(
            workloads,
            config,
            "usage",
            Some(estimator.name()),
            &u.outcome,
        ));
    }
    Ok(OvercommitReport::new(
        workloads,
        config,
        estimator.name(),
        est.by_pod.len(),
        results,
    ))
}

fn result(
    workloads: &Workloads,
    config: &OvercommitConfig,
    mode: &str,
    predictor: Option<String>,
    outcome: &crate::place::Outcome,
) -> ModeResult {
    let node_of: Vec<Option<usize>> = outcome
        .placement
        .iter()
        .map(|b| b.as_ref().map(|b| b.node.index()))
        .collect();
    let overloads: OverloadCount = count_overloads(
        &workloads.vms,
        &node_of,
        config.node_cpu_milli as f64 / 1000.0,
        config.node_memory_bytes as f64,
    );
    ModeResult::new(
        mode,
        &outcome.policy,
        predictor,
        &node_of,
        overloads,
        &outcome.stats,
    )
}

/// The state after the prediction-based placement, for the rebalancer.
#[derive(Debug, Clone)]
pub struct EndState {
    /// The effective cluster: placed VMs bound with their effective requests (estimate ×
    /// (1 + margin), capped at the request); VMs left out stay pending.
    pub problem: Problem,
    /// Original requests (provisioned size), by pod key.
    pub requests: BTreeMap<String, Resources>,
    /// The estimates the placement used (history only), by pod key.
    pub predicted: UsageEstimates,
    /// The real CPU peak over the replay, millicores, by pod key (0 if no sample).
    pub replay_peak_cpu_milli: BTreeMap<String, u64>,
    /// The replay's overloads of this placement.
    pub overloads: OverloadCount,
}

/// Places by prediction with `placer` and returns the end state.
pub fn end_state(
    workloads: &Workloads,
    config: &OvercommitConfig,
    placer: &dyn Placer,
    estimator: &dyn PeakEstimator,
) -> Result<EndState, OvercommitError> {
    let problem = problem(workloads, config)?;
    let predicted = estimates(workloads, estimator);
    let u = place_by_usage(placer, &problem, &predicted, &config.usage)?;
    let cluster = u.apply()?;
    let pending = u
        .effective
        .problem
        .pending
        .iter()
        .zip(&u.outcome.placement)
        .filter(|(_, b)| b.is_none())
        .map(|(p, _)| p.clone())
        .collect();
    let key = |name: &str| format!("{NAMESPACE}/{name}");
    let requests = problem
        .pending
        .iter()
        .map(|p| (p.key(), p.requests.clone()))
        .collect();
    let replay_peak_cpu_milli = workloads
        .vms
        .iter()
        .map(|v| {
            let peak = v
                .replay_cpu_cores
                .iter()
                .flatten()
                .copied()
                .fold(0.0, f64::max);
            (key(&v.name), (peak * 1000.0).ceil() as u64)
        })
        .collect();
    let node_of: Vec<Option<usize>> = u
        .outcome
        .placement
        .iter()
        .map(|b| b.as_ref().map(|b| b.node.index()))
        .collect();
    let overloads = count_overloads(
        &workloads.vms,
        &node_of,
        config.node_cpu_milli as f64 / 1000.0,
        config.node_memory_bytes as f64,
    );
    Ok(EndState {
        problem: Problem { cluster, pending },
        requests,
        predicted,
        replay_peak_cpu_milli,
        overloads,
    })
}
