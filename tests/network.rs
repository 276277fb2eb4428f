//! The pod network, Services and the article's application across three hosts (network
//! namespaces joined by a test network; see tests/support/hosts.rs): real `plimsoll
//! server`, real `plimsoll agent` processes (one per host, process runtime), the real
//! `kubectl`, and `plimsoll loadgen` as the outside client.
//!
//! Needs root (namespaces, cgroups), `ip` and `nsenter`.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/images.rs"]
mod images;
mod support;

use cluster::{is_ready, name_of, node_of, Cluster, BIN};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NODES: [&str; 3] = ["n1", "n2", "n3"];

fn example_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/article-app")
}

/// Builds the article's image `hello-app:TAG` (the busybox root filesystem with
/// examples/article-app/www and the Dockerfile's CMD) as an OCI archive and imports it
/// with `plimsoll image import`, as a user of the process runtime would.
fn build_app_image(c: &Cluster, tag: &str) {
    let scratch = images::Scratch::new("hello-app");
    let base = scratch.join("base");
    images::busybox_rootfs(&base);
    let app = scratch.join("app");
    std::fs::create_dir_all(app.join("www/cgi-bin")).unwrap();
    for f in ["www/healthz.txt", "www/cgi-bin/index.cgi"] {
        std::fs::copy(example_dir().join(f), app.join(f)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        app.join("www/cgi-bin/index.cgi"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let layers = vec![
        images::gzip(&images::tar_of_dir(&base)),
        images::gzip(&images::tar_of_dir(&app)),
    ];
    let spec = images::ImageSpec::cmd(&["httpd", "-f", "-p", "8080", "-h", "/www"]);
    let config = images::config_json(&spec, &layers);
    let name = format!("hello-app:{tag}");
    let files = images::oci_layout_files(Some(&name), &config, &layers);
    let archive = scratch.join("hello-app.tar");
    images::write_tar(&archive, &files);
    let out = Command::new(BIN)
        .args(["image", "import"])
        .arg(&archive)
        .args(["--name", &name, "--image-dir"])
        .arg(c.dir.join("images"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "image import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The article's manifests with `replace` applied.
fn app_manifest(replace: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(example_dir().join("app.yaml")).unwrap();
    for (from, to) in replace {
        assert!(text.contains(from), "app.yaml has no {from:?}");
        text = text.replace(from, to);
    }
    text
}

fn ready_pods(c: &Cluster, selector: &str, n: usize, secs: u64) -> Vec<Value> {
    c.eventually(secs, &format!("{n} ready pods {selector}"), || {
        let pods = c.pods(selector);
        (pods.len() == n && pods.iter().all(is_ready)).then_some(pods)
    })
}

/// The Service's `status.loadBalancer.ingress` IPs once set (sorted).
fn ingress_ips(c: &Cluster, svc: &str, n: usize) -> Vec<String> {
    c.eventually(30, &format!("{n} ingress IPs of {svc}"), || {
        let s = c.json(&["get", "svc", svc]);
        let ips: Vec<String> = s["status"]["loadBalancer"]["ingress"]
            .as_array()?
            .iter()
            .filter_map(|i| i["ip"].as_str().map(str::to_string))
            .collect();
        (ips.len() == n).then_some(ips)
    })
}

/// `plimsoll loadgen` against `url`; its JSON report.
fn loadgen(url: &str, rate: u32, secs: u32) -> Value {
    let out = Command::new(BIN)
        .args([
            "loadgen",
            url,
            "--rate",
            &rate.to_string(),
            "--duration",
            &secs.to_string(),
            "--json",
        ])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "loadgen failed");
    serde_json::from_slice(&out.stdout).expect("loadgen JSON")
}

/// `plimsoll loadgen` started in the background; its JSON report on `finish`.
struct Load(std::process::Child);

impl Load {
    fn start(url: &str, rate: u32, secs: u32) -> Load {
        Load(
            Command::new(BIN)
                .args([
                    "loadgen",
                    url,
                    "--rate",
                    &rate.to_string(),
                    "--duration",
                    &secs.to_string(),
                    "--json",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
        )
    }

    fn finish(self) -> Value {
        let out = self.0.wait_with_output().unwrap();
        assert!(out.status.success(), "loadgen failed");
        serde_json::from_slice(&out.stdout).expect("loadgen JSON")
    }
}

/// Failed requests of a loadgen report.
fn errors_of(report: &Value) -> u64 {
    report["requests"].as_u64().unwrap() - report["ok"].as_u64().unwrap()
}

fn p99_of(report: &Value) -> f64 {
    report["latency_ms"]["p99"]
        .as_f64()
        .unwrap_or(f64::INFINITY)
}

/// The heavy tests (several hosts under load) one at a time: the machine has two cores.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// GET `url` with a plain HTTP/1.0 request (std only); the body.
fn http_get(url_host: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect_timeout(&url_host.parse().ok()?, Duration::from_secs(2))
            .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    if !buf.starts_with("HTTP/1.") || !buf[..buf.find('\n')?].contains(" 200") {
        return None;
    }
    Some(buf.split_once("\r\n\r\n")?.1.to_string())
}

/// A pod on `node` running `script` to completion; its logs.
fn run_pod(c: &Cluster, name: &str, node: &str, script: &str) -> String {
    let yaml = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeName: {node}
  restartPolicy: Never
  containers:
  - name: c
    image: hello-app:v1
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", {script:?}]
"#
    );
    c.apply(&yaml);
    c.eventually(60, &format!("pod {name} done"), || {
        let p = c.json(&["get", "pod", name]);
        matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")).then_some(())
    });
    let logs = c.ok(&["logs", name]);
    c.ok(&["delete", "pod", name, "--grace-period=0", "--wait=false"]);
    logs
}

#[test]
fn article_app_across_three_hosts() {
    let _heavy = heavy();
    let c = Cluster::start_on_hosts("article", &NODES, &[], &[]);
    build_app_image(&c, "v1");

    // Every node got a pod CIDR of its own.
    let nodes = c.json(&["get", "nodes"]);
    let mut cidrs = BTreeMap::new();
    for n in nodes["items"].as_array().unwrap() {
        let cidr = n["spec"]["podCIDR"]
            .as_str()
            .expect("a podCIDR")
            .to_string();
        let cluster_cidr = c.net.as_ref().unwrap().cluster_cidr();
        let prefix = cluster_cidr.trim_end_matches("0.0/16");
        assert!(
            cidr.starts_with(prefix) && cidr.ends_with(".0/24"),
            "{cidr} in {cluster_cidr}"
        );
        cidrs.insert(name_of(n), cidr);
    }
    assert_eq!(cidrs.len(), 3);
    assert_eq!(
        cidrs.values().collect::<BTreeSet<_>>().len(),
        3,
        "{cidrs:?}"
    );

    c.apply(&app_manifest(&[]));
    let pods = ready_pods(&c, "app=hello", 3, 90);
    let mut ips = BTreeSet::new();
    for p in &pods {
        let node = node_of(p);
        let ip = p["status"]["podIP"].as_str().unwrap().to_string();
        let prefix = cidrs[&node].trim_end_matches("0/24");
        assert!(
            ip.starts_with(prefix),
            "pod IP {ip} outside {node}'s {}",
            cidrs[&node]
        );
        assert_eq!(p["status"]["hostIP"], c.host(&node).ip.as_str());
        ips.insert(ip);
    }
    assert_eq!(ips.len(), 3, "pod IPs must differ: {ips:?}");
    let on: BTreeSet<String> = pods.iter().map(node_of).collect();
    assert_eq!(on.len(), 3, "one replica per node (kube-default spreads)");

    // The Job runs to completion.
    c.eventually(60, "the Job complete", || {
        let j = c.json(&["get", "job", "hello-setup"]);
        (j["status"]["succeeded"].as_i64() == Some(1)).then_some(())
    });
    let job_logs = c.ok(&["logs", "job/hello-setup"]);
    assert!(job_logs.contains("preparing hello, world"), "{job_logs}");

    // The Service: a ClusterIP, a nodePort, and an EXTERNAL-IP per node (ServiceLB).
    let svc = c.json(&["get", "svc", "hello"]);
    let cluster_ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert!(cluster_ip.starts_with("10.43."), "{cluster_ip}");
    let node_port = svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    let external = ingress_ips(&c, "hello", 3);
    let host_ips: BTreeSet<String> = NODES.iter().map(|n| c.host(n).ip.clone()).collect();
    assert_eq!(external.iter().cloned().collect::<BTreeSet<_>>(), host_ips);
    let table = c.ok(&["get", "svc", "hello"]);
    for ip in &external {
        assert!(table.contains(ip.as_str()), "EXTERNAL-IP column: {table}");
    }

    // curl the external IP on port 80 from the test host: answers from all 3 replicas,
    // with the ConfigMap's greeting and the Secret mounted.
    let names: BTreeSet<String> = pods.iter().map(name_of).collect();
    for ip in &external {
        let mut seen = BTreeSet::new();
        for _ in 0..30 {
            let body = c.eventually(20, &format!("an answer from {ip}:80"), || {
                http_get(&format!("{ip}:80"), "/")
            });
            assert!(body.contains("greeting: hello, world"), "{body}");
            assert!(body.contains("secret: mounted"), "{body}");
            let first = body.lines().next().unwrap_or_default();
            seen.insert(first.trim_start_matches("hello from ").to_string());
        }
        assert_eq!(seen, names, "answers through {ip}:80 from every replica");
        // The nodePort answers too.
        assert!(http_get(&format!("{ip}:{node_port}"), "/healthz.txt").is_some());
    }

    // Inside the cluster: a pod on n1 reaches every replica by pod IP (two of them on
    // other hosts, through the test network) and the Service by its ClusterIP.
    let mut script = String::new();
    for ip in &ips {
        script.push_str(&format!(
            "timeout 5 wget -q -O - http://{ip}:8080/ | head -1; "
        ));
    }
    script.push_str(&format!(
        "for i in 1 2 3 4 5 6 7 8 9; do timeout 5 wget -q -O - http://{cluster_ip}/ | head -1; done"
    ));
    let logs = run_pod(&c, "prober", "n1", &script);
    let mut direct = BTreeSet::new();
    for line in logs.lines().take(3) {
        direct.insert(line.trim_start_matches("hello from ").to_string());
    }
    assert_eq!(direct, names, "pod-to-pod answers: {logs}");
    let via_service: Vec<&str> = logs.lines().skip(3).collect();
    assert_eq!(via_service.len(), 9, "{logs}");
    assert!(
        via_service
            .iter()
            .all(|l| l.starts_with("hello from hello-")),
        "{logs}"
    );

    // A pod cannot use the API server without a token: the server is reachable from a
    // pod (the TLS handshake gets an answer; busybox's TLS knows too few cipher suites
    // to finish it), no service-account token is mounted into pods, and a request
    // without one is refused with 401.
    let api = format!("https://{}:{}/api/v1/secrets", c.server_ip(), c.port);
    let logs = run_pod(
        &c,
        "anonymous",
        "n2",
        &format!(
            "ls /var/run/secrets/kubernetes.io/serviceaccount 2>&1; \
             timeout 5 wget --no-check-certificate -q -O - {api} 2>&1; echo exit=$?"
        ),
    );
    assert!(
        logs.contains("No such file or directory"),
        "a token is mounted: {logs}"
    );
    assert!(
        logs.contains("TLS") || logs.contains("401"),
        "the API server did not answer the pod: {logs}"
    );
    assert!(!logs.contains("hello-secret"), "{logs}");
    let out = Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", &api])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "401",
        "anonymous request"
    );
}

/// Faults across hosts, one after another on one cluster, with the article's app behind
/// its LoadBalancer and `plimsoll loadgen` as the outside client (on n1's address):
/// the server killed under 1,000 requests/s, a rolling update under load, a host cut
/// off and returning.
#[test]
fn faults_across_hosts() {
    let _heavy = heavy();
    let mut c = Cluster::start_on_hosts("faults", &NODES, &[], &[]);
    build_app_image(&c, "v1");
    c.apply(&app_manifest(&[]));
    ready_pods(&c, "app=hello", 3, 90);
    let lb = ingress_ips(&c, "hello", 3)[0].clone();
    assert_eq!(lb, c.host("n1").ip);
    let static_url = format!("http://{lb}:80/healthz.txt");
    let app_url = format!("http://{lb}:80/");
    // Every proxy has the endpoints before the load starts.
    c.eventually(20, "the Service answering", || {
        http_get(&format!("{lb}:80"), "/healthz.txt")
    });

    // 1. kill -9 of the server at 1,000 requests/s: the data path does not need it.
    let load = Load::start(&static_url, 1000, 12);
    std::thread::sleep(Duration::from_secs(3));
    c.kill_server();
    std::thread::sleep(Duration::from_secs(4));
    c.start_server();
    let report = load.finish();
    println!("server kill at 1000 req/s: {report}");
    assert_eq!(
        errors_of(&report),
        0,
        "requests failed while the server was down: {report}"
    );
    assert!(
        report["achieved_rate"].as_f64().unwrap() >= 900.0,
        "{report}"
    );

    // 2. A rolling update under load: readiness, preStop and the proxies' draining
    // together lose no request.
    let load = Load::start(&app_url, 100, 25);
    std::thread::sleep(Duration::from_secs(2));
    c.ok(&["set", "env", "deployment/hello", "GREETING=hello again"]);
    c.ok(&["rollout", "status", "deployment/hello", "--timeout", "90s"]);
    let report = load.finish();
    println!("rolling update at 100 req/s: {report}");
    assert_eq!(
        errors_of(&report),
        0,
        "requests failed during the rollout: {report}"
    );
    let pods = ready_pods(&c, "app=hello", 3, 60);
    for p in &pods {
        let env = p["spec"]["containers"][0]["env"].to_string();
        assert!(env.contains("hello again"), "an old pod is left: {env}");
    }

    // 3. A host cut off the network: its pods are replaced on the others after the
    // grace period; the Service keeps answering (no request fails for longer than the
    // grace period + 5 s); when the host returns its stale pods are stopped: 3 copies,
    // no more. The host cut off runs a replica and is not n1 (the client's entry point).
    let victim = ["n3", "n2"]
        .into_iter()
        .find(|n| pods.iter().any(|p| node_of(p) == *n))
        .expect("a replica off n1");
    let stale_uids: Vec<String> = pods
        .iter()
        .filter(|p| node_of(p) == victim)
        .map(cluster::uid_of)
        .collect();
    let load = Load::start(&app_url, 50, 30);
    std::thread::sleep(Duration::from_secs(3));
    let cut = Instant::now();
    c.net.as_ref().unwrap().set_connected(victim, false);
    let replaced = c.eventually(60, &format!("{victim}'s replicas replaced"), || {
        let pods = c.pods("app=hello");
        let ready = pods
            .iter()
            .filter(|p| is_ready(p) && node_of(p) != victim)
            .count();
        (ready == 3).then_some(cut.elapsed())
    });
    println!("{victim} cut off: 3 ready replicas elsewhere after {replaced:?}");
    std::thread::sleep(Duration::from_secs(8));
    c.net.as_ref().unwrap().set_connected(victim, true);
    let report = load.finish();
    println!("{victim} cut off at 50 req/s: {report}");
    let grace = cluster::NODE_GRACE as f64 + 5.0;
    if let Some(w) = report["longest_failure_window"].as_object() {
        let secs = w["seconds"].as_f64().unwrap();
        assert!(
            secs <= grace,
            "requests failed for {secs} s (> grace + 5 s): {report}"
        );
    }
    // Back on the network: the stale pods' processes stop, the Deployment has 3 pods.
    c.eventually(60, &format!("{victim}'s stale pods stopped"), || {
        stale_uids
            .iter()
            .all(|u| cluster::pod_pids(u).is_empty())
            .then_some(())
    });
    c.eventually(30, "exactly 3 hello pods", || {
        let pods = c.pods("app=hello");
        (pods.len() == 3 && pods.iter().all(is_ready)).then_some(())
    });
}

/// The load-aware balancer measured: a Service over 3 replicas, one per node, nodes of
/// 500m CPU each (enforced on each node's cgroup), n3 loaded by a CPU burner; the same
/// open-loop load through n1's LoadBalancer address under each mode, in one run.
/// Prints the table recorded in BENCHMARKS.md.
#[test]
fn load_aware_balancing() {
    let _heavy = heavy();
    let c = Cluster::start_on_hosts("balancing", &NODES, &[], &["--cpu", "500m"]);
    build_app_image(&c, "v1");
    c.apply(&app_manifest(&[("WORK: \"0\"", "WORK: \"400\"")]));
    ready_pods(&c, "app=hello", 3, 90);
    let on: BTreeSet<String> = c.pods("app=hello").iter().map(node_of).collect();
    assert_eq!(on.len(), 3, "one replica per node");
    c.apply(
        r#"apiVersion: v1
kind: Pod
metadata: {name: noisy-neighbour}
spec:
  nodeName: n3
  terminationGracePeriodSeconds: 1
  containers:
  - name: burn
    image: hello-app:v1
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "while :; do :; done"]
    resources:
      requests: {cpu: 100m, memory: 16Mi}
"#,
    );
    // The burner's usage reaches the server's history (two samples make a rate).
    c.eventually(60, "the burner's usage in kubectl top", || {
        let top = cluster::top_pods(&c);
        (top.get("noisy-neighbour").copied().unwrap_or(0) >= 150).then_some(())
    });
    let lb = c.host("n1").ip.clone();
    let url = format!("http://{lb}:80/");
    let mut results = Vec::new();
    for mode in ["round-robin", "least-connections", "predicted"] {
        c.ok(&[
            "annotate",
            "--overwrite",
            "svc/hello",
            &format!("plimsoll.io/load-balancing={mode}"),
        ]);
        // The proxies apply it, and the predictor refreshes (2 s).
        std::thread::sleep(Duration::from_secs(5));
        let report = loadgen(&url, 40, 30);
        println!("{mode}: {report}");
        results.push((mode, report));
    }
    println!(
        "| mode | requests | errors | p50 ms | p90 ms | p99 ms | max ms | answers per replica |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for (mode, r) in &results {
        let l = &r["latency_ms"];
        println!(
            "| {mode} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            r["requests"],
            errors_of(r),
            l["p50"].as_f64().unwrap_or(0.0),
            l["p90"].as_f64().unwrap_or(0.0),
            l["p99"].as_f64().unwrap_or(0.0),
            l["max"].as_f64().unwrap_or(0.0),
            r["bodies"]
        );
    }
    let rr = &results[0].1;
    let predicted = &results[2].1;
    assert!(
        errors_of(predicted) <= errors_of(rr),
        "predicted had more errors than round robin"
    );
    assert!(
        p99_of(predicted) <= 0.7 * p99_of(rr),
        "predicted p99 {} ms is not 30% below round robin's {} ms",
        p99_of(predicted),
        p99_of(rr)
    );
}

/// The Docker runtime gives pods the same addressing: a Docker network per node on its
/// pod CIDR and a sandbox per pod whose network the pod's containers share.
#[test]
fn docker_runtime_gives_pods_addresses_from_the_node_cidr() {
    if !images::docker_available() {
        panic!("the Docker Engine is needed (the machines of this project run one)");
    }
    let _heavy = heavy();
    let cidr = format!("10.{}.0.0/16", 200 + std::process::id() % 50);
    let c = Cluster::start_with(
        "dockernet",
        cluster::Runtime::Docker,
        &["d1"],
        &["--policy", "kube-default", "--cluster-cidr", &cidr],
    );
    let node = c.json(&["get", "node", "d1"]);
    let node_cidr = node["spec"]["podCIDR"].as_str().unwrap().to_string();
    let yaml = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: pair}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: server
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /w && echo from-the-server > /w/i && httpd -f -p 8080 -h /w"]
  - name: client
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "while ! wget -q -O - http://127.0.0.1:8080/i; do sleep 1; done; sleep 3600"]
"#,
        image = c.image
    );
    c.apply(&yaml);
    let ip = c.eventually(90, "the pair running with a pod IP", || {
        let p = c.json(&["get", "pod", "pair"]);
        (p["status"]["phase"] == "Running")
            .then(|| p["status"]["podIP"].as_str().map(str::to_string))
            .flatten()
    });
    let prefix = node_cidr.trim_end_matches("0/24");
    assert!(ip.starts_with(prefix), "pod IP {ip} outside {node_cidr}");
    c.eventually(60, "the client reached the server on localhost", || {
        let out = c.kubectl(&["logs", "pair", "-c", "client"]);
        String::from_utf8_lossy(&out.stdout)
            .contains("from-the-server")
            .then_some(())
    });
}
