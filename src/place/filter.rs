//! Feasibility filters with kube-scheduler's reason texts.
//!
//! Filters run in kube-scheduler's plugin order — NodeUnschedulable, TaintToleration,
//! NodeAffinity (with the GPU model constraint beside it), NodePorts, NodeResourcesFit
//! (GPU devices included), PodTopologySpread, InterPodAffinity — and a node's reasons
//! come from the first plugin that rejects it, as in kube-scheduler.
//!
//! [`FilterContext`] precomputes, once per pod, everything that depends on the other pods
//! (topology domain counts for spread and affinity), so checking one node is cheap.

use crate::model::cluster::{SpreadEligibility, TopologyDomains};
use crate::model::selector::{tolerated, LabelSelector, TaintEffect};
use crate::model::{Cluster, Node, NodeId, Pod, TopologySpreadConstraint, WhenUnsatisfiable};
use std::fmt;
use std::sync::Arc;

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
    /// The node id names no live node (the node was removed).
    NodeGone,
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
                | Reason::NodeGone
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Unschedulable => write!(f, "node(s) were unschedulable"),
            Reason::NodeGone => write!(f, "node(s) were removed"),
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

/// Counts of matching pods per topology domain, for one term: domains are the interned
/// values of the term's topology key ([`TopologyDomains`]), counts are kept sorted by
/// domain id (only non-zero ones), so a node's count is an array read and a binary
/// search over the few domains holding matching pods.
#[derive(Debug, Clone)]
struct DomainCounts<'a> {
    /// `None` when no node carries the key.
    domains: Option<&'a TopologyDomains>,
    /// (domain id, count > 0), ascending domain id.
    counts: Vec<(u32, u32)>,
    total: u32,
}

impl<'a> DomainCounts<'a> {
    /// Counts from the domain id of each matching pod's node (with repetitions).
    fn from_ids(domains: Option<&'a TopologyDomains>, mut ids: Vec<u32>) -> Self {
        let total = ids.len() as u32;
        ids.sort_unstable();
        let mut counts: Vec<(u32, u32)> = Vec::new();
        for d in ids {
            match counts.last_mut() {
                Some((last, c)) if *last == d => *c += 1,
                _ => counts.push((d, 1)),
            }
        }
        DomainCounts {
            domains,
            counts,
            total,
        }
    }

    /// The count in `node`'s domain, `None` if the node lacks the key.
    #[inline]
    fn at(&self, node: NodeId) -> Option<u32> {
        let d = self.domains?.domain(node)?;
        Some(match self.counts.binary_search_by_key(&d, |&(id, _)| id) {
            Ok(i) => self.counts[i].1,
            Err(_) => 0,
        })
    }
}

#[derive(Debug, Clone)]
struct SpreadState<'a> {
    counts: DomainCounts<'a>,
    max_skew: u32,
    /// Minimum count over domains of eligible nodes (0 if some eligible domain is empty).
    min: u32,
    self_match: u32,
}

/// The domains (ascending ids) of one topology key where an existing pod's anti-affinity
/// forbids the pod.
#[derive(Debug, Clone)]
struct ForbiddenDomains<'a> {
    key: &'a str,
    domains: &'a TopologyDomains,
    ids: Vec<u32>,
}

/// Everything needed to filter nodes for one pod against the current cluster.
#[derive(Debug, Clone)]
pub struct FilterContext<'a> {
    cluster: &'a Cluster,
    pod: &'a Pod,
    spread: Vec<SpreadState<'a>>,
    affinity: Vec<DomainCounts<'a>>,
    /// Whether the pod matches each of its own affinity terms (first-of-group rule).
    affinity_self_match: Vec<bool>,
    anti_affinity: Vec<DomainCounts<'a>>,
    /// Per topology key, the domains where an existing pod's anti-affinity forbids `pod`.
    existing_anti: Vec<ForbiddenDomains<'a>>,
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
        let topology = cluster.topology();
        // Candidates come from the cluster's label index (a superset of the selected
        // pods); `selects` decides.
        let count = |key: &str,
                     selector: &LabelSelector,
                     selects: &dyn Fn(&Pod) -> bool,
                     nodes: Option<&[bool]>| {
            let domains = topology.key(key);
            let mut ids = Vec::new();
            if let Some(dom) = domains {
                for id in cluster.bound_pods_maybe_matching(selector) {
                    let (other, b) = cluster.pod(id).expect("index in sync");
                    if nodes.is_some_and(|ok| !ok[b.node]) || !selects(other) {
                        continue;
                    }
                    if let Some(d) = dom.domain(b.node) {
                        ids.push(d);
                    }
                }
            }
            DomainCounts::from_ids(domains, ids)
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
        let elig = spread_eligibility(cluster, pod, &hard);
        for c in hard {
            let sel = |o: &Pod| o.namespace == pod.namespace && c.selector.matches(&o.labels);
            let dc = count(&c.topology_key, &c.selector, &sel, Some(&elig.eligible));
            // Counts cover eligible nodes only, so their domains are eligible ones: if
            // fewer domains hold matching pods than there are eligible domains, some
            // eligible domain is empty.
            let eligible_domains = elig.domains_of(&c.topology_key).len();
            let min = if dc.counts.len() < eligible_domains {
                0
            } else {
                dc.counts.iter().map(|&(_, n)| n).min().unwrap_or(0)
            };
            self.spread.push(SpreadState {
                counts: dc,
                max_skew: c.max_skew,
                min,
                self_match: u32::from(c.selector.matches(&pod.labels)),
            });
        }
    }

    fn compute_existing_anti(&mut self) {
        let cluster = self.cluster;
        let pod = self.pod;
        // Only the terms filed under one of the pod's labels (or requiring none) can
        // select it; each distinct (namespace, term) of the bound pods is checked once.
        let mut groups: Vec<ForbiddenDomains<'a>> = Vec::new();
        for (ns, t, nodes) in cluster.anti_affinity_terms_maybe_selecting(&pod.labels) {
            if !t.selects(ns, &pod.namespace, &pod.labels) {
                continue;
            }
            let Some(domains) = cluster.topology().key(&t.topology_key) else {
                continue;
            };
            let gi = match groups.iter().position(|g| g.key == t.topology_key) {
                Some(gi) => gi,
                None => {
                    groups.push(ForbiddenDomains {
                        key: &t.topology_key,
                        domains,
                        ids: Vec::new(),
                    });
                    groups.len() - 1
                }
            };
            groups[gi]
                .ids
                .extend(nodes.filter_map(|node| domains.domain(node)));
        }
        groups.retain_mut(|g| {
            g.ids.sort_unstable();
            g.ids.dedup();
            !g.ids.is_empty()
        });
        self.existing_anti = groups;
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
        let Some(n) = self.cluster.node(node) else {
            return Err(vec![Reason::NodeGone]);
        };
        check_static(self.pod, n)?;
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
        self.check_inter_pod(node)
    }

    /// The inter-pod checks alone (PodTopologySpread, then InterPodAffinity), for callers
    /// that checked ports and resources themselves: the first failing plugin's reason.
    pub fn check_inter_pod(&self, node: NodeId) -> Result<(), Vec<Reason>> {
        match self.inter_pod_reason(node) {
            None => Ok(()),
            Some(r) => Err(vec![r]),
        }
    }

    /// Whether `node` passes the inter-pod checks ([`FilterContext::check_inter_pod`]
    /// without allocating).
    #[inline]
    pub fn inter_pod_ok(&self, node: NodeId) -> bool {
        self.inter_pod_reason(node).is_none()
    }

    fn inter_pod_reason(&self, node: NodeId) -> Option<Reason> {
        for s in &self.spread {
            match s.counts.at(node) {
                None => return Some(Reason::SpreadMissingLabel),
                Some(c) => {
                    if c + s.self_match > s.min + s.max_skew {
                        return Some(Reason::TopologySpread);
                    }
                }
            }
        }
        if !self.affinity.is_empty() && !self.pod_affinity_ok(node) {
            return Some(Reason::PodAffinity);
        }
        for a in &self.anti_affinity {
            if a.at(node).is_some_and(|c| c > 0) {
                return Some(Reason::PodAntiAffinity);
            }
        }
        for g in &self.existing_anti {
            if g.domains
                .domain(node)
                .is_some_and(|d| g.ids.binary_search(&d).is_ok())
            {
                return Some(Reason::ExistingPodAntiAffinity);
            }
        }
        None
    }

    /// kube-scheduler's `satisfyPodAffinity`: every term's topology key is on the node
    /// and each term has a matching pod in the node's domain — or, for the first pod of a
    /// self-affine group, no existing pod matches any term and the pod matches all its
    /// own terms.
    fn pod_affinity_ok(&self, node: NodeId) -> bool {
        let mut pods_exist = true;
        for a in &self.affinity {
            match a.at(node) {
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

/// The nodes counting for `pod`'s hard spread constraints `hard` (memoised in the
/// cluster per node selector, required affinity and hard keys): those that pass node
/// affinity/selector and carry every hard key (kube-scheduler's default
/// nodeAffinityPolicy=Honor, nodeTaintsPolicy=Ignore), with each key's eligible domains.
fn spread_eligibility(
    cluster: &Cluster,
    pod: &Pod,
    hard: &[&TopologySpreadConstraint],
) -> Arc<SpreadEligibility> {
    let mut keys: Vec<String> = hard.iter().map(|c| c.topology_key.clone()).collect();
    keys.sort();
    keys.dedup();
    let memo_key = (
        pod.node_selector.clone(),
        pod.required_node_affinity.clone(),
        keys,
    );
    cluster.spread_eligibility(&memo_key, || {
        let keys = &memo_key.2;
        let topology = cluster.topology();
        let doms: Vec<Option<&TopologyDomains>> = keys.iter().map(|k| topology.key(k)).collect();
        let mut eligible = vec![false; cluster.node_slots()];
        for (i, n) in cluster.nodes() {
            eligible[i] = doms
                .iter()
                .all(|d| d.is_some_and(|d| d.domain(i).is_some()))
                && node_affinity_matches(pod, n);
        }
        let domains = keys
            .iter()
            .zip(&doms)
            .map(|(k, d)| {
                let mut ids: Vec<u32> = d
                    .map(|d| {
                        eligible
                            .iter()
                            .enumerate()
                            .filter(|&(_, &e)| e)
                            .filter_map(|(i, _)| d.domain(NodeId::from_index(i)))
                            .collect()
                    })
                    .unwrap_or_default();
                ids.sort_unstable();
                ids.dedup();
                (k.clone(), ids)
            })
            .collect();
        SpreadEligibility { eligible, domains }
    })
}
