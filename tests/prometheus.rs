//! The API server's `/metrics` scraped by a real Prometheus (Debian's `prometheus`, which
//! `make deps` installs): `plimsoll server` and `prometheus` run as processes on loopback
//! ports with directories of their own, Prometheus scrapes over HTTPS with the cluster CA
//! and the admin token, and the test asks Prometheus (PromQL over its HTTP API) for the
//! requests and objects it made. Both processes are stopped by their pids and the
//! directories removed, pass or fail.

mod support;

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, TempDir};

/// A child process killed (by its pid) and reaped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `plimsoll server` on a loopback port; its data directory is `dir/data`.
fn start_server(dir: &Path) -> (Running, u16) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(["server", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting plimsoll server");
    (Running(child), port)
}

/// Prometheus scraping `127.0.0.1:api_port` every second; logs to `dir/prometheus.log`.
fn start_prometheus(dir: &Path, data: &Path, api_port: u16) -> (Running, u16) {
    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: plimsoll\n    scheme: https\n    metrics_path: /metrics\n\
             \x20   tls_config:\n      ca_file: {ca}\n\
             \x20   authorization:\n      credentials_file: {token}\n\
             \x20   static_configs:\n      - targets: ['127.0.0.1:{api_port}']\n",
            ca = data.join("tls/ca.crt").display(),
            token = data.join("admin.token").display(),
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `prometheus` ({e}): install it with `make deps` \
                 (Debian package prometheus)"
            )
        });
    (Running(child), port)
}

/// A GET on Prometheus's HTTP API (plain HTTP/1.0, so the body ends with the
/// connection); the parsed JSON body, or None if Prometheus does not answer yet.
fn prometheus_get(port: u16, path_and_query: &str) -> Option<Value> {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        conn,
        "GET {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    conn.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    serde_json::from_str(body).ok()
}

/// Percent-encodes a PromQL expression for a query string.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of an instant PromQL query with one series (None: no series yet).
fn query(port: u16, promql: &str) -> Option<f64> {
    let v = prometheus_get(port, &format!("/api/v1/query?query={}", encode(promql)))?;
    let result = v["data"]["result"].as_array()?;
    match result.as_slice() {
        [one] => one["value"][1].as_str()?.parse().ok(),
        _ => None,
    }
}

/// Polls `promql` until it equals `want` (the scrape every second catches up); panics
/// with the last value and Prometheus's log otherwise.
fn expect_value(port: u16, promql: &str, want: f64, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        last = query(port, promql);
        if last == Some(want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!(
        "Prometheus: {promql} = {last:?}, expected {want}\nprometheus log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Waits until Prometheus reports its one target up.
fn wait_target_up(port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Some(v) = prometheus_get(port, "/api/v1/targets") {
            if v["data"]["activeTargets"][0]["health"] == "up" {
                return;
            }
            last = v;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!(
        "Prometheus never had its target up: {last}\nprometheus log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

async fn client_for(kubeconfig: &PathBuf) -> kube::Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kubeconfig.exists() {
        assert!(
            Instant::now() < deadline,
            "plimsoll server wrote no kubeconfig"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    while client.apiserver_version().await.is_err() {
        assert!(Instant::now() < deadline, "plimsoll server did not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap()
}

#[test]
fn prometheus_scrapes_requests_objects_and_watchers() {
    use kube::api::{Api, ListParams, PostParams, WatchParams};
    const PODS: usize = 5;
    let dir = TempDir::new("prometheus");
    let data = dir.join("data");
    let (_server, api_port) = start_server(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = rt.block_on(client_for(&data.join("admin.kubeconfig")));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // A watch that stays open for a while, then ends on its own (timeoutSeconds).
    let watch = rt.block_on(async {
        let mut watch = Box::pin(
            pods.watch(&WatchParams::default().timeout(30), "0")
                .await
                .unwrap(),
        );
        for i in 0..PODS {
            pods.create(&PostParams::default(), &pod(&format!("p{i}")))
                .await
                .unwrap();
        }
        assert_eq!(
            pods.list(&ListParams::default()).await.unwrap().items.len(),
            PODS
        );
        // A create of an existing name is counted with its 409.
        let err = pods
            .create(&PostParams::default(), &pod("p0"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, kube::Error::Api(ref s) if s.code == 409),
            "{err}"
        );
        // One event read, so the watch is surely registered.
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(watch.as_mut(), cx))
            .await
            .expect("a watch event")
            .unwrap();
        // The admin may read /metrics directly too.
        let req = axum::http::Request::get("/metrics")
            .body(Vec::new())
            .unwrap();
        let text = client.request_text(req).await.unwrap();
        assert!(text.contains("apiserver_request_total{"), "{text}");
        watch
    });

    let (_prometheus, prom_port) = start_prometheus(&dir, &data, api_port);
    let log = dir.join("prometheus.log");
    wait_target_up(prom_port, &log);
    expect_value(prom_port, r#"up{job="plimsoll"}"#, 1.0, &log);
    expect_value(
        prom_port,
        r#"sum(apiserver_request_total{resource="pods",verb="POST",code="201"})"#,
        PODS as f64,
        &log,
    );
    expect_value(
        prom_port,
        r#"sum(apiserver_request_total{resource="pods",verb="POST",code="409"})"#,
        1.0,
        &log,
    );
    // At least our list (in-process controllers and the scheduler list pods too).
    expect_value(
        prom_port,
        r#"sum(apiserver_request_total{resource="pods",verb="LIST",code="200"}) >= bool 1"#,
        1.0,
        &log,
    );
    expect_value(
        prom_port,
        r#"apiserver_storage_objects{resource="pods"}"#,
        PODS as f64,
        &log,
    );
    // default, kube-system, kube-public, kube-node-lease.
    expect_value(
        prom_port,
        r#"apiserver_storage_objects{resource="namespaces"}"#,
        4.0,
        &log,
    );
    // Our watch, and any of the in-process controllers and scheduler.
    expect_value(
        prom_port,
        r#"apiserver_registered_watchers{resource="pods"} >= bool 1"#,
        1.0,
        &log,
    );
    let open = query(
        prom_port,
        r#"apiserver_registered_watchers{resource="pods"}"#,
    )
    .unwrap();
    expect_value(
        prom_port,
        r#"sum(apiserver_request_duration_seconds_count{resource="pods",verb="POST"})"#,
        (PODS + 1) as f64,
        &log,
    );
    // Prometheus's own scrapes are counted too.
    assert!(
        query(
            prom_port,
            r#"sum(apiserver_request_total{resource="",verb="GET",code="200"})"#
        )
        .unwrap_or(0.0)
            >= 1.0
    );

    // The in-process scheduler's own series: the pods have no node to go to, so each was
    // judged unschedulable at least once and is still pending.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let attempts = query(
            prom_port,
            r#"sum(scheduler_schedule_attempts_total{result="unschedulable"})"#,
        )
        .unwrap_or(0.0);
        let pending = query(prom_port, "scheduler_pending_pods").unwrap_or(0.0);
        if attempts >= PODS as f64 && pending == PODS as f64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "scheduler series: {attempts} unschedulable attempts, {pending} pending"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // The watch ends (timeoutSeconds), and so does its count; so do deleted pods.
    rt.block_on(async {
        pods.delete("p0", &Default::default()).await.unwrap();
    });
    expect_value(
        prom_port,
        r#"apiserver_storage_objects{resource="pods"}"#,
        (PODS - 1) as f64,
        &log,
    );
    expect_value(
        prom_port,
        r#"apiserver_registered_watchers{resource="pods"}"#,
        open - 1.0,
        &log,
    );
    drop(watch);
}
