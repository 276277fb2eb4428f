//! The node lifecycle controller, after Kubernetes' `pkg/controller/nodelifecycle` (with
//! its taint-based eviction) and the orphan part of `pkg/controller/podgc`.
//!
//! - A node's heartbeat is the latest of its Lease's `spec.renewTime`
//!   (`kube-node-lease/<node>`), its `Ready` condition's `lastHeartbeatTime` and, for a
//!   node that never reported, its `creationTimestamp`. When it has not changed for
//!   [`NodeLifecycleConfig::node_grace`] (measured from when this controller first saw
//!   it, so a restarted control plane gives every node a full grace period), the node's `Ready`, `MemoryPressure`,
//!   `DiskPressure` and `PIDPressure` conditions become `Unknown` (reason
//!   `NodeStatusUnknown`, "Kubelet stopped posting node status."), a `NodeNotReady` event
//!   is recorded, its pods' `Ready` condition is set `False`, and the taints
//!   `node.kubernetes.io/unreachable:NoExecute` (with `timeAdded`) and `:NoSchedule` are
//!   added. A fresh heartbeat removes them again (the agent sets `Ready` itself). A node
//!   whose agent reports `Ready=False` gets the `node.kubernetes.io/not-ready` taints.
//! - Taint-based eviction: a pod bound to a node with a `NoExecute` taint it does not
//!   tolerate is deleted at once; one tolerating it for `tolerationSeconds` is deleted that
//!   long after the taint's `timeAdded`; a pod without a toleration for `unreachable` or
//!   `not-ready` is treated as tolerating it for [`NodeLifecycleConfig::eviction_timeout`]
//!   (what kube's `DefaultTolerationSeconds` admission adds). Each eviction records a
//!   `TaintManagerEviction` event on the pod.
//! - Pods bound to a node that does not exist are deleted (no grace).
//!
//! All ages are measured on the injected clock. Start it with [`run`].

use super::context::Context;
use super::events::EventType;
use super::runtime::{self, Action, Controller, ObjectKey};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeStatus, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::ResourceExt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Taint of a node whose heartbeat stopped.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// Taint of a node whose agent reports `Ready=False`.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// Namespace of the node Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Message of the conditions set `Unknown`.
pub const UNKNOWN_MESSAGE: &str = "Kubelet stopped posting node status.";
/// Conditions set `Unknown` when the heartbeat stops.
pub const WATCHED_CONDITIONS: [&str; 4] =
    ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// Settings of the node lifecycle controller.
#[derive(Debug, Clone)]
pub struct NodeLifecycleConfig {
    /// How old a heartbeat may be before the node is unreachable (kube: 40 s).
    pub node_grace: Duration,
    /// How long pods without their own toleration stay on an unreachable or not-ready
    /// node (kube's `DefaultTolerationSeconds`: 300 s).
    pub eviction_timeout: Duration,
    /// Concurrent reconciles.
    pub workers: usize,
}

impl Default for NodeLifecycleConfig {
    fn default() -> Self {
        NodeLifecycleConfig {
            node_grace: Duration::from_secs(40),
            eviction_timeout: Duration::from_secs(300),
            workers: 2,
        }
    }
}

/// What can go wrong in a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// An API call failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// The node's latest heartbeat: the Lease's renewal, the `Ready` condition's
/// `lastHeartbeatTime`, or (for a node that never reported) its creation.
pub fn last_heartbeat(node: &Node, lease: Option<&Lease>) -> Option<Timestamp> {
    let renew = lease
        .and_then(|l| l.spec.as_ref()?.renew_time.as_ref())
        .map(|t| t.0);
    let ready = ready_condition(node)
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0);
    let created = node.metadata.creation_timestamp.as_ref().map(|t| t.0);
    [renew, ready, created].into_iter().flatten().max()
}

/// The node's `Ready` condition.
pub fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// Sets the watched conditions `Unknown` (adding `Ready` if missing); true if anything
/// changed.
pub fn mark_unknown(status: &mut NodeStatus, now: &Time) -> bool {
    let conds = status.conditions.get_or_insert_with(Vec::new);
    let mut changed = false;
    for t in WATCHED_CONDITIONS {
        match conds.iter_mut().find(|c| c.type_ == t) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some(UNKNOWN_MESSAGE.into());
                c.last_transition_time = Some(now.clone());
                changed = true;
            }
            None if t == "Ready" => {
                conds.push(NodeCondition {
                    type_: t.into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: None,
                    last_transition_time: Some(now.clone()),
                });
                changed = true;
            }
            None => {}
        }
    }
    changed
}

fn taint(key: &str, effect: &str, now: &Time) -> Taint {
    Taint {
        key: key.into(),
        effect: effect.into(),
        value: None,
        time_added: (effect == "NoExecute").then(|| now.clone()),
    }
}

/// The node's taints after the controller's changes, or `None` if they stay: the
/// `unreachable` pair while the heartbeat is stale, the `not-ready` pair while the agent
/// reports `Ready=False`; existing taints keep their `timeAdded`.
pub fn desired_taints(node: &Node, stale: bool, now: &Time) -> Option<Vec<Taint>> {
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let ready = ready_condition(node).map(|c| c.status.as_str());
    let want_unreachable = stale;
    let want_not_ready = !stale && ready == Some("False");
    let ours = |t: &Taint| {
        (t.key == TAINT_UNREACHABLE || t.key == TAINT_NOT_READY)
            && (t.effect == "NoExecute" || t.effect == "NoSchedule")
    };
    let mut next: Vec<Taint> = current.iter().filter(|t| !ours(t)).cloned().collect();
    for (key, want) in [
        (TAINT_UNREACHABLE, want_unreachable),
        (TAINT_NOT_READY, want_not_ready),
    ] {
        if !want {
            continue;
        }
        for effect in ["NoExecute", "NoSchedule"] {
            let kept = current
                .iter()
                .find(|t| t.key == key && t.effect == effect)
                .cloned();
            next.push(kept.unwrap_or_else(|| taint(key, effect, now)));
        }
    }
    let key = |t: &Taint| (t.key.clone(), t.effect.clone());
    let mut a: Vec<_> = current.iter().map(key).collect();
    let mut b: Vec<_> = next.iter().map(key).collect();
    a.sort();
    b.sort();
    (a != b).then_some(next)
}

/// The toleration tolerates the taint (key, operator `Exists`/`Equal` with value, effect).
pub fn tolerates(tol: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = tol.effect.as_deref().filter(|e| !e.is_empty()) {
        if e != taint.effect {
            return false;
        }
    }
    let key = tol.key.as_deref().unwrap_or("");
    let exists = tol.operator.as_deref() == Some("Exists");
    if key.is_empty() {
        return exists;
    }
    if key != taint.key {
        return false;
    }
    exists || tol.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
}

/// When the pod must leave a node with these taints (only `NoExecute` ones count):
/// `None` if never, else the earliest instant over the taints (`now` or earlier for an
/// untolerated taint).
pub fn eviction_time(
    pod: &Pod,
    taints: &[Taint],
    eviction_timeout: Duration,
    now: Timestamp,
) -> Option<Timestamp> {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut earliest: Option<Timestamp> = None;
    for t in taints.iter().filter(|t| t.effect == "NoExecute") {
        let added = t.time_added.as_ref().map_or(now, |x| x.0);
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|tol| tolerates(tol, t)).collect();
        let seconds: Option<i64> = if matching.is_empty() {
            if t.key == TAINT_UNREACHABLE || t.key == TAINT_NOT_READY {
                Some(eviction_timeout.as_secs() as i64)
            } else {
                Some(0)
            }
        } else if matching.iter().any(|m| m.toleration_seconds.is_none()) {
            None // tolerated forever
        } else {
            matching.iter().filter_map(|m| m.toleration_seconds).min()
        };
        let Some(s) = seconds else { continue };
        let at = if s <= 0 {
            added.min(now)
        } else {
            added
                .checked_add(SignedDuration::from_secs(s))
                .unwrap_or(added)
        };
        earliest = Some(earliest.map_or(at, |e| e.min(at)));
    }
    earliest
}

/// The node lifecycle controller's state.
pub struct NodeLifecycle {
    ctx: Context,
    cfg: NodeLifecycleConfig,
    leases: Store<Lease>,
    pods: Store<Pod>,
    /// Per node, the heartbeat last seen and when this controller first saw it: a
    /// node's age is measured from that observation (kube's `nodeHealthMap` probe
    /// timestamp), so a restarted control plane gives every node a full grace period
    /// instead of declaring all of them dead for the Leases they could not renew while
    /// it was down.
    observed: std::sync::Mutex<std::collections::HashMap<String, (Timestamp, Timestamp)>>,
}

impl NodeLifecycle {
    fn pods_on(&self, node: &str) -> Vec<Arc<Pod>> {
        self.pods
            .state()
            .into_iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
            .collect()
    }

    async fn delete_pod(&self, pod: &Pod, dp: &DeleteParams) -> Result<bool, kube::Error> {
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            &pod.namespace().unwrap_or_default(),
        );
        match api.delete(&pod.name_any(), dp).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets the `Ready` condition of the node's pods `False` (kube's `MarkPodsNotReady`).
    async fn mark_pods_not_ready(&self, pods: &[Arc<Pod>], now: &Time) {
        for pod in pods {
            if !super::job::pod_ready(pod) {
                continue;
            }
            let api: Api<Pod> = Api::namespaced(
                self.ctx.client.clone(),
                &pod.namespace().unwrap_or_default(),
            );
            let mut conds = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            for c in conds.iter_mut().filter(|c| c.type_ == "Ready") {
                c.status = "False".into();
                c.reason = Some("NodeNotReady".into());
                c.last_transition_time = Some(now.clone());
            }
            let patch = serde_json::json!({"status": {"conditions": conds}});
            if let Err(e) = api
                .patch_status(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                tracing::debug!(pod = %pod.name_any(), error = %e, "pod not marked not ready");
            }
        }
    }

    /// One reconcile of the node `key`.
    pub async fn reconcile(&self, key: &ObjectKey) -> Result<Action, NodeError> {
        let nodes: Api<Node> = Api::all(self.ctx.client.clone());
        let name = key.name.as_str();
        let Some(mut node) = nodes.get_opt(name).await? else {
            // Pods bound to a node that does not exist: the pod GC deletes them.
            for pod in self.pods_on(name) {
                if self
                    .delete_pod(&pod, &DeleteParams::default().grace_period(0))
                    .await?
                {
                    tracing::info!(pod = %pod.name_any(), node = %name, "deleted pod of a missing node");
                }
            }
            return Ok(Action::Done);
        };
        let now_ts = self.ctx.clock.now();
        let now = Time(now_ts);
        let lease = self
            .leases
            .get(&ObjectKey::new(Some(LEASE_NAMESPACE), name).to_ref());
        let heartbeat = last_heartbeat(&node, lease.as_deref());
        let age = match heartbeat {
            None => Duration::MAX,
            Some(h) => {
                let mut observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
                let entry = observed.entry(name.to_string()).or_insert((h, now_ts));
                if h > entry.0 {
                    *entry = (h, now_ts);
                }
                // A heartbeat newer than our observation counts from itself.
                self.ctx.clock.since(entry.1.max(h))
            }
        };
        let stale = age > self.cfg.node_grace;
        let pods = self.pods_on(name);
        let mut requeue: Option<Duration> = None;
        if !stale {
            // Look again just after the heartbeat would go stale.
            requeue = Some(self.cfg.node_grace - age + Duration::from_millis(10));
        }

        if stale {
            let mut status = node.status.clone().unwrap_or_default();
            if mark_unknown(&mut status, &now) {
                node.status = Some(status);
                node = nodes
                    .replace_status(name, &PostParams::default(), &node)
                    .await?;
                let msg = format!("Node {name} status is now: NodeNotReady");
                self.ctx
                    .recorder
                    .record(&node, EventType::Normal, "NodeNotReady", &msg)
                    .await;
                self.mark_pods_not_ready(&pods, &now).await;
            }
        }
        if let Some(taints) = desired_taints(&node, stale, &now) {
            node.spec.get_or_insert_with(Default::default).taints = Some(taints);
            node = nodes.replace(name, &PostParams::default(), &node).await?;
        }

        // Taint-based eviction.
        let taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        for pod in &pods {
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("");
            if phase == "Succeeded" || phase == "Failed" {
                continue;
            }
            let Some(at) = eviction_time(pod, &taints, self.cfg.eviction_timeout, now_ts) else {
                continue;
            };
            if at <= now_ts {
                if self.delete_pod(pod, &DeleteParams::default()).await? {
                    let msg = format!(
                        "Marking for deletion Pod {}/{}",
                        pod.namespace().unwrap_or_default(),
                        pod.name_any()
                    );
                    self.ctx
                        .recorder
                        .record(
                            pod.as_ref(),
                            EventType::Normal,
                            "TaintManagerEviction",
                            &msg,
                        )
                        .await;
                }
            } else {
                let wait = Duration::try_from(at.duration_since(now_ts)).unwrap_or(Duration::ZERO);
                requeue = Some(requeue.map_or(wait, |r| r.min(wait)));
            }
        }
        Ok(requeue.map_or(Action::Done, Action::RequeueAfter))
    }
}

/// Runs the node lifecycle controller until `shutdown` completes: watches Nodes, node
/// Leases and pods; a node is reconciled on every change of it, its Lease or a pod bound
/// to it, and again when its heartbeat would go stale or a toleration runs out.
pub async fn run(
    ctx: Context,
    cfg: NodeLifecycleConfig,
    shutdown: impl Future<Output = ()> + Send,
) {
    let client = ctx.client.clone();
    let nodes = runtime::watch(Api::<Node>::all(client.clone()), watcher::Config::default());
    let leases = runtime::watch(
        Api::<Lease>::namespaced(client.clone(), LEASE_NAMESPACE),
        watcher::Config::default(),
    );
    let pods = runtime::watch(Api::<Pod>::all(client), watcher::Config::default());
    let workers = cfg.workers;
    let state = Arc::new(NodeLifecycle {
        ctx: ctx.clone(),
        cfg,
        leases: leases.store.clone(),
        pods: pods.store.clone(),
        observed: Default::default(),
    });
    Controller::<NodeError>::new("nodelifecycle", ctx)
        .watches(nodes, |n| vec![ObjectKey::new(None, &n.name_any())])
        .watches(leases, |l| vec![ObjectKey::new(None, &l.name_any())])
        .watches(pods, |p| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .map(|n| vec![ObjectKey::new(None, n)])
                .unwrap_or_default()
        })
        .workers(workers)
        .run(
            state,
            |key, st| async move { st.reconcile(&key).await },
            shutdown,
        )
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn pod(tols: Vec<Toleration>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                tolerations: Some(tols),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn tol(key: &str, secs: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: secs,
            value: None,
        }
    }

    fn unreachable_at(s: i64) -> Vec<Taint> {
        vec![
            Taint {
                key: TAINT_UNREACHABLE.into(),
                effect: "NoExecute".into(),
                value: None,
                time_added: Some(Time(ts(s))),
            },
            Taint {
                key: TAINT_UNREACHABLE.into(),
                effect: "NoSchedule".into(),
                value: None,
                time_added: None,
            },
        ]
    }

    #[test]
    fn eviction_times() {
        let taints = unreachable_at(1000);
        let to = Duration::from_secs(300);
        // No toleration: the default toleration seconds.
        assert_eq!(
            eviction_time(&pod(vec![]), &taints, to, ts(1001)),
            Some(ts(1300))
        );
        // Own toleration seconds.
        assert_eq!(
            eviction_time(
                &pod(vec![tol(TAINT_UNREACHABLE, Some(2))]),
                &taints,
                to,
                ts(1001)
            ),
            Some(ts(1002))
        );
        // Tolerated forever.
        assert_eq!(
            eviction_time(
                &pod(vec![tol(TAINT_UNREACHABLE, None)]),
                &taints,
                to,
                ts(1001)
            ),
            None
        );
        // Any other untolerated NoExecute taint: now.
        let other = vec![Taint {
            key: "x".into(),
            effect: "NoExecute".into(),
            value: None,
            time_added: Some(Time(ts(1000))),
        }];
        assert!(eviction_time(&pod(vec![]), &other, to, ts(1001)).unwrap() <= ts(1001));
        // NoSchedule only: never.
        assert_eq!(
            eviction_time(&pod(vec![]), &taints[1..], to, ts(1001)),
            None
        );
        // Wildcard toleration.
        let all = Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        };
        assert_eq!(eviction_time(&pod(vec![all]), &other, to, ts(1001)), None);
    }

    #[test]
    fn equal_toleration_needs_value() {
        let t = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoExecute".into(),
            time_added: None,
        };
        let mut tl = Toleration {
            key: Some("k".into()),
            operator: Some("Equal".into()),
            value: Some("v".into()),
            ..Default::default()
        };
        assert!(tolerates(&tl, &t));
        tl.value = Some("w".into());
        assert!(!tolerates(&tl, &t));
        tl.effect = Some("NoSchedule".into());
        tl.value = Some("v".into());
        assert!(!tolerates(&tl, &t));
    }

    #[test]
    fn heartbeat_prefers_latest() {
        let mut node = Node {
            metadata: ObjectMeta {
                creation_timestamp: Some(Time(ts(10))),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(last_heartbeat(&node, None), Some(ts(10)));
        node.status = Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_heartbeat_time: Some(Time(ts(20))),
                ..Default::default()
            }]),
            ..Default::default()
        });
        assert_eq!(last_heartbeat(&node, None), Some(ts(20)));
        let lease = Lease {
            spec: Some(k8s_openapi::api::coordination::v1::LeaseSpec {
                renew_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                    ts(30),
                )),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(last_heartbeat(&node, Some(&lease)), Some(ts(30)));
        let mut status = node.status.clone().unwrap();
        assert!(mark_unknown(&mut status, &Time(ts(40))));
        assert!(!mark_unknown(&mut status, &Time(ts(41))));
        let c = &status.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("Unknown", Some("NodeStatusUnknown"))
        );
    }

    #[test]
    fn taints_added_and_removed() {
        let now = Time(ts(100));
        let mut node = Node {
            spec: Some(NodeSpec::default()),
            ..Default::default()
        };
        let t = desired_taints(&node, true, &now).unwrap();
        assert_eq!(t.len(), 2);
        node.spec.as_mut().unwrap().taints = Some(t);
        assert!(desired_taints(&node, true, &Time(ts(200))).is_none());
        let cleared = desired_taints(&node, false, &now).unwrap();
        assert!(cleared.is_empty());
    }
}
