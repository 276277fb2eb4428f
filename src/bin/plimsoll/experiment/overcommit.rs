//! `plimsoll experiment overcommit`: Bitbrains VMs packed by requests and by predicted
//! peak usage, then the test period replayed.

use super::ExpFormat;
use crate::options::PolicyArgs;
use crate::Status;
use anyhow::{bail, Context, Result};
use clap::Args;
use plimsoll::datasets::{bitbrains, Strictness};
use plimsoll::experiment::overcommit::{self, learned, workload, OvercommitConfig};
use plimsoll::model::Quantity;
use plimsoll::place::usage::UsageOptions;
use plimsoll::place::{policy_by_name, Placer};
use std::path::PathBuf;

/// Arguments of `plimsoll experiment overcommit`.
#[derive(Debug, Args)]
pub struct OvercommitArgs {
    /// Folder of Bitbrains VM files (e.g. bitbrains-rnd/2013-7).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// CPU of every node, a Kubernetes quantity in cores (`32`, `16500m`).
    #[arg(long = "node-cpu", value_name = "N", default_value = "32")]
    pub node_cpu: String,
    /// Memory of every node, a Kubernetes quantity (`512Gi`).
    #[arg(long = "node-memory", value_name = "Q", default_value = "512Gi")]
    pub node_memory: String,
    /// Number of nodes (default: one per VM).
    #[arg(long, value_name = "N")]
    pub nodes: Option<usize>,
    /// Safety margin: a VM is charged its predicted peak × (1 + F), at most its request.
    #[arg(long, value_name = "F", default_value_t = 0.1)]
    pub margin: f64,
    /// Peak predictor from the history: nsigma (mean + 3σ), nsigma:N, max, vpa (p90 ×
    /// 1.15), pNN, or a learned model (knn, svr; also the predict module's baselines
    /// last-value, moving-max, vpa-p90, n-sigma): the largest 1-hour forecast over the
    /// last --window-hours of history.
    #[arg(long, value_name = "NAME", default_value = "nsigma")]
    pub predictor: String,
    /// Learned predictors: hours of history (the most recent) over which their 1-hour
    /// forecasts are maximised.
    #[arg(long = "window-hours", value_name = "H", default_value_t = 168)]
    pub window_hours: usize,
    /// Also pack memory by its predicted peak (default: memory by request).
    #[arg(long = "memory-by-usage")]
    pub memory_by_usage: bool,
    /// Comma-separated placement policies, each run in both modes.
    #[arg(long, value_name = "LIST", default_value = "best-fit,milp")]
    pub policies: String,
    /// Fraction of the time range used as history (the rest is replayed).
    #[arg(long = "history-fraction", value_name = "F", default_value_t = 0.7)]
    pub history_fraction: f64,
    #[command(flatten)]
    pub policy_args: PolicyArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: ExpFormat,
    /// Also rebalance the first policy's usage-mode end state: bring every node under
    /// this fraction of its CPU, MILP against the greedy baseline.
    #[arg(long, value_name = "FRACTION")]
    pub rebalance_high: Option<f64>,
    /// The usage the rebalancer sees: the predicted peaks, or the real replay peaks.
    #[arg(long, value_enum, default_value = "predicted")]
    pub rebalance_usage: RebalanceUsageArg,
    /// Seconds the rebalancing MILP may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub rebalance_time_limit: f64,
}

/// Which usage the rebalancer sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RebalanceUsageArg {
    /// The peaks predicted from the history.
    Predicted,
    /// The real peaks over the replay period.
    ReplayPeak,
}

/// Runs the experiment.
pub fn run(a: &OvercommitArgs) -> Result<Status> {
    let node_cpu_milli = Quantity::parse_milli(&a.node_cpu)
        .with_context(|| format!("invalid option --node-cpu {:?}", a.node_cpu))?;
    let node_memory_bytes = Quantity::parse_units(&a.node_memory)
        .with_context(|| format!("invalid option --node-memory {:?}", a.node_memory))?;
    let usage = UsageOptions::new(a.margin, a.memory_by_usage)?;
    let config = OvercommitConfig {
        node_cpu_milli,
        node_memory_bytes,
        nodes: a.nodes,
        usage,
    };
    config.validate()?;
    let opts = a.policy_args.to_options()?;
    let names: Vec<&str> = a
        .policies
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        bail!("invalid option --policies: no policy named");
    }
    let policies: Vec<Box<dyn Placer>> = names
        .iter()
        .map(|n| policy_by_name(n, &opts))
        .collect::<Result<_, _>>()
        .context("invalid option --policies")?;
    let set = bitbrains::load_dir(&a.data, Strictness::Strict)
        .with_context(|| format!("cannot load the VMs of {}", a.data.display()))?;
    if set.vms.is_empty() {
        bail!("{}: no *.csv VM file", a.data.display());
    }
    let workloads = workload::split(&set.vms, a.history_fraction, 300)?;
    if a.window_hours == 0 {
        bail!("invalid option --window-hours: 0 hours is no window");
    }
    let window_steps = a.window_hours.saturating_mul(3600) / 300;
    let estimator = learned::estimator_for(&a.predictor, &workloads, window_steps)?;
    let refs: Vec<&dyn Placer> = policies.iter().map(AsRef::as_ref).collect();
    let mut report = overcommit::run(&workloads, &config, &refs, estimator.as_ref())?;
    if let Some(high) = a.rebalance_high {
        use plimsoll::balance::BalanceOptions;
        use plimsoll::experiment::overcommit::rebalance::{rebalance, UsageSource};
        let options = BalanceOptions {
            high,
            time_limit_seconds: a.rebalance_time_limit,
            ..BalanceOptions::default()
        };
        options
            .check()
            .context("invalid option --rebalance-high or --rebalance-time-limit")?;
        let end = overcommit::end_state(&workloads, &config, refs[0], estimator.as_ref())?;
        let source = match a.rebalance_usage {
            RebalanceUsageArg::Predicted => UsageSource::Predicted,
            RebalanceUsageArg::ReplayPeak => UsageSource::ReplayPeak,
        };
        report.rebalance = Some(rebalance(&end, source, &options)?.0);
    }
    match a.output {
        ExpFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        ExpFormat::Table => {
            print!("{}", report.table());
            if let Some(r) = &report.rebalance {
                println!(
                    "rebalance ({:?} usage, high {}): {} hot nodes; MILP {} moves (targets met: {}, optimal: {}), greedy {} moves (targets met: {})",
                    r.usage, r.high, r.hot_nodes, r.milp_moves, r.milp_targets_met, r.milp_optimal, r.greedy_moves, r.greedy_targets_met
                );
            }
        }
    }
    Ok(Status::Ok)
}
