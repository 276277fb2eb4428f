//! The live cluster model: long random sequences of cluster changes — nodes added,
//! replaced (capacity, labels, taints, GPUs), cordoned and removed; pods placed by the
//! policy, bound, unbound and evicted — applied incrementally to one [`Session`] per
//! policy. After every change, each policy's next decision and every score for a set of
//! probe pods must equal those of a session built from scratch on the same cluster, and
//! the cluster's indexes must agree with a cluster rebuilt from its own nodes and pods.

use plimsoll::model::{
    Cluster, ClusterError, GpuAmount, Node, NodeId, NodeSelectorTerm, Operator, Pod,
    PodAffinityTerm, PreferredTerm, Requirement, TaintEffect, TopologySpreadConstraint,
    WhenUnsatisfiable, GIB,
};
use plimsoll::model::{LabelSelector, PodId};
use plimsoll::place::online::{OnlineKind, OnlinePolicy, Session};
use plimsoll::place::score::fgd::TargetWorkload;
use proptest::prelude::*;

/// A node description drawn from a small space, so nodes often share a class.
#[derive(Debug, Clone)]
struct NodeSpec {
    cpu: u64,
    mem: u64,
    gpus: u32,
    zone: u8,
    prefer_no_schedule: bool,
    no_schedule: bool,
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (0..3u64, 0..3u64, 0..3u32, 0..3u8, any::<bool>(), 0..6u8).prop_map(
        |(c, m, g, zone, prefer, taint)| NodeSpec {
            cpu: [4000, 8000, 16000][c as usize],
            mem: [8, 16, 32][m as usize] * GIB,
            gpus: [0, 2, 4][g as usize],
            zone,
            prefer_no_schedule: prefer,
            no_schedule: taint == 0,
        },
    )
}

fn build_node(name: &str, s: &NodeSpec) -> Node {
    let mut n = Node::new(name, s.cpu, s.mem).with_label("zone", &format!("z{}", s.zone));
    if s.gpus > 0 {
        n = n.with_gpus(if s.gpus == 2 { "T4" } else { "V100" }, s.gpus);
    }
    if s.prefer_no_schedule {
        n = n.with_taint("flaky", "yes", TaintEffect::PreferNoSchedule);
    }
    if s.no_schedule {
        n = n.with_taint("dedicated", "batch", TaintEffect::NoSchedule);
    }
    n
}

/// A pod drawn from a few shapes; `app` labels feed anti-affinity and spread probes.
fn build_pod(name: &str, shape: u8) -> Pod {
    let (cpu, mem, gpu) = match shape % 6 {
        0 => (500, GIB, GpuAmount::None),
        1 => (2000, 4 * GIB, GpuAmount::None),
        2 => (1000, 2 * GIB, GpuAmount::Shared(500)),
        3 => (4000, 8 * GIB, GpuAmount::Whole(1)),
        4 => (250, GIB / 2, GpuAmount::Shared(250)),
        _ => (3000, 12 * GIB, GpuAmount::None),
    };
    Pod::new(name, cpu, mem)
        .with_gpu(gpu)
        .with_label("app", if shape % 2 == 0 { "web" } else { "db" })
}

/// Probe pods covering each decision route: plain, GPU shared and whole, preferred
/// affinity, a node selector, inter-pod anti-affinity, and soft topology spread.
fn probes() -> Vec<Pod> {
    let preferred = PreferredTerm {
        weight: 10,
        term: NodeSelectorTerm {
            match_expressions: vec![Requirement {
                key: "zone".into(),
                operator: Operator::In,
                values: vec!["z1".into()],
            }],
            match_fields: vec![],
        },
    };
    let web = LabelSelector {
        match_labels: [("app".to_string(), "web".to_string())].into(),
        match_expressions: vec![],
    };
    let mut affine = build_pod("probe-pref", 1);
    affine.preferred_node_affinity = vec![preferred];
    let mut anti = build_pod("probe-anti", 0);
    anti.pod_anti_affinity = vec![PodAffinityTerm {
        selector: web.clone(),
        namespaces: vec![],
        topology_key: "zone".into(),
    }];
    let mut spread = build_pod("probe-spread", 0);
    spread.topology_spread = vec![TopologySpreadConstraint {
        max_skew: 1,
        topology_key: "zone".into(),
        when_unsatisfiable: WhenUnsatisfiable::ScheduleAnyway,
        selector: web,
    }];
    vec![
        build_pod("probe-cpu", 1),
        build_pod("probe-shared", 2),
        build_pod("probe-whole", 3),
        affine,
        build_pod("probe-zone", 5).with_node_selector("zone", "z2"),
        anti,
        spread,
    ]
}

#[derive(Debug, Clone)]
enum Change {
    AddNode(NodeSpec),
    ReplaceNode(usize, NodeSpec),
    Cordon(usize, bool),
    RemoveNode(usize),
    Place(u8),
    Unbind(usize),
    Evict(usize),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        2 => node_spec().prop_map(Change::AddNode),
        2 => (any::<usize>(), node_spec()).prop_map(|(i, s)| Change::ReplaceNode(i, s)),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(i, c)| Change::Cordon(i, c)),
        1 => any::<usize>().prop_map(Change::RemoveNode),
        6 => any::<u8>().prop_map(Change::Place),
        2 => any::<usize>().prop_map(Change::Unbind),
        1 => any::<usize>().prop_map(Change::Evict),
    ]
}

fn workload() -> TargetWorkload {
    TargetWorkload::from_pods(&(0..6).map(|s| build_pod("w", s)).collect::<Vec<_>>(), 1.0)
}

fn policy(kind: OnlineKind) -> OnlinePolicy {
    OnlinePolicy::new(kind, 7).with_target_workload(workload())
}

/// The `i`-th (mod count) live node, or `None` if there is none.
fn nth_node(c: &Cluster, i: usize) -> Option<NodeId> {
    let n = c.node_count();
    (n > 0).then(|| c.node_ids().nth(i % n).expect("in range"))
}

fn nth_pod(c: &Cluster, i: usize) -> Option<PodId> {
    let n = c.bound_count();
    (n > 0).then(|| c.bound_pods().nth(i % n).expect("in range").0)
}

/// Applies `ch` to `s`; stale-id errors are checked on the way.
fn apply(s: &mut Session<'static>, ch: &Change, step: usize) {
    match ch {
        Change::AddNode(spec) => {
            s.add_node(build_node(&format!("n{step}"), spec)).unwrap();
        }
        Change::ReplaceNode(i, spec) => {
            let Some(id) = nth_node(s.cluster(), *i) else {
                return;
            };
            let name = s.cluster()[id].name.clone();
            // A description that drops a device a pod holds is refused, changing nothing.
            match s.replace_node(id, build_node(&name, spec)) {
                Ok(_) | Err(ClusterError::DeviceInUse { .. }) => {}
                Err(e) => panic!("replace {id}: {e}"),
            }
        }
        Change::Cordon(i, c) => {
            if let Some(id) = nth_node(s.cluster(), *i) {
                s.set_cordoned(id, *c).unwrap();
            }
        }
        Change::RemoveNode(i) => {
            let Some(id) = nth_node(s.cluster(), *i) else {
                return;
            };
            let bound = s.cluster().pods_on(id).len();
            let (_, evicted) = s.remove_node(id).unwrap();
            assert_eq!(evicted.len(), bound);
            assert!(matches!(
                s.remove_node(id),
                Err(ClusterError::NoSuchNode(_))
            ));
        }
        Change::Place(shape) => {
            let _ = s.place(build_pod(&format!("p{step}"), *shape)).unwrap();
        }
        Change::Unbind(i) => {
            if let Some(id) = nth_pod(s.cluster(), *i) {
                s.remove(id).unwrap();
                assert!(matches!(s.remove(id), Err(ClusterError::UnknownPod(_))));
            }
        }
        Change::Evict(i) => {
            if let Some(id) = nth_pod(s.cluster(), *i) {
                let pod = s.evict(id).unwrap();
                assert!(pod.node_name.is_none() && pod.gpu_devices.is_empty());
            }
        }
    }
}

/// The cluster's derived state equals what its bound pods add up to, computed here
/// independently (a node made smaller than its pods is over-full, not an error, so
/// rebinding could not rebuild it).
fn check_indexes(c: &Cluster) {
    let mut count = 0;
    for id in c.node_ids() {
        let node = &c[id];
        assert_eq!(c.node_id(&node.name), Some(id));
        let (mut cpu, mut mem, mut pods) = (0u64, 0u64, 0u64);
        let mut free = vec![1000u32; node.gpu_count() as usize];
        for &pid in c.pods_on(id) {
            let (pod, b) = c.pod(pid).expect("pods_on lists bound pods");
            assert_eq!(b.node, id);
            assert_eq!(pod.node_name.as_deref(), Some(node.name.as_str()));
            cpu += pod.requests.cpu_milli;
            mem += pod.requests.memory_bytes;
            pods += 1;
            let per = match pod.gpu.amount {
                GpuAmount::None => 0,
                GpuAmount::Shared(m) => m,
                GpuAmount::Whole(_) => 1000,
            };
            for &d in &b.gpu_devices {
                free[d as usize] -= per;
            }
        }
        count += pods;
        let used = c.used(id);
        assert_eq!(
            (used.cpu_milli, used.memory_bytes, used.pods),
            (cpu, mem, pods),
            "used on {id}"
        );
        assert_eq!(c.gpu_free(id), free.as_slice(), "GPU free on {id}");
    }
    assert_eq!(count as usize, c.bound_count());
    assert_eq!(c.bound_pods().count(), c.bound_count());
}

fn compare(kind: OnlineKind, live: &mut Session<'static>, step: usize) {
    let mut fresh = policy(kind).session(live.cluster().clone());
    for probe in probes() {
        let (a, b) = (live.scores(&probe), fresh.scores(&probe));
        assert_eq!(a, b, "{kind} step {step}: scores of {}", probe.name);
        if kind != OnlineKind::Random {
            // Random draws from the session's own generator, so only its candidate set
            // (the scores above) is comparable.
            let (a, b) = (live.select(&probe), fresh.select(&probe));
            assert_eq!(a, b, "{kind} step {step}: decision for {}", probe.name);
        }
    }
}

fn run(initial: &[NodeSpec], changes: &[Change]) {
    for kind in OnlineKind::ALL {
        let nodes: Vec<Node> = initial
            .iter()
            .enumerate()
            .map(|(i, s)| build_node(&format!("init{i}"), s))
            .collect();
        let mut live = policy(kind).session(Cluster::new(nodes).unwrap());
        // Warm every cache (static entries, classes, FGD statistics) before changing.
        compare(kind, &mut live, 0);
        for (step, ch) in changes.iter().enumerate() {
            apply(&mut live, ch, step + 1);
            check_indexes(live.cluster());
            compare(kind, &mut live, step + 1);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn incremental_sessions_decide_as_sessions_built_from_scratch(
        initial in prop::collection::vec(node_spec(), 1..8),
        changes in prop::collection::vec(change(), 1..60),
    ) {
        run(&initial, &changes);
    }
}

#[test]
fn a_removed_node_stays_removed_and_its_pods_come_back_pending() {
    let spec = NodeSpec {
        cpu: 8000,
        mem: 16 * GIB,
        gpus: 2,
        zone: 0,
        prefer_no_schedule: false,
        no_schedule: false,
    };
    let mut s = policy(OnlineKind::BestFit)
        .session(Cluster::new(vec![build_node("a", &spec), build_node("b", &spec)]).unwrap());
    let (_, first) = s.place(build_pod("p", 2)).unwrap().unwrap();
    let (node, evicted) = s.remove_node(first.node).unwrap();
    assert_eq!((evicted.len(), s.cluster().bound_count()), (1, 0));
    // The evicted pod lands on the other node; the removed one is never chosen again.
    let (_, again) = s.place(evicted[0].0.clone()).unwrap().unwrap();
    assert_ne!(again.node, first.node);
    // Re-adding the same name gives a new id.
    let back = s.add_node(node).unwrap();
    assert!(back > again.node.max(first.node));
    assert!(s.cluster().node(first.node).is_none());
}
