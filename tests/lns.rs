//! The MILP's large-neighbourhood search through the public API: on small synthetic
//! clusters (GPU shares and whole GPUs, anti-affinity, spread, gangs, bound pods) the
//! MILP with the search is valid and never lexicographically worse than any online
//! policy (priority weight placed, then newly used nodes), with one thread and with two;
//! and on a bin-packing instance where the greedy policies waste nodes it reaches the
//! optimum. (The search's own tests — never worse than its start, brute-force optimum on
//! tiny clusters — are unit tests in `src/place/milp/lns.rs`.)

use plimsoll::datasets::synthetic::{self, SyntheticConfig};
use plimsoll::model::{Binding, Node, Pod, Problem};
use plimsoll::place::milp::{weighted_placed, MilpOptions, MilpPlacer, Objective};
use plimsoll::place::online::{OnlineKind, OnlinePolicy};
use plimsoll::place::validate::validate;
use plimsoll::place::Placer;
use std::collections::BTreeSet;

const GI: u64 = 1 << 30;

/// Nodes empty before placement that receive pods (the `pack` goal).
fn new_nodes(problem: &Problem, placement: &[Option<Binding>]) -> usize {
    placement
        .iter()
        .flatten()
        .map(|b| b.node)
        .filter(|&n| problem.cluster.pods_on(n).is_empty())
        .collect::<BTreeSet<_>>()
        .len()
}

/// (weight, new nodes) of `a` is not lexicographically worse than of `b`.
fn not_worse(problem: &Problem, a: &[Option<Binding>], b: &[Option<Binding>]) -> bool {
    let (wa, wb) = (weighted_placed(problem, a), weighted_placed(problem, b));
    wa > wb + 1e-9 || (wa > wb - 1e-9 && new_nodes(problem, a) <= new_nodes(problem, b))
}

fn milp(seconds: f64, threads: u32) -> MilpPlacer {
    MilpPlacer::new(MilpOptions {
        objective: Objective::Pack,
        time_limit_seconds: seconds,
        threads,
        seed: 5,
        ..MilpOptions::default()
    })
    .unwrap()
}

#[test]
fn the_search_is_valid_and_never_worse_than_an_online_policy() {
    for seed in 0..4u64 {
        let cfg = SyntheticConfig {
            nodes: 30 + 10 * seed as usize,
            seed,
            cpu_demand: 0.5 + 0.15 * seed as f64,
            gpu_demand: 0.9,
            anti_affinity_fraction: 0.3,
            ..SyntheticConfig::default()
        };
        let problem = synthetic::problem(&cfg).unwrap();
        for threads in [1, 2] {
            let out = milp(1.5, threads).place(&problem).unwrap();
            validate(&problem, &out.placement)
                .unwrap_or_else(|v| panic!("seed {seed}, {threads} threads: {v:?}"));
            for kind in OnlineKind::ALL {
                let online = OnlinePolicy::new(kind, 5).place(&problem).unwrap();
                assert!(
                    not_worse(&problem, &out.placement, &online.placement),
                    "seed {seed}, {threads} threads: milp ({}, {} nodes) worse than {} ({}, {})",
                    weighted_placed(&problem, &out.placement),
                    new_nodes(&problem, &out.placement),
                    kind.name(),
                    weighted_placed(&problem, &online.placement),
                    new_nodes(&problem, &online.placement),
                );
            }
        }
    }
}

#[test]
fn the_search_reaches_the_optimum_where_greedy_packing_wastes_nodes() {
    // 30 nodes of 10 CPUs; pods of 6, 4, 4, 3, 3 CPUs per group (20 CPUs, two nodes:
    // {6, 4} and {4, 3, 3}), five groups: 10 nodes are optimal. Pods come in an order
    // that makes first-fit and best-fit open extra nodes ({3, 3, 4}, then 6 alone…).
    let nodes: Vec<Node> = (0..30)
        .map(|i| Node::new(&format!("n{i}"), 10_000, 64 * GI).with_max_pods(110))
        .collect();
    let mut pods = Vec::new();
    for g in 0..5 {
        for (k, cpu) in [3, 3, 4, 4, 6].iter().enumerate() {
            pods.push(Pod::new(&format!("p{g}-{k}"), cpu * 1000, GI));
        }
    }
    let problem = Problem::from_parts(nodes, pods).unwrap();
    let ff = OnlinePolicy::new(OnlineKind::FirstFit, 5)
        .place(&problem)
        .unwrap();
    let out = milp(3.0, 1).place(&problem).unwrap();
    validate(&problem, &out.placement).unwrap();
    assert!(out.placement.iter().all(Option::is_some));
    assert_eq!(
        new_nodes(&problem, &out.placement),
        10,
        "first-fit: {}",
        new_nodes(&problem, &ff.placement)
    );
}
