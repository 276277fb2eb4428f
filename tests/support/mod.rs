//! What the integration tests share: temporary directories and a real etcd server.
#![allow(dead_code)]

use std::path::PathBuf;

/// A loopback port free right now (the OS's choice).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh store file in a directory of its own, removed when the guard drops.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("plimsoll-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn file(&self) -> PathBuf {
        self.0.join("store.redb")
    }
}

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A real etcd server on loopback ports of its own, with its own data directory; killed
/// (by its pid) and its directory removed when dropped.
#[cfg(feature = "etcd")]
pub struct Etcd {
    child: std::process::Child,
    dir: TempDir,
    pub client: String,
    peer: String,
}

#[cfg(feature = "etcd")]
impl Etcd {
    pub fn start(name: &str) -> Etcd {
        let dir = TempDir::new(name);
        let client = format!("http://127.0.0.1:{}", free_port());
        let peer = format!("http://127.0.0.1:{}", free_port());
        let child = Self::spawn(&dir, &client, &peer);
        let e = Etcd {
            child,
            dir,
            client,
            peer,
        };
        e.wait_ready();
        e
    }

    fn spawn(dir: &TempDir, client: &str, peer: &str) -> std::process::Child {
        std::process::Command::new("etcd")
            .args([
                "--name",
                "plimsoll-test",
                "--data-dir",
                dir.0.join("etcd").to_str().unwrap(),
                "--listen-client-urls",
                client,
                "--advertise-client-urls",
                client,
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
                "--initial-cluster",
                &format!("plimsoll-test={peer}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("etcd (Debian's etcd-server; `make deps` installs it)")
    }

    fn wait_ready(&self) {
        for _ in 0..100 {
            if let Ok(s) = EtcdStore::connect(std::slice::from_ref(&self.client)) {
                if s.revision().is_ok() {
                    return;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("etcd did not start on {}", self.client);
    }

    pub fn store(&self) -> EtcdStore {
        EtcdStore::connect(std::slice::from_ref(&self.client)).unwrap()
    }

    /// SIGKILL, then a restart on the same data and ports.
    pub fn kill_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = Self::spawn(&self.dir, &self.client, &self.peer);
        self.wait_ready();
    }
}

#[cfg(feature = "etcd")]
impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(feature = "etcd")]
use plimsoll::server::store::{EtcdStore, Store};
