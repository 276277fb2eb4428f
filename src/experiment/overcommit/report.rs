//! The experiment's results: one row per (policy, mode), as a table or JSON.

use super::replay::OverloadCount;
use super::workload::Workloads;
use super::OvercommitConfig;
use crate::place::SolveStats;
use serde::Serialize;

/// One placement's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModeResult {
    /// `request` (packed by requests) or `usage` (packed by predicted peaks).
    pub mode: String,
    /// Policy name.
    pub policy: String,
    /// Predictor name (usage mode only).
    pub predictor: Option<String>,
    /// VMs placed.
    pub placed: usize,
    /// VMs left pending.
    pub unplaced: usize,
    /// Nodes holding at least one VM.
    pub nodes_used: usize,
    /// `placed / nodes_used` (0 if no node is used).
    pub pods_per_node: f64,
    /// Pods per node relative to the same policy's request mode, percent (usage rows).
    pub pods_per_node_gain_percent: Option<f64>,
    /// CPU-overloaded node-intervals, percent.
    pub cpu_overloaded_percent: f64,
    /// Memory-overloaded node-intervals, percent.
    pub memory_overloaded_percent: f64,
    /// The replay's counts.
    pub overloads: OverloadCount,
    /// Seconds the policy took.
    pub solve_seconds: f64,
    /// True if the MILP fell back to its greedy warm start.
    pub fell_back: bool,
}

impl ModeResult {
    /// Builds the row of one placement (`node_of[i]`: node of VM `i`).
    pub fn new(
        mode: &str,
        policy: &str,
        predictor: Option<String>,
        node_of: &[Option<usize>],
        overloads: OverloadCount,
        stats: &SolveStats,
    ) -> Self {
        let placed = node_of.iter().flatten().count();
        let mut nodes: Vec<usize> = node_of.iter().flatten().copied().collect();
        nodes.sort_unstable();
        nodes.dedup();
        let nodes_used = nodes.len();
        ModeResult {
            mode: mode.to_string(),
            policy: policy.to_string(),
            predictor,
            placed,
            unplaced: node_of.len() - placed,
            nodes_used,
            pods_per_node: if nodes_used == 0 {
                0.0
            } else {
                placed as f64 / nodes_used as f64
            },
            pods_per_node_gain_percent: None,
            cpu_overloaded_percent: overloads.cpu_overloaded_percent(),
            memory_overloaded_percent: overloads.memory_overloaded_percent(),
            overloads,
            solve_seconds: stats.solve_seconds,
            fell_back: stats.fell_back,
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OvercommitReport {
    /// Number of VMs.
    pub vms: usize,
    /// VMs with an estimate (a non-empty history).
    pub estimated_vms: usize,
    /// Cores per node.
    pub node_cpu_cores: f64,
    /// Memory per node, GiB.
    pub node_memory_gib: f64,
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Safety margin of the usage mode.
    pub margin: f64,
    /// Whether memory was also packed by usage.
    pub memory_by_usage: bool,
    /// Predictor of the usage mode.
    pub predictor: String,
    /// First replay instant, epoch seconds.
    pub split_time: i64,
    /// Replay steps (observed or not).
    pub steps: usize,
    /// One row per policy and mode, request mode first.
    pub results: Vec<ModeResult>,
    /// The rebalancer on the first policy's usage-mode end state, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<super::rebalance::RebalanceSummary>,
}

impl OvercommitReport {
    /// Assembles the report and fills each usage row's gain over its request row.
    pub fn new(
        workloads: &Workloads,
        config: &OvercommitConfig,
        predictor: String,
        estimated_vms: usize,
        mut results: Vec<ModeResult>,
    ) -> Self {
        for i in 0..results.len() {
            if results[i].mode != "usage" {
                continue;
            }
            let base = results
                .iter()
                .find(|r| r.mode == "request" && r.policy == results[i].policy)
                .map(|r| r.pods_per_node);
            if let Some(b) = base.filter(|b| *b > 0.0) {
                results[i].pods_per_node_gain_percent =
                    Some(100.0 * (results[i].pods_per_node / b - 1.0));
            }
        }
        OvercommitReport {
            vms: workloads.vms.len(),
            estimated_vms,
            node_cpu_cores: config.node_cpu_milli as f64 / 1000.0,
            node_memory_gib: config.node_memory_bytes as f64 / f64::from(1u32 << 30),
            nodes: config.nodes.unwrap_or(workloads.vms.len()),
            margin: config.usage.margin,
            memory_by_usage: config.usage.memory_by_usage,
            predictor,
            split_time: workloads.split_time,
            steps: workloads.steps,
            results,
            rebalance: None,
        }
    }

    /// A text table, one row per result, then one line on the setup.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<14} {:<8} {:>6} {:>6} {:>6} {:>9} {:>8} {:>9} {:>8} {:>8} {:>8}\n",
            "POLICY",
            "MODE",
            "PLACED",
            "NODES",
            "POD/N",
            "GAIN%",
            "CPU-OVL%",
            "MEM-OVL%",
            "MEANCPU%",
            "PEAKCPU%",
            "SECONDS"
        );
        for r in &self.results {
            let gain = r
                .pods_per_node_gain_percent
                .map_or_else(|| "-".to_string(), |g| format!("{g:+.1}"));
            s += &format!(
                "{:<14} {:<8} {:>6} {:>6} {:>6.2} {:>9} {:>8.3} {:>9.3} {:>8.1} {:>8.1} {:>8.3}\n",
                r.policy,
                r.mode,
                r.placed,
                r.nodes_used,
                r.pods_per_node,
                gain,
                r.cpu_overloaded_percent,
                r.memory_overloaded_percent,
                100.0 * r.overloads.mean_cpu_utilisation,
                100.0 * r.overloads.peak_cpu_utilisation,
                r.solve_seconds
            );
        }
        let observed = self
            .results
            .first()
            .map_or(0, |r| r.overloads.observed_steps);
        s += &format!(
            "{} VMs ({} with an estimate) on {} nodes of {} cores / {:.0} GiB; predictor {}, margin {}, memory by {}; replay {} observed of {} steps\n",
            self.vms,
            self.estimated_vms,
            self.nodes,
            self.node_cpu_cores,
            self.node_memory_gib,
            self.predictor,
            self.margin,
            if self.memory_by_usage { "usage" } else { "request" },
            observed,
            self.steps
        );
        s
    }
}
