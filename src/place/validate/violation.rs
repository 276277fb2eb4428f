//! The violations the validator reports, each a clear sentence.

use crate::model::{HostPort, NodeId, Taint, MILLI_PER_GPU};
use std::fmt;

/// What rule a placement breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViolationKind {
    /// The placement does not have one entry per pending pod.
    WrongLength {
        /// Number of pending pods.
        expected: usize,
        /// Number of placement entries.
        got: usize,
    },
    /// The node index does not exist.
    UnknownNode {
        /// The index given.
        index: NodeId,
        /// Number of nodes in the cluster.
        nodes: usize,
    },
    /// The requests on a node exceed its allocatable amount of a resource.
    OverCommitted {
        /// Kubernetes resource name (`cpu`, `memory`, `pods`, `ephemeral-storage`, …).
        resource: String,
        /// Sum of requests on the node (cpu in millicores, memory and storage in bytes),
        /// taken in `u128` so that no sum of `u64` requests can wrap.
        requested: u128,
        /// Allocatable amount.
        allocatable: u64,
    },
    /// The pod asks for GPUs and the node has none.
    NoGpus,
    /// The node's GPU model is not among the pod's accepted models.
    GpuModel {
        /// The node's model.
        model: String,
        /// The models the pod accepts.
        accepted: Vec<String>,
    },
    /// The pod holds the wrong number of devices for its request.
    GpuDeviceCount {
        /// Devices the request needs.
        expected: usize,
        /// Devices given.
        got: usize,
    },
    /// A device index is out of range for the node.
    GpuDeviceIndex {
        /// The index.
        device: u32,
        /// Devices on the node.
        count: u32,
    },
    /// The pod lists the same device twice.
    GpuDeviceRepeated {
        /// The index.
        device: u32,
    },
    /// More than one whole GPU's worth is used on one device.
    GpuDeviceOverShared {
        /// The device index.
        device: u32,
        /// Milli-GPU used on it (shares plus 1000 per whole use).
        used_milli: u32,
    },
    /// The node is cordoned and the pod does not tolerate it.
    Unschedulable,
    /// A `NoSchedule`/`NoExecute` taint is not tolerated.
    UntoleratedTaint {
        /// The taint.
        taint: Taint,
    },
    /// A `nodeSelector` entry does not match the node's labels.
    NodeSelector {
        /// Label key.
        key: String,
        /// Value the pod asks for.
        wanted: String,
        /// The node's value, if it has the label.
        found: Option<String>,
    },
    /// No term of the required node affinity matches the node.
    NodeAffinity,
    /// A host port is already taken on the node by another pod.
    HostPort {
        /// The port.
        port: HostPort,
        /// The other pod's key.
        other: String,
    },
    /// The pod's own required anti-affinity matches another pod in its domain.
    PodAntiAffinity {
        /// The other pod's key.
        other: String,
        /// The term's topology key.
        topology_key: String,
    },
    /// An already bound pod's required anti-affinity matches this pod in its domain.
    ExistingPodAntiAffinity {
        /// The bound pod's key.
        other: String,
        /// The term's topology key.
        topology_key: String,
    },
    /// The pod's required affinity has no matching pod in its domain.
    PodAffinity {
        /// The term's topology key.
        topology_key: String,
        /// Why the first-of-group exception does not apply, if it was considered.
        detail: String,
    },
    /// The node lacks the topology key of an affinity or hard spread constraint.
    MissingTopologyLabel {
        /// The label key.
        topology_key: String,
    },
    /// A `DoNotSchedule` topology spread constraint exceeds its max skew.
    TopologySpread {
        /// The topology key.
        topology_key: String,
        /// The pod's domain (label value).
        domain: String,
        /// Matching pods in that domain.
        count: u32,
        /// Minimum over eligible domains.
        min: u32,
        /// Allowed skew.
        max_skew: u32,
    },
    /// Some but not enough members of a gang are placed.
    GangPartial {
        /// `namespace/name` of the gang.
        gang: String,
        /// Members placed.
        placed: usize,
        /// Members required together.
        min_member: u32,
    },
    /// An embedder's hard plugin rejects the pod on this node (see
    /// [`crate::place::plugin::validate_with`]).
    Plugin {
        /// The plugin's name.
        plugin: String,
        /// The plugin's reason.
        message: String,
    },
}

/// One broken rule, with the pod and node it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Index of the pending pod concerned, if any.
    pub pending_index: Option<usize>,
    /// `namespace/name` of the pod concerned (empty if none).
    pub pod: String,
    /// The node concerned, if any (and if it exists).
    pub node: Option<NodeId>,
    /// The node's name (empty if none).
    pub node_name: String,
    /// What is broken.
    pub kind: ViolationKind,
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ViolationKind::*;
        match self {
            WrongLength { expected, got } => write!(
                f,
                "the placement has {got} entries but there are {expected} pending pods"
            ),
            UnknownNode { index, nodes } => write!(
                f,
                "node index {index} does not exist (the cluster has {nodes} nodes)"
            ),
            OverCommitted {
                resource,
                requested,
                allocatable,
            } => write!(
                f,
                "{resource} is over-committed: {requested} requested, {allocatable} allocatable"
            ),
            NoGpus => write!(f, "the pod requests GPUs but the node has none"),
            GpuModel { model, accepted } => write!(
                f,
                "the node's GPU model {model} is not among the accepted models {accepted:?}"
            ),
            GpuDeviceCount { expected, got } => write!(
                f,
                "the pod holds {got} GPU device(s) but its request needs {expected}"
            ),
            GpuDeviceIndex { device, count } => write!(
                f,
                "GPU device {device} does not exist (the node has {count})"
            ),
            GpuDeviceRepeated { device } => write!(f, "GPU device {device} is listed twice"),
            GpuDeviceOverShared { device, used_milli } => write!(
                f,
                "GPU device {device} is over-shared: {used_milli} milli-GPU used of {MILLI_PER_GPU}"
            ),
            Unschedulable => write!(f, "the node is cordoned (unschedulable)"),
            UntoleratedTaint { taint } => write!(
                f,
                "the node's taint {taint} ({:?}) is not tolerated",
                taint.effect
            ),
            NodeSelector { key, wanted, found } => match found {
                Some(v) => write!(f, "nodeSelector wants {key}={wanted} but the node has {key}={v}"),
                None => write!(f, "nodeSelector wants {key}={wanted} but the node has no {key} label"),
            },
            NodeAffinity => write!(f, "no term of the required node affinity matches the node"),
            HostPort { port, other } => write!(
                f,
                "host port {}/{} is also used by pod {other}",
                port.port, port.protocol
            ),
            PodAntiAffinity { other, topology_key } => write!(
                f,
                "its required anti-affinity ({topology_key}) matches pod {other} in the same domain"
            ),
            ExistingPodAntiAffinity {
                other,
                topology_key,
            } => write!(
                f,
                "bound pod {other}'s required anti-affinity ({topology_key}) matches it in the same domain"
            ),
            PodAffinity {
                topology_key,
                detail,
            } => write!(
                f,
                "its required affinity ({topology_key}) has no matching pod in its domain ({detail})"
            ),
            MissingTopologyLabel { topology_key } => write!(
                f,
                "the node has no {topology_key} label, required by an affinity or hard spread constraint"
            ),
            TopologySpread {
                topology_key,
                domain,
                count,
                min,
                max_skew,
            } => write!(
                f,
                "topology spread on {topology_key} is skewed: {count} matching pods in {domain}, minimum {min}, max skew {max_skew}"
            ),
            GangPartial {
                gang,
                placed,
                min_member,
            } => write!(
                f,
                "gang {gang} has {placed} member(s) placed but needs {min_member} placed together, or none"
            ),
            Plugin { plugin, message } => write!(f, "plugin {plugin} rejects it: {message}"),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.pod.is_empty(), self.node_name.is_empty()) {
            (false, false) => write!(
                f,
                "pod {} on node {}: {}",
                self.pod, self.node_name, self.kind
            ),
            (false, true) => write!(f, "pod {}: {}", self.pod, self.kind),
            (true, false) => write!(f, "node {}: {}", self.node_name, self.kind),
            (true, true) => write!(f, "{}", self.kind),
        }
    }
}
