//! The node agent's service proxy (`plimsoll::agent::proxy`), run in-process against a
//! real `plimsoll server` process (API server only: `--no-controllers`, so the
//! Endpoints these tests write by hand stay as written), with small TCP, UDP and HTTP
//! backends on loopback ports that answer with their name. The proxy listens on
//! nodePorts and ServiceLB ports of `127.0.0.1` (and on ClusterIPs when the server
//! takes `--service-cidr`, with `127.77.0.0/16`); `plimsoll loadgen` is run as a
//! process. Every test stops its server by pid and removes its directory.

mod support;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use plimsoll::agent::proxy::{self, NoVirtualIps, ProxyConfig, VirtualIps};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use support::{free_port, TempDir};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

const BIN: &str = env!("CARGO_BIN_EXE_plimsoll");
const NODE_TOKEN: &str = "proxy-test-node-token";
const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Whether this server build takes `--service-cidr` (the ClusterIP test needs it).
fn has_service_cidr() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        let out = Command::new(BIN)
            .args(["server", "--help"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("--service-cidr")
    })
}

/// A running `plimsoll server` (API server only) with a node identity `n1`.
struct Server {
    child: Child,
    dir: TempDir,
}

impl Server {
    fn start(name: &str) -> Server {
        let dir = TempDir::new(&format!("proxy-{name}"));
        std::fs::write(
            dir.join("tokens.csv"),
            format!("{NODE_TOKEN},system:node:n1,n1,system:nodes\n"),
        )
        .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["server", "--data-dir"])
            .arg(dir.join("data"))
            .args(["--listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--no-controllers", "--no-scheduler", "--tokens"])
            .arg(dir.join("tokens.csv"));
        if has_service_cidr() {
            cmd.args(["--service-cidr", "127.77.0.0/16"]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
            .spawn()
            .expect("starting plimsoll server");
        let s = Server { child, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !s.kubeconfig().exists() || !s.dir.join("data/admin.token").exists() {
            assert!(Instant::now() < deadline, "plimsoll server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(50));
        let admin = std::fs::read_to_string(s.kubeconfig()).unwrap();
        let token = std::fs::read_to_string(s.dir.join("data/admin.token")).unwrap();
        std::fs::write(s.node_kubeconfig(), admin.replace(token.trim(), NODE_TOKEN)).unwrap();
        s
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("data/admin.kubeconfig")
    }

    fn node_kubeconfig(&self) -> PathBuf {
        self.dir.join("n1.kubeconfig")
    }

    async fn client(&self, path: PathBuf) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(path).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.apiserver_version().await.is_err() {
            assert!(Instant::now() < deadline, "plimsoll server not ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        client
    }

    async fn admin(&self) -> kube::Client {
        self.client(self.kubeconfig()).await
    }

    async fn node(&self) -> kube::Client {
        self.client(self.node_kubeconfig()).await
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

/// A port in the default nodePort range (30000-32767) free for TCP and UDP on loopback
/// right now; distinct within this test process.
fn node_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 30000 + (std::process::id() % 2000) as u16;
    loop {
        let p = base + NEXT.fetch_add(1, Ordering::Relaxed) % 700;
        let tcp = std::net::TcpListener::bind((LOCAL, p));
        let udp = std::net::UdpSocket::bind((LOCAL, p));
        if tcp.is_ok() && udp.is_ok() {
            return p;
        }
    }
}

/// A port with nothing listening (for a backend that refuses).
fn closed_port() -> u16 {
    free_port()
}

// ---------------------------------------------------------------------------------------
// Backends.
// ---------------------------------------------------------------------------------------

/// A TCP backend: answers `NAME\n` on every connection, then echoes until EOF.
struct TcpBackend {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpBackend {
    async fn start(name: &str) -> TcpBackend {
        let listener = TcpListener::bind((LOCAL, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (count, name) = (accepted.clone(), format!("{name}\n"));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let name = name.clone();
                tokio::spawn(async move {
                    if s.write_all(name.as_bytes()).await.is_err() {
                        return;
                    }
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                });
            }
        });
        TcpBackend {
            addr,
            accepted,
            task,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for TcpBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTP backend: answers every request `200 NAME\n` and closes.
async fn http_backend(name: &str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = format!("{name}\n");
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                continue;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(s);
                let mut line = String::new();
                loop {
                    line.clear();
                    match r.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let mut s = r.into_inner();
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, task)
}

/// A UDP backend: answers every datagram with `NAME:` and the datagram.
async fn udp_backend(name: &str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = UdpSocket::bind((LOCAL, 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let prefix = format!("{name}:");
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            let mut reply = prefix.clone().into_bytes();
            reply.extend_from_slice(&buf[..n]);
            let _ = socket.send_to(&reply, from).await;
        }
    });
    (addr, task)
}

// ---------------------------------------------------------------------------------------
// Clients.
// ---------------------------------------------------------------------------------------

/// Connects (from `from`, if given), reads the backend's name, closes and waits for
/// the close to come back. `None` if the connection fails or closes without a name.
async fn fetch_from(to: SocketAddr, from: Option<Ipv4Addr>) -> Option<String> {
    let s = match from {
        Some(ip) => {
            let sock = TcpSocket::new_v4().ok()?;
            sock.bind(SocketAddr::from((ip, 0))).ok()?;
            sock.connect(to).await.ok()?
        }
        None => TcpStream::connect(to).await.ok()?,
    };
    let mut r = BufReader::new(s);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), r.read_line(&mut line))
        .await
        .ok()?
        .ok()?;
    let mut s = r.into_inner();
    let _ = s.shutdown().await;
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
    let name = line.trim().to_string();
    (!name.is_empty()).then_some(name)
}

async fn fetch(to: SocketAddr) -> Option<String> {
    fetch_from(to, None).await
}

/// Fetches until one answers (the proxy has caught up), at most 20 s.
async fn wait_answer(to: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(name) = fetch(to).await {
            return name;
        }
        assert!(Instant::now() < deadline, "nothing answered on {to}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A held connection: the backend's name and the stream.
async fn hold(to: SocketAddr) -> (String, BufReader<TcpStream>) {
    let mut r = BufReader::new(TcpStream::connect(to).await.unwrap());
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    (line.trim().to_string(), r)
}

/// Writes a line on a held connection and reads the echo.
async fn echo(conn: &mut BufReader<TcpStream>, text: &str) -> Option<String> {
    conn.get_mut()
        .write_all(format!("{text}\n").as_bytes())
        .await
        .ok()?;
    let mut line = String::new();
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read_line(&mut line))
        .await
        .ok()?
        .ok()?;
    (n > 0).then(|| line.trim().to_string())
}

fn tally(names: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for n in names {
        *m.entry(n.clone()).or_default() += 1;
    }
    m
}

// ---------------------------------------------------------------------------------------
// Objects and the proxy.
// ---------------------------------------------------------------------------------------

/// A NodePort Service `name` with one port (`port`, nodePort `node_port`) and no
/// selector; `spec` is merged into its spec, `annotations` are its annotations.
fn service(
    name: &str,
    protocol: &str,
    port: u16,
    node_port: u16,
    spec: Value,
    annotations: Value,
) -> Service {
    let mut s = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": {"type": "NodePort", "ports": [{"name": "p", "port": port, "protocol": protocol,
            "targetPort": port, "nodePort": node_port}]}});
    if let Value::Object(extra) = spec {
        for (k, v) in extra {
            s["spec"][k] = v;
        }
    }
    serde_json::from_value(s).unwrap()
}

/// Endpoints `name` with port `p` on each ready (and not-ready) address.
fn endpoints(name: &str, ready: &[SocketAddr], not_ready: &[SocketAddr]) -> Endpoints {
    let addr = |a: &SocketAddr| json!({"ip": a.ip().to_string(), "nodeName": "n1"});
    // Each address has its own port: one subset per address.
    let mut subsets: Vec<Value> = ready
        .iter()
        .map(|a| json!({"addresses": [addr(a)], "ports": [{"name": "p", "port": a.port()}]}))
        .collect();
    subsets.extend(not_ready.iter().map(
        |a| json!({"notReadyAddresses": [addr(a)], "ports": [{"name": "p", "port": a.port()}]}),
    ));
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": name, "namespace": "default"}, "subsets": subsets}))
    .unwrap()
}

async fn create_service(admin: &kube::Client, svc: &Service) -> Service {
    Api::<Service>::namespaced(admin.clone(), "default")
        .create(&PostParams::default(), svc)
        .await
        .unwrap()
}

async fn put_endpoints(admin: &kube::Client, ep: &Endpoints) {
    let api = Api::<Endpoints>::namespaced(admin.clone(), "default");
    let name = ep.metadata.name.clone().unwrap();
    match api.get_opt(&name).await.unwrap() {
        None => {
            api.create(&PostParams::default(), ep).await.unwrap();
        }
        Some(cur) => {
            let mut next = ep.clone();
            next.metadata.resource_version = cur.metadata.resource_version;
            api.replace(&name, &PostParams::default(), &next)
                .await
                .unwrap();
        }
    }
}

/// The proxy running in-process; stopped when dropped.
struct Proxy {
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl Proxy {
    fn start(client: kube::Client, config: ProxyConfig, vips: Arc<dyn VirtualIps>) -> Proxy {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(proxy::run(client, config, vips, rx));
        Proxy {
            stop,
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.send(true);
        let task = self.task.take().unwrap();
        let r = tokio::time::timeout(Duration::from_secs(10), task).await;
        assert!(
            matches!(r, Ok(Ok(Ok(())))),
            "proxy did not stop cleanly: {r:?}"
        );
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn config() -> ProxyConfig {
    let mut c = ProxyConfig::new("n1", LOCAL.into());
    c.cluster_ips = false;
    c.resync = Duration::from_millis(200);
    c
}

/// Server, admin client, proxy, and `n` TCP backends named `b0`…; a NodePort Service
/// `web` over them with `spec` and `annotations` merged in.
async fn tcp_setup(
    s: &Server,
    n: usize,
    spec: Value,
    annotations: Value,
    cfg: ProxyConfig,
) -> (kube::Client, Proxy, Vec<TcpBackend>, SocketAddr) {
    let admin = s.admin().await;
    let mut backends = Vec::new();
    for i in 0..n {
        backends.push(TcpBackend::start(&format!("b{i}")).await);
    }
    let np = node_port();
    create_service(&admin, &service("web", "TCP", 8080, np, spec, annotations)).await;
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    put_endpoints(&admin, &endpoints("web", &addrs, &[])).await;
    let proxy = Proxy::start(s.node().await, cfg, Arc::new(NoVirtualIps));
    let front = SocketAddr::from((LOCAL, np));
    wait_answer(front).await;
    (admin, proxy, backends, front)
}

// ---------------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------------

#[test]
fn tcp_round_robin_spreads_evenly_over_three_backends() {
    let s = Server::start("rr");
    runtime().block_on(async {
        let (_admin, proxy, backends, front) =
            tcp_setup(&s, 3, json!({}), json!({}), config()).await;
        let mut names = Vec::new();
        for _ in 0..30 {
            names.push(fetch(front).await.expect("an answer through the proxy"));
        }
        assert_eq!(
            tally(&names),
            [
                ("b0".to_string(), 10),
                ("b1".to_string(), 10),
                ("b2".to_string(), 10)
            ]
            .into()
        );
        // Strict rotation.
        for w in names.windows(2) {
            assert_ne!(w[0], w[1], "{names:?}");
        }
        drop(backends);
        proxy.stop().await;
        // Stopped: nothing listens any more.
        assert!(TcpStream::connect(front).await.is_err());
    });
}

/// Least connections, and the predicted mode with no usage history (it falls back to
/// least connections): a backend holding a long connection gets no short ones.
#[test]
fn least_connections_and_predicted_avoid_the_busy_backend() {
    let s = Server::start("lc");
    runtime().block_on(async {
        for (i, mode) in ["least-connections", "predicted"].into_iter().enumerate() {
            let name = format!("web{i}");
            let admin = s.admin().await;
            let backends = [
                TcpBackend::start("b0").await,
                TcpBackend::start("b1").await,
                TcpBackend::start("b2").await,
            ];
            let np = node_port();
            let ann = json!({"plimsoll.io/load-balancing": mode});
            create_service(&admin, &service(&name, "TCP", 8080, np, json!({}), ann)).await;
            let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
            put_endpoints(&admin, &endpoints(&name, &addrs, &[])).await;
            // The node identity may read the usage history the predicted mode uses
            // (empty here: no agent reports, so no prediction).
            let history = plimsoll::server::scheduling::usage::fetch_history(&s.node().await)
                .await
                .expect("the usage history, read as the node");
            assert!(history.pods.is_empty());
            let mut cfg = config();
            cfg.predict_refresh = Duration::from_millis(200);
            let proxy = Proxy::start(s.node().await, cfg, Arc::new(NoVirtualIps));
            let front = SocketAddr::from((LOCAL, np));
            wait_answer(front).await;
            let (busy, mut long) = hold(front).await;
            let mut names = Vec::new();
            for _ in 0..12 {
                names.push(fetch(front).await.expect("an answer"));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let t = tally(&names);
            assert!(
                !t.contains_key(&busy),
                "{mode}: {busy} holds a connection, got {t:?}"
            );
            assert_eq!(
                t.values().copied().collect::<Vec<_>>(),
                [6, 6],
                "{mode}: {t:?}"
            );
            // The long connection still works.
            assert_eq!(
                echo(&mut long, "still here").await.as_deref(),
                Some("still here")
            );
            proxy.stop().await;
        }
    });
}

/// An endpoint that leaves gets no new connections; its open connection goes on until
/// the drain timeout, then is closed. A deleted Service stops listening at once.
#[test]
fn a_removed_endpoint_drains() {
    let s = Server::start("drain");
    runtime().block_on(async {
        let mut cfg = config();
        cfg.drain_timeout = Duration::from_secs(2);
        let (admin, proxy, backends, front) = tcp_setup(&s, 2, json!({}), json!({}), cfg).await;
        let (name, mut long) = hold(front).await;
        let (leaving, staying) = if name == "b0" {
            (&backends[0], &backends[1])
        } else {
            (&backends[1], &backends[0])
        };
        // The held connection's endpoint becomes not ready.
        put_endpoints(&admin, &endpoints("web", &[staying.addr], &[leaving.addr])).await;
        let removed_at = Instant::now();
        // Wait until the proxy has the change: five answers in a row from the other one.
        let mut streak = 0;
        while streak < 5 {
            assert!(
                removed_at.elapsed() < Duration::from_secs(10),
                "the proxy kept the endpoint"
            );
            let got = fetch(front).await.expect("an answer");
            streak = if got == name { 0 } else { streak + 1 };
        }
        let accepted = leaving.accepted();
        for _ in 0..10 {
            assert_ne!(fetch(front).await.expect("an answer"), name);
        }
        assert_eq!(
            leaving.accepted(),
            accepted,
            "no new connection to the leaving endpoint"
        );
        // The existing connection keeps working during the drain…
        assert_eq!(echo(&mut long, "ping").await.as_deref(), Some("ping"));
        // …and is closed at its end (2 s after the proxy saw the change).
        let mut rest = String::new();
        let n = tokio::time::timeout(Duration::from_secs(10), long.read_line(&mut rest))
            .await
            .expect("the draining connection was not closed");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?} {rest:?}");
        let closed_after = removed_at.elapsed();
        assert!(
            closed_after >= Duration::from_millis(1500) && closed_after < Duration::from_secs(8),
            "closed after {closed_after:?}"
        );
        // Service deleted: the listener closes at once (within the watch delay).
        let svc = Api::<Service>::namespaced(admin.clone(), "default");
        svc.delete("web", &DeleteParams::default()).await.unwrap();
        let deleted = Instant::now();
        while TcpStream::connect(front).await.is_ok() {
            assert!(
                deleted.elapsed() < Duration::from_secs(5),
                "still listening"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        proxy.stop().await;
    });
}

#[test]
fn session_affinity_keeps_a_client_ip_on_its_backend() {
    let s = Server::start("affinity");
    runtime().block_on(async {
        let spec = json!({"sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}});
        let (_admin, proxy, _backends, front) = tcp_setup(&s, 3, spec, json!({}), config()).await;
        let mut first = Vec::new();
        let mut second = Vec::new();
        for _ in 0..6 {
            first.push(
                fetch_from(front, Some(Ipv4Addr::new(127, 0, 0, 1)))
                    .await
                    .unwrap(),
            );
            second.push(
                fetch_from(front, Some(Ipv4Addr::new(127, 0, 0, 2)))
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(tally(&first).len(), 1, "{first:?}");
        assert_eq!(tally(&second).len(), 1, "{second:?}");
        assert_ne!(
            first[0], second[0],
            "round robin gives the second client the next backend"
        );
        proxy.stop().await;
    });
}

#[test]
fn a_refusing_backend_is_skipped() {
    let s = Server::start("refused");
    runtime().block_on(async {
        let admin = s.admin().await;
        let (a, b) = (TcpBackend::start("a").await, TcpBackend::start("b").await);
        let refusing = SocketAddr::from((LOCAL, closed_port()));
        let np = node_port();
        create_service(
            &admin,
            &service("web", "TCP", 8080, np, json!({}), json!({})),
        )
        .await;
        put_endpoints(&admin, &endpoints("web", &[a.addr, refusing, b.addr], &[])).await;
        let proxy = Proxy::start(s.node().await, config(), Arc::new(NoVirtualIps));
        let front = SocketAddr::from((LOCAL, np));
        wait_answer(front).await;
        let mut names = Vec::new();
        for _ in 0..30 {
            names.push(
                fetch(front)
                    .await
                    .expect("no client sees the refusing backend"),
            );
        }
        let t = tally(&names);
        assert_eq!(t.keys().cloned().collect::<Vec<_>>(), ["a", "b"], "{t:?}");
        assert!(t.values().all(|n| *n >= 10), "{t:?}");
        proxy.stop().await;
    });
}

#[test]
fn udp_sessions_through_the_proxy() {
    let s = Server::start("udp");
    runtime().block_on(async {
        let admin = s.admin().await;
        let (a, _ta) = udp_backend("u0").await;
        let (b, _tb) = udp_backend("u1").await;
        let np = node_port();
        create_service(
            &admin,
            &service("dns", "UDP", 5353, np, json!({}), json!({})),
        )
        .await;
        put_endpoints(&admin, &endpoints("dns", &[a, b], &[])).await;
        let mut cfg = config();
        cfg.udp_idle = Duration::from_secs(5);
        let proxy = Proxy::start(s.node().await, cfg, Arc::new(NoVirtualIps));
        let front = SocketAddr::from((LOCAL, np));
        let ask = |sock: Arc<UdpSocket>, text: String| async move {
            sock.send_to(text.as_bytes(), front).await.unwrap();
            let mut buf = [0u8; 2048];
            let (n, from) =
                tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut buf))
                    .await
                    .ok()?
                    .ok()?;
            Some((String::from_utf8_lossy(&buf[..n]).to_string(), from))
        };
        let c1 = Arc::new(UdpSocket::bind((LOCAL, 0)).await.unwrap());
        let deadline = Instant::now() + Duration::from_secs(20);
        let (first, from) = loop {
            if let Some(r) = ask(c1.clone(), "hello".into()).await {
                break r;
            }
            assert!(Instant::now() < deadline, "no UDP answer through the proxy");
        };
        assert_eq!(
            from, front,
            "replies come from the address the client sent to"
        );
        let backend = first.split(':').next().unwrap().to_string();
        assert_eq!(first, format!("{backend}:hello"));
        // The session keeps its endpoint.
        for i in 0..5 {
            let (reply, _) = ask(c1.clone(), format!("m{i}")).await.expect("an answer");
            assert_eq!(reply, format!("{backend}:m{i}"));
        }
        // Another client gets the other endpoint (round robin), and keeps it.
        let c2 = Arc::new(UdpSocket::bind((LOCAL, 0)).await.unwrap());
        let (reply, _) = ask(c2.clone(), "x".into()).await.expect("an answer");
        let other = reply.split(':').next().unwrap().to_string();
        assert_ne!(other, backend);
        for _ in 0..3 {
            assert!(ask(c2.clone(), "y".into())
                .await
                .unwrap()
                .0
                .starts_with(&other));
        }
        proxy.stop().await;
    });
}

/// A LoadBalancer Service whose status names this node's address is served on its own
/// port there (ServiceLB); one that names another address is not.
#[test]
fn loadbalancer_services_listen_on_their_port_on_named_nodes() {
    let s = Server::start("lb");
    runtime().block_on(async {
        let admin = s.admin().await;
        let backend = TcpBackend::start("lb0").await;
        let (port, other_port) = (free_port(), free_port());
        let api = Api::<Service>::namespaced(admin.clone(), "default");
        for (name, p, ip) in [
            ("lb", port, "127.0.0.1"),
            ("elsewhere", other_port, "192.0.2.7"),
        ] {
            let svc = service(
                name,
                "TCP",
                p,
                node_port(),
                json!({"type": "LoadBalancer"}),
                json!({}),
            );
            create_service(&admin, &svc).await;
            let status = json!({"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}});
            api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
                .await
                .unwrap();
            let mut ep = endpoints(name, &[], &[]);
            ep.subsets = Some(vec![serde_json::from_value(json!({
                "addresses": [{"ip": "127.0.0.1"}],
                "ports": [{"name": "p", "port": backend.addr.port()}]}))
            .unwrap()]);
            put_endpoints(&admin, &ep).await;
        }
        let proxy = Proxy::start(s.node().await, config(), Arc::new(NoVirtualIps));
        assert_eq!(wait_answer(SocketAddr::from((LOCAL, port))).await, "lb0");
        assert!(TcpStream::connect((LOCAL, other_port)).await.is_err());
        proxy.stop().await;
    });
}

/// Records the virtual IPs the proxy adds and removes.
#[derive(Default)]
struct RecordingVips(Mutex<Vec<String>>);

impl VirtualIps for RecordingVips {
    fn add(&self, ip: Ipv4Addr) -> plimsoll::agent::runtime::BoxFuture<'_, Result<(), String>> {
        self.0.lock().unwrap().push(format!("add {ip}"));
        Box::pin(async { Ok(()) })
    }

    fn remove(&self, ip: Ipv4Addr) -> plimsoll::agent::runtime::BoxFuture<'_, Result<(), String>> {
        self.0.lock().unwrap().push(format!("remove {ip}"));
        Box::pin(async { Ok(()) })
    }
}

/// With `--service-cidr 127.77.0.0/16` the ClusterIPs are loopback addresses, so the
/// proxy can bind them without a dummy interface.
#[test]
fn cluster_ips_are_added_served_and_removed() {
    if !has_service_cidr() {
        eprintln!("skipped: this plimsoll server has no --service-cidr");
        return;
    }
    let s = Server::start("clusterip");
    runtime().block_on(async {
        let admin = s.admin().await;
        let backend = TcpBackend::start("c0").await;
        let svc: Service = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "cip", "namespace": "default"},
            "spec": {"ports": [{"name": "p", "port": 8080, "targetPort": 8080}]}}))
        .unwrap();
        let created = create_service(&admin, &svc).await;
        let ip: Ipv4Addr = created.spec.unwrap().cluster_ip.unwrap().parse().unwrap();
        put_endpoints(&admin, &endpoints("cip", &[backend.addr], &[])).await;
        let vips = Arc::new(RecordingVips::default());
        let mut cfg = config();
        cfg.cluster_ips = true;
        let proxy = Proxy::start(s.node().await, cfg, vips.clone());
        assert_eq!(wait_answer(SocketAddr::from((ip, 8080))).await, "c0");
        assert_eq!(*vips.0.lock().unwrap(), [format!("add {ip}")]);
        Api::<Service>::namespaced(admin.clone(), "default")
            .delete("cip", &DeleteParams::default())
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while vips.0.lock().unwrap().len() < 2 {
            assert!(Instant::now() < deadline, "virtual IP not removed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(vips.0.lock().unwrap()[1], format!("remove {ip}"));
        proxy.stop().await;
    });
}

/// `plimsoll loadgen` through the proxy to three HTTP replicas: the rate is kept, all
/// answers are OK, every replica answered; and against a closed port every request is
/// a connect error in one failure window.
#[test]
fn loadgen_reports_rate_latency_replicas_and_failures() {
    let s = Server::start("loadgen");
    let rt = runtime();
    let (front, proxy, _tasks) = rt.block_on(async {
        let admin = s.admin().await;
        let mut addrs = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..3 {
            let (a, t) = http_backend(&format!("web-{i}")).await;
            addrs.push(a);
            tasks.push(t);
        }
        let np = node_port();
        create_service(&admin, &service("web", "TCP", 80, np, json!({}), json!({}))).await;
        put_endpoints(&admin, &endpoints("web", &addrs, &[])).await;
        let proxy = Proxy::start(s.node().await, config(), Arc::new(NoVirtualIps));
        let front = SocketAddr::from((LOCAL, np));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(front).await.is_err() {
            assert!(Instant::now() < deadline, "the proxy did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (front, proxy, tasks)
    });
    let run = |url: String, rate: &str, secs: &str| -> Value {
        let out = Command::new(BIN)
            .args([
                "loadgen",
                &url,
                "--rate",
                rate,
                "--duration",
                secs,
                "--timeout",
                "1",
                "--json",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let r = run(format!("http://{front}/"), "200", "3");
    assert_eq!(r["requests"], 600, "{r}");
    assert_eq!(r["ok"], 600, "{r}");
    let rate = r["achieved_rate"].as_f64().unwrap();
    assert!((rate - 200.0).abs() <= 20.0, "{r}");
    assert!(r["latency_ms"]["p99"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["latency_ms"]["max"].as_f64().unwrap() >= r["latency_ms"]["p99"].as_f64().unwrap());
    assert_eq!(r["distinct_bodies"], 3, "{r}");
    assert_eq!(
        r["bodies"],
        json!({"web-0": 200, "web-1": 200, "web-2": 200}),
        "{r}"
    );
    assert!(r["longest_failure_window"].is_null(), "{r}");

    let r = run(format!("http://127.0.0.1:{}/", closed_port()), "20", "1");
    assert_eq!(
        (r["requests"].as_u64(), r["ok"].as_u64()),
        (Some(20), Some(0)),
        "{r}"
    );
    assert_eq!(r["errors"]["connect"], 20, "{r}");
    let w = &r["longest_failure_window"];
    assert_eq!(w["failures"], 20, "{r}");
    assert_eq!(w["first_s"], 0.0, "{r}");
    assert!((w["last_s"].as_f64().unwrap() - 0.95).abs() < 1e-9, "{r}");
    assert!(r["latency_ms"].is_null(), "{r}");
    rt.block_on(proxy.stop());
}
