//! The wire types of `k8s.io/kube-scheduler/extender/v1`.
//!
//! The Go types carry no JSON tags, so their JSON keys are the Go field names (`Pod`,
//! `NodeNames`, `FailedNodes`, …); Plimsoll emits exactly those. Go's decoder matches keys
//! case-insensitively and the pre-1.16 types had lower-case tags (`pod`, `nodenames`,
//! `failedNodes`, …), so every key here also accepts its camel-case and all-lower-case
//! spellings. Pointer, slice and map fields have no `omitempty` in Go, so kube-scheduler
//! sends unused ones as `null`: every list and map accepts `null` as empty.
//!
//! Kubernetes objects (`v1.Pod`, `v1.Node`) are kept as raw JSON text
//! ([`RawValue`]) so that a full-mode filter reply can return the node objects exactly as
//! they arrived.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// `MaxExtenderPriority`: the highest score an extender may give.
pub const MAX_EXTENDER_PRIORITY: i64 = 10;
/// `MinExtenderPriority`: the lowest score an extender may give.
pub const MIN_EXTENDER_PRIORITY: i64 = 0;

/// `null` decodes as the type's default (Go marshals a nil slice or map as `null`).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `v1.NodeList` as the scheduler builds it in memory: `{"metadata":{},"items":[…]}`
/// (no `kind` or `apiVersion`). Items are kept verbatim.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeList {
    /// List metadata, kept verbatim (`{}` from kube-scheduler).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Box<RawValue>>,
    /// The `v1.Node` objects, verbatim.
    #[serde(default, deserialize_with = "null_default")]
    pub items: Vec<Box<RawValue>>,
}

/// `ExtenderArgs`: the body of a filter or prioritize call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtenderArgs {
    /// The pod being scheduled (`v1.Pod`), verbatim.
    #[serde(rename = "Pod", alias = "pod")]
    pub pod: Box<RawValue>,
    /// Candidate nodes in full mode (`nodeCacheCapable: false`); `null` otherwise.
    #[serde(rename = "Nodes", alias = "nodes", default)]
    pub nodes: Option<NodeList>,
    /// Candidate node names in cache mode (`nodeCacheCapable: true`); `null` otherwise.
    #[serde(
        rename = "NodeNames",
        alias = "nodenames",
        alias = "nodeNames",
        default
    )]
    pub node_names: Option<Vec<String>>,
}

/// `FailedNodesMap`: node name → failure message.
pub type FailedNodesMap = BTreeMap<String, String>;

/// `ExtenderFilterResult`: the reply to a filter call.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtenderFilterResult {
    /// Nodes that passed, in full mode (the request's objects, unchanged).
    #[serde(rename = "Nodes", alias = "nodes", default)]
    pub nodes: Option<NodeList>,
    /// Names of nodes that passed, in cache mode.
    #[serde(
        rename = "NodeNames",
        alias = "nodenames",
        alias = "nodeNames",
        default
    )]
    pub node_names: Option<Vec<String>>,
    /// Nodes that failed for a reason preemption might fix, with kube's reason text.
    #[serde(
        rename = "FailedNodes",
        alias = "failedNodes",
        alias = "failednodes",
        default,
        deserialize_with = "null_default"
    )]
    pub failed_nodes: FailedNodesMap,
    /// Nodes that failed for a reason preemption cannot fix (taints, selectors, …).
    #[serde(
        rename = "FailedAndUnresolvableNodes",
        alias = "failedAndUnresolvableNodes",
        alias = "failedandunresolvablenodes",
        default,
        deserialize_with = "null_default"
    )]
    pub failed_and_unresolvable_nodes: FailedNodesMap,
    /// Error message; empty on success.
    #[serde(rename = "Error", alias = "error", default)]
    pub error: String,
}

/// `HostPriority`: one node's score from a prioritize call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPriority {
    /// Node name.
    #[serde(rename = "Host", alias = "host")]
    pub host: String,
    /// Score in `0..=10` ([`MIN_EXTENDER_PRIORITY`]..=[`MAX_EXTENDER_PRIORITY`]).
    #[serde(rename = "Score", alias = "score")]
    pub score: i64,
}

/// `HostPriorityList`: the reply to a prioritize call (a top-level JSON array).
pub type HostPriorityList = Vec<HostPriority>;

/// `ExtenderBindingArgs`: the body of a bind call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtenderBindingArgs {
    /// Pod name.
    #[serde(rename = "PodName", alias = "podName", alias = "podname")]
    pub pod_name: String,
    /// Pod namespace.
    #[serde(
        rename = "PodNamespace",
        alias = "podNamespace",
        alias = "podnamespace",
        default
    )]
    pub pod_namespace: String,
    /// Pod UID.
    #[serde(rename = "PodUID", alias = "podUID", alias = "poduid", default)]
    pub pod_uid: String,
    /// Node the pod is bound to.
    #[serde(rename = "Node", alias = "node")]
    pub node: String,
}

/// `ExtenderBindingResult`: the reply to a bind call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtenderBindingResult {
    /// Error message; empty on success.
    #[serde(rename = "Error", alias = "error", default)]
    pub error: String,
}

/// `Victims`: full pods to evict on one node (full mode).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Victims {
    /// The victim `v1.Pod` objects, verbatim.
    #[serde(
        rename = "Pods",
        alias = "pods",
        default,
        deserialize_with = "null_default"
    )]
    pub pods: Vec<Box<RawValue>>,
    /// How many PodDisruptionBudgets the eviction violates.
    #[serde(
        rename = "NumPDBViolations",
        alias = "numPDBViolations",
        alias = "numpdbviolations",
        default
    )]
    pub num_pdb_violations: i64,
}

/// `MetaPod`: a pod named by UID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaPod {
    /// The pod's `metadata.uid`.
    #[serde(rename = "UID", alias = "uid")]
    pub uid: String,
}

/// `MetaVictims`: pods to evict on one node, named by UID (cache mode, and every reply).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaVictims {
    /// The victims.
    #[serde(
        rename = "Pods",
        alias = "pods",
        default,
        deserialize_with = "null_default"
    )]
    pub pods: Vec<MetaPod>,
    /// How many PodDisruptionBudgets the eviction violates.
    #[serde(
        rename = "NumPDBViolations",
        alias = "numPDBViolations",
        alias = "numpdbviolations",
        default
    )]
    pub num_pdb_violations: i64,
}

/// `ExtenderPreemptionArgs`: the body of a preempt call. kube-scheduler sets
/// `NodeNameToMetaVictims` when the extender is node-cache capable, else
/// `NodeNameToVictims`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtenderPreemptionArgs {
    /// The pod that needs room (`v1.Pod`), verbatim.
    #[serde(rename = "Pod", alias = "pod")]
    pub pod: Box<RawValue>,
    /// Candidate nodes with their victims as full pods.
    #[serde(
        rename = "NodeNameToVictims",
        alias = "nodeNameToVictims",
        alias = "nodenametovictims",
        default
    )]
    pub node_name_to_victims: Option<BTreeMap<String, Victims>>,
    /// Candidate nodes with their victims as UIDs.
    #[serde(
        rename = "NodeNameToMetaVictims",
        alias = "nodeNameToMetaVictims",
        alias = "nodenametometavictims",
        default
    )]
    pub node_name_to_meta_victims: Option<BTreeMap<String, MetaVictims>>,
}

/// `ExtenderPreemptionResult`: the reply to a preempt call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtenderPreemptionResult {
    /// The candidate nodes that stay, with their victims.
    #[serde(
        rename = "NodeNameToMetaVictims",
        alias = "nodeNameToMetaVictims",
        alias = "nodenametometavictims",
        default,
        deserialize_with = "null_default"
    )]
    pub node_name_to_meta_victims: BTreeMap<String, MetaVictims>,
}
