//! The control plane end to end, through the real `kubectl`: `plimsoll server` runs the
//! API server, the controllers and Plimsoll's scheduling loop in one process (on the
//! embedded store or on a real etcd); nodes are registered through the API and their
//! kubelets simulated ([`kubelet`]: leases, and pods turned Running and Ready, or
//! terminated with the exit code their command asks for). Every test stops what it
//! starts by pid and removes its directories.

#[path = "support/kubelet.rs"]
mod kubelet;
mod support;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kubelet::{register_node, register_node_with, Kubelets};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{free_port, TempDir};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Store {
    Embedded,
    Etcd,
}

/// `plimsoll server` processes (one, or several on one etcd), a kube-rs client and the
/// simulated kubelets.
struct Cluster {
    servers: Vec<(Child, u16)>,
    dir: TempDir,
    rt: tokio::runtime::Runtime,
    client: kube::Client,
    kubelets: Option<Kubelets>,
    #[cfg(feature = "etcd")]
    _etcd: Option<support::Etcd>,
}

/// Short timings so that lease expiry, eviction and Job back-off happen within a test.
const FAST: &[&str] = &[
    "--node-grace",
    "3",
    "--eviction-timeout",
    "2",
    "--job-backoff",
    "0.2",
    "--batch-window",
    "50",
];

impl Cluster {
    fn start(name: &str, store: Store, servers: usize, extra: &[&str]) -> Cluster {
        let dir = TempDir::new(&format!("orch-{name}"));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        #[cfg(feature = "etcd")]
        let etcd =
            (store == Store::Etcd).then(|| support::Etcd::start(&format!("orch-{name}-etcd")));
        let mut args: Vec<String> = FAST.iter().map(|s| s.to_string()).collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        #[cfg(feature = "etcd")]
        if let Some(e) = &etcd {
            args.extend([
                "--store".into(),
                "etcd".into(),
                "--etcd-endpoints".into(),
                e.client.clone(),
            ]);
        }
        let mut procs = Vec::new();
        for i in 0..servers {
            let port = free_port();
            procs.push((spawn(&dir.join(format!("data{i}")), port, &args), port));
        }
        let kubeconfig = dir.join("data0/admin.kubeconfig");
        wait_ready(&kubeconfig);
        let client = rt.block_on(async {
            plimsoll::server::control::client_from_kubeconfig(&kubeconfig)
                .await
                .unwrap()
        });
        Cluster {
            servers: procs,
            dir,
            rt,
            client,
            kubelets: None,
            #[cfg(feature = "etcd")]
            _etcd: etcd,
        }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("data0/admin.kubeconfig")
    }

    /// Registers nodes (cores, GiB) and starts their kubelets.
    fn nodes(&mut self, nodes: &[(&str, u32, u32)]) {
        let names: Vec<&str> = nodes.iter().map(|n| n.0).collect();
        let client = self.client.clone();
        self.rt.block_on(async {
            for (n, cpu, mem) in nodes {
                register_node(&client, n, *cpu, *mem, 110).await;
            }
        });
        let _g = self.rt.enter();
        self.kubelets = Some(Kubelets::start(client, &names, true));
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .env("KUBECONFIG", self.kubeconfig())
            .env_remove("KUBERNETES_SERVICE_HOST")
            .args(args)
            .output()
            .expect("running kubectl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).expect("kubectl -o json prints JSON")
    }

    fn apply(&self, yaml: &str) {
        let p = self.dir.join(format!("m{}.yaml", free_port()));
        std::fs::write(&p, yaml).unwrap();
        self.ok(&["apply", "-f", p.to_str().unwrap()]);
    }

    fn pods(&self, selector: &str) -> Vec<Value> {
        self.json(&["get", "pods", "-l", selector])["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kubelets.take();
        for (c, _) in &mut self.servers {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(data: &Path, port: u16, args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(["server", "--data-dir"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting plimsoll server")
}

fn wait_ready(kubeconfig: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if kubeconfig.exists() {
            let out = Command::new("kubectl")
                .env("KUBECONFIG", kubeconfig)
                .args(["get", "--raw", "/readyz"])
                .output()
                .unwrap();
            if out.status.success() {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "plimsoll server did not become ready ({})",
        kubeconfig.display()
    );
}

/// Polls `f` until it returns `Some`, or panics with `what` after `secs`.
fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn is_ready(p: &Value) -> bool {
    p["metadata"]["deletionTimestamp"].is_null()
        && p["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn node_of(p: &Value) -> Option<&str> {
    p["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())
}

/// Waits until exactly `n` `app=web` pods exist, all ready and running `image` (terminating
/// old pods leave once their kubelet has stopped them).
fn all_ready_with(c: &Cluster, n: usize, image: &str) {
    eventually(60, &format!("{n} ready {image} pods"), || {
        let pods = c.pods("app=web");
        (pods.len() == n
            && pods
                .iter()
                .all(|p| is_ready(p) && p["spec"]["containers"][0]["image"] == image))
        .then_some(())
    });
}

/// Checks from the `Scheduled` events that no pod was bound twice; returns how many
/// pods were bound.
fn scheduled_once(c: &Cluster) -> usize {
    let events = c.json(&["get", "events", "--field-selector", "reason=Scheduled"]);
    let mut seen = std::collections::BTreeMap::new();
    for e in events["items"].as_array().unwrap() {
        *seen
            .entry(e["involvedObject"]["uid"].as_str().unwrap().to_string())
            .or_insert(0) += e["count"].as_i64().unwrap_or(1);
    }
    assert!(
        seen.values().all(|&n| n == 1),
        "a pod bound twice: {seen:?}"
    );
    seen.len()
}

fn deployment(image: &str, replicas: u32) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {{maxSurge: 1, maxUnavailable: 1}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: {image}
        resources: {{requests: {{cpu: 500m, memory: 256Mi}}}}
"#
    )
}

/// Ready `app=web` pods, and all of them, seen by a kube-rs list.
async fn ready_count(client: &kube::Client) -> (usize, usize) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let Ok(list) = pods.list(&ListParams::default().labels("app=web")).await else {
        return (usize::MAX, 0);
    };
    let ready = list
        .items
        .iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count();
    (ready, list.items.len())
}

/// The Deployment story: scale, roll out a new template with maxUnavailable respected at
/// every observed moment, roll back, then delete it and see its ReplicaSets and pods go.
fn deployment_story(c: &mut Cluster) {
    c.nodes(&[("n1", 4, 8), ("n2", 4, 8), ("n3", 4, 8)]);
    c.apply(&deployment("web:v1", 4));
    eventually(60, "4 ready pods", || {
        (c.pods("app=web").iter().filter(|p| is_ready(p)).count() == 4).then_some(())
    });
    assert!(c
        .ok(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .contains("successfully rolled out"));
    // Scale up with kubectl.
    c.ok(&["scale", "deployment/web", "--replicas=6"]);
    eventually(60, "6 ready pods", || {
        (c.pods("app=web").iter().filter(|p| is_ready(p)).count() == 6).then_some(())
    });
    // Roll out a new image, watching readiness all along: at least 6 - 1 ready.
    let stop = Arc::new(AtomicBool::new(false));
    let min_ready = Arc::new(AtomicUsize::new(usize::MAX));
    let samples = Arc::new(AtomicUsize::new(0));
    let monitor = {
        let (stop, min_ready, samples, client) = (
            stop.clone(),
            min_ready.clone(),
            samples.clone(),
            c.client.clone(),
        );
        c.rt.spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let (ready, _) = ready_count(&client).await;
                min_ready.fetch_min(ready, Ordering::SeqCst);
                samples.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    c.ok(&["set", "image", "deployment/web", "web=web:v2"]);
    let status = c.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    assert!(status.contains("successfully rolled out"), "{status}");
    stop.store(true, Ordering::SeqCst);
    c.rt.block_on(monitor).unwrap();
    assert!(samples.load(Ordering::SeqCst) > 10, "the monitor sampled");
    let min = min_ready.load(Ordering::SeqCst);
    assert!(
        min >= 5,
        "maxUnavailable 1 of 6: only {min} pods were ready at one moment"
    );
    all_ready_with(c, 6, "web:v2");
    let d = c.json(&["get", "deployment", "web"]);
    assert_eq!(
        d["status"]["observedGeneration"],
        d["metadata"]["generation"]
    );
    assert_eq!(d["status"]["updatedReplicas"], 6);
    assert_eq!(d["status"]["availableReplicas"], 6);
    // History and rollback.
    let history = c.ok(&["rollout", "history", "deployment/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    c.ok(&["rollout", "undo", "deployment/web"]);
    c.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    all_ready_with(c, 6, "web:v1");
    assert_eq!(
        c.json(&["get", "rs", "-l", "app=web"])["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Every pod was placed by the scheduler, each exactly once.
    assert!(
        scheduled_once(c) >= 10,
        "every pod was placed by the scheduler"
    );
    // Garbage collection: deleting the Deployment removes its ReplicaSets and pods.
    c.ok(&["delete", "deployment", "web"]);
    eventually(60, "ReplicaSets and pods collected", || {
        let rs = c.json(&["get", "rs", "-l", "app=web"])["items"]
            .as_array()
            .unwrap()
            .len();
        (rs == 0 && c.pods("app=web").is_empty()).then_some(())
    });
}

/// A Job whose command fails is retried `backoffLimit` times, then fails.
fn failing_job(c: &Cluster) {
    c.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: fails}
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: main, image: busybox, command: [sh, -c, "exit 1"]}
"#,
    );
    let job = eventually(60, "the Job to fail", || {
        let j = c.json(&["get", "job", "fails"]);
        let failed = j["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Failed" && c["status"] == "True")
        });
        failed.then_some(j)
    });
    let cond = job["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Failed")
        .unwrap()
        .clone();
    assert_eq!(cond["reason"], "BackoffLimitExceeded");
    assert_eq!(job["status"]["failed"], 3, "1 try + backoffLimit 2 retries");
    let describe = c.ok(&["describe", "job", "fails"]);
    assert!(describe.contains("BackoffLimitExceeded"), "{describe}");
}

/// A pod no node can take says why, as kube-scheduler would.
fn impossible_pod(c: &Cluster) {
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: huge}
spec:
  containers:
  - {name: c, image: x, resources: {requests: {cpu: "64"}}}
"#,
    );
    let describe = eventually(30, "the FailedScheduling event", || {
        let d = c.ok(&["describe", "pod", "huge"]);
        d.contains("FailedScheduling").then_some(d)
    });
    assert!(
        describe.contains("0/3 nodes are available: 3 Insufficient cpu."),
        "{describe}"
    );
    let p = c.json(&["get", "pod", "huge"]);
    let cond = p["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "PodScheduled")
        .unwrap()
        .clone();
    assert_eq!(cond["status"], "False");
    assert_eq!(cond["reason"], "Unschedulable");
    c.ok(&["delete", "pod", "huge"]);
    // A pod may name its policy; a policy that does not exist is said so, and a pod of
    // another scheduler is left alone.
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: by-fgd, annotations: {plimsoll.io/policy: fgd}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: by-nope, annotations: {plimsoll.io/policy: nope}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: not-ours}
spec: {schedulerName: volcano, containers: [{name: c, image: x}]}
"#,
    );
    eventually(30, "the fgd pod bound", || {
        node_of(&c.json(&["get", "pod", "by-fgd"])).map(|_| ())
    });
    let describe = eventually(30, "the unknown policy reported", || {
        let d = c.ok(&["describe", "pod", "by-nope"]);
        d.contains("FailedScheduling").then_some(d)
    });
    assert!(describe.contains("unknown policy \"nope\""), "{describe}");
    let p = c.json(&["get", "pod", "not-ours"]);
    assert!(
        node_of(&p).is_none() && p["status"]["conditions"].is_null(),
        "{p}"
    );
    c.ok(&["delete", "pod", "by-fgd", "by-nope", "not-ours"]);
}

/// A gang of 4 where only 3 fit stays pending as a whole; a fourth node lets it all in.
fn gang(c: &mut Cluster) {
    let mut yaml = String::from(
        "apiVersion: scheduling.x-k8s.io/v1alpha1\nkind: PodGroup\nmetadata: {name: train}\nspec: {minMember: 4}\n",
    );
    for i in 0..4 {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: worker-{i}\n  labels: {{app: train, scheduling.x-k8s.io/pod-group: train}}\nspec:\n  containers:\n  - {{name: c, image: x, resources: {{requests: {{cpu: 3500m}}}}}}\n"
        ));
    }
    c.apply(&yaml);
    let pods = eventually(30, "the gang to be judged", || {
        let pods = c.pods("app=train");
        (pods.len() == 4
            && pods.iter().all(|p| {
                p["status"]["conditions"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["reason"] == "Unschedulable"))
            }))
        .then_some(pods)
    });
    assert!(
        pods.iter().all(|p| node_of(p).is_none()),
        "no member bound alone"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(c.pods("app=train").iter().all(|p| node_of(p).is_none()));
    // Room for the fourth: the whole gang goes in.
    let client = c.client.clone();
    c.rt.block_on(register_node_with(&client, "n4", 4, 8, 110, json!({})));
    if let Some(k) = &c.kubelets {
        k.add("n4");
    }
    eventually(60, "the gang bound together", || {
        let pods = c.pods("app=train");
        (pods.iter().filter(|p| node_of(p).is_some()).count() == 4).then_some(())
    });
    c.ok(&["delete", "pods", "-l", "app=train"]);
}

/// A node whose lease expires loses its pods to the others.
fn lease_expiry(c: &Cluster) {
    c.apply(&deployment("web:v1", 3));
    let pods = eventually(60, "3 ready pods", || {
        let pods = c.pods("app=web");
        (pods.iter().filter(|p| is_ready(p)).count() == 3).then_some(pods)
    });
    let victim = node_of(&pods[0]).unwrap().to_string();
    c.kubelets.as_ref().unwrap().pause(&victim);
    eventually(30, "the node tainted unreachable", || {
        let n = c.json(&["get", "node", &victim]);
        n["spec"]["taints"]
            .as_array()
            .is_some_and(|t| {
                t.iter()
                    .any(|t| t["key"] == "node.kubernetes.io/unreachable")
            })
            .then_some(())
    });
    eventually(90, "3 ready pods elsewhere", || {
        let pods = c.pods("app=web");
        (pods.len() == 3
            && pods
                .iter()
                .all(|p| is_ready(p) && node_of(p).is_some_and(|n| n != victim)))
        .then_some(())
    });
    c.ok(&["delete", "deployment", "web"]);
}

fn acceptance(store: Store) {
    let mut c = Cluster::start(&format!("{store:?}").to_lowercase(), store, 1, &[]);
    deployment_story(&mut c);
    failing_job(&c);
    impossible_pod(&c);
    gang(&mut c);
    lease_expiry(&c);
}

#[test]
fn acceptance_on_the_embedded_store() {
    acceptance(Store::Embedded);
}

#[cfg(feature = "etcd")]
#[test]
fn acceptance_on_etcd() {
    acceptance(Store::Etcd);
}

/// A pod of higher priority evicts lower-priority pods to fit, is nominated, then bound.
#[test]
fn preemption_evicts_the_fewest_lowest_priority_pods() {
    let mut c = Cluster::start("preempt", Store::Embedded, 1, &[]);
    c.nodes(&[("p1", 2, 8)]);
    c.apply(
        r#"
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: low}
value: 10
"#,
    );
    let mut yaml = String::new();
    for (name, cpu, class) in [
        ("small-a", "500m", "low"),
        ("small-b", "500m", "low"),
        ("big", "1", "low"),
    ] {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{tier: low}}}}\nspec:\n  priorityClassName: {class}\n  containers:\n  - {{name: c, image: x, resources: {{requests: {{cpu: {cpu}}}}}}}\n"
        ));
    }
    c.apply(&yaml);
    eventually(30, "the low pods running", || {
        (c.pods("tier=low").iter().filter(|p| is_ready(p)).count() == 3).then_some(())
    });
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: urgent}
spec:
  priorityClassName: high
  containers:
  - {name: c, image: x, resources: {requests: {cpu: "1"}}}
"#,
    );
    let p = eventually(60, "the urgent pod bound", || {
        let p = c.json(&["get", "pod", "urgent"]);
        node_of(&p).is_some().then_some(p)
    });
    assert_eq!(p["status"]["nominatedNodeName"], "p1");
    // One victim (the 1-CPU pod), not the two small ones.
    let left: Vec<String> = c
        .pods("tier=low")
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["small-a", "small-b"]);
    let events = c.ok(&["get", "events", "--field-selector", "reason=Preempted"]);
    assert!(events.contains("pod/big"), "{events}");
}

/// Two servers on one etcd: only the Lease holder runs the controllers and scheduler;
/// `kill -9` of the holder hands over within the lease duration, and the work in progress
/// completes with no pod bound twice.
#[cfg(feature = "etcd")]
#[test]
fn leader_killed_hands_over_on_etcd() {
    let mut c = Cluster::start(
        "ha",
        Store::Etcd,
        2,
        &[
            "--leader-elect-lease-duration",
            "6",
            "--leader-elect-renew-deadline",
            "4",
            "--leader-elect-retry-period",
            "1",
        ],
    );
    let holder = |c: &Cluster| -> Option<String> {
        let l = c.json(&[
            "get",
            "lease",
            "-n",
            "kube-system",
            "plimsoll-control-plane",
        ]);
        l["spec"]["holderIdentity"].as_str().map(str::to_string)
    };
    let first = eventually(30, "a leader", || holder(&c));
    c.nodes(&[("h1", 8, 16), ("h2", 8, 16)]);
    c.apply(&deployment("web:v1", 6));
    eventually(60, "6 ready pods", || {
        (c.pods("app=web").iter().filter(|p| is_ready(p)).count() == 6).then_some(())
    });
    // Which process leads? Both have the same host name; ask each one's metrics.
    let leader_idx = (0..2)
        .find(|&i| {
            let port = c.servers[i].1;
            let token =
                std::fs::read_to_string(c.dir.join(format!("data{i}/admin.token"))).unwrap();
            let out = Command::new("curl")
                .args([
                    "-sk",
                    "-H",
                    &format!("Authorization: Bearer {}", token.trim()),
                ])
                .arg(format!("https://127.0.0.1:{port}/metrics"))
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.starts_with("leader_election_master_status") && l.ends_with(" 1"))
        })
        .expect("one server reports leading");
    // Start a rollout, then kill the leader in the middle of it.
    c.ok(&["set", "image", "deployment/web", "web=web:v2"]);
    std::thread::sleep(Duration::from_millis(300));
    let killed_at = Instant::now();
    let (child, _) = &mut c.servers[leader_idx];
    child.kill().unwrap();
    child.wait().unwrap();
    if leader_idx == 0 {
        // The test's kubeconfig points at server 0: use server 1's.
        std::fs::copy(
            c.dir.join("data1/admin.kubeconfig"),
            c.dir.join("data0/admin.kubeconfig"),
        )
        .unwrap();
        let kc = c.kubeconfig();
        let client = c.rt.block_on(async {
            plimsoll::server::control::client_from_kubeconfig(&kc)
                .await
                .unwrap()
        });
        c.client = client.clone();
        let _g = c.rt.enter();
        c.kubelets = Some(Kubelets::start(client, &["h1", "h2"], true));
    }
    let second = eventually(30, "a new leader", || holder(&c).filter(|h| *h != first));
    let took = killed_at.elapsed();
    assert!(
        took < Duration::from_secs(6 + 4),
        "took over after {took:?} (lease 6 s)"
    );
    assert_ne!(first, second);
    let status = c.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    assert!(status.contains("successfully rolled out"), "{status}");
    all_ready_with(&c, 6, "web:v2");
    scheduled_once(&c);
}

/// A child process killed (by its pid) when the guard drops.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `plimsoll scheduler` and `plimsoll controllers` on their own, with the server's
/// kubeconfig, against a server that runs neither.
#[test]
fn standalone_scheduler_and_controllers() {
    let mut c = Cluster::start(
        "split",
        Store::Embedded,
        1,
        &["--no-controllers", "--no-scheduler"],
    );
    c.nodes(&[("s1", 4, 8)]);
    c.apply(&deployment("web:v1", 2));
    std::thread::sleep(Duration::from_secs(1));
    let rs = c.json(&["get", "rs"]);
    assert!(
        rs["items"].as_array().unwrap().is_empty(),
        "no controllers yet"
    );
    let kubeconfig = c.kubeconfig();
    let metrics = free_port();
    let start = |what: &str, extra: &[&str]| {
        Proc(
            Command::new(env!("CARGO_BIN_EXE_plimsoll"))
                .arg(what)
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting a standalone part"),
        )
    };
    let _scheduler = start(
        "scheduler",
        &[
            "--leader-elect=false",
            "--batch-window",
            "50",
            "--metrics-listen",
            &format!("127.0.0.1:{metrics}"),
        ],
    );
    let _controllers = start(
        "controllers",
        &[
            "--leader-elect-lease-duration",
            "4",
            "--leader-elect-renew-deadline",
            "3",
            "--leader-elect-retry-period",
            "1",
        ],
    );
    eventually(60, "2 ready pods", || {
        (c.pods("app=web").iter().filter(|p| is_ready(p)).count() == 2).then_some(())
    });
    let lease = c.json(&["get", "lease", "-n", "kube-system", "plimsoll-controllers"]);
    assert!(lease["spec"]["holderIdentity"].is_string(), "{lease}");
    let text = eventually(10, "the scheduler's metrics", || {
        let out = Command::new("curl")
            .args(["-s", &format!("http://127.0.0.1:{metrics}/metrics")])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("scheduler_schedule_attempts_total{result=\"scheduled\"} 2")
            .then_some(text)
    });
    assert!(
        text.contains("plimsoll_scheduler_placements_total{policy=\"best-fit\"} 2"),
        "{text}"
    );
}
