//! Benchmark suites: named, versioned sets of placement problems run against every
//! policy, with one row per (case, policy).
//!
//! A suite is a YAML file ([`suite`]): cases from the seeded synthetic generator, from
//! batches of the openb trace, or from Kubernetes manifests. [`run_suite`] builds each
//! case's [`Problem`], computes its LP bound ([`crate::place::milp::lp_bound`]), runs each
//! policy, checks every placement with [`crate::place::validate::validate`] and reports
//! placed pods, nodes receiving pods with a lower bound on them at the row's placed
//! weight ([`crate::place::milp::node_lower_bound`]), GPU allocation, priority-weighted
//! placed pods, the gap to the bound and the time. Built-in suites (`smoke`, `standard`, `large`) are
//! embedded from `bench/suites/`.
//!
//! This module runs and measures; printing belongs to the command-line tool.
//!
//! ```
//! use plimsoll::bench::{run_suite, RunOptions, Suite};
//! let suite = Suite::load("smoke")?;
//! let opts = RunOptions {
//!     policies: Some(vec!["best-fit".into()]),
//!     cases: Some(vec!["synthetic-30".into()]),
//!     ..RunOptions::default()
//! };
//! let report = run_suite(&suite, &opts)?;
//! let row = &report.cases[0].rows[0];
//! assert!(row.valid);
//! assert!(row.weighted_placed <= report.cases[0].lp_bound.unwrap());
//! # Ok::<(), plimsoll::bench::BenchError>(())
//! ```

mod metrics;
mod run;
pub mod suite;

pub use metrics::{check_and_measure, gpu_allocation_pct, nodes_receiving, Checked};
pub use run::{load_case, run_suite};
pub use suite::{Suite, SuiteBase, SuiteFile};

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[allow(unused_imports)] // For the module docs' links.
use crate::model::Problem;

/// Errors of loading or running a suite.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum BenchError {
    /// No built-in suite has this name.
    #[error("unknown suite {name:?} (built-in: {known}; or give a path to a .yaml file)")]
    UnknownSuite {
        /// The name asked for.
        name: String,
        /// The built-in names.
        known: String,
    },
    /// A suite file is malformed; `msg` names the field and, when known, the line.
    #[error("{file}: {msg}")]
    Suite {
        /// The suite file.
        file: String,
        /// What is wrong.
        msg: String,
    },
    /// A file could not be read.
    #[error("{file}: {msg}")]
    Io {
        /// The file.
        file: String,
        /// The error.
        msg: String,
    },
    /// A case's input could not be loaded or built.
    #[error("case {case}: {msg}")]
    Case {
        /// The case.
        case: String,
        /// What failed.
        msg: String,
    },
    /// A run option is out of range or names nothing.
    #[error("{0}")]
    Option(String),
}

/// Overrides of a suite's defaults, and filters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOptions {
    /// Run only these policies (in this order) instead of the suite's.
    pub policies: Option<Vec<String>>,
    /// Run only these cases (by name, in the suite's order).
    pub cases: Option<Vec<String>>,
    /// The MILP's time limit, seconds, instead of the suite's.
    pub time_limit: Option<f64>,
    /// HiGHS threads instead of the suite's.
    pub threads: Option<u32>,
}

/// One policy's result on one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Case name.
    pub case: String,
    /// Policy name.
    pub policy: String,
    /// Pending pods placed.
    pub placed: usize,
    /// Pending pods left out.
    pub unplaced: usize,
    /// Nodes that received at least one newly placed pod.
    pub nodes_used: usize,
    /// A lower bound on `nodes_used` for every valid placement that places at least this
    /// row's `weighted_placed` ([`crate::place::milp::node_lower_bound`], the LP bound on
    /// the `pack` goal); `None` if unknown (bound failed, row invalid).
    #[serde(default)]
    pub nodes_lb: Option<f64>,
    /// Allocated milli-GPU / total milli-GPU over all nodes after placement, percent.
    pub gpu_alloc_pct: f64,
    /// Placed pods weighted by `1 + rank` of their priority (the MILP's first goal,
    /// [`crate::place::milp::weighted_placed`]).
    pub weighted_placed: f64,
    /// `(lp_bound - weighted_placed) / lp_bound`, percent (0 when the bound is 0);
    /// `None` if the bound is unknown or the row is invalid.
    pub gap_pct: Option<f64>,
    /// Seconds the policy took (its own measurement).
    pub seconds: f64,
    /// True if the policy returned a placement the validator accepts.
    pub valid: bool,
    /// For `milp`: true if it returned its greedy warm start.
    pub fell_back: bool,
    /// Validator violations or the policy's error (empty when valid).
    pub errors: Vec<String>,
    /// [`Outcome::decisions_digest`](crate::place::Outcome::decisions_digest) as 16 hex
    /// digits: equal digests mean identical placements (empty when the policy failed).
    #[serde(default)]
    pub placement_digest: String,
}

/// One case's problem, bound and rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseReport {
    /// Case name.
    pub name: String,
    /// Where the problem came from, in words.
    pub source: String,
    /// Nodes.
    pub nodes: usize,
    /// Pods bound before placement.
    pub bound_pods: usize,
    /// Pending pods.
    pub pending_pods: usize,
    /// Priority weight of every pending pod.
    pub total_weight: f64,
    /// The LP bound on weighted placed pods ([`crate::place::milp::lp_bound`]);
    /// `None` if it failed (`bound_error` says why) or the case was skipped.
    pub lp_bound: Option<f64>,
    /// Why the bound is missing, if it is.
    pub bound_error: Option<String>,
    /// Seconds the bound took.
    pub bound_seconds: f64,
    /// Seconds the rows' node lower bounds took together (`Row::nodes_lb`).
    #[serde(default)]
    pub nodes_lb_seconds: f64,
    /// Why the case did not run (openb data absent), if it did not.
    pub skipped: Option<String>,
    /// One row per policy.
    pub rows: Vec<Row>,
}

/// A suite's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteReport {
    /// Suite name.
    pub suite: String,
    /// Suite version.
    pub version: u32,
    /// Suite description.
    pub description: Option<String>,
    /// Suite file (or `builtin:NAME`).
    pub source: String,
    /// Policies run, in order.
    pub policies: Vec<String>,
    /// The MILP's time limit, seconds.
    pub time_limit: f64,
    /// HiGHS threads.
    pub threads: u32,
    /// Policies' seed.
    pub seed: u64,
    /// Cases, in the suite's order.
    pub cases: Vec<CaseReport>,
}

impl SuiteReport {
    /// True if every row of every case is valid.
    pub fn all_valid(&self) -> bool {
        self.cases.iter().flat_map(|c| &c.rows).all(|r| r.valid)
    }
}
