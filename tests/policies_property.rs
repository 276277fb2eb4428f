//! Every policy returns placements that pass the independent validator on random
//! instances (GPUs, taints, affinity, anti-affinity, spread, ports and gangs included),
//! and the validator itself agrees with a brute-force feasibility oracle when valid
//! outputs are mutated.

mod common;

use common::*;
use plimsoll::model::gpu::choose_devices;
use plimsoll::model::{Binding, Cluster, GpuAmount, NodeId, Problem};
use plimsoll::place::explain::explain;
use plimsoll::place::filter::check_static;
use plimsoll::place::validate::{validate, ViolationKind};
use plimsoll::place::{policy_by_name, PolicyOptions, POLICY_NAMES};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ONLINE_SEEDS: u64 = 500;
#[cfg(feature = "milp")]
const MILP_INSTANCES: u64 = 200;

fn online_names() -> impl Iterator<Item = &'static str> {
    POLICY_NAMES.iter().copied().filter(|n| *n != "milp")
}

fn place(name: &str, problem: &Problem, opts: &PolicyOptions) -> Vec<Option<Binding>> {
    let policy = policy_by_name(name, opts).expect("known policy");
    let outcome = policy
        .place(problem)
        .unwrap_or_else(|e| panic!("{name} failed: {e}"));
    assert_eq!(outcome.placement.len(), problem.pending.len(), "{name}");
    outcome.placement
}

fn assert_valid(name: &str, seed: u64, problem: &Problem, placement: &[Option<Binding>]) {
    if let Err(v) = validate(problem, placement) {
        let lines: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        panic!("{name} on seed {seed} is invalid:\n{}", lines.join("\n"));
    }
}

#[test]
fn every_online_policy_passes_validate_on_random_instances() {
    let opts = PolicyOptions::default();
    let mut placed = 0usize;
    let mut pending = 0usize;
    let mut instances = 0usize;
    for name in online_names() {
        for seed in 0..ONLINE_SEEDS {
            let size = match seed % 10 {
                9 => LARGE,
                s if s % 2 == 0 => SMALL,
                _ => MEDIUM,
            };
            let problem = random_problem(seed, size);
            let placement = place(name, &problem, &opts);
            assert_valid(name, seed, &problem, &placement);
            placed += placement.iter().filter(|b| b.is_some()).count();
            pending += problem.pending.len();
            instances += 1;
        }
    }
    assert!(instances >= 2000, "{instances} instances");
    // Not a vacuous pass: a good share of the pods is placed.
    eprintln!("online policies placed {placed} of {pending} pending pods in {instances} instances");
    assert!(
        placed * 100 > pending * 35,
        "only {placed} of {pending} placed"
    );
}

#[cfg(feature = "milp")]
#[test]
fn milp_passes_validate_on_small_random_instances() {
    let opts = PolicyOptions {
        time_limit_seconds: 1.0,
        ..Default::default()
    };
    let milp = policy_by_name("milp", &opts).expect("milp");
    let (mut solved, mut placed, mut pending) = (0, 0, 0);
    for seed in 0..MILP_INSTANCES {
        let size = if seed % 2 == 0 { SMALL } else { MEDIUM };
        let problem = random_problem(10_000 + seed, size);
        let outcome = milp
            .place(&problem)
            .unwrap_or_else(|e| panic!("milp failed: {e}"));
        assert_valid("milp", seed, &problem, &outcome.placement);
        // The greedy fallback is validated above too, but the MILP's own answer must be
        // what is tested most of the time.
        solved += usize::from(!outcome.stats.fell_back);
        placed += outcome.placed();
        pending += problem.pending.len();
    }
    eprintln!("milp: {solved} of {MILP_INSTANCES} instances solved without fallback, {placed} of {pending} pods placed");
    assert!(
        solved as u64 * 2 > MILP_INSTANCES,
        "milp fell back on {} instances",
        MILP_INSTANCES - solved as u64
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn kube_default_passes_validate(problem in problems(MEDIUM)) {
        let placement = place("kube-default", &problem, &PolicyOptions::default());
        let verdict = validate(&problem, &placement);
        prop_assert!(verdict.is_ok(), "{:?}", verdict);
    }
}

/// Brute-force oracle for one pod on one node, using the policies' machinery rather
/// than the validator: the cluster with every other placed pod bound, the static checks
/// (cordon, taints, node affinity, GPU model) and `Cluster::bind` (resources, pods,
/// host ports, devices). Returns the devices to use if feasible.
fn oracle(
    problem: &Problem,
    placement: &[Option<Binding>],
    i: usize,
    node: NodeId,
) -> Option<Vec<u32>> {
    let mut cluster: Cluster = problem.cluster.clone();
    for (j, (p, b)) in problem.pending.iter().zip(placement).enumerate() {
        if let (true, Some(b)) = (j != i, b) {
            cluster
                .bind(p.clone(), b.node, Some(b.gpu_devices.clone()))
                .expect("valid placement applies");
        }
    }
    let pod = &problem.pending[i];
    check_static(pod, &cluster[node]).ok()?;
    let devices = choose_devices(cluster.gpu_free(node), pod.gpu.amount)?;
    cluster
        .bind(pod.clone(), node, Some(devices.clone()))
        .ok()?;
    Some(devices)
}

/// Devices for an infeasible move: whatever a careless policy might pick.
fn any_devices(amount: GpuAmount) -> Vec<u32> {
    match amount {
        GpuAmount::None => vec![],
        GpuAmount::Shared(_) => vec![0],
        GpuAmount::Whole(n) => (0..n).collect(),
    }
}

fn is_inter_pod(kind: &ViolationKind) -> bool {
    matches!(
        kind,
        ViolationKind::PodAffinity { .. }
            | ViolationKind::PodAntiAffinity { .. }
            | ViolationKind::ExistingPodAntiAffinity { .. }
            | ViolationKind::TopologySpread { .. }
            | ViolationKind::MissingTopologyLabel { .. }
    )
}

/// Returns (feasible moves, infeasible moves, moves only inter-pod rules rejected).
fn mutate_and_compare(with_inter_pod: bool) -> (usize, usize, usize) {
    let opts = PolicyOptions::default();
    let (mut agree_ok, mut agree_bad, mut inter_pod_only) = (0, 0, 0);
    for seed in 0..400u64 {
        let problem = if with_inter_pod {
            random_problem(50_000 + seed, MEDIUM)
        } else {
            random_problem_without_inter_pod(50_000 + seed, MEDIUM)
        };
        let name = online_names().nth(seed as usize % 10).unwrap();
        let mut placement = place(name, &problem, &opts);
        assert_valid(name, seed, &problem, &placement);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let nodes = problem.cluster.node_count();
        for _ in 0..5 {
            // Move a placed pod, or place a pending one that is not in a gang.
            let candidates: Vec<usize> = (0..placement.len())
                .filter(|&i| placement[i].is_some() || problem.pending[i].gang.is_none())
                .collect();
            if candidates.is_empty() || nodes < 2 {
                break;
            }
            let i = candidates[rng.gen_range(0..candidates.len())];
            let from = placement[i].as_ref().map(|b| b.node);
            let to = loop {
                let n = NodeId::from_index(rng.gen_range(0..nodes));
                if Some(n) != from {
                    break n;
                }
            };
            let feasible = oracle(&problem, &placement, i, to);
            let mut mutated = placement.clone();
            mutated[i] = Some(Binding {
                node: to,
                gpu_devices: feasible
                    .clone()
                    .unwrap_or_else(|| any_devices(problem.pending[i].gpu.amount)),
            });
            let verdict = validate(&problem, &mutated);
            match (&feasible, &verdict) {
                (None, Err(v)) => {
                    // Per-node rules can only break for the moved pod or on its new node;
                    // inter-pod rules may also break for its new neighbours.
                    assert!(
                        v.iter().all(|x| is_inter_pod(&x.kind)
                            || x.pending_index == Some(i)
                            || x.node == Some(to)),
                        "violations must concern the moved pod or its new node: {v:?}"
                    );
                    agree_bad += 1;
                }
                (None, Ok(())) => {
                    panic!("seed {seed}: oracle rejects pod {i} on node {to} but validate accepts")
                }
                (Some(_), Ok(())) => {
                    agree_ok += 1;
                    // Keep walking from the new valid placement.
                    placement = mutated;
                }
                (Some(_), Err(v)) if !with_inter_pod => panic!(
                    "seed {seed}: oracle accepts pod {i} on node {to} but validate rejects: {v:?}"
                ),
                (Some(_), Err(v)) => {
                    // Only inter-pod rules may reject what the per-node oracle accepts.
                    assert!(v.iter().all(|x| is_inter_pod(&x.kind)), "{v:?}");
                    inter_pod_only += 1;
                }
            }
        }
    }
    eprintln!(
        "inter-pod {with_inter_pod}: {agree_ok} feasible and {agree_bad} infeasible moves agreed, \
         {inter_pod_only} rejected by inter-pod rules only"
    );
    (agree_ok, agree_bad, inter_pod_only)
}

#[test]
fn validate_agrees_with_brute_force_oracle_on_mutated_placements() {
    let (ok, bad, _) = mutate_and_compare(false);
    // Both verdicts must actually occur, or the comparison proves nothing.
    assert!(
        ok >= 100 && bad >= 100,
        "feasible moves {ok}, infeasible moves {bad}"
    );
}

#[test]
fn validate_rejects_what_the_oracle_rejects_with_inter_pod_constraints() {
    let (ok, bad, inter) = mutate_and_compare(true);
    assert!(
        ok >= 50 && bad >= 100,
        "feasible moves {ok}, infeasible moves {bad}"
    );
    assert!(inter >= 20, "inter-pod rules rejected only {inter} moves");
}

#[test]
fn dropping_a_gang_member_below_min_member_is_caught() {
    let opts = PolicyOptions::default();
    let mut caught = 0;
    for seed in 0..300u64 {
        let problem = random_problem_without_inter_pod(90_000 + seed, MEDIUM);
        let placement = place("first-fit", &problem, &opts);
        for (i, p) in problem.pending.iter().enumerate() {
            let Some(g) = &p.gang else { continue };
            if placement[i].is_none() {
                continue;
            }
            let placed = problem
                .pending
                .iter()
                .zip(&placement)
                .filter(|(q, b)| {
                    b.is_some()
                        && q.namespace == p.namespace
                        && q.gang.as_ref().is_some_and(|h| h.name == g.name)
                })
                .count();
            let mut mutated = placement.clone();
            mutated[i] = None;
            let verdict = validate(&problem, &mutated);
            if placed - 1 < g.min_member as usize && placed > 1 {
                let v = verdict.expect_err("gang below min_member must be reported");
                assert!(v
                    .iter()
                    .any(|x| matches!(x.kind, ViolationKind::GangPartial { .. })));
                caught += 1;
            } else {
                assert!(verdict.is_ok(), "{verdict:?}");
            }
            break;
        }
    }
    assert!(caught >= 10, "only {caught} gang mutations");
}

#[test]
fn explained_feasible_nodes_are_accepted_by_validate() {
    let opts = PolicyOptions::default();
    let mut checked = 0;
    for seed in 0..300u64 {
        let problem = random_problem(70_000 + seed, MEDIUM);
        // Half the time explain a policy's output, half the time the empty placement
        // (every pod left out, each judged alone against the bound pods).
        let placement = if seed % 2 == 0 {
            place("kube-default", &problem, &opts)
        } else {
            vec![None; problem.pending.len()]
        };
        let mut cluster = problem.cluster.clone();
        for (p, b) in problem.pending.iter().zip(&placement) {
            if let Some(b) = b {
                cluster
                    .bind(p.clone(), b.node, Some(b.gpu_devices.clone()))
                    .unwrap();
            }
        }
        let n = cluster.node_count();
        for e in explain(&problem, &placement) {
            let mut covered: Vec<NodeId> = e.per_node.iter().map(|(n, _)| *n).collect();
            covered.extend(&e.feasible_nodes);
            covered.sort_unstable();
            assert_eq!(
                covered,
                (0..n).map(NodeId::from_index).collect::<Vec<_>>(),
                "every node is judged once"
            );
            assert_eq!(
                e.feasible_nodes.is_empty(),
                e.summary.starts_with("0/"),
                "{}",
                e.summary
            );
            let pod = &problem.pending[e.pending_index];
            if pod.gang.is_some() {
                continue;
            }
            for &node in e
                .feasible_nodes
                .iter()
                .take(1)
                .chain(e.feasible_nodes.last())
            {
                let devices =
                    choose_devices(cluster.gpu_free(node), pod.gpu.amount).expect("feasible");
                let mut more = placement.clone();
                more[e.pending_index] = Some(Binding {
                    node,
                    gpu_devices: devices,
                });
                if let Err(v) = validate(&problem, &more) {
                    panic!(
                        "seed {seed}: explain says {} fits on node {node}, validate says {v:?}",
                        e.pod
                    );
                }
                checked += 1;
            }
        }
    }
    eprintln!("{checked} explained-feasible nodes validated");
    assert!(checked >= 500, "only {checked} checks");
}
