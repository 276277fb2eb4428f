//! Watches over HTTP: newline-delimited `{"type":…,"object":…}` events on a chunked
//! response, from a resourceVersion (or from the current state, as synthetic ADDED
//! events), filtered by label and field selectors, with bookmarks when the client allows
//! them, until `timeoutSeconds`.
//!
//! Nothing is buffered without bound: the response channel is small, a watch whose client
//! has not taken a line for `watch_send_timeout` with that channel full is closed, and the
//! store closes a watcher whose own channel fills up meanwhile.
//! An object that stops matching a selector is reported as DELETED, one that starts
//! matching as ADDED, for the objects this watch has seen match (a watch resumed from a
//! resourceVersion has not seen the objects that matched before it; their later changes
//! out of the selector are not reported).

use super::handlers::{decode_entry, store_error, Api, As, Filter, Target};
use super::objects::{meta, meta_mut};
use super::status::ApiError;
use super::table;
use crate::server::store::{EventKind, StoreError, WatchEvent};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// Lines the response holds before the watch waits for the client.
const RESPONSE_BUFFER: usize = 64;

struct LineStream(mpsc::Receiver<Bytes>);

impl futures_core::Stream for LineStream {
    type Item = Result<Bytes, Infallible>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|o| o.map(Ok))
    }
}

/// Hands a line to the response; false if the client is gone or has not taken a line for
/// `timeout` with the response buffer full (the watch is then closed, so that a client
/// that does not read holds no more than the buffer and what arrives meanwhile).
async fn deliver(tx: &mpsc::Sender<Bytes>, line: Bytes, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, tx.send(line)).await,
        Ok(Ok(()))
    )
}

/// Starts a watch and returns its streaming response.
pub(crate) async fn watch(
    api: Arc<Api>,
    target: &Target,
    q: &HashMap<String, String>,
    as_: As,
) -> Result<Response, ApiError> {
    let rt = target.rt;
    let mut filter = Filter::new(rt, q)?;
    // A watch of one object (`/pods/NAME?watch=true`) is a watch with a name selector.
    if let Some(name) = &target.name {
        let mut q2 = q.clone();
        let fs = match q.get("fieldSelector").filter(|s| !s.is_empty()) {
            Some(f) => format!("{f},metadata.name={name}"),
            None => format!("metadata.name={name}"),
        };
        q2.insert("fieldSelector".into(), fs);
        filter = Filter::new(rt, &q2)?;
    }
    let timeout = match q.get("timeoutSeconds").filter(|s| !s.is_empty()) {
        Some(t) => Duration::from_secs(
            t.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds: {t}")))?,
        )
        .min(api.options.max_watch_timeout),
        None => api.options.default_watch_timeout,
    };
    let bookmarks = q
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true" || v == "1");
    let rv = q.get("resourceVersion").cloned().unwrap_or_default();
    let prefix = rt.namespace_prefix(&target.namespace);
    // From "" or "0": the current state first, as ADDED events.
    let (initial, from) = if rv.is_empty() || rv == "0" {
        let p = prefix.clone();
        let (entries, rev) = api
            .run(move |s| s.list(&p))
            .await
            .map_err(|e| store_error(rt, "", e))?;
        (entries, rev)
    } else {
        let from: u64 = rv
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion: {rv}")))?;
        (Vec::new(), from)
    };
    let p = prefix.clone();
    let store_watch = match api.run(move |s| s.watch(&p, from)).await {
        Ok(w) => w,
        // As kube-apiserver answers a watch from a compacted revision: 200, then one ERROR
        // event carrying the 410 Expired Status — what client-go's reflector and
        // kube-rs's watcher take as "relist" (an HTTP 410 would make kube-rs retry the
        // same revision forever).
        Err(e @ StoreError::Compacted { .. }) => {
            let status = store_error(rt, "", e).to_status();
            let mut line =
                serde_json::to_vec(&json!({"type": "ERROR", "object": status})).unwrap_or_default();
            line.push(b'\n');
            let mut resp = (StatusCode::OK, line).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            return Ok(resp);
        }
        Err(e) => return Err(store_error(rt, "", e)),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(RESPONSE_BUFFER);
    let bookmark_every = api.options.bookmark_interval;
    let send_timeout = api.options.watch_send_timeout;
    let kind = rt.kind;
    let api_version = rt.api_version();
    // Counted in apiserver_registered_watchers until this task ends, however it ends.
    let watcher = api.metrics.api.watcher(rt.plural);
    tokio::spawn(async move {
        let _watcher = watcher;
        let mut seen: HashSet<String> = HashSet::new();
        let mut last_rev = from;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut events = store_watch.events;
        let mut first = true;
        let send = |ty: &str, obj: Value, first: &mut bool| {
            let object = match as_ {
                As::Table(include) => {
                    let rv = super::objects::meta_str(&obj, "resourceVersion").to_string();
                    let mut t = table::table(kind, &[obj], super::handlers::now(), include);
                    if !*first {
                        t["columnDefinitions"] = json!([]);
                    }
                    t["metadata"] = json!({"resourceVersion": rv});
                    t
                }
                As::Metadata => {
                    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta(&obj)})
                }
                As::Json => obj,
            };
            *first = false;
            let mut line =
                serde_json::to_vec(&json!({"type": ty, "object": object})).unwrap_or_default();
            line.push(b'\n');
            Bytes::from(line)
        };
        for e in &initial {
            let Ok(obj) = decode_entry(e) else { continue };
            if filter.matches(&obj) {
                seen.insert(e.key.clone());
                let line = send("ADDED", obj, &mut first);
                if !deliver(&tx, line, send_timeout).await {
                    return;
                }
            }
        }
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + bookmark_every, bookmark_every);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                // The client is gone (its response body dropped): stop now, not at the
                // next event or the deadline.
                _ = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    let obj = json!({"kind": kind, "apiVersion": api_version,
                        "metadata": {"resourceVersion": last_rev.to_string()}});
                    let mut line = serde_json::to_vec(&json!({"type": "BOOKMARK", "object": obj})).unwrap_or_default();
                    line.push(b'\n');
                    if !deliver(&tx, Bytes::from(line), send_timeout).await {
                        return;
                    }
                }
                ev = events.recv() => {
                    let Some(WatchEvent { kind: ek, entry }) = ev else { return };
                    last_rev = entry.mod_revision;
                    let Ok(mut obj) = decode_entry(&entry) else { continue };
                    let matches = filter.matches(&obj);
                    let was = seen.contains(&entry.key);
                    let ty = match (ek, matches, was) {
                        (EventKind::Delete, _, true) | (EventKind::Delete, true, false) => {
                            seen.remove(&entry.key);
                            "DELETED"
                        }
                        (EventKind::Delete, false, false) => continue,
                        (EventKind::Put, true, true) => "MODIFIED",
                        (EventKind::Put, true, false) => {
                            seen.insert(entry.key.clone());
                            if entry.create_revision == entry.mod_revision || !filter.is_empty() {
                                "ADDED"
                            } else {
                                "MODIFIED"
                            }
                        }
                        (EventKind::Put, false, true) => {
                            seen.remove(&entry.key);
                            "DELETED"
                        }
                        (EventKind::Put, false, false) => continue,
                    };
                    meta_mut(&mut obj).insert("resourceVersion".into(), json!(entry.mod_revision.to_string()));
                    let line = send(ty, obj, &mut first);
                    if !deliver(&tx, line, send_timeout).await {
                        return;
                    }
                }
            }
        }
    });
    let mut resp = (StatusCode::OK, Body::from_stream(LineStream(rx))).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}
