//! Shared by the extender benchmarks.

use plimsoll::extender::{self, Cache};
use plimsoll::model::{Node, Pod, Resources};

/// The extender's cache over `nodes` identical nodes (32 cores, 128 GiB) with one bound
/// pod of varying size on every fifth node, so scores differ; best-fit.
pub fn extender_cache(nodes: usize) -> Cache {
    let r = Resources {
        cpu_milli: 32_000,
        memory_bytes: 128 << 30,
        pods: 110,
        ..Default::default()
    };
    let nodes: Vec<Node> = (0..nodes)
        .map(|i| Node {
            name: format!("node-{i:05}"),
            capacity: r.clone(),
            allocatable: r.clone(),
            ..Default::default()
        })
        .collect();
    // One bound pod on every fifth node, of varying size, so scores differ.
    let pods: Vec<Pod> = (0..nodes.len() / 5)
        .map(|i| Pod {
            name: format!("bound-{i}"),
            namespace: "default".into(),
            requests: Resources::cpu_mem(1000 * (1 + (i as u64 % 8)), 2 << 30),
            node_name: Some(nodes[i * 5].name.clone()),
            ..Default::default()
        })
        .collect();
    Cache::new(extender::policy("best-fit", 42).unwrap(), nodes, pods).unwrap()
}
