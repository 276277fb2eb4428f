//! `plimsoll experiment`: reproduce published experiments (the FGD paper's saturation
//! run on the openb trace).

use crate::Status;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use plimsoll::datasets::openb;
use plimsoll::experiment::saturation::{self, compare, registry, report::Report, TieMode};
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
    /// openb pod list (the paper: openb_pod_list_default.csv); several lists (repeat
    /// the option or give several files) run one after the other.
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    pub pods: Vec<PathBuf>,
    /// Comma-separated policies: random, dot-product, gpu-clustering, gpu-packing,
    /// best-fit, fgd (the paper's baselines), plimsoll (Plimsoll's recommended online
    /// policy), cbf, engine:KIND (the engine's own), lookahead:W, or the groups `paper`
    /// and `all`.
    #[arg(long, value_name = "LIST", default_value = "paper")]
    pub policies: String,
    /// Compare policy A against B over the whole curve, per pod list: the worst point of
    /// A − B over arrived 10..130% (and where), the mean of A − B, the levels where A is
    /// below, and both at 100% and 130%. A and B are added to --policies if missing.
    /// With --plot, the plot shows A, B and (with --bound) the offline bound, and A − B.
    #[arg(long, value_name = "A,B")]
    pub compare: Option<String>,
    /// Seeds: a range `A-B` (inclusive) or a comma-separated list.
    #[arg(long, value_name = "SEEDS", default_value = "42-51")]
    pub seeds: String,
    /// Arrived GPU demand at which copies stop, as a multiple of the cluster's GPUs.
    #[arg(long, value_name = "RATIO", default_value_t = 1.3)]
    pub tune: f64,
    /// How equal best scores are broken.
    #[arg(long, value_enum, default_value = "order")]
    pub ties: TieArg,
    /// Write an SVG plot of the curves here (with several pod lists, one file per list:
    /// FILE-LIST.svg).
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

/// The plot path for `list` when several lists run: `FILE-LIST.svg` next to `FILE.svg`.
fn plot_path(base: &std::path::Path, list: &str, several: bool) -> PathBuf {
    if !several {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "plot".into());
    let ext = base
        .extension()
        .map(|e| e.to_string_lossy().to_string())
        .unwrap_or_else(|| "svg".into());
    base.with_file_name(format!("{stem}-{list}.{ext}"))
}

fn run_saturation(a: &SaturationArgs) -> Result<Status> {
    let max = plimsoll::experiment::saturation::workload::MAX_TUNE;
    if !(a.tune.is_finite() && (0.0..=max).contains(&a.tune)) {
        bail!(
            "invalid option --tune: {} is not a ratio in 0..={max}",
            a.tune
        );
    }
    if a.bound && !(a.bound_time_limit.is_finite() && a.bound_time_limit > 0.0) {
        bail!(
            "invalid option --bound-time-limit: {} is not a positive number of seconds",
            a.bound_time_limit
        );
    }
    let seeds = parse_seeds(&a.seeds)?;
    let compare = match &a.compare {
        None => None,
        Some(s) => match s.split(',').map(str::trim).collect::<Vec<_>>()[..] {
            [x, y] if !x.is_empty() && !y.is_empty() && x != y => {
                Some((x.to_string(), y.to_string()))
            }
            _ => bail!("invalid option --compare: {s:?} is not two different policies A,B"),
        },
    };
    let mut list = a.policies.clone();
    if let Some((x, y)) = &compare {
        list = format!("{list},{x},{y}");
    }
    let policies = registry::parse_list(&list).context("invalid option --policies")?;
    let names: Vec<String> = policies.iter().map(|p| p.name()).collect();
    if let Some((x, y)) = &compare {
        for p in [x, y] {
            if !names.contains(p) {
                bail!("invalid option --compare: {p:?} names no single policy (a group or alias?)");
            }
        }
    }
    let nodes = openb::load_nodes(&a.nodes)?;
    let ties = match a.ties {
        TieArg::Order => TieMode::Order,
        TieArg::Random => TieMode::Random,
    };
    let several = a.pods.len() > 1;
    let mut reports = Vec::new();
    let mut summary = Vec::new();
    for pods_path in &a.pods {
        let pods = openb::load_pods(pods_path)?;
        let start = Instant::now();
        let runs = saturation::run_all(&nodes, &pods, &policies, &seeds, a.tune, ties)?;
        let wall = start.elapsed().as_secs_f64();
        let bounds = if a.bound {
            // With --compare, the bound is drawn along the curve: every 10% arrived.
            let at: Vec<usize> = if compare.is_some() {
                (1..=13).map(|k| k * 10).collect()
            } else {
                saturation::bound::AT.to_vec()
            };
            Some(saturation::bound::per_seed_at(
                &nodes,
                &pods,
                &seeds,
                a.tune,
                a.bound_time_limit,
                &at,
            )?)
        } else {
            None
        };
        let mut report = Report::new(
            a.nodes.display().to_string(),
            pods_path.display().to_string(),
            a.tune,
            &seeds,
            &names,
            &runs,
            !a.no_timing,
        )
        .with_bounds(bounds);
        let list_name = compare::list_name(&report.pods);
        if let Some((x, y)) = &compare {
            let c = compare::compare(&report, x, y).map_err(|e| anyhow::anyhow!(e))?;
            summary.push(c.clone());
            report.compare = Some(c);
        }
        if let Some(base) = &a.plot {
            let path = plot_path(base, &list_name, several);
            match &report.compare {
                Some(c) => compare::plot(&report, c, &path),
                None => report.plot(&path),
            }
            .map_err(|e| anyhow::anyhow!("{}: cannot draw the plot: {e}", path.display()))?;
        }
        if a.output == ExpFormat::Table {
            if several {
                println!("== {list_name}");
            }
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
        reports.push(report);
    }
    match a.output {
        ExpFormat::Json if several => println!("{}", serde_json::to_string_pretty(&reports)?),
        ExpFormat::Json => println!("{}", serde_json::to_string_pretty(&reports[0])?),
        ExpFormat::Table => {
            if let Some((x, y)) = &compare {
                println!();
                print!("{}", compare::header(x, y));
                for c in &summary {
                    print!("{}", compare::row(c));
                }
                if several {
                    print!("{}", compare::footer(&summary));
                }
            }
        }
    }
    Ok(Status::Ok)
}
