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

fn errors_of(report: &Value) -> u64 {
    report["errors"]["total"]
        .as_u64()
        .or_else(|| report["failed"].as_u64())
        .unwrap_or_else(|| panic!("no error count in {report}"))
}

/// GET `url` with a plain HTTP/1.0 request (std only); the body.
fn http_get(url_host: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(
        &url_host.parse().ok()?,
        Duration::from_secs(2),
    )
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
    let c = Cluster::start_on_hosts("article", &NODES, &[], &[]);
    build_app_image(&c, "v1");

    // Every node got a pod CIDR of its own.
    let nodes = c.json(&["get", "nodes"]);
    let mut cidrs = BTreeMap::new();
    for n in nodes["items"].as_array().unwrap() {
        let cidr = n["spec"]["podCIDR"].as_str().expect("a podCIDR").to_string();
        assert!(cidr.starts_with("10.244.") && cidr.ends_with(".0/24"), "{cidr}");
        cidrs.insert(name_of(n), cidr);
    }
    assert_eq!(cidrs.len(), 3);
    assert_eq!(cidrs.values().collect::<BTreeSet<_>>().len(), 3, "{cidrs:?}");

    c.apply(&app_manifest(&[]));
    let pods = ready_pods(&c, "app=hello", 3, 90);
    let mut ips = BTreeSet::new();
    for p in &pods {
        let node = node_of(p);
        let ip = p["status"]["podIP"].as_str().unwrap().to_string();
        let prefix = cidrs[&node].trim_end_matches("0/24");
        assert!(ip.starts_with(prefix), "pod IP {ip} outside {node}'s {}", cidrs[&node]);
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
        script.push_str(&format!("wget -q -T 5 -O - http://{ip}:8080/ | head -1; "));
    }
    script.push_str(&format!(
        "for i in 1 2 3 4 5 6 7 8 9; do wget -q -T 5 -O - http://{cluster_ip}/ | head -1; done"
    ));
    let logs = run_pod(&c, "prober", "n1", &script);
    let mut direct = BTreeSet::new();
    for line in logs.lines().take(3) {
        direct.insert(line.trim_start_matches("hello from ").to_string());
    }
    assert_eq!(direct, names, "pod-to-pod answers: {logs}");
    let via_service: Vec<&str> = logs.lines().skip(3).collect();
    assert_eq!(via_service.len(), 9, "{logs}");
    assert!(via_service.iter().all(|l| l.starts_with("hello from hello-")), "{logs}");

    // A pod cannot use the API server without a token: anonymous requests are refused.
    let api = format!("https://{}:{}/api/v1/secrets", c.server_ip(), c.port);
    let logs = run_pod(
        &c,
        "anonymous",
        "n2",
        &format!("wget --no-check-certificate -q -T 5 -O - {api} 2>&1; echo exit=$?"),
    );
    // The server is reachable from the pod (TLS handshake and an HTTP answer), and the
    // answer is 401.
    assert!(logs.contains("401"), "expected a 401 from the API server: {logs}");
    assert!(!logs.contains("hello-secret"), "{logs}");
    assert!(!logs.contains("exit=0"), "an anonymous pod read secrets: {logs}");
}
