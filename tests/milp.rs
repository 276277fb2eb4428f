//! The MILP against a brute-force optimum on tiny random clusters, plus targeted
//! behaviour tests (gangs, device-level shares, anti-affinity, spread, priority, each
//! objective, the time-limit path, options).

use plimsoll::model::*;
use plimsoll::place::milp::{weighted_placed, MilpOptions, MilpPlacer, Objective};
use plimsoll::place::online::{OnlineKind, OnlinePolicy};
use plimsoll::place::{Outcome, Placer};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

const GI: u64 = 1 << 30;

fn node(name: &str, cpu: u64, mem_gi: u64, pods: u64, gpus: u32, model: &str) -> Node {
    Node::new(name, cpu, mem_gi * GI)
        .with_max_pods(pods)
        .with_gpus(model, gpus)
}

fn pod(name: &str, cpu: u64, mem_gi: u64, gpu: GpuAmount) -> Pod {
    Pod::new(name, cpu, mem_gi * GI).with_gpu(gpu)
}

fn milp(objective: Objective) -> MilpPlacer {
    MilpPlacer::new(MilpOptions {
        objective,
        time_limit_seconds: 10.0,
        mip_rel_gap: 0.0,
        threads: 1,
        seed: 7,
        ..Default::default()
    })
    .unwrap()
}

fn anti(app: &str, key: &str) -> PodAffinityTerm {
    PodAffinityTerm {
        selector: LabelSelector {
            match_labels: [("app".to_string(), app.to_string())].into(),
            match_expressions: vec![],
        },
        namespaces: vec![],
        topology_key: key.into(),
    }
}

// ---------- an independent checker: no Cluster, no filters ----------

/// Can these GPU requests be packed onto devices with these free milli? (brute force)
fn devices_fit(free: &mut Vec<u32>, reqs: &[GpuAmount]) -> bool {
    let Some((first, rest)) = reqs.split_first() else {
        return true;
    };
    match *first {
        GpuAmount::None => devices_fit(free, rest),
        GpuAmount::Shared(m) => {
            for d in 0..free.len() {
                if free[d] >= m {
                    free[d] -= m;
                    let ok = devices_fit(free, rest);
                    free[d] += m;
                    if ok {
                        return true;
                    }
                }
            }
            false
        }
        GpuAmount::Whole(k) => {
            // Whole devices are interchangeable among fully free ones: try subsets.
            let full: Vec<usize> = (0..free.len()).filter(|&d| free[d] == 1000).collect();
            if full.len() < k as usize {
                return false;
            }
            let n = full.len();
            for mask in 0u32..(1 << n) {
                if mask.count_ones() != k {
                    continue;
                }
                let chosen: Vec<usize> = (0..n)
                    .filter(|i| mask >> i & 1 == 1)
                    .map(|i| full[i])
                    .collect();
                for &d in &chosen {
                    free[d] = 0;
                }
                let ok = devices_fit(free, rest);
                for &d in &chosen {
                    free[d] = 1000;
                }
                if ok {
                    return true;
                }
            }
            false
        }
    }
}

fn static_ok(p: &Pod, n: &Node) -> bool {
    let tol = n.taints.iter().all(|t| {
        t.effect == TaintEffect::PreferNoSchedule
            || p.tolerations
                .iter()
                .any(|o| o.key == t.key && o.operator == TolerationOperator::Exists)
    });
    let sel = p
        .node_selector
        .iter()
        .all(|(k, v)| n.labels.get(k) == Some(v));
    let gpu = match p.gpu.amount {
        GpuAmount::None => true,
        _ => n
            .gpu_model()
            .is_some_and(|m| p.gpu.models.is_empty() || p.gpu.models.iter().any(|x| x == m)),
    };
    tol && sel && gpu
}

/// Whether assigning pending pod i to `assign[i]` (node index or None) is feasible on
/// an empty cluster of `nodes`; `devices` (if given) are checked concretely.
fn feasible(
    nodes: &[Node],
    pods: &[Pod],
    assign: &[Option<usize>],
    devices: Option<&[Vec<u32>]>,
) -> bool {
    for (i, a) in assign.iter().enumerate() {
        if let Some(n) = a {
            if !static_ok(&pods[i], &nodes[*n]) {
                return false;
            }
        }
    }
    for (ni, n) in nodes.iter().enumerate() {
        let on: Vec<usize> = (0..pods.len()).filter(|&i| assign[i] == Some(ni)).collect();
        let cpu: u64 = on.iter().map(|&i| pods[i].requests.cpu_milli).sum();
        let mem: u64 = on.iter().map(|&i| pods[i].requests.memory_bytes).sum();
        if cpu > n.allocatable.cpu_milli
            || mem > n.allocatable.memory_bytes
            || on.len() as u64 > n.allocatable.pods
        {
            return false;
        }
        let ports = on
            .iter()
            .filter(|&&i| !pods[i].host_ports.is_empty())
            .count();
        if ports > 1 {
            return false;
        }
        match devices {
            None => {
                let mut free = vec![1000u32; n.gpu_count() as usize];
                let reqs: Vec<GpuAmount> = on.iter().map(|&i| pods[i].gpu.amount).collect();
                if !devices_fit(&mut free, &reqs) {
                    return false;
                }
            }
            Some(devs) => {
                let mut used = vec![0u32; n.gpu_count() as usize];
                let mut whole = vec![false; n.gpu_count() as usize];
                for &i in &on {
                    let d = &devs[i];
                    match pods[i].gpu.amount {
                        GpuAmount::None => {
                            if !d.is_empty() {
                                return false;
                            }
                        }
                        GpuAmount::Shared(m) => {
                            if d.len() != 1 || d[0] as usize >= used.len() {
                                return false;
                            }
                            used[d[0] as usize] += m;
                        }
                        GpuAmount::Whole(k) => {
                            if d.len() != k as usize {
                                return false;
                            }
                            for &x in d {
                                if x as usize >= used.len() || whole[x as usize] {
                                    return false;
                                }
                                whole[x as usize] = true;
                                used[x as usize] += 1000;
                            }
                        }
                    }
                }
                if used.iter().any(|&u| u > 1000) {
                    return false;
                }
            }
        }
    }
    // Anti-affinity: no placed pod matched by another placed pod's term in its domain.
    for (i, a) in assign.iter().enumerate() {
        let Some(ni) = a else { continue };
        for t in &pods[i].pod_anti_affinity {
            for (j, b) in assign.iter().enumerate() {
                let Some(nj) = b else { continue };
                if i == j || !t.selector.matches(&pods[j].labels) {
                    continue;
                }
                let (di, dj) = (
                    nodes[*ni].labels.get(&t.topology_key),
                    nodes[*nj].labels.get(&t.topology_key),
                );
                if di.is_some() && di == dj {
                    return false;
                }
            }
        }
    }
    // Gangs: all-or-nothing.
    let mut gangs: BTreeMap<&str, (usize, u32)> = BTreeMap::new();
    for (i, p) in pods.iter().enumerate() {
        if let Some(g) = &p.gang {
            let e = gangs.entry(g.name.as_str()).or_insert((0, g.min_member));
            e.0 += usize::from(assign[i].is_some());
        }
    }
    gangs
        .values()
        .all(|&(placed, min)| placed == 0 || placed >= min as usize)
}

fn weight(pods: &[Pod], assign: &[Option<usize>]) -> u64 {
    let mut prios: Vec<i32> = pods.iter().map(|p| p.priority).collect();
    prios.sort();
    prios.dedup();
    pods.iter()
        .zip(assign)
        .filter(|(_, a)| a.is_some())
        .map(|(p, _)| 1 + prios.iter().position(|&x| x == p.priority).unwrap() as u64)
        .sum()
}

fn brute_force(nodes: &[Node], pods: &[Pod]) -> u64 {
    let k = nodes.len() + 1;
    let total = k.pow(pods.len() as u32);
    let mut best = 0;
    for code in 0..total {
        let mut c = code;
        let assign: Vec<Option<usize>> = (0..pods.len())
            .map(|_| {
                let v = c % k;
                c /= k;
                (v > 0).then(|| v - 1)
            })
            .collect();
        let w = weight(pods, &assign);
        if w > best && feasible(nodes, pods, &assign, None) {
            best = w;
        }
    }
    best
}

fn random_instance(seed: u64) -> (Vec<Node>, Vec<Pod>) {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let nn = r.gen_range(2..=4);
    let nodes: Vec<Node> = (0..nn)
        .map(|i| {
            let gpus = [0, 1, 2][r.gen_range(0..3)];
            let mut n = node(
                &format!("n{i}"),
                [2000, 4000][r.gen_range(0..2)],
                [4, 8][r.gen_range(0..2)],
                r.gen_range(2..=5),
                gpus,
                ["A", "B"][r.gen_range(0..2)],
            );
            n.labels.insert("zone".into(), format!("z{}", i % 2));
            if r.gen_bool(0.4) {
                n.labels.insert("disk".into(), "ssd".into());
            }
            if r.gen_bool(0.25) {
                n.taints.push(Taint {
                    key: "dedicated".into(),
                    value: String::new(),
                    effect: TaintEffect::NoSchedule,
                });
            }
            n
        })
        .collect();
    let np = r.gen_range(2..=6);
    let gang_size = if r.gen_bool(0.3) {
        r.gen_range(2..=3.min(np))
    } else {
        0
    };
    let pods: Vec<Pod> = (0..np)
        .map(|i| {
            let gpu = match r.gen_range(0..6) {
                0 => GpuAmount::Shared(300),
                1 => GpuAmount::Shared(600),
                2 => GpuAmount::Shared(700),
                3 => GpuAmount::Whole(1),
                4 => GpuAmount::Whole(2),
                _ => GpuAmount::None,
            };
            let mut p = pod(
                &format!("p{i}"),
                [500, 1000, 1500, 2500][r.gen_range(0..4)],
                r.gen_range(1..=3),
                gpu,
            );
            if gpu.is_some() && r.gen_bool(0.3) {
                p.gpu.models = vec!["A".into()];
            }
            let app = ["a", "b"][r.gen_range(0..2)];
            p.labels.insert("app".into(), app.into());
            if r.gen_bool(0.3) {
                p.tolerations.push(Toleration {
                    key: "dedicated".into(),
                    operator: TolerationOperator::Exists,
                    ..Default::default()
                });
            }
            if r.gen_bool(0.2) {
                p.node_selector.insert("disk".into(), "ssd".into());
            }
            if r.gen_bool(0.3) {
                let key = ["kubernetes.io/hostname", "zone"][r.gen_range(0..2)];
                p.pod_anti_affinity
                    .push(anti(["a", "b"][r.gen_range(0..2)], key));
            }
            if r.gen_bool(0.15) {
                p.host_ports.push(HostPort {
                    port: 80,
                    protocol: "TCP".into(),
                    host_ip: String::new(),
                });
            }
            p.priority = [0, 10][r.gen_range(0..2)];
            if i < gang_size {
                p.gang = Some(Gang {
                    name: "g".into(),
                    min_member: gang_size as u32,
                });
            }
            p
        })
        .collect();
    (nodes, pods)
}

fn assignment(out: &Outcome) -> (Vec<Option<usize>>, Vec<Vec<u32>>) {
    (
        out.placement
            .iter()
            .map(|b| b.as_ref().map(|b| b.node.index()))
            .collect(),
        out.placement
            .iter()
            .map(|b| {
                b.as_ref()
                    .map(|b| b.gpu_devices.clone())
                    .unwrap_or_default()
            })
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, .. ProptestConfig::default() })]

    #[test]
    fn first_goal_matches_brute_force_and_placement_is_feasible(seed in any::<u64>()) {
        let (nodes, pods) = random_instance(seed);
        let problem = Problem::from_parts(nodes.clone(), pods.clone()).unwrap();
        for objective in [Objective::Pack, Objective::Balance, Objective::Fragmentation] {
            let out = milp(objective).place(&problem).unwrap();
            let (assign, devices) = assignment(&out);
            prop_assert!(feasible(&nodes, &pods, &assign, Some(&devices)), "infeasible {:?} {:?}", assign, devices);
            prop_assert!(out.apply(&problem).is_ok());
            let best = brute_force(&nodes, &pods);
            prop_assert_eq!(weight(&pods, &assign), best, "objective {} assign {:?}", objective, assign);
            prop_assert!((weighted_placed(&problem, &out.placement) - best as f64).abs() < 1e-9);
        }
    }
}

/// HiGHS reported the greedy warm start (weight 4) as optimal although its dual bound
/// was 5; the solve is now repeated without the start in that case.
#[test]
fn highs_start_reported_optimal_regression() {
    let (nodes, pods) = random_instance(16963560788951223036);
    let problem = Problem::from_parts(nodes.clone(), pods.clone()).unwrap();
    assert_eq!(brute_force(&nodes, &pods), 5);
    let out = milp(Objective::Balance).place(&problem).unwrap();
    assert_eq!(weighted_placed(&problem, &out.placement), 5.0);
}

// ---------- targeted tests ----------

#[test]
fn gang_is_all_or_nothing() {
    let nodes = vec![node("a", 4000, 8, 10, 0, "")];
    let mut pods: Vec<Pod> = (0..3)
        .map(|i| pod(&format!("g{i}"), 1500, 1, GpuAmount::None))
        .collect();
    for p in &mut pods {
        p.gang = Some(Gang {
            name: "job".into(),
            min_member: 3,
        });
    }
    pods.push(pod("solo", 1000, 1, GpuAmount::None));
    let problem = Problem::from_parts(nodes, pods).unwrap();
    let out = milp(Objective::Pack).place(&problem).unwrap();
    assert!(
        out.placement[..3].iter().all(|b| b.is_none()),
        "{:?}",
        out.placement
    );
    assert!(out.placement[3].is_some());
    // With room for all three, the gang is placed whole.
    let mut bigger = problem.clone();
    bigger.cluster = Cluster::new(vec![node("a", 8000, 8, 10, 0, "")]).unwrap();
    let out = milp(Objective::Pack).place(&bigger).unwrap();
    assert_eq!(out.placed(), 4);
}

#[test]
fn shares_never_overfill_a_device() {
    let nodes = vec![node("a", 64000, 64, 20, 2, "T4")];
    let pods: Vec<Pod> = (0..3)
        .map(|i| pod(&format!("s{i}"), 100, 1, GpuAmount::Shared(600)))
        .collect();
    let problem = Problem::from_parts(nodes, pods).unwrap();
    let out = milp(Objective::Pack).place(&problem).unwrap();
    assert_eq!(out.placed(), 2);
    let devs: Vec<u32> = out
        .placement
        .iter()
        .flatten()
        .map(|b| b.gpu_devices[0])
        .collect();
    assert_ne!(devs[0], devs[1]);
    out.apply(&problem).unwrap();
}

#[test]
fn shares_respect_devices_already_partly_used() {
    let nodes = vec![node("a", 64000, 64, 20, 2, "T4")];
    let mut bound = pod("old", 100, 1, GpuAmount::Shared(500));
    bound.node_name = Some("a".into());
    bound.gpu_devices = vec![0];
    let mut pods = vec![bound];
    pods.push(pod("new1", 100, 1, GpuAmount::Shared(600)));
    pods.push(pod("new2", 100, 1, GpuAmount::Shared(600)));
    pods.push(pod("w", 100, 1, GpuAmount::Whole(1)));
    let problem = Problem::from_parts(nodes, pods).unwrap();
    let out = milp(Objective::Pack).place(&problem).unwrap();
    // Device 0 has 500 free: no 600 share fits there; device 1 takes one share or the
    // whole-GPU pod, never both.
    assert_eq!(out.placed(), 1, "{:?}", out.placement);
    out.apply(&problem).unwrap();
}

#[test]
fn anti_affinity_spreads_pods_over_hosts() {
    let nodes = vec![node("a", 8000, 8, 10, 0, ""), node("b", 8000, 8, 10, 0, "")];
    let pods: Vec<Pod> = (0..3)
        .map(|i| {
            let mut p = pod(&format!("w{i}"), 500, 1, GpuAmount::None);
            p.labels.insert("app".into(), "web".into());
            p.pod_anti_affinity
                .push(anti("web", "kubernetes.io/hostname"));
            p
        })
        .collect();
    let problem = Problem::from_parts(nodes, pods).unwrap();
    let out = milp(Objective::Pack).place(&problem).unwrap();
    assert_eq!(out.placed(), 2);
    let mut hosts: Vec<usize> = out
        .placement
        .iter()
        .flatten()
        .map(|b| b.node.index())
        .collect();
    hosts.sort();
    assert_eq!(hosts, vec![0, 1]);
}

#[test]
fn topology_spread_holds_for_greedy_tail_pods() {
    let mut nodes = Vec::new();
    for i in 0..4 {
        let mut n = node(&format!("n{i}"), 8000, 8, 10, 0, "");
        n.labels.insert("zone".into(), format!("z{}", i % 2));
        nodes.push(n);
    }
    let pods: Vec<Pod> = (0..5)
        .map(|i| {
            let mut p = pod(&format!("s{i}"), 500, 1, GpuAmount::None);
            p.labels.insert("app".into(), "s".into());
            p.topology_spread.push(TopologySpreadConstraint {
                max_skew: 1,
                topology_key: "zone".into(),
                when_unsatisfiable: WhenUnsatisfiable::DoNotSchedule,
                selector: LabelSelector {
                    match_labels: [("app".to_string(), "s".to_string())].into(),
                    match_expressions: vec![],
                },
            });
            p
        })
        .collect();
    let problem = Problem::from_parts(nodes, pods).unwrap();
    let out = milp(Objective::Pack).place(&problem).unwrap();
    assert_eq!(out.placed(), 5);
    let z0 = out
        .placement
        .iter()
        .flatten()
        .filter(|b| b.node.index() % 2 == 0)
        .count() as i64;
    assert!((z0 - (5 - z0)).abs() <= 1, "zone counts {z0} vs {}", 5 - z0);
}

#[test]
fn higher_priority_wins_the_last_slot() {
    let nodes = vec![node("a", 1000, 8, 10, 0, "")];
    let low = pod("low", 1000, 1, GpuAmount::None);
    let mut high = pod("high", 1000, 1, GpuAmount::None);
    high.priority = 100;
    let problem = Problem::from_parts(nodes, vec![low, high]).unwrap();
    let out = milp(Objective::Pack).place(&problem).unwrap();
    assert!(out.placement[0].is_none());
    assert!(out.placement[1].is_some());
}

fn four_nodes() -> Vec<Node> {
    (0..4)
        .map(|i| node(&format!("n{i}"), 4000, 8, 10, 0, ""))
        .collect()
}

fn nodes_in_use(out: &Outcome) -> usize {
    let mut n: Vec<NodeId> = out.placement.iter().flatten().map(|b| b.node).collect();
    n.sort();
    n.dedup();
    n.len()
}

#[test]
fn pack_uses_fewer_nodes_than_least_allocated() {
    let pods: Vec<Pod> = (0..4)
        .map(|i| pod(&format!("p{i}"), 900, 1, GpuAmount::None))
        .collect();
    let problem = Problem::from_parts(four_nodes(), pods).unwrap();
    let packed = milp(Objective::Pack).place(&problem).unwrap();
    let spread = OnlinePolicy::new(OnlineKind::LeastAllocated, 1)
        .place(&problem)
        .unwrap();
    assert_eq!(packed.placed(), 4);
    assert_eq!(nodes_in_use(&packed), 1);
    assert!(nodes_in_use(&spread) > 1);
    assert_eq!(packed.stats.objective, Some(1.0));
}

fn max_cpu_util(problem: &Problem, out: &Outcome) -> f64 {
    let c = out.apply(problem).unwrap();
    c.nodes()
        .map(|(n, node)| c.used(n).cpu_milli as f64 / node.allocatable.cpu_milli as f64)
        .fold(0.0, f64::max)
}

#[test]
fn balance_lowers_the_maximum_utilisation() {
    let pods: Vec<Pod> = (0..4)
        .map(|i| pod(&format!("p{i}"), 900, 1, GpuAmount::None))
        .collect();
    let problem = Problem::from_parts(four_nodes(), pods).unwrap();
    let balanced = milp(Objective::Balance).place(&problem).unwrap();
    let packed = milp(Objective::Pack).place(&problem).unwrap();
    assert_eq!(balanced.placed(), 4);
    let (b, p) = (
        max_cpu_util(&problem, &balanced),
        max_cpu_util(&problem, &packed),
    );
    assert!(b < p, "balance {b} pack {p}");
    assert!((b - 900.0 / 4000.0).abs() < 1e-9);
}

#[test]
fn fragmentation_fills_the_partly_used_device() {
    let nodes = vec![node("a", 64000, 64, 20, 2, "T4")];
    let mut bound = pod("old", 100, 1, GpuAmount::Shared(400));
    bound.node_name = Some("a".into());
    bound.gpu_devices = vec![1];
    let problem = Problem::from_parts(
        nodes,
        vec![bound, pod("new", 100, 1, GpuAmount::Shared(600))],
    )
    .unwrap();
    let out = milp(Objective::Fragmentation).place(&problem).unwrap();
    assert_eq!(out.placement[0].as_ref().unwrap().gpu_devices, vec![1]);
    assert_eq!(out.stats.objective, Some(0.0));
}

fn synthetic(seed: u64, nodes: usize, pods: usize) -> Problem {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let ns: Vec<Node> = (0..nodes)
        .map(|i| {
            node(
                &format!("n{i}"),
                [16000, 32000][i % 2],
                64,
                110,
                [0, 4, 8][i % 3],
                "V100",
            )
        })
        .collect();
    let ps: Vec<Pod> = (0..pods)
        .map(|i| {
            let gpu = match r.gen_range(0..4) {
                0 => GpuAmount::Shared(r.gen_range(1..10) * 100),
                1 => GpuAmount::Whole(r.gen_range(1..3)),
                _ => GpuAmount::None,
            };
            pod(
                &format!("p{i}"),
                r.gen_range(1..16) * 500,
                r.gen_range(1..8),
                gpu,
            )
        })
        .collect();
    Problem::from_parts(ns, ps).unwrap()
}

#[test]
fn tiny_time_limit_still_returns_a_valid_placement_not_worse_than_greedy() {
    let problem = synthetic(3, 60, 300);
    let placer = MilpPlacer::new(MilpOptions {
        time_limit_seconds: 0.01,
        ..MilpOptions::default()
    })
    .unwrap();
    let out = placer.place(&problem).unwrap();
    out.apply(&problem).unwrap();
    let greedy = OnlinePolicy::new(OnlineKind::BestFit, 42)
        .place(&problem)
        .unwrap();
    assert!(
        weighted_placed(&problem, &out.placement) >= weighted_placed(&problem, &greedy.placement)
    );
    assert!(
        out.stats.fell_back || out.stats.gap.is_some(),
        "{:?}",
        out.stats
    );
}

#[test]
fn options_are_validated_and_objectives_parse() {
    let bad = |f: fn(&mut MilpOptions)| {
        let mut o = MilpOptions::default();
        f(&mut o);
        MilpPlacer::new(o).is_err()
    };
    assert!(bad(|o| o.time_limit_seconds = 0.0));
    assert!(bad(|o| o.time_limit_seconds = f64::INFINITY));
    assert!(bad(|o| o.time_limit_seconds = f64::NAN));
    assert!(bad(|o| o.mip_rel_gap = 1.0));
    assert!(bad(|o| o.mip_rel_gap = -0.1));
    assert!(!bad(|_| {}));
    for o in [
        Objective::Pack,
        Objective::Balance,
        Objective::Fragmentation,
    ] {
        assert_eq!(o.to_string().parse::<Objective>().unwrap(), o);
    }
    assert!("densest".parse::<Objective>().is_err());
    assert_eq!(milp(Objective::Pack).name(), "milp");
}

// ---------- openb figures (ignored: ~10 s per size; run on demand) ----------

fn openb_problem(pods: usize) -> Option<Problem> {
    let dir = plimsoll::datasets::data_dir()?;
    let nodes =
        plimsoll::datasets::openb::load_nodes(dir.join("openb/openb_node_list_all_node.csv"))
            .ok()?;
    let mut pending =
        plimsoll::datasets::openb::load_pods(dir.join("openb/openb_pod_list_default.csv")).ok()?;
    pending.truncate(pods);
    Some(Problem::from_parts(nodes, pending).unwrap())
}

/// Prints nodes used, bound, gap, time and fallback of the MILP (pack) and best-fit's
/// node count for the first N openb pods, N from `PLIMSOLL_OPENB_PODS` (default
/// `200,1000,2000`). `cargo test --release --test milp openb_figures -- --ignored --nocapture`
#[test]
#[ignore]
fn openb_figures() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let sizes: Vec<usize> = std::env::var("PLIMSOLL_OPENB_PODS")
        .unwrap_or_else(|_| "200,1000,2000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    for n in sizes {
        let Some(problem) = openb_problem(n) else {
            eprintln!("openb data not found (set PLIMSOLL_DATA); skipping");
            return;
        };
        let placer = MilpPlacer::new(MilpOptions {
            objective: Objective::Pack,
            time_limit_seconds: 10.0,
            mip_rel_gap: 0.01,
            threads: 1,
            seed: 42,
            ..Default::default()
        })
        .unwrap();
        let out = placer.place(&problem).unwrap();
        plimsoll::place::validate::validate(&problem, &out.placement).unwrap();
        let bf = OnlinePolicy::new(OnlineKind::BestFit, 42)
            .place(&problem)
            .unwrap();
        eprintln!(
            "openb {n} pods: best-fit {} nodes ({} placed); milp {} nodes ({} placed) in {:.2}s, objective {:?}, bound {:?}, gap {:?}, fell_back {}",
            nodes_in_use(&bf),
            bf.placed(),
            nodes_in_use(&out),
            out.placed(),
            out.stats.solve_seconds,
            out.stats.objective,
            out.stats.bound,
            out.stats.gap,
            out.stats.fell_back
        );
    }
}

// ---------- the aggregated path and the greedy floor ----------

/// Nodes empty before placement that receive pods (no pods are bound in these tests).
fn new_nodes(out: &Outcome) -> f64 {
    nodes_in_use(out) as f64
}

/// 700 identical nodes (8 cores, 4 GPUs): 40 one-GPU pods of 2 cores fill 10 nodes,
/// 24 half-GPU pods of 1 core fill 3 (two per device), 16 CPU pods of 4 cores fill 8.
/// The CPU volume is exactly 21 nodes, so 21 is optimal and provable; 3 classes x 700
/// nodes takes the aggregated path.
#[test]
fn aggregated_pack_reaches_the_known_optimum_on_identical_nodes() {
    let nodes: Vec<Node> = (0..700)
        .map(|i| node(&format!("n{i}"), 8000, 64, 110, 4, "V100"))
        .collect();
    let mut pods = Vec::new();
    for i in 0..40 {
        pods.push(pod(&format!("w{i}"), 2000, 4, GpuAmount::Whole(1)));
    }
    for i in 0..24 {
        pods.push(pod(&format!("s{i}"), 1000, 2, GpuAmount::Shared(500)));
    }
    for i in 0..16 {
        pods.push(pod(&format!("c{i}"), 4000, 4, GpuAmount::None));
    }
    let problem = Problem::from_parts(nodes, pods).unwrap();
    let out = milp(Objective::Pack).place(&problem).unwrap();
    plimsoll::place::validate::validate(&problem, &out.placement).unwrap();
    assert_eq!(out.placed(), 80);
    assert_eq!(nodes_in_use(&out), 21, "{:?}", out.stats);
    assert!(!out.stats.fell_back, "{:?}", out.stats);
    assert_eq!(out.stats.bound, Some(21.0), "{:?}", out.stats);
    assert_eq!(out.stats.gap, Some(0.0), "{:?}", out.stats);
}

/// The balance goal: the largest CPU, memory or GPU utilisation over the nodes.
fn max_util(problem: &Problem, out: &Outcome) -> f64 {
    let c = out.apply(problem).unwrap();
    let r = |x: u64, y: u64| if y == 0 { 0.0 } else { x as f64 / y as f64 };
    c.nodes()
        .map(|(n, node)| {
            let a = &node.allocatable;
            let u = c.used(n);
            let g = u64::from(node.gpu_count()) * 1000;
            r(u.cpu_milli, a.cpu_milli)
                .max(r(u.memory_bytes, a.memory_bytes))
                .max(r(g - c.gpu_free_total(n), g))
        })
        .fold(0.0, f64::max)
}

/// A gang on the aggregated path stays all-or-nothing and packs: 600 nodes of 4 cores;
/// 4 pods each of 1, 2 and 3 cores plus a gang of three 3-core pods (min 3). Each 3-core
/// pod needs its own node (4 of them share it with a 1-core pod), the 2-core pods fill 2
/// more: 9 nodes, which is also the CPU volume bound.
#[test]
fn aggregated_pack_keeps_gangs_whole() {
    let nodes: Vec<Node> = (0..600)
        .map(|i| node(&format!("n{i}"), 4000, 16, 110, 0, ""))
        .collect();
    let mut pods: Vec<Pod> = (0..12)
        .map(|i| pod(&format!("p{i}"), 1000 * (1 + i % 3), 1, GpuAmount::None))
        .collect();
    for i in 0..3 {
        let mut p = pod(&format!("g{i}"), 3000, 1, GpuAmount::None);
        p.gang = Some(Gang {
            name: "job".into(),
            min_member: 3,
        });
        pods.push(p);
    }
    let problem = Problem::from_parts(nodes, pods).unwrap();
    let out = milp(Objective::Pack).place(&problem).unwrap();
    plimsoll::place::validate::validate(&problem, &out.placement).unwrap();
    assert_eq!(out.placed(), 15);
    assert_eq!(nodes_in_use(&out), 9, "{:?}", out.stats);
    assert_eq!(out.stats.gap, Some(0.0), "{:?}", out.stats);
}

/// `out` passes the validator and is lexicographically no worse than any online policy
/// (priority weight, then new nodes for `pack` or the largest utilisation for `balance`).
fn assert_valid_and_not_worse_than_greedy(
    problem: &Problem,
    out: &Outcome,
    seed: u64,
    objective: Objective,
) {
    plimsoll::place::validate::validate(problem, &out.placement).unwrap();
    let w = weighted_placed(problem, &out.placement);
    for kind in OnlineKind::ALL {
        let g = OnlinePolicy::new(kind, seed).place(problem).unwrap();
        let gw = weighted_placed(problem, &g.placement);
        assert!(
            w >= gw,
            "seed {seed} {objective}: {w} < {} {gw}",
            kind.name()
        );
        if w == gw && objective == Objective::Pack {
            assert!(
                new_nodes(out) <= new_nodes(&g),
                "seed {seed}: milp {} nodes, {} {}",
                new_nodes(out),
                kind.name(),
                new_nodes(&g)
            );
        }
        if w == gw && objective == Objective::Balance {
            let (m, gm) = (max_util(problem, out), max_util(problem, &g));
            assert!(
                m <= gm + 1e-9,
                "seed {seed}: milp max util {m}, {} {gm}",
                kind.name()
            );
        }
    }
}

/// On random clusters (small ones on the exact path, larger ones on the aggregated
/// path) the MILP is never lexicographically worse than any online policy.
#[test]
fn milp_is_never_worse_than_any_greedy_policy() {
    for (seed, nodes, pods) in [(1u64, 12, 40), (2, 20, 60), (3, 90, 220), (4, 120, 300)] {
        let problem = synthetic(seed, nodes, pods);
        for objective in [Objective::Pack, Objective::Balance] {
            let placer = MilpPlacer::new(MilpOptions {
                objective,
                time_limit_seconds: 2.0,
                mip_rel_gap: 0.01,
                threads: 1,
                seed,
                ..Default::default()
            })
            .unwrap();
            let out = placer.place(&problem).unwrap();
            assert_valid_and_not_worse_than_greedy(&problem, &out, seed, objective);
        }
    }
}

/// The restricted path (candidate nodes per class, forced with `restrict_above_pairs: 0`)
/// on generated clusters with anti-affinity, spread, GPU models and gangs: every placement
/// passes the validator and is never worse than the online policy the MILP compares with
/// (all of them run here: the instances are small). With tight candidate lists the
/// program still holds the greedy warm start, so it can only improve on it.
#[test]
fn restricted_program_is_valid_and_never_worse_than_greedy() {
    use plimsoll::datasets::synthetic::{problem as generate, SyntheticConfig};
    for (seed, nodes) in [(11u64, 60usize), (12, 150)] {
        let problem = generate(&SyntheticConfig {
            nodes,
            seed,
            ..Default::default()
        })
        .unwrap();
        for objective in [
            Objective::Pack,
            Objective::Balance,
            Objective::Fragmentation,
        ] {
            let placer = MilpPlacer::new(MilpOptions {
                objective,
                time_limit_seconds: 2.0,
                restrict_above_pairs: 0,
                seed,
                ..Default::default()
            })
            .unwrap();
            let out = placer.place(&problem).unwrap();
            assert_valid_and_not_worse_than_greedy(&problem, &out, seed, objective);
        }
    }
}
