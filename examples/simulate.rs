//! Replays a small seeded trace under a packing and a spreading policy and checks that
//! packing keeps fewer nodes busy while both place every pod.
//!
//! `cargo run --release --example simulate`

use plimsoll::model::{Node, Pod, Resources};
use plimsoll::place::PolicyOptions;
use plimsoll::sim::{simulate, SimConfig, SimPolicy, Trace, TracePod};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() -> anyhow::Result<()> {
    let r = Resources {
        cpu_milli: 32_000,
        memory_bytes: 128 << 30,
        pods: 110,
        ..Default::default()
    };
    let nodes: Vec<Node> = (0..20)
        .map(|i| Node {
            name: format!("node-{i:02}"),
            capacity: r.clone(),
            allocatable: r.clone(),
            ..Default::default()
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let pods: Vec<TracePod> = (0..400)
        .map(|i| TracePod {
            pod: Pod {
                name: format!("job-{i}"),
                namespace: "default".into(),
                requests: Resources::cpu_mem(rng.gen_range(1..4) * 1000, 2 << 30),
                ..Default::default()
            },
            arrival: rng.gen_range(0..3600),
            duration: Some(rng.gen_range(60..900)),
        })
        .collect();
    let trace = Trace::with_static_nodes(nodes, pods);
    let opts = PolicyOptions::default();
    let mut peaks = Vec::new();
    for name in ["most-allocated", "least-allocated"] {
        let run = simulate(
            &trace,
            &SimPolicy::by_name(name, &opts)?,
            &SimConfig::default(),
        )?;
        let s = &run.summary;
        println!(
            "{name:>16}: placed {} of {}, peak nodes in use {}, mean CPU allocation {:.1}%",
            s.placed_pods,
            s.pods,
            s.peak_nodes_in_use,
            100.0 * s.mean_cpu_alloc
        );
        assert_eq!(
            s.placed_pods, 400,
            "the cluster is large enough for every pod"
        );
        plimsoll::sim::validate_cluster(&run.cluster).expect("a valid cluster");
        peaks.push(s.peak_nodes_in_use);
    }
    assert!(
        peaks[0] < peaks[1],
        "packing keeps fewer nodes busy than spreading: {peaks:?}"
    );
    Ok(())
}
