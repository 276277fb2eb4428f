//! One scheduling interface for everything that schedules: the simulator, the extender
//! and a control plane's scheduling loop.
//!
//! A [`Scheduler`] owns the live cluster and one policy. It is told about cluster changes
//! (nodes added, replaced, cordoned or removed; pods bound, unbound or evicted) and
//! decides where pods go — one pod, or a batch with priorities and gangs — by a
//! [`Deadline`] taken from an injected [`Clock`](super::clock::Clock): wall time for a
//! live system, a [`ManualClock`](super::clock::ManualClock) that the simulator moves
//! from event to event. Online policies keep an incremental [`Session`]; batch policies
//! (the MILP) solve the batch against the current cluster by the deadline, and their
//! answer is checked by the independent validator before anything is bound.
//!
//! ```
//! use plimsoll::model::{Cluster, Node, Pod, GIB};
//! use plimsoll::place::clock::{ManualClock, SharedClock};
//! use plimsoll::place::scheduler::Scheduler;
//! use plimsoll::place::PolicyOptions;
//! use std::sync::Arc;
//!
//! let clock: SharedClock = Arc::new(ManualClock::new());
//! let cluster = Cluster::new(vec![Node::new("a", 4000, 8 * GIB)]).unwrap();
//! let mut s = Scheduler::by_name("best-fit", &PolicyOptions::default(), cluster, clock).unwrap();
//! let (_, b) = s.place_one(Pod::new("web", 1000, GIB)).unwrap().expect("fits");
//! assert_eq!(s.cluster()[b.node].name, "a");
//! let b = s.add_node(Node::new("b", 8000, 16 * GIB)).unwrap();
//! s.set_cordoned(b, true).unwrap();
//! let placed = s.place_batch(vec![Pod::new("x", 3000, GIB), Pod::new("y", 3000, GIB)]).unwrap();
//! assert_eq!(placed.placed.iter().flatten().count(), 1); // `b` is cordoned
//! ```

use super::clock::{Deadline, SharedClock};
use super::online::units::place_units;
use super::online::{OnlinePolicy, Session};
use super::registry::{PolicyName, PolicyOptions};
use super::validate::{self, Violation};
use super::{PlaceError, Placer, SolveStats};
use crate::model::{Binding, Cluster, ClusterError, Node, NodeId, Pod, PodId, Problem};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Why a scheduling call failed. Nothing is bound when it does.
#[derive(Debug, Error)]
pub enum SchedulerError {
    /// The policy failed.
    #[error(transparent)]
    Place(#[from] PlaceError),
    /// A change or binding was refused by the cluster.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The batch policy's answer failed the validator (a policy bug): nothing was bound.
    #[error("policy {policy} returned a placement the validator rejects: {}", first(.violations))]
    Invalid {
        /// The policy's name.
        policy: String,
        /// Every violation found.
        violations: Vec<Violation>,
    },
}

fn first(v: &[Violation]) -> String {
    match v {
        [] => "no violation listed".into(),
        [one] => one.to_string(),
        [one, rest @ ..] => format!("{one} (and {} more)", rest.len()),
    }
}

/// What a batch decision did.
#[derive(Debug, Clone, Default)]
pub struct BatchDecision {
    /// One entry per pod of the batch, in batch order: its id and binding if it was
    /// placed (and is now bound), `None` if it waits.
    pub placed: Vec<Option<(PodId, Binding)>>,
    /// How the policy's solve went (batch policies; online ones fill the time only).
    pub stats: SolveStats,
}

enum Mode {
    Online(Box<Session<'static>>),
    Batch {
        placer: Arc<dyn Placer>,
        cluster: Box<Cluster>,
    },
}

/// A live cluster and the policy that fills it (see the module docs).
pub struct Scheduler {
    mode: Mode,
    name: String,
    clock: SharedClock,
    /// Budget of a batch decision, from the moment it starts.
    budget: Duration,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("policy", &self.name)
            .field("online", &self.is_online())
            .field("nodes", &self.cluster().node_count())
            .field("bound", &self.cluster().bound_count())
            .field("budget", &self.budget)
            .finish()
    }
}

impl Scheduler {
    /// An online policy over `cluster`: pods are placed one at a time on an incremental
    /// session.
    pub fn online(policy: &OnlinePolicy, cluster: Cluster, clock: SharedClock) -> Self {
        Scheduler {
            name: policy.kind.name().to_string(),
            mode: Mode::Online(Box::new(policy.session(cluster))),
            clock,
            budget: Duration::ZERO,
        }
    }

    /// A batch policy over `cluster`: each batch is solved by the policy's own budget
    /// ([`Placer::budget`], none if it has none) after it starts; see
    /// [`Scheduler::with_budget`].
    pub fn batch(placer: Arc<dyn Placer>, cluster: Cluster, clock: SharedClock) -> Self {
        Scheduler {
            name: placer.name().to_string(),
            budget: placer.budget().unwrap_or(Duration::ZERO),
            mode: Mode::Batch {
                placer,
                cluster: Box::new(cluster),
            },
            clock,
        }
    }

    /// The budget of every later batch decision.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// The policy called `name` (any of [`POLICY_NAMES`](super::POLICY_NAMES)) built from
    /// `opts`: online kinds run online, the MILP in batches of `opts.time_limit_seconds`.
    pub fn by_name(
        name: &str,
        opts: &PolicyOptions,
        cluster: Cluster,
        clock: SharedClock,
    ) -> Result<Self, PlaceError> {
        match name.parse::<PolicyName>()? {
            PolicyName::Online(k) => Ok(Scheduler::online(
                &OnlinePolicy::new(k, opts.seed),
                cluster,
                clock,
            )),
            #[allow(unreachable_patterns)]
            other => Ok(Scheduler::batch(other.build(opts)?.into(), cluster, clock)),
        }
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The clock decisions take their deadlines from.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// True for an online policy.
    pub fn is_online(&self) -> bool {
        matches!(self.mode, Mode::Online(_))
    }

    /// The cluster with everything bound so far.
    pub fn cluster(&self) -> &Cluster {
        match &self.mode {
            Mode::Online(s) => s.cluster(),
            Mode::Batch { cluster, .. } => cluster,
        }
    }

    /// The online session (online policies only): for reading scores and for the state
    /// an embedder copies to serve concurrent reads.
    pub fn session(&self) -> Option<&Session<'static>> {
        match &self.mode {
            Mode::Online(s) => Some(s),
            Mode::Batch { .. } => None,
        }
    }

    /// The online session, mutably (online policies only).
    pub fn session_mut(&mut self) -> Option<&mut Session<'static>> {
        match &mut self.mode {
            Mode::Online(s) => Some(s),
            Mode::Batch { .. } => None,
        }
    }

    /// Consumes the scheduler, returning its cluster.
    pub fn into_cluster(self) -> Cluster {
        match self.mode {
            Mode::Online(s) => s.into_cluster(),
            Mode::Batch { cluster, .. } => *cluster,
        }
    }

    /// Adds a node; returns its id.
    pub fn add_node(&mut self, node: Node) -> Result<NodeId, ClusterError> {
        match &mut self.mode {
            Mode::Online(s) => s.add_node(node),
            Mode::Batch { cluster, .. } => cluster.add_node(node),
        }
    }

    /// Replaces node `id`'s description; returns the old one.
    pub fn replace_node(&mut self, id: NodeId, node: Node) -> Result<Node, ClusterError> {
        match &mut self.mode {
            Mode::Online(s) => s.replace_node(id, node),
            Mode::Batch { cluster, .. } => cluster.replace_node(id, node),
        }
    }

    /// Cordons (`true`) or uncordons node `id`; returns whether it was cordoned.
    pub fn set_cordoned(&mut self, id: NodeId, cordoned: bool) -> Result<bool, ClusterError> {
        match &mut self.mode {
            Mode::Online(s) => s.set_cordoned(id, cordoned),
            Mode::Batch { cluster, .. } => cluster.set_cordoned(id, cordoned),
        }
    }

    /// Removes node `id`, evicting its pods (returned with the bindings they had).
    pub fn remove_node(&mut self, id: NodeId) -> Result<(Node, Vec<(Pod, Binding)>), ClusterError> {
        match &mut self.mode {
            Mode::Online(s) => s.remove_node(id),
            Mode::Batch { cluster, .. } => cluster.remove_node(id),
        }
    }

    /// Binds `pod` where `binding` says (a decision taken elsewhere, or a pod found
    /// already running).
    pub fn bind(&mut self, pod: Pod, binding: &Binding) -> Result<PodId, ClusterError> {
        match &mut self.mode {
            Mode::Online(s) => s.bind(pod, binding),
            Mode::Batch { cluster, .. } => {
                cluster.bind(pod, binding.node, Some(binding.gpu_devices.clone()))
            }
        }
    }

    /// Removes a bound pod (it finished or was deleted); returns it with its binding.
    pub fn unbind(&mut self, id: PodId) -> Result<(Pod, Binding), ClusterError> {
        match &mut self.mode {
            Mode::Online(s) => s.remove(id),
            Mode::Batch { cluster, .. } => cluster.unbind(id),
        }
    }

    /// Evicts a bound pod; returns it as a pending pod again.
    pub fn evict(&mut self, id: PodId) -> Result<Pod, ClusterError> {
        match &mut self.mode {
            Mode::Online(s) => s.evict(id),
            Mode::Batch { cluster, .. } => cluster.evict(id),
        }
    }

    /// The deadline of a decision starting now.
    pub fn deadline(&self) -> Deadline {
        Deadline::after(self.clock.clone(), self.budget)
    }

    /// Where the policy would put `pod` now, without binding it.
    pub fn select(&mut self, pod: &Pod) -> Result<Option<Binding>, SchedulerError> {
        let deadline = self.deadline();
        match &mut self.mode {
            Mode::Online(s) => Ok(s.select(pod)),
            Mode::Batch { placer, cluster } => {
                let problem = Problem {
                    cluster: Cluster::clone(cluster),
                    pending: vec![pod.clone()],
                };
                let out = placer.place_by(&problem, &deadline)?;
                check(placer.name(), &problem, &out.placement)?;
                Ok(out.placement.into_iter().next().flatten())
            }
        }
    }

    /// Every feasible node's score for `pod` (online policies; `None` for batch ones,
    /// which decide batches, not nodes).
    pub fn scores(&mut self, pod: &Pod) -> Option<Vec<(NodeId, f64)>> {
        match &mut self.mode {
            Mode::Online(s) => Some(s.scores(pod)),
            Mode::Batch { .. } => None,
        }
    }

    /// Decides a batch by the deadline without binding anything: where each pod would
    /// go (validated as a whole against the current cluster). The caller binds the pods
    /// it accepts with [`Scheduler::bind`] — in input order, each choice stays valid as
    /// long as only pods of the batch are bound in between (a subset of the plan fits).
    pub fn plan(&mut self, pods: &[Pod]) -> Result<Vec<Option<Binding>>, SchedulerError> {
        let deadline = self.deadline();
        let problem = Problem {
            cluster: self.cluster().clone(),
            pending: pods.to_vec(),
        };
        let out = match &mut self.mode {
            Mode::Online(s) => {
                let mut scratch = s.clone();
                place_units(&mut scratch, pods)?
                    .into_iter()
                    .map(|p| p.map(|(_, b)| b))
                    .collect()
            }
            Mode::Batch { placer, .. } => placer.place_by(&problem, &deadline)?.placement,
        };
        check(&self.name, &problem, &out)?;
        Ok(out)
    }

    /// Places one pod and binds it; `None` if no node takes it.
    pub fn place_one(&mut self, pod: Pod) -> Result<Option<(PodId, Binding)>, SchedulerError> {
        match &mut self.mode {
            Mode::Online(s) => Ok(s.place(pod)?),
            Mode::Batch { .. } => Ok(self.place_batch(vec![pod])?.placed.remove(0)),
        }
    }

    /// Places a batch by the deadline and binds what was placed: higher priorities
    /// first, each gang all or nothing (its members placed together or none). Online
    /// policies place the pods one by one on the live session; batch policies solve the
    /// batch at once, and their answer must pass the validator before anything is bound.
    pub fn place_batch(&mut self, pods: Vec<Pod>) -> Result<BatchDecision, SchedulerError> {
        let deadline = self.deadline();
        match &mut self.mode {
            Mode::Online(s) => {
                let placed = place_units(s, &pods)?;
                Ok(BatchDecision {
                    placed,
                    stats: SolveStats {
                        solve_seconds: deadline.elapsed_seconds(),
                        ..Default::default()
                    },
                })
            }
            Mode::Batch { placer, cluster } => {
                let problem = Problem {
                    cluster: Cluster::clone(cluster),
                    pending: pods,
                };
                let out = placer.place_by(&problem, &deadline)?;
                check(placer.name(), &problem, &out.placement)?;
                let mut placed = Vec::with_capacity(problem.pending.len());
                for (pod, b) in problem.pending.into_iter().zip(out.placement) {
                    placed.push(match b {
                        Some(b) => {
                            let id = cluster.bind(pod, b.node, Some(b.gpu_devices.clone()))?;
                            Some((id, b))
                        }
                        None => None,
                    });
                }
                Ok(BatchDecision {
                    placed,
                    stats: out.stats,
                })
            }
        }
    }
}

fn check(
    policy: &str,
    problem: &Problem,
    placement: &[Option<Binding>],
) -> Result<(), SchedulerError> {
    validate::validate(problem, placement).map_err(|violations| SchedulerError::Invalid {
        policy: policy.to_string(),
        violations,
    })
}
