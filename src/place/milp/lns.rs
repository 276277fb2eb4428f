//! Large-neighbourhood search: the anytime part of the MILP.
//!
//! From an incumbent placement (the best of the greedy warm starts and the program's
//! answer), until the deadline: choose a *neighbourhood* (a set of nodes), free the pods
//! placed on those nodes (the *movable* ones, below) and take in the unplaced movable
//! pods that could fit there, solve that sub-problem exactly with the same program as
//! the full one ([`super::formulate`], lexicographic: priority weight, then the second
//! goal) with every other pod fixed where it is, and keep the result if the whole
//! placement is lexicographically better ([`super::goal::Score`]) **and** passes the
//! independent validator ([`crate::place::validate::validate`]). So the answer is never
//! worse than the incumbent and never invalid.
//!
//! # The sub-problem
//! A [`Problem`] whose cluster is the incumbent's cluster with the freed pods unbound
//! (every fixed pod bound, so free resources, GPU devices, host ports and anti-affinity
//! against fixed pods are exactly the filters'), whose pending pods are the freed and
//! the taken-in pods, and whose nodes are the neighbourhood's only. Priority weights are
//! the full problem's (not re-ranked). `pack` counts the neighbourhood's nodes that are
//! empty in the sub-cluster and receive pods: the nodes the full placement newly uses
//! there, so the sub-problem's second goal is the full one's restricted to the
//! neighbourhood. The incumbent's placement of the freed pods is the sub-problem's warm
//! start (a neighbourhood where it is not a point of the program is skipped).
//!
//! # Movable pods
//! A pending pod may be freed or taken in when the program models it (no required pod
//! affinity, no topology spread: those are the greedy tail's), it is in no gang (gangs
//! stay as they are), and no pod of the greedy tail has an affinity term or a spread
//! selector that selects it (moving it could break that pod's constraint, which the
//! program does not see).
//!
//! # Neighbourhoods
//! Seeded (ChaCha8), chosen where room is left:
//! - *unplaced*: when movable pods are unplaced, one of them (the heaviest first, then
//!   at random) and nodes where it could fit on an empty node (static filters and
//!   capacity), the least loaded first;
//! - *empty* (`pack`): a lightly loaded node in use and other nodes in use (light ones
//!   and random ones), now and then an empty node: the program then moves pods off
//!   nodes it can empty;
//! - otherwise nodes in use at random, the most loaded among them for `balance`.
//!
//! Every neighbourhood also takes in the unplaced movable pods that pass the static
//! filters on one of its nodes (at most [`MAX_TAKEN_IN`]). The size starts at
//! [`START_NODES`] and adapts: it grows after a sub-problem solved to optimality well
//! within its time, and shrinks after one that ran out of time or was too large. A
//! cluster of at most [`WHOLE_NODES`] nodes is one neighbourhood: solved to optimality,
//! the search stops (nothing is left to improve with the fixed pods fixed). It also
//! stops after [`STALL_LIMIT`] neighbourhoods in a row without improvement.
//!
//! # Threads
//! With `threads > 1`, that many disjoint neighbourhoods (no node and no pod in two) are
//! solved at once (rayon, one HiGHS thread each); their results are then tried one by
//! one on the incumbent, each kept only if it improves it and the placement validates.

use super::classes::{self, Classes};
use super::error::MilpError;
use super::extract;
use super::formulate;
use super::goal::{self, Score};
use super::lex;
use super::solve::Settings;
use super::Objective;
use crate::model::{Binding, Cluster, NodeId, PodId, Problem, MILLI_PER_GPU};
use crate::place::clock::Deadline;
use crate::place::filter::FilterContext;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Nodes in the first neighbourhood.
pub(super) const START_NODES: usize = 6;
/// The least and most nodes in a neighbourhood.
const MIN_NODES: usize = 3;
const MAX_NODES: usize = 64;
/// A cluster with at most this many nodes is searched as one neighbourhood.
pub(super) const WHOLE_NODES: usize = 16;
/// Most unplaced pods taken into one neighbourhood.
pub(super) const MAX_TAKEN_IN: usize = 64;
/// Neighbourhoods in a row without improvement after which the search stops.
pub(super) const STALL_LIMIT: usize = 400;
/// Most columns of a sub-program (above: the neighbourhood shrinks, the sub-problem is
/// skipped).
const MAX_COLUMNS: usize = 30_000;
/// Seconds HiGHS gets per sub-problem at most.
const SUB_SECONDS: f64 = 1.0;
/// Least seconds worth starting a sub-problem with.
const MIN_SUB_SECONDS: f64 = 0.05;

/// What the search did.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Report {
    /// Neighbourhoods solved.
    pub tried: usize,
    /// Improvements kept.
    pub improved: usize,
    /// Sub-results rejected by the validator (a bug if ever non-zero; kept for the log).
    pub rejected: usize,
    /// True if the search stopped because a whole-cluster neighbourhood was solved to
    /// optimality.
    pub exhausted: bool,
}

/// A neighbourhood: nodes, and the unplaced pods taken in.
#[derive(Debug, Clone)]
struct Hood {
    nodes: Vec<NodeId>,
    taken_in: Vec<usize>,
    whole: bool,
}

/// A sub-problem's answer: the new binding of each freed or taken-in pod.
#[derive(Debug, Clone)]
struct SubResult {
    changes: Vec<(usize, Option<Binding>)>,
    optimal: bool,
    seconds: f64,
    too_large: bool,
}

/// The incumbent: placement, its score, and the cluster with it bound.
struct Incumbent {
    placement: Vec<Option<Binding>>,
    score: Score,
    cluster: Cluster,
    ids: Vec<Option<PodId>>,
}

impl Incumbent {
    fn new(
        problem: &Problem,
        placement: Vec<Option<Binding>>,
        objective: Objective,
    ) -> Option<Self> {
        let mut cluster = problem.cluster.clone();
        let mut ids = vec![None; placement.len()];
        for (i, b) in placement.iter().enumerate() {
            if let Some(b) = b {
                let id = cluster
                    .bind(
                        problem.pending[i].clone(),
                        b.node,
                        Some(b.gpu_devices.clone()),
                    )
                    .ok()?;
                ids[i] = Some(id);
            }
        }
        Some(Incumbent {
            score: Score::of(problem, &placement, objective),
            placement,
            cluster,
            ids,
        })
    }

    /// Applies accepted changes (unbind every changed pod, then bind the new bindings).
    fn apply(
        &mut self,
        problem: &Problem,
        changes: &[(usize, Option<Binding>)],
        score: Score,
    ) -> bool {
        for &(i, _) in changes {
            if let Some(id) = self.ids[i].take() {
                if self.cluster.unbind(id).is_err() {
                    return false;
                }
            }
        }
        for (i, b) in changes {
            if let Some(b) = b {
                match self.cluster.bind(
                    problem.pending[*i].clone(),
                    b.node,
                    Some(b.gpu_devices.clone()),
                ) {
                    Ok(id) => self.ids[*i] = Some(id),
                    Err(_) => return false,
                }
            }
            self.placement[*i] = b.clone();
        }
        self.score = score;
        true
    }
}

/// Improves `start` by large-neighbourhood search until `deadline` (see the module
/// docs). Returns the best placement found (`start` itself if nothing better) and what
/// the search did. `threads` disjoint neighbourhoods are solved at once.
pub(crate) fn improve(
    problem: &Problem,
    objective: Objective,
    start: Vec<Option<Binding>>,
    threads: u32,
    seed: u64,
    deadline: &Deadline,
) -> (Vec<Option<Binding>>, Report) {
    let mut report = Report::default();
    let n = problem.pending.len();
    if n == 0 || start.len() != n {
        return (start, report);
    }
    let weights = classes::priority_weights(&problem.pending);
    let (movable, has_tail) = movable_and_tail(problem);
    if !movable.iter().any(|&m| m) {
        return (start, report);
    }
    let Some(mut inc) = Incumbent::new(problem, start.clone(), objective) else {
        tracing::debug!("LNS: the start does not bind; not searched");
        return (start, report);
    };
    if objective == Objective::Pack && !has_tail {
        // A cheap first step: empty the nodes whose pods all fit on other nodes in use
        // (greedy, full filters; see `large::empty_nodes`), within half the time.
        let mut trial = inc.placement.clone();
        let by = deadline.earlier_by(deadline.remaining_seconds() / 2.0);
        super::large::empty_nodes(problem, &mut trial, &by);
        let s = Score::of(problem, &trial, objective);
        if s.better_than(&inc.score) && crate::place::validate::validate(problem, &trial).is_ok() {
            if let Some(i) = Incumbent::new(problem, trial, objective) {
                tracing::debug!(goal = s.goal, "LNS: nodes emptied greedily");
                inc = i;
                report.improved += 1;
            }
        }
    }
    let empty_cluster = problem.cluster.without_pods();
    let mut static_nodes: BTreeMap<usize, Vec<NodeId>> = BTreeMap::new();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4c4e_5321);
    let node_count = problem.cluster.node_count();
    let mut whole = node_count <= WHOLE_NODES;
    let mut size = START_NODES.min(node_count).max(1);
    let mut stall = 0usize;
    let par = threads.max(1) as usize;
    let pool = (par > 1)
        .then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(par)
                .build()
                .ok()
        })
        .flatten();
    while deadline.remaining_seconds() > MIN_SUB_SECONDS && stall < STALL_LIMIT {
        let unplaced: Vec<usize> = (0..n)
            .filter(|&i| movable[i] && inc.placement[i].is_none())
            .collect();
        // Pick up to `par` disjoint neighbourhoods.
        let mut hoods: Vec<Hood> = Vec::new();
        let mut taken_nodes: BTreeSet<NodeId> = BTreeSet::new();
        let mut taken_pods: BTreeSet<usize> = BTreeSet::new();
        let count = if whole { 1 } else { par };
        for _ in 0..count {
            let hood = if whole {
                Hood {
                    nodes: problem.cluster.node_ids().collect(),
                    taken_in: unplaced.clone(),
                    whole: true,
                }
            } else {
                pick(
                    problem,
                    objective,
                    &inc,
                    &movable,
                    &unplaced,
                    &weights,
                    &empty_cluster,
                    &mut static_nodes,
                    &taken_nodes,
                    &taken_pods,
                    size,
                    &mut rng,
                )
            };
            if hood.nodes.is_empty() {
                continue;
            }
            taken_nodes.extend(&hood.nodes);
            taken_pods.extend(&hood.taken_in);
            hoods.push(hood);
        }
        if hoods.is_empty() {
            stall += 1;
            continue;
        }
        let budget = if whole {
            deadline.remaining_seconds() - MIN_SUB_SECONDS / 2.0
        } else {
            SUB_SECONDS.min(deadline.remaining_seconds() - MIN_SUB_SECONDS / 2.0)
        };
        let solve_one = |h: &Hood, k: usize| {
            solve_hood(
                problem,
                objective,
                &inc,
                &movable,
                &weights,
                h,
                budget,
                seed.wrapping_add((report.tried + k) as u64),
            )
        };
        let results: Vec<Result<Option<SubResult>, MilpError>> = match &pool {
            Some(pool) if hoods.len() > 1 => {
                use rayon::prelude::*;
                pool.install(|| {
                    hoods
                        .par_iter()
                        .enumerate()
                        .map(|(k, h)| solve_one(h, k))
                        .collect()
                })
            }
            _ => hoods
                .iter()
                .enumerate()
                .map(|(k, h)| solve_one(h, k))
                .collect(),
        };
        let mut any = false;
        let mut grow = false;
        let mut shrink = false;
        let mut exhausted = false;
        for (h, r) in hoods.iter().zip(results) {
            report.tried += 1;
            let r = match r {
                Ok(Some(r)) => r,
                Ok(None) => {
                    whole = false;
                    continue;
                }
                Err(e) => {
                    tracing::debug!("LNS sub-problem failed: {e}");
                    shrink = true;
                    whole = false;
                    continue;
                }
            };
            if r.too_large {
                shrink = true;
                whole = false;
                continue;
            }
            if r.optimal && r.seconds < budget / 4.0 {
                grow = true;
            } else if !r.optimal {
                shrink = true;
            }
            if h.whole && r.optimal {
                exhausted = true;
            }
            let mut cand = inc.placement.clone();
            for (i, b) in &r.changes {
                cand[*i] = b.clone();
            }
            let s = goal::Score::of(problem, &cand, objective);
            if !s.better_than(&inc.score) {
                tracing::trace!(
                    nodes = h.nodes.len(),
                    taken_in = h.taken_in.len(),
                    weight = s.weight,
                    goal = s.goal,
                    optimal = r.optimal,
                    secs = r.seconds,
                    "LNS neighbourhood without improvement"
                );
                continue;
            }
            if let Err(v) = crate::place::validate::validate(problem, &cand) {
                report.rejected += 1;
                tracing::warn!(
                    violations = v.len(),
                    first = %v[0],
                    "LNS result rejected by the validator"
                );
                continue;
            }
            if !inc.apply(problem, &r.changes, s) {
                // The bookkeeping disagrees with the validator: start again from `cand`.
                match Incumbent::new(problem, cand, objective) {
                    Some(i) => inc = i,
                    None => break,
                }
            }
            report.improved += 1;
            any = true;
            tracing::debug!(
                weight = s.weight,
                goal = s.goal,
                size,
                s = deadline.elapsed_seconds(),
                "LNS improvement"
            );
        }
        if exhausted {
            // A whole-cluster neighbourhood solved to optimality: with the unmovable pods
            // where they are, the incumbent is now optimal.
            report.exhausted = true;
            break;
        }
        stall = if any { 0 } else { stall + 1 };
        if shrink {
            size = (size * 3 / 4).max(MIN_NODES);
        } else if grow {
            size = (size + 2).min(MAX_NODES);
        }
    }
    tracing::debug!(
        tried = report.tried,
        improved = report.improved,
        rejected = report.rejected,
        exhausted = report.exhausted,
        weight = inc.score.weight,
        goal = inc.score.goal,
        "LNS done"
    );
    // Safety net: every accepted step was validated, but never hand back an invalid
    // placement in place of a valid start.
    if report.improved > 0
        && crate::place::validate::validate(problem, &inc.placement).is_err()
        && crate::place::validate::validate(problem, &start).is_ok()
    {
        tracing::warn!("LNS result failed the final validation; returning the start");
        return (start, report);
    }
    (inc.placement, report)
}

/// Which pending pods the search may move (the first part of [`movable_and_tail`]).
#[cfg(test)]
fn movable_pods(problem: &Problem) -> Vec<bool> {
    movable_and_tail(problem).0
}

/// Which pending pods the search may move (see "Movable pods" in the module docs), and
/// whether any pending pod is in the greedy tail. Selectors and label sets are
/// deduplicated first (replicas share both).
fn movable_and_tail(problem: &Problem) -> (Vec<bool>, bool) {
    let cls = classes::group(&problem.pending);
    let has_tail = !cls.greedy_tail.is_empty();
    let mut ok = vec![false; problem.pending.len()];
    for c in &cls.classes {
        for &i in &c.members {
            ok[i] = problem.pending[i].gang.is_none();
        }
    }
    // Distinct (owner namespace, affinity term) and spread selectors of the tail.
    let mut terms: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for &t in &cls.greedy_tail {
        let tp = &problem.pending[t];
        for (k, a) in tp.pod_affinity.iter().enumerate() {
            let key = serde_json::to_string(&("a", &tp.namespace, a)).unwrap_or_default();
            terms.entry(key).or_insert((t, k));
        }
        for (k, s) in tp.topology_spread.iter().enumerate() {
            let key = serde_json::to_string(&("s", &s.selector)).unwrap_or_default();
            terms.entry(key).or_insert((t, usize::MAX - k));
        }
    }
    if terms.is_empty() {
        return (ok, has_tail);
    }
    // Distinct (namespace, labels) of the movable pods.
    let mut sets: BTreeMap<(&str, &crate::model::Labels), Vec<usize>> = BTreeMap::new();
    for (i, p) in problem.pending.iter().enumerate() {
        if ok[i] {
            sets.entry((p.namespace.as_str(), &p.labels))
                .or_default()
                .push(i);
        }
    }
    for ((ns, labels), members) in sets {
        let selected = terms.values().any(|&(t, k)| {
            let tp = &problem.pending[t];
            if k < tp.pod_affinity.len() {
                tp.pod_affinity[k].selects(&tp.namespace, ns, labels)
            } else {
                // Spread counts pods of the owner's namespace; any namespace here
                // (conservative).
                tp.topology_spread[usize::MAX - k].selector.matches(labels)
            }
        });
        if selected {
            for i in members {
                ok[i] = false;
            }
        }
    }
    (ok, has_tail)
}

/// The largest share of CPU, memory and GPU in use on `n` (bound and placed pods).
fn load(cluster: &Cluster, n: NodeId) -> f64 {
    let node = &cluster[n];
    let u = cluster.used(n);
    let a = &node.allocatable;
    let r = |x: u64, y: u64| if y == 0 { 0.0 } else { x as f64 / y as f64 };
    let gpu = u64::from(node.gpu_count()) * u64::from(MILLI_PER_GPU);
    r(u.cpu_milli, a.cpu_milli)
        .max(r(u.memory_bytes, a.memory_bytes))
        .max(r(gpu - cluster.gpu_free_total(n).min(gpu), gpu))
}

/// Nodes where pending pod `i` passes the filters on an empty cluster (static filters
/// and capacity), memoised.
fn static_fit<'a>(
    problem: &Problem,
    empty: &Cluster,
    memo: &'a mut BTreeMap<usize, Vec<NodeId>>,
    i: usize,
) -> &'a [NodeId] {
    memo.entry(i).or_insert_with(|| {
        let ctx = FilterContext::new(empty, &problem.pending[i]);
        empty.node_ids().filter(|&n| ctx.check(n).is_ok()).collect()
    })
}

/// Chooses one neighbourhood of about `size` nodes, avoiding `taken_nodes` and
/// `taken_pods` (see "Neighbourhoods" in the module docs).
#[allow(clippy::too_many_arguments)]
fn pick(
    problem: &Problem,
    objective: Objective,
    inc: &Incumbent,
    movable: &[bool],
    unplaced: &[usize],
    weights: &[f64],
    empty: &Cluster,
    memo: &mut BTreeMap<usize, Vec<NodeId>>,
    taken_nodes: &BTreeSet<NodeId>,
    taken_pods: &BTreeSet<usize>,
    size: usize,
    rng: &mut ChaCha8Rng,
) -> Hood {
    let cluster = &inc.cluster;
    // Nodes holding movable placed pods, by load.
    let mut movable_on: BTreeMap<NodeId, usize> = BTreeMap::new();
    for (i, b) in inc.placement.iter().enumerate() {
        if let (Some(b), true) = (b, movable[i]) {
            *movable_on.entry(b.node).or_default() += 1;
        }
    }
    let mut used: Vec<(f64, NodeId)> = movable_on
        .keys()
        .filter(|n| !taken_nodes.contains(n))
        .map(|&n| (load(cluster, n), n))
        .collect();
    used.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut nodes: Vec<NodeId> = Vec::new();
    let mut chosen: BTreeSet<NodeId> = BTreeSet::new();
    let mut add = |n: NodeId, nodes: &mut Vec<NodeId>| {
        if !taken_nodes.contains(&n) && chosen.insert(n) {
            nodes.push(n);
        }
    };
    let free_unplaced: Vec<usize> = unplaced
        .iter()
        .copied()
        .filter(|i| !taken_pods.contains(i))
        .collect();
    let by_unplaced = !free_unplaced.is_empty() && (used.is_empty() || rng.gen_bool(0.5));
    if by_unplaced {
        // The heaviest unplaced pod half of the time, else one at random.
        let u = if rng.gen_bool(0.5) {
            let top = free_unplaced
                .iter()
                .map(|&i| weights[i])
                .fold(f64::MIN, f64::max);
            let heavy: Vec<usize> = free_unplaced
                .iter()
                .copied()
                .filter(|&i| weights[i] >= top - 1e-9)
                .collect();
            heavy[rng.gen_range(0..heavy.len())]
        } else {
            free_unplaced[rng.gen_range(0..free_unplaced.len())]
        };
        let mut fit: Vec<(f64, NodeId)> = static_fit(problem, empty, memo, u)
            .iter()
            .filter(|n| !taken_nodes.contains(n))
            .map(|&n| (load(cluster, n), n))
            .collect();
        fit.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        // Nodes in use at random among the least loaded 3 × size, and one empty node
        // (only empty ones if none in use fits).
        let (in_use, empties): (Vec<NodeId>, Vec<NodeId>) = fit
            .iter()
            .map(|&(_, n)| n)
            .partition(|&n| !cluster.pods_on(n).is_empty());
        let mut pool: Vec<NodeId> = in_use.into_iter().take(3 * size).collect();
        pool.shuffle(rng);
        let from_used = if empties.is_empty() { size } else { size - 1 };
        for n in pool.into_iter().take(from_used) {
            add(n, &mut nodes);
        }
        let mut empties: Vec<NodeId> = empties.into_iter().take(3 * size).collect();
        empties.shuffle(rng);
        for n in empties {
            if nodes.len() >= size {
                break;
            }
            add(n, &mut nodes);
        }
    } else if !used.is_empty() {
        match objective {
            Objective::Pack => {
                let light = (used.len() / 4).max(1);
                add(used[rng.gen_range(0..light)].1, &mut nodes);
                let mut tries = 0;
                while nodes.len() < size && tries < 8 * size {
                    tries += 1;
                    let n = if rng.gen_bool(0.5) {
                        used[rng.gen_range(0..(used.len() / 2).max(1))].1
                    } else {
                        used[rng.gen_range(0..used.len())].1
                    };
                    add(n, &mut nodes);
                }
                if rng.gen_bool(0.3) {
                    let empties: Vec<NodeId> = problem
                        .cluster
                        .node_ids()
                        .filter(|&n| cluster.pods_on(n).is_empty() && !taken_nodes.contains(&n))
                        .collect();
                    if !empties.is_empty() {
                        add(empties[rng.gen_range(0..empties.len())], &mut nodes);
                    }
                }
            }
            Objective::Balance => {
                add(used[used.len() - 1].1, &mut nodes);
                let mut tries = 0;
                while nodes.len() < size && tries < 8 * size {
                    tries += 1;
                    let n = if rng.gen_bool(0.5) {
                        used[rng.gen_range(0..used.len())].1
                    } else {
                        let all: Vec<NodeId> = problem.cluster.node_ids().collect();
                        all[rng.gen_range(0..all.len())]
                    };
                    add(n, &mut nodes);
                }
            }
            Objective::Fragmentation => {
                let mut tries = 0;
                while nodes.len() < size && tries < 8 * size {
                    tries += 1;
                    add(used[rng.gen_range(0..used.len())].1, &mut nodes);
                }
            }
        }
    }
    nodes.sort_unstable();
    // Unplaced pods that could fit on one of the nodes.
    let mut taken_in: Vec<usize> = Vec::new();
    let mut cands = free_unplaced;
    cands.shuffle(rng);
    cands.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]));
    for i in cands {
        if taken_in.len() >= MAX_TAKEN_IN {
            break;
        }
        let fits = static_fit(problem, empty, memo, i);
        if nodes.iter().any(|n| fits.binary_search(n).is_ok()) {
            taken_in.push(i);
        }
    }
    Hood {
        nodes,
        taken_in,
        whole: false,
    }
}

/// Solves one neighbourhood's sub-problem; `None` when there is nothing to solve or the
/// incumbent is not a point of its program.
#[allow(clippy::too_many_arguments)]
fn solve_hood(
    problem: &Problem,
    objective: Objective,
    inc: &Incumbent,
    movable: &[bool],
    weights: &[f64],
    hood: &Hood,
    budget: f64,
    seed: u64,
) -> Result<Option<SubResult>, MilpError> {
    let t0 = std::time::Instant::now();
    let in_hood: BTreeSet<NodeId> = hood.nodes.iter().copied().collect();
    let freed: Vec<usize> = (0..problem.pending.len())
        .filter(|&i| {
            movable[i]
                && inc.placement[i]
                    .as_ref()
                    .is_some_and(|b| in_hood.contains(&b.node))
        })
        .collect();
    if freed.is_empty() && hood.taken_in.is_empty() {
        return Ok(None);
    }
    let mut cluster = inc.cluster.clone();
    for &i in &freed {
        if let Some(id) = inc.ids[i] {
            cluster.unbind(id)?;
        }
    }
    let global: Vec<usize> = freed.iter().chain(&hood.taken_in).copied().collect();
    let sub = Problem {
        cluster,
        pending: global.iter().map(|&i| problem.pending[i].clone()).collect(),
    };
    let mut classes: Classes = classes::group(&sub.pending);
    if !classes.greedy_tail.is_empty() || !classes.gangs.is_empty() {
        return Ok(None);
    }
    for c in &mut classes.classes {
        c.weight = weights[global[c.rep()]];
    }
    let eligible: Vec<Vec<NodeId>> = classes
        .classes
        .iter()
        .map(|c| {
            let ctx = FilterContext::new(&sub.cluster, &sub.pending[c.rep()]);
            hood.nodes
                .iter()
                .copied()
                .filter(|&n| ctx.check(n).is_ok())
                .collect()
        })
        .collect();
    let pairs: usize = eligible.iter().map(Vec::len).sum();
    if pairs > MAX_COLUMNS {
        return Ok(Some(SubResult {
            changes: Vec::new(),
            optimal: false,
            seconds: t0.elapsed().as_secs_f64(),
            too_large: true,
        }));
    }
    let f = formulate::build(&sub, &classes, &eligible, &in_hood, objective);
    if f.program.cols.len() > MAX_COLUMNS {
        return Ok(Some(SubResult {
            changes: Vec::new(),
            optimal: false,
            seconds: t0.elapsed().as_secs_f64(),
            too_large: true,
        }));
    }
    let sub_start: Vec<Option<Binding>> =
        global.iter().map(|&i| inc.placement[i].clone()).collect();
    let Some(warm) = extract::warm_start(&sub, &classes, &f, &sub_start) else {
        tracing::trace!("LNS: incumbent not a point of the sub-program; skipped");
        return Ok(None);
    };
    if f.program.cols.is_empty() {
        return Ok(None);
    }
    let all: f64 = classes
        .classes
        .iter()
        .map(|c| c.weight * c.size() as f64)
        .sum();
    let settings = Settings {
        time_limit: 0.0,
        rel_gap: 0.0,
        abs_gap: 1e-6,
        threads: 1,
        seed,
    };
    let left = || budget - t0.elapsed().as_secs_f64();
    if left() < MIN_SUB_SECONDS / 2.0 {
        return Ok(None);
    }
    let lex = lex::solve_with(
        &f.program,
        Some(warm.as_slice()),
        all,
        &settings,
        0.0,
        left,
        true,
    )?;
    let second = f.program.secondary_value(&lex.values);
    let optimal = lex.weight_optimal
        && lex.second_bound.is_some_and(|b| {
            let b = if objective == Objective::Pack {
                (b - 1e-6).ceil()
            } else {
                b
            };
            second <= b + 1e-6
        });
    let placed = extract::placement_from(&sub, &classes, &f, &lex.values)?;
    extract::bind_checked(&sub, &placed)?;
    Ok(Some(SubResult {
        changes: global.into_iter().zip(placed).collect(),
        optimal,
        seconds: t0.elapsed().as_secs_f64(),
        too_large: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        Gang, GpuAmount, LabelSelector, Node, Pod, PodAffinityTerm, TopologySpreadConstraint,
        WhenUnsatisfiable,
    };
    use crate::place::clock::WallClock;
    use crate::place::online::{OnlineKind, OnlinePolicy};
    use crate::place::validate::validate;
    use crate::place::Placer;

    const GI: u64 = 1 << 30;

    fn anti(app: &str, key: &str) -> PodAffinityTerm {
        PodAffinityTerm {
            selector: LabelSelector {
                match_labels: [("app".to_string(), app.to_string())].into(),
                match_expressions: vec![],
            },
            namespaces: vec![],
            topology_key: key.into(),
        }
    }

    /// A random cluster of `nodes` nodes (GPUs, zones) and `pods` pods (GPU shares and
    /// whole GPUs, anti-affinity, priorities, a gang, a spread pod).
    fn instance(seed: u64, nodes: usize, pods: usize, gpus: bool) -> Problem {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        let ns: Vec<Node> = (0..nodes)
            .map(|i| {
                let g = if gpus {
                    [0, 1, 2][r.gen_range(0..3)]
                } else {
                    0
                };
                Node::new(
                    &format!("n{i}"),
                    [2000, 4000][r.gen_range(0..2)],
                    [4, 8][r.gen_range(0..2)] * GI,
                )
                .with_max_pods(r.gen_range(2..=6))
                .with_gpus("A", g)
                .with_label("zone", &format!("z{}", i % 3))
            })
            .collect();
        let ps: Vec<Pod> = (0..pods)
            .map(|i| {
                let gpu = if gpus {
                    match r.gen_range(0..6) {
                        0 => GpuAmount::Shared(300),
                        1 => GpuAmount::Shared(600),
                        2 => GpuAmount::Whole(1),
                        3 => GpuAmount::Whole(2),
                        _ => GpuAmount::None,
                    }
                } else {
                    GpuAmount::None
                };
                let app = ["a", "b", "c"][r.gen_range(0..3)];
                let mut p = Pod::new(
                    &format!("p{i}"),
                    [500, 1000, 1500, 2500][r.gen_range(0..4)],
                    r.gen_range(1..=3) * GI,
                )
                .with_gpu(gpu)
                .with_label("app", app)
                .with_priority([0, 10][r.gen_range(0..2)]);
                if r.gen_bool(0.25) {
                    let key = ["kubernetes.io/hostname", "zone"][r.gen_range(0..2)];
                    p.pod_anti_affinity.push(anti(app, key));
                }
                if i == 0 && pods > 4 {
                    p.topology_spread.push(TopologySpreadConstraint {
                        max_skew: 1,
                        topology_key: "zone".into(),
                        when_unsatisfiable: WhenUnsatisfiable::DoNotSchedule,
                        selector: LabelSelector {
                            match_labels: [("app".to_string(), "c".to_string())].into(),
                            match_expressions: vec![],
                        },
                    });
                }
                if (1..3).contains(&i) && pods > 6 {
                    p.gang = Some(Gang {
                        name: "g".into(),
                        min_member: 2,
                    });
                }
                p
            })
            .collect();
        Problem::from_parts(ns, ps).unwrap()
    }

    fn run(
        problem: &Problem,
        start: Vec<Option<Binding>>,
        seconds: f64,
        threads: u32,
    ) -> Vec<Option<Binding>> {
        let deadline = Deadline::after_seconds(WallClock::shared(), seconds);
        improve(problem, Objective::Pack, start, threads, 3, &deadline).0
    }

    /// Every placement of `problem` (devices included) that the validator accepts,
    /// scored; the lexicographic best.
    fn brute_force(problem: &Problem) -> Score {
        let c = &problem.cluster;
        let options: Vec<Vec<Option<Binding>>> = problem
            .pending
            .iter()
            .map(|p| {
                let mut o = vec![None];
                for n in c.node_ids() {
                    let g = c[n].gpu_count();
                    let devs: Vec<Vec<u32>> = match p.gpu.amount {
                        GpuAmount::None => vec![vec![]],
                        GpuAmount::Shared(_) => (0..g).map(|d| vec![d]).collect(),
                        GpuAmount::Whole(1) => (0..g).map(|d| vec![d]).collect(),
                        GpuAmount::Whole(2) if g >= 2 => vec![vec![0, 1]],
                        GpuAmount::Whole(_) => vec![],
                    };
                    for d in devs {
                        o.push(Some(Binding {
                            node: n,
                            gpu_devices: d,
                        }));
                    }
                }
                o
            })
            .collect();
        let mut best: Option<Score> = None;
        let mut idx = vec![0usize; options.len()];
        loop {
            let pl: Vec<Option<Binding>> = idx
                .iter()
                .zip(&options)
                .map(|(&k, o)| o[k].clone())
                .collect();
            let s = Score::of(problem, &pl, Objective::Pack);
            if best.is_none_or(|b| s.better_than(&b)) && validate(problem, &pl).is_ok() {
                best = Some(s);
            }
            // Next combination.
            let mut k = 0;
            loop {
                if k == idx.len() {
                    return best.expect("the empty placement is valid");
                }
                idx[k] += 1;
                if idx[k] < options[k].len() {
                    break;
                }
                idx[k] = 0;
                k += 1;
            }
        }
    }

    #[test]
    fn never_invalid_and_never_worse_than_the_start() {
        for seed in 0..24u64 {
            let nodes = [5, 12, 20, 30][seed as usize % 4];
            let problem = instance(seed, nodes, 3 * nodes / 2 + 2, true);
            for (k, kind) in [OnlineKind::Random, OnlineKind::KubeDefault]
                .iter()
                .enumerate()
            {
                let start = OnlinePolicy::new(*kind, seed)
                    .place(&problem)
                    .unwrap()
                    .placement;
                if validate(&problem, &start).is_err() {
                    // The start itself is invalid (the online policy's business, not the
                    // search's): nothing to check here.
                    continue;
                }
                let before = Score::of(&problem, &start, Objective::Pack);
                let threads = 1 + k as u32;
                let out = run(&problem, start, 0.3, threads);
                validate(&problem, &out).unwrap_or_else(|v| panic!("seed {seed}: {v:?}"));
                let after = Score::of(&problem, &out, Objective::Pack);
                assert!(
                    !before.better_than(&after),
                    "seed {seed}: {before:?} -> {after:?}"
                );
            }
        }
    }

    #[test]
    fn reaches_the_brute_force_optimum_on_tiny_clusters() {
        for seed in 0..40u64 {
            let gpus = seed % 2 == 0;
            let problem = instance(
                100 + seed,
                2 + seed as usize % 2,
                3 + seed as usize % 2,
                gpus,
            );
            let best = brute_force(&problem);
            // From nothing placed, and from a random placement.
            let none = vec![None; problem.pending.len()];
            let random = OnlinePolicy::new(OnlineKind::Random, seed)
                .place(&problem)
                .unwrap()
                .placement;
            for start in [none, random] {
                let out = run(&problem, start, 5.0, 1);
                validate(&problem, &out).unwrap();
                let got = Score::of(&problem, &out, Objective::Pack);
                // Pods in a gang or selected by a spread pod stay where the start had
                // them; without such pods the optimum is reached.
                let fixed = movable_pods(&problem).iter().any(|m| !m);
                assert!(
                    !got.better_than(&best),
                    "seed {seed}: {got:?} beats {best:?}"
                );
                if !fixed {
                    assert_eq!(got, best, "seed {seed}");
                }
            }
        }
    }

    #[test]
    fn empties_nodes_beyond_one_neighbourhood() {
        // 24 identical nodes of 4 CPUs, 12 pods of 1 CPU each spread one per node: the
        // optimum is 3 nodes, and no neighbourhood holds all the nodes.
        let nodes: Vec<Node> = (0..24)
            .map(|i| Node::new(&format!("n{i}"), 4000, 16 * GI).with_max_pods(110))
            .collect();
        let pods: Vec<Pod> = (0..12)
            .map(|i| Pod::new(&format!("p{i}"), 1000, GI))
            .collect();
        let problem = Problem::from_parts(nodes, pods).unwrap();
        let start: Vec<Option<Binding>> = (0..12)
            .map(|i| {
                Some(Binding {
                    node: NodeId::from_index(i),
                    gpu_devices: vec![],
                })
            })
            .collect();
        let out = run(&problem, start, 3.0, 1);
        validate(&problem, &out).unwrap();
        assert_eq!(Score::of(&problem, &out, Objective::Pack).goal, 3.0);
        assert!(out.iter().all(Option::is_some));
        // From nothing placed: every pod placed, on 3 nodes.
        let out = run(&problem, vec![None; 12], 3.0, 2);
        validate(&problem, &out).unwrap();
        let s = Score::of(&problem, &out, Objective::Pack);
        assert_eq!((s.weight, s.goal), (12.0, 3.0));
    }
}
