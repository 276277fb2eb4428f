//! Quick start: build a small GPU cluster in code, place its pods with two greedy
//! policies, check both placements with the independent validator, and compare them.
//!
//! Run with `cargo run --release --example quickstart`. The example asserts its own
//! results: every pod is placed, both placements are valid, and best-fit packs the pods
//! onto no more nodes than least-allocated (which spreads them).

use anyhow::{ensure, Result};
use plimsoll::model::{GpuAmount, GpuRequest, Node, NodeGpus, Pod, Problem, Resources};
use plimsoll::place::validate::validate;
use plimsoll::place::{policy_by_name, PolicyOptions};
use std::collections::BTreeSet;

const GIB: u64 = 1 << 30;

fn node(name: &str, cores: u64, memory_gib: u64, gpus: Option<(&str, u32)>) -> Node {
    let r = Resources {
        cpu_milli: cores * 1000,
        memory_bytes: memory_gib * GIB,
        pods: 110,
        ephemeral_storage_bytes: 100 * GIB,
        extended: Default::default(),
    };
    Node {
        name: name.into(),
        capacity: r.clone(),
        allocatable: r,
        gpus: gpus.map(|(model, count)| NodeGpus {
            model: model.into(),
            count,
        }),
        labels: [("kubernetes.io/hostname".to_string(), name.to_string())].into(),
        ..Default::default()
    }
}

fn pod(name: &str, cpu_milli: u64, memory_gib: u64, gpu: GpuAmount) -> Pod {
    Pod {
        name: name.into(),
        namespace: "default".into(),
        requests: Resources::cpu_mem(cpu_milli, memory_gib * GIB),
        gpu: GpuRequest {
            amount: gpu,
            models: Vec::new(),
        },
        ..Default::default()
    }
}

fn main() -> Result<()> {
    let nodes = vec![
        node("cpu-1", 16, 64, None),
        node("cpu-2", 16, 64, None),
        node("gpu-1", 32, 128, Some(("T4", 2))),
        node("gpu-2", 32, 128, Some(("T4", 2))),
    ];
    let mut pods: Vec<Pod> = (0..6)
        .map(|i| pod(&format!("web-{i}"), 1000, 2, GpuAmount::None))
        .collect();
    pods.push(pod("infer-0", 2000, 8, GpuAmount::Shared(500)));
    pods.push(pod("infer-1", 2000, 8, GpuAmount::Shared(300)));
    pods.push(pod("train-0", 8000, 32, GpuAmount::Whole(1)));
    let problem = Problem::from_parts(nodes, pods)?;

    let opts = PolicyOptions::default();
    let mut nodes_used = Vec::new();
    for name in ["best-fit", "least-allocated"] {
        let outcome = policy_by_name(name, &opts)?.place(&problem)?;
        if let Err(violations) = validate(&problem, &outcome.placement) {
            for v in &violations {
                eprintln!("{name}: {v}");
            }
            anyhow::bail!("{name} returned an invalid placement");
        }
        ensure!(
            outcome.placed() == problem.pending.len(),
            "{name} left {} pods out",
            problem.pending.len() - outcome.placed()
        );
        let used: BTreeSet<usize> = outcome.placement.iter().flatten().map(|b| b.node).collect();
        println!(
            "{name}: all {} pods placed on {} nodes",
            outcome.placed(),
            used.len()
        );
        for (p, b) in problem
            .pending
            .iter()
            .zip(&outcome.placement)
            .filter_map(|(p, b)| b.as_ref().map(|b| (p, b)))
        {
            let node = &problem.cluster.nodes()[b.node].name;
            println!("  {:<8} -> {node} {:?}", p.name, b.gpu_devices);
        }
        nodes_used.push(used.len());
    }
    ensure!(
        nodes_used[0] <= nodes_used[1],
        "best-fit used {} nodes, more than least-allocated's {}",
        nodes_used[0],
        nodes_used[1]
    );
    Ok(())
}
