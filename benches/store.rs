//! The orchestrator's store under load (embedded redb; etcd joins when its client does):
//! pod creates per second from 32 concurrent clients (each write durable before it
//! returns; concurrent writes share a commit), the latency of listing 10,000 pods, and the
//! delivery latency of a write to 50 watchers.
//!
//! `cargo bench --bench store`; without `--bench` (as `cargo test --benches` runs it) it
//! does a tiny smoke run. `STORE_PODS`, `STORE_CLIENTS`, `STORE_WATCHERS` override.

#[cfg(feature = "etcd")]
mod stats;
use stats::{env, pct};

use plimsoll::server::store::EtcdStore;
use plimsoll::server::store::{EmbeddedStore, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A pod object of about the size kubectl creates (1.5 KB of JSON).
fn pod(i: usize) -> Vec<u8> {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"pod-{i:06}","namespace":"default","uid":"{i:08x}-0000-4000-8000-000000000000","labels":{{"app":"web","tier":"frontend"}}}},"spec":{{"containers":[{{"name":"c","image":"busybox:1.36","command":["sleep","3600"],"resources":{{"requests":{{"cpu":"100m","memory":"64Mi"}}}}}}]}},"status":{{"phase":"Pending"}},"pad":"{}"}}"#,
        "x".repeat(1200)
    )
    .into_bytes()
}

fn run(name: &str, s: Arc<dyn Store>, pods: usize, clients: usize, watchers: usize, full: bool) {
    // Creates: `clients` threads, each creating its share of the pods.
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                for i in (c..pods).step_by(clients) {
                    let t = Instant::now();
                    s.create(&format!("/registry/pods/default/pod-{i:06}"), &pod(i))
                        .unwrap();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let secs = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    println!(
        "{name}: {pods} pod creates from {clients} clients in {secs:.2} s: {:.0} creates/s (latency p50 {:.1} ms, p99 {:.1} ms)",
        pods as f64 / secs,
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );

    // Lists of every pod.
    let mut lists = Vec::new();
    for _ in 0..if full { 20 } else { 3 } {
        let t = Instant::now();
        let (items, _) = s.list("/registry/pods/").unwrap();
        lists.push(t.elapsed());
        assert_eq!(items.len(), pods);
    }
    lists.sort_unstable();
    println!(
        "{name}: list of {pods} pods: p50 {:.1} ms, max {:.1} ms",
        pct(&lists, 0.5),
        pct(&lists, 1.0)
    );

    // Watch fan-out: `watchers` watches on the pods prefix; each write's delivery time to
    // every watcher (from just before the write is submitted).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let from = s.revision().unwrap();
    let writes = if full { 200 } else { 20 };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    for _ in 0..watchers {
        let mut w = s.watch("/registry/pods/", from).unwrap();
        let tx = tx.clone();
        rt.spawn(async move {
            while let Some(e) = w.events.recv().await {
                let _ = tx.send((e.entry.mod_revision, Instant::now()));
            }
        });
    }
    drop(tx);
    let mut sent = std::collections::HashMap::new();
    for i in 0..writes {
        let t = Instant::now();
        let e = s
            .update(&format!("/registry/pods/default/pod-{i:06}"), &pod(i), None)
            .unwrap();
        sent.insert(e.mod_revision, t);
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut delivery = Vec::new();
    rt.block_on(async {
        while delivery.len() < writes * watchers {
            match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                Ok(Some((rev, at))) => delivery.push(at - sent[&rev]),
                _ => break,
            }
        }
    });
    assert_eq!(
        delivery.len(),
        writes * watchers,
        "every watcher saw every write"
    );
    delivery.sort_unstable();
    println!(
        "{name}: {writes} writes to {watchers} watchers: delivery (write submitted to event received) p50 {:.2} ms, p99 {:.2} ms",
        pct(&delivery, 0.5),
        pct(&delivery, 0.99)
    );
    rt.shutdown_background();
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let pods = env("STORE_PODS", if full { 10_000 } else { 200 });
    let clients = env("STORE_CLIENTS", 32);
    let watchers = env("STORE_WATCHERS", 50);
    let dir = std::env::temp_dir().join(format!("plimsoll-store-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let s = Arc::new(EmbeddedStore::open(&dir.join("store.redb")).unwrap());
    run("embedded", s, pods, clients, watchers, full);
    #[cfg(feature = "etcd")]
    {
        // A real etcd on loopback ports of its own, killed and removed afterwards.
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let client = format!("http://127.0.0.1:{}", port());
        let peer = format!("http://127.0.0.1:{}", port());
        /// Kills etcd (by its pid) even if the run panics.
        struct Kill(std::process::Child);
        impl Drop for Kill {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let _etcd = Kill(
            std::process::Command::new("etcd")
                .args([
                    "--name",
                    "bench",
                    "--data-dir",
                    dir.join("etcd").to_str().unwrap(),
                    "--listen-client-urls",
                    &client,
                    "--advertise-client-urls",
                    &client,
                    "--listen-peer-urls",
                    &peer,
                    "--initial-advertise-peer-urls",
                    &peer,
                    "--initial-cluster",
                    &format!("bench={peer}"),
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("etcd (Debian's etcd-server; `make deps` installs it)"),
        );
        let mut store = None;
        for _ in 0..100 {
            if let Ok(s) = EtcdStore::connect(std::slice::from_ref(&client)) {
                if s.revision().is_ok() {
                    store = Some(s);
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let s = Arc::new(store.expect("etcd started"));
        run("etcd", s, pods, clients, watchers, full);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
