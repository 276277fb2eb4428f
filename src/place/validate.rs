//! The independent validator: checks any placement against every hard constraint and
//! reports *all* violations, not only the first.
//!
//! It is written apart from the incremental bookkeeping the policies use: it never calls
//! `Cluster::used`, `gpu_free`, `insufficient`, `host_port_conflict`, the filters or
//! [`crate::place::FilterContext`]. It recomputes the final state from the raw [`Node`]
//! and [`Pod`] data: the pods already bound
//! ([`Cluster::bound_pods`](crate::model::Cluster::bound_pods)) plus the placed pending
//! pods. Only label matching of node affinity reuses the model's
//! [`NodeSelector::matches`](crate::model::NodeSelector::matches) (model-level semantics).
//!
//! # What is checked
//! - the placement has one entry per pending pod, and every node index exists;
//! - per node, the sum of the requests of bound and newly placed pods (cpu, memory,
//!   ephemeral storage, extended resources, pod count) is at most allocatable; the sums
//!   are taken in `u128`, so no request, however large, can wrap into a fit;
//! - GPUs: the node has GPUs of an accepted model; device indices exist, are distinct
//!   and number one for a share, N for N whole devices, none without a GPU request; per
//!   device the sum of share milli-GPU plus 1000 per whole use is at most 1000;
//! - cordoned nodes (unless `node.kubernetes.io/unschedulable:NoSchedule` is tolerated),
//!   untolerated `NoSchedule`/`NoExecute` taints, `nodeSelector`, required node affinity;
//! - host ports unique per node (same port and protocol; a wildcard IP conflicts with all);
//! - inter-pod constraints of newly placed pods in the *final state* (below): required
//!   anti-affinity both ways, required affinity with kube-scheduler's first-of-group
//!   rule, and `DoNotSchedule` topology spread;
//! - gangs among the pending pods: either none is placed or at least `min_member`.
//!
//! # Inter-pod semantics (final state)
//! - **Anti-affinity**: for a placed pod `p` and each of its required anti-affinity terms,
//!   no other pod matched by the term runs on a node with the same value of the term's
//!   topology key as `p`'s node (a node without the key puts `p` in no domain). And no
//!   *bound* pod whose anti-affinity term matches `p` has `p` in its domain (clashes
//!   between two placed pods are reported once, from the pod whose term it is).
//! - **Affinity** (kube-scheduler's semantics): `p`'s node must carry every term's
//!   topology key; each term must match some other pod in `p`'s domain. Otherwise `p` is
//!   accepted only as the *first of its group*: it matches all of its own terms, no bound
//!   pod (on a node with the key) matches any of its terms, and the placed pods relying
//!   on this same exception can be ordered so that each comes before the others matching
//!   its terms (no cycle of "q matches a term of p" among them — two replicas of a
//!   self-affine group in different domains form such a cycle). Pods matching `p`'s
//!   terms without relying on the exception may have been placed after `p`, as the
//!   scheduler would have allowed. Finally the pods whose partners exist must have been
//!   placeable one at a time: a group split over two domains, where the domain without
//!   the first pod holds only pods that need each other, is reported. The order this
//!   simulates is a heuristic: pods without affinity terms are assumed to come after
//!   every claim, and forced claimants first, so with several groups whose selectors
//!   match each other's pods it can misjudge rare cases; for replica groups (every
//!   matching pod carries the same term) it is exact.
//! - **Topology spread** (`DoNotSchedule` only): for a placed pod `p` and each hard
//!   constraint `c`, the *eligible* nodes pass `p`'s node selector and required node
//!   affinity and carry the keys of all of `p`'s hard constraints (kube's default
//!   `nodeAffinityPolicy: Honor`, `nodeTaintsPolicy: Ignore`). Counting the pods of `p`'s
//!   namespace matched by `c`'s selector on eligible nodes, per domain, `p`'s domain count
//!   minus the minimum over eligible domains must be at most `maxSkew`. A node without
//!   the key is a violation ([`ViolationKind::MissingTopologyLabel`]).
//!
//! Constraints of pods that were already bound are not re-checked against each other
//! (they are "IgnoredDuringExecution"), but the per-node sums include them.

mod interpod;
mod spread;
mod violation;

pub use violation::{Violation, ViolationKind};

use crate::model::{Binding, GpuAmount, Node, NodeId, Pod, Problem, MILLI_PER_GPU};
use crate::model::{HostPort, Taint, TaintEffect, Toleration, TolerationOperator};
use std::collections::BTreeMap;

/// A pod in the final state: bound before, or newly placed.
#[derive(Debug, Clone, Copy)]
struct Member<'a> {
    pod: &'a Pod,
    node: NodeId,
    devices: &'a [u32],
    /// Pending index for newly placed pods, `None` for bound ones.
    pending: Option<usize>,
}

/// The cluster's node slots as the validator reads them: `None` for a removed node.
/// Built from the cluster's nodes alone, not from its bookkeeping.
pub(super) struct Nodes<'a>(Vec<Option<&'a Node>>);

impl<'a> Nodes<'a> {
    fn of(cluster: &'a crate::model::Cluster) -> Self {
        let mut slots = vec![None; cluster.node_slots()];
        for (id, n) in cluster.nodes() {
            slots[id] = Some(n);
        }
        Nodes(slots)
    }

    /// Node `id` if it is live.
    pub(super) fn get(&self, id: NodeId) -> Option<&'a Node> {
        self.0.get(id.index()).copied().flatten()
    }

    /// Number of slots.
    pub(super) fn slots(&self) -> usize {
        self.0.len()
    }

    /// Every slot, ascending: `None` where a node was removed.
    pub(super) fn slot_iter(&self) -> impl Iterator<Item = Option<&'a Node>> + '_ {
        self.0.iter().copied()
    }

    /// The live nodes with their ids, ascending.
    pub(super) fn iter(&self) -> impl Iterator<Item = (NodeId, &'a Node)> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (NodeId::from_index(i), n)))
    }
}

impl<'a> std::ops::Index<NodeId> for Nodes<'a> {
    type Output = Node;

    /// A live node (members are only ever on live nodes: the validator reports the others
    /// first).
    fn index(&self, id: NodeId) -> &Node {
        self.get(id).expect("validator: member on a live node")
    }
}

/// Collects violations with pod and node names filled in.
struct Report<'a> {
    nodes: &'a Nodes<'a>,
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
            node: node.filter(|&n| self.nodes.get(n).is_some()),
            node_name,
            kind,
        });
    }
}

/// Checks a placement (one entry per pending pod) against every hard constraint.
/// Returns every violation found, in a deterministic order.
pub fn validate(problem: &Problem, placement: &[Option<Binding>]) -> Result<(), Vec<Violation>> {
    let nodes = &Nodes::of(&problem.cluster);
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
        if nodes.get(b.node).is_none() {
            report.push(
                Some((i, pod)),
                None,
                ViolationKind::UnknownNode {
                    index: b.node,
                    nodes: nodes.iter().count(),
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
    let mut on_node: Vec<Vec<usize>> = vec![Vec::new(); nodes.slots()];
    for (m, member) in members.iter().enumerate() {
        on_node[member.node].push(m);
    }
    for (n, node) in nodes.iter() {
        let here: Vec<&Member> = on_node[n].iter().map(|&m| &members[m]).collect();
        check_resources(&mut report, n, node, &here);
        check_devices(&mut report, n, node, &here);
        check_host_ports(&mut report, n, &here);
    }
    interpod::check(&mut report, nodes, &members);
    spread::spread(&mut report, nodes, &members);
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
    let effect_ok = t.effect.is_none_or(|e| e == taint.effect);
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
    let mut sum = 0u128;
    for m in order {
        sum += u128::from(amount(m));
        if sum > u128::from(limit) {
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
        let requested: u128 = here.iter().map(|m| u128::from(get(m))).sum();
        if requested > u128::from(limit) {
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
    let mut extended: BTreeMap<&str, u128> = BTreeMap::new();
    for m in here {
        for (k, v) in &m.pod.requests.extended {
            *extended.entry(k.as_str()).or_insert(0) += u128::from(*v);
        }
    }
    for (name, requested) in extended {
        let limit = node.allocatable.extended.get(name).copied().unwrap_or(0);
        if requested > u128::from(limit) {
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

/// Reports each of `keys` that member `i`'s node lacks (`MissingTopologyLabel`); true if
/// any was missing.
fn report_missing_keys<'k>(
    report: &mut Report,
    nodes: &Nodes,
    i: usize,
    p: &Member,
    keys: impl IntoIterator<Item = &'k str>,
) -> bool {
    let mut missing = false;
    for k in keys {
        if !nodes[p.node].labels.contains_key(k) {
            missing = true;
            report.push(
                Some((i, p.pod)),
                Some(p.node),
                ViolationKind::MissingTopologyLabel {
                    topology_key: k.to_string(),
                },
            );
        }
    }
    missing
}
