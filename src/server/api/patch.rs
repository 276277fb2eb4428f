//! Writes to existing objects: update (PUT), the four patch types (JSON patch, JSON merge
//! patch, strategic merge patch, server-side apply), and the status and scale
//! subresources.
//!
//! Server-side apply is simplified: each field manager has one `managedFields` entry (its
//! last applied configuration's field set, in the `FieldsV1` shape); applying removes the
//! fields the manager applied before and no longer applies, then merges the new
//! configuration as a strategic merge patch. There is no conflict detection between
//! managers (every apply behaves as `--force-conflicts`). Lists of objects are keyed by
//! the first of `name`, `containerPort`, `port`, `mountPath`, `type`, `uid`, `ip`, `key`
//! their elements carry; other lists are atomic.

use super::auth::User;
use super::handlers::{
    check_fields, create, encode, field_validation, get_object, is_dry_run, scale_of, store_error,
    yaml_value, Api, FieldValidation, Target,
};
use super::kinds::{self, ResourceType};
use super::objects::{self, meta, meta_mut, meta_str};
use super::status::ApiError;
use super::strategic;
use crate::server::store::StoreError;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

fn invalid_patch(msg: impl std::fmt::Display) -> ApiError {
    ApiError {
        code: 422,
        reason: "Invalid",
        message: format!("the server rejected our request due to an error in our request: {msg}"),
        details: None,
    }
}

/// Removes what is left of strategic-merge directives after a patch (`$retainKeys`,
/// `$setElementOrder/…` in maps the original lacked, `{"$patch": …}` list elements),
/// which kube-apiserver drops when it decodes into typed objects.
fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(list) => {
            list.retain(|e| !e.as_object().is_some_and(|m| m.contains_key("$patch")));
            list.iter_mut().for_each(strip_directives);
        }
        _ => {}
    }
}

/// Builds the object to store from the stored one and what the client sent (a whole
/// object for the main resource, its status for `status`, a Scale for `scale`).
fn merge_for_write(
    rt: &ResourceType,
    sub: Option<&str>,
    existing: &Value,
    incoming: &Value,
) -> Result<Value, ApiError> {
    let name = meta_str(existing, "name").to_string();
    let mut new = match sub {
        Some("status") => {
            let mut n = existing.clone();
            n["status"] = incoming.get("status").cloned().unwrap_or(Value::Null);
            if n["status"].is_null() {
                n.as_object_mut().map(|m| m.remove("status"));
            }
            n
        }
        Some("scale") => {
            let mut n = existing.clone();
            let replicas = objects::path(incoming, "spec.replicas")
                .cloned()
                .unwrap_or(json!(0));
            if replicas.as_i64().is_none_or(|r| r < 0) {
                return Err(ApiError::invalid(
                    "Scale",
                    &name,
                    &[(
                        "spec.replicas".into(),
                        format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                    )],
                ));
            }
            n["spec"]["replicas"] = replicas;
            n
        }
        _ => {
            let mut n = incoming.clone();
            objects::check_type(rt, &mut n)?;
            let in_name = meta_str(&n, "name");
            if !in_name.is_empty() && in_name != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({in_name}) does not match the name on the URL ({name})"
                )));
            }
            let ns = meta_str(&n, "namespace");
            if rt.namespaced && !ns.is_empty() && ns != meta_str(existing, "namespace") {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            let em = meta(existing).clone();
            let m = meta_mut(&mut n);
            for k in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match em.get(k) {
                    Some(v) => m.insert(k.into(), v.clone()),
                    None => m.remove(k),
                };
            }
            if rt.has_subresource("status") {
                match existing.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        n.as_object_mut().map(|m| m.remove("status"));
                    }
                }
            }
            objects::apply_defaults(rt, &mut n);
            if rt.kind == "Pod" {
                let old = objects::path(existing, "spec.nodeName").and_then(Value::as_str);
                let newer = objects::path(&n, "spec.nodeName").and_then(Value::as_str);
                if old.is_some_and(|o| !o.is_empty()) && old != newer {
                    return Err(ApiError::invalid(
                        rt.kind,
                        &name,
                        &[(
                            "spec.nodeName".into(),
                            "Forbidden: pod updates may not change spec.nodeName".into(),
                        )],
                    ));
                }
            }
            let errs = objects::validate(rt, &n);
            if !errs.is_empty() {
                return Err(ApiError::invalid(rt.kind, &name, &errs));
            }
            n
        }
    };
    if rt.has_generation && existing.get("spec") != new.get("spec") {
        let g = meta(existing)
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        meta_mut(&mut new).insert("generation".into(), json!(g + 1));
    }
    Ok(new)
}

/// Stores `new` over `existing` (at `expected`), deleting it instead if it is being
/// deleted and no finalizer is left.
async fn write_back(
    api: &Api,
    target: &Target,
    new: Value,
    expected: u64,
    dry_run: bool,
) -> Result<Value, StoreError> {
    let rt = target.rt;
    let name = meta_str(&new, "name").to_string();
    let key = rt.key(&target.namespace, &name);
    let finalizers_left = meta(&new)
        .get("finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    let deleting = meta(&new).contains_key("deletionTimestamp");
    let grace = meta(&new)
        .get("deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if dry_run {
        return Ok(new);
    }
    if deleting && !finalizers_left && (rt.kind != "Pod" || grace == 0) {
        let e = api.run(move |s| s.delete(&key, Some(expected))).await?;
        let mut last = new;
        meta_mut(&mut last).insert("resourceVersion".into(), json!(e.mod_revision.to_string()));
        return Ok(last);
    }
    let bytes = encode(&new);
    let e = api
        .run(move |s| s.update(&key, &bytes, Some(expected)))
        .await?;
    let mut out = new;
    meta_mut(&mut out).insert("resourceVersion".into(), json!(e.mod_revision.to_string()));
    Ok(out)
}

/// The Service hook of an update (see `services`): keeps the allocated cluster IP and
/// node ports, allocates what a type change needs. The guard is held until the object
/// is stored.
async fn admit_service<'a>(
    api: &'a Api,
    target: &Target,
    existing: &Value,
    new: &mut Value,
) -> Result<Option<tokio::sync::MutexGuard<'a, ()>>, ApiError> {
    if target.rt.kind != "Service" || target.sub.is_some() {
        return Ok(None);
    }
    let name = meta_str(existing, "name");
    super::handlers::admit_service(api, &target.namespace, name, Some(existing), new)
        .await
        .map(Some)
}

fn expected_rv(v: &Value) -> Result<Option<u64>, ApiError> {
    match meta_str(v, "resourceVersion") {
        "" => Ok(None),
        s => s
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion: {s}"))),
    }
}

/// The stored object's revision; a Conflict if the client named another one.
fn current_revision(
    rt: &ResourceType,
    name: &str,
    existing: &Value,
    explicit: Option<u64>,
) -> Result<u64, ApiError> {
    let current: u64 = meta_str(existing, "resourceVersion").parse().unwrap_or(0);
    match explicit {
        Some(expected) if expected != current => Err(store_error(
            rt,
            name,
            StoreError::Conflict {
                key: String::new(),
                expected,
                actual: current,
            },
        )),
        _ => Ok(current),
    }
}

fn check_uid(rt: &ResourceType, existing: &Value, incoming: &Value) -> Result<(), ApiError> {
    let uid = meta_str(incoming, "uid");
    if !uid.is_empty() && uid != meta_str(existing, "uid") {
        return Err(ApiError::conflict(
            &rt.qualified(),
            meta_str(existing, "name"),
            format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                meta_str(existing, "uid")
            ),
        ));
    }
    Ok(())
}

/// PUT: replaces an object (or its status, or its scale).
pub(crate) async fn update(
    api: &Api,
    user: &User,
    target: &Target,
    body: Value,
    q: &HashMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<Value, ApiError> {
    let rt = target.rt;
    let name = target.name.clone().unwrap_or_default();
    let sub = target.sub.as_deref();
    let fv = field_validation(q)?;
    let dry = is_dry_run(q)?;
    match sub {
        Some("scale") => {
            kinds::scale_unknown_fields(&body)
                .map_err(|e| ApiError::bad_request(format!("Scale cannot be handled: {e}")))?;
        }
        _ => {
            let mut b = body.clone();
            objects::check_type(rt, &mut b)?;
            check_fields(rt, &b, fv, &[], warnings)?;
        }
    }
    let explicit = expected_rv(&body)?;
    for _ in 0..5 {
        let existing = get_object(api, target).await?;
        super::handlers::authorize(user, target, "update", &name, Some(&existing), Some(&body))?;
        check_uid(rt, &existing, &body)?;
        let current = current_revision(rt, &name, &existing, explicit)?;
        let mut new = merge_for_write(rt, sub, &existing, &body)?;
        let _allocated = admit_service(api, target, &existing, &mut new).await?;
        match write_back(api, target, new, current, dry).await {
            Ok(v) if sub == Some("scale") => return Ok(scale_of(&v)),
            Ok(v) => return Ok(v),
            Err(StoreError::Conflict { .. }) if explicit.is_none() => continue,
            Err(e) => return Err(store_error(rt, &name, e)),
        }
    }
    Err(ApiError::conflict(
        &rt.qualified(),
        &name,
        "too many concurrent changes",
    ))
}

/// PATCH: applies a patch of the given content type and writes the result.
pub(crate) async fn patch(
    api: &Api,
    user: &User,
    target: &Target,
    content_type: &str,
    body: &[u8],
    q: &HashMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<(u16, Value), ApiError> {
    let rt = target.rt;
    let name = target.name.clone().unwrap_or_default();
    let sub = target.sub.as_deref();
    let fv = field_validation(q)?;
    let dry = is_dry_run(q)?;
    if content_type == "application/apply-patch+yaml" {
        return apply(api, user, target, body, q, warnings).await;
    }
    let patch_json: Value = match content_type {
        "application/json-patch+json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
        other => {
            return Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other})"
            )))
        }
    };
    let smp_kind = if sub == Some("scale") {
        "Scale"
    } else {
        rt.kind
    };
    if content_type == "application/strategic-merge-patch+json" && !strategic::supports(smp_kind) {
        return Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - strategic merge patch is not supported for {}; use application/merge-patch+json or application/json-patch+json",
            rt.qualified()
        )));
    }
    let explicit = match &patch_json {
        Value::Object(_) => expected_rv(&patch_json)?,
        _ => None,
    };
    for _ in 0..5 {
        let existing = get_object(api, target).await?;
        super::handlers::authorize(user, target, "patch", &name, Some(&existing), None)?;
        let current = current_revision(rt, &name, &existing, explicit)?;
        let base = if sub == Some("scale") {
            scale_of(&existing)
        } else {
            existing.clone()
        };
        let patched = match content_type {
            "application/json-patch+json" => {
                let p: json_patch::Patch =
                    serde_json::from_value(patch_json.clone()).map_err(|e| {
                        ApiError::bad_request(format!("error decoding JSON patch: {e}"))
                    })?;
                let mut doc = base.clone();
                json_patch::patch(&mut doc, &p).map_err(invalid_patch)?;
                doc
            }
            "application/merge-patch+json" => {
                let mut doc = base.clone();
                json_patch::merge(&mut doc, &patch_json);
                doc
            }
            _ => {
                let mut v =
                    strategic::apply(smp_kind, &base, &patch_json).map_err(|e| match e {
                        strategic::PatchError::UnsupportedKind(_) => {
                            ApiError::unsupported_media_type(e.to_string())
                        }
                        other => invalid_patch(other),
                    })?;
                strip_directives(&mut v);
                v
            }
        };
        if sub == Some("scale") {
            let unknown = kinds::scale_unknown_fields(&patched)
                .map_err(|e| ApiError::bad_request(format!("Scale cannot be handled: {e}")))?;
            if fv == FieldValidation::Strict && !unknown.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "strict decoding error: unknown field \"{}\"",
                    unknown[0]
                )));
            }
        } else {
            let tolerated = rt.unknown_fields(&existing).unwrap_or_default();
            check_fields(rt, &patched, fv, &tolerated, warnings)?;
        }
        check_uid(rt, &existing, &patched)?;
        let mut new = merge_for_write(rt, sub, &existing, &patched)?;
        let _allocated = admit_service(api, target, &existing, &mut new).await?;
        match write_back(api, target, new, current, dry).await {
            Ok(v) if sub == Some("scale") => return Ok((200, scale_of(&v))),
            Ok(v) => return Ok((200, v)),
            Err(StoreError::Conflict { .. }) if explicit.is_none() => continue,
            Err(e) => return Err(store_error(rt, &name, e)),
        }
    }
    Err(ApiError::conflict(
        &rt.qualified(),
        &name,
        "too many concurrent changes",
    ))
}

/// The key a list element is identified by in a field set (see the module docs).
fn element_key(list: &[Value]) -> Option<&'static str> {
    const KEYS: &[&str] = &[
        "name",
        "containerPort",
        "port",
        "mountPath",
        "type",
        "uid",
        "ip",
        "key",
    ];
    if list.is_empty() || !list.iter().all(Value::is_object) {
        return None;
    }
    KEYS.iter()
        .copied()
        .find(|k| list.iter().all(|e| e.get(*k).is_some()))
}

/// The `FieldsV1` set of a configuration.
fn fields_of(v: &Value) -> Value {
    let mut out = Map::new();
    if let Value::Object(m) = v {
        for (k, child) in m {
            let inner = match child {
                Value::Object(_) => fields_of(child),
                Value::Array(list) => match element_key(list) {
                    Some(key) => {
                        let mut items = Map::new();
                        for e in list {
                            let id = json!({key: e.get(key)});
                            let mut f = fields_of(e).as_object().cloned().unwrap_or_default();
                            f.insert(".".into(), json!({}));
                            items.insert(format!("k:{id}"), Value::Object(f));
                        }
                        Value::Object(items)
                    }
                    None => json!({}),
                },
                _ => json!({}),
            };
            out.insert(format!("f:{k}"), inner);
        }
    }
    Value::Object(out)
}

/// Removes from `live` what `prev` (a field set) has and `new` has not.
fn remove_dropped(live: &mut Value, prev: &Value, new: &Value) {
    let (Some(prev), Some(live_m)) = (prev.as_object(), live.as_object_mut()) else {
        return;
    };
    let empty = Map::new();
    let new = new.as_object().unwrap_or(&empty);
    for (pk, pv) in prev {
        let Some(field) = pk.strip_prefix("f:") else {
            continue;
        };
        match new.get(pk) {
            None => {
                live_m.remove(field);
            }
            Some(nv) => {
                let Some(child) = live_m.get_mut(field) else {
                    continue;
                };
                match child {
                    Value::Object(_) => remove_dropped(child, pv, nv),
                    Value::Array(list) => {
                        let Some(pm) = pv.as_object() else { continue };
                        let nm = nv.as_object().unwrap_or(&empty);
                        for (ek, ev) in pm {
                            let Some(id) = ek
                                .strip_prefix("k:")
                                .and_then(|j| serde_json::from_str::<Map<String, Value>>(j).ok())
                            else {
                                continue;
                            };
                            let pos = list
                                .iter()
                                .position(|e| id.iter().all(|(k, v)| e.get(k) == Some(v)));
                            let Some(pos) = pos else { continue };
                            match nm.get(ek) {
                                None => {
                                    list.remove(pos);
                                }
                                Some(nev) => remove_dropped(&mut list[pos], ev, nev),
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Server-side apply (`application/apply-patch+yaml`), simplified as the module docs say.
async fn apply(
    api: &Api,
    user: &User,
    target: &Target,
    body: &[u8],
    q: &HashMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<(u16, Value), ApiError> {
    let rt = target.rt;
    let name = target.name.clone().unwrap_or_default();
    if target.sub.is_some() && target.sub.as_deref() != Some("status") {
        return Err(ApiError::unsupported_media_type(
            "apply patches are not supported on this subresource",
        ));
    }
    let manager = q.get("fieldManager").cloned().unwrap_or_default();
    if manager.is_empty() {
        return Err(ApiError::bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"));
    }
    let mut config = yaml_value(body)?;
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "the apply configuration must be an object",
        ));
    }
    for f in ["apiVersion", "kind"] {
        if config
            .get(f)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiError::bad_request(format!("{f} must be set")));
        }
    }
    objects::check_type(rt, &mut config)?;
    let cname = meta_str(&config, "name");
    if !cname.is_empty() && cname != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({cname}) does not match the name on the URL ({name})"
        )));
    }
    meta_mut(&mut config).insert("name".into(), json!(name));
    let mut tracked = config.clone();
    if let Some(m) = tracked.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    let tm = meta_mut(&mut tracked);
    for k in [
        "name",
        "namespace",
        "resourceVersion",
        "managedFields",
        "uid",
    ] {
        tm.remove(k);
    }
    let new_fields = fields_of(&tracked);
    let entry = |fields: &Value| {
        json!({"manager": manager, "operation": "Apply", "apiVersion": rt.api_version(),
            "time": objects::now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": fields})
    };
    let fv = field_validation(q)?;
    let dry = is_dry_run(q)?;
    for _ in 0..5 {
        let existing = match get_object(api, target).await {
            Ok(o) => o,
            Err(e) if e.code == 404 && target.sub.is_none() => {
                super::handlers::authorize(user, target, "create", &name, None, Some(&config))?;
                let mut obj = config.clone();
                meta_mut(&mut obj).insert("managedFields".into(), json!([entry(&new_fields)]));
                let created = create(api, target, &mut obj, q, warnings).await;
                match created {
                    Err(e) if e.code == 409 && e.reason == "AlreadyExists" => continue,
                    other => return other.map(|v| (201, v)),
                }
            }
            Err(e) => return Err(e),
        };
        super::handlers::authorize(user, target, "patch", &name, Some(&existing), Some(&config))?;
        let current: u64 = meta_str(&existing, "resourceVersion").parse().unwrap_or(0);
        let mut managed: Vec<Value> = meta(&existing)
            .get("managedFields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let prev = managed
            .iter()
            .find(|m| {
                m.get("manager") == Some(&json!(manager))
                    && m.get("operation") == Some(&json!("Apply"))
            })
            .and_then(|m| m.get("fieldsV1"))
            .cloned()
            .unwrap_or(json!({}));
        let mut live = existing.clone();
        remove_dropped(&mut live, &prev, &new_fields);
        let mut patch_body = config.clone();
        meta_mut(&mut patch_body).remove("resourceVersion");
        let merged = if strategic::supports(rt.kind) {
            let mut v = strategic::apply(rt.kind, &live, &patch_body).map_err(invalid_patch)?;
            strip_directives(&mut v);
            v
        } else {
            let mut doc = live;
            json_patch::merge(&mut doc, &patch_body);
            doc
        };
        managed.retain(|m| {
            !(m.get("manager") == Some(&json!(manager))
                && m.get("operation") == Some(&json!("Apply")))
        });
        managed.push(entry(&new_fields));
        let mut merged = merged;
        meta_mut(&mut merged).insert("managedFields".into(), json!(managed));
        let tolerated = rt.unknown_fields(&existing).unwrap_or_default();
        check_fields(rt, &merged, fv, &tolerated, warnings)?;
        let mut new = merge_for_write(rt, target.sub.as_deref(), &existing, &merged)?;
        let _allocated = admit_service(api, target, &existing, &mut new).await?;
        match write_back(api, target, new, current, dry).await {
            Ok(v) => return Ok((200, v)),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_error(rt, &name, e)),
        }
    }
    Err(ApiError::conflict(
        &rt.qualified(),
        &name,
        "too many concurrent changes",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_directives_are_stripped() {
        let mut v = json!({"spec": {"$retainKeys": ["a"], "a": 1,
            "tolerations": [{"$patch": "delete", "key": "x"}, {"key": "y"}],
            "$setElementOrder/containers": [{"name": "c"}]}});
        strip_directives(&mut v);
        assert_eq!(v, json!({"spec": {"a": 1, "tolerations": [{"key": "y"}]}}));
    }

    #[test]
    fn field_sets_key_lists_and_removal_follows_them() {
        let prev = json!({"metadata": {"labels": {"a": "1", "b": "2"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "web", "image": "x", "env": [{"name": "A", "value": "1"}]},
                {"name": "side", "image": "y"}]}}}});
        let new = json!({"metadata": {"labels": {"a": "1"}},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "x2"}]}}}});
        let pf = fields_of(&prev);
        let nf = fields_of(&new);
        assert!(pf["f:spec"]["f:template"]["f:spec"]["f:containers"]
            .get("k:{\"name\":\"side\"}")
            .is_some());
        let mut live = prev.clone();
        live["spec"]["paused"] = json!(false); // someone else's field: kept
        remove_dropped(&mut live, &pf, &nf);
        assert_eq!(live["metadata"]["labels"], json!({"a": "1"}));
        assert!(live["spec"].get("replicas").is_none());
        assert_eq!(live["spec"]["paused"], false);
        let cs = live["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 1);
        assert!(cs[0].get("env").is_none());
    }
}
