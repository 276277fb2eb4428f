//! The aggregated path (`pack` on large clusters without inter-pod constraints): solve
//! the [`aggregate`] program in two stages, realise it on concrete nodes, repair with the
//! greedy policy, and report the realised node count against the aggregated bound.

use super::aggregate;
use super::classes::Classes;
use super::error::MilpError;
use super::extract::bind_checked;
use super::{
    gap, goal, lex, pack_volume_bound, realise, solve, tail, MilpPlacer, Objective, Optimised,
};
use crate::model::{Binding, NodeId, Problem};
use crate::place::clock::Deadline;
use crate::place::online::OnlineKind;
use crate::place::SolveStats;

/// Seconds kept back from the second solve for realisation, repair and checks.
const RESERVE_SECONDS: f64 = 0.5;

impl MilpPlacer {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn optimise_aggregated(
        &self,
        problem: &Problem,
        classes: &Classes,
        cls: &[Option<usize>],
        eligible: &[Vec<NodeId>],
        kind: OnlineKind,
        greedy_part: &[Option<Binding>],
        deadline: &Deadline,
    ) -> Result<Optimised, MilpError> {
        let types = aggregate::node_types(problem, eligible);
        let a = aggregate::build(problem, classes, types);
        let warm = aggregate::warm_start(classes, &a, cls, greedy_part);
        tracing::debug!(
            types = a.types.len(),
            cols = a.program.cols.len(),
            rows = a.program.rows.len(),
            warm = warm.is_some(),
            built_s = deadline.elapsed_seconds(),
            "aggregated program built"
        );
        let all: f64 = classes
            .classes
            .iter()
            .map(|c| c.weight * c.size() as f64)
            .sum();
        let left = |reserve: f64| deadline.remaining_seconds() - reserve;
        let settings = solve::Settings {
            time_limit: 0.0,
            rel_gap: 0.0,
            abs_gap: 1e-6,
            threads: self.opts.threads,
            seed: self.opts.seed,
        };
        // Most priority weight, then fewest new nodes at that weight.
        let lex = lex::solve(
            &a.program,
            warm.as_deref(),
            all,
            &settings,
            self.opts.mip_rel_gap,
            || left(RESERVE_SECONDS),
        )?;
        let (values, v1, weight_bound, first_optimal) =
            (lex.values, lex.weight, lex.weight_bound, lex.weight_optimal);
        let node_bound = lex.second_bound.unwrap_or(f64::NAN);
        let realised_by = deadline.earlier_by(RESERVE_SECONDS / 2.0);
        let mut placement =
            realise::realise(problem, classes, &a, &values, self.opts.seed, &realised_by);
        tail::break_short_gangs(problem, &mut placement);
        let cluster = bind_checked(problem, &placement)?;
        let rest: Vec<usize> = (0..problem.pending.len())
            .filter(|&i| placement[i].is_none())
            .collect();
        tail::place_greedy(
            problem,
            &rest,
            kind,
            self.opts.seed,
            &self.plugins,
            cluster,
            &mut placement,
        )?;
        let before = goal::value(problem, &placement, Objective::Pack);
        let end = deadline.earlier_by(RESERVE_SECONDS / 4.0);
        if classes.greedy_tail.is_empty() {
            // Tail pods' affinity and spread may count the pods a move would shift.
            empty_nodes(problem, &mut placement, &end);
        }
        tracing::debug!(
            before,
            after = goal::value(problem, &placement, Objective::Pack),
            "emptied nodes"
        );
        tracing::debug!(s = deadline.elapsed_seconds(), "realised and repaired");

        let modelled_w: f64 = classes
            .classes
            .iter()
            .flat_map(|c| c.members.iter().map(move |&i| (i, c.weight)))
            .filter(|&(i, _)| placement[i].is_some())
            .map(|(_, w)| w)
            .sum();
        let all_placed = placement.iter().all(Option::is_some);
        let bound_valid = first_optimal
            && ((classes.greedy_tail.is_empty() && modelled_w >= v1 - 0.5) || all_placed);
        let mut stats = SolveStats::default();
        if bound_valid {
            let obj = goal::value(problem, &placement, Objective::Pack);
            let mut bound = if node_bound.is_finite() {
                node_bound.max(0.0)
            } else {
                0.0
            };
            if v1 >= all - 0.5 {
                let members = classes
                    .classes
                    .iter()
                    .flat_map(|c| c.members.iter().copied());
                bound = bound.max(pack_volume_bound(problem, members));
            }
            let bound = (bound - 1e-6).ceil().min(obj);
            stats.objective = Some(obj);
            stats.bound = Some(bound);
            stats.gap = Some(gap(obj, bound));
        } else {
            let obj = super::weighted_placed(problem, &placement);
            let tail_w: f64 = super::priority_weights(&problem.pending)
                .iter()
                .zip(cls)
                .filter(|(_, c)| c.is_none())
                .map(|(w, _)| w)
                .sum();
            let bound = (weight_bound + tail_w).max(obj);
            stats.objective = Some(obj);
            stats.bound = Some(bound);
            stats.gap = Some(gap(obj, bound));
        }
        Ok(Optimised {
            placement,
            stats,
            in_goal_units: bound_valid,
        })
    }
}

/// Local search after realisation: for each node that was empty and now holds pods
/// (fewest pods first), tries to move all of its pods onto other nodes already in use
/// (least free CPU first, full kube filters); keeps a move only if the node empties.
/// Only called without a greedy tail (no pod whose affinity or spread could count the
/// moved pods); gang members are never moved.
pub(super) fn empty_nodes(
    problem: &Problem,
    placement: &mut [Option<Binding>],
    deadline: &Deadline,
) {
    use crate::model::gpu::choose_devices;
    use crate::place::filter::FilterContext;
    let c0 = &problem.cluster;
    let movable = |i: usize| {
        let p = &problem.pending[i];
        p.pod_affinity.is_empty() && p.topology_spread.is_empty() && p.gang.is_none()
    };
    let mut on: std::collections::BTreeMap<NodeId, Vec<usize>> = Default::default();
    for (i, b) in placement.iter().enumerate() {
        if let Some(b) = b {
            on.entry(b.node).or_default().push(i);
        }
    }
    let mut cands: Vec<(usize, NodeId)> = on
        .iter()
        .filter(|(&n, ps)| c0.pods_on(n).is_empty() && ps.iter().all(|&i| movable(i)))
        .map(|(&n, ps)| (ps.len(), n))
        .collect();
    cands.sort_unstable();
    for (_, n) in cands {
        if deadline.passed() {
            break;
        }
        let mut trial = placement.to_vec();
        let pods: Vec<usize> = on.get(&n).cloned().unwrap_or_default();
        for &i in &pods {
            trial[i] = None;
        }
        let Ok(mut cluster) = bind_checked(problem, &trial) else {
            continue;
        };
        let mut targets: Vec<NodeId> = on
            .iter()
            .filter(|(&m, ps)| m != n && !ps.is_empty())
            .map(|(&m, _)| m)
            .collect();
        let mut ok = true;
        let mut order = pods.clone();
        order.sort_by_key(|&i| {
            let p = &problem.pending[i];
            std::cmp::Reverse((p.gpu.amount.total_milli(), p.requests.cpu_milli, i))
        });
        for i in order {
            let pod = &problem.pending[i];
            targets.sort_by_key(|&m| {
                let a = &cluster[m].allocatable;
                (a.cpu_milli.saturating_sub(cluster.used(m).cpu_milli), m)
            });
            let ctx = FilterContext::new(&cluster, pod);
            let hit = targets.iter().copied().find_map(|m| {
                ctx.check(m).ok()?;
                choose_devices(cluster.gpu_free(m), pod.gpu.amount).map(|d| (m, d))
            });
            match hit {
                Some((m, d)) if cluster.bind(pod.clone(), m, Some(d.clone())).is_ok() => {
                    trial[i] = Some(Binding {
                        node: m,
                        gpu_devices: d,
                    });
                }
                _ => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            for &i in &pods {
                if let Some(b) = &trial[i] {
                    on.entry(b.node).or_default().push(i);
                }
            }
            on.remove(&n);
            placement.clone_from_slice(&trial);
        }
    }
}
