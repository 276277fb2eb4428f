//! Plimsoll's scheduling loop: the orchestrator's kube-scheduler, with the core inside.
//!
//! It watches pods, nodes and PodGroups (`scheduling.x-k8s.io/v1alpha1`) through the API
//! and keeps a [`cache::Cache`] of the cluster. Unbound pods that are this scheduler's
//! (`schedulerName` empty, `default-scheduler`, `plimsoll` or `plimsoll-<policy>`) enter a
//! [`queue::Queue`]; pods arriving within a short *window* (default 200 ms) are placed
//! together through the core's [`Scheduler`](crate::place::scheduler::Scheduler) —
//! higher priorities first, each gang (pods labelled `scheduling.x-k8s.io/pod-group`,
//! at least the group's `minMember` placed together) all or nothing — with the
//! configured policy, or the one a pod names (`plimsoll.io/policy`, or
//! `schedulerName: plimsoll-<policy>`). Each placed pod is *assumed* in the cache and
//! bound through the `binding` subresource by a pool of concurrent binders; a bind that
//! fails is undone in the cache and retried after a back-off.
//!
//! A pod that cannot be placed gets `PodScheduled=False` (reason `Unschedulable`) with
//! kube-scheduler's message (`0/3 nodes are available: …`, from
//! [`explain`](crate::place::explain)) and a `FailedScheduling` event, and is parked until
//! the cluster changes. A pod of higher priority that does not fit may preempt: the
//! victims (fewest, then lowest priority) are chosen by a MILP
//! ([`crate::place::preempt`]), deleted, and the pod nominated
//! (`status.nominatedNodeName`); it is placed when they are gone.
//!
//! With [`SchedulerConfig::usage_aware`] (`--usage-aware`), pods are charged their
//! predicted peak usage instead of their requests where the agents' usage history
//! allows it (see [`usage`]).

pub mod cache;
pub mod queue;
pub mod usage;

use crate::extender::convert::{nodes_from_json, pod_from_json};
use crate::manifest::{POD_GROUP_LABEL, POD_GROUP_LABEL_LEGACY};
use crate::model::{Gang, Pod as ModelPod, Problem};
use crate::place::explain::explain;
use crate::place::PolicyOptions;
use crate::server::clock::OrchClock;
use crate::server::controllers::events::{reference, EventType, Recorder};
use crate::server::metrics::{Metrics, PolicyLabel, ResultLabel};
use cache::Cache;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use queue::{Backoff, Queue};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// The name pods use to ask for this scheduler (besides `default-scheduler`).
pub const SCHEDULER_NAME: &str = "plimsoll";
/// The pod annotation naming a policy for that pod.
pub const POLICY_ANNOTATION: &str = "plimsoll.io/policy";
/// The component name on events.
pub const COMPONENT: &str = "plimsoll-scheduler";

/// How the scheduling loop runs.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// The default policy (any online policy, or `milp`).
    pub policy: String,
    /// Policy options (`--objective`, the MILP's time limit, seed).
    pub options: PolicyOptions,
    /// Pods arriving within this window are placed together.
    pub window: Duration,
    /// Largest batch.
    pub max_batch: usize,
    /// Bindings in flight at once.
    pub bind_concurrency: usize,
    /// Retry back-off.
    pub backoff: Backoff,
    /// Whether higher-priority pods may preempt lower-priority ones.
    pub preemption: bool,
    /// Place by predicted peak usage instead of requests (`None`: by requests).
    pub usage_aware: Option<usage::UsageAwareConfig>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            policy: "best-fit".into(),
            options: PolicyOptions {
                time_limit_seconds: 2.0,
                ..PolicyOptions::default()
            },
            window: Duration::from_millis(200),
            max_batch: 5000,
            bind_concurrency: 64,
            backoff: Backoff::default(),
            preemption: true,
            usage_aware: None,
        }
    }
}

/// Why the loop could not start.
#[derive(Debug, thiserror::Error)]
pub enum SchedulingError {
    /// The configured policy is not valid.
    #[error("scheduler policy: {0}")]
    Policy(#[from] crate::place::PlaceError),
}

/// The policy a pod asks for: `None` if the pod belongs to another scheduler.
pub fn policy_of(pod: &Pod, default: &str) -> Option<String> {
    let name = pod
        .spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .unwrap_or("default-scheduler");
    let by_name = match name {
        "" | "default-scheduler" | SCHEDULER_NAME => default.to_string(),
        other => other.strip_prefix("plimsoll-")?.to_string(),
    };
    let by_annotation = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POLICY_ANNOTATION))
        .filter(|p| !p.is_empty())
        .cloned();
    Some(by_annotation.unwrap_or(by_name))
}

/// The PodGroup a pod belongs to (its label).
fn group_of(pod: &Pod) -> Option<String> {
    let labels = pod.metadata.labels.as_ref()?;
    labels
        .get(POD_GROUP_LABEL)
        .or_else(|| labels.get(POD_GROUP_LABEL_LEGACY))
        .filter(|g| !g.is_empty())
        .cloned()
}

/// The pod in Plimsoll's model, without its gang (the loop adds it from the PodGroup).
fn model_of(pod: &Pod) -> Result<ModelPod, String> {
    let mut v = serde_json::to_value(pod).map_err(|e| e.to_string())?;
    let mut group_labels = Vec::new();
    if let Some(labels) = v
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        for k in [POD_GROUP_LABEL, POD_GROUP_LABEL_LEGACY] {
            if let Some(Value::String(g)) = labels.remove(k) {
                group_labels.push((k.to_string(), g));
            }
        }
    }
    // The scheduler's own fields are not the manifest reader's business (the policy
    // annotation is read by `policy_of`).
    if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("nodeName");
    }
    if let Some(a) = v
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove(POLICY_ANNOTATION);
    }
    if let Some(obj) = v.as_object_mut() {
        obj.remove("status");
    }
    let raw = serde_json::value::to_raw_value(&v).map_err(|e| e.to_string())?;
    let mut m = pod_from_json(&raw, "pod").map_err(|e| e.to_string())?.pod;
    for (k, g) in group_labels {
        m.labels.insert(k, g);
    }
    Ok(m)
}

fn node_model(node: &Node) -> Result<crate::model::Node, String> {
    let raw = serde_json::value::to_raw_value(node).map_err(|e| e.to_string())?;
    nodes_from_json(&[raw], "node")
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| "no node read".to_string())
}

fn uid(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.uid.clone().unwrap_or_default()
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// A pod waiting for a decision.
struct Waiting {
    obj: Arc<Pod>,
    model: Result<ModelPod, String>,
    policy: String,
    group: Option<String>,
    seen_at: Duration,
    last_message: Option<String>,
    nominated: Option<String>,
}

struct BindJob {
    obj: Arc<Pod>,
    uid: String,
    namespace: String,
    name: String,
    node: String,
    policy: String,
    seen_at: Duration,
}

enum BindOutcome {
    Bound,
    /// The pod is gone or was bound by someone else: the watch will say which.
    Gone,
    Failed(String),
}

/// The scheduling loop's state.
struct Loop {
    client: kube::Client,
    config: SchedulerConfig,
    clock: OrchClock,
    metrics: Arc<Metrics>,
    recorder: Recorder,
    cache: Cache,
    queue: Queue,
    waiting: HashMap<String, Waiting>,
    groups: HashMap<(String, String), u32>,
    changed: bool,
    window_start: Option<Duration>,
    binds: Arc<Semaphore>,
    bind_tx: mpsc::UnboundedSender<(BindJob, BindOutcome)>,
    nodes_synced: bool,
    pods_synced: bool,
    groups_synced: bool,
    relist_nodes: Option<HashSet<String>>,
    relist_pods: Option<HashSet<String>>,
    usage: Option<usage::UsageState>,
}

/// Runs the scheduling loop until `shutdown` resolves.
pub async fn run(
    client: kube::Client,
    config: SchedulerConfig,
    clock: OrchClock,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), SchedulingError> {
    let cache = Cache::new(
        &config.policy,
        config.options.clone(),
        clock.mono().clone(),
        Duration::from_secs_f64(config.options.time_limit_seconds.max(0.0)),
    )?;
    let (bind_tx, mut bind_rx) = mpsc::unbounded_channel();
    let (usage_tx, mut usage_rx) = mpsc::channel::<usage::Predictions>(1);
    let usage_state = config.usage_aware.clone().map(usage::UsageState::new);
    let usage_task = config
        .usage_aware
        .clone()
        .map(|c| tokio::spawn(usage::poll(client.clone(), c, usage_tx.clone())));
    let recorder = Recorder::new(client.clone(), COMPONENT, clock.clone());
    let mut lp = Loop {
        binds: Arc::new(Semaphore::new(config.bind_concurrency.max(1))),
        queue: Queue::new(config.backoff),
        client: client.clone(),
        config,
        clock,
        metrics,
        recorder,
        cache,
        waiting: HashMap::new(),
        groups: HashMap::new(),
        changed: false,
        window_start: None,
        bind_tx,
        nodes_synced: false,
        pods_synced: false,
        groups_synced: false,
        relist_nodes: None,
        relist_pods: None,
        usage: usage_state,
    };
    let wc = watcher::Config::default();
    let mut pods = watcher(Api::<Pod>::all(client.clone()), wc.clone())
        .default_backoff()
        .boxed();
    let mut nodes = watcher(Api::<Node>::all(client.clone()), wc.clone())
        .default_backoff()
        .boxed();
    let pg = ApiResource {
        group: "scheduling.x-k8s.io".into(),
        version: "v1alpha1".into(),
        api_version: "scheduling.x-k8s.io/v1alpha1".into(),
        kind: "PodGroup".into(),
        plural: "podgroups".into(),
    };
    let mut groups = watcher(Api::<DynamicObject>::all_with(client, &pg), wc)
        .default_backoff()
        .boxed();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        let wake = lp.next_wake();
        let sleep = tokio::time::sleep(wake.unwrap_or(Duration::from_secs(3600)));
        tokio::select! {
            _ = &mut shutdown => break,
            Some((job, outcome)) = bind_rx.recv() => lp.on_bind(job, outcome),
            Some(p) = usage_rx.recv() => lp.on_predictions(p),
            Some(ev) = pods.next() => match ev {
                Ok(ev) => lp.on_pod_event(ev),
                Err(e) => tracing::warn!(error = %e, "pod watch"),
            },
            Some(ev) = nodes.next() => match ev {
                Ok(ev) => lp.on_node_event(ev),
                Err(e) => tracing::warn!(error = %e, "node watch"),
            },
            Some(ev) = groups.next() => match ev {
                Ok(ev) => lp.on_group_event(ev),
                Err(e) => tracing::debug!(error = %e, "podgroup watch"),
            },
            _ = sleep, if wake.is_some() => lp.cycle(),
            _ = tick.tick() => {
                let now = lp.clock.elapsed();
                lp.queue.flush(now);
            }
        }
        if lp.changed {
            lp.changed = false;
            let now = lp.clock.elapsed();
            lp.queue.cluster_changed(now);
        }
        lp.metrics
            .scheduler
            .pending_pods
            .set(lp.waiting.len() as i64);
    }
    if let Some(t) = usage_task {
        t.abort();
    }
    drop(usage_tx);
    Ok(())
}

impl Loop {
    fn synced(&self) -> bool {
        self.nodes_synced && self.pods_synced && self.groups_synced
    }

    /// How long until the next cycle should run, if one should.
    fn next_wake(&mut self) -> Option<Duration> {
        if !self.synced() {
            return None;
        }
        let now = self.clock.elapsed();
        if self.queue.active_len() > 0 {
            if self.queue.active_len() >= self.config.max_batch {
                return Some(Duration::ZERO);
            }
            let start = *self.window_start.get_or_insert(now);
            return Some((start + self.config.window).saturating_sub(now));
        }
        self.window_start = None;
        self.queue
            .next_due()
            .map(|due| due.saturating_sub(now).max(Duration::from_millis(1)))
    }

    fn on_node_event(&mut self, ev: Event<Node>) {
        match ev {
            Event::Init => self.relist_nodes = Some(HashSet::new()),
            Event::InitApply(n) => {
                if let Some(seen) = &mut self.relist_nodes {
                    seen.insert(n.metadata.name.clone().unwrap_or_default());
                }
                self.apply_node(&n);
            }
            Event::InitDone => {
                if let Some(seen) = self.relist_nodes.take() {
                    let known: Vec<String> = self
                        .cache
                        .scheduler()
                        .cluster()
                        .nodes()
                        .map(|(_, n)| n.name.clone())
                        .collect();
                    for name in known.into_iter().filter(|n| !seen.contains(n)) {
                        self.cache.remove_node(&name);
                        self.changed = true;
                    }
                }
                self.nodes_synced = true;
            }
            Event::Apply(n) => self.apply_node(&n),
            Event::Delete(n) => {
                let name = n.metadata.name.unwrap_or_default();
                self.cache.remove_node(&name);
                self.changed = true;
            }
        }
    }

    fn apply_node(&mut self, n: &Node) {
        match node_model(n) {
            Ok(model) => {
                if self.cache.upsert_node(model) {
                    self.changed = true;
                }
            }
            Err(e) => {
                tracing::warn!(node = ?n.metadata.name, error = %e, "node not usable by the scheduler")
            }
        }
    }

    fn on_group_event(&mut self, ev: Event<DynamicObject>) {
        let key = |o: &DynamicObject| {
            (
                o.metadata.namespace.clone().unwrap_or_default(),
                o.metadata.name.clone().unwrap_or_default(),
            )
        };
        match ev {
            Event::Init => self.groups.clear(),
            Event::InitDone => self.groups_synced = true,
            Event::Apply(o) | Event::InitApply(o) => {
                let min = o
                    .data
                    .pointer("/spec/minMember")
                    .and_then(Value::as_u64)
                    .unwrap_or(1)
                    .clamp(1, u32::MAX as u64) as u32;
                self.groups.insert(key(&o), min);
                self.changed = true;
            }
            Event::Delete(o) => {
                self.groups.remove(&key(&o));
            }
        }
    }

    fn on_pod_event(&mut self, ev: Event<Pod>) {
        match ev {
            Event::Init => self.relist_pods = Some(HashSet::new()),
            Event::InitApply(p) => {
                if let Some(seen) = &mut self.relist_pods {
                    seen.insert(uid(&p.metadata));
                }
                self.apply_pod(p);
            }
            Event::InitDone => {
                if let Some(seen) = self.relist_pods.take() {
                    let stale: Vec<String> = self
                        .waiting
                        .keys()
                        .filter(|u| !seen.contains(*u))
                        .cloned()
                        .collect();
                    for u in stale {
                        self.forget(&u);
                    }
                }
                self.pods_synced = true;
            }
            Event::Apply(p) => self.apply_pod(p),
            Event::Delete(p) => {
                let u = uid(&p.metadata);
                self.forget(&u);
                if let Some(us) = &mut self.usage {
                    us.forget(&u);
                }
                if self.cache.unbind(&u) {
                    self.changed = true;
                }
            }
        }
    }

    fn forget(&mut self, uid: &str) {
        self.queue.remove(uid);
        self.waiting.remove(uid);
    }

    fn apply_pod(&mut self, pod: Pod) {
        let u = uid(&pod.metadata);
        if is_terminal(&pod) {
            self.forget(&u);
            if let Some(us) = &mut self.usage {
                us.forget(&u);
            }
            if self.cache.unbind(&u) {
                self.changed = true;
            }
            return;
        }
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        if let Some(node) = node {
            self.forget(&u);
            match self.cache.bound(&u) {
                Some(b) if b.node == node => self.cache.confirm(&u),
                _ => match model_of(&pod) {
                    Ok(m) => {
                        let m = match &mut self.usage {
                            Some(us) => {
                                us.observe(&u, &pod, &m);
                                us.adjust(&u, m)
                            }
                            None => m,
                        };
                        if let Err(e) = self.cache.bind(&u, m, &node, Vec::new(), false) {
                            tracing::warn!(pod = %u, %node, error = %e, "bound pod not held in the scheduler's view");
                        }
                    }
                    Err(e) => tracing::warn!(pod = %u, error = %e, "bound pod not readable"),
                },
            }
            return;
        }
        if pod.metadata.deletion_timestamp.is_some() {
            self.forget(&u);
            return;
        }
        let Some(policy) = policy_of(&pod, self.cache.default_policy()) else {
            self.forget(&u);
            return;
        };
        if self.cache.bound(&u).is_some() {
            return; // assumed: the binding is in flight
        }
        let obj = Arc::new(pod);
        if let Some(w) = self.waiting.get_mut(&u) {
            w.obj = obj;
            return;
        }
        let model = model_of(&obj);
        if let (Some(us), Ok(m)) = (&mut self.usage, &model) {
            us.observe(&u, &obj, m);
        }
        let group = group_of(&obj);
        self.waiting.insert(
            u.clone(),
            Waiting {
                obj,
                model,
                policy,
                group,
                seen_at: self.clock.elapsed(),
                last_message: None,
                nominated: None,
            },
        );
        self.queue.add(&u);
    }

    /// One batch: take the ready pods, place them policy by policy, bind the placed,
    /// explain (and maybe preempt for) the rest.
    fn cycle(&mut self) {
        let now = self.clock.elapsed();
        self.window_start = None;
        let waiting = &self.waiting;
        let taken = self.queue.take(now, self.config.max_batch, |u| {
            let w = waiting.get(u)?;
            let ns = w.obj.metadata.namespace.clone().unwrap_or_default();
            w.group.as_ref().map(|g| format!("{ns}/{g}"))
        });
        if taken.is_empty() {
            return;
        }
        self.metrics
            .scheduler
            .batch_size
            .observe(taken.len() as f64);
        let mut by_policy: BTreeMap<String, Vec<(String, ModelPod)>> = BTreeMap::new();
        for u in taken {
            let Some(w) = self.waiting.get(&u) else {
                self.queue.remove(&u);
                continue;
            };
            let mut model = match &w.model {
                Ok(m) => match &self.usage {
                    Some(us) => us.adjust(&u, m.clone()),
                    None => m.clone(),
                },
                Err(e) => {
                    let msg = format!("the pod cannot be scheduled: {e}");
                    self.unschedulable(&u, msg, now);
                    continue;
                }
            };
            if let Some(g) = &w.group {
                let ns = w.obj.metadata.namespace.clone().unwrap_or_default();
                match self.groups.get(&(ns.clone(), g.clone())) {
                    Some(&min) => {
                        model.gang = Some(Gang {
                            name: g.clone(),
                            min_member: min,
                        })
                    }
                    None => {
                        let msg = format!("PodGroup {ns}/{g} not found");
                        self.unschedulable(&u, msg, now);
                        continue;
                    }
                }
            }
            by_policy
                .entry(w.policy.clone())
                .or_default()
                .push((u, model));
        }
        for (policy, pods) in by_policy {
            self.place(&policy, pods, now);
        }
    }

    fn place(&mut self, policy: &str, pods: Vec<(String, ModelPod)>, now: Duration) {
        let models: Vec<ModelPod> = pods.iter().map(|(_, m)| m.clone()).collect();
        let uids: Vec<String> = pods.iter().map(|(u, _)| u.clone()).collect();
        let (placed, decision) = match self.cache.place(policy, pods) {
            Ok(r) => r,
            Err(e) => {
                for u in &uids {
                    self.metrics
                        .scheduler
                        .attempts
                        .get_or_create(&ResultLabel {
                            result: "error".into(),
                        })
                        .inc();
                    self.unschedulable(u, format!("policy {policy}: {e}"), now);
                }
                return;
            }
        };
        if let Some(gap) = decision.stats.gap {
            self.metrics.scheduler.milp_gap.set(gap);
        }
        if decision.stats.objective.is_some() {
            self.metrics
                .scheduler
                .milp_solve_seconds
                .observe(decision.stats.solve_seconds);
        }
        let mut left = Vec::new();
        for ((u, m), p) in uids.into_iter().zip(models).zip(placed) {
            match p {
                Some((node, _)) => self.bind(u, node, policy),
                None => left.push((u, m)),
            }
        }
        if left.is_empty() {
            return;
        }
        let Some(sched) = self.cache.scheduler_of(policy) else {
            return;
        };
        let problem = Problem {
            cluster: sched.cluster().clone(),
            pending: left.iter().map(|(_, m)| m.clone()).collect(),
        };
        let explanations = explain(&problem, &[]);
        let mut summary: HashMap<usize, String> = explanations
            .into_iter()
            .map(|e| (e.pending_index, e.summary))
            .collect();
        for (i, (u, m)) in left.into_iter().enumerate() {
            let msg = summary
                .remove(&i)
                .unwrap_or_else(|| format!("0/{} nodes are available.", self.cache.node_count()));
            self.metrics
                .scheduler
                .attempts
                .get_or_create(&ResultLabel {
                    result: "unschedulable".into(),
                })
                .inc();
            if self.config.preemption {
                self.maybe_preempt(&u, &m, policy);
            }
            self.unschedulable(&u, msg, now);
        }
    }

    /// New usage predictions: re-charge the bound pods, and retry the parked ones if
    /// what the scheduler sees changed.
    fn on_predictions(&mut self, p: usage::Predictions) {
        let Some(us) = &mut self.usage else { return };
        let pending: HashSet<String> = self.waiting.keys().cloned().collect();
        let (changed, predicted) = us.refresh(p, &mut self.cache, &pending);
        self.metrics
            .scheduler
            .usage_predicted_pods
            .set(predicted as i64);
        if changed {
            self.changed = true;
        }
    }

    fn bind(&mut self, u: String, node: String, policy: &str) {
        let Some(w) = self.waiting.get(&u) else {
            self.cache.unbind(&u);
            return;
        };
        let job = BindJob {
            obj: w.obj.clone(),
            uid: u,
            namespace: w.obj.metadata.namespace.clone().unwrap_or_default(),
            name: w.obj.metadata.name.clone().unwrap_or_default(),
            node,
            policy: policy.to_string(),
            seen_at: w.seen_at,
        };
        let client = self.client.clone();
        let sem = self.binds.clone();
        let tx = self.bind_tx.clone();
        tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            let api: Api<Pod> = Api::namespaced(client, &job.namespace);
            let body = json!({
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": job.name, "uid": job.uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": job.node},
            });
            let outcome = match api
                .create_subresource::<Value, Value>(
                    "binding",
                    &job.name,
                    &PostParams::default(),
                    &body,
                )
                .await
            {
                Ok(_) => BindOutcome::Bound,
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => BindOutcome::Gone,
                Err(e) => BindOutcome::Failed(e.to_string()),
            };
            let _ = tx.send((job, outcome));
        });
    }

    fn on_bind(&mut self, job: BindJob, outcome: BindOutcome) {
        let now = self.clock.elapsed();
        match outcome {
            BindOutcome::Bound => {
                let m = &self.metrics.scheduler;
                m.attempts
                    .get_or_create(&ResultLabel {
                        result: "scheduled".into(),
                    })
                    .inc();
                m.placements
                    .get_or_create(&PolicyLabel {
                        policy: job.policy.clone(),
                    })
                    .inc();
                m.e2e_latency
                    .observe(now.saturating_sub(job.seen_at).as_secs_f64());
                self.cache.confirm(&job.uid);
                self.forget(&job.uid);
                let rec = self.recorder.clone();
                tokio::spawn(async move {
                    let msg = format!(
                        "Successfully assigned {}/{} to {}",
                        job.namespace, job.name, job.node
                    );
                    rec.record(&*job.obj, EventType::Normal, "Scheduled", &msg)
                        .await
                });
            }
            BindOutcome::Gone => {
                if self.cache.bound(&job.uid).is_some_and(|b| b.assumed) {
                    self.cache.unbind(&job.uid);
                }
                self.forget(&job.uid);
                self.changed = true;
            }
            BindOutcome::Failed(e) => {
                tracing::warn!(pod = %format!("{}/{}", job.namespace, job.name), node = %job.node, error = %e, "binding failed");
                self.metrics
                    .scheduler
                    .attempts
                    .get_or_create(&ResultLabel {
                        result: "error".into(),
                    })
                    .inc();
                self.cache.unbind(&job.uid);
                self.changed = true;
                if self.waiting.contains_key(&job.uid) {
                    self.queue.retry(&job.uid, now);
                    if let Some(w) = self.waiting.get(&job.uid) {
                        let obj = w.obj.clone();
                        let rec = self.recorder.clone();
                        let msg = format!("Binding rejected: {e}");
                        tokio::spawn(async move {
                            rec.record(&*obj, EventType::Warning, "FailedScheduling", &msg)
                                .await
                        });
                    }
                }
            }
        }
    }

    /// Parks a pod that could not be placed, and tells the user why (once per distinct
    /// message on the pod's condition; every attempt as an event, aggregated).
    fn unschedulable(&mut self, u: &str, msg: String, now: Duration) {
        self.queue.unschedulable(u, now);
        let Some(w) = self.waiting.get_mut(u) else {
            return;
        };
        let obj = w.obj.clone();
        let write_condition = w.last_message.as_deref() != Some(msg.as_str());
        w.last_message = Some(msg.clone());
        let client = self.client.clone();
        let rec = self.recorder.clone();
        let when = self.clock.now_k8s();
        tokio::spawn(async move {
            rec.record(&*obj, EventType::Warning, "FailedScheduling", &msg)
                .await;
            if write_condition {
                let ns = obj.metadata.namespace.clone().unwrap_or_default();
                let name = obj.metadata.name.clone().unwrap_or_default();
                let api: Api<Pod> = Api::namespaced(client, &ns);
                let patch = json!({"status": {"conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": msg, "lastProbeTime": null, "lastTransitionTime": when,
                }]}});
                if let Err(e) = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                    .await
                {
                    tracing::debug!(pod = %format!("{ns}/{name}"), error = %e, "condition not written");
                }
            }
        });
    }

    /// kube-scheduler's PostFilter: if evicting lower-priority pods lets this pod fit,
    /// delete the victims the MILP chose and nominate the node.
    fn maybe_preempt(&mut self, u: &str, m: &ModelPod, policy: &str) {
        let Some(w) = self.waiting.get(u) else { return };
        if w.nominated.is_some() || m.gang.is_some() {
            return;
        }
        let never = w
            .obj
            .spec
            .as_ref()
            .and_then(|s| s.preemption_policy.as_deref())
            == Some("Never");
        if never {
            return;
        }
        let Some(sched) = self.cache.scheduler_of(policy) else {
            return;
        };
        let deadline = sched.deadline();
        let choice = match crate::place::preempt::choose_victims(sched.cluster(), m, &deadline) {
            Ok(Some(c)) if !c.victims.is_empty() => c,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(pod = %u, error = %e, "preemption failed");
                return;
            }
        };
        let node = sched.cluster()[choice.node].name.clone();
        let victims: Vec<(String, String)> = choice
            .victims
            .iter()
            .filter_map(|&id| {
                let (p, _) = sched.cluster().pod(id)?;
                Some((p.namespace.clone(), p.name.clone()))
            })
            .collect();
        let victim_uids: Vec<Option<String>> = victims
            .iter()
            .map(|(ns, n)| self.cache.uid_of(&format!("{ns}/{n}")).map(str::to_string))
            .collect();
        self.metrics
            .scheduler
            .preemption_victims
            .inc_by(victims.len() as u64);
        let obj = w.obj.clone();
        if let Some(w) = self.waiting.get_mut(u) {
            w.nominated = Some(node.clone());
        }
        let client = self.client.clone();
        let rec = self.recorder.clone();
        tokio::spawn(async move {
            let ns = obj.metadata.namespace.clone().unwrap_or_default();
            let name = obj.metadata.name.clone().unwrap_or_default();
            let preemptor = obj.metadata.uid.clone().unwrap_or_default();
            for ((vns, vname), vuid) in victims.iter().zip(victim_uids) {
                let api: Api<Pod> = Api::namespaced(client.clone(), vns);
                let mut dp = DeleteParams::default();
                if let Some(vuid) = vuid {
                    dp = dp.preconditions(kube::api::Preconditions {
                        uid: Some(vuid),
                        resource_version: None,
                    });
                }
                if let Ok(victim) = api.get(vname).await {
                    rec.record(
                        &victim,
                        EventType::Normal,
                        "Preempted",
                        &format!("Preempted by pod {preemptor} on node {node}"),
                    )
                    .await;
                }
                if let Err(e) = api.delete(vname, &dp).await {
                    tracing::debug!(victim = %format!("{vns}/{vname}"), error = %e, "victim not deleted");
                }
            }
            let api: Api<Pod> = Api::namespaced(client, &ns);
            let patch = json!({"status": {"nominatedNodeName": node}});
            let _ = api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
            let _ = reference(&*obj);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn which_pods_are_ours_and_with_which_policy() {
        let p = pod(json!({"metadata": {"name": "a"}, "spec": {"containers": []}}));
        assert_eq!(policy_of(&p, "best-fit").as_deref(), Some("best-fit"));
        let p = pod(
            json!({"metadata": {"name": "a"}, "spec": {"schedulerName": "plimsoll-fgd", "containers": []}}),
        );
        assert_eq!(policy_of(&p, "best-fit").as_deref(), Some("fgd"));
        let p = pod(
            json!({"metadata": {"name": "a", "annotations": {"plimsoll.io/policy": "milp"}},
            "spec": {"schedulerName": "plimsoll", "containers": []}}),
        );
        assert_eq!(policy_of(&p, "best-fit").as_deref(), Some("milp"));
        let p = pod(
            json!({"metadata": {"name": "a"}, "spec": {"schedulerName": "volcano", "containers": []}}),
        );
        assert_eq!(policy_of(&p, "best-fit"), None);
    }

    #[test]
    fn a_live_pod_reads_as_the_model_with_its_group_label_kept() {
        let p = pod(json!({
            "metadata": {"name": "w", "namespace": "ml", "uid": "u",
                "labels": {"scheduling.x-k8s.io/pod-group": "g", "app": "x"}},
            "spec": {"nodeName": "", "containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]},
            "status": {"phase": "Pending"}
        }));
        let m = model_of(&p).unwrap();
        assert_eq!(m.key(), "ml/w");
        // The policy annotation is the scheduler's, not the manifest reader's.
        let mut q = p.clone();
        q.metadata.annotations = Some([(POLICY_ANNOTATION.to_string(), "fgd".to_string())].into());
        assert_eq!(model_of(&q).unwrap().key(), "ml/w");
        assert_eq!(policy_of(&q, "best-fit").as_deref(), Some("fgd"));
        assert_eq!(m.requests.cpu_milli, 500);
        assert_eq!(m.labels.get(POD_GROUP_LABEL).map(String::as_str), Some("g"));
        assert_eq!(group_of(&p).as_deref(), Some("g"));
    }
}
