//! The control plane's options (controllers, scheduler, leader election), shared by
//! `plimsoll server` (in-process, like k3s) and the standalone `plimsoll controllers` and
//! `plimsoll scheduler`, which reach an API server through a kubeconfig.

use crate::options::ObjectiveArg;
use crate::Status;
use anyhow::{bail, Context, Result};
use clap::Args;
use plimsoll::place::PolicyOptions;
use plimsoll::server::cidr::Ipv4Cidr;
use plimsoll::server::clock::OrchClock;
use plimsoll::server::control::{self, ControlPlaneConfig};
use plimsoll::server::controllers::ipam::IpamConfig;
use plimsoll::server::controllers::ControllersConfig;
use plimsoll::server::leader::{default_identity, LeaderConfig};
use plimsoll::server::metrics::{serve_metrics, Metrics};
use plimsoll::server::scheduling::queue::Backoff;
use plimsoll::server::scheduling::usage::{UsageAwareConfig, UsageModel};
use plimsoll::server::scheduling::SchedulerConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The scheduling loop's options.
#[derive(Debug, Clone, Args)]
pub struct SchedulerArgs {
    /// Default placement policy: any online policy (best-fit, kube-default, fgd, …) or milp.
    #[arg(long, default_value = "best-fit")]
    pub policy: String,
    /// The MILP's second goal.
    #[arg(long, value_enum, default_value = "pack")]
    pub objective: ObjectiveArg,
    /// Time budget of one batch decision (the MILP's time limit), seconds.
    #[arg(long = "batch-time-limit", value_name = "SECS", default_value_t = 2.0)]
    pub batch_time_limit: f64,
    /// Pods arriving within this many milliseconds are placed together.
    #[arg(long = "batch-window", value_name = "MS", default_value_t = 200)]
    pub batch_window: u64,
    /// Largest batch.
    #[arg(long, default_value_t = 5000)]
    pub max_batch: usize,
    /// Bindings in flight at once.
    #[arg(long, default_value_t = 64)]
    pub bind_concurrency: usize,
    /// Never preempt lower-priority pods.
    #[arg(long)]
    pub no_preemption: bool,
    /// Place by predicted peak usage (from the node agents' usage history) instead of
    /// requests: a pod with history, or whose workload has history, is charged
    /// min(request, predicted peak) of CPU.
    #[arg(long = "usage-aware")]
    pub usage_aware: bool,
    /// The predictor of `--usage-aware`: knn or svr (learned, with a calibrated margin,
    /// once there is enough history; max of the window × 1.25 until then), or max.
    #[arg(long = "usage-model", value_name = "MODEL", default_value = "knn")]
    pub usage_model: String,
    /// Seconds between two reads of the usage history (`--usage-aware`).
    #[arg(long = "usage-refresh", value_name = "SECS", default_value_t = 10.0)]
    pub usage_refresh: f64,
    /// Charge memory by its prediction too (`--usage-aware`; memory is not compressible,
    /// so by default it stays by request).
    #[arg(long = "usage-memory")]
    pub usage_memory: bool,
}

impl SchedulerArgs {
    /// The loop's configuration, checked.
    pub fn config(&self) -> Result<SchedulerConfig> {
        if !(self.batch_time_limit.is_finite() && self.batch_time_limit > 0.0) {
            bail!(
                "invalid option --batch-time-limit: {} is not a positive number of seconds",
                self.batch_time_limit
            );
        }
        if self.max_batch == 0 {
            bail!("invalid option --max-batch: must be at least 1");
        }
        plimsoll::place::policy_by_name(&self.policy, &PolicyOptions::default())
            .with_context(|| format!("invalid option --policy {}", self.policy))?;
        let model = UsageModel::from_name(&self.usage_model)
            .map_err(|e| anyhow::anyhow!("invalid option --usage-model: {e}"))?;
        if !(self.usage_refresh.is_finite() && (0.1..=3600.0).contains(&self.usage_refresh)) {
            bail!(
                "invalid option --usage-refresh: {} is not a number of seconds in [0.1, 3600]",
                self.usage_refresh
            );
        }
        let usage_aware = self.usage_aware.then(|| UsageAwareConfig {
            model,
            refresh: Duration::from_secs_f64(self.usage_refresh),
            memory: self.usage_memory,
        });
        Ok(SchedulerConfig {
            policy: self.policy.clone(),
            options: PolicyOptions {
                objective: self.objective.into(),
                time_limit_seconds: self.batch_time_limit,
                ..PolicyOptions::default()
            },
            window: Duration::from_millis(self.batch_window),
            max_batch: self.max_batch,
            bind_concurrency: self.bind_concurrency.max(1),
            backoff: Backoff::default(),
            preemption: !self.no_preemption,
            usage_aware,
        })
    }
}

/// The controllers' options.
#[derive(Debug, Clone, Args)]
pub struct ControllerArgs {
    /// A node whose Lease has not been renewed for this many seconds is unreachable.
    #[arg(long = "node-grace", value_name = "SECS", default_value_t = 40.0)]
    pub node_grace: f64,
    /// Seconds pods stay on an unreachable or not-ready node without their own toleration.
    #[arg(
        long = "eviction-timeout",
        value_name = "SECS",
        default_value_t = 300.0
    )]
    pub eviction_timeout: f64,
    /// First delay before a Job recreates a failed pod, seconds (doubles up to 6 minutes).
    #[arg(long = "job-backoff", value_name = "SECS", default_value_t = 10.0)]
    pub job_backoff: f64,
    /// Workers per controller.
    #[arg(long = "controller-workers", default_value_t = 4)]
    pub workers: usize,
    /// Give every Node a pod CIDR (`spec.podCIDR`) from this IPv4 range, as
    /// kube-controller-manager's `--allocate-node-cidrs`. Without it pods share their
    /// node's network.
    #[arg(long = "cluster-cidr", value_name = "CIDR")]
    pub cluster_cidr: Option<String>,
    /// Prefix length of each Node's pod CIDR (with `--cluster-cidr`).
    #[arg(
        long = "node-cidr-mask-size",
        value_name = "BITS",
        default_value_t = 24
    )]
    pub node_cidr_mask_size: u8,
}

fn secs(name: &str, v: f64) -> Result<Duration> {
    if !(v.is_finite() && (0.0..1e9).contains(&v)) {
        bail!("invalid option --{name}: {v} is not a number of seconds");
    }
    Ok(Duration::from_secs_f64(v))
}

impl ControllerArgs {
    /// The controllers' configuration, checked.
    pub fn config(&self) -> Result<ControllersConfig> {
        Ok(ControllersConfig {
            workers: self.workers.max(1),
            node_grace: secs("node-grace", self.node_grace)?,
            eviction_timeout: secs("eviction-timeout", self.eviction_timeout)?,
            job_backoff_base: secs("job-backoff", self.job_backoff)?,
            node_ipam: self
                .cluster_cidr
                .as_deref()
                .map(|c| {
                    let cidr: Ipv4Cidr = c
                        .parse()
                        .map_err(|e| anyhow::anyhow!("invalid option --cluster-cidr: {e}"))?;
                    IpamConfig::new(cidr, self.node_cidr_mask_size)
                        .map_err(|e| anyhow::anyhow!("invalid option: {e}"))
                })
                .transpose()?,
        })
    }
}

/// Leader election's options.
#[derive(Debug, Clone, Args)]
pub struct LeaderArgs {
    /// Run the controllers and scheduler only while holding the Lease
    /// kube-system/NAME (default: on with etcd and for standalone processes).
    #[arg(long = "leader-elect", value_name = "BOOL")]
    pub leader_elect: Option<bool>,
    /// Seconds a Lease that is not renewed stays its holder's.
    #[arg(
        long = "leader-elect-lease-duration",
        value_name = "SECS",
        default_value_t = 15.0
    )]
    pub lease_duration: f64,
    /// Seconds the leader keeps leading without a successful renewal.
    #[arg(
        long = "leader-elect-renew-deadline",
        value_name = "SECS",
        default_value_t = 10.0
    )]
    pub renew_deadline: f64,
    /// Seconds between attempts to take or renew the Lease.
    #[arg(
        long = "leader-elect-retry-period",
        value_name = "SECS",
        default_value_t = 2.0
    )]
    pub retry_period: f64,
}

impl LeaderArgs {
    /// The election's configuration for Lease `name`, if elected (`default_on` applies
    /// when `--leader-elect` is not given).
    pub fn config(&self, name: &str, default_on: bool) -> Result<Option<LeaderConfig>> {
        if !self.leader_elect.unwrap_or(default_on) {
            return Ok(None);
        }
        let mut c = LeaderConfig::new("kube-system", name, &default_identity());
        c.lease_duration = secs("leader-elect-lease-duration", self.lease_duration)?;
        c.renew_deadline = secs("leader-elect-renew-deadline", self.renew_deadline)?;
        c.retry_period = secs("leader-elect-retry-period", self.retry_period)?;
        if c.retry_period.is_zero() || c.renew_deadline <= c.retry_period {
            bail!("leader election needs retry period < renew deadline");
        }
        if c.lease_duration <= c.renew_deadline {
            bail!("leader election needs renew deadline < lease duration");
        }
        Ok(Some(c))
    }
}

/// Options of `plimsoll scheduler`.
#[derive(Debug, Args)]
pub struct StandaloneSchedulerArgs {
    /// The API server's kubeconfig (e.g. DATA_DIR/admin.kubeconfig).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: PathBuf,
    /// Serve Prometheus metrics over plain HTTP on this address.
    #[arg(long = "metrics-listen", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub scheduler: SchedulerArgs,
    #[command(flatten)]
    pub leader: LeaderArgs,
}

/// Options of `plimsoll controllers`.
#[derive(Debug, Args)]
pub struct StandaloneControllersArgs {
    /// The API server's kubeconfig (e.g. DATA_DIR/admin.kubeconfig).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: PathBuf,
    /// Serve Prometheus metrics over plain HTTP on this address.
    #[arg(long = "metrics-listen", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub controllers: ControllerArgs,
    #[command(flatten)]
    pub leader: LeaderArgs,
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn signalled() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

fn standalone(
    kubeconfig: &std::path::Path,
    metrics_listen: Option<SocketAddr>,
    config: ControlPlaneConfig,
) -> Result<Status> {
    runtime()?.block_on(async {
        let client = control::client_from_kubeconfig(kubeconfig).await?;
        let metrics = Metrics::new();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let (mtx, mrx) = tokio::sync::watch::channel(false);
        let served = match metrics_listen {
            Some(addr) => {
                let m = metrics.clone();
                let mut mrx = mrx.clone();
                Some(tokio::spawn(serve_metrics(addr, m, async move {
                    let _ = mrx.wait_for(|s| *s).await;
                })))
            }
            None => None,
        };
        let task = tokio::spawn(control::run(client, config, OrchClock::wall(), metrics, rx));
        signalled().await;
        let _ = tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        let _ = mtx.send(true);
        if let Some(s) = served {
            s.await
                .context("metrics listener")?
                .context("metrics listener")?;
        }
        Ok(Status::Ok)
    })
}

/// `plimsoll scheduler`.
pub fn run_scheduler(args: &StandaloneSchedulerArgs) -> Result<Status> {
    let config = ControlPlaneConfig {
        controllers: None,
        scheduler: Some(args.scheduler.config()?),
        leader_election: args.leader.config("plimsoll-scheduler", true)?,
    };
    standalone(&args.kubeconfig, args.metrics_listen, config)
}

/// `plimsoll controllers`.
pub fn run_controllers(args: &StandaloneControllersArgs) -> Result<Status> {
    let config = ControlPlaneConfig {
        controllers: Some(args.controllers.config()?),
        scheduler: None,
        leader_election: args.leader.config("plimsoll-controllers", true)?,
    };
    standalone(&args.kubeconfig, args.metrics_listen, config)
}
