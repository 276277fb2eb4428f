//! Usage-aware scheduling end to end (issue 15): the real `plimsoll server` and two real
//! `plimsoll agent` processes (process runtime, 2 CPU each) on this machine.
//!
//! A Deployment of 8 CPU burners that request 1 CPU but use about 0.1 core (a valid
//! manifest: requests = limits = 1 CPU; each burner runs `yes` 100 ms out of every
//! second, so the machine's 2 real cores are not oversubscribed by the burners
//! themselves) runs once on a cluster whose scheduler places by requests and once with
//! `--usage-aware` (agents' `--usage-interval 2`, `--usage-refresh 2`). The test counts the
//! Running burners of each, samples each node's measured CPU (`kubectl top nodes`: the
//! sum of its pods, as the agents report it when `--cpu` is given) over 30 s, and asserts
//! at least 1.5× as many Running with `--usage-aware` and at most 1 % of the samples
//! above the node's capacity. Then `plimsoll balance --kubeconfig` plans on the live
//! cluster and, with `--apply`, evicts the pods of a skewed node.
//!
//! Each cluster stops what it starts (server, agents by pid), deletes its pods, kills
//! the containers left and removes its directories (see `support/cluster.rs`).

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/images.rs"]
mod images;
mod support;

use cluster::{name_of, node_of, Cluster, Runtime, BIN};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

const REPLICAS: usize = 8;
const NODES: [&str; 2] = ["n1", "n2"];
/// Seconds of node CPU sampling per run.
const SAMPLE_SECS: u64 = 30;

/// The burners: request 1 CPU, use about 0.1 (a `yes` stopped 900 ms of every second).
fn burners(image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: burner}}
spec:
  replicas: {REPLICAS}
  selector: {{matchLabels: {{app: burner}}}}
  template:
    metadata: {{labels: {{app: burner}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: burn
        image: {image}
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "yes > /dev/null & p=$!; while :; do usleep 100000; kill -STOP $p; usleep 900000; kill -CONT $p; done"]
        resources:
          requests: {{cpu: "1", memory: 16Mi}}
          limits: {{cpu: "1", memory: 32Mi}}
"#
    )
}

fn is_running(p: &Value) -> bool {
    p["metadata"]["deletionTimestamp"].is_null() && p["status"]["phase"] == "Running"
}

fn running(c: &Cluster) -> usize {
    c.pods("app=burner")
        .iter()
        .filter(|p| is_running(p))
        .count()
}

/// `kubectl top nodes` rows: node → CPU millicores.
fn top_nodes(c: &Cluster) -> BTreeMap<String, u64> {
    let out = c.kubectl(&["top", "nodes", "--no-headers"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?.to_string();
            let cpu = f.next()?;
            let milli = match cpu.strip_suffix('m') {
                Some(m) => m.parse().ok()?,
                None => cpu.parse::<u64>().ok()? * 1000,
            };
            Some((name, milli))
        })
        .collect()
}

/// Each node's CPU capacity in millicores.
fn capacities(c: &Cluster) -> BTreeMap<String, u64> {
    c.json(&["get", "nodes"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|n| {
            let cpu = n["status"]["capacity"]["cpu"].as_str()?;
            let milli = match cpu.strip_suffix('m') {
                Some(m) => m.parse().ok()?,
                None => cpu.parse::<u64>().ok()? * 1000,
            };
            Some((n["metadata"]["name"].as_str()?.to_string(), milli))
        })
        .collect()
}

/// What one run measured.
#[derive(Debug)]
struct Run {
    running: usize,
    settle_secs: f64,
    samples: usize,
    over: usize,
    max_node_milli: u64,
    mean_node_milli: f64,
    per_node_running: BTreeMap<String, usize>,
}

/// Applies the burners, waits until the Running count has held for `settle_hold` s (or
/// all run), samples node CPU for [`SAMPLE_SECS`], counts the Running burners.
fn measure(c: &Cluster, what: &str) -> Run {
    let start = Instant::now();
    c.apply(&burners(&c.image));
    // Settled: every burner Running, or the count unchanged for 25 s with the rest
    // pending (at most 150 s).
    let mut last = (usize::MAX, Instant::now());
    let settle_secs = loop {
        let n = running(c);
        if n != last.0 {
            last = (n, Instant::now());
        }
        if n == REPLICAS
            || (n > 0 && last.1.elapsed() >= Duration::from_secs(25))
            || start.elapsed() >= Duration::from_secs(150)
        {
            break last.1.duration_since(start).as_secs_f64();
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let caps = capacities(c);
    assert_eq!(caps.len(), NODES.len(), "{what}: node capacities {caps:?}");
    // Node usage must be reported for every node before sampling.
    c.eventually(60, "kubectl top nodes for every node", || {
        (top_nodes(c).len() == NODES.len()).then_some(())
    });
    let (mut samples, mut over, mut max, mut sum) = (0, 0, 0, 0u64);
    let until = Instant::now() + Duration::from_secs(SAMPLE_SECS);
    while Instant::now() < until {
        for (node, cpu) in top_nodes(c) {
            let cap = caps[&node];
            samples += 1;
            sum += cpu;
            max = max.max(cpu);
            if cpu > cap {
                over += 1;
            }
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let pods = c.pods("app=burner");
    let mut per_node_running = BTreeMap::new();
    for p in pods.iter().filter(|p| is_running(p)) {
        *per_node_running.entry(node_of(p)).or_insert(0) += 1;
    }
    let run = Run {
        running: per_node_running.values().sum(),
        settle_secs,
        samples,
        over,
        max_node_milli: max,
        mean_node_milli: sum as f64 / samples.max(1) as f64,
        per_node_running,
    };
    eprintln!("{what}: {run:?}");
    eprintln!("{}", c.ok(&["top", "pods"]));
    run
}

fn balance(c: &Cluster, args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .args(["balance", "--kubeconfig"])
        .arg(c.kubeconfig())
        .args(args)
        .args(["-o", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "plimsoll balance {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn usage_aware_scheduling_runs_more_burners_without_overloading_nodes() {
    let by_requests = {
        let c = Cluster::start_with(
            "usage-off",
            Runtime::Process,
            &NODES,
            &["--policy", "kube-default"],
        );
        measure(&c, "by requests")
    };
    let c = Cluster::start_with(
        "usage-on",
        Runtime::Process,
        &NODES,
        &[
            "--policy",
            "kube-default",
            "--usage-aware",
            "--usage-refresh",
            "2",
        ],
    );
    let by_usage = measure(&c, "--usage-aware");
    let pct = |r: &Run| 100.0 * r.over as f64 / r.samples.max(1) as f64;
    println!(
        "usage-aware end to end: by requests {} of {REPLICAS} Running ({:?}), node CPU mean {:.0}m max {}m, {} of {} samples over capacity ({:.1}%); \
         --usage-aware {} Running ({:?}) after {:.0} s, node CPU mean {:.0}m max {}m, {} of {} samples over capacity ({:.1}%); ratio {:.2}",
        by_requests.running,
        by_requests.per_node_running,
        by_requests.mean_node_milli,
        by_requests.max_node_milli,
        by_requests.over,
        by_requests.samples,
        pct(&by_requests),
        by_usage.running,
        by_usage.per_node_running,
        by_usage.settle_secs,
        by_usage.mean_node_milli,
        by_usage.max_node_milli,
        by_usage.over,
        by_usage.samples,
        pct(&by_usage),
        by_usage.running as f64 / by_requests.running.max(1) as f64,
    );
    assert_eq!(
        by_requests.running, 4,
        "by requests, two 1-CPU burners fit each 2-CPU node"
    );
    assert!(
        by_usage.running as f64 >= 1.5 * by_requests.running as f64,
        "--usage-aware ran {} burners, by requests {}",
        by_usage.running,
        by_requests.running
    );
    for r in [&by_requests, &by_usage] {
        assert!(r.samples >= 20, "too few node samples: {r:?}");
        assert!(
            r.over * 100 <= r.samples,
            "node CPU above capacity in more than 1% of the samples: {r:?}"
        );
    }
    // The scheduler says how many pods it charges by prediction.
    let metrics = c.ok(&["get", "--raw", "/metrics"]);
    let predicted: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("plimsoll_scheduler_usage_predicted_pods "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no usage gauge in /metrics"));
    assert_eq!(
        predicted, REPLICAS as i64,
        "every burner charged by prediction"
    );

    // `plimsoll balance` on the live cluster: every burner predicted under its request;
    // both nodes far under 80 %, so nothing to move.
    let plan = balance(&c, &[]);
    let predicted = plan["live"]["predicted"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert_eq!(predicted.len(), REPLICAS, "{plan}");
    for (pod, p) in &predicted {
        let cpu: u64 = p["cpu"]
            .as_str()
            .unwrap()
            .trim_end_matches('m')
            .parse()
            .unwrap();
        // Under the 1-CPU request (the window rule's max can hold a start-up sample).
        assert!((10..1000).contains(&cpu), "{pod}: {p}");
    }
    assert_eq!(plan["moves"], serde_json::json!([]), "{plan}");

    // A skewed node: the Deployment gone, six bare burners bound to n1 by hand.
    c.ok(&["delete", "deployment", "burner", "--wait=false"]);
    c.eventually(60, "the Deployment's burners gone", || {
        c.pods("app=burner").is_empty().then_some(())
    });
    let mut bare = String::new();
    for i in 0..6 {
        bare.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: skew-{i}, labels: {{app: skew}}}}\n\
             spec:\n  nodeName: n1\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: burn\n    \
             image: {}\n    imagePullPolicy: IfNotPresent\n    command: [\"sh\", \"-c\", \"yes > /dev/null & p=$!; while :; do usleep 100000; kill -STOP $p; usleep 900000; kill -CONT $p; done\"]\n    \
             resources: {{requests: {{cpu: 250m, memory: 16Mi}}, limits: {{cpu: 250m, memory: 32Mi}}}}\n",
            c.image
        ));
    }
    c.apply(&bare);
    // History of their own (at least 3 samples each) before planning.
    let deadline = Instant::now() + Duration::from_secs(90);
    let plan = loop {
        let plan = balance(&c, &["--high", "0.05"]);
        let n = plan["live"]["predicted"].as_object().map_or(0, |m| m.len());
        if n == 6 && plan["moves"].as_array().is_some_and(|m| !m.is_empty()) {
            break plan;
        }
        assert!(
            Instant::now() < deadline,
            "no plan with the six skewed pods predicted and moves: {plan}"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    eprintln!("dry-run plan: {plan}");
    let applied = balance(&c, &["--high", "0.05", "--apply"]);
    let moves: Vec<String> = applied["moves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["pod"]
                .as_str()
                .unwrap()
                .trim_start_matches("default/")
                .to_string()
        })
        .collect();
    assert!(!moves.is_empty(), "{applied}");
    let done = applied["live"]["applied"].as_array().unwrap();
    assert_eq!(done.len(), moves.len(), "{applied}");
    for a in done {
        assert_eq!(a["ok"], true, "{a}");
        // The server has no pods/eviction subresource: a delete with the grace period.
        assert!(
            a["action"]
                .as_str()
                .unwrap()
                .starts_with("deleted with its grace period of 1 s"),
            "{a}"
        );
    }
    c.eventually(30, "the moved pods gone", || {
        let left: Vec<String> = c.pods("app=skew").iter().map(name_of).collect();
        moves.iter().all(|m| !left.contains(m)).then_some(())
    });
}
