//! Classes of interchangeable nodes for the filter: two nodes are in one class when
//! everything [`FilterContext::check`](crate::place::FilterContext::check) reads of them,
//! except the name and the host ports in use, is equal — the node object (labels, taints,
//! allocatable, GPUs, cordon), the resources in use and the free share of every GPU
//! device. For a pod without host ports whose required node affinity has no
//! `matchFields` term (the only filter input that reads the node name), the verdict and
//! its reason text are then the same for every member, so a filter call evaluates one
//! member per class and copies the result. Topology spread and inter-pod (anti-)affinity
//! count pods per label value, and labels are part of the class, so they need no
//! exception.
//!
//! Class keys are exact (the serialised node without its name, plus the usage): equal
//! keys mean equal inputs, so a class can only be too fine, never too coarse. Real nodes
//! carry a unique `kubernetes.io/hostname` label, so there each node is its own class and
//! the filter costs what it did per node; uniform test and benchmark clusters collapse.

use crate::model::{Cluster, Node, NodeId, Pod};
use std::collections::HashMap;

/// Class id of every node, kept in step with binds and removals.
#[derive(Debug, Clone, Default)]
pub struct NodeClasses {
    /// Static class (node object without its name) of each node.
    statics: Vec<u32>,
    static_intern: HashMap<Vec<u8>, u32>,
    /// Class of each node.
    of: Vec<u32>,
    intern: HashMap<Vec<u8>, u32>,
}

impl NodeClasses {
    /// Classes of every node of `cluster`.
    pub fn new(cluster: &Cluster) -> Self {
        let mut static_intern: HashMap<Vec<u8>, u32> = HashMap::new();
        let statics = cluster
            .node_slot_iter()
            .map(|n| {
                let key = n.map(static_key).unwrap_or_default();
                let next = static_intern.len() as u32;
                *static_intern.entry(key).or_insert(next)
            })
            .collect();
        let mut c = NodeClasses {
            statics,
            static_intern,
            of: vec![0; cluster.node_slots()],
            intern: HashMap::new(),
        };
        for id in cluster.node_ids() {
            c.assign(cluster, id);
        }
        c
    }

    /// Node `id` was added, replaced or removed: its static key and class are
    /// recomputed (the arrays grow to the cluster's slots first).
    pub fn node_changed(&mut self, cluster: &Cluster, id: NodeId) {
        if self.of.len() < cluster.node_slots() {
            self.of.resize(cluster.node_slots(), 0);
            self.statics.resize(cluster.node_slots(), 0);
        }
        let key = cluster.node(id).map(static_key).unwrap_or_default();
        let next = self.static_intern.len() as u32;
        self.statics[id] = *self.static_intern.entry(key).or_insert(next);
        self.update(cluster, id);
    }

    /// Recomputes node `id`'s class after a bind or removal on it.
    pub fn update(&mut self, cluster: &Cluster, id: NodeId) {
        // Usage states come and go: start the interning over before it grows unbounded.
        if self.intern.len() > 4 * self.of.len() + 64 {
            self.intern.clear();
            for n in cluster.node_ids() {
                if n != id {
                    self.assign(cluster, n);
                }
            }
        }
        self.assign(cluster, id);
    }

    fn assign(&mut self, cluster: &Cluster, id: NodeId) {
        let key = serde_json::to_vec(&(self.statics[id], cluster.used(id), cluster.gpu_free(id)))
            .expect("plain data serialises");
        let next = self.intern.len() as u32;
        self.of[id] = *self.intern.entry(key).or_insert(next);
    }

    /// Class of node `id`.
    #[inline]
    pub fn of(&self, id: NodeId) -> u32 {
        self.of[id]
    }

    /// Number of class ids handed out (an upper bound of every [`NodeClasses::of`]).
    pub fn count(&self) -> usize {
        self.intern.len()
    }

    /// Whether the filter verdict of `pod` is the same for every member of a class.
    pub fn valid_for(pod: &Pod) -> bool {
        pod.host_ports.is_empty()
            && pod
                .required_node_affinity
                .as_ref()
                .is_none_or(|s| s.terms.iter().all(|t| t.match_fields.is_empty()))
    }
}

fn static_key(n: &Node) -> Vec<u8> {
    let unnamed = Node {
        name: String::new(),
        ..n.clone()
    };
    serde_json::to_vec(&unnamed).expect("plain data serialises")
}
