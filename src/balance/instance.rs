//! The rebalancing instance both methods share: per-pod usage and move cost, which pods
//! may move, per-node limits, the nodes to empty, candidate target nodes per pod (after
//! the static filters, request sizes and anti-affinity pruning), and the evaluation of
//! any assignment (excess over targets, unmet targets, cost, utilisation).

use super::{BalanceOptions, Method, Move, NodeUtilisation, Plan, Usage};
use crate::model::{Node, NodeId, Pod, PodId, Problem, Resources, WhenUnsatisfiable};
use crate::place::filter::check_static;
use std::collections::{BTreeMap, BTreeSet};

/// Pods at or above this priority (Kubernetes' `system-cluster-critical`) never move.
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// Smallest excess counted for a pod left on a node to empty.
const MIN_EMPTY_EXCESS: f64 = 0.001;

/// One bound pod.
#[derive(Debug, Clone)]
pub(crate) struct PodInfo {
    /// Id in the cluster.
    pub id: PodId,
    /// Current node.
    pub node: NodeId,
    /// Predicted CPU usage, millicores.
    pub cpu: u64,
    /// Predicted memory usage, bytes.
    pub mem: u64,
    /// Whether the pod may move.
    pub movable: bool,
    /// Cost of moving it.
    pub weight: f64,
}

/// A required anti-affinity term among movable pods: `owner` and the pods it matches.
#[derive(Debug, Clone)]
pub(crate) struct AntiTerm {
    /// Pod index of the term's owner.
    pub owner: usize,
    /// Domain of each node (`None`: node lacks the key).
    pub domain: Vec<Option<usize>>,
    /// Number of domains.
    pub domains: usize,
    /// Indices of the other (movable) pods the term matches.
    pub matched: Vec<usize>,
    /// Domains that already violate the term (no constraint: nobody may enter them).
    pub violated: Vec<bool>,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Instance<'a> {
    pub problem: &'a Problem,
    pub pods: Vec<PodInfo>,
    /// Allocatable CPU (millicores) and memory (bytes) per node.
    pub cap_cpu: Vec<u64>,
    pub cap_mem: Vec<u64>,
    /// Largest usage meeting `high`, per node.
    pub limit_cpu: Vec<u64>,
    pub limit_mem: Vec<u64>,
    pub memory: bool,
    pub to_empty: Vec<bool>,
    /// Target nodes per pod (empty for unmovable pods), ascending, current node excluded.
    pub candidates: Vec<Vec<NodeId>>,
    /// Anti-affinity terms with a movable owner and a movable matched pod.
    pub anti: Vec<AntiTerm>,
    pub restricted: bool,
}

/// Whether a pod may move at all (see the module docs of [`crate::balance`]).
pub(crate) fn movable(pod: &Pod) -> bool {
    !pod.gpu.amount.is_some()
        && pod.host_ports.is_empty()
        && pod.gang.is_none()
        && pod.pod_affinity.is_empty()
        && pod
            .topology_spread
            .iter()
            .all(|c| c.when_unsatisfiable != WhenUnsatisfiable::DoNotSchedule)
        && pod.priority < SYSTEM_CRITICAL_PRIORITY
}

fn limit(high: f64, cap: u64) -> u64 {
    (high * cap as f64 + 1e-6).floor() as u64
}

impl<'a> Instance<'a> {
    /// Builds the instance; candidates only if `with_candidates`.
    pub fn build(
        problem: &'a Problem,
        usage: &Usage,
        options: &BalanceOptions,
        with_candidates: bool,
    ) -> Self {
        let cluster = &problem.cluster;
        let eff = super::effective_usage(problem, usage);
        let mut pods: Vec<PodInfo> = cluster
            .bound_pods()
            .map(|(id, pod, b)| PodInfo {
                id,
                node: b.node,
                cpu: eff[&id].0,
                mem: eff[&id].1,
                movable: movable(pod),
                weight: 1.0,
            })
            .collect();
        let priority: Vec<i32> = pods
            .iter()
            .map(|p| cluster.pod(p.id).expect("bound").0.priority)
            .collect();
        let prios: BTreeSet<i32> = (0..pods.len())
            .filter(|&i| pods[i].movable)
            .map(|i| priority[i])
            .collect();
        let rank: BTreeMap<i32, usize> = prios.iter().enumerate().map(|(r, &p)| (p, r)).collect();
        let span = (prios.len().max(2) - 1) as f64;
        for i in 0..pods.len() {
            if pods[i].movable {
                pods[i].weight = 1.0 + options.priority_weight * rank[&priority[i]] as f64 / span;
            }
        }
        // Per node slot; a removed node's slot has no capacity and holds no pod.
        let cap = |f: fn(&Node) -> u64| -> Vec<u64> {
            cluster.node_slot_iter().map(|n| n.map_or(0, f)).collect()
        };
        let cap_cpu = cap(|n| n.allocatable.cpu_milli);
        let cap_mem = cap(|n| n.allocatable.memory_bytes);
        let mut inst = Instance {
            problem,
            limit_cpu: cap_cpu.iter().map(|&c| limit(options.high, c)).collect(),
            limit_mem: cap_mem.iter().map(|&c| limit(options.high, c)).collect(),
            cap_cpu,
            cap_mem,
            memory: options.memory,
            to_empty: vec![false; cluster.node_slots()],
            candidates: vec![Vec::new(); pods.len()],
            anti: Vec::new(),
            restricted: false,
            pods,
        };
        if let Some(low) = options.low {
            let util = inst.utilisation(&inst.current_assignment());
            for (u, n) in util.iter().zip(inst.problem.cluster.node_ids()) {
                let all_movable = inst.pods.iter().all(|p| p.node != n || p.movable);
                inst.to_empty[n] =
                    u.pods > 0 && all_movable && u.cpu < low && (!inst.memory || u.memory < low);
            }
        }
        if with_candidates {
            inst.build_candidates(options.max_pairs);
        }
        inst
    }

    /// The current node of every pod.
    pub fn current_assignment(&self) -> Vec<NodeId> {
        self.pods.iter().map(|p| p.node).collect()
    }

    fn pod(&self, i: usize) -> &'a Pod {
        &self.problem.cluster.pod(self.pods[i].id).expect("bound").0
    }

    fn build_candidates(&mut self, max_pairs: usize) {
        let mut cands: Vec<Vec<NodeId>> = vec![Vec::new(); self.pods.len()];
        for (i, info) in self.pods.iter().enumerate() {
            if !info.movable {
                continue;
            }
            let pod = self.pod(i);
            let mut req = pod.requests.clone();
            req.pods = 1;
            for (n, node) in self.problem.cluster.nodes() {
                if n == info.node || self.to_empty[n] || check_static(pod, node).is_err() {
                    continue;
                }
                let fits = Resources::default()
                    .insufficient(&req, &node.allocatable)
                    .is_empty()
                    && node.allocatable.pods >= 1;
                if fits {
                    cands[i].push(n);
                }
            }
        }
        self.prune_anti_affinity(&mut cands);
        let pairs: usize = cands.iter().map(Vec::len).sum();
        if pairs > max_pairs {
            let missing = self.nodes_missing_targets(&self.current_assignment());
            for (i, c) in cands.iter_mut().enumerate() {
                if !missing[self.pods[i].node] {
                    c.clear();
                }
            }
            self.restricted = true;
        }
        self.candidates = cands;
    }

    /// Removes targets that would break an anti-affinity term involving an unmovable pod
    /// or a domain that already violates a term; records the terms between movable pods.
    fn prune_anti_affinity(&mut self, cands: &mut [Vec<NodeId>]) {
        for o in 0..self.pods.len() {
            let owner = self.pod(o);
            for term in &owner.pod_anti_affinity {
                let matched: Vec<usize> = (0..self.pods.len())
                    .filter(|&q| q != o)
                    .filter(|&q| {
                        let p = self.pod(q);
                        term.selects(&owner.namespace, &p.namespace, &p.labels)
                    })
                    .collect();
                if matched.is_empty() {
                    continue;
                }
                let mut values: BTreeMap<&str, usize> = BTreeMap::new();
                let domain: Vec<Option<usize>> = self
                    .problem
                    .cluster
                    .node_slot_iter()
                    .map(|n| {
                        n?.labels.get(&term.topology_key).map(|v| {
                            let k = values.len();
                            *values.entry(v.as_str()).or_insert(k)
                        })
                    })
                    .collect();
                let dom_of = |i: usize| domain[self.pods[i].node];
                let mut violated = vec![false; values.len()];
                if let Some(d) = dom_of(o) {
                    violated[d] = matched.iter().any(|&q| dom_of(q) == Some(d));
                }
                let mut forbid = |i: usize, d: usize| {
                    cands[i].retain(|&n| domain[n] != Some(d));
                };
                for d in (0..values.len()).filter(|&d| violated[d]) {
                    forbid(o, d);
                    for &q in &matched {
                        forbid(q, d);
                    }
                }
                if !self.pods[o].movable {
                    if let Some(d) = dom_of(o) {
                        for &q in &matched {
                            forbid(q, d);
                        }
                    }
                }
                for &q in matched.iter().filter(|&&q| !self.pods[q].movable) {
                    if let Some(d) = dom_of(q) {
                        forbid(o, d);
                    }
                }
                let movable_matched: Vec<usize> = matched
                    .iter()
                    .copied()
                    .filter(|&q| self.pods[q].movable)
                    .collect();
                if self.pods[o].movable && !movable_matched.is_empty() {
                    self.anti.push(AntiTerm {
                        owner: o,
                        domains: values.len(),
                        domain,
                        matched: movable_matched,
                        violated,
                    });
                }
            }
        }
    }

    /// Per node: predicted CPU and memory usage under `assign`.
    pub fn node_usage(&self, assign: &[NodeId]) -> Vec<(u64, u64)> {
        let mut u = vec![(0u64, 0u64); self.cap_cpu.len()];
        for (p, &n) in self.pods.iter().zip(assign) {
            u[n].0 += p.cpu;
            u[n].1 += p.mem;
        }
        u
    }

    /// Whether each node misses a target under `assign`.
    pub fn nodes_missing_targets(&self, assign: &[NodeId]) -> Vec<bool> {
        let usage = self.node_usage(assign);
        let mut out: Vec<bool> = (0..usage.len())
            .map(|n| {
                usage[n].0 > self.limit_cpu[n] || (self.memory && usage[n].1 > self.limit_mem[n])
            })
            .collect();
        for &n in assign {
            if self.to_empty[n] {
                out[n] = true;
            }
        }
        out
    }

    /// Total excess over the targets, and the unmet targets as sentences.
    pub fn excess(&self, assign: &[NodeId]) -> (f64, Vec<String>) {
        let usage = self.node_usage(assign);
        let mut total = 0.0;
        let mut unmet = Vec::new();
        for (n, &(cpu, mem)) in usage.iter().enumerate() {
            let n = NodeId::from_index(n);
            let Some(node) = self.problem.cluster.node(n) else {
                continue;
            };
            let mut over = |name: &str, used: u64, lim: u64, cap: u64| {
                if used > lim {
                    total += (used - lim) as f64 / cap.max(1) as f64;
                    unmet.push(format!(
                        "node {} {name} utilisation {:.3} is above high ({:.3})",
                        node.name,
                        used as f64 / cap.max(1) as f64,
                        lim as f64 / cap.max(1) as f64
                    ));
                }
            };
            over("cpu", cpu, self.limit_cpu[n], self.cap_cpu[n]);
            if self.memory {
                over("memory", mem, self.limit_mem[n], self.cap_mem[n]);
            }
        }
        let mut left: BTreeMap<NodeId, usize> = BTreeMap::new();
        for (i, &n) in assign.iter().enumerate() {
            if self.to_empty[n] {
                total += self.empty_excess(i);
                *left.entry(n).or_default() += 1;
            }
        }
        for (n, k) in left {
            unmet.push(format!(
                "node {} is below low but keeps {k} pod(s)",
                self.problem.cluster[n].name
            ));
        }
        (total, unmet)
    }

    /// Excess counted for pod `i` staying on its node when that node is to be emptied.
    pub fn empty_excess(&self, i: usize) -> f64 {
        let p = &self.pods[i];
        (p.cpu as f64 / self.cap_cpu[p.node].max(1) as f64).max(MIN_EMPTY_EXCESS)
    }

    /// Utilisation per node under `assign`.
    pub fn utilisation(&self, assign: &[NodeId]) -> Vec<NodeUtilisation> {
        let usage = self.node_usage(assign);
        let mut count = vec![0usize; usage.len()];
        for &n in assign {
            count[n] += 1;
        }
        let ratio = |u: u64, c: u64| if c == 0 { 0.0 } else { u as f64 / c as f64 };
        self.problem
            .cluster
            .nodes()
            .map(|(n, node)| NodeUtilisation {
                node: node.name.clone(),
                cpu: ratio(usage[n].0, self.cap_cpu[n]),
                memory: ratio(usage[n].1, self.cap_mem[n]),
                pods: count[n],
                to_empty: self.to_empty[n],
            })
            .collect()
    }

    /// The moves from the current placement to `assign`, in pod id order.
    pub fn moves(&self, assign: &[NodeId]) -> Vec<Move> {
        let c = &self.problem.cluster;
        self.pods
            .iter()
            .zip(assign)
            .enumerate()
            .filter(|(_, (p, &n))| p.node != n)
            .map(|(i, (p, &n))| Move {
                pod: self.pod(i).key(),
                from: c[p.node].name.clone(),
                to: c[n].name.clone(),
                pod_id: p.id,
                from_node: p.node,
                to_node: n,
            })
            .collect()
    }

    /// Total cost of the moves to `assign`.
    pub fn cost(&self, assign: &[NodeId]) -> f64 {
        self.pods
            .iter()
            .zip(assign)
            .filter(|(p, &n)| p.node != n)
            .map(|(p, _)| p.weight)
            .sum::<f64>()
            + 0.0 // an empty sum is -0.0
    }

    /// A plan for `assign` (not yet validated).
    pub fn plan(&self, assign: &[NodeId], method: Method, seconds: f64) -> Plan {
        let (excess, unmet) = self.excess(assign);
        Plan {
            method,
            moves: self.moves(assign),
            cost: self.cost(assign),
            excess,
            unmet,
            before: self.utilisation(&self.current_assignment()),
            after: self.utilisation(assign),
            optimal: false,
            fell_back: false,
            restricted: self.restricted,
            solve_seconds: seconds,
        }
    }
}
