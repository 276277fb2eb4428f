//! Strict readers for the parts of a pod spec that decide scheduling besides affinity
//! (see `affinity.rs`): resources, ports, tolerations, topology spread. A misspelt key
//! in these parts is an error.
//!
//! (The objects are read from a parsed tree rather than derived serde structs so that
//! every error carries the exact field path.)

use super::affinity::{required_selector, unsupported_if_set};
use super::error::ferr;
use super::value::*;
use crate::model::resources::{EPHEMERAL_STORAGE, NVIDIA_GPU};
use crate::model::{
    HostPort, Quantity, Resources, TaintEffect, Toleration, TolerationOperator,
    TopologySpreadConstraint, WhenUnsatisfiable,
};
use serde_yaml::Value;

/// Fields of ResourceRequirements.
const RESOURCES_FIELDS: &[&str] = &["claims", "limits", "requests"];

/// Reads a resource list (`requests`, `limits`, `overhead`, node `capacity`) into a
/// [`Resources`]. `pods` is accepted only when `allow_pods` (nodes); `nvidia.com/gpu`
/// goes into `extended`.
pub(crate) fn resource_list(v: Option<&Value>, path: &str, allow_pods: bool) -> R<Resources> {
    let mut r = Resources::default();
    let Some(v) = v else { return Ok(r) };
    for (k, q) in map(v, path)?.into_iter().flatten() {
        let name = k
            .as_str()
            .ok_or_else(|| ferr(path, "keys must be strings"))?;
        let p = join(path, name);
        let text = quantity_text(q, &p)?;
        let units = |s: &str| Quantity::parse_units(s).map_err(|e| ferr(&p, e.to_string()));
        match name {
            "cpu" => {
                r.cpu_milli = Quantity::parse_milli(&text).map_err(|e| ferr(&p, e.to_string()))?
            }
            "memory" => r.memory_bytes = units(&text)?,
            EPHEMERAL_STORAGE => r.ephemeral_storage_bytes = units(&text)?,
            "pods" if allow_pods => r.pods = units(&text)?,
            n if n.contains('/')
                || n.starts_with("hugepages-")
                || (allow_pods && n.starts_with("attachable-volumes-")) =>
            {
                let amount = if n.starts_with("hugepages-") {
                    units(&text)?
                } else {
                    whole_units(q, &p)?
                };
                r.extended.insert(n.to_string(), amount);
            }
            n => {
                return Err(ferr(
                    &p,
                    format!(
                        "unknown resource {n:?}; expected cpu, memory, ephemeral-storage{}, \
                         hugepages-<size> or a name with a domain such as {NVIDIA_GPU}",
                        if allow_pods { ", pods" } else { "" }
                    ),
                ))
            }
        }
    }
    Ok(r)
}

/// Field-wise maximum of two resource vectors.
pub(crate) fn max_resources(a: &Resources, b: &Resources) -> Resources {
    let mut out = Resources {
        cpu_milli: a.cpu_milli.max(b.cpu_milli),
        memory_bytes: a.memory_bytes.max(b.memory_bytes),
        pods: a.pods.max(b.pods),
        ephemeral_storage_bytes: a.ephemeral_storage_bytes.max(b.ephemeral_storage_bytes),
        extended: a.extended.clone(),
    };
    for (k, v) in &b.extended {
        let e = out.extended.entry(k.clone()).or_insert(0);
        *e = (*e).max(*v);
    }
    out
}

/// Reads a container's `resources`: requests, with limits standing in for missing ones.
pub(crate) fn container_resources(v: Option<&Value>, path: &str) -> R<Resources> {
    let Some(v) = v else {
        return Ok(Resources::default());
    };
    let m = map(v, path)?;
    check_keys(m, path, RESOURCES_FIELDS)?;
    let mut req = resource_list(get(m, "requests"), &join(path, "requests"), false)?;
    let lim = resource_list(get(m, "limits"), &join(path, "limits"), false)?;
    let names = |r: &Resources| -> Vec<(String, u64)> {
        let mut v = vec![
            ("cpu".to_string(), r.cpu_milli),
            ("memory".to_string(), r.memory_bytes),
            (EPHEMERAL_STORAGE.to_string(), r.ephemeral_storage_bytes),
        ];
        v.extend(r.extended.iter().map(|(k, x)| (k.clone(), *x)));
        v
    };
    let written = |key: &str| {
        get(m, "requests")
            .and_then(Value::as_mapping)
            .is_some_and(|rm| rm.contains_key(key))
    };
    let lim_written = |key: &str| {
        get(m, "limits")
            .and_then(Value::as_mapping)
            .is_some_and(|lm| lm.contains_key(key))
    };
    for (name, limit) in names(&lim) {
        if !lim_written(&name) || written(&name) {
            continue;
        }
        match name.as_str() {
            "cpu" => req.cpu_milli = limit,
            "memory" => req.memory_bytes = limit,
            EPHEMERAL_STORAGE => req.ephemeral_storage_bytes = limit,
            other => {
                req.extended.insert(other.to_string(), limit);
            }
        }
    }
    Ok(req)
}

/// Reads `containers[].ports[]` into host ports. With `hostNetwork`, every container port
/// is a host port (Kubernetes defaults `hostPort` to `containerPort`).
pub(crate) fn host_ports(v: Option<&Value>, path: &str, host_network: bool) -> R<Vec<HostPort>> {
    let mut out = Vec::new();
    for (i, p) in seq(v, path)?.iter().enumerate() {
        let pp = index(path, i);
        let m = map(p, &pp)?;
        check_keys(
            m,
            &pp,
            &["containerPort", "hostIP", "hostPort", "name", "protocol"],
        )?;
        let container = opt_int_in(m, "containerPort", &pp, 1, 65535)?
            .ok_or_else(|| ferr(&join(&pp, "containerPort"), "required"))?;
        let mut host = opt_int_in(m, "hostPort", &pp, 0, 65535)?.unwrap_or(0);
        if host_network && host == 0 {
            host = container;
        }
        let protocol = opt_string(m, "protocol", &pp)?.unwrap_or_else(|| "TCP".into());
        if !["TCP", "UDP", "SCTP"].contains(&protocol.as_str()) {
            return Err(ferr(
                &join(&pp, "protocol"),
                format!("{protocol:?}: expected TCP, UDP or SCTP"),
            ));
        }
        if host > 0 {
            out.push(HostPort {
                port: host as u16,
                protocol,
                host_ip: opt_string(m, "hostIP", &pp)?.unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// Reads `spec.tolerations`. `tolerationSeconds` is validated and ignored (it matters
/// only for eviction, not placement).
pub(crate) fn tolerations(v: Option<&Value>, path: &str) -> R<Vec<Toleration>> {
    let mut out = Vec::new();
    for (i, t) in seq(v, path)?.iter().enumerate() {
        let tp = index(path, i);
        let m = map(t, &tp)?;
        check_keys(
            m,
            &tp,
            &["effect", "key", "operator", "tolerationSeconds", "value"],
        )?;
        let key = opt_string(m, "key", &tp)?.unwrap_or_default();
        let value = opt_string(m, "value", &tp)?.unwrap_or_default();
        let operator = match opt_string(m, "operator", &tp)?.as_deref() {
            None | Some("Equal") => TolerationOperator::Equal,
            Some("Exists") => TolerationOperator::Exists,
            Some(o) => {
                return Err(ferr(
                    &join(&tp, "operator"),
                    format!("invalid operator {o:?}; expected Equal or Exists"),
                ))
            }
        };
        if operator == TolerationOperator::Exists && !value.is_empty() {
            return Err(ferr(
                &join(&tp, "value"),
                "must be empty when operator is Exists",
            ));
        }
        if key.is_empty() && operator != TolerationOperator::Exists {
            return Err(ferr(
                &join(&tp, "operator"),
                "must be Exists when key is empty",
            ));
        }
        let effect = match opt_string(m, "effect", &tp)?.as_deref() {
            None | Some("") => None,
            Some(e) => Some(taint_effect(e, &join(&tp, "effect"))?),
        };
        let secs = opt_int_in(m, "tolerationSeconds", &tp, i64::MIN, i64::MAX)?;
        if secs.is_some() && effect != Some(TaintEffect::NoExecute) {
            return Err(ferr(
                &join(&tp, "tolerationSeconds"),
                "only allowed with effect NoExecute",
            ));
        }
        out.push(Toleration {
            key,
            operator,
            value,
            effect,
        });
    }
    Ok(out)
}

/// A taint effect name.
pub(crate) fn taint_effect(s: &str, path: &str) -> R<TaintEffect> {
    match s {
        "NoSchedule" => Ok(TaintEffect::NoSchedule),
        "PreferNoSchedule" => Ok(TaintEffect::PreferNoSchedule),
        "NoExecute" => Ok(TaintEffect::NoExecute),
        _ => Err(ferr(
            path,
            format!("invalid effect {s:?}; expected NoSchedule, PreferNoSchedule or NoExecute"),
        )),
    }
}

/// Reads `spec.topologySpreadConstraints`. `nodeAffinityPolicy: Honor` and
/// `nodeTaintsPolicy: Ignore` (the defaults) are accepted; other values, `minDomains` and
/// `matchLabelKeys` are not supported.
pub(crate) fn spread(v: Option<&Value>, path: &str) -> R<Vec<TopologySpreadConstraint>> {
    let mut out = Vec::new();
    for (i, c) in seq(v, path)?.iter().enumerate() {
        let cp = index(path, i);
        let m = map(c, &cp)?;
        check_keys(
            m,
            &cp,
            &[
                "labelSelector",
                "matchLabelKeys",
                "maxSkew",
                "minDomains",
                "nodeAffinityPolicy",
                "nodeTaintsPolicy",
                "topologyKey",
                "whenUnsatisfiable",
            ],
        )?;
        unsupported_if_set(m, &cp, &["matchLabelKeys", "minDomains"])?;
        for (k, default) in [
            ("nodeAffinityPolicy", "Honor"),
            ("nodeTaintsPolicy", "Ignore"),
        ] {
            if let Some(p) = opt_string(m, k, &cp)? {
                if p != default {
                    return Err(ferr(
                        &join(&cp, k),
                        format!("only {default:?} (the default) is supported"),
                    ));
                }
            }
        }
        let max_skew = opt_int_in(m, "maxSkew", &cp, 1, i64::from(i32::MAX))?
            .ok_or_else(|| ferr(&join(&cp, "maxSkew"), "required"))?;
        let topology_key = opt_string(m, "topologyKey", &cp)?
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ferr(&join(&cp, "topologyKey"), "required"))?;
        let when_unsatisfiable = match opt_string(m, "whenUnsatisfiable", &cp)?.as_deref() {
            Some("DoNotSchedule") => WhenUnsatisfiable::DoNotSchedule,
            Some("ScheduleAnyway") => WhenUnsatisfiable::ScheduleAnyway,
            Some(o) => {
                return Err(ferr(
                    &join(&cp, "whenUnsatisfiable"),
                    format!("invalid value {o:?}; expected DoNotSchedule or ScheduleAnyway"),
                ))
            }
            None => return Err(ferr(&join(&cp, "whenUnsatisfiable"), "required")),
        };
        out.push(TopologySpreadConstraint {
            max_skew: max_skew as u32,
            topology_key,
            when_unsatisfiable,
            selector: required_selector(m, &cp, "a constraint without one counts no pods")?,
        });
    }
    Ok(out)
}
