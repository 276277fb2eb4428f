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
//!
//! The default mode is a **closed loop** (each client sends its next request when the
//! reply arrives): it measures saturation throughput, and its latencies are mostly
//! queueing (with coordinated omission). `EXT_RATE=R` switches to an **open loop**
//! (wrk2-style): `R` requests/s in total on a fixed schedule, request `j` due at
//! `j / R` s and sent on connection `j mod EXT_CLIENTS` (one blocking keep-alive
//! connection per OS thread, apart from the server's tokio runtime; one pod per
//! connection, so the server's pod memo misses, and one shared name list), each latency
//! measured from the request's *scheduled* time, so a server that falls behind is
//! charged for the wait (no coordinated omission). It runs `EXT_DURATION` seconds
//! (default 3) per verb and reports p50/p99/p99.9/max and offered vs achieved rate.
//! `EXT_SWEEP=1` runs the open loop at 250, 500, 1000, 1500, 2000, 3000, 4000, … req/s
//! per verb until p99 reaches 5 ms or the server saturates (achieved < 95 % of offered),
//! and prints the highest rate with p99 < 5 ms for filter and for prioritize.
//!
//! `EXT_TARGET=host:port` drives an already running `plimsoll extender` in another
//! process instead of the in-process server; that server must hold the same cache:
//! `EXT_SNAPSHOT=FILE` writes it (nodes and bound pods as a JSON `List`) and exits, then
//! `plimsoll extender --snapshot FILE --listen host:port` serves it.
//! Without `--bench` (as `cargo test --benches` runs it) it does a tiny smoke run.

mod common;

use common::extender_cache as cache;
use plimsoll::extender::{self, Cache, ExtenderConfig, ExtenderState};
use serde_json::json;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

fn request(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// End of the head and the body length, once `buf` holds a whole reply head.
fn parse_head(buf: &[u8]) -> Option<(usize, usize)> {
    let p = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
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
    Some((p + 4, len))
}

async fn client(addr: SocketAddr, path: &'static str, body: String, n: usize) -> Vec<Duration> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let req = request(path, &body);
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
            if let Some(h) = parse_head(&buf[..got]) {
                break h;
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

/// One blocking request–reply exchange on a keep-alive connection.
fn exchange(s: &mut std::net::TcpStream, req: &[u8], buf: &mut Vec<u8>) {
    s.write_all(req).unwrap();
    let mut got = 0;
    let (head_end, len) = loop {
        let r = s.read(&mut buf[got..]).unwrap();
        assert!(r > 0, "server closed the connection");
        got += r;
        if let Some(h) = parse_head(&buf[..got]) {
            break h;
        }
    };
    if buf.len() < head_end + len {
        buf.resize(head_end + len, 0);
    }
    while got < head_end + len {
        let r = s.read(&mut buf[got..]).unwrap();
        assert!(r > 0);
        got += r;
    }
}

/// A connection falling this far behind its schedule stops sending (the server is
/// saturated; its unsent requests count against the achieved rate).
const GIVE_UP: Duration = Duration::from_secs(2);

/// What one open-loop run measured.
struct OpenRun {
    offered: f64,
    achieved: f64,
    sent: usize,
    due: usize,
    /// Latencies from the scheduled send time, sorted.
    lat: Vec<Duration>,
}

impl OpenRun {
    fn saturated(&self) -> bool {
        self.sent < self.due || self.achieved < 0.95 * self.offered
    }

    fn p99_ms(&self) -> f64 {
        if self.lat.is_empty() {
            f64::INFINITY
        } else {
            pct(&self.lat, 0.99)
        }
    }

    fn print(&self, path: &str) {
        if self.lat.is_empty() {
            println!("{path:<12} offered {:7.0} req/s: no reply", self.offered);
            return;
        }
        println!(
            "{path:<12} offered {:7.0} achieved {:7.0} req/s  p50 {:7.2}  p99 {:7.2}  p99.9 {:7.2}  max {:7.2} ms  ({}/{} sent){}  load {}",
            self.offered,
            self.achieved,
            pct(&self.lat, 0.5),
            pct(&self.lat, 0.99),
            pct(&self.lat, 0.999),
            pct(&self.lat, 1.0),
            self.sent,
            self.due,
            if self.saturated() { "  SATURATED" } else { "" },
            loadavg()
        );
    }
}

/// Open loop: `rate` requests/s for `secs` seconds on `reqs.len()` connections,
/// request `j` due at `j / rate` on connection `j mod conns` (which sends `reqs[c]`:
/// one pod per connection, the same name list), latency from the due time.
fn open_loop(addr: SocketAddr, reqs: &[String], rate: f64, secs: f64) -> OpenRun {
    let conns = reqs.len();
    let due = ((rate * secs).round() as usize).max(1);
    // Connect everyone first, then start the clock.
    let streams: Vec<std::net::TcpStream> = (0..conns.min(due))
        .map(|_| {
            let s = std::net::TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            s
        })
        .collect();
    let n = streams.len();
    let start = Instant::now() + Duration::from_millis(20);
    let threads: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(c, mut s)| {
            let req = reqs[c].as_bytes().to_vec();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 20];
                let mut lat = Vec::new();
                let mut last = start;
                for j in (c..due).step_by(n) {
                    let at = start + Duration::from_secs_f64(j as f64 / rate);
                    let now = Instant::now();
                    if at > now {
                        std::thread::sleep(at - now);
                    } else if now - at > GIVE_UP {
                        break;
                    }
                    exchange(&mut s, &req, &mut buf);
                    last = Instant::now();
                    lat.push(last - at);
                }
                (lat, last)
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(due);
    let mut end = start;
    for t in threads {
        let (l, last) = t.join().unwrap();
        lat.extend(l);
        end = end.max(last);
    }
    lat.sort();
    let wall = (end - start).as_secs_f64().max(1e-9);
    OpenRun {
        offered: rate,
        // Over the schedule's span, or longer when replies came late.
        achieved: lat.len() as f64 / wall.max(secs),
        sent: lat.len(),
        due,
        lat,
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The cache as manifests (a JSON `List` of v1 Nodes and bound Pods), for
/// `plimsoll extender --snapshot`.
fn snapshot(cache: &Cache) -> serde_json::Value {
    let c = cache.cluster();
    let mut items: Vec<serde_json::Value> = c
        .nodes()
        .map(|(_, n)| {
            let a = &n.allocatable;
            let r = json!({"cpu": format!("{}m", a.cpu_milli), "memory": a.memory_bytes.to_string(), "pods": a.pods.to_string()});
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n.name},
                   "status": {"capacity": r, "allocatable": r}})
        })
        .collect();
    for (_, p, b) in c.bound_pods() {
        items.push(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": p.name, "namespace": p.namespace},
            "spec": {"nodeName": c[b.node].name, "containers": [{"name": "c", "image": "x",
                "resources": {"requests": {"cpu": format!("{}m", p.requests.cpu_milli),
                                           "memory": p.requests.memory_bytes.to_string()}}}]},
            "status": {"phase": "Running"}}));
    }
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// Rates of the sweep: 250, 500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, …
fn sweep_rates() -> impl Iterator<Item = f64> {
    [250.0, 500.0, 1000.0, 1500.0]
        .into_iter()
        .chain((1..).flat_map(|k: i32| {
            let b = 2000.0 * 2f64.powi(k - 1);
            [b, 1.5 * b]
        }))
}

fn closed_loop(
    addr: SocketAddr,
    rt: &tokio::runtime::Runtime,
    nodes: usize,
    clients: usize,
    per_client: usize,
    vary: bool,
) {
    rt.block_on(async move {
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
                "{path:<12} p50 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms  throughput {:8.0} req/s  ({} requests)  load {}",
                pct(&lat, 0.5),
                pct(&lat, 0.99),
                pct(&lat, 1.0),
                lat.len() as f64 / wall,
                lat.len(),
                loadavg()
            );
        }
    });
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let nodes = env("EXT_NODES", if full { 5000 } else { 50 });
    let clients = env("EXT_CLIENTS", if full { 64 } else { 4 });
    let per_client = env("EXT_REQUESTS", if full { 50 } else { 5 });
    let threads = env("EXT_THREADS", 0);
    let vary = env("EXT_VARY", 0) == 1;
    let rate = env("EXT_RATE", 0);
    let sweep = env("EXT_SWEEP", 0) == 1;
    let secs: f64 = std::env::var("EXT_DURATION")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 3.0 } else { 0.2 });
    let target = std::env::var("EXT_TARGET").ok();
    if let Ok(path) = std::env::var("EXT_SNAPSHOT") {
        let text = snapshot(&cache(nodes)).to_string();
        std::fs::write(&path, text).unwrap();
        println!("wrote {path}: {nodes} nodes and their bound pods; serve it with\n  plimsoll extender --snapshot {path} --listen 127.0.0.1:8899\nthen run with EXT_TARGET=127.0.0.1:8899");
        return;
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        rt.worker_threads(threads);
    }
    let rt = rt.enable_all().build().unwrap();
    let addr: SocketAddr = match &target {
        Some(t) => std::net::ToSocketAddrs::to_socket_addrs(t)
            .unwrap()
            .next()
            .expect("EXT_TARGET resolves"),
        None => rt.block_on(async {
            let app = extender::router(ExtenderState::new(cache(nodes), ExtenderConfig::default()));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            addr
        }),
    };
    let server = match &target {
        Some(t) => format!("server {t} (another process)"),
        None => "in-process server".into(),
    };
    let mode = if sweep {
        format!("open-loop sweep, {secs} s per rate")
    } else if rate > 0 {
        format!("open loop at {rate} req/s for {secs} s")
    } else {
        format!("closed loop, {per_client} requests per client")
    };
    println!(
        "extender load: {nodes} nodes in node-names mode, {clients} clients, {mode}, body {} KB{}, {server}, load {}",
        body(nodes, 0, vary).len() / 1024,
        if vary { ", a distinct name list per client" } else { "" },
        loadavg()
    );
    if !sweep && rate == 0 {
        closed_loop(addr, &rt, nodes, clients, per_client, vary);
        return;
    }
    // Open loop: one name list for everyone (sent once before, so the server's memo
    // holds it), a distinct pod per connection (so the pod memo, which keeps fewer
    // than 64, misses: every request converts its pod).
    let warm = |path: &str| {
        let reqs: Vec<String> = (0..clients)
            .map(|c| request(path, &body(nodes, c, false)))
            .collect();
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        exchange(&mut s, reqs[0].as_bytes(), &mut vec![0u8; 1 << 20]);
        reqs
    };
    let mut best = Vec::new();
    for path in ["/filter", "/prioritize"] {
        let req = warm(path);
        if !sweep {
            open_loop(addr, &req, rate as f64, secs).print(path);
            continue;
        }
        let mut ok = None;
        let rates: Vec<f64> = if full {
            sweep_rates().take(16).collect()
        } else {
            vec![100.0, 200.0]
        };
        for r in rates {
            let run = open_loop(addr, &req, r, secs);
            run.print(path);
            if run.saturated() || run.p99_ms() >= 5.0 {
                break;
            }
            ok = Some(r);
        }
        best.push((path, ok));
    }
    for (path, ok) in best {
        match ok {
            Some(r) => println!("{path:<12} highest swept rate with p99 < 5 ms: {r:.0} req/s"),
            None => println!("{path:<12} p99 >= 5 ms already at the lowest swept rate"),
        }
    }
    drop(rt);
}
