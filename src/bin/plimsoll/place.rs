//! `plimsoll place`: load manifests, place the pending pods with one policy, validate,
//! explain what is left out, print.

use crate::options::PolicyArgs;
use crate::output::{nodes_with_pods, opt, table, Format};
use crate::Status;
use anyhow::{Context, Result};
use clap::Args;
use plimsoll::model::Problem;
use plimsoll::place::explain::{explain, fit_error};
use plimsoll::place::usage::{effective_problem, UsageEstimates, UsageOptions};
use plimsoll::place::validate::validate;
use plimsoll::place::{policy_by_name, FilterContext, Outcome};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Arguments of `plimsoll place`.
#[derive(Debug, Args)]
pub struct PlaceArgs {
    /// Manifest files (YAML or JSON, multi-document; Node, Pod, Deployment, Job) or openb
    /// CSV files. Repeat for several files.
    #[arg(short = 'f', long = "file", value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Placement policy (see README; `milp` is the optimiser).
    #[arg(long, value_name = "NAME", default_value = "kube-default")]
    pub policy: String,
    #[command(flatten)]
    pub policy_args: PolicyArgs,
    /// Pack CPU by per-pod usage estimates instead of requests. YAML or JSON:
    /// `{"pods": {"NAMESPACE/NAME": {"cpu": "250m", "memory": "1Gi"}}}`; pods without an
    /// estimate keep their request; an estimate never raises a non-zero request.
    #[arg(long, value_name = "FILE")]
    pub usage: Option<PathBuf>,
    /// With --usage: charge each pod its estimate × (1 + F).
    #[arg(long, value_name = "F", default_value_t = 0.1, requires = "usage")]
    pub margin: f64,
    /// With --usage: also pack memory by its estimate (otherwise memory stays by request).
    #[arg(long = "memory-by-usage", requires = "usage")]
    pub memory_by_usage: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Format,
}

/// One placed pod.
#[derive(Debug, Serialize)]
pub struct PlacementRow {
    /// Pod name.
    pub pod: String,
    /// Pod namespace.
    pub namespace: String,
    /// Node name.
    pub node: String,
    /// GPU device indices on the node (GPU pods only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_devices: Option<Vec<u32>>,
}

/// One pod left pending.
#[derive(Debug, Serialize)]
pub struct UnplacedRow {
    /// Pod name.
    pub pod: String,
    /// Pod namespace.
    pub namespace: String,
    /// The explanation's summary (kube-scheduler's wording).
    pub reason: String,
}

/// Totals of one run.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Policy name.
    pub policy: String,
    /// Pods placed.
    pub placed: usize,
    /// Pods left pending.
    pub unplaced: usize,
    /// Nodes with at least one pod after placement (bound pods included).
    pub nodes_used: usize,
    /// Solver objective, if a solver ran.
    pub objective: Option<f64>,
    /// Solver bound, if known.
    pub bound: Option<f64>,
    /// Relative gap, if known.
    pub gap: Option<f64>,
    /// Seconds the policy took.
    pub solve_seconds: f64,
}

/// Everything `place` prints.
#[derive(Debug, Serialize)]
pub struct PlaceReport {
    /// Placed pods, in input order.
    pub placements: Vec<PlacementRow>,
    /// Pending pods with their reasons, in input order.
    pub unplaced: Vec<UnplacedRow>,
    /// Totals.
    pub summary: Summary,
}

/// Runs the subcommand.
pub fn run(args: &PlaceArgs) -> Result<Status> {
    let opts = args.policy_args.to_options()?;
    let policy = policy_by_name(&args.policy, &opts)?;
    let loaded = plimsoll::manifest::load_files(&args.files).context("cannot load manifests")?;
    tracing::info!(
        nodes = loaded.nodes.len(),
        pods = loaded.pods.len(),
        "loaded manifests"
    );
    if loaded.nodes.is_empty() {
        anyhow::bail!(
            "{}: the input has no Node objects: nothing to place pods on",
            crate::output::file_list(&args.files)
        );
    }
    let problem = Problem::from_parts(loaded.nodes, loaded.pods)
        .context("cannot build the cluster from the manifests")?;
    let problem = match &args.usage {
        Some(path) => usage_problem(&problem, path, args)?,
        None => problem,
    };
    warn_never_placeable(&problem);
    let outcome = match crate::place_guarded(policy.as_ref(), &problem) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: policy {} failed: {e}", args.policy);
            return Ok(Status::Invalid);
        }
    };
    tracing::info!(
        placed = outcome.placed(),
        seconds = outcome.stats.solve_seconds,
        "placed"
    );
    if let Err(violations) = validate(&problem, &outcome.placement) {
        eprintln!(
            "error: policy {} returned a placement that breaks {} hard constraint(s) (a bug):",
            args.policy,
            violations.len()
        );
        for v in violations {
            eprintln!("  {v}");
        }
        return Ok(Status::Invalid);
    }
    let report = report(&problem, &outcome, &args.policy)?;
    print(&report, args.output)?;
    Ok(Status::Ok)
}

/// The effective problem of `--usage`: pods charged their estimates (see
/// `plimsoll::place::usage`); placement, validation and the report then run on it.
fn usage_problem(problem: &Problem, path: &Path, args: &PlaceArgs) -> Result<Problem> {
    let opts = UsageOptions::new(args.margin, args.memory_by_usage)?;
    let estimates = UsageEstimates::load(path)?;
    for key in estimates.unknown_pods(problem) {
        eprintln!("warning: {}: no pod {key} in the input", path.display());
    }
    let effective = effective_problem(problem, &estimates, &opts)?;
    tracing::info!(
        estimated = effective.estimated_pods,
        margin = args.margin,
        "packing by usage estimates"
    );
    Ok(effective.problem)
}

/// Warns on stderr about pods no node could hold even if every node were empty: they
/// are reported as unplaced with kube-scheduler's reason, and this says why it is final.
fn warn_never_placeable(problem: &Problem) {
    let empty = problem.cluster.without_pods();
    for pod in &problem.pending {
        let ctx = FilterContext::new(&empty, pod);
        let per_node: Vec<_> = empty
            .node_ids()
            .filter_map(|n| ctx.check(n).err().map(|r| (n, r)))
            .collect();
        if per_node.len() == empty.node_count() {
            eprintln!(
                "warning: pod {} can never be placed, even on empty nodes: {}",
                pod.key(),
                fit_error(empty.node_count(), &per_node)
            );
        }
    }
}

/// Builds the printed report from a validated outcome.
pub fn report(problem: &Problem, outcome: &Outcome, policy: &str) -> Result<PlaceReport> {
    let after = outcome
        .apply(problem)
        .context("applying the validated placement")?;
    let cluster = &problem.cluster;
    let placements = problem
        .pending
        .iter()
        .zip(&outcome.placement)
        .filter_map(|(pod, b)| {
            b.as_ref().map(|b| PlacementRow {
                pod: pod.name.clone(),
                namespace: pod.namespace.clone(),
                node: cluster[b.node].name.clone(),
                gpu_devices: pod.gpu.amount.is_some().then(|| b.gpu_devices.clone()),
            })
        })
        .collect::<Vec<_>>();
    let unplaced = explain(problem, &outcome.placement)
        .into_iter()
        .map(|e| {
            let pod = &problem.pending[e.pending_index];
            UnplacedRow {
                pod: pod.name.clone(),
                namespace: pod.namespace.clone(),
                reason: e.summary,
            }
        })
        .collect::<Vec<_>>();
    let s = &outcome.stats;
    let summary = Summary {
        policy: policy.to_string(),
        placed: placements.len(),
        unplaced: unplaced.len(),
        nodes_used: nodes_with_pods(&after),
        objective: s.objective,
        bound: s.bound,
        gap: s.gap,
        solve_seconds: s.solve_seconds,
    };
    Ok(PlaceReport {
        placements,
        unplaced,
        summary,
    })
}

fn print(report: &PlaceReport, format: Format) -> Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(report)?),
        Format::Yaml => print!("{}", serde_yaml::to_string(report)?),
        Format::Table => {
            let rows: Vec<Vec<String>> = report
                .placements
                .iter()
                .map(|p| {
                    let gpus = p.gpu_devices.as_ref().map_or_else(
                        || "-".to_string(),
                        |d| d.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
                    );
                    vec![p.namespace.clone(), p.pod.clone(), p.node.clone(), gpus]
                })
                .collect();
            print!("{}", table(&["NAMESPACE", "POD", "NODE", "GPUS"], &rows));
            if !report.unplaced.is_empty() {
                println!("\nUnplaced:");
                let rows: Vec<Vec<String>> = report
                    .unplaced
                    .iter()
                    .map(|u| vec![u.namespace.clone(), u.pod.clone(), u.reason.clone()])
                    .collect();
                print!("{}", table(&["NAMESPACE", "POD", "REASON"], &rows));
            }
            let s = &report.summary;
            println!(
                "\npolicy {}: {} placed, {} unplaced, {} nodes used, objective {}, bound {}, gap {}, {:.3} s",
                s.policy,
                s.placed,
                s.unplaced,
                s.nodes_used,
                opt(s.objective, 3),
                opt(s.bound, 3),
                opt(s.gap, 4),
                s.solve_seconds
            );
        }
    }
    // Every line is complete and written out before anything else reaches the
    // terminal (a warning on stderr must not land on the summary's line).
    std::io::Write::flush(&mut std::io::stdout())?;
    Ok(())
}
