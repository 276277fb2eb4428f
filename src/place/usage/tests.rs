use super::*;
use crate::model::Node;
use crate::place::policy_by_name;
use crate::place::PolicyOptions;

const GI: u64 = 1 << 30;

fn node(name: &str, cpu_milli: u64, mem: u64) -> Node {
    let r = Resources {
        cpu_milli,
        memory_bytes: mem,
        pods: 110,
        ephemeral_storage_bytes: 1 << 40,
        extended: Default::default(),
    };
    Node {
        name: name.into(),
        capacity: r.clone(),
        allocatable: r,
        ..Default::default()
    }
}

fn pod(name: &str, cpu_milli: u64, mem: u64) -> Pod {
    Pod {
        name: name.into(),
        namespace: "default".into(),
        requests: Resources::cpu_mem(cpu_milli, mem),
        ..Default::default()
    }
}

/// Two 4-core nodes, eight 2-core pods: by request only four fit.
fn problem() -> Problem {
    let nodes = vec![node("n0", 4000, 64 * GI), node("n1", 4000, 64 * GI)];
    let pods = (0..8).map(|i| pod(&format!("p{i}"), 2000, GI)).collect();
    Problem::from_parts(nodes, pods).unwrap()
}

fn estimates(cpu_milli: u64, memory: Option<u64>, n: usize) -> UsageEstimates {
    UsageEstimates {
        by_pod: (0..n)
            .map(|i| {
                (
                    format!("default/p{i}"),
                    PodEstimate {
                        cpu_milli,
                        memory_bytes: memory,
                    },
                )
            })
            .collect(),
    }
}

#[test]
fn charge_inflates_by_margin_and_caps_at_request() {
    assert_eq!(charge(500, 2000, 0.2), 600);
    assert_eq!(charge(1001, 2000, 0.0), 1001);
    assert_eq!(charge(1900, 2000, 0.2), 2000, "capped at the request");
    assert_eq!(
        charge(300, 0, 0.5),
        450,
        "a zero request is charged the estimate"
    );
    assert_eq!(charge(333, 2000, 0.5), 500, "rounded up");
}

#[test]
fn options_reject_bad_margins() {
    for m in [-0.1, f64::NAN, f64::INFINITY, MAX_MARGIN + 1.0] {
        assert!(UsageOptions::new(m, false).is_err(), "margin {m}");
    }
    assert!(UsageOptions::new(0.0, false).is_ok());
}

#[test]
fn estimates_below_requests_fit_more_pods_with_every_policy() {
    let p = problem();
    let est = estimates(800, None, 8);
    let opts = UsageOptions::new(0.25, false).unwrap();
    for name in ["best-fit", "kube-default", "first-fit", "milp"] {
        if cfg!(not(feature = "milp")) && name == "milp" {
            continue;
        }
        let placer = policy_by_name(name, &PolicyOptions::default()).unwrap();
        let by_request = placer.place(&p).unwrap();
        assert_eq!(by_request.placed(), 4, "{name} by request");
        let u = place_by_usage(placer.as_ref(), &p, &est, &opts).unwrap();
        // 800 m × 1.25 = 1000 m each: four per node.
        assert_eq!(u.outcome.placed(), 8, "{name} by usage");
        assert!(validate(&u.effective.problem, &u.outcome.placement).is_ok());
        assert!(
            validate(&p, &u.outcome.placement).is_err(),
            "{name}: the placement over-commits requests"
        );
        let after = u.apply().unwrap();
        assert_eq!(after.bound_count(), 8);
    }
}

#[test]
fn memory_stays_by_request_unless_asked() {
    let p = problem();
    let est = estimates(800, Some(GI / 4), 8);
    let cpu_only = effective_problem(&p, &est, &UsageOptions::new(0.0, false).unwrap()).unwrap();
    for (e, o) in cpu_only.problem.pending.iter().zip(&p.pending) {
        assert_eq!(e.requests.memory_bytes, o.requests.memory_bytes);
        assert_eq!(e.requests.cpu_milli, 800);
    }
    let both = effective_problem(&p, &est, &UsageOptions::new(0.0, true).unwrap()).unwrap();
    for e in &both.problem.pending {
        assert_eq!(e.requests.memory_bytes, GI / 4);
    }
    assert_eq!(both.original_pending_requests[0], p.pending[0].requests);
}

#[test]
fn pods_without_an_estimate_keep_their_request_and_other_fields() {
    let mut p = problem();
    p.pending[0].priority = 7;
    p.pending[0].requests.ephemeral_storage_bytes = 5;
    let est = estimates(100, None, 3);
    let e = effective_problem(&p, &est, &UsageOptions::new(0.0, false).unwrap()).unwrap();
    assert_eq!(e.estimated_pods, 3);
    assert_eq!(e.problem.pending[0].requests.cpu_milli, 100);
    assert_eq!(e.problem.pending[0].priority, 7);
    assert_eq!(e.problem.pending[0].requests.ephemeral_storage_bytes, 5);
    for i in 3..8 {
        assert_eq!(e.problem.pending[i].requests, p.pending[i].requests);
    }
}

#[test]
fn bound_pods_are_charged_their_estimate_and_stay_put() {
    let mut bound = pod("p0", 4000, GI);
    bound.node_name = Some("n1".into());
    let nodes = vec![node("n0", 4000, 64 * GI), node("n1", 4000, 64 * GI)];
    let p = Problem::from_parts(nodes, vec![bound, pod("p1", 3000, GI)]).unwrap();
    let est = estimates(500, None, 2);
    let e = effective_problem(&p, &est, &UsageOptions::new(0.0, false).unwrap()).unwrap();
    assert_eq!(e.estimated_pods, 2);
    let n1 = e.problem.cluster.node_id("n1").unwrap();
    assert_eq!(e.problem.cluster.used(n1).cpu_milli, 500);
    assert_eq!(e.problem.cluster.pods_on(n1).len(), 1);
}

#[test]
fn estimates_file_parses_and_names_bad_fields() {
    let path = Path::new("est.yaml");
    let ok = UsageEstimates::parse(
        "pods:\n  web: {cpu: 250m, memory: 512Mi}\n  batch/job-1: {cpu: 2}\n",
        path,
    )
    .unwrap();
    assert_eq!(
        ok.by_pod["default/web"],
        PodEstimate {
            cpu_milli: 250,
            memory_bytes: Some(512 << 20)
        }
    );
    assert_eq!(ok.by_pod["batch/job-1"].cpu_milli, 2000);
    let json = UsageEstimates::parse(r#"{"pods": {"a": {"cpu": "1"}}}"#, path).unwrap();
    assert_eq!(json.by_pod["default/a"].cpu_milli, 1000);
    let bad = UsageEstimates::parse("pods:\n  web: {cpu: lots}\n", path)
        .unwrap_err()
        .to_string();
    assert!(
        bad.contains("est.yaml") && bad.contains("web") && bad.contains("cpu"),
        "{bad}"
    );
    let missing = UsageEstimates::parse("pods:\n  web: {memory: 1Gi}\n", path)
        .unwrap_err()
        .to_string();
    assert!(missing.contains("missing"), "{missing}");
    let typo = UsageEstimates::parse("pods:\n  web: {cpus: 1}\n", path)
        .unwrap_err()
        .to_string();
    assert!(typo.contains("est.yaml") && typo.contains("cpus"), "{typo}");
    let p = problem();
    assert_eq!(ok.unknown_pods(&p), vec!["batch/job-1", "default/web"]);
}
