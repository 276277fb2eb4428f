//! Rebalancing: the MILP against brute force on tiny clusters, thresholds and hard
//! constraints (checked by the independent validator), the greedy baseline's eviction
//! order, priority weighting, infeasible thresholds, emptying under-used nodes, usage
//! files, the skewed cluster target, a property test and the CLI.

use plimsoll::balance::synthetic::{skewed_cluster, SkewSpec};
use plimsoll::balance::usage::parse_usage;
use plimsoll::balance::{
    balance, greedy, milp, validate_moves, BalanceOptions, Move, PodUsage, Usage,
};
use plimsoll::model::{
    LabelSelector, Node, NodeId, Pod, PodAffinityTerm, PodId, Problem, Taint, TaintEffect, GIB,
};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;

fn node(name: &str, cpu: u64) -> Node {
    Node::new(name, cpu, 64 * GIB).with_ephemeral_storage(1 << 40)
}

fn pod(name: &str, cpu_request: u64, priority: i32, on: &str) -> Pod {
    Pod::new(name, cpu_request, GIB)
        .with_label("app", name)
        .with_priority(priority)
        .bound_to(on)
}

/// Usage by pod name (cpu millicores).
fn usage_of(problem: &Problem, cpu: &[(&str, u64)]) -> Usage {
    let mut u = Usage::default();
    for (id, p, _) in problem.cluster.bound_pods() {
        if let Some((_, c)) = cpu.iter().find(|(n, _)| *n == p.name) {
            u.insert(
                id,
                PodUsage {
                    cpu_milli: *c,
                    memory_bytes: None,
                },
            );
        }
    }
    u
}

fn opts(high: f64) -> BalanceOptions {
    BalanceOptions {
        high,
        time_limit_seconds: 10.0,
        ..Default::default()
    }
}

fn moved(moves: &[Move]) -> BTreeSet<String> {
    moves.iter().map(|m| m.pod.clone()).collect()
}

fn names(moves: &[Move]) -> Vec<(String, String)> {
    moves
        .iter()
        .map(|m| {
            (
                m.pod.trim_start_matches("default/").to_string(),
                m.to.clone(),
            )
        })
        .collect()
}

/// Brute force: every assignment of every pod to every node, feasible when the
/// validator accepts it; best by (excess, cost) with the documented cost formula.
fn brute_force(problem: &Problem, usage: &Usage, high: f64) -> (f64, f64) {
    let pods: Vec<_> = problem
        .cluster
        .bound_pods()
        .map(|(id, p, b)| (id, p.clone(), b.node))
        .collect();
    let nodes: Vec<&Node> = problem.cluster.nodes().map(|(_, n)| n).collect();
    let prios: BTreeSet<i32> = pods.iter().map(|p| p.1.priority).collect();
    let span = (prios.len().max(2) - 1) as f64;
    let weight = |p: i32| 1.0 + 0.5 * prios.iter().position(|&q| q == p).unwrap() as f64 / span;
    let mut best = (f64::INFINITY, f64::INFINITY);
    let total = nodes.len().pow(pods.len() as u32);
    for code in 0..total {
        let mut c = code;
        let assign: Vec<NodeId> = pods
            .iter()
            .map(|_| {
                let n = c % nodes.len();
                c /= nodes.len();
                NodeId::from_index(n)
            })
            .collect();
        let moves: Vec<Move> = pods
            .iter()
            .zip(&assign)
            .filter(|((_, _, from), to)| from != *to)
            .map(|((id, p, from), &to)| Move {
                pod: p.key(),
                from: nodes[*from].name.clone(),
                to: nodes[to].name.clone(),
                pod_id: *id,
                from_node: *from,
                to_node: to,
            })
            .collect();
        if validate_moves(problem, &moves).is_err() {
            continue;
        }
        let mut used = vec![0u64; nodes.len()];
        for ((id, p, _), &n) in pods.iter().zip(&assign) {
            used[n] += usage.get(*id).map_or(p.requests.cpu_milli, |u| u.cpu_milli);
        }
        let excess: f64 = used
            .iter()
            .zip(&nodes)
            .map(|(&u, n)| {
                let cap = n.allocatable.cpu_milli;
                let lim = (high * cap as f64 + 1e-6).floor() as u64;
                u.saturating_sub(lim) as f64 / cap as f64
            })
            .sum();
        let cost: f64 = pods
            .iter()
            .zip(&assign)
            .filter(|((_, _, f), t)| f != *t)
            .map(|((_, p, _), _)| weight(p.priority))
            .sum();
        if excess < best.0 - 1e-9 || (excess <= best.0 + 1e-9 && cost < best.1) {
            best = (excess, cost);
        }
    }
    best
}

#[test]
fn milp_matches_brute_force_on_tiny_clusters() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for case in 0..16 {
        let nodes = vec![node("a", 4000), node("b", 4000), node("c", 2000)];
        let mut pods = Vec::new();
        let mut cpu = Vec::new();
        for k in 0..5 {
            let on = ["a", "a", "b", "a", "c"][k];
            let name = format!("p{k}");
            let mut p = pod(
                &name,
                rng.gen_range(2..=8) * 100,
                rng.gen_range(0..3) * 10,
                on,
            );
            if case % 3 == 0 && k == 1 {
                p.node_selector
                    .insert("kubernetes.io/hostname".into(), "a".into());
            }
            // Odd cases: p0 (on a) and p4 (on c) repel each other per host.
            if case % 2 == 1 && (k == 0 || k == 4) {
                p.labels.insert("tier".into(), "web".into());
                p.pod_anti_affinity.push(PodAffinityTerm {
                    selector: LabelSelector {
                        match_labels: [("tier".to_string(), "web".to_string())].into(),
                        ..Default::default()
                    },
                    namespaces: vec![],
                    topology_key: "kubernetes.io/hostname".into(),
                });
            }
            pods.push(p);
            cpu.push((name, rng.gen_range(3..=14) * 100));
        }
        let problem = Problem::from_parts(nodes, pods).unwrap();
        let cpu: Vec<(&str, u64)> = cpu.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        let usage = usage_of(&problem, &cpu);
        let high = 0.7;
        let (excess, cost) = brute_force(&problem, &usage, high);
        let plan = milp::plan(&problem, &usage, &opts(high)).unwrap();
        assert!(plan.optimal, "case {case}: not proven optimal");
        assert!(
            (plan.excess - excess).abs() < 1e-6 && (plan.cost - cost).abs() < 1e-6,
            "case {case}: milp (excess {}, cost {}) vs brute force ({excess}, {cost})",
            plan.excess,
            plan.cost
        );
        validate_moves(&problem, &plan.moves).unwrap();
        let g = greedy::plan(&problem, &usage, &opts(high)).unwrap();
        assert!(
            g.excess + 1e-9 >= excess,
            "case {case}: greedy beats the optimum"
        );
    }
}

#[test]
fn priority_weighting_changes_the_chosen_pod() {
    for (lo, hi) in [("x", "y"), ("y", "x")] {
        let nodes = vec![node("hot", 4000), node("cool", 4000)];
        let mut pods = vec![pod("x", 1000, 0, "hot"), pod("y", 1000, 0, "hot")];
        for p in &mut pods {
            p.priority = if p.name == hi { 100 } else { 0 };
        }
        pods.push(pod("base", 1000, 0, "hot"));
        pods[2].priority = 1_000;
        let problem = Problem::from_parts(nodes, pods).unwrap();
        // hot: 3.6 cores used of 4 (0.9); moving either 1.2-core pod reaches 0.6.
        let usage = usage_of(&problem, &[("x", 1200), ("y", 1200), ("base", 1200)]);
        let plan = milp::plan(&problem, &usage, &opts(0.8)).unwrap();
        assert_eq!(
            names(&plan.moves),
            vec![(lo.to_string(), "cool".to_string())]
        );
        assert!(plan.targets_met() && plan.optimal);
    }
}

#[test]
fn greedy_evicts_lowest_priority_first_and_milp_moves_fewer() {
    let nodes = vec![node("hot", 8000), node("cool", 8000)];
    let mut pods: Vec<Pod> = (0..6)
        .map(|k| pod(&format!("small{k}"), 400, 0, "hot"))
        .collect();
    pods.push(pod("big", 3000, 1000, "hot"));
    let problem = Problem::from_parts(nodes, pods).unwrap();
    let mut cpu: Vec<(String, u64)> = (0..6).map(|k| (format!("small{k}"), 500)).collect();
    cpu.push(("big".into(), 4000));
    let cpu: Vec<(&str, u64)> = cpu.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    // hot uses 7 of 8 cores (0.875); high 0.6 needs 2.2 cores off.
    let usage = usage_of(&problem, &cpu);
    let c = balance(&problem, &usage, &opts(0.6)).unwrap();
    // Greedy: small pods first (equal priority, equal usage: pod id order) until 4.8
    // cores: five small pods leave.
    let g = moved(&c.greedy.moves);
    assert_eq!(c.greedy.moves.len(), 5, "{g:?}");
    assert!(g.iter().all(|p| p.contains("small")));
    assert!(c.greedy.targets_met());
    // MILP: the big pod alone (cost 1.5 < 5).
    assert_eq!(names(&c.milp.moves), vec![("big".into(), "cool".into())]);
    assert!(c.milp.targets_met() && c.milp.optimal && !c.milp.fell_back);
}

#[test]
fn greedy_sends_pods_to_the_least_utilised_node_under_high() {
    let nodes = vec![node("hot", 4000), node("mid", 4000), node("low", 4000)];
    let pods = vec![
        pod("a", 500, 0, "hot"),
        pod("b", 500, 0, "hot"),
        pod("m", 500, 0, "mid"),
        pod("l", 500, 0, "low"),
    ];
    let problem = Problem::from_parts(nodes, pods).unwrap();
    let usage = usage_of(
        &problem,
        &[("a", 1800), ("b", 1800), ("m", 1000), ("l", 2000)],
    );
    let g = greedy::plan(&problem, &usage, &opts(0.8)).unwrap();
    // hot at 0.9; evicting `a` (pod id order among equals) to mid (0.25 < low's 0.5).
    assert_eq!(names(&g.moves), vec![("a".into(), "mid".into())]);
    assert!(g.targets_met() && !g.optimal);
}

#[test]
fn hard_constraints_are_kept() {
    let mut nodes = vec![
        node("hot", 4000),
        node("tainted", 8000),
        node("cordoned", 8000),
        node("peer", 8000),
        node("ok", 4000),
    ];
    nodes[1].taints.push(Taint {
        key: "dedicated".into(),
        value: "gpu".into(),
        effect: TaintEffect::NoSchedule,
    });
    nodes[2].unschedulable = true;
    let anti = PodAffinityTerm {
        selector: LabelSelector {
            match_labels: [("tier".to_string(), "web".to_string())].into(),
            ..Default::default()
        },
        namespaces: vec![],
        topology_key: "kubernetes.io/hostname".into(),
    };
    let mut web1 = pod("web1", 1000, 0, "hot");
    let mut web2 = pod("web2", 1000, 0, "peer");
    for w in [&mut web1, &mut web2] {
        w.labels.insert("tier".into(), "web".into());
        w.pod_anti_affinity.push(anti.clone());
    }
    let pods = vec![web1, pod("stay", 3000, 1000, "hot"), web2];
    let problem = Problem::from_parts(nodes, pods).unwrap();
    // hot at 1.0; peer nearly empty, but web1 may not join web2 there; the tainted and
    // cordoned nodes are empty but closed.
    let usage = usage_of(&problem, &[("web1", 1000), ("stay", 3000), ("web2", 100)]);
    let c = balance(&problem, &usage, &opts(0.8)).unwrap();
    for plan in [&c.milp, &c.greedy] {
        assert_eq!(names(&plan.moves), vec![("web1".into(), "ok".into())]);
        validate_moves(&problem, &plan.moves).unwrap();
    }
    // Requests: shrink `ok` below web1's request; only `stay` can go, to `peer`.
    let mut nodes2: Vec<Node> = problem.cluster.nodes().map(|(_, n)| n.clone()).collect();
    nodes2[4].allocatable.cpu_milli = 500;
    nodes2[4].capacity.cpu_milli = 500;
    let pods2: Vec<Pod> = problem
        .cluster
        .bound_pods()
        .map(|(_, p, _)| p.clone())
        .collect();
    let problem2 = Problem::from_parts(nodes2, pods2).unwrap();
    let usage2 = usage_of(&problem2, &[("web1", 1000), ("stay", 3000), ("web2", 100)]);
    let c2 = balance(&problem2, &usage2, &opts(0.8)).unwrap();
    for plan in [&c2.milp, &c2.greedy] {
        assert_eq!(names(&plan.moves), vec![("stay".into(), "peer".into())]);
        validate_moves(&problem2, &plan.moves).unwrap();
    }
}

#[test]
fn infeasible_thresholds_are_reported_and_excess_minimised() {
    let nodes = vec![node("hot", 4000), node("small", 2000)];
    let pods = vec![
        pod("a", 1000, 0, "hot"),
        pod("b", 1000, 0, "hot"),
        pod("c", 1000, 0, "hot"),
    ];
    let problem = Problem::from_parts(nodes, pods).unwrap();
    let usage = usage_of(&problem, &[("a", 1700), ("b", 1700), ("c", 1700)]);
    let c = balance(&problem, &usage, &opts(0.8)).unwrap();
    // hot 5.1/4; moving one to small: small 1.7/2 = 0.85 (excess 0.05), hot 3.4/4 =
    // 0.85 (0.05): total 0.1 < 0.475 (no move).
    assert_eq!(c.milp.moves.len(), 1);
    assert!(!c.milp.targets_met());
    assert!((c.milp.excess - 0.1).abs() < 1e-6, "{}", c.milp.excess);
    assert!(c.milp.unmet.iter().any(|u| u.contains("small")));
    assert!(c.milp.optimal);
}

#[test]
fn low_empties_under_used_nodes() {
    let nodes = vec![node("a", 4000), node("b", 4000), node("idle", 4000)];
    let pods = vec![
        pod("a1", 500, 0, "a"),
        pod("b1", 500, 0, "b"),
        pod("i1", 500, 0, "idle"),
        pod("i2", 500, 0, "idle"),
    ];
    let problem = Problem::from_parts(nodes, pods).unwrap();
    let usage = usage_of(
        &problem,
        &[("a1", 2000), ("b1", 1800), ("i1", 300), ("i2", 200)],
    );
    let options = BalanceOptions {
        low: Some(0.3),
        ..opts(0.8)
    };
    let c = balance(&problem, &usage, &options).unwrap();
    for plan in [&c.milp, &c.greedy] {
        assert!(plan.targets_met(), "{:?}", plan.unmet);
        assert_eq!(moved(&plan.moves).len(), 2);
        assert_eq!(plan.after[2].pods, 0);
        assert!(plan.after[2].to_empty && !plan.after[0].to_empty);
        validate_moves(&problem, &plan.moves).unwrap();
    }
}

/// Regression: with every pod pinned to its node, the program had no columns and
/// HiGHS's rejection of the start panicked inside good_lp.
#[test]
fn nothing_movable_gives_the_current_placement() {
    let nodes = vec![node("n1", 4000), node("n2", 4000)];
    let mut pods = vec![pod("a", 1000, 0, "n1"), pod("b", 1000, 0, "n1")];
    for p in &mut pods {
        p.node_selector
            .insert("kubernetes.io/hostname".into(), "n1".into());
    }
    let problem = Problem::from_parts(nodes, pods).unwrap();
    let usage = usage_of(&problem, &[("a", 2000), ("b", 1500)]);
    let options = BalanceOptions {
        low: Some(0.1),
        ..opts(0.7)
    };
    let c = balance(&problem, &usage, &options).unwrap();
    assert!(c.milp.moves.is_empty() && !c.milp.targets_met());
    assert!(c.milp.optimal && !c.milp.fell_back);
    // An empty node is never "to empty" (it stays a target).
    assert!(!c.milp.after[1].to_empty);
    assert_eq!(c.milp.cost.to_string(), "0");
}

#[test]
fn skewed_cluster_milp_needs_at_most_half_the_greedy_moves() {
    let (problem, usage) = skewed_cluster(&SkewSpec {
        nodes: 12,
        hot: 3,
        seed: 3,
    });
    let c = balance(&problem, &usage, &opts(0.8)).unwrap();
    assert!(c.milp.targets_met() && c.greedy.targets_met());
    assert!(
        2 * c.milp.moves.len() <= c.greedy.moves.len(),
        "milp {} vs greedy {}",
        c.milp.moves.len(),
        c.greedy.moves.len()
    );
    validate_moves(&problem, &c.milp.moves).unwrap();
    validate_moves(&problem, &c.greedy.moves).unwrap();
}

const PODS: &str = "pod,cpu,memory\ndefault/a1,1500m,1Gi\nb1,2,\n";

fn usage_problem() -> Problem {
    let mut other = pod("b1", 500, 0, "b");
    other.namespace = "other".into();
    Problem::from_parts(
        vec![node("a", 4000), node("b", 4000)],
        vec![pod("a1", 500, 0, "a"), other, pod("a2", 700, 0, "a")],
    )
    .unwrap()
}

#[test]
fn usage_file_parses_and_defaults_to_requests() {
    let problem = usage_problem();
    let u = parse_usage(PODS, "u.csv", &problem.cluster).unwrap();
    assert_eq!(u.len(), 2);
    assert_eq!(u.defaulted(), 1);
    let ids: Vec<PodId> = problem.cluster.bound_pods().map(|(id, _, _)| id).collect();
    assert_eq!(u.get(ids[0]).unwrap().cpu_milli, 1500);
    assert_eq!(u.get(ids[0]).unwrap().memory_bytes, Some(1 << 30));
    assert_eq!(u.get(ids[1]).unwrap().memory_bytes, None);
    let util = plimsoll::balance::utilisation(&problem, &u);
    // a: 1.5 cores + a2's request 0.7 = 2.2 of 4.
    assert!((util[0].cpu - 0.55).abs() < 1e-9);
}

#[test]
fn usage_from_keys_resolves_pods_and_rejects_unknown_ones() {
    let problem = usage_problem();
    let u = PodUsage {
        cpu_milli: 100,
        memory_bytes: None,
    };
    let usage = Usage::from_keys(&problem.cluster, [("other/b1", u), ("default/a2", u)]).unwrap();
    let ids: Vec<PodId> = problem.cluster.bound_pods().map(|(id, _, _)| id).collect();
    assert_eq!(usage.get(ids[1]), Some(&u));
    assert_eq!(usage.get(ids[2]), Some(&u));
    assert_eq!(usage.defaulted(), 1);
    let e = Usage::from_keys(&problem.cluster, [("default/b1", u)]).unwrap_err();
    assert!(e.to_string().contains("default/b1"), "{e}");
}

#[test]
fn bad_usage_files_name_file_and_line() {
    let problem = usage_problem();
    let cases = [
        ("pod,cpu\nnobody,1\n", "u.csv:2:", "unknown pod"),
        ("pod,cpu\na1,1\na2,lots\n", "u.csv:3:", "field cpu"),
        ("pod,cpu\na1,-1\n", "u.csv:2:", "field cpu"),
        ("pod,cpu,memory\na1,1,12XB\n", "u.csv:2:", "field memory"),
        ("name,cpu\na1,1\n", "u.csv:1:", "header"),
        ("pod,cpu\na1,1\ndefault/a1,2\n", "u.csv:3:", "repeated"),
        ("pod,cpu\na1,1,5\n", "u.csv:2:", "malformed"),
    ];
    for (text, at, what) in cases {
        let e = parse_usage(text, "u.csv", &problem.cluster)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(at) && e.contains(what), "{text:?}: {e}");
    }
    let missing = plimsoll::balance::read_usage_file(
        std::path::Path::new("/nonexistent/u.csv"),
        &problem.cluster,
    )
    .unwrap_err()
    .to_string();
    assert!(missing.contains("/nonexistent/u.csv"), "{missing}");
}

#[test]
fn bad_options_are_rejected() {
    let problem = usage_problem();
    let u = Usage::default();
    for o in [
        opts(0.0),
        opts(1.5),
        BalanceOptions {
            low: Some(0.9),
            ..opts(0.8)
        },
        BalanceOptions {
            time_limit_seconds: 0.0,
            ..opts(0.8)
        },
    ] {
        assert!(balance(&problem, &u, &o).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn every_plan_is_valid_and_never_worse(
        reqs in proptest::collection::vec((1u64..=12, 0usize..4, 0i32..3, 1u64..=20), 1..9),
        high in 0.5f64..0.95,
    ) {
        let nodes = vec![node("n0", 4000), node("n1", 4000), node("n2", 3000), node("n3", 2000)];
        let mut cap = [4000u64, 4000, 3000, 2000];
        let mut pods = Vec::new();
        let mut cpu = Vec::new();
        for (k, &(r, n, prio, u)) in reqs.iter().enumerate() {
            let req = r * 100;
            // Bind where it fits by request, else skip.
            let Some(n) = (0..4).map(|d| (n + d) % 4).find(|&m| cap[m] >= req) else { continue };
            cap[n] -= req;
            let name = format!("p{k}");
            pods.push(pod(&name, req, prio * 100, &format!("n{n}")));
            cpu.push((name, u * 150));
        }
        let problem = Problem::from_parts(nodes, pods).unwrap();
        let cpu: Vec<(&str, u64)> = cpu.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        let usage = usage_of(&problem, &cpu);
        let c = balance(&problem, &usage, &BalanceOptions { high, time_limit_seconds: 5.0, ..Default::default() }).unwrap();
        let before = plimsoll::balance::greedy::plan(&problem, &usage, &BalanceOptions { high, ..Default::default() }).unwrap();
        for plan in [&c.milp, &c.greedy] {
            prop_assert!(validate_moves(&problem, &plan.moves).is_ok());
            // Requests never exceed allocatable on any node.
            let mut used = [0u64; 4];
            let target: std::collections::BTreeMap<_, _> = plan.moves.iter().map(|m| (m.pod_id, m.to_node)).collect();
            for (id, p, b) in problem.cluster.bound_pods() {
                used[*target.get(&id).unwrap_or(&b.node)] += p.requests.cpu_milli;
            }
            for (n, nd) in problem.cluster.nodes() {
                prop_assert!(used[n] <= nd.allocatable.cpu_milli);
            }
        }
        prop_assert!(c.milp.excess <= c.greedy.excess + 1e-9);
        prop_assert!(c.milp.excess <= before.excess + 1e-9);
        // Excess before any move (the limit is high × allocatable rounded down).
        let initial: f64 = c
            .milp
            .before
            .iter()
            .zip(problem.cluster.nodes().map(|(_, nd)| nd))
            .map(|(n, nd)| {
                let cap = nd.allocatable.cpu_milli as f64;
                let lim = (high * cap + 1e-6).floor();
                ((n.cpu * cap).round() - lim).max(0.0) / cap
            })
            .sum();
        prop_assert!(c.milp.excess <= initial + 1e-9, "{} > {initial}", c.milp.excess);
    }
}

const CLI_MANIFESTS: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: hot}
status: {allocatable: {cpu: "8", memory: 32Gi, pods: "110"}}
---
apiVersion: v1
kind: Node
metadata: {name: cool}
status: {allocatable: {cpu: "8", memory: 32Gi, pods: "110"}}
---
apiVersion: v1
kind: Pod
metadata: {name: big, namespace: default}
spec:
  nodeName: hot
  priority: 1000
  containers:
  - {name: c, image: x, resources: {requests: {cpu: "3", memory: 1Gi}}}
"#;

fn cli_small_pods() -> String {
    (0..6)
        .map(|k| {
            format!(
                "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: small{k}, namespace: default}}\nspec:\n  nodeName: hot\n  containers:\n  - {{name: c, image: x, resources: {{requests: {{cpu: 400m, memory: 256Mi}}}}}}\n"
            )
        })
        .collect()
}

#[test]
fn cli_prints_moves_utilisation_and_baseline_count() {
    let dir = std::env::temp_dir().join(format!("plimsoll-balance-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let manifests = dir.join("cluster.yaml");
    std::fs::write(&manifests, format!("{CLI_MANIFESTS}{}", cli_small_pods())).unwrap();
    let usage = dir.join("usage.csv");
    let mut csv = String::from("pod,cpu\ndefault/big,4\n");
    for k in 0..6 {
        csv.push_str(&format!("small{k},500m\n"));
    }
    std::fs::write(&usage, csv).unwrap();
    let run = |extra: &[&str], usage: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_plimsoll"))
            .args(["balance", "-f"])
            .arg(&manifests)
            .arg("--usage")
            .arg(usage)
            .args(extra)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let o = run(&["--high", "0.6", "--output", "json"], &usage);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["moves"],
        serde_json::json!([{"pod": "default/big", "from": "hot", "to": "cool"}])
    );
    assert_eq!(v["greedy"]["moves"], 5);
    assert_eq!(v["milp"]["moves"], 1);
    assert_eq!(v["targets_met"], true);
    assert_eq!(v["nodes"][0]["node"], "hot");
    assert!((v["nodes"][0]["cpu_before"].as_f64().unwrap() - 0.875).abs() < 1e-9);
    assert!((v["nodes"][0]["cpu_after"].as_f64().unwrap() - 0.375).abs() < 1e-9);
    let table = run(&["--high", "0.6"], &usage);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("default/big") && text.contains("greedy baseline: 5 moves"),
        "{text}"
    );
    // Infeasible thresholds: a warning on stderr, exit 0.
    let o = run(&["--high", "0.1"], &usage);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot all be met"));
    // A bad usage file: exit 2, file and line named.
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "pod,cpu\nbig,1\nghost,2\n").unwrap();
    let o = run(&[], &bad);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.csv:3:") && err.contains("unknown pod"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
