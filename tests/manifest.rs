//! Kubernetes manifests into model nodes and pods: quantities, constraints, expansion,
//! requests arithmetic, GPU annotations, priority classes, pod groups, and every error.

use plimsoll::manifest::{load_files, load_str, InvalidManifest, Loaded, ManifestError};
use plimsoll::model::{GpuAmount, Operator, TaintEffect, TolerationOperator, WhenUnsatisfiable};

const GI: u64 = 1 << 30;
const MI: u64 = 1 << 20;

fn load(text: &str) -> Loaded {
    load_str(text, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn invalid(text: &str) -> InvalidManifest {
    match load_str(text, "bad.yaml") {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(ManifestError::Invalid(e)) => *e,
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

/// Asserts the error names the file, the document, the field, and contains `msg`.
fn assert_err(text: &str, document: usize, field: &str, msg: &str) -> InvalidManifest {
    let e = invalid(text);
    let s = e.to_string();
    assert_eq!(e.file, "bad.yaml", "{s}");
    assert_eq!(e.document, Some(document), "{s}");
    assert_eq!(e.field.as_deref(), Some(field), "{s}");
    assert!(s.contains(msg), "{s:?} should contain {msg:?}");
    assert!(
        s.starts_with(&format!("bad.yaml: document {document}")),
        "{s}"
    );
    e
}

fn pod_with(spec_extra: &str, resources: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: x\n    resources:\n{resources}\n{spec_extra}\n"
    )
}

#[test]
fn quantities_inside_manifests() {
    let l = load(&pod_with(
        "",
        "      requests:\n        cpu: 0.25\n        memory: 1.5Gi\n        ephemeral-storage: 1e9\n        example.com/foo: 3\n        hugepages-2Mi: 4Mi",
    ));
    let r = &l.pods[0].requests;
    assert_eq!(r.cpu_milli, 250);
    assert_eq!(r.memory_bytes, 3 * GI / 2);
    assert_eq!(r.ephemeral_storage_bytes, 1_000_000_000);
    assert_eq!(r.extended["example.com/foo"], 3);
    assert_eq!(r.extended["hugepages-2Mi"], 4 * MI);
    assert_eq!(r.pods, 1);
    assert_eq!(l.pods[0].namespace, "default");
}

#[test]
fn every_node_affinity_operator() {
    let spec = r#"  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - {key: zone, operator: In, values: [a, b]}
          - {key: pool, operator: NotIn, values: [spot]}
          - {key: ssd, operator: Exists}
          - {key: old, operator: DoesNotExist}
          - {key: gen, operator: Gt, values: ["3"]}
          - {key: gen, operator: Lt, values: ["9"]}
        - matchFields:
          - {key: metadata.name, operator: In, values: [n7]}
      preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 30
        preference:
          matchExpressions:
          - {key: zone, operator: In, values: [a]}"#;
    let l = load(&pod_with(spec, "      requests: {cpu: 1}"));
    let p = &l.pods[0];
    let req = p.required_node_affinity.as_ref().unwrap();
    let ops: Vec<Operator> = req.terms[0]
        .match_expressions
        .iter()
        .map(|r| r.operator)
        .collect();
    use Operator::*;
    assert_eq!(ops, vec![In, NotIn, Exists, DoesNotExist, Gt, Lt]);
    assert_eq!(req.terms[1].match_fields[0].values, vec!["n7"]);
    let labels = |kv: &[(&str, &str)]| {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert!(req.matches("x", &labels(&[("zone", "a"), ("ssd", "1"), ("gen", "5")])));
    assert!(!req.matches("x", &labels(&[("zone", "a"), ("ssd", "1"), ("gen", "9")])));
    assert!(req.matches("n7", &labels(&[])));
    assert_eq!(p.preferred_node_affinity[0].weight, 30);
}

#[test]
fn multi_document_and_lists() {
    let text = r#"
# comment before the first document
---
apiVersion: v1
kind: Node
metadata: {name: n1}
status: {capacity: {cpu: "4", memory: 8Gi}}
---
apiVersion: v1
kind: NodeList
items:
- metadata: {name: n2}
  status: {capacity: {cpu: "2", memory: 4Gi}}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a, namespace: ns}
  spec: {containers: [{name: c, resources: {requests: {cpu: 100m}}}]}
- apiVersion: v1
  kind: Node
  metadata: {name: n3}
  status: {capacity: {cpu: "1", memory: 1Gi}}
---
"#;
    let l = load(text);
    let names: Vec<&str> = l.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, vec!["n1", "n2", "n3"]);
    assert_eq!(
        l.nodes[0].allocatable, l.nodes[0].capacity,
        "allocatable defaults to capacity"
    );
    assert_eq!(l.nodes[0].allocatable.pods, 110);
    assert_eq!(l.pods[0].key(), "ns/a");
    // JSON works too.
    let json = r#"{"apiVersion": "v1", "kind": "PodList", "items": [
      {"metadata": {"name": "j"}, "spec": {"containers": [{"name": "c",
        "resources": {"requests": {"cpu": 2, "memory": "1Gi"}}}]}}]}"#;
    let l = load_str(json, "pods.json").unwrap();
    assert_eq!(l.pods[0].requests.cpu_milli, 2000);
}

#[test]
fn deployment_and_job_expansion() {
    let l = load_files(&["examples/manifests/web-deployment.yaml"]).unwrap();
    let names: Vec<String> = l.pods.iter().map(|p| p.key()).collect();
    assert_eq!(names, vec!["shop/web-0", "shop/web-1", "shop/web-2"]);
    let p = &l.pods[0];
    assert_eq!(p.labels["app"], "web");
    assert_eq!(p.requests.cpu_milli, 500);
    assert_eq!(
        p.requests.memory_bytes,
        512 * MI,
        "request wins over the limit"
    );
    assert_eq!(
        p.pod_anti_affinity[0].topology_key,
        "kubernetes.io/hostname"
    );
    assert_eq!(p.topology_spread[0].max_skew, 1);
    assert_eq!(
        p.topology_spread[0].when_unsatisfiable,
        WhenUnsatisfiable::DoNotSchedule
    );
    assert!(
        p.host_ports.is_empty(),
        "containerPort without hostPort is no host port"
    );

    let job = |par: &str, extra: &str| {
        format!("apiVersion: batch/v1\nkind: Job\nmetadata: {{name: j}}\nspec:\n{par}{extra}  template:\n    spec:\n      containers: [{{name: c}}]\n")
    };
    assert_eq!(
        load(&job("", "")).pods.len(),
        1,
        "parallelism defaults to 1"
    );
    assert_eq!(load(&job("  parallelism: 5\n", "")).pods.len(), 5);
    assert_eq!(
        load(&job("  parallelism: 5\n", "  completions: 3\n"))
            .pods
            .len(),
        3
    );
    assert_eq!(
        load(&job("  parallelism: 5\n", "  suspend: true\n"))
            .pods
            .len(),
        0
    );
    let l = load(&job("  parallelism: 2\n", ""));
    assert_eq!(l.pods[1].name, "j-1");
    assert_eq!(l.pods[1].labels["job-name"], "j");
    let dep = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c}]}\n";
    assert_eq!(load(dep).pods.len(), 1, "replicas defaults to 1");
}

#[test]
fn requests_arithmetic() {
    // Two containers sum; init containers take the max; limits stand in for requests;
    // overhead adds on top.
    let text = r#"apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  overhead: {cpu: 100m, memory: 64Mi}
  initContainers:
  - name: big-init
    resources: {requests: {cpu: "3", memory: 1Gi}}
  - name: sidecar
    restartPolicy: Always
    resources: {requests: {cpu: 200m, memory: 128Mi}}
  containers:
  - name: a
    resources:
      requests: {cpu: 500m}
      limits: {cpu: "1", memory: 2Gi}
  - name: b
    resources: {limits: {cpu: 250m, memory: 256Mi, ephemeral-storage: 1Gi}}
"#;
    let r = &load(text).pods[0].requests;
    // cpu: containers 500m + 250m + sidecar 200m = 950m; init 3000m alone (sidecar starts
    // after it) -> max 3000m, + 100m overhead.
    assert_eq!(r.cpu_milli, 3100);
    // memory: 2Gi + 256Mi + 128Mi vs 1Gi -> 2.375Gi, + 64Mi.
    assert_eq!(r.memory_bytes, 2 * GI + 256 * MI + 128 * MI + 64 * MI);
    assert_eq!(r.ephemeral_storage_bytes, GI);
    assert_eq!(r.pods, 1);
}

#[test]
fn gpu_requests_and_annotations() {
    let l = load_files(&["examples/manifests/gpushare-job.yaml"]).unwrap();
    assert_eq!(l.pods.len(), 4);
    assert_eq!(l.pods[0].gpu.amount, GpuAmount::Shared(250));
    assert_eq!(l.pods[0].gpu.models, vec!["V100M16", "V100M32"]);
    assert_eq!(
        l.pods[0].tolerations[0].operator,
        TolerationOperator::Exists
    );
    let whole = load(&pod_with("", "      limits: {nvidia.com/gpu: 2}"));
    assert_eq!(whole.pods[0].gpu.amount, GpuAmount::Whole(2));
    assert!(!whole.pods[0]
        .requests
        .extended
        .contains_key("nvidia.com/gpu"));
    let cluster = load_files(&["examples/manifests/cluster.yaml"]).unwrap();
    let v100 = cluster.nodes.iter().find(|n| n.name == "gpu-v100").unwrap();
    assert_eq!(v100.gpu_count(), 4);
    assert_eq!(v100.gpu_model(), Some("V100M16"));
    assert_eq!(v100.taints[0].effect, TaintEffect::NoSchedule);
    assert_eq!(v100.allocatable.cpu_milli, 31_800);
    assert_eq!(v100.capacity.cpu_milli, 32_000);
    let t4 = cluster.nodes.iter().find(|n| n.name == "gpu-t4").unwrap();
    assert_eq!((t4.gpu_count(), t4.gpu_model()), (2, Some("T4")));
    assert_eq!(t4.allocatable.memory_bytes, 128 * GI);
}

#[test]
fn priority_classes_and_pod_groups() {
    let l = load_files(&[
        "examples/manifests/cluster.yaml",
        "examples/manifests/gang.yaml",
    ])
    .unwrap();
    assert_eq!(l.nodes.len(), 4);
    assert_eq!(l.pods.len(), 2);
    for p in &l.pods {
        assert_eq!(p.priority, 1000);
        let g = p.gang.as_ref().unwrap();
        assert_eq!((g.name.as_str(), g.min_member), ("train", 2));
        assert_eq!(p.gpu.amount, GpuAmount::Whole(1));
        assert_eq!(p.requests.cpu_milli, 4000, "limits stand in for requests");
    }
    let text = "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: base}\nvalue: 7\nglobalDefault: true\n---\n".to_string()
        + &pod_with("", "      requests: {cpu: 1}")
        + "---\n" + &pod_with("  priorityClassName: system-node-critical", "      requests: {cpu: 1}").replace("name: p\n", "name: q\n")
        + "---\n" + &pod_with("  priority: -5", "      requests: {cpu: 1}").replace("name: p\n", "name: r\n");
    let l = load(&text);
    let prios: Vec<i32> = l.pods.iter().map(|p| p.priority).collect();
    assert_eq!(prios, vec![7, 2_000_001_000, -5]);
}

const KUBECTL_POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubectl.kubernetes.io/restartedAt: "2024-05-01T10:00:00Z"
  creationTimestamp: "2024-05-01T10:00:05Z"
  generateName: api-7c9d8f6b5-
  labels:
    app: api
    pod-template-hash: 7c9d8f6b5
  managedFields:
  - apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata:
        f:generateName: {}
    manager: kube-controller-manager
    operation: Update
    time: "2024-05-01T10:00:05Z"
  name: api-7c9d8f6b5-x2x7q
  namespace: prod
  ownerReferences:
  - apiVersion: apps/v1
    blockOwnerDeletion: true
    controller: true
    kind: ReplicaSet
    name: api-7c9d8f6b5
    uid: 3f0c2f4e-1111-2222-3333-444455556666
  resourceVersion: "123456"
  uid: 9b0b0c0d-aaaa-bbbb-cccc-ddddeeeeffff
spec:
  containers:
  - env:
    - name: LOG_LEVEL
      value: info
    image: registry.example.com/api:2.3.1
    imagePullPolicy: IfNotPresent
    livenessProbe:
      failureThreshold: 3
      httpGet: {path: /healthz, port: 8080, scheme: HTTP}
      periodSeconds: 10
    name: api
    ports:
    - containerPort: 8080
      name: http
      protocol: TCP
    - containerPort: 9100
      hostPort: 9100
      protocol: TCP
    resources:
      limits: {cpu: "2", memory: 2Gi}
      requests: {cpu: 750m, memory: 1Gi}
    securityContext:
      allowPrivilegeEscalation: false
      runAsNonRoot: true
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
    volumeMounts:
    - mountPath: /var/run/secrets/kubernetes.io/serviceaccount
      name: kube-api-access-abcde
      readOnly: true
  dnsPolicy: ClusterFirst
  enableServiceLinks: true
  nodeName: cpu-a
  preemptionPolicy: PreemptLowerPriority
  priority: 0
  restartPolicy: Always
  schedulerName: default-scheduler
  securityContext: {}
  serviceAccount: default
  serviceAccountName: default
  terminationGracePeriodSeconds: 30
  tolerations:
  - effect: NoExecute
    key: node.kubernetes.io/not-ready
    operator: Exists
    tolerationSeconds: 300
  - effect: NoExecute
    key: node.kubernetes.io/unreachable
    operator: Exists
    tolerationSeconds: 300
  volumes:
  - name: kube-api-access-abcde
    projected:
      defaultMode: 420
      sources:
      - serviceAccountToken: {expirationSeconds: 3607, path: token}
status:
  conditions:
  - lastProbeTime: null
    lastTransitionTime: "2024-05-01T10:00:05Z"
    status: "True"
    type: PodScheduled
  hostIP: 10.0.0.12
  phase: Running
  podIP: 10.244.1.17
  qosClass: Burstable
  startTime: "2024-05-01T10:00:05Z"
"#;

#[test]
fn real_kubectl_get_pod_output_loads() {
    let l = load(KUBECTL_POD);
    let p = &l.pods[0];
    assert_eq!(p.key(), "prod/api-7c9d8f6b5-x2x7q");
    assert_eq!(p.node_name.as_deref(), Some("cpu-a"));
    assert_eq!(p.requests.cpu_milli, 750);
    assert_eq!(p.requests.memory_bytes, GI);
    assert_eq!(p.tolerations.len(), 2);
    assert_eq!(p.host_ports.len(), 1);
    assert_eq!(p.host_ports[0].port, 9100);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    // A finished pod is skipped with a warning.
    let done = load(&KUBECTL_POD.replace("phase: Running", "phase: Succeeded"));
    assert!(done.pods.is_empty());
    assert!(
        done.warnings[0].contains("Succeeded"),
        "{:?}",
        done.warnings
    );
}

#[test]
fn examples_load_together() {
    let all = [
        "examples/manifests/cluster.yaml",
        "examples/manifests/web-deployment.yaml",
        "examples/manifests/gpushare-job.yaml",
        "examples/manifests/gang.yaml",
    ];
    let l = load_files(&all).unwrap();
    assert_eq!((l.nodes.len(), l.pods.len()), (4, 3 + 4 + 2));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

// ---- bad input -------------------------------------------------------------------

#[test]
fn malformed_yaml_names_line() {
    let e = invalid(
        "apiVersion: v1\nkind: Node\nmetadata: {name: a}\n---\napiVersion: v1\nkind: [Pod\n",
    );
    assert_eq!(e.document, Some(2), "{e}");
    assert!(e.line.is_some_and(|l| l >= 6), "{e}");
    assert!(e.to_string().contains("malformed YAML/JSON"), "{e}");
    let e = invalid("{\"apiVersion\": \"v1\" \"kind\": \"Pod\"}");
    assert!(e.line == Some(1), "{e}");
}

#[test]
fn missing_unknown_and_mismatched_kinds() {
    assert_err(
        "apiVersion: v1\nmetadata: {name: a}\n",
        1,
        "kind",
        "supported kinds: Node (v1), Pod (v1), Deployment (apps/v1)",
    );
    assert_err(
        "kind: Pod\nmetadata: {name: a}\n",
        1,
        "apiVersion",
        "Pod needs v1",
    );
    assert_err(
        "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n",
        1,
        "kind",
        "unknown kind \"Service\"",
    );
    assert_err(
        "apiVersion: v1\nkind: Deployment\nmetadata: {name: a}\n",
        1,
        "apiVersion",
        "Deployment needs apiVersion apps/v1",
    );
    assert_err(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n",
        1,
        "items[0].kind",
        "unknown kind",
    );
}

#[test]
fn bad_quantities_and_resources() {
    let e = assert_err(
        &("apiVersion: v1\nkind: Node\nmetadata: {name: n}\n---\n".to_string()
            + &pod_with(
                "",
                "      requests:\n        memory: 1Gi\n        cpu: 2 cores",
            )
            .replace("name: p\n", "name: web-0\n")),
        2,
        "spec.containers[0].resources.requests.cpu",
        "quantities must match",
    );
    assert!(e.to_string().starts_with("bad.yaml: document 2 (Pod default/web-0), line 16: spec.containers[0].resources.requests.cpu: quantities must match"), "{e}");
    assert_err(
        &pod_with("", "      requests: {memory: -1Gi}"),
        1,
        "spec.containers[0].resources.requests.memory",
        "negative",
    );
    assert_err(
        &pod_with("", "      limits: {memory: 1e40}"),
        1,
        "spec.containers[0].resources.limits.memory",
        "too large",
    );
    assert_err(
        &pod_with("", "      requests: {cpus: 1}"),
        1,
        "spec.containers[0].resources.requests.cpus",
        "unknown resource \"cpus\"",
    );
    assert_err(
        &pod_with("", "      requests: {nvidia.com/gpu: 0.5}"),
        1,
        "spec.containers[0].resources.requests.nvidia.com/gpu",
        "whole number",
    );
    assert_err(
        &pod_with("", "      request: {cpu: 1}"),
        1,
        "spec.containers[0].resources.request",
        "unknown field",
    );
    assert_err(
        "apiVersion: v1\nkind: Node\nmetadata: {name: n}\nstatus: {allocatable: {cpu: lots}}\n",
        1,
        "status.allocatable.cpu",
        "quantities must match",
    );
}

#[test]
fn typos_in_scheduling_fields_are_errors() {
    let e = assert_err(
        &pod_with("  nodeSelecter: {zone: a}", "      requests: {cpu: 1}"),
        1,
        "spec.nodeSelecter",
        "unknown field \"nodeSelecter\"",
    );
    assert_eq!(e.line, Some(11), "{e}");
    let aff = "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchExpresions:\n          - {key: a, operator: In, values: [b]}";
    let e = assert_err(&pod_with(aff, ""), 1, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpresions", "unknown field");
    assert_eq!(e.line, Some(15), "{e}");
    assert_err(
        &pod_with("  tolerations: [{key: a, operater: Exists}]", ""),
        1,
        "spec.tolerations[0].operater",
        "unknown field",
    );
    assert_err(&pod_with("  topologySpreadConstraints: [{maxSkew: 1, topologyKey: z, whenUnsatisfiable: DoNotSchedule, labelSelecter: {}}]", ""), 1, "spec.topologySpreadConstraints[0].labelSelecter", "unknown field");
    assert_err(
        &pod_with("", "      requests: {cpu: 1}\n    imagePullPolicyy: Always"),
        1,
        "spec.containers[0].imagePullPolicyy",
        "unknown field",
    );
}

#[test]
fn invalid_operators_and_values() {
    let term = |expr: &str| {
        pod_with(&format!("  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchExpressions:\n          - {expr}"), "")
    };
    let p = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0]";
    assert_err(
        &term("{key: a, operator: Equals, values: [b]}"),
        1,
        &format!("{p}.operator"),
        "invalid operator \"Equals\"",
    );
    assert_err(
        &term("{key: a, operator: Gt, values: [\"1\", \"2\"]}"),
        1,
        &format!("{p}.values"),
        "exactly one value",
    );
    assert_err(
        &term("{key: a, operator: Lt, values: [ten]}"),
        1,
        &format!("{p}.values[0]"),
        "not an integer",
    );
    assert_err(
        &term("{key: a, operator: In, values: []}"),
        1,
        &format!("{p}.values"),
        "non-empty",
    );
    assert_err(
        &term("{key: a, operator: Exists, values: [x]}"),
        1,
        &format!("{p}.values"),
        "must be empty",
    );
    let anti = "  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector: {matchExpressions: [{key: a, operator: Gt, values: [\"1\"]}]}\n        topologyKey: h";
    assert_err(&pod_with(anti, ""), 1, "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchExpressions[0].operator", "invalid operator \"Gt\"");
    assert_err(
        &pod_with("  tolerations: [{key: a, operator: Exists, value: b}]", ""),
        1,
        "spec.tolerations[0].value",
        "must be empty",
    );
    assert_err(
        &pod_with("  tolerations: [{key: a, effect: NoSchedul}]", ""),
        1,
        "spec.tolerations[0].effect",
        "invalid effect",
    );
    assert_err(&pod_with("  topologySpreadConstraints: [{maxSkew: 0, topologyKey: z, whenUnsatisfiable: DoNotSchedule, labelSelector: {}}]", ""), 1, "spec.topologySpreadConstraints[0].maxSkew", "out of range");
    assert_err(
        &pod_with("  priority: 99999999999", ""),
        1,
        "spec.priority",
        "out of range",
    );
}

#[test]
fn gpu_annotation_conflicts() {
    let annotated = |ann: &str, res: &str| {
        pod_with("", res).replace(
            "  name: p\n",
            &format!("  name: p\n  annotations: {{{ann}}}\n"),
        )
    };
    assert_err(
        &annotated(
            "plimsoll.io/gpu-milli: \"500\"",
            "      limits: {nvidia.com/gpu: 2}",
        ),
        1,
        "metadata.annotations[\"plimsoll.io/gpu-milli\"]",
        "cannot be combined",
    );
    assert_err(
        &annotated("plimsoll.io/gpu-milli: \"1500\"", ""),
        1,
        "metadata.annotations[\"plimsoll.io/gpu-milli\"]",
        "from 1 to 999",
    );
    assert_err(
        &annotated("plimsoll.io/gpu-model: T4", ""),
        1,
        "metadata.annotations[\"plimsoll.io/gpu-model\"]",
        "needs a GPU request",
    );
    assert_err(
        &annotated("plimsoll.io/gpu-mili: \"5\"", ""),
        1,
        "metadata.annotations[\"plimsoll.io/gpu-mili\"]",
        "unknown Plimsoll annotation",
    );
    let ok = load(&annotated(
        "plimsoll.io/gpu-milli: \"500\"",
        "      limits: {nvidia.com/gpu: 1}",
    ));
    assert_eq!(ok.pods[0].gpu.amount, GpuAmount::Shared(500));
}

#[test]
fn cross_object_errors() {
    let node = "apiVersion: v1\nkind: Node\nmetadata: {name: n}\n";
    assert_err(
        &format!("{node}---\n{node}"),
        2,
        "metadata.name",
        "duplicate node name \"n\" (first defined in bad.yaml: document 1 (Node n))",
    );
    let p = pod_with("", "");
    assert_err(
        &format!("{p}---\n{p}"),
        2,
        "metadata.name",
        "duplicate pod \"default/p\"",
    );
    assert_err(
        &pod_with("  priorityClassName: gold", ""),
        1,
        "spec.priorityClassName",
        "PriorityClass \"gold\" does not exist",
    );
    let pc = |n: &str| {
        format!("apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {{name: {n}}}\nvalue: 5\nglobalDefault: true\n")
    };
    assert_err(
        &format!("{}---\n{}", pc("a"), pc("b")),
        2,
        "globalDefault",
        "only one PriorityClass",
    );
    assert_err(
        &format!("{}---\n{}", pc("a"), pc("a")),
        2,
        "metadata.name",
        "duplicate PriorityClass",
    );
    assert_err(
        &pc("a").replace("value: 5", "value: 3000000000"),
        1,
        "value",
        "out of range",
    );
    let group = "apiVersion: scheduling.x-k8s.io/v1alpha1\nkind: PodGroup\nmetadata: {name: g}\nspec: {minMember: 3}\n";
    let member = |n: &str| {
        pod_with("", "").replace(
            "  name: p\n",
            &format!("  name: {n}\n  labels: {{scheduling.x-k8s.io/pod-group: g}}\n"),
        )
    };
    let e = assert_err(
        &format!("{group}---\n{}---\n{}", member("a"), member("b")),
        1,
        "spec.minMember",
        "3 is larger than the group: 2 pod(s)",
    );
    assert_eq!(e.line, Some(4), "{e}");
    assert_err(
        &member("a"),
        1,
        "metadata.labels[\"scheduling.x-k8s.io/pod-group\"]",
        "PodGroup default/g is not defined",
    );
    let dep = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 2\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: c}}\n    spec: {containers: [{name: c}]}\n";
    assert_err(
        dep,
        1,
        "spec.selector",
        "does not match the template's labels",
    );
    assert_err(
        &dep.replace("replicas: 2", "replicas: -1"),
        1,
        "spec.replicas",
        "out of range",
    );
}

#[test]
fn csv_files_go_through_the_openb_loader() {
    let dir = std::env::temp_dir().join(format!("plimsoll-manifest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let nodes = dir.join("nodes.csv");
    std::fs::write(
        &nodes,
        "sn,cpu_milli,memory_mib,gpu,model\nx,8000,1024,2,T4\n",
    )
    .unwrap();
    let pods = dir.join("pods.csv");
    std::fs::write(
        &pods,
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli\nq,100,10,1,300\n",
    )
    .unwrap();
    let l = load_files(&[&nodes, &pods]).unwrap();
    assert_eq!(l.nodes[0].gpu_model(), Some("T4"));
    assert_eq!(l.pods[0].gpu.amount, GpuAmount::Shared(300));
    let bad = dir.join("bad.csv");
    std::fs::write(
        &bad,
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli\nq,1,1,x,0\n",
    )
    .unwrap();
    let e = load_files(&[&bad]).unwrap_err().to_string();
    assert!(e.contains("bad.csv: line 2: column num_gpu"), "{e}");
    let e = load_files(&[dir.join("missing.yaml")]).unwrap_err();
    assert!(matches!(e, ManifestError::Io { .. }), "{e}");
}

#[test]
fn real_kubectl_get_node_output_loads() {
    let text = r#"apiVersion: v1
kind: Node
metadata:
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
  creationTimestamp: "2024-04-02T08:11:41Z"
  labels:
    beta.kubernetes.io/arch: amd64
    kubernetes.io/hostname: ip-10-0-1-23
    node.kubernetes.io/instance-type: p3.8xlarge
    nvidia.com/gpu.product: Tesla-V100-SXM2-16GB
    topology.kubernetes.io/zone: us-east-1a
  name: ip-10-0-1-23
  resourceVersion: "998877"
  uid: 11111111-2222-3333-4444-555555555555
spec:
  providerID: aws:///us-east-1a/i-0123456789abcdef0
  taints:
  - effect: NoSchedule
    key: nvidia.com/gpu
    value: "true"
  unschedulable: true
status:
  addresses:
  - address: 10.0.1.23
    type: InternalIP
  allocatable:
    attachable-volumes-aws-ebs: "39"
    cpu: 31850m
    ephemeral-storage: "95491281146"
    hugepages-1Gi: "0"
    hugepages-2Mi: "0"
    memory: 240553496Ki
    nvidia.com/gpu: "4"
    pods: "58"
  capacity:
    attachable-volumes-aws-ebs: "39"
    cpu: "32"
    ephemeral-storage: 104845292Ki
    hugepages-1Gi: "0"
    hugepages-2Mi: "0"
    memory: 251638812Ki
    nvidia.com/gpu: "4"
    pods: "58"
  conditions:
  - lastHeartbeatTime: "2024-05-01T10:00:00Z"
    status: "False"
    type: MemoryPressure
  nodeInfo:
    kubeletVersion: v1.29.3-eks-ae9a62a
"#;
    let l = load(text);
    let n = &l.nodes[0];
    assert_eq!(n.allocatable.cpu_milli, 31_850);
    assert_eq!(n.allocatable.memory_bytes, 240_553_496 * 1024);
    assert_eq!(n.allocatable.ephemeral_storage_bytes, 95_491_281_146);
    assert_eq!(n.allocatable.pods, 58);
    assert_eq!(n.capacity.cpu_milli, 32_000);
    assert_eq!(n.allocatable.extended["attachable-volumes-aws-ebs"], 39);
    assert_eq!(
        (n.gpu_count(), n.gpu_model()),
        (4, Some("Tesla-V100-SXM2-16GB"))
    );
    assert!(n.unschedulable);
    assert_eq!(n.taints[0].value, "true");
    assert!(!n.allocatable.extended.contains_key("nvidia.com/gpu"));
    // A GPU node without a model label loads with model "unknown" and a warning.
    let bare = load("apiVersion: v1\nkind: Node\nmetadata: {name: g}\nstatus: {capacity: {nvidia.com/gpu: 2}}\n");
    assert_eq!(bare.nodes[0].gpu_model(), Some("unknown"));
    assert!(
        bare.warnings[0].contains("test.yaml: document 1 (Node g)"),
        "{:?}",
        bare.warnings
    );
    // Typos in the node spec are errors.
    assert_err(
        "apiVersion: v1\nkind: Node\nmetadata: {name: n}\nspec: {taint: []}\n",
        1,
        "spec.taint",
        "unknown field",
    );
}

/// The examples are meant for the CLI's tests: every pod must find a node under the
/// kube-style filters when placed first-fit in input order.
#[test]
fn examples_are_placeable_first_fit() {
    use plimsoll::model::Problem;
    use plimsoll::place::filter::FilterContext;
    let l = load_files(&[
        "examples/manifests/cluster.yaml",
        "examples/manifests/web-deployment.yaml",
        "examples/manifests/gpushare-job.yaml",
        "examples/manifests/gang.yaml",
    ])
    .unwrap();
    let Problem {
        mut cluster,
        pending,
    } = Problem::from_parts(l.nodes, l.pods).unwrap();
    let mut placed = Vec::new();
    for pod in pending {
        let node = {
            let ctx = FilterContext::new(&cluster, &pod);
            cluster.node_ids().find(|&n| ctx.check(n).is_ok())
        };
        let node = node.unwrap_or_else(|| panic!("{} fits nowhere", pod.key()));
        placed.push((pod.key(), cluster[node].name.clone()));
        cluster.bind(pod, node, None).unwrap();
    }
    let on = |k: &str| placed.iter().find(|(p, _)| p == k).unwrap().1.clone();
    // Anti-affinity: three web replicas on three different nodes, none on the tainted V100.
    let mut web: Vec<String> = (0..3).map(|i| on(&format!("shop/web-{i}"))).collect();
    web.sort();
    web.dedup();
    assert_eq!(web.len(), 3);
    assert!(!web.contains(&"gpu-v100".to_string()));
    // The GPU shares are restricted to V100 nodes.
    assert!((0..4).all(|i| on(&format!("default/infer-{i}")) == "gpu-v100"));
}

#[test]
fn missing_field_points_at_its_parent() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - image: a\n  - name: b\n";
    let e = assert_err(text, 1, "spec.containers[0].name", "required");
    assert_eq!(e.line, Some(7), "{e}");
}

#[test]
fn yaml_anchors_and_merge_keys() {
    let text = r#"apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata: {name: a, labels: &zone {topology.kubernetes.io/zone: z1}}
  status:
    capacity: &big
      cpu: "8"
      memory: 32Gi
- apiVersion: v1
  kind: Node
  metadata: {name: b, labels: *zone}
  status:
    capacity:
      <<: *big
      cpu: "4"
"#;
    let l = load(text);
    assert_eq!(l.nodes[1].labels["topology.kubernetes.io/zone"], "z1");
    assert_eq!(l.nodes[1].allocatable.cpu_milli, 4000);
    assert_eq!(l.nodes[1].allocatable.memory_bytes, 32 * GI);
}

mod requests_oracle {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// Requests from random containers equal the kube-scheduler formula computed
        /// directly: max(sum of containers, each init container) + overhead.
        #[test]
        fn random_pods_match_the_formula(
            containers in prop::collection::vec((1u64..64_000, 1u64..65_536, any::<bool>()), 1..4),
            inits in prop::collection::vec((1u64..64_000, 1u64..65_536), 0..3),
            overhead_cpu in 0u64..500,
            replicas in 0i64..6,
        ) {
            let mut text = format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{a: b}}}}\n  template:\n    metadata: {{labels: {{a: b}}}}\n    spec:\n      overhead: {{cpu: {overhead_cpu}m}}\n      containers:\n"
            );
            for (i, (cpu, mem, as_limit)) in containers.iter().enumerate() {
                let field = if *as_limit { "limits" } else { "requests" };
                text += &format!("      - name: c{i}\n        resources:\n          {field}: {{cpu: {cpu}m, memory: {mem}Mi}}\n");
            }
            if !inits.is_empty() {
                text += "      initContainers:\n";
            }
            for (i, (cpu, mem)) in inits.iter().enumerate() {
                text += &format!("      - name: i{i}\n        resources: {{requests: {{cpu: {cpu}m, memory: {mem}Mi}}}}\n");
            }
            let l = load_str(&text, "prop.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"));
            prop_assert_eq!(l.pods.len() as i64, replicas);
            let sum_cpu: u64 = containers.iter().map(|c| c.0).sum();
            let sum_mem: u64 = containers.iter().map(|c| c.1).sum();
            let cpu = inits.iter().map(|i| i.0).fold(sum_cpu, u64::max) + overhead_cpu;
            let mem = inits.iter().map(|i| i.1).fold(sum_mem, u64::max) * MI;
            for p in &l.pods {
                prop_assert_eq!(p.requests.cpu_milli, cpu);
                prop_assert_eq!(p.requests.memory_bytes, mem);
                prop_assert_eq!(p.requests.pods, 1);
            }
        }
    }
}
