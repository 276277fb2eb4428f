//! Container probes as the kubelet runs them: `exec` (a command inside the container),
//! `httpGet` (a status from 200 to 399) and `tcpSocket` (a connection), with
//! `initialDelaySeconds`, `periodSeconds`, `timeoutSeconds`, `successThreshold` and
//! `failureThreshold`; liveness, readiness and startup kinds.
//!
//! A startup probe holds back the other two until it succeeds; a container without a
//! readiness probe is ready once it runs (and its startup probe passed). gRPC probes
//! are not supported: they fail with a message saying so.

use super::runtime::Runtime;
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::time::{Duration, SystemTime};

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// `livenessProbe`: failing restarts the container.
    Liveness,
    /// `readinessProbe`: decides the container's `ready`.
    Readiness,
    /// `startupProbe`: the others wait for it.
    Startup,
}

/// One probe's running tally.
#[derive(Debug, Clone)]
struct Tally {
    probe: Probe,
    successes: i32,
    failures: i32,
    last_run: Option<SystemTime>,
    /// The current verdict (`None` before it was decided).
    verdict: Option<bool>,
}

impl Tally {
    fn new(probe: Probe) -> Self {
        Tally {
            probe,
            successes: 0,
            failures: 0,
            last_run: None,
            verdict: None,
        }
    }

    fn due(&self, started: SystemTime, now: SystemTime) -> bool {
        let delay =
            Duration::from_secs(self.probe.initial_delay_seconds.unwrap_or(0).max(0) as u64);
        let period = Duration::from_secs(self.probe.period_seconds.unwrap_or(10).max(1) as u64);
        if now < started + delay {
            return false;
        }
        self.last_run
            .is_none_or(|last| now.duration_since(last).unwrap_or_default() >= period)
    }

    fn record(&mut self, ok: bool, now: SystemTime) {
        self.last_run = Some(now);
        if ok {
            self.successes += 1;
            self.failures = 0;
            if self.successes >= self.probe.success_threshold.unwrap_or(1).max(1) {
                self.verdict = Some(true);
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            if self.failures >= self.probe.failure_threshold.unwrap_or(3).max(1) {
                self.verdict = Some(false);
            }
        }
    }
}

/// The probes of one container start.
#[derive(Debug, Clone)]
pub struct ProbeTracker {
    started: SystemTime,
    liveness: Option<Tally>,
    readiness: Option<Tally>,
    startup: Option<Tally>,
}

impl ProbeTracker {
    /// The probes of container `c`, which started at `started`.
    pub fn new(c: &Container, started: SystemTime) -> Self {
        ProbeTracker {
            started,
            liveness: c.liveness_probe.clone().map(Tally::new),
            readiness: c.readiness_probe.clone().map(Tally::new),
            startup: c.startup_probe.clone().map(Tally::new),
        }
    }

    fn started_up(&self) -> bool {
        self.startup
            .as_ref()
            .is_none_or(|t| t.verdict == Some(true))
    }

    /// Whether the container is ready (its readiness probe, if any, passed).
    pub fn ready(&self) -> bool {
        self.started_up()
            && self
                .readiness
                .as_ref()
                .is_none_or(|t| t.verdict == Some(true))
    }

    /// Whether the container must be kept (its liveness or startup probe has not failed).
    pub fn alive(&self) -> bool {
        self.liveness
            .as_ref()
            .is_none_or(|t| t.verdict != Some(false))
            && self
                .startup
                .as_ref()
                .is_none_or(|t| t.verdict != Some(false))
    }

    /// Runs the probes that are due; answers the failures to report.
    pub async fn run_due(
        &mut self,
        runtime: &dyn Runtime,
        id: &str,
        c: &Container,
    ) -> Vec<(ProbeKind, String)> {
        let now = SystemTime::now();
        let mut failures = Vec::new();
        let started = self.started;
        let started_up = self.started_up();
        let slots: [(ProbeKind, &mut Option<Tally>); 3] = [
            (ProbeKind::Startup, &mut self.startup),
            (ProbeKind::Liveness, &mut self.liveness),
            (ProbeKind::Readiness, &mut self.readiness),
        ];
        for (kind, slot) in slots {
            let Some(t) = slot else { continue };
            if kind != ProbeKind::Startup && !started_up {
                continue;
            }
            if kind == ProbeKind::Startup && t.verdict == Some(true) {
                continue;
            }
            if !t.due(started, now) {
                continue;
            }
            let result = probe_once(runtime, id, c, &t.probe).await;
            t.record(result.is_ok(), now);
            if let Err(message) = result {
                failures.push((kind, message));
            }
        }
        failures
    }
}

fn port_of(c: &Container, port: &IntOrString) -> Result<u16, String> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).map_err(|_| format!("port {p} is out of range")),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("no container port named {name:?}")),
    }
}

/// The host a network probe dials: its `host`, else the container's address.
async fn probe_host(runtime: &dyn Runtime, id: &str, host: Option<&str>) -> Result<String, String> {
    match host.filter(|h| !h.is_empty()) {
        Some(h) => Ok(h.to_string()),
        None => runtime
            .address(id)
            .await
            .map(|a| a.to_string())
            .map_err(|e| e.to_string()),
    }
}

/// Runs one probe; `Err` carries the kubelet-style failure message.
pub async fn probe_once(
    runtime: &dyn Runtime,
    id: &str,
    c: &Container,
    probe: &Probe,
) -> Result<(), String> {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    if let Some(exec) = &probe.exec {
        let command = exec.command.clone().unwrap_or_default();
        let out = runtime
            .exec(id, &command, timeout)
            .await
            .map_err(|e| e.to_string())?;
        return match out.exit_code {
            Some(0) => Ok(()),
            Some(code) => Err(format!(
                "command {command:?} exited with {code}: {}",
                out.output.trim()
            )),
            None => Err(format!("command {command:?} timed out after {timeout:?}")),
        };
    }
    if let Some(http) = &probe.http_get {
        let port = port_of(c, &http.port)?;
        let host = probe_host(runtime, id, http.host.as_deref()).await?;
        if http
            .scheme
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("HTTPS"))
        {
            return Err("HTTPS probes are not supported by this agent".into());
        }
        let path = http
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        let headers: Vec<(String, String)> = http
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        return match tokio::time::timeout(timeout, http_get(&host, port, &path, &headers)).await {
            Ok(Ok(code)) if (200..400).contains(&code) => Ok(()),
            Ok(Ok(code)) => Err(format!("HTTP probe failed with statuscode: {code}")),
            Ok(Err(e)) => Err(format!("Get \"http://{host}:{port}{path}\": {e}")),
            Err(_) => Err(format!(
                "Get \"http://{host}:{port}{path}\": context deadline exceeded"
            )),
        };
    }
    if let Some(tcp) = &probe.tcp_socket {
        let port = port_of(c, &tcp.port)?;
        let host = probe_host(runtime, id, tcp.host.as_deref()).await?;
        return match tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("dial tcp {host}:{port}: {e}")),
            Err(_) => Err(format!("dial tcp {host}:{port}: i/o timeout")),
        };
    }
    if probe.grpc.is_some() {
        return Err("gRPC probes are not supported by this agent".into());
    }
    Err("the probe has no handler (exec, httpGet or tcpSocket)".into())
}

/// `GET http://host:port/path` with hyper; answers the status code.
async fn http_get(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> Result<u16, String> {
    use http_body_util::Empty;
    use hyper_util::rt::TokioIo;
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = axum::http::Request::get(path)
        .header("Host", format!("{host}:{port}"))
        .header(
            "User-Agent",
            format!("kube-probe/{}", super::node::KUBELET_VERSION),
        )
        .header("Accept", "*/*");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(Empty::<axum::body::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    Ok(resp.status().as_u16())
}
