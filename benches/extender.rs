//! Load generator for `plimsoll extender`: p50/p99 latency and throughput of `/filter`
//! and `/prioritize` in node-names mode, against the real router on a loopback
//! listener, with concurrent keep-alive HTTP/1.1 clients.
//!
//! `cargo bench --bench extender` runs 5,000 nodes (1,000 bound pods), every request
//! naming all 5,000 nodes, 64 clients. Environment overrides: `EXT_NODES`,
//! `EXT_CLIENTS`, `EXT_REQUESTS` (per client), `EXT_THREADS` (server worker threads),
//! `EXT_VARY=1` (each client leaves a different node out of its list, so the lists are
//! all distinct and the server's memo of resolved name lists misses: the cost of
//! decoding and resolving 5,000 names on every call).
//! Without `--bench` (as `cargo test --benches` runs it) it does a tiny smoke run.

use plimsoll::extender::{self, Cache, ExtenderConfig, ExtenderState};
use plimsoll::model::{Node, Pod, Resources};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cache(nodes: usize) -> Cache {
    let r = Resources {
        cpu_milli: 32_000,
        memory_bytes: 128 << 30,
        pods: 110,
        ..Default::default()
    };
    let nodes: Vec<Node> = (0..nodes)
        .map(|i| Node {
            name: format!("node-{i:05}"),
            capacity: r.clone(),
            allocatable: r.clone(),
            ..Default::default()
        })
        .collect();
    // One bound pod on every fifth node, of varying size, so scores differ.
    let pods: Vec<Pod> = (0..nodes.len() / 5)
        .map(|i| Pod {
            name: format!("bound-{i}"),
            namespace: "default".into(),
            requests: Resources::cpu_mem(1000 * (1 + (i as u64 % 8)), 2 << 30),
            node_name: Some(nodes[i * 5].name.clone()),
            ..Default::default()
        })
        .collect();
    Cache::new(extender::policy("best-fit").unwrap(), nodes, pods).unwrap()
}

fn body(nodes: usize, k: usize, vary: bool) -> String {
    let names: Vec<String> = (0..nodes)
        .filter(|&i| !vary || i != k % nodes)
        .map(|i| format!("node-{i:05}"))
        .collect();
    json!({
        "Pod": {"metadata": {"name": format!("load-{k}"), "namespace": "default", "uid": format!("u-{k}")},
                "spec": {"containers": [{"name": "c", "image": "x",
                         "resources": {"requests": {"cpu": "2", "memory": "4Gi"}}}]},
                "status": {"phase": "Pending"}},
        "Nodes": null,
        "NodeNames": names
    })
    .to_string()
}

async fn client(
    addr: std::net::SocketAddr,
    path: &'static str,
    body: String,
    n: usize,
) -> Vec<Duration> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut buf = vec![0u8; 1 << 20];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(req.as_bytes()).await.unwrap();
        // Read the head, then exactly Content-Length bytes of body.
        let mut got = 0;
        let (head_end, len) = loop {
            let r = s.read(&mut buf[got..]).await.unwrap();
            assert!(r > 0, "server closed the connection");
            got += r;
            if let Some(p) = buf[..got].windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&buf[..p]).unwrap();
                assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .expect("content-length");
                break (p + 4, len);
            }
        };
        while got < head_end + len {
            let r = s.read(&mut buf[got..]).await.unwrap();
            assert!(r > 0);
            got += r;
        }
        out.push(t.elapsed());
    }
    out
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let nodes = env("EXT_NODES", if full { 5000 } else { 50 });
    let clients = env("EXT_CLIENTS", if full { 64 } else { 4 });
    let per_client = env("EXT_REQUESTS", if full { 50 } else { 5 });
    let threads = env("EXT_THREADS", 0);
    let vary = env("EXT_VARY", 0) == 1;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        rt.worker_threads(threads);
    }
    let rt = rt.enable_all().build().unwrap();
    rt.block_on(async move {
        let app = extender::router(ExtenderState::new(cache(nodes), ExtenderConfig::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        println!(
            "extender load: {nodes} nodes in node-names mode, {clients} clients x {per_client} requests, body {} KB{}",
            body(nodes, 0, vary).len() / 1024,
            if vary { ", a distinct name list per client" } else { "" }
        );
        for path in ["/filter", "/prioritize"] {
            let t = Instant::now();
            let tasks: Vec<_> = (0..clients)
                .map(|k| tokio::spawn(client(addr, path, body(nodes, k, vary), per_client)))
                .collect();
            let mut lat = Vec::new();
            for t in tasks {
                lat.extend(t.await.unwrap());
            }
            let wall = t.elapsed().as_secs_f64();
            lat.sort();
            println!(
                "{path:<12} p50 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms  throughput {:8.0} req/s  ({} requests)",
                pct(&lat, 0.5),
                pct(&lat, 0.99),
                pct(&lat, 1.0),
                lat.len() as f64 / wall,
                lat.len()
            );
        }
    });
}
