//! A test cluster on this machine: `plimsoll server` (API server, controllers,
//! scheduler) with a tokens file holding one node identity per agent, a busybox image
//! (imported into the process runtime's store with `plimsoll image import`, or made with
//! `docker import`), and one `plimsoll agent` process per node; the real `kubectl`.
//!
//! Include with `#[path = "support/images.rs"] mod images;`, `#[path =
//! "support/cluster.rs"] mod cluster;` and `mod support;` at the test crate's root.
//! Dropping a [`Cluster`] deletes its workloads, kills its agents and server by pid,
//! kills every container left (`plimsoll agent cleanup`, `docker rm -f` by label) and
//! removes its directories and images.
#![allow(dead_code)]

#[path = "hosts.rs"]
pub mod hosts;

use crate::images;
use crate::support::{free_port, TempDir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_plimsoll");

/// Node lease grace and eviction timeout of the test control plane, in seconds.
pub const NODE_GRACE: u64 = 4;
pub const EVICTION_TIMEOUT: u64 = 2;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Runtime {
    Process,
    Docker,
}

/// A server and its agents.
pub struct Cluster {
    pub dir: TempDir,
    pub port: u16,
    pub server: Option<Child>,
    pub agents: BTreeMap<String, Child>,
    pub nodes: Vec<String>,
    pub runtime: Runtime,
    /// The image the test pods run.
    pub image: String,
    _docker_image: Option<images::DockerImage>,
    /// Extra arguments of `plimsoll server`.
    pub server_args: Vec<String>,
    /// The test network when every agent runs as a host of its own
    /// ([`Cluster::start_on_hosts`]); `None`: all on this machine's loopback.
    pub net: Option<hosts::TestNet>,
    /// Extra arguments of every `plimsoll agent`.
    pub agent_args: Vec<String>,
}

impl Cluster {
    /// Starts a server and one agent per node on `runtime`, and waits until every node
    /// is Ready. The scheduler spreads (`--policy kube-default`): the default, best-fit, packs, and
    /// the tests want pods on every node.
    pub fn start(name: &str, runtime: Runtime, nodes: &[&str]) -> Cluster {
        Cluster::start_with(name, runtime, nodes, &["--policy", "kube-default"])
    }

    /// [`Cluster::start`] with extra `plimsoll server` arguments.
    pub fn start_with(
        name: &str,
        runtime: Runtime,
        nodes: &[&str],
        server_args: &[&str],
    ) -> Cluster {
        Cluster::build(name, runtime, nodes, server_args, &[], None)
    }

    /// A cluster whose agents each run as a host of their own (a network namespace on
    /// a test network, see [`hosts`]), with a pod network (`--cluster-cidr` from
    /// [`hosts::TestNet::cluster_cidr`], routed from the test machine); the server
    /// listens on the test network's first address. `agent_args` may set `--cpu`
    /// (default 2).
    pub fn start_on_hosts(
        name: &str,
        nodes: &[&str],
        server_args: &[&str],
        agent_args: &[&str],
    ) -> Cluster {
        let mut net = hosts::TestNet::new();
        for n in nodes {
            net.add_host(n);
        }
        let cidr = net.cluster_cidr();
        let mut args = vec!["--policy", "kube-default", "--cluster-cidr", &cidr];
        args.extend_from_slice(server_args);
        let c = Cluster::build(name, Runtime::Process, nodes, &args, agent_args, Some(net));
        c.route_pods();
        c
    }

    /// Routes every node's pod CIDR through its host from the test machine.
    pub fn route_pods(&self) {
        let net = self.net.as_ref().expect("a cluster on hosts");
        let routes = self.eventually(30, "every node's podCIDR", || {
            let nodes = self.json(&["get", "nodes"]);
            let routes: Vec<(String, String)> = nodes["items"]
                .as_array()?
                .iter()
                .filter_map(|n| {
                    let name = n["metadata"]["name"].as_str()?;
                    let cidr = n["spec"]["podCIDR"].as_str()?;
                    Some((cidr.to_string(), net.host(name).ip.clone()))
                })
                .collect();
            (routes.len() == self.nodes.len()).then_some(routes)
        });
        for (cidr, via) in routes {
            net.route(&cidr, &via);
        }
    }

    fn build(
        name: &str,
        runtime: Runtime,
        nodes: &[&str],
        server_args: &[&str],
        agent_args: &[&str],
        net: Option<hosts::TestNet>,
    ) -> Cluster {
        let dir = TempDir::new(&format!("agent-{name}"));
        let tokens: String = nodes
            .iter()
            .map(|n| {
                format!(
                    "{n}-token-{},system:node:{n},{n},\"system:nodes\"\n",
                    std::process::id()
                )
            })
            .collect();
        std::fs::write(dir.join("tokens.csv"), tokens).unwrap();
        let (image, docker_image) = match runtime {
            Runtime::Process => {
                // Through the import path: an OCI archive made here, imported with the CLI.
                let archive = dir.join("busybox-oci.tar");
                images::busybox_oci_archive(
                    &archive,
                    "busybox:1.36",
                    &images::ImageSpec::cmd(&["sh"]),
                );
                let out = Command::new(BIN)
                    .args(["image", "import"])
                    .arg(&archive)
                    .args(["--name", "busybox:1.36", "--image-dir"])
                    .arg(dir.join("images"))
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "image import: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                ("busybox:1.36".to_string(), None)
            }
            Runtime::Docker => {
                let tag = format!("plimsoll-agent-test-{name}:{}", std::process::id());
                let img = images::docker_import_busybox(&tag);
                (tag, Some(img))
            }
        };
        let mut c = Cluster {
            dir,
            port: free_port(),
            server: None,
            agents: BTreeMap::new(),
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            runtime,
            image,
            _docker_image: docker_image,
            server_args: server_args.iter().map(|s| s.to_string()).collect(),
            net,
            agent_args: agent_args.iter().map(|s| s.to_string()).collect(),
        };
        c.start_server();
        for n in nodes {
            c.start_agent(n);
        }
        c.eventually(60, "every node Ready", || {
            let nodes = c.json(&["get", "nodes"]);
            let ready = nodes["items"]
                .as_array()?
                .iter()
                .filter(|n| {
                    n["status"]["conditions"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
                })
                .count();
            (ready == c.nodes.len()).then_some(())
        });
        c
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("data/admin.kubeconfig")
    }

    pub fn start_server(&mut self) {
        let child = Command::new(BIN)
            .args(["server", "--data-dir"])
            .arg(self.dir.join("data"))
            .args([
                "--listen",
                &format!("{}:{}", self.server_ip(), self.port),
                "--tokens",
            ])
            .arg(self.dir.join("tokens.csv"))
            .args([
                "--node-grace",
                &NODE_GRACE.to_string(),
                "--eviction-timeout",
                &EVICTION_TIMEOUT.to_string(),
                "--batch-window",
                "50",
            ])
            .args(&self.server_args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("server.log")).unwrap())
            .spawn()
            .expect("starting plimsoll server");
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.kubeconfig().exists()
                && self.kubectl(&["get", "--raw", "/readyz"]).status.success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "the server did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The address the server listens on.
    pub fn server_ip(&self) -> String {
        self.net
            .as_ref()
            .map(|n| n.gateway())
            .unwrap_or_else(|| "127.0.0.1".into())
    }

    /// The host of node `node` (clusters on hosts only).
    pub fn host(&self, node: &str) -> hosts::Host {
        self.net
            .as_ref()
            .expect("a cluster on hosts")
            .host(node)
            .clone()
    }

    /// A command running `BIN` where node `node`'s agent runs.
    fn node_command(&self, node: &str) -> Command {
        match &self.net {
            Some(net) => net.host(node).command(BIN),
            None => Command::new(BIN),
        }
    }

    pub fn kill_server(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
    }

    /// The node's kubeconfig: the admin one with the node's token.
    pub fn node_kubeconfig(&self, node: &str) -> PathBuf {
        let path = self.dir.join(format!("{node}.kubeconfig"));
        let admin = std::fs::read_to_string(self.kubeconfig()).unwrap();
        let token = format!("{node}-token-{}", std::process::id());
        let text: String = admin
            .lines()
            .map(|l| match l.find("token:") {
                Some(i) => format!("{}token: {token}\n", &l[..i]),
                None => format!("{l}\n"),
            })
            .collect();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn state_dir(&self, node: &str) -> PathBuf {
        self.dir.join("nodes").join(node)
    }

    pub fn start_agent(&mut self, node: &str) {
        let kubeconfig = self.node_kubeconfig(node);
        let runtime = match self.runtime {
            Runtime::Process => "process",
            Runtime::Docker => "docker",
        };
        let (listen, address) = match &self.net {
            Some(net) => {
                let ip = net.host(node).ip.clone();
                (format!("{ip}:10250"), ip)
            }
            None => ("127.0.0.1:0".to_string(), "127.0.0.1".to_string()),
        };
        let child = self
            .node_command(node)
            .args(["-v", "agent", "--kubeconfig"])
            .arg(&kubeconfig)
            .args(["--node-name", node, "--runtime", runtime, "--state-dir"])
            .arg(self.state_dir(node))
            .arg("--image-dir")
            .arg(self.dir.join("images"))
            .args(if self.agent_args.iter().any(|a| a == "--cpu") {
                &[][..]
            } else {
                &["--cpu", "2"][..]
            })
            .args([
                "--memory",
                "2Gi",
                "--listen",
                &listen,
                "--address",
                &address,
                "--usage-interval",
                "2",
                "--lease-interval",
                "1",
            ])
            .args(&self.agent_args)
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join(format!("agent-{node}.log")))
                    .unwrap(),
            )
            .spawn()
            .expect("starting plimsoll agent");
        self.agents.insert(node.to_string(), child);
    }

    /// `kill -9` of an agent (its containers go on running).
    pub fn kill_agent(&mut self, node: &str) {
        if let Some(mut a) = self.agents.remove(node) {
            let _ = a.kill();
            let _ = a.wait();
        }
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .env("KUBECONFIG", self.kubeconfig())
            .env_remove("KUBERNETES_SERVICE_HOST")
            .args(["--request-timeout", "20s"])
            .args(args)
            .output()
            .expect("running kubectl")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let out = self.kubectl(&a);
        if !out.status.success() {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    pub fn apply(&self, yaml: &str) {
        let p = self.dir.join(format!("m{}.yaml", free_port()));
        std::fs::write(&p, yaml).unwrap();
        self.ok(&["apply", "-f", p.to_str().unwrap()]);
    }

    pub fn pods(&self, selector: &str) -> Vec<Value> {
        self.json(&["get", "pods", "-l", selector])["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls `f` until it returns `Some`, or panics with `what` (and the agents' logs'
    /// tails) after `secs`.
    pub fn eventually<T>(&self, secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() >= deadline {
                let pods = self.ok(&["get", "pods", "-o", "wide"]);
                let mut logs = String::new();
                for n in &self.nodes {
                    let text = std::fs::read_to_string(self.dir.join(format!("agent-{n}.log")))
                        .unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(15).collect();
                    logs.push_str(&format!(
                        "--- agent {n}:\n{}\n",
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    ));
                }
                panic!("timed out after {secs} s waiting for {what}\n{pods}\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.server.is_some() {
            let _ = self.kubectl(&[
                "delete",
                "deployments,jobs,pods",
                "--all",
                "--grace-period=1",
                "--wait=false",
            ]);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && !self.pods("").is_empty() {
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        let nodes: Vec<String> = self.agents.keys().cloned().collect();
        for n in nodes {
            self.kill_agent(&n);
        }
        for n in &self.nodes {
            match self.runtime {
                Runtime::Process => {
                    let _ = self
                        .node_command(n)
                        .args(["agent", "cleanup", "--node-name", n, "--state-dir"])
                        .arg(self.state_dir(n))
                        .arg("--image-dir")
                        .arg(self.dir.join("images"))
                        .output();
                }
                Runtime::Docker => {
                    if let Ok(out) = Command::new("docker")
                        .args([
                            "ps",
                            "-aq",
                            "--filter",
                            &format!("label=io.plimsoll.node={n}"),
                        ])
                        .output()
                    {
                        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                            .split_whitespace()
                            .map(str::to_string)
                            .collect();
                        if !ids.is_empty() {
                            let _ = Command::new("docker")
                                .args(["rm", "-f"])
                                .args(&ids)
                                .output();
                        }
                    }
                    // The node's pod network, when the server gave it a pod CIDR.
                    let _ = Command::new("docker")
                        .args(["network", "rm", &format!("plimsoll-{n}")])
                        .output();
                    // The pod sandboxes' image the agent made (kept while another test
                    // uses it: no force).
                    let _ = Command::new("docker")
                        .args(["rmi", "plimsoll-pause:1"])
                        .output();
                }
            }
        }
        self.kill_server();
    }
}

pub fn is_ready(p: &Value) -> bool {
    p["metadata"]["deletionTimestamp"].is_null()
        && p["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

pub fn node_of(p: &Value) -> String {
    p["spec"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn name_of(p: &Value) -> String {
    p["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn uid_of(p: &Value) -> String {
    p["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A Deployment of `replicas` CPU burners (each capped at 100m by its limit) that print
/// a ConfigMap value from the environment and from a file, and what `ps` shows inside.
pub fn burner(image: &str, replicas: u32, extra_env: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata: {{name: burner-config}}
data: {{message: hello-from-configmap}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: burner}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: burner}}}}
  strategy: {{rollingUpdate: {{maxSurge: 1, maxUnavailable: 1}}}}
  template:
    metadata: {{labels: {{app: burner}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: burn
        image: {image}
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "echo env=$MESSAGE; echo file=$(cat /etc/burner/message); ps -o pid,args; while :; do :; done"]
        env:
        - name: MESSAGE
          valueFrom: {{configMapKeyRef: {{name: burner-config, key: message}}}}
{extra_env}        resources:
          requests: {{cpu: 100m, memory: 16Mi}}
          limits: {{cpu: 100m, memory: 32Mi}}
        volumeMounts: [{{name: config, mountPath: /etc/burner}}]
      volumes: [{{name: config, configMap: {{name: burner-config}}}}]
"#
    )
}

/// Waits until exactly `n` burner pods exist, all Ready; answers them.
pub fn burners_ready(c: &Cluster, n: usize, secs: u64) -> Vec<Value> {
    c.eventually(secs, &format!("{n} ready burner pods"), || {
        let pods = c.pods("app=burner");
        (pods.len() == n && pods.iter().all(is_ready)).then_some(pods)
    })
}

/// Host pids of the processes in pod `uid`'s cgroups (the process runtime puts each
/// container under `plimsoll/<node>/pod<uid>/`).
pub fn pod_pids(uid: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let needle = format!("pod{uid}");
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cg) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
            if cg.contains(&needle) {
                pids.push(pid);
            }
        }
    }
    pids.sort();
    pids
}

pub fn ns_of(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// The memory limit of `pid`'s cgroup (v1 `memory.limit_in_bytes`, v2 `memory.max`).
pub fn memory_limit_of(pid: u32) -> Option<u64> {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in cg.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if controllers.split(',').any(|c| c == "memory") {
            let f = Path::new("/sys/fs/cgroup/memory")
                .join(path.trim_start_matches('/'))
                .join("memory.limit_in_bytes");
            return std::fs::read_to_string(f).ok()?.trim().parse().ok();
        }
        if controllers.is_empty() {
            let f = Path::new("/sys/fs/cgroup")
                .join(path.trim_start_matches('/'))
                .join("memory.max");
            if let Ok(v) = std::fs::read_to_string(f) {
                return v.trim().parse().ok();
            }
        }
    }
    None
}

/// `kubectl top pods` rows: pod name → CPU in millicores.
pub fn top_pods(c: &Cluster) -> BTreeMap<String, u64> {
    let out = c.kubectl(&["top", "pods", "--no-headers"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?.to_string();
            let cpu = f.next()?.trim_end_matches('m').parse().ok()?;
            Some((name, cpu))
        })
        .collect()
}
