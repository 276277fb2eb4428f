//! Measured usage over the API: node agents' reports in, `kubectl top` and the usage
//! history out. The data lives in memory ([`UsageStore`]); see
//! [`crate::server::usage`] for what is kept and for how long.
//!
//! - `PUT /apis/plimsoll.io/v1/nodeusage/{node}` with a [`NodeUsageReport`] (JSON): 200
//!   and a success Status. A body that does not read is a 400 naming the field. A node
//!   identity may report only for its own node, and only pods whose stored
//!   `spec.nodeName` is that node (else 403 naming the pod); other users may report for
//!   any node (tools, tests). A reported pod that is not in the store (or whose uid
//!   differs: deleted and created again) is skipped with a `Warning` header, so a report
//!   racing a deletion is not refused as a whole. `GET` of the same path answers the
//!   node's latest report as the server keeps it (404 if none in the last 5 minutes).
//! - `GET /apis/plimsoll.io/v1/usagehistory[?namespace=…][&node=…]`: a
//!   [`UsageHistory`](crate::server::usage::UsageHistory).
//! - `metrics.k8s.io/v1beta1`, as metrics-server serves it: `GET …/nodes`,
//!   `…/nodes/{name}`, `…/pods`, `…/namespaces/{ns}/pods`, `…/namespaces/{ns}/pods/{name}`
//!   with `labelSelector` (labels as of the latest report) and, for pods, `fieldSelector`
//!   on `metadata.name`/`metadata.namespace`; the latest sample only; no watch. A
//!   404 for what has no current metrics: `pods "x" not found` (`nodes "x" …`) if the
//!   object is not in the store either, else `podmetrics.metrics.k8s.io "ns/x" not
//!   found` (`nodemetrics.metrics.k8s.io "x" …`). Discovery lists the group (see
//!   `discovery`).
//!
//! The plimsoll.io paths are not in discovery: they are the agents' and the scheduler's
//! interface, not resources for kubectl.

use super::auth::{self, Attributes, User};
use super::handlers::{decode_entry, json_response, read_body, Api};
use super::kinds;
use super::objects::{self, meta};
use super::selector::{FieldSelector, LabelSelector};
use super::status::{self, ApiError};
use crate::server::usage::{
    ContainerUsage, NodeUsageReport, PodRecord, PodUsage, ResolvedPod, WorkloadOwner,
};
use axum::extract::{Query, Request};
use axum::http::{header, HeaderValue, Method};
use axum::response::Response;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// A path this module serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UsageRoute {
    /// `/apis/plimsoll.io/v1/nodeusage/{node}`.
    NodeUsage(String),
    /// `/apis/plimsoll.io/v1/usagehistory`.
    History,
    /// `/apis/metrics.k8s.io/v1beta1/nodes[/{name}]`.
    NodeMetrics(Option<String>),
    /// `/apis/metrics.k8s.io/v1beta1[/namespaces/{ns}]/pods[/{name}]` (namespace empty:
    /// all).
    PodMetrics(String, Option<String>),
    /// Anything else under the two groups' versions.
    Unknown,
}

impl UsageRoute {
    /// The route of a path under `/apis/plimsoll.io/v1/` or
    /// `/apis/metrics.k8s.io/v1beta1/`; `None` for other paths.
    pub(crate) fn parse(path: &str) -> Option<UsageRoute> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let some = |s: &&str| Some(s.to_string());
        Some(match segs.as_slice() {
            ["apis", "plimsoll.io", "v1", rest @ ..] if !rest.is_empty() => match rest {
                ["nodeusage", node] if !node.is_empty() => UsageRoute::NodeUsage(node.to_string()),
                ["usagehistory"] => UsageRoute::History,
                _ => UsageRoute::Unknown,
            },
            ["apis", "metrics.k8s.io", "v1beta1", rest @ ..] if !rest.is_empty() => match rest {
                ["nodes"] => UsageRoute::NodeMetrics(None),
                ["nodes", name] if !name.is_empty() => UsageRoute::NodeMetrics(some(name)),
                ["pods"] => UsageRoute::PodMetrics(String::new(), None),
                ["namespaces", ns, "pods"] if !ns.is_empty() => {
                    UsageRoute::PodMetrics(ns.to_string(), None)
                }
                ["namespaces", ns, "pods", name] if !ns.is_empty() && !name.is_empty() => {
                    UsageRoute::PodMetrics(ns.to_string(), some(name))
                }
                _ => UsageRoute::Unknown,
            },
            _ => return None,
        })
    }
}

fn forbidden(
    user: &User,
    verb: &str,
    resource: &str,
    group: &str,
    name: &str,
    why: &str,
) -> ApiError {
    let subject = if name.is_empty() {
        format!("{resource}.{group}")
    } else {
        format!("{resource}.{group} \"{name}\"")
    };
    ApiError::forbidden(format!(
        "{subject} is forbidden: User \"{}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" at the cluster scope: {why}",
        user.name
    ))
}

fn check(
    user: &User,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> Result<(), ApiError> {
    let attrs = Attributes {
        verb,
        group,
        resource,
        subresource: "",
        namespace,
        name,
    };
    auth::authorize(user, &attrs, None, None)
        .map_err(|why| forbidden(user, verb, resource, group, name, &why))
}

fn query(req: &Request) -> Result<HashMap<String, String>, ApiError> {
    Query::<HashMap<String, String>>::try_from_uri(req.uri())
        .map(|q| q.0)
        .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))
}

/// Whether the client accepts JSON (kubectl's typed clients ask for protobuf *or* JSON).
fn accepts_json(req: &Request) -> Result<(), ApiError> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.trim().is_empty() {
        return Ok(());
    }
    let ok = accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        !params.iter().any(|p| p.starts_with("as="))
            && matches!(params[0], "application/json" | "*/*" | "application/*")
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::not_acceptable(format!(
            "only the following media types are accepted: application/json; got {accept}"
        )))
    }
}

/// Handles a request to a [`UsageRoute`] (the user is authenticated; a body, if any,
/// has been read within the limits).
pub(crate) async fn handle(
    api: &Api,
    user: &User,
    route: UsageRoute,
    req: Request,
) -> Result<Response, ApiError> {
    let method = req.method().clone();
    let q = query(&req)?;
    if matches!(q.get("watch").map(String::as_str), Some("true" | "1")) {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource (watch)",
        ));
    }
    match (route, method) {
        (UsageRoute::Unknown, _) => Err(ApiError::no_route()),
        (UsageRoute::NodeUsage(node), Method::PUT) => report(api, user, &node, req).await,
        (UsageRoute::NodeUsage(node), Method::GET) => {
            check(user, "get", "plimsoll.io", "nodeusage", "", &node)?;
            latest_report(api, &node)
        }
        (UsageRoute::History, Method::GET) => {
            check(user, "list", "plimsoll.io", "usagehistory", "", "")?;
            let ns = q.get("namespace").filter(|s| !s.is_empty());
            let node = q.get("node").filter(|s| !s.is_empty());
            let history = {
                let mut store = api.usage.lock().unwrap_or_else(|e| e.into_inner());
                store.sweep(std::time::Instant::now());
                store.history(ns.map(String::as_str), node.map(String::as_str))
            };
            let v = serde_json::to_value(&history)
                .map_err(|e| ApiError::internal(format!("encoding the usage history: {e}")))?;
            Ok(json_response(200, &v))
        }
        (UsageRoute::NodeMetrics(name), Method::GET) => {
            accepts_json(&req)?;
            let verb = if name.is_some() { "get" } else { "list" };
            check(
                user,
                verb,
                "metrics.k8s.io",
                "nodes",
                "",
                name.as_deref().unwrap_or(""),
            )?;
            node_metrics(api, name.as_deref(), &q).await
        }
        (UsageRoute::PodMetrics(ns, name), Method::GET) => {
            accepts_json(&req)?;
            let verb = if name.is_some() { "get" } else { "list" };
            check(
                user,
                verb,
                "metrics.k8s.io",
                "pods",
                &ns,
                name.as_deref().unwrap_or(""),
            )?;
            pod_metrics(api, &ns, name.as_deref(), &q).await
        }
        (_, m) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({m})"
        ))),
    }
}

/// The controller owner reference (`controller: true`) of an object: (kind, name).
fn controller_of(obj: &Value) -> Option<(String, String)> {
    meta(obj)
        .get("ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| {
            Some((
                r.get("kind")?.as_str()?.to_string(),
                r.get("name")?.as_str()?.to_string(),
            ))
        })
}

/// What the store says about one reported pod.
enum Lookup {
    /// Not in the store, or another pod of that name (uid differs).
    Missing,
    /// In the store: its node (`""` unbound), labels, and workload if it was resolved.
    Found {
        node: String,
        labels: Map<String, Value>,
        owner: Option<WorkloadOwner>,
    },
}

/// `PUT /apis/plimsoll.io/v1/nodeusage/{node}`.
async fn report(api: &Api, user: &User, node: &str, req: Request) -> Result<Response, ApiError> {
    check(user, "update", "plimsoll.io", "nodeusage", "", node)?;
    let (headers, body) = read_body(api, req).await?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = ct.split(';').next().unwrap_or("").trim();
    if !matches!(media, "application/json" | "") {
        return Err(ApiError::unsupported_media_type(format!(
            "a usage report is JSON (application/json), not {media}"
        )));
    }
    let (report, at) = NodeUsageReport::from_json(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid NodeUsageReport: {e}")))?;
    if report.node != node {
        return Err(ApiError::bad_request(format!(
            "invalid NodeUsageReport: node: {:?} does not match the node in the path ({node:?})",
            report.node
        )));
    }
    // Uids whose workload is already known need no owner lookups.
    let known: std::collections::HashSet<String> = {
        let store = api.usage.lock().unwrap_or_else(|e| e.into_inner());
        report
            .pods
            .iter()
            .filter(|p| store.owner_of(&p.uid).is_some())
            .map(|p| p.uid.clone())
            .collect()
    };
    let pods_rt = kinds::find("", "v1", "pods").ok_or_else(ApiError::no_route)?;
    let nodes_rt = kinds::find("", "v1", "nodes").ok_or_else(ApiError::no_route)?;
    let rs_rt = kinds::find("apps", "v1", "replicasets").ok_or_else(ApiError::no_route)?;
    let wanted: Vec<(String, String, String)> = report
        .pods
        .iter()
        .map(|p| (p.namespace.clone(), p.name.clone(), p.uid.clone()))
        .collect();
    let node_key = nodes_rt.key("", node);
    let (node_labels, lookups) = api
        .run(move |s| {
            let node_labels = match s.get(&node_key)? {
                Some(e) => decode_entry(&e)
                    .ok()
                    .and_then(|v| meta(&v).get("labels").and_then(Value::as_object).cloned())
                    .unwrap_or_default(),
                None => Map::new(),
            };
            let mut out = Vec::with_capacity(wanted.len());
            for (ns, name, uid) in &wanted {
                let Some(entry) = s.get(&pods_rt.key(ns, name))? else {
                    out.push(Lookup::Missing);
                    continue;
                };
                let Ok(pod) = decode_entry(&entry) else {
                    out.push(Lookup::Missing);
                    continue;
                };
                if objects::meta_str(&pod, "uid") != uid {
                    out.push(Lookup::Missing);
                    continue;
                }
                let owner = if known.contains(uid) {
                    None
                } else {
                    match controller_of(&pod) {
                        Some((kind, rs)) if kind == "ReplicaSet" => {
                            // A Deployment's ReplicaSet stands for the Deployment.
                            let parent = s
                                .get(&rs_rt.key(ns, &rs))?
                                .and_then(|e| decode_entry(&e).ok())
                                .and_then(|v| controller_of(&v))
                                .filter(|(k, _)| k == "Deployment");
                            Some(match parent {
                                Some((kind, name)) => WorkloadOwner { kind, name },
                                None => WorkloadOwner { kind, name: rs },
                            })
                        }
                        Some((kind, name)) => Some(WorkloadOwner { kind, name }),
                        None => None,
                    }
                };
                out.push(Lookup::Found {
                    node: objects::path(&pod, "spec.nodeName")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    labels: meta(&pod)
                        .get("labels")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default(),
                    owner,
                });
            }
            Ok((node_labels, out))
        })
        .await
        .map_err(|e| super::handlers::store_error(pods_rt, "", e))?;
    let mut resolved = Vec::with_capacity(report.pods.len());
    let mut warnings = Vec::new();
    for (pod, lookup) in report.pods.iter().zip(lookups) {
        match lookup {
            Lookup::Missing => warnings.push(format!(
                "pod {}/{} (uid {}) is not in the store; its usage was not recorded",
                pod.namespace, pod.name, pod.uid
            )),
            Lookup::Found {
                node: bound,
                labels,
                owner,
            } => {
                if let Err(why) = auth::node_may_report_pod(user, &bound) {
                    return Err(forbidden(
                        user,
                        "update",
                        "nodeusage",
                        "plimsoll.io",
                        node,
                        &format!(
                            "{why}; pod {}/{} {}",
                            pod.namespace,
                            pod.name,
                            bound_text(&bound)
                        ),
                    ));
                }
                resolved.push(ResolvedPod {
                    usage: pod.clone(),
                    labels,
                    owner,
                });
            }
        }
    }
    let recorded = resolved.len();
    {
        let mut store = api.usage.lock().unwrap_or_else(|e| e.into_inner());
        store.record(
            &report,
            at,
            node_labels,
            resolved,
            std::time::Instant::now(),
        );
    }
    let mut resp = json_response(
        200,
        &status::success(
            200,
            Some(
                json!({"name": node, "group": "plimsoll.io", "kind": "nodeusage",
                "causes": [{"message": format!("{recorded} pods recorded")}]}),
            ),
        ),
    );
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append("warning", v);
        }
    }
    Ok(resp)
}

fn bound_text(node: &str) -> String {
    if node.is_empty() {
        "is not bound to a node".to_string()
    } else {
        format!("is bound to node {node:?}")
    }
}

/// `GET /apis/plimsoll.io/v1/nodeusage/{node}`: the node's latest report.
fn latest_report(api: &Api, node: &str) -> Result<Response, ApiError> {
    let mut store = api.usage.lock().unwrap_or_else(|e| e.into_inner());
    store.sweep(std::time::Instant::now());
    let rec = store
        .nodes()
        .get(node)
        .ok_or_else(|| ApiError::not_found("nodeusage.plimsoll.io", node))?;
    let mut pods: Vec<&PodRecord> = store.current_pods().filter(|p| p.node == node).collect();
    pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let report = NodeUsageReport {
        node: node.to_string(),
        timestamp: crate::server::usage::rfc3339_ms(rec.time_ms),
        window_seconds: rec.window_seconds,
        cpu_nanocores: rec.cpu_nanocores,
        memory_bytes: rec.memory_bytes,
        pods: pods
            .into_iter()
            .map(|p| PodUsage {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                uid: p.uid.clone(),
                containers: p.containers.clone(),
            })
            .collect(),
    };
    let v = serde_json::to_value(&report)
        .map_err(|e| ApiError::internal(format!("encoding the report: {e}")))?;
    Ok(json_response(200, &v))
}

/// `metav1.Time`: seconds, UTC.
fn time_seconds(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// Seconds as Go's `time.Duration` prints them (`10s`, `1m30s`, `1.5s`, `500ms`).
pub(crate) fn go_duration(seconds: f64) -> String {
    let ms = (seconds * 1000.0).round().max(0.0) as u64;
    if ms == 0 {
        return "0s".to_string();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let s = if rest % 1000 == 0 {
        format!("{}s", rest / 1000)
    } else {
        let text = format!("{}.{:03}", rest / 1000, rest % 1000);
        format!("{}s", text.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{h}h{m}m{s}")
    } else if m > 0 {
        format!("{m}m{s}")
    } else {
        s
    }
}

/// CPU in nanocores as a quantity (`123456n`, `0`).
pub(crate) fn cpu_quantity(nanocores: u64) -> String {
    if nanocores == 0 {
        "0".to_string()
    } else {
        format!("{nanocores}n")
    }
}

/// Bytes as a quantity with the largest binary suffix that divides them (`64Mi`,
/// `1234Ki`, `1000`).
pub(crate) fn memory_quantity(bytes: u64) -> String {
    if bytes == 0 {
        return "0".to_string();
    }
    for (shift, suffix) in [(40, "Ti"), (30, "Gi"), (20, "Mi"), (10, "Ki")] {
        if bytes % (1u64 << shift) == 0 {
            return format!("{}{suffix}", bytes >> shift);
        }
    }
    bytes.to_string()
}

fn label_selector(q: &HashMap<String, String>) -> Result<Option<LabelSelector>, ApiError> {
    q.get("labelSelector")
        .filter(|s| !s.is_empty())
        .map(|s| LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string())))
        .transpose()
}

fn field_selector(
    q: &HashMap<String, String>,
    allowed: &[&str],
) -> Result<Option<FieldSelector>, ApiError> {
    let Some(s) = q.get("fieldSelector").filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let f = FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Some(bad) = f.fields().find(|n| !allowed.contains(n)) {
        return Err(ApiError::bad_request(format!(
            "field label not supported: {bad}"
        )));
    }
    Ok(Some(f))
}

fn node_metric(name: &str, rec: &crate::server::usage::NodeRecord) -> Value {
    let mut metadata = json!({"name": name, "creationTimestamp": objects::now_rfc3339()});
    if !rec.labels.is_empty() {
        metadata["labels"] = Value::Object(rec.labels.clone());
    }
    json!({
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": metadata,
        "timestamp": time_seconds(rec.time_ms),
        "window": go_duration(rec.window_seconds),
        "usage": {
            "cpu": cpu_quantity(rec.cpu_nanocores),
            "memory": memory_quantity(rec.memory_bytes),
        },
    })
}

fn pod_metric(p: &PodRecord) -> Value {
    let mut metadata = json!({"name": p.name, "namespace": p.namespace,
        "creationTimestamp": objects::now_rfc3339()});
    if !p.labels.is_empty() {
        metadata["labels"] = Value::Object(p.labels.clone());
    }
    let time_ms = p.samples.back().map(|s| s.time_ms).unwrap_or_default();
    let containers: Vec<Value> = p
        .containers
        .iter()
        .map(|c: &ContainerUsage| {
            json!({"name": c.name, "usage": {
                "cpu": cpu_quantity(c.cpu_nanocores),
                "memory": memory_quantity(c.memory_bytes),
            }})
        })
        .collect();
    json!({
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": metadata,
        "timestamp": time_seconds(time_ms),
        "window": go_duration(p.window_seconds),
        "containers": containers,
    })
}

/// The 404 for an object without metrics: the object's own (`pods "x" not found`) if
/// it is not in the store either, else `podmetrics.metrics.k8s.io "ns/x" not found`.
async fn no_metrics(api: &Api, plural: &str, kind: &str, ns: &str, name: &str) -> ApiError {
    let Some(rt) = kinds::find("", "v1", plural) else {
        return ApiError::no_route();
    };
    let key = rt.key(ns, name);
    match api.run(move |s| s.get(&key)).await {
        Ok(None) => ApiError::not_found(plural, name),
        _ if ns.is_empty() => ApiError::not_found(&format!("{kind}.metrics.k8s.io"), name),
        _ => ApiError::not_found(&format!("{kind}.metrics.k8s.io"), &format!("{ns}/{name}")),
    }
}

/// `…/nodes` and `…/nodes/{name}`.
async fn node_metrics(
    api: &Api,
    name: Option<&str>,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let labels = label_selector(q)?;
    let fields = field_selector(q, &["metadata.name"])?;
    if let Some(name) = name {
        let found = {
            let mut store = api.usage.lock().unwrap_or_else(|e| e.into_inner());
            store.sweep(std::time::Instant::now());
            store.nodes().get(name).map(|rec| node_metric(name, rec))
        };
        return match found {
            Some(v) => Ok(json_response(200, &v)),
            None => Err(no_metrics(api, "nodes", "nodemetrics", "", name).await),
        };
    }
    let mut store = api.usage.lock().unwrap_or_else(|e| e.into_inner());
    store.sweep(std::time::Instant::now());
    let items: Vec<Value> = store
        .nodes()
        .iter()
        .filter(|(_, r)| labels.as_ref().is_none_or(|l| l.matches(&r.labels)))
        .filter(|(n, _)| {
            fields.as_ref().is_none_or(|f| {
                f.matches(|field| (field == "metadata.name").then(|| n.to_string()))
            })
        })
        .map(|(n, r)| node_metric(n, r))
        .collect();
    Ok(json_response(
        200,
        &json!({"kind": "NodeMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {}, "items": items}),
    ))
}

/// `…/pods`, `…/namespaces/{ns}/pods`, `…/namespaces/{ns}/pods/{name}`.
async fn pod_metrics(
    api: &Api,
    ns: &str,
    name: Option<&str>,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let labels = label_selector(q)?;
    let fields = field_selector(q, &["metadata.name", "metadata.namespace"])?;
    if let Some(name) = name {
        let found = {
            let mut store = api.usage.lock().unwrap_or_else(|e| e.into_inner());
            store.sweep(std::time::Instant::now());
            let found = store
                .current_pods()
                .find(|p| p.namespace == ns && p.name == name)
                .map(pod_metric);
            found
        };
        return match found {
            Some(v) => Ok(json_response(200, &v)),
            None => Err(no_metrics(api, "pods", "podmetrics", ns, name).await),
        };
    }
    let mut store = api.usage.lock().unwrap_or_else(|e| e.into_inner());
    store.sweep(std::time::Instant::now());
    let mut pods: Vec<&PodRecord> = store
        .current_pods()
        .filter(|p| ns.is_empty() || p.namespace == ns)
        .filter(|p| labels.as_ref().is_none_or(|l| l.matches(&p.labels)))
        .filter(|p| {
            fields.as_ref().is_none_or(|f| {
                f.matches(|field| match field {
                    "metadata.name" => Some(p.name.clone()),
                    "metadata.namespace" => Some(p.namespace.clone()),
                    _ => None,
                })
            })
        })
        .collect();
    pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let items: Vec<Value> = pods.into_iter().map(pod_metric).collect();
    Ok(json_response(
        200,
        &json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {}, "items": items}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve() {
        assert_eq!(
            UsageRoute::parse("/apis/plimsoll.io/v1/nodeusage/n1"),
            Some(UsageRoute::NodeUsage("n1".into()))
        );
        assert_eq!(
            UsageRoute::parse("/apis/plimsoll.io/v1/usagehistory"),
            Some(UsageRoute::History)
        );
        assert_eq!(
            UsageRoute::parse("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/p"),
            Some(UsageRoute::PodMetrics("default".into(), Some("p".into())))
        );
        assert_eq!(
            UsageRoute::parse("/apis/metrics.k8s.io/v1beta1/pods"),
            Some(UsageRoute::PodMetrics(String::new(), None))
        );
        assert_eq!(
            UsageRoute::parse("/apis/metrics.k8s.io/v1beta1/nodes/n1"),
            Some(UsageRoute::NodeMetrics(Some("n1".into())))
        );
        assert_eq!(
            UsageRoute::parse("/apis/metrics.k8s.io/v1beta1/nodes/n1/extra"),
            Some(UsageRoute::Unknown)
        );
        // Discovery paths are discovery's.
        assert_eq!(UsageRoute::parse("/apis/metrics.k8s.io/v1beta1"), None);
        assert_eq!(UsageRoute::parse("/apis/metrics.k8s.io"), None);
        assert_eq!(UsageRoute::parse("/api/v1/pods"), None);
    }

    #[test]
    fn quantities_and_durations_print_as_kubernetes_does() {
        assert_eq!(cpu_quantity(250_000_000), "250000000n");
        assert_eq!(cpu_quantity(0), "0");
        assert_eq!(memory_quantity(64 << 20), "64Mi");
        assert_eq!(memory_quantity(1234 * 1024), "1234Ki");
        assert_eq!(memory_quantity(1000), "1000");
        assert_eq!(memory_quantity(3 << 30), "3Gi");
        assert_eq!(go_duration(10.0), "10s");
        assert_eq!(go_duration(10.5), "10.5s");
        assert_eq!(go_duration(90.0), "1m30s");
        assert_eq!(go_duration(3600.0), "1h0m0s");
        assert_eq!(go_duration(0.5), "500ms");
    }
}
