//! Shared test helpers: small builders for hand-made instances and a seeded random
//! instance generator (ChaCha8) covering every constraint the engine knows, plus a
//! proptest strategy over generator seeds.
#![allow(dead_code)]

use plimsoll::model::{
    Binding, Cluster, Gang, GpuAmount, HostPort, LabelSelector, Labels, Node, NodeGpus, NodeId,
    NodeSelector, NodeSelectorTerm, Operator, Pod, PodAffinityTerm, Problem, Requirement,
    Resources, Taint, TaintEffect, Toleration, TolerationOperator, TopologySpreadConstraint,
    WhenUnsatisfiable,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const GIB: u64 = 1 << 30;
pub const HOSTNAME: &str = "kubernetes.io/hostname";
pub const ZONE: &str = "topology.kubernetes.io/zone";

/// A node with `cpu_milli`, `mem_gib`, 110 pods, 100 GiB ephemeral storage, its hostname
/// label and no GPUs.
pub fn node(name: &str, cpu_milli: u64, mem_gib: u64) -> Node {
    Node::new(name, cpu_milli, mem_gib * GIB).with_ephemeral_storage(100 * GIB)
}

/// A node with `count` GPUs of `model`.
pub fn gpu_node(name: &str, model: &str, count: u32) -> Node {
    node(name, 16000, 64).with_gpus(model, count)
}

/// A pod in `default` with cpu and memory requests.
pub fn pod(name: &str, cpu_milli: u64, mem_gib: u64) -> Pod {
    Pod::new(name, cpu_milli, mem_gib * GIB)
}

/// A pod asking for GPUs.
pub fn gpu_pod(name: &str, amount: GpuAmount, models: &[&str]) -> Pod {
    pod(name, 100, 1).with_gpu(amount).with_gpu_models(models)
}

pub fn labels(kv: &[(&str, &str)]) -> Labels {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn req(key: &str, operator: Operator, values: &[&str]) -> Requirement {
    Requirement {
        key: key.into(),
        operator,
        values: values.iter().map(|s| s.to_string()).collect(),
    }
}

/// A label selector `key=value`.
pub fn selector(key: &str, value: &str) -> LabelSelector {
    LabelSelector {
        match_labels: labels(&[(key, value)]),
        match_expressions: vec![],
    }
}

pub fn term(key: &str, value: &str, topology_key: &str) -> PodAffinityTerm {
    PodAffinityTerm {
        selector: selector(key, value),
        namespaces: vec![],
        topology_key: topology_key.into(),
    }
}

/// A binding to the node in slot `node` (the `node`-th node of the cluster).
pub fn at(node: usize) -> Option<Binding> {
    Some(Binding {
        node: NodeId::from_index(node),
        gpu_devices: vec![],
    })
}

pub fn at_gpu(node: usize, devices: &[u32]) -> Option<Binding> {
    Some(Binding {
        node: NodeId::from_index(node),
        gpu_devices: devices.to_vec(),
    })
}

pub fn problem(nodes: Vec<Node>, pending: Vec<Pod>) -> Problem {
    Problem {
        cluster: Cluster::new(nodes).expect("distinct node names"),
        pending,
    }
}

/// Size of random instances.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// Node count range (inclusive).
    pub nodes: (usize, usize),
    /// Group (deployment) count range (inclusive).
    pub groups: (usize, usize),
    /// Replicas per group, at most.
    pub max_replicas: usize,
}

pub const SMALL: Size = Size {
    nodes: (2, 6),
    groups: (1, 5),
    max_replicas: 4,
};

pub const MEDIUM: Size = Size {
    nodes: (3, 16),
    groups: (2, 10),
    max_replicas: 6,
};

pub const LARGE: Size = Size {
    nodes: (20, 60),
    groups: (10, 30),
    max_replicas: 10,
};

const MODELS: &[&str] = &["T4", "V100", "A100"];
const ZONES: &[&str] = &["z-a", "z-b", "z-c"];

fn random_node(rng: &mut ChaCha8Rng, i: usize, zones: usize) -> Node {
    let name = format!("n{i}");
    let mut n = node(
        &name,
        *[2000u64, 4000, 8000, 16000].choose(rng).unwrap(),
        *[4u64, 8, 16, 32].choose(rng).unwrap(),
    );
    if rng.gen_bool(0.2) {
        n.allocatable.pods = rng.gen_range(1..5);
    }
    if rng.gen_bool(0.2) {
        n.allocatable.ephemeral_storage_bytes = rng.gen_range(1..20) * GIB;
    }
    if rng.gen_bool(0.3) {
        n.allocatable
            .extended
            .insert("example.com/foo".into(), rng.gen_range(0..4));
    }
    if rng.gen_bool(0.9) {
        let z = ZONES[rng.gen_range(0..zones)];
        n.labels.insert(ZONE.into(), z.into());
    }
    n.labels
        .insert("gen".into(), rng.gen_range(1..7).to_string());
    if rng.gen_bool(0.5) {
        let d = if rng.gen_bool(0.5) { "ssd" } else { "hdd" };
        n.labels.insert("disk".into(), d.into());
    }
    if rng.gen_bool(0.4) {
        n.gpus = Some(NodeGpus {
            model: MODELS.choose(rng).unwrap().to_string(),
            count: *[1u32, 2, 4, 8].choose(rng).unwrap(),
        });
    }
    if rng.gen_bool(0.25) {
        let (key, value, effect) = *[
            ("dedicated", "gpu", TaintEffect::NoSchedule),
            ("maint", "true", TaintEffect::NoExecute),
            ("spot", "yes", TaintEffect::PreferNoSchedule),
        ]
        .choose(rng)
        .unwrap();
        n.taints.push(Taint {
            key: key.into(),
            value: value.into(),
            effect,
        });
    }
    n.unschedulable = rng.gen_bool(0.05);
    n
}

fn random_requirement(rng: &mut ChaCha8Rng, node_names: &[String]) -> (bool, Requirement) {
    // (is a matchFields requirement, requirement)
    match rng.gen_range(0..7) {
        0 => {
            let zs: Vec<&str> = ZONES.choose_multiple(rng, 2).copied().collect();
            (false, req(ZONE, Operator::In, &zs))
        }
        1 => (false, req("disk", Operator::NotIn, &["hdd"])),
        2 => (false, req("disk", Operator::Exists, &[])),
        3 => (false, req("disk", Operator::DoesNotExist, &[])),
        4 => (
            false,
            req("gen", Operator::Gt, &[&rng.gen_range(0..5).to_string()]),
        ),
        5 => (
            false,
            req("gen", Operator::Lt, &[&rng.gen_range(2..7).to_string()]),
        ),
        _ => {
            let names: Vec<&str> = node_names
                .choose_multiple(rng, 2)
                .map(|s| s.as_str())
                .collect();
            (true, req("metadata.name", Operator::In, &names))
        }
    }
}

fn random_affinity(rng: &mut ChaCha8Rng, node_names: &[String]) -> NodeSelector {
    let terms = (0..rng.gen_range(1..3))
        .map(|_| {
            let mut t = NodeSelectorTerm::default();
            for _ in 0..rng.gen_range(1..3) {
                let (field, r) = random_requirement(rng, node_names);
                if field {
                    t.match_fields.push(r);
                } else {
                    t.match_expressions.push(r);
                }
            }
            t
        })
        .collect();
    NodeSelector { terms }
}

fn random_tolerations(rng: &mut ChaCha8Rng) -> Vec<Toleration> {
    let mut out = Vec::new();
    if rng.gen_bool(0.3) {
        out.push(Toleration {
            key: "dedicated".into(),
            operator: TolerationOperator::Equal,
            value: "gpu".into(),
            effect: Some(TaintEffect::NoSchedule),
        });
    }
    if rng.gen_bool(0.2) {
        out.push(Toleration {
            key: "maint".into(),
            operator: TolerationOperator::Exists,
            value: String::new(),
            effect: None,
        });
    }
    if rng.gen_bool(0.03) {
        out.push(Toleration {
            operator: TolerationOperator::Exists,
            ..Default::default()
        });
    }
    out
}

/// The template of one group of identical replicas (like a Deployment): every pod that
/// matches the group's `app` label carries the same spread, affinity and node constraints,
/// so final-state and one-at-a-time semantics agree.
fn random_template(rng: &mut ChaCha8Rng, g: usize, groups: usize, node_names: &[String]) -> Pod {
    let app = format!("g{g}");
    let ns = if rng.gen_bool(0.8) {
        "default"
    } else {
        "team-b"
    };
    let mut p = Pod {
        name: app.clone(),
        namespace: ns.into(),
        labels: labels(&[("app", &app)]),
        requests: Resources::cpu_mem(rng.gen_range(1..30) * 100, rng.gen_range(1..8) * GIB / 2),
        priority: rng.gen_range(0..3) * 100,
        ..Default::default()
    };
    if rng.gen_bool(0.2) {
        p.requests.ephemeral_storage_bytes = rng.gen_range(1..10) * GIB;
    }
    if rng.gen_bool(0.15) {
        p.requests
            .extended
            .insert("example.com/foo".into(), rng.gen_range(1..3));
    }
    if rng.gen_bool(0.35) {
        p.gpu.amount = match rng.gen_range(0..3) {
            0 | 1 => GpuAmount::Shared(rng.gen_range(1..10) * 100),
            _ => GpuAmount::Whole(rng.gen_range(1..3)),
        };
        if rng.gen_bool(0.4) {
            p.gpu.models = MODELS
                .choose_multiple(rng, 2)
                .map(|m| m.to_string())
                .collect();
        }
    }
    if rng.gen_bool(0.15) {
        let d = if rng.gen_bool(0.7) { "ssd" } else { "hdd" };
        p.node_selector.insert("disk".into(), d.into());
    }
    if rng.gen_bool(0.3) {
        p.required_node_affinity = Some(random_affinity(rng, node_names));
    }
    p.tolerations = random_tolerations(rng);
    if rng.gen_bool(0.2) {
        let key = if rng.gen_bool(0.6) { HOSTNAME } else { ZONE };
        let mut t = term("app", &app, key);
        if rng.gen_bool(0.2) {
            t.namespaces = vec!["default".into(), "team-b".into()];
        }
        p.pod_anti_affinity.push(t);
    }
    if rng.gen_bool(0.15) {
        // At most one affinity term: to its own group, or to another group.
        let target = if rng.gen_bool(0.6) {
            app.clone()
        } else {
            format!("g{}", rng.gen_range(0..groups))
        };
        let key = if rng.gen_bool(0.7) { ZONE } else { HOSTNAME };
        p.pod_affinity.push(term("app", &target, key));
    }
    if rng.gen_bool(0.25) {
        p.topology_spread.push(TopologySpreadConstraint {
            max_skew: rng.gen_range(1..3),
            topology_key: if rng.gen_bool(0.6) { ZONE } else { HOSTNAME }.into(),
            when_unsatisfiable: if rng.gen_bool(0.7) {
                WhenUnsatisfiable::DoNotSchedule
            } else {
                WhenUnsatisfiable::ScheduleAnyway
            },
            selector: selector("app", &app),
        });
    }
    if rng.gen_bool(0.1) {
        p.host_ports.push(HostPort {
            port: *[8080u16, 9090].choose(rng).unwrap(),
            protocol: "TCP".into(),
            host_ip: if rng.gen_bool(0.8) {
                String::new()
            } else {
                "10.0.0.1".into()
            },
        });
    }
    p
}

/// A random problem from `seed`: nodes with cpu/memory/pods/storage/extended resources,
/// GPUs of several models, zone/hostname/disk/gen labels (some nodes lack the zone),
/// taints and cordons; groups of replicas with GPU shares or whole GPUs and model
/// constraints, node selectors, required node affinity with every operator and
/// `matchFields`, tolerations, anti-affinity, affinity, spread, host ports, priorities and
/// gangs. Some replicas of non-gang groups are already bound.
pub fn random_problem(seed: u64, size: Size) -> Problem {
    generate(seed, size, true)
}

/// Like [`random_problem`] but without any inter-pod constraint (affinity, anti-affinity,
/// spread), bound pods included: every node's feasibility is then independent of the
/// other nodes.
pub fn random_problem_without_inter_pod(seed: u64, size: Size) -> Problem {
    generate(seed, size, false)
}

fn generate(seed: u64, size: Size, inter_pod: bool) -> Problem {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let zones = rng.gen_range(1..=ZONES.len());
    let n_nodes = rng.gen_range(size.nodes.0..=size.nodes.1);
    let nodes: Vec<Node> = (0..n_nodes)
        .map(|i| random_node(&mut rng, i, zones))
        .collect();
    let node_names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let mut cluster = Cluster::new(nodes).expect("distinct names");
    let groups = rng.gen_range(size.groups.0..=size.groups.1);
    let mut pending = Vec::new();
    for g in 0..groups {
        let mut template = random_template(&mut rng, g, groups, &node_names);
        if !inter_pod {
            template.pod_affinity.clear();
            template.pod_anti_affinity.clear();
            template.topology_spread.clear();
        }
        let replicas = rng.gen_range(1..=size.max_replicas);
        let gang = (replicas > 1 && rng.gen_bool(0.2)).then(|| Gang {
            name: format!("gang-{g}"),
            min_member: rng.gen_range(2..=replicas as u32),
        });
        for k in 0..replicas {
            let mut p = template.clone();
            p.name = format!("{}-{k}", template.name);
            p.gang = gang.clone();
            if gang.is_none() && rng.gen_bool(0.25) {
                let n = NodeId::from_index(rng.gen_range(0..n_nodes));
                if cluster.bind(p.clone(), n, None).is_ok() {
                    continue;
                }
            }
            pending.push(p);
        }
    }
    pending.shuffle(&mut rng);
    Problem { cluster, pending }
}

/// True if the problem has any inter-pod constraint (affinity, anti-affinity, spread),
/// among pending or bound pods.
pub fn has_inter_pod(problem: &Problem) -> bool {
    problem
        .pending
        .iter()
        .any(|p| p.has_inter_pod_constraints())
        || problem
            .cluster
            .bound_pods()
            .any(|(_, p, _)| p.has_inter_pod_constraints())
}

/// A proptest strategy of random problems (by generator seed).
pub fn problems(size: Size) -> impl proptest::strategy::Strategy<Value = Problem> {
    use proptest::strategy::Strategy;
    proptest::num::u64::ANY.prop_map(move |seed| random_problem(seed, size))
}
