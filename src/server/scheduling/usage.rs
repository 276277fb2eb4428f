//! Usage-aware scheduling (`--usage-aware`): place by *predicted peak usage* instead of
//! requests, from the usage the node agents report.
//!
//! A task polls `GET /apis/plimsoll.io/v1/usagehistory` every refresh (10 s by default)
//! and turns the history into [`Predictions`] with a [`UsagePredictor`]:
//!
//! - **Series.** A pod's CPU samples become a fixed-step [`Series`](crate::predict::Series)
//!   (step: the median interval between its samples, at least 1 s; values in cores, so
//!   the provisioned capacity of every series is 1 core).
//! - **Learned model** (`--usage-model knn`, the default, or `svr`): trained on every
//!   pod's series whose length exceeds the horizon ([`HORIZON_STEPS`] = 30 steps, five
//!   minutes at the agents' 10 s) with [`TrainingData`](crate::predict::TrainingData), once
//!   there are at least [`MIN_TRAIN`] training samples, and retrained at most every
//!   [`RETRAIN_EVERY`]. Its constant safety margin is calibrated as `plimsoll predict`
//!   does ([`calibrate_margin`](crate::predict::eval::calibrate_margin)): the model is fit
//!   on the first 75 % of each series' points (those whose horizon ends inside it) and
//!   the margin is the smallest one whose under-prediction rate on the last 25 % is at
//!   most [`TARGET_UNDER_RATE`] (1 %). A pod
//!   with at least [`HORIZON_STEPS`] samples of its own is predicted by the model
//!   (`Method::Model`).
//! - **Window fallback** (too few samples for the model, no model yet, or
//!   `--usage-model max`): the maximum of the pod's samples (at most the server's hour)
//!   times [`WINDOW_FACTOR`] (1.25), for a pod with at least [`MIN_SAMPLES`] (3)
//!   samples (`Method::Window`).
//! - A pod's **first sample** is left out everywhere ([`steady`]): it covers the
//!   container's start, a short window that often holds a start-up burst. So a pod has
//!   an estimate from its 4th sample (40 s at the agents' 10 s, 8 s at 2 s).
//! - **Memory** is always the window rule (max × 1.25): a learned memory model would
//!   need its own training, and memory is not compressible.
//! - **Workloads.** A workload's estimate (namespace, owner kind and name, the owner
//!   the history names: a Deployment for ReplicaSet pods) is the largest of its pods'.
//!   A pod without an estimate of its own uses its workload's.
//!
//! The scheduling loop keeps each pod's original requests and limits ([`UsageState`]):
//! a pod with an estimate (own or its workload's) is charged, for CPU,
//! `min(request, max(ceil(predicted), 10m))` and never more than its limit; memory
//! likewise (floor 16 MiB) only with `--usage-memory`. A pod that requests nothing of a
//! resource (BestEffort) stays at zero, and a pod without any estimate keeps its
//! requests (cold start). Running pods are re-charged when predictions change (the
//! cache's [`set_requests`](super::cache::Cache::set_requests)), pending pods when they
//! are placed; either change counts as a cluster change, so parked pods are retried.
//! A running pod whose new charge no longer fits its node (its prediction rose on a node
//! packed by prediction) keeps its last charge until it fits: the scheduler's view may
//! then under-count that node, which the rebalancer (`plimsoll balance --kubeconfig`)
//! is for.

use super::cache::Cache;
use crate::model::{Pod as ModelPod, Quantity, Resources};
use crate::server::usage::{PodHistory, UsageHistory, WorkloadOwner};
use k8s_openapi::api::core::v1::Pod;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Fewest samples of its own (after its first, see [`steady`]) for a pod to have an
/// estimate.
pub const MIN_SAMPLES: usize = 3;
/// The window fallback charges the maximum seen times this factor.
pub const WINDOW_FACTOR: f64 = 1.25;
/// Horizon of the learned model, in steps of the series (5 minutes at 10 s); also the
/// fewest samples a pod needs to be predicted by the model.
pub const HORIZON_STEPS: usize = 30;
/// Fewest training samples (over all pods) before a learned model is trained.
pub const MIN_TRAIN: usize = 200;
/// Under-prediction rate the learned model's margin is calibrated to.
pub const TARGET_UNDER_RATE: f64 = 0.01;
/// Longest a learned model is used before it is trained again.
pub const RETRAIN_EVERY: Duration = Duration::from_secs(60);
/// Least CPU a pod charged by prediction is charged, in millicores.
pub const CPU_FLOOR_MILLI: u64 = 10;
/// Least memory a pod charged by prediction is charged, in bytes.
pub const MEMORY_FLOOR_BYTES: u64 = 16 << 20;
/// Default seconds between two polls of the usage history.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(10);

/// Which predictor turns the history into peaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UsageModel {
    /// k-NN regression with a calibrated margin (the window rule until it is trained).
    #[default]
    Knn,
    /// Epsilon-SVR with a calibrated margin (the window rule until it is trained).
    Svr,
    /// The window rule only: max of the samples × [`WINDOW_FACTOR`].
    Max,
}

impl UsageModel {
    /// Every name [`from_name`](Self::from_name) accepts.
    pub const NAMES: [&'static str; 3] = ["knn", "svr", "max"];

    /// The model's name (`knn`, `svr`, `max`).
    pub fn name(self) -> &'static str {
        match self {
            UsageModel::Knn => "knn",
            UsageModel::Svr => "svr",
            UsageModel::Max => "max",
        }
    }

    /// The model called `name`; an error names the known ones (and says when the
    /// learned models are not built in: they need the `predict` feature).
    pub fn from_name(name: &str) -> Result<UsageModel, String> {
        let m = match name {
            "knn" => UsageModel::Knn,
            "svr" => UsageModel::Svr,
            "max" => UsageModel::Max,
            _ => {
                return Err(format!(
                    "unknown usage model {name:?}; known: {}",
                    Self::NAMES.join(", ")
                ))
            }
        };
        if cfg!(not(feature = "predict")) && m != UsageModel::Max {
            return Err(format!(
                "usage model {name:?} needs the `predict` feature; this build has only \"max\""
            ));
        }
        Ok(m)
    }
}

/// How usage-aware scheduling runs.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageAwareConfig {
    /// The predictor.
    pub model: UsageModel,
    /// Time between two polls of the usage history.
    pub refresh: Duration,
    /// Charge memory by its prediction too (off: memory stays by request).
    pub memory: bool,
}

impl Default for UsageAwareConfig {
    fn default() -> Self {
        UsageAwareConfig {
            model: UsageModel::default(),
            refresh: DEFAULT_REFRESH,
            memory: false,
        }
    }
}

/// How an estimate was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// The learned model (with its calibrated margin).
    Model,
    /// The maximum of the samples × [`WINDOW_FACTOR`].
    Window,
}

/// One pod's (or workload's) predicted peak over the horizon.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Estimate {
    /// Peak CPU, cores.
    pub cpu: f64,
    /// Peak memory working set, bytes.
    pub memory: u64,
    /// How the CPU peak was predicted.
    pub method: Method,
}

impl Estimate {
    /// The CPU peak in millicores, rounded up.
    pub fn cpu_milli(&self) -> u64 {
        let m = (self.cpu * 1000.0).ceil();
        if m.is_finite() && m > 0.0 {
            m.min(u64::MAX as f64) as u64
        } else {
            0
        }
    }

    fn max(self, o: Estimate) -> Estimate {
        Estimate {
            cpu: self.cpu.max(o.cpu),
            memory: self.memory.max(o.memory),
            method: if self.method == Method::Window || o.method == Method::Window {
                Method::Window
            } else {
                Method::Model
            },
        }
    }
}

/// A workload: namespace and owner as the usage history names it.
pub type WorkloadKey = (String, WorkloadOwner);

/// Estimates of one poll of the usage history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Predictions {
    /// Per pod uid (pods with at least [`MIN_SAMPLES`] steady samples).
    pub by_uid: HashMap<String, Estimate>,
    /// Per workload: the largest estimate of its pods.
    pub by_workload: HashMap<WorkloadKey, Estimate>,
    /// The learned model in use (`None`: the window rule only).
    pub model: Option<&'static str>,
    /// Its calibrated margin, in cores.
    pub margin: f64,
    /// Samples it was trained on.
    pub training_samples: usize,
}

impl Predictions {
    /// The estimate for a pod: its own, else the first of its workloads' that has one.
    /// The flag says whether it is the pod's own.
    pub fn for_pod(
        &self,
        uid: &str,
        namespace: &str,
        owners: &[WorkloadOwner],
    ) -> Option<(Estimate, bool)> {
        if let Some(e) = self.by_uid.get(uid) {
            return Some((*e, true));
        }
        owners.iter().find_map(|o| {
            self.by_workload
                .get(&(namespace.to_string(), o.clone()))
                .map(|e| (*e, false))
        })
    }
}

/// A pod's samples without its first: that one covers the pod's start (a window cut
/// short by the container's start time, often a start-up burst, e.g. 0.5 core over
/// 0.2 s), which says little of the steady usage to come.
pub fn steady(p: &PodHistory) -> &[crate::server::usage::UsageSample] {
    p.samples.get(1..).unwrap_or_default()
}

/// A pod's steady CPU samples as `(unix seconds, cores)` and the median interval.
fn samples_of(p: &PodHistory) -> (Vec<(i64, f64)>, i64) {
    let pts: Vec<(i64, f64)> = steady(p)
        .iter()
        .filter_map(|s| Some((s.timestamp().ok()?.as_millisecond(), s.cpu)))
        .filter(|(_, c)| c.is_finite())
        .collect();
    let mut gaps: Vec<i64> = pts
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .filter(|g| *g > 0)
        .collect();
    gaps.sort_unstable();
    let step = gaps
        .get(gaps.len() / 2)
        .map_or(10, |ms| ((ms + 500) / 1000).max(1));
    (
        pts.into_iter()
            .map(|(ms, c)| (ms.div_euclid(1000), c.max(0.0)))
            .collect(),
        step,
    )
}

/// The window rule: max of the steady samples × [`WINDOW_FACTOR`] (CPU and memory).
fn window_estimate(p: &PodHistory) -> Estimate {
    let cpu = steady(p)
        .iter()
        .map(|s| s.cpu)
        .filter(|c| c.is_finite())
        .fold(0.0, f64::max);
    let memory = steady(p).iter().map(|s| s.memory).max().unwrap_or(0);
    Estimate {
        cpu: cpu * WINDOW_FACTOR,
        memory: (memory as f64 * WINDOW_FACTOR).min(u64::MAX as f64) as u64,
        method: Method::Window,
    }
}

#[cfg(feature = "predict")]
mod learned {
    //! The learned models over the cluster's own histories.
    use super::{HORIZON_STEPS, MIN_TRAIN, TARGET_UNDER_RATE};
    use crate::predict::eval::{calibrate_margin, split_index};
    use crate::predict::knn::KnnParams;
    use crate::predict::{model, peak_after, Model, ModelOptions, Predictor, Series, TrainingData};

    fn options(samples: usize) -> Option<ModelOptions> {
        let k = (samples / 10).clamp(5, 50);
        let knn = KnnParams::new(k).ok()?.with_max_train(20_000.max(k)).ok()?;
        Some(ModelOptions {
            knn,
            ..ModelOptions::default()
        })
    }

    /// Trains `name` on `series` with a calibrated margin; `None` when there is too
    /// little history (or training fails: the window rule stands in).
    pub(super) fn train(name: &str, series: &[Series]) -> Option<(Model, usize)> {
        let long: Vec<Series> = series
            .iter()
            .filter(|s| s.len() > HORIZON_STEPS + 4)
            .cloned()
            .collect();
        let data = TrainingData::build(&long, HORIZON_STEPS);
        if data.len() < MIN_TRAIN {
            return None;
        }
        // Calibration points need their horizon inside the series: the last 25 % of
        // the points that have one; the fit sees only what precedes them.
        let cal_from: Vec<usize> = long
            .iter()
            .map(|s| split_index(s.len() - HORIZON_STEPS, 0.75))
            .collect();
        let fit_parts: Vec<Series> = long
            .iter()
            .zip(&cal_from)
            .map(|(s, &k)| s.prefix(k))
            .collect();
        let fit = TrainingData::build(&fit_parts, HORIZON_STEPS);
        let probe = model::train(name, &fit, &options(fit.len())?)
            .map_err(|e| tracing::debug!(error = %e, "usage model not calibrated"))
            .ok()?;
        let mut pairs = Vec::new();
        for (s, &from) in long.iter().zip(&cal_from) {
            for t in from..s.len() {
                let Some(y) = peak_after(s, t, HORIZON_STEPS) else {
                    break;
                };
                pairs.push((probe.predict(s, t), y));
            }
        }
        if pairs.is_empty() {
            return None;
        }
        let mut m = model::train(name, &data, &options(data.len())?)
            .map_err(|e| tracing::warn!(error = %e, "usage model not trained"))
            .ok()?;
        m.margin = calibrate_margin(&pairs, TARGET_UNDER_RATE);
        Some((m, data.len()))
    }

    /// The model's peak for the end of `s`, in cores (capacity 1).
    pub(super) fn predict(m: &Model, s: &Series) -> Option<f64> {
        let t = s.len().checked_sub(1)?;
        let p = m.predict(s, t) * s.capacity;
        p.is_finite().then_some(p.max(0.0))
    }

    /// A pod's series (capacity 1 core).
    pub(super) fn series(name: &str, samples: &[(i64, f64)], step: i64) -> Option<Series> {
        Series::resample(name, samples, step, 1.0).ok()
    }
}

/// Turns usage histories into [`Predictions`]; keeps its learned model between calls.
pub struct UsagePredictor {
    kind: UsageModel,
    #[cfg(feature = "predict")]
    learned: Option<(crate::predict::Model, usize, std::time::Instant)>,
}

impl std::fmt::Debug for UsagePredictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsagePredictor")
            .field("kind", &self.kind)
            .finish()
    }
}

impl UsagePredictor {
    /// A predictor with no learned model yet.
    pub fn new(kind: UsageModel) -> Self {
        UsagePredictor {
            kind,
            #[cfg(feature = "predict")]
            learned: None,
        }
    }

    /// The estimates of every pod with at least [`MIN_SAMPLES`] steady samples and of their
    /// workloads (see the module docs).
    pub fn predict(&mut self, history: &UsageHistory) -> Predictions {
        let mut out = Predictions::default();
        #[cfg(feature = "predict")]
        let series: HashMap<&str, crate::predict::Series> = history
            .pods
            .iter()
            .filter(|p| steady(p).len() >= MIN_SAMPLES)
            .filter_map(|p| {
                let (pts, step) = samples_of(p);
                Some((p.uid.as_str(), learned::series(&p.uid, &pts, step)?))
            })
            .collect();
        #[cfg(feature = "predict")]
        {
            let name = match self.kind {
                UsageModel::Knn => Some("knn"),
                UsageModel::Svr => Some("svr"),
                UsageModel::Max => None,
            };
            if let Some(name) = name {
                let stale = self
                    .learned
                    .as_ref()
                    .is_none_or(|(_, _, at)| at.elapsed() >= RETRAIN_EVERY);
                if stale {
                    let all: Vec<crate::predict::Series> = series.values().cloned().collect();
                    if let Some((m, n)) = learned::train(name, &all) {
                        self.learned = Some((m, n, std::time::Instant::now()));
                    }
                }
                if let Some((m, n, _)) = &self.learned {
                    out.model = Some(name);
                    out.margin = m.margin;
                    out.training_samples = *n;
                }
            }
        }
        #[cfg(not(feature = "predict"))]
        let _ = samples_of;
        for p in &history.pods {
            if steady(p).len() < MIN_SAMPLES {
                continue;
            }
            let mut e = window_estimate(p);
            #[cfg(feature = "predict")]
            if let (Some((m, _, _)), Some(s)) = (&self.learned, series.get(p.uid.as_str())) {
                if s.len() >= HORIZON_STEPS && self.kind != UsageModel::Max {
                    if let Some(cpu) = learned::predict(m, s) {
                        e.cpu = cpu;
                        e.method = Method::Model;
                    }
                }
            }
            out.by_uid.insert(p.uid.clone(), e);
            if let Some(o) = &p.owner {
                out.by_workload
                    .entry((p.namespace.clone(), o.clone()))
                    .and_modify(|w| *w = w.max(e))
                    .or_insert(e);
            }
        }
        out
    }
}

/// Reads the usage history from the API server.
pub async fn fetch_history(client: &kube::Client) -> Result<UsageHistory, String> {
    let req = axum::http::Request::get("/apis/plimsoll.io/v1/usagehistory")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let text = client
        .request_text(req)
        .await
        .map_err(|e| format!("GET /apis/plimsoll.io/v1/usagehistory: {e}"))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("GET /apis/plimsoll.io/v1/usagehistory: not a usage history: {e}"))
}

/// Polls the usage history every `config.refresh` and sends the predictions, until the
/// receiver is dropped. Failed polls are logged and retried at the next refresh.
pub async fn poll(
    client: kube::Client,
    config: UsageAwareConfig,
    tx: tokio::sync::mpsc::Sender<Predictions>,
) {
    let mut tick = tokio::time::interval(config.refresh.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut predictor = Some(UsagePredictor::new(config.model));
    loop {
        tick.tick().await;
        if tx.is_closed() {
            return;
        }
        let history = match fetch_history(&client).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "usage history not read");
                continue;
            }
        };
        let Some(mut p) = predictor.take() else {
            return;
        };
        let done = tokio::task::spawn_blocking(move || {
            let out = p.predict(&history);
            (p, out)
        })
        .await;
        match done {
            Ok((p, out)) => {
                predictor = Some(p);
                if tx.send(out).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "usage prediction failed");
                predictor = Some(UsagePredictor::new(config.model));
            }
        }
    }
}

/// The workloads a pod may belong to in the usage history: its controller owner, and
/// for a ReplicaSet named `<deployment>-<pod-template-hash>` the Deployment too (the
/// history names a Deployment's pods by the Deployment).
pub fn owners_of(pod: &Pod) -> Vec<WorkloadOwner> {
    let Some(o) = pod
        .metadata
        .owner_references
        .as_ref()
        .and_then(|refs| refs.iter().find(|r| r.controller == Some(true)))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if o.kind == "ReplicaSet" {
        let hash = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("pod-template-hash"));
        if let Some(deployment) = hash.and_then(|h| o.name.strip_suffix(&format!("-{h}"))) {
            out.push(WorkloadOwner {
                kind: "Deployment".into(),
                name: deployment.to_string(),
            });
        }
    }
    out.push(WorkloadOwner {
        kind: o.kind.clone(),
        name: o.name.clone(),
    });
    out
}

/// A pod's CPU (millicores) and memory (bytes) limits: the sum over its containers when
/// every container sets one, else `None`. Unreadable quantities count as unset.
pub fn limits_of(pod: &Pod) -> (Option<u64>, Option<u64>) {
    let Some(spec) = &pod.spec else {
        return (None, None);
    };
    let sum = |key: &str, parse: fn(&str) -> Option<u64>| -> Option<u64> {
        let mut total: u64 = 0;
        for c in &spec.containers {
            let q = c.resources.as_ref()?.limits.as_ref()?.get(key)?;
            total = total.checked_add(parse(&q.0)?)?;
        }
        (!spec.containers.is_empty()).then_some(total)
    };
    (
        sum("cpu", |s| Quantity::parse_milli(s).ok()),
        sum("memory", |s| Quantity::parse_units(s).ok()),
    )
}

/// What the loop keeps of a pod to charge it by prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct PodFacts {
    /// Its namespace.
    pub namespace: String,
    /// Its workloads ([`owners_of`]).
    pub owners: Vec<WorkloadOwner>,
    /// Its requests as written.
    pub requests: Resources,
    /// Its CPU limit, millicores.
    pub cpu_limit: Option<u64>,
    /// Its memory limit, bytes.
    pub memory_limit: Option<u64>,
}

impl PodFacts {
    /// The facts of a live pod and its model.
    pub fn of(pod: &Pod, model: &ModelPod) -> PodFacts {
        let (cpu_limit, memory_limit) = limits_of(pod);
        PodFacts {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            owners: owners_of(pod),
            requests: model.requests.clone(),
            cpu_limit,
            memory_limit,
        }
    }
}

/// One charged amount: `min(request, max(predicted, floor))`, at most `limit`; a zero
/// request stays zero.
fn charged(request: u64, predicted: u64, floor: u64, limit: Option<u64>) -> u64 {
    if request == 0 {
        return 0;
    }
    let c = predicted.max(floor).min(request);
    limit.map_or(c, |l| c.min(l.max(1)))
}

/// The requests a pod is charged given an estimate (see the module docs).
pub fn effective_requests(facts: &PodFacts, estimate: &Estimate, memory: bool) -> Resources {
    let mut r = facts.requests.clone();
    r.cpu_milli = charged(
        r.cpu_milli,
        estimate.cpu_milli(),
        CPU_FLOOR_MILLI,
        facts.cpu_limit,
    );
    if memory {
        r.memory_bytes = charged(
            r.memory_bytes,
            estimate.memory,
            MEMORY_FLOOR_BYTES,
            facts.memory_limit,
        );
    }
    r
}

/// The scheduling loop's usage-aware state: the latest predictions and what it knows of
/// each pod it may charge by them.
#[derive(Debug)]
pub struct UsageState {
    config: UsageAwareConfig,
    predictions: Predictions,
    facts: HashMap<String, PodFacts>,
    /// Effective requests of pending pods at the last refresh (to see changes).
    pending: HashMap<String, Resources>,
}

impl UsageState {
    /// No predictions yet.
    pub fn new(config: UsageAwareConfig) -> Self {
        UsageState {
            config,
            predictions: Predictions::default(),
            facts: HashMap::new(),
            pending: HashMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &UsageAwareConfig {
        &self.config
    }

    /// The latest predictions.
    pub fn predictions(&self) -> &Predictions {
        &self.predictions
    }

    /// Records a pod's requests, limits and workloads (first sight only: they do not
    /// change while the pod lives).
    pub fn observe(&mut self, uid: &str, pod: &Pod, model: &ModelPod) {
        if !self.facts.contains_key(uid) {
            self.facts.insert(uid.to_string(), PodFacts::of(pod, model));
        }
    }

    /// Forgets a pod (deleted or finished).
    pub fn forget(&mut self, uid: &str) {
        self.facts.remove(uid);
        self.pending.remove(uid);
    }

    /// The requests pod `uid` is charged now, if it is known and has an estimate.
    pub fn requests_for(&self, uid: &str) -> Option<Resources> {
        let f = self.facts.get(uid)?;
        let (e, _) = self.predictions.for_pod(uid, &f.namespace, &f.owners)?;
        Some(effective_requests(f, &e, self.config.memory))
    }

    /// The model charged by prediction (unchanged without an estimate).
    pub fn adjust(&self, uid: &str, mut model: ModelPod) -> ModelPod {
        if let Some(r) = self.requests_for(uid) {
            model.requests = r;
        }
        model
    }

    /// Takes new predictions: re-charges the bound pods in `cache` whose charge changed
    /// and reports whether anything the scheduler sees changed (a bound pod's charge, or
    /// the charge of a pod in `pending`). Also drops facts of pods neither bound nor
    /// pending. Returns (changed, pods charged by prediction).
    pub fn refresh(
        &mut self,
        predictions: Predictions,
        cache: &mut Cache,
        pending: &HashSet<String>,
    ) -> (bool, usize) {
        self.predictions = predictions;
        let mut bound = cache.bound_uids();
        bound.sort_unstable();
        let live: HashSet<&str> = bound
            .iter()
            .map(String::as_str)
            .chain(pending.iter().map(String::as_str))
            .collect();
        self.facts.retain(|u, _| live.contains(u.as_str()));
        let mut changed = false;
        let mut predicted = 0;
        for uid in &bound {
            let Some(f) = self.facts.get(uid) else {
                continue;
            };
            let want = self.requests_for(uid).unwrap_or_else(|| f.requests.clone());
            match cache.set_requests(uid, want) {
                Ok(true) => changed = true,
                Ok(false) => {}
                Err(e) => tracing::debug!(pod = %uid, error = %e, "not re-charged"),
            }
            if cache
                .bound_model(uid)
                .is_some_and(|m| m.requests != f.requests)
            {
                predicted += 1;
            }
        }
        let mut now_pending = HashMap::new();
        for uid in pending {
            if let Some(r) = self.requests_for(uid) {
                if self.facts.get(uid).is_some_and(|f| f.requests != r) {
                    predicted += 1;
                }
                now_pending.insert(uid.clone(), r);
            }
        }
        if now_pending != self.pending {
            changed = true;
        }
        self.pending = now_pending;
        (changed, predicted)
    }
}

/// A live cluster read for rebalancing: its nodes and bound pods, with each pod's
/// estimate.
#[derive(Debug)]
pub struct LiveCluster {
    /// The nodes and the bound pods (no pending pods).
    pub problem: crate::model::Problem,
    /// Estimate of each bound pod with one, by `namespace/name` (the flag: its own, not
    /// its workload's).
    pub estimates: std::collections::BTreeMap<String, (Estimate, bool)>,
    /// Pods left out: unreadable, on an unknown node, or not fitting it even charged
    /// by prediction; each with the reason.
    pub skipped: Vec<(String, String)>,
}

/// Reads live nodes and pods into a [`LiveCluster`]: every pod bound to a node and not
/// finished, charged as a `--usage-aware` scheduler charges it — its
/// [`effective_requests`] (CPU and memory) under `predictions` if it or its workload has
/// an estimate, else its requests. Moves planned on this view assume such a scheduler:
/// a pod fits where its predicted peak fits.
pub fn live_cluster(
    nodes: &[k8s_openapi::api::core::v1::Node],
    pods: &[Pod],
    predictions: &Predictions,
) -> Result<LiveCluster, String> {
    let models = nodes
        .iter()
        .map(|n| super::node_model(n).map_err(|e| format!("node {:?}: {e}", n.metadata.name)))
        .collect::<Result<Vec<_>, _>>()?;
    let cluster = crate::model::Cluster::new(models).map_err(|e| e.to_string())?;
    let mut out = LiveCluster {
        problem: crate::model::Problem {
            cluster,
            pending: Vec::new(),
        },
        estimates: Default::default(),
        skipped: Vec::new(),
    };
    for pod in pods {
        let Some(node) = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty())
        else {
            continue;
        };
        if super::is_terminal(pod) {
            continue;
        }
        let key = format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default()
        );
        let mut m = match super::model_of(pod) {
            Ok(m) => m,
            Err(e) => {
                out.skipped.push((key, e));
                continue;
            }
        };
        m.node_name = Some(node);
        let uid = super::uid(&pod.metadata);
        let facts = PodFacts::of(pod, &m);
        let estimate = predictions.for_pod(&uid, &facts.namespace, &facts.owners);
        if let Some(e) = estimate {
            out.estimates.insert(key.clone(), e);
        }
        if let Some((e, _)) = estimate {
            m.requests = effective_requests(&facts, &e, true);
        }
        if let Err(e) = out.problem.cluster.bind_named(m) {
            out.skipped.push((key, e.to_string()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Node, GIB};
    use crate::place::clock::ManualClock;
    use crate::place::PolicyOptions;
    use crate::server::usage::UsageSample;
    use serde_json::json;
    use std::sync::Arc;

    fn history(uid: &str, name: &str, owner: Option<&str>, cpus: &[f64]) -> PodHistory {
        PodHistory {
            namespace: "default".into(),
            name: name.into(),
            uid: uid.into(),
            node: "n1".into(),
            owner: owner.map(|o| WorkloadOwner {
                kind: "Deployment".into(),
                name: o.into(),
            }),
            samples: cpus
                .iter()
                .enumerate()
                .map(|(i, c)| UsageSample {
                    time: crate::server::usage::rfc3339_ms(1_700_000_000_000 + 10_000 * i as i64),
                    cpu: *c,
                    memory: 8 << 20,
                })
                .collect(),
        }
    }

    fn burner(name: &str, uid: &str, rs: Option<&str>) -> Pod {
        let mut v = json!({
            "metadata": {"name": name, "namespace": "default", "uid": uid,
                "labels": {"app": "burn", "pod-template-hash": "abc12"}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                "resources": {"requests": {"cpu": "1", "memory": "64Mi"},
                              "limits": {"cpu": "1", "memory": "128Mi"}}}]}
        });
        if let Some(rs) = rs {
            v["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1",
                "kind": "ReplicaSet", "name": rs, "uid": "rs-uid", "controller": true}]);
        }
        serde_json::from_value(v).unwrap()
    }

    fn state(pods: &[(&str, &Pod)]) -> UsageState {
        let mut s = UsageState::new(UsageAwareConfig::default());
        for (uid, p) in pods {
            let m = super::super::model_of(p).unwrap();
            s.observe(uid, p, &m);
        }
        s
    }

    #[test]
    fn a_constant_burner_is_charged_its_usage_with_the_margin() {
        let h = UsageHistory {
            pods: vec![history("u1", "b-1", Some("b"), &[0.2; 12])],
        };
        let p = UsagePredictor::new(UsageModel::Knn).predict(&h);
        let e = p.by_uid["u1"];
        assert_eq!(
            e.method,
            Method::Window,
            "12 samples: too few for the model"
        );
        assert!((e.cpu - 0.2 * WINDOW_FACTOR).abs() < 1e-9, "{e:?}");
        assert_eq!(e.memory, (8u64 << 20) * 5 / 4);
        let pod = burner("b-1", "u1", Some("b-abc12"));
        let mut s = state(&[("u1", &pod)]);
        s.predictions = p;
        let r = s.requests_for("u1").unwrap();
        assert_eq!(
            r.cpu_milli, 250,
            "0.2 cores × 1.25, well under the request of 1"
        );
        assert_eq!(
            r.memory_bytes,
            64 << 20,
            "memory stays by request by default"
        );
        // Fewer than MIN_SAMPLES samples after the first: no estimate.
        let h = UsageHistory {
            pods: vec![history("u2", "x", None, &[0.2; MIN_SAMPLES])],
        };
        assert!(UsagePredictor::new(UsageModel::Max)
            .predict(&h)
            .by_uid
            .is_empty());
    }

    #[cfg(feature = "predict")]
    #[test]
    fn the_learned_model_takes_over_with_enough_history() {
        // Eight pods, 120 samples each, around 0.2 cores with a little noise.
        let pods: Vec<PodHistory> = (0..8)
            .map(|k| {
                let cpus: Vec<f64> = (0..120)
                    .map(|i| 0.2 + 0.01 * (((i * 7 + k * 3) % 5) as f64 - 2.0))
                    .collect();
                history(&format!("u{k}"), &format!("b-{k}"), Some("b"), &cpus)
            })
            .collect();
        let p = UsagePredictor::new(UsageModel::Knn).predict(&UsageHistory { pods });
        assert_eq!(p.model, Some("knn"));
        assert!(p.training_samples >= MIN_TRAIN, "{p:?}");
        for k in 0..8 {
            let e = p.by_uid[&format!("u{k}")];
            assert_eq!(e.method, Method::Model);
            assert!((0.2..0.3).contains(&e.cpu), "u{k}: {e:?}");
        }
    }

    #[test]
    fn pods_without_history_use_their_workload_or_keep_their_requests() {
        let h = UsageHistory {
            pods: vec![
                // The first samples (start-up bursts) are left out.
                history("u1", "b-abc12-x", Some("b"), &[0.9, 0.1, 0.2, 0.15]),
                history("u2", "b-abc12-y", Some("b"), &[0.9, 0.3, 0.1, 0.1]),
            ],
        };
        let p = UsagePredictor::new(UsageModel::Max).predict(&h);
        let new = burner("b-abc12-z", "u3", Some("b-abc12"));
        let lone = burner("lone", "u4", None);
        let other = burner("c-abc12-z", "u5", Some("c-abc12"));
        let mut s = state(&[("u3", &new), ("u4", &lone), ("u5", &other)]);
        s.predictions = p;
        // The Deployment's largest pod: 0.3 × 1.25.
        assert_eq!(s.requests_for("u3").unwrap().cpu_milli, 375);
        assert_eq!(s.requests_for("u4"), None, "no history, no owner");
        assert_eq!(s.requests_for("u5"), None, "another workload");
        let m = super::super::model_of(&lone).unwrap();
        assert_eq!(s.adjust("u4", m.clone()).requests, m.requests);
        assert_eq!(
            owners_of(&new),
            vec![
                WorkloadOwner {
                    kind: "Deployment".into(),
                    name: "b".into()
                },
                WorkloadOwner {
                    kind: "ReplicaSet".into(),
                    name: "b-abc12".into()
                }
            ]
        );
    }

    #[test]
    fn a_prediction_never_raises_a_request_nor_passes_a_limit() {
        let facts = PodFacts {
            namespace: "default".into(),
            owners: vec![],
            requests: Resources {
                cpu_milli: 500,
                memory_bytes: 64 << 20,
                ..Default::default()
            },
            cpu_limit: Some(300),
            memory_limit: None,
        };
        let e = |cpu: f64, memory: u64| Estimate {
            cpu,
            memory,
            method: Method::Window,
        };
        let r = effective_requests(&facts, &e(4.0, 1 << 40), true);
        assert_eq!(r.cpu_milli, 300, "at most the limit");
        assert_eq!(r.memory_bytes, 64 << 20, "at most the request");
        let r = effective_requests(&facts, &e(0.0, 0), true);
        assert_eq!(r.cpu_milli, CPU_FLOOR_MILLI);
        assert_eq!(r.memory_bytes, MEMORY_FLOOR_BYTES);
        let r = effective_requests(&facts, &e(0.0, 0), false);
        assert_eq!(r.memory_bytes, 64 << 20, "memory by request unless asked");
        let best_effort = PodFacts {
            requests: Resources::default(),
            cpu_limit: None,
            ..facts
        };
        assert_eq!(
            effective_requests(&best_effort, &e(2.0, 5), true).cpu_milli,
            0
        );
        assert_eq!(
            limits_of(&burner("p", "u", None)),
            (Some(1000), Some(128 << 20))
        );
    }

    #[test]
    fn a_refresh_recharges_bound_pods_and_reports_changes() {
        let mut cache = Cache::new(
            "best-fit",
            PolicyOptions::default(),
            Arc::new(ManualClock::new()),
            Duration::from_secs(2),
        )
        .unwrap();
        cache.upsert_node(Node::new("n1", 2000, 8 * GIB));
        let pods: Vec<Pod> = (0..3)
            .map(|i| burner(&format!("b-abc12-{i}"), &format!("u{i}"), Some("b-abc12")))
            .collect();
        let mut s = state(&[("u0", &pods[0]), ("u1", &pods[1]), ("u2", &pods[2])]);
        for (i, pod) in pods.iter().enumerate().take(2) {
            let m = super::super::model_of(pod).unwrap();
            cache
                .bind(
                    &format!("u{i}"),
                    s.adjust(&format!("u{i}"), m),
                    "n1",
                    vec![],
                    false,
                )
                .unwrap();
        }
        let pending: HashSet<String> = ["u2".to_string()].into();
        // By requests the node is full: the third burner does not fit.
        let m2 = super::super::model_of(&pods[2]).unwrap();
        let (placed, _) = cache
            .place("best-fit", vec![("u2".into(), s.adjust("u2", m2.clone()))])
            .unwrap();
        assert_eq!(placed, vec![None]);
        let h = UsageHistory {
            pods: (0..2)
                .map(|i| {
                    history(
                        &format!("u{i}"),
                        &format!("b-abc12-{i}"),
                        Some("b"),
                        &[0.2; 5],
                    )
                })
                .collect(),
        };
        let p = UsagePredictor::new(UsageModel::Max).predict(&h);
        let (changed, predicted) = s.refresh(p.clone(), &mut cache, &pending);
        assert!(changed);
        assert_eq!(predicted, 3, "two bound, one pending by its workload");
        assert_eq!(cache.bound_model("u0").unwrap().requests.cpu_milli, 250);
        let (again, _) = s.refresh(p, &mut cache, &pending);
        assert!(!again, "same predictions: nothing changed");
        let (placed, _) = cache
            .place("best-fit", vec![("u2".into(), s.adjust("u2", m2))])
            .unwrap();
        assert_eq!(placed[0].as_ref().unwrap().0, "n1");
        // Predictions gone: the bound pods go back to their requests where they fit;
        // the others keep their last charge (the node holds them already).
        let (changed, predicted) = s.refresh(Predictions::default(), &mut cache, &HashSet::new());
        assert!(changed);
        assert_eq!(predicted, 2);
        assert_eq!(cache.bound_model("u0").unwrap().requests.cpu_milli, 1000);
        assert_eq!(cache.bound_model("u1").unwrap().requests.cpu_milli, 250);
    }
}
