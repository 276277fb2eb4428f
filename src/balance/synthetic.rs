//! A seeded skewed cluster for rebalancing measurements: identical nodes (16 cores,
//! 64 GiB) in three zones, a few *hot* nodes whose pods use more than they request and
//! many *cool* ones, filled with many small low-priority pods, fewer medium pods and a
//! few large high-priority ones. Some pods select a zone; the large pods of one service
//! carry hostname anti-affinity; one node is tainted and one cordoned.

use super::{PodUsage, Usage};
use crate::model::{
    LabelSelector, Node, Pod, PodAffinityTerm, Problem, Resources, Taint, TaintEffect,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Shape of a skewed cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct SkewSpec {
    /// Number of nodes.
    pub nodes: usize,
    /// Number of hot nodes (the first ones).
    pub hot: usize,
    /// RNG seed.
    pub seed: u64,
}

impl Default for SkewSpec {
    fn default() -> Self {
        SkewSpec {
            nodes: 40,
            hot: 8,
            seed: 1,
        }
    }
}

const NODE_CPU: u64 = 16_000;
const NODE_MEM: u64 = 64 << 30;
const ZONE: &str = "topology.kubernetes.io/zone";
const HOST: &str = "kubernetes.io/hostname";

fn node(i: usize) -> Node {
    let r = Resources {
        cpu_milli: NODE_CPU,
        memory_bytes: NODE_MEM,
        pods: 110,
        ephemeral_storage_bytes: 100 << 30,
        extended: Default::default(),
    };
    let name = format!("node-{i:03}");
    Node {
        labels: [
            (ZONE.to_string(), format!("zone-{}", i % 3)),
            (HOST.to_string(), name.clone()),
        ]
        .into(),
        name,
        capacity: r.clone(),
        allocatable: r,
        ..Default::default()
    }
}

/// Generates the cluster (every pod bound) and its predicted usage.
pub fn skewed_cluster(spec: &SkewSpec) -> (Problem, Usage) {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut nodes: Vec<Node> = (0..spec.nodes).map(node).collect();
    if spec.nodes > spec.hot + 2 {
        nodes[spec.nodes - 1].taints.push(Taint {
            key: "dedicated".into(),
            value: "infra".into(),
            effect: TaintEffect::NoSchedule,
        });
        nodes[spec.nodes - 2].unschedulable = true;
    }
    let mut pods = Vec::new();
    let mut ratios = Vec::new();
    for (n, nd) in nodes.iter().enumerate() {
        let hot = n < spec.hot;
        // Requests fill 85-95% of a hot node, 45-70% of a cool one.
        let target = if hot {
            rng.gen_range(0.85..0.95)
        } else {
            rng.gen_range(0.45..0.70)
        } * NODE_CPU as f64;
        let mut requested = 0u64;
        let mut k = 0;
        let mut has_web = false;
        loop {
            let class: f64 = rng.gen();
            let (cpu, prio, app) = if class < 0.7 {
                (rng.gen_range(1..=5) * 100, 0, "batch")
            } else if class < 0.92 {
                (rng.gen_range(10..=20) * 100, 1000, "api")
            } else if !has_web {
                (rng.gen_range(20..=40) * 100, 10_000, "web")
            } else {
                (rng.gen_range(20..=40) * 100, 10_000, "db")
            };
            if requested + cpu > target as u64 {
                break;
            }
            requested += cpu;
            let mut pod = Pod {
                name: format!("{app}-{n:03}-{k}"),
                namespace: "default".into(),
                labels: [("app".to_string(), app.to_string())].into(),
                requests: Resources::cpu_mem(cpu, cpu << 22),
                node_name: Some(nd.name.clone()),
                priority: prio,
                ..Default::default()
            };
            if app == "web" {
                has_web = true;
                pod.pod_anti_affinity.push(PodAffinityTerm {
                    selector: LabelSelector {
                        match_labels: [("app".to_string(), "web".to_string())].into(),
                        ..Default::default()
                    },
                    namespaces: vec![],
                    topology_key: HOST.into(),
                });
            }
            if app == "api" && rng.gen_bool(0.3) {
                pod.node_selector
                    .insert(ZONE.to_string(), nd.labels[ZONE].clone());
            }
            pods.push(pod);
            // Hot nodes: pods use 95-125% of their request; cool: 30-70%.
            ratios.push(if hot {
                rng.gen_range(0.95..1.25)
            } else {
                rng.gen_range(0.3..0.7)
            });
            k += 1;
        }
    }
    let problem = Problem::from_parts(nodes, pods).expect("generated pods fit");
    let mut usage = Usage::default();
    for ((id, pod, _), r) in problem.cluster.bound_pods().zip(&ratios) {
        usage.insert(
            id,
            PodUsage {
                cpu_milli: (pod.requests.cpu_milli as f64 * r) as u64,
                memory_bytes: Some((pod.requests.memory_bytes as f64 * r.min(1.0)) as u64),
            },
        );
    }
    (problem, usage)
}
