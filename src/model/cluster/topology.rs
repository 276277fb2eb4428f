//! Derived lookup structures of a [`Cluster`](super::Cluster) that make the inter-pod
//! filters cheap on large clusters: interned topology domains of the node labels
//! ([`TopologyIndex`]), the bound pods' anti-affinity terms indexed by a pod label each
//! requires ([`AntiTermIndex`]), and a memo of the nodes eligible for a pod's hard
//! topology spread ([`SpreadEligibility`]).
//!
//! None of these change what the filters decide: they only replace string lookups and
//! scans over every node or every term by array reads and narrowed candidate lists.

use super::NodeId;
use crate::model::node::Node;
use crate::model::pod::PodAffinityTerm;
use crate::model::selector::{Labels, NodeSelector, Operator};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Domain id of a node that does not carry the key.
pub const NO_DOMAIN: u32 = u32::MAX;

/// The values one node label key takes, interned: a domain id per distinct value, and
/// each node's domain id ([`NO_DOMAIN`] where the node lacks the key).
#[derive(Debug, Clone, Default)]
pub struct TopologyDomains {
    of_node: Vec<u32>,
    values: Vec<String>,
}

impl TopologyDomains {
    /// The domain id of `node`, `None` if the node lacks the key.
    #[inline]
    pub fn domain(&self, node: NodeId) -> Option<u32> {
        let d = self.of_node[node];
        (d != NO_DOMAIN).then_some(d)
    }

    /// Each node's domain id, indexed by [`NodeId`] ([`NO_DOMAIN`] for a missing key).
    pub fn of_nodes(&self) -> &[u32] {
        &self.of_node
    }

    /// Number of distinct values (domains).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no node carries the key.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The label value of domain `id`.
    pub fn value(&self, id: u32) -> &str {
        &self.values[id as usize]
    }
}

/// Interned domains of every label key found on some node.
#[derive(Debug, Clone, Default)]
pub struct TopologyIndex {
    keys: HashMap<String, TopologyDomains>,
}

impl TopologyIndex {
    /// Interns every label of the live `nodes` (domain ids in order of first appearance;
    /// vacant slots are in no domain).
    pub(super) fn build(nodes: &[Option<Node>]) -> Self {
        let mut keys: HashMap<String, TopologyDomains> = HashMap::new();
        let mut ids: HashMap<&str, HashMap<&str, u32>> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            let Some(n) = n else { continue };
            for (k, v) in &n.labels {
                let dom = keys.entry(k.clone()).or_insert_with(|| TopologyDomains {
                    of_node: vec![NO_DOMAIN; nodes.len()],
                    values: Vec::new(),
                });
                let vals = ids.entry(k.as_str()).or_default();
                let next = vals.len() as u32;
                let id = *vals.entry(v.as_str()).or_insert(next);
                if id == next {
                    dom.values.push(v.clone());
                }
                dom.of_node[i] = id;
            }
        }
        TopologyIndex { keys }
    }

    /// The domains of label `key`, `None` if no node carries it.
    pub fn key(&self, key: &str) -> Option<&TopologyDomains> {
        self.keys.get(key)
    }
}

/// One distinct anti-affinity term of bound pods: owner namespace and term.
pub(super) type AntiTermKey = (String, PodAffinityTerm);

/// Terms indexed under one label key.
#[derive(Debug, Clone, Default)]
struct KeyTerms {
    /// Terms requiring the key with one of these values.
    by_value: HashMap<String, HashSet<AntiTermKey>>,
    /// Terms requiring only that the key exists.
    exists: HashSet<AntiTermKey>,
}

/// The bound pods' distinct anti-affinity terms, each filed under one label its selector
/// requires (a `matchLabels` pair, else an `In` expression under each of its values, else
/// an `Exists` expression), or among the terms requiring no label. A pod can only be
/// selected by the terms filed under its own labels, plus those requiring no label.
#[derive(Debug, Clone, Default)]
pub(super) struct AntiTermIndex {
    by_key: HashMap<String, KeyTerms>,
    unlabelled: HashSet<AntiTermKey>,
}

/// Where a term is filed.
enum Slot<'t> {
    Values(&'t str, Vec<&'t str>),
    Exists(&'t str),
    Unlabelled,
}

fn slot(t: &PodAffinityTerm) -> Slot<'_> {
    if let Some((k, v)) = t.selector.match_labels.iter().next() {
        return Slot::Values(k, vec![v]);
    }
    for r in &t.selector.match_expressions {
        match r.operator {
            Operator::In => {
                return Slot::Values(&r.key, r.values.iter().map(String::as_str).collect())
            }
            Operator::Exists => return Slot::Exists(&r.key),
            _ => {}
        }
    }
    Slot::Unlabelled
}

impl AntiTermIndex {
    /// Files a new distinct term.
    pub(super) fn insert(&mut self, key: &AntiTermKey) {
        match slot(&key.1) {
            Slot::Values(k, vs) => {
                let kt = self.by_key.entry(k.to_string()).or_default();
                for v in vs {
                    kt.by_value
                        .entry(v.to_string())
                        .or_default()
                        .insert(key.clone());
                }
            }
            Slot::Exists(k) => {
                self.by_key
                    .entry(k.to_string())
                    .or_default()
                    .exists
                    .insert(key.clone());
            }
            Slot::Unlabelled => {
                self.unlabelled.insert(key.clone());
            }
        }
    }

    /// Removes a term no bound pod carries any more.
    pub(super) fn remove(&mut self, key: &AntiTermKey) {
        match slot(&key.1) {
            Slot::Values(k, vs) => {
                if let Some(kt) = self.by_key.get_mut(k) {
                    for v in vs {
                        if let Some(set) = kt.by_value.get_mut(v) {
                            set.remove(key);
                            if set.is_empty() {
                                kt.by_value.remove(v);
                            }
                        }
                    }
                    if kt.by_value.is_empty() && kt.exists.is_empty() {
                        self.by_key.remove(k);
                    }
                }
            }
            Slot::Exists(k) => {
                if let Some(kt) = self.by_key.get_mut(k) {
                    kt.exists.remove(key);
                    if kt.by_value.is_empty() && kt.exists.is_empty() {
                        self.by_key.remove(k);
                    }
                }
            }
            Slot::Unlabelled => {
                self.unlabelled.remove(key);
            }
        }
    }

    /// The terms that may select a pod with `labels` (each at most once): a superset of
    /// the selecting ones.
    pub(super) fn candidates<'s>(
        &'s self,
        labels: &'s Labels,
    ) -> impl Iterator<Item = &'s AntiTermKey> + 's {
        let labelled = labels.iter().flat_map(move |(k, v)| {
            self.by_key.get(k).into_iter().flat_map(move |kt| {
                kt.by_value
                    .get(v)
                    .into_iter()
                    .flatten()
                    .chain(kt.exists.iter())
            })
        });
        self.unlabelled.iter().chain(labelled)
    }
}

/// Which nodes count for the hard topology spread of pods with one node selector,
/// required node affinity and set of hard topology keys: the nodes passing the selector
/// and affinity that carry every key (kube's `nodeAffinityPolicy: Honor`), and per key
/// the domains of those nodes.
#[derive(Debug, Clone, Default)]
pub struct SpreadEligibility {
    /// Whether each node is eligible, indexed by [`NodeId`].
    pub eligible: Vec<bool>,
    /// Per hard key (sorted, distinct): the key and its domain ids that hold at least one
    /// eligible node, ascending.
    pub domains: Vec<(String, Vec<u32>)>,
}

impl SpreadEligibility {
    /// The eligible domains of `key` (empty if `key` is not one of the hard keys).
    pub fn domains_of(&self, key: &str) -> &[u32] {
        self.domains
            .iter()
            .find(|(k, _)| k == key)
            .map_or(&[], |(_, d)| d.as_slice())
    }
}

/// What spread eligibility depends on: node selector, required node affinity, and the
/// sorted distinct hard topology keys.
pub type SpreadEligibilityKey = (Labels, Option<NodeSelector>, Vec<String>);

/// Bound on memoised eligibilities (the memo starts over when full).
const MAX_MEMO: usize = 512;

/// Memo of [`SpreadEligibility`] per key; cloning copies the entries (they are shared).
#[derive(Debug, Default)]
pub(super) struct EligibilityMemo(Mutex<HashMap<SpreadEligibilityKey, Arc<SpreadEligibility>>>);

impl Clone for EligibilityMemo {
    fn clone(&self) -> Self {
        EligibilityMemo(Mutex::new(self.lock().clone()))
    }
}

impl EligibilityMemo {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<SpreadEligibilityKey, Arc<SpreadEligibility>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The memoised value for `key`, built by `build` on a miss.
    pub(super) fn get_or_build(
        &self,
        key: &SpreadEligibilityKey,
        build: impl FnOnce() -> SpreadEligibility,
    ) -> Arc<SpreadEligibility> {
        if let Some(e) = self.lock().get(key) {
            return e.clone();
        }
        // Built outside the lock: concurrent misses may build twice, harmlessly.
        let e = Arc::new(build());
        let mut m = self.lock();
        if m.len() >= MAX_MEMO {
            m.clear();
        }
        m.entry(key.clone()).or_insert(e).clone()
    }

    /// Forgets everything (nodes changed).
    pub(super) fn clear(&mut self) {
        self.0.get_mut().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
