//! The independent validator: checks any placement against every hard constraint and
//! reports *all* violations, not only the first.
//!
//! It is written apart from the incremental bookkeeping the policies use: it never calls
//! `Cluster::used`, `gpu_free`, `insufficient`, `host_port_conflict`, the filters or
//! [`crate::place::FilterContext`]. It recomputes the final state from the raw [`Node`]
//! and [`Pod`] data: the pods already bound ([`Cluster::bound_pods`]) plus the placed
//! pending pods. Only label matching of node affinity reuses the model's
//! [`NodeSelector::matches`](crate::model::NodeSelector::matches) (model-level semantics).
//!
//! # What is checked
//! - the placement has one entry per pending pod, and every node index exists;
//! - per node, the sum of the requests of bound and newly placed pods (cpu, memory,
//!   ephemeral storage, extended resources, pod count) is at most allocatable;
//! - GPUs: the node has GPUs of an accepted model; device indices exist, are distinct
//!   and number one for a share, N for N whole devices, none without a GPU request; per
//!   device the sum of share milli-GPU plus 1000 per whole use is at most 1000;
//! - cordoned nodes (unless `node.kubernetes.io/unschedulable:NoSchedule` is tolerated),
//!   untolerated `NoSchedule`/`NoExecute` taints, `nodeSelector`, required node affinity;
//! - host ports unique per node (same port and protocol; a wildcard IP conflicts with all);
//! - inter-pod constraints of newly placed pods in the *final state* (see
//!   [`interpod`]): required anti-affinity both ways, required affinity with
//!   kube-scheduler's first-of-group rule, and `DoNotSchedule` topology spread;
//! - gangs among the pending pods: either none is placed or at least `min_member`.
//!
//! Constraints of pods that were already bound are not re-checked against each other
//! (they are "IgnoredDuringExecution"), but the per-node sums include them.

mod interpod;

use crate::model::{Binding, GpuAmount, Node, NodeId, Pod, Problem, MILLI_PER_GPU};
use crate::model::{HostPort, Taint, TaintEffect, Toleration, TolerationOperator};
use std::collections::BTreeMap;
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
        /// Sum of requests on the node (cpu in millicores, memory and storage in bytes).
        requested: u64,
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

/// A pod in the final state: bound before, or newly placed.
#[derive(Debug, Clone, Copy)]
struct Member<'a> {
    pod: &'a Pod,
    node: NodeId,
    devices: &'a [u32],
    /// Pending index for newly placed pods, `None` for bound ones.
    pending: Option<usize>,
}

/// Collects violations with pod and node names filled in.
struct Report<'a> {
    nodes: &'a [Node],
    out: Vec<Violation>,
}

impl Report<'_> {
    fn push(&mut self, pod: Option<(usize, &Pod)>, node: Option<NodeId>, kind: ViolationKind) {
        let node_name = node
            .and_then(|n| self.nodes.get(n))
            .map(|n| n.name.clone())
            .unwrap_or_default();
        self.out.push(Violation {
            pending_index: pod.map(|(i, _)| i),
            pod: pod.map(|(_, p)| p.key()).unwrap_or_default(),
            node: node.filter(|&n| n < self.nodes.len()),
            node_name,
            kind,
        });
    }
}

/// Checks a placement (one entry per pending pod) against every hard constraint.
/// Returns every violation found, in a deterministic order.
pub fn validate(problem: &Problem, placement: &[Option<Binding>]) -> Result<(), Vec<Violation>> {
    let nodes = problem.cluster.nodes();
    let mut report = Report {
        nodes,
        out: Vec::new(),
    };
    if placement.len() != problem.pending.len() {
        report.push(
            None,
            None,
            ViolationKind::WrongLength {
                expected: problem.pending.len(),
                got: placement.len(),
            },
        );
    }
    let mut members: Vec<Member> = problem
        .cluster
        .bound_pods()
        .map(|(_, pod, b)| Member {
            pod,
            node: b.node,
            devices: &b.gpu_devices,
            pending: None,
        })
        .collect();
    for (i, (pod, b)) in problem.pending.iter().zip(placement).enumerate() {
        let Some(b) = b else { continue };
        if b.node >= nodes.len() {
            report.push(
                Some((i, pod)),
                None,
                ViolationKind::UnknownNode {
                    index: b.node,
                    nodes: nodes.len(),
                },
            );
            continue;
        }
        check_static(&mut report, i, pod, &nodes[b.node], b);
        members.push(Member {
            pod,
            node: b.node,
            devices: &b.gpu_devices,
            pending: Some(i),
        });
    }
    let mut on_node: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (m, member) in members.iter().enumerate() {
        on_node[member.node].push(m);
    }
    for (n, node) in nodes.iter().enumerate() {
        let here: Vec<&Member> = on_node[n].iter().map(|&m| &members[m]).collect();
        check_resources(&mut report, n, node, &here);
        check_devices(&mut report, n, node, &here);
        check_host_ports(&mut report, n, &here);
    }
    interpod::check(&mut report, nodes, &members);
    check_gangs(&mut report, problem, placement);
    if report.out.is_empty() {
        Ok(())
    } else {
        Err(report.out)
    }
}

/// Whether one toleration tolerates a taint (Kubernetes `ToleratesTaint`), written
/// independently of the model's helper.
fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let effect_ok = t.effect.map_or(true, |e| e == taint.effect);
    let key_ok = t.key.is_empty() || t.key == taint.key;
    let value_ok = match t.operator {
        TolerationOperator::Exists => true,
        TolerationOperator::Equal => t.value == taint.value,
    };
    effect_ok && key_ok && value_ok
}

/// Checks of one placed pod against its node alone: cordon, taints, selectors, GPU
/// model and device list.
fn check_static(report: &mut Report, i: usize, pod: &Pod, node: &Node, b: &Binding) {
    let who = Some((i, pod));
    let at = Some(b.node);
    let cordon = Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        value: String::new(),
        effect: TaintEffect::NoSchedule,
    };
    if node.unschedulable && !pod.tolerations.iter().any(|t| tolerates(t, &cordon)) {
        report.push(who, at, ViolationKind::Unschedulable);
    }
    for taint in &node.taints {
        let hard = matches!(
            taint.effect,
            TaintEffect::NoSchedule | TaintEffect::NoExecute
        );
        if hard && !pod.tolerations.iter().any(|t| tolerates(t, taint)) {
            report.push(
                who,
                at,
                ViolationKind::UntoleratedTaint {
                    taint: taint.clone(),
                },
            );
        }
    }
    for (key, wanted) in &pod.node_selector {
        let found = node.labels.get(key);
        if found != Some(wanted) {
            report.push(
                who,
                at,
                ViolationKind::NodeSelector {
                    key: key.clone(),
                    wanted: wanted.clone(),
                    found: found.cloned(),
                },
            );
        }
    }
    if let Some(aff) = &pod.required_node_affinity {
        if !aff.matches(&node.name, &node.labels) {
            report.push(who, at, ViolationKind::NodeAffinity);
        }
    }
    let expected = match pod.gpu.amount {
        GpuAmount::None => 0,
        GpuAmount::Shared(_) => 1,
        GpuAmount::Whole(n) => n as usize,
    };
    if pod.gpu.amount.is_some() {
        match &node.gpus {
            None => report.push(who, at, ViolationKind::NoGpus),
            Some(g) if g.count == 0 => report.push(who, at, ViolationKind::NoGpus),
            Some(g) if !pod.gpu.models.is_empty() && !pod.gpu.models.contains(&g.model) => report
                .push(
                    who,
                    at,
                    ViolationKind::GpuModel {
                        model: g.model.clone(),
                        accepted: pod.gpu.models.clone(),
                    },
                ),
            Some(_) => {}
        }
    }
    if b.gpu_devices.len() != expected {
        report.push(
            who,
            at,
            ViolationKind::GpuDeviceCount {
                expected,
                got: b.gpu_devices.len(),
            },
        );
    }
    let count = node.gpus.as_ref().map_or(0, |g| g.count);
    let mut seen = Vec::new();
    for &d in &b.gpu_devices {
        if d >= count {
            report.push(who, at, ViolationKind::GpuDeviceIndex { device: d, count });
        } else if seen.contains(&d) {
            report.push(who, at, ViolationKind::GpuDeviceRepeated { device: d });
        }
        seen.push(d);
    }
}

/// Who to blame for a node-level excess: the newly placed pod whose addition (bound pods
/// first, then pending pods in input order) first crosses the limit, if any.
fn blame<'a>(
    here: &[&Member<'a>],
    limit: u64,
    amount: impl Fn(&Member) -> u64,
) -> Option<(usize, &'a Pod)> {
    let mut order: Vec<&&Member> = here.iter().collect();
    order.sort_by_key(|m| m.pending.map_or((0, 0), |i| (1, i)));
    let mut sum = 0u64;
    for m in order {
        sum = sum.saturating_add(amount(m));
        if sum > limit {
            return m.pending.map(|i| (i, m.pod));
        }
    }
    None
}

/// Per-node sums of requests against allocatable.
fn check_resources(report: &mut Report, n: NodeId, node: &Node, here: &[&Member]) {
    use crate::model::resources::{CPU, EPHEMERAL_STORAGE, MEMORY, PODS};
    type Getter = fn(&Member) -> u64;
    let fixed: [(&str, Getter, u64); 4] = [
        (
            CPU,
            |m| m.pod.requests.cpu_milli,
            node.allocatable.cpu_milli,
        ),
        (
            MEMORY,
            |m| m.pod.requests.memory_bytes,
            node.allocatable.memory_bytes,
        ),
        (
            EPHEMERAL_STORAGE,
            |m| m.pod.requests.ephemeral_storage_bytes,
            node.allocatable.ephemeral_storage_bytes,
        ),
        (PODS, |_| 1, node.allocatable.pods),
    ];
    for (name, get, limit) in fixed {
        let requested: u64 = here.iter().map(|m| get(m)).fold(0, u64::saturating_add);
        if requested > limit {
            let who = blame(here, limit, get);
            report.push(
                who,
                Some(n),
                ViolationKind::OverCommitted {
                    resource: name.to_string(),
                    requested,
                    allocatable: limit,
                },
            );
        }
    }
    let mut extended: BTreeMap<&str, u64> = BTreeMap::new();
    for m in here {
        for (k, v) in &m.pod.requests.extended {
            let e = extended.entry(k.as_str()).or_insert(0);
            *e = e.saturating_add(*v);
        }
    }
    for (name, requested) in extended {
        let limit = node.allocatable.extended.get(name).copied().unwrap_or(0);
        if requested > limit {
            let get = |m: &Member| m.pod.requests.extended.get(name).copied().unwrap_or(0);
            let who = blame(here, limit, get);
            report.push(
                who,
                Some(n),
                ViolationKind::OverCommitted {
                    resource: name.to_string(),
                    requested,
                    allocatable: limit,
                },
            );
        }
    }
}

/// Milli-GPU a pod takes on each device it holds.
fn milli_per_device(pod: &Pod) -> u64 {
    match pod.gpu.amount {
        GpuAmount::None => 0,
        GpuAmount::Shared(m) => u64::from(m),
        GpuAmount::Whole(_) => u64::from(MILLI_PER_GPU),
    }
}

/// Per-device sums of milli-GPU (valid device indices only; bad ones are reported by
/// [`check_static`]).
fn check_devices(report: &mut Report, n: NodeId, node: &Node, here: &[&Member]) {
    let count = node.gpus.as_ref().map_or(0, |g| g.count);
    for d in 0..count {
        let on_device = |m: &Member| {
            if m.devices.contains(&d) {
                milli_per_device(m.pod)
            } else {
                0
            }
        };
        let used: u64 = here.iter().map(|m| on_device(m)).sum();
        if used > u64::from(MILLI_PER_GPU) {
            let who = blame(here, u64::from(MILLI_PER_GPU), on_device);
            report.push(
                who,
                Some(n),
                ViolationKind::GpuDeviceOverShared {
                    device: d,
                    used_milli: u32::try_from(used).unwrap_or(u32::MAX),
                },
            );
        }
    }
}

/// Whether two host ports clash: same port and protocol, and the same IP or a wildcard
/// on either side (kube-scheduler's NodePorts semantics), written independently.
fn ports_clash(a: &HostPort, b: &HostPort) -> bool {
    let wildcard = |ip: &str| ip.is_empty() || ip == "0.0.0.0";
    a.port == b.port
        && a.protocol == b.protocol
        && (wildcard(&a.host_ip) || wildcard(&b.host_ip) || a.host_ip == b.host_ip)
}

/// Host ports unique per node; each clash involving a newly placed pod is reported once,
/// on the later pod.
fn check_host_ports(report: &mut Report, n: NodeId, here: &[&Member]) {
    for (j, later) in here.iter().enumerate() {
        let Some(i) = later.pending else { continue };
        for earlier in &here[..j] {
            let clash = later
                .pod
                .host_ports
                .iter()
                .find(|p| earlier.pod.host_ports.iter().any(|q| ports_clash(p, q)));
            if let Some(p) = clash {
                report.push(
                    Some((i, later.pod)),
                    Some(n),
                    ViolationKind::HostPort {
                        port: p.clone(),
                        other: earlier.pod.key(),
                    },
                );
            }
        }
    }
}

/// Gangs among the pending pods: none placed, or at least `min_member` placed.
/// Members already bound do not count (a gang is placed as a unit by one call).
fn check_gangs(report: &mut Report, problem: &Problem, placement: &[Option<Binding>]) {
    let mut gangs: BTreeMap<(String, String), (u32, Vec<usize>)> = BTreeMap::new();
    for (i, pod) in problem.pending.iter().enumerate() {
        if let Some(g) = &pod.gang {
            let e = gangs
                .entry((pod.namespace.clone(), g.name.clone()))
                .or_insert((g.min_member, Vec::new()));
            e.0 = e.0.max(g.min_member);
            if placement.get(i).is_some_and(|b| b.is_some()) {
                e.1.push(i);
            }
        }
    }
    for ((ns, name), (min_member, placed)) in gangs {
        if !placed.is_empty() && placed.len() < min_member as usize {
            let first = placed[0];
            report.push(
                Some((first, &problem.pending[first])),
                None,
                ViolationKind::GangPartial {
                    gang: format!("{ns}/{name}"),
                    placed: placed.len(),
                    min_member,
                },
            );
        }
    }
}
