//! `plimsoll demo`: every policy on the embedded synthetic GPU cluster, side by side.

use crate::options::PolicyArgs;
use crate::output::{cpu_allocation_pct, opt, table};
use crate::Status;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use plimsoll::bench::check_and_measure;
use plimsoll::datasets::synthetic::{self, SyntheticConfig};
use plimsoll::model::Problem;
use plimsoll::place::{policy_by_name, PolicyOptions, POLICY_NAMES};
use rayon::prelude::*;
use serde::Serialize;

/// Output formats of the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoFormat {
    /// Aligned columns.
    Table,
    /// One JSON object.
    Json,
}

/// Arguments of `plimsoll demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Nodes in the synthetic cluster (openb's node mix).
    #[arg(long, value_name = "N", default_value_t = SyntheticConfig::default().nodes)]
    pub nodes: usize,
    /// Seed of the synthetic cluster and workload.
    #[arg(long, value_name = "S", default_value_t = SyntheticConfig::default().seed)]
    pub seed: u64,
    /// Comma-separated policies to compare (default: all).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub policies: Option<Vec<String>>,
    /// The MILP's time limit in seconds.
    #[arg(long = "time-limit", value_name = "SECS", default_value_t = 10.0)]
    pub time_limit: f64,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: DemoFormat,
}

/// One policy's result on the demo cluster.
#[derive(Debug, Serialize)]
pub struct DemoRow {
    /// Policy name.
    pub policy: String,
    /// Pending pods placed.
    pub placed: usize,
    /// Pending pods left out.
    pub unplaced: usize,
    /// Nodes that received at least one newly placed pod.
    pub nodes_used: usize,
    /// Allocated GPU milli / total GPU milli after placement, percent.
    pub gpu_alloc_pct: f64,
    /// Requested CPU / allocatable CPU after placement, percent.
    pub cpu_alloc_pct: f64,
    /// Priority-weighted placed pods: the MILP's first goal (weights `1 + rank` of the
    /// pod's priority among the pending pods' distinct priorities).
    pub weighted_placed: f64,
    /// For `milp`, the solver's relative gap on the objective it reports; for the other
    /// policies, `(milp_weighted - weighted) / milp_weighted` when the MILP returned its
    /// own solution (negative if the policy placed more weight); `None` otherwise.
    pub gap: Option<f64>,
    /// True if the MILP returned its greedy warm start instead of a solver solution.
    pub fell_back: bool,
    /// Seconds the policy took.
    pub solve_seconds: f64,
    /// Validator violations (empty when valid) or the policy's error.
    pub errors: Vec<String>,
}

/// Everything the demo prints as JSON.
#[derive(Debug, Serialize)]
pub struct DemoReport {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Seed.
    pub seed: u64,
    /// Pods bound before placement (node agents).
    pub bound_pods: usize,
    /// Pending pods.
    pub pending_pods: usize,
    /// One row per policy, in the order asked.
    pub results: Vec<DemoRow>,
}

/// Runs the subcommand.
pub fn run(args: &DemoArgs) -> Result<Status> {
    let policies: Vec<String> = match &args.policies {
        Some(p) => p.iter().map(|s| s.trim().to_string()).collect(),
        None => POLICY_NAMES.iter().map(|s| s.to_string()).collect(),
    };
    if policies.is_empty() {
        bail!("--policies: no policy given");
    }
    if let Some(bad) = policies
        .iter()
        .find(|p| p.parse::<plimsoll::place::PolicyName>().is_err())
    {
        bail!(
            "--policies: unknown policy {bad:?} (known: {})",
            POLICY_NAMES.join(", ")
        );
    }
    let opts = PolicyArgs {
        objective: crate::options::ObjectiveArg::Pack,
        time_limit: args.time_limit,
        gap: 0.01,
        threads: 1,
        seed: args.seed,
    }
    .to_options()?;
    let cfg = SyntheticConfig {
        nodes: args.nodes,
        seed: args.seed,
        ..SyntheticConfig::default()
    };
    let problem = synthetic::problem(&cfg).context("cannot generate the demo cluster")?;
    tracing::info!(
        nodes = args.nodes,
        pending = problem.pending.len(),
        "generated the synthetic cluster"
    );
    let weights = plimsoll::place::milp::priority_weights(&problem.pending);
    let mut results: Vec<DemoRow> = policies
        .par_iter()
        .map(|name| run_policy(&problem, &weights, name, &opts))
        .collect();
    fill_greedy_gaps(&mut results);
    let report = DemoReport {
        nodes: args.nodes,
        seed: args.seed,
        bound_pods: problem.cluster.bound_count(),
        pending_pods: problem.pending.len(),
        results,
    };
    match args.output {
        DemoFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        DemoFormat::Table => print_table(&report),
    }
    let mut status = Status::Ok;
    for r in &report.results {
        if !r.errors.is_empty() {
            status = Status::Invalid;
            eprintln!("error: policy {} is invalid or failed (a bug):", r.policy);
            for e in &r.errors {
                eprintln!("  {e}");
            }
        }
    }
    Ok(status)
}

fn run_policy(problem: &Problem, weights: &[f64], name: &str, opts: &PolicyOptions) -> DemoRow {
    let mut row = DemoRow {
        policy: name.to_string(),
        placed: 0,
        unplaced: problem.pending.len(),
        nodes_used: 0,
        gpu_alloc_pct: 0.0,
        cpu_alloc_pct: 0.0,
        weighted_placed: 0.0,
        gap: None,
        fell_back: false,
        solve_seconds: 0.0,
        errors: Vec::new(),
    };
    let outcome = match policy_by_name(name, opts)
        .map_err(|e| e.to_string())
        .and_then(|p| crate::place_guarded(p.as_ref(), problem))
    {
        Ok(o) => o,
        Err(e) => {
            row.errors.push(e);
            return row;
        }
    };
    row.solve_seconds = outcome.stats.solve_seconds;
    let checked = match check_and_measure(problem, &outcome) {
        Ok(c) => c,
        Err(errors) => {
            row.errors = errors;
            return row;
        }
    };
    row.placed = checked.placed;
    row.unplaced = checked.unplaced;
    row.nodes_used = checked.nodes_used;
    row.gpu_alloc_pct = checked.gpu_alloc_pct;
    row.cpu_alloc_pct = cpu_allocation_pct(&checked.after);
    row.weighted_placed = weights
        .iter()
        .zip(&outcome.placement)
        .filter(|(_, b)| b.is_some())
        .map(|(w, _)| w)
        .sum();
    row.fell_back = outcome.stats.fell_back;
    if name == "milp" {
        row.gap = outcome.stats.gap;
    }
    tracing::info!(
        policy = name,
        placed = row.placed,
        seconds = row.solve_seconds,
        "done"
    );
    row
}

/// Greedy policies' gap: how far their priority-weighted count is below the MILP's
/// (negative when a policy placed more weight than the MILP within its time limit). The
/// MILP's reported bound is on whichever goal it solved last, in that goal's units, so
/// its weighted count is the common yardstick; when the MILP fell back to its greedy warm
/// start (or failed, or was not run) the greedy gap stays unknown.
fn fill_greedy_gaps(rows: &mut [DemoRow]) {
    let reference = rows
        .iter()
        .find(|r| r.policy == "milp" && r.errors.is_empty() && !r.fell_back)
        .map(|r| r.weighted_placed)
        .filter(|w| *w > 0.0);
    let Some(reference) = reference else {
        return;
    };
    for r in rows.iter_mut() {
        if r.policy != "milp" && r.errors.is_empty() {
            r.gap = Some((reference - r.weighted_placed) / reference);
        }
    }
}

fn print_table(report: &DemoReport) {
    println!(
        "Synthetic GPU cluster: {} nodes (openb mix), seed {}, {} bound pods, {} pending pods\n",
        report.nodes, report.seed, report.bound_pods, report.pending_pods
    );
    let rows: Vec<Vec<String>> = report
        .results
        .iter()
        .map(|r| {
            if !r.errors.is_empty() {
                let mut v = vec![r.policy.clone(), "INVALID".to_string()];
                v.extend(std::iter::repeat_n("-".to_string(), 6));
                v.push(format!("{:.2}", r.solve_seconds));
                return v;
            }
            vec![
                r.policy.clone(),
                r.placed.to_string(),
                r.unplaced.to_string(),
                r.nodes_used.to_string(),
                format!("{:.1}", r.gpu_alloc_pct),
                format!("{:.1}", r.cpu_alloc_pct),
                format!("{:.1}", r.weighted_placed),
                if r.fell_back {
                    format!("{}*", opt(r.gap.map(|g| 100.0 * g), 2))
                } else {
                    opt(r.gap.map(|g| 100.0 * g), 2)
                },
                format!("{:.2}", r.solve_seconds),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "POLICY",
                "PLACED",
                "UNPLACED",
                "NODES USED",
                "GPU ALLOC %",
                "CPU ALLOC %",
                "WEIGHTED",
                "GAP %",
                "TIME S",
            ],
            &rows
        )
    );
    println!();
    println!("NODES USED: nodes receiving new pods. ALLOC %: allocated / total over all nodes after placement.");
    println!(
        "WEIGHTED: placed pods weighted by 1 + the rank of their priority (the MILP's first goal)."
    );
    println!("GAP %: milp: the solver's relative gap to its bound on the goal it reports (fallback marked *);");
    println!("       others: how far WEIGHTED is below the MILP's WEIGHTED (negative: above it; '-' if the MILP fell back or did not run).");
    println!("Every placement was checked by the independent validator.");
}
