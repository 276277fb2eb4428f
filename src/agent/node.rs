//! The agent's Node: registration with capacity detected from the host (or given), its
//! Lease renewed every 10 s, and its status — conditions, addresses, system info,
//! images — written as the kubelet writes them.

use super::{AgentError, Shared};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

/// The kubelet version the agent reports (the API level it speaks).
pub const KUBELET_VERSION: &str = "v1.32.0-plimsoll";

/// What the agent measured of its host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostInfo {
    /// CPUs, in millicores.
    pub cpu_millis: u64,
    /// Memory, in bytes (`MemTotal`).
    pub memory_bytes: u64,
    /// Memory still available, in bytes (`MemAvailable`).
    pub memory_available_bytes: u64,
    /// Size of the file system holding the state directory, in bytes.
    pub disk_bytes: u64,
    /// Free space on it, in bytes (for unprivileged users).
    pub disk_available_bytes: u64,
    /// `uname -r`.
    pub kernel_version: String,
    /// `PRETTY_NAME` of `/etc/os-release`.
    pub os_image: String,
    /// `/etc/machine-id`.
    pub machine_id: String,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// The host's name.
    pub hostname: String,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `(MemTotal, MemAvailable)` in bytes from `/proc/meminfo`.
pub fn meminfo() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0)
            * 1024
    };
    (field("MemTotal:"), field("MemAvailable:"))
}

/// Measures the host (the state directory's file system for disk).
pub fn host_info(state_dir: &Path) -> HostInfo {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let (total, available) = meminfo();
    let (disk, disk_free) = nix::sys::statvfs::statvfs(state_dir)
        .map(|s| {
            let frag = s.fragment_size();
            (s.blocks() * frag, s.blocks_available() * frag)
        })
        .unwrap_or((0, 0));
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let os_image = os
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".to_string());
    HostInfo {
        cpu_millis: cpus * 1000,
        memory_bytes: total,
        memory_available_bytes: available,
        disk_bytes: disk,
        disk_available_bytes: disk_free,
        kernel_version: read_trimmed("/proc/sys/kernel/osrelease"),
        os_image,
        machine_id: read_trimmed("/etc/machine-id"),
        boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
        hostname: read_trimmed("/proc/sys/kernel/hostname"),
    }
}

fn capacity(shared: &Shared, host: &HostInfo) -> Value {
    let c = &shared.config;
    let cpu = c.cpu_millis.unwrap_or(host.cpu_millis);
    let memory = c.memory_bytes.unwrap_or(host.memory_bytes);
    json!({
        "cpu": crate::model::quantity::format_cpu_milli(cpu),
        "memory": memory.to_string(),
        "pods": c.max_pods.to_string(),
        "ephemeral-storage": host.disk_bytes.to_string(),
    })
}

fn condition(kind: &str, on: bool, reason: &str, message: &str, now: &str) -> Value {
    json!({
        "type": kind,
        "status": if on { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
    })
}

/// The Node's conditions now: Ready, MemoryPressure, DiskPressure, PIDPressure.
fn conditions(shared: &Shared, host: &HostInfo, now: &str) -> Vec<Value> {
    let c = &shared.config;
    let memory_low =
        host.memory_available_bytes > 0 && host.memory_available_bytes < c.memory_pressure_bytes;
    let disk_low = host.disk_bytes > 0
        && (host.disk_available_bytes as f64) < c.disk_pressure_fraction * host.disk_bytes as f64;
    vec![
        if memory_low {
            condition(
                "MemoryPressure",
                true,
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
                now,
            )
        } else {
            condition(
                "MemoryPressure",
                false,
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
                now,
            )
        },
        if disk_low {
            condition(
                "DiskPressure",
                true,
                "KubeletHasDiskPressure",
                "kubelet has disk pressure",
                now,
            )
        } else {
            condition(
                "DiskPressure",
                false,
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
                now,
            )
        },
        condition(
            "PIDPressure",
            false,
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            now,
        ),
        condition(
            "Ready",
            true,
            "KubeletReady",
            "kubelet is posting ready status",
            now,
        ),
    ]
}

/// Carries each condition's `lastTransitionTime` over from `old` when its status did not
/// change, as the kubelet does.
fn keep_transitions(mut new: Vec<Value>, old: Option<&Node>) -> Vec<Value> {
    let old = old
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    for c in &mut new {
        let kind = c["type"].as_str().unwrap_or_default().to_string();
        let status = c["status"].as_str().unwrap_or_default().to_string();
        if let Some(prev) = old.iter().find(|o| o.type_ == kind) {
            if prev.status == status {
                if let Some(t) = &prev.last_transition_time {
                    c["lastTransitionTime"] = json!(t.0.to_string());
                }
            }
        }
    }
    new
}

async fn status_body(shared: &Shared, old: Option<&Node>) -> Value {
    let host = host_info(&shared.config.state_dir);
    let now = shared.config.clock.now().to_string();
    let cap = capacity(shared, &host);
    let runtime_version = shared
        .runtime
        .version()
        .await
        .unwrap_or_else(|e| format!("{}://unknown ({e})", shared.runtime.name()));
    let images: Vec<Value> = shared
        .runtime
        .images()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(name, size)| json!({"names": [name], "sizeBytes": size}))
        .collect();
    json!({
        "capacity": cap,
        "allocatable": cap,
        "conditions": keep_transitions(conditions(shared, &host, &now), old),
        "addresses": [
            {"type": "InternalIP", "address": shared.config.address.to_string()},
            {"type": "Hostname", "address": shared.config.node_name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": shared.port}},
        "nodeInfo": {
            "machineID": host.machine_id,
            "systemUUID": host.machine_id,
            "bootID": host.boot_id,
            "kernelVersion": host.kernel_version,
            "osImage": host.os_image,
            "containerRuntimeVersion": runtime_version,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        },
        "images": images,
    })
}

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> AgentError {
    let what = what.into();
    move |source| AgentError::Api { what, source }
}

/// Registers the Node (or takes over the existing one of this name: labels from the
/// configuration are merged in, taints are set only at creation, as the kubelet does),
/// writes its status and its Lease.
pub(crate) async fn register(shared: &Shared) -> Result<(), AgentError> {
    let c = &shared.config;
    let nodes: Api<Node> = Api::all(shared.client.clone());
    let mut labels: serde_json::Map<String, Value> = c
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    labels.insert("kubernetes.io/hostname".into(), json!(c.node_name));
    labels.insert("kubernetes.io/os".into(), json!("linux"));
    labels.insert(
        "kubernetes.io/arch".into(),
        json!(std::env::consts::ARCH
            .replace("x86_64", "amd64")
            .replace("aarch64", "arm64")),
    );
    let taints: Vec<Value> = c
        .taints
        .iter()
        .map(|t| json!({"key": t.key, "value": t.value, "effect": t.effect}))
        .collect();
    let existing = nodes
        .get_opt(&c.node_name)
        .await
        .map_err(api_err(format!("reading node {}", c.node_name)))?;
    if existing.is_none() {
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": c.node_name, "labels": labels},
            "spec": {"taints": taints},
        }))
        .map_err(|e| AgentError::Config(format!("node object: {e}")))?;
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(api_err(format!("registering node {}", c.node_name))(e)),
        }
    } else {
        nodes
            .patch(
                &c.node_name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": labels}})),
            )
            .await
            .map_err(api_err(format!("labelling node {}", c.node_name)))?;
    }
    write_status(shared).await?;
    renew_lease(shared).await
}

/// Writes the Node's status (conditions with a fresh heartbeat).
pub(crate) async fn write_status(shared: &Shared) -> Result<(), AgentError> {
    let name = &shared.config.node_name;
    let nodes: Api<Node> = Api::all(shared.client.clone());
    let old = nodes
        .get_opt(name)
        .await
        .map_err(api_err(format!("reading node {name}")))?;
    let status = status_body(shared, old.as_ref()).await;
    nodes
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .map_err(api_err(format!("writing the status of node {name}")))?;
    Ok(())
}

/// Creates or renews `kube-node-lease/NODE` (held by the node, 40 s).
pub(crate) async fn renew_lease(shared: &Shared) -> Result<(), AgentError> {
    let name = &shared.config.node_name;
    let leases: Api<Lease> = Api::namespaced(
        shared.client.clone(),
        crate::server::api::auth::NODE_LEASE_NAMESPACE,
    );
    let now = shared.config.clock.now().to_string();
    let body = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": crate::server::api::auth::NODE_LEASE_NAMESPACE},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now},
    });
    match leases
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"holderIdentity": name, "renewTime": now}})),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            let lease: Lease = serde_json::from_value(body)
                .map_err(|e| AgentError::Config(format!("lease object: {e}")))?;
            match leases.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                Err(e) => Err(api_err(format!("creating the lease of node {name}"))(e)),
            }
        }
        Err(e) => Err(api_err(format!("renewing the lease of node {name}"))(e)),
    }
}

/// Renews the Lease and rewrites the status until `stop`; failures are logged and
/// retried at the next tick (the control plane marks the node NotReady if they last).
pub(crate) async fn heartbeat(
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), AgentError> {
    let mut lease = tokio::time::interval(shared.config.lease_interval);
    let mut status = tokio::time::interval(shared.config.status_interval);
    lease.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    status.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = super::stopped(&mut stop) => return Ok(()),
            _ = lease.tick() => {
                if let Err(e) = renew_lease(&shared).await {
                    tracing::warn!(error = %e, "lease renewal failed");
                }
            }
            _ = status.tick() => {
                if let Err(e) = write_status(&shared).await {
                    tracing::warn!(error = %e, "node status update failed");
                }
            }
        }
    }
}
