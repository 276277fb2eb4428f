//! Rebalancing: given a cluster with bound pods and the predicted usage of each pod, the
//! fewest pod migrations (weighted by priority) that bring every node under a high
//! utilisation threshold and, optionally, empty the under-used nodes — as a MILP (good_lp
//! and HiGHS, [`milp`]) with a greedy descheduler-style baseline beside it ([`greedy`]).
//!
//! This module owns the *plan* (which pod goes from which node to which); it never binds
//! anything in a live cluster, and it takes predicted usage as input (it does not
//! predict). Usage files are read by [`usage`]; [`synthetic`] generates a seeded skewed
//! cluster for measurements.
//!
//! # Targets
//! Utilisation of a node is predicted usage over allocatable (CPU always, memory too
//! when [`BalanceOptions::memory`] is set). Every node must end at most `high`. With
//! `low`, the nodes that start below `low` on every thresholded resource and hold pods,
//! none of them unmovable, are *to be emptied*: they receive no pods and all their pods
//! leave. Nodes already empty are not to be emptied: they may receive pods.
//! When the targets cannot all be met, the plan minimises the total *excess* first: the
//! sum over nodes and thresholded resources of `max(0, utilisation − high)`, plus, for
//! each pod left on a node to empty, its CPU share of that node (at least 0.001). The
//! result says which targets stay unmet ([`Plan::unmet`]).
//!
//! # Cost of a move
//! Moving pod `p` costs `1 + priority_weight · rank(p) / (R − 1)` where `rank` is the
//! position of `p`'s priority among the `R` distinct priorities of movable pods (0 for
//! the lowest). With the default weight 0.5, a move costs between 1 and 1.5: fewer moves
//! always win over cheaper moves of the same count, and among equal counts the
//! lower-priority pods move.
//!
//! # Hard constraints kept
//! Requests (cpu, memory, ephemeral storage, extended resources, the pod count) stay
//! within allocatable on every node; pods move only to nodes whose taints, cordon, node
//! selector and required node affinity admit them; required pod anti-affinity holds both
//! ways in the final state (a domain that already violates a term receives no pod
//! involved in that term). Pods that never move (documented restriction): pods with GPU
//! requests (their devices would need re-assigning), host ports, gang membership,
//! required pod affinity or `DoNotSchedule` topology spread (their constraints depend on
//! the order of moves), and pods at system-critical priority (≥ 2,000,000,000), as the
//! descheduler never evicts them. Every plan is checked with [`crate::place::validate`]
//! (moved pods as pending pods placed on their targets) before it is returned.

pub mod greedy;
mod instance;
pub mod milp;
pub mod synthetic;
pub mod usage;

use crate::model::{Binding, ClusterError, NodeId, PodId, Problem};
use crate::place::validate::{validate, Violation};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

pub use instance::SYSTEM_CRITICAL_PRIORITY;
pub use usage::{read_usage_file, PodUsage, Usage};

/// Errors from rebalancing.
#[derive(Debug, Error)]
pub enum BalanceError {
    /// An option is out of range.
    #[error("invalid option {name}: {msg}")]
    InvalidOption {
        /// Option name.
        name: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// A usage file is malformed or names an unknown pod.
    #[error("{file}:{line}: {msg}")]
    UsageFile {
        /// File name.
        file: String,
        /// 1-based line number (0 when the file could not be read at all).
        line: u64,
        /// What is wrong.
        msg: String,
    },
    /// A usage entry names no bound pod.
    #[error("usage given for unknown pod {pod:?} (no bound pod has that namespace/name)")]
    UnknownPod {
        /// The key given.
        pod: String,
    },
    /// A plan breaks a hard constraint (a bug: every plan is validated).
    #[error("plan breaks hard constraints: {}", violations.join("; "))]
    InvalidPlan {
        /// The validator's findings.
        violations: Vec<String>,
    },
    /// The solver failed in a way the greedy fallback could not cover.
    #[error("solver error: {0}")]
    Solver(String),
    /// A plan could not be applied to the cluster (a bug: plans are checked).
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// Which pods the greedy baseline evicts first from a node above `high`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GreedyOrder {
    /// The descheduler's order: lowest priority first; among equal priorities, the
    /// largest predicted CPU usage first; then pod id.
    #[default]
    PriorityFirst,
    /// Largest predicted CPU usage first regardless of priority (a stronger baseline
    /// for move counts that ignores priority); then pod id.
    LargestFirst,
}

/// Settings of a rebalancing run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceOptions {
    /// Highest allowed utilisation (predicted usage / allocatable), in `(0, 1]`.
    pub high: f64,
    /// Nodes starting below this utilisation are emptied, if set; in `[0, high)`.
    pub low: Option<f64>,
    /// Apply the thresholds to memory as well as CPU.
    pub memory: bool,
    /// HiGHS time limit for the whole MILP run, in seconds (positive).
    pub time_limit_seconds: f64,
    /// Extra cost of moving the highest-priority pod, relative to one move (`>= 0`).
    pub priority_weight: f64,
    /// When the program would have more (pod, target node) pairs than this, only pods
    /// on nodes that miss a target are considered for moving (a restriction, reported
    /// in [`Plan::restricted`]).
    pub max_pairs: usize,
    /// Eviction order of the greedy baseline.
    pub greedy_order: GreedyOrder,
}

impl Default for BalanceOptions {
    fn default() -> Self {
        BalanceOptions {
            high: 0.8,
            low: None,
            memory: false,
            time_limit_seconds: 10.0,
            priority_weight: 0.5,
            max_pairs: 20_000,
            greedy_order: GreedyOrder::PriorityFirst,
        }
    }
}

impl BalanceOptions {
    /// Checks every option's range.
    pub fn check(&self) -> Result<(), BalanceError> {
        let bad = |name, msg: String| Err(BalanceError::InvalidOption { name, msg });
        if !(self.high > 0.0 && self.high <= 1.0) {
            return bad("high", format!("{} is not in (0, 1]", self.high));
        }
        if let Some(low) = self.low {
            if !(low >= 0.0 && low < self.high) {
                return bad("low", format!("{low} is not in [0, high={})", self.high));
            }
        }
        if !(self.time_limit_seconds > 0.0 && self.time_limit_seconds.is_finite()) {
            return bad(
                "time-limit",
                format!("{} is not a positive number", self.time_limit_seconds),
            );
        }
        if !(self.priority_weight >= 0.0 && self.priority_weight.is_finite()) {
            return bad(
                "priority-weight",
                format!("{} is not a non-negative number", self.priority_weight),
            );
        }
        Ok(())
    }
}

/// One migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// Pod `namespace/name`.
    pub pod: String,
    /// Node it leaves.
    pub from: String,
    /// Node it goes to.
    pub to: String,
    /// Pod id in the problem's cluster.
    #[serde(skip)]
    pub pod_id: PodId,
    /// Node id it leaves.
    #[serde(skip)]
    pub from_node: NodeId,
    /// Node id it goes to.
    #[serde(skip)]
    pub to_node: NodeId,
}

/// Predicted utilisation of one node (usage / allocatable; 0 when allocatable is 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeUtilisation {
    /// Node name.
    pub node: String,
    /// CPU utilisation.
    pub cpu: f64,
    /// Memory utilisation.
    pub memory: f64,
    /// Pods on the node.
    pub pods: usize,
    /// Whether the node is to be emptied (started below `low`).
    pub to_empty: bool,
}

/// Which method produced a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The MILP.
    Milp,
    /// The greedy baseline.
    Greedy,
}

/// A rebalancing plan and what it achieves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Which method produced the moves.
    pub method: Method,
    /// The moves, in pod id order (they may be executed in any order only if capacity
    /// allows; the plan is a target state).
    pub moves: Vec<Move>,
    /// Sum of the moves' costs (see the module docs).
    pub cost: f64,
    /// Total excess over the targets after the moves (0 when every target is met).
    pub excess: f64,
    /// Targets still missed after the moves, as readable sentences.
    pub unmet: Vec<String>,
    /// Utilisation per node before the moves.
    pub before: Vec<NodeUtilisation>,
    /// Utilisation per node after the moves.
    pub after: Vec<NodeUtilisation>,
    /// True if the solver proved the plan optimal (least excess, then least cost) for
    /// the program it solved; always false for the greedy baseline.
    pub optimal: bool,
    /// True if the MILP did not give a better plan than the greedy baseline (timeout
    /// without incumbent, solver failure, or a worse incumbent) and the baseline's plan
    /// is returned as the MILP's.
    pub fell_back: bool,
    /// True if only pods on nodes missing a target were allowed to move (see
    /// [`BalanceOptions::max_pairs`]).
    pub restricted: bool,
    /// Seconds spent (wall clock, for reporting only).
    pub solve_seconds: f64,
}

impl Plan {
    /// Whether every target is met.
    pub fn targets_met(&self) -> bool {
        self.unmet.is_empty()
    }
}

/// Both plans of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The MILP's plan (or the baseline's, with `fell_back`).
    pub milp: Plan,
    /// The greedy baseline's plan.
    pub greedy: Plan,
}

/// Runs the greedy baseline and the MILP (warm-started from the same greedy assignment);
/// both plans are validated. This is the entry point other modules call with a `Problem` whose bound
/// pods are the current placement and a usage map.
pub fn balance(
    problem: &Problem,
    usage: &Usage,
    options: &BalanceOptions,
) -> Result<Comparison, BalanceError> {
    options.check()?;
    let greedy_plan = greedy::plan(problem, usage, options)?;
    let milp_plan = milp::plan(problem, usage, options)?;
    Ok(Comparison {
        milp: milp_plan,
        greedy: greedy_plan,
    })
}

/// Turns moves into a placement problem the validator understands: the moved pods are
/// unbound from the cluster and become the pending pods; the placement puts each on its
/// target node.
pub fn as_placement(
    problem: &Problem,
    moves: &[Move],
) -> Result<(Problem, Vec<Option<Binding>>), BalanceError> {
    let mut cluster = problem.cluster.clone();
    let mut pending = Vec::new();
    let mut placement = Vec::new();
    for m in moves {
        let (mut pod, _) = cluster.unbind(m.pod_id)?;
        pod.node_name = None;
        pod.gpu_devices.clear();
        pending.push(pod);
        placement.push(Some(Binding {
            node: m.to_node,
            gpu_devices: Vec::new(),
        }));
    }
    Ok((Problem { cluster, pending }, placement))
}

/// Checks a plan's target state against every hard constraint with the independent
/// validator; the error lists every violation.
pub fn validate_moves(problem: &Problem, moves: &[Move]) -> Result<(), BalanceError> {
    let (p, placement) = as_placement(problem, moves)?;
    validate(&p, &placement).map_err(|v: Vec<Violation>| BalanceError::InvalidPlan {
        violations: v.iter().map(|v| format!("{}: {}", v.pod, v.kind)).collect(),
    })
}

/// Utilisation per node of the bound pods of `problem` under `usage` (pods without a
/// usage entry count their requests), in node order.
pub fn utilisation(problem: &Problem, usage: &Usage) -> Vec<NodeUtilisation> {
    let inst = instance::Instance::build(problem, usage, &BalanceOptions::default(), false);
    inst.utilisation(&inst.current_assignment())
}

/// Per-pod usage keyed by pod id, as the instance uses it (requests where missing).
pub(crate) fn effective_usage(problem: &Problem, usage: &Usage) -> BTreeMap<PodId, (u64, u64)> {
    problem
        .cluster
        .bound_pods()
        .map(|(id, pod, _)| {
            let u = usage.get(id);
            let cpu = u.map_or(pod.requests.cpu_milli, |u| u.cpu_milli);
            let mem = u
                .and_then(|u| u.memory_bytes)
                .unwrap_or(pod.requests.memory_bytes);
            (id, (cpu, mem))
        })
        .collect()
}
