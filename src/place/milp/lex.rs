//! The two-stage lexicographic solve, written once for the exact and the aggregated
//! programs: first the most priority weight, then the second goal at that weight.
//!
//! One fallback rule for both: when HiGHS returns no incumbent, the warm start (if any)
//! stands in for it; only without a warm start is the attempt abandoned
//! ([`MilpError::NoSolution`]). The second stage runs only when the first goal is proven
//! optimal and at least [`MIN_SECONDS_FOR_SECOND`] are left, and its answer is taken only
//! if it keeps the first goal and does not worsen the second.

use super::error::MilpError;
use super::program::Program;
use super::solve::{self, Goal, Settings};

/// The least time (seconds) worth giving HiGHS for the second stage.
pub(super) const MIN_SECONDS_FOR_SECOND: f64 = 1e-2;

/// What the two stages reached.
#[derive(Debug, Clone)]
pub(super) struct Lexicographic {
    /// Column values of the answer.
    pub values: Vec<f64>,
    /// The first goal (priority weight) of `values`.
    pub weight: f64,
    /// An upper bound on the first goal (at most `all`).
    pub weight_bound: f64,
    /// True if the first goal is proven optimal.
    pub weight_optimal: bool,
    /// The second solve's bound on the second goal, if the second stage ran.
    pub second_bound: Option<f64>,
}

/// Solves `program` lexicographically from the warm start `warm`. `all` is the weight of
/// every modelled pod (the first goal's ceiling: a warm start reaching it skips the first
/// solve); `settings` are the first solve's, `second_rel_gap` the second's relative gap;
/// `time_left()` is the time HiGHS may take from now, asked before each solve.
pub(super) fn solve(
    program: &Program,
    warm: Option<&[f64]>,
    all: f64,
    settings: &Settings,
    second_rel_gap: f64,
    time_left: impl Fn() -> f64,
) -> Result<Lexicographic, MilpError> {
    solve_with(
        program,
        warm,
        all,
        settings,
        second_rel_gap,
        time_left,
        false,
    )
}

/// As [`solve`], with HiGHS's presolve on if `presolve` (see [`solve::solve_with`]).
pub(super) fn solve_with(
    program: &Program,
    warm: Option<&[f64]>,
    all: f64,
    settings: &Settings,
    second_rel_gap: f64,
    time_left: impl Fn() -> f64,
    presolve: bool,
) -> Result<Lexicographic, MilpError> {
    let mut settings = settings.clone();
    let warm_weight = warm.map(|w| program.primary_value(w));
    let (mut values, weight_bound, weight_optimal) = match warm_weight {
        Some(v) if v >= all - 0.5 => (warm.unwrap_or_default().to_vec(), all, true),
        _ => {
            settings.time_limit = time_left();
            let first = solve::solve_with(program, Goal::Primary, &settings, warm, presolve)?;
            let values = first
                .values
                .or_else(|| warm.map(<[f64]>::to_vec))
                .ok_or(MilpError::NoSolution)?;
            let v1 = program.primary_value(&values);
            let bound = if first.bound.is_finite() {
                first.bound.min(all)
            } else {
                all
            };
            tracing::debug!(v1, bound, optimal = first.optimal, "first solve");
            (values, bound, first.optimal || v1 >= bound - 0.5)
        }
    };
    let weight = program.primary_value(&values);
    let mut second_bound = None;
    let left = time_left();
    if weight_optimal && left > MIN_SECONDS_FOR_SECOND {
        settings.time_limit = left;
        settings.rel_gap = second_rel_gap;
        let second = solve::solve_with(
            program,
            Goal::Secondary(weight),
            &settings,
            Some(&values),
            presolve,
        )?;
        if let Some(v2) = second.values {
            if program.primary_value(&v2) >= weight - 0.5
                && program.secondary_value(&v2) <= program.secondary_value(&values)
            {
                values = v2;
            }
        }
        tracing::debug!(
            goal = program.secondary_value(&values),
            bound = second.bound,
            optimal = second.optimal,
            "second solve"
        );
        second_bound = Some(second.bound);
    }
    Ok(Lexicographic {
        values,
        weight,
        weight_bound,
        weight_optimal,
        second_bound,
    })
}
