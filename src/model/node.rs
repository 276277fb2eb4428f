//! Nodes: allocatable resources, GPU devices, labels, taints, schedulability.

use super::gpu::NodeGpus;
use super::resources::Resources;
use super::selector::{Labels, Taint};
use serde::{Deserialize, Serialize};

/// A node as the scheduler sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Node name (unique in a cluster).
    pub name: String,
    /// Total capacity (informational; scheduling uses `allocatable`).
    pub capacity: Resources,
    /// What pods may use: the scheduler's budget.
    pub allocatable: Resources,
    /// GPU devices, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<NodeGpus>,
    /// Labels (including topology labels such as `topology.kubernetes.io/zone`).
    #[serde(default)]
    pub labels: Labels,
    /// Taints.
    #[serde(default)]
    pub taints: Vec<Taint>,
    /// `spec.unschedulable` (cordoned).
    #[serde(default)]
    pub unschedulable: bool,
}

impl Node {
    /// Number of GPU devices.
    pub fn gpu_count(&self) -> u32 {
        self.gpus.as_ref().map_or(0, |g| g.count)
    }

    /// GPU model, if the node has GPUs.
    pub fn gpu_model(&self) -> Option<&str> {
        self.gpus.as_ref().map(|g| g.model.as_str())
    }
}
