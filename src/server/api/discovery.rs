//! What clients read before they ask for objects: `/version`, API discovery (aggregated
//! `apidiscovery.k8s.io/v2` and the legacy per-group lists) and a minimal OpenAPI v3.
//!
//! kubectl only takes the aggregated reply with its exact content type; the OpenAPI v3
//! documents carry, per kind, the PATCH and POST operations with their
//! `x-kubernetes-group-version-kind` and a `fieldValidation` parameter, which is what makes
//! kubectl send `fieldValidation=Strict` (no schemas: the server validates).

use super::kinds::{self, ResourceType, RESOURCES, VERBS};
use serde_json::{json, Value};

/// The Kubernetes minor version reported (kubectl's dispatcher picks its 1.32 client).
pub const KUBE_MINOR: &str = "32";

/// The exact content type of an aggregated discovery reply.
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// `GET /version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "gitVersion": format!("v1.{KUBE_MINOR}.4+plimsoll-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
    })
}

/// Whether an `Accept` header asks for aggregated discovery.
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        params.contains(&"g=apidiscovery.k8s.io")
            && params.contains(&"v=v2")
            && params.contains(&"as=APIGroupDiscoveryList")
    })
}

/// A resource served outside the store (by `usage_api` and `tokenreview`), listed in
/// discovery so that clients find it: `kubectl top` looks for `metrics.k8s.io/v1beta1`.
struct ExtraResource {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    verbs: &'static [&'static str],
}

/// metrics.k8s.io as metrics-server serves it; TokenReview as kube-apiserver does.
const EXTRA: &[ExtraResource] = &[
    ExtraResource {
        group: "metrics.k8s.io",
        version: "v1beta1",
        plural: "nodes",
        kind: "NodeMetrics",
        namespaced: false,
        verbs: &["get", "list"],
    },
    ExtraResource {
        group: "metrics.k8s.io",
        version: "v1beta1",
        plural: "pods",
        kind: "PodMetrics",
        namespaced: true,
        verbs: &["get", "list"],
    },
    ExtraResource {
        group: "authentication.k8s.io",
        version: "v1",
        plural: "tokenreviews",
        kind: "TokenReview",
        namespaced: false,
        verbs: &["create"],
    },
];

/// Every group version served: the store's kinds', then the extra ones.
fn all_groups() -> Vec<(&'static str, &'static str)> {
    let mut out = kinds::groups();
    for r in EXTRA {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

fn extra_in<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static ExtraResource> + 'a {
    EXTRA
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

fn subresource_kind(r: &ResourceType, sub: &str) -> (Value, Vec<&'static str>) {
    match sub {
        "scale" => (
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"}),
            vec!["get", "patch", "update"],
        ),
        "binding" => (
            json!({"group": "", "version": "v1", "kind": "Binding"}),
            vec!["create"],
        ),
        "log" => (
            json!({"group": "", "version": "v1", "kind": "Pod"}),
            vec!["get"],
        ),
        _ => (
            json!({"group": r.group, "version": r.version, "kind": r.kind}),
            vec!["get", "patch", "update"],
        ),
    }
}

fn discovery_resource(r: &ResourceType) -> Value {
    let subs: Vec<Value> = r
        .subresources
        .iter()
        .map(|s| {
            let (kind, verbs) = subresource_kind(r, s);
            json!({"subresource": s, "responseKind": kind, "verbs": verbs})
        })
        .collect();
    let mut v = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": VERBS,
    });
    if !r.short_names.is_empty() {
        v["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        v["categories"] = json!(r.categories);
    }
    if !subs.is_empty() {
        v["subresources"] = json!(subs);
    }
    v
}

/// The aggregated discovery document of `/api` (core group) or `/apis` (the others).
pub fn aggregated(core: bool) -> Value {
    let items: Vec<Value> = all_groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(group, version)| {
            let mut resources: Vec<Value> = RESOURCES
                .iter()
                .filter(|r| r.group == group && r.version == version)
                .map(discovery_resource)
                .collect();
            resources.extend(extra_in(group, version).map(|r| {
                json!({
                    "resource": r.plural,
                    "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                    "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                    "singularResource": "",
                    "verbs": r.verbs,
                })
            }));
            let mut metadata = json!({"creationTimestamp": null});
            if !group.is_empty() {
                metadata["name"] = json!(group);
            }
            json!({
                "metadata": metadata,
                "versions": [{"version": version, "resources": resources, "freshness": "Current"}],
            })
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// Legacy `GET /api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// Legacy `GET /apis`.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = all_groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, v)| {
            let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// Legacy `GET /apis/GROUP` (one group).
pub fn api_group(group: &str) -> Option<Value> {
    let (g, v) = all_groups()
        .into_iter()
        .find(|(g, _)| *g == group && !g.is_empty())?;
    let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
    Some(
        json!({"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": [gv.clone()], "preferredVersion": gv}),
    )
}

/// Legacy `GET /api/v1` or `GET /apis/GROUP/VERSION`: the resources of one group version.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut v = json!({
            "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
            "kind": r.kind, "verbs": VERBS,
        });
        if !r.short_names.is_empty() {
            v["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            v["categories"] = json!(r.categories);
        }
        resources.push(v);
        for s in r.subresources {
            let (kind, verbs) = subresource_kind(r, s);
            let mut sv = json!({"name": format!("{}/{s}", r.plural), "singularName": "",
                "namespaced": r.namespaced, "kind": kind["kind"], "verbs": verbs});
            if kind["group"] != json!(r.group) {
                sv["group"] = kind["group"].clone();
                sv["version"] = kind["version"].clone();
            }
            resources.push(sv);
        }
    }
    for r in extra_in(group, version) {
        resources.push(json!({
            "name": r.plural, "singularName": "", "namespaced": r.namespaced,
            "kind": r.kind, "verbs": r.verbs,
        }));
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

/// The OpenAPI v3 path of a group version (`api/v1`, `apis/apps/v1`).
fn openapi_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// FNV-1a of a document, as the `hash` query of its URL.
fn doc_hash(doc: &Value) -> String {
    let bytes = serde_json::to_vec(doc).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

/// `GET /openapi/v3`: the index of per-group documents.
pub fn openapi_index() -> Value {
    let mut paths = serde_json::Map::new();
    for (g, v) in kinds::groups() {
        if let Some(doc) = openapi_group(&openapi_path(g, v)) {
            paths.insert(
                openapi_path(g, v),
                json!({"serverRelativeURL": format!("/openapi/v3/{}?hash={}", openapi_path(g, v), doc_hash(&doc))}),
            );
        }
    }
    json!({"paths": paths})
}

/// `GET /openapi/v3/api/v1` and `/openapi/v3/apis/GROUP/VERSION`: every kind's create and
/// patch operations, with the `fieldValidation` parameter and the kind's
/// `x-kubernetes-group-version-kind`.
pub fn openapi_group(path: &str) -> Option<Value> {
    let (group, version) = match path.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return None,
    };
    let mut paths = serde_json::Map::new();
    let params = json!([
        {"name": "fieldValidation", "in": "query", "description": "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields: Ignore, Warn or Strict.", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
    ]);
    let mut found = false;
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        found = true;
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let base = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let collection = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{base}/{}", r.plural)
        };
        let op = |action: &str| {
            json!({
                "operationId": format!("{action}{}", r.kind),
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            })
        };
        paths.insert(collection.clone(), json!({"post": op("post")}));
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({"patch": op("patch"), "put": op("put")}),
        );
    }
    if !found {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Plimsoll", "version": format!("v1.{KUBE_MINOR}.4")},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_accept_is_recognised() {
        assert!(wants_aggregated("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"));
        assert!(!wants_aggregated("application/json"));
    }

    #[test]
    fn discovery_lists_every_kind() {
        let core = aggregated(true);
        let items = core["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        let res = items[0]["versions"][0]["resources"].as_array().unwrap();
        assert!(res
            .iter()
            .any(|r| r["resource"] == "pods" && r["subresources"].as_array().unwrap().len() == 3));
        let apis = aggregated(false);
        let names: Vec<&str> = apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "apps",
                "batch",
                "coordination.k8s.io",
                "scheduling.k8s.io",
                "scheduling.x-k8s.io",
                "metrics.k8s.io",
                "authentication.k8s.io"
            ]
        );
        let metrics = &apis["items"][5]["versions"][0];
        assert_eq!(metrics["version"], "v1beta1");
        assert_eq!(
            metrics["resources"][1]["responseKind"]["kind"],
            "PodMetrics"
        );
        let list = api_resource_list("metrics.k8s.io", "v1beta1").unwrap();
        assert_eq!(list["resources"][0]["name"], "nodes");
        assert_eq!(list["resources"][0]["verbs"], json!(["get", "list"]));
        assert!(api_group("authentication.k8s.io").is_some());
        assert!(api_group_list()["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "metrics.k8s.io"));
        let list = api_resource_list("apps", "v1").unwrap();
        assert!(list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "deployments/scale" && r["group"] == "autoscaling"));
    }

    #[test]
    fn openapi_index_points_at_group_documents() {
        let index = openapi_index();
        let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="));
        let doc = openapi_group("apis/apps/v1").unwrap();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert_eq!(patch["parameters"][0]["name"], "fieldValidation");
        assert!(openapi_group("apis/nope/v1").is_none());
    }
}
