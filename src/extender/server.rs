//! The HTTP side: an axum [`Router`] serving the extender verbs over POST + JSON.
//!
//! Every request body is read as bytes (up to [`ExtenderConfig::body_limit`]) and decoded
//! with serde_json, so each failure has its own status: malformed JSON 400, valid JSON
//! of the wrong shape or an unreadable Kubernetes object 422, a body over the limit 413,
//! an unknown path 404, a method other than POST 405. Every error reply is a JSON object
//! `{"Error": "…"}` (kube-scheduler treats any non-200 as a failed call) and every 4xx
//! or 5xx is logged with `tracing::warn!`.
//!
//! Only reading the body happens on the async runtime's threads: decoding, conversion
//! and the verb itself run on tokio's blocking pool, so a heavy body never keeps
//! `/healthz` or other requests waiting.

use super::cache::{Cache, Verdicts};
use super::convert::{self, ConvertError, PodInfo, PodMemo};
use super::fast::{self, NamesMemo, ResolvedNames};
use super::scan;
use super::wire::{
    ExtenderBindingArgs, ExtenderBindingResult, ExtenderPreemptionArgs, ExtenderPreemptionResult,
    HostPriority, MetaPod, MetaVictims, NodeList,
};
use super::ExtenderConfig;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tower_http::limit::RequestBodyLimitLayer;

/// Shared state of the server: the cache behind a read–write lock (filter, prioritize
/// and preempt read it concurrently; bind, full-mode node updates and re-placed pods
/// write), the memos of resolved name lists and of converted pods, and the
/// configuration.
#[derive(Debug)]
pub struct ExtenderState {
    cache: RwLock<Cache>,
    names: NamesMemo,
    pods: PodMemo,
    config: ExtenderConfig,
}

impl ExtenderState {
    /// State over `cache`.
    pub fn new(cache: Cache, config: ExtenderConfig) -> Arc<Self> {
        Arc::new(ExtenderState {
            cache: RwLock::new(cache),
            names: NamesMemo::default(),
            pods: PodMemo::default(),
            config,
        })
    }

    /// Reads the cache (a poisoned lock is taken over: the cache has no invariant a
    /// panicking verb could break halfway that a later call cannot live with).
    pub fn read(&self) -> RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the cache (poisoning as in [`ExtenderState::read`]).
    pub fn write(&self) -> RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// An error reply: status plus `{"Error": message}`.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        tracing::warn!(status = self.0.as_u16(), error = %self.1, "extender error reply");
        (self.0, Json(serde_json::json!({ "Error": self.1 }))).into_response()
    }
}

impl From<ConvertError> for ApiError {
    fn from(e: ConvertError) -> Self {
        ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
    }
}

fn decode<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let bytes = body.map_err(|r| ApiError(r.status(), r.body_text()))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        let status = match e.classify() {
            serde_json::error::Category::Data => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError(status, format!("invalid request body: {e}"))
    })
}

/// The router: `POST {prefix}/filter`, `/prioritize`, `/bind`, `/preempt` (verb names
/// from the config), `GET /healthz`, a JSON 404 for anything else, a JSON 405 for other
/// methods, and the body limit.
pub fn router(state: Arc<ExtenderState>) -> Router {
    let c = &state.config;
    let path = |verb: &str| {
        let prefix = c.path_prefix.trim_end_matches('/');
        format!("{prefix}/{}", verb.trim_start_matches('/'))
    };
    let limit = c.body_limit;
    Router::new()
        .route(&path(&c.filter_verb), post(filter))
        .route(&path(&c.prioritize_verb), post(prioritize))
        .route(&path(&c.bind_verb), post(bind))
        .route(&path(&c.preempt_verb), post(preempt))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "unknown path (verb)".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError(
                StatusCode::METHOD_NOT_ALLOWED,
                "extender verbs take POST".into(),
            )
        })
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(middleware::from_fn_with_state(limit, json_413))
        .layer(middleware::from_fn(log_errors))
        .with_state(state)
}

/// Gives the body-limit layer's own 413 (a body whose Content-Length is over the
/// limit, refused before it is read) the JSON error body every other 4xx has.
async fn json_413(State(limit): State<usize>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over the limit of {limit} bytes"),
        )
        .into_response();
    }
    resp
}

/// Logs every 4xx/5xx reply with its method and path.
async fn log_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let uri = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status();
    if status.is_client_error() || status.is_server_error() {
        tracing::warn!(%method, path = %uri, status = status.as_u16(), "extender request rejected");
    }
    resp
}

/// [`ExtenderArgs`](super::wire::ExtenderArgs) decoded without copying: the pod and
/// the node-name list stay raw JSON text (the list is resolved through the
/// [`NamesMemo`]); same keys and aliases.
#[derive(Deserialize)]
struct ArgsRef<'a> {
    #[serde(rename = "Pod", alias = "pod", borrow)]
    pod: &'a RawValue,
    #[serde(rename = "Nodes", alias = "nodes", default)]
    nodes: Option<NodeList>,
    #[serde(
        rename = "NodeNames",
        alias = "nodenames",
        alias = "nodeNames",
        default,
        borrow
    )]
    node_names: Option<&'a RawValue>,
}

/// [`ExtenderFilterResult`](super::wire::ExtenderFilterResult) in full mode, for encoding.
#[derive(Serialize)]
struct FilterReply<'a> {
    #[serde(rename = "Nodes")]
    nodes: Option<NodeList>,
    #[serde(rename = "NodeNames")]
    node_names: Option<Vec<&'a str>>,
    #[serde(rename = "FailedNodes")]
    failed_nodes: BTreeMap<&'a str, &'a str>,
    #[serde(rename = "FailedAndUnresolvableNodes")]
    failed_and_unresolvable_nodes: BTreeMap<&'a str, &'a str>,
    #[serde(rename = "Error")]
    error: &'static str,
}

fn invalid_body(e: serde_json::Error) -> ApiError {
    let status = match e.classify() {
        serde_json::error::Category::Data => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError(status, format!("invalid request body: {e}"))
}

fn decode_ref(bytes: &Bytes) -> Result<ArgsRef<'_>, ApiError> {
    serde_json::from_slice(bytes).map_err(invalid_body)
}

/// What a filter or prioritize call is about, with the cache prepared for it.
enum Call {
    /// Full mode: the request's node objects (upserted) and their names.
    Full(NodeList, Vec<String>),
    /// Node-names mode: the resolved list.
    Names(Arc<ResolvedNames>),
}

/// Decodes a filter/prioritize body and prepares the cache: full-mode nodes upserted,
/// the pod unbound if the cache holds it (the scheduler is placing it again) and
/// remembered for `/bind`. Returns the pod, the call and a read guard on the cache.
fn prepare<'s>(
    st: &'s ExtenderState,
    bytes: &Bytes,
) -> Result<(PodInfo, Call, RwLockReadGuard<'s, Cache>), ApiError> {
    // A repeated name list is recognised without scanning it (see `scan`); anything
    // else is decoded in full.
    let layout = st.read().layout();
    let (pod_raw, resolved, nodes) = match scan::scan(bytes, &st.names, layout) {
        Some(s) => (s.pod, Some(s.names), None),
        None => {
            let args = decode_ref(bytes)?;
            // The name list first: its errors come before the pod's, as with one
            // decode. Resolving only reads (ids change with a rebuild, which full mode,
            // below, may do; full mode then uses the names of its node objects anyway).
            let resolved = match args.node_names {
                Some(raw) => {
                    let cache = st.read();
                    Some(st.names.resolve(raw, &cache).map_err(invalid_body)?)
                }
                None => None,
            };
            (args.pod, resolved, args.nodes)
        }
    };
    let pod = st.pods.convert(pod_raw, "Pod")?;
    let key = pod.key();
    let full = match nodes {
        Some(list) => {
            let nodes = convert::nodes_from_json(&list.items, "Nodes.items")?;
            let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
            let mut cache = st.write();
            let (changed, dropped) = cache.upsert_nodes(nodes);
            if changed > 0 {
                tracing::info!(
                    changed,
                    dropped = dropped.len(),
                    "extender cache: nodes updated"
                );
            }
            cache.unbind_key(&key);
            Some((list, names))
        }
        None => {
            if resolved.is_none() {
                return Err(ApiError(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "neither Nodes nor NodeNames is set".into(),
                ));
            }
            let bound = st.read().is_bound(&key);
            if bound {
                st.write().unbind_key(&key);
            }
            None
        }
    };
    let cache = st.read();
    let call = match (full, resolved) {
        (Some((list, names)), _) => Call::Full(list, names),
        // A full-mode call elsewhere may have rebuilt the nodes since the list was
        // resolved: resolve it again under this guard.
        (None, Some(names)) if names.layout() != cache.layout() => Call::Names(
            st.names
                .resolve_text(names.raw(), &cache)
                .map_err(invalid_body)?,
        ),
        (None, Some(names)) => Call::Names(names),
        (None, None) => unreachable!("checked above"),
    };
    cache.remember(&pod);
    Ok((pod, call, cache))
}

fn json_bytes(body: Vec<u8>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Runs a verb's work (decoding, conversion, filtering, scoring) on tokio's blocking
/// pool, so that heavy bodies never hold the threads serving other requests (and
/// `/healthz`).
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request failed inside the extender (a bug): {e}"),
        ))
    })
}

async fn filter(
    State(st): State<Arc<ExtenderState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body.map_err(|r| ApiError(r.status(), r.body_text()))?;
    off_runtime(move || filter_now(&st, &bytes)).await
}

fn filter_now(st: &ExtenderState, bytes: &Bytes) -> Result<Response, ApiError> {
    let (pod, call, cache) = prepare(st, bytes)?;
    match call {
        Call::Names(names) => {
            let v = cache.filter_ids(&pod.pod, &names.ids);
            drop(cache);
            tracing::debug!(pod = %pod.key(), of = names.len(), "filter");
            Ok(json_bytes(fast::filter_reply(&names, &v)))
        }
        Call::Full(list, names) => {
            let v = cache.filter_ids(&pod.pod, &cache.node_ids(&names));
            drop(cache);
            let (failed, unresolvable) = fast::failure_maps(|i| names[i].as_str(), &v);
            let mut items: Vec<Option<_>> = list.items.into_iter().map(Some).collect();
            let kept = v
                .codes
                .iter()
                .enumerate()
                .filter(|(_, &c)| c == Verdicts::PASS)
                .filter_map(|(i, _)| items[i].take())
                .collect();
            let out = FilterReply {
                nodes: Some(NodeList {
                    metadata: list.metadata,
                    items: kept,
                }),
                node_names: None,
                failed_nodes: failed,
                failed_and_unresolvable_nodes: unresolvable,
                error: "",
            };
            Ok(Json(out).into_response())
        }
    }
}

async fn prioritize(
    State(st): State<Arc<ExtenderState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body.map_err(|r| ApiError(r.status(), r.body_text()))?;
    off_runtime(move || prioritize_now(&st, &bytes)).await
}

fn prioritize_now(st: &ExtenderState, bytes: &Bytes) -> Result<Response, ApiError> {
    let (pod, call, cache) = prepare(st, bytes)?;
    match call {
        Call::Names(names) => {
            let scores = cache.prioritize_ids(&pod.pod, &names.ids);
            drop(cache);
            Ok(json_bytes(fast::prioritize_reply(&names, &scores)))
        }
        Call::Full(_, names) => {
            let scores = cache.prioritize_ids(&pod.pod, &cache.node_ids(&names));
            drop(cache);
            let list: Vec<HostPriority> = names
                .into_iter()
                .zip(scores)
                .map(|(host, score)| HostPriority { host, score })
                .collect();
            Ok(Json(list).into_response())
        }
    }
}

async fn bind(
    State(st): State<Arc<ExtenderState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ExtenderBindingResult>, ApiError> {
    off_runtime(move || bind_now(&st, body)).await
}

fn bind_now(
    st: &ExtenderState,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ExtenderBindingResult>, ApiError> {
    let a: ExtenderBindingArgs = decode(body)?;
    let r = st
        .write()
        .bind(&a.pod_namespace, &a.pod_name, &a.pod_uid, &a.node);
    let error = match r {
        Ok(()) => String::new(),
        Err(e) => {
            tracing::warn!(error = %e, "bind not recorded");
            e
        }
    };
    Ok(Json(ExtenderBindingResult { error }))
}

async fn preempt(
    State(st): State<Arc<ExtenderState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ExtenderPreemptionResult>, ApiError> {
    off_runtime(move || preempt_now(&st, body)).await
}

fn preempt_now(
    st: &ExtenderState,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ExtenderPreemptionResult>, ApiError> {
    let a: ExtenderPreemptionArgs = decode(body)?;
    let pod = convert::pod_from_json(&a.pod, "Pod")?;
    // Both maps as (MetaVictims, victim keys); full pods give their UID and key.
    let mut cands: BTreeMap<String, (MetaVictims, Vec<String>)> = BTreeMap::new();
    if let Some(m) = a.node_name_to_meta_victims {
        for (node, v) in m {
            let keys = v.pods.iter().map(|p| p.uid.clone()).collect();
            cands.insert(node, (v, keys));
        }
    }
    if let Some(m) = a.node_name_to_victims {
        for (node, v) in m {
            let mut meta = MetaVictims {
                pods: Vec::new(),
                num_pdb_violations: v.num_pdb_violations,
            };
            let mut keys = Vec::new();
            for (i, raw) in v.pods.iter().enumerate() {
                let p: PodInfo =
                    convert::pod_from_json(raw, &format!("NodeNameToVictims[{node}].Pods[{i}]"))?;
                keys.push(p.key());
                meta.pods.push(MetaPod { uid: p.uid });
            }
            cands.insert(node, (meta, keys));
        }
    }
    let out = st.read().preempt(&pod, cands);
    Ok(Json(ExtenderPreemptionResult {
        node_name_to_meta_victims: out,
    }))
}
