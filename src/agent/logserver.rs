//! The agent's HTTPS endpoint (the kubelet's port): `GET /containerLogs/{ns}/{pod}/{container}`
//! with kubectl's parameters (`follow`, `previous`, `tailLines`, `sinceSeconds`,
//! `sinceTime`, `timestamps`, `limitBytes`), which the API server proxies
//! `kubectl logs` to, and `GET /healthz`.
//!
//! It serves TLS with a certificate the agent makes itself at start (the API server does
//! not verify it, as kube-apiserver without `--kubelet-certificate-authority`).
//! Callers authenticate with a bearer token that the agent checks with a `TokenReview`
//! against the API server (cached for a minute), as the kubelet's webhook
//! authentication does; node identities are refused (a node must not read another
//! node's logs). There is no finer authorisation (no SubjectAccessReview).

use super::logfile::{self, LogOptions};
use super::runtime::{ContainerInfo, ContainerState};
use super::{AgentConfig, AgentError, Shared};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::{Api, PostParams};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpListener;

/// How long a token review is trusted.
const REVIEW_TTL: Duration = Duration::from_secs(60);

/// Binds the endpoint's listener and makes its TLS configuration.
pub(crate) async fn bind(
    config: &AgentConfig,
) -> Result<(TcpListener, Arc<rustls::ServerConfig>), AgentError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| AgentError::Io {
            path: config.listen.to_string().into(),
            source,
        })?;
    let names = vec![config.node_name.clone(), config.address.to_string()];
    let key = rcgen::generate_simple_self_signed(names)
        .map_err(|e| AgentError::Config(format!("making the agent's certificate: {e}")))?;
    let cert = key.cert.der().clone();
    let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into());
    #[allow(deprecated)] // rustls deprecates it for lack of post-quantum key exchange
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AgentError::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], private)
        .map_err(|e| AgentError::Config(format!("TLS: {e}")))?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((listener, Arc::new(tls)))
}

/// A refusal: the status and the message.
type Refusal = (StatusCode, String);
/// A cached token review: when it was made and its verdict.
type Review = (Instant, Result<(), Refusal>);

struct LogState {
    shared: Arc<Shared>,
    /// Token reviews by token: when, and the verdict.
    reviews: Mutex<HashMap<String, Review>>,
}

/// The endpoint's routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let state = Arc::new(LogState {
        shared,
        reviews: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/containerLogs/{ns}/{pod}/{container}", get(container_logs))
        .with_state(state)
}

fn text(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, msg.into()).into_response()
}

/// Checks the caller's bearer token with a TokenReview.
async fn authenticate(state: &LogState, headers: &HeaderMap) -> Result<(), Refusal> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or((
            StatusCode::UNAUTHORIZED,
            "Unauthorized: a bearer token is required".to_string(),
        ))?
        .to_string();
    if let Some((at, verdict)) = state
        .reviews
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&token)
    {
        if at.elapsed() < REVIEW_TTL {
            return verdict.clone();
        }
    }
    let api: Api<TokenReview> = Api::all(state.shared.client.clone());
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.clone()),
            audiences: None,
        },
        ..Default::default()
    };
    let verdict = match api.create(&PostParams::default(), &review).await {
        Ok(r) => {
            let status = r.status.unwrap_or_default();
            let user = status.user.unwrap_or_default();
            let name = user.username.unwrap_or_default();
            let groups = user.groups.unwrap_or_default();
            if status.authenticated != Some(true) {
                Err((StatusCode::UNAUTHORIZED, "Unauthorized".to_string()))
            } else if name.starts_with(crate::server::api::auth::NODE_USER_PREFIX)
                || groups
                    .iter()
                    .any(|g| g == crate::server::api::auth::GROUP_NODES)
            {
                Err((
                    StatusCode::FORBIDDEN,
                    format!("Forbidden: user {name:?} is a node and may not read this node's logs"),
                ))
            } else {
                Ok(())
            }
        }
        Err(e) => {
            // Not cached: the API server may just be unreachable for a moment.
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                format!("token review failed: {e}"),
            ));
        }
    };
    let mut cache = state.reviews.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() > 1024 {
        cache.clear();
    }
    cache.insert(token, (Instant::now(), verdict.clone()));
    verdict
}

fn flag(q: &HashMap<String, String>, name: &str) -> bool {
    q.get(name).is_some_and(|v| v == "true" || v == "1")
}

fn number<T: std::str::FromStr>(
    q: &HashMap<String, String>,
    name: &str,
) -> Result<Option<T>, Box<Response>> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => v.parse::<T>().map(Some).map_err(|_| {
            Box::new(text(
                StatusCode::BAD_REQUEST,
                format!("{name}: {v:?} is not a valid number"),
            ))
        }),
    }
}

/// The container start to read: the latest one of the most recent pod of that name, or
/// the one before it (`previous`).
fn pick(
    list: &[ContainerInfo],
    ns: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> Result<ContainerInfo, Box<Response>> {
    let mut mine: Vec<&ContainerInfo> = list
        .iter()
        .filter(|c| c.pod.namespace == ns && c.pod.name == pod && c.name == container)
        .collect();
    // The most recent pod of that name (a pod re-created under the same name).
    let newest_uid = mine
        .iter()
        .max_by_key(|c| c.started_at.unwrap_or(SystemTime::UNIX_EPOCH))
        .map(|c| c.pod.uid.clone());
    mine.retain(|c| Some(&c.pod.uid) == newest_uid.as_ref());
    mine.sort_by_key(|c| c.attempt);
    let chosen = if previous {
        mine.len().checked_sub(2).map(|i| mine[i])
    } else {
        mine.last().copied()
    };
    chosen.cloned().ok_or_else(|| {
        Box::new(if previous {
            text(
                StatusCode::BAD_REQUEST,
                format!("previous terminated container {container:?} in pod {pod:?} not found"),
            )
        } else {
            text(
                StatusCode::NOT_FOUND,
                format!("container {container:?} in pod {pod:?} is not available"),
            )
        })
    })
}

async fn container_logs(
    State(state): State<Arc<LogState>>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err((code, msg)) = authenticate(&state, &headers).await {
        return text(code, msg);
    }
    let tail: Option<i64> = match number(&q, "tailLines") {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let since_seconds: Option<u64> = match number(&q, "sinceSeconds") {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let limit: Option<u64> = match number(&q, "limitBytes") {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let since = match (since_seconds, q.get("sinceTime")) {
        (Some(s), _) => SystemTime::now().checked_sub(Duration::from_secs(s)),
        (None, Some(t)) => match t.parse::<jiff::Timestamp>() {
            Ok(ts) => Some(SystemTime::from(ts)),
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("sinceTime {t:?}: {e}")),
        },
        (None, None) => None,
    };
    let opts = LogOptions {
        tail_lines: tail.and_then(|t| usize::try_from(t).ok()),
        since,
        timestamps: flag(&q, "timestamps"),
        limit_bytes: limit,
    };
    let runtime = state.shared.runtime.clone();
    let list = match runtime.list().await {
        Ok(l) => l,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let chosen = match pick(&list, &ns, &pod, &container, flag(&q, "previous")) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let path = chosen.log_path.clone();
    if !flag(&q, "follow") || chosen.state != ContainerState::Running {
        return match tokio::task::spawn_blocking(move || logfile::read_logs(&path, &opts)).await {
            Ok(Ok(bytes)) => ([("content-type", "text/plain")], bytes).into_response(),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                ([("content-type", "text/plain")], Vec::new()).into_response()
            }
            Ok(Err(e)) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading the log: {e}"),
            ),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
    }
    // Follow: a watcher marks the container done once it no longer runs; it ends when
    // the follower is dropped (the client went away) or the container ended.
    let done = Arc::new(AtomicBool::new(false));
    let flag_for_follower = done.clone();
    let id = chosen.id.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if Arc::strong_count(&done) == 1 {
                return;
            }
            let running = runtime
                .list()
                .await
                .map(|l| {
                    l.iter()
                        .any(|c| c.id == id && c.state == ContainerState::Running)
                })
                .unwrap_or(true);
            if !running {
                done.store(true, Ordering::SeqCst);
                return;
            }
        }
    });
    let stream = logfile::follow_logs(path, opts, move || flag_for_follower.load(Ordering::SeqCst));
    ([("content-type", "text/plain")], Body::from_stream(stream)).into_response()
}
