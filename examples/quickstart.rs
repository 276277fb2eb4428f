//! Quick start: build a small GPU cluster in code, place its pods with two greedy
//! policies, check both placements with the independent validator, and compare them.
//!
//! Run with `cargo run --release --example quickstart`. The example asserts its own
//! results: every pod is placed, both placements are valid, and best-fit packs the pods
//! onto no more nodes than least-allocated (which spreads them).

use anyhow::{ensure, Result};
use plimsoll::model::{GpuAmount, Node, NodeId, Pod, Problem, GIB};
use plimsoll::place::validate::validate;
use plimsoll::place::{policy_by_name, PolicyOptions};
use std::collections::BTreeSet;

fn main() -> Result<()> {
    let nodes = vec![
        Node::new("cpu-1", 16_000, 64 * GIB),
        Node::new("cpu-2", 16_000, 64 * GIB),
        Node::new("gpu-1", 32_000, 128 * GIB).with_gpus("T4", 2),
        Node::new("gpu-2", 32_000, 128 * GIB).with_gpus("T4", 2),
    ];
    let mut pods: Vec<Pod> = (0..6)
        .map(|i| Pod::new(&format!("web-{i}"), 1000, 2 * GIB))
        .collect();
    pods.push(Pod::new("infer-0", 2000, 8 * GIB).with_gpu(GpuAmount::Shared(500)));
    pods.push(Pod::new("infer-1", 2000, 8 * GIB).with_gpu(GpuAmount::Shared(300)));
    pods.push(Pod::new("train-0", 8000, 32 * GIB).with_gpu(GpuAmount::Whole(1)));
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
        let used: BTreeSet<NodeId> = outcome.placement.iter().flatten().map(|b| b.node).collect();
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
            let node = &problem.cluster[b.node].name;
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
