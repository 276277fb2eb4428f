//! The scheduling loop's view of the cluster, kept by watches: the nodes, the pods bound
//! to them (including the ones this scheduler has *assumed* — decided and sent to the
//! `binding` subresource, not yet confirmed by the watch), and one core
//! [`Scheduler`] per policy in use, all fed the same changes.
//!
//! Nothing here talks to the API: the loop ([`super::run`]) applies watch events and bind
//! results to a [`Cache`] and acts on what it returns, so the bookkeeping is tested on its
//! own.

use crate::model::{Binding, Node, NodeId, Pod, PodId};
use crate::place::clock::SharedClock;
use crate::place::scheduler::{BatchDecision, Scheduler, SchedulerError};
use crate::place::{PlaceError, PolicyOptions};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// One policy's scheduler and its names for nodes and pods.
struct PolicyState {
    sched: Scheduler,
    node_ids: HashMap<String, NodeId>,
    pod_ids: HashMap<String, PodId>,
}

impl PolicyState {
    fn new(sched: Scheduler, uid_of_key: &HashMap<String, String>) -> Self {
        let cluster = sched.cluster();
        let node_ids = cluster
            .nodes()
            .map(|(id, n)| (n.name.clone(), id))
            .collect();
        let pod_ids = cluster
            .bound_pods()
            .filter_map(|(id, p, _)| uid_of_key.get(&p.key()).map(|u| (u.clone(), id)))
            .collect();
        PolicyState {
            sched,
            node_ids,
            pod_ids,
        }
    }
}

/// Where a pod of a batch went: its node's name and GPU devices.
pub type Placed = (String, Vec<u32>);

/// A bound (or assumed) pod as the cache holds it.
#[derive(Debug, Clone)]
pub struct BoundPod {
    /// `namespace/name`.
    pub key: String,
    /// Its node.
    pub node: String,
    /// Decided here and sent for binding, not yet seen bound by the watch.
    pub assumed: bool,
}

/// The cluster as the scheduler sees it, over every policy in use.
pub struct Cache {
    options: PolicyOptions,
    clock: SharedClock,
    budget: Duration,
    default_policy: String,
    policies: BTreeMap<String, PolicyState>,
    nodes: BTreeMap<String, Node>,
    bound: HashMap<String, BoundPod>,
    /// `namespace/name` → uid of bound pods (to rebuild a new policy's pod ids).
    uid_of_key: HashMap<String, String>,
    /// Pods of bound entries, by uid (to bind them into a policy made later).
    bound_models: HashMap<String, (Pod, Vec<u32>)>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("default_policy", &self.default_policy)
            .field("policies", &self.policies.keys().collect::<Vec<_>>())
            .field("nodes", &self.nodes.len())
            .field("bound", &self.bound.len())
            .finish()
    }
}

impl Cache {
    /// An empty cluster scheduled by `default_policy` (checked now).
    pub fn new(
        default_policy: &str,
        options: PolicyOptions,
        clock: SharedClock,
        budget: Duration,
    ) -> Result<Self, PlaceError> {
        let mut cache = Cache {
            options,
            clock,
            budget,
            default_policy: default_policy.to_string(),
            policies: BTreeMap::new(),
            nodes: BTreeMap::new(),
            bound: HashMap::new(),
            uid_of_key: HashMap::new(),
            bound_models: HashMap::new(),
        };
        cache.ensure_policy(default_policy)?;
        Ok(cache)
    }

    /// The default policy's name.
    pub fn default_policy(&self) -> &str {
        &self.default_policy
    }

    /// Makes sure a scheduler for `policy` exists (built from the current cluster).
    pub fn ensure_policy(&mut self, policy: &str) -> Result<(), PlaceError> {
        if self.policies.contains_key(policy) {
            return Ok(());
        }
        let cluster = match self.policies.get(&self.default_policy) {
            Some(d) => d.sched.cluster().clone(),
            None => crate::model::Cluster::new(self.nodes.values().cloned().collect())?,
        };
        let sched = Scheduler::by_name(policy, &self.options, cluster, self.clock.clone())?
            .with_budget(self.budget);
        let state = PolicyState::new(sched, &self.uid_of_key);
        self.policies.insert(policy.to_string(), state);
        Ok(())
    }

    /// The default policy's scheduler (the cluster every policy shares).
    pub fn scheduler(&self) -> &Scheduler {
        &self.policies[&self.default_policy].sched
    }

    /// Mutable access to one policy's scheduler (for preemption on its cluster).
    pub fn scheduler_of(&mut self, policy: &str) -> Option<&mut Scheduler> {
        self.policies.get_mut(policy).map(|p| &mut p.sched)
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The bound or assumed pod with this uid.
    pub fn bound(&self, uid: &str) -> Option<&BoundPod> {
        self.bound.get(uid)
    }

    /// Number of bound (and assumed) pods.
    pub fn bound_count(&self) -> usize {
        self.bound.len()
    }

    /// Adds or updates a node; true if the scheduler's view changed (capacity, labels,
    /// taints, cordon), so pods waiting for room deserve another try.
    pub fn upsert_node(&mut self, node: Node) -> bool {
        if self.nodes.get(&node.name) == Some(&node) {
            return false;
        }
        let name = node.name.clone();
        for (policy, st) in &mut self.policies {
            let result = match st.node_ids.get(&name) {
                Some(&id) => st.sched.replace_node(id, node.clone()).map(|_| id),
                None => st.sched.add_node(node.clone()),
            };
            match result {
                Ok(id) => {
                    st.node_ids.insert(name.clone(), id);
                }
                Err(e) => tracing::warn!(%policy, node = %name, error = %e, "node update refused"),
            }
        }
        self.nodes.insert(name, node);
        true
    }

    /// Removes a node and every pod bound to it from the view; returns those pods' uids.
    pub fn remove_node(&mut self, name: &str) -> Vec<String> {
        if self.nodes.remove(name).is_none() {
            return Vec::new();
        }
        let gone: Vec<String> = self
            .bound
            .iter()
            .filter(|(_, b)| b.node == name)
            .map(|(u, _)| u.clone())
            .collect();
        for uid in &gone {
            self.forget_bound(uid);
        }
        for st in self.policies.values_mut() {
            if let Some(id) = st.node_ids.remove(name) {
                if let Ok((_, pods)) = st.sched.remove_node(id) {
                    for (p, _) in pods {
                        if let Some(uid) = self.uid_of_key.get(&p.key()) {
                            st.pod_ids.remove(uid);
                        }
                    }
                }
            }
        }
        gone
    }

    fn forget_bound(&mut self, uid: &str) -> Option<BoundPod> {
        let b = self.bound.remove(uid)?;
        self.uid_of_key.remove(&b.key);
        self.bound_models.remove(uid);
        Some(b)
    }

    /// Records a pod bound to `node` (seen bound by the watch, or assumed by this
    /// scheduler with the devices it chose). A pod the view cannot hold (its node is
    /// unknown, or it does not fit there — another scheduler overcommitted) is left out
    /// and reported.
    pub fn bind(
        &mut self,
        uid: &str,
        pod: Pod,
        node: &str,
        devices: Vec<u32>,
        assumed: bool,
    ) -> Result<(), String> {
        if let Some(b) = self.bound.get_mut(uid) {
            if b.node == node {
                b.assumed &= assumed;
                return Ok(());
            }
            self.unbind(uid);
        }
        if !self.nodes.contains_key(node) {
            return Err(format!("node {node} is not known"));
        }
        let mut done: Vec<String> = Vec::new();
        for (policy, st) in &mut self.policies {
            let Some(&nid) = st.node_ids.get(node) else {
                continue;
            };
            let binding = Binding {
                node: nid,
                gpu_devices: devices.clone(),
            };
            match st.sched.bind(pod.clone(), &binding) {
                Ok(id) => {
                    st.pod_ids.insert(uid.to_string(), id);
                    done.push(policy.clone());
                }
                Err(e) => {
                    // Undo the policies that took it: the views stay identical.
                    for p in &done {
                        if let Some(st) = self.policies.get_mut(p) {
                            if let Some(id) = st.pod_ids.remove(uid) {
                                let _ = st.sched.unbind(id);
                            }
                        }
                    }
                    return Err(e.to_string());
                }
            }
        }
        self.uid_of_key.insert(pod.key(), uid.to_string());
        self.bound.insert(
            uid.to_string(),
            BoundPod {
                key: pod.key(),
                node: node.to_string(),
                assumed,
            },
        );
        self.bound_models.insert(uid.to_string(), (pod, devices));
        Ok(())
    }

    /// Marks an assumed pod as confirmed bound.
    pub fn confirm(&mut self, uid: &str) {
        if let Some(b) = self.bound.get_mut(uid) {
            b.assumed = false;
        }
    }

    /// Removes a bound or assumed pod (deleted, finished, or its binding failed); frees
    /// its room. Returns whether it was held.
    pub fn unbind(&mut self, uid: &str) -> bool {
        if self.forget_bound(uid).is_none() {
            return false;
        }
        for st in self.policies.values_mut() {
            if let Some(id) = st.pod_ids.remove(uid) {
                let _ = st.sched.unbind(id);
            }
        }
        true
    }

    /// Places a batch with `policy` (pods with their uids): higher priorities first,
    /// gangs all or nothing. Placed pods are assumed bound in every policy's view;
    /// returns, per pod in input order, the chosen node and devices, or `None`.
    pub fn place(
        &mut self,
        policy: &str,
        pods: Vec<(String, Pod)>,
    ) -> Result<(Vec<Option<Placed>>, BatchDecision), SchedulerError> {
        self.ensure_policy(policy)?;
        let (uids, models): (Vec<String>, Vec<Pod>) = pods.into_iter().unzip();
        let st = self.policies.get_mut(policy).expect("ensured above");
        let decision = st.sched.place_batch(models.clone())?;
        let mut out = Vec::with_capacity(uids.len());
        let mut mirror = Vec::new();
        for ((uid, pod), placed) in uids.iter().zip(models).zip(&decision.placed) {
            match placed {
                Some((id, b)) => {
                    st.pod_ids.insert(uid.clone(), *id);
                    let node = st.sched.cluster()[b.node].name.clone();
                    mirror.push((uid.clone(), pod, node.clone(), b.gpu_devices.clone()));
                    out.push(Some((node, b.gpu_devices.clone())));
                }
                None => out.push(None),
            }
        }
        for (uid, pod, node, devices) in mirror {
            for (name, other) in &mut self.policies {
                if name == policy {
                    continue;
                }
                if let Some(&nid) = other.node_ids.get(&node) {
                    let binding = Binding {
                        node: nid,
                        gpu_devices: devices.clone(),
                    };
                    match other.sched.bind(pod.clone(), &binding) {
                        Ok(id) => {
                            other.pod_ids.insert(uid.clone(), id);
                        }
                        Err(e) => {
                            tracing::warn!(policy = %name, pod = %pod.key(), error = %e, "views diverged")
                        }
                    }
                }
            }
            self.uid_of_key.insert(pod.key(), uid.clone());
            self.bound.insert(
                uid.clone(),
                BoundPod {
                    key: pod.key(),
                    node,
                    assumed: true,
                },
            );
            self.bound_models.insert(uid, (pod, devices));
        }
        Ok((out, decision))
    }

    /// The uids of the bound (and assumed) pods.
    pub fn bound_uids(&self) -> Vec<String> {
        self.bound.keys().cloned().collect()
    }

    /// The model a bound (or assumed) pod is held with (its requests as charged).
    pub fn bound_model(&self, uid: &str) -> Option<&Pod> {
        self.bound_models.get(uid).map(|(p, _)| p)
    }

    /// Charges a bound (or assumed) pod `requests` instead of what it is held with, on
    /// the same node and devices in every policy's view (usage-aware scheduling).
    /// `Ok(true)` if the charge changed, `Ok(false)` if it was already that; an error if
    /// the pod is not held or the new charge does not fit its node (the old one stays).
    pub fn set_requests(
        &mut self,
        uid: &str,
        requests: crate::model::Resources,
    ) -> Result<bool, String> {
        let (old, devices) = self
            .bound_models
            .get(uid)
            .cloned()
            .ok_or_else(|| format!("pod {uid} is not bound"))?;
        if old.requests == requests {
            return Ok(false);
        }
        let b = self
            .bound
            .get(uid)
            .cloned()
            .ok_or_else(|| format!("pod {uid} is not bound"))?;
        let mut new = old.clone();
        new.requests = requests;
        self.unbind(uid);
        match self.bind(uid, new, &b.node, devices.clone(), b.assumed) {
            Ok(()) => Ok(true),
            Err(e) => {
                self.bind(uid, old, &b.node, devices, b.assumed)
                    .map_err(|e2| format!("{e}; and the old charge no longer fits: {e2}"))?;
                Err(e)
            }
        }
    }

    /// The uid of the bound pod `namespace/name`.
    pub fn uid_of(&self, key: &str) -> Option<&str> {
        self.uid_of_key.get(key).map(String::as_str)
    }

    /// The uid of a pod id in `policy`'s view.
    pub fn uid_of_id(&self, policy: &str, id: PodId) -> Option<String> {
        let st = self.policies.get(policy)?;
        let (pod, _) = st.sched.cluster().pod(id)?;
        self.uid_of_key.get(&pod.key()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GIB;
    use crate::place::clock::ManualClock;
    use std::sync::Arc;

    fn cache(policy: &str) -> Cache {
        Cache::new(
            policy,
            PolicyOptions::default(),
            Arc::new(ManualClock::new()),
            Duration::from_secs(2),
        )
        .unwrap()
    }

    #[test]
    fn policies_share_one_view() {
        let mut c = cache("best-fit");
        assert!(c.upsert_node(Node::new("a", 4000, 8 * GIB)));
        assert!(!c.upsert_node(Node::new("a", 4000, 8 * GIB)), "no change");
        c.bind("u1", Pod::new("p1", 3000, GIB), "a", vec![], false)
            .unwrap();
        // A policy made later sees the bound pod.
        let (placed, _) = c
            .place(
                "kube-default",
                vec![("u2".into(), Pod::new("p2", 2000, GIB))],
            )
            .unwrap();
        assert_eq!(placed, vec![None], "only 1000m left");
        let (placed, _) = c
            .place(
                "kube-default",
                vec![("u3".into(), Pod::new("p3", 1000, GIB))],
            )
            .unwrap();
        assert_eq!(placed[0].as_ref().unwrap().0, "a");
        // Mirrored into best-fit: nothing left there either.
        let (placed, _) = c
            .place("best-fit", vec![("u4".into(), Pod::new("p4", 100, GIB))])
            .unwrap();
        assert_eq!(placed, vec![None]);
        assert!(c.bound("u3").unwrap().assumed);
        // A failed binding frees the room in every view.
        assert!(c.unbind("u3"));
        let (placed, _) = c
            .place("best-fit", vec![("u5".into(), Pod::new("p5", 1000, GIB))])
            .unwrap();
        assert!(placed[0].is_some());
        assert_eq!(c.bound_count(), 2);
    }

    #[test]
    fn removing_a_node_drops_its_pods() {
        let mut c = cache("best-fit");
        c.upsert_node(Node::new("a", 4000, 8 * GIB));
        c.upsert_node(Node::new("b", 4000, 8 * GIB));
        c.bind("u1", Pod::new("p1", 1000, GIB), "a", vec![], false)
            .unwrap();
        c.bind("u2", Pod::new("p2", 1000, GIB), "b", vec![], false)
            .unwrap();
        assert_eq!(c.remove_node("a"), vec!["u1".to_string()]);
        assert_eq!(c.bound_count(), 1);
        assert!(c.bound("u1").is_none());
        assert!(c
            .bind("u3", Pod::new("p3", 1000, GIB), "a", vec![], false)
            .is_err());
        // Rebinding the same pod elsewhere moves it.
        c.bind("u2", Pod::new("p2", 1000, GIB), "b", vec![], false)
            .unwrap();
        assert_eq!(c.bound_count(), 1);
    }

    #[test]
    fn a_pod_that_does_not_fit_is_refused_everywhere() {
        let mut c = cache("best-fit");
        c.ensure_policy("kube-default").unwrap();
        c.upsert_node(Node::new("a", 1000, GIB));
        assert!(c
            .bind("u1", Pod::new("big", 2000, GIB), "a", vec![], false)
            .is_err());
        assert_eq!(c.bound_count(), 0);
        let (placed, _) = c
            .place(
                "kube-default",
                vec![("u2".into(), Pod::new("p", 1000, GIB))],
            )
            .unwrap();
        assert!(placed[0].is_some(), "nothing left behind by the refusal");
    }
}
