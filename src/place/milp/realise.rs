//! From an aggregated solution to concrete nodes: the pods the solution puts on a type
//! are packed onto that type's nodes by first-fit decreasing with exact accounting of
//! every resource and of each GPU device (shares on the fullest device they fit, whole
//! GPUs on fully free devices, [`choose_devices`]). Types are independent and packed in
//! parallel. A pod that fits on none of the type's nodes stays unplaced here (the caller
//! repairs with the greedy policy).

use super::aggregate::{extended_names, Aggregate};
use super::classes::Classes;
use super::formulate::{demand_of, free_of};
use crate::model::gpu::choose_devices;
use crate::model::{Binding, GpuAmount, NodeId, Problem, MILLI_PER_GPU};
use crate::place::clock::Deadline;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// One node being filled.
struct Bin {
    node: NodeId,
    /// Free amount per dimension (resources, then the pod count).
    free: Vec<f64>,
    /// Free milli per device.
    dev: Vec<u32>,
}

impl Bin {
    fn new(problem: &Problem, node: NodeId, ext: &[String]) -> Self {
        let c = &problem.cluster;
        let mut free = free_of(problem, node, ext);
        free.push(c[node].allocatable.pods.saturating_sub(c.used(node).pods) as f64);
        Bin {
            node,
            free,
            dev: c.gpu_free(node).to_vec(),
        }
    }

    /// Places the pod if it fits; returns its devices.
    fn take(&mut self, demand: &[f64], amount: GpuAmount) -> Option<Vec<u32>> {
        if demand.iter().zip(&self.free).any(|(d, f)| d > f) {
            return None;
        }
        let devices = choose_devices(&self.dev, amount)?;
        for (f, d) in self.free.iter_mut().zip(demand) {
            *f -= d;
        }
        let take = match amount {
            GpuAmount::Shared(m) => m,
            _ => MILLI_PER_GPU,
        };
        for &d in &devices {
            self.dev[d as usize] -= take;
        }
        Some(devices)
    }
}

/// The placement of the modelled pods that the aggregated solution `v` describes (pods
/// that did not fit stay `None`).
pub(crate) fn realise(
    problem: &Problem,
    classes: &Classes,
    a: &Aggregate,
    v: &[f64],
    seed: u64,
    deadline: &Deadline,
) -> Vec<Option<Binding>> {
    let ext = extended_names(problem, classes);
    let count = |col: usize| v[col].round().max(0.0) as usize;
    // Pods per type, members taken in class order.
    let mut per_type: Vec<Vec<usize>> = vec![Vec::new(); a.types.len()];
    for (c, class) in classes.classes.iter().enumerate() {
        let mut members = class.members.iter();
        for (&(_, t), &x) in a.x.range((c, 0)..(c + 1, 0)) {
            per_type[t].extend(members.by_ref().take(count(x)));
        }
    }
    let packed: Vec<Vec<(usize, Binding)>> = a
        .types
        .par_iter()
        .zip(per_type)
        .enumerate()
        .map(|(t, (ty, pods))| {
            if pods.is_empty() {
                return Vec::new();
            }
            let a = pack(problem, &ext, &ty.nodes, pods.clone());
            if !ty.empty || problem.cluster[ty.nodes[0]].gpu_count() == 0 {
                return a;
            }
            let b = pack_devices(
                problem,
                &ext,
                &ty.nodes,
                &pods,
                seed ^ (t as u64) << 32,
                deadline,
            );
            if quality(&b) < quality(&a) {
                b
            } else {
                a
            }
        })
        .collect();
    for (t, p) in packed.iter().enumerate() {
        let used: std::collections::BTreeSet<NodeId> = p.iter().map(|(_, b)| b.node).collect();
        tracing::trace!(
            t,
            node = a.types[t].nodes[0].index(),
            k = a.k.get(&t).map(|&k| count(k)),
            pods = p.len(),
            used = used.len(),
            "type realised"
        );
    }
    let mut out = vec![None; problem.pending.len()];
    for (i, b) in packed.into_iter().flatten() {
        out[i] = Some(b);
    }
    out
}

/// First-fit decreasing of `pods` onto `nodes` (opened in order).
fn pack(
    problem: &Problem,
    ext: &[String],
    nodes: &[NodeId],
    mut pods: Vec<usize>,
) -> Vec<(usize, Binding)> {
    let Some(&n0) = nodes.first() else {
        return Vec::new();
    };
    let cap = Bin::new(problem, n0, ext);
    let gpu_cap: f64 = cap.dev.iter().map(|&f| f64::from(f)).sum();
    let demands: Vec<Vec<f64>> = pods
        .iter()
        .map(|&i| {
            let mut d = demand_of(problem, i, ext);
            d.push(1.0);
            d
        })
        .collect();
    // Size of a pod: its largest share of one node's capacity (GPU included).
    let size = |j: usize| -> (f64, f64) {
        let i = pods[j];
        let mut v: Vec<f64> = demands[j]
            .iter()
            .zip(&cap.free)
            .map(|(d, f)| if *f > 0.0 { d / f } else { 0.0 })
            .collect();
        if gpu_cap > 0.0 {
            v.push(problem.pending[i].gpu.amount.total_milli() as f64 / gpu_cap);
        }
        let max = v.iter().copied().fold(0.0, f64::max);
        (max, v.iter().sum())
    };
    let mut order: Vec<usize> = (0..pods.len()).collect();
    let sizes: Vec<(f64, f64)> = order.iter().map(|&j| size(j)).collect();
    order.sort_by(|&x, &y| {
        sizes[y]
            .partial_cmp(&sizes[x])
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(pods[x].cmp(&pods[y]))
    });
    let mut bins: Vec<Bin> = Vec::new();
    let mut out = Vec::with_capacity(pods.len());
    for j in order {
        let i = pods[j];
        let amount = problem.pending[i].gpu.amount;
        let mut placed = None;
        for b in bins.iter_mut() {
            if let Some(d) = b.take(&demands[j], amount) {
                placed = Some((b.node, d));
                break;
            }
        }
        if placed.is_none() && bins.len() < nodes.len() {
            let mut b = Bin::new(problem, nodes[bins.len()], ext);
            placed = b.take(&demands[j], amount).map(|d| (b.node, d));
            bins.push(b);
        }
        if let Some((node, gpu_devices)) = placed {
            out.push((i, Binding { node, gpu_devices }));
        }
    }
    pods.clear();
    out
}

/// (pods left unplaced, nodes used) — lower is better.
fn quality(p: &[(usize, Binding)]) -> (std::cmp::Reverse<usize>, usize) {
    let used: std::collections::BTreeSet<NodeId> = p.iter().map(|(_, b)| b.node).collect();
    (std::cmp::Reverse(p.len()), used.len())
}

/// One unit of the device-first packing: a whole-GPU pod, a group of shares filling one
/// device, or a pod without GPU.
struct Item {
    pods: Vec<usize>,
    /// Fully free devices needed.
    devices: usize,
    /// Summed demand (resources, then the pod count).
    demand: Vec<f64>,
    /// Share size per pod (0 for whole and no GPU).
    milli: u32,
}

/// Device-first packing for an empty GPU type: shares are first packed onto virtual
/// devices (best-fit decreasing by milli), then whole-GPU pods, share devices and other
/// pods are packed onto nodes by first-fit decreasing (devices, then largest resource
/// share). A unit that fits nowhere is split into its pods and placed pod by pod.
fn pack_devices(
    problem: &Problem,
    ext: &[String],
    nodes: &[NodeId],
    pods: &[usize],
    seed: u64,
    deadline: &Deadline,
) -> Vec<(usize, Binding)> {
    let mut best = pack_devices_once(problem, ext, nodes, pods, None);
    for r in 0..RESTARTS {
        if deadline.passed() {
            break;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(r));
        let b = pack_devices_once(problem, ext, nodes, pods, Some(&mut rng));
        if quality(&b) < quality(&best) {
            best = b;
        }
    }
    best
}

/// Randomised restarts of the device-first packing per type (after the deterministic
/// one), while time is left.
const RESTARTS: u64 = 24;

fn pack_devices_once(
    problem: &Problem,
    ext: &[String],
    nodes: &[NodeId],
    pods: &[usize],
    mut rng: Option<&mut ChaCha8Rng>,
) -> Vec<(usize, Binding)> {
    let Some(&n0) = nodes.first() else {
        return Vec::new();
    };
    let cap = Bin::new(problem, n0, ext);
    let demand = |i: usize| {
        let mut d = demand_of(problem, i, ext);
        d.push(1.0);
        d
    };
    let mut items: Vec<Item> = Vec::new();
    let mut shares: Vec<(u32, usize)> = Vec::new();
    for &i in pods {
        match problem.pending[i].gpu.amount {
            GpuAmount::Shared(m) => shares.push((m, i)),
            GpuAmount::Whole(g) => items.push(Item {
                pods: vec![i],
                devices: g as usize,
                demand: demand(i),
                milli: 0,
            }),
            GpuAmount::None => items.push(Item {
                pods: vec![i],
                devices: 0,
                demand: demand(i),
                milli: 0,
            }),
        }
    }
    match rng.as_deref_mut() {
        None => shares.sort_by_key(|&(m, i)| (std::cmp::Reverse(m), i)),
        Some(rng) => {
            let mut keyed: Vec<(i64, usize, u32)> = shares
                .iter()
                .map(|&(m, i)| (-(i64::from(m)) + rng.gen_range(-40..=40), i, m))
                .collect();
            keyed.sort_unstable();
            shares = keyed.into_iter().map(|(_, i, m)| (m, i)).collect();
        }
    }
    let mut vdevs: Vec<(u32, Item)> = Vec::new();
    for (m, i) in shares {
        let best = vdevs
            .iter_mut()
            .filter(|(used, _)| used + m <= MILLI_PER_GPU)
            .max_by_key(|(used, _)| *used);
        match best {
            Some((used, item)) => {
                *used += m;
                item.pods.push(i);
                for (a, b) in item.demand.iter_mut().zip(demand(i)) {
                    *a += b;
                }
            }
            None => vdevs.push((
                m,
                Item {
                    pods: vec![i],
                    devices: 1,
                    demand: demand(i),
                    milli: m,
                },
            )),
        }
    }
    items.extend(vdevs.into_iter().map(|(_, it)| it));
    tracing::trace!(
        devices = items.iter().map(|i| i.devices).sum::<usize>(),
        cpu_nodes = items.iter().map(|i| i.demand[0]).sum::<f64>() / cap.free[0],
        mem_nodes = items.iter().map(|i| i.demand[1]).sum::<f64>() / cap.free[1],
        "device-first items"
    );
    if let Some(rng) = rng {
        let noise: Vec<f64> = items.iter().map(|_| rng.gen_range(-0.05..0.05)).collect();
        return place_items(problem, ext, nodes, &items, &cap, Fill::Balanced, &noise);
    }
    let zero = vec![0.0; items.len()];
    let mut best = place_items(problem, ext, nodes, &items, &cap, Fill::FirstFit, &zero);
    for fill in [Fill::Aligned, Fill::Balanced] {
        let b = place_items(problem, ext, nodes, &items, &cap, fill, &zero);
        if quality(&b) < quality(&best) {
            best = b;
        }
    }
    best
}

/// How units are ordered onto nodes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fill {
    /// First-fit decreasing (devices, then largest resource share).
    FirstFit,
    /// Node by node, the unit best aligned with the node's free capacity.
    Aligned,
    /// Node by node, keeping the node's device use level with its CPU/memory use: the
    /// most device-heavy unit when resources run ahead, else the most resource-heavy.
    Balanced,
}

/// Packs units onto `nodes`: first-fit decreasing (devices, then largest resource
/// share), or, with `fill`, node by node, each time the unit that fits whose demand has
/// the largest dot product with the node's free capacity (all normalised).
fn place_items(
    problem: &Problem,
    ext: &[String],
    nodes: &[NodeId],
    items: &[Item],
    cap: &Bin,
    fill: Fill,
    noise: &[f64],
) -> Vec<(usize, Binding)> {
    let demand = |i: usize| {
        let mut d = demand_of(problem, i, ext);
        d.push(1.0);
        d
    };
    let gpus = cap.dev.len().max(1) as f64;
    let size = |it: &Item| -> f64 {
        it.demand
            .iter()
            .zip(&cap.free)
            .map(|(d, f)| if *f > 0.0 { d / f } else { 0.0 })
            .fold(0.0, f64::max)
    };
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&x, &y| {
        items[y]
            .devices
            .cmp(&items[x].devices)
            .then(
                size(&items[y])
                    .partial_cmp(&size(&items[x]))
                    .unwrap_or(std::cmp::Ordering::Equal),
            )
            .then(items[x].pods[0].cmp(&items[y].pods[0]))
    });
    let mut bins: Vec<Bin> = Vec::new();
    let mut out = Vec::new();
    let fits = |b: &Bin, it: &Item| {
        it.demand.iter().zip(&b.free).all(|(d, f)| d <= f)
            && b.dev.iter().filter(|&&f| f == MILLI_PER_GPU).count() >= it.devices
    };
    if fill != Fill::FirstFit {
        // Reorder: node by node, the best-aligned unit that fits next.
        let mut left: Vec<usize> = order.clone();
        let mut seq = Vec::with_capacity(left.len());
        let mut probe: Option<Bin> = None;
        let mut opened = 0;
        while !left.is_empty() {
            let b = match probe.as_mut() {
                Some(b) => b,
                None => {
                    if opened >= nodes.len() {
                        seq.append(&mut left);
                        break;
                    }
                    opened += 1;
                    probe.insert(Bin::new(problem, nodes[opened - 1], ext))
                }
            };
            let full = b.dev.iter().filter(|&&f| f == MILLI_PER_GPU).count() as f64;
            let res = |d: &[f64]| -> f64 {
                d.iter()
                    .zip(&cap.free)
                    .take(2)
                    .map(|(d, c)| if *c > 0.0 { d / c } else { 0.0 })
                    .fold(0.0, f64::max)
            };
            let used: Vec<f64> = cap.free.iter().zip(&b.free).map(|(c, f)| c - f).collect();
            let ahead = res(&used) > (gpus - full) / gpus;
            let score = |j: usize| -> f64 {
                let it = &items[j];
                if fill == Fill::Balanced {
                    let lean = res(&it.demand) - it.devices as f64 / gpus + noise[j];
                    return if ahead { -lean } else { lean };
                }
                let mut s = it.devices as f64 / gpus * full / gpus;
                for (d, (f, c)) in it.demand.iter().zip(b.free.iter().zip(&cap.free)) {
                    if *c > 0.0 {
                        s += (d / c) * (f / c);
                    }
                }
                s
            };
            let best = left
                .iter()
                .enumerate()
                .filter(|(_, &j)| fits(b, &items[j]))
                .max_by(|(x, &p), (y, &q)| {
                    score(p)
                        .partial_cmp(&score(q))
                        .unwrap_or(std::cmp::Ordering::Equal)
                        .then(y.cmp(x))
                })
                .map(|(k, _)| k);
            match best {
                Some(k) => {
                    let j = left.remove(k);
                    let it = &items[j];
                    for (f, d) in b.free.iter_mut().zip(&it.demand) {
                        *f -= d;
                    }
                    let mut need = it.devices;
                    for f in b.dev.iter_mut() {
                        if need > 0 && *f == MILLI_PER_GPU {
                            *f = 0;
                            need -= 1;
                        }
                    }
                    seq.push(j);
                }
                None => probe = None,
            }
        }
        order = seq;
    }
    for j in order {
        let it = &items[j];
        let mut at = bins.iter().position(|b| fits(b, it));
        if at.is_none() && bins.len() < nodes.len() {
            let b = Bin::new(problem, nodes[bins.len()], ext);
            bins.push(b);
            at = fits(&bins[bins.len() - 1], it).then_some(bins.len() - 1);
        }
        match at {
            Some(k) => {
                let b = &mut bins[k];
                let devs: Vec<u32> = (0..b.dev.len() as u32)
                    .filter(|&d| b.dev[d as usize] == MILLI_PER_GPU)
                    .take(it.devices)
                    .collect();
                for (f, d) in b.free.iter_mut().zip(&it.demand) {
                    *f -= d;
                }
                if it.milli > 0
                    || (it.devices == 1
                        && problem.pending[it.pods[0]].gpu.amount != GpuAmount::Whole(1))
                {
                    // A share device: every pod on the one device.
                    let d = devs[0];
                    for &i in &it.pods {
                        if let GpuAmount::Shared(m) = problem.pending[i].gpu.amount {
                            b.dev[d as usize] -= m;
                        }
                        out.push((
                            i,
                            Binding {
                                node: b.node,
                                gpu_devices: vec![d],
                            },
                        ));
                    }
                } else {
                    for &d in &devs {
                        b.dev[d as usize] = 0;
                    }
                    out.push((
                        it.pods[0],
                        Binding {
                            node: b.node,
                            gpu_devices: devs,
                        },
                    ));
                }
            }
            None => {
                tracing::trace!(devices = it.devices, demand = ?it.demand, pods = it.pods.len(), "unit fits nowhere");
                for &i in &it.pods {
                    let d = demand(i);
                    let amount = problem.pending[i].gpu.amount;
                    for b in bins.iter_mut() {
                        if let Some(devs) = b.take(&d, amount) {
                            out.push((
                                i,
                                Binding {
                                    node: b.node,
                                    gpu_devices: devs,
                                },
                            ));
                            break;
                        }
                    }
                }
            }
        }
    }
    out
}
