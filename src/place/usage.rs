//! Usage-aware placement: pack CPU by predicted peak usage (plus a safety margin) instead
//! of by requests, as Koordinator's load-aware scheduling does with its estimates.
//!
//! This module owns the *transform*, not a policy. [`effective_problem`] builds an
//! "effective" [`Problem`] in which every pod (pending and bound) that has an estimate
//! requests `min(ceil(estimate × (1 + margin)), request)` millicores of CPU, and, only if
//! [`UsageOptions::memory_by_usage`] is set and the estimate has memory, the same for
//! memory; every other field of the pod (other resources, GPUs, selectors, affinity,
//! taints, ports, priority) is untouched. Any [`Placer`] (every greedy policy and the
//! MILP) then runs on the effective problem, and [`place_by_usage`] validates its answer
//! with the independent validator *against the effective problem*.
//!
//! Rules, chosen to be safe and predictable:
//! - **An estimate never raises a request above what the pod asked for**: a pod with a
//!   non-zero request is charged at most its request (over-packing can only free room,
//!   never take it). A pod that requests zero of a resource (Kubernetes BestEffort) is
//!   charged its inflated estimate, since it will use that much.
//! - **A pod without an estimate keeps its request** (cold start: nothing is known).
//! - Memory stays by request unless asked: memory is not compressible, an under-estimate
//!   is an OOM kill rather than throttling.
//!
//! Mapping back is the identity: the effective problem has the same nodes in the same
//! order and the same pending pods in the same order, so `placement[i]` of the effective
//! problem is where the original `pending[i]` goes. The placement does *not* pass
//! [`validate`] on the original problem when it over-commits requests: that is the point.
//! A [`Cluster`] checks requests when binding, so the state after
//! a usage-aware placement is the effective cluster ([`UsageOutcome::apply`]), with the
//! original requests kept beside it ([`EffectiveProblem::original_pending_requests`]).

use super::validate::validate;
use super::{Outcome, PlaceError, Placer};
use crate::model::{Cluster, ClusterError, Pod, Problem, Quantity, Resources};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Largest accepted margin (10 = charge 11 × the estimate).
pub const MAX_MARGIN: f64 = 10.0;

/// Errors of usage-aware placement.
#[derive(Debug, Error)]
pub enum UsageError {
    /// An option is out of range.
    #[error("invalid option --{name}: {msg}")]
    InvalidOption {
        /// Option name.
        name: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// The estimates file is not valid YAML/JSON of the expected shape.
    #[error("{path}: {msg}")]
    Parse {
        /// File.
        path: PathBuf,
        /// What is wrong (with line and column when the parser gives them).
        msg: String,
    },
    /// One field of one pod's estimate is invalid.
    #[error("{path}: pod {pod:?}, field {field}: {msg}")]
    Field {
        /// File.
        path: PathBuf,
        /// Pod key as written.
        pod: String,
        /// Field name.
        field: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// The wrapped policy failed.
    #[error(transparent)]
    Place(#[from] PlaceError),
    /// Rebuilding the effective cluster failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The policy's placement breaks a hard constraint of the effective problem (a bug).
    #[error(
        "policy {policy} broke {count} hard constraint(s) of the effective problem; first: {first}"
    )]
    Invalid {
        /// Policy name.
        policy: String,
        /// Number of violations.
        count: usize,
        /// The first violation, printed.
        first: String,
    },
}

/// One pod's predicted peak usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodEstimate {
    /// Predicted peak CPU, millicores.
    pub cpu_milli: u64,
    /// Predicted peak memory, bytes (used only with [`UsageOptions::memory_by_usage`]).
    pub memory_bytes: Option<u64>,
}

/// Per-pod estimates keyed by pod key (`namespace/name`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageEstimates {
    /// Estimate of each pod, by `namespace/name`.
    pub by_pod: BTreeMap<String, PodEstimate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    pods: BTreeMap<String, FileEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    cpu: Option<FileQuantity>,
    memory: Option<FileQuantity>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FileQuantity {
    Text(String),
    Number(serde_yaml::Number),
}

impl FileQuantity {
    fn text(&self) -> String {
        match self {
            FileQuantity::Text(s) => s.clone(),
            FileQuantity::Number(n) => n.to_string(),
        }
    }
}

impl UsageEstimates {
    /// Reads an estimates file (see [`UsageEstimates::parse`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, UsageError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| UsageError::Parse {
            path: path.to_path_buf(),
            msg: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses YAML or JSON of the form
    /// `{"pods": {"default/web-1": {"cpu": "250m", "memory": "512Mi"}, …}}`: Kubernetes
    /// quantities (strings or numbers); `cpu` is required, `memory` optional. Keys without
    /// a `/` are in namespace `default`. `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, UsageError> {
        let doc: FileDoc = serde_yaml::from_str(text).map_err(|e| UsageError::Parse {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        let mut by_pod = BTreeMap::new();
        for (key, e) in doc.pods {
            let field = |field: &'static str, msg: String| UsageError::Field {
                path: path.to_path_buf(),
                pod: key.clone(),
                field,
                msg,
            };
            let cpu = e
                .cpu
                .ok_or_else(|| field("cpu", "missing (an estimate needs cpu)".into()))?;
            let cpu_milli =
                Quantity::parse_milli(&cpu.text()).map_err(|err| field("cpu", err.to_string()))?;
            let memory_bytes = match e.memory {
                Some(m) => Some(
                    Quantity::parse_units(&m.text())
                        .map_err(|err| field("memory", err.to_string()))?,
                ),
                None => None,
            };
            let full = if key.contains('/') {
                key.clone()
            } else {
                format!("default/{key}")
            };
            by_pod.insert(
                full,
                PodEstimate {
                    cpu_milli,
                    memory_bytes,
                },
            );
        }
        Ok(UsageEstimates { by_pod })
    }

    /// Keys of estimates that match no pod (pending or bound) of `problem`, sorted.
    pub fn unknown_pods(&self, problem: &Problem) -> Vec<String> {
        let mut known: std::collections::BTreeSet<String> =
            problem.pending.iter().map(Pod::key).collect();
        known.extend(problem.cluster.bound_pods().map(|(_, p, _)| p.key()));
        self.by_pod
            .keys()
            .filter(|k| !known.contains(*k))
            .cloned()
            .collect()
    }
}

/// How estimates become effective requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UsageOptions {
    /// Safety margin: a pod is charged `estimate × (1 + margin)` (capped at its request).
    pub margin: f64,
    /// Also charge memory by its estimate (otherwise memory stays by request).
    pub memory_by_usage: bool,
}

impl UsageOptions {
    /// Checked options: `margin` must be finite and in `0..=MAX_MARGIN`.
    pub fn new(margin: f64, memory_by_usage: bool) -> Result<Self, UsageError> {
        if !(margin.is_finite() && (0.0..=MAX_MARGIN).contains(&margin)) {
            return Err(UsageError::InvalidOption {
                name: "margin",
                msg: format!("{margin} is not a fraction in 0..={MAX_MARGIN}"),
            });
        }
        Ok(UsageOptions {
            margin,
            memory_by_usage,
        })
    }
}

/// `ceil(estimate × (1 + margin))`, capped at `request` when the request is non-zero.
pub fn charge(estimate: u64, request: u64, margin: f64) -> u64 {
    let inflated = (estimate as f64 * (1.0 + margin)).ceil();
    let inflated = if inflated >= u64::MAX as f64 {
        u64::MAX
    } else {
        inflated as u64
    };
    if request == 0 {
        inflated
    } else {
        inflated.min(request)
    }
}

/// The requests `pod` is charged under `opts` given its estimate (its own requests if
/// `estimate` is `None`).
pub fn effective_requests(
    pod: &Pod,
    estimate: Option<&PodEstimate>,
    opts: &UsageOptions,
) -> Resources {
    let mut r = pod.requests.clone();
    if let Some(e) = estimate {
        r.cpu_milli = charge(e.cpu_milli, pod.requests.cpu_milli, opts.margin);
        if let (true, Some(m)) = (opts.memory_by_usage, e.memory_bytes) {
            r.memory_bytes = charge(m, pod.requests.memory_bytes, opts.margin);
        }
    }
    r
}

/// A problem whose pods are charged their estimates, and what they originally asked for.
#[derive(Debug, Clone)]
pub struct EffectiveProblem {
    /// Same nodes and pods, in the same order, with effective requests.
    pub problem: Problem,
    /// The original requests of `problem.pending`, same order.
    pub original_pending_requests: Vec<Resources>,
    /// Pods (pending and bound) whose requests came from an estimate.
    pub estimated_pods: usize,
}

/// Builds the effective problem: every pod with an estimate (pending or bound) is
/// charged [`effective_requests`]; bound pods stay on their nodes and devices.
pub fn effective_problem(
    problem: &Problem,
    estimates: &UsageEstimates,
    opts: &UsageOptions,
) -> Result<EffectiveProblem, UsageError> {
    let mut estimated = 0;
    let mut convert = |pod: &Pod| {
        let e = estimates.by_pod.get(&pod.key());
        estimated += usize::from(e.is_some());
        let mut p = pod.clone();
        p.requests = effective_requests(pod, e, opts);
        p
    };
    let mut cluster = problem.cluster.without_pods();
    for (_, pod, b) in problem.cluster.bound_pods() {
        cluster.bind(convert(pod), b.node, Some(b.gpu_devices.clone()))?;
    }
    let pending: Vec<Pod> = problem.pending.iter().map(&mut convert).collect();
    Ok(EffectiveProblem {
        problem: Problem { cluster, pending },
        original_pending_requests: problem.pending.iter().map(|p| p.requests.clone()).collect(),
        estimated_pods: estimated,
    })
}

/// A usage-aware placement: the effective problem and the policy's validated outcome on
/// it. `outcome.placement[i]` is where the original `pending[i]` goes.
#[derive(Debug, Clone)]
pub struct UsageOutcome {
    /// The effective problem the policy saw.
    pub effective: EffectiveProblem,
    /// The policy's outcome (valid on `effective.problem`).
    pub outcome: Outcome,
}

impl UsageOutcome {
    /// The effective cluster after the placement (pods bound with effective requests).
    pub fn apply(&self) -> Result<Cluster, ClusterError> {
        self.outcome.apply(&self.effective.problem)
    }
}

/// Runs `placer` on the effective problem of `problem` and validates the result against
/// every hard constraint of the effective problem.
pub fn place_by_usage(
    placer: &dyn Placer,
    problem: &Problem,
    estimates: &UsageEstimates,
    opts: &UsageOptions,
) -> Result<UsageOutcome, UsageError> {
    let effective = effective_problem(problem, estimates, opts)?;
    let outcome = placer.place(&effective.problem)?;
    if let Err(v) = validate(&effective.problem, &outcome.placement) {
        return Err(UsageError::Invalid {
            policy: placer.name().to_string(),
            count: v.len(),
            first: v.first().map(ToString::to_string).unwrap_or_default(),
        });
    }
    Ok(UsageOutcome { effective, outcome })
}

#[cfg(test)]
mod tests;
