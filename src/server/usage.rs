//! Measured resource usage: what node agents report and what the control plane keeps.
//!
//! Agents `PUT` a [`NodeUsageReport`] to `/apis/plimsoll.io/v1/nodeusage/{node}` every
//! sampling interval (10 s by default). The API server keeps a bounded history per pod
//! and per workload (the pod's controller owner) in memory, serves the latest samples as
//! `metrics.k8s.io/v1beta1` PodMetrics and NodeMetrics (`kubectl top`), and the history
//! as [`UsageHistory`] at `GET /apis/plimsoll.io/v1/usagehistory` for the usage-aware
//! scheduler and `plimsoll balance`.

use serde::{Deserialize, Serialize};

/// One container's usage over the last sampling window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerUsage {
    /// The container's name.
    pub name: String,
    /// Mean CPU use over the window, in nanocores (1 core = 1e9).
    pub cpu_nanocores: u64,
    /// Memory working set at the end of the window, in bytes.
    pub memory_bytes: u64,
}

/// One pod's usage over the last sampling window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodUsage {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's uid.
    pub uid: String,
    /// Its running containers.
    pub containers: Vec<ContainerUsage>,
}

/// What an agent reports for its node every sampling interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeUsageReport {
    /// The node (must match the path and the agent's identity).
    pub node: String,
    /// End of the window, RFC 3339.
    pub timestamp: String,
    /// Length of the window in seconds.
    pub window_seconds: f64,
    /// The node's mean CPU use over the window in nanocores (the host's, all processes).
    pub cpu_nanocores: u64,
    /// The node's memory working set in bytes.
    pub memory_bytes: u64,
    /// Every pod with a running container on the node.
    pub pods: Vec<PodUsage>,
}

// ---------------------------------------------------------------------------------------
// Reading a report: field-by-field, so that an error names the field.
// ---------------------------------------------------------------------------------------

/// Why a usage report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The body is not JSON.
    #[error("the report is not valid JSON: {0}")]
    Json(String),
    /// A field is missing, unknown, of the wrong type or has a bad value.
    #[error("{field}: {problem}")]
    Field {
        /// The field's JSON path (`pods[2].containers[0].cpuNanocores`).
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

fn field_err(field: &str, problem: impl Into<String>) -> ReportError {
    ReportError::Field {
        field: field.to_string(),
        problem: problem.into(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The object at `path`, with exactly the keys in `fields` (all required).
fn object_with<'v>(
    v: &'v serde_json::Value,
    path: &str,
    fields: &[&str],
) -> Result<&'v serde_json::Map<String, serde_json::Value>, ReportError> {
    let what = if path.is_empty() { "the report" } else { path };
    let obj = v
        .as_object()
        .ok_or_else(|| field_err(what, "expected an object"))?;
    if let Some(unknown) = obj.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(field_err(
            &join(path, unknown),
            format!("unknown field (expected one of: {})", fields.join(", ")),
        ));
    }
    if let Some(missing) = fields.iter().find(|f| !obj.contains_key(**f)) {
        return Err(field_err(&join(path, missing), "required field is missing"));
    }
    Ok(obj)
}

fn string_at(
    obj: &serde_json::Map<String, serde_json::Value>,
    path: &str,
    key: &str,
) -> Result<String, ReportError> {
    match obj.get(key) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(serde_json::Value::String(_)) => Err(field_err(&join(path, key), "must not be empty")),
        _ => Err(field_err(&join(path, key), "expected a string")),
    }
}

fn u64_at(
    obj: &serde_json::Map<String, serde_json::Value>,
    path: &str,
    key: &str,
) -> Result<u64, ReportError> {
    obj.get(key)
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| field_err(&join(path, key), "expected a non-negative integer"))
}

fn array_at<'v>(
    obj: &'v serde_json::Map<String, serde_json::Value>,
    path: &str,
    key: &str,
) -> Result<&'v Vec<serde_json::Value>, ReportError> {
    obj.get(key)
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| field_err(&join(path, key), "expected an array"))
}

/// The longest sampling window a report may cover (one hour).
pub const MAX_WINDOW_SECONDS: f64 = 3600.0;

impl NodeUsageReport {
    /// Reads a report from its JSON body, checking every field: an error names the field
    /// (unknown, missing, wrong type, empty name, duplicate pod uid or container name,
    /// a timestamp that is not RFC 3339, a window that is not in (0, 3600] seconds).
    pub fn from_json(body: &[u8]) -> Result<(NodeUsageReport, jiff::Timestamp), ReportError> {
        let v: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| ReportError::Json(e.to_string()))?;
        let top = object_with(
            &v,
            "",
            &[
                "node",
                "timestamp",
                "windowSeconds",
                "cpuNanocores",
                "memoryBytes",
                "pods",
            ],
        )?;
        let node = string_at(top, "", "node")?;
        let timestamp = string_at(top, "", "timestamp")?;
        let at: jiff::Timestamp = timestamp
            .parse()
            .map_err(|e| field_err("timestamp", format!("not an RFC 3339 time: {e}")))?;
        let window_seconds = top
            .get("windowSeconds")
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| field_err("windowSeconds", "expected a number"))?;
        if !(window_seconds > 0.0 && window_seconds <= MAX_WINDOW_SECONDS) {
            return Err(field_err(
                "windowSeconds",
                format!("must be in (0, {MAX_WINDOW_SECONDS}], got {window_seconds}"),
            ));
        }
        let cpu_nanocores = u64_at(top, "", "cpuNanocores")?;
        let memory_bytes = u64_at(top, "", "memoryBytes")?;
        let mut pods = Vec::new();
        let mut uids = std::collections::HashSet::new();
        for (i, p) in array_at(top, "", "pods")?.iter().enumerate() {
            let path = format!("pods[{i}]");
            let po = object_with(p, &path, &["namespace", "name", "uid", "containers"])?;
            let uid = string_at(po, &path, "uid")?;
            if !uids.insert(uid.clone()) {
                return Err(field_err(
                    &join(&path, "uid"),
                    format!("duplicate pod uid {uid:?}"),
                ));
            }
            let mut containers = Vec::new();
            let mut names = std::collections::HashSet::new();
            for (j, c) in array_at(po, &path, "containers")?.iter().enumerate() {
                let cpath = format!("{path}.containers[{j}]");
                let co = object_with(c, &cpath, &["name", "cpuNanocores", "memoryBytes"])?;
                let name = string_at(co, &cpath, "name")?;
                if !names.insert(name.clone()) {
                    return Err(field_err(
                        &join(&cpath, "name"),
                        format!("duplicate container name {name:?}"),
                    ));
                }
                containers.push(ContainerUsage {
                    name,
                    cpu_nanocores: u64_at(co, &cpath, "cpuNanocores")?,
                    memory_bytes: u64_at(co, &cpath, "memoryBytes")?,
                });
            }
            pods.push(PodUsage {
                namespace: string_at(po, &path, "namespace")?,
                name: string_at(po, &path, "name")?,
                uid,
                containers,
            });
        }
        Ok((
            NodeUsageReport {
                node,
                timestamp,
                window_seconds,
                cpu_nanocores,
                memory_bytes,
                pods,
            },
            at,
        ))
    }
}

// ---------------------------------------------------------------------------------------
// What `GET /apis/plimsoll.io/v1/usagehistory` answers.
// ---------------------------------------------------------------------------------------

/// The controller a pod belongs to, as the usage history names it: the pod's controller
/// owner, except that a ReplicaSet owned by a Deployment is reported as the Deployment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkloadOwner {
    /// `Deployment`, `ReplicaSet`, `StatefulSet`, `Job`, …
    pub kind: String,
    /// The owner's name (in the pod's namespace).
    pub name: String,
}

/// One measurement of one pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageSample {
    /// End of the sampling window, RFC 3339 (UTC).
    pub time: String,
    /// Mean CPU use over the window, in cores.
    pub cpu: f64,
    /// Memory working set, in bytes.
    pub memory: u64,
}

impl UsageSample {
    /// [`time`](Self::time), parsed.
    pub fn timestamp(&self) -> Result<jiff::Timestamp, jiff::Error> {
        self.time.parse()
    }
}

/// The recorded history of one pod, oldest sample first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodHistory {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's uid.
    pub uid: String,
    /// The node that reported it.
    pub node: String,
    /// Its workload, `null` for a pod without a controller.
    #[serde(default)]
    pub owner: Option<WorkloadOwner>,
    /// Its samples, oldest first.
    pub samples: Vec<UsageSample>,
}

/// The answer of `GET /apis/plimsoll.io/v1/usagehistory`: every pod the server has
/// recent usage of, sorted by namespace and name. Deserialize it from the text of
/// kube's `Client::request_text`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageHistory {
    /// One entry per pod.
    pub pods: Vec<PodHistory>,
}

impl UsageHistory {
    /// The pods of one workload (namespace, owner kind and name).
    pub fn of_workload<'a>(
        &'a self,
        namespace: &'a str,
        owner: &'a WorkloadOwner,
    ) -> impl Iterator<Item = &'a PodHistory> + 'a {
        self.pods
            .iter()
            .filter(move |p| p.namespace == namespace && p.owner.as_ref() == Some(owner))
    }
}

// ---------------------------------------------------------------------------------------
// What the API server keeps.
// ---------------------------------------------------------------------------------------

/// One stored sample: milliseconds since the epoch, cores, bytes (24 bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoredSample {
    /// End of the window, in milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// Mean CPU use in cores.
    pub cpu: f64,
    /// Memory working set in bytes.
    pub memory: u64,
}

/// What the server keeps of one pod.
#[derive(Debug, Clone)]
pub struct PodRecord {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Uid (the key).
    pub uid: String,
    /// The node that last reported it.
    pub node: String,
    /// Its workload, resolved when the pod was first reported.
    pub owner: Option<WorkloadOwner>,
    /// Its labels as of the last report (what `labelSelector` on PodMetrics matches).
    pub labels: serde_json::Map<String, serde_json::Value>,
    /// The containers of the last report.
    pub containers: Vec<ContainerUsage>,
    /// The window of the last report, in seconds.
    pub window_seconds: f64,
    /// Whether the node's latest report included it (only such pods have PodMetrics).
    pub current: bool,
    /// When the server last received a sample of it (staleness is judged on the
    /// server's clock, not the agent's).
    pub received: std::time::Instant,
    /// Samples, oldest first, at most the store's capacity.
    pub samples: std::collections::VecDeque<StoredSample>,
}

/// What the server keeps of one node: its latest report.
#[derive(Debug, Clone)]
pub struct NodeRecord {
    /// End of the latest report's window.
    pub time_ms: i64,
    /// Its window, in seconds.
    pub window_seconds: f64,
    /// The node's CPU use in nanocores.
    pub cpu_nanocores: u64,
    /// The node's memory working set in bytes.
    pub memory_bytes: u64,
    /// The Node object's labels when the report came (for `labelSelector`).
    pub labels: serde_json::Map<String, serde_json::Value>,
    /// When the server received it.
    pub received: std::time::Instant,
}

/// One pod of a report, as the API server resolved it against the store.
#[derive(Debug, Clone)]
pub struct ResolvedPod {
    /// What the agent reported.
    pub usage: PodUsage,
    /// The stored pod's labels.
    pub labels: serde_json::Map<String, serde_json::Value>,
    /// Its workload (used only the first time the uid is seen).
    pub owner: Option<WorkloadOwner>,
}

/// Default number of samples kept per pod: one hour at the agents' 10 s interval.
pub const DEFAULT_SAMPLES: usize = 360;
/// Default time after which a pod or node that is no longer reported is forgotten.
pub const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(300);

/// The API server's in-memory usage: per pod (by uid) a ring of its last `capacity`
/// samples, its node, workload and latest per-container usage; per node its latest
/// report. Nothing is persisted: after a restart the history starts empty.
///
/// Memory is bounded: a pod holds at most `capacity` samples (24 bytes each; 360 samples
/// ≈ 8.6 KiB), only pods that exist in the API's store and are bound to the reporting
/// node are recorded (the API server checks), and a pod or node not reported for
/// `retention` (5 minutes by default) is dropped at the next report or read — which is
/// how pods deleted from the store (whose agents stop reporting them) leave the history.
/// A workload's history is the union of its pods' (see [`UsageHistory::of_workload`]),
/// so it lasts as long as its pods do.
#[derive(Debug)]
pub struct UsageStore {
    capacity: usize,
    retention: std::time::Duration,
    pods: std::collections::HashMap<String, PodRecord>,
    nodes: std::collections::BTreeMap<String, NodeRecord>,
}

impl UsageStore {
    /// An empty store keeping `capacity` samples per pod (at least 1) and forgetting
    /// what is not reported for `retention`.
    pub fn new(capacity: usize, retention: std::time::Duration) -> Self {
        UsageStore {
            capacity: capacity.max(1),
            retention,
            pods: Default::default(),
            nodes: Default::default(),
        }
    }

    /// Samples kept per pod.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The workload recorded for a pod uid: `None` if the uid is unknown (the caller
    /// must resolve it), `Some(owner)` otherwise.
    pub fn owner_of(&self, uid: &str) -> Option<Option<WorkloadOwner>> {
        self.pods.get(uid).map(|p| p.owner.clone())
    }

    /// Records a node's report received at `now`: the node's latest usage, and one
    /// sample per pod (a sample not later than the pod's last one is ignored, so samples
    /// stay in time order). Pods of this node that are not in the report stop being
    /// current (no PodMetrics) but keep their history until `retention` passes.
    pub fn record(
        &mut self,
        report: &NodeUsageReport,
        at: jiff::Timestamp,
        node_labels: serde_json::Map<String, serde_json::Value>,
        pods: Vec<ResolvedPod>,
        now: std::time::Instant,
    ) {
        let time_ms = at.as_millisecond();
        self.nodes.insert(
            report.node.clone(),
            NodeRecord {
                time_ms,
                window_seconds: report.window_seconds,
                cpu_nanocores: report.cpu_nanocores,
                memory_bytes: report.memory_bytes,
                labels: node_labels,
                received: now,
            },
        );
        for p in self.pods.values_mut() {
            if p.node == report.node {
                p.current = false;
            }
        }
        for ResolvedPod {
            usage,
            labels,
            owner,
        } in pods
        {
            let cpu: u64 = usage.containers.iter().map(|c| c.cpu_nanocores).sum();
            let memory: u64 = usage.containers.iter().map(|c| c.memory_bytes).sum();
            let capacity = self.capacity;
            let rec = self
                .pods
                .entry(usage.uid.clone())
                .or_insert_with(|| PodRecord {
                    namespace: usage.namespace.clone(),
                    name: usage.name.clone(),
                    uid: usage.uid.clone(),
                    node: report.node.clone(),
                    owner,
                    labels: Default::default(),
                    containers: Vec::new(),
                    window_seconds: report.window_seconds,
                    current: true,
                    received: now,
                    samples: std::collections::VecDeque::with_capacity(capacity.min(64)),
                });
            rec.node = report.node.clone();
            rec.labels = labels;
            rec.containers = usage.containers;
            rec.window_seconds = report.window_seconds;
            rec.current = true;
            rec.received = now;
            if rec.samples.back().is_none_or(|s| s.time_ms < time_ms) {
                rec.samples.push_back(StoredSample {
                    time_ms,
                    cpu: cpu as f64 / 1e9,
                    memory,
                });
                while rec.samples.len() > capacity {
                    rec.samples.pop_front();
                }
            }
        }
        self.sweep(now);
    }

    /// Forgets pods and nodes not reported within `retention` of `now`.
    pub fn sweep(&mut self, now: std::time::Instant) {
        let keep = |received: std::time::Instant| {
            now.saturating_duration_since(received) <= self.retention
        };
        self.pods.retain(|_, p| keep(p.received));
        self.nodes.retain(|_, n| keep(n.received));
    }

    /// The pods with PodMetrics: included in the latest report of a node still
    /// reporting. Unordered.
    pub fn current_pods(&self) -> impl Iterator<Item = &PodRecord> {
        self.pods
            .values()
            .filter(|p| p.current && self.nodes.contains_key(&p.node))
    }

    /// Every pod with history. Unordered.
    pub fn pods(&self) -> impl Iterator<Item = &PodRecord> {
        self.pods.values()
    }

    /// The nodes still reporting, by name.
    pub fn nodes(&self) -> &std::collections::BTreeMap<String, NodeRecord> {
        &self.nodes
    }

    /// The history of the pods in `namespace` and on `node` (either `None`: all),
    /// sorted by namespace and name.
    pub fn history(&self, namespace: Option<&str>, node: Option<&str>) -> UsageHistory {
        let mut pods: Vec<PodHistory> = self
            .pods
            .values()
            .filter(|p| namespace.is_none_or(|ns| p.namespace == ns))
            .filter(|p| node.is_none_or(|n| p.node == n))
            .map(|p| PodHistory {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                uid: p.uid.clone(),
                node: p.node.clone(),
                owner: p.owner.clone(),
                samples: p
                    .samples
                    .iter()
                    .map(|s| UsageSample {
                        time: rfc3339_ms(s.time_ms),
                        cpu: s.cpu,
                        memory: s.memory,
                    })
                    .collect(),
            })
            .collect();
        pods.sort_by(|a, b| (&a.namespace, &a.name, &a.uid).cmp(&(&b.namespace, &b.name, &b.uid)));
        UsageHistory { pods }
    }
}

/// Milliseconds since the epoch as RFC 3339 in UTC (fractional seconds only if any).
pub fn rfc3339_ms(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.to_string(),
        Err(_) => "1970-01-01T00:00:00Z".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn report(
        node: &str,
        secs: i64,
        pods: &[(&str, u64, u64)],
    ) -> (NodeUsageReport, jiff::Timestamp) {
        let at = jiff::Timestamp::from_second(1_700_000_000 + secs).unwrap();
        (
            NodeUsageReport {
                node: node.into(),
                timestamp: at.to_string(),
                window_seconds: 10.0,
                cpu_nanocores: 1,
                memory_bytes: 2,
                pods: pods
                    .iter()
                    .map(|(uid, cpu, mem)| PodUsage {
                        namespace: "default".into(),
                        name: format!("pod-{uid}"),
                        uid: uid.to_string(),
                        containers: vec![
                            ContainerUsage {
                                name: "a".into(),
                                cpu_nanocores: *cpu,
                                memory_bytes: *mem,
                            },
                            ContainerUsage {
                                name: "b".into(),
                                cpu_nanocores: *cpu,
                                memory_bytes: 0,
                            },
                        ],
                    })
                    .collect(),
            },
            at,
        )
    }

    fn resolved(r: &NodeUsageReport) -> Vec<ResolvedPod> {
        r.pods
            .iter()
            .map(|p| ResolvedPod {
                usage: p.clone(),
                labels: Default::default(),
                owner: Some(WorkloadOwner {
                    kind: "Deployment".into(),
                    name: "web".into(),
                }),
            })
            .collect()
    }

    #[test]
    fn samples_are_bounded_ordered_and_summed_over_containers() {
        let mut s = UsageStore::new(3, Duration::from_secs(300));
        let now = Instant::now();
        for i in 0..5 {
            let (r, at) = report("n1", i * 10, &[("u1", 100_000_000 * (i as u64 + 1), 1024)]);
            s.record(&r, at, Default::default(), resolved(&r), now);
        }
        // An older or repeated sample is ignored.
        let (r, at) = report("n1", 20, &[("u1", 1, 1)]);
        s.record(&r, at, Default::default(), resolved(&r), now);
        let h = s.history(None, None);
        assert_eq!(h.pods.len(), 1);
        let p = &h.pods[0];
        assert_eq!(p.owner.as_ref().unwrap().name, "web");
        let cpus: Vec<f64> = p.samples.iter().map(|x| x.cpu).collect();
        // Two containers of n * 0.1 cores each: 0.6, 0.8, 1.0 cores for the last three.
        assert_eq!(cpus.len(), 3);
        for (got, want) in cpus.iter().zip([0.6, 0.8, 1.0]) {
            assert!((got - want).abs() < 1e-9, "{cpus:?}");
        }
        let times: Vec<jiff::Timestamp> =
            p.samples.iter().map(|x| x.timestamp().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
        assert_eq!(times[2].as_second(), 1_700_000_040);
        assert_eq!(p.samples[2].memory, 1024);
    }

    #[test]
    fn absent_pods_stop_being_current_and_are_forgotten_after_retention() {
        let mut s = UsageStore::new(10, Duration::from_secs(300));
        let t0 = Instant::now();
        let (r, at) = report("n1", 0, &[("u1", 1, 1), ("u2", 1, 1)]);
        s.record(&r, at, Default::default(), resolved(&r), t0);
        let (r2, at2) = report("n2", 0, &[("u3", 1, 1)]);
        s.record(&r2, at2, Default::default(), resolved(&r2), t0);
        let (r, at) = report("n1", 10, &[("u1", 1, 1)]);
        s.record(
            &r,
            at,
            Default::default(),
            resolved(&r),
            t0 + Duration::from_secs(10),
        );
        let mut current: Vec<&str> = s.current_pods().map(|p| p.uid.as_str()).collect();
        current.sort();
        assert_eq!(current, ["u1", "u3"]);
        assert_eq!(s.history(None, None).pods.len(), 3);
        assert_eq!(s.history(None, Some("n2")).pods.len(), 1);
        assert_eq!(s.history(Some("other"), None).pods.len(), 0);
        // Six minutes on, only what n1 reported again survives.
        let later = t0 + Duration::from_secs(370);
        let (r, at) = report("n1", 370, &[("u1", 1, 1)]);
        s.record(&r, at, Default::default(), resolved(&r), later);
        let uids: Vec<String> = s
            .history(None, None)
            .pods
            .into_iter()
            .map(|p| p.uid)
            .collect();
        assert_eq!(uids, ["u1"]);
        assert_eq!(s.nodes().keys().collect::<Vec<_>>(), ["n1"]);
        s.sweep(later + Duration::from_secs(301));
        assert!(s.history(None, None).pods.is_empty());
        assert!(s.nodes().is_empty());
    }

    #[test]
    fn reports_are_read_field_by_field() {
        let good = br#"{"node":"n1","timestamp":"2024-05-01T10:00:00Z","windowSeconds":10,
            "cpuNanocores":5,"memoryBytes":6,"pods":[{"namespace":"default","name":"p","uid":"u",
            "containers":[{"name":"c","cpuNanocores":1,"memoryBytes":2}]}]}"#;
        let (r, at) = NodeUsageReport::from_json(good).unwrap();
        assert_eq!(r.pods[0].containers[0].memory_bytes, 2);
        assert_eq!(at.as_second(), 1_714_557_600);
        let text = std::str::from_utf8(good).unwrap();
        let cases = [
            (
                text.replace("\"windowSeconds\"", "\"windowSecs\""),
                "windowSecs: unknown field",
            ),
            (
                text.replace("\"cpuNanocores\":1,", "\"cpuNanocores\":-1,"),
                "pods[0].containers[0].cpuNanocores: expected a non-negative integer",
            ),
            (
                text.replace("\"memoryBytes\":2", "\"memoryBytes\":2,\"extra\":1"),
                "pods[0].containers[0].extra: unknown field",
            ),
            (
                text.replace("\"uid\":\"u\",", ""),
                "pods[0].uid: required field is missing",
            ),
            (
                text.replace("2024-05-01T10:00:00Z", "yesterday"),
                "timestamp: not an RFC 3339 time",
            ),
            (
                text.replace("\"windowSeconds\":10", "\"windowSeconds\":0"),
                "windowSeconds: must be in",
            ),
            (
                text.replace("\"name\":\"p\"", "\"name\":\"\""),
                "pods[0].name: must not be empty",
            ),
            (
                r#"{"node":"n1","timestamp":"2024-05-01T10:00:00Z","windowSeconds":10,"cpuNanocores":5,"memoryBytes":6,"pods":7}"#.to_string(),
                "pods: expected an array",
            ),
            (
                text.replace(
                    "}]}]}",
                    "}]},{\"namespace\":\"d\",\"name\":\"q\",\"uid\":\"u\",\"containers\":[]}]}",
                ),
                "pods[1].uid: duplicate pod uid",
            ),
        ];
        for (body, want) in cases {
            let err = NodeUsageReport::from_json(body.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(want), "{body}\n→ {err}");
        }
        let err = NodeUsageReport::from_json(b"{\"node\":").unwrap_err();
        assert!(matches!(err, ReportError::Json(_)), "{err}");
    }

    #[test]
    fn history_round_trips_through_json() {
        let h = UsageHistory {
            pods: vec![PodHistory {
                namespace: "default".into(),
                name: "p".into(),
                uid: "u".into(),
                node: "n1".into(),
                owner: None,
                samples: vec![UsageSample {
                    time: "2024-05-01T10:00:00Z".into(),
                    cpu: 0.25,
                    memory: 1 << 20,
                }],
            }],
        };
        let text = serde_json::to_string(&h).unwrap();
        assert!(text.contains("\"owner\":null"), "{text}");
        assert_eq!(serde_json::from_str::<UsageHistory>(&text).unwrap(), h);
        let owner = WorkloadOwner {
            kind: "Deployment".into(),
            name: "web".into(),
        };
        assert_eq!(h.of_workload("default", &owner).count(), 0);
    }
}
