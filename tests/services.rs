//! Service and node networking in the control plane, driven by the real `kubectl`: pod
//! CIDRs for Nodes (node IPAM), cluster IPs and node ports for Services, the ServiceLB
//! status of LoadBalancer Services, and the Node authorizer's rule for Secrets and
//! ConfigMaps. Each test starts `plimsoll server` as a process on a loopback port with a
//! data directory of its own, and stops it by its pid.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, TempDir};

/// A running `plimsoll server` (killed by pid on drop).
struct Server {
    child: Child,
    dir: TempDir,
    port: u16,
    args: Vec<String>,
}

impl Server {
    fn start(name: &str, extra: &[&str]) -> Server {
        let dir = TempDir::new(&format!("svc-{name}"));
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
            .arg("--no-scheduler")
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
            if self.kubeconfig().exists()
                && self.kubectl(&["get", "--raw", "/readyz"]).status.success()
            {
                return;
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

    /// kubectl with another bearer token.
    fn kubectl_as(&self, token: &str, args: &[&str]) -> Output {
        Command::new("kubectl")
            .env("KUBECONFIG", self.kubeconfig())
            .env_remove("KUBERNETES_SERVICE_HOST")
            .arg(format!("--token={token}"))
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

    /// Writes `text` to a file and `kubectl apply`s it (extra args after `-f FILE`).
    fn apply(&self, name: &str, text: &str, extra: &[&str]) -> String {
        let p = self.file(name, text);
        let mut args = vec!["apply", "-f", p.to_str().unwrap()];
        args.extend(extra);
        self.ok(&args)
    }

    fn create(&self, name: &str, text: &str) -> Output {
        let p = self.file(name, text);
        self.kubectl(&["create", "-f", p.to_str().unwrap()])
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Polls `f` every 200 ms for up to `secs` seconds.
    fn eventually<T>(&self, secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A Node manifest: Ready (or not), with an InternalIP, optionally labelled, optionally
/// with a pod CIDR of its own.
fn node(name: &str, ip: &str, ready: bool, labels: &str, pod_cidr: Option<&str>) -> String {
    let status = if ready { "True" } else { "False" };
    let spec = pod_cidr
        .map(|c| format!("spec: {{podCIDR: {c}, podCIDRs: [{c}]}}\n"))
        .unwrap_or_default();
    format!(
        r#"apiVersion: v1
kind: Node
metadata:
  name: {name}
  labels: {{{labels}}}
{spec}status:
  capacity: {{cpu: "4", memory: 8Gi, pods: "110"}}
  allocatable: {{cpu: "4", memory: 8Gi, pods: "110"}}
  addresses: [{{type: InternalIP, address: {ip}}}]
  conditions: [{{type: Ready, status: "{status}", reason: KubeletReady, message: ready}}]
"#
    )
}

fn pod_cidr(s: &Server, node: &str) -> Option<String> {
    let n = s.json(&["get", "node", node]);
    n["spec"]["podCIDR"].as_str().map(str::to_string)
}

fn events_for(s: &Server, name: &str, reason: &str) -> Vec<Value> {
    let list = s.json(&[
        "get",
        "events",
        "-n",
        "default",
        "--field-selector",
        &format!("involvedObject.name={name},reason={reason}"),
    ]);
    list["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn nodes_get_the_lowest_free_pod_cidr_and_keep_it() {
    let mut s = Server::start(
        "ipam",
        &[
            "--cluster-cidr",
            "10.200.0.0/22",
            "--node-cidr-mask-size",
            "24",
            "--node-grace",
            "3600",
        ],
    );
    // Four /24s in a /22: n1..n4 get them in order, n5 finds the range full.
    for i in 1..=5 {
        let name = format!("n{i}");
        let out = s.create(
            &format!("{name}.yaml"),
            &node(&name, &format!("10.0.0.{i}"), true, "", None),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        if i <= 4 {
            let want = format!("10.200.{}.0/24", i - 1);
            let got = s.eventually(20, &format!("{name}'s pod CIDR"), || pod_cidr(&s, &name));
            assert_eq!(got, want, "{name}");
            let n = s.json(&["get", "node", &name]);
            assert_eq!(n["spec"]["podCIDRs"], serde_json::json!([want]));
        }
    }
    let ev = s.eventually(20, "CIDRNotAvailable on n5", || {
        let e = events_for(&s, "n5", "CIDRNotAvailable");
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(ev[0]["type"], "Warning");
    assert_eq!(ev[0]["message"], "Node n5 status is now: CIDRNotAvailable");
    assert_eq!(pod_cidr(&s, "n5"), None);
    // A node that brings a pod CIDR outside the range keeps it, with an event.
    let out = s.create(
        "n6.yaml",
        &node("n6", "10.0.0.6", true, "", Some("10.9.0.0/24")),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    s.eventually(20, "InvalidPodCIDR on n6", || {
        (!events_for(&s, "n6", "InvalidPodCIDR").is_empty()).then_some(())
    });
    assert_eq!(pod_cidr(&s, "n6").as_deref(), Some("10.9.0.0/24"));
    // A restart changes nothing.
    let before: Vec<Option<String>> = (1..=6).map(|i| pod_cidr(&s, &format!("n{i}"))).collect();
    s.kill_and_restart();
    std::thread::sleep(Duration::from_secs(2));
    let after: Vec<Option<String>> = (1..=6).map(|i| pod_cidr(&s, &format!("n{i}"))).collect();
    assert_eq!(before, after);
    // Deleting n2 frees its block, which the waiting n5 gets.
    s.ok(&["delete", "node", "n2"]);
    let got = s.eventually(20, "n5's pod CIDR", || pod_cidr(&s, "n5"));
    assert_eq!(got, "10.200.1.0/24");
}

fn service(name: &str, spec_extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  selector: {{app: {name}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n{spec_extra}"
    )
}

fn cluster_ip(s: &Server, name: &str) -> String {
    s.json(&["get", "svc", name])["spec"]["clusterIP"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn node_ports(s: &Server, name: &str) -> Vec<i64> {
    s.json(&["get", "svc", name])["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["nodePort"].as_i64().unwrap_or(0))
        .collect()
}

#[test]
fn services_get_unique_cluster_ips_and_node_ports() {
    let s = Server::start("alloc", &["--no-controllers"]);
    // 50 Services in one apply: 50 distinct addresses of 10.43.0.0/16.
    let many: Vec<String> = (0..50).map(|i| service(&format!("s{i}"), "")).collect();
    let out = s.apply("many.yaml", &many.join("---\n"), &[]);
    assert_eq!(out.matches("created").count(), 50, "{out}");
    let list = s.json(&["get", "svc"]);
    let mut ips = BTreeSet::new();
    for svc in list["items"].as_array().unwrap() {
        let ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
        let addr: std::net::Ipv4Addr = ip.parse().unwrap();
        let o = addr.octets();
        assert_eq!((o[0], o[1]), (10, 43), "{ip}");
        assert!(
            !(o[2] == 0 && o[3] <= 1 || o[2] == 255 && o[3] == 255),
            "{ip}"
        );
        assert_eq!(svc["spec"]["clusterIPs"], serde_json::json!([ip]));
        assert_eq!(svc["spec"]["ipFamilies"], serde_json::json!(["IPv4"]));
        assert_eq!(svc["spec"]["ipFamilyPolicy"], "SingleStack");
        assert_eq!(svc["spec"]["internalTrafficPolicy"], "Cluster");
        assert_eq!(svc["spec"]["sessionAffinity"], "None");
        assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");
        ips.insert(ip);
    }
    assert_eq!(ips.len(), 50);

    // A requested address: accepted once, then already allocated; out of range refused.
    let out = s.create("req.yaml", &service("req", "  clusterIP: 10.43.0.50\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(cluster_ip(&s, "req"), "10.43.0.50");
    let out = s.create("dup.yaml", &service("dup", "  clusterIP: 10.43.0.50\n"));
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains(r#"The Service "dup" is invalid: spec.clusterIPs: Invalid value: []string{"10.43.0.50"}: failed to allocate IP 10.43.0.50: provided IP is already allocated"#),
        "{err}"
    );
    let out = s.create("far.yaml", &service("far", "  clusterIP: 10.99.0.1\n"));
    let err = stderr(&out);
    assert!(
        err.contains(
            "provided IP is not in the valid range. The range of valid IPs is 10.43.0.0/16"
        ),
        "{err}"
    );
    // The Status carries Kubernetes' causes (kubectl -v=8 logs the response body).
    let far = s.file("far.yaml", &service("far", "  clusterIP: 10.99.0.1\n"));
    let out = s.kubectl(&["create", "-f", far.to_str().unwrap(), "-v=8"]);
    assert!(!out.status.success());
    let log = stderr(&out);
    // (The body is logged with its quotes escaped.)
    let body = log.replace("\\\"", "\"");
    assert!(
        log.contains("422 Unprocessable Entity")
            && body.contains(r#""causes":[{"field":"spec.clusterIPs","#)
            && body.contains(r#""reason":"FieldValueInvalid""#)
            && body.contains(r#""reason":"Invalid""#),
        "{log}"
    );
    // Headless is fine.
    let out = s.create("headless.yaml", &service("headless", "  clusterIP: None\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(cluster_ip(&s, "headless"), "None");

    // Immutable once set; an update that omits it keeps it.
    let err = s.fails(&[
        "patch",
        "svc",
        "req",
        "--type=merge",
        "-p",
        r#"{"spec":{"clusterIP":"10.43.0.51","clusterIPs":["10.43.0.51"]}}"#,
    ]);
    assert!(
        err.contains(
            r#"spec.clusterIPs[0]: Invalid value: []string{"10.43.0.51"}: may not change once set"#
        ),
        "{err}"
    );
    let mut obj = s.json(&["get", "svc", "req"]);
    let spec = obj["spec"].as_object_mut().unwrap();
    spec.remove("clusterIP");
    spec.remove("clusterIPs");
    let replaced = s.file("req-replace.json", &obj.to_string());
    s.ok(&["replace", "-f", replaced.to_str().unwrap()]);
    assert_eq!(cluster_ip(&s, "req"), "10.43.0.50");
    // Deleting releases the address.
    s.ok(&["delete", "svc", "req"]);
    let out = s.create("dup.yaml", &service("dup", "  clusterIP: 10.43.0.50\n"));
    assert!(out.status.success(), "{}", stderr(&out));

    // Node ports.
    let out = s.create(
        "np1.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: np1}\nspec:\n  type: NodePort\n  selector: {app: x}\n  ports: [{port: 80, nodePort: 30080}]\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(node_ports(&s, "np1"), [30080]);
    let out = s.create(
        "np2.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: np2}\nspec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]\n",
    );
    assert!(
        stderr(&out).contains(
            "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
        ),
        "{}",
        stderr(&out)
    );
    let out = s.create(
        "np3.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: np3}\nspec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 80}]\n",
    );
    assert!(
        stderr(&out).contains("spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"),
        "{}",
        stderr(&out)
    );
    let out = s.create(
        "np4.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: np4}\nspec:\n  type: NodePort\n  ports: [{name: a, port: 80}, {name: b, port: 443}]\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let np4 = node_ports(&s, "np4");
    assert!(
        np4.iter()
            .all(|p| (30000..=32767).contains(p) && *p != 30080)
            && np4[0] != np4[1],
        "{np4:?}"
    );
    // kubectl get svc: CLUSTER-IP and PORT(S) with the node ports.
    let out = s.ok(&["get", "svc", "np1", "np4"]);
    assert!(
        out.contains("CLUSTER-IP") && out.contains("EXTERNAL-IP") && out.contains("PORT(S)"),
        "{out}"
    );
    assert!(
        out.contains("NodePort") && out.contains("80:30080/TCP"),
        "{out}"
    );
    assert!(
        out.contains(&format!("80:{}/TCP,443:{}/TCP", np4[0], np4[1])),
        "{out}"
    );
    assert!(out.contains(&cluster_ip(&s, "np1")), "{out}");
    // Back to ClusterIP releases the node ports: 30080 can be had again.
    s.ok(&[
        "patch",
        "svc",
        "np1",
        "--type=merge",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ]);
    assert_eq!(node_ports(&s, "np1"), [0]);
    let out = s.create(
        "np2.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: np2}\nspec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn apply_twice_keeps_the_allocated_addresses() {
    let s = Server::start("apply", &["--no-controllers"]);
    let manifest = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  type: NodePort\n  selector: {app: web}\n  ports: [{name: http, port: 80, targetPort: 8080}]\n";
    let out = s.apply("web.yaml", manifest, &[]);
    assert!(out.contains("service/web created"), "{out}");
    let (ip, np) = (cluster_ip(&s, "web"), node_ports(&s, "web"));
    assert!(!ip.is_empty() && np[0] > 0);
    let out = s.apply("web.yaml", manifest, &[]);
    assert!(out.contains("service/web unchanged"), "{out}");
    // A changed manifest: a strategic merge patch, which must keep them.
    let changed = manifest
        .replace(
            "metadata: {name: web}",
            "metadata: {name: web, labels: {tier: front}}",
        )
        .replace(
            "[{name: http, port: 80, targetPort: 8080}]",
            "[{name: http, port: 80, targetPort: 8080}, {name: admin, port: 9000}]",
        );
    let out = s.apply("web.yaml", &changed, &[]);
    assert!(out.contains("service/web configured"), "{out}");
    assert_eq!(cluster_ip(&s, "web"), ip);
    let after = node_ports(&s, "web");
    assert_eq!(after[0], np[0]);
    assert!(after[1] > 0 && after[1] != np[0]);
    // Server-side apply, twice.
    let ssa = "apiVersion: v1\nkind: Service\nmetadata: {name: ssa}\nspec:\n  type: LoadBalancer\n  selector: {app: ssa}\n  ports: [{name: http, port: 80}]\n";
    s.apply("ssa.yaml", ssa, &["--server-side"]);
    let (ip2, np2) = (cluster_ip(&s, "ssa"), node_ports(&s, "ssa"));
    assert!(!ip2.is_empty() && ip2 != ip && np2[0] > 0);
    s.apply(
        "ssa.yaml",
        &ssa.replace("{app: ssa}", "{app: ssa2}"),
        &["--server-side"],
    );
    assert_eq!((cluster_ip(&s, "ssa"), node_ports(&s, "ssa")), (ip2, np2));
    let svc = s.json(&["get", "svc", "ssa"]);
    assert_eq!(svc["spec"]["selector"]["app"], "ssa2");
}

#[test]
fn load_balancer_ingress_follows_ready_nodes_and_the_enablelb_label() {
    let s = Server::start("servicelb", &["--node-grace", "3600"]);
    for (name, ip, ready) in [
        ("a", "10.0.0.3", true),
        ("b", "10.0.0.1", true),
        ("c", "10.0.0.2", false),
    ] {
        let out = s.create(&format!("{name}.yaml"), &node(name, ip, ready, "", None));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = s.create("lb.yaml", &service("lb", "  type: LoadBalancer\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    let external = |s: &Server| -> String {
        let out = s.ok(&["get", "svc", "lb", "--no-headers"]);
        out.split_whitespace().nth(3).unwrap_or("").to_string()
    };
    s.eventually(20, "the ready nodes as EXTERNAL-IP", || {
        (external(&s) == "10.0.0.1,10.0.0.3").then_some(())
    });
    let svc = s.json(&["get", "svc", "lb"]);
    assert_eq!(
        svc["status"]["loadBalancer"]["ingress"],
        serde_json::json!([{"ip": "10.0.0.1", "ipMode": "VIP"}, {"ip": "10.0.0.3", "ipMode": "VIP"}])
    );
    // Only the labelled node once one is labelled.
    s.ok(&[
        "label",
        "node",
        "a",
        "svccontroller.k3s.cattle.io/enablelb=true",
    ]);
    s.eventually(20, "only the labelled node", || {
        (external(&s) == "10.0.0.3").then_some(())
    });
    // A node becoming Ready joins (the label rule still applies: c is not labelled).
    s.ok(&[
        "label",
        "node",
        "c",
        "svccontroller.k3s.cattle.io/enablelb=true",
    ]);
    s.ok(&[
        "patch",
        "node",
        "c",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"ready"}]}}"#,
    ]);
    s.eventually(20, "the labelled ready nodes", || {
        (external(&s) == "10.0.0.2,10.0.0.3").then_some(())
    });
    // No longer a LoadBalancer: cleared.
    s.ok(&[
        "patch",
        "svc",
        "lb",
        "--type=merge",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ]);
    s.eventually(20, "the ingress to go", || {
        let svc = s.json(&["get", "svc", "lb"]);
        svc["status"]["loadBalancer"]
            .get("ingress")
            .is_none()
            .then_some(())
    });
    assert_eq!(external(&s), "<none>");
}

#[test]
fn nodes_get_only_the_secrets_and_configmaps_of_their_pods() {
    let dir = TempDir::new("svc-node-authz-tokens");
    let tokens = dir.0.join("tokens.csv");
    std::fs::write(
        &tokens,
        "n1-token,system:node:n1,n1,system:nodes\nn2-token,system:node:n2,n2,system:nodes\n",
    )
    .unwrap();
    let s = Server::start(
        "node-authz",
        &["--no-controllers", "--tokens", tokens.to_str().unwrap()],
    );
    for (kind, name) in [
        ("secret", "mine"),
        ("secret", "theirs"),
        ("secret", "nobodys"),
    ] {
        s.ok(&["create", kind, "generic", name, "--from-literal=k=v"]);
    }
    s.ok(&["create", "configmap", "my-config", "--from-literal=k=v"]);
    s.ok(&["create", "configmap", "other-config", "--from-literal=k=v"]);
    let pod = |name: &str, node: &str, secret: &str, config: &str| {
        format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeName: {node}
  volumes: [{{name: s, secret: {{secretName: {secret}}}}}]
  containers:
  - name: c
    image: busybox
    envFrom: [{{configMapRef: {{name: {config}}}}}]
"#
        )
    };
    let out = s.create("p1.yaml", &pod("p1", "n1", "mine", "my-config"));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = s.create("p2.yaml", &pod("p2", "n2", "theirs", "other-config"));
    assert!(out.status.success(), "{}", stderr(&out));
    // n1 gets what its pod references.
    let out = s.kubectl_as("n1-token", &["get", "secret", "mine", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = s.kubectl_as("n1-token", &["get", "configmap", "my-config"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Nothing else.
    for (kind, name) in [
        ("secret", "theirs"),
        ("secret", "nobodys"),
        ("configmap", "other-config"),
    ] {
        let out = s.kubectl_as("n1-token", &["get", kind, name]);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains("Forbidden")
                && err.contains(&format!(
                    "User \"system:node:n1\" cannot get resource \"{kind}s\""
                ))
                && err.contains("no relationship found between node 'n1' and this object"),
            "{kind} {name}: {err}"
        );
    }
    // No lists or watches.
    for kind in ["secrets", "configmaps"] {
        let out = s.kubectl_as("n1-token", &["get", kind]);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains("Forbidden") && err.contains(&format!("cannot list resource \"{kind}\"")),
            "{err}"
        );
    }
    let out = s.kubectl_as("n1-token", &["get", "secrets", "-A"]);
    assert!(!out.status.success());
    // n2 has its own; the admin reads everything.
    let out = s.kubectl_as("n2-token", &["get", "secret", "theirs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    s.ok(&["get", "secrets"]);
    // Other reads by nodes are unchanged.
    let out = s.kubectl_as("n1-token", &["get", "pods"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
