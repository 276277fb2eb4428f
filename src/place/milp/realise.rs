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
        free.push(c.nodes()[node].allocatable.pods.saturating_sub(c.used(node).pods) as f64);
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
        .map(|(ty, pods)| pack(problem, &ext, &ty.nodes, pods))
        .collect();
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
