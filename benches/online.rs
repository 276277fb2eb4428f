//! Online placement throughput (decisions per second) for every online policy:
//! (a) the openb default pod list onto the 1,523 openb nodes (skipped if the data folder
//! is absent), (b) a seeded synthetic 5,000-node cluster with 3,000 pods. Every decision
//! filters and scores every node: directly, or through the lowest-index node of its class
//! of nodes in the same state (same verdict and score by construction; see the "Speed"
//! section of `plimsoll::place::online`). The first run of each policy prints a digest of
//! its decisions, to check that an optimisation leaves every decision unchanged.
//!
//! Run briefly with `cargo bench --bench online -- --warm-up-time 1 --measurement-time 3`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use plimsoll::model::{
    Cluster, GpuAmount, GpuRequest, Node, NodeGpus, Pod, Problem, Resources, Taint, TaintEffect,
};
use plimsoll::place::online::{OnlineKind, OnlinePolicy};
use plimsoll::place::Placer;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn resources(cpu_milli: u64, memory_bytes: u64) -> Resources {
    Resources {
        cpu_milli,
        memory_bytes,
        pods: 110,
        ephemeral_storage_bytes: 100 * GIB,
        extended: Default::default(),
    }
}

fn gpu_node(name: String, cpu_milli: u64, memory_bytes: u64, gpus: u32, model: &str) -> Node {
    let r = resources(cpu_milli, memory_bytes);
    Node {
        name,
        capacity: r.clone(),
        allocatable: r,
        gpus: (gpus > 0 && !model.is_empty()).then(|| NodeGpus {
            model: model.to_string(),
            count: gpus,
        }),
        ..Default::default()
    }
}

/// The openb cluster and default pod list, or `None` if the files are absent.
fn openb() -> Option<Problem> {
    let dir = plimsoll::datasets::data_dir()
        .or_else(|| Some(Path::new("/work/shared/datasets").to_path_buf()))?
        .join("openb");
    let nodes_csv = dir.join("openb_node_list_all_node.csv");
    let pods_csv = dir.join("openb_pod_list_default.csv");
    if !nodes_csv.is_file() || !pods_csv.is_file() {
        eprintln!("openb data not found under {}; skipping", dir.display());
        return None;
    }
    let mut nodes = Vec::new();
    for rec in csv::Reader::from_path(&nodes_csv).ok()?.records() {
        let r = rec.ok()?;
        let cpu: u64 = r[1].parse().ok()?;
        let mem: u64 = r[2].parse().ok()?;
        let gpus: u32 = r[3].parse().ok()?;
        nodes.push(gpu_node(r[0].to_string(), cpu, mem * MIB, gpus, &r[4]));
    }
    let mut pending = Vec::new();
    for rec in csv::Reader::from_path(&pods_csv).ok()?.records() {
        let r = rec.ok()?;
        let num_gpu: u32 = r[3].parse().ok()?;
        let gpu_milli: u32 = r[4].parse().ok()?;
        let models = if r[5].is_empty() {
            vec![]
        } else {
            r[5].split('|').map(str::to_string).collect()
        };
        pending.push(Pod {
            name: r[0].to_string(),
            namespace: "default".into(),
            requests: Resources::cpu_mem(r[1].parse().ok()?, r[2].parse::<u64>().ok()? * MIB),
            gpu: GpuRequest {
                amount: GpuAmount::from_count_and_milli(num_gpu, gpu_milli).ok()?,
                models,
            },
            ..Default::default()
        });
    }
    Some(Problem {
        cluster: Cluster::new(nodes).ok()?,
        pending,
    })
}

/// A seeded synthetic cluster: `n` nodes (30 % with 2–8 GPUs of three models, a few
/// PreferNoSchedule taints, zone labels) and `pods` pods (CPU-only, GPU shares, whole GPUs).
fn synthetic(n: usize, pods: usize, seed: u64) -> Problem {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let models = ["V100", "T4", "A100"];
    let nodes = (0..n)
        .map(|i| {
            let cores = [16u64, 32, 64, 96][rng.gen_range(0..4)];
            let gpus = if rng.gen_bool(0.3) {
                [2u32, 4, 8][rng.gen_range(0..3)]
            } else {
                0
            };
            let mut node = gpu_node(
                format!("node-{i:05}"),
                cores * 1000,
                cores * 4 * GIB,
                gpus,
                models[rng.gen_range(0..3)],
            );
            node.labels.insert(
                "topology.kubernetes.io/zone".into(),
                format!("zone-{}", i % 3),
            );
            if rng.gen_bool(0.05) {
                node.taints.push(Taint {
                    key: "spot".into(),
                    value: "true".into(),
                    effect: TaintEffect::PreferNoSchedule,
                });
            }
            node
        })
        .collect();
    let pending = (0..pods)
        .map(|i| {
            let kind: f64 = rng.gen();
            let amount = if kind < 0.6 {
                GpuAmount::None
            } else if kind < 0.85 {
                GpuAmount::Shared([250, 500, 750][rng.gen_range(0..3)])
            } else {
                GpuAmount::Whole([1, 2, 4][rng.gen_range(0..3)])
            };
            Pod {
                name: format!("pod-{i:05}"),
                namespace: "default".into(),
                requests: Resources::cpu_mem(
                    rng.gen_range(1..=16) * 500,
                    rng.gen_range(1..=32) * GIB,
                ),
                gpu: GpuRequest {
                    amount,
                    models: vec![],
                },
                ..Default::default()
            }
        })
        .collect();
    Problem {
        cluster: Cluster::new(nodes).expect("unique names"),
        pending,
    }
}

fn bench_problem(c: &mut Criterion, group_name: &str, problem: &Problem) {
    let mut group = c.benchmark_group(group_name);
    group.sample_size(10);
    group.throughput(Throughput::Elements(problem.pending.len() as u64));
    for kind in OnlineKind::ALL {
        let policy = OnlinePolicy::new(kind, 42);
        let reported = std::cell::Cell::new(false);
        group.bench_with_input(BenchmarkId::from_parameter(kind.name()), problem, |b, p| {
            b.iter(|| {
                let out = policy.place(p).expect("online placement");
                if !reported.get() {
                    eprintln!(
                        "{group_name}/{}: placed {}/{} (decisions digest {:016x})",
                        kind.name(),
                        out.placed(),
                        p.pending.len(),
                        out.decisions_digest()
                    );
                    reported.set(true);
                }
                out
            })
        });
    }
    group.finish();
}

fn online(c: &mut Criterion) {
    if let Some(p) = openb() {
        bench_problem(c, "online/openb-1523-nodes", &p);
    }
    let p = synthetic(5000, 3000, 1);
    bench_problem(c, "online/synthetic-5000-nodes", &p);
}

criterion_group!(benches, online);
criterion_main!(benches);
