//! MILP on the openb cluster (1,523 nodes) with the first 200, 1,000 and 2,000 openb
//! pods pending; prints the gap and whether it fell back. Skips without the data.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use plimsoll::datasets::openb;
use plimsoll::model::Problem;
use plimsoll::place::milp::{MilpOptions, MilpPlacer, Objective};
use plimsoll::place::online::{OnlineKind, OnlinePolicy};
use plimsoll::place::Placer;
use std::path::Path;

fn openb(dir: &Path, pods: usize) -> Problem {
    let nodes = openb::load_nodes(dir.join("openb/openb_node_list_all_node.csv")).unwrap();
    let mut pending = openb::load_pods(dir.join("openb/openb_pod_list_default.csv")).unwrap();
    pending.truncate(pods);
    Problem::from_parts(nodes, pending).unwrap()
}

fn bench(c: &mut Criterion) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let Some(dir) = plimsoll::datasets::data_dir() else {
        eprintln!("openb data not found (set PLIMSOLL_DATA); skipping the MILP bench");
        return;
    };
    let placer = MilpPlacer::new(MilpOptions {
        objective: Objective::Pack,
        time_limit_seconds: 10.0,
        mip_rel_gap: 0.01,
        threads: 1,
        seed: 42,
        ..Default::default()
    })
    .unwrap();
    let mut g = c.benchmark_group("milp_openb_pack");
    g.sample_size(10);
    for n in [200usize, 1000, 2000] {
        let problem = openb(&dir, n);
        let out = placer.place(&problem).unwrap();
        let greedy = OnlinePolicy::new(OnlineKind::BestFit, 42)
            .place(&problem)
            .unwrap();
        let nodes_used = |o: &plimsoll::place::Outcome| {
            o.placement
                .iter()
                .flatten()
                .map(|b| b.node)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        };
        eprintln!(
            "openb {n} pods: best-fit uses {} nodes ({} placed); MILP uses {} nodes, placed {} in {:.2}s, objective {:?}, bound {:?}, gap {:?}, fell_back {}",
            nodes_used(&greedy),
            greedy.placed(),
            nodes_used(&out),
            out.placed(),
            out.stats.solve_seconds,
            out.stats.objective,
            out.stats.bound,
            out.stats.gap,
            out.stats.fell_back
        );
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &problem, |b, p| {
            b.iter(|| placer.place(p).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
