//! The overcommit experiment and usage-aware placement: a hand-checked replay, the time
//! split, the estimators, no leakage (perturbing the replay never changes the placement),
//! the effective problem of the VM pods, and runs on the Bitbrains VMs (skipped without
//! the data; set `PLIMSOLL_DATA`).

use plimsoll::datasets::bitbrains::{self, VmSeries};
use plimsoll::datasets::{data_dir, Strictness};
use plimsoll::experiment::overcommit::estimate::{
    estimator_by_name, HistoryMax, NSigma, PeakEstimator, Quantile,
};
use plimsoll::experiment::overcommit::learned::{estimator_for, history_series, LearnedPeak};
use plimsoll::experiment::overcommit::replay::count_overloads;
use plimsoll::experiment::overcommit::workload::{split, VmWorkload, Workloads};
use plimsoll::experiment::overcommit::{
    end_state, estimates, problem, run, OvercommitConfig, OvercommitError,
};
use plimsoll::place::usage::{effective_problem, place_by_usage, UsageOptions};
use plimsoll::place::validate::validate;
use plimsoll::place::{policy_by_name, Placer, PolicyOptions};

const GIB: u64 = 1 << 30;

fn vm(name: &str, cpu: &[Option<f64>]) -> VmWorkload {
    VmWorkload {
        name: name.into(),
        cpu_request_milli: 2000,
        memory_request_bytes: GIB,
        history_times: vec![],
        history_cpu_cores: vec![],
        history_memory_bytes: vec![],
        replay_cpu_cores: cpu.to_vec(),
        replay_memory_bytes: cpu.iter().map(|c| c.map(|_| 1e6)).collect(),
    }
}

#[test]
fn overloads_counted_by_hand() {
    // Node capacity 2 cores. Steps: 0 observed, 1 observed, 2 has no sample at all
    // (skipped), 3 observed.
    let vms = vec![
        vm("a", &[Some(1.5), Some(0.5), None, Some(1.0)]),
        vm("b", &[Some(1.0), None, None, Some(1.0)]),
        vm("c", &[Some(3.0), Some(1.0), None, Some(0.5)]),
        vm("d", &[Some(9.0), Some(9.0), None, Some(9.0)]), // not placed
    ];
    // a and b on node 0, c on node 5.
    let c = count_overloads(&vms, &[Some(0), Some(0), Some(5), None], 2.0, 1e9);
    // Node 0: 2.5 (over), 0.5, 2.0 (exactly full: not over). Node 5: 3.0 (over), 1, 0.5.
    assert_eq!(c.observed_steps, 3);
    assert_eq!(c.node_intervals, 6);
    assert_eq!(c.cpu_overloaded, 2);
    assert_eq!(c.memory_overloaded, 0);
    assert!((c.cpu_overloaded_percent() - 100.0 * 2.0 / 6.0).abs() < 1e-9);
    assert!((c.peak_cpu_utilisation - 1.5).abs() < 1e-12);
    let mean = (2.5 + 0.5 + 2.0 + 3.0 + 1.0 + 0.5) / 2.0 / 6.0;
    assert!((c.mean_cpu_utilisation - mean).abs() < 1e-12);
    // Memory: 1 MB per present sample against 1.5 MB nodes: node 0 holds 2 MB at steps 0
    // and 3.
    let m = count_overloads(&vms, &[Some(0), Some(0), Some(5), None], 2.0, 1.5e6);
    assert_eq!(m.memory_overloaded, 2);
}

/// A VM series sampled every 300 s from `t0`, `cores` cores at 1000 MHz each.
fn series(name: &str, cores: u32, usage_cores: &[f64]) -> VmSeries {
    let n = usage_cores.len();
    VmSeries {
        name: name.into(),
        timestamps: (0..n as i64).map(|i| 1_000_000 + 300 * i).collect(),
        cpu_cores: vec![cores; n],
        cpu_provisioned_mhz: vec![f64::from(cores) * 1000.0; n],
        cpu_usage_mhz: usage_cores.iter().map(|c| c * 1000.0).collect(),
        cpu_usage_percent: usage_cores
            .iter()
            .map(|c| 100.0 * c / f64::from(cores))
            .collect(),
        mem_provisioned_kb: vec![4.0 * 1024.0 * 1024.0; n],
        mem_usage_kb: vec![1024.0 * 1024.0; n],
        disk_read_kbps: vec![0.0; n],
        disk_write_kbps: vec![0.0; n],
        net_rx_kbps: vec![0.0; n],
        net_tx_kbps: vec![0.0; n],
    }
}

#[test]
fn split_puts_history_strictly_before_the_split_and_steps_after() {
    // 11 samples at 0..=3000 s: split at 0.7 × 3000 = 2100 s.
    let s = series(
        "1",
        4,
        &[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    );
    let w = split(&[s], 0.7, 300).unwrap();
    assert_eq!(w.split_time, 1_000_000 + 2100);
    assert_eq!(w.steps, 4);
    let v = &w.vms[0];
    assert_eq!(v.name, "vm-1");
    assert_eq!(v.cpu_request_milli, 4000);
    assert_eq!(v.memory_request_bytes, 4 * GIB);
    assert_eq!(v.history_cpu_cores.len(), 7);
    assert!((v.history_cpu_cores[6] - 0.6).abs() < 1e-9);
    let replay: Vec<f64> = v.replay_cpu_cores.iter().map(|c| c.unwrap()).collect();
    assert_eq!(replay.len(), 4);
    assert!((replay[0] - 0.7).abs() < 1e-9 && (replay[3] - 1.0).abs() < 1e-9);
    for bad in [0.0, 1.0, -0.5, f64::NAN] {
        assert!(matches!(
            split(&w_series(), bad, 300),
            Err(OvercommitError::InvalidOption { .. })
        ));
    }
    assert!(split(&w_series(), 0.5, 0).is_err());
}

fn w_series() -> Vec<VmSeries> {
    vec![series("1", 1, &[0.1, 0.2, 0.3])]
}

#[test]
fn estimators_on_known_histories() {
    let h = [1.0, 2.0, 3.0, 4.0];
    let sd = 1.25f64.sqrt();
    assert!((NSigma { n: 2.0 }.peak(&h).unwrap() - (2.5 + 2.0 * sd)).abs() < 1e-12);
    assert_eq!(HistoryMax.peak(&h), Some(4.0));
    let p50 = Quantile {
        q: 0.5,
        factor: 1.0,
    };
    assert_eq!(p50.peak(&h), Some(2.0));
    let vpa = estimator_by_name("vpa").unwrap();
    assert!((vpa.peak(&h).unwrap() - 4.0 * 1.15).abs() < 1e-12);
    assert_eq!(estimator_by_name("p100").unwrap().peak(&h), Some(4.0));
    assert_eq!(estimator_by_name("nsigma:0").unwrap().peak(&h), Some(2.5));
    for e in ["nsigma", "max", "vpa", "p99"] {
        assert_eq!(estimator_by_name(e).unwrap().peak(&[]), None, "{e}");
    }
    for bad in ["knn?", "p0", "p101", "nsigma:x", "nsigma:-1"] {
        let err = estimator_by_name(bad).err().expect(bad).to_string();
        assert!(err.contains("predictor"), "{err}");
    }
}

/// Eight VMs with different history levels; the last VM only appears in the replay.
fn eight_vms() -> Vec<VmSeries> {
    let mut out: Vec<VmSeries> = (0..7)
        .map(|i| {
            let level = 0.2 + 0.3 * f64::from(i);
            let u: Vec<f64> = (0..100)
                .map(|k| level + 0.1 * f64::from((k * 7 + i) % 5))
                .collect();
            series(&format!("{}", i + 1), 4, &u)
        })
        .collect();
    let mut late = series("8", 2, &[0.5; 20]);
    for t in &mut late.timestamps {
        *t += 300 * 80;
    }
    out.push(late);
    out
}

fn config(margin: f64) -> OvercommitConfig {
    OvercommitConfig {
        node_cpu_milli: 8000,
        node_memory_bytes: 64 * GIB,
        nodes: None,
        usage: UsageOptions::new(margin, false).unwrap(),
    }
}

fn placement(w: &Workloads, placer: &dyn Placer) -> Vec<Option<usize>> {
    let p = problem(w, &config(0.1)).unwrap();
    let est = estimates(w, &NSigma { n: 3.0 });
    let u = place_by_usage(placer, &p, &est, &config(0.1).usage).unwrap();
    u.outcome
        .placement
        .iter()
        .map(|b| b.as_ref().map(|b| b.node.index()))
        .collect()
}

#[test]
fn perturbing_the_replay_never_changes_the_placement() {
    let vms = eight_vms();
    let base = split(&vms, 0.7, 300).unwrap();
    let mut perturbed_vms = vms.clone();
    for s in &mut perturbed_vms {
        for (t, u) in s.timestamps.iter().zip(s.cpu_usage_mhz.iter_mut()) {
            if *t >= base.split_time {
                *u *= 7.0;
            }
        }
        for (t, m) in s.timestamps.iter().zip(s.mem_usage_kb.iter_mut()) {
            if *t >= base.split_time {
                *m *= 3.0;
            }
        }
    }
    let perturbed = split(&perturbed_vms, 0.7, 300).unwrap();
    assert_ne!(
        base.vms, perturbed.vms,
        "the perturbation reached the replay"
    );
    for name in ["best-fit", "milp"] {
        let placer = policy_by_name(name, &PolicyOptions::default()).unwrap();
        assert_eq!(
            placement(&base, placer.as_ref()),
            placement(&perturbed, placer.as_ref()),
            "{name}"
        );
    }
    assert_eq!(
        estimates(&base, &NSigma { n: 3.0 }),
        estimates(&perturbed, &NSigma { n: 3.0 })
    );
    // The same perturbation of the history does change the estimates (the test can fail).
    let mut hist_vms = vms.clone();
    for s in &mut hist_vms {
        for (t, u) in s.timestamps.iter().zip(s.cpu_usage_mhz.iter_mut()) {
            if *t < base.split_time {
                *u *= 7.0;
            }
        }
    }
    let hist = split(&hist_vms, 0.7, 300).unwrap();
    assert_ne!(
        estimates(&base, &NSigma { n: 3.0 }),
        estimates(&hist, &NSigma { n: 3.0 })
    );
}

#[test]
fn learned_estimators_see_only_the_history() {
    let vms = eight_vms();
    let base = split(&vms, 0.7, 300).unwrap();
    let mut perturbed_vms = vms.clone();
    for s in &mut perturbed_vms {
        for (t, u) in s.timestamps.iter().zip(s.cpu_usage_mhz.iter_mut()) {
            if *t >= base.split_time {
                *u *= 5.0;
            }
        }
    }
    let perturbed = split(&perturbed_vms, 0.7, 300).unwrap();
    for name in ["knn", "svr", "moving-max"] {
        let a = estimator_for(name, &base, 288).unwrap();
        let b = estimator_for(name, &perturbed, 288).unwrap();
        assert_eq!(a.name(), b.name());
        assert_eq!(
            estimates(&base, a.as_ref()),
            estimates(&perturbed, b.as_ref()),
            "{name}"
        );
    }
    // The history series ends before the split and is in fractions of the cores.
    let s = history_series(&base.vms[0], 300).unwrap().unwrap();
    assert_eq!(s.capacity, 4.0);
    assert!(s.time_at(s.len() - 1) < base.split_time);
    assert!(history_series(&base.vms[7], 300).unwrap().is_none());
    // The whole-period peak is at least the model's forecast at the last history step.
    let knn = LearnedPeak::train("knn", &base, 288).unwrap();
    use plimsoll::predict::Predictor;
    let last = knn.model.predict(&s, s.len() - 1) * 4.0;
    assert!(knn.cpu_peak(&base.vms[0]).unwrap() >= last - 1e-12);
    assert!(estimator_for("no-such-model", &base, 288).is_err());
}

#[test]
fn effective_problem_of_the_vm_pods() {
    let w = split(&eight_vms(), 0.7, 300).unwrap();
    let p = problem(&w, &config(0.5)).unwrap();
    let est = estimates(&w, &HistoryMax);
    assert_eq!(est.by_pod.len(), 7, "the late VM has no history");
    assert!(!est.by_pod.contains_key("default/vm-8"));
    let e = effective_problem(&p, &est, &config(0.5).usage).unwrap();
    assert_eq!(e.estimated_pods, 7);
    for (i, (eff, orig)) in e.problem.pending.iter().zip(&p.pending).enumerate() {
        assert_eq!(eff.requests.memory_bytes, orig.requests.memory_bytes);
        assert!(eff.requests.cpu_milli <= orig.requests.cpu_milli);
        match est.by_pod.get(&orig.key()) {
            Some(x) => {
                let want = ((x.cpu_milli as f64 * 1.5).ceil() as u64).min(4000);
                assert_eq!(eff.requests.cpu_milli, want, "vm {i}");
            }
            None => assert_eq!(eff.requests, orig.requests),
        }
    }
    // VM 1's history peaks at 0.6 cores: charged ceil(600 × 1.5) = 900 m.
    assert_eq!(e.problem.pending[0].requests.cpu_milli, 900);
}

#[test]
fn run_reports_both_modes_and_the_end_state_is_valid() {
    let w = split(&eight_vms(), 0.7, 300).unwrap();
    let bf = policy_by_name("best-fit", &PolicyOptions::default()).unwrap();
    let r = run(&w, &config(0.1), &[bf.as_ref()], &NSigma { n: 3.0 }).unwrap();
    assert_eq!(r.results.len(), 2);
    let (req, use_) = (&r.results[0], &r.results[1]);
    assert_eq!(
        (req.mode.as_str(), use_.mode.as_str()),
        ("request", "usage")
    );
    // 8 VMs (7 × 4 cores, 1 × 2 cores) by request on 8-core nodes: 4 nodes.
    assert_eq!((req.placed, req.nodes_used), (8, 4));
    assert_eq!(use_.placed, 8);
    assert!(use_.pods_per_node > req.pods_per_node);
    let gain = use_.pods_per_node_gain_percent.unwrap();
    assert!((gain - 100.0 * (use_.pods_per_node / req.pods_per_node - 1.0)).abs() < 1e-9);
    let end = end_state(&w, &config(0.1), bf.as_ref(), &NSigma { n: 3.0 }).unwrap();
    assert_eq!(end.problem.cluster.bound_count(), 8);
    assert!(end.problem.pending.is_empty());
    assert!(validate(&end.problem, &[]).is_ok());
    assert_eq!(end.requests.len(), 8);
    assert_eq!(end.requests["default/vm-1"].cpu_milli, 4000);
    assert_eq!(end.replay_peak_cpu_milli["default/vm-8"], 500);
    assert_eq!(end.overloads.cpu_overloaded, use_.overloads.cpu_overloaded);
}

fn bitbrains_dir() -> Option<std::path::PathBuf> {
    let dir = data_dir()?.join("bitbrains-rnd/2013-7");
    dir.is_dir().then_some(dir)
}

#[test]
fn bitbrains_usage_mode_packs_more_without_overloads() {
    let Some(dir) = bitbrains_dir() else {
        eprintln!("note: Bitbrains data absent (set PLIMSOLL_DATA); test skipped");
        return;
    };
    let set = bitbrains::load_dir(&dir, Strictness::Strict).unwrap();
    assert_eq!(set.vms.len(), 40);
    let w = split(&set.vms, 0.7, 300).unwrap();
    let bf = policy_by_name("best-fit", &PolicyOptions::default()).unwrap();
    for (cores, mem_gib) in [(32, 512), (64, 1024)] {
        let cfg = OvercommitConfig {
            node_cpu_milli: cores * 1000,
            node_memory_bytes: mem_gib * GIB,
            nodes: None,
            usage: UsageOptions::new(0.1, false).unwrap(),
        };
        let r = run(&w, &cfg, &[bf.as_ref()], &NSigma { n: 3.0 }).unwrap();
        let (req, use_) = (&r.results[0], &r.results[1]);
        assert_eq!((req.placed, use_.placed), (40, 40), "{cores} cores");
        assert!(
            use_.pods_per_node >= 1.1 * req.pods_per_node,
            "{cores} cores: {} vs {}",
            use_.pods_per_node,
            req.pods_per_node
        );
        assert!(use_.cpu_overloaded_percent <= 1.0, "{cores} cores");
        assert_eq!(r.estimated_vms, 39, "VM 14 starts after the split");
    }
}

fn temp_dir(test: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("plimsoll-overcommit-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn plimsoll(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

/// Writes `vms` as Bitbrains files (`;` + tab separated, with the header).
fn write_bitbrains(dir: &std::path::Path, vms: &[VmSeries]) {
    for v in vms {
        let mut text = bitbrains::HEADER.join(";\t");
        for i in 0..v.len() {
            text += &format!(
                "\n{};\t{};\t{};\t{};\t{};\t{};\t{};\t0;\t0;\t0;\t0",
                v.timestamps[i],
                v.cpu_cores[i],
                v.cpu_provisioned_mhz[i],
                v.cpu_usage_mhz[i],
                v.cpu_usage_percent[i],
                v.mem_provisioned_kb[i],
                v.mem_usage_kb[i]
            );
        }
        std::fs::write(dir.join(format!("{}.csv", v.name)), text).unwrap();
    }
}

#[test]
fn cli_experiment_overcommit_prints_both_modes_as_json() {
    let dir = temp_dir("exp");
    write_bitbrains(&dir, &eight_vms());
    let d = dir.to_string_lossy().into_owned();
    let o = plimsoll(&[
        "experiment",
        "overcommit",
        "--data",
        &d,
        "--node-cpu",
        "8",
        "--node-memory",
        "64Gi",
        "--policies",
        "best-fit",
        "--predictor",
        "max",
        "--output",
        "json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["vms"], 8);
    assert_eq!(v["estimated_vms"], 7);
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["mode"], "request");
    assert_eq!(rows[0]["nodes_used"], 4);
    assert_eq!(rows[1]["mode"], "usage");
    assert_eq!(rows[1]["placed"], 8);
    let bad = plimsoll(&["experiment", "overcommit", "--data", &d, "--margin=-1"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("margin"));
}

#[test]
fn cli_place_with_usage_estimates_fits_more_pods() {
    let dir = temp_dir("place");
    let mut m = String::new();
    for n in ["n0", "n1"] {
        m += &format!(
            "---\napiVersion: v1\nkind: Node\nmetadata: {{name: {n}}}\nstatus: {{allocatable: {{cpu: \"4\", memory: 16Gi, pods: \"110\"}}}}\n"
        );
    }
    let mut est = String::from("pods:\n");
    for i in 0..8 {
        m += &format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nspec: {{containers: [{{name: c, image: x, resources: {{requests: {{cpu: \"2\", memory: 1Gi}}}}}}]}}\n"
        );
        est += &format!("  p{i}: {{cpu: 800m}}\n");
    }
    let mf = dir.join("c.yaml");
    let ef = dir.join("u.yaml");
    std::fs::write(&mf, m).unwrap();
    std::fs::write(&ef, est).unwrap();
    let (mf, ef) = (mf.to_string_lossy(), ef.to_string_lossy());
    let placed = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["place", "-f", &mf, "--policy", "best-fit", "-o", "json"];
        args.extend_from_slice(extra);
        let o = plimsoll(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["summary"]["placed"].clone()
    };
    assert_eq!(placed(&[]), 4);
    assert_eq!(placed(&["--usage", &ef, "--margin", "0.25"]), 8);
    assert_eq!(placed(&["--usage", &ef, "--margin", "1.5"]), 4);
}

/// The usage-mode end state goes to the rebalancer: with a threshold below what
/// best-fit packed, both plans bring every node under it with valid moves, and the
/// MILP never needs more moves than the greedy baseline.
#[test]
fn end_state_rebalances_under_a_threshold() {
    use plimsoll::balance::{validate_moves, BalanceOptions};
    use plimsoll::experiment::overcommit::rebalance::{rebalance, UsageSource};
    let w = split(&eight_vms(), 0.7, 300).unwrap();
    let bf = policy_by_name("best-fit", &PolicyOptions::default()).unwrap();
    let end = end_state(&w, &config(0.1), bf.as_ref(), &NSigma { n: 3.0 }).unwrap();
    for source in [UsageSource::Predicted, UsageSource::ReplayPeak] {
        let options = BalanceOptions {
            high: 0.5,
            ..BalanceOptions::default()
        };
        let (s, cmp) = rebalance(&end, source, &options).unwrap();
        assert!(s.hot_nodes > 0, "{source:?}: best-fit packs above 50%");
        assert!(s.milp_targets_met && s.greedy_targets_met, "{s:?}");
        assert!(s.milp_moves >= 1 && s.milp_moves <= s.greedy_moves, "{s:?}");
        validate_moves(&end.problem, &cmp.milp.moves).unwrap();
        validate_moves(&end.problem, &cmp.greedy.moves).unwrap();
        assert!(cmp.milp.after.iter().all(|u| u.cpu <= 0.5 + 1e-9));
    }
}
