//! The per-cluster state behind every online decision: a compact row of numbers per node
//! (kept in sync as pods are bound and removed), a cache of the static filter results per
//! distinct pod signature, and the filter → score → pick loop.

use super::soft::{self, SoftInputs, StaticEntry};
use super::OnlineKind;
use crate::model::{Binding, Cluster, ClusterError, GpuAmount, NodeId, Pod, PodId, MILLI_PER_GPU};
use crate::place::filter::FilterContext;
use crate::place::score::fgd::{self, NodeFree, TargetWorkload};
use crate::place::score::{self, Dim, GpuAffinity, ResourceUse};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::borrow::Cow;
use std::collections::HashMap;

/// Numbers of one node the hot loop reads.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NodeRow {
    pub alloc_cpu: u64,
    pub alloc_mem: u64,
    pub alloc_eph: u64,
    pub alloc_pods: u64,
    pub used_cpu: u64,
    pub used_mem: u64,
    pub used_eph: u64,
    pub used_pods: u64,
    /// kube's non-zero requested sums (scoring only).
    pub nz_cpu: u64,
    pub nz_mem: u64,
    pub gpu_count: u32,
    pub gpu_max_free: u32,
    pub gpu_whole_free: u32,
    pub gpu_free_total: u32,
}

/// What the hot loop needs of the pod being placed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PodReq {
    pub cpu: u64,
    pub mem: u64,
    pub eph: u64,
    pub nz_cpu: u64,
    pub nz_mem: u64,
    pub gpu: GpuAmount,
}

impl PodReq {
    pub fn of(pod: &Pod) -> Self {
        let (nz_cpu, nz_mem) =
            score::non_zero_request(pod.requests.cpu_milli, pod.requests.memory_bytes);
        PodReq {
            cpu: pod.requests.cpu_milli,
            mem: pod.requests.memory_bytes,
            eph: pod.requests.ephemeral_storage_bytes,
            nz_cpu,
            nz_mem,
            gpu: pod.gpu.amount,
        }
    }

    fn gpu_milli(&self) -> u64 {
        self.gpu.total_milli()
    }
}

/// A feasible node with its scores for one pod.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub node: u32,
    /// Index into the static entry's node list (for the static soft scores).
    pub slot: u32,
    pub main: f64,
    /// Device chosen by the score (FGD shares), `u32::MAX` for the default choice.
    pub device: u32,
    pub total: f64,
}

/// The engine: a cluster (borrowed for one-off queries, owned for sessions) and the
/// derived state.
#[derive(Debug, Clone)]
pub(crate) struct Engine<'a> {
    pub kind: OnlineKind,
    pub cluster: Cow<'a, Cluster>,
    rows: Vec<NodeRow>,
    /// GPU request types (and pod counts) on each node, for GPU clustering.
    gpu_types: Vec<Vec<(GpuAmount, u32)>>,
    statics: Vec<StaticEntry>,
    static_index: HashMap<u64, Vec<usize>>,
    workload: Option<TargetWorkload>,
    /// `fgd_model_ok[t * nodes + n]`: typical task `t` accepts node `n`'s GPU model.
    fgd_model_ok: Vec<bool>,
    /// Cached fragmentation per node (NaN = stale).
    fgd_frag: Vec<f64>,
    buf: Vec<Candidate>,
    scratch_gpu: Vec<u32>,
}

impl<'a> Engine<'a> {
    pub fn new(kind: OnlineKind, cluster: Cow<'a, Cluster>) -> Self {
        let n = cluster.nodes().len();
        let mut e = Engine {
            kind,
            rows: vec![NodeRow::default(); n],
            gpu_types: vec![Vec::new(); n],
            statics: Vec::new(),
            static_index: HashMap::new(),
            workload: None,
            fgd_model_ok: Vec::new(),
            fgd_frag: vec![f64::NAN; n],
            buf: Vec::with_capacity(n),
            scratch_gpu: Vec::new(),
            cluster,
        };
        for id in 0..n {
            e.refresh_row(id);
        }
        let bound: Vec<(NodeId, u64, u64, GpuAmount)> = e
            .cluster
            .bound_pods()
            .map(|(_, p, b)| {
                let (c, m) = score::non_zero_request(p.requests.cpu_milli, p.requests.memory_bytes);
                (b.node, c, m, p.gpu.amount)
            })
            .collect();
        for (node, c, m, g) in bound {
            e.rows[node].nz_cpu += c;
            e.rows[node].nz_mem += m;
            e.add_gpu_type(node, g);
        }
        e
    }

    fn refresh_row(&mut self, id: NodeId) {
        let node = &self.cluster.nodes()[id];
        let used = self.cluster.used(id);
        let free = self.cluster.gpu_free(id);
        let r = &mut self.rows[id];
        r.alloc_cpu = node.allocatable.cpu_milli;
        r.alloc_mem = node.allocatable.memory_bytes;
        r.alloc_eph = node.allocatable.ephemeral_storage_bytes;
        r.alloc_pods = node.allocatable.pods;
        r.used_cpu = used.cpu_milli;
        r.used_mem = used.memory_bytes;
        r.used_eph = used.ephemeral_storage_bytes;
        r.used_pods = used.pods;
        r.gpu_count = free.len() as u32;
        r.gpu_max_free = free.iter().copied().max().unwrap_or(0);
        r.gpu_whole_free = free.iter().filter(|&&f| f == MILLI_PER_GPU).count() as u32;
        r.gpu_free_total = free.iter().sum();
        if let Some(f) = self.fgd_frag.get_mut(id) {
            *f = f64::NAN;
        }
    }

    fn add_gpu_type(&mut self, node: NodeId, g: GpuAmount) {
        if !g.is_some() {
            return;
        }
        let t = &mut self.gpu_types[node];
        match t.iter_mut().find(|(a, _)| *a == g) {
            Some((_, c)) => *c += 1,
            None => t.push((g, 1)),
        }
    }

    fn remove_gpu_type(&mut self, node: NodeId, g: GpuAmount) {
        let t = &mut self.gpu_types[node];
        if let Some(i) = t.iter().position(|(a, _)| *a == g) {
            t[i].1 -= 1;
            if t[i].1 == 0 {
                t.swap_remove(i);
            }
        }
    }

    /// Sets FGD's target workload (and invalidates cached fragmentation).
    pub fn set_workload(&mut self, w: TargetWorkload) {
        let nodes = self.cluster.nodes();
        let mut ok = Vec::with_capacity(w.pods().len() * nodes.len());
        for t in w.pods() {
            ok.extend(nodes.iter().map(|n| t.accepts_model(n.gpu_model())));
        }
        self.fgd_model_ok = ok;
        self.fgd_frag.iter_mut().for_each(|f| *f = f64::NAN);
        self.workload = Some(w);
    }

    pub fn workload(&self) -> Option<&TargetWorkload> {
        self.workload.as_ref()
    }

    /// Index of the static entry for `pod`'s signature, computed on first use.
    fn static_entry(&mut self, pod: &Pod) -> usize {
        let h = soft::signature_hash(pod);
        if let Some(list) = self.static_index.get(&h) {
            if let Some(&i) = list.iter().find(|&&i| self.statics[i].key.matches(pod)) {
                return i;
            }
        }
        let entry = StaticEntry::build(&self.cluster, pod);
        self.statics.push(entry);
        let i = self.statics.len() - 1;
        self.static_index.entry(h).or_default().push(i);
        i
    }

    /// Binds `pod` to `b.node` with `b.gpu_devices`, keeping rows in sync.
    pub fn bind(&mut self, pod: Pod, b: &Binding) -> Result<PodId, ClusterError> {
        let (c, m) = score::non_zero_request(pod.requests.cpu_milli, pod.requests.memory_bytes);
        let g = pod.gpu.amount;
        let id = self
            .cluster
            .to_mut()
            .bind(pod, b.node, Some(b.gpu_devices.clone()))?;
        self.refresh_row(b.node);
        self.rows[b.node].nz_cpu += c;
        self.rows[b.node].nz_mem += m;
        self.add_gpu_type(b.node, g);
        Ok(id)
    }

    /// Removes a bound pod, keeping rows in sync.
    pub fn unbind(&mut self, id: PodId) -> Result<(Pod, Binding), ClusterError> {
        let (pod, b) = self.cluster.to_mut().unbind(id)?;
        let (c, m) = score::non_zero_request(pod.requests.cpu_milli, pod.requests.memory_bytes);
        self.refresh_row(b.node);
        let r = &mut self.rows[b.node];
        r.nz_cpu = r.nz_cpu.saturating_sub(c);
        r.nz_mem = r.nz_mem.saturating_sub(m);
        self.remove_gpu_type(b.node, pod.gpu.amount);
        Ok((pod, b))
    }

    /// Fills `self.buf` with every feasible node (ascending index) and its total score
    /// (highest best); `first_only` stops at the first feasible node (first-fit).
    /// First-fit and random do not score.
    fn evaluate(&mut self, pod: &Pod, first_only: bool) {
        self.buf.clear();
        let si = self.static_entry(pod);
        if self.kind == OnlineKind::Fgd {
            self.ensure_workload(pod);
        }
        let q = PodReq::of(pod);
        let cluster: &Cluster = &self.cluster;
        let ctx = FilterContext::new(cluster, pod);
        let slow = ctx.has_inter_pod_checks()
            || !pod.host_ports.is_empty()
            || pod.requests.extended.values().any(|&v| v > 0);
        let scores = !matches!(self.kind, OnlineKind::FirstFit | OnlineKind::Random);
        let entry = &self.statics[si];
        for (slot, sn) in entry.nodes.iter().enumerate() {
            let n = sn.id as usize;
            let r = &self.rows[n];
            if !fits(r, &q) || (slow && ctx.check_dynamic(n).is_err()) {
                continue;
            }
            let (main, device) = if scores {
                main_score(
                    self.kind,
                    r,
                    &q,
                    cluster.gpu_free(n),
                    &self.gpu_types[n],
                    FgdState {
                        workload: self.workload.as_ref(),
                        model_ok: &self.fgd_model_ok,
                        nodes: self.rows.len(),
                        node: n,
                        before: &mut self.fgd_frag[n],
                        scratch: &mut self.scratch_gpu,
                    },
                )
            } else {
                (0.0, u32::MAX)
            };
            self.buf.push(Candidate {
                node: sn.id,
                slot: slot as u32,
                main,
                device,
                total: main,
            });
            if first_only {
                break;
            }
        }
        if scores && !self.buf.is_empty() {
            let (w_main, w) = weights(self.kind);
            soft::add_soft_scores(SoftInputs {
                cluster,
                pod,
                entry,
                candidates: &mut self.buf,
                main_weight: w_main,
                weights: w,
            });
        }
    }

    fn ensure_workload(&mut self, pod: &Pod) {
        if self.workload.is_none() {
            let pods: Vec<&Pod> = self
                .cluster
                .bound_pods()
                .map(|(_, p, _)| p)
                .chain(std::iter::once(pod))
                .collect();
            self.set_workload(TargetWorkload::from_pods(pods, fgd::DEFAULT_COVERAGE));
        }
    }

    /// Every feasible node with its total score, ascending node index.
    pub fn scores(&mut self, pod: &Pod) -> Vec<(NodeId, f64)> {
        self.evaluate(pod, false);
        self.buf
            .iter()
            .map(|c| (c.node as usize, c.total))
            .collect()
    }

    /// Chooses a node and devices for `pod`, without binding.
    pub fn select(&mut self, pod: &Pod, rng: &mut ChaCha8Rng) -> Option<Binding> {
        let first_only = self.kind == OnlineKind::FirstFit;
        self.evaluate(pod, first_only);
        let pick = match self.kind {
            OnlineKind::Random => {
                if self.buf.is_empty() {
                    None
                } else {
                    Some(self.buf[rng.gen_range(0..self.buf.len())])
                }
            }
            _ => {
                let mut best: Option<Candidate> = None;
                for c in &self.buf {
                    if best.is_none_or(|b| c.total > b.total) {
                        best = Some(*c);
                    }
                }
                best
            }
        }?;
        let node = pick.node as usize;
        let free = self.cluster.gpu_free(node);
        let devices = if pick.device != u32::MAX {
            vec![pick.device]
        } else {
            crate::model::gpu::choose_devices(free, pod.gpu.amount)?
        };
        Some(Binding {
            node,
            gpu_devices: devices,
        })
    }
}

/// Allocation-free resource and device fit against a node row.
#[inline]
fn fits(r: &NodeRow, q: &PodReq) -> bool {
    r.used_pods < r.alloc_pods
        && (q.cpu == 0 || r.used_cpu + q.cpu <= r.alloc_cpu)
        && (q.mem == 0 || r.used_mem + q.mem <= r.alloc_mem)
        && (q.eph == 0 || r.used_eph + q.eph <= r.alloc_eph)
        && match q.gpu {
            GpuAmount::None => true,
            GpuAmount::Shared(m) => r.gpu_max_free >= m,
            GpuAmount::Whole(k) => r.gpu_whole_free >= k,
        }
}

/// (weight of the main score, weights of NodeAffinity, TaintToleration, PodTopologySpread).
fn weights(kind: OnlineKind) -> (f64, [f64; 3]) {
    match kind {
        // kube-scheduler's default plugin weights (see the module docs).
        OnlineKind::KubeDefault => (1.0, [2.0, 3.0, 2.0]),
        _ => (1.0, [1.0, 1.0, 1.0]),
    }
}

struct FgdState<'s> {
    workload: Option<&'s TargetWorkload>,
    model_ok: &'s [bool],
    nodes: usize,
    node: NodeId,
    before: &'s mut f64,
    scratch: &'s mut Vec<u32>,
}

impl FgdState<'_> {
    fn frag(&mut self, cpu: u64, mem: u64, free: &[u32]) -> f64 {
        let Some(w) = self.workload else { return 0.0 };
        let mut f = 0.0;
        for (t, task) in w.pods().iter().enumerate() {
            let ok = self.model_ok[t * self.nodes + self.node];
            let nf = NodeFree {
                cpu_milli: cpu,
                memory_bytes: mem,
                gpu_free: free,
            };
            f += task.frequency * fgd::task_fragment(&nf, task, ok) as f64;
        }
        f
    }
}

/// The policy's own score of a feasible node, and the device it picks (FGD shares).
fn main_score(
    kind: OnlineKind,
    r: &NodeRow,
    q: &PodReq,
    gpu_free: &[u32],
    gpu_types: &[(GpuAmount, u32)],
    mut fgd_state: FgdState<'_>,
) -> (f64, u32) {
    let cpu_nz = ResourceUse {
        requested: r.nz_cpu + q.nz_cpu,
        allocatable: r.alloc_cpu,
    };
    let mem_nz = ResourceUse {
        requested: r.nz_mem + q.nz_mem,
        allocatable: r.alloc_mem,
    };
    let gpu_cap = u64::from(r.gpu_count) * u64::from(MILLI_PER_GPU);
    let free_cpu = r.alloc_cpu.saturating_sub(r.used_cpu);
    let free_mem = r.alloc_mem.saturating_sub(r.used_mem);
    let s = match kind {
        OnlineKind::LeastAllocated => score::least_allocated(cpu_nz, mem_nz) as f64,
        OnlineKind::MostAllocated => score::most_allocated(cpu_nz, mem_nz) as f64,
        OnlineKind::KubeDefault => {
            let fit = score::least_allocated(cpu_nz, mem_nz);
            let mut res = [
                ResourceUse {
                    requested: r.used_cpu + q.cpu,
                    allocatable: r.alloc_cpu,
                },
                ResourceUse {
                    requested: r.used_mem + q.mem,
                    allocatable: r.alloc_mem,
                },
                ResourceUse {
                    requested: gpu_cap - u64::from(r.gpu_free_total) + q.gpu_milli(),
                    allocatable: gpu_cap,
                },
            ];
            let len = if q.gpu.is_some() && gpu_cap > 0 { 3 } else { 2 };
            if len == 2 {
                res[2].allocatable = 0;
            }
            (fit + score::balanced_allocation(&res[..len])) as f64
        }
        OnlineKind::BestFit => {
            let dims = [
                Dim {
                    free: (free_cpu - q.cpu) as f64,
                    total: r.alloc_cpu as f64,
                },
                Dim {
                    free: (free_mem - q.mem) as f64,
                    total: r.alloc_mem as f64,
                },
                Dim {
                    free: (u64::from(r.gpu_free_total) - q.gpu_milli()) as f64,
                    total: gpu_cap as f64,
                },
            ];
            score::best_fit(&dims)
        }
        OnlineKind::DotProduct => {
            let gpu_dim = match q.gpu {
                GpuAmount::Shared(m) => Dim {
                    free: f64::from(tightest_device(gpu_free, m).map_or(0, |(_, f)| f)),
                    total: f64::from(MILLI_PER_GPU),
                },
                _ => Dim {
                    free: f64::from(r.gpu_free_total),
                    total: gpu_cap as f64,
                },
            };
            let demand = [q.cpu as f64, q.mem as f64, q.gpu_milli() as f64];
            let free = [
                Dim {
                    free: free_cpu as f64,
                    total: r.alloc_cpu as f64,
                },
                Dim {
                    free: free_mem as f64,
                    total: r.alloc_mem as f64,
                },
                gpu_dim,
            ];
            score::dot_product(&demand, &free)
        }
        OnlineKind::GpuPacking => score::gpu_packing(gpu_free, q.gpu) as f64,
        OnlineKind::GpuClustering => {
            let mut same = false;
            let mut other = false;
            for (g, _) in gpu_types {
                if *g == q.gpu {
                    same = true;
                } else {
                    other = true;
                }
            }
            let aff = match (same, other) {
                (true, false) => GpuAffinity::OnlySame,
                (true, true) => GpuAffinity::Mixed,
                (false, false) => GpuAffinity::Idle,
                (false, true) => GpuAffinity::Different,
            };
            score::gpu_clustering(aff, u64::from(r.gpu_free_total), q.gpu.is_some()) as f64
        }
        OnlineKind::Fgd => return fgd_main(r, q, gpu_free, &mut fgd_state),
        OnlineKind::FirstFit | OnlineKind::Random => 0.0,
    };
    (s, u32::MAX)
}

/// The device with the least free milli that still holds `m` (lowest index on ties).
fn tightest_device(free: &[u32], m: u32) -> Option<(usize, u32)> {
    free.iter()
        .copied()
        .enumerate()
        .filter(|&(_, f)| f >= m)
        .min_by_key(|&(i, f)| (f, i))
}

fn fgd_main(r: &NodeRow, q: &PodReq, gpu_free: &[u32], st: &mut FgdState<'_>) -> (f64, u32) {
    if gpu_free.is_empty() {
        // No GPU here: fragmentation is zero before and after.
        return (score::fgd::fgd_score(0.0, 0.0), u32::MAX);
    }
    let free_cpu = r.alloc_cpu.saturating_sub(r.used_cpu);
    let free_mem = r.alloc_mem.saturating_sub(r.used_mem);
    if st.before.is_nan() {
        *st.before = st.frag(free_cpu, free_mem, gpu_free);
    }
    let before = *st.before;
    let (cpu_after, mem_after) = (free_cpu - q.cpu, free_mem - q.mem);
    let mut scratch = std::mem::take(st.scratch);
    scratch.clear();
    scratch.extend_from_slice(gpu_free);
    let out = match q.gpu {
        GpuAmount::Shared(m) => {
            let mut best: Option<(f64, u32)> = None;
            for i in 0..gpu_free.len() {
                let f = gpu_free[i];
                // Devices with equal free milli are interchangeable: try the first only.
                if f < m || gpu_free[..i].contains(&f) {
                    continue;
                }
                scratch[i] = f - m;
                let after = st.frag(cpu_after, mem_after, &scratch);
                scratch[i] = f;
                let s = score::fgd::fgd_score(before, after);
                if best.is_none_or(|(b, _)| s > b) {
                    best = Some((s, i as u32));
                }
            }
            best.unwrap_or((0.0, u32::MAX))
        }
        GpuAmount::Whole(k) => {
            let mut left = k;
            for f in scratch.iter_mut() {
                if left > 0 && *f == MILLI_PER_GPU {
                    *f = 0;
                    left -= 1;
                }
            }
            let after = st.frag(cpu_after, mem_after, &scratch);
            (score::fgd::fgd_score(before, after), u32::MAX)
        }
        GpuAmount::None => {
            let after = st.frag(cpu_after, mem_after, &scratch);
            (score::fgd::fgd_score(before, after), u32::MAX)
        }
    };
    *st.scratch = scratch;
    out
}
