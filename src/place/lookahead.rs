//! `lookahead:W`: a batch policy that plans windows of `W` pending pods together
//! (`lookahead:all`: the whole batch at once).
//!
//! It is not an online policy: it shows what a scheduler that may hold pods back and
//! place them together gains over placing them one at a time. Each window (the pending
//! pods in input order, `W` at a time) is planned by priority (highest first, as the
//! online policies place pods) and, within a priority, in order of decreasing GPU demand
//! — total GPU milli, then per-device milli, then CPU; input order on ties: multi-GPU
//! pods first, small shares last, CPU-only pods after every GPU pod — a gang as one unit;
//! each pod is placed by the inner online policy (`cbf` by default) on the cluster as the
//! plan so far leaves it. A pod the plan cannot place stays pending; a gang that gets
//! fewer than its minimum members is taken off again, as the online policies do.
//!
//! Every planned choice stays valid in input order as long as pods only arrive: the pods
//! placed before any one of them are a subset of the plan's, and whatever fits with all
//! of them fits with a subset. The saturation experiment relies on that to hand each pod
//! its planned node as it arrives.

use super::online::units::place_unit;
use super::online::{OnlineKind, OnlinePolicy, Session};
use super::{Outcome, PlaceError, Placer, SolveStats};
use crate::model::{Binding, ClusterError, Pod, PodId, Problem};
use std::cmp::Reverse;
use std::time::Instant;

/// The look-ahead batch policy.
#[derive(Debug, Clone)]
pub struct Lookahead {
    /// Pods planned together; `None` plans the whole batch at once.
    pub window: Option<usize>,
    /// The online policy that places each sorted window.
    pub inner: OnlinePolicy,
    name: String,
}

impl Lookahead {
    /// Windows of `window` pods (`None`: all), placed by `inner`.
    pub fn new(window: Option<usize>, inner: OnlinePolicy) -> Self {
        Lookahead {
            name: match window {
                Some(w) => format!("lookahead:{w}"),
                None => "lookahead:all".into(),
            },
            window: window.map(|w| w.max(1)),
            inner,
        }
    }

    /// Windows of `window` pods placed by `cbf` with this seed.
    pub fn cbf(window: Option<usize>, seed: u64) -> Self {
        Lookahead::new(window, OnlinePolicy::new(OnlineKind::Cbf, seed))
    }

    /// Parses the part after `lookahead:`: a positive number of pods or `all`.
    pub fn parse_window(spec: &str) -> Result<Option<usize>, PlaceError> {
        match spec {
            "all" => Ok(None),
            s => match s.parse::<usize>() {
                Ok(w) if w > 0 => Ok(Some(w)),
                _ => Err(PlaceError::InvalidOption {
                    name: "lookahead window",
                    msg: format!(
                        "lookahead:{s}: the window must be a positive number of pods or `all`"
                    ),
                }),
            },
        }
    }
}

/// The GPU-demand key a window is sorted by (larger first): total GPU milli, per-device
/// milli, CPU.
fn demand(p: &Pod) -> (Reverse<u64>, Reverse<u32>, Reverse<u64>) {
    let per_device = match p.gpu.amount {
        crate::model::GpuAmount::None => 0,
        crate::model::GpuAmount::Shared(m) => m,
        crate::model::GpuAmount::Whole(_) => crate::model::MILLI_PER_GPU,
    };
    (
        Reverse(p.gpu.amount.total_milli()),
        Reverse(per_device),
        Reverse(p.requests.cpu_milli),
    )
}

/// The order in which the window `window` of `pending` (input indices) is planned, as
/// units: higher priority first; within a priority, larger GPU demand first (a gang as
/// one unit, at its largest member's demand); input order on ties.
pub fn plan_order(pending: &[Pod], window: std::ops::Range<usize>) -> Vec<Vec<usize>> {
    let from = window.start;
    let mut units: Vec<Vec<usize>> = super::online::units::placement_units(&pending[window])
        .into_iter()
        .map(|u| u.into_iter().map(|i| i + from).collect())
        .collect();
    // Stable: equal keys keep the priority-then-input order of `placement_units`.
    units.sort_by_key(|u| {
        let top = u
            .iter()
            .map(|&i| demand(&pending[i]))
            .min()
            .expect("units are not empty");
        (Reverse(pending[u[0]].priority), top)
    });
    for u in &mut units {
        u.sort_by_key(|&i| (demand(&pending[i]), i));
    }
    units
}

/// Places `pending` on the live `session` window by window (see the module docs),
/// binding as it goes; a gang that gets fewer than its minimum members is taken off
/// again at once. Returns each pod's id and binding (`None`: not placed). [`Lookahead`]
/// runs this on a copy of the problem's cluster; a scheduler that plans ahead runs it on
/// its own session, which then holds the plan.
pub fn place_windows(
    session: &mut Session<'_>,
    pending: &[Pod],
    window: Option<usize>,
) -> Result<Vec<Option<(PodId, Binding)>>, ClusterError> {
    let n = pending.len();
    let mut placed: Vec<Option<(PodId, Binding)>> = vec![None; n];
    let w = window.unwrap_or(n).max(1);
    let mut from = 0;
    while from < n {
        let end = (from + w).min(n);
        for unit in plan_order(pending, from..end) {
            place_unit(session, pending, &unit, &mut placed)?;
        }
        from = end;
    }
    Ok(placed)
}

impl Placer for Lookahead {
    fn name(&self) -> &str {
        &self.name
    }

    fn place(&self, problem: &Problem) -> Result<Outcome, PlaceError> {
        let start = Instant::now();
        let mut inner = self.inner.clone();
        if inner.uses_workload() && inner.target_workload.is_none() {
            inner.target_workload = Some(crate::place::score::fgd::TargetWorkload::from_pods(
                &problem.pending,
                crate::place::score::fgd::DEFAULT_COVERAGE,
            ));
        }
        let mut session = inner.session(problem.cluster.clone());
        let placed = place_windows(&mut session, &problem.pending, self.window)?;
        Ok(Outcome {
            policy: self.name.clone(),
            placement: placed.into_iter().map(|p| p.map(|(_, b)| b)).collect(),
            stats: SolveStats {
                solve_seconds: start.elapsed().as_secs_f64(),
                ..Default::default()
            },
        })
    }
}
