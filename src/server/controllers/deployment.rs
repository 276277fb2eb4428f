//! The Deployment controller, after Kubernetes' `deployment-controller`: one ReplicaSet
//! per pod template (`<deployment>-<pod-template-hash>`), rolled out with the
//! RollingUpdate (maxSurge / maxUnavailable) or Recreate strategy; revisions in the
//! `deployment.kubernetes.io/revision` annotation (a template that comes back — `kubectl
//! rollout undo` — reuses its old ReplicaSet with a new revision and records the old one
//! in `revision-history`); proportional scaling; old ReplicaSets beyond
//! `revisionHistoryLimit` removed; status and the `Available` / `Progressing` conditions
//! that `kubectl rollout status` reads.
//!
//! Start it with [`run`].

use super::context::Context;
use super::events::EventType;
use super::replicaset::{
    controller_uid, is_status, owner_reference, selector_is_empty, selector_matches, Error,
};
use super::runtime::{self, Action, Controller, ObjectKey};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::ResourceExt;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Name of the controller (metrics label).
pub const NAME: &str = "deployment";
/// Label added to a ReplicaSet's selector and template.
pub const HASH_LABEL: &str = "pod-template-hash";
/// Revision of a Deployment / ReplicaSet.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Former revisions of a ReplicaSet brought back by a rollback.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// Deployment replicas when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// Deployment replicas plus max surge when the ReplicaSet was last scaled.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Longest `revision-history` annotation kept.
const MAX_REV_HISTORY_LEN: usize = 2000;
/// Annotations of a Deployment not copied to its ReplicaSets.
const SKIPPED_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// Condition reasons (kube's `deploymentutil`).
pub mod reason {
    /// A new ReplicaSet was created.
    pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
    /// The new ReplicaSet exists.
    pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
    /// The rollout is progressing.
    pub const RS_UPDATED: &str = "ReplicaSetUpdated";
    /// The rollout is complete.
    pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
    /// The rollout exceeded its progress deadline.
    pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
    /// Paused.
    pub const PAUSED: &str = "DeploymentPaused";
    /// Resumed.
    pub const RESUMED: &str = "DeploymentResumed";
    /// Enough pods available.
    pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
    /// Not enough pods available.
    pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
}

/// The controller's caches and context.
pub struct State {
    /// Context.
    pub ctx: Context,
    /// Deployment cache.
    pub deployments: Store<Deployment>,
    /// ReplicaSet cache.
    pub rss: Store<ReplicaSet>,
    /// Pod cache (Recreate waits for old pods to go).
    pub pods: Store<Pod>,
}

/// Runs the Deployment controller with `workers` workers until `shutdown` completes.
pub async fn run(ctx: Context, workers: usize, shutdown: impl Future<Output = ()> + Send) {
    let client = ctx.client.clone();
    let deployments = runtime::watch(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
    );
    let rss = runtime::watch(
        Api::<ReplicaSet>::all(client.clone()),
        watcher::Config::default(),
    );
    let pods = runtime::watch(Api::<Pod>::all(client), watcher::Config::default());
    let state = Arc::new(State {
        ctx: ctx.clone(),
        deployments: deployments.store.clone(),
        rss: rss.store.clone(),
        pods: pods.store.clone(),
    });
    let rs_store = rss.store.clone();
    let d_store = deployments.store.clone();
    Controller::new(NAME, ctx)
        .watches(deployments, |d| vec![ObjectKey::of(d.as_ref())])
        .watches(rss, move |rs: Arc<ReplicaSet>| {
            let owned = runtime::owner_keys::<Deployment, ReplicaSet>(rs.clone());
            if !owned.is_empty() || controller_uid(&rs.metadata).is_some() {
                return owned;
            }
            // An orphan: every Deployment whose selector matches may adopt it.
            d_store
                .state()
                .iter()
                .filter(|d| d.metadata.namespace == rs.metadata.namespace)
                .filter(|d| {
                    d.spec.as_ref().is_some_and(|s| {
                        !selector_is_empty(&s.selector)
                            && selector_matches(&s.selector, rs.labels())
                    })
                })
                .map(|d| ObjectKey::of(d.as_ref()))
                .collect()
        })
        .watches(pods, move |pod: Arc<Pod>| {
            // Only pod deletions matter (Recreate waits for old pods to go).
            let Some(rs_key) = runtime::owner_keys::<ReplicaSet, Pod>(pod.clone()).pop() else {
                return vec![];
            };
            match rs_store.get(&rs_key.to_ref()) {
                Some(rs) => runtime::owner_keys::<Deployment, ReplicaSet>(rs),
                None => vec![],
            }
        })
        .workers(workers)
        .run(state, reconcile, shutdown)
        .await;
}

// ---------------------------------------------------------------------------------------
// Pure helpers.

fn d_replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn rs_status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// Available replicas for decisions: never more than the ReplicaSet is scaled to (its
/// status lags a scale-down).
fn rs_available_capped(rs: &ReplicaSet) -> i32 {
    rs_available(rs).min(rs_replicas(rs))
}

fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

fn annotation_i64(meta: &ObjectMeta, key: &str) -> Option<i64> {
    meta.annotations.as_ref()?.get(key)?.parse().ok()
}

/// The revision of a ReplicaSet (0 if none).
pub fn revision(rs: &ReplicaSet) -> i64 {
    annotation_i64(&rs.metadata, REVISION).unwrap_or(0)
}

fn is_recreate(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate")
}

/// `value` of `desired` (an int, or a percentage rounded up or down).
pub fn scaled_value(
    value: Option<&IntOrString>,
    default_percent: i32,
    desired: i32,
    round_up: bool,
) -> i32 {
    let pct = |p: f64| {
        let v = p * desired as f64 / 100.0;
        if round_up {
            v.ceil() as i32
        } else {
            v.floor() as i32
        }
    };
    match value {
        None => pct(default_percent as f64),
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => match s.trim_end_matches('%').parse::<f64>() {
            Ok(p) if s.ends_with('%') => pct(p),
            Ok(p) => p as i32,
            Err(_) => 0,
        },
    }
}

/// (maxSurge, maxUnavailable) of a rolling update: surge rounds up, unavailable down,
/// both zero → unavailable 1.
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> (i32, i32) {
    let surge = scaled_value(max_surge, 25, desired, true);
    let mut unavailable = scaled_value(max_unavailable, 25, desired, false);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    resolve_fenceposts(
        ru.and_then(|r| r.max_surge.as_ref()),
        ru.and_then(|r| r.max_unavailable.as_ref()),
        d_replicas(d),
    )
}

/// Max surge of `d` (0 for Recreate).
pub fn max_surge(d: &Deployment) -> i32 {
    if is_recreate(d) {
        0
    } else {
        fenceposts(d).0
    }
}

/// Max unavailable of `d` (0 for Recreate or zero replicas; at most replicas).
pub fn max_unavailable(d: &Deployment) -> i32 {
    if is_recreate(d) || d_replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(d_replicas(d))
}

const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A stable short hash of a pod template, rendered like kube's (FNV-32a, decimal,
/// mapped onto the "safe" alphabet).
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut json = serde_json::to_vec(template).unwrap_or_default();
    if let Some(c) = collision_count {
        json.extend_from_slice(&c.to_le_bytes());
    }
    let mut h: u32 = 0x811c9dc5;
    for b in json {
        h ^= b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h.to_string()
        .bytes()
        .map(|b| SAFE[b as usize % SAFE.len()] as char)
        .collect()
}

fn template_value_without_hash(t: Option<&PodTemplateSpec>) -> serde_json::Value {
    let mut t = t.cloned().unwrap_or_default();
    if let Some(m) = t.metadata.as_mut() {
        if let Some(l) = m.labels.as_mut() {
            l.remove(HASH_LABEL);
            if l.is_empty() {
                m.labels = None;
            }
        }
    }
    serde_json::to_value(&t).unwrap_or_default()
}

/// Whether two templates are equal but for the `pod-template-hash` label.
pub fn equal_ignore_hash(a: Option<&PodTemplateSpec>, b: Option<&PodTemplateSpec>) -> bool {
    template_value_without_hash(a) == template_value_without_hash(b)
}

fn condition<'a>(conds: &'a [DeploymentCondition], type_: &str) -> Option<&'a DeploymentCondition> {
    conds.iter().find(|c| c.type_ == type_)
}

fn new_condition(
    ctx: &Context,
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
) -> DeploymentCondition {
    let now = ctx.clock.now_k8s();
    DeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

/// kube's SetDeploymentCondition: same status and reason → unchanged; same status →
/// transition time kept.
fn set_condition(conds: &mut Vec<DeploymentCondition>, mut c: DeploymentCondition) {
    if let Some(cur) = condition(conds, &c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    conds.retain(|x| x.type_ != c.type_);
    conds.push(c);
}

fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .is_some_and(|s| s != i32::MAX)
}

fn progress_deadline(d: &Deployment) -> Duration {
    Duration::from_secs(
        d.spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            .unwrap_or(600)
            .max(0) as u64,
    )
}

// ---------------------------------------------------------------------------------------
// The sync.

struct Sync<'a> {
    ctx: &'a Context,
    state: &'a State,
    d: Deployment,
    key: ObjectKey,
    /// Every ReplicaSet the Deployment controls.
    rss: Vec<ReplicaSet>,
    conds: Vec<DeploymentCondition>,
    collision_count: Option<i32>,
    requeue: Option<Duration>,
}

/// Reconciles one Deployment.
pub async fn reconcile(key: ObjectKey, state: Arc<State>) -> Result<Action, Error> {
    let Some(d) = state.deployments.get(&key.to_ref()) else {
        return Ok(Action::Done);
    };
    let d = (*d).clone();
    let ctx = &state.ctx;
    let spec = d.spec.clone().unwrap_or_default();
    if selector_is_empty(&spec.selector) {
        tracing::warn!(deployment = %key, "deployment with an empty selector is not rolled out");
        return Ok(Action::Done);
    }
    let mut sync = Sync {
        ctx,
        state: &state,
        conds: d
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default(),
        collision_count: d.status.as_ref().and_then(|s| s.collision_count),
        key: key.clone(),
        rss: vec![],
        d,
        requeue: None,
    };
    sync.claim_replica_sets().await?;

    if sync.d.metadata.deletion_timestamp.is_some() {
        let new = sync.find_new();
        sync.write_status(new, false).await?;
        return Ok(Action::Done);
    }
    let paused = spec.paused.unwrap_or(false);
    // Paused conditions (kube's checkPausedConditions).
    if has_progress_deadline(&sync.d) {
        let cur = condition(&sync.conds, "Progressing").and_then(|c| c.reason.clone());
        if paused && cur.as_deref() != Some(reason::PAUSED) {
            let c = new_condition(
                ctx,
                "Progressing",
                "Unknown",
                reason::PAUSED,
                "Deployment is paused".into(),
            );
            set_condition(&mut sync.conds, c);
        } else if !paused && cur.as_deref() == Some(reason::PAUSED) {
            let c = new_condition(
                ctx,
                "Progressing",
                "Unknown",
                reason::RESUMED,
                "Deployment is resumed".into(),
            );
            set_condition(&mut sync.conds, c);
        }
    }

    if paused || sync.is_scaling_event().await? {
        let new = sync.get_all_and_sync_revision(false).await?;
        sync.scale(new).await?;
        if paused {
            sync.cleanup(new).await?;
        }
        sync.write_status(new, false).await?;
    } else if is_recreate(&sync.d) {
        sync.rollout_recreate().await?;
    } else {
        sync.rollout_rolling().await?;
    }
    Ok(match sync.requeue {
        Some(d) => Action::RequeueAfter(d),
        None => Action::Done,
    })
}

impl Sync<'_> {
    fn ns(&self) -> &str {
        self.key.ns()
    }

    fn rs_api(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.ctx.client.clone(), self.ns())
    }

    fn d_api(&self) -> Api<Deployment> {
        Api::namespaced(self.ctx.client.clone(), self.ns())
    }

    /// Our ReplicaSets; adopts matching orphans (kube's ClaimReplicaSets).
    async fn claim_replica_sets(&mut self) -> Result<(), Error> {
        let uid = self.d.metadata.uid.clone().unwrap_or_default();
        let selector = self
            .d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        let mut rss = Vec::new();
        for rs in self.state.rss.state() {
            if rs.metadata.namespace.as_deref() != Some(self.ns()) {
                continue;
            }
            match controller_uid(&rs.metadata) {
                Some(u) if u == uid => rss.push((*rs).clone()),
                Some(_) => {}
                None => {
                    if self.d.metadata.deletion_timestamp.is_none()
                        && rs.metadata.deletion_timestamp.is_none()
                        && selector_matches(&selector, rs.labels())
                    {
                        let mut refs = rs.metadata.owner_references.clone().unwrap_or_default();
                        refs.push(owner_reference(&self.d));
                        let patch = serde_json::json!({"metadata": {"ownerReferences": refs, "resourceVersion": rs.metadata.resource_version}});
                        match self
                            .rs_api()
                            .patch(
                                &rs.name_any(),
                                &PatchParams::default(),
                                &Patch::Merge(&patch),
                            )
                            .await
                        {
                            Ok(r) => rss.push(r),
                            Err(e) if is_status(&e, 404) => {}
                            Err(e) => return Err(Error::api(e, "adopting replicaset")),
                        }
                    }
                }
            }
        }
        rss.sort_by(|a, b| {
            (
                a.metadata.creation_timestamp.as_ref().map(|t| t.0),
                a.name_any(),
            )
                .cmp(&(
                    b.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    b.name_any(),
                ))
        });
        self.rss = rss;
        Ok(())
    }

    /// Index of the ReplicaSet whose template is the Deployment's (oldest first).
    fn find_new(&self) -> Option<usize> {
        let t = self.d.spec.as_ref().map(|s| &s.template);
        self.rss
            .iter()
            .position(|rs| equal_ignore_hash(rs.spec.as_ref().and_then(|s| s.template.as_ref()), t))
    }

    fn olds(&self, new: Option<usize>) -> Vec<usize> {
        (0..self.rss.len()).filter(|i| Some(*i) != new).collect()
    }

    fn replace_rs(&mut self, i: usize, rs: ReplicaSet) {
        self.rss[i] = rs;
    }

    /// Writes the Deployment's revision annotation if it differs.
    async fn set_deployment_revision(&mut self, rev: &str) -> Result<(), Error> {
        let cur = self
            .d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            .cloned();
        if cur.as_deref() == Some(rev) {
            return Ok(());
        }
        let patch = serde_json::json!({"metadata": {"annotations": {REVISION: rev}}});
        let d = self
            .d_api()
            .patch(
                &self.key.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(|e| Error::api(e, "deployment revision"))?;
        self.d.metadata.annotations = d.metadata.annotations;
        self.d.metadata.resource_version = d.metadata.resource_version;
        Ok(())
    }

    /// kube's SetNewReplicaSetAnnotations; returns whether `rs` changed.
    fn set_new_rs_annotations(&self, rs: &mut ReplicaSet, new_revision: i64, exists: bool) -> bool {
        let mut changed = false;
        let ann = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
        for (k, v) in self.d.metadata.annotations.iter().flatten() {
            if SKIPPED_ANNOTATIONS.contains(&k.as_str()) {
                continue;
            }
            if ann.get(k) != Some(v) {
                ann.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        let old = ann.get(REVISION).cloned();
        let old_int = old
            .as_deref()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0);
        if old_int < new_revision {
            ann.insert(REVISION.into(), new_revision.to_string());
            changed = true;
            if let Some(old) = old {
                let hist = ann.get(REVISION_HISTORY).cloned().unwrap_or_default();
                let mut parts: Vec<String> = hist
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                parts.push(old);
                while parts.join(",").len() > MAX_REV_HISTORY_LEN && parts.len() > 1 {
                    parts.remove(0);
                }
                ann.insert(REVISION_HISTORY.into(), parts.join(","));
            }
        }
        if !exists {
            changed |= set_replicas_annotations(
                rs,
                d_replicas(&self.d),
                d_replicas(&self.d) + max_surge(&self.d),
            );
        }
        changed
    }

    /// kube's getAllReplicaSetsAndSyncRevision: finds (and, if `create`, creates) the new
    /// ReplicaSet and brings its revision up to date.
    async fn get_all_and_sync_revision(&mut self, create: bool) -> Result<Option<usize>, Error> {
        let new = self.find_new();
        let olds = self.olds(new);
        let max_old = olds
            .iter()
            .map(|&i| revision(&self.rss[i]))
            .max()
            .unwrap_or(0);
        let new_revision = max_old + 1;
        if let Some(i) = new {
            let mut rs = self.rss[i].clone();
            let mut changed = self.set_new_rs_annotations(&mut rs, new_revision, true);
            let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
            if rs.spec.as_ref().and_then(|s| s.min_ready_seconds) != min_ready {
                rs.spec
                    .get_or_insert_with(Default::default)
                    .min_ready_seconds = min_ready;
                changed = true;
            }
            if changed {
                let patch = serde_json::json!({
                    "metadata": {"annotations": rs.metadata.annotations, "resourceVersion": rs.metadata.resource_version},
                    "spec": {"minReadySeconds": min_ready},
                });
                let updated = self
                    .rs_api()
                    .patch(
                        &rs.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await
                    .map_err(|e| Error::api(e, "replicaset annotations"))?;
                self.replace_rs(i, updated);
            }
            let rev = revision(&self.rss[i]).to_string();
            self.set_deployment_revision(&rev).await?;
            if condition(&self.conds, "Progressing").is_none() && has_progress_deadline(&self.d) {
                let msg = format!("Found new replica set {:?}", self.rss[i].name_any());
                let c = new_condition(self.ctx, "Progressing", "True", reason::FOUND_NEW_RS, msg);
                set_condition(&mut self.conds, c);
            }
            return Ok(Some(i));
        }
        if !create {
            return Ok(None);
        }
        // Create the new ReplicaSet.
        let spec = self.d.spec.clone().unwrap_or_default();
        let hash = template_hash(&spec.template, self.collision_count);
        let mut template = spec.template.clone();
        let tm = template.metadata.get_or_insert_with(Default::default);
        tm.labels
            .get_or_insert_with(BTreeMap::new)
            .insert(HASH_LABEL.into(), hash.clone());
        let labels = tm.labels.clone();
        let mut selector: LabelSelector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(HASH_LABEL.into(), hash.clone());
        let name = format!("{}-{}", self.key.name, hash);
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.ns().to_string()),
                labels,
                owner_references: Some(vec![owner_reference(&self.d)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let replicas = if is_recreate(&self.d) {
            d_replicas(&self.d)
        } else {
            let all: Vec<&ReplicaSet> = self.rss.iter().chain(std::iter::once(&rs)).collect();
            new_rs_new_replicas(&self.d, &all, &rs)
        };
        rs.spec.as_mut().expect("set").replicas = Some(replicas);
        self.set_new_rs_annotations(&mut rs, new_revision, false);
        let created = match self.rs_api().create(&PostParams::default(), &rs).await {
            Ok(c) => c,
            Err(e) if is_status(&e, 409) => {
                let existing = self
                    .rs_api()
                    .get(&name)
                    .await
                    .map_err(|e| Error::api(e, "replicaset"))?;
                let ours = controller_uid(&existing.metadata) == self.d.metadata.uid.as_deref();
                let t = self.d.spec.as_ref().map(|s| &s.template);
                if ours
                    && equal_ignore_hash(
                        existing.spec.as_ref().and_then(|s| s.template.as_ref()),
                        t,
                    )
                {
                    // Our cache was behind: take it and sync again.
                    self.rss.push(existing);
                    return Ok(Some(self.rss.len() - 1));
                }
                // A hash collision: bump collisionCount so the next hash differs.
                self.collision_count = Some(self.collision_count.unwrap_or(0) + 1);
                let patch = serde_json::json!({"status": {"collisionCount": self.collision_count}});
                self.d_api()
                    .patch_status(
                        &self.key.name,
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await
                    .map_err(|e| Error::api(e, "collision count"))?;
                return Err(Error::Conflict(format!("replicaset name {name} collides")));
            }
            Err(e) => return Err(Error::api(e, "creating replicaset")),
        };
        if replicas > 0 {
            let msg = format!("Scaled up replica set {name} from 0 to {replicas}");
            self.ctx
                .recorder
                .record(&self.d, EventType::Normal, "ScalingReplicaSet", &msg)
                .await;
        }
        self.set_deployment_revision(&new_revision.to_string())
            .await?;
        if has_progress_deadline(&self.d) {
            let c = new_condition(
                self.ctx,
                "Progressing",
                "True",
                reason::NEW_RS_CREATED,
                format!("Created new replica set {name:?}"),
            );
            set_condition(&mut self.conds, c);
        }
        self.rss.push(created);
        Ok(Some(self.rss.len() - 1))
    }

    /// Scales ReplicaSet `i` to `to` (and refreshes its replica annotations); returns
    /// whether the size changed.
    async fn scale_rs(&mut self, i: usize, to: i32) -> Result<bool, Error> {
        let rs = &self.rss[i];
        let from = rs_replicas(rs);
        let dr = d_replicas(&self.d);
        let maxr = dr + max_surge(&self.d);
        let mut copy = rs.clone();
        let ann_changed = set_replicas_annotations(&mut copy, dr, maxr);
        if from == to && !ann_changed {
            return Ok(false);
        }
        let patch = serde_json::json!({
            "metadata": {"annotations": {DESIRED_REPLICAS: dr.to_string(), MAX_REPLICAS: maxr.to_string()}, "resourceVersion": rs.metadata.resource_version},
            "spec": {"replicas": to},
        });
        let name = rs.name_any();
        let updated = self
            .rs_api()
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::api(e, &format!("scaling replicaset {name}")))?;
        self.replace_rs(i, updated);
        if from != to {
            let dir = if from < to { "up" } else { "down" };
            let msg = format!("Scaled {dir} replica set {name} from {from} to {to}");
            self.ctx
                .recorder
                .record(&self.d, EventType::Normal, "ScalingReplicaSet", &msg)
                .await;
        }
        Ok(from != to)
    }

    async fn is_scaling_event(&mut self) -> Result<bool, Error> {
        let new = self.get_all_and_sync_revision(false).await?;
        let _ = new;
        let dr = d_replicas(&self.d) as i64;
        Ok(self
            .rss
            .iter()
            .filter(|rs| rs_replicas(rs) > 0)
            .any(|rs| annotation_i64(&rs.metadata, DESIRED_REPLICAS).is_some_and(|v| v != dr)))
    }

    /// kube's `scale`: one active ReplicaSet takes the new size; a saturated new one
    /// retires the old; otherwise the change is shared proportionally.
    async fn scale(&mut self, new: Option<usize>) -> Result<(), Error> {
        let dr = d_replicas(&self.d);
        let active: Vec<usize> = (0..self.rss.len())
            .filter(|&i| rs_replicas(&self.rss[i]) > 0)
            .collect();
        // FindActiveOrLatest.
        let single = match active.len() {
            0 => new.or_else(|| {
                (0..self.rss.len()).max_by_key(|&i| {
                    self.rss[i]
                        .metadata
                        .creation_timestamp
                        .as_ref()
                        .map(|t| t.0)
                })
            }),
            1 => Some(active[0]),
            _ => None,
        };
        if let Some(i) = single {
            self.scale_rs(i, dr).await?;
            return Ok(());
        }
        if let Some(n) = new {
            let rs = &self.rss[n];
            let saturated = rs_replicas(rs) == dr
                && annotation_i64(&rs.metadata, DESIRED_REPLICAS) == Some(dr as i64)
                && rs_available(rs) == dr;
            if saturated {
                for i in self.olds(new) {
                    if rs_replicas(&self.rss[i]) > 0 {
                        self.scale_rs(i, 0).await?;
                    }
                }
                return Ok(());
            }
        }
        if is_recreate(&self.d) {
            return Ok(());
        }
        let total: i32 = active.iter().map(|&i| rs_replicas(&self.rss[i])).sum();
        let allowed = if dr > 0 { dr + max_surge(&self.d) } else { 0 };
        let to_add = allowed - total;
        let mut order = active.clone();
        let created = |i: usize| {
            self.rss[i]
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0)
        };
        if to_add > 0 {
            order.sort_by(|&a, &b| {
                rs_replicas(&self.rss[b])
                    .cmp(&rs_replicas(&self.rss[a]))
                    .then(created(b).cmp(&created(a)))
            });
        } else {
            order.sort_by(|&a, &b| {
                rs_replicas(&self.rss[b])
                    .cmp(&rs_replicas(&self.rss[a]))
                    .then(created(a).cmp(&created(b)))
            });
        }
        let mut sizes: Vec<(usize, i32)> = Vec::new();
        let mut added = 0;
        for &i in &order {
            let cur = rs_replicas(&self.rss[i]);
            if to_add != 0 {
                let p = self.proportion(&self.rss[i], to_add, added);
                sizes.push((i, cur + p));
                added += p;
            } else {
                sizes.push((i, cur));
            }
        }
        if to_add != 0 && !sizes.is_empty() {
            sizes[0].1 = (sizes[0].1 + to_add - added).max(0);
        }
        for (i, size) in sizes {
            self.scale_rs(i, size).await?;
        }
        Ok(())
    }

    fn proportion(&self, rs: &ReplicaSet, to_add: i32, added: i32) -> i32 {
        if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
            return 0;
        }
        let dr = d_replicas(&self.d);
        let fraction = if dr == 0 {
            -rs_replicas(rs)
        } else {
            let deployment_replicas = dr + max_surge(&self.d);
            let annotated = annotation_i64(&rs.metadata, MAX_REPLICAS)
                .map(|v| v as i32)
                .unwrap_or_else(|| self.d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
            if annotated == 0 {
                0
            } else {
                let size = rs_replicas(rs) as f64 * deployment_replicas as f64 / annotated as f64;
                size.round() as i32 - rs_replicas(rs)
            }
        };
        let allowed = to_add - added;
        if to_add > 0 {
            fraction.min(allowed)
        } else {
            fraction.max(allowed)
        }
    }

    async fn rollout_rolling(&mut self) -> Result<(), Error> {
        let new = self
            .get_all_and_sync_revision(true)
            .await?
            .expect("created");
        // Scale up the new ReplicaSet within the surge.
        let dr = d_replicas(&self.d);
        let cur = rs_replicas(&self.rss[new]);
        let scaled_up = if cur == dr {
            false
        } else if cur > dr {
            self.scale_rs(new, dr).await?
        } else {
            let all: Vec<&ReplicaSet> = self.rss.iter().collect();
            let to = new_rs_new_replicas(&self.d, &all, &self.rss[new]);
            self.scale_rs(new, to).await?
        };
        if scaled_up {
            return self.write_status(Some(new), true).await;
        }
        if self.reconcile_old(new).await? {
            return self.write_status(Some(new), true).await;
        }
        if self.complete(Some(new)) {
            self.cleanup(Some(new)).await?;
        }
        self.write_status(Some(new), true).await
    }

    /// kube's reconcileOldReplicaSets.
    async fn reconcile_old(&mut self, new: usize) -> Result<bool, Error> {
        let olds = self.olds(Some(new));
        let old_pods: i32 = olds.iter().map(|&i| rs_replicas(&self.rss[i])).sum();
        if old_pods == 0 {
            return Ok(false);
        }
        let all_pods: i32 = self.rss.iter().map(rs_replicas).sum();
        let min_available = d_replicas(&self.d) - max_unavailable(&self.d);
        let new_unavailable = rs_replicas(&self.rss[new]) - rs_available_capped(&self.rss[new]);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        // Unhealthy old replicas first.
        let mut cleaned = 0;
        for &i in &olds {
            if cleaned >= max_scaled_down {
                break;
            }
            let rs = &self.rss[i];
            let (spec, avail) = (rs_replicas(rs), rs_available_capped(rs));
            if spec == 0 || spec == avail {
                continue;
            }
            let n = (max_scaled_down - cleaned).min(spec - avail);
            self.scale_rs(i, spec - n).await?;
            cleaned += n;
        }
        // Then healthy ones, keeping minAvailable.
        let available: i32 = self.rss.iter().map(rs_available_capped).sum();
        let mut scaled = 0;
        if available > min_available {
            let total = available - min_available;
            for &i in &olds {
                if scaled >= total {
                    break;
                }
                let spec = rs_replicas(&self.rss[i]);
                if spec == 0 {
                    continue;
                }
                let n = spec.min(total - scaled);
                self.scale_rs(i, spec - n).await?;
                scaled += n;
            }
        }
        Ok(cleaned + scaled > 0)
    }

    async fn rollout_recreate(&mut self) -> Result<(), Error> {
        let new = self.get_all_and_sync_revision(false).await?;
        let mut scaled_down = false;
        for i in self.olds(new) {
            if rs_replicas(&self.rss[i]) > 0 {
                self.scale_rs(i, 0).await?;
                scaled_down = true;
            }
        }
        if scaled_down {
            return self.write_status(new, true).await;
        }
        // Wait until the old pods are gone.
        let old_uids: Vec<String> = self
            .olds(new)
            .iter()
            .filter_map(|&i| self.rss[i].metadata.uid.clone())
            .collect();
        let old_status: i32 = self
            .olds(new)
            .iter()
            .map(|&i| rs_status_replicas(&self.rss[i]))
            .sum();
        let old_pods_running = old_status > 0
            || self.state.pods.state().iter().any(|p| {
                p.metadata.namespace.as_deref() == Some(self.ns())
                    && controller_uid(&p.metadata).is_some_and(|u| old_uids.iter().any(|o| o == u))
                    && !matches!(
                        p.status.as_ref().and_then(|s| s.phase.as_deref()),
                        Some("Succeeded" | "Failed")
                    )
            });
        if old_pods_running {
            return self.write_status(new, true).await;
        }
        let new = match new {
            Some(n) => n,
            None => self
                .get_all_and_sync_revision(true)
                .await?
                .expect("created"),
        };
        let dr = d_replicas(&self.d);
        self.scale_rs(new, dr).await?;
        if self.complete(Some(new)) {
            self.cleanup(Some(new)).await?;
        }
        self.write_status(Some(new), true).await
    }

    /// Removes old ReplicaSets with no replicas beyond `revisionHistoryLimit`.
    async fn cleanup(&mut self, new: Option<usize>) -> Result<(), Error> {
        let limit = self
            .d
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10)
            .max(0) as usize;
        let mut cleanable: Vec<usize> = self
            .olds(new)
            .into_iter()
            .filter(|&i| self.rss[i].metadata.deletion_timestamp.is_none())
            .collect();
        if cleanable.len() <= limit {
            return Ok(());
        }
        let diff = cleanable.len() - limit;
        cleanable.sort_by_key(|&i| {
            (
                revision(&self.rss[i]),
                self.rss[i]
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0),
            )
        });
        for &i in cleanable.iter().take(diff) {
            let rs = &self.rss[i];
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if rs_status_replicas(rs) != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: rs.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match self.rs_api().delete(&rs.name_any(), &dp).await {
                Ok(_) => {}
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(Error::api(e, "deleting old replicaset")),
            }
        }
        Ok(())
    }

    fn calculate_status(&self, new: Option<usize>) -> DeploymentStatus {
        let available: i32 = self.rss.iter().map(rs_available).sum();
        let total_spec: i32 = self.rss.iter().map(rs_replicas).sum();
        let mut conds = self.conds.clone();
        let dr = d_replicas(&self.d);
        if available >= dr - max_unavailable(&self.d) {
            set_condition(
                &mut conds,
                new_condition(
                    self.ctx,
                    "Available",
                    "True",
                    reason::MIN_AVAILABLE,
                    "Deployment has minimum availability.".into(),
                ),
            );
        } else {
            set_condition(
                &mut conds,
                new_condition(
                    self.ctx,
                    "Available",
                    "False",
                    reason::MIN_UNAVAILABLE,
                    "Deployment does not have minimum availability.".into(),
                ),
            );
        }
        DeploymentStatus {
            observed_generation: self.d.metadata.generation,
            replicas: Some(self.rss.iter().map(rs_status_replicas).sum()),
            updated_replicas: Some(new.map_or(0, |n| rs_status_replicas(&self.rss[n]))),
            ready_replicas: Some(self.rss.iter().map(rs_ready).sum()),
            available_replicas: Some(available),
            unavailable_replicas: Some((total_spec - available).max(0)),
            collision_count: self.collision_count,
            conditions: Some(conds),
        }
    }

    /// kube's DeploymentComplete on the status we would write.
    fn complete(&self, new: Option<usize>) -> bool {
        let s = self.calculate_status(new);
        let dr = d_replicas(&self.d);
        s.updated_replicas == Some(dr)
            && s.replicas == Some(dr)
            && s.available_replicas == Some(dr)
            && s.observed_generation >= self.d.metadata.generation
    }

    /// Writes the status (with the Progressing condition if `rollout`, as kube's
    /// syncRolloutStatus), and schedules a check of the progress deadline.
    async fn write_status(&mut self, new: Option<usize>, rollout: bool) -> Result<(), Error> {
        let mut status = self.calculate_status(new);
        if rollout {
            let mut conds = status.conditions.take().unwrap_or_default();
            if !has_progress_deadline(&self.d) {
                conds.retain(|c| c.type_ != "Progressing");
            }
            let cur = condition(&conds, "Progressing").cloned();
            let dr = d_replicas(&self.d);
            let complete_already = status.replicas == status.updated_replicas
                && cur.as_ref().and_then(|c| c.reason.as_deref()) == Some(reason::NEW_RS_AVAILABLE);
            if has_progress_deadline(&self.d) && !complete_already {
                let name = new.map(|n| self.rss[n].name_any()).unwrap_or_default();
                let old = self.d.status.clone().unwrap_or_default();
                let complete = status.updated_replicas == Some(dr)
                    && status.replicas == Some(dr)
                    && status.available_replicas == Some(dr)
                    && status.observed_generation >= self.d.metadata.generation;
                let old_old = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
                let new_old = status.replicas.unwrap_or(0) - status.updated_replicas.unwrap_or(0);
                let progressing = status.updated_replicas.unwrap_or(0)
                    > old.updated_replicas.unwrap_or(0)
                    || new_old < old_old
                    || status.ready_replicas.unwrap_or(0) > old.ready_replicas.unwrap_or(0)
                    || status.available_replicas.unwrap_or(0) > old.available_replicas.unwrap_or(0);
                let timed_out = match &cur {
                    None => false,
                    Some(c) if c.reason.as_deref() == Some(reason::NEW_RS_AVAILABLE) => false,
                    Some(c) if c.reason.as_deref() == Some(reason::TIMED_OUT) => true,
                    Some(c) => c
                        .last_update_time
                        .as_ref()
                        .is_some_and(|t| self.ctx.clock.since(t.0) > progress_deadline(&self.d)),
                };
                if complete && new.is_some() {
                    let c = new_condition(
                        self.ctx,
                        "Progressing",
                        "True",
                        reason::NEW_RS_AVAILABLE,
                        format!("ReplicaSet {name:?} has successfully progressed."),
                    );
                    set_condition(&mut conds, c);
                } else if progressing && new.is_some() {
                    let mut c = new_condition(
                        self.ctx,
                        "Progressing",
                        "True",
                        reason::RS_UPDATED,
                        format!("ReplicaSet {name:?} is progressing."),
                    );
                    if let Some(cur) = &cur {
                        if cur.status == "True" {
                            c.last_transition_time = cur.last_transition_time.clone();
                        }
                        conds.retain(|x| x.type_ != "Progressing");
                    }
                    set_condition(&mut conds, c);
                } else if timed_out {
                    let c = new_condition(
                        self.ctx,
                        "Progressing",
                        "False",
                        reason::TIMED_OUT,
                        format!("ReplicaSet {name:?} has timed out progressing."),
                    );
                    set_condition(&mut conds, c);
                }
            }
            status.conditions = Some(conds);
            // Requeue to notice a missed deadline (kube's requeueStuckDeployment).
            let after = status
                .conditions
                .as_deref()
                .and_then(|c| condition(c, "Progressing"))
                .and_then(|c| {
                    let stuck = c.reason.as_deref() != Some(reason::NEW_RS_AVAILABLE)
                        && c.reason.as_deref() != Some(reason::TIMED_OUT)
                        && c.status == "True";
                    let t = c.last_update_time.as_ref()?;
                    stuck.then(|| {
                        progress_deadline(&self.d).saturating_sub(self.ctx.clock.since(t.0))
                            + Duration::from_secs(1)
                    })
                });
            if has_progress_deadline(&self.d) && !self.complete(new) {
                self.requeue = after;
            }
        }
        let old = self.d.status.clone().unwrap_or_default();
        if status == old {
            return Ok(());
        }
        let patch = serde_json::json!({ "status": status });
        match self
            .d_api()
            .patch_status(
                &self.key.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(d) => {
                self.d.status = d.status;
                Ok(())
            }
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(Error::api(e, "deployment status")),
        }
    }
}

/// Sets the desired / max replicas annotations; returns whether they changed.
fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let ann = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if ann.get(k) != Some(&v) {
            ann.insert(k.to_string(), v);
            changed = true;
        }
    }
    changed
}

/// kube's NewRSNewReplicas for a rolling update: the new ReplicaSet's size within the
/// surge.
fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new: &ReplicaSet) -> i32 {
    let dr = d_replicas(d);
    let surge = max_surge(d);
    let current: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
    let max_total = dr + surge;
    let cur_new = rs_replicas(new);
    if current >= max_total {
        return cur_new;
    }
    let up = (max_total - current).min(dr - cur_new).max(0);
    cur_new + up
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenceposts_round_like_kube() {
        let p = |s: &str| IntOrString::String(s.into());
        assert_eq!(resolve_fenceposts(None, None, 10), (3, 2));
        assert_eq!(resolve_fenceposts(None, None, 1), (1, 0));
        assert_eq!(
            resolve_fenceposts(Some(&IntOrString::Int(0)), Some(&IntOrString::Int(0)), 3),
            (0, 1)
        );
        assert_eq!(
            resolve_fenceposts(Some(&p("50%")), Some(&p("50%")), 5),
            (3, 2)
        );
        assert_eq!(
            resolve_fenceposts(Some(&IntOrString::Int(2)), Some(&p("0%")), 4),
            (2, 0)
        );
    }

    #[test]
    fn hash_is_stable_and_safe() {
        let t = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "a".to_string())].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let h = template_hash(&t, None);
        assert_eq!(h, template_hash(&t, None));
        assert_ne!(h, template_hash(&t, Some(1)));
        assert!(h.bytes().all(|b| SAFE.contains(&b)));
        let mut with = t.clone();
        with.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(HASH_LABEL.into(), h);
        assert!(equal_ignore_hash(Some(&t), Some(&with)));
    }

    #[test]
    fn new_rs_grows_within_surge() {
        let d = Deployment {
            spec: Some(k8s_openapi::api::apps::v1::DeploymentSpec {
                replicas: Some(4),
                ..Default::default()
            }),
            ..Default::default()
        };
        let rs = |n| ReplicaSet {
            spec: Some(ReplicaSetSpec {
                replicas: Some(n),
                ..Default::default()
            }),
            ..Default::default()
        };
        let old = rs(4);
        let new = rs(0);
        // 25% of 4: surge 1.
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 1);
        let old = rs(2);
        let new = rs(2);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 3);
    }
}
