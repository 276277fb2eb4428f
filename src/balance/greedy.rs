//! The greedy baseline, modelled on the descheduler's `LowNodeUtilization` (and
//! Koordinator's `LowNodeLoad`): take the nodes above `high`, hottest first (largest
//! utilisation over the thresholded resources, ties by node index); from each, evict
//! pods in [`GreedyOrder`] (by default lowest priority first, then
//! largest predicted CPU usage, then pod id) until the node is at or under `high`. Each
//! evicted pod goes to the least-utilised node (ties by index) among its candidates
//! that passes every kube filter against the cluster as it is at that moment and stays
//! at or under `high` with the pod; a pod with no such node stays (and the next one is
//! tried). Then, with `low`, the nodes to empty are taken least-utilised first; all of a
//! node's pods (largest usage first) are moved the same way, or none is (the node's
//! moves are undone when one pod has nowhere to go).
//!
//! Each pod moves at most once: targets end at or under `high` and are never emptied.

use super::instance::Instance;
use super::{validate_moves, BalanceError, BalanceOptions, GreedyOrder, Method, Plan, Usage};
use crate::model::{Cluster, NodeId, PodId, Problem};
use crate::place::FilterContext;
use std::time::Instant;

/// Runs the greedy baseline and validates its plan.
pub fn plan(
    problem: &Problem,
    usage: &Usage,
    options: &BalanceOptions,
) -> Result<Plan, BalanceError> {
    options.check()?;
    let start = Instant::now();
    let inst = Instance::build(problem, usage, options, true);
    let assign = run(&inst, options.greedy_order)?;
    let plan = inst.plan(&assign, Method::Greedy, start.elapsed().as_secs_f64());
    validate_moves(problem, &plan.moves)?;
    Ok(plan)
}

/// Live state of the greedy run.
struct State<'i, 'a> {
    inst: &'i Instance<'a>,
    cluster: Cluster,
    /// Id of each pod (by instance index) in `cluster` (rebinding may change it).
    live: Vec<PodId>,
    assign: Vec<NodeId>,
    usage: Vec<(u64, u64)>,
}

impl State<'_, '_> {
    fn over(&self, n: NodeId) -> bool {
        let (cpu, mem) = self.usage[n];
        cpu > self.inst.limit_cpu[n] || (self.inst.memory && mem > self.inst.limit_mem[n])
    }

    fn util(&self, n: NodeId) -> f64 {
        let r = |u: u64, c: u64| if c == 0 { 0.0 } else { u as f64 / c as f64 };
        let cpu = r(self.usage[n].0, self.inst.cap_cpu[n]);
        if self.inst.memory {
            cpu.max(r(self.usage[n].1, self.inst.cap_mem[n]))
        } else {
            cpu
        }
    }

    /// Moves pod `i` to the least-utilised admissible target; returns it.
    fn relocate(&mut self, i: usize) -> Result<Option<NodeId>, BalanceError> {
        let p = &self.inst.pods[i];
        let mut targets: Vec<NodeId> = self.inst.candidates[i]
            .iter()
            .copied()
            .filter(|&t| {
                self.usage[t].0 + p.cpu <= self.inst.limit_cpu[t]
                    && (!self.inst.memory || self.usage[t].1 + p.mem <= self.inst.limit_mem[t])
            })
            .collect();
        targets.sort_by(|&a, &b| self.util(a).total_cmp(&self.util(b)).then(a.cmp(&b)));
        let from = self.assign[i];
        let (pod, binding) = self.cluster.unbind(self.live[i])?;
        let chosen = {
            let ctx = FilterContext::new(&self.cluster, &pod);
            targets.into_iter().find(|&t| ctx.check(t).is_ok())
        };
        let to = chosen.unwrap_or(from);
        let devices = chosen.is_none().then_some(binding.gpu_devices);
        self.live[i] = self.cluster.bind(pod, to, devices)?;
        if chosen.is_some() {
            self.shift(i, to);
        }
        Ok(chosen)
    }

    fn shift(&mut self, i: usize, to: NodeId) {
        let p = &self.inst.pods[i];
        let from = self.assign[i];
        self.usage[from].0 -= p.cpu;
        self.usage[from].1 -= p.mem;
        self.usage[to].0 += p.cpu;
        self.usage[to].1 += p.mem;
        self.assign[i] = to;
    }

    /// Moves pod `i` back to `to` (undo).
    fn put_back(&mut self, i: usize, to: NodeId) -> Result<(), BalanceError> {
        let (pod, _) = self.cluster.unbind(self.live[i])?;
        self.live[i] = self.cluster.bind(pod, to, None)?;
        self.shift(i, to);
        Ok(())
    }

    fn pods_on(&self, n: NodeId) -> Vec<usize> {
        (0..self.assign.len())
            .filter(|&i| self.assign[i] == n && !self.inst.candidates[i].is_empty())
            .collect()
    }
}

/// The greedy assignment (node of every pod, by instance index).
pub(crate) fn run(inst: &Instance, order: GreedyOrder) -> Result<Vec<NodeId>, BalanceError> {
    let assign = inst.current_assignment();
    let mut s = State {
        inst,
        cluster: inst.problem.cluster.clone(),
        live: inst.pods.iter().map(|p| p.id).collect(),
        usage: inst.node_usage(&assign),
        assign,
    };
    let n_nodes = inst.cap_cpu.len();
    let mut hot: Vec<NodeId> = (0..n_nodes)
        .map(NodeId::from_index)
        .filter(|&n| s.over(n))
        .collect();
    hot.sort_by(|&a, &b| s.util(b).total_cmp(&s.util(a)).then(a.cmp(&b)));
    for n in hot {
        let mut pods = s.pods_on(n);
        let priority = |i: usize| {
            inst.problem
                .cluster
                .pod(inst.pods[i].id)
                .expect("bound")
                .0
                .priority
        };
        pods.sort_by(|&a, &b| {
            let size = inst.pods[b].cpu.cmp(&inst.pods[a].cpu);
            match order {
                GreedyOrder::PriorityFirst => priority(a).cmp(&priority(b)).then(size),
                GreedyOrder::LargestFirst => size,
            }
            .then(inst.pods[a].id.cmp(&inst.pods[b].id))
        });
        for i in pods {
            if !s.over(n) {
                break;
            }
            s.relocate(i)?;
        }
    }
    let mut empties: Vec<NodeId> = (0..n_nodes)
        .map(NodeId::from_index)
        .filter(|&n| inst.to_empty[n])
        .collect();
    empties.sort_by(|&a, &b| s.util(a).total_cmp(&s.util(b)).then(a.cmp(&b)));
    for n in empties {
        let mut pods: Vec<usize> = (0..s.assign.len()).filter(|&i| s.assign[i] == n).collect();
        pods.sort_by(|&a, &b| {
            inst.pods[b]
                .cpu
                .cmp(&inst.pods[a].cpu)
                .then(inst.pods[a].id.cmp(&inst.pods[b].id))
        });
        let mut done = Vec::new();
        for &i in &pods {
            match s.relocate(i)? {
                Some(_) => done.push(i),
                None => {
                    for &j in done.iter().rev() {
                        s.put_back(j, n)?;
                    }
                    break;
                }
            }
        }
    }
    Ok(s.assign)
}
