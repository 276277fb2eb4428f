//! A kube-scheduler extender: the HTTP verbs of `k8s.io/kube-scheduler/extender/v1`
//! (filter, prioritize, bind, preempt) answered with Plimsoll's filters and an online
//! policy's scores.
//!
//! - [`wire`]: the request and reply types, with the Go field names on the wire.
//! - [`convert`]: `v1.Pod` / `v1.Node` JSON → the model, through [`crate::manifest`].
//! - [`cache`]: nodes and bound pods (fed by full-mode requests, `/bind` and a
//!   snapshot) and the verb logic.
//! - `classes`: classes of interchangeable nodes, so a filter checks one per class.
//! - `fast`: resolved node-name lists memoised by their JSON text, and replies
//!   written straight into a buffer (the node-names hot path).
//! - `scan`: a top-level scan of a node-names body that matches the `NodeNames` list
//!   against the memo without scanning the list.
//! - [`server`]: the axum [`Router`](axum::Router) ([`router`]).
//! - [`listener`]: a TCP listener whose connections give hyper's own error replies
//!   (unreadable request heads: 400, 414, 431) the extender's JSON error body.
//!
//! Both `nodeCacheCapable` modes work: with full `Nodes` the objects are upserted into
//! the cache and the kept ones are returned unchanged; with `NodeNames` the cache's
//! nodes are used and a name it has never seen fails as unresolvable. The serving loop
//! (tokio, listener) is the binary's `plimsoll extender`; see `docs/extender.md`.
//!
//! ```
//! use plimsoll::extender::{self, ExtenderConfig};
//! let cache = extender::Cache::new(extender::policy("best-fit", 42)?, vec![], vec![])?;
//! let app: axum::Router = extender::router(extender::ExtenderState::new(cache, ExtenderConfig::default()));
//! # let _ = app;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cache;
pub(crate) mod classes;
pub mod convert;
pub(crate) mod fast;
pub(crate) mod hash;
pub mod listener;
pub(crate) mod scan;
pub mod server;
pub mod wire;

pub use cache::{Cache, FilterVerdict, Verdicts, SEEN_CAPACITY};
pub use listener::ErrorBodyListener;
pub use server::{router, ExtenderState};

use crate::manifest::{self, ManifestError};
use crate::model::ClusterError;
use crate::place::online::{OnlineKind, OnlinePolicy};
use std::path::Path;
use thiserror::Error;

/// Default request body limit: 64 MiB (a full-mode body with thousands of real nodes is
/// tens of MB; axum's own default of 2 MB would reject it).
pub const DEFAULT_BODY_LIMIT: usize = 64 << 20;

/// How the server is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtenderConfig {
    /// Path prefix of every verb (`""` serves `/filter`, …).
    pub path_prefix: String,
    /// Filter verb (`filterVerb`).
    pub filter_verb: String,
    /// Prioritize verb (`prioritizeVerb`).
    pub prioritize_verb: String,
    /// Bind verb (`bindVerb`).
    pub bind_verb: String,
    /// Preempt verb (`preemptVerb`).
    pub preempt_verb: String,
    /// Largest accepted request body, in bytes (413 above).
    pub body_limit: usize,
}

impl Default for ExtenderConfig {
    fn default() -> Self {
        ExtenderConfig {
            path_prefix: String::new(),
            filter_verb: "filter".into(),
            prioritize_verb: "prioritize".into(),
            bind_verb: "bind".into(),
            preempt_verb: "preempt".into(),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

/// Why the extender could not start.
#[derive(Debug, Error)]
pub enum ExtenderError {
    /// `--policy` names no online policy.
    #[error("unknown extender policy {name:?}; choose one of: {choices}")]
    UnknownPolicy {
        /// The name given.
        name: String,
        /// The accepted names.
        choices: String,
    },
    /// The snapshot could not be read.
    #[error("snapshot: {0}")]
    Snapshot(#[from] ManifestError),
    /// The snapshot's pods do not fit its nodes.
    #[error("snapshot: {0}")]
    Cluster(#[from] ClusterError),
}

/// The online policy named `name` (`best-fit`, `kube-default`, …; every
/// [`OnlineKind`]), seeded with `seed` (the `random` policy's draws and seeded ties).
/// The MILP places batches and has no per-node scores, so it is not offered here.
pub fn policy(name: &str, seed: u64) -> Result<OnlinePolicy, ExtenderError> {
    name.parse::<OnlineKind>()
        .map(|k| OnlinePolicy::new(k, seed))
        .map_err(|_| ExtenderError::UnknownPolicy {
            name: name.to_string(),
            choices: OnlineKind::ALL.map(|k| k.name()).join(", "),
        })
}

/// A cache over the nodes and bound pods of manifest files (YAML/JSON, e.g.
/// `kubectl get nodes,pods -A -o json`); pending pods in them are ignored.
pub fn cache_from_files<P: AsRef<Path>>(
    policy: OnlinePolicy,
    files: &[P],
) -> Result<Cache, ExtenderError> {
    let loaded = manifest::load_files(files)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    Ok(Cache::new(policy, loaded.nodes, loaded.pods)?)
}
