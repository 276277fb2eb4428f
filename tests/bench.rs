//! Benchmark suites end to end through the `plimsoll bench` command, suite-file errors,
//! and the LP bound against brute force and every policy.

mod support;

use plimsoll::bench::{run_suite, RunOptions, Suite, SuiteBase};
use plimsoll::datasets::synthetic::{self, SyntheticConfig};
use plimsoll::model::{
    Binding, GpuAmount, GpuRequest, LabelSelector, Node, NodeGpus, NodeId, Pod, PodAffinityTerm,
    Problem, Resources, TopologySpreadConstraint, WhenUnsatisfiable,
};
use plimsoll::place::milp::{lp_bound, node_lower_bound, weighted_placed};
use plimsoll::place::validate::validate;
use plimsoll::place::{policy_by_name, PolicyOptions, POLICY_NAMES};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::process::Command;

fn plimsoll(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(args)
        .output()
        .expect("run plimsoll");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A directory of the test's own, removed when the guard drops.
fn temp_dir(name: &str) -> support::TempDir {
    support::TempDir::new(&format!("bench-{name}"))
}

#[test]
fn smoke_suite_json_has_every_field_and_every_row_is_valid() {
    let (code, out, err) = plimsoll(&["bench", "--suite", "smoke", "--output", "json"]);
    assert_eq!(code, 0, "stderr: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["suite"], "smoke");
    assert_eq!(v["version"], 1);
    for key in [
        "description",
        "source",
        "policies",
        "time_limit",
        "threads",
        "seed",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for c in cases {
        for key in [
            "name",
            "source",
            "nodes",
            "bound_pods",
            "pending_pods",
            "total_weight",
            "lp_bound",
            "bound_seconds",
            "rows",
        ] {
            assert!(c.get(key).is_some(), "case missing {key}");
        }
        let bound = c["lp_bound"].as_f64().expect("a bound");
        assert!(bound <= c["total_weight"].as_f64().unwrap());
        let rows = c["rows"].as_array().unwrap();
        assert_eq!(rows.len(), POLICY_NAMES.len());
        for r in rows {
            for key in [
                "case",
                "policy",
                "placed",
                "unplaced",
                "nodes_used",
                "gpu_alloc_pct",
                "weighted_placed",
                "gap_pct",
                "seconds",
                "valid",
                "nodes_lb",
            ] {
                assert!(r.get(key).is_some(), "row missing {key}");
            }
            assert_eq!(r["valid"], true, "{r}");
            // The node lower bound holds for the row's own placement.
            let lb = r["nodes_lb"].as_f64().expect("a node lower bound");
            assert!(
                lb <= r["nodes_used"].as_f64().unwrap() + 1e-9,
                "node bound {lb} above nodes used: {r}"
            );
            let w = r["weighted_placed"].as_f64().unwrap();
            assert!(w <= bound + 1e-9, "weighted {w} above bound {bound}: {r}");
            assert!(r["gap_pct"].as_f64().unwrap() >= -1e-9);
            let placed = r["placed"].as_u64().unwrap() + r["unplaced"].as_u64().unwrap();
            assert_eq!(placed, c["pending_pods"].as_u64().unwrap());
        }
    }
}

#[test]
fn table_output_names_suite_version_and_columns() {
    let (code, out, err) = plimsoll(&[
        "bench",
        "--suite",
        "smoke",
        "--cases",
        "manifests-web",
        "--policies",
        "best-fit,milp",
    ]);
    assert_eq!(code, 0, "stderr: {err}");
    assert!(out.contains("Suite smoke version 1"), "{out}");
    for col in [
        "PLACED",
        "NODES USED",
        "NODES LB",
        "GPU ALLOC %",
        "GAP %",
        "TIME S",
        "VALID",
    ] {
        assert!(out.contains(col), "{col} missing: {out}");
    }
    // The manifest's 4 web replicas have hostname anti-affinity on 3 nodes: 7 of 8 fit,
    // and the bound (which drops pending-pod anti-affinity) says 8.
    assert!(out.contains("LP bound 8"), "{out}");
    assert_eq!(out.matches("manifests-web  ").count(), 2, "{out}");
}

#[test]
fn unknown_case_or_policy_is_a_usage_error() {
    let (code, _, err) = plimsoll(&["bench", "--suite", "smoke", "--cases", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no case \"nope\""), "{err}");
    let (code, _, err) = plimsoll(&["bench", "--suite", "smoke", "--policies", "bogus"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown policy \"bogus\""), "{err}");
    let (code, _, err) = plimsoll(&["bench", "--suite", "nosuchsuite"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown suite"), "{err}");
}

#[test]
fn malformed_suite_files_name_file_and_field() {
    let dir = temp_dir("bad");
    let cases = [
        (
            "unknown.yaml",
            "name: x\nversion: 1\ncases:\n  - name: a\n    synthetic: {nodes: 5, colour: red}\n",
            "colour",
        ),
        (
            "wrongtype.yaml",
            "name: x\nversion: 1\ncases:\n  - name: a\n    synthetic:\n      nodes: many\n",
            "nodes",
        ),
        (
            "toplevel.yaml",
            "name: x\nversion: 1\nextra: 3\ncases: []\n",
            "extra",
        ),
        (
            "twosources.yaml",
            "name: x\nversion: 1\ncases:\n  - name: a\n    synthetic: {nodes: 5}\n    manifests: [m.yaml]\n",
            "exactly one of",
        ),
        (
            "badpolicy.yaml",
            "name: x\nversion: 1\ndefaults: {policies: [best-fit, nope]}\ncases:\n  - name: a\n    synthetic: {nodes: 5}\n",
            "unknown policy",
        ),
        (
            "badfraction.yaml",
            "name: x\nversion: 1\ncases:\n  - name: a\n    synthetic: {nodes: 5, anti_affinity_fraction: 2}\n",
            "anti_affinity_fraction",
        ),
    ];
    for (file, text, field) in cases {
        let p = dir.join(file);
        std::fs::write(&p, text).unwrap();
        let (code, _, err) = plimsoll(&["bench", "--suite", p.to_str().unwrap()]);
        assert_eq!(code, 2, "{file}: {err}");
        assert!(err.contains(file), "{file}: file not named: {err}");
        assert!(err.contains(field), "{file}: field not named: {err}");
    }
    // serde_yaml's message carries the line of the bad field.
    let err = Suite::load(dir.join("wrongtype.yaml").to_str().unwrap()).unwrap_err();
    assert!(err.to_string().contains("line 6"), "{err}");
}

#[test]
fn user_suite_resolves_manifests_relative_to_its_file() {
    let dir = temp_dir("user");
    std::fs::create_dir_all(dir.join("m")).unwrap();
    std::fs::write(
        dir.join("m/c.yaml"),
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nstatus: {allocatable: {cpu: \"4\", memory: 8Gi, pods: \"10\"}}\n\
---\napiVersion: v1\nkind: Pod\nmetadata: {name: p1}\nspec:\n  containers:\n  - name: c\n    image: i\n    resources: {requests: {cpu: \"3\"}}\n\
---\napiVersion: v1\nkind: Pod\nmetadata: {name: p2}\nspec:\n  containers:\n  - name: c\n    image: i\n    resources: {requests: {cpu: \"3\"}}\n",
    )
    .unwrap();
    let suite_path = dir.join("mine.yaml");
    std::fs::write(
        &suite_path,
        "name: mine\nversion: 3\ndefaults: {policies: [first-fit, milp], time_limit: 2}\ncases:\n  - name: two-pods\n    manifests: [m/c.yaml]\n",
    )
    .unwrap();
    let suite = Suite::load(suite_path.to_str().unwrap()).unwrap();
    assert_eq!(suite.base, SuiteBase::Dir(dir.0.clone()));
    let report = run_suite(&suite, &RunOptions::default()).unwrap();
    assert_eq!(report.version, 3);
    let case = &report.cases[0];
    // Only one 3-CPU pod fits on a 4-CPU node: the LP bound (rounded down) is exact.
    assert_eq!(case.lp_bound, Some(1.0));
    assert_eq!(case.rows.len(), 2);
    for r in &case.rows {
        assert!(r.valid);
        assert_eq!(r.placed, 1);
        assert_eq!(r.gap_pct, Some(0.0));
    }
}

fn node(name: &str, zone: &str, cpu: u64, gpus: u32) -> Node {
    let res = Resources {
        pods: 110,
        ..Resources::cpu_mem(cpu, 16 << 30)
    };
    Node {
        name: name.into(),
        capacity: res.clone(),
        allocatable: res,
        gpus: (gpus > 0).then(|| NodeGpus {
            model: "T4".into(),
            count: gpus,
        }),
        labels: [
            ("kubernetes.io/hostname".to_string(), name.to_string()),
            ("zone".to_string(), zone.to_string()),
        ]
        .into(),
        ..Default::default()
    }
}

/// A random tiny problem: 2–3 nodes, 3–5 pods with CPU, whole GPUs, priorities,
/// hostname anti-affinity, zone spread and zone affinity.
fn tiny(rng: &mut ChaCha8Rng) -> Problem {
    let n = rng.gen_range(2..=3);
    let nodes: Vec<Node> = (0..n)
        .map(|i| {
            node(
                &format!("n{i}"),
                ["a", "b"][i % 2],
                rng.gen_range(2..=6) * 1000,
                rng.gen_range(0..=2),
            )
        })
        .collect();
    let m = rng.gen_range(3..=5);
    let pods = (0..m)
        .map(|i| {
            let app = ["x", "y"][rng.gen_range(0..2)];
            let sel = LabelSelector {
                match_labels: [("app".to_string(), app.to_string())].into(),
                ..Default::default()
            };
            let mut p = Pod {
                name: format!("p{i}"),
                namespace: "default".into(),
                labels: [("app".to_string(), app.to_string())].into(),
                requests: Resources::cpu_mem(rng.gen_range(1..=4) * 1000, 1 << 30),
                priority: rng.gen_range(0..3) * 100,
                ..Default::default()
            };
            if rng.gen_bool(0.3) {
                p.gpu = GpuRequest {
                    amount: GpuAmount::Whole(1),
                    models: Vec::new(),
                };
            }
            match rng.gen_range(0..4) {
                0 => p.pod_anti_affinity.push(PodAffinityTerm {
                    selector: sel,
                    namespaces: Vec::new(),
                    topology_key: "kubernetes.io/hostname".into(),
                }),
                1 => p.topology_spread.push(TopologySpreadConstraint {
                    max_skew: 1,
                    topology_key: "zone".into(),
                    when_unsatisfiable: WhenUnsatisfiable::DoNotSchedule,
                    selector: sel,
                }),
                2 => p.pod_affinity.push(PodAffinityTerm {
                    selector: sel,
                    namespaces: Vec::new(),
                    topology_key: "zone".into(),
                }),
                _ => {}
            }
            p
        })
        .collect();
    Problem::from_parts(nodes, pods).unwrap()
}

/// The best weighted placed count over every assignment of pods to nodes (or none) that
/// the validator accepts (devices chosen by the cluster; whole GPUs only, so the choice
/// does not matter).
fn brute_force(problem: &Problem) -> f64 {
    let n = problem.cluster.node_count();
    let m = problem.pending.len();
    let mut best = 0.0f64;
    let total = (n + 1).pow(m as u32);
    'next: for code in 0..total {
        let mut c = code;
        let mut cluster = problem.cluster.clone();
        let mut placement: Vec<Option<Binding>> = Vec::with_capacity(m);
        for pod in &problem.pending {
            let choice = c % (n + 1);
            c /= n + 1;
            if choice == n {
                placement.push(None);
                continue;
            }
            let Ok(id) = cluster.bind(pod.clone(), NodeId::from_index(choice), None) else {
                continue 'next;
            };
            let devices = cluster.pod(id).unwrap().1.gpu_devices.clone();
            placement.push(Some(Binding {
                node: NodeId::from_index(choice),
                gpu_devices: devices,
            }));
        }
        if validate(problem, &placement).is_ok() {
            best = best.max(weighted_placed(problem, &placement));
        }
    }
    best
}

#[test]
fn lp_bound_is_at_least_the_brute_force_optimum() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut tight = 0;
    for _ in 0..60 {
        let p = tiny(&mut rng);
        let opt = brute_force(&p);
        let bound = lp_bound(&p).unwrap();
        assert!(
            bound >= opt - 1e-9,
            "bound {bound} below optimum {opt}: {p:?}"
        );
        if (bound - opt).abs() < 1e-9 {
            tight += 1;
        }
    }
    // The bound is not vacuous: on most tiny instances it is the optimum.
    assert!(tight >= 30, "only {tight} of 60 bounds are tight");
}

/// The fewest nodes receiving pods over every valid placement placing weight at least
/// `w` (as [`brute_force`]); `None` if none does.
fn brute_force_nodes(problem: &Problem, w: f64) -> Option<usize> {
    let n = problem.cluster.node_count();
    let m = problem.pending.len();
    let mut best: Option<usize> = None;
    let total = (n + 1).pow(m as u32);
    'next: for code in 0..total {
        let mut c = code;
        let mut cluster = problem.cluster.clone();
        let mut placement: Vec<Option<Binding>> = Vec::with_capacity(m);
        for pod in &problem.pending {
            let choice = c % (n + 1);
            c /= n + 1;
            if choice == n {
                placement.push(None);
                continue;
            }
            let Ok(id) = cluster.bind(pod.clone(), NodeId::from_index(choice), None) else {
                continue 'next;
            };
            let devices = cluster.pod(id).unwrap().1.gpu_devices.clone();
            placement.push(Some(Binding {
                node: NodeId::from_index(choice),
                gpu_devices: devices,
            }));
        }
        if weighted_placed(problem, &placement) < w - 1e-9 {
            continue;
        }
        let used = placement
            .iter()
            .flatten()
            .map(|b| b.node)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        if best.is_none_or(|b| used < b) && validate(problem, &placement).is_ok() {
            best = Some(used);
        }
    }
    best
}

#[test]
fn node_lower_bound_is_at_most_the_brute_force_fewest_nodes() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let (mut tight, mut checked) = (0, 0);
    for _ in 0..60 {
        let p = tiny(&mut rng);
        let opt = brute_force(&p);
        let weights = [opt, (opt - 1.0).max(0.0), 1.0];
        let lbs = node_lower_bound(&p, &weights).unwrap();
        for (&w, lb) in weights.iter().zip(lbs) {
            let Some(fewest) = brute_force_nodes(&p, w) else {
                continue;
            };
            let lb = lb.expect("the LP reaches every weight a valid placement reaches");
            assert!(
                lb <= fewest as f64 + 1e-9,
                "weight {w}: node bound {lb} above the fewest nodes {fewest}: {p:?}"
            );
            checked += 1;
            if (lb - fewest as f64).abs() < 1e-9 {
                tight += 1;
            }
        }
    }
    // Not vacuous: most bounds are the brute-force minimum.
    assert!(
        2 * tight >= checked,
        "only {tight} of {checked} node bounds are tight"
    );
}

#[test]
fn lp_bound_is_at_least_every_policys_weighted_placed() {
    let opts = PolicyOptions {
        time_limit_seconds: 2.0,
        ..PolicyOptions::default()
    };
    for seed in 0..6u64 {
        let cfg = SyntheticConfig {
            nodes: 12 + 4 * seed as usize,
            seed,
            cpu_demand: 0.3 + 0.1 * seed as f64,
            gpu_demand: 0.8 + 0.1 * seed as f64,
            anti_affinity_fraction: 0.5,
            ..SyntheticConfig::default()
        };
        let p = synthetic::problem(&cfg).unwrap();
        let bound = lp_bound(&p).unwrap();
        let total: f64 = plimsoll::place::milp::priority_weights(&p.pending)
            .iter()
            .sum();
        assert!(bound <= total);
        for name in POLICY_NAMES {
            let out = policy_by_name(name, &opts).unwrap().place(&p).unwrap();
            validate(&p, &out.placement).unwrap();
            let w = weighted_placed(&p, &out.placement);
            assert!(
                w <= bound + 1e-9,
                "seed {seed}: {name} placed weight {w} above the bound {bound}"
            );
            let used = out
                .placement
                .iter()
                .flatten()
                .map(|b| b.node)
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            let lb = node_lower_bound(&p, &[w]).unwrap()[0].expect("a node bound");
            assert!(
                lb <= used as f64 + 1e-9,
                "seed {seed}: {name} uses {used} nodes, below the node bound {lb}"
            );
        }
    }
}

/// Regression: nodes differing only by name are grouped for eligibility; a pod pinned by
/// `matchFields` on `metadata.name` must still be checked on every node.
#[test]
fn lp_bound_respects_match_fields_pinning_within_a_node_group() {
    use plimsoll::model::{NodeSelector, NodeSelectorTerm, Operator, Requirement};
    let nodes = vec![node("n0", "a", 4000, 0), node("n1", "a", 4000, 0)];
    let pinned = NodeSelector {
        terms: vec![NodeSelectorTerm {
            match_expressions: Vec::new(),
            match_fields: vec![Requirement {
                key: "metadata.name".into(),
                operator: Operator::In,
                values: vec!["n0".into()],
            }],
        }],
    };
    let pods = (0..2)
        .map(|i| Pod {
            name: format!("p{i}"),
            namespace: "default".into(),
            requests: Resources::cpu_mem(3000, 1 << 30),
            required_node_affinity: Some(pinned.clone()),
            ..Default::default()
        })
        .collect();
    let p = Problem::from_parts(nodes, pods).unwrap();
    assert_eq!(brute_force(&p), 1.0);
    assert_eq!(lp_bound(&p).unwrap(), 1.0);
}
