//! Greedy placement of the pods the program does not place: the greedy tail (pods with
//! pod affinity or topology spread) and, on the aggregated path, pods the realisation
//! could not fit.

use crate::model::{Binding, Cluster, ClusterError, Problem};
use crate::place::online::{OnlineKind, OnlinePolicy};
use crate::place::plugin::Plugins;
use std::collections::BTreeMap;

fn gang_key(problem: &Problem, i: usize) -> Option<(String, String)> {
    let p = &problem.pending[i];
    p.gang
        .as_ref()
        .map(|g| (p.namespace.clone(), g.name.clone()))
}

/// Unplaces every member of a gang that has fewer than `min_member` members placed
/// (all-or-nothing); returns the pending indices unplaced.
pub(crate) fn break_short_gangs(
    problem: &Problem,
    placement: &mut [Option<Binding>],
) -> Vec<usize> {
    let mut placed: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    for (i, b) in placement.iter().enumerate() {
        if let Some(k) = gang_key(problem, i) {
            let e = placed.entry(k).or_default();
            e.0 += usize::from(b.is_some());
            e.1 = problem.pending[i]
                .gang
                .as_ref()
                .map_or(0, |g| g.min_member as usize);
        }
    }
    let mut out = Vec::new();
    for (i, b) in placement.iter_mut().enumerate() {
        if let Some(k) = gang_key(problem, i) {
            let (n, min) = placed[&k];
            if n < min && b.take().is_some() {
                out.push(i);
            }
        }
    }
    out
}

/// Places the pods `pods` (pending indices) on `cluster` (which holds every pod placed in
/// `placement` already) with the online policy `kind` and the hard `plugins`: by
/// priority (highest first, pending order among equals), a gang's members together. A gang is all-or-nothing
/// counting its members already placed: if fewer than `min_member` end up placed, this
/// call's members of it are removed again.
pub(crate) fn place_greedy(
    problem: &Problem,
    pods: &[usize],
    kind: OnlineKind,
    seed: u64,
    plugins: &Plugins,
    cluster: Cluster,
    placement: &mut [Option<Binding>],
) -> Result<(), ClusterError> {
    if pods.is_empty() {
        return Ok(());
    }
    let mut order = pods.to_vec();
    order.sort_by_key(|&i| (std::cmp::Reverse(problem.pending[i].priority), i));
    let mut units: Vec<Vec<usize>> = Vec::new();
    let mut gang_unit: BTreeMap<(String, String), usize> = BTreeMap::new();
    for i in order {
        match gang_key(problem, i) {
            Some(key) => {
                let next = units.len();
                let u = *gang_unit.entry(key).or_insert(next);
                if u == next {
                    units.push(Vec::new());
                }
                units[u].push(i);
            }
            None => units.push(vec![i]),
        }
    }
    let mut session = OnlinePolicy::new(kind, seed)
        .with_plugins(plugins.hard_only())
        .session(cluster);
    for unit in units {
        let mut placed = Vec::new();
        for &i in &unit {
            if let Some((id, b)) = session.place(problem.pending[i].clone())? {
                placement[i] = Some(b);
                placed.push((i, id));
            }
        }
        let Some(key) = gang_key(problem, unit[0]) else {
            continue;
        };
        let min = problem.pending[unit[0]]
            .gang
            .as_ref()
            .map_or(0, |g| g.min_member as usize);
        let already = (0..problem.pending.len())
            .filter(|&j| placement[j].is_some() && gang_key(problem, j).as_ref() == Some(&key))
            .count();
        if already < min {
            for (i, id) in placed {
                session.remove(id)?;
                placement[i] = None;
            }
        }
    }
    Ok(())
}
