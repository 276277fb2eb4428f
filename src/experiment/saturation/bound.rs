//! An upper bound on the GPU allocation that *any* placement of a saturation run's
//! arrivals can reach — online or offline, in any order, dropping whichever pods it
//! likes — so users see how much room is left above a policy's curve.
//!
//! The program counts pods per (node type, pod shape) instead of per node and device:
//! `y[t][s]` pods of GPU shape `s` on the nodes of type `t` (same CPU, memory, pod slots,
//! GPU model and GPU count), allowed only if one empty node of the type fits the shape.
//! It maximises the GPU milli placed subject to
//!
//! - `Σ_t y[t][s] ≤` arrivals of shape `s`;
//! - per type: CPU, memory and pod slots summed over its nodes;
//! - per type and for each dual-feasible function `u` in {identity, `u⁽¹⁾`…`u⁽⁶⁾`}:
//!   `Σ_s y[t][s] · count_s · u(milli_s / 1000) ≤` the type's devices, where
//!   `u⁽ᵏ⁾(x) = x` if `(k+1)·x` is an integer, else `⌊(k+1)·x⌋ / k` (Fekete and
//!   Schepers, 2001). A device's pods have milli summing to at most 1000, so their `u`
//!   values sum to at most 1: each row is valid for every real placement. They are what
//!   makes the bound see stranded milli: with `u⁽⁴⁾`, an 810-milli share counts 1 and a
//!   230-milli share 1/4, so the two cannot share a device even in aggregate.
//!
//! Every real placement gives a feasible `y`, so the optimum of this program is an upper
//! bound; it is loose where node boundaries matter (CPU of one node cannot back GPUs of
//! another of the same type). Both the LP relaxation and the integer program are solved;
//! the integer program's proven (dual) bound is used when HiGHS returns one.
//! CPU-only pods add no GPU milli and only compete for CPU, so they are left out.

use super::{SaturationError, State, Workload};
use crate::model::Node;
use crate::place::milp::program::Program;
use crate::place::milp::solve::{solve, Goal, Settings};
use serde::Serialize;
use std::collections::BTreeMap;

/// How many of the `u⁽ᵏ⁾` functions (k = 1..=K) the program uses.
pub const DFF_FAMILIES: u32 = 6;

/// The bound of one workload.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bound {
    /// Arrived GPU demand, % of the cluster's GPU milli.
    pub demand_percent: f64,
    /// Optimum of the LP relaxation, % of the cluster's GPU milli.
    pub lp_percent: f64,
    /// The integer program's proven upper bound (its optimum when solved to
    /// optimality), % of the cluster's GPU milli; `None` if HiGHS gave no bound.
    pub milp_percent: Option<f64>,
    /// True if HiGHS solved the integer program to optimality.
    pub milp_optimal: bool,
}

impl Bound {
    /// The tightest of the bounds (never above 100% or the demand).
    pub fn percent(&self) -> f64 {
        let b = self
            .milp_percent
            .map_or(self.lp_percent, |m| m.min(self.lp_percent));
        b.min(self.demand_percent).min(100.0)
    }
}

/// `u⁽ᵏ⁾(x)` for `x = milli / 1000` (see the module docs); `k = 0` is the identity.
pub fn dff(k: u32, milli: u32) -> f64 {
    let x = f64::from(milli.min(1000)) / 1000.0;
    if k == 0 {
        return x;
    }
    // (k+1)·x is an integer exactly when (k+1)·milli is a multiple of 1000.
    let scaled = u64::from(k + 1) * u64::from(milli.min(1000));
    if scaled % 1000 == 0 {
        x
    } else {
        (scaled / 1000) as f64 / f64::from(k)
    }
}

/// The bound for the `arrivals` of `workload` (a prefix of its sequence, or all of it)
/// on the empty cluster `nodes`; HiGHS gets `time_limit` seconds for the integer program.
pub fn upper_bound(
    nodes: &[Node],
    workload: &Workload,
    arrivals: &[super::PodSpec],
    time_limit: f64,
) -> Result<Bound, SaturationError> {
    let state = State::new(nodes)?;
    let total = state.total_gpus() as f64 * 1000.0;
    // Node types, in a stable order.
    let mut types: BTreeMap<(u64, u64, u64, Option<u8>, usize), u64> = BTreeMap::new();
    for (n, node) in nodes.iter().enumerate() {
        let key = (
            state.cpu_capacity(n),
            state.mem_free(n),
            node.allocatable.pods,
            state.model(n),
            state.devices(n).len(),
        );
        *types.entry(key).or_default() += 1;
    }
    // GPU pod shapes with their arrival counts.
    let mut shapes: BTreeMap<(u64, u64, u32, u32, u64), u64> = BTreeMap::new();
    let mut demand = 0u64;
    for p in arrivals {
        demand += p.gpu_total();
        if p.count > 0 {
            *shapes
                .entry((p.cpu, p.mem, p.milli, p.count, p.models))
                .or_default() += 1;
        }
    }
    let demand_percent = 100.0 * demand as f64 / total.max(1.0);

    let mut prog = Program::default();
    let mut by_shape: Vec<Vec<(usize, f64)>> = vec![Vec::new(); shapes.len()];
    for (&(cpu_t, mem_t, pods_t, model, gpus), &count_t) in &types {
        let mut cpu = Vec::new();
        let mut mem = Vec::new();
        let mut slots = Vec::new();
        let mut dev: Vec<Vec<(usize, f64)>> = vec![Vec::new(); DFF_FAMILIES as usize + 1];
        for (s, (&(cpu_s, mem_s, milli, count, models), &arrived)) in shapes.iter().enumerate() {
            let fits = cpu_s <= cpu_t
                && mem_s <= mem_t
                && pods_t >= 1
                && count as usize <= gpus
                && model.is_some_and(|m| models & (1u64 << m) != 0);
            if !fits {
                continue;
            }
            let col = prog.col(0.0, arrived as f64, true);
            prog.cols[col].primary = f64::from(milli) * f64::from(count);
            by_shape[s].push((col, 1.0));
            cpu.push((col, cpu_s as f64));
            mem.push((col, mem_s as f64));
            slots.push((col, 1.0));
            for (k, row) in dev.iter_mut().enumerate() {
                let u = dff(k as u32, milli) * f64::from(count);
                if u > 0.0 {
                    row.push((col, u));
                }
            }
        }
        if slots.is_empty() {
            continue;
        }
        let n = count_t as f64;
        prog.le(cpu, n * cpu_t as f64);
        prog.le(mem, n * mem_t as f64);
        prog.le(slots, n * pods_t as f64);
        for row in dev {
            if !row.is_empty() {
                prog.le(row, n * gpus as f64);
            }
        }
    }
    for (s, ((_, _, _, _, _), &arrived)) in shapes.iter().enumerate() {
        let row = std::mem::take(&mut by_shape[s]);
        if !row.is_empty() {
            prog.le(row, arrived as f64);
        }
    }
    if prog.cols.is_empty() {
        return Ok(Bound {
            demand_percent,
            lp_percent: 0.0,
            milp_percent: Some(0.0),
            milp_optimal: true,
        });
    }
    let settings = Settings {
        time_limit,
        rel_gap: 1e-6,
        abs_gap: 0.5,
        threads: 1,
        seed: workload.seed,
    };
    let fail = |e: String| SaturationError::Policy {
        policy: "bound".into(),
        msg: e,
    };
    let mut lp = prog.clone();
    for c in &mut lp.cols {
        c.integer = false;
    }
    let lp_solved = solve(&lp, Goal::Primary, &settings, None).map_err(|e| fail(e.to_string()))?;
    let lp_value = lp_solved
        .values
        .as_deref()
        .map(|v| lp.primary_value(v))
        .ok_or_else(|| fail("HiGHS found no LP solution".into()))?;
    if lp_value >= demand as f64 - 0.5 {
        // Everything arrived fits even the LP's accounting: the demand is the bound.
        return Ok(Bound {
            demand_percent,
            lp_percent: 100.0 * lp_value / total,
            milp_percent: Some(demand_percent),
            milp_optimal: true,
        });
    }
    let milp = solve(&prog, Goal::Primary, &settings, None).map_err(|e| fail(e.to_string()))?;
    let milp_value = if milp.optimal {
        milp.values.as_deref().map(|v| prog.primary_value(v))
    } else {
        None
    };
    let milp_bound = milp_value.or(milp.bound.is_finite().then_some(milp.bound));
    Ok(Bound {
        demand_percent,
        lp_percent: 100.0 * lp_value / total,
        milp_percent: milp_bound.map(|b| 100.0 * b / total),
        milp_optimal: milp.optimal,
    })
}

/// The arrived percentages at which [`per_seed`] bounds a run (the table's columns).
pub const AT: [usize; 6] = [80, 90, 100, 110, 120, 130];

/// One seed's bounds at the arrived percentages of [`AT`] that the run reaches.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeedBound {
    /// The seed.
    pub seed: u64,
    /// `(arrived %, bound)`: the bound for the longest prefix of the arrivals whose GPU
    /// demand is at most that % of the cluster.
    pub at: Vec<(usize, Bound)>,
}

/// The longest prefix of `workload`'s arrivals whose GPU demand stays within `percent`
/// of the cluster's `total_milli`.
pub fn prefix_len(workload: &Workload, total_milli: u64, percent: usize) -> usize {
    let limit = u128::from(total_milli) * percent as u128;
    let mut acc = 0u128;
    for (k, p) in workload.arrivals.iter().enumerate() {
        acc += u128::from(p.gpu_total()) * 100;
        if acc > limit {
            return k;
        }
    }
    workload.arrivals.len()
}

/// The bounds of every seed's workload (built as [`Workload::build`] does) at each
/// percentage of [`AT`] not beyond `tune`, in parallel, ascending seed.
pub fn per_seed(
    nodes: &[Node],
    pods: &[crate::model::Pod],
    seeds: &[u64],
    tune: f64,
    time_limit: f64,
) -> Result<Vec<SeedBound>, SaturationError> {
    per_seed_at(nodes, pods, seeds, tune, time_limit, &AT)
}

/// [`per_seed`] at the arrived percentages `at` (those not beyond `tune`) instead of
/// [`AT`].
pub fn per_seed_at(
    nodes: &[Node],
    pods: &[crate::model::Pod],
    seeds: &[u64],
    tune: f64,
    time_limit: f64,
    at: &[usize],
) -> Result<Vec<SeedBound>, SaturationError> {
    use rayon::prelude::*;
    let mut seeds = seeds.to_vec();
    seeds.sort_unstable();
    seeds.dedup();
    let total = State::new(nodes)?.total_gpus() * 1000;
    let points: Vec<usize> = at
        .iter()
        .copied()
        .filter(|&p| p as f64 <= tune * 100.0 + 1e-9)
        .collect();
    let workloads: Vec<Workload> = seeds
        .par_iter()
        .map(|&seed| Workload::build(nodes, pods, seed, tune))
        .collect::<Result<_, _>>()?;
    let jobs: Vec<(usize, usize)> = (0..seeds.len())
        .flat_map(|s| points.iter().map(move |&p| (s, p)))
        .collect();
    let bounds: Vec<Bound> = jobs
        .par_iter()
        .map(|&(s, p)| {
            let w = &workloads[s];
            upper_bound(nodes, w, &w.arrivals[..prefix_len(w, total, p)], time_limit)
        })
        .collect::<Result<_, _>>()?;
    Ok(seeds
        .iter()
        .enumerate()
        .map(|(s, &seed)| SeedBound {
            seed,
            at: jobs
                .iter()
                .zip(&bounds)
                .filter(|((js, _), _)| *js == s)
                .map(|((_, p), b)| (*p, *b))
                .collect(),
        })
        .collect())
}
