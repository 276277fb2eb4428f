//! The one scheduling interface: online and batch policies behind the same calls,
//! cluster changes, plans that bind nothing, gangs, and deadlines on an injected clock.

use plimsoll::model::{Cluster, GpuAmount, Node, Pod, Problem, GIB};
use plimsoll::place::clock::{ManualClock, SharedClock};
use plimsoll::place::scheduler::Scheduler;
use plimsoll::place::validate::validate;
use plimsoll::place::PolicyOptions;
use std::sync::Arc;

fn cluster() -> Cluster {
    Cluster::new(vec![
        Node::new("a", 8000, 32 * GIB).with_gpus("T4", 2),
        Node::new("b", 8000, 32 * GIB).with_gpus("T4", 2),
        Node::new("c", 4000, 16 * GIB),
    ])
    .unwrap()
}

fn pods(n: usize) -> Vec<Pod> {
    (0..n)
        .map(|i| {
            let p = Pod::new(&format!("p{i}"), 1000 + 500 * (i as u64 % 3), GIB);
            match i % 3 {
                0 => p.with_gpu(GpuAmount::Shared(400)),
                1 => p.with_gpu(GpuAmount::Whole(1)),
                _ => p,
            }
        })
        .collect()
}

fn manual() -> (ManualClock, SharedClock) {
    let c = ManualClock::new();
    let shared: SharedClock = Arc::new(c.clone());
    (c, shared)
}

/// Every policy name runs behind the same calls, and what it binds passes the validator
/// (checked against the bare cluster).
#[test]
fn every_policy_places_batches_and_single_pods_validly() {
    let mut names: Vec<&str> = plimsoll::place::POLICY_NAMES.to_vec();
    names.push("lookahead:2");
    for name in names {
        let opts = PolicyOptions {
            time_limit_seconds: 5.0,
            ..PolicyOptions::default()
        };
        let (_, clock) = manual();
        let mut s = Scheduler::by_name(name, &opts, cluster(), clock).unwrap();
        assert_eq!(
            s.is_online(),
            name.parse::<plimsoll::place::online::OnlineKind>().is_ok()
        );
        let d = s.place_batch(pods(6)).unwrap();
        assert_eq!(d.placed.len(), 6);
        let one = s.place_one(Pod::new("late", 500, GIB)).unwrap();
        assert!(one.is_some(), "{name}: a small pod fits");
        // Everything bound, checked from scratch.
        let c = s.cluster();
        let problem = Problem {
            cluster: c.without_pods(),
            pending: c.bound_pods().map(|(_, p, _)| p.clone()).collect(),
        };
        let placement: Vec<_> = c.bound_pods().map(|(_, _, b)| Some(b.clone())).collect();
        validate(&problem, &placement).unwrap_or_else(|v| panic!("{name}: {v:?}"));
        assert_eq!(
            c.bound_count(),
            d.placed.iter().flatten().count() + 1,
            "{name}"
        );
    }
}

#[test]
fn cluster_changes_go_through_the_scheduler() {
    for name in ["best-fit", "cbf", "lookahead:all"] {
        let (_, clock) = manual();
        let mut s = Scheduler::by_name(name, &PolicyOptions::default(), cluster(), clock).unwrap();
        let a = s.cluster().node_id("a").unwrap();
        let b = s.cluster().node_id("b").unwrap();
        s.set_cordoned(a, true).unwrap();
        s.set_cordoned(b, true).unwrap();
        let (id, bind) = s
            .place_one(Pod::new("cpu", 1000, GIB))
            .unwrap()
            .expect("c takes it");
        assert_eq!(s.cluster()[bind.node].name, "c", "{name}");
        // GPU pods wait while the GPU nodes are cordoned, and go once one is back.
        let gpu = Pod::new("g", 1000, GIB).with_gpu(GpuAmount::Whole(1));
        assert!(s.place_one(gpu.clone()).unwrap().is_none(), "{name}");
        s.set_cordoned(b, false).unwrap();
        let (_, got) = s.place_one(gpu).unwrap().expect("b is back");
        assert_eq!(got.node, b, "{name}");
        // A new node, removal with eviction, and stale ids.
        let d = s.add_node(Node::new("d", 16000, 64 * GIB)).unwrap();
        let (_, evicted) = s.remove_node(b).unwrap();
        assert_eq!(evicted.len(), 1, "{name}");
        assert!(s.remove_node(b).is_err());
        let pending = s.evict(id).unwrap();
        assert!(pending.node_name.is_none());
        assert!(s.unbind(id).is_err(), "{name}: a stale pod id");
        let (_, again) = s.place_one(pending).unwrap().unwrap();
        assert!(
            again.node == d || s.cluster()[again.node].name == "c",
            "{name}"
        );
    }
}

#[test]
fn a_plan_binds_nothing_until_the_caller_binds_it() {
    for name in ["cbf", "lookahead:all", "first-fit"] {
        let (_, clock) = manual();
        let mut s = Scheduler::by_name(name, &PolicyOptions::default(), cluster(), clock).unwrap();
        let batch = pods(5);
        let plan = s.plan(&batch).unwrap();
        assert_eq!(
            s.cluster().bound_count(),
            0,
            "{name}: planning binds nothing"
        );
        assert!(plan.iter().all(Option::is_some), "{name}: all five fit");
        for (p, b) in batch.into_iter().zip(plan) {
            s.bind(p, &b.unwrap()).unwrap();
        }
        assert_eq!(s.cluster().bound_count(), 5);
    }
}

#[test]
fn gangs_are_all_or_nothing_in_batches() {
    for name in ["best-fit", "cbf", "lookahead:all"] {
        let (_, clock) = manual();
        let mut s = Scheduler::by_name(name, &PolicyOptions::default(), cluster(), clock).unwrap();
        // Five whole GPUs asked by a gang of five; the cluster has four.
        let gang: Vec<Pod> = (0..5)
            .map(|i| {
                Pod::new(&format!("w{i}"), 500, GIB)
                    .with_gpu(GpuAmount::Whole(1))
                    .in_gang("train", 5)
            })
            .collect();
        let d = s.place_batch(gang).unwrap();
        assert!(d.placed.iter().all(Option::is_none), "{name}");
        assert_eq!(s.cluster().bound_count(), 0, "{name}");
    }
}

/// The MILP takes its budget from the deadline's clock: on a manual clock whose deadline
/// has already passed it returns its greedy warm start without solving; with the budget
/// left it solves (and a wall-clock deadline behaves alike).
#[cfg(feature = "milp")]
#[test]
fn the_milp_reads_its_deadline_from_the_injected_clock() {
    use plimsoll::place::clock::{Deadline, WallClock};
    use plimsoll::place::milp::{MilpOptions, MilpPlacer};
    use plimsoll::place::Placer;
    use std::time::Duration;
    let problem = Problem {
        cluster: cluster(),
        pending: pods(6),
    };
    let milp = MilpPlacer::new(MilpOptions {
        time_limit_seconds: 3600.0,
        ..MilpOptions::default()
    })
    .unwrap();
    let (clock, shared) = manual();
    let spent = Deadline::after(shared.clone(), Duration::from_secs(5));
    clock.advance(Duration::from_secs(6));
    let out = milp.place_by(&problem, &spent).unwrap();
    assert!(out.stats.fell_back, "no time left on the injected clock");
    validate(&problem, &out.placement).unwrap();
    let ample = Deadline::after(shared, Duration::from_secs(30));
    let out = milp.place_by(&problem, &ample).unwrap();
    assert!(!out.stats.fell_back, "{:?}", out.stats);
    validate(&problem, &out.placement).unwrap();
    let wall = Deadline::after(WallClock::shared(), Duration::from_secs(30));
    assert_eq!(
        milp.place_by(&problem, &wall).unwrap().placed(),
        out.placed()
    );
}
