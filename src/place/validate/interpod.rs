//! Inter-pod constraints of newly placed pods, checked in the *final state* (bound pods
//! plus every placed pod), independently of the filters. The semantics are documented
//! in the parent module.

use super::{report_missing_keys, Member, Nodes, Report, ViolationKind};
use crate::model::Pod;
use std::collections::HashMap;

/// Runs the pod affinity and anti-affinity checks (topology spread: `spread.rs`).
pub(super) fn check(report: &mut Report, nodes: &Nodes, members: &[Member]) {
    anti_affinity(report, nodes, members);
    affinity(report, nodes, members);
}

/// The value of `key` on the member's node.
fn domain<'a>(nodes: &'a Nodes<'a>, m: &Member, key: &str) -> Option<&'a String> {
    nodes[m.node].labels.get(key)
}

/// Members grouped by the value of a topology key on their node, built per key on first
/// use (a lookup, so checks cost the size of a domain rather than of the cluster).
struct Domains<'a> {
    nodes: &'a Nodes<'a>,
    members: &'a [Member<'a>],
    by_key: HashMap<&'a str, HashMap<&'a str, Vec<usize>>>,
}

impl<'a> Domains<'a> {
    fn new(nodes: &'a Nodes<'a>, members: &'a [Member<'a>]) -> Self {
        Domains {
            nodes,
            members,
            by_key: HashMap::new(),
        }
    }

    /// Indices (ascending) of the members whose node has `key` = `value`.
    fn members_in(&mut self, key: &'a str, value: &str) -> &[usize] {
        let (nodes, members) = (self.nodes, self.members);
        let groups = self.by_key.entry(key).or_insert_with(|| {
            let mut g: HashMap<&'a str, Vec<usize>> = HashMap::new();
            for (i, m) in members.iter().enumerate() {
                if let Some(v) = nodes[m.node].labels.get(key) {
                    g.entry(v.as_str()).or_default().push(i);
                }
            }
            g
        });
        groups.get(value).map_or(&[], |v| v.as_slice())
    }
}

fn anti_affinity(report: &mut Report, nodes: &Nodes, members: &[Member]) {
    let mut domains = Domains::new(nodes, members);
    for (a, p) in members.iter().enumerate() {
        let Some(i) = p.pending else { continue };
        for t in &p.pod.pod_anti_affinity {
            let Some(v) = domain(nodes, p, &t.topology_key) else {
                continue;
            };
            let hit = domains
                .members_in(&t.topology_key, v)
                .iter()
                .map(|&b| (b, &members[b]))
                .find(|(b, q)| {
                    *b != a && t.selects(&p.pod.namespace, &q.pod.namespace, &q.pod.labels)
                });
            if let Some((_, q)) = hit {
                report.push(
                    Some((i, p.pod)),
                    Some(p.node),
                    ViolationKind::PodAntiAffinity {
                        other: q.pod.key(),
                        topology_key: t.topology_key.clone(),
                    },
                );
            }
        }
    }
    for q in members.iter().filter(|q| q.pending.is_none()) {
        for t in &q.pod.pod_anti_affinity {
            let Some(v) = domain(nodes, q, &t.topology_key) else {
                continue;
            };
            for &b in domains.members_in(&t.topology_key, v) {
                let p = &members[b];
                let Some(i) = p.pending else { continue };
                if t.selects(&q.pod.namespace, &p.pod.namespace, &p.pod.labels) {
                    report.push(
                        Some((i, p.pod)),
                        Some(p.node),
                        ViolationKind::ExistingPodAntiAffinity {
                            other: q.pod.key(),
                            topology_key: t.topology_key.clone(),
                        },
                    );
                }
            }
        }
    }
}

/// Whether `q` matches any of `p`'s affinity terms.
fn matches_any_term(p: &Pod, q: &Pod) -> bool {
    p.pod_affinity
        .iter()
        .any(|t| t.selects(&p.namespace, &q.namespace, &q.labels))
}

fn affinity(report: &mut Report, nodes: &Nodes, members: &[Member]) {
    // Placed pods that rely on the first-of-group exception: (member index, failing term).
    let mut claimants: Vec<(usize, usize)> = Vec::new();
    // Placed pods whose every term has a partner in the final state.
    let mut partnered: Vec<usize> = Vec::new();
    for (a, p) in members.iter().enumerate() {
        let Some(i) = p.pending else { continue };
        if p.pod.pod_affinity.is_empty() {
            continue;
        }
        let keys = p.pod.pod_affinity.iter().map(|t| t.topology_key.as_str());
        if report_missing_keys(report, nodes, i, p, keys) {
            continue;
        }
        let unmet = p.pod.pod_affinity.iter().position(|t| {
            let v = domain(nodes, p, &t.topology_key);
            !members.iter().enumerate().any(|(b, q)| {
                b != a
                    && domain(nodes, q, &t.topology_key) == v
                    && t.selects(&p.pod.namespace, &q.pod.namespace, &q.pod.labels)
            })
        });
        let Some(term) = unmet else {
            partnered.push(a);
            continue;
        };
        let own = p
            .pod
            .pod_affinity
            .iter()
            .all(|t| t.selects(&p.pod.namespace, &p.pod.namespace, &p.pod.labels));
        let bound_match = members.iter().find(|q| {
            q.pending.is_none()
                && p.pod.pod_affinity.iter().any(|t| {
                    domain(nodes, q, &t.topology_key).is_some()
                        && t.selects(&p.pod.namespace, &q.pod.namespace, &q.pod.labels)
                })
        });
        let detail = if !own {
            Some(
                "it does not match its own affinity terms, so it cannot be the first of its group"
                    .to_string(),
            )
        } else {
            bound_match.map(|q| format!("bound pod {} matches the term elsewhere", q.pod.key()))
        };
        match detail {
            Some(detail) => report.push(
                Some((i, p.pod)),
                Some(p.node),
                ViolationKind::PodAffinity {
                    topology_key: p.pod.pod_affinity[term].topology_key.clone(),
                    detail,
                },
            ),
            None => claimants.push((a, term)),
        }
    }
    for (c, partner) in claimants_on_cycles(members, &claimants) {
        let (a, term) = claimants[c];
        let p = &members[a];
        report.push(
            Some((p.pending.expect("claimants are placed pods"), p.pod)),
            Some(p.node),
            ViolationKind::PodAffinity {
                topology_key: p.pod.pod_affinity[term].topology_key.clone(),
                detail: format!(
                    "placed pod {} also claims to be first of the group and each matches the other's terms",
                    members[claimants[partner].0].pod.key()
                ),
            },
        );
    }
    check_seeding(report, nodes, members, &partnered);
}

/// Whether `q` (another pod) is a partner for `p`'s term `t` in `p`'s domain.
fn partners(nodes: &Nodes, p: &Member, t: &crate::model::PodAffinityTerm, q: &Member) -> bool {
    let v = domain(nodes, p, &t.topology_key);
    v.is_some()
        && domain(nodes, q, &t.topology_key) == v
        && t.selects(&p.pod.namespace, &q.pod.namespace, &q.pod.labels)
}

/// Pods whose partners exist in the final state must also have been placeable one at a
/// time: some pod of each group has to come first. Simulates an order: bound pods, pods
/// without affinity terms (as partners — they are assumed to come after any claim, so
/// they never block one), first-of-group claimants and pods already reported come first;
/// then, repeatedly, every pod whose terms all have an earlier partner in its domain, or
/// else one pod (lowest index) that may start its group (it matches its own terms and
/// no earlier pod with terms, nor any bound pod, matches them). Pods never reached are
/// reported: e.g. a group split over two zones, where the zone without the first pod
/// has no pod that could have started it.
fn check_seeding(report: &mut Report, nodes: &Nodes, members: &[Member], partnered: &[usize]) {
    let mut placed = vec![true; members.len()];
    for &a in partnered {
        placed[a] = false;
    }
    let mut remaining: Vec<usize> = partnered.to_vec();
    while !remaining.is_empty() {
        let ready: Vec<usize> = remaining
            .iter()
            .copied()
            .filter(|&a| {
                let p = &members[a];
                p.pod.pod_affinity.iter().all(|t| {
                    members
                        .iter()
                        .enumerate()
                        .any(|(b, q)| b != a && placed[b] && partners(nodes, p, t, q))
                })
            })
            .collect();
        if !ready.is_empty() {
            for &a in &ready {
                placed[a] = true;
            }
            remaining.retain(|a| !ready.contains(a));
            continue;
        }
        let claim = remaining.iter().copied().find(|&a| {
            let p = &members[a];
            let own = p
                .pod
                .pod_affinity
                .iter()
                .all(|t| t.selects(&p.pod.namespace, &p.pod.namespace, &p.pod.labels));
            own && !members.iter().enumerate().any(|(b, q)| {
                b != a
                    && placed[b]
                    && (q.pending.is_none() || !q.pod.pod_affinity.is_empty())
                    && matches_any_term(p.pod, q.pod)
                    && p.pod
                        .pod_affinity
                        .iter()
                        .any(|t| domain(nodes, q, &t.topology_key).is_some())
            })
        });
        match claim {
            Some(a) => {
                placed[a] = true;
                remaining.retain(|&x| x != a);
            }
            None => break,
        }
    }
    for a in remaining {
        let p = &members[a];
        report.push(
            Some((p.pending.expect("only placed pods are simulated"), p.pod)),
            Some(p.node),
            ViolationKind::PodAffinity {
                topology_key: p.pod.pod_affinity[0].topology_key.clone(),
                detail: "its partners in its domain depend on it in turn and none of them could have come first, since pods matching the term run elsewhere".to_string(),
            },
        );
    }
}

/// Claimants (indices into `claimants`) lying on a cycle of the "must come before"
/// graph (edge p → q when q matches a term of p), each with a partner on its cycle.
/// Kosaraju's strongly connected components, iteratively.
fn claimants_on_cycles(members: &[Member], claimants: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let n = claimants.len();
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut pred: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (x, &(a, _)) in claimants.iter().enumerate() {
        for (y, &(b, _)) in claimants.iter().enumerate() {
            if x != y && matches_any_term(members[a].pod, members[b].pod) {
                succ[x].push(y);
                pred[y].push(x);
            }
        }
    }
    // First pass: finishing order.
    let mut seen = vec![false; n];
    let mut order = Vec::with_capacity(n);
    for s in 0..n {
        if seen[s] {
            continue;
        }
        seen[s] = true;
        let mut stack = vec![(s, 0usize)];
        while let Some(&mut (v, ref mut k)) = stack.last_mut() {
            if let Some(&w) = succ[v].get(*k) {
                *k += 1;
                if !seen[w] {
                    seen[w] = true;
                    stack.push((w, 0));
                }
            } else {
                order.push(v);
                stack.pop();
            }
        }
    }
    // Second pass on the reversed graph: components.
    let mut comp = vec![usize::MAX; n];
    let mut comps: Vec<Vec<usize>> = Vec::new();
    for &s in order.iter().rev() {
        if comp[s] != usize::MAX {
            continue;
        }
        let id = comps.len();
        comp[s] = id;
        let mut members_of = vec![s];
        let mut stack = vec![s];
        while let Some(v) = stack.pop() {
            for &w in &pred[v] {
                if comp[w] == usize::MAX {
                    comp[w] = id;
                    members_of.push(w);
                    stack.push(w);
                }
            }
        }
        comps.push(members_of);
    }
    let mut out = Vec::new();
    for c in comps.iter().filter(|c| c.len() > 1) {
        for &x in c {
            let partner = succ[x]
                .iter()
                .copied()
                .find(|y| comp[*y] == comp[x])
                .expect("a component of two or more has an inner edge from each member");
            out.push((x, partner));
        }
    }
    out.sort_unstable();
    out
}
