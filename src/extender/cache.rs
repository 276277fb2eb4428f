//! The extender's view of the cluster: nodes and bound pods, kept in an online
//! [`Session`] of the chosen policy, and the verb logic (filter, prioritize, bind,
//! preempt) evaluated against it.
//!
//! Where the state comes from:
//! - node objects: full-mode requests (every `Nodes.items` entry is upserted) and the
//!   snapshot file;
//! - bound pods: the snapshot file and `/bind` calls (a bind records the pod last seen in
//!   a filter or prioritize call under that namespace/name on the named node).
//!
//! A node that changed (labels, taints, allocatable, cordon) or is new rebuilds the
//! session from the current node list, re-binding every pod; unchanged nodes cost one
//! comparison. Nodes are never removed by requests (kube-scheduler only sends feasible
//! nodes, so absence means nothing); restart with a new snapshot to drop nodes.

use super::convert::PodInfo;
use super::wire::{FailedNodesMap, HostPriority, MetaVictims, MAX_EXTENDER_PRIORITY};
use crate::model::{Binding, Cluster, ClusterError, Node, Pod, PodId};
use crate::place::online::{OnlinePolicy, Session};
use crate::place::FilterContext;
use std::collections::{BTreeMap, HashMap};

/// Reason text for a node name the cache has never seen.
pub const UNKNOWN_NODE: &str = "node(s) unknown to the plimsoll extender's cache";

/// How many pods seen in filter/prioritize calls are remembered for `/bind`.
pub const SEEN_CAPACITY: usize = 100_000;

/// The filter verdict for a list of node names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterVerdict {
    /// Indices (into the request's name list) of the nodes that pass, ascending.
    pub passed: Vec<usize>,
    /// Nodes that failed for a reason preemption might fix → kube reason text.
    pub failed: FailedNodesMap,
    /// Nodes that failed for a reason preemption cannot fix → kube reason text.
    pub unresolvable: FailedNodesMap,
}

/// Nodes, bound pods and the policy session over them.
#[derive(Debug)]
pub struct Cache {
    policy: OnlinePolicy,
    session: Session<'static>,
    /// `namespace/name` → bound pod id.
    bound: HashMap<String, PodId>,
    /// UID → `namespace/name`, for pods bound with a known UID.
    uids: HashMap<String, String>,
    /// Pods seen in filter/prioritize calls, by `namespace/name`, for `/bind`.
    seen: HashMap<String, PodInfo>,
}

impl Cache {
    /// A cache over `nodes` with `pods` bound (each names its node in `node_name`;
    /// pending pods are ignored). Fails if a pod names an unknown node or does not fit.
    pub fn new(
        policy: OnlinePolicy,
        nodes: Vec<Node>,
        pods: Vec<Pod>,
    ) -> Result<Self, ClusterError> {
        let mut cluster = Cluster::new(nodes)?;
        let mut bound = HashMap::new();
        for p in pods.into_iter().filter(|p| p.node_name.is_some()) {
            let key = p.key();
            let id = cluster.bind_named(p)?;
            bound.insert(key, id);
        }
        Ok(Cache {
            session: policy.session(cluster),
            policy,
            bound,
            uids: HashMap::new(),
            seen: HashMap::new(),
        })
    }

    /// The cluster as the cache sees it.
    pub fn cluster(&self) -> &Cluster {
        self.session.cluster()
    }

    /// The policy whose scores prioritize returns.
    pub fn policy(&self) -> &OnlinePolicy {
        &self.policy
    }

    /// Adds new nodes and replaces changed ones (matched by name). Returns how many
    /// were new or changed; when any were, the session is rebuilt and pods that no
    /// longer fit their node are dropped (and returned by key).
    pub fn upsert_nodes(&mut self, nodes: Vec<Node>) -> (usize, Vec<String>) {
        let cluster = self.session.cluster();
        let mut list: Vec<Node> = cluster.nodes().to_vec();
        let mut added: HashMap<String, usize> = HashMap::new();
        let mut changed = 0;
        for n in nodes {
            let at = cluster
                .node_id(&n.name)
                .or_else(|| added.get(&n.name).copied());
            match at {
                Some(id) if list[id] == n => {}
                Some(id) => {
                    list[id] = n;
                    changed += 1;
                }
                None => {
                    added.insert(n.name.clone(), list.len());
                    list.push(n);
                    changed += 1;
                }
            }
        }
        if changed == 0 {
            return (0, Vec::new());
        }
        let dropped = self.rebuild(list);
        (changed, dropped)
    }

    fn rebuild(&mut self, nodes: Vec<Node>) -> Vec<String> {
        let mut cluster = Cluster::new(nodes).expect("names are unique by construction");
        let mut bound = HashMap::new();
        let mut dropped = Vec::new();
        let old: Vec<Pod> = self
            .session
            .cluster()
            .bound_pods()
            .map(|(_, p, _)| p.clone())
            .collect();
        for p in old {
            let key = p.key();
            match cluster.bind_named(p) {
                Ok(id) => {
                    bound.insert(key, id);
                }
                Err(e) => {
                    tracing::warn!(pod = %key, error = %e, "extender cache: pod dropped after a node change");
                    dropped.push(key);
                }
            }
        }
        self.uids.retain(|_, k| bound.contains_key(k));
        self.bound = bound;
        self.session = self.policy.session(cluster);
        dropped
    }

    /// Remembers `pod` for a later `/bind`; if it is already bound in the cache (the
    /// scheduler is placing it again), unbinds it first.
    fn note(&mut self, pod: &PodInfo) {
        let key = pod.key();
        if let Some(id) = self.bound.remove(&key) {
            let _ = self.session.remove(id);
        }
        if self.seen.len() >= SEEN_CAPACITY && !self.seen.contains_key(&key) {
            self.seen.clear();
        }
        self.seen.insert(key, pod.clone());
    }

    /// kube-scheduler's filters for `pod` on each named node, with kube's reason texts.
    /// A node the cache does not know fails as unresolvable with [`UNKNOWN_NODE`].
    pub fn filter<S: AsRef<str>>(&mut self, pod: &PodInfo, names: &[S]) -> FilterVerdict {
        self.note(pod);
        let cluster = self.session.cluster();
        let ctx = FilterContext::new(cluster, &pod.pod);
        let mut v = FilterVerdict::default();
        for (i, name) in names.iter().enumerate() {
            let name = name.as_ref();
            let Some(id) = cluster.node_id(name) else {
                v.unresolvable
                    .insert(name.to_string(), UNKNOWN_NODE.to_string());
                continue;
            };
            match ctx.check(id) {
                Ok(()) => v.passed.push(i),
                Err(reasons) => {
                    let text = reasons
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ");
                    if reasons.iter().any(|r| r.is_unresolvable()) {
                        v.unresolvable.insert(name.to_string(), text);
                    } else {
                        v.failed.insert(name.to_string(), text);
                    }
                }
            }
        }
        v
    }

    /// The policy's scores for `pod` on each named node, mapped onto `0..=10`: min–max
    /// over the named feasible nodes, rounded; all feasible nodes get 10 when their
    /// scores are equal. Infeasible and unknown nodes get 0. One entry per name, in
    /// request order.
    pub fn prioritize<S: AsRef<str>>(&mut self, pod: &PodInfo, names: &[S]) -> Vec<HostPriority> {
        self.note(pod);
        let scores = self.session.scores(&pod.pod);
        let cluster = self.session.cluster();
        let mut by_node = vec![None; cluster.nodes().len()];
        for (n, s) in scores {
            by_node[n] = Some(s);
        }
        let raw: Vec<Option<f64>> = names
            .iter()
            .map(|name| cluster.node_id(name.as_ref()).and_then(|id| by_node[id]))
            .collect();
        let (lo, hi) = raw
            .iter()
            .flatten()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &s| {
                (lo.min(s), hi.max(s))
            });
        names
            .iter()
            .zip(raw)
            .map(|(name, s)| HostPriority {
                host: name.as_ref().to_string(),
                score: match s {
                    None => 0,
                    Some(_) if hi - lo <= f64::EPSILON * hi.abs().max(1.0) => MAX_EXTENDER_PRIORITY,
                    Some(s) => ((s - lo) / (hi - lo) * MAX_EXTENDER_PRIORITY as f64)
                        .round()
                        .clamp(0.0, MAX_EXTENDER_PRIORITY as f64)
                        as i64,
                },
            })
            .collect()
    }

    /// Records a binding: the pod last seen under `namespace/name` is bound to `node`.
    /// Errors (as text for `ExtenderBindingResult.Error`) if the pod was never seen, the
    /// node is unknown, or the pod does not fit there in the cache's accounting.
    pub fn bind(
        &mut self,
        namespace: &str,
        name: &str,
        uid: &str,
        node: &str,
    ) -> Result<(), String> {
        let ns = if namespace.is_empty() {
            "default"
        } else {
            namespace
        };
        let key = format!("{ns}/{name}");
        let Some(info) = self.seen.get(&key).cloned() else {
            return Err(format!(
                "plimsoll: pod {key} was not seen in a filter or prioritize call; cannot record its binding"
            ));
        };
        if !uid.is_empty() && !info.uid.is_empty() && info.uid != uid {
            return Err(format!(
                "plimsoll: pod {key} has UID {uid}, but the pod seen had UID {}",
                info.uid
            ));
        }
        let Some(node_id) = self.session.cluster().node_id(node) else {
            return Err(format!("plimsoll: node {node:?} is not in the cache"));
        };
        let mut pod = info.pod.clone();
        if let Some(id) = self.bound.remove(&key) {
            let _ = self.session.remove(id);
        }
        pod.node_name = None;
        pod.gpu_devices.clear();
        let devices = self.session.cluster().insufficient(&pod, node_id);
        if !devices.is_empty() {
            return Err(format!(
                "plimsoll: pod {key} does not fit node {node} in the cache: Insufficient {}",
                devices.join(", Insufficient ")
            ));
        }
        let binding = Binding {
            node: node_id,
            gpu_devices: crate::model::gpu::choose_devices(
                self.session.cluster().gpu_free(node_id),
                pod.gpu.amount,
            )
            .unwrap_or_default(),
        };
        let id = self
            .session
            .bind(pod, &binding)
            .map_err(|e| format!("plimsoll: {e}"))?;
        self.seen.remove(&key);
        self.bound.insert(key.clone(), id);
        let uid = if uid.is_empty() {
            info_uid_fallback(&key)
        } else {
            uid.to_string()
        };
        self.uids.insert(uid, key);
        Ok(())
    }

    /// The bound pod with this UID or `namespace/name`, if any.
    pub fn bound_pod(&self, uid_or_key: &str) -> Option<&Pod> {
        let key = self.uids.get(uid_or_key).map_or(uid_or_key, String::as_str);
        let id = self.bound.get(key)?;
        self.session.cluster().pod(*id).map(|(p, _)| p)
    }

    /// Number of pods bound in the cache.
    pub fn bound_count(&self) -> usize {
        self.bound.len()
    }

    /// Preemption: keeps each candidate node on which `pod` passes every filter once that
    /// node's victims are removed, with the victims unchanged; drops the others. Victims
    /// are named by UID, or by `namespace/name` when the UID is not known; a victim the
    /// cache does not hold is not counted against the node anyway, so it needs no
    /// removal. Unknown nodes are dropped.
    pub fn preempt(
        &self,
        pod: &PodInfo,
        candidates: BTreeMap<String, (MetaVictims, Vec<String>)>,
    ) -> BTreeMap<String, MetaVictims> {
        let mut out = BTreeMap::new();
        let mut cluster = self.session.cluster().clone();
        if let Some(&id) = self.bound.get(&pod.key()) {
            let _ = cluster.unbind(id);
        }
        for (node, (victims, keys)) in candidates {
            let Some(node_id) = cluster.node_id(&node) else {
                continue;
            };
            let mut removed: Vec<(Pod, Binding)> = Vec::new();
            for (meta, key) in victims.pods.iter().zip(&keys) {
                let key = self.uids.get(&meta.uid).unwrap_or(key);
                if let Some(&id) = self.bound.get(key) {
                    if cluster.pod(id).is_some_and(|(_, b)| b.node == node_id) {
                        if let Ok(pb) = cluster.unbind(id) {
                            removed.push(pb);
                        }
                    }
                }
            }
            let fits = FilterContext::new(&cluster, &pod.pod)
                .check(node_id)
                .is_ok();
            // Put the victims back (same devices) before the next candidate.
            // Reverse order: the cluster reuses freed slots last-in first-out, so the
            // pods get their old ids back and `self.bound` stays valid for the clone.
            for (p, b) in removed.into_iter().rev() {
                let devices = Some(b.gpu_devices.clone());
                let _ = cluster.bind(p, b.node, devices);
            }
            if fits {
                out.insert(node, victims);
            }
        }
        out
    }
}

/// Key used as a UID when `/bind` names none (so every bound pod has an entry).
fn info_uid_fallback(key: &str) -> String {
    format!("plimsoll-key:{key}")
}
