//! `plimsoll server`: the reference orchestrator's API server (HTTPS, kubeconfig, tokens)
//! on the embedded store or on etcd.

use crate::control::{ControllerArgs, LeaderArgs, SchedulerArgs};
use crate::Status;
use anyhow::Context;
use clap::{Args, ValueEnum};
use plimsoll::server::api::{self, ServerConfig, StoreChoice};
use plimsoll::server::clock::OrchClock;
use plimsoll::server::control::{self, ControlPlaneConfig};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Which store keeps the objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreArg {
    /// redb in DATA_DIR/store.redb: every write durable before it is acknowledged.
    Embedded,
    /// An etcd cluster (`--etcd-endpoints`).
    Etcd,
}

/// Options of `plimsoll server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Directory of the store (embedded), certificates, tokens and admin.kubeconfig.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Address to listen on (HTTPS).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Store of the objects.
    #[arg(long, value_enum, default_value = "embedded")]
    pub store: StoreArg,
    /// etcd client URLs, comma-separated (with `--store etcd`).
    #[arg(long, value_delimiter = ',', value_name = "URLS")]
    pub etcd_endpoints: Vec<String>,
    /// Kubernetes static token file: `token,user,uid,"group1,group2"` per line.
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// Extra DNS names or IP addresses for the serving certificate (repeatable).
    #[arg(long = "tls-san", value_name = "NAME")]
    pub tls_san: Vec<String>,
    /// Largest request body accepted, in bytes (413 above).
    #[arg(long, default_value_t = 3 * 1024 * 1024)]
    pub max_body: usize,
    /// Seconds between watch bookmarks (for clients that allow them).
    #[arg(long, default_value_t = 60)]
    pub bookmark_interval: u64,
    /// Seconds between compactions of the store's event history.
    #[arg(long, default_value_t = 300)]
    pub compact_interval: u64,
    /// Usage samples kept per pod (what agents report; the usage-aware scheduler and
    /// `plimsoll balance --kubeconfig` predict from them). At least 1.
    #[arg(long, default_value_t = 360)]
    pub usage_samples: usize,
    /// Seconds after which a pod or node no longer reported leaves the usage history.
    #[arg(long, default_value_t = 300)]
    pub usage_retention: u64,
    /// IPv4 range Services get their cluster IPs from (k3s's default).
    #[arg(
        long = "service-cidr",
        value_name = "CIDR",
        default_value = "10.43.0.0/16"
    )]
    pub service_cidr: String,
    /// Ports NodePort and LoadBalancer Services get their node ports from.
    #[arg(
        long = "service-node-port-range",
        value_name = "LOW-HIGH",
        default_value = "30000-32767"
    )]
    pub service_node_port_range: String,
    /// Worker threads of the runtime (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Do not run the controllers in this process.
    #[arg(long)]
    pub no_controllers: bool,
    /// Do not run the scheduler in this process.
    #[arg(long)]
    pub no_scheduler: bool,
    #[command(flatten)]
    pub scheduler: SchedulerArgs,
    #[command(flatten)]
    pub controllers: ControllerArgs,
    #[command(flatten)]
    pub leader: LeaderArgs,
}

/// Runs the server until Ctrl-C or SIGTERM.
pub fn run(args: &ServerArgs) -> anyhow::Result<Status> {
    let mut config = ServerConfig::new(&args.data_dir, args.listen);
    config.store = match args.store {
        StoreArg::Embedded => StoreChoice::Embedded,
        StoreArg::Etcd if args.etcd_endpoints.is_empty() => {
            anyhow::bail!("--store etcd needs --etcd-endpoints (e.g. http://127.0.0.1:2379)")
        }
        StoreArg::Etcd => StoreChoice::Etcd(args.etcd_endpoints.clone()),
    };
    config.tokens_file = args.tokens.clone();
    config.tls_sans = args.tls_san.clone();
    config.options.max_body = args.max_body;
    config.options.bookmark_interval =
        std::time::Duration::from_secs(args.bookmark_interval.max(1));
    config.compact_interval = std::time::Duration::from_secs(args.compact_interval.max(1));
    config.options.usage_samples = args.usage_samples.max(1);
    config.options.usage_retention = std::time::Duration::from_secs(args.usage_retention.max(1));
    config.options.services = api::services::ServiceNetwork {
        cidr: args
            .service_cidr
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid option --service-cidr: {e}"))?,
        node_ports: args
            .service_node_port_range
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid option --service-node-port-range: {e}"))?,
    };
    // Several servers on one etcd elect the one that runs the controllers and scheduler.
    let plane = ControlPlaneConfig {
        controllers: (!args.no_controllers)
            .then(|| args.controllers.config())
            .transpose()?,
        scheduler: (!args.no_scheduler)
            .then(|| args.scheduler.config())
            .transpose()?,
        leader_election: args
            .leader
            .config("plimsoll-control-plane", args.store == StoreArg::Etcd)?,
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if args.threads > 0 {
        rt.worker_threads(args.threads);
    }
    let rt = rt
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async {
        let prepared = api::Prepared::new(config)
            .await
            .with_context(|| format!("starting the server in {}", args.data_dir.display()))?;
        eprintln!(
            "plimsoll server listening on https://{}; KUBECONFIG={}",
            prepared.addr,
            prepared.kubeconfig.display()
        );
        // The controllers and the scheduler reach this server as any client does, through
        // its kubeconfig (their watches retry until it listens).
        let client = control::client_from_kubeconfig(&prepared.kubeconfig).await?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let plane = tokio::spawn(control::run(
            client,
            plane,
            OrchClock::wall(),
            prepared.metrics(),
            stop_rx,
        ));
        prepared
            .serve(async move {
                crate::control::signalled().await;
                // Stop (and give up the Lease) while the API still answers.
                let _ = stop_tx.send(true);
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), plane).await;
            })
            .await
            .context("serving")
    })?;
    Ok(Status::Ok)
}
