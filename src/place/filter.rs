//! Feasibility filters with kube-scheduler's reason texts.
//!
//! Filters run in kube-scheduler's plugin order — NodeUnschedulable, TaintToleration,
//! NodeAffinity (with the GPU model constraint beside it), NodePorts, NodeResourcesFit
//! (GPU devices included), PodTopologySpread, InterPodAffinity — and a node's reasons
//! come from the first plugin that rejects it, as in kube-scheduler.
//!
//! [`FilterContext`] precomputes, once per pod, everything that depends on the other pods
//! (topology domain counts for spread and affinity), so checking one node is cheap.

use crate::model::selector::{tolerated, LabelSelector, TaintEffect};
use crate::model::{Cluster, Node, NodeId, Pod, WhenUnsatisfiable};
use std::collections::HashMap;
use std::fmt;

/// Why a node cannot take a pod, worded as kube-scheduler words it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// `spec.unschedulable` is set and not tolerated.
    Unschedulable,
    /// A NoSchedule/NoExecute taint is not tolerated.
    UntoleratedTaint {
        /// Taint key.
        key: String,
        /// Taint value.
        value: String,
    },
    /// Node selector or required node affinity does not match.
    NodeAffinity,
    /// The node's GPU model is not among the pod's acceptable models (or it has none).
    GpuModel,
    /// A requested host port is taken.
    HostPorts,
    /// Not enough of a resource (`cpu`, `memory`, `pods`, `nvidia.com/gpu`, …).
    Insufficient(String),
    /// A DoNotSchedule spread constraint's topology key is missing on the node.
    SpreadMissingLabel,
    /// A DoNotSchedule spread constraint would exceed its max skew.
    TopologySpread,
    /// The pod's required pod affinity is not met.
    PodAffinity,
    /// The pod's required pod anti-affinity is violated.
    PodAntiAffinity,
    /// An existing pod's anti-affinity rejects this pod.
    ExistingPodAntiAffinity,
    /// An embedder's plugin rejects the node (see [`crate::place::plugin`]).
    Plugin {
        /// The plugin's name.
        name: String,
        /// The plugin's reason.
        message: String,
    },
}

impl Reason {
    /// True if evicting pods (preemption) could never fix this reason on this node:
    /// kube-scheduler's `UnschedulableAndUnresolvable`.
    pub fn is_unresolvable(&self) -> bool {
        matches!(
            self,
            Reason::Unschedulable
                | Reason::UntoleratedTaint { .. }
                | Reason::NodeAffinity
                | Reason::GpuModel
                | Reason::SpreadMissingLabel
                | Reason::Plugin { .. }
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Unschedulable => write!(f, "node(s) were unschedulable"),
            Reason::UntoleratedTaint { key, value } => {
                write!(f, "node(s) had untolerated taint {{{key}: {value}}}")
            }
            Reason::NodeAffinity => write!(f, "node(s) didn't match Pod's node affinity/selector"),
            Reason::GpuModel => write!(f, "node(s) didn't have the requested GPU model"),
            Reason::HostPorts => {
                write!(
                    f,
                    "node(s) didn't have free ports for the requested pod ports"
                )
            }
            Reason::Insufficient(r) => write!(f, "Insufficient {r}"),
            Reason::SpreadMissingLabel => write!(
                f,
                "node(s) didn't match pod topology spread constraints (missing required label)"
            ),
            Reason::TopologySpread => {
                write!(f, "node(s) didn't match pod topology spread constraints")
            }
            Reason::PodAffinity => write!(f, "node(s) didn't match pod affinity rules"),
            Reason::PodAntiAffinity => write!(f, "node(s) didn't match pod anti-affinity rules"),
            Reason::ExistingPodAntiAffinity => {
                write!(
                    f,
                    "node(s) didn't satisfy existing pods anti-affinity rules"
                )
            }
            Reason::Plugin { name, message } => write!(f, "{name}: {message}"),
        }
    }
}

/// Checks that depend only on the pod and the node, never on other pods: cordon, taints,
/// node selector and required affinity, GPU model. `Err` holds the first failing
/// plugin's reason(s).
pub fn check_static(pod: &Pod, node: &Node) -> Result<(), Vec<Reason>> {
    if node.unschedulable {
        let tolerates_cordon = pod.tolerations.iter().any(|t| {
            t.tolerates(&crate::model::Taint {
                key: "node.kubernetes.io/unschedulable".into(),
                value: String::new(),
                effect: TaintEffect::NoSchedule,
            })
        });
        if !tolerates_cordon {
            return Err(vec![Reason::Unschedulable]);
        }
    }
    for t in &node.taints {
        if t.effect != TaintEffect::PreferNoSchedule && !tolerated(&pod.tolerations, t) {
            return Err(vec![Reason::UntoleratedTaint {
                key: t.key.clone(),
                value: t.value.clone(),
            }]);
        }
    }
    if !node_affinity_matches(pod, node) {
        return Err(vec![Reason::NodeAffinity]);
    }
    if pod.gpu.amount.is_some() {
        match node.gpu_model() {
            Some(m) if pod.gpu.accepts_model(m) => {}
            Some(_) => return Err(vec![Reason::GpuModel]),
            // No devices at all: kube would say the resource is insufficient.
            None => return Err(vec![Reason::Insufficient("nvidia.com/gpu".into())]),
        }
    }
    Ok(())
}

/// `spec.nodeSelector` and required node affinity both hold.
pub fn node_affinity_matches(pod: &Pod, node: &Node) -> bool {
    pod.node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v))
        && pod
            .required_node_affinity
            .as_ref()
            .is_none_or(|s| s.matches(&node.name, &node.labels))
}

/// Counts of matching pods per topology domain value, for one term.
#[derive(Debug, Clone, Default)]
struct DomainCounts {
    topology_key: String,
    counts: HashMap<String, u32>,
    total: u32,
}

impl DomainCounts {
    fn at(&self, node: &Node) -> Option<u32> {
        node.labels
            .get(&self.topology_key)
            .map(|v| self.counts.get(v).copied().unwrap_or(0))
    }
}

#[derive(Debug, Clone)]
struct SpreadState {
    counts: DomainCounts,
    max_skew: u32,
    /// Minimum count over domains of eligible nodes (0 if some eligible domain is empty).
    min: u32,
    self_match: u32,
}

/// Everything needed to filter nodes for one pod against the current cluster.
#[derive(Debug, Clone)]
pub struct FilterContext<'a> {
    cluster: &'a Cluster,
    pod: &'a Pod,
    spread: Vec<SpreadState>,
    affinity: Vec<DomainCounts>,
    /// Whether the pod matches each of its own affinity terms (first-of-group rule).
    affinity_self_match: Vec<bool>,
    anti_affinity: Vec<DomainCounts>,
    /// (topology key, value) domains where an existing pod's anti-affinity forbids `pod`.
    existing_anti: Vec<(String, String)>,
}

impl<'a> FilterContext<'a> {
    /// Precomputes topology counts for `pod` on `cluster`.
    pub fn new(cluster: &'a Cluster, pod: &'a Pod) -> Self {
        let mut ctx = FilterContext {
            cluster,
            pod,
            spread: Vec::new(),
            affinity: Vec::new(),
            affinity_self_match: Vec::new(),
            anti_affinity: Vec::new(),
            existing_anti: Vec::new(),
        };
        if pod.has_inter_pod_constraints() {
            ctx.compute_pod_terms();
        }
        ctx.compute_existing_anti();
        ctx
    }

    fn compute_pod_terms(&mut self) {
        let cluster = self.cluster;
        let pod = self.pod;
        // Candidates come from the cluster's label index (a superset of the selected
        // pods); `selects` decides.
        let count = |key: &str,
                     selector: &LabelSelector,
                     selects: &dyn Fn(&Pod) -> bool,
                     nodes: Option<&[bool]>| {
            let mut dc = DomainCounts {
                topology_key: key.to_string(),
                ..Default::default()
            };
            for id in cluster.bound_pods_maybe_matching(selector) {
                let (other, b) = cluster.pod(id).expect("index in sync");
                if nodes.is_some_and(|ok| !ok[b.node]) || !selects(other) {
                    continue;
                }
                if let Some(v) = cluster.nodes()[b.node].labels.get(key) {
                    *dc.counts.entry(v.clone()).or_insert(0) += 1;
                    dc.total += 1;
                }
            }
            dc
        };
        for t in &pod.pod_affinity {
            let sel = |o: &Pod| t.selects(&pod.namespace, &o.namespace, &o.labels);
            self.affinity
                .push(count(&t.topology_key, &t.selector, &sel, None));
            self.affinity_self_match
                .push(t.selects(&pod.namespace, &pod.namespace, &pod.labels));
        }
        for t in &pod.pod_anti_affinity {
            let sel = |o: &Pod| t.selects(&pod.namespace, &o.namespace, &o.labels);
            self.anti_affinity
                .push(count(&t.topology_key, &t.selector, &sel, None));
        }
        let hard: Vec<_> = pod
            .topology_spread
            .iter()
            .filter(|c| c.when_unsatisfiable == WhenUnsatisfiable::DoNotSchedule)
            .collect();
        if hard.is_empty() {
            return;
        }
        // Eligible nodes: pass node affinity/selector and carry every hard key
        // (kube-scheduler's default nodeAffinityPolicy=Honor, nodeTaintsPolicy=Ignore).
        let eligible: Vec<bool> = cluster
            .nodes()
            .iter()
            .map(|n| {
                node_affinity_matches(pod, n)
                    && hard.iter().all(|c| n.labels.contains_key(&c.topology_key))
            })
            .collect();
        for c in hard {
            let sel = |o: &Pod| o.namespace == pod.namespace && c.selector.matches(&o.labels);
            let dc = count(&c.topology_key, &c.selector, &sel, Some(&eligible));
            let mut min = u32::MAX;
            for (i, n) in cluster.nodes().iter().enumerate() {
                if eligible[i] {
                    let v = &n.labels[&c.topology_key];
                    min = min.min(dc.counts.get(v).copied().unwrap_or(0));
                }
            }
            self.spread.push(SpreadState {
                counts: dc,
                max_skew: c.max_skew,
                min: if min == u32::MAX { 0 } else { min },
                self_match: u32::from(c.selector.matches(&pod.labels)),
            });
        }
    }

    fn compute_existing_anti(&mut self) {
        let cluster = self.cluster;
        let pod = self.pod;
        // Each distinct (namespace, term) of the bound pods is checked once.
        for (ns, t, nodes) in cluster.anti_affinity_terms() {
            if t.selects(ns, &pod.namespace, &pod.labels) {
                for node in nodes {
                    if let Some(v) = cluster.nodes()[node].labels.get(&t.topology_key) {
                        self.existing_anti.push((t.topology_key.clone(), v.clone()));
                    }
                }
            }
        }
        self.existing_anti.sort();
        self.existing_anti.dedup();
    }

    /// The pod being filtered.
    pub fn pod(&self) -> &'a Pod {
        self.pod
    }

    /// The cluster filtered against.
    pub fn cluster(&self) -> &'a Cluster {
        self.cluster
    }

    /// Full check of `node`: static checks, then the dynamic ones.
    pub fn check(&self, node: NodeId) -> Result<(), Vec<Reason>> {
        check_static(self.pod, &self.cluster.nodes()[node])?;
        self.check_dynamic(node)
    }

    /// The checks that depend on what is already bound: ports, resources and devices,
    /// topology spread, inter-pod affinity. Call after [`check_static`] passed.
    pub fn check_dynamic(&self, node: NodeId) -> Result<(), Vec<Reason>> {
        let cluster = self.cluster;
        if cluster
            .host_port_conflict(node, &self.pod.host_ports)
            .is_some()
        {
            return Err(vec![Reason::HostPorts]);
        }
        let short = cluster.insufficient(self.pod, node);
        if !short.is_empty() {
            return Err(short.into_iter().map(Reason::Insufficient).collect());
        }
        let n = &cluster.nodes()[node];
        for s in &self.spread {
            match s.counts.at(n) {
                None => return Err(vec![Reason::SpreadMissingLabel]),
                Some(c) => {
                    if c + s.self_match > s.min + s.max_skew {
                        return Err(vec![Reason::TopologySpread]);
                    }
                }
            }
        }
        if !self.affinity.is_empty() && !self.pod_affinity_ok(n) {
            return Err(vec![Reason::PodAffinity]);
        }
        for a in &self.anti_affinity {
            if a.at(n).is_some_and(|c| c > 0) {
                return Err(vec![Reason::PodAntiAffinity]);
            }
        }
        for (k, v) in &self.existing_anti {
            if n.labels.get(k) == Some(v) {
                return Err(vec![Reason::ExistingPodAntiAffinity]);
            }
        }
        Ok(())
    }

    /// kube-scheduler's `satisfyPodAffinity`: every term's topology key is on the node
    /// and each term has a matching pod in the node's domain — or, for the first pod of a
    /// self-affine group, no existing pod matches any term and the pod matches all its
    /// own terms.
    fn pod_affinity_ok(&self, n: &Node) -> bool {
        let mut pods_exist = true;
        for a in &self.affinity {
            match a.at(n) {
                None => return false,
                Some(0) => pods_exist = false,
                Some(_) => {}
            }
        }
        pods_exist
            || (self.affinity.iter().all(|a| a.total == 0)
                && self.affinity_self_match.iter().all(|&m| m))
    }

    /// Whether the pod has any check that depends on other pods' placement.
    pub fn has_inter_pod_checks(&self) -> bool {
        !self.spread.is_empty()
            || !self.affinity.is_empty()
            || !self.anti_affinity.is_empty()
            || !self.existing_anti.is_empty()
    }
}
