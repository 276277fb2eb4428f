//! Building each case's problem and running the policies on it.

use super::suite::{check_policies, policy_names, CaseDef, OpenbCase, SuiteBase};
use super::{check_and_measure, BenchError, CaseReport, Row, RunOptions, Suite, SuiteReport};
use crate::datasets::{openb, synthetic};
use crate::model::Problem;
use crate::place::milp::{lp_bound, node_lower_bound, priority_weights, weighted_placed};
use crate::place::{policy_by_name, PolicyOptions};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// A case's input: the problem and a description of its source, or why it is skipped.
#[derive(Debug, Clone)]
pub enum CaseInput {
    /// The problem to place, and where it came from.
    Ready(Box<Problem>, String),
    /// The case cannot run here (the openb data folder is absent); the reason.
    Skipped(String),
}

/// Builds a case's problem. `seed` is the suite's seed (synthetic cases' default).
pub fn load_case(suite: &Suite, case: &CaseDef, seed: u64) -> Result<CaseInput, BenchError> {
    let err = |msg: String| BenchError::Case {
        case: case.name.clone(),
        msg,
    };
    if let Some(s) = &case.synthetic {
        let cfg = s.config(seed);
        let problem = synthetic::problem(&cfg).map_err(|e| err(e.to_string()))?;
        let source = format!("synthetic: {} nodes, seed {}", cfg.nodes, cfg.seed);
        return Ok(CaseInput::Ready(Box::new(problem), source));
    }
    if let Some(o) = &case.openb {
        return load_openb(o).map_err(err);
    }
    let files = case.manifests.as_deref().unwrap_or_default();
    let loaded = match &suite.base {
        SuiteBase::Dir(dir) => {
            let paths: Vec<_> = files.iter().map(|f| dir.join(f)).collect();
            crate::manifest::load_files(&paths).map_err(|e| err(e.to_string()))?
        }
        SuiteBase::Builtin => {
            let mut text = String::new();
            let mut names = Vec::new();
            for f in files {
                let (name, t) = suite.manifest_text(f)?;
                names.push(name);
                text.push_str(&t);
                text.push_str("\n---\n");
            }
            crate::manifest::load_str(&text, &names.join("+")).map_err(|e| err(e.to_string()))?
        }
    };
    let problem = Problem::from_parts(loaded.nodes, loaded.pods).map_err(|e| err(e.to_string()))?;
    let source = format!(
        "manifests: {}",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(CaseInput::Ready(Box::new(problem), source))
}

fn load_openb(o: &OpenbCase) -> Result<CaseInput, String> {
    let Some(dir) = crate::datasets::data_dir() else {
        return Ok(CaseInput::Skipped(
            "openb data folder not found (set PLIMSOLL_DATA)".into(),
        ));
    };
    let nodes = openb::load_nodes(dir.join(&o.nodes)).map_err(|e| e.to_string())?;
    let mut pods = openb::load_pods(dir.join(&o.pods)).map_err(|e| e.to_string())?;
    if let Some(seed) = o.seed {
        pods.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    }
    if o.offset + o.count > pods.len() {
        return Err(format!(
            "openb: offset {} + count {} exceeds the {} pods of {}",
            o.offset,
            o.count,
            pods.len(),
            o.pods.display()
        ));
    }
    let batch: Vec<_> = pods.drain(o.offset..o.offset + o.count).collect();
    let source = format!(
        "openb: {} pods {}..{}{} of {} on {} ({} nodes)",
        o.pods.display(),
        o.offset,
        o.offset + o.count,
        o.seed
            .map_or(String::new(), |s| format!(" (shuffled, seed {s})")),
        pods.len() + batch.len(),
        o.nodes.display(),
        nodes.len()
    );
    let problem = Problem::from_parts(nodes, batch).map_err(|e| e.to_string())?;
    Ok(CaseInput::Ready(Box::new(problem), source))
}

/// Runs a suite: every selected case against every selected policy, in order. Progress
/// goes to `tracing` at info level.
pub fn run_suite(suite: &Suite, opts: &RunOptions) -> Result<SuiteReport, BenchError> {
    let d = &suite.file.defaults;
    let policies = opts
        .policies
        .clone()
        .unwrap_or_else(|| policy_names(&d.policies));
    check_policies(&policies).map_err(|m| BenchError::Option(format!("--{m}")))?;
    let time_limit = opts.time_limit.unwrap_or(d.time_limit);
    let threads = opts.threads.unwrap_or(d.threads);
    let popts = PolicyOptions {
        seed: d.seed,
        time_limit_seconds: time_limit,
        threads,
        ..PolicyOptions::default()
    };
    // Checks the MILP options once, before any case runs.
    policy_by_name("milp", &popts).map_err(|e| BenchError::Option(e.to_string()))?;
    if let Some(names) = &opts.cases {
        if let Some(bad) = names
            .iter()
            .find(|n| !suite.file.cases.iter().any(|c| &c.name == *n))
        {
            let known: Vec<&str> = suite.file.cases.iter().map(|c| c.name.as_str()).collect();
            return Err(BenchError::Option(format!(
                "--cases: suite {} has no case {bad:?} (cases: {})",
                suite.file.name,
                known.join(", ")
            )));
        }
    }
    let mut cases = Vec::new();
    for case in &suite.file.cases {
        if opts.cases.as_ref().is_some_and(|n| !n.contains(&case.name)) {
            continue;
        }
        cases.push(run_case(suite, case, &policies, &popts)?);
    }
    Ok(SuiteReport {
        suite: suite.file.name.clone(),
        version: suite.file.version,
        description: suite.file.description.clone(),
        source: suite.source.clone(),
        policies,
        time_limit,
        threads,
        seed: d.seed,
        cases,
    })
}

fn run_case(
    suite: &Suite,
    case: &CaseDef,
    policies: &[String],
    popts: &PolicyOptions,
) -> Result<CaseReport, BenchError> {
    let mut report = CaseReport {
        name: case.name.clone(),
        source: String::new(),
        nodes: 0,
        bound_pods: 0,
        pending_pods: 0,
        total_weight: 0.0,
        lp_bound: None,
        bound_error: None,
        bound_seconds: 0.0,
        nodes_lb_seconds: 0.0,
        skipped: None,
        rows: Vec::new(),
    };
    let problem = match load_case(suite, case, popts.seed)? {
        CaseInput::Ready(p, source) => {
            report.source = source;
            p
        }
        CaseInput::Skipped(why) => {
            tracing::warn!(case = case.name, "skipped: {why}");
            report.skipped = Some(why);
            return Ok(report);
        }
    };
    report.nodes = problem.cluster.node_count();
    report.bound_pods = problem.cluster.bound_count();
    report.pending_pods = problem.pending.len();
    report.total_weight = priority_weights(&problem.pending).iter().sum();
    tracing::info!(
        case = case.name,
        nodes = report.nodes,
        pending = report.pending_pods,
        "case loaded"
    );
    let t = Instant::now();
    match lp_bound(&problem) {
        Ok(b) => report.lp_bound = Some(b),
        Err(e) => report.bound_error = Some(e.to_string()),
    }
    report.bound_seconds = t.elapsed().as_secs_f64();
    tracing::info!(case = case.name, bound = ?report.lp_bound, s = report.bound_seconds, "LP bound");
    for name in policies {
        let row = run_policy(&problem, &case.name, name, popts, report.lp_bound);
        tracing::info!(
            case = case.name,
            policy = name,
            placed = row.placed,
            valid = row.valid,
            s = row.seconds,
            "policy done"
        );
        report.rows.push(row);
    }
    // The node lower bound at each valid row's placed weight (one LP per distinct weight).
    let t = Instant::now();
    let weights: Vec<f64> = report
        .rows
        .iter()
        .filter(|r| r.valid)
        .map(|r| r.weighted_placed)
        .collect();
    match node_lower_bound(&problem, &weights) {
        Ok(lbs) => {
            let mut lbs = lbs.into_iter();
            for r in report.rows.iter_mut().filter(|r| r.valid) {
                r.nodes_lb = lbs.next().flatten();
            }
        }
        Err(e) => tracing::warn!(case = case.name, "node lower bound failed: {e}"),
    }
    report.nodes_lb_seconds = t.elapsed().as_secs_f64();
    tracing::info!(
        case = case.name,
        s = report.nodes_lb_seconds,
        "node lower bounds"
    );
    Ok(report)
}

fn run_policy(
    problem: &Problem,
    case: &str,
    name: &str,
    popts: &PolicyOptions,
    bound: Option<f64>,
) -> Row {
    let mut row = Row {
        case: case.to_string(),
        policy: name.to_string(),
        placed: 0,
        unplaced: problem.pending.len(),
        nodes_used: 0,
        nodes_lb: None,
        gpu_alloc_pct: 0.0,
        weighted_placed: 0.0,
        gap_pct: None,
        seconds: 0.0,
        valid: false,
        fell_back: false,
        errors: Vec::new(),
        placement_digest: String::new(),
    };
    let start = Instant::now();
    let placed = policy_by_name(name, popts)
        .map_err(|e| e.to_string())
        .and_then(|p| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.place(problem)))
                .map_err(|_| format!("policy {name} panicked (a bug)"))?
                .map_err(|e| e.to_string())
        });
    row.seconds = start.elapsed().as_secs_f64();
    let outcome = match placed {
        Ok(o) => o,
        Err(e) => {
            row.errors.push(e);
            return row;
        }
    };
    row.placement_digest = format!("{:016x}", outcome.decisions_digest());
    let checked = match check_and_measure(problem, &outcome) {
        Ok(c) => c,
        Err(errors) => {
            row.errors = errors;
            return row;
        }
    };
    row.valid = true;
    row.placed = checked.placed;
    row.unplaced = checked.unplaced;
    row.nodes_used = checked.nodes_used;
    row.gpu_alloc_pct = checked.gpu_alloc_pct;
    row.weighted_placed = weighted_placed(problem, &outcome.placement);
    row.fell_back = outcome.stats.fell_back;
    row.gap_pct = bound.map(|b| {
        if b > 0.0 {
            100.0 * (b - row.weighted_placed) / b
        } else {
            0.0
        }
    });
    row
}
