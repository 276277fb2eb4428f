//! The simulator: event order, determinism, a hand-checked scenario in retry, drop and
//! batch modes, validation of every run, the Alibaba 2017 conversion and an openb replay.

use plimsoll::datasets::alibaba2017::{ServerEvent, ServerEventKind, DEFAULT_SCALE};
use plimsoll::datasets::TimedPod;
use plimsoll::model::{GpuAmount, Node, Pod, Resources, GIB};
use plimsoll::place::online::{OnlineKind, OnlinePolicy};
use plimsoll::place::{policy_by_name, PolicyOptions};
use plimsoll::sim::event::{EventKind, EventQueue};
use plimsoll::sim::{
    simulate, validate_cluster, NodeChange, NodeEvent, QueueMode, Sampling, SimConfig, SimPolicy,
    SimResult, Trace, TracePod,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn node(name: &str, cpu_milli: u64, gpus: u32) -> Node {
    Node::new(name, cpu_milli, 64 * GIB)
        .without_labels()
        .with_gpus("T4", gpus)
}

fn pod(name: &str, cpu_milli: u64, gpu: GpuAmount, arrival: u64, duration: u64) -> TracePod {
    TracePod {
        pod: Pod::new(name, cpu_milli, GIB).with_gpu(gpu),
        arrival,
        duration: Some(duration),
    }
}

/// Two 4-core nodes. a (3 cores, 0..100) and b (3 cores, 0..50) fill them; c (2 cores)
/// arrives at 10 and waits; n0 fails at 60 and comes back at 300.
fn scenario() -> Trace {
    let mut t = Trace::with_static_nodes(
        vec![node("n0", 4000, 0), node("n1", 4000, 0)],
        vec![
            pod("a", 3000, GpuAmount::None, 0, 100),
            pod("b", 3000, GpuAmount::None, 0, 50),
            pod("c", 2000, GpuAmount::None, 10, 30),
        ],
    );
    t.node_events.push(NodeEvent {
        time: 60,
        node: 0,
        change: NodeChange::Fail,
    });
    t.node_events.push(NodeEvent {
        time: 300,
        node: 0,
        change: NodeChange::Add,
    });
    t
}

fn checked(config: SimConfig) -> SimConfig {
    SimConfig {
        validate_every: Some(1),
        ..config
    }
}

fn first_fit() -> SimPolicy {
    SimPolicy::Online(OnlinePolicy::new(OnlineKind::FirstFit, 1))
}

fn at(r: &SimResult, time: u64) -> &plimsoll::sim::Sample {
    r.samples
        .iter()
        .find(|s| s.time == time)
        .unwrap_or_else(|| panic!("no sample at t={time}"))
}

#[test]
fn equal_times_keep_insertion_order() {
    let mut q = EventQueue::new();
    for pod in [4, 2, 9] {
        q.push(7, EventKind::Arrival { pod });
    }
    q.push(1, EventKind::Tick);
    let got: Vec<_> = std::iter::from_fn(|| q.pop()).map(|e| e.kind).collect();
    assert_eq!(
        got,
        vec![
            EventKind::Tick,
            EventKind::Arrival { pod: 4 },
            EventKind::Arrival { pod: 2 },
            EventKind::Arrival { pod: 9 },
        ]
    );
}

/// Hand-checked: c waits 10..50 and runs on n1 after b leaves; a, evicted at 60, waits
/// until c leaves at 80 and restarts on n1 for its full 100 s (its old departure at 100
/// is ignored).
#[test]
fn hand_checked_retry_with_node_failure() {
    let r = simulate(&scenario(), &first_fit(), &checked(SimConfig::default())).unwrap();
    let s = &r.summary;
    assert_eq!(
        (
            s.placements,
            s.placed_pods,
            s.dropped,
            s.evicted,
            s.node_losses
        ),
        (4, 3, 0, 1, 1)
    );
    assert_eq!(
        (s.wait.count, s.wait.mean, s.wait.p99, s.wait.max),
        (4, 15.0, 40, 40)
    );
    assert_eq!((s.still_pending, s.still_running, s.end_time), (0, 0, 300));
    assert_eq!((at(&r, 10).pending, at(&r, 10).running), (1, 2));
    assert_eq!((at(&r, 50).pending, at(&r, 50).running), (0, 2));
    let t60 = at(&r, 60);
    assert_eq!((t60.pending, t60.running, t60.live_nodes), (1, 1, 1));
    assert_eq!((at(&r, 80).pending, at(&r, 80).running), (0, 1));
    assert_eq!(at(&r, 100).running, 1, "a's first departure is stale");
    assert_eq!(at(&r, 180).running, 0);
    assert_eq!(at(&r, 300).live_nodes, 2);
    // CPU allocation at t=0: 6 of 8 cores; at 60: 2 of 4 live cores.
    assert!((at(&r, 0).cpu_alloc - 0.75).abs() < 1e-12);
    assert!((t60.cpu_alloc - 0.5).abs() < 1e-12);
    validate_cluster(&r.cluster).unwrap();
    assert_eq!(r.cluster.bound_count(), 0);
}

#[test]
fn drop_mode_drops_what_does_not_fit() {
    let config = checked(SimConfig {
        mode: QueueMode::Drop,
        ..SimConfig::default()
    });
    let r = simulate(&scenario(), &first_fit(), &config).unwrap();
    let s = &r.summary;
    // c is dropped at 10; a, evicted at 60, fits at once on n1 (b left at 50).
    assert_eq!(
        (s.placements, s.placed_pods, s.dropped, s.evicted),
        (3, 2, 1, 1)
    );
    assert_eq!((s.wait.max, s.peak_pending), (0, 0));
    assert_eq!(at(&r, 60).running, 1);
}

#[test]
fn batch_policies_place_the_queue_on_the_tick() {
    let opts = PolicyOptions::default();
    let config = checked(SimConfig {
        tick_seconds: 10,
        ..SimConfig::default()
    });
    for name in ["batch:first-fit", "milp"] {
        let policy = SimPolicy::by_name(name, &opts).unwrap();
        assert!(matches!(policy, SimPolicy::Batch(_)), "{name}");
        let r = simulate(&scenario(), &policy, &config).unwrap();
        let s = &r.summary;
        assert_eq!(
            (s.placements, s.placed_pods, s.dropped),
            (4, 3, 0),
            "{name}"
        );
        assert_eq!((s.wait.mean, s.wait.max), (15.0, 40), "{name}");
        assert!(s.batch_calls >= 4, "{name}: {}", s.batch_calls);
        assert_eq!(s.policy, name);
    }
    // Ticks fall on multiples of the period: c (arrives 10) waits for b's departure at
    // 50, which wakes a tick at 50; with a 7 s period the next tick is at 56.
    let config = checked(SimConfig {
        tick_seconds: 7,
        ..SimConfig::default()
    });
    let p = SimPolicy::Batch(policy_by_name("first-fit", &opts).unwrap().into());
    let r = simulate(&scenario(), &p, &config).unwrap();
    // waits: a 0, b 0, c 14 (arrival 10, tick 14 fails, 56 after departure at 50) …
    // c placed at 56 → wait 46; a evicted at 60 waits for c's departure at 86 → tick 91.
    assert_eq!(r.summary.wait.max, 46);
    assert_eq!(r.summary.placements, 4);
}

fn random_trace(seed: u64) -> Trace {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let nodes: Vec<Node> = (0..8).map(|i| node(&format!("n{i}"), 16_000, 4)).collect();
    let pods = (0..300)
        .map(|i| {
            let gpu = match rng.gen_range(0..3) {
                0 => GpuAmount::None,
                1 => GpuAmount::Shared(rng.gen_range(1..10) * 100),
                _ => GpuAmount::Whole(rng.gen_range(1..3)),
            };
            pod(
                &format!("p{i}"),
                rng.gen_range(1..8) * 1000,
                gpu,
                rng.gen_range(0..2000),
                rng.gen_range(1..600),
            )
        })
        .collect();
    let mut t = Trace::with_static_nodes(nodes, pods);
    for k in 0..4 {
        let node = rng.gen_range(0..8);
        let time = rng.gen_range(0..2000);
        t.node_events.push(NodeEvent {
            time,
            node,
            change: if k % 2 == 0 {
                NodeChange::Fail
            } else {
                NodeChange::Remove
            },
        });
        t.node_events.push(NodeEvent {
            time: time + 100,
            node,
            change: NodeChange::Add,
        });
    }
    t
}

fn outputs(r: &SimResult) -> (Vec<u8>, String) {
    let mut csv = Vec::new();
    r.write_csv(&mut csv).unwrap();
    (csv, r.summary_json())
}

#[test]
fn same_seed_gives_identical_csv_and_json() {
    let trace = random_trace(7);
    for kind in [OnlineKind::Random, OnlineKind::Fgd, OnlineKind::KubeDefault] {
        let policy = SimPolicy::Online(OnlinePolicy::new(kind, 3));
        let config = checked(SimConfig::default());
        let a = simulate(&trace, &policy, &config).unwrap();
        let b = simulate(&trace, &policy, &config).unwrap();
        assert_eq!(outputs(&a), outputs(&b), "{}", kind.name());
        assert!(
            a.summary.evicted > 0 && a.summary.wait.max > 0,
            "{:?}",
            a.summary
        );
        assert_eq!(
            a.summary.placed_pods + a.summary.still_pending,
            300,
            "every pod is placed or waits"
        );
        validate_cluster(&a.cluster).unwrap();
    }
    // A different seed changes `random`'s choices.
    let r = |seed| {
        let p = SimPolicy::Online(OnlinePolicy::new(OnlineKind::Random, seed));
        outputs(&simulate(&trace, &p, &SimConfig::default()).unwrap())
    };
    assert_ne!(r(3), r(4));
}

#[test]
fn interval_sampling_reports_the_state_at_each_multiple() {
    let config = SimConfig {
        sampling: Sampling::Interval(25),
        ..SimConfig::default()
    };
    let r = simulate(&scenario(), &first_fit(), &config).unwrap();
    let times: Vec<u64> = r.samples.iter().map(|s| s.time).collect();
    assert_eq!(times, (0..=300).step_by(25).collect::<Vec<_>>());
    assert_eq!(at(&r, 25).pending, 1);
    assert_eq!(at(&r, 50).pending, 0, "events at 50 are included");
    assert_eq!(at(&r, 75).pending, 1, "a waits from 60 to 80");
}

#[test]
fn validate_cluster_catches_an_overfull_node() {
    let r = simulate(
        &scenario(),
        &first_fit(),
        &SimConfig {
            until: Some(20),
            ..SimConfig::default()
        },
    )
    .unwrap();
    assert_eq!(r.summary.end_time, 20);
    let mut c = r.cluster.clone();
    validate_cluster(&c).unwrap();
    let n0 = plimsoll::model::NodeId::FIRST;
    let mut n = c[n0].clone();
    n.allocatable.cpu_milli = 1000;
    c.replace_node(n0, n).unwrap();
    let v = validate_cluster(&c).unwrap_err();
    assert!(v.iter().any(|v| v.to_string().contains("cpu")), "{v:?}");
}

#[test]
fn alibaba2017_events_become_node_events() {
    let ev = |timestamp, machine_id, kind| ServerEvent {
        timestamp,
        machine_id,
        kind,
        detail: None,
        cpus: 64,
        memory: 0.5,
        disk: 0.5,
    };
    let events = vec![
        ev(0, 5, ServerEventKind::Add),
        ev(0, 3, ServerEventKind::Add),
        ev(100, 5, ServerEventKind::HardError),
        ev(150, 9, ServerEventKind::Remove), // never added: ignored
        ev(200, 5, ServerEventKind::Add),
        ev(300, 3, ServerEventKind::Remove),
    ];
    let p = TimedPod {
        pod: Pod {
            name: "j1-t1-0".into(),
            namespace: "default".into(),
            requests: Resources::cpu_mem(500, 1 << 30),
            ..Default::default()
        },
        arrival: -20,
        departure: Some(40),
    };
    let trace = Trace::from_alibaba2017(&events, vec![p], DEFAULT_SCALE);
    assert_eq!(trace.nodes.len(), 2);
    assert_eq!(trace.nodes[0].name, "m_5");
    assert_eq!(trace.nodes[0].allocatable.cpu_milli, 64_000);
    let got: Vec<_> = trace
        .node_events
        .iter()
        .map(|e| (e.time, e.node, e.change))
        .collect();
    assert_eq!(
        got,
        vec![
            (20, 0, NodeChange::Add),
            (20, 1, NodeChange::Add),
            (120, 0, NodeChange::Fail),
            (220, 0, NodeChange::Add),
            (320, 1, NodeChange::Remove),
        ]
    );
    assert_eq!(
        (trace.pods[0].arrival, trace.pods[0].duration),
        (0, Some(60))
    );
    // The pod arrives before any node: it waits for the adds at 20.
    let r = simulate(&trace, &first_fit(), &checked(SimConfig::default())).unwrap();
    assert_eq!((r.summary.placed_pods, r.summary.wait.max), (1, 20));
}

#[test]
fn plot_writes_an_svg_with_one_line_per_policy() {
    let a = simulate(&scenario(), &first_fit(), &SimConfig::default()).unwrap();
    let p = SimPolicy::Online(OnlinePolicy::new(OnlineKind::LeastAllocated, 1));
    let b = simulate(&scenario(), &p, &SimConfig::default()).unwrap();
    let dir = std::env::temp_dir().join(format!("plimsoll-sim-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("p.svg");
    plimsoll::sim::plot::write_svg(
        &path,
        &[("first-fit", &a.samples), ("least-allocated", &b.samples)],
    )
    .unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg") || svg.contains("<svg"));
    assert!(svg.contains("least-allocated") && svg.contains("GPU fragmentation"));
}

#[test]
fn openb_replay() {
    let Some(dir) = plimsoll::datasets::data_dir() else {
        eprintln!("note: no data folder (set PLIMSOLL_DATA); skipping the openb replay");
        return;
    };
    let d = dir.join("openb");
    let trace = Trace::from_openb(
        &d.join("openb_node_list_all_node.csv"),
        &d.join("openb_pod_list_default.csv"),
    )
    .unwrap();
    assert_eq!((trace.nodes.len(), trace.pods.len()), (1523, 8152));
    assert_eq!(trace.pods.iter().map(|p| p.arrival).min(), Some(0));
    let config = SimConfig {
        validate_every: Some(5000),
        ..SimConfig::default()
    };
    for kind in [OnlineKind::BestFit, OnlineKind::Fgd] {
        let start = std::time::Instant::now();
        let r = simulate(
            &trace,
            &SimPolicy::Online(OnlinePolicy::new(kind, 42)),
            &config,
        )
        .unwrap();
        let s = &r.summary;
        eprintln!(
            "openb {}: {:.2}s {:?}",
            kind.name(),
            start.elapsed().as_secs_f64(),
            s
        );
        assert_eq!((s.arrived, s.placed_pods, s.still_running), (8152, 8152, 0));
        assert_eq!(s.events, 8152 * 2 + 1523);
        assert!(s.peak_nodes_in_use > 0 && s.mean_gpu_alloc > 0.0);
        assert_eq!(r.cluster.bound_count(), 0, "every openb pod departs");
    }
}

/// The incremental figures equal a recomputation from the final cluster.
#[test]
fn incremental_figures_match_a_full_recompute() {
    use plimsoll::place::score::fgd::{self, NodeFree};
    let trace = random_trace(11);
    let workload = plimsoll::sim::default_workload(&trace);
    for until in [500, 1000, 1700] {
        let config = SimConfig {
            until: Some(until),
            ..SimConfig::default()
        };
        let p = SimPolicy::Online(OnlinePolicy::new(OnlineKind::Fgd, 1));
        let r = simulate(&trace, &p, &config).unwrap();
        let last = r.samples.last().unwrap();
        let c = &r.cluster;
        let (mut cpu, mut cpu_used, mut gpu, mut gpu_free, mut frag, mut in_use, mut live) =
            (0u64, 0u64, 0u64, 0u64, 0.0f64, 0usize, 0usize);
        // Nodes that left are out of the cluster: only live ones are listed.
        for (i, n) in c.nodes() {
            live += 1;
            cpu += n.allocatable.cpu_milli;
            cpu_used += c.used(i).cpu_milli;
            gpu += u64::from(n.gpu_count()) * 1000;
            gpu_free += c.gpu_free_total(i);
            in_use += usize::from(!c.pods_on(i).is_empty());
            let ok: Vec<bool> = workload
                .pods()
                .iter()
                .map(|t| t.accepts_model(n.gpus.as_ref().map(|g| g.model.as_str())))
                .collect();
            let view = NodeFree {
                cpu_milli: n.allocatable.cpu_milli - c.used(i).cpu_milli,
                memory_bytes: n.allocatable.memory_bytes - c.used(i).memory_bytes,
                gpu_free: c.gpu_free(i),
            };
            frag += fgd::node_fragmentation(&view, &workload, &ok);
        }
        assert_eq!(
            (last.live_nodes, last.nodes_in_use),
            (live, in_use),
            "t={until}"
        );
        assert!((last.cpu_alloc - cpu_used as f64 / cpu as f64).abs() < 1e-12);
        assert!((last.gpu_alloc - (gpu - gpu_free) as f64 / gpu as f64).abs() < 1e-12);
        assert!(
            (last.gpu_frag_milli - frag).abs() < 1e-6 * frag.max(1.0),
            "t={until}"
        );
        assert_eq!(last.running, c.bound_count());
    }
}

/// Gang g (min 2) of two 3-core pods on two 4-core nodes, x (3 cores, 0..20) in the
/// way. g1 arrives at 0 and waits for its gang (alone it would fit on n1); at 5 g2
/// arrives, g1 would fit but g2 not, so both wait; at 20 x leaves and both start.
#[test]
fn gangs_start_all_or_nothing() {
    use plimsoll::model::Gang;
    let member = |name: &str, arrival: u64| {
        let mut p = pod(name, 3000, GpuAmount::None, arrival, 100);
        p.pod.gang = Some(Gang {
            name: "g".into(),
            min_member: 2,
        });
        p
    };
    let trace = Trace::with_static_nodes(
        vec![node("n0", 4000, 0), node("n1", 4000, 0)],
        vec![
            pod("x", 3000, GpuAmount::None, 0, 20),
            member("g1", 0),
            member("g2", 5),
        ],
    );
    let r = simulate(&trace, &first_fit(), &checked(SimConfig::default())).unwrap();
    assert_eq!((at(&r, 0).pending, at(&r, 0).running), (1, 1));
    assert_eq!((at(&r, 5).pending, at(&r, 5).running), (2, 1));
    assert_eq!((at(&r, 20).pending, at(&r, 20).running), (0, 2));
    let s = &r.summary;
    assert_eq!((s.placements, s.dropped), (3, 0));
    assert_eq!((s.wait.count, s.wait.max), (3, 20));

    // Drop mode: the complete gang fails at 5, both members are dropped.
    let config = checked(SimConfig {
        mode: QueueMode::Drop,
        ..SimConfig::default()
    });
    let r = simulate(&trace, &first_fit(), &config).unwrap();
    assert_eq!((r.summary.placements, r.summary.dropped), (1, 2));
    assert_eq!(at(&r, 5).running, 1);
}
