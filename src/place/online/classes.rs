//! Node equivalence classes, so a decision scores each distinct node state once.
//!
//! For a pod without inter-pod constraints, host ports, extended resources or soft
//! spread, a node's filter verdict and score depend only on (a) its static verdict and
//! static soft scores for the pod's signature (a [`StaticNode`]) and (b) its *state key*:
//! the numbers of its row (allocatable, used, kube's non-zero requested sums, GPU
//! counts), its GPU model, its per-device free milli-GPU in device order and, for GPU
//! clustering, the GPU request types it runs. Nodes of one static entry with equal
//! static soft scores and equal state keys therefore have equal verdicts and equal
//! scores, and among equal scores the lowest node index wins: scoring the lowest-index
//! member of each class and comparing (score, index) picks exactly the node a scan of
//! every node would pick.
//!
//! State keys are interned ([`NodeKeys`]); every static entry keeps its eligible nodes
//! grouped by (key, static soft scores) ([`EntryClasses`]). A bind or removal changes one
//! node's key: that node moves class in each cached entry, nothing else is recomputed.
//! Idle nodes of the same type share a class, and packing policies keep most nodes idle.

use super::hot::NodeRow;
use super::soft::{StaticEntry, StaticNode};
use crate::model::{Cluster, GpuAmount, NodeId};
use std::collections::{BTreeSet, HashMap};

/// Everything the filter and score of a non-inter-pod pod read of one node's state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct NodeKey {
    nums: [u64; 12],
    model: u32,
    gpu_free: Vec<u32>,
    /// GPU request types with their pod counts, sorted (GPU clustering only; empty
    /// otherwise).
    gpu_types: Vec<(GpuAmount, u32)>,
}

/// Interned state keys of every node.
#[derive(Debug, Clone)]
pub(crate) struct NodeKeys {
    ids: HashMap<NodeKey, u32>,
    /// Key of each id (`None` for a free id) and how many nodes have it.
    keys: Vec<(Option<NodeKey>, u32)>,
    free_ids: Vec<u32>,
    /// Each node's key id.
    pub of_node: Vec<u32>,
    /// Each node's GPU model id (`u32::MAX` without GPUs).
    model: Vec<u32>,
    /// GPU model ids by name.
    model_ids: HashMap<String, u32>,
    with_types: bool,
}

impl NodeKeys {
    /// Keys of every node of `cluster` from its rows and GPU request types.
    pub fn new(
        cluster: &Cluster,
        rows: &[NodeRow],
        gpu_types: &[Vec<(GpuAmount, u32)>],
        with_types: bool,
    ) -> Self {
        let mut k = NodeKeys {
            ids: HashMap::new(),
            keys: Vec::new(),
            free_ids: Vec::new(),
            of_node: Vec::with_capacity(rows.len()),
            model: Vec::with_capacity(rows.len()),
            model_ids: HashMap::new(),
            with_types,
        };
        for n in cluster.node_slot_iter() {
            let m = k.model_id(n);
            k.model.push(m);
        }
        for n in 0..rows.len() {
            let key = k.key(n, cluster, &rows[n], &gpu_types[n]);
            let id = k.intern(key);
            k.of_node.push(id);
        }
        k
    }

    fn key(&self, n: usize, cluster: &Cluster, r: &NodeRow, types: &[(GpuAmount, u32)]) -> NodeKey {
        let mut gpu_types = Vec::new();
        if self.with_types {
            gpu_types.extend_from_slice(types);
            gpu_types.sort_unstable_by_key(|&(g, c)| {
                (g.total_milli(), matches!(g, GpuAmount::Whole(_)), c)
            });
        }
        NodeKey {
            nums: [
                r.alloc_cpu,
                r.alloc_mem,
                r.alloc_eph,
                r.alloc_pods,
                r.used_cpu,
                r.used_mem,
                r.used_eph,
                r.used_pods,
                r.nz_cpu,
                r.nz_mem,
                u64::from(r.gpu_count),
                u64::from(r.gpu_free_total),
            ],
            model: self.model[n],
            gpu_free: cluster.gpu_free(NodeId::from_index(n)).to_vec(),
            gpu_types,
        }
    }

    /// The id of `node`'s GPU model (`u32::MAX` without GPUs or for a removed node).
    fn model_id(&mut self, node: Option<&crate::model::Node>) -> u32 {
        match node.and_then(|n| n.gpu_model()) {
            None => u32::MAX,
            Some(m) => {
                let next = self.model_ids.len() as u32;
                *self.model_ids.entry(m.to_string()).or_insert(next)
            }
        }
    }

    /// Node `n` was added, replaced or removed: its GPU model and key are recomputed
    /// (the arrays grow to the cluster's slots first). Returns `(old, new)` key ids if the
    /// key of an existing node changed.
    pub fn node_changed(
        &mut self,
        n: usize,
        cluster: &Cluster,
        rows: &[NodeRow],
        gpu_types: &[Vec<(GpuAmount, u32)>],
    ) -> Option<(u32, u32)> {
        let node = cluster.node(NodeId::from_index(n));
        let m = self.model_id(node);
        while self.of_node.len() <= n {
            let i = self.of_node.len();
            self.model.push(if i == n { m } else { u32::MAX });
            let key = self.key(i, cluster, &rows[i], &gpu_types[i]);
            let id = self.intern(key);
            self.of_node.push(id);
            if i == n {
                return None;
            }
        }
        self.model[n] = m;
        self.update(n, cluster, &rows[n], &gpu_types[n])
    }

    fn intern(&mut self, key: NodeKey) -> u32 {
        if let Some(&id) = self.ids.get(&key) {
            self.keys[id as usize].1 += 1;
            return id;
        }
        let id = match self.free_ids.pop() {
            Some(id) => {
                self.keys[id as usize] = (Some(key.clone()), 1);
                id
            }
            None => {
                self.keys.push((Some(key.clone()), 1));
                (self.keys.len() - 1) as u32
            }
        };
        self.ids.insert(key, id);
        id
    }

    fn release(&mut self, id: u32) {
        let e = &mut self.keys[id as usize];
        e.1 -= 1;
        if e.1 == 0 {
            if let Some(k) = e.0.take() {
                self.ids.remove(&k);
            }
            self.free_ids.push(id);
        }
    }

    /// Recomputes node `n`'s key; returns `(old, new)` ids if it changed.
    pub fn update(
        &mut self,
        n: usize,
        cluster: &Cluster,
        r: &NodeRow,
        types: &[(GpuAmount, u32)],
    ) -> Option<(u32, u32)> {
        let key = self.key(n, cluster, r, types);
        let old = self.of_node[n];
        if self.keys[old as usize].0.as_ref() == Some(&key) {
            return None;
        }
        let new = self.intern(key);
        self.release(old);
        self.of_node[n] = new;
        Some((old, new))
    }
}

/// One class of a static entry: its members (slots of the entry; ascending slot is
/// ascending node index).
#[derive(Debug, Clone, Default)]
struct Class {
    members: BTreeSet<u32>,
    /// Position in `EntryClasses::dense`.
    pos: u32,
}

/// What a decision reads of one class, stored contiguously: the lowest member and the
/// row every member shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dense {
    /// The lowest member, with the static soft scores every member shares.
    pub rep: StaticNode,
    /// Its slot in the static entry.
    pub slot: u32,
    /// The row of every member (equal state keys).
    pub row: NodeRow,
}

/// A static entry's eligible nodes grouped by (state key, affinity, taints).
#[derive(Debug, Clone, Default)]
pub(crate) struct EntryClasses {
    map: HashMap<(u32, i64, i64), u32>,
    classes: Vec<Class>,
    free: Vec<u32>,
    /// One item per non-empty class (in no particular order), and its class index.
    pub dense: Vec<Dense>,
    dense_class: Vec<u32>,
}

impl EntryClasses {
    pub fn new(entry: &StaticEntry, keys: &NodeKeys, rows: &[NodeRow]) -> Self {
        let mut c = EntryClasses::default();
        for (slot, sn) in entry.nodes.iter().enumerate() {
            let kid = keys.of_node[sn.id as usize];
            c.insert(kid, sn, slot as u32, &rows[sn.id as usize]);
        }
        c
    }

    fn insert(&mut self, kid: u32, sn: &StaticNode, slot: u32, row: &NodeRow) {
        let key = (kid, sn.affinity, sn.taints);
        if let Some(&ci) = self.map.get(&key) {
            let cl = &mut self.classes[ci as usize];
            cl.members.insert(slot);
            let d = &mut self.dense[cl.pos as usize];
            if slot < d.slot {
                d.slot = slot;
                d.rep = *sn;
            }
            return;
        }
        let class = Class {
            members: BTreeSet::from([slot]),
            pos: self.dense.len() as u32,
        };
        let ci = match self.free.pop() {
            Some(ci) => {
                self.classes[ci as usize] = class;
                ci
            }
            None => {
                self.classes.push(class);
                (self.classes.len() - 1) as u32
            }
        };
        self.dense.push(Dense {
            rep: *sn,
            slot,
            row: *row,
        });
        self.dense_class.push(ci);
        self.map.insert(key, ci);
    }

    fn remove(&mut self, entry: &StaticEntry, kid: u32, sn: &StaticNode, slot: u32) {
        let key = (kid, sn.affinity, sn.taints);
        let Some(&ci) = self.map.get(&key) else {
            return;
        };
        let cl = &mut self.classes[ci as usize];
        cl.members.remove(&slot);
        let pos = cl.pos as usize;
        if let Some(&first) = cl.members.first() {
            let d = &mut self.dense[pos];
            d.slot = first;
            d.rep = entry.nodes[first as usize];
            return;
        }
        self.map.remove(&key);
        self.dense.swap_remove(pos);
        self.dense_class.swap_remove(pos);
        if let Some(&moved) = self.dense_class.get(pos) {
            self.classes[moved as usize].pos = pos as u32;
        }
        self.classes[ci as usize] = Class::default();
        self.free.push(ci);
    }

    /// The members (slots, ascending) of the class at position `pos` of `dense`.
    pub fn members(&self, pos: usize) -> impl Iterator<Item = u32> + '_ {
        self.classes[self.dense_class[pos] as usize]
            .members
            .iter()
            .copied()
    }

    /// Moves node `node` (if eligible in `entry`) from key `old` to key `new`, whose
    /// row is `row`.
    pub fn move_node(&mut self, entry: &StaticEntry, node: u32, old: u32, new: u32, row: &NodeRow) {
        let Ok(slot) = entry.nodes.binary_search_by_key(&node, |sn| sn.id) else {
            return;
        };
        let sn = entry.nodes[slot];
        self.remove(entry, old, &sn, slot as u32);
        self.insert(new, &sn, slot as u32, row);
    }
}
