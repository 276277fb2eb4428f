//! The `plimsoll` binary end to end: manifests written to a temporary folder, the JSON,
//! YAML and table outputs, error messages and exit codes for bad input, and the demo.

use plimsoll::place::POLICY_NAMES;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

const NODES: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: cpu-1
  labels:
    kubernetes.io/hostname: cpu-1
status:
  allocatable:
    cpu: "4"
    memory: 16Gi
    pods: "110"
---
apiVersion: v1
kind: Node
metadata:
  name: gpu-1
  labels:
    kubernetes.io/hostname: gpu-1
    nvidia.com/gpu.product: T4
status:
  allocatable:
    cpu: "8"
    memory: 32Gi
    nvidia.com/gpu: "2"
    pods: "110"
"#;

const PODS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx
        resources:
          requests: {cpu: "1", memory: 1Gi}
---
apiVersion: v1
kind: Pod
metadata:
  name: infer
  annotations:
    plimsoll.io/gpu-milli: "500"
spec:
  containers:
  - name: infer
    image: example.com/infer
    resources:
      requests: {cpu: "1", memory: 2Gi}
---
apiVersion: v1
kind: Pod
metadata:
  name: train
  namespace: ml
spec:
  containers:
  - name: train
    image: example.com/train
    resources:
      requests: {cpu: "2", memory: 4Gi}
      limits: {nvidia.com/gpu: "1"}
---
apiVersion: v1
kind: Pod
metadata:
  name: huge
spec:
  containers:
  - name: huge
    image: example.com/huge
    resources:
      requests: {cpu: "10000", memory: 1Gi}
"#;

/// A fresh folder under the system temp dir, unique to this test and process.
fn temp_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plimsoll-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

fn plimsoll(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

#[test]
fn place_prints_one_json_object_with_placements_unplaced_and_summary() {
    let dir = temp_dir("json");
    let nodes = write(&dir, "nodes.yaml", NODES);
    let pods = write(&dir, "pods.yaml", PODS);
    let o = plimsoll(&[
        "place",
        "-f",
        &nodes,
        "-f",
        &pods,
        "--policy",
        "first-fit",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let v = json_of(&o);
    let placements = v["placements"].as_array().unwrap();
    assert_eq!(placements.len(), 4, "{v:#}");
    for p in placements {
        let pod = p["pod"].as_str().unwrap();
        let node = p["node"].as_str().unwrap();
        assert!(node == "cpu-1" || node == "gpu-1");
        match pod {
            "infer" | "train" => {
                assert_eq!(node, "gpu-1");
                assert_eq!(p["gpu_devices"].as_array().unwrap().len(), 1, "{p}");
            }
            _ => assert!(p.get("gpu_devices").is_none(), "{p}"),
        }
    }
    let train = placements.iter().find(|p| p["pod"] == "train").unwrap();
    assert_eq!(train["namespace"], "ml");
    // The share and the whole GPU never sit on the same device.
    let infer = placements.iter().find(|p| p["pod"] == "infer").unwrap();
    assert_ne!(infer["gpu_devices"], train["gpu_devices"]);

    // A request no node could ever hold is an unplaced pod with kube's reason, plus a
    // warning on stderr saying it is final.
    let unplaced = v["unplaced"].as_array().unwrap();
    assert_eq!(unplaced.len(), 1);
    assert_eq!(unplaced[0]["pod"], "huge");
    assert_eq!(unplaced[0]["namespace"], "default");
    assert_eq!(
        unplaced[0]["reason"],
        "0/2 nodes are available: 2 Insufficient cpu."
    );
    let err = stderr(&o);
    assert!(
        err.contains("warning: pod default/huge can never be placed"),
        "{err}"
    );

    let s = &v["summary"];
    assert_eq!(s["policy"], "first-fit");
    assert_eq!(s["placed"], 4);
    assert_eq!(s["unplaced"], 1);
    assert!(s["nodes_used"].as_u64().unwrap() >= 1 && s["nodes_used"].as_u64().unwrap() <= 2);
    for k in ["objective", "bound", "gap", "solve_seconds"] {
        assert!(s.get(k).is_some(), "summary lacks {k}");
    }
    assert!(s["solve_seconds"].as_f64().unwrap() >= 0.0);
}

#[test]
fn place_yaml_and_table_outputs_carry_the_same_result() {
    let dir = temp_dir("yaml");
    let nodes = write(&dir, "nodes.yaml", NODES);
    let pods = write(&dir, "pods.yaml", PODS);
    let o = plimsoll(&[
        "place", "-f", &nodes, "-f", &pods, "--policy", "best-fit", "-o", "yaml",
    ]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let v: Value = serde_yaml::from_slice(&o.stdout).unwrap();
    assert_eq!(v["placements"].as_array().unwrap().len(), 4);
    assert_eq!(v["summary"]["policy"], "best-fit");
    assert_eq!(v["unplaced"][0]["pod"], "huge");

    let o = plimsoll(&["place", "-f", &nodes, "-f", &pods, "--policy", "best-fit"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "web-",
        "infer",
        "train",
        "huge",
        "Insufficient cpu",
        "4 placed, 1 unplaced",
    ] {
        assert!(out.contains(needle), "table lacks {needle:?}:\n{out}");
    }
}

/// Runs `place` on one bad manifest and returns (exit code, stderr).
fn bad_manifest(test: &str, text: &str) -> (Option<i32>, String) {
    let dir = temp_dir(test);
    let nodes = write(&dir, "nodes.yaml", NODES);
    let bad = write(&dir, "bad.yaml", text);
    let o = plimsoll(&["place", "-f", &nodes, "-f", &bad, "--policy", "first-fit"]);
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("bad.yaml"), "the error names the file: {err}");
    (o.status.code(), err)
}

#[test]
fn malformed_yaml_is_a_clear_error() {
    let (code, err) = bad_manifest(
        "malformed",
        "apiVersion: v1\nkind: Pod\nmetadata: [unclosed\n",
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.starts_with("error:"), "{err}");
}

#[test]
fn unknown_kind_is_a_clear_error() {
    let (code, err) = bad_manifest(
        "kind",
        "apiVersion: v1\nkind: Gizmo\nmetadata:\n  name: g\n",
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("Gizmo"), "{err}");
}

#[test]
fn bad_quantity_names_the_field() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: i\n    resources:\n      requests: {cpu: lots}\n";
    let (code, err) = bad_manifest("quantity", text);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cpu"), "{err}");
    assert!(err.contains("lots"), "{err}");
}

#[test]
fn missing_file_unknown_policy_and_bad_options_exit_2() {
    let dir = temp_dir("options");
    let nodes = write(&dir, "nodes.yaml", NODES);
    let missing = dir.join("nope.yaml").to_string_lossy().into_owned();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["place", "-f", &missing], "nope.yaml"),
        (
            vec!["place", "-f", &nodes, "--policy", "magic"],
            "unknown policy",
        ),
        (vec!["place", "-f", &nodes, "--gap", "5"], "--gap"),
        (
            vec!["place", "-f", &nodes, "--time-limit", "0"],
            "--time-limit",
        ),
        (
            vec!["place", "-f", &nodes, "--objective", "cheapest"],
            "cheapest",
        ),
        (vec!["place", "-f", &nodes, "--output", "xml"], "xml"),
        (vec!["place"], "--file"),
        (vec!["demo", "--policies", "first-fit,magic"], "magic"),
    ];
    for (args, needle) in cases {
        let o = plimsoll(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: stderr lacks {needle:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?} printed a result");
    }
}

#[test]
fn demo_runs_every_policy_and_validates_them() {
    let o = plimsoll(&["demo", "--nodes", "40", "--time-limit", "5"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}\nstdout: {out}",
        stderr(&o)
    );
    for p in POLICY_NAMES {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{p} "))),
            "no row for {p}:\n{out}"
        );
    }
    assert!(!out.contains("INVALID"), "{out}");
}

#[test]
fn demo_json_has_one_valid_row_per_policy() {
    let o = plimsoll(&[
        "demo",
        "--nodes",
        "30",
        "--seed",
        "7",
        "--time-limit",
        "5",
        "-o",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let v = json_of(&o);
    assert_eq!(v["nodes"], 30);
    let pending = v["pending_pods"].as_u64().unwrap();
    assert!(pending > 0);
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), POLICY_NAMES.len());
    for (row, name) in rows.iter().zip(POLICY_NAMES) {
        assert_eq!(row["policy"], *name);
        assert!(row["errors"].as_array().unwrap().is_empty(), "{row}");
        let placed = row["placed"].as_u64().unwrap();
        assert_eq!(placed + row["unplaced"].as_u64().unwrap(), pending);
        assert!(placed > 0, "{row}");
        let gpu = row["gpu_alloc_pct"].as_f64().unwrap();
        let cpu = row["cpu_alloc_pct"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&gpu) && gpu > 0.0, "{row}");
        assert!((0.0..=100.0).contains(&cpu) && cpu > 0.0, "{row}");
    }
}

/// The README's example command works on the repository's sample manifests.
#[test]
fn readme_example_places_every_sample_pod() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/manifests");
    let file = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let (cluster, web, share) = (
        file("cluster.yaml"),
        file("web-deployment.yaml"),
        file("gpushare-job.yaml"),
    );
    let args = [
        "place", "-f", &cluster, "-f", &web, "-f", &share, "--policy", "best-fit", "-o", "json",
    ];
    let o = plimsoll(&args);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let v = json_of(&o);
    assert_eq!(v["summary"]["unplaced"], 0, "{v:#}");
    assert_eq!(v["placements"].as_array().unwrap().len(), 7, "{v:#}");
    // The web replicas carry hostname anti-affinity: three distinct nodes.
    let web_nodes: std::collections::BTreeSet<&str> = v["placements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["namespace"] == "shop")
        .map(|p| p["node"].as_str().unwrap())
        .collect();
    assert_eq!(web_nodes.len(), 3);
}

#[test]
fn place_with_milp_reports_objective_bound_and_gap() {
    let dir = temp_dir("milp");
    let nodes = write(&dir, "nodes.yaml", NODES);
    let pods = write(&dir, "pods.yaml", PODS);
    let args = [
        "place",
        "-f",
        &nodes,
        "-f",
        &pods,
        "--policy",
        "milp",
        "--objective",
        "pack",
        "--time-limit",
        "5",
        "-o",
        "json",
    ];
    let o = plimsoll(&args);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let v = json_of(&o);
    let s = &v["summary"];
    assert_eq!(s["policy"], "milp");
    assert_eq!(s["placed"], 4, "{v:#}");
    assert_eq!(v["unplaced"][0]["pod"], "huge");
    let (obj, bound, gap) = (
        s["objective"].as_f64().expect("objective"),
        s["bound"].as_f64().expect("bound"),
        s["gap"].as_f64().expect("gap"),
    );
    assert!(obj.is_finite() && bound.is_finite() && gap >= 0.0, "{s}");
}

/// The binary on inputs beyond the stated bounds: exit 2 with an error naming the file
/// and line (never exit 1 from a wrapped sum, never a silent exit 0), messages about the
/// input as a whole name the files, and the table output ends its last line.
mod limits {
    use super::*;

    const NODE: &str = "apiVersion: v1\nkind: Node\nmetadata:\n  name: n8\nstatus:\n  allocatable: {cpu: \"8\", memory: 8Gi, pods: \"110\"}\n";

    /// openb nodes of `u64::MAX` millicores with two pods of 10^19: the sum wrapped, every
    /// policy put both pods on n1 and the validator (saturating) accepted it: exit 0.
    #[test]
    fn openb_values_that_would_wrap_exit_2_naming_file_and_line() {
        let dir = temp_dir("openb");
        let nodes = write(
            &dir,
            "nodes.csv",
            "sn,cpu_milli,memory_mib,gpu,model\nn1,18446744073709551615,1024,0,\n",
        );
        let pods = write(
            &dir,
            "pods.csv",
            "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np1,10000000000000000000,1,0,0\np2,10000000000000000000,1,0,0\n",
        );
        for policy in ["first-fit", "best-fit", "milp"] {
            let o = plimsoll(&["place", "-f", &nodes, "-f", &pods, "--policy", policy]);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{policy}: {err}");
            assert!(
                err.contains("nodes.csv: line 2: column cpu_milli"),
                "{policy}: {err}"
            );
        }
    }

    /// Four containers of 2^62 millicores: exit 1 (the validator rejected every policy's
    /// placement of a pod whose request had wrapped to 0); now a bad-input error.
    #[test]
    fn a_pod_whose_container_sum_overflows_exits_2_naming_the_field() {
        let dir = temp_dir("sum");
        let nodes = write(&dir, "nodes.yaml", NODE);
        let c = "  - name: c\n    resources:\n      requests:\n        cpu: 4611686018427387904m\n";
        let pod = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: huge\nspec:\n  containers:\n{}",
            c.repeat(4)
        );
        let pods = write(&dir, "pods.yaml", &pod);
        let o = plimsoll(&["place", "-f", &nodes, "-f", &pods]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains(
                "pods.yaml: document 1 (Pod default/huge), line 12: spec.containers[1].resources"
            ),
            "{err}"
        );
    }

    #[test]
    fn no_node_objects_names_the_files() {
        let dir = temp_dir("no-nodes");
        let pod =
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n";
        let pods = write(&dir, "only-pods.yaml", pod);
        let o = plimsoll(&["place", "-f", &pods]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("{pods}: the input has no Node objects")),
            "{err}"
        );
    }

    /// The table's summary line used to be left open, so a warning printed on stderr right
    /// after it (into the same terminal) landed on the same line.
    #[test]
    fn place_table_output_ends_with_a_newline() {
        let dir = temp_dir("newline");
        let nodes = write(&dir, "nodes.yaml", NODE);
        let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    resources:\n      requests: {cpu: \"1\"}\n";
        let pods = write(&dir, "pods.yaml", pod);
        let o = plimsoll(&["place", "-f", &nodes, "-f", &pods, "-o", "table"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("1 placed, 0 unplaced"), "{out}");
        assert!(out.ends_with('\n'), "{out:?}");
    }
}
