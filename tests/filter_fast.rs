//! The fast inter-pod filters (interned topology domains, the anti-affinity term index,
//! memoised spread eligibility) and the online engine's class-based scan for pods with
//! inter-pod constraints, checked against straightforward references on random clusters:
//! several zones, nodes missing the zone label, bound pods with anti-affinity terms of
//! every selector shape, pods bound, removed and relabelled nodes along the way.

mod common;

use common::{random_problem, Size, HOSTNAME, ZONE};
use plimsoll::model::{
    Cluster, LabelSelector, Labels, NodeId, Operator, Pod, PodAffinityTerm, Requirement,
    TopologySpreadConstraint, WhenUnsatisfiable,
};
use plimsoll::place::filter::{check_static, node_affinity_matches};
use plimsoll::place::online::{OnlineKind, OnlinePolicy};
use plimsoll::place::{FilterContext, Reason};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

const SIZE: Size = Size {
    nodes: (8, 40),
    groups: (4, 16),
    max_replicas: 8,
};

/// Matching pods per value of `key` (pods on nodes without the key are not counted),
/// only on nodes where `eligible` holds; and their total.
fn domain_counts(
    cluster: &Cluster,
    key: &str,
    selects: &dyn Fn(&Pod) -> bool,
    eligible: Option<&[bool]>,
) -> (HashMap<String, u32>, u32) {
    let mut counts = HashMap::new();
    let mut total = 0;
    for (_, other, b) in cluster.bound_pods() {
        if eligible.is_some_and(|e| !e[b.node]) || !selects(other) {
            continue;
        }
        if let Some(v) = cluster[b.node].labels.get(key) {
            *counts.entry(v.clone()).or_insert(0) += 1;
            total += 1;
        }
    }
    (counts, total)
}

/// kube-scheduler's filters written plainly: label strings, every bound pod scanned.
fn reference_check(cluster: &Cluster, pod: &Pod, node: NodeId) -> Result<(), Vec<Reason>> {
    let n = &cluster[node];
    check_static(pod, n)?;
    if cluster.host_port_conflict(node, &pod.host_ports).is_some() {
        return Err(vec![Reason::HostPorts]);
    }
    let short = cluster.insufficient(pod, node);
    if !short.is_empty() {
        return Err(short.into_iter().map(Reason::Insufficient).collect());
    }
    let at = |counts: &HashMap<String, u32>, key: &str| {
        n.labels
            .get(key)
            .map(|v| counts.get(v).copied().unwrap_or(0))
    };
    let hard: Vec<&TopologySpreadConstraint> = pod
        .topology_spread
        .iter()
        .filter(|c| c.when_unsatisfiable == WhenUnsatisfiable::DoNotSchedule)
        .collect();
    if !hard.is_empty() {
        let eligible: Vec<bool> = cluster
            .nodes()
            .map(|(_, m)| {
                node_affinity_matches(pod, m)
                    && hard.iter().all(|c| m.labels.contains_key(&c.topology_key))
            })
            .collect();
        for c in &hard {
            let sel = |o: &Pod| o.namespace == pod.namespace && c.selector.matches(&o.labels);
            let (counts, _) = domain_counts(cluster, &c.topology_key, &sel, Some(&eligible));
            let min = cluster
                .nodes()
                .zip(&eligible)
                .filter(|(_, &e)| e)
                .map(|((_, m), _)| counts.get(&m.labels[&c.topology_key]).copied().unwrap_or(0))
                .min()
                .unwrap_or(0);
            match at(&counts, &c.topology_key) {
                None => return Err(vec![Reason::SpreadMissingLabel]),
                Some(k) => {
                    let own = u32::from(c.selector.matches(&pod.labels));
                    if k + own > min + c.max_skew {
                        return Err(vec![Reason::TopologySpread]);
                    }
                }
            }
        }
    }
    if !pod.pod_affinity.is_empty() {
        let mut ok = true;
        let mut pods_exist = true;
        let mut none_anywhere = true;
        for t in &pod.pod_affinity {
            let sel = |o: &Pod| t.selects(&pod.namespace, &o.namespace, &o.labels);
            let (counts, total) = domain_counts(cluster, &t.topology_key, &sel, None);
            none_anywhere &= total == 0;
            match at(&counts, &t.topology_key) {
                None => ok = false,
                Some(0) => pods_exist = false,
                Some(_) => {}
            }
        }
        let self_match = pod
            .pod_affinity
            .iter()
            .all(|t| t.selects(&pod.namespace, &pod.namespace, &pod.labels));
        if !ok || !(pods_exist || (none_anywhere && self_match)) {
            return Err(vec![Reason::PodAffinity]);
        }
    }
    for t in &pod.pod_anti_affinity {
        let sel = |o: &Pod| t.selects(&pod.namespace, &o.namespace, &o.labels);
        let (counts, _) = domain_counts(cluster, &t.topology_key, &sel, None);
        if at(&counts, &t.topology_key).is_some_and(|c| c > 0) {
            return Err(vec![Reason::PodAntiAffinity]);
        }
    }
    for (_, q, b) in cluster.bound_pods() {
        for t in &q.pod_anti_affinity {
            if !t.selects(&q.namespace, &pod.namespace, &pod.labels) {
                continue;
            }
            let theirs = cluster[b.node].labels.get(&t.topology_key);
            if theirs.is_some() && n.labels.get(&t.topology_key) == theirs {
                return Err(vec![Reason::ExistingPodAntiAffinity]);
            }
        }
    }
    Ok(())
}

/// An anti-affinity term with a random selector shape: `matchLabels`, `In` (one or two
/// values), `Exists`, `NotIn`, or empty (selects every pod of its namespaces).
fn random_anti_term(rng: &mut ChaCha8Rng, groups: usize) -> PodAffinityTerm {
    let g = |rng: &mut ChaCha8Rng| format!("g{}", rng.gen_range(0..groups.max(1)));
    let req = |key: &str, operator, values: Vec<String>| Requirement {
        key: key.into(),
        operator,
        values,
    };
    let mut selector = LabelSelector::default();
    match rng.gen_range(0..6) {
        0 | 1 => {
            selector.match_labels = Labels::from([("app".to_string(), g(rng))]);
        }
        2 => {
            let values = vec![g(rng), g(rng)];
            selector
                .match_expressions
                .push(req("app", Operator::In, values));
        }
        3 => selector
            .match_expressions
            .push(req("tier", Operator::Exists, vec![])),
        4 => {
            let values = vec![g(rng)];
            selector
                .match_expressions
                .push(req("app", Operator::NotIn, values));
        }
        _ => {}
    }
    PodAffinityTerm {
        selector,
        namespaces: if rng.gen_bool(0.2) {
            vec!["team-b".into()]
        } else {
            vec![]
        },
        topology_key: if rng.gen_bool(0.5) { ZONE } else { HOSTNAME }.into(),
    }
}

/// A random problem plus bound "blocker" pods whose anti-affinity terms take every
/// selector shape, and a `tier` label on some pending pods.
fn random_cluster(seed: u64) -> (Cluster, Vec<Pod>, ChaCha8Rng) {
    let mut problem = random_problem(seed, SIZE);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let groups = problem.pending.len().max(1);
    let n_nodes = problem.cluster.node_count();
    for k in 0..rng.gen_range(0..8) {
        let mut b = common::pod(&format!("blocker-{k}"), 10, 0);
        if rng.gen_bool(0.3) {
            b.namespace = "team-b".into();
        }
        b.labels = Labels::from([("role".to_string(), "blocker".to_string())]);
        for _ in 0..rng.gen_range(1..=2) {
            b.pod_anti_affinity.push(random_anti_term(&mut rng, groups));
        }
        let node = NodeId::from_index(rng.gen_range(0..n_nodes));
        let _ = problem.cluster.bind(b, node, None);
    }
    for p in &mut problem.pending {
        if rng.gen_bool(0.3) {
            p.labels.insert("tier".into(), "web".into());
        }
    }
    (problem.cluster, problem.pending, rng)
}

/// Compares every node's verdict; counts the verdicts by reason.
fn assert_same_verdicts(
    cluster: &Cluster,
    pod: &Pod,
    what: &str,
    seen: &mut HashMap<String, usize>,
) {
    let ctx = FilterContext::new(cluster, pod);
    for node in cluster.node_ids() {
        let got = ctx.check(node);
        assert_eq!(
            got,
            reference_check(cluster, pod, node),
            "{what}: pod {} on node {node}",
            pod.key()
        );
        let kind = match &got {
            Ok(()) => "ok".to_string(),
            Err(r) => format!("{:?}", r[0])
                .chars()
                .take_while(|c| c.is_alphanumeric())
                .collect(),
        };
        *seen.entry(kind).or_insert(0) += 1;
    }
}

#[test]
fn filter_verdicts_match_the_reference_on_random_clusters() {
    let mut checked = 0;
    let mut seen = HashMap::new();
    for seed in 0..60 {
        let (mut cluster, pending, mut rng) = random_cluster(seed);
        let mut bound = Vec::new();
        for (i, pod) in pending.iter().enumerate() {
            assert_same_verdicts(&cluster, pod, &format!("seed {seed}"), &mut seen);
            checked += 1;
            // Bind at a random feasible node, so the cluster fills up.
            let ctx = FilterContext::new(&cluster, pod);
            let ok: Vec<NodeId> = cluster
                .node_ids()
                .filter(|&n| ctx.check(n).is_ok())
                .collect();
            if !ok.is_empty() {
                let n = ok[rng.gen_range(0..ok.len())];
                if let Ok(id) = cluster.bind(pod.clone(), n, None) {
                    bound.push(id);
                }
            }
            // Now and then remove a pod, or drop/rename a node's zone.
            if i % 7 == 3 && !bound.is_empty() {
                let id = bound.swap_remove(rng.gen_range(0..bound.len()));
                cluster.unbind(id).expect("bound above");
            }
            if i % 11 == 5 {
                let n = NodeId::from_index(rng.gen_range(0..cluster.node_count()));
                let mut node = cluster[n].clone();
                if rng.gen_bool(0.5) {
                    node.labels.remove(ZONE);
                } else {
                    node.labels.insert(ZONE.into(), "zone-new".into());
                }
                cluster
                    .replace_node(n, node)
                    .expect("same name and devices");
            }
        }
    }
    assert!(checked > 500, "only {checked} pods checked");
    // Every inter-pod verdict occurs, so each fast path was compared.
    for kind in [
        "ok",
        "SpreadMissingLabel",
        "TopologySpread",
        "PodAffinity",
        "PodAntiAffinity",
        "ExistingPodAntiAffinity",
    ] {
        assert!(
            seen.get(kind).is_some_and(|&c| c > 0),
            "no {kind} verdict: {seen:?}"
        );
    }
}

#[test]
fn bound_pods_anti_affinity_terms_index_finds_every_selecting_term() {
    for seed in 100..140 {
        let (cluster, pending, _) = random_cluster(seed);
        for pod in &pending {
            let mut all: Vec<(String, String)> = cluster
                .anti_affinity_terms()
                .filter(|(ns, t, _)| t.selects(ns, &pod.namespace, &pod.labels))
                .map(|(ns, t, _)| (ns.to_string(), format!("{t:?}")))
                .collect();
            let mut indexed: Vec<(String, String)> = cluster
                .anti_affinity_terms_maybe_selecting(&pod.labels)
                .filter(|(ns, t, _)| t.selects(ns, &pod.namespace, &pod.labels))
                .map(|(ns, t, _)| (ns.to_string(), format!("{t:?}")))
                .collect();
            all.sort();
            indexed.sort();
            assert_eq!(all, indexed, "seed {seed}, pod {}", pod.key());
        }
    }
}

/// The online engine's class-based scan (for pods with inter-pod constraints, each
/// class of equivalent nodes stands for its lowest member passing the inter-pod checks)
/// picks what the full scan of every feasible node picks.
#[test]
fn online_choice_is_the_best_feasible_node() {
    let kinds = [
        OnlineKind::FirstFit,
        OnlineKind::BestFit,
        OnlineKind::KubeDefault,
        OnlineKind::MostAllocated,
        OnlineKind::LeastAllocated,
        OnlineKind::DotProduct,
        OnlineKind::GpuPacking,
        OnlineKind::GpuClustering,
        OnlineKind::Fgd,
    ];
    let mut decisions = 0;
    for seed in 200..230 {
        for kind in kinds {
            let (cluster, pending, _) = random_cluster(seed);
            let mut session = OnlinePolicy::new(kind, seed).session(cluster);
            for pod in pending {
                let feasible: Vec<NodeId> = OnlinePolicy::filter(session.cluster(), &pod)
                    .iter()
                    .filter(|(_, r)| r.is_ok())
                    .map(|&(n, _)| n)
                    .collect();
                let scores = session.scores(&pod);
                let scored: Vec<NodeId> = scores.iter().map(|&(n, _)| n).collect();
                assert_eq!(scored, feasible, "{kind:?} seed {seed} {}", pod.key());
                let choice = session.select(&pod);
                let Some(b) = choice else {
                    assert!(scores.is_empty(), "{kind:?} seed {seed} {}", pod.key());
                    continue;
                };
                let best = scores.iter().map(|&(_, s)| s).fold(f64::MIN, f64::max);
                let mine = scores
                    .iter()
                    .find(|&&(n, _)| n == b.node)
                    .map(|&(_, s)| s)
                    .expect("the choice is feasible");
                if kind == OnlineKind::FirstFit {
                    assert_eq!(b.node, scores[0].0, "seed {seed} {}", pod.key());
                } else {
                    assert!(
                        mine >= best - 1e-9,
                        "{kind:?} seed {seed} {}: chose {} ({mine}) but best is {best}",
                        pod.key(),
                        b.node
                    );
                    // Among (numerically) equal best scores, the lowest index wins.
                    let first_best = scores
                        .iter()
                        .find(|&&(_, s)| s >= best - 1e-9)
                        .map(|&(n, _)| n);
                    assert_eq!(
                        Some(b.node),
                        first_best,
                        "{kind:?} seed {seed} {}",
                        pod.key()
                    );
                }
                decisions += 1;
                session.bind(pod, &b).expect("feasible");
            }
        }
    }
    assert!(decisions > 1000, "only {decisions} decisions");
}
