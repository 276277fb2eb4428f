//! `plimsoll balance`: load manifests with bound pods (the current placement) and a usage
//! file, plan the fewest migrations that meet the thresholds with the MILP, compare with
//! the greedy descheduler-style baseline, print.
//!
//! With `--kubeconfig`, the bound pods and nodes come from the API server and each pod's
//! usage is its predicted peak from the node agents' usage history (the predictor of
//! `--usage-aware` scheduling); `--apply` then evicts the pods the plan moves (the
//! Eviction subresource where the server has it, else a delete with the pod's grace
//! period).

use crate::output::{table, Format};
use crate::Status;
use anyhow::{Context, Result};
use clap::Args;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, EvictParams, ListParams};
use plimsoll::balance::{
    balance, read_usage_file, BalanceError, BalanceOptions, Comparison, Move, NodeUtilisation,
    PodUsage, Usage,
};
use plimsoll::model::Problem;
use plimsoll::server::scheduling::usage::{
    fetch_history, live_cluster, LiveCluster, Method, Predictions, UsageModel, UsagePredictor,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Arguments of `plimsoll balance`.
#[derive(Debug, Args)]
pub struct BalanceArgs {
    /// Manifest files (YAML or JSON); pods with `spec.nodeName` are the current placement
    /// (pending pods are ignored). Repeat for several files.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        required_unless_present = "kubeconfig",
        conflicts_with = "kubeconfig"
    )]
    pub files: Vec<PathBuf>,
    /// Predicted usage CSV: header `pod,cpu[,memory]`, pod as namespace/name or name,
    /// quantities as Kubernetes writes them. Pods not listed use their requests.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "kubeconfig",
        conflicts_with = "kubeconfig"
    )]
    pub usage: Option<PathBuf>,
    /// Read the bound pods and nodes from this API server, and their predicted peak
    /// usage from its usage history (instead of `--file` and `--usage`).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// With `--kubeconfig`: the predictor (knn, svr or max; see `plimsoll server
    /// --usage-model`).
    #[arg(long = "usage-model", value_name = "MODEL", default_value = "knn")]
    pub usage_model: String,
    /// With `--kubeconfig`: evict the pods the plan moves (default: print the plan only).
    #[arg(long, requires = "kubeconfig")]
    pub apply: bool,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    live: Option<LiveReport>,
}

/// What `--kubeconfig` adds to the report.
#[derive(Debug, Serialize)]
struct LiveReport {
    /// The predictor's learned model, if trained (else the window rule).
    model: Option<&'static str>,
    /// Its calibrated margin, cores.
    margin: f64,
    /// Bound pods with a prediction (own or their workload's), and how it was made;
    /// they are charged min(request, prediction) in the plan, as `--usage-aware`
    /// scheduling charges them.
    predicted: BTreeMap<String, LivePrediction>,
    /// Pods left out of the plan, with the reason.
    skipped: Vec<(String, String)>,
    /// With `--apply`: what was done to each moved pod.
    applied: Vec<Applied>,
}

#[derive(Debug, Serialize)]
struct LivePrediction {
    cpu: String,
    memory: String,
    method: Method,
    own: bool,
}

#[derive(Debug, Serialize)]
struct Applied {
    pod: String,
    action: String,
    ok: bool,
    message: String,
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

/// The problem and usage from manifest files and a usage CSV.
fn from_files(args: &BalanceArgs) -> Result<(Problem, Usage)> {
    let loaded = plimsoll::manifest::load_files(&args.files).context("cannot load manifests")?;
    if loaded.nodes.is_empty() {
        anyhow::bail!(
            "{}: the input has no Node objects: nothing to balance",
            crate::output::file_list(&args.files)
        );
    }
    let problem = Problem::from_parts(loaded.nodes, loaded.pods)
        .context("cannot build the cluster from the manifests")?;
    let Some(usage_file) = &args.usage else {
        anyhow::bail!("--usage FILE is required with --file (or use --kubeconfig)");
    };
    let usage = read_usage_file(usage_file, &problem.cluster)?;
    if usage.defaulted() > 0 {
        eprintln!(
            "note: {} bound pod(s) not in {} use their requests as usage",
            usage.defaulted(),
            usage_file.display()
        );
    }
    Ok((problem, usage))
}

/// A live cluster read through `kubeconfig`, with the usage predicted from its history.
struct Live {
    client: kube::Client,
    cluster: LiveCluster,
    predictions: Predictions,
    /// Termination grace period of each bound pod, by `namespace/name`.
    grace: BTreeMap<String, i64>,
}

async fn read_live(kubeconfig: &Path, model: UsageModel) -> Result<Live> {
    let client = plimsoll::server::control::client_from_kubeconfig(kubeconfig).await?;
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .context("listing nodes")?
        .items;
    if nodes.is_empty() {
        anyhow::bail!(
            "{}: the cluster has no nodes: nothing to balance",
            kubeconfig.display()
        );
    }
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await
        .context("listing pods")?
        .items;
    let history = fetch_history(&client)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let predictions =
        tokio::task::spawn_blocking(move || UsagePredictor::new(model).predict(&history))
            .await
            .context("predicting usage")?;
    let cluster = live_cluster(&nodes, &pods, &predictions).map_err(|e| anyhow::anyhow!("{e}"))?;
    let grace = pods
        .iter()
        .map(|p| {
            (
                format!(
                    "{}/{}",
                    p.metadata.namespace.as_deref().unwrap_or_default(),
                    p.metadata.name.as_deref().unwrap_or_default()
                ),
                p.spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
                    .unwrap_or(30),
            )
        })
        .collect();
    Ok(Live {
        client,
        cluster,
        predictions,
        grace,
    })
}

/// Evicts the pods of `moves`: through `pods/eviction` if the server lists it, else
/// by a delete with the pod's own grace period.
async fn apply_moves(live: &Live, moves: &[Move]) -> Result<Vec<Applied>> {
    let eviction = live
        .client
        .list_core_api_resources("v1")
        .await
        .context("reading the server's core resources")?
        .resources
        .iter()
        .any(|r| r.name == "pods/eviction");
    let mut out = Vec::new();
    for m in moves {
        let (ns, name) = m.pod.split_once('/').unwrap_or(("default", m.pod.as_str()));
        let api: Api<Pod> = Api::namespaced(live.client.clone(), ns);
        let (action, result) = if eviction {
            let r = api.evict(name, &EvictParams::default()).await.map(|_| ());
            ("evicted (pods/eviction)".to_string(), r)
        } else {
            let grace = live.grace.get(&m.pod).copied().unwrap_or(30);
            let r = api.delete(name, &DeleteParams::default()).await.map(|_| ());
            (
                format!(
                    "deleted with its grace period of {grace} s (the server has no pods/eviction subresource)"
                ),
                r,
            )
        };
        out.push(Applied {
            pod: m.pod.clone(),
            action,
            ok: result.is_ok(),
            message: match result {
                Ok(()) => format!("planned {} -> {}", m.from, m.to),
                Err(e) => e.to_string(),
            },
        });
    }
    Ok(out)
}

fn quantity_cpu(cores: f64) -> String {
    format!("{}m", (cores * 1000.0).ceil().max(0.0) as u64)
}

fn quantity_memory(bytes: u64) -> String {
    format!("{}Mi", bytes.div_ceil(1 << 20))
}

/// Runs the subcommand.
pub fn run(args: &BalanceArgs) -> Result<Status> {
    let rt = match &args.kubeconfig {
        Some(_) => Some(
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the tokio runtime")?,
        ),
        None => None,
    };
    let (problem, usage, live) = match (&args.kubeconfig, &rt) {
        (Some(kc), Some(rt)) => {
            let model = UsageModel::from_name(&args.usage_model)
                .map_err(|e| anyhow::anyhow!("invalid option --usage-model: {e}"))?;
            let live = rt.block_on(read_live(kc, model))?;
            for (pod, why) in &live.cluster.skipped {
                eprintln!("warning: {pod} left out of the plan: {why}");
            }
            let entries = live.cluster.estimates.iter().map(|(k, (e, _))| {
                (
                    k.as_str(),
                    PodUsage {
                        cpu_milli: e.cpu_milli(),
                        memory_bytes: Some(e.memory),
                    },
                )
            });
            let usage = Usage::from_keys(&live.cluster.problem.cluster, entries)?;
            if usage.defaulted() > 0 {
                eprintln!(
                    "note: {} bound pod(s) without usage history (own or their workload's) use their requests as usage",
                    usage.defaulted()
                );
            }
            (live.cluster.problem.clone(), usage, Some(live))
        }
        _ => {
            let (p, u) = from_files(args)?;
            (p, u, None)
        }
    };
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
    let mut live_report = live.as_ref().map(|l| LiveReport {
        model: l.predictions.model,
        margin: l.predictions.margin,
        predicted: l
            .cluster
            .estimates
            .iter()
            .map(|(k, (e, own))| {
                (
                    k.clone(),
                    LivePrediction {
                        cpu: quantity_cpu(e.cpu),
                        memory: quantity_memory(e.memory),
                        method: e.method,
                        own: *own,
                    },
                )
            })
            .collect(),
        skipped: l.cluster.skipped.clone(),
        applied: Vec::new(),
    });
    if let (true, Some(l), Some(rt), Some(lr)) = (args.apply, &live, &rt, &mut live_report) {
        lr.applied = rt.block_on(apply_moves(l, &c.milp.moves))?;
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
        live: live_report,
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
    if let Some(l) = &r.live {
        let rows: Vec<Vec<String>> = l
            .predicted
            .iter()
            .map(|(pod, p)| {
                vec![
                    pod.clone(),
                    p.cpu.clone(),
                    p.memory.clone(),
                    format!(
                        "{}{}",
                        match p.method {
                            Method::Model => "model",
                            Method::Window => "window",
                        },
                        if p.own { "" } else { " (workload)" }
                    ),
                ]
            })
            .collect();
        println!(
            "\nPredicted peak usage ({}):",
            match l.model {
                Some(m) => format!("{m} with a calibrated margin of {:.3} cores", l.margin),
                None => "max of the window × 1.25; too little history for a learned model".into(),
            }
        );
        print!("{}", table(&["POD", "CPU", "MEMORY", "METHOD"], &rows));
        if !l.applied.is_empty() {
            println!("\nApplied:");
            for a in &l.applied {
                println!(
                    "{}: {}{}",
                    a.pod,
                    if a.ok { &a.action } else { "failed" },
                    if a.ok {
                        String::new()
                    } else {
                        format!(": {}", a.message)
                    }
                );
            }
            println!("(the replacements are placed by the scheduler, not necessarily on the plan's targets)");
        } else {
            println!("\nDry run: nothing evicted (--apply evicts the moved pods).");
        }
    }
}
