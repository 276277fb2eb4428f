//! `lookahead:W`: a batch policy that plans windows of `W` pending pods together
//! (`lookahead:all`: the whole batch at once).
//!
//! It is not an online policy: it shows what a scheduler that may hold pods back and
//! place them together gains over placing them one at a time. Each window (the pending
//! pods in input order, `W` at a time) is planned in order of decreasing GPU demand —
//! total GPU milli, then per-device milli, then CPU; input order on ties: multi-GPU pods
//! first, small shares last, CPU-only pods after every GPU pod — each pod placed by the
//! inner online policy (`cbf` by default) on the cluster as the plan so far leaves it. A
//! pod the plan cannot place stays pending; a gang that gets fewer than its minimum
//! members is taken off again, as the online policies do.
//!
//! Every planned choice stays valid in input order as long as pods only arrive: the pods
//! placed before any one of them are a subset of the plan's, and whatever fits with all
//! of them fits with a subset. The saturation experiment relies on that to hand each pod
//! its planned node as it arrives.

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

/// The order in which the window `window` of `pending` (input indices) is planned: larger
/// GPU demand first (see the module docs).
pub fn plan_order(pending: &[Pod], window: std::ops::Range<usize>) -> Vec<usize> {
    let mut idx: Vec<usize> = window.collect();
    idx.sort_by_key(|&i| {
        let p = &pending[i];
        let per_device = match p.gpu.amount {
            crate::model::GpuAmount::None => 0,
            crate::model::GpuAmount::Shared(m) => m,
            crate::model::GpuAmount::Whole(_) => crate::model::MILLI_PER_GPU,
        };
        (
            Reverse(p.gpu.amount.total_milli()),
            Reverse(per_device),
            Reverse(p.requests.cpu_milli),
            i,
        )
    });
    idx
}

/// Places `pending` on the live `session` window by window (see the module docs),
/// binding as it goes; a gang short of its minimum is taken off again at the end.
/// Returns each pod's id and binding (`None`: not placed). [`Lookahead`] runs this on a
/// copy of the problem's cluster; a scheduler that plans ahead runs it on its own
/// session, which then holds the plan.
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
        for i in plan_order(pending, from..end) {
            placed[i] = session.place(pending[i].clone())?;
        }
        from = end;
    }
    // Gangs: all or nothing, as the online policies place them.
    let mut by_gang: std::collections::BTreeMap<(&str, &str), (u32, Vec<usize>)> =
        Default::default();
    for (i, p) in pending.iter().enumerate() {
        if let Some(g) = &p.gang {
            let e = by_gang
                .entry((p.namespace.as_str(), g.name.as_str()))
                .or_insert((g.min_member, Vec::new()));
            if placed[i].is_some() {
                e.1.push(i);
            }
        }
    }
    for (min, members) in by_gang.into_values() {
        if (members.len() as u32) < min {
            for i in members {
                if let Some((id, _)) = placed[i].take() {
                    session.remove(id)?;
                }
            }
        }
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
