//! The plugin API for Rust embedders: add your own hard filter and score to the online
//! policies, and your own hard constraint and objective term to the MILP, without forking.
//!
//! A [`Plugins`] set holds three kinds of plugin, each a trait object:
//! - [`FilterPlugin`]: a hard filter. Online policies skip the nodes it rejects (its
//!   message surfaces as [`Reason::Plugin`] in [`explain_with`]); the MILP drops the
//!   (pod, node) pairs it rejects from the program, its warm starts and its greedy tail;
//!   [`validate_with`] reports a placed pod on a rejected node as
//!   [`ViolationKind::Plugin`].
//! - [`ScorePlugin`]: a soft preference for the online policies, `0..=100` per feasible
//!   node, added to the policy's total score times [`ScorePlugin::weight`].
//! - [`MilpPlugin`]: for the MILP, a hard "this pod may not go on this node" rule
//!   ([`MilpPlugin::forbid`], also honoured by the online policies and the validator,
//!   so the warm starts and every check agree) and a cost per assigned pod
//!   ([`MilpPlugin::cost`]) added to the MILP's second goal (minimised).
//!
//! Attach them with [`OnlinePolicy::with_plugins`](crate::place::online::OnlinePolicy::with_plugins)
//! or [`MilpPlacer::with_plugins`](crate::place::milp::MilpPlacer::with_plugins); check
//! the answer with [`validate_with`]. See `docs/plugins.md` and
//! `examples/custom_plugin.rs`.
//!
//! # What a plugin may read
//! Plugins must be deterministic and should depend on the pod's spec (not its name) and
//! on the node's description: the MILP asks them once per class of identical pending pods
//! (equal in everything but the name) with the class's first pod, and asks with the
//! cluster as given, before the batch. Online policies ask with the cluster as it is at
//! each decision (the pods placed so far bound); the validator asks with the problem's
//! cluster (before the batch). A filter that depends on the pods the batch itself places
//! is therefore honoured online but cannot be checked by the validator.
//!
//! # Cost
//! With any plugin attached, online policies filter and score every node for every pod
//! (the node-class shortcut, which assumes a node's verdict depends only on its numbers,
//! is off), and the MILP neither aggregates identical nodes (the `pack` aggregated path)
//! nor truncates groups of identical empty nodes: plugins may tell such nodes apart. Large
//! instances are slower and the program larger; plugin-less runs are unchanged.
//!
//! This module owns the traits, the set and the plugin-aware checks; it never decides a
//! placement itself.

use super::explain::{explain, fit_error, Explanation};
use super::filter::Reason;
use super::validate::{validate, Violation, ViolationKind};
use super::{PlaceError, Placer, PolicyName, PolicyOptions};
use crate::model::{Binding, Cluster, Node, NodeId, Pod, Problem};
use std::fmt;
use std::sync::Arc;

/// A hard filter: a node it rejects never receives the pod.
pub trait FilterPlugin: Send + Sync {
    /// The plugin's name, shown in reasons and violations.
    fn name(&self) -> &str;

    /// `Ok` if `pod` may run on `node`, else why not (one short sentence). `cluster` is
    /// the cluster the decision is taken against (see the module docs).
    fn filter(&self, pod: &Pod, node: &Node, cluster: &Cluster) -> Result<(), String>;
}

/// A soft preference for online policies.
pub trait ScorePlugin: Send + Sync {
    /// The plugin's name.
    fn name(&self) -> &str;

    /// How much `pod` likes `node`, `0..=100` (higher is better; values outside are
    /// clamped, NaN counts as 0). Called only for feasible nodes.
    fn score(&self, pod: &Pod, node: &Node, cluster: &Cluster) -> f64;

    /// The weight of this score in the total (kube's default plugins weigh 1 to 3).
    fn weight(&self) -> f64 {
        1.0
    }
}

/// A hard constraint and an objective term for the MILP.
pub trait MilpPlugin: Send + Sync {
    /// The plugin's name, shown in reasons and violations.
    fn name(&self) -> &str;

    /// True if `pod` must not be placed on `node`: the pair gets no variable in the
    /// program. Honoured by every policy the plugin is attached to and by
    /// [`validate_with`]. The default forbids nothing.
    fn forbid(&self, pod: &Pod, node: &Node, cluster: &Cluster) -> bool {
        let _ = (pod, node, cluster);
        false
    }

    /// Cost of placing one `pod` on `node`, added to the MILP's second goal (which is
    /// minimised, after the number of placed pods is maximised), in that goal's units
    /// (`pack`: nodes; `balance`: utilisation; `fragmentation`: milli-GPU). Negative
    /// values reward the pair. Must be finite. The default costs nothing.
    fn cost(&self, pod: &Pod, node: &Node, cluster: &Cluster) -> f64 {
        let _ = (pod, node, cluster);
        0.0
    }
}

/// A set of plugins to attach to a policy. Cheap to clone (the plugins are shared).
#[derive(Clone, Default)]
pub struct Plugins {
    /// Hard filters, checked in order; the first that rejects gives the reason.
    pub filters: Vec<Arc<dyn FilterPlugin>>,
    /// Soft scores for online policies.
    pub scores: Vec<Arc<dyn ScorePlugin>>,
    /// Constraints and objective terms for the MILP.
    pub milp: Vec<Arc<dyn MilpPlugin>>,
}

impl fmt::Debug for Plugins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |v: Vec<&str>| v.join(", ");
        f.debug_struct("Plugins")
            .field(
                "filters",
                &names(self.filters.iter().map(|p| p.name()).collect()),
            )
            .field(
                "scores",
                &names(self.scores.iter().map(|p| p.name()).collect()),
            )
            .field("milp", &names(self.milp.iter().map(|p| p.name()).collect()))
            .finish()
    }
}

impl Plugins {
    /// An empty set.
    pub fn new() -> Self {
        Plugins::default()
    }

    /// Adds a hard filter.
    pub fn filter(mut self, p: impl FilterPlugin + 'static) -> Self {
        self.filters.push(Arc::new(p));
        self
    }

    /// Adds a score.
    pub fn score(mut self, p: impl ScorePlugin + 'static) -> Self {
        self.scores.push(Arc::new(p));
        self
    }

    /// Adds a MILP plugin.
    pub fn milp(mut self, p: impl MilpPlugin + 'static) -> Self {
        self.milp.push(Arc::new(p));
        self
    }

    /// True if the set holds no plugin at all.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty() && self.scores.is_empty() && self.milp.is_empty()
    }

    /// True if some plugin can reject a (pod, node) pair (a filter or a MILP plugin).
    pub fn has_hard(&self) -> bool {
        !self.filters.is_empty() || !self.milp.is_empty()
    }

    /// The hard plugins only (filters and MILP plugins), as the MILP's warm starts and
    /// greedy tail use them.
    pub fn hard_only(&self) -> Plugins {
        Plugins {
            filters: self.filters.clone(),
            scores: Vec::new(),
            milp: self.milp.clone(),
        }
    }

    /// Every hard plugin's verdict on `pod` at `node` of `cluster`: the first filter
    /// that rejects, else the first MILP plugin that forbids.
    pub fn check(&self, pod: &Pod, node: NodeId, cluster: &Cluster) -> Result<(), Reason> {
        let n = &cluster[node];
        for p in &self.filters {
            if let Err(message) = p.filter(pod, n, cluster) {
                return Err(Reason::Plugin {
                    name: p.name().to_string(),
                    message,
                });
            }
        }
        for p in &self.milp {
            if p.forbid(pod, n, cluster) {
                return Err(Reason::Plugin {
                    name: p.name().to_string(),
                    message: "forbidden by the MILP plugin".to_string(),
                });
            }
        }
        Ok(())
    }

    /// The weighted sum of the score plugins for `pod` at `node` (each clamped to
    /// `0..=100`).
    pub fn score_of(&self, pod: &Pod, node: NodeId, cluster: &Cluster) -> f64 {
        let n = &cluster[node];
        self.scores
            .iter()
            .map(|p| {
                let s = p.score(pod, n, cluster);
                let s = if s.is_nan() { 0.0 } else { s.clamp(0.0, 100.0) };
                p.weight() * s
            })
            .sum()
    }

    /// The summed [`MilpPlugin::cost`] of one `pod` on `node` (non-finite costs count 0).
    pub fn cost_of(&self, pod: &Pod, node: NodeId, cluster: &Cluster) -> f64 {
        let n = &cluster[node];
        self.milp
            .iter()
            .map(|p| p.cost(pod, n, cluster))
            .filter(|c| c.is_finite())
            .sum()
    }

    /// The MILP plugins' total cost of a placement (pending order), asked against the
    /// problem's cluster.
    pub fn placement_cost(&self, problem: &Problem, placement: &[Option<Binding>]) -> f64 {
        if self.milp.is_empty() {
            return 0.0;
        }
        problem
            .pending
            .iter()
            .zip(placement)
            .filter_map(|(p, b)| b.as_ref().map(|b| (p, b.node)))
            .filter(|&(_, n)| problem.cluster.node(n).is_some())
            .map(|(p, n)| self.cost_of(p, n, &problem.cluster))
            .sum()
    }
}

/// [`policy_by_name`](super::policy_by_name) with `plugins` attached: the policy called
/// `name` (any of [`POLICY_NAMES`](super::POLICY_NAMES)) built from `opts`.
pub fn policy_with_plugins(
    name: &str,
    opts: &PolicyOptions,
    plugins: Plugins,
) -> Result<Box<dyn Placer>, PlaceError> {
    name.parse::<PolicyName>()?
        .build_with_plugins(opts, plugins)
}

/// [`validate`] plus the plugins' hard rules: every placed pending pod's node must pass
/// every [`FilterPlugin`] and no [`MilpPlugin`] may forbid it, asked against the
/// problem's cluster (before the batch). Reports every violation.
pub fn validate_with(
    problem: &Problem,
    placement: &[Option<Binding>],
    plugins: &Plugins,
) -> Result<(), Vec<Violation>> {
    let mut out = validate(problem, placement).err().unwrap_or_default();
    for (i, (pod, b)) in problem.pending.iter().zip(placement).enumerate() {
        let Some(b) = b else { continue };
        let Some(node) = problem.cluster.node(b.node) else {
            continue; // reported by `validate` as an unknown node
        };
        if let Err(Reason::Plugin { name, message }) = plugins.check(pod, b.node, &problem.cluster)
        {
            out.push(Violation {
                pending_index: Some(i),
                pod: pod.key(),
                node: Some(b.node),
                node_name: node.name.clone(),
                kind: ViolationKind::Plugin {
                    plugin: name,
                    message,
                },
            });
        }
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(out)
    }
}

/// [`explain`] with the plugins' hard rules: a node the built-in filters accept but a
/// plugin rejects moves from `feasible_nodes` to `per_node` with [`Reason::Plugin`], and
/// the summary is rewritten when that leaves no feasible node (or changes the count).
/// Plugins are asked against the cluster with the placement applied, as the built-in
/// filters are.
pub fn explain_with(
    problem: &Problem,
    placement: &[Option<Binding>],
    plugins: &Plugins,
) -> Vec<Explanation> {
    let mut out = explain(problem, placement);
    if !plugins.has_hard() {
        return out;
    }
    let mut cluster = problem.cluster.clone();
    for (pod, b) in problem.pending.iter().zip(placement) {
        if let Some(b) = b {
            let _ = cluster.bind(pod.clone(), b.node, Some(b.gpu_devices.clone()));
        }
    }
    for e in &mut out {
        let pod = &problem.pending[e.pending_index];
        let before = e.feasible_nodes.len();
        let mut still = Vec::new();
        for &n in &e.feasible_nodes {
            match plugins.check(pod, n, &cluster) {
                Ok(()) => still.push(n),
                Err(r) => e.per_node.push((n, vec![r])),
            }
        }
        e.per_node.sort_by_key(|(n, _)| *n);
        e.feasible_nodes = still;
        if e.feasible_nodes.is_empty() {
            e.summary = fit_error(cluster.node_count(), &e.per_node);
        } else if before != e.feasible_nodes.len() && pod.gang.is_none() {
            e.summary = format!(
                "fits on {} node(s) but was not placed by the policy",
                e.feasible_nodes.len()
            );
        }
    }
    out
}
