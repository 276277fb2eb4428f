//! Pod volumes (`emptyDir`, `configMap`, `secret`) materialised under the pod's
//! directory, and container environments resolved (`value` with `$(VAR)` expansion,
//! `valueFrom` ConfigMap and Secret keys, field and resource references, `envFrom`).
//!
//! ConfigMap and Secret volumes are written when a container starts (not refreshed while
//! it runs) and are mounted read-only, as Kubernetes mounts them. Other volume types are
//! refused with a message naming the volume (the container waits with
//! `CreateContainerConfigError`).

use super::runtime::Mount;
use k8s_openapi::api::core::v1::{ConfigMap, Container, KeyToPath, Pod, Secret};
use kube::api::Api;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Why a container's configuration could not be made (shown in its `waiting.message`,
/// reason `CreateContainerConfigError`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn cfg_err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// The pod's directory: `STATE/pods/<uid>`.
pub fn pod_dir(state_dir: &Path, uid: &str) -> PathBuf {
    state_dir.join("pods").join(uid)
}

/// Where volume `name` of a pod lives on the host.
pub fn volume_dir(state_dir: &Path, uid: &str, name: &str) -> PathBuf {
    pod_dir(state_dir, uid).join("volumes").join(name)
}

async fn get_config_map(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Result<Option<ConfigMap>, ConfigError> {
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(|e| cfg_err(format!("configmap {name:?}: {e}")))
}

async fn get_secret(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Result<Option<Secret>, ConfigError> {
    Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(|e| cfg_err(format!("secret {name:?}: {e}")))
}

fn config_map_data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.iter().flatten() {
        out.insert(k.clone(), v.0.clone());
    }
    out
}

fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in s.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

/// A relative path with no `..`, no root, not empty.
fn safe_relative(path: &str) -> bool {
    let p = Path::new(path);
    !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

fn write_files(
    dir: &Path,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: Option<i32>,
    what: &str,
) -> Result<(), ConfigError> {
    let io = |p: &Path, e: std::io::Error| cfg_err(format!("{what}: {}: {e}", p.display()));
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let files: Vec<(String, &Vec<u8>, Option<i32>)> = match items {
        Some(items) => items
            .iter()
            .map(|it| {
                data.get(&it.key)
                    .map(|v| (it.path.clone(), v, it.mode))
                    .ok_or_else(|| cfg_err(format!("{what}: key {:?} not found", it.key)))
            })
            .collect::<Result<_, _>>()?,
        None => data.iter().map(|(k, v)| (k.clone(), v, None)).collect(),
    };
    for (path, bytes, mode) in files {
        if !safe_relative(&path) {
            return Err(cfg_err(format!(
                "{what}: path {path:?} must be relative without '..'"
            )));
        }
        let file = dir.join(&path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::write(&file, bytes).map_err(|e| io(&file, e))?;
        let mode = mode.or(default_mode).unwrap_or(0o644) as u32 & 0o777;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))
            .map_err(|e| io(&file, e))?;
    }
    Ok(())
}

/// Materialises every volume of `pod` under its directory (idempotent: ConfigMap and
/// Secret contents are rewritten, `emptyDir`s kept).
pub async fn prepare(
    client: &kube::Client,
    state_dir: &Path,
    pod: &Pod,
) -> Result<(), ConfigError> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let Some(spec) = &pod.spec else { return Ok(()) };
    for v in spec.volumes.iter().flatten() {
        let dir = volume_dir(state_dir, uid, &v.name);
        if v.empty_dir.is_some() {
            std::fs::create_dir_all(&dir)
                .map_err(|e| cfg_err(format!("emptyDir {:?}: {}: {e}", v.name, dir.display())))?;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
        } else if let Some(cm) = &v.config_map {
            let optional = cm.optional.unwrap_or(false);
            let data = match get_config_map(client, ns, &cm.name).await? {
                Some(obj) => config_map_data(&obj),
                None if optional => BTreeMap::new(),
                None => return Err(cfg_err(format!("configmap {:?} not found", cm.name))),
            };
            let what = format!("volume {:?} (configmap {:?})", v.name, cm.name);
            write_files(&dir, &data, cm.items.as_ref(), cm.default_mode, &what)?;
        } else if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            let optional = s.optional.unwrap_or(false);
            let data = match get_secret(client, ns, &name).await? {
                Some(obj) => secret_data(&obj),
                None if optional => BTreeMap::new(),
                None => return Err(cfg_err(format!("secret {name:?} not found"))),
            };
            let what = format!("volume {:?} (secret {name:?})", v.name);
            write_files(&dir, &data, s.items.as_ref(), s.default_mode, &what)?;
        } else {
            return Err(cfg_err(format!(
                "volume {:?}: only emptyDir, configMap and secret volumes are supported by this agent",
                v.name
            )));
        }
    }
    Ok(())
}

/// The host mounts of a container's `volumeMounts`.
pub fn mounts(state_dir: &Path, pod: &Pod, c: &Container) -> Result<Vec<Mount>, ConfigError> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let v = volumes
            .iter()
            .find(|v| v.name == m.name)
            .ok_or_else(|| cfg_err(format!("volumeMount {:?}: no volume of that name", m.name)))?;
        if !m.mount_path.starts_with('/') {
            return Err(cfg_err(format!(
                "volumeMount {:?}: mountPath {:?} must be absolute",
                m.name, m.mount_path
            )));
        }
        let mut host = volume_dir(state_dir, uid, &v.name);
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            if !safe_relative(sub) {
                return Err(cfg_err(format!(
                    "volumeMount {:?}: subPath {sub:?} must be relative without '..'",
                    m.name
                )));
            }
            host = host.join(sub);
            if !host.exists() {
                std::fs::create_dir_all(&host)
                    .map_err(|e| cfg_err(format!("subPath {}: {e}", host.display())))?;
            }
        }
        let read_only =
            m.read_only.unwrap_or(false) || v.config_map.is_some() || v.secret.is_some();
        out.push(Mount {
            host_path: host,
            container_path: m.mount_path.clone(),
            read_only,
        });
    }
    Ok(out)
}

/// Expands `$(VAR)` references to variables already defined (`$$` escapes, unknown
/// references are kept as written), as Kubernetes expands env values, command and args.
pub fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn field_ref(pod: &Pod, path: &str, host_ip: &str) -> Result<String, ConfigError> {
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    let lookup = |map: &Option<BTreeMap<String, String>>, key: &str| {
        map.as_ref()
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or_default()
    };
    let bracket = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix("['"))
            .and_then(|r| r.strip_suffix("']"))
            .map(str::to_string)
    };
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.podIP" => host_ip.to_string(),
        _ => {
            if let Some(k) = bracket("metadata.labels") {
                lookup(&m.labels, &k)
            } else if let Some(k) = bracket("metadata.annotations") {
                lookup(&m.annotations, &k)
            } else {
                return Err(cfg_err(format!("fieldRef {path:?} is not supported")));
            }
        }
    })
}

fn resource_ref(
    c: &Container,
    resource: &str,
    divisor: Option<&str>,
) -> Result<String, ConfigError> {
    use crate::model::quantity::Quantity;
    let res = c.resources.as_ref();
    let (map, key) = match resource.split_once('.') {
        Some(("limits", k)) => (res.and_then(|r| r.limits.as_ref()), k),
        Some(("requests", k)) => (res.and_then(|r| r.requests.as_ref()), k),
        _ => {
            return Err(cfg_err(format!(
                "resourceFieldRef {resource:?} is not supported"
            )))
        }
    };
    let Some(q) = map.and_then(|m| m.get(key)) else {
        return Ok("0".into());
    };
    let div = divisor.unwrap_or("1");
    let is_cpu = key == "cpu";
    let (v, d) = if is_cpu {
        (Quantity::parse_milli(&q.0), Quantity::parse_milli(div))
    } else {
        (Quantity::parse_units(&q.0), Quantity::parse_units(div))
    };
    match (v, d) {
        (Ok(v), Ok(d)) if d > 0 => Ok(v.div_ceil(d).to_string()),
        _ => Err(cfg_err(format!(
            "resourceFieldRef {resource:?}: bad quantity or divisor"
        ))),
    }
}

/// The container's environment, resolved in the spec's order (`envFrom` first, then
/// `env`, later ones overriding earlier ones).
pub async fn env(
    client: &kube::Client,
    pod: &Pod,
    c: &Container,
    host_ip: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut set = |vars: &mut BTreeMap<String, String>, k: String, v: String| {
        if !order.contains(&k) {
            order.push(k.clone());
        }
        vars.insert(k, v);
    };
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match get_config_map(client, ns, &r.name).await? {
                Some(cm) => {
                    for (k, v) in config_map_data(&cm) {
                        set(
                            &mut vars,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v).into(),
                        );
                    }
                }
                None if r.optional.unwrap_or(false) => {}
                None => return Err(cfg_err(format!("configmap {:?} not found", r.name))),
            }
        }
        if let Some(r) = &from.secret_ref {
            match get_secret(client, ns, &r.name).await? {
                Some(s) => {
                    for (k, v) in secret_data(&s) {
                        set(
                            &mut vars,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v).into(),
                        );
                    }
                }
                None if r.optional.unwrap_or(false) => {}
                None => return Err(cfg_err(format!("secret {:?} not found", r.name))),
            }
        }
    }
    for e in c.env.iter().flatten() {
        let value = if let Some(from) = &e.value_from {
            if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional.unwrap_or(false);
                match get_config_map(client, ns, &r.name).await? {
                    Some(cm) => match config_map_data(&cm).get(&r.key) {
                        Some(v) => Some(String::from_utf8_lossy(v).into_owned()),
                        None if optional => None,
                        None => {
                            return Err(cfg_err(format!(
                                "couldn't find key {} in ConfigMap {ns}/{}",
                                r.key, r.name
                            )))
                        }
                    },
                    None if optional => None,
                    None => return Err(cfg_err(format!("configmap {:?} not found", r.name))),
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional.unwrap_or(false);
                match get_secret(client, ns, &r.name).await? {
                    Some(s) => match secret_data(&s).get(&r.key) {
                        Some(v) => Some(String::from_utf8_lossy(v).into_owned()),
                        None if optional => None,
                        None => {
                            return Err(cfg_err(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                r.key, r.name
                            )))
                        }
                    },
                    None if optional => None,
                    None => return Err(cfg_err(format!("secret {:?} not found", r.name))),
                }
            } else if let Some(r) = &from.field_ref {
                Some(field_ref(pod, &r.field_path, host_ip)?)
            } else if let Some(r) = &from.resource_field_ref {
                Some(resource_ref(
                    c,
                    &r.resource,
                    r.divisor.as_ref().map(|d| d.0.as_str()),
                )?)
            } else {
                None
            }
        } else {
            Some(expand(e.value.as_deref().unwrap_or_default(), &vars))
        };
        if let Some(v) = value {
            set(&mut vars, e.name.clone(), v);
        }
    }
    Ok(order
        .into_iter()
        .map(|k| {
            let v = vars.get(&k).cloned().unwrap_or_default();
            (k, v)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_kubernetes() {
        let vars: BTreeMap<String, String> =
            [("A".to_string(), "x".to_string())].into_iter().collect();
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &vars), "x-$(B)-$(A)-$");
        assert_eq!(expand("$(A", &vars), "$(A");
    }

    #[test]
    fn relative_paths_only() {
        assert!(safe_relative("a/b"));
        assert!(!safe_relative("../a"));
        assert!(!safe_relative("/a"));
        assert!(!safe_relative(""));
    }
}
