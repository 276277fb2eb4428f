//! What the orchestrator benchmarks share: sizes from the environment, quantiles and a
//! real etcd.
#![allow(dead_code)]

use std::time::Duration;

/// A size from the environment variable `name`, or `default`.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile of sorted durations, in ms.
pub fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

/// A real etcd on loopback ports of its own, killed (by its pid) and its directory removed
/// when dropped.
#[cfg(feature = "etcd")]
pub struct Etcd {
    /// The etcd process.
    pub child: std::process::Child,
    dir: std::path::PathBuf,
    /// Its client URL.
    pub client: String,
}

#[cfg(feature = "etcd")]
impl Etcd {
    /// `None` if there is no `etcd` to run.
    pub fn start(dir: std::path::PathBuf) -> Option<Etcd> {
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let client = format!("http://127.0.0.1:{}", port());
        let peer = format!("http://127.0.0.1:{}", port());
        let child = std::process::Command::new("etcd")
            .args(["--name", "bench", "--data-dir"])
            .arg(dir.join("etcd"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("bench={peer}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let etcd = Etcd { child, dir, client };
        // Ready when a client connects and reads the revision.
        use plimsoll::server::store::{EtcdStore, Store};
        for _ in 0..100 {
            if let Ok(s) = EtcdStore::connect(std::slice::from_ref(&etcd.client)) {
                if s.revision().is_ok() {
                    return Some(etcd);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("etcd did not start on {}", etcd.client);
    }
}

#[cfg(feature = "etcd")]
impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
