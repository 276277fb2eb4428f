//! `plimsoll simulate`: replay a trace (openb or Alibaba 2017) under several policies in
//! parallel and compare them; optionally write the time series (CSV), summaries (JSON)
//! and an SVG plot.

use crate::options::PolicyArgs;
use crate::output::table;
use crate::Status;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use plimsoll::datasets::data_dir;
use plimsoll::sim::{self, QueueMode, Sampling, SimConfig, SimPolicy, SimResult, Summary, Trace};
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which trace to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceKind {
    /// Alibaba GPU trace 2023 (`--nodes` node list, `--pods` pod list).
    Openb,
    /// Alibaba cluster-trace-v2017 (`--nodes` server_event.csv, `--pods` batch_task.csv).
    Alibaba2017,
}

/// Output formats of `simulate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimFormat {
    /// Aligned columns.
    Table,
    /// One JSON array.
    Json,
}

/// Arguments of `plimsoll simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The trace.
    #[arg(long, value_enum, default_value = "openb")]
    pub trace: TraceKind,
    /// Node file (default: from the data folder).
    #[arg(long, value_name = "FILE")]
    pub nodes: Option<PathBuf>,
    /// Pod file (default: from the data folder).
    #[arg(long, value_name = "FILE")]
    pub pods: Option<PathBuf>,
    /// Comma-separated policies: online names (best-fit, fgd, …) place on arrival;
    /// `milp` and `batch:NAME` place the queue on the tick.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "best-fit,fgd"
    )]
    pub policies: Vec<String>,
    /// Drop pods that do not fit instead of retrying them.
    #[arg(long)]
    pub drop_unschedulable: bool,
    /// Seconds between batch ticks.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub tick: u64,
    /// Sample every SECS seconds instead of after every event time.
    #[arg(long, value_name = "SECS")]
    pub sample_interval: Option<u64>,
    /// Stop the simulation at this time (seconds from the trace start).
    #[arg(long, value_name = "SECS")]
    pub until: Option<u64>,
    /// Alibaba 2017: at most this many pod instances (file order).
    #[arg(long, value_name = "N", default_value_t = 50_000)]
    pub max_pods: usize,
    /// Write POLICY.csv (time series) and POLICY.json (summary) here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write an SVG plot of allocation and fragmentation curves.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: SimFormat,
    /// No progress bars.
    #[arg(short, long)]
    pub quiet: bool,
    /// Policy options (seed, MILP settings).
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// One policy's result with its wall time.
#[derive(Debug, Serialize)]
struct Row {
    #[serde(flatten)]
    summary: Summary,
    wall_seconds: f64,
}

fn default_file(given: &Option<PathBuf>, sub: &str, name: &str, flag: &str) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.clone());
    }
    match data_dir() {
        Some(d) => Ok(d.join(sub).join(name)),
        None => bail!("no data folder found (set PLIMSOLL_DATA) and no {flag} given"),
    }
}

fn load_trace(args: &SimulateArgs) -> Result<Trace> {
    Ok(match args.trace {
        TraceKind::Openb => {
            let n = default_file(
                &args.nodes,
                "openb",
                "openb_node_list_all_node.csv",
                "--nodes",
            )?;
            let p = default_file(&args.pods, "openb", "openb_pod_list_default.csv", "--pods")?;
            Trace::from_openb(&n, &p)?
        }
        TraceKind::Alibaba2017 => {
            let n = default_file(&args.nodes, "alibaba-2017", "server_event.csv", "--nodes")?;
            let p = default_file(&args.pods, "alibaba-2017", "batch_task.csv", "--pods")?;
            Trace::load_alibaba2017(&n, &p, args.max_pods)?
        }
    })
}

/// File-name-safe policy name.
fn file_stem(policy: &str) -> String {
    policy.replace([':', '/'], "_")
}

fn write_outputs(dir: &Path, results: &[(SimResult, f64)]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (r, _) in results {
        let stem = file_stem(&r.summary.policy);
        let csv = dir.join(format!("{stem}.csv"));
        let f =
            std::fs::File::create(&csv).with_context(|| format!("creating {}", csv.display()))?;
        r.write_csv(std::io::BufWriter::new(f))?;
        let json = dir.join(format!("{stem}.json"));
        std::fs::write(&json, r.summary_json() + "\n")
            .with_context(|| format!("writing {}", json.display()))?;
    }
    Ok(())
}

/// Runs `plimsoll simulate`.
pub fn run(args: &SimulateArgs) -> Result<Status> {
    let opts = args.policy.to_options()?;
    if args.tick == 0 {
        bail!("invalid option --tick: must be at least 1 second");
    }
    if args.sample_interval == Some(0) {
        bail!("invalid option --sample-interval: must be at least 1 second");
    }
    let policies = args
        .policies
        .iter()
        .map(|n| SimPolicy::by_name(n.trim(), &opts))
        .collect::<Result<Vec<_>, _>>()
        .context("invalid option --policies")?;
    let trace = load_trace(args)?;
    let config = SimConfig {
        mode: if args.drop_unschedulable {
            QueueMode::Drop
        } else {
            QueueMode::Retry
        },
        tick_seconds: args.tick,
        sampling: args
            .sample_interval
            .map_or(Sampling::EveryEvent, Sampling::Interval),
        until: args.until,
        ..SimConfig::default()
    };
    let hidden = args.quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let bars = MultiProgress::with_draw_target(if hidden {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    let style = ProgressStyle::with_template("{prefix:>16} {bar:40} {pos}/{len} {elapsed}")
        .expect("a valid template");
    let total = (trace.pods.len() + trace.node_events.len()) as u64;
    let outcomes: Vec<_> = policies
        .par_iter()
        .map(|p| {
            let bar = bars.add(ProgressBar::new(total));
            bar.set_style(style.clone());
            bar.set_prefix(p.name());
            let start = Instant::now();
            let r = sim::simulate_with_progress(&trace, p, &config, &mut |done, _| {
                bar.set_position(done)
            });
            bar.finish();
            (p.name(), r.map(|r| (r, start.elapsed().as_secs_f64())))
        })
        .collect();
    let mut status = Status::Ok;
    let mut results = Vec::new();
    for (name, r) in outcomes {
        match r {
            Ok(r) => results.push(r),
            Err(e) => {
                eprintln!("error: policy {name}: {e}");
                status = Status::Invalid;
            }
        }
    }
    if let Some(dir) = &args.out {
        write_outputs(dir, &results)?;
    }
    if let Some(svg) = &args.plot {
        let runs: Vec<(&str, &[sim::Sample])> = results
            .iter()
            .map(|(r, _)| (r.summary.policy.as_str(), r.samples.as_slice()))
            .collect();
        sim::plot::write_svg(svg, &runs)?;
    }
    print_results(args.output, &results)?;
    Ok(status)
}

fn print_results(format: SimFormat, results: &[(SimResult, f64)]) -> Result<()> {
    match format {
        SimFormat::Json => {
            let rows: Vec<Row> = results
                .iter()
                .map(|(r, w)| Row {
                    summary: r.summary.clone(),
                    wall_seconds: *w,
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
        SimFormat::Table => {
            let pct = |v: f64| format!("{:.1}", 100.0 * v);
            let rows: Vec<Vec<String>> = results
                .iter()
                .map(|(r, w)| {
                    let s = &r.summary;
                    vec![
                        s.policy.clone(),
                        s.placed_pods.to_string(),
                        s.dropped.to_string(),
                        s.still_pending.to_string(),
                        format!("{:.1}", s.wait.mean),
                        s.wait.p99.to_string(),
                        pct(s.mean_cpu_alloc),
                        pct(s.mean_mem_alloc),
                        pct(s.mean_gpu_alloc),
                        pct(s.mean_gpu_frag_ratio),
                        s.peak_nodes_in_use.to_string(),
                        format!("{w:.2}"),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "policy",
                        "placed",
                        "dropped",
                        "pending",
                        "wait_mean_s",
                        "wait_p99_s",
                        "cpu%",
                        "mem%",
                        "gpu%",
                        "frag%",
                        "peak_nodes",
                        "wall_s",
                    ],
                    &rows,
                )
            );
        }
    }
    Ok(())
}
