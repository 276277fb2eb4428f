//! Cost of one node update in the extender's cache at 5,000 nodes (1,000 bound pods,
//! best-fit): the node's labels change (a new `zone` value each time), then — in the
//! second benchmark — one prioritize call over every node, so work a change defers to
//! the next decision is counted too.
//!
//! `cargo bench --bench node_update`. The same file runs against an older checkout to
//! compare (see BENCHMARKS.md, "Issue 12").

use criterion::{criterion_group, criterion_main, Criterion};
use plimsoll::extender::{self, Cache};
use plimsoll::model::{Node, NodeId, Pod, Resources};

const NODES: usize = 5000;

fn cache() -> (Cache, Vec<Node>) {
    let r = Resources {
        cpu_milli: 32_000,
        memory_bytes: 128 << 30,
        pods: 110,
        ..Default::default()
    };
    let nodes: Vec<Node> = (0..NODES)
        .map(|i| Node {
            name: format!("node-{i:05}"),
            capacity: r.clone(),
            allocatable: r.clone(),
            ..Default::default()
        })
        .collect();
    let pods: Vec<Pod> = (0..NODES / 5)
        .map(|i| Pod {
            name: format!("bound-{i}"),
            namespace: "default".into(),
            requests: Resources::cpu_mem(1000 * (1 + (i as u64 % 8)), 2 << 30),
            node_name: Some(nodes[i * 5].name.clone()),
            ..Default::default()
        })
        .collect();
    let c = Cache::new(
        extender::policy("best-fit", 42).unwrap(),
        nodes.clone(),
        pods,
    )
    .unwrap();
    (c, nodes)
}

fn bench(c: &mut Criterion) {
    let (mut cache, nodes) = cache();
    let pod = Pod {
        name: "probe".into(),
        namespace: "default".into(),
        requests: Resources::cpu_mem(2000, 4 << 30),
        ..Default::default()
    };
    let ids: Vec<Option<NodeId>> = nodes
        .iter()
        .map(|n| cache.cluster().node_id(&n.name))
        .collect();
    let mut k = 0u64;
    let mut changed = |cache: &mut Cache| {
        k += 1;
        let mut n = nodes[NODES / 2].clone();
        n.labels.insert("zone".into(), format!("z{}", k % 3));
        let (count, dropped) = cache.upsert_nodes(vec![n]);
        assert_eq!((count, dropped.len()), (1, 0));
    };
    let mut g = c.benchmark_group("extender_node_update_5000");
    g.sample_size(20);
    g.bench_function("update", |b| b.iter(|| changed(&mut cache)));
    g.bench_function("update_then_prioritize", |b| {
        b.iter(|| {
            changed(&mut cache);
            std::hint::black_box(cache.prioritize_ids(&pod, &ids));
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
