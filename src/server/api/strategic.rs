//! Kubernetes strategic merge patch (SMP), as `k8s.io/apimachinery/pkg/util/strategicpatch`
//! (v0.32) applies it on the API server (`StrategicMergeMapPatch`).
//!
//! The patch is a JSON object that is merged into the original object:
//!
//! * maps merge recursively, `null` deletes a key, `{"$patch": "replace"}` inside a map
//!   replaces the map with the rest of the patch map, `{"$patch": "delete"}` empties it;
//! * `"$retainKeys": [...]` in a map keeps only the listed keys of the original map;
//! * lists are replaced, except the fields that carry `patchStrategy:"merge"` in the Go
//!   types: lists of objects merge element-wise by their `patchMergeKey`, lists of
//!   primitives are unioned; in such lists `{"<key>": .., "$patch": "delete"}` deletes an
//!   element and a `{"$patch": "replace"}` element replaces the whole list;
//! * `"$deleteFromPrimitiveList/<field>": [...]` removes values from a primitive list;
//! * `"$setElementOrder/<field>": [...]` orders a merged list (the order kubectl apply wants).
//!
//! The merge keys and strategies come from the struct tags of `k8s.io/api` v0.32 and
//! `metav1.ObjectMeta`, modelled as a small type graph (type -> field -> child type, list
//! strategy, merge key), so that the pod templates of Deployments, ReplicaSets and Jobs
//! reuse the `PodSpec` description. Fields the graph does not know get the default
//! behaviour (maps merge, lists replace); Go instead fails on fields missing from its
//! structs when both sides are maps or lists, which cannot happen for originals that come
//! from typed objects.
//!
//! The algorithm follows the Go implementation step by step, including its ordering
//! rules (Go's `sort.SliceStable` is reproduced exactly, because its comparison function
//! is not a strict order) and the way its in-place slice deletions leak into the
//! "server order" used by `$setElementOrder`. Where Go iterates a map (random order) this
//! module visits keys in sorted order, so the output is deterministic (the only visible
//! case: `"f": [..]` and `"$deleteFromPrimitiveList/f": [..]` naming the same value; the
//! deletion list is applied first). Like Go, values copied wholesale keep some directives
//! (`$retainKeys` or `$setElementOrder/..` in a map the original lacks, `$patch` elements
//! in a list that is replaced); the API server drops them when it decodes the result
//! into the typed object.
//!
//! Deliberate differences from the Go code, all of them on inputs the real API server
//! rejects anyway (it decodes the result into the typed object afterwards, or panics):
//!
//! * a non-list value for a known merge-list field, a non-object value for a known
//!   struct field, and a non-list `$deleteFromPrimitiveList` are errors instead of
//!   replacing the field with an undecodable value;
//! * comparisons Go would panic on (two objects or two lists compared as merge keys or
//!   list values, `null` list elements) are errors;
//! * nesting deeper than [`MAX_DEPTH`] levels is an error.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde_json::{Map, Value};

/// Deepest nesting of objects and lists accepted in the patch and in the original.
pub const MAX_DEPTH: usize = 100;

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

/// Why a strategic merge patch could not be applied.
///
/// Every variant but [`PatchError::UnsupportedKind`] names the JSON path where the
/// problem was found (`spec.template.spec.containers[1]`); list indices are positions in
/// the patch's list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The kind has no strategic-merge schema (custom resources): the server answers 415.
    #[error("strategic merge patch is not supported for kind {0:?}")]
    UnsupportedKind(String),
    /// A value that must be a JSON object (the patch itself, the original object, a known
    /// struct field, an element of a list merged by key) is something else.
    #[error("{path}: expected a JSON object, got {found}")]
    NotAnObject {
        /// Where the value was found.
        path: String,
        /// The JSON type that was found instead.
        found: String,
    },
    /// A value that must be a JSON list (a known merge list, a `$setElementOrder` or
    /// `$deleteFromPrimitiveList` directive, the lists they refer to) is something else.
    #[error("{path}: expected a JSON list, got {found}")]
    NotAList {
        /// Where the value was found.
        path: String,
        /// The JSON type that was found instead.
        found: String,
    },
    /// A `$patch` directive with an unknown or misplaced value, or a malformed
    /// `$deleteFromPrimitiveList/...` key.
    #[error("{path}: {message}")]
    InvalidDirective {
        /// Where the directive was found.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A `$setElementOrder/<field>` directive that is malformed or does not match the
    /// patch list it orders.
    #[error("{path}: invalid $setElementOrder: {message}")]
    InvalidSetElementOrder {
        /// Where the directive was found.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A `$retainKeys` directive that is not a list of keys, or that omits a key the same
    /// patch map sets.
    #[error("{path}: invalid $retainKeys: {message}")]
    InvalidRetainKeys {
        /// The map holding the directive.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// An element of a list merged by key lacks the merge key (for example a container
    /// without `name`).
    #[error("{path}: element does not contain its merge key {key:?}")]
    MissingMergeKey {
        /// The element (or list) concerned.
        path: String,
        /// The merge key of the list.
        key: String,
    },
    /// A list that cannot be merged: lists of lists, mixed element types, `null`
    /// elements, objects in a list without a merge key, merge keys that are not scalars.
    #[error("{path}: {message}")]
    InvalidList {
        /// The list concerned.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The patch or the original nests objects and lists deeper than [`MAX_DEPTH`].
    #[error("{path}: nesting deeper than {max} levels")]
    TooDeep {
        /// The first value found too deep.
        path: String,
        /// The limit, [`MAX_DEPTH`].
        max: usize,
    },
}

/// Whether this kind (Kubernetes `kind`, e.g. "Deployment", "Pod", "Scale") supports SMP.
///
/// These are the built-in kinds the server serves; custom resources (`PodGroup`) and
/// anything else do not.
pub fn supports(kind: &str) -> bool {
    root_type(kind).is_some()
}

/// Applies `patch` to `original` (both whole objects as JSON) for an object of `kind`.
///
/// A `null` patch changes nothing, like the Go implementation; any other non-object
/// patch is an error. The original is not modified; the result is a new object.
pub fn apply(kind: &str, original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let root = root_type(kind).ok_or_else(|| PatchError::UnsupportedKind(kind.to_string()))?;
    check_depth(patch, &mut Path::named("<patch>"), 1)?;
    check_depth(original, &mut Path::named("<original>"), 1)?;
    let patch_map = match patch {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(PatchError::NotAnObject {
                path: "<patch>".to_string(),
                found: json_type(other).to_string(),
            })
        }
    };
    let original_map = match original {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(PatchError::NotAnObject {
                path: "<original>".to_string(),
                found: json_type(other).to_string(),
            })
        }
    };
    let merged = merge_map(original_map, patch_map, root, &mut Path::default())?;
    Ok(Value::Object(merged))
}

// ---------------------------------------------------------------------------------------
// The type graph: which fields merge, and by which key.
// ---------------------------------------------------------------------------------------

/// A Go API type, as far as strategic merge patch cares about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    /// Anything without merge metadata below it (also every field the graph ignores).
    Unknown,
    /// `metav1.ObjectMeta`.
    ObjectMeta,
    /// Kinds whose only tagged field is `metadata`: Endpoints, ConfigMap, Secret, Event,
    /// Binding, Lease, Scale.
    MetaOnly,
    /// `Namespace`.
    Namespace,
    /// `Node`.
    Node,
    /// `NodeSpec`.
    NodeSpec,
    /// `NodeStatus`.
    NodeStatus,
    /// `Pod`.
    Pod,
    /// `PodSpec`.
    PodSpec,
    /// `PodStatus`.
    PodStatus,
    /// `PodTemplateSpec`.
    PodTemplateSpec,
    /// `Container` and `EphemeralContainer` (whose common fields are inlined).
    Container,
    /// `Volume`.
    Volume,
    /// `EphemeralVolumeSource`.
    EphemeralVolumeSource,
    /// `PersistentVolumeClaimTemplate`.
    PvcTemplate,
    /// `Service`.
    Service,
    /// `ServiceSpec`.
    ServiceSpec,
    /// `Deployment`, `ReplicaSet`, `Job`: metadata, `spec.template`, `status.conditions`.
    Workload,
    /// `DeploymentSpec`, `ReplicaSetSpec`, `JobSpec`: only `template` matters.
    WorkloadSpec,
    /// Statuses whose only tagged field is `conditions` (merge key `type`): Namespace,
    /// Service, Deployment, ReplicaSet, Job.
    ConditionsStatus,
}

/// The JSON shape a field must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Not constrained here.
    Any,
    /// A Go struct: a JSON object.
    Object,
    /// A Go slice: a JSON list.
    List,
}

/// Patch metadata of one field: its type, its shape, and for lists whether they merge
/// (`patchStrategy:"merge"`) and by which key (`patchMergeKey`, empty for primitives).
///
/// `patchStrategy:"retainKeys"` (Deployment `spec.strategy`, pod `spec.volumes`,
/// `spec.resourceClaims`, `status.resourceClaimStatuses`) only matters when a patch is
/// *created*; applying honours a `$retainKeys` directive wherever it appears, exactly as
/// the Go code does, so it is not recorded here.
#[derive(Debug, Clone, Copy)]
struct FieldMeta {
    ty: Ty,
    shape: Shape,
    merge: bool,
    merge_key: &'static str,
}

const UNKNOWN_FIELD: FieldMeta = FieldMeta {
    ty: Ty::Unknown,
    shape: Shape::Any,
    merge: false,
    merge_key: "",
};

const fn object(ty: Ty) -> FieldMeta {
    FieldMeta {
        ty,
        shape: Shape::Object,
        merge: false,
        merge_key: "",
    }
}

const fn merge_list(ty: Ty, merge_key: &'static str) -> FieldMeta {
    FieldMeta {
        ty,
        shape: Shape::List,
        merge: true,
        merge_key,
    }
}

/// The root type of each supported kind.
fn root_type(kind: &str) -> Option<Ty> {
    match kind {
        "Namespace" => Some(Ty::Namespace),
        "Node" => Some(Ty::Node),
        "Pod" => Some(Ty::Pod),
        "Service" => Some(Ty::Service),
        "Endpoints" | "ConfigMap" | "Secret" | "Event" | "Binding" | "Lease" | "Scale"
        | "PriorityClass" => Some(Ty::MetaOnly),
        "Deployment" | "ReplicaSet" | "Job" => Some(Ty::Workload),
        _ => None,
    }
}

/// The patch metadata of field `name` of type `ty` (k8s.io/api v0.32 struct tags).
fn field_meta(ty: Ty, name: &str) -> FieldMeta {
    use Ty::*;
    match (ty, name) {
        (
            MetaOnly | Namespace | Node | Pod | Service | Workload | PodTemplateSpec | PvcTemplate,
            "metadata",
        ) => object(ObjectMeta),
        // metav1.ObjectMeta
        (ObjectMeta, "ownerReferences") => merge_list(Unknown, "uid"),
        (ObjectMeta, "finalizers") => merge_list(Unknown, ""),
        // v1.Namespace, v1.Service, apps/v1, batch/v1 statuses: conditions by type
        (Namespace | Service | Workload, "status") => object(ConditionsStatus),
        (ConditionsStatus, "conditions") => merge_list(Unknown, "type"),
        // v1.Node
        (Node, "spec") => object(NodeSpec),
        (Node, "status") => object(NodeStatus),
        (NodeSpec, "podCIDRs") => merge_list(Unknown, ""),
        (NodeStatus, "conditions" | "addresses") => merge_list(Unknown, "type"),
        // v1.Pod
        (Pod, "spec") => object(PodSpec),
        (Pod, "status") => object(PodStatus),
        (PodStatus, "conditions") => merge_list(Unknown, "type"),
        (PodStatus, "hostIPs" | "podIPs") => merge_list(Unknown, "ip"),
        (PodStatus, "resourceClaimStatuses") => merge_list(Unknown, "name"),
        // v1.PodSpec
        (PodSpec, "volumes") => merge_list(Volume, "name"),
        (PodSpec, "initContainers" | "containers" | "ephemeralContainers") => {
            merge_list(Container, "name")
        }
        (PodSpec, "imagePullSecrets" | "schedulingGates" | "resourceClaims") => {
            merge_list(Unknown, "name")
        }
        (PodSpec, "hostAliases") => merge_list(Unknown, "ip"),
        (PodSpec, "topologySpreadConstraints") => merge_list(Unknown, "topologyKey"),
        // v1.Container, v1.EphemeralContainerCommon
        (Container, "ports") => merge_list(Unknown, "containerPort"),
        (Container, "env") => merge_list(Unknown, "name"),
        (Container, "volumeMounts") => merge_list(Unknown, "mountPath"),
        (Container, "volumeDevices") => merge_list(Unknown, "devicePath"),
        // v1.Volume -> ephemeral.volumeClaimTemplate.metadata
        (Volume, "ephemeral") => object(EphemeralVolumeSource),
        (EphemeralVolumeSource, "volumeClaimTemplate") => object(PvcTemplate),
        // v1.ServiceSpec
        (Service, "spec") => object(ServiceSpec),
        (ServiceSpec, "ports") => merge_list(Unknown, "port"),
        // apps/v1 Deployment, ReplicaSet; batch/v1 Job
        (Workload, "spec") => object(WorkloadSpec),
        (WorkloadSpec, "template") => object(PodTemplateSpec),
        (PodTemplateSpec, "spec") => object(PodSpec),
        _ => UNKNOWN_FIELD,
    }
}

// ---------------------------------------------------------------------------------------
// Paths, JSON helpers and Go value semantics.
// ---------------------------------------------------------------------------------------

/// One step of a JSON path.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// The JSON path of the value being merged, for error messages.
#[derive(Debug, Clone, Default)]
struct Path(Vec<Seg>);

impl Path {
    fn named(name: &str) -> Self {
        Path(vec![Seg::Key(name.to_string())])
    }

    fn push_key(&mut self, key: &str) {
        self.0.push(Seg::Key(key.to_string()));
    }

    fn push_index(&mut self, index: usize) {
        self.0.push(Seg::Index(index));
    }

    fn pop(&mut self) {
        self.0.pop();
    }

    fn render(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("<root>");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// Fails if `v` nests objects/lists deeper than [`MAX_DEPTH`]. The recursion itself
/// stops at the limit, so it is safe on any input.
fn check_depth(v: &Value, path: &mut Path, depth: usize) -> Result<(), PatchError> {
    let too_deep = |path: &Path| PatchError::TooDeep {
        path: path.render(),
        max: MAX_DEPTH,
    };
    match v {
        Value::Object(m) => {
            if depth > MAX_DEPTH {
                return Err(too_deep(path));
            }
            for (k, child) in m {
                path.push_key(k);
                check_depth(child, path, depth + 1)?;
                path.pop();
            }
        }
        Value::Array(a) => {
            if depth > MAX_DEPTH {
                return Err(too_deep(path));
            }
            for (i, child) in a.iter().enumerate() {
                path.push_index(i);
                check_depth(child, path, depth + 1)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

/// The Go type a decoded JSON value has (`encoding/json` into `interface{}` with
/// apimachinery's number conversion: integers that fit `int64` are `int64`, other numbers
/// `float64`). Values of different kinds never compare equal in Go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoKind {
    Nil,
    Bool,
    String,
    Int,
    Float,
    Map,
    Slice,
}

fn go_kind(v: &Value) -> GoKind {
    match v {
        Value::Null => GoKind::Nil,
        Value::Bool(_) => GoKind::Bool,
        Value::String(_) => GoKind::String,
        Value::Number(n) if n.is_i64() => GoKind::Int,
        Value::Number(_) => GoKind::Float,
        Value::Object(_) => GoKind::Map,
        Value::Array(_) => GoKind::Slice,
    }
}

/// A hashable scalar with Go's `==` semantics on `interface{}` values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ScalarKey {
    Nil,
    Bool(bool),
    Str(String),
    Int(i64),
    /// The bits of the `f64` (with `-0.0` folded into `0.0`).
    Float(u64),
}

/// The scalar key of `v`, or `None` for objects and lists (which Go cannot hash).
fn scalar_key(v: &Value) -> Option<ScalarKey> {
    match v {
        Value::Null => Some(ScalarKey::Nil),
        Value::Bool(b) => Some(ScalarKey::Bool(*b)),
        Value::String(s) => Some(ScalarKey::Str(s.clone())),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(ScalarKey::Int(i)),
            None => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                let f = if f == 0.0 { 0.0 } else { f };
                Some(ScalarKey::Float(f.to_bits()))
            }
        },
        Value::Object(_) | Value::Array(_) => None,
    }
}

fn uncomparable(path: &Path) -> PatchError {
    PatchError::InvalidList {
        path: path.render(),
        message: "cannot compare objects or lists (merge keys and primitive list values must \
                  be scalars)"
            .to_string(),
    }
}

/// Go's `==` on two `interface{}` values: Go panics when both hold the same
/// uncomparable type (maps, slices); that is an error here.
fn go_eq(a: &Value, b: &Value, path: &Path) -> Result<bool, PatchError> {
    match (scalar_key(a), scalar_key(b)) {
        (Some(x), Some(y)) => Ok(x == y),
        _ if go_kind(a) == go_kind(b) => Err(uncomparable(path)),
        _ => Ok(false),
    }
}

/// The hashable key of a scalar, or an error for objects and lists (Go panics hashing
/// them).
fn hash_key(v: &Value, path: &Path) -> Result<ScalarKey, PatchError> {
    scalar_key(v).ok_or_else(|| uncomparable(path))
}

/// Fails if any object in `list` has a non-scalar value under `merge_key`.
fn check_scalar_merge_keys(list: &[Value], merge_key: &str, path: &Path) -> Result<(), PatchError> {
    for item in list {
        if let Some(v) = item.as_object().and_then(|m| m.get(merge_key)) {
            hash_key(v, path)?;
        }
    }
    Ok(())
}

/// `removeDirectives`: drops every object carrying `$patch` (and the list elements that
/// are such objects). Returns `None` when the value itself must be dropped.
fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE_MARKER) {
                return None;
            }
            let cleaned: Map<String, Value> = m
                .into_iter()
                .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                .collect();
            Some(Value::Object(cleaned))
        }
        Value::Array(a) => Some(Value::Array(
            a.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// `discardNullValuesFromPatch`: removes `null` values from every object, recursively
/// (list elements that are `null` stay).
fn discard_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, child| !child.is_null());
            for child in m.values_mut() {
                discard_nulls(child);
            }
        }
        Value::Array(a) => {
            for child in a {
                discard_nulls(child);
            }
        }
        _ => {}
    }
}

/// `extractKey`: the field name after `<prefix>/`.
fn extract_key<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    match key.split_once('/') {
        Some((head, rest)) if head == prefix => Some(rest),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Maps.
// ---------------------------------------------------------------------------------------

/// `mergeMap` with `MergeParallelList` and `IgnoreUnmatchedNulls` (server-side apply of a
/// patch).
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    ty: Ty,
    path: &mut Path,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER) {
        return match directive.as_str() {
            Some(REPLACE_DIRECTIVE) => {
                patch.remove(DIRECTIVE_MARKER);
                Ok(patch)
            }
            Some(DELETE_DIRECTIVE) => Ok(Map::new()),
            _ => Err(PatchError::InvalidDirective {
                path: path.render(),
                message: format!("unknown patch type {directive} in map"),
            }),
        };
    }

    apply_retain_keys(&mut original, &mut patch, path)?;
    merge_set_element_order(&mut original, &mut patch, ty, path)?;

    let mut entries: Vec<(String, Value)> = patch.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, patch_v) in entries {
        path.push_key(&key);
        let (field, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            match extract_key(&key, DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
                // Go keeps the whole key when nothing follows the slash.
                Some("") => (key.clone(), true),
                Some(rest) => (rest.to_string(), true),
                None => {
                    return Err(PatchError::InvalidDirective {
                        path: path.render(),
                        message: "invalid patch format of primitive list (expected \
                                  $deleteFromPrimitiveList/<field>)"
                            .to_string(),
                    });
                }
            }
        } else {
            (key.clone(), false)
        };
        let meta = field_meta(ty, &field);

        if patch_v.is_null() {
            original.remove(&field);
            path.pop();
            continue;
        }
        check_shape(&patch_v, meta, is_delete_list, path)?;

        match original.remove(&field) {
            None => {
                if !is_delete_list {
                    let mut v = patch_v;
                    discard_nulls(&mut v);
                    if let Some(v) = remove_directives(v) {
                        original.insert(field, v);
                    }
                }
            }
            Some(orig_v) => {
                let new_v = if go_kind(&orig_v) != go_kind(&patch_v) {
                    if is_delete_list {
                        Some(orig_v)
                    } else {
                        let mut v = patch_v;
                        discard_nulls(&mut v);
                        remove_directives(v)
                    }
                } else {
                    match (orig_v, patch_v) {
                        (Value::Object(o), Value::Object(p)) => {
                            Some(Value::Object(merge_map(o, p, meta.ty, path)?))
                        }
                        (Value::Array(o), Value::Array(p)) => {
                            let merged = if meta.merge || is_delete_list {
                                merge_slice(
                                    o,
                                    p,
                                    meta.ty,
                                    meta.merge_key,
                                    is_delete_list,
                                    false,
                                    path,
                                )?
                                .merged
                            } else {
                                p
                            };
                            Some(Value::Array(merged))
                        }
                        (_, p) => remove_directives(p),
                    }
                };
                if let Some(v) = new_v {
                    original.insert(field, v);
                }
            }
        }
        path.pop();
    }
    Ok(original)
}

/// Rejects patch values that can never decode into a known field.
fn check_shape(
    patch_v: &Value,
    meta: FieldMeta,
    is_delete_list: bool,
    path: &Path,
) -> Result<(), PatchError> {
    let not_a_list = || PatchError::NotAList {
        path: path.render(),
        found: json_type(patch_v).to_string(),
    };
    if is_delete_list {
        return if patch_v.is_array() {
            Ok(())
        } else {
            Err(not_a_list())
        };
    }
    match meta.shape {
        Shape::List if !patch_v.is_array() => Err(not_a_list()),
        Shape::Object if !patch_v.is_object() => Err(PatchError::NotAnObject {
            path: path.render(),
            found: json_type(patch_v).to_string(),
        }),
        _ => Ok(()),
    }
}

/// `applyRetainKeysDirective`: with `$retainKeys` in the patch, drops the original's keys
/// that are not listed, after checking that the patch sets only listed keys.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    path: &Path,
) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let invalid = |message: String| PatchError::InvalidRetainKeys {
        path: path.render(),
        message,
    };
    let Value::Array(list) = retain else {
        return Err(invalid(format!(
            "expected a list, got {}",
            json_type(&retain)
        )));
    };
    let mut keep: HashSet<ScalarKey> = HashSet::new();
    for v in &list {
        keep.insert(scalar_key(v).ok_or_else(|| invalid("keys must be strings".to_string()))?);
    }
    let mut entries: Vec<(&String, &Value)> = patch.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in entries {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !keep.contains(&ScalarKey::Str(k.clone())) {
            return Err(invalid(format!(
                "the patch sets {k:?}, which is not in the $retainKeys list"
            )));
        }
    }
    original.retain(|k, _| keep.contains(&ScalarKey::Str(k.clone())));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// $setElementOrder.
// ---------------------------------------------------------------------------------------

/// `mergePatchIntoOriginal`: merges each list that has a `$setElementOrder/<field>`
/// directive and orders it (directive order > patch order > live order).
fn merge_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    ty: Ty,
    path: &mut Path,
) -> Result<(), PatchError> {
    let mut keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    keys.sort();
    for key in keys {
        let Some(order_v) = patch.remove(&key) else {
            continue;
        };
        path.push_key(&key);
        let Value::Array(set_order) = order_v else {
            return Err(PatchError::NotAList {
                path: path.render(),
                found: json_type(&order_v).to_string(),
            });
        };
        let Some(field) = extract_key(&key, SET_ELEMENT_ORDER_PREFIX).map(str::to_string) else {
            return Err(PatchError::InvalidSetElementOrder {
                path: path.render(),
                message: "expected $setElementOrder/<field>".to_string(),
            });
        };
        path.pop();
        path.push_key(&field);

        let original_list = match original.get(&field) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => {
                return Err(PatchError::NotAList {
                    path: path.render(),
                    found: json_type(other).to_string(),
                })
            }
        };
        let patch_list = match patch.get(&field) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => {
                return Err(PatchError::NotAList {
                    path: path.render(),
                    found: json_type(other).to_string(),
                })
            }
        };
        let meta = field_meta(ty, &field);
        if meta.shape == Shape::Object {
            return Err(PatchError::InvalidSetElementOrder {
                path: path.render(),
                message: "the field is not a list".to_string(),
            });
        }
        let merge_key = meta.merge_key;
        validate_patch_with_set_order_list(
            patch_list.as_deref().unwrap_or(&[]),
            &set_order,
            merge_key,
            path,
        )?;
        let kind = slice_element_type(
            &[
                original_list.as_deref().unwrap_or(&[]),
                patch_list.as_deref().unwrap_or(&[]),
            ],
            path,
        );

        let (merged, server_order) = match (original_list, patch_list) {
            (Some(o), None) => (o.clone(), o),
            (None, Some(p)) => {
                let cleaned = p.into_iter().filter_map(remove_directives).collect();
                (cleaned, Vec::new())
            }
            (Some(o), Some(p)) => {
                if meta.merge {
                    let outcome = merge_slice(o, p, meta.ty, merge_key, false, true, path)?;
                    (outcome.merged, outcome.view)
                } else {
                    (p, o)
                }
            }
            (None, None) => {
                path.pop();
                continue;
            }
        };

        let (patch_items, server_only) = if merge_key.is_empty() {
            partition_primitives(merged, &set_order, path)?
        } else {
            check_scalar_merge_keys(&set_order, merge_key, path)?;
            partition_maps(merged, &set_order, merge_key, path)?
        };
        let kind = kind?;
        let ordered = normalize_element_order(
            patch_items,
            server_only,
            &set_order,
            &server_order,
            merge_key,
            kind,
            path,
        )?;
        original.insert(field.clone(), Value::Array(ordered));
        patch.remove(&field);
        path.pop();
    }
    Ok(())
}

/// `validatePatchWithSetOrderList`: the patch list's elements (deletions and directive
/// elements aside) must appear in the `$setElementOrder` list, in the same relative order.
fn validate_patch_with_set_order_list(
    patch_list: &[Value],
    set_order: &[Value],
    merge_key: &str,
    path: &Path,
) -> Result<(), PatchError> {
    if set_order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<Value> = if merge_key.is_empty() {
        patch_list.to_vec()
    } else {
        extract_to_delete_items(patch_list.to_vec(), path)?.0
    };
    let (mut pi, mut si) = (0, 0);
    while pi < non_delete.len() && si < set_order.len() {
        let item = &non_delete[pi];
        if item
            .as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE_MARKER))
        {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(item, &set_order[si], merge_key, path)? {
            pi += 1;
        }
        si += 1;
    }
    if pi < non_delete.len() && si >= set_order.len() {
        return Err(PatchError::InvalidSetElementOrder {
            path: path.render(),
            message: "the order of the patch list doesn't match the $setElementOrder list"
                .to_string(),
        });
    }
    Ok(())
}

/// `mergeKeyValueEqual`.
fn merge_key_value_equal(
    left: &Value,
    right: &Value,
    merge_key: &str,
    path: &Path,
) -> Result<bool, PatchError> {
    if merge_key.is_empty() {
        return go_eq(left, right, path);
    }
    fn as_map<'v>(v: &'v Value, path: &Path) -> Result<&'v Map<String, Value>, PatchError> {
        match v {
            Value::Object(m) => Ok(m),
            other => Err(PatchError::NotAnObject {
                path: path.render(),
                found: json_type(other).to_string(),
            }),
        }
    }
    let (l, r) = (as_map(left, path)?, as_map(right, path)?);
    let missing = || PatchError::MissingMergeKey {
        path: path.render(),
        key: merge_key.to_string(),
    };
    let lv = l.get(merge_key).ok_or_else(missing)?;
    let rv = r.get(merge_key).ok_or_else(missing)?;
    go_eq(lv, rv, path)
}

// ---------------------------------------------------------------------------------------
// Lists.
// ---------------------------------------------------------------------------------------

/// The result of merging a list: the merged list, and what Go's `originalFieldValue`
/// slice shows afterwards (`view`): Go deletes elements in place with
/// `append(s[:i], s[i+1:]...)` and appends new elements into the freed capacity, so the
/// caller's view of the original slice changes; `$setElementOrder` uses that view as the
/// live order.
struct SliceOutcome {
    merged: Vec<Value>,
    view: Vec<Value>,
}

/// `sliceElementType`: all elements of all lists must have the same Go type, and must
/// not be lists.
fn slice_element_type(lists: &[&[Value]], path: &Path) -> Result<GoKind, PatchError> {
    let invalid = |message: &str| PatchError::InvalidList {
        path: path.render(),
        message: message.to_string(),
    };
    let mut prev: Option<GoKind> = None;
    for list in lists {
        for v in list.iter() {
            let kind = go_kind(v);
            match prev {
                None => {
                    if kind == GoKind::Nil {
                        return Err(invalid("list elements must not be null"));
                    }
                    if kind == GoKind::Slice {
                        return Err(invalid("lists of lists are not supported"));
                    }
                    prev = Some(kind);
                }
                Some(p) if p != kind => {
                    return Err(invalid("list element types are not identical"));
                }
                Some(_) => {}
            }
        }
    }
    prev.ok_or_else(|| invalid("no elements in any of the given lists"))
}

/// `mergeSlice`.
fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    elem_ty: Ty,
    merge_key: &str,
    is_delete_list: bool,
    want_view: bool,
    path: &mut Path,
) -> Result<SliceOutcome, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(SliceOutcome {
            merged: original,
            view: Vec::new(),
        });
    }
    let kind = slice_element_type(&[&original, &patch], path)?;

    if kind != GoKind::Map {
        if is_delete_list {
            let merged = delete_from_slice(&original, &patch, path)?;
            return Ok(SliceOutcome {
                merged,
                view: if want_view { original } else { Vec::new() },
            });
        }
        // Go concatenates and deduplicates (in an order that the ordering below makes
        // irrelevant: every element then has a distinct rank in the patch or the original).
        let mut seen: HashSet<ScalarKey> = HashSet::new();
        let mut merged = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch.iter()) {
            if seen.insert(hash_key(v, path)?) {
                merged.push(v.clone());
            }
        }
        let (patch_items, server_only) = if merge_key.is_empty() {
            partition_primitives(merged, &patch, path)?
        } else {
            partition_maps(merged, &patch, merge_key, path)?
        };
        let ordered = normalize_element_order(
            patch_items,
            server_only,
            &patch,
            &original,
            merge_key,
            kind,
            path,
        )?;
        return Ok(SliceOutcome {
            merged: ordered,
            view: if want_view { original } else { Vec::new() },
        });
    }

    if merge_key.is_empty() {
        return Err(PatchError::InvalidList {
            path: path.render(),
            message: "cannot merge lists of objects without a merge key".to_string(),
        });
    }
    check_scalar_merge_keys(&original, merge_key, path)?;
    check_scalar_merge_keys(&patch, merge_key, path)?;

    let special = merge_slice_with_special_elements(original, patch, merge_key, want_view, path)?;
    let base_len = special.original.len();
    let mut view = special.view;
    let (merged, appended) = merge_slice_without_special_elements(
        special.original,
        special.patch.clone(),
        elem_ty,
        merge_key,
        path,
    )?;
    // Appends land in the slots freed by the deletions (Go's shared backing array).
    for (slot, item) in view.iter_mut().skip(base_len).zip(appended) {
        *slot = item;
    }
    let server_order: Vec<Value> = merged[..base_len].to_vec();
    let (patch_items, server_only) = partition_maps(merged, &special.patch, merge_key, path)?;
    let ordered = normalize_element_order(
        patch_items,
        server_only,
        &special.patch,
        &server_order,
        merge_key,
        kind,
        path,
    )?;
    Ok(SliceOutcome {
        merged: ordered,
        view,
    })
}

/// `deleteFromSlice`: the elements of `current` that are not in `to_delete`.
fn delete_from_slice(
    current: &[Value],
    to_delete: &[Value],
    path: &Path,
) -> Result<Vec<Value>, PatchError> {
    let mut drop: HashSet<ScalarKey> = HashSet::new();
    for v in to_delete {
        drop.insert(hash_key(v, path)?);
    }
    let mut kept = Vec::with_capacity(current.len());
    for v in current {
        if !drop.contains(&hash_key(v, path)?) {
            kept.push(v.clone());
        }
    }
    Ok(kept)
}

/// What `mergeSliceWithSpecialElements` leaves: the original after deletions (or the
/// replacement list), the patch elements still to merge, and the view of the original
/// slice (length unchanged, tail slots holding what Go's in-place deletions left there).
struct SpecialOutcome {
    original: Vec<Value>,
    patch: Vec<Value>,
    view: Vec<Value>,
}

/// `mergeSliceWithSpecialElements`: applies `{"$patch": "delete", key: v}` elements
/// (removing every match, first match first), notes `{"$patch": "replace"}`, rejects
/// other directives, and returns the remaining patch elements.
fn merge_slice_with_special_elements(
    original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
    want_view: bool,
    path: &mut Path,
) -> Result<SpecialOutcome, PatchError> {
    let len = original.len();
    // Indices of the original elements per merge-key value (elements having the key).
    let mut by_key: HashMap<ScalarKey, Vec<usize>> = HashMap::new();
    for (i, item) in original.iter().enumerate() {
        if let Some(v) = item.as_object().and_then(|m| m.get(merge_key)) {
            by_key.entry(hash_key(v, path)?).or_default().push(i);
        }
    }
    let mut removed = vec![false; len];
    // frozen[p]: the value Go leaves in slot p once the slice is shorter than p + 1,
    // i.e. the last element at the moment the length dropped from p + 1.
    let mut frozen: Vec<Option<usize>> = vec![None; len];
    let mut current_len = len;
    let mut last = len; // one past the index of the last kept element

    let mut patch_without_special = Vec::with_capacity(patch.len());
    let mut replace = false;
    for (i, v) in patch.into_iter().enumerate() {
        let directive = match v.as_object().and_then(|m| m.get(DIRECTIVE_MARKER)) {
            None => {
                patch_without_special.push(v);
                continue;
            }
            Some(d) => d.clone(),
        };
        path.push_index(i);
        match directive.as_str() {
            Some(DELETE_DIRECTIVE) => {
                let Some(key_v) = v.as_object().and_then(|m| m.get(merge_key)) else {
                    return Err(PatchError::MissingMergeKey {
                        path: path.render(),
                        key: merge_key.to_string(),
                    });
                };
                if let Some(indices) = by_key.remove(&hash_key(key_v, path)?) {
                    for idx in indices {
                        // The last kept element freezes in slot current_len - 1.
                        if current_len > 0 {
                            frozen[current_len - 1] = last.checked_sub(1);
                        }
                        removed[idx] = true;
                        current_len -= 1;
                        while last > 0 && removed[last - 1] {
                            last -= 1;
                        }
                    }
                }
            }
            Some(REPLACE_DIRECTIVE) => replace = true,
            Some(MERGE_DIRECTIVE) => {
                return Err(PatchError::InvalidDirective {
                    path: path.render(),
                    message: "merging lists cannot yet be specified in the patch".to_string(),
                })
            }
            _ => {
                return Err(PatchError::InvalidDirective {
                    path: path.render(),
                    message: format!("unknown patch type {directive} in list element"),
                })
            }
        }
        path.pop();
    }

    let mut view: Vec<Value> = Vec::new();
    if want_view {
        view.reserve(len);
        view.extend(
            original
                .iter()
                .zip(&removed)
                .filter(|(_, gone)| !**gone)
                .map(|(item, _)| item.clone()),
        );
        for slot in frozen.iter().skip(current_len) {
            view.push(
                slot.and_then(|idx| original.get(idx))
                    .cloned()
                    .unwrap_or(Value::Null),
            );
        }
    }
    let kept: Vec<Value> = original
        .into_iter()
        .zip(removed)
        .filter(|(_, gone)| !*gone)
        .map(|(item, _)| item)
        .collect();

    if replace {
        Ok(SpecialOutcome {
            original: patch_without_special,
            patch: Vec::new(),
            view,
        })
    } else {
        Ok(SpecialOutcome {
            original: kept,
            patch: patch_without_special,
            view,
        })
    }
}

/// `mergeSliceWithoutSpecialElements`: merges each patch element into the first original
/// element with the same merge-key value, or appends it. Also returns the appended
/// elements, in order.
fn merge_slice_without_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    elem_ty: Ty,
    merge_key: &str,
    path: &mut Path,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut first_index: HashMap<ScalarKey, usize> = HashMap::new();
    for (i, item) in original.iter().enumerate() {
        if let Some(v) = item.as_object().and_then(|m| m.get(merge_key)) {
            first_index.entry(hash_key(v, path)?).or_insert(i);
        }
    }
    let mut appended = Vec::new();
    for (i, v) in patch.into_iter().enumerate() {
        path.push_index(i);
        let Value::Object(patch_elem) = v else {
            return Err(PatchError::NotAnObject {
                path: path.render(),
                found: json_type(&v).to_string(),
            });
        };
        let Some(key_v) = patch_elem.get(merge_key) else {
            return Err(PatchError::MissingMergeKey {
                path: path.render(),
                key: merge_key.to_string(),
            });
        };
        let key = hash_key(key_v, path)?;
        match first_index.get(&key) {
            Some(&idx) => {
                let target = std::mem::take(&mut original[idx]);
                let Value::Object(orig_elem) = target else {
                    return Err(PatchError::NotAnObject {
                        path: path.render(),
                        found: json_type(&target).to_string(),
                    });
                };
                original[idx] = Value::Object(merge_map(orig_elem, patch_elem, elem_ty, path)?);
            }
            None => {
                first_index.insert(key, original.len());
                appended.push(Value::Object(patch_elem.clone()));
                original.push(Value::Object(patch_elem));
            }
        }
        path.pop();
    }
    Ok((original, appended))
}

/// `extractToDeleteItems`: splits a list of objects into the elements to keep and the
/// `{"$patch": "delete"}` ones.
fn extract_to_delete_items(
    list: Vec<Value>,
    path: &Path,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut keep = Vec::new();
    let mut delete = Vec::new();
    for v in list {
        let Value::Object(m) = &v else {
            return Err(PatchError::NotAnObject {
                path: path.render(),
                found: json_type(&v).to_string(),
            });
        };
        if m.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some(DELETE_DIRECTIVE) {
            delete.push(v);
        } else {
            keep.push(v);
        }
    }
    Ok((keep, delete))
}

/// `validateMergeKeyInLists`: every element is an object holding the merge key.
fn validate_merge_key_in_lists(
    merge_key: &str,
    lists: &[&[Value]],
    path: &Path,
) -> Result<(), PatchError> {
    for list in lists {
        for item in list.iter() {
            let Value::Object(m) = item else {
                return Err(PatchError::NotAnObject {
                    path: path.render(),
                    found: json_type(item).to_string(),
                });
            };
            if !m.contains_key(merge_key) {
                return Err(PatchError::MissingMergeKey {
                    path: path.render(),
                    key: merge_key.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// `partitionPrimitivesByPresentInList`: (elements present in `by`, the others).
fn partition_primitives(
    merged: Vec<Value>,
    by: &[Value],
    path: &Path,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut present: HashSet<ScalarKey> = HashSet::new();
    for v in by {
        present.insert(hash_key(v, path)?);
    }
    let mut in_patch = Vec::new();
    let mut server_only = Vec::new();
    for v in merged {
        if present.contains(&hash_key(&v, path)?) {
            in_patch.push(v);
        } else {
            server_only.push(v);
        }
    }
    Ok((in_patch, server_only))
}

/// `partitionMapsByPresentInList`: (elements whose merge-key value appears in `by`, the
/// others).
fn partition_maps(
    merged: Vec<Value>,
    by: &[Value],
    merge_key: &str,
    path: &Path,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut present: HashSet<ScalarKey> = HashSet::new();
    for v in by {
        let Value::Object(m) = v else {
            return Err(PatchError::NotAnObject {
                path: path.render(),
                found: json_type(v).to_string(),
            });
        };
        if let Some(k) = m.get(merge_key) {
            present.insert(hash_key(k, path)?);
        }
    }
    let mut in_patch = Vec::new();
    let mut server_only = Vec::new();
    for v in merged {
        let key = match &v {
            Value::Object(m) => match m.get(merge_key) {
                Some(k) => hash_key(k, path)?,
                None => {
                    return Err(PatchError::MissingMergeKey {
                        path: path.render(),
                        key: merge_key.to_string(),
                    })
                }
            },
            other => {
                return Err(PatchError::NotAnObject {
                    path: path.render(),
                    found: json_type(other).to_string(),
                })
            }
        };
        if present.contains(&key) {
            in_patch.push(v);
        } else {
            server_only.push(v);
        }
    }
    Ok((in_patch, server_only))
}

/// Go's `index(list, item, mergeKey, kind)` as a lookup table: the first position of each
/// value (or merge-key value; a missing key or a non-object counts as `nil`) in a list.
struct RankIndex {
    first: HashMap<ScalarKey, usize>,
    merge_key: String,
    maps: bool,
}

impl RankIndex {
    fn new(list: &[Value], merge_key: &str, kind: GoKind) -> Self {
        let mut index = RankIndex {
            first: HashMap::new(),
            merge_key: merge_key.to_string(),
            maps: kind == GoKind::Map,
        };
        for (i, item) in list.iter().enumerate() {
            if let Some(k) = index.key_of(item) {
                index.first.entry(k).or_insert(i);
            }
        }
        index
    }

    fn key_of(&self, item: &Value) -> Option<ScalarKey> {
        if self.maps {
            match item {
                Value::Object(m) => match m.get(&self.merge_key) {
                    Some(v) => scalar_key(v),
                    None => Some(ScalarKey::Nil),
                },
                _ => Some(ScalarKey::Nil),
            }
        } else {
            scalar_key(item)
        }
    }

    fn rank(&self, item: &Value) -> Option<usize> {
        self.key_of(item).and_then(|k| self.first.get(&k).copied())
    }
}

/// `normalizeElementOrder`: sorts the patch items by `patch_order` and the server-only
/// items by `server_order`, then interleaves them.
fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: GoKind,
    path: &Path,
) -> Result<Vec<Value>, PatchError> {
    let patch_items = normalize_slice_order(patch_items, patch_order, merge_key, kind, path)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind, path)?;
    Ok(merge_sorted_slice(
        server_only,
        patch_items,
        server_order,
        merge_key,
        kind,
    ))
}

/// `normalizeSliceOrder`: Go's `sort.SliceStable` by position in `order` (items not in
/// `order` compare "less" both ways, exactly as in Go); `$patch: delete` items go last.
fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: GoKind,
    path: &Path,
) -> Result<Vec<Value>, PatchError> {
    let (to_sort, to_delete) = if kind == GoKind::Map {
        validate_merge_key_in_lists(merge_key, &[&to_sort, order], path)?;
        extract_to_delete_items(to_sort, path)?
    } else {
        (to_sort, Vec::new())
    };
    let index = RankIndex::new(order, merge_key, kind);
    let mut ranked: Vec<(Option<usize>, Value)> =
        to_sort.into_iter().map(|v| (index.rank(&v), v)).collect();
    go_stable_sort(&mut ranked, |a, b| match (a.0, b.0) {
        (Some(x), Some(y)) => x < y,
        _ => true,
    });
    let mut sorted: Vec<Value> = ranked.into_iter().map(|(_, v)| v).collect();
    sorted.extend(to_delete);
    Ok(sorted)
}

/// `mergeSortedSlice`: inserts each `left` (server-only) item before the first `right`
/// (patch) item it precedes in `server_order`, keeping both relative orders.
fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: GoKind,
) -> Vec<Value> {
    let index = RankIndex::new(server_order, merge_key, kind);
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => match (index.rank(l), index.rank(r)) {
                (Some(li), Some(ri)) => li < ri,
                _ => false,
            },
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

// ---------------------------------------------------------------------------------------
// Go's sort.SliceStable (insertion sort on blocks of 20, then SymMerge), reproduced
// because the comparison used by normalizeSliceOrder is not a strict weak order and the
// result therefore depends on the algorithm.
// ---------------------------------------------------------------------------------------

fn go_stable_sort<T>(data: &mut [T], less: impl Fn(&T, &T) -> bool) {
    let n = data.len();
    let mut block = 20;
    let (mut a, mut b) = (0, block);
    while b <= n {
        go_insertion_sort(data, a, b, &less);
        a = b;
        b += block;
    }
    go_insertion_sort(data, a, n, &less);
    while block < n {
        a = 0;
        b = 2 * block;
        while b <= n {
            go_sym_merge(data, a, a + block, b, &less);
            a = b;
            b += 2 * block;
        }
        let m = a + block;
        if m < n {
            go_sym_merge(data, a, m, n, &less);
        }
        block *= 2;
    }
}

fn go_insertion_sort<T>(data: &mut [T], a: usize, b: usize, less: &impl Fn(&T, &T) -> bool) {
    for i in a + 1..b {
        let mut j = i;
        while j > a && less(&data[j], &data[j - 1]) {
            data.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn go_sym_merge<T>(data: &mut [T], a: usize, m: usize, b: usize, less: &impl Fn(&T, &T) -> bool) {
    if m - a == 1 {
        let (mut i, mut j) = (m, b);
        while i < j {
            let h = (i + j) / 2;
            if less(&data[h], &data[a]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        let mut k = a;
        while k + 1 < i {
            data.swap(k, k + 1);
            k += 1;
        }
        return;
    }
    if b - m == 1 {
        let (mut i, mut j) = (a, m);
        while i < j {
            let h = (i + j) / 2;
            if !less(&data[m], &data[h]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        let mut k = m;
        while k > i {
            data.swap(k, k - 1);
            k -= 1;
        }
        return;
    }
    let mid = (a + b) / 2;
    let n = mid + m;
    let (mut start, mut r) = if m > mid { (n - b, mid) } else { (a, m) };
    let p = n - 1;
    while start < r {
        let c = (start + r) / 2;
        if !less(&data[p - c], &data[c]) {
            start = c + 1;
        } else {
            r = c;
        }
    }
    let end = n - start;
    if start < m && m < end {
        go_rotate(data, start, m, end);
    }
    if a < start && start < mid {
        go_sym_merge(data, a, start, mid, less);
    }
    if mid < end && end < b {
        go_sym_merge(data, mid, end, b, less);
    }
}

fn go_rotate<T>(data: &mut [T], a: usize, m: usize, b: usize) {
    let mut i = m - a;
    let mut j = b - m;
    while i != j {
        if i > j {
            go_swap_range(data, m - i, m, j);
            i -= j;
        } else {
            go_swap_range(data, m - i, m + j - i, i);
            j -= i;
        }
    }
    go_swap_range(data, m - i, m, i);
}

fn go_swap_range<T>(data: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        data.swap(a + i, b + i);
    }
}

#[cfg(test)]
mod tests {
    //! Most expectations below were produced by the real implementation:
    //! `kubectl patch --local -f <original> --type strategic --patch-file <patch> -o json`
    //! (kubectl v1.32, which applies the patch client-side with apimachinery's
    //! `strategicpatch.StrategicMergePatch` and the typed object as schema). The ignored
    //! test `differential_against_kubectl` re-runs kubectl on every recorded case.

    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap_or_else(|e| panic!("bad test JSON {s}: {e}"))
    }

    /// Base objects of the recorded cases.
    const CTRS: &str = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"image":"a:1","name":"a"},{"image":"b:1","name":"b"}]}}}}"#;
    const FOUR: &str = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"image":"a:1","name":"a"},{"image":"b:1","name":"b"},{"image":"c:1","name":"c"},{"image":"x:1","name":"x"}]}}}}"#;
    const NESTED: &str = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"a:1","name":"a","ports":[{"containerPort":80,"name":"http"},{"containerPort":443}],"volumeMounts":[{"mountPath":"/v1","name":"v1"}]}],"tolerations":[{"key":"k1"}],"volumes":[{"configMap":{"name":"cm"},"name":"v1"},{"emptyDir":{},"name":"v2"}]}}}}"#;
    const META: &str = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"finalizers":["f1","f2"],"labels":{"app":"d","tier":"web"},"name":"d","ownerReferences":[{"name":"o1","uid":"u1"},{"name":"o2","uid":"u2"}]},"spec":{"replicas":2,"strategy":{"rollingUpdate":{"maxSurge":1},"type":"RollingUpdate"}},"status":{"conditions":[{"status":"True","type":"Available"},{"status":"True","type":"Progressing"}]}}"#;
    const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"image":"a","name":"a"}],"hostAliases":[{"hostnames":["h"],"ip":"10.0.0.1"}],"initContainers":[{"image":"i","name":"i"}],"schedulingGates":[{"name":"g1"},{"name":"g2"}]},"status":{"conditions":[{"status":"True","type":"Ready"}],"podIPs":[{"ip":"10.1.0.1"}]}}"#;
    const NODE: &str = r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"spec":{"podCIDRs":["10.0.0.0/24","fd00::/64"],"taints":[{"effect":"NoSchedule","key":"t1"}]},"status":{"addresses":[{"address":"1.2.3.4","type":"InternalIP"},{"address":"n","type":"Hostname"}]}}"#;
    const SVC: &str = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"ports":[{"name":"http","port":80,"targetPort":8080},{"name":"https","port":443}]}}"#;
    const NS: &str = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"finalizers":["a"],"name":"ns"},"spec":{"finalizers":["kubernetes"]},"status":{"conditions":[{"status":"True","type":"C1"}]}}"#;
    const JOB: &str = r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{"template":{"spec":{"containers":[{"image":"busybox","name":"main"}]}}},"status":{"conditions":[{"status":"True","type":"Complete"}]}}"#;
    const CM: &str = r#"{"apiVersion":"v1","data":{"a":"1","b":"2"},"kind":"ConfigMap","metadata":{"name":"cm"}}"#;
    const SCALE: &str = r#"{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"d"},"spec":{"replicas":2}}"#;
    const LEASE: &str = r#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"l"},"spec":{"holderIdentity":"h1"}}"#;

    /// (name, kind, original, patch, result of `kubectl patch --local --type strategic`).
    const KUBECTL_CASES: &[(&str, &str, &str, &str, &str)] = &[
        (
            "scalar_replace",
            "Deployment",
            META,
            r#"{"spec":{"replicas":5}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"finalizers":["f1","f2"],"labels":{"app":"d","tier":"web"},"name":"d","ownerReferences":[{"name":"o1","uid":"u1"},{"name":"o2","uid":"u2"}]},"spec":{"replicas":5,"strategy":{"rollingUpdate":{"maxSurge":1},"type":"RollingUpdate"}},"status":{"conditions":[{"status":"True","type":"Available"},{"status":"True","type":"Progressing"}]}}"#,
        ),
        (
            "labels_add_and_null_delete",
            "Deployment",
            META,
            r#"{"metadata":{"labels":{"new":"x","tier":null}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"finalizers":["f1","f2"],"labels":{"app":"d","new":"x"},"name":"d","ownerReferences":[{"name":"o1","uid":"u1"},{"name":"o2","uid":"u2"}]},"spec":{"replicas":2,"strategy":{"rollingUpdate":{"maxSurge":1},"type":"RollingUpdate"}},"status":{"conditions":[{"status":"True","type":"Available"},{"status":"True","type":"Progressing"}]}}"#,
        ),
        (
            "null_patch_is_noop",
            "ConfigMap",
            CM,
            r#"null"#,
            r#"{"apiVersion":"v1","data":{"a":"1","b":"2"},"kind":"ConfigMap","metadata":{"name":"cm"}}"#,
        ),
        (
            "map_patch_replace",
            "Deployment",
            META,
            r#"{"metadata":{"labels":{"$patch":"replace","only":"this"}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"finalizers":["f1","f2"],"labels":{"only":"this"},"name":"d","ownerReferences":[{"name":"o1","uid":"u1"},{"name":"o2","uid":"u2"}]},"spec":{"replicas":2,"strategy":{"rollingUpdate":{"maxSurge":1},"type":"RollingUpdate"}},"status":{"conditions":[{"status":"True","type":"Available"},{"status":"True","type":"Progressing"}]}}"#,
        ),
        (
            "map_patch_replace_keeps_nulls_verbatim",
            "ConfigMap",
            CM,
            r#"{"data":{"$patch":"replace","z":null}}"#,
            r#"{"apiVersion":"v1","data":{"z":null},"kind":"ConfigMap","metadata":{"name":"cm"}}"#,
        ),
        (
            "map_patch_delete_empties_the_map",
            "Deployment",
            META,
            r#"{"spec":{"strategy":{"$patch":"delete"}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"finalizers":["f1","f2"],"labels":{"app":"d","tier":"web"},"name":"d","ownerReferences":[{"name":"o1","uid":"u1"},{"name":"o2","uid":"u2"}]},"spec":{"replicas":2,"strategy":{}},"status":{"conditions":[{"status":"True","type":"Available"},{"status":"True","type":"Progressing"}]}}"#,
        ),
        (
            "map_patch_delete_on_absent_field",
            "ConfigMap",
            CM,
            r#"{"spec":{"$patch":"delete"}}"#,
            r#"{"apiVersion":"v1","data":{"a":"1","b":"2"},"kind":"ConfigMap","metadata":{"name":"cm"}}"#,
        ),
        (
            "top_level_patch_replace",
            "ConfigMap",
            CM,
            r#"{"$patch":"replace","apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm2"}}"#,
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm2"}}"#,
        ),
        (
            "new_field_nulls_discarded_directives_removed",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"affinity":{"nodeAffinity":null,"podAffinity":{"x":{"y":null,"z":1}}},"dnsConfig":{"options":[{"name":"a"},{"$patch":"delete","name":"b"}],"sub":{"$patch":"replace","q":1}}}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"affinity":{"podAffinity":{"x":{"z":1}}},"containers":[{"image":"a:1","name":"a"},{"image":"b:1","name":"b"}],"dnsConfig":{"options":[{"name":"a"}]}}}}}"#,
        ),
        (
            "configmap_data",
            "ConfigMap",
            CM,
            r#"{"data":{"a":null,"c":"3"}}"#,
            r#"{"apiVersion":"v1","data":{"b":"2","c":"3"},"kind":"ConfigMap","metadata":{"name":"cm"}}"#,
        ),
        (
            "scale_replicas",
            "Scale",
            SCALE,
            r#"{"spec":{"replicas":7}}"#,
            r#"{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"d"},"spec":{"replicas":7}}"#,
        ),
        (
            "lease_holder",
            "Lease",
            LEASE,
            r#"{"spec":{"holderIdentity":"h2","leaseDurationSeconds":15}}"#,
            r#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"l"},"spec":{"holderIdentity":"h2","leaseDurationSeconds":15}}"#,
        ),
        (
            "retain_keys_on_absent_field_copied_verbatim",
            "ConfigMap",
            CM,
            r#"{"spec":{"$retainKeys":["a"],"a":1}}"#,
            r#"{"apiVersion":"v1","data":{"a":"1","b":"2"},"kind":"ConfigMap","metadata":{"name":"cm"},"spec":{"$retainKeys":["a"],"a":1}}"#,
        ),
        (
            "deletion_list_of_objects_merges_like_go",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"$deleteFromPrimitiveList/containers":[{"image":"q","name":"a"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"image":"q","name":"a"},{"image":"b:1","name":"b"}]}}}}"#,
        ),
        (
            "type_change_replaces",
            "ConfigMap",
            CM,
            r#"{"data":{"a":{"nested":null,"v":1}}}"#,
            r#"{"apiVersion":"v1","data":{"a":{"v":1},"b":"2"},"kind":"ConfigMap","metadata":{"name":"cm"}}"#,
        ),
        (
            "strategy_retain_keys_recreate",
            "Deployment",
            META,
            r#"{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"finalizers":["f1","f2"],"labels":{"app":"d","tier":"web"},"name":"d","ownerReferences":[{"name":"o1","uid":"u1"},{"name":"o2","uid":"u2"}]},"spec":{"replicas":2,"strategy":{"type":"Recreate"}},"status":{"conditions":[{"status":"True","type":"Available"},{"status":"True","type":"Progressing"}]}}"#,
        ),
        (
            "strategy_retain_keys_apply_shape",
            "Deployment",
            META,
            r#"{"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":null,"type":"Recreate"}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"finalizers":["f1","f2"],"labels":{"app":"d","tier":"web"},"name":"d","ownerReferences":[{"name":"o1","uid":"u1"},{"name":"o2","uid":"u2"}]},"spec":{"replicas":2,"strategy":{"type":"Recreate"}},"status":{"conditions":[{"status":"True","type":"Available"},{"status":"True","type":"Progressing"}]}}"#,
        ),
        (
            "strategy_retain_keys_keep_both",
            "Deployment",
            META,
            r#"{"spec":{"strategy":{"$retainKeys":["rollingUpdate","type"],"rollingUpdate":{"maxUnavailable":2}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"finalizers":["f1","f2"],"labels":{"app":"d","tier":"web"},"name":"d","ownerReferences":[{"name":"o1","uid":"u1"},{"name":"o2","uid":"u2"}]},"spec":{"replicas":2,"strategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":2},"type":"RollingUpdate"}},"status":{"conditions":[{"status":"True","type":"Available"},{"status":"True","type":"Progressing"}]}}"#,
        ),
        (
            "volume_retain_keys",
            "Deployment",
            NESTED,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/volumes":[{"name":"v1"},{"name":"v2"}],"volumes":[{"$retainKeys":["name","secret"],"name":"v1","secret":{"secretName":"s"}}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"a:1","name":"a","ports":[{"containerPort":80,"name":"http"},{"containerPort":443}],"volumeMounts":[{"mountPath":"/v1","name":"v1"}]}],"tolerations":[{"key":"k1"}],"volumes":[{"name":"v1","secret":{"secretName":"s"}},{"emptyDir":{},"name":"v2"}]}}}}"#,
        ),
        (
            "container_merge_by_name",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"containers":[{"image":"b:2","name":"b"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"image":"a:1","name":"a"},{"image":"b:2","name":"b"}]}}}}"#,
        ),
        (
            "container_added_first",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"containers":[{"image":"c:1","name":"c"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"image":"c:1","name":"c"},{"image":"a:1","name":"a"},{"image":"b:1","name":"b"}]}}}}"#,
        ),
        (
            "containers_patch_order_wins",
            "Deployment",
            FOUR,
            r#"{"spec":{"template":{"spec":{"containers":[{"image":"x2","name":"x"},{"image":"b2","name":"b"},{"image":"e","name":"e"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"image":"a:1","name":"a"},{"image":"c:1","name":"c"},{"image":"x2","name":"x"},{"image":"b2","name":"b"},{"image":"e","name":"e"}]}}}}"#,
        ),
        (
            "container_delete_directive",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"delete","name":"b"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"image":"a:1","name":"a"}]}}}}"#,
        ),
        (
            "container_delete_unknown_is_noop",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"delete","name":"zz"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"image":"a:1","name":"a"},{"image":"b:1","name":"b"}]}}}}"#,
        ),
        (
            "container_delete_then_readd",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"delete","name":"a"},{"image":"fresh","name":"a"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"image":"fresh","name":"a"},{"image":"b:1","name":"b"}]}}}}"#,
        ),
        (
            "container_list_patch_replace",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"replace"},{"image":"z","name":"z"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"image":"z","name":"z"}]}}}}"#,
        ),
        (
            "new_container_appended_verbatim",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"containers":[{"env":[{"$patch":"delete","name":"E"}],"image":null,"name":"n"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"env":[{"$patch":"delete","name":"E"}],"image":null,"name":"n"},{"image":"a:1","name":"a"},{"image":"b:1","name":"b"}]}}}}"#,
        ),
        (
            "container_field_null_deletes",
            "Deployment",
            NESTED,
            r#"{"spec":{"template":{"spec":{"containers":[{"env":null,"name":"a","ports":null}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"image":"a:1","name":"a","volumeMounts":[{"mountPath":"/v1","name":"v1"}]}],"tolerations":[{"key":"k1"}],"volumes":[{"configMap":{"name":"cm"},"name":"v1"},{"emptyDir":{},"name":"v2"}]}}}}"#,
        ),
        (
            "containers_null_deletes_list",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"containers":null}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{}}}}"#,
        ),
        (
            "containers_empty_patch_list",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"containers":[]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"image":"a:1","name":"a"},{"image":"b:1","name":"b"}]}}}}"#,
        ),
        (
            "apply_image_change",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"b"}],"containers":[{"image":"a:2","name":"a"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"image":"a:2","name":"a"},{"image":"b:1","name":"b"}]}}}}"#,
        ),
        (
            "apply_reorder_only",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"b"},{"name":"a"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"image":"b:1","name":"b"},{"image":"a:1","name":"a"}]}}}}"#,
        ),
        (
            "apply_delete_and_add",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"c"}],"containers":[{"$patch":"delete","name":"b"},{"image":"c:1","name":"c"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"image":"a:1","name":"a"},{"image":"c:1","name":"c"}]}}}}"#,
        ),
        (
            "apply_server_only_item_kept",
            "Deployment",
            FOUR,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"c"},{"name":"a"},{"name":"b"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"image":"c:1","name":"c"},{"image":"a:1","name":"a"},{"image":"b:1","name":"b"},{"image":"x:1","name":"x"}]}}}}"#,
        ),
        (
            "apply_delete_add_with_server_only_go_aliasing",
            "Deployment",
            FOUR,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"c"},{"name":"d"}],"containers":[{"$patch":"delete","name":"b"},{"image":"d:1","name":"d"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"image":"a:1","name":"a"},{"image":"c:1","name":"c"},{"image":"x:1","name":"x"},{"image":"d:1","name":"d"}]}}}}"#,
        ),
        (
            "seo_empty_list_new_item_goes_last",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[],"containers":[{"image":"n","name":"new"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"image":"a:1","name":"a"},{"image":"b:1","name":"b"},{"image":"n","name":"new"}]}}}}"#,
        ),
        (
            "seo_list_absent_in_original",
            "Job",
            JOB,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/volumes":[{"name":"v"}],"volumes":[{"emptyDir":{},"name":"v","x":null}]}}}}"#,
            r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{"template":{"spec":{"containers":[{"image":"busybox","name":"main"}],"volumes":[{"emptyDir":{},"name":"v","x":null}]}}},"status":{"conditions":[{"status":"True","type":"Complete"}]}}"#,
        ),
        (
            "apply_nested_env_order",
            "Deployment",
            NESTED,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"}],"containers":[{"$setElementOrder/env":[{"name":"B"},{"name":"C"},{"name":"A"}],"env":[{"name":"C","value":"3"}],"name":"a"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"env":[{"name":"B","value":"2"},{"name":"C","value":"3"},{"name":"A","value":"1"}],"image":"a:1","name":"a","ports":[{"containerPort":80,"name":"http"},{"containerPort":443}],"volumeMounts":[{"mountPath":"/v1","name":"v1"}]}],"tolerations":[{"key":"k1"}],"volumes":[{"configMap":{"name":"cm"},"name":"v1"},{"emptyDir":{},"name":"v2"}]}}}}"#,
        ),
        (
            "apply_nested_env_delete",
            "Deployment",
            NESTED,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"}],"containers":[{"$setElementOrder/env":[{"name":"A"}],"env":[{"$patch":"delete","name":"B"}],"name":"a"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"env":[{"name":"A","value":"1"}],"image":"a:1","name":"a","ports":[{"containerPort":80,"name":"http"},{"containerPort":443}],"volumeMounts":[{"mountPath":"/v1","name":"v1"}]}],"tolerations":[{"key":"k1"}],"volumes":[{"configMap":{"name":"cm"},"name":"v1"},{"emptyDir":{},"name":"v2"}]}}}}"#,
        ),
        (
            "seo_primitive_finalizers",
            "Deployment",
            META,
            r#"{"metadata":{"$setElementOrder/finalizers":["f3","f2","f1"],"finalizers":["f3"]}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"finalizers":["f3","f2","f1"],"labels":{"app":"d","tier":"web"},"name":"d","ownerReferences":[{"name":"o1","uid":"u1"},{"name":"o2","uid":"u2"}]},"spec":{"replicas":2,"strategy":{"rollingUpdate":{"maxSurge":1},"type":"RollingUpdate"}},"status":{"conditions":[{"status":"True","type":"Available"},{"status":"True","type":"Progressing"}]}}"#,
        ),
        (
            "seo_primitive_with_delete",
            "Deployment",
            META,
            r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["f1"],"$setElementOrder/finalizers":["f2","f3"],"finalizers":["f3"]}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"finalizers":["f2","f3"],"labels":{"app":"d","tier":"web"},"name":"d","ownerReferences":[{"name":"o1","uid":"u1"},{"name":"o2","uid":"u2"}]},"spec":{"replicas":2,"strategy":{"rollingUpdate":{"maxSurge":1},"type":"RollingUpdate"}},"status":{"conditions":[{"status":"True","type":"Available"},{"status":"True","type":"Progressing"}]}}"#,
        ),
        (
            "ports_merge_by_container_port",
            "Deployment",
            NESTED,
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"a","ports":[{"containerPort":8080,"name":"alt"},{"containerPort":80,"name":"web"}]}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"a:1","name":"a","ports":[{"containerPort":8080,"name":"alt"},{"containerPort":80,"name":"web"},{"containerPort":443}],"volumeMounts":[{"mountPath":"/v1","name":"v1"}]}],"tolerations":[{"key":"k1"}],"volumes":[{"configMap":{"name":"cm"},"name":"v1"},{"emptyDir":{},"name":"v2"}]}}}}"#,
        ),
        (
            "ports_delete",
            "Deployment",
            NESTED,
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"a","ports":[{"$patch":"delete","containerPort":443}]}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"a:1","name":"a","ports":[{"containerPort":80,"name":"http"}],"volumeMounts":[{"mountPath":"/v1","name":"v1"}]}],"tolerations":[{"key":"k1"}],"volumes":[{"configMap":{"name":"cm"},"name":"v1"},{"emptyDir":{},"name":"v2"}]}}}}"#,
        ),
        (
            "env_merge_delete_and_null",
            "Deployment",
            NESTED,
            r#"{"spec":{"template":{"spec":{"containers":[{"env":[{"name":"B","value":null,"valueFrom":{"fieldRef":{"fieldPath":"x"}}},{"name":"C","value":"3"},{"$patch":"delete","name":"A"}],"name":"a"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"env":[{"name":"B","valueFrom":{"fieldRef":{"fieldPath":"x"}}},{"name":"C","value":"3"}],"image":"a:1","name":"a","ports":[{"containerPort":80,"name":"http"},{"containerPort":443}],"volumeMounts":[{"mountPath":"/v1","name":"v1"}]}],"tolerations":[{"key":"k1"}],"volumes":[{"configMap":{"name":"cm"},"name":"v1"},{"emptyDir":{},"name":"v2"}]}}}}"#,
        ),
        (
            "volume_mounts_merge_by_mount_path",
            "Deployment",
            NESTED,
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"a","volumeMounts":[{"mountPath":"/v1","readOnly":true},{"mountPath":"/v3","name":"v3"}]}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"a:1","name":"a","ports":[{"containerPort":80,"name":"http"},{"containerPort":443}],"volumeMounts":[{"mountPath":"/v1","name":"v1","readOnly":true},{"mountPath":"/v3","name":"v3"}]}],"tolerations":[{"key":"k1"}],"volumes":[{"configMap":{"name":"cm"},"name":"v1"},{"emptyDir":{},"name":"v2"}]}}}}"#,
        ),
        (
            "volumes_merge_by_name",
            "Deployment",
            NESTED,
            r#"{"spec":{"template":{"spec":{"volumes":[{"name":"v3","secret":{"secretName":"x"}},{"configMap":{"name":"cm2"},"name":"v1"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"a:1","name":"a","ports":[{"containerPort":80,"name":"http"},{"containerPort":443}],"volumeMounts":[{"mountPath":"/v1","name":"v1"}]}],"tolerations":[{"key":"k1"}],"volumes":[{"name":"v3","secret":{"secretName":"x"}},{"configMap":{"name":"cm2"},"name":"v1"},{"emptyDir":{},"name":"v2"}]}}}}"#,
        ),
        (
            "tolerations_replace",
            "Deployment",
            NESTED,
            r#"{"spec":{"template":{"spec":{"tolerations":[{"key":"k2","operator":"Exists"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"a:1","name":"a","ports":[{"containerPort":80,"name":"http"},{"containerPort":443}],"volumeMounts":[{"mountPath":"/v1","name":"v1"}]}],"tolerations":[{"key":"k2","operator":"Exists"}],"volumes":[{"configMap":{"name":"cm"},"name":"v1"},{"emptyDir":{},"name":"v2"}]}}}}"#,
        ),
        (
            "tolerations_directives_kept_verbatim",
            "Deployment",
            NESTED,
            r#"{"spec":{"template":{"spec":{"tolerations":[{"$patch":"delete","key":"k1"}]}}}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"a:1","name":"a","ports":[{"containerPort":80,"name":"http"},{"containerPort":443}],"volumeMounts":[{"mountPath":"/v1","name":"v1"}]}],"tolerations":[{"$patch":"delete","key":"k1"}],"volumes":[{"configMap":{"name":"cm"},"name":"v1"},{"emptyDir":{},"name":"v2"}]}}}}"#,
        ),
        (
            "owner_references_merge_by_uid",
            "Deployment",
            META,
            r#"{"metadata":{"ownerReferences":[{"name":"o2b","uid":"u2"},{"name":"o3","uid":"u3"}]}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"finalizers":["f1","f2"],"labels":{"app":"d","tier":"web"},"name":"d","ownerReferences":[{"name":"o1","uid":"u1"},{"name":"o2b","uid":"u2"},{"name":"o3","uid":"u3"}]},"spec":{"replicas":2,"strategy":{"rollingUpdate":{"maxSurge":1},"type":"RollingUpdate"}},"status":{"conditions":[{"status":"True","type":"Available"},{"status":"True","type":"Progressing"}]}}"#,
        ),
        (
            "owner_references_delete",
            "Deployment",
            META,
            r#"{"metadata":{"ownerReferences":[{"$patch":"delete","uid":"u1"}]}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"finalizers":["f1","f2"],"labels":{"app":"d","tier":"web"},"name":"d","ownerReferences":[{"name":"o2","uid":"u2"}]},"spec":{"replicas":2,"strategy":{"rollingUpdate":{"maxSurge":1},"type":"RollingUpdate"}},"status":{"conditions":[{"status":"True","type":"Available"},{"status":"True","type":"Progressing"}]}}"#,
        ),
        (
            "finalizers_union",
            "Deployment",
            META,
            r#"{"metadata":{"finalizers":["f3","f1"]}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"finalizers":["f3","f1","f2"],"labels":{"app":"d","tier":"web"},"name":"d","ownerReferences":[{"name":"o1","uid":"u1"},{"name":"o2","uid":"u2"}]},"spec":{"replicas":2,"strategy":{"rollingUpdate":{"maxSurge":1},"type":"RollingUpdate"}},"status":{"conditions":[{"status":"True","type":"Available"},{"status":"True","type":"Progressing"}]}}"#,
        ),
        (
            "finalizers_delete_from_primitive_list",
            "Deployment",
            META,
            r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["f1","zz"]}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"finalizers":["f2"],"labels":{"app":"d","tier":"web"},"name":"d","ownerReferences":[{"name":"o1","uid":"u1"},{"name":"o2","uid":"u2"}]},"spec":{"replicas":2,"strategy":{"rollingUpdate":{"maxSurge":1},"type":"RollingUpdate"}},"status":{"conditions":[{"status":"True","type":"Available"},{"status":"True","type":"Progressing"}]}}"#,
        ),
        (
            "finalizers_delete_and_add",
            "Deployment",
            META,
            r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["f1"],"finalizers":["f9"]}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"finalizers":["f9","f2"],"labels":{"app":"d","tier":"web"},"name":"d","ownerReferences":[{"name":"o1","uid":"u1"},{"name":"o2","uid":"u2"}]},"spec":{"replicas":2,"strategy":{"rollingUpdate":{"maxSurge":1},"type":"RollingUpdate"}},"status":{"conditions":[{"status":"True","type":"Available"},{"status":"True","type":"Progressing"}]}}"#,
        ),
        (
            "finalizers_delete_on_absent_is_noop",
            "ConfigMap",
            CM,
            r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["f1"]}}"#,
            r#"{"apiVersion":"v1","data":{"a":"1","b":"2"},"kind":"ConfigMap","metadata":{"name":"cm"}}"#,
        ),
        (
            "finalizers_delete_list_null_deletes_field",
            "Deployment",
            META,
            r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":null}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"labels":{"app":"d","tier":"web"},"name":"d","ownerReferences":[{"name":"o1","uid":"u1"},{"name":"o2","uid":"u2"}]},"spec":{"replicas":2,"strategy":{"rollingUpdate":{"maxSurge":1},"type":"RollingUpdate"}},"status":{"conditions":[{"status":"True","type":"Available"},{"status":"True","type":"Progressing"}]}}"#,
        ),
        (
            "status_conditions_merge_by_type",
            "Deployment",
            META,
            r#"{"status":{"conditions":[{"status":"False","type":"Progressing"},{"status":"True","type":"New"}]}}"#,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"finalizers":["f1","f2"],"labels":{"app":"d","tier":"web"},"name":"d","ownerReferences":[{"name":"o1","uid":"u1"},{"name":"o2","uid":"u2"}]},"spec":{"replicas":2,"strategy":{"rollingUpdate":{"maxSurge":1},"type":"RollingUpdate"}},"status":{"conditions":[{"status":"True","type":"Available"},{"status":"False","type":"Progressing"},{"status":"True","type":"New"}]}}"#,
        ),
        (
            "job_template_containers",
            "Job",
            JOB,
            r#"{"spec":{"template":{"spec":{"containers":[{"args":["x"],"name":"main"},{"image":"s","name":"side"}]}}}}"#,
            r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{"template":{"spec":{"containers":[{"args":["x"],"image":"busybox","name":"main"},{"image":"s","name":"side"}]}}},"status":{"conditions":[{"status":"True","type":"Complete"}]}}"#,
        ),
        (
            "job_status_conditions",
            "Job",
            JOB,
            r#"{"status":{"conditions":[{"status":"True","type":"Failed"}]}}"#,
            r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{"template":{"spec":{"containers":[{"image":"busybox","name":"main"}]}}},"status":{"conditions":[{"status":"True","type":"Failed"},{"status":"True","type":"Complete"}]}}"#,
        ),
        (
            "pod_init_containers",
            "Pod",
            POD,
            r#"{"spec":{"initContainers":[{"image":"i2","name":"i2"}]}}"#,
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"image":"a","name":"a"}],"hostAliases":[{"hostnames":["h"],"ip":"10.0.0.1"}],"initContainers":[{"image":"i2","name":"i2"},{"image":"i","name":"i"}],"schedulingGates":[{"name":"g1"},{"name":"g2"}]},"status":{"conditions":[{"status":"True","type":"Ready"}],"podIPs":[{"ip":"10.1.0.1"}]}}"#,
        ),
        (
            "pod_ephemeral_containers",
            "Pod",
            POD,
            r#"{"spec":{"ephemeralContainers":[{"image":"busybox","name":"dbg"}]}}"#,
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"image":"a","name":"a"}],"ephemeralContainers":[{"image":"busybox","name":"dbg"}],"hostAliases":[{"hostnames":["h"],"ip":"10.0.0.1"}],"initContainers":[{"image":"i","name":"i"}],"schedulingGates":[{"name":"g1"},{"name":"g2"}]},"status":{"conditions":[{"status":"True","type":"Ready"}],"podIPs":[{"ip":"10.1.0.1"}]}}"#,
        ),
        (
            "pod_scheduling_gate_removed",
            "Pod",
            POD,
            r#"{"spec":{"schedulingGates":[{"$patch":"delete","name":"g1"}]}}"#,
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"image":"a","name":"a"}],"hostAliases":[{"hostnames":["h"],"ip":"10.0.0.1"}],"initContainers":[{"image":"i","name":"i"}],"schedulingGates":[{"name":"g2"}]},"status":{"conditions":[{"status":"True","type":"Ready"}],"podIPs":[{"ip":"10.1.0.1"}]}}"#,
        ),
        (
            "pod_host_aliases_by_ip",
            "Pod",
            POD,
            r#"{"spec":{"hostAliases":[{"hostnames":["h2"],"ip":"10.0.0.1"},{"hostnames":["h3"],"ip":"10.0.0.2"}]}}"#,
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"image":"a","name":"a"}],"hostAliases":[{"hostnames":["h2"],"ip":"10.0.0.1"},{"hostnames":["h3"],"ip":"10.0.0.2"}],"initContainers":[{"image":"i","name":"i"}],"schedulingGates":[{"name":"g1"},{"name":"g2"}]},"status":{"conditions":[{"status":"True","type":"Ready"}],"podIPs":[{"ip":"10.1.0.1"}]}}"#,
        ),
        (
            "pod_status_conditions_and_ips",
            "Pod",
            POD,
            r#"{"status":{"conditions":[{"status":"False","type":"Ready"},{"status":"True","type":"Initialized"}],"podIPs":[{"ip":"fd00::1"}]}}"#,
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"image":"a","name":"a"}],"hostAliases":[{"hostnames":["h"],"ip":"10.0.0.1"}],"initContainers":[{"image":"i","name":"i"}],"schedulingGates":[{"name":"g1"},{"name":"g2"}]},"status":{"conditions":[{"status":"False","type":"Ready"},{"status":"True","type":"Initialized"}],"podIPs":[{"ip":"fd00::1"},{"ip":"10.1.0.1"}]}}"#,
        ),
        (
            "node_pod_cidrs_union",
            "Node",
            NODE,
            r#"{"spec":{"podCIDRs":["10.1.0.0/24","10.0.0.0/24"]}}"#,
            r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"spec":{"podCIDRs":["10.1.0.0/24","10.0.0.0/24","fd00::/64"],"taints":[{"effect":"NoSchedule","key":"t1"}]},"status":{"addresses":[{"address":"1.2.3.4","type":"InternalIP"},{"address":"n","type":"Hostname"}]}}"#,
        ),
        (
            "node_pod_cidrs_delete",
            "Node",
            NODE,
            r#"{"spec":{"$deleteFromPrimitiveList/podCIDRs":["fd00::/64"]}}"#,
            r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"spec":{"podCIDRs":["10.0.0.0/24"],"taints":[{"effect":"NoSchedule","key":"t1"}]},"status":{"addresses":[{"address":"1.2.3.4","type":"InternalIP"},{"address":"n","type":"Hostname"}]}}"#,
        ),
        (
            "node_taints_replace",
            "Node",
            NODE,
            r#"{"spec":{"taints":[{"effect":"NoExecute","key":"t2"}]}}"#,
            r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"spec":{"podCIDRs":["10.0.0.0/24","fd00::/64"],"taints":[{"effect":"NoExecute","key":"t2"}]},"status":{"addresses":[{"address":"1.2.3.4","type":"InternalIP"},{"address":"n","type":"Hostname"}]}}"#,
        ),
        (
            "node_addresses_by_type",
            "Node",
            NODE,
            r#"{"status":{"addresses":[{"address":"5.6.7.8","type":"ExternalIP"},{"address":"n2","type":"Hostname"}]}}"#,
            r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"spec":{"podCIDRs":["10.0.0.0/24","fd00::/64"],"taints":[{"effect":"NoSchedule","key":"t1"}]},"status":{"addresses":[{"address":"5.6.7.8","type":"ExternalIP"},{"address":"1.2.3.4","type":"InternalIP"},{"address":"n2","type":"Hostname"}]}}"#,
        ),
        (
            "service_ports_by_port",
            "Service",
            SVC,
            r#"{"spec":{"ports":[{"port":443,"targetPort":9443},{"name":"alt","port":8080}]}}"#,
            r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"ports":[{"name":"http","port":80,"targetPort":8080},{"name":"https","port":443,"targetPort":9443},{"name":"alt","port":8080}]}}"#,
        ),
        (
            "service_port_delete",
            "Service",
            SVC,
            r#"{"spec":{"ports":[{"$patch":"delete","port":80}]}}"#,
            r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"ports":[{"name":"https","port":443}]}}"#,
        ),
        (
            "namespace_spec_finalizers_replace",
            "Namespace",
            NS,
            r#"{"spec":{"finalizers":["other"]}}"#,
            r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"finalizers":["a"],"name":"ns"},"spec":{"finalizers":["other"]},"status":{"conditions":[{"status":"True","type":"C1"}]}}"#,
        ),
        (
            "namespace_metadata_finalizers_union",
            "Namespace",
            NS,
            r#"{"metadata":{"finalizers":["b"]}}"#,
            r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"finalizers":["b","a"],"name":"ns"},"spec":{"finalizers":["kubernetes"]},"status":{"conditions":[{"status":"True","type":"C1"}]}}"#,
        ),
        (
            "namespace_status_conditions",
            "Namespace",
            NS,
            r#"{"status":{"conditions":[{"status":"False","type":"C2"}]}}"#,
            r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"finalizers":["a"],"name":"ns"},"spec":{"finalizers":["kubernetes"]},"status":{"conditions":[{"status":"False","type":"C2"},{"status":"True","type":"C1"}]}}"#,
        ),
    ];

    /// (name, kind, original, patch, part of our error message); kubectl fails on them too.
    const KUBECTL_ERROR_CASES: &[(&str, &str, &str, &str, &str)] = &[
        (
            "patch_is_a_list",
            "ConfigMap",
            CM,
            r#"[1,2]"#,
            r#"<patch>: expected a JSON object, got list"#,
        ),
        (
            "patch_is_a_string",
            "ConfigMap",
            CM,
            r#""x""#,
            r#"<patch>: expected a JSON object, got string"#,
        ),
        (
            "element_without_merge_key",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"containers":[{"image":"noname"}]}}}}"#,
            r#"spec.template.spec.containers[0]: element does not contain its merge key "name""#,
        ),
        (
            "delete_without_merge_key",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"delete"}]}}}}"#,
            r#"spec.template.spec.containers[0]: element does not contain its merge key "name""#,
        ),
        (
            "list_merge_directive",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"merge"}]}}}}"#,
            r#"spec.template.spec.containers[0]: merging lists cannot yet be specified in the patch"#,
        ),
        (
            "list_unknown_directive",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"bogus","name":"a"}]}}}}"#,
            r#"spec.template.spec.containers[0]: unknown patch type "bogus" in list element"#,
        ),
        (
            "map_unknown_directive",
            "Deployment",
            META,
            r#"{"spec":{"$patch":"bogus"}}"#,
            r#"spec: unknown patch type "bogus" in map"#,
        ),
        (
            "map_merge_directive",
            "Deployment",
            META,
            r#"{"spec":{"$patch":"merge"}}"#,
            r#"spec: unknown patch type "merge" in map"#,
        ),
        (
            "set_element_order_not_a_list",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":{"name":"a"}}}}}"#,
            r#"spec.template.spec.$setElementOrder/containers: expected a JSON list, got object"#,
        ),
        (
            "set_element_order_patch_list_not_a_list",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"}],"containers":{"name":"a"}}}}}"#,
            r#"spec.template.spec.containers: expected a JSON list, got object"#,
        ),
        (
            "set_element_order_mismatch",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"b"},{"name":"a"}],"containers":[{"image":"1","name":"a"},{"image":"2","name":"b"}]}}}}"#,
            r#"spec.template.spec.containers: invalid $setElementOrder: the order of the patch list doesn't match the $setElementOrder list"#,
        ),
        (
            "set_element_order_missing_item",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"}],"containers":[{"image":"1","name":"c"}]}}}}"#,
            r#"spec.template.spec.containers: invalid $setElementOrder: the order of the patch list doesn't match the $setElementOrder list"#,
        ),
        (
            "set_element_order_element_without_key",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"image":"a"}],"containers":[{"image":"1","name":"a"}]}}}}"#,
            r#"spec.template.spec.containers: element does not contain its merge key "name""#,
        ),
        (
            "set_element_order_bad_prefix",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"$setElementOrderX/containers":[{"name":"a"}]}}}}"#,
            r#"spec.template.spec.$setElementOrderX/containers: invalid $setElementOrder: expected $setElementOrder/<field>"#,
        ),
        (
            "set_element_order_on_struct",
            "Deployment",
            META,
            r#"{"spec":{"$setElementOrder/strategy":[]}}"#,
            r#"spec.strategy: expected a JSON list, got object"#,
        ),
        (
            "set_element_order_no_elements",
            "ConfigMap",
            CM,
            r#"{"metadata":{"$setElementOrder/finalizers":["f1"],"finalizers":[]}}"#,
            r#"metadata.finalizers: no elements in any of the given lists"#,
        ),
        (
            "retain_keys_missing_key",
            "Deployment",
            META,
            r#"{"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{"maxSurge":3}}}}"#,
            r#"spec.strategy: invalid $retainKeys: the patch sets "rollingUpdate", which is not in the $retainKeys list"#,
        ),
        (
            "retain_keys_not_a_list",
            "Deployment",
            META,
            r#"{"spec":{"strategy":{"$retainKeys":"type"}}}"#,
            r#"spec.strategy: invalid $retainKeys: expected a list, got string"#,
        ),
        (
            "delete_from_primitive_list_bad_prefix",
            "Deployment",
            META,
            r#"{"metadata":{"$deleteFromPrimitiveListX/finalizers":["f1"]}}"#,
            r#"metadata.$deleteFromPrimitiveListX/finalizers: invalid patch format of primitive list (expected $deleteFromPrimitiveList/<field>)"#,
        ),
        (
            "list_of_lists",
            "Node",
            NODE,
            r#"{"spec":{"podCIDRs":[["a"]]}}"#,
            r#"spec.podCIDRs: list element types are not identical"#,
        ),
        (
            "mixed_element_types",
            "Deployment",
            META,
            r#"{"metadata":{"finalizers":[1]}}"#,
            r#"metadata.finalizers: list element types are not identical"#,
        ),
        (
            "object_among_objects_list",
            "Deployment",
            CTRS,
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"a"},"x"]}}}}"#,
            r#"spec.template.spec.containers: list element types are not identical"#,
        ),
        (
            "null_list_element",
            "Deployment",
            META,
            r#"{"metadata":{"finalizers":["a",null]}}"#,
            r#"metadata.finalizers: list element types are not identical"#,
        ),
        (
            "go_panics_comparing_maps",
            "Deployment",
            NESTED,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/tolerations":[{"key":"k1"}],"tolerations":[{"key":"k1"}]}}}}"#,
            r#"spec.template.spec.tolerations: cannot compare objects or lists (merge keys and primitive list values must be scalars)"#,
        ),
    ];

    #[test]
    fn recorded_kubectl_results() {
        for (name, kind, original, patch, expected) in KUBECTL_CASES {
            let got = apply(kind, &parse(original), &parse(patch))
                .unwrap_or_else(|e| panic!("{name}: unexpected error: {e}"));
            assert_eq!(got, parse(expected), "case {name}");
        }
    }

    #[test]
    fn recorded_kubectl_errors() {
        for (name, kind, original, patch, message) in KUBECTL_ERROR_CASES {
            match apply(kind, &parse(original), &parse(patch)) {
                Ok(v) => panic!("{name}: expected an error, got {v}"),
                Err(e) => assert_eq!(e.to_string(), *message, "case {name}"),
            }
        }
    }

    fn deployment(containers: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
               "spec": {"template": {"spec": {"containers": containers}}}})
    }

    fn containers_patch(containers: Value) -> Value {
        json!({"spec": {"template": {"spec": {"containers": containers}}}})
    }

    #[test]
    fn supported_kinds() {
        for kind in [
            "Namespace",
            "Node",
            "Pod",
            "Service",
            "Endpoints",
            "ConfigMap",
            "Secret",
            "Event",
            "Binding",
            "Deployment",
            "ReplicaSet",
            "Job",
            "Lease",
            "Scale",
        ] {
            assert!(supports(kind), "{kind}");
        }
        for kind in ["PodGroup", "CustomThing", "", "pod", "DeploymentList"] {
            assert!(!supports(kind), "{kind}");
        }
    }

    #[test]
    fn custom_resources_are_unsupported() {
        let obj = json!({"apiVersion": "x/v1", "kind": "PodGroup", "metadata": {"name": "g"}});
        assert_eq!(
            apply("PodGroup", &obj, &json!({"spec": {"minMember": 2}})),
            Err(PatchError::UnsupportedKind("PodGroup".to_string()))
        );
    }

    #[test]
    fn error_paths_name_the_element() {
        let original = deployment(json!([{"name": "a", "image": "a", "env": [{"name": "X"}]}]));
        let err = apply(
            "Deployment",
            &original,
            &containers_patch(json!([{"name": "a", "image": "b"}, {"image": "c"}])),
        )
        .unwrap_err();
        assert_eq!(
            err,
            PatchError::MissingMergeKey {
                path: "spec.template.spec.containers[1]".to_string(),
                key: "name".to_string(),
            }
        );
        assert_eq!(
            err.to_string(),
            "spec.template.spec.containers[1]: element does not contain its merge key \"name\""
        );

        let err = apply(
            "Deployment",
            &original,
            &containers_patch(json!([{"name": "a", "env": [{"value": "x"}]}])),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.template.spec.containers[0].env[0]: element does not contain its merge key \
             \"name\""
        );
    }

    #[test]
    fn patch_must_be_an_object() {
        let original = deployment(json!([]));
        for patch in [json!([1]), json!("x"), json!(3), json!(true)] {
            assert!(matches!(
                apply("Deployment", &original, &patch),
                Err(PatchError::NotAnObject { .. })
            ));
        }
        // `null` is accepted by the Go code and changes nothing.
        assert_eq!(apply("Deployment", &original, &Value::Null), Ok(original));
    }

    /// kubectl's raw SMP would store the non-list value; the API server then fails to
    /// decode the result into the typed object. Here it is an error right away.
    #[test]
    fn non_list_for_a_merge_list_is_an_error() {
        let original = deployment(json!([{"name": "a"}]));
        for value in [json!("x"), json!({"name": "a"}), json!(1)] {
            let err = apply("Deployment", &original, &containers_patch(value)).unwrap_err();
            assert!(
                matches!(&err, PatchError::NotAList { path, .. } if path == "spec.template.spec.containers"),
                "{err}"
            );
        }
        // Also when the original has no such list.
        let err = apply(
            "Pod",
            &json!({"metadata": {"name": "p"}}),
            &json!({"metadata": {"finalizers": "f"}}),
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::NotAList { .. }), "{err}");
        // A deletion list must be a list.
        let err = apply(
            "Pod",
            &json!({"metadata": {"finalizers": ["a"]}}),
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}),
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::NotAList { .. }), "{err}");
    }

    #[test]
    fn non_object_for_a_struct_field_is_an_error() {
        let original = deployment(json!([]));
        for patch in [
            json!({"metadata": "x"}),
            json!({"spec": [1]}),
            json!({"spec": {"template": 3}}),
        ] {
            assert!(
                matches!(
                    apply("Deployment", &original, &patch),
                    Err(PatchError::NotAnObject { .. })
                ),
                "{patch}"
            );
        }
        // Fields outside the type graph keep Go's behaviour: the value is replaced.
        let got = apply("Deployment", &original, &json!({"spec": {"selector": "x"}})).unwrap();
        assert_eq!(got["spec"]["selector"], json!("x"));
    }

    fn nested(depth: usize) -> Value {
        let mut v = json!("leaf");
        // The outermost level is an object.
        for i in (0..depth).rev() {
            v = if i % 2 == 0 {
                json!({"k": v})
            } else {
                json!([v])
            };
        }
        v
    }

    #[test]
    fn nesting_is_bounded() {
        let original = json!({"metadata": {"name": "c"}});
        // 100 levels: fine.
        assert!(apply("ConfigMap", &original, &nested(MAX_DEPTH)).is_ok());
        let err = apply("ConfigMap", &original, &nested(MAX_DEPTH + 1)).unwrap_err();
        assert!(
            matches!(err, PatchError::TooDeep { max: MAX_DEPTH, .. }),
            "{err}"
        );
        let err = apply("ConfigMap", &nested(MAX_DEPTH + 20), &json!({})).unwrap_err();
        assert!(matches!(err, PatchError::TooDeep { .. }), "{err}");
    }

    /// Go visits `finalizers` and `$deleteFromPrimitiveList/finalizers` in random map
    /// order; here keys are visited sorted, so the deletion list comes first (the order
    /// Go mostly takes for kubectl's sorted patches).
    #[test]
    fn overlapping_add_and_delete_is_deterministic() {
        let original = json!({"metadata": {"name": "d", "finalizers": ["f1", "f2"]}});
        let patch = json!({"metadata": {"finalizers": ["f1", "f3"],
                                        "$deleteFromPrimitiveList/finalizers": ["f1"]}});
        let first = apply("Deployment", &original, &patch).unwrap();
        assert_eq!(first["metadata"]["finalizers"], json!(["f1", "f3", "f2"]));
        for _ in 0..10 {
            assert_eq!(apply("Deployment", &original, &patch).unwrap(), first);
        }
    }

    #[test]
    fn original_is_untouched() {
        let original = deployment(json!([{"name": "a", "image": "1"}]));
        let copy = original.clone();
        let _ = apply(
            "Deployment",
            &original,
            &containers_patch(json!([{"name": "a", "$patch": "delete"}])),
        );
        assert_eq!(original, copy);
    }

    #[test]
    fn big_lists_merge_quickly() {
        let n = 3000;
        let original = deployment(Value::Array(
            (0..n)
                .map(|i| json!({"name": format!("c{i}"), "image": "x"}))
                .collect(),
        ));
        let mut spec = Map::new();
        spec.insert(
            "$setElementOrder/containers".to_string(),
            Value::Array(
                (0..n)
                    .rev()
                    .map(|i| json!({"name": format!("c{i}")}))
                    .collect(),
            ),
        );
        spec.insert(
            "containers".to_string(),
            Value::Array(
                (0..n)
                    .rev()
                    .step_by(2)
                    .map(|i| json!({"name": format!("c{i}"), "image": "y"}))
                    .collect(),
            ),
        );
        let patch = json!({"spec": {"template": {"spec": Value::Object(spec)}}});
        let got = apply("Deployment", &original, &patch).unwrap();
        let list = got["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(list.len(), n);
        assert_eq!(
            list[0],
            json!({"name": format!("c{}", n - 1), "image": "y"})
        );
        assert_eq!(list[n - 1], json!({"name": "c0", "image": "x"}));
    }

    #[test]
    fn go_stable_sort_matches_a_stable_sort_for_strict_orders() {
        let mut seed: u64 = 42;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for len in [0, 1, 2, 19, 20, 21, 40, 41, 77, 300] {
            let data: Vec<(usize, usize)> = (0..len).map(|i| (next() % 10, i)).collect();
            let mut ours = data.clone();
            go_stable_sort(&mut ours, |a, b| a.0 < b.0);
            let mut std_sorted = data;
            std_sorted.sort_by_key(|p| p.0);
            assert_eq!(ours, std_sorted, "len {len}");
        }
    }

    /// Random hostile patches (directives everywhere, wrong types, nulls) never panic.
    #[test]
    fn hostile_patches_do_not_panic() {
        let mut seed: u64 = 7;
        let mut rnd = move |n: usize| -> usize {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as usize) % n.max(1)
        };
        const KEYS: &[&str] = &[
            "spec",
            "template",
            "containers",
            "name",
            "env",
            "ports",
            "containerPort",
            "metadata",
            "finalizers",
            "$patch",
            "$retainKeys",
            "$setElementOrder/containers",
            "$setElementOrder/finalizers",
            "$deleteFromPrimitiveList/finalizers",
            "$setElementOrder/env",
            "$deleteFromPrimitiveList/",
            "$setElementOrder/",
            "volumes",
            "status",
            "conditions",
            "type",
        ];
        fn gen(rnd: &mut impl FnMut(usize) -> usize, depth: usize) -> Value {
            match rnd(if depth > 5 { 6 } else { 9 }) {
                0 => Value::Null,
                1 => json!(rnd(3)),
                2 => json!(["a", "b", "delete", "replace", "merge", "name"][rnd(6)]),
                3 => json!(rnd(2) == 0),
                4 => json!(1.5),
                5 => json!(KEYS[rnd(KEYS.len())]),
                6 | 7 => {
                    let mut m = Map::new();
                    for _ in 0..rnd(4) {
                        m.insert(KEYS[rnd(KEYS.len())].to_string(), gen(rnd, depth + 1));
                    }
                    Value::Object(m)
                }
                _ => Value::Array((0..rnd(4)).map(|_| gen(rnd, depth + 1)).collect()),
            }
        }
        let originals = [
            parse(NESTED),
            parse(META),
            parse(POD),
            parse(NODE),
            parse(FOUR),
        ];
        let mut outcomes = [0usize; 2];
        for i in 0..3000 {
            let original = &originals[i % originals.len()];
            let kind = original["kind"].as_str().unwrap_or("Pod");
            let patch = gen(&mut rnd, 0);
            let once = apply(kind, original, &patch);
            assert_eq!(once, apply(kind, original, &patch), "not deterministic");
            outcomes[usize::from(once.is_ok())] += 1;
        }
        assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
    }

    const FAKE_KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- cluster: {server: \"https://127.0.0.1:1\"}
  name: none
contexts:
- context: {cluster: none, user: none}
  name: none
current-context: none
users:
- name: none
  user: {}
";

    /// Re-runs kubectl on every recorded case (kubectl v1.32 on PATH, or `KUBECTL=...`).
    /// kubectl applies the patch locally; its kubeconfig points at a closed loopback port.
    #[test]
    #[ignore = "needs kubectl v1.32; run with `cargo test -- --ignored`"]
    fn differential_against_kubectl() {
        use std::process::Command;
        let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_string());
        let dir = std::env::temp_dir().join(format!("smp-differential-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, FAKE_KUBECONFIG).expect("kubeconfig");
        let run = |original: &str, patch: &str| -> Result<Value, String> {
            let obj = dir.join("object.json");
            let patch_file = dir.join("patch.json");
            std::fs::write(&obj, original).expect("write object");
            std::fs::write(&patch_file, patch).expect("write patch");
            let out = Command::new(&kubectl)
                .env("KUBECONFIG", &kubeconfig)
                .args([
                    "patch",
                    "--local",
                    "--type",
                    "strategic",
                    "-o",
                    "json",
                    "-f",
                ])
                .arg(&obj)
                .arg("--patch-file")
                .arg(&patch_file)
                .output()
                .expect("run kubectl");
            if out.status.success() {
                Ok(serde_json::from_slice(&out.stdout).expect("kubectl output"))
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        };
        let mut failures = Vec::new();
        for (name, kind, original, patch, expected) in KUBECTL_CASES {
            let expected = parse(expected);
            match run(original, patch) {
                Ok(v) if v == expected => {}
                other => failures.push(format!("{name}: kubectl gave {other:?}")),
            }
            if apply(kind, &parse(original), &parse(patch)).as_ref() != Ok(&expected) {
                failures.push(format!("{name}: apply disagrees"));
            }
        }
        for (name, kind, original, patch, _) in KUBECTL_ERROR_CASES {
            if let Ok(v) = run(original, patch) {
                failures.push(format!("{name}: kubectl succeeded with {v}"));
            }
            if apply(kind, &parse(original), &parse(patch)).is_ok() {
                failures.push(format!("{name}: apply succeeded"));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
