//! Why an optimisation attempt gave up. These never reach the user as failures: the
//! placer logs them and returns its best greedy placement (`SolveStats::fell_back`).

use crate::model::ClusterError;
use thiserror::Error;

/// Why the MILP returned no placement of its own.
#[derive(Debug, Error)]
pub(crate) enum MilpError {
    /// The time limit was spent before HiGHS could run.
    #[error("{left:.2} s left for HiGHS after {kept_back:.2} s kept back")]
    NoTime {
        /// Seconds left for HiGHS.
        left: f64,
        /// Seconds kept back (set-up of the program's columns, the greedy warm start).
        kept_back: f64,
    },
    /// HiGHS found no incumbent and there was no warm start to fall back to.
    #[error("HiGHS found no solution in time and there is no warm start")]
    NoSolution,
    /// HiGHS refused the model, an option or the start, or failed while solving.
    #[error("HiGHS {step}: {detail}")]
    Highs {
        /// What was being done (`time_limit option`, `solve`, …).
        step: String,
        /// HiGHS's status, as it reports it.
        detail: String,
    },
    /// The solver's values do not decode into a placement (a modelling bug).
    #[error("the solution does not decode: {0}")]
    Decode(String),
    /// A decoded binding fails the kube filters (a modelling bug).
    #[error("pod {pod} on node {node}: {reasons}")]
    Rejected {
        /// The pod's `namespace/name`.
        pod: String,
        /// The node's index.
        node: crate::model::NodeId,
        /// The filters' reasons.
        reasons: String,
    },
    /// Binding the decoded placement failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl MilpError {
    /// A HiGHS failure at `step`.
    pub(crate) fn highs(step: impl Into<String>, detail: impl std::fmt::Debug) -> Self {
        MilpError::Highs {
            step: step.into(),
            detail: format!("{detail:?}"),
        }
    }
}
