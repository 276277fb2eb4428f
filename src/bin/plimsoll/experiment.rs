//! `plimsoll experiment`: reproduce published experiments (the FGD paper's saturation
//! run on the openb trace).

use crate::Status;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use plimsoll::datasets::openb;
use plimsoll::experiment::saturation::{self, registry, report::Report, TieMode};
use std::path::PathBuf;
use std::time::Instant;

mod overcommit;

/// Arguments of `plimsoll experiment`.
#[derive(Debug, Args)]
pub struct ExperimentArgs {
    #[command(subcommand)]
    pub which: Experiment,
}

/// The experiments.
#[derive(Debug, Subcommand)]
pub enum Experiment {
    /// The FGD paper's saturation run: pods arrive (shuffled originals, then random
    /// copies up to TUNE × cluster GPU), never leave; GPU allocation % vs arrived %.
    Saturation(SaturationArgs),
    /// Bitbrains VMs packed by requests and by predicted peak usage, then the test
    /// period replayed: pods per node and overloaded node-intervals for each mode.
    Overcommit(overcommit::OvercommitArgs),
}

/// Output format of the experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExpFormat {
    /// A text table.
    Table,
    /// The JSON document.
    Json,
}

/// How ties are broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TieArg {
    /// A fixed node order drawn from the seed.
    Order,
    /// Uniformly random among the tied nodes (the paper's kube-scheduler).
    Random,
}

/// Arguments of `plimsoll experiment saturation`.
#[derive(Debug, Args)]
pub struct SaturationArgs {
    /// openb node list (the paper: openb_node_list_gpu_node.csv).
    #[arg(long, value_name = "FILE")]
    pub nodes: PathBuf,
    /// openb pod list (the paper: openb_pod_list_default.csv).
    #[arg(long, value_name = "FILE")]
    pub pods: PathBuf,
    /// Comma-separated policies: random, dot-product, gpu-clustering, gpu-packing,
    /// best-fit, fgd (the paper's baselines), engine:KIND (the engine's own), or the
    /// groups `paper` and `all`.
    #[arg(long, value_name = "LIST", default_value = "paper")]
    pub policies: String,
    /// Seeds: a range `A-B` (inclusive) or a comma-separated list.
    #[arg(long, value_name = "SEEDS", default_value = "42-51")]
    pub seeds: String,
    /// Arrived GPU demand at which copies stop, as a multiple of the cluster's GPUs.
    #[arg(long, value_name = "RATIO", default_value_t = 1.3)]
    pub tune: f64,
    /// How equal best scores are broken.
    #[arg(long, value_enum, default_value = "order")]
    pub ties: TieArg,
    /// Write an SVG plot of the curves here.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: ExpFormat,
    /// Leave timings out of the JSON (makes it byte-identical across runs).
    #[arg(long)]
    pub no_timing: bool,
    /// Also compute, per seed, an upper bound on the GPU allocation any placement of the
    /// arrivals can reach (an integer program over node types; see docs/saturation.md).
    #[arg(long)]
    pub bound: bool,
    /// Seconds HiGHS may spend on each seed's bound program.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub bound_time_limit: f64,
}

/// Parses `A-B` or `a,b,c`.
pub fn parse_seeds(s: &str) -> Result<Vec<u64>> {
    let s = s.trim();
    let bad = || format!("invalid option --seeds: {s:?} is not A-B or a comma-separated list");
    let seeds: Vec<u64> = if let Some((a, b)) = s.split_once('-') {
        let a: u64 = a.trim().parse().with_context(bad)?;
        let b: u64 = b.trim().parse().with_context(bad)?;
        if a > b || b - a >= 10_000 {
            bail!("invalid option --seeds: range {a}-{b} is empty or too long");
        }
        (a..=b).collect()
    } else {
        s.split(',')
            .map(|x| x.trim().parse::<u64>().with_context(bad))
            .collect::<Result<_>>()?
    };
    if seeds.is_empty() {
        bail!(bad());
    }
    Ok(seeds)
}

/// Runs the experiment.
pub fn run(args: &ExperimentArgs) -> Result<Status> {
    match &args.which {
        Experiment::Saturation(a) => run_saturation(a),
        Experiment::Overcommit(a) => overcommit::run(a),
    }
}

fn run_saturation(a: &SaturationArgs) -> Result<Status> {
    let max = plimsoll::experiment::saturation::workload::MAX_TUNE;
    if !(a.tune.is_finite() && (0.0..=max).contains(&a.tune)) {
        bail!(
            "invalid option --tune: {} is not a ratio in 0..={max}",
            a.tune
        );
    }
    let seeds = parse_seeds(&a.seeds)?;
    let policies = registry::parse_list(&a.policies).context("invalid option --policies")?;
    let nodes = openb::load_nodes(&a.nodes)?;
    let pods = openb::load_pods(&a.pods)?;
    let ties = match a.ties {
        TieArg::Order => TieMode::Order,
        TieArg::Random => TieMode::Random,
    };
    let start = Instant::now();
    let runs = saturation::run_all(&nodes, &pods, &policies, &seeds, a.tune, ties)?;
    let wall = start.elapsed().as_secs_f64();
    let bounds = if a.bound {
        if !(a.bound_time_limit.is_finite() && a.bound_time_limit > 0.0) {
            bail!(
                "invalid option --bound-time-limit: {} is not a positive number of seconds",
                a.bound_time_limit
            );
        }
        Some(saturation::bound::per_seed(
            &nodes,
            &pods,
            &seeds,
            a.tune,
            a.bound_time_limit,
        )?)
    } else {
        None
    };
    let names: Vec<String> = policies.iter().map(|p| p.name()).collect();
    let report = Report::new(
        a.nodes.display().to_string(),
        a.pods.display().to_string(),
        a.tune,
        &seeds,
        &names,
        &runs,
        !a.no_timing,
    )
    .with_bounds(bounds);
    if let Some(path) = &a.plot {
        report
            .plot(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot draw the plot: {e}", path.display()))?;
    }
    match a.output {
        ExpFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        ExpFormat::Table => {
            print!("{}", report.table());
            println!(
                "{} policies x {} seeds, tune {}, ties {}: {wall:.2} s wall ({} threads)",
                names.len(),
                seeds.len(),
                a.tune,
                ties.name(),
                rayon::current_num_threads()
            );
        }
    }
    Ok(Status::Ok)
}
