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
//! A node that changed (labels, taints, allocatable, cordon) or is new is applied to the
//! live session incrementally (a changed node's own pods are bound back, those that no
//! longer fit dropped); unchanged nodes cost one comparison. Nodes are never removed by
//! requests (kube-scheduler only sends feasible nodes, so absence means nothing);
//! restart with a new snapshot to drop nodes.

use super::classes::NodeClasses;
use super::convert::PodInfo;
use super::hash::FastHash;
use super::wire::{FailedNodesMap, HostPriority, MetaVictims, MAX_EXTENDER_PRIORITY};
use crate::model::{Binding, Cluster, ClusterError, Node, NodeId, Pod, PodId, MAX_GPUS_PER_NODE};
use crate::place::clock::WallClock;
use crate::place::online::{OnlinePolicy, Session};
use crate::place::scheduler::Scheduler;
use crate::place::score::fgd::TargetWorkload;
use crate::place::FilterContext;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Reason text for a node name the cache has never seen.
pub const UNKNOWN_NODE: &str = "node(s) unknown to the plimsoll extender's cache";

/// How many pods seen in filter/prioritize calls are remembered for `/bind`, the least
/// recently seen dropped first. kube-scheduler binds a pod right after filtering and
/// scoring it, so only the pods between those calls need to be here; pods that are
/// filtered and never bound (unschedulable, or bound by another scheduler) would
/// otherwise pile up with every distinct pod name.
pub const SEEN_CAPACITY: usize = 4096;

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

/// The filter verdict of each entry of a list of node ids, with the reason texts
/// interned: `codes[i]` is [`Verdicts::PASS`] or `k + 1` for `texts[k]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdicts {
    /// One code per requested node, in request order.
    pub codes: Vec<u32>,
    /// Distinct failure texts, each with whether preemption cannot fix it.
    pub texts: Vec<(String, bool)>,
}

impl Verdicts {
    /// The code of a node that passes.
    pub const PASS: u32 = 0;

    /// The failure text and unresolvable flag behind a non-pass code.
    pub fn text(&self, code: u32) -> Option<&(String, bool)> {
        code.checked_sub(1).map(|k| &self.texts[k as usize])
    }
}

/// Nodes, bound pods and the policy session over them.
///
/// Filter and prioritize only read the cache (`&self`): the server keeps it behind a
/// read–write lock and serves them concurrently. Prioritize needs a mutable session (the
/// policy engine keeps per-signature caches), so it takes one of a few replicas of the
/// session, each behind its own mutex; every change to the cache is applied to the
/// primary session and to every replica alike.
#[derive(Debug)]
pub struct Cache {
    policy: OnlinePolicy,
    /// The live cluster and the policy: the one scheduling interface (online).
    scheduler: Scheduler,
    /// `namespace/name` → bound pod id.
    bound: HashMap<String, PodId>,
    /// UID → `namespace/name`, for pods bound with a known UID.
    uids: HashMap<String, String>,
    /// Pods seen in filter/prioritize calls, by `namespace/name`, for `/bind`.
    seen: Mutex<SeenPods>,
    /// Scoring replicas of `session` (`None` until first used after a rebuild).
    replicas: Vec<Mutex<Option<Session<'static>>>>,
    next_replica: AtomicUsize,
    /// FGD's target workload once derived (from the bound pods and the first pod scored,
    /// as the single session did), shared by the replicas.
    workload: Mutex<Option<TargetWorkload>>,
    classes: NodeClasses,
    /// Node name → id, with a fast hasher.
    index: HashMap<Box<str>, NodeId, FastHash>,
    /// Bumped whenever node ids change (a rebuild): resolved name lists are keyed by it.
    layout: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock is taken over: no verb leaves these half-changed.
    m.lock().unwrap_or_else(|e| e.into_inner())
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
        let replicas = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, 16);
        Ok(Cache {
            classes: NodeClasses::new(&cluster),
            index: name_index(&cluster),
            scheduler: Scheduler::online(&policy, cluster, WallClock::shared()),
            policy,
            bound,
            uids: HashMap::new(),
            seen: Mutex::new(SeenPods::default()),
            replicas: (0..replicas).map(|_| Mutex::new(None)).collect(),
            next_replica: AtomicUsize::new(0),
            workload: Mutex::new(None),
            layout: 0,
        })
    }

    /// The cluster as the cache sees it.
    pub fn cluster(&self) -> &Cluster {
        self.scheduler.cluster()
    }

    /// The policy whose scores prioritize returns.
    pub fn policy(&self) -> &OnlinePolicy {
        &self.policy
    }

    /// Generation of the node list: changes whenever node ids may have changed.
    pub fn layout(&self) -> u64 {
        self.layout
    }

    /// Adds new nodes and replaces changed ones (matched by name). Returns how many
    /// were new or changed, and the pods dropped because they no longer fit their
    /// changed node (by key). Each change is applied to the live session incrementally
    /// (see [`Session::replace_node`]); unchanged nodes cost one comparison.
    pub fn upsert_nodes(&mut self, nodes: Vec<Node>) -> (usize, Vec<String>) {
        let mut changed = 0;
        let mut dropped = Vec::new();
        for n in nodes {
            if n.gpu_count() > MAX_GPUS_PER_NODE {
                // The manifest reader refuses these; a node built otherwise is skipped.
                tracing::warn!(node = %n.name, gpus = n.gpu_count(), "extender cache: node skipped: too many GPUs");
                continue;
            }
            match self.scheduler.cluster().node_id(&n.name) {
                Some(id) if self.scheduler.cluster()[id] == n => {}
                Some(id) => {
                    dropped.extend(self.replace_node(id, n));
                    changed += 1;
                }
                None => {
                    self.add_node(n);
                    changed += 1;
                }
            }
        }
        (changed, dropped)
    }

    /// The scheduler's online session.
    fn primary(&mut self) -> &mut Session<'static> {
        self.scheduler
            .session_mut()
            .expect("the extender's scheduler is online")
    }

    /// Applies `change` to the primary session and to every live replica (a replica
    /// whose answer differs is dropped and cloned afresh when next needed).
    fn all_sessions<T: PartialEq>(
        &mut self,
        change: impl Fn(&mut Session<'static>) -> Result<T, ClusterError>,
    ) -> Result<T, ClusterError> {
        let out = change(self.primary())?;
        for r in &mut self.replicas {
            let slot = r.get_mut().unwrap_or_else(|e| e.into_inner());
            if slot
                .as_mut()
                .is_some_and(|s| change(s).ok().as_ref() != Some(&out))
            {
                *slot = None;
            }
        }
        Ok(out)
    }

    fn add_node(&mut self, node: Node) {
        let name: Box<str> = node.name.as_str().into();
        match self.all_sessions(|s| s.add_node(node.clone())) {
            Ok(id) => {
                self.classes.node_changed(self.scheduler.cluster(), id);
                self.index.insert(name, id);
                // A name that resolved to no node now resolves.
                self.layout += 1;
            }
            Err(e) => tracing::warn!(node = %name, error = %e, "extender cache: node not added"),
        }
    }

    /// Replaces node `id`'s description. Its pods are taken off, the node replaced, and
    /// the pods bound back in their previous order (same devices where the node still
    /// has them): those that no longer fit are dropped and returned by key.
    fn replace_node(&mut self, id: NodeId, node: Node) -> Vec<String> {
        let mut pods = Vec::new();
        for pid in self.scheduler.cluster().pods_on(id).to_vec() {
            if let Ok((pod, b)) = self.all_sessions(|s| s.remove(pid)) {
                pods.push((pod, b));
            }
        }
        if let Err(e) = self.all_sessions(|s| s.replace_node(id, node.clone()).map(|_| ())) {
            tracing::warn!(node = %node.name, error = %e, "extender cache: node not replaced");
        }
        let mut dropped = Vec::new();
        for (pod, b) in pods {
            let key = pod.key();
            let rebound = self.all_sessions(|s| s.bind(pod.clone(), &b)).or_else(|e| {
                // Its devices renumbered or gone: take free ones, as a bind would.
                let free = self.scheduler.cluster().gpu_free(id);
                let devices = crate::model::gpu::choose_devices(free, pod.gpu.amount).ok_or(e)?;
                let b = Binding {
                    node: id,
                    gpu_devices: devices,
                };
                self.all_sessions(|s| s.bind(pod.clone(), &b))
            });
            match rebound {
                Ok(pid) => {
                    self.bound.insert(key, pid);
                }
                Err(e) => {
                    tracing::warn!(pod = %key, error = %e, "extender cache: pod dropped after a node change");
                    self.bound.remove(&key);
                    dropped.push(key);
                }
            }
        }
        self.uids.retain(|_, k| self.bound.contains_key(k));
        self.classes.node_changed(self.scheduler.cluster(), id);
        dropped
    }

    /// Removes a bound pod from the session and every replica.
    fn remove_bound(&mut self, id: PodId) {
        let Ok((_, b)) = self.scheduler.unbind(id) else {
            return;
        };
        self.classes.update(self.scheduler.cluster(), b.node);
        for r in &mut self.replicas {
            let slot = r.get_mut().unwrap_or_else(|e| e.into_inner());
            if slot.as_mut().is_some_and(|s| s.remove(id).is_err()) {
                *slot = None;
            }
        }
    }

    /// Binds a pod in the session and every replica (a replica that disagrees is dropped
    /// and cloned afresh when next needed).
    fn bind_all(&mut self, pod: Pod, binding: &Binding) -> Result<PodId, ClusterError> {
        let id = self.scheduler.bind(pod.clone(), binding)?;
        self.classes.update(self.scheduler.cluster(), binding.node);
        for r in &mut self.replicas {
            let slot = r.get_mut().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = slot.as_mut() {
                if s.bind(pod.clone(), binding).ok() != Some(id) {
                    *slot = None;
                }
            }
        }
        Ok(id)
    }

    /// Whether the pod `namespace/name` is bound in the cache.
    pub fn is_bound(&self, key: &str) -> bool {
        self.bound.contains_key(key)
    }

    /// Unbinds the pod `namespace/name` if the cache holds it as bound (the scheduler is
    /// placing it again). Returns whether it was bound.
    pub fn unbind_key(&mut self, key: &str) -> bool {
        match self.bound.remove(key) {
            Some(id) => {
                self.remove_bound(id);
                self.uids.retain(|_, k| k != key);
                true
            }
            None => false,
        }
    }

    /// Remembers `pod` for a later `/bind` (the pod must not be bound in the cache:
    /// [`Cache::unbind_key`] first).
    pub fn remember(&self, pod: &PodInfo) {
        lock(&self.seen).insert(pod.key(), pod.clone());
    }

    /// Remembers `pod` for a later `/bind`; if it is already bound in the cache (the
    /// scheduler is placing it again), unbinds it first.
    fn note(&mut self, pod: &PodInfo) {
        self.unbind_key(&pod.key());
        self.remember(pod);
    }

    /// The node id of every name (`None` for names the cache does not know).
    pub fn node_ids<S: AsRef<str>>(&self, names: &[S]) -> Vec<Option<NodeId>> {
        names
            .iter()
            .map(|n| self.index.get(n.as_ref()).copied())
            .collect()
    }

    /// kube-scheduler's filters for `pod` on each node (`None`: unknown to the cache,
    /// unresolvable with [`UNKNOWN_NODE`]). Read-only: the pod is filtered as the cache
    /// holds it (see [`Cache::unbind_key`]). Nodes of one `NodeClasses` class are
    /// checked once.
    pub fn filter_ids(&self, pod: &Pod, ids: &[Option<NodeId>]) -> Verdicts {
        let cluster = self.scheduler.cluster();
        let ctx = FilterContext::new(cluster, pod);
        let by_class = NodeClasses::valid_for(pod);
        const NONE: u32 = u32::MAX;
        let mut memo = vec![NONE; if by_class { self.classes.count() } else { 0 }];
        let mut v = Verdicts {
            codes: Vec::with_capacity(ids.len()),
            texts: Vec::new(),
        };
        let mut intern: HashMap<(String, bool), u32> = HashMap::new();
        let mut code_of = |text: String, unresolvable: bool, texts: &mut Vec<(String, bool)>| {
            let key = (text, unresolvable);
            if let Some(&c) = intern.get(&key) {
                return c;
            }
            texts.push(key.clone());
            let c = texts.len() as u32;
            intern.insert(key, c);
            c
        };
        for id in ids {
            let Some(id) = *id else {
                let c = code_of(UNKNOWN_NODE.to_string(), true, &mut v.texts);
                v.codes.push(c);
                continue;
            };
            let class = if by_class {
                self.classes.of(id) as usize
            } else {
                0
            };
            if by_class && memo[class] != NONE {
                v.codes.push(memo[class]);
                continue;
            }
            let c = match ctx.check(id) {
                Ok(()) => Verdicts::PASS,
                Err(reasons) => {
                    let text = reasons
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ");
                    let unresolvable = reasons.iter().any(|r| r.is_unresolvable());
                    code_of(text, unresolvable, &mut v.texts)
                }
            };
            if by_class {
                memo[class] = c;
            }
            v.codes.push(c);
        }
        v
    }

    /// kube-scheduler's filters for `pod` on each named node, with kube's reason texts.
    /// A node the cache does not know fails as unresolvable with [`UNKNOWN_NODE`].
    pub fn filter<S: AsRef<str>>(&mut self, pod: &PodInfo, names: &[S]) -> FilterVerdict {
        self.note(pod);
        let v = self.filter_ids(&pod.pod, &self.node_ids(names));
        let mut out = FilterVerdict::default();
        for (i, (name, &code)) in names.iter().zip(&v.codes).enumerate() {
            match v.text(code) {
                None => out.passed.push(i),
                Some((text, true)) => {
                    out.unresolvable
                        .insert(name.as_ref().to_string(), text.clone());
                }
                Some((text, false)) => {
                    out.failed.insert(name.as_ref().to_string(), text.clone());
                }
            }
        }
        out
    }

    /// Runs `f` on a scoring replica of the session (cloned from the primary when first
    /// needed), FGD's shared target workload set.
    fn with_replica<R>(&self, f: impl FnOnce(&mut Session<'static>) -> R) -> R {
        let n = self.replicas.len();
        let start = self.next_replica.fetch_add(1, Ordering::Relaxed) % n;
        let mut guard = (0..n)
            .find_map(|k| self.replicas[(start + k) % n].try_lock().ok())
            .unwrap_or_else(|| lock(&self.replicas[start]));
        let s = guard.get_or_insert_with(|| {
            self.scheduler
                .session()
                .expect("the extender's scheduler is online")
                .clone()
        });
        if s.target_workload().is_none() && self.policy.target_workload.is_none() {
            let mut shared = lock(&self.workload);
            match shared.as_ref() {
                Some(w) => s.set_target_workload(w.clone()),
                None => {
                    // The first pod scored derives it (FGD only), as in one session.
                    let r = f(s);
                    *shared = s.target_workload().cloned();
                    return r;
                }
            }
        }
        f(s)
    }

    /// The policy's scores for `pod` on each node, mapped onto `0..=10` as
    /// [`Cache::prioritize`] does. Read-only.
    pub fn prioritize_ids(&self, pod: &Pod, ids: &[Option<NodeId>]) -> Vec<i64> {
        let scores = self.with_replica(|s| s.scores(pod));
        // Score by node id, NaN for infeasible nodes (scores are finite).
        let mut by_node = vec![f64::NAN; self.scheduler.cluster().node_slots()];
        for (n, s) in scores {
            by_node[n] = s;
        }
        let raw = |id: &Option<NodeId>| id.map_or(f64::NAN, |id| by_node[id]);
        let (lo, hi) = ids
            .iter()
            .map(raw)
            .filter(|s| !s.is_nan())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
                (lo.min(s), hi.max(s))
            });
        let flat = hi - lo <= f64::EPSILON * hi.abs().max(1.0);
        ids.iter()
            .map(|id| match raw(id) {
                s if s.is_nan() => 0,
                _ if flat => MAX_EXTENDER_PRIORITY,
                // The same operations as the reference (a scale factor rounds differently).
                s => ((s - lo) / (hi - lo) * MAX_EXTENDER_PRIORITY as f64)
                    .round()
                    .clamp(0.0, MAX_EXTENDER_PRIORITY as f64) as i64,
            })
            .collect()
    }

    /// The policy's scores for `pod` on each named node, mapped onto `0..=10`: min–max
    /// over the named feasible nodes, rounded; all feasible nodes get 10 when their
    /// scores are equal. Infeasible and unknown nodes get 0. One entry per name, in
    /// request order.
    pub fn prioritize<S: AsRef<str>>(&mut self, pod: &PodInfo, names: &[S]) -> Vec<HostPriority> {
        self.note(pod);
        let scores = self.prioritize_ids(&pod.pod, &self.node_ids(names));
        names
            .iter()
            .zip(scores)
            .map(|(name, score)| HostPriority {
                host: name.as_ref().to_string(),
                score,
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
        let Some(info) = lock(&self.seen).get(&key).cloned() else {
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
        let Some(node_id) = self.scheduler.cluster().node_id(node) else {
            return Err(format!("plimsoll: node {node:?} is not in the cache"));
        };
        let mut pod = info.pod.clone();
        self.unbind_key(&key);
        pod.node_name = None;
        pod.gpu_devices.clear();
        let devices = self.scheduler.cluster().insufficient(&pod, node_id);
        if !devices.is_empty() {
            return Err(format!(
                "plimsoll: pod {key} does not fit node {node} in the cache: Insufficient {}",
                devices.join(", Insufficient ")
            ));
        }
        let binding = Binding {
            node: node_id,
            gpu_devices: crate::model::gpu::choose_devices(
                self.scheduler.cluster().gpu_free(node_id),
                pod.gpu.amount,
            )
            .unwrap_or_default(),
        };
        let id = self
            .bind_all(pod, &binding)
            .map_err(|e| format!("plimsoll: {e}"))?;
        lock(&self.seen).remove(&key);
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
        self.scheduler.cluster().pod(*id).map(|(p, _)| p)
    }

    /// Number of pods bound in the cache.
    pub fn bound_count(&self) -> usize {
        self.bound.len()
    }

    /// Number of pods remembered from filter/prioritize calls for `/bind` (at most
    /// [`SEEN_CAPACITY`]).
    pub fn seen_count(&self) -> usize {
        lock(&self.seen).len()
    }

    /// Number of UIDs recorded for bound pods (never more than the bound pods).
    pub fn uid_count(&self) -> usize {
        self.uids.len()
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
        let mut cluster = self.scheduler.cluster().clone();
        if let Some(&id) = self.bound.get(&pod.key()) {
            let _ = cluster.unbind(id);
        }
        // Ids of victims bound back into the scratch cluster (new ids: a pod id names
        // one binding, never the next pod in its slot).
        let mut rebound: HashMap<String, PodId> = HashMap::new();
        for (node, (victims, keys)) in candidates {
            let Some(node_id) = cluster.node_id(&node) else {
                continue;
            };
            let mut removed: Vec<(Pod, Binding)> = Vec::new();
            for (meta, key) in victims.pods.iter().zip(&keys) {
                let key = self.uids.get(&meta.uid).unwrap_or(key);
                if let Some(&id) = rebound.get(key).or_else(|| self.bound.get(key)) {
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
            for (p, b) in removed {
                let key = p.key();
                if let Ok(id) = cluster.bind(p, b.node, Some(b.gpu_devices)) {
                    rebound.insert(key, id);
                }
            }
            if fits {
                out.insert(node, victims);
            }
        }
        out
    }
}

fn name_index(cluster: &Cluster) -> HashMap<Box<str>, NodeId, FastHash> {
    cluster
        .nodes()
        .map(|(i, n)| (n.name.as_str().into(), i))
        .collect()
}

/// Key used as a UID when `/bind` names none (so every bound pod has an entry).
fn info_uid_fallback(key: &str) -> String {
    format!("plimsoll-key:{key}")
}

/// The pods seen in filter/prioritize calls, by `namespace/name`, at most
/// [`SEEN_CAPACITY`] of them: inserting beyond that drops the least recently seen.
#[derive(Debug, Default)]
struct SeenPods {
    /// Key → (insertion stamp, pod).
    pods: HashMap<String, (u64, PodInfo)>,
    /// Keys by insertion stamp, oldest first; an entry whose stamp differs from the
    /// map's is stale (the key was seen again, or removed).
    order: std::collections::VecDeque<(u64, String)>,
    next: u64,
}

impl SeenPods {
    fn len(&self) -> usize {
        self.pods.len()
    }

    fn get(&self, key: &str) -> Option<&PodInfo> {
        self.pods.get(key).map(|(_, p)| p)
    }

    fn remove(&mut self, key: &str) {
        self.pods.remove(key);
    }

    fn insert(&mut self, key: String, pod: PodInfo) {
        let stamp = self.next;
        self.next += 1;
        self.order.push_back((stamp, key.clone()));
        self.pods.insert(key, (stamp, pod));
        while self.pods.len() > SEEN_CAPACITY {
            let Some((s, k)) = self.order.pop_front() else {
                break;
            };
            if self.pods.get(&k).is_some_and(|(at, _)| *at == s) {
                self.pods.remove(&k);
            }
        }
        // Stale entries (keys seen again or removed) are dropped once they outnumber
        // the live ones, so the order list stays within twice the capacity.
        if self.order.len() > 2 * SEEN_CAPACITY.max(self.pods.len()) {
            let pods = &self.pods;
            self.order
                .retain(|(s, k)| pods.get(k).is_some_and(|(at, _)| at == s));
        }
    }
}

#[cfg(test)]
mod seen_tests {
    use super::*;

    fn info(name: &str) -> PodInfo {
        PodInfo {
            pod: Pod {
                name: name.into(),
                namespace: "default".into(),
                ..Default::default()
            },
            uid: String::new(),
        }
    }

    #[test]
    fn seen_pods_stay_bounded_and_drop_the_least_recent() {
        let mut s = SeenPods::default();
        s.insert("default/keep".into(), info("keep"));
        for i in 0..3 * SEEN_CAPACITY {
            s.insert(format!("default/p{i}"), info("p"));
            if i % 100 == 0 {
                s.insert("default/keep".into(), info("keep"));
            }
            assert!(s.len() <= SEEN_CAPACITY);
            assert!(s.order.len() <= 2 * SEEN_CAPACITY + 1);
        }
        assert_eq!(s.len(), SEEN_CAPACITY);
        assert!(s.get("default/keep").is_some(), "recently seen again");
        assert!(s.get("default/p0").is_none(), "oldest dropped");
        s.remove("default/keep");
        assert!(s.get("default/keep").is_none());
    }
}
