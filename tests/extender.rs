//! The scheduler extender end to end: request bodies shaped like kube-scheduler's (whole
//! v1.Pod and v1.Node objects with status, conditions and managedFields), every reply
//! field checked, both nodeCacheCapable modes, bind, preempt, and bad input.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use plimsoll::extender::wire::{
    ExtenderArgs, ExtenderBindingArgs, ExtenderBindingResult, ExtenderPreemptionResult,
    HostPriority, MetaPod, MetaVictims,
};
use plimsoll::extender::{self, Cache, ExtenderConfig, ExtenderState};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use tower::ServiceExt;

/// A node as kube-scheduler's informer holds it (no kind/apiVersion), with
/// managedFields, conditions, images, nodeInfo and daemonEndpoints.
fn node(name: &str, cpu: &str, taint: Option<(&str, &str)>) -> Value {
    let taints = match taint {
        Some((k, v)) => json!([{"key": k, "value": v, "effect": "NoSchedule"}]),
        None => Value::Null,
    };
    let mut spec = json!({"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"], "providerID": format!("k3s://{name}")});
    if !taints.is_null() {
        spec["taints"] = taints;
    }
    json!({
        "metadata": {
            "name": name, "uid": format!("uid-{name}"), "resourceVersion": "15619",
            "creationTimestamp": "2025-02-26T17:31:44Z",
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "zone": "a"},
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
            "managedFields": [{"apiVersion": "v1", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": {"f:allocatable": {"f:memory": {}}}},
                "manager": "kubelet", "operation": "Update", "subresource": "status",
                "time": "2025-02-27T07:06:23Z"}]
        },
        "spec": spec,
        "status": {
            "addresses": [{"address": "10.0.1.97", "type": "InternalIP"}, {"address": name, "type": "Hostname"}],
            "allocatable": {"cpu": cpu, "ephemeral-storage": "6524650321719", "hugepages-2Mi": "0", "memory": "16Gi", "pods": "110"},
            "capacity": {"cpu": cpu, "ephemeral-storage": "6707082984Ki", "hugepages-2Mi": "0", "memory": "16Gi", "pods": "110"},
            "conditions": [
                {"lastHeartbeatTime": "2025-02-27T07:06:23Z", "lastTransitionTime": "2025-02-26T17:31:44Z",
                 "message": "kubelet has sufficient memory available", "reason": "KubeletHasSufficientMemory",
                 "status": "False", "type": "MemoryPressure"},
                {"lastHeartbeatTime": "2025-02-27T07:06:23Z", "lastTransitionTime": "2025-02-26T17:31:44Z",
                 "message": "kubelet is posting ready status", "reason": "KubeletReady", "status": "True", "type": "Ready"}
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "images": [{"names": ["registry.k8s.io/pause:3.9"], "sizeBytes": 321520}],
            "nodeInfo": {"architecture": "amd64", "bootID": "b", "containerRuntimeVersion": "containerd://1.7.23",
                "kernelVersion": "6.8.0", "kubeProxyVersion": "v1.31.5", "kubeletVersion": "v1.31.5",
                "machineID": "m", "operatingSystem": "linux", "osImage": "Ubuntu 24.04.2 LTS", "systemUUID": "s"}
        }
    })
}

/// A pending pod as kube-scheduler sends it: defaulted spec, resolved priority,
/// PodScheduled=False from an earlier attempt, optionally managedFields.
fn pod(name: &str, uid: &str, cpu: &str, managed_fields: bool) -> Value {
    let mut p = json!({
        "metadata": {
            "name": name, "namespace": "shop", "uid": uid, "resourceVersion": "811",
            "creationTimestamp": "2025-02-27T07:00:00Z", "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8",
                "uid": "rs-1", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "containers": [{"name": "web", "image": "nginx:1.27",
                "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent"}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "serviceAccount": "default", "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "priorityClassName": "shop-high", "priority": 1000, "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {"phase": "Pending", "qosClass": "Burstable",
            "conditions": [{"type": "PodScheduled", "status": "False", "lastProbeTime": null,
                "lastTransitionTime": "2025-02-27T07:00:00Z", "reason": "Unschedulable",
                "message": "0/3 nodes are available"}]}
    });
    if managed_fields {
        p["metadata"]["managedFields"] = json!([{"apiVersion": "v1", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:status": {"f:conditions": {}}}, "manager": "kube-controller-manager",
            "operation": "Update", "time": "2025-02-27T07:00:00Z"}]);
    }
    p
}

fn app_with(cache: Cache, config: ExtenderConfig) -> axum::Router {
    extender::router(ExtenderState::new(cache, config))
}

fn empty_app() -> axum::Router {
    let c = Cache::new(extender::policy("best-fit", 42).unwrap(), vec![], vec![]).unwrap();
    app_with(c, ExtenderConfig::default())
}

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    body: impl Into<Body>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, v)
}

fn post(
    app: &axum::Router,
    path: &str,
    body: &Value,
) -> impl std::future::Future<Output = (StatusCode, Value)> {
    let (app, path, body) = (app.clone(), path.to_string(), body.to_string());
    async move { call(&app, "POST", &path, body).await }
}

#[test]
fn wire_names_match_upstream_golden_json() {
    // kubernetes staging/src/k8s.io/kube-scheduler/extender/v1/types_test.go
    let b = ExtenderBindingArgs {
        pod_name: "mypodname".into(),
        pod_namespace: "mypodnamespace".into(),
        pod_uid: "mypoduid".into(),
        node: "mynode".into(),
    };
    assert_eq!(
        serde_json::to_string(&b).unwrap(),
        r#"{"PodName":"mypodname","PodNamespace":"mypodnamespace","PodUID":"mypoduid","Node":"mynode"}"#
    );
    let r = ExtenderBindingResult {
        error: "myerror".into(),
    };
    assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"Error":"myerror"}"#);
    let h = HostPriority {
        host: "myhost".into(),
        score: 1,
    };
    assert_eq!(
        serde_json::to_string(&h).unwrap(),
        r#"{"Host":"myhost","Score":1}"#
    );
    let mut m = BTreeMap::new();
    m.insert(
        "foo".to_string(),
        MetaVictims {
            pods: vec![MetaPod {
                uid: "myuid".into(),
            }],
            num_pdb_violations: 1,
        },
    );
    let p = ExtenderPreemptionResult {
        node_name_to_meta_victims: m,
    };
    let golden =
        r#"{"NodeNameToMetaVictims":{"foo":{"Pods":[{"UID":"myuid"}],"NumPDBViolations":1}}}"#;
    assert_eq!(serde_json::to_string(&p).unwrap(), golden);
    // Lower-cased keys (Go decodes case-insensitively; upstream round-trips them).
    let back: ExtenderPreemptionResult = serde_json::from_str(&golden.to_lowercase()).unwrap();
    assert_eq!(back, p);
    let args = r#"{"Pod":{"metadata":{"name":"podname","creationTimestamp":null},"spec":{"containers":null},"status":{}},"Nodes":{"metadata":{},"items":[{"metadata":{"name":"nodename","creationTimestamp":null},"spec":{},"status":{"daemonEndpoints":{"kubeletEndpoint":{"Port":0}},"nodeInfo":{"machineID":"","systemUUID":"","bootID":"","kernelVersion":"","osImage":"","containerRuntimeVersion":"","kubeletVersion":"","kubeProxyVersion":"","operatingSystem":"","architecture":""}}}]},"NodeNames":["node1"]}"#;
    for text in [args.to_string(), args.to_lowercase()] {
        let a: ExtenderArgs = serde_json::from_str(&text).unwrap();
        assert_eq!(a.node_names.as_deref(), Some(&["node1".to_string()][..]));
        assert_eq!(a.nodes.as_ref().unwrap().items.len(), 1);
    }
    // The upstream minimal pod (null containers) is read, and refused with the field named:
    // Plimsoll requires at least one container, as the API server does.
    let a: ExtenderArgs = serde_json::from_str(args).unwrap();
    let e = extender::convert::pod_from_json(&a.pod, "Pod")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("spec.containers") && e.contains("podname"),
        "{e}"
    );
    // Null lists decode as empty.
    let a: ExtenderArgs =
        serde_json::from_str(r#"{"Pod":{},"Nodes":null,"NodeNames":null}"#).unwrap();
    assert!(a.nodes.is_none() && a.node_names.is_none());
}

#[test]
fn real_objects_convert_with_quantities_and_identity() {
    let raw = serde_json::value::to_raw_value(&pod("web-1", "u-1", "1500m", true)).unwrap();
    let p = extender::convert::pod_from_json(&raw, "Pod").unwrap();
    assert_eq!(p.uid, "u-1");
    assert_eq!(p.key(), "shop/web-1");
    assert_eq!(p.pod.requests.cpu_milli, 1500);
    assert_eq!(p.pod.requests.memory_bytes, 1 << 30);
    assert_eq!(
        p.pod.priority, 1000,
        "spec.priority kept, unknown class name dropped"
    );
    let items =
        vec![
            serde_json::value::to_raw_value(&node("n1", "3800m", Some(("dedicated", "gpu"))))
                .unwrap(),
        ];
    let nodes = extender::convert::nodes_from_json(&items, "Nodes.items").unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].allocatable.cpu_milli, 3800);
    assert_eq!(nodes[0].allocatable.memory_bytes, 16 << 30);
    assert_eq!(nodes[0].taints.len(), 1);
}

#[tokio::test]
async fn full_mode_filter_returns_node_objects_unchanged_and_kube_reasons() {
    let app = empty_app();
    let (fit, tainted, small) = (
        node("fit", "8", None),
        node("tainted", "8", Some(("dedicated", "gpu"))),
        node("small", "1", None),
    );
    let body = json!({"Pod": pod("web-1", "u-1", "2", true),
        "Nodes": {"metadata": {}, "items": [fit.clone(), tainted, small]}, "NodeNames": null});
    let (status, r) = post(&app, "/filter", &body).await;
    assert_eq!(status, StatusCode::OK);
    let want = json!({
        "Nodes": {"metadata": {}, "items": [fit]},
        "NodeNames": null,
        "FailedNodes": {"small": "Insufficient cpu"},
        "FailedAndUnresolvableNodes": {"tainted": "node(s) had untolerated taint {dedicated: gpu}"},
        "Error": ""
    });
    assert_eq!(r, want);
    // Prioritize in full mode: best-fit prefers the fuller node after placement; only
    // the feasible node gets a score above 0.
    let (status, r) = post(&app, "/prioritize", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        r,
        json!([{"Host": "fit", "Score": 10}, {"Host": "tainted", "Score": 0}, {"Host": "small", "Score": 0}])
    );
}

fn snapshot_cache(policy: &str) -> Cache {
    let yaml = include_str!("fixtures/extender-snapshot.yaml");
    let l = plimsoll::manifest::load_str(yaml, "snapshot.yaml").unwrap();
    Cache::new(extender::policy(policy, 42).unwrap(), l.nodes, l.pods).unwrap()
}

#[tokio::test]
async fn node_names_mode_filter_prioritize_bind_from_the_cache() {
    let app = app_with(snapshot_cache("best-fit"), ExtenderConfig::default());
    let names = json!(["a", "b", "c", "ghost"]);
    let body = json!({"Pod": pod("web-1", "u-1", "3", false), "Nodes": null, "NodeNames": names});
    let (status, r) = post(&app, "/filter", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        r,
        json!({
            "Nodes": null,
            "NodeNames": ["a", "b"],
            "FailedNodes": {},
            "FailedAndUnresolvableNodes": {
                "c": "node(s) had untolerated taint {pool: batch}",
                "ghost": "node(s) unknown to the plimsoll extender's cache"
            },
            "Error": ""
        })
    );
    // best-fit: b (4 of 8 cpu used) is the tighter fit → 10; a → 0.
    let body =
        json!({"Pod": pod("web-1", "u-1", "3", false), "Nodes": null, "NodeNames": ["a", "b"]});
    let (status, r) = post(&app, "/prioritize", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        r,
        json!([{"Host": "a", "Score": 0}, {"Host": "b", "Score": 10}])
    );
    // Bind records the pod on b: now b has 1 cpu free and rejects a 2-cpu pod.
    let bind = json!({"PodName": "web-1", "PodNamespace": "shop", "PodUID": "u-1", "Node": "b"});
    let (status, r) = post(&app, "/bind", &bind).await;
    assert_eq!((status, r), (StatusCode::OK, json!({"Error": ""})));
    let body =
        json!({"Pod": pod("web-2", "u-2", "2", false), "Nodes": null, "NodeNames": ["a", "b"]});
    let (_, r) = post(&app, "/filter", &body).await;
    assert_eq!(r["NodeNames"], json!(["a"]));
    assert_eq!(r["FailedNodes"], json!({"b": "Insufficient cpu"}));
    // A bind for a pod never seen is refused in the reply (HTTP 200, Error set).
    let bind = json!({"PodName": "nobody", "PodNamespace": "shop", "PodUID": "u-9", "Node": "a"});
    let (status, r) = post(&app, "/bind", &bind).await;
    assert_eq!(status, StatusCode::OK);
    assert!(r["Error"].as_str().unwrap().contains("not seen"), "{r}");
}

#[tokio::test]
async fn full_mode_nodes_feed_the_cache_for_names_mode() {
    let app = empty_app();
    let body = json!({"Pod": pod("web-1", "u-1", "2", true),
        "Nodes": {"metadata": {}, "items": [node("x", "4", None), node("y", "2", None)]}, "NodeNames": null});
    let (status, _) = post(&app, "/filter", &body).await;
    assert_eq!(status, StatusCode::OK);
    let body =
        json!({"Pod": pod("web-2", "u-2", "3", false), "Nodes": null, "NodeNames": ["x", "y"]});
    let (_, r) = post(&app, "/filter", &body).await;
    assert_eq!(r["NodeNames"], json!(["x"]));
    assert_eq!(r["FailedNodes"], json!({"y": "Insufficient cpu"}));
}

#[tokio::test]
async fn preempt_keeps_only_nodes_where_evicting_the_victims_makes_room() {
    let app = app_with(snapshot_cache("kube-default"), ExtenderConfig::default());
    // Put a pod with a known UID on a (6 cpu) via filter + bind.
    let body = json!({"Pod": pod("low", "u-low", "6", false), "Nodes": null, "NodeNames": ["a"]});
    assert_eq!(
        post(&app, "/filter", &body).await.1["NodeNames"],
        json!(["a"])
    );
    let bind = json!({"PodName": "low", "PodNamespace": "shop", "PodUID": "u-low", "Node": "a"});
    assert_eq!(post(&app, "/bind", &bind).await.1, json!({"Error": ""}));
    // A 7-cpu pod: evicting "low" frees a (8 free); on b, evicting nothing leaves 4.
    let args = json!({"Pod": pod("big", "u-big", "7", false), "NodeNameToVictims": null,
    "NodeNameToMetaVictims": {
        "a": {"Pods": [{"UID": "u-low"}], "NumPDBViolations": 1},
        "b": {"Pods": [], "NumPDBViolations": 0},
        "ghost": {"Pods": null, "NumPDBViolations": 0}
    }});
    let (status, r) = post(&app, "/preempt", &args).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        r,
        json!({"NodeNameToMetaVictims": {"a": {"Pods": [{"UID": "u-low"}], "NumPDBViolations": 1}}})
    );
    // Full-mode victims (whole pods): the snapshot pod "old" on b, 4 cpu → b has 8 free.
    let mut old = pod("old", "u-old", "4", true);
    old["spec"]["nodeName"] = json!("b");
    old["status"]["phase"] = json!("Running");
    let args = json!({"Pod": pod("big", "u-big", "7", false),
        "NodeNameToVictims": {"b": {"Pods": [old], "NumPDBViolations": 0}}, "NodeNameToMetaVictims": null});
    let (status, r) = post(&app, "/preempt", &args).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        r,
        json!({"NodeNameToMetaVictims": {"b": {"Pods": [{"UID": "u-old"}], "NumPDBViolations": 0}}})
    );
    // Victims were put back: without eviction the 7-cpu pod still fits nowhere.
    let body =
        json!({"Pod": pod("big", "u-big", "7", false), "Nodes": null, "NodeNames": ["a", "b"]});
    let (_, r) = post(&app, "/filter", &body).await;
    assert_eq!(r["NodeNames"], json!([]));
    assert_eq!(
        r["FailedNodes"],
        json!({"a": "Insufficient cpu", "b": "Insufficient cpu"})
    );
}

#[tokio::test]
async fn bad_input_gets_4xx_with_an_error_body() {
    let config = ExtenderConfig {
        body_limit: 4096,
        ..ExtenderConfig::default()
    };
    let app = app_with(snapshot_cache("best-fit"), config);
    let err = |v: &Value| v["Error"].as_str().map(str::to_string).unwrap_or_default();
    let (s, v) = call(&app, "POST", "/filter", "{\"Pod\": {").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(err(&v).contains("invalid request body"), "{v}");
    let (s, v) = call(&app, "POST", "/filter", r#"{"Pod": {}, "NodeNames": 5}"#).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(err(&v).contains("expected a sequence"), "{v}");
    let (s, v) = call(
        &app,
        "POST",
        "/prioritize",
        r#"{"Pod": 3, "NodeNames": []}"#,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(err(&v).contains("expected a JSON object"), "{v}");
    let mut bad_q = pod("p", "u", "lots", false);
    bad_q["status"] = Value::Null;
    let (s, v) = post(&app, "/filter", &json!({"Pod": bad_q, "NodeNames": ["a"]})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(err(&v).contains("cpu"), "{v}");
    let (s, v) = post(&app, "/filter", &json!({"Pod": pod("p", "u", "1", false)})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(err(&v).contains("neither Nodes nor NodeNames"), "{v}");
    let (s, v) = call(&app, "POST", "/bind", r#"{"PodName": "x"}"#).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(err(&v).contains("Node"), "{v}");
    let big = format!(r#"{{"Pod": {{}}, "NodeNames": ["{}"]}}"#, "n".repeat(8192));
    let (s, _) = call(&app, "POST", "/filter", big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    // Over the limit without a Content-Length (streamed body).
    let stream = futures_stream(vec![vec![b'['; 3000], vec![b'['; 3000]]);
    let (s, v) = call(&app, "POST", "/filter", stream).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    let (s, v) = call(&app, "POST", "/predicates/unknown", "{}").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(!err(&v).is_empty());
    let (s, v) = call(&app, "GET", "/filter", Body::empty()).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert!(!err(&v).is_empty());
    // The server still answers after all that.
    let body = json!({"Pod": pod("ok", "u-ok", "1", false), "NodeNames": ["a"]});
    assert_eq!(
        post(&app, "/filter", &body).await.1["NodeNames"],
        json!(["a"])
    );
}

/// A body without Content-Length, in chunks.
fn futures_stream(chunks: Vec<Vec<u8>>) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        for c in chunks {
            if tx.send(Ok(c.into())).await.is_err() {
                break;
            }
        }
    });
    Body::from_stream(ReceiverStream(rx))
}

struct ReceiverStream<T>(tokio::sync::mpsc::Receiver<T>);

impl<T> futures_core::Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

#[tokio::test]
async fn real_listener_serves_a_prefixed_verb_with_keep_alive() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = ExtenderConfig {
        path_prefix: "/plimsoll".into(),
        ..ExtenderConfig::default()
    };
    let app = app_with(snapshot_cache("best-fit"), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body =
        json!({"Pod": pod("web-1", "u-1", "1", false), "Nodes": null, "NodeNames": ["a", "c"]})
            .to_string();
    for _ in 0..2 {
        let req = format!(
            "POST /plimsoll/filter HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 8192];
        let mut got = String::new();
        // Read until the whole JSON body (it ends with `}`) has arrived.
        while !got.trim_end().ends_with('}') {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed early: {got}");
            got.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
        let json_body: Value = serde_json::from_str(got.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(json_body["NodeNames"], json!(["a"]));
    }
}

// ---- The fast path (classes, memoised name lists, scoring replicas, direct encoding)
// ---- against a straightforward per-node evaluation on a random mixed cluster.

use plimsoll::model::{
    Cluster, GpuAmount, GpuRequest, Node, NodeGpus, NodeId, Pod, Resources, Taint,
};
use plimsoll::place::FilterContext;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Nodes drawn from a few shapes (so classes form) with taints, cordons, GPUs of two
/// models and zone labels; every seventh has a unique hostname label (its own class).
fn mixed_nodes(rng: &mut ChaCha8Rng, n: usize) -> Vec<Node> {
    use plimsoll::model::selector::TaintEffect;
    (0..n)
        .map(|i| {
            let cpu = [4_000, 8_000, 16_000][rng.gen_range(0..3)];
            let r = Resources {
                cpu_milli: cpu,
                memory_bytes: [16u64, 32][rng.gen_range(0..2)] << 30,
                pods: [3, 110][usize::from(rng.gen_bool(0.8))],
                ..Default::default()
            };
            let mut labels: BTreeMap<String, String> = [(
                "zone".to_string(),
                ["a", "b"][rng.gen_range(0..2)].to_string(),
            )]
            .into();
            if i % 7 == 0 {
                labels.insert("kubernetes.io/hostname".into(), format!("n{i}"));
            }
            let taints = match rng.gen_range(0..6) {
                0 => vec![Taint {
                    key: "dedicated".into(),
                    value: "gpu".into(),
                    effect: TaintEffect::NoSchedule,
                }],
                1 => vec![Taint {
                    key: "spot".into(),
                    value: "yes".into(),
                    effect: TaintEffect::PreferNoSchedule,
                }],
                _ => vec![],
            };
            let gpus = rng.gen_bool(0.4).then(|| NodeGpus {
                model: ["T4", "A100"][rng.gen_range(0..2)].into(),
                count: rng.gen_range(1..=4),
            });
            Node {
                name: format!("m-{i:03}"),
                capacity: r.clone(),
                allocatable: r,
                gpus,
                labels,
                taints,
                unschedulable: rng.gen_bool(0.05),
            }
        })
        .collect()
}

fn gpu_request(rng: &mut ChaCha8Rng) -> GpuRequest {
    let amount = match rng.gen_range(0..4) {
        0 => GpuAmount::Shared([250, 500, 750][rng.gen_range(0..3)]),
        1 => GpuAmount::Whole(rng.gen_range(1..=2)),
        _ => GpuAmount::None,
    };
    GpuRequest {
        amount,
        models: vec![],
    }
}

/// A cache over `nodes` with random pods bound where they fit (by the cache's own
/// accounting), so nodes of one shape end up with different free resources.
fn mixed_cache(rng: &mut ChaCha8Rng, policy: &str, nodes: Vec<Node>) -> Cache {
    let mut cluster = Cluster::new(nodes.clone()).unwrap();
    let mut pods = Vec::new();
    for k in 0..nodes.len() {
        let node = NodeId::from_index(rng.gen_range(0..nodes.len()));
        let mut p = Pod {
            name: format!("bound-{k}"),
            namespace: "shop".into(),
            requests: Resources::cpu_mem(1000 * rng.gen_range(1..4), 1 << 30),
            gpu: gpu_request(rng),
            ..Default::default()
        };
        if !cluster.insufficient(&p, node).is_empty() {
            continue;
        }
        p.node_name = Some(nodes[node].name.clone());
        cluster.bind_named(p.clone()).unwrap();
        pods.push(p);
    }
    Cache::new(extender::policy(policy, 42).unwrap(), nodes, pods).unwrap()
}

/// A pending pod as JSON: cpu, maybe a GPU share or whole GPUs, maybe the toleration of
/// the `dedicated` taint, maybe a zone selector or a preferred zone.
fn mixed_pod(rng: &mut ChaCha8Rng, k: usize) -> Value {
    let mut requests = json!({"cpu": format!("{}m", 500 * rng.gen_range(1..16)), "memory": "2Gi"});
    let mut annotations = json!({});
    match rng.gen_range(0..4) {
        0 => annotations["plimsoll.io/gpu-milli"] = json!(["250", "500"][rng.gen_range(0..2)]),
        1 => requests["nvidia.com/gpu"] = json!(rng.gen_range(1..=2).to_string()),
        _ => {}
    }
    let mut spec =
        json!({"containers": [{"name": "c", "image": "x", "resources": {"requests": requests}}]});
    if rng.gen_bool(0.3) {
        spec["tolerations"] = json!([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]);
    }
    match rng.gen_range(0..4) {
        0 => spec["nodeSelector"] = json!({"zone": "a"}),
        1 => {
            spec["affinity"] = json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}}]}})
        }
        _ => {}
    }
    json!({"metadata": {"name": format!("q-{k}"), "namespace": "shop", "uid": format!("uq-{k}"),
        "annotations": annotations}, "spec": spec, "status": {"phase": "Pending"}})
}

/// The filter reply computed node by node with `FilterContext::check` (no classes, no
/// memo), encoded with serde_json.
fn reference_filter(cluster: &Cluster, pod: &Pod, names: &[String]) -> Value {
    let ctx = FilterContext::new(cluster, pod);
    let (mut passed, mut failed, mut unresolvable) = (vec![], BTreeMap::new(), BTreeMap::new());
    for name in names {
        let Some(id) = cluster.node_id(name) else {
            unresolvable.insert(name.clone(), extender::cache::UNKNOWN_NODE.to_string());
            continue;
        };
        match ctx.check(id) {
            Ok(()) => passed.push(name.clone()),
            Err(rs) => {
                let text = rs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                if rs.iter().any(|r| r.is_unresolvable()) {
                    unresolvable.insert(name.clone(), text);
                } else {
                    failed.insert(name.clone(), text);
                }
            }
        }
    }
    json!({"Nodes": null, "NodeNames": passed, "FailedNodes": failed,
        "FailedAndUnresolvableNodes": unresolvable, "Error": ""})
}

/// The prioritize reply from the policy's scores recomputed from scratch
/// (`OnlinePolicy::scores` on the cluster), min–max mapped over the named feasible nodes.
fn reference_prioritize(cache: &Cache, pod: &Pod, names: &[String]) -> Value {
    let cluster = cache.cluster();
    let by_node: BTreeMap<NodeId, f64> = cache.policy().scores(cluster, pod).into_iter().collect();
    let raw: Vec<Option<f64>> = names
        .iter()
        .map(|n| cluster.node_id(n).and_then(|id| by_node.get(&id).copied()))
        .collect();
    let lo = raw.iter().flatten().copied().fold(f64::INFINITY, f64::min);
    let hi = raw
        .iter()
        .flatten()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let list: Vec<Value> = names
        .iter()
        .zip(raw)
        .map(|(n, s)| {
            let score = match s {
                None => 0,
                Some(_) if hi - lo <= f64::EPSILON * hi.abs().max(1.0) => 10,
                Some(s) => ((s - lo) / (hi - lo) * 10.0).round().clamp(0.0, 10.0) as i64,
            };
            json!({"Host": n, "Score": score})
        })
        .collect();
    Value::Array(list)
}

/// A random name list: a shuffled subset of the nodes (sometimes all), a name twice, a
/// name the cache does not know, and one with characters JSON must escape.
fn mixed_names(rng: &mut ChaCha8Rng, nodes: &[Node]) -> Vec<String> {
    let mut names: Vec<String> = nodes
        .iter()
        .filter(|_| rng.gen_bool(0.7))
        .map(|n| n.name.clone())
        .collect();
    if rng.gen_bool(0.3) {
        names = nodes.iter().map(|n| n.name.clone()).collect();
    }
    for i in (1..names.len()).rev() {
        names.swap(i, rng.gen_range(0..=i));
    }
    if let Some(first) = names.first().cloned() {
        names.push(first);
    }
    names.push("ghost".into());
    names.push("we\"ird\\name".into());
    names
}

#[tokio::test]
async fn fast_path_replies_equal_a_per_node_evaluation_on_a_mixed_cluster() {
    for (seed, policy) in [
        (1u64, "best-fit"),
        (2, "kube-default"),
        (3, "gpu-packing"),
        (4, "least-allocated"),
    ] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let nodes = mixed_nodes(&mut rng, 120);
        let app = app_with(
            mixed_cache(&mut rng, policy, nodes.clone()),
            ExtenderConfig::default(),
        );
        // The same state, for the reference evaluation (binds below are mirrored).
        let mut rng_ref = ChaCha8Rng::seed_from_u64(seed);
        let _ = mixed_nodes(&mut rng_ref, 120);
        let mut reference = mixed_cache(&mut rng_ref, policy, nodes.clone());
        let lists: Vec<Vec<String>> = (0..3).map(|_| mixed_names(&mut rng, &nodes)).collect();
        let mut bound = 0;
        for k in 0..40 {
            let pod_json = mixed_pod(&mut rng, k);
            let raw = serde_json::value::to_raw_value(&pod_json).unwrap();
            let info = extender::convert::pod_from_json(&raw, "Pod").unwrap();
            // Repeated lists (memo hits) and fresh ones alternate.
            let names = &lists[k % lists.len()];
            let body = json!({"Pod": pod_json, "Nodes": null, "NodeNames": names});
            let (s, got) = post(&app, "/filter", &body).await;
            assert_eq!(s, StatusCode::OK);
            let want = reference_filter(reference.cluster(), &info.pod, names);
            assert_eq!(got, want, "{policy} filter, pod {k}");
            let (s, got) = post(&app, "/prioritize", &body).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(
                got,
                reference_prioritize(&reference, &info.pod, names),
                "{policy} prioritize, pod {k}"
            );
            // Bind every other pod that passed somewhere: classes, replicas and the
            // reference all move.
            if let Some(node) = want["NodeNames"]
                .as_array()
                .and_then(|a| a.first())
                .and_then(Value::as_str)
            {
                if k % 2 == 0 {
                    let b = json!({"PodName": format!("q-{k}"), "PodNamespace": "shop", "PodUID": format!("uq-{k}"), "Node": node});
                    assert_eq!(post(&app, "/bind", &b).await.1, json!({"Error": ""}));
                    reference.filter(&info, &[node]);
                    reference
                        .bind("shop", &format!("q-{k}"), &format!("uq-{k}"), node)
                        .unwrap();
                    bound += 1;
                }
            }
        }
        assert!(
            bound > 5,
            "{policy}: the binds must change the state ({bound})"
        );
    }
}

#[test]
fn filter_by_class_equals_filter_node_by_node_in_the_library() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let nodes = mixed_nodes(&mut rng, 200);
    let cache = mixed_cache(&mut rng, "best-fit", nodes.clone());
    let ids: Vec<Option<NodeId>> = (0..nodes.len())
        .map(|i| Some(NodeId::from_index(i)))
        .chain([None])
        .collect();
    for k in 0..60 {
        let raw = serde_json::value::to_raw_value(&mixed_pod(&mut rng, k)).unwrap();
        let pod = extender::convert::pod_from_json(&raw, "Pod").unwrap().pod;
        let v = cache.filter_ids(&pod, &ids);
        let ctx = FilterContext::new(cache.cluster(), &pod);
        for (i, &code) in v.codes.iter().enumerate().take(nodes.len()) {
            let want = ctx.check(NodeId::from_index(i)).map_err(|rs| {
                let text = rs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                (text, rs.iter().any(|r| r.is_unresolvable()))
            });
            assert_eq!(
                v.text(code).cloned().map_or(Ok(()), Err),
                want,
                "pod {k} node {i}"
            );
        }
        assert_eq!(
            v.text(*v.codes.last().unwrap()),
            Some(&(extender::cache::UNKNOWN_NODE.to_string(), true))
        );
    }
}

#[tokio::test]
async fn body_over_the_limit_gets_a_json_413_with_or_without_content_length() {
    let config = ExtenderConfig {
        body_limit: 4096,
        ..ExtenderConfig::default()
    };
    let app = app_with(snapshot_cache("best-fit"), config);
    let big = format!(r#"{{"Pod": {{}}, "NodeNames": ["{}"]}}"#, "n".repeat(8192));
    // With Content-Length (as kube-scheduler sends it) the limit layer refuses the body
    // before reading it.
    let req = Request::builder()
        .method("POST")
        .uri("/filter")
        .header("content-type", "application/json")
        .header("content-length", big.len().to_string())
        .body(Body::from(big.clone()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(v["Error"].as_str().unwrap().contains("4096"), "{v}");
    // Streamed, without Content-Length: refused while reading, same body shape.
    let stream = futures_stream(vec![vec![b'['; 3000], vec![b'['; 3000]]);
    let (s, v) = call(&app, "POST", "/filter", stream).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(v["Error"].is_string(), "{v}");
}

/// The name-list bodies shared with the scan's unit test (src/extender/scan.rs): each
/// body, and whether the scan may take it without a full decode.
fn name_list_bodies(pod: &str, list: &str) -> Vec<(String, bool)> {
    let v: Vec<Value> =
        serde_json::from_str(include_str!("fixtures/name_list_bodies.json")).unwrap();
    v.iter()
        .map(|b| {
            let body = b["body"].as_str().unwrap();
            let body = body.replace("{p}", pod).replace("{list}", list);
            (body, b["scan"].as_bool().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn memoised_name_list_scan_agrees_with_a_full_decode() {
    // The scan alone is unit-tested in src/extender/scan.rs; here, end to end.
    let list = r#"["a","b","c","ghost"]"#;
    let p = pod("web-1", "u-1", "3", false).to_string();
    let bodies = name_list_bodies(&p, list);
    // End to end: a server that has seen the list replies as one that has not.
    let warm = app_with(snapshot_cache("best-fit"), ExtenderConfig::default());
    let first = format!(r#"{{"Pod":{p},"NodeNames":{list}}}"#);
    for verb in ["/filter", "/prioritize"] {
        assert_eq!(
            call(&warm, "POST", verb, first.clone()).await.0,
            StatusCode::OK
        );
        for (body, fast) in &bodies {
            let cold = app_with(snapshot_cache("best-fit"), ExtenderConfig::default());
            let want = call(&cold, "POST", verb, body.clone()).await;
            let got = call(&warm, "POST", verb, body.clone()).await;
            assert_eq!(got, want, "{verb} {body}");
            if *fast {
                assert_eq!(got.0, StatusCode::OK, "{verb} {body}");
            }
        }
    }
    // Every node passes (the reply's list is then written whole): twice, the second
    // time from the memo.
    let body = json!({"Pod": pod("web-2", "u-2", "1", false), "NodeNames": ["b", "a", "b"]});
    for _ in 0..2 {
        let (status, r) = post(&warm, "/filter", &body).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            r,
            json!({"Nodes": null, "NodeNames": ["b", "a", "b"], "FailedNodes": {},
                   "FailedAndUnresolvableNodes": {}, "Error": ""})
        );
    }
}

#[tokio::test]
async fn a_pod_changed_under_the_same_name_is_converted_again() {
    let app = app_with(snapshot_cache("best-fit"), ExtenderConfig::default());
    let names = json!(["a", "b"]);
    // The same pod twice (the second from the memo), then a bigger one with the same
    // name and UID: nothing of the first may be reused.
    for (cpu, want) in [
        ("3", json!(["a", "b"])),
        ("3", json!(["a", "b"])),
        ("5", json!(["a"])),
    ] {
        let body = json!({"Pod": pod("web-1", "u-1", cpu, false), "NodeNames": names});
        let (status, r) = post(&app, "/filter", &body).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(r["NodeNames"], want, "cpu {cpu}");
    }
}

/// The extender under hostile or heavy input: deep bodies are rejected quickly, heavy
/// bodies do not hold the threads serving `/healthz`, pods whose requests overflow are
/// refused before they reach the cache, absurd GPU counts are refused, and the memory
/// kept per distinct pod name is bounded.
mod limits {
    use super::call;
    use axum::http::StatusCode;
    use plimsoll::extender::{self, Cache, ExtenderConfig, ExtenderState, SEEN_CAPACITY};
    use serde_json::{json, Value};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    fn cache() -> Cache {
        let yaml = r#"
apiVersion: v1
kind: Node
metadata: {name: a}
status: {allocatable: {cpu: "16", memory: 64Gi, pods: "110"}}
---
apiVersion: v1
kind: Node
metadata: {name: b}
status: {allocatable: {cpu: "15800m", memory: 64Gi, pods: "110"}}
"#;
        let l = plimsoll::manifest::load_str(yaml, "snapshot.yaml").unwrap();
        Cache::new(extender::policy("best-fit", 42).unwrap(), l.nodes, l.pods).unwrap()
    }

    fn state() -> Arc<ExtenderState> {
        ExtenderState::new(cache(), ExtenderConfig::default())
    }

    fn pod(name: &str, containers: Value) -> Value {
        json!({
            "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}")},
            "spec": {"containers": containers}
        })
    }

    fn cpu_pod(name: &str, cpu: &str) -> Value {
        pod(
            name,
            json!([{"name": "c", "resources": {"requests": {"cpu": cpu}}}]),
        )
    }

    fn filter_body(pod: &Value, names: &[&str]) -> String {
        json!({"Pod": pod, "NodeNames": names}).to_string()
    }

    #[tokio::test]
    async fn a_deeply_nested_body_is_rejected_quickly() {
        let app = extender::router(state());
        let open = "[".repeat(200_000);
        let closed = format!("{open}{}", "]".repeat(200_000));
        for pod in [open, closed] {
            for names in ["", ", \"NodeNames\": [\"a\"]"] {
                let body = format!("{{\"Pod\": {pod}{names}}}");
                let t0 = Instant::now();
                let (s, v) = call(&app, "POST", "/filter", body).await;
                let took = t0.elapsed();
                assert!(s.is_client_error(), "{s}: {v}");
                assert!(v["Error"].as_str().unwrap().contains("line 1"), "{v}");
                assert!(took < Duration::from_millis(500), "{took:?}");
            }
        }
        // Deep inside the pod object but within JSON's limit: the manifest reader's bound.
        let deep = format!(
            "{{\"Pod\": {{\"metadata\": {{\"name\": \"p\", \"annotations\": {{\"x\": \"y\"}}}}, \"spec\": {{\"containers\": [{{\"name\": \"c\", \"args\": {}{}}}]}}}}, \"NodeNames\": [\"a\"]}}",
            "[".repeat(110),
            "]".repeat(110)
        );
        let (s, v) = call(&app, "POST", "/filter", deep).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert!(v["Error"].as_str().unwrap().contains("levels"), "{v}");
    }

    /// Four containers of 2^62 millicores wrapped to a zero request: the pod passed
    /// `/filter` on a busy node, `/bind` recorded it, and the cache's accounting was
    /// corrupted for every later pod.
    #[tokio::test]
    async fn a_pod_whose_requests_overflow_is_refused_and_the_cache_stays_exact() {
        let st = state();
        let app = extender::router(st.clone());
        let c = json!({"name": "c", "resources": {"requests": {"cpu": "4611686018427387904m"}}});
        let huge = pod("huge", json!([c, c, c, c]));
        let (s, v) = call(&app, "POST", "/filter", filter_body(&huge, &["a", "b"])).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let err = v["Error"].as_str().unwrap();
        assert!(err.contains("spec.containers[1].resources"), "{err}");
        let bind =
            json!({"PodName": "huge", "PodNamespace": "shop", "PodUID": "uid-huge", "Node": "b"});
        let (s, v) = call(&app, "POST", "/bind", bind.to_string()).await;
        assert_eq!(s, StatusCode::OK);
        assert!(v["Error"].as_str().unwrap().contains("was not seen"), "{v}");
        assert_eq!(st.read().bound_count(), 0);
        // The accounting is exact: 15 CPUs fit on b (15.8) only while it is empty.
        for (name, passes, node) in [("one", json!(["a", "b"]), "b"), ("two", json!(["a"]), "a")] {
            let p = cpu_pod(name, "15");
            let (_, v) = call(&app, "POST", "/filter", filter_body(&p, &["a", "b"])).await;
            assert_eq!(v["NodeNames"], passes, "{v}");
            let bind = json!({"PodName": name, "PodNamespace": "shop", "PodUID": format!("uid-{name}"), "Node": node});
            let (_, v) = call(&app, "POST", "/bind", bind.to_string()).await;
            assert_eq!(v["Error"], json!(""));
        }
        let (_, v) = call(
            &app,
            "POST",
            "/filter",
            filter_body(&cpu_pod("three", "15"), &["b"]),
        )
        .await;
        assert_eq!(v["NodeNames"], json!([]), "{v}");
    }

    #[tokio::test]
    async fn a_full_mode_node_with_absurd_gpus_is_refused_quickly() {
        let app = extender::router(state());
        let node = json!({
            "metadata": {"name": "g"},
            "status": {"allocatable": {"cpu": "8", "nvidia.com/gpu": "4294967295"}}
        });
        let body = json!({"Pod": cpu_pod("p", "1"), "Nodes": {"items": [node]}}).to_string();
        let t0 = Instant::now();
        let (s, v) = call(&app, "POST", "/filter", body).await;
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert!(v["Error"].as_str().unwrap().contains("at most 256"), "{v}");
        let (s, _) = call(&app, "GET", "/healthz", String::new()).await;
        assert_eq!(s, StatusCode::OK);
    }

    /// Each distinct pod filtered and never bound was remembered for `/bind` until 100,000
    /// had piled up (the extender grew from 16 to 142 MB over 15,000 such pods).
    #[tokio::test]
    async fn memory_kept_per_distinct_pod_name_is_bounded() {
        let st = state();
        let app = extender::router(st.clone());
        let n = SEEN_CAPACITY + 1000;
        for i in 0..n {
            let p = cpu_pod(&format!("p-{i}"), "1");
            let (s, _) = call(&app, "POST", "/filter", filter_body(&p, &["a"])).await;
            assert_eq!(s, StatusCode::OK);
        }
        assert_eq!(st.read().seen_count(), SEEN_CAPACITY);
        // The most recent pods can still be bound; the oldest were forgotten.
        let bind = |i: usize| {
            json!({"PodName": format!("p-{i}"), "PodNamespace": "shop", "Node": "a"}).to_string()
        };
        let (_, v) = call(&app, "POST", "/bind", bind(n - 1)).await;
        assert_eq!(v["Error"], json!(""));
        let (_, v) = call(&app, "POST", "/bind", bind(0)).await;
        assert!(v["Error"].as_str().unwrap().contains("was not seen"), "{v}");
        // A pod re-created under one name (a new UID each time), filtered and bound again:
        // one UID per bound pod is kept.
        for round in 0..3 {
            let mut p = cpu_pod("again", "1");
            p["metadata"]["uid"] = json!(format!("uid-{round}"));
            call(&app, "POST", "/filter", filter_body(&p, &["a"])).await;
            let bind = json!({"PodName": "again", "PodNamespace": "shop", "PodUID": format!("uid-{round}"), "Node": "a"});
            let (_, v) = call(&app, "POST", "/bind", bind.to_string()).await;
            assert_eq!(v["Error"], json!(""), "round {round}");
        }
        let c = st.read();
        assert_eq!(c.bound_count(), 2);
        assert!(c.uid_count() <= c.bound_count());
    }

    /// Two heavy bodies used to occupy both of the runtime's threads for seconds, and
    /// `/healthz` waited for them. Here the runtime has a single thread.
    #[tokio::test(flavor = "current_thread")]
    async fn healthz_answers_while_heavy_bodies_are_processed() {
        let app = extender::router(state());
        // A full-mode filter over many nodes: every node object goes through the manifest
        // reader.
        let nodes: Vec<Value> = (0..3000)
            .map(|i| {
                json!({
                    "metadata": {"name": format!("n{i}"), "labels": {"zone": format!("z{}", i % 7)}},
                    "status": {"allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"}}
                })
            })
            .collect();
        let body = json!({"Pod": cpu_pod("p", "1"), "Nodes": {"items": nodes}}).to_string();
        let t0 = Instant::now();
        let heavy: Vec<_> = (0..2)
            .map(|_| {
                let (app, body) = (app.clone(), body.clone());
                tokio::spawn(async move { call(&app, "POST", "/filter", body).await })
            })
            .collect();
        // Let both heavy requests start.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let t1 = Instant::now();
        let (s, _) = call(&app, "GET", "/healthz", String::new()).await;
        let healthz = t1.elapsed();
        let busy = heavy.iter().any(|h| !h.is_finished());
        assert_eq!(s, StatusCode::OK);
        let mut heavy_took = Duration::ZERO;
        for h in heavy {
            let (s, v) = h.await.unwrap();
            assert_eq!(s, StatusCode::OK, "{v}");
            heavy_took = t0.elapsed();
        }
        assert!(
            busy,
            "the heavy requests finished before /healthz was asked"
        );
        assert!(
            healthz < heavy_took / 4,
            "/healthz took {healthz:?} while the heavy bodies took {heavy_took:?}"
        );
    }

    /// Sends raw bytes to a real listener and returns the whole reply (the server closes
    /// the connection after an unreadable head).
    async fn raw_exchange(request: Vec<u8>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = extender::router(state());
        tokio::spawn(async move {
            axum::serve(extender::ErrorBodyListener(listener), app)
                .await
                .unwrap()
        });
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(&request).await.unwrap();
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out));
        read.await.unwrap().unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    fn error_body(reply: &str) -> Value {
        let (head, body) = reply.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("content-type: application/json"), "{reply}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{reply}"
        );
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {reply}"))
    }

    /// hyper answers an unreadable request head itself (400, 431) with an empty body.
    #[tokio::test]
    async fn http_layer_errors_carry_a_json_error_body() {
        let bad_length =
            b"POST /filter HTTP/1.1\r\nHost: x\r\nContent-Length: 12x\r\n\r\n{}".to_vec();
        let reply = raw_exchange(bad_length).await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
        assert!(error_body(&reply)["Error"]
            .as_str()
            .unwrap()
            .contains("Content-Length"));
        let mut many = b"POST /filter HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..200 {
            many.extend_from_slice(format!("X-Header-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"Content-Length: 2\r\n\r\n{}");
        let reply = raw_exchange(many).await;
        assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
        assert!(error_body(&reply)["Error"]
            .as_str()
            .unwrap()
            .contains("headers"));
        let config = ExtenderConfig {
            body_limit: 1024,
            ..ExtenderConfig::default()
        };
        let app = extender::router(ExtenderState::new(cache(), config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(extender::ErrorBodyListener(listener), app)
                .await
                .unwrap()
        });
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let body = "x".repeat(4096);
        let req = format!(
            "POST /filter HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
        let reply = String::from_utf8_lossy(&out).into_owned();
        assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
        assert!(error_body(&reply)["Error"]
            .as_str()
            .unwrap()
            .contains("limit"));
    }
}
