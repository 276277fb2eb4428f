//! The aggregated program for `pack` on large clusters: identical empty nodes form
//! *types*, and the program counts pods per (class, type) instead of per (class, node).
//!
//! Two empty nodes are of one type when they have the same allocatable resources, GPUs
//! (count and model), taints, schedulability and the same set of classes passing every
//! filter on them (labels matter only through that set). A node with bound pods is a
//! type of its own (capacity = what is free on it).
//!
//! Variables: integer `x[c,t]` pods of class `c` on type `t`; integer `k[t]` in
//! `0..=|t|` nodes of an empty type put in use (the second goal is `sum k`); binary `g`
//! per gang. Rows per type, with `cap` one node's free amount and `k = 1` for a node
//! with pods:
//! - per resource (CPU, memory, ephemeral storage, extended, pod count):
//!   `sum_c req_c x[c,t] <= cap k[t]`;
//! - GPU milli: `sum_c milli_c x[c,t] <= free milli k[t]`;
//! - whole devices: `sum_c gpus_c x[c,t] <= full devices k[t]`, and whole devices plus
//!   shares above 500 milli (no two such pods share a device)
//!   `<= devices with more than 500 milli free k[t]`;
//! - one node holds at most `fit` pods of a class alone: `x[c,t] <= fit_{c,t} k[t]`;
//! - class sizes and gangs as in the exact program.
//!
//! Every placement on the real nodes gives a point of this program with the same
//! weight and `sum k` = nodes newly used (sum the per-node rows of a type), so the
//! program is a *relaxation*: its first-goal bound bounds the weight of any placement,
//! and its second-goal bound (with the weight fixed at `v`) bounds the new nodes of any
//! placement of weight at least `v`. Its solution is turned into a placement by
//! [`super::realise`].

use super::classes::Classes;
use super::formulate::{class_and_gang_rows, demand_of, free_of};
use super::program::Program;
use crate::model::{Binding, GpuAmount, NodeId, Problem, MILLI_PER_GPU};
use std::collections::BTreeMap;

/// A group of interchangeable nodes.
#[derive(Debug, Clone)]
pub(crate) struct NodeType {
    /// The nodes, ascending.
    pub nodes: Vec<NodeId>,
    /// True if the nodes are empty now (a `k` column), false for a node with pods.
    pub empty: bool,
    /// Classes that pass every filter on these nodes.
    pub classes: Vec<usize>,
}

/// The aggregated program and its column maps.
#[derive(Debug, Clone, Default)]
pub(crate) struct Aggregate {
    /// The program.
    pub program: Program,
    /// The types.
    pub types: Vec<NodeType>,
    /// `x[(class, type)]`.
    pub x: BTreeMap<(usize, usize), usize>,
    /// `k[type]`, empty types only.
    pub k: BTreeMap<usize, usize>,
    /// `g` per gang.
    pub gang: Vec<usize>,
}

/// Groups the nodes some class may use into types.
pub(crate) fn node_types(problem: &Problem, eligible: &[Vec<NodeId>]) -> Vec<NodeType> {
    let cluster = &problem.cluster;
    let mut elig_of: Vec<Vec<usize>> = vec![Vec::new(); cluster.node_slots()];
    for (c, ns) in eligible.iter().enumerate() {
        for &n in ns {
            elig_of[n].push(c);
        }
    }
    let mut types: Vec<NodeType> = Vec::new();
    let mut by_sig: BTreeMap<String, usize> = BTreeMap::new();
    for (n, node) in cluster.nodes() {
        if elig_of[n].is_empty() {
            continue;
        }
        let empty = cluster.pods_on(n).is_empty();
        if !empty {
            types.push(NodeType {
                nodes: vec![n],
                empty: false,
                classes: elig_of[n].clone(),
            });
            continue;
        }
        let sig = serde_json::to_string(&(
            &node.allocatable,
            &node.gpus,
            &node.taints,
            node.unschedulable,
            &elig_of[n],
        ))
        .unwrap_or_else(|_| format!("node {n}"));
        match by_sig.get(&sig) {
            Some(&t) => types[t].nodes.push(n),
            None => {
                by_sig.insert(sig, types.len());
                types.push(NodeType {
                    nodes: vec![n],
                    empty: true,
                    classes: elig_of[n].clone(),
                });
            }
        }
    }
    types
}

/// Extended resource names the classes request, sorted.
pub(crate) fn extended_names(problem: &Problem, classes: &Classes) -> Vec<String> {
    let mut s = std::collections::BTreeSet::new();
    for c in &classes.classes {
        s.extend(problem.pending[c.rep()].requests.extended.keys().cloned());
    }
    s.into_iter().collect()
}

/// Most pods of class `c` alone on node `n` (at most the class size).
pub(crate) fn fit_alone(
    problem: &Problem,
    classes: &Classes,
    c: usize,
    n: NodeId,
    ext: &[String],
) -> usize {
    let cluster = &problem.cluster;
    let i = classes.classes[c].rep();
    let pod = &problem.pending[i];
    let node = &cluster[n];
    let mut hi = classes.classes[c]
        .size()
        .min(node.allocatable.pods.saturating_sub(cluster.used(n).pods) as usize);
    for (a, b) in demand_of(problem, i, ext)
        .iter()
        .zip(free_of(problem, n, ext))
    {
        if *a > 0.0 {
            hi = hi.min((b / a).floor() as usize);
        }
    }
    let dev = cluster.gpu_free(n);
    match pod.gpu.amount {
        GpuAmount::Shared(m) => hi = hi.min(dev.iter().map(|f| (f / m) as usize).sum()),
        GpuAmount::Whole(k) => {
            let full = dev.iter().filter(|&&f| f == MILLI_PER_GPU).count();
            hi = hi.min(full / k as usize);
        }
        GpuAmount::None => {}
    }
    hi
}

/// Builds the aggregated program.
pub(crate) fn build(problem: &Problem, classes: &Classes, types: Vec<NodeType>) -> Aggregate {
    let cluster = &problem.cluster;
    let cl = &classes.classes;
    let ext = extended_names(problem, classes);
    let mut a = Aggregate::default();
    for (t, ty) in types.iter().enumerate() {
        let n = ty.nodes[0];
        let count = ty.nodes.len() as f64;
        let k = ty.empty.then(|| {
            let k = a.program.int(count);
            a.program.cols[k].secondary = 1.0;
            a.k.insert(t, k);
            k
        });
        let cs: Vec<usize> = ty
            .classes
            .iter()
            .copied()
            .filter(|&c| fit_alone(problem, classes, c, n, &ext) > 0)
            .collect();
        for &c in &cs {
            let fit = fit_alone(problem, classes, c, n, &ext) as f64;
            let x = a.program.int((cl[c].size() as f64).min(fit * count));
            a.program.cols[x].primary = cl[c].weight;
            a.x.insert((c, t), x);
            if let Some(k) = k {
                if fit < cl[c].size() as f64 {
                    a.program.le(vec![(x, 1.0), (k, -fit)], 0.0);
                }
            }
        }
        // Capacity rows, scaled by one node's amount so coefficients are at most 1.
        let mut caps = free_of(problem, n, &ext);
        let node = &cluster[n];
        caps.push(node.allocatable.pods.saturating_sub(cluster.used(n).pods) as f64);
        let dev = cluster.gpu_free(n);
        caps.push(dev.iter().map(|&f| f64::from(f)).sum());
        caps.push(dev.iter().filter(|&&f| f == MILLI_PER_GPU).count() as f64);
        caps.push(dev.iter().filter(|&&f| f > MILLI_PER_GPU / 2).count() as f64);
        let demand = |c: usize| -> Vec<f64> {
            let i = cl[c].rep();
            let mut d = demand_of(problem, i, &ext);
            d.push(1.0);
            let amount = problem.pending[i].gpu.amount;
            d.push(amount.total_milli() as f64);
            let (whole, big) = match amount {
                GpuAmount::Whole(g) => (f64::from(g), f64::from(g)),
                GpuAmount::Shared(m) if m > MILLI_PER_GPU / 2 => (0.0, 1.0),
                _ => (0.0, 0.0),
            };
            d.push(whole);
            d.push(big);
            d
        };
        let demands: Vec<Vec<f64>> = cs.iter().map(|&c| demand(c)).collect();
        if let Some(k) = k {
            device_cuts(problem, classes, &mut a, t, &cs, k, node.gpu_count());
        }
        for (dim, &cap) in caps.iter().enumerate() {
            let mut terms: Vec<(usize, f64)> = cs
                .iter()
                .zip(&demands)
                .filter(|(_, d)| d[dim] > 0.0)
                .map(|(&c, d)| (a.x[&(c, t)], d[dim] / cap.max(1e-9)))
                .collect();
            if terms.is_empty() {
                continue;
            }
            match k {
                Some(k) => {
                    terms.push((k, -1.0));
                    a.program.le(terms, 0.0);
                }
                None => a.program.le(terms, 1.0),
            }
        }
    }
    a.gang = class_and_gang_rows(&mut a.program, &a.x, classes);
    a.types = types;
    a
}

/// Dual-feasible-function cuts on the devices of an empty GPU type: for `f` a dual
/// feasible function on device fractions (any set of shares fitting on one device has
/// `sum f <= 1`), `sum_c f(milli_c / 1000) x[c,t] + whole devices <= gpus k[t]`. Uses
/// Fekete and Schepers' `U^(q)` for `q = 1..=4` and `f_eps` with `eps` just above the
/// room left by each share size above 500 milli (so that share counts as a full device
/// unless smaller shares fill its room).
fn device_cuts(
    problem: &Problem,
    classes: &Classes,
    a: &mut Aggregate,
    t: usize,
    cs: &[usize],
    k: usize,
    gpus: u32,
) {
    if gpus == 0 {
        return;
    }
    let amount = |c: usize| problem.pending[classes.classes[c].rep()].gpu.amount;
    let shares: std::collections::BTreeSet<u32> = cs
        .iter()
        .filter_map(|&c| match amount(c) {
            GpuAmount::Shared(m) => Some(m),
            _ => None,
        })
        .collect();
    if shares.is_empty() {
        return;
    }
    let full = MILLI_PER_GPU;
    let mut funcs: Vec<Box<dyn Fn(u32) -> f64>> = Vec::new();
    for q in 1..=4u32 {
        funcs.push(Box::new(move |m: u32| {
            if ((q + 1) * m) % full == 0 {
                f64::from(m) / f64::from(full)
            } else {
                f64::from((q + 1) * m / full) / f64::from(q)
            }
        }));
    }
    for &m0 in shares.iter().filter(|&&m| m > full / 2) {
        let eps = full - m0 + 1;
        funcs.push(Box::new(move |m: u32| {
            if m > full - eps {
                1.0
            } else if m >= eps {
                f64::from(m) / f64::from(full)
            } else {
                0.0
            }
        }));
    }
    let mut seen = std::collections::BTreeSet::new();
    for f in funcs {
        let coefs: Vec<(usize, f64)> = cs
            .iter()
            .filter_map(|&c| {
                let v = match amount(c) {
                    GpuAmount::Shared(m) => f(m),
                    GpuAmount::Whole(g) => f64::from(g),
                    GpuAmount::None => 0.0,
                };
                (v > 0.0).then(|| (a.x[&(c, t)], v / f64::from(gpus)))
            })
            .collect();
        let key: Vec<(usize, u64)> = coefs.iter().map(|&(x, v)| (x, (v * 1e9) as u64)).collect();
        if coefs.is_empty() || !seen.insert(key) {
            continue;
        }
        let mut terms = coefs;
        terms.push((k, -1.0));
        a.program.le(terms, 0.0);
    }
}

/// Column values of `placement` (modelled pods only), or `None` if it is not a point of
/// the program.
pub(crate) fn warm_start(
    classes: &Classes,
    a: &Aggregate,
    cls: &[Option<usize>],
    placement: &[Option<Binding>],
) -> Option<Vec<f64>> {
    let mut type_of: BTreeMap<NodeId, usize> = BTreeMap::new();
    for (t, ty) in a.types.iter().enumerate() {
        for &n in &ty.nodes {
            type_of.insert(n, t);
        }
    }
    let mut v = vec![0.0; a.program.cols.len()];
    let mut used = std::collections::BTreeSet::new();
    for (i, b) in placement.iter().enumerate() {
        let (Some(b), Some(c)) = (b, cls[i]) else {
            continue;
        };
        let t = *type_of.get(&b.node)?;
        v[*a.x.get(&(c, t))?] += 1.0;
        if let Some(&k) = a.k.get(&t) {
            if used.insert(b.node) {
                v[k] += 1.0;
            }
        }
    }
    for (g, &col) in a.gang.iter().enumerate() {
        let placed: f64 = classes.gangs[g]
            .classes
            .iter()
            .flat_map(|&c| a.x.range((c, 0)..(c + 1, 0)).map(|(_, &x)| v[x]))
            .sum();
        v[col] = f64::from(u8::from(placed > 0.0));
    }
    a.program.feasible(&v, 1e-6).then_some(v)
}
