//! Explanations of pending pods: kube-scheduler's summary text checked literally.

mod common;

use common::*;

/// Node slots of ids (the clusters here never remove nodes).
fn idx(ids: &[NodeId]) -> Vec<usize> {
    ids.iter().map(|n| n.index()).collect()
}

fn slots(v: &[(NodeId, Vec<Reason>)]) -> Vec<(usize, Vec<Reason>)> {
    v.iter().map(|(n, r)| (n.index(), r.clone())).collect()
}
use plimsoll::model::{
    Gang, Node, NodeId, NodeSelector, NodeSelectorTerm, Operator, Pod, Taint, TaintEffect,
};
use plimsoll::place::explain::explain;
use plimsoll::place::Reason;

fn gpu_tainted(name: &str) -> Node {
    let mut n = node(name, 8000, 16);
    n.taints.push(Taint {
        key: "dedicated".into(),
        value: "gpu".into(),
        effect: TaintEffect::NoSchedule,
    });
    n
}

#[test]
fn insufficient_cpu_and_taints_counted_and_sorted() {
    let p = problem(
        vec![node("a", 1000, 16), gpu_tainted("t"), node("b", 1000, 16)],
        vec![pod("x", 2000, 1)],
    );
    let e = explain(&p, &[None]);
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].summary,
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu."
    );
    assert_eq!(e[0].pending_index, 0);
    assert_eq!(e[0].pod, "default/x");
    assert!(e[0].feasible_nodes.is_empty());
    assert_eq!(
        slots(&e[0].per_node),
        vec![
            (0, vec![Reason::Insufficient("cpu".into())]),
            (
                1,
                vec![Reason::UntoleratedTaint {
                    key: "dedicated".into(),
                    value: "gpu".into()
                }]
            ),
            (2, vec![Reason::Insufficient("cpu".into())]),
        ]
    );
}

#[test]
fn reasons_sort_as_strings_like_go() {
    // 12 sorts before 3 as a string, as Go's sort.Strings puts it.
    let mut nodes: Vec<Node> = (0..12)
        .map(|i| node(&format!("small{i}"), 500, 16))
        .collect();
    nodes.extend((0..3).map(|i| gpu_tainted(&format!("t{i}"))));
    let p = problem(nodes, vec![pod("x", 2000, 1)]);
    assert_eq!(
        explain(&p, &[None])[0].summary,
        "0/15 nodes are available: 12 Insufficient cpu, 3 node(s) had untolerated taint {dedicated: gpu}."
    );
}

#[test]
fn several_resources_on_one_node_count_separately() {
    let p = problem(vec![node("a", 1000, 1)], vec![pod("x", 2000, 2)]);
    assert_eq!(
        explain(&p, &[None])[0].summary,
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."
    );
}

#[test]
fn node_affinity_mismatch() {
    let mut x = pod("x", 100, 1);
    x.required_node_affinity = Some(NodeSelector {
        terms: vec![NodeSelectorTerm {
            match_expressions: vec![req(ZONE, Operator::In, &["z-a"])],
            match_fields: vec![],
        }],
    });
    let p = problem(
        vec![node("a", 4000, 8), node("b", 4000, 8), node("c", 100, 8)],
        vec![x],
    );
    assert_eq!(
        explain(&p, &[None])[0].summary,
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
    );
}

#[test]
fn placement_is_applied_before_explaining() {
    let p = problem(
        vec![node("a", 3000, 8)],
        vec![pod("x", 2000, 1), pod("y", 2000, 1)],
    );
    let e = explain(&p, &[at(0), None]);
    assert_eq!(e.len(), 1, "only the left-out pod is explained");
    assert_eq!(e[0].pending_index, 1);
    assert_eq!(e[0].summary, "0/1 nodes are available: 1 Insufficient cpu.");
}

#[test]
fn anti_affinity_and_gpu_reasons() {
    let web = |n: &str| Pod {
        labels: labels(&[("app", "web")]),
        ..pod(n, 100, 1)
    };
    let mut x = web("x");
    x.pod_anti_affinity.push(term("app", "web", HOSTNAME));
    let mut p = problem(
        vec![node("a", 4000, 8), gpu_node("g", "T4", 1)],
        vec![
            x,
            gpu_pod("y", plimsoll::model::GpuAmount::Whole(1), &["A100"]),
        ],
    );
    p.cluster
        .bind(web("old"), NodeId::from_index(0), None)
        .unwrap();
    p.cluster
        .bind(web("old2"), NodeId::from_index(1), None)
        .unwrap();
    let e = explain(&p, &[None, None]);
    assert_eq!(
        e[0].summary,
        "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules."
    );
    assert_eq!(
        e[1].summary,
        "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) didn't have the requested GPU model."
    );
}

#[test]
fn gang_that_cannot_be_placed_together() {
    let gang = Some(Gang {
        name: "train".into(),
        min_member: 4,
    });
    let members: Vec<Pod> = (0..4)
        .map(|i| Pod {
            gang: gang.clone(),
            ..pod(&format!("w{i}"), 1000, 1)
        })
        .collect();
    // Room for two members only.
    let p = problem(vec![node("a", 1000, 8), node("b", 1000, 8)], members);
    let e = explain(&p, &[None, None, None, None]);
    assert_eq!(e.len(), 4);
    for x in &e {
        assert_eq!(
            x.summary,
            "gang default/train needs 4 members placed together; only 2 could be"
        );
        assert_eq!(idx(&x.feasible_nodes), vec![0, 1]);
    }
}

#[test]
fn fitting_pod_left_out_is_not_called_unschedulable() {
    let p = problem(
        vec![node("a", 4000, 8), node("b", 1000, 8), node("c", 4000, 8)],
        vec![pod("x", 2000, 1)],
    );
    let e = explain(&p, &[None]);
    assert_eq!(
        e[0].summary,
        "fits on 2 node(s) but was not placed by the policy"
    );
    assert_eq!(idx(&e[0].feasible_nodes), vec![0, 2]);
    assert_eq!(
        slots(&e[0].per_node),
        vec![(1, vec![Reason::Insufficient("cpu".into())])]
    );
}

#[test]
fn no_nodes_at_all() {
    let p = problem(vec![], vec![pod("x", 100, 1)]);
    assert_eq!(
        explain(&p, &[None])[0].summary,
        "no nodes available to schedule pods"
    );
}

#[test]
fn placed_pods_get_no_explanation() {
    let p = problem(vec![node("a", 4000, 8)], vec![pod("x", 100, 1)]);
    assert!(explain(&p, &[at(0)]).is_empty());
}

#[test]
fn pod_affinity_mismatch() {
    let zoned = |name: &str, zone: &str| {
        let mut n = node(name, 4000, 8);
        n.labels.insert(ZONE.into(), zone.into());
        n
    };
    let mut x = pod("x", 100, 1);
    x.pod_affinity.push(term("app", "db", ZONE));
    let mut p = problem(
        vec![zoned("a1", "a"), zoned("b1", "b"), node("nozone", 4000, 8)],
        vec![x],
    );
    let db = Pod {
        labels: labels(&[("app", "db")]),
        ..pod("db", 3500, 1)
    };
    // The only db runs in zone a, whose node is now full.
    p.cluster.bind(db, NodeId::from_index(0), None).unwrap();
    let mut x2 = p.pending[0].clone();
    x2.requests.cpu_milli = 1000;
    p.pending[0] = x2;
    assert_eq!(
        explain(&p, &[None])[0].summary,
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match pod affinity rules."
    );
}

#[test]
fn topology_spread_mismatch() {
    use plimsoll::model::{TopologySpreadConstraint, WhenUnsatisfiable};
    let zoned = |name: &str, zone: &str| {
        let mut n = node(name, 4000, 8);
        n.labels.insert(ZONE.into(), zone.into());
        n
    };
    let web = |name: &str| {
        let mut p = Pod {
            labels: labels(&[("app", "web")]),
            ..pod(name, 100, 1)
        };
        p.topology_spread.push(TopologySpreadConstraint {
            max_skew: 1,
            topology_key: ZONE.into(),
            when_unsatisfiable: WhenUnsatisfiable::DoNotSchedule,
            selector: selector("app", "web"),
        });
        p
    };
    // Zone b's node is full, so the second replica may go neither to zone a (skew 2)
    // nor to zone b; the zoneless node lacks the key.
    let mut b1 = zoned("b1", "b");
    b1.allocatable.cpu_milli = 50;
    let p = problem(
        vec![zoned("a1", "a"), b1, node("nozone", 4000, 8)],
        vec![web("w0"), web("w1")],
    );
    let e = explain(&p, &[at(0), None]);
    assert_eq!(
        e[0].summary,
        "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match pod topology spread constraints, \
         1 node(s) didn't match pod topology spread constraints (missing required label)."
    );
}
