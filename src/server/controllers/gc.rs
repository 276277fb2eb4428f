//! The garbage collector for the kinds with owners and dependents among them —
//! Deployment, ReplicaSet, Job (batch/v1) and Pod — as Kubernetes' garbage collector
//! treats them:
//!
//! - **background**: a dependent whose every ownerReference names an owner that no
//!   longer exists (absent, or present with another uid — checked with a live GET before
//!   acting, since the caches may lag) is deleted, with a uid precondition; one with
//!   some owners left loses only the references to the vanished ones;
//! - **foreground**: an owner being deleted with the `foregroundDeletion` finalizer has
//!   its dependents deleted (those that own others with propagation `Foreground`); once
//!   no dependent with `blockOwnerDeletion: true` remains, the finalizer is removed;
//! - **orphan**: an owner being deleted with the `orphan` finalizer has its
//!   ownerReference removed from every dependent, then the finalizer removed.
//!
//! The collector reconciles the whole graph on a single queue key whenever any watched
//! object changes (the queue coalesces bursts of changes into one pass), and every
//! [`RESYNC`]. Start it with [`run`].

use super::context::Context;
use super::replicaset::{is_status, Error};
use super::runtime::{self, Action, Controller, ObjectKey};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions,
    PropagationPolicy,
};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::Resource;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Name of the controller (metrics label).
pub const NAME: &str = "garbage-collector";
/// Finalizer of a foreground deletion.
pub const FOREGROUND: &str = "foregroundDeletion";
/// Finalizer of an orphaning deletion.
pub const ORPHAN: &str = "orphan";
/// Full pass even without changes.
pub const RESYNC: Duration = Duration::from_secs(60);

/// The kinds the collector knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 ReplicaSet.
    ReplicaSet,
    /// batch/v1 Job.
    Job,
    /// v1 Pod.
    Pod,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Deployment, Kind::ReplicaSet, Kind::Job, Kind::Pod];

    fn resource(self) -> ApiResource {
        match self {
            Kind::Deployment => ApiResource::erase::<Deployment>(&()),
            Kind::ReplicaSet => ApiResource::erase::<ReplicaSet>(&()),
            Kind::Job => ApiResource::erase::<Job>(&()),
            Kind::Pod => ApiResource::erase::<Pod>(&()),
        }
    }

    /// The kind an ownerReference names, if the collector knows it.
    fn of_ref(r: &OwnerReference) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| {
            let ar = k.resource();
            ar.kind == r.kind && ar.api_version == r.api_version
        })
    }

    fn owns_others(self) -> bool {
        self != Kind::Pod
    }
}

/// The collector's caches.
pub struct State {
    /// Context.
    pub ctx: Context,
    deployments: Store<Deployment>,
    rss: Store<ReplicaSet>,
    jobs: Store<Job>,
    pods: Store<Pod>,
}

fn key() -> ObjectKey {
    ObjectKey::new(None, "graph")
}

/// Runs the garbage collector until `shutdown` completes.
pub async fn run(ctx: Context, shutdown: impl Future<Output = ()> + Send) {
    let c = ctx.client.clone();
    let deployments = runtime::watch(
        Api::<Deployment>::all(c.clone()),
        watcher::Config::default(),
    );
    let rss = runtime::watch(
        Api::<ReplicaSet>::all(c.clone()),
        watcher::Config::default(),
    );
    let jobs = runtime::watch(Api::<Job>::all(c.clone()), watcher::Config::default());
    let pods = runtime::watch(Api::<Pod>::all(c), watcher::Config::default());
    let state = Arc::new(State {
        ctx: ctx.clone(),
        deployments: deployments.store.clone(),
        rss: rss.store.clone(),
        jobs: jobs.store.clone(),
        pods: pods.store.clone(),
    });
    let controller = Controller::new(NAME, ctx)
        .watches(deployments, |_| vec![key()])
        .watches(rss, |_| vec![key()])
        .watches(jobs, |_| vec![key()])
        .watches(pods, |_| vec![key()]);
    controller.queue().add(key());
    controller.run(state, |_k, s| reconcile(s), shutdown).await;
}

struct Node {
    kind: Kind,
    meta: ObjectMeta,
}

impl Node {
    fn deleting(&self) -> bool {
        self.meta.deletion_timestamp.is_some()
    }
    fn has_finalizer(&self, f: &str) -> bool {
        self.meta.finalizers.iter().flatten().any(|x| x == f)
    }
    fn uid(&self) -> &str {
        self.meta.uid.as_deref().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.meta.name.as_deref().unwrap_or("")
    }
    fn ns(&self) -> Option<&str> {
        self.meta.namespace.as_deref()
    }
}

fn dyn_api(ctx: &Context, kind: Kind, ns: Option<&str>) -> Api<DynamicObject> {
    let ar = kind.resource();
    match ns {
        Some(ns) if kind != Kind::Pod || !ns.is_empty() => {
            Api::namespaced_with(ctx.client.clone(), ns, &ar)
        }
        _ => Api::all_with(ctx.client.clone(), &ar),
    }
}

/// One pass over the graph.
pub async fn reconcile(state: Arc<State>) -> Result<Action, Error> {
    let ctx = &state.ctx;
    let mut nodes: Vec<Node> = Vec::new();
    nodes.extend(state.deployments.state().iter().map(|o| Node {
        kind: Kind::Deployment,
        meta: o.meta().clone(),
    }));
    nodes.extend(state.rss.state().iter().map(|o| Node {
        kind: Kind::ReplicaSet,
        meta: o.meta().clone(),
    }));
    nodes.extend(state.jobs.state().iter().map(|o| Node {
        kind: Kind::Job,
        meta: o.meta().clone(),
    }));
    nodes.extend(state.pods.state().iter().map(|o| Node {
        kind: Kind::Pod,
        meta: o.meta().clone(),
    }));

    let uids: HashSet<&str> = nodes.iter().map(|n| n.uid()).collect();
    let mut dependents: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for r in n.meta.owner_references.iter().flatten() {
            dependents.entry(r.uid.as_str()).or_default().push(i);
        }
    }
    let mut first_error: Option<Error> = None;
    let mut note = |r: Result<(), Error>| {
        if let Err(e) = r {
            tracing::info!(error = %e, "garbage collection step failed");
            first_error.get_or_insert(e);
        }
    };

    // Background: dependents of vanished owners.
    for n in &nodes {
        let refs = n.meta.owner_references.as_deref().unwrap_or(&[]);
        if refs.is_empty() || n.deleting() {
            continue;
        }
        // Owners in the cache with the same uid are present; others are checked live.
        let mut absent: Vec<&str> = Vec::new();
        let mut unsure = false;
        for r in refs.iter().filter(|r| !uids.contains(r.uid.as_str())) {
            match owner_absent(ctx, r, n.ns()).await {
                Ok(true) => absent.push(r.uid.as_str()),
                Ok(false) => {}
                Err(e) => {
                    unsure = true;
                    note(Err(e));
                }
            }
        }
        if unsure || absent.is_empty() {
            continue;
        }
        if absent.len() == refs.len() {
            tracing::debug!(kind = ?n.kind, name = n.name(), "deleting dependent of vanished owners");
            note(delete(ctx, n, PropagationPolicy::Background).await);
        } else {
            // Some owners remain: drop the references to the vanished ones.
            note(remove_owner_refs(ctx, n, &absent).await);
        }
    }

    // Owners being deleted in the foreground or orphaning.
    for owner in nodes.iter().filter(|n| n.deleting()) {
        let deps: Vec<&Node> = dependents
            .get(owner.uid())
            .map(|v| v.iter().map(|&i| &nodes[i]).collect())
            .unwrap_or_default();
        if owner.has_finalizer(ORPHAN) {
            let mut remaining = false;
            for d in &deps {
                remaining = true;
                note(remove_owner_refs(ctx, d, &[owner.uid()]).await);
            }
            if !remaining {
                note(remove_finalizer(ctx, owner, ORPHAN).await);
            }
        } else if owner.has_finalizer(FOREGROUND) {
            let mut blocking = false;
            for d in &deps {
                let blocks = d
                    .meta
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|r| r.uid == owner.uid() && r.block_owner_deletion == Some(true));
                blocking |= blocks;
                if !d.deleting() {
                    let policy = if d.kind.owns_others() {
                        PropagationPolicy::Foreground
                    } else {
                        PropagationPolicy::Background
                    };
                    note(delete(ctx, d, policy).await);
                }
            }
            if !blocking {
                note(remove_finalizer(ctx, owner, FOREGROUND).await);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(Action::RequeueAfter(RESYNC)),
    }
}

/// Whether the owner named by `r` is gone (live check). Unknown kinds count as present.
async fn owner_absent(ctx: &Context, r: &OwnerReference, ns: Option<&str>) -> Result<bool, Error> {
    let Some(kind) = Kind::of_ref(r) else {
        return Ok(false);
    };
    match dyn_api(ctx, kind, ns).get_opt(&r.name).await {
        Ok(None) => Ok(true),
        Ok(Some(o)) => Ok(o.metadata.uid.as_deref() != Some(r.uid.as_str())),
        Err(e) => Err(Error::Kube(e)),
    }
}

async fn delete(ctx: &Context, n: &Node, policy: PropagationPolicy) -> Result<(), Error> {
    let dp = DeleteParams {
        propagation_policy: Some(policy),
        preconditions: Some(Preconditions {
            uid: n.meta.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match dyn_api(ctx, n.kind, n.ns()).delete(n.name(), &dp).await {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 404) => Ok(()),
        Err(e) => Err(Error::api(e, n.name())),
    }
}

async fn remove_owner_refs(ctx: &Context, n: &Node, owner_uids: &[&str]) -> Result<(), Error> {
    let refs: Vec<&OwnerReference> = n
        .meta
        .owner_references
        .iter()
        .flatten()
        .filter(|r| !owner_uids.contains(&r.uid.as_str()))
        .collect();
    let patch = serde_json::json!({"metadata": {"ownerReferences": refs, "resourceVersion": n.meta.resource_version}});
    match dyn_api(ctx, n.kind, n.ns())
        .patch(n.name(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 404) => Ok(()),
        Err(e) => Err(Error::api(e, n.name())),
    }
}

async fn remove_finalizer(ctx: &Context, n: &Node, finalizer: &str) -> Result<(), Error> {
    let rest: Vec<&String> = n
        .meta
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != finalizer)
        .collect();
    let patch = serde_json::json!({"metadata": {"finalizers": rest, "resourceVersion": n.meta.resource_version}});
    match dyn_api(ctx, n.kind, n.ns())
        .patch(n.name(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 404) => Ok(()),
        Err(e) => Err(Error::api(e, n.name())),
    }
}
