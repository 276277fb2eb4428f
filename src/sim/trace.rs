//! Traces: the nodes that come and go and the pods that arrive, with their run times.
//!
//! A [`Trace`] only describes inputs; the simulator ([`crate::sim::simulate`]) decides
//! nothing here. Builders from the real traces live here too ([`Trace::from_openb`]).

use super::event::Time;
use crate::datasets::alibaba2017::{self, Scale, ServerEvent, ServerEventKind};
use crate::datasets::common::{Strictness, TimedPod};
use crate::datasets::openb::{self, DatasetError, OpenbPod};
use crate::model::{Node, Pod};
use std::path::Path;

/// What happens to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeChange {
    /// The node joins (or rejoins) the cluster, empty.
    Add,
    /// The node fails; its pods go back to pending.
    Fail,
    /// The node is removed on purpose; its pods go back to pending.
    Remove,
}

/// A node event of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeEvent {
    /// When.
    pub time: Time,
    /// Index into [`Trace::nodes`].
    pub node: usize,
    /// What happens.
    pub change: NodeChange,
}

/// A pod of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracePod {
    /// The pod (pending: no `node_name`).
    pub pod: Pod,
    /// Arrival time.
    pub arrival: Time,
    /// How long the pod runs once started; `None` = until the end of the simulation.
    /// A pod that waited starts later and so departs later; a pod whose node fails
    /// starts over (see [`crate::sim`]).
    pub duration: Option<Time>,
}

/// The inputs of a simulation: every node that ever exists, their events, and the pods.
/// A node is absent until an [`NodeChange::Add`] event names it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    /// Every node of the trace (names unique), in trace order.
    pub nodes: Vec<Node>,
    /// Node events, in any order (the simulator orders them by time, stably).
    pub node_events: Vec<NodeEvent>,
    /// Pods, in any order (the simulator orders arrivals by time, stably).
    pub pods: Vec<TracePod>,
}

/// Why a trace could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A dataset file could not be read.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The trace is inconsistent.
    #[error("invalid trace: {0}")]
    Invalid(String),
}

impl Trace {
    /// A trace where every node of `nodes` is added at time 0.
    pub fn with_static_nodes(nodes: Vec<Node>, pods: Vec<TracePod>) -> Self {
        let node_events = (0..nodes.len())
            .map(|node| NodeEvent {
                time: 0,
                node,
                change: NodeChange::Add,
            })
            .collect();
        Trace {
            nodes,
            node_events,
            pods,
        }
    }

    /// The openb trace: every node present from time 0; each pod arrives at its
    /// `creation_time` minus the earliest creation time and runs for
    /// `deletion_time - creation_time` seconds (0 if deletion precedes creation; until the
    /// end if the deletion time is missing). Pods without a creation time (the 5-column
    /// lists) all arrive at time 0.
    pub fn from_openb_records(nodes: Vec<Node>, records: Vec<OpenbPod>) -> Self {
        let t0 = records
            .iter()
            .filter_map(|r| r.creation_time)
            .min()
            .unwrap_or(0);
        let pods = records
            .into_iter()
            .map(|r| {
                let created = r.creation_time.unwrap_or(t0);
                TracePod {
                    arrival: created - t0,
                    duration: r.deletion_time.map(|d| d.saturating_sub(created)),
                    pod: r.pod,
                }
            })
            .collect();
        Trace::with_static_nodes(nodes, pods)
    }

    /// Loads an openb node list and pod list (see [`Trace::from_openb_records`]).
    pub fn from_openb(nodes: &Path, pods: &Path) -> Result<Self, TraceError> {
        let nodes = openb::load_nodes(nodes)?;
        let records = openb::load_pod_records(pods)?;
        Ok(Trace::from_openb_records(nodes, records))
    }

    /// The Alibaba 2017 trace from its server events and per-instance pods (see
    /// [`alibaba2017::task_pods`]). Time zero is the earliest server event or pod
    /// arrival (the trace has some tasks created before its start). Each machine is one
    /// node, named `m_ID`, with the capacity of its first `add`; `add` adds it (again),
    /// `softerror` and `harderror` become [`NodeChange::Fail`] (the node leaves until
    /// its next `add`; the loader's `nodes_at` only cordons it, but the simulator has no
    /// cordon event: a soft error evicts here), `remove` becomes [`NodeChange::Remove`].
    /// Error or remove events for a machine never added are ignored. A pod runs
    /// `departure - arrival` seconds, until the end if it had not left.
    pub fn from_alibaba2017(events: &[ServerEvent], pods: Vec<TimedPod>, scale: Scale) -> Self {
        let t0 = events
            .iter()
            .map(|e| e.timestamp)
            .chain(pods.iter().map(|p| p.arrival))
            .min()
            .unwrap_or(0);
        let mut order: Vec<&ServerEvent> = events.iter().collect();
        order.sort_by_key(|e| e.timestamp);
        let mut index: std::collections::BTreeMap<u64, usize> = Default::default();
        let mut nodes = Vec::new();
        let mut node_events = Vec::new();
        for e in order {
            let time = (e.timestamp - t0) as Time;
            let change = match e.kind {
                ServerEventKind::Add => NodeChange::Add,
                ServerEventKind::SoftError | ServerEventKind::HardError => NodeChange::Fail,
                ServerEventKind::Remove => NodeChange::Remove,
            };
            let node = match (index.get(&e.machine_id), change) {
                (Some(&n), _) => n,
                (None, NodeChange::Add) => {
                    let n = nodes.len();
                    let desc = alibaba2017::nodes_at(std::slice::from_ref(e), e.timestamp, scale);
                    nodes.extend(desc);
                    index.insert(e.machine_id, n);
                    n
                }
                (None, _) => continue,
            };
            node_events.push(NodeEvent { time, node, change });
        }
        let pods = pods
            .into_iter()
            .map(|p| TracePod {
                arrival: (p.arrival - t0) as Time,
                duration: p.departure.map(|d| (d.max(p.arrival) - p.arrival) as Time),
                pod: p.pod,
            })
            .collect();
        Trace {
            nodes,
            node_events,
            pods,
        }
    }

    /// Loads `server_event.csv` and the first `max_pods` instances (file order) of
    /// `batch_task.csv` with [`alibaba2017::DEFAULT_SCALE`] (see
    /// [`Trace::from_alibaba2017`]); strict: a malformed row is an error.
    pub fn load_alibaba2017(
        server_events: &Path,
        batch_tasks: &Path,
        max_pods: usize,
    ) -> Result<Self, TraceError> {
        let events = alibaba2017::load_server_events(server_events, Strictness::Strict)?.records;
        let tasks = alibaba2017::load_batch_tasks(batch_tasks, Strictness::Strict)?.records;
        let (pods, _) = alibaba2017::task_pods(&tasks, alibaba2017::DEFAULT_SCALE, max_pods);
        Ok(Trace::from_alibaba2017(
            &events,
            pods,
            alibaba2017::DEFAULT_SCALE,
        ))
    }

    /// Checks node indices of events and node name uniqueness.
    pub fn check(&self) -> Result<(), TraceError> {
        let mut names = std::collections::BTreeSet::new();
        for n in &self.nodes {
            if !names.insert(n.name.as_str()) {
                return Err(TraceError::Invalid(format!("duplicate node {:?}", n.name)));
            }
        }
        if let Some(e) = self.node_events.iter().find(|e| e.node >= self.nodes.len()) {
            return Err(TraceError::Invalid(format!(
                "node event at t={} names node #{} but the trace has {} nodes",
                e.time,
                e.node,
                self.nodes.len()
            )));
        }
        if let Some(p) = self.pods.iter().find(|p| p.pod.node_name.is_some()) {
            return Err(TraceError::Invalid(format!(
                "pod {} is already bound; trace pods must be pending",
                p.pod.key()
            )));
        }
        Ok(())
    }

    /// Time of the last trace event (arrival or node event).
    pub fn last_time(&self) -> Time {
        let a = self.pods.iter().map(|p| p.arrival).max().unwrap_or(0);
        let n = self.node_events.iter().map(|e| e.time).max().unwrap_or(0);
        a.max(n)
    }
}
