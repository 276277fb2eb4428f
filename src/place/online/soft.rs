//! Static filter results per pod signature, and the soft (preference) scores:
//! preferred node affinity (NodeAffinity score), PreferNoSchedule taints
//! (TaintToleration score) and ScheduleAnyway topology spread (PodTopologySpread score),
//! each normalised over the feasible nodes as kube-scheduler normalises them.

use super::hot::Candidate;
use crate::model::selector::{NodeSelector, TaintEffect};
use crate::model::{Cluster, Labels, NodeId, Pod, PreferredTerm, Toleration, WhenUnsatisfiable};
use crate::place::filter::{check_static, node_affinity_matches};
use crate::place::score;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// The pod fields the static filters and static soft scores depend on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StaticKey {
    tolerations: Vec<Toleration>,
    node_selector: Labels,
    required: Option<NodeSelector>,
    preferred: Vec<PreferredTerm>,
    models: Vec<String>,
    wants_gpu: bool,
}

impl StaticKey {
    fn of(pod: &Pod) -> Self {
        StaticKey {
            tolerations: pod.tolerations.clone(),
            node_selector: pod.node_selector.clone(),
            required: pod.required_node_affinity.clone(),
            preferred: pod.preferred_node_affinity.clone(),
            models: pod.gpu.models.clone(),
            wants_gpu: pod.gpu.amount.is_some(),
        }
    }

    /// Whether `pod` has this signature (compared field by field, no allocation).
    pub fn matches(&self, pod: &Pod) -> bool {
        self.wants_gpu == pod.gpu.amount.is_some()
            && self.tolerations == pod.tolerations
            && self.node_selector == pod.node_selector
            && self.required == pod.required_node_affinity
            && self.preferred == pod.preferred_node_affinity
            && self.models == pod.gpu.models
    }
}

/// Hash of a pod's static signature (deterministic).
pub(crate) fn signature_hash(pod: &Pod) -> u64 {
    let mut h = DefaultHasher::new();
    pod.tolerations.hash(&mut h);
    pod.node_selector.hash(&mut h);
    pod.required_node_affinity.hash(&mut h);
    pod.preferred_node_affinity.hash(&mut h);
    pod.gpu.models.hash(&mut h);
    pod.gpu.amount.is_some().hash(&mut h);
    h.finish()
}

/// A node that passes the static filters, with its raw static soft scores.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StaticNode {
    pub id: u32,
    /// Sum of the weights of the matching preferred node affinity terms.
    pub affinity: i64,
    /// Number of PreferNoSchedule taints the pod does not tolerate.
    pub taints: i64,
}

/// The static filter result for one signature.
#[derive(Debug, Clone)]
pub(crate) struct StaticEntry {
    pub key: StaticKey,
    pub nodes: Vec<StaticNode>,
    /// Largest raw affinity and taint scores over `nodes`.
    pub max_affinity: i64,
    pub max_taints: i64,
}

impl StaticKey {
    /// A pod carrying exactly this signature (every field the static filters and static
    /// soft scores read), for judging nodes that appear after the entry was built.
    fn probe(&self) -> Pod {
        let mut p = Pod {
            tolerations: self.tolerations.clone(),
            node_selector: self.node_selector.clone(),
            required_node_affinity: self.required.clone(),
            preferred_node_affinity: self.preferred.clone(),
            ..Pod::default()
        };
        p.gpu.models = self.models.clone();
        if self.wants_gpu {
            p.gpu.amount = crate::model::GpuAmount::Shared(1);
        }
        p
    }
}

/// Node `id`'s static verdict and soft scores for `pod`: `None` if a static filter
/// rejects it.
fn static_node(pod: &Pod, id: NodeId, n: &crate::model::Node) -> Option<StaticNode> {
    check_static(pod, n).ok()?;
    // kube's TaintToleration score only looks at tolerations with an empty effect or
    // PreferNoSchedule.
    let prefer_tol = |t: &&Toleration| t.effect.is_none_or(|e| e == TaintEffect::PreferNoSchedule);
    Some(StaticNode {
        id: id.index() as u32,
        affinity: pod
            .preferred_node_affinity
            .iter()
            .filter(|p| p.term.matches(&n.name, &n.labels))
            .map(|p| i64::from(p.weight))
            .sum(),
        taints: n
            .taints
            .iter()
            .filter(|t| t.effect == TaintEffect::PreferNoSchedule)
            .filter(|t| {
                !pod.tolerations
                    .iter()
                    .filter(prefer_tol)
                    .any(|tol| tol.tolerates(t))
            })
            .count() as i64,
    })
}

/// How a node change altered one static entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryChange {
    /// The node's membership and static soft scores are as before.
    Same,
    /// The node joined, left, or changed static soft scores: slots or class keys moved.
    Changed,
}

impl StaticEntry {
    pub fn build(cluster: &Cluster, pod: &Pod) -> Self {
        let nodes = cluster
            .nodes()
            .filter_map(|(i, n)| static_node(pod, i, n))
            .collect::<Vec<StaticNode>>();
        StaticEntry {
            key: StaticKey::of(pod),
            max_affinity: nodes.iter().map(|n| n.affinity).max().unwrap_or(0),
            max_taints: nodes.iter().map(|n| n.taints).max().unwrap_or(0),
            nodes,
        }
    }

    /// Brings the entry up to date for node `id`, now described by `node` (`None`:
    /// removed): the same result [`StaticEntry::build`] would give on the changed
    /// cluster, at the cost of one node's filters.
    pub fn node_changed(&mut self, id: NodeId, node: Option<&crate::model::Node>) -> EntryChange {
        let new = node.and_then(|n| static_node(&self.key.probe(), id, n));
        let at = self
            .nodes
            .binary_search_by_key(&(id.index() as u32), |sn| sn.id);
        match (at, new) {
            (Err(_), None) => return EntryChange::Same,
            (Ok(i), Some(sn)) => {
                let old = self.nodes[i];
                if (old.affinity, old.taints) == (sn.affinity, sn.taints) {
                    return EntryChange::Same;
                }
                self.nodes[i] = sn;
            }
            (Ok(i), None) => {
                self.nodes.remove(i);
            }
            (Err(i), Some(sn)) => self.nodes.insert(i, sn),
        }
        self.max_affinity = self.nodes.iter().map(|n| n.affinity).max().unwrap_or(0);
        self.max_taints = self.nodes.iter().map(|n| n.taints).max().unwrap_or(0);
        EntryChange::Changed
    }
}

/// What [`add_soft_scores`] needs.
pub(crate) struct SoftInputs<'x> {
    pub cluster: &'x Cluster,
    pub pod: &'x Pod,
    pub entry: &'x StaticEntry,
    pub candidates: &'x mut [Candidate],
    pub main_weight: f64,
    /// Weights of NodeAffinity, TaintToleration, PodTopologySpread.
    pub weights: [f64; 3],
}

/// Sets each candidate's `total` to `main_weight · main + Σ weight · normalised soft`.
pub(crate) fn add_soft_scores(inp: SoftInputs<'_>) {
    let mut max_aff = 0;
    let mut max_taint = 0;
    for c in inp.candidates.iter() {
        let s = &inp.entry.nodes[c.slot as usize];
        max_aff = max_aff.max(s.affinity);
        max_taint = max_taint.max(s.taints);
    }
    let spread = spread_scores(inp.cluster, inp.pod, inp.candidates);
    let [wa, wt, ws] = inp.weights;
    for (i, c) in inp.candidates.iter_mut().enumerate() {
        let s = &inp.entry.nodes[c.slot as usize];
        let sp = spread.as_ref().map_or(0, |v| v[i]);
        c.total =
            inp.main_weight * c.main + static_soft(s, max_aff, max_taint, wa, wt) + ws * sp as f64;
    }
}

/// The weighted, normalised NodeAffinity and TaintToleration scores of one node given
/// the maxima of the raw scores. A raw 0 normalises to 0 (affinity) and 100 (taints)
/// without a division.
#[inline]
pub(crate) fn static_soft(s: &StaticNode, max_aff: i64, max_taint: i64, wa: f64, wt: f64) -> f64 {
    let aff = if s.affinity == 0 {
        0
    } else {
        score::default_normalize(s.affinity, max_aff, false)
    };
    let taint = if s.taints == 0 {
        score::MAX_NODE_SCORE
    } else {
        score::default_normalize(s.taints, max_taint, true)
    };
    wa * aff as f64 + wt * taint as f64
}

/// PodTopologySpread scores (normalised, 0..=100) of the candidates for the pod's
/// ScheduleAnyway constraints, or `None` if it has none (kube skips the plugin then).
/// Matching pods are counted on nodes that match the pod's node affinity and carry every
/// soft key; the per-constraint weight is `ln(domains + 2)` with domains counted over the
/// candidates; candidates missing a key score 0.
fn spread_scores(cluster: &Cluster, pod: &Pod, candidates: &[Candidate]) -> Option<Vec<i64>> {
    let soft: Vec<_> = pod
        .topology_spread
        .iter()
        .filter(|c| c.when_unsatisfiable == WhenUnsatisfiable::ScheduleAnyway)
        .collect();
    if soft.is_empty() {
        return None;
    }
    let has_keys =
        |n: &crate::model::Node| soft.iter().all(|c| n.labels.contains_key(&c.topology_key));
    let counted: Vec<bool> = cluster
        .node_slot_iter()
        .map(|n| n.is_some_and(|n| has_keys(n) && node_affinity_matches(pod, n)))
        .collect();
    let node = |id: u32| &cluster[NodeId::from_index(id as usize)];
    let mut counts: Vec<HashMap<&str, u32>> = vec![HashMap::new(); soft.len()];
    for (_, other, b) in cluster.bound_pods() {
        if !counted[b.node] || other.namespace != pod.namespace {
            continue;
        }
        for (i, c) in soft.iter().enumerate() {
            if c.selector.matches(&other.labels) {
                let v = cluster[b.node].labels[&c.topology_key].as_str();
                *counts[i].entry(v).or_insert(0) += 1;
            }
        }
    }
    let domains: Vec<usize> = soft
        .iter()
        .map(|c| {
            candidates
                .iter()
                .filter_map(|cand| node(cand.node).labels.get(&c.topology_key))
                .collect::<HashSet<_>>()
                .len()
        })
        .collect();
    let raw: Vec<Option<i64>> = candidates
        .iter()
        .map(|cand| {
            let n = node(cand.node);
            if !has_keys(n) {
                return None;
            }
            let s: f64 = soft
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let v = n.labels[&c.topology_key].as_str();
                    let cnt = counts[i].get(v).copied().unwrap_or(0);
                    score::spread_raw_term(cnt, c.max_skew, domains[i])
                })
                .sum();
            Some(s.round() as i64)
        })
        .collect();
    let min = raw.iter().flatten().copied().min().unwrap_or(0);
    let max = raw.iter().flatten().copied().max().unwrap_or(0);
    Some(
        raw.iter()
            .map(|r| r.map_or(0, |s| score::spread_normalize(s, min, max)))
            .collect(),
    )
}
