//! Online policies on hand-made clusters whose right answer is known, and kube-scheduler
//! score formulas checked against numbers computed by hand.

use plimsoll::model::selector::{NodeSelectorTerm, Operator, Requirement};
use plimsoll::model::{
    Binding, Cluster, Gang, GpuAmount, LabelSelector, Node, NodeId, Pod, PreferredTerm, Problem,
    Taint, TaintEffect, TopologySpreadConstraint, WhenUnsatisfiable,
};
use plimsoll::place::online::{OnlineKind, OnlinePolicy};
use plimsoll::place::score::fgd::{TargetWorkload, TypicalPod};
use plimsoll::place::Placer;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const GIB: u64 = 1 << 30;

fn node(name: &str, cpu_milli: u64, mem_gib: u64, gpus: u32) -> Node {
    Node::new(name, cpu_milli, mem_gib * GIB)
        .without_labels()
        .with_ephemeral_storage(100 * GIB)
        .with_gpus("V100", gpus)
}

fn pod(name: &str, cpu_milli: u64, mem_gib: u64, gpu: GpuAmount) -> Pod {
    Pod::new(name, cpu_milli, mem_gib * GIB).with_gpu(gpu)
}

fn problem(nodes: Vec<Node>, pending: Vec<Pod>) -> Problem {
    Problem {
        cluster: Cluster::new(nodes).unwrap(),
        pending,
    }
}

fn policy(kind: OnlineKind) -> OnlinePolicy {
    OnlinePolicy::new(kind, 7)
}

/// Node index each pending pod went to.
fn nodes_of(kind: OnlineKind, p: &Problem) -> Vec<Option<usize>> {
    let out = policy(kind).place(p).unwrap();
    out.apply(p).expect("placement must bind cleanly");
    out.placement
        .iter()
        .map(|b| b.as_ref().map(|b| b.node.index()))
        .collect()
}

fn label(n: &mut Node, k: &str, v: &str) {
    n.labels.insert(k.into(), v.into());
}

/// Scores keyed by node slot (these clusters never remove nodes).
fn by_slot(v: Vec<(NodeId, f64)>) -> Vec<(usize, f64)> {
    v.into_iter().map(|(n, s)| (n.index(), s)).collect()
}

#[test]
fn first_fit_takes_the_lowest_index_feasible_node() {
    let p = problem(
        vec![
            node("a", 1000, 8, 0),
            node("b", 4000, 8, 0),
            node("c", 8000, 8, 0),
        ],
        vec![pod("p", 2000, 1, GpuAmount::None)],
    );
    assert_eq!(nodes_of(OnlineKind::FirstFit, &p), vec![Some(1)]);
}

#[test]
fn best_fit_picks_the_tightest_and_least_allocated_the_emptiest() {
    // Free CPU after a 2500m pod: a 5500/8000, b 500/3000, c 2500/5000 (memory equal).
    let nodes = vec![
        node("a", 8000, 8, 0),
        node("b", 3000, 8, 0),
        node("c", 5000, 8, 0),
    ];
    let p = problem(nodes, vec![pod("p", 2500, 1, GpuAmount::None)]);
    assert_eq!(nodes_of(OnlineKind::BestFit, &p), vec![Some(1)]);
    assert_eq!(nodes_of(OnlineKind::MostAllocated, &p), vec![Some(1)]);
    assert_eq!(nodes_of(OnlineKind::LeastAllocated, &p), vec![Some(0)]);
    assert_eq!(nodes_of(OnlineKind::KubeDefault, &p), vec![Some(0)]);
    // The paper's DotProd normalises by each node's capacity: on empty nodes the pod is
    // the smallest fraction of the biggest node, whose dot product is then smallest.
    assert_eq!(nodes_of(OnlineKind::DotProduct, &p), vec![Some(0)]);
    // Between equal nodes it packs: the half-used node has the smaller dot product.
    let mut c = Cluster::new(vec![node("e", 8000, 8, 0), node("u", 8000, 8, 0)]).unwrap();
    c.bind(
        pod("x", 4000, 4, GpuAmount::None),
        NodeId::from_index(1),
        None,
    )
    .unwrap();
    let p = Problem {
        cluster: c,
        pending: vec![pod("p", 2500, 1, GpuAmount::None)],
    };
    assert_eq!(nodes_of(OnlineKind::DotProduct, &p), vec![Some(1)]);
}

#[test]
fn best_fit_keeps_idle_gpu_nodes_for_gpu_pods() {
    let nodes = vec![node("gpu", 8000, 8, 4), node("cpu", 8000, 8, 0)];
    let p = problem(nodes, vec![pod("p", 1000, 1, GpuAmount::None)]);
    assert_eq!(nodes_of(OnlineKind::BestFit, &p), vec![Some(1)]);
}

#[test]
fn kube_default_score_matches_the_hand_computed_formula() {
    // kube's least_allocated_test: node cpu 4000m, memory 10000 bytes; pod 3000m, 5000 B.
    let mut n = node("a", 4000, 0, 0);
    n.allocatable.memory_bytes = 10_000;
    let mut p = pod("p", 3000, 0, GpuAmount::None);
    p.requests.memory_bytes = 5000;
    let c = Cluster::new(vec![n]).unwrap();
    // LeastAllocated (25 + 50) / 2 = 37; Balanced (1 - |0.75 - 0.5| / 2) · 100 = 87;
    // TaintToleration: no taints → every node 100, × 3; NodeAffinity no terms → 0.
    let s = policy(OnlineKind::KubeDefault).scores(&c, &p);
    let s = by_slot(s);
    assert_eq!(s, vec![(0, 37.0 + 87.0 + 300.0)]);
    assert_eq!(
        by_slot(policy(OnlineKind::LeastAllocated).scores(&c, &p)),
        vec![(0, 37.0 + 100.0)]
    );
    // MostAllocated (75 + 50) / 2 = 62.
    assert_eq!(
        by_slot(policy(OnlineKind::MostAllocated).scores(&c, &p)),
        vec![(0, 62.0 + 100.0)]
    );
}

#[test]
fn zero_requests_count_as_kube_defaults_in_scoring() {
    // A pod without requests counts as 100m CPU and 200 MiB memory:
    // cpu (1000 - 100) · 100 / 1000 = 90; memory (1 GiB - 200 MiB) · 100 / 1 GiB = 80.
    let c = Cluster::new(vec![node("a", 1000, 1, 0)]).unwrap();
    let p = pod("p", 0, 0, GpuAmount::None);
    let s = policy(OnlineKind::LeastAllocated).scores(&c, &p);
    let s = by_slot(s);
    assert_eq!(s, vec![(0, 85.0 + 100.0)]);
}

#[test]
fn gang_is_all_or_nothing() {
    // Room for two 3000m pods; the gang of three needs all three.
    let gang = Some(Gang {
        name: "g".into(),
        min_member: 3,
    });
    let mut pending: Vec<Pod> = (0..3)
        .map(|i| Pod {
            gang: gang.clone(),
            ..pod(&format!("g{i}"), 3000, 1, GpuAmount::None)
        })
        .collect();
    pending.push(pod("after", 3000, 1, GpuAmount::None));
    let p = problem(
        vec![node("a", 4000, 8, 0), node("b", 4000, 8, 0)],
        pending.clone(),
    );
    for kind in OnlineKind::ALL {
        let got = nodes_of(kind, &p);
        assert_eq!(&got[..3], &[None, None, None], "{kind:?}");
        assert!(
            got[3].is_some(),
            "{kind:?}: the space freed by the rollback is reused"
        );
    }
    // With min_member 2 the two that fit stay.
    for q in pending.iter_mut().take(3) {
        q.gang.as_mut().unwrap().min_member = 2;
    }
    let p = problem(vec![node("a", 4000, 8, 0), node("b", 4000, 8, 0)], pending);
    let got = nodes_of(OnlineKind::BestFit, &p);
    assert_eq!(got.iter().take(3).filter(|n| n.is_some()).count(), 2);
    assert_eq!(got[3], None);
}

#[test]
fn higher_priority_goes_first() {
    let mut important = pod("important", 3000, 1, GpuAmount::None);
    important.priority = 100;
    let p = problem(
        vec![node("a", 4000, 8, 0)],
        vec![pod("low", 3000, 1, GpuAmount::None), important],
    );
    for kind in OnlineKind::ALL {
        assert_eq!(nodes_of(kind, &p), vec![None, Some(0)], "{kind:?}");
    }
}

#[test]
fn two_large_shares_never_share_a_device() {
    let pending: Vec<Pod> = (0..3)
        .map(|i| pod(&format!("s{i}"), 100, 1, GpuAmount::Shared(600)))
        .collect();
    let p = problem(vec![node("a", 8000, 8, 2)], pending);
    for kind in OnlineKind::ALL {
        let out = policy(kind).place(&p).unwrap();
        let devs: Vec<u32> = out
            .placement
            .iter()
            .flatten()
            .map(|b| b.gpu_devices[0])
            .collect();
        assert_eq!(devs.len(), 2, "{kind:?}");
        assert_ne!(devs[0], devs[1], "{kind:?}");
        out.apply(&p).unwrap();
    }
}

#[test]
fn preferred_affinity_and_prefer_no_schedule_change_the_choice() {
    // b is fuller, so least-allocated and kube-default would pick a.
    let mut a = node("a", 8000, 8, 0);
    let mut b = node("b", 4000, 8, 0);
    label(&mut b, "disk", "ssd");
    label(&mut a, "disk", "hdd");
    let plain = pod("p", 1000, 1, GpuAmount::None);
    let p = problem(vec![a.clone(), b.clone()], vec![plain.clone()]);
    assert_eq!(nodes_of(OnlineKind::KubeDefault, &p), vec![Some(0)]);
    let mut prefers = plain.clone();
    prefers.preferred_node_affinity = vec![PreferredTerm {
        weight: 50,
        term: NodeSelectorTerm {
            match_expressions: vec![Requirement {
                key: "disk".into(),
                operator: Operator::In,
                values: vec!["ssd".into()],
            }],
            match_fields: vec![],
        },
    }];
    let p = problem(vec![a.clone(), b.clone()], vec![prefers]);
    assert_eq!(nodes_of(OnlineKind::KubeDefault, &p), vec![Some(1)]);
    assert_eq!(nodes_of(OnlineKind::LeastAllocated, &p), vec![Some(1)]);
    a.taints.push(Taint {
        key: "spot".into(),
        value: "true".into(),
        effect: TaintEffect::PreferNoSchedule,
    });
    let p = problem(vec![a, b], vec![plain]);
    assert_eq!(nodes_of(OnlineKind::KubeDefault, &p), vec![Some(1)]);
}

#[test]
fn schedule_anyway_spread_prefers_the_emptier_zone() {
    let mut nodes: Vec<Node> = (0..4).map(|i| node(&format!("n{i}"), 8000, 8, 0)).collect();
    for (i, n) in nodes.iter_mut().enumerate() {
        label(n, "zone", if i < 2 { "z1" } else { "z2" });
    }
    let mut web = pod("web", 500, 1, GpuAmount::None);
    web.labels.insert("app".into(), "web".into());
    web.topology_spread = vec![TopologySpreadConstraint {
        max_skew: 1,
        topology_key: "zone".into(),
        when_unsatisfiable: WhenUnsatisfiable::ScheduleAnyway,
        selector: LabelSelector {
            match_labels: [("app".to_string(), "web".to_string())].into(),
            match_expressions: vec![],
        },
    }];
    let pending: Vec<Pod> = (0..4)
        .map(|i| Pod {
            name: format!("web{i}"),
            ..web.clone()
        })
        .collect();
    let p = problem(nodes, pending);
    // most-allocated alone would stack everything on n0; spread alternates zones.
    let got = nodes_of(OnlineKind::KubeDefault, &p);
    let z1 = got.iter().filter(|n| n.unwrap() < 2).count();
    assert_eq!(z1, 2, "{got:?}");
}

#[test]
fn random_is_reproducible_and_seed_dependent() {
    let nodes: Vec<Node> = (0..50)
        .map(|i| node(&format!("n{i}"), 8000, 8, 0))
        .collect();
    let pending: Vec<Pod> = (0..20)
        .map(|i| pod(&format!("p{i}"), 500, 1, GpuAmount::None))
        .collect();
    let p = problem(nodes, pending);
    let run = |seed| {
        OnlinePolicy::new(OnlineKind::Random, seed)
            .place(&p)
            .unwrap()
            .placement
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn fgd_keeps_whole_devices_free_for_whole_gpu_tasks() {
    // Node a has devices with 1000 and 500 free; a 500 share should go to the 500 device
    // (and to node a rather than idle node b) when whole-GPU tasks are typical.
    let mut c = Cluster::new(vec![node("a", 16000, 64, 2), node("b", 16000, 64, 2)]).unwrap();
    c.bind(
        pod("x", 100, 1, GpuAmount::Shared(500)),
        NodeId::FIRST,
        Some(vec![1]),
    )
    .unwrap();
    let w = TargetWorkload::new(vec![
        TypicalPod {
            cpu_milli: 1000,
            memory_bytes: GIB,
            gpu: GpuAmount::Whole(1),
            models: vec![],
            frequency: 0.5,
        },
        TypicalPod {
            cpu_milli: 1000,
            memory_bytes: GIB,
            gpu: GpuAmount::Shared(500),
            models: vec![],
            frequency: 0.5,
        },
    ]);
    let fgd = OnlinePolicy::new(OnlineKind::Fgd, 1).with_target_workload(w);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let b = fgd
        .select(&c, &pod("s", 1000, 1, GpuAmount::Shared(500)), &mut rng)
        .unwrap();
    assert_eq!(
        b,
        Binding {
            node: NodeId::FIRST,
            gpu_devices: vec![1]
        }
    );
}

#[test]
fn gpu_packing_and_clustering_prefer_used_gpu_nodes() {
    let mut c = Cluster::new(vec![node("idle", 16000, 64, 4), node("used", 16000, 64, 4)]).unwrap();
    c.bind(
        pod("x", 100, 1, GpuAmount::Shared(300)),
        NodeId::from_index(1),
        None,
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let share = pod("s", 100, 1, GpuAmount::Shared(300));
    for kind in [OnlineKind::GpuPacking, OnlineKind::GpuClustering] {
        let b = policy(kind).select(&c, &share, &mut rng).unwrap();
        assert_eq!(b.node.index(), 1, "{kind:?}");
    }
    // GPU clustering sends a different request type away from the node running shares.
    let whole = pod("w", 100, 1, GpuAmount::Whole(1));
    let b = policy(OnlineKind::GpuClustering)
        .select(&c, &whole, &mut rng)
        .unwrap();
    assert_eq!(b.node, NodeId::FIRST);
}

#[test]
fn select_agrees_with_the_best_score() {
    let nodes: Vec<Node> = (0..30)
        .map(|i| {
            node(
                &format!("n{i}"),
                4000 + 1000 * (i % 7),
                8 + i % 5,
                (i % 3) as u32 * 2,
            )
        })
        .collect();
    let mut c = Cluster::new(nodes).unwrap();
    for i in 0..30 {
        let _ = c.bind(
            pod(&format!("b{i}"), 700 * (i % 4), 1, GpuAmount::None),
            NodeId::from_index(i as usize),
            None,
        );
    }
    let probe = [
        pod("cpu", 1500, 2, GpuAmount::None),
        pod("share", 1000, 1, GpuAmount::Shared(250)),
        pod("whole", 1000, 1, GpuAmount::Whole(2)),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for kind in OnlineKind::ALL {
        if matches!(kind, OnlineKind::Random | OnlineKind::FirstFit) {
            continue;
        }
        for p in &probe {
            let scores = policy(kind).scores(&c, p);
            let best = scores
                .iter()
                .fold(None::<(usize, f64)>, |b, &(n, s)| match b {
                    Some((_, bs)) if bs >= s => b,
                    _ => Some((n.index(), s)),
                })
                .map(|(n, _)| n);
            let chosen = policy(kind).select(&c, p, &mut rng).map(|b| b.node.index());
            assert_eq!(chosen, best, "{kind:?} {}", p.name);
        }
    }
}

#[test]
fn session_bookkeeping_stays_in_sync_with_a_fresh_start() {
    let nodes = vec![
        node("a", 4000, 8, 2),
        node("b", 8000, 8, 2),
        node("c", 6000, 4, 0),
    ];
    let probe = pod("probe", 1000, 1, GpuAmount::Shared(500));
    for kind in OnlineKind::ALL {
        // An explicit FGD workload, so the session and the fresh start agree on it.
        let pol = policy(kind).with_target_workload(TargetWorkload::from_pods(
            &[probe.clone(), pod("w", 1, 1, GpuAmount::Whole(1))],
            1.0,
        ));
        let mut s = pol.session(Cluster::new(nodes.clone()).unwrap());
        let (id, _) = s
            .place(pod("p", 3000, 1, GpuAmount::Shared(500)))
            .unwrap()
            .unwrap();
        s.place(pod("q", 3000, 1, GpuAmount::None))
            .unwrap()
            .unwrap();
        s.place(pod("r", 500, 1, GpuAmount::Whole(1)))
            .unwrap()
            .unwrap();
        assert_eq!(
            s.scores(&probe),
            pol.scores(s.cluster(), &probe),
            "{kind:?}"
        );
        s.remove(id).unwrap();
        assert_eq!(
            s.scores(&probe),
            pol.scores(s.cluster(), &probe),
            "{kind:?}"
        );
    }
}

/// The engine's fast filter must agree with the reference filter on every node.
#[test]
fn feasible_nodes_are_exactly_those_the_reference_filter_accepts() {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let models = ["T4", "V100", "A100"];
    for round in 0..40 {
        let nodes: Vec<Node> = (0..12)
            .map(|i| {
                let mut n = node(
                    &format!("n{i}"),
                    rng.gen_range(1..9) * 1000,
                    rng.gen_range(1..9),
                    if rng.gen_bool(0.5) {
                        rng.gen_range(1..5)
                    } else {
                        0
                    },
                );
                if let Some(g) = n.gpus.as_mut() {
                    g.model = models[rng.gen_range(0..3)].into();
                }
                n.allocatable.pods = rng.gen_range(1..6);
                label(&mut n, "zone", ["a", "b"][rng.gen_range(0..2)]);
                n.unschedulable = rng.gen_bool(0.1);
                if rng.gen_bool(0.2) {
                    n.taints.push(Taint {
                        key: "dedicated".into(),
                        value: "x".into(),
                        effect: [TaintEffect::NoSchedule, TaintEffect::PreferNoSchedule]
                            [rng.gen_range(0..2)],
                    });
                }
                n
            })
            .collect();
        let mut c = Cluster::new(nodes).unwrap();
        let amount = |rng: &mut ChaCha8Rng| match rng.gen_range(0..3) {
            0 => GpuAmount::None,
            1 => GpuAmount::Shared(rng.gen_range(1..10) * 100),
            _ => GpuAmount::Whole(rng.gen_range(1..3)),
        };
        for i in 0..rng.gen_range(0..30) {
            let p = pod(
                &format!("b{i}"),
                rng.gen_range(0..3) * 500,
                1,
                amount(&mut rng),
            );
            let _ = c.bind(p, NodeId::from_index(rng.gen_range(0..12)), None);
        }
        let mut p = pod(
            "p",
            rng.gen_range(0..4) * 500,
            rng.gen_range(0..3),
            amount(&mut rng),
        );
        if rng.gen_bool(0.3) {
            p.node_selector.insert("zone".into(), "a".into());
        }
        if rng.gen_bool(0.3) {
            p.gpu.models = vec!["T4".into()];
        }
        let ok: Vec<usize> = OnlinePolicy::filter(&c, &p)
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(n, _)| n.index())
            .collect();
        for kind in OnlineKind::ALL {
            let got: Vec<usize> = policy(kind)
                .scores(&c, &p)
                .iter()
                .map(|s| s.0.index())
                .collect();
            assert_eq!(got, ok, "round {round} {kind:?}");
        }
    }
}

#[test]
fn names_match_the_registry() {
    for kind in OnlineKind::ALL {
        let p = plimsoll::place::policy_by_name(kind.name(), &Default::default()).unwrap();
        assert_eq!(p.name(), kind.name());
    }
}

/// The session's incremental decisions (node classes kept up to date across binds and
/// removals) against a straightforward recompute-everything path: a fresh engine scoring
/// every node of the current cluster, best total first, lowest index on ties. Random
/// clusters with many identical nodes (so classes are large), GPUs of two models,
/// PreferNoSchedule and NoSchedule taints, zone labels, and pods with tolerations, node
/// selectors, preferred affinity, soft spread and pod anti-affinity.
#[test]
fn incremental_decisions_equal_a_full_recompute() {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let models = ["T4", "A100"];
    let mut decisions = 0usize;
    for round in 0..12 {
        let nodes: Vec<Node> = (0..30)
            .map(|i| {
                let t = rng.gen_range(0..4u64);
                let gpus = if t >= 2 {
                    [2u32, 4][rng.gen_range(0..2)]
                } else {
                    0
                };
                let mut n = node(&format!("n{i}"), (t + 1) * 4000, (t + 1) * 8, gpus);
                if let Some(g) = n.gpus.as_mut() {
                    g.model = models[rng.gen_range(0..2)].into();
                }
                label(&mut n, "zone", ["a", "b", "c"][rng.gen_range(0..3)]);
                if rng.gen_bool(0.15) {
                    n.taints.push(Taint {
                        key: "spot".into(),
                        value: "true".into(),
                        effect: [TaintEffect::PreferNoSchedule, TaintEffect::NoSchedule]
                            [rng.gen_range(0..2)],
                    });
                }
                n
            })
            .collect();
        let amount = |rng: &mut ChaCha8Rng| match rng.gen_range(0..5) {
            0 | 1 => GpuAmount::None,
            2 | 3 => GpuAmount::Shared([250, 500, 750][rng.gen_range(0..3)]),
            _ => GpuAmount::Whole(rng.gen_range(1..3)),
        };
        let mut pods: Vec<Pod> = Vec::new();
        for i in 0..90 {
            // Even rounds: equal CPU and memory requests, so nodes often reach equal
            // states by different routes (e.g. different per-device GPU use).
            let (cpu, mem) = if round % 2 == 0 {
                (1000, 1)
            } else {
                ([500, 1000, 2000][rng.gen_range(0..3)], rng.gen_range(1..3))
            };
            let mut p = pod(&format!("p{i}"), cpu, mem, amount(&mut rng));
            p.labels
                .insert("app".into(), ["x", "y"][rng.gen_range(0..2)].into());
            match rng.gen_range(0..8) {
                0 => {
                    p.node_selector.insert("zone".into(), "a".into());
                }
                1 => p.preferred_node_affinity.push(PreferredTerm {
                    weight: 10,
                    term: NodeSelectorTerm {
                        match_expressions: vec![Requirement {
                            key: "zone".into(),
                            operator: Operator::In,
                            values: vec!["b".into()],
                        }],
                        ..Default::default()
                    },
                }),
                2 => p.tolerations.push(plimsoll::model::Toleration {
                    key: "spot".into(),
                    ..Default::default()
                }),
                3 => p.topology_spread.push(TopologySpreadConstraint {
                    max_skew: 1,
                    topology_key: "zone".into(),
                    when_unsatisfiable: WhenUnsatisfiable::ScheduleAnyway,
                    selector: LabelSelector {
                        match_labels: [("app".to_string(), "x".to_string())].into(),
                        ..Default::default()
                    },
                }),
                // Bound anti-affinity pods send every later pod down the dynamic path:
                // only in some rounds.
                4 if round % 4 == 3 => p.pod_anti_affinity.push(plimsoll::model::PodAffinityTerm {
                    selector: LabelSelector {
                        match_labels: [("app".to_string(), "y".to_string())].into(),
                        ..Default::default()
                    },
                    topology_key: "zone".into(),
                    namespaces: vec![],
                }),
                _ => {}
            }
            pods.push(p);
        }
        let workload = TargetWorkload::from_pods(&pods, 1.0);
        for kind in OnlineKind::ALL {
            if kind == OnlineKind::Random {
                continue;
            }
            let pol = policy(kind).with_target_workload(workload.clone());
            let mut s = pol.session(Cluster::new(nodes.clone()).unwrap());
            let mut bound = Vec::new();
            for (i, p) in pods.iter().enumerate() {
                let fresh = pol.scores(s.cluster(), p);
                // Now and then a share bound elsewhere, on a random device: varied device
                // states on nodes with equal totals.
                if let (GpuAmount::Shared(m), true) = (p.gpu.amount, rng.gen_bool(0.3)) {
                    if !fresh.is_empty() {
                        let n = fresh[rng.gen_range(0..fresh.len())].0;
                        let devs: Vec<u32> = (0..s.cluster().gpu_free(n).len() as u32)
                            .filter(|&d| s.cluster().gpu_free(n)[d as usize] >= m)
                            .collect();
                        let d = devs[rng.gen_range(0..devs.len())];
                        let b = Binding {
                            node: n,
                            gpu_devices: vec![d],
                        };
                        bound.push(s.bind(p.clone(), &b).unwrap());
                        continue;
                    }
                }
                let expected = fresh
                    .iter()
                    .fold(None::<(usize, f64)>, |b, &(n, sc)| match b {
                        Some((_, bs)) if bs >= sc => b,
                        _ => Some((n.index(), sc)),
                    })
                    .map(|(n, _)| n);
                let mut r = ChaCha8Rng::seed_from_u64(0);
                let fresh_binding = pol.select(s.cluster(), p, &mut r);
                let got = s.place(p.clone()).unwrap();
                assert_eq!(
                    got.as_ref().map(|(_, b)| b.node.index()),
                    expected,
                    "round {round} {kind:?} pod {i}"
                );
                assert_eq!(
                    got.as_ref().map(|(_, b)| b),
                    fresh_binding.as_ref(),
                    "round {round} {kind:?} pod {i}"
                );
                decisions += 1;
                if let Some((id, _)) = got {
                    bound.push(id);
                }
                // Departures: nodes go back to earlier states (and classes merge again).
                if !bound.is_empty() && rng.gen_bool(0.2) {
                    let id = bound.swap_remove(rng.gen_range(0..bound.len()));
                    s.remove(id).unwrap();
                }
            }
        }
    }
    assert!(decisions > 5000, "{decisions}");
}
