//! Bitbrains VMs as pods with a usage history and a replay period, split by time.
//!
//! One split time for every VM: `t0 + history_fraction × (t1 − t0)`, where `t0` and `t1`
//! are the first and last timestamps over all VMs. Samples before it are the history
//! (the only data an estimator sees); from it on, time is cut into steps of
//! `step_seconds` and each VM's usage in a step is its last sample in that step (`None`
//! if it has none: the trace has gaps, and VM 14 of 2013-7 only starts near the end).

use super::OvercommitError;
use crate::datasets::bitbrains::VmSeries;

/// One VM as a pod: its request (provisioned size) and CPU/memory usage.
#[derive(Debug, Clone, PartialEq)]
pub struct VmWorkload {
    /// Pod name, `vm-<file stem>`.
    pub name: String,
    /// CPU request: the provisioned cores (the most the file shows) × 1000.
    pub cpu_request_milli: u64,
    /// Memory request: the provisioned memory (the most the file shows), bytes.
    pub memory_request_bytes: u64,
    /// Times of the history samples, epoch seconds (same order as `history_cpu_cores`).
    pub history_times: Vec<i64>,
    /// CPU used before the split, cores, in time order.
    pub history_cpu_cores: Vec<f64>,
    /// Memory used before the split, bytes, in time order.
    pub history_memory_bytes: Vec<f64>,
    /// CPU used in each replay step, cores (`None`: no sample in that step).
    pub replay_cpu_cores: Vec<Option<f64>>,
    /// Memory used in each replay step, bytes.
    pub replay_memory_bytes: Vec<Option<f64>>,
}

/// Every VM, split at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct Workloads {
    /// The VMs, in input order.
    pub vms: Vec<VmWorkload>,
    /// First replay instant, epoch seconds (history is strictly before it).
    pub split_time: i64,
    /// Replay step, seconds.
    pub step_seconds: i64,
    /// Number of replay steps (every `replay_*` vector has this length).
    pub steps: usize,
}

/// Splits `vms` by time (see the module docs). `history_fraction` must be in (0, 1) and
/// `step_seconds` positive; a VM with no CPU cores or no samples is an error naming it.
pub fn split(
    vms: &[VmSeries],
    history_fraction: f64,
    step_seconds: i64,
) -> Result<Workloads, OvercommitError> {
    if !(history_fraction > 0.0 && history_fraction < 1.0) {
        return Err(OvercommitError::InvalidOption {
            name: "history-fraction",
            msg: format!("{history_fraction} is not in (0, 1)"),
        });
    }
    if step_seconds <= 0 {
        return Err(OvercommitError::InvalidOption {
            name: "step",
            msg: format!("{step_seconds} s is not a positive step"),
        });
    }
    let series: Vec<VmSeries> = vms.iter().map(|v| v.dedup_by_time().0).collect();
    let t0 = series.iter().filter_map(|s| s.timestamps.first()).min();
    let t1 = series.iter().filter_map(|s| s.timestamps.last()).max();
    let (Some(&t0), Some(&t1)) = (t0, t1) else {
        return Err(OvercommitError::NoData("no VM has any sample".into()));
    };
    let split_time = t0 + ((t1 - t0) as f64 * history_fraction).round() as i64;
    let steps = ((t1 - split_time) / step_seconds + 1) as usize;
    let vms = series
        .iter()
        .map(|s| one_vm(s, split_time, step_seconds, steps))
        .collect::<Result<_, _>>()?;
    Ok(Workloads {
        vms,
        split_time,
        step_seconds,
        steps,
    })
}

fn one_vm(
    s: &VmSeries,
    split_time: i64,
    step_seconds: i64,
    steps: usize,
) -> Result<VmWorkload, OvercommitError> {
    let cores = s.cpu_cores.iter().copied().max().unwrap_or(0);
    let mhz_per_core = s
        .cpu_cores
        .iter()
        .zip(&s.cpu_provisioned_mhz)
        .filter(|(c, _)| **c > 0)
        .map(|(c, m)| m / f64::from(*c))
        .fold(0.0, f64::max);
    if cores == 0 || mhz_per_core <= 0.0 {
        return Err(OvercommitError::NoData(format!(
            "VM {}: no row with CPU cores and provisioned MHz",
            s.name
        )));
    }
    let mem_kb = s.mem_provisioned_kb.iter().copied().fold(0.0, f64::max);
    let mut w = VmWorkload {
        name: format!("vm-{}", s.name),
        cpu_request_milli: u64::from(cores) * 1000,
        memory_request_bytes: (mem_kb * 1024.0).round() as u64,
        history_times: Vec::new(),
        history_cpu_cores: Vec::new(),
        history_memory_bytes: Vec::new(),
        replay_cpu_cores: vec![None; steps],
        replay_memory_bytes: vec![None; steps],
    };
    for i in 0..s.len() {
        let cpu = (s.cpu_usage_mhz[i] / mhz_per_core).max(0.0);
        let mem = (s.mem_usage_kb[i] * 1024.0).max(0.0);
        let t = s.timestamps[i];
        if t < split_time {
            w.history_times.push(t);
            w.history_cpu_cores.push(cpu);
            w.history_memory_bytes.push(mem);
        } else {
            // Sorted by time: a later sample in the same step overwrites an earlier one.
            let k = ((t - split_time) / step_seconds) as usize;
            w.replay_cpu_cores[k] = Some(cpu);
            w.replay_memory_bytes[k] = Some(mem);
        }
    }
    Ok(w)
}
