//! A stand-in for the node agent in the control-plane tests and benchmarks: it registers
//! nodes through the API, renews their Leases and Ready condition, and plays the kubelet
//! for pods bound to them — Running and Ready with a pod IP; a container whose command
//! ends in `exit N` terminates with exit code N (so a Job's pods can fail as a failing
//! command would); a pod marked for deletion is removed once "stopped" (grace 0).
//! A node can be paused — no heartbeat, no pod updates — as if its host vanished.
//!
//! It is not the node agent (that runs real containers); it exercises the control plane
//! with the exact objects an agent writes.
#![allow(dead_code)]

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Creates a Ready node with this capacity (CPU in cores, memory in GiB).
pub async fn register_node(client: &kube::Client, name: &str, cpu: u32, mem_gib: u32, pods: u32) {
    register_node_with(client, name, cpu, mem_gib, pods, json!({})).await
}

/// [`register_node`] with extra labels.
pub async fn register_node_with(
    client: &kube::Client,
    name: &str,
    cpu: u32,
    mem_gib: u32,
    pods: u32,
    labels: Value,
) {
    let nodes: Api<Node> = Api::all(client.clone());
    let now = jiff::Timestamp::now().to_string();
    let capacity =
        json!({"cpu": cpu.to_string(), "memory": format!("{mem_gib}Gi"), "pods": pods.to_string()});
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "status": {
            "capacity": capacity, "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                "lastTransitionTime": now}],
        }
    }))
    .unwrap();
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("registering node {name}: {e}"),
    }
    renew_lease(client, name).await;
}

/// Creates or renews `kube-node-lease/<node>`.
pub async fn renew_lease(client: &kube::Client, node: &str) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let patch =
        json!({"spec": {"renewTime": now, "holderIdentity": node, "leaseDurationSeconds": 40}});
    if leases
        .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .is_err()
    {
        let lease: Lease = serde_json::from_value(json!({
            "metadata": {"name": node, "namespace": "kube-node-lease"},
            "spec": {"renewTime": now, "holderIdentity": node, "leaseDurationSeconds": 40}
        }))
        .unwrap();
        let _ = leases.create(&PostParams::default(), &lease).await;
    }
}

/// The simulated kubelets of a set of nodes.
pub struct Kubelets {
    paused: Arc<Mutex<BTreeMap<String, bool>>>,
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Kubelets {
    /// Starts heartbeats (and, with `pods`, pod handling) for `nodes`.
    pub fn start(client: kube::Client, nodes: &[&str], pods: bool) -> Kubelets {
        let paused: BTreeMap<String, bool> = nodes.iter().map(|n| (n.to_string(), false)).collect();
        let paused = Arc::new(Mutex::new(paused));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (paused.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut tick = 0u64;
            while !s.load(Ordering::SeqCst) {
                let active: Vec<String> = p
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(_, paused)| !**paused)
                    .map(|(n, _)| n.clone())
                    .collect();
                if tick % 5 == 0 {
                    for n in &active {
                        renew_lease(&client, n).await;
                    }
                }
                if pods {
                    play_pods(&client, &active).await;
                }
                tick += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Kubelets {
            paused,
            stop,
            task: Some(task),
        }
    }

    /// Adds a node (already registered) to the set.
    pub fn add(&self, node: &str) {
        self.paused.lock().unwrap().insert(node.to_string(), false);
    }

    /// Stops the node's heartbeats and pod handling, as if its host went away.
    pub fn pause(&self, node: &str) {
        self.paused.lock().unwrap().insert(node.to_string(), true);
    }

    /// Resumes them.
    pub fn resume(&self, node: &str) {
        self.paused.lock().unwrap().insert(node.to_string(), false);
    }

    /// Stops every kubelet.
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Kubelets {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// The exit code a container's command asks for (`… exit N` as its last word pair).
fn exit_code(pod: &Pod) -> Option<i32> {
    let c = pod.spec.as_ref()?.containers.first()?;
    let words: Vec<String> = c
        .command
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .flat_map(|w| w.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect();
    let n = words.len();
    (n >= 2 && words[n - 2] == "exit")
        .then(|| words[n - 1].trim_end_matches(';').parse().ok())
        .flatten()
}

async fn play_pods(client: &kube::Client, nodes: &[String]) {
    let all: Api<Pod> = Api::all(client.clone());
    let Ok(list) = all.list(&ListParams::default()).await else {
        return;
    };
    for pod in list.items {
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            continue;
        };
        if !nodes.contains(&node) {
            continue;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        if pod.metadata.deletion_timestamp.is_some() {
            let _ = api
                .delete(&name, &DeleteParams::default().grace_period(0))
                .await;
            continue;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
        if matches!(phase.as_deref(), Some("Running" | "Succeeded" | "Failed")) {
            continue;
        }
        let now = jiff::Timestamp::now().to_string();
        let cname = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let image = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        let ip = format!(
            "10.244.{}.{}",
            name.len() % 250,
            (name.bytes().map(u32::from).sum::<u32>() % 250) + 2
        );
        let status = match exit_code(&pod) {
            Some(code) => json!({
                "phase": if code == 0 { "Succeeded" } else { "Failed" },
                "podIP": ip, "hostIP": "192.168.0.1", "startTime": now,
                "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now}],
                "containerStatuses": [{"name": cname, "image": image, "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" },
                        "startedAt": now, "finishedAt": now}}}],
            }),
            None => json!({
                "phase": "Running", "podIP": ip, "hostIP": "192.168.0.1", "startTime": now,
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now},
                               {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                               {"type": "Initialized", "status": "True", "lastTransitionTime": now}],
                "containerStatuses": [{"name": cname, "image": image, "imageID": "", "ready": true, "restartCount": 0,
                    "started": true, "state": {"running": {"startedAt": now}}}],
            }),
        };
        let _ = api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": status})),
            )
            .await;
    }
}
