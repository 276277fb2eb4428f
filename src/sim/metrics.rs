//! What a simulation measures: the per-sample time series and the run summary.
//!
//! Cluster figures are kept per node and refreshed only for nodes that changed since the
//! last look (a bind, an unbind, a node event), so sampling at every event costs
//! O(changed nodes × typical pods), not O(nodes). Fragmentation is the FGD paper's
//! measure, computed by [`fgd::node_fragmentation`] against the run's target workload.

use super::event::Time;
use crate::model::{Cluster, NodeId, MILLI_PER_GPU};
use crate::place::score::fgd::{self, TargetWorkload};
use serde::{Deserialize, Serialize};

/// The cluster and queue at one moment (one CSV row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Simulated time, seconds.
    pub time: Time,
    /// Requested CPU / allocatable CPU of live nodes (0 if there is none).
    pub cpu_alloc: f64,
    /// Requested memory / allocatable memory of live nodes.
    pub mem_alloc: f64,
    /// Allocated milli-GPU / milli-GPU of live nodes.
    pub gpu_alloc: f64,
    /// Fragmented milli-GPU summed over live nodes (FGD's measure).
    pub gpu_frag_milli: f64,
    /// `gpu_frag_milli` / milli-GPU of live nodes.
    pub gpu_frag_ratio: f64,
    /// Pods waiting in the queue.
    pub pending: usize,
    /// Pods running.
    pub running: usize,
    /// Pods dropped so far.
    pub dropped: usize,
    /// Live nodes with at least one pod.
    pub nodes_in_use: usize,
    /// Live nodes.
    pub live_nodes: usize,
}

/// Per-node contribution to the totals.
#[derive(Debug, Clone, Copy, Default)]
struct NodeFigures {
    cpu_alloc: u64,
    cpu_used: u64,
    mem_alloc: u64,
    mem_used: u64,
    gpu_total: u64,
    gpu_used: u64,
    frag: f64,
    in_use: bool,
    live: bool,
}

/// Cluster totals kept incrementally.
#[derive(Debug, Clone)]
pub(crate) struct ClusterFigures {
    workload: TargetWorkload,
    /// `model_ok[node][task]`.
    model_ok: Vec<Vec<bool>>,
    per_node: Vec<NodeFigures>,
    dirty: Vec<NodeId>,
    is_dirty: Vec<bool>,
    sum: NodeSums,
}

#[derive(Debug, Clone, Copy, Default)]
struct NodeSums {
    cpu_alloc: u64,
    cpu_used: u64,
    mem_alloc: u128,
    mem_used: u128,
    gpu_total: u64,
    gpu_used: u64,
    frag: f64,
    in_use: usize,
    live: usize,
}

impl NodeSums {
    fn apply(&mut self, f: &NodeFigures, sign: bool) {
        let frag = if f.live { f.frag } else { 0.0 };
        if !f.live {
            return;
        }
        if sign {
            self.cpu_alloc += f.cpu_alloc;
            self.cpu_used += f.cpu_used;
            self.mem_alloc += u128::from(f.mem_alloc);
            self.mem_used += u128::from(f.mem_used);
            self.gpu_total += f.gpu_total;
            self.gpu_used += f.gpu_used;
            self.frag += frag;
            self.in_use += usize::from(f.in_use);
            self.live += 1;
        } else {
            self.cpu_alloc -= f.cpu_alloc;
            self.cpu_used -= f.cpu_used;
            self.mem_alloc -= u128::from(f.mem_alloc);
            self.mem_used -= u128::from(f.mem_used);
            self.gpu_total -= f.gpu_total;
            self.gpu_used -= f.gpu_used;
            self.frag -= frag;
            self.in_use -= usize::from(f.in_use);
            self.live -= 1;
        }
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

impl ClusterFigures {
    /// Figures of an empty cluster (nodes are counted once touched).
    pub(crate) fn new(workload: TargetWorkload) -> Self {
        ClusterFigures {
            workload,
            model_ok: Vec::new(),
            per_node: Vec::new(),
            dirty: Vec::new(),
            is_dirty: Vec::new(),
            sum: NodeSums::default(),
        }
    }

    /// Marks `node` as changed (added, removed, or a pod bound or unbound there).
    pub(crate) fn touch(&mut self, node: NodeId) {
        if self.is_dirty.len() <= node.index() {
            let n = node.index() + 1;
            self.is_dirty.resize(n, false);
            self.per_node.resize(n, NodeFigures::default());
            self.model_ok.resize(n, Vec::new());
        }
        if !self.is_dirty[node] {
            self.is_dirty[node] = true;
            self.dirty.push(node);
        }
    }

    /// Refreshes the changed nodes (a removed node counts for nothing).
    pub(crate) fn refresh(&mut self, cluster: &Cluster) {
        for node in std::mem::take(&mut self.dirty) {
            self.is_dirty[node] = false;
            if let Some(n) = cluster.node(node) {
                if self.model_ok[node].len() != self.workload.pods().len() {
                    // A slot holds one node for good: its model flags are computed once.
                    self.model_ok[node] = self
                        .workload
                        .pods()
                        .iter()
                        .map(|t| t.accepts_model(n.gpu_model()))
                        .collect();
                }
            }
            let old = self.per_node[node];
            self.sum.apply(&old, false);
            let f = self.figures(cluster, node);
            self.sum.apply(&f, true);
            self.per_node[node] = f;
        }
    }

    fn figures(&self, cluster: &Cluster, node: NodeId) -> NodeFigures {
        let Some(n) = cluster.node(node) else {
            return NodeFigures::default();
        };
        let used = cluster.used(node);
        let free = cluster.gpu_free(node);
        let gpu_total = u64::from(n.gpu_count()) * u64::from(MILLI_PER_GPU);
        let gpu_free: u64 = free.iter().map(|&f| u64::from(f)).sum();
        let view = fgd::NodeFree {
            cpu_milli: n.allocatable.cpu_milli.saturating_sub(used.cpu_milli),
            memory_bytes: n.allocatable.memory_bytes.saturating_sub(used.memory_bytes),
            gpu_free: free,
        };
        NodeFigures {
            cpu_alloc: n.allocatable.cpu_milli,
            cpu_used: used.cpu_milli,
            mem_alloc: n.allocatable.memory_bytes,
            mem_used: used.memory_bytes,
            gpu_total,
            gpu_used: gpu_total - gpu_free,
            frag: fgd::node_fragmentation(&view, &self.workload, &self.model_ok[node]),
            in_use: !cluster.pods_on(node).is_empty(),
            live: true,
        }
    }

    /// The current figures as a sample (queue counts filled by the caller).
    pub(crate) fn sample(&self, time: Time) -> Sample {
        let s = &self.sum;
        Sample {
            time,
            cpu_alloc: ratio(s.cpu_used as f64, s.cpu_alloc as f64),
            mem_alloc: ratio(s.mem_used as f64, s.mem_alloc as f64),
            gpu_alloc: ratio(s.gpu_used as f64, s.gpu_total as f64),
            gpu_frag_milli: s.frag.max(0.0),
            gpu_frag_ratio: ratio(s.frag.max(0.0), s.gpu_total as f64),
            pending: 0,
            running: 0,
            dropped: 0,
            nodes_in_use: s.in_use,
            live_nodes: s.live,
        }
    }
}

/// Waiting times (seconds) summarised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaitStats {
    /// Number of placements measured.
    pub count: usize,
    /// Mean wait.
    pub mean: f64,
    /// Median (nearest rank).
    pub p50: Time,
    /// 99th percentile (nearest rank).
    pub p99: Time,
    /// Longest wait.
    pub max: Time,
}

impl WaitStats {
    /// Summarises `waits` (sorted in place).
    pub fn from_waits(waits: &mut [Time]) -> Self {
        if waits.is_empty() {
            return WaitStats::default();
        }
        waits.sort_unstable();
        let rank =
            |q: f64| waits[((q * waits.len() as f64).ceil() as usize).clamp(1, waits.len()) - 1];
        WaitStats {
            count: waits.len(),
            mean: waits.iter().map(|&w| w as f64).sum::<f64>() / waits.len() as f64,
            p50: rank(0.5),
            p99: rank(0.99),
            max: waits[waits.len() - 1],
        }
    }
}

/// Time-weighted means of the sampled figures (the state held between events).
#[derive(Debug, Clone, Default)]
pub(crate) struct TimeMeans {
    last: Option<(Time, Sample)>,
    start: Time,
    area: [f64; 5],
}

impl TimeMeans {
    /// Records that the state `s` holds from `s.time` on.
    pub(crate) fn record(&mut self, s: &Sample) {
        self.close(s.time);
        if self.last.is_none() {
            self.start = s.time;
        }
        self.last = Some((s.time, s.clone()));
    }

    fn close(&mut self, t: Time) {
        if let Some((t0, prev)) = &self.last {
            let dt = t.saturating_sub(*t0) as f64;
            for (a, v) in self.area.iter_mut().zip(Self::values(prev)) {
                *a += dt * v;
            }
        }
    }

    fn values(s: &Sample) -> [f64; 5] {
        [
            s.cpu_alloc,
            s.mem_alloc,
            s.gpu_alloc,
            s.gpu_frag_ratio,
            s.pending as f64,
        ]
    }

    /// Means over `[first sample, end]` of CPU, memory, GPU allocation, fragmentation
    /// ratio and pending count; the last state if the span is empty.
    pub(crate) fn finish(mut self, end: Time) -> [f64; 5] {
        let Some((t_last, last)) = self.last.clone() else {
            return [0.0; 5];
        };
        let end = end.max(t_last);
        self.close(end);
        let span = (end - self.start) as f64;
        if span == 0.0 {
            return Self::values(&last);
        }
        self.area.map(|a| a / span)
    }
}

/// The outcome of one simulated run (deterministic: no wall-clock figures).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Policy name.
    pub policy: String,
    /// Pods in the trace.
    pub pods: usize,
    /// Pods that arrived before the simulation ended.
    pub arrived: usize,
    /// Bindings made (a pod restarted after a node failure counts again).
    pub placements: usize,
    /// Distinct pods placed at least once.
    pub placed_pods: usize,
    /// Pods dropped (drop mode only).
    pub dropped: usize,
    /// Pods still waiting at the end.
    pub still_pending: usize,
    /// Pods still running at the end.
    pub still_running: usize,
    /// Pods sent back to pending by node failures and removals.
    pub evicted: usize,
    /// Node failures and removals processed.
    pub node_losses: usize,
    /// Waiting time from queue entry to binding, over all placements.
    pub wait: WaitStats,
    /// Time-weighted mean CPU allocation of live nodes.
    pub mean_cpu_alloc: f64,
    /// Time-weighted mean memory allocation.
    pub mean_mem_alloc: f64,
    /// Time-weighted mean GPU allocation.
    pub mean_gpu_alloc: f64,
    /// Time-weighted mean GPU fragmentation ratio.
    pub mean_gpu_frag_ratio: f64,
    /// Time-weighted mean number of pending pods.
    pub mean_pending: f64,
    /// Most pods pending at once.
    pub peak_pending: usize,
    /// Most live nodes in use at once.
    pub peak_nodes_in_use: usize,
    /// Batch placement calls (ticks that ran the batch policy).
    pub batch_calls: usize,
    /// Time of the last event processed.
    pub end_time: Time,
    /// Events processed.
    pub events: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut w: Vec<Time> = (1..=100).rev().collect();
        let s = WaitStats::from_waits(&mut w);
        assert_eq!((s.p50, s.p99, s.max, s.count), (50, 99, 100, 100));
        assert!((s.mean - 50.5).abs() < 1e-12);
        assert_eq!(WaitStats::from_waits(&mut []), WaitStats::default());
    }
}
