//! The verbs on the store (get, list, create, delete, bind, …) and what every request
//! shares: the server's state and options, targets, selectors, field validation, the
//! mapping of store errors to Status codes, body reading within limits. Routing and
//! content negotiation are in `routes`, updates and patches in `patch`, watches in
//! `watch`.

use super::auth::{self, Attributes, Tokens, User};
use super::kinds::{self, ResourceType};
use super::objects::{self, meta, meta_mut, meta_str};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::table::{self, IncludeObject};
use crate::server::metrics::Metrics;
use crate::server::store::{Entry, Store, StoreError};
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The API server's limits and settings.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Largest request body accepted (bigger: 413).
    pub max_body: usize,
    /// Time a client has to send its whole body.
    pub body_timeout: Duration,
    /// Interval between watch bookmarks (when the client allows them).
    pub bookmark_interval: Duration,
    /// How long a watch stays open when the client names no `timeoutSeconds`.
    pub default_watch_timeout: Duration,
    /// Longest watch a client may ask for.
    pub max_watch_timeout: Duration,
    /// How long a watch waits for a client that does not read before closing it.
    pub watch_send_timeout: Duration,
    /// The address clients reach the server at (legacy discovery reports it).
    pub server_address: String,
    /// Usage samples kept per pod (default 360: one hour of 10 s reports).
    pub usage_samples: usize,
    /// How long a pod or node that is no longer reported keeps its usage (default 5 min).
    pub usage_retention: Duration,
    /// Where Services get cluster IPs and node ports (`--service-cidr`,
    /// `--service-node-port-range`).
    pub services: super::services::ServiceNetwork,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            max_body: 3 * 1024 * 1024,
            body_timeout: Duration::from_secs(30),
            bookmark_interval: Duration::from_secs(60),
            default_watch_timeout: Duration::from_secs(1800),
            max_watch_timeout: Duration::from_secs(3600),
            watch_send_timeout: Duration::from_secs(10),
            server_address: String::new(),
            usage_samples: crate::server::usage::DEFAULT_SAMPLES,
            usage_retention: crate::server::usage::DEFAULT_RETENTION,
            services: super::services::ServiceNetwork::default(),
        }
    }
}

/// Shared state of the request handlers.
pub struct Api {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) tokens: Tokens,
    pub(crate) options: ApiOptions,
    pub(crate) metrics: Arc<Metrics>,
    /// Node agents' usage reports (`usage_api`).
    pub(crate) usage: std::sync::Mutex<crate::server::usage::UsageStore>,
    /// The client for node agents (`kubectl logs`).
    pub(crate) kubelet: super::kubelet::KubeletClient,
    /// Held from listing the Services to storing one, so two writes never hand out the
    /// same cluster IP or node port (see `services`).
    pub(crate) service_alloc: tokio::sync::Mutex<()>,
}

impl Api {
    /// An API over `store`, authenticating with `tokens`, with a registry of its own
    /// (see [`Api::with_metrics`]). A fresh token for the server's own client of node
    /// agents (user [`auth::KUBELET_CLIENT_USER`]) is added to `tokens`.
    pub fn new(store: Arc<dyn Store>, mut tokens: Tokens, options: ApiOptions) -> Self {
        let kubelet = super::kubelet::KubeletClient::new();
        // A random 256-bit token cannot collide with another; should it, log requests
        // to agents fail authentication there and say so.
        if let Err(e) = tokens.insert(
            kubelet.token().to_string(),
            super::kubelet::KubeletClient::user(),
        ) {
            tracing::error!("the API server's agent client has no token: {e}");
        }
        let usage =
            crate::server::usage::UsageStore::new(options.usage_samples, options.usage_retention);
        Self {
            store,
            tokens,
            options,
            metrics: Metrics::new(),
            usage: std::sync::Mutex::new(usage),
            kubelet,
            service_alloc: tokio::sync::Mutex::new(()),
        }
    }

    /// The same API, counting its requests, objects and watches in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The registry this API counts in (and serves on `/metrics`).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Runs a store call off the async threads.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&*store))
            .await
            .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }
}

/// Maps a store error for an object of `rt` named `name`.
/// The Service hook of every write: normalises and checks `svc` (to be stored as
/// `namespace/name`, replacing `old` if it is an update) and allocates what it lacks
/// (`super::services`). Returns the allocation guard: hold it until the object is
/// stored, so that no other write can hand out the same addresses meanwhile.
pub(crate) async fn admit_service<'a>(
    api: &'a Api,
    namespace: &str,
    name: &str,
    old: Option<&Value>,
    svc: &mut Value,
) -> Result<tokio::sync::MutexGuard<'a, ()>, ApiError> {
    let net = api.options.services;
    super::services::check(name, old, svc, &net)?;
    let guard = api.service_alloc.lock().await;
    let rt = super::kinds::find("", "v1", "services").expect("services are served");
    let prefix = rt.prefix();
    let (entries, _) = api
        .run(move |s| s.list(&prefix))
        .await
        .map_err(|e| store_error(rt, name, e))?;
    let stored = entries
        .iter()
        .map(decode_entry)
        .collect::<Result<Vec<_>, _>>()?;
    super::services::allocate_among(&net, namespace, name, old, svc, &stored)?;
    Ok(guard)
}

pub(crate) fn store_error(rt: &ResourceType, name: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(_) => ApiError::not_found(&rt.qualified(), name),
        StoreError::AlreadyExists(_) => ApiError::already_exists(&rt.qualified(), name),
        StoreError::Conflict { .. } => ApiError::conflict(
            &rt.qualified(),
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ),
        StoreError::Compacted {
            requested,
            compacted,
        } => ApiError::expired(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        StoreError::FutureRevision { requested, current } => ApiError {
            code: 504,
            reason: "Timeout",
            message: format!("Too large resource version: {requested}, current: {current}"),
            details: None,
        },
        StoreError::Backend(m) => ApiError::internal(m),
    }
}

/// An entry as an object, with its `resourceVersion`.
pub(crate) fn decode_entry(e: &Entry) -> Result<Value, ApiError> {
    let mut v: Value = serde_json::from_slice(&e.value)
        .map_err(|err| ApiError::internal(format!("stored object {} is corrupt: {err}", e.key)))?;
    if !v.is_object() || v.get("metadata").is_some_and(|m| !m.is_object()) {
        return Err(ApiError::internal(format!(
            "stored object {} is corrupt: not an object with object metadata",
            e.key
        )));
    }
    meta_mut(&mut v).insert("resourceVersion".into(), json!(e.mod_revision.to_string()));
    Ok(v)
}

/// An object as stored (without `resourceVersion`, which is the store's revision).
pub(crate) fn encode(obj: &Value) -> Vec<u8> {
    let mut o = obj.clone();
    meta_mut(&mut o).remove("resourceVersion");
    serde_json::to_vec(&o).unwrap_or_default()
}

/// A resource request: the resource, namespace (empty: all or cluster-scoped), name and
/// subresource.
#[derive(Debug)]
pub(crate) struct Target {
    pub rt: &'static ResourceType,
    pub namespace: String,
    pub name: Option<String>,
    pub sub: Option<String>,
}

pub(crate) fn json_response(code: u16, v: &Value) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    let mut resp = (code, serde_json::to_vec(v).unwrap_or_default()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The response representation a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum As {
    /// The object or list itself.
    Json,
    /// A `meta.k8s.io/v1` Table.
    Table(IncludeObject),
    /// `PartialObjectMetadata(List)`.
    Metadata,
}

/// A request's body, read within the size and time limits.
pub(crate) async fn read_body(api: &Api, req: Request) -> Result<(HeaderMap, Bytes), ApiError> {
    use http_body_util::BodyExt;
    let (parts, mut body) = req.into_parts();
    let max = api.options.max_body;
    // A body over the limit is still read (and dropped) up to a bound, so that the
    // client, still sending, gets the 413 rather than a reset connection; beyond the
    // bound the connection is given up.
    let drain_bound = (max as u64).saturating_mul(4).max(8 << 20);
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > drain_bound) {
        return Err(ApiError::too_large(max));
    }
    let read = async {
        let mut buf = Vec::new();
        let mut total: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                total += data.len() as u64;
                if total > drain_bound {
                    return Err(ApiError::too_large(max));
                }
                if total <= max as u64 {
                    buf.extend_from_slice(&data);
                }
            }
        }
        if total > max as u64 {
            return Err(ApiError::too_large(max));
        }
        Ok(Bytes::from(buf))
    };
    let bytes = tokio::time::timeout(api.options.body_timeout, read)
        .await
        .map_err(|_| ApiError::bad_request("the request body did not arrive in time"))??;
    Ok((parts.headers, bytes))
}

/// YAML (or JSON, which is YAML) into a JSON value; YAML-only values (non-string keys,
/// tags) are errors naming the line.
pub(crate) fn yaml_value(body: &[u8]) -> Result<Value, ApiError> {
    let y: serde_yaml::Value = serde_yaml::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML body: {e}")))?;
    serde_json::to_value(y)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML body: {e}")))
}

/// `fieldValidation`: how unknown fields are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    /// Unknown fields are kept silently.
    Ignore,
    /// Unknown fields are kept, with a warning.
    Warn,
    /// Unknown fields are an error.
    Strict,
}

pub(crate) fn field_validation(q: &HashMap<String, String>) -> Result<FieldValidation, ApiError> {
    match q.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
        Some("Ignore") => Ok(FieldValidation::Ignore),
        Some("Strict") => Ok(FieldValidation::Strict),
        Some(other) => Err(ApiError::bad_request(format!(
            "fieldValidation parameter unsupported: {other}, must be one of Ignore, Warn or Strict"
        ))),
    }
}

/// Checks a body against its kind's type; under Strict, unknown fields (other than those
/// in `tolerated`) are an error; under Warn they become warnings.
pub(crate) fn check_fields(
    rt: &ResourceType,
    obj: &Value,
    fv: FieldValidation,
    tolerated: &[String],
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    let cannot = |why: &str| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {why}",
            rt.kind, rt.version, rt.kind
        ))
    };
    let unknown: Vec<String> = rt
        .unknown_fields(obj)
        .map_err(|e| cannot(&e))?
        .into_iter()
        .filter(|f| !tolerated.contains(f))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    match fv {
        FieldValidation::Strict => Err(cannot(&format!(
            "strict decoding error: {}",
            list.join(", ")
        ))),
        FieldValidation::Warn => {
            warnings.extend(list);
            Ok(())
        }
        FieldValidation::Ignore => Ok(()),
    }
}

pub(crate) fn is_dry_run(q: &HashMap<String, String>) -> Result<bool, ApiError> {
    match q.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid dryRun value: {other}: supported values: \"All\""
        ))),
    }
}

pub(crate) fn authorize(
    user: &User,
    target: &Target,
    verb: &str,
    name: &str,
    existing: Option<&Value>,
    incoming: Option<&Value>,
) -> Result<(), ApiError> {
    let attrs = attributes(target, verb, name);
    auth::authorize(user, &attrs, existing, incoming)
        .map_err(|why| forbidden(user, target, verb, name, &why))
}

fn attributes<'a>(target: &'a Target, verb: &'a str, name: &'a str) -> Attributes<'a> {
    Attributes {
        verb,
        group: target.rt.group,
        resource: target.rt.plural,
        subresource: target.sub.as_deref().unwrap_or(""),
        namespace: &target.namespace,
        name,
    }
}

/// The 403 for a request `auth` refused, worded as kube-apiserver's.
fn forbidden(user: &User, target: &Target, verb: &str, name: &str, why: &str) -> ApiError {
    let sub = target
        .sub
        .as_deref()
        .map(|s| format!("/{s}"))
        .unwrap_or_default();
    let scope = if target.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", target.namespace)
    };
    let group = if target.rt.group.is_empty() {
        "\"\"".to_string()
    } else {
        format!("\"{}\"", target.rt.group)
    };
    let what = if name.is_empty() {
        format!("{}{sub}", target.rt.plural)
    } else {
        format!("{}{sub} \"{name}\"", target.rt.plural)
    };
    ApiError::forbidden(format!(
        "{what} is forbidden: User \"{}\" cannot {verb} resource \"{}{sub}\" in API group {group} {scope}: {why}",
        user.name, target.rt.plural
    ))
}

/// The Node authorizer's part that needs the store: a node identity may `get` a Secret
/// or ConfigMap only if a pod bound to it references it (see
/// [`auth::authorize_node_read`]); other reads pass.
pub(crate) async fn authorize_node_read(
    api: &Api,
    user: &User,
    target: &Target,
    verb: &str,
    name: &str,
) -> Result<(), ApiError> {
    let attrs = attributes(target, verb, name);
    if !auth::node_read_needs_pods(user, &attrs) {
        return Ok(());
    }
    let pods_rt = kinds::find("", "v1", "pods").expect("pods are served");
    let prefix = pods_rt.namespace_prefix(&target.namespace);
    let (entries, _) = api
        .run(move |s| s.list(&prefix))
        .await
        .map_err(|e| store_error(pods_rt, "", e))?;
    // Only pods whose bytes mention the name can reference it.
    let needle = name.as_bytes();
    let pods: Vec<Value> = entries
        .iter()
        .filter(|e| !needle.is_empty() && e.value.windows(needle.len()).any(|w| w == needle))
        .filter_map(|e| decode_entry(e).ok())
        .collect();
    auth::authorize_node_read(user, &attrs, &pods)
        .map_err(|why| forbidden(user, target, verb, name, &why))
}

/// GET of one object.
pub(crate) async fn get_object(api: &Api, target: &Target) -> Result<Value, ApiError> {
    let name = target.name.clone().unwrap_or_default();
    let key = target.rt.key(&target.namespace, &name);
    let entry = api
        .run(move |s| s.get(&key))
        .await
        .map_err(|e| store_error(target.rt, &name, e))?
        .ok_or_else(|| ApiError::not_found(&target.rt.qualified(), &name))?;
    decode_entry(&entry)
}

pub(crate) fn now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

pub(crate) fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta(obj)})
}

/// Label and field selectors of a list or watch, checked against the kind.
pub(crate) struct Filter {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
    rt: &'static ResourceType,
}

impl Filter {
    pub(crate) fn new(
        rt: &'static ResourceType,
        q: &HashMap<String, String>,
    ) -> Result<Self, ApiError> {
        let labels = match q.get("labelSelector").filter(|s| !s.is_empty()) {
            Some(s) => {
                Some(LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?)
            }
            None => None,
        };
        let fields = match q.get("fieldSelector").filter(|s| !s.is_empty()) {
            Some(s) => {
                let f =
                    FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?;
                for name in f.fields() {
                    if objects::field_value(rt, &Value::Null, name).is_none() {
                        return Err(ApiError::bad_request(format!(
                            "field label not supported: {name}"
                        )));
                    }
                }
                Some(f)
            }
            None => None,
        };
        Ok(Self { labels, fields, rt })
    }

    /// Whether the filter reads fields other than labels.
    pub(crate) fn has_fields(&self) -> bool {
        self.fields.is_some()
    }

    /// Whether an object's metadata passes the label selector.
    pub(crate) fn matches_labels(&self, metadata: &serde_json::Map<String, Value>) -> bool {
        let Some(l) = &self.labels else { return true };
        let empty = serde_json::Map::new();
        let labels = metadata
            .get("labels")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        l.matches(labels)
    }

    /// Whether an object passes.
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        if let Some(l) = &self.labels {
            let empty = serde_json::Map::new();
            let labels = meta(obj)
                .get("labels")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            if !l.matches(labels) {
                return false;
            }
        }
        if let Some(f) = &self.fields {
            let rt = self.rt;
            if !f.matches(|field| objects::field_value(rt, obj, field).flatten()) {
                return false;
            }
        }
        true
    }

    /// Whether the filter lets everything through.
    pub(crate) fn is_empty(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }
}

/// A list's `continue` token: where the next page starts.
fn encode_continue(rv: u64, after: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&json!({"rv": rv, "start": after})).unwrap_or_default())
}

fn decode_continue(token: &str) -> Result<String, ApiError> {
    let bad = || ApiError::bad_request("continue key is not valid".to_string());
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    v.get("start")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(bad)
}

pub(crate) async fn list(
    api: &Api,
    target: &Target,
    q: &HashMap<String, String>,
    as_: As,
) -> Result<Response, ApiError> {
    let rt = target.rt;
    let filter = Filter::new(rt, q)?;
    let limit = match q.get("limit").filter(|s| !s.is_empty()) {
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?,
        None => 0,
    };
    let start = match q.get("continue").filter(|s| !s.is_empty()) {
        Some(c) => Some(decode_continue(c)?),
        None => None,
    };
    let prefix = rt.namespace_prefix(&target.namespace);
    let store = api.store.clone();
    // Listing, filtering and encoding run off the async threads: for 10,000 objects
    // they take tens of milliseconds.
    let body = tokio::task::spawn_blocking(move || {
        let (entries, rev) = store.list(&prefix).map_err(|e| store_error(rt, "", e))?;
        // A JSON list whose filter needs no more than labels copies the stored bytes
        // (only `metadata` is parsed, to add the resourceVersion); anything else works
        // on parsed objects.
        let raw = as_ == As::Json && !filter.has_fields();
        // Decoding and filtering run in parallel (rayon), in key order.
        use rayon::prelude::*;
        let candidates: Vec<&Entry> = entries
            .iter()
            .filter(|e| start.as_deref().is_none_or(|s| e.key.as_str() > s))
            .collect();
        let decode = |e: &&Entry| -> Result<Option<Listed>, ApiError> {
            if raw {
                let (bytes, metadata) = raw_with_rv(e)?;
                Ok(filter
                    .matches_labels(&metadata)
                    .then_some(Listed::Raw(bytes)))
            } else {
                let obj = decode_entry(e)?;
                Ok(filter.matches(&obj).then_some(Listed::Object(obj)))
            }
        };
        let mut raw_items: Vec<(String, Vec<u8>)> = Vec::new();
        let mut items: Vec<(String, Value)> = Vec::new();
        let limit = usize::try_from(limit).unwrap_or(0);
        let full = |n: usize| limit > 0 && n >= limit;
        // Candidates are decoded a page at a time (the whole list without a limit), so a
        // paged list decodes about one page per request.
        let mut pos = 0;
        while pos < candidates.len() && !full(raw_items.len() + items.len()) {
            let want = if limit > 0 {
                (limit - raw_items.len() - items.len()).max(64)
            } else {
                candidates.len()
            };
            let chunk = &candidates[pos..(pos + want).min(candidates.len())];
            let decoded: Vec<_> = chunk.par_iter().map(decode).collect::<Result<_, _>>()?;
            for (e, d) in chunk.iter().zip(decoded) {
                if full(raw_items.len() + items.len()) {
                    break;
                }
                pos += 1;
                match d {
                    Some(Listed::Object(o)) => items.push((e.key.clone(), o)),
                    Some(Listed::Raw(bytes)) => raw_items.push((e.key.clone(), bytes)),
                    None => {}
                }
            }
        }
        // Whether more may follow (the next page can turn out empty under a selector);
        // how many, only without selectors, as kube-apiserver reports it.
        let more = pos < candidates.len();
        let remaining = (filter.is_empty() && more).then(|| candidates.len() - pos);
        let mut metadata = json!({"resourceVersion": rev.to_string()});
        let last_key = raw_items
            .last()
            .map(|(k, _)| k)
            .or(items.last().map(|(k, _)| k));
        if let (true, Some(last_key)) = (more, last_key) {
            metadata["continue"] = json!(encode_continue(rev, last_key));
            if let Some(r) = remaining {
                metadata["remainingItemCount"] = json!(r);
            }
        }
        if raw {
            let mut out =
                Vec::with_capacity(raw_items.iter().map(|(_, b)| b.len() + 1).sum::<usize>() + 256);
            let head = serde_json::to_string(&json!({
                "kind": format!("{}List", rt.kind),
                "apiVersion": rt.api_version(),
                "metadata": metadata,
            }))
            .unwrap_or_default();
            // The head without its closing brace, then the items.
            out.extend_from_slice(head.strip_suffix('}').unwrap_or(&head).as_bytes());
            out.extend_from_slice(b",\"items\":[");
            for (i, (_, b)) in raw_items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b);
            }
            out.extend_from_slice(b"]}");
            return Ok(out);
        }
        let objs: Vec<Value> = items.into_iter().map(|(_, o)| o).collect();
        let body = match as_ {
            As::Json => json!({
                "kind": format!("{}List", rt.kind),
                "apiVersion": rt.api_version(),
                "metadata": metadata,
                "items": objs,
            }),
            As::Table(include) => {
                let at = now();
                let parts: Vec<Value> = objs
                    .par_chunks(512)
                    .map(|c| table::table(rt.kind, c, at, include))
                    .collect();
                let mut t = table::table(rt.kind, &[], at, include);
                let rows: Vec<Value> = parts
                    .into_iter()
                    .flat_map(|mut p| match p["rows"].take() {
                        Value::Array(r) => r,
                        _ => Vec::new(),
                    })
                    .collect();
                t["rows"] = Value::Array(rows);
                t["metadata"] = metadata;
                t
            }
            As::Metadata => json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
                "items": objs.iter().map(partial_metadata).collect::<Vec<_>>(),
            }),
        };
        Ok::<_, ApiError>(serde_json::to_vec(&body).unwrap_or_default())
    })
    .await
    .map_err(|e| ApiError::internal(format!("list task failed: {e}")))??;
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// A listed object: its bytes (JSON lists), or parsed.
enum Listed {
    Raw(Vec<u8>),
    Object(Value),
}

/// A stored object's bytes with its `resourceVersion` added, parsing only its top level
/// (values other than `metadata` are copied as they are), and its metadata.
fn raw_with_rv(e: &Entry) -> Result<(Vec<u8>, serde_json::Map<String, Value>), ApiError> {
    use serde_json::value::RawValue;
    let corrupt = |err: serde_json::Error| {
        ApiError::internal(format!("stored object {} is corrupt: {err}", e.key))
    };
    let top: std::collections::BTreeMap<String, &RawValue> =
        serde_json::from_slice(&e.value).map_err(corrupt)?;
    let mut metadata: serde_json::Map<String, Value> = match top.get("metadata") {
        Some(m) => serde_json::from_str(m.get()).map_err(corrupt)?,
        None => serde_json::Map::new(),
    };
    metadata.insert("resourceVersion".into(), json!(e.mod_revision.to_string()));
    let mut out = Vec::with_capacity(e.value.len() + 32);
    out.push(b'{');
    let mut first = true;
    let mut wrote_meta = false;
    for (k, v) in &top {
        if !first {
            out.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut out, k).map_err(corrupt)?;
        out.push(b':');
        if k == "metadata" {
            serde_json::to_writer(&mut out, &metadata).map_err(corrupt)?;
            wrote_meta = true;
        } else {
            out.extend_from_slice(v.get().as_bytes());
        }
    }
    if !wrote_meta {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(b"\"metadata\":");
        serde_json::to_writer(&mut out, &metadata).map_err(corrupt)?;
    }
    out.push(b'}');
    Ok((out, metadata))
}

/// POST: creates an object (generated name, uid, timestamps, defaults, validation).
pub(crate) async fn create(
    api: &Api,
    target: &Target,
    obj: &mut Value,
    q: &HashMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<Value, ApiError> {
    let rt = target.rt;
    objects::check_type(rt, obj)?;
    let fv = field_validation(q)?;
    let dry_run = is_dry_run(q)?;
    check_fields(rt, obj, fv, &[], warnings)?;
    // Namespace: from the URL; a different one in the body is an error.
    if rt.namespaced {
        let body_ns = meta_str(obj, "namespace").to_string();
        if !body_ns.is_empty() && body_ns != target.namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta_mut(obj).insert("namespace".into(), json!(target.namespace));
    } else {
        meta_mut(obj).remove("namespace");
    }
    let mut name = meta_str(obj, "name").to_string();
    if name.is_empty() {
        let prefix = meta_str(obj, "generateName").to_string();
        if prefix.is_empty() {
            return Err(ApiError::invalid(
                rt.kind,
                "",
                &[(
                    "metadata.name".into(),
                    "Required value: name or generateName is required".into(),
                )],
            ));
        }
        name = objects::generate_name(&prefix);
        meta_mut(obj).insert("name".into(), json!(name));
    }
    if let Err(msg) = objects::validate_name(rt, &name) {
        return Err(ApiError::invalid(
            rt.kind,
            &name,
            &[("metadata.name".into(), msg)],
        ));
    }
    let uid = uuid::Uuid::new_v4().to_string();
    {
        let m = meta_mut(obj);
        for k in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            m.remove(k);
        }
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(objects::now_rfc3339()));
        if rt.has_generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
    }
    objects::apply_defaults(rt, obj);
    if rt.kind == "Job" {
        objects::job_selector(obj, &name, &uid);
    }
    if rt.has_subresource("status") {
        objects::initial_status(rt, obj);
    }
    let errs = objects::validate(rt, obj);
    if !errs.is_empty() {
        return Err(ApiError::invalid(rt.kind, &name, &errs));
    }
    if rt.kind == "Pod" {
        admit_priority(api, obj, &name).await?;
    }
    if rt.namespaced {
        let ns_rt = kinds::find("", "v1", "namespaces").expect("namespaces are served");
        let ns_key = ns_rt.key("", &target.namespace);
        let ns = api
            .run(move |s| s.get(&ns_key))
            .await
            .map_err(|e| store_error(ns_rt, &target.namespace, e))?;
        let Some(ns) = ns else {
            return Err(ApiError::not_found("namespaces", &target.namespace));
        };
        let ns = decode_entry(&ns)?;
        if objects::path(&ns, "status.phase").and_then(Value::as_str) == Some("Terminating") {
            return Err(ApiError::forbidden(format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                rt.qualified(),
                target.namespace
            )));
        }
    }
    // Cluster IP and node ports; the guard is held until the Service is stored.
    let _allocated = if rt.kind == "Service" {
        Some(admit_service(api, &target.namespace, &name, None, obj).await?)
    } else {
        None
    };
    if dry_run {
        return Ok(obj.clone());
    }
    let key = rt.key(&target.namespace, &name);
    let bytes = encode(obj);
    let entry = api
        .run(move |s| s.create(&key, &bytes))
        .await
        .map_err(|e| store_error(rt, &name, e))?;
    meta_mut(obj).insert(
        "resourceVersion".into(),
        json!(entry.mod_revision.to_string()),
    );
    Ok(obj.clone())
}

/// The Priority admission plugin: a pod's `priority` (and `preemptionPolicy`) come from
/// its PriorityClass, or from the global default class, or are 0.
async fn admit_priority(api: &Api, pod: &mut Value, name: &str) -> Result<(), ApiError> {
    let pcs = kinds::find("scheduling.k8s.io", "v1", "priorityclasses").expect("served");
    let class_name = objects::path(pod, "spec.priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let forbidden =
        |why: String| ApiError::forbidden(format!("pods \"{name}\" is forbidden: {why}"));
    let class = if class_name.is_empty() {
        let prefix = pcs.prefix();
        let (entries, _) = api
            .run(move |s| s.list(&prefix))
            .await
            .map_err(|e| store_error(pcs, "", e))?;
        let mut default = None;
        for e in &entries {
            let c = decode_entry(e)?;
            if c.get("globalDefault").and_then(Value::as_bool) == Some(true) {
                default = Some(c);
                break;
            }
        }
        default
    } else {
        let key = pcs.key("", &class_name);
        match api
            .run(move |s| s.get(&key))
            .await
            .map_err(|e| store_error(pcs, &class_name, e))?
        {
            Some(e) => Some(decode_entry(&e)?),
            None => {
                return Err(forbidden(format!(
                    "no PriorityClass with name {class_name} was found"
                )))
            }
        }
    };
    let value = class
        .as_ref()
        .and_then(|c| c.get("value"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let given = objects::path(pod, "spec.priority").and_then(Value::as_i64);
    if given.is_some_and(|p| p != value) {
        return Err(forbidden(format!(
            "the integer value of priority ({}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name",
            given.unwrap_or_default()
        )));
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    spec.insert("priority".into(), json!(value));
    if let Some(c) = &class {
        if class_name.is_empty() {
            spec.insert("priorityClassName".into(), json!(meta_str(c, "name")));
        }
        let policy = c
            .get("preemptionPolicy")
            .cloned()
            .unwrap_or(json!("PreemptLowerPriority"));
        spec.entry("preemptionPolicy").or_insert(policy);
    }
    Ok(())
}

/// The `autoscaling/v1` Scale view of a Deployment or ReplicaSet.
pub(crate) fn scale_of(obj: &Value) -> Value {
    let m = meta(obj);
    let selector = objects::path(obj, "spec.selector.matchLabels")
        .and_then(Value::as_object)
        .map(|ml| {
            ml.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m.get("name"), "namespace": m.get("namespace"), "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"), "creationTimestamp": m.get("creationTimestamp"),
        },
        "spec": {"replicas": objects::path(obj, "spec.replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": objects::path(obj, "status.replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// POST pods/NAME/binding: assigns the pod to a node, once.
pub(crate) async fn bind(
    api: &Api,
    target: &Target,
    binding: &Value,
    q: &HashMap<String, String>,
) -> Result<(), ApiError> {
    let rt = target.rt;
    let name = target.name.clone().unwrap_or_default();
    kinds::binding_unknown_fields(binding)
        .map_err(|e| ApiError::bad_request(format!("Binding cannot be handled: {e}")))?;
    let body_name = meta_str(binding, "name");
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the binding ({body_name}) does not match the pod ({name})"
        )));
    }
    let node = objects::path(binding, "target.name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if node.is_empty() {
        return Err(ApiError::invalid(
            "Binding",
            &name,
            &[("target.name".into(), "Required value".into())],
        ));
    }
    let kind = objects::path(binding, "target.kind")
        .and_then(Value::as_str)
        .unwrap_or("Node");
    if kind != "Node" {
        return Err(ApiError::invalid(
            "Binding",
            &name,
            &[(
                "target.kind".into(),
                format!("Invalid value: \"{kind}\": must be empty or 'Node'"),
            )],
        ));
    }
    let dry_run = is_dry_run(q)?;
    for _ in 0..5 {
        let pod = get_object(api, target).await?;
        if meta(&pod).contains_key("deletionTimestamp") {
            return Err(ApiError::conflict(
                &rt.qualified(),
                &name,
                "pod is being deleted, cannot be assigned to a host",
            ));
        }
        if let Some(current) = objects::path(&pod, "spec.nodeName").and_then(Value::as_str) {
            if !current.is_empty() {
                return Err(ApiError::conflict(
                    &rt.qualified(),
                    &name,
                    format!("pod {name} is already assigned to node \"{current}\""),
                ));
            }
        }
        let mut new = pod.clone();
        new["spec"]["nodeName"] = json!(node);
        let cond = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
            "lastTransitionTime": objects::now_rfc3339()});
        let conds = new["status"]
            .as_object_mut()
            .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
        if let Some(Value::Array(list)) = conds {
            list.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
            list.push(cond);
        }
        if dry_run {
            return Ok(());
        }
        let rev: u64 = meta_str(&pod, "resourceVersion").parse().unwrap_or(0);
        let key = rt.key(&target.namespace, &name);
        let bytes = encode(&new);
        match api.run(move |s| s.update(&key, &bytes, Some(rev))).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_error(rt, &name, e)),
        }
    }
    Err(ApiError::conflict(
        &rt.qualified(),
        &name,
        "too many concurrent changes",
    ))
}

/// DeleteOptions from the body (if any) and the query.
#[derive(Debug, Default, Clone)]
pub(crate) struct DeleteOptions {
    grace: Option<i64>,
    propagation: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    dry_run: bool,
}

pub(crate) fn delete_options(
    body: &[u8],
    q: &HashMap<String, String>,
) -> Result<DeleteOptions, ApiError> {
    let mut o = DeleteOptions::default();
    if !body.iter().all(u8::is_ascii_whitespace) {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
        o.grace = v.get("gracePeriodSeconds").and_then(Value::as_i64);
        o.propagation = v
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string);
        o.uid = objects::path(&v, "preconditions.uid")
            .and_then(Value::as_str)
            .map(str::to_string);
        o.resource_version = objects::path(&v, "preconditions.resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(Value::Array(d)) = v.get("dryRun") {
            o.dry_run = d.iter().any(|x| x == "All");
        }
    }
    if let Some(g) = q.get("gracePeriodSeconds") {
        o.grace = Some(
            g.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds: {g}")))?,
        );
    }
    if let Some(p) = q.get("propagationPolicy") {
        o.propagation = Some(p.clone());
    }
    o.dry_run |= is_dry_run(q)?;
    if let Some(p) = &o.propagation {
        if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            )));
        }
    }
    Ok(o)
}

/// Whether a pod's deletion waits for its node agent (bound to a node that is Ready).
async fn pod_needs_grace(api: &Api, pod: &Value) -> Result<bool, ApiError> {
    let node = objects::path(pod, "spec.nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node.is_empty() {
        return Ok(false);
    }
    let nodes = kinds::find("", "v1", "nodes").expect("nodes are served");
    let key = nodes.key("", node);
    let Some(entry) = api
        .run(move |s| s.get(&key))
        .await
        .map_err(|e| store_error(nodes, node, e))?
    else {
        return Ok(false);
    };
    let n = decode_entry(&entry)?;
    let ready = objects::path(&n, "status.conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type") == Some(&json!("Ready")) && c.get("status") == Some(&json!("True"))
            })
        });
    Ok(ready)
}

/// DELETE of one object: immediate, or graceful (`deletionTimestamp`) while finalizers
/// remain or a running pod's agent has to stop it.
pub(crate) async fn delete(
    api: &Api,
    target: &Target,
    opts: &DeleteOptions,
) -> Result<(u16, Value), ApiError> {
    let rt = target.rt;
    let name = target.name.clone().unwrap_or_default();
    let key = rt.key(&target.namespace, &name);
    for _ in 0..5 {
        let obj = get_object(api, target).await?;
        if let Some(uid) = &opts.uid {
            if meta_str(&obj, "uid") != uid {
                return Err(ApiError::conflict(
                    &rt.qualified(),
                    &name,
                    format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&obj, "uid")
                    ),
                ));
            }
        }
        if let Some(rv) = &opts.resource_version {
            if meta_str(&obj, "resourceVersion") != rv {
                return Err(ApiError::conflict(
                    &rt.qualified(),
                    &name,
                    format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}", meta_str(&obj, "resourceVersion")),
                ));
            }
        }
        let rev: u64 = meta_str(&obj, "resourceVersion").parse().unwrap_or(0);
        let mut finalizers: Vec<String> = meta(&obj)
            .get("finalizers")
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        match opts.propagation.as_deref() {
            Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                finalizers.push("foregroundDeletion".into())
            }
            Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => {
                finalizers.push("orphan".into())
            }
            _ => {}
        }
        let grace =
            if rt.kind == "Pod" && opts.grace != Some(0) && pod_needs_grace(api, &obj).await? {
                Some(opts.grace.unwrap_or_else(|| {
                    objects::path(&obj, "spec.terminationGracePeriodSeconds")
                        .and_then(Value::as_i64)
                        .unwrap_or(30)
                }))
            } else {
                None
            };
        if finalizers.is_empty() && grace.is_none() {
            if rt.kind == "Namespace" {
                return delete_namespace(api, target, obj, opts.dry_run).await;
            }
            if opts.dry_run {
                return Ok((200, obj));
            }
            let k = key.clone();
            match api.run(move |s| s.delete(&k, Some(rev))).await {
                Ok(e) => {
                    let mut last = decode_entry(&e)?;
                    meta_mut(&mut last)
                        .insert("resourceVersion".into(), json!(e.mod_revision.to_string()));
                    return Ok((200, last));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(store_error(rt, &name, e)),
            }
        }
        // Graceful: mark it; finalizers' owners (or the pod's agent) finish the job.
        let mut new = obj.clone();
        {
            let m = meta_mut(&mut new);
            if !m.contains_key("deletionTimestamp") {
                let when = match grace {
                    Some(g) => {
                        let t = now() + k8s_openapi::jiff::SignedDuration::from_secs(g);
                        t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
                    }
                    None => objects::now_rfc3339(),
                };
                m.insert("deletionTimestamp".into(), json!(when));
                m.insert(
                    "deletionGracePeriodSeconds".into(),
                    json!(grace.unwrap_or(0)),
                );
            }
            if !finalizers.is_empty() {
                m.insert("finalizers".into(), json!(finalizers));
            }
        }
        if opts.dry_run {
            return Ok((200, new));
        }
        let bytes = encode(&new);
        let k = key.clone();
        match api.run(move |s| s.update(&k, &bytes, Some(rev))).await {
            Ok(e) => {
                meta_mut(&mut new)
                    .insert("resourceVersion".into(), json!(e.mod_revision.to_string()));
                return Ok((202, new));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_error(rt, &name, e)),
        }
    }
    Err(ApiError::conflict(
        &rt.qualified(),
        &name,
        "too many concurrent changes",
    ))
}

/// Deleting a namespace deletes everything in it, then the namespace.
async fn delete_namespace(
    api: &Api,
    target: &Target,
    ns_obj: Value,
    dry_run: bool,
) -> Result<(u16, Value), ApiError> {
    let ns = target.name.clone().unwrap_or_default();
    if matches!(
        ns.as_str(),
        "default" | "kube-system" | "kube-public" | "kube-node-lease"
    ) {
        return Err(ApiError::forbidden(format!(
            "namespaces \"{ns}\" is forbidden: this namespace may not be deleted"
        )));
    }
    if dry_run {
        return Ok((200, ns_obj));
    }
    let mut marked = ns_obj.clone();
    marked["status"]["phase"] = json!("Terminating");
    meta_mut(&mut marked).insert("deletionTimestamp".into(), json!(objects::now_rfc3339()));
    let rev: u64 = meta_str(&ns_obj, "resourceVersion").parse().unwrap_or(0);
    let key = target.rt.key("", &ns);
    let bytes = encode(&marked);
    api.run(move |s| s.update(&key, &bytes, Some(rev)))
        .await
        .map_err(|e| store_error(target.rt, &ns, e))?;
    for rt in kinds::RESOURCES.iter().filter(|r| r.namespaced) {
        let prefix = rt.namespace_prefix(&ns);
        let (entries, _) = api
            .run(move |s| s.list(&prefix))
            .await
            .map_err(|e| store_error(rt, "", e))?;
        for e in entries {
            let k = e.key.clone();
            match api.run(move |s| s.delete(&k, None)).await {
                Ok(_) | Err(StoreError::NotFound(_)) => {}
                Err(err) => return Err(store_error(rt, "", err)),
            }
        }
    }
    let key = target.rt.key("", &ns);
    let e = api
        .run(move |s| s.delete(&key, None))
        .await
        .map_err(|e| store_error(target.rt, &ns, e))?;
    Ok((200, decode_entry(&e)?))
}

pub(crate) async fn delete_collection(
    api: &Api,
    target: &Target,
    q: &HashMap<String, String>,
    opts: &DeleteOptions,
) -> Result<Response, ApiError> {
    let rt = target.rt;
    let filter = Filter::new(rt, q)?;
    let prefix = rt.namespace_prefix(&target.namespace);
    let (entries, _) = api
        .run(move |s| s.list(&prefix))
        .await
        .map_err(|e| store_error(rt, "", e))?;
    let mut items = Vec::new();
    for e in &entries {
        let obj = decode_entry(e)?;
        if !filter.matches(&obj) {
            continue;
        }
        let t = Target {
            rt,
            namespace: meta_str(&obj, "namespace").to_string(),
            name: Some(meta_str(&obj, "name").to_string()),
            sub: None,
        };
        match delete(api, &t, opts).await {
            Ok((_, v)) => items.push(v),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_response(
        200,
        &json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": {}, "items": items}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_lists_add_the_resource_version_and_keep_the_rest() {
        let stored = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "data": {"k": "\"metadata\":{"}, "metadata": {"name": "c", "labels": {"a": "b"}},
            "x": {"metadata": {"deep": 1}}});
        let e = Entry {
            key: "/registry/core/configmaps/default/c".into(),
            value: serde_json::to_vec(&stored).unwrap(),
            create_revision: 3,
            mod_revision: 7,
        };
        let (bytes, meta) = raw_with_rv(&e).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v, decode_entry(&e).unwrap());
        assert_eq!(v["metadata"]["resourceVersion"], "7");
        assert_eq!(v["x"]["metadata"], json!({"deep": 1}));
        assert_eq!(meta["labels"]["a"], "b");
        let e2 = Entry {
            value: b"[1]".to_vec(),
            ..e
        };
        assert_eq!(raw_with_rv(&e2).unwrap_err().code, 500);
        // Values written by someone else (etcd is shared) never panic a request.
        for bad in [&b"[1]"[..], b"7", b"{\"metadata\":3}", b"not json"] {
            let e3 = Entry {
                value: bad.to_vec(),
                ..e2.clone()
            };
            assert_eq!(decode_entry(&e3).unwrap_err().code, 500);
        }
    }

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_continue(7, "/registry/core/pods/default/p");
        assert_eq!(
            decode_continue(&t).unwrap(),
            "/registry/core/pods/default/p"
        );
        assert_eq!(decode_continue("%%%").unwrap_err().code, 400);
    }
}
