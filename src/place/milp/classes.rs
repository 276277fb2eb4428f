//! Grouping pending pods into classes of identical pods, and splitting them between the
//! MILP and the greedy tail.
//!
//! Two pending pods are in one class when everything the hard constraints and the
//! objective read is equal: requests, GPU request, node selector, required node
//! affinity, tolerations, anti-affinity terms, host ports, priority, labels, namespace and
//! gang. Soft preferences are ignored (the MILP does not score them).
//!
//! Pods with required pod *affinity* or DoNotSchedule/ScheduleAnyway *topology spread*
//! are not modelled: they (and every member of a gang holding one) go to the greedy tail,
//! which places them after the MILP's pods with the full kube filters.

use crate::model::Pod;
use std::collections::BTreeMap;

/// A class of identical pending pods.
#[derive(Debug, Clone)]
pub(crate) struct Class {
    /// Indices into `problem.pending`, ascending.
    pub members: Vec<usize>,
    /// Priority weight of one pod (see [`priority_weights`]).
    pub weight: f64,
}

impl Class {
    /// The first member, standing for the class.
    pub fn rep(&self) -> usize {
        self.members[0]
    }

    /// Number of pods.
    pub fn size(&self) -> usize {
        self.members.len()
    }
}

/// A gang modelled by the MILP.
#[derive(Debug, Clone)]
pub(crate) struct GangDef {
    /// Member classes.
    pub classes: Vec<usize>,
    /// Pending members.
    pub size: usize,
    /// All-or-nothing threshold.
    pub min_member: usize,
}

/// The split of the pending pods.
#[derive(Debug, Clone, Default)]
pub(crate) struct Classes {
    /// Classes placed by the MILP.
    pub classes: Vec<Class>,
    /// Gangs among them.
    pub gangs: Vec<GangDef>,
    /// Pending indices left to the greedy tail (affinity or spread, or in such a gang).
    pub greedy_tail: Vec<usize>,
}

/// The weight of one placed pod in the first objective: `1 + rank`, where `rank` is the
/// position of the pod's priority among the distinct priorities of the pending pods,
/// ascending (the lowest priority weighs 1).
pub fn priority_weights(pending: &[Pod]) -> Vec<f64> {
    let mut prios: Vec<i32> = pending.iter().map(|p| p.priority).collect();
    prios.sort_unstable();
    prios.dedup();
    pending
        .iter()
        .map(|p| 1.0 + prios.binary_search(&p.priority).unwrap_or(0) as f64)
        .collect()
}

fn needs_greedy(p: &Pod) -> bool {
    !p.pod_affinity.is_empty() || !p.topology_spread.is_empty()
}

fn gang_key(p: &Pod) -> Option<(String, String)> {
    p.gang
        .as_ref()
        .map(|g| (p.namespace.clone(), g.name.clone()))
}

/// The signature of a pod: the pod with its identity and soft fields cleared, as JSON.
fn signature(p: &Pod) -> String {
    let mut t = p.clone();
    t.name.clear();
    t.node_name = None;
    t.gpu_devices.clear();
    t.preferred_node_affinity.clear();
    serde_json::to_string(&t).unwrap_or_default()
}

/// Groups the pending pods.
pub(crate) fn group(pending: &[Pod]) -> Classes {
    let weights = priority_weights(pending);
    let mut tail_gangs = std::collections::BTreeSet::new();
    for p in pending.iter().filter(|p| needs_greedy(p)) {
        if let Some(k) = gang_key(p) {
            tail_gangs.insert(k);
        }
    }
    let mut out = Classes::default();
    let mut by_sig: BTreeMap<String, usize> = BTreeMap::new();
    let mut gang_index: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, p) in pending.iter().enumerate() {
        let gk = gang_key(p);
        if needs_greedy(p) || gk.as_ref().is_some_and(|k| tail_gangs.contains(k)) {
            out.greedy_tail.push(i);
            continue;
        }
        let gang = gk.map(|k| {
            let next = out.gangs.len();
            let g = *gang_index.entry(k).or_insert(next);
            if g == next {
                out.gangs.push(GangDef {
                    classes: Vec::new(),
                    size: 0,
                    min_member: p.gang.as_ref().map_or(0, |g| g.min_member as usize),
                });
            }
            out.gangs[g].size += 1;
            g
        });
        let sig = signature(p);
        let next = out.classes.len();
        let c = *by_sig.entry(sig).or_insert(next);
        if c == next {
            out.classes.push(Class {
                members: Vec::new(),
                weight: weights[i],
            });
            if let Some(g) = gang {
                out.gangs[g].classes.push(c);
            }
        }
        out.classes[c].members.push(i);
    }
    out
}
