//! Traces: the nodes that come and go and the pods that arrive, with their run times.
//!
//! A [`Trace`] only describes inputs; the simulator ([`crate::sim::simulate`]) decides
//! nothing here. Builders from the real traces live here too ([`Trace::from_openb`]).

use super::event::Time;
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
