//! The extender under hostile or heavy input: deep bodies are rejected quickly, heavy
//! bodies do not hold the threads serving `/healthz`, pods whose requests overflow are
//! refused before they reach the cache, absurd GPU counts are refused, and the memory
//! kept per distinct pod name is bounded.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use plimsoll::extender::{self, Cache, ExtenderConfig, ExtenderState, SEEN_CAPACITY};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

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

async fn call(app: &axum::Router, method: &str, path: &str, body: String) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, v)
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
    let bad_length = b"POST /filter HTTP/1.1\r\nHost: x\r\nContent-Length: 12x\r\n\r\n{}".to_vec();
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
