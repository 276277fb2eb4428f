//! Kubernetes `v1.Pod` / `v1.Node` JSON as kube-scheduler sends it → Plimsoll's model.
//!
//! The objects go through [`crate::manifest`], the same reader as `plimsoll place`, so
//! quantities, GPU labels and annotations, affinity, tolerations and spread constraints
//! mean the same thing in both. Objects from an informer carry no `kind` or
//! `apiVersion`; they are wrapped in a `PodList` / `NodeList`, whose items may omit both.
//! Unknown fields (`status`, `managedFields`, …) are ignored by the manifest reader
//! outside the spec sections it checks.
//!
//! Two adjustments for live objects: admission has already resolved
//! `spec.priorityClassName` into `spec.priority`, so the class name is dropped (the
//! extender does not know the cluster's PriorityClasses); and `metadata.uid`, which the
//! model has no field for, is returned beside the pod.

use super::hash::hash_bytes;
use crate::manifest::{self, ManifestError};
use crate::model::{Node, Pod};
use serde_json::value::RawValue;
use serde_json::Value;
use std::sync::Mutex;
use thiserror::Error;

/// Why a Kubernetes object from a request could not be read.
#[derive(Debug, Error)]
pub enum ConvertError {
    /// Not a JSON object at all.
    #[error("{what}: expected a JSON object, found {found}")]
    NotAnObject {
        /// Which field of the request (`Pod`, `Nodes.items`, …).
        what: String,
        /// What was found instead.
        found: String,
    },
    /// The manifest reader rejected it (its message names `what`, the object and field).
    #[error("{source}")]
    Manifest {
        /// Which field of the request.
        what: String,
        /// The reader's error.
        #[source]
        source: ManifestError,
    },
    /// The pod has finished (`status.phase` Succeeded or Failed) and holds nothing.
    #[error("{what}: pod has finished (status.phase Succeeded or Failed)")]
    Finished {
        /// Which field of the request.
        what: String,
    },
    /// JSON re-encoding failed (not expected).
    #[error("{what}: {source}")]
    Json {
        /// Which field of the request.
        what: String,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
}

/// A pod from a request, with the identity fields the model does not keep.
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// The pod in Plimsoll's model.
    pub pod: Pod,
    /// `metadata.uid` (empty if absent).
    pub uid: String,
}

impl PodInfo {
    /// `namespace/name`: the cache's key.
    pub fn key(&self) -> String {
        self.pod.key()
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads one `v1.Pod` (raw JSON); `what` names the request field in errors.
pub fn pod_from_json(raw: &RawValue, what: &str) -> Result<PodInfo, ConvertError> {
    let mut v: Value = serde_json::from_str(raw.get()).map_err(|source| ConvertError::Json {
        what: what.to_string(),
        source,
    })?;
    let Some(obj) = v.as_object_mut() else {
        return Err(ConvertError::NotAnObject {
            what: what.to_string(),
            found: kind_of(&v).to_string(),
        });
    };
    let uid = obj
        .get("metadata")
        .and_then(|m| m.get("uid"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("priorityClassName");
    }
    obj.remove("kind");
    obj.remove("apiVersion");
    let list = serde_json::json!({"apiVersion": "v1", "kind": "PodList", "items": [v]});
    let loaded = load(&list, what)?;
    match loaded.pods.into_iter().next() {
        Some(pod) => Ok(PodInfo { pod, uid }),
        None => Err(ConvertError::Finished {
            what: what.to_string(),
        }),
    }
}

/// How many converted pods [`PodMemo`] keeps.
pub const POD_MEMO_ENTRIES: usize = 16;

/// The last [`POD_MEMO_ENTRIES`] pods converted, keyed by their exact JSON text (a
/// fast hash confirmed by comparing the bytes), most recent first. kube-scheduler sends
/// the same pod object to filter and then to prioritize, so the second call skips the
/// conversion (which goes through the manifest reader and its YAML parser, the largest
/// per-call cost after scoring). The conversion is a function of the text alone; errors
/// are not kept.
#[derive(Debug, Default)]
pub struct PodMemo {
    entries: Mutex<Vec<(u64, Box<str>, PodInfo)>>,
}

impl PodMemo {
    /// [`pod_from_json`], from the memo when the same text was converted recently.
    pub fn convert(&self, raw: &RawValue, what: &str) -> Result<PodInfo, ConvertError> {
        let text = raw.get();
        let hash = hash_bytes(text.as_bytes());
        {
            let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = e.iter().position(|(h, t, _)| *h == hash && **t == *text) {
                let hit = e[i].2.clone();
                e[..=i].rotate_right(1);
                return Ok(hit);
            }
        }
        let pod = pod_from_json(raw, what)?;
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        e.insert(0, (hash, text.into(), pod.clone()));
        e.truncate(POD_MEMO_ENTRIES);
        Ok(pod)
    }
}

/// Reads `v1.Node` objects (raw JSON items of a `NodeList`).
pub fn nodes_from_json(items: &[Box<RawValue>], what: &str) -> Result<Vec<Node>, ConvertError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    // Build the list text directly: the items are already JSON.
    let mut text = String::from(r#"{"apiVersion":"v1","kind":"NodeList","items":["#);
    for (i, item) in items.iter().enumerate() {
        if !item.get().trim_start().starts_with('{') {
            let v: Value = serde_json::from_str(item.get()).unwrap_or(Value::Null);
            return Err(ConvertError::NotAnObject {
                what: format!("{what}[{i}]"),
                found: kind_of(&v).to_string(),
            });
        }
        if i > 0 {
            text.push(',');
        }
        // `kind`/`apiVersion` inside items, if present, must say Node v1; the reader checks.
        text.push_str(item.get());
    }
    text.push_str("]}");
    let loaded = manifest::load_str(&text, what).map_err(|source| ConvertError::Manifest {
        what: what.to_string(),
        source,
    })?;
    Ok(loaded.nodes)
}

fn load(list: &Value, what: &str) -> Result<manifest::Loaded, ConvertError> {
    let text = serde_json::to_string(list).map_err(|source| ConvertError::Json {
        what: what.to_string(),
        source,
    })?;
    manifest::load_str(&text, what).map_err(|source| ConvertError::Manifest {
        what: what.to_string(),
        source,
    })
}
