//! Preemption: kube-scheduler's `PostFilter` (DefaultPreemption) for one pending pod,
//! with the victims on each node chosen by a small MILP (HiGHS through good_lp).
//!
//! This module owns the choice of *which* pods to evict and *where* the preemptor then
//! goes; it never changes the cluster it is given (the caller evicts, e.g. with
//! [`Preemption::apply`], and binds the pod).
//!
//! # Rules
//! - **Victims** are bound pods on the chosen node whose priority is strictly lower than
//!   the preemptor's and that belong to no gang. Gang members are never victims: evicting
//!   one member would break its whole gang, which kube leaves to the gang scheduler.
//! - **Candidate nodes** are those where the pod fails the filters now, none of the
//!   failing reasons is [`Reason::is_unresolvable`] (cordon, untolerated taints, node
//!   affinity, GPU model, …), and the pod passes once *all* the node's possible victims
//!   are removed (checked on a scratch clone of the cluster).
//! - **Per node**, binaries `x_v` (evict `v`) with the node's capacity rows: for every
//!   resource the pod requests (cpu, memory, ephemeral storage, extended resources),
//!   `Σ x_v·request_v ≥ used + request − allocatable`, and the same for the pod count.
//!   GPUs are modelled per device and exactly: a request for `k` whole devices needs `k`
//!   devices that are free after the evictions (a device counts only if all its holders
//!   are evicted, `f_d ≤ x_v`); a share of `m` milli needs one device whose free milli
//!   plus its evicted holders' milli reach `m`. Victims that would keep the pod off the
//!   node whatever else goes are forced out: those holding a host port it needs, and
//!   those paired with it by a required anti-affinity term (its own or theirs) whose
//!   topology key the node carries. The goal is lexicographic, in three solves: fewest victims,
//!   then the lowest highest victim priority, then the lowest sum of victim priorities.
//! - Every MILP answer is **checked with the filters** on a scratch cluster without the
//!   victims. If the pod still does not pass (inter-pod affinity, spread, anti-affinity),
//!   a no-good cut excludes exactly that victim set and the lexicographic solve runs
//!   again, at most [`MAX_CUTS_PER_NODE`] times; then the node is given up.
//! - **Across nodes** the smallest [`PreemptionKey`] wins: fewest victims, then the
//!   lowest highest victim priority, then the lowest sum of victim priorities, then the
//!   lowest [`NodeId`] — kube's `pickOneNodeForPreemption` in spirit, and deterministic.
//! - **A pod that fits now** gets `Some` preemption with no victims on the lowest-id node
//!   where it passes the filters (the smallest key of all); callers normally do not ask.
//! - The **deadline** is checked before each candidate node and bounds each HiGHS solve;
//!   once it has passed, the best preemption found so far is returned.
//!
//! Not modelled: PodDisruptionBudgets, and nominated pods of other preemptors.

use super::clock::Deadline;
use super::filter::FilterContext;
#[cfg(doc)]
use super::filter::Reason;
use super::PlaceError;
use crate::model::{
    Binding, Cluster, ClusterError, GpuAmount, Node, NodeId, Pod, PodId, MILLI_PER_GPU,
};
use good_lp::solvers::highs::highs;
use good_lp::{
    constraint, variable, Constraint, Expression, ProblemVariables, ResolutionError, Solution,
    SolverModel, Variable,
};

/// The most no-good cuts (victim sets that passed the capacity rows but not the filters)
/// tried on one node before it is given up.
pub const MAX_CUTS_PER_NODE: usize = 16;

/// Where the preemptor goes and which pods must be evicted first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preemption {
    /// The node the preemptor is meant for.
    pub node: NodeId,
    /// The pods to evict from `node`, ascending.
    pub victims: Vec<PodId>,
}

impl Preemption {
    /// The preemption's place in the order of preemptions, reading the victims'
    /// priorities from `cluster` (the one it was chosen on).
    pub fn key(&self, cluster: &Cluster) -> Result<PreemptionKey, ClusterError> {
        let mut priorities = Vec::with_capacity(self.victims.len());
        for &v in &self.victims {
            let (p, _) = cluster.pod(v).ok_or(ClusterError::UnknownPod(v))?;
            priorities.push(p.priority);
        }
        Ok(PreemptionKey::new(self.node, priorities))
    }

    /// Evicts the victims from `cluster` and returns them as pending pods (ascending id
    /// order). Nothing is evicted if a victim is not bound there.
    pub fn apply(&self, cluster: &mut Cluster) -> Result<Vec<Pod>, ClusterError> {
        if let Some(&gone) = self.victims.iter().find(|&&v| cluster.pod(v).is_none()) {
            return Err(ClusterError::UnknownPod(gone));
        }
        self.victims.iter().map(|&v| cluster.evict(v)).collect()
    }
}

/// The order of preemptions (smaller is better): fewest victims, then the lowest
/// highest victim priority (`None` without victims, below every priority), then the
/// lowest sum of victim priorities, then the lowest node id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PreemptionKey {
    /// Number of victims.
    pub victims: usize,
    /// The highest priority among the victims.
    pub highest_priority: Option<i32>,
    /// The sum of the victims' priorities.
    pub priority_sum: i64,
    /// The node.
    pub node: NodeId,
}

impl PreemptionKey {
    /// The key of evicting pods with these priorities from `node`.
    pub fn new(node: NodeId, priorities: impl IntoIterator<Item = i32>) -> Self {
        let mut key = PreemptionKey {
            victims: 0,
            highest_priority: None,
            priority_sum: 0,
            node,
        };
        for p in priorities {
            key.victims += 1;
            key.highest_priority = key.highest_priority.max(Some(p));
            key.priority_sum += i64::from(p);
        }
        key
    }
}

/// Chooses the node and the fewest, lowest-priority victims whose eviction lets `pod`
/// pass the filters (see the module docs for the rules). `Ok(None)` if no node works
/// (or the deadline passed before one was found); `Some` with no victims if the pod
/// already fits somewhere. Errors only when HiGHS fails outright.
pub fn choose_victims(
    cluster: &Cluster,
    pod: &Pod,
    deadline: &Deadline,
) -> Result<Option<Preemption>, PlaceError> {
    let ctx = FilterContext::new(cluster, pod);
    let mut candidates = Vec::new();
    for id in cluster.node_ids() {
        match ctx.check(id) {
            Ok(()) => {
                return Ok(Some(Preemption {
                    node: id,
                    victims: Vec::new(),
                }))
            }
            Err(reasons) if reasons.iter().any(|r| r.is_unresolvable()) => {}
            Err(_) => candidates.push(id),
        }
    }
    let mut best: Option<(PreemptionKey, Preemption)> = None;
    for node in candidates {
        if deadline.passed() {
            tracing::debug!(pod = %pod.key(), "preemption deadline passed; best so far");
            break;
        }
        let Some(program) = NodeProgram::build(cluster, pod, node)? else {
            continue;
        };
        let cap = best.as_ref().map(|(k, _)| k.victims);
        if let Some(p) = program.best_victims(cluster, pod, cap, deadline)? {
            let key = p.key(cluster)?;
            if best.as_ref().is_none_or(|(b, _)| key < *b) {
                best = Some((key, p));
            }
        }
    }
    Ok(best.map(|(_, p)| p))
}

/// Whether `victim` may be evicted for `pod`.
fn may_evict(pod: &Pod, victim: &Pod) -> bool {
    victim.priority < pod.priority && victim.gang.is_none()
}

/// Whether `victim`, bound to `node`, keeps `pod` off the node as long as it stays: it
/// holds a host port the pod needs, or a required anti-affinity term (the pod's or the
/// victim's) pairs them and the node carries the term's topology key (so both are in
/// the same domain).
fn must_go(pod: &Pod, victim: &Pod, node: &Node) -> bool {
    let on_node = |key: &str| node.labels.contains_key(key);
    pod.host_ports
        .iter()
        .any(|h| victim.host_ports.iter().any(|o| o.conflicts(h)))
        || pod.pod_anti_affinity.iter().any(|t| {
            on_node(&t.topology_key) && t.selects(&pod.namespace, &victim.namespace, &victim.labels)
        })
        || victim.pod_anti_affinity.iter().any(|t| {
            on_node(&t.topology_key) && t.selects(&victim.namespace, &pod.namespace, &pod.labels)
        })
}

/// `pod` passes the filters on `node` once `victims` are unbound from a copy of
/// `cluster`.
fn passes_without(
    cluster: &Cluster,
    pod: &Pod,
    node: NodeId,
    victims: &[PodId],
) -> Result<bool, ClusterError> {
    let mut scratch = cluster.clone();
    for &v in victims {
        scratch.unbind(v)?;
    }
    Ok(FilterContext::new(&scratch, pod).check(node).is_ok())
}

/// `Σ coef_v·x_v ≥ need` over the possible victims (by index).
#[derive(Debug, Clone)]
struct Cover {
    coef: Vec<(usize, f64)>,
    need: f64,
}

/// What the whole-device or shared GPU request needs.
#[derive(Debug, Clone)]
enum GpuNeed {
    /// Nothing (no request, or already free).
    None,
    /// `count` more devices fully free, choosing among `devices` (each listing the
    /// victim indices that must all go for it to be free).
    Whole {
        count: usize,
        devices: Vec<Vec<usize>>,
    },
    /// One device with `(missing milli, [(victim index, milli it frees)])`.
    Shared(Vec<(f64, Vec<(usize, f64)>)>),
}

/// The victim-selection program of one candidate node.
#[derive(Debug)]
struct NodeProgram {
    node: NodeId,
    /// Possible victims, ascending id, with their priorities.
    victims: Vec<(PodId, i32)>,
    /// Victims that must go (host port conflicts).
    forced: Vec<usize>,
    covers: Vec<Cover>,
    gpu: GpuNeed,
}

/// One of the three lexicographic solves.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// Fewest victims, at most the cap.
    Count(Option<usize>),
    /// Exactly this many victims, lowest highest priority rank.
    HighestRank(usize),
    /// This many victims, none ranked above the rank, lowest priority sum.
    Sum(usize, usize),
}

impl NodeProgram {
    /// The program of `node`, or `None` if the node is no candidate (no possible victim,
    /// or the pod fails even with all of them gone).
    fn build(cluster: &Cluster, pod: &Pod, node: NodeId) -> Result<Option<Self>, PlaceError> {
        let mut victims: Vec<(PodId, &Pod, &Binding)> = cluster
            .pods_on(node)
            .iter()
            .filter_map(|&id| cluster.pod(id).map(|(p, b)| (id, p, b)))
            .filter(|(_, p, _)| may_evict(pod, p))
            .collect();
        victims.sort_by_key(|&(id, _, _)| id);
        let ids: Vec<PodId> = victims.iter().map(|&(id, _, _)| id).collect();
        if ids.is_empty() || !passes_without(cluster, pod, node, &ids)? {
            return Ok(None);
        }
        let n = &cluster[node];
        let used = cluster.used(node);
        let mut covers = Vec::new();
        let mut cover = |req: u64, used: u64, alloc: u64, of: &dyn Fn(&Pod) -> u64| {
            let need = i128::from(used) + i128::from(req) - i128::from(alloc);
            if req == 0 || need <= 0 {
                return;
            }
            let scale = need as f64;
            let coef = victims
                .iter()
                .enumerate()
                .filter(|(_, (_, p, _))| of(p) > 0)
                .map(|(i, (_, p, _))| (i, of(p) as f64 / scale))
                .collect();
            covers.push(Cover { coef, need: 1.0 });
        };
        let r = &pod.requests;
        let a = &n.allocatable;
        cover(1, used.pods, a.pods, &|_| 1);
        cover(r.cpu_milli, used.cpu_milli, a.cpu_milli, &|p| {
            p.requests.cpu_milli
        });
        cover(r.memory_bytes, used.memory_bytes, a.memory_bytes, &|p| {
            p.requests.memory_bytes
        });
        cover(
            r.ephemeral_storage_bytes,
            used.ephemeral_storage_bytes,
            a.ephemeral_storage_bytes,
            &|p| p.requests.ephemeral_storage_bytes,
        );
        for (name, &req) in &r.extended {
            let at = |m: &std::collections::BTreeMap<String, u64>| m.get(name).copied();
            let of = |p: &Pod| at(&p.requests.extended).unwrap_or(0);
            cover(
                req,
                at(&used.extended).unwrap_or(0),
                at(&a.extended).unwrap_or(0),
                &of,
            );
        }
        let forced = victims
            .iter()
            .enumerate()
            .filter(|(_, (_, p, _))| must_go(pod, p, n))
            .map(|(i, _)| i)
            .collect();
        let gpu = gpu_need(cluster, pod, node, &victims);
        Ok(Some(NodeProgram {
            node,
            victims: victims.iter().map(|&(id, p, _)| (id, p.priority)).collect(),
            forced,
            covers,
            gpu,
        }))
    }

    /// The lexicographically best victim set that passes the filters, at most `cap`
    /// victims, trying up to [`MAX_CUTS_PER_NODE`] no-good cuts.
    fn best_victims(
        &self,
        cluster: &Cluster,
        pod: &Pod,
        cap: Option<usize>,
        deadline: &Deadline,
    ) -> Result<Option<Preemption>, PlaceError> {
        let mut cuts: Vec<Vec<bool>> = Vec::new();
        while cuts.len() <= MAX_CUTS_PER_NODE {
            let Some(chosen) = self.lexicographic(cap, &cuts, deadline)? else {
                return Ok(None);
            };
            let victims: Vec<PodId> = self
                .victims
                .iter()
                .zip(&chosen)
                .filter(|(_, &x)| x)
                .map(|(&(id, _), _)| id)
                .collect();
            if passes_without(cluster, pod, self.node, &victims)? {
                return Ok(Some(Preemption {
                    node: self.node,
                    victims,
                }));
            }
            tracing::debug!(node = %self.node, ?victims, "victim set fails the filters; cut");
            cuts.push(chosen);
        }
        Ok(None)
    }

    /// The three solves: fewest victims, lowest highest priority, lowest priority sum.
    /// Each later solve falls back to the earlier answer if it finds none in time.
    fn lexicographic(
        &self,
        cap: Option<usize>,
        cuts: &[Vec<bool>],
        deadline: &Deadline,
    ) -> Result<Option<Vec<bool>>, PlaceError> {
        let Some(mut x) = self.solve(Stage::Count(cap), cuts, deadline)? else {
            return Ok(None);
        };
        let count = x.iter().filter(|&&v| v).count();
        if count == 0 {
            return Ok(Some(x));
        }
        if let Some(y) = self.solve(Stage::HighestRank(count), cuts, deadline)? {
            x = y;
        }
        let rank = self.highest_rank(&x);
        if let Some(y) = self.solve(Stage::Sum(count, rank), cuts, deadline)? {
            x = y;
        }
        Ok(Some(x))
    }

    /// The rank of each victim's priority among the distinct victim priorities (0 is the
    /// lowest).
    fn ranks(&self) -> Vec<usize> {
        let mut distinct: Vec<i32> = self.victims.iter().map(|&(_, p)| p).collect();
        distinct.sort_unstable();
        distinct.dedup();
        self.victims
            .iter()
            .map(|&(_, p)| distinct.partition_point(|&d| d < p))
            .collect()
    }

    /// The highest rank among the chosen victims.
    fn highest_rank(&self, x: &[bool]) -> usize {
        self.ranks()
            .into_iter()
            .zip(x)
            .filter(|(_, &c)| c)
            .map(|(r, _)| r)
            .max()
            .unwrap_or(0)
    }

    /// One solve; `None` if infeasible or no solution in time.
    fn solve(
        &self,
        stage: Stage,
        cuts: &[Vec<bool>],
        deadline: &Deadline,
    ) -> Result<Option<Vec<bool>>, PlaceError> {
        let seconds = deadline.remaining_seconds().min(1e6);
        if seconds <= 0.0 {
            return Ok(None);
        }
        let mut pv = ProblemVariables::new();
        let x: Vec<Variable> = self
            .victims
            .iter()
            .map(|_| pv.add(variable().binary()))
            .collect();
        let count: Expression = x.iter().sum();
        let mut rows: Vec<Constraint> = self.rows(&mut pv, &x);
        for cut in cuts {
            // Excludes exactly this set: Σ_{in} x − Σ_{out} x ≤ |in| − 1.
            let mut e = Expression::from(0.0);
            for (&v, &chosen) in x.iter().zip(cut) {
                e += if chosen { 1.0 } else { -1.0 } * v;
            }
            let inside = cut.iter().filter(|&&c| c).count() as f64;
            rows.push(constraint!(e <= inside - 1.0));
        }
        let ranks = self.ranks();
        let objective: Expression = match stage {
            Stage::Count(cap) => {
                if let Some(cap) = cap {
                    rows.push(constraint!(count.clone() <= cap as f64));
                }
                count
            }
            Stage::HighestRank(n) => {
                rows.push(constraint!(count == n as f64));
                let z = pv.add(variable().min(0.0));
                for (&v, &r) in x.iter().zip(&ranks) {
                    rows.push(constraint!(z >= r as f64 * v));
                }
                z.into()
            }
            Stage::Sum(n, rank) => {
                rows.push(constraint!(count == n as f64));
                let lowest = self.victims.iter().map(|&(_, p)| p).min().unwrap_or(0);
                let mut sum = Expression::from(0.0);
                for ((&v, &r), &(_, p)) in x.iter().zip(&ranks).zip(&self.victims) {
                    if r > rank {
                        rows.push(constraint!(v == 0.0));
                    }
                    sum += (i64::from(p) - i64::from(lowest)) as f64 * v;
                }
                sum
            }
        };
        let mut model = pv
            .minimise(objective)
            .using(highs)
            .set_time_limit(seconds)
            .set_option("output_flag", false)
            .set_option("log_to_console", false)
            .set_option("mip_rel_gap", 0.0);
        for r in rows {
            model.add_constraint(r);
        }
        // good_lp unwraps some HiGHS errors; a panic there must not take the caller down.
        let solved = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.solve()))
            .map_err(|_| PlaceError::Solver("HiGHS panicked inside good_lp".into()))?;
        match solved {
            Ok(sol) => Ok(Some(x.iter().map(|&v| sol.value(v) > 0.5).collect())),
            Err(ResolutionError::Infeasible) => Ok(None),
            Err(ResolutionError::Other("NoSolutionFound")) => Ok(None),
            Err(e) => Err(PlaceError::Solver(format!(
                "preemption on {}: {e}",
                self.node
            ))),
        }
    }

    /// The capacity, GPU and host-port rows over `x`.
    fn rows(&self, pv: &mut ProblemVariables, x: &[Variable]) -> Vec<Constraint> {
        let mut rows = Vec::new();
        for &i in &self.forced {
            rows.push(constraint!(x[i] == 1.0));
        }
        for c in &self.covers {
            let e: Expression = c.coef.iter().map(|&(i, a)| a * x[i]).sum();
            rows.push(constraint!(e >= c.need));
        }
        match &self.gpu {
            GpuNeed::None => {}
            GpuNeed::Whole { count, devices } => {
                let mut free = Expression::from(0.0);
                for holders in devices {
                    let f = pv.add(variable().binary());
                    for &i in holders {
                        rows.push(constraint!(f <= x[i]));
                    }
                    free += f;
                }
                rows.push(constraint!(free >= *count as f64));
            }
            GpuNeed::Shared(devices) => {
                let mut some = Expression::from(0.0);
                for (missing, holders) in devices {
                    let g = pv.add(variable().binary());
                    let freed: Expression = holders.iter().map(|&(i, m)| m * x[i]).sum();
                    rows.push(constraint!(freed >= *missing * g));
                    some += g;
                }
                rows.push(constraint!(some >= 1.0));
            }
        }
        rows
    }
}

/// What `pod`'s GPU request needs of the possible `victims` on `node`: exact per-device
/// conditions (free milli now plus what the evicted holders free).
fn gpu_need(
    cluster: &Cluster,
    pod: &Pod,
    node: NodeId,
    victims: &[(PodId, &Pod, &Binding)],
) -> GpuNeed {
    let free = cluster.gpu_free(node);
    let held = |p: &Pod| match p.gpu.amount {
        GpuAmount::None => 0,
        GpuAmount::Shared(m) => m,
        GpuAmount::Whole(_) => MILLI_PER_GPU,
    };
    // Per device: the milli freed if every possible victim holding it goes, and which.
    let mut holders: Vec<Vec<(usize, u32)>> = vec![Vec::new(); free.len()];
    for (i, (_, p, b)) in victims.iter().enumerate() {
        for &d in &b.gpu_devices {
            if let Some(h) = holders.get_mut(d as usize) {
                h.push((i, held(p)));
            }
        }
    }
    match pod.gpu.amount {
        GpuAmount::None => GpuNeed::None,
        GpuAmount::Whole(k) => {
            let already = free.iter().filter(|&&f| f == MILLI_PER_GPU).count();
            let needed = (k as usize).saturating_sub(already);
            if needed == 0 {
                return GpuNeed::None;
            }
            let devices = free
                .iter()
                .zip(&holders)
                .filter(|&(&f, h)| {
                    f < MILLI_PER_GPU && f + h.iter().map(|&(_, m)| m).sum::<u32>() >= MILLI_PER_GPU
                })
                .map(|(_, h)| h.iter().map(|&(i, _)| i).collect())
                .collect();
            GpuNeed::Whole {
                count: needed,
                devices,
            }
        }
        GpuAmount::Shared(m) => {
            if free.iter().any(|&f| f >= m) {
                return GpuNeed::None;
            }
            let devices = free
                .iter()
                .zip(&holders)
                .filter(|&(&f, h)| f + h.iter().map(|&(_, m)| m).sum::<u32>() >= m)
                .map(|(&f, h)| {
                    let missing = f64::from(m - f);
                    let freed = h
                        .iter()
                        .map(|&(i, g)| (i, f64::from(g) / missing))
                        .collect();
                    (1.0, freed)
                })
                .collect();
            GpuNeed::Shared(devices)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        LabelSelector, PodAffinityTerm, TaintEffect, TopologySpreadConstraint, WhenUnsatisfiable,
        HOSTNAME_LABEL,
    };
    use crate::place::clock::{ManualClock, SharedClock};
    use std::sync::Arc;
    use std::time::Duration;

    const GI: u64 = 1 << 30;

    fn forever() -> Deadline {
        let clock: SharedClock = Arc::new(ManualClock::new());
        Deadline::after(clock, Duration::from_secs(60))
    }

    fn low(name: &str, cpu: u64, priority: i32) -> Pod {
        Pod::new(name, cpu, GI).with_priority(priority)
    }

    /// A cluster of `nodes`, with each `(pod, node index)` bound; returns the pod ids.
    fn cluster(nodes: Vec<Node>, pods: Vec<(Pod, usize)>) -> (Cluster, Vec<PodId>) {
        let mut c = Cluster::new(nodes).unwrap();
        let ids = pods
            .into_iter()
            .map(|(p, n)| c.bind(p, NodeId::from_index(n), None).unwrap())
            .collect();
        (c, ids)
    }

    fn names(c: &Cluster, p: &Preemption) -> Vec<String> {
        p.victims
            .iter()
            .map(|&v| c.pod(v).unwrap().0.name.clone())
            .collect()
    }

    #[test]
    fn a_full_node_gives_up_the_single_lowest_priority_pod_that_suffices() {
        let (c, _) = cluster(
            vec![Node::new("a", 6000, 64 * GI)],
            vec![
                (low("a1", 1000, 1), 0),
                (low("b1", 1000, 1), 0),
                (low("c2", 2000, 2), 0),
                (low("d1", 2000, 1), 0),
            ],
        );
        let pod = low("hi", 2000, 10);
        let p = choose_victims(&c, &pod, &forever()).unwrap().unwrap();
        assert_eq!(names(&c, &p), ["d1"]);
        let mut after = c.clone();
        p.apply(&mut after).unwrap();
        after.bind(pod, p.node, None).unwrap();
    }

    #[test]
    fn equal_or_higher_priority_pods_are_never_victims() {
        let (c, _) = cluster(
            vec![Node::new("a", 4000, 64 * GI)],
            vec![
                (low("eq", 2000, 10), 0),
                (low("hi", 1000, 20), 0),
                (low("lo", 1000, 9), 0),
            ],
        );
        assert_eq!(
            choose_victims(&c, &low("p", 2000, 10), &forever()).unwrap(),
            None
        );
        let p = choose_victims(&c, &low("p", 1000, 10), &forever())
            .unwrap()
            .unwrap();
        assert_eq!(names(&c, &p), ["lo"]);
    }

    #[test]
    fn cordoned_and_tainted_nodes_are_no_candidates() {
        let nodes = vec![
            Node::new("cordoned", 2000, 64 * GI).cordoned(),
            Node::new("tainted", 2000, 64 * GI).with_taint("k", "v", TaintEffect::NoSchedule),
        ];
        let pods = vec![(low("x", 2000, 0), 0), (low("y", 2000, 0), 1)];
        let (mut c, _) = cluster(nodes, pods);
        let pod = low("p", 1000, 10);
        assert_eq!(choose_victims(&c, &pod, &forever()).unwrap(), None);
        c.set_cordoned(NodeId::from_index(0), false).unwrap();
        let p = choose_victims(&c, &pod, &forever()).unwrap().unwrap();
        assert_eq!(
            (p.node, names(&c, &p)),
            (NodeId::from_index(0), vec!["x".into()])
        );
    }

    #[test]
    fn a_pod_that_fits_gets_no_victims_on_the_lowest_fitting_node() {
        let (c, _) = cluster(
            vec![Node::new("a", 1000, 64 * GI), Node::new("b", 4000, 64 * GI)],
            vec![(low("x", 1000, 0), 0)],
        );
        let p = choose_victims(&c, &low("p", 1000, 10), &forever()).unwrap();
        assert_eq!(
            p,
            Some(Preemption {
                node: NodeId::from_index(1),
                victims: vec![]
            })
        );
    }

    #[test]
    fn gang_members_are_never_victims() {
        let (c, _) = cluster(
            vec![Node::new("a", 2000, 64 * GI)],
            vec![
                (low("g", 1000, 0).in_gang("team", 2), 0),
                (low("solo", 1000, 5), 0),
            ],
        );
        let p = choose_victims(&c, &low("p", 1000, 10), &forever())
            .unwrap()
            .unwrap();
        assert_eq!(names(&c, &p), ["solo"]);
        assert_eq!(
            choose_victims(&c, &low("p", 2000, 10), &forever()).unwrap(),
            None
        );
    }

    #[test]
    fn a_victim_set_the_filters_reject_is_cut_and_the_next_best_taken() {
        // Evicting `big` frees enough cpu, but with `s` left on `a` (and none on the
        // tainted `b`) the pod would break its spread, which only the filters see.
        let (c, _) = cluster(
            vec![
                Node::new("a", 4000, 64 * GI),
                Node::new("b", 4000, 64 * GI).with_taint("k", "v", TaintEffect::NoSchedule),
            ],
            vec![
                (low("s", 500, 0).with_label("app", "s"), 0),
                (low("big", 2000, 1), 0),
                (low("other", 1500, 2), 0),
            ],
        );
        let mut pod = low("p", 2000, 10).with_label("app", "s");
        pod.topology_spread.push(TopologySpreadConstraint {
            max_skew: 1,
            topology_key: HOSTNAME_LABEL.into(),
            when_unsatisfiable: WhenUnsatisfiable::DoNotSchedule,
            selector: LabelSelector {
                match_labels: [("app".to_string(), "s".to_string())].into(),
                match_expressions: vec![],
            },
        });
        let p = choose_victims(&c, &pod, &forever()).unwrap().unwrap();
        assert_eq!(names(&c, &p), ["s", "big"]);
    }

    #[test]
    fn anti_affinity_partners_on_the_node_are_forced_out() {
        // Evicting `big` frees enough cpu, but `tagged` (small, lowest priority) repels
        // the pod by its anti-affinity, so it must go too.
        let (c, _) = cluster(
            vec![Node::new("a", 4000, 64 * GI)],
            vec![
                (low("tagged", 500, 0).with_label("app", "x"), 0),
                (low("big", 2000, 1), 0),
                (low("other", 1500, 2), 0),
            ],
        );
        let mut pod = low("p", 2000, 10);
        pod.pod_anti_affinity.push(PodAffinityTerm {
            selector: LabelSelector {
                match_labels: [("app".to_string(), "x".to_string())].into(),
                match_expressions: vec![],
            },
            namespaces: vec![],
            topology_key: HOSTNAME_LABEL.into(),
        });
        let p = choose_victims(&c, &pod, &forever()).unwrap().unwrap();
        assert_eq!(names(&c, &p), ["tagged", "big"]);
    }

    #[test]
    fn whole_gpus_free_only_when_every_holder_goes() {
        let gpu = |n: &str, a: GpuAmount, prio: i32| low(n, 100, prio).with_gpu(a);
        let (c, _) = cluster(
            vec![Node::new("a", 8000, 64 * GI).with_gpus("T4", 2)],
            vec![
                (gpu("s1", GpuAmount::Shared(300), 0), 0),
                (gpu("w0", GpuAmount::Whole(1), 1), 0),
                (gpu("s2", GpuAmount::Shared(300), 5), 0),
            ],
        );
        // Device 0 holds s1 and s2 (400 milli free), device 1 holds w0.
        let one = choose_victims(&c, &gpu("p", GpuAmount::Whole(1), 10), &forever())
            .unwrap()
            .unwrap();
        assert_eq!(names(&c, &one), ["w0"]);
        let two = choose_victims(&c, &gpu("p", GpuAmount::Whole(2), 10), &forever())
            .unwrap()
            .unwrap();
        assert_eq!(two.victims.len(), 3);
        let share = choose_victims(&c, &gpu("p", GpuAmount::Shared(700), 10), &forever())
            .unwrap()
            .unwrap();
        assert_eq!(names(&c, &share), ["s1"]);
    }

    #[test]
    fn a_passed_deadline_returns_none() {
        let (c, _) = cluster(
            vec![Node::new("a", 1000, 64 * GI)],
            vec![(low("x", 1000, 0), 0)],
        );
        let clock: SharedClock = Arc::new(ManualClock::new());
        let gone = Deadline::after(clock, Duration::ZERO);
        assert_eq!(choose_victims(&c, &low("p", 1000, 1), &gone).unwrap(), None);
        assert!(choose_victims(&c, &low("p", 1000, 1), &forever())
            .unwrap()
            .is_some());
    }
}
