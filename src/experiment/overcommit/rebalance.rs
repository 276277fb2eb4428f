//! Rebalancing the overcommit experiment's end state: the VMs packed by prediction are
//! handed to the rebalancer ([`crate::balance`]) with a usage per VM, and the MILP's
//! moves are compared with the greedy descheduler-style baseline's.

use super::{EndState, OvercommitError};
use crate::balance::usage::{PodUsage, Usage};
use crate::balance::{self, BalanceOptions, Comparison};
use serde::Serialize;

/// Which usage the rebalancer sees for each VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UsageSource {
    /// The peak predicted from the history (what the placement used, before its margin).
    Predicted,
    /// The real peak over the replay period (hindsight: what the nodes actually saw).
    ReplayPeak,
}

/// The rebalancer's result on an end state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RebalanceSummary {
    /// Usage the rebalancer saw.
    pub usage: UsageSource,
    /// The high threshold (fraction of allocatable CPU).
    pub high: f64,
    /// Nodes above `high` before any move.
    pub hot_nodes: usize,
    /// Moves of the MILP plan.
    pub milp_moves: usize,
    /// Whether the MILP plan meets every threshold.
    pub milp_targets_met: bool,
    /// Whether HiGHS proved the MILP plan optimal.
    pub milp_optimal: bool,
    /// Moves of the greedy baseline.
    pub greedy_moves: usize,
    /// Whether the greedy plan meets every threshold.
    pub greedy_targets_met: bool,
}

/// Runs the rebalancer on `end` with the usage `source`.
pub fn rebalance(
    end: &EndState,
    source: UsageSource,
    options: &BalanceOptions,
) -> Result<(RebalanceSummary, Comparison), OvercommitError> {
    let fail = |e: balance::BalanceError| OvercommitError::NoData(format!("rebalance: {e}"));
    let entries: Vec<(String, PodUsage)> = match source {
        UsageSource::Predicted => end
            .predicted
            .by_pod
            .iter()
            .map(|(k, e)| {
                (
                    k.clone(),
                    PodUsage {
                        cpu_milli: e.cpu_milli,
                        memory_bytes: None,
                    },
                )
            })
            .collect(),
        UsageSource::ReplayPeak => end
            .replay_peak_cpu_milli
            .iter()
            .map(|(k, &cpu)| {
                (
                    k.clone(),
                    PodUsage {
                        cpu_milli: cpu,
                        memory_bytes: None,
                    },
                )
            })
            .collect(),
    };
    let cluster = &end.problem.cluster;
    let bound: std::collections::BTreeSet<String> =
        cluster.bound_pods().map(|(_, p, _)| p.key()).collect();
    let usage = Usage::from_keys(
        cluster,
        entries.into_iter().filter(|(k, _)| bound.contains(k)),
    )
    .map_err(fail)?;
    let cmp = balance::balance(&end.problem, &usage, options).map_err(fail)?;
    let hot_nodes = cmp
        .milp
        .before
        .iter()
        .filter(|u| u.cpu > options.high + 1e-9)
        .count();
    let summary = RebalanceSummary {
        usage: source,
        high: options.high,
        hot_nodes,
        milp_moves: cmp.milp.moves.len(),
        milp_targets_met: cmp.milp.targets_met(),
        milp_optimal: cmp.milp.optimal,
        greedy_moves: cmp.greedy.moves.len(),
        greedy_targets_met: cmp.greedy.targets_met(),
    };
    Ok((summary, cmp))
}
