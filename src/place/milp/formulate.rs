//! The placement program: candidate nodes per class, variables and constraints.
//!
//! Variables (all integer unless noted):
//! - `x[c,n]` pods of class `c` on node `n`, only where the class's first pod passes
//!   every filter on the current cluster ([`FilterContext::check`]: static filters,
//!   free resources for one pod, host ports and anti-affinity of bound pods);
//! - `z[c,n,d]` pods of GPU-sharing class `c` on device `d` of `n`; `w[n,d]` binary,
//!   device `d` (fully free now) taken by whole-GPU pods; with `sum_d z = x` and
//!   `sum_d w = sum_c gpus_c x` every device holds at most its free milli
//!   (`sum_c milli_c z[c,n,d] + 1000 w[n,d] <= free_d`), so two 600-milli shares never
//!   meet on one device. Classes with equal share size pool their `z` variables. No
//!   symmetry-breaking rows: on openb they kept HiGHS's heuristics from improving on
//!   the warm start (112 new nodes with them, 62 without, 200 pods);
//! - `g` binary per gang: `min_member g <= placed <= size g`;
//! - `y` binary per (anti-affinity term, other class, domain): pods of the term's owner
//!   and of a class it selects never share a domain; a class selecting itself gets
//!   `sum_{n in domain} x <= 1`;
//! - `used[n]` binary (pack) for nodes empty now; `u` continuous (balance);
//!   `open[n,d]` binary (fragmentation) for fully free devices that receive shares.
//!
//! Host ports: two classes with a conflicting port have `x[c,n] + x[c',n] <= 1`, and a
//! class with ports has `x[c,n] <= 1`.
//!
//! Identical empty nodes (same allocatable, GPUs, taints, labels up to per-node-unique
//! values, same eligibility for every class) are symmetric. Of each such group the
//! program keeps a prefix (plus every node the greedy warm start uses), sized
//! `min(group size, pods eligible, max(5/4 greedy's use + 2, volume bound))` — see the
//! module docs of [`super`] for why and what it costs.

use super::classes::Classes;
use super::program::Program;
use super::Objective;
use crate::model::{Binding, GpuAmount, NodeId, Problem, MILLI_PER_GPU};
use crate::place::filter::FilterContext;
use std::collections::{BTreeMap, BTreeSet};

/// (owner class, selected class, topology key, domain value) of an anti-affinity `y`.
pub(crate) type AntiKey = (usize, usize, String, String);

/// Per domain: the owner's `x` columns, the selected class's `x` columns, the owner's nodes.
type DomainCols = (Vec<usize>, Vec<usize>, Vec<NodeId>);

/// Current amount, capacity, and per-pod demand of one utilisation dimension.
type UtilDim<'a> = (u64, u64, &'a dyn Fn(usize) -> u64);

/// The program plus the maps from model objects to columns.
#[derive(Debug, Clone, Default)]
pub(crate) struct Formulation {
    /// The program.
    pub program: Program,
    /// `x[(class, node)]`.
    pub x: BTreeMap<(usize, NodeId), usize>,
    /// `z[(share milli, node, device)]`: shares of that size on the device (classes
    /// with equal share size pool their device variables).
    pub z: BTreeMap<(u32, NodeId, u32), usize>,
    /// `w[(node, device)]`.
    pub whole: BTreeMap<(NodeId, u32), usize>,
    /// `open[(node, device)]`.
    pub open: BTreeMap<(NodeId, u32), usize>,
    /// `used[node]`.
    pub used: BTreeMap<NodeId, usize>,
    /// `g` per gang.
    pub gang: Vec<usize>,
    /// `y[(owner class, other class, domain key, domain value)]` and the domain's nodes.
    pub anti: BTreeMap<AntiKey, (usize, Vec<NodeId>)>,
    /// `u` (balance).
    pub util: Option<usize>,
    /// Constant added to the second goal to give its real value (fragmentation).
    pub secondary_offset: f64,
    /// Devices whose leftover the fragmentation goal already counts.
    pub frag_devices: BTreeSet<(NodeId, u32)>,
}

fn per_device_milli(a: GpuAmount) -> u32 {
    match a {
        GpuAmount::Shared(m) => m,
        _ => 0,
    }
}

/// Free amount per dimension: cpu, memory, ephemeral storage, then extended names.
pub(crate) fn free_of(problem: &Problem, n: NodeId, ext: &[String]) -> Vec<f64> {
    let node = &problem.cluster[n];
    let used = problem.cluster.used(n);
    let a = &node.allocatable;
    let mut v = vec![
        a.cpu_milli.saturating_sub(used.cpu_milli) as f64,
        a.memory_bytes.saturating_sub(used.memory_bytes) as f64,
        a.ephemeral_storage_bytes
            .saturating_sub(used.ephemeral_storage_bytes) as f64,
    ];
    for e in ext {
        let cap = a.extended.get(e).copied().unwrap_or(0);
        let u = used.extended.get(e).copied().unwrap_or(0);
        v.push(cap.saturating_sub(u) as f64);
    }
    v
}

/// Demand of pending pod `i` per dimension, as [`free_of`].
pub(crate) fn demand_of(problem: &Problem, i: usize, ext: &[String]) -> Vec<f64> {
    let r = &problem.pending[i].requests;
    let mut v = vec![
        r.cpu_milli as f64,
        r.memory_bytes as f64,
        r.ephemeral_storage_bytes as f64,
    ];
    for e in ext {
        v.push(r.extended.get(e).copied().unwrap_or(0) as f64);
    }
    v
}

/// Nodes each class may use (before truncation), by the full filter of its first pod.
pub(crate) fn eligible_nodes(problem: &Problem, classes: &Classes) -> Vec<Vec<NodeId>> {
    let cluster = &problem.cluster;
    classes
        .classes
        .iter()
        .map(|c| {
            let pod = &problem.pending[c.rep()];
            let ctx = FilterContext::new(cluster, pod);
            cluster
                .node_ids()
                .filter(|&n| ctx.check(n).is_ok())
                .collect()
        })
        .collect()
}

/// Keeps non-empty nodes and a prefix of each group of identical empty nodes.
pub(crate) fn truncate(
    problem: &Problem,
    classes: &Classes,
    eligible: &[Vec<NodeId>],
    greedy: &[Option<Binding>],
) -> BTreeSet<NodeId> {
    let cluster = &problem.cluster;
    let mut elig_of: Vec<Vec<usize>> = vec![Vec::new(); cluster.node_slots()];
    for (c, ns) in eligible.iter().enumerate() {
        for &n in ns {
            elig_of[n].push(c);
        }
    }
    // Topology keys of modelled anti-affinity terms whose values are not per-node unique.
    let mut keys: BTreeSet<String> = BTreeSet::new();
    for c in &classes.classes {
        for t in &problem.pending[c.rep()].pod_anti_affinity {
            keys.insert(t.topology_key.clone());
        }
    }
    let shared_keys: Vec<String> = keys
        .into_iter()
        .filter(|k| {
            let mut seen = BTreeSet::new();
            cluster
                .nodes()
                .filter_map(|(_, n)| n.labels.get(k))
                .any(|v| !seen.insert(v))
        })
        .collect();
    let greedy_nodes: BTreeSet<NodeId> = greedy.iter().flatten().map(|b| b.node).collect();
    let mut kept = BTreeSet::new();
    let mut groups: BTreeMap<String, Vec<NodeId>> = BTreeMap::new();
    for (n, node) in cluster.nodes() {
        if elig_of[n].is_empty() {
            continue;
        }
        if !cluster.pods_on(n).is_empty() {
            kept.insert(n);
            continue;
        }
        let domains: Vec<Option<&String>> =
            shared_keys.iter().map(|k| node.labels.get(k)).collect();
        let sig = serde_json::to_string(&(
            &node.allocatable,
            &node.gpus,
            &node.taints,
            node.unschedulable,
            &elig_of[n],
            domains,
        ))
        .unwrap_or_default();
        groups.entry(sig).or_default().push(n);
    }
    for members in groups.values() {
        let n0 = members[0];
        let node = &cluster[n0];
        let eligible_pods: usize = elig_of[n0].iter().map(|&c| classes.classes[c].size()).sum();
        let greedy_used = members.iter().filter(|n| greedy_nodes.contains(n)).count();
        // Volume bound: nodes needed if every eligible pod went to this group.
        let (mut cpu, mut mem, mut gpu) = (0u64, 0u64, 0u64);
        for &c in &elig_of[n0] {
            let p = &problem.pending[classes.classes[c].rep()];
            let k = classes.classes[c].size() as u64;
            cpu += k * p.requests.cpu_milli;
            mem += k * p.requests.memory_bytes;
            gpu += k * p.gpu.amount.total_milli();
        }
        let div = |a: u64, b: u64| if b == 0 { 0 } else { a.div_ceil(b) as usize };
        let volume = div(cpu, node.allocatable.cpu_milli)
            .max(div(mem, node.allocatable.memory_bytes))
            .max(div(
                gpu,
                u64::from(node.gpu_count()) * u64::from(MILLI_PER_GPU),
            ));
        let keep = members
            .len()
            .min(eligible_pods)
            .min((greedy_used + greedy_used / 4 + 2).max(volume.min(2)));
        kept.extend(members.iter().take(keep));
        kept.extend(members.iter().filter(|n| greedy_nodes.contains(n)));
    }
    kept
}

/// Builds the program.
pub(crate) fn build(
    problem: &Problem,
    classes: &Classes,
    eligible: &[Vec<NodeId>],
    kept: &BTreeSet<NodeId>,
    objective: Objective,
) -> Formulation {
    let cluster = &problem.cluster;
    let cl = &classes.classes;
    let mut f = Formulation::default();
    let ext: Vec<String> = {
        let mut s = BTreeSet::new();
        for c in cl {
            s.extend(problem.pending[c.rep()].requests.extended.keys().cloned());
        }
        s.into_iter().collect()
    };
    let mut on_node: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
    for (c, ns) in eligible.iter().enumerate() {
        for &n in ns.iter().filter(|n| kept.contains(n)) {
            on_node.entry(n).or_default().push(c);
        }
    }
    for (&n, cs) in &on_node {
        let free = free_of(problem, n, &ext);
        let node = &cluster[n];
        let pods_free = node.allocatable.pods.saturating_sub(cluster.used(n).pods) as f64;
        let dev_free = cluster.gpu_free(n);
        let full: Vec<u32> = (0..dev_free.len() as u32)
            .filter(|&d| dev_free[d as usize] == MILLI_PER_GPU)
            .collect();
        let empty = cluster.pods_on(n).is_empty();
        let used = (objective == Objective::Pack && empty).then(|| {
            let u = f.program.col(0.0, 1.0, true);
            f.program.cols[u].secondary = 1.0;
            f.used.insert(n, u);
            u
        });
        // x columns with tight upper bounds.
        for &c in cs {
            let i = cl[c].rep();
            let pod = &problem.pending[i];
            let d = demand_of(problem, i, &ext);
            let mut hi = (cl[c].size() as f64).min(pods_free);
            for (a, b) in d.iter().zip(&free) {
                if *a > 0.0 {
                    hi = hi.min((b / a).floor());
                }
            }
            match pod.gpu.amount {
                GpuAmount::Shared(m) => {
                    let cap: u32 = dev_free.iter().map(|f| f / m).sum();
                    hi = hi.min(f64::from(cap));
                }
                GpuAmount::Whole(k) => hi = hi.min((full.len() as u32 / k) as f64),
                GpuAmount::None => {}
            }
            if !pod.host_ports.is_empty() {
                hi = hi.min(1.0);
            }
            let x = f.program.int(hi.max(0.0));
            f.program.cols[x].primary = cl[c].weight;
            f.x.insert((c, n), x);
            if let Some(u) = used {
                f.program.le(vec![(x, 1.0), (u, -hi)], 0.0);
            }
        }
        // Resource rows, scaled by the free amount (coefficients in [0, 1] keep the LP
        // well conditioned: memory is in bytes).
        for (dim, &free_dim) in free.iter().enumerate() {
            let mut terms: Vec<(usize, f64)> = Vec::new();
            for &c in cs {
                let a = demand_of(problem, cl[c].rep(), &ext)[dim];
                if a > 0.0 {
                    terms.push((f.x[&(c, n)], a / free_dim));
                }
            }
            if terms.is_empty() {
                continue;
            }
            match used {
                Some(u) => {
                    terms.push((u, -1.0));
                    f.program.le(terms, 0.0);
                }
                None => f.program.le(terms, 1.0),
            }
        }
        let mut terms: Vec<(usize, f64)> = cs.iter().map(|&c| (f.x[&(c, n)], 1.0)).collect();
        match used {
            Some(u) => {
                terms.push((u, -pods_free));
                f.program.le(terms, 0.0);
            }
            None => f.program.le(terms, pods_free),
        }
        gpu_rows(problem, classes, &mut f, n, cs, &full, objective);
    }
    // A class places at most its pods.
    f.gang = class_and_gang_rows(&mut f.program, &f.x, classes);
    anti_affinity_rows(problem, classes, &mut f);
    host_port_rows(problem, classes, &mut f);
    if objective == Objective::Balance {
        balance_rows(problem, classes, &mut f, &on_node);
    }
    if objective == Objective::Fragmentation {
        // Free milli on partly used devices not covered by the program stays as it is.
        for n in cluster.node_ids() {
            for (d, &fr) in cluster.gpu_free(n).iter().enumerate() {
                let covered = f.frag_devices.contains(&(n, d as u32));
                if fr > 0 && fr < MILLI_PER_GPU && !covered {
                    f.secondary_offset += f64::from(fr);
                }
            }
        }
    }
    f
}

fn gpu_rows(
    problem: &Problem,
    classes: &Classes,
    f: &mut Formulation,
    n: NodeId,
    cs: &[usize],
    full: &[u32],
    objective: Objective,
) {
    let cl = &classes.classes;
    let amount = |c: usize| problem.pending[cl[c].rep()].gpu.amount;
    let shares: Vec<usize> = cs
        .iter()
        .copied()
        .filter(|&c| matches!(amount(c), GpuAmount::Shared(_)))
        .collect();
    let wholes: Vec<(usize, u32)> = cs
        .iter()
        .filter_map(|&c| match amount(c) {
            GpuAmount::Whole(k) => Some((c, k)),
            _ => None,
        })
        .collect();
    let whole_terms: Vec<(usize, f64)> = wholes
        .iter()
        .map(|&(c, k)| (f.x[&(c, n)], f64::from(k)))
        .collect();
    if shares.is_empty() {
        if !whole_terms.is_empty() {
            f.program.le(whole_terms, full.len() as f64);
        }
        return;
    }
    let dev_free = problem.cluster.gpu_free(n);
    // Per-device load terms (shares and whole); shares pooled by size.
    let mut load: BTreeMap<u32, Vec<(usize, f64)>> = BTreeMap::new();
    let mut share_load: BTreeMap<u32, Vec<(usize, f64)>> = BTreeMap::new();
    let mut by_milli: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for &c in &shares {
        by_milli
            .entry(per_device_milli(amount(c)))
            .or_default()
            .push(c);
    }
    for (&m, cs_m) in &by_milli {
        let mut sum: Vec<(usize, f64)> = cs_m.iter().map(|&c| (f.x[&(c, n)], -1.0)).collect();
        for (d, &fr) in dev_free.iter().enumerate() {
            if fr >= m {
                let z = f.program.int(f64::from(fr / m));
                f.z.insert((m, n, d as u32), z);
                sum.push((z, 1.0));
                load.entry(d as u32).or_default().push((z, f64::from(m)));
                share_load
                    .entry(d as u32)
                    .or_default()
                    .push((z, f64::from(m)));
                if objective == Objective::Fragmentation {
                    f.program.cols[z].secondary = -f64::from(m);
                }
            }
        }
        f.program.eq(sum, 0.0);
    }
    if !wholes.is_empty() {
        let mut sum: Vec<(usize, f64)> = whole_terms.iter().map(|&(x, k)| (x, -k)).collect();
        for &d in full {
            let w = f.program.col(0.0, 1.0, true);
            f.whole.insert((n, d), w);
            sum.push((w, 1.0));
            load.entry(d)
                .or_default()
                .push((w, f64::from(MILLI_PER_GPU)));
        }
        f.program.eq(sum, 0.0);
    }
    for (&d, terms) in &load {
        let fr = f64::from(dev_free[d as usize]);
        f.program.le(terms.clone(), fr);
        if objective == Objective::Fragmentation {
            f.frag_devices.insert((n, d));
            if fr >= f64::from(MILLI_PER_GPU) {
                let o = f.program.col(0.0, 1.0, true);
                f.program.cols[o].secondary = f64::from(MILLI_PER_GPU);
                f.open.insert((n, d), o);
                let mut t = share_load.get(&d).cloned().unwrap_or_default();
                t.push((o, -f64::from(MILLI_PER_GPU)));
                f.program.le(t, 0.0);
            } else if fr > 0.0 {
                f.secondary_offset += fr;
            }
        }
    }
}

/// Classes that may be selected by a term with `selector`: those whose first pod has the
/// selector's rarest `matchLabels` pair (every class if it has none). A superset: callers
/// still check `selects`.
fn classes_maybe_selected<'a>(
    by_label: &'a BTreeMap<(&str, &str), Vec<usize>>,
    all: &'a [usize],
    selector: &'a crate::model::LabelSelector,
) -> &'a [usize] {
    let mut best = all;
    for (k, v) in &selector.match_labels {
        let got = by_label
            .get(&(k.as_str(), v.as_str()))
            .map_or(&[][..], Vec::as_slice);
        if got.len() < best.len() {
            best = got;
        }
    }
    best
}

fn anti_affinity_rows(problem: &Problem, classes: &Classes, f: &mut Formulation) {
    let cl = &classes.classes;
    let cluster = &problem.cluster;
    // Classes by label pair of their first pod, to skip the class pairs a term cannot
    // select (the check over every pair is quadratic in the classes).
    let mut by_label: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (c, class) in cl.iter().enumerate() {
        for (k, v) in &problem.pending[class.rep()].labels {
            by_label.entry((k, v)).or_default().push(c);
        }
    }
    let all: Vec<usize> = (0..cl.len()).collect();
    for (c, class) in cl.iter().enumerate() {
        let pod = &problem.pending[class.rep()];
        for t in &pod.pod_anti_affinity {
            for &c2 in classes_maybe_selected(&by_label, &all, &t.selector) {
                let op = &problem.pending[cl[c2].rep()];
                if !t.selects(&pod.namespace, &op.namespace, &op.labels) {
                    continue;
                }
                let mut domains: BTreeMap<&String, DomainCols> = BTreeMap::new();
                let own = f.x.range((c, NodeId::FIRST)..(c + 1, NodeId::FIRST));
                let other =
                    f.x.range((c2, NodeId::FIRST)..(c2 + 1, NodeId::FIRST))
                        .filter(|_| c2 != c);
                for (&(cc, n), &x) in own.chain(other) {
                    let Some(v) = cluster[n].labels.get(&t.topology_key) else {
                        continue;
                    };
                    let e = domains.entry(v).or_default();
                    if cc == c {
                        e.0.push(x);
                        e.2.push(n);
                    } else {
                        e.1.push(x);
                    }
                }
                for (v, (xs, ys, ns)) in domains {
                    if c2 == c {
                        if xs.len() > 1 || xs.iter().any(|&x| f.program.cols[x].hi > 1.0) {
                            f.program.le(xs.iter().map(|&x| (x, 1.0)).collect(), 1.0);
                        }
                        continue;
                    }
                    if xs.is_empty() || ys.is_empty() {
                        continue;
                    }
                    let key = (c, c2, t.topology_key.clone(), v.clone());
                    if f.anti.contains_key(&key) {
                        continue;
                    }
                    let y = f.program.col(0.0, 1.0, true);
                    let (s1, s2) = (cl[c].size() as f64, cl[c2].size() as f64);
                    let mut a: Vec<(usize, f64)> = xs.iter().map(|&x| (x, 1.0)).collect();
                    a.push((y, -s1));
                    f.program.le(a, 0.0);
                    let mut b: Vec<(usize, f64)> = ys.iter().map(|&x| (x, 1.0)).collect();
                    b.push((y, s2));
                    f.program.le(b, s2);
                    f.anti.insert(key, (y, ns));
                }
            }
        }
    }
}

fn host_port_rows(problem: &Problem, classes: &Classes, f: &mut Formulation) {
    let cl = &classes.classes;
    let with_ports: Vec<usize> = (0..cl.len())
        .filter(|&c| !problem.pending[cl[c].rep()].host_ports.is_empty())
        .collect();
    for (i, &a) in with_ports.iter().enumerate() {
        for &b in &with_ports[i + 1..] {
            let pa = &problem.pending[cl[a].rep()].host_ports;
            let pb = &problem.pending[cl[b].rep()].host_ports;
            if !pa.iter().any(|p| pb.iter().any(|q| p.conflicts(q))) {
                continue;
            }
            for (&(_, n), &xa) in f.x.range((a, NodeId::FIRST)..(a + 1, NodeId::FIRST)) {
                if let Some(&xb) = f.x.get(&(b, n)) {
                    f.program.le(vec![(xa, 1.0), (xb, 1.0)], 1.0);
                }
            }
        }
    }
}

fn balance_rows(
    problem: &Problem,
    classes: &Classes,
    f: &mut Formulation,
    on_node: &BTreeMap<NodeId, Vec<usize>>,
) {
    let cluster = &problem.cluster;
    // The largest utilisation now, over every node: a floor for u.
    let mut floor: f64 = 0.0;
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    for (n, node) in cluster.nodes() {
        let u = cluster.used(n);
        let gpu_total = u64::from(node.gpu_count()) * u64::from(MILLI_PER_GPU);
        floor = floor
            .max(ratio(u.cpu_milli, node.allocatable.cpu_milli))
            .max(ratio(u.memory_bytes, node.allocatable.memory_bytes))
            .max(ratio(gpu_total - cluster.gpu_free_total(n), gpu_total));
    }
    let u = f.program.col(floor, f64::INFINITY, false);
    f.program.cols[u].secondary = 1.0;
    f.util = Some(u);
    for (&n, cs) in on_node {
        let node = &cluster[n];
        let used = cluster.used(n);
        let gpu_total = u64::from(node.gpu_count()) * u64::from(MILLI_PER_GPU);
        let dims: [UtilDim; 3] = [
            (used.cpu_milli, node.allocatable.cpu_milli, &|i| {
                problem.pending[i].requests.cpu_milli
            }),
            (used.memory_bytes, node.allocatable.memory_bytes, &|i| {
                problem.pending[i].requests.memory_bytes
            }),
            (gpu_total - cluster.gpu_free_total(n), gpu_total, &|i| {
                problem.pending[i].gpu.amount.total_milli()
            }),
        ];
        for (now, cap, dem) in dims {
            if cap == 0 {
                continue;
            }
            let mut t: Vec<(usize, f64)> = cs
                .iter()
                .map(|&c| {
                    (
                        f.x[&(c, n)],
                        dem(classes.classes[c].rep()) as f64 / cap as f64,
                    )
                })
                .filter(|(_, a)| *a > 0.0)
                .collect();
            if t.is_empty() {
                continue;
            }
            t.push((u, -1.0));
            f.program.le(t, -(now as f64 / cap as f64));
        }
    }
}

/// Rows shared by the per-node and the aggregated programs: at most a class's size of its
/// pods placed (`x[(class, place)]` summed over places), and each gang all or nothing (a
/// binary column per gang: its members placed are either 0 or between `min_member` and
/// its size). Returns the gang columns in `classes.gangs` order.
pub(super) fn class_and_gang_rows<K: Ord>(
    program: &mut Program,
    x: &BTreeMap<(usize, K), usize>,
    classes: &Classes,
) -> Vec<usize> {
    // Columns per class, in key order (one pass over `x`).
    let mut cols: Vec<Vec<usize>> = vec![Vec::new(); classes.classes.len()];
    for (&(c, _), &col) in x {
        cols[c].push(col);
    }
    let of_class = |c: usize| cols[c].iter().map(|&col| (col, 1.0));
    for (c, class) in classes.classes.iter().enumerate() {
        let terms: Vec<(usize, f64)> = of_class(c).collect();
        if terms.len() > 1 {
            program.le(terms, class.size() as f64);
        }
    }
    let mut gang_cols = Vec::with_capacity(classes.gangs.len());
    for g in &classes.gangs {
        let col = program.col(0.0, 1.0, true);
        gang_cols.push(col);
        let mut terms: Vec<(usize, f64)> = g.classes.iter().flat_map(|&c| of_class(c)).collect();
        let mut lo = terms.clone();
        lo.push((col, -(g.min_member as f64)));
        program.ge(lo, 0.0);
        terms.push((col, -(g.size as f64)));
        program.le(terms, 0.0);
    }
    gang_cols
}
