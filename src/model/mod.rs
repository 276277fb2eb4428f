//! The cluster as plain data: resources with explicit units, GPU devices, nodes, pods and
//! their constraints, and the [`Cluster`] that keeps per-node free capacity in sync.
//!
//! This module owns no policy: it never decides where a pod goes.

mod build;
pub mod cluster;
pub mod gpu;
pub mod node;
pub mod pod;
pub mod quantity;
pub mod resources;
pub mod selector;

pub use build::{DEFAULT_MAX_PODS, GIB, HOSTNAME_LABEL};
pub use cluster::{Binding, Cluster, ClusterError, NodeId, PodId, Problem};
pub use gpu::{GpuAmount, GpuRequest, NodeGpus, MAX_GPUS_PER_NODE, MILLI_PER_GPU};
pub use node::Node;
pub use pod::{Gang, HostPort, Pod, PodAffinityTerm, TopologySpreadConstraint, WhenUnsatisfiable};
pub use quantity::{Quantity, QuantityError};
pub use resources::Resources;
pub use selector::{
    LabelSelector, Labels, NodeSelector, NodeSelectorTerm, Operator, PreferredTerm, Requirement,
    Taint, TaintEffect, Toleration, TolerationOperator,
};
