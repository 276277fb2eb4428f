//! The orchestrator's scheduling throughput, end to end: `plimsoll server` (its own
//! process, the scheduling loop inside, controllers off) with M nodes registered through
//! the API — a heartbeat task renews every node's Lease every 10 s, as agents would — and
//! N pods created through the API by 64 concurrent clients; measured from the first
//! create to the moment a watch has seen every pod bound. Per policy and per store (the
//! embedded store and a real etcd).
//!
//! `cargo bench --bench schedule` runs the full size (1,000 nodes, 10,000 pods);
//! without `--bench` (as `cargo test --benches` runs it) a small one. `SCHED_NODES`,
//! `SCHED_PODS`, `SCHED_POLICIES` (comma-separated) and `SCHED_STORES` (`embedded`,
//! `etcd`) override. Every process started is killed by its pid and every directory
//! removed.

mod stats;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::runtime::watcher::{watcher, Config, Event};
use serde_json::json;
#[cfg(feature = "etcd")]
use stats::Etcd;
use stats::{env, pct};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/support/kubelet.rs"]
mod kubelet;

struct Server {
    child: Child,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[derive(Debug, Default, Clone)]
struct Figures {
    create_secs: f64,
    all_bound_secs: f64,
    p50_ms: f64,
    p99_ms: f64,
    bound: usize,
}

async fn connect(kubeconfig: &std::path::Path) -> kube::Client {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if kubeconfig.exists() {
            if let Ok(c) = plimsoll::server::control::client_from_kubeconfig(kubeconfig).await {
                if c.apiserver_version().await.is_ok() {
                    return c;
                }
            }
        }
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run(policy: &str, store: &[String], nodes: usize, pods: usize) -> Figures {
    let dir = std::env::temp_dir().join(format!(
        "plimsoll-sched-bench-{}-{}",
        std::process::id(),
        free_port()
    ));
    let child = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(["server", "--data-dir"])
        .arg(&dir)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--policy", policy, "--no-controllers"])
        .args(store)
        .stdout(Stdio::null())
        // `SCHED_SERVER_LOG=FILE` keeps the server's log (appended).
        .stderr(match std::env::var("SCHED_SERVER_LOG") {
            Ok(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
            Err(_) => Stdio::null(),
        })
        .spawn()
        .expect("starting plimsoll server");
    let server = Server { child, dir };
    let client = connect(&server.dir.join("admin.kubeconfig")).await;
    // Nodes, registered concurrently, and their heartbeat.
    let names: Vec<String> = (0..nodes).map(|i| format!("node-{i:04}")).collect();
    futures::stream::iter(names.iter())
        .for_each_concurrent(32, |n| {
            let c = client.clone();
            async move { kubelet::register_node(&c, n, 8, 32, 110).await }
        })
        .await;
    let heartbeat = {
        let (c, names) = (client.clone(), names.clone());
        tokio::spawn(async move {
            loop {
                let start = Instant::now();
                futures::stream::iter(names.iter())
                    .for_each_concurrent(8, |n| {
                        let c = c.clone();
                        async move { kubelet::renew_lease(&c, n).await }
                    })
                    .await;
                tokio::time::sleep(Duration::from_secs(10).saturating_sub(start.elapsed())).await;
            }
        })
    };
    // A watch that notes when each pod is first seen bound.
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let watch = {
        let api = api.clone();
        tokio::spawn(async move {
            let mut s = watcher(api, Config::default()).boxed();
            while let Ok(Some(ev)) = s.try_next().await {
                let (Event::Apply(p) | Event::InitApply(p)) = ev else {
                    continue;
                };
                if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
                    let _ = tx.send((p.metadata.name.unwrap_or_default(), Instant::now()));
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t0 = Instant::now();
    let created: Vec<(String, Instant)> = futures::stream::iter(0..pods)
        .map(|i| {
            let api = api.clone();
            async move {
                let name = format!("p-{i:05}");
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": name},
                    "spec": {"containers": [{"name": "c", "image": "x",
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}
                }))
                .unwrap();
                let mut tries = 0;
                loop {
                    match api.create(&PostParams::default(), &pod).await {
                        Ok(_) => break,
                        Err(e) if tries < 5 => {
                            tries += 1;
                            eprintln!("create {name}: {e}; retrying");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => panic!("create {name}: {e}"),
                    }
                }
                (name, Instant::now())
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let create_secs = t0.elapsed().as_secs_f64();
    let created: HashMap<String, Instant> = created.into_iter().collect();
    let mut bound: HashMap<String, Instant> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while bound.len() < pods && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some((name, at))) => {
                bound.entry(name).or_insert(at);
            }
            Ok(None) => break,
            Err(_) => {}
        }
    }
    let all_bound_secs = bound
        .values()
        .max()
        .map_or(f64::NAN, |t| t.duration_since(t0).as_secs_f64());
    let mut lat: Vec<Duration> = bound
        .iter()
        .filter_map(|(n, b)| created.get(n).map(|c| b.saturating_duration_since(*c)))
        .collect();
    lat.sort();
    heartbeat.abort();
    watch.abort();
    Figures {
        create_secs,
        all_bound_secs,
        p50_ms: if lat.is_empty() {
            f64::NAN
        } else {
            pct(&lat, 0.5)
        },
        p99_ms: if lat.is_empty() {
            f64::NAN
        } else {
            pct(&lat, 0.99)
        },
        bound: bound.len(),
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let nodes = env("SCHED_NODES", if full { 1000 } else { 50 });
    let pods = env("SCHED_PODS", if full { 10_000 } else { 500 });
    let policies =
        std::env::var("SCHED_POLICIES").unwrap_or_else(|_| "kube-default,best-fit,fgd,milp".into());
    let stores = std::env::var("SCHED_STORES").unwrap_or_else(|_| "embedded,etcd".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("{pods} pods created against {nodes} nodes; time until all are bound");
    println!();
    println!(
        "| store | policy | created in | all bound after | pods/s bound | create→bound p50 | p99 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for store in stores.split(',') {
        for policy in policies.split(',') {
            // Every run gets a fresh store: a new data directory, or a new etcd.
            #[cfg(feature = "etcd")]
            let etcd = match store {
                "etcd" => match Etcd::start(std::env::temp_dir().join(format!(
                    "plimsoll-sched-bench-etcd-{}-{policy}",
                    std::process::id()
                ))) {
                    Some(e) => Some(e),
                    None => {
                        println!("| etcd | {policy} | no `etcd` binary (make deps installs it): skipped |||||");
                        continue;
                    }
                },
                _ => None,
            };
            let args: Vec<String> = match store {
                "embedded" => Vec::new(),
                #[cfg(feature = "etcd")]
                "etcd" => vec![
                    "--store".into(),
                    "etcd".into(),
                    "--etcd-endpoints".into(),
                    etcd.as_ref().map(|e| e.client.clone()).unwrap_or_default(),
                ],
                other => panic!("unknown store {other}"),
            };
            let f = rt.block_on(run(policy, &args, nodes, pods));
            println!(
                "| {store} | {policy} | {:.2} s | {:.2} s | {:.0} | {:.0} ms | {:.0} ms |{}",
                f.create_secs,
                f.all_bound_secs,
                f.bound as f64 / f.all_bound_secs,
                f.p50_ms,
                f.p99_ms,
                if f.bound < pods {
                    format!(" only {} of {pods} bound", f.bound)
                } else {
                    String::new()
                }
            );
            assert!(
                f.bound == pods || full,
                "every pod is bound at the small size"
            );
        }
    }
}
