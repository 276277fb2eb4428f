//! The HTTP side: an axum [`Router`] serving the extender verbs over POST + JSON.
//!
//! Every request body is read as bytes (up to [`ExtenderConfig::body_limit`]) and decoded
//! with serde_json, so each failure has its own status: malformed JSON 400, valid JSON
//! of the wrong shape or an unreadable Kubernetes object 422, a body over the limit 413,
//! an unknown path 404, a method other than POST 405. Every error reply is a JSON object
//! `{"Error": "…"}` (kube-scheduler treats any non-200 as a failed call) and every 4xx
//! or 5xx is logged with `tracing::warn!`.

use super::cache::Cache;
use super::convert::{self, ConvertError, PodInfo};
use super::wire::{
    ExtenderBindingArgs, ExtenderBindingResult, ExtenderPreemptionArgs, ExtenderPreemptionResult,
    MetaPod, MetaVictims, NodeList,
};
use super::ExtenderConfig;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tower_http::limit::RequestBodyLimitLayer;

/// Shared state of the server: the cache behind a mutex (every verb reads or changes it
/// as a whole; the work per call is short) and the configuration.
#[derive(Debug)]
pub struct ExtenderState {
    cache: Mutex<Cache>,
    config: ExtenderConfig,
}

impl ExtenderState {
    /// State over `cache`.
    pub fn new(cache: Cache, config: ExtenderConfig) -> Arc<Self> {
        Arc::new(ExtenderState {
            cache: Mutex::new(cache),
            config,
        })
    }

    /// Locks the cache (a poisoned lock is taken over: the cache has no invariant a
    /// panicking verb could break halfway that a later call cannot live with).
    pub fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
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
        .layer(middleware::from_fn(log_errors))
        .with_state(state)
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

/// A node name borrowed from the request body when it has no escapes.
struct Name<'a>(Cow<'a, str>);

impl AsRef<str> for Name<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a node name (string)")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(V).map(Name)
    }
}

/// [`ExtenderArgs`](super::wire::ExtenderArgs) decoded without copying the node names (the hot path at thousands
/// of names per call); same keys and aliases.
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
    node_names: Option<Vec<Name<'a>>>,
}

/// [`ExtenderFilterResult`](super::wire::ExtenderFilterResult) with borrowed names, for encoding.
#[derive(Serialize)]
struct FilterReply<'a> {
    #[serde(rename = "Nodes")]
    nodes: Option<NodeList>,
    #[serde(rename = "NodeNames")]
    node_names: Option<Vec<&'a str>>,
    #[serde(rename = "FailedNodes")]
    failed_nodes: BTreeMap<String, String>,
    #[serde(rename = "FailedAndUnresolvableNodes")]
    failed_and_unresolvable_nodes: BTreeMap<String, String>,
    #[serde(rename = "Error")]
    error: &'static str,
}

/// The candidate names of a filter/prioritize call, upserting full-mode nodes first.
fn candidates<'a>(cache: &mut Cache, args: &mut ArgsRef<'a>) -> Result<Vec<Name<'a>>, ApiError> {
    if let Some(list) = &args.nodes {
        let nodes = convert::nodes_from_json(&list.items, "Nodes.items")?;
        let names: Vec<Name<'a>> = nodes
            .iter()
            .map(|n| Name(Cow::Owned(n.name.clone())))
            .collect();
        let (changed, dropped) = cache.upsert_nodes(nodes);
        if changed > 0 {
            tracing::info!(
                changed,
                dropped = dropped.len(),
                "extender cache: nodes updated"
            );
        }
        return Ok(names);
    }
    match args.node_names.take() {
        Some(names) => Ok(names),
        None => Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "neither Nodes nor NodeNames is set".into(),
        )),
    }
}

fn decode_ref(bytes: &Bytes) -> Result<ArgsRef<'_>, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let status = match e.classify() {
            serde_json::error::Category::Data => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError(status, format!("invalid request body: {e}"))
    })
}

async fn filter(
    State(st): State<Arc<ExtenderState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body.map_err(|r| ApiError(r.status(), r.body_text()))?;
    let mut args = decode_ref(&bytes)?;
    let pod = convert::pod_from_json(args.pod, "Pod")?;
    let mut cache = st.cache();
    let names = candidates(&mut cache, &mut args)?;
    let v = cache.filter(&pod, &names);
    drop(cache);
    tracing::debug!(pod = %pod.key(), passed = v.passed.len(), of = names.len(), "filter");
    let mut out = FilterReply {
        nodes: None,
        node_names: None,
        failed_nodes: v.failed,
        failed_and_unresolvable_nodes: v.unresolvable,
        error: "",
    };
    match args.nodes {
        Some(list) => {
            let mut items: Vec<Option<_>> = list.items.into_iter().map(Some).collect();
            out.nodes = Some(NodeList {
                metadata: list.metadata,
                items: v.passed.iter().filter_map(|&i| items[i].take()).collect(),
            });
        }
        None => {
            out.node_names = Some(v.passed.iter().map(|&i| names[i].as_ref()).collect());
        }
    }
    Ok(Json(out).into_response())
}

async fn prioritize(
    State(st): State<Arc<ExtenderState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body.map_err(|r| ApiError(r.status(), r.body_text()))?;
    let mut args = decode_ref(&bytes)?;
    let pod = convert::pod_from_json(args.pod, "Pod")?;
    let mut cache = st.cache();
    let names = candidates(&mut cache, &mut args)?;
    let list = cache.prioritize(&pod, &names);
    drop(cache);
    Ok(Json(list).into_response())
}

async fn bind(
    State(st): State<Arc<ExtenderState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ExtenderBindingResult>, ApiError> {
    let a: ExtenderBindingArgs = decode(body)?;
    let r = st
        .cache()
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
    let out = st.cache().preempt(&pod, cands);
    Ok(Json(ExtenderPreemptionResult {
        node_name_to_meta_victims: out,
    }))
}
