//! Runs a [`Program`] through HiGHS (the `highs` crate directly, because good_lp's
//! solution type does not expose the MIP dual bound).

use super::error::MilpError;
use super::program::Program;
use highs::{HighsModelStatus, HighsSolutionStatus, RowProblem, Sense};

/// Which goal a solve optimises.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Goal {
    /// Maximise the first goal.
    Primary,
    /// Minimise the second goal subject to the first goal being at least the value.
    Secondary(f64),
}

/// Solver settings for one solve.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Seconds.
    pub time_limit: f64,
    /// Relative gap at which HiGHS may stop.
    pub rel_gap: f64,
    /// Absolute gap at which HiGHS may stop.
    pub abs_gap: f64,
    /// Threads (0 = HiGHS decides).
    pub threads: u32,
    /// HiGHS random seed.
    pub seed: u64,
}

/// What a solve returned.
#[derive(Debug, Clone)]
pub(crate) struct Solved {
    /// Column values of the incumbent, if any.
    pub values: Option<Vec<f64>>,
    /// MIP dual bound.
    pub bound: f64,
    /// True if HiGHS proved the incumbent optimal within the gaps.
    pub optimal: bool,
}

/// Solves `program` for `goal`, starting from `start` if given (HiGHS's presolve off,
/// see below).
pub(crate) fn solve(
    program: &Program,
    goal: Goal,
    settings: &Settings,
    start: Option<&[f64]>,
) -> Result<Solved, MilpError> {
    solve_with(program, goal, settings, start, false)
}

/// As [`solve`], with HiGHS's presolve on if `presolve` (small programs: the
/// large-neighbourhood search's sub-problems, where it pays for itself).
pub(crate) fn solve_with(
    program: &Program,
    goal: Goal,
    settings: &Settings,
    start: Option<&[f64]>,
    presolve: bool,
) -> Result<Solved, MilpError> {
    let mut rp = RowProblem::default();
    let cols: Vec<highs::Col> = program
        .cols
        .iter()
        .map(|c| {
            let cost = match goal {
                Goal::Primary => c.primary,
                Goal::Secondary(_) => c.secondary,
            };
            rp.add_column_with_integrality(cost, c.lo..=c.hi, c.integer)
        })
        .collect();
    for r in &program.rows {
        let terms = r.terms.iter().map(|&(i, a)| (cols[i], a));
        rp.add_row(r.lo..=r.hi, terms);
    }
    let sense = match goal {
        Goal::Secondary(v) => {
            let terms: Vec<(highs::Col, f64)> = program
                .cols
                .iter()
                .enumerate()
                .filter(|(_, c)| c.primary != 0.0)
                .map(|(i, c)| (cols[i], c.primary))
                .collect();
            rp.add_row(v - 0.5..=f64::INFINITY, terms);
            Sense::Minimise
        }
        Goal::Primary => Sense::Maximise,
    };
    let mut model = rp
        .try_optimise(sense)
        .map_err(|e| MilpError::highs("model", e))?;
    model.make_quiet();
    let set = |m: &mut highs::Model, k: &str, v: f64| {
        m.try_set_option(k, v)
            .map_err(|e| MilpError::highs(format!("option {k}"), e))
    };
    set(&mut model, "time_limit", settings.time_limit.max(1e-3))?;
    set(&mut model, "mip_rel_gap", settings.rel_gap)?;
    set(&mut model, "mip_abs_gap", settings.abs_gap)?;
    model
        .try_set_option("random_seed", (settings.seed % (i32::MAX as u64)) as i32)
        .map_err(|e| MilpError::highs("option random_seed", e))?;
    if settings.threads > 0 {
        model
            .try_set_option("threads", settings.threads as i32)
            .map_err(|e| MilpError::highs("option threads", e))?;
    }
    // Presolve off: on openb it took 2-3 s of a 10 s budget and left HiGHS's
    // feasibility-jump heuristic without an improvement over the warm start.
    model
        .try_set_option("presolve", if presolve { "on" } else { "off" })
        .map_err(|e| MilpError::highs("option presolve", e))?;
    // Feasibility jump off: it checks no time limit (it stops on effort only) and took
    // 47 % of a 15-s solve given a 5.6-s limit on a 195,000-column program (500-node
    // synthetic cluster); the greedy warm start already gives an incumbent.
    model
        .try_set_option("mip_heuristic_run_feasibility_jump", false)
        .map_err(|e| MilpError::highs("option mip_heuristic_run_feasibility_jump", e))?;
    if let Some(s) = start {
        model
            .try_set_solution(Some(s), None, None, None)
            .map_err(|e| MilpError::highs("initial solution", e))?;
    }
    let solved = model
        .try_solve()
        .map_err(|e| MilpError::highs("solve", e))?;
    let status = solved.status();
    let has = solved.primal_solution_status() == HighsSolutionStatus::Feasible;
    let optimal = matches!(status, HighsModelStatus::Optimal);
    let values = has.then(|| solved.get_solution().columns().to_vec());
    let bound = solved
        .double_info_value(c"mip_dual_bound")
        .unwrap_or(f64::NAN);
    // HiGHS (as bundled) can report a user-given start as optimal although its own dual
    // bound is better; such a result is solved again without the start.
    if let (Some(v), true, Some(_)) = (&values, optimal, start) {
        let obj: f64 = program
            .cols
            .iter()
            .zip(v)
            .map(|(c, x)| {
                x * if matches!(goal, Goal::Primary) {
                    c.primary
                } else {
                    c.secondary
                }
            })
            .sum();
        let tol = settings.abs_gap.max(settings.rel_gap * obj.abs()) + 1e-6;
        if bound.is_finite() && (bound - obj).abs() > tol {
            tracing::debug!(
                obj,
                bound,
                "HiGHS called its start optimal; solving without it"
            );
            return solve_with(program, goal, settings, None, presolve);
        }
    }
    Ok(Solved {
        values,
        bound,
        optimal,
    })
}
