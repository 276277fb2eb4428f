//! The API server driven by the real `kubectl` (and by kube-rs): `plimsoll server` is
//! started as a process on a loopback port with a data directory of its own, and every
//! test stops it by its pid and removes the directory.

mod support;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, TempDir};

/// A running `plimsoll server`.
struct Server {
    child: Child,
    dir: TempDir,
    port: u16,
    args: Vec<String>,
}

impl Server {
    fn start(name: &str, extra: &[&str]) -> Server {
        let dir = TempDir::new(&format!("api-{name}"));
        let port = free_port();
        let args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let child = Self::spawn(&dir.0, port, &args);
        let s = Server {
            child,
            dir,
            port,
            args,
        };
        s.wait_ready();
        s
    }

    fn spawn(dir: &Path, port: u16, extra: &[String]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_plimsoll"))
            .args(["server", "--data-dir"])
            .arg(dir.join("data"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            // The API server alone: the control plane has its own tests.
            .args(["--no-controllers", "--no-scheduler"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting plimsoll server")
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.0.join("data/admin.kubeconfig")
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.kubeconfig().exists() {
                let out = self.kubectl(&["get", "--raw", "/readyz"]);
                if out.status.success() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("plimsoll server did not become ready on port {}", self.port);
    }

    /// SIGKILL, then a restart on the same data directory and port.
    fn kill_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = Self::spawn(&self.dir.0, self.port, &self.args);
        self.wait_ready();
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .env("KUBECONFIG", self.kubeconfig())
            .env_remove("KUBERNETES_SERVICE_HOST")
            .args(args)
            .output()
            .expect("running kubectl (Debian package kubectl)")
    }

    /// kubectl that must succeed; its stdout.
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

    /// kubectl that must fail; its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} should fail:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).expect("kubectl -o json prints JSON")
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const DEPLOY_V1: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: hello:1.0
        ports: [{containerPort: 8080}]
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
      - name: sidecar
        image: proxy:1.0
"#;

const DEPLOY_V2: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: hello:2.0
        ports: [{containerPort: 8080}]
        env:
        - {name: A, value: "1"}
"#;

const OTHERS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config}
data: {greeting: hello}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: run, image: "busybox:1", command: [echo, hi]}]
"#;

const NODE: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: n1
  labels: {node-role.kubernetes.io/worker: ""}
status:
  capacity: {cpu: "4", memory: 8Gi, pods: "110"}
  allocatable: {cpu: "4", memory: 8Gi, pods: "110"}
  addresses: [{type: InternalIP, address: 10.0.0.1}]
  nodeInfo: {osImage: Debian, kernelVersion: "6.1", containerRuntimeVersion: "plimsoll://0.1", kubeletVersion: v1.32.4,
             machineID: "", systemUUID: "", bootID: "", kubeProxyVersion: "", operatingSystem: linux, architecture: amd64}
  conditions: [{type: Ready, status: "True", reason: KubeletReady, message: ready}]
"#;

#[test]
fn kubectl_apply_get_describe_scale_delete() {
    let s = Server::start("flow", &[]);
    // Validated apply (OpenAPI v3 + fieldValidation=Strict), every kind at once.
    let d1 = s.file("deploy.yaml", DEPLOY_V1);
    let others = s.file("others.yaml", OTHERS);
    let out = s.ok(&["apply", "-f", d1.to_str().unwrap()]);
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let out = s.ok(&["apply", "-f", others.to_str().unwrap()]);
    assert!(out.contains("service/web created"), "{out}");
    assert!(out.contains("configmap/web-config created"), "{out}");
    assert!(out.contains("job.batch/once created"), "{out}");
    // The changed re-apply is a strategic merge patch with $setElementOrder, a deleted
    // container and a deleted env entry.
    let d2 = s.file("deploy2.yaml", DEPLOY_V2);
    let out = s.ok(&["apply", "-f", d2.to_str().unwrap()]);
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    let d = s.json(&["get", "deploy", "web"]);
    let cs = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(
        cs.len(),
        1,
        "the sidecar removed from the manifest is gone: {cs:?}"
    );
    assert_eq!(cs[0]["image"], "hello:2.0");
    assert_eq!(cs[0]["env"], json!([{"name": "A", "value": "1"}]));
    assert_eq!(d["metadata"]["labels"]["tier"], "front");
    assert_eq!(d["metadata"]["generation"], 2);
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    // Unknown fields are rejected under Strict, which validated apply asks for.
    let bad = s.file(
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad}\ndata: {a: b}\nbogus: 1\n",
    );
    let err = s.fails(&["apply", "-f", bad.to_str().unwrap()]);
    assert!(err.contains("unknown field \"bogus\""), "{err}");
    // Tables: the columns kubectl shows.
    let out = s.ok(&["get", "deploy"]);
    assert!(out.starts_with("NAME"), "{out}");
    assert!(
        out.contains("READY") && out.contains("UP-TO-DATE") && out.contains("AVAILABLE"),
        "{out}"
    );
    assert!(out.contains("web "), "{out}");
    let nodef = s.file("node.yaml", NODE);
    s.ok(&["apply", "-f", nodef.to_str().unwrap()]);
    let out = s.ok(&["get", "nodes"]);
    assert!(
        out.contains("n1") && out.contains("Ready") && out.contains("worker"),
        "{out}"
    );
    let out = s.ok(&["get", "nodes", "-o", "wide"]);
    assert!(
        out.contains("INTERNAL-IP") && out.contains("10.0.0.1"),
        "{out}"
    );
    let pod = s.file(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p1, labels: {app: solo}}\nspec:\n  containers: [{name: c, image: busybox}]\n",
    );
    s.ok(&["apply", "-f", pod.to_str().unwrap()]);
    let out = s.ok(&["get", "pods", "-o", "wide"]);
    assert!(
        out.contains("NOMINATED NODE") && out.contains("p1") && out.contains("Pending"),
        "{out}"
    );
    let out = s.ok(&["get", "all"]);
    for want in [
        "pod/p1",
        "service/web",
        "deployment.apps/web",
        "job.batch/once",
    ] {
        assert!(out.contains(want), "get all lacks {want}: {out}");
    }
    let out = s.ok(&["get", "svc", "web"]);
    assert!(
        out.contains("LoadBalancer") && out.contains("<pending>") && out.contains(" 80:3"),
        "{out}"
    );
    let out = s.ok(&["describe", "deploy", "web"]);
    assert!(out.contains("Name:") && out.contains("hello:2.0"), "{out}");
    let out = s.ok(&["describe", "pod", "p1"]);
    assert!(out.contains("busybox"), "{out}");
    // Protobuf bodies (kubectl 1.32's create configmap / secret).
    s.ok(&[
        "create",
        "configmap",
        "c2",
        "--from-literal=a=b",
        "--from-literal=x=y",
    ]);
    let cm = s.json(&["get", "cm", "c2"]);
    assert_eq!(cm["data"], json!({"a": "b", "x": "y"}));
    s.ok(&["create", "secret", "generic", "s1", "--from-literal=k=v"]);
    let sec = s.json(&["get", "secret", "s1"]);
    assert_eq!(sec["data"]["k"], "dg=="); // base64 of "v"
    assert_eq!(sec["type"], "Opaque");
    // scale: a merge patch of the scale subresource.
    s.ok(&["scale", "deploy/web", "--replicas=5"]);
    assert_eq!(s.json(&["get", "deploy", "web"])["spec"]["replicas"], 5);
    // Server-side apply: create, then a change.
    let ssa = s.file(
        "ssa.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {a: \"1\", b: \"2\"}\n",
    );
    let out = s.ok(&["apply", "--server-side", "-f", ssa.to_str().unwrap()]);
    assert!(out.contains("serverside-applied"), "{out}");
    let ssa2 = s.file(
        "ssa2.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {a: \"3\"}\n",
    );
    s.ok(&["apply", "--server-side", "-f", ssa2.to_str().unwrap()]);
    let cm = s.json(&["get", "cm", "ssa", "--show-managed-fields"]);
    assert_eq!(
        cm["data"],
        json!({"a": "3"}),
        "b, no longer applied, is removed"
    );
    assert_eq!(cm["metadata"]["managedFields"][0]["manager"], "kubectl");
    // The other typed `kubectl create` commands send protobuf too.
    s.ok(&["create", "namespace", "team-a"]);
    s.ok(&[
        "create",
        "deployment",
        "d2",
        "--image=nginx:1.27",
        "--replicas=2",
        "-n",
        "team-a",
    ]);
    s.ok(&["create", "job", "j2", "--image=busybox", "-n", "team-a"]);
    let d2 = s.json(&["get", "deploy", "d2", "-n", "team-a"]);
    assert_eq!(d2["spec"]["replicas"], 2);
    assert_eq!(
        d2["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    let out = s.ok(&["get", "deploy", "-A"]);
    assert!(
        out.starts_with("NAMESPACE") && out.contains("team-a") && out.contains("d2"),
        "{out}"
    );
    // A PriorityClass, a coscheduling PodGroup and a gang Job (the example manifest);
    // pods get their priority from their class.
    let gang = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/manifests/gang.yaml");
    let out = s.ok(&["apply", "-f", gang]);
    assert!(
        out.contains("podgroup.scheduling.x-k8s.io/train created"),
        "{out}"
    );
    let out = s.ok(&["get", "pc"]);
    assert!(
        out.contains("training") && out.contains("1000") && out.contains("system-node-critical"),
        "{out}"
    );
    let out = s.ok(&["get", "podgroups"]);
    assert!(out.contains("MINMEMBER") && out.contains("train"), "{out}");
    s.ok(&[
        "run",
        "prio",
        "--image=busybox",
        "--restart=Never",
        "--overrides",
        r#"{"spec":{"priorityClassName":"training"}}"#,
    ]);
    assert_eq!(s.json(&["get", "pod", "prio"])["spec"]["priority"], 1000);
    let err = s.fails(&[
        "run",
        "noprio",
        "--image=busybox",
        "--overrides",
        r#"{"spec":{"priorityClassName":"nope"}}"#,
    ]);
    assert!(
        err.contains("no PriorityClass with name nope was found"),
        "{err}"
    );
    // Label and field selectors.
    let out = s.ok(&["get", "pods", "-l", "app=solo", "-o", "name"]);
    assert_eq!(out.trim(), "pod/p1");
    let out = s.ok(&["get", "pods", "-l", "app,app notin (solo)", "-o", "name"]);
    assert_eq!(out.trim(), "");
    let out = s.ok(&[
        "get",
        "pods",
        "--field-selector",
        "status.phase=Pending,metadata.name!=prio",
        "-o",
        "name",
    ]);
    assert_eq!(out.trim(), "pod/p1");
    let out = s.ok(&["get", "pods", "--show-labels"]);
    assert!(out.contains("app=solo"), "{out}");
    // An event about p1 shows in describe (filtered on involvedObject.*).
    let uid = s.json(&["get", "pod", "p1"])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let ev = s.file(
        "event.yaml",
        &format!(
            "apiVersion: v1\nkind: Event\nmetadata: {{name: p1.1}}\ninvolvedObject: {{kind: Pod, namespace: default, name: p1, uid: {uid}, apiVersion: v1}}\nreason: FailedScheduling\nmessage: '0/1 nodes are available: 1 Insufficient cpu.'\ntype: Warning\nsource: {{component: plimsoll}}\ncount: 1\nfirstTimestamp: '2026-01-01T00:00:00Z'\nlastTimestamp: '2026-01-01T00:00:00Z'\n"
        ),
    );
    s.ok(&["create", "-f", ev.to_str().unwrap()]);
    let out = s.ok(&["describe", "pod", "p1"]);
    assert!(
        out.contains("FailedScheduling") && out.contains("Insufficient cpu"),
        "{out}"
    );
    let out = s.ok(&["get", "events"]);
    assert!(
        out.contains("FailedScheduling") && out.contains("pod/p1"),
        "{out}"
    );
    // Finalizers hold a deletion until they are removed.
    let fin = s.file(
        "fin.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, finalizers: [example.com/keep]}\n",
    );
    s.ok(&["create", "-f", fin.to_str().unwrap()]);
    s.ok(&["delete", "cm", "held", "--wait=false"]);
    let held = s.json(&["get", "cm", "held"]);
    assert!(held["metadata"]["deletionTimestamp"].is_string(), "{held}");
    s.ok(&[
        "patch",
        "cm",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    s.fails(&["get", "cm", "held"]);
    // delete: gone afterwards.
    let out = s.ok(&["delete", "deploy", "web"]);
    assert!(out.contains("deployment.apps \"web\" deleted"), "{out}");
    let err = s.fails(&["get", "deploy", "web"]);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
    // label = a patch; optimistic concurrency: a stale resourceVersion is 409.
    s.ok(&["label", "pod", "p1", "x=y"]);
    let p = s.json(&["get", "pod", "p1"]);
    assert_eq!(p["metadata"]["labels"]["x"], "y");
    let mut stale = p.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    let stale_f = s.file("stale.json", &stale.to_string());
    let err = s.fails(&["replace", "-f", stale_f.to_str().unwrap()]);
    assert!(err.contains("the object has been modified"), "{err}");
}

#[test]
fn kubectl_get_pods_watch_sees_an_update() {
    let s = Server::start("watch", &[]);
    s.ok(&["run", "w1", "--image=busybox", "--restart=Never"]);
    let mut watcher = Command::new("kubectl")
        .env("KUBECONFIG", s.kubeconfig())
        .args(["get", "pods", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The list comes first: header and the pod.
    let first = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(first.starts_with("NAME"), "{first}");
    let row = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(row.starts_with("w1"), "{row}");
    // A status change made by someone else arrives as a new row.
    let patch = r#"{"status":{"phase":"Running","containerStatuses":[{"name":"w1","ready":true,"restartCount":0,"image":"busybox","imageID":"","state":{"running":{"startedAt":"2026-01-01T00:00:00Z"}}}]}}"#;
    s.ok(&[
        "patch",
        "pod",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        patch,
    ]);
    let mut seen = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) if line.starts_with("w1") && line.contains("Running") => {
                seen = true;
                break;
            }
            _ => {}
        }
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert!(seen, "kubectl get pods -w did not show the pod Running");
}

#[test]
fn acknowledged_objects_survive_kill_9_embedded() {
    let mut s = Server::start("kill9", &[]);
    for i in 0..20 {
        s.ok(&[
            "create",
            "configmap",
            &format!("c{i}"),
            &format!("--from-literal=i={i}"),
        ]);
    }
    let before = s.json(&["get", "cm", "c19"]);
    s.kill_and_restart();
    for i in 0..20 {
        let cm = s.json(&["get", "cm", &format!("c{i}")]);
        assert_eq!(cm["data"]["i"], i.to_string());
    }
    let after = s.json(&["get", "cm", "c19"]);
    assert_eq!(before["metadata"]["uid"], after["metadata"]["uid"]);
    assert_eq!(
        before["metadata"]["resourceVersion"],
        after["metadata"]["resourceVersion"]
    );
}

#[cfg(feature = "etcd")]
#[test]
fn acknowledged_objects_survive_kill_9_etcd_and_a_watch_resumes() {
    let etcd = support::Etcd::start("api-etcd");
    let mut s = Server::start(
        "kill9-etcd",
        &["--store", "etcd", "--etcd-endpoints", &etcd.client],
    );
    s.ok(&["create", "configmap", "a", "--from-literal=i=0"]);
    let rv = s.json(&["get", "cm", "a"])["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    s.kill_and_restart();
    assert_eq!(s.json(&["get", "cm", "a"])["data"]["i"], "0");
    s.ok(&["create", "configmap", "b", "--from-literal=i=1"]);
    // A watch resumed from the last resourceVersion seen before the restart gets b.
    let out = s.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=2"),
    ]);
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{out}");
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "b");
}

#[test]
fn bad_input_gets_a_status_and_changes_nothing() {
    let s = Server::start("bad", &["--max-body", "65536"]);
    let post = |path: &str, name: &str, body: &str| -> String {
        let f = s.file(name, body);
        s.fails(&["create", "--raw", path, "-f", f.to_str().unwrap()])
    };
    let cms = "/api/v1/namespaces/default/configmaps";
    let err = post(cms, "m1.json", "{\"apiVersion\": \"v1\", \"kind\": ");
    assert!(
        err.contains("BadRequest") || err.contains("error decoding"),
        "{err}"
    );
    let err = post(
        cms,
        "m2.json",
        r#"{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}}"#,
    );
    assert!(
        err.contains("does not match the expected API version"),
        "{err}"
    );
    let err = post(
        cms,
        "m3.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Not_A_Name"}}"#,
    );
    assert!(err.contains("RFC 1123"), "{err}");
    let err = post(
        &format!("{cms}?fieldValidation=Strict"),
        "m4.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"dta":{}}"#,
    );
    assert!(
        err.contains("unknown field \\\"dta\\\"") || err.contains("unknown field"),
        "{err}"
    );
    let err = post("/api/v1/namespaces/default/widgets", "m5.json", "{}");
    assert!(
        err.contains("NotFound") || err.contains("could not find"),
        "{err}"
    );
    let huge = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"a":"{}"}}}}"#,
        "x".repeat(100_000)
    );
    let err = post(cms, "m6.json", &huge);
    assert!(err.contains("too large") || err.contains("413"), "{err}");
    let err = post(
        cms,
        "m7.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"other"}}"#,
    );
    assert!(err.contains("does not match the namespace"), "{err}");
    // Nothing of it was stored.
    let list = s.json(&["get", "cm"]);
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");
    // A patch of the wrong type, and a malformed one.
    s.ok(&["create", "configmap", "ok", "--from-literal=a=b"]);
    let err = s.fails(&[
        "patch",
        "cm",
        "ok",
        "--type=json",
        "-p",
        r#"{"not":"a list"}"#,
    ]);
    assert!(!err.is_empty());
    let err = s.fails(&[
        "patch",
        "cm",
        "ok",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/data/missing/x","value":1}]"#,
    ]);
    assert!(!err.is_empty());
    assert_eq!(s.json(&["get", "cm", "ok"])["data"], json!({"a": "b"}));
}

#[test]
fn tokens_authenticate_and_nodes_are_restricted() {
    let dir = TempDir::new("tokens-file");
    let tokens = dir.0.join("tokens.csv");
    std::fs::write(
        &tokens,
        "node1-token,system:node:n1,n1,\"system:nodes\"\nnode2-token,system:node:n2,n2,system:nodes\n",
    )
    .unwrap();
    let s = Server::start("tokens", &["--tokens", tokens.to_str().unwrap()]);
    let nodef = s.file("node.yaml", NODE);
    let n2 = s.file("node2.yaml", &NODE.replace("name: n1", "name: n2"));
    let as_node = |token: &str, args: &[&str]| -> Output {
        Command::new("kubectl")
            .env("KUBECONFIG", s.kubeconfig())
            .arg(format!("--token={token}"))
            .args(args)
            .output()
            .unwrap()
    };
    // n1 registers itself; it may not create n2.
    let out = as_node("node1-token", &["create", "-f", nodef.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = as_node("node1-token", &["create", "-f", n2.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Forbidden"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A node may not touch configmaps; it may read.
    let out = as_node(
        "node1-token",
        &["create", "configmap", "x", "--from-literal=a=b"],
    );
    assert!(!out.status.success());
    let out = as_node("node1-token", &["get", "nodes"]);
    assert!(out.status.success());
    // No or a wrong token: 401.
    let out = as_node("wrong", &["get", "nodes"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("Unauthorized") || err.contains("provide credentials"),
        "{err}"
    );
    // Health endpoints need no token.
    let out = as_node("wrong", &["get", "--raw", "/healthz"]);
    assert!(out.status.success());
}

#[test]
fn kube_rs_client_lists_and_watches() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
    let s = Server::start("kube-rs", &[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(s.kubeconfig()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let cms: Api<ConfigMap> = Api::namespaced(client, "default");
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("from-kube-rs".into());
        cm.data = Some([("k".to_string(), "v".to_string())].into());
        cms.create(&PostParams::default(), &cm).await.unwrap();
        let list = cms.list(&ListParams::default()).await.unwrap();
        assert_eq!(list.items.len(), 1);
        let rv = list.metadata.resource_version.clone().unwrap();
        use futures_util_shim::next;
        let mut stream = Box::pin(
            cms.watch(&WatchParams::default().timeout(10), &rv)
                .await
                .unwrap(),
        );
        let mut cm2 = cm.clone();
        cm2.metadata.name = Some("second".into());
        cms.create(&PostParams::default(), &cm2).await.unwrap();
        match next(&mut stream).await {
            Some(Ok(WatchEvent::Added(o))) => {
                assert_eq!(o.metadata.name.as_deref(), Some("second"))
            }
            other => panic!("unexpected watch event {other:?}"),
        }
        let err = cms.get("missing").await.unwrap_err();
        match err {
            kube::Error::Api(s) => assert_eq!(s.code, 404),
            other => panic!("{other}"),
        }
    });
}

/// `StreamExt::next` without a futures dependency.
mod futures_util_shim {
    use futures_core::Stream;
    use std::pin::Pin;

    pub async fn next<S: Stream>(s: &mut Pin<Box<S>>) -> Option<S::Item> {
        std::future::poll_fn(|cx| s.as_mut().poll_next(cx)).await
    }
}

/// A kube-rs client for the server's admin kubeconfig.
async fn client_for(s: &Server) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(s.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// The HTTP code of a raw request (200 for success).
async fn code(client: &kube::Client, method: &str, uri: &str, ct: &str, body: Vec<u8>) -> u16 {
    let req = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", ct)
        .body(body)
        .unwrap();
    match client.request_text(req).await {
        Ok(_) => 200,
        Err(kube::Error::Api(s)) => s.code,
        Err(other) => panic!("{method} {uri} ({ct}): {other}"),
    }
}

#[test]
fn bad_requests_get_the_right_codes() {
    let s = Server::start("codes", &["--max-body", "65536"]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = client_for(&s).await;
        let cms = "/api/v1/namespaces/default/configmaps";
        let json = "application/json";
        let cm = |name: &str| format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}}}}"#).into_bytes();
        let cases: Vec<(&str, String, &str, Vec<u8>, u16)> = vec![
            ("POST", cms.into(), json, b"{\"apiVersion\":".to_vec(), 400),
            ("POST", cms.into(), "application/yaml", b"apiVersion: v1\nkind: [unclosed\n".to_vec(), 400),
            ("POST", cms.into(), "application/vnd.kubernetes.protobuf", b"k8s\0\x0a\xff\xff".to_vec(), 400),
            ("POST", cms.into(), "application/vnd.kubernetes.protobuf", b"not protobuf".to_vec(), 400),
            ("POST", cms.into(), "text/plain", cm("t"), 415),
            ("POST", "/api/v1/namespaces/default/widgets".into(), json, cm("w"), 404),
            ("POST", "/api/v1/namespaces/nowhere/configmaps".into(), json, cm("w"), 404),
            ("POST", cms.into(), json, cm("Bad_Name"), 422),
            ("POST", cms.into(), json, br#"{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"v"}}"#.to_vec(), 400),
            ("POST", cms.into(), json, br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"v"}}"#.to_vec(), 400),
            ("POST", format!("{cms}?fieldValidation=Strict"), json, br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"u"},"extra":1}"#.to_vec(), 400),
            ("POST", format!("{cms}?fieldValidation=Bogus"), json, cm("u"), 400),
            ("POST", cms.into(), json, br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"t"},"data":{"a":7}}"#.to_vec(), 400),
            ("POST", cms.into(), json, vec![b' '; 70_000], 413),
            ("GET", format!("{cms}?labelSelector=a%20in%20(b"), json, vec![], 400),
            ("GET", format!("{cms}?fieldSelector=data.x%3Dy"), json, vec![], 400),
            ("GET", format!("{cms}?limit=x"), json, vec![], 400),
            ("DELETE", format!("{cms}/missing"), json, vec![], 404),
            ("POST", cms.into(), json, cm("ok"), 200),
            ("POST", cms.into(), json, cm("ok"), 409),
            ("PUT", format!("{cms}/ok"), json, br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ok","resourceVersion":"1"}}"#.to_vec(), 409),
            ("PUT", format!("{cms}/ok"), json, br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"other"}}"#.to_vec(), 400),
            ("PATCH", format!("{cms}/ok"), json, b"{}".to_vec(), 415),
            ("PATCH", format!("{cms}/ok"), "application/json-patch+json", br#"{"op":"add"}"#.to_vec(), 400),
            ("PATCH", format!("{cms}/ok"), "application/json-patch+json", br#"[{"op":"test","path":"/data","value":1}]"#.to_vec(), 422),
            ("PATCH", format!("{cms}/ok"), "application/strategic-merge-patch+json", b"[1]".to_vec(), 422),
            ("PATCH", format!("{cms}/ok"), "application/merge-patch+json", br#"{"metadata":{"resourceVersion":"1"}}"#.to_vec(), 409),
            ("PATCH", "/apis/scheduling.x-k8s.io/v1alpha1/namespaces/default/podgroups/g".into(), "application/strategic-merge-patch+json", b"{}".to_vec(), 415),
            ("PUT", "/api/v1/namespaces/default/pods".into(), json, cm("x"), 405),
        ];
        for (method, uri, ct, body, want) in cases {
            let got = code(&c, method, &uri, ct, body).await;
            assert_eq!(got, want, "{method} {uri} ({ct})");
        }
        // Nothing but "ok" was stored, and the server still answers.
        let list = c
            .request_text(axum::http::Request::get(cms).body(vec![]).unwrap())
            .await
            .unwrap();
        let list: Value = serde_json::from_str(&list).unwrap();
        let names: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["ok"]);
    });
}

#[test]
fn embedded_watch_resumes_across_a_restart_and_gets_410_once_compacted() {
    let mut s = Server::start(
        "resume",
        &["--compact-interval", "1", "--bookmark-interval", "1"],
    );
    s.ok(&["create", "configmap", "a", "--from-literal=i=0"]);
    let rv: u64 = s.json(&["get", "cm", "a"])["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    s.kill_and_restart();
    s.ok(&["create", "configmap", "b", "--from-literal=i=1"]);
    // Right after the restart the history is still there: the resumed watch misses
    // nothing (the compactor's first pass only records the revision).
    let watch = |from: u64| {
        s.kubectl(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={from}&timeoutSeconds=1"),
        ])
    };
    // A watch from a compacted revision is answered as kube-apiserver does: 200 and one
    // ERROR event with the 410 Expired Status.
    let expired = |out: &Output| {
        let text = String::from_utf8_lossy(&out.stdout);
        let line: Option<Value> = text
            .lines()
            .next()
            .and_then(|l| serde_json::from_str(l).ok());
        out.status.success()
            && line.is_some_and(|e| {
                e["type"] == "ERROR"
                    && e["object"]["code"] == 410
                    && e["object"]["reason"] == "Expired"
            })
    };
    let out = watch(rv);
    if out.status.success() && !expired(&out) {
        let text = String::from_utf8_lossy(&out.stdout);
        let events: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.len(), 1, "{text}");
        assert_eq!(events[0]["object"]["metadata"]["name"], "b");
    } else {
        // Already compacted: then the answer must be 410 Expired.
        assert!(expired(&out), "{out:?}");
    }
    // After two compaction ticks with writes in between, the old revision is gone: 410,
    // and a relist (resourceVersion from a fresh list) works.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        s.ok(&[
            "create",
            "configmap",
            &format!("c{}", rand_suffix()),
            "--from-literal=x=y",
        ]);
        let out = watch(rv);
        if expired(&out) {
            break;
        }
        assert!(Instant::now() < deadline, "history never compacted");
        std::thread::sleep(Duration::from_millis(500));
    }
    let list: Value =
        serde_json::from_str(&s.ok(&["get", "--raw", "/api/v1/namespaces/default/configmaps"]))
            .unwrap();
    let fresh: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(watch(fresh).status.success());
    // Bookmarks, when the client allows them, carry a resourceVersion to resume from.
    let out = s.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={fresh}&allowWatchBookmarks=true&timeoutSeconds=3"),
    ]);
    let bookmark: Value = serde_json::from_str(
        out.lines()
            .find(|l| l.contains("BOOKMARK"))
            .unwrap_or_else(|| panic!("no bookmark in {out}")),
    )
    .unwrap();
    assert_eq!(bookmark["object"]["kind"], "ConfigMap");
    assert!(bookmark["object"]["metadata"]["resourceVersion"].is_string());
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn a_watch_whose_client_does_not_read_is_closed() {
    use plimsoll::server::api::{pki::Pki, Prepared, ServerConfig};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = TempDir::new("api-slow-watch");
    let data = dir.0.join("data");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = ServerConfig::new(&data, "127.0.0.1:0".parse().unwrap());
        config.options.watch_send_timeout = Duration::from_secs(1);
        let prepared = Prepared::new(config).await.unwrap();
        let addr = prepared.addr;
        let kubeconfig = prepared.kubeconfig.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(prepared.serve(async {
            let _ = stopped.await;
        }));
        let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
        let pki = Pki::load_or_create(&data, &[]).unwrap();
        let connector = tokio_rustls::TlsConnector::from(pki.client_config());
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let req = format!(
            "GET /api/v1/namespaces/default/configmaps?watch=true HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\r\n",
            token.trim()
        );
        tls.write_all(req.as_bytes()).await.unwrap();
        // 300 objects of 60 KB (18 MB of events) while the watcher reads nothing.
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
        let client = kube::Client::try_from(
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .unwrap(),
        )
        .unwrap();
        let big = "x".repeat(60_000);
        let mut tasks = Vec::new();
        for t in 0..6 {
            let client = client.clone();
            let big = big.clone();
            tasks.push(tokio::spawn(async move {
                let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
                    kube::Api::namespaced(client, "default");
                for i in 0..50 {
                    let mut cm = k8s_openapi::api::core::v1::ConfigMap::default();
                    cm.metadata.name = Some(format!("big-{t}-{i}"));
                    cm.data = Some([("x".to_string(), big.clone())].into());
                    cms.create(&Default::default(), &cm).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        // Now read: the stream ends (closed by the server) well before 18 MB.
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        let ended = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(n) => {
                        got.extend_from_slice(&buf[..n]);
                        if got.ends_with(b"\r\n0\r\n\r\n") {
                            return true;
                        }
                    }
                }
            }
        })
        .await
        .unwrap_or(false);
        assert!(ended, "the watch of a client that did not read stayed open");
        assert!(
            got.len() < 9_000_000,
            "{} bytes were buffered for a client that did not read",
            got.len()
        );
        // The server serves on.
        let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client, "default");
        assert_eq!(cms.list(&Default::default()).await.unwrap().items.len(), 300);
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    });
}

#[test]
fn lists_are_paged_with_continue_tokens() {
    let s = Server::start("pages", &[]);
    for i in 0..5 {
        s.ok(&[
            "create",
            "configmap",
            &format!("p{i}"),
            &format!("--from-literal=i={i}"),
        ]);
    }
    s.ok(&["label", "cm", "p1", "p3", "odd=yes"]);
    // kubectl follows the continue tokens.
    let out = s.ok(&["get", "cm", "--chunk-size=2", "-o", "name"]);
    assert_eq!(out.lines().count(), 5, "{out}");
    let page = |q: &str| -> Value {
        serde_json::from_str(&s.ok(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/default/configmaps?{q}"),
        ]))
        .unwrap()
    };
    let first = page("limit=2");
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    let second = page(&format!("limit=2&continue={token}"));
    let names: Vec<&str> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["p2", "p3"]);
    // Under a selector the count of what remains is not known.
    let sel = page("limit=1&labelSelector=odd%3Dyes");
    assert_eq!(sel["items"][0]["metadata"]["name"], "p1");
    assert!(sel["metadata"]["continue"].is_string());
    assert!(sel["metadata"].get("remainingItemCount").is_none());
    // A Table page as kubectl asks for it.
    let out = s.ok(&["get", "cm", "--chunk-size=1"]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with('p')).count(),
        5,
        "{out}"
    );
}
