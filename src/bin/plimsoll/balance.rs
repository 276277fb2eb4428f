//! `plimsoll balance`: load manifests with bound pods (the current placement) and a usage
//! file, plan the fewest migrations that meet the thresholds with the MILP, compare with
//! the greedy descheduler-style baseline, print.

use crate::output::{table, Format};
use crate::Status;
use anyhow::{Context, Result};
use clap::Args;
use plimsoll::balance::{
    balance, read_usage_file, BalanceError, BalanceOptions, Comparison, Move, NodeUtilisation,
};
use plimsoll::model::Problem;
use serde::Serialize;
use std::path::PathBuf;

/// Arguments of `plimsoll balance`.
#[derive(Debug, Args)]
pub struct BalanceArgs {
    /// Manifest files (YAML or JSON); pods with `spec.nodeName` are the current placement
    /// (pending pods are ignored). Repeat for several files.
    #[arg(short = 'f', long = "file", value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Predicted usage CSV: header `pod,cpu[,memory]`, pod as namespace/name or name,
    /// quantities as Kubernetes writes them. Pods not listed use their requests.
    #[arg(long, value_name = "FILE")]
    pub usage: PathBuf,
    /// Highest allowed utilisation (usage / allocatable) of every node, in (0, 1].
    #[arg(long, default_value_t = 0.8)]
    pub high: f64,
    /// Empty the nodes that start below this utilisation (in [0, high)).
    #[arg(long)]
    pub low: Option<f64>,
    /// Apply the thresholds to memory too (default: when the usage file has memory).
    #[arg(long, value_name = "BOOL")]
    pub memory: Option<bool>,
    /// HiGHS time limit in seconds for the whole MILP run.
    #[arg(long = "time-limit", value_name = "S", default_value_t = 10.0)]
    pub time_limit: f64,
    /// Extra cost of moving the highest-priority pod, relative to one move.
    #[arg(long = "priority-weight", default_value_t = 0.5)]
    pub priority_weight: f64,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Format,
}

/// Counts and status of one method.
#[derive(Debug, Serialize)]
struct MethodSummary {
    moves: usize,
    cost: f64,
    targets_met: bool,
    excess: f64,
    seconds: f64,
}

/// Everything `balance` prints.
#[derive(Debug, Serialize)]
struct Report {
    high: f64,
    low: Option<f64>,
    memory: bool,
    moves: Vec<Move>,
    targets_met: bool,
    unmet: Vec<String>,
    optimal: bool,
    fell_back: bool,
    restricted: bool,
    usage_defaulted: usize,
    milp: MethodSummary,
    greedy: MethodSummary,
    greedy_moves: Vec<Move>,
    nodes: Vec<NodeRow>,
}

#[derive(Debug, Serialize)]
struct NodeRow {
    node: String,
    cpu_before: f64,
    cpu_after: f64,
    memory_before: f64,
    memory_after: f64,
    pods_before: usize,
    pods_after: usize,
    to_empty: bool,
}

fn summary(p: &plimsoll::balance::Plan) -> MethodSummary {
    MethodSummary {
        moves: p.moves.len(),
        cost: p.cost,
        targets_met: p.targets_met(),
        excess: p.excess,
        seconds: p.solve_seconds,
    }
}

fn node_rows(before: &[NodeUtilisation], after: &[NodeUtilisation]) -> Vec<NodeRow> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| NodeRow {
            node: b.node.clone(),
            cpu_before: b.cpu,
            cpu_after: a.cpu,
            memory_before: b.memory,
            memory_after: a.memory,
            pods_before: b.pods,
            pods_after: a.pods,
            to_empty: b.to_empty,
        })
        .collect()
}

/// Runs the subcommand.
pub fn run(args: &BalanceArgs) -> Result<Status> {
    let loaded = plimsoll::manifest::load_files(&args.files).context("cannot load manifests")?;
    if loaded.nodes.is_empty() {
        anyhow::bail!(
            "{}: the input has no Node objects: nothing to balance",
            crate::output::file_list(&args.files)
        );
    }
    let problem = Problem::from_parts(loaded.nodes, loaded.pods)
        .context("cannot build the cluster from the manifests")?;
    let usage = read_usage_file(&args.usage, &problem.cluster)?;
    if usage.defaulted() > 0 {
        eprintln!(
            "note: {} bound pod(s) not in {} use their requests as usage",
            usage.defaulted(),
            args.usage.display()
        );
    }
    let options = BalanceOptions {
        high: args.high,
        low: args.low,
        memory: args.memory.unwrap_or_else(|| usage.has_memory()),
        time_limit_seconds: args.time_limit,
        priority_weight: args.priority_weight,
        ..Default::default()
    };
    let c: Comparison = match balance(&problem, &usage, &options) {
        Ok(c) => c,
        Err(e @ BalanceError::InvalidPlan { .. }) => {
            eprintln!("error: {e}");
            return Ok(Status::Invalid);
        }
        Err(e) => return Err(e.into()),
    };
    if !c.milp.targets_met() {
        eprintln!("warning: the thresholds cannot all be met; the plan minimises the excess:");
        for u in &c.milp.unmet {
            eprintln!("  {u}");
        }
    }
    let report = Report {
        high: options.high,
        low: options.low,
        memory: options.memory,
        moves: c.milp.moves.clone(),
        targets_met: c.milp.targets_met(),
        unmet: c.milp.unmet.clone(),
        optimal: c.milp.optimal,
        fell_back: c.milp.fell_back,
        restricted: c.milp.restricted,
        usage_defaulted: usage.defaulted(),
        milp: summary(&c.milp),
        greedy: summary(&c.greedy),
        greedy_moves: c.greedy.moves.clone(),
        nodes: node_rows(&c.milp.before, &c.milp.after),
    };
    match args.output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Yaml => print!("{}", serde_yaml::to_string(&report)?),
        Format::Table => print_table(&report),
    }
    Ok(Status::Ok)
}

fn print_table(r: &Report) {
    let moves: Vec<Vec<String>> = r
        .moves
        .iter()
        .map(|m| vec![m.pod.clone(), m.from.clone(), m.to.clone()])
        .collect();
    println!("Moves (MILP):");
    print!("{}", table(&["POD", "FROM", "TO"], &moves));
    let pct = |v: f64| format!("{:.1}%", 100.0 * v);
    let nodes: Vec<Vec<String>> = r
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.node.clone(),
                pct(n.cpu_before),
                pct(n.cpu_after),
                pct(n.memory_before),
                pct(n.memory_after),
                format!("{} -> {}", n.pods_before, n.pods_after),
                if n.to_empty { "yes" } else { "" }.to_string(),
            ]
        })
        .collect();
    println!("\nUtilisation:");
    print!(
        "{}",
        table(
            &[
                "NODE",
                "CPU BEFORE",
                "CPU AFTER",
                "MEM BEFORE",
                "MEM AFTER",
                "PODS",
                "EMPTY"
            ],
            &nodes
        )
    );
    println!(
        "\nMILP: {} moves (cost {:.2}, optimal: {}{}{}); greedy baseline: {} moves (cost {:.2}, targets met: {}); targets met: {}",
        r.milp.moves,
        r.milp.cost,
        r.optimal,
        if r.fell_back { ", fell back to greedy" } else { "" },
        if r.restricted { ", restricted to pods on nodes missing a target" } else { "" },
        r.greedy.moves,
        r.greedy.cost,
        r.greedy.targets_met,
        r.targets_met
    );
}
