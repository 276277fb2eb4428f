//! FGD's per-node bookkeeping, so scoring a placement costs O(typical tasks) per candidate
//! device instead of O(tasks × devices).
//!
//! A task's fragment on a node (see [`crate::place::score::fgd::task_fragment`]) depends
//! on the devices only through, for its per-device need `p`: how many devices have at
//! least `p` free ("roomy") and the free milli of the devices with less than `p`
//! ("fragment sum"), plus the node's total free milli. Those are cached per node and per
//! distinct need, and a candidate placement changes them by a delta.
//!
//! Two policies read it ([`FragMode`]): FGD scores a placement by how little it grows
//! the fragmentation `F`; CBF by how little it grows `F + w · max(0, G − C/ρ)`, the
//! fragmentation plus the free GPU milli `G` that the node's free CPU `C` cannot back at
//! the workload's CPU per GPU milli `ρ` ("stranded" GPU).

use super::hot::PodReq;
use crate::model::{Cluster, GpuAmount, MILLI_PER_GPU};
use crate::place::score::fgd::{fgd_score, TargetWorkload};

/// What the fragmentation bookkeeping scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FragMode {
    /// FGD: `100 · σ((F_before − F_after) / 1000)`; truncated to an integer as the
    /// paper's simulator does when `integer`.
    Fgd { integer: bool },
    /// CBF: the negated increase of `F + weight · max(0, G − C/rho)`, in 1/1000 milli,
    /// rounded to an integer. With `reserve > 0`, a pod that accepts every GPU model
    /// also pays `reserve · r(node) · its GPU milli`, where `r` is how much of the
    /// node's model the model-restricted target pods need ([`FragState::new`]). With
    /// `fgd_first`, FGD's integer score ranks first and that cost only breaks its ties.
    Cbf {
        rho: f64,
        weight: f64,
        reserve: f64,
        fgd_first: bool,
    },
}

impl FragMode {
    /// The node's cost under CBF (`F` plus the stranded term); FGD's cost is `F`.
    #[inline]
    fn cost(&self, frag: f64, gpu_free: u32, cpu_free: u64) -> f64 {
        match *self {
            FragMode::Fgd { .. } => frag,
            FragMode::Cbf { rho, weight, .. } => {
                frag + weight * (f64::from(gpu_free) - cpu_free as f64 / rho).max(0.0)
            }
        }
    }

    /// The value compared between device choices (higher is better) for a placement
    /// leaving fragmentation `after`, `gpu_after` free milli and `cpu_after` free CPU, on
    /// a node whose fragmentation was `before` and cost `before_cost`.
    #[inline]
    fn key(
        &self,
        before: f64,
        before_cost: f64,
        after: f64,
        gpu_after: u32,
        cpu_after: u64,
    ) -> f64 {
        match *self {
            FragMode::Fgd { integer: false } => fgd_score(before, after),
            // The paper's plugin: `int64(sigmoid(x) * 100)`, this very expression.
            FragMode::Fgd { integer: true } => {
                let x = (before - after) / 1000.0;
                (1.0 / (1.0 + (-x).exp()) * 100.0).trunc()
            }
            FragMode::Cbf { fgd_first, .. } => {
                let cbf = -(self.cost(after, gpu_after, cpu_after) - before_cost);
                if fgd_first {
                    // FGD's integer score (0..=100) first: CBF's cost, in milli, stays
                    // within ±10^5 and so only orders FGD's ties.
                    let x = (before - after) / 1000.0;
                    let fgd = (1.0 / (1.0 + (-x).exp()) * 100.0).trunc();
                    fgd * 1e6 + cbf.clamp(-99_999.0, 99_999.0)
                } else {
                    cbf
                }
            }
        }
    }

    /// The score of the best key.
    #[inline]
    fn finish(&self, key: f64) -> f64 {
        match self {
            FragMode::Fgd { .. } => key,
            FragMode::Cbf { .. } => (key * 1000.0).round(),
        }
    }
}

#[derive(Debug, Clone)]
struct Task {
    /// Index into `FragState::needs`; `usize::MAX` for a task without GPUs (all free
    /// GPU is always its fragment).
    need: usize,
    count: u32,
    cpu: u64,
    mem: u64,
    freq: f64,
}

/// Per-device statistics of one node for one need `p`.
#[derive(Debug, Clone, Copy, Default)]
struct NeedStat {
    roomy: u32,
    frag_sum: u32,
}

/// FGD state for one cluster and workload.
#[derive(Debug, Clone)]
pub(crate) struct FragState {
    pub workload: TargetWorkload,
    mode: FragMode,
    /// The score on a node without devices (the same for every such node).
    empty: f64,
    needs: Vec<u32>,
    tasks: Vec<Task>,
    /// `model_ok[n * tasks.len() + t]` (one node's flags contiguous).
    model_ok: Vec<bool>,
    valid: Vec<bool>,
    total: Vec<u32>,
    before: Vec<f64>,
    /// `stats[n * needs.len() + k]`.
    stats: Vec<NeedStat>,
    /// Each node's task codes for its current free CPU and memory (see `fill_codes`),
    /// `node_codes[n * tasks.len() + t]`, valid with `valid[n]`.
    node_codes: Vec<(u32, u32)>,
    /// Largest CPU and memory request among the tasks whose code is not `ALL` on each
    /// node: a placement leaving at least that much keeps every code.
    keep_cpu: Vec<u64>,
    keep_mem: Vec<u64>,
    /// Scratch: task codes after a placement that changes some.
    codes: Vec<(u32, u32)>,
    /// Scratch: the need statistics after a candidate placement.
    adj: Vec<NeedStat>,
    /// CBF's reservation factor of each node (see [`FragMode::Cbf`]): the GPU milli of
    /// the model-restricted target pods that accept the node's model (each spread
    /// evenly over the models it accepts), over the cluster's milli of that model, as a
    /// share of the target's GPU milli per cluster milli; at most 1.
    reserve: Vec<f64>,
}

/// Task code meaning "all free GPU is this task's fragment, whatever the devices".
const ALL: u32 = u32::MAX;

impl FragState {
    pub fn new(workload: TargetWorkload, cluster: &Cluster, mode: FragMode) -> Self {
        let nodes = cluster.node_slots();
        let mut needs: Vec<u32> = Vec::new();
        let mut tasks = Vec::new();
        for t in workload.pods() {
            let (p, count) = match t.gpu {
                GpuAmount::None => (0, 0),
                GpuAmount::Shared(m) => (m, 1),
                GpuAmount::Whole(n) => (MILLI_PER_GPU, n),
            };
            let need = if p == 0 {
                usize::MAX
            } else {
                needs.iter().position(|&x| x == p).unwrap_or_else(|| {
                    needs.push(p);
                    needs.len() - 1
                })
            };
            tasks.push(Task {
                need,
                count,
                cpu: t.cpu_milli,
                mem: t.memory_bytes,
                freq: t.frequency,
            });
        }
        let model_ok = cluster
            .node_slot_iter()
            .flat_map(|n| {
                workload
                    .pods()
                    .iter()
                    .map(move |t| n.is_some_and(|n| t.accepts_model(n.gpu_model())))
            })
            .collect();
        let k = needs.len();
        let reserve = reserve_factors(&workload, cluster);
        FragState {
            reserve,
            workload,
            empty: mode.finish(mode.key(0.0, 0.0, 0.0, 0, 0)),
            mode,
            needs,
            codes: Vec::with_capacity(tasks.len()),
            node_codes: vec![(ALL, 0); nodes * tasks.len()],
            keep_cpu: vec![0; nodes],
            keep_mem: vec![0; nodes],
            adj: vec![NeedStat::default(); k],
            tasks,
            model_ok,
            valid: vec![false; nodes],
            total: vec![0; nodes],
            before: vec![0.0; nodes],
            stats: vec![NeedStat::default(); nodes * k],
        }
    }

    /// Node `n` was added, replaced or removed: the per-node arrays grow to the
    /// cluster's slots, its model flags are recomputed and its statistics forgotten.
    pub fn node_changed(&mut self, n: usize, cluster: &Cluster) {
        let slots = cluster.node_slots();
        let (t, k) = (self.tasks.len(), self.needs.len());
        if self.valid.len() < slots {
            self.model_ok.resize(slots * t, false);
            self.node_codes.resize(slots * t, (ALL, 0));
            self.keep_cpu.resize(slots, 0);
            self.keep_mem.resize(slots, 0);
            self.valid.resize(slots, false);
            self.total.resize(slots, 0);
            self.before.resize(slots, 0.0);
            self.stats.resize(slots * k, NeedStat::default());
        }
        if matches!(self.mode, FragMode::Cbf { reserve, .. } if reserve > 0.0) {
            self.reserve = reserve_factors(&self.workload, cluster);
        }
        let model = cluster
            .node(crate::model::NodeId::from_index(n))
            .map(|node| node.gpu_model());
        for (flag, task) in self.model_ok[n * t..(n + 1) * t]
            .iter_mut()
            .zip(self.workload.pods())
        {
            *flag = model.is_some_and(|m| task.accepts_model(m));
        }
        self.valid[n] = false;
    }

    /// Forgets node `n`'s cached statistics (after a bind or removal there).
    pub fn invalidate(&mut self, n: usize) {
        if let Some(v) = self.valid.get_mut(n) {
            *v = false;
        }
    }

    /// Fills `self.codes` for node `n` with free `cpu` and `mem`: per task, `(ALL, 0)` if
    /// all free GPU is its fragment whatever the devices (no GPUs asked, wrong model, too
    /// little CPU or memory), else `(need index, device count)`.
    fn fill_codes(&mut self, n: usize, cpu: u64, mem: u64) {
        let t_len = self.tasks.len();
        let ok = &self.model_ok[n * t_len..(n + 1) * t_len];
        self.codes.clear();
        self.codes
            .extend(self.tasks.iter().zip(ok).map(|(task, &model_ok)| {
                if task.need == usize::MAX || !model_ok || cpu < task.cpu || mem < task.mem {
                    (ALL, 0)
                } else {
                    (task.need as u32, task.count)
                }
            }));
    }

    /// `Σ frequency · fragment` over the tasks, in task order, from `self.codes`, the
    /// node's free GPU total and its need statistics `stats`.
    #[inline]
    fn fragmentation(&self, codes: &[(u32, u32)], total: u32, stats: &[NeedStat]) -> f64 {
        let mut f = 0.0;
        for (task, &(need, count)) in self.tasks.iter().zip(codes) {
            let frag = if need == ALL {
                total
            } else {
                let s = stats[need as usize];
                if s.roomy < count {
                    total
                } else {
                    s.frag_sum
                }
            };
            f += task.freq * f64::from(frag);
        }
        f
    }

    fn ensure(&mut self, n: usize, cpu: u64, mem: u64, gpu_free: &[u32]) {
        if self.valid[n] {
            return;
        }
        let k = self.needs.len();
        for (j, &p) in self.needs.iter().enumerate() {
            let mut s = NeedStat::default();
            for &f in gpu_free {
                if f >= p {
                    s.roomy += 1;
                } else {
                    s.frag_sum += f;
                }
            }
            self.stats[n * k + j] = s;
        }
        self.total[n] = gpu_free.iter().sum();
        self.fill_codes(n, cpu, mem);
        let t_len = self.tasks.len();
        let (mut keep_cpu, mut keep_mem) = (0, 0);
        for (task, &(need, _)) in self.tasks.iter().zip(&self.codes) {
            if need != ALL {
                keep_cpu = keep_cpu.max(task.cpu);
                keep_mem = keep_mem.max(task.mem);
            }
        }
        self.keep_cpu[n] = keep_cpu;
        self.keep_mem[n] = keep_mem;
        self.node_codes[n * t_len..(n + 1) * t_len].copy_from_slice(&self.codes);
        let stats = &self.stats[n * k..(n + 1) * k];
        self.before[n] = self.fragmentation(&self.codes, self.total[n], stats);
        self.valid[n] = true;
    }

    /// The policy's score of placing the pod on node `n` (free CPU/memory before the
    /// placement given), and for a GPU share the device to use (`u32::MAX` otherwise).
    /// A share tries the first device of each distinct free amount with room; the best
    /// key wins, the lowest device on ties.
    pub fn score(
        &mut self,
        n: usize,
        free_cpu: u64,
        free_mem: u64,
        gpu_free: &[u32],
        q: &PodReq,
    ) -> (f64, u32) {
        // One copy of the loop per mode (each call sees its variant as a constant), so
        // FGD's loop carries nothing of CBF's.
        match self.mode {
            FragMode::Fgd { integer: false } => self.score_with(
                FragMode::Fgd { integer: false },
                n,
                free_cpu,
                free_mem,
                gpu_free,
                q,
            ),
            FragMode::Fgd { integer: true } => self.score_with(
                FragMode::Fgd { integer: true },
                n,
                free_cpu,
                free_mem,
                gpu_free,
                q,
            ),
            m @ FragMode::Cbf { .. } => self.score_with(m, n, free_cpu, free_mem, gpu_free, q),
        }
    }

    #[inline(always)]
    fn score_with(
        &mut self,
        mode: FragMode,
        n: usize,
        free_cpu: u64,
        free_mem: u64,
        gpu_free: &[u32],
        q: &PodReq,
    ) -> (f64, u32) {
        if gpu_free.is_empty() {
            // No devices: F is 0 before and after, and so is the stranded GPU.
            return (self.empty, u32::MAX);
        }
        self.ensure(n, free_cpu, free_mem, gpu_free);
        let k = self.needs.len();
        let total = self.total[n];
        let before = self.before[n];
        let before_cost = mode.cost(before, total, free_cpu);
        // The CPU/memory part of every task's fate is the same for every device choice,
        // and the node's own (cached) codes if the placement leaves enough for every task
        // that could run before.
        let (cpu, mem) = (free_cpu - q.cpu, free_mem - q.mem);
        let keep = cpu >= self.keep_cpu[n] && mem >= self.keep_mem[n];
        if keep && q.gpu == GpuAmount::None && matches!(mode, FragMode::Fgd { .. }) {
            // Same codes, same devices: the same sum, term by term, as `before`.
            return (
                mode.finish(mode.key(before, before_cost, before, total, cpu)),
                u32::MAX,
            );
        }
        if !keep {
            self.fill_codes(n, cpu, mem);
        }
        let t_len = self.tasks.len();
        let codes = if keep {
            &self.node_codes[n * t_len..(n + 1) * t_len]
        } else {
            &self.codes[..]
        };
        let mut adj = std::mem::take(&mut self.adj);
        let stats = &self.stats[n * k..(n + 1) * k];
        let out = match q.gpu {
            GpuAmount::Shared(m) => {
                let mut best: Option<(f64, u32)> = None;
                for (i, &f) in gpu_free.iter().enumerate() {
                    // Devices with equal free milli are interchangeable: try the first only.
                    if f < m || gpu_free[..i].contains(&f) {
                        continue;
                    }
                    let g = f - m;
                    for ((a, s), &p) in adj.iter_mut().zip(stats).zip(&self.needs) {
                        *a = *s;
                        a.roomy = a.roomy - u32::from(f >= p) + u32::from(g >= p);
                        // Device i leaves the fragment sum if it was below p, and
                        // (re)enters it with its new free milli if it is below p now.
                        let was = if f < p { f } else { 0 };
                        let now = if g < p { g } else { 0 };
                        a.frag_sum = a.frag_sum - was + now;
                    }
                    let after = self.fragmentation(codes, total - m, &adj);
                    let s = mode.key(before, before_cost, after, total - m, cpu);
                    if best.is_none_or(|(b, _)| s > b) {
                        best = Some((s, i as u32));
                    }
                }
                best.map_or((0.0, u32::MAX), |(s, d)| (mode.finish(s), d))
            }
            GpuAmount::Whole(c) => {
                // c fully free devices become 0: each need loses c roomy devices and
                // gains nothing in fragment sum.
                for (a, s) in adj.iter_mut().zip(stats) {
                    *a = *s;
                    a.roomy -= c;
                }
                let left = total - c * MILLI_PER_GPU;
                let after = self.fragmentation(codes, left, &adj);
                let s = mode.key(before, before_cost, after, left, cpu);
                (mode.finish(s), u32::MAX)
            }
            GpuAmount::None => {
                let after = self.fragmentation(codes, total, stats);
                let s = mode.key(before, before_cost, after, total, cpu);
                (mode.finish(s), u32::MAX)
            }
        };
        self.adj = adj;
        match mode {
            FragMode::Cbf { reserve, .. }
                if reserve > 0.0 && q.any_model && q.gpu.total_milli() > 0 =>
            {
                // In 1/1000 milli, as `finish` scales CBF's key.
                let r = self.reserve.get(n).copied().unwrap_or(0.0);
                let m = q.gpu.total_milli() as f64;
                (out.0 - (reserve * r * m * 1000.0).round(), out.1)
            }
            _ => out,
        }
    }
}

/// Per node slot, the reservation factor of [`FragState`]'s `reserve` (0 for empty
/// slots, nodes without GPUs, or a workload without model-restricted GPU pods).
fn reserve_factors(workload: &TargetWorkload, cluster: &Cluster) -> Vec<f64> {
    use std::collections::BTreeMap;
    let mut supply: BTreeMap<&str, f64> = BTreeMap::new();
    let mut total_supply = 0.0;
    for node in cluster.node_slot_iter().flatten() {
        let g = f64::from(node.gpu_count()) * f64::from(MILLI_PER_GPU);
        if g > 0.0 {
            if let Some(m) = node.gpu_model() {
                *supply.entry(m).or_default() += g;
                total_supply += g;
            }
        }
    }
    let total_demand: f64 = workload
        .pods()
        .iter()
        .map(|t| t.frequency * t.gpu.total_milli() as f64)
        .sum();
    let mut need: BTreeMap<&str, f64> = BTreeMap::new();
    for t in workload.pods() {
        let milli = t.frequency * t.gpu.total_milli() as f64;
        if t.models.is_empty() || milli <= 0.0 {
            continue;
        }
        let accepted: Vec<&str> = supply
            .keys()
            .copied()
            .filter(|m| t.accepts_model(Some(m)))
            .collect();
        for m in &accepted {
            *need.entry(m).or_default() += milli / accepted.len() as f64;
        }
    }
    cluster
        .node_slot_iter()
        .map(|node| {
            let Some(m) = node.and_then(|n| n.gpu_model()) else {
                return 0.0;
            };
            match (need.get(m), supply.get(m)) {
                (Some(&d), Some(&s)) if s > 0.0 && total_demand > 0.0 => {
                    ((d / total_demand) / (s / total_supply)).min(1.0)
                }
                _ => 0.0,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GpuRequest, Node, NodeGpus, Pod, Resources};
    use crate::place::score::fgd::{node_fragmentation, NodeFree, TypicalPod};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// CBF's cost by hand: one T4 node with 2000 CPU free and devices [1000, 300] free,
    /// the typical pod a 500-milli share with 1000 CPU (frequency 1), ρ = 2, w = 1.
    #[test]
    fn cbf_cost_by_hand() {
        use crate::model::{GpuAmount, NodeId};
        let node = Node::new("a", 3000, 64 << 30).with_gpus("T4", 2);
        let mut c = Cluster::new(vec![node]).unwrap();
        let a = NodeId::FIRST;
        let used = Pod::new("used", 1000, 1 << 30).with_gpu(GpuAmount::Shared(700));
        c.bind(used, a, Some(vec![1])).unwrap();
        assert_eq!(c.gpu_free(a), &[1000, 300]);
        let share = TypicalPod {
            cpu_milli: 1000,
            memory_bytes: 0,
            gpu: GpuAmount::Shared(500),
            models: vec![],
            frequency: 1.0,
        };
        let w = TargetWorkload::with_frequencies(vec![share]);
        let mode = FragMode::Cbf {
            rho: 2.0,
            weight: 1.0,
            reserve: 0.0,
            fgd_first: false,
        };
        let mut st = FragState::new(w, &c, mode);
        // Before: F = 300 (the share fits, the small device is fragment); G = 1300 free,
        // backed by 2000 / 2 = 1000: 300 stranded. Cost 600.
        assert_eq!(mode.cost(300.0, 1300, 2000), 600.0);
        // A CPU-only pod taking 1100 CPU leaves 900: the share no longer fits (F = 1300)
        // and 1300 − 450 = 850 are stranded: cost 2150, an increase of 1550.
        let q = PodReq::of(&Pod::new("cpu", 1100, 1 << 20));
        let (score, dev) = st.score(0, 2000, 63 << 30, c.gpu_free(a), &q);
        assert_eq!((score, dev), (-1_550_000.0, u32::MAX));
        // With w = 2 the stranded part doubles: 1300 + 2 · 850 = 3000.
        let two = FragMode::Cbf {
            rho: 2.0,
            weight: 2.0,
            reserve: 0.0,
            fgd_first: false,
        };
        assert_eq!(two.cost(1300.0, 1300, 900), 3000.0);
        // A second share fits only on the full device, leaving [500, 300] and 1000 CPU:
        // F = 300, and 800 free backed by 1000 / 2 = 500 strands 300 — cost 600 again.
        let q = PodReq::of(&Pod::new("s", 1000, 1 << 20).with_gpu(GpuAmount::Shared(500)));
        assert_eq!(st.score(0, 2000, 63 << 30, c.gpu_free(a), &q), (0.0, 0));
    }

    /// The incremental bookkeeping against the plain definition, on random nodes.
    #[test]
    fn incremental_fragmentation_equals_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let models = ["A", "B"];
        for round in 0..200 {
            let nodes: Vec<Node> = (0..4)
                .map(|i| {
                    let r = Resources::cpu_mem(16000, 64 << 30);
                    Node {
                        name: format!("n{i}"),
                        capacity: r.clone(),
                        allocatable: r,
                        gpus: Some(NodeGpus {
                            model: models[rng.gen_range(0..2)].into(),
                            count: rng.gen_range(1..=8),
                        }),
                        ..Default::default()
                    }
                })
                .collect();
            let mut c = Cluster::new(nodes).unwrap();
            let amount = |rng: &mut ChaCha8Rng| match rng.gen_range(0..4) {
                0 => GpuAmount::None,
                1 | 2 => GpuAmount::Shared(rng.gen_range(1..10) * 100),
                _ => GpuAmount::Whole(rng.gen_range(1..=4)),
            };
            let tasks: Vec<TypicalPod> = (0..rng.gen_range(1..6))
                .map(|_| TypicalPod {
                    cpu_milli: rng.gen_range(0..8) * 1000,
                    memory_bytes: rng.gen_range(0..8) << 30,
                    gpu: amount(&mut rng),
                    models: if rng.gen_bool(0.3) {
                        vec!["A".into()]
                    } else {
                        vec![]
                    },
                    frequency: rng.gen_range(1..10) as f64,
                })
                .collect();
            let w = TargetWorkload::new(tasks);
            for _ in 0..rng.gen_range(0..12) {
                let p = Pod {
                    requests: Resources::cpu_mem(rng.gen_range(0..4) * 1000, 1 << 30),
                    gpu: GpuRequest {
                        amount: amount(&mut rng),
                        models: vec![],
                    },
                    ..Default::default()
                };
                let n = crate::model::NodeId::from_index(rng.gen_range(0..4));
                let _ = c.bind(p, n, None);
            }
            let mut st = FragState::new(w.clone(), &c, FragMode::Fgd { integer: false });
            let pod = Pod {
                requests: Resources::cpu_mem(rng.gen_range(0..3) * 1000, 1 << 30),
                gpu: GpuRequest {
                    amount: amount(&mut rng),
                    models: vec![],
                },
                ..Default::default()
            };
            let q = PodReq::of(&pod);
            for (n, node) in c.nodes() {
                if !c.insufficient(&pod, n).is_empty() {
                    continue;
                }
                let ok: Vec<bool> = w
                    .pods()
                    .iter()
                    .map(|t| t.accepts_model(node.gpu_model()))
                    .collect();
                let (cpu, mem) = (
                    node.allocatable.cpu_milli - c.used(n).cpu_milli,
                    node.allocatable.memory_bytes - c.used(n).memory_bytes,
                );
                let free = c.gpu_free(n).to_vec();
                let frag = |cpu, mem, free: &[u32]| {
                    let nf = NodeFree {
                        cpu_milli: cpu,
                        memory_bytes: mem,
                        gpu_free: free,
                    };
                    node_fragmentation(&nf, &w, &ok)
                };
                let before = frag(cpu, mem, &free);
                let (cpu2, mem2) = (cpu - q.cpu, mem - q.mem);
                let expected = match q.gpu {
                    GpuAmount::Shared(m) => {
                        let mut best: Option<(f64, u32)> = None;
                        for i in 0..free.len() {
                            if free[i] < m {
                                continue;
                            }
                            let mut f2 = free.clone();
                            f2[i] -= m;
                            let s = fgd_score(before, frag(cpu2, mem2, &f2));
                            if best.is_none_or(|(b, _)| s > b) {
                                best = Some((s, i as u32));
                            }
                        }
                        best.unwrap()
                    }
                    GpuAmount::Whole(k) => {
                        let devs = crate::model::gpu::choose_devices(&free, q.gpu).unwrap();
                        let mut f2 = free.clone();
                        for d in devs.iter().take(k as usize) {
                            f2[*d as usize] = 0;
                        }
                        (fgd_score(before, frag(cpu2, mem2, &f2)), u32::MAX)
                    }
                    GpuAmount::None => (fgd_score(before, frag(cpu2, mem2, &free)), u32::MAX),
                };
                let got = st.score(n.index(), cpu, mem, &free, &q);
                assert!(
                    (got.0 - expected.0).abs() < 1e-9,
                    "round {round} node {n}: {got:?} vs {expected:?}"
                );
                assert_eq!(got.1, expected.1, "round {round} node {n}");
            }
        }
    }
}
