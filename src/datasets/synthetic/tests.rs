use super::*;
use crate::place::FilterContext;

fn small(seed: u64) -> SyntheticConfig {
    SyntheticConfig {
        seed,
        nodes: 60,
        ..SyntheticConfig::default()
    }
}

#[test]
fn same_seed_same_output() {
    let a = generate(&small(7)).unwrap();
    let b = generate(&small(7)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn different_seeds_differ() {
    let (na, pa) = generate(&small(1)).unwrap();
    let (nb, pb) = generate(&small(2)).unwrap();
    assert!(na != nb || pa != pb);
    assert_ne!(pa, pb);
}

#[test]
fn parameters_are_respected() {
    let cfg = SyntheticConfig {
        nodes: 150,
        zones: 4,
        gpu_taint_fraction: 0.5,
        cordoned_fraction: 0.04,
        ..SyntheticConfig::default()
    };
    let (nodes, pods) = generate(&cfg).unwrap();
    assert_eq!(nodes.len(), 150);
    let zones: std::collections::BTreeSet<_> =
        nodes.iter().map(|n| n.labels[ZONE_LABEL].clone()).collect();
    assert_eq!(zones.len(), 4);
    assert_eq!(nodes.iter().filter(|n| n.unschedulable).count(), 6);
    let gpu_nodes = nodes.iter().filter(|n| n.gpus.is_some()).count();
    let tainted = nodes.iter().filter(|n| !n.taints.is_empty()).count();
    assert_eq!(tainted, (gpu_nodes as f64 * 0.5).round() as usize);
    for n in &nodes {
        assert_eq!(n.labels[HOSTNAME_LABEL], n.name);
        assert_eq!(
            n.labels.get(GPU_PRODUCT_LABEL).map(String::as_str),
            n.gpu_model()
        );
    }
    // Node types follow the openb apportionment exactly.
    let counts = apportion(150);
    for (ty, want) in OPENB_NODE_TYPES.iter().zip(counts) {
        let got = nodes
            .iter()
            .filter(|n| {
                n.capacity.cpu_milli == ty.cpu_milli
                    && n.capacity.memory_bytes == ty.memory_mib * MIB
                    && n.gpu_count() == ty.gpus
                    && n.gpu_model().unwrap_or("") == ty.model
            })
            .count();
        assert_eq!(got, want, "{ty:?}");
    }
    // One bound agent per node, then pending pods.
    let bound = pods.iter().filter(|p| p.node_name.is_some()).count();
    assert_eq!(bound, 150);
    // GPU demand reaches the target and overshoots by less than one pod's request.
    let total_gpu: u64 = nodes.iter().map(|n| u64::from(n.gpu_count()) * 1000).sum();
    let demand: u64 = pods.iter().map(|p| p.gpu.amount.total_milli()).sum();
    let target = (cfg.gpu_demand * total_gpu as f64) as u64;
    assert!(
        demand >= target && demand < target + 8000,
        "{demand} vs {target}"
    );
    // CPU-only demand reaches its target.
    let total_cpu: u64 = nodes.iter().map(|n| n.allocatable.cpu_milli).sum();
    let cpu_demand: u64 = pods
        .iter()
        .filter(|p| p.node_name.is_none() && !p.gpu.amount.is_some())
        .map(|p| p.requests.cpu_milli)
        .sum();
    assert!(cpu_demand as f64 >= cfg.cpu_demand * total_cpu as f64);
}

#[test]
fn workload_features_are_present() {
    let (_, pods) = generate(&SyntheticConfig::default()).unwrap();
    let pending: Vec<&Pod> = pods.iter().filter(|p| p.node_name.is_none()).collect();
    assert!(pending.iter().any(|p| !p.pod_anti_affinity.is_empty()));
    assert!(pending.iter().any(|p| !p.topology_spread.is_empty()));
    assert!(pending
        .iter()
        .any(|p| matches!(p.gpu.amount, GpuAmount::Shared(_))));
    assert!(pending
        .iter()
        .any(|p| matches!(p.gpu.amount, GpuAmount::Whole(_))));
    assert!(pending.iter().any(|p| !p.gpu.models.is_empty()));
    assert!(pending.iter().any(|p| p.gang.is_some()));
    assert!(pending.iter().any(|p| !p.node_selector.is_empty()));
    assert!(pending.iter().any(|p| p.required_node_affinity.is_some()));
    let prios: std::collections::BTreeSet<i32> = pending.iter().map(|p| p.priority).collect();
    assert!(prios.len() >= 4, "{prios:?}");
    // Pod keys are unique.
    let keys: std::collections::BTreeSet<String> = pods.iter().map(Pod::key).collect();
    assert_eq!(keys.len(), pods.len());
    // Gangs name their real size.
    for p in &pending {
        if let Some(g) = &p.gang {
            let members = pending
                .iter()
                .filter(|q| q.gang.as_ref().is_some_and(|h| h.name == g.name))
                .count();
            assert_eq!(members as u32, g.min_member);
        }
    }
}

/// Every pending pod fits on at least one node of the empty cluster (and of the cluster
/// with the node agents bound): no impossible requests.
#[test]
fn every_pod_is_placeable_alone() {
    for (seed, nodes) in [(1, 60), (2, 200), (3, 7), (4, 1)] {
        let cfg = SyntheticConfig {
            seed,
            nodes,
            ..SyntheticConfig::default()
        };
        let problem = problem(&cfg).unwrap();
        let empty = problem.cluster.without_pods();
        for cluster in [&empty, &problem.cluster] {
            for pod in &problem.pending {
                let ctx = FilterContext::new(cluster, pod);
                let ok = cluster.node_ids().any(|n| ctx.check(n).is_ok());
                assert!(ok, "seed {seed}, {nodes} nodes: {} fits nowhere", pod.key());
            }
        }
    }
}

#[test]
fn scaled_builds_large_clusters() {
    let (nodes, pods) = scaled(5000, 9).unwrap();
    assert_eq!(nodes.len(), 5000);
    assert!(pods.len() > 5000);
}

#[test]
fn bad_parameters_are_rejected() {
    for cfg in [
        SyntheticConfig {
            nodes: 0,
            ..Default::default()
        },
        SyntheticConfig {
            zones: 0,
            ..Default::default()
        },
        SyntheticConfig {
            share_fraction: 1.5,
            ..Default::default()
        },
        SyntheticConfig {
            gpu_demand: -1.0,
            ..Default::default()
        },
        SyntheticConfig {
            max_replicas: 1,
            ..Default::default()
        },
    ] {
        assert!(matches!(
            generate(&cfg),
            Err(SyntheticError::InvalidParameter { .. })
        ));
    }
}
