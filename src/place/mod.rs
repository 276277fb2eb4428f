//! The placement engine: filters and scores, online (one pod at a time) policies, the
//! batch MILP optimiser, the independent validator and the explanation of pending pods.
//!
//! Every policy implements [`Placer`], so the simulator, the extender, the benchmarks and
//! the CLI take any of them. A policy never mutates the problem it is given: it returns an
//! [`Outcome`] whose `placement` has one entry per pending pod.

pub mod clock;
pub mod explain;
pub mod filter;
pub mod lookahead;
#[cfg(feature = "milp")]
pub mod milp;
mod objective;
pub mod online;
pub mod plugin;
#[cfg(feature = "milp")]
pub mod preempt;
pub mod registry;
pub mod scheduler;
pub mod score;
pub mod usage;
pub mod validate;

use crate::model::{Binding, ClusterError, Problem};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use filter::{FilterContext, Reason};
pub use objective::Objective;
pub use plugin::{FilterPlugin, MilpPlugin, Plugins, ScorePlugin};
pub use registry::{policy_by_name, PolicyName, PolicyOptions, POLICY_NAMES};

/// Errors from placement.
#[derive(Debug, Error)]
pub enum PlaceError {
    /// No policy of that name.
    #[error("unknown policy {0:?} (known: {known})", known = POLICY_NAMES.join(", "))]
    UnknownPolicy(String),
    /// An option is out of range.
    #[error("invalid option {name}: {msg}")]
    InvalidOption {
        /// Option name.
        name: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// The solver failed in a way the fallback could not cover.
    #[error("solver error: {0}")]
    Solver(String),
    /// A binding could not be applied to the cluster.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// How a batch solve went. Online policies fill only `solve_seconds`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SolveStats {
    /// Objective value of the returned placement in the solver's terms, if a solver ran.
    pub objective: Option<f64>,
    /// Best proven bound on the objective (the LP/MIP dual bound), if known.
    pub bound: Option<f64>,
    /// Relative gap between objective and bound, `|bound - objective| / max(|objective|, 1e-9)`.
    pub gap: Option<f64>,
    /// Wall-clock seconds the policy spent (measured around the solve, for reporting only).
    pub solve_seconds: f64,
    /// True if the MILP did not produce a usable solution and the greedy warm start was
    /// returned instead.
    pub fell_back: bool,
}

/// The answer of a policy: one optional binding per pending pod (same order as
/// [`Problem::pending`]), plus statistics.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Policy name.
    pub policy: String,
    /// `placement[i]` is where `problem.pending[i]` goes, or `None` if it stays pending.
    pub placement: Vec<Option<Binding>>,
    /// Solve statistics.
    pub stats: SolveStats,
}

impl Outcome {
    /// A 64-bit FNV-1a digest of every decision (each pending pod's node index and GPU
    /// devices, in order, `None` included): equal digests mean identical placements, so
    /// a change that must not alter decisions can be checked across versions.
    pub fn decisions_digest(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |x: u64| {
            h ^= x;
            h = h.wrapping_mul(0x0100_0000_01b3);
        };
        for b in &self.placement {
            match b {
                None => eat(u64::MAX),
                Some(b) => {
                    eat(b.node.index() as u64);
                    for &d in &b.gpu_devices {
                        eat(u64::from(d) | 1 << 40);
                    }
                }
            }
        }
        h
    }

    /// Number of pods placed.
    pub fn placed(&self) -> usize {
        self.placement.iter().filter(|b| b.is_some()).count()
    }

    /// Applies the placement to a copy of the problem's cluster (binding each placed pod
    /// with its devices); returns the resulting cluster.
    pub fn apply(&self, problem: &Problem) -> Result<crate::model::Cluster, ClusterError> {
        let mut c = problem.cluster.clone();
        for (pod, b) in problem.pending.iter().zip(&self.placement) {
            if let Some(b) = b {
                c.bind(pod.clone(), b.node, Some(b.gpu_devices.clone()))?;
            }
        }
        Ok(c)
    }
}

/// A placement policy.
pub trait Placer: Send + Sync {
    /// The policy's name as the CLI spells it.
    fn name(&self) -> &str;

    /// Places the pending pods of `problem`. Must be deterministic for equal inputs
    /// (seeded randomness only) and must return a placement that passes
    /// [`validate::validate`].
    fn place(&self, problem: &Problem) -> Result<Outcome, PlaceError>;

    /// Places like [`Placer::place`], done by `deadline` (a time on an injected clock;
    /// see [`clock`]). Policies without a time budget ignore it (this default); the MILP
    /// takes every stage's budget from it instead of its own time limit and wall time.
    fn place_by(
        &self,
        problem: &Problem,
        deadline: &clock::Deadline,
    ) -> Result<Outcome, PlaceError> {
        let _ = deadline;
        self.place(problem)
    }

    /// How long a decision of this policy is meant to take (its time limit), if it has
    /// one: the budget a [`scheduler::Scheduler`] gives its batches by default.
    fn budget(&self) -> Option<std::time::Duration> {
        None
    }
}
