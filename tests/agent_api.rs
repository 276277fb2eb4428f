//! The API server's side of the node agent, against `plimsoll server` run as a process
//! (API server only) and the real `kubectl`: usage reports (`PUT
//! /apis/plimsoll.io/v1/nodeusage/{node}`) feeding `kubectl top` (metrics.k8s.io) and the
//! usage history, their authorisation, TokenReviews, and `kubectl logs` proxied to a
//! node agent's `/containerLogs` — played here by [`FixtureAgent`], a small HTTPS server
//! that is a test fixture for the proxy, not the agent (the agent is tested end to end
//! elsewhere). Every test stops its server by pid and removes its directory.

mod support;

use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, PostParams};
use plimsoll::server::usage::UsageHistory;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{free_port, TempDir};

/// Node identities of the token file: (token, node).
const NODES: &[(&str, &str)] = &[("n1-secret-token", "n1"), ("n2-secret-token", "n2")];

/// A running `plimsoll server` with node tokens.
struct Server {
    child: Child,
    dir: TempDir,
    port: u16,
}

impl Server {
    fn start(name: &str) -> Server {
        let dir = TempDir::new(&format!("agent-api-{name}"));
        let tokens = dir.0.join("tokens.csv");
        let lines: String = NODES
            .iter()
            .map(|(t, n)| format!("{t},system:node:{n},{n},system:nodes\n"))
            .collect();
        std::fs::write(&tokens, lines).unwrap();
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
            .args(["server", "--data-dir"])
            .arg(dir.0.join("data"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--no-controllers", "--no-scheduler", "--tokens"])
            .arg(&tokens)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting plimsoll server");
        let s = Server { child, dir, port };
        s.wait_ready();
        for (token, node) in NODES {
            let text = std::fs::read_to_string(s.kubeconfig()).unwrap();
            let admin = std::fs::read_to_string(s.dir.0.join("data/admin.token")).unwrap();
            std::fs::write(s.node_kubeconfig(node), text.replace(admin.trim(), token)).unwrap();
        }
        s
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.0.join("data/admin.kubeconfig")
    }

    fn node_kubeconfig(&self, node: &str) -> PathBuf {
        self.dir.0.join(format!("{node}.kubeconfig"))
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

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.env("KUBECONFIG", self.kubeconfig())
            .env_remove("KUBERNETES_SERVICE_HOST")
            .arg("--cache-dir")
            .arg(self.dir.0.join("kube-cache"))
            .args(args);
        c
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("running kubectl")
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

    async fn client(&self, kubeconfig: &Path) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    }

    async fn admin(&self) -> kube::Client {
        self.client(&self.kubeconfig()).await
    }

    async fn node(&self, node: &str) -> kube::Client {
        self.client(&self.node_kubeconfig(node)).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A raw request: Ok(body text) or Err((code, message)).
async fn raw(
    client: &kube::Client,
    method: &str,
    uri: &str,
    body: Vec<u8>,
) -> Result<String, (u16, String)> {
    let req = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    match client.request_text(req).await {
        Ok(text) => Ok(text),
        Err(kube::Error::Api(s)) => Err((s.code, s.message.clone())),
        Err(other) => panic!("{method} {uri}: {other}"),
    }
}

/// Creates an object through the admin client (POST of its JSON).
async fn create(client: &kube::Client, path: &str, obj: Value) -> Value {
    let text = raw(client, "POST", path, serde_json::to_vec(&obj).unwrap())
        .await
        .unwrap_or_else(|e| panic!("creating {obj}: {e:?}"));
    serde_json::from_str(&text).unwrap()
}

/// A Node with 4 CPUs and 8 GiB allocatable, its agent at 127.0.0.1:`port` (none if 0).
fn node_object(name: &str, zone: &str, port: u16) -> Value {
    let capacity = json!({"cpu": "4", "memory": "8Gi", "pods": "110"});
    let mut status = json!({
        "capacity": capacity, "allocatable": capacity,
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
    });
    if port > 0 {
        status["daemonEndpoints"] = json!({"kubeletEndpoint": {"Port": port}});
    }
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"zone": zone}}, "status": status})
}

/// A pod bound to `node` (unbound if empty) with these containers.
fn pod_object(
    name: &str,
    node: &str,
    containers: &[&str],
    labels: Value,
    owner: Option<(&str, &str, &str)>,
) -> Value {
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"containers": containers.iter().map(|c| json!({"name": c, "image": "busybox"})).collect::<Vec<_>>()}});
    if !node.is_empty() {
        pod["spec"]["nodeName"] = json!(node);
    }
    if let Some((kind, owner_name, uid)) = owner {
        pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind,
            "name": owner_name, "uid": uid, "controller": true}]);
    }
    pod
}

fn uid(obj: &Value) -> String {
    obj["metadata"]["uid"].as_str().unwrap().to_string()
}

/// A report body.
fn report(node: &str, at: jiff::Timestamp, node_cpu: u64, node_mem: u64, pods: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "node": node, "timestamp": at.to_string(), "windowSeconds": 10,
        "cpuNanocores": node_cpu, "memoryBytes": node_mem, "pods": pods,
    }))
    .unwrap()
}

fn pod_usage(pod: &Value, containers: &[(&str, u64, u64)]) -> Value {
    json!({"namespace": "default", "name": pod["metadata"]["name"], "uid": uid(pod),
        "containers": containers.iter().map(|(n, c, m)| json!({"name": n, "cpuNanocores": c, "memoryBytes": m})).collect::<Vec<_>>()})
}

/// The rows of kubectl's table output, split on whitespace (header first).
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

const MIB: u64 = 1 << 20;

#[test]
fn usage_reports_feed_kubectl_top_and_the_usage_history() {
    let s = Server::start("top");
    let rt = runtime();
    let (web, solo) = rt.block_on(async {
        let admin = s.admin().await;
        create(&admin, "/api/v1/nodes", node_object("n1", "a", 0)).await;
        create(&admin, "/api/v1/nodes", node_object("n2", "b", 0)).await;
        let deploy = create(
            &admin,
            "/apis/apps/v1/namespaces/default/deployments",
            json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "busybox"}]}}}}),
        )
        .await;
        let rs = create(
            &admin,
            "/apis/apps/v1/namespaces/default/replicasets",
            json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-5d8f", "ownerReferences": [{"apiVersion": "apps/v1",
                "kind": "Deployment", "name": "web", "uid": uid(&deploy), "controller": true}]},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "busybox"}]}}}}),
        )
        .await;
        let web = create(
            &admin,
            "/api/v1/namespaces/default/pods",
            pod_object(
                "web-1",
                "n1",
                &["app", "sidecar"],
                json!({"app": "web"}),
                Some(("ReplicaSet", "web-5d8f", &uid(&rs))),
            ),
        )
        .await;
        let solo = create(
            &admin,
            "/api/v1/namespaces/default/pods",
            pod_object("solo", "n1", &["app"], json!({"app": "solo"}), None),
        )
        .await;

        // Node n1 reports three times, 10 s apart.
        let n1 = s.node("n1").await;
        let t0 = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(30);
        for i in 0..3u64 {
            let at = t0 + jiff::SignedDuration::from_secs(10 * i as i64);
            let body = report(
                "n1",
                at,
                1_500_000_000,
                2048 * MIB,
                json!([
                    pod_usage(
                        &web,
                        &[
                            ("app", 200_000_000 + i, 64 * MIB),
                            ("sidecar", 50_000_000, 16 * MIB)
                        ]
                    ),
                    pod_usage(&solo, &[("app", 100_000_000, 32 * MIB)]),
                ]),
            );
            raw(&n1, "PUT", "/apis/plimsoll.io/v1/nodeusage/n1", body)
                .await
                .unwrap();
        }
        (web, solo)
    });

    // kubectl top pods: the sum of the containers, in millicores and MiB.
    let out = s.ok(&["top", "pods"]);
    let r = rows(&out);
    assert_eq!(r[0], ["NAME", "CPU(cores)", "MEMORY(bytes)"], "{out}");
    assert_eq!(r[1], ["solo", "100m", "32Mi"], "{out}");
    assert_eq!(r[2], ["web-1", "251m", "80Mi"], "{out}");
    assert_eq!(r.len(), 3, "{out}");
    // Per container.
    let out = s.ok(&["top", "pods", "--containers"]);
    let r = rows(&out);
    assert_eq!(
        r[0],
        ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"],
        "{out}"
    );
    assert!(
        r.contains(&vec![
            "web-1".into(),
            "app".into(),
            "201m".into(),
            "64Mi".into()
        ]),
        "{out}"
    );
    assert!(
        r.contains(&vec![
            "web-1".into(),
            "sidecar".into(),
            "50m".into(),
            "16Mi".into()
        ]),
        "{out}"
    );
    assert!(
        r.contains(&vec![
            "solo".into(),
            "app".into(),
            "100m".into(),
            "32Mi".into()
        ]),
        "{out}"
    );
    // Label selectors, one pod, all namespaces, another namespace.
    let out = s.ok(&["top", "pods", "-l", "app=web"]);
    assert_eq!(rows(&out).len(), 2, "{out}");
    assert!(out.contains("web-1") && !out.contains("solo"), "{out}");
    let out = s.ok(&["top", "pod", "solo"]);
    assert_eq!(rows(&out)[1], ["solo", "100m", "32Mi"], "{out}");
    let out = s.ok(&["top", "pods", "-A"]);
    assert_eq!(rows(&out)[0][0], "NAMESPACE", "{out}");
    assert!(
        rows(&out).contains(&vec![
            "default".into(),
            "web-1".into(),
            "251m".into(),
            "80Mi".into()
        ]),
        "{out}"
    );
    let out = s.kubectl(&["top", "pods", "-n", "kube-system"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("No resources found in kube-system namespace"));
    // A pod with no metrics: kubectl then looks the pod up.
    let err = s.fails(&["top", "pod", "nope"]);
    assert!(err.contains("pods \"nope\" not found"), "{err}");

    // kubectl top nodes: against the Node's allocatable (4 CPUs, 8 GiB).
    let out = s.ok(&["top", "nodes"]);
    let r = rows(&out);
    assert_eq!(
        r[0],
        ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"],
        "{out}"
    );
    let n1 = r
        .iter()
        .find(|row| row[0] == "n1")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(n1[1..], ["1500m", "37%", "2048Mi", "25%"], "{out}");
    // n2 has not reported: no numbers for it.
    assert!(
        r.iter().all(|row| row[0] != "n2" || row[1] == "<unknown>"),
        "{out}"
    );
    let out = s.ok(&["top", "nodes", "-l", "zone=a"]);
    assert!(out.contains("1500m"), "{out}");
    // No metrics under the selector: kubectl says so and fails, as with metrics-server.
    let err = s.fails(&["top", "nodes", "-l", "zone=b"]);
    assert!(err.contains("metrics not available yet"), "{err}");

    // The metrics as metrics-server gives them.
    let m: Value = serde_json::from_str(&s.ok(&[
        "get",
        "--raw",
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-1",
    ]))
    .unwrap();
    assert_eq!(m["kind"], "PodMetrics");
    assert_eq!(m["window"], "10s");
    assert_eq!(m["metadata"]["labels"]["app"], "web");
    assert_eq!(
        m["containers"][0],
        json!({"name": "app", "usage": {"cpu": "200000002n", "memory": "64Mi"}})
    );
    let m: Value =
        serde_json::from_str(&s.ok(&["get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/n1"]))
            .unwrap();
    assert_eq!(m["usage"], json!({"cpu": "1500000000n", "memory": "2Gi"}));
    assert_eq!(m["metadata"]["labels"]["zone"], "a");
    let err = s.fails(&["get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/n2"]);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );

    // The usage history: samples in time order, workloads resolved through the
    // ReplicaSet to the Deployment.
    rt.block_on(async {
        let admin = s.admin().await;
        let text = raw(
            &admin,
            "GET",
            "/apis/plimsoll.io/v1/usagehistory",
            Vec::new(),
        )
        .await
        .unwrap();
        let h: UsageHistory = serde_json::from_str(&text).unwrap();
        let names: Vec<&str> = h.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["solo", "web-1"]);
        let w = &h.pods[1];
        assert_eq!(w.uid, uid(&web));
        assert_eq!(w.node, "n1");
        let owner = w.owner.as_ref().unwrap();
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("Deployment", "web")
        );
        assert_eq!(h.of_workload("default", owner).count(), 1);
        assert_eq!(w.samples.len(), 3);
        let times: Vec<jiff::Timestamp> =
            w.samples.iter().map(|x| x.timestamp().unwrap()).collect();
        assert!(
            times
                .windows(2)
                .all(|p| p[1].as_second() - p[0].as_second() == 10),
            "{times:?}"
        );
        for (i, sample) in w.samples.iter().enumerate() {
            assert!(
                (sample.cpu - (0.25 + i as f64 * 1e-9)).abs() < 1e-12,
                "{sample:?}"
            );
            assert_eq!(sample.memory, 80 * MIB);
        }
        assert_eq!(h.pods[0].uid, uid(&solo));
        assert!(h.pods[0].owner.is_none());
        // Filters.
        let only_n2: UsageHistory = serde_json::from_str(
            &raw(
                &admin,
                "GET",
                "/apis/plimsoll.io/v1/usagehistory?node=n2",
                Vec::new(),
            )
            .await
            .unwrap(),
        )
        .unwrap();
        assert!(only_n2.pods.is_empty());
        let other_ns: UsageHistory = serde_json::from_str(
            &raw(
                &admin,
                "GET",
                "/apis/plimsoll.io/v1/usagehistory?namespace=kube-system",
                Vec::new(),
            )
            .await
            .unwrap(),
        )
        .unwrap();
        assert!(other_ns.pods.is_empty());
        // The node's latest report, as kept.
        let latest: Value = serde_json::from_str(
            &raw(
                &admin,
                "GET",
                "/apis/plimsoll.io/v1/nodeusage/n1",
                Vec::new(),
            )
            .await
            .unwrap(),
        )
        .unwrap();
        assert_eq!(latest["pods"].as_array().unwrap().len(), 2);
        assert_eq!(latest["cpuNanocores"], 1_500_000_000u64);
        // A pod missing from the next report has no metrics any more, but keeps its history.
        let body = report(
            "n1",
            jiff::Timestamp::now(),
            1,
            1,
            json!([pod_usage(&solo, &[("app", 1, 1)])]),
        );
        raw(
            &s.node("n1").await,
            "PUT",
            "/apis/plimsoll.io/v1/nodeusage/n1",
            body,
        )
        .await
        .unwrap();
        let e = raw(
            &admin,
            "GET",
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-1",
            Vec::new(),
        )
        .await
        .unwrap_err();
        assert_eq!(
            e,
            (
                404,
                "podmetrics.metrics.k8s.io \"default/web-1\" not found".to_string()
            )
        );
        let h: UsageHistory = serde_json::from_str(
            &raw(
                &admin,
                "GET",
                "/apis/plimsoll.io/v1/usagehistory",
                Vec::new(),
            )
            .await
            .unwrap(),
        )
        .unwrap();
        assert_eq!(h.pods[1].samples.len(), 3);
    });
}

#[test]
fn reports_are_authorised_and_checked_and_tokens_reviewed() {
    let s = Server::start("reports");
    let rt = runtime();
    rt.block_on(async {
        let admin = s.admin().await;
        create(&admin, "/api/v1/nodes", node_object("n1", "a", 0)).await;
        create(&admin, "/api/v1/nodes", node_object("n2", "b", 0)).await;
        let mine = create(&admin, "/api/v1/namespaces/default/pods", pod_object("mine", "n1", &["c"], json!({}), None)).await;
        let theirs = create(&admin, "/api/v1/namespaces/default/pods", pod_object("theirs", "n2", &["c"], json!({}), None)).await;
        let unbound = create(&admin, "/api/v1/namespaces/default/pods", pod_object("unbound", "", &["c"], json!({}), None)).await;
        let n1 = s.node("n1").await;
        let now = jiff::Timestamp::now();
        let put = |client: kube::Client, path: &'static str, body: Vec<u8>| async move {
            raw(&client, "PUT", path, body).await
        };

        // Another node's usage: 403.
        let (code, msg) = put(n1.clone(), "/apis/plimsoll.io/v1/nodeusage/n2", report("n2", now, 1, 1, json!([]))).await.unwrap_err();
        assert_eq!(code, 403, "{msg}");
        assert!(msg.contains("node \"n1\" is not allowed to report usage for node \"n2\""), "{msg}");
        // A pod bound elsewhere, or to no node: 403 naming the pod; nothing recorded.
        for (pod, why) in [(&theirs, "is bound to node \"n2\""), (&unbound, "is not bound to a node")] {
            let body = report("n1", now, 1, 1, json!([pod_usage(&mine, &[("c", 1, 1)]), pod_usage(pod, &[("c", 1, 1)])]));
            let (code, msg) = put(n1.clone(), "/apis/plimsoll.io/v1/nodeusage/n1", body).await.unwrap_err();
            assert_eq!(code, 403, "{msg}");
            let name = pod["metadata"]["name"].as_str().unwrap();
            assert!(msg.contains(&format!("pod default/{name} {why}")), "{msg}");
        }
        let h: UsageHistory = serde_json::from_str(&raw(&admin, "GET", "/apis/plimsoll.io/v1/usagehistory", Vec::new()).await.unwrap()).unwrap();
        assert!(h.pods.is_empty(), "{h:?}");
        // Malformed reports: 400 naming the field.
        let good = String::from_utf8(report("n1", now, 7, 7, json!([pod_usage(&mine, &[("c", 1, 1)])]))).unwrap();
        for (body, want) in [
            (good.replace("\"windowSeconds\"", "\"window\""), "window: unknown field"),
            (good.replace("\"cpuNanocores\":1,", "\"cpuNanocores\":\"1\","), "pods[0].containers[0].cpuNanocores: expected a non-negative integer"),
            (good.replace("\"uid\"", "\"id\""), "pods[0].id: unknown field"),
            (good[..good.len() - 3].to_string(), "not valid JSON"),
            (good.replace("\"node\":\"n1\"", "\"node\":\"n9\""), "does not match the node in the path"),
        ] {
            let (code, msg) = put(n1.clone(), "/apis/plimsoll.io/v1/nodeusage/n1", body.into_bytes()).await.unwrap_err();
            assert_eq!(code, 400, "{msg}");
            assert!(msg.contains(want), "{want}: {msg}");
        }
        // A pod the store does not have (or no longer: another uid) is skipped.
        let mut ghost = mine.clone();
        ghost["metadata"]["uid"] = json!("0000-ghost");
        let body = report("n1", now, 1, 1, json!([pod_usage(&mine, &[("c", 5, 6)]), pod_usage(&ghost, &[("c", 1, 1)])]));
        let text = put(n1.clone(), "/apis/plimsoll.io/v1/nodeusage/n1", body).await.unwrap();
        assert!(text.contains("1 pods recorded"), "{text}");
        // Other users may report for any node.
        let body = report("n2", now, 1, 1, json!([pod_usage(&theirs, &[("c", 7, 8)])]));
        put(admin.clone(), "/apis/plimsoll.io/v1/nodeusage/n2", body).await.unwrap();
        let h: UsageHistory = serde_json::from_str(&raw(&admin, "GET", "/apis/plimsoll.io/v1/usagehistory", Vec::new()).await.unwrap()).unwrap();
        let got: Vec<(&str, &str, u64)> = h.pods.iter().map(|p| (p.name.as_str(), p.node.as_str(), p.samples[0].memory)).collect();
        assert_eq!(got, [("mine", "n1", 6), ("theirs", "n2", 8)]);
        // Not a PUT, not a path served.
        assert_eq!(raw(&n1, "POST", "/apis/plimsoll.io/v1/nodeusage/n1", Vec::new()).await.unwrap_err().0, 405);
        assert_eq!(raw(&n1, "GET", "/apis/plimsoll.io/v1/other", Vec::new()).await.unwrap_err().0, 404);

        // TokenReview, by a node (as the agent checks a caller's token).
        let reviews: Api<TokenReview> = Api::all(n1.clone());
        let review = |token: &str| -> TokenReview {
            serde_json::from_value(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})).unwrap()
        };
        let r = reviews.create(&PostParams::default(), &review(NODES[1].0)).await.unwrap();
        let status = r.status.unwrap();
        assert_eq!(status.authenticated, Some(true));
        let user = status.user.unwrap();
        assert_eq!(user.username.as_deref(), Some("system:node:n2"));
        assert_eq!(user.uid.as_deref(), Some("n2"));
        assert_eq!(user.groups.unwrap(), ["system:nodes", "system:authenticated"]);
        for bad in ["not-a-token", "n1-secret-token extra"] {
            let r = reviews.create(&PostParams::default(), &review(bad)).await.unwrap();
            assert_ne!(r.status.unwrap().authenticated, Some(true), "{bad}");
        }
        let err = raw(&n1, "POST", "/apis/authentication.k8s.io/v1/tokenreviews",
            serde_json::to_vec(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {}})).unwrap()).await.unwrap_err();
        assert_eq!(err, (400, "token is required for TokenReview in authentication".to_string()));
    });
    // Discovery lists both groups (kubectl's aggregated discovery).
    let out = s.ok(&["api-resources", "--api-group=metrics.k8s.io"]);
    assert!(
        out.contains("PodMetrics") && out.contains("NodeMetrics"),
        "{out}"
    );
    let out = s.ok(&["api-resources", "--api-group=authentication.k8s.io"]);
    assert!(out.contains("TokenReview"), "{out}");
}

/// What the fixture agent saw.
#[derive(Default)]
struct Seen {
    /// Path and query of each request.
    requests: Vec<String>,
    /// Who the TokenReview said the caller was.
    users: Vec<String>,
    /// The bearer token presented.
    token: String,
}

/// A stand-in for a node agent's log endpoint, for testing the API server's proxy: an
/// HTTPS server (self-signed certificate) on 127.0.0.1 serving
/// `/containerLogs/{ns}/{pod}/{container}`. It checks the caller's bearer token with a
/// TokenReview (as node n1), answers five lines (`tailLines` honoured), streams a line
/// every 100 ms with `follow=true`, and for container `waiting` answers 400 as the
/// kubelet does for a container not started.
struct FixtureAgent {
    port: u16,
    seen: Arc<Mutex<Seen>>,
    /// Follow streams open now.
    streams: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

struct StreamGuard(Arc<AtomicUsize>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone)]
struct FixtureState {
    reviewer: kube::Client,
    seen: Arc<Mutex<Seen>>,
    streams: Arc<AtomicUsize>,
}

async fn fixture_logs(
    axum::extract::State(st): axum::extract::State<FixtureState>,
    axum::extract::Path((ns, pod, container)): axum::extract::Path<(String, String, String)>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    st.seen.lock().unwrap().requests.push(uri.to_string());
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string();
    let reviews: Api<TokenReview> = Api::all(st.reviewer.clone());
    let review: TokenReview = serde_json::from_value(json!({"spec": {"token": token}})).unwrap();
    let user = match reviews.create(&PostParams::default(), &review).await {
        Ok(r) => r
            .status
            .filter(|s| s.authenticated == Some(true))
            .and_then(|s| s.user)
            .and_then(|u| u.username),
        Err(_) => None,
    };
    let Some(user) = user else {
        return (axum::http::StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    };
    {
        let mut seen = st.seen.lock().unwrap();
        seen.users.push(user);
        seen.token = token;
    }
    if container == "waiting" {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            format!(
                "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
            ),
        )
            .into_response();
    }
    let query = uri.query().unwrap_or("");
    if query.split('&').any(|p| p == "follow=true") {
        st.streams.fetch_add(1, Ordering::SeqCst);
        let guard = StreamGuard(st.streams.clone());
        let stream = futures::stream::unfold((0u64, guard), |(n, guard)| async move {
            if n > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Some((
                Ok::<_, std::io::Error>(format!("tick {n}\n")),
                (n + 1, guard),
            ))
        });
        return axum::body::Body::from_stream(stream).into_response();
    }
    let tail = query
        .split('&')
        .find_map(|p| p.strip_prefix("tailLines="))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(5);
    let lines: Vec<String> = (1..=5)
        .map(|i| format!("{ns}/{pod}/{container} line {i}\n"))
        .collect();
    lines[5 - tail.min(5)..].concat().into_response()
}

impl FixtureAgent {
    async fn start(reviewer: kube::Client) -> FixtureAgent {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        #[allow(deprecated)] // rustls 0.23.48: no post-quantum key exchange in ring
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let streams = Arc::new(AtomicUsize::new(0));
        let router = axum::Router::new()
            .route(
                "/containerLogs/{ns}/{pod}/{container}",
                axum::routing::get(fixture_logs),
            )
            .with_state(FixtureState {
                reviewer,
                seen: seen.clone(),
                streams: streams.clone(),
            });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(plimsoll::server::api::listen::serve_tls(
            listener,
            Arc::new(tls),
            router,
            Default::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        FixtureAgent {
            port,
            seen,
            streams,
            stop: Some(stop),
        }
    }
}

impl Drop for FixtureAgent {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[test]
fn kubectl_logs_is_proxied_to_the_node_agent() {
    let s = Server::start("logs");
    let rt = runtime();
    let agent = rt.block_on(async {
        let agent = FixtureAgent::start(s.node("n1").await).await;
        let admin = s.admin().await;
        // n1's agent is the fixture; n2 has no port.
        let nodes: Api<Node> = Api::all(admin.clone());
        nodes
            .create(
                &PostParams::default(),
                &serde_json::from_value(node_object("n1", "a", agent.port)).unwrap(),
            )
            .await
            .unwrap();
        nodes
            .create(
                &PostParams::default(),
                &serde_json::from_value(node_object("n2", "b", 0)).unwrap(),
            )
            .await
            .unwrap();
        for pod in [
            pod_object("single", "n1", &["app"], json!({}), None),
            pod_object("multi", "n1", &["a", "b", "waiting"], json!({}), None),
            pod_object("pending", "", &["app"], json!({}), None),
            pod_object("far", "n2", &["app"], json!({}), None),
            pod_object("lost", "n9", &["app"], json!({}), None),
        ] {
            let mut pod = pod;
            if pod["metadata"]["name"] == "multi" {
                pod["spec"]["initContainers"] = json!([{"name": "init", "image": "busybox"}]);
            }
            create(&admin, "/api/v1/namespaces/default/pods", pod).await;
        }
        agent
    });

    // The lines, through the proxy, with the server's agent-client identity.
    let out = s.ok(&["logs", "single"]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        (1..=5)
            .map(|i| format!("default/single/app line {i}"))
            .collect::<Vec<_>>()
    );
    let out = s.ok(&["logs", "single", "--tail=2", "--timestamps"]);
    assert_eq!(
        out,
        "default/single/app line 4\ndefault/single/app line 5\n"
    );
    let out = s.ok(&[
        "logs",
        "multi",
        "-c",
        "b",
        "--since=1h",
        "--limit-bytes=1000",
    ]);
    assert!(out.starts_with("default/multi/b line 1"), "{out}");
    {
        let seen = agent.seen.lock().unwrap();
        assert_eq!(seen.requests[0], "/containerLogs/default/single/app");
        assert_eq!(
            seen.requests[1],
            "/containerLogs/default/single/app?timestamps=true&tailLines=2"
        );
        assert_eq!(
            seen.requests[2],
            "/containerLogs/default/multi/b?sinceSeconds=3600&limitBytes=1000"
        );
        assert!(
            seen.users
                .iter()
                .all(|u| u == "system:kube-apiserver-kubelet-client"),
            "{:?}",
            seen.users
        );
        assert_eq!(seen.users.len(), 3);
    }
    // That token is good for nothing against the API itself.
    let token = agent.seen.lock().unwrap().token.clone();
    let out = s.kubectl(&["--token", &token, "get", "pods"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("credential for node agents"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Errors as kube-apiserver gives them.
    let err = s.fails(&["get", "--raw", "/api/v1/namespaces/default/pods/multi/log"]);
    assert!(
        err.contains(
            "a container name must be specified for pod multi, choose one of: [init a b waiting]"
        ),
        "{err}"
    );
    let err = s.fails(&["logs", "multi", "-c", "c"]);
    assert!(
        err.contains("container c is not valid for pod multi"),
        "{err}"
    );
    let err = s.fails(&["logs", "nope"]);
    assert!(err.contains("pods \"nope\" not found"), "{err}");
    let err = s.fails(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/single/log?tailLines=-1",
    ]);
    assert!(err.contains("tailLines"), "{err}");
    // An unbound pod has no logs yet: nothing, and success (204).
    assert_eq!(s.ok(&["logs", "pending"]), "");
    // Nodes whose agent cannot be found.
    let err = s.fails(&["logs", "far"]);
    assert!(
        err.contains("no status.daemonEndpoints.kubeletEndpoint.Port"),
        "{err}"
    );
    let err = s.fails(&["logs", "lost"]);
    assert!(err.contains("nodes \"n9\" not found"), "{err}");
    // The agent's error, passed on.
    let err = s.fails(&["logs", "multi", "-c", "waiting"]);
    assert!(
        err.contains(
            "container \"waiting\" in pod \"multi\" is waiting to start: ContainerCreating"
        ),
        "{err}"
    );
    assert!(err.contains("BadRequest"), "{err}");

    // Follow: lines arrive as the agent writes them; when kubectl goes away, the
    // connection to the agent is closed.
    let mut child = s
        .command(&["logs", "-f", "single"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    for i in 0..5 {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a followed line");
        assert_eq!(line, format!("tick {i}"));
    }
    // Five lines 100 ms apart, streamed rather than at the end.
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(agent.streams.load(Ordering::SeqCst), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while agent.streams.load(Ordering::SeqCst) != 0 {
        assert!(
            Instant::now() < deadline,
            "the agent's stream was not closed after kubectl left"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(agent);
}
