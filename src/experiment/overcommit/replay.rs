//! Replays the test period over a static placement and counts overloaded node-intervals.
//!
//! A step is *observed* if at least one VM (placed or not) has a sample in it; steps with
//! no sample at all (the trace's gaps) are left out so they cannot dilute the rate. In an
//! observed step, a VM without a sample counts as using nothing. A node-interval is one
//! used node (a node holding at least one placed VM) in one observed step; it is
//! overloaded when the sum of its VMs' usage is strictly above the node's capacity.

use super::workload::VmWorkload;
use serde::Serialize;

/// Overloads of one placement over the replay.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OverloadCount {
    /// Steps with at least one sample.
    pub observed_steps: usize,
    /// Used nodes × observed steps.
    pub node_intervals: usize,
    /// Node-intervals whose CPU usage exceeds the node's CPU.
    pub cpu_overloaded: usize,
    /// Node-intervals whose memory usage exceeds the node's memory.
    pub memory_overloaded: usize,
    /// Mean CPU usage / CPU capacity over the node-intervals.
    pub mean_cpu_utilisation: f64,
    /// Highest CPU usage / CPU capacity of any node-interval.
    pub peak_cpu_utilisation: f64,
}

impl OverloadCount {
    /// CPU-overloaded node-intervals in percent (0 if there are none).
    pub fn cpu_overloaded_percent(&self) -> f64 {
        percent(self.cpu_overloaded, self.node_intervals)
    }

    /// Memory-overloaded node-intervals in percent.
    pub fn memory_overloaded_percent(&self) -> f64 {
        percent(self.memory_overloaded, self.node_intervals)
    }
}

fn percent(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

/// Counts overloads: `node_of[i]` is the node of `vms[i]` (`None`: not placed); every
/// node has `node_cpu_cores` and `node_memory_bytes`. Every VM's replay vectors must
/// have the same length.
pub fn count_overloads(
    vms: &[VmWorkload],
    node_of: &[Option<usize>],
    node_cpu_cores: f64,
    node_memory_bytes: f64,
) -> OverloadCount {
    let steps = vms
        .iter()
        .map(|v| v.replay_cpu_cores.len())
        .max()
        .unwrap_or(0);
    let mut used: Vec<usize> = node_of.iter().flatten().copied().collect();
    used.sort_unstable();
    used.dedup();
    let slot = |n: usize| used.binary_search(&n).ok();
    let mut out = OverloadCount::default();
    let mut util_sum = 0.0;
    let mut cpu = vec![0.0; used.len()];
    let mut mem = vec![0.0; used.len()];
    for k in 0..steps {
        if !vms.iter().any(|v| v.replay_cpu_cores[k].is_some()) {
            continue;
        }
        out.observed_steps += 1;
        cpu.fill(0.0);
        mem.fill(0.0);
        for (v, n) in vms.iter().zip(node_of) {
            if let Some(s) = n.and_then(slot) {
                cpu[s] += v.replay_cpu_cores[k].unwrap_or(0.0);
                mem[s] += v.replay_memory_bytes[k].unwrap_or(0.0);
            }
        }
        for s in 0..used.len() {
            out.node_intervals += 1;
            out.cpu_overloaded += usize::from(cpu[s] > node_cpu_cores);
            out.memory_overloaded += usize::from(mem[s] > node_memory_bytes);
            let u = cpu[s] / node_cpu_cores;
            util_sum += u;
            out.peak_cpu_utilisation = out.peak_cpu_utilisation.max(u);
        }
    }
    if out.node_intervals > 0 {
        out.mean_cpu_utilisation = util_sum / out.node_intervals as f64;
    }
    out
}
