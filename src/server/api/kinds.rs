//! The kinds the API server serves: where they live (group, version, plural, scope), what
//! discovery says about them, and how a request body is checked against the kind's type.
//!
//! Object types come from k8s-openapi (v1.32); the coscheduling PodGroup, a custom
//! resource, has its own serde type here. A body is decoded into the type and encoded
//! again: a field present in the body but gone after that round trip is a field the kind
//! does not have (an *unknown field*), reported with its JSON path so that
//! `fieldValidation=Strict` can reject it. The raw JSON is what gets stored, so with
//! `Ignore`/`Warn` unknown fields round-trip.

use k8s_openapi::api::{apps, batch, coordination, core, scheduling};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One served resource (a kind under its plural name).
#[derive(Debug)]
pub struct ResourceType {
    /// API group ("" for the core group).
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Plural (the URL segment).
    pub plural: &'static str,
    /// Singular name.
    pub singular: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: &'static [&'static str],
    /// Categories (`all` for `kubectl get all`).
    pub categories: &'static [&'static str],
    /// Subresources served.
    pub subresources: &'static [&'static str],
    /// Whether `metadata.generation` counts spec changes.
    pub has_generation: bool,
    /// Decodes and re-encodes a body through the kind's type.
    round_trip: fn(&Value) -> Result<Value, String>,
}

/// The verbs every served resource supports.
pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceType {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural` or `plural.group`, as Kubernetes names a resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether the subresource is served.
    pub fn has_subresource(&self, sub: &str) -> bool {
        self.subresources.contains(&sub)
    }

    /// Checks `body` against the kind's type: an error if it does not decode (wrong
    /// types, wrong apiVersion/kind), else the JSON paths of the fields the type does not
    /// have.
    pub fn unknown_fields(&self, body: &Value) -> Result<Vec<String>, String> {
        let typed = (self.round_trip)(body)?;
        let mut out = Vec::new();
        let mut path = String::new();
        diff_fields(body, &typed, &mut path, &mut out);
        Ok(out)
    }

    /// The store key prefix of every object of this resource (all namespaces).
    pub fn prefix(&self) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        format!("/registry/{group}/{}/", self.plural)
    }

    /// The store key prefix of the objects in one namespace (or all, if `namespace` is
    /// empty or the resource is cluster-scoped).
    pub fn namespace_prefix(&self, namespace: &str) -> String {
        if self.namespaced && !namespace.is_empty() {
            format!("{}{namespace}/", self.prefix())
        } else {
            self.prefix()
        }
    }

    /// The store key of one object.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("{}{namespace}/{name}", self.prefix())
        } else {
            format!("{}{name}", self.prefix())
        }
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(v: &Value) -> Result<Value, String> {
    let typed: T = T::deserialize(v).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

/// Collects the paths of `raw`'s non-null fields that `typed` lacks.
fn diff_fields(raw: &Value, typed: &Value, path: &mut String, out: &mut Vec<String>) {
    match (raw, typed) {
        (Value::Object(r), Value::Object(t)) => {
            for (k, rv) in r {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                match t.get(k) {
                    Some(tv) => diff_fields(rv, tv, path, out),
                    None if !rv.is_null() => out.push(path.clone()),
                    None => {}
                }
                path.truncate(len);
            }
        }
        (Value::Array(r), Value::Array(t)) => {
            for (i, (rv, tv)) in r.iter().zip(t).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                diff_fields(rv, tv, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// The coscheduling plugin's PodGroup (`scheduling.x-k8s.io/v1alpha1`), as its CRD
/// defines it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodGroup {
    api_version: String,
    kind: String,
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spec: Option<PodGroupSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<PodGroupStatus>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodGroupSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_member: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_resources: Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schedule_timeout_seconds: Option<i32>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodGroupStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    occupied_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    running: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    succeeded: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failed: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schedule_start_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

fn pod_group_round_trip(v: &Value) -> Result<Value, String> {
    let api_version = v.get("apiVersion").and_then(Value::as_str);
    let kind = v.get("kind").and_then(Value::as_str);
    if api_version != Some("scheduling.x-k8s.io/v1alpha1") || kind != Some("PodGroup") {
        return Err(format!(
            "expected apiVersion scheduling.x-k8s.io/v1alpha1 and kind PodGroup, got {} {}",
            api_version.unwrap_or("<none>"),
            kind.unwrap_or("<none>")
        ));
    }
    round_trip::<PodGroup>(v)
}

macro_rules! typed {
    ($t:ty) => {
        round_trip::<$t> as fn(&Value) -> Result<Value, String>
    };
}

/// Every served resource, in discovery order.
pub static RESOURCES: &[ResourceType] = &[
    ResourceType {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        singular: "namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        subresources: &["status"],
        has_generation: false,
        round_trip: typed!(core::v1::Namespace),
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Node",
        plural: "nodes",
        singular: "node",
        namespaced: false,
        short_names: &["no"],
        categories: &[],
        subresources: &["status"],
        has_generation: false,
        round_trip: typed!(core::v1::Node),
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        singular: "pod",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        subresources: &["binding", "status", "log"],
        has_generation: false,
        round_trip: typed!(core::v1::Pod),
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        singular: "service",
        namespaced: true,
        short_names: &["svc"],
        categories: &["all"],
        subresources: &["status"],
        has_generation: false,
        round_trip: typed!(core::v1::Service),
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Endpoints",
        plural: "endpoints",
        singular: "endpoints",
        namespaced: true,
        short_names: &["ep"],
        categories: &[],
        subresources: &[],
        has_generation: false,
        round_trip: typed!(core::v1::Endpoints),
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        singular: "configmap",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        subresources: &[],
        has_generation: false,
        round_trip: typed!(core::v1::ConfigMap),
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        singular: "secret",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[],
        has_generation: false,
        round_trip: typed!(core::v1::Secret),
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Event",
        plural: "events",
        singular: "event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        subresources: &[],
        has_generation: false,
        round_trip: typed!(core::v1::Event),
    },
    ResourceType {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        singular: "deployment",
        namespaced: true,
        short_names: &["deploy"],
        categories: &["all"],
        subresources: &["scale", "status"],
        has_generation: true,
        round_trip: typed!(apps::v1::Deployment),
    },
    ResourceType {
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
        plural: "replicasets",
        singular: "replicaset",
        namespaced: true,
        short_names: &["rs"],
        categories: &["all"],
        subresources: &["scale", "status"],
        has_generation: true,
        round_trip: typed!(apps::v1::ReplicaSet),
    },
    ResourceType {
        group: "batch",
        version: "v1",
        kind: "Job",
        plural: "jobs",
        singular: "job",
        namespaced: true,
        short_names: &[],
        categories: &["all"],
        subresources: &["status"],
        has_generation: true,
        round_trip: typed!(batch::v1::Job),
    },
    ResourceType {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        plural: "leases",
        singular: "lease",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[],
        has_generation: false,
        round_trip: typed!(coordination::v1::Lease),
    },
    ResourceType {
        group: "scheduling.k8s.io",
        version: "v1",
        kind: "PriorityClass",
        plural: "priorityclasses",
        singular: "priorityclass",
        namespaced: false,
        short_names: &["pc"],
        categories: &[],
        subresources: &[],
        has_generation: false,
        round_trip: typed!(scheduling::v1::PriorityClass),
    },
    ResourceType {
        group: "scheduling.x-k8s.io",
        version: "v1alpha1",
        kind: "PodGroup",
        plural: "podgroups",
        singular: "podgroup",
        namespaced: true,
        short_names: &["pg", "pgs"],
        categories: &[],
        subresources: &["status"],
        has_generation: true,
        round_trip: pod_group_round_trip,
    },
];

/// The resource served under `group`/`version` with this plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of an `apiVersion` and `kind`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

/// Every served group with its versions (the core group first, as "").
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// Round trip through the autoscaling/v1 Scale type (the `scale` subresource).
pub fn scale_unknown_fields(body: &Value) -> Result<Vec<String>, String> {
    let typed = round_trip::<k8s_openapi::api::autoscaling::v1::Scale>(body)?;
    let mut out = Vec::new();
    diff_fields(body, &typed, &mut String::new(), &mut out);
    Ok(out)
}

/// Round trip through the v1 Binding type (the `binding` subresource).
pub fn binding_unknown_fields(body: &Value) -> Result<Vec<String>, String> {
    let typed = round_trip::<core::v1::Binding>(body)?;
    let mut out = Vec::new();
    diff_fields(body, &typed, &mut String::new(), &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_found_with_their_paths() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        let body = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "labels": {"x": "y"}, "bogus": 1},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "a"}},
                "template": {"metadata": {"labels": {"app": "a"}},
                    "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy": null},
                                            {"name": "d", "image": "i", "colour": "red"}]}},
                "extra": {"deep": true}}
        });
        let unknown = deploy.unknown_fields(&body).unwrap();
        assert_eq!(
            unknown,
            vec![
                "metadata.bogus",
                "spec.extra",
                "spec.template.spec.containers[1].colour"
            ]
        );
    }

    #[test]
    fn wrong_types_and_kinds_are_errors() {
        let pods = find("", "v1", "pods").unwrap();
        assert!(pods
            .unknown_fields(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": 3}}))
            .is_err());
        assert!(pods
            .unknown_fields(&json!({"apiVersion": "apps/v1", "kind": "Pod", "metadata": {}}))
            .is_err());
        let pg = find("scheduling.x-k8s.io", "v1alpha1", "podgroups").unwrap();
        let ok = json!({"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
            "metadata": {"name": "g"}, "spec": {"minMember": 3, "minResources": {"cpu": "2"}}});
        assert_eq!(pg.unknown_fields(&ok).unwrap(), Vec::<String>::new());
        let bad = json!({"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
            "metadata": {"name": "g"}, "spec": {"minMembers": 3}});
        assert_eq!(pg.unknown_fields(&bad).unwrap(), vec!["spec.minMembers"]);
    }

    #[test]
    fn keys_and_lookups() {
        let pods = find("", "v1", "pods").unwrap();
        assert_eq!(pods.key("default", "p"), "/registry/core/pods/default/p");
        assert_eq!(pods.namespace_prefix(""), "/registry/core/pods/");
        let nodes = by_kind("v1", "Node").unwrap();
        assert_eq!(nodes.key("ignored", "n1"), "/registry/core/nodes/n1");
        assert_eq!(
            by_kind("apps/v1", "Deployment").unwrap().qualified(),
            "deployments.apps"
        );
        assert!(groups().contains(&("batch", "v1")));
    }
}
