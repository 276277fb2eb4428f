//! Hostile manifests: values beyond Kubernetes' and Plimsoll's stated bounds end in an
//! error naming the file, line and field, quickly and without claiming memory in
//! proportion to a number written in the input; and values at the bounds behave as
//! before.

use plimsoll::manifest::{
    load_str, InvalidManifest, ManifestError, MAX_NESTING_DEPTH, MAX_PODS, MAX_REPLICAS,
};
use plimsoll::model::{Problem, MAX_GPUS_PER_NODE};
use plimsoll::place::{policy_by_name, validate::validate, PolicyOptions, POLICY_NAMES};
use std::time::{Duration, Instant};

fn invalid(text: &str) -> InvalidManifest {
    match load_str(text, "bad.yaml") {
        Ok(_) => panic!("expected an error for:\n{}", &text[..text.len().min(400)]),
        Err(ManifestError::Invalid(e)) => *e,
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

fn node(name: &str, status: &str) -> String {
    format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\nstatus:\n{status}\n")
}

fn pod(name: &str, containers: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n{containers}"
    )
}

/// Four containers of 2^62 millicores each: the sum, 2^64, wrapped to 0 and the pod
/// "fitted" an 8-CPU node under every policy (and the validator rejected the result).
#[test]
fn container_sums_beyond_2_pow_62_are_an_error_naming_the_container() {
    let c = "  - name: c{i}\n    resources:\n      requests:\n        cpu: 4611686018427387904m\n";
    let containers: String = (0..4).map(|i| c.replace("{i}", &i.to_string())).collect();
    let e = invalid(&pod("huge", &containers));
    let s = e.to_string();
    assert_eq!(
        e.field.as_deref(),
        Some("spec.containers[1].resources"),
        "{s}"
    );
    assert_eq!(e.object.as_deref(), Some("Pod default/huge"), "{s}");
    assert_eq!(e.line, Some(12), "{s}");
    assert!(s.contains("total cpu request is larger than"), "{s}");
    // One such container is within the bound and simply never fits an 8-CPU node.
    let text = format!(
        "{}---\n{}",
        node(
            "n8",
            "  allocatable: {cpu: \"8\", memory: 8Gi, pods: \"110\"}"
        ),
        pod("big", &c.replace("{i}", "0"))
    );
    let l = load_str(&text, "ok.yaml").unwrap();
    let p = Problem::from_parts(l.nodes, l.pods).unwrap();
    for name in POLICY_NAMES {
        let out = policy_by_name(name, &PolicyOptions::default())
            .unwrap()
            .place(&p)
            .unwrap();
        assert!(validate(&p, &out.placement).is_ok(), "policy {name}");
        assert_eq!(out.placed(), 0, "policy {name}");
    }
}

#[test]
fn a_quantity_of_10_pow_30_ei_is_an_error_naming_the_field() {
    let c = "  - name: c\n    resources:\n      requests:\n        memory: 1000000000000000000000000000000Ei\n";
    let e = invalid(&pod("p", c));
    assert_eq!(
        e.field.as_deref(),
        Some("spec.containers[0].resources.requests.memory")
    );
    assert_eq!(e.line, Some(10));
    assert!(e.to_string().contains("is too large"), "{e}");
}

/// `nvidia.com/gpu: "4294967295"` made one node allocate a 16 GB device array.
#[test]
fn gpu_devices_per_node_are_bounded() {
    let status = |n: u64| format!("  allocatable:\n    cpu: \"8\"\n    nvidia.com/gpu: \"{n}\"");
    let t0 = Instant::now();
    let e = invalid(&node("g", &status(4_294_967_295)));
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!(
        e.field.as_deref(),
        Some("status.allocatable[\"nvidia.com/gpu\"]"),
        "{e}"
    );
    assert_eq!(e.line, Some(8), "{e}");
    assert!(e.to_string().contains("at most 256"), "{e}");
    let ok = load_str(&node("g", &status(MAX_GPUS_PER_NODE.into())), "ok.yaml").unwrap();
    assert_eq!(ok.nodes[0].gpu_count(), MAX_GPUS_PER_NODE);
}

/// An explicit `pods: "0"` was read as the kubelet default of 110.
#[test]
fn explicit_zero_pods_means_no_pod_fits() {
    let zero = node(
        "zero",
        "  allocatable: {cpu: \"8\", memory: 8Gi, pods: \"0\"}",
    );
    let absent = node("absent", "  allocatable: {cpu: \"8\", memory: 8Gi}");
    let cap_only = node("cap", "  capacity: {cpu: \"8\", memory: 8Gi, pods: \"0\"}");
    let l = load_str(&format!("{zero}---\n{absent}---\n{cap_only}"), "n.yaml").unwrap();
    let pods: Vec<u64> = l.nodes.iter().map(|n| n.allocatable.pods).collect();
    assert_eq!(pods, vec![0, 110, 0]);
    assert_eq!(
        l.nodes[0].capacity.pods, 110,
        "no capacity given: the default"
    );
    let text = format!(
        "{zero}---\n{}",
        pod(
            "p",
            "  - name: c\n    resources:\n      requests:\n        cpu: 1\n"
        )
    );
    let l = load_str(&text, "p.yaml").unwrap();
    let p = Problem::from_parts(l.nodes, l.pods).unwrap();
    for name in POLICY_NAMES {
        let out = policy_by_name(name, &PolicyOptions::default())
            .unwrap()
            .place(&p)
            .unwrap();
        assert_eq!(out.placed(), 0, "policy {name}");
    }
}

fn deployment(name: &str, replicas: u64) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: w}}\n  template:\n    metadata:\n      labels: {{app: w}}\n    spec:\n      containers:\n      - name: c\n"
    )
}

#[test]
fn a_deployment_of_10_pow_9_replicas_is_a_quick_error() {
    let t0 = Instant::now();
    let e = invalid(&deployment("web", 1_000_000_000));
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!(e.field.as_deref(), Some("spec.replicas"));
    assert_eq!(e.line, Some(6));
    assert!(
        e.to_string()
            .contains(&format!("1000000000 is out of range [0, {MAX_REPLICAS}]")),
        "{e}"
    );
}

/// A 20,000-character name copied into 100,000 replicas reached 4.3 GB.
#[test]
fn names_and_labels_beyond_kubernetes_limits_are_errors() {
    let e = invalid(&deployment(&"w".repeat(20_000), 100_000));
    assert_eq!(e.field.as_deref(), Some("metadata.name"));
    assert_eq!(e.line, Some(4));
    assert!(e.to_string().contains("20000 characters"), "{e}");
    let l = load_str(&deployment(&"w".repeat(253), 3), "ok.yaml").unwrap();
    assert_eq!(l.pods.len(), 3);
    let labels = |k: &str, v: &str| {
        format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: n\n  labels:\n    {k}: \"{v}\"\n")
    };
    let e = invalid(&labels("zone", &"z".repeat(64)));
    assert_eq!(e.field.as_deref(), Some("metadata.labels[\"zone\"]"));
    assert_eq!(e.line, Some(6));
    let e = invalid(&labels(&"k".repeat(64), "z"));
    assert!(e.to_string().contains("invalid label key"), "{e}");
    assert!(load_str(&labels("topology.kubernetes.io/zone", "eu-1a"), "ok.yaml").is_ok());
}

/// 200 KB of nested flow lists took 24 s in the YAML parser.
#[test]
fn deeply_nested_yaml_is_rejected_quickly_naming_the_line() {
    let text = format!("kind: Pod\nspec: {}\n", "[".repeat(200_000));
    let t0 = Instant::now();
    let e = invalid(&text);
    let took = t0.elapsed();
    assert!(took < Duration::from_millis(500), "{took:?}");
    assert_eq!(e.line, Some(2));
    assert!(
        e.to_string()
            .contains(&format!("at most {MAX_NESTING_DEPTH} levels")),
        "{e}"
    );
    let mut block = String::new();
    for d in 0..2 * MAX_NESTING_DEPTH {
        block.push_str(&format!("{}k{d}:\n", " ".repeat(d)));
    }
    assert_eq!(invalid(&block).line, Some(MAX_NESTING_DEPTH + 1));
}

/// "Billion laughs": nine levels of ten aliases each.
#[test]
fn a_yaml_alias_bomb_ends_in_an_error() {
    let mut text = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
    let mut prev = "a";
    for n in names {
        let refs = vec![format!("*{prev}"); 9].join(",");
        text.push_str(&format!("{n}: &{n} [{refs}]\n"));
        prev = n;
    }
    text.push_str("kind: Pod\n");
    let t0 = Instant::now();
    let e = invalid(&text);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(e.file, "bad.yaml");
    assert!(e.to_string().contains("bad.yaml: document 1"), "{e}");
}

/// Replicas are bounded per object and pods per load: two Deployments of 100,000 pass
/// the first bound and not the second.
#[test]
fn pods_in_one_load_are_bounded() {
    let text = format!(
        "{}---\n{}",
        deployment("one", MAX_REPLICAS as u64),
        deployment("two", MAX_REPLICAS as u64)
    );
    let e = invalid(&text);
    assert_eq!(e.document, Some(2));
    assert_eq!(e.field.as_deref(), Some("spec.replicas"));
    assert!(
        e.to_string()
            .contains(&format!("more than {MAX_PODS} pods in the input")),
        "{e}"
    );
}

/// The fuzzer's two manifest findings (`fuzz/regressions/manifest/`): a node with
/// `nvidia.com/gpu: "8Mi"` overflowed the engine's free-GPU total, one with
/// `"2000000000"` GPUs timed out. Both are now an error naming the field, at once.
#[test]
fn fuzz_regressions_huge_gpu_counts_are_errors() {
    for file in ["gpu-free-total-overflow.yaml", "huge-gpu-count.yaml"] {
        let path = format!(
            "{}/fuzz/regressions/manifest/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let start = Instant::now();
        let e = plimsoll::manifest::load_files(&[&path])
            .unwrap_err()
            .to_string();
        assert!(start.elapsed() < Duration::from_secs(2), "{file}: slow");
        assert!(
            e.contains(file) && e.contains("nvidia.com/gpu"),
            "{file}: {e}"
        );
        assert!(e.contains(&MAX_GPUS_PER_NODE.to_string()), "{file}: {e}");
    }
}
