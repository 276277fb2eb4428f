//! `DoNotSchedule` topology spread of newly placed pods in the final state (semantics in
//! the parent module), computed with the validator's own lookups: label values interned
//! per topology key, eligible nodes per (node selector, required affinity, hard keys),
//! and members indexed by label so counting a constraint visits only the members that
//! carry one of its selector's required labels.

use super::{Member, Nodes, Report, ViolationKind};
use crate::model::{
    Labels, Node, NodeSelector, Operator, Pod, TopologySpreadConstraint, WhenUnsatisfiable,
};
use std::collections::HashMap;
use std::rc::Rc;

/// Domain id of a node without the key.
const NONE: u32 = u32::MAX;

/// One topology key's values, interned.
struct KeyDomains<'a> {
    /// Domain id of each node (`NONE` without the key).
    of_node: Vec<u32>,
    values: Vec<&'a str>,
}

/// Nodes eligible for one (node selector, required affinity, hard keys), and per key the
/// number of domains holding an eligible node.
struct Eligible {
    node: Vec<bool>,
    domains: HashMap<String, usize>,
}

/// Domain counts for one constraint as seen by pods with the same namespace and node
/// constraints: only domains with a count > 0 are kept.
struct SpreadCounts {
    counts: HashMap<u32, u32>,
    min: u32,
}

type EligibleKey<'a> = (&'a Labels, Option<&'a NodeSelector>, Vec<&'a str>);
type CountsKey<'a> = (&'a str, &'a TopologySpreadConstraint, EligibleKey<'a>);

struct Lookups<'a> {
    nodes: &'a Nodes<'a>,
    members: &'a [Member<'a>],
    keys: HashMap<&'a str, Rc<KeyDomains<'a>>>,
    eligible: HashMap<EligibleKey<'a>, Rc<Eligible>>,
    /// Members by (label key, value), ascending member index.
    by_label: HashMap<(&'a str, &'a str), Vec<usize>>,
    /// Members by label key, ascending member index.
    by_key: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Lookups<'a> {
    fn new(nodes: &'a Nodes<'a>, members: &'a [Member<'a>]) -> Self {
        let mut by_label: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
        let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, m) in members.iter().enumerate() {
            for (k, v) in &m.pod.labels {
                by_label.entry((k, v)).or_default().push(i);
                by_key.entry(k).or_default().push(i);
            }
        }
        Lookups {
            nodes,
            members,
            keys: HashMap::new(),
            eligible: HashMap::new(),
            by_label,
            by_key,
        }
    }

    fn key(&mut self, key: &'a str) -> Rc<KeyDomains<'a>> {
        let nodes = self.nodes;
        self.keys
            .entry(key)
            .or_insert_with(|| {
                let mut ids: HashMap<&str, u32> = HashMap::new();
                let mut values = Vec::new();
                let of_node = nodes
                    .slot_iter()
                    .map(|n| match n.and_then(|n| n.labels.get(key)) {
                        None => NONE,
                        Some(v) => *ids.entry(v).or_insert_with(|| {
                            values.push(v.as_str());
                            values.len() as u32 - 1
                        }),
                    })
                    .collect();
                Rc::new(KeyDomains { of_node, values })
            })
            .clone()
    }

    fn eligible(&mut self, pod: &'a Pod, keys: &[&'a str]) -> Rc<Eligible> {
        let ek: EligibleKey = (
            &pod.node_selector,
            pod.required_node_affinity.as_ref(),
            keys.to_vec(),
        );
        if let Some(e) = self.eligible.get(&ek) {
            return e.clone();
        }
        let doms: Vec<Rc<KeyDomains>> = keys.iter().map(|k| self.key(k)).collect();
        let node: Vec<bool> = self
            .nodes
            .slot_iter()
            .enumerate()
            .map(|(i, n)| {
                n.is_some_and(|n| {
                    doms.iter().all(|d| d.of_node[i] != NONE) && node_fits_affinity(pod, n)
                })
            })
            .collect();
        let mut domains = HashMap::new();
        for (k, d) in keys.iter().zip(&doms) {
            let mut seen = vec![false; d.values.len()];
            let mut count = 0;
            for (i, &e) in node.iter().enumerate() {
                if e && !std::mem::replace(&mut seen[d.of_node[i] as usize], true) {
                    count += 1;
                }
            }
            domains.insert(k.to_string(), count);
        }
        let e = Rc::new(Eligible { node, domains });
        self.eligible.insert(ek, e.clone());
        e
    }

    /// Members that may match `selector`: those carrying one of its required labels (the
    /// smallest such list), or every member when it requires none. Ascending.
    fn candidates(&self, selector: &crate::model::LabelSelector) -> Option<Vec<usize>> {
        let mut best: Option<Vec<usize>> = None;
        let mut offer = |ids: Vec<usize>| {
            if best.as_ref().is_none_or(|b| ids.len() < b.len()) {
                best = Some(ids);
            }
        };
        for (k, v) in &selector.match_labels {
            offer(
                self.by_label
                    .get(&(k.as_str(), v.as_str()))
                    .cloned()
                    .unwrap_or_default(),
            );
        }
        for r in &selector.match_expressions {
            match r.operator {
                Operator::In => {
                    let mut ids: Vec<usize> = r
                        .values
                        .iter()
                        .filter_map(|v| self.by_label.get(&(r.key.as_str(), v.as_str())))
                        .flatten()
                        .copied()
                        .collect();
                    ids.sort_unstable();
                    ids.dedup();
                    offer(ids);
                }
                Operator::Exists => {
                    offer(self.by_key.get(r.key.as_str()).cloned().unwrap_or_default())
                }
                _ => {}
            }
        }
        best
    }

    fn counts(
        &self,
        pod: &Pod,
        c: &TopologySpreadConstraint,
        elig: &Eligible,
        dom: &KeyDomains,
    ) -> SpreadCounts {
        let mut counts: HashMap<u32, u32> = HashMap::new();
        let mut count = |q: &Member| {
            if elig.node[q.node]
                && q.pod.namespace == pod.namespace
                && c.selector.matches(&q.pod.labels)
            {
                *counts.entry(dom.of_node[q.node]).or_insert(0) += 1;
            }
        };
        match self.candidates(&c.selector) {
            Some(ids) => ids.into_iter().for_each(|i| count(&self.members[i])),
            None => self.members.iter().for_each(count),
        }
        // Counts cover eligible nodes only: fewer counted domains than eligible ones
        // means some eligible domain is empty.
        let eligible_domains = elig.domains[&c.topology_key];
        let min = if counts.len() < eligible_domains {
            0
        } else {
            counts.values().copied().min().unwrap_or(0)
        };
        SpreadCounts { counts, min }
    }
}

fn node_fits_affinity(pod: &Pod, node: &Node) -> bool {
    pod.node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v))
        && pod
            .required_node_affinity
            .as_ref()
            .is_none_or(|s| s.matches(&node.name, &node.labels))
}

/// Reports missing topology labels and skew violations of every placed pod's hard
/// spread constraints.
pub(super) fn spread(report: &mut Report, nodes: &Nodes, members: &[Member]) {
    let mut look = Lookups::new(nodes, members);
    let mut cache: HashMap<CountsKey, SpreadCounts> = HashMap::new();
    for p in members {
        let Some(i) = p.pending else { continue };
        let hard: Vec<&TopologySpreadConstraint> = p
            .pod
            .topology_spread
            .iter()
            .filter(|c| c.when_unsatisfiable == WhenUnsatisfiable::DoNotSchedule)
            .collect();
        if hard.is_empty() {
            continue;
        }
        let mut keys: Vec<&str> = hard.iter().map(|c| c.topology_key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        if super::report_missing_keys(report, nodes, i, p, keys.iter().copied()) {
            continue;
        }
        let elig = look.eligible(p.pod, &keys);
        for c in hard {
            let dom = look.key(&c.topology_key);
            let key: CountsKey = (
                &p.pod.namespace,
                c,
                (
                    &p.pod.node_selector,
                    p.pod.required_node_affinity.as_ref(),
                    keys.clone(),
                ),
            );
            let sc = cache
                .entry(key)
                .or_insert_with(|| look.counts(p.pod, c, &elig, &dom));
            let d = dom.of_node[p.node];
            let count = sc.counts.get(&d).copied().unwrap_or(0);
            if count > sc.min + c.max_skew {
                report.push(
                    Some((i, p.pod)),
                    Some(p.node),
                    ViolationKind::TopologySpread {
                        topology_key: c.topology_key.clone(),
                        domain: dom.values[d as usize].to_string(),
                        count,
                        min: sc.min,
                        max_skew: c.max_skew,
                    },
                );
            }
        }
    }
}
