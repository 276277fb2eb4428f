//! Pods: requests, placement constraints, priority and gang membership.

use super::gpu::GpuRequest;
use super::resources::Resources;
use super::selector::{LabelSelector, Labels, NodeSelector, PreferredTerm, Toleration};
use serde::{Deserialize, Serialize};

/// A required pod affinity or anti-affinity term: pods matching `selector` in the
/// namespaces `namespaces` (empty = the pod's own), counted per value of `topology_key`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodAffinityTerm {
    /// Which pods the term is about.
    pub selector: LabelSelector,
    /// Namespaces to look in; empty means the pod's own namespace.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Node label whose value defines a topology domain (e.g. `kubernetes.io/hostname`).
    pub topology_key: String,
}

impl PodAffinityTerm {
    /// Whether `other` (in namespace `other_ns`, with `other_labels`) is matched by this
    /// term of a pod living in `own_ns`.
    pub fn selects(&self, own_ns: &str, other_ns: &str, other_labels: &Labels) -> bool {
        let ns_ok = if self.namespaces.is_empty() {
            own_ns == other_ns
        } else {
            self.namespaces.iter().any(|n| n == other_ns)
        };
        ns_ok && self.selector.matches(other_labels)
    }
}

/// What to do when a topology spread constraint cannot be met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WhenUnsatisfiable {
    /// Hard constraint: filter nodes that would break `max_skew`.
    DoNotSchedule,
    /// Soft constraint: prefer nodes that reduce skew.
    ScheduleAnyway,
}

/// A topology spread constraint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologySpreadConstraint {
    /// Largest allowed difference between a domain's matching pod count and the minimum.
    pub max_skew: u32,
    /// Node label defining domains.
    pub topology_key: String,
    /// Hard or soft.
    pub when_unsatisfiable: WhenUnsatisfiable,
    /// Pods counted (in the pod's own namespace).
    pub selector: LabelSelector,
}

/// A host port a container binds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPort {
    /// Port number.
    pub port: u16,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// Host IP; empty or `0.0.0.0` means all addresses.
    #[serde(default)]
    pub host_ip: String,
}

impl HostPort {
    /// Whether two host ports conflict (kube-scheduler's NodePorts semantics).
    pub fn conflicts(&self, other: &HostPort) -> bool {
        if self.port != other.port || self.protocol != other.protocol {
            return false;
        }
        let wild = |ip: &str| ip.is_empty() || ip == "0.0.0.0";
        wild(&self.host_ip) || wild(&other.host_ip) || self.host_ip == other.host_ip
    }
}

/// An all-or-nothing group: either at least `min_member` of the group's pods are placed,
/// or none is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gang {
    /// Group name (unique per namespace).
    pub name: String,
    /// Minimum number of members that must be placed together.
    pub min_member: u32,
}

/// A pod as the scheduler sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pod {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Labels.
    #[serde(default)]
    pub labels: Labels,
    /// Resource requests (sum over containers, max with init containers), without GPUs.
    pub requests: Resources,
    /// GPU request.
    #[serde(default)]
    pub gpu: GpuRequest,
    /// Node it is bound to, if any.
    #[serde(default)]
    pub node_name: Option<String>,
    /// GPU devices it holds on its node, if bound and using GPUs. Empty for a bound GPU
    /// pod means "not recorded": the cluster assigns devices when it adds the pod.
    #[serde(default)]
    pub gpu_devices: Vec<u32>,
    /// `spec.nodeSelector`.
    #[serde(default)]
    pub node_selector: Labels,
    /// Required node affinity.
    #[serde(default)]
    pub required_node_affinity: Option<NodeSelector>,
    /// Preferred node affinity terms.
    #[serde(default)]
    pub preferred_node_affinity: Vec<PreferredTerm>,
    /// Tolerations.
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    /// Required pod affinity terms.
    #[serde(default)]
    pub pod_affinity: Vec<PodAffinityTerm>,
    /// Required pod anti-affinity terms.
    #[serde(default)]
    pub pod_anti_affinity: Vec<PodAffinityTerm>,
    /// Topology spread constraints.
    #[serde(default)]
    pub topology_spread: Vec<TopologySpreadConstraint>,
    /// Host ports.
    #[serde(default)]
    pub host_ports: Vec<HostPort>,
    /// Priority (higher is placed first).
    #[serde(default)]
    pub priority: i32,
    /// Gang membership.
    #[serde(default)]
    pub gang: Option<Gang>,
}

impl Pod {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// True if the pod has any inter-pod constraint (affinity, anti-affinity, spread).
    pub fn has_inter_pod_constraints(&self) -> bool {
        !self.pod_affinity.is_empty()
            || !self.pod_anti_affinity.is_empty()
            || !self.topology_spread.is_empty()
    }
}
