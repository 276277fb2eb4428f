//! What the server does to an object besides storing it: names, uids, timestamps,
//! generations, the defaults kubectl and controllers rely on, validation of names and of
//! the fields each kind needs, and the field values that field selectors read.

use super::kinds::ResourceType;
use super::status::ApiError;
use rand::Rng;
use serde_json::{json, Map, Value};

/// Now, as Kubernetes writes `metav1.Time` (seconds, UTC, `Z`).
pub fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `metadata` of an object (an empty map if it has none or it is not an object).
pub fn meta(obj: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    obj.get("metadata")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

/// `metadata`, created if missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    meta(obj).get(field).and_then(Value::as_str).unwrap_or("")
}

/// The value at a dotted path (`spec.nodeName`).
pub fn path<'a>(obj: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(obj, |v, k| v.get(k))
}

/// A generated name: `generateName` plus five characters, as Kubernetes makes them.
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::thread_rng();
    let prefix = if prefix.len() > 58 {
        &prefix[..58]
    } else {
        prefix
    };
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/// Whether `s` is an RFC 1123 label (≤ 63 characters).
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Whether `s` is an RFC 1123 subdomain (≤ 253 characters).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// Whether `s` is a DNS-1035 label (starts with a letter).
pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// Checks an object name for its kind: namespaces are RFC 1123 labels, services DNS-1035
/// labels, everything else RFC 1123 subdomains.
pub fn validate_name(rt: &ResourceType, name: &str) -> Result<(), String> {
    let quoted = format!("Invalid value: \"{name}\": ");
    match rt.kind {
        "Namespace" if !is_dns1123_label(name) => Err(format!("{quoted}{DNS1123_LABEL_MSG}")),
        "Service" if !is_dns1035_label(name) => Err(format!("{quoted}{DNS1035_LABEL_MSG}")),
        "Namespace" | "Service" => Ok(()),
        _ if !is_dns1123_subdomain(name) => Err(format!("{quoted}{DNS1123_SUBDOMAIN_MSG}")),
        _ => Ok(()),
    }
}

fn set_default(obj: &mut Map<String, Value>, key: &str, value: Value) {
    if obj.get(key).is_none_or(Value::is_null) {
        obj.insert(key.to_string(), value);
    }
}

fn obj_at<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    v.get_mut(key).and_then(Value::as_object_mut)
}

/// Defaults of a container (imagePullPolicy from the tag, termination message, protocols).
fn default_container(c: &mut Value) {
    let Some(m) = c.as_object_mut() else { return };
    let image = m.get("image").and_then(Value::as_str).unwrap_or("");
    let tag = image
        .rsplit('/')
        .next()
        .and_then(|last| last.split_once(':'))
        .map(|(_, t)| t);
    let policy = if image.contains('@') || tag.is_some_and(|t| t != "latest") {
        "IfNotPresent"
    } else {
        "Always"
    };
    set_default(m, "imagePullPolicy", json!(policy));
    set_default(m, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(m, "terminationMessagePolicy", json!("File"));
    set_default(m, "resources", json!({}));
    if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
        }
    }
}

/// Defaults of a pod spec.
fn default_pod_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "enableServiceLinks", json!(true));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            cs.iter_mut().for_each(default_container);
        }
    }
}

fn default_template(spec: &mut Map<String, Value>) {
    if let Some(t) = spec.get_mut("template") {
        if let Some(ps) = obj_at(t, "spec") {
            default_pod_spec(ps);
        }
    }
}

/// Applies the kind's defaults (what kube-apiserver's defaulters set and kubectl shows).
pub fn apply_defaults(rt: &ResourceType, obj: &mut Value) {
    match rt.kind {
        "Pod" => {
            if let Some(spec) = obj_at(obj, "spec") {
                default_pod_spec(spec);
            }
        }
        "Deployment" => {
            if let Some(spec) = obj_at(obj, "spec") {
                set_default(spec, "replicas", json!(1));
                set_default(spec, "revisionHistoryLimit", json!(10));
                set_default(spec, "progressDeadlineSeconds", json!(600));
                set_default(
                    spec,
                    "strategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
                );
                default_template(spec);
            }
        }
        "ReplicaSet" => {
            if let Some(spec) = obj_at(obj, "spec") {
                set_default(spec, "replicas", json!(1));
                default_template(spec);
            }
        }
        "Job" => {
            if let Some(spec) = obj_at(obj, "spec") {
                // As kube's SetDefaults_Job: both 1 when neither is set; a Job with only
                // a parallelism keeps no completions (a work queue: done when one pod
                // succeeds and none is active).
                let neither = spec.get("completions").is_none_or(Value::is_null)
                    && spec.get("parallelism").is_none_or(Value::is_null);
                if neither {
                    set_default(spec, "completions", json!(1));
                }
                set_default(spec, "parallelism", json!(1));
                set_default(spec, "backoffLimit", json!(6));
                set_default(spec, "completionMode", json!("NonIndexed"));
                set_default(spec, "suspend", json!(false));
                set_default(spec, "manualSelector", json!(false));
                default_template(spec);
            }
        }
        "Service" => {
            if let Some(spec) = obj_at(obj, "spec") {
                set_default(spec, "type", json!("ClusterIP"));
                set_default(spec, "sessionAffinity", json!("None"));
                if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        set_default(p, "protocol", json!("TCP"));
                        if let Some(port) = p.get("port").cloned() {
                            set_default(p, "targetPort", port);
                        }
                    }
                }
            }
        }
        "Secret" => {
            let m = obj.as_object_mut();
            if let Some(m) = m {
                set_default(m, "type", json!("Opaque"));
                // stringData is write-only: merged into data, base64-encoded.
                if let Some(Value::Object(sd)) = m.remove("stringData") {
                    use base64::Engine;
                    let data = m.entry("data").or_insert_with(|| json!({}));
                    if let Some(d) = data.as_object_mut() {
                        for (k, v) in sd {
                            let s = v.as_str().unwrap_or_default().to_string();
                            d.insert(
                                k,
                                json!(base64::engine::general_purpose::STANDARD.encode(s)),
                            );
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// The status a freshly created object starts with (kinds whose status the server or a
/// controller owns start from an empty one, as kube-apiserver's create strategies do).
pub fn initial_status(rt: &ResourceType, obj: &mut Value) {
    match rt.kind {
        "Pod" => {
            obj["status"] = json!({"phase": "Pending", "qosClass": qos_class(obj)});
        }
        "Namespace" => obj["status"] = json!({"phase": "Active"}),
        "Deployment" | "ReplicaSet" | "Job" | "PodGroup" => obj["status"] = json!({}),
        "Service" => obj["status"] = json!({"loadBalancer": {}}),
        _ => {}
    }
}

/// The pod's QoS class (Guaranteed, Burstable or BestEffort), from its containers'
/// requests and limits.
pub fn qos_class(pod: &Value) -> &'static str {
    let containers = path(pod, "spec.containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        any |= req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty());
        for res in ["cpu", "memory"] {
            let l = lim.and_then(|l| l.get(res));
            let r = req.and_then(|r| r.get(res)).or(l);
            if l.is_none() || r != l {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn labels_match(selector: &Value, labels: Option<&Value>) -> bool {
    let Some(ml) = selector.get("matchLabels").and_then(Value::as_object) else {
        return true;
    };
    ml.iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Checks the fields a kind cannot do without; the errors are `(field, message)`.
pub fn validate(rt: &ResourceType, obj: &Value) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    let containers_at = |prefix: &str, errs: &mut Vec<(String, String)>| {
        let cs = path(obj, &format!("{prefix}.containers")).and_then(Value::as_array);
        match cs {
            None => errs.push((format!("{prefix}.containers"), "Required value".to_string())),
            Some(cs) if cs.is_empty() => {
                errs.push((format!("{prefix}.containers"), "Required value".to_string()))
            }
            Some(cs) => {
                let mut names = std::collections::BTreeSet::new();
                for (i, c) in cs.iter().enumerate() {
                    let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                    if name.is_empty() {
                        errs.push((
                            format!("{prefix}.containers[{i}].name"),
                            "Required value".into(),
                        ));
                    } else if !is_dns1123_label(name) {
                        errs.push((
                            format!("{prefix}.containers[{i}].name"),
                            format!("Invalid value: \"{name}\": {DNS1123_LABEL_MSG}"),
                        ));
                    } else if !names.insert(name) {
                        errs.push((
                            format!("{prefix}.containers[{i}].name"),
                            format!("Duplicate value: \"{name}\""),
                        ));
                    }
                    if c.get("image")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .is_empty()
                    {
                        errs.push((
                            format!("{prefix}.containers[{i}].image"),
                            "Required value".into(),
                        ));
                    }
                }
            }
        }
    };
    match rt.kind {
        "Pod" => containers_at("spec", &mut errs),
        "Deployment" | "ReplicaSet" | "Job" => {
            containers_at("spec.template.spec", &mut errs);
            let selector = path(obj, "spec.selector");
            let labels = path(obj, "spec.template.metadata.labels");
            match selector {
                None if rt.kind != "Job" => {
                    errs.push(("spec.selector".into(), "Required value".into()))
                }
                Some(sel) if !labels_match(sel, labels) => errs.push((
                    "spec.template.metadata.labels".into(),
                    "Invalid value: `selector` does not match template `labels`".into(),
                )),
                _ => {}
            }
            if let Some(r) = path(obj, "spec.replicas").and_then(Value::as_i64) {
                if r < 0 {
                    errs.push((
                        "spec.replicas".into(),
                        format!("Invalid value: {r}: must be greater than or equal to 0"),
                    ));
                }
            }
            if rt.kind == "Job" {
                let rp = path(obj, "spec.template.spec.restartPolicy").and_then(Value::as_str);
                if !matches!(rp, Some("Never" | "OnFailure")) {
                    errs.push((
                        "spec.template.spec.restartPolicy".into(),
                        format!(
                            "Unsupported value: \"{}\": supported values: \"OnFailure\", \"Never\"",
                            rp.unwrap_or("")
                        ),
                    ));
                }
            }
        }
        "Service" => {
            if let Some(ports) = path(obj, "spec.ports").and_then(Value::as_array) {
                for (i, p) in ports.iter().enumerate() {
                    let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                    if !(1..=65535).contains(&port) {
                        errs.push((
                            format!("spec.ports[{i}].port"),
                            format!(
                                "Invalid value: {port}: must be between 1 and 65535, inclusive"
                            ),
                        ));
                    }
                }
            }
        }
        _ => {}
    }
    errs
}

/// Job's generated selector and labels (`batch.kubernetes.io/controller-uid`), as the
/// Job strategy sets them when `manualSelector` is not true.
pub fn job_selector(obj: &mut Value, name: &str, uid: &str) {
    if path(obj, "spec.manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let Some(spec) = obj_at(obj, "spec") else {
        return;
    };
    spec.insert(
        "selector".into(),
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
    );
    let Some(t) = spec.get_mut("template") else {
        return;
    };
    let m = meta_mut(t);
    let labels = m.entry("labels").or_insert_with(|| json!({}));
    if let Some(l) = labels.as_object_mut() {
        for (k, v) in [
            ("batch.kubernetes.io/controller-uid", uid),
            ("controller-uid", uid),
            ("batch.kubernetes.io/job-name", name),
            ("job-name", name),
        ] {
            l.insert(k.into(), json!(v));
        }
    }
}

/// The value of a field a field selector names, for an object of `rt` (None if the kind
/// does not support that field).
pub fn field_value(rt: &ResourceType, obj: &Value, field: &str) -> Option<Option<String>> {
    let s = |v: Option<&Value>| -> Option<String> {
        v.map(|v| match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        })
    };
    match field {
        "metadata.name" | "metadata.namespace" => return Some(s(path(obj, field))),
        _ => {}
    }
    let supported: &[&str] = match rt.kind {
        "Pod" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "Node" => &["spec.unschedulable"],
        "Secret" => &["type"],
        "Namespace" => &["status.phase"],
        "Event" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        "ReplicaSet" => &["status.replicas"],
        "Job" => &["status.successful"],
        _ => &[],
    };
    if !supported.contains(&field) {
        return None;
    }
    if rt.kind == "Event" && field == "source" {
        return Some(s(path(obj, "source.component")));
    }
    Some(s(path(obj, field)).or_else(|| {
        // Booleans and counts absent read as their zero value.
        match field {
            "spec.unschedulable" | "spec.hostNetwork" => Some("false".into()),
            _ => None,
        }
    }))
}

/// Checks `apiVersion` and `kind` of a body against the URL's resource; fills them in if
/// missing.
pub fn check_type(rt: &ResourceType, body: &mut Value) -> Result<(), ApiError> {
    let Some(m) = body.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON or YAML object",
        ));
    };
    let want = rt.api_version();
    match m.get("apiVersion").and_then(Value::as_str) {
        None => {
            m.insert("apiVersion".into(), json!(want));
        }
        Some(v) if v == want => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({want})"
            )))
        }
    }
    match m.get("kind").and_then(Value::as_str) {
        None => {
            m.insert("kind".into(), json!(rt.kind));
        }
        Some(k) if k == rt.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                rt.kind
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::api::kinds::find;

    #[test]
    fn names_are_validated_per_kind() {
        let ns = find("", "v1", "namespaces").unwrap();
        let svc = find("", "v1", "services").unwrap();
        let pods = find("", "v1", "pods").unwrap();
        assert!(validate_name(ns, "team-a").is_ok());
        assert!(validate_name(ns, "a.b").is_err());
        assert!(validate_name(svc, "1web").is_err());
        assert!(validate_name(pods, "web.v1-0").is_ok());
        assert!(validate_name(pods, "Web_1").is_err());
        assert!(validate_name(pods, &"a".repeat(254)).is_err());
        assert!(generate_name("web-").starts_with("web-"));
        assert_eq!(generate_name("x-").len(), 7);
    }

    #[test]
    fn defaults_and_qos() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        let mut d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "reg:5000/x:1.2"}]}}}});
        apply_defaults(deploy, &mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        let cs = &d["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs[0]["imagePullPolicy"], "Always");
        assert_eq!(cs[1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(cs[0]["ports"][0]["protocol"], "TCP");
        let pod = json!({"spec": {"containers": [{"name": "a", "image": "i",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
        assert_eq!(qos_class(&pod), "Guaranteed");
        let pod = json!({"spec": {"containers": [{"name": "a", "image": "i",
            "resources": {"requests": {"cpu": "1"}}}]}});
        assert_eq!(qos_class(&pod), "Burstable");
        assert_eq!(
            qos_class(&json!({"spec": {"containers": [{"name": "a"}]}})),
            "BestEffort"
        );
    }

    #[test]
    fn validation_names_fields() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        let d = json!({"spec": {"selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "y"}}, "spec": {"containers": [{"name": "A"}]}}}});
        let errs = validate(deploy, &d);
        let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.template.spec.containers[0].name",
                "spec.template.spec.containers[0].image",
                "spec.template.metadata.labels"
            ]
        );
    }

    #[test]
    fn field_values() {
        let pods = find("", "v1", "pods").unwrap();
        let p = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        assert_eq!(
            field_value(pods, &p, "spec.nodeName"),
            Some(Some("n1".into()))
        );
        assert_eq!(field_value(pods, &p, "status.podIP"), Some(None));
        assert_eq!(field_value(pods, &p, "spec.bogus"), None);
    }
}
