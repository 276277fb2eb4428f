//! Tests of the saturation replay, the FGD baseline and the CBF policy.

use super::fgd::{typical_pods, Fgd};
use super::policy::{by_name, Cbf, CbfParams};
use super::sim::{self, Choice, Cluster, NodeState, NodeType, OnlinePolicy, PodSpec, Workload};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A small mixed cluster: CPU-poor 8-GPU nodes, CPU-rich 2-GPU nodes, a 1-GPU node of
/// another model.
fn small_workload(seed: u64) -> Workload {
    let types = vec![
        NodeType {
            cpu: 16000,
            mem: 64000,
            gpus: 1,
            model: 1,
        },
        NodeType {
            cpu: 24000,
            mem: 96000,
            gpus: 8,
            model: 0,
        },
        NodeType {
            cpu: 52000,
            mem: 128000,
            gpus: 2,
            model: 0,
        },
    ];
    let mut nodes = Vec::new();
    for (kind, count) in [(1usize, 3usize), (2, 4), (0, 2)] {
        let t = &types[kind];
        for _ in 0..count {
            nodes.push(NodeState {
                cpu: t.cpu,
                mem: t.mem,
                gpus: vec![sim::MILLI; t.gpus as usize],
                model: t.model,
                kind,
            });
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pods = (0..120)
        .map(|_| {
            let (num_gpu, milli) = match rng.gen_range(0..10) {
                0..=1 => (0, 0),
                2..=5 => (1, [110, 320, 470, 810][rng.gen_range(0..4)]),
                6..=8 => (1, 1000),
                _ => ([2, 4, 8][rng.gen_range(0..3)], 1000),
            };
            PodSpec {
                cpu: rng.gen_range(1..12) * 1000,
                mem: rng.gen_range(1..20) * 1000,
                num_gpu,
                milli,
                models: if rng.gen_range(0..5) == 0 {
                    0b10
                } else {
                    u64::MAX
                },
            }
        })
        .collect();
    Workload {
        cluster: Cluster {
            nodes,
            models: vec!["A".into(), "B".into()],
            types,
        },
        pods,
    }
}

/// Wraps a policy and checks every state against an independent ledger.
struct Checked<P> {
    inner: P,
    caps: Vec<NodeState>,
    used_cpu: Vec<u64>,
    used_mem: Vec<u64>,
    used_gpu: Vec<Vec<u32>>,
    checks: usize,
}

impl<P: OnlinePolicy> OnlinePolicy for Checked<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn place(
        &mut self,
        nodes: &[NodeState],
        pod: &PodSpec,
        rng: &mut ChaCha8Rng,
    ) -> Option<Choice> {
        self.inner.place(nodes, pod, rng)
    }
    fn placed(&mut self, nodes: &[NodeState], pod: &PodSpec, c: &Choice) {
        self.used_cpu[c.node] += pod.cpu;
        self.used_mem[c.node] += pod.mem;
        assert_eq!(c.devices.len(), pod.num_gpu as usize);
        if pod.num_gpu > 0 {
            assert_ne!(
                pod.models & (1 << nodes[c.node].model),
                0,
                "model constraint"
            );
        }
        if pod.num_gpu > 1 || pod.milli == sim::MILLI {
            for &d in &c.devices {
                assert_eq!(
                    self.used_gpu[c.node][d], 0,
                    "whole-GPU pod on a used device"
                );
            }
        }
        for &d in &c.devices {
            self.used_gpu[c.node][d] += pod.milli;
        }
        for (i, n) in nodes.iter().enumerate() {
            let cap = &self.caps[i];
            assert!(self.used_cpu[i] <= cap.cpu && self.used_mem[i] <= cap.mem);
            assert_eq!(n.cpu + self.used_cpu[i], cap.cpu);
            assert_eq!(n.mem + self.used_mem[i], cap.mem);
            for (d, &u) in self.used_gpu[i].iter().enumerate() {
                assert!(u <= sim::MILLI, "device over-allocated");
                assert_eq!(n.gpus[d] + u, sim::MILLI);
            }
        }
        self.checks += 1;
    }
}

fn checked<P>(inner: P, c: &Cluster) -> Checked<P> {
    Checked {
        inner,
        caps: c.nodes.clone(),
        used_cpu: vec![0; c.nodes.len()],
        used_mem: vec![0; c.nodes.len()],
        used_gpu: c.nodes.iter().map(|n| vec![0; n.gpus.len()]).collect(),
        checks: 0,
    }
}

#[test]
fn cbf_and_fgd_never_violate_capacity() {
    for seed in 0..4 {
        let w = small_workload(seed);
        let seq = sim::arrivals(&w, 1.3, seed);
        let mut p = checked(Cbf::new(&w.pods, CbfParams::default()), &w.cluster);
        let r = sim::run(&w.cluster, &seq, &mut p, seed, 130).expect("valid choices");
        assert!(p.checks > 20, "too few placements: {}", p.checks);
        assert!(r.dropped > 0, "the cluster should saturate");
        let mut f = checked(Fgd::new(&w.pods), &w.cluster);
        sim::run(&w.cluster, &seq, &mut f, seed, 130).expect("valid choices");
    }
}

#[test]
fn cbf_is_deterministic() {
    let w = small_workload(7);
    let seq = sim::arrivals(&w, 1.3, 7);
    let run = || {
        let mut p = by_name("cbf", &w).expect("cbf");
        sim::run(&w.cluster, &seq, p.as_mut(), 7, 130).expect("run")
    };
    assert_eq!(run(), run());
    assert_eq!(seq, sim::arrivals(&w, 1.3, 7));
}

#[test]
fn arrivals_follow_the_stop_rule() {
    let mut w = small_workload(3);
    w.pods.truncate(20);
    let cap = w.cluster.gpu_milli() as f64 * 1.3;
    let seq = sim::arrivals(&w, 1.3, 3);
    let mut orig = seq[..w.pods.len()].to_vec();
    let mut sorted = w.pods.clone();
    orig.sort();
    sorted.sort();
    assert_eq!(orig, sorted, "the originals come first, shuffled");
    let total: u64 = seq.iter().map(PodSpec::total_milli).sum();
    let last_gpu = seq.iter().rev().find(|p| p.num_gpu > 0).expect("a GPU pod");
    assert!((total - last_gpu.total_milli() + u64::from(last_gpu.milli)) as f64 <= cap);
    assert!(seq.len() > w.pods.len());
}

#[test]
fn a_refused_fitting_pod_is_an_error() {
    struct Lazy;
    impl OnlinePolicy for Lazy {
        fn name(&self) -> &str {
            "lazy"
        }
        fn place(&mut self, _: &[NodeState], _: &PodSpec, _: &mut ChaCha8Rng) -> Option<Choice> {
            None
        }
    }
    let w = small_workload(1);
    let r = sim::run(&w.cluster, &w.pods, &mut Lazy, 1, 130);
    assert!(matches!(r, Err(sim::SimError::Refused { index: 0 })));
}

fn openb() -> Option<Workload> {
    let Some(dir) = crate::datasets::data_dir() else {
        eprintln!("note: openb data not found (set PLIMSOLL_DATA); test skipped");
        return None;
    };
    let dir = dir.join("openb");
    Some(
        sim::load(
            &dir.join("openb_node_list_gpu_node.csv"),
            &dir.join("openb_pod_list_default.csv"),
        )
        .expect("openb loads"),
    )
}

#[test]
fn openb_typical_pods_match_the_simulator() {
    let Some(w) = openb() else { return };
    assert_eq!(w.cluster.gpu_milli(), 6_212_000);
    assert_eq!(w.pods.len(), 8152);
    let t = typical_pods(&w.pods, 95);
    assert_eq!(t.len(), 35);
    assert_eq!(
        (t[0].pod.cpu, t[0].pod.num_gpu, t[0].pod.milli),
        (3152, 1, 810)
    );
    assert!((t[0].freq - 0.1348).abs() < 5e-4, "{}", t[0].freq);
}

#[test]
fn openb_cbf_beats_fgd_at_130() {
    let Some(w) = openb() else { return };
    let seq = sim::arrivals(&w, 1.3, 42);
    let total: u64 = seq.iter().map(PodSpec::total_milli).sum();
    assert!(total <= 8_075_600 + 7000 && total > 8_070_000, "{total}");
    let mut f = Fgd::new(&w.pods);
    let fgd = sim::run(&w.cluster, &seq, &mut f, 42, 130).expect("fgd");
    let mut c = Cbf::new(&w.pods, CbfParams::default());
    let cbf = sim::run(&w.cluster, &seq, &mut c, 42, 130).expect("cbf");
    assert!(
        cbf.alloc_at_target > fgd.alloc_at_target + 2.0,
        "{cbf:?} vs {fgd:?}"
    );
    assert!(cbf.alloc_at_target > 95.5, "{}", cbf.alloc_at_target);
}
