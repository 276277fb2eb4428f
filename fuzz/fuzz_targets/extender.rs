//! The scheduler extender's request bodies, through the real axum router (a fresh state
//! per input over `examples/manifests/cluster.yaml`). The input is up to eight requests
//! separated by the byte 0xFF (never in UTF-8 JSON): each one's first byte picks the
//! verb (filter, prioritize, bind, preempt) and the rest is the body, so a sequence can
//! fill the caches and memos (full-mode nodes, bound pods, the name-list memo and its
//! fast scan) before a later request reads them. Checked on every reply:
//! - no 5xx (a panic in a handler is a crash here);
//! - a 200 reply only for a body that is valid JSON (the fast scan of node-name
//!   requests must not accept what the full decode rejects);
//! - a 200 filter/prioritize/bind/preempt reply decodes as its wire type, and every
//!   prioritize score is within 0..=10.
#![no_main]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use plimsoll::extender::wire::{
    ExtenderBindingResult, ExtenderFilterResult, ExtenderPreemptionResult, HostPriority,
    MAX_EXTENDER_PRIORITY, MIN_EXTENDER_PRIORITY,
};
use plimsoll::extender::{self, Cache, ExtenderConfig, ExtenderState};
use plimsoll::manifest::{self, Loaded};
use std::sync::LazyLock;
use tower::ServiceExt;

static SNAPSHOT: LazyLock<Loaded> = LazyLock::new(|| {
    manifest::load_str(
        include_str!("../../examples/manifests/cluster.yaml"),
        "cluster.yaml",
    )
    .expect("example cluster reads")
});

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
});

/// A 200 reply decoded as its wire type; a reply that does not decode is a finding.
fn decode<T: serde::de::DeserializeOwned>(verb: &str, bytes: &[u8]) -> T {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "{verb}: 200 reply does not decode ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    })
}

const VERBS: [&str; 4] = ["filter", "prioritize", "bind", "preempt"];

fuzz_target!(|data: &[u8]| {
    let snap = &*SNAPSHOT;
    let policy = extender::policy("best-fit", 42).expect("policy");
    let cache = Cache::new(policy, snap.nodes.clone(), snap.pods.clone()).expect("cache");
    let app = extender::router(ExtenderState::new(cache, ExtenderConfig::default()));
    RT.block_on(async {
        for seg in data.split(|&b| b == 0xFF).take(8) {
            let Some((&sel, body)) = seg.split_first() else {
                continue;
            };
            let verb = VERBS[usize::from(sel) % VERBS.len()];
            let req = Request::builder()
                .method("POST")
                .uri(format!("/{verb}"))
                .header("content-type", "application/json")
                .body(Body::from(body.to_vec()))
                .expect("request");
            let resp = app.clone().oneshot(req).await.expect("infallible");
            let status = resp.status();
            let bytes = resp.into_body().collect().await.expect("body").to_bytes();
            assert!(
                !status.is_server_error(),
                "{verb}: {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
            if status != StatusCode::OK {
                continue;
            }
            assert!(
                serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok(),
                "{verb}: 200 for a body that is not JSON: {}",
                String::from_utf8_lossy(body)
            );
            match verb {
                "filter" => {
                    decode::<ExtenderFilterResult>(verb, &bytes);
                }
                "prioritize" => {
                    let list: Vec<HostPriority> = decode(verb, &bytes);
                    for h in list {
                        assert!(
                            (MIN_EXTENDER_PRIORITY..=MAX_EXTENDER_PRIORITY).contains(&h.score),
                            "score {} for {}",
                            h.score,
                            h.host
                        );
                    }
                }
                "bind" => {
                    decode::<ExtenderBindingResult>(verb, &bytes);
                }
                _ => {
                    decode::<ExtenderPreemptionResult>(verb, &bytes);
                }
            }
        }
    });
});
