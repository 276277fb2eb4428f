//! The partitioned path for very large clusters: split the nodes and the pending pods
//! into parts that each look like a small copy of the whole, solve every part with the
//! ordinary MILP in parallel (rayon), then join the parts' answers on the whole cluster
//! and let the greedy policy place what is left.
//!
//! - **Parts.** With more than [`PARTITION_MIN_NODES`] nodes, `P = ceil(nodes /
//!   PART_NODES)` parts. Nodes are sorted by shape (GPU count and model, CPU, memory,
//!   zone, name) and dealt round-robin, so every part gets the same mix of node shapes
//!   and zones; a node's bound pods go with it. Pending pods are sorted by shape
//!   (priority, GPU, CPU, memory, pending index) and dealt the same way, a gang as one
//!   unit (all its members in one part).
//! - **Solve.** Each part is an ordinary [`Problem`] solved by a [`MilpPlacer`] with the
//!   same options, one HiGHS thread, and a time limit sized so that all parts fit in
//!   [`SOLVE_SHARE`] of the caller's limit on the rayon pool's threads.
//! - **Join.** The parts' bindings are replayed on the whole cluster in pending order,
//!   each checked with the full kube filters ([`FilterContext`]) — constraints that cross
//!   parts (zone-level anti-affinity or spread between pods of different parts) are
//!   caught here and the pod goes to the leftovers; gangs that lose members are undone
//!   whole. The leftovers (and every pod its part did not place) are then placed by the
//!   objective's greedy policy on the whole cluster (gangs all-or-nothing).
//!
//! What this gives up: a pod is only optimised within its part (a pod that fits only in
//! another part's nodes is placed by the greedy pass, not optimally), the per-part
//! bounds do not add up to a bound for the whole (so the result carries no proven
//! bound; `plimsoll bench` reports the gap to an LP bound of the whole problem), and the
//! full-cluster greedy warm starts of the exact path are not run (they alone would take
//! longer than the time limit at this size).

use super::tail::{break_short_gangs, place_greedy};
use super::{MilpOptions, MilpPlacer, Objective};
use crate::model::{Binding, Cluster, GpuAmount, NodeId, Pod, Problem, MILLI_PER_GPU};
use crate::place::filter::FilterContext;
use crate::place::online::OnlineKind;
use crate::place::{Outcome, PlaceError, Placer, SolveStats};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::time::Instant;

/// Clusters with more nodes than this take the partitioned path.
pub const PARTITION_MIN_NODES: usize = 3_000;

/// Target nodes per part.
pub const PART_NODES: usize = 1_500;

/// Share of the time limit given to solving the parts (the rest is for joining and the
/// greedy pass over the leftovers).
const SOLVE_SHARE: f64 = 0.6;

/// Zone label used in the node shape key.
const ZONE: &str = "topology.kubernetes.io/zone";

/// Node ids per part.
fn deal_nodes(cluster: &Cluster, parts: usize) -> Vec<Vec<NodeId>> {
    let nodes = cluster.nodes();
    let mut order: Vec<NodeId> = (0..nodes.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |i: NodeId| {
            let n = &nodes[i];
            (
                n.gpu_count(),
                n.gpu_model().map(str::to_string),
                n.allocatable.cpu_milli,
                n.allocatable.memory_bytes,
                n.labels.get(ZONE).cloned(),
            )
        };
        key(a)
            .cmp(&key(b))
            .then_with(|| nodes[a].name.cmp(&nodes[b].name))
    });
    let mut out = vec![Vec::new(); parts];
    for (k, id) in order.into_iter().enumerate() {
        out[k % parts].push(id);
    }
    for p in &mut out {
        p.sort_unstable();
    }
    out
}

/// Pending indices per part; a gang's members stay together.
fn deal_pods(pending: &[Pod], parts: usize) -> Vec<Vec<usize>> {
    let mut units: Vec<Vec<usize>> = Vec::new();
    let mut gang_unit: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (i, p) in pending.iter().enumerate() {
        match &p.gang {
            Some(g) => {
                let next = units.len();
                let u = *gang_unit
                    .entry((p.namespace.as_str(), g.name.as_str()))
                    .or_insert(next);
                if u == next {
                    units.push(Vec::new());
                }
                units[u].push(i);
            }
            None => units.push(vec![i]),
        }
    }
    let key = |u: &Vec<usize>| {
        let p = &pending[u[0]];
        (
            std::cmp::Reverse(p.priority),
            match p.gpu.amount {
                GpuAmount::None => 0,
                GpuAmount::Shared(m) => m,
                GpuAmount::Whole(g) => g * MILLI_PER_GPU,
            },
            p.requests.cpu_milli,
            p.requests.memory_bytes,
            u[0],
        )
    };
    units.sort_by_key(key);
    let mut out = vec![Vec::new(); parts];
    for (k, u) in units.into_iter().enumerate() {
        out[k % parts].extend(u);
    }
    for p in &mut out {
        p.sort_unstable();
    }
    out
}

/// The sub-problem of one part: its nodes (renumbered in ascending order) with their
/// bound pods, and its pending pods.
fn sub_problem(problem: &Problem, nodes: &[NodeId], pods: &[usize]) -> Result<Problem, String> {
    let cluster = &problem.cluster;
    let mut sub = Cluster::new(nodes.iter().map(|&n| cluster.nodes()[n].clone()).collect())
        .map_err(|e| e.to_string())?;
    let local: BTreeMap<NodeId, NodeId> = nodes.iter().enumerate().map(|(l, &g)| (g, l)).collect();
    for (_, pod, b) in cluster.bound_pods() {
        if let Some(&l) = local.get(&b.node) {
            sub.bind(pod.clone(), l, Some(b.gpu_devices.clone()))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(Problem {
        cluster: sub,
        pending: pods.iter().map(|&i| problem.pending[i].clone()).collect(),
    })
}

/// The greedy policy used for the leftovers.
fn greedy_kind(objective: Objective) -> OnlineKind {
    match objective {
        Objective::Pack => OnlineKind::BestFit,
        Objective::Balance => OnlineKind::LeastAllocated,
        Objective::Fragmentation => OnlineKind::GpuPacking,
    }
}

/// Replays `proposed` on the whole cluster in pending order, keeping what passes the
/// kube filters; a gang that ends short is dropped whole and the replay repeated.
/// Returns the accepted placement and the cluster holding it.
fn join(problem: &Problem, proposed: &[Option<Binding>]) -> (Vec<Option<Binding>>, Cluster) {
    let mut proposed = proposed.to_vec();
    loop {
        let mut cluster = problem.cluster.clone();
        let mut accepted: Vec<Option<Binding>> = vec![None; proposed.len()];
        for (i, b) in proposed.iter().enumerate() {
            let Some(b) = b else { continue };
            let pod = &problem.pending[i];
            if FilterContext::new(&cluster, pod).check(b.node).is_ok()
                && cluster
                    .bind(pod.clone(), b.node, Some(b.gpu_devices.clone()))
                    .is_ok()
            {
                accepted[i] = Some(b.clone());
            }
        }
        if break_short_gangs(problem, &mut accepted).is_empty() {
            return (accepted, cluster);
        }
        // Some gang lost members: replay without the dropped ones so that no pod relies
        // on a gang member that is not there (pod affinity, spread counts).
        proposed = accepted;
    }
}

impl MilpPlacer {
    /// True when `problem` takes the partitioned path.
    pub(super) fn use_partition(&self, problem: &Problem) -> bool {
        self.plugins.is_empty() && problem.cluster.nodes().len() > PARTITION_MIN_NODES
    }

    /// The partitioned path (see the module docs).
    pub(super) fn place_partitioned(&self, problem: &Problem) -> Result<Outcome, PlaceError> {
        let start = Instant::now();
        let n = problem.cluster.nodes().len();
        let parts = n.div_ceil(PART_NODES).max(1);
        let node_parts = deal_nodes(&problem.cluster, parts);
        let pod_parts = deal_pods(&problem.pending, parts);
        let workers = rayon::current_num_threads().clamp(1, parts);
        let rounds = parts.div_ceil(workers) as f64;
        let part_limit = (self.opts.time_limit_seconds * SOLVE_SHARE / rounds).max(0.05);
        let opts = MilpOptions {
            time_limit_seconds: part_limit,
            threads: 1,
            ..self.opts.clone()
        };
        tracing::debug!(parts, workers, part_limit, "partitioned MILP");
        let solved: Vec<Result<(Vec<Option<Binding>>, SolveStats), String>> = node_parts
            .par_iter()
            .zip(&pod_parts)
            .map(|(nodes, pods)| {
                let sub = sub_problem(problem, nodes, pods)?;
                let out = MilpPlacer::new(opts.clone())
                    .map_err(|e| e.to_string())?
                    .place(&sub)
                    .map_err(|e| e.to_string())?;
                let global = out
                    .placement
                    .into_iter()
                    .map(|b| {
                        b.map(|b| Binding {
                            node: nodes[b.node],
                            gpu_devices: b.gpu_devices,
                        })
                    })
                    .collect();
                Ok((global, out.stats))
            })
            .collect();
        let mut proposed: Vec<Option<Binding>> = vec![None; problem.pending.len()];
        let mut fell_back = 0;
        for (pods, r) in pod_parts.iter().zip(solved) {
            let (placement, stats) = r.map_err(PlaceError::Solver)?;
            fell_back += usize::from(stats.fell_back);
            for (&i, b) in pods.iter().zip(placement) {
                proposed[i] = b;
            }
        }
        let parts_s = start.elapsed().as_secs_f64();
        let (mut placement, cluster) = join(problem, &proposed);
        let rejected = proposed
            .iter()
            .zip(&placement)
            .filter(|(p, a)| p.is_some() && a.is_none())
            .count();
        let left: Vec<usize> = (0..placement.len())
            .filter(|&i| placement[i].is_none())
            .collect();
        place_greedy(
            problem,
            &left,
            greedy_kind(self.opts.objective),
            self.opts.seed,
            &self.plugins,
            cluster,
            &mut placement,
        )
        .map_err(PlaceError::Solver)?;
        let weight = super::weighted_placed(problem, &placement);
        tracing::debug!(
            parts_s,
            rejected_at_join = rejected,
            leftovers = left.len(),
            parts_fell_back = fell_back,
            weight,
            s = start.elapsed().as_secs_f64(),
            "partitioned MILP joined"
        );
        Ok(Outcome {
            policy: self.name().to_string(),
            placement,
            stats: SolveStats {
                objective: Some(weight),
                solve_seconds: start.elapsed().as_secs_f64(),
                ..Default::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::synthetic;
    use crate::place::validate::validate;

    #[test]
    fn parts_cover_every_node_and_pod_once_and_keep_gangs_whole() {
        let (nodes, pods) = synthetic::scaled(300, 7).unwrap();
        let problem = Problem::from_parts(nodes, pods).unwrap();
        let np = deal_nodes(&problem.cluster, 4);
        let mut all: Vec<NodeId> = np.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..problem.cluster.nodes().len()).collect::<Vec<_>>());
        let sizes: Vec<usize> = np.iter().map(Vec::len).collect();
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        let pp = deal_pods(&problem.pending, 4);
        let mut all: Vec<usize> = pp.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..problem.pending.len()).collect::<Vec<_>>());
        let mut gang_part: BTreeMap<(String, String), usize> = BTreeMap::new();
        for (k, part) in pp.iter().enumerate() {
            for &i in part {
                let p = &problem.pending[i];
                if let Some(g) = &p.gang {
                    let e = *gang_part
                        .entry((p.namespace.clone(), g.name.clone()))
                        .or_insert(k);
                    assert_eq!(e, k, "gang {} split over parts", g.name);
                }
            }
        }
        assert!(gang_part.len() > 1, "the instance has gangs");
    }

    #[test]
    fn partitioned_placement_is_valid_and_close_to_the_exact_path() {
        let (nodes, pods) = synthetic::scaled(400, 3).unwrap();
        let problem = Problem::from_parts(nodes, pods).unwrap();
        let milp = MilpPlacer::new(MilpOptions {
            time_limit_seconds: 4.0,
            ..Default::default()
        })
        .unwrap();
        let parts = 3;
        let out = {
            // Force the partitioned path on a small instance with 3 parts.
            let node_parts = deal_nodes(&problem.cluster, parts);
            let pod_parts = deal_pods(&problem.pending, parts);
            let mut proposed = vec![None; problem.pending.len()];
            for (nodes, pods) in node_parts.iter().zip(&pod_parts) {
                let sub = sub_problem(&problem, nodes, pods).unwrap();
                let o = milp.place(&sub).unwrap();
                for (&i, b) in pods.iter().zip(o.placement) {
                    proposed[i] = b.map(|b| Binding {
                        node: nodes[b.node],
                        gpu_devices: b.gpu_devices,
                    });
                }
            }
            let (mut placement, cluster) = join(&problem, &proposed);
            let left: Vec<usize> = (0..placement.len())
                .filter(|&i| placement[i].is_none())
                .collect();
            place_greedy(
                &problem,
                &left,
                OnlineKind::BestFit,
                42,
                &Default::default(),
                cluster,
                &mut placement,
            )
            .unwrap();
            placement
        };
        validate(&problem, &out).expect("valid placement");
        let best_fit = crate::place::online::OnlinePolicy::new(OnlineKind::BestFit, 42)
            .place(&problem)
            .unwrap();
        let w = super::super::weighted_placed(&problem, &out);
        let wb = super::super::weighted_placed(&problem, &best_fit.placement);
        // The parts are solved optimally-ish and the leftovers greedily: not far below
        // the whole-cluster greedy (in practice above it).
        assert!(w >= 0.97 * wb, "partitioned {w} vs best-fit {wb}");
    }
}
