//! Cost of one node update in the extender's cache at 5,000 nodes (1,000 bound pods,
//! best-fit): the node's labels change (a new `zone` value each time), then — in the
//! second benchmark — one prioritize call over every node, so work a change defers to
//! the next decision is counted too.
//!
//! `cargo bench --bench node_update`. The same file runs against an older checkout to
//! compare (see BENCHMARKS.md, "Issue 12").

use criterion::{criterion_group, criterion_main, Criterion};
mod common;

use common::extender_cache;
use plimsoll::extender::Cache;
use plimsoll::model::{Node, NodeId, Pod, Resources};

const NODES: usize = 5000;

fn cache() -> (Cache, Vec<Node>) {
    let c = extender_cache(NODES);
    let nodes = c.cluster().nodes().map(|(_, n)| n.clone()).collect();
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
