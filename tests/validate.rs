//! The validator on tiny hand-made instances: each placement breaks exactly one rule
//! and the validator must report it (and nothing else); the fixed placement passes.

mod common;

use common::*;
use plimsoll::model::{
    Binding, Gang, GpuAmount, HostPort, NodeId, NodeSelector, NodeSelectorTerm, Operator, Pod,
    Problem, Taint, TaintEffect, Toleration, TolerationOperator, TopologySpreadConstraint,
    WhenUnsatisfiable,
};
use plimsoll::place::validate::{validate, Violation, ViolationKind};

fn violations(problem: &Problem, placement: &[Option<Binding>]) -> Vec<Violation> {
    validate(problem, placement).err().unwrap_or_default()
}

/// Asserts at least one violation and that every violation satisfies `is_kind`.
fn assert_only(
    problem: &Problem,
    placement: &[Option<Binding>],
    is_kind: fn(&ViolationKind) -> bool,
) -> Vec<Violation> {
    let v = violations(problem, placement);
    assert!(!v.is_empty(), "expected a violation, validate passed");
    assert!(
        v.iter().all(|x| is_kind(&x.kind)),
        "unexpected violations: {v:#?}"
    );
    v
}

fn assert_valid(problem: &Problem, placement: &[Option<Binding>]) {
    if let Err(v) = validate(problem, placement) {
        panic!("expected valid, got {:#?}", v);
    }
}

#[test]
fn correct_placement_passes_and_empty_placement_passes() {
    let p = problem(
        vec![node("a", 4000, 8), gpu_node("g", "T4", 2)],
        vec![
            pod("x", 3000, 4),
            gpu_pod("y", GpuAmount::Shared(600), &["T4"]),
            gpu_pod("z", GpuAmount::Shared(400), &[]),
        ],
    );
    assert_valid(&p, &[at(0), at_gpu(1, &[0]), at_gpu(1, &[0])]);
    assert_valid(&p, &[None, None, None]);
}

#[test]
fn cpu_overcommit_blames_the_pod_that_crosses() {
    let p = problem(
        vec![node("a", 4000, 8)],
        vec![pod("x", 3000, 1), pod("y", 2000, 1)],
    );
    let v = assert_only(
        &p,
        &[at(0), at(0)],
        |k| matches!(k, ViolationKind::OverCommitted { resource, .. } if resource == "cpu"),
    );
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].pending_index, Some(1));
    assert_eq!(v[0].node, Some(NodeId::FIRST));
    assert_eq!(
        v[0].to_string(),
        "pod default/y on node a: cpu is over-committed: 5000 requested, 4000 allocatable"
    );
    assert_valid(&p, &[at(0), None]);
}

#[test]
fn cpu_overcommit_counts_bound_pods() {
    let mut p = problem(vec![node("a", 4000, 8)], vec![pod("y", 2000, 1)]);
    p.cluster
        .bind(pod("bound", 3000, 1), NodeId::FIRST, None)
        .unwrap();
    assert_only(
        &p,
        &[at(0)],
        |k| matches!(k, ViolationKind::OverCommitted { resource, .. } if resource == "cpu"),
    );
}

#[test]
fn memory_overcommit() {
    let p = problem(
        vec![node("a", 4000, 8)],
        vec![pod("x", 100, 5), pod("y", 100, 4)],
    );
    assert_only(
        &p,
        &[at(0), at(0)],
        |k| matches!(k, ViolationKind::OverCommitted { resource, .. } if resource == "memory"),
    );
}

#[test]
fn pod_count_overcommit() {
    let mut n = node("a", 4000, 8);
    n.allocatable.pods = 1;
    let p = problem(vec![n], vec![pod("x", 100, 1), pod("y", 100, 1)]);
    assert_only(
        &p,
        &[at(0), at(0)],
        |k| matches!(k, ViolationKind::OverCommitted { resource, .. } if resource == "pods"),
    );
}

#[test]
fn ephemeral_storage_overcommit() {
    let mut x = pod("x", 100, 1);
    x.requests.ephemeral_storage_bytes = 101 * GIB;
    let p = problem(vec![node("a", 4000, 8)], vec![x]);
    assert_only(
        &p,
        &[at(0)],
        |k| matches!(k, ViolationKind::OverCommitted { resource, .. } if resource == "ephemeral-storage"),
    );
}

#[test]
fn extended_resource_overcommit_and_absent() {
    let mut n = node("a", 4000, 8);
    n.allocatable.extended.insert("example.com/foo".into(), 1);
    let mut x = pod("x", 100, 1);
    x.requests.extended.insert("example.com/foo".into(), 1);
    let y = Pod {
        name: "y".into(),
        ..x.clone()
    };
    let p = problem(vec![n, node("b", 4000, 8)], vec![x, y]);
    assert_only(
        &p,
        &[at(0), at(0)],
        |k| matches!(k, ViolationKind::OverCommitted { resource, .. } if resource == "example.com/foo"),
    );
    // Node b has none of it.
    assert_only(
        &p,
        &[at(0), at(1)],
        |k| matches!(k, ViolationKind::OverCommitted { resource, allocatable: 0, .. } if resource == "example.com/foo"),
    );
    assert_valid(&p, &[at(0), None]);
}

#[test]
fn two_large_shares_on_one_device_are_over_shared() {
    let p = problem(
        vec![gpu_node("g", "T4", 2)],
        vec![
            gpu_pod("x", GpuAmount::Shared(600), &[]),
            gpu_pod("y", GpuAmount::Shared(600), &[]),
        ],
    );
    let v = assert_only(&p, &[at_gpu(0, &[0]), at_gpu(0, &[0])], |k| {
        matches!(
            k,
            ViolationKind::GpuDeviceOverShared {
                device: 0,
                used_milli: 1200
            }
        )
    });
    assert_eq!(v[0].pending_index, Some(1));
    assert_valid(&p, &[at_gpu(0, &[0]), at_gpu(0, &[1])]);
}

#[test]
fn whole_gpu_and_share_on_one_device_are_over_shared() {
    let p = problem(
        vec![gpu_node("g", "T4", 2)],
        vec![
            gpu_pod("x", GpuAmount::Whole(2), &[]),
            gpu_pod("y", GpuAmount::Shared(100), &[]),
        ],
    );
    assert_only(&p, &[at_gpu(0, &[0, 1]), at_gpu(0, &[1])], |k| {
        matches!(
            k,
            ViolationKind::GpuDeviceOverShared {
                device: 1,
                used_milli: 1100
            }
        )
    });
}

#[test]
fn wrong_device_count() {
    let p = problem(
        vec![gpu_node("g", "T4", 4)],
        vec![
            gpu_pod("whole", GpuAmount::Whole(2), &[]),
            gpu_pod("share", GpuAmount::Shared(300), &[]),
            pod("cpu", 100, 1),
        ],
    );
    let ok = [at_gpu(0, &[0, 1]), at_gpu(0, &[2]), at(0)];
    assert_valid(&p, &ok);
    let count = |k: &ViolationKind| matches!(k, ViolationKind::GpuDeviceCount { .. });
    assert_only(&p, &[at_gpu(0, &[0]), at_gpu(0, &[2]), at(0)], count);
    assert_only(&p, &[at_gpu(0, &[0, 1]), at_gpu(0, &[2, 3]), at(0)], count);
    assert_only(
        &p,
        &[at_gpu(0, &[0, 1]), at_gpu(0, &[2]), at_gpu(0, &[3])],
        count,
    );
}

#[test]
fn bad_and_repeated_device_indices() {
    let p = problem(
        vec![gpu_node("g", "T4", 2)],
        vec![gpu_pod("whole", GpuAmount::Whole(2), &[])],
    );
    assert_only(&p, &[at_gpu(0, &[0, 7])], |k| {
        matches!(
            k,
            ViolationKind::GpuDeviceIndex {
                device: 7,
                count: 2
            }
        )
    });
    // Repeating a device also uses it twice over.
    assert_only(&p, &[at_gpu(0, &[1, 1])], |k| {
        matches!(
            k,
            ViolationKind::GpuDeviceRepeated { device: 1 }
                | ViolationKind::GpuDeviceOverShared { device: 1, .. }
        )
    });
}

#[test]
fn gpu_model_not_accepted() {
    let p = problem(
        vec![gpu_node("g", "T4", 2)],
        vec![gpu_pod("x", GpuAmount::Shared(500), &["A100", "V100"])],
    );
    assert_only(
        &p,
        &[at_gpu(0, &[0])],
        |k| matches!(k, ViolationKind::GpuModel { model, .. } if model == "T4"),
    );
}

#[test]
fn no_gpus_on_node() {
    let p = problem(
        vec![node("a", 4000, 8)],
        vec![gpu_pod("x", GpuAmount::Shared(500), &[])],
    );
    // One device listed on a node without devices: the index is invalid too.
    assert_only(&p, &[at_gpu(0, &[0])], |k| {
        matches!(
            k,
            ViolationKind::NoGpus | ViolationKind::GpuDeviceIndex { .. }
        )
    });
    let v = violations(&p, &[at_gpu(0, &[0])]);
    assert!(v.iter().any(|x| x.kind == ViolationKind::NoGpus));
}

fn tainted(effect: TaintEffect) -> Problem {
    let mut n = node("a", 4000, 8);
    n.taints.push(Taint {
        key: "dedicated".into(),
        value: "gpu".into(),
        effect,
    });
    problem(vec![n], vec![pod("x", 100, 1)])
}

#[test]
fn untolerated_taints() {
    for effect in [TaintEffect::NoSchedule, TaintEffect::NoExecute] {
        let p = tainted(effect);
        assert_only(&p, &[at(0)], |k| {
            matches!(k, ViolationKind::UntoleratedTaint { .. })
        });
    }
    assert_valid(&tainted(TaintEffect::PreferNoSchedule), &[at(0)]);
    let mut p = tainted(TaintEffect::NoSchedule);
    p.pending[0].tolerations.push(Toleration {
        key: "dedicated".into(),
        operator: TolerationOperator::Equal,
        value: "gpu".into(),
        effect: Some(TaintEffect::NoSchedule),
    });
    assert_valid(&p, &[at(0)]);
    // Wrong value does not tolerate.
    p.pending[0].tolerations[0].value = "cpu".into();
    assert_only(&p, &[at(0)], |k| {
        matches!(k, ViolationKind::UntoleratedTaint { .. })
    });
}

#[test]
fn cordoned_node() {
    let mut n = node("a", 4000, 8);
    n.unschedulable = true;
    let mut p = problem(vec![n], vec![pod("x", 100, 1)]);
    assert_only(&p, &[at(0)], |k| *k == ViolationKind::Unschedulable);
    p.pending[0].tolerations.push(Toleration {
        key: "node.kubernetes.io/unschedulable".into(),
        operator: TolerationOperator::Exists,
        value: String::new(),
        effect: Some(TaintEffect::NoSchedule),
    });
    assert_valid(&p, &[at(0)]);
}

#[test]
fn node_selector_mismatch() {
    let mut a = node("a", 4000, 8);
    a.labels.insert("disk".into(), "hdd".into());
    let mut b = node("b", 4000, 8);
    b.labels.insert("disk".into(), "ssd".into());
    let mut x = pod("x", 100, 1);
    x.node_selector.insert("disk".into(), "ssd".into());
    let p = problem(vec![a, b, node("c", 4000, 8)], vec![x]);
    assert_valid(&p, &[at(1)]);
    assert_only(
        &p,
        &[at(0)],
        |k| matches!(k, ViolationKind::NodeSelector { found: Some(v), .. } if v == "hdd"),
    );
    assert_only(&p, &[at(2)], |k| {
        matches!(k, ViolationKind::NodeSelector { found: None, .. })
    });
}

#[test]
fn each_node_affinity_operator() {
    let mut good = node("good", 4000, 8);
    good.labels
        .extend(labels(&[("zone", "a"), ("gen", "5"), ("disk", "ssd")]));
    let mut bad = node("bad", 4000, 8);
    bad.labels
        .extend(labels(&[("zone", "b"), ("gen", "7"), ("maint", "yes")]));
    // Each requirement holds on `good` and fails on `bad`.
    let cases = [
        req("zone", Operator::In, &["a"]),
        req("zone", Operator::NotIn, &["b"]),
        req("disk", Operator::Exists, &[]),
        req("maint", Operator::DoesNotExist, &[]),
        req("gen", Operator::Lt, &["6"]),
    ];
    for (i, r) in cases.into_iter().enumerate() {
        check_affinity(i, r.clone(), good.clone(), bad.clone());
    }
    // Gt fails on a smaller value, and on a label that is not an integer.
    let mut small = bad.clone();
    small.labels.insert("gen".into(), "2".into());
    check_affinity(6, req("gen", Operator::Gt, &["4"]), good.clone(), small);
    let mut text = bad.clone();
    text.labels.insert("gen".into(), "new".into());
    check_affinity(7, req("gen", Operator::Gt, &["4"]), good.clone(), text);
    // matchFields on metadata.name.
    let mut x = pod("x", 100, 1);
    x.required_node_affinity = Some(NodeSelector {
        terms: vec![NodeSelectorTerm {
            match_expressions: vec![],
            match_fields: vec![req("metadata.name", Operator::In, &["good"])],
        }],
    });
    let p = problem(vec![good, bad], vec![x]);
    assert_valid(&p, &[at(0)]);
    assert_only(&p, &[at(1)], |k| *k == ViolationKind::NodeAffinity);
}

fn check_affinity(
    case: usize,
    r: plimsoll::model::Requirement,
    good: plimsoll::model::Node,
    bad: plimsoll::model::Node,
) {
    let mut x = pod("x", 100, 1);
    x.required_node_affinity = Some(NodeSelector {
        terms: vec![NodeSelectorTerm {
            match_expressions: vec![r.clone()],
            match_fields: vec![],
        }],
    });
    let p = problem(vec![good, bad], vec![x]);
    assert!(
        validate(&p, &[at(0)]).is_ok(),
        "case {case} {r:?} should pass on good"
    );
    let v = violations(&p, &[at(1)]);
    assert_eq!(v.len(), 1, "case {case} {r:?}: {v:?}");
    assert_eq!(v[0].kind, ViolationKind::NodeAffinity);
}

#[test]
fn host_port_clash() {
    let port = |ip: &str, proto: &str| HostPort {
        port: 8080,
        protocol: proto.into(),
        host_ip: ip.into(),
    };
    let with = |name: &str, hp: HostPort| Pod {
        host_ports: vec![hp],
        ..pod(name, 100, 1)
    };
    let p = problem(
        vec![node("a", 4000, 8), node("b", 4000, 8)],
        vec![
            with("x", port("", "TCP")),
            with("y", port("10.0.0.1", "TCP")),
        ],
    );
    let v = assert_only(&p, &[at(0), at(0)], |k| {
        matches!(k, ViolationKind::HostPort { .. })
    });
    assert_eq!(v.len(), 1);
    assert_valid(&p, &[at(0), at(1)]);
    let p = problem(
        vec![node("a", 4000, 8)],
        vec![
            with("x", port("10.0.0.2", "TCP")),
            with("y", port("10.0.0.1", "TCP")),
        ],
    );
    assert_valid(&p, &[at(0), at(0)]);
    let p = problem(
        vec![node("a", 4000, 8)],
        vec![with("x", port("", "UDP")), with("y", port("", "TCP"))],
    );
    assert_valid(&p, &[at(0), at(0)]);
    // Clash with a bound pod.
    let mut p = problem(vec![node("a", 4000, 8)], vec![with("y", port("", "TCP"))]);
    p.cluster
        .bind(with("bound", port("", "TCP")), NodeId::FIRST, None)
        .unwrap();
    assert_only(
        &p,
        &[at(0)],
        |k| matches!(k, ViolationKind::HostPort { other, .. } if other == "default/bound"),
    );
}

fn web(name: &str) -> Pod {
    Pod {
        labels: labels(&[("app", "web")]),
        ..pod(name, 100, 1)
    }
}

fn zoned(name: &str, zone: &str) -> plimsoll::model::Node {
    let mut n = node(name, 4000, 8);
    n.labels.insert(ZONE.into(), zone.into());
    n
}

#[test]
fn own_anti_affinity() {
    let mut x = web("x");
    x.pod_anti_affinity.push(term("app", "web", HOSTNAME));
    let y = web("y");
    let p = problem(
        vec![node("a", 4000, 8), node("b", 4000, 8)],
        vec![x.clone(), y.clone()],
    );
    let v = assert_only(&p, &[at(0), at(0)], |k| {
        matches!(k, ViolationKind::PodAntiAffinity { .. })
    });
    assert_eq!(v.len(), 1, "y has no term, only x's is broken");
    assert_valid(&p, &[at(0), at(1)]);
    // Against a bound pod.
    let mut p = problem(vec![node("a", 4000, 8)], vec![x]);
    p.cluster.bind(y, NodeId::FIRST, None).unwrap();
    assert_only(
        &p,
        &[at(0)],
        |k| matches!(k, ViolationKind::PodAntiAffinity { other, .. } if other == "default/y"),
    );
}

#[test]
fn existing_pod_anti_affinity() {
    let mut guard = pod("guard", 100, 1);
    guard.pod_anti_affinity.push(term("app", "web", ZONE));
    let mut p = problem(
        vec![zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b")],
        vec![web("x")],
    );
    p.cluster.bind(guard, NodeId::FIRST, None).unwrap();
    assert_only(
        &p,
        &[at(1)],
        |k| matches!(k, ViolationKind::ExistingPodAntiAffinity { other, .. } if other == "default/guard"),
    );
    assert_valid(&p, &[at(2)]);
}

#[test]
fn affinity_needs_a_partner_in_the_domain() {
    let mut x = pod("x", 100, 1);
    x.pod_affinity.push(term("app", "db", ZONE));
    let db = Pod {
        labels: labels(&[("app", "db")]),
        ..pod("db", 100, 1)
    };
    let mut p = problem(
        vec![zoned("a1", "a"), zoned("b1", "b"), node("nozone", 4000, 8)],
        vec![x],
    );
    p.cluster.bind(db, NodeId::FIRST, None).unwrap();
    assert_valid(&p, &[at(0)]);
    assert_only(&p, &[at(1)], |k| {
        matches!(k, ViolationKind::PodAffinity { .. })
    });
    assert_only(&p, &[at(2)], |k| {
        matches!(k, ViolationKind::MissingTopologyLabel { .. })
    });
}

#[test]
fn affinity_first_of_group_rule() {
    let mut x = web("x");
    x.pod_affinity.push(term("app", "web", ZONE));
    let y = Pod {
        name: "y".into(),
        ..x.clone()
    };
    let nodes = || vec![zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b")];
    let p = problem(nodes(), vec![x.clone(), y]);
    // Alone, a self-affine pod may start its group.
    assert_valid(&p, &[at(2), None]);
    // Together in one zone, each has a partner.
    assert_valid(&p, &[at(0), at(1)]);
    // In two zones, neither can have been first.
    let v = assert_only(&p, &[at(0), at(2)], |k| {
        matches!(k, ViolationKind::PodAffinity { .. })
    });
    assert_eq!(v.len(), 2);
    // A bound member elsewhere forbids the exception.
    let mut p = problem(nodes(), vec![x]);
    p.cluster
        .bind(web("old"), NodeId::from_index(2), None)
        .unwrap();
    assert_only(&p, &[at(0)], |k| {
        matches!(k, ViolationKind::PodAffinity { .. })
    });
}

fn spread_pod(name: &str) -> Pod {
    let mut p = web(name);
    p.topology_spread.push(TopologySpreadConstraint {
        max_skew: 1,
        topology_key: ZONE.into(),
        when_unsatisfiable: WhenUnsatisfiable::DoNotSchedule,
        selector: selector("app", "web"),
    });
    p
}

#[test]
fn topology_spread_skew() {
    let nodes = || {
        vec![
            zoned("a1", "a"),
            zoned("a2", "a"),
            zoned("b1", "b"),
            node("nozone", 4000, 8),
        ]
    };
    let p = problem(
        nodes(),
        vec![spread_pod("x"), spread_pod("y"), spread_pod("z")],
    );
    assert_valid(&p, &[at(0), at(1), at(2)]);
    let v = assert_only(&p, &[at(0), at(1), None], |k| {
        matches!(
            k,
            ViolationKind::TopologySpread {
                count: 2,
                min: 0,
                max_skew: 1,
                ..
            }
        )
    });
    assert_eq!(
        v.len(),
        2,
        "both pods in zone a are in the over-full domain"
    );
    assert_only(&p, &[at(3), None, None], |k| {
        matches!(k, ViolationKind::MissingTopologyLabel { .. })
    });
    // ScheduleAnyway is not a hard constraint.
    let mut soft = p.clone();
    for q in &mut soft.pending {
        q.topology_spread[0].when_unsatisfiable = WhenUnsatisfiable::ScheduleAnyway;
    }
    assert_valid(&soft, &[at(0), at(1), None]);
    // Ineligible nodes (node selector) do not make domains.
    let mut sel = p.clone();
    for q in &mut sel.pending {
        q.node_selector.insert(ZONE.into(), "a".into());
    }
    assert_valid(&sel, &[at(0), at(1), at(0)]);
}

#[test]
fn gang_partially_placed() {
    let gang = Some(Gang {
        name: "train".into(),
        min_member: 3,
    });
    let member = |n: &str| Pod {
        gang: gang.clone(),
        ..pod(n, 100, 1)
    };
    let p = problem(
        vec![node("a", 4000, 8)],
        vec![member("w0"), member("w1"), member("w2")],
    );
    let v = assert_only(
        &p,
        &[at(0), None, at(0)],
        |k| matches!(k, ViolationKind::GangPartial { placed: 2, min_member: 3, gang } if gang == "default/train"),
    );
    assert_eq!(v.len(), 1);
    assert_valid(&p, &[None, None, None]);
    assert_valid(&p, &[at(0), at(0), at(0)]);
}

#[test]
fn unknown_node_index_and_wrong_length() {
    let p = problem(
        vec![node("a", 4000, 8)],
        vec![pod("x", 100, 1), pod("y", 100, 1)],
    );
    let v = assert_only(
        &p,
        &[at(0), at(5)],
        |k| matches!(k, ViolationKind::UnknownNode { index, nodes: 1 } if index.index() == 5),
    );
    assert_eq!(v[0].pending_index, Some(1));
    assert_only(&p, &[at(0)], |k| {
        matches!(
            k,
            ViolationKind::WrongLength {
                expected: 2,
                got: 1
            }
        )
    });
    assert_only(&p, &[None, None, None], |k| {
        matches!(
            k,
            ViolationKind::WrongLength {
                expected: 2,
                got: 3
            }
        )
    });
}

#[test]
fn reports_every_violation_not_only_the_first() {
    let mut n = node("a", 1000, 8);
    n.taints.push(Taint {
        key: "k".into(),
        value: "v".into(),
        effect: TaintEffect::NoSchedule,
    });
    let mut x = pod("x", 2000, 1);
    x.node_selector.insert("disk".into(), "ssd".into());
    let p = problem(vec![n], vec![x, pod("y", 100, 1)]);
    let v = violations(&p, &[at(0), at(9)]);
    let has = |f: fn(&ViolationKind) -> bool| v.iter().any(|x| f(&x.kind));
    assert!(
        has(|k| matches!(k, ViolationKind::OverCommitted { .. })),
        "{v:?}"
    );
    assert!(
        has(|k| matches!(k, ViolationKind::UntoleratedTaint { .. })),
        "{v:?}"
    );
    assert!(
        has(|k| matches!(k, ViolationKind::NodeSelector { .. })),
        "{v:?}"
    );
    assert!(
        has(|k| matches!(k, ViolationKind::UnknownNode { .. })),
        "{v:?}"
    );
    assert_eq!(v.len(), 4);
}

#[test]
fn violations_read_as_sentences() {
    let gang = Some(Gang {
        name: "train".into(),
        min_member: 3,
    });
    let member = |n: &str| Pod {
        gang: gang.clone(),
        ..pod(n, 100, 1)
    };
    let p = problem(
        vec![gpu_node("g", "T4", 1)],
        vec![member("w0"), member("w1"), member("w2")],
    );
    let v = violations(&p, &[at(0), None, None]);
    assert_eq!(
        v[0].to_string(),
        "pod default/w0: gang default/train has 1 member(s) placed but needs 3 placed together, or none"
    );
    let v = violations(&p, &[at(0)]);
    assert_eq!(
        v[0].to_string(),
        "the placement has 1 entries but there are 3 pending pods"
    );
    let p = problem(
        vec![gpu_node("g", "T4", 1)],
        vec![
            gpu_pod("x", GpuAmount::Shared(600), &[]),
            gpu_pod("y", GpuAmount::Shared(600), &[]),
        ],
    );
    let v = violations(&p, &[at_gpu(0, &[0]), at_gpu(0, &[0])]);
    assert_eq!(
        v[0].to_string(),
        "pod default/y on node g: GPU device 0 is over-shared: 1200 milli-GPU used of 1000"
    );
}

#[test]
fn affinity_group_split_over_two_zones_is_caught() {
    // r0 starts the group in zone a; r1 and r2 in zone b only have each other, but
    // whichever came first there already saw r0 elsewhere.
    let mut r = web("r0");
    r.pod_affinity.push(term("app", "web", ZONE));
    let rs: Vec<Pod> = (0..3)
        .map(|k| Pod {
            name: format!("r{k}"),
            ..r.clone()
        })
        .collect();
    let nodes = || vec![zoned("a1", "a"), zoned("b1", "b"), zoned("b2", "b")];
    let p = problem(nodes(), rs.clone());
    assert_valid(&p, &[at(1), at(2), at(1)]);
    let v = assert_only(&p, &[at(0), at(1), at(2)], |k| {
        matches!(k, ViolationKind::PodAffinity { .. })
    });
    assert_eq!(v.len(), 2, "{v:#?}");
    // A pod without the term, placed after r0, seeds zone b: r0, seed, r1, r2 is a
    // valid order.
    let mut with_seed = rs;
    with_seed.push(web("seed"));
    let p = problem(nodes(), with_seed);
    assert_valid(&p, &[at(0), at(1), at(2), at(2)]);
}

/// Two pods of 10^19 millicores on a node of `u64::MAX`: their sum wraps a `u64`, so a
/// validator summing in `u64` (wrapping or saturating) accepted both on the node.
#[test]
fn validator_sums_cannot_wrap_into_a_fit() {
    let big = 10_000_000_000_000_000_000;
    let p = problem(
        vec![node("n1", u64::MAX, 1)],
        vec![pod("x", big, 0), pod("y", big, 0)],
    );
    let v = assert_only(
        &p,
        &[at(0), at(0)],
        |k| matches!(k, ViolationKind::OverCommitted { resource, .. } if resource == "cpu"),
    );
    assert_eq!(v[0].pending_index, Some(1));
    assert_valid(&p, &[at(0), None]);
}

/// The same instance through every policy: none may put both pods on the node, and
/// every result passes the validator.
#[test]
fn no_policy_places_pods_whose_sum_wraps() {
    use plimsoll::place::{policy_by_name, PolicyOptions, POLICY_NAMES};
    let big = 10_000_000_000_000_000_000;
    let p = problem(
        vec![node("n1", u64::MAX, 1)],
        vec![pod("x", big, 0), pod("y", big, 0)],
    );
    for name in POLICY_NAMES {
        let out = policy_by_name(name, &PolicyOptions::default())
            .unwrap()
            .place(&p)
            .unwrap();
        assert_valid(&p, &out.placement);
        // Exact arithmetic fits one; the online engine caps amounts beyond MAX_AMOUNT
        // (2^62, more than any manifest or trace may carry) and may refuse both.
        assert!(out.placed() <= 1, "policy {name}");
    }
}
