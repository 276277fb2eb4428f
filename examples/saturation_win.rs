//! Replays the FGD saturation experiment for several pod lists, policies and seeds.
//!
//! `cargo run --release --example saturation_win -- [--seeds 42..52] [--lists default,gpushare40] [--policies fgd,win]`

use plimsoll::experiment::win::{fgd::Fgd, policy, sim};
use rayon::prelude::*;
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |k: &str, d: &str| -> String {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1).cloned())
            .unwrap_or_else(|| d.to_string())
    };
    let seeds: Vec<u64> = {
        let s = get("--seeds", "42..52");
        let (a, b) = s.split_once("..").expect("--seeds A..B");
        (a.parse().unwrap()..b.parse().unwrap()).collect()
    };
    let lists: Vec<String> = get("--lists", "default")
        .split(',')
        .map(String::from)
        .collect();
    let pols: Vec<String> = get("--policies", "fgd,win")
        .split(',')
        .map(String::from)
        .collect();
    let dir = plimsoll::datasets::data_dir()
        .unwrap_or_else(|| PathBuf::from("/work/shared/datasets"))
        .join("openb");
    for list in &lists {
        let w = sim::load(
            &dir.join("openb_node_list_gpu_node.csv"),
            &dir.join(format!("openb_pod_list_{list}.csv")),
        )
        .expect("load");
        let mut line = format!("{list:>14}");
        for p in &pols {
            let t0 = std::time::Instant::now();
            let res: Vec<f64> = seeds
                .par_iter()
                .map(|&seed| {
                    let seq = sim::arrivals(&w, 1.3, seed);
                    let mut pol: Box<dyn sim::OnlinePolicy> = match p.as_str() {
                        "fgd" => Box::new(Fgd::new(&w.pods)),
                        other => policy::by_name(other, &w).expect("policy name"),
                    };
                    sim::run(&w.cluster, &seq, pol.as_mut(), seed, 130)
                        .expect("valid run")
                        .alloc_at_target
                })
                .collect();
            let mean = res.iter().sum::<f64>() / res.len() as f64;
            let per: Vec<String> = res.iter().map(|x| format!("{x:.2}")).collect();
            eprintln!(
                "{list} {p}: {mean:.2} [{}] {:.0}s",
                per.join(" "),
                t0.elapsed().as_secs_f64()
            );
            line += &format!(" {p}={mean:.2}");
        }
        println!("{line}");
    }
}
