//! The ReplicaSet controller: keeps `spec.replicas` active pods matching the selector,
//! owned by the ReplicaSet, and reports their counts in the status — as Kubernetes'
//! `replicaset-controller` does.
//!
//! Start it with [`run`]. It also holds helpers shared by the other workload
//! controllers: [`selector_matches`], [`pod_is_active`], [`pod_is_ready`],
//! [`pod_is_available`] and the module's [`Error`].

use super::context::Context;
use super::events::EventType;
use super::runtime::{self, Action, Controller, ObjectKey};
use futures::stream::{self, StreamExt};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Name of the controller (metrics label, event source).
pub const NAME: &str = "replicaset";
/// Pods created or deleted concurrently in one sync.
const BURST: usize = 16;
/// How long unobserved creations/deletions hold back the next sync (kube: 5 minutes).
const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(60);
/// Alphabet of generated name suffixes (kube's `utilrand` alphabet: no vowels, no
/// confusable digits).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Errors of the workload controllers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object changed since it was read (409): retried.
    #[error("conflict writing {0}")]
    Conflict(String),
    /// A call to the API server failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

impl Error {
    /// Wraps an API error, telling conflicts apart.
    pub fn api(e: kube::Error, what: &str) -> Error {
        if is_status(&e, 409) {
            Error::Conflict(what.to_string())
        } else {
            Error::Kube(e)
        }
    }
}

/// Whether `e` is an API status error with `code`.
pub fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// Whether `labels` match `selector` (matchLabels and matchExpressions; an empty
/// selector matches everything).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    if let Some(ml) = &selector.match_labels {
        if ml.iter().any(|(k, v)| labels.get(k) != Some(v)) {
            return false;
        }
    }
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.as_deref().unwrap_or(&[]);
        let v = labels.get(&e.key);
        let ok = match e.operator.as_str() {
            "In" => v.is_some_and(|v| values.contains(v)),
            "NotIn" => v.is_none_or(|v| !values.contains(v)),
            "Exists" => v.is_some(),
            "DoesNotExist" => v.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether a selector selects nothing-in-particular (no labels, no expressions).
pub fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|m| m.is_empty())
}

/// A pod that counts: not terminating, not Succeeded or Failed.
pub fn pod_is_active(pod: &Pod) -> bool {
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("");
    pod.metadata.deletion_timestamp.is_none() && phase != "Succeeded" && phase != "Failed"
}

fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// Whether the pod's `Ready` condition is `True`.
pub fn pod_is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// Time until a ready pod becomes available after `min_ready` (zero: available now;
/// `None`: not ready).
pub fn pod_available_in(pod: &Pod, min_ready: Duration, ctx: &Context) -> Option<Duration> {
    let c = ready_condition(pod)?;
    if c.status != "True" {
        return None;
    }
    if min_ready.is_zero() {
        return Some(Duration::ZERO);
    }
    match &c.last_transition_time {
        Some(t) => Some(min_ready.saturating_sub(ctx.clock.since(t.0))),
        None => Some(Duration::ZERO),
    }
}

/// Whether the pod has been ready for `min_ready`.
pub fn pod_is_available(pod: &Pod, min_ready: Duration, ctx: &Context) -> bool {
    pod_available_in(pod, min_ready, ctx).is_some_and(|d| d.is_zero())
}

/// The uid of the controller ownerReference of `meta`, any kind.
pub fn controller_uid(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.as_str())
}

/// A controller ownerReference to `owner` (blockOwnerDeletion set).
pub fn owner_reference<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// `<prefix><5 random characters>`, as the API server's generateName does.
pub fn random_suffix_name(prefix: &str) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let s: String = (0..5)
        .map(|_| ALPHANUMS[rng.gen_range(0..ALPHANUMS.len())] as char)
        .collect();
    format!("{prefix}{s}")
}

/// Creations and deletions made but not yet seen in the pod cache, per ReplicaSet.
#[derive(Default)]
struct Expectations {
    creates: HashSet<String>,
    deletes: HashSet<String>,
    since: Duration,
}

/// The controller's caches and context.
pub struct State {
    /// Context.
    pub ctx: Context,
    /// ReplicaSet cache.
    pub rss: Store<ReplicaSet>,
    /// Pod cache.
    pub pods: Store<Pod>,
    expectations: Mutex<HashMap<ObjectKey, Expectations>>,
}

/// Runs the ReplicaSet controller with `workers` workers until `shutdown` completes.
pub async fn run(ctx: Context, workers: usize, shutdown: impl Future<Output = ()> + Send) {
    let client = ctx.client.clone();
    let rss = runtime::watch(
        Api::<ReplicaSet>::all(client.clone()),
        watcher::Config::default(),
    );
    let pods = runtime::watch(Api::<Pod>::all(client), watcher::Config::default());
    let state = Arc::new(State {
        ctx: ctx.clone(),
        rss: rss.store.clone(),
        pods: pods.store.clone(),
        expectations: Mutex::default(),
    });
    // Orphan pods matching a ReplicaSet's selector are adopted: map them to every
    // ReplicaSet of their namespace whose selector matches.
    let rs_store = rss.store.clone();
    Controller::new(NAME, ctx)
        .watches(rss, |rs| vec![ObjectKey::of(rs.as_ref())])
        .watches(pods, move |pod: Arc<Pod>| {
            let owned = runtime::owner_keys::<ReplicaSet, Pod>(pod.clone());
            if !owned.is_empty() || controller_uid(&pod.metadata).is_some() {
                return owned;
            }
            let labels = pod.labels();
            rs_store
                .state()
                .iter()
                .filter(|rs| rs.metadata.namespace == pod.metadata.namespace)
                .filter(|rs| {
                    rs.spec.as_ref().is_some_and(|s| {
                        !selector_is_empty(&s.selector) && selector_matches(&s.selector, labels)
                    })
                })
                .map(|rs| ObjectKey::of(rs.as_ref()))
                .collect()
        })
        .workers(workers)
        .run(state, reconcile, shutdown)
        .await;
}

/// Reconciles one ReplicaSet.
pub async fn reconcile(key: ObjectKey, state: Arc<State>) -> Result<Action, Error> {
    let ctx = &state.ctx;
    let Some(rs) = state.rss.get(&key.to_ref()) else {
        state
            .expectations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        return Ok(Action::Done);
    };
    let spec = rs.spec.clone().unwrap_or_default();
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    let ns = key.ns().to_string();
    let min_ready = Duration::from_secs(spec.min_ready_seconds.unwrap_or(0).max(0) as u64);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);

    // Claim pods: ours by controller ref; orphans matching the selector are adopted;
    // ours no longer matching are released.
    let mut owned: Vec<Arc<Pod>> = Vec::new();
    for pod in state.pods.state() {
        if pod.metadata.namespace.as_deref() != Some(ns.as_str()) {
            continue;
        }
        let matches =
            !selector_is_empty(&spec.selector) && selector_matches(&spec.selector, pod.labels());
        match controller_uid(&pod.metadata) {
            Some(u) if u == uid => {
                if matches {
                    owned.push(pod);
                } else if rs.metadata.deletion_timestamp.is_none() {
                    release(&pods_api, &pod, &uid).await?;
                }
            }
            Some(_) => {}
            None => {
                if matches
                    && rs.metadata.deletion_timestamp.is_none()
                    && pod.metadata.deletion_timestamp.is_none()
                    && adopt(&pods_api, &pod, &rs).await?
                {
                    owned.push(pod);
                }
            }
        }
    }
    let active: Vec<Arc<Pod>> = owned.iter().filter(|p| pod_is_active(p)).cloned().collect();

    // Expectations: don't act again until our last creations/deletions are observed.
    let satisfied = {
        let mut all = state.expectations.lock().unwrap_or_else(|e| e.into_inner());
        match all.get_mut(&key) {
            None => true,
            Some(exp) => {
                exp.creates.retain(|n| {
                    state
                        .pods
                        .get(&ObjectKey::new(Some(&ns), n).to_ref())
                        .is_none()
                });
                exp.deletes.retain(|n| {
                    state
                        .pods
                        .get(&ObjectKey::new(Some(&ns), n).to_ref())
                        .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
                });
                let expired = ctx.clock.elapsed().saturating_sub(exp.since) >= EXPECTATIONS_TIMEOUT;
                if exp.creates.is_empty() && exp.deletes.is_empty() || expired {
                    all.remove(&key);
                    true
                } else {
                    false
                }
            }
        }
    };

    let mut result = Ok(());
    if satisfied && rs.metadata.deletion_timestamp.is_none() {
        result = manage_replicas(&state, &key, &rs, &active).await;
    }

    // Status from what the cache shows.
    let template_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let mut next_available: Option<Duration> = None;
    let mut ready = 0;
    let mut available = 0;
    let mut fully_labeled = 0;
    for p in &active {
        if template_labels
            .iter()
            .all(|(k, v)| p.labels().get(k) == Some(v))
        {
            fully_labeled += 1;
        }
        if let Some(d) = pod_available_in(p, min_ready, ctx) {
            ready += 1;
            if d.is_zero() {
                available += 1;
            } else {
                next_available = Some(next_available.map_or(d, |n: Duration| n.min(d)));
            }
        }
    }
    let old = rs.status.clone().unwrap_or_default();
    let status = ReplicaSetStatus {
        replicas: active.len() as i32,
        fully_labeled_replicas: Some(fully_labeled),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        observed_generation: rs.metadata.generation,
        conditions: old.conditions.clone(),
    };
    if status != old {
        let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = serde_json::json!({ "status": status });
        match api
            .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => return Ok(Action::Done),
            Err(e) => return Err(Error::api(e, &format!("status of replicaset {key}"))),
        }
    }
    result?;
    Ok(match next_available {
        Some(d) => Action::RequeueAfter(d + Duration::from_millis(50)),
        None => Action::Done,
    })
}

async fn manage_replicas(
    state: &State,
    key: &ObjectKey,
    rs: &ReplicaSet,
    active: &[Arc<Pod>],
) -> Result<(), Error> {
    let ctx = &state.ctx;
    let spec = rs.spec.clone().unwrap_or_default();
    let want = spec.replicas.unwrap_or(1).max(0) as usize;
    let have = active.len();
    let ns = key.ns().to_string();
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    if have < want {
        let Some(template) = spec.template.clone() else {
            return Ok(());
        };
        let n = want - have;
        let names: Vec<String> = (0..n)
            .map(|_| random_suffix_name(&format!("{}-", key.name)))
            .collect();
        {
            let mut all = state.expectations.lock().unwrap_or_else(|e| e.into_inner());
            let exp = all.entry(key.clone()).or_default();
            exp.since = ctx.clock.elapsed();
            exp.creates.extend(names.iter().cloned());
        }
        let tmeta = template.metadata.clone().unwrap_or_default();
        let results: Vec<Result<(), Error>> = stream::iter(names)
            .map(|name| {
                let pod = Pod {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(ns.clone()),
                        labels: tmeta.labels.clone(),
                        annotations: tmeta.annotations.clone(),
                        finalizers: tmeta.finalizers.clone(),
                        owner_references: Some(vec![owner_reference(rs)]),
                        ..Default::default()
                    },
                    spec: template.spec.clone(),
                    status: None,
                };
                let pods_api = pods_api.clone();
                let ns = ns.clone();
                async move {
                    let r = pods_api.create(&PostParams::default(), &pod).await;
                    match r {
                        Ok(p) => {
                            ctx.recorder
                                .record(
                                    rs,
                                    EventType::Normal,
                                    "SuccessfulCreate",
                                    &format!("Created pod: {}", p.name_any()),
                                )
                                .await;
                            Ok(())
                        }
                        Err(e) => Err(state
                            .failed(
                                ctx,
                                rs,
                                key,
                                &ns,
                                &name,
                                "FailedCreate",
                                "Error creating",
                                e,
                            )
                            .await),
                    }
                }
            })
            .buffer_unordered(BURST)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>, Error>>()?;
    } else if have > want {
        let mut victims: Vec<Arc<Pod>> = active.to_vec();
        victims.sort_by_key(|p| deletion_rank(p));
        victims.truncate(have - want);
        {
            let mut all = state.expectations.lock().unwrap_or_else(|e| e.into_inner());
            let exp = all.entry(key.clone()).or_default();
            exp.since = ctx.clock.elapsed();
            exp.deletes.extend(victims.iter().map(|p| p.name_any()));
        }
        let results: Vec<Result<(), Error>> = stream::iter(victims)
            .map(|pod| {
                let pods_api = pods_api.clone();
                let ns = ns.clone();
                async move {
                    let name = pod.name_any();
                    let dp = DeleteParams {
                        preconditions: Some(Preconditions {
                            uid: pod.metadata.uid.clone(),
                            resource_version: None,
                        }),
                        ..Default::default()
                    };
                    match pods_api.delete(&name, &dp).await {
                        Ok(_) => {
                            ctx.recorder
                                .record(
                                    rs,
                                    EventType::Normal,
                                    "SuccessfulDelete",
                                    &format!("Deleted pod: {name}"),
                                )
                                .await;
                            Ok(())
                        }
                        Err(e) if is_status(&e, 404) => Ok(()),
                        Err(e) => Err(state
                            .failed(
                                ctx,
                                rs,
                                key,
                                &ns,
                                &name,
                                "FailedDelete",
                                "Error deleting",
                                e,
                            )
                            .await),
                    }
                }
            })
            .buffer_unordered(BURST)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>, Error>>()?;
    }
    Ok(())
}

impl State {
    /// A pod create or delete failed: it is no longer expected, the ReplicaSet gets a
    /// Warning event (`reason`, "`what`: error"), and the error goes back to the queue.
    #[allow(clippy::too_many_arguments)]
    async fn failed(
        &self,
        ctx: &Context,
        rs: &ReplicaSet,
        key: &ObjectKey,
        ns: &str,
        name: &str,
        reason: &str,
        what: &str,
        e: kube::Error,
    ) -> Error {
        self.forget_expectation(key, name);
        ctx.recorder
            .record(rs, EventType::Warning, reason, &format!("{what}: {e}"))
            .await;
        Error::api(e, &format!("pod {ns}/{name}"))
    }

    fn forget_expectation(&self, key: &ObjectKey, name: &str) {
        let mut all = self.expectations.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(exp) = all.get_mut(key) {
            exp.creates.remove(name);
            exp.deletes.remove(name);
        }
    }
}

/// Sort key: pods to delete first come first — unscheduled, then pending, then not
/// ready, then ready more recently, then newest.
fn deletion_rank(
    pod: &Pod,
) -> (
    u8,
    u8,
    u8,
    std::cmp::Reverse<Option<jiff::Timestamp>>,
    std::cmp::Reverse<Option<jiff::Timestamp>>,
) {
    let scheduled = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_ref())
        .is_some_and(|n| !n.is_empty());
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending");
    let phase_rank = match phase {
        "Pending" => 0,
        "Unknown" => 1,
        _ => 2,
    };
    let ready = pod_is_ready(pod);
    let ready_since = if ready {
        ready_condition(pod)
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0)
    } else {
        None
    };
    let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
    (
        scheduled as u8,
        phase_rank,
        ready as u8,
        std::cmp::Reverse(ready_since),
        std::cmp::Reverse(created),
    )
}

/// Adds `rs` as controller of an orphan pod (uid-preconditioned through resourceVersion).
async fn adopt(api: &Api<Pod>, pod: &Pod, rs: &ReplicaSet) -> Result<bool, Error> {
    let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
    refs.push(owner_reference(rs));
    let patch = serde_json::json!({
        "metadata": { "ownerReferences": refs, "resourceVersion": pod.metadata.resource_version, "uid": pod.metadata.uid }
    });
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if is_status(&e, 404) => Ok(false),
        Err(e) => Err(Error::api(e, &format!("adopting pod {}", pod.name_any()))),
    }
}

/// Removes our controller reference from a pod that no longer matches.
async fn release(api: &Api<Pod>, pod: &Pod, uid: &str) -> Result<(), Error> {
    let refs: Vec<OwnerReference> = pod
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.uid != uid)
        .collect();
    let patch = serde_json::json!({
        "metadata": { "ownerReferences": refs, "resourceVersion": pod.metadata.resource_version }
    });
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 404) => Ok(()),
        Err(e) => Err(Error::api(e, &format!("releasing pod {}", pod.name_any()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, Time};

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["db".into()]),
            }]),
        };
        assert!(selector_matches(&sel, &labels(&[("app", "web")])));
        assert!(selector_matches(
            &sel,
            &labels(&[("app", "web"), ("tier", "fe")])
        ));
        assert!(!selector_matches(
            &sel,
            &labels(&[("app", "web"), ("tier", "db")])
        ));
        assert!(!selector_matches(&sel, &labels(&[("app", "api")])));
        assert!(selector_matches(&LabelSelector::default(), &labels(&[])));
    }

    fn pod(name: &str, node: Option<&str>, ready: Option<i64>, created: i64) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(jiff::Timestamp::from_second(created).unwrap())),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(str::to_string),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(if node.is_some() { "Running" } else { "Pending" }.into()),
                conditions: ready.map(|t| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(jiff::Timestamp::from_second(t).unwrap())),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn deletion_order_unscheduled_notready_newest() {
        let mut pods = [
            pod("old-ready", Some("n"), Some(100), 10),
            pod("new-ready", Some("n"), Some(200), 20),
            pod("running-notready", Some("n"), None, 5),
            pod("unscheduled", None, None, 1),
        ];
        pods.sort_by_key(deletion_rank);
        let names: Vec<_> = pods.iter().map(|p| p.name_any()).collect();
        assert_eq!(
            names,
            vec!["unscheduled", "running-notready", "new-ready", "old-ready"]
        );
    }

    #[test]
    fn names_have_five_safe_characters() {
        let n = random_suffix_name("web-");
        assert_eq!(n.len(), 9);
        assert!(n[4..].bytes().all(|b| ALPHANUMS.contains(&b)));
    }
}
