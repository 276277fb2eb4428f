//! From the program to pods and back: the warm start from a placement, the per-pod
//! placement (with concrete GPU devices) from a solution, and the sequential check of a
//! placement with the full kube filters.

use super::classes::Classes;
use super::error::MilpError;
use super::formulate::Formulation;
use crate::model::{Binding, Cluster, GpuAmount, NodeId, Problem, MILLI_PER_GPU};
use crate::place::filter::FilterContext;
use std::collections::BTreeMap;

/// Class of each pending pod (None for the greedy tail).
pub(crate) fn class_of(problem: &Problem, classes: &Classes) -> Vec<Option<usize>> {
    let mut out = vec![None; problem.pending.len()];
    for (c, class) in classes.classes.iter().enumerate() {
        for &i in &class.members {
            out[i] = Some(c);
        }
    }
    out
}

fn full_devices(cluster: &Cluster, n: NodeId) -> Vec<u32> {
    let free = cluster.gpu_free(n);
    (0..free.len() as u32)
        .filter(|&d| free[d as usize] == MILLI_PER_GPU)
        .collect()
}

/// Column values for `placement` (the MILP's pods only), or `None` if the placement is
/// not a point of the program (it then is not passed to HiGHS).
pub(crate) fn warm_start(
    problem: &Problem,
    classes: &Classes,
    f: &Formulation,
    placement: &[Option<Binding>],
) -> Option<Vec<f64>> {
    let cluster = &problem.cluster;
    let cls = class_of(problem, classes);
    let mut v: Vec<f64> = f.program.cols.iter().map(|c| c.lo.max(0.0)).collect();
    // Per node: (class, device) of shares and devices taken whole.
    let mut shares: BTreeMap<NodeId, Vec<(usize, u32)>> = BTreeMap::new();
    let mut wholes: BTreeMap<NodeId, Vec<u32>> = BTreeMap::new();
    for (i, b) in placement.iter().enumerate() {
        let (Some(b), Some(c)) = (b, cls[i]) else {
            continue;
        };
        v[*f.x.get(&(c, b.node))?] += 1.0;
        if let Some(&u) = f.used.get(&b.node) {
            v[u] = 1.0;
        }
        match problem.pending[i].gpu.amount {
            GpuAmount::Shared(_) => shares
                .entry(b.node)
                .or_default()
                .push((c, b.gpu_devices[0])),
            GpuAmount::Whole(_) => wholes.entry(b.node).or_default().extend(&b.gpu_devices),
            GpuAmount::None => {}
        }
    }
    let nodes: std::collections::BTreeSet<NodeId> =
        shares.keys().chain(wholes.keys()).copied().collect();
    for n in nodes {
        let sh = shares.remove(&n).unwrap_or_default();
        let wh = wholes.remove(&n).unwrap_or_default();
        // Relabel identical fully free devices so loads descend (a harmless normal form).
        let full = full_devices(cluster, n);
        let load = |d: u32| -> u64 {
            if wh.contains(&d) {
                return u64::from(MILLI_PER_GPU);
            }
            sh.iter()
                .filter(|(_, dd)| *dd == d)
                .map(|(c, _)| {
                    problem.pending[classes.classes[*c].rep()]
                        .gpu
                        .amount
                        .total_milli()
                })
                .sum()
        };
        let mut sorted = full.clone();
        sorted.sort_by_key(|&d| std::cmp::Reverse(load(d)));
        let relabel: BTreeMap<u32, u32> =
            sorted.iter().copied().zip(full.iter().copied()).collect();
        let map = |d: u32| relabel.get(&d).copied().unwrap_or(d);
        for &(c, d) in &sh {
            let m = match problem.pending[classes.classes[c].rep()].gpu.amount {
                GpuAmount::Shared(m) => m,
                _ => 0,
            };
            v[*f.z.get(&(m, n, map(d)))?] += 1.0;
            if let Some(&o) = f.open.get(&(n, map(d))) {
                v[o] = 1.0;
            }
        }
        for &d in &wh {
            if let Some(&w) = f.whole.get(&(n, map(d))) {
                v[w] = 1.0;
            }
        }
    }
    for (g, &col) in f.gang.iter().enumerate() {
        let placed: f64 = classes.gangs[g]
            .classes
            .iter()
            .flat_map(|&c| {
                f.x.range((c, NodeId::FIRST)..(c + 1, NodeId::FIRST))
                    .map(|(_, &x)| v[x])
            })
            .sum();
        v[col] = f64::from(u8::from(placed > 0.0));
    }
    for (&(c, ..), (y, ns)) in &f.anti {
        let any = ns
            .iter()
            .any(|&n| f.x.get(&(c, n)).is_some_and(|&x| v[x] > 0.0));
        v[*y] = f64::from(u8::from(any));
    }
    if let Some(u) = f.util {
        let mut need = f.program.cols[u].lo;
        for r in &f.program.rows {
            if r.terms.iter().any(|&(i, _)| i == u) {
                let s: f64 = r
                    .terms
                    .iter()
                    .filter(|t| t.0 != u)
                    .map(|&(i, a)| a * v[i])
                    .sum();
                need = need.max(s - r.hi);
            }
        }
        v[u] = need;
    }
    f.program.feasible(&v, 1e-6).then_some(v)
}

/// Turns a solution into one binding per pending pod (the MILP's pods only).
pub(crate) fn placement_from(
    problem: &Problem,
    classes: &Classes,
    f: &Formulation,
    v: &[f64],
) -> Result<Vec<Option<Binding>>, MilpError> {
    let cluster = &problem.cluster;
    let mut out: Vec<Option<Binding>> = vec![None; problem.pending.len()];
    let count = |col: usize| v[col].round().max(0.0) as usize;
    // Devices available for whole-GPU pods per node, consumed in class order.
    let mut pools: BTreeMap<NodeId, Vec<u32>> = BTreeMap::new();
    let mut share_left: BTreeMap<(u32, NodeId), Vec<(u32, usize)>> = BTreeMap::new();
    for (c, class) in classes.classes.iter().enumerate() {
        let amount = problem.pending[class.rep()].gpu.amount;
        let mut members = class.members.iter();
        for (&(_, n), &x) in f.x.range((c, NodeId::FIRST)..(c + 1, NodeId::FIRST)) {
            let k = count(x);
            let mut devices: Vec<Vec<u32>> = Vec::with_capacity(k);
            match amount {
                GpuAmount::None => devices.resize(k, Vec::new()),
                GpuAmount::Shared(m) => {
                    // Take devices from the pooled share counts of this size.
                    let left = share_left.entry((m, n)).or_insert_with(|| {
                        f.z.range((m, n, 0)..=(m, n, u32::MAX))
                            .map(|(&(_, _, d), &z)| (d, count(z)))
                            .collect()
                    });
                    for _ in 0..k {
                        let slot = left.iter_mut().find(|(_, c)| *c > 0).ok_or_else(|| {
                            MilpError::Decode(format!("node {n}: too few {m}-milli shares"))
                        })?;
                        slot.1 -= 1;
                        devices.push(vec![slot.0]);
                    }
                }
                GpuAmount::Whole(g) => {
                    let pool = pools.entry(n).or_insert_with(|| {
                        let full = full_devices(cluster, n);
                        if full.iter().any(|d| f.whole.contains_key(&(n, *d))) {
                            full.into_iter()
                                .filter(|d| f.whole.get(&(n, *d)).is_some_and(|&w| count(w) == 1))
                                .collect()
                        } else {
                            full
                        }
                    });
                    for _ in 0..k {
                        if pool.len() < g as usize {
                            return Err(MilpError::Decode(format!(
                                "node {n}: too few whole devices in the solution"
                            )));
                        }
                        devices.push(pool.drain(..g as usize).collect());
                    }
                }
            }
            if devices.len() != k {
                return Err(MilpError::Decode(format!(
                    "class {c} node {n}: device counts do not add up"
                )));
            }
            for d in devices {
                let i = *members.next().ok_or_else(|| {
                    MilpError::Decode(format!("class {c}: more pods placed than it has"))
                })?;
                out[i] = Some(Binding {
                    node: n,
                    gpu_devices: d,
                });
            }
        }
    }
    Ok(out)
}

/// Binds the placed pods one by one (pending order), checking each with the full kube
/// filters against the pods bound before it; returns the resulting cluster.
pub(crate) fn bind_checked(
    problem: &Problem,
    placement: &[Option<Binding>],
) -> Result<Cluster, MilpError> {
    let mut cluster = problem.cluster.clone();
    for (pod, b) in problem.pending.iter().zip(placement) {
        let Some(b) = b else { continue };
        if let Err(r) = FilterContext::new(&cluster, pod).check(b.node) {
            return Err(MilpError::Rejected {
                pod: pod.key(),
                node: b.node,
                reasons: format!("{r:?}"),
            });
        }
        cluster.bind(pod.clone(), b.node, Some(b.gpu_devices.clone()))?;
    }
    Ok(cluster)
}
