//! Fragmentation-aware scoring in the spirit of Weng et al., "Beware of Fragmentation:
//! Scheduling GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC 2023
//! (FGD), following the paper's simulator (`hkust-adsl/kubernetes-scheduler-simulator`,
//! `pkg/utils/frag.go` and `plugin/fgd_score.go`).
//!
//! A *target workload* is a list of typical pod specs with their frequencies. A node's
//! fragmentation for one typical task is the free milli-GPU on the node that task could
//! not use: all of it if the task cannot run on the node at all (CPU, memory, GPU model or
//! not enough devices with room), otherwise the free milli of every device with less free
//! than the task's per-device need (for whole-GPU tasks: every partly used device). The
//! node's fragmentation is the frequency-weighted sum over the workload; FGD places a pod
//! where that sum grows least (for a GPU share, on the device where it grows least).

use crate::model::{GpuAmount, Pod, MILLI_PER_GPU};
use std::collections::BTreeMap;

/// Default share of pending pods the typical specs must cover (the paper's 95 %).
pub const DEFAULT_COVERAGE: f64 = 0.95;

/// At most this many typical specs are kept, whatever the coverage: FGD's cost per
/// candidate node grows with the number of specs, and very diverse workloads (every pod
/// a different size) would otherwise make every pod typical.
pub const MAX_TYPICAL_PODS: usize = 64;

/// One typical pod spec of a target workload.
#[derive(Debug, Clone, PartialEq)]
pub struct TypicalPod {
    /// CPU request, millicores.
    pub cpu_milli: u64,
    /// Memory request, bytes.
    pub memory_bytes: u64,
    /// GPU request.
    pub gpu: GpuAmount,
    /// Acceptable GPU models (empty = any).
    pub models: Vec<String>,
    /// Share of the workload, in `0..=1`; a workload's frequencies sum to 1.
    pub frequency: f64,
}

impl TypicalPod {
    /// Whether a node with GPU model `model` (or none) is acceptable to this task.
    pub fn accepts_model(&self, model: Option<&str>) -> bool {
        match model {
            None => !self.gpu.is_some(),
            Some(m) => self.models.is_empty() || self.models.iter().any(|x| x == m),
        }
    }
}

/// The typical pod specs FGD measures fragmentation against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetWorkload {
    pods: Vec<TypicalPod>,
}

impl TargetWorkload {
    /// A workload from explicit specs; frequencies are renormalised to sum to 1 (specs
    /// with non-positive or non-finite frequency are dropped).
    pub fn new(pods: Vec<TypicalPod>) -> Self {
        let mut pods: Vec<TypicalPod> = pods
            .into_iter()
            .filter(|p| p.frequency.is_finite() && p.frequency > 0.0)
            .collect();
        let total: f64 = pods.iter().map(|p| p.frequency).sum();
        for p in &mut pods {
            p.frequency /= total;
        }
        TargetWorkload { pods }
    }

    /// The typical specs of `pods`, as the paper's simulator derives them: GPU-requesting
    /// pods grouped by (CPU, GPU request, GPU models) — memory is not part of the key;
    /// each spec carries its group's (lower) median memory request — most frequent first
    /// (ties by spec, ascending), taken until they cover `coverage` of the GPU pods or
    /// [`MAX_TYPICAL_PODS`] specs are taken; frequencies renormalised over the kept
    /// specs. CPU-only pods are left out, as in the paper's simulator by default: for them
    /// every free GPU counts as fragment whatever the placement, which does not steer
    /// choices.
    pub fn from_pods<'a>(pods: impl IntoIterator<Item = &'a Pod>, coverage: f64) -> Self {
        type Key = (u64, u8, u32, Vec<String>);
        let mut groups: BTreeMap<Key, Vec<u64>> = BTreeMap::new();
        let mut total = 0u64;
        for p in pods {
            let (tag, n) = match p.gpu.amount {
                GpuAmount::None => continue,
                GpuAmount::Shared(m) => (0u8, m),
                GpuAmount::Whole(n) => (1u8, n),
            };
            let mut models = p.gpu.models.clone();
            models.sort();
            let key = (p.requests.cpu_milli, tag, n, models);
            groups.entry(key).or_default().push(p.requests.memory_bytes);
            total += 1;
        }
        let mut specs: Vec<(Key, Vec<u64>)> = groups.into_iter().collect();
        // Stable sort keeps the ascending key order among equal counts.
        specs.sort_by_key(|s| std::cmp::Reverse(s.1.len()));
        let needed = coverage.clamp(0.0, 1.0) * total as f64;
        let mut covered = 0u64;
        let mut out = Vec::new();
        for ((cpu, tag, n, models), mut mems) in specs {
            if (covered as f64 >= needed && !out.is_empty()) || out.len() == MAX_TYPICAL_PODS {
                break;
            }
            covered += mems.len() as u64;
            mems.sort_unstable();
            out.push(TypicalPod {
                cpu_milli: cpu,
                memory_bytes: mems[(mems.len() - 1) / 2],
                gpu: if tag == 0 {
                    GpuAmount::Shared(n)
                } else {
                    GpuAmount::Whole(n)
                },
                models,
                frequency: mems.len() as f64,
            });
        }
        TargetWorkload::new(out)
    }

    /// A workload from explicit specs whose frequencies are kept as given (finite, in
    /// `(0, 1]`; others are dropped): for a subset of another workload's specs, whose
    /// frequencies then sum to less than 1 (CBF's GPU specs of the paper's workload).
    pub fn with_frequencies(pods: Vec<TypicalPod>) -> Self {
        TargetWorkload {
            pods: pods
                .into_iter()
                .filter(|p| p.frequency.is_finite() && p.frequency > 0.0 && p.frequency <= 1.0)
                .collect(),
        }
    }

    /// The workload's CPU per GPU milli over its GPU specs, `Σ f · cpu / Σ f · milli`
    /// (CBF's `ρ`); 1 without GPU specs or GPU demand.
    pub fn cpu_per_gpu_milli(&self) -> f64 {
        let (mut cpu, mut gpu) = (0.0, 0.0);
        for p in &self.pods {
            let milli = p.gpu.total_milli();
            if milli > 0 {
                cpu += p.frequency * p.cpu_milli as f64;
                gpu += p.frequency * milli as f64;
            }
        }
        let rho = cpu / gpu;
        if rho.is_finite() && rho > 0.0 {
            rho
        } else {
            1.0
        }
    }

    /// The typical specs, most frequent first.
    pub fn pods(&self) -> &[TypicalPod] {
        &self.pods
    }

    /// True if there are no typical specs (FGD then scores every node alike).
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }
}

/// The free resources of one node as fragmentation sees them.
#[derive(Debug, Clone, Copy)]
pub struct NodeFree<'a> {
    /// Free CPU, millicores.
    pub cpu_milli: u64,
    /// Free memory, bytes.
    pub memory_bytes: u64,
    /// Free milli-GPU per device.
    pub gpu_free: &'a [u32],
}

/// Free milli-GPU on the node that `task` could not use (see the module docs).
/// `model_ok` says whether the node's GPU model is acceptable to the task.
pub fn task_fragment(node: &NodeFree<'_>, task: &TypicalPod, model_ok: bool) -> u64 {
    let total: u64 = node.gpu_free.iter().map(|&f| u64::from(f)).sum();
    let (count, per_device) = match task.gpu {
        GpuAmount::None => return total,
        GpuAmount::Shared(m) => (1, m),
        GpuAmount::Whole(n) => (n, MILLI_PER_GPU),
    };
    if !model_ok || node.cpu_milli < task.cpu_milli || node.memory_bytes < task.memory_bytes {
        return total;
    }
    let roomy = node.gpu_free.iter().filter(|&&f| f >= per_device).count() as u32;
    if roomy < count {
        return total;
    }
    node.gpu_free
        .iter()
        .filter(|&&f| f < per_device)
        .map(|&f| u64::from(f))
        .sum()
}

/// A node's fragmentation against a workload: `Σ frequency · task_fragment`.
/// `model_ok[t]` says whether the node's GPU model suits typical task `t`.
pub fn node_fragmentation(
    node: &NodeFree<'_>,
    workload: &TargetWorkload,
    model_ok: &[bool],
) -> f64 {
    if node.gpu_free.is_empty() {
        return 0.0;
    }
    workload
        .pods
        .iter()
        .zip(model_ok)
        .map(|(t, &ok)| t.frequency * task_fragment(node, t, ok) as f64)
        .sum()
}

/// FGD's score from the fragmentation before and after a placement, as the paper's
/// plugin maps it: `100 · sigmoid((before - after) / 1000)`, so a placement that grows
/// fragmentation least scores highest (kept as a float: no truncation to integers).
pub fn fgd_score(before: f64, after: f64) -> f64 {
    let x = (before - after) / 1000.0;
    100.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(cpu: u64, gpu: GpuAmount, f: f64) -> TypicalPod {
        TypicalPod {
            cpu_milli: cpu,
            memory_bytes: 0,
            gpu,
            models: vec![],
            frequency: f,
        }
    }

    #[test]
    fn fragment_per_task() {
        let free = [1000, 300, 0, 600];
        let n = NodeFree {
            cpu_milli: 8000,
            memory_bytes: 1 << 30,
            gpu_free: &free,
        };
        // A 500 share can run: the 300 device is a fragment.
        assert_eq!(
            task_fragment(&n, &task(1000, GpuAmount::Shared(500), 1.0), true),
            300
        );
        // A whole GPU task: partly used devices (300, 600) are fragments.
        assert_eq!(
            task_fragment(&n, &task(1000, GpuAmount::Whole(1), 1.0), true),
            900
        );
        // Two whole GPUs cannot run: everything is a fragment.
        assert_eq!(
            task_fragment(&n, &task(1000, GpuAmount::Whole(2), 1.0), true),
            1900
        );
        // Not enough CPU: everything.
        assert_eq!(
            task_fragment(&n, &task(9000, GpuAmount::Shared(100), 1.0), true),
            1900
        );
        assert_eq!(
            task_fragment(&n, &task(1, GpuAmount::Shared(100), 1.0), false),
            1900
        );
        let w = TargetWorkload::new(vec![
            task(1000, GpuAmount::Shared(500), 3.0),
            task(1000, GpuAmount::Whole(1), 1.0),
        ]);
        let f = node_fragmentation(&n, &w, &[true, true]);
        assert!((f - (0.75 * 300.0 + 0.25 * 900.0)).abs() < 1e-9);
    }

    #[test]
    fn typical_pods_cover_the_most_frequent_specs() {
        let mk = |cpu: u64, gpu: GpuAmount| Pod {
            requests: crate::model::Resources::cpu_mem(cpu, 0),
            gpu: crate::model::GpuRequest {
                amount: gpu,
                models: vec![],
            },
            ..Default::default()
        };
        let mut pods = vec![mk(1, GpuAmount::Shared(500)); 19];
        pods.push(mk(2, GpuAmount::Whole(1)));
        pods.push(mk(3, GpuAmount::None));
        let w = TargetWorkload::from_pods(&pods, 0.95);
        assert_eq!(w.pods().len(), 1, "19/20 = 95% covered by the first spec");
        assert_eq!(w.pods()[0].frequency, 1.0);
        let w = TargetWorkload::from_pods(&pods, 1.0);
        assert_eq!(w.pods().len(), 2);
        assert!((w.pods()[1].frequency - 0.05).abs() < 1e-12);
    }
}
