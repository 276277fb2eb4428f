//! The event loop of one run: pops events, changes the cluster through the policy's
//! backend, keeps the pending queue, records samples.

use super::backend::Backend;
use super::event::{EventKind, EventQueue, Time};
use super::metrics::{ClusterFigures, Sample, Summary, TimeMeans, WaitStats};
use super::trace::{NodeChange, Trace};
use super::{validate_cluster, QueueMode, Sampling, SimConfig, SimError, SimResult};
use crate::model::{Cluster, NodeId, PodId};
use crate::place::score::fgd::TargetWorkload;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Where a trace pod is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    NotArrived,
    Pending { since: Time },
    Running { id: PodId },
    Done,
    Dropped,
}

#[derive(Debug, Clone, Copy)]
struct PodState {
    status: Status,
    run: u32,
    placed_once: bool,
    /// Interned constraint shape (pods of equal shape fit or not alike); `None` = unique.
    shape: Option<u32>,
}

pub(crate) struct Run<'a> {
    trace: &'a Trace,
    config: &'a SimConfig,
    backend: Backend,
    queue: EventQueue,
    pods: Vec<PodState>,
    /// Trace pod of each cluster pod id.
    by_id: Vec<Option<usize>>,
    pending: BTreeMap<(Reverse<i32>, u64), usize>,
    pending_seq: u64,
    /// Each trace node's id in the cluster while it is in it (a node that leaves and
    /// comes back gets a new id, as a re-registered Kubernetes node is a new object).
    ids: Vec<Option<NodeId>>,
    figures: ClusterFigures,
    means: TimeMeans,
    samples: Vec<Sample>,
    next_sample: Time,
    waits: Vec<Time>,
    shapes: HashMap<String, u32>,
    tick_at: Option<Time>,
    summary: Summary,
    running: usize,
    /// Members (trace indices) of each gang, keyed by namespace and gang name.
    gangs: HashMap<(String, String), Vec<usize>>,
}

impl<'a> Run<'a> {
    pub(crate) fn new(
        trace: &'a Trace,
        config: &'a SimConfig,
        make: impl FnOnce(Cluster) -> Backend,
        workload: TargetWorkload,
        policy: String,
    ) -> Result<Self, SimError> {
        trace.check()?;
        let cluster = Cluster::default();
        let figures = ClusterFigures::new(workload);
        let mut queue = EventQueue::new();
        let mut nodes: Vec<_> = trace.node_events.iter().collect();
        nodes.sort_by_key(|e| e.time);
        for e in nodes {
            let node = e.node;
            queue.push(
                e.time,
                match e.change {
                    NodeChange::Add => EventKind::NodeAdd { node },
                    NodeChange::Fail => EventKind::NodeFail { node },
                    NodeChange::Remove => EventKind::NodeRemove { node },
                },
            );
        }
        let mut arrivals: Vec<usize> = (0..trace.pods.len()).collect();
        arrivals.sort_by_key(|&i| trace.pods[i].arrival);
        for pod in arrivals {
            queue.push(trace.pods[pod].arrival, EventKind::Arrival { pod });
        }
        let state = PodState {
            status: Status::NotArrived,
            run: 0,
            placed_once: false,
            shape: None,
        };
        let mut gangs: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (i, tp) in trace.pods.iter().enumerate() {
            if let Some(g) = &tp.pod.gang {
                gangs
                    .entry((tp.pod.namespace.clone(), g.name.clone()))
                    .or_default()
                    .push(i);
            }
        }
        Ok(Run {
            gangs,
            trace,
            config,
            backend: make(cluster),
            queue,
            pods: vec![state; trace.pods.len()],
            by_id: Vec::new(),
            pending: BTreeMap::new(),
            pending_seq: 0,
            ids: vec![None; trace.nodes.len()],
            figures,
            means: TimeMeans::default(),
            samples: Vec::new(),
            next_sample: 0,
            waits: Vec::new(),
            shapes: HashMap::new(),
            tick_at: None,
            summary: Summary {
                policy,
                pods: trace.pods.len(),
                arrived: 0,
                placements: 0,
                placed_pods: 0,
                dropped: 0,
                still_pending: 0,
                still_running: 0,
                evicted: 0,
                node_losses: 0,
                wait: WaitStats::default(),
                mean_cpu_alloc: 0.0,
                mean_mem_alloc: 0.0,
                mean_gpu_alloc: 0.0,
                mean_gpu_frag_ratio: 0.0,
                mean_pending: 0.0,
                peak_pending: 0,
                peak_nodes_in_use: 0,
                batch_calls: 0,
                end_time: 0,
                events: 0,
            },
            running: 0,
        })
    }

    pub(crate) fn execute(
        mut self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<SimResult, SimError> {
        let total = (self.trace.pods.len() + self.trace.node_events.len()) as u64;
        let mut done = 0u64;
        let mut now = 0;
        while let Some(t) = self.queue.peek_time() {
            if self.config.until.is_some_and(|u| t > u) {
                break;
            }
            if let Sampling::Interval(step) = self.config.sampling {
                while self.next_sample < t {
                    self.push_sample(self.next_sample);
                    self.next_sample += step.max(1);
                }
            }
            now = t;
            while self.queue.peek_time() == Some(t) {
                let e = self.queue.pop().expect("peeked");
                self.summary.events += 1;
                if !matches!(e.kind, EventKind::Departure { .. } | EventKind::Tick) {
                    done += 1;
                    if done % 512 == 0 {
                        progress(done, total);
                    }
                }
                self.handle(t, e.kind)?;
                if let Some(every) = self.config.validate_every {
                    if self.summary.events % every.max(1) == 0 {
                        self.check(t)?;
                    }
                }
            }
            self.after_time(t);
        }
        let end = self.config.until.unwrap_or(now).max(now);
        if let Sampling::Interval(step) = self.config.sampling {
            while self.next_sample <= end {
                self.push_sample(self.next_sample);
                self.next_sample += step.max(1);
            }
        }
        self.check(end)?;
        progress(done, total);
        self.finish(end)
    }

    fn check(&self, time: Time) -> Result<(), SimError> {
        validate_cluster(self.backend.cluster())
            .map_err(|v| SimError::invalid(time, &self.summary.policy, &v))
    }

    fn current(&mut self, time: Time) -> Sample {
        self.figures.refresh(self.backend.cluster());
        let mut s = self.figures.sample(time);
        s.pending = self.pending.len();
        s.running = self.running;
        s.dropped = self.summary.dropped;
        s
    }

    fn push_sample(&mut self, time: Time) {
        let s = self.current(time);
        self.samples.push(s);
    }

    /// All events of time `t` are done: record the state.
    fn after_time(&mut self, t: Time) {
        let s = self.current(t);
        self.summary.peak_pending = self.summary.peak_pending.max(s.pending);
        self.summary.peak_nodes_in_use = self.summary.peak_nodes_in_use.max(s.nodes_in_use);
        self.means.record(&s);
        if self.config.sampling == Sampling::EveryEvent {
            self.samples.push(s);
        }
    }

    fn handle(&mut self, t: Time, kind: EventKind) -> Result<(), SimError> {
        self.backend.set_time(t);
        match kind {
            EventKind::Arrival { pod } => {
                self.summary.arrived += 1;
                self.arrive(t, pod)?;
            }
            EventKind::Departure { pod, run } => {
                let st = self.pods[pod];
                if let (Status::Running { id }, true) = (st.status, st.run == run) {
                    self.unbind(id)?;
                    self.pods[pod].status = Status::Done;
                    self.freed(t)?;
                }
            }
            EventKind::NodeAdd { node } => {
                if self.ids[node].is_none() {
                    let id = self.backend.add_node(self.trace.nodes[node].clone())?;
                    self.ids[node] = Some(id);
                    self.figures.touch(id);
                    self.freed(t)?;
                }
            }
            EventKind::NodeFail { node } | EventKind::NodeRemove { node } => {
                if let Some(id) = self.ids[node].take() {
                    self.lose_node(t, id)?;
                }
            }
            EventKind::Tick => {
                self.tick_at = None;
                self.tick(t)?;
            }
        }
        Ok(())
    }

    fn unbind(&mut self, id: PodId) -> Result<(), SimError> {
        let node = self.backend.cluster().pod(id).map(|(_, b)| b.node);
        self.backend.remove(id)?;
        if let Some(n) = node {
            self.figures.touch(n);
        }
        self.by_id[id.slot()] = None;
        self.running -= 1;
        Ok(())
    }

    /// Records that trace pod `pod` is now running as cluster pod `id` on `node`.
    fn started(&mut self, t: Time, pod: usize, id: PodId, node: NodeId, since: Time) {
        if self.by_id.len() <= id.slot() {
            self.by_id.resize(id.slot() + 1, None);
        }
        self.by_id[id.slot()] = Some(pod);
        self.figures.touch(node);
        self.running += 1;
        self.summary.placements += 1;
        self.waits.push(t - since);
        let st = &mut self.pods[pod];
        st.status = Status::Running { id };
        if !st.placed_once {
            st.placed_once = true;
            self.summary.placed_pods += 1;
        }
        if let Some(d) = self.trace.pods[pod].duration {
            let run = st.run;
            self.queue.push(t + d, EventKind::Departure { pod, run });
        }
    }

    /// The gang key and minimum of `pod` if it belongs to a gang that does not yet have
    /// its minimum running (its members must then be placed together).
    fn open_gang(&self, pod: usize) -> Option<((String, String), u32)> {
        let p = &self.trace.pods[pod].pod;
        let g = p.gang.as_ref()?;
        let key = (p.namespace.clone(), g.name.clone());
        let running = self.gangs[&key]
            .iter()
            .filter(|&&m| matches!(self.pods[m].status, Status::Running { .. }))
            .count() as u32;
        (running < g.min_member).then_some((key, g.min_member - running))
    }

    /// Tries the waiting members of a gang together (online policies): each is placed
    /// in queue order; if at least `needed` of them fit, they all start, else every one
    /// placed is removed again and they keep waiting. `Ok(None)`: fewer than `needed`
    /// members are waiting (the gang is not complete yet), nothing was tried.
    fn try_gang(
        &mut self,
        t: Time,
        key: &(String, String),
        needed: u32,
    ) -> Result<Option<bool>, SimError> {
        let members: HashSet<usize> = self.gangs[key].iter().copied().collect();
        let waiting: Vec<((Reverse<i32>, u64), usize)> = self
            .pending
            .iter()
            .filter(|(_, p)| members.contains(p))
            .map(|(k, &p)| (*k, p))
            .collect();
        if (waiting.len() as u32) < needed {
            return Ok(None);
        }
        let mut got = Vec::new();
        for &(k, p) in &waiting {
            if let Some((id, b)) = self.backend.place_now(&self.trace.pods[p].pod)? {
                got.push((k, p, id, b.node));
            }
        }
        if (got.len() as u32) < needed {
            for &(_, _, id, _) in got.iter().rev() {
                self.backend.remove(id)?;
            }
            return Ok(Some(false));
        }
        for (k, p, id, node) in got {
            let Status::Pending { since } = self.pods[p].status else {
                unreachable!("queued pods are pending")
            };
            self.pending.remove(&k);
            self.started(t, p, id, node, since);
        }
        Ok(Some(true))
    }

    /// Drops every waiting member of a gang (drop mode, after a failed try).
    fn drop_gang(&mut self, key: &(String, String)) {
        let members: HashSet<usize> = self.gangs[key].iter().copied().collect();
        let keys: Vec<(Reverse<i32>, u64)> = self
            .pending
            .iter()
            .filter(|(_, p)| members.contains(p))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            if let Some(p) = self.pending.remove(&k) {
                self.pods[p].status = Status::Dropped;
                self.summary.dropped += 1;
            }
        }
    }

    /// A pod enters the scheduler (arrival or eviction): online policies try it at once.
    fn arrive(&mut self, t: Time, pod: usize) -> Result<(), SimError> {
        if !self.backend.is_batch() {
            if let Some((key, needed)) = self.open_gang(pod) {
                self.enqueue(t, pod);
                if self.try_gang(t, &key, needed)? == Some(false)
                    && self.config.mode == QueueMode::Drop
                {
                    self.drop_gang(&key);
                }
                return Ok(());
            }
            if let Some((id, b)) = self.backend.place_now(&self.trace.pods[pod].pod)? {
                self.started(t, pod, id, b.node, t);
                return Ok(());
            }
            if self.config.mode == QueueMode::Drop {
                self.pods[pod].status = Status::Dropped;
                self.summary.dropped += 1;
                return Ok(());
            }
        }
        self.enqueue(t, pod);
        self.want_tick(t);
        Ok(())
    }

    fn enqueue(&mut self, t: Time, pod: usize) {
        let key = (Reverse(self.trace.pods[pod].pod.priority), self.pending_seq);
        self.pending_seq += 1;
        self.pending.insert(key, pod);
        self.pods[pod].status = Status::Pending { since: t };
    }

    /// Capacity freed: online policies retry the queue; batch ones want a tick.
    fn freed(&mut self, t: Time) -> Result<(), SimError> {
        if self.backend.is_batch() {
            self.want_tick(t);
            return Ok(());
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        let order: Vec<((Reverse<i32>, u64), usize)> =
            self.pending.iter().map(|(k, &p)| (*k, p)).collect();
        let mut failed: HashSet<u32> = HashSet::new();
        let mut gangs_tried: HashSet<(String, String)> = HashSet::new();
        for (key, pod) in order {
            if !self.pending.contains_key(&key) {
                continue; // placed with its gang earlier in this pass
            }
            if let Some((gang, needed)) = self.open_gang(pod) {
                if gangs_tried.insert(gang.clone()) {
                    self.try_gang(t, &gang, needed)?;
                }
                continue;
            }
            let shape = self.shape(pod);
            if shape.is_some_and(|s| failed.contains(&s)) {
                continue;
            }
            match self.backend.place_now(&self.trace.pods[pod].pod)? {
                Some((id, b)) => {
                    let Status::Pending { since } = self.pods[pod].status else {
                        unreachable!("queued pods are pending")
                    };
                    self.pending.remove(&key);
                    self.started(t, pod, id, b.node, since);
                }
                None => {
                    if let Some(s) = shape {
                        failed.insert(s);
                    }
                }
            }
        }
        Ok(())
    }

    /// The pod's constraint shape: pods equal in everything but name fit alike while
    /// nothing else changes. Pods with pod affinity or spread constraints (whose
    /// feasibility can grow as others are placed) get none.
    fn shape(&mut self, pod: usize) -> Option<u32> {
        if let Some(s) = self.pods[pod].shape {
            return Some(s);
        }
        let p = &self.trace.pods[pod].pod;
        if !p.pod_affinity.is_empty() || !p.topology_spread.is_empty() {
            return None;
        }
        let mut anon = p.clone();
        anon.name.clear();
        let key = serde_json::to_string(&anon).ok()?;
        let next = self.shapes.len() as u32;
        let s = *self.shapes.entry(key).or_insert(next);
        self.pods[pod].shape = Some(s);
        Some(s)
    }

    fn want_tick(&mut self, t: Time) {
        if !self.backend.is_batch() || self.pending.is_empty() || self.tick_at.is_some() {
            return;
        }
        let step = self.config.tick_seconds.max(1);
        let at = t.div_ceil(step) * step;
        self.tick_at = Some(at);
        self.queue.push(at, EventKind::Tick);
    }

    fn tick(&mut self, t: Time) -> Result<(), SimError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.summary.batch_calls += 1;
        let entries: Vec<((Reverse<i32>, u64), usize)> =
            std::mem::take(&mut self.pending).into_iter().collect();
        let pods = entries
            .iter()
            .map(|&(_, p)| self.trace.pods[p].pod.clone())
            .collect();
        let placed = self.backend.place_batch(pods, t)?;
        for ((key, pod), got) in entries.into_iter().zip(placed) {
            let Status::Pending { since } = self.pods[pod].status else {
                unreachable!("queued pods are pending")
            };
            match got {
                Some((id, node)) => self.started(t, pod, id, node, since),
                None if self.config.mode == QueueMode::Drop => {
                    self.pods[pod].status = Status::Dropped;
                    self.summary.dropped += 1;
                }
                None => {
                    self.pending.insert(key, pod);
                }
            }
        }
        Ok(())
    }

    /// A node fails or leaves: it is removed from the cluster, its pods go back to the
    /// scheduler as new arrivals (ascending pod id), and their run restarts from the
    /// beginning.
    fn lose_node(&mut self, t: Time, node: NodeId) -> Result<(), SimError> {
        self.summary.node_losses += 1;
        let mut ids: Vec<PodId> = self.backend.cluster().pods_on(node).to_vec();
        ids.sort_unstable();
        let mut evicted = Vec::with_capacity(ids.len());
        for id in ids {
            let pod = self.by_id[id.slot()].expect("every bound pod comes from the trace");
            self.unbind(id)?;
            self.pods[pod].run += 1;
            evicted.push(pod);
        }
        self.summary.evicted += evicted.len();
        self.backend.remove_node(node)?;
        self.figures.touch(node);
        for pod in evicted {
            self.arrive(t, pod)?;
        }
        Ok(())
    }

    fn finish(mut self, end: Time) -> Result<SimResult, SimError> {
        let [cpu, mem, gpu, frag, pending] = std::mem::take(&mut self.means).finish(end);
        let mut s = self.summary;
        s.mean_cpu_alloc = cpu;
        s.mean_mem_alloc = mem;
        s.mean_gpu_alloc = gpu;
        s.mean_gpu_frag_ratio = frag;
        s.mean_pending = pending;
        s.still_pending = self.pending.len();
        s.still_running = self.running;
        s.wait = WaitStats::from_waits(&mut self.waits);
        s.end_time = end;
        let cluster = self.backend.into_cluster();
        Ok(SimResult {
            summary: s,
            samples: self.samples,
            cluster,
        })
    }
}
