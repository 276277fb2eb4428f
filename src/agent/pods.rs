//! Pods as the kubelet runs them: one worker per pod bound to the node turns its spec
//! into containers through the runtime and writes its status.
//!
//! Each sync of a pod (on every change heard through the watch, and every
//! `sync_interval`):
//! - its volumes are materialised ([`super::volumes`]);
//! - init containers run one after the other, each to success, before any regular one;
//! - a container that is not there is started (its image must be on the node: there is
//!   no registry to pull from, so an absent image gives `ErrImagePull`, then
//!   `ImagePullBackOff`; with `imagePullPolicy: Never`, `ErrImageNeverPull`);
//! - a container that ended is restarted as `restartPolicy` says, after kube's
//!   exponential back-off (10 s doubling to 5 min, nothing for the first restart, reset
//!   after 10 minutes of running), shown as `CrashLoopBackOff`;
//! - probes run ([`super::probes`]): liveness failures restart the container, readiness
//!   sets its `ready`, a startup probe holds the others back;
//! - the status — phase, conditions, container states with reasons and exit codes
//!   (`OOMKilled` when the kernel killed it for its memory limit), restart counts — is
//!   written when it changed.
//!
//! A pod marked for deletion has its containers stopped (SIGTERM, then SIGKILL after the
//! grace period) and is then deleted for good; a pod that vanished from the API while
//! the agent was away has its containers stopped and removed when the agent sees them.

use super::probes::{ProbeKind, ProbeTracker};
use super::runtime::{
    ContainerInfo, ContainerKind, ContainerSpec, ContainerState, Exit, PodNetworkRef, PodRef,
    Resources,
};
use super::volumes;
use super::{AgentError, Shared};
use crate::server::controllers::events::EventType;
use crate::server::controllers::runtime as watchrt;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::watcher;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// The first restart back-off after the immediate restart (kubelet: 10 s).
pub const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// The longest restart back-off (kubelet: 5 min).
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How long a failed pull shows as `ErrImagePull` before `ImagePullBackOff`.
const PULL_ERROR_SHOWN: Duration = Duration::from_secs(5);
/// A container that ran this long before ending restarts without back-off.
pub const BACKOFF_RESET: Duration = Duration::from_secs(600);

/// How long to wait before restarting a container that ended, given how many times it
/// was started before (`attempt`) and how long it ran: nothing for the first restart,
/// then 10 s, 20 s, 40 s … up to 5 min; nothing after a run of 10 minutes or more.
pub fn restart_backoff(attempt: u32, ran: Duration) -> Duration {
    if attempt == 0 || ran >= BACKOFF_RESET {
        return Duration::ZERO;
    }
    let factor = 2u32.saturating_pow(attempt - 1);
    BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_MAX)
}

/// Runs the pod workers until `stop`.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), AgentError> {
    let api: Api<Pod> = Api::all(shared.client.clone());
    let config =
        watcher::Config::default().fields(&format!("spec.nodeName={}", shared.config.node_name));
    let watched = watchrt::watch(api, config);
    let store = watched.store;
    let mut stream = watched.stream;
    let (poke_tx, mut poke_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Some(pod) = stream.next().await {
            if let Some(uid) = pod.metadata.uid.clone() {
                if poke_tx.send(uid).is_err() {
                    break;
                }
            }
        }
    });
    tokio::select! {
        _ = super::stopped(&mut stop) => return Ok(()),
        r = store.wait_until_ready() => if r.is_err() { return Ok(()) },
    }
    tracing::info!("pods of this node listed; syncing");
    let mut workers: HashMap<String, Worker> = HashMap::new();
    let mut tick = tokio::time::interval(shared.config.sync_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = super::stopped(&mut stop) => break,
            _ = tick.tick() => {}
            Some(_) = poke_rx.recv() => {
                while poke_rx.try_recv().is_ok() {}
            }
        }
        workers.retain(|_, (_, h)| !h.is_finished());
        let pods: BTreeMap<String, Arc<Pod>> = store
            .state()
            .into_iter()
            .filter_map(|p| Some((p.metadata.uid.clone()?, p)))
            .collect();
        for (uid, pod) in &pods {
            match workers.get(uid) {
                Some((tx, _)) => {
                    // The worker always gets the latest object, but is woken only by
                    // changes of the spec or deletion, not by its own status writes.
                    tx.send_if_modified(|old| {
                        let wake = old.as_ref().is_none_or(|o| {
                            o.spec != pod.spec
                                || o.metadata.deletion_timestamp != pod.metadata.deletion_timestamp
                        });
                        *old = Some(pod.clone());
                        wake
                    });
                }
                None => {
                    let (tx, rx) = watch::channel(Some(pod.clone()));
                    let h = tokio::spawn(worker(shared.clone(), uid.clone(), rx, stop.clone()));
                    workers.insert(uid.clone(), (tx, h));
                }
            }
        }
        // Pods gone from the API: tell their workers, and find containers of pods the
        // agent never saw (deleted while it was down).
        for (uid, (tx, _)) in &workers {
            if !pods.contains_key(uid) && tx.borrow().is_some() {
                let _ = tx.send(None);
            }
        }
        match shared.runtime.list().await {
            Ok(list) => {
                let attached = shared
                    .network
                    .get()
                    .map(|n| n.attachments())
                    .unwrap_or_default();
                let orphans: std::collections::BTreeSet<String> = list
                    .iter()
                    .map(|c| c.pod.uid.clone())
                    .chain(attached.into_iter().map(|a| a.uid))
                    .filter(|uid| !pods.contains_key(uid) && !workers.contains_key(uid))
                    .collect();
                for uid in orphans {
                    let (tx, rx) = watch::channel(None);
                    let h = tokio::spawn(worker(shared.clone(), uid.clone(), rx, stop.clone()));
                    workers.insert(uid, (tx, h));
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing containers failed"),
        }
    }
    Ok(())
}

/// A pod worker: the latest pod object (`None` once it left the API) and its task.
type Worker = (watch::Sender<Option<Arc<Pod>>>, tokio::task::JoinHandle<()>);

/// Why a container is not running, as its `waiting` state shows it.
#[derive(Debug, Clone, PartialEq)]
struct Waiting {
    reason: String,
    message: String,
}

/// What a worker remembers between syncs.
#[derive(Default)]
struct PodState {
    /// Per container name: why it waits (image, configuration, start errors).
    waiting: HashMap<String, Waiting>,
    /// Per image: when the next pull may be tried and the current back-off.
    pull_backoff: HashMap<String, (Instant, Duration)>,
    /// Probes of the running containers, by (container, attempt).
    probes: HashMap<(String, u32), ProbeTracker>,
    /// The status last written.
    last_status: Option<Value>,
    /// The first time the agent saw the pod (its `startTime` if it had none).
    start_time: Option<String>,
    /// Events already recorded, by key, so one start is told once.
    told: std::collections::HashSet<String>,
}

async fn worker(
    shared: Arc<Shared>,
    uid: String,
    mut rx: watch::Receiver<Option<Arc<Pod>>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut state = PodState::default();
    let mut last_pod: Option<Arc<Pod>> = None;
    loop {
        let pod = rx.borrow_and_update().clone();
        let containers: Vec<ContainerInfo> = match shared.runtime.list().await {
            Ok(list) => list.into_iter().filter(|c| c.pod.uid == uid).collect(),
            Err(e) => {
                tracing::warn!(%uid, error = %e, "listing containers failed");
                Vec::new()
            }
        };
        match pod {
            None => {
                let grace = last_pod
                    .as_ref()
                    .and_then(|p| p.metadata.deletion_grace_period_seconds)
                    .unwrap_or(0);
                if teardown(&shared, &uid, &containers, grace, last_pod.as_deref()).await {
                    return;
                }
            }
            Some(p) if p.metadata.deletion_timestamp.is_some() => {
                let grace = p
                    .metadata
                    .deletion_grace_period_seconds
                    .or_else(|| {
                        p.spec
                            .as_ref()
                            .and_then(|s| s.termination_grace_period_seconds)
                    })
                    .unwrap_or(30);
                for c in containers
                    .iter()
                    .filter(|c| c.state == ContainerState::Running)
                {
                    let msg = format!("Stopping container {}", c.name);
                    state
                        .tell(&shared, &p, EventType::Normal, "Killing", &msg, None)
                        .await;
                }
                if teardown(&shared, &uid, &containers, grace, Some(&*p)).await {
                    let api: Api<Pod> = Api::namespaced(
                        shared.client.clone(),
                        p.metadata.namespace.as_deref().unwrap_or("default"),
                    );
                    let dp = DeleteParams {
                        grace_period_seconds: Some(0),
                        preconditions: Some(Preconditions {
                            uid: Some(uid.clone()),
                            resource_version: None,
                        }),
                        ..Default::default()
                    };
                    match api
                        .delete(p.metadata.name.as_deref().unwrap_or_default(), &dp)
                        .await
                    {
                        Ok(_) => return,
                        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => return,
                        Err(e) => tracing::warn!(%uid, error = %e, "deleting a stopped pod failed"),
                    }
                }
                last_pod = Some(p);
            }
            Some(p) => {
                if let Err(e) = sync(&shared, &p, &containers, &mut state).await {
                    tracing::warn!(%uid, error = %e, "pod sync failed");
                }
                last_pod = Some(p);
            }
        }
        tokio::select! {
            _ = super::stopped(&mut stop) => return,
            r = rx.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(shared.config.sync_interval) => {}
        }
    }
}

/// Runs container `c`'s `preStop` hook, if it has one, for at most `grace`.
async fn pre_stop(shared: &Shared, c: &ContainerInfo, pod: Option<&Pod>, grace: Duration) {
    let Some(hook) = pod
        .and_then(|p| p.spec.as_ref())
        .and_then(|s| s.containers.iter().find(|x| x.name == c.name))
        .and_then(|x| x.lifecycle.as_ref())
        .and_then(|l| l.pre_stop.as_ref())
    else {
        return;
    };
    if let Some(sleep) = &hook.sleep {
        let secs = Duration::from_secs(sleep.seconds.max(0) as u64).min(grace);
        tracing::debug!(container = %c.name, ?secs, "preStop sleep");
        tokio::time::sleep(secs).await;
    } else if let Some(exec) = hook.exec.as_ref().and_then(|e| e.command.as_ref()) {
        match shared.runtime.exec(&c.id, exec, grace).await {
            Ok(out) if out.exit_code == Some(0) => {}
            Ok(out) => {
                tracing::warn!(container = %c.name, code = ?out.exit_code, output = %out.output, "preStop hook failed")
            }
            Err(e) => tracing::warn!(container = %c.name, error = %e, "preStop hook failed"),
        }
    } else {
        tracing::warn!(container = %c.name, "preStop hook: only sleep and exec are supported; skipped");
    }
}

/// The runtime's reference to `pod`.
fn pod_ref(pod: &Pod) -> PodRef {
    PodRef {
        namespace: pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
    }
}

/// The pod's place on the node's pod network (attaching it on first use), or `None`
/// when the node has none or the pod asks for the host's network.
async fn pod_network(shared: &Shared, pod: &Pod) -> Result<Option<PodNetworkRef>, String> {
    let Some(net) = shared.network.get() else {
        return Ok(None);
    };
    if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
        return Ok(None);
    }
    let a = net.attach(&pod_ref(pod)).await?;
    Ok(Some(PodNetworkRef {
        netns: a.netns,
        ip: a.ip,
    }))
}

/// The pod's address: on the pod network if the node has one (none yet before the pod
/// is attached), else the node's.
async fn pod_ip(shared: &Shared, pod: &Pod) -> Option<String> {
    let host_network = pod.spec.as_ref().and_then(|s| s.host_network) == Some(true);
    let uid = pod.metadata.uid.as_deref()?;
    if host_network {
        return Some(shared.config.address.to_string());
    }
    if let Some(net) = shared.network.get() {
        return net.lookup(uid).map(|a| a.ip.to_string());
    }
    if shared.runtime_network.get().is_some() {
        return match shared.runtime.pod_address(uid).await {
            Ok(ip) => ip.map(|ip| ip.to_string()),
            Err(e) => {
                tracing::warn!(%uid, error = %e, "the pod's address");
                None
            }
        };
    }
    Some(shared.config.address.to_string())
}

/// Stops every container of pod `uid` (grace in seconds) and removes them and the pod's
/// directory; `true` when all is gone.
///
/// A running container with a `lifecycle.preStop` hook runs it first (`sleep`, or `exec`
/// in the container; `httpGet` is not supported and is skipped with a warning), within
/// the grace period, which the stop then gets what is left of: what lets a server finish
/// its requests while the Service's endpoints forget it.
async fn teardown(
    shared: &Shared,
    uid: &str,
    containers: &[ContainerInfo],
    grace: i64,
    pod: Option<&Pod>,
) -> bool {
    let grace = Duration::from_secs(grace.max(0) as u64);
    let stops = containers
        .iter()
        .filter(|c| matches!(c.state, ContainerState::Running | ContainerState::Created))
        .map(|c| async move {
            let started = Instant::now();
            if c.state == ContainerState::Running && c.kind == ContainerKind::Regular {
                pre_stop(shared, c, pod, grace).await;
            }
            let left = grace.saturating_sub(started.elapsed());
            shared.runtime.stop(&c.id, left).await
        });
    let mut ok = true;
    for r in futures::future::join_all(stops).await {
        if let Err(e) = r {
            tracing::warn!(%uid, error = %e, "stopping a container failed");
            ok = false;
        }
    }
    if !ok {
        return false;
    }
    for c in containers {
        if let Err(e) = shared.runtime.remove(&c.id).await {
            tracing::warn!(%uid, error = %e, "removing a container failed");
            ok = false;
        }
    }
    if let Some(net) = shared.network.get() {
        if let Err(e) = net.detach(uid).await {
            tracing::warn!(%uid, error = %e, "taking the pod off the network failed");
            return false;
        }
    }
    let dir = volumes::pod_dir(&shared.config.state_dir, uid);
    if dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(%uid, dir = %dir.display(), error = %e, "removing the pod directory failed");
        }
    }
    ok
}

impl PodState {
    /// Records an event once per `key` (every time when `key` is `None`).
    async fn tell(
        &mut self,
        shared: &Shared,
        pod: &Pod,
        kind: EventType,
        reason: &str,
        message: &str,
        key: Option<String>,
    ) {
        if let Some(k) = key {
            if !self.told.insert(k) {
                return;
            }
        }
        shared.recorder.record(pod, kind, reason, message).await;
    }
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// Containers of one name, oldest attempt first.
fn by_name<'a>(
    containers: &'a [ContainerInfo],
    name: &str,
    kind: ContainerKind,
) -> Vec<&'a ContainerInfo> {
    let mut v: Vec<&ContainerInfo> = containers
        .iter()
        .filter(|c| c.name == name && c.kind == kind)
        .collect();
    v.sort_by_key(|c| c.attempt);
    v
}

fn exit_of(c: &ContainerInfo) -> Option<Exit> {
    match &c.state {
        ContainerState::Exited(e) => Some(e.clone()),
        ContainerState::Unknown(_) => Some(Exit {
            exit_code: 137,
            signal: None,
            oom_killed: false,
            finished_at: c.started_at.unwrap_or(SystemTime::UNIX_EPOCH),
        }),
        _ => None,
    }
}

/// Whether an ended container restarts under the pod's policy.
fn restarts(policy: &str, kind: ContainerKind, exit: &Exit) -> bool {
    match (policy, kind) {
        ("Never", _) => false,
        (_, ContainerKind::Init) => exit.exit_code != 0,
        ("OnFailure", _) => exit.exit_code != 0,
        _ => true,
    }
}

/// When an ended container may restart.
fn restart_due(c: &ContainerInfo, exit: &Exit) -> SystemTime {
    let ran = c
        .started_at
        .and_then(|s| exit.finished_at.duration_since(s).ok())
        .unwrap_or_default();
    exit.finished_at + restart_backoff(c.attempt, ran)
}

fn millis(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> Option<u64> {
    q.and_then(|q| crate::model::quantity::Quantity::parse_milli(&q.0).ok())
}

fn bytes(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> Option<u64> {
    q.and_then(|q| crate::model::quantity::Quantity::parse_units(&q.0).ok())
}

fn resources_of(c: &Container) -> Resources {
    let r = c.resources.as_ref();
    let limits = r.and_then(|r| r.limits.as_ref());
    let requests = r.and_then(|r| r.requests.as_ref());
    let cpu_limit = millis(limits.and_then(|l| l.get("cpu")));
    Resources {
        cpu_limit_millis: cpu_limit,
        cpu_request_millis: millis(requests.and_then(|l| l.get("cpu"))).or(cpu_limit),
        memory_limit_bytes: bytes(limits.and_then(|l| l.get("memory"))),
    }
}

fn rfc3339(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn pod_label(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

/// Starts `c` as attempt `attempt`; on failure records why it waits.
async fn start(
    shared: &Shared,
    pod: &Pod,
    c: &Container,
    kind: ContainerKind,
    attempt: u32,
    state: &mut PodState,
) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let image = c.image.clone().unwrap_or_default();
    let policy = c.image_pull_policy.as_deref().unwrap_or(
        if image.ends_with(":latest") || !image.contains(':') {
            "Always"
        } else {
            "IfNotPresent"
        },
    );
    let present = shared.runtime.has_image(&image).await;
    match present {
        Ok(true) => {
            let msg = format!("Container image {image:?} already present on machine");
            let key = Some(format!("pulled/{}/{attempt}", c.name));
            state
                .tell(shared, pod, EventType::Normal, "Pulled", &msg, key)
                .await;
        }
        Ok(false) if policy == "Never" => {
            let msg = format!("Container image {image:?} is not present with pull policy of Never");
            state.waiting.insert(
                c.name.clone(),
                Waiting {
                    reason: "ErrImageNeverPull".into(),
                    message: msg.clone(),
                },
            );
            let key = Some(format!("neverpull/{}", c.name));
            state
                .tell(
                    shared,
                    pod,
                    EventType::Warning,
                    "ErrImageNeverPull",
                    &msg,
                    key,
                )
                .await;
            return;
        }
        Ok(false) | Err(_) => {
            let now = Instant::now();
            let entry = state.pull_backoff.get(&image).copied();
            if let Some((next, delay)) = entry {
                // The failed pull shows as ErrImagePull for a few seconds (the kubelet's
                // next sync), then as ImagePullBackOff until the next try.
                if now < next && now < next - delay + PULL_ERROR_SHOWN {
                    return;
                }
                if now < next {
                    let msg = format!("Back-off pulling image {image:?}");
                    state.waiting.insert(
                        c.name.clone(),
                        Waiting {
                            reason: "ImagePullBackOff".into(),
                            message: msg.clone(),
                        },
                    );
                    let key = Some(format!("pullbackoff/{image}/{next:?}"));
                    state
                        .tell(shared, pod, EventType::Normal, "BackOff", &msg, key)
                        .await;
                    return;
                }
            }
            let delay = entry.map_or(BACKOFF_BASE, |(_, d)| (d * 2).min(BACKOFF_MAX));
            state
                .pull_backoff
                .insert(image.clone(), (now + delay, delay));
            let why = match present {
                Err(e) => e.to_string(),
                _ => format!(
                    "the image is not on node {} and no registry is reachable from it (import it: plimsoll image import, or docker load)",
                    shared.config.node_name
                ),
            };
            let msg = format!("failed to pull image {image:?}: {why}");
            state.waiting.insert(
                c.name.clone(),
                Waiting {
                    reason: "ErrImagePull".into(),
                    message: msg.clone(),
                },
            );
            let event = format!("Failed to pull image {image:?}: {msg}");
            state
                .tell(shared, pod, EventType::Warning, "Failed", &event, None)
                .await;
            return;
        }
    }
    state.pull_backoff.remove(&image);
    let config_err = |state: &mut PodState, e: String| {
        state.waiting.insert(
            c.name.clone(),
            Waiting {
                reason: "CreateContainerConfigError".into(),
                message: e,
            },
        );
    };
    if let Err(e) = volumes::prepare(&shared.client, &shared.config.state_dir, pod).await {
        config_err(state, e.to_string());
        state
            .tell(
                shared,
                pod,
                EventType::Warning,
                "Failed",
                &format!("Error: {e}"),
                Some(format!("cfg/{}/{e}", c.name)),
            )
            .await;
        return;
    }
    let host_ip = shared.config.address.to_string();
    let env = match volumes::env(&shared.client, pod, c, &host_ip).await {
        Ok(env) => env,
        Err(e) => {
            config_err(state, e.to_string());
            state
                .tell(
                    shared,
                    pod,
                    EventType::Warning,
                    "Failed",
                    &format!("Error: {e}"),
                    Some(format!("cfg/{}/{e}", c.name)),
                )
                .await;
            return;
        }
    };
    let mounts = match volumes::mounts(&shared.config.state_dir, pod, c) {
        Ok(m) => m,
        Err(e) => {
            config_err(state, e.to_string());
            return;
        }
    };
    let vars: BTreeMap<String, String> = env.iter().cloned().collect();
    let expand_all = |v: &Option<Vec<String>>| {
        v.as_ref().map(|v| {
            v.iter()
                .map(|s| volumes::expand(s, &vars))
                .collect::<Vec<_>>()
        })
    };
    let log_dir = volumes::pod_dir(&shared.config.state_dir, &uid)
        .join("logs")
        .join(&c.name);
    if let Err(e) = std::fs::create_dir_all(&log_dir) {
        state.waiting.insert(
            c.name.clone(),
            Waiting {
                reason: "CreateContainerError".into(),
                message: format!("{}: {e}", log_dir.display()),
            },
        );
        return;
    }
    let network = match pod_network(shared, pod).await {
        Ok(n) => n,
        Err(e) => {
            let message = format!("setting up the pod's network: {e}");
            state.waiting.insert(
                c.name.clone(),
                Waiting {
                    reason: "CreateContainerError".into(),
                    message: message.clone(),
                },
            );
            state
                .tell(
                    shared,
                    pod,
                    EventType::Warning,
                    "FailedCreatePodSandBox",
                    &format!("Failed to create pod sandbox: {message}"),
                    Some(format!("net/{message}")),
                )
                .await;
            return;
        }
    };
    let spec = ContainerSpec {
        network,
        pod: pod_ref(pod),
        name: c.name.clone(),
        kind,
        attempt,
        image: image.clone(),
        command: expand_all(&c.command),
        args: expand_all(&c.args),
        env,
        working_dir: c.working_dir.clone().filter(|w| !w.is_empty()),
        mounts,
        hostname: pod
            .spec
            .as_ref()
            .and_then(|s| s.hostname.clone())
            .or_else(|| pod.metadata.name.clone())
            .unwrap_or_default(),
        resources: resources_of(c),
        log_path: log_dir.join(format!("{attempt}.log")),
        log_max_bytes: shared.config.log_max_bytes,
        log_max_files: shared.config.log_max_files,
    };
    match shared.runtime.start(&spec).await {
        Ok(id) => {
            state.waiting.remove(&c.name);
            tracing::info!(pod = %pod_label(pod), container = %c.name, attempt, %id, "container started");
            state
                .tell(
                    shared,
                    pod,
                    EventType::Normal,
                    "Created",
                    &format!("Created container {}", c.name),
                    None,
                )
                .await;
            state
                .tell(
                    shared,
                    pod,
                    EventType::Normal,
                    "Started",
                    &format!("Started container {}", c.name),
                    None,
                )
                .await;
        }
        Err(e) => {
            let reason = match e {
                super::runtime::RuntimeError::BadImage { .. } => "CreateContainerError",
                _ => "RunContainerError",
            };
            let msg = e.to_string();
            state.waiting.insert(
                c.name.clone(),
                Waiting {
                    reason: reason.into(),
                    message: msg.clone(),
                },
            );
            state
                .tell(
                    shared,
                    pod,
                    EventType::Warning,
                    "Failed",
                    &format!("Error: {msg}"),
                    None,
                )
                .await;
        }
    }
}

/// What one container is doing, as the status shows it.
struct Seen<'a> {
    spec: &'a Container,
    kind: ContainerKind,
    latest: Option<&'a ContainerInfo>,
    previous: Option<&'a ContainerInfo>,
    /// Waiting for its restart back-off (until then).
    backoff_until: Option<SystemTime>,
    ready: bool,
    started: bool,
}

async fn sync(
    shared: &Shared,
    pod: &Pod,
    containers: &[ContainerInfo],
    state: &mut PodState,
) -> Result<(), AgentError> {
    let Some(spec) = pod.spec.as_ref() else {
        return Ok(());
    };
    let policy = restart_policy(pod).to_string();
    let phase_now = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    let terminal = matches!(phase_now.as_str(), "Succeeded" | "Failed");
    if state.start_time.is_none() {
        state.start_time = Some(
            pod.status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0.to_string())
                .unwrap_or_else(|| shared.config.clock.now().to_string()),
        );
    }
    // Forget all but the last two starts of each container (the current and the
    // previous one, for `kubectl logs --previous`).
    let mut names: Vec<(String, ContainerKind)> = containers
        .iter()
        .map(|c| (c.name.clone(), c.kind))
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    names.dedup();
    for (name, kind) in &names {
        let all = by_name(containers, name, *kind);
        if all.len() > 2 {
            for old in &all[..all.len() - 2] {
                if exit_of(old).is_some() {
                    let _ = shared.runtime.remove(&old.id).await;
                    let _ = std::fs::remove_file(&old.log_path);
                }
            }
        }
    }

    let now = SystemTime::now();
    let mut failed_init = false;
    let mut initialized = true;
    let mut seen: Vec<Seen> = Vec::new();
    // Init containers, in order.
    for c in spec.init_containers.iter().flatten() {
        let all = by_name(containers, &c.name, ContainerKind::Init);
        let latest = all.last().copied();
        let previous = all.len().checked_sub(2).map(|i| all[i]);
        let mut s = Seen {
            spec: c,
            kind: ContainerKind::Init,
            latest,
            previous,
            backoff_until: None,
            ready: false,
            started: false,
        };
        if !initialized || terminal {
            seen.push(s);
            continue;
        }
        match latest {
            None => {
                start(shared, pod, c, ContainerKind::Init, 0, state).await;
                initialized = false;
            }
            Some(l) => match exit_of(l) {
                Some(e) if e.exit_code == 0 => s.ready = true,
                Some(e) => {
                    initialized = false;
                    if restarts(&policy, ContainerKind::Init, &e) {
                        let due = restart_due(l, &e);
                        if now >= due {
                            start(shared, pod, c, ContainerKind::Init, l.attempt + 1, state).await;
                        } else {
                            s.backoff_until = Some(due);
                        }
                    } else {
                        failed_init = true;
                    }
                }
                None => {
                    initialized = false;
                    s.started = true;
                }
            },
        }
        seen.push(s);
    }
    // Regular containers.
    for c in &spec.containers {
        let all = by_name(containers, &c.name, ContainerKind::Regular);
        let latest = all.last().copied();
        let previous = all.len().checked_sub(2).map(|i| all[i]);
        let mut s = Seen {
            spec: c,
            kind: ContainerKind::Regular,
            latest,
            previous,
            backoff_until: None,
            ready: false,
            started: false,
        };
        if !initialized || failed_init {
            seen.push(s);
            continue;
        }
        match latest {
            None if !terminal => start(shared, pod, c, ContainerKind::Regular, 0, state).await,
            None => {}
            Some(l) => match exit_of(l) {
                Some(e) if !terminal && restarts(&policy, ContainerKind::Regular, &e) => {
                    let due = restart_due(l, &e);
                    if now >= due {
                        start(shared, pod, c, ContainerKind::Regular, l.attempt + 1, state).await;
                    } else {
                        s.backoff_until = Some(due);
                        let secs = restart_backoff(l.attempt, Duration::ZERO).as_secs();
                        let msg = format!(
                            "Back-off restarting failed container {} in pod {}",
                            c.name,
                            pod_label(pod)
                        );
                        state
                            .tell(
                                shared,
                                pod,
                                EventType::Warning,
                                "BackOff",
                                &msg,
                                Some(format!("backoff/{}/{}/{secs}", c.name, l.attempt)),
                            )
                            .await;
                    }
                }
                Some(_) => {}
                None if l.state == ContainerState::Running => {
                    s.started = true;
                    let (ready, live) = run_probes(shared, pod, c, l, state).await;
                    s.ready = ready;
                    if !live {
                        let grace =
                            spec.termination_grace_period_seconds.unwrap_or(30).max(0) as u64;
                        let msg = format!(
                            "Container {} failed liveness probe, will be restarted",
                            c.name
                        );
                        state
                            .tell(shared, pod, EventType::Normal, "Killing", &msg, None)
                            .await;
                        if let Err(e) = shared.runtime.stop(&l.id, Duration::from_secs(grace)).await
                        {
                            tracing::warn!(error = %e, "stopping a container that failed its liveness probe");
                        }
                        s.ready = false;
                    }
                }
                None => {}
            },
        }
        seen.push(s);
    }
    // Stop what must not run in a terminal pod.
    if terminal {
        for c in containers
            .iter()
            .filter(|c| c.state == ContainerState::Running)
        {
            let _ = shared.runtime.stop(&c.id, Duration::from_secs(0)).await;
        }
    }
    // Probes and starts changed things: look again before writing the status.
    let fresh: Vec<ContainerInfo> = match shared.runtime.list().await {
        Ok(list) => list
            .into_iter()
            .filter(|c| Some(&c.pod.uid) == pod.metadata.uid.as_ref())
            .collect(),
        Err(_) => containers.to_vec(),
    };
    for s in &mut seen {
        let all = by_name(&fresh, &s.spec.name, s.kind);
        s.latest = all.last().copied();
        s.previous = all.len().checked_sub(2).map(|i| all[i]);
        if s.kind == ContainerKind::Regular {
            s.started = s.latest.is_some_and(|l| l.state == ContainerState::Running);
            if !s.started {
                s.ready = false;
            }
        }
    }
    write_status(
        shared,
        pod,
        &seen,
        state,
        initialized && !failed_init,
        failed_init,
        &policy,
    )
    .await
}

/// Runs the container's due probes; answers (ready, alive).
async fn run_probes(
    shared: &Shared,
    pod: &Pod,
    c: &Container,
    info: &ContainerInfo,
    state: &mut PodState,
) -> (bool, bool) {
    let key = (c.name.clone(), info.attempt);
    state
        .probes
        .retain(|(name, attempt), _| name != &c.name || *attempt == info.attempt);
    let tracker = state
        .probes
        .entry(key)
        .or_insert_with(|| ProbeTracker::new(c, info.started_at.unwrap_or_else(SystemTime::now)));
    let outcomes = tracker.run_due(shared.runtime.as_ref(), &info.id, c).await;
    for (kind, message) in outcomes {
        let what = match kind {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        };
        let msg = format!("{what} probe failed: {message}");
        shared
            .recorder
            .record(pod, EventType::Warning, "Unhealthy", &msg)
            .await;
    }
    (tracker.ready(), tracker.alive())
}

fn terminated_json(c: &ContainerInfo, e: &Exit, scheme: &str) -> Value {
    let reason = if e.oom_killed {
        "OOMKilled"
    } else if matches!(c.state, ContainerState::Unknown(_)) {
        "ContainerStatusUnknown"
    } else if e.exit_code == 0 {
        "Completed"
    } else {
        "Error"
    };
    let mut t = json!({
        "exitCode": e.exit_code,
        "reason": reason,
        "finishedAt": rfc3339(e.finished_at),
        "containerID": format!("{scheme}://{}", c.id),
    });
    if let Some(s) = c.started_at {
        t["startedAt"] = json!(rfc3339(s));
    }
    if let Some(sig) = e.signal {
        t["signal"] = json!(sig);
    }
    if let ContainerState::Unknown(m) = &c.state {
        t["message"] = json!(m);
    }
    t
}

#[allow(clippy::too_many_arguments)]
async fn write_status(
    shared: &Shared,
    pod: &Pod,
    seen: &[Seen<'_>],
    state: &mut PodState,
    initialized: bool,
    failed_init: bool,
    policy: &str,
) -> Result<(), AgentError> {
    let scheme = shared.runtime.name();
    let status_of = |s: &Seen| -> Value {
        let image = s.spec.image.clone().unwrap_or_default();
        let mut v = json!({
            "name": s.spec.name,
            "image": image,
            "imageID": s.latest.map(|l| l.image_id.clone()).unwrap_or_default(),
            "restartCount": s.latest.map_or(0, |l| l.attempt),
            "ready": s.ready,
        });
        if s.kind == ContainerKind::Regular {
            v["started"] = json!(s.started);
        }
        if let Some(l) = s.latest {
            v["containerID"] = json!(format!("{scheme}://{}", l.id));
        }
        let waiting = state.waiting.get(&s.spec.name);
        let latest_exit = s.latest.and_then(exit_of);
        let state_v = match (s.latest, &latest_exit) {
            (Some(l), _) if l.state == ContainerState::Running => {
                json!({"running": {"startedAt": l.started_at.map(rfc3339)}})
            }
            _ if waiting.is_some() => {
                let w = waiting.cloned().unwrap_or(Waiting {
                    reason: String::new(),
                    message: String::new(),
                });
                json!({"waiting": {"reason": w.reason, "message": w.message}})
            }
            (Some(l), Some(e)) => match s.backoff_until {
                Some(_) => {
                    let secs = restart_backoff(l.attempt, Duration::ZERO).as_secs();
                    json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!(
                        "back-off {secs}s restarting failed container={} pod={}", s.spec.name, pod_label(pod))}})
                }
                None => {
                    json!({ "terminated": terminated_json(l, e, scheme) })
                }
            },
            _ => {
                let reason = if s.kind == ContainerKind::Regular && !initialized {
                    "PodInitializing"
                } else {
                    "ContainerCreating"
                };
                json!({"waiting": {"reason": reason}})
            }
        };
        v["state"] = state_v;
        // The last termination: the previous start's, or the latest's while it waits
        // to restart.
        let last = match (s.latest, &latest_exit, s.backoff_until) {
            (Some(l), Some(e), Some(_)) => Some((l, e.clone())),
            _ => s.previous.and_then(|p| exit_of(p).map(|e| (p, e))),
        };
        v["lastState"] = match last {
            Some((c, e)) => json!({ "terminated": terminated_json(c, &e, scheme) }),
            None => json!({}),
        };
        v
    };
    let init: Vec<Value> = seen
        .iter()
        .filter(|s| s.kind == ContainerKind::Init)
        .map(status_of)
        .collect();
    let regular: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.kind == ContainerKind::Regular)
        .collect();
    let statuses: Vec<Value> = regular.iter().map(|s| status_of(s)).collect();

    // Phase, as the kubelet's getPhase.
    let mut running = 0;
    let mut waiting = 0;
    let mut succeeded = 0;
    let mut failed = 0;
    let mut restarting = 0;
    for s in &regular {
        match s.latest {
            None => waiting += 1,
            Some(l) if l.state == ContainerState::Running => running += 1,
            Some(l) => match exit_of(l) {
                Some(e) => {
                    if s.backoff_until.is_some() || restarts(policy, ContainerKind::Regular, &e) {
                        restarting += 1;
                    } else if e.exit_code == 0 {
                        succeeded += 1;
                    } else {
                        failed += 1;
                    }
                }
                None => waiting += 1,
            },
        }
    }
    let old_phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    let phase = if matches!(old_phase.as_str(), "Succeeded" | "Failed") {
        old_phase
    } else if failed_init {
        "Failed".to_string()
    } else if !initialized || waiting > 0 {
        "Pending".to_string()
    } else if running > 0 || restarting > 0 {
        "Running".to_string()
    } else if failed > 0 {
        "Failed".to_string()
    } else if succeeded > 0 {
        "Succeeded".to_string()
    } else {
        "Pending".to_string()
    };
    let not_ready: Vec<&str> = regular
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.spec.name.as_str())
        .collect();
    let not_init: Vec<&str> = seen
        .iter()
        .filter(|s| s.kind == ContainerKind::Init && !s.ready)
        .map(|s| s.spec.name.as_str())
        .collect();
    let now = shared.config.clock.now().to_string();
    let cond = |kind: &str, ok: bool, reason: &str, message: String| -> Value {
        let mut c = json!({"type": kind, "status": if ok { "True" } else { "False" }, "lastTransitionTime": now});
        if !ok {
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        }
        c
    };
    let terminal = matches!(phase.as_str(), "Succeeded" | "Failed");
    let ready = !terminal && not_ready.is_empty() && initialized;
    let ready_reason = if terminal {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    let mut conditions = vec![
        cond("PodReadyToStartContainers", true, "", String::new()),
        cond(
            "Initialized",
            initialized || not_init.is_empty(),
            if terminal {
                "PodCompleted"
            } else {
                "ContainersNotInitialized"
            },
            format!(
                "containers with incomplete status: [{}]",
                not_init.join(" ")
            ),
        ),
        cond(
            "Ready",
            ready,
            ready_reason,
            format!("containers with unready status: [{}]", not_ready.join(" ")),
        ),
        cond(
            "ContainersReady",
            ready,
            ready_reason,
            format!("containers with unready status: [{}]", not_ready.join(" ")),
        ),
    ];
    // Keep transition times of unchanged conditions, and the conditions others own
    // (PodScheduled, DisruptionTarget).
    let old_conditions = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    for c in &mut conditions {
        let kind = c["type"].as_str().unwrap_or_default().to_string();
        if let Some(o) = old_conditions.iter().find(|o| o.type_ == kind) {
            if Some(o.status.as_str()) == c["status"].as_str() {
                if let Some(t) = &o.last_transition_time {
                    c["lastTransitionTime"] = json!(t.0.to_string());
                }
            }
        }
    }
    let ours = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
    ];
    for o in &old_conditions {
        if !ours.contains(&o.type_.as_str()) {
            conditions.push(serde_json::to_value(o).unwrap_or(Value::Null));
        }
    }
    let host_ip = shared.config.address.to_string();
    let ip = pod_ip(shared, pod).await;
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": state.start_time,
        "containerStatuses": statuses,
    });
    if let Some(ip) = ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{ "ip": ip }]);
    }
    if !init.is_empty() {
        status["initContainerStatuses"] = json!(init);
    }
    // Compare without transition times so an unchanged status is not rewritten.
    let comparable = |v: &Value| {
        let mut v = v.clone();
        if let Some(cs) = v.get_mut("conditions").and_then(|c| c.as_array_mut()) {
            for c in cs {
                if let Some(o) = c.as_object_mut() {
                    o.remove("lastTransitionTime");
                }
            }
        }
        v
    };
    if state.last_status.as_ref().map(comparable) == Some(comparable(&status)) {
        return Ok(());
    }
    let api: Api<Pod> = Api::namespaced(
        shared.client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
    );
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    match api
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
    {
        Ok(_) => {
            state.last_status = Some(status);
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(AgentError::Api {
            what: format!("writing the status of pod {name}"),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_ten_seconds_to_five_minutes() {
        let ran = Duration::from_secs(1);
        assert_eq!(restart_backoff(0, ran), Duration::ZERO);
        assert_eq!(restart_backoff(1, ran), Duration::from_secs(10));
        assert_eq!(restart_backoff(2, ran), Duration::from_secs(20));
        assert_eq!(restart_backoff(3, ran), Duration::from_secs(40));
        assert_eq!(restart_backoff(6, ran), Duration::from_secs(300));
        assert_eq!(restart_backoff(60, ran), Duration::from_secs(300));
        assert_eq!(restart_backoff(5, Duration::from_secs(700)), Duration::ZERO);
    }

    #[test]
    fn restart_policies() {
        let exit = |code| Exit {
            exit_code: code,
            signal: None,
            oom_killed: false,
            finished_at: SystemTime::UNIX_EPOCH,
        };
        assert!(restarts("Always", ContainerKind::Regular, &exit(0)));
        assert!(!restarts("OnFailure", ContainerKind::Regular, &exit(0)));
        assert!(restarts("OnFailure", ContainerKind::Regular, &exit(1)));
        assert!(!restarts("Never", ContainerKind::Regular, &exit(1)));
        assert!(restarts("Always", ContainerKind::Init, &exit(1)));
        assert!(!restarts("Always", ContainerKind::Init, &exit(0)));
        assert!(!restarts("Never", ContainerKind::Init, &exit(1)));
    }
}
