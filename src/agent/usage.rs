//! Usage sampling: every `usage_interval` (10 s) the CPU and memory of every running
//! container are read from the runtime (its cgroup, or Docker's stats), turned into
//! rates over the window, and sent to the control plane as a
//! [`NodeUsageReport`] (`PUT
//! /apis/plimsoll.io/v1/nodeusage/NODE`), which serves them to `kubectl top` and to the
//! predictors.
//!
//! The node's own figures are the host's (`/proc/stat`, `/proc/meminfo`) when its
//! capacity is the host's; when `--cpu`/`--memory` carve a share of the host out for it
//! (several agents on one machine), they are the sum of its pods.

use super::runtime::ContainerState;
use super::{AgentError, Shared};
use crate::server::usage::{ContainerUsage, NodeUsageReport, PodUsage};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// Busy and total jiffies of the host from `/proc/stat`'s `cpu` line.
fn proc_stat() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// The sampler's memory between windows.
#[derive(Default)]
pub(crate) struct Sampler {
    /// Per container id: cumulative CPU ns and when it was read.
    last: HashMap<String, (u64, SystemTime)>,
    /// The host's busy/total jiffies at the last window.
    host: Option<(u64, u64)>,
}

impl Sampler {
    /// Samples every running container and the node; `None` when nothing could be read.
    pub(crate) async fn sample(&mut self, shared: &Shared, window: Duration) -> NodeUsageReport {
        let now = SystemTime::now();
        let list = shared.runtime.list().await.unwrap_or_default();
        let mut pods: BTreeMap<(String, String, String), Vec<ContainerUsage>> = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        let (mut cpu_sum, mut mem_sum) = (0u64, 0u64);
        for c in list.iter().filter(|c| c.state == ContainerState::Running) {
            let Ok(stats) = shared.runtime.stats(&c.id).await else {
                continue;
            };
            seen.insert(c.id.clone());
            // A rate needs two readings (as metrics-server): a container read for the
            // first time is reported from the next window on.
            let Some((prev_cpu, prev_t)) = self
                .last
                .insert(c.id.clone(), (stats.cpu_usage_ns, stats.timestamp))
            else {
                continue;
            };
            let dt = stats.timestamp.duration_since(prev_t).unwrap_or_default();
            let nanocores = if dt.is_zero() {
                0
            } else {
                (stats.cpu_usage_ns.saturating_sub(prev_cpu) as f64 / dt.as_secs_f64()) as u64
            };
            cpu_sum += nanocores;
            mem_sum += stats.memory_working_set_bytes;
            pods.entry((
                c.pod.namespace.clone(),
                c.pod.name.clone(),
                c.pod.uid.clone(),
            ))
            .or_default()
            .push(ContainerUsage {
                name: c.name.clone(),
                cpu_nanocores: nanocores,
                memory_bytes: stats.memory_working_set_bytes,
            });
        }
        self.last.retain(|id, _| seen.contains(id));
        let carved = shared.config.cpu_millis.is_some() || shared.config.memory_bytes.is_some();
        let (cpu, memory) = if carved {
            (cpu_sum, mem_sum)
        } else {
            let host = proc_stat();
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
            let cpu = match (self.host, host) {
                (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
                    ((b1 - b0) as f64 / (t1 - t0) as f64 * cpus * 1e9) as u64
                }
                _ => cpu_sum,
            };
            self.host = host;
            let (total, available) = super::node::meminfo();
            (cpu, total.saturating_sub(available))
        };
        NodeUsageReport {
            node: shared.config.node_name.clone(),
            timestamp: jiff::Timestamp::try_from(now)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            window_seconds: window.as_secs_f64(),
            cpu_nanocores: cpu,
            memory_bytes: memory,
            pods: pods
                .into_iter()
                .map(|((namespace, name, uid), containers)| PodUsage {
                    namespace,
                    name,
                    uid,
                    containers,
                })
                .collect(),
        }
    }
}

/// Sends one report.
pub(crate) async fn send(shared: &Shared, report: &NodeUsageReport) -> Result<(), String> {
    let body = serde_json::to_vec(report).map_err(|e| e.to_string())?;
    let req = axum::http::Request::put(format!("/apis/plimsoll.io/v1/nodeusage/{}", report.node))
        .header("content-type", "application/json")
        .body(body)
        .map_err(|e| e.to_string())?;
    shared
        .client
        .request_text(req)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Samples and reports every `usage_interval` until `stop`; failures are logged.
pub(crate) async fn report_loop(
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), AgentError> {
    let window = shared.config.usage_interval;
    let mut tick = tokio::time::interval(window);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sampler = Sampler::default();
    loop {
        tokio::select! {
            _ = super::stopped(&mut stop) => return Ok(()),
            _ = tick.tick() => {}
        }
        let report = sampler.sample(&shared, window).await;
        if let Err(e) = send(&shared, &report).await {
            tracing::warn!(error = %e, "usage report failed");
        }
    }
}
