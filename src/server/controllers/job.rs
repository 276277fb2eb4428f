//! The Job controller (batch/v1), after Kubernetes' `pkg/controller/job`.
//!
//! For each Job it keeps `parallelism` pods running (fewer when fewer completions remain),
//! counts finished pods exactly once with the `batch.kubernetes.io/job-tracking`
//! finalizer and `status.uncountedTerminatedPods` (UIDs are recorded in the status first,
//! then the finalizers removed, then the counters moved), backs off exponentially
//! between re-creations after failures, and finishes the Job:
//!
//! - `Complete` (after the interim `SuccessCriteriaMet`, reason `CompletionsReached`) when
//!   `completions` pods succeeded (with `completions` unset: when one succeeded and none
//!   is active);
//! - `Failed` (after the interim `FailureTarget`) with reason `BackoffLimitExceeded` when
//!   more than `backoffLimit` pods failed, `DeadlineExceeded` past
//!   `activeDeadlineSeconds`, or `PodFailurePolicy` when a `FailJob` rule matched; active
//!   pods are deleted.
//!
//! Only the `NonIndexed` completion mode is implemented. Jobs and pods are read fresh
//! from the API server in each reconcile (the watch caches only trigger reconciles), so
//! a pod counted in a previous reconcile is never counted twice; status writes carry the
//! `resourceVersion` read, so a concurrent change makes the write fail and the key retry.
//!
//! Start it with [`run`] and a [`JobConfig`].

use super::context::Context;
use super::events::EventType;
use super::runtime::{self, Action, Controller, ObjectKey};
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{
    Job, JobCondition, JobStatus, PodFailurePolicy, UncountedTerminatedPods,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Time,
};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::ResourceExt;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Finalizer the controller puts on its pods until it has counted them.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Label with the Job's UID (and its legacy form `controller-uid`).
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// Label with the Job's name (and its legacy form `job-name`).
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// Message of the `BackoffLimitExceeded` failure.
pub const BACKOFF_LIMIT_MESSAGE: &str = "Job has reached the specified backoff limit";
/// Message of the `DeadlineExceeded` failure.
pub const DEADLINE_MESSAGE: &str = "Job was active longer than specified deadline";
/// Message of the `CompletionsReached` success.
pub const COMPLETIONS_MESSAGE: &str = "Reached expected number of succeeded pods";

/// Settings of the Job controller.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Delay before re-creating a pod after the first failure; doubles with each further
    /// failure since the last success (kube: 10 s).
    pub backoff_base: Duration,
    /// Longest such delay (kube: 6 min in older releases, 10 min since 1.29).
    pub backoff_max: Duration,
    /// Concurrent reconciles.
    pub workers: usize,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(360),
            workers: 2,
        }
    }
}

/// What can go wrong in a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The Job has no selector (the API server sets one unless `manualSelector`).
    #[error("job {0} has no selector")]
    NoSelector(String),
    /// An API call failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// Failures since the last success, and when the last one was seen: the pod re-creation
/// back-off (kube's `backoffRecord`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackoffRecord {
    /// Failed pods counted since the last succeeded one.
    pub failures_after_last_success: u32,
    /// When the last failure was counted.
    pub last_failure: Option<Timestamp>,
}

impl BackoffRecord {
    /// The record after counting `new_failures` failed and `new_successes` succeeded pods.
    pub fn update(self, new_failures: u32, new_successes: u32, now: Timestamp) -> Self {
        if new_failures > 0 {
            BackoffRecord {
                failures_after_last_success: self.failures_after_last_success + new_failures,
                last_failure: Some(now),
            }
        } else if new_successes > 0 {
            BackoffRecord {
                failures_after_last_success: 0,
                last_failure: self.last_failure,
            }
        } else {
            self
        }
    }

    /// The back-off after these failures: `base·2^(failures−1)`, at most `max`.
    pub fn delay(&self, base: Duration, max: Duration) -> Duration {
        if self.failures_after_last_success == 0 {
            return Duration::ZERO;
        }
        let exp = (self.failures_after_last_success - 1).min(30);
        base.saturating_mul(1u32 << exp).min(max)
    }

    /// How long pod creation must still wait at `now`.
    pub fn remaining(&self, now: Timestamp, base: Duration, max: Duration) -> Duration {
        let Some(last) = self.last_failure else {
            return Duration::ZERO;
        };
        let elapsed = Duration::try_from(now.duration_since(last)).unwrap_or(Duration::ZERO);
        self.delay(base, max).saturating_sub(elapsed)
    }
}

/// What a pod failure policy decided about a failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyMatch {
    /// The Job must fail with this message (a `FailJob` rule matched).
    pub fail_job: Option<String>,
    /// The failure counts toward `backoffLimit` (false for `Ignore`).
    pub count: bool,
    /// The action of the matched rule.
    pub action: Option<String>,
}

/// Matches a failed pod against the Job's pod failure policy, as kube's
/// `matchPodFailurePolicy`: the first rule whose `onExitCodes` (a terminated container
/// with a non-zero exit code, `In`/`NotIn` the values) or `onPodConditions` matches.
pub fn match_pod_failure_policy(policy: Option<&PodFailurePolicy>, pod: &Pod) -> PolicyMatch {
    let no_match = PolicyMatch {
        fail_job: None,
        count: true,
        action: None,
    };
    let Some(policy) = policy else {
        return no_match;
    };
    let status = pod.status.clone().unwrap_or_default();
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    for (index, rule) in policy.rules.iter().enumerate() {
        let message = if let Some(req) = &rule.on_exit_codes {
            let statuses = status
                .container_statuses
                .iter()
                .flatten()
                .chain(status.init_container_statuses.iter().flatten());
            statuses
                .filter(|cs| req.container_name.as_ref().is_none_or(|n| *n == cs.name))
                .find_map(|cs| {
                    let code = cs.state.as_ref()?.terminated.as_ref()?.exit_code;
                    let listed = req.values.contains(&code);
                    let hit = code != 0
                        && match req.operator.as_str() {
                            "In" => listed,
                            "NotIn" => !listed,
                            _ => false,
                        };
                    hit.then(|| {
                        format!(
                            "Container {} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {index}",
                            cs.name, rule.action
                        )
                    })
                })
        } else if let Some(patterns) = &rule.on_pod_conditions {
            status.conditions.iter().flatten().find_map(|c| {
                patterns
                    .iter()
                    .any(|p| p.type_ == c.type_ && p.status == c.status)
                    .then(|| {
                        format!(
                            "Pod {ns}/{name} has condition {} matching {} rule at index {index}",
                            c.type_, rule.action
                        )
                    })
            })
        } else {
            None
        };
        let Some(message) = message else { continue };
        let action = Some(rule.action.clone());
        return match rule.action.as_str() {
            "Ignore" => PolicyMatch {
                fail_job: None,
                count: false,
                action,
            },
            "FailJob" => PolicyMatch {
                fail_job: Some(message),
                count: true,
                action,
            },
            _ => PolicyMatch {
                fail_job: None,
                count: true,
                action,
            },
        };
    }
    no_match
}

/// Where a pod of a Job is in its life, for the Job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodState {
    /// Running or about to (ready or not).
    Active {
        /// Its `Ready` condition is `True`.
        ready: bool,
    },
    /// Phase `Succeeded`.
    Succeeded,
    /// Phase `Failed`, or deleted before it succeeded (kube's `isPodFailed`).
    Failed,
}

/// The pod's state for its Job.
pub fn pod_state(pod: &Pod) -> PodState {
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("");
    match phase {
        "Succeeded" => PodState::Succeeded,
        "Failed" => PodState::Failed,
        _ if pod.metadata.deletion_timestamp.is_some() => PodState::Failed,
        _ => PodState::Active {
            ready: pod_ready(pod),
        },
    }
}

/// The pod's `Ready` condition is `True`.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// How many pods should be active: `parallelism`, or fewer when fewer completions
/// remain; with `completions` unset, none once one succeeded (kube's `manageJob`).
pub fn wanted_active(
    parallelism: i32,
    completions: Option<i32>,
    succeeded: i32,
    suspended: bool,
) -> i32 {
    if suspended {
        return 0;
    }
    let p = parallelism.max(0);
    match completions {
        Some(c) => (c - succeeded).clamp(0, p),
        None if succeeded > 0 => 0,
        None => p,
    }
}

/// A label selector as a list selector string (`k=v,k in (a,b),!k`).
pub fn selector_string(sel: &LabelSelector) -> String {
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

/// The Job's condition of `type_` with status `True`, if any.
pub fn true_condition<'a>(status: &'a JobStatus, type_: &str) -> Option<&'a JobCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_ && c.status == "True")
}

/// The Job is finished: `Complete` or `Failed` is `True`.
pub fn is_finished(job: &Job) -> bool {
    job.status.as_ref().is_some_and(|s| {
        true_condition(s, "Complete").is_some() || true_condition(s, "Failed").is_some()
    })
}

fn condition(type_: &str, reason: &str, message: &str, now: &Time) -> JobCondition {
    JobCondition {
        type_: type_.to_string(),
        status: "True".to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_probe_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    }
}

/// Sets the condition `type_` to `status` (adding it if missing); true if it changed.
fn set_condition(
    status: &mut JobStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
    now: &Time,
) -> bool {
    let conds = status.conditions.get_or_insert_with(Vec::new);
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        if c.status == value {
            return false;
        }
        c.status = value.to_string();
        c.reason = Some(reason.to_string());
        c.message = Some(message.to_string());
        c.last_probe_time = Some(now.clone());
        c.last_transition_time = Some(now.clone());
        return true;
    }
    if value != "True" {
        // A condition that never was true is not added as false.
        return false;
    }
    conds.push(JobCondition {
        status: value.to_string(),
        ..condition(type_, reason, message, now)
    });
    true
}

/// The status as JSON without nulls, empty lists and empty objects (what the server may
/// drop when it stores them), to tell whether a write would change anything.
pub fn normalized(status: &JobStatus) -> serde_json::Value {
    fn strip(v: serde_json::Value) -> Option<serde_json::Value> {
        use serde_json::Value;
        match v {
            Value::Null => None,
            Value::Array(a) => {
                let a: Vec<Value> = a.into_iter().filter_map(strip).collect();
                (!a.is_empty()).then_some(Value::Array(a))
            }
            Value::Object(o) => {
                let o: serde_json::Map<String, Value> = o
                    .into_iter()
                    .filter_map(|(k, v)| Some((k, strip(v)?)))
                    .collect();
                (!o.is_empty()).then_some(Value::Object(o))
            }
            other => Some(other),
        }
    }
    strip(serde_json::to_value(status).unwrap_or_default()).unwrap_or_default()
}

/// The pod a Job creates from its template.
pub fn new_pod(job: &Job) -> Pod {
    let name = job.name_any();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let spec = job.spec.clone().unwrap_or_default();
    let template = spec.template;
    let mut meta = template.metadata.unwrap_or_default();
    if spec.manual_selector != Some(true) {
        let labels = meta.labels.get_or_insert_with(Default::default);
        for (k, v) in [
            (CONTROLLER_UID_LABEL, &uid),
            ("controller-uid", &uid),
            (JOB_NAME_LABEL, &name),
            ("job-name", &name),
        ] {
            labels.entry(k.to_string()).or_insert_with(|| v.clone());
        }
    }
    Pod {
        metadata: ObjectMeta {
            name: None,
            generate_name: Some(format!("{name}-")),
            namespace: job.namespace(),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: Some(vec![TRACKING_FINALIZER.to_string()]),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".to_string(),
                kind: "Job".to_string(),
                name,
                uid,
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

fn has_finalizer(pod: &Pod) -> bool {
    pod.finalizers().iter().any(|f| f == TRACKING_FINALIZER)
}

fn owned_by(pod: &Pod, uid: &str) -> bool {
    runtime::controller_owner::<Job>(&pod.metadata).is_some_and(|r| r.uid == uid)
}

/// The Job controller's state.
pub struct JobController {
    ctx: Context,
    cfg: JobConfig,
    backoff: Mutex<HashMap<String, BackoffRecord>>,
}

impl JobController {
    /// A controller with these settings.
    pub fn new(ctx: Context, cfg: JobConfig) -> Self {
        JobController {
            ctx,
            cfg,
            backoff: Mutex::default(),
        }
    }

    async fn remove_finalizer(&self, pod: &Pod) -> Result<(), kube::Error> {
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            &pod.namespace().unwrap_or_default(),
        );
        let rest: Vec<&String> = pod
            .finalizers()
            .iter()
            .filter(|f| *f != TRACKING_FINALIZER)
            .collect();
        let patch = serde_json::json!({"metadata": {"finalizers": rest}});
        match api
            .patch(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn delete_pod(&self, job: &Job, pod: &Pod) -> Result<(), kube::Error> {
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            &pod.namespace().unwrap_or_default(),
        );
        match api.delete(&pod.name_any(), &DeleteParams::default()).await {
            Ok(_) => {
                let msg = format!("Deleted pod: {}", pod.name_any());
                self.ctx
                    .recorder
                    .record(job, EventType::Normal, "SuccessfulDelete", &msg)
                    .await;
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes the tracking finalizer from pods labelled with `job_name` whose owning Job
    /// (by UID) is not `live_uid`: the Job was deleted or replaced.
    async fn release_orphans(
        &self,
        ns: &str,
        job_name: &str,
        live_uid: Option<&str>,
    ) -> Result<(), JobError> {
        let pods: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        let lp = ListParams::default().labels(&format!("{JOB_NAME_LABEL}={job_name}"));
        for pod in pods.list(&lp).await? {
            let owner = runtime::controller_owner::<Job>(&pod.metadata).map(|r| r.uid.clone());
            if has_finalizer(&pod) && owner.as_deref() != live_uid {
                self.remove_finalizer(&pod).await?;
            }
        }
        Ok(())
    }

    /// One reconcile of the Job `key`.
    pub async fn reconcile(&self, key: &ObjectKey) -> Result<Action, JobError> {
        let ns = key.ns().to_string();
        let jobs: Api<Job> = Api::namespaced(self.ctx.client.clone(), &ns);
        let pods_api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
        let Some(job) = jobs.get_opt(&key.name).await? else {
            self.release_orphans(&ns, &key.name, None).await?;
            return Ok(Action::Done);
        };
        let uid = job.metadata.uid.clone().unwrap_or_default();
        if job.metadata.deletion_timestamp.is_some() {
            self.release_orphans(&ns, &key.name, None).await?;
            self.backoff
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&uid);
            return Ok(Action::Done);
        }
        let spec = job.spec.clone().unwrap_or_default();
        let selector = spec
            .selector
            .as_ref()
            .map(selector_string)
            .filter(|s| !s.is_empty());
        let Some(selector) = selector else {
            return Err(JobError::NoSelector(key.to_string()));
        };
        let pods: Vec<Pod> = pods_api
            .list(&ListParams::default().labels(&selector))
            .await?
            .items
            .into_iter()
            .filter(|p| owned_by(p, &uid))
            .collect();
        if is_finished(&job) {
            // Finished: release whatever still holds the finalizer.
            for p in pods.iter().filter(|p| has_finalizer(p)) {
                self.remove_finalizer(p).await?;
            }
            self.backoff
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&uid);
            return Ok(Action::Done);
        }

        let now_ts = self.ctx.clock.now();
        let now = Time(now_ts);
        let suspended = spec.suspend == Some(true);
        let mut status = job.status.clone().unwrap_or_default();
        let old_status = status.clone();
        if status.start_time.is_none() && !suspended {
            status.start_time = Some(now.clone());
        }
        let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let mut unc_s: BTreeSet<String> = uncounted
            .succeeded
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut unc_f: BTreeSet<String> =
            uncounted.failed.unwrap_or_default().into_iter().collect();
        let policy = spec.pod_failure_policy.as_ref();

        // Classify the pods.
        let mut active: Vec<&Pod> = Vec::new();
        let mut to_release: Vec<&Pod> = Vec::new();
        let (mut new_failures, mut new_successes) = (0u32, 0u32);
        let mut fail_job: Option<(String, String)> = None;
        for p in &pods {
            let st = pod_state(p);
            if let PodState::Active { .. } = st {
                active.push(p);
                continue;
            }
            if !has_finalizer(p) {
                continue; // counted before
            }
            to_release.push(p);
            let uid = p.metadata.uid.clone().unwrap_or_default();
            if st == PodState::Succeeded {
                if !unc_f.contains(&uid) && unc_s.insert(uid) {
                    new_successes += 1;
                }
                continue;
            }
            let m = match_pod_failure_policy(policy, p);
            if let Some(msg) = m.fail_job {
                fail_job.get_or_insert(("PodFailurePolicy".to_string(), msg));
            }
            if m.count && !unc_s.contains(&uid) && unc_f.insert(uid) {
                new_failures += 1;
            }
        }
        let record = {
            let mut b = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
            let r = b.entry(uid.clone()).or_default();
            *r = r.update(new_failures, new_successes, now_ts);
            *r
        };
        let succeeded = status.succeeded.unwrap_or(0) + unc_s.len() as i32;
        let failed = status.failed.unwrap_or(0) + unc_f.len() as i32;

        // Has the Job failed?
        let mut requeue: Option<Duration> = None;
        let mut soonest = |d: Duration| requeue = Some(requeue.map_or(d, |r: Duration| r.min(d)));
        let backoff_limit = spec.backoff_limit.unwrap_or(6);
        let mut failure = fail_job;
        if failure.is_none() && failed > backoff_limit {
            failure = Some((
                "BackoffLimitExceeded".to_string(),
                BACKOFF_LIMIT_MESSAGE.to_string(),
            ));
        }
        if failure.is_none() && !suspended {
            if let (Some(ads), Some(start)) = (spec.active_deadline_seconds, &status.start_time) {
                let deadline = Duration::from_secs(ads.max(0) as u64);
                let age = self.ctx.clock.since(start.0);
                if age >= deadline {
                    failure = Some(("DeadlineExceeded".to_string(), DEADLINE_MESSAGE.to_string()));
                } else {
                    soonest(deadline - age);
                }
            }
        }

        let mut complete = false;
        let mut ready = active.iter().filter(|p| pod_ready(p)).count() as i32;
        let mut n_active = active.len() as i32;
        if failure.is_some() {
            // Every active pod is deleted and counted as failed.
            for p in &active {
                self.delete_pod(&job, p).await?;
                if has_finalizer(p) {
                    to_release.push(p);
                    unc_f.insert(p.metadata.uid.clone().unwrap_or_default());
                }
            }
            n_active = 0;
            ready = 0;
        } else {
            let want = wanted_active(
                spec.parallelism.unwrap_or(1),
                spec.completions,
                succeeded,
                suspended,
            );
            if n_active > want {
                // Delete the surplus, not-ready and youngest first.
                let mut victims = active.clone();
                victims.sort_by_key(|p| {
                    (
                        pod_ready(p),
                        std::cmp::Reverse(p.metadata.creation_timestamp.clone().map(|t| t.0)),
                    )
                });
                for p in victims.into_iter().take((n_active - want) as usize) {
                    self.delete_pod(&job, p).await?;
                    if pod_ready(p) {
                        ready -= 1;
                    }
                    n_active -= 1;
                }
            } else if n_active < want {
                let wait = record.remaining(now_ts, self.cfg.backoff_base, self.cfg.backoff_max);
                if wait > Duration::ZERO {
                    soonest(wait);
                } else {
                    let pod = new_pod(&job);
                    while n_active < want {
                        let created = pods_api.create(&PostParams::default(), &pod).await?;
                        let msg = format!("Created pod: {}", created.name_any());
                        self.ctx
                            .recorder
                            .record(&job, EventType::Normal, "SuccessfulCreate", &msg)
                            .await;
                        n_active += 1;
                    }
                }
            }
            complete = match spec.completions {
                Some(c) => succeeded >= c && n_active == 0,
                None => succeeded > 0 && n_active == 0,
            };
        }
        status.active = Some(n_active);
        status.ready = Some(ready.max(0));

        // 1. Record the UIDs of finished pods before releasing them.
        let mut job = job;
        let uncounted_now = UncountedTerminatedPods {
            succeeded: Some(unc_s.iter().cloned().collect()),
            failed: Some(unc_f.iter().cloned().collect()),
        };
        let stored_unc = old_status
            .uncounted_terminated_pods
            .clone()
            .unwrap_or_default();
        let same = |a: &Option<Vec<String>>, b: &Option<Vec<String>>| {
            a.iter().flatten().collect::<BTreeSet<_>>()
                == b.iter().flatten().collect::<BTreeSet<_>>()
        };
        if !same(&stored_unc.succeeded, &uncounted_now.succeeded)
            || !same(&stored_unc.failed, &uncounted_now.failed)
        {
            status.uncounted_terminated_pods = Some(uncounted_now);
            job.status = Some(status.clone());
            job = jobs
                .replace_status(&key.name, &PostParams::default(), &job)
                .await?;
        }
        // 2. Release them.
        for p in &to_release {
            self.remove_finalizer(p).await?;
        }
        // 3. Move them to the counters, and finish the Job.
        status.succeeded = Some(succeeded);
        status.failed = Some(status.failed.unwrap_or(0) + unc_f.len() as i32);
        status.uncounted_terminated_pods = Some(UncountedTerminatedPods {
            succeeded: Some(vec![]),
            failed: Some(vec![]),
        });
        let mut events: Vec<(EventType, String, String)> = Vec::new();
        if let Some((reason, message)) = &failure {
            set_condition(&mut status, "FailureTarget", "True", reason, message, &now);
            set_condition(&mut status, "Failed", "True", reason, message, &now);
            events.push((EventType::Warning, reason.clone(), message.clone()));
        } else if complete {
            set_condition(
                &mut status,
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                COMPLETIONS_MESSAGE,
                &now,
            );
            set_condition(
                &mut status,
                "Complete",
                "True",
                "CompletionsReached",
                COMPLETIONS_MESSAGE,
                &now,
            );
            status.completion_time = Some(now.clone());
            events.push((
                EventType::Normal,
                "Completed".into(),
                "Job completed".into(),
            ));
        } else if suspended {
            if set_condition(
                &mut status,
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
                &now,
            ) {
                events.push((
                    EventType::Normal,
                    "Suspended".into(),
                    "Job suspended".into(),
                ));
            }
        } else if set_condition(
            &mut status,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            &now,
        ) {
            status.start_time = Some(now.clone());
            events.push((EventType::Normal, "Resumed".into(), "Job resumed".into()));
        }
        if job.status.as_ref().map(normalized) != Some(normalized(&status)) {
            job.status = Some(status);
            job = jobs
                .replace_status(&key.name, &PostParams::default(), &job)
                .await?;
        }
        for (t, reason, message) in events {
            self.ctx.recorder.record(&job, t, &reason, &message).await;
        }
        if is_finished(&job) {
            self.backoff
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&uid);
            return Ok(Action::Done);
        }
        Ok(requeue.map_or(Action::Done, Action::RequeueAfter))
    }
}

/// Runs the Job controller until `shutdown` completes: watches Jobs and pods, reconciles
/// each Job on every change of it or of its pods.
pub async fn run(ctx: Context, cfg: JobConfig, shutdown: impl Future<Output = ()> + Send) {
    let client = ctx.client.clone();
    let jobs = runtime::watch(Api::<Job>::all(client.clone()), watcher::Config::default());
    let pods = runtime::watch(Api::<Pod>::all(client), watcher::Config::default());
    let workers = cfg.workers;
    let state = Arc::new(JobController::new(ctx.clone(), cfg));
    Controller::<JobError>::new("job", ctx)
        .watches(jobs, |j| vec![ObjectKey::of(j.as_ref())])
        .watches(pods, job_keys_of_pod)
        .workers(workers)
        .run(
            state,
            |key, st| async move { st.reconcile(&key).await },
            shutdown,
        )
        .await;
}

/// The Job a pod belongs to: its controller owner, or its `job-name` label (a pod whose
/// Job is gone still needs its finalizer removed).
fn job_keys_of_pod(pod: Arc<Pod>) -> Vec<ObjectKey> {
    let keys = runtime::owner_keys::<Job, Pod>(pod.clone());
    if !keys.is_empty() {
        return keys;
    }
    match pod.labels().get(JOB_NAME_LABEL) {
        Some(name) if has_finalizer(&pod) => vec![ObjectKey::new(pod.namespace().as_deref(), name)],
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{
        PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule,
    };
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStatus, PodStatus,
    };

    fn failed_pod(codes: &[(&str, i32)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("j-abcde".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Failed".into()),
                container_statuses: Some(
                    codes
                        .iter()
                        .map(|(n, c)| ContainerStatus {
                            name: n.to_string(),
                            state: Some(ContainerState {
                                terminated: Some(ContainerStateTerminated {
                                    exit_code: *c,
                                    ..Default::default()
                                }),
                                ..Default::default()
                            }),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
        }
    }

    fn rule(action: &str, op: &str, values: &[i32]) -> PodFailurePolicyRule {
        PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: None,
                operator: op.into(),
                values: values.to_vec(),
            }),
            on_pod_conditions: None,
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_secs(10);
        let max = Duration::from_secs(360);
        let t0 = Timestamp::from_second(1_000).unwrap();
        let mut r = BackoffRecord::default();
        assert_eq!(r.delay(base, max), Duration::ZERO);
        r = r.update(1, 0, t0);
        assert_eq!(r.delay(base, max), Duration::from_secs(10));
        r = r.update(2, 0, t0);
        assert_eq!(r.delay(base, max), Duration::from_secs(40));
        r = r.update(10, 0, t0);
        assert_eq!(r.delay(base, max), max);
        let later = Timestamp::from_second(1_100).unwrap();
        assert_eq!(r.remaining(later, base, max), Duration::from_secs(260));
        r = r.update(0, 1, later);
        assert_eq!(r.remaining(later, base, max), Duration::ZERO);
    }

    #[test]
    fn wanted_active_follows_completions() {
        assert_eq!(wanted_active(2, Some(3), 0, false), 2);
        assert_eq!(wanted_active(2, Some(3), 2, false), 1);
        assert_eq!(wanted_active(2, Some(3), 3, false), 0);
        assert_eq!(wanted_active(2, None, 0, false), 2);
        assert_eq!(wanted_active(2, None, 1, false), 0);
        assert_eq!(wanted_active(2, Some(3), 0, true), 0);
    }

    #[test]
    fn pod_failure_policy_rules_in_order() {
        let policy = PodFailurePolicy {
            rules: vec![
                rule("Ignore", "In", &[3]),
                rule("FailJob", "NotIn", &[1, 2]),
            ],
        };
        let m = match_pod_failure_policy(Some(&policy), &failed_pod(&[("main", 3)]));
        assert_eq!((m.count, m.fail_job.is_none()), (false, true));
        let m = match_pod_failure_policy(Some(&policy), &failed_pod(&[("main", 1)]));
        assert_eq!(
            m,
            PolicyMatch {
                fail_job: None,
                count: true,
                action: None
            }
        );
        let m = match_pod_failure_policy(Some(&policy), &failed_pod(&[("main", 42)]));
        assert_eq!(
            m.fail_job.as_deref(),
            Some("Container main for pod ns/j-abcde failed with exit code 42 matching FailJob rule at index 1")
        );
        // Exit code 0 never matches.
        let m = match_pod_failure_policy(Some(&policy), &failed_pod(&[("main", 0)]));
        assert!(m.action.is_none());
        assert!(match_pod_failure_policy(None, &failed_pod(&[("main", 42)])).count);
    }

    #[test]
    fn new_pod_carries_labels_owner_and_finalizer() {
        let job = Job {
            metadata: ObjectMeta {
                name: Some("pi".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(Default::default()),
            status: None,
        };
        let p = new_pod(&job);
        assert_eq!(p.metadata.generate_name.as_deref(), Some("pi-"));
        let l = p.metadata.labels.unwrap();
        assert_eq!(l[CONTROLLER_UID_LABEL], "u1");
        assert_eq!(l["job-name"], "pi");
        let o = &p.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (o.controller, o.block_owner_deletion, o.kind.as_str()),
            (Some(true), Some(true), "Job")
        );
        assert_eq!(
            p.metadata.finalizers.unwrap(),
            vec![TRACKING_FINALIZER.to_string()]
        );
    }

    #[test]
    fn normalized_ignores_empty_uncounted() {
        let a = JobStatus {
            active: Some(1),
            uncounted_terminated_pods: Some(UncountedTerminatedPods {
                succeeded: Some(vec![]),
                failed: Some(vec![]),
            }),
            ..Default::default()
        };
        let b = JobStatus {
            active: Some(1),
            ..Default::default()
        };
        assert_eq!(normalized(&a), normalized(&b));
        assert_ne!(normalized(&a), normalized(&JobStatus::default()));
    }

    #[test]
    fn deleted_pod_counts_as_failed() {
        let mut p = failed_pod(&[]);
        p.status.as_mut().unwrap().phase = Some("Running".into());
        assert_eq!(pod_state(&p), PodState::Active { ready: false });
        p.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert_eq!(pod_state(&p), PodState::Failed);
    }
}
