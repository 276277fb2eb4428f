//! The API server under load, through HTTPS the way clients use it: the same three
//! measures as `benches/store.rs`, one level up, with the embedded store and with etcd
//! side by side in one run.
//!
//! - **Creates**: 32 concurrent clients each `POST` their share of 10,000 pods (a 1.5 KB
//!   kubectl-style JSON body) to `/api/v1/namespaces/default/pods`; a create is
//!   acknowledged only after its durable write.
//! - **Lists** of the 10,000 pods (`GET /api/v1/namespaces/default/pods`), 20 times each:
//!   as JSON and as the Table `kubectl get pods` asks for
//!   (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), timed from just before the
//!   request until the last byte of the body is received (raw requests: no parsing), and
//!   the same JSON list through kube-rs's typed `Api<Pod>::list` (received and
//!   deserialised into `k8s_openapi` pods), which is what a Rust client experiences. The
//!   time until the response's headers arrive is reported too: the server builds the whole
//!   body before it answers, so that is its share, and the rest is the transfer.
//! - **Watch fan-out**: 50 watchers (`?watch=true&resourceVersion=RV`, one connection
//!   each) on the pods; 200 merge patches of a label, one every 5 ms, each on its own pod;
//!   for every (write, watcher) pair the time from just before the patch is sent until the
//!   watcher has received the event's line (its `resourceVersion` found in the bytes; no
//!   parsing), and the same from the patch's acknowledgement (negative when the event
//!   arrived before the response).
//!
//! Each phase also reports the CPU this process (server and clients together) and etcd
//! used, in cores, from `/proc`.
//!
//! The server runs in this process (`server::api::Prepared`, as `plimsoll server` runs
//! it) on `127.0.0.1:0` with its own tokio runtime, a data directory under the temporary
//! directory and kube-apiserver's default limits; the clients are kube-rs `Client`s (one
//! per task, sharing hyper's connection pool; HTTP/1.1, so one connection per request in
//! flight) built from the admin kubeconfig the server writes, on a second runtime. The
//! etcd run starts a real `etcd` on loopback ports of its own (skipped, with a note, if
//! there is no `etcd` binary), kills it by its pid and removes every directory.
//!
//! `cargo bench --bench api`; without `--bench` (as `cargo test --benches` runs it) it does
//! a tiny smoke run. `API_PODS`, `API_CLIENTS`, `API_WATCHERS`, `API_WRITES`, `API_LISTS`
//! override the sizes; `API_STORES=embedded` (or `etcd`) runs one store.

mod stats;
use stats::{env, pct, Etcd};

use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use plimsoll::server::api::{Prepared, ServerConfig, StoreChoice};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PODS: &str = "/api/v1/namespaces/default/pods";
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// The `p` quantile of sorted signed delays in seconds, in ms.
fn pct_signed(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] * 1e3
}

/// The sizes of one run.
#[derive(Clone, Copy)]
struct Sizes {
    pods: usize,
    clients: usize,
    watchers: usize,
    writes: usize,
    lists: usize,
    pace: Duration,
}

/// A pod as kubectl would send it (1.5 KB of JSON; the server adds its defaults).
fn pod(i: usize) -> Vec<u8> {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"pod-{i:06}","namespace":"default","labels":{{"app":"web","tier":"frontend"}},"annotations":{{"pad":"{}"}}}},"spec":{{"containers":[{{"name":"c","image":"busybox:1.36","command":["sleep","3600"],"resources":{{"requests":{{"cpu":"100m","memory":"64Mi"}}}}}}]}}}}"#,
        "x".repeat(1200)
    )
    .into_bytes()
}

/// A running in-process API server; stopped and its directory removed when dropped.
struct Server {
    rt: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    dir: PathBuf,
    kubeconfig: PathBuf,
}

impl Server {
    fn start(dir: PathBuf, store: StoreChoice) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .thread_name("api-server")
            .enable_all()
            .build()
            .unwrap();
        let mut config = ServerConfig::new(dir.join("data"), "127.0.0.1:0".parse().unwrap());
        config.store = store;
        let prepared = rt
            .block_on(Prepared::new(config))
            .expect("the API server starts");
        let kubeconfig = prepared.kubeconfig.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(prepared.serve(async move {
            let _ = stopped.await;
        }));
        Server {
            rt: Some(rt),
            stop: Some(stop),
            dir,
            kubeconfig,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn client(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// A raw request's status and whole body.
async fn raw(c: &kube::Client, req: Request<Vec<u8>>) -> (StatusCode, axum::body::Bytes) {
    let (status, body, _) = raw_timed(c, req).await;
    (status, body)
}

/// The same, with the time from the call until the response's headers arrived.
async fn raw_timed(
    c: &kube::Client,
    req: Request<Vec<u8>>,
) -> (StatusCode, axum::body::Bytes, Duration) {
    let t = Instant::now();
    let resp = c.send(req.map(kube::client::Body::from)).await.unwrap();
    let headers = t.elapsed();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, body, headers)
}

fn get(uri: &str, accept: &str) -> Request<Vec<u8>> {
    Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header(header::ACCEPT, accept)
        .body(Vec::new())
        .unwrap()
}

/// The `resourceVersion` in a line of JSON (the first one: an object has one, in its
/// metadata), without parsing the line.
fn resource_version(line: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"resourceVersion\":\"";
    let at = line.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let end = line[at..].iter().position(|&b| b == b'"')? + at;
    std::str::from_utf8(&line[at..end]).ok()?.parse().ok()
}

/// CPU time (user + system) a process has used so far, in seconds, from `/proc` (Linux;
/// 0 elsewhere): this process (server and clients) or, with a pid, etcd.
fn cpu_secs(pid: Option<u32>) -> f64 {
    let path = pid.map_or("/proc/self/stat".to_string(), |p| format!("/proc/{p}/stat"));
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // utime and stime: fields 14 and 15, the 12th and 13th after the command name.
    let after_name = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // In clock ticks, 100 a second on Linux.
    (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / 100.0
}

/// The CPU this process and etcd use during a phase, in cores (CPU seconds per second).
struct Cpu {
    etcd: Option<u32>,
    own: f64,
    other: f64,
    at: Instant,
}

impl Cpu {
    fn start(etcd: Option<u32>) -> Cpu {
        Cpu {
            etcd,
            own: cpu_secs(None),
            other: etcd.map_or(0.0, |p| cpu_secs(Some(p))),
            at: Instant::now(),
        }
    }

    /// (this process, etcd) since `start`.
    fn cores(&self) -> (f64, f64) {
        let secs = self.at.elapsed().as_secs_f64();
        let etcd = self.etcd.map_or(0.0, |p| cpu_secs(Some(p)) - self.other);
        ((cpu_secs(None) - self.own) / secs, etcd / secs)
    }
}

/// Timings of one kind of list, in ms.
struct Lists {
    p50: f64,
    max: f64,
    /// From the request until its response's headers arrived: the server builds the
    /// whole body before it answers, so this is its time to produce the list.
    headers_p50: f64,
    bytes: usize,
}

/// One store's figures.
struct Figures {
    creates_per_s: f64,
    create_p50: f64,
    create_p99: f64,
    json: Lists,
    table: Lists,
    typed: (f64, f64),
    watch_sent: (f64, f64, f64),
    watch_acked: (f64, f64),
    patch: (f64, f64),
    /// (this process, etcd) in cores during the creates, the lists and the watch writes.
    cpu: [(f64, f64); 3],
}

async fn run(name: &str, kubeconfig: &Path, etcd: Option<u32>, n: Sizes) -> Figures {
    let c = client(kubeconfig).await;

    // Creates: `clients` tasks, each creating its share of the pods.
    let cpu = Cpu::start(etcd);
    let start = Instant::now();
    let tasks: Vec<_> = (0..n.clients)
        .map(|k| {
            let c = c.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                for i in (k..n.pods).step_by(n.clients) {
                    let req = Request::builder()
                        .method(Method::POST)
                        .uri(PODS)
                        .header(header::CONTENT_TYPE, "application/json")
                        .header(header::ACCEPT, "application/json")
                        .body(pod(i))
                        .unwrap();
                    let t = Instant::now();
                    let (status, body) = raw(&c, req).await;
                    lat.push(t.elapsed());
                    assert_eq!(
                        status,
                        StatusCode::CREATED,
                        "{}",
                        String::from_utf8_lossy(&body)
                    );
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    let create_cpu = cpu.cores();
    lat.sort_unstable();
    let creates_per_s = n.pods as f64 / secs;
    println!(
        "{name}: {} pod creates from {} clients in {secs:.2} s: {creates_per_s:.0} creates/s (request latency p50 {:.1} ms, p99 {:.1} ms)",
        n.pods,
        n.clients,
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );

    // Lists of every pod: raw JSON, raw Table, typed kube-rs.
    let cpu = Cpu::start(etcd);
    let timed_list = |accept: &'static str| {
        let c = c.clone();
        async move {
            let mut times = Vec::new();
            let mut firsts = Vec::new();
            let mut bytes = 0;
            for k in 0..n.lists {
                let t = Instant::now();
                let (status, body, headers) = raw_timed(&c, get(PODS, accept)).await;
                times.push(t.elapsed());
                firsts.push(headers);
                assert_eq!(status, StatusCode::OK);
                bytes = body.len();
                if k == 0 {
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let rows = if accept == TABLE { "rows" } else { "items" };
                    assert_eq!(v[rows].as_array().map(Vec::len), Some(n.pods));
                }
            }
            times.sort_unstable();
            firsts.sort_unstable();
            Lists {
                p50: pct(&times, 0.5),
                max: pct(&times, 1.0),
                headers_p50: pct(&firsts, 0.5),
                bytes,
            }
        }
    };
    let json = timed_list("application/json").await;
    let table = timed_list(TABLE).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let mut times = Vec::new();
    for _ in 0..n.lists {
        let t = Instant::now();
        let list = pods.list(&ListParams::default()).await.unwrap();
        times.push(t.elapsed());
        assert_eq!(list.items.len(), n.pods);
    }
    times.sort_unstable();
    let typed = (pct(&times, 0.5), pct(&times, 1.0));
    let list_cpu = cpu.cores();
    for (what, l) in [("JSON", &json), ("Table", &table)] {
        println!(
            "{name}: list of {} pods as {what} ({:.1} MB), raw: p50 {:.1} ms, max {:.1} ms (headers received after p50 {:.1} ms)",
            n.pods,
            l.bytes as f64 / 1e6,
            l.p50,
            l.max,
            l.headers_p50
        );
    }
    println!(
        "{name}: list of {} pods through kube-rs Api<Pod>::list: p50 {:.1} ms, max {:.1} ms",
        n.pods, typed.0, typed.1
    );

    // Watch fan-out.
    let (_, body) = raw(&c, get(&format!("{PODS}?limit=1"), "application/json")).await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let from = v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut watchers = Vec::new();
    for _ in 0..n.watchers {
        let c = c.clone();
        let uri = format!("{PODS}?watch=true&resourceVersion={from}&timeoutSeconds=600");
        // The response's headers come back once the store watch is registered.
        let resp = c
            .send(get(&uri, "application/json").map(kube::client::Body::from))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let writes = n.writes;
        watchers.push(tokio::spawn(async move {
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            let mut got: Vec<(u64, Instant)> = Vec::with_capacity(writes);
            while got.len() < writes {
                let Some(frame) = body.frame().await else {
                    break;
                };
                let at = Instant::now();
                let Ok(data) = frame.unwrap().into_data() else {
                    continue;
                };
                buf.extend_from_slice(&data);
                while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    got.push((resource_version(&line).expect("an event"), at));
                }
            }
            got
        }));
    }
    let cpu = Cpu::start(etcd);
    let mut sent: HashMap<u64, (Instant, Instant)> = HashMap::new();
    let mut patch_lat = Vec::new();
    let mut ticker = tokio::time::interval(n.pace);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for i in 0..n.writes {
        ticker.tick().await;
        let req = Request::builder()
            .method(Method::PATCH)
            .uri(format!("{PODS}/pod-{i:06}"))
            .header(header::CONTENT_TYPE, "application/merge-patch+json")
            .header(header::ACCEPT, "application/json")
            .body(format!(r#"{{"metadata":{{"labels":{{"seq":"{i}"}}}}}}"#).into_bytes())
            .unwrap();
        let t = Instant::now();
        let (status, body) = raw(&c, req).await;
        let acked = Instant::now();
        assert_eq!(status, StatusCode::OK);
        patch_lat.push(acked - t);
        sent.insert(resource_version(&body).unwrap(), (t, acked));
    }
    let watch_cpu = cpu.cores();
    let mut from_sent = Vec::new();
    let mut from_acked = Vec::new();
    for w in watchers {
        let got = tokio::time::timeout(Duration::from_secs(30), w)
            .await
            .expect("every watcher sees every write")
            .unwrap();
        assert_eq!(got.len(), n.writes, "every watcher sees every write");
        for (rv, at) in got {
            let (t, acked) = sent[&rv];
            from_sent.push(at - t);
            from_acked.push(if at >= acked {
                (at - acked).as_secs_f64()
            } else {
                -(acked - at).as_secs_f64()
            });
        }
    }
    from_sent.sort_unstable();
    from_acked.sort_unstable_by(f64::total_cmp);
    patch_lat.sort_unstable();
    let watch_sent = (
        pct(&from_sent, 0.5),
        pct(&from_sent, 0.99),
        pct(&from_sent, 1.0),
    );
    let watch_acked = (pct_signed(&from_acked, 0.5), pct_signed(&from_acked, 0.99));
    let patch = (pct(&patch_lat, 0.5), pct(&patch_lat, 0.99));
    println!(
        "{name}: {} patches (one every {} ms) to {} watchers: delivery from just before sending p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; from the acknowledgement p50 {:.2} ms, p99 {:.2} ms (patch latency p50 {:.2} ms, p99 {:.2} ms)",
        n.writes,
        n.pace.as_millis(),
        n.watchers,
        watch_sent.0,
        watch_sent.1,
        watch_sent.2,
        watch_acked.0,
        watch_acked.1,
        patch.0,
        patch.1
    );
    Figures {
        cpu: [create_cpu, list_cpu, watch_cpu],
        creates_per_s,
        create_p50: pct(&lat, 0.5),
        create_p99: pct(&lat, 0.99),
        json,
        table,
        typed,
        watch_sent,
        watch_acked,
        patch,
    }
}

/// Starts a server on `store`, runs the load from a client runtime of its own, stops it.
fn measure(name: &str, dir: PathBuf, store: StoreChoice, etcd: Option<u32>, n: Sizes) -> Figures {
    let server = Server::start(dir, store);
    let clients = tokio::runtime::Builder::new_multi_thread()
        .thread_name("api-client")
        .enable_all()
        .build()
        .unwrap();
    let figures = clients.block_on(run(name, &server.kubeconfig, etcd, n));
    // Closes the clients' connections (watches included) before the server stops.
    clients.shutdown_timeout(Duration::from_secs(2));
    drop(server);
    figures
}

fn list_cell(l: &Lists) -> String {
    format!(
        "p50 {:.1} ms, max {:.1} ms ({:.1} MB; headers after p50 {:.1} ms)",
        l.p50,
        l.max,
        l.bytes as f64 / 1e6,
        l.headers_p50
    )
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = Sizes {
        pods: env("API_PODS", if full { 10_000 } else { 200 }),
        clients: env("API_CLIENTS", if full { 32 } else { 8 }),
        watchers: env("API_WATCHERS", if full { 50 } else { 5 }),
        writes: env("API_WRITES", if full { 200 } else { 20 }),
        lists: env("API_LISTS", if full { 20 } else { 2 }),
        pace: Duration::from_millis(5),
    };
    assert!(n.writes <= n.pods, "each patch is on a pod of its own");
    let tmp = std::env::temp_dir();
    let pid = std::process::id();
    // `API_STORES=embedded` or `=etcd` runs one of them.
    let stores = std::env::var("API_STORES").unwrap_or_else(|_| "embedded,etcd".into());
    let mut results = Vec::new();
    if stores.split(',').any(|s| s == "embedded") {
        let dir = tmp.join(format!("plimsoll-api-bench-embedded-{pid}"));
        results.push((
            "embedded",
            measure("embedded", dir, StoreChoice::Embedded, None, n),
        ));
    }
    if stores.split(',').any(|s| s == "etcd") {
        match Etcd::start(tmp.join(format!("plimsoll-api-bench-etcd-{pid}"))) {
            Some(etcd) => {
                let dir = tmp.join(format!("plimsoll-api-bench-etcd-server-{pid}"));
                let store = StoreChoice::Etcd(vec![etcd.client.clone()]);
                results.push((
                    "etcd",
                    measure("etcd", dir, store, Some(etcd.child.id()), n),
                ));
            }
            None => println!(
                "etcd: no `etcd` binary (Debian's etcd-server; `make deps` installs it): skipped"
            ),
        }
    }

    println!();
    print!("| measure |");
    for (name, _) in &results {
        print!(" {name} |");
    }
    println!();
    println!("|---|{}", "---|".repeat(results.len()));
    let row = |label: String, cell: &dyn Fn(&Figures) -> String| {
        print!("| {label} |");
        for (_, f) in &results {
            print!(" {} |", cell(f));
        }
        println!();
    };
    row(
        format!("{} pod creates from {} clients", n.pods, n.clients),
        &|f| {
            format!(
                "{:.0} creates/s (p50 {:.1} ms, p99 {:.1} ms)",
                f.creates_per_s, f.create_p50, f.create_p99
            )
        },
    );
    row(format!("list of {} pods, JSON (raw)", n.pods), &|f| {
        list_cell(&f.json)
    });
    row(format!("list of {} pods, Table (raw)", n.pods), &|f| {
        list_cell(&f.table)
    });
    row(
        format!("list of {} pods, kube-rs `Api<Pod>::list`", n.pods),
        &|f| format!("p50 {:.1} ms, max {:.1} ms", f.typed.0, f.typed.1),
    );
    row(
        format!(
            "{} patches to {} watchers, sent → received",
            n.writes, n.watchers
        ),
        &|f| {
            format!(
                "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                f.watch_sent.0, f.watch_sent.1, f.watch_sent.2
            )
        },
    );
    row("the same, acknowledged → received".into(), &|f| {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms",
            f.watch_acked.0, f.watch_acked.1
        )
    });
    row("patch latency (while watched)".into(), &|f| {
        format!("p50 {:.2} ms, p99 {:.2} ms", f.patch.0, f.patch.1)
    });
    row(
        "CPU used, in cores (this process + etcd): creates; lists; watch".into(),
        &|f| {
            let c = |(own, etcd): (f64, f64)| {
                if etcd > 0.0 {
                    format!("{own:.2} + {etcd:.2}")
                } else {
                    format!("{own:.2}")
                }
            };
            format!("{}; {}; {}", c(f.cpu[0]), c(f.cpu[1]), c(f.cpu[2]))
        },
    );
}
