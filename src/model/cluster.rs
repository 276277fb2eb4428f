//! The cluster: nodes plus bound pods, with per-node used resources, per-device free
//! milli-GPU and host ports kept in sync as pods are bound and removed.
//!
//! This is the incremental bookkeeping the policies use. The validator
//! ([`crate::place::validate`]) deliberately does not use it.

mod ids;
mod topology;

pub use ids::{NodeId, PodId};

pub use topology::{
    SpreadEligibility, SpreadEligibilityKey, TopologyDomains, TopologyIndex, NO_DOMAIN,
};

use super::gpu::{choose_devices, GpuAmount, MAX_GPUS_PER_NODE, MILLI_PER_GPU};
use super::node::Node;
use super::pod::{HostPort, Pod, PodAffinityTerm};
use super::resources::Resources;
use super::selector::{LabelSelector, Labels, Operator};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};
use thiserror::Error;
use topology::{AntiTermIndex, EligibilityMemo};

/// Errors building or changing a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClusterError {
    /// Two nodes share a name.
    #[error("duplicate node name {0:?}")]
    DuplicateNode(String),
    /// A pod names a node that does not exist.
    #[error("pod {pod} is bound to unknown node {node:?}")]
    UnknownNode {
        /// Pod key.
        pod: String,
        /// Node name.
        node: String,
    },
    /// A bound pod does not fit on its node.
    #[error("pod {pod} cannot be bound to node {node}: {reason}")]
    DoesNotFit {
        /// Pod key.
        pod: String,
        /// Node name.
        node: String,
        /// Why.
        reason: String,
    },
    /// A node has more GPU devices than [`MAX_GPUS_PER_NODE`].
    #[error("node {node:?} has {count} GPU devices; at most {MAX_GPUS_PER_NODE} are supported")]
    TooManyGpus {
        /// Node name.
        node: String,
        /// Devices it claims.
        count: u32,
    },
    /// A pod id does not refer to a bound pod.
    #[error("no bound pod with id {0}")]
    UnknownPod(PodId),
    /// A node id does not refer to a node.
    #[error("no node with id {0}")]
    NoSuchNode(NodeId),
    /// A new node description drops a GPU device that a bound pod holds.
    #[error("node {node:?}: device {device} is held by pod {pod} but the new description has {count} devices")]
    DeviceInUse {
        /// Node name.
        node: String,
        /// The device index.
        device: u32,
        /// The holding pod's key.
        pod: String,
        /// Devices in the new description.
        count: u32,
    },
}

/// A pod bound to a node, with the devices it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// Node index.
    pub node: NodeId,
    /// GPU device indices on that node (empty without GPUs).
    pub gpu_devices: Vec<u32>,
}

/// Nodes, bound pods, and the derived per-node state.
///
/// A live model: nodes are added, replaced and removed, pods bound, unbound and evicted,
/// and every index (free capacity, GPU devices, pods per node, label and anti-affinity
/// indexes, topology domains) stays exact through each change. Ids are typed and stale
/// ids are errors: a removed node's [`NodeId`] is never given to another node, and a
/// [`PodId`] carries its slot's generation.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// Node slots; `None` once a node is removed (slots are never reused).
    nodes: Vec<Option<Node>>,
    node_index: HashMap<String, NodeId>,
    live_nodes: usize,
    pods: Vec<PodSlot>,
    free_slots: Vec<usize>,
    /// Requested resources on each node (pods counted in `pods`).
    used: Vec<Resources>,
    /// Free milli-GPU per device per node.
    gpu_free: Vec<Vec<u32>>,
    /// Pods on each node.
    pods_on_node: Vec<Vec<PodId>>,
    /// Bound pods that carry required anti-affinity terms (checked against every new pod).
    anti_affinity_pods: std::collections::BTreeSet<PodId>,
    /// Bound pods by label key, then value (for selector candidates).
    by_label: HashMap<String, BTreeMap<String, BTreeSet<PodId>>>,
    /// Required anti-affinity terms of bound pods: (owner namespace, term) → the owners'
    /// nodes with how many owners each.
    anti_terms: HashMap<(String, PodAffinityTerm), BTreeMap<NodeId, u32>>,
    /// The keys of `anti_terms` filed by a label their selector requires.
    anti_index: AntiTermIndex,
    bound_count: usize,
    /// Interned topology domains of the node labels, built on first use (reset when
    /// nodes change).
    topology: OnceLock<Arc<TopologyIndex>>,
    /// Spread eligibility per (node selector, required affinity, hard keys), reset when
    /// nodes change.
    eligibility: EligibilityMemo,
}

/// One pod slot: the pod bound there, if any, and how many pods it has held.
#[derive(Debug, Clone, Default)]
struct PodSlot {
    generation: u32,
    entry: Option<(Pod, Binding)>,
}

/// Milli-GPU a pod holds on each of its devices.
fn per_device(amount: GpuAmount) -> u32 {
    match amount {
        GpuAmount::None => 0,
        GpuAmount::Shared(m) => m,
        GpuAmount::Whole(_) => MILLI_PER_GPU,
    }
}

impl Cluster {
    /// A cluster of these nodes and no pods.
    pub fn new(nodes: Vec<Node>) -> Result<Self, ClusterError> {
        let mut c = Cluster::default();
        for n in nodes {
            c.add_node(n)?;
        }
        Ok(c)
    }

    /// Adds a node in a new slot; returns its id.
    pub fn add_node(&mut self, node: Node) -> Result<NodeId, ClusterError> {
        if self.node_index.contains_key(&node.name) {
            return Err(ClusterError::DuplicateNode(node.name));
        }
        if node.gpu_count() > MAX_GPUS_PER_NODE {
            return Err(ClusterError::TooManyGpus {
                count: node.gpu_count(),
                node: node.name,
            });
        }
        let id = NodeId::from_index(self.nodes.len());
        self.node_index.insert(node.name.clone(), id);
        self.gpu_free
            .push(vec![MILLI_PER_GPU; node.gpu_count() as usize]);
        self.used.push(Resources::default());
        self.pods_on_node.push(Vec::new());
        self.nodes.push(Some(node));
        self.live_nodes += 1;
        self.nodes_changed();
        Ok(id)
    }

    /// Removes node `id`, evicting the pods bound there (returned unbound, in the order
    /// they were bound, each with its binding). The id stays an error from then on.
    pub fn remove_node(&mut self, id: NodeId) -> Result<(Node, Vec<(Pod, Binding)>), ClusterError> {
        self.node(id).ok_or(ClusterError::NoSuchNode(id))?;
        let mut evicted = Vec::new();
        for pid in self.pods_on_node[id.index()].clone() {
            evicted.push(self.unbind(pid)?);
        }
        let node = self.nodes[id.index()]
            .take()
            .ok_or(ClusterError::NoSuchNode(id))?;
        self.node_index.remove(&node.name);
        self.gpu_free[id.index()] = Vec::new();
        self.used[id.index()] = Resources::default();
        self.live_nodes -= 1;
        self.nodes_changed();
        Ok((node, evicted))
    }

    /// The same nodes in the same slots (so every [`NodeId`] names the same node), with
    /// no pod bound.
    pub fn without_pods(&self) -> Cluster {
        Cluster {
            nodes: self.nodes.clone(),
            node_index: self.node_index.clone(),
            live_nodes: self.live_nodes,
            used: vec![Resources::default(); self.nodes.len()],
            gpu_free: self
                .nodes
                .iter()
                .map(|n| vec![MILLI_PER_GPU; n.as_ref().map_or(0, |n| n.gpu_count() as usize)])
                .collect(),
            pods_on_node: vec![Vec::new(); self.nodes.len()],
            ..Cluster::default()
        }
    }

    /// The live nodes with their ids, ascending id (the order they were added).
    pub fn nodes(&self) -> impl DoubleEndedIterator<Item = (NodeId, &Node)> + Clone + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (NodeId::from_index(i), n)))
    }

    /// Every node slot, ascending (slot `i` is [`NodeId::from_index`]`(i)`): `None` where
    /// a node was removed. For building arrays parallel to the slots.
    pub fn node_slot_iter(&self) -> impl ExactSizeIterator<Item = Option<&Node>> + '_ {
        self.nodes.iter().map(Option::as_ref)
    }

    /// Ids of the live nodes, ascending.
    pub fn node_ids(&self) -> impl DoubleEndedIterator<Item = NodeId> + Clone + '_ {
        self.nodes().map(|(id, _)| id)
    }

    /// Node `id`, `None` if it was removed or never existed.
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.index()).and_then(Option::as_ref)
    }

    /// Number of live nodes.
    pub fn node_count(&self) -> usize {
        self.live_nodes
    }

    /// Number of node slots, vacant ones (removed nodes) included: every [`NodeId`] this
    /// cluster has given out is below it, so arrays indexed by [`NodeId::index`] have
    /// this length.
    pub fn node_slots(&self) -> usize {
        self.nodes.len()
    }

    /// Replaces node `id`'s description (name, capacity, allocatable, labels, taints,
    /// GPUs, cordon) and returns the old one, keeping every index exact: the name index
    /// (bound pods' `node_name` follow a rename), each device's free milli-GPU
    /// (recomputed from the pods bound there, so a changed GPU count is never stale),
    /// and the derived topology domains. Changing nothing, it fails if `id` is unknown,
    /// the new name belongs to another node, the node would have more than
    /// [`MAX_GPUS_PER_NODE`] devices, or a bound pod holds a device the new description
    /// no longer has. Allocatable below what is used is allowed: the node is then
    /// over-full, which the validator reports.
    pub fn replace_node(&mut self, id: NodeId, node: Node) -> Result<Node, ClusterError> {
        let old = self.node(id).ok_or(ClusterError::NoSuchNode(id))?;
        if node.name != old.name && self.node_index.contains_key(&node.name) {
            return Err(ClusterError::DuplicateNode(node.name));
        }
        if node.gpu_count() > MAX_GPUS_PER_NODE {
            return Err(ClusterError::TooManyGpus {
                count: node.gpu_count(),
                node: node.name,
            });
        }
        let mut free = vec![MILLI_PER_GPU; node.gpu_count() as usize];
        for &pid in &self.pods_on_node[id.index()] {
            let Some((pod, b)) = self.pod(pid) else {
                continue;
            };
            let per_device = per_device(pod.gpu.amount);
            for &d in &b.gpu_devices {
                match free.get_mut(d as usize) {
                    Some(f) => *f = f.saturating_sub(per_device),
                    None => {
                        return Err(ClusterError::DeviceInUse {
                            count: node.gpu_count(),
                            node: node.name,
                            device: d,
                            pod: pod.key(),
                        })
                    }
                }
            }
        }
        let old_name = old.name.clone();
        if node.name != old_name {
            self.node_index.remove(&old_name);
            self.node_index.insert(node.name.clone(), id);
            for i in 0..self.pods_on_node[id.index()].len() {
                let pid = self.pods_on_node[id.index()][i];
                if let Some((pod, _)) = &mut self.pods[pid.slot()].entry {
                    pod.node_name = Some(node.name.clone());
                }
            }
        }
        self.gpu_free[id.index()] = free;
        self.nodes_changed();
        let slot = self.nodes[id.index()]
            .as_mut()
            .ok_or(ClusterError::NoSuchNode(id))?;
        Ok(std::mem::replace(slot, node))
    }

    /// Cordons (`true`) or uncordons node `id`; returns whether it was cordoned.
    pub fn set_cordoned(&mut self, id: NodeId, cordoned: bool) -> Result<bool, ClusterError> {
        let mut node = self.node(id).ok_or(ClusterError::NoSuchNode(id))?.clone();
        let was = std::mem::replace(&mut node.unschedulable, cordoned);
        self.replace_node(id, node)?;
        Ok(was)
    }

    /// Drops what is derived from the node descriptions.
    fn nodes_changed(&mut self) {
        self.topology = OnceLock::new();
        self.eligibility.clear();
    }

    /// The interned topology domains of every node label key (built on first use after
    /// the nodes last changed).
    pub fn topology(&self) -> &TopologyIndex {
        self.topology
            .get_or_init(|| Arc::new(TopologyIndex::build(&self.nodes)))
    }

    /// The spread eligibility for `key`, memoised until the nodes change; `build`
    /// computes it on a miss (it must depend only on the nodes and `key`).
    pub fn spread_eligibility(
        &self,
        key: &SpreadEligibilityKey,
        build: impl FnOnce() -> SpreadEligibility,
    ) -> Arc<SpreadEligibility> {
        self.eligibility.get_or_build(key, build)
    }

    /// Node id by name.
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.node_index.get(name).copied()
    }

    /// Resources requested by the pods bound to `node` (its `pods` field counts them);
    /// zero for a removed node.
    ///
    /// # Panics
    /// If `node` is not an id of this cluster (at or beyond [`Cluster::node_slots`]).
    pub fn used(&self, node: NodeId) -> &Resources {
        &self.used[node.index()]
    }

    /// Free milli-GPU of each device of `node` (none for a removed node).
    ///
    /// # Panics
    /// If `node` is not an id of this cluster.
    pub fn gpu_free(&self, node: NodeId) -> &[u32] {
        &self.gpu_free[node.index()]
    }

    /// Total free milli-GPU on `node`.
    ///
    /// # Panics
    /// If `node` is not an id of this cluster.
    pub fn gpu_free_total(&self, node: NodeId) -> u64 {
        self.gpu_free[node.index()]
            .iter()
            .map(|&f| u64::from(f))
            .sum()
    }

    /// Ids of the pods bound to `node`, in the order they were bound (none for a
    /// removed node).
    ///
    /// # Panics
    /// If `node` is not an id of this cluster.
    pub fn pods_on(&self, node: NodeId) -> &[PodId] {
        &self.pods_on_node[node.index()]
    }

    /// A bound pod and its binding; `None` if `id` is not (or no longer) bound.
    pub fn pod(&self, id: PodId) -> Option<&(Pod, Binding)> {
        self.pods
            .get(id.slot())
            .filter(|s| s.generation == id.generation())
            .and_then(|s| s.entry.as_ref())
    }

    /// Every bound pod with its id, in slot order.
    pub fn bound_pods(&self) -> impl Iterator<Item = (PodId, &Pod, &Binding)> {
        self.pods.iter().enumerate().filter_map(|(i, s)| {
            s.entry
                .as_ref()
                .map(|(p, b)| (PodId::new(i, s.generation), p, b))
        })
    }

    /// Ids of bound pods that carry required pod anti-affinity terms, ascending.
    pub fn pods_with_anti_affinity(&self) -> impl Iterator<Item = PodId> + '_ {
        self.anti_affinity_pods.iter().copied()
    }

    /// The required anti-affinity terms of bound pods, each distinct (owner namespace,
    /// term) once, with the nodes its owners are bound to (ascending). In no fixed order.
    pub fn anti_affinity_terms(
        &self,
    ) -> impl Iterator<Item = (&str, &PodAffinityTerm, impl Iterator<Item = NodeId> + '_)> + '_
    {
        self.anti_terms
            .iter()
            .map(|((ns, t), nodes)| (ns.as_str(), t, nodes.keys().copied()))
    }

    /// The required anti-affinity terms of bound pods that may select a pod carrying
    /// `labels` — a superset of the selecting ones, narrowed by a label each term's
    /// selector requires; callers still check [`PodAffinityTerm::selects`] — each with
    /// its owner namespace and the nodes its owners are bound to (ascending). In no fixed
    /// order.
    pub fn anti_affinity_terms_maybe_selecting<'s>(
        &'s self,
        labels: &'s Labels,
    ) -> impl Iterator<
        Item = (
            &'s str,
            &'s PodAffinityTerm,
            impl Iterator<Item = NodeId> + 's,
        ),
    > + 's {
        self.anti_index.candidates(labels).filter_map(move |k| {
            self.anti_terms
                .get(k)
                .map(|nodes| (k.0.as_str(), &k.1, nodes.keys().copied()))
        })
    }

    /// Bound pods that may match `selector`, ascending: a superset of the matching ones,
    /// narrowed by the label index to the pods carrying one of its required labels (the
    /// smallest such set among its `matchLabels` and its `In` / `Exists` expressions), or
    /// every bound pod when it requires no label. Callers still check the selector.
    pub fn bound_pods_maybe_matching(&self, selector: &LabelSelector) -> Vec<PodId> {
        let mut best: Option<Vec<PodId>> = None;
        let mut offer = |ids: Vec<PodId>| {
            if best.as_ref().is_none_or(|b| ids.len() < b.len()) {
                best = Some(ids);
            }
        };
        for (k, v) in &selector.match_labels {
            offer(
                self.by_label
                    .get(k)
                    .and_then(|vs| vs.get(v))
                    .map(|ids| ids.iter().copied().collect())
                    .unwrap_or_default(),
            );
        }
        for r in &selector.match_expressions {
            let values = self.by_label.get(&r.key);
            let ids: BTreeSet<PodId> = match r.operator {
                Operator::In => r
                    .values
                    .iter()
                    .filter_map(|v| values.and_then(|vs| vs.get(v)))
                    .flatten()
                    .copied()
                    .collect(),
                Operator::Exists => values
                    .into_iter()
                    .flat_map(|vs| vs.values())
                    .flatten()
                    .copied()
                    .collect(),
                _ => continue,
            };
            offer(ids.into_iter().collect());
        }
        best.unwrap_or_else(|| self.bound_pods().map(|(id, _, _)| id).collect())
    }

    /// Number of bound pods.
    pub fn bound_count(&self) -> usize {
        self.bound_count
    }

    /// The first host port of `pod` already taken on `node`, if any.
    pub fn host_port_conflict(&self, node: NodeId, ports: &[HostPort]) -> Option<HostPort> {
        if ports.is_empty() {
            return None;
        }
        for &pid in self.pods_on_node.get(node.index())? {
            let (other, _) = self.pod(pid).expect("pod index in sync");
            for p in ports {
                if other.host_ports.iter().any(|o| o.conflicts(p)) {
                    return Some(p.clone());
                }
            }
        }
        None
    }

    /// Resource names (kube spelling) for which `pod` does not fit on `node` now,
    /// GPU included (`nvidia.com/gpu`), pods included. Empty if it fits.
    ///
    /// # Panics
    /// If `node` was removed or is not an id of this cluster.
    pub fn insufficient(&self, pod: &Pod, node: NodeId) -> Vec<String> {
        let n = self.node(node).expect("insufficient: a live node id");
        let used = &self.used[node.index()];
        let mut out = Vec::new();
        if used.pods >= n.allocatable.pods {
            out.push(super::resources::PODS.to_string());
        }
        out.extend(used.insufficient(&pod.requests, &n.allocatable));
        if pod.gpu.amount.is_some()
            && choose_devices(&self.gpu_free[node.index()], pod.gpu.amount).is_none()
        {
            out.push(super::resources::NVIDIA_GPU.to_string());
        }
        out
    }

    /// Binds `pod` to `node`, choosing devices deterministically unless `devices` is
    /// given. Checks resources, devices and host ports (not label constraints: those are
    /// the policies' and the validator's business). Returns the new pod id.
    pub fn bind(
        &mut self,
        mut pod: Pod,
        node: NodeId,
        devices: Option<Vec<u32>>,
    ) -> Result<PodId, ClusterError> {
        let node_name =
            self.node(node)
                .map(|n| n.name.clone())
                .ok_or_else(|| ClusterError::UnknownNode {
                    pod: pod.key(),
                    node: node.to_string(),
                })?;
        let fail = |reason: String, pod: &Pod| ClusterError::DoesNotFit {
            pod: pod.key(),
            node: node_name.clone(),
            reason,
        };
        let short = self.insufficient(&pod, node);
        let short: Vec<_> = short
            .into_iter()
            .filter(|r| r != super::resources::NVIDIA_GPU || devices.is_none())
            .collect();
        if !short.is_empty() {
            let reasons: Vec<String> = short.iter().map(|r| format!("Insufficient {r}")).collect();
            return Err(fail(reasons.join(", "), &pod));
        }
        if let Some(p) = self.host_port_conflict(node, &pod.host_ports) {
            return Err(fail(
                format!("host port {}/{} already in use", p.port, p.protocol),
                &pod,
            ));
        }
        let devices = match devices {
            Some(d) => {
                self.check_devices(&pod, node, &d)
                    .map_err(|r| fail(r, &pod))?;
                d
            }
            None => {
                choose_devices(&self.gpu_free[node.index()], pod.gpu.amount).expect("checked above")
            }
        };
        let per_device = per_device(pod.gpu.amount);
        for &d in &devices {
            self.gpu_free[node.index()][d as usize] -= per_device;
        }
        let mut r = pod.requests.clone();
        r.pods = 1;
        self.used[node.index()].add(&r);
        pod.node_name = Some(node_name);
        pod.gpu_devices = devices.clone();
        let binding = Binding {
            node,
            gpu_devices: devices,
        };
        // Freed slots are reused last-in first-out, each reuse a new generation, so an
        // id of an unbound pod never names the slot's next pod.
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                let s = &mut self.pods[slot];
                s.generation = s.generation.wrapping_add(1);
                slot
            }
            None => {
                self.pods.push(PodSlot::default());
                self.pods.len() - 1
            }
        };
        let id = PodId::new(slot, self.pods[slot].generation);
        for t in &pod.pod_anti_affinity {
            let key = (pod.namespace.clone(), t.clone());
            let nodes = match self.anti_terms.get_mut(&key) {
                Some(nodes) => nodes,
                None => {
                    self.anti_index.insert(&key);
                    self.anti_terms.entry(key).or_default()
                }
            };
            *nodes.entry(node).or_insert(0) += 1;
        }
        if !pod.pod_anti_affinity.is_empty() {
            self.anti_affinity_pods.insert(id);
        }
        for (k, v) in &pod.labels {
            self.by_label
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default()
                .insert(id);
        }
        self.pods[slot].entry = Some((pod, binding));
        self.pods_on_node[node.index()].push(id);
        self.bound_count += 1;
        Ok(id)
    }

    fn check_devices(&self, pod: &Pod, node: NodeId, devices: &[u32]) -> Result<(), String> {
        let free = &self.gpu_free[node.index()];
        let mut seen = std::collections::BTreeSet::new();
        for &d in devices {
            if d as usize >= free.len() || !seen.insert(d) {
                return Err(format!("GPU device index {d} invalid or repeated"));
            }
        }
        match pod.gpu.amount {
            GpuAmount::None if devices.is_empty() => Ok(()),
            GpuAmount::Shared(m) if devices.len() == 1 && free[devices[0] as usize] >= m => Ok(()),
            GpuAmount::Whole(n)
                if devices.len() == n as usize
                    && devices.iter().all(|&d| free[d as usize] == MILLI_PER_GPU) =>
            {
                Ok(())
            }
            _ => Err(format!(
                "Insufficient nvidia.com/gpu on devices {devices:?} (free milli {free:?})"
            )),
        }
    }

    /// Binds a pod that names its node in `pod.node_name` (and, optionally, its devices
    /// in `pod.gpu_devices`).
    pub fn bind_named(&mut self, pod: Pod) -> Result<PodId, ClusterError> {
        let name = pod.node_name.clone().unwrap_or_default();
        let node = self
            .node_id(&name)
            .ok_or_else(|| ClusterError::UnknownNode {
                pod: pod.key(),
                node: name,
            })?;
        let devices = (!pod.gpu_devices.is_empty()).then(|| pod.gpu_devices.clone());
        self.bind(pod, node, devices)
    }

    /// Evicts a bound pod: unbinds it and returns it as a pending pod again (no node
    /// name, no devices), ready to be placed anew.
    pub fn evict(&mut self, id: PodId) -> Result<Pod, ClusterError> {
        let (mut pod, _) = self.unbind(id)?;
        pod.node_name = None;
        pod.gpu_devices.clear();
        Ok(pod)
    }

    /// Removes a bound pod, freeing its resources and devices; returns it with the
    /// binding it had (its `node_name` and devices still set).
    pub fn unbind(&mut self, id: PodId) -> Result<(Pod, Binding), ClusterError> {
        let (pod, b) = self
            .pods
            .get_mut(id.slot())
            .filter(|s| s.generation == id.generation())
            .and_then(|s| s.entry.take())
            .ok_or(ClusterError::UnknownPod(id))?;
        let per_device = per_device(pod.gpu.amount);
        let n = b.node.index();
        for &d in &b.gpu_devices {
            self.gpu_free[n][d as usize] += per_device;
        }
        let mut r = pod.requests.clone();
        r.pods = 1;
        self.used[n].saturating_sub(&r);
        self.pods_on_node[n].retain(|&p| p != id);
        self.anti_affinity_pods.remove(&id);
        for t in &pod.pod_anti_affinity {
            let key = (pod.namespace.clone(), t.clone());
            if let Some(nodes) = self.anti_terms.get_mut(&key) {
                if let Some(c) = nodes.get_mut(&b.node) {
                    *c -= 1;
                    if *c == 0 {
                        nodes.remove(&b.node);
                    }
                }
                if nodes.is_empty() {
                    self.anti_terms.remove(&key);
                    self.anti_index.remove(&key);
                }
            }
        }
        for (k, v) in &pod.labels {
            if let Some(values) = self.by_label.get_mut(k) {
                if let Some(ids) = values.get_mut(v) {
                    ids.remove(&id);
                    if ids.is_empty() {
                        values.remove(v);
                    }
                }
                if values.is_empty() {
                    self.by_label.remove(k);
                }
            }
        }
        self.free_slots.push(id.slot());
        self.bound_count -= 1;
        Ok((pod, b))
    }
}

impl std::ops::Index<NodeId> for Cluster {
    type Output = Node;

    /// Node `id`.
    ///
    /// # Panics
    /// If `id` was removed or is not an id of this cluster; [`Cluster::node`] is the
    /// checked form.
    fn index(&self, id: NodeId) -> &Node {
        self.node(id)
            .unwrap_or_else(|| panic!("{id} is not a live node of this cluster"))
    }
}

/// A placement problem: a cluster (with its bound pods) and the pods waiting for a node.
#[derive(Debug, Clone, Default)]
pub struct Problem {
    /// Nodes and bound pods.
    pub cluster: Cluster,
    /// Pending pods, in input order.
    pub pending: Vec<Pod>,
}

impl Problem {
    /// Splits pods into bound (those with `node_name`) and pending, binding the former.
    pub fn from_parts(nodes: Vec<Node>, pods: Vec<Pod>) -> Result<Self, ClusterError> {
        let mut cluster = Cluster::new(nodes)?;
        let mut pending = Vec::new();
        for p in pods {
            if p.node_name.is_some() {
                cluster.bind_named(p)?;
            } else {
                pending.push(p);
            }
        }
        Ok(Problem { cluster, pending })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gpu::{GpuRequest, NodeGpus};

    const N0: NodeId = NodeId(0);

    fn node(name: &str, cpu: u64, gpus: u32) -> Node {
        let r = Resources {
            cpu_milli: cpu,
            memory_bytes: 1 << 34,
            pods: 110,
            ephemeral_storage_bytes: 1 << 36,
            extended: Default::default(),
        };
        Node {
            name: name.into(),
            capacity: r.clone(),
            allocatable: r,
            gpus: (gpus > 0).then(|| NodeGpus {
                model: "T4".into(),
                count: gpus,
            }),
            ..Default::default()
        }
    }

    fn pod(name: &str, cpu: u64, gpu: GpuAmount) -> Pod {
        Pod {
            name: name.into(),
            namespace: "default".into(),
            requests: Resources::cpu_mem(cpu, 1 << 20),
            gpu: GpuRequest {
                amount: gpu,
                models: vec![],
            },
            ..Default::default()
        }
    }

    #[test]
    fn bind_and_unbind_keep_state_in_sync() {
        let mut c = Cluster::new(vec![node("a", 4000, 2)]).unwrap();
        let p1 = c
            .bind(pod("p1", 1000, GpuAmount::Shared(600)), N0, None)
            .unwrap();
        let p2 = c
            .bind(pod("p2", 1000, GpuAmount::Shared(600)), N0, None)
            .unwrap();
        assert_eq!(c.gpu_free(N0), &[400, 400]);
        let err = c.bind(pod("p3", 1000, GpuAmount::Shared(600)), N0, None);
        assert!(matches!(err, Err(ClusterError::DoesNotFit { .. })));
        c.unbind(p1).unwrap();
        assert_eq!(c.gpu_free(N0), &[1000, 400]);
        assert_eq!(c.used(N0).cpu_milli, 1000);
        c.unbind(p2).unwrap();
        assert_eq!(c.used(N0), &Resources::default());
        assert_eq!(c.bound_count(), 0);
    }

    #[test]
    fn replace_node_keeps_gpu_devices_and_names_exact() {
        let mut c = Cluster::new(vec![node("a", 8000, 2), node("b", 8000, 0)]).unwrap();
        let p = c
            .bind(pod("p", 100, GpuAmount::Shared(300)), N0, None)
            .unwrap();
        assert_eq!(c.gpu_free(N0), &[700, 1000]);
        // More devices: the new one is free, the held share stays held.
        let mut a = c.node(N0).unwrap().clone();
        a.gpus.as_mut().unwrap().count = 4;
        c.replace_node(N0, a).unwrap();
        assert_eq!(c.gpu_free(N0), &[700, 1000, 1000, 1000]);
        // Dropping the held device is refused, and nothing changes.
        let mut a = c.node(N0).unwrap().clone();
        a.gpus = None;
        let e = c.replace_node(N0, a).unwrap_err();
        assert!(
            matches!(e, ClusterError::DeviceInUse { device: 0, .. }),
            "{e}"
        );
        assert_eq!(c.gpu_free(N0), &[700, 1000, 1000, 1000]);
        // A rename moves the name index and the bound pod's node name.
        let mut a = c.node(N0).unwrap().clone();
        a.name = "a2".into();
        assert!(matches!(
            c.replace_node(
                N0,
                Node {
                    name: "b".into(),
                    ..a.clone()
                }
            ),
            Err(ClusterError::DuplicateNode(_))
        ));
        c.replace_node(N0, a).unwrap();
        assert_eq!((c.node_id("a2"), c.node_id("a")), (Some(N0), None));
        assert_eq!(c.pod(p).unwrap().0.node_name.as_deref(), Some("a2"));
        assert!(matches!(
            c.replace_node(NodeId(9), node("z", 1, 0)),
            Err(ClusterError::NoSuchNode(NodeId(9)))
        ));
    }

    #[test]
    fn removed_nodes_and_unbound_pods_are_errors_not_other_objects() {
        let mut c = Cluster::new(vec![node("a", 8000, 1), node("b", 8000, 0)]).unwrap();
        let b = c.node_id("b").unwrap();
        let p = c
            .bind(pod("p", 1000, GpuAmount::Shared(500)), N0, None)
            .unwrap();
        let q = c.bind(pod("q", 1000, GpuAmount::None), b, None).unwrap();
        // Removing a node evicts its pods and vacates its slot for good.
        let (gone, evicted) = c.remove_node(N0).unwrap();
        assert_eq!(gone.name, "a");
        assert_eq!(evicted.len(), 1);
        assert_eq!(evicted[0].0.name, "p");
        assert_eq!((c.node_count(), c.node_slots(), c.bound_count()), (1, 2, 1));
        assert!(c.node(N0).is_none() && c.node_id("a").is_none());
        assert!(matches!(
            c.remove_node(N0),
            Err(ClusterError::NoSuchNode(_))
        ));
        assert!(matches!(
            c.replace_node(N0, node("a", 1, 0)),
            Err(ClusterError::NoSuchNode(_))
        ));
        assert!(matches!(
            c.bind(pod("r", 1, GpuAmount::None), N0, None),
            Err(ClusterError::UnknownNode { .. })
        ));
        assert!(matches!(c.unbind(p), Err(ClusterError::UnknownPod(_))));
        // A new node gets a new id; `b` keeps its own.
        let a2 = c.add_node(node("a", 8000, 0)).unwrap();
        assert_eq!((a2.index(), c.node_id("b")), (2, Some(b)));
        let ids: Vec<NodeId> = c.node_ids().collect();
        assert_eq!(ids, vec![b, a2]);
        // A reused pod slot is a new generation: the old id stays an error.
        let pending = c.evict(q).unwrap();
        assert!(pending.node_name.is_none());
        let r = c.bind(pending, a2, None).unwrap();
        assert_eq!(r.slot(), q.slot());
        assert_ne!(r, q);
        assert!(c.pod(q).is_none() && c.pod(r).is_some());
        assert!(matches!(c.unbind(q), Err(ClusterError::UnknownPod(_))));
        assert_eq!(c.used(b), &Resources::default());
        assert_eq!(c.set_cordoned(a2, true), Ok(false));
        assert!(c.node(a2).unwrap().unschedulable);
    }

    #[test]
    fn too_many_gpus_on_a_node_is_an_error_not_an_allocation() {
        let e = Cluster::new(vec![node("a", 1, u32::MAX)]).unwrap_err();
        assert!(matches!(e, ClusterError::TooManyGpus { .. }), "{e}");
        assert!(Cluster::new(vec![node("a", 1, MAX_GPUS_PER_NODE)]).is_ok());
    }

    #[test]
    fn explicit_zero_pods_capacity_holds_no_pod() {
        let mut n = node("a", 4000, 0);
        n.allocatable.pods = 0;
        let mut c = Cluster::new(vec![n]).unwrap();
        let e = c.bind(pod("p", 1, GpuAmount::None), N0, None).unwrap_err();
        assert!(e.to_string().contains("Insufficient pods"), "{e}");
    }

    #[test]
    fn huge_requests_do_not_wrap_into_a_fit() {
        let mut c = Cluster::new(vec![node("a", u64::MAX, 0)]).unwrap();
        let big = 10_000_000_000_000_000_000;
        let p1 = c.bind(pod("p1", big, GpuAmount::None), N0, None).unwrap();
        let e = c
            .bind(pod("p2", big, GpuAmount::None), N0, None)
            .unwrap_err();
        assert!(e.to_string().contains("Insufficient cpu"), "{e}");
        c.unbind(p1).unwrap();
        assert_eq!(c.used(N0), &Resources::default());
    }

    #[test]
    fn rejects_duplicate_nodes_and_overfull_bound_pods() {
        assert!(Cluster::new(vec![node("a", 1, 0), node("a", 1, 0)]).is_err());
        let mut p = pod("big", 5000, GpuAmount::None);
        p.node_name = Some("a".into());
        let e = Problem::from_parts(vec![node("a", 4000, 0)], vec![p]).unwrap_err();
        assert!(e.to_string().contains("Insufficient cpu"), "{e}");
    }
}
