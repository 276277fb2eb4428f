//! Preemption against a brute-force optimum on tiny random clusters: every victim subset
//! of every node is tried with the filters, and the best by [`PreemptionKey`] must be
//! exactly what `choose_victims` returns; its answer must also pass the independent
//! validator once the victims are evicted.

use plimsoll::model::*;
use plimsoll::place::clock::{Deadline, ManualClock, SharedClock};
use plimsoll::place::preempt::{choose_victims, Preemption, PreemptionKey};
use plimsoll::place::validate::validate;
use plimsoll::place::FilterContext;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use std::time::Duration;

const GI: u64 = 1 << 30;

fn deadline() -> Deadline {
    let clock: SharedClock = Arc::new(ManualClock::new());
    Deadline::after(clock, Duration::from_secs(60))
}

fn anti(app: &str) -> PodAffinityTerm {
    PodAffinityTerm {
        selector: LabelSelector {
            match_labels: [("app".to_string(), app.to_string())].into(),
            match_expressions: vec![],
        },
        namespaces: vec![],
        topology_key: HOSTNAME_LABEL.into(),
    }
}

/// What the random instances may contain beyond cpu and memory.
#[derive(Debug, Clone, Copy)]
struct Mix {
    gpus: bool,
    inter_pod: bool,
}

fn random_gpu(rng: &mut ChaCha8Rng) -> GpuAmount {
    match rng.gen_range(0..5) {
        0 | 1 => GpuAmount::None,
        2 | 3 => GpuAmount::Shared(rng.gen_range(1..10) * 100),
        _ => GpuAmount::Whole(rng.gen_range(1..=2)),
    }
}

/// A random cluster of 1–3 nodes with up to 6 bound pods each, and a preemptor.
fn instance(rng: &mut ChaCha8Rng, mix: Mix) -> (Cluster, Pod) {
    let n_nodes = rng.gen_range(1..=3);
    let mut nodes = Vec::new();
    for i in 0..n_nodes {
        let mut n = Node::new(
            &format!("n{i}"),
            rng.gen_range(4..=16) * 500,
            rng.gen_range(4..=16) * GI,
        )
        .with_max_pods(rng.gen_range(3..=7));
        if mix.gpus {
            n = n.with_gpus("T4", rng.gen_range(0..=3));
        }
        match rng.gen_range(0..10) {
            0 => n = n.cordoned(),
            1 => n = n.with_taint("dedicated", "x", TaintEffect::NoSchedule),
            _ => {}
        }
        nodes.push(n);
    }
    let mut c = Cluster::new(nodes).unwrap();
    for i in 0..n_nodes {
        for j in 0..rng.gen_range(0..=6) {
            let mut p = Pod::new(
                &format!("p{i}-{j}"),
                rng.gen_range(1..=12) * 250,
                rng.gen_range(1..=6) * GI,
            )
            .with_priority(rng.gen_range(0..=5));
            if mix.gpus && rng.gen_bool(0.5) {
                p = p.with_gpu(random_gpu(rng));
            }
            if rng.gen_bool(0.1) {
                p = p.in_gang("g", 2);
            }
            if mix.inter_pod {
                if rng.gen_bool(0.3) {
                    p = p.with_label("app", "x");
                }
                if rng.gen_bool(0.15) {
                    p.pod_anti_affinity.push(anti("hi"));
                }
            }
            // Pods that do not fit are left out: the node is then simply full.
            let _ = c.bind(p, NodeId::from_index(i), None);
        }
    }
    let mut pod = Pod::new(
        "preemptor",
        rng.gen_range(1..=16) * 500,
        rng.gen_range(1..=12) * GI,
    )
    .with_priority(rng.gen_range(2..=6))
    .with_label("app", "hi");
    if mix.gpus && rng.gen_bool(0.5) {
        pod = pod.with_gpu(random_gpu(rng));
    }
    if mix.inter_pod && rng.gen_bool(0.5) {
        pod.pod_anti_affinity.push(anti("x"));
    }
    (c, pod)
}

/// The best key over every node and every subset of its evictable pods (lower priority,
/// no gang) after which the pod passes the filters. The zero-victim key of a node where
/// the pod passes now is among them; for these instances (resources, devices,
/// hostname-scoped anti-affinity) passing with a subset removed implies passing with all
/// of them removed, so the candidate-node rule adds nothing here.
fn brute_force(c: &Cluster, pod: &Pod) -> Option<PreemptionKey> {
    let mut best: Option<PreemptionKey> = None;
    for node in c.node_ids() {
        let evictable: Vec<(PodId, i32)> = c
            .pods_on(node)
            .iter()
            .map(|&id| (id, &c.pod(id).unwrap().0))
            .filter(|(_, p)| p.priority < pod.priority && p.gang.is_none())
            .map(|(id, p)| (id, p.priority))
            .collect();
        for mask in 0u32..(1 << evictable.len()) {
            let chosen: Vec<&(PodId, i32)> = evictable
                .iter()
                .enumerate()
                .filter(|(i, _)| mask >> i & 1 == 1)
                .map(|(_, v)| v)
                .collect();
            let key = PreemptionKey::new(node, chosen.iter().map(|&&(_, p)| p));
            if best.is_some_and(|b| b <= key) {
                continue;
            }
            let mut scratch = c.clone();
            for &&(id, _) in &chosen {
                scratch.unbind(id).unwrap();
            }
            if FilterContext::new(&scratch, pod).check(node).is_ok() {
                best = Some(key);
            }
        }
    }
    best
}

/// The preemption's victims are evictable, and after evicting them the pod's binding
/// passes the independent validator.
fn check_answer(c: &Cluster, pod: &Pod, p: &Preemption) {
    assert!(p.victims.windows(2).all(|w| w[0] < w[1]), "ascending");
    for &v in &p.victims {
        let (victim, b) = c.pod(v).expect("victim is bound");
        assert_eq!(b.node, p.node, "victim on the chosen node");
        assert!(victim.priority < pod.priority, "lower priority only");
        assert!(victim.gang.is_none(), "no gang members");
    }
    let mut after = c.clone();
    let evicted = p.apply(&mut after).unwrap();
    assert_eq!(evicted.len(), p.victims.len());
    let devices = gpu::choose_devices(after.gpu_free(p.node), pod.gpu.amount)
        .expect("devices free after the evictions");
    let problem = Problem {
        cluster: after,
        pending: vec![pod.clone()],
    };
    let binding = Binding {
        node: p.node,
        gpu_devices: devices,
    };
    if let Err(v) = validate(&problem, &[Some(binding)]) {
        panic!("preemption {p:?} leaves violations: {v:?}");
    }
}

fn matches_brute_force(seed: u64, cases: usize, mix: Mix) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut found, mut with_victims) = (0, 0);
    for case in 0..cases {
        let (c, pod) = instance(&mut rng, mix);
        let want = brute_force(&c, &pod);
        let got = choose_victims(&c, &pod, &deadline()).unwrap();
        let got_key = got.as_ref().map(|p| p.key(&c).unwrap());
        assert_eq!(
            got_key, want,
            "case {case} (seed {seed}): got {got:?}\ncluster: {c:#?}\npod: {pod:#?}"
        );
        if let Some(p) = &got {
            check_answer(&c, &pod, p);
            found += 1;
            with_victims += usize::from(!p.victims.is_empty());
        }
    }
    // The instances must exercise both outcomes and real evictions.
    assert!(
        found > cases / 10 && found < cases,
        "{found} of {cases} found"
    );
    assert!(with_victims > cases / 10, "{with_victims} with victims");
}

#[test]
fn cpu_memory_and_pod_count_match_brute_force() {
    let mix = Mix {
        gpus: false,
        inter_pod: false,
    };
    matches_brute_force(1, 300, mix);
}

#[test]
fn gpu_devices_match_brute_force() {
    let mix = Mix {
        gpus: true,
        inter_pod: false,
    };
    matches_brute_force(2, 300, mix);
}

#[test]
fn hostname_anti_affinity_matches_brute_force() {
    let mix = Mix {
        gpus: true,
        inter_pod: true,
    };
    matches_brute_force(3, 300, mix);
}

#[test]
fn the_lowest_node_wins_a_tie() {
    let nodes = vec![Node::new("a", 2000, 8 * GI), Node::new("b", 2000, 8 * GI)];
    let mut c = Cluster::new(nodes).unwrap();
    for n in 0..2 {
        c.bind(
            Pod::new(&format!("x{n}"), 2000, GI).with_priority(1),
            NodeId::from_index(n),
            None,
        )
        .unwrap();
    }
    let pod = Pod::new("p", 1000, GI).with_priority(5);
    let p = choose_victims(&c, &pod, &deadline()).unwrap().unwrap();
    assert_eq!(p.node, NodeId::from_index(0));
    // A lower-priority victim on `b` beats the tie.
    c.unbind(c.pods_on(NodeId::from_index(1))[0]).unwrap();
    c.bind(
        Pod::new("y", 2000, GI).with_priority(0),
        NodeId::from_index(1),
        None,
    )
    .unwrap();
    let p = choose_victims(&c, &pod, &deadline()).unwrap().unwrap();
    assert_eq!(p.node, NodeId::from_index(1));
}
