//! The per-cluster state behind every online decision: a compact row of numbers per node
//! (kept in sync as pods are bound and removed), a cache of the static filter results per
//! distinct pod signature with its classes of equivalent nodes (see [`super::classes`]),
//! and the filter → score → pick loop.

use super::classes::{EntryClasses, NodeKeys};
use super::frag::{FragMode, FragState};
use super::hot::{cap_allocatable, cap_amount, Candidate, NodeRow, PodReq};
use super::rows::{
    best_fit_fast, kube_resources_fast, least_allocated_fast, main_score, most_allocated_fast,
    NodeRefs,
};
use super::soft::{self, EntryChange, SoftInputs, StaticEntry, StaticNode};
use super::{FragOptions, OnlineKind};
use crate::model::{
    Binding, Cluster, ClusterError, GpuAmount, Node, NodeId, Pod, PodId, WhenUnsatisfiable,
    MILLI_PER_GPU,
};
use crate::place::filter::FilterContext;
use crate::place::plugin::Plugins;
use crate::place::score;
use crate::place::score::fgd::{self, TargetWorkload};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::borrow::Cow;
use std::collections::HashMap;

/// Static filter results kept per engine (each holds one entry per eligible node).
const MAX_CACHED_SIGNATURES: usize = 256;

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
    /// Interned node state keys, built on the first class-based decision.
    keys: Option<NodeKeys>,
    /// Each static entry's node classes (parallel to `statics`), built on first use.
    classes: Vec<Option<EntryClasses>>,
    /// FGD's (or CBF's) workload and per-node fragmentation bookkeeping, once set.
    fgd: Option<FragState>,
    frag_options: FragOptions,
    buf: Vec<Candidate>,
    /// Embedders' plugins; when set, every decision takes the full two-pass route.
    plugins: Option<Plugins>,
}

impl<'a> Engine<'a> {
    pub fn new(kind: OnlineKind, cluster: Cow<'a, Cluster>) -> Self {
        let n = cluster.node_slots();
        let mut e = Engine {
            kind,
            rows: vec![NodeRow::default(); n],
            gpu_types: vec![Vec::new(); n],
            statics: Vec::new(),
            static_index: HashMap::new(),
            keys: None,
            classes: Vec::new(),
            fgd: None,
            frag_options: FragOptions::default(),
            buf: Vec::with_capacity(n),
            plugins: None,
            cluster,
        };
        for id in 0..n {
            e.refresh_row(NodeId::from_index(id));
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
            let r = &mut e.rows[node];
            r.nz_cpu = cap_amount(r.nz_cpu.saturating_add(c));
            r.nz_mem = cap_amount(r.nz_mem.saturating_add(m));
            e.add_gpu_type(node, g);
        }
        e
    }

    fn refresh_row(&mut self, id: NodeId) {
        let Some(node) = self.cluster.node(id) else {
            // A removed node: nothing fits (its static entries no longer list it either).
            self.rows[id] = NodeRow::default();
            self.gpu_types[id].clear();
            if let Some(f) = self.fgd.as_mut() {
                f.invalidate(id.index());
            }
            return;
        };
        let used = self.cluster.used(id);
        let free = self.cluster.gpu_free(id);
        let r = &mut self.rows[id];
        r.alloc_cpu = cap_allocatable(node.allocatable.cpu_milli);
        r.alloc_mem = cap_allocatable(node.allocatable.memory_bytes);
        r.alloc_eph = cap_allocatable(node.allocatable.ephemeral_storage_bytes);
        r.alloc_pods = node.allocatable.pods;
        r.used_cpu = cap_amount(used.cpu_milli);
        r.used_mem = cap_amount(used.memory_bytes);
        r.used_eph = cap_amount(used.ephemeral_storage_bytes);
        r.used_pods = used.pods;
        r.gpu_count = free.len() as u32;
        r.gpu_max_free = free.iter().copied().max().unwrap_or(0);
        r.gpu_whole_free = free.iter().filter(|&&f| f == MILLI_PER_GPU).count() as u32;
        r.gpu_free_total = free.iter().sum();
        let inv = |t: u64| if t == 0 { 0.0 } else { 1.0 / t as f64 };
        r.inv_cpu = inv(r.alloc_cpu);
        r.inv_mem = inv(r.alloc_mem);
        r.inv_gpu = inv(u64::from(r.gpu_count) * u64::from(MILLI_PER_GPU));
        let dims = [r.alloc_cpu, r.alloc_mem, u64::from(r.gpu_count)]
            .iter()
            .filter(|&&t| t > 0)
            .count();
        r.inv_dims = if dims == 0 { 0.0 } else { 1.0 / dims as f64 };
        if let Some(f) = self.fgd.as_mut() {
            f.invalidate(id.index());
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

    /// Sets FGD's and CBF's options (before any workload is set).
    pub fn set_frag_options(&mut self, o: FragOptions) {
        self.frag_options = o;
    }

    /// Sets FGD's (or CBF's) target workload (and resets the fragmentation
    /// bookkeeping).
    pub fn set_workload(&mut self, w: TargetWorkload) {
        let o = self.frag_options;
        let mode = match self.kind {
            OnlineKind::Cbf => FragMode::Cbf {
                rho: o
                    .cpu_per_gpu_milli
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .unwrap_or_else(|| w.cpu_per_gpu_milli()),
                weight: o.strand_weight,
                reserve: o.reserve_weight,
                fgd_first: o.fgd_first,
            },
            _ => FragMode::Fgd {
                integer: o.integer_scores,
            },
        };
        self.fgd = Some(FragState::new(w, &self.cluster, mode));
    }

    /// Attaches embedders' plugins (filters applied and scores added after the
    /// built-in ones).
    pub fn set_plugins(&mut self, plugins: Plugins) {
        self.plugins = Some(plugins);
    }

    pub fn workload(&self) -> Option<&TargetWorkload> {
        self.fgd.as_ref().map(|f| &f.workload)
    }

    /// Index of the static entry for `pod`'s signature, computed on first use.
    fn static_entry(&mut self, pod: &Pod) -> usize {
        let h = soft::signature_hash(pod);
        if let Some(list) = self.static_index.get(&h) {
            if let Some(&i) = list.iter().find(|&&i| self.statics[i].key.matches(pod)) {
                return i;
            }
        }
        // Bound the memory a long session spends on rare signatures: start over when full.
        if self.statics.len() >= MAX_CACHED_SIGNATURES {
            self.statics.clear();
            self.static_index.clear();
            self.classes.clear();
        }
        let entry = StaticEntry::build(&self.cluster, pod);
        self.statics.push(entry);
        self.classes.push(None);
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
        let r = &mut self.rows[b.node];
        r.nz_cpu = cap_amount(r.nz_cpu.saturating_add(c));
        r.nz_mem = cap_amount(r.nz_mem.saturating_add(m));
        self.add_gpu_type(b.node, g);
        self.touch(b.node);
        Ok(id)
    }

    /// Adds a node; every derived structure learns of it incrementally.
    pub fn add_node(&mut self, node: Node) -> Result<NodeId, ClusterError> {
        let id = self.cluster.to_mut().add_node(node)?;
        self.node_changed(id);
        Ok(id)
    }

    /// Replaces node `id`'s description (see [`Cluster::replace_node`]).
    pub fn replace_node(&mut self, id: NodeId, node: Node) -> Result<Node, ClusterError> {
        let old = self.cluster.to_mut().replace_node(id, node)?;
        self.node_changed(id);
        Ok(old)
    }

    /// Removes node `id`, evicting its pods (unbound one by one, so every structure
    /// stays in sync); returns the node and the evicted pods with their bindings.
    pub fn remove_node(&mut self, id: NodeId) -> Result<(Node, Vec<(Pod, Binding)>), ClusterError> {
        if self.cluster.node(id).is_none() {
            return Err(ClusterError::NoSuchNode(id));
        }
        let mut evicted = Vec::new();
        for pid in self.cluster.pods_on(id).to_vec() {
            evicted.push(self.unbind(pid)?);
        }
        let (node, rest) = self.cluster.to_mut().remove_node(id)?;
        debug_assert!(rest.is_empty(), "pods unbound above");
        self.node_changed(id);
        Ok((node, evicted))
    }

    /// Brings every derived structure up to date after node `id` was added, replaced or
    /// removed in the cluster: its row, its GPU model flags for FGD, its state key, and
    /// its membership and static soft scores in every cached static entry. An entry
    /// whose slots or class keys moved drops its classes (rebuilt on its next use); the
    /// others move the node between classes as a bind does. Nothing is rebuilt from
    /// scratch.
    fn node_changed(&mut self, id: NodeId) {
        let slots = self.cluster.node_slots();
        if self.rows.len() < slots {
            self.rows.resize(slots, NodeRow::default());
            self.gpu_types.resize(slots, Vec::new());
        }
        if let Some(f) = self.fgd.as_mut() {
            f.node_changed(id.index(), &self.cluster);
        }
        self.refresh_row(id);
        let moved = match self.keys.as_mut() {
            Some(k) => k.node_changed(id.index(), &self.cluster, &self.rows, &self.gpu_types),
            None => None,
        };
        let node = self.cluster.node(id);
        for (entry, classes) in self.statics.iter_mut().zip(&mut self.classes) {
            match entry.node_changed(id, node) {
                EntryChange::Changed => *classes = None,
                EntryChange::Same => {
                    if let (Some((old, new)), Some(c)) = (moved, classes.as_mut()) {
                        c.move_node(entry, id.index() as u32, old, new, &self.rows[id]);
                    }
                }
            }
        }
    }

    /// Moves node `n` to the class of its new state in every cached entry.
    fn touch(&mut self, n: NodeId) {
        let Some(keys) = self.keys.as_mut() else {
            return;
        };
        let Some((old, new)) =
            keys.update(n.index(), &self.cluster, &self.rows[n], &self.gpu_types[n])
        else {
            return;
        };
        for (entry, classes) in self.statics.iter().zip(&mut self.classes) {
            if let Some(c) = classes.as_mut() {
                c.move_node(entry, n.index() as u32, old, new, &self.rows[n]);
            }
        }
    }

    /// Builds the node keys and entry `si`'s classes if not yet built.
    fn ensure_classes(&mut self, si: usize) {
        let keys = self.keys.get_or_insert_with(|| {
            NodeKeys::new(
                &self.cluster,
                &self.rows,
                &self.gpu_types,
                self.kind == OnlineKind::GpuClustering,
            )
        });
        if self.classes[si].is_none() {
            self.classes[si] = Some(EntryClasses::new(&self.statics[si], keys, &self.rows));
        }
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
        self.touch(b.node);
        Ok((pod, b))
    }

    /// Filters the pod's statically eligible nodes (ascending index) and computes the
    /// policy's main score of each feasible one; calls `visit(static node, slot, main,
    /// device)`, which returns false to stop. Allocation-free for pods without inter-pod
    /// constraints, host ports or extended resources.
    fn scan(
        &mut self,
        pod: &Pod,
        si: usize,
        by_class: bool,
        visit: impl FnMut(&StaticNode, u32, f64, u32) -> bool,
    ) {
        let q = PodReq::of(pod);
        let cluster: &Cluster = &self.cluster;
        let ctx = FilterContext::new(cluster, pod);
        let inter_pod = ctx.has_inter_pod_checks();
        // Pods whose dynamic checks read the pods on a node (ports) or resources the row
        // does not hold (extended; GPU devices are re-checked too).
        let reads_node = !pod.host_ports.is_empty()
            || pod.requests.extended.values().any(|&v| v > 0)
            || (inter_pod && pod.gpu.amount.is_some());
        let entry = &self.statics[si];
        // Classes group nodes by the state the fast filter and score read. With inter-pod
        // checks the verdict also depends on the node's topology domains: each class is
        // then represented by its lowest member passing them (same score, lowest index).
        // Not valid for pods whose dynamic checks read the pods on a node.
        let slots = match (by_class && !reads_node, self.classes[si].as_ref()) {
            (true, Some(c)) if inter_pod => Slots::ClassesChecked(c),
            (true, Some(c)) => Slots::Classes(c),
            _ => Slots::All(entry.nodes.len()),
        };
        let rows = &self.rows;
        // `fits` (run first) covers pods, CPU, memory, ephemeral storage and GPUs as
        // `Cluster::insufficient` does; the full dynamic check runs where it is not enough.
        // Slots are `u32` here (`StaticNode::id`): ids are made only where one is used.
        let id = |n: usize| NodeId::from_u32(n as u32);
        let check = |n: usize| {
            if reads_node {
                ctx.check_dynamic(id(n)).is_ok()
            } else {
                !inter_pod || ctx.inter_pod_ok(id(n))
            }
        };
        const NO_DEVICE: u32 = u32::MAX;
        match self.kind {
            OnlineKind::FirstFit | OnlineKind::Random => scan_nodes(
                entry,
                &slots,
                rows,
                &q,
                check,
                |_, _| (0.0, NO_DEVICE),
                visit,
            ),
            OnlineKind::BestFit => scan_nodes(
                entry,
                &slots,
                rows,
                &q,
                check,
                |_, r| (best_fit_fast(r, &q), NO_DEVICE),
                visit,
            ),
            OnlineKind::LeastAllocated => scan_nodes(
                entry,
                &slots,
                rows,
                &q,
                check,
                |_, r| (least_allocated_fast(r, &q), NO_DEVICE),
                visit,
            ),
            OnlineKind::MostAllocated => scan_nodes(
                entry,
                &slots,
                rows,
                &q,
                check,
                |_, r| (most_allocated_fast(r, &q), NO_DEVICE),
                visit,
            ),
            OnlineKind::KubeDefault => scan_nodes(
                entry,
                &slots,
                rows,
                &q,
                check,
                |_, r| (kube_resources_fast(r, &q), NO_DEVICE),
                visit,
            ),
            OnlineKind::Fgd | OnlineKind::Cbf => {
                let Some(fgd) = self.fgd.as_mut() else {
                    return;
                };
                scan_nodes(
                    entry,
                    &slots,
                    rows,
                    &q,
                    check,
                    |n, r| {
                        let free_cpu = r.alloc_cpu.saturating_sub(r.used_cpu);
                        let free_mem = r.alloc_mem.saturating_sub(r.used_mem);
                        fgd.score(n, free_cpu, free_mem, cluster.gpu_free(id(n)), &q)
                    },
                    visit,
                )
            }
            kind => {
                let gpu_types = &self.gpu_types;
                scan_nodes(
                    entry,
                    &slots,
                    rows,
                    &q,
                    check,
                    |n, r| {
                        let refs = NodeRefs {
                            cluster,
                            gpu_types,
                            node: id(n),
                        };
                        (main_score(kind, r, &q, refs), NO_DEVICE)
                    },
                    visit,
                )
            }
        }
    }

    fn prepare(&mut self, pod: &Pod) -> usize {
        if self.kind.uses_workload() {
            self.ensure_workload(pod);
        }
        self.static_entry(pod)
    }

    /// Fills `self.buf` with every feasible node (ascending index) and its total score
    /// (highest best); `first_only` stops at the first feasible node (first-fit).
    /// First-fit and random do not score.
    fn evaluate(&mut self, pod: &Pod, first_only: bool) {
        let si = self.prepare(pod);
        // A plugin may reject the first feasible node: first-fit then scans on.
        let stop_early = first_only && self.plugins.is_none();
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.scan(pod, si, false, |sn, slot, main, device| {
            buf.push(Candidate {
                node: sn.id,
                slot,
                main,
                device,
                total: main,
            });
            !stop_early
        });
        if let Some(p) = &self.plugins {
            let cluster: &Cluster = &self.cluster;
            buf.retain(|c| {
                p.check(pod, NodeId::from_index(c.node as usize), cluster)
                    .is_ok()
            });
            if first_only {
                buf.truncate(1);
            }
        }
        if !matches!(self.kind, OnlineKind::FirstFit | OnlineKind::Random) && !buf.is_empty() {
            let (w_main, w) = weights(self.kind);
            soft::add_soft_scores(SoftInputs {
                cluster: &self.cluster,
                pod,
                entry: &self.statics[si],
                candidates: &mut buf,
                main_weight: w_main,
                weights: w,
            });
            if let Some(p) = self.plugins.as_ref().filter(|p| !p.scores.is_empty()) {
                for c in &mut buf {
                    c.total += p.score_of(pod, NodeId::from_index(c.node as usize), &self.cluster);
                }
            }
        }
        self.buf = buf;
    }

    /// The best node in one pass, without a candidate buffer: the static soft scores are
    /// normalised by their maxima over the *statically* eligible nodes, which is right
    /// whenever some feasible node reaches those maxima (checked; `None` otherwise, and
    /// the caller takes the two-pass route). Not for pods with soft spread constraints.
    fn best_one_pass(&mut self, pod: &Pod) -> Option<Option<Candidate>> {
        let si = self.prepare(pod);
        self.ensure_classes(si);
        let entry = &self.statics[si];
        let (max_aff, max_taint) = (entry.max_affinity, entry.max_taints);
        let (w_main, [wa, wt, _]) = weights(self.kind);
        let mut best: Option<Candidate> = None;
        let (mut seen_aff, mut seen_taint) = (0, 0);
        // Classes come in no particular order: ties go to the lower node index explicitly.
        self.scan(pod, si, true, |sn, slot, main, device| {
            seen_aff = seen_aff.max(sn.affinity);
            seen_taint = seen_taint.max(sn.taints);
            let total = w_main * main + soft::static_soft(sn, max_aff, max_taint, wa, wt);
            if best.is_none_or(|b| total > b.total || (total == b.total && sn.id < b.node)) {
                best = Some(Candidate {
                    node: sn.id,
                    slot,
                    main,
                    device,
                    total,
                });
            }
            true
        });
        (best.is_none() || (seen_aff == max_aff && seen_taint == max_taint)).then_some(best)
    }

    fn ensure_workload(&mut self, pod: &Pod) {
        if self.fgd.is_none() {
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
            .map(|c| (NodeId::from_index(c.node as usize), c.total))
            .collect()
    }

    /// Chooses a node and devices for `pod`, without binding.
    pub fn select(&mut self, pod: &Pod, rng: &mut ChaCha8Rng) -> Option<Binding> {
        let soft_spread = pod
            .topology_spread
            .iter()
            .any(|c| c.when_unsatisfiable == WhenUnsatisfiable::ScheduleAnyway);
        let fast = match self.kind {
            OnlineKind::FirstFit | OnlineKind::Random => None,
            _ if soft_spread || self.plugins.is_some() => None,
            _ => self.best_one_pass(pod),
        };
        let pick = match fast {
            Some(best) => best,
            None => {
                self.evaluate(pod, self.kind == OnlineKind::FirstFit);
                match self.kind {
                    OnlineKind::Random if !self.buf.is_empty() => {
                        Some(self.buf[rng.gen_range(0..self.buf.len())])
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
                }
            }
        }?;
        let node = NodeId::from_index(pick.node as usize);
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

/// The filter → score loop over a static entry's nodes, generic so each policy's scorer
/// inlines.
#[inline]
fn scan_nodes(
    entry: &StaticEntry,
    slots: &Slots<'_>,
    rows: &[NodeRow],
    q: &PodReq,
    check: impl Fn(usize) -> bool,
    mut score: impl FnMut(usize, &NodeRow) -> (f64, u32),
    mut visit: impl FnMut(&StaticNode, u32, f64, u32) -> bool,
) {
    let mut each = |slot: usize, sn: &StaticNode, r: &NodeRow| {
        let n = sn.id as usize;
        if !fits(r, q) || !check(n) {
            return true;
        }
        let (main, device) = score(n, r);
        visit(sn, slot as u32, main, device)
    };
    match slots {
        Slots::All(len) => {
            for (slot, sn) in entry.nodes[..*len].iter().enumerate() {
                if !each(slot, sn, &rows[sn.id as usize]) {
                    break;
                }
            }
        }
        Slots::Classes(c) => {
            // Each class's rep and row are stored contiguously: one sequential pass.
            for d in &c.dense {
                if !each(d.slot as usize, &d.rep, &d.row) {
                    break;
                }
            }
        }
        Slots::ClassesChecked(c) => {
            for (pos, d) in c.dense.iter().enumerate() {
                if !fits(&d.row, q) {
                    continue;
                }
                // Members share the row and the static soft scores: the lowest one that
                // passes the inter-pod checks stands for the class.
                let Some(slot) = c
                    .members(pos)
                    .find(|&slot| check(entry.nodes[slot as usize].id as usize))
                else {
                    continue;
                };
                let sn = &entry.nodes[slot as usize];
                let (main, device) = score(sn.id as usize, &d.row);
                if !visit(sn, slot, main, device) {
                    break;
                }
            }
        }
    }
}

/// Which slots of a static entry a scan visits.
enum Slots<'c> {
    /// Every slot, ascending (every eligible node, ascending index).
    All(usize),
    /// The lowest slot of each class of equivalent nodes, in no particular order.
    Classes(&'c EntryClasses),
    /// Per class of equivalent nodes, its lowest slot passing the dynamic check, in no
    /// particular order.
    ClassesChecked(&'c EntryClasses),
}

/// Allocation-free resource and device fit against a node row.
#[inline]
fn fits(r: &NodeRow, q: &PodReq) -> bool {
    // Rows and requests are capped (`hot::cap_amount`, `hot::cap_allocatable`), so these
    // sums cannot wrap; an exact check here (checked or u128 sums) cost ~9 % of `random`'s
    // throughput.
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
